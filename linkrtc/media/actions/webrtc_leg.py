# -*- test-case-name: linkrtc.media.actions.test.test_webrtc_leg -*-
"""
L{WebRTCAudio}: the L{ICallAudio} of a browser (WebRTC) leg, for seed
001's actions on the aiortc side of a C{BridgeSession} (play to the
browser, record it, collect and send DTMF, connect it to another call,
seat it in a conference).

Frames are those of aiortc's track pipeline:
 - the browser's audio: the receiver's decoded frames (Opus: s16 stereo
   48 kHz, 960 samples; PCMU: s16 mono 8 kHz), converted to mono at
   L{WebRTCAudio.rate} by PyAV's C{AudioResampler} (libswresample, with
   its low-pass filter) and cut into 20 ms C{int16} frames;
 - audio to the browser: 20 ms frames fed to the peer connection's
   sending L{linkrtc.media.transcode.FeedTrack} (at the track's rate,
   linearly converted when it differs), which aiortc encodes.

The owner (the bridge session) is told with C{onActive(True)} when an
action first needs either direction and C{onActive(False)} when the last
one ends: it then gives the browser's frames to L{WebRTCAudio.frameReceived}
(or asks L{WebRTCAudio.readTrack} to read the track itself) and lets the
feed track carry what the actions write. With no action, the leg stays on
the packet relay (or drops the browser's packets undecoded on a call with
no SIP leg). C{onSending(True)} / C{(False)} frame the time actions send
to the browser: the owner stops the SIP side's audio to the browser
meanwhile (replaced, not mixed), as C{RTPAudio}'s hook does the other way.

DTMF: aiortc negotiates no telephone-event on the WebRTC leg, so there
are no RFC 4733 events either way. Keys from the browser arrive as the
client's signalling C{dtmf} message; the session hands them to
L{WebRTCAudio.keyPressed}. While an action wants keys, the browser's
audio is also searched for in-band tones
(L{linkrtc.media.actions.inband}: a handset or a softphone that plays
them into the microphone). Keys to the browser (C{sendDigits}) are played
in-band as ITU-T Q.23 dual tones; keys relayed by a connection from the
other leg are dropped.
"""

import asyncio

import numpy
from aiortc.mediastreams import MediaStreamError
from av import AudioFrame
from av.audio.resampler import AudioResampler
from twisted.logger import Logger
from zope.interface import implementer

from linkrtc.interfaces import ICallAudio
from linkrtc.media.actions.base import Action
from linkrtc.media.actions.leg import LegAudio
from linkrtc.media.actions.pcm import resample
from linkrtc.media.actions.player import PromptPlayer, PromptSource
from linkrtc.media.rtp import DIGIT_DURATION, DIGIT_GAP, EVENT_DIGITS

log = Logger()

#: WebRTC codec name -> the actions' PCM rate, Hz (Opus is wideband: 16 kHz).
BROWSER_RATES = {"OPUS": 16000, "PCMU": 8000, "PCMA": 8000, "G722": 16000}

#: ITU-T Q.23 §2: each key's low and high frequency, Hz.
DTMF_FREQUENCIES = {
    "1": (697, 1209), "2": (697, 1336), "3": (697, 1477), "A": (697, 1633),
    "4": (770, 1209), "5": (770, 1336), "6": (770, 1477), "B": (770, 1633),
    "7": (852, 1209), "8": (852, 1336), "9": (852, 1477), "C": (852, 1633),
    "*": (941, 1209), "0": (941, 1336), "#": (941, 1477), "D": (941, 1633),
}


class FrameFormat:
    """
    A leg's PCM frames as the actions see them (the C{codec} of a leg).

    @ivar name: the negotiated WebRTC codec (C{"OPUS"}, C{"PCMU"}).
    @ivar rate: Hz.
    @ivar frameSamples: samples in 20 ms.
    """

    def __init__(self, name, rate):
        self.name = name
        self.rate = rate
        self.frameSamples = rate // 50


