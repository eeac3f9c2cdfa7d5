"""
Tests for L{linkrtc.sip.transport}: the SIP transport layer (RFC 3261 §18,
RFC 3581, RFC 5626 §3.5.1 keep-alives).
"""

from twisted.internet.address import IPv4Address
from twisted.internet.defer import Deferred, fail, succeed
from twisted.internet.error import ConnectionRefusedError
from twisted.internet.testing import (
    EventLoggingObserver,
    MemoryReactorClock,
    StringTransportWithDisconnection,
)
from twisted.logger import globalLogPublisher
from twisted.python.failure import Failure
from twisted.trial.unittest import SynchronousTestCase, TestCase

from linkrtc.error import SIPParseError, TransportError
from linkrtc.sip.message import Request, Response
from linkrtc.sip.parser import parseMessage
from linkrtc.sip.transport import (
    Address,
    SIPStreamFactory,
    SIPStreamProtocol,
    SIPTransportLayer,
    Source,
)
from linkrtc.sip.uri import parseVia

# --------------------------------------------------------------------------
# Messages
# --------------------------------------------------------------------------


def invite(transport="UDP", sentBy="pc33.example.com:5066", viaParams="", extra=b""):
    """An INVITE from Alice; C{sentBy} and C{viaParams} shape its Via."""
    return (
        b"INVITE sip:bob@192.0.2.10 SIP/2.0\r\n"
        b"Via: SIP/2.0/" + transport.encode() + b" " + sentBy.encode()
        + b";branch=z9hG4bK776asdhds" + viaParams.encode() + b"\r\n"
        b"Max-Forwards: 70\r\n"
        b"To: Bob <sip:bob@example.com>\r\n"
        b"From: Alice <sip:alice@example.com>;tag=1928301774\r\n"
        b"Call-ID: a84b4c76e66710@pc33.example.com\r\n"
        b"CSeq: 314159 INVITE\r\n"
        b"Contact: <sip:alice@pc33.example.com>\r\n"
        + extra
        + b"Content-Length: 0\r\n\r\n"
    )


def response(status=200, sentBy="192.0.2.10:5060", transport="UDP"):
    """A response to one of our requests, top Via C{sentBy}."""
    return (
        b"SIP/2.0 " + str(status).encode() + b" OK\r\n"
        b"Via: SIP/2.0/" + transport.encode() + b" " + sentBy.encode()
        + b";branch=z9hG4bKnashds8;received=192.0.2.10\r\n"
        b"To: Bob <sip:bob@example.com>;tag=a6c85cf\r\n"
        b"From: Alice <sip:alice@example.com>;tag=1928301774\r\n"
        b"Call-ID: a84b4c76e66710\r\n"
        b"CSeq: 1 OPTIONS\r\n"
        b"Content-Length: 0\r\n\r\n"
    )


# A request the parser refuses (no Call-ID) but whose header lines it recovers.
NO_CALL_ID = (
    b"OPTIONS sip:bob@192.0.2.10 SIP/2.0\r\n"
    b"Via: SIP/2.0/UDP pc33.example.com:5066;branch=z9hG4bKbad\r\n"
    b"Max-Forwards: 70\r\n"
    b"To: <sip:bob@example.com>\r\n"
    b"From: <sip:alice@example.com>;tag=88\r\n"
    b"CSeq: 7 OPTIONS\r\n"
    b"Content-Length: 0\r\n\r\n"
)

WRONG_VERSION = NO_CALL_ID.replace(b" SIP/2.0\r\n", b" SIP/7.0\r\n", 1).replace(
    b"CSeq: 7", b"Call-ID: v7\r\nCSeq: 7"
)


def parseError(data):
    """@return: the L{SIPParseError} that parsing C{data} raises."""
    try:
        parseMessage(data)
    except SIPParseError as e:
        return e
    raise AssertionError("parsed fine: %r" % (data,))


# --------------------------------------------------------------------------
# Fakes
# --------------------------------------------------------------------------


class FakeDatagramTransport:
    """Records datagrams written, as C{(bytes, (host, port))}."""

    def __init__(self):
        self.written = []
        self.error = None

    def write(self, data, addr):
        if self.error is not None:
            raise self.error
        self.written.append((data, addr))


class FakeUDPPort:
    """An L{IListeningPort} for UDP, connecting its protocol to a fake transport."""

    def __init__(self, port, protocol, interface):
        self.port = port or 40000
        self.interface = interface or "0.0.0.0"
        self.protocol = protocol
        self.transport = FakeDatagramTransport()
        self.stopped = False
        protocol.makeConnection(self.transport)

    def getHost(self):
        return IPv4Address("UDP", self.interface, self.port)

    def stopListening(self):
        self.stopped = True


class FakeReactor(MemoryReactorClock):
    """A memory reactor and clock that can also "listen" on UDP."""

    def __init__(self):
        super().__init__()
        self.udpPorts = []

    def listenUDP(self, port, protocol, interface="", maxPacketSize=8192):
        udpPort = FakeUDPPort(port, protocol, interface)
        self.udpPorts.append(udpPort)
        return udpPort


class FakeReceiver:
    """A transaction layer that records what it is given."""

    def __init__(self):
        self.requests = []
        self.responses = []

    def requestReceived(self, request, source):
        self.requests.append((request, source))

    def responseReceived(self, response, source):
        self.responses.append((response, source))


