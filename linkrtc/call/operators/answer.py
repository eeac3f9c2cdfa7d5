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
from linkrtc.call.fork import ANSWERED_ELSEWHERE
from linkrtc.call.operators.base import Operator
from linkrtc.call.states import ANSWERING, CONFIRMED, DROPPED
from linkrtc.error import InvalidStateError, TransactionTimeout
from linkrtc.interfaces import IOutboundMediaSession, IReofferMediaSession

log = Logger()

SDP = "application/sdp"


class OpAnswerCall(Operator):
    """
    C{calling}/C{ringing}, on the first C{accept} (VOCAL's OpAnswerCall):
    that connection wins; the others get C{state} C{dropped} with cause
    "answered elsewhere" and are detached; the media session turns the
    client's SDP into the SIP answer (a SIP phone's through
    C{phoneAnswer}, L{linkrtc.call.fork}); the call goes to C{answering}.
    """

    name = "OpAnswerCall"
    handles = (ClientMessageEvent,)
    transitions = (ANSWERING,)

    def process(self, call, event):
        if event.type != "accept" or not call.involves(event.connection):
            return None
        winner = event.connection
        others = [c for c in call.connections if c is not winner]
        call.tellClients({"type": "state", "state": DROPPED, "cause": ANSWERED_ELSEWHERE},
                         others)
        call.connections = [winner]
        call.answerer = winner
        if getattr(winner, "plainRTP", False):
            answer = call.media.phoneAnswer(event.message.get("sdp"))
        else:
            answer = call.media.sipAnswer(event.message.get("sdp"))
        call.whenDone(answer, "sipAnswer")
        return ANSWERING


class OpSendOk(Operator):
    """
    C{answering}, on the SIP answer: send 200 OK with it, write the start
    CDR (L{linkrtc.call.call.Call.answered}) and go to C{confirmed}; a
    media failure sends 488 to SIP and an C{error} to the client, and drops
    the call; a 200 OK that cannot be built or sent drops it with cause 500
    (never answered: no C{answer_time}).
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
        if not call.sendFinal(200, body=event.result, contentType=SDP):
            # Never sent (e.g. the INVITE's headers cannot make a dialog):
            # not answered; the SIP side gets a 500 if one can still go.
            if call.answerer is not None:
                call.sendError(call.answerer, 500, "the 200 OK could not be sent")
            return call.end(500, "the 200 OK could not be built or sent", "sys")
        call.answered()
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
    pending gets 491 (RFC 3261 §14.2), and so does one while our own
    re-INVITE (the client's hold) is pending; a re-INVITE without SDP gets
    our last SDP, an UPDATE without SDP a 200 without body (RFC 3311). An
    offer the media cannot take (no codec we can relay) gets 488 and the
    call keeps its media (L{OpReofferDone}).
    """

    name = "OpReinvite"
    handles = (SIPRequestEvent,)
    transitions = (CONFIRMED,)

    def process(self, call, event):
        if event.method not in ("INVITE", "UPDATE") or event.respond is None:
            return None
        if call.pendingReinvite is not None or call.pendingHold is not None:
            event.respond(491)
            return CONFIRMED
        body = getattr(event.request, "body", b"") or b""
        if not body and event.method == "UPDATE":
            event.respond(200)  # RFC 3311 §5.2: no offer, no answer (a session refresh)
            return CONFIRMED
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
    call.notify({"event": "state", "call": call.id, "state": state, "client": call.clientName,
                 "cause": None})


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
        hold = bool(hold) or call.localHold
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


#: The steps of the client's hold as a re-INVITE (L{OpClientHold}), named
#: as their L{MediaResultEvent}s.
HOLD_REOFFER = "holdReoffer"
HOLD_REINVITE = "holdReinvite"
HOLD_ANSWERED = "holdAnswered"


