# -*- test-case-name: linkrtc.call.test.test_transfer -*-
"""
Call transfer on the switch (RFC 3515 REFER, RFC 3891 Replaces), in bridge
media mode.

A bridged call is a SIP leg (plain RTP on LinkRTC's side) and a client leg
(WebRTC). A transfer never touches the client leg: it re-bridges the SIP
side's RTP. The RTP session that talked to the SIP peer is re-pointed (the
media session's C{sipReoffer}, as for a re-INVITE with a new address) at
the RTP of the party that takes the peer's place, and the SIP dialog of
the peer who left is released: NOTIFY (sipfrag) for a REFER, then BYE.

  - L{BlindTransfer}: the SIP peer REFERs its call to a connected client.
    A L{TransferTargetCall} rings that client through the incoming
    topology (C{incoming}, C{accept}); its "SIP side" is the first call's
    RTP (L{TransferLeg}). Answered: NOTIFY 200, BYE to the transferor, and
    the transferee (the first call's client) talks to the target.
  - L{joinCalls}: an attended transfer (REFER whose Refer-To carries
    Replaces naming another call here): both calls' RTP are pointed at
    each other and both SIP dialogs are released; the two clients talk.
  - L{replaceLeg}: an INVITE with Replaces naming a call's dialog: the new
    dialog's offer re-points the call's RTP and the old dialog gets BYE.

After a join a call's C{leg} is a L{JoinedLeg}: its BYE is the other
call's hang-up, so either party's hang-up ends both calls, each with its
CDR (its C{transfer} field says what happened).
"""

import re
import uuid

from twisted.internet import defer
from twisted.logger import Logger

from linkrtc import metrics
from linkrtc.call.call import Call
from linkrtc.call.events import ApplicationDecisionEvent, InviteEvent, SIPRequestEvent
from linkrtc.call.stubleg import StubServerLeg
from linkrtc.error import InvalidStateError
from linkrtc.sip.leglistener import DetachedLegListener
from linkrtc.sip.refer import SIPFRAG, notifyHeaders, sipfrag

log = Logger()

SDP = "application/sdp"

_C_LINE = re.compile(rb"^c=IN IP[46] \S+", re.MULTILINE)

_WILDCARDS = (None, "", "0.0.0.0", "::")


def loopbackSdp(sdp, address):
    """@return: C{sdp} (C{bytes}) with every C{c=} line naming C{address}."""
    kind = "IP6" if ":" in address else "IP4"
    return _C_LINE.sub(f"c=IN {kind} {address}".encode(), sdp)


def hopAddress(mediaFactory):
    """
    @return: the address two bridge sessions of this process reach each
        other's RTP on: the RTP interface when one is set, else loopback.
    """
    interface = getattr(mediaFactory, "rtpInterface", None)
    if interface in _WILDCARDS:
        return "::1" if interface == "::" else "127.0.0.1"
    return interface


def canTransfer(call):
    """
    @return: C{True} if C{call}'s media can be re-bridged: bridge mode,
        answered, with an SDP of ours toward its SIP peer.
    """
    return (getattr(call.services.mediaFactory, "name", None) == "bridge"
            and call.localSdp is not None and not call.isOver)


def _sdpBytes(sdp):
    return sdp.encode("utf-8") if isinstance(sdp, str) else bytes(sdp)


class ReferSubscription:
    """
    The implicit subscription of a REFER we accepted (RFC 3515 §2.4.4):
    NOTIFYs with a C{message/sipfrag} status line on the REFER's dialog,
    the last one (a final status) with C{Subscription-State: terminated}.

    @ivar leg: the transferor's L{linkrtc.interfaces.ISIPServerLeg}.
    @ivar final: the final status notified, or C{None}.
    """

    def __init__(self, leg):
        self.leg = leg
        self.final = None

    def notify(self, status, reason=None):
        """
        Send one NOTIFY; nothing after the final one. Failures are logged.

        @param status: C{int} SIP status of the transfer's new call.
        @return: a L{Deferred} firing when the NOTIFY is answered (or not sent).
        """
        if self.final is not None:
            return defer.succeed(None)
        final = status >= 200
        if final:
            self.final = status
        try:
            d = defer.maybeDeferred(self.leg.sendRequest, "NOTIFY", body=sipfrag(status, reason),
                                    contentType=SIPFRAG, headers=notifyHeaders(final))
        except Exception as e:
            d = defer.fail(e)
        d.addErrback(lambda f: log.info("transfer: NOTIFY {status} not delivered: {why}",
                                        status=status, why=f.getErrorMessage()))
        return d


