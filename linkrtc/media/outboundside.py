# -*- test-case-name: linkrtc.media.test.test_codecs -*-
"""
The bridge's side of outgoing calls (client -> SIP trunk), a mix-in of
L{linkrtc.media.bridge.BridgeSession}: the client offers, aiortc answers
it, and LinkRTC offers its own RTP to the trunk (L{sipOffer},
L{clientAnswer}); an application may offer with no browser
(L{offerLocally}, L{offerAnswered}).

A trunk's C{codecs} list is the order of preference of the offers made to
it (and of our answer when its 2xx holds the offer): the first of them a
browser has (L{linkrtc.media.webrtc.WEBRTC_CODECS}) leads the WebRTC
leg's preferences too, so that both legs meet on one codec and the packet
relay carries the call.

An offerless trunk (C{offerless = true}: RFC 3261 §13.2.1, the offer in
the 2xx and the answer in the ACK): L{sipOffer} still prepares our side
(aiortc's answer to the client, our RTP port); the INVITE goes without its
body, and L{ackAnswer} answers the 2xx's offer at once, for the ACK.
"""

import socket

from twisted.internet import defer
from twisted.logger import Logger

from linkrtc.error import MediaError
from linkrtc.media import sdp as sdpmod
from linkrtc.media.relay import WebRTCTap
from linkrtc.media.transcode import FeedTrack
from linkrtc.media.webrtc import (
    WEBRTC_CLOCK_RATES,
    WEBRTC_CODECS,
    browserCodecOrder,
    loopOf,
)

log = Logger()


def trunkCodecs(codecs):
    """
    @param codecs: a trunk's C{codecs} (names, any case), or empty/C{None}.
    @return: C{(sipCodecs, browserNames)}: the L{sdpmod.Codec}s we offer the
        trunk, in its order (ours, L{sdpmod.SIP_CODECS}, without it), and the
        WebRTC codec names in order of preference (the trunk's first
        browser codec first).
    @raise MediaError: when the trunk allows none of our SIP codecs.
    """
    sipCodecs = sdpmod.ourCodecs(order=codecs)
    audio = [c.name for c in sipCodecs if c.name != "TELEPHONE-EVENT"]
    if not audio:
        raise MediaError("the trunk allows none of our SIP codecs (%s)"
                         % (", ".join(sdpmod.ALL_SIP_CODECS),))
    first = next((name for name in audio if name in WEBRTC_CODECS), None)
    return sipCodecs, browserCodecOrder(first)


