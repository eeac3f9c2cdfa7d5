# -*- test-case-name: linkrtc.sip.test.test_transport -*-
"""
The SIP transport layer (RFC 3261 §18, RFC 3581 rport, RFC 5626 §3.5.1
CRLF keep-alive) over UDP, TCP and TLS.

L{SIPTransportLayer} owns the listening sockets and the stream
connections. Upwards it hands every parsed message to its C{receiver}
(the transaction layer) as::

    receiver.requestReceived(request, source)
    receiver.responseReceived(response, source)

where C{source} is a L{Source}: an L{Address} (transport, host, port of
the peer, as seen on the socket) that also carries C{.connection}, the
L{SIPStreamProtocol} the message came on (C{None} for UDP), and
C{.local}, the L{Address} of our socket that received it. A L{Source}
compares and hashes equal to the plain L{Address} with the same transport,
host and port.

Downwards it offers L{SIPTransportLayer.sendRequest} (to a
L{Address} destination) and L{SIPTransportLayer.sendResponse} (routed
per §18.2.2 from the top Via and the request's source).

Bad input never raises out of this module and never stops the reactor:

 - an unparseable request is answered statelessly with the status and
   reason phrase of the L{SIPParseError} (400, 505...), copying Via, From,
   To (plus a tag), Call-ID and CSeq from the header lines recovered;
 - an unparseable response is dropped and logged with its source;
 - a datagram that is not SIP at all (no start line, no Via) is dropped;
 - a stream that cannot be framed any more (L{SIPFramingError}) gets a
   best-effort 400 (when it was a request) and is closed.
"""

from __future__ import annotations

import ipaddress
import os
import socket
from dataclasses import dataclass, field

from twisted.internet.abstract import isIPAddress, isIPv6Address
from twisted.internet.defer import Deferred, DeferredList, fail, maybeDeferred, succeed
from twisted.internet.endpoints import (
    HostnameEndpoint,
    TCP4ClientEndpoint,
    TCP6ClientEndpoint,
    connectProtocol,
    wrapClientTLS,
)
from twisted.internet.protocol import DatagramProtocol, Factory, Protocol
from twisted.logger import Logger

from linkrtc.error import SIPFramingError, SIPParseError, TransportError
from linkrtc.sip.endpoints import DEFAULT_BUFFER_SIZE, setSocketBuffers, sipServerFromString
from linkrtc.sip.message import Request, Response
from linkrtc.sip.parser import StreamFramer, parseMessage
from linkrtc.sip.uri import SIPURI, Via, parseNameAddr, parseVia
from linkrtc.tlspolicy import clientOptions

log = Logger()

#: The transports, as written in a Via (RFC 3261 §18, §20.42).
TRANSPORTS = ("UDP", "TCP", "TLS")

#: Transports that are reliable (§17.1.1.2: no retransmission timers).
RELIABLE_TRANSPORTS = frozenset(("TCP", "TLS"))

#: Default ports (RFC 3261 §19.1.2): 5060 for UDP/TCP, 5061 for TLS.
DEFAULT_PORTS = {"UDP": 5060, "TCP": 5060, "TLS": 5061}

#: Idle time after which an unused stream connection is closed, in seconds.
DEFAULT_IDLE_TIMEOUT = 60.0

#: Time allowed to open a TCP/TLS connection, in seconds.
DEFAULT_CONNECT_TIMEOUT = 10.0

# Compact header forms that may appear in the raw header lines of a
# SIPParseError (RFC 3261 §7.3.3).
_COMPACT = {"v": "via", "f": "from", "t": "to", "i": "call-id"}
_ERROR_COPY = (("via", "Via"), ("from", "From"), ("to", "To"), ("call-id", "Call-ID"),
               ("cseq", "CSeq"))


# What a datagram holding only a keep-alive may start with.
_BLANK = (b"", b"\r", b"\n", b"\t", b" ")


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


def _isTLSError(reason):
    """@return: C{True} if C{reason} (a L{Failure} or C{None}) is an OpenSSL error."""
    try:
        from OpenSSL.SSL import Error
    except ImportError:
        return False
    return reason is not None and reason.check(Error) is not None


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

    @ivar transport: C{"UDP"}, C{"TCP"} or C{"TLS"} (lower case is
        accepted and upper-cased).
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
        """C{True} for TCP and TLS."""
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


