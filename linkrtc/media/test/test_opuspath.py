"""
Tests for the transcoder's fast path: L{linkrtc.media.opuspath} (with
libopus through L{linkrtc.media.libopus} and through PyAV) and
L{linkrtc.media.transcode.Transcoder}'s inline mode (with stubs for the
RTP session and the tap; the path between real peers is in test_bridge).
"""

import asyncio

import av
import numpy
from twisted.internet.task import Clock
from twisted.trial.unittest import SkipTest, SynchronousTestCase

from linkrtc.media import libopus
from linkrtc.media.actions.pcm import PayloadCodec, ulawDecode, ulawEncode
from linkrtc.media.opuspath import OPUS_STEP, OpusFromSIP, SIPFromOpus, browserFrameDecoder
from linkrtc.media.relay import AIORTC_SOURCE
from linkrtc.media.rtp import StreamRewriter
from linkrtc.media.test.peers import dominantFrequency, libopusContext
from linkrtc.media.transcode import FeedTrack, Transcoder


def tone(freq, rate, frames, size=None):
    """@return: C{frames} chunks of C{size} samples (20 ms by default) of a tone, C{int16}."""
    size = size or rate // 50
    t = numpy.arange(size * frames) / rate
    samples = (8000 * numpy.sin(2 * numpy.pi * freq * t)).astype(numpy.int16)
    return [samples[i * size:(i + 1) * size] for i in range(frames)]


def browserOpus(freq=880, frames=50):
    """@return: Opus payloads (20 ms, mono 48 kHz) of a tone, as a browser sends."""
    encoder = libopusContext("w", 48000, 32000)
    out = []
    for i, samples in enumerate(tone(freq, 48000, frames)):
        frame = av.AudioFrame.from_ndarray(samples.reshape(1, -1), format="s16", layout="mono")
        frame.sample_rate = 48000
        frame.pts = i * 960
        out.extend(bytes(p) for p in encoder.encode(frame))
    return out


def decodeOpus(payloads):
    """@return: the mono 48 kHz C{int16} samples of Opus C{payloads}."""
    decoder = browserFrameDecoder()
    chunks = [f.to_ndarray().reshape(-1) for p in payloads for f in decoder.decode(av.Packet(p))]
    return numpy.concatenate(chunks)


class BackendMixin:
    """Runs a test case's tests with libopus through ctypes (L{useLibopus}) or PyAV."""

    useLibopus = True

    def setUp(self):
        if self.useLibopus and libopus.LIB is None:
            raise SkipTest("no libopus.so.0 on this system (PyAV's libopus is tested)")


class OpusFromSIPMixin(BackendMixin):
    """SIP payloads to Opus, no resampling."""

    def test_pcmuTone(self):
        """One Opus packet (CELT narrowband, 20 ms) per 20 ms of PCMU; a tone stays its pitch."""
        toOpus = OpusFromSIP("PCMU", self.useLibopus)
        self.assertEqual(toOpus.rate, 8000)
        packets = []
        for samples in tone(440, 8000, 50):
            out = toOpus.encode(ulawEncode(samples))
            self.assertEqual(len(out), 1)
            packets.extend(out)
        self.assertEqual(packets[-1][0] >> 3, 19)  # RFC 6716 §3.1: CELT-only, NB, 20 ms
        samples = decodeOpus(packets)
        self.assertEqual(len(samples), 50 * 960)
        self.assertAlmostEqual(dominantFrequency(samples[-24000:], 48000), 440, delta=10)

    def test_g722Tone(self):
        """G.722 (16 kHz audio) goes into a 16 kHz encoder."""
        codec = PayloadCodec("G722")
        toOpus = OpusFromSIP("G722", self.useLibopus)
        self.assertEqual(toOpus.rate, 16000)
        packets = []
        for samples in tone(1000, 16000, 50):
            packets.extend(toOpus.encode(codec.encode(samples)))
        self.assertEqual(len(packets), 50)
        samples = decodeOpus(packets)
        self.assertAlmostEqual(dominantFrequency(samples[-24000:], 48000), 1000, delta=10)

    def test_otherPacketTimes(self):
        """30 ms payloads make 20 ms packets; the remainder waits, and L{reset} drops it."""
        toOpus = OpusFromSIP("PCMU", self.useLibopus)
        counts = [len(toOpus.encode(ulawEncode(s))) for s in tone(440, 8000, 4, size=240)]
        self.assertEqual(counts, [1, 2, 1, 2])
        self.assertEqual(len(toOpus.encode(b"\xff" * 80)), 0)
        toOpus.reset()
        self.assertEqual(len(toOpus.encode(b"\xff" * 80)), 0)
        self.assertEqual(len(toOpus.encode(b"\xff" * 80)), 1)


class OpusFromSIPTests(OpusFromSIPMixin, SynchronousTestCase):
    pass


class OpusFromSIPPyAVTests(OpusFromSIPMixin, SynchronousTestCase):
    useLibopus = False


