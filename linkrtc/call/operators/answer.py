# -*- test-case-name: linkrtc.call.test.test_calls -*-
"""
Operators of answering and of the confirmed call: accept, 200 OK, ACK,
re-INVITE, in-dialog requests, DTMF and hold.
"""

from twisted.internet import defer
from twisted.logger import Logger

from linkrtc.call.events import (
    ClientMessageEvent,
    MediaDigitsEvent,
    MediaResultEvent,
    SIPRequestEvent,
)
from linkrtc.call.operators.base import Operator
from linkrtc.call.states import ANSWERING, CONFIRMED, DROPPED
from linkrtc.interfaces import IOutboundMediaSession

log = Logger()

SDP = "application/sdp"


class OpAnswerCall(Operator):
    """
    C{calling}/C{ringing}, on the first C{accept} (VOCAL's OpAnswerCall):
    that connection wins; the others get C{state} C{dropped} with cause
    "answered elsewhere" and are detached; the media session turns the
    client's SDP into the SIP answer; the call goes to C{answering}.
    """

    name = "OpAnswerCall"
    handles = (ClientMessageEvent,)
    transitions = (ANSWERING,)

    def process(self, call, event):
        if event.type != "accept" or not call.involves(event.connection):
            return None
        winner = event.connection
        others = [c for c in call.connections if c is not winner]
        call.tellClients({"type": "state", "state": DROPPED, "cause": "answered elsewhere"},
                         others)
        call.connections = [winner]
        call.answerer = winner
        call.whenDone(call.media.sipAnswer(event.message.get("sdp")), "sipAnswer")
        return ANSWERING


class OpSendOk(Operator):
    """
    C{answering}, on the SIP answer: send 200 OK with it and go to
    C{confirmed}; a media failure sends 488 to SIP and an C{error} to the
    client, and drops the call.
    """

    name = "OpSendOk"
    handles = (MediaResultEvent,)
    transitions = (CONFIRMED, DROPPED)

    def process(self, call, event):
        if event.operation != "sipAnswer":
            return None
        if not event.succeeded:
            why = event.failure.getErrorMessage()
            if call.answerer is not None:
                call.sendError(call.answerer, 488, f"SDP not acceptable: {why}")
            return call.end(488, f"answer not acceptable: {why}", "sys")
        call.localSdp = event.result
        call.sendFinal(200, body=event.result, contentType=SDP)
        call.answerTime = call.now()
        return CONFIRMED


class OpAck(Operator):
    """
    C{confirmed}, on the ACK for our 2xx: for an offerless INVITE its SDP is
    the SIP side's answer, handed to the media session (RFC 3261 §13.2.1).
    """

    name = "OpAck"
    handles = (SIPRequestEvent,)
    transitions = (CONFIRMED, DROPPED)

    def process(self, call, event):
        if event.method != "ACK":
            return None
        if call.acked:
            return CONFIRMED
        call.acked = True
        if call.offerless:
            body = getattr(event.request, "body", b"") or b""
            if not body:
                return call.end(488, "ACK carried no SDP answer", "sys")
            call.whenDone(call.media.sipAckBody(body), "sipAckBody")
        return CONFIRMED


class OpSendAnswer(Operator):
    """
    C{confirmed}, on the media's reading of the ACK's SDP: send the client
    C{{"type": "answer", "sdp": ...}}; a failure ends the call (BYE, 488).
    """

    name = "OpSendAnswer"
    handles = (MediaResultEvent,)
    transitions = (CONFIRMED, DROPPED)

    def process(self, call, event):
        if event.operation != "sipAckBody":
            return None
        if not event.succeeded:
            return call.end(488, f"answer not acceptable: {event.failure.getErrorMessage()}",
                            "sys")
        if event.result is not None and call.answerer is not None:
            call.sendClient(call.answerer, {"type": "answer", "sdp": event.result})
        return CONFIRMED


class OpReinvite(Operator):
    """
    C{confirmed}, on a re-INVITE or UPDATE: its SDP goes to the media
    session (hold, unhold, new address); a second one while the first is
    pending gets 491 (RFC 3261 §14.2); one without SDP gets our last SDP.
    """

    name = "OpReinvite"
    handles = (SIPRequestEvent,)
    transitions = (CONFIRMED,)

    def process(self, call, event):
        if event.method not in ("INVITE", "UPDATE") or event.respond is None:
            return None
        if call.pendingReinvite is not None:
            event.respond(491)
            return CONFIRMED
        body = getattr(event.request, "body", b"") or b""
        if not body:
            event.respond(200, body=call.localSdp, contentType=SDP if call.localSdp else None)
            return CONFIRMED
        call.pendingReinvite = event.respond
        call.whenDone(call.media.sipReoffer(body), "sipReoffer")
        return CONFIRMED


