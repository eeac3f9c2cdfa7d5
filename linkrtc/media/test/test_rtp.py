"""
Tests for L{linkrtc.media.rtp}: a fake datagram transport and task.Clock;
no sockets.
"""

import random
import struct

from twisted.internet import error as netError
from twisted.internet.task import Clock
from twisted.trial.unittest import SynchronousTestCase

from linkrtc.error import MediaError
from linkrtc.media.rtp import (
    PortAllocator,
    ReceiveStats,
    RTPSession,
    StreamRewriter,
    buildHeader,
    parseRTP,
)
from linkrtc.media.sdp import Codec

PCMU = Codec("PCMU", 8000, 0)
EVENT = Codec("TELEPHONE-EVENT", 8000, 101)
PHONE = ("192.0.2.7", 4000)
NAT = ("198.51.100.9", 31000)


class FakeTransport:
    def __init__(self):
        self.written = []

    def write(self, data, addr):
        self.written.append((data, addr))


class FakePort:
    def __init__(self, reactor, port):
        self.reactor = reactor
        self.port = port

    def stopListening(self):
        self.reactor.bound.discard(self.port)


class FakeReactor:
    def __init__(self, busy=()):
        self.busy = set(busy)
        self.bound = set()

    def listenUDP(self, port, protocol, interface="", maxPacketSize=8192):
        if port in self.busy or port in self.bound:
            raise netError.CannotListenError(interface, port, "busy")
        self.bound.add(port)
        return FakePort(self, port)


def packet(pt=0, seq=1, ts=160, ssrc=0x1111, payload=b"\xff" * 160, marker=0):
    return buildHeader(marker, pt, seq, ts, ssrc) + payload


def event(code, end, duration, ts, seq, ssrc=0x1111):
    return packet(101, seq, ts, ssrc, struct.pack("!BBH", code, (0x80 if end else 0) | 10,
                                                  duration))


class ParseTests(SynchronousTestCase):
    def test_roundTrip(self):
        self.assertEqual(parseRTP(packet(marker=1)), (1, 0, 1, 160, 0x1111, b"\xff" * 160))

    def test_csrcExtensionPadding(self):
        """CSRCs, a header extension and padding are skipped."""
        header = bytes([0x80 | 0x20 | 0x10 | 0x01, 0]) + struct.pack("!HII", 7, 8, 9)
        data = header + b"CSRC" + struct.pack("!HH", 0xBEDE, 1) + b"EXT!" + b"abc" + b"\x00\x02"
        self.assertEqual(parseRTP(data), (0, 0, 7, 8, 9, b"abc"))

    def test_bad(self):
        """Short, wrong version or inconsistent packets give None, never raise."""
        for bad in [b"", b"\x80" * 11, b"\x40" + b"\x00" * 20,
                    bytes([0x8F]) + b"\x00" * 20,
                    bytes([0x90]) + b"\x00" * 13,
                    bytes([0xA0]) + b"\x00" * 11 + b"\x00",
                    bytes([0xA0]) + b"\x00" * 11 + b"\x40"]:
            self.assertIsNone(parseRTP(bad), bad)


