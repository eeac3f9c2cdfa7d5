# -*- test-case-name: linkrtc.call.test.test_outbound -*-
"""
Codec filtering of SDP offers: what a trunk's C{codecs} setting keeps of a
client's offer (passthrough media, and the outbound dialer's default offer).
"""

import re

from linkrtc.error import MediaError

#: Static RTP payload types (RFC 3551) by encoding name, for m-lines
#: without C{a=rtpmap}.
_STATIC_PT = {"0": "PCMU", "3": "GSM", "4": "G723", "8": "PCMA", "9": "G722", "18": "G729"}


def filterCodecs(sdp, allowed):
    """
    Keep only the C{allowed} codecs in the audio and video m-lines of an
    offer (their C{a=rtpmap}, C{a=fmtp}, C{a=rtcp-fb} lines go too).

    @param sdp: C{str}.
    @param allowed: encoding names (C{"PCMU"}, C{"opus"},
        C{"telephone-event"} ...), any case; empty keeps everything.
    @return: the filtered SDP, C{str}, with CRLF line ends.
    @raise MediaError: an audio m-line keeps no codec at all.
    """
    if not allowed:
        return sdp
    allowed = {a.lower() for a in allowed}
    lines = sdp.replace("\r\n", "\n").split("\n")
    if lines and lines[-1] == "":
        lines.pop()
    sections = [[]]
    for line in lines:
        if line.startswith("m="):
            sections.append([])
        sections[-1].append(line)
    out = list(sections[0])
    for section in sections[1:]:
        parts = section[0][2:].split()
        if len(parts) < 4 or parts[0] not in ("audio", "video") or not all(
                p.isdigit() for p in parts[3:]):
            out.extend(section)
            continue
        names = {pt: _STATIC_PT.get(pt, "") for pt in parts[3:]}
        for line in section[1:]:
            if line.startswith("a=rtpmap:"):
                pt, _, rest = line[len("a=rtpmap:"):].partition(" ")
                names[pt] = rest.split("/", 1)[0]
        keep = [pt for pt in parts[3:] if names.get(pt, "").lower() in allowed]
        if not keep:
            if parts[0] == "audio":
                raise MediaError("the offer has no codec the trunk allows (%s)"
                                 % (", ".join(sorted(allowed)),))
            out.append(" ".join(["m=" + parts[0], "0"] + parts[2:3] + parts[3:4]))
            continue
        dropped = set(parts[3:]) - set(keep)
        out.append(" ".join(["m=" + parts[0]] + parts[1:3] + keep))
        for line in section[1:]:
            m = re.match(r"a=(rtpmap|fmtp|rtcp-fb):(\S+)", line)
            if m and m.group(2) in dropped:
                continue
            out.append(line)
    return "\r\n".join(out) + "\r\n"
