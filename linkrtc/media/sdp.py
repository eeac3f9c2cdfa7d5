# -*- test-case-name: linkrtc.media.test.test_sdp -*-
"""
SDP for the SIP side of the media bridge (RFC 4566 syntax, RFC 3264
offer/answer, RFC 3551 static payload types, RFC 4733 telephone-event).

Pure functions and plain objects: no sockets, no aiortc. Everything that
cannot be understood raises L{linkrtc.error.MediaError}, which the call
engine turns into 488 Not Acceptable Here.
"""

import ipaddress
from dataclasses import dataclass, field

from linkrtc.error import MediaError

#: The SIP-side audio codecs the bridge speaks, in its own order of preference.
SIP_CODECS = ("PCMU", "PCMA", "G722")

#: Every SIP-side audio codec the bridge answers with: L{SIP_CODECS} and
#: Opus (RFC 7587: C{opus/48000/2}, a dynamic payload type), which the
#: bridge offers only when a trunk's C{codecs} names it.
ALL_SIP_CODECS = SIP_CODECS + ("OPUS",)

#: RTP clock rate (Hz) of each audio codec (RFC 3551 §4.5.2: 8000 for
#: G.722 too; RFC 7587 §4.1: always 48000 for Opus).
CLOCK_RATES = {"PCMU": 8000, "PCMA": 8000, "G722": 8000, "OPUS": 48000}

#: Dynamic payload type we use for Opus when we make the offer.
OPUS_PT = 111

#: RFC 3551 §6 static payload types for the codecs above: pt -> (name, clockRate).
STATIC_PAYLOAD_TYPES = {0: ("PCMU", 8000), 8: ("PCMA", 8000), 9: ("G722", 8000)}
STATIC_BY_NAME = {name: pt for pt, (name, rate) in STATIC_PAYLOAD_TYPES.items()}

#: Dynamic payload type we use for telephone-event when we make the offer.
TELEPHONE_EVENT_PT = 101

DIRECTIONS = ("sendrecv", "sendonly", "recvonly", "inactive")
_ANSWER_DIRECTION = {
    "sendrecv": "sendrecv",
    "sendonly": "recvonly",
    "recvonly": "sendonly",
    "inactive": "inactive",
}


@dataclass(frozen=True)
class Codec:
    """
    One negotiated RTP payload format.

    @ivar name: encoding name, upper case (C{"PCMU"}, C{"TELEPHONE-EVENT"}).
    @ivar clockRate: RTP clock rate in Hz (8000 for G.722 too, RFC 3551 §4.5.2).
    @ivar payloadType: the payload type number (0-127).
    @ivar channels: number of channels.
    """

    name: str
    clockRate: int
    payloadType: int
    channels: int = 1


@dataclass
class MediaDescription:
    """
    One C{m=} section.

    @ivar media: C{"audio"}, C{"video"}, ...
    @ivar port: transport port (0 = rejected/disabled stream).
    @ivar proto: C{"RTP/AVP"}, C{"UDP/TLS/RTP/SAVPF"}, ...
    @ivar formats: the format tokens of the m= line, as C{str}.
    @ivar address: C{(addrType, address)} from the media-level c= line or
        the session-level one, C{None} if neither.
    @ivar rtpmap: C{{pt: (NAME, clockRate, channels)}} with NAME upper case.
    @ivar fmtp: C{{pt: str}}.
    @ivar direction: one of L{DIRECTIONS} (session-level value inherited).
    @ivar ptime: packet time in milliseconds or C{None}.
    @ivar crypto: the values of its C{a=crypto} attributes (RFC 4568 §9.1),
        C{str}s in order, unchecked (L{linkrtc.media.sdes.parseCrypto}).
    @ivar rtcpFeedback: C{{pt or "*": [str]}}: the C{a=rtcp-fb} values
        (RFC 4585 §4.2), e.g. C{{"*": ["nack", "nack pli"]}}.
    """

    media: str
    port: int
    proto: str
    formats: list
    address: tuple = None
    rtpmap: dict = field(default_factory=dict)
    fmtp: dict = field(default_factory=dict)
    direction: str = "sendrecv"
    ptime: int = None
    crypto: list = field(default_factory=list)
    rtcpFeedback: dict = field(default_factory=dict)

    def codecs(self):
        """
        @return: C{list} of L{Codec} for the numeric formats of this
            section, in the m= line's order; formats without rtpmap are
            resolved from RFC 3551's static table, unknown ones skipped.
        """
        result = []
        for fmt in self.formats:
            try:
                pt = int(fmt)
            except ValueError:
                continue
            if pt in self.rtpmap:
                name, rate, channels = self.rtpmap[pt]
                result.append(Codec(name, rate, pt, channels))
            elif pt in STATIC_PAYLOAD_TYPES:
                name, rate = STATIC_PAYLOAD_TYPES[pt]
                result.append(Codec(name, rate, pt))
        return result

    @property
    def isHold(self):
        """C{True} if the far end will not send to us: sendonly/inactive or c=0.0.0.0 (RFC 2543)."""
        if self.direction in ("sendonly", "inactive"):
            return True
        return self.address is not None and self.address[1] in ("0.0.0.0", "::")


