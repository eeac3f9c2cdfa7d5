# -*- test-case-name: linkrtc.app.test.test_dial -*-
"""
The calls an application dials (seed 001 C{sys.call.construct}).

L{ApplicationDialer.construct} makes one of two calls, each a resource
(C{call_dir} C{outbound}) that starts in the seed's C{Initiated} (the
engine's dialling states) and is C{Idle} once answered:

  - C{to_uri} names a registered browser client (C{client:NAME}, or a
    URI whose user is a connected client's name and whose host is no
    trunk's): a L{ClientLegCall} rings the client through the seed 000
    flow (C{incoming}, C{ringing}, C{accept}, the states C{calling},
    C{ringing}, C{answering} of the incoming topology). Its media is a
    bridge session with no SIP peer: the browser's WebRTC is joined, over
    loopback RTP, to a second bridge session answered by LinkRTC itself
    (L{IApplicationMediaSession.answerLocally}), whose L{ICallAudio} is
    the browser leg's audio. So every CTI action, C{connect_start} with a
    SIP call (the mixer's L{linkrtc.media.actions.mixer.Connection},
    relaying packets when both legs use the same codec) and C{conf_enter}
    work on a browser leg as on a SIP one.
  - otherwise an L{ApplicationCall} goes out through a trunk
    (L{linkrtc.call.outbound.OutboundDialer}): the dial plan applies to
    the number as to any client's call, the application is trusted for
    the caller ID (C{from_uri}'s user when it is a number); the offer is
    LinkRTC's own RTP (L{IApplicationMediaSession.offerLocally}), the
    answer goes to L{IApplicationMediaSession.offerAnswered}.

C{max_ring_seconds} bounds the ringing (trunk: restarted by the far end's
180/183, as the seed says; client: from the C{incoming}),
C{max_answer_seconds} the talk (L{linkrtc.app.control.Resource}).
"""

import os
import re
import tempfile
import uuid
import wave

import numpy
from twisted.internet import defer
from twisted.logger import Logger
from twisted.python.failure import Failure
from zope.interface import implementer

from linkrtc.app.errors import FAILED, ApiError, mediaUnavailable
from linkrtc.call.call import CallServices
from linkrtc.call.dialplan import DialPlanRefused
from linkrtc.call.events import ApplicationDecisionEvent
from linkrtc.call.outboundcall import OutboundCall
from linkrtc.call.registry import buildApplicationDialMachine
from linkrtc.call.stubleg import StubServerLeg
from linkrtc.call.transfer import DirectClientCall, StandInAck, StandInRequest, loopbackSdp
from linkrtc.error import MediaError
from linkrtc.interfaces import IApplicationMediaSession, IMediaListener

log = Logger()

#: The scheme of a C{to_uri} naming a browser client.
CLIENT_SCHEME = "client:"

#: Codecs the browser leg's loopback hop accepts (the browser session offers them).
ANCHOR_CODECS = ("PCMU", "PCMA", "G722")


_ringback = {}


def ringbackFile(directory=None):
    """
    LinkRTC's ringback for a parent call while its child is dialled with
    no C{ring_play_file}: 440 + 480 Hz, 2 s on, 4 s off (ITU-T E.180's
    North American ringing tone), one cycle as an 8 kHz 16-bit WAV made once
    per process.

    @return: the file's path, C{str}.
    """
    path = _ringback.get(directory)
    if path is not None and os.path.exists(path):
        return path
    rate = 8000
    t = numpy.arange(2 * rate) / rate
    tone = 4000 * (numpy.sin(2 * numpy.pi * 440 * t) + numpy.sin(2 * numpy.pi * 480 * t))
    samples = numpy.concatenate([tone, numpy.zeros(4 * rate)]).astype(numpy.int16)
    fd, path = tempfile.mkstemp(prefix="linkrtc-ringback-", suffix=".wav", dir=directory)
    os.close(fd)
    with wave.open(path, "wb") as w:
        w.setnchannels(1)
        w.setsampwidth(2)
        w.setframerate(rate)
        w.writeframes(samples.tobytes())
    _ringback[directory] = path
    return path


def uriUser(uri):
    """@return: the user part of a C{sip:}/C{sips:}/C{tel:} URI or a bare C{user@host}, or C{None}."""
    if not isinstance(uri, str):
        return None
    rest = uri.split(":", 1)[1] if re.match(r"^(sips?|tel):", uri, re.I) else uri
    user = rest.split("@", 1)[0] if "@" in rest or uri.lower().startswith("tel:") else None
    if user is None:
        return None
    return user.split(";", 1)[0] or None