class TransportTestMixin:
    """Builds a layer on a L{FakeReactor}, listening on UDP 192.0.2.10:5060."""

    publicAddress = None

    def setUp(self):
        self.reactor = FakeReactor()
        self.receiver = FakeReceiver()
        self.layer = SIPTransportLayer(
            self.reactor, publicAddress=self.publicAddress, receiver=self.receiver
        )
        self.successResultOf(self.layer.listen("udp:5060:interface=192.0.2.10"))
        self.udp = self.reactor.udpPorts[0]
        self.log = EventLoggingObserver.createWithCleanup(self, globalLogPublisher)

    def datagram(self, data, source=("192.0.2.1", 5066)):
        self.udp.protocol.datagramReceived(data, source)

    @property
    def written(self):
        return self.udp.transport.written

    def listenTCP(self, description="tcp:5060"):
        self.successResultOf(self.layer.listen(description))
        return self.reactor.tcpServers[-1][1]

    def connect(self, factory, peer=("192.0.2.1", 40000), transport="TCP"):
        """Make an inbound stream connection from C{peer}."""
        proto = factory.buildProtocol(IPv4Address("TCP", *peer))
        tr = StringTransportWithDisconnection(
            hostAddress=IPv4Address("TCP", "192.0.2.10", 5060),
            peerAddress=IPv4Address("TCP", *peer),
        )
        tr.protocol = proto
        proto.makeConnection(tr)
        return proto, tr


# --------------------------------------------------------------------------
# Address
# --------------------------------------------------------------------------


class AddressTests(SynchronousTestCase):
    """L{Address} and L{Source}."""

    def test_normalised(self):
        """The transport is upper-cased and IPv6 brackets are removed."""
        a = Address("udp", "[2001:db8::1]", "5060")
        self.assertEqual((a.transport, a.host, a.port), ("UDP", "2001:db8::1", 5060))
        self.assertEqual(str(a), "UDP:[2001:db8::1]:5060")

    def test_bad(self):
        """An unknown transport or a bad port is a L{ValueError}."""
        self.assertRaises(ValueError, Address, "SCTP", "h", 1)
        self.assertRaises(ValueError, Address, "UDP", "h", 70000)

    def test_sourceEqualsAddress(self):
        """A L{Source} equals and hashes as the plain L{Address}."""
        s = Source("TCP", "192.0.2.1", 5060, connection=object())
        a = Address("TCP", "192.0.2.1", 5060)
        self.assertEqual(s, a)
        self.assertEqual(hash(s), hash(a))
        self.assertEqual({a: 1}[s], 1)
        self.assertNotEqual(s, Address("UDP", "192.0.2.1", 5060))
        self.assertIs(type(s.address), Address)

    def test_frozen(self):
        """Addresses are immutable."""
        a = Address("UDP", "h", 1)
        self.assertRaises(AttributeError, setattr, a, "port", 2)

    def test_reliable(self):
        """TCP and TLS are reliable, UDP is not."""
        layer = SIPTransportLayer(FakeReactor())
        self.assertFalse(layer.isReliable(Address("UDP", "h", 1)))
        self.assertTrue(layer.isReliable(Address("TCP", "h", 1)))
        self.assertTrue(layer.isReliable(Source("TLS", "h", 1)))
        self.assertTrue(layer.isReliable("tls"))


# --------------------------------------------------------------------------
# Local addresses
# --------------------------------------------------------------------------


class LocalAddressTests(SynchronousTestCase):
    """L{SIPTransportLayer.localAddress}, C{localVia}, C{localContactURI}."""

    def layer(self, publicAddress=None, listen=("udp:5070:interface=192.0.2.10",)):
        layer = SIPTransportLayer(FakeReactor(), publicAddress=publicAddress)
        for description in listen:
            self.successResultOf(layer.listen(description))
        return layer

    def test_listening(self):
        """Without a public address the listening address is written."""
        self.assertEqual(self.layer().localAddress("UDP"), ("192.0.2.10", 5070))

    def test_publicHost(self):
        """A public host without port uses the listening port."""
        self.assertEqual(self.layer("203.0.113.5").localAddress("udp"), ("203.0.113.5", 5070))

    def test_publicHostPort(self):
        """A public C{host:port} is written as is."""
        layer = self.layer("203.0.113.5:15060")
        self.assertEqual(layer.localAddress("UDP"), ("203.0.113.5", 15060))
        layer = self.layer(("sip.example.com", 5080))
        self.assertEqual(layer.localAddress("UDP"), ("sip.example.com", 5080))

    def test_publicIPv6(self):
        """A public C{[v6]:port} is accepted; Via writes brackets."""
        layer = self.layer("[2001:db8::5]:5090")
        self.assertEqual(layer.localAddress("UDP"), ("2001:db8::5", 5090))
        self.assertEqual(str(layer.localVia("UDP", "z9hG4bKx")),
                         "SIP/2.0/UDP [2001:db8::5]:5090;branch=z9hG4bKx;rport")

    def test_badPublicAddress(self):
        """A malformed public address is a L{ValueError}."""
        for bad in ["", "[2001:db8::1", "[::1]x", "h:port"]:
            self.assertRaises(ValueError, SIPTransportLayer, FakeReactor(), bad)

    def test_notListening(self):
        """A transport we do not listen on gets its default port."""
        layer = self.layer("203.0.113.5")
        self.assertEqual(layer.localAddress("TLS"), ("203.0.113.5", 5061))
        self.assertEqual(layer.localAddress("TCP"), ("203.0.113.5", 5060))

    def test_wildcard(self):
        """A wildcard bind is replaced by an address of this host."""
        layer = self.layer(listen=("udp:5060",))
        host, port = layer.localAddress("UDP")
        self.assertNotIn(host, ("", "0.0.0.0"))
        self.assertEqual(port, 5060)

    def test_localVia(self):
        """L{SIPTransportLayer.localVia} writes sent-by, branch and rport."""
        via = self.layer("203.0.113.5").localVia("UDP", "z9hG4bK1")
        self.assertEqual(str(via), "SIP/2.0/UDP 203.0.113.5:5070;branch=z9hG4bK1;rport")

    def test_localContactURI(self):
        """The Contact URI names the transport for streams."""
        layer = self.layer("203.0.113.5", listen=("udp:5070", "tcp:5072"))
        self.assertEqual(str(layer.localContactURI("UDP", "gw")), "sip:gw@203.0.113.5:5070")
        self.assertEqual(str(layer.localContactURI("TCP")), "sip:203.0.113.5:5072;transport=tcp")


