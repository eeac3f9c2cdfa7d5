# -*- test-case-name: linkrtc.call.test.test_transfer -*-
"""
Operators of call transfer in C{confirmed} (RFC 3515 REFER, RFC 3891
Replaces; the machinery is L{linkrtc.call.transfer}):

  - L{OpRefer}: the SIP peer's REFER. Blind to a connected client: 202,
    NOTIFY 100, the client rings; attended (Refer-To with Replaces naming
    another call here): 202 and the two calls' clients are joined. Any
    other target is checked by the dial plan as the SIP peer's outbound
    call, and a SIP peer holds no grant to call out: 403 and a NOTIFY of
    403; the call stays.
  - L{OpLegReplaced}: an INVITE with Replaces naming the call's dialog.
  - L{OpClientTransfer}, L{OpReferAnswered}, L{OpReferNotify}: the
    client's C{transfer}: LinkRTC REFERs the SIP peer to the target and
    relays the NOTIFYs to the client as C{transfer} messages; a final 2xx
    ends the call (cause 200, "transferred").
"""

from twisted.internet import defer
from twisted.logger import Logger

from linkrtc import metrics
from linkrtc.call.call import SIP_BYE
from linkrtc.call.dialplan import DialPlanRefused, identityOf, securityEvent
from linkrtc.call.events import (
    ApiCommandEvent,
    ClientMessageEvent,
    LegReplacedEvent,
    MediaResultEvent,
    SIPRequestEvent,
)
from linkrtc.call.operators.base import Operator
from linkrtc.call.states import CONFIRMED, DROPPED
from linkrtc.call.transfer import ReferSubscription, canTransfer, joinCalls, replaceLeg
from linkrtc.error import ApiError, SIPParseError
from linkrtc.sip.refer import SIPFRAG, parseReferTo, parseSipfrag, replacesDialog
from linkrtc.sip.uri import SIPURI

log = Logger()

#: JSON-RPC error "failed" of the call-control API (L{linkrtc.app.errors.FAILED}).
FAILED = -32004

#: The C{call.data} key of a client's transfer under way (its target).
REFERRING = "referring"

#: The grants of a SIP peer as the party of a REFER: none to call out.
SIP_PEER_GRANTS = {"outgoing": False}


def _fromUser(call):
    uri = getattr(call.request.fromAddr, "uri", None)
    return getattr(uri, "user", None)


def _refused(kind):
    metrics.CALL_TRANSFERS.labels(kind=kind, result="refused").inc()


def dialPlanRefusal(dialer, identity, grants, target):
    """
    Check C{target} as an outbound call of C{identity} with C{grants}
    through every trunk (L{linkrtc.call.dialplan.DialPlan.check}).

    @return: C{(None, decision)} for the first trunk that passes it, or
        C{((status, reason), None)}: the first refusal, or 403 without a
        trunk.
    """
    trunks = list(getattr(dialer, "trunks", None) or ())
    if not trunks:
        return (403, "no trunk to reach the transfer target"), None
    refusal = None
    for trunk in trunks:
        try:
            return None, dialer.dialPlan.check(identity, grants, trunk, target)
        except DialPlanRefused as e:
            refusal = refusal or e
    return (refusal.code, refusal.reason), None


class OpRefer(Operator):
    """
    C{confirmed}, on the SIP peer's REFER (RFC 3515 §2.4.2): 400 for a
    missing or bad Refer-To, 481 for a Replaces that is unreadable or names
    no other call here, 491 while a transfer of this call runs, 501 without
    bridge media; otherwise 202 and the transfer (see the module), or the
    dial plan's refusal and a NOTIFY of it.
    """

    name = "OpRefer"
    handles = (SIPRequestEvent,)
    transitions = (CONFIRMED,)

    def process(self, call, event):
        if event.method != "REFER" or event.respond is None:
            return None
        respond = event.respond
        engine = getattr(call.services, "transfers", None)
        if call.data.get("transferring") is not None or call.data.get(REFERRING):
            respond(491)
            return call.state.name
        try:
            target = parseReferTo(event.request.headers.get("Refer-To"))
        except SIPParseError as e:
            respond(e.status or 400, e.reason)
            _refused("attended" if e.status == 481 else "blind")
            return call.state.name
        if engine is None or not canTransfer(call):
            respond(501, "Transfer Needs Bridge Media")
            _refused("attended" if target.replaces is not None else "blind")
            return call.state.name
        subscription = ReferSubscription(call.leg)
        if target.replaces is not None:
            other = engine.callForDialog(call.leg, replacesDialog(target.replaces))
            if other is None or other is call or not canTransfer(other):
                respond(481)
                _refused("attended")
                return call.state.name
            if other.data.get("transferring") is not None or other.data.get(REFERRING):
                respond(491)
                _refused("attended")
                return call.state.name
            respond(202)
            joinCalls(call, other, subscription)
            return call.state.name
        if target.user is not None and target.user == call.clientName:
            respond(403, "Transfer To The Same Client")
            subscription.notify(403)
            _refused("blind")
            return call.state.name
        if engine.clientConnected(target.user):
            respond(202)
            engine.blind(call, target.user, subscription)
            return call.state.name
        identity = _fromUser(call)
        target = target.user or str(target.uri)
        refusal, _ = dialPlanRefusal(engine.dialer(), identity, SIP_PEER_GRANTS, target)
        status, reason = refusal
        securityEvent("dialplan_refused", None, identity=identity, to=target, code=status,
                      reason=reason)
        respond(status)
        subscription.notify(status)
        _refused("blind")
        return call.state.name