def uriHost(uri):
    """@return: the host of a SIP URI (lower case, no port), or C{None}."""
    if not isinstance(uri, str) or "@" not in uri:
        return None
    host = uri.split("@", 1)[1]
    host = re.split(r"[;?>]", host, 1)[0]
    if host.startswith("["):
        return host[1:].split("]", 1)[0].lower()
    return host.rsplit(":", 1)[0].lower() if host.count(":") == 1 else host.lower()


# -- calls through a trunk ------------------------------------------------------------


class ApplicationCall(OutboundCall):
    """
    A call an application dials through a trunk (seed 001 C{construct}):
    an L{OutboundCall} with no client. Its decision is the application's
    (no C{outgoing} question), its media L{IApplicationMediaSession}'s own
    RTP (no WebRTC peer).

    @ivar decision: the C{route} decision: C{trunk}, C{to}, C{caller_id}.
    @ivar fromParam: seed 001 C{from_uri}, C{str} or C{None}.
    """

    def __init__(self, decision, machine, services, dialer, onRelease=None, fromURI=None,
                 maxRingSeconds=None):
        super().__init__(None, {"to": decision.get("to")}, machine, services, dialer,
                         onRelease=onRelease, callId="d" + uuid.uuid4().hex)
        self.connections = []
        self.offered = []
        self.answerer = None
        self.decision = dict(decision)
        self.fromParam = fromURI
        if maxRingSeconds:
            self.maxRingSeconds = float(maxRingSeconds)
        # max_answer_seconds is the resource's (linkrtc.app.control.Resource).
        self.maxAnswerSeconds = None

    def __repr__(self):
        return f"<ApplicationCall {self.id} {self.state.name if self.state else None}>"

    @property
    def fromURI(self):
        return self.sipFrom or self.fromParam

    def askApplication(self):
        """The application decided already (C{construct}): route."""
        self.dispatch(ApplicationDecisionEvent(dict(self.decision)))

    def canPlace(self):
        return IApplicationMediaSession.providedBy(self.media)

    def makeOffer(self, codecs):
        srtp = getattr(self.trunk, "srtp", "off")
        if srtp != "off":
            return self.media.offerLocally(codecs, srtp=srtp)
        return self.media.offerLocally(codecs)

    def mediaAnswer(self, body):
        return self.media.offerAnswered(body)

    def takeAnswer(self, result):
        if isinstance(result, Failure):
            log.warn("call {call_id}: SIP answer not usable: {why}", call_id=self.id,
                     why=result.getErrorMessage())
            return self.answerSdp is not None
        self.answerSdp = "local"
        return True

    def sendAnswer(self, sdp):
        return False


# -- calls to a browser client -----------------------------------------------------------


class LoopbackLeg(StubServerLeg):
    """
    The "SIP leg" of a L{ClientLegCall}: the 200 OK's SDP (the browser
    session's RTP offer) is answered by the anchor session
    (L{IApplicationMediaSession.answerLocally}) over loopback, and that
    answer comes back as the ACK (RFC 3261 §13.2.1's offerless exchange).

    @param anchor: the anchor L{IApplicationMediaSession}.
    @param address: the address both sessions' RTP reach each other on.
    """

    def __init__(self, request, anchor, address):
        StubServerLeg.__init__(self, request)
        self.anchor = anchor
        self.address = address

    def sendFinal(self, status, reason=None, body=None, contentType=None, headers=()):
        if not 200 <= status < 300:
            return
        d = defer.maybeDeferred(self.anchor.answerLocally, loopbackSdp(body, self.address),
                                ANCHOR_CODECS)

        def answered(answer):
            self.listener.legAcknowledged(StandInAck(loopbackSdp(answer, self.address)))

        def failed(f):
            log.warn("browser leg: the loopback answer failed: {why}", why=f.getErrorMessage())
            self.listener.legTerminated(f.getErrorMessage())

        d.addCallbacks(answered, failed)
        d.addErrback(lambda f: log.failure("browser leg: ACK", f))

    def noDialog(self, method):
        return MediaError(f"a browser leg has no SIP dialog for {method}")


