# -*- test-case-name: linkrtc.call.test.test_outbound -*-
"""
Outgoing calls (client -> SIP trunk): their own small topology, the call
object and the dialer that turns a client's C{call} message into an
INVITE through a trunk.

Topology (published names in brackets; the final state is shared in
spirit with incoming calls: the same entry operators release the call)::

    routing (-) --decision--> calling [calling] --180/183--> ringing [ringing]
        |                        |                               |
        +--reject/hangup-->  dropped [dropped] <--4xx-6xx/timeout/hangup
                                 ^                               |
                                 +------ BYE ---- confirmed [confirmed] <--2xx

C{max_ring_seconds} (seed 001) bounds the wait for the answer: it runs
from the INVITE and starts again when the far end rings (180/183).
C{max_answer_seconds} bounds the talk time once confirmed (BYE, cause
200). Both come from the configuration and may be given per call by the
webhook's C{outgoing} decision.

Media goes through the call's L{IOutboundMediaSession}, the same code
path for both media modes: C{sipOffer(clientSdp, trunk.codecs)} makes the
INVITE's offer (passthrough: the client's offer as it is, minus the codecs
the trunk does not allow; bridge: LinkRTC's RTP offer, once aiortc has
answered the client), and C{clientAnswer(sdp)} turns the SIP answer SDP
(from a 18x for early media, else the 2xx) into the client's
C{{"type": "answer"}}. Either may finish later (bridge): the call waits
in C{routing} for the offer, and in C{calling}/C{ringing} for the answer
to a 2xx. A trunk with C{offerless = true} sends an INVITE without SDP:
the 2xx then holds the far end's offer. In passthrough it is sent to the
client as C{answer}, and the ACK carries the client's offer; in bridge
mode (L{IOfferlessOutboundMediaSession}) the media session answers it
with LinkRTC's own RTP in the ACK (L{ackAnswerer}) and the client gets
the WebRTC answer made when the call was placed.
"""

import math
import re
import uuid
from dataclasses import dataclass
from typing import Any

from twisted.internet import defer
from twisted.logger import Logger
from twisted.python.failure import Failure
from zope.interface import implementer

from linkrtc.call.call import Call
from linkrtc.call.contacts import contactsFor, makeContactLeg, routeToContact
from linkrtc.call.dialplan import (
    DEFAULT_MAX_CALLS,
    DEFAULT_MAX_CALLS_PER_MINUTE,
    CallLimiter,
    DialPlan,
    DialPlanRefused,
    callerIdentity,
    grant,
    identityOf,
    securityEvent,
)
from linkrtc.call.events import ApplicationDecisionEvent, CallEvent
from linkrtc.call.machine import CallStateMachine
from linkrtc.call.state import State
from linkrtc.call.states import CALLING, CONFIRMED, DROPPED, RINGING
from linkrtc.error import MediaError
from linkrtc.interfaces import (
    IOfferlessOutboundMediaSession,
    IOutboundMediaSession,
    ISIPClientLegListener,
)

log = Logger()

#: The internal state of an outgoing call while the application decides.
ROUTING = "routing"

#: The states of an outgoing call, in the order of a successful one.
OUTBOUND_STATE_NAMES = (ROUTING, CALLING, RINGING, CONFIRMED, DROPPED)

#: The timers of an outgoing call.
RING_TIMER = "ring"
ANSWER_TIMER = "answer"

#: What L{OutboundDialer.route} returns while the media session makes the offer.
PENDING = "pending"

#: The media modes that can place calls.
OUTBOUND_MEDIA = ("passthrough", "bridge")

#: Static RTP payload types (RFC 3551) by encoding name, for m-lines
#: without C{a=rtpmap}.
_STATIC_PT = {"0": "PCMU", "3": "GSM", "4": "G723", "8": "PCMA", "9": "G722", "18": "G729"}


def outboundStates():
    """@return: a new C{list} of the outbound L{State}s, with empty queues."""
    return [
        State(ROUTING, published=None),
        State(CALLING, published=CALLING),
        State(RINGING, published=RINGING),
        State(CONFIRMED, published=CONFIRMED),
        State(DROPPED, published=DROPPED, final=True),
    ]


