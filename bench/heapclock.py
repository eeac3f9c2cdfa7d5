"""
A fake L{IReactorTime} on a heap, shared by the in-process benchmarks
(C{bench/actions.py}, C{bench/sip_stack.py}): Twisted's C{task.Clock}
sorts its whole list on every C{callLater}, which would cost more than
what the benchmarks measure. Calls due at the same time run in the order
they were scheduled, as in the real reactors.
"""

import heapq


class Delayed:
    """An C{IDelayedCall} of L{HeapClock}: C{f(*args, **kw)} at C{time} (seconds)."""

    __slots__ = ("time", "seq", "f", "args", "kw", "cancelled", "called")

    def __init__(self, when, seq, f, args, kw):
        self.time, self.seq, self.f, self.args, self.kw = when, seq, f, args, kw
        self.cancelled = self.called = False

    def __lt__(self, other):
        return self.time < other.time or (self.time == other.time and self.seq < other.seq)

    def getTime(self):
        return self.time

    def active(self):
        return not (self.cancelled or self.called)

    def cancel(self):
        self.cancelled = True


class HeapClock:
    """
    An L{IReactorTime} (C{seconds}, C{callLater}, C{getDelayedCalls}) moved
    by hand with L{advance}.

    @param now: the starting time (seconds).
    @param slack: L{advance} also runs the calls due up to C{slack} seconds
        after the new time (absorbs float rounding of sums of periods).
    """

    def __init__(self, now=0.0, slack=0.0):
        self.now = now
        self.slack = slack
        self._heap = []
        self._seq = 0

    def seconds(self):
        return self.now

    def callLater(self, delay, f, *args, **kw):
        self._seq += 1
        call = Delayed(self.now + delay, self._seq, f, args, kw)
        heapq.heappush(self._heap, call)
        return call

    def getDelayedCalls(self):
        return [c for c in self._heap if c.active()]

    def advance(self, seconds):
        """Move the time on by C{seconds} and run, in time order, the calls now due."""
        self.now += seconds
        heap = self._heap
        while heap and heap[0].time <= self.now + self.slack:
            call = heapq.heappop(heap)
            if not call.cancelled:
                call.called = True
                call.f(*call.args, **call.kw)