@dataclass
class SessionDescription:
    """
    A parsed SDP.

    @ivar origin: the o= line's fields (C{list} of C{str}).
    @ivar media: C{list} of L{MediaDescription}.
    """

    origin: list
    media: list

    def audio(self):
        """
        @return: C{(index, MediaDescription)} of the first usable RTP/AVP(F)
            audio stream.
        @raise MediaError: if there is none.
        """
        for i, m in enumerate(self.media):
            if m.media == "audio" and m.port != 0 and m.proto.upper() in ("RTP/AVP", "RTP/AVPF"):
                if m.address is None:
                    raise MediaError("SDP audio stream has no connection address")
                return i, m
        raise MediaError("SDP has no usable RTP/AVP audio stream")


def _fail(reason):
    raise MediaError("Unparseable SDP: " + reason)


def _parseConnection(value):
    parts = value.split()
    if len(parts) != 3 or parts[0] != "IN" or parts[1] not in ("IP4", "IP6"):
        _fail("bad c= line %r" % (value,))
    address = parts[2].split("/")[0]
    try:
        ip = ipaddress.ip_address(address)
    except ValueError:
        # A host name is allowed by RFC 4566 but we do not resolve in media.
        _fail("c= address is not an IP address: %r" % (address,))
    if (ip.version == 4) != (parts[1] == "IP4"):
        _fail("c= address type does not match %r" % (value,))
    return (parts[1], str(ip))


#: Longest packet time we take from a C{ptime} attribute, milliseconds.
MAX_PTIME = 10000


def _ptime(text):
    """
    The packet time of an C{a=ptime} value (RFC 4566 §6: milliseconds,
    possibly with a fraction).

    @return: C{int} milliseconds (1..L{MAX_PTIME}) or C{None} for a value
        that is no such number (C{inf}, C{nan}, C{-5}, C{abc}): the
        attribute is then ignored, as unknown ones are.
    """
    try:
        value = float(text)
    except ValueError:
        return None
    if not 1 <= value <= MAX_PTIME:  # (also False for nan and inf)
        return None
    return int(value)


def parseSDP(data):
    """
    Parse a session description.

    @param data: C{bytes} (UTF-8, as SIP carries it) or C{str}.
    @return: a L{SessionDescription}.
    @raise MediaError: on any syntax fault: missing v=0, a line that is not
        C{x=value}, a malformed m=, c=, rtpmap or port, or no m= line.
    """
    if data is None:
        _fail("empty")
    if isinstance(data, bytes):
        try:
            data = data.decode("utf-8")
        except UnicodeDecodeError:
            _fail("not UTF-8")
    lines = [line for line in data.replace("\r\n", "\n").split("\n") if line.strip()]
    if not lines or lines[0].strip() != "v=0":
        _fail("does not start with v=0")
    origin = []
    sessionAddress = None
    sessionDirection = "sendrecv"
    media = []
    current = None
    for line in lines[1:]:
        line = line.rstrip()
        if len(line) < 2 or line[1] != "=" or not line[0].isalpha():
            _fail("bad line %r" % (line[:40],))
        kind, value = line[0], line[2:]
        if kind == "o":
            origin = value.split()
        elif kind == "m":
            parts = value.split()
            if len(parts) < 4:
                _fail("bad m= line %r" % (value,))
            try:
                port = int(parts[1].split("/")[0])
            except ValueError:
                _fail("bad m= port %r" % (parts[1],))
            if not 0 <= port <= 65535:
                _fail("m= port out of range")
            current = MediaDescription(parts[0].lower(), port, parts[2], parts[3:])
            current.direction = None
            media.append(current)
        elif kind == "c":
            address = _parseConnection(value)
            if current is None:
                sessionAddress = address
            else:
                current.address = address
        elif kind == "a":
            name, _, arg = value.partition(":")
            if name in DIRECTIONS:
                if current is None:
                    sessionDirection = name
                else:
                    current.direction = name
            elif current is None:
                continue
            elif name == "rtpmap":
                ptText, _, spec = arg.partition(" ")
                bits = spec.strip().split("/")
                try:
                    pt = int(ptText)
                    rate = int(bits[1])
                    channels = int(bits[2]) if len(bits) > 2 else 1
                except (ValueError, IndexError):
                    _fail("bad rtpmap %r" % (arg,))
                if not 0 <= pt <= 127:
                    _fail("rtpmap payload type out of range")
                current.rtpmap[pt] = (bits[0].upper(), rate, channels)
            elif name == "fmtp":
                ptText, _, params = arg.partition(" ")
                try:
                    current.fmtp[int(ptText)] = params.strip()
                except ValueError:
                    continue
            elif name == "ptime":
                current.ptime = _ptime(arg)
            elif name == "crypto":
                current.crypto.append(arg.strip())
            elif name == "rtcp-fb":
                _addFeedback(current, arg)
    if not media:
        _fail("no m= line")
    for m in media:
        if m.address is None:
            m.address = sessionAddress
        if m.direction is None:
            m.direction = sessionDirection
    return SessionDescription(origin, media)


