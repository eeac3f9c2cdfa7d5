# -*- test-case-name: linkrtc.media.actions.test.test_leg -*-
"""
L{RTPAudio}: the L{ICallAudio} of a SIP leg (an L{RTPSession}), on
L{LegAudio}, what every leg's audio shares (the browser leg's is
L{linkrtc.media.actions.webrtc_leg.WebRTCAudio}).

Decoding happens only while something needs the far end's audio (record,
connect across codecs, conference): then L{RTPAudio} puts itself in front
of the RTP session's C{onAudio} (the bridge's relay or transcoder still
gets every packet) and decodes each payload into a short queue of 20 ms
frames. With nothing running, C{onAudio} is the bridge's own handler, so
a call with no action costs what it cost before (the packet relay fast
path). Sending (play, connect, conference) encodes 20 ms frames and sends
them with L{RTPSession.sendAudio}; while it does, the session's
C{onSending(True)} hook lets the bridge stop the browser's audio to SIP.

DTMF: keys come as RFC 4733 events when the SDP negotiated
telephone-event; otherwise, while an action wants keys (C{wantsKeys}),
the far end's audio is decoded and searched for in-band tones
(L{linkrtc.media.actions.inband.ToneDigitDetector}), never both.
"""

import collections

import numpy
from twisted.internet import defer
from twisted.logger import Logger
from zope.interface import implementer

from linkrtc.error import MediaError
from linkrtc.interfaces import ICallAudio
from linkrtc.media.actions.base import Partner
from linkrtc.media.actions.dtmf import ReceiveDigits, SendDigits
from linkrtc.media.actions.inband import ToneDigitDetector
from linkrtc.media.actions.mixer import Connection
from linkrtc.media.actions.pcm import PayloadCodec
from linkrtc.media.actions.player import Play
from linkrtc.media.actions.recorder import Record

log = Logger()

#: Decoded frames kept at most (older ones dropped: 200 ms of latency at most).
INBOX_FRAMES = 10


