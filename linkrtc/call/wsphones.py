# -*- test-case-name: linkrtc.call.test.test_wsphones -*-
"""
SIP phones registered over WebSocket (RFC 7118: JsSIP, SIP.js in a
browser) as clients of the call engine.

A WebSocket phone's media is WebRTC (ICE, DTLS-SRTP, Opus/PCMU), not the
plain RTP the SIP side of the media bridge speaks. So LinkRTC treats such
a phone as it treats a JSON client: the phone's SDP goes to the WebRTC
side of the bridge (L{linkrtc.media.bridge}: C{clientOffer} /
C{sipAnswer} when it is called, C{sipOffer} / C{clientAnswer} when it
calls), and its SIP signalling is translated to and from the client
protocol (docs/signalling.rst) by a L{WebSocketPhone}, a virtual
L{linkrtc.interfaces.IClientConnection} that L{WebSocketPhones} puts in
the L{linkrtc.signalling.directory.ClientDirectory} under the user's
name while the user has a live WS/WSS binding.

Calls from the phone (an INVITE over its WebSocket, taken by
L{WebSocketPhones.takes} ahead of the call manager) become the
client's C{call} (C{to}: the Request-URI's user), so they reach a
registered SIP user by name (L{linkrtc.call.contacts}) or a trunk; the
engine's C{calling}, C{state}, C{answer} and C{error} become 180, 200 (with
the WebRTC answer), BYE or the final failure.

Calls to the phone: the engine's C{incoming} (a WebRTC offer) becomes an
INVITE to the binding's contact over the phone's own WebSocket
(L{linkrtc.sip.websocket}); 180 becomes C{ringing}, 2xx C{accept} with
the phone's answer, a failure C{reject}, a BYE C{hangup}. An C{incoming}
without SDP (an offerless INVITE in passthrough) becomes an offerless
INVITE: the phone's 2xx carries its offer (C{accept}), and its ACK waits
for the engine's C{answer} (the caller's answer, from the caller's ACK),
which it carries (RFC 3261 §13.2.1, §13.2.2.4).

In a call (either way), the phone's in-dialog requests
(L{linkrtc.call.wsindialog} reads them; docs/clients.rst):

 - INFO with C{application/dtmf-relay} (C{Signal=5}, C{Duration=100}:
   JsSIP's and SIP.js's C{sendDTMF}) or C{application/dtmf}: 200 and the
   client's C{dtmf} (the far SIP side gets RFC 4733 events); a body that
   is not one key: 400 with the reason; another type: 415 with C{Accept};
 - re-INVITE or UPDATE with SDP (hold, resume): the WebRTC leg is not
   renegotiated. An offer that keeps its transport (ICE credentials,
   DTLS fingerprint and role, streams, the codec in use) is answered with
   the SDP last sent to the phone, directions mirrored, C{a=setup} the
   role in use, the o= version one up only when it changes; anything else
   gets 488 with the reason and changes nothing. A change of hold is the
   client's C{hold} / C{unhold}, retried on C{error} 409 as for the
   phones on UDP/TCP/TLS (L{linkrtc.call.phonehold});
 - without SDP (a refresh): a re-INVITE gets 200 with the SDP last sent,
   an UPDATE 200 without body. Glare (491, 500 with Retry-After) is the
   SIP leg's; BYE ends the call; other requests get 501.
"""

from twisted.logger import Logger
from zope.interface import implementer

from linkrtc.call.contacts import inviteToContact
from linkrtc.call.fork import ANSWERED_ELSEWHERE, ANSWERED_ELSEWHERE_REASON
from linkrtc.call.phonehold import PhoneHold
from linkrtc.call.wsindialog import DTMF_TYPES, InfoError, dtlsRole, infoDigit, reanswer
from linkrtc.error import MediaError
from linkrtc.interfaces import IClientConnection
from linkrtc.sip.dialog import newTag
from linkrtc.sip.outbound import InviteClientLeg
from linkrtc.sip.uri import parseURI
from linkrtc.sip.websocket import WS_TRANSPORTS

__all__ = ["WebSocketPhone", "WebSocketPhones", "isWebSocketBinding"]

log = Logger()

SDP = "application/sdp"


def isWebSocketBinding(binding):
    """@return: C{True} if C{binding}'s REGISTER came over a WebSocket (WS/WSS)."""
    return str(getattr(binding.flow, "transport", "")).upper() in WS_TRANSPORTS


