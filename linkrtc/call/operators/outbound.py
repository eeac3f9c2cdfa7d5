# -*- test-case-name: linkrtc.call.test.test_outbound -*-
"""
Operators of outgoing calls (client -> SIP trunk), placed in the outbound
topology of L{linkrtc.call.outbound} by
L{linkrtc.plugins.linkrtc_builtin.outboundFactories}. The confirmed call
and its ending reuse the stock operators (BYE either way, DTMF, hold,
in-dialog requests, CDR).
"""

from twisted.logger import Logger

from linkrtc.call.call import SIP_NONE
from linkrtc.call.dialer import PENDING
from linkrtc.call.events import (
    ApplicationDecisionEvent,
    ClientMessageEvent,
    MediaResultEvent,
)
from linkrtc.call.operators.base import Operator, TimeoutOperator, hangupCause
from linkrtc.call.outboundmachine import (
    ANSWER_TIMER,
    RING_TIMER,
    ROUTING,
    OutgoingCallEvent,
    SIPFailureEvent,
    SIPResponseEvent,
)
from linkrtc.call.states import CALLING, CONFIRMED, DROPPED, RINGING

log = Logger()


class OpAskOutgoing(Operator):
    """C{routing}, on the client's C{call}: ask the application (C{outgoing})."""

    name = "OpAskOutgoing"
    handles = (OutgoingCallEvent,)
    transitions = (ROUTING,)

    def process(self, call, event):
        call.askApplication()
        return ROUTING


class OpRouteOutgoing(Operator):
    """
    C{routing}, on the application's decision: C{reject} ends the call with
    its status; C{route} picks the trunk (the first by default), asks the
    media session for the INVITE's offer and makes the SIP leg; the call
    goes to C{calling}. When the offer takes time (bridge: aiortc answers
    the client first), the call stays in C{routing} until the media
    session's C{sipOffer} result; a media failure drops it with 488.
    """

    name = "OpRouteOutgoing"
    handles = (ApplicationDecisionEvent, MediaResultEvent)
    transitions = (ROUTING, CALLING, DROPPED)

    def process(self, call, event):
        if isinstance(event, MediaResultEvent):
            return self.offerMade(call, event)
        decision = event.decision if isinstance(event.decision, dict) else {}
        action = decision.get("action")
        if action == "reject":
            status = decision.get("status", 403)
            if not isinstance(status, int) or isinstance(status, bool) or not 400 <= status <= 699:
                status = 403
            return call.end(status, decision.get("reason") or "refused by the application",
                            "sys", sip=SIP_NONE)
        if action != "route":
            return call.end(500, "bad decision from the application", "sys", sip=SIP_NONE)
        refused = call.dialer.route(call, decision)
        if refused == PENDING:
            return ROUTING
        if refused is not None:
            status, reason = refused
            return call.end(status, reason, "sys", sip=SIP_NONE)
        return CALLING

    def offerMade(self, call, event):
        if event.operation != "sipOffer":
            return None
        if not event.succeeded:
            refused = call.dialer.offerFailed(call, event.failure)
        else:
            refused = call.dialer.offerReady(call, event.result)
        if refused is not None:
            status, reason = refused
            return call.end(status, reason, "sys", sip=SIP_NONE)
        return CALLING


class OpSendInvite(Operator):
    """C{calling} entry: start the ring timer (C{max_ring_seconds}) and send the INVITE."""

    name = "OpSendInvite"

    def process(self, call, event):
        if call.leg is None or call.ending is not None:
            return
        call.startTimer(RING_TIMER, call.maxRingSeconds)
        call.leg.start()


class OpOutgoingProgress(Operator):
    """
    C{calling}/C{ringing}, on a 101-199: its SDP (early media) goes
    through the media session (C{clientAnswer}) to the client as
    C{answer}, once; the call is C{ringing}. An unusable early SDP is
    logged and ignored (the 2xx's counts).
    """

    name = "OpOutgoingProgress"
    handles = (SIPResponseEvent,)
    transitions = (RINGING,)

    def process(self, call, event):
        if not 100 < event.status < 200:
            return None
        if call.provisionalStatus is None:
            call.provisionalStatus = event.status
        body = getattr(event.response, "body", b"") or b""
        if body:
            fired, result = call.answerFromSIP(body)
            if fired:
                call.takeAnswer(result)
        return RINGING