# --------------------------------------------------------------------------
# UDP receive
# --------------------------------------------------------------------------


class UDPReceiveTests(TransportTestMixin, SynchronousTestCase):
    """Datagrams in: parsing, Via processing (§18.2.1, RFC 3581), bad input."""

    def test_request(self):
        """A request goes to C{requestReceived} with its L{Source}."""
        self.datagram(invite())
        [(request, source)] = self.receiver.requests
        self.assertIsInstance(request, Request)
        self.assertEqual(request.method, "INVITE")
        self.assertEqual(source, Address("UDP", "192.0.2.1", 5066))
        self.assertIsNone(source.connection)
        self.assertEqual(source.local, Address("UDP", "192.0.2.10", 5060))

    def test_received(self):
        """A sent-by host other than the source IP gets C{received} (§18.2.1)."""
        self.datagram(invite())
        [(request, _)] = self.receiver.requests
        self.assertEqual(request.topVia.received, "192.0.2.1")
        self.assertEqual(request.headers.get("Via"),
                         "SIP/2.0/UDP pc33.example.com:5066;branch=z9hG4bK776asdhds"
                         ";received=192.0.2.1")

    def test_receivedNotNeeded(self):
        """A sent-by host equal to the source IP gets no C{received}."""
        self.datagram(invite(sentBy="192.0.2.1:5066"))
        [(request, _)] = self.receiver.requests
        self.assertIsNone(request.topVia.received)

    def test_rport(self):
        """An empty rport gets the source port, and C{received} is added (RFC 3581 §4)."""
        self.datagram(invite(sentBy="192.0.2.1:5066", viaParams=";rport"), ("192.0.2.1", 1024))
        [(request, _)] = self.receiver.requests
        self.assertEqual(request.topVia.rport, 1024)
        self.assertEqual(request.topVia.received, "192.0.2.1")

    def test_lowerViasKept(self):
        """Only the top Via changes; the others stay, in order."""
        data = invite().replace(
            b"Max-Forwards", b"Via: SIP/2.0/UDP proxy.example.com;branch=z9hG4bKp\r\nMax-Forwards"
        )
        self.datagram(data)
        [(request, _)] = self.receiver.requests
        self.assertEqual([v.host for v in request.vias], ["pc33.example.com", "proxy.example.com"])
        self.assertIsNone(request.vias[1].received)

    def test_response(self):
        """A response to us goes to C{responseReceived}."""
        self.datagram(response(), ("192.0.2.20", 5060))
        [(resp, source)] = self.receiver.responses
        self.assertIsInstance(resp, Response)
        self.assertEqual(resp.status, 200)
        self.assertEqual(source, Address("UDP", "192.0.2.20", 5060))

    def test_responseOverStreamToDefaultPort(self):
        """
        A response over TCP whose Via has the port we write for TCP (5060
        when we do not listen on TCP) is ours, whatever our UDP port.
        """
        layer = SIPTransportLayer(self.reactor, receiver=self.receiver)
        self.successResultOf(layer.listen("udp:5070"))
        self.assertEqual(layer.localAddress("TCP")[1], 5060)
        proto = SIPStreamProtocol(layer, "TCP", outbound=True)
        proto.makeConnection(StringTransportWithDisconnection(
            peerAddress=IPv4Address("TCP", "192.0.2.50", 5060)))
        proto.dataReceived(response(sentBy="192.0.2.10:5060", transport="TCP"))
        [(resp, source)] = self.receiver.responses
        self.assertIs(source.connection, proto)

    def test_responseNotOurs(self):
        """A response whose top Via sent-by port is not ours is discarded (§18.1.2)."""
        self.datagram(response(sentBy="192.0.2.10:5999"))
        self.assertEqual(self.receiver.responses, [])

    def test_keepAlive(self):
        """CRLF keep-alive datagrams are ignored."""
        self.datagram(b"\r\n\r\n")
        self.datagram(b"\r\n")
        self.assertEqual((self.receiver.requests, self.written), ([], []))

    def test_garbage(self):
        """A datagram that is not SIP is dropped without an answer."""
        for data in [b"hello world", b"\x00\x01\x00\x00!\x12\xa4B" + b"x" * 12, b"\xff\xfe",
                     b"INVITE\r\n\r\n", b"SIP/2.0\r\n"]:
            self.datagram(data)
        self.assertEqual((self.receiver.requests, self.written), ([], []))
        self.assertEqual(self.flushLoggedErrors(), [])

    def test_malformedRequest(self):
        """
        An unparseable request is answered statelessly with the parse
        error's status and reason, copying Via (with received), From, To
        (plus a tag), Call-ID and CSeq, and sent per §18.2.2.
        """
        bad = invite().replace(b"Max-Forwards: 70", b"Max-Forwards: abc")
        error = parseError(bad)
        self.datagram(bad)
        self.assertEqual(self.receiver.requests, [])
        [(data, addr)] = self.written
        self.assertEqual(addr, ("192.0.2.1", 5066))
        resp = parseMessage(data)
        self.assertEqual(resp.status, 400)
        self.assertEqual(resp.reason, error.reason)
        self.assertEqual(resp.topVia.received, "192.0.2.1")
        self.assertEqual(resp.topVia.branch, "z9hG4bK776asdhds")
        self.assertEqual(resp.fromAddr.tag, "1928301774")
        self.assertIsNotNone(resp.toAddr.tag)
        self.assertEqual(resp.callId, "a84b4c76e66710@pc33.example.com")
        self.assertEqual(resp.cseq, (314159, "INVITE"))
        self.assertNotIn("Max-Forwards", resp.headers)
        self.assertNotIn("Contact", resp.headers)

    def test_malformedRequestMissingHeader(self):
        """A request missing Call-ID is answered with what was recovered."""
        error = parseError(NO_CALL_ID)
        self.datagram(NO_CALL_ID)
        [(data, addr)] = self.written
        self.assertEqual(addr, ("192.0.2.1", 5066))
        head = data.split(b"\r\n")
        self.assertEqual(head[0], b"SIP/2.0 400 " + error.reason.encode())
        self.assertIn(b"Via: SIP/2.0/UDP pc33.example.com:5066;branch=z9hG4bKbad"
                      b";received=192.0.2.1", head)
        self.assertIn(b"CSeq: 7 OPTIONS", head)
        [to] = [line for line in head if line.startswith(b"To: ")]
        self.assertRegex(to, rb"^To: <sip:bob@example.com>;tag=[0-9a-f]+$")

    def test_malformedRequestRport(self):
        """The stateless error response honours rport (RFC 3581)."""
        bad = invite(viaParams=";rport").replace(b"Max-Forwards: 70", b"Max-Forwards: abc")
        self.datagram(bad, ("192.0.2.1", 1024))
        [(data, addr)] = self.written
        self.assertEqual(addr, ("192.0.2.1", 1024))
        self.assertEqual(parseMessage(data).topVia.rport, 1024)

    def test_malformedRequestBadVia(self):
        """With an unparseable Via, the error goes back to the packet's source."""
        bad = NO_CALL_ID.replace(b"pc33.example.com:5066", b"pc33 example com")
        self.datagram(bad, ("192.0.2.1", 1024))
        [(data, addr)] = self.written
        self.assertEqual(addr, ("192.0.2.1", 1024))
        self.assertTrue(data.startswith(b"SIP/2.0 400 "))

    def test_wrongVersion(self):
        """A request with a wrong SIP version gets 505."""
        self.datagram(WRONG_VERSION)
        [(data, _)] = self.written
        self.assertEqual(data[:12], b"SIP/2.0 505 ")

    def test_malformedAck(self):
        """An unparseable ACK is never answered."""
        self.datagram(NO_CALL_ID.replace(b"OPTIONS", b"ACK"))
        self.assertEqual(self.written, [])

    def test_malformedResponse(self):
        """An unparseable response is dropped and logged with its source."""
        self.datagram(response().replace(b"Call-ID: a84b4c76e66710\r\n", b""), ("192.0.2.30", 5060))
        self.assertEqual((self.receiver.responses, self.written), ([], []))
        sources = [str(e.get("source")) for e in self.log if "source" in e]
        self.assertIn("UDP:192.0.2.30:5060", sources)

    def test_receiverFails(self):
        """An exception in the receiver is logged, never raised."""

        def boom(request, source):
            raise RuntimeError("boom")

        self.receiver.requestReceived = boom
        self.datagram(invite())
        self.assertEqual(len(self.flushLoggedErrors(RuntimeError)), 1)

    def test_noReceiver(self):
        """Without a receiver, messages are dropped."""
        self.layer.receiver = None
        self.datagram(invite())
        self.datagram(response())
        self.assertEqual(self.written, [])


