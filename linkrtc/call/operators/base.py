# -*- test-case-name: linkrtc.call.test.test_operators -*-
"""
A base class for operators (optional: any L{IOperator} provider will do).
"""

from zope.interface import implementer

from linkrtc.call.events import TimerEvent
from linkrtc.call.states import DROPPED
from linkrtc.interfaces import IOperator


@implementer(IOperator)
class Operator:
    """
    One step of call handling.

    Subclasses set:
      - C{name}: unique name (C{str}), used in logs and traces;
      - C{handles}: a tuple of event classes the operator looks at; the
        machine skips it for other events (empty: every event);
      - C{transitions}: the names of the states C{process} may return
        (checked when the machine is built, and when it returns one);
        C{None} (the default) turns both checks off, so declare it.

    and override L{process}.
    """

    name = "Operator"
    handles = ()
    transitions = None

    def process(self, call, event):
        """
        @return: the next state's name, the current state's name to say
            "handled, stay", or C{None} to let the next operator look.
        """
        return None

    def __repr__(self):
        return f"<{self.name}>"


class TimeoutOperator(Operator):
    """
    An operator that ends the call when one named timer fires.

    Subclasses set C{name}, C{timer} (the timer's name, C{str}), C{cause}
    (C{int} SIP status) and C{reason} (C{str}); the call ends with them,
    by C{"sys"}, and goes C{dropped}. Other timers are left to the next
    operator.
    """

    handles = (TimerEvent,)
    transitions = (DROPPED,)
    timer = None
    cause = None
    reason = None

    def process(self, call, event):
        if event.name != self.timer:
            return None
        return call.end(self.cause, self.reason, "sys")


def hangupCause(event, cause, reason):
    """
    The cause and reason of a client's C{hangup}: its own C{cause} and
    C{reason} when it gave them (a failure on its side, e.g. 488 "media
    set-up failed", docs/signalling.rst), else the defaults.

    @param event: the L{linkrtc.call.events.ClientMessageEvent}.
    @param cause: the default cause, C{int} SIP status.
    @param reason: the default reason, C{str}.
    @return: C{(cause, reason)}.
    """
    message = getattr(event, "message", None) or {}
    given = message.get("cause")
    if given is None:
        return cause, message.get("reason") or reason
    return given, message.get("reason") or f"client failure ({given})"
