# -*- test-case-name: linkrtc.media.actions.test.test_dtmf -*-
"""
DTMF actions (seed 001 C{send_dtmf_start}, C{receive_dtmf_start}), on
RFC 4733 telephone-events through the leg's L{RTPSession} (the bridge's
own sender and receiver): no audio is decoded for them. On a leg with no
RFC 4733 events (a browser leg, a SIP leg whose SDP has no
telephone-event) the keys of L{ReceiveDigits} come from in-band tone
detection (L{linkrtc.media.actions.inband}) while it runs.
"""

from linkrtc.media.actions.base import Action
from linkrtc.media.actions.player import ContentError, PromptPlayer, PromptSource, loadContent
from linkrtc.media.rtp import DIGIT_DURATION, DIGIT_GAP, DIGIT_INTERVAL, EVENT_DIGITS


def sendingSeconds(count):
    """
    @return: seconds L{RTPSession.sendDigits} takes for C{count} keys
        (RFC 4733 events of L{DIGIT_DURATION}, L{DIGIT_GAP} between them),
        until the last key's end packets are out.
    """
    if count <= 0:
        return 0.0
    perKey = DIGIT_DURATION - DIGIT_INTERVAL + DIGIT_GAP
    return (count - 1) * perKey + DIGIT_DURATION


class SendDigits(Action):
    """
    Seed 001 C{send_dtmf_start}: RFC 4733 events to the far end; the
    result (C{error}, C{begin_time}, C{end_time}) comes once the last
    key's end packets are sent. Keys outside 0-9*#A-D, or no
    telephone-event in the call's SDP, give an C{error} and send nothing.
    L{ICallAudio.stop} drops the keys not yet started.
    """

    def __init__(self, audio, keys):
        Action.__init__(self, audio)
        self._keys = keys
        self._call = None

    def _begin(self):
        keys = self._keys.upper() if isinstance(self._keys, str) else None
        if not keys or any(k not in EVENT_DIGITS for k in keys):
            self.finish(error="invalid DTMF keys %r (0-9, *, #, A-D)" % (self._keys,))
            return
        rtp = self.audio.rtp
        if rtp.event is None:
            self.finish(error="the far end did not negotiate telephone-event (RFC 4733)")
            return
        rtp.sendDigits(keys)
        self._call = self.clock.callLater(sendingSeconds(len(keys)), self.finish)

    def _end(self):
        if self._call is not None and self._call.active():
            self._call.cancel()
            self.audio.rtp.cancelDigits()
        self._call = None


class ReceiveDigits(Action):
    """
    Seed 001 C{receive_dtmf_start}. Result: C{error}, C{begin_time},
    C{end_time}, C{keys} (the keys collected, without the finish key).

     - Keys not in C{validKeys} are ignored (finish keys too, seed 001).
     - A key in C{finishKeys} ends the collection; reaching C{maxKeys}
       keys ends it too.
     - C{playContent} is played at the start; with C{ifBreakOnKey} the
       first valid key stops it.
     - The first-key timer (C{firstKeyTimeout} seconds) starts once the
       prompt has finished (at once without a prompt); each key starts the
       next-key timer (C{continuesKeysTimeout} seconds).
     - On a timeout the prompt is played again, up to C{playRepeat} times,
       and the timer starts over; then the collection ends: with
       C{error} C{"timeout"} if no key came, else without error.
     - A C{playContent} that cannot be played gives an C{error} at once.
    """

    wantsKeys = True

    def __init__(self, audio, validKeys="0123456789*#", maxKeys=1, finishKeys="#",
                 firstKeyTimeout=45, continuesKeysTimeout=30, playContent=None, playRepeat=0,
                 ifBreakOnKey=True):
        Action.__init__(self, audio, keys="")
        self._valid = str(validKeys or "").upper()
        self._maxKeys = maxKeys
        self._finishKeys = str(finishKeys or "").upper()
        self._firstTimeout = firstKeyTimeout
        self._nextTimeout = continuesKeysTimeout
        self._content = playContent
        self._repeats = max(0, int(playRepeat or 0))
        self._breakOnKey = ifBreakOnKey
        self._samples = None
        self._player = None
        self._timer = None
        self._keys = ""

    def _begin(self):
        if self._content:
            try:
                self._samples = loadContent(self._content, self.audio.rate)
            except ContentError as e:
                self.finish(error=str(e))
                return
            self._playPrompt()
        else:
            self._arm(self._firstTimeout)

    def _playPrompt(self):
        self._cancelTimer()
        self._player = PromptPlayer(self.audio, PromptSource(self._samples), self._promptDone)
        self._player.start()

    def _promptDone(self):
        self._player = None
        if not self.done:
            self._arm(self._nextTimeout if self._keys else self._firstTimeout)

    def _stopPrompt(self):
        if self._player is not None:
            self._player.stop()
            self._player = None

    def _arm(self, seconds):
        self._cancelTimer()
        if seconds is not None and seconds > 0:
            self._timer = self.clock.callLater(seconds, self._timedOut)

    def _cancelTimer(self):
        if self._timer is not None and self._timer.active():
            self._timer.cancel()
        self._timer = None

    def _timedOut(self):
        self._timer = None
        if self._repeats > 0 and self._samples is not None:
            self._repeats -= 1
            self._playPrompt()
            return
        self.finish(error=None if self._keys else "timeout")

    def keyPressed(self, key):
        key = key.upper()
        if key not in self._valid:
            return
        if self._breakOnKey:
            self._stopPrompt()
        if key in self._finishKeys:
            self.finish()
            return
        self._keys += key
        self.result["keys"] = self._keys
        if self._maxKeys and len(self._keys) >= self._maxKeys:
            self.finish()
            return
        if self._player is None:
            self._arm(self._nextTimeout)

    def _end(self):
        self._cancelTimer()
        self._stopPrompt()