def buildOutboundMachine(factories=None):
    """
    The outbound topology with its stock operators
    (L{linkrtc.plugins.linkrtc_builtin.outboundFactories}).

    @return: a validated L{CallStateMachine} starting in C{routing}.
    @raise linkrtc.error.OperatorConfigError: for a bad placement.
    """
    from linkrtc.call.registry import _place
    from linkrtc.plugins import linkrtc_builtin

    if factories is None:
        factories = linkrtc_builtin.outboundFactories
    states = {state.name: state for state in outboundStates()}
    for factory in factories:
        _place(states, factory, None)
    return CallStateMachine(states.values(), ROUTING)


# -- events ----------------------------------------------------------------------


@dataclass(eq=False)
class OutgoingCallEvent(CallEvent):
    """
    The client's C{call} message that made the call; first event of every
    outgoing call.

    @ivar message: the validated C{dict} (C{to}, C{sdp}, C{ref}).
    """

    message: dict
    kind = "outgoing"

    def describe(self):
        return "client:call"


@dataclass(eq=False)
class SIPResponseEvent(CallEvent):
    """
    A provisional (101-199) or 2xx response to our INVITE.

    @ivar response: the L{linkrtc.sip.message.Response}.
    """

    response: Any
    kind = "sip-response"

    @property
    def status(self):
        """The response's status, C{int}."""
        return self.response.status

    def describe(self):
        return f"sip:{self.status}"


@dataclass(eq=False)
class SIPFailureEvent(CallEvent):
    """
    Our INVITE failed (3xx not followed, 4xx-6xx, no answer, transport).

    @ivar status: C{int} SIP status (408 for no response, 503 transport).
    @ivar reason: C{str}.
    @ivar response: the final response or C{None}.
    """

    status: int = 500
    reason: str = ""
    response: Any = None
    kind = "sip-failure"

    def describe(self):
        return f"sip:failed:{self.status}"


# -- SDP --------------------------------------------------------------------------


def filterCodecs(sdp, allowed):
    """
    Keep only the C{allowed} codecs in the audio and video m-lines of an
    offer (their C{a=rtpmap}, C{a=fmtp}, C{a=rtcp-fb} lines go too).

    @param sdp: C{str}.
    @param allowed: encoding names (C{"PCMU"}, C{"opus"},
        C{"telephone-event"} ...), any case; empty keeps everything.
    @return: the filtered SDP, C{str}, with CRLF line ends.
    @raise MediaError: an audio m-line keeps no codec at all.
    """
    if not allowed:
        return sdp
    allowed = {a.lower() for a in allowed}
    lines = sdp.replace("\r\n", "\n").split("\n")
    if lines and lines[-1] == "":
        lines.pop()
    sections = [[]]
    for line in lines:
        if line.startswith("m="):
            sections.append([])
        sections[-1].append(line)
    out = list(sections[0])
    for section in sections[1:]:
        parts = section[0][2:].split()
        if len(parts) < 4 or parts[0] not in ("audio", "video") or not all(
                p.isdigit() for p in parts[3:]):
            out.extend(section)
            continue
        names = {pt: _STATIC_PT.get(pt, "") for pt in parts[3:]}
        for line in section[1:]:
            if line.startswith("a=rtpmap:"):
                pt, _, rest = line[len("a=rtpmap:"):].partition(" ")
                names[pt] = rest.split("/", 1)[0]
        keep = [pt for pt in parts[3:] if names.get(pt, "").lower() in allowed]
        if not keep:
            if parts[0] == "audio":
                raise MediaError("the offer has no codec the trunk allows (%s)"
                                 % (", ".join(sorted(allowed)),))
            out.append(" ".join(["m=" + parts[0], "0"] + parts[2:3] + parts[3:4]))
            continue
        dropped = set(parts[3:]) - set(keep)
        out.append(" ".join(["m=" + parts[0]] + parts[1:3] + keep))
        for line in section[1:]:
            m = re.match(r"a=(rtpmap|fmtp|rtcp-fb):(\S+)", line)
            if m and m.group(2) in dropped:
                continue
            out.append(line)
    return "\r\n".join(out) + "\r\n"


def ackAnswerer(media):
    """
    @param media: an L{IOfferlessOutboundMediaSession}.
    @return: the SIP leg's C{ackBody} callable: the 2xx's offer (its body)
        answered by C{media.ackAnswer}; C{None} (an ACK without a body) when
        the 2xx has no body or the media session fails (the call then ends
        with 488 when the 2xx is handled).
    """

    def answer(response):
        body = getattr(response, "body", b"") or b""
        if not body:
            return None
        try:
            return media.ackAnswer(body)
        except Exception:
            log.failure("answering the 2xx's offer failed")
            return None

    return answer


