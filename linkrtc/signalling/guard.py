# -*- test-case-name: linkrtc.signalling.test.test_guard -*-
"""
The WebSocket endpoint's defences that do not depend on one connection:
connections per source address, authentication failures and lock-out, the
C{Origin} check, loopback detection, and the security-event log
(docs/security.rst, "WebSocket limits").

A source is the peer's IP address as the socket gives it, never a header.
"""

import ipaddress
import json
import re
from urllib.parse import urlsplit

from twisted.internet.address import IPv4Address, IPv6Address
from twisted.logger import Logger

from linkrtc import metrics

__all__ = [
    "SourceGuard",
    "isLoopbackHost",
    "normaliseOrigin",
    "originAllowed",
    "securityEvent",
    "sourceOf",
]

log = Logger(namespace="linkrtc.security")

_WORD = re.compile(r"[A-Za-z0-9_.:@+\-\[\]]{1,128}\Z")


def _field(value):
    """A log value: as is when it is a plain word, else JSON-quoted (max 200 chars)."""
    text = f"{value:g}" if isinstance(value, float) else str(value)
    if _WORD.match(text):
        return text
    return json.dumps(text[:200])


def securityEvent(event, source, **fields):
    """
    Log one refusal as a parsable line and count it in
    L{linkrtc.metrics.SECURITY_EVENTS}::

        security event=auth_failed source=1.2.3.4 identity=bob reason=bad_signature

    @param event: a word from a fixed set (C{auth_failed}, C{locked_out},
        C{origin_refused}, C{too_many_connections}, C{anonymous_refused},
        C{register_timeout}, C{grant_refused}).
    @param source: the peer address (C{str}).
    @param fields: more C{key=value} pairs, in the order given; values that
        are not plain words are JSON-quoted. C{None} values are left out.
    """
    parts = [f"event={event}", f"source={_field(source)}"]
    parts += [f"{k}={_field(v)}" for k, v in fields.items() if v is not None]
    line = "security " + " ".join(parts)
    log.warn("{line}", line=line, security_event=event, source=source)
    metrics.SECURITY_EVENTS.labels(event=event).inc()


def sourceOf(address):
    """
    @param address: a transport's C{getPeer()}.
    @return: the source address, C{str}: the IP for TCP (an IPv4-mapped
        IPv6 address as its IPv4 form), else C{"unix"} or the address's repr.
    """
    if isinstance(address, (IPv4Address, IPv6Address)):
        host = address.host
        try:
            ip = ipaddress.ip_address(host.split("%", 1)[0])
        except ValueError:
            return host
        if ip.version == 6 and ip.ipv4_mapped is not None:
            return str(ip.ipv4_mapped)
        return str(ip)
    if type(address).__name__ == "UNIXAddress":
        return "unix"
    return repr(address)


def isLoopbackAddress(source):
    """@return: C{True} if C{source} (from L{sourceOf}) is a loopback IP address."""
    try:
        return ipaddress.ip_address(source).is_loopback
    except ValueError:
        return False


def isLoopbackHost(host):
    """
    @param host: a C{Host} header value (C{"127.0.0.1:8080"}, C{"[::1]"},
        C{"localhost"}) or C{None}.
    @return: C{True} if it names this machine by a loopback address or
        C{localhost} (RFC 6761 §6.3), so a DNS-rebound name cannot pass.
    """
    if not host:
        return False
    try:
        name = urlsplit("//" + host).hostname
    except ValueError:
        return False
    if not name:
        return False
    name = name.rstrip(".")
    if name == "localhost" or name.endswith(".localhost"):
        return True
    return isLoopbackAddress(name)


_DEFAULT_PORTS = {"http": 80, "https": 443}


