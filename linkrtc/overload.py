# -*- test-case-name: linkrtc.test.test_overload -*-
"""
Overload control by event-loop lag (docs/operations.rst, "Overload").

A switch given more calls than it can carry should refuse the surplus at
once (503 with C{Retry-After}, RFC 3261 §21.5.4) rather than queue every
INVITE until each call's post-dial delay is seconds long. LinkRTC runs on
one event loop, so "more than it can carry" shows as the loop falling
behind: a timer due every L{LoopLagMonitor.interval} seconds fires late by
as long as the work queued before it (a burst of datagrams read in one go,
a long collection). L{LoopLagMonitor} measures that lateness, smoothed, and
L{linkrtc.drain.Admission} refuses new INVITEs while it is above
C{--max-loop-lag}; requests inside a dialog (ACK, BYE, re-INVITE) are
never refused, so the calls already taken go on.
"""

from twisted.application.service import Service


class LoopLagMonitor(Service):
    """
    Measures the event loop's lag: every L{interval} seconds a timer is
    set, and how late it fires (clock seconds past its due time, at least
    0) is one sample; L{lag} is their exponentially weighted moving
    average, each sample weighing L{weight}, so one late tick (a process
    descheduled once) moves it a little and a loop that stays behind moves
    it fully within a few ticks.

    Runs while the service runs (C{startService} / C{stopService}).

    @ivar clock: an C{IReactorTime}.
    @ivar interval: seconds between samples (C{float}, default 0.1).
    @ivar weight: the weight of a new sample in L{lag}, 0 < weight <= 1.
    @ivar lag: the smoothed lag, seconds (C{float}; 0.0 before a sample).
    @ivar lastLag: the latest sample, seconds (C{float}).
    """

    name = "loop-lag"

    def __init__(self, clock, interval=0.1, weight=0.3):
        """
        @raise ValueError: if C{interval} is not positive or C{weight} is
            outside (0, 1].
        """
        if not interval > 0:
            raise ValueError(f"interval must be positive, not {interval!r}")
        if not 0 < weight <= 1:
            raise ValueError(f"weight must be in (0, 1], not {weight!r}")
        self.clock = clock
        self.interval = float(interval)
        self.weight = float(weight)
        self.lag = 0.0
        self.lastLag = 0.0
        self._due = None
        self._call = None

    def startService(self):
        Service.startService(self)
        self._schedule()

    def stopService(self):
        Service.stopService(self)
        if self._call is not None and self._call.active():
            self._call.cancel()
        self._call = None

    def _schedule(self):
        self._due = self.clock.seconds() + self.interval
        self._call = self.clock.callLater(self.interval, self._tick)

    def _tick(self):
        self._call = None
        self.lastLag = max(0.0, self.clock.seconds() - self._due)
        self.lag += self.weight * (self.lastLag - self.lag)
        self._schedule()


__all__ = ["LoopLagMonitor"]
