# -*- test-case-name: linkrtc.media.test.test_reattach -*-
"""
Rebuilding a bridged call's WebRTC leg for a client that came back on a
new connection (a page reload): L{ClientReattach}, mixed into
L{linkrtc.media.bridge.BridgeSession}
(L{linkrtc.interfaces.IResumableMediaSession}).

While the client is away the SIP side of the call stays as it is: the same
RTP session, port, SSRC and strict-RTP source guard; L{SIPSilence} sends it
20 ms of silence in its codec (so the far end keeps hearing a stream), and
the media timeout is paused (the call's resume timer bounds the wait).
When the client comes back with a new offer, a new aiortc
C{RTCPeerConnection} answers it and the relay or the transcoder is started
again between the same RTP session and the new leg.
"""

import fractions

from twisted.internet import defer
from twisted.internet.task import LoopingCall
from twisted.logger import Logger

from linkrtc.error import MediaError
from linkrtc.media.relay import WebRTCTap
from linkrtc.media.transcode import SIP_CODEC_PARAMETERS, FeedTrack, silenceFrame
from linkrtc.media.webrtc import WEBRTC_CLOCK_RATES, browserCodecOrder

log = Logger()

#: 20 ms of silence per G.711 codec (mu-law 0xFF, A-law 0xD5 are zero).
G711_SILENCE = {"PCMU": b"\xff" * 160, "PCMA": b"\xd5" * 160}

#: The WebRTC leg's figures that add up over the legs a call had.
_ADDITIVE = ("packetsReceived", "bytesReceived", "packetsLost", "packetsSent", "bytesSent",
             "srtpFailures")