class OpTransferorBye(Operator):
    """
    C{confirmed}, on the transferor's BYE while its blind transfer rings
    the target: 200, and the transfer goes on (the transferee waits); if
    it then fails, the call ends (L{linkrtc.call.transfer.BlindTransfer}).
    """

    name = "OpTransferorBye"
    handles = (SIPRequestEvent,)
    transitions = (CONFIRMED,)

    def process(self, call, event):
        transfer = call.data.get("transferring")
        if event.method != "BYE" or transfer is None or event.respond is None:
            return None
        event.respond(200)
        transfer.transferorLeft()
        return call.state.name


class OpLegReplaced(Operator):
    """
    C{confirmed}, on an INVITE with Replaces naming the call's dialog
    (RFC 3891 §3): the new dialog takes the SIP side's place
    (L{linkrtc.call.transfer.replaceLeg}); 481 without bridge media or
    while a transfer runs.
    """

    name = "OpLegReplaced"
    handles = (LegReplacedEvent,)
    transitions = (CONFIRMED,)

    def process(self, call, event):
        if not canTransfer(call) or call.data.get("transferring") is not None:
            event.leg.sendFinal(481)
            _refused("replaces")
            return call.state.name
        replaceLeg(call, event.leg)
        return call.state.name


def referTarget(call, to, identity, grants, connection=None):
    """
    Where to REFER the SIP side of C{call} for a transfer to C{to}.

    @param to: a client name, a registered SIP user's name, a number, or a
        URI (C{client:NAME}, C{sip:USER@...} whose user is a client or SIP
        user, or a number for the dial plan).
    @param identity: who asks (for the dial plan and the security log).
    @param grants: that identity's grants (L{linkrtc.call.dialplan.identityOf}).
    @param connection: the asking client's connection, or C{None}.
    @return: C{(uri, None)} (a L{SIPURI} for Refer-To) or
        C{(None, (code, text))}: 409 without a SIP dialog, 403/484 from the
        dial plan, 404 for a target that is nothing here.
    """
    engine = getattr(call.services, "transfers", None)
    dialer = engine.dialer() if engine is not None else None
    userAgent = getattr(call.leg, "userAgent", None)
    if userAgent is None:
        return None, (409, "the call has no SIP dialog to transfer")
    name = to[len("client:"):] if to.lower().startswith("client:") else to
    if ":" in name and "@" in name:
        name = name.split(":", 1)[1].split("@", 1)[0]
    bindings = getattr(dialer, "bindings", None)
    known = engine is not None and engine.clientConnected(name)
    if not known and bindings is not None:
        known = bool(list(bindings.bindingsFor(name) or ()))
    if known:
        source = getattr(getattr(call.leg, "transaction", None), "source", None)
        us = userAgent.localContact(source).uri
        return SIPURI(us.scheme, user=name, host=us.host, port=us.port,
                      params=dict(us.params)), None
    if dialer is None or not getattr(dialer, "trunks", None):
        return None, (404, f"no client, SIP user or trunk for {to!r}")
    refusal, decision = dialPlanRefusal(dialer, identity, grants, to)
    if refusal is not None:
        securityEvent("dialplan_refused", connection, identity=identity, to=to,
                      code=refusal[0], reason=refusal[1])
        return None, refusal
    return decision.requestURI, None


def sendRefer(call, to, uri, referrer):
    """
    REFER the SIP side of C{call} to C{uri} (RFC 3515 §2.4.1); its answer
    comes back as the L{MediaResultEvent} C{refer} (L{OpReferAnswered}).

    @param referrer: the Referred-By user (C{str}).
    """
    call.data[REFERRING] = to
    call.data.setdefault("transfer", {}).update(kind="blind", role="transferor", target=to)
    try:
        d = call.leg.sendRequest("REFER", headers=[
            ("Refer-To", f"<{uri}>"), ("Referred-By", f"<sip:{referrer}@{uri.host}>")])
    except Exception as e:
        d = defer.fail(e)
    call.whenDone(d, "refer")


def transferBusy(call):
    """@return: C{True} while a transfer of C{call} runs (either way)."""
    return bool(call.data.get(REFERRING)) or call.data.get("transferring") is not None


