# -*- test-case-name: linkrtc.call.test.test_machine -*-
"""
The typed events a call's state machine processes.

Every event an operator sees is one of these classes, so an operator's type
guard is one C{isinstance} check (or its C{handles} attribute, which lets
the machine skip it). Events are plain data: they hold what arrived and do
nothing themselves.

Sources:
  - the SIP leg (L{InviteEvent}, L{SIPRequestEvent}, L{SIPAckTimeoutEvent},
    L{SIPLegTerminatedEvent});
  - clients over the WebSocket (L{ClientMessageEvent}, L{ClientLostEvent});
  - the application (L{ApplicationDecisionEvent});
  - the call's own timers (L{TimerEvent});
  - the media session (L{MediaResultEvent} for the results of its
    Deferred-returning methods, L{MediaDigitsEvent}, L{MediaTimeoutEvent}).
"""

from dataclasses import dataclass, field
from typing import Any, Callable


@dataclass(eq=False)
class CallEvent:
    """Base class of every event a call processes."""

    #: Short name used in logs and traces.
    kind = "event"

    def describe(self):
        """@return: a short C{str} for the transition log."""
        return self.kind


# -- SIP ---------------------------------------------------------------------


@dataclass(eq=False)
class SIPRequestEvent(CallEvent):
    """
    A SIP request for this call: CANCEL, ACK, or an in-dialog request
    (BYE, re-INVITE, INFO, UPDATE, OPTIONS, ...).

    @ivar request: the L{linkrtc.sip.message.Request}.
    @ivar respond: C{respond(status, reason=None, body=None,
        contentType=None, headers=())} for in-dialog requests that need a
        final response; C{None} for CANCEL (already answered by the leg),
        ACK and the initial INVITE.
    """

    request: Any
    respond: Callable[..., Any] | None = None
    kind = "sip"

    @property
    def method(self):
        """The request's method, C{str}."""
        return self.request.method

    def describe(self):
        return f"sip:{self.method}"


@dataclass(eq=False)
class InviteEvent(SIPRequestEvent):
    """The initial INVITE that made the call (RFC 3261 §13.3); first event of every call."""

    kind = "invite"

    def describe(self):
        return "sip:INVITE"


@dataclass(eq=False)
class SIPCancelEvent(SIPRequestEvent):
    """
    The SIP side cancelled the INVITE before its final response: a CANCEL
    (RFC 3261 §9.2), or a BYE that arrived before the dialog was confirmed
    (§15.1.2). The leg already answered that request; the INVITE still needs
    its final response (487).
    """

    kind = "cancel"

    def describe(self):
        return "sip:CANCEL"


@dataclass(eq=False)
class SIPAckTimeoutEvent(CallEvent):
    """No ACK arrived for our 2xx within 64*T1 seconds (RFC 3261 §13.3.1.4)."""

    kind = "ack-timeout"


@dataclass(eq=False)
class SIPLegTerminatedEvent(CallEvent):
    """
    The SIP leg is gone for a reason other than BYE/CANCEL (transport
    failure, transaction timeout).

    @ivar reason: a short C{str}.
    """

    reason: str = ""
    kind = "leg-terminated"


# -- Clients -----------------------------------------------------------------


@dataclass(eq=False)
class ClientMessageEvent(CallEvent):
    """
    A validated client message about this call (C{ringing}, C{accept},
    C{reject}, C{hangup}, C{dtmf}, C{hold}, C{unhold}).

    @ivar connection: the L{linkrtc.interfaces.IClientConnection} it came on.
    @ivar message: the C{dict}, with C{"type"} and C{"call"}.
    """

    connection: Any
    message: dict
    kind = "client"

    @property
    def type(self):
        """The message's C{"type"}, C{str}."""
        return self.message.get("type")

    def describe(self):
        return f"client:{self.type}"


@dataclass(eq=False)
class ClientLostEvent(CallEvent):
    """
    A client connection attached to this call closed.

    @ivar connection: the L{linkrtc.interfaces.IClientConnection}.
    """

    connection: Any
    kind = "client-lost"


# -- Application ---------------------------------------------------------------


