# -*- test-case-name: linkrtc.app.test.test_control -*-
"""
Operators of calls an application controls through the call-control API
(seed 001 C{sys.call.*}, L{linkrtc.app}): the states C{Initiated},
C{Answer}, C{Idle}, one per CTI action (C{Play}, C{Record}, C{SendDtmf},
C{ReceiveDtmf}, C{Dial}, C{Connect}, C{Conf}) and C{dropped} (the seed's
C{Released}).

The commands arrive as L{ApiCommandEvent}s; what they do to the call's
media and what the application is told is the job of the call's
resource (C{call.api}, a L{linkrtc.app.control.Resource}): these
operators decide the state. A command no operator takes fails with a
wrong-state error naming the state (L{linkrtc.call.call.Call}).
"""

from linkrtc.call.call import SIP_NONE
from linkrtc.call.events import (
    ApiCommandEvent,
    ApplicationDecisionEvent,
    MediaDigitsEvent,
    MediaResultEvent,
)
from linkrtc.call.operators.base import Operator, TimeoutOperator
from linkrtc.call.states import (
    ACTION_STATES,
    ANSWER,
    API_ANSWERED_STATES,
    CALLING,
    CONFIRMED,
    CONNECT,
    DIAL,
    DROPPED,
    IDLE,
    INITIATED,
)
from linkrtc.error import ApiError

#: Timer: the application must answer, drop, redirect or route within it.
DECIDE_TIMER = "api-decide"
#: Timer: C{max_answer_seconds} of an answered call (seed 001).
ANSWER_TIMER = "api-answer"

#: The prefix of the L{MediaResultEvent}s of CTI actions (C{"api.play"}...).
ACTION_RESULT = "api."


def _refuse(event, failure):
    """Fail C{event}'s result with C{failure} (an L{ApiError}) and stay."""
    event.refuse(failure)


class OpApiTakeControl(Operator):
    """
    C{pending}, first, on the application's decision C{{"action": "api"}}
    (an C{/api} application is connected, an in-process one is loaded, or
    the webhook said so): the call becomes a seed 001 resource in
    C{Initiated}. Without a call-control API: 503.
    """

    name = "OpApiTakeControl"
    handles = (ApplicationDecisionEvent,)
    transitions = (INITIATED, DROPPED)

    def process(self, call, event):
        decision = event.decision if isinstance(event.decision, dict) else {}
        if decision.get("action") != "api":
            return None
        if call.services.callControl is None:
            return call.end(503, "no call-control application", "sys")
        return INITIATED


class OpApiIncoming(Operator):
    """
    C{Initiated} entry: make the call a resource (C{call.api}), send 180
    Ringing, start the decision timer (the webhook timeout) and raise
    C{on_incoming}.
    """

    name = "OpApiIncoming"

    def process(self, call, event):
        control = call.services.callControl
        if control is None or call.api is not None:
            return
        control.adoptIncoming(call)
        call.startTimer(DECIDE_TIMER, control.decideTimeout)
        call.api.emitIncoming()


class OpApiDecideTimeout(TimeoutOperator):
    """C{Initiated}, when the decision timer fires: 503 (as a webhook that fails)."""

    name = "OpApiDecideTimeout"
    timer = DECIDE_TIMER
    cause = 503
    reason = "the application did not answer the call in time"


class OpApiInitiated(Operator):
    """
    C{Initiated}, on C{answer} (the media session answers the SIP offer
    itself: C{Answer}), C{redirect} (302, C{dropped}) and C{route} (hand
    the call to a browser client as the webhook's C{route} does:
    C{calling}, seed 000 from there).
    """

    name = "OpApiInitiated"
    handles = (ApiCommandEvent,)
    transitions = (ANSWER, CALLING, DROPPED, INITIATED)

    def process(self, call, event):
        if call.api is None:
            return None
        method = event.method
        if method == "answer":
            if call.direction != "inbound":
                return _refuse(event, ApiError.wrongState("answer (outbound call)", INITIATED))
            try:
                call.api.startAnswer(event.params)
            except ApiError as e:
                return _refuse(event, e)
            call.cancelTimer(DECIDE_TIMER)
            event.reply(None)
            return ANSWER
        if method == "redirect":
            call.cancelTimer(DECIDE_TIMER)
            call.api.redirect(event.params["redirect_uri"])
            event.reply(None)
            return call.end(302, "redirected by the application", "sys", sip=SIP_NONE)
        if method == "route":
            client = event.params["client"]
            connections = list(call.services.directory.connectionsFor(client) or ())
            if not connections:
                return _refuse(event, ApiError(-32004, f"client {client!r} is not connected"))
            call.cancelTimer(DECIDE_TIMER)
            call.clientName = client
            call.connections = connections
            call.offered = list(connections)
            event.reply(None)
            return CALLING
        return None


