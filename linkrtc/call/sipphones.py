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
   bridge mode, the caller's SDP in passthrough);
 - 180/183 -> C{ringing}; 2xx -> C{accept} with the phone's SDP (the
   engine gives it to C{phoneAnswer}); a failure -> C{hangup} with the
   status as C{cause} (the engine's choice among the devices' answers,
   L{linkrtc.call.fork.bestResponse}); the phone's BYE -> C{hangup};
 - C{state} C{dropped} -> CANCEL before the answer (with C{Reason: SIP
   ;cause=200;text="Call completed elsewhere"} when another device
   answered, RFC 3326), BYE after. A 2xx that comes after the CANCEL is
   ACKed and ended with BYE by the leg (RFC 3261 §13.2.2.4).

In a call a phone answered, its re-INVITEs and UPDATEs get 488 (hold from
the phone is not mapped), other requests 501.
"""

from twisted.logger import Logger
from zope.interface import implementer

from linkrtc.call.contacts import contactsFor, inviteToContact
from linkrtc.call.fork import ANSWERED_ELSEWHERE, ANSWERED_ELSEWHERE_REASON
from linkrtc.interfaces import IClientConnection
from linkrtc.sip.outbound import InviteClientLeg
from linkrtc.sip.uri import parseURI

__all__ = ["PhoneBranch", "PhoneRinger"]

log = Logger()


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
        @param offer: the INVITE's SDP (C{bytes} or C{str}).
        @return: an unstarted INVITE client leg to the contact, through
            the flow its REGISTER came by (no 3xx followed).
        """
        return inviteToContact(self.userAgent, self.clock, self.legFactory, binding, caller,
                               offer, display)


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
        if self.done and not self.answered:
            return
        self.done = True
        self.answered = False
        self._tell({"type": "hangup"})

    def legRequestReceived(self, request, respond):
        if request.method == "BYE":
            respond(200)
            self.legTerminated("BYE")
        else:
            respond(488 if request.method in ("INVITE", "UPDATE") else 501)