def silencePayload(codecName):
    """
    @param codecName: the SIP codec (C{"PCMU"}, C{"PCMA"}, C{"G722"}).
    @return: one 20 ms RTP payload of silence in that codec (C{bytes}).
    """
    if codecName in G711_SILENCE:
        return G711_SILENCE[codecName]
    from aiortc.codecs import get_encoder

    from linkrtc.media.transcode import codecParameters

    encoder = get_encoder(codecParameters(codecName))
    rate = SIP_CODEC_PARAMETERS[codecName][2]
    for i in range(5):
        frame = silenceFrame(rate, rate // 50)
        frame.pts = i * (rate // 50)
        frame.time_base = fractions.Fraction(1, rate)
        payloads, _ = encoder.encode(frame)
        if payloads:
            return payloads[0]
    raise MediaError("no silence payload for %s" % (codecName,))


class SIPSilence:
    """
    Sends the SIP side 20 ms of silence every 20 ms (RTP timestamps advance
    as for audio) while no client is attached.

    @param clock: an L{IReactorTime}.
    @param rtp: the L{linkrtc.media.rtp.RTPSession}.
    @param codecName: the SIP codec.
    @param muted: a callable; while it returns C{True} nothing is sent (a
        call-control action sends its own audio).
    """

    def __init__(self, clock, rtp, codecName, muted=lambda: False):
        self._clock = clock
        self._rtp = rtp
        self._payload = silencePayload(codecName)
        self._muted = muted
        self._loop = None
        self.packets = 0

    def start(self):
        self._loop = LoopingCall(self._send)
        self._loop.clock = self._clock
        self._loop.start(0.02, now=True)

    def _send(self):
        if not self._muted():
            self._rtp.sendAudio(self._payload, len(self._payload))
            self.packets += 1

    def stop(self):
        if self._loop is not None and self._loop.running:
            self._loop.stop()
        self._loop = None


class ClientReattach:
    """
    L{linkrtc.interfaces.IResumableMediaSession} for
    L{linkrtc.media.bridge.BridgeSession} (a mix-in: it uses the session's
    C{rtp}, C{leg}, C{track}, C{tap}, C{_newLeg}, C{_startMedia} and C{_stopMedia}).

    @ivar resumes: how many times a client came back (C{int}).
    """

    resumes = 0
    _detached = False
    _silence = None
    _timeoutWasRunning = False
    _oldLegClosing = None
    _pastWebRTC = ()

    @property
    def detached(self):
        """C{True} while the call waits for its client (no WebRTC leg joined)."""
        return self._detached

    def clientDetached(self):
        """
        The client's connection is gone: close its peer connection, send
        the SIP side silence, pause the media timeout. Nothing happens
        when there is no joined WebRTC leg (before the answer, C{local}
        mode, closed).
        """
        if self.closed or self._detached or self.leg is None or self.mode in (None, "local"):
            return
        self._detached = True
        if self.tap is not None:
            self._pastWebRTC += (self.tap.stats(),)
        self._stopMedia()
        self._dropLeg()
        self._timeoutWasRunning = bool(getattr(self.rtp, "_timeoutRunning", False))
        self.rtp.pauseTimeout()
        self._silence = SIPSilence(self._reactor, self.rtp, self._sipCodec.name,
                                   muted=lambda: self._sipMuted)
        self._silence.start()
        log.info("call {callId}: client leg dropped; SIP side hears silence", callId=self.callId)

    def _dropLeg(self):
        """Let go of the WebRTC leg (its close is waited for by L{close})."""
        if self.tap is not None:
            self.tap.detach()
        if self.track is not None:
            self.track.stop()
        if self.leg is not None:
            closing = self.leg.close()
            previous = self._oldLegClosing
            self._oldLegClosing = closing if previous is None else \
                defer.DeferredList([previous, closing], consumeErrors=True)
        self.leg = self.track = self.tap = None

    def clientResumed(self, clientOffer):
        """
        Answer the client's new offer with a new peer connection and join
        it to the SIP side as before (PCMU first when the SIP side has
        PCMU, for the relay). The media timeout runs again if it ran.

        @return: L{Deferred} firing with the answer (C{str}); failing with
            L{MediaError} when no client is detached, a resume is under
            way, or the offer is unusable (the call keeps waiting).
        """
        if self.closed or not self._detached:
            return defer.fail(MediaError("no client leg to rebuild"))
        if self.leg is not None:
            return defer.fail(MediaError("a resume is under way"))
        if not isinstance(clientOffer, str) or not clientOffer.lstrip().startswith("v=0"):
            return defer.fail(MediaError("the client's offer is not SDP (no v=0 line)"))
        names = browserCodecOrder(self._sipCodec.name)
        try:
            self._newLeg(FeedTrack(), names, self._resumeVideoNames(clientOffer))
        except Exception as e:
            log.failure("call {callId}: making the new WebRTC leg failed", callId=self.callId)
            self._dropLeg()
            return defer.fail(MediaError("making the new WebRTC leg failed: %s" % (e,)))
        leg = self.leg
        d = leg.answerOffer(clientOffer)
        d.addCallback(self._reattached, leg)
        d.addErrback(self._reattachFailed, leg)
        return d

    def _reattached(self, answer, leg):
        if self.closed or leg is not self.leg:
            raise MediaError("the call ended while the client came back")
        negotiated = leg.negotiatedCodec()
        if negotiated is None:
            raise MediaError("client offer shares no codec with us (Opus, PCMU, PCMA)")
        self._webrtcCodec = negotiated
        name, pt = negotiated
        self.tap = WebRTCTap(self._reactor, leg, pt, WEBRTC_CLOCK_RATES[name])
        if self._silence is not None:
            self._silence.stop()
            self._silence = None
        self._detached = False
        self._startMedia()
        self._videoReattached()
        if self._timeoutWasRunning:
            self.rtp.startTimeout()
        self.resumes += 1
        log.info("call {callId}: client leg rebuilt ({mode})", callId=self.callId,
                 mode=self.mode)
        return answer

    def _reattachFailed(self, failure, leg):
        if leg is self.leg and not self.closed:
            self._dropLeg()
        if failure.check(MediaError):
            return failure
        log.failure("call {callId}: rebuilding the client leg failed", failure,
                    callId=self.callId)
        raise MediaError("rebuilding the client leg failed: %s" % (failure.getErrorMessage(),))

    def _reattachRelease(self):
        """For C{close}: stop the silence; @return: C{list} of L{Deferred}s to wait on."""
        if self._silence is not None:
            self._silence.stop()
            self._silence = None
        closing, self._oldLegClosing = self._oldLegClosing, None
        return [closing] if closing is not None else []

    def _webrtcFigures(self):
        """
        @return: the WebRTC leg's figures for the CDR, counters summed over
            every leg the call had, plus C{resumes} (how many times the
            client came back) when it did (C{dict}); C{None} if it had none.
        """
        legs = list(self._pastWebRTC)
        if self.tap is not None:
            legs.append(self.tap.stats())
        if not legs:
            return None
        figures = dict(legs[-1])
        for key in _ADDITIVE:
            if key in figures:
                figures[key] = sum(leg.get(key, 0) for leg in legs)
        if self.resumes:
            figures["resumes"] = self.resumes
        return figures
