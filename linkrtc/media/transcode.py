# -*- test-case-name: linkrtc.media.test.test_bridge -*-
"""
The decode/encode path, used when the two legs negotiated different
codecs (Opus in the browser, G.711 or G.722 on SIP; Opus on SIP too): SIP RTP is decoded
with aiortc's codecs and fed to the peer connection's sending track;
the browser's decoded frames are encoded to the SIP codec and sent as
RTP.

L{FeedTrack} is also the sending track in relay mode, where it sends
nothing ("parked"): aiortc's sender then stays idle.

Fast path: with Opus in the browser and G.711 or G.722 on SIP (the usual
transcoded call), given the call's L{linkrtc.media.relay.WebRTCTap}, the
L{Transcoder} works inline, as the packet relay does: the browser's SRTP
packets are decoded in the tap's datagram callback and each SIP packet is
encoded and sent to the browser in the RTP callback
(L{linkrtc.media.opuspath}), with neither aiortc's receiver (a decoder
thread per call) nor its sender (a paced Task per call) on the way. Late
or duplicate browser packets are dropped instead of reordered as aiortc's
jitter buffer did (the SIP phone's own jitter buffer smooths what
arrives). The L{FeedTrack} still sends silence until
the SIP side's first packet and the browser leg's actions while they send
(L{Transcoder.muteToBrowser}), through aiortc's sender; the tap's
L{linkrtc.media.rtp.StreamRewriter} keeps one stream across the switches.
"""

import asyncio
import collections
import fractions
import time
from concurrent.futures import ThreadPoolExecutor

import av
import numpy
from aiortc.codecs import get_decoder, get_encoder
from aiortc.codecs.g711 import PcmEncoder
from aiortc.codecs.g722 import G722Encoder
from aiortc.codecs.opus import OpusEncoder
from aiortc.jitterbuffer import JitterFrame
from aiortc.mediastreams import MediaStreamError, MediaStreamTrack
from aiortc.rtcrtpparameters import RTCRtpCodecParameters
from av import AudioFrame
from twisted.logger import Logger

from linkrtc.media.opuspath import (
    FAST_SIP_CODECS,
    OPUS_CLOCK,
    OPUS_STEP,
    OpusFromSIP,
    SIPFromOpus,
    browserFrameDecoder,
)

log = Logger()

#: SIP codec name -> (aiortc MIME type, payload type, decoded sample rate in Hz).
SIP_CODEC_PARAMETERS = {
    "PCMU": ("audio/PCMU", 0, 8000),
    "PCMA": ("audio/PCMA", 8, 8000),
    "G722": ("audio/G722", 9, 16000),
    "OPUS": ("audio/opus", 111, 48000),
}


#: The aiortc encoders L{AudioEncodeExecutor} runs inline.
_AUDIO_ENCODERS = (OpusEncoder, PcmEncoder, G722Encoder)


class AudioEncodeExecutor(ThreadPoolExecutor):
    """
    The asyncio loop's default executor, with a fast path for audio.

    aiortc's C{RTCRtpSender} encodes each frame with
    C{loop.run_in_executor(None, encoder.encode, frame, keyframe)}. For a
    20 ms audio frame (Opus, G.711, G.722: about 0.1 ms of work) the hop to
    a worker thread and back (a lock, a thread wake-up, the GIL handed over
    twice, a self-pipe write to wake the loop) costs more than the
    encoding, at 50 frames per second per transcoded call. Fast path: an
    audio encoder's C{encode} runs inline and its result comes back as an
    asyncio future already done, which C{run_in_executor} returns as it
    is (C{asyncio.wrap_future} keeps asyncio futures). Anything else
    (video encoders, C{getaddrinfo}) goes to the worker threads as before.

    @param loop: the asyncio loop whose default executor this is.
    """

    def __init__(self, loop, **kwargs):
        ThreadPoolExecutor.__init__(self, **kwargs)
        self._loop = loop

    def submit(self, fn, /, *args, **kwargs):
        if isinstance(getattr(fn, "__self__", None), _AUDIO_ENCODERS):
            future = self._loop.create_future()
            try:
                future.set_result(fn(*args, **kwargs))
            except Exception as e:
                future.set_exception(e)
            return future
        return ThreadPoolExecutor.submit(self, fn, *args, **kwargs)

    @classmethod
    def install(cls, loop):
        """Make an L{AudioEncodeExecutor} the default executor of C{loop} (once)."""
        if not isinstance(getattr(loop, "_default_executor", None), cls):
            loop.set_default_executor(cls(loop, thread_name_prefix="asyncio"))


def codecParameters(name):
    """@return: aiortc C{RTCRtpCodecParameters} for SIP codec C{name}."""
    mime, pt, _ = SIP_CODEC_PARAMETERS[name]
    if name == "OPUS":
        return RTCRtpCodecParameters(mimeType=mime, clockRate=48000, channels=2, payloadType=pt)
    return RTCRtpCodecParameters(mimeType=mime, clockRate=8000, channels=1, payloadType=pt)