class SIPFromOpusMixin(BackendMixin):
    """Opus to SIP payloads: decoded at the SIP rate (libopus) or resampled (PyAV)."""

    def test_pcmuTone(self):
        """Opus at 48 kHz becomes 20 ms PCMU payloads (160 bytes, 160 ticks); the tone stays."""
        fromOpus = SIPFromOpus("PCMU", self.useLibopus)
        payloads = []
        for packet in browserOpus(880, 50):
            out = fromOpus.transcode(packet)
            self.assertLessEqual(len(out), 1)
            for payload, advance in out:
                self.assertEqual((len(payload), advance), (160, 160))
                payloads.append(payload)
        self.assertGreaterEqual(len(payloads), 49)
        samples = numpy.concatenate([ulawDecode(p) for p in payloads])
        self.assertAlmostEqual(dominantFrequency(samples[-4000:], 8000), 880, delta=10)

    def test_g722(self):
        """G.722 payloads: 20 ms of 16 kHz audio each, 160 ticks of its 8 kHz RTP clock."""
        fromOpus = SIPFromOpus("G722", self.useLibopus)
        codec = PayloadCodec("G722")
        out = [pair for p in browserOpus(1000, 25) for pair in fromOpus.transcode(p)]
        self.assertGreaterEqual(len(out), 24)
        self.assertEqual({(len(p), a) for p, a in out}, {(160, 160)})
        samples = numpy.concatenate([codec.decode(p) for p, _ in out])
        self.assertAlmostEqual(dominantFrequency(samples[-4000:], 16000), 1000, delta=10)

    def test_undecodable(self):
        """A packet that is not Opus raises (the transcoder drops it)."""
        fromOpus = SIPFromOpus("PCMU", self.useLibopus)
        self.assertRaises(Exception, fromOpus.transcode, b"\x03")


class SIPFromOpusTests(SIPFromOpusMixin, SynchronousTestCase):
    pass


class SIPFromOpusPyAVTests(SIPFromOpusMixin, SynchronousTestCase):
    useLibopus = False


class LibopusTests(BackendMixin, SynchronousTestCase):
    """L{libopus}'s errors."""

    def test_badFrameLength(self):
        """libopus refuses a frame that is not 2.5, 5, 10, 20, 40 or 60 ms."""
        encoder = libopus.Encoder(8000, 32000)
        self.assertEqual(len(encoder.encode(numpy.zeros(160, numpy.int16))) > 0, True)
        self.assertRaises(libopus.LibopusError, encoder.encode, numpy.zeros(100, numpy.int16))

    def test_badRate(self):
        """libopus refuses other rates."""
        self.assertRaises(libopus.LibopusError, libopus.Encoder, 44100, 32000)
        self.assertRaises(libopus.LibopusError, libopus.Decoder, 44100)

    def test_stereoDownmixed(self):
        """A stereo stream decodes to mono: 20 ms at 8 kHz is 160 samples."""
        packet = browserOpusStereo()
        self.assertEqual(len(libopus.Decoder(8000).decode(packet)), 160)


def browserOpusStereo():
    """@return: one stereo 20 ms Opus packet."""
    encoder = av.CodecContext.create("libopus", "w")
    encoder.sample_rate = 48000
    encoder.layout = "stereo"
    encoder.format = "s16"
    frame = av.AudioFrame.from_ndarray(numpy.zeros((1, 1920), numpy.int16), format="s16",
                                       layout="stereo")
    frame.sample_rate = 48000
    frame.pts = 0
    return bytes(encoder.encode(frame)[0])


class StubRTP:
    """The L{linkrtc.media.rtp.RTPSession} calls the transcoder makes."""

    onAudio = None

    def __init__(self):
        self.sent = []

    def sendAudio(self, payload, samples, marker=False):
        self.sent.append((payload, samples))


class StubTap:
    """The L{linkrtc.media.relay.WebRTCTap} calls the transcoder makes."""

    audioPT = 111
    onPacket = None

    def __init__(self, clock):
        self.out = StreamRewriter(clock, ssrc=1234, rate=48000)
        self.sent = []

    def send(self, marker, pt, seq, ts, payload):
        self.sent.append((marker, pt, seq, ts, payload))


