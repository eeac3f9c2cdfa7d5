# -*- test-case-name: linkrtc.call.test.test_passthrough -*-
"""
C{--media passthrough} (seed 000 §3): LinkRTC relays SDP and no media. The
SIP offer goes to the client as is, the client's answer goes back in the
200 OK, and the two ends exchange RTP directly.

An offerless INVITE works too: the client's offer goes in the 200 OK and the
SIP side's answer, from the ACK, goes to the client. The user's registered
SIP phones are sent an offerless INVITE as well
(L{PassthroughSession.phoneOffer} gives C{None}): the answering phone's
offer, in its 200, goes in the caller's 200 OK; the caller's answer, in
its ACK, goes in the ACK to the phone, which
L{linkrtc.call.sipphones.PhoneBranch} holds until then (RFC 3261
§13.2.1, §13.2.2.4).

Outbound calls (L{IOutboundMediaSession}): the client's offer goes into the
INVITE (minus the codecs the trunk does not allow) and the SIP answer goes
to the client as it is.

Passthrough suits only SIP peers that speak WebRTC (ICE, DTLS-SRTP): a
browser refuses a plain-RTP SDP ("Called with SDP without DTLS
fingerprint") and the call fails. Such an SDP from the SIP side (the
offer of an incoming call, the answer of an outgoing one) is logged once
per call saying so (L{plainRTP}): as a warning for the first such call of
a factory, at debug level for the later ones (L{PlainRTPWarnings}).
"""

from twisted.internet import defer
from twisted.logger import Logger
from zope.interface import implementer

from linkrtc.error import MediaError
from linkrtc.interfaces import IMediaFactory, IOutboundMediaSession, IPhoneMediaSession
from linkrtc.logging import debugEnabled
from linkrtc.media.sdp import DIRECTIONS, answerDirection

log = Logger()


def _text(sdp, what):
    if isinstance(sdp, bytes):
        try:
            sdp = sdp.decode("utf-8")
        except UnicodeDecodeError:
            raise MediaError(f"{what} is not UTF-8")
    if not isinstance(sdp, str) or not sdp.lstrip().startswith("v=0"):
        raise MediaError(f"{what} is not SDP (no v=0 line)")
    return sdp


def plainRTP(sdp):
    """
    @param sdp: an SDP (C{str}).
    @return: the transport protocol of its first audio stream (C{"RTP/AVP"})
        when the SDP has no C{a=fingerprint} line, at session or media
        level (RFC 8122 §5): a browser cannot set up DTLS-SRTP with it and
        refuses it. C{None} when it has a fingerprint (WebRTC).
    """
    lines = [line.strip() for line in sdp.splitlines()]
    if any(line.startswith("a=fingerprint:") for line in lines):
        return None
    for line in lines:
        if line.startswith("m=audio "):
            parts = line.split()
            if len(parts) > 2:
                return parts[2]
    return "no audio stream"


class PlainRTPWarnings:
    """
    The plain-RTP warnings of one factory's sessions: the first call whose
    SIP side is plain RTP is logged as a warning, later ones at debug
    level.

    A fast path (docs/performance.rst, "Fast paths"): a misconfigured
    passthrough switch (the cps benchmark's SIPp is one) wrote this
    warning for every call, one of three log lines per call; the operator
    needs it once. Once it is written and while debug is off, the SDP is
    not even scanned (L{wanted}).

    @ivar warned: C{True} once the warning was logged.
    """

    _FORMAT = ("call {call_id}: passthrough media: {what} is plain RTP ({proto}, no DTLS "
               "fingerprint); a browser refuses it and the call fails: use --media bridge "
               "(the default) unless the SIP peer speaks WebRTC")

    def __init__(self):
        self.warned = False

    def wanted(self):
        """@return: C{True} if a call's plain RTP would be logged now."""
        return not self.warned or debugEnabled()

    def plainRTP(self, callId, what, proto):
        """
        Log that call C{callId}'s C{what} (C{str}, e.g. C{"the SIP
        offer"}) is plain RTP with transport C{proto} (C{str}).
        """
        if not self.warned:
            self.warned = True
            log.warn(self._FORMAT + " (later calls like this one: at debug level)",
                     call_id=callId, what=what, proto=proto)
        elif debugEnabled():
            log.debug(self._FORMAT, call_id=callId, what=what, proto=proto)


