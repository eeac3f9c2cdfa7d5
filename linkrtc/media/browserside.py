# -*- test-case-name: linkrtc.media.actions.test.test_browser_bridge -*-
"""
The browser leg of a L{linkrtc.media.bridge.BridgeSession} for seed 001's
actions: L{BrowserSide.browserAudio} (an L{ICallAudio} of the WebRTC leg,
L{WebRTCAudio}) and calls with a browser leg only (L{BrowserSide.browserOffer},
L{BrowserSide.browserAnswer}: LinkRTC calls a client, no SIP leg).

While an action needs the browser leg (play to it, record it, connect or
conference it), the session leaves the packet relay: a PCMU⇄PCMU call
runs the transcoder (aiortc decodes the browser's audio, the feed track
carries what the actions write) and goes back to the relay when the last
action ends. On a call with no SIP leg, the browser's packets are dropped
undecoded while no action needs them (aiortc's receiver would otherwise
queue decoded frames nobody reads), and the feed track sends silence.
"""

from twisted.internet import defer
from twisted.logger import Logger

from linkrtc.error import MediaError
from linkrtc.media.actions.webrtc_leg import BROWSER_RATES, WebRTCAudio
from linkrtc.media.outboundside import mediaError
from linkrtc.media.relay import RELAY_CODECS, WebRTCTap
from linkrtc.media.rtp import EVENT_DIGITS
from linkrtc.media.transcode import FeedTrack, Transcoder
from linkrtc.media.webrtc import WEBRTC_CLOCK_RATES, loopOf

log = Logger()


def _dropPacket(marker, pt, seq, ts, ssrc, payload):
    """A L{WebRTCTap} handler that drops the browser's packets (nothing needs them)."""