class InlineTranscoderTests(SynchronousTestCase):
    """L{Transcoder} with a tap, Opus in the browser and G.711 on SIP: the fast path."""

    def setUp(self):
        self.loop = asyncio.new_event_loop()
        self.addCleanup(self.loop.close)
        self.clock = Clock()
        self.rtp = StubRTP()
        self.tap = StubTap(self.clock)
        self.feed = FeedTrack()
        self.transcoder = Transcoder(self.loop, self.rtp, None, self.feed, "PCMU", tap=self.tap,
                                     webrtcCodec="OPUS")
        self.addCleanup(self.loop._default_executor.shutdown, wait=True)

    def sip(self, seq, ts, freq=440):
        payload = ulawEncode(tone(freq, 8000, 1)[0])
        self.rtp.onAudio(0, 0, seq, ts, 0xABC, payload)

    def test_chosen(self):
        """Inline only with a tap, Opus in the browser and PCMU, PCMA or G.722 on SIP."""
        self.assertTrue(self.transcoder.inline)
        for codec, webrtc, tap in [("PCMU", "OPUS", None), ("PCMU", "PCMU", self.tap),
                                   ("OPUS", "OPUS", self.tap)]:
            other = Transcoder(self.loop, self.rtp, None, FeedTrack(), codec, tap=tap,
                               webrtcCodec=webrtc)
            self.assertFalse(other.inline)
        for codec in ("PCMA", "G722"):
            self.assertTrue(Transcoder(self.loop, self.rtp, None, FeedTrack(), codec,
                                       tap=self.tap, webrtcCodec="OPUS").inline)

    def test_sipToBrowser(self):
        """
        Each SIP packet goes to the browser as one Opus packet at once; the
        feed track (silence until then) is parked from the first one; the
        timestamps advance 20 ms a packet plus the SIP stream's own gaps.
        """
        self.transcoder.start()
        self.assertFalse(self.feed._parked)
        self.sip(10, 1600)
        self.assertTrue(self.feed._parked)
        self.sip(11, 1760)
        self.sip(13, 2080)  # one packet lost
        self.sip(14, 2240)
        sent = self.tap.sent
        self.assertEqual([s[1] for s in sent], [111] * 4)
        seqs = [s[2] for s in sent]
        self.assertEqual([(b - a) & 0xFFFF for a, b in zip(seqs, seqs[1:])], [1, 1, 1])
        stamps = [s[3] for s in sent]
        self.assertEqual([(b - a) & 0xFFFFFFFF for a, b in zip(stamps, stamps[1:])],
                         [OPUS_STEP, 2 * OPUS_STEP, OPUS_STEP])
        self.assertEqual([s[4][0] >> 3 for s in sent], [19] * 4)

    def test_markerAfterAiortc(self):
        """After packets of aiortc's sender (the feed track) the next one has the marker bit."""
        self.transcoder.start()
        self.tap.out.relay(AIORTC_SOURCE, 500, 48000)
        self.sip(1, 160)
        self.sip(2, 320)
        self.assertEqual([s[0] for s in self.tap.sent], [True, False])

    def test_browserToSIP(self):
        """Opus packets are decoded and sent as PCMU; late and duplicate packets are dropped."""
        self.transcoder.start()
        packets = browserOpus(880, 10)
        for seq in [100, 101, 102, 102, 101, 103, 104, 105, 106, 107, 108, 109]:
            self.tap.onPacket(0, 111, seq, seq * 960, 0x55, packets[seq - 100])
        self.tap.onPacket(0, 96, 110, 0, 0x55, b"video")  # another payload type: ignored
        self.assertIn(len(self.rtp.sent), (9, 10))  # PyAV's resampler delay may keep one back
        self.assertEqual(self.transcoder.framesEncoded, len(self.rtp.sent))
        self.assertEqual({(len(p), n) for p, n in self.rtp.sent}, {(160, 160)})

    def test_newBrowserSource(self):
        """A new browser SSRC starts its own sequence."""
        self.transcoder.start()
        packets = browserOpus(880, 4)
        self.tap.onPacket(0, 111, 500, 0, 0x55, packets[0])
        self.tap.onPacket(0, 111, 500, 0, 0x55, packets[1])
        self.tap.onPacket(0, 111, 7, 0, 0x66, packets[2])
        self.assertEqual(self.transcoder._webrtcSource, 0x66)
        self.assertGreaterEqual(len(self.rtp.sent), 1)

    def test_muteAndTee(self):
        """Muted, nothing goes to SIP but the tee still gets each decoded frame."""
        frames = []
        self.transcoder.tee(frames.append)
        self.transcoder.mute(True)
        self.transcoder.start()
        for seq, packet in enumerate(browserOpus(880, 3)):
            self.tap.onPacket(0, 111, seq, 0, 0x55, packet)
        self.assertEqual(self.rtp.sent, [])
        self.assertEqual([f.samples for f in frames], [960] * 3)

    def test_muteToBrowser(self):
        """
        While the browser leg's actions send, the SIP audio is dropped and
        the feed track (their frames) runs; then back.
        """
        self.transcoder.start()
        self.sip(1, 160)
        self.transcoder.muteToBrowser(True)
        self.assertFalse(self.feed._parked)
        self.sip(2, 320)
        self.assertEqual(len(self.tap.sent), 1)
        self.transcoder.muteToBrowser(False)
        self.assertTrue(self.feed._parked)
        self.sip(3, 480)
        self.assertEqual(len(self.tap.sent), 2)

    def test_stop(self):
        """L{Transcoder.stop} gives back both callbacks and the feed track sends silence again."""
        self.transcoder.start()
        self.sip(1, 160)
        self.transcoder.stop()
        self.assertIsNone(self.rtp.onAudio)
        self.assertIsNone(self.tap.onPacket)
        self.assertFalse(self.feed._parked)

    def test_badAudioDropped(self):
        """What the codecs refuse is dropped, and the next packets go on."""
        self.transcoder.start()
        self.tap.onPacket(0, 111, 1, 0, 0x55, b"")
        self.tap.onPacket(0, 111, 2, 0, 0x55, b"\x03")
        self.assertEqual(self.rtp.sent, [])
        self.sip(1, 160)
        self.assertEqual(len(self.tap.sent), 1)