def dtmfSamples(keys, rate, duration=DIGIT_DURATION, gap=DIGIT_GAP, amplitude=5000):
    """
    In-band DTMF (ITU-T Q.23): each key's two sines for C{duration}
    seconds, then C{gap} seconds of silence.

    @param keys: C{str} of 0-9*#A-D (upper case).
    @param amplitude: peak of each of the two sines (C{int16} units).
    @return: C{int16} samples at C{rate} Hz.
    @raise KeyError: for a key outside 0-9*#A-D.
    """
    t = numpy.arange(int(round(rate * duration))) / float(rate)
    silence = numpy.zeros(int(round(rate * gap)), dtype=numpy.int16)
    parts = []
    for key in keys:
        low, high = DTMF_FREQUENCIES[key]
        pair = amplitude * (numpy.sin(2 * numpy.pi * low * t) + numpy.sin(2 * numpy.pi * high * t))
        parts += [pair.astype(numpy.int16), silence]
    return numpy.concatenate(parts) if parts else silence[:0]


class SendToneDigits(Action):
    """
    Seed 001 C{send_dtmf_start} to a browser: the keys played in-band
    (L{dtmfSamples}); the result (C{error}, C{begin_time}, C{end_time})
    comes once they are played. Keys outside 0-9*#A-D give an C{error}
    and play nothing; L{ICallAudio.stop} cuts the tones short.
    """

    def __init__(self, audio, keys):
        Action.__init__(self, audio)
        self._keys = keys
        self._player = None

    def _begin(self):
        keys = self._keys.upper() if isinstance(self._keys, str) else None
        if not keys or any(k not in EVENT_DIGITS for k in keys):
            self.finish(error="invalid DTMF keys %r (0-9, *, #, A-D)" % (self._keys,))
            return
        source = PromptSource(dtmfSamples(keys, self.audio.rate))
        self._player = PromptPlayer(self.audio, source, self.finish)
        self._player.start()

    def _end(self):
        if self._player is not None:
            self._player.stop()


