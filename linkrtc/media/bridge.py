# -*- test-case-name: linkrtc.media.test.test_bridge -*-
"""
C{--media bridge}: LinkRTC terminates the SIP side's plain RTP (or
SDES-SRTP, L{linkrtc.media.sdesside}) and the browser's ICE/DTLS-SRTP,
and joins them.

For each call a L{BridgeSession} owns one RTP/RTCP port pair (from
C{rtpPorts}), one aiortc C{RTCPeerConnection} with one audio transceiver,
and either a L{PacketRelay} (PCMU on both legs: no decoding) or a
L{Transcoder} (different codecs). The call engine sees only
L{IMediaFactory} / L{IOutboundMediaSession}.

Incoming calls: C{clientOffer} (SIP offer -> WebRTC offer), C{sipAnswer}.
Outgoing calls: C{sipOffer} (aiortc answers the client's offer; LinkRTC
makes its own RTP offer for the INVITE), C{clientAnswer} (the SIP answer
starts the media; the client gets aiortc's answer).
Either: the client's hold is a re-INVITE (C{reoffer}, C{reofferAnswered},
L{IReofferMediaSession}).
Application-answered calls (seed 001 C{answer}): C{answerLocally} answers
the SIP offer with LinkRTC's own RTP and no browser.
Seed 001's actions (play, record, DTMF, connect, conference) reach the SIP
leg through C{audio()}, an L{ICallAudio} (L{linkrtc.media.actions}), and
the browser leg through C{browserAudio()}; a call with a browser leg only
starts with C{browserOffer}, C{browserAnswer} (L{linkrtc.media.browserside}).
"""

import random
import socket

from twisted.internet import defer
from twisted.logger import Logger
from twisted.python.failure import Failure
from zope.interface import implementer

from linkrtc.error import MediaError
from linkrtc.interfaces import (
    IApplicationMediaSession,
    IEarlyMediaSession,
    IMediaFactory,
    IOfferlessOutboundMediaSession,
    IPhoneMediaSession,
    IReofferMediaSession,
    IResumableMediaSession,
)
from linkrtc.media import sdp as sdpmod
from linkrtc.media.actions import RTPAudio
from linkrtc.media.browserside import BrowserSide
from linkrtc.media.earlymedia import EarlyMedia
from linkrtc.media.outboundside import OutboundSide, mediaError
from linkrtc.media.phoneside import PhoneSide
from linkrtc.media.reattach import ClientReattach
from linkrtc.media.relay import PacketRelay, WebRTCTap, checkSeam
from linkrtc.media.ringback import DEFAULT_TONE, tonePlan
from linkrtc.media.rtp import PortAllocator
from linkrtc.media.sdes import TrunkPolicy
from linkrtc.media.sdesside import SDESSide
from linkrtc.media.transcode import FeedTrack, Transcoder
from linkrtc.media.videoside import VideoSide
from linkrtc.media.webrtc import WEBRTC_CLOCK_RATES, WebRTCLeg, browserCodecOrder, loopOf

log = Logger()

_WILDCARDS = (None, "", "0.0.0.0", "::")

#: Our direction once we hold, from the one before (RFC 3264 §8.4).
_HOLD_DIRECTION = {
    "sendrecv": "sendonly",
    "sendonly": "sendonly",
    "recvonly": "inactive",
    "inactive": "inactive",
}


def localAddressFor(remote, family=socket.AF_INET):
    """
    @return: the local address the kernel would send from towards
        C{remote} (a UDP connect sends nothing), or the loopback address
        if there is no route.
    """
    target = remote or ("192.0.2.1" if family == socket.AF_INET else "2001:db8::1")
    s = socket.socket(family, socket.SOCK_DGRAM)
    try:
        s.connect((target, 9))
        return s.getsockname()[0]
    except OSError:
        return "127.0.0.1" if family == socket.AF_INET else "::1"
    finally:
        s.close()


