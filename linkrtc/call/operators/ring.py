# -*- test-case-name: linkrtc.call.test.test_calls -*-
"""
Operators of the first part of an incoming call (seed 000 steps 1 and 2):
asking the application, offering the call to the client's connections,
ringing, rejection and CANCEL.
"""

from twisted.logger import Logger

from linkrtc.call.events import (
    ApplicationDecisionEvent,
    ClientMessageEvent,
    InviteEvent,
    MediaResultEvent,
    SIPCancelEvent,
)
from linkrtc.call.fork import ForkOffers, bestResponse, devicesFor, forkOffers, forkResponses
from linkrtc.call.operators.base import Operator, hangupCause
from linkrtc.call.states import ANSWERING, CALLING, DROPPED, PENDING, RINGING
from linkrtc.interfaces import IEarlyMediaSession

log = Logger()

#: Status sent for each C{reject} reason (RFC 3261 §21.4.24, §21.6.2).
REJECT_STATUS = {"busy": 486, "decline": 603}


class OpRing(Operator):
    """
    C{pending}, on the INVITE: ask the application who takes the call (seed
    000 step 1.3). The SIP leg has already sent 100 Trying (step 1.2).
    """

    name = "OpRing"
    handles = (InviteEvent,)
    transitions = (PENDING,)

    def process(self, call, event):
        call.askApplication()
        return PENDING


class OpRoute(Operator):
    """
    C{pending}, on the application's decision: C{reject} -> its status
    (403 by default) and C{dropped}; C{route} to a client with no device
    -> 480 and C{dropped}; otherwise the client's devices are attached
    and the call goes to C{calling}. The devices are the client's
    connections and its registered SIP phones (L{linkrtc.call.fork}),
    those of every name of C{clients} when the decision has that list.
    """

    name = "OpRoute"
    handles = (ApplicationDecisionEvent,)
    transitions = (CALLING, DROPPED)

    def process(self, call, event):
        decision = event.decision if isinstance(event.decision, dict) else {}
        action = decision.get("action")
        if action == "reject":
            status = decision.get("status", 403)
            if not isinstance(status, int) or isinstance(status, bool) or not 300 <= status <= 699:
                status = 403
            return call.end(status, decision.get("reason") or "refused by the application", "sys")
        client = decision.get("client")
        names = decision.get("clients") or [client]
        if not isinstance(client, str) and isinstance(names, list) and names:
            client = names[0]
        if action != "route" or not isinstance(client, str) or not client \
                or not isinstance(names, list) or not all(isinstance(n, str) for n in names):
            return call.end(500, "bad decision from the application", "sys")
        call.clientName = client
        connections = devicesFor(call, names)
        if not connections:
            return call.end(480, "client not connected", "sys")
        call.connections = connections
        call.offered = list(connections)
        return CALLING


class OpOfferClient(Operator):
    """
    C{calling} entry: ask the media session for the client's offer (the SIP
    offer as is in passthrough, C{None} for an offerless INVITE); when SIP
    phones ring too, for theirs as well (a L{ForkOffers}).
    """

    name = "OpOfferClient"

    def process(self, call, event):
        if any(getattr(c, "plainRTP", False) for c in call.connections):
            clients = any(not getattr(c, "plainRTP", False) for c in call.connections)
            call.whenDone(forkOffers(call, clients), "clientOffer")
            return
        call.whenDone(call.media.clientOffer(call.sipOffer), "clientOffer")


