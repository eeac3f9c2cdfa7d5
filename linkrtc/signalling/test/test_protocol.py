"""
Tests for L{linkrtc.signalling.protocol}: the Autobahn server protocol
driven over a L{StringTransport} with a L{Clock}.
"""

import json
import struct

from twisted.internet.address import IPv4Address
from twisted.internet.defer import fail
from twisted.internet.error import ConnectionDone
from twisted.internet.task import Clock
from twisted.internet.testing import StringTransport
from twisted.python.failure import Failure
from twisted.trial.unittest import SynchronousTestCase
from twisted.web.resource import Resource
from twisted.web.server import Site
from zope.interface import implementer
from zope.interface.verify import verifyObject

from linkrtc.interfaces import IClientConnection, IClientMessageHandler
from linkrtc.signalling.directory import ClientDirectory
from linkrtc.signalling.messages import MAX_MESSAGE_SIZE
from linkrtc.signalling.protocol import SignallingFactory, makeWebSocketResource

HANDSHAKE = (
    b"GET /ws HTTP/1.1\r\n"
    b"Host: localhost:8080\r\n"
    b"Upgrade: websocket\r\n"
    b"Connection: Upgrade\r\n"
    b"Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n"
    b"Sec-WebSocket-Version: 13\r\n"
    b"Origin: http://localhost:8080\r\n"
    b"\r\n"
)


def handshake(host="localhost:8080", origin="http://localhost:8080", headers=()):
    """
    @return: an opening handshake (RFC 6455 §4.1) with these C{Host} and
        C{Origin} (left out when C{None}) and extra C{(name, value)} headers.
    """
    lines = ["GET /ws HTTP/1.1", "Upgrade: websocket", "Connection: Upgrade",
             "Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==", "Sec-WebSocket-Version: 13"]
    if host is not None:
        lines.append(f"Host: {host}")
    if origin is not None:
        lines.append(f"Origin: {origin}")
    lines += [f"{k}: {v}" for k, v in headers]
    return ("\r\n".join(lines) + "\r\n\r\n").encode("latin-1")

OP_TEXT, OP_BINARY, OP_CLOSE, OP_PING, OP_PONG = 1, 2, 8, 9, 10


def clientFrame(payload, opcode=OP_TEXT):
    """Encode one masked client frame (RFC 6455 §5.2, §5.3)."""
    if isinstance(payload, str):
        payload = payload.encode("utf-8")
    mask = b"\x37\xfa\x21\x3d"
    n = len(payload)
    header = bytes([0x80 | opcode])
    if n < 126:
        header += bytes([0x80 | n])
    elif n < 65536:
        header += bytes([0x80 | 126]) + struct.pack("!H", n)
    else:
        header += bytes([0x80 | 127]) + struct.pack("!Q", n)
    masked = bytes(b ^ mask[i % 4] for i, b in enumerate(payload))
    return header + mask + masked


def serverFrames(data):
    """Decode unmasked server frames into C{(opcode, payload)} pairs."""
    frames = []
    while data:
        opcode = data[0] & 0x0F
        n = data[1] & 0x7F
        pos = 2
        if n == 126:
            (n,) = struct.unpack("!H", data[2:4])
            pos = 4
        elif n == 127:
            (n,) = struct.unpack("!Q", data[2:10])
            pos = 10
        frames.append((opcode, data[pos:pos + n]))
        data = data[pos + n:]
    return frames


class FakeTransport(StringTransport):
    """A StringTransport Autobahn can unregister a (missing) producer on."""

    def unregisterProducer(self):
        self.producer = None


@implementer(IClientMessageHandler)
class FakeHandler:
    def __init__(self):
        self.messages = []
        self.lost = []
        self.result = None
        self.raiseOnMessage = False

    def clientMessageReceived(self, connection, message):
        if self.raiseOnMessage:
            raise RuntimeError("engine bug")
        self.messages.append((connection, message))
        return self.result

    def clientLost(self, connection):
        self.lost.append(connection)