def _text(body):
    if not body:
        return None
    try:
        return bytes(body).decode("utf-8")
    except UnicodeDecodeError:
        return None


class _PhoneCalls:
    """
    The phone's side of one call: its SIP leg, what the engine said, and
    the first offer/answer's SDPs its re-offers are checked against.
    """

    def __init__(self, leg, outgoing):
        self.leg = leg
        self.outgoing = outgoing  # True: the phone called (a server leg)
        self.callId = None
        self.answerSdp = None
        self.confirmed = False
        self.finished = False  # the SIP leg is answered/failed/ended
        self.answered = False  # the first offer/answer is done: re-offers are read
        self.ourSdp = self.phoneSdp = self.lastSent = self.role = None
        self.hold = None

    def established(self, ourSdp, phoneSdp, weOffered):
        """The call is answered: keep its SDPs (C{str}) and our DTLS role."""
        self.ourSdp = self.lastSent = ourSdp
        self.phoneSdp = phoneSdp
        self.role = dtlsRole(ourSdp, phoneSdp, weOffered)
        self.answered = True


@implementer(IClientConnection)
class WebSocketPhone:
    """
    One WebSocket-registered SIP user as a client connection of the engine.

    @ivar clientName: the SIP user's name, C{str}.
    @ivar binding: its live WS/WSS L{linkrtc.sip.bindings.Binding}.
    @ivar connected: C{False} once its binding is gone or its WebSocket
        closed (the phone is then unreachable, RFC 7118 §5.2).
    """

    trace = False

    def __init__(self, phones, binding):
        self._phones = phones
        self.binding = binding
        self.clientName = binding.user
        self.registered = True
        self.source = binding.flow.host
        self.peer = str(binding.flow)
        self._calls = {}  # engine call id -> _PhoneCalls
        self._pending = {}  # ref -> _PhoneCalls (outgoing, before "calling")

    @property
    def identity(self):
        """
        The L{linkrtc.signalling.tokens.Identity} of the derived credentials
        it registered with (its calls are then authenticated, with their
        grants), or C{None} for a configured SIP user (no grants: calls out
        through any trunk, as before).
        """
        return self.binding.identity

    @property
    def grants(self):
        """The grants of L{identity}, or C{None} (see L{linkrtc.call.dialplan.identityOf})."""
        identity = self.binding.identity
        return identity.grants if identity is not None else None

    @property
    def connected(self):
        return self.registered and self.binding.flow.alive

    def __repr__(self):
        return f"<WebSocketPhone {self.clientName!r} {self.peer}>"

    # -- the engine talks to the phone ----------------------------------------

    def sendMessage(self, message):
        """
        A client-protocol message from the engine, done in SIP.

        @return: C{True}.
        """
        kind = message.get("type")
        callId = message.get("call")
        if kind == "calling":
            pc = self._pending.pop(message.get("ref"), None)
            if pc is not None:
                pc.callId = callId
                self._calls[callId] = pc
            return True
        if kind == "error" and message.get("ref") in self._pending:
            pc = self._pending.pop(message["ref"])
            self._fail(pc, message.get("code"))
            return True
        if kind == "incoming":
            self._incoming(message)
            return True
        pc = self._calls.get(callId)
        if pc is None:
            return True
        if kind == "answer" and not pc.outgoing:
            # The caller's answer to the offer of the phone's 2xx (offerless).
            pc.leg.sendAck(message.get("sdp"))
        elif kind == "answer":
            pc.answerSdp = message.get("sdp")
            self._maybeAnswer(pc)
        elif kind == "state":
            self._state(pc, message.get("state"), message.get("cause"))
        elif kind == "error" and pc.outgoing and not pc.finished:
            self._fail(pc, message.get("code"))
        elif kind == "error" and message.get("code") == 409 and pc.hold is not None:
            pc.hold.refused()  # the phone's hold came while a re-INVITE was pending
        return True

    def close(self, code=1000, reason=None):
        """The engine drops the client: end every call of the phone."""
        for callId in list(self._calls):
            self._tell({"type": "hangup", "call": callId})

    def _state(self, pc, state, cause):
        if state == "ringing" and pc.outgoing and not pc.finished:
            pc.leg.sendProvisional(180)
        elif state == "confirmed":
            pc.confirmed = True
            self._maybeAnswer(pc)
        elif state in ("hold", "unhold") and pc.hold is not None:
            pc.hold.applied()
        elif state == "dropped":
            self._calls.pop(pc.callId, None)
            if pc.hold is not None:
                pc.hold.stop()
            self._end(pc, cause)

    def _maybeAnswer(self, pc):
        if pc.outgoing and not pc.finished and pc.confirmed and pc.answerSdp:
            pc.finished = True
            pc.leg.sendFinal(200, body=pc.answerSdp.encode("utf-8"), contentType=SDP)
            self._established(pc, pc.answerSdp, _text(pc.leg.request.body) or "", False)

    def _fail(self, pc, code):
        if pc.finished or getattr(pc.leg, "finalSent", False):
            return
        pc.finished = True
        status = code if isinstance(code, int) and 400 <= code <= 699 else 500
        pc.leg.sendFinal(status)

    def _end(self, pc, cause):
        """The engine ended the call: end the SIP side as its state allows."""
        if pc.outgoing:
            if getattr(pc.leg, "finalSent", False) or pc.finished:
                if getattr(pc.leg, "dialog", None) is not None and pc.leg.state != "terminated":
                    pc.leg.sendBye().addErrback(lambda f: None)
            else:
                self._fail(pc, cause if isinstance(cause, int) and cause >= 400 else 480)
            pc.finished = True
            return
        if pc.leg.dialog is not None:
            if pc.leg.state not in ("terminating", "terminated"):
                pc.leg.sendBye().addErrback(lambda f: None)
        elif not pc.finished:
            pc.leg.cancel(reason=ANSWERED_ELSEWHERE_REASON if cause == ANSWERED_ELSEWHERE
                          else None)
        pc.finished = True

    def _tell(self, message):
        self._phones.clientMessage(self, message)

    def _established(self, pc, ourSdp, phoneSdp, weOffered):
        """The call is answered: its re-offers and hold are read from now on."""
        pc.established(ourSdp, phoneSdp, weOffered)
        pc.hold = PhoneHold(self._phones.clock, lambda m: self._tell(dict(m, call=pc.callId)),
                            lambda: pc.callId in self._calls)

    # -- calls from the phone -------------------------------------------------

    def placeCall(self, leg):
        """
        The phone's INVITE (an L{linkrtc.sip.invite.InviteServerLeg}): the
        client's C{call} to the Request-URI's user. An INVITE without SDP
        gets 488 (the WebRTC side needs the phone's offer).
        """
        pc = _PhoneCalls(leg, outgoing=True)
        leg.setListener(_ServerLegListener(self, pc))
        offer = _text(leg.request.body)
        target = getattr(leg.request.uri, "user", None)
        if offer is None or not offer.lstrip().startswith("v=0"):
            pc.finished = True
            leg.sendFinal(488, "an offer (SDP) is required")
            return
        if not target:
            pc.finished = True
            leg.sendFinal(404)
            return
        ref = newTag()
        self._pending[ref] = pc
        self._tell({"type": "call", "to": target, "sdp": offer, "ref": ref})
        if ref in self._pending and pc.callId is None and not pc.finished:
            # The engine neither answered "calling" nor refused.
            self._pending.pop(ref, None)
            self._fail(pc, 500)

    # -- calls to the phone ---------------------------------------------------

    def _incoming(self, message):
        callId = message["call"]
        offer = message.get("sdp") or ""
        if not self.connected:
            self._tell({"type": "reject", "call": callId, "reason": "decline"})
            return
        try:
            leg = self._phones.makeLeg(self, callId, message.get("from"), offer)
        except Exception:
            log.failure("WebSocket phone {name}: cannot call", name=self.clientName)
            self._tell({"type": "reject", "call": callId, "reason": "decline"})
            return
        pc = _PhoneCalls(leg, outgoing=False)
        pc.callId = callId
        pc.ourSdp = offer
        self._calls[callId] = pc
        leg.setListener(_ClientLegListener(self, pc))
        leg.start()

    def legEnded(self, pc):
        """The phone ended the call (BYE, CANCEL, failure): the client's C{hangup}."""
        if pc.finished and pc.callId not in self._calls:
            return
        pc.finished = True
        if pc.hold is not None:
            pc.hold.stop()
        if pc.callId is not None and self._calls.pop(pc.callId, None) is not None:
            self._tell({"type": "hangup", "call": pc.callId})