class OpRestartRingTimer(Operator):
    """C{ringing} entry: the far end rings; C{max_ring_seconds} counts from now (seed 001)."""

    name = "OpRestartRingTimer"

    def process(self, call, event):
        call.startTimer(RING_TIMER, call.maxRingSeconds)


class OpOutgoingAnswered(Operator):
    """
    C{calling}/C{ringing}, on the 2xx (already ACKed by the leg): its SDP
    goes through the media session (C{clientAnswer}) to the client as
    C{answer} unless the early one was the same; the call is
    C{confirmed}. If the media session answers later, the call waits in
    its state for that C{clientAnswer} result. Without any usable answer
    the call ends (BYE, 488). A late early-media result is sent too.
    """

    name = "OpOutgoingAnswered"
    handles = (SIPResponseEvent, MediaResultEvent)
    transitions = (CONFIRMED, DROPPED)

    def process(self, call, event):
        if isinstance(event, MediaResultEvent):
            return self.answerMade(call, event)
        if not 200 <= event.status < 300:
            return None
        call.finalStatus = event.status
        body = getattr(event.response, "body", b"") or b""
        if body:
            fired, result = call.answerFromSIP(body)
            if not fired:
                call.confirmPending = True
                return call.state.name
            if not call.takeAnswer(result):
                return call.end(488, "the 200 OK carried no usable SDP answer", "sys")
        elif call.answerSdp is None:
            return call.end(488, "the 200 OK carried no SDP answer", "sys")
        call.answered()
        return CONFIRMED

    def answerMade(self, call, event):
        if event.operation != "clientAnswer":
            return None
        answered = call.takeAnswer(event.result if event.succeeded else event.failure)
        if not call.confirmPending:
            return call.state.name
        call.confirmPending = False
        if not answered:
            return call.end(488, "the 200 OK carried no usable SDP answer", "sys")
        call.answered()
        return CONFIRMED


class OpOutgoingFailed(Operator):
    """
    C{calling}/C{ringing}, when the INVITE failed (486, 404, 480, 503, an
    unanswered challenge, no response...): C{dropped} with that status as
    the cause.
    """

    name = "OpOutgoingFailed"
    handles = (SIPFailureEvent,)
    transitions = (DROPPED,)

    def process(self, call, event):
        call.finalStatus = event.status
        return call.end(event.status, event.reason or "failed", "sys", sip=SIP_NONE)


class OpOutgoingRingTimeout(TimeoutOperator):
    """C{calling}/C{ringing}, when C{max_ring_seconds} passed: CANCEL, cause 480 (no answer)."""

    name = "OpOutgoingRingTimeout"
    timer = RING_TIMER
    cause = 480
    reason = "no answer within max_ring_seconds"


class OpOutgoingHangup(Operator):
    """
    C{routing}/C{calling}/C{ringing}, on the caller's C{hangup}: CANCEL
    (once a provisional response came, RFC 3261 §9.1), cause 487 (or the
    C{cause} the client gave: a failure on its side).
    """

    name = "OpOutgoingHangup"
    handles = (ClientMessageEvent,)
    transitions = (DROPPED,)

    def process(self, call, event):
        if event.type != "hangup" or event.connection is not call.originator:
            return None
        cause, reason = hangupCause(event, 487, "cancelled by the caller")
        return call.end(cause, reason, "usr")


class OpStartAnswerTimer(Operator):
    """C{confirmed} entry: stop the ring timer; start C{max_answer_seconds} if set."""

    name = "OpStartAnswerTimer"

    def process(self, call, event):
        call.cancelTimer(RING_TIMER)
        if call.maxAnswerSeconds:
            call.startTimer(ANSWER_TIMER, call.maxAnswerSeconds)


class OpAnswerTimeout(TimeoutOperator):
    """C{confirmed}, when C{max_answer_seconds} passed: BYE, cause 200 (seed 001)."""

    name = "OpAnswerTimeout"
    timer = ANSWER_TIMER
    cause = 200
    reason = "max_answer_seconds reached"