class ProtocolTestsMixin:
    verifier = None

    def setUp(self):
        self.clock = Clock()
        self.directory = ClientDirectory(self.clock)
        self.handler = FakeHandler()
        self.factory = self.makeFactory()

    def makeFactory(self, **kwargs):
        return SignallingFactory(self.directory, self.handler, verifier=self.verifier,
                                 clock=self.clock, **kwargs)

    def connect(self, peer="127.0.0.1", data=HANDSHAKE, status=b"101"):
        """
        Connect from C{peer} and send the handshake C{data}.

        @param status: the HTTP status expected in the answer.
        @return: C{(protocol, transport)}, the answer cleared.
        """
        address = IPv4Address("TCP", peer, 40000)
        proto = self.factory.buildProtocol(address)
        transport = FakeTransport(peerAddress=address)
        proto.makeConnection(transport)
        proto.dataReceived(data)
        answer = transport.value()
        self.assertTrue(answer.startswith(b"HTTP/1.1 " + status + b" "), answer)
        transport.clear()
        transport.write(answer.partition(b"\r\n\r\n")[2])
        if status != b"101":
            self.assertTrue(transport.disconnecting)
            proto.connectionLost(Failure(ConnectionDone()))
        self.addCleanup(self.disconnect, proto)
        return proto, transport

    def disconnect(self, proto):
        if proto.source is not None:
            proto.connectionLost(Failure(ConnectionDone()))

    def send(self, proto, message, opcode=OP_TEXT):
        if isinstance(message, dict):
            message = json.dumps(message)
        proto.dataReceived(clientFrame(message, opcode))

    def received(self, transport):
        out = []
        for opcode, payload in serverFrames(transport.value()):
            self.assertEqual(opcode, OP_TEXT)
            out.append(json.loads(payload))
        transport.clear()
        return out

    def register(self, proto, transport, name="alice", **extra):
        self.send(proto, dict(type="register", client=name, **extra))
        return self.received(transport)


class RegisterTests(ProtocolTestsMixin, SynchronousTestCase):
    def test_registered(self):
        proto, transport = self.connect()
        self.assertEqual(self.register(proto, transport),
                         [{"type": "registered", "client": "alice"}])
        self.assertEqual(self.directory.connectionsFor("alice"), [proto.connection])
        self.assertEqual(proto.connection.clientName, "alice")
        self.assertTrue(verifyObject(IClientConnection, proto.connection))

    def test_tokenIgnoredWithoutTokens(self):
        proto, transport = self.connect()
        self.assertEqual(self.register(proto, transport, token="anything"),
                         [{"type": "registered", "client": "alice"}])

    def test_badRegister(self):
        proto, transport = self.connect()
        self.assertEqual(self.register(proto, transport, name="a b")[0]["field"], "client")
        self.assertEqual(self.directory.names(), [])
        self.assertIsNone(proto.connection.clientName)

    def test_multiTab(self):
        (p1, t1), (p2, t2) = self.connect(), self.connect()
        self.register(p1, t1)
        self.register(p2, t2)
        self.assertEqual(self.directory.connectionsFor("alice"), [p1.connection, p2.connection])

    def test_reregisterMoves(self):
        proto, transport = self.connect()
        self.register(proto, transport)
        self.assertEqual(self.register(proto, transport, name="bob"),
                         [{"type": "registered", "client": "bob"}])
        self.assertEqual(self.directory.connectionsFor("alice"), [])
        self.assertEqual(self.directory.connectionsFor("bob"), [proto.connection])
        self.assertEqual(proto.connection.clientName, "bob")

    def test_notRegistered(self):
        proto, transport = self.connect()
        self.send(proto, {"type": "hangup", "call": "c1"})
        [err] = self.received(transport)
        self.assertEqual(err["type"], "error")
        self.assertEqual(err["code"], 403)
        self.assertIn("register", err["message"])
        self.assertEqual(err["call"], "c1")
        self.assertEqual(self.handler.messages, [])