# --------------------------------------------------------------------------
# §18.2.2 routing
# --------------------------------------------------------------------------


def via(text):
    return parseVia(text)[0]


class ResponseDestinationTests(SynchronousTestCase):
    """
    L{SIPTransportLayer.responseDestination}: over UDP always the packet's
    source (RFC 3581 behaviour), never an address the sender wrote in its
    Via (the deviation from §18.2.2 of docs/security.rst).
    """

    source = Source("UDP", "198.51.100.7", 33333)

    def dest(self, text, source=None):
        return SIPTransportLayer.responseDestination(via(text), source or self.source)

    def test_received(self):
        """A C{received} and a sent-by port are not used: the source IP and port are."""
        self.assertEqual(self.dest("SIP/2.0/UDP pc.example.com:5066;received=198.51.100.7"),
                         Address("UDP", "198.51.100.7", 33333))

    def test_sentBy(self):
        """Without C{received}, still the source, not the sent-by host and port."""
        self.assertEqual(self.dest("SIP/2.0/UDP 198.51.100.9:5070;branch=z9hG4bK1"),
                         Address("UDP", "198.51.100.7", 33333))

    def test_rport(self):
        """A valued C{rport} and C{received} written by the sender are ignored."""
        self.assertEqual(
            self.dest("SIP/2.0/UDP 10.0.0.1:5060;rport=5080;received=203.0.113.9"),
            Address("UDP", "198.51.100.7", 33333),
        )

    def test_rportUnfilled(self):
        """An empty rport means the source IP and port."""
        self.assertEqual(self.dest("SIP/2.0/UDP 10.0.0.1:5060;rport"),
                         Address("UDP", "198.51.100.7", 33333))

    def test_forgedReceived(self):
        """
        A C{received} naming a third party (the finding: one INVITE sent 12
        packets to 203.0.113.9) is not where the response goes.
        """
        self.assertEqual(
            self.dest("SIP/2.0/UDP 198.51.100.7:5060;received=203.0.113.9;branch=z9hG4bK1"),
            Address("UDP", "198.51.100.7", 33333),
        )

    def test_maddr(self):
        """C{maddr} is ignored too (no multicast or third-party reflection)."""
        self.assertEqual(
            self.dest("SIP/2.0/UDP pc.example.com:5070;maddr=239.255.255.1;ttl=1"
                      ";received=198.51.100.7"),
            Address("UDP", "198.51.100.7", 33333),
        )

    def test_reliable(self):
        """
        Reliable, when the connection is gone: a new connection to the
        source IP at the sent-by port (5061 default for TLS); neither
        C{received} nor C{maddr} nor the sent-by host.
        """
        tcp = Address("TCP", "198.51.100.7", 40000)
        tls = Address("TLS", "198.51.100.7", 40000)
        self.assertEqual(self.dest("SIP/2.0/TCP pc.example.com:5070;received=203.0.113.9", tcp),
                         Address("TCP", "198.51.100.7", 5070))
        self.assertEqual(self.dest("SIP/2.0/TLS pc.example.com;received=198.51.100.7", tls),
                         Address("TLS", "198.51.100.7", 5061))
        self.assertEqual(self.dest("SIP/2.0/TCP pc.example.com;maddr=239.1.1.1", tcp),
                         Address("TCP", "198.51.100.7", 5060))

    def test_transportOfArrival(self):
        """
        A request that came over UDP is answered over UDP whatever its Via
        says (RFC 4475 §3.1.1.10).
        """
        self.assertEqual(self.dest("SIP/2.0/TCP pc.example.com:5070;received=198.51.100.7"),
                         Address("UDP", "198.51.100.7", 33333))
        self.assertEqual(self.dest("SIP/2.0/TLS pc.example.com;received=198.51.100.7"),
                         Address("UDP", "198.51.100.7", 33333))