@dataclass(eq=False)
class ApplicationDecisionEvent(CallEvent):
    """
    The application's answer to C{incoming} (seed 000 step 1.3).

    @ivar decision: the decision C{dict}: C{{"action": "route", "client":
        NAME}} or C{{"action": "reject", "status": INT}}.
    """

    decision: dict = field(default_factory=dict)
    kind = "decision"

    def describe(self):
        return f"decision:{self.decision.get('action')}"


# -- Timers --------------------------------------------------------------------


@dataclass(eq=False)
class TimerEvent(CallEvent):
    """
    One of the call's timers fired.

    @ivar name: the timer's name (C{"ring"}, or a plugin's own).
    """

    name: str = ""
    kind = "timer"

    def describe(self):
        return f"timer:{self.name}"


# -- Media ---------------------------------------------------------------------


@dataclass(eq=False)
class MediaResultEvent(CallEvent):
    """
    A Deferred-returning L{linkrtc.interfaces.IMediaSession} method
    finished.

    @ivar operation: the method's name: C{"clientOffer"}, C{"sipAnswer"},
        C{"sipAckBody"} or C{"sipReoffer"}.
    @ivar result: its result when it succeeded.
    @ivar failure: a L{twisted.python.failure.Failure} when it failed, else
        C{None}.
    """

    operation: str = ""
    result: Any = None
    failure: Any = None
    kind = "media-result"

    @property
    def succeeded(self):
        """C{True} when the operation succeeded."""
        return self.failure is None

    def describe(self):
        return f"media:{self.operation}:{'ok' if self.succeeded else 'failed'}"


@dataclass(eq=False)
class LegReplacedEvent(CallEvent):
    """
    An INVITE with Replaces (RFC 3891) names this call's dialog: C{leg}
    (its new, unanswered L{linkrtc.interfaces.ISIPServerLeg}) is to take
    the place of the call's SIP leg (L{linkrtc.call.transfer}).
    """

    leg: Any
    kind = "replaces"


@dataclass(eq=False)
class MediaDigitsEvent(CallEvent):
    """
    DTMF from the SIP side (RFC 4733 via the media session, or SIP INFO).

    @ivar digits: C{str} of 0-9*#A-D.
    """

    digits: str = ""
    kind = "media-digits"


@dataclass(eq=False)
class MediaTimeoutEvent(CallEvent):
    """No RTP from the SIP side for the media timeout."""

    kind = "media-timeout"


@dataclass(eq=False)
class ShutdownEvent(CallEvent):
    """LinkRTC is stopping: every call ends (503 before answer, BYE after)."""

    kind = "shutdown"


#: Events coming from outside the call (everything but media results).
EXTERNAL_EVENTS = (
    SIPRequestEvent, SIPCancelEvent, SIPAckTimeoutEvent, SIPLegTerminatedEvent, ClientMessageEvent,
    ClientLostEvent, ApplicationDecisionEvent, TimerEvent, MediaDigitsEvent,
    MediaTimeoutEvent, ShutdownEvent,
)


# -- The call-control API (seed 001, linkrtc.app) ----------------------------------


@dataclass(eq=False)
class ApiCommandEvent(CallEvent):
    """
    A call-control method (seed 001 C{sys.call.*}) for this call, its
    parameters already checked (L{linkrtc.app.methods}).

    The operator that takes it fires C{result} (a L{Deferred}) with the
    method's result, or fails it with L{linkrtc.app.errors.ApiError}; a
    command no operator takes in the current state fails with a
    wrong-state error naming the state (L{linkrtc.call.call.Call}).

    @ivar method: the method's short name (C{"answer"}, C{"play_start"}...).
    @ivar params: C{dict} of the method's parameters, defaults filled in.
    @ivar result: the L{Deferred} the caller waits on.
    """

    method: str = ""
    params: dict = field(default_factory=dict)
    result: Any = None
    kind = "api"

    def describe(self):
        return f"api:{self.method}"

    def reply(self, value=None):
        """Fire L{result} with C{value} (once)."""
        if self.result is not None and not self.result.called:
            self.result.callback(value)

    def refuse(self, error):
        """Fail L{result} with C{error} (an L{Exception}), once."""
        if self.result is not None and not self.result.called:
            self.result.errback(error)
