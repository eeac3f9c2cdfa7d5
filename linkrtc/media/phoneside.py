# -*- test-case-name: linkrtc.media.test.test_phoneside -*-
"""
A SIP phone answering an incoming SIP call in bridge mode: the SIP-to-SIP
half of L{linkrtc.media.bridge.BridgeSession} (L{IPhoneMediaSession}).

An incoming call routed to a user rings the user's registered SIP phones
(L{linkrtc.call.sipphones}) as well as its browsers. The phones speak
plain RTP, not WebRTC, so they are not offered the browser's offer: they
get L{PhoneSide.phoneOffer}, LinkRTC's own RTP address on a second port
pair (the I{phone side}) with the codec the bridge chose from the caller's
offer (and telephone-event when the caller offered it), the same offer to
every phone of the call. The phone that answers first gives
L{PhoneSide.phoneAnswer} its SDP: the caller's RTP and the phone's are
then joined by an L{RTPRelay} (no decoding: both legs use the one codec),
the browser leg, if one was made, is closed, and the caller's 200 OK
gets the bridge's usual SIP answer (the 183's, when early media ran).
The answering phone's later offers (hold, resume, a refresh with SDP) are
answered by L{PhoneSide.phoneReoffer} on the phone side alone: the same
address, port and codec, the direction mirrored.

An offerless INVITE (RFC 3261 §13.2.1: the offer goes in our 2xx, the
caller's answer in its ACK) rings the phones too: with no caller's codec
to follow, L{PhoneSide.phoneOffer} offers every relayable codec
(L{linkrtc.media.sdp.SIP_CODECS} and telephone-event). The answering
phone's codec is the only one the caller is then offered in the 200 OK
(the relay does not transcode), telephone-event with it when the phone
took it; the caller's answer comes in the ACK
(L{linkrtc.media.bridge.BridgeSession.sipAckBody}), which points the
relay's caller leg at it. An ACK whose SDP cannot be used (no SDP, not
that codec) fails there, and the call ends with BYE (488), as for a
browser that answered an offerless INVITE.
"""

import random
import socket

from twisted.internet import defer
from twisted.logger import Logger

from linkrtc.error import MediaError
from linkrtc.media import sdp as sdpmod
from linkrtc.media.rtp import RTCPSink, RTPSession

log = Logger()

_WILDCARDS = (None, "", "0.0.0.0", "::")


class RTPRelay:
    """
    Two plain RTP sessions joined, same codec on both (no decoding): each
    accepted audio packet of one goes to the other with its numbers
    rewritten by the receiving session (L{RTPSession.relayAudio}); RFC 4733
    key presses are sent again as events (L{RTPSession.sendDigits}).

    @param caller: the caller's L{RTPSession} (the bridge's SIP side).
    @param phone: the answering phone's L{RTPSession}.
    """

    def __init__(self, caller, phone):
        self._caller = caller
        self._phone = phone
        self._callerDigit = None
        self._muted = False
        self.callerPackets = 0
        self.phonePackets = 0

    def start(self):
        """Relay both ways from now on."""
        self._caller.onAudio = self._fromCaller
        self._phone.onAudio = self._fromPhone
        self._callerDigit = self._caller.onDigit
        self._caller.onDigit = self._callerKey
        self._phone.onDigit = self._phoneKey

    def _fromCaller(self, marker, pt, seq, ts, ssrc, payload):
        self.callerPackets += 1
        self._phone.relayAudio(marker, ssrc, seq, ts, payload)

    def _fromPhone(self, marker, pt, seq, ts, ssrc, payload):
        self.phonePackets += 1
        if not self._muted:
            self._caller.relayAudio(marker, ssrc, seq, ts, payload)

    def _callerKey(self, digit):
        if self._callerDigit is not None:
            self._callerDigit(digit)
        self._phone.sendDigits(digit)

    def _phoneKey(self, digit):
        self._caller.sendDigits(digit)

    def mute(self, muted):
        """Drop (C{True}) or relay again the phone's audio to the caller (an action plays)."""
        self._muted = bool(muted)

    def stop(self):
        """Stop relaying (the sessions stay open)."""
        if self._caller.onAudio == self._fromCaller:
            self._caller.onAudio = None
        if self._caller.onDigit == self._callerKey:
            self._caller.onDigit = self._callerDigit
        if self._phone.onAudio == self._fromPhone:
            self._phone.onAudio = None
        self._phone.onDigit = None