class UDPSendTests(TransportTestMixin, SynchronousTestCase):
    """Sending over UDP."""

    def receive(self, data=None, source=("192.0.2.1", 5066)):
        self.datagram(data or invite(), source)
        return self.receiver.requests[-1]

    def test_responseToReceived(self):
        """A response goes to the packet's source IP and port."""
        request, source = self.receive()
        d = self.layer.sendResponse(request.createResponse(180, toTag="t1"), source)
        self.assertIsNone(self.successResultOf(d))
        [(data, addr)] = self.written
        self.assertEqual(addr, ("192.0.2.1", 5066))
        self.assertTrue(data.startswith(b"SIP/2.0 180 "))

    def test_responseRport(self):
        """With rport the response goes to the source IP and port (RFC 3581)."""
        request, source = self.receive(invite(viaParams=";rport"), ("192.0.2.1", 1024))
        self.layer.sendResponse(request.createResponse(200, toTag="t1"), source)
        self.assertEqual(self.written[0][1], ("192.0.2.1", 1024))

    def test_responseForeignViaHostIgnored(self):
        """A host only written in the Via is not used when C{received} is there."""
        request, source = self.receive(invite(sentBy="203.0.113.99:5066"))
        self.layer.sendResponse(request.createResponse(200, toTag="t1"), source)
        self.assertEqual(self.written[0][1], ("192.0.2.1", 5066))

    def test_responseNotToForgedVia(self):
        """
        A C{received} and a C{maddr} the sender wrote in its Via (a third
        party), and a sent-by port that is not the source port: the response
        (and a stateless 400) go to the packet's source only.
        """
        forged = invite(sentBy="192.0.2.1:5060", viaParams=";received=203.0.113.9"
                        ";maddr=203.0.113.8")
        request, source = self.receive(forged, ("192.0.2.1", 40000))
        self.layer.sendResponse(request.createResponse(486, toTag="t1"), source)
        self.datagram(forged.replace(b"CSeq: 314159 INVITE", b"CSeq: x INVITE"),
                      ("192.0.2.1", 40000))
        self.assertEqual([addr for _, addr in self.written], [("192.0.2.1", 40000)] * 2)
        self.assertTrue(self.written[1][0].startswith(b"SIP/2.0 400 "))

    def test_responseWithoutVia(self):
        """A response without Via fails with L{TransportError}, not an exception."""
        d = self.layer.sendResponse(Response(200), Source("UDP", "192.0.2.1", 5060))
        self.failureResultOf(d, TransportError)

    def test_request(self):
        """A request is one datagram to the destination."""
        request = parseMessage(invite())
        d = self.layer.sendRequest(request, Address("UDP", "192.0.2.44", 5080))
        self.assertIsNone(self.successResultOf(d))
        self.assertEqual(self.written, [(request.toBytes(), ("192.0.2.44", 5080))])

    def test_requestSocketError(self):
        """A socket error becomes a L{TransportError}."""
        self.udp.transport.error = OSError("Message too long")
        d = self.layer.sendRequest(parseMessage(invite()), Address("UDP", "192.0.2.44", 5080))
        self.failureResultOf(d, TransportError)

    def test_requestNoUDPSocket(self):
        """Without a UDP socket, sending over UDP fails with L{TransportError}."""
        layer = SIPTransportLayer(FakeReactor())
        d = layer.sendRequest(parseMessage(invite()), Address("UDP", "192.0.2.44", 5080))
        self.failureResultOf(d, TransportError)

    def test_requestHostname(self):
        """A host name is resolved first; a resolution failure is a L{TransportError}."""
        names = {"sip.example.com": "192.0.2.77"}

        def resolve(name, timeout=10):
            if name in names:
                return succeed(names[name])
            return fail(OSError("NXDOMAIN"))

        self.reactor.resolve = resolve
        request = parseMessage(invite())
        self.successResultOf(self.layer.sendRequest(request, Address("UDP", "sip.example.com", 5060)))
        self.assertEqual(self.written[0][1], ("192.0.2.77", 5060))
        d = self.layer.sendRequest(request, Address("UDP", "nx.example.com", 5060))
        self.failureResultOf(d, TransportError)


# --------------------------------------------------------------------------
# Streams
# --------------------------------------------------------------------------