class OpClientHold(Operator):
    """
    C{confirmed}: the client's C{hold}/C{unhold}. The call stays
    C{confirmed}; the client and the application get C{state}
    C{hold}/C{unhold}.

    With a media session that can re-offer
    (L{linkrtc.interfaces.IReofferMediaSession}: bridge mode) the hold is
    done the SIP way (RFC 3264 §8.4): the media makes an offer with
    C{a=sendonly} (C{a=sendrecv} to unhold), it goes in a re-INVITE on the
    call's leg, and the 2xx's SDP goes back to the media; only then is the
    C{state} sent. A failure (media, a non-2xx such as 488 or 491, a
    timeout) sends the client an C{error} with the SIP status (500 for a
    media failure) and leaves the call as it was; a C{hold}/C{unhold} while
    a re-INVITE either way is pending gets C{error} 409. The steps come
    back as L{MediaResultEvent}s named L{HOLD_REOFFER}, L{HOLD_REINVITE}
    (the SIP response) and L{HOLD_ANSWERED}.

    Other media sessions with C{hold} (L{linkrtc.interfaces.IOutboundMediaSession})
    are told directly; in passthrough the client's own media does the
    muting.
    """

    name = "OpClientHold"
    handles = (ClientMessageEvent, MediaResultEvent)
    transitions = (CONFIRMED,)

    def process(self, call, event):
        if isinstance(event, MediaResultEvent):
            return self.step(call, event)
        if event.type not in ("hold", "unhold") or event.connection is not call.answerer:
            return None
        hold = event.type == "hold"
        if IReofferMediaSession.providedBy(call.media):
            return self.reinvite(call, event.connection, hold)
        if hold != call.held:
            call.held = hold
            if IOutboundMediaSession.providedBy(call.media):
                d = defer.maybeDeferred(call.media.hold, hold)
                d.addErrback(lambda f: log.failure("call {call_id}: media hold failed", f,
                                                   call_id=call.id))
            _tellHold(call, hold)
        return CONFIRMED

    def reinvite(self, call, connection, hold):
        if call.pendingHold is not None or call.pendingReinvite is not None:
            call.sendError(connection, 409, "a re-INVITE is pending; try again later")
            return CONFIRMED
        if hold == call.localHold:
            return CONFIRMED
        call.pendingHold = hold
        call.whenDone(defer.maybeDeferred(call.media.reoffer, hold), HOLD_REOFFER)
        return CONFIRMED

    def step(self, call, event):
        operation = event.operation
        if operation not in (HOLD_REOFFER, HOLD_REINVITE, HOLD_ANSWERED):
            return None
        hold = call.pendingHold
        if hold is None:
            return CONFIRMED
        if operation == HOLD_REOFFER:
            if not event.succeeded:
                return self.failed(call, 500, "media cannot re-offer: "
                                   + event.failure.getErrorMessage())
            call.data[self.name] = event.result
            d = defer.maybeDeferred(call.leg.sendRequest, "INVITE", event.result, SDP)
            call.whenDone(d, HOLD_REINVITE)
        elif operation == HOLD_REINVITE:
            if not event.succeeded:
                if event.failure.check(TransactionTimeout):
                    return self.failed(call, 408, "the re-INVITE timed out")
                if event.failure.check(InvalidStateError):
                    return self.failed(call, 409, "a re-INVITE is pending; try again later")
                return self.failed(call, 500, "the re-INVITE failed: "
                                   + event.failure.getErrorMessage())
            response = event.result
            status = getattr(response, "status", 500)
            if not 200 <= status < 300:
                reason = getattr(response, "reason", None) or "refused"
                return self.failed(call, status, f"the re-INVITE was refused: {status} {reason}")
            body = getattr(response, "body", b"") or b""
            if not body:
                return self.failed(call, 488, "the re-INVITE's 2xx carried no SDP answer")
            call.whenDone(defer.maybeDeferred(call.media.reofferAnswered, body), HOLD_ANSWERED)
        else:
            call.pendingHold = None
            offer = call.data.pop(self.name, None)
            if not event.succeeded:
                return self.failed(call, 488, "the re-INVITE's SDP answer is not acceptable: "
                                   + event.failure.getErrorMessage())
            call.localHold = hold
            if call.localSdp is not None and offer is not None:
                call.localSdp = offer
            call.held = bool(event.result)
            _tellHold(call, call.held)
        return CONFIRMED

    def failed(self, call, code, text):
        call.pendingHold = None
        call.data.pop(self.name, None)
        log.info("call {call_id}: client hold not done: {text}", call_id=call.id, text=text)
        if call.answerer is not None:
            call.sendError(call.answerer, code, text)
        return CONFIRMED
