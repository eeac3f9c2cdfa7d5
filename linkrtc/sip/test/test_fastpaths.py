"""
Tests for the fast paths of the SIP stack (docs/performance.rst, "Fast
paths"): each gives what the slow path it skips would give.
"""

import errno

from twisted.internet.defer import Deferred
from twisted.internet.task import Clock
from twisted.trial.unittest import SynchronousTestCase

from linkrtc.error import SIPParseError, TransportError
from linkrtc.sip import address, parser
from linkrtc.sip.address import Address, Source, isIPLiteral
from linkrtc.sip.dialog import newCSeq, newTag
from linkrtc.sip.invite import _Retransmission
from linkrtc.sip.parser import parseMessage
from linkrtc.sip.routing import responseDestination
from linkrtc.sip.test.test_transport import FakeReactor
from linkrtc.sip.test.test_useragent import SDP, UserAgentMixin
from linkrtc.sip.transaction import TransactionLayer
from linkrtc.sip.transaction_server import ServerTransaction
from linkrtc.sip.transport import SIPTransportLayer
from linkrtc.sip.udp import SIPDatagramProtocol
from linkrtc.sip.uri import WILDCARD, parseNameAddr, parseVia


class FakeSocket:
    """Records C{sendto}; raises the errors queued in C{errors} first."""

    def __init__(self):
        self.sent = []
        self.errors = []

    def sendto(self, data, addr):
        if self.errors:
            raise self.errors.pop(0)
        self.sent.append((data, addr))


class FakePort:
    """A UDP port: C{write} (Twisted's checked path) and its C{socket}."""

    def __init__(self, connected=None):
        self.socket = FakeSocket()
        self.written = []
        self._connectedAddr = connected

    def write(self, data, addr):
        self.written.append((data, addr))


class DatagramSendTests(SynchronousTestCase):
    """L{SIPDatagramProtocol.send}: C{Port.write} once per host, then C{sendto}."""

    def setUp(self):
        self.proto = SIPDatagramProtocol(None)
        self.port = FakePort()
        self.proto.makeConnection(self.port)

    def test_firstThroughWrite(self):
        """The first datagram to a host goes through C{Port.write} (its checks), later ones straight to the socket."""
        self.proto.send(b"a", "192.0.2.1", 5060)
        self.proto.send(b"b", "192.0.2.1", 5062)
        self.proto.send(b"c", "192.0.2.2", 5060)
        self.assertEqual(self.port.written, [(b"a", ("192.0.2.1", 5060)),
                                             (b"c", ("192.0.2.2", 5060))])
        self.assertEqual(self.port.socket.sent, [(b"b", ("192.0.2.1", 5062))])

    def test_errorLeftToWrite(self):
        """An C{OSError} of C{sendto} (nothing sent) hands the datagram to C{Port.write}."""
        self.proto.send(b"a", "192.0.2.1", 5060)
        self.port.socket.errors.append(OSError(errno.EINTR, "interrupted"))
        self.proto.send(b"b", "192.0.2.1", 5060)
        self.assertEqual(self.port.written, [(b"a", ("192.0.2.1", 5060)),
                                             (b"b", ("192.0.2.1", 5060))])
        self.assertEqual(self.port.socket.sent, [])

    def test_writeErrorRaised(self):
        """A host whose C{Port.write} raised (a name, a wrong family) is not remembered."""
        def refuse(data, addr):
            raise ValueError("not an IP address")

        self.port.write = refuse
        self.assertRaises(ValueError, self.proto.send, b"a", "example.com", 5060)
        self.assertNotIn("example.com", self.proto._checked)

    def test_connectedNotRemembered(self):
        """A connected port always goes through C{Port.write}."""
        proto = SIPDatagramProtocol(None)
        port = FakePort(connected=("192.0.2.1", 5060))
        proto.makeConnection(port)
        proto.send(b"a", "192.0.2.1", 5060)
        proto.send(b"b", "192.0.2.1", 5060)
        self.assertEqual(len(port.written), 2)
        self.assertEqual(port.socket.sent, [])

    def test_bounded(self):
        """At most C{MAX_CHECKED} hosts are remembered."""
        self.proto.MAX_CHECKED = 3
        for i in range(5):
            self.proto.send(b"a", "192.0.2.%d" % (i,), 5060)
        self.assertLessEqual(len(self.proto._checked), 3)


