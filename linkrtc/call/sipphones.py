# -*- test-case-name: linkrtc.call.test.test_sipphones -*-
"""
Registered SIP phones (plain RTP: baresip, Linphone, desk phones) as
devices an incoming call rings: the B2BUA's outgoing branches of a fork
(L{linkrtc.call.fork}).

For each live UDP/TCP/TLS contact of the user a call is routed to
(L{linkrtc.call.contacts.contactsFor}), L{PhoneRinger.branchesFor} makes a
L{PhoneBranch}: a virtual L{linkrtc.interfaces.IClientConnection} of that
one call, so the engine rings it as it rings a browser. The branch turns
the engine's client protocol (docs/signalling.rst) into SIP on an INVITE
client leg (L{linkrtc.sip.outbound.InviteClientLeg}) sent through the
flow the contact's REGISTER came by:

 - C{incoming} -> INVITE with the media session's offer for phones
   (L{linkrtc.interfaces.IPhoneMediaSession.phoneOffer}: LinkRTC's RTP in
   bridge mode, also for an offerless INVITE; the caller's SDP in
   passthrough). In passthrough an offerless INVITE (C{sdp} null) goes
   to the phone offerless too: its 200 carries its offer (C{accept}),
   and the ACK of that 200 waits for the caller's answer, which the
   engine sends as the client protocol's C{answer} (RFC 3261 §13.2.1,
   §13.2.2.4: the ACK carries it); a call that ends first ACKs it
   without body, then BYE;
 - 180/183 -> C{ringing}; 2xx -> C{accept} with the phone's SDP (the
   engine gives it to C{phoneAnswer}); a failure -> C{hangup} with the
   status as C{cause} (the engine's choice among the devices' answers,
   L{linkrtc.call.fork.bestResponse}); the phone's BYE -> C{hangup};
 - C{state} C{dropped} -> CANCEL before the answer (with C{Reason: SIP
   ;cause=200;text="Call completed elsewhere"} when another device
   answered, RFC 3326), BYE after. A 2xx that comes after the CANCEL is
   ACKed and ended with BYE by the leg (RFC 3261 §13.2.2.4).

In a call a phone answered, its re-INVITEs and UPDATEs (RFC 3261 §14,
RFC 3311) are answered on the phone's side alone, by the media session
(L{linkrtc.interfaces.IPhoneMediaSession.phoneReoffer}, RFC 3264 §6.1 and
§8):

 - with SDP: our answer keeps LinkRTC's address, port and codec (bridge)
   or the caller's SDP (passthrough) and mirrors the direction
   (C{sendonly} -> C{recvonly}, C{inactive} -> C{inactive}), the o=
   version incremented only when it changes. An offer the media cannot
   take (no codec of the call, a new address in passthrough) gets 488 and
   the media stays. A change of hold is then passed to the engine as the
   client protocol's C{hold} / C{unhold} from the answering device, what a
   browser's hold button sends (docs/signalling.rst): in bridge mode the
   caller gets a re-INVITE with C{a=sendonly} (C{a=sendrecv} to resume)
   and the application C{state} C{hold} / C{unhold}; in passthrough the
   hold is signalling only. A C{hold} refused with C{error} 409 (the
   caller's own re-INVITE was under way) is asked again
   L{HOLD_RETRY_DELAY} seconds later, at most L{HOLD_RETRIES} times
   (L{linkrtc.call.phonehold}, shared with the WebSocket phones);
 - without SDP (a session refresh): a re-INVITE gets 200 with the SDP last
   sent to the phone (the offer; the phone's answer in its ACK is not
   read), an UPDATE 200 without body. The session timer headers are
   answered by the leg (L{linkrtc.sip.sessiontimer}), as on the inbound
   leg;
 - glare (RFC 3261 §14.1) is the leg's: 491 while our own re-INVITE to
   the phone (a session refresh) is out, 500 with Retry-After while one
   of the phone's is being answered.

Other requests get 501.
"""

from twisted.internet import defer
from twisted.logger import Logger
from zope.interface import implementer

from linkrtc.call.contacts import contactsFor, inviteToContact
from linkrtc.call.fork import ANSWERED_ELSEWHERE, ANSWERED_ELSEWHERE_REASON
from linkrtc.call.phonehold import HOLD_RETRIES, HOLD_RETRY_DELAY, PhoneHold
from linkrtc.error import MediaError
from linkrtc.interfaces import IClientConnection, IPhoneMediaSession
from linkrtc.sip.outbound import InviteClientLeg
from linkrtc.sip.uri import parseURI