def silenceFrame(rate, samples):
    """@return: an s16 mono C{AudioFrame} of C{samples} zero samples at C{rate} Hz."""
    frame = AudioFrame.from_ndarray(numpy.zeros((1, samples), dtype=numpy.int16),
                                    format="s16", layout="mono")
    frame.sample_rate = rate
    return frame


class FeedTrack(MediaStreamTrack):
    """
    An audio track fed with decoded SIP audio; it paces itself at real
    time and sends 20 ms of silence whenever nothing is queued, so the
    browser hears (silence) from the first moment.

    @param rate: sample rate of the frames fed, in Hz.
    @param maxQueued: frames kept at most (older ones are dropped: latency
        never builds up beyond C{maxQueued} * 20 ms).
    """

    kind = "audio"

    def __init__(self, rate=8000, maxQueued=8):
        super().__init__()
        self.rate = rate
        self._queue = collections.deque(maxlen=maxQueued)
        self._start = None
        self._pts = 0
        self._parked = False
        self._waiter = None
        self.framesSent = 0

    def setRate(self, rate):
        """Frames fed from now on are at C{rate} Hz (a re-INVITE changed the codec)."""
        if rate != self.rate:
            self._queue.clear()
            self.rate = rate
            self._start = None

    def feed(self, frame):
        """Queue one decoded C{AudioFrame} (s16 mono at L{rate})."""
        self._queue.append(frame)

    def park(self):
        """Stop producing frames (relay mode): C{recv} waits until L{unpark} or L{stop}."""
        self._parked = True

    def unpark(self):
        self._parked = False
        self._start = None
        self._wake()

    def _wake(self):
        if self._waiter is not None and not self._waiter.done():
            self._waiter.set_result(None)
        self._waiter = None

    def stop(self):
        super().stop()
        self._wake()

    async def recv(self):
        while self._parked and self.readyState == "live":
            self._waiter = asyncio.get_running_loop().create_future()
            await self._waiter
        if self.readyState != "live":
            raise MediaStreamError
        if self._start is None:
            self._start = time.time()
            self._pts = 0
        else:
            wait = self._start + self._pts / self.rate - time.time()
            if wait > 0:
                await asyncio.sleep(wait)
        frame = self._queue.popleft() if self._queue else silenceFrame(self.rate, self.rate // 50)
        frame.pts = self._pts
        frame.sample_rate = self.rate
        frame.time_base = fractions.Fraction(1, self.rate)
        self._pts += frame.samples
        self.framesSent += 1
        return frame


class Transcoder:
    """
    Decode SIP RTP into a L{FeedTrack}; encode the browser's audio (from
    the receiver's track) into SIP RTP.

    @param loop: the asyncio loop.
    @param rtp: the L{linkrtc.media.rtp.RTPSession}.
    @param remoteTrack: the peer connection's received audio track.
    @param feedTrack: the L{FeedTrack} the peer connection sends.
    @param codecName: the SIP codec (C{"PCMU"}, C{"PCMA"}, C{"G722"}).
    @param tap: the call's L{linkrtc.media.relay.WebRTCTap}, or C{None}.
    @param webrtcCodec: the browser's codec name (C{"OPUS"}, C{"PCMU"}),
        or C{None}.
    @ivar inline: C{True} when the fast path runs (the module docstring):
        C{tap} given, Opus in the browser and C{codecName} one of
        L{FAST_SIP_CODECS}.
    """

    def __init__(self, loop, rtp, remoteTrack, feedTrack, codecName, tap=None,
                 webrtcCodec=None):
        AudioEncodeExecutor.install(loop)
        self._loop = loop
        self._rtp = rtp
        self._remote = remoteTrack
        self._feed = feedTrack
        self._tap = tap
        self.inline = (tap is not None and webrtcCodec == "OPUS"
                       and codecName in FAST_SIP_CODECS)
        if self.inline:
            self._decoder = self._encoder = None
            self._toOpus = OpusFromSIP(codecName)
            self._fromOpus = SIPFromOpus(codecName)
        else:
            params = codecParameters(codecName)
            self._decoder = get_decoder(params)
            self._encoder = get_encoder(params)
            self._toOpus = self._fromOpus = None
        self._feed.setRate(SIP_CODEC_PARAMETERS[codecName][2])
        self._task = None
        self._muted = False
        self._toBrowserMuted = False
        self._tee = self._teeDecoder = None
        #: Inline: the feed track is parked (SIP audio is flowing), the SIP
        #: stream's SSRC and next expected timestamp, the browser's last SSRC
        #: and sequence number.
        self._feedParked = False
        self._sipSource = self._sipNextTs = None
        self._webrtcSource = self._webrtcSeq = None
        self.framesEncoded = 0

    def mute(self, muted):
        """Drop (C{True}) or send again (C{False}) the browser's audio to SIP (an action sends)."""
        self._muted = bool(muted)

    def muteToBrowser(self, muted):
        """
        Drop (C{True}) or feed again (C{False}) the SIP side's audio to the
        browser (an action on the browser leg feeds the track meanwhile).
        """
        self._toBrowserMuted = bool(muted)
        if self.inline:
            if muted:
                self._unparkFeed()
            elif self._sipSource is not None:
                self._parkFeed()

    def _parkFeed(self):
        if not self._feedParked:
            self._feed.park()
            self._feedParked = True

    def _unparkFeed(self):
        if self._feedParked:
            self._feed.unpark()
            self._feedParked = False

    def tee(self, callback):
        """
        Give every decoded frame from the browser (an C{av.AudioFrame}) also
        to C{callback} (the browser leg's actions), muted or not; C{None}
        stops.
        """
        self._tee = callback
        if self.inline:
            self._teeDecoder = browserFrameDecoder() if callback is not None else None

    def start(self):
        self._feed.unpark()
        self._feedParked = False
        if self.inline:
            self._rtp.onAudio = self._fromSIPInline
            self._tap.onPacket = self._fromWebRTC
            return
        self._rtp.onAudio = self._fromSIP
        self._task = self._loop.create_task(self._pump())

    def _fromSIPInline(self, marker, pt, seq, ts, ssrc, payload):
        """
        The fast path's SIP -> browser: one SIP packet encoded to Opus and
        sent at once. The Opus timestamps advance 20 ms a packet, plus the
        SIP stream's own gaps (losses, silence suppression, up to 1 s).
        """
        if self._toBrowserMuted:
            return
        extra = 0
        if ssrc != self._sipSource:
            self._sipSource = ssrc
            self._toOpus.reset()
        elif self._sipNextTs is not None:
            gap = (ts - self._sipNextTs) & 0xFFFFFFFF
            if gap < 8000:
                extra = gap * (OPUS_CLOCK // 8000)
        self._sipNextTs = (ts + len(payload)) & 0xFFFFFFFF  # G.711, G.722: a byte per tick
        try:
            payloads = self._toOpus.encode(payload)
        except Exception:
            log.debug("SIP audio that would not encode to Opus dropped")
            return
        if not payloads:
            return
        self._parkFeed()
        tap = self._tap
        out = tap.out
        for opus in payloads:
            switched = out.source is not None  # aiortc's sender sent last
            seq, ts = out.local(OPUS_STEP + extra, atTime=switched)
            extra = 0
            tap.send(switched or marker, tap.audioPT, seq, ts, opus)
            marker = False

    def _fromWebRTC(self, marker, pt, seq, ts, ssrc, payload):
        """
        The fast path's browser -> SIP: one Opus packet decoded, given to
        the tee, encoded to the SIP codec and sent. A packet not newer
        than the last one of its SSRC (late, duplicate) is dropped.
        """
        if pt != self._tap.audioPT:
            return
        if ssrc == self._webrtcSource and not 0 < ((seq - self._webrtcSeq) & 0xFFFF) < 0x8000:
            return
        self._webrtcSource, self._webrtcSeq = ssrc, seq
        if not payload:
            return
        if self._tee is not None:
            self._teeFrames(payload)
        if self._muted:
            return
        try:
            out = self._fromOpus.transcode(payload)
        except Exception:
            log.debug("undecodable browser audio dropped")
            return
        for sipPayload, advance in out:
            self.framesEncoded += 1
            self._rtp.sendAudio(sipPayload, advance)

    def _teeFrames(self, payload):
        """
        The fast path's frames for the browser leg's actions: decoded at
        48 kHz by a decoder of their own (made when L{tee} is given one),
        so they keep the browser's full band whatever the SIP codec.
        """
        try:
            frames = self._teeDecoder.decode(av.Packet(payload))
        except Exception:
            return
        for frame in frames:
            try:
                self._tee(frame)
            except Exception:
                log.failure("the browser leg's actions failed on a frame")

    def _fromSIP(self, marker, pt, seq, ts, ssrc, payload):
        if self._toBrowserMuted:
            return
        try:
            frames = self._decoder.decode(JitterFrame(data=payload, timestamp=ts))
        except Exception:
            log.debug("undecodable SIP audio dropped")
            return
        for frame in frames:
            self._feed.feed(frame)

    async def _pump(self):
        try:
            while True:
                frame = await self._remote.recv()
                tee = self._tee
                if tee is not None:
                    try:
                        tee(frame)
                    except Exception:
                        log.failure("the browser leg's actions failed on a frame")
                if self._muted:
                    continue
                payloads, _ = self._encoder.encode(frame)
                for payload in payloads:
                    self.framesEncoded += 1
                    self._rtp.sendAudio(payload, len(payload))
        except (MediaStreamError, asyncio.CancelledError):
            pass
        except Exception:
            log.failure("WebRTC -> SIP transcoding stopped")

    def stop(self):
        """Stop both directions; the feed track goes back to silence."""
        if self._rtp.onAudio in (self._fromSIP, self._fromSIPInline):
            self._rtp.onAudio = None
        if self.inline:
            if self._tap.onPacket == self._fromWebRTC:
                self._tap.onPacket = None
            self._unparkFeed()
        if self._task is not None:
            self._task.cancel()
            self._task = None
