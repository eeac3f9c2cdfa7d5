# -*- test-case-name: linkrtc.sip.test.test_endpoints -*-
"""
Listening endpoints for SIP: endpoint strings for UDP, TCP and TLS, and
socket buffer sizing.

Twisted's L{serverFromString} knows C{tcp:} and C{ssl:} but has no
datagram endpoints, so this module parses C{udp:} itself, with the same
string syntax (colon-separated arguments, C{key=value} keywords, a
backslash escapes the next character)::

    udp:5060                       UDP on every IPv4 interface, port 5060
    udp:0:interface=127.0.0.1      UDP on 127.0.0.1, an ephemeral port
    udp:port=5060:interface=\\:\\:   UDP on every IPv6 interface
    tcp:5060[:interface=ADDR]      SIP over TCP (Twisted's own parser)
    ssl:5061:privateKey=KEY.pem:certKey=CERT.pem    SIP over TLS
    tls:5061:privateKey=...        the same; C{tls:} is an alias of C{ssl:}

TLS endpoints (C{ssl:}/C{tls:}, for SIP and for the HTTP server) are built
by L{streamServerFromString} with LinkRTC's TLS policy
(L{linkrtc.tlspolicy}: TLS 1.2+, ECDHE with AEAD ciphers only). Their
arguments are Twisted's C{ssl:} ones: C{port}, C{privateKey}, C{certKey},
C{extraCertChain}, C{interface}, C{backlog} (C{dhParameters} is accepted and
ignored; C{sslmethod} is refused: the policy sets the versions).

Socket buffers (DECISIONS.md "Small things"): L{setSocketBuffers} asks for
4 MB with C{SO_RCVBUFFORCE}/C{SO_SNDBUFFORCE} (allowed to root, i.e.
C{CAP_NET_ADMIN}), falls back to C{SO_RCVBUF}/C{SO_SNDBUF} (capped by
C{net.core.rmem_max}/C{wmem_max}) and logs what the kernel granted.
"""

from __future__ import annotations

import socket
import sys
from dataclasses import dataclass

from twisted.internet.abstract import isIPv6Address
from twisted.internet.defer import maybeDeferred
from twisted.internet.endpoints import SSL4ServerEndpoint, serverFromString
from twisted.logger import Logger

from linkrtc.tlspolicy import serverContextFactory

log = Logger()

#: Socket buffer size asked for by default, in bytes (4 MB).
DEFAULT_BUFFER_SIZE = 4 * 1024 * 1024

#: Largest UDP datagram we accept, in bytes.
MAX_DATAGRAM_SIZE = 65535

# Linux option numbers; Python's socket module does not export them.
_LINUX = sys.platform.startswith("linux")
SO_RCVBUFFORCE = getattr(socket, "SO_RCVBUFFORCE", 33 if _LINUX else None)
SO_SNDBUFFORCE = getattr(socket, "SO_SNDBUFFORCE", 32 if _LINUX else None)

#: Transport names (as written in a Via) for each endpoint type.
TRANSPORT_OF_TYPE = {"udp": "UDP", "tcp": "TCP", "ssl": "TLS", "tls": "TLS"}


def splitDescription(description):
    """
    Split an endpoint string into its positional and keyword arguments,
    following Twisted's endpoint string syntax: C{:} separates arguments,
    the first C{=} of an argument makes it a keyword, C{\\} escapes the
    character after it.

    @param description: C{str}, for example C{"udp:0:interface=127.0.0.1"}.
    @return: C{(args, kwargs)}: a C{list} of C{str} (the type first) and a
        C{dict} of C{str} to C{str}.
    @raise ValueError: for a trailing backslash or an empty description.
    """
    if not isinstance(description, str) or not description:
        raise ValueError(f"Empty or non-string endpoint description: {description!r}")
    args = []
    kwargs = {}
    key = None
    current = []
    chars = iter(description)

    def finish():
        value = "".join(current)
        if key is None:
            args.append(value)
        else:
            kwargs[key] = value

    for char in chars:
        if char == "\\":
            try:
                current.append(next(chars))
            except StopIteration:
                raise ValueError(f"Trailing backslash in endpoint description: {description!r}")
        elif char == ":":
            finish()
            key = None
            current = []
        elif char == "=" and key is None:
            key = "".join(current)
            current = []
        else:
            current.append(char)
    finish()
    return args, kwargs


def _parsePort(text, description):
    try:
        port = int(text, 10)
    except (TypeError, ValueError):
        raise ValueError(f"Bad port {text!r} in endpoint description {description!r}")
    if not 0 <= port <= 65535:
        raise ValueError(f"Port {port} out of range in endpoint description {description!r}")
    return port