class _LegListener:
    """
    What both legs of a WebSocket phone's call do with the phone's
    in-dialog requests (see the module docstring): BYE ends the call,
    INFO is DTMF (L{linkrtc.call.wsindialog.infoDigit}), re-INVITE and
    UPDATE are answered by L{linkrtc.call.wsindialog.reanswer}; anything
    else gets 501. Glare (491, 500 with Retry-After) is the leg's.
    """

    def __init__(self, phone, pc):
        self.phone, self.pc = phone, pc

    def legRequestReceived(self, request, respond):
        method = request.method
        if method == "BYE":
            respond(200)
            self.phone.legEnded(self.pc)
        elif method == "INFO":
            self._info(request, respond)
        elif method in ("INVITE", "UPDATE"):
            self._reoffer(request, respond)
        else:
            respond(501)

    def _live(self):
        pc = self.pc
        return pc.answered and pc.callId in self.phone._calls

    def _info(self, request, respond):
        """RFC 6086 legacy INFO: a DTMF key is the client's C{dtmf}."""
        body = bytes(getattr(request, "body", b"") or b"")
        contentType = getattr(request, "contentType", None)
        if not body and contentType is None:
            respond(200)  # no package, no body: nothing to do (a keepalive)
            return
        if contentType not in DTMF_TYPES:
            respond(415, headers=[("Accept", ", ".join(DTMF_TYPES))])
            return
        try:
            digit = infoDigit(body, contentType)
        except InfoError as e:
            respond(400, str(e))
            return
        if not self._live():
            respond(481)
            return
        respond(200)
        self.phone._tell({"type": "dtmf", "call": self.pc.callId, "digits": digit})

    def _reoffer(self, request, respond):
        """A re-INVITE or UPDATE: hold, resume, refresh (see the module docstring)."""
        pc = self.pc
        if not self._live():
            respond(491 if pc.callId in self.phone._calls else 481)
            return
        body = bytes(getattr(request, "body", b"") or b"")
        if not body:
            if request.method == "UPDATE":
                respond(200)  # RFC 3311 §5.2: a session refresh, no offer
            else:
                respond(200, body=pc.lastSent.encode("utf-8"), contentType=SDP)
            return
        offer = _text(body)
        try:
            if offer is None or getattr(request, "contentType", SDP) not in (SDP, None):
                raise MediaError("the body is not SDP")
            answer, hold = reanswer(pc.ourSdp, pc.phoneSdp, offer, pc.role, pc.lastSent,
                                    not pc.outgoing)
        except MediaError as e:
            log.info("WebSocket phone {name}: re-offer refused: {why}",
                     name=self.phone.clientName, why=e)
            respond(488, _reason(e))
            return
        pc.lastSent = answer
        respond(200, body=answer.encode("utf-8"), contentType=SDP)
        pc.hold.offered(hold)

    def legTerminated(self, reason):
        self.phone.legEnded(self.pc)