@implementer(ICallAudio)
class WebRTCAudio(LegAudio):
    """
    The actions' view of one browser leg.

    @param clock: an L{IReactorTime} (pacing, timeouts, result times).
    @param loop: the asyncio loop (for L{readTrack}).
    @param track: the peer connection's received audio track (aiortc's
        C{RTCRtpReceiver.track}).
    @param feed: the peer connection's sending
        L{linkrtc.media.transcode.FeedTrack}.
    @param codecName: the negotiated WebRTC codec (C{"OPUS"}, C{"PCMU"}).
    @param onActive: C{None} or a callable taking C{True} when actions
        first need the browser's audio or send to it, C{False} after the
        last one.
    @param onSending: C{None} or a callable taking C{True} when actions
        start sending to the browser and C{False} when they stop.
    @ivar rate: PCM rate of the frames, Hz (L{BROWSER_RATES}).
    @ivar codec: the L{FrameFormat}.
    @ivar active: C{True} between C{onActive(True)} and C{onActive(False)}.
    @raise KeyError: for a codec outside L{BROWSER_RATES}.
    """

    inbandDigits = True

    def __init__(self, clock, loop, track, feed, codecName, onActive=None, onSending=None):
        LegAudio.__init__(self, clock, onSending)
        self._loop = loop
        self._track = track
        self._feed = feed
        self.codec = FrameFormat(codecName, BROWSER_RATES[codecName])
        self.rate = self.codec.rate
        self._onActive = onActive
        self.active = False
        self._inputUsers = 0
        self._resampler = None
        self._resampling = None
        self._task = None
        self.framesReceived = 0
        self.framesSent = 0

    # -- actions ------------------------------------------------------------

    def sendDigits(self, keys):
        """In-band DTMF tones to the browser (L{SendToneDigits}); see the module docstring."""
        return self._run(SendToneDigits(self, keys))

    def relayKey(self, key):
        """A key the other leg of a connection pressed: a browser leg has no way to get it."""
        log.debug("DTMF {key} for a browser leg dropped", key=key)

    def close(self):
        """Stop any action (its result's C{error} says the call ended) and stop reading."""
        if self.closed:
            return
        self._endAction("the call ended", "the other call ended")
        self._detectKeys(False)
        self.closed = True
        self._listener = None
        self._inputUsers = 0
        if self._senders:
            self._senders = 0
            self._notifySending(False)
        self.readTrack(False)
        self._update()

    # -- activity -----------------------------------------------------------

    def _inputChanged(self):
        self._update()

    def _update(self):
        active = not self.closed and bool(self._inputUsers or self._senders
                                          or self._detector is not None)
        if active == self.active:
            return
        self.active = active
        if not active:
            self._clearInput()
        if self._onActive is not None:
            try:
                self._onActive(active)
            except Exception:
                log.failure("onActive hook failed")

    def _clearInput(self):
        self._clearReceived()
        self._resampler = self._resampling = None

    # -- the browser's audio ------------------------------------------------

    def needInput(self, needed):
        """Count one more (C{True}) or one fewer (C{False}) user of L{readFrame}."""
        self._inputUsers = max(0, self._inputUsers + (1 if needed else -1))
        if not self._inputUsers:
            self._clearInput()
        self._update()

    def frameReceived(self, frame):
        """
        One decoded frame from the browser (an C{av.AudioFrame} of any
        format, layout and rate): kept as 20 ms frames at L{rate} while
        something reads them, dropped otherwise.
        """
        if not self._inputUsers and self._detector is None:
            return
        self.framesReceived += 1
        key = (frame.format.name, frame.layout.name, frame.sample_rate)
        if key != self._resampling:
            self._resampler = AudioResampler(format="s16", layout="mono", rate=self.rate)
            self._resampling = key
        try:
            converted = self._resampler.resample(frame)
        except Exception:
            log.debug("unusable browser audio frame dropped")
            self._resampler = self._resampling = None
            return
        for out in converted:
            samples = out.to_ndarray().reshape(-1).astype(numpy.int16, copy=False)
            self._detected(samples)
            if self._inputUsers:
                self._queueReceived(samples)

    def readTrack(self, reading):
        """
        Read the received track here (C{True}: nothing else reads it, as on
        a call with no SIP leg) or stop (C{False}); each frame goes to
        L{frameReceived}.
        """
        if reading and self._task is None and not self.closed:
            self._task = self._loop.create_task(self._pump())
        elif not reading and self._task is not None:
            self._task.cancel()
            self._task = None

    async def _pump(self):
        try:
            while True:
                self.frameReceived(await self._track.recv())
        except (MediaStreamError, asyncio.CancelledError):
            pass
        except Exception:
            log.failure("reading the browser's audio stopped")

    # -- audio to the browser -----------------------------------------------

    def needOutput(self, needed):
        """
        Count one more (C{True}) or one fewer (C{False}) sender of
        L{writeFrame}: the owner is made active before C{onSending(True)}
        and told C{onSending(False)} before it goes idle.
        """
        if needed:
            self._senders += 1
            self._update()
            if self._senders == 1:
                self._notifySending(True)
        elif self._senders:
            self._senders -= 1
            if not self._senders:
                self._notifySending(False)
            self._update()

    def writeFrame(self, samples):
        """Feed 20 ms of C{int16} samples at L{rate} to the browser's sending track."""
        if self.closed:
            return
        rate = self._feed.rate
        if rate != self.rate:
            samples = resample(samples, self.rate, rate)
        frame = AudioFrame.from_ndarray(numpy.ascontiguousarray(samples, dtype=numpy.int16)
                                        .reshape(1, -1), format="s16", layout="mono")
        frame.sample_rate = rate
        self._feed.feed(frame)
        self.framesSent += 1

    def __repr__(self):
        return "<WebRTCAudio %s %s>" % (self.codec.name,
                                       type(self._action).__name__ if self._action else "idle")