class OutboundSide:
    """
    L{linkrtc.media.bridge.BridgeSession}'s methods for outgoing calls
    (L{linkrtc.interfaces.IOutboundMediaSession},
    L{linkrtc.interfaces.IApplicationMediaSession}'s offers).
    """

    _trunkOrder = None

    def sipOffer(self, clientOffer, codecs=None, srtp="off"):
        """
        aiortc answers the client's offer (the first of the trunk's codecs
        a browser has first, to favour the relay; else PCMU, Opus, PCMA),
        then LinkRTC offers RTP to SIP: the trunk's C{codecs} in their
        order (by default PCMU, PCMA, G722), telephone-event/8000 on PT 101
        unless the trunk's list leaves it out; without a trunk list, the
        codec the WebRTC leg uses goes first. The WebRTC answer waits for
        L{clientAnswer} (or L{ackAnswer}).

        @param codecs: the trunk's codec names (any case), or C{None}.
        @param srtp: the trunk's C{srtp}: C{"off"} (plain RTP/AVP),
            C{"optional"} or C{"required"} (RTP/SAVP with our C{a=crypto},
            L{linkrtc.media.sdesside}).
        @return: L{Deferred} firing with our offer (C{bytes}).
        """
        if self.mode == "local":
            return defer.fail(MediaError("sipOffer after answerLocally"))
        if self.leg is not None or self.closed:
            # Refused without touching the media the session already has.
            return defer.fail(MediaError("sipOffer called twice, after clientOffer or after close"))
        try:
            if not isinstance(clientOffer, str) or not clientOffer.lstrip().startswith("v=0"):
                raise MediaError("the client's offer is not SDP (no v=0 line)")
            sipCodecs, names = trunkCodecs(codecs)
            self._offerSRTP(srtp)
            self._trunkOrder = tuple(c.upper() for c in codecs) if codecs else None
            self._loop = loopOf(self._reactor)
            self._outbound = True
            self._newLeg(FeedTrack(), names, self._clientVideoNames(clientOffer))
        except Exception as e:
            return self._setupFailed(e)
        d = self.leg.answerOffer(clientOffer)
        d.addCallback(self._clientOffered, sipCodecs)
        d.addErrback(mediaError, "answering the client's offer")
        return d

    def _clientOffered(self, answer, sipCodecs):
        if self.closed:
            raise MediaError("the call ended while its offer was made")
        negotiated = self.leg.negotiatedCodec()
        if negotiated is None:
            raise MediaError("client offer shares no codec with us (Opus, PCMU, PCMA)")
        self._webrtcCodec = negotiated
        self._webrtcAnswer = answer
        name, pt = negotiated
        self.tap = WebRTCTap(self._reactor, self.leg, pt, WEBRTC_CLOCK_RATES[name])
        if self._trunkOrder is None:
            sipCodecs = sorted(sipCodecs, key=lambda c: c.name != name)
        self._ourOffer = sipCodecs
        self._bind(socket.AF_INET)
        body = sdpmod.buildSDP(self._ourAddress(), self._rtpPort, sipCodecs, self._sessionId,
                               self._version, **self._sdpSecurity())
        self._version += 1
        return self._offerVideo(body)

    def _answerPreference(self):
        """
        @return: codec names in the order we prefer in an answer: the
            trunk's, else the WebRTC leg's codec first (the relay), else
            C{None} (the offer's order).
        """
        if self._trunkOrder:
            return self._trunkOrder
        if self._webrtcCodec is not None:
            return (self._webrtcCodec[0],)
        return None

    def clientAnswer(self, sipAnswer):
        """
        Parses the SIP answer (one of our codecs, its address), starts the
        relay or the transcoder and the media timeout, and returns the
        WebRTC answer made by L{sipOffer}. The same SDP again (a 200 OK
        repeating the 183's, or the 2xx whose offer L{ackAnswer} answered)
        changes nothing; a different one is followed like a re-INVITE
        (address, codec).
        """
        if not self._outbound or self._webrtcAnswer is None or self.closed:
            return defer.fail(MediaError("clientAnswer without sipOffer"))
        if self._sipAnswered == sipAnswer:
            if self._lateOfferError is not None:
                return defer.fail(MediaError(self._lateOfferError))
            return defer.succeed(self._webrtcAnswer)
        try:
            desc = sdpmod.parseSDP(sipAnswer)
            index, m = self._answeredStream(desc)
            offered = tuple(c.name for c in self._ourOffer if c.name != "TELEPHONE-EVENT")
            codec, event = sdpmod.chooseCodec(m, supported=offered)
            self._takeSipCodec(desc, index, m, codec, event)
            self._videoAnswered(desc)
        except MediaError as e:
            return defer.fail(e)
        except Exception as e:
            log.failure("call {callId}: starting the media failed", callId=self.callId)
            return defer.fail(MediaError("starting the media failed: %s" % (e,)))
        self._sipAnswered = sipAnswer
        return defer.succeed(self._webrtcAnswer)

    def _takeSipCodec(self, desc, index, m, codec, event):
        """The SIP side's SDP C{desc} gave C{codec}: follow it and (re)start the media."""
        changed = self._sipCodec is not None and codec != self._sipCodec
        self._offer = desc
        self._audioIndex = index
        self._sipCodec, self._sipEvent = codec, event
        self.rtp.setCodecs(codec, event)
        self._applyRemote(m)
        if self.mode is None:
            self._startMedia()
        elif changed:
            self._stopMedia()
            self._startMedia()
        if m.direction in ("sendrecv", "sendonly") and not m.isHold:
            self.rtp.startTimeout()
        else:
            self.rtp.pauseTimeout()

    _lateOfferError = None

    def ackAnswer(self, sipOffer):
        """
        Answer the offer of the 2xx to an offerless INVITE (RFC 3261
        §13.2.1: the answer goes in the ACK), synchronously, since the SIP
        leg ACKs at once: one of the codecs L{sipOffer} prepared (the
        trunk's order first, else the WebRTC leg's codec), our RTP port;
        the media starts. L{clientAnswer} with the same SDP then gives the
        client aiortc's answer (the browser's leg was negotiated when the
        call was placed).

        @param sipOffer: the 2xx's SDP (C{bytes}).
        @return: our answer (C{bytes}), or C{None} when the offer is not
            usable (no shared codec, no audio, not SDP): the ACK then goes
            without a body, and L{clientAnswer} for that SDP fails with
            L{MediaError}, so the call ends (BYE, 488).
        """
        if not self._outbound or self._webrtcAnswer is None or self.closed:
            return None
        self._sipAnswered = sipOffer
        self._videoUnanswered()
        try:
            desc = sdpmod.parseSDP(sipOffer)
            index, m = self._offeredStream(desc)
            offered = tuple(c.name for c in self._ourOffer if c.name != "TELEPHONE-EVENT")
            codec, event = sdpmod.chooseCodec(m, supported=offered,
                                              preference=self._answerPreference())
            self._takeSipCodec(desc, index, m, codec, event)
            self._direction = sdpmod.answerDirection(m.direction)
            return self._ourSdp(self._direction)
        except MediaError as e:
            self._lateOfferError = str(e)
        except Exception as e:
            log.failure("call {callId}: answering the 2xx's offer failed", callId=self.callId)
            self._lateOfferError = "answering the 2xx's offer failed: %s" % (e,)
        return None

    def offerLocally(self, codecs=None, srtp="off"):
        """
        Seed 001 C{construct} through a trunk: LinkRTC's own RTP offer, no
        browser (L{IApplicationMediaSession.offerLocally}); the trunk's
        C{codecs} in their order; RTP/SAVP with C{a=crypto} when the
        trunk's C{srtp} is C{"optional"} or C{"required"}.
        """
        if self.rtp is not None or self.leg is not None or self.closed or self._outbound:
            return defer.fail(MediaError("offerLocally after other media set-up or close"))
        try:
            ours, _ = trunkCodecs(codecs)
            if self.factory.allocator.full:
                raise self.factory.allocator.exhausted()
            self._offerSRTP(srtp)
            self._outbound = True
            self._ourOffer = ours
            self._bind(socket.AF_INET)
            body = sdpmod.buildSDP(self._ourAddress(), self._rtpPort, ours, self._sessionId,
                                   self._version, **self._sdpSecurity())
            self._version += 1
        except Exception as e:
            return self._setupFailed(e)
        return defer.succeed(body)

    def offerAnswered(self, sipAnswer):
        """The answer to L{offerLocally} (L{IApplicationMediaSession.offerAnswered})."""
        if not self._outbound or self.leg is not None or self._ourOffer is None or self.closed:
            return defer.fail(MediaError("offerAnswered without offerLocally"))
        if self._sipAnswered == sipAnswer:
            return defer.succeed(None)
        try:
            desc = sdpmod.parseSDP(sipAnswer)
            index, m = self._answeredStream(desc)
            offered = tuple(c.name for c in self._ourOffer if c.name != "TELEPHONE-EVENT")
            codec, event = sdpmod.chooseCodec(m, supported=offered)
            self._offer = desc
            self._audioIndex = index
            self._sipCodec, self._sipEvent = codec, event
            self.rtp.setCodecs(codec, event)
            self._applyRemote(m)
            if self.mode is None:
                self._startMedia()
            elif self._audio is not None:
                self._audio.codecChanged(codec.name)
            if m.direction in ("sendrecv", "sendonly") and not m.isHold:
                self.rtp.startTimeout()
        except MediaError as e:
            return defer.fail(e)
        self._sipAnswered = sipAnswer
        return defer.succeed(None)


def mediaError(failure, what):
    """
    An errback: a L{MediaError} goes on as it is; anything else is logged
    and becomes a L{MediaError} saying what failed.
    """
    if failure.check(MediaError):
        return failure
    log.failure("media failure while {what}", failure, what=what)
    raise MediaError("media failure while %s: %s" % (what, failure.getErrorMessage()))