def releaseLeg(leg):
    """
    Take C{leg} out of its call and end its dialog with BYE (the peer's
    own BYE, crossing ours, is answered 200). Failures are logged.

    @return: a L{Deferred} firing when the BYE is done.
    """
    leg.setListener(DetachedLegListener())
    d = defer.maybeDeferred(leg.sendBye)
    d.addErrback(lambda f: log.info("transfer: BYE to the released leg: {why}",
                                    why=f.getErrorMessage()))
    return d


class _Bye:
    """The stand-in BYE a L{JoinedLeg} gives its call when the peer hangs up."""

    method = "BYE"
    body = b""


class JoinedLeg(StubServerLeg):
    """
    The SIP leg of a call whose SIP peer was transferred away: the "far
    end" is another call of this switch (C{peer}), whose RTP the call's
    RTP talks to. Its BYE hangs up the peer call; it carries no other
    request.

    @ivar peer: the other L{Call}, or C{None} once hung up.
    """

    finalSent = True

    def __init__(self, request, peer):
        StubServerLeg.__init__(self, request)
        self.peer = peer

    def sendBye(self):
        """The peer call hears a BYE (it ends, cause 200, by C{usr})."""
        peer, self.peer = self.peer, None
        if peer is not None and not peer.isOver:
            peer.dispatch(SIPRequestEvent(_Bye()))
        return defer.succeed(None)

    def sendRequest(self, method, body=None, contentType=None, headers=()):
        if method == "BYE":
            return self.sendBye()
        return StubServerLeg.sendRequest(self, method, body, contentType, headers)

    def noDialog(self, method):
        return InvalidStateError(f"a transferred call has no SIP dialog for {method}")


def _note(call, **fields):
    """Record what a transfer did in C{call.data["transfer"]} (the CDR's C{transfer})."""
    call.data.setdefault("transfer", {}).update(fields)


def _rebridge(call, sdp):
    """
    Point C{call}'s SIP-side RTP at C{sdp}'s address and codec.

    @return: a L{Deferred} firing with our new SDP (C{bytes}).
    """
    d = defer.maybeDeferred(call.media.sipReoffer, sdp)

    def done(result):
        answer, _ = result
        call.localSdp = answer
        return answer

    return d.addCallback(done)


def joinCalls(call, other, subscription=None):
    """
    Attended transfer (RFC 3515 with RFC 3891 Replaces naming C{other}):
    the RTP of both calls' SIP sides is pointed at each other, so the
    clients of C{call} and C{other} talk; each call's C{leg} becomes a
    L{JoinedLeg} to the other; C{subscription} hears 200; both SIP dialogs
    are released (BYE).

    @return: a L{Deferred} firing with C{None} when joined, failing (and
        notifying 488) when either media cannot be re-pointed (the calls
        are then left as they were, as far as the media allows).
    """
    hop = hopAddress(call.services.mediaFactory)
    mine, theirs = _sdpBytes(call.localSdp), _sdpBytes(other.localSdp)
    d = _rebridge(call, loopbackSdp(theirs, hop))
    d.addCallback(lambda _: _rebridge(other, loopbackSdp(mine, hop)))

    def joined(_):
        legs = (call.leg, other.leg)
        call.leg = JoinedLeg(call.request, other)
        other.leg = JoinedLeg(other.request, call)
        _note(call, kind="attended", role="transferee", peer=other.id)
        _note(other, kind="attended", role="target", peer=call.id)
        for c in (call, other):
            if c.held:
                c.held = False
                _tellUnhold(c)
        if subscription is not None:
            subscription.notify(200)
        for leg in legs:
            releaseLeg(leg)
        metrics.CALL_TRANSFERS.labels(kind="attended", result="done").inc()

    def failed(f):
        log.info("transfer: joining {a} and {b} failed: {why}", a=call.id, b=other.id,
                 why=f.getErrorMessage())
        if subscription is not None:
            subscription.notify(488, "Not Acceptable Here")
        metrics.CALL_TRANSFERS.labels(kind="attended", result="failed").inc()
        return f

    return d.addCallbacks(joined, failed)


def _tellUnhold(call):
    from linkrtc.call.operators.answer import _tellHold

    _tellHold(call, False)


