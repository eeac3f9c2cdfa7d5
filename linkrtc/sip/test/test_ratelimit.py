"""
Tests for L{linkrtc.sip.ratelimit}: per-source flood control (issue 11,
"SIP admission": an OPTIONS flood from one source starved a second one).
"""

from twisted.internet.task import Clock
from twisted.internet.testing import EventLoggingObserver
from twisted.logger import globalLogPublisher
from twisted.trial.unittest import SynchronousTestCase

from linkrtc import metrics
from linkrtc.sip.ratelimit import ALLOW, DROP, REFUSE, SourceRateLimiter, isLoopbackText
from linkrtc.sip.test.test_transport import FakeReactor, FakeReceiver, invite
from linkrtc.sip.transport import SIPTransportLayer


def options(n, tag=None):
    """An out-of-dialog OPTIONS (a To tag when C{tag} is given), branch C{n}."""
    to = b"To: <sip:bob@example.com>" + (b";tag=" + tag.encode() if tag else b"")
    return (
        b"OPTIONS sip:bob@192.0.2.10 SIP/2.0\r\n"
        b"Via: SIP/2.0/UDP 198.51.100.7:5060;branch=z9hG4bK" + str(n).encode() + b"\r\n"
        b"Max-Forwards: 70\r\n" + to + b"\r\n"
        b"From: <sip:scan@example.com>;tag=f" + str(n).encode() + b"\r\n"
        b"Call-ID: c" + str(n).encode() + b"\r\n"
        b"CSeq: 1 OPTIONS\r\n"
        b"Content-Length: 0\r\n\r\n"
    )


def sample(name, **labels):
    return metrics.REGISTRY.get_sample_value(name, labels) or 0


class LimiterTests(SynchronousTestCase):
    """The token bucket and the ban."""

    def setUp(self):
        self.clock = Clock()
        self.limiter = SourceRateLimiter(self.clock, rate=10, burst=20, banSeconds=60)
        self.log = EventLoggingObserver.createWithCleanup(self, globalLogPublisher)

    def test_burstThenBan(self):
        """
        A source may send C{burst} at once; the next request starts a ban
        (L{REFUSE}, answered once), the following ones are dropped.
        """
        verdicts = [self.limiter.admit("198.51.100.7") for _ in range(25)]
        self.assertEqual(verdicts, [ALLOW] * 20 + [REFUSE] + [DROP] * 4)
        self.assertTrue(self.limiter.banned("198.51.100.7"))
        self.assertEqual(self.limiter.bannedSources(), ["198.51.100.7"])

    def test_otherSourceUnaffected(self):
        """A banned source does not touch another's bucket."""
        for _ in range(30):
            self.limiter.admit("198.51.100.7")
        self.assertEqual(self.limiter.admit("198.51.100.8"), ALLOW)
        self.assertFalse(self.limiter.banned("198.51.100.8"))

    def test_refill(self):
        """At the configured rate a source is never banned."""
        for _ in range(1000):
            self.assertEqual(self.limiter.admit("198.51.100.7"), ALLOW)
            self.clock.advance(0.1)

    def test_banEnds(self):
        """After C{banSeconds} the source is admitted again, with a full bucket."""
        for _ in range(21):
            self.limiter.admit("198.51.100.7")
        self.clock.advance(59)
        self.assertTrue(self.limiter.banned("198.51.100.7"))
        self.clock.advance(1)
        self.assertFalse(self.limiter.banned("198.51.100.7"))
        self.assertEqual([self.limiter.admit("198.51.100.7") for _ in range(20)], [ALLOW] * 20)

    def test_oneSecurityEventPerBan(self):
        """One C{sip_flood} security-event line and count per ban, not per packet."""
        before = sample("linkrtc_security_events_total", event="sip_flood")
        for _ in range(500):
            self.limiter.admit("198.51.100.7")
            self.limiter.banned("198.51.100.7")
        lines = [e for e in self.log if "sip_flood" in str(e.get("line", ""))]
        self.assertEqual(len(lines), 1)
        self.assertIn("security event=sip_flood source=198.51.100.7", lines[0]["line"])
        self.assertEqual(sample("linkrtc_security_events_total", event="sip_flood"), before + 1)

    def test_loopbackExempt(self):
        """Loopback is not limited by default; C{limitLoopback} limits it."""
        for _ in range(100):
            self.assertEqual(self.limiter.admit("127.0.0.1"), ALLOW)
        limiter = SourceRateLimiter(self.clock, rate=1, burst=1, limitLoopback=True)
        self.assertEqual([limiter.admit("127.0.0.2") for _ in range(2)], [ALLOW, REFUSE])

    def test_isLoopbackText(self):
        for host in ("127.0.0.1", "127.1.2.3", "::1", "::ffff:127.0.0.1"):
            self.assertTrue(isLoopbackText(host), host)
        for host in ("128.0.0.1", "10.127.0.1", "::2", "2001:db8::1"):
            self.assertFalse(isLoopbackText(host), host)

    def test_boundedTable(self):
        """Sources tracked are bounded: a flood from many addresses costs no memory past it."""
        limiter = SourceRateLimiter(self.clock, rate=1, burst=1, maxSources=100)
        for i in range(1000):
            limiter.admit(f"10.0.{i // 256}.{i % 256}")
        self.assertLessEqual(len(limiter), 100)

    def test_badSettings(self):
        self.assertRaises(ValueError, SourceRateLimiter, self.clock, rate=0)
        self.assertRaises(ValueError, SourceRateLimiter, self.clock, rate=1, burst=0.5)
        self.assertRaises(ValueError, SourceRateLimiter, self.clock, rate=1, banSeconds=0)