class PhoneSide:
    """L{linkrtc.media.bridge.BridgeSession}'s SIP phone side."""

    _phoneRtp = None
    _phonePorts = None
    _phonePort = None
    _phoneCodec = None
    _phoneAddress = None
    _phoneSessionId = 0

    def phoneOffer(self, sipOffer):
        """
        See L{linkrtc.interfaces.IPhoneMediaSession.phoneOffer}: our RTP
        offer for the phones (C{bytes}), made once per call.

        For an offerless INVITE (C{sipOffer} C{None}) the offer lists
        every codec the relay can carry (see the module docstring).

        @raise MediaError: (in the L{Deferred}) for an unusable offer, a
            full RTP port range, or a session that already has media.
        """
        if self.closed or self._outbound or self.mode is not None or self._answered is not None:
            return defer.fail(MediaError("phoneOffer after the call's media was set up"))
        if self._phoneOfferSdp is not None:
            return defer.succeed(self._phoneOfferSdp)
        try:
            if self.factory.allocator.full:
                raise self.factory.allocator.exhausted()
            if sipOffer is None:
                # Offerless: the phone's answer picks the codec the caller is offered.
                self._offerless = True
                codecs = sdpmod.ourCodecs()
            else:
                if self.rtp is None:
                    # Only phones ring: no browser offer parsed the caller's SDP.
                    self._takeSipOffer(sipOffer)
                codecs = [self._sipCodec] + ([self._sipEvent] if self._sipEvent else [])
            phone = RTPSession(self._reactor, onTimeout=self._timeout,
                               mediaTimeout=self.factory.mediaTimeout)
            interface = self.factory.rtpInterface
            if interface in _WILDCARDS:
                interface = "::" if self._family == socket.AF_INET6 else ""
            self._phonePorts = self.factory.allocator.listen(phone, RTCPSink(),
                                                             interface=interface)
            self._phoneRtp = phone
            self._phonePort = self._phonePorts[0].getHost().port
            self._phoneOffered = tuple(c.name for c in codecs if c.name != "TELEPHONE-EVENT")
            self._phoneAddress = self._ourAddress()
            self._phoneSessionId = random.getrandbits(31)
            self._phoneOfferSdp = sdpmod.buildSDP(self._phoneAddress, self._phonePort, codecs,
                                                  self._phoneSessionId)
            self._phoneSdpSent = self._phoneOfferSdp
        except Exception as e:
            self._releasePhone()
            if not isinstance(e, MediaError):
                log.failure("call {callId}: the phones' offer failed", callId=self.callId)
                e = MediaError("the phones' offer failed: %s" % (e,))
            return defer.fail(e)
        return defer.succeed(self._phoneOfferSdp)

    _phoneOfferSdp = None
    _phoneOffered = ()
    _phoneSdpSent = None
    _phoneVersion = 0

    def phoneAnswer(self, sdp):
        """
        See L{linkrtc.interfaces.IPhoneMediaSession.phoneAnswer}: the
        first phone's answer joins it to the caller; the browser leg, if
        any, is closed.

        @return: L{Deferred} firing with the caller's SDP answer (C{bytes}),
            or, for an offerless INVITE, our offer to the caller (the
            phone's codec only), whose answer comes to L{sipAckBody}.
        """
        if self._phoneRtp is None or self.closed or self._answered is not None:
            return defer.fail(MediaError("phoneAnswer without phoneOffer"))
        try:
            if isinstance(sdp, str):
                sdp = sdp.encode("utf-8")
            desc = sdpmod.parseSDP(sdp)
            index, m = desc.audio()
            codec, event = sdpmod.chooseCodec(m, supported=self._phoneOffered)
            if not self._offerless and self._sipEvent is None:
                event = None
            self._phoneCodec = codec
            self._phoneRtp.setCodecs(codec, event)
            host = m.address[1]
            held = host in ("0.0.0.0", "::")
            self._phoneRtp.setRemote(None if held else (host, m.port),
                                     peerSends=m.direction in ("sendrecv", "sendonly"))
            self._stopRingback()
            if self._offerless:
                self._offerSRTPIfRequired()  # before the caller's RTPSession is made
                self._sipCodec, self._sipEvent = codec, event
                self._bind(socket.AF_INET)
                self.rtp.setCodecs(codec, event)
            else:
                self._bind()
            self._dropBrowserLeg()
            self.mode = "sip"
            self._pipe = RTPRelay(self.rtp, self._phoneRtp)
            self._pipe.start()
            if self._sipMuted:
                self._pipe.mute(True)
            if self._audio is not None:
                self._audio.pipeStarted()
            self._phoneRtp.startTimeout()
            if self._offerless:
                # The caller's RTP timeout starts with its answer (sipAckBody).
                body = self._offerToCaller(codec, event)
            else:
                self.rtp.startTimeout()
                body = self._earlySdp if self._earlySdp is not None else self._sipAnswerSdp()
            self._answered = (sdp, body)
        except Exception as e:
            if not isinstance(e, MediaError):
                log.failure("call {callId}: the phone's answer failed", callId=self.callId)
                e = MediaError("the phone's answer failed: %s" % (e,))
            return defer.fail(e)
        log.info("call {callId}: media SIP to SIP (relay {codec}, ports {a} and {b})",
                 callId=self.callId, codec=codec.name, a=self._rtpPort, b=self._phonePort)
        return defer.succeed(body)

    def _offerToCaller(self, codec, event):
        """
        An offerless INVITE answered by a phone: our offer for the caller's
        200 OK (C{bytes}), the phone's codec only (and its telephone-event).
        """
        self._ourOffer = [codec] + ([event] if event is not None else [])
        body = sdpmod.buildSDP(self._ourAddress(), self._rtpPort, self._ourOffer,
                               self._sessionId, self._version, **self._sdpSecurity())
        self._version += 1
        return body

    def phoneReoffer(self, sdp):
        """
        See L{linkrtc.interfaces.IPhoneMediaSession.phoneReoffer}: the
        phone's re-INVITE or UPDATE offer in a call it answered. Our answer
        keeps the phone side's address, port and codec (the relay cannot
        change codec: an offer without it fails, 488, and nothing changes)
        and mirrors the direction; the phone's address, port and direction
        are followed (no RTP to a phone that will not receive, the media
        timeout paused while it does not send). The caller's side is not
        touched here: the hold reaches it as the client's C{hold}
        (L{linkrtc.call.sipphones.PhoneBranch}).

        @return: L{Deferred} firing with C{(answer bytes, hold bool)}.
        """
        if self.closed or self.mode != "sip" or self._phoneRtp is None:
            return defer.fail(MediaError("a phone's re-offer before it answered"))
        try:
            if isinstance(sdp, str):
                sdp = sdp.encode("utf-8")
            desc = sdpmod.parseSDP(sdp)
            index, m = desc.audio()
            codec, event = sdpmod.chooseCodec(m, supported=(self._phoneCodec.name,))
            if m.address is None:
                raise MediaError("the phone's re-offer has no connection address")
        except MediaError as e:
            return defer.fail(e)
        except Exception as e:
            return defer.fail(MediaError("the phone's re-offer is not usable: %s" % (e,)))
        event = event if self._sipEvent is not None else None
        direction = sdpmod.answerDirection(m.direction)
        rejected = [other for i, other in enumerate(desc.media) if i != index]
        codecs = [codec] + ([event] if event is not None else [])

        def build(version):
            return sdpmod.buildSDP(self._phoneAddress, self._phonePort, codecs,
                                   self._phoneSessionId, version, direction,
                                   rejected=rejected, audioIndex=index)

        body = build(self._phoneVersion)
        if body != self._phoneSdpSent:
            # RFC 3264 §8: a new version only when the SDP changes.
            self._phoneVersion += 1
            body = build(self._phoneVersion)
        self._phoneSdpSent = body
        self._phoneCodec = codec
        self._phoneRtp.setCodecs(codec, event)
        held = m.address[1] in _WILDCARDS
        self._phoneRtp.setRemote(None if held else (m.address[1], m.port),
                                 peerSends=m.direction in ("sendrecv", "sendonly"))
        self._phoneRtp.sending = not held and m.direction in ("sendrecv", "recvonly")
        if m.direction in ("sendrecv", "sendonly") and not m.isHold:
            self._phoneRtp.startTimeout()
        else:
            self._phoneRtp.pauseTimeout()
        log.info("call {callId}: the phone's re-offer ({direction}) answered {answer}",
                 callId=self.callId, direction=m.direction, answer=direction)
        return defer.succeed((body, m.isHold))

    def phoneSdp(self):
        """See L{linkrtc.interfaces.IPhoneMediaSession.phoneSdp}."""
        return self._phoneSdpSent

    def _dropBrowserLeg(self):
        """A phone answered: the browser leg offered to the clients is not needed."""
        leg, self.leg = self.leg, None
        track, self.track = self.track, None
        if track is not None:
            track.stop()
        if leg is not None:
            leg.close().addErrback(lambda f: None)

    def _phoneStats(self):
        if self._phoneRtp is None or self.mode != "sip":
            return None
        figures = self._phoneRtp.stats()
        figures["codec"] = self._phoneCodec.name if self._phoneCodec else None
        return figures

    def _releasePhone(self):
        """Stop the phone side's RTP; @return: C{list} of L{Deferred}s."""
        waits = []
        if self._phoneRtp is not None and self.mode != "sip":
            # Not answered by a phone: nothing of it goes in the stats.
            self._phoneRtp.stop()
            self._phoneRtp = None
        elif self._phoneRtp is not None:
            self._phoneRtp.stop()
        if self._phonePorts is not None:
            for port in self._phonePorts:
                waits.append(defer.maybeDeferred(port.stopListening))
            self.factory.allocator.release(self._phonePort)
            self._phonePorts = None
        return waits