@implementer(IMediaListener)
class _AnchorListener:
    """The anchor session's DTMF and media timeout go to the browser leg's call."""

    def __init__(self):
        self.call = None

    def mediaDigits(self, digits):
        if self.call is not None:
            self.call.mediaDigits(digits)

    def mediaTimeout(self):
        if self.call is not None:
            self.call.mediaTimeout()


@implementer(IApplicationMediaSession)
class ClientLegMedia:
    """
    The media of a L{ClientLegCall}: the browser's bridge session (WebRTC
    on one side, loopback RTP on the other) and the anchor session that
    answers that RTP. L{IMediaSession} goes to the browser session,
    L{audio} is the anchor's.
    """

    def __init__(self, browser, anchor):
        self.browser = browser
        self.anchor = anchor

    def clientOffer(self, sipOffer):
        return self.browser.clientOffer(sipOffer)

    def sipAnswer(self, clientSdp):
        return self.browser.sipAnswer(clientSdp)

    def sipAckBody(self, sdp):
        return self.browser.sipAckBody(sdp)

    def sipReoffer(self, sdp):
        return defer.fail(MediaError("a browser leg takes no re-INVITE"))

    def sendDigits(self, digits):
        self.anchor.sendDigits(digits)

    def hold(self, onHold):
        return defer.succeed(None)

    def audio(self):
        return self.anchor.audio()

    def answerLocally(self, sipOffer, codecs=("PCMU", "PCMA")):
        return defer.fail(MediaError("a browser leg is answered by its client"))

    def offerLocally(self, codecs=None, srtp="off"):
        return defer.fail(MediaError("a browser leg is offered to its client"))

    def offerAnswered(self, sipAnswer):
        return defer.fail(MediaError("a browser leg is offered to its client"))

    def stats(self):
        figures = dict(self.browser.stats())
        figures["anchor"] = self.anchor.stats()
        return figures

    def close(self):
        return defer.DeferredList([defer.maybeDeferred(self.browser.close),
                                   defer.maybeDeferred(self.anchor.close)], consumeErrors=True)


class ClientLegCall(DirectClientCall):
    """
    A browser client rung by an application (seed 001 C{construct} to a
    client): an incoming-topology call with no SIP side (L{LoopbackLeg}),
    routed to C{client} at once; answered, it is C{Idle}.
    """

    def __init__(self, client, fromURI, toURI, machine, services, onRelease=None,
                 loopbackAddress="127.0.0.1"):
        self.clientTarget = client
        callId = "b" + uuid.uuid4().hex
        anchorListener = _AnchorListener()
        anchor = services.mediaFactory.newSession(callId + "-anchor", anchorListener)
        leg = LoopbackLeg(StandInRequest(fromURI, toURI), anchor, loopbackAddress)
        super().__init__(leg, machine, services, onRelease=onRelease, callId=callId)
        leg.setListener(self)
        anchorListener.call = self
        self.media = ClientLegMedia(self.media, anchor)


# -- the dialer ---------------------------------------------------------------------------


