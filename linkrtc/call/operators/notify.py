# -*- test-case-name: linkrtc.call.test.test_calls -*-
"""
Entry operators that announce a published state: to the application
(C{{"event": "state"}}) and to the attached clients (C{{"type": "state"}}).
"""

from linkrtc.call.operators.base import Operator


def _cause(call):
    if getattr(call.state, "final", False) and call.ending is not None:
        return call.ending.cause
    return None


class OpNotifyApplication(Operator):
    """
    Entry of C{calling}, C{ringing}, C{confirmed}, C{dropped}: send the
    application C{{"event": "state", "call", "state", "cause"}} (and
    C{"reason"} when dropped).
    """

    name = "OpNotifyApplication"

    def process(self, call, event):
        state = getattr(call.state, "published", None)
        if state is None:
            return
        message = {"event": "state", "call": call.id, "state": state, "cause": _cause(call)}
        if getattr(call.state, "final", False) and call.ending is not None:
            message["reason"] = call.ending.reason
        call.notify(message)


class OpNotifyClients(Operator):
    """
    Entry of C{ringing}, C{confirmed}, C{dropped}: send every attached
    connection C{{"type": "state", "call", "state", "cause"}}.
    """

    name = "OpNotifyClients"

    def process(self, call, event):
        state = getattr(call.state, "published", None)
        if state is None:
            return
        call.tellClients({"type": "state", "state": state, "cause": _cause(call)})