class MessageTests(ProtocolTestsMixin, SynchronousTestCase):
    def setUp(self):
        super().setUp()
        self.proto, self.transport = self.connect()
        self.register(self.proto, self.transport)

    def test_passedToHandler(self):
        self.send(self.proto, {"type": "accept", "call": "c1", "sdp": "v=0", "x": 1})
        self.assertEqual(self.handler.messages,
                         [(self.proto.connection, {"type": "accept", "call": "c1", "sdp": "v=0"})])
        self.assertEqual(self.received(self.transport), [])

    def test_allTypesPassed(self):
        for msg in ({"type": "ringing", "call": "c1"},
                    {"type": "reject", "call": "c1", "reason": "busy"},
                    {"type": "hangup", "call": "c1"},
                    {"type": "dtmf", "call": "c1", "digits": "12#"},
                    {"type": "hold", "call": "c1"},
                    {"type": "unhold", "call": "c1"},
                    {"type": "call", "to": "100", "sdp": "v=0", "ref": "r1"}):
            self.send(self.proto, msg)
        self.assertEqual([m["type"] for _, m in self.handler.messages],
                         ["ringing", "reject", "hangup", "dtmf", "hold", "unhold", "call"])

    def test_notJSONConnectionStays(self):
        self.send(self.proto, "{not json")
        [err] = self.received(self.transport)
        self.assertEqual((err["type"], err["code"], err["field"]), ("error", 400, "type"))
        self.send(self.proto, {"type": "hangup", "call": "c1"})
        self.assertEqual(len(self.handler.messages), 1)
        self.assertFalse(self.transport.disconnecting)

    def test_badFieldNamesFieldAndCall(self):
        self.send(self.proto, {"type": "dtmf", "call": "c9", "digits": "xyz"})
        [err] = self.received(self.transport)
        self.assertEqual((err["code"], err["field"], err["call"]), (400, "digits", "c9"))
        self.assertEqual(self.handler.messages, [])

    def test_binaryFrame(self):
        self.send(self.proto, b'{"type":"hangup","call":"c1"}', OP_BINARY)
        [err] = self.received(self.transport)
        self.assertEqual((err["code"], err["field"]), (400, "type"))
        self.assertEqual(self.handler.messages, [])
        self.assertFalse(self.transport.disconnecting)

    def test_tooBig(self):
        big = json.dumps({"type": "accept", "call": "c1", "sdp": "a" * MAX_MESSAGE_SIZE})
        self.send(self.proto, big)
        [err] = self.received(self.transport)
        self.assertEqual((err["code"], err["field"]), (400, "type"))
        self.assertFalse(self.transport.disconnecting)

    def test_handlerRaises(self):
        self.handler.raiseOnMessage = True
        self.send(self.proto, {"type": "hangup", "call": "c1"})
        [err] = self.received(self.transport)
        self.assertEqual(err["code"], 500)
        self.assertEqual(len(self.flushLoggedErrors(RuntimeError)), 1)
        self.assertFalse(self.transport.disconnecting)

    def test_handlerDeferredFails(self):
        self.handler.result = fail(RuntimeError("later"))
        self.send(self.proto, {"type": "hangup", "call": "c2"})
        [err] = self.received(self.transport)
        self.assertEqual((err["code"], err["call"]), (500, "c2"))
        self.assertEqual(len(self.flushLoggedErrors(RuntimeError)), 1)

    def test_sendMessage(self):
        msg = {"type": "incoming", "call": "c1", "from": "sip:a@x", "to": "sip:b@y",
               "sdp": "v=0\r\n", "caller": "Zoë"}
        self.assertTrue(self.proto.connection.sendMessage(msg))
        self.assertEqual(self.received(self.transport), [msg])

    def test_fastTextFrames(self):
        """
        The fast path's text frames are the octets Autobahn's
        C{sendMessage} writes, for each length encoding (7, 16, 64 bits).
        """
        for size in (0, 1, 125, 126, 65535, 65536, 70000):
            payload = b"x" * size
            self.proto._sendText(payload)
            fast = self.transport.value()
            self.transport.clear()
            self.proto.sendMessage(payload, False)
            self.assertEqual(fast, self.transport.value(), size)
            self.assertEqual(serverFrames(fast), [(OP_TEXT, payload)])
            self.transport.clear()

    def test_fastPathGivesWay(self):
        """
        With frames logged (or anything else the fast path does not do),
        Autobahn's C{sendMessage} sends the message.
        """
        sent = []
        self.patch(self.proto, "sendMessage", lambda payload, isBinary: sent.append(payload))
        self.proto.logFrames = True
        self.assertTrue(self.proto.connection.sendMessage({"type": "x"}))
        self.assertEqual((sent, self.transport.value()), ([b'{"type":"x"}'], b""))

    def test_ping(self):
        self.proto.dataReceived(clientFrame(b"hi", OP_PING))
        self.assertEqual(serverFrames(self.transport.value()), [(OP_PONG, b"hi")])


class CloseTests(ProtocolTestsMixin, SynchronousTestCase):
    def test_clientLost(self):
        proto, transport = self.connect()
        self.register(proto, transport)
        conn = proto.connection
        proto.connectionLost(Failure(ConnectionDone()))
        self.assertEqual(self.handler.lost, [conn])
        self.assertEqual(self.directory.connectionsFor("alice"), [])
        self.assertFalse(conn.sendMessage({"type": "state", "call": "c1", "state": "dropped"}))
        self.assertEqual(transport.value(), b"")

    def test_closeFrame(self):
        proto, transport = self.connect()
        self.register(proto, transport)
        proto.dataReceived(clientFrame(struct.pack("!H", 1000), OP_CLOSE))
        [(opcode, _)] = serverFrames(transport.value())
        self.assertEqual(opcode, OP_CLOSE)
        self.assertTrue(transport.disconnecting)
        self.assertFalse(proto.connection.sendMessage({"type": "state", "call": "c1"}))
        proto.connectionLost(Failure(ConnectionDone()))
        self.assertEqual(self.handler.lost, [proto.connection])
        proto.connectionLost(Failure(ConnectionDone()))
        self.assertEqual(len(self.handler.lost), 1)

    def test_unregisteredNotReported(self):
        proto, transport = self.connect()
        proto.connectionLost(Failure(ConnectionDone()))
        self.assertEqual(self.handler.lost, [])

    def test_clientLostRaises(self):
        def boom(conn):
            raise RuntimeError("engine bug")

        self.handler.clientLost = boom
        proto, transport = self.connect()
        self.register(proto, transport)
        proto.connectionLost(Failure(ConnectionDone()))
        self.assertEqual(len(self.flushLoggedErrors(RuntimeError)), 1)
        self.assertEqual(self.directory.names(), [])

    def test_autoPingTimeout(self):
        proto, transport = self.connect()
        self.register(proto, transport)
        self.clock.advance(20)
        [(opcode, _)] = serverFrames(transport.value())
        self.assertEqual(opcode, OP_PING)
        self.clock.advance(10)
        self.assertTrue(transport.disconnecting)
        proto.connectionLost(Failure(ConnectionDone()))
        self.assertEqual(self.handler.lost, [proto.connection])

    def test_openHandshakeTimeout(self):
        proto = self.factory.buildProtocol(IPv4Address("TCP", "127.0.0.1", 40001))
        transport = FakeTransport()
        proto.makeConnection(transport)
        self.clock.advance(10)
        self.assertTrue(transport.disconnecting)
        proto.connectionLost(Failure(ConnectionDone()))
        self.assertEqual(self.handler.lost, [])