class TransportFloodTests(SynchronousTestCase):
    """
    The finding reproduced on a transport layer with a fake clock: 6,000
    OPTIONS in one second from one address, and a second address sending
    its own requests meanwhile.
    """

    def setUp(self):
        self.reactor = FakeReactor()
        self.receiver = FakeReceiver()
        self.limiter = SourceRateLimiter(self.reactor, rate=100, burst=200, banSeconds=30,
                                         limitLoopback=True)
        self.layer = SIPTransportLayer(self.reactor, receiver=self.receiver,
                                       rateLimiter=self.limiter)
        self.successResultOf(self.layer.listen("udp:5060:interface=192.0.2.10"))
        self.udp = self.reactor.udpPorts[0]

    def send(self, data, source):
        self.udp.protocol.datagramReceived(data, source)

    def test_floodAndWellBehaved(self):
        """
        The flooder gets through only its burst and one 503 (with
        Retry-After); the well-behaved source gets every request through.
        """
        good = 0
        for i in range(6000):
            self.send(options(i), ("198.51.100.7", 5060))
            if i % 300 == 0:
                self.send(options(100000 + i), ("198.51.100.8", 5060))
                good += 1
            self.reactor.advance(1 / 6000)
        sources = [source.host for _, source in self.receiver.requests]
        # the burst, plus what refilled while it was spent (100/s for ~1/30 s)
        self.assertTrue(200 <= sources.count("198.51.100.7") <= 204)
        self.assertEqual(sources.count("198.51.100.8"), good)
        written = self.udp.transport.written
        self.assertEqual(len(written), 1)
        data, addr = written[0]
        self.assertEqual(addr, ("198.51.100.7", 5060))
        self.assertTrue(data.startswith(b"SIP/2.0 503 "))
        self.assertIn(b"\r\nRetry-After: 30\r\n", data)

    def test_bannedNotParsed(self):
        """
        During a ban even garbage that would get a stateless 400 gets
        nothing: the datagram is dropped before parsing.
        """
        for i in range(201):
            self.send(options(i), ("198.51.100.7", 5060))
        self.assertEqual(len(self.udp.transport.written), 1)
        self.send(b"OPTIONS sip:x SIP/2.0\r\nVia: SIP/2.0/UDP h;branch=z9hG4bK1\r\n\r\n",
                  ("198.51.100.7", 5060))
        self.send(invite(), ("198.51.100.7", 5060))
        self.assertEqual(len(self.udp.transport.written), 1)
        self.assertEqual(len(self.receiver.requests), 200)

    def test_inDialogAndResponsesNotCounted(self):
        """ACK and requests with a To tag do not count against the rate."""
        for i in range(1000):
            self.send(options(i, tag="t1"), ("198.51.100.7", 5060))
        ack = invite().replace(b"INVITE sip:", b"ACK sip:").replace(b"314159 INVITE",
                                                                 b"314159 ACK")
        for _ in range(1000):
            self.send(ack, ("198.51.100.7", 5060))
        self.assertEqual(len(self.receiver.requests), 2000)
        self.assertEqual(self.limiter.bannedSources(), [])

    def test_loopbackExemptByDefault(self):
        """Without C{limitLoopback}, a loopback flood is not limited."""
        limiter = SourceRateLimiter(self.reactor, rate=1, burst=1)
        self.layer.rateLimiter = limiter
        for i in range(50):
            self.send(options(i), ("127.0.0.1", 5060))
        self.assertEqual(len(self.receiver.requests), 50)
