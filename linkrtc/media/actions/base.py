# -*- test-case-name: linkrtc.media.actions.test.test_leg -*-
"""
What the actions share: L{FrameClock} (20 ms pacing on the injected
clock), L{Action} (one running action and its result C{dict}) and
L{Partner} (the second leg's side of a connection or a conference seat).
"""

from twisted.internet import defer
from twisted.logger import Logger

from linkrtc.media.actions.pcm import FRAME_SECONDS

log = Logger()


class FrameClock:
    """
    Calls C{tick(count)} every 20 ms of the injected clock, the first time
    at once; C{count} is the number of frames due (more than 1 when the
    reactor was late, so the pace stays 50 frames a second on average).
    Deadlines are kept from the start (no drift).

    @param clock: an L{IReactorTime}.
    @param tick: a callable taking the C{int} frame count.
    """

    #: Frames sent at most in one late call (a stalled reactor does not burst more).
    MAX_CATCH_UP = 10

    def __init__(self, clock, tick):
        self._clock = clock
        self._tick = tick
        self._call = None
        self._due = None
        self.running = False

    def start(self, now=True):
        """Start ticking: the first frame at once (C{now}) or in 20 ms."""
        if self.running:
            return
        self.running = True
        self._due = self._clock.seconds()
        if now:
            self._fire()
        else:
            self._due += FRAME_SECONDS
            self._call = self._clock.callLater(FRAME_SECONDS, self._fire)

    def _fire(self):
        self._call = None
        now = self._clock.seconds()
        count = int((now - self._due) / FRAME_SECONDS + 1e-6) + 1
        if count > self.MAX_CATCH_UP:
            self._due += (count - self.MAX_CATCH_UP) * FRAME_SECONDS
            count = self.MAX_CATCH_UP
        self._due += count * FRAME_SECONDS
        try:
            self._tick(count)
        except Exception:
            log.failure("a 20 ms media tick failed")
        if self.running:
            self._call = self._clock.callLater(max(0.0, self._due - self._clock.seconds()),
                                               self._fire)

    def stop(self):
        self.running = False
        if self._call is not None and self._call.active():
            self._call.cancel()
        self._call = None


class Action:
    """
    One running action on one or more legs: its L{Deferred} fires once
    with its result C{dict} (C{error}, C{begin_time}, C{end_time} in Unix
    seconds of the clock, and the action's own keys).

    Subclasses implement C{_begin()} and C{_end()} and may override
    C{keyPressed(key)} and C{stopError()}.

    @ivar audio: the L{RTPAudio} the action runs on.
    @ivar deferred: fires with the result.
    @ivar wantsKeys: C{True} if the action uses DTMF keys (then a leg with
        no RFC 4733 events detects in-band tones while it runs).
    """

    wantsKeys = False

    def __init__(self, audio, **extra):
        self.audio = audio
        self.clock = audio.clock
        self.deferred = defer.Deferred()
        self.result = {"error": None, "begin_time": None, "end_time": None}
        self.result.update(extra)
        self.done = False

    def begin(self):
        self.result["begin_time"] = self.clock.seconds()
        try:
            self._begin()
        except Exception as e:
            log.failure("starting {action} failed", action=type(self).__name__)
            self.finish(error="%s failed: %s" % (type(self).__name__, e))

    def _begin(self):
        pass

    def _end(self):
        pass

    def keyPressed(self, key):
        """A DTMF key from the far end (RFC 4733) while the action runs."""

    def stopError(self):
        """@return: the C{error} of a result ended by L{ICallAudio.stop}: C{None}."""
        return None

    def stop(self):
        self.finish(error=self.stopError())

    def finish(self, error=None, **extra):
        """End the action (once): release what it holds and fire L{deferred}."""
        if self.done:
            return
        self.done = True
        try:
            self._end()
        except Exception:
            log.failure("ending {action} failed", action=type(self).__name__)
        if error is not None:
            self.result["error"] = error
        self.result.update(extra)
        self.result["end_time"] = self.clock.seconds()
        self.audio._actionEnded(self)
        self.deferred.callback(self.result)


class Partner:
    """
    Stands in the action slot of the second leg of a connection: that leg
    is busy, and L{ICallAudio.stop} on it ends the connection.
    """

    def __init__(self, action):
        self.action = action

    def keyPressed(self, key):
        self.action.partnerKey(key)

    def stop(self):
        self.action.stop()
