# -*- test-case-name: linkrtc.media.test.test_opuspath -*-
"""
The transcoder's per-frame codec work for its usual case, Opus in the
browser and G.711 (or G.722) on SIP, done in the packet callbacks
(L{linkrtc.media.transcode.Transcoder} decides when).

Fast path (issue 15: transcoding cost 40-48 ms of CPU per call-second, of
which the codecs themselves were about 10): each direction is one
function call per packet on the loop, with codec contexts made once per
call and reused:

 - SIP -> browser (L{OpusFromSIP}): G.711 is decoded with numpy lookup
   tables (L{linkrtc.media.actions.pcm}); the samples go straight into a
   libopus encoder opened at the SIP side's own rate (8 or 16 kHz, mono:
   libopus takes those rates natively, RFC 7587 §4.1 keeps the RTP clock
   at 48 kHz), so nothing is resampled or upmixed to stereo, and its
   C{restricted_lowdelay} mode (CELT only) keeps tones exact. One Opus
   packet per 20 ms.
 - browser -> SIP (L{SIPFromOpus}): a libopus decoder that gives mono
   (the decoder downmixes) at the SIP rate, and the numpy G.711 tables.

libopus is called through C{ctypes} (L{linkrtc.media.libopus}: PyAV's
per-frame overhead was half the codec work); without a loadable libopus
the same is done through PyAV's libopus, whose decoder always gives
48 kHz: then one PyAV C{AudioResampler} per call (not per frame) brings
it to the SIP rate in 20 ms frames.

What this replaces: aiortc's receiver (jitter buffer, a decoder thread
per call and a thread-safe hand-over of every frame back to the loop, an
C{asyncio.Queue}), its sender (a Task paced by a timer per frame, the
stereo 48 kHz Opus encoder fed through a resampler, RTP header extensions)
and C{RTCRtpSender}'s coroutine chain down to the socket.
"""

import av
import numpy

from linkrtc.media import libopus
from linkrtc.media.actions.pcm import PayloadCodec

#: The SIP codecs L{OpusFromSIP} and L{SIPFromOpus} handle.
FAST_SIP_CODECS = ("PCMU", "PCMA", "G722")

#: RTP clock of Opus (RFC 7587 §4.1), Hz.
OPUS_CLOCK = 48000

#: Opus RTP timestamp advance per 20 ms.
OPUS_STEP = OPUS_CLOCK // 50

#: Bit rate of the Opus we send (mono, at most wideband: ample for G.711 and G.722 audio).
OPUS_BITRATE = 32000


class _Chunker:
    """Cuts C{int16} sample arrays into frames of C{size}, keeping the remainder."""

    def __init__(self, size):
        self._size = size
        self._pending = None

    def frames(self, samples):
        """@return: C{list} of C{size}-sample arrays; the samples short of one wait."""
        if self._pending is not None:
            samples = numpy.concatenate((self._pending, samples))
            self._pending = None
        size = self._size
        if len(samples) == size:
            return [samples]
        out = []
        start = 0
        while len(samples) - start >= size:
            out.append(samples[start:start + size])
            start += size
        if start < len(samples):
            self._pending = samples[start:]
        return out

    def reset(self):
        self._pending = None


class _PyAVEncoder:
    """L{libopus.Encoder}'s C{encode} through PyAV (the fallback)."""

    def __init__(self, rate):
        encoder = av.CodecContext.create("libopus", "w")
        encoder.sample_rate = rate
        encoder.layout = "mono"
        encoder.format = "s16"
        encoder.bit_rate = OPUS_BITRATE
        encoder.options = {"application": "lowdelay"}
        self._encoder = encoder
        self._rate = rate
        self._pts = 0

    def encode(self, samples):
        frame = av.AudioFrame.from_ndarray(numpy.ascontiguousarray(samples).reshape(1, -1),
                                           format="s16", layout="mono")
        frame.sample_rate = self._rate
        frame.pts = self._pts
        self._pts += len(samples)
        return b"".join(bytes(packet) for packet in self._encoder.encode(frame))