def _reason(error):
    """A reason phrase from C{error}: printable ASCII, at most 120 characters."""
    text = "".join(c if " " <= c <= "~" else "?" for c in str(error))
    return text[:120] or None


class _ServerLegListener(_LegListener):
    """The phone called: its INVITE's server leg (L{linkrtc.interfaces.ISIPLegListener})."""

    def legCancelled(self, request):
        pc = self.pc
        if not pc.finished:
            pc.finished = True
            pc.leg.sendFinal(487)
        self.phone.legEnded(pc)

    def legAcknowledged(self, ack):
        pass

    def legAckTimeout(self):
        self.phone.legEnded(self.pc)



class _ClientLegListener(_LegListener):
    """The phone is called: our INVITE's client leg (L{linkrtc.interfaces.ISIPClientLegListener})."""

    def legProgress(self, response):
        if response.status in (180, 183) and self.pc.callId in self.phone._calls:
            self.phone._tell({"type": "ringing", "call": self.pc.callId})

    def legAnswered(self, response):
        sdp = _text(response.body)
        if sdp is None:
            self.phone._tell({"type": "hangup", "call": self.pc.callId, "cause": 488})
            return
        self.phone._established(self.pc, self.pc.ourSdp or "", sdp, True)
        self.phone._tell({"type": "accept", "call": self.pc.callId, "sdp": sdp})

    def legFailed(self, status, reason, response):
        pc = self.pc
        pc.finished = True
        if self.phone._calls.pop(pc.callId, None) is not None:
            self.phone._tell({"type": "reject", "call": pc.callId,
                              "reason": "busy" if status in (486, 600) else "decline"})