def parseUDPDescription(description):
    """
    Parse a C{udp:} endpoint string.

    @param description: C{"udp:PORT[:interface=ADDR]"} or
        C{"udp:port=PORT[:interface=ADDR]"}; ADDR is an IPv4 or IPv6
        literal (colons escaped with C{\\}), empty for every IPv4
        interface.
    @return: C{(port, interface)}: C{int} 0..65535 and C{str}.
    @raise ValueError: when the string is not a valid C{udp:} description
        (wrong type, missing or bad port, unknown keyword).
    """
    args, kwargs = splitDescription(description)
    if args[0].lower() != "udp":
        raise ValueError(f"Not a udp: endpoint description: {description!r}")
    positional = args[1:]
    unknown = set(kwargs) - {"port", "interface"}
    if unknown:
        raise ValueError(f"Unknown argument(s) {sorted(unknown)} in {description!r}")
    if "port" in kwargs:
        if positional:
            raise ValueError(f"Port given twice in {description!r}")
        portText = kwargs["port"]
    elif len(positional) == 1:
        portText = positional[0]
    else:
        raise ValueError(f"Expected exactly one port in {description!r}")
    return _parsePort(portText, description), kwargs.get("interface", "")


@dataclass(frozen=True)
class UDPServerEndpoint:
    """
    A server endpoint for UDP (an L{IStreamServerEndpoint} look-alike for
    datagrams): L{listen} binds a L{DatagramProtocol} with
    C{reactor.listenUDP}.

    @ivar reactor: an L{IReactorUDP}.
    @ivar port: C{int}, 0 for an ephemeral port.
    @ivar interface: C{str}, the address to bind; C{""} for all IPv4.
    @ivar maxPacketSize: C{int}, the largest datagram read, in bytes.
    """

    reactor: object
    port: int
    interface: str = ""
    maxPacketSize: int = MAX_DATAGRAM_SIZE

    def listen(self, protocol):
        """
        Bind C{protocol}.

        @param protocol: a L{twisted.internet.protocol.DatagramProtocol}.
        @return: a L{Deferred} firing with the L{IListeningPort}, or failing
            with L{twisted.internet.error.CannotListenError}.
        """
        return maybeDeferred(
            self.reactor.listenUDP,
            self.port,
            protocol,
            interface=self.interface,
            maxPacketSize=self.maxPacketSize,
        )


def sipServerFromString(reactor, description):
    """
    Make a SIP listening endpoint from an endpoint string.

    @param reactor: a reactor providing L{IReactorUDP}, L{IReactorTCP} and
        L{IReactorSSL}.
    @param description: C{udp:...}, C{tcp:...}, C{ssl:...} or C{tls:...}
        (see the module docstring).
    @return: C{(transport, endpoint)}: C{transport} is C{"UDP"}, C{"TCP"}
        or C{"TLS"}; C{endpoint} is a L{UDPServerEndpoint} for UDP, an
        L{IStreamServerEndpoint} otherwise.
    @raise ValueError: for an unknown endpoint type or bad arguments
        (also raised by Twisted for C{tcp:}/C{ssl:} strings it rejects).
    """
    args, _ = splitDescription(description)
    kind = args[0].lower()
    if kind not in TRANSPORT_OF_TYPE:
        raise ValueError(
            f"Unsupported SIP endpoint type {args[0]!r} in {description!r}"
            " (use udp:, tcp:, ssl: or tls:)"
        )
    transport = TRANSPORT_OF_TYPE[kind]
    if kind == "udp":
        port, interface = parseUDPDescription(description)
        return transport, UDPServerEndpoint(reactor, port, interface)
    if kind == "tls":
        description = "ssl" + description[len("tls"):]
    # A stream port must be given; Twisted's own parser would raise a
    # TypeError/IndexError for a missing one, so check first.
    args, kwargs = splitDescription(description)
    if len(args) < 2 and "port" not in kwargs:
        raise ValueError(f"No port in endpoint description {description!r}")
    _parsePort(args[1] if len(args) >= 2 else kwargs["port"], description)
    try:
        endpoint = streamServerFromString(reactor, description)
    except (TypeError, KeyError, IndexError) as e:
        raise ValueError(f"Bad endpoint description {description!r}: {e}")
    return transport, endpoint


#: The keywords of an C{ssl:}/C{tls:} description (Twisted's, less C{sslmethod}).
_TLS_KEYWORDS = frozenset(
    ("port", "privateKey", "certKey", "extraCertChain", "dhParameters", "interface", "backlog"))


