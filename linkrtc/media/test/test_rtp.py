"""
Tests for L{linkrtc.media.rtp}: a fake datagram transport and task.Clock;
no sockets.
"""

import random
import struct

from twisted.internet import error as netError
from twisted.internet.task import Clock
from twisted.trial.unittest import SynchronousTestCase

from linkrtc import metrics
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
STRANGER = ("203.0.113.66", 40000)


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
        """We send to the SDP address, then to the source we latched to."""
        self.session.sendAudio(b"\xff" * 160, 160)
        self.assertEqual(self.transport.written[-1][1], PHONE)
        self.clock.advance(1)
        for seq in range(1, 6):
            self.session.datagramReceived(packet(seq=seq), NAT)
        self.assertEqual(self.session.latched, NAT)
        self.session.sendAudio(b"\xff" * 160, 160)
        self.assertEqual(self.transport.written[-1][1], NAT)

    def test_latchOnlyOnValidRtp(self):
        """Non-RTP, RTP v1 and unnegotiated payload types neither latch nor pass."""
        for data in [b"junk", b"\x40" + b"\x00" * 20, packet(pt=8), packet(pt=96)]:
            self.session.datagramReceived(data, PHONE)
        self.assertIsNone(self.session.latched)
        self.assertEqual(self.audio, [])
        self.assertEqual(self.session.ignored, 4)
        self.assertEqual(self.session.rejected, 0)

    def test_otherSourcesIgnoredAfterLatch(self):
        self.session.datagramReceived(packet(seq=1), PHONE)
        self.session.datagramReceived(packet(seq=2), ("203.0.113.66", 5))
        self.assertEqual(len(self.audio), 1)
        self.assertEqual(self.session.rejected, 1)

    def test_setRemoteUnlatches(self):
        self.session.datagramReceived(packet(), PHONE)
        self.session.setRemote(("192.0.2.8", 4002))
        self.assertIsNone(self.session.latched)
        self.assertEqual(self.session.destination, ("192.0.2.8", 4002))

    def test_brokenHandlerNeverRaises(self):
        """An exception in a callback is logged, not raised out of the protocol."""
        self.session.onAudio = lambda *a: 1 / 0
        self.session.datagramReceived(packet(), PHONE)
        self.assertEqual(len(self.flushLoggedErrors(ZeroDivisionError)), 1)

    def test_digitOncePerPress(self):
        """Retransmitted and end packets (three times) give one digit per key press."""
        seq = 10
        for ts, code in [(1000, 5), (2600, 5), (4200, 11)]:
            for end, duration in [(False, 160), (False, 320), (True, 480), (True, 480),
                                  (True, 480)]:
                self.session.datagramReceived(event(code, end, duration, ts, seq), PHONE)
                seq += 1
        self.assertEqual(self.digits, ["5", "5", "#"])
        self.assertEqual(self.audio, [])

    def test_shortEventIgnored(self):
        self.session.datagramReceived(packet(101, payload=b"\x01"), PHONE)
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
        self.session.datagramReceived(packet(), PHONE)
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
            self.session.datagramReceived(packet(seq=seq, ts=seq * 160), PHONE)
        self.session.sendAudio(b"\xff" * 160, 160)
        stats = self.session.stats()
        self.assertEqual(stats["packetsReceived"], 4)
        self.assertEqual(stats["packetsLost"], 1)
        self.assertEqual(stats["packetsSent"], 1)
        self.assertEqual(stats["bytesSent"], 160)
        self.assertAlmostEqual(stats["jitterMs"], 0.0, places=3)


def rejectedTotal():
    """@return: the process-wide strict-RTP drop counter (C{float})."""
    return metrics.REGISTRY.get_sample_value("linkrtc_rtp_rejected_packets_total") or 0.0


