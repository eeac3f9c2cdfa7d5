# -*- test-case-name: linkrtc.call.test.test_calls -*-
"""The ring timeout: a call that rings longer than C{ringTimeout} seconds gets 480."""

from linkrtc.call.operators.base import Operator, TimeoutOperator

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


class OpRingTimeout(TimeoutOperator):
    """C{calling}/C{ringing}, when the ring timer fires: 480 (no answer) and C{dropped}."""

    name = "OpRingTimeout"
    timer = RING_TIMER
    cause = 480
    reason = "no answer"