class WebSocketPhones:
    """
    Keeps a L{WebSocketPhone} in the client directory for every SIP user
    with a live WS/WSS binding, and takes INVITEs that arrive over a
    WebSocket (the rest go to the call manager).

    @ivar engine: the L{linkrtc.call.manager.CallManager} (an
        L{linkrtc.interfaces.IClientMessageHandler}).
    @ivar userAgent: the L{linkrtc.sip.useragent.UserAgent} our INVITEs to
        phones go out through.
    """

    def __init__(self, clock, directory, bindings, engine=None, userAgent=None,
                 legFactory=None):
        """
        @param clock: an C{IReactorTime}.
        @param directory: the L{linkrtc.signalling.directory.ClientDirectory}.
        @param bindings: the registrar's L{linkrtc.sip.bindings.BindingTable}.
        @param engine: see C{engine}; the service gives a
            L{linkrtc.reference.Reference} to it (the engine is built after
            the phones, which it takes INVITEs through).
        @param userAgent: see C{userAgent}.
        @param legFactory: makes the INVITE client legs (default
            L{linkrtc.sip.outbound.InviteClientLeg}).
        """
        self.clock = clock
        self.directory = directory
        self.bindings = bindings
        self.engine = engine
        self.userAgent = userAgent
        self.legFactory = legFactory if legFactory is not None else InviteClientLeg
        self._phones = {}  # user -> WebSocketPhone

    def phoneFor(self, user):
        """@return: the L{WebSocketPhone} of C{user}, or C{None}."""
        return self._phones.get(user)

    def bindingsChanged(self, user):
        """
        The registrar changed C{user}'s bindings: add, move or remove its
        phone in the directory (its newest live WS/WSS binding).
        """
        live = [b for b in self.bindings.bindingsFor(user)
                if isWebSocketBinding(b) and b.flow.alive]
        phone = self._phones.get(user)
        if live:
            binding = max(live, key=lambda b: b.registeredAt)
            if phone is not None and phone.binding.flow.connection is binding.flow.connection:
                phone.binding = binding
                return
            if phone is not None:
                self._drop(user, phone)
            phone = WebSocketPhone(self, binding)
            self._phones[user] = phone
            self.directory.register(user, phone)
        elif phone is not None:
            self._drop(user, phone)

    def _drop(self, user, phone):
        self._phones.pop(user, None)
        phone.registered = False
        self.directory.unregister(phone)
        clientLost = getattr(self.engine, "clientLost", None)
        if clientLost is not None:
            clientLost(phone)

    def clientMessage(self, phone, message):
        """Hand a client message of C{phone} to the engine."""
        if self.engine is None:
            return
        try:
            self.engine.clientMessageReceived(phone, message)
        except Exception:
            log.failure("WebSocket phone {name}: engine failed on {type}",
                        name=phone.clientName, type=message.get("type"))

    # -- INVITEs from phones -----------------------------------------------------

    def takes(self, leg):
        """
        The call manager asks this first for every INVITE: one that came
        over a WebSocket becomes its phone's C{call} (an INVITE over a
        WebSocket no registered user holds gets 403: register first).

        @param leg: the L{linkrtc.sip.invite.InviteServerLeg}.
        @return: C{True} if the INVITE was taken here, C{False} for the
            manager to handle (any other transport).
        """
        source = leg.source
        if str(getattr(source, "transport", "")).upper() not in WS_TRANSPORTS:
            return False
        connection = getattr(source, "connection", None)
        for phone in self._phones.values():
            if phone.connected and phone.binding.flow.connection is connection:
                phone.placeCall(leg)
                return True
        leg.sendFinal(403, "register over this WebSocket first")
        return True

    # -- INVITEs to phones ------------------------------------------------------

    def makeLeg(self, phone, callId, caller, offer):
        """
        @return: an unstarted INVITE client leg to C{phone}'s contact over
            its own WebSocket, offering C{offer} (C{str}, WebRTC SDP), or
            offerless for an empty C{offer} (its 2xx's ACK then waits for
            the leg's C{sendAck}).
        """
        try:
            user = getattr(parseURI(caller), "user", None) if caller else None
        except Exception:
            user = None
        return inviteToContact(self.userAgent, self.clock, self.legFactory, phone.binding,
                               user, offer or None, delayedAck=not offer)