def _tellHold(call, hold):
    state = "hold" if hold else "unhold"
    if call.answerer is not None:
        call.sendClient(call.answerer, {"type": "state", "state": state, "cause": None})
    call.notify({"event": "state", "call": call.id, "state": state, "cause": None})


class OpReofferDone(Operator):
    """
    C{confirmed}, on the media's answer to a re-INVITE: send it in the 200
    OK; a change of hold is told to the client and the application as
    C{state} C{hold}/C{unhold}. A failure answers 488 and keeps the call.
    """

    name = "OpReofferDone"
    handles = (MediaResultEvent,)
    transitions = (CONFIRMED,)

    def process(self, call, event):
        if event.operation != "sipReoffer":
            return None
        respond, call.pendingReinvite = call.pendingReinvite, None
        if respond is None:
            return CONFIRMED
        if not event.succeeded:
            respond(488)
            return CONFIRMED
        answer, hold = event.result
        call.localSdp = answer
        respond(200, body=answer, contentType=SDP)
        if bool(hold) != call.held:
            call.held = bool(hold)
            _tellHold(call, call.held)
        return CONFIRMED


def parseDTMFRelay(body, contentType="application/dtmf-relay"):
    """
    @param body: an C{application/dtmf-relay} body (C{bytes}, lines such as
        C{Signal=5} and C{Duration=160}), or an C{application/dtmf} one (the
        digit alone).
    @param contentType: which of the two it is.
    @return: the digit (C{str}) or C{None}.
    """
    try:
        text = body.decode("ascii")
    except (UnicodeDecodeError, AttributeError):
        return None
    if contentType == "application/dtmf":
        value = text.strip().upper()
        return value if len(value) == 1 and value in "0123456789*#ABCD" else None
    for line in text.splitlines():
        key, _, value = line.partition("=")
        if key.strip().lower() == "signal":
            value = value.strip().upper()
            if len(value) == 1 and value in "0123456789*#ABCD":
                return value
    return None


class OpInDialogRequest(Operator):
    """
    C{confirmed}, last: other in-dialog requests. INFO gets 200 (an
    C{application/dtmf-relay} or C{application/dtmf} INFO is passed on as
    DTMF), OPTIONS 200,
    anything else 501 (RFC 3261 §8.2.1).
    """

    name = "OpInDialogRequest"
    handles = (SIPRequestEvent,)
    transitions = (CONFIRMED,)

    def process(self, call, event):
        if event.respond is None:
            return None
        if event.method == "INFO":
            event.respond(200)
            contentType = getattr(event.request, "contentType", None)
            if contentType in ("application/dtmf-relay", "application/dtmf"):
                digit = parseDTMFRelay(getattr(event.request, "body", b""), contentType)
                if digit:
                    call.dispatch(MediaDigitsEvent(digit))
        elif event.method == "OPTIONS":
            event.respond(200)
        else:
            event.respond(501)
        return CONFIRMED


class OpMediaDigits(Operator):
    """C{confirmed}: DTMF from the SIP side goes to the client and the application."""

    name = "OpMediaDigits"
    handles = (MediaDigitsEvent,)
    transitions = (CONFIRMED,)

    def process(self, call, event):
        if call.answerer is not None:
            call.sendClient(call.answerer, {"type": "dtmf", "digits": event.digits})
        call.notify({"event": "dtmf", "call": call.id, "digits": event.digits})
        return CONFIRMED


class OpClientDtmf(Operator):
    """C{confirmed}: the client's C{dtmf} goes to the media session (RFC 4733)."""

    name = "OpClientDtmf"
    handles = (ClientMessageEvent,)
    transitions = (CONFIRMED,)

    def process(self, call, event):
        if event.type != "dtmf" or event.connection is not call.answerer:
            return None
        d = defer.maybeDeferred(call.media.sendDigits, event.message.get("digits", ""))
        d.addErrback(lambda f: log.failure("call {call_id}: sending DTMF failed", f,
                                           call_id=call.id))
        return CONFIRMED


class OpClientHold(Operator):
    """
    C{confirmed}: the client's C{hold}/C{unhold}. The call stays
    C{confirmed}; the client and the application get C{state}
    C{hold}/C{unhold}. A media session with C{hold}
    (L{linkrtc.interfaces.IOutboundMediaSession}) is told: bridge mode
    stops sending audio to SIP; in passthrough the client's own media does
    the muting.
    """

    name = "OpClientHold"
    handles = (ClientMessageEvent,)
    transitions = (CONFIRMED,)

    def process(self, call, event):
        if event.type not in ("hold", "unhold") or event.connection is not call.answerer:
            return None
        hold = event.type == "hold"
        if hold != call.held:
            call.held = hold
            if IOutboundMediaSession.providedBy(call.media):
                d = defer.maybeDeferred(call.media.hold, hold)
                d.addErrback(lambda f: log.failure("call {call_id}: media hold failed", f,
                                                   call_id=call.id))
            _tellHold(call, hold)
        return CONFIRMED
