# -*- test-case-name: linkrtc.call.test.test_calls -*-
"""The ring timeout: a call that rings longer than C{ringTimeout} seconds gets 480."""

from linkrtc.call.events import TimerEvent
from linkrtc.call.operators.base import Operator
from linkrtc.call.states import DROPPED

#: The name of the ring timer.
RING_TIMER = "ring"


class OpStartRingTimer(Operator):
    """C{calling} entry: start the ring timer (C{services.ringTimeout} seconds, default 60)."""

    name = "OpStartRingTimer"

    def process(self, call, event):
        call.startTimer(RING_TIMER, call.services.ringTimeout)


class OpStopRingTimer(Operator):
    """C{answering} entry: stop the ring timer."""

    name = "OpStopRingTimer"

    def process(self, call, event):
        call.cancelTimer(RING_TIMER)


class OpRingTimeout(Operator):
    """C{calling}/C{ringing}, when the ring timer fires: 480 (no answer) and C{dropped}."""

    name = "OpRingTimeout"
    handles = (TimerEvent,)
    transitions = (DROPPED,)

    def process(self, call, event):
        if event.name != RING_TIMER:
            return None
        return call.end(480, "no answer", "sys")