class StreamReceiveTests(TransportTestMixin, SynchronousTestCase):
    """TCP/TLS in: framing, keep-alives, errors, registration."""

    def feed(self, proto, data):
        proto.dataReceived(data)

    def setUp(self):
        super().setUp()
        self.factory = self.listenTCP()
        self.proto, self.tr = self.connect(self.factory)

    def test_request(self):
        """A framed request is delivered with the connection in its source."""
        self.feed(self.proto, invite("TCP"))
        [(request, source)] = self.receiver.requests
        self.assertEqual(request.method, "INVITE")
        self.assertEqual(source, Address("TCP", "192.0.2.1", 40000))
        self.assertIs(source.connection, self.proto)

    def test_twoMessages(self):
        """Two messages in the stream are two deliveries."""
        self.feed(self.proto, invite("TCP") + invite("TCP").replace(b"314159", b"314160"))
        self.assertEqual([r.cseq.number for r, _ in self.receiver.requests], [314159, 314160])

    def test_body(self):
        """The body is framed by Content-Length."""
        data = invite("TCP").replace(b"Content-Length: 0\r\n\r\n",
                                     b"Content-Type: application/sdp\r\nContent-Length: 4\r\n\r\nv=0\n")
        self.feed(self.proto, data + b"\r\n\r\n")
        [(request, _)] = self.receiver.requests
        self.assertEqual(request.body, b"v=0\n")

    def test_ping(self):
        """A double-CRLF ping gets a single CRLF pong (RFC 5626 §4.4.1)."""
        self.feed(self.proto, b"\r\n\r\n")
        self.assertEqual(self.tr.value(), b"\r\n")

    def test_pingAfterMessage(self):
        """A ping right after a message is answered too."""
        self.feed(self.proto, invite("TCP"))
        self.feed(self.proto, b"\r\n\r\n")
        self.assertEqual(self.tr.value(), b"\r\n")
        self.assertEqual(len(self.receiver.requests), 1)

    def test_pingBetweenMessages(self):
        """A ping between two messages in one chunk is answered once."""
        self.feed(self.proto, invite("TCP") + b"\r\n\r\n" + invite("TCP") + b"\r\n\r\n\r\n\r\n")
        self.assertEqual(self.tr.value(), b"\r\n" * 3)
        self.assertEqual(len(self.receiver.requests), 2)

    def test_pingAfterBody(self):
        """A ping after a message with a body is answered."""
        data = invite("TCP").replace(b"Content-Length: 0\r\n\r\n",
                                     b"Content-Length: 4\r\n\r\nv=0\n")
        self.feed(self.proto, data + b"\r\n\r\n")
        self.feed(self.proto, data[:10])
        self.feed(self.proto, data[10:] + b"\r\n\r\n")
        self.assertEqual(self.tr.value(), b"\r\n\r\n")
        self.assertEqual(len(self.receiver.requests), 2)

    def test_singleCRLF(self):
        """A lone CRLF is skipped without an answer."""
        self.feed(self.proto, b"\r\n")
        self.feed(self.proto, invite("TCP"))
        self.assertEqual(self.tr.value(), b"")
        self.assertEqual(len(self.receiver.requests), 1)

    def test_responseOnConnection(self):
        """The response goes back on the connection the request came on."""
        self.feed(self.proto, invite("TCP"))
        request, source = self.receiver.requests[0]
        self.layer.sendResponse(request.createResponse(200, toTag="x"), source)
        self.assertTrue(self.tr.value().startswith(b"SIP/2.0 200 "))
        self.assertEqual(self.written, [])

    def test_registeredForRequests(self):
        """An inbound connection is reused for requests to its source address."""
        self.assertIs(self.layer.connectionTo(Address("TCP", "192.0.2.1", 40000)), self.proto)
        request = parseMessage(invite("TCP"))
        self.successResultOf(self.layer.sendRequest(request, Address("TCP", "192.0.2.1", 40000)))
        self.assertEqual(self.tr.value(), request.toBytes())
        self.assertEqual(self.reactor.tcpClients, [])

    def test_unregisteredOnClose(self):
        """A closed connection is forgotten."""
        self.tr.loseConnection()
        self.assertIsNone(self.layer.connectionTo(Address("TCP", "192.0.2.1", 40000)))

    def test_malformedRequest(self):
        """An unparseable framed request gets its error response on the connection."""
        self.feed(self.proto, NO_CALL_ID.replace(b"/UDP", b"/TCP"))
        self.assertTrue(self.tr.value().startswith(b"SIP/2.0 400 "))
        self.assertTrue(self.tr.connected)
        self.assertEqual(self.receiver.requests, [])

    def test_framingError(self):
        """A framing error closes the connection after a best-effort 400."""
        data = invite("TCP").replace(b"Content-Length: 0", b"Content-Length: -5")
        self.feed(self.proto, data)
        self.assertFalse(self.tr.connected)
        self.assertEqual(self.receiver.requests, [])
        resp = parseMessage(self.tr.value())
        self.assertEqual((resp.status, resp.reason), (400, "Bad Request (Negative Content-Length)"))
        self.assertEqual(resp.topVia.received, "192.0.2.1")
        self.assertIsNone(self.layer.connectionTo(Address("TCP", "192.0.2.1", 40000)))

    def test_framingErrorAfterMessage(self):
        """
        A whole request framed before an unframeable one in the same chunk is
        still delivered; then the 400 and the close.
        """
        bad = invite("TCP").replace(b"Content-Length: 0", b"Content-Length: x")
        self.feed(self.proto, invite("TCP") + bad)
        self.assertEqual([r.method for r, _ in self.receiver.requests], ["INVITE"])
        self.assertTrue(self.tr.value().startswith(b"SIP/2.0 400 "))
        self.assertFalse(self.tr.connected)

    def test_garbageStream(self):
        """Garbage on a stream never raises out of the protocol."""
        self.feed(self.proto, b"\x00\x01garbage\r\n\r\n")
        self.assertEqual(self.receiver.requests, [])
        self.assertEqual(self.flushLoggedErrors(), [])


