"""
Tests for L{linkrtc.signalling.sipws}: the SIP-over-WebSocket endpoint
(RFC 7118) driven over a L{StringTransport} with a L{Clock}, feeding a
real L{linkrtc.sip.transport.SIPTransportLayer}.
"""

from twisted.internet.address import IPv4Address
from twisted.internet.error import ConnectionDone
from twisted.internet.task import Clock
from twisted.python.failure import Failure
from twisted.trial.unittest import SynchronousTestCase

from linkrtc.signalling.guard import SourceGuard
from linkrtc.signalling.sipws import SIPWebSocketFactory
from linkrtc.signalling.test.test_protocol import (
    OP_BINARY,
    OP_CLOSE,
    OP_PING,
    OP_TEXT,
    FakeTransport,
    clientFrame,
    handshake,
    serverFrames,
)
from linkrtc.sip.parser import parseMessage
from linkrtc.sip.test.test_websocket import REGISTER, FakeReceiver
from linkrtc.sip.transport import SIPTransportLayer

SIP = [("Sec-WebSocket-Protocol", "sip")]


class SIPWebSocketTests(SynchronousTestCase):
    def setUp(self):
        self.clock = Clock()
        self.receiver = FakeReceiver()
        self.layer = SIPTransportLayer(self.clock, receiver=self.receiver)
        self.factory = self.makeFactory()

    def makeFactory(self, **kwargs):
        return SIPWebSocketFactory(self.layer, clock=self.clock, **kwargs)

    def connect(self, data=None, status=b"101", peer="127.0.0.1", port=40000):
        if data is None:
            data = handshake(headers=SIP)
        address = IPv4Address("TCP", peer, port)
        proto = self.factory.buildProtocol(address)
        transport = FakeTransport(peerAddress=address,
                                  hostAddress=IPv4Address("TCP", "127.0.0.1", 8080))
        proto.makeConnection(transport)
        proto.dataReceived(data)
        answer = transport.value()
        self.assertTrue(answer.startswith(b"HTTP/1.1 " + status + b" "), answer)
        transport.clear()
        if status != b"101":
            proto.connectionLost(Failure(ConnectionDone()))
        else:
            self.addCleanup(self.disconnect, proto)
        return proto, transport, answer

    def disconnect(self, proto):
        if proto.source is not None:
            proto.connectionLost(Failure(ConnectionDone()))

    def test_subprotocolNegotiated(self):
        """The handshake offering C{sip} is answered with C{Sec-WebSocket-Protocol: sip}."""
        _, _, answer = self.connect(data=handshake(headers=[
            ("Sec-WebSocket-Protocol", "json, sip")]))
        self.assertIn(b"sec-websocket-protocol: sip\r\n", answer.lower())

    def test_timersOnTheClock(self):
        """
        The keep-alive pings run on the injected clock (not on txaio's
        timer over the global reactor, where they outlived the test).
        """
        proto, transport, _ = self.connect(data=handshake(headers=SIP))
        self.clock.advance(20.0)
        self.assertEqual(serverFrames(transport.value())[0][0], OP_PING)

    def test_noSubprotocolRefused(self):
        """A handshake that does not offer C{sip} is refused (RFC 7118 §4)."""
        self.connect(data=handshake(), status=b"400")
        self.connect(data=handshake(headers=[("Sec-WebSocket-Protocol", "chat")]),
                     status=b"400")

    def test_foreignOriginRefused(self):
        """Origin is checked as on C{/ws}: a foreign page gets 403."""
        self.connect(data=handshake(origin="https://evil.example", headers=SIP), status=b"403")

    def test_allowedOrigin(self):
        self.factory = self.makeFactory(allowedOrigins=["https://phone.example"])
        self.connect(data=handshake(origin="https://phone.example", headers=SIP))

    def test_tooManyConnections(self):
        """The per-address connection cap of the guard applies."""
        self.factory = self.makeFactory(guard=SourceGuard(self.clock, maxConnections=1))
        self.connect()
        self.connect(status=b"429", port=40001)

    def test_textFrameIsSIP(self):
        """A text frame is one SIP message, handed to the layer with transport WS."""
        proto, transport, _ = self.connect()
        proto.dataReceived(clientFrame(REGISTER, OP_TEXT))
        [(request, source)] = self.receiver.requests
        self.assertEqual(request.method, "REGISTER")
        self.assertEqual(source.transport, "WS")
        self.assertIs(source.connection, proto.sip)

    def test_binaryFrameParsed(self):
        """Binary frames are parsed too (RFC 7118 §5.1)."""
        proto, transport, _ = self.connect()
        proto.dataReceived(clientFrame(REGISTER, OP_BINARY))
        self.assertEqual(len(self.receiver.requests), 1)

    def test_responseIsTextFrame(self):
        """What the layer sends goes out as one text frame per message."""
        proto, transport, _ = self.connect()
        proto.dataReceived(clientFrame(REGISTER, OP_TEXT))
        request, source = self.receiver.requests[0]
        self.successResultOf(self.layer.sendResponse(request.createResponse(200), source))
        [(opcode, payload)] = serverFrames(transport.value())
        self.assertEqual(opcode, OP_TEXT)
        self.assertEqual(parseMessage(payload).status, 200)

    def test_notSIPCloses(self):
        """A frame that is not SIP closes the connection with code 1002 and a reason."""
        proto, transport, _ = self.connect()
        proto.dataReceived(clientFrame(b'{"type":"register"}', OP_TEXT))
        self.assertEqual(self.receiver.requests, [])
        [(opcode, payload)] = serverFrames(transport.value())
        self.assertEqual(opcode, OP_CLOSE)
        self.assertEqual(payload[:2], (4400).to_bytes(2, "big"))
        self.assertIn(b"not a SIP message", payload)

    def test_tooBigCloses(self):
        """A message over the size limit drops the connection; nothing is parsed."""
        self.factory = self.makeFactory(maxMessageSize=1024)
        proto, transport, _ = self.connect()
        proto.dataReceived(clientFrame(REGISTER + b"x" * 2000, OP_TEXT))
        self.assertEqual(self.receiver.requests, [])
        self.assertTrue(transport.disconnecting)

    def test_lostConnectionUnreachable(self):
        """After the WebSocket closes the layer no longer routes to it."""
        proto, transport, _ = self.connect()
        proto.dataReceived(clientFrame(REGISTER, OP_TEXT))
        conn = proto.sip
        proto.connectionLost(Failure(ConnectionDone()))
        self.assertFalse(conn.connected)
        self.assertIsNone(self.layer.connectionTo(conn.peer))

    def test_secureIsWSS(self):
        """Over HTTPS the connection's transport is WSS (RFC 7118 §5.2 Via transport)."""
        self.factory = self.makeFactory(secure=True)
        proto, transport, _ = self.connect()
        self.assertEqual(proto.sip.transportName, "WSS")
        self.assertEqual(self.layer.localVia("WSS", "z9hG4bKx").transport, "WSS")

    def test_plainIsWS(self):
        proto, transport, _ = self.connect()
        self.assertEqual(proto.sip.transportName, "WS")
        self.assertEqual(proto.sip.peer.host, "127.0.0.1")