class StrictRTPTests(SynchronousTestCase):
    """
    Strict RTP (the "RTP bleed" class, CVE-2017-14099): only the SDP
    address, or a source that proved itself with in-sequence packets while
    the expected source was silent, reaches the other leg.
    """

    def setUp(self):
        self.clock = Clock()
        self.clock.advance(100)
        self.heard = []
        self.session = self.makeSession(PHONE)

    def makeSession(self, remote):
        session = RTPSession(self.clock, remote=remote, audio=PCMU, event=EVENT,
                             onAudio=lambda *a: self.heard.append(a[4]), rng=random.Random(1))
        self.transport = FakeTransport()
        session.makeConnection(self.transport)
        return session

    def send(self, addr, ssrc, seqs, step=0.02, session=None):
        """Packets of C{ssrc} from C{addr}, one every C{step} seconds."""
        for seq in seqs:
            (session or self.session).datagramReceived(
                packet(seq=seq & 0xFFFF, ts=seq * 160, ssrc=ssrc), addr)
            self.clock.advance(step)

    def test_strangerBeforePeer(self):
        """
        A stranger spraying the port before the peer talks never reaches
        the other leg, is counted (per call and in the metric), and gets
        none of our audio; the peer's first packet is taken at once.
        """
        before = rejectedTotal()
        self.send(STRANGER, 0xBAD, range(1, 11), step=0)
        self.assertEqual(self.heard, [])
        self.assertIsNone(self.session.latched)
        self.send(PHONE, 0x1111, [1])
        self.assertEqual(self.heard, [0x1111])
        self.assertEqual(self.session.latched, PHONE)
        self.send(STRANGER, 0xBAD, range(11, 21))
        self.session.sendAudio(b"\xff" * 160, 160)
        self.assertEqual({a for d, a in self.transport.written}, {PHONE})
        self.assertEqual(self.heard, [0x1111])
        self.assertEqual(self.session.rejected, 20)
        self.assertEqual(self.session.stats()["rejected"], 20)
        self.assertEqual(rejectedTotal() - before, 20)

    def test_strangerRunWhilePeerTalks(self):
        """A stranger's in-sequence run, however long, is not followed while the peer talks."""
        for seq in range(1, 201):
            self.send(PHONE, 0x1111, [seq], step=0.01)
            self.send(STRANGER, 0xBAD, [seq], step=0.01)
        self.assertEqual(self.heard, [0x1111] * 200)
        self.assertEqual(self.session.latched, PHONE)
        self.assertEqual(self.session.rejected, 200)

    def test_peerAcceptedAtOnce(self):
        """The SDP address is taken from its first packet, without probation."""
        self.send(PHONE, 0x1111, [7])
        self.assertEqual(self.heard, [0x1111])
        self.assertEqual(self.session.rejected, 0)

    def test_natRebinding(self):
        """
        The peer's NAT binding changes: the new source is followed after 5
        in-sequence packets once the old source was silent 1 s, not before.
        """
        self.send(PHONE, 0x1111, range(1, 51))
        self.clock.advance(0.5)
        self.send(NAT, 0x1111, range(51, 61))  # old source silent < 1 s: not yet
        self.assertEqual(self.session.latched, PHONE)
        self.assertEqual(len(self.heard), 50)
        self.clock.advance(1)
        # A gap restarts the run: 4 in sequence after the silence, not yet.
        self.send(NAT, 0x1111, range(62, 66))
        self.assertEqual(self.session.latched, PHONE)
        self.assertEqual(len(self.heard), 50)
        self.send(NAT, 0x1111, [66])
        self.assertEqual(self.session.latched, NAT)
        self.assertEqual(len(self.heard), 51)
        self.assertEqual(self.session.rejected, 10 + 4)
        self.send(NAT, 0x1111, range(67, 72))
        self.assertEqual(len(self.heard), 56)
        self.session.sendAudio(b"\xff" * 160, 160)
        self.assertEqual(self.transport.written[-1][1], NAT)
        # The SDP address is still taken at once.
        self.send(PHONE, 0x1111, [80])
        self.assertEqual(self.session.latched, PHONE)
        self.assertEqual(len(self.heard), 57)

    def test_runNeedsOneSsrc(self):
        """Consecutive sequence numbers under changing SSRCs are no run."""
        self.clock.advance(2)
        for seq in range(1, 20):
            self.send(STRANGER, seq, [seq])
        self.assertIsNone(self.session.latched)
        self.assertEqual(self.heard, [])

    def test_runBeforePeerSilentLongEnough(self):
        """
        The port just opened: the peer not having sent yet is not silence
        long enough, so a stranger's run is not followed before the peer
        talks; the peer is taken when it does.
        """
        self.send(STRANGER, 0xBAD, range(1, 40), step=0.02)
        self.assertIsNone(self.session.latched)
        self.send(PHONE, 0x1111, [1])
        self.assertEqual(self.session.latched, PHONE)
        self.assertEqual(self.heard, [0x1111])

    def test_privateSdpAddress(self):
        """
        The SDP names a private address but packets come from the NAT's
        public one: they are dropped for 1 s after the port opened, then
        the in-sequence source is followed.
        """
        session = self.makeSession(("10.0.0.5", 4000))
        self.send(NAT, 0x1111, range(1, 101), step=1 / 16, session=session)
        self.assertEqual(session.latched, NAT)
        self.assertEqual(session.rejected, 16)
        self.assertEqual(len(self.heard), 84)

    def test_unusableSdpAddress(self):
        """No SDP address (C{c=0.0.0.0}): the same learning applies."""
        session = self.makeSession(None)
        self.send(NAT, 0x1111, range(1, 101), step=1 / 16, session=session)
        self.assertEqual(session.latched, NAT)
        self.assertEqual(len(self.heard), 84)

    def test_holdKeepsSource(self):
        """
        A C{c=0.0.0.0} hold and the unhold to the same address keep the
        source; a new SDP address is taken at once and the old one dropped.
        """
        self.send(PHONE, 0x1111, [1])
        self.session.setRemote(None)
        self.assertIsNone(self.session.remote)
        self.send(PHONE, 0x1111, [2])
        self.session.setRemote(PHONE)
        self.send(PHONE, 0x1111, [3])
        self.assertEqual(len(self.heard), 3)
        moved = ("192.0.2.8", 4002)
        self.session.setRemote(moved)
        self.send(PHONE, 0x1111, [4])
        self.assertEqual(len(self.heard), 3)
        self.send(moved, 0x2222, [1])
        self.assertEqual(len(self.heard), 4)
        self.assertEqual(self.session.latched, moved)
        self.assertEqual(self.session.rejected, 1)

    def test_noLearningWhenPeerDoesNotSend(self):
        """
        The far end's SDP says it will not send (recvonly, inactive): its
        silence proves nothing, so no other source is followed.
        """
        self.session.setRemote(PHONE, peerSends=False)
        self.clock.advance(5)
        self.send(STRANGER, 0xBAD, range(1, 100))
        self.assertIsNone(self.session.latched)
        self.assertEqual(self.heard, [])
        self.session.setRemote(PHONE, peerSends=True)
        self.send(STRANGER, 0xBAD, range(100, 105))
        self.assertEqual(self.session.latched, STRANGER)

    def test_junkFromStrangerRejected(self):
        """Anything from another source counts as rejected, RTP or not, and is no run."""
        self.clock.advance(2)
        for data in [b"junk", packet(pt=96, seq=1), packet(pt=96, seq=2)]:
            self.session.datagramReceived(data, STRANGER)
        self.assertEqual(self.session.rejected, 3)
        self.assertEqual(self.session.ignored, 0)

    def test_sprayBoundsMemory(self):
        """A spray from many sources keeps at most a few candidates."""
        for port in range(1000):
            self.session.datagramReceived(packet(seq=port), ("203.0.113.66", port))
        self.assertLessEqual(len(self.session.guard.candidates), 8)
        self.assertEqual(self.session.rejected, 1000)


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
        self.clock = Clock()
        self.session = RTPSession(self.clock, remote=PHONE, audio=PCMU, event=EVENT,
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
        self.clock.advance(1)
        for seq in range(1, 6):
            self.session.datagramReceived(packet(seq=seq), NAT)
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

    def test_boundAndPortsInUse(self):
        """
        The range is the bound: C{capacity} pairs, C{portsInUse} counts RTP
        and RTCP, and once full C{listen} refuses with a logged line.
        """
        from twisted.logger import globalLogPublisher

        logged = []
        globalLogPublisher.addObserver(logged.append)
        self.addCleanup(globalLogPublisher.removeObserver, logged.append)
        allocator = PortAllocator(FakeReactor(), 20000, 20004)
        self.assertEqual(allocator.capacity, 2)
        self.assertEqual((allocator.portsInUse(), allocator.full), (0, False))
        allocator.listen(None, None)
        allocator.listen(None, None)
        self.assertEqual((allocator.portsInUse(), allocator.full), (4, True))
        self.assertRaises(MediaError, allocator.listen, None, None)
        self.assertTrue(any("exhausted" in e.get("log_format", "") for e in logged))
        allocator.release(20000)
        self.assertEqual((allocator.portsInUse(), allocator.full), (2, False))
        self.assertEqual(PortAllocator(FakeReactor(), 20000, 20000).capacity, 0)
        self.assertEqual(PortAllocator(FakeReactor(), 20000, 20001).capacity, 1)

    def test_oddLowAndBadRange(self):
        self.assertEqual(PortAllocator(FakeReactor(), 20001, 20010).low, 20002)
        self.assertRaises(ValueError, PortAllocator, FakeReactor(), 30000, 20000)
