# -*- test-case-name: linkrtc.media.actions.test.test_pcm -*-
"""
PCM helpers for the call-control actions: G.711 µ-law and A-law with numpy
lookup tables (ITU-T G.711), G.722 and Opus through PyAV's codecs, gains in dB and
rate conversion, all vectorised (no per-sample Python loop).

Frames are C{numpy.int16} arrays of mono samples.
"""

import av
import numpy

#: Samples per second of G.711 and of G.722's decoded audio.
RATES = {"PCMU": 8000, "PCMA": 8000, "G722": 16000, "OPUS": 48000}

#: RTP timestamp advance per 20 ms frame (RFC 3551 §4.5.2: G.722's clock is
#: 8000 Hz; RFC 7587 §4.1: Opus's is 48000 Hz).
CLOCK_STEPS = {"PCMU": 160, "PCMA": 160, "G722": 160, "OPUS": 960}

#: Frame length, seconds (20 ms: RFC 3551 §4.5 default packetisation).
FRAME_SECONDS = 0.02


def _ulawDecodeTable():
    """@return: the 256 µ-law codes' linear values (G.711 §2, table 2a), C{int16}."""
    u = ~numpy.arange(256, dtype=numpy.int32) & 0xFF
    exponent = (u >> 4) & 0x07
    mantissa = u & 0x0F
    magnitude = (((mantissa << 3) + 0x84) << exponent) - 0x84
    return numpy.where(u & 0x80, -magnitude, magnitude).astype(numpy.int16)


def _alawDecodeTable():
    """@return: the 256 A-law codes' linear values (G.711 §2, table 1a), C{int16}."""
    a = numpy.arange(256, dtype=numpy.int32) ^ 0x55
    exponent = (a >> 4) & 0x07
    mantissa = a & 0x0F
    magnitude = numpy.where(exponent == 0, (mantissa << 4) + 8,
                            ((mantissa << 4) + 0x108) << numpy.maximum(exponent - 1, 0))
    return numpy.where(a & 0x80, magnitude, -magnitude).astype(numpy.int16)


def _encodeTable(decode, zero):
    """
    @return: a 65536-entry C{uint8} table from a sample's 16 bits
        (C{int16} viewed as C{uint16}) to the code whose value is nearest
        (G.711's decision levels are the midpoints between values); a tie
        goes to the larger value, so A-law's 0 is +8 (0xD5) as in FFmpeg,
        and µ-law's 0 is C{zero}.
    """
    values = decode.astype(numpy.int32)
    codes = numpy.argsort(values, kind="stable")
    ordered = values[codes]
    unique, first = numpy.unique(ordered, return_index=True)
    uniqueCodes = codes[first]
    uniqueCodes[unique == 0] = zero
    samples = numpy.arange(-32768, 32768, dtype=numpy.int32)
    upper = numpy.clip(numpy.searchsorted(unique, samples), 1, len(unique) - 1)
    lower = upper - 1
    nearer = numpy.where(samples - unique[lower] < unique[upper] - samples, lower, upper)
    table = numpy.empty(65536, dtype=numpy.uint8)
    table[samples.astype(numpy.int16).view(numpy.uint16)] = uniqueCodes[nearer]
    return table


ULAW_DECODE = _ulawDecodeTable()
ALAW_DECODE = _alawDecodeTable()
ULAW_ENCODE = _encodeTable(ULAW_DECODE, 0xFF)
ALAW_ENCODE = _encodeTable(ALAW_DECODE, 0xD5)


def ulawDecode(payload):
    """@return: C{int16} samples of µ-law C{bytes}."""
    return ULAW_DECODE[numpy.frombuffer(payload, dtype=numpy.uint8)]


def ulawEncode(samples):
    """@return: µ-law C{bytes} of C{int16} C{samples}."""
    return ULAW_ENCODE[numpy.asarray(samples, dtype=numpy.int16).view(numpy.uint16)].tobytes()


def alawDecode(payload):
    """@return: C{int16} samples of A-law C{bytes}."""
    return ALAW_DECODE[numpy.frombuffer(payload, dtype=numpy.uint8)]


def alawEncode(samples):
    """@return: A-law C{bytes} of C{int16} C{samples}."""
    return ALAW_ENCODE[numpy.asarray(samples, dtype=numpy.int16).view(numpy.uint16)].tobytes()


def dbGain(db):
    """@return: the linear gain (C{float}) of C{db} decibels; C{None} gives 1.0."""
    return 1.0 if not db else float(10.0 ** (float(db) / 20.0))