__all__ = ["HOLD_RETRIES", "HOLD_RETRY_DELAY", "PhoneBranch", "PhoneRinger"]

log = Logger()

SDP = "application/sdp"

def _text(body):
    if not body:
        return None
    try:
        text = bytes(body).decode("utf-8")
    except UnicodeDecodeError:
        return None
    return text if text.lstrip().startswith("v=0") else None


class PhoneRinger:
    """
    Makes the SIP branches of incoming calls.

    @ivar userAgent: the L{linkrtc.sip.useragent.UserAgent} the INVITEs go
        out through, or C{None}: no phone is rung.
    """

    def __init__(self, clock, bindings, userAgent=None, legFactory=None):
        """
        @param clock: an C{IReactorTime}.
        @param bindings: the registrar's L{linkrtc.sip.bindings.BindingTable}.
        @param userAgent: see C{userAgent}.
        @param legFactory: makes the INVITE client legs (default
            L{linkrtc.sip.outbound.InviteClientLeg}).
        """
        self.clock = clock
        self.bindings = bindings
        self.userAgent = userAgent
        self.legFactory = legFactory or InviteClientLeg

    def branchesFor(self, call, name):
        """
        @return: a new L{PhoneBranch} of C{call} for each live plain-SIP
            contact of the user C{name}, preferred first (empty without a
            user agent or such a contact).
        """
        if self.userAgent is None:
            return []
        return [PhoneBranch(self, call, binding) for binding in contactsFor(self.bindings, name)]

    def makeLeg(self, binding, caller, display, offer):
        """
        @param binding: the contact's L{linkrtc.sip.bindings.Binding}.
        @param caller: the caller's user part (C{str}) for our From, or
            C{None} (C{anonymous}).
        @param display: the caller's display name, or C{None}.
        @param offer: the INVITE's SDP (C{bytes} or C{str}), or C{None}:
            offerless, the ACK of its 2xx waits for L{PhoneBranch} (the
            leg's C{delayedAck}).
        @return: an unstarted INVITE client leg to the contact, through
            the flow its REGISTER came by (no 3xx followed).
        """
        return inviteToContact(self.userAgent, self.clock, self.legFactory, binding, caller,
                               offer, display, delayedAck=offer is None)


