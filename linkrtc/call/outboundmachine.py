# -*- test-case-name: linkrtc.call.test.test_outbound -*-
"""
The topology of outgoing calls (client -> SIP trunk): its states, timers
and the events that drive it. The picture and the media story are in
L{linkrtc.call.outbound}.
"""

from dataclasses import dataclass
from typing import Any

from linkrtc.call.events import CallEvent
from linkrtc.call.machine import CallStateMachine
from linkrtc.call.state import State
from linkrtc.call.states import CALLING, CONFIRMED, DROPPED, RINGING

#: The internal state of an outgoing call while the application decides.
ROUTING = "routing"

#: The states of an outgoing call, in the order of a successful one.
OUTBOUND_STATE_NAMES = (ROUTING, CALLING, RINGING, CONFIRMED, DROPPED)

#: The timers of an outgoing call.
RING_TIMER = "ring"
ANSWER_TIMER = "answer"


def outboundStates():
    """@return: a new C{list} of the outbound L{State}s, with empty queues."""
    return [
        State(ROUTING, published=None),
        State(CALLING, published=CALLING),
        State(RINGING, published=RINGING),
        State(CONFIRMED, published=CONFIRMED),
        State(DROPPED, published=DROPPED, final=True),
    ]


def buildOutboundMachine(factories=None):
    """
    The outbound topology with its stock operators
    (L{linkrtc.plugins.linkrtc_builtin.outboundFactories}).

    @return: a validated L{CallStateMachine} starting in C{routing}.
    @raise linkrtc.error.OperatorConfigError: for a bad placement.
    """
    # Imported here: the registry and the plugin's factory lists import the
    # outbound operators, which import this module.
    from linkrtc.call.registry import _place
    from linkrtc.plugins import linkrtc_builtin

    if factories is None:
        factories = linkrtc_builtin.outboundFactories
    states = {state.name: state for state in outboundStates()}
    for factory in factories:
        _place(states, factory, None)
    return CallStateMachine(states.values(), ROUTING)


# -- events ----------------------------------------------------------------------


@dataclass(eq=False)
class OutgoingCallEvent(CallEvent):
    """
    The client's C{call} message that made the call; first event of every
    outgoing call.

    @ivar message: the validated C{dict} (C{to}, C{sdp}, C{ref}).
    """

    message: dict
    kind = "outgoing"

    def describe(self):
        return "client:call"


@dataclass(eq=False)
class SIPResponseEvent(CallEvent):
    """
    A provisional (101-199) or 2xx response to our INVITE.

    @ivar response: the L{linkrtc.sip.message.Response}.
    """

    response: Any
    kind = "sip-response"

    @property
    def status(self):
        """The response's status, C{int}."""
        return self.response.status

    def describe(self):
        return f"sip:{self.status}"


@dataclass(eq=False)
class SIPFailureEvent(CallEvent):
    """
    Our INVITE failed (3xx not followed, 4xx-6xx, no answer, transport).

    @ivar status: C{int} SIP status (408 for no response, 503 transport).
    @ivar reason: C{str}.
    @ivar response: the final response or C{None}.
    """

    status: int = 500
    reason: str = ""
    response: Any = None
    kind = "sip-failure"

    def describe(self):
        return f"sip:failed:{self.status}"