def clip16(samples):
    """@return: C{samples} (any numeric array) clipped and cast to C{int16}."""
    return numpy.clip(samples, -32768, 32767).astype(numpy.int16)


def applyGain(samples, gain):
    """@return: C{int16} C{samples} times C{gain}, clipped (the same array when 1.0)."""
    if gain == 1.0:
        return samples
    return clip16(samples.astype(numpy.float32) * gain)


def resample(samples, fromRate, toRate):
    """
    Linear-interpolation rate conversion for live frames (8 <-> 16 kHz);
    files are converted by PyAV's resampler when loaded.

    @return: C{int16} samples at C{toRate}.
    """
    if fromRate == toRate or len(samples) == 0:
        return samples
    count = int(round(len(samples) * toRate / fromRate))
    positions = numpy.arange(count, dtype=numpy.float64) * (fromRate / toRate)
    return numpy.interp(positions, numpy.arange(len(samples)),
                        samples.astype(numpy.float64)).astype(numpy.int16)


class _G722:
    """G.722 (RFC 3551 §4.5.2: 16 kHz audio, 8 kHz RTP clock) through PyAV's codec."""

    def __init__(self):
        self._decoder = av.CodecContext.create("g722", "r")
        self._decoder.format = "s16"
        self._decoder.layout = "mono"
        self._decoder.sample_rate = 16000
        self._encoder = av.CodecContext.create("g722", "w")
        self._encoder.format = "s16"
        self._encoder.layout = "mono"
        self._encoder.sample_rate = 16000
        self._pts = 0

    def decode(self, payload):
        frames = self._decoder.decode(av.Packet(payload))
        if not frames:
            return numpy.zeros(0, dtype=numpy.int16)
        return numpy.concatenate([f.to_ndarray().reshape(-1) for f in frames])

    def encode(self, samples):
        frame = av.AudioFrame.from_ndarray(samples.reshape(1, -1), format="s16", layout="mono")
        frame.sample_rate = 16000
        frame.pts = self._pts
        self._pts += len(samples)
        return b"".join(bytes(p) for p in self._encoder.encode(frame))


class _Opus:
    """
    Opus (RFC 7587) through PyAV's libopus: mono 48 kHz frames of 20 ms
    are encoded (a mono stream is valid where C{opus/48000/2} is signalled,
    RFC 7587 §7) and any stream decoded to mono C{int16}.
    """

    def __init__(self):
        self._decoder = av.CodecContext.create("opus", "r")
        self._decoder.sample_rate = 48000
        self._decoder.layout = "mono"
        self._encoder = av.CodecContext.create("libopus", "w")
        self._encoder.format = "s16"
        self._encoder.layout = "mono"
        self._encoder.sample_rate = 48000
        self._encoder.bit_rate = 32000
        self._pts = 0

    def decode(self, payload):
        frames = self._decoder.decode(av.Packet(payload))
        if not frames:
            return numpy.zeros(0, dtype=numpy.int16)
        samples = numpy.concatenate([f.to_ndarray()[0].reshape(-1) for f in frames])
        if samples.dtype != numpy.int16:
            samples = clip16(samples.astype(numpy.float32) * 32768.0)
        return samples

    def encode(self, samples):
        frame = av.AudioFrame.from_ndarray(samples.reshape(1, -1), format="s16", layout="mono")
        frame.sample_rate = 48000
        frame.pts = self._pts
        self._pts += len(samples)
        return b"".join(bytes(p) for p in self._encoder.encode(frame))


class PayloadCodec:
    """
    One SIP leg's audio codec for the actions.

    @param name: C{"PCMU"}, C{"PCMA"}, C{"G722"} or C{"OPUS"}.
    @ivar rate: decoded sample rate, Hz.
    @ivar frameSamples: samples in 20 ms at L{rate}.
    @ivar clockStep: RTP timestamp advance per 20 ms (L{CLOCK_STEPS}).
    @raise ValueError: for another codec name.
    """

    def __init__(self, name):
        if name not in RATES:
            raise ValueError("no PCM codec for %r" % (name,))
        self.name = name
        self.rate = RATES[name]
        self.frameSamples = self.rate // 50
        self.clockStep = CLOCK_STEPS[name]
        if name == "PCMU":
            self.decode, self.encode = ulawDecode, ulawEncode
        elif name == "PCMA":
            self.decode, self.encode = alawDecode, alawEncode
        elif name == "OPUS":
            opus = _Opus()
            self.decode, self.encode = opus.decode, opus.encode
        else:
            g722 = _G722()
            self.decode, self.encode = g722.decode, g722.encode
