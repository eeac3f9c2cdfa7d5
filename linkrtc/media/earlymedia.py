# -*- test-case-name: linkrtc.media.test.test_earlymedia -*-
"""
Early media towards SIP callers, a mix-in of
L{linkrtc.media.bridge.BridgeSession} (L{IEarlyMediaSession}).

When an incoming call rings, LinkRTC answers the SIP offer with its own
RTP (the codec chosen from the offer, an RTP port taken now) for a 183
Session Progress, and plays a ringback tone (L{linkrtc.media.ringback},
the country's plan from C{--ringback-tone}) to the caller until the client
answers. This is the gateway model of RFC 3960 §3: the 200 OK then
carries the same SDP (RFC 3261 §13.2.1: without PRACK the 183's answer is
not reliable; the 2xx repeats it, unchanged, o= version included), and the
relay or transcoder replaces the tone.
"""

from twisted.logger import Logger

from linkrtc.media.actions import RTPAudio
from linkrtc.media.ringback import Ringback

log = Logger()


class EarlyMedia:
    """L{linkrtc.media.bridge.BridgeSession}'s early media and ringback."""

    def earlyAnswer(self):
        """See L{linkrtc.interfaces.IEarlyMediaSession.earlyAnswer}."""
        if (not self.factory.earlyMedia or self.closed or self._offerless or self._outbound
                or self.leg is None or self._offer is None or self.mode is not None
                or self._answered is not None):
            return None
        if self._earlySdp is None:
            self._bind()
            self._earlySdp = self._sipAnswerSdp()
            log.info("call {callId}: early media (SIP {sip}, port {port})", callId=self.callId,
                     sip=self._sipCodec.name, port=self._rtpPort)
            self._startRingback()
        return self._earlySdp

    def _startRingback(self):
        """Play the factory's ringback tone to the SIP side, if it has one."""
        plan = self.factory.ringbackTone
        if plan is None or self._ringback is not None:
            return
        try:
            if self._audio is None:
                self._audio = RTPAudio(self._reactor, self.rtp, self._sipCodec.name,
                                       onSending=self._actionSending)
            if self._audio.busy:
                return
            self._ringback = Ringback(self._audio, plan)
            self._audio.runAction(self._ringback)
        except Exception:
            log.failure("call {callId}: the ringback tone did not start", callId=self.callId)
            self._ringback = None

    def _stopRingback(self):
        """The client answered (or the call failed): the tone stops."""
        ringback, self._ringback = self._ringback, None
        if ringback is not None:
            ringback.stop()

    @property
    def ringing(self):
        """C{True} while the ringback tone plays."""
        return self._ringback is not None and not self._ringback.done