class SessionTests(SynchronousTestCase):
    def setUp(self):
        self.clock = Clock()
        self.audio = []
        self.digits = []
        self.timeouts = []
        self.session = RTPSession(
            self.clock, remote=PHONE, audio=PCMU, event=EVENT,
            onAudio=lambda *a: self.audio.append(a), onDigit=self.digits.append,
            onTimeout=lambda: self.timeouts.append(self.clock.seconds()),
            mediaTimeout=30.0, rng=random.Random(1))
        self.transport = FakeTransport()
        self.session.makeConnection(self.transport)

    def test_sendsToSdpAddressUntilLatched(self):
        self.session.sendAudio(b"\xff" * 160, 160)
        self.assertEqual(self.transport.written[-1][1], PHONE)
        self.session.datagramReceived(packet(), NAT)
        self.assertEqual(self.session.latched, NAT)
        self.session.sendAudio(b"\xff" * 160, 160)
        self.assertEqual(self.transport.written[-1][1], NAT)

    def test_latchOnlyOnValidRtp(self):
        """Non-RTP, RTP v1 and unnegotiated payload types neither latch nor pass."""
        for data in [b"junk", b"\x40" + b"\x00" * 20, packet(pt=8), packet(pt=96)]:
            self.session.datagramReceived(data, NAT)
        self.assertIsNone(self.session.latched)
        self.assertEqual(self.audio, [])
        self.assertEqual(self.session.ignored, 4)

    def test_otherSourcesIgnoredAfterLatch(self):
        self.session.datagramReceived(packet(seq=1), NAT)
        self.session.datagramReceived(packet(seq=2), ("203.0.113.66", 5))
        self.assertEqual(len(self.audio), 1)
        self.assertEqual(self.session.ignored, 1)

    def test_setRemoteUnlatches(self):
        self.session.datagramReceived(packet(), NAT)
        self.session.setRemote(("192.0.2.8", 4002))
        self.assertIsNone(self.session.latched)
        self.assertEqual(self.session.destination, ("192.0.2.8", 4002))

    def test_brokenHandlerNeverRaises(self):
        """An exception in a callback is logged, not raised out of the protocol."""
        self.session.onAudio = lambda *a: 1 / 0
        self.session.datagramReceived(packet(), NAT)
        self.assertEqual(len(self.flushLoggedErrors(ZeroDivisionError)), 1)

    def test_digitOncePerPress(self):
        """Retransmitted and end packets (three times) give one digit per key press."""
        seq = 10
        for ts, code in [(1000, 5), (2600, 5), (4200, 11)]:
            for end, duration in [(False, 160), (False, 320), (True, 480), (True, 480),
                                  (True, 480)]:
                self.session.datagramReceived(event(code, end, duration, ts, seq), NAT)
                seq += 1
        self.assertEqual(self.digits, ["5", "5", "#"])
        self.assertEqual(self.audio, [])

    def test_shortEventIgnored(self):
        self.session.datagramReceived(packet(101, payload=b"\x01"), NAT)
        self.assertEqual(self.digits, [])

    def test_sendDigits(self):
        """RFC 4733: same timestamp per event, growing duration, end bit 3 times, marker first."""
        self.session.sendDigits("1#x")
        self.clock.advance(0)
        for _ in range(40):
            self.clock.advance(0.02)
        events = [parseRTP(d) for d, a in self.transport.written]
        self.assertTrue(all(e[1] == 101 for e in events))
        byTs = {}
        for e in events:
            byTs.setdefault(e[3], []).append(e)
        self.assertEqual(len(byTs), 2)
        first, second = [byTs[k] for k in sorted(byTs)]
        self.assertEqual([e[5][0] for e in first], [1] * 7)
        self.assertEqual([e[5][0] for e in second], [11] * 7)
        self.assertEqual([struct.unpack("!H", e[5][2:])[0] for e in first],
                         [160, 320, 480, 640, 800, 800, 800])
        self.assertEqual([e[5][1] >> 7 for e in first], [0, 0, 0, 0, 1, 1, 1])
        self.assertEqual([e[0] for e in first], [1, 0, 0, 0, 0, 0, 0])
        seqs = [e[2] for e in events]
        self.assertEqual(seqs, [(seqs[0] + i) & 0xFFFF for i in range(len(seqs))])

    def test_noDigitsWithoutTelephoneEvent(self):
        self.session.setCodecs(PCMU, None)
        self.session.sendDigits("1")
        self.clock.advance(1)
        self.assertEqual(self.transport.written, [])

    def test_audioHeldDuringEvent(self):
        self.session.sendDigits("1")
        self.session.relayAudio(0, 0x2222, 1, 160, b"\xff" * 160)
        self.assertEqual([parseRTP(d)[1] for d, a in self.transport.written], [101])

    def test_notSendingOnHold(self):
        self.session.sending = False
        self.session.sendAudio(b"\xff" * 160, 160)
        self.assertEqual(self.transport.written, [])

    def test_mediaTimeout(self):
        """No RTP for 30 s after start: one timeout; packets push it back."""
        self.session.startTimeout()
        self.clock.advance(20)
        self.session.datagramReceived(packet(), NAT)
        self.clock.advance(29)
        self.assertEqual(self.timeouts, [])
        self.clock.advance(1)
        self.assertEqual(self.timeouts, [50.0])
        self.clock.advance(100)
        self.assertEqual(self.timeouts, [50.0])

    def test_timeoutPausedOnHold(self):
        self.session.startTimeout()
        self.clock.advance(10)
        self.session.pauseTimeout()
        self.clock.advance(100)
        self.assertEqual(self.timeouts, [])
        self.session.startTimeout()
        self.clock.advance(30)
        self.assertEqual(self.timeouts, [140.0])

    def test_stopCancelsEverything(self):
        self.session.startTimeout()
        self.session.sendDigits("123")
        self.session.stop()
        self.assertEqual(self.clock.getDelayedCalls(), [])

    def test_stats(self):
        for seq in (1, 2, 4, 5):
            self.clock.advance(seq * 0.02 - self.clock.seconds())
            self.session.datagramReceived(packet(seq=seq, ts=seq * 160), NAT)
        self.session.sendAudio(b"\xff" * 160, 160)
        stats = self.session.stats()
        self.assertEqual(stats["packetsReceived"], 4)
        self.assertEqual(stats["packetsLost"], 1)
        self.assertEqual(stats["packetsSent"], 1)
        self.assertEqual(stats["bytesSent"], 160)
        self.assertAlmostEqual(stats["jitterMs"], 0.0, places=3)


