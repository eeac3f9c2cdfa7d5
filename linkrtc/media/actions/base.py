# -*- test-case-name: linkrtc.media.actions.test.test_leg -*-
"""
What the actions share: L{FrameClock} (20 ms pacing on the injected
clock), L{Action} (one running action and its result C{dict}) and
L{Partner} (the second leg's side of a connection or a conference seat).
"""

from twisted.internet import defer
from twisted.internet.task import LoopingCall
from twisted.logger import Logger

from linkrtc.media.actions.pcm import FRAME_SECONDS

log = Logger()


class FrameClock:
    """
    Calls C{tick(count)} every 20 ms of the injected clock; C{count} is the
    number of frames due (more than 1 when the reactor was late, so the
    pace stays 50 frames a second on average).

    @param clock: an L{IReactorTime}.
    @param tick: a callable taking the C{int} frame count.
    """

    def __init__(self, clock, tick):
        self._tick = tick
        self._loop = LoopingCall.withCount(self._due)
        self._loop.clock = clock

    def _due(self, count):
        try:
            self._tick(count)
        except Exception:
            log.failure("a 20 ms media tick failed")

    def start(self):
        if not self._loop.running:
            self._loop.start(FRAME_SECONDS, now=True)

    def stop(self):
        if self._loop.running:
            self._loop.stop()

    @property
    def running(self):
        return self._loop.running


class Action:
    """
    One running action on one or more legs: its L{Deferred} fires once
    with its result C{dict} (C{error}, C{begin_time}, C{end_time} in Unix
    seconds of the clock, and the action's own keys).

    Subclasses implement C{_begin()} and C{_end()} and may override
    C{keyPressed(key)} and C{stopError()}.

    @ivar audio: the L{RTPAudio} the action runs on.
    @ivar deferred: fires with the result.
    """

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