def chooseCodec(mediaDescription, supported=ALL_SIP_CODECS, preference=None):
    """
    Pick the audio codec and telephone-event format to answer with.

    The offerer's order wins (RFC 3264 §6.1) unless C{preference} is
    given (a trunk's C{codecs} order: RFC 3264 §6.1 lets the answerer
    choose among the offered formats); the offer's payload type numbers
    are kept. Opus is taken at 48000 Hz only (RFC 7587 §7), the others at
    8000 Hz; telephone-event at 8000 Hz.

    @param mediaDescription: the offered L{MediaDescription}.
    @param supported: the codec names we accept (upper case).
    @param preference: C{None}, or codec names (any case) in our order
        of preference; offered codecs it leaves out come after, in the
        offer's order.
    @return: C{(codec, telephoneEvent)}: a L{Codec} and a L{Codec} or C{None}.
    @raise MediaError: if no offered codec is one we support.
    """
    usable = []
    event = None
    for codec in mediaDescription.codecs():
        if codec.name in supported and codec.clockRate == CLOCK_RATES.get(codec.name):
            usable.append(codec)
        elif event is None and codec.name == "TELEPHONE-EVENT" and codec.clockRate == 8000:
            event = codec
    if not usable:
        raise MediaError("SDP shares no codec with us (we support %s)" % ", ".join(supported))
    if preference:
        order = [name.upper() for name in preference]
        usable.sort(key=lambda c: order.index(c.name) if c.name in order else len(order))
    return usable[0], event


def answerDirection(offered):
    """
    @param offered: the offer's direction attribute.
    @return: our answer's direction (RFC 3264 §6.1): sendonly -> recvonly,
        recvonly -> sendonly, inactive -> inactive, else sendrecv.
    """
    return _ANSWER_DIRECTION.get(offered, "sendrecv")


def addressType(address):
    """@return: C{"IP6"} for an IPv6 literal, else C{"IP4"}."""
    return "IP6" if ":" in address else "IP4"


def _codecLines(codecs):
    lines = []
    for c in codecs:
        if c.name == "TELEPHONE-EVENT":
            lines.append("a=rtpmap:%d telephone-event/%d" % (c.payloadType, c.clockRate))
            lines.append("a=fmtp:%d 0-16" % (c.payloadType,))
        elif c.name == "OPUS":
            # RFC 7587 §7: always opus/48000/2, whatever is sent.
            lines.append("a=rtpmap:%d opus/48000/2" % (c.payloadType,))
            lines.append("a=fmtp:%d useinbandfec=1" % (c.payloadType,))
        else:
            lines.append("a=rtpmap:%d %s/%d" % (c.payloadType, c.name, c.clockRate))
    return lines