def resultNow(deferred):
    """
    @return: C{(True, result)} if C{deferred} has fired (C{result} may be a
        L{Failure}, which is then handled), else C{(False, None)}; the
        result then stays in C{deferred} for later callbacks.
    """
    box = []

    def grab(result):
        if not box:
            box.append(result)
        return result

    deferred.addBoth(grab)
    if not box:
        return False, None
    result = box[0]
    deferred.addErrback(lambda f: None)
    return True, result


# -- the call -----------------------------------------------------------------------


class _NoLeg:
    """The placeholder leg of an outgoing call before its INVITE exists."""

    request = None
    callId = None


@implementer(ISIPClientLegListener)
class OutboundCall(Call):
    """
    One outgoing call (client -> SIP).

    Besides L{Call}'s attributes:

    @ivar originator: the L{linkrtc.interfaces.IClientConnection} that
        sent C{call} (also C{answerer}: it hears and acts on the call).
    @ivar target: the C{to} of the message, C{str}.
    @ivar ref: the client's C{ref}, C{str} or C{None}.
    @ivar clientSdp: the client's offer, C{str}.
    @ivar dialer: the L{OutboundDialer}.
    @ivar trunk: the L{linkrtc.config.Trunk} chosen, or C{None}.
    @ivar leg: the L{linkrtc.interfaces.ISIPClientLeg} once made, else a
        placeholder with C{request} C{None}.
    @ivar answerSdp: the SDP last sent to the client as C{answer}, or C{None}.
    @ivar maxRingSeconds: seconds (C{float}).
    @ivar maxAnswerSeconds: seconds (C{float}) or C{None} (no limit).
    @ivar dialIdentity: who placed the call (L{identityOf}), C{str} or C{None}.
    @ivar dialGrants: its grants (C{dict} or grant object).
    @ivar authenticated: C{True} if a token authenticated it.
    @ivar dialDecision: the L{linkrtc.call.dialplan.DialDecision} once
        routed, else C{None}.
    """

    direction = "outbound"

    def __init__(self, connection, message, machine, services, dialer, onRelease=None,
                 callId=None):
        super().__init__(_NoLeg(), machine, services, onRelease=onRelease,
                         callId=callId or "o" + uuid.uuid4().hex)
        self.leg = None
        self.originator = connection
        self.connections = [connection]
        self.offered = [connection]
        self.answerer = connection
        self.clientName = getattr(connection, "clientName", None)
        self.message = message
        self.target = message.get("to")
        self.ref = message.get("ref")
        self.clientSdp = message.get("sdp")
        self.dialer = dialer
        self.trunk = None
        self.contact = None
        self.answerSdp = None
        self.confirmPending = False
        self.routeTarget = None
        self.dialDecision = None
        self.routeFrom = None
        self.dialIdentity, self.dialGrants, self.authenticated = identityOf(connection)
        self.sipFrom = None
        self.sipTo = None
        self.maxRingSeconds = dialer.maxRingSeconds
        self.maxAnswerSeconds = dialer.maxAnswerSeconds

    def __repr__(self):
        return f"<OutboundCall {self.id} {self.state.name if self.state else None}>"

    @property
    def offerless(self):
        return False

    @property
    def fromURI(self):
        return self.sipFrom or (f"client:{self.clientName}" if self.clientName else None)

    @property
    def toURI(self):
        return self.sipTo or self.target

    def canPlace(self):
        """@return: C{True} if the call's media session can place it (L{IOutboundMediaSession})."""
        return IOutboundMediaSession.providedBy(self.media)

    def makeOffer(self, codecs):
        """
        @param codecs: the trunk's codec names, or empty.
        @return: the media session's INVITE offer (L{IOutboundMediaSession.sipOffer}),
            a L{Deferred} or C{bytes}; with the trunk's C{srtp} unless C{"off"}.
        """
        srtp = getattr(self.trunk, "srtp", "off")
        if srtp != "off":
            return self.media.sipOffer(self.clientSdp, codecs, srtp=srtp)
        return self.media.sipOffer(self.clientSdp, codecs)

    def outgoingInfo(self):
        """
        @return: the C{outgoing} event for the application: C{call},
            C{client}, C{to}, C{ref}, C{trunks} (the names configured).
        """
        return {
            "event": "outgoing",
            "call": self.id,
            "client": self.clientName,
            "to": self.target,
            "ref": self.ref,
            "trunks": [t.name for t in self.dialer.trunks],
        }

    def firstEvent(self):
        """@return: the event the call starts with (in C{routing}): the client's C{call}."""
        return OutgoingCallEvent(self.message)

    def askApplication(self):
        """
        Ask the application where the call goes (C{outgoing}); an
        application without C{outgoing} routes to the default trunk. The
        decision comes back as an L{ApplicationDecisionEvent}.
        """
        outgoing = getattr(self.services.application, "outgoing", None)
        if outgoing is None:
            d = defer.succeed({"action": "route", "trunk": None})
        else:
            try:
                d = defer.maybeDeferred(outgoing, self.outgoingInfo())
            except Exception:
                d = defer.fail(Failure())

        def failed(f):
            log.failure("call {call_id}: application failed", f, call_id=self.id)
            return {"action": "reject", "status": 503}

        d.addErrback(failed)
        d.addCallback(lambda decision: self.dispatch(ApplicationDecisionEvent(decision)))
        d.addErrback(lambda f: log.failure("call {call_id}: decision", f, call_id=self.id))

    def sendFinal(self, status, reason=None, body=None, contentType=None):
        """
        Give up the INVITE (the outbound meaning of "final response"): the
        leg CANCELs it (RFC 3261 §9.1). Once only.

        @return: C{True} if done now.
        """
        if self.finalStatus is not None:
            return False
        self.finalStatus = status
        if self.leg is not None:
            try:
                self.leg.cancel()
            except Exception:
                log.failure("call {call_id}: CANCEL failed", call_id=self.id)
        return True

    def buildCDR(self, mediaStats=None):
        cdr = super().buildCDR(mediaStats)
        cdr["trunk"] = self.trunk.name if self.trunk is not None else None
        cdr["ref"] = self.ref
        # The callee's device: a registered phone's contact, else none known.
        contact = getattr(self, "contact", None)
        cdr["device"] = (contact.uriText or str(contact.contact.uri)) \
            if contact is not None and self.answerTime is not None else None
        return cdr

    def sendAnswer(self, sdp):
        """
        Send the SIP side's SDP to the client as C{answer} unless it was
        sent already.

        @param sdp: C{str} (from L{IOutboundMediaSession.clientAnswer}) or
            C{bytes}.
        @return: C{True} if sent.
        """
        try:
            text = sdp.decode("utf-8") if isinstance(sdp, bytes) else sdp
        except UnicodeDecodeError:
            log.warn("call {call_id}: answer SDP is not UTF-8; dropped", call_id=self.id)
            return False
        if not isinstance(text, str):
            return False
        if not text.lstrip().startswith("v=0") or text == self.answerSdp:
            return False
        self.answerSdp = text
        return self.sendClient(self.originator, {"type": "answer", "sdp": text})

    def answerFromSIP(self, body):
        """
        Hand the SIP side's answer SDP (a 18x's or the 2xx's body) to the
        media session.

        @return: C{(True, result)} when it answered at once (C{result}: the
            client's SDP C{str}, or a L{Failure}); else C{(False, None)}, and
            the result comes later as a L{MediaResultEvent} C{clientAnswer}.
        """
        d = defer.maybeDeferred(self.media.clientAnswer, body)
        fired, result = resultNow(d)
        if not fired:
            self.whenDone(d, "clientAnswer")
        return fired, result

    def takeAnswer(self, result):
        """
        Send the client the media session's answer (C{str}); a L{Failure}
        is logged.

        @return: C{True} if the client has an answer (now or from before).
        """
        if isinstance(result, Failure):
            log.warn("call {call_id}: SIP answer not usable: {why}", call_id=self.id,
                     why=result.getErrorMessage())
            return self.answerSdp is not None
        self.sendAnswer(result)
        return self.answerSdp is not None

    # -- ISIPClientLegListener ---------------------------------------------------------

    def legProgress(self, response):
        self.dispatch(SIPResponseEvent(response))

    def legAnswered(self, response):
        self.dispatch(SIPResponseEvent(response))

    def legFailed(self, status, reason, response):
        self.dispatch(SIPFailureEvent(status, reason, response))