class OpClientTransfer(Operator):
    """
    C{confirmed}, on the answering client's C{transfer}: REFER the SIP
    peer to the target (RFC 3515 §2.4.1). A connected client or a
    registered SIP user is referred to as C{sip:NAME@LINKRTC}; a number
    must pass the dial plan with the client's grants (403/484 as for its
    C{call}) and is referred to at the trunk's domain. C{error} 409 while
    one runs, 404 for a target that is none of these (L{referTarget}).
    """

    name = "OpClientTransfer"
    handles = (ClientMessageEvent,)
    transitions = (CONFIRMED,)

    def process(self, call, event):
        if event.type != "transfer" or event.connection is not call.answerer:
            return None
        connection = event.connection
        if transferBusy(call):
            call.sendError(connection, 409, "a transfer of this call is under way")
            return call.state.name
        to = event.message["to"]
        identity, grants, _ = identityOf(connection)
        uri, error = referTarget(call, to, identity, grants, connection)
        if error is not None:
            call.sendError(connection, *error)
            _refused("refer_out")
            return call.state.name
        sendRefer(call, to, uri, call.clientName or "anonymous")
        return call.state.name


class OpApiTransfer(Operator):
    """
    C{Idle}, on C{sys.call.transfer} (docs/api.rst): as L{OpClientTransfer}
    for the application, trusted as for C{construct} (the dial plan
    applies with no grants); the method's result is the SIP side's answer
    to the REFER (C{null} for 2xx, else error -32004 with its status).
    """

    name = "OpApiTransfer"
    handles = (ApiCommandEvent,)
    transitions = ()

    def process(self, call, event):
        if call.api is None or event.method != "transfer":
            return None
        if transferBusy(call):
            event.refuse(ApiError(FAILED, "a transfer of this call is under way",
                                  {"status": 409}))
            return call.state.name
        to = event.params["to_uri"]
        uri, error = referTarget(call, to, None, {})
        if error is not None:
            _refused("refer_out")
            event.refuse(ApiError(FAILED, f"cannot transfer to {to[:80]!r}: {error[1]}",
                                  {"status": error[0]}))
            return call.state.name
        call.data["referReply"] = event
        sendRefer(call, to, uri, "linkrtc")
        return call.state.name


class OpReferAnswered(Operator):
    """
    C{confirmed}, on the SIP peer's answer to our REFER: 2xx is told to
    the client as C{{"type": "transfer", "status": 202, ...}}; a failure
    as C{error} with that status, and the call stays.
    """

    name = "OpReferAnswered"
    handles = (MediaResultEvent,)
    transitions = (CONFIRMED,)

    def process(self, call, event):
        if event.operation != "refer":
            return None
        if event.succeeded:
            status = getattr(event.result, "status", 500)
            reason = getattr(event.result, "reason", "") or ""
        else:
            status, reason = 408, event.failure.getErrorMessage()
        if not 200 <= status < 300:
            call.data.pop(REFERRING, None)
            _refused("refer_out")
        command = call.data.pop("referReply", None)
        if command is not None:
            if 200 <= status < 300:
                command.reply(None)
            else:
                command.refuse(ApiError(FAILED, f"transfer refused by the SIP side: {status} "
                                        f"{reason}", {"status": status}))
        if call.answerer is None:
            return call.state.name
        if 200 <= status < 300:
            call.sendClient(call.answerer, {"type": "transfer", "status": status,
                                            "reason": reason})
        else:
            call.sendError(call.answerer, status, f"transfer refused by the SIP side: {reason}")
        return call.state.name


class OpReferNotify(Operator):
    """
    C{confirmed}, on a NOTIFY (RFC 3515 §2.4.4): answered 200; while our
    REFER runs, its sipfrag status goes to the client as
    C{{"type": "transfer", "status": N, "reason": ...}}. A final 2xx ends
    the call (BYE, cause 200 "transferred", C{usr}); a final failure ends
    the transfer and the call stays.
    """

    name = "OpReferNotify"
    handles = (SIPRequestEvent,)
    transitions = (CONFIRMED, DROPPED)

    def process(self, call, event):
        if event.method != "NOTIFY" or event.respond is None:
            return None
        request = event.request
        event.respond(200)
        contentType = getattr(request, "contentType", None) \
            or (request.headers.get("Content-Type") or "").split(";")[0].strip().lower()
        if not call.data.get(REFERRING) or contentType != SIPFRAG:
            return call.state.name
        frag = parseSipfrag(getattr(request, "body", b"") or b"")
        if frag is None:
            return call.state.name
        status, reason = frag
        if call.answerer is not None:
            call.sendClient(call.answerer, {"type": "transfer", "status": status,
                                            "reason": reason})
        if status < 200:
            return call.state.name
        call.data.pop(REFERRING, None)
        if status < 300:
            call.data.setdefault("transfer", {})["status"] = status
            metrics.CALL_TRANSFERS.labels(kind="refer_out", result="done").inc()
            return call.end(200, "transferred", "usr", sip=SIP_BYE)
        call.data.setdefault("transfer", {})["failed"] = status
        metrics.CALL_TRANSFERS.labels(kind="refer_out", result="failed").inc()
        return call.state.name


__all__ = ["OpApiTransfer", "OpClientTransfer", "OpLegReplaced", "OpRefer", "OpTransferorBye", "OpReferAnswered",
           "OpReferNotify", "dialPlanRefusal"]
