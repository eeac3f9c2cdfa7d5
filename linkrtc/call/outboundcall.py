# -*- test-case-name: linkrtc.call.test.test_outbound -*-
"""
The call object of an outgoing call (client -> SIP trunk),
L{OutboundCall}: what the outbound operators act on. It is made by the
L{linkrtc.call.dialer.OutboundDialer}; see L{linkrtc.call.outbound}.
"""

import uuid

from twisted.internet import defer
from twisted.logger import Logger
from twisted.python.failure import Failure
from zope.interface import implementer

from linkrtc.call.call import Call
from linkrtc.call.dialplan import identityOf
from linkrtc.call.outboundmachine import OutgoingCallEvent, SIPFailureEvent, SIPResponseEvent
from linkrtc.interfaces import IOutboundMediaSession, ISIPClientLegListener

log = Logger()


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
    @ivar contact: for a call to a registered SIP user, its preferred
        contact (L{linkrtc.sip.bindings.Binding}), else C{None}.
    @ivar contacts: the contacts that ring (at most C{max-forks}, preferred
        first; L{linkrtc.call.contacts}), else empty.
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
        self.contacts = ()
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
        self._decisionLater(d)

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
        # The callee's device: a registered phone's contact (the one that
        # answered when several rang, linkrtc.call.contactfork), else none known.
        contact = getattr(self.leg, "winningContact", None) or getattr(self, "contact", None)
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
        d = defer.maybeDeferred(self.mediaAnswer, body)
        fired, result = resultNow(d)
        if not fired:
            self.whenDone(d, "clientAnswer")
        return fired, result

    def mediaAnswer(self, body):
        """
        @return: what the media session makes of the SIP side's answer SDP
            (C{bytes}): L{IOutboundMediaSession.clientAnswer}'s result.
        """
        return self.media.clientAnswer(body)

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