class OpSendIncoming(Operator):
    """
    C{calling}, on the client offer: send C{incoming} to every attached
    connection (a SIP phone's branch gets the phones' offer, or C{sdp}
    null for an offerless INVITE in passthrough; without one it is left
    out with 488); if none takes it, 480 (seed 000 step
    2.1.1), or the best of the refusals (L{bestResponse}). A media
    failure gives 488.
    """

    name = "OpSendIncoming"
    handles = (MediaResultEvent,)
    transitions = (CALLING, DROPPED)

    def process(self, call, event):
        if event.operation != "clientOffer":
            return None
        if not event.succeeded:
            return call.end(488, f"offer not acceptable: {event.failure.getErrorMessage()}", "sys")
        offers = event.result
        if not isinstance(offers, ForkOffers):
            offers = ForkOffers(offers, None)
        elif offers.phone is None and not offers.offerless:
            log.info("call {call_id}: SIP phones not rung: {why}", call_id=call.id, why=offers.why)
        message = {"type": "incoming", "call": call.id, "from": call.fromURI,
                   "to": call.toURI, "sdp": offers.client}
        for connection in list(call.connections):
            if getattr(connection, "plainRTP", False):
                if offers.phone is None and not offers.offerless:
                    call.detach(connection)
                    forkResponses(call).append((488, offers.why or "no offer for SIP phones"))
                    continue
                sent = call.sendClient(connection, dict(message, sdp=offers.phone))
            else:
                sent = call.sendClient(connection, message)
            if not sent:
                call.detach(connection)
        if not call.connections:
            if forkResponses(call):
                return call.end(*bestResponse(forkResponses(call)), "sys")
            return call.end(480, "client not reachable", "sys")
        return CALLING


def _fromAttached(call, event, *types):
    return (
        isinstance(event, ClientMessageEvent)
        and event.type in types
        and call.involves(event.connection)
    )


class OpClientRinging(Operator):
    """
    C{calling}/C{ringing}, on a client's C{ringing}: go to C{ringing} (the
    entry operators send 180 once); later ones change nothing.
    """

    name = "OpClientRinging"
    handles = (ClientMessageEvent,)
    transitions = (RINGING,)

    def process(self, call, event):
        if not _fromAttached(call, event, "ringing"):
            return None
        return RINGING


class OpSendRinging(Operator):
    """
    C{ringing} entry: send 180 Ringing to SIP, once per call; or, when the
    media session has early media for the call (bridge mode,
    L{IEarlyMediaSession}: C{--early-media}), 183 Session Progress with its
    SDP answer while it plays the ringback tone (RFC 3960 §3).
    """

    name = "OpSendRinging"

    def process(self, call, event):
        if call.ringingSent or call.finalStatus is not None:
            return
        call.ringingSent = True
        early = None
        if IEarlyMediaSession.providedBy(call.media):
            try:
                early = call.media.earlyAnswer()
            except Exception as e:
                log.warn("call {call_id}: no early media: {why}", call_id=call.id, why=e)
        if early:
            call.leg.sendProvisional(183, body=early, contentType="application/sdp")
        else:
            call.leg.sendProvisional(180)


class OpRejectCall(Operator):
    """
    C{calling}/C{ringing}/C{answering}, on a client's C{reject} or pre-answer
    C{hangup}, as a forking proxy would (RFC 3261 §16.7): C{decline} (and
    C{hangup}) is a 603 that ends the call for every connection; C{busy}
    (486) only removes that connection, and the call ends with 486 when no
    connection is left. A C{hangup} with a C{cause} (a failure on that
    client's side, e.g. 488 when its media set-up failed) counts as
    C{busy} does, with that status (a SIP phone's failure comes so). When
    no device is left, the call ends with the best of their answers
    (L{bestResponse}: a 6xx, else the lowest class).
    """

    name = "OpRejectCall"
    handles = (ClientMessageEvent,)
    transitions = (DROPPED, CALLING, RINGING, ANSWERING)

    def process(self, call, event):
        if not _fromAttached(call, event, "reject", "hangup"):
            return None
        if event.type == "hangup":
            status, reason = hangupCause(event, 603, "decline")
        else:
            reason = event.message.get("reason") or "decline"
            status = REJECT_STATUS.get(reason, 603)
        if status >= 600 or call.answerer is event.connection:
            return call.end(status, reason, "usr")
        call.sendClient(event.connection, {"type": "state", "state": DROPPED, "cause": status})
        call.detach(event.connection)
        forkResponses(call).append((status, reason))
        if not call.connections:
            return call.end(*bestResponse(forkResponses(call)), "usr")
        return call.state.name


class OpCancel(Operator):
    """
    Any state before the 200 OK, on CANCEL (RFC 3261 §9.2, or an early
    BYE, §15.1.2): the leg has answered it; the INVITE gets 487 and the call
    is C{dropped}.
    """

    name = "OpCancel"
    handles = (SIPCancelEvent,)
    transitions = (DROPPED,)

    def process(self, call, event):
        return call.end(487, "cancelled", "usr")