@implementer(IClientConnection)
class PhoneBranch:
    """
    One registered SIP contact rung for one call: a client connection of
    that call only.

    @cvar plainRTP: C{True}: the engine offers it
        L{linkrtc.interfaces.IPhoneMediaSession.phoneOffer}, not the
        WebRTC offer.
    @ivar clientName: the SIP user's name.
    @ivar binding: the contact's L{linkrtc.sip.bindings.Binding}.
    @ivar device: the contact's URI (C{str}), the CDR's C{device} when it
        answers.
    @ivar leg: the INVITE client leg, once C{incoming} came.
    @ivar done: C{True} once the branch is over for the engine (failed,
        cancelled, ended).
    @ivar hold: its L{linkrtc.call.phonehold.PhoneHold} (C{hold.held}:
        C{True} while the answering phone's last offer put the call on
        hold).
    """

    plainRTP = True
    identity = None
    trace = False
    grants = None
    connected = True

    def __init__(self, ringer, call, binding):
        self._ringer = ringer
        self._call = call
        self.binding = binding
        self.clientName = binding.user
        self.device = binding.uriText or str(binding.contact.uri)
        self.peer = str(binding.flow)
        self.leg = None
        self.answered = False
        self.done = False
        self.hold = PhoneHold(ringer.clock, self._tell,
                              lambda: self.answered and not self.done)

    def __repr__(self):
        return f"<PhoneBranch {self.clientName!r} {self.device}>"

    def _tell(self, message):
        message.setdefault("call", self._call.id)
        try:
            self._call.clientMessage(self, message)
        except Exception:
            log.failure("SIP branch {device}: the call failed on {type}", device=self.device,
                        type=message.get("type"))

    def discard(self):
        """Left out of the call (over the bound): nothing to undo."""
        self.done = True

    # -- the engine talks to the phone -------------------------------------

    def sendMessage(self, message):
        """A client-protocol message of the call, done in SIP. @return: C{True}."""
        kind = message.get("type")
        if kind == "incoming":
            self._invite(message)
        elif kind == "state" and message.get("state") == "dropped":
            self._stop(message.get("cause"))
        elif kind == "state" and message.get("state") in ("hold", "unhold"):
            self.hold.applied()
        elif kind == "error" and message.get("code") == 409:
            self.hold.refused()
        elif kind == "answer" and self.answered and self.leg is not None:
            # The caller's answer to the offer of our 200 (an offerless INVITE).
            self.leg.sendAck(message.get("sdp"))
        return True

    def close(self, code=1000, reason=None):
        """The engine drops the device: end its SIP side."""
        self._stop(None)

    def _invite(self, message):
        if self.leg is not None or self.done:
            return
        call = self._call
        caller, display = None, None
        try:
            fromAddr = call.request.fromAddr
            caller = getattr(fromAddr.uri, "user", None)
            display = fromAddr.display
        except Exception:
            try:
                caller = getattr(parseURI(call.fromURI), "user", None)
            except Exception:
                caller = None
        try:
            self.leg = self._ringer.makeLeg(self.binding, caller, display, message.get("sdp"))
            self.leg.setListener(self)
            self.leg.start()
        except Exception:
            log.failure("SIP branch {device}: the INVITE failed", device=self.device)
            self.done = True
            self._tell({"type": "hangup", "cause": 500, "reason": "the INVITE failed"})

    def _stop(self, cause):
        self.hold.stop()
        leg = self.leg
        if self.done and not self.answered:
            return
        self.done = True
        if leg is None:
            return
        if getattr(leg, "dialog", None) is not None:
            if leg.state not in ("terminating", "terminated"):
                leg.sendBye().addErrback(lambda f: None)
            return
        leg.cancel(reason=ANSWERED_ELSEWHERE_REASON if cause == ANSWERED_ELSEWHERE else None)

    # -- ISIPClientLegListener ---------------------------------------------

    def legProgress(self, response):
        if response.status in (180, 183) and not self.done:
            self._tell({"type": "ringing"})

    def legAnswered(self, response):
        if self.done:
            # The engine let this branch go while its 2xx was on the way.
            self.leg.sendBye().addErrback(lambda f: None)
            return
        sdp = _text(response.body)
        if sdp is None:
            self.done = True
            self.leg.sendBye().addErrback(lambda f: None)
            self._tell({"type": "hangup", "cause": 488, "reason": "no SDP in the phone's 200"})
            return
        self.answered = True
        self._tell({"type": "accept", "sdp": sdp})

    def legFailed(self, status, reason, response):
        if self.done:
            return
        self.done = True
        self._tell({"type": "hangup", "cause": status, "reason": reason or f"SIP {status}"})

    def legTerminated(self, reason):
        self.hold.stop()
        if self.done and not self.answered:
            return
        self.done = True
        self.answered = False
        self._tell({"type": "hangup"})

    def legRequestReceived(self, request, respond):
        if request.method == "BYE":
            respond(200)
            self.legTerminated("BYE")
        elif request.method in ("INVITE", "UPDATE"):
            self._reoffered(request, respond)
        else:
            respond(501)

    # -- the phone's re-INVITE and UPDATE ------------------------------------

    def _reoffered(self, request, respond):
        """A re-INVITE or UPDATE of the phone: see the module docstring."""
        media = getattr(self._call, "media", None)
        if self.done or not self.answered or not IPhoneMediaSession.providedBy(media):
            respond(481 if self.done else 491)
            return
        raw = bytes(getattr(request, "body", b"") or b"")
        if not raw:
            if request.method == "UPDATE":
                respond(200)  # RFC 3311 §5.2: no offer, no answer
                return
            current = media.phoneSdp()
            if current is None:
                respond(500)
                return
            respond(200, body=current, contentType=SDP)  # RFC 3261 §14.2: our offer
            return
        sdp = _text(raw)
        if sdp is None:
            respond(488)
            return
        d = defer.maybeDeferred(media.phoneReoffer, sdp)
        d.addCallbacks(self._reofferAnswered, self._reofferFailed,
                       callbackArgs=(respond,), errbackArgs=(respond,))
        d.addErrback(lambda f: log.failure("SIP branch {device}: answering a re-offer failed",
                                           f, device=self.device))

    def _reofferAnswered(self, result, respond):
        answer, hold = result
        respond(200, body=answer, contentType=SDP)
        self.hold.offered(hold)

    def _reofferFailed(self, failure, respond):
        if failure.check(MediaError):
            log.info("SIP branch {device}: re-offer refused: {why}", device=self.device,
                     why=failure.getErrorMessage())
            respond(488)
        else:
            log.failure("SIP branch {device}: the re-offer failed", failure, device=self.device)
            respond(500)