class StreamReceiveByteByByteTests(StreamReceiveTests):
    """The same, fed one byte at a time."""

    def feed(self, proto, data):
        for i in range(len(data)):
            proto.dataReceived(data[i:i + 1])


class TLSFailureLogTests(TransportTestMixin, SynchronousTestCase):
    """A TLS connection lost to an OpenSSL error (a refused certificate) is logged."""

    def lose(self, reason, transportName="TLS"):
        proto, tr = self.connect(SIPStreamFactory(self.layer, transportName))
        proto.connectionLost(reason)
        return [e for e in self.log if "TLS connection" in e.get("log_format", "")]

    def test_certificateRefused(self):
        """An OpenSSL error on a TLS connection is a warning naming the peer."""
        from OpenSSL.SSL import Error

        error = Error([("SSL routines", "", "certificate verify failed")])
        [event] = self.lose(Failure(error))
        self.assertEqual(event["log_level"].name, "warn")
        self.assertEqual(event["peer"], Address("TLS", "192.0.2.1", 40000))
        self.assertIs(event["error"], error)

    def test_cleanClose(self):
        """A clean close, or a TCP connection, logs no TLS failure."""
        from OpenSSL.SSL import Error
        from twisted.internet.error import ConnectionDone

        self.assertEqual(self.lose(Failure(ConnectionDone())), [])
        self.assertEqual(self.lose(Failure(Error([])), transportName="TCP"), [])


class StreamSendTests(TransportTestMixin, SynchronousTestCase):
    """TCP/TLS out: connecting, reuse, failures, and responses when the connection closed."""

    def completeConnection(self, index=-1, peer=None):
        """Finish the connection attempt C{index} with a L{StringTransport}."""
        host, port, factory, _, _ = self.reactor.tcpClients[index]
        proto = factory.buildProtocol(None)
        tr = StringTransportWithDisconnection(
            hostAddress=IPv4Address("TCP", "192.0.2.10", 50000),
            peerAddress=IPv4Address("TCP", *(peer or (host, port))),
        )
        tr.protocol = proto
        proto.makeConnection(tr)
        return tr

    def test_connectAndReuse(self):
        """The first request opens a connection; later ones reuse it."""
        request = parseMessage(invite("TCP"))
        destination = Address("TCP", "192.0.2.50", 5060)
        d1 = self.layer.sendRequest(request, destination)
        d2 = self.layer.sendRequest(request, destination)
        self.assertNoResult(d1)
        self.assertEqual(len(self.reactor.tcpClients), 1)
        self.assertEqual(self.reactor.tcpClients[0][:2], ("192.0.2.50", 5060))
        tr = self.completeConnection()
        self.successResultOf(d1)
        self.successResultOf(d2)
        self.successResultOf(self.layer.sendRequest(request, destination))
        self.assertEqual(tr.value(), request.toBytes() * 3)
        self.assertEqual(len(self.reactor.tcpClients), 1)

    def test_connectFails(self):
        """A refused connection fails every waiting send with L{TransportError}."""
        d = self.layer.sendRequest(parseMessage(invite("TCP")), Address("TCP", "192.0.2.50", 5060))
        factory = self.reactor.tcpClients[0][2]
        factory.clientConnectionFailed(self.reactor.connectors[0], Failure(ConnectionRefusedError()))
        self.failureResultOf(d, TransportError)

    def test_reconnectAfterClose(self):
        """After the connection closes, the next send opens a new one."""
        destination = Address("TCP", "192.0.2.50", 5060)
        request = parseMessage(invite("TCP"))
        self.layer.sendRequest(request, destination)
        tr = self.completeConnection()
        tr.loseConnection()
        self.layer.sendRequest(request, destination)
        self.assertEqual(len(self.reactor.tcpClients), 2)

    def test_tls(self):
        """TLS connects over TCP to the destination (certificate checked by TLS)."""
        self.layer.sendRequest(parseMessage(invite("TLS")), Address("TLS", "192.0.2.50", 5061))
        self.assertEqual(self.reactor.tcpClients[0][:2], ("192.0.2.50", 5061))

    def test_responseAfterClose(self):
        """
        When the request's connection closed, the response opens a new one
        to C{received} and the sent-by port (§18.2.2).
        """
        factory = self.listenTCP()
        proto, tr = self.connect(factory, peer=("192.0.2.1", 40000))
        proto.dataReceived(invite("TCP", sentBy="pc33.example.com:5070"))
        request, source = self.receiver.requests[0]
        tr.loseConnection()
        d = self.layer.sendResponse(request.createResponse(200, toTag="x"), source)
        self.assertEqual(self.reactor.tcpClients[0][:2], ("192.0.2.1", 5070))
        tr2 = self.completeConnection()
        self.successResultOf(d)
        self.assertTrue(tr2.value().startswith(b"SIP/2.0 200 "))

    def test_responseReusesOtherConnection(self):
        """A closed source connection falls back to another open one to the same peer."""
        factory = self.listenTCP()
        proto, tr = self.connect(factory)
        proto.dataReceived(invite("TCP"))
        request, source = self.receiver.requests[0]
        stale = Source("TCP", source.host, source.port, connection=None)
        self.layer.sendResponse(request.createResponse(200, toTag="x"), stale)
        self.assertTrue(tr.value().startswith(b"SIP/2.0 200 "))

    def test_close(self):
        """C{close} stops the ports, drops connections and fails pending sends."""
        factory = self.listenTCP()
        proto, tr = self.connect(factory)
        d = self.layer.sendRequest(parseMessage(invite("TCP")), Address("TCP", "192.0.2.50", 5060))
        self.successResultOf(self.layer.close())
        self.assertTrue(self.udp.stopped)
        self.assertFalse(tr.connected)
        self.failureResultOf(d, TransportError)
        self.assertEqual(self.layer.listeningAddresses(), [])