class IPLiteralTests(SynchronousTestCase):
    """L{isIPLiteral}: Twisted's answer, remembered."""

    def test_answers(self):
        for host, expected in (("192.0.2.1", True), ("::1", True), ("2001:db8::1", True),
                               ("example.com", False), ("192.0.2.300", False),
                               ("[::1]", False)):
            self.assertEqual(isIPLiteral(host), expected, host)
            self.assertEqual(isIPLiteral(host), expected, host)

    def test_bounded(self):
        self.patch(address, "_IP_LITERALS", {})
        for i in range(5000):
            isIPLiteral("host%d.example.com" % (i,))
        self.assertLessEqual(len(address._IP_LITERALS), 4096)


class RetransmissionTimerTests(SynchronousTestCase):
    """
    L{_Retransmission}: the 2xx schedule of RFC 3261 §13.3.1.4 with one
    timer pending at a time.
    """

    def start(self, reliable=False):
        self.clock = Clock()
        self.sent, self.timedOut = [], []
        return _Retransmission(self.clock, 0.5, 4.0, lambda: self.sent.append(self.clock.seconds()),
                               lambda: self.timedOut.append(self.clock.seconds()), reliable)

    def test_schedule(self):
        """Sends at T1, 3*T1, 7*T1, then every T2; the timeout at 64*T1; one timer at a time."""
        self.start()
        while self.clock.seconds() < 40:
            self.assertLessEqual(len(self.clock.getDelayedCalls()), 1)
            self.clock.advance(0.25)
        self.assertEqual(self.sent, [0.5, 1.5, 3.5, 7.5, 11.5, 15.5, 19.5, 23.5, 27.5, 31.5])
        self.assertEqual(self.timedOut, [32.0])
        self.assertEqual(self.clock.getDelayedCalls(), [])

    def test_reliable(self):
        """On a reliable transport only the timeout runs."""
        self.start(reliable=True)
        self.clock.pump([0.25] * 160)
        self.assertEqual((self.sent, self.timedOut), ([], [32.0]))

    def test_stop(self):
        """L{_Retransmission.stop} (the ACK) leaves no timer and no timeout."""
        retransmission = self.start()
        self.clock.pump([0.25] * 8)
        retransmission.stop()
        self.assertEqual(self.clock.getDelayedCalls(), [])
        self.clock.pump([0.25] * 160)
        self.assertEqual((self.sent, self.timedOut), ([0.5, 1.5], []))


class LegContactTests(UserAgentMixin, SynchronousTestCase):
    """The leg makes its Contact once and writes it in every dialog response."""

    def test_contactOnce(self):
        calls = []
        localContact = self.ua.localContact

        def counting(*args):
            calls.append(args)
            return localContact(*args)

        self.ua.localContact = counting
        tx, leg = self.invite()
        leg.sendProvisional(180)
        leg.sendFinal(200, body=SDP, contentType="application/sdp")
        self.assertEqual(len(calls), 1)
        contacts = [r.headers.get("Contact") for r in tx.responses if r.status > 100]
        self.assertEqual(contacts, [str(localContact(*calls[0]))] * 2)
        self.assertEqual(str(leg.dialog.localContact), contacts[0])


class TagTests(SynchronousTestCase):
    """L{newTag} and L{newCSeq} from os.urandom."""

    def test_tag(self):
        tags = {newTag() for _ in range(100)}
        self.assertEqual(len(tags), 100)
        for tag in tags:
            self.assertEqual(len(tag), 16)
            int(tag, 16)

    def test_cseq(self):
        for _ in range(100):
            self.assertTrue(1 <= newCSeq() < 2**31)


class ResponseDestinationTests(SynchronousTestCase):
    """Over UDP L{responseDestination} is the source itself (equal to the Address it built)."""

    def test_udpSource(self):
        source = Source("UDP", "192.0.2.1", 5062, local=Address("UDP", "192.0.2.10", 5060))
        via = parseVia("SIP/2.0/UDP 198.51.100.7:5060;branch=z9hG4bK1;maddr=203.0.113.1")[0]
        self.assertIs(responseDestination(via, source), source)
        self.assertEqual(responseDestination(via, source), Address("UDP", "192.0.2.1", 5062))