class ApplicationDialer:
    """
    Makes the calls of C{construct} (L{linkrtc.app.control.CallControl}'s
    C{dialer}).

    @param manager: the L{linkrtc.call.manager.CallManager} (its machine,
        services and live calls: client messages reach a browser leg
        through it), or a L{linkrtc.reference.Reference} to it (the
        service builds the dialer before the engine, which needs the call
        control that holds the dialer).
    @param outbound: the L{linkrtc.call.outbound.OutboundDialer} (its
        trunks, dial plan and SIP user agent), or C{None} (browser clients
        only).
    @param machine: the state machine of trunk calls (default
        L{linkrtc.call.registry.buildApplicationDialMachine}).
    @param loopbackAddress: the address the browser leg's two RTP
        sessions use between them (the RTP interface when one is set).
    """

    def __init__(self, manager, outbound=None, machine=None, loopbackAddress="127.0.0.1"):
        self.manager = manager
        self.outbound = outbound
        self.machine = machine if machine is not None else buildApplicationDialMachine()
        if loopbackAddress in (None, "", "0.0.0.0"):
            loopbackAddress = "127.0.0.1"
        elif loopbackAddress == "::":
            loopbackAddress = "::1"
        self.loopbackAddress = loopbackAddress

    def clientNamed(self, toURI):
        """
        @return: the browser client C{to_uri} names (C{client:NAME}, or a
            URI whose user is a connected client and whose host is no
            trunk's), or C{None}.
        """
        if toURI.lower().startswith(CLIENT_SCHEME):
            return toURI[len(CLIENT_SCHEME):] or None
        user = uriUser(toURI)
        if not user:
            return None
        host = uriHost(toURI)
        if host is not None and self.outbound is not None:
            for trunk in self.outbound.trunks:
                if self.outbound.dialPlan._trunkHost(trunk, _HostOnly(host)) \
                        or host == trunk.name.lower():
                    return None
        directory = self.manager.services.directory
        if list(directory.connectionsFor(user) or ()):
            return user
        return None

    def construct(self, control, params, parent):
        """
        Make (not start) the call of C{construct}, adopted by C{control}.

        @return: the call (C{call.api} its resource).
        @raise ApiError: -32602 for a bad C{to_uri}, -32004 for a client
            not connected, no trunk, or a number the dial plan refuses
            (its status in C{data}), -32003 in a media mode that cannot.
        """
        toURI = params["to_uri"]
        if not toURI:
            raise ApiError(-32602, "invalid params: to_uri: empty", {"param": "to_uri"})
        if getattr(self.manager.services.mediaFactory, "name", None) == "passthrough":
            raise mediaUnavailable("media actions unavailable: the call's media (passthrough) "
                                   "does not cross LinkRTC; construct needs --media bridge")
        client = self.clientNamed(toURI)
        if client is not None:
            call = self._clientCall(client, params)
        else:
            call = self._trunkCall(toURI, params)
        control.adoptOutgoing(call, params, parent=parent)
        self.manager.calls[call.id] = call
        return call

    def _clientCall(self, client, params):
        services = self.manager.services
        if not list(services.directory.connectionsFor(client) or ()):
            raise ApiError(FAILED, f"client {client!r} is not connected", {"status": 480})
        if params.get("max_ring_seconds"):
            services = _withRingTimeout(services, params["max_ring_seconds"])
        fromURI = params.get("from_uri") or "sip:linkrtc@invalid"
        return ClientLegCall(client, fromURI, params["to_uri"], self.manager.machine, services,
                             onRelease=self.manager._released,
                             loopbackAddress=self.loopbackAddress)

    def _trunkCall(self, toURI, params):
        outbound = self.outbound
        if outbound is None or not outbound.trunks:
            raise ApiError(FAILED, "outbound calls are not configured: no trunk, and to_uri "
                           "names no connected client", {"status": 503})
        trunk, target = self.trunkFor(toURI)
        try:
            outbound.dialPlan.check(None, {}, trunk, target)
        except DialPlanRefused as e:
            raise ApiError(FAILED, f"cannot call {str(toURI)[:80]!r}: {e.reason}",
                           {"status": e.code}) from None
        callerId = uriUser(params.get("from_uri"))
        if callerId is not None and not re.match(r"^\+?[0-9*#]{1,32}$", callerId):
            callerId = None
        decision = {"action": "route", "trunk": trunk.name, "to": target,
                    "caller_id": callerId}
        return ApplicationCall(decision, self.machine, self.manager.services, outbound,
                               onRelease=self.manager._released,
                               fromURI=params.get("from_uri"),
                               maxRingSeconds=params.get("max_ring_seconds"))

    def trunkFor(self, toURI):
        """
        @return: C{(trunk, target)}: the trunk whose domain, proxy or name
            is C{toURI}'s host (the host then goes: the target is the
            number), else the default trunk and C{toURI} as it is.
        """
        outbound = self.outbound
        host = uriHost(toURI)
        if host is not None:
            for trunk in outbound.trunks:
                if host == trunk.name.lower():
                    return trunk, uriUser(toURI) or toURI
            for trunk in outbound.trunks:
                if outbound.dialPlan._trunkHost(trunk, _HostOnly(host)):
                    return trunk, toURI
        return outbound.trunks[0], toURI


class _HostOnly:
    port = None

    def __init__(self, host):
        self.host = host


def _withRingTimeout(services, seconds):
    """@return: a copy of C{services} whose C{ringTimeout} is C{seconds}."""
    return CallServices(services.clock, services.directory, services.application,
                        services.mediaFactory, services.cdrWriter, ringTimeout=float(seconds),
                        callControl=services.callControl)


__all__ = ["ApplicationDialer", "ApplicationCall", "ClientLegCall", "ClientLegMedia",
           "LoopbackLeg", "ringbackFile"]