def buildSDP(address, port, codecs, sessionId, version=0, direction="sendrecv",
             ptime=20, rejected=(), audioIndex=0, proto="RTP/AVP", crypto=None,
             accepted=None):
    """
    Make the SIP side's SDP (offer or answer).

    @param address: the IP literal for o= and c= (IPv4 or IPv6).
    @param port: our RTP port (RTCP is port + 1, RFC 3550 §11).
    @param codecs: C{list} of L{Codec} for the m= line (telephone-event included).
    @param sessionId: C{int} for the o= line, stable for the session.
    @param version: o= version, incremented on each new SDP (RFC 3264 §8).
    @param direction: the direction attribute.
    @param ptime: packet time in milliseconds.
    @param rejected: L{MediaDescription}s of the offer that we reject, in
        order with the audio stream at C{audioIndex} (RFC 3264 §6: the answer
        has as many m= lines as the offer).
    @param proto: the audio m= line's profile (C{"RTP/SAVP"} with SDES).
    @param crypto: C{None}, or the value of our C{a=crypto} attribute
        (RFC 4568 §9.1; L{linkrtc.media.sdes.SDES.line}).
    @param accepted: C{None} or C{{index: [line]}}: the sections (C{str}
        lines, from L{videoSection}) that stand at those indexes instead
        of the rejected stream there.
    @return: C{bytes} with CRLF line ends.
    """
    addrType = addressType(address)
    lines = [
        "v=0",
        "o=linkrtc %d %d IN %s %s" % (sessionId, version, addrType, address),
        "s=LinkRTC",
        "c=IN %s %s" % (addrType, address),
        "t=0 0",
    ]
    audio = ["m=audio %d %s %s" % (port, proto, " ".join(str(c.payloadType) for c in codecs))]
    audio += _codecLines(codecs)
    if crypto is not None:
        audio.append("a=crypto:" + crypto)
    audio += ["a=ptime:%d" % (ptime,), "a=" + direction]
    rejected = list(rejected)
    sections = []
    for i in range(len(rejected) + 1):
        if i == audioIndex:
            sections.append(audio)
        elif accepted and i in accepted:
            sections.append(list(accepted[i]))
        else:
            m = rejected[i if i < audioIndex else i - 1]
            sections.append(["m=%s 0 %s %s" % (m.media, m.proto, " ".join(m.formats))])
    for section in sections:
        lines += section
    return ("\r\n".join(lines) + "\r\n").encode("ascii")


def sipCodec(name):
    """
    @param name: one of L{ALL_SIP_CODECS}.
    @return: the L{Codec} we offer for it (static payload types, Opus on
        L{OPUS_PT} with two channels, RFC 7587 §7).
    """
    if name == "OPUS":
        return Codec("OPUS", 48000, OPUS_PT, 2)
    return Codec(name, CLOCK_RATES[name], STATIC_BY_NAME[name])


def ourCodecs(eventPayloadType=TELEPHONE_EVENT_PT, first=None, order=None):
    """
    @param first: a codec name to put first (to favour the relay path).
    @param order: C{None} (L{SIP_CODECS}), or codec names (any case) in
        order of preference, e.g. a trunk's C{codecs}: the audio codecs
        named there that we speak (L{ALL_SIP_CODECS}, Opus included), in
        that order; telephone-event is added unless C{order} lists codecs
        without it.
    @return: the L{Codec} list we offer on the SIP side (telephone-event last).
    """
    if order:
        wanted = [n.upper() for n in order]
        names = []
        for n in wanted:
            if n in ALL_SIP_CODECS and n not in names:
                names.append(n)
        withEvent = "TELEPHONE-EVENT" in wanted
    else:
        names = list(SIP_CODECS)
        withEvent = True
    if first in names:
        names.remove(first)
        names.insert(0, first)
    codecs = [sipCodec(n) for n in names]
    if withEvent:
        codecs.append(Codec("TELEPHONE-EVENT", 8000, eventPayloadType))
    return codecs


# -- video (relayed without decoding) -----------------------------------------

#: The video codecs the bridge relays, packet by packet, in its own order
#: of preference: VP8 (RFC 7741) and H.264 (RFC 6184) in packetization
#: mode 1 with a Baseline profile, which every browser decodes.
VIDEO_CODECS = ("VP8", "H264")

#: RTP clock rate of video (RFC 7741 §6.1, RFC 6184 §8.1), Hz.
VIDEO_CLOCK_RATE = 90000

#: The H.264 format we offer and answer with: Constrained Baseline level
#: 3.1, non-interleaved (RFC 6184 §8.1), as browsers offer it.
H264_FMTP = "level-asymmetry-allowed=1;packetization-mode=1;profile-level-id=42e01f"

#: The RTCP feedback the bridge relays for video: generic NACK, PLI
#: (RFC 4585 §4.2) and FIR (RFC 5104 §7.1).
VIDEO_FEEDBACK = ("nack", "nack pli", "ccm fir")

#: Dynamic payload types we use when we offer video ourselves.
VIDEO_PAYLOAD_TYPES = {"VP8": 96, "H264": 97}


@dataclass(frozen=True)
class VideoCodec:
    """
    One relayable video payload format.

    @ivar name: C{"VP8"} or C{"H264"}.
    @ivar payloadType: the payload type number (96-127 in practice).
    @ivar fmtp: the C{a=fmtp} parameters we write for it (C{""}: none).
    """

    name: str
    payloadType: int
    fmtp: str = ""