class IdleTests(TransportTestMixin, SynchronousTestCase):
    """Stream connections close after C{idleTimeout} seconds without traffic."""

    def setUp(self):
        super().setUp()
        self.proto, self.tr = self.connect(self.listenTCP())

    def test_idleClose(self):
        """60 s without traffic close the connection."""
        self.reactor.advance(59.9)
        self.assertTrue(self.tr.connected)
        self.reactor.advance(0.1)
        self.assertFalse(self.tr.connected)

    def test_trafficKeepsOpen(self):
        """Traffic in or out restarts the idle time."""
        self.reactor.advance(50)
        self.proto.dataReceived(b"\r\n\r\n")
        self.reactor.advance(50)
        self.assertTrue(self.tr.connected)
        self.proto.send(b"\r\n")
        self.reactor.advance(59)
        self.assertTrue(self.tr.connected)
        self.reactor.advance(1)
        self.assertFalse(self.tr.connected)
        self.assertEqual(self.reactor.getDelayedCalls(), [])

    def test_configurable(self):
        """The idle time is configurable; C{None} never closes."""
        self.tr.loseConnection()
        self.layer.idleTimeout = 5
        proto, tr = self.connect(self.layer_factory())
        self.reactor.advance(5)
        self.assertFalse(tr.connected)
        self.layer.idleTimeout = None
        proto, tr = self.connect(self.layer_factory())
        self.reactor.advance(3600)
        self.assertTrue(tr.connected)

    def layer_factory(self):
        return self.reactor.tcpServers[-1][1]

    def test_heldByDialog(self):
        """
        A connection held by a dialog stays open however long it is quiet;
        once released, the idle time counts from the release.
        """
        self.proto.hold()
        self.reactor.advance(3600)
        self.assertTrue(self.tr.connected)
        self.proto.release()
        self.reactor.advance(59)
        self.assertTrue(self.tr.connected)
        self.reactor.advance(60)
        self.assertFalse(self.tr.connected)

    def test_isStreamProtocol(self):
        """Inbound connections are L{SIPStreamProtocol}s."""
        self.assertIsInstance(self.proto, SIPStreamProtocol)
        self.assertEqual(self.proto.transportName, "TCP")


# --------------------------------------------------------------------------
# A real socket
# --------------------------------------------------------------------------


class LoopbackUDPTests(TestCase):
    """One real UDP socket on 127.0.0.1: listen, send to ourselves, receive."""

    def test_loopback(self):
        """A request sent to our own port arrives at the receiver."""
        from twisted.internet import reactor

        received = Deferred()

        class Receiver:
            def requestReceived(self, request, source):
                received.callback((request, source))

            def responseReceived(self, response, source):
                pass

        layer = SIPTransportLayer(reactor, receiver=Receiver())
        d = layer.listen("udp:0:interface=127.0.0.1")

        def listening(port):
            self.addCleanup(layer.close)
            here = port.getHost()
            data = invite(sentBy="127.0.0.1:%d" % (here.port,))
            return layer.sendRequest(parseMessage(data), Address("UDP", "127.0.0.1", here.port))

        def check(result):
            request, source = result
            self.assertEqual(request.method, "INVITE")
            self.assertEqual(source.host, "127.0.0.1")
            self.assertIsNone(request.topVia.received)

        d.addCallback(listening)
        d.addCallback(lambda _: received)
        d.addCallback(check)
        return d



class ObserverTests(TransportTestMixin, SynchronousTestCase):
    """Message observers see every message parsed in and sent out."""

    def test_inAndOut(self):
        """A received request and the response sent are both observed, with their bytes."""
        seen = []
        self.layer.observers.append(lambda *args: seen.append(args))
        self.datagram(invite(), ("192.0.2.1", 5066))
        request, source = self.receiver.requests[-1]
        self.layer.sendResponse(request.createResponse(180, toTag="t1"), source)
        self.assertEqual([(d, type(m).__name__) for d, m, _, _ in seen],
                         [("in", "Request"), ("out", "Response")])
        self.assertTrue(seen[1][2].startswith(b"SIP/2.0 180"))

    def test_observerFails(self):
        """An observer that raises does not stop the message."""
        self.layer.observers.append(lambda *args: 1 / 0)
        self.datagram(invite(), ("192.0.2.1", 5066))
        self.assertEqual(len(self.receiver.requests), 1)
        self.assertEqual(len(self.flushLoggedErrors(ZeroDivisionError)), 1)


class BuiltWholeTests(SynchronousTestCase):
    """The layer above and the observers are given when the layer is built."""

    def test_receiverFactory(self):
        """C{receiverFactory} builds the receiver with the layer itself, last."""
        built = []

        def factory(layer):
            built.append((layer, layer.rateLimiter))
            return FakeReceiver()

        layer = SIPTransportLayer(FakeReactor(), receiverFactory=factory, rateLimiter="limiter")
        self.assertEqual(built, [(layer, "limiter")])
        self.assertIsInstance(layer.receiver, FakeReceiver)

    def test_observers(self):
        """The observers given at construction see the messages parsed in."""
        seen = []
        reactor = FakeReactor()
        receiver = FakeReceiver()
        layer = SIPTransportLayer(reactor, receiver=receiver,
                                  observers=[lambda *args: seen.append(args[0])])
        self.successResultOf(layer.listen("udp:5060:interface=192.0.2.10"))
        reactor.udpPorts[0].protocol.datagramReceived(invite(), ("192.0.2.1", 5066))
        self.assertEqual(seen, ["in"])
        self.assertEqual(len(receiver.requests), 1)