class LegAudio:
    """
    What every leg's L{ICallAudio} shares: one action at a time, the
    actions' methods, DTMF keys to the listener and the running action,
    and the count of senders (C{onSending}). Subclasses give L{codec} (its
    C{name}, C{rate}, C{frameSamples}), L{rate}, C{sendDigits},
    C{needInput}, C{writeFrame}, C{relayKey} and C{close}; they hand the
    far end's decoded audio to C{_queueReceived} for L{readFrame}.

    @param clock: an L{IReactorTime} (pacing, timeouts, result times).
    @param onSending: C{None} or a callable taking C{True} when actions
        start sending audio to this leg and C{False} when they stop.
    @ivar packetRelay: C{True} if a connection between two such legs of
        the same codec may relay packets without decoding (C{forwardTo}
        and C{rtp.relayAudio}).
    @ivar inbandDigits: C{True} if the leg's keys must be found in its
        audio (no RFC 4733 events); subclasses then call C{_detected}
        with the decoded samples while C{_detector} is set, and implement
        C{_inputChanged()} (decode or stop decoding).
    """

    packetRelay = False
    inbandDigits = False

    def __init__(self, clock, onSending=None):
        self.clock = clock
        self._onSending = onSending
        self._action = None
        self._listener = None
        self._senders = 0
        self._detector = None
        self.closed = False
        self._inbox = collections.deque(maxlen=INBOX_FRAMES)
        self._partial = numpy.zeros(0, dtype=numpy.int16)

    # -- actions (ICallAudio) -------------------------------------------

    @property
    def busy(self):
        """C{True} while an action, connection or conference runs on this leg."""
        return self._action is not None

    def _run(self, action):
        """Start C{action} unless another runs. @return: its L{Deferred}."""
        if self.closed:
            return defer.fail(MediaError("the call's audio is closed"))
        if self._action is not None:
            return defer.fail(MediaError("another action is running on this call"))
        self._action = action
        if action.wantsKeys:
            self._detectKeys(True)
        action.begin()
        return action.deferred

    def _occupy(self, holder):
        """Mark the leg busy with C{holder} (a L{Partner} or a conference party)."""
        if self.closed:
            raise MediaError("the call's audio is closed")
        if self._action is not None:
            raise MediaError("another action is running on this call")
        self._action = holder

    def _release(self, holder):
        if self._action is holder:
            self._action = None

    def _actionEnded(self, action):
        self._release(action)
        if self._action is None:
            self._detectKeys(False)

    # -- in-band DTMF -----------------------------------------------------

    def _detectKeys(self, on):
        """Start (C{True}, only if L{inbandDigits}) or stop in-band DTMF detection."""
        if on and self._detector is None and self.inbandDigits and not self.closed:
            self._detector = ToneDigitDetector(self.rate, self.keyPressed)
            self._inputChanged()
        elif not on and self._detector is not None:
            self._detector.close()
            self._detector = None
            self._inputChanged()

    def _detected(self, samples):
        """Decoded far-end C{samples} for the in-band detector (while it runs)."""
        detector = self._detector
        if detector is not None:
            try:
                detector.feed(samples)
            except Exception:
                log.failure("in-band DTMF detection failed")

    def _inputChanged(self):
        pass

    def runAction(self, action):
        """
        Start C{action} (an L{linkrtc.media.actions.base.Action} on this
        leg, e.g. L{linkrtc.media.ringback.Ringback}) unless another runs.

        @return: its L{Deferred}; failing with L{MediaError} when the leg
            is busy or closed.
        """
        return self._run(action)

    def play(self, content, finishKeys="", repeat=1):
        return self._run(Play(self, content, finishKeys, repeat))

    def record(self, path, maxSeconds=None, beep=False, finishKeys="", fmt="wav"):
        return self._run(Record(self, path, maxSeconds, beep, finishKeys, fmt))

    def receiveDigits(self, validKeys="0123456789*#", maxKeys=1, finishKeys="#",
                      firstKeyTimeout=45, continuesKeysTimeout=30,
                      playContent=None, playRepeat=0, ifBreakOnKey=True):
        return self._run(ReceiveDigits(self, validKeys, maxKeys, finishKeys, firstKeyTimeout,
                                       continuesKeysTimeout, playContent, playRepeat,
                                       ifBreakOnKey))

    def connect(self, other, maxSeconds=None, recordPath=None, localVolume=None,
                remoteVolume=None, connectMode=1, schedulePlayTime=None,
                schedulePlayFile=None, schedulePlayLoop=0):
        """
        As L{ICallAudio.connect}; C{other} is any leg's audio (SIP or
        browser), not busy, not closed.
        """
        if other is self:
            return defer.fail(MediaError("a leg cannot be connected to itself"))
        if not isinstance(other, LegAudio):
            return defer.fail(MediaError("connect needs another call leg's audio"))
        if other.closed or other.busy:
            return defer.fail(MediaError("the other call is busy or closed"))
        if connectMode not in (1, 2, 3):
            return defer.fail(MediaError("connect mode %r is not 1-3" % (connectMode,)))
        return self._run(Connection(self, other, maxSeconds, recordPath, localVolume,
                                    remoteVolume, connectMode, schedulePlayTime,
                                    schedulePlayFile, schedulePlayLoop))

    def stop(self):
        if self._action is not None:
            self._action.stop()

    def digitsListener(self, callback):
        self._listener = callback

    def keyPressed(self, key):
        """
        A DTMF key (C{str}) from the far end: to the listener, then to the
        running action.
        """
        if self._listener is not None:
            try:
                self._listener(key)
            except Exception:
                log.failure("DTMF listener failed")
        if self._action is not None:
            self._action.keyPressed(key)

    def _endAction(self, error, partnerError):
        """End the running action (or the connection this leg is the second party of)."""
        action = self._action
        if isinstance(action, Partner):
            action.action.finish(error=partnerError)
        elif action is not None:
            action.finish(error=error)

    # -- audio to the far end ---------------------------------------------

    def needOutput(self, needed):
        """Count one more (C{True}) or one fewer (C{False}) sender of C{writeFrame}."""
        before = self._senders
        self._senders = max(0, before + (1 if needed else -1))
        if (before == 0) != (self._senders == 0):
            self._notifySending(self._senders > 0)

    # -- the far end's audio, cut into 20 ms frames ------------------------

    def _queueReceived(self, samples):
        """Keep C{samples} (C{int16} at L{rate}) as whole frames for L{readFrame}."""
        n = self.codec.frameSamples
        if len(samples) == n and not len(self._partial):
            self._inbox.append(samples)
            return
        samples = numpy.concatenate((self._partial, samples))
        whole = len(samples) // n * n
        for start in range(0, whole, n):
            self._inbox.append(samples[start:start + n])
        self._partial = samples[whole:]

    def _clearReceived(self):
        """Drop the frames waiting for L{readFrame} and any partial one."""
        self._inbox.clear()
        self._partial = self._partial[:0]

    def readFrame(self):
        """
        @return: the oldest 20 ms frame received (C{int16}, L{rate} // 50
            samples), or C{None} when none is waiting (silence).
        """
        if self._inbox:
            return self._inbox.popleft()
        return None

    def _notifySending(self, sending):
        if self._onSending is not None:
            try:
                self._onSending(sending)
            except Exception:
                log.failure("onSending hook failed")