# ---------------------------------------------------------------------------
# Protocols
# ---------------------------------------------------------------------------


class SIPDatagramProtocol(DatagramProtocol):
    """
    A UDP socket of a L{SIPTransportLayer}.

    @ivar localAddress: the L{Address} it is bound to (set by
        L{SIPTransportLayer.listen}).
    """

    def __init__(self, layer):
        self._layer = layer
        self.localAddress = None

    def datagramReceived(self, data, addr):
        """Hand one datagram to the layer; never raises."""
        try:
            self._layer._datagramReceived(self, data, addr)
        except Exception:
            log.failure("Unexpected error handling a datagram from {addr}", addr=addr)

    def send(self, data, host, port):
        """
        Write one datagram.

        @raise Exception: whatever the socket raises (caller converts it).
        """
        self.transport.write(data, (host, port))


class SIPStreamProtocol(Protocol):
    """
    One TCP or TLS connection carrying SIP (RFC 3261 §18.3): framed by
    Content-Length, answering RFC 5626 double-CRLF pings with a CRLF, closed
    by its layer after C{idleTimeout} seconds without traffic.

    @ivar transportName: C{"TCP"} or C{"TLS"}.
    @ivar peer: the L{Address} of the other end, once connected.
    @ivar outbound: C{True} if we opened it.
    """

    def __init__(self, layer, transportName, outbound=False):
        self._layer = layer
        self.transportName = transportName
        self.outbound = outbound
        self.peer = None
        self.local = None
        self.connected = False
        self._framer = StreamFramer()
        self._pending = 0  # octets of an unfinished message held by the framer
        self._crlf = b""
        self._lastActivity = 0.0
        self._idleCall = None
        self._holds = 0

    def hold(self):
        """
        A dialog uses this connection: it is not closed for being idle
        until every hold is released (a long call may carry no SIP for
        longer than the idle timeout). Holds nest.
        """
        self._holds += 1

    def release(self):
        """Undo one L{hold}; the idle timeout counts from now."""
        if self._holds > 0:
            self._holds -= 1
            self._touch()

    def connectionMade(self):
        self.connected = True
        peer = self.transport.getPeer()
        host = self.transport.getHost()
        self.peer = Address(self.transportName, peer.host, peer.port)
        try:
            self.local = Address(self.transportName, host.host, host.port)
        except (AttributeError, ValueError):
            self.local = None
        self._touch()
        self._layer._connectionMade(self)

    def connectionLost(self, reason):
        self.connected = False
        if self._idleCall is not None and self._idleCall.active():
            self._idleCall.cancel()
        self._idleCall = None
        self._layer._connectionLost(self, reason)

    def _touch(self):
        """Note traffic now, and (re)arm the idle timer."""
        self._lastActivity = self._layer._reactor.seconds()
        timeout = self._layer.idleTimeout
        if timeout is not None and self._idleCall is None and self.connected:
            self._idleCall = self._layer._reactor.callLater(timeout, self._idleCheck)

    def _idleCheck(self):
        self._idleCall = None
        timeout = self._layer.idleTimeout
        if not self.connected or timeout is None:
            return
        idle = self._layer._reactor.seconds() - self._lastActivity
        if self._holds:
            self._idleCall = self._layer._reactor.callLater(timeout, self._idleCheck)
        elif idle >= timeout:
            log.info("Closing idle {transport} connection to {peer} after {idle} s",
                     transport=self.transportName, peer=self.peer, idle=idle)
            self.transport.loseConnection()
        else:
            self._idleCall = self._layer._reactor.callLater(timeout - idle, self._idleCheck)

    def send(self, data):
        """Write C{data} (C{bytes}) on the connection."""
        self.transport.write(data)
        self._touch()

    def dataReceived(self, data):
        """Frame messages and hand each to the layer; never raises."""
        if not self.connected:
            return
        self._touch()
        try:
            self._dataReceived(data)
        except SIPFramingError as e:
            # Whole messages framed before the fault in this chunk are handled first.
            for message in getattr(e, "messages", ()):
                if self.connected:
                    self._layer._streamMessageReceived(self, message)
            self._framingFailed(e)
        except Exception:
            log.failure("Unexpected error on {transport} connection from {peer}",
                        transport=self.transportName, peer=self.peer)
            self.transport.loseConnection()
            self.connected = False

    def _dataReceived(self, data):
        messages = self._framer.feed(data)
        # Mirror the framer (which returns each message's exact octets and
        # skips CR/LF before a start line) to find the CR/LF runs between
        # messages: a double CRLF there is an RFC 5626 ping.
        pos = 0
        if self._pending == 0:
            pos = self._skipCRLF(data, 0)
        for message in messages:
            pos += len(message) - self._pending
            self._pending = 0
            self._crlf = b""
            pos = self._skipCRLF(data, pos)
        if pos < len(data):
            self._pending += len(data) - pos
            self._crlf = b""
        for message in messages:
            if not self.connected:
                return
            self._layer._streamMessageReceived(self, message)

    def _skipCRLF(self, data, pos):
        """
        Skip CR and LF from C{data[pos:]}, answering each double CRLF (ping)
        with one CRLF (pong, RFC 5626 §4.4.1).

        @return: the offset of the first other octet, or C{len(data)}.
        """
        start = pos
        while pos < len(data) and data[pos] in b"\r\n":
            pos += 1
        if pos > start:
            run = self._crlf + data[start:pos]
            index = run.find(b"\r\n\r\n")
            while index >= 0:
                self.transport.write(b"\r\n")
                run = run[index + 4:]
                index = run.find(b"\r\n\r\n")
            self._crlf = run[-3:]
        return pos

    def _framingFailed(self, error):
        log.warn("Closing {transport} connection from {peer}: cannot frame: {reason}",
                 transport=self.transportName, peer=self.peer, reason=error.reason)
        try:
            if error.isRequest:
                self._layer._rejectUnparseable(error, b"", self._layer._sourceOf(self))
        except Exception:
            log.failure("Could not answer an unframeable request")
        self.transport.loseConnection()
        self.connected = False