def streamServerFromString(reactor, description):
    """
    Make a stream server endpoint from an endpoint string: C{ssl:}/C{tls:}
    with LinkRTC's TLS policy (L{linkrtc.tlspolicy}), anything else by
    Twisted's L{serverFromString}.

    @param reactor: an L{IReactorTCP} and L{IReactorSSL}.
    @param description: C{str}, for example
        C{"ssl:5061:privateKey=key.pem:certKey=cert.pem"} or C{"tcp:8080"}.
    @return: an L{IStreamServerEndpoint}.
    @raise ValueError: for a bad or unknown argument, C{sslmethod}, or a
        key or certificate file that cannot be loaded.
    """
    args, kwargs = splitDescription(description)
    if args[0].lower() not in ("ssl", "tls"):
        return serverFromString(reactor, description)
    if "sslmethod" in kwargs:
        raise ValueError(f"sslmethod is not allowed in {description!r}: LinkRTC's TLS policy "
                         "sets the protocol versions (TLS 1.2 and later)")
    unknown = set(kwargs) - _TLS_KEYWORDS
    if unknown:
        raise ValueError(f"Unknown argument(s) {sorted(unknown)} in {description!r}")
    positional = args[1:]
    if "port" in kwargs:
        positional = [kwargs.pop("port")] + positional
    if not positional:
        raise ValueError(f"No port in endpoint description {description!r}")
    if len(positional) > 2:
        raise ValueError(f"Too many arguments in {description!r}")
    port = _parsePort(positional[0], description)
    privateKey = kwargs.get("privateKey", positional[1] if len(positional) > 1 else "server.pem")
    try:
        backlog = int(kwargs.get("backlog", 50))
    except ValueError:
        raise ValueError(f"Bad backlog in {description!r}")
    try:
        context = serverContextFactory(
            privateKey, certKey=kwargs.get("certKey"),
            extraCertChain=kwargs.get("extraCertChain"),
            dhParameters=kwargs.get("dhParameters"))
    except Exception as e:
        raise ValueError(f"Cannot load the TLS key or certificate of {description!r}: {e}")
    return SSL4ServerEndpoint(reactor, port, context, backlog=backlog,
                              interface=kwargs.get("interface", ""))


def setSocketBuffers(sock, size=DEFAULT_BUFFER_SIZE):
    """
    Ask for C{size}-byte receive and send buffers on C{sock}, and log the
    size the kernel granted.

    C{SO_RCVBUFFORCE}/C{SO_SNDBUFFORCE} is tried first (it ignores
    C{net.core.rmem_max}/C{wmem_max} but needs C{CAP_NET_ADMIN}); when it
    is refused (or does not exist), C{SO_RCVBUF}/C{SO_SNDBUF}. Linux
    reports twice the size asked for (it counts its bookkeeping).
    Never raises.

    @param sock: a L{socket.socket} (or anything with C{setsockopt} and
        C{getsockopt}).
    @param size: the buffer size wanted, in bytes.
    @return: C{(receive, send)}: the sizes granted in bytes (C{int}), or
        C{None} for one that could not be read.
    """
    granted = []
    for name, force, plain in (
        ("receive", SO_RCVBUFFORCE, socket.SO_RCVBUF),
        ("send", SO_SNDBUFFORCE, socket.SO_SNDBUF),
    ):
        forced = False
        if force is not None:
            try:
                sock.setsockopt(socket.SOL_SOCKET, force, size)
                forced = True
            except OSError:
                pass
        if not forced:
            try:
                sock.setsockopt(socket.SOL_SOCKET, plain, size)
            except OSError as e:
                log.warn(
                    "Could not set socket {name} buffer to {size} bytes: {error}",
                    name=name,
                    size=size,
                    error=e,
                )
        try:
            value = sock.getsockopt(socket.SOL_SOCKET, plain)
        except OSError:
            value = None
        log.info(
            "Socket {name} buffer: asked for {size} bytes ({how}), kernel granted {granted}",
            name=name,
            size=size,
            how="forced" if forced else "capped by sysctl",
            granted=value,
        )
        granted.append(value)
    return tuple(granted)


def isIPv6(host):
    """
    @param host: C{str}, an address literal (with or without brackets).
    @return: C{True} if C{host} is an IPv6 literal.
    """
    return isIPv6Address(host.strip("[]"))


__all__ = [
    "DEFAULT_BUFFER_SIZE",
    "UDPServerEndpoint",
    "parseUDPDescription",
    "setSocketBuffers",
    "sipServerFromString",
    "splitDescription",
    "streamServerFromString",
]