class BrowserSide:
    """
    What L{linkrtc.media.bridge.BridgeSession} does for its browser leg's
    actions; it uses the session's C{leg}, C{track}, C{tap}, C{mode},
    C{_pipe}, C{_webrtcCodec}, C{_sipCodec}, C{_newLeg} and C{_startMedia} /
    C{_stopMedia}, and keeps C{_browserAudio}, C{_browserMuted} and
    C{_browserOnly} (set in the session's constructor).
    """

    # -- calls with a browser leg only ----------------------------------------

    def browserOffer(self):
        """
        Start a call whose only leg is a browser (seed 001 C{construct} to
        a client: LinkRTC calls it; no SIP leg): an aiortc offer with Opus
        then PCMU, its candidates included (non-trickle). The client's
        answer goes to L{browserAnswer}. Used instead of C{clientOffer} /
        C{sipOffer} / C{answerLocally}, which then refuse.

        @return: L{Deferred} firing with the offer SDP (C{str}); failing
            with L{MediaError} when the session already has media or is
            closed, or aiortc fails.
        """
        if self.leg is not None or self.rtp is not None or self.closed or self._outbound:
            return defer.fail(MediaError("browserOffer after other media set-up or close"))
        try:
            self._loop = loopOf(self._reactor)
            self._browserOnly = True
            self._newLeg(FeedTrack(rate=BROWSER_RATES["OPUS"]), ["OPUS", "PCMU"])
        except Exception as e:
            return self._setupFailed(e)
        d = self.leg.createOffer()
        d.addErrback(mediaError, "making the WebRTC offer")
        return d

    def browserAnswer(self, clientSdp):
        """
        The client's answer to L{browserOffer}: the media runs (C{mode}
        C{"browser"}) and L{audio} / L{browserAudio} give the browser
        leg's L{ICallAudio}. The same SDP again changes nothing.

        @param clientSdp: the client's SDP answer (C{str}).
        @return: L{Deferred} firing with C{None}; failing with
            L{MediaError} without L{browserOffer}, after close, for an
            answer aiortc rejects or that shares no codec (Opus, PCMU),
            or for a second, different answer.
        """
        if not self._browserOnly or self.leg is None or self.closed:
            return defer.fail(MediaError("browserAnswer without browserOffer"))
        if self._answered is not None:
            if self._answered[0] == clientSdp:
                return defer.succeed(None)
            return defer.fail(MediaError("the client already answered"))
        d = self.leg.setRemoteAnswer(clientSdp)
        d.addCallback(self._browserAnswered, clientSdp)
        d.addErrback(mediaError, "applying the client's SDP")
        return d

    def _browserAnswered(self, _, clientSdp):
        if self.closed:
            raise MediaError("the call ended while the client answered")
        negotiated = self.leg.negotiatedCodec()
        if negotiated is None:
            raise MediaError("client SDP shares no codec with us (Opus, PCMU, PCMA)")
        self._webrtcCodec = negotiated
        name, pt = negotiated
        self.tap = WebRTCTap(self._reactor, self.leg, pt, WEBRTC_CLOCK_RATES[name])
        self.tap.onPacket = _dropPacket
        self.mode = "browser"
        self._answered = (clientSdp, None)
        log.info("call {callId}: browser media (WebRTC {webrtc}, no SIP leg)",
                 callId=self.callId, webrtc=name)
        return None

    # -- the browser leg's actions --------------------------------------------

    def browserAudio(self):
        """
        The browser (WebRTC) leg's audio for seed 001's actions: one
        L{WebRTCAudio} per session (16 kHz frames with Opus, 8 kHz with
        PCMU), made on the first call. While an action sends to the
        browser, the SIP side's audio to it is dropped (replaced, not
        mixed) and comes back when the action ends; the SIP side keeps
        hearing the browser unless an action on C{audio()} sends to it.
        The client's C{dtmf} keys (L{sendDigits}) reach its actions.

        @return: an L{ICallAudio}.
        @raise MediaError: before the browser leg's media runs (the
            client's answer, or for outbound calls the SIP answer) or after
            C{close}.
        """
        if self.closed:
            raise MediaError("the call's media is closed")
        if self._browserAudio is None:
            if self.leg is None or self._webrtcCodec is None or self.mode is None:
                raise MediaError("the call has no browser media yet")
            self._browserAudio = WebRTCAudio(
                self._reactor, self._loop, self.leg.transceiver.receiver.track, self.track,
                self._webrtcCodec[0], onActive=self._browserActive,
                onSending=self._browserSending)
        return self._browserAudio

    def _relayCodecs(self):
        """
        @return: C{True} if both legs' codecs allow the packet relay: the
            same codec on both, one of L{RELAY_CODECS} (PCMU, PCMA, G.722, Opus).
        """
        return (self._webrtcCodec is not None and self._sipCodec is not None
                and self._webrtcCodec[0] == self._sipCodec.name
                and self._sipCodec.name in RELAY_CODECS
                and not self.factory.relayProblem)

    def _browserDecoding(self):
        """@return: C{True} while the browser leg's actions need its frames (no relay)."""
        return self._browserAudio is not None and self._browserAudio.active

    def _browserActive(self, active):
        """L{WebRTCAudio}'s hook: its first action starts (C{True}) or its last ends."""
        if self.closed:
            return
        if self.mode == "browser":
            self.tap.onPacket = None if active else _dropPacket
            self._browserAudio.readTrack(active)
            return
        if (self.mode == "relay" and active) or (
                self.mode == "transcode" and not active and self._relayCodecs()):
            log.info("call {callId}: {what} the packet relay for the browser leg's actions",
                     callId=self.callId, what="leaving" if active else "back to")
            self._stopMedia()
            self._startMedia()
        else:
            self._browserPipeStarted()

    def _browserSending(self, sending):
        """L{WebRTCAudio}'s hook: its actions start (C{True}) or stop sending to the browser."""
        self._browserMuted = sending
        if isinstance(self._pipe, Transcoder):
            self._pipe.muteToBrowser(sending)

    def _browserPipeStarted(self):
        """The session (re)started its transcoder: give it the browser leg's tee and mute."""
        if not isinstance(self._pipe, Transcoder):
            return
        audio = self._browserAudio
        self._pipe.tee(audio.frameReceived if audio is not None and audio.active else None)
        self._pipe.muteToBrowser(self._browserMuted)

    def _browserDigits(self, digits):
        """The client's C{dtmf} keys: to the browser leg's listener and action."""
        if self._browserAudio is None or self.closed:
            return
        for key in str(digits).upper():
            if key in EVENT_DIGITS:
                self._browserAudio.keyPressed(key)
