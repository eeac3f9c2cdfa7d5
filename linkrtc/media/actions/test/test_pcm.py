"""Tests for L{linkrtc.media.actions.pcm} against PyAV's (FFmpeg's) codecs, which aiortc uses."""

import av
import numpy
from twisted.trial.unittest import SynchronousTestCase

from linkrtc.media.actions import pcm
from linkrtc.media.actions.test.fakes import dominant, tone


def avEncode(name, samples, rate=8000):
    codec = av.CodecContext.create(name, "w")
    codec.format, codec.layout, codec.sample_rate = "s16", "mono", rate
    frame = av.AudioFrame.from_ndarray(samples.reshape(1, -1), format="s16", layout="mono")
    frame.sample_rate, frame.pts = rate, 0
    return b"".join(bytes(p) for p in codec.encode(frame)) + \
        b"".join(bytes(p) for p in codec.encode(None))


def avDecode(name, payload, rate=8000):
    codec = av.CodecContext.create(name, "r")
    codec.format, codec.layout, codec.sample_rate = "s16", "mono", rate
    return numpy.concatenate([f.to_ndarray().reshape(-1) for f in codec.decode(av.Packet(payload))])


ALL = numpy.arange(-32768, 32768, dtype=numpy.int16)


class G711Tests(SynchronousTestCase):
    def check(self, name, decode, encode):
        codes = bytes(range(256))
        # Decoding: the same 256 values as FFmpeg's.
        self.assertEqual(decode(codes).tolist(), avDecode(name, codes).tolist())
        # Encoding every 16-bit value: FFmpeg's code or, on a decision
        # level (FFmpeg rounds to 14 bits first), the neighbouring one.
        ours = numpy.frombuffer(encode(ALL), dtype=numpy.uint8)
        theirs = numpy.frombuffer(avEncode(name, ALL), dtype=numpy.uint8)
        differ = ours != theirs
        self.assertLess(differ.mean(), 0.01)
        ourValues = decode(ours.tobytes()).astype(numpy.int32)
        theirValues = decode(theirs.tobytes()).astype(numpy.int32)
        ourError = numpy.abs(ourValues - ALL)
        theirError = numpy.abs(theirValues - ALL)
        self.assertTrue((ourError <= theirError + 4).all())
        # Round trips both ways keep a tone (SNR above 30 dB).
        signal = tone(440, 8000, 8000, amplitude=12000)
        for back in (avDecode(name, encode(signal)), decode(avEncode(name, signal))):
            noise = back.astype(numpy.float64) - signal
            snr = 10 * numpy.log10((signal.astype(numpy.float64) ** 2).sum() / (noise ** 2).sum())
            self.assertGreater(snr, 30)

    def test_ulaw(self):
        self.check("pcm_mulaw", pcm.ulawDecode, pcm.ulawEncode)
        self.assertEqual(pcm.ulawEncode(numpy.zeros(2, numpy.int16)), b"\xff\xff")

    def test_alaw(self):
        self.check("pcm_alaw", pcm.alawDecode, pcm.alawEncode)
        self.assertEqual(pcm.alawEncode(numpy.zeros(2, numpy.int16)), b"\xd5\xd5")


class CodecTests(SynchronousTestCase):
    def test_g722(self):
        """G.722 through PyAV: 16 kHz frames, 160 RTP clock units per 20 ms, a tone survives."""
        codec = pcm.PayloadCodec("G722")
        self.assertEqual((codec.rate, codec.frameSamples, codec.clockStep), (16000, 320, 160))
        signal = tone(1000, 16000, 16000)
        payloads = [codec.encode(signal[i:i + 320]) for i in range(0, 16000, 320)]
        self.assertEqual({len(p) for p in payloads}, {160})
        back = numpy.concatenate([codec.decode(p) for p in payloads])
        self.assertApproximates(dominant(back[1600:], 16000), 1000, tolerance=5)

    def test_opus(self):
        """Opus (RFC 7587): 48 kHz frames of 960 samples, a 48000 Hz RTP clock; a tone survives."""
        codec = pcm.PayloadCodec("OPUS")
        self.assertEqual((codec.rate, codec.frameSamples, codec.clockStep), (48000, 960, 960))
        signal = tone(1000, 48000, 48000)
        payloads = [codec.encode(signal[i:i + 960]) for i in range(0, 48000, 960)]
        back = numpy.concatenate([codec.decode(p) for p in payloads])
        self.assertEqual(back.dtype, numpy.int16)
        self.assertApproximates(dominant(back[4800:], 48000), 1000, tolerance=5)

    def test_unknown(self):
        self.assertRaises(ValueError, pcm.PayloadCodec, "GSM")

    def test_gain(self):
        self.assertEqual(pcm.dbGain(None), 1.0)
        self.assertAlmostEqual(pcm.dbGain(-6), 0.501, places=3)
        loud = pcm.applyGain(numpy.array([20000, -20000], numpy.int16), pcm.dbGain(12))
        self.assertEqual(loud.tolist(), [32767, -32768])

    def test_resample(self):
        """8 <-> 16 kHz keeps the frequency and the frame length."""
        up = pcm.resample(tone(440, 8000, 160), 8000, 16000)
        self.assertEqual(len(up), 320)
        self.assertApproximates(dominant(pcm.resample(tone(440, 8000, 8000), 8000, 16000), 16000),
                                440, 2)
        self.assertEqual(len(pcm.resample(tone(440, 16000, 320), 16000, 8000)), 160)