#: RFC 3551's static audio payload types, by number.
_STATIC_AUDIO = {"0": "PCMU", "3": "GSM", "4": "G723", "8": "PCMA", "9": "G722", "18": "G729"}


def audioCodecs(sdp):
    """
    @param sdp: SDP text (C{str}).
    @return: the upper-case encoding names of the first C{m=audio}
        section's formats (rtpmap, else RFC 3551's static table), without
        C{TELEPHONE-EVENT} (C{set}; empty without an audio section).
    """
    names, formats, inAudio, seen = {}, [], False, False
    for line in sdp.splitlines():
        line = line.strip()
        if line.startswith("m="):
            if seen:
                break
            fields = line[2:].split()
            inAudio = seen = bool(fields) and fields[0] == "audio" and fields[1:2] != ["0"]
            formats = fields[3:] if inAudio else []
        elif inAudio and line.lower().startswith("a=rtpmap:"):
            pt, _, rest = line[9:].partition(" ")
            names[pt] = rest.split("/")[0].strip().upper()
    codecs = {names.get(pt) or _STATIC_AUDIO.get(pt) for pt in formats}
    return {c for c in codecs if c and c != "TELEPHONE-EVENT"}


def isHold(sdp):
    """
    @param sdp: an SDP offer (C{str}).
    @return: C{True} if it puts the call on hold: every audio stream (or the
        session) is C{sendonly} or C{inactive}, or its connection address is
        0.0.0.0 (RFC 3264 §8.4, RFC 2543 style).
    """
    lines = [line.strip() for line in sdp.splitlines()]
    if any(line.startswith("c=") and line.split()[-1] == "0.0.0.0" for line in lines):
        return True
    return any(line in ("a=sendonly", "a=inactive") for line in lines)


def direction(sdp):
    """
    @param sdp: SDP text (C{str}).
    @return: the first audio stream's direction attribute, else the
        session's, else C{"sendrecv"} (RFC 4566 §6).
    """
    session, section, inAudio = None, None, False
    for line in sdp.splitlines():
        line = line.strip()
        if line.startswith("m="):
            if inAudio:
                break
            inAudio = line.startswith("m=audio ")
        elif line.startswith("a=") and line[2:] in DIRECTIONS:
            if inAudio:
                section = line[2:]
            elif session is None and section is None:
                session = line[2:]
    return section or session or "sendrecv"


def audioTarget(sdp):
    """
    @param sdp: SDP text (C{str}).
    @return: C{(address, port)} of the first audio stream (its c=, else
        the session's), the address C{None} for a c=0.0.0.0 hold; C{None}
        without an audio stream.
    """
    address, port, inAudio = None, None, False
    for line in sdp.splitlines():
        line = line.strip()
        if line.startswith("m="):
            if inAudio:
                break
            inAudio = line.startswith("m=audio ")
            if inAudio:
                fields = line.split()
                port = fields[1] if len(fields) > 1 else None
        elif line.startswith("c=") and (inAudio or port is None):
            address = line.split()[-1]
    if port is None:
        return None
    return (None if address in ("0.0.0.0", "::") else address), port


def withDirection(sdp, wanted):
    """
    @param sdp: SDP text (C{str}) that is not C{wanted} (L{direction}).
    @param wanted: a direction attribute's value.
    @return: C{sdp} with its direction attributes dropped, C{a=wanted} at
        session level (none for C{sendrecv}) and its o= version plus one
        (RFC 3264 §8).
    """
    lines, added = [], wanted == "sendrecv"
    for line in sdp.splitlines():
        stripped = line.strip()
        if stripped.startswith("a=") and stripped[2:] in DIRECTIONS:
            continue
        if stripped.startswith("m=") and not added:
            lines.append("a=" + wanted)
            added = True
        if stripped.startswith("o="):
            fields = stripped.split()
            if len(fields) > 2 and fields[2].isdigit():
                fields[2] = str(int(fields[2]) + 1)
                line = " ".join(fields)
        lines.append(line)
    return "\r\n".join(lines) + "\r\n"