class _PyAVDecoder:
    """L{libopus.Decoder}'s C{decode} through PyAV (the fallback): 48 kHz, resampled."""

    def __init__(self, rate):
        self._decoder = browserFrameDecoder()
        self._resampler = av.AudioResampler(format="s16", layout="mono", rate=rate)

    def decode(self, payload):
        chunks = []
        for frame in self._decoder.decode(av.Packet(payload)):
            for converted in self._resampler.resample(frame):
                # s16 mono is one packed plane: read it in place (PyAV's
                # to_ndarray stacks the planes with numpy.vstack, a copy).
                chunks.append(numpy.frombuffer(converted.planes[0], dtype=numpy.int16,
                                               count=converted.samples))
        if len(chunks) == 1:
            return chunks[0]
        return numpy.concatenate(chunks) if chunks else numpy.zeros(0, dtype=numpy.int16)


def browserFrameDecoder():
    """
    @return: a PyAV libopus decoder giving s16 mono 48 kHz C{AudioFrame}s
        (for the browser leg's actions, L{linkrtc.media.transcode.Transcoder.tee}).
    """
    decoder = av.CodecContext.create("libopus", "r")
    decoder.sample_rate = OPUS_CLOCK
    decoder.layout = "mono"
    decoder.format = "s16"
    return decoder


class OpusFromSIP:
    """
    SIP payloads to Opus payloads, 20 ms each.

    @param sipName: one of L{FAST_SIP_CODECS}.
    @param useLibopus: C{False} to go through PyAV even when
        L{libopus.LIB} is loaded.
    @ivar rate: the SIP side's PCM rate, Hz (8000 or 16000).
    """

    def __init__(self, sipName, useLibopus=True):
        self._codec = PayloadCodec(sipName)
        self.rate = self._codec.rate
        self._chunker = _Chunker(self._codec.frameSamples)
        if useLibopus and libopus.LIB is not None:
            self._encoder = libopus.Encoder(self.rate, OPUS_BITRATE)
        else:
            self._encoder = _PyAVEncoder(self.rate)

    def encode(self, payload):
        """
        @param payload: one SIP RTP payload (C{bytes}), any length.
        @return: C{list} of Opus payloads (C{bytes}), one per 20 ms
            complete so far (samples short of 20 ms wait for the next
            payload): one for the usual 20 ms packet.
        @raise Exception: what libopus or PyAV raise for audio refused.
        """
        encode = self._encoder.encode
        return [encode(frame) for frame in self._chunker.frames(self._codec.decode(payload))]

    def reset(self):
        """Forget samples short of a frame (the SIP side's stream restarted)."""
        self._chunker.reset()


class SIPFromOpus:
    """
    Opus payloads to SIP payloads of 20 ms.

    @param sipName: one of L{FAST_SIP_CODECS}.
    @param useLibopus: C{False} to go through PyAV even when
        L{libopus.LIB} is loaded.
    """

    def __init__(self, sipName, useLibopus=True):
        self._codec = PayloadCodec(sipName)
        self._clockStep = self._codec.clockStep
        self._chunker = _Chunker(self._codec.frameSamples)
        if useLibopus and libopus.LIB is not None:
            self._decoder = libopus.Decoder(self._codec.rate)
        else:
            self._decoder = _PyAVDecoder(self._codec.rate)

    def transcode(self, payload):
        """
        @param payload: one Opus RTP payload (C{bytes}).
        @return: C{list} of C{(payload, clockAdvance)}: SIP payloads of
            20 ms (C{bytes}) and their RTP timestamp advance (one for a
            20 ms Opus packet; with PyAV, the resampler's delay may keep
            the first back).
        @raise Exception: what libopus or PyAV raise for a payload they
            cannot decode.
        """
        encode, step = self._codec.encode, self._clockStep
        return [(encode(frame), step)
                for frame in self._chunker.frames(self._decoder.decode(payload))]