class TraceTests(ProtocolTestsMixin, SynchronousTestCase):
    def test_traceOwnCalls(self):
        tracer, tt = self.connect()
        self.register(tracer, tt, trace=True)
        other, ot = self.connect()
        self.register(other, ot, name="bob", trace=True)
        self.send(tracer, {"type": "hangup", "call": "c1"})
        [trace] = self.received(tt)
        self.assertEqual((trace["type"], trace["call"], trace["dir"], trace["proto"]),
                         ("trace", "c1", "in", "ws"))
        self.assertEqual(json.loads(trace["text"]), {"type": "hangup", "call": "c1"})
        tracer.connection.sendMessage({"type": "state", "call": "c1", "state": "dropped"})
        state, trace = self.received(tt)
        self.assertEqual(state["type"], "state")
        self.assertEqual(trace["dir"], "out")
        self.assertEqual(self.received(ot), [])


class ResourceTests(ProtocolTestsMixin, SynchronousTestCase):
    def test_mountedOnSite(self):
        root = Resource()
        root.putChild(b"ws", makeWebSocketResource(self.factory))
        site = Site(root, reactor=self.clock)
        channel = site.buildProtocol(IPv4Address("TCP", "127.0.0.1", 40002))
        transport = FakeTransport(peerAddress=IPv4Address("TCP", "127.0.0.1", 40002))
        transport.protocol = channel
        channel.makeConnection(transport)
        channel.dataReceived(HANDSHAKE)
        self.assertTrue(transport.value().startswith(b"HTTP/1.1 101 "), transport.value())
        transport.clear()
        proto = transport.protocol
        proto.dataReceived(clientFrame(json.dumps({"type": "register", "client": "alice"})))
        self.assertEqual(self.received(transport), [{"type": "registered", "client": "alice"}])
        proto.connectionLost(Failure(ConnectionDone()))


class OpenConnectionsTests(ProtocolTestsMixin, SynchronousTestCase):
    def test_counted(self):
        """The factory holds each open connection until it closes (for the metrics)."""
        first, _ = self.connect()
        second, _ = self.connect()
        self.assertEqual(self.factory.openConnections, {first, second})
        first.connectionLost(Failure(ConnectionDone()))
        self.assertEqual(self.factory.openConnections, {second})


class InstantMessageTests(ProtocolTestsMixin, SynchronousTestCase):
    """The C{message} type goes to the messenger, not to the call engine."""

    def test_toMessenger(self):
        """A registered client's C{message} reaches the messenger with its connection."""
        seen = []

        class Messenger:
            def clientMessage(self, connection, message):
                seen.append((connection, message))

        self.factory = self.makeFactory(messenger=Messenger())
        proto, transport = self.connect()
        self.register(proto, transport)
        self.send(proto, {"type": "message", "to": "bob", "text": "hi", "ref": "m1"})
        self.assertEqual(seen, [(proto.connection, {"type": "message", "to": "bob",
                                                     "text": "hi", "ref": "m1"})])
        self.assertEqual(self.handler.messages, [])

    def test_noMessenger(self):
        """Without a messenger: error 501 with the ref."""
        proto, transport = self.connect()
        self.register(proto, transport)
        self.send(proto, {"type": "message", "to": "bob", "text": "hi", "ref": "m1"})
        [err] = self.received(transport)
        self.assertEqual((err["type"], err["code"], err["ref"]), ("error", 501, "m1"))

    def test_badMessage(self):
        """A C{message} without text is a 400 naming the field."""
        proto, transport = self.connect()
        self.register(proto, transport)
        self.send(proto, {"type": "message", "to": "bob"})
        [err] = self.received(transport)
        self.assertEqual((err["code"], err["field"]), (400, "text"))