class SIPStreamFactory(Factory):
    """Builds L{SIPStreamProtocol}s for a listening TCP/TLS port."""

    def __init__(self, layer, transportName):
        self._layer = layer
        self.transportName = transportName

    def buildProtocol(self, addr):
        return SIPStreamProtocol(self._layer, self.transportName)


# ---------------------------------------------------------------------------
# The layer
# ---------------------------------------------------------------------------


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


class SIPTransportLayer:
    """
    The SIP transport layer (RFC 3261 §18): listening sockets, stream
    connections, inbound parsing and Via processing, and routing of
    outbound requests and responses.

    @ivar receiver: the transaction layer: an object with
        C{requestReceived(request, source)} and
        C{responseReceived(response, source)}. May be set after
        construction. Messages arriving while it is C{None} are dropped.
    @ivar idleTimeout: seconds without traffic after which a stream
        connection is closed, or C{None} never to close.
    """

    def __init__(self, reactor, publicAddress=None, receiver=None,
                 idleTimeout=DEFAULT_IDLE_TIMEOUT, bufferSize=DEFAULT_BUFFER_SIZE,
                 connectTimeout=DEFAULT_CONNECT_TIMEOUT, tlsTrustRoot=None,
                 tlsClientCertificate=None):
        """
        @param reactor: provides L{IReactorTime}, and for listening and
            sending L{IReactorUDP}, L{IReactorTCP}, L{IReactorSSL}.
        @param publicAddress: the host (and port) to write in Via and
            Contact of our requests: C{"host"}, C{"host:port"},
            C{"[v6]:port"} or C{(host, port)}; C{None} to use the
            listening address. Without a port the listening port is used.
        @param receiver: see C{receiver}.
        @param idleTimeout: seconds (C{float}) or C{None}.
        @param bufferSize: socket buffer size wanted, in bytes.
        @param connectTimeout: seconds allowed to open a TCP/TLS connection.
        @param tlsTrustRoot: passed to L{optionsForClientTLS} for TLS
            connections we open (C{None}: the platform's trust store).
        @param tlsClientCertificate: a L{PrivateCertificate} to present, or
            C{None}.
        @raise ValueError: for a malformed C{publicAddress}.
        """
        self._reactor = reactor
        self._publicHost, self._publicPort = _parsePublicAddress(publicAddress)
        self.receiver = receiver
        #: Callables C{observer(direction, message, data, address)} told of
        #: every message parsed in (C{"in"}) or sent (C{"out"}); for the
        #: demo page's ladder. C{data} is the raw C{bytes}.
        self.observers = []
        self.idleTimeout = idleTimeout
        self.bufferSize = bufferSize
        self.connectTimeout = connectTimeout
        self._tlsTrustRoot = tlsTrustRoot
        self._tlsClientCertificate = tlsClientCertificate
        # (transport, IListeningPort, SIPDatagramProtocol | SIPStreamFactory)
        self._listeners = []
        # (peer (host, port), local Address) -> Source, for UDP
        self._udpSources = {}
        # Address.key -> SIPStreamProtocol
        self._connections = {}
        # Address.key -> [Deferred] waiting for a connection being opened
        self._connecting = {}
        self._localIP = None
        self._closed = False

    # -- listening ---------------------------------------------------------

    def listen(self, description):
        """
        Start listening.

        @param description: an endpoint string: C{udp:PORT[:interface=ADDR]},
            C{tcp:PORT[:interface=ADDR]}, C{ssl:PORT:privateKey=...:certKey=...}
            or C{tls:...} (an alias of C{ssl:}); see L{linkrtc.sip.endpoints}.
        @return: a L{Deferred} firing with the L{IListeningPort} (failing
            with L{CannotListenError} when the port is taken).
        @raise ValueError: at once, for a malformed description.
        """
        self._closed = False
        transport, endpoint = sipServerFromString(self._reactor, description)
        if transport == "UDP":
            handler = SIPDatagramProtocol(self)
        else:
            handler = SIPStreamFactory(self, transport)
        d = endpoint.listen(handler)

        def listening(port):
            addr = port.getHost()
            local = Address(transport, getattr(addr, "host", "0.0.0.0"), getattr(addr, "port", 0))
            if transport == "UDP":
                handler.localAddress = local
            self._listeners.append((transport, port, handler, local))
            sock = getattr(port, "socket", None)
            if sock is not None:
                setSocketBuffers(sock, self.bufferSize)
            log.info("SIP listening on {local}", local=local)
            return port

        return d.addCallback(listening)

    def listeningAddresses(self):
        """@return: a C{list} of the L{Address}es we listen on, in order."""
        return [local for _, _, _, local in self._listeners]

    def stopListening(self):
        """
        Close every listening port (connections stay open).

        @return: a L{Deferred} firing with C{None} when all are closed.
        """
        listeners, self._listeners = self._listeners, []
        ds = [maybeDeferred(port.stopListening) for _, port, _, _ in listeners]
        return DeferredList(ds, consumeErrors=True).addCallback(lambda _: None)

    def close(self):
        """
        Close every listening port and every stream connection, and fail
        the sends waiting for a connection.

        @return: a L{Deferred} firing with C{None} when the ports are closed.
        """
        self._closed = True
        d = self.stopListening()
        for conn in list(self._connections.values()):
            if conn.connected:
                conn.transport.loseConnection()
        self._connections.clear()
        waiting, self._connecting = self._connecting, {}
        for waiters in waiting.values():
            for w in waiters:
                w.errback(TransportError("transport layer closed"))
        return d

    # -- addresses we advertise ----------------------------------------------

    def isReliable(self, address):
        """
        @param address: an L{Address} (or L{Source}), or a transport name.
        @return: C{True} for TCP and TLS (no retransmissions, §17.1.1.2).
        """
        transport = address if isinstance(address, str) else address.transport
        return transport.upper() in RELIABLE_TRANSPORTS

    def localAddress(self, transport):
        """
        The host and port to write as sent-by in our Via and in our Contact
        for C{transport}: the public address if one was given, else the
        address we listen on for that transport (a wildcard bind is replaced
        by this host's primary IP).

        @param transport: C{"UDP"}, C{"TCP"} or C{"TLS"}.
        @return: C{(host, port)}: C{str} (IPv6 without brackets), C{int}.
        """
        transport = transport.upper()
        listening = None
        for t, _, _, local in self._listeners:
            if t == transport:
                listening = local
                break
        port = self._localPort(transport)
        if self._publicHost is not None:
            return self._publicHost, port
        if listening is not None and not self._isWildcard(listening.host):
            return listening.host, port
        return self._guessLocalIP(), port

    @staticmethod
    def _isWildcard(host):
        return host in ("", "0.0.0.0", "::")

    def _guessLocalIP(self):
        """
        This host's primary IPv4 address: the source a UDP socket would
        use towards a documentation address (no packet is sent), else
        127.0.0.1. Computed once.
        """
        if self._localIP is None:
            ip = "127.0.0.1"
            try:
                s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
                try:
                    s.connect(("192.0.2.1", 9))
                    ip = s.getsockname()[0]
                finally:
                    s.close()
            except OSError:
                pass
            self._localIP = ip
        return self._localIP

    def localVia(self, transport, branch):
        """
        A Via for a request we send (§8.1.1.7, §18.1.1), with C{rport}
        (RFC 3581) so responses come back to the port we send from.

        @param transport: C{"UDP"}, C{"TCP"} or C{"TLS"}.
        @param branch: C{str}, starting with C{z9hG4bK}.
        @return: a L{linkrtc.sip.uri.Via}.
        """
        host, port = self.localAddress(transport)
        return Via(transport.upper(), _uriHost(host), port, {"branch": branch, "rport": None})

    def localContactURI(self, transport, user=None):
        """
        A URI for our Contact header field over C{transport}
        (C{;transport=tcp|tls} added for streams).

        @param transport: C{"UDP"}, C{"TCP"} or C{"TLS"}.
        @param user: C{str} or C{None}.
        @return: a L{linkrtc.sip.uri.SIPURI}.
        """
        host, port = self.localAddress(transport)
        params = {} if transport.upper() == "UDP" else {"transport": transport.lower()}
        return SIPURI("sip", user=user, host=_uriHost(host), port=port, params=params)

    def _localPort(self, transport):
        """The port L{localAddress} writes for C{transport}."""
        if self._publicPort is not None:
            return self._publicPort
        for t, _, _, local in self._listeners:
            if t == transport:
                return local.port
        return DEFAULT_PORTS[transport]

    def _ourPorts(self):
        """Every port we listen on or write in a Via."""
        ports = {local.port for local in self.listeningAddresses()}
        ports.update(self._localPort(t) for t in TRANSPORTS)
        return ports

    # -- sending -------------------------------------------------------------

    def sendRequest(self, request, destination):
        """
        Send a request (§18.1.1). The caller wrote our Via (see
        L{localVia}); this layer does not change it.

        @param request: a L{linkrtc.sip.message.Request}.
        @param destination: an L{Address}. UDP goes out of our UDP socket;
            TCP/TLS reuse an open connection to the same
            C{(transport, host, port)} or open one (TLS verifies the peer's
            certificate for C{destination.host} with service_identity).
        @return: a L{Deferred} firing with C{None} once the bytes are handed
            to the socket, or failing with L{TransportError} (no socket,
            connection refused, unresolvable host...). Never raises.
        """
        try:
            data = request.toBytes()
        except Exception as e:
            log.failure("Cannot serialise request to {destination}", destination=destination)
            return fail(TransportError(f"cannot serialise request: {e}"))
        if self.observers:
            self._observe("out", request, data, destination)
        return self._send(destination, data)

    def sendResponse(self, response, source):
        """
        Send a response (§18.2.2, RFC 3581 §4):

         - reliable transport: on the connection the request came on
           (C{source.connection}) if it is still open, else on an open
           connection to C{source}, else on a new connection to the top
           Via's C{received} (or sent-by host) and sent-by port;
         - unreliable: see L{responseDestination}; sent from the socket the
           request arrived on.

        @param response: a L{linkrtc.sip.message.Response} whose top Via is
            the one received (with our C{received}/C{rport}).
        @param source: the L{Source} (or L{Address}) the request came from.
        @return: a L{Deferred} firing with C{None} when written, or failing
            with L{TransportError}. Never raises.
        """
        try:
            data = response.toBytes()
            via = response.topVia
            if via is None:
                raise SIPParseError("response without Via")
        except Exception as e:
            log.warn("Cannot send response to {source}: {error}", source=source, error=e)
            return fail(TransportError(f"cannot send response: {e}"))
        if self.observers:
            self._observe("out", response, data, source)
        transport = via.transport.upper() if via.transport.upper() in TRANSPORTS else None
        transport = transport or source.transport
        if transport in RELIABLE_TRANSPORTS:
            conn = getattr(source, "connection", None)
            if conn is not None and conn.connected:
                return self._write(conn, data)
            conn = self._connections.get(Address(transport, source.host, source.port).key)
            if conn is not None and conn.connected:
                return self._write(conn, data)
        try:
            destination = self.responseDestination(via, source)
        except ValueError as e:
            return fail(TransportError(f"no route for response: {e}"))
        return self._send(destination, data, local=getattr(source, "local", None))

    @staticmethod
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

    def _send(self, destination, data, local=None):
        if destination.transport == "UDP":
            return self._sendDatagram(destination, data, local)
        return self._connectionTo(destination).addCallback(self._write, data)

    def _udpProtocolFor(self, host, local=None):
        if local is not None:
            for t, _, handler, addr in self._listeners:
                if t == "UDP" and (addr is local or addr == local):
                    return handler
        udp = [(handler, addr) for t, _, handler, addr in self._listeners if t == "UDP"]
        if not udp:
            return None
        wantV6 = isIPv6Address(host)
        for handler, addr in udp:
            if isIPv6Address(addr.host) == wantV6:
                return handler
        return udp[0][0]

    def _sendDatagram(self, destination, data, local=None):
        proto = self._udpProtocolFor(destination.host, local)
        if proto is None:
            return fail(TransportError(f"no UDP socket to send to {destination}"))
        if isIPAddress(destination.host) or isIPv6Address(destination.host):
            return self._writeDatagram(proto, destination.host, destination, data)
        d = maybeDeferred(self._reactor.resolve, destination.host)

        def unresolved(f):
            raise TransportError(f"cannot resolve {destination.host}: {f.value}")

        d.addCallbacks(lambda ip: self._writeDatagram(proto, ip, destination, data), unresolved)
        return d

    def _writeDatagram(self, proto, ip, destination, data):
        try:
            proto.send(data, ip, destination.port)
        except Exception as e:
            log.warn("UDP send to {destination} failed: {error}", destination=destination, error=e)
            return fail(TransportError(f"UDP send to {destination} failed: {e}"))
        return succeed(None)

    def _write(self, conn, data):
        if not conn.connected:
            raise TransportError(f"connection to {conn.peer} is closed")
        conn.send(data)
        return None

    def connectionTo(self, address):
        """
        @param address: an L{Address} (TCP or TLS).
        @return: the open L{SIPStreamProtocol} registered for it, or C{None}.
        """
        conn = self._connections.get(address.key)
        return conn if conn is not None and conn.connected else None

    def _connectionTo(self, destination):
        """
        @return: a L{Deferred} firing with an open L{SIPStreamProtocol} to
            C{destination} (reused, being opened, or opened now), or failing
            with L{TransportError}.
        """
        key = destination.key
        conn = self._connections.get(key)
        if conn is not None and conn.connected:
            return succeed(conn)
        d = Deferred()
        waiters = self._connecting.get(key)
        if waiters is not None:
            waiters.append(d)
            return d
        self._connecting[key] = [d]
        proto = SIPStreamProtocol(self, destination.transport, outbound=True)
        try:
            connecting = connectProtocol(self._clientEndpoint(destination), proto)
        except Exception as e:
            connecting = fail(e)

        def connected(p):
            waiters = self._connecting.pop(key, [])
            if self._closed:
                p.transport.loseConnection()
                return
            if not p.connected:
                error = TransportError(f"connection to {destination} lost at once")
                for w in waiters:
                    w.errback(error)
                return
            self._connections[key] = p
            for w in waiters:
                w.callback(p)

        def failed(f):
            waiters = self._connecting.pop(key, [])
            log.warn("Cannot connect to {destination}: {error}", destination=destination,
                     error=f.value)
            error = TransportError(f"cannot connect to {destination}: {f.value}")
            for w in waiters:
                w.errback(error)

        connecting.addCallbacks(connected, failed)
        return d

    def _clientEndpoint(self, destination):
        """
        @return: an L{IStreamClientEndpoint} to C{destination}; TLS is
            verified against C{destination.host} (RFC 5922 / service_identity).
        """
        host, port = destination.host, destination.port
        if isIPAddress(host):
            endpoint = TCP4ClientEndpoint(self._reactor, host, port, timeout=self.connectTimeout)
        elif isIPv6Address(host):
            endpoint = TCP6ClientEndpoint(self._reactor, host, port, timeout=self.connectTimeout)
        else:
            endpoint = HostnameEndpoint(self._reactor, host, port, timeout=self.connectTimeout)
        if destination.transport == "TLS":
            endpoint = wrapClientTLS(
                clientOptions(host, self._tlsTrustRoot, self._tlsClientCertificate), endpoint)
        return endpoint

    # -- connections ---------------------------------------------------------

    def _connectionMade(self, conn):
        # Register under the peer's address so later responses and requests
        # to it reuse the connection (§18.2.2, §18.1.1).
        self._connections[conn.peer.key] = conn

    def _connectionLost(self, conn, reason):
        for key, registered in list(self._connections.items()):
            if registered is conn:
                del self._connections[key]
        if conn.transportName == "TLS" and _isTLSError(reason):
            # A refused certificate (ours or theirs) would otherwise go unseen.
            log.warn("TLS connection {direction} {peer} failed: {error}", peer=conn.peer,
                     direction="to" if conn.outbound else "from", error=reason.value)

    # -- receiving -----------------------------------------------------------

    def _sourceOf(self, conn):
        return Source(conn.transportName, conn.peer.host, conn.peer.port,
                      connection=conn, local=conn.local)

    def _datagramReceived(self, proto, data, addr):
        # Sources are immutable: one per peer and socket serves all its datagrams.
        local = proto.localAddress
        key = (addr, local)
        source = self._udpSources.get(key)
        if source is None:
            source = Source("UDP", addr[0], addr[1], connection=None, local=local)
            if len(self._udpSources) >= 4096:
                self._udpSources.clear()
            self._udpSources[key] = source
        if data[:1] in _BLANK and not data.strip(b"\r\n\t "):
            return  # keep-alive (CRLF) datagram
        if data[0] < 0x20:
            log.debug("Dropped non-SIP datagram (STUN?) from {source}", source=source)
            return
        self._bytesReceived(data, source)

    def _streamMessageReceived(self, conn, data):
        self._bytesReceived(data, self._sourceOf(conn))

    def _bytesReceived(self, data, source):
        try:
            message = parseMessage(data)
        except SIPParseError as e:
            self._rejectUnparseable(e, data, source)
            return
        except Exception:
            log.failure("Parser failed on a message from {source}", source=source)
            return
        if self.observers:
            self._observe("in", message, data, source)
        self.messageReceived(message, source)

    def _observe(self, direction, message, data, address):
        for observer in list(self.observers):
            try:
                observer(direction, message, data, address)
            except Exception:
                log.failure("SIP message observer failed")

    def messageReceived(self, message, source):
        """
        Process a parsed inbound message and hand it to the receiver.

        A request gets C{received}/C{rport} in its top Via (§18.2.1,
        RFC 3581 §4) and goes to C{receiver.requestReceived(request,
        source)}; a response whose top Via is not ours (§18.1.2) is
        dropped, others go to C{receiver.responseReceived(response,
        source)}. Never raises.

        @param message: a L{Request} or L{Response}.
        @param source: the L{Source} it came from.
        """
        try:
            if isinstance(message, Request):
                try:
                    self.annotateVia(message, source)
                except SIPParseError as e:
                    error = SIPParseError(e.reason, e.status, message.headers.items(), True)
                    self._rejectUnparseable(error, b"", source)
                    return
                if self.receiver is None:
                    log.warn("No receiver: dropped {method} from {source}",
                             method=message.method, source=source)
                    return
                self.receiver.requestReceived(message, source)
            elif isinstance(message, Response):
                try:
                    via = message.topVia
                except SIPParseError as e:
                    via = None
                    log.info("Dropped response with a bad Via from {source}: {reason}",
                             source=source, reason=e.reason)
                    return
                if via is None or not self._isOurVia(via):
                    log.info("Dropped response from {source}: top Via {via} is not ours",
                             source=source, via=str(via) if via else None)
                    return
                if self.receiver is None:
                    log.warn("No receiver: dropped {status} from {source}",
                             status=message.status, source=source)
                    return
                self.receiver.responseReceived(message, source)
        except Exception:
            log.failure("Error handling a SIP message from {source}", source=source)

    def _isOurVia(self, via):
        """
        §18.1.2: a response whose top Via sent-by is not what we write is
        discarded. Host names and NAT make the host unreliable to compare,
        so this checks the port against the ports we listen on or advertise.
        """
        ours = self._ourPorts()
        transport = via.transport.upper()
        port = via.port or DEFAULT_PORTS.get(transport, 5060)
        return port in ours

    def annotateVia(self, request, source):
        """
        Add C{received} to the top Via of an inbound request when its
        sent-by host is not the source IP (§18.2.1), and fill an empty
        C{rport} with the source port, also adding C{received} (RFC 3581 §4).
        The request's Via header fields are rewritten when changed.

        @param request: a L{Request}.
        @param source: the L{Address} it came from.
        @raise SIPParseError: when the request has no parsable Via.
        """
        vias = request.vias
        if not vias:
            raise SIPParseError("Bad Request (no Via)")
        top = vias[0]
        if not self._annotateTopVia(top, source):
            return
        # (received and rport values are a port and an IP literal: tokens)
        request.setVias(vias, reparsed=True)

    @staticmethod
    def _annotateTopVia(via, source):
        """
        @return: C{True} if C{via} (modified in place) changed.
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

    def _rejectUnparseable(self, error, data, source):
        """
        Answer an unparseable request statelessly (§8.2.6, §18.2.2), or
        drop what cannot be answered (responses, ACK, garbage, no Via).
        """
        if error.isRequest is not True:
            log.info("Dropped unparseable {what} from {source}: {reason}",
                     what="response" if error.isRequest is False else "data",
                     source=source, reason=error.reason)
            return
        copied = {name: [] for name, _ in _ERROR_COPY}
        for name, value in error.headers:
            lower = str(name).strip().lower()
            lower = _COMPACT.get(lower, lower)
            if lower in copied:
                copied[lower].append(str(value).strip())
        if not copied["via"]:
            log.info("Dropped unparseable request without Via from {source}: {reason}",
                     source=source, reason=error.reason)
            return
        cseq = copied["cseq"][0].split() if copied["cseq"] else []
        if (cseq and cseq[-1].upper() == "ACK") or data.lstrip().upper().startswith(b"ACK "):
            log.info("Dropped unparseable ACK from {source}: {reason}",
                     source=source, reason=error.reason)
            return
        reason = " ".join(str(error.reason).split()) or None
        status = error.status if isinstance(error.status, int) and 300 <= error.status < 700 else 400
        response = Response(status, reason)
        destination = None
        try:
            topVia = parseVia(copied["via"][0])
            if topVia:
                self._annotateTopVia(topVia[0], source)
                copied["via"][0] = ", ".join(str(v) for v in topVia)
        except SIPParseError:
            topVia = None
        if not topVia:
            destination = Address(source.transport, source.host, source.port)
        for lower, canonical in _ERROR_COPY:
            for value in copied[lower]:
                if lower == "to" and not self._hasTag(value):
                    value = f"{value};tag={os.urandom(6).hex()}"
                response.headers.add(canonical, value)
        log.info("Answering unparseable request from {source} with {status} {reason}",
                 source=source, status=status, reason=reason)
        conn = getattr(source, "connection", None)
        try:
            if conn is not None and conn.connected:
                d = maybeDeferred(self._write, conn, response.toBytes())
            elif destination is None:
                d = self.sendResponse(response, source)
            else:
                d = self._send(destination, response.toBytes(), local=getattr(source, "local", None))
        except Exception as e:
            d = fail(e)
        d.addErrback(lambda f: log.info("Could not send {status} to {source}: {error}",
                                        status=status, source=source, error=f.value))

    @staticmethod
    def _hasTag(value):
        try:
            return parseNameAddr(value).tag is not None
        except Exception:
            return ";tag=" in value.replace(" ", "").lower()


__all__ = [
    "Address",
    "DEFAULT_IDLE_TIMEOUT",
    "SIPDatagramProtocol",
    "SIPStreamFactory",
    "SIPStreamProtocol",
    "SIPTransportLayer",
    "Source",
]
