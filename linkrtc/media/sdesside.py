# -*- test-case-name: linkrtc.media.test.test_sdes -*-
"""
SDES-SRTP for the bridge's SIP leg, a mix-in of
L{linkrtc.media.bridge.BridgeSession} (RFC 4568; the keys and libsrtp
sessions are L{linkrtc.media.sdes}'s).

 - Incoming calls: an offer's C{RTP/SAVP} stream with a usable
   C{a=crypto} is answered C{RTP/SAVP} with the offer's tag and suite and
   our own key; a plain C{RTP/AVP} stream is answered plain, whichever
   comes first in the offer. A call from a trunk with C{srtp =
   "required"} (L{linkrtc.media.sdes.TrunkPolicy}) must offer SRTP, else
   L{MediaError} (488).
 - Outgoing calls through a trunk with C{srtp} C{optional} or
   C{required}: our offer is C{RTP/SAVP} with one C{a=crypto} (tag 1,
   C{AES_CM_128_HMAC_SHA1_80}); the answer must echo the tag. A plain
   answer is taken for C{optional} (the call runs plain RTP) and fails
   the call for C{required}.
 - Once a call runs SRTP, re-offers and answers must keep it (no
   downgrade), and a plain call is not upgraded.
"""

from twisted.logger import Logger

from linkrtc.error import MediaError
from linkrtc.media.rtp import RTCPSink, RTPSession
from linkrtc.media.sdes import SDES, SRTCPSink, SRTPFailures, SRTPSession, chooseAudio

log = Logger()


class SDESSide:
    """
    L{linkrtc.media.bridge.BridgeSession}'s SDES-SRTP.

    @ivar _sdes: the call's L{SDES} while the SIP leg is (or is to be)
        SRTP, else C{None}.
    @ivar _srtpMode: the outbound trunk's C{srtp} (C{"off"},
        C{"optional"}, C{"required"}).
    """

    _sdes = None
    _srtpMode = "off"

    def _offerSRTP(self, srtp):
        """An outbound call through a trunk whose C{srtp} is C{srtp}: offer SDES unless C{off}."""
        if srtp not in ("off", "optional", "required"):
            raise MediaError("unknown srtp setting %r" % (srtp,))
        self._srtpMode = srtp
        if srtp != "off":
            self._sdes = SDES()

    def _offerSRTPIfRequired(self):
        """An offerless INVITE: our offer (in the 2xx) is SRTP if its trunk requires it."""
        trunk = self._requiringTrunk()
        if trunk is not None:
            self._offerSRTP("required")

    def _requiringTrunk(self):
        """@return: the name of the trunk an incoming call comes from if it requires SRTP."""
        policy = getattr(self.factory, "srtpPolicy", None)
        if policy is None or self._outbound:
            return None
        return policy.requiredFor(self.listener)

    def _offeredStream(self, desc):
        """
        The audio stream of an offer (an INVITE's, a re-INVITE's, the 2xx's
        to an offerless INVITE), its keys taken.

        @return: C{(index, media)}.
        @raise MediaError: no usable stream, SRTP required and not offered,
            or SRTP added to a plain call.
        """
        established = self._sdes is not None and self._sdes.remote is not None
        trunk = None
        if established:
            required = True
        elif self._outbound:
            required = self._srtpMode == "required"
        else:
            trunk = self._requiringTrunk()
            required = trunk is not None
        try:
            index, m, crypto = chooseAudio(desc, required)
        except MediaError as e:
            if trunk is not None:
                raise MediaError("trunk %s requires SRTP (srtp = required) and the offer has no "
                                 "RTP/SAVP audio with a usable a=crypto" % (trunk,)) from e
            raise
        if crypto is None:
            if self._sdes is not None:
                self._plainAfterAll()
            return index, m
        if self._sdes is None:
            if self.rtp is not None:
                raise MediaError("SRTP cannot be added to a call that runs plain RTP")
            self._sdes = SDES()
        if self._sdes.takeOffer(m, crypto) and self.rtp is not None:
            self.rtp.setContext(self._sdes.context(self.rtp.context))
        return index, m

    def _answeredStream(self, desc):
        """
        The audio stream of an answer to our offer (the trunk's 18x/2xx, a
        re-INVITE's 2xx), its keys taken.

        @return: C{(index, media)}.
        @raise MediaError: no usable stream, or SRTP required (by the
            trunk, or because the call runs it) and the answer is plain or
            does not echo our tag and suite.
        """
        if self._sdes is None:
            return desc.audio()
        required = self._sdes.remote is not None or self._srtpMode == "required"
        try:
            index, m, crypto = chooseAudio(desc, required)
        except MediaError as e:
            if self._srtpMode == "required":
                raise MediaError("the trunk requires SRTP (srtp = required) and its answer "
                                 "has no RTP/SAVP audio with a usable a=crypto") from e
            raise
        if crypto is None:
            self._plainAfterAll()
            return index, m
        if self._sdes.takeAnswer(m):
            self.rtp.setContext(self._sdes.context(self.rtp.context))
        return index, m

    def _plainAfterAll(self):
        """A trunk with C{srtp = "optional"} chose plain RTP: the call runs plain."""
        log.info("call {callId}: the trunk chose plain RTP (srtp = optional)",
                 callId=self.callId)
        self._sdes = None
        if self.rtp is not None:
            self.rtp.setPlain()

    def _makeRTP(self, **kwargs):
        """@return: the SIP leg's L{RTPSession}: an L{SRTPSession} for an SRTP call."""
        if self._sdes is None:
            return RTPSession(self._reactor, **kwargs)
        rtp = SRTPSession(self._reactor, SRTPFailures(self.callId), **kwargs)
        if self._sdes.remote is not None:
            rtp.setContext(self._sdes.context())
        return rtp

    def _makeRTCP(self):
        """@return: the protocol for the RTCP port: an L{SRTCPSink} for an SRTP call."""
        if isinstance(self.rtp, SRTPSession):
            return SRTCPSink(self.rtp)
        return RTCPSink()

    def _sdpSecurity(self):
        """@return: L{linkrtc.media.sdp.buildSDP}'s C{proto} and C{crypto} for our SDP (C{dict})."""
        if self._sdes is None:
            return {}
        return {"proto": self._sdes.proto, "crypto": self._sdes.line()}
