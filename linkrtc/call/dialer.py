# -*- test-case-name: linkrtc.call.test.test_outbound -*-
"""
The dialer of outgoing calls, L{OutboundDialer}: turns a client's C{call}
message into an L{linkrtc.call.outboundcall.OutboundCall} and, once the
application routed it, into an INVITE through a trunk (or to a registered
SIP user's contacts, all ringing at once), within the dial plan. See
L{linkrtc.call.outbound}.
"""

import math

from twisted.internet import defer
from twisted.logger import Logger
from twisted.python.failure import Failure

from linkrtc.call.codecfilter import filterCodecs
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
from linkrtc.call.outboundcall import OutboundCall, resultNow
from linkrtc.call.outboundmachine import buildOutboundMachine
from linkrtc.error import MediaError
from linkrtc.interfaces import IOfferlessOutboundMediaSession
from linkrtc.sip.outbound import InviteClientLeg
from linkrtc.sip.uri import SIPURI, NameAddr
from linkrtc.trunks import trunkCredentials

log = Logger()

#: What L{OutboundDialer.route} returns while the media session makes the offer.
PENDING = "pending"

#: The media modes that can place calls.
OUTBOUND_MEDIA = ("passthrough", "bridge")


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
            a C{to} naming a registered SIP user calls its contacts
            (L{linkrtc.call.contacts}); C{None}: trunks only.
        """
        self.userAgent = userAgent
        self.trunks = tuple(trunks)
        self.clock = clock
        self.mediaName = mediaName
        self.maxRingSeconds = float(maxRingSeconds)
        self.maxAnswerSeconds = None if not maxAnswerSeconds else float(maxAnswerSeconds)
        self.machine = machine if machine is not None else buildOutboundMachine()
        self.legFactory = legFactory if legFactory is not None else InviteClientLeg
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