@implementer(IMediaFactory)
class BridgeMediaFactory:
    """
    Makes bridged media sessions.

    @param reactor: the running reactor; it must be the asyncio reactor
        (aiortc runs on its loop). Also the clock for timers.
    @param rtpPorts: C{(low, high)} inclusive UDP port range for the SIP
        side's RTP (even port) and RTCP (port + 1).
    @param publicAddress: IP literal written into the SIP side's SDP (o=, c=)
        instead of the local address, for LinkRTC behind 1:1 NAT.
    @param iceServers: STUN/TURN servers for the WebRTC leg: URLs
        (C{"stun:stun.example.net:3478"}) or C{dict}s with C{urls},
        C{username}, C{credential}. Empty: host candidates only (aiortc's
        Google STUN default is never used).
    @param iceAddresses: host addresses ICE gathers on (e.g.
        C{["127.0.0.1"]}); C{None} or empty: aioice's choice (every
        interface but loopback).
    @param mediaTimeout: seconds without RTP from the SIP side, once the
        call is answered, before L{IMediaListener.mediaTimeout}; 0 disables.
    @param rtpInterface: the address RTP sockets bind to; C{None} binds all
        addresses of the SIP offer's family.
    @param earlyMedia: C{True} (C{--early-media}, the default): incoming
        calls get a 183 Session Progress with our SDP answer and hear a
        ringback tone until the client answers
        (L{linkrtc.media.earlymedia}); C{False}: a 180 only.
    @param ringbackTone: the ringback's country
        (L{linkrtc.media.ringback.TONE_PLANS}: C{"us"}, C{"uk"}, C{"de"},
        C{"fr"}, ...), or C{None}/C{""} for early media in silence.
    @param srtpPolicy: the trunks' C{srtp} settings for incoming calls
        (L{linkrtc.media.sdes.TrunkPolicy}); C{None}: no trunk requires SRTP.
    @raise ValueError: for an unknown C{ringbackTone}.
    """

    name = "bridge"

    def __init__(self, reactor, rtpPorts=(20000, 29999), publicAddress=None, iceServers=(),
                 iceAddresses=None, mediaTimeout=30.0, rtpInterface=None, earlyMedia=True,
                 ringbackTone=DEFAULT_TONE, srtpPolicy=None):
        self.reactor = reactor
        self.srtpPolicy = srtpPolicy if srtpPolicy is not None else TrunkPolicy()
        self.allocator = PortAllocator(reactor, *rtpPorts)
        self.publicAddress = publicAddress
        self.iceServers = tuple(iceServers or ())
        self.iceAddresses = tuple(iceAddresses or ())
        self.mediaTimeout = mediaTimeout
        self.rtpInterface = rtpInterface
        self.earlyMedia = bool(earlyMedia)
        self.ringbackTone = tonePlan(ringbackTone) if ringbackTone else None
        self.sessions = set()
        self.relayProblem = checkSeam()
        if self.relayProblem:
            log.warn("packet relay disabled, transcoding everything: {p}", p=self.relayProblem)
        self._trigger = None

    def newSession(self, callId, listener):
        session = BridgeSession(self, callId, listener)
        self.sessions.add(session)
        if self._trigger is None:
            self._trigger = self.reactor.addSystemEventTrigger(
                "before", "shutdown", self._shutdown)
        return session

    def _forget(self, session):
        self.sessions.discard(session)
        if not self.sessions and self._trigger is not None:
            self.reactor.removeSystemEventTrigger(self._trigger)
            self._trigger = None

    def _shutdown(self):
        self._trigger = None
        return self.closeAll()

    def closeAll(self):
        """Close every session (open peer connections would block shutdown). @return: L{Deferred}."""
        return defer.DeferredList([s.close() for s in list(self.sessions)], consumeErrors=True)


@implementer(IReofferMediaSession, IResumableMediaSession, IApplicationMediaSession,
             IEarlyMediaSession, IOfferlessOutboundMediaSession, IPhoneMediaSession)