def replaceLeg(call, leg):
    """
    An INVITE with Replaces (RFC 3891 §3) took C{call}'s dialog: its offer
    re-points the call's RTP, it is answered 200 with our SDP, it becomes
    the call's leg and the old dialog gets BYE. An INVITE without SDP, or
    one whose SDP the media cannot take, gets 488 and changes nothing.

    @param leg: the new L{linkrtc.interfaces.ISIPServerLeg}, its listener
        the call already.
    @return: a L{Deferred} firing when done.
    """
    offer = getattr(leg.request, "body", b"") or b""
    if not offer:
        leg.sendFinal(488, "Offer Required With Replaces")
        return defer.succeed(None)
    d = _rebridge(call, offer)

    def answered(answer):
        old, call.leg = call.leg, leg
        leg.sendFinal(200, body=answer, contentType=SDP)
        _note(call, kind="replaces", replaced_by=str(getattr(leg, "callId", "") or ""))
        releaseLeg(old)
        metrics.CALL_TRANSFERS.labels(kind="replaces", result="done").inc()

    def failed(f):
        log.info("transfer: Replaces for {call_id} refused: {why}", call_id=call.id,
                 why=f.getErrorMessage())
        leg.setListener(DetachedLegListener())
        leg.sendFinal(488)
        metrics.CALL_TRANSFERS.labels(kind="replaces", result="failed").inc()

    return d.addCallbacks(answered, failed)


# -- blind transfer to a client ----------------------------------------------------------


class StandInRequest:
    """
    The stand-in INVITE of a call with no SIP INVITE (a L{TransferTargetCall},
    L{linkrtc.app.dial.ClientLegCall}): From, To, no SDP (offerless).
    """

    method = "INVITE"
    body = b""
    headers = None

    def __init__(self, fromURI, toURI):
        self.fromAddr = fromURI
        self.toAddr = toURI
        self.uri = toURI


class StandInAck:
    """The stand-in ACK (its SDP the answer) of a call with a L{StandInRequest}."""

    method = "ACK"

    def __init__(self, body):
        self.body = body


class TransferLeg(JoinedLeg):
    """
    The "SIP leg" of a L{TransferTargetCall}: its far end is the
    transferee's call. Its 200 OK (the target's bridge session offering
    its RTP, offerless INVITE) goes to L{BlindTransfer.targetAnswered},
    whose answer comes back as the ACK; other final statuses are the
    transfer's failure (told when the call is released).
    """

    def __init__(self, request, transfer):
        JoinedLeg.__init__(self, request, None)
        self.transfer = transfer
        self.finalSent = False

    def sendFinal(self, status, reason=None, body=None, contentType=None, headers=()):
        if self.finalSent:
            return
        self.finalSent = True
        if 200 <= status < 300:
            self.transfer.targetAnswered(body)


class DirectClientCall(Call):
    """
    A call with no SIP INVITE that rings a client LinkRTC chose itself
    (C{clientTarget}): the incoming topology, routed to it at once.
    Subclasses give the leg (L{TransferTargetCall},
    L{linkrtc.app.dial.ClientLegCall}).
    """

    direction = "outbound"
    clientTarget = None

    def __repr__(self):
        return f"<{type(self).__name__} {self.id} {self.state.name if self.state else None}>"

    def firstEvent(self):
        return InviteEvent(self.request)

    def askApplication(self):
        """The client was chosen already: route to it."""
        self.dispatch(ApplicationDecisionEvent({"action": "route",
                                                "client": self.clientTarget}))


class TransferTargetCall(DirectClientCall):
    """
    The call that rings the client a blind transfer names: the incoming
    topology (C{incoming}, C{ringing}, C{accept}, ring timeout) with a
    L{TransferLeg} as its SIP side.
    """

    def __init__(self, client, fromURI, toURI, machine, services, transfer, onRelease=None):
        self.clientTarget = client
        leg = TransferLeg(StandInRequest(fromURI, toURI), transfer)
        super().__init__(leg, machine, services, onRelease=onRelease,
                         callId="t" + uuid.uuid4().hex)
        leg.setListener(self)


