"""
Tests for L{linkrtc.sip.websocket}: SIP over WebSocket (RFC 7118) as a
transport of L{linkrtc.sip.transport.SIPTransportLayer}, with a fake
WebSocket.
"""

from twisted.internet.testing import MemoryReactorClock
from twisted.trial.unittest import SynchronousTestCase

from linkrtc.error import TransportError
from linkrtc.sip.address import Address
from linkrtc.sip.bindings import flowOf
from linkrtc.sip.dialog import unusableURI
from linkrtc.sip.message import Request
from linkrtc.sip.parser import parseMessage
from linkrtc.sip.ratelimit import SourceRateLimiter
from linkrtc.sip.transport import SIPTransportLayer
from linkrtc.sip.uri import SIPURI, parseURI
from linkrtc.sip.useragent import UserAgent
from linkrtc.sip.websocket import CLOSE_NOT_SIP, SIPWebSocketConnection, isSIPFrame

REGISTER = (
    "REGISTER sip:linkrtc.example SIP/2.0\r\n"
    "Via: SIP/2.0/WSS df7jal23ls0d.invalid;branch=z9hG4bKnashds7\r\n"
    "Max-Forwards: 70\r\n"
    "To: <sip:alice@linkrtc.example>\r\n"
    "From: <sip:alice@linkrtc.example>;tag=5mk4a8\r\n"
    "Call-ID: reg1@df7jal23ls0d.invalid\r\n"
    "CSeq: 1 REGISTER\r\n"
    "Contact: <sip:kq1rg2vs@df7jal23ls0d.invalid;transport=ws>;expires=600\r\n"
    "Content-Length: 0\r\n"
    "\r\n"
).encode("utf-8")


class FakeSocket:
    """The WebSocket side: records frames sent and closes."""

    def __init__(self):
        self.frames = []
        self.closed = []

    def sendSIP(self, data):
        self.frames.append(data)

    def closeSIP(self, code, reason):
        self.closed.append((code, reason))


class FakeReceiver:
    def __init__(self):
        self.requests = []
        self.responses = []

    def requestReceived(self, request, source):
        self.requests.append((request, source))

    def responseReceived(self, response, source):
        self.responses.append((response, source))