class TransmitTests(SynchronousTestCase):
    """
    A transaction's send that already succeeded gets no errback; one still
    pending does, and its failure ends the transaction.
    """

    def transaction(self, result):
        layer = TransactionLayer(FakeTransport(result), Clock(), None)
        request = parseMessage(
            b"OPTIONS sip:bob@192.0.2.10 SIP/2.0\r\nVia: SIP/2.0/UDP 192.0.2.1;branch=z9hG4bK1\r\n"
            b"From: <sip:a@192.0.2.1>;tag=1\r\nTo: <sip:bob@192.0.2.10>\r\nCall-ID: c\r\n"
            b"CSeq: 1 OPTIONS\r\nContent-Length: 0\r\n\r\n")
        tx = ServerTransaction(layer, request, Address("UDP", "192.0.2.1", 5060), False)
        tx.state = "trying"
        return tx, request.createResponse(200, toTag="t")

    def test_succeeded(self):
        done = RecordingDeferred()
        done.callback(None)
        tx, response = self.transaction(done)
        self.assertTrue(tx._transmit(response))
        self.assertEqual(done.errbacks, 0)

    def test_pendingFails(self):
        pending = RecordingDeferred()
        tx, response = self.transaction(pending)
        tx._transmit(response)
        self.assertEqual(pending.errbacks, 1)
        pending.errback(TransportError("gone"))
        self.assertEqual(tx.state, "terminated")
        self.assertEqual(tx.terminationReason, "transport")


class RecordingDeferred(Deferred):
    """A L{Deferred} counting the errbacks added to it."""

    errbacks = 0

    def addErrback(self, *args, **kwargs):
        self.errbacks += 1
        return Deferred.addErrback(self, *args, **kwargs)


class FakeTransport:
    """A transport layer whose C{sendResponse} gives C{result}."""

    def __init__(self, result):
        self.result = result

    def isReliable(self, address):
        return False

    def sendResponse(self, response, source):
        return self.result


class URISchemeTests(SynchronousTestCase):
    """L{Request.uriScheme}: the scheme L{Request.uri} would give, without parsing it."""

    def test_schemes(self):
        for uri, scheme in (("sip:bob@192.0.2.10", "sip"), ("SIPS:bob@example.com", "sips"),
                            ("tel:+14155550123", "tel"), ("urn:service:sos", "urn"),
                            ("sip:[2001:db8::1]:5060", "sip")):
            data = ("OPTIONS %s SIP/2.0\r\nVia: SIP/2.0/UDP 192.0.2.1;branch=z9hG4bK1\r\n"
                    "From: <sip:a@192.0.2.1>;tag=1\r\nTo: <sip:b@192.0.2.10>\r\nCall-ID: c\r\n"
                    "CSeq: 1 OPTIONS\r\nContent-Length: 0\r\n\r\n" % (uri,)).encode()
            request = parseMessage(data)
            self.assertEqual(request.uriScheme, scheme, uri)
            parsed = (getattr(request.uri, "scheme", "") or "").lower()
            self.assertEqual(request.uriScheme, parsed, uri)


