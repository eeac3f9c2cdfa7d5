# -*- test-case-name: linkrtc.sip.test.test_transport -*-
"""
Via processing of the SIP transport layer: the C{received} and C{rport}
a server writes in the top Via of a request it receives (RFC 3261
§18.2.1, RFC 3581 §4), the address a response goes to (§18.2.2, with
the deviation of L{responseDestination}: always the packet's source),
and the stateless answer to a request that cannot be parsed (§8.2.6).

Pure functions: the layer in L{linkrtc.sip.transport} sends what they build.
"""

import os

from linkrtc.error import SIPParseError
from linkrtc.sip.address import DEFAULT_PORTS, RELIABLE_TRANSPORTS, TRANSPORTS, Address, _sameHost
from linkrtc.sip.message import Response
from linkrtc.sip.uri import parseNameAddr, parseVia

# Compact header forms that may appear in the raw header lines of a
# SIPParseError (RFC 3261 §7.3.3).
_COMPACT = {"v": "via", "f": "from", "t": "to", "i": "call-id"}
_ERROR_COPY = (("via", "Via"), ("from", "From"), ("to", "To"), ("call-id", "Call-ID"),
               ("cseq", "CSeq"))


def annotateTopVia(via, source):
    """
    Add C{received} to C{via} when its sent-by host is not the source IP
    (§18.2.1), and fill an empty C{rport} with the source port, also adding
    C{received} (RFC 3581 §4).

    @param via: the top L{linkrtc.sip.uri.Via} of a request (changed in place).
    @param source: the L{Address} the request came from.
    @return: C{True} if C{via} changed.
    """
    changed = False
    if via.rport is True:
        via.params["rport"] = str(source.port)
        via.params["received"] = source.host
        changed = True
    if not _sameHost(via.host, source.host):
        if via.received is None or not _sameHost(via.received, source.host):
            via.params["received"] = source.host
            changed = True
    return changed


def responseDestination(via, source):
    """
    Where a response goes when there is no connection to reuse.

     - unreliable transport (UDP): the source IP and port of the request's
       packet, always: RFC 3581 §4 (rport) behaviour whether or not the
       request asked for it;
     - reliable transport: the source IP, port of sent-by (else the
       transport's default port): the new connection of §18.2.2.

    Deviation from RFC 3261 §18.2.2, on purpose (docs/security.rst,
    "Response addressing"): a C{maddr}, a C{received}, a valued C{rport}
    and the sent-by host of the top Via are written by the sender; obeying
    them lets one forged request aim our responses (and their Timer G
    retransmissions) at a third party. The packet's source address is the
    only address the request proves.

    @param via: the top L{linkrtc.sip.uri.Via} of the request.
    @param source: the L{Address} the request came from.
    @return: an L{Address} (C{source} itself over UDP); its transport is
        the one the request arrived on (RFC 4475 §3.1.1.10: a Via naming
        another is answered over it).
    @raise ValueError: for a Via naming an unknown transport and a
        source without one.
    """
    transport = source.transport
    if transport == "UDP":
        # Fast path: over UDP the answer is the source itself (an Address
        # with its transport, host and port; no new Address per response).
        return source
    if transport not in TRANSPORTS:
        transport = via.transport.upper()
    if transport in RELIABLE_TRANSPORTS:
        return Address(transport, source.host, via.port or DEFAULT_PORTS[transport])
    return Address(transport, source.host, source.port)


def _hasTag(value):
    try:
        return parseNameAddr(value).tag is not None
    except Exception:
        return ";tag=" in value.replace(" ", "").lower()


def statelessErrorResponse(error, data, source):
    """
    The stateless answer to an unparseable request (§8.2.6): the status
    and reason phrase of C{error} (400 unless it names a 3xx-6xx), with the
    Via (top one annotated per §18.2.1), From, To (plus a tag), Call-ID and
    CSeq header lines recovered.

    @param error: the L{SIPParseError}.
    @param data: the raw C{bytes} (to spot an ACK), or C{b""}.
    @param source: the L{Address} the request came from.
    @return: C{(response, destination)}: destination is C{None} when the
        response is routed by its top Via, else the source L{Address} (no
        usable Via); or C{(None, why)} with C{why} a C{str} when nothing may
        be sent (a response, an ACK, garbage, no Via).
    """
    if error.isRequest is not True:
        return None, ("unparseable response" if error.isRequest is False
                      else "unparseable data")
    copied = {name: [] for name, _ in _ERROR_COPY}
    for name, value in error.headers:
        lower = str(name).strip().lower()
        lower = _COMPACT.get(lower, lower)
        if lower in copied:
            copied[lower].append(str(value).strip())
    if not copied["via"]:
        return None, "unparseable request without Via"
    cseq = copied["cseq"][0].split() if copied["cseq"] else []
    if (cseq and cseq[-1].upper() == "ACK") or data.lstrip().upper().startswith(b"ACK "):
        return None, "unparseable ACK"
    reason = " ".join(str(error.reason).split()) or None
    status = error.status if isinstance(error.status, int) and 300 <= error.status < 700 else 400
    response = Response(status, reason)
    destination = None
    try:
        topVia = parseVia(copied["via"][0])
        if topVia:
            annotateTopVia(topVia[0], source)
            copied["via"][0] = ", ".join(str(v) for v in topVia)
    except SIPParseError:
        topVia = None
    if not topVia:
        destination = Address(source.transport, source.host, source.port)
    for lower, canonical in _ERROR_COPY:
        for value in copied[lower]:
            if lower == "to" and not _hasTag(value):
                value = f"{value};tag={os.urandom(6).hex()}"
            response.headers.add(canonical, value)
    return response, destination


__all__ = ["annotateTopVia", "responseDestination", "statelessErrorResponse"]
