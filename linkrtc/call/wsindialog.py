# -*- test-case-name: linkrtc.call.test.test_wsindialog -*-
"""
What a SIP phone registered over WebSocket (JsSIP, SIP.js) may send in a
call, read without touching the media: its DTMF INFO (L{infoDigit}) and
its re-offers (L{reanswer}: hold, resume, a refresh with SDP).

The phone's media is the bridge's WebRTC leg (aiortc), which cannot be
renegotiated. A re-offer that keeps the transport (the same ICE
credentials, RFC 8839 §4.4.1.1.1, and DTLS fingerprint, no new streams,
the codec in use still offered with its payload type) is answered with
the SDP we last sent the phone, its directions mirrored (RFC 3264 §6.1)
and its C{a=setup} the DTLS role already in use (RFC 5763 §5, RFC 8842
§5.5); the o= version goes up only when that text changes (RFC 3264 §8).
Anything else (an ICE restart, a new fingerprint or role, a dropped
codec, another number of m= sections) is refused with the reason.
"""

from linkrtc.error import MediaError
from linkrtc.media import sdp as sdpmod

__all__ = ["DTMF_TYPES", "InfoError", "dtlsRole", "infoDigit", "reanswer"]

#: The INFO bodies read as DTMF (RFC 6086 §9 "legacy" INFO, no Info-Package).
DTMF_TYPES = ("application/dtmf-relay", "application/dtmf")

#: The keys one INFO may carry.
_DIGITS = "0123456789*#ABCD"

#: Longest C{Duration=} taken, in milliseconds (a key held a minute).
MAX_DURATION = 60000


class InfoError(ValueError):
    """
    An INFO body that is not a DTMF key; C{str(error)} is the reason phrase
    of the 400 (printable ASCII).
    """


def infoDigit(body, contentType):
    """
    The key of a DTMF INFO.

    @param body: the INFO's body (C{bytes}).
    @param contentType: C{"application/dtmf-relay"} (lines such as
        C{Signal=5} and C{Duration=100}: Signal a key, Duration
        optional, whole milliseconds 1 to L{MAX_DURATION}; other lines
        are skipped) or C{"application/dtmf"} (the key alone).
    @return: the key, one of C{0-9 * # A-D} (C{str}).
    @raise InfoError: for a body that is not one key, with the reason.
    """
    try:
        text = bytes(body or b"").decode("ascii")
    except UnicodeDecodeError:
        raise InfoError("DTMF body is not ASCII")
    if contentType == "application/dtmf":
        key = text.strip().upper()
        if len(key) != 1 or key not in _DIGITS:
            raise InfoError("application/dtmf body is not one of 0-9 * # A-D")
        return key
    signal = duration = None
    for line in text.splitlines():
        name, equals, value = line.partition("=")
        name = name.strip().lower()
        if not equals:
            continue
        if name == "signal":
            signal = value.strip().upper()
        elif name == "duration":
            duration = value.strip()
    if signal is None:
        raise InfoError("dtmf-relay body has no Signal line")
    if len(signal) != 1 or signal not in _DIGITS:
        raise InfoError("Signal is not one of 0-9 * # A-D")
    if duration is not None and not (duration.isdigit()
                                     and 0 < int(duration) <= MAX_DURATION):
        raise InfoError(f"Duration is not 1-{MAX_DURATION} ms")
    return signal


# -- SDP as text ----------------------------------------------------------------


def _lines(sdp):
    return [line for line in sdp.replace("\r\n", "\n").split("\n") if line.strip()]


def _split(lines):
    """@return: C{(session lines, [section lines])}."""
    session, sections = [], []
    for line in lines:
        if line.startswith("m="):
            sections.append([line])
        elif sections:
            sections[-1].append(line)
        else:
            session.append(line)
    return session, sections


def _attribute(lines, name):
    prefix = f"a={name}:"
    for line in lines:
        if line.startswith(prefix):
            return line[len(prefix):].strip()
    return None


def _transport(sdp):
    """
    @return: per m= section, C{(ufrag, pwd, fingerprint, setup)} (session
        level values inherited, C{None} when absent; the fingerprint in
        lower case).
    """
    session, sections = _split(_lines(sdp))
    result = []
    for section in sections:
        values = []
        for name in ("ice-ufrag", "ice-pwd", "fingerprint", "setup"):
            value = _attribute(section, name)
            if value is None:
                value = _attribute(session, name)
            values.append(value.lower() if name == "fingerprint" and value else value)
        result.append(tuple(values))
    return result


def dtlsRole(ours, theirs, weOffered):
    """
    The DTLS role we took in the call's first offer/answer (RFC 5763 §5).

    @param ours: our SDP (C{str}): the offer or the answer.
    @param theirs: the phone's SDP (C{str}).
    @param weOffered: C{True} when ours was the offer (C{actpass}): the
        phone's answer chose, its C{passive} makes us C{active}, its
        C{active} (or none: RFC 4145 §4.1's default) C{passive}; else our
        answer's C{a=setup} is our role (C{active} if absent).
    @return: C{"active"} or C{"passive"}.
    """
    if weOffered:
        setup = (_transport(theirs) or [(None,) * 4])[0][3]
        return "active" if setup == "passive" else "passive"
    setup = (_transport(ours) or [(None,) * 4])[0][3]
    return "passive" if setup == "passive" else "active"


