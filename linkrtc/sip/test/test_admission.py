"""
SIP admission through the whole UAS stack (issue 11, "SIP admission"):
the real L{SIPTransportLayer}, L{TransactionLayer} and L{UserAgent} on a
fake datagram transport and a fake clock, with a L{linkrtc.drain.Admission}
capping calls and ringing calls per client.

The findings reproduced: 10,000 INVITEs became 10,000 ringing calls, and
each unanswered INVITE drew 12 responses.
"""

from twisted.trial.unittest import SynchronousTestCase
from zope.interface import implementer

from linkrtc.drain import Admission
from linkrtc.interfaces import IInviteHandler
from linkrtc.sip.test.test_transport import FakeReactor
from linkrtc.sip.transaction import TransactionLayer
from linkrtc.sip.transport import SIPTransportLayer
from linkrtc.sip.useragent import UserAgent

SDP = (
    b"v=0\r\no=- 1 1 IN IP4 198.51.100.7\r\ns=-\r\nc=IN IP4 198.51.100.7\r\nt=0 0\r\n"
    b"m=audio 40000 RTP/AVP 0\r\na=rtpmap:0 PCMU/8000\r\n"
)


def invite(n, host="198.51.100.7"):
    """A new INVITE (call C{n}) from C{host}."""
    return (
        b"INVITE sip:bob@192.0.2.10 SIP/2.0\r\n"
        b"Via: SIP/2.0/UDP " + host.encode() + b":5060;branch=z9hG4bKi" + str(n).encode()
        + b";rport\r\n"
        b"Max-Forwards: 70\r\n"
        b"To: <sip:bob@192.0.2.10>\r\n"
        b"From: <sip:scan@" + host.encode() + b">;tag=f" + str(n).encode() + b"\r\n"
        b"Call-ID: scan-" + str(n).encode() + b"\r\n"
        b"CSeq: 1 INVITE\r\n"
        b"Contact: <sip:scan@" + host.encode() + b":5060>\r\n"
        b"Content-Type: application/sdp\r\n"
        b"Content-Length: " + str(len(SDP)).encode() + b"\r\n\r\n" + SDP
    )


@implementer(IInviteHandler)
class RingingHandler:
    """Rings every call (180) and never answers; keeps the legs as its calls."""

    def __init__(self):
        self.calls = []

    def inviteReceived(self, leg):
        self.calls.append(leg)
        leg.sendProvisional(180)


class AdmissionStackTests(SynchronousTestCase):
    def setUp(self):
        self.reactor = FakeReactor()
        self.transport = SIPTransportLayer(self.reactor)
        self.handler = RingingHandler()
        self.admission = Admission(self.reactor, maxCalls=50, maxRingingPerClient=10)
        self.ua = UserAgent(None, self.transport, self.handler, self.reactor,
                            admission=self.admission)
        self.transactions = TransactionLayer(self.transport, self.reactor, self.ua,
                                             unknownSourceRetransmissions=2)
        self.ua.setTransactionLayer(self.transactions)
        self.transport.receiver = self.transactions
        self.successResultOf(self.transport.listen("udp:5060:interface=192.0.2.10"))
        self.udp = self.reactor.udpPorts[0]

    def send(self, data, source=("198.51.100.7", 5060)):
        self.udp.protocol.datagramReceived(data, source)

    def statuses(self, host="198.51.100.7"):
        return [int(data[8:11]) for data, addr in self.udp.transport.written
                if addr[0] == host]

    def test_ringingPerClientCapped(self):
        """
        1,000 INVITEs from one scanner: 10 ring, the rest get one 503 with
        Retry-After each (no 100 Trying, no 180, no retransmission).
        """
        for n in range(1000):
            self.send(invite(n))
        self.reactor.pump([0.5] * 80)
        self.assertEqual(len(self.handler.calls), 10)
        statuses = self.statuses()
        self.assertEqual(statuses.count(503), 990)
        self.assertEqual(statuses.count(180), 10)
        refusal = [data for data, _ in self.udp.transport.written if data[8:11] == b"503"][0]
        self.assertIn(b"\r\nRetry-After: 5\r\n", refusal)

    def test_otherClientStillRings(self):
        """A second client rings while the first is at its cap."""
        for n in range(20):
            self.send(invite(n))
        self.send(invite(100, "198.51.100.8"), ("198.51.100.8", 5060))
        self.assertEqual(len(self.handler.calls), 11)
        self.assertEqual(self.statuses("198.51.100.8"), [100, 180])

    def test_answeredNoLongerRinging(self):
        """
        A leg with a final response (an error, or a 2xx) no longer counts
        against its client's ringing cap (the per-host fast path drops it),
        and an ended leg leaves nothing behind for its host.
        """
        for n in range(10):
            self.send(invite(n))
        for leg in self.handler.calls[:3]:
            leg.sendFinal(486)
        for leg in self.handler.calls[3:5]:
            leg.sendFinal(200, body=SDP, contentType="application/sdp")
        for n in range(10, 20):
            self.send(invite(n))
        self.assertEqual(len(self.handler.calls), 15)
        self.assertEqual(self.ua._ringingFrom("198.51.100.7"), 10)
        for leg in list(self.handler.calls):
            if not leg.finalSent:
                leg.sendFinal(486)
            self.ua.legEnded(leg)
        self.assertEqual(self.ua._ringingFrom("198.51.100.7"), 0)
        self.assertEqual(self.ua._unanswered, {})

    def test_maxCalls(self):
        """Past C{maxCalls} every new INVITE gets 503, whoever sends it."""
        for client in range(6):
            host = f"198.51.100.{client + 1}"
            for n in range(10):
                self.send(invite(client * 100 + n, host), (host, 5060))
        self.assertEqual(len(self.handler.calls), 50)
        self.assertEqual(self.statuses("198.51.100.6").count(503), 10)

    def test_refusalAnsweredOnce(self):
        """An INVITE refused by admission gets exactly one response, ever."""
        self.admission.close(30)
        self.send(invite(1))
        self.reactor.pump([0.5] * 80)
        self.assertEqual(self.statuses(), [503])

    def test_unansweredScannerFewCopies(self):
        """
        A call that rings until the caller gives up... or here until the
        switch refuses it (486), to a scanner that never ACKs: the 486 and
        two copies, not ten (Timer G capped for a source that never ACKed).
        """
        self.send(invite(1))
        leg = self.handler.calls[0]
        leg.sendFinal(486)
        self.reactor.pump([0.5] * 80)
        self.assertEqual(self.statuses(), [100, 180, 486, 486, 486])


class MergeMemoryTests(SynchronousTestCase):
    """The merged-request memory (§8.2.2.2) of the user agent is bounded."""

    def test_bounded(self):
        from linkrtc.sip import useragent

        reactor = FakeReactor()
        transport = SIPTransportLayer(reactor)
        ua = UserAgent(None, transport, RingingHandler(), reactor)
        transactions = TransactionLayer(transport, reactor, ua)
        ua.setTransactionLayer(transactions)
        transport.receiver = transactions
        self.successResultOf(transport.listen("udp:5060:interface=192.0.2.10"))
        udp = reactor.udpPorts[0]
        for n in range(useragent.MAX_MERGE_MEMORY + 500):
            udp.protocol.datagramReceived(
                invite(n).replace(b"INVITE sip:", b"OPTIONS sip:", 1)
                .replace(b"1 INVITE", b"1 OPTIONS"), ("198.51.100.7", 5060))
        self.assertEqual(len(ua._recent), useragent.MAX_MERGE_MEMORY)