class AdvertisedAddressTests(SynchronousTestCase):
    """
    The host and port we advertise (Via, Contact) and the ports we call ours
    are computed once and again when the sockets change.
    """

    def test_listenChanges(self):
        layer = SIPTransportLayer(FakeReactor())
        self.assertEqual(layer.localContactURI("UDP").port, 5060)
        self.assertNotIn(5070, layer._ourPorts())
        self.successResultOf(layer.listen("udp:5070:interface=192.0.2.10"))
        self.assertEqual(str(layer.localContactURI("UDP")), "sip:192.0.2.10:5070")
        self.assertEqual(str(layer.localVia("UDP", "z9hG4bK1")),
                         "SIP/2.0/UDP 192.0.2.10:5070;branch=z9hG4bK1;rport")
        self.assertIn(5070, layer._ourPorts())
        self.successResultOf(layer.stopListening())
        self.assertEqual(layer.localContactURI("UDP").port, 5060)
        self.assertNotIn(5070, layer._ourPorts())

    def test_ipv6(self):
        layer = SIPTransportLayer(FakeReactor(), publicAddress="[2001:db8::1]:5062")
        self.assertEqual(str(layer.localContactURI("TCP")), "sip:[2001:db8::1]:5062;transport=tcp")
        self.assertEqual(str(layer.localContactURI("TCP")), "sip:[2001:db8::1]:5062;transport=tcp")

    def test_webSocketPort(self):
        """A WebSocket connection teaches the port of our HTTP socket."""
        layer = SIPTransportLayer(FakeReactor())
        self.assertEqual(layer.localContactURI("WS").port, 80)

        class Connection:
            transportName = "WS"
            local = Address("WS", "192.0.2.10", 8080)
            peer = Address("WS", "192.0.2.1", 40000)

        layer._connectionMade(Connection())
        self.assertEqual(layer.localContactURI("WS").port, 8080)
        self.assertIn(8080, layer._ourPorts())


def _request(fromValue="<sip:alice@192.0.2.1>;tag=1", contact="<sip:alice@192.0.2.1:5062>",
             to="<sip:bob@192.0.2.10>"):
    return parseMessage((
        "OPTIONS sip:bob@192.0.2.10 SIP/2.0\r\nVia: SIP/2.0/UDP 192.0.2.1;branch=z9hG4bK1\r\n"
        "From: %s\r\nTo: %s\r\nCall-ID: c\r\nCSeq: 1 OPTIONS\r\nContact: %s\r\n"
        "Content-Length: 0\r\n\r\n" % (fromValue, to, contact)).encode())


class RememberedAddressTests(SynchronousTestCase):
    """
    The parser remembers the parse of From, To and Contact texts; every
    message still gets addresses of its own, equal to a fresh parse.
    """

    def test_ownCopies(self):
        first, second = _request(), _request()
        self.assertEqual(first.fromAddr, parseNameAddr("<sip:alice@192.0.2.1>;tag=1"))
        self.assertEqual(second.fromAddr, first.fromAddr)
        self.assertIsNot(second.fromAddr, first.fromAddr)
        self.assertIsNot(second.fromAddr.uri, first.fromAddr.uri)
        self.assertIsNot(second.contacts[0], first.contacts[0])
        first.fromAddr.params["tag"] = "changed"
        first.contacts[0].uri.params["x"] = "y"
        third = _request()
        self.assertEqual(third.fromAddr.tag, "1")
        self.assertEqual(third.contacts[0].uri.params, {})

    def test_sameTextFromAndContact(self):
        """A text remembered as a Contact list of two is parsed again as a From."""
        two = "<sip:a@192.0.2.1>, <sip:b@192.0.2.1>"
        self.assertEqual(len(_request(contact=two).contacts), 2)
        self.assertRaises(SIPParseError, _request, fromValue=two)

    def test_wildcardAndTel(self):
        self.assertIs(_request(contact="*").contacts[0], WILDCARD)
        self.assertIs(_request(contact="*").contacts[0], WILDCARD)
        tel = _request(fromValue="<tel:+14155550123>;tag=1")
        self.assertEqual(tel.fromAddr.uri, parseNameAddr("<tel:+14155550123>").uri)
        self.assertNotIn("<tel:+14155550123>;tag=1", parser._ADDRESSES)

    def test_badNotRemembered(self):
        for _ in range(2):
            self.assertRaises(SIPParseError, _request, to="<sip:bob@192.0.2.10;tag=1")
        self.assertNotIn("<sip:bob@192.0.2.10;tag=1", parser._ADDRESSES)

    def test_bounded(self):
        self.patch(parser, "_ADDRESSES", {})
        self.patch(parser, "MAX_REMEMBERED_ADDRESSES", 5)
        for i in range(20):
            _request(fromValue="<sip:alice@192.0.2.1>;tag=%d" % (i,))
        self.assertLessEqual(len(parser._ADDRESSES), 5)