@implementer(IOutboundMediaSession, IPhoneMediaSession)
class PassthroughSession:
    """
    One call's passthrough media: it only checks and converts SDP.

    @ivar callId: the call's id.
    @ivar listener: the L{linkrtc.interfaces.IMediaListener} (never called:
        LinkRTC sees no RTP in passthrough).
    @ivar answer: the last SDP sent to SIP (C{bytes}) or C{None}.
    """

    def __init__(self, callId, listener, warnings=None):
        """
        @param warnings: the factory's L{PlainRTPWarnings} (a new one,
            for this session alone, if C{None}).
        """
        self.callId = callId
        self.listener = listener
        self.answer = None
        self.closed = False
        self._phoneSdp = None
        self._phoneAnswer = None
        self._warned = False
        self._warnings = warnings if warnings is not None else PlainRTPWarnings()

    def _checkWebRTC(self, sdp, what):
        """
        Log once per call (L{PlainRTPWarnings}) that C{sdp} (C{str}, the
        SIP side's C{what}) is plain RTP, which a browser refuses.

        @return: C{sdp}.
        """
        if self._warned or not self._warnings.wanted():
            return sdp
        proto = plainRTP(sdp)
        if proto is not None:
            self._warned = True
            self._warnings.plainRTP(self.callId, what, proto)
        return sdp

    def clientOffer(self, sipOffer):
        if sipOffer is None:
            return defer.succeed(None)
        # synchronous: no Deferred chain for what is known at once
        try:
            sdp = self._checkWebRTC(_text(sipOffer, "the SIP offer"), "the SIP offer")
        except Exception:
            return defer.fail()
        return defer.succeed(sdp)

    def sipAnswer(self, clientSdp):
        try:
            sdp = _text(clientSdp, "the client's SDP").encode("utf-8")
        except MediaError:
            return defer.fail()
        self.answer = sdp
        return defer.succeed(sdp)

    def sipAckBody(self, sdp):
        """
        The ACK's SDP as text, for the client (or the phone that answered
        an offerless INVITE: it becomes the SDP L{phoneReoffer} answers with).
        """
        try:
            text = _text(sdp, "the ACK's SDP")
        except MediaError:
            return defer.fail()
        if self._phoneAnswer is not None and self._phoneSdp is None:
            self._phoneSdp = text
        return defer.succeed(text)

    def sipReoffer(self, sdp):
        """
        Passthrough cannot ask the client for a new answer: the last answer
        is sent again (unchanged, so its C{o=} version stays valid, RFC 3264
        §8), and the offer's direction says whether this is hold. An offer
        without any audio codec of that answer fails (L{MediaError}: 488,
        the call keeps its media).
        """
        try:
            offer = _text(sdp, "the re-INVITE's SDP")
        except MediaError:
            return defer.fail()
        if self.answer is None:
            return defer.fail(MediaError("no previous answer"))
        ours = audioCodecs(self.answer.decode("utf-8", "replace"))
        if ours and not ours & audioCodecs(offer):
            # the client's answer cannot be sent again: 488, the media stays
            return defer.fail(MediaError("the re-offer shares no codec with the call (%s)"
                                         % ", ".join(sorted(ours))))
        return defer.succeed((self.answer, isHold(offer)))

    def sipOffer(self, clientOffer, codecs=None, srtp="off"):
        """
        The client's offer, minus the codecs not in C{codecs}
        (L{linkrtc.call.outbound.filterCodecs}), as C{bytes}; it is also
        what a re-INVITE is answered with. C{srtp} (the trunk's) changes
        nothing: the SDP passes through, its security is the client's.
        """
        from linkrtc.call.outbound import filterCodecs

        try:
            offer = filterCodecs(_text(clientOffer, "the client's offer"), codecs or ())
        except MediaError:
            return defer.fail()
        self.answer = offer.encode("utf-8")
        return defer.succeed(self.answer)

    def phoneOffer(self, sipOffer):
        """
        The caller's offer as is (C{str}): SIP phones get the caller's SDP;
        C{None} for an offerless INVITE (the phones are sent one too).
        """
        if sipOffer is None:
            return defer.succeed(None)
        try:
            self._phoneSdp = _text(sipOffer, "the SIP offer")
        except MediaError:
            return defer.fail()
        return defer.succeed(self._phoneSdp)

    def phoneAnswer(self, sdp):
        """
        The answering phone's SDP as is (C{bytes}), for the caller's 200 OK:
        its answer, or its offer to an offerless INVITE.
        """
        d = self.sipAnswer(sdp)
        if self.answer is not None:
            self._phoneAnswer = self.answer.decode("utf-8")
        return d

    def phoneReoffer(self, sdp):
        """
        See L{linkrtc.interfaces.IPhoneMediaSession.phoneReoffer}.
        Passthrough cannot ask the caller for a new answer, as in
        L{sipReoffer}: the phone's offer is answered with the caller's SDP
        (the direction mirrored, the o= version incremented when that
        changes it) only while the media stays: the same audio address and
        port as the phone's answer (c=0.0.0.0 is a hold) and a codec of
        that SDP. Otherwise L{MediaError} (488), nothing changes.
        """
        try:
            offer = _text(sdp, "the phone's re-offer")
        except MediaError:
            return defer.fail()
        if self._phoneSdp is None or self._phoneAnswer is None:
            return defer.fail(MediaError("a phone's re-offer before it answered"))
        ours = audioCodecs(self._phoneSdp)
        if ours and not ours & audioCodecs(offer):
            return defer.fail(MediaError("the re-offer shares no codec with the call (%s)"
                                         % ", ".join(sorted(ours))))
        target = audioTarget(offer)
        if target is None or (target[0] is not None and target != audioTarget(self._phoneAnswer)):
            return defer.fail(MediaError("passthrough cannot move the caller's media to a new "
                                         "address or port"))
        wanted = answerDirection(direction(offer))
        if direction(self._phoneSdp) != wanted:
            self._phoneSdp = withDirection(self._phoneSdp, wanted)
        return defer.succeed((self._phoneSdp.encode("utf-8"), isHold(offer)))

    def phoneSdp(self):
        """See L{linkrtc.interfaces.IPhoneMediaSession.phoneSdp}."""
        return None if self._phoneSdp is None else self._phoneSdp.encode("utf-8")

    def clientAnswer(self, sipAnswer):
        """The SIP answer, decoded (C{str}); the same every time for the same SDP."""
        d = defer.maybeDeferred(_text, sipAnswer, "the SIP answer")
        return d.addCallback(self._checkWebRTC, "the SIP answer")

    def hold(self, onHold):
        """Nothing to do: the client's own media goes quiet."""
        return defer.succeed(None)

    def sendDigits(self, digits):
        """
        Passthrough has no RTP to put RFC 4733 events in: the client sends
        them on its own media (C{RTCDTMFSender}). Logged and dropped.
        """
        log.info("call {call_id}: DTMF {digits} not sent (passthrough: the client sends it)",
                 call_id=self.callId, digits=digits)
        return defer.succeed(None)

    def stats(self):
        return {"mode": "passthrough"}

    def close(self):
        self.closed = True
        self.listener = None  # the call points at us: no cycle left to collect
        return defer.succeed(None)


@implementer(IMediaFactory)
class PassthroughMediaFactory:
    """Makes L{PassthroughSession}s (C{--media passthrough})."""

    name = "passthrough"

    def __init__(self):
        #: The plain-RTP warnings of every session this factory makes.
        self.warnings = PlainRTPWarnings()

    def newSession(self, callId, listener):
        return PassthroughSession(callId, listener, self.warnings)
