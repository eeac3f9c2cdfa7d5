# -*- test-case-name: linkrtc.sip.test.test_transport -*-
"""
Via processing of the SIP transport layer: the C{received} and C{rport}
a server writes in the top Via of a request it receives (RFC 3261
§18.2.1, RFC 3581 §4), the address a response goes to (§18.2.2),
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
    Where a response goes when there is no connection to reuse
    (§18.2.2, RFC 3581 §4). For the top Via C{via}:

     - reliable transport: C{received} (else the sent-by host), port of
       sent-by (else the transport's default port);
     - else C{maddr}, port of sent-by (else 5060);
     - else with C{rport} valued and C{received}: received IP, rport
       port (C{rport} without value: the source IP and port);
     - else C{received} (else the sent-by host), port of sent-by (else
       5060). A host only written in the Via is never used when
       C{received} is present.

    @param via: a L{linkrtc.sip.uri.Via}.
    @param source: the L{Address} the request came from.
    @return: an L{Address}.
    The transport is always the one the request arrived on.

    @raise ValueError: for a Via naming an unknown transport and a
        source without one.
    """
    # The response goes back over the transport the request came on, even
    # when the Via names another (RFC 4475 §3.1.1.10: treat it as UDP).
    transport = source.transport
    if transport not in TRANSPORTS:
        transport = via.transport.upper()
    port = via.port or DEFAULT_PORTS[transport]
    received = via.received
    if transport in RELIABLE_TRANSPORTS:
        return Address(transport, received or via.host, port)
    if via.maddr:
        return Address(transport, via.maddr, port)
    rport = via.rport
    if rport is True:
        return Address(transport, received or source.host, source.port)
    if rport is not None and received:
        return Address(transport, received, int(rport))
    return Address(transport, received or via.host, port)


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