@implementer(ICallAudio)
class RTPAudio(LegAudio):
    """
    The actions' view of one SIP leg.

    @param clock: an L{IReactorTime} (pacing, timeouts, result times).
    @param rtp: the leg's L{linkrtc.media.rtp.RTPSession}.
    @param codecName: the negotiated codec (C{"PCMU"}, C{"PCMA"}, C{"G722"}).
    @param onSending: C{None} or a callable taking C{True} when actions
        start sending audio to this leg and C{False} when they stop (the
        bridge mutes the browser's audio to SIP meanwhile).
    @ivar rate: decoded sample rate, Hz.
    @ivar codec: the L{PayloadCodec}.
    """

    packetRelay = True

    @property
    def inbandDigits(self):
        """C{True} when the SDP negotiated no telephone-event (RFC 4733)."""
        return self.rtp.event is None

    def __init__(self, clock, rtp, codecName, onSending=None):
        LegAudio.__init__(self, clock, onSending)
        self.rtp = rtp
        self.codec = PayloadCodec(codecName)
        self.rate = self.codec.rate
        self._inputUsers = 0
        self._tapped = False
        self._downstream = None
        self._forward = None
        self._suspended = False

    def sendDigits(self, keys):
        return self._run(SendDigits(self, keys))

    def relayKey(self, key):
        """Send C{key} on (a connection's other leg pressed it): RFC 4733 if negotiated."""
        if self.rtp.event is not None:
            self.rtp.sendDigits(key)

    def close(self):
        """Stop any action (its result's C{error} says the call ended) and untap."""
        if self.closed:
            return
        self._endAction("the call ended", "the other call ended")
        self._detectKeys(False)
        self.closed = True
        self._listener = None
        self._inputUsers = 0
        self._forward = None
        self._untap()
        if self._senders:
            self._senders = 0
            self._notifySending(False)

    def codecChanged(self, codecName):
        """
        The leg's codec changed (re-INVITE): a running action ends (its
        error says so) and frames are made for the new codec from now on.
        """
        if codecName == self.codec.name:
            return
        self._endAction("the call's codec changed", "the other call's codec changed")
        self.codec = PayloadCodec(codecName)
        self.rate = self.codec.rate
        self._clearReceived()

    # -- the far end's audio (decoded only while needed) ------------------

    def needInput(self, needed):
        """Count one more (C{True}) or one fewer (C{False}) user of L{readFrame}."""
        self._inputUsers = max(0, self._inputUsers + (1 if needed else -1))
        if not self._inputUsers:
            self._clearReceived()
        self._retap()

    def forwardTo(self, relay):
        """
        Give every audio packet from the far end, undecoded, to C{relay}
        (called like L{RTPSession.relayAudio}: C{(marker, ssrc, seq, ts,
        payload)}), or stop with C{None}: a connection between legs of the
        same codec.
        """
        self._forward = relay
        self._retap()

    def _inputChanged(self):
        self._retap()

    def _retap(self):
        if self._inputUsers or self._forward is not None or self._detector is not None:
            self._tap()
        else:
            self._untap()

    def _tap(self):
        if self._tapped or self.closed or self._suspended:
            return
        self._tapped = True
        self._downstream = self.rtp.onAudio
        self.rtp.onAudio = self._received

    def _untap(self):
        if not self._tapped:
            return
        self._tapped = False
        if self.rtp.onAudio == self._received:
            self.rtp.onAudio = self._downstream
        self._downstream = None

    def pipeStopping(self):
        """The bridge is about to stop its relay/transcoder: give C{onAudio} back."""
        self._untap()
        self._suspended = True

    def pipeStarted(self):
        """The bridge started a relay/transcoder (it set C{onAudio}): tap again if needed."""
        self._suspended = False
        self._retap()

    def _received(self, marker, pt, seq, ts, ssrc, payload):
        downstream = self._downstream
        if downstream is not None:
            downstream(marker, pt, seq, ts, ssrc, payload)
        if self._forward is not None:
            self._forward(marker, ssrc, seq, ts, payload)
        if not self._inputUsers and self._detector is None:
            return
        try:
            samples = self.codec.decode(payload)
        except Exception:
            log.debug("undecodable SIP audio dropped")
            return
        self._detected(samples)
        if self._inputUsers:
            self._queueReceived(samples)

    # -- audio to the far end ---------------------------------------------

    def writeFrame(self, samples):
        """Encode 20 ms of C{int16} samples at L{rate} and send it as one RTP packet."""
        if self.closed:
            return
        self.rtp.sendAudio(self.codec.encode(samples), self.codec.clockStep)

    def __repr__(self):
        return "<RTPAudio %s %s>" % (self.codec.name,
                                    type(self._action).__name__ if self._action else "idle")