# -- the dialer ---------------------------------------------------------------------


def _seconds(value, what, allowNone=False):
    if value is None and allowNone:
        return None
    if (isinstance(value, bool) or not isinstance(value, (int, float)) or value <= 0
            or not math.isfinite(value)):
        raise ValueError(f"{what} must be a positive number of seconds, not {value!r}")
    return float(value)


class OutboundDialer:
    """
    Places the clients' outbound calls through the configured trunks,
    within the dial plan (L{linkrtc.call.dialplan}).

    @ivar trunks: C{tuple} of L{linkrtc.config.Trunk} (the first is the
        default).
    @ivar machine: the outbound L{CallStateMachine}.
    @ivar maxRingSeconds: default seconds to wait for the answer.
    @ivar maxAnswerSeconds: default talk time limit, seconds, or C{None}.
    @ivar dialPlan: the L{DialPlan} every target goes through.
    @ivar limiter: the per-identity L{CallLimiter}.
    @ivar credentials: C{{trunk name: DigestCredentials}}, one per trunk
        with credentials, shared by all its calls (and its registration).
    """

    def __init__(self, userAgent, trunks, clock, mediaName="passthrough", maxRingSeconds=60.0,
                 maxAnswerSeconds=None, machine=None, legFactory=None,
                 maxCalls=DEFAULT_MAX_CALLS, maxCallsPerMinute=DEFAULT_MAX_CALLS_PER_MINUTE,
                 credentials=None, bindings=None):
        """
        @param userAgent: the L{linkrtc.sip.useragent.UserAgent}.
        @param trunks: iterable of L{linkrtc.config.Trunk}.
        @param clock: an C{IReactorTime}.
        @param mediaName: the media factory's C{name}; passthrough and
            bridge place calls (L{OUTBOUND_MEDIA}).
        @param legFactory: makes the leg, C{(**kwargs) -> ISIPClientLeg}
            (default L{linkrtc.sip.outbound.InviteClientLeg}); for tests.
        @param maxCalls: outbound calls one identity may have at once
            (C{int}), C{None} for no limit.
        @param maxCallsPerMinute: calls one identity may start per 60
            seconds (C{int}), C{None} for no limit.
        @param credentials: C{{trunk name: DigestCredentials}} (the
            L{linkrtc.trunks.TrunkService}'s, so the realm a registration
            learned binds the calls too); default made here.
        @param bindings: the registrar's L{linkrtc.sip.bindings.BindingTable}:
            a C{to} naming a registered SIP user calls its contact
            (L{linkrtc.call.contacts}); C{None}: trunks only.
        """
        from linkrtc.trunks import trunkCredentials

        self.userAgent = userAgent
        self.trunks = tuple(trunks)
        self.clock = clock
        self.mediaName = mediaName
        self.maxRingSeconds = float(maxRingSeconds)
        self.maxAnswerSeconds = None if not maxAnswerSeconds else float(maxAnswerSeconds)
        self.machine = machine if machine is not None else buildOutboundMachine()
        if legFactory is None:
            from linkrtc.sip.outbound import InviteClientLeg

            legFactory = InviteClientLeg
        self.legFactory = legFactory
        self.dialPlan = DialPlan(self.trunks)
        self.limiter = CallLimiter(clock, maxCalls, maxCallsPerMinute)
        if credentials is None:
            credentials = {t.name: c for t in self.trunks
                           if (c := trunkCredentials(t)) is not None}
        self.credentials = credentials
        self.bindings = bindings

    def findTrunk(self, name=None):
        """@return: the trunk named C{name} (the first one for C{None}), or C{None}."""
        if name is None:
            return self.trunks[0] if self.trunks else None
        for trunk in self.trunks:
            if trunk.name == name:
                return trunk
        return None

    def refuse(self, message, connection=None):
        """
        @param connection: the client's connection; with it, the target
            must pass the dial plan of at least one trunk the identity may
            use (the application's decision is checked again in L{route})
            and the identity must be within its limits (L{CallLimiter}).
            A refusal logs one security event.
        @return: C{(code, text)} if a C{call} message cannot be placed at
            all (no trunk 503, a media mode without outbound support 501,
            dial plan 403/484, limits 429), else C{None}.
        """
        if self.mediaName not in OUTBOUND_MEDIA:
            return 501, f"outbound calls are not implemented with --media {self.mediaName}"
        if contactsFor(self.bindings, message.get("to")):
            return self._refuseForContact(connection)
        if not self.trunks:
            return 503, "no trunk is configured for outbound calls"
        if connection is None:
            return None
        identity, grants, _ = identityOf(connection)
        target = message.get("to")
        try:
            self._precheck(identity, grants, target)
            self.limiter.check(identity)
        except DialPlanRefused as e:
            if e.event is not None:
                securityEvent(e.event, connection, identity=identity, to=target,
                              code=e.code, reason=e.reason)
            return e.code, e.reason
        return None

    def _refuseForContact(self, connection):
        """A call to a registered SIP user: only the identity's limits apply."""
        if connection is None:
            return None
        identity = identityOf(connection)[0]
        try:
            self.limiter.check(identity)
        except DialPlanRefused as e:
            if e.event is not None:
                securityEvent(e.event, connection, identity=identity, code=e.code,
                              reason=e.reason)
            return e.code, e.reason
        return None

    def _precheck(self, identity, grants, target):
        """
        @raise DialPlanRefused: when no trunk C{grants} allow passes
            C{target} (the refusal of the first such trunk).
        """
        trunks = grant(grants, "trunks")
        candidates = [t for t in self.trunks if trunks is None or t.name in trunks] \
            or self.trunks[:1]
        refusal = None
        for trunk in candidates:
            try:
                self.dialPlan.check(identity, grants, trunk, target)
                return
            except DialPlanRefused as e:
                refusal = refusal or e
        raise refusal

    def route(self, call, decision):
        """
        Apply the application's C{route} decision to C{call}: pick the
        trunk, check the target (the decision's C{to}, else the client's)
        and the caller ID against the dial plan, the per-call limits, ask
        the media session for the offer (L{IOutboundMediaSession.sipOffer})
        and, once it is there, make the SIP leg (not started; see
        L{offerReady}).

        @return: C{None} on success, L{PENDING} while the media session
            makes the offer (a L{MediaResultEvent} C{sipOffer} follows),
            else C{(status, reason)} to end the call with.
        """
        if decision.get("trunk") is None:
            contacts = contactsFor(self.bindings, decision.get("to") or call.target)
            if contacts:
                return routeToContact(self, call, contacts)
        trunk = self.findTrunk(decision.get("trunk"))
        if trunk is None:
            return 404, f"unknown trunk {decision.get('trunk')!r}"
        try:
            if "max_ring_seconds" in decision:
                call.maxRingSeconds = _seconds(decision["max_ring_seconds"], "max_ring_seconds")
            if "max_answer_seconds" in decision:
                call.maxAnswerSeconds = _seconds(decision["max_answer_seconds"],
                                                 "max_answer_seconds", allowNone=True)
        except ValueError as e:
            return 500, f"bad decision from the application: {e}"
        target = decision.get("to") or call.target
        try:
            dial = self.dialPlan.check(call.dialIdentity, call.dialGrants, trunk, target)
            caller = callerIdentity(trunk, call.dialIdentity, call.dialGrants,
                                    call.authenticated, decision.get("caller_id"))
        except DialPlanRefused as e:
            if e.event is not None:
                securityEvent(e.event, call.originator, call=call.id,
                              identity=call.dialIdentity, trunk=trunk.name, to=target,
                              code=e.code, reason=e.reason)
            return e.code, f"cannot call {str(target)[:80]!r}: {e.reason}"
        if trunk.offerless and self.mediaName != "passthrough" and not \
                IOfferlessOutboundMediaSession.providedBy(call.media):
            return 501, (f"trunk {trunk.name!r} is offerless: that needs --media passthrough"
                         f" or bridge (not {self.mediaName})")
        if not call.canPlace():
            return 501, f"outbound calls are not implemented with --media {self.mediaName}"
        call.trunk = trunk
        call.routeTarget = target
        call.dialDecision = dial
        call.routeFrom = caller
        return self.takeOffer(call, call.makeOffer, trunk.codecs)

    def takeOffer(self, call, makeOffer, *args):
        """
        Have the media session make the INVITE's offer, C{makeOffer(*args)}
        (C{bytes}, or a L{Deferred} firing with them), and go on with it.

        @return: L{PENDING} while the offer is not made yet (the call gets
            it as C{"sipOffer"} by L{Call.whenDone}), else what
            L{offerReady} or L{offerFailed} returns.
        """
        try:
            d = defer.maybeDeferred(makeOffer, *args)
        except Exception:
            d = defer.fail(Failure())
        fired, result = resultNow(d)
        if not fired:
            call.whenDone(d, "sipOffer")
            return PENDING
        if isinstance(result, Failure):
            return self.offerFailed(call, result)
        return self.offerReady(call, result)

    def offerFailed(self, call, failure):
        """@return: C{(status, reason)} for a failed L{IOutboundMediaSession.sipOffer}."""
        if failure.check(MediaError):
            return 488, failure.getErrorMessage()
        log.failure("call {call_id}: making the offer failed", failure, call_id=call.id)
        return 500, f"making the offer failed: {failure.getErrorMessage()}"

    def offerReady(self, call, offer):
        """
        The media session made the INVITE's offer (C{bytes}): make the SIP
        leg of C{call} through the trunk L{route} chose.

        @return: C{None} on success, else C{(status, reason)}.
        """
        try:
            leg = self.makeLeg(call, offer)
        except MediaError as e:
            return 488, str(e)
        except ValueError as e:
            return 484, f"cannot call {call.routeTarget!r}: {e}"
        call.leg = leg
        leg.setListener(call)
        return None

    def redirectTarget(self, call, uri):
        """
        A 3xx of C{call}'s INVITE names C{uri}: it is followed only if it
        passes the dial plan (else one security event).

        @return: the Request-URI to use (L{SIPURI}), or C{None}.
        """
        try:
            return self.dialPlan.check(call.dialIdentity, call.dialGrants, call.trunk,
                                       str(uri)).requestURI
        except DialPlanRefused as e:
            securityEvent("dialplan_refused", call.originator, call=call.id,
                          identity=call.dialIdentity, trunk=call.trunk.name,
                          redirect=str(uri), reason=e.reason)
            return None

    def makeLeg(self, call, offer=None):
        """
        Build the (unstarted) SIP leg for C{call} as L{route} decided
        (C{call.trunk}, C{call.dialDecision}, C{call.routeFrom}).

        @param offer: the INVITE's SDP (C{bytes}); C{None}: the client's
            offer with the trunk's codecs only.
        @raise ValueError: unusable trunk settings.
        @raise MediaError: the offer keeps no allowed codec.
        """
        from linkrtc.sip.uri import SIPURI, NameAddr

        if call.contact is not None:
            return makeContactLeg(self, call, offer)
        trunk = call.trunk
        requestURI = call.dialDecision.requestURI
        proxyURI = trunk.proxyURI()
        proxy = trunk.destination()
        routes = ()
        if getattr(requestURI, "host", None) != proxyURI.host or requestURI.port != proxyURI.port:
            route = proxyURI.copy()
            route.params["lr"] = None
            routes = (f"<{route}>",)
        host, port = trunk.domainHostPort()
        user, display = call.routeFrom
        fromAddr = NameAddr(SIPURI("sip", user=user, host=host, port=port), display=display)
        if offer is None:
            offer = filterCodecs(call.clientSdp, trunk.codecs).encode("utf-8")
        call.sipFrom = str(fromAddr.uri)
        call.sipTo = str(requestURI)
        ackBody = None
        if trunk.offerless:
            ackBody = offer
            if IOfferlessOutboundMediaSession.providedBy(call.media):
                # Bridge: our offer was only prepared; the 2xx's offer is
                # answered by the media session, for the ACK (RFC 3261 §13.2.1).
                ackBody = ackAnswerer(call.media)
        return self.legFactory(
            userAgent=self.userAgent, clock=self.clock, requestURI=requestURI,
            fromAddr=fromAddr, proxy=proxy, routes=routes,
            body=None if trunk.offerless else offer,
            ackBody=ackBody,
            credentials=self.credentials.get(trunk.name),
            redirectCheck=lambda uri: self.redirectTarget(call, uri),
            reliableProvisionals=trunk.reliableProvisionals,
        )

    def placeCall(self, connection, message, services, onRelease=None):
        """
        Make the L{OutboundCall} for a client's C{call} message (not
        started); it counts against its identity's limits until released.

        @return: the call.
        """
        identity = identityOf(connection)[0]
        release = self.limiter.record(identity)

        def released(call):
            release()
            if onRelease is not None:
                onRelease(call)

        return OutboundCall(connection, message, self.machine, services, self, released)
