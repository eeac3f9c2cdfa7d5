# -*- test-case-name: linkrtc.call.test.test_calls -*-
"""
Entry operators that announce a published state: to the application
(C{{"event": "state"}}) and to the attached clients (C{{"type": "state"}}).
"""

from linkrtc.call.operators.base import Operator
from linkrtc.call.states import CONFIRMED, RINGING


def _cause(call, state):
    """
    The C{cause} of a C{state} message: the ending's cause for C{dropped},
    the SIP status that brought the state for C{ringing} (180, or the
    far end's 180/183 for an outgoing call) and C{confirmed} (200, or the
    far end's 2xx), C{None} for the others (C{calling}).
    """
    if getattr(call.state, "final", False):
        return call.ending.cause if call.ending is not None else None
    if state == RINGING:
        return call.provisionalStatus or 180
    if state == CONFIRMED:
        final = call.finalStatus
        return final if isinstance(final, int) and 200 <= final < 300 else 200
    return None


class OpNotifyApplication(Operator):
    """
    Entry of C{calling}, C{ringing}, C{confirmed}, C{dropped}: send the
    application C{{"event": "state", "call", "state", "client", "cause"}}
    (and C{"reason"} when dropped). C{client} is the client the call was
    routed to (incoming) or placed by (outgoing), C{None} before routing.
    """

    name = "OpNotifyApplication"

    def process(self, call, event):
        state = getattr(call.state, "published", None)
        if state is None:
            return
        message = {"event": "state", "call": call.id, "state": state,
                   "client": call.clientName, "cause": _cause(call, state)}
        if getattr(call.state, "final", False) and call.ending is not None:
            message["reason"] = call.ending.reason
        call.notify(message)


class OpNotifyClients(Operator):
    """
    Entry of C{ringing}, C{confirmed}, C{dropped}: send every attached
    connection C{{"type": "state", "call", "state", "cause"}} (C{cause}:
    180 / 200 for C{ringing} / C{confirmed}, the ending's for C{dropped}).
    """

    name = "OpNotifyClients"

    def process(self, call, event):
        state = getattr(call.state, "published", None)
        if state is None:
            return
        call.tellClients({"type": "state", "state": state, "cause": _cause(call, state)})
