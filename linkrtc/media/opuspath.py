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
   (the decoder downmixes), one PyAV C{AudioResampler} per call (not per
   frame) to the SIP rate in 20 ms frames, and the numpy G.711 tables.

What this replaces: aiortc's receiver (jitter buffer, a decoder thread
per call and a thread-safe hand-over of every frame back to the loop, an
C{asyncio.Queue}), its sender (a Task paced by a timer per frame, the
stereo 48 kHz Opus encoder fed through a resampler, RTP header extensions)
and C{RTCRtpSender}'s coroutine chain down to the socket.
"""

import av
import numpy

from linkrtc.media.actions.pcm import PayloadCodec

#: The SIP codecs L{OpusFromSIP} and L{SIPFromOpus} handle.
FAST_SIP_CODECS = ("PCMU", "PCMA", "G722")

#: RTP clock of Opus (RFC 7587 §4.1), Hz.
OPUS_CLOCK = 48000

#: Opus RTP timestamp advance per 20 ms.
OPUS_STEP = OPUS_CLOCK // 50

#: Bit rate of the Opus we send (mono, at most wideband: ample for G.711 and G.722 audio).
OPUS_BITRATE = 32000


class OpusFromSIP:
    """
    SIP payloads to Opus payloads, 20 ms each.

    @param sipName: one of L{FAST_SIP_CODECS}.
    @ivar rate: the SIP side's PCM rate, Hz (8000 or 16000).
    """

    def __init__(self, sipName):
        self._codec = PayloadCodec(sipName)
        self.rate = self._codec.rate
        self._frameSamples = self._codec.frameSamples
        encoder = av.CodecContext.create("libopus", "w")
        encoder.sample_rate = self.rate
        encoder.layout = "mono"
        encoder.format = "s16"
        encoder.bit_rate = OPUS_BITRATE
        encoder.options = {"application": "lowdelay"}
        self._encoder = encoder
        self._pending = None
        self._pts = 0

    def encode(self, payload):
        """
        @param payload: one SIP RTP payload (C{bytes}), any length.
        @return: C{list} of Opus payloads (C{bytes}), one per 20 ms
            complete so far (samples short of 20 ms wait for the next
            payload): one for the usual 20 ms packet.
        @raise Exception: what PyAV raises for audio libopus refuses.
        """
        samples = self._codec.decode(payload)
        if self._pending is not None:
            samples = numpy.concatenate((self._pending, samples))
            self._pending = None
        size = self._frameSamples
        out = []
        start = 0
        while len(samples) - start >= size:
            out.extend(self._encodeFrame(samples[start:start + size]))
            start += size
        if start < len(samples):
            self._pending = samples[start:]
        return out

    def _encodeFrame(self, samples):
        frame = av.AudioFrame.from_ndarray(numpy.ascontiguousarray(samples).reshape(1, -1),
                                           format="s16", layout="mono")
        frame.sample_rate = self.rate
        frame.pts = self._pts
        self._pts += len(samples)
        return [bytes(packet) for packet in self._encoder.encode(frame)]

    def reset(self):
        """Forget samples short of a frame (the SIP side's stream restarted)."""
        self._pending = None


class SIPFromOpus:
    """
    Opus payloads to SIP payloads.

    @param sipName: one of L{FAST_SIP_CODECS}.
    """

    def __init__(self, sipName):
        self._codec = PayloadCodec(sipName)
        self._clockPerSample = self._codec.clockStep / self._codec.frameSamples
        decoder = av.CodecContext.create("libopus", "r")
        decoder.sample_rate = OPUS_CLOCK
        decoder.layout = "mono"
        decoder.format = "s16"
        self._decoder = decoder
        self._resampler = av.AudioResampler(format="s16", layout="mono", rate=self._codec.rate,
                                            frame_size=self._codec.frameSamples)

    def decode(self, payload):
        """
        @param payload: one Opus RTP payload (C{bytes}).
        @return: C{list} of C{av.AudioFrame}s (s16 mono, 48 kHz).
        @raise av.FFmpegError: for a payload libopus cannot decode.
        """
        return self._decoder.decode(av.Packet(payload))

    def encode(self, frame):
        """
        @param frame: a frame from L{decode}.
        @return: C{list} of C{(payload, clockAdvance)}: SIP payloads of
            20 ms (C{bytes}) and their RTP timestamp advance; the
            resampler's delay means the first frame may give none.
        """
        out = []
        for converted in self._resampler.resample(frame):
            # s16 mono is one packed plane: read it in place (PyAV's
            # to_ndarray stacks the planes with numpy.vstack, a copy).
            samples = numpy.frombuffer(converted.planes[0], dtype=numpy.int16,
                                       count=converted.samples)
            out.append((self._codec.encode(samples),
                        int(len(samples) * self._clockPerSample)))
        return out