class BlindTransfer:
    """
    A REFER from a call's SIP peer to a connected client (RFC 3515 §2.4):
    rings the client (L{TransferTargetCall}), NOTIFYs the transferor of
    the progress, and on the answer re-bridges the call to it.

    @ivar call: the transferee's L{Call} (its SIP peer is the transferor).
    @ivar target: the L{TransferTargetCall}, once started.
    @ivar done: C{True} once the transfer succeeded or failed.
    """

    def __init__(self, call, client, subscription, engine):
        """
        @param call: the L{Call} whose SIP peer sent the REFER.
        @param client: the target client's name, C{str}.
        @param subscription: the L{ReferSubscription}.
        @param engine: the L{Transfers} (the call manager).
        """
        self.call = call
        self.client = client
        self.subscription = subscription
        self.engine = engine
        self.target = None
        self.done = False
        self.transferorGone = False
        self._transferorLeg = call.leg

    def start(self):
        """Ring the target client; C{100 Trying} to the transferor."""
        call = self.call
        self.subscription.notify(100)
        manager = self.engine.manager
        self.target = TransferTargetCall(self.client, call.toURI, f"sip:{self.client}@transfer",
                                         manager.machine, manager.services, self,
                                         onRelease=self._targetReleased)
        _note(call, kind="blind", role="transferee", target=self.client,
              peer=self.target.id)
        _note(self.target, kind="blind", role="target", peer=call.id)
        call.data["transferring"] = self
        manager.calls[self.target.id] = self.target
        call.whenReleased().addCallback(lambda _: self._transfereeGone())
        self.target.start()

    def targetAnswered(self, offer):
        """
        The target client answered: point the transferee's RTP at the
        target's, ACK the target with our SDP, NOTIFY 200 and release the
        transferor's dialog.
        """
        call, target = self.call, self.target
        if call.isOver or call.leg is not self._transferorLeg:
            target.legTerminated("the transferee's call is gone")
            return
        hop = hopAddress(call.services.mediaFactory)
        d = _rebridge(call, loopbackSdp(_sdpBytes(offer), hop))

        def rebridged(answer):
            self.done = True
            call.data.pop("transferring", None)
            target.leg.peer = call
            call.leg = JoinedLeg(call.request, target)
            target.legAcknowledged(StandInAck(loopbackSdp(answer, hop)))
            self.subscription.notify(200)
            if call.held:
                call.held = False
                _tellUnhold(call)
            releaseLeg(self._transferorLeg)
            metrics.CALL_TRANSFERS.labels(kind="blind", result="done").inc()

        def failed(f):
            log.info("transfer: {call_id} not re-bridged: {why}", call_id=call.id,
                     why=f.getErrorMessage())
            target.legTerminated(f"media: {f.getErrorMessage()}")

        d.addCallbacks(rebridged, failed)
        d.addErrback(lambda f: log.failure("transfer: answered", f))

    def transferorLeft(self):
        """
        The transferor hung up (BYE) while the target rings, as phones may
        right after the 202 (RFC 5589 §6): the transfer goes on; if it
        fails, the transferee's call ends.
        """
        self.transferorGone = True
        _note(self.call, transferor_left=True)

    def _targetReleased(self, target):
        self.engine.manager._released(target)
        if self.done:
            return
        self.done = True
        self.call.data.pop("transferring", None)
        ending = target.ending
        status = ending.cause if ending is not None and ending.cause >= 300 else 480
        _note(self.call, failed=status)
        metrics.CALL_TRANSFERS.labels(kind="blind", result="failed").inc()
        if self.transferorGone:
            if not self.call.isOver:
                self.call.dispatch(SIPRequestEvent(_Bye()))
            return
        self.subscription.notify(status, ending.reason if ending is not None else None)

    def _transfereeGone(self):
        """The transferee hung up while the target rang: the target's call is cancelled."""
        target = self.target
        if not self.done and target is not None and not target.isOver:
            target.legCancelled(None)


class Transfers:
    """
    The transfer engine of a L{linkrtc.call.manager.CallManager} (its
    C{services.transfers}): what the transfer operators need of the
    manager (its machine, services, live calls, dialer, the SIP user
    agent's dialogs).
    """

    def __init__(self, manager):
        self.manager = manager

    def clientConnected(self, name):
        """@return: C{True} if a client named C{name} is connected."""
        directory = self.manager.services.directory
        return bool(name) and bool(list(directory.connectionsFor(name) or ()))

    def dialer(self):
        """@return: the L{linkrtc.call.outbound.OutboundDialer}, or C{None}."""
        return getattr(self.manager, "dialer", None)

    def callForDialog(self, leg, dialogId):
        """
        @param leg: a leg of ours (its user agent's dialog table is used).
        @param dialogId: a L{linkrtc.sip.dialog.DialogId}.
        @return: the live L{Call} whose SIP leg owns that dialog, or C{None}.
        """
        userAgent = getattr(leg, "userAgent", None)
        if userAgent is None:
            return None
        other = userAgent.dialogs.get(dialogId)
        call = getattr(other, "listener", None)
        if not isinstance(call, Call) or call.isOver or call.leg is not other:
            return None
        return call

    def blind(self, call, client, subscription):
        """Start a L{BlindTransfer} of C{call} to C{client}; @return: it."""
        transfer = BlindTransfer(call, client, subscription, self)
        transfer.start()
        return transfer


__all__ = ["BlindTransfer", "DirectClientCall", "JoinedLeg", "ReferSubscription", "StandInAck", "StandInRequest", "TransferLeg",
           "TransferTargetCall", "Transfers", "canTransfer", "hopAddress", "joinCalls",
           "loopbackSdp", "releaseLeg", "replaceLeg"]