class BridgeSession(BrowserSide, ClientReattach, OutboundSide, EarlyMedia, SDESSide,
                    PhoneSide, VideoSide):
    """
    One call's bridged media. Created by L{BridgeMediaFactory.newSession}.
    A client that comes back after a reload gets a new WebRTC leg
    (L{ClientReattach}).

    @ivar mode: C{None}, C{"relay"}, C{"transcode"}, C{"local"} (answered
        by L{answerLocally}: SIP RTP only, no browser) or C{"browser"}
        (L{browserOffer}: a browser leg only, no SIP) or C{"sip"} (a SIP
        phone answered: RTP relayed between two SIP legs,
        L{linkrtc.media.phoneside}).
    """

    def __init__(self, factory, callId, listener):
        self.factory = factory
        self.callId = callId
        self.listener = listener
        self._reactor = factory.reactor
        self._loop = None
        self.mode = None
        self.closed = False
        self._sessionId = random.getrandbits(31)
        self._version = 0
        self._offer = None
        self._audioIndex = 0
        self._sipCodec = None
        self._sipEvent = None
        self._direction = "sendrecv"
        self._offerless = False
        self._ourOffer = None
        self.rtp = None
        self._ports = None
        self._rtpPort = None
        self._family = socket.AF_INET
        self.leg = None
        self.track = None
        self.tap = None
        self._pipe = None
        self._webrtcCodec = None
        self._closing = None
        self._answered = None
        self._outbound = False
        self._webrtcAnswer = None
        self._sipAnswered = None
        self._clientHeld = False
        self._farSending = True
        self._sipHeld = False
        self._reoffered = None
        self._audio = None
        self._sipMuted = False
        self._browserAudio = None
        self._browserMuted = False
        self._browserOnly = False
        self._earlySdp = None
        self._ringback = None

    # -- SIP side helpers -------------------------------------------------

    def _newRTP(self, family):
        """The SIP side's L{RTPSession}, not listening yet (no port held)."""
        self._family = family
        self.rtp = self._makeRTP(onDigit=self._digit, onTimeout=self._timeout,
                                 mediaTimeout=self.factory.mediaTimeout)

    def _bind(self, family=None):
        """
        Take an RTP/RTCP port pair for L{rtp} (made here unless it exists).

        @raise MediaError: when the port range is exhausted (logged).
        """
        if self._ports is not None:
            return
        if self.rtp is None:
            self._newRTP(family)
        interface = self.factory.rtpInterface
        family = self._family
        if interface in _WILDCARDS:
            interface = "::" if family == socket.AF_INET6 else ""
        self._ports = self.factory.allocator.listen(self.rtp, self._makeRTCP(),
                                                    interface=interface)
        self._rtpPort = self._ports[0].getHost().port

    def _ourAddress(self):
        if self.factory.publicAddress:
            return self.factory.publicAddress
        if self.factory.rtpInterface not in _WILDCARDS:
            return self.factory.rtpInterface
        remote = self.rtp.remote[0] if self.rtp and self.rtp.remote else None
        return localAddressFor(remote, self._family)

    def _applyOffer(self, desc):
        """Take a SIP offer (initial or re-INVITE): codec, address, direction, SRTP keys."""
        index, m = self._offeredStream(desc)
        codec, event = sdpmod.chooseCodec(m)
        self._offer = desc
        self._audioIndex = index
        return m, codec, event

    def _takeSipOffer(self, sipOffer):
        """
        The SIP side from the caller's offer (C{bytes}): codec, address,
        direction, and its L{RTPSession}, not listening yet.

        @return: the chosen audio L{linkrtc.media.sdp.Codec}.
        @raise MediaError: for an unusable offer.
        """
        m, codec, event = self._applyOffer(sdpmod.parseSDP(sipOffer))
        self._newRTP(socket.AF_INET6 if m.address[0] == "IP6" else socket.AF_INET)
        self._sipCodec, self._sipEvent = codec, event
        self.rtp.setCodecs(codec, event)
        self._applyRemote(m)
        return codec

    def _applyRemote(self, m):
        host = m.address[1]
        held = host in ("0.0.0.0", "::")
        self.rtp.setRemote(None if held else (host, m.port),
                           peerSends=m.direction in ("sendrecv", "sendonly"))
        self._farSending = not held and m.direction in ("sendrecv", "recvonly")
        self.rtp.sending = self._farSending and not self._clientHeld
        self._direction = sdpmod.answerDirection(m.direction)

    def _sipAnswerSdp(self):
        direction = self._direction
        if self._sipHeld:
            # Our hold (a re-INVITE of ours) lasts through their re-offers.
            direction = _HOLD_DIRECTION[direction]
        return self._ourSdp(direction)

    def _ourSdp(self, direction):
        """The SIP side's SDP: negotiated codec, our port, the last m= lines, next o= version."""
        codecs = [self._sipCodec] + ([self._sipEvent] if self._sipEvent else [])
        rejected = [m for i, m in enumerate(self._offer.media) if i != self._audioIndex]
        body = sdpmod.buildSDP(self._ourAddress(), self._rtpPort, codecs, self._sessionId,
                               self._version, direction, rejected=rejected,
                               audioIndex=self._audioIndex,
                               accepted=self._videoSections(direction), **self._sdpSecurity())
        self._version += 1
        return body

    def _digit(self, digit):
        try:
            self.listener.mediaDigits(digit)
        except Exception:
            log.failure("listener.mediaDigits failed")
        if self._audio is not None:
            self._audio.keyPressed(digit)

    def _timeout(self):
        log.info("call {callId}: no RTP for {t} s", callId=self.callId, t=self.rtp.mediaTimeout)
        try:
            self.listener.mediaTimeout()
        except Exception:
            log.failure("listener.mediaTimeout failed")

    # -- IMediaSession ----------------------------------------------------

    def clientOffer(self, sipOffer):
        if self.mode == "local":
            return defer.fail(MediaError("clientOffer after answerLocally"))
        if self.leg is not None or self.closed or self._outbound:
            # Refused without touching the media the session already has.
            return defer.fail(MediaError("clientOffer called twice or after close"))
        try:
            self._loop = loopOf(self._reactor)
            if self.factory.allocator.full:
                raise self.factory.allocator.exhausted()
            if sipOffer is not None:
                # The port is taken when the client answers (sipAnswer):
                # an unanswered INVITE holds none.
                codec = self._takeSipOffer(sipOffer)
                names = browserCodecOrder(codec.name)
                videoNames = self._videoOffered(self._offer)
            else:
                self._offerless = True
                names = browserCodecOrder("PCMU")
                videoNames = ()
            self._newLeg(FeedTrack(), names, videoNames)
        except Exception as e:
            return self._setupFailed(e)
        d = self.leg.createOffer()
        d.addErrback(mediaError, "making the WebRTC offer")
        return d

    def sipAnswer(self, clientSdp):
        """
        Also usable for early media: the same body may go in a 183 and the
        200 OK; a second call with the same C{clientSdp} returns it again.
        """
        if self.leg is None or self.closed or self._outbound or self._browserOnly:
            return defer.fail(MediaError("sipAnswer without clientOffer"))
        if self._answered is not None:
            if self._answered[0] == clientSdp:
                return defer.succeed(self._answered[1])
            return defer.fail(MediaError("the client already answered"))
        d = self.leg.setRemoteAnswer(clientSdp)
        d.addCallback(self._clientAnswered, clientSdp)
        d.addErrback(self._answerFailed)

        def remember(body):
            self._answered = (clientSdp, body)
            return body

        d.addCallback(remember)
        return d

    def _answerFailed(self, failure):
        """The client's answer could not be used: give the RTP ports back at once."""
        self._stopRingback()
        self._releasePorts()
        return mediaError(failure, "applying the client's SDP")

    def _clientAnswered(self, _, clientSdp=None):
        if self.closed:
            raise MediaError("the call ended while the client answered")
        negotiated = self.leg.negotiatedCodec()
        if negotiated is None:
            raise MediaError("client SDP shares no codec with us (Opus, PCMU, PCMA)")
        self._webrtcCodec = negotiated
        name, pt = negotiated
        if self._offerless:
            self._offerSRTPIfRequired()
        self._releasePhone()  # a browser answered: the phones' port pair goes back
        self._bind(socket.AF_INET)
        self.tap = WebRTCTap(self._reactor, self.leg, pt, WEBRTC_CLOCK_RATES[name])
        if self._offerless:
            self._ourOffer = sdpmod.ourCodecs(first=name)
            body = sdpmod.buildSDP(self._ourAddress(), self._rtpPort, self._ourOffer,
                                   self._sessionId, self._version, **self._sdpSecurity())
            self._version += 1
            return body
        self._stopRingback()
        self._startMedia()
        self._startVideo(clientSdp)
        self.rtp.startTimeout()
        if self._earlySdp is not None:
            # RFC 3261 §13.2.1 / RFC 3262 §5: the 200 OK repeats the 183's answer.
            return self._earlySdp
        return self._sipAnswerSdp()

    def sipAckBody(self, sdp):
        if not self._offerless or self._ourOffer is None or self.closed:
            return defer.succeed(None)
        try:
            desc = sdpmod.parseSDP(sdp)
            index, m = self._answeredStream(desc)
            offered = {c.name for c in self._ourOffer}
            codec, event = sdpmod.chooseCodec(m, supported=tuple(offered))
            self._offer = desc
            self._audioIndex = index
            self._sipCodec, self._sipEvent = codec, event
            self.rtp.setCodecs(codec, event)
            self._applyRemote(m)
            if self.mode != "sip":
                self._startMedia()
            # else a phone answered (phoneside): its relay runs already, now both ways.
            if m.direction in ("sendrecv", "sendonly"):
                self.rtp.startTimeout()
        except MediaError as e:
            return defer.fail(e)
        return defer.succeed(None)

    def sipReoffer(self, sdp):
        if self.rtp is None or self.closed:
            return defer.fail(MediaError("re-INVITE before the call has media"))
        try:
            m, codec, event = self._applyOffer(sdpmod.parseSDP(sdp))
            self._videoReoffered(self._offer)
            changed = codec != self._sipCodec
            self._sipCodec, self._sipEvent = codec, event
            self.rtp.setCodecs(codec, event)
            self._applyRemote(m)
            if changed and self.mode is not None:
                self._stopMedia()
                self._startMedia()
            if m.direction in ("sendrecv", "sendonly") and not m.isHold and not self._sipHeld:
                self.rtp.startTimeout()
            else:
                self.rtp.pauseTimeout()
            return defer.succeed((self._sipAnswerSdp(), m.isHold))
        except MediaError as e:
            return defer.fail(e)

    def hold(self, onHold):
        """
        The client's hold: no audio goes to SIP until unhold (no re-INVITE
        is sent: the SIP side keeps sending, so the media timeout runs on).
        """
        self._clientHeld = bool(onHold)
        if self.rtp is not None and not self.closed:
            self.rtp.sending = self._farSending and not self._clientHeld
        return defer.succeed(None)

    # -- the client's hold as a re-INVITE (IReofferMediaSession) ------------

    def reoffer(self, hold):
        """
        Our re-INVITE's offer: the negotiated codec (and telephone-event) on
        the same port and address, the same m= lines, the next o= version;
        C{sendonly} (C{inactive} if we only received) to hold, C{sendrecv}
        to unhold (RFC 3264 §8.4). The media changes on the answer.
        """
        if self.rtp is None or self._sipCodec is None or self._offer is None or self.closed:
            return defer.fail(MediaError("re-offer before the call has media"))
        hold = bool(hold)
        direction = _HOLD_DIRECTION[self._direction] if hold else "sendrecv"
        try:
            body = self._ourSdp(direction)
        except Exception as e:
            log.failure("call {callId}: making the re-offer failed", callId=self.callId)
            return defer.fail(MediaError("making the re-offer failed: %s" % (e,)))
        self._reoffered = hold
        return defer.succeed(body)

    def reofferAnswered(self, sdp):
        """
        The answer to L{reoffer}: the far end's address and direction are
        followed; on hold nothing goes to SIP and the media timeout pauses,
        on unhold both resume. An unusable answer changes nothing.
        """
        hold, self._reoffered = self._reoffered, None
        if hold is None or self.rtp is None or self.closed:
            return defer.fail(MediaError("an answer without a re-offer"))
        try:
            desc = sdpmod.parseSDP(sdp)
            index, m = self._answeredStream(desc)
            codec, event = sdpmod.chooseCodec(m, supported=(self._sipCodec.name,))
        except MediaError as e:
            return defer.fail(e)
        changed = codec != self._sipCodec
        self._sipCodec, self._sipEvent = codec, event
        self.rtp.setCodecs(codec, event)
        self._sipHeld = self._clientHeld = hold
        self._applyRemote(m)
        if changed and self.mode is not None:
            self._stopMedia()
            self._startMedia()
        farSends = m.direction in ("sendrecv", "sendonly") and not m.isHold
        if farSends and not hold:
            self.rtp.startTimeout()
        else:
            self.rtp.pauseTimeout()
        held = hold or m.direction != "sendrecv" or m.isHold
        log.info("call {callId}: SIP side {what} (answer {direction})", callId=self.callId,
                 what="held" if hold else "resumed", direction=m.direction)
        return defer.succeed(held)

    def sendDigits(self, digits):
        """The client's keys: RFC 4733 to SIP, and to the browser leg's actions."""
        if self.rtp is not None and not self.closed:
            self.rtp.sendDigits(digits)
        self._browserDigits(digits)

    def stats(self):
        """
        @return: C{dict}: C{mode}, C{rtp_rejected} (SIP-side packets strict
            RTP dropped), the C{sip} and C{webrtc} legs' figures, and
            C{video} (L{linkrtc.media.video.VideoRelay.stats} and its
            C{codec}) while video is relayed.
        """
        figures = {"mode": self.mode,
                   "rtp_rejected": self.rtp.rejected if self.rtp is not None else 0}
        if self.rtp is not None:
            sip = self.rtp.stats()
            sip["codec"] = self._sipCodec.name if self._sipCodec else None
            figures["sip"] = sip
        phone = self._phoneStats()
        if phone is not None:
            figures["phone"] = phone
        webrtc = self._webrtcFigures()
        if webrtc is not None:
            webrtc["codec"] = self._webrtcCodec[0] if self._webrtcCodec else None
            figures["webrtc"] = webrtc
        video = self._videoFigures()
        if video is not None:
            figures["video"] = video
        return figures

    # -- seed 001's actions ---------------------------------------------------

    def answerLocally(self, sipOffer, codecs=("PCMU", "PCMA")):
        """
        The application answers an incoming SIP call itself, with no
        browser (seed 001 C{answer}): LinkRTC's own RTP answers the offer
        and the call's audio is only what L{audio}'s actions make of it.
        Used instead of C{clientOffer}/C{sipAnswer}; re-INVITEs go to
        C{sipReoffer} as usual, and the media timeout runs.

        @param sipOffer: the INVITE's SDP (C{bytes} or C{str}).
        @param codecs: the codec names we accept, in no order (the offer's
            order wins, RFC 3264 §6.1); C{"G722"} may be added.
        @return: L{Deferred} firing with our SDP answer (C{bytes}) for the
            200 OK: one audio codec (and telephone-event/8000 if offered),
            our RTP address and port; failing with L{MediaError} when the
            offer is unusable or shares no codec, the RTP port range is
            full, or the session already has media.
        """
        if self.rtp is not None or self.leg is not None or self.closed or self._outbound:
            # Refused without touching the media the session already has.
            return defer.fail(MediaError("answerLocally after other media set-up or close"))
        try:
            if self.factory.allocator.full:
                raise self.factory.allocator.exhausted()
            desc = sdpmod.parseSDP(sipOffer)
            index, m = self._offeredStream(desc)
            codec, event = sdpmod.chooseCodec(m, supported=tuple(codecs))
            self._offer = desc
            self._audioIndex = index
            family = socket.AF_INET6 if m.address[0] == "IP6" else socket.AF_INET
            self._newRTP(family)
            self._sipCodec, self._sipEvent = codec, event
            self.rtp.setCodecs(codec, event)
            self._applyRemote(m)
            self._bind()
            self._startMedia()
            self.rtp.startTimeout()
            self._answered = (sipOffer, self._sipAnswerSdp())
        except Exception as e:
            return self._setupFailed(e)
        return defer.succeed(self._answered[1])

    def audio(self):
        """
        The SIP leg's audio for seed 001's actions (play, record, DTMF,
        connect, conference): one L{linkrtc.media.actions.RTPAudio} per
        session, made on the first call. While an action sends audio to
        the SIP side, the browser's audio to SIP is dropped (replaced, not
        mixed) and comes back when the action ends; the browser keeps
        hearing the SIP side. DTMF keys reach the actions as well as the
        listener's C{mediaDigits}.

        On a call with a browser leg only (L{browserOffer}) this is
        L{browserAudio}.

        @return: an L{ICallAudio}.
        @raise MediaError: before the SIP side's media runs (answer or
            L{answerLocally} first) or after L{close}.
        """
        if self.closed:
            raise MediaError("the call's media is closed")
        if self.mode == "browser":
            return self.browserAudio()
        if self._audio is None:
            if self.rtp is None or self._sipCodec is None or self.mode is None:
                raise MediaError("the call has no SIP media yet")
            self._audio = RTPAudio(self._reactor, self.rtp, self._sipCodec.name,
                                   onSending=self._actionSending)
        return self._audio

    def _actionSending(self, sending):
        """L{RTPAudio}'s hook: actions start (C{True}) or stop sending to SIP."""
        self._sipMuted = sending
        if self._pipe is not None:
            self._pipe.mute(sending)

    # -- media pipelines --------------------------------------------------

    def _startMedia(self):
        if self._audio is not None:
            self._audio.codecChanged(self._sipCodec.name)
        if self.leg is None:
            self.mode = "local"
            log.info("call {callId}: media answered locally (SIP {sip})", callId=self.callId,
                     sip=self._sipCodec.name)
            return
        name = self._webrtcCodec[0]
        if self._relayCodecs() and not self._browserDecoding():
            self.mode = "relay"
            self.track.park()
            self._pipe = PacketRelay(self._reactor, self.rtp, self.tap, name)
        else:
            self.mode = "transcode"
            self._pipe = Transcoder(self._loop, self.rtp, self.leg.transceiver.receiver.track,
                                    self.track, self._sipCodec.name, tap=self.tap,
                                    webrtcCodec=name)
        log.info("call {callId}: media {mode} (SIP {sip}, WebRTC {webrtc})", callId=self.callId,
                 mode=self.mode, sip=self._sipCodec.name, webrtc=name)
        self._pipe.start()
        if self._sipMuted:
            self._pipe.mute(True)
        if self._audio is not None:
            self._audio.pipeStarted()
        self._browserPipeStarted()

    def _stopMedia(self):
        if self._pipe is not None:
            if self._audio is not None:
                self._audio.pipeStopping()
            self._pipe.stop()
            self._pipe = None
        self.mode = None

    # -- shutdown ---------------------------------------------------------

    def _newLeg(self, track, names, videoNames=()):
        """
        Make the call's browser leg (C{leg}): a L{WebRTCLeg} sending
        C{track} (kept as C{track}) and offering the codecs C{names}, in
        order, with the factory's ICE servers and addresses; and video with
        the codecs C{videoNames} when given (L{VideoSide}).
        """
        self.track = track
        self.leg = WebRTCLeg(self._reactor, track, names, self.factory.iceServers,
                             self.factory.iceAddresses, videoCodecNames=videoNames)

    def _setupFailed(self, error):
        """
        Setting the call's media up raised C{error}: release what was made.

        @return: a failed L{Deferred}: C{error} if it is a L{MediaError},
            else a L{MediaError} saying set-up failed (the cause logged).
        """
        if not isinstance(error, MediaError):
            log.failure("call {callId}: media set-up failed", failure=Failure(error),
                        callId=self.callId)
            error = MediaError("media set-up failed: %s" % (error,))
        self._releaseSync()
        return defer.fail(error)

    def _releaseSync(self):
        """Release what needs no waiting; @return: C{list} of L{Deferred}s for the rest."""
        waits = self._reattachRelease()
        if self._audio is not None:
            self._audio.close()
        if self._browserAudio is not None:
            self._browserAudio.close()
        self._stopMedia()
        waits.extend(self._videoRelease())
        if self.rtp is not None:
            self.rtp.stop()
        waits.extend(self._releasePorts())
        waits.extend(self._releasePhone())
        if self.tap is not None:
            self.tap.detach()
        if self.track is not None:
            self.track.stop()
        if self.leg is not None:
            waits.append(self.leg.close())
        return waits

    def _releasePorts(self):
        """Stop listening on the RTP/RTCP pair; @return: C{list} of L{Deferred}s."""
        waits = []
        if self._ports is not None:
            for port in self._ports:
                waits.append(defer.maybeDeferred(port.stopListening))
            self.factory.allocator.release(self._rtpPort)
            self._ports = None
        return waits

    def close(self):
        if self._closing is None:
            self.closed = True
            d = defer.DeferredList(self._releaseSync(), consumeErrors=True)
            d.addCallback(lambda _: self.factory._forget(self))
            self._closing = d
        result = defer.Deferred()
        self._closing.addBoth(lambda r: (result.callback(None), r)[1])
        return result

    def __repr__(self):
        return "<BridgeSession %s %s port=%s>" % (self.callId, self.mode, self._rtpPort)