def normaliseOrigin(origin):
    """
    @param origin: an origin, C{"https://app.example.com"} (RFC 6454 §6.1).
    @return: C{(scheme, host, port)} lowercased with the port filled in.
    @raise ValueError: not an C{http}/C{https} origin without path.
    """
    parts = urlsplit(origin.strip())
    scheme = parts.scheme.lower()
    if scheme not in _DEFAULT_PORTS or not parts.hostname:
        raise ValueError(f"{origin!r} is not an http:// or https:// origin")
    if parts.path not in ("", "/") or parts.query or parts.fragment or parts.username:
        raise ValueError(f"{origin!r} must be scheme://host[:port] only")
    port = parts.port or _DEFAULT_PORTS[scheme]
    return scheme, parts.hostname.lower().rstrip("."), port


def originAllowed(origin, host, allowed=()):
    """
    The browser check of RFC 6455 §10.2: C{origin} must be the page's own
    origin (the C{Host} the request came to) or one of C{allowed}.

    @param origin: the C{Origin} header (C{str}).
    @param host: the C{Host} header (C{str}) or C{None}.
    @param allowed: a collection of L{normaliseOrigin} triples.
    @return: C{True} if allowed (C{"null"} and malformed origins never are).
    """
    try:
        scheme, name, port = normaliseOrigin(origin)
    except ValueError:
        return False
    if (scheme, name, port) in allowed:
        return True
    if not host:
        return False
    try:
        parts = urlsplit("//" + host.strip())
        hostName, hostPort = parts.hostname, parts.port
    except ValueError:
        return False
    if not hostName:
        return False
    return (hostName.lower().rstrip(".") == name
            and (hostPort or _DEFAULT_PORTS[scheme]) == port)


class SourceGuard:
    """
    Counts open connections and authentication failures per source, and
    locks out a source that fails too often.

    @param clock: an C{IReactorTime}.
    @param maxConnections: open connections allowed per source (C{int}).
    @param failureLimit: failures within C{failureWindow} that lock the
        source out (C{int}).
    @param failureWindow: seconds.
    @param lockout: seconds a locked-out source is refused.
    """

    #: Above this many sources with failures on record, old records are swept.
    SWEEP_AT = 10000

    def __init__(self, clock, maxConnections=50, failureLimit=10, failureWindow=60.0,
                 lockout=60.0):
        self.clock = clock
        self.maxConnections = maxConnections
        self.failureLimit = failureLimit
        self.failureWindow = failureWindow
        self.lockout = lockout
        self._open = {}
        self._failures = {}
        self._lockedUntil = {}

    def opened(self, source):
        """A connection from C{source} was made. @return: its open connections now."""
        count = self._open.get(source, 0) + 1
        self._open[source] = count
        return count

    def closed(self, source):
        """A connection from C{source} was lost."""
        count = self._open.get(source, 0) - 1
        if count > 0:
            self._open[source] = count
        else:
            self._open.pop(source, None)

    def connections(self, source):
        """@return: the open connections from C{source} (C{int})."""
        return self._open.get(source, 0)

    def tooMany(self, source):
        """@return: C{True} if C{source} holds more connections than allowed."""
        return self.connections(source) > self.maxConnections

    def lockedOut(self, source):
        """@return: C{True} while C{source} is locked out."""
        until = self._lockedUntil.get(source)
        if until is None:
            return False
        if self.clock.seconds() >= until:
            del self._lockedUntil[source]
            return False
        return True

    def failed(self, source):
        """
        Record an authentication failure of C{source}.

        @return: C{True} if this failure locked the source out.
        """
        now = self.clock.seconds()
        if len(self._failures) > self.SWEEP_AT:
            self._sweep(now)
        recent = [t for t in self._failures.get(source, ()) if now - t < self.failureWindow]
        recent.append(now)
        if len(recent) >= self.failureLimit:
            self._failures.pop(source, None)
            self._lockedUntil[source] = now + self.lockout
            return True
        self._failures[source] = recent
        return False

    def _sweep(self, now):
        for source, times in list(self._failures.items()):
            if not times or now - times[-1] >= self.failureWindow:
                del self._failures[source]
        for source, until in list(self._lockedUntil.items()):
            if now >= until:
                del self._lockedUntil[source]
