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
    (403 by default) and C{dropped}; C{route} to a client with no connection
    -> 480 and C{dropped}; otherwise the client's connections are attached
    and the call goes to C{calling}.
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
        if action != "route" or not isinstance(client, str) or not client:
            return call.end(500, "bad decision from the application", "sys")
        call.clientName = client
        connections = list(call.services.directory.connectionsFor(client) or ())
        if not connections:
            return call.end(480, "client not connected", "sys")
        call.connections = connections
        call.offered = list(connections)
        return CALLING


class OpOfferClient(Operator):
    """
    C{calling} entry: ask the media session for the client's offer (the SIP
    offer as is in passthrough, C{None} for an offerless INVITE).
    """

    name = "OpOfferClient"

    def process(self, call, event):
        call.whenDone(call.media.clientOffer(call.sipOffer), "clientOffer")


class OpSendIncoming(Operator):
    """
    C{calling}, on the client offer: send C{incoming} to every attached
    connection; if none takes it, 480 (seed 000 step 2.1.1). A media
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
        message = {"type": "incoming", "call": call.id, "from": call.fromURI,
                   "to": call.toURI, "sdp": event.result}
        for connection in list(call.connections):
            if not call.sendClient(connection, message):
                call.detach(connection)
        if not call.connections:
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
    C{busy} does, with that status.
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
        if not call.connections:
            return call.end(status, reason, "usr")
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