def _addFeedback(m, arg):
    """Record one C{a=rtcp-fb:<pt|*> <type> [<param>]} value in C{m.rtcpFeedback}."""
    key, _, value = arg.strip().partition(" ")
    value = " ".join(value.split()).lower()
    if key and value:
        m.rtcpFeedback.setdefault(key, []).append(value)


def fmtpParameters(text):
    """
    @param text: an C{a=fmtp} value after the payload type (C{"a=1;b=2"}).
    @return: C{dict} of lower-case names to values (C{str}).
    """
    result = {}
    for item in (text or "").split(";"):
        name, _, value = item.strip().partition("=")
        if name:
            result[name.strip().lower()] = value.strip()
    return result


def h264Relayable(fmtp):
    """
    @param fmtp: the C{a=fmtp} text of an H.264 format (C{""} if none).
    @return: C{True} if a browser can take it as it is: packetization
        mode 1 (RFC 6184 §8.1) and a Baseline profile (profile_idc 0x42;
        C{profile-level-id} absent means 420010, Baseline).
    """
    params = fmtpParameters(fmtp)
    if params.get("packetization-mode", "0") != "1":
        return False
    return params.get("profile-level-id", "420010").lower().startswith("42")


def videoStream(desc):
    """
    @param desc: a L{SessionDescription}.
    @return: C{(index, MediaDescription)} of the first enabled RTP/AVP(F)
        video stream that has a connection address, or C{None}.
    """
    for i, m in enumerate(desc.media):
        if (m.media == "video" and m.port != 0 and m.proto.upper() in ("RTP/AVP", "RTP/AVPF")
                and m.address is not None):
            return i, m
    return None


def videoCodecs(m, supported=VIDEO_CODECS):
    """
    The video formats of an offer the bridge can relay, in the offer's order.

    @param m: a video L{MediaDescription}.
    @param supported: codec names (upper case) we accept.
    @return: C{list} of L{VideoCodec} with the offer's payload types
        (VP8/90000; H264/90000 when L{h264Relayable}, written back with
        L{H264_FMTP}); possibly empty.
    """
    result = []
    for codec in m.codecs():
        if codec.name not in supported or codec.clockRate != VIDEO_CLOCK_RATE:
            continue
        if codec.name == "H264":
            if not h264Relayable(m.fmtp.get(codec.payloadType, "")):
                continue
            result.append(VideoCodec("H264", codec.payloadType, H264_FMTP))
        else:
            result.append(VideoCodec(codec.name, codec.payloadType))
    return result


def videoFeedback(m, payloadType, wanted=VIDEO_FEEDBACK):
    """
    @param m: a video L{MediaDescription}.
    @param payloadType: the format's payload type.
    @return: C{tuple} of the C{wanted} feedback values C{m} lists for
        C{payloadType} or for C{*} (RFC 4585 §4.2), in C{wanted}'s order.
    """
    offered = set(m.rtcpFeedback.get(str(payloadType), ())) | set(m.rtcpFeedback.get("*", ()))
    return tuple(value for value in wanted if value in offered)


def videoSection(port, codec, direction="sendrecv", proto="RTP/AVP", feedback=VIDEO_FEEDBACK):
    """
    Our C{m=video} section (offer or answer) for one relayed format.

    @param port: our video RTP port (RTCP on port + 1).
    @param codec: the L{VideoCodec}.
    @param direction: the direction attribute.
    @param proto: C{"RTP/AVP"} or C{"RTP/AVPF"} (an answer keeps the offer's).
    @param feedback: the C{a=rtcp-fb} values to write (RFC 4585 §4.2).
    @return: C{list} of C{str} lines for L{buildSDP}'s C{accepted}.
    """
    pt = codec.payloadType
    lines = ["m=video %d %s %d" % (port, proto, pt),
             "a=rtpmap:%d %s/%d" % (pt, codec.name, VIDEO_CLOCK_RATE)]
    if codec.fmtp:
        lines.append("a=fmtp:%d %s" % (pt, codec.fmtp))
    lines += ["a=rtcp-fb:%d %s" % (pt, value) for value in feedback]
    lines.append("a=" + direction)
    return lines


def ourVideoCodec(name):
    """@return: the L{VideoCodec} we offer for C{name} (L{VIDEO_PAYLOAD_TYPES})."""
    return VideoCodec(name, VIDEO_PAYLOAD_TYPES[name], H264_FMTP if name == "H264" else "")
