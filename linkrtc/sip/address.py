# -*- test-case-name: linkrtc.sip.test.test_transport -*-
"""
SIP transport addresses (RFC 3261 §18, §19.1.2): L{Address}, the
C{(transport, host, port)} of a peer or of one of our sockets, and
L{Source}, the address a message came from with the connection and local
socket it came on.
"""

from __future__ import annotations

import ipaddress
from dataclasses import dataclass, field

from twisted.internet.abstract import isIPAddress, isIPv6Address

#: The transports, as written in a Via (RFC 3261 §18, §20.42; RFC 7118 §7
#: for C{WS} and C{WSS}, SIP over WebSocket).
TRANSPORTS = ("UDP", "TCP", "TLS", "WS", "WSS")

#: Transports that are reliable (§17.1.1.2: no retransmission timers).
RELIABLE_TRANSPORTS = frozenset(("TCP", "TLS", "WS", "WSS"))

#: Default ports (RFC 3261 §19.1.2): 5060 for UDP/TCP, 5061 for TLS; the
#: HTTP ones for WebSocket (RFC 7118 §5.2 leaves them to the URL).
DEFAULT_PORTS = {"UDP": 5060, "TCP": 5060, "TLS": 5061, "WS": 80, "WSS": 443}


def _stripBrackets(host):
    if host.startswith("[") and host.endswith("]"):
        return host[1:-1]
    return host


def _sameHost(a, b):
    """
    @return: C{True} when two host strings name the same host: equal IP
        addresses (whatever their spelling) or equal names, ignoring case
        and IPv6 brackets.
    """
    if a == b:
        return True
    a, b = _stripBrackets(a), _stripBrackets(b)
    try:
        return ipaddress.ip_address(a) == ipaddress.ip_address(b)
    except ValueError:
        return a.lower() == b.lower()


# host -> whether it is an IP literal; bounded (a flood of names cannot grow it).
_IP_LITERALS = {}


def isIPLiteral(host):
    """
    @return: C{True} if C{host} (C{str}, IPv6 without brackets) is an IPv4
        or IPv6 literal.

    Fast path: Twisted's C{isIPAddress}/C{isIPv6Address} parse in pure
    Python; the answer for a host is remembered (4096 hosts at most), as
    responses go to the same few peers again and again.
    """
    try:
        return _IP_LITERALS[host]
    except KeyError:
        pass
    result = isIPAddress(host) or isIPv6Address(host)
    if len(_IP_LITERALS) >= 4096:
        _IP_LITERALS.clear()
    _IP_LITERALS[host] = result
    return result


def _uriHost(host):
    """@return: C{host} as written in a URI or Via: IPv6 literals in brackets."""
    host = _stripBrackets(host)
    return f"[{host}]" if isIPv6Address(host) else host


@dataclass(frozen=True, eq=False)
class Address:
    """
    Where a SIP message comes from or goes to.

    Equality and hashing use C{(transport, host.lower(), port)} only, so a
    L{Source} equals the plain L{Address} of the same peer.

    @ivar transport: C{"UDP"}, C{"TCP"}, C{"TLS"}, C{"WS"} or C{"WSS"}
        (lower case is accepted and upper-cased).
    @ivar host: C{str}, an IP literal (IPv6 without brackets) or a host
        name.
    @ivar port: C{int}.
    @raise ValueError: for an unknown transport or a port outside 0..65535.
    """

    transport: str
    host: str
    port: int

    def __post_init__(self):
        # (fields already in their final form, the usual case, are left alone)
        transport = self.transport
        if type(transport) is not str or transport not in TRANSPORTS:
            transport = str(transport).upper()
            if transport not in TRANSPORTS:
                raise ValueError(f"Unknown SIP transport {self.transport!r}")
            object.__setattr__(self, "transport", transport)
        host = self.host
        if type(host) is not str or host[:1] == "[":
            object.__setattr__(self, "host", _stripBrackets(str(host)))
        port = self.port
        if type(port) is not int:
            port = int(port)
            object.__setattr__(self, "port", port)
        if not 0 <= port <= 65535:
            raise ValueError(f"Port out of range: {port}")

    @property
    def key(self):
        """C{(transport, host, port)}, the host lower-cased: the identity of a peer."""
        return (self.transport, self.host.lower(), self.port)

    @property
    def reliable(self):
        """C{True} for TCP, TLS, WS and WSS."""
        return self.transport in RELIABLE_TRANSPORTS

    @property
    def address(self):
        """This address as a plain L{Address} (without connection)."""
        return Address(self.transport, self.host, self.port)

    def __eq__(self, other):
        if not isinstance(other, Address):
            return NotImplemented
        return self.key == other.key

    def __hash__(self):
        return hash(self.key)

    def __str__(self):
        return f"{self.transport}:{_uriHost(self.host)}:{self.port}"


@dataclass(frozen=True, eq=False)
class Source(Address):
    """
    The L{Address} a message was received from, plus how it came.

    @ivar connection: the L{SIPStreamProtocol} the message arrived on, or
        C{None} for UDP. Responses go back on it while it is open (§18.2.2).
    @ivar local: the L{Address} of our socket that received it, or C{None}.
    """

    connection: object = field(default=None, repr=False)
    local: Address | None = None



def _parsePublicAddress(publicAddress):
    """
    @param publicAddress: C{None}, C{"host"}, C{"host:port"},
        C{"[v6]:port"} or C{(host, port)}.
    @return: C{(host, port)} with C{port} an C{int} or C{None}; C{host}
        without IPv6 brackets (or C{None}).
    @raise ValueError: for a malformed value.
    """
    if publicAddress is None:
        return None, None
    if isinstance(publicAddress, tuple):
        host, port = publicAddress
        return _stripBrackets(host), (None if port is None else int(port))
    text = str(publicAddress).strip()
    if not text:
        raise ValueError("Empty public address")
    if text.startswith("["):
        end = text.find("]")
        if end < 0:
            raise ValueError(f"Bad public address {publicAddress!r}")
        host, rest = text[1:end], text[end + 1:]
        if not rest:
            return host, None
        if not rest.startswith(":"):
            raise ValueError(f"Bad public address {publicAddress!r}")
        return host, int(rest[1:])
    if text.count(":") == 1:
        host, port = text.split(":")
        return host, int(port)
    return text, None



__all__ = [
    "Address",
    "DEFAULT_PORTS",
    "RELIABLE_TRANSPORTS",
    "Source",
    "TRANSPORTS",
]