class WebSocketTransportTests(SynchronousTestCase):
    rateLimiter = None

    def setUp(self):
        self.reactor = MemoryReactorClock()
        self.receiver = FakeReceiver()
        self.layer = SIPTransportLayer(self.reactor, receiver=self.receiver,
                                       rateLimiter=self.makeLimiter())

    def makeLimiter(self):
        return None

    def open(self, peer=("192.0.2.7", 50000), transport="WS"):
        socket = FakeSocket()
        conn = SIPWebSocketConnection(self.layer, socket, transport, peer,
                                      ("192.0.2.10", 8080))
        conn.connectionMade()
        return conn, socket

    def test_startLine(self):
        """Only frames that start with a SIP request or status line are SIP."""
        self.assertTrue(isSIPFrame(REGISTER))
        self.assertTrue(isSIPFrame(b"SIP/2.0 200 OK\r\nVia: x\r\n\r\n"))
        self.assertFalse(isSIPFrame(b'{"type":"register"}'))
        self.assertFalse(isSIPFrame(b""))
        self.assertFalse(isSIPFrame(b"\x00\x01\x02"))
        self.assertFalse(isSIPFrame(b"GET / HTTP/1.1\r\n\r\n"))

    def test_otherTransportRefused(self):
        self.assertRaises(ValueError, SIPWebSocketConnection, self.layer, FakeSocket(), "TCP",
                          ("192.0.2.7", 1))

    def test_requestReceived(self):
        """
        A frame holding a request reaches the receiver with a WS source that
        carries the connection; the top Via gets received and the WSS Via
        transport is kept (RFC 7118 §5.2).
        """
        conn, _ = self.open()
        conn.frameReceived(REGISTER)
        [(request, source)] = self.receiver.requests
        self.assertEqual(request.method, "REGISTER")
        self.assertEqual(source.transport, "WS")
        self.assertIs(source.connection, conn)
        self.assertEqual(source.host, "192.0.2.7")
        via = request.vias[0]
        self.assertEqual(via.transport, "WSS")
        self.assertEqual(via.received, "192.0.2.7")

    def test_responseOnConnection(self):
        """A response goes back as one frame on the connection the request came on."""
        conn, socket = self.open()
        conn.frameReceived(REGISTER)
        request, source = self.receiver.requests[0]
        # (a Deferred, as for every transport: the 503 of the rate limit needs it)
        self.successResultOf(self.layer.sendResponse(request.createResponse(200), source))
        [frame] = socket.frames
        response = parseMessage(frame)
        self.assertEqual(response.status, 200)
        self.assertEqual(response.vias[0].transport, "WSS")

    def test_notSIPClosed(self):
        """A frame that is not SIP closes this connection with a reason; others stay."""
        conn, socket = self.open()
        other, otherSocket = self.open(peer=("192.0.2.8", 50001))
        conn.frameReceived(b'{"type":"register","client":"alice"}')
        self.assertEqual(socket.closed, [(CLOSE_NOT_SIP, "not a SIP message")])
        self.assertFalse(conn.connected)
        self.assertEqual(self.receiver.requests, [])
        self.assertEqual(otherSocket.closed, [])
        other.frameReceived(REGISTER)
        self.assertEqual(len(self.receiver.requests), 1)
        # Nothing more is read from the closed one.
        conn.frameReceived(REGISTER)
        self.assertEqual(len(self.receiver.requests), 1)

    def test_unparseableRequestAnswered400(self):
        """A SIP request that cannot be parsed gets a stateless 400; the connection stays."""
        conn, socket = self.open()
        bad = REGISTER.replace(b"CSeq: 1 REGISTER", b"CSeq: one REGISTER")
        conn.frameReceived(bad)
        self.assertEqual(self.receiver.requests, [])
        [frame] = socket.frames
        self.assertTrue(frame.startswith(b"SIP/2.0 400 "), frame)
        self.assertEqual(socket.closed, [])
        self.assertTrue(conn.connected)

    def test_requestToFlow(self):
        """
        A request to a WS-registered contact goes over the connection its
        REGISTER came on (the binding's flow), not to the contact's host.
        """
        conn, socket = self.open()
        conn.frameReceived(REGISTER)
        _, source = self.receiver.requests[0]
        flow = flowOf(source)
        request = Request("OPTIONS", parseURI("sip:kq1rg2vs@df7jal23ls0d.invalid;transport=ws"))
        request.headers.add("Via", "SIP/2.0/WS 192.0.2.10:8080;branch=z9hG4bK1")
        self.successResultOf(self.layer.sendRequest(request, flow.destination()))
        [frame] = socket.frames
        self.assertTrue(frame.startswith(b"OPTIONS sip:kq1rg2vs@df7jal23ls0d.invalid"))

    def test_requestToContactAlias(self):
        """
        An in-dialog request goes to the remote target, the client's
        Contact with its C{.invalid} host: it is routed to the connection
        that client's requests came on (RFC 7118 §5.2).
        """
        conn, socket = self.open()
        conn.frameReceived(REGISTER)
        ua = UserAgent.__new__(UserAgent)
        destination = ua.destinationFor(
            parseURI("sip:kq1rg2vs@df7jal23ls0d.invalid;transport=ws"))
        self.assertEqual(destination.transport, "WS")
        request = Request("BYE", parseURI("sip:kq1rg2vs@df7jal23ls0d.invalid;transport=ws"))
        self.successResultOf(self.layer.sendRequest(request, destination))
        self.assertEqual(len(socket.frames), 1)

    def test_goneIsUnreachable(self):
        """Once the connection is gone, the contact is unreachable: no connection is opened."""
        conn, socket = self.open()
        conn.frameReceived(REGISTER)
        _, source = self.receiver.requests[0]
        conn.connectionLost()
        request = Request("OPTIONS", parseURI("sip:kq1rg2vs@df7jal23ls0d.invalid;transport=ws"))
        self.failureResultOf(self.layer.sendRequest(request, flowOf(source).destination()),
                             TransportError)
        self.failureResultOf(
            self.layer.sendRequest(request, Address("WS", "df7jal23ls0d.invalid", 80)),
            TransportError)
        self.assertEqual(self.reactor.tcpClients, [])
        self.assertEqual(socket.frames, [])

    def test_aliasNotStolen(self):
        """A second client claiming a host another open connection owns does not get it."""
        conn, socket = self.open()
        conn.frameReceived(REGISTER)
        thief, thiefSocket = self.open(peer=("192.0.2.66", 1234))
        thief.frameReceived(REGISTER.replace(b"reg1@", b"reg2@"))
        request = Request("BYE", parseURI("sip:kq1rg2vs@df7jal23ls0d.invalid;transport=ws"))
        self.successResultOf(
            self.layer.sendRequest(request, Address("WS", "df7jal23ls0d.invalid", 80)))
        self.assertEqual(len(socket.frames), 1)
        self.assertEqual(thiefSocket.frames, [])

    def test_localViaAndContact(self):
        """Our Via and Contact over WS name the WS transport and the HTTP port."""
        self.open()
        via = self.layer.localVia("WS", "z9hG4bKx")
        self.assertEqual(via.transport, "WS")
        self.assertEqual(via.port, 8080)
        uri = self.layer.localContactURI("WS")
        self.assertEqual(uri.params, {"transport": "ws"})
        self.assertTrue(self.layer.isReliable("WSS"))

    def test_wsContactUsable(self):
        """A dialog accepts a C{;transport=ws} remote target."""
        self.assertIsNone(unusableURI(SIPURI("sip", user="a", host="x.invalid",
                                             params={"transport": "ws"})))

    def test_layerCloseClosesWebSockets(self):
        conn, socket = self.open()
        self.layer.close()
        self.assertEqual(len(socket.closed), 1)
        self.assertFalse(conn.connected)


class WebSocketAdmissionTests(WebSocketTransportTests):
    """The per-source rate limit applies to WS like any transport."""

    def makeLimiter(self):
        return SourceRateLimiter(self.reactor, rate=1, burst=2, banSeconds=60)

    def test_flooderRefused(self):
        conn, socket = self.open()
        for i in range(5):
            conn.frameReceived(REGISTER.replace(b"reg1@", b"reg%d@" % (i,)))
        self.assertEqual(len(self.receiver.requests), 2)
        statuses = [parseMessage(f).status for f in socket.frames]
        self.assertEqual(statuses, [503])