def _keptCodec(inUse, offered):
    """
    @param inUse: the L{sdpmod.MediaDescription} of the first answer: its
        first codec is the one the stream runs.
    @raise MediaError: if that codec is not offered as it was.
    """
    codecs = inUse.codecs()
    if not codecs:
        return
    first = codecs[0]
    for codec in offered.codecs():
        if (codec.payloadType, codec.name, codec.clockRate) == (
                first.payloadType, first.name, first.clockRate):
            return
    raise MediaError(f"the re-offer drops {first.name}/{first.clockRate} "
                     f"(payload type {first.payloadType})")


def _setVersion(session, version):
    out = []
    for line in session:
        if line.startswith("o="):
            fields = line[2:].split()
            if len(fields) >= 3:
                fields[2] = str(version)
                line = "o=" + " ".join(fields)
        out.append(line)
    return out


def _version(lines):
    for line in lines:
        if line.startswith("o="):
            fields = line[2:].split()
            if len(fields) >= 3 and fields[2].isdigit():
                return int(fields[2])
    return 0


def reanswer(base, theirs, offer, role, lastSent, weOffered=False):
    """
    Answer a WebSocket phone's re-offer without changing the media.

    @param base: our SDP of the call's first offer/answer (C{str}).
    @param theirs: the phone's SDP of it (C{str}).
    @param offer: the phone's new offer (C{str}).
    @param role: our DTLS role, from L{dtlsRole}.
    @param lastSent: the SDP we last sent the phone (C{str}): the o=
        version follows it.
    @param weOffered: C{True} when C{base} was the offer: the codec in
        use is then the first of the phone's answer, else of ours.
    @return: C{(answer, hold)}: the answer (C{str}, CRLF lines) and
        whether the offer holds the call (its first audio stream
        C{sendonly} / C{inactive}; c=0.0.0.0 is usual in WebRTC, RFC 8839
        §4.2.2, and is not a hold here).
    @raise MediaError: with the reason, for an offer that is not SDP or
        would change the transport or codec (nothing is changed).
    """
    parsed = sdpmod.parseSDP(offer)
    session, sections = _split(_lines(base))
    if len(parsed.media) != len(sections):
        raise MediaError(f"the re-offer has {len(parsed.media)} m= sections, "
                         f"the call {len(sections)}")
    before = _transport(theirs)
    answered = sdpmod.parseSDP(theirs if weOffered else base).media
    after = _transport(offer)
    hold = None
    answer = []
    for i, (section, m) in enumerate(zip(sections, parsed.media)):
        ours = sdpmod.parseSDP("v=0\r\n" + section[0] + "\r\n").media[0]
        if m.media != ours.media:
            raise MediaError(f"m= section {i} is {m.media}, was {ours.media}")
        if ours.port == 0 or m.port == 0:
            if ours.port != 0:
                raise MediaError(f"the re-offer disables m= section {i}")
            answer.append(section)
            continue
        ufrag, pwd, fingerprint, setup = after[i]
        was = before[i] if i < len(before) else (None,) * 4
        if (ufrag, pwd) != was[:2]:
            raise MediaError("the re-offer restarts ICE (new ice-ufrag/ice-pwd)")
        if fingerprint != was[2]:
            raise MediaError("the re-offer changes the DTLS fingerprint")
        phoneRole = "passive" if role == "active" else "active"
        if setup not in (None, "actpass", phoneRole):
            raise MediaError(f"the re-offer's a=setup:{setup} changes the DTLS role")
        if i < len(answered):
            _keptCodec(answered[i], m)
        if m.media == "audio" and hold is None:
            # Direction only: c=0.0.0.0 is no hold in WebRTC (ICE picks the address).
            hold = m.direction in ("sendonly", "inactive")
        direction = f"a={sdpmod.answerDirection(m.direction)}"
        lines = []
        for line in section:
            name = line[2:].split(":", 1)[0] if line.startswith("a=") else None
            if name in sdpmod.DIRECTIONS:
                line = direction  # in its place: an unchanged answer keeps its text
            elif name == "setup":
                line = f"a=setup:{role}"
            lines.append(line)
        if direction not in lines:
            lines.append(direction)
        answer.append(lines)
    session = [line for line in session
               if not (line.startswith("a=") and line[2:] in sdpmod.DIRECTIONS)]
    version = _version(_lines(lastSent))

    def build(v):
        return "\r\n".join(_setVersion(session, v) + [line for s in answer for line in s]) + "\r\n"

    text = build(version)
    if text != lastSent:
        text = build(version + 1)
    return text, bool(hold)