class OpApiAnswered(Operator):
    """
    C{Answer}, on the media session's answer: 200 OK with it, the start
    CDR, C{Idle} (and C{max_answer_seconds} starts); a media failure ends
    the call with 488, a 200 OK that cannot be sent with 500.
    """

    name = "OpApiAnswered"
    handles = (MediaResultEvent,)
    transitions = (IDLE, DROPPED)

    def process(self, call, event):
        if event.operation != "apiAnswer":
            return None
        if not event.succeeded:
            return call.end(488, f"answer not possible: {event.failure.getErrorMessage()}", "sys")
        call.localSdp = event.result
        if not call.sendFinal(200, body=event.result, contentType="application/sdp"):
            return call.end(500, "the 200 OK could not be built or sent", "sys")
        call.answered()
        call.api.answeredNow()
        return IDLE


class OpApiIdle(Operator):
    """
    C{Idle}, on a CTI action's start (C{play_start}, C{record_start},
    C{send_dtmf_start}, C{receive_dtmf_start}, C{connect_start},
    C{conf_enter}): the resource starts it on the call's audio and the
    call goes to the action's state. Also the passive side of another
    call's C{connect_start} and a child dialled with this call as parent
    (C{Dial}).
    """

    name = "OpApiIdle"
    handles = (ApiCommandEvent,)
    transitions = ACTION_STATES

    def process(self, call, event):
        if call.api is None:
            return None
        try:
            state = call.api.startAction(event.method, event.params)
        except ApiError as e:
            return _refuse(event, e)
        if state is None:
            return None
        event.reply(None)
        return state


class OpApiAction(Operator):
    """
    The action states: the action's stop method (C{play_stop},
    C{record_stop}, C{stop_receive_dtmf_start}, C{connect_stop},
    C{conf_exit}) asks the audio to stop; the action's end (its
    L{MediaResultEvent} C{api.NAME}) raises its C{on_*_completed} and the
    call is C{Idle} again.
    """

    name = "OpApiAction"
    handles = (ApiCommandEvent, MediaResultEvent)
    transitions = (IDLE,) + ACTION_STATES

    def process(self, call, event):
        if call.api is None:
            return None
        if isinstance(event, MediaResultEvent):
            if not event.operation.startswith(ACTION_RESULT):
                return None
            if call.api.actionEnded(event):
                return IDLE
            return call.state.name
        try:
            handled = call.api.stopAction(event.method, event.params)
        except ApiError as e:
            return _refuse(event, e)
        if not handled:
            return None
        event.reply(None)
        return call.state.name


class OpApiCommon(Operator):
    """
    Every live state of a controlled call, last: C{nop} (keeps the
    resource; answered), C{drop} (the final response C{cause} before the
    answer, BYE after; C{dropped}).
    """

    name = "OpApiCommon"
    handles = (ApiCommandEvent,)
    transitions = (DROPPED,)

    def process(self, call, event):
        if call.api is None:
            return None
        if event.method == "nop":
            event.reply(None)
            return call.state.name
        if event.method == "drop":
            cause = event.params["cause"]
            event.reply(None)
            return call.end(cause, "dropped by the application", "sys")
        return None


class OpApiAnswerTimeout(TimeoutOperator):
    """Answered states, when C{max_answer_seconds} passed: BYE, cause 200 (seed 001)."""

    name = "OpApiAnswerTimeout"
    timer = ANSWER_TIMER
    cause = 200
    reason = "max_answer_seconds reached"