class ReceiveStatsTests(SynchronousTestCase):
    def test_wrapAndJitter(self):
        stats = ReceiveStats()
        for i, seq in enumerate([65534, 65535, 0, 2]):
            stats.update(1, seq, i * 160, i * 0.02 + (0.005 if i == 2 else 0), 160)
        self.assertEqual(stats.lost, 1)
        self.assertGreater(stats.jitter, 0)

    def test_newSsrcKeepsLosses(self):
        stats = ReceiveStats()
        stats.update(1, 10, 0, 0, 1)
        stats.update(1, 13, 0, 0, 1)
        stats.update(2, 500, 0, 0, 1)
        self.assertEqual(stats.lost, 2)


class RewriterTests(SynchronousTestCase):
    def test_relayKeepsGapsAndRebases(self):
        clock = Clock()
        out = StreamRewriter(clock, ssrc=7, rng=random.Random(3))
        s1, t1, m1 = out.relay(100, 10, 1000)
        s2, t2, m2 = out.relay(100, 12, 1320)
        self.assertTrue(m1)
        self.assertFalse(m2)
        self.assertEqual(((s2 - s1) & 0xFFFF, (t2 - t1) & 0xFFFFFFFF), (2, 320))
        clock.advance(0.1)
        s3, t3, m3 = out.relay(200, 5000, 99)
        self.assertTrue(m3)
        self.assertEqual((s3 - s2) & 0xFFFF, 1)
        self.assertEqual((t3 - t2) & 0xFFFFFFFF, 800)
        s4, t4 = out.local(160)
        self.assertEqual(((s4 - s3) & 0xFFFF, (t4 - t3) & 0xFFFFFFFF), (1, 160))


class FakeSocket:
    def __init__(self):
        self.sent = []
        self.error = None

    def sendto(self, data, addr):
        if self.error is not None:
            raise OSError(self.error, "fake")
        self.sent.append((data, addr))


class FakeSocketTransport(FakeTransport):
    """Like Twisted's UDP port: C{write} checks the address, C{socket} sends."""

    def __init__(self):
        FakeTransport.__init__(self)
        self.socket = FakeSocket()


class SendPathTests(SynchronousTestCase):
    """After Twisted's C{write} took a destination, packets go to the socket."""

    def setUp(self):
        self.session = RTPSession(Clock(), remote=PHONE, audio=PCMU, event=EVENT,
                                  rng=random.Random(1))
        self.transport = FakeSocketTransport()
        self.session.makeConnection(self.transport)

    def test_firstWriteThenSocket(self):
        for _ in range(3):
            self.session.sendAudio(b"\xff" * 160, 160)
        self.assertEqual([a for d, a in self.transport.written], [PHONE])
        self.assertEqual([a for d, a in self.transport.socket.sent], [PHONE, PHONE])
        self.assertEqual([parseRTP(d)[2] for d, a in self.transport.written + self.transport.socket.sent],
                         [parseRTP(self.transport.written[0][0])[2] + i for i in range(3)])
        self.assertEqual((self.session.packetsSent, self.session.bytesSent), (3, 480))

    def test_newDestinationChecked(self):
        """A latched (new) destination goes through Twisted's write first."""
        self.session.sendAudio(b"\xff" * 160, 160)
        self.session.datagramReceived(packet(), NAT)
        self.session.sendAudio(b"\xff" * 160, 160)
        self.session.sendAudio(b"\xff" * 160, 160)
        self.assertEqual([a for d, a in self.transport.written], [PHONE, NAT])
        self.assertEqual([a for d, a in self.transport.socket.sent], [NAT])

    def test_socketErrors(self):
        """
        ECONNREFUSED counts as sent (Twisted's write ignores it); any other
        error is handed to Twisted's write, as before.
        """
        import errno

        self.session.sendAudio(b"\xff" * 160, 160)
        self.transport.socket.error = errno.ECONNREFUSED
        self.session.sendAudio(b"\xff" * 160, 160)
        self.assertEqual(self.session.packetsSent, 2)
        self.transport.socket.error = errno.ENOBUFS
        self.session.sendAudio(b"\xff" * 160, 160)
        self.assertEqual(len(self.transport.written), 2)
        self.assertEqual(self.session.packetsSent, 3)


class PortAllocatorTests(SynchronousTestCase):
    def test_evenPortsRoundRobinSkippingBusy(self):
        reactor = FakeReactor(busy={20002})
        allocator = PortAllocator(reactor, 20000, 20007)
        a = allocator.listen(None, None)
        b = allocator.listen(None, None)
        self.assertEqual((a[0].port, a[1].port, b[0].port), (20000, 20001, 20004))
        self.assertEqual(allocator.inUse, {20000, 20004})
        c = allocator.listen(None, None)
        self.assertEqual(c[0].port, 20006)
        self.assertRaises(MediaError, allocator.listen, None, None)
        for port in a:
            port.stopListening()
        allocator.release(20000)
        self.assertEqual(allocator.listen(None, None)[0].port, 20000)

    def test_oddLowAndBadRange(self):
        self.assertEqual(PortAllocator(FakeReactor(), 20001, 20010).low, 20002)
        self.assertRaises(ValueError, PortAllocator, FakeReactor(), 30000, 20000)