class OpApiDigits(Operator):
    """
    Answered states: DTMF from the SIP side is the audio's business (the
    running C{receive_dtmf_start}, a C{finish_keys}); the call stays.
    """

    name = "OpApiDigits"
    handles = (MediaDigitsEvent,)
    transitions = API_ANSWERED_STATES

    def process(self, call, event):
        if call.api is None:
            return None
        call.api.digitsArrived(event.digits)
        return call.state.name


class OpApiReleased(Operator):
    """
    C{dropped} entry, after the release: stop the running action (its
    C{on_*_completed} still comes, in any order with C{on_released}, as
    seed 001 warns) and raise C{on_released} with the CDR's fields.
    """

    name = "OpApiReleased"

    def process(self, call, event):
        if call.api is not None:
            call.api.released()


class OpApiLateResult(Operator):
    """C{dropped}: an action's end after the release still raises its C{on_*_completed}."""

    name = "OpApiLateResult"
    handles = (MediaResultEvent,)
    transitions = (DROPPED,)

    def process(self, call, event):
        if call.api is None or not event.operation.startswith(ACTION_RESULT):
            return None
        call.api.actionEnded(event)
        return DROPPED


#: Sentinel of L{ApiVariant}'s C{remap}: stay in the current state.
STAY = object()


class ApiVariant(Operator):
    """
    A stock operator of the seed 000 topology used in the call-control
    API's states: it runs only for controlled calls (C{call.api} set), and
    the state it returns is renamed through C{remap} (C{confirmed} means
    "stay" in C{Idle} or an action state; C{confirmed} means C{Idle} for an
    outgoing call the application dialled). Other results pass as they are.

    @param inner: the stock L{Operator}.
    @param remap: C{dict} of state name to state name or L{STAY}.
    """

    def __init__(self, inner, remap):
        self.inner = inner
        self.remap = dict(remap)
        self.name = inner.name + "Api"
        self.handles = getattr(inner, "handles", ())
        declared = set(getattr(inner, "transitions", None) or ())
        targets = {t for t in self.remap.values() if t is not STAY}
        self.transitions = tuple(sorted((declared - set(self.remap)) | targets
                                        | set(API_ANSWERED_STATES) | {INITIATED, DROPPED}))

    def process(self, call, event):
        if call.api is None:
            return None
        result = self.inner.process(call, event)
        if result is None:
            return None
        name = result if isinstance(result, str) else getattr(result, "name", result)
        mapped = self.remap.get(name, name)
        return call.state.name if mapped is STAY else mapped


def answeredVariant(inner):
    """@return: C{inner} for the answered API states: its C{confirmed} means stay."""
    return ApiVariant(inner, {CONFIRMED: STAY})


def dialVariant(inner):
    """@return: C{inner} for an application's outgoing call: C{confirmed} becomes C{Idle}."""
    return DialledVariant(inner, {CONFIRMED: IDLE})


class DialledVariant(ApiVariant):
    """
    An L{ApiVariant} for the calls an application dialled (seed 001
    C{construct}: C{call.api.direction} is C{"outbound"}): the answer
    (C{confirmed}, renamed C{Idle}) raises C{on_dial_completed}, frees the
    parent from C{Dial} and starts C{max_answer_seconds}
    (L{linkrtc.app.control.Resource.dialAnswered}). Other calls pass to
    the next operator.
    """

    def process(self, call, event):
        if call.api is None or call.api.direction != "outbound":
            return None
        result = ApiVariant.process(self, call, event)
        if result == IDLE and call.state.name != IDLE:
            call.api.dialAnswered()
        return result


__all__ = [
    "OpApiTakeControl", "OpApiIncoming", "OpApiDecideTimeout", "OpApiInitiated",
    "OpApiAnswered", "OpApiIdle", "OpApiAction", "OpApiCommon", "OpApiAnswerTimeout",
    "OpApiDigits", "OpApiReleased", "OpApiLateResult", "ApiVariant", "answeredVariant",
    "dialVariant", "DialledVariant", "DECIDE_TIMER", "ANSWER_TIMER", "ACTION_RESULT", "CONNECT", "DIAL",
]
