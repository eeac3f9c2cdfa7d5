# -*- test-case-name: linkrtc.sip.test.test_transport -*-
"""
The SIP transport layer (RFC 3261 §18, RFC 3581 rport, RFC 5626 §3.5.1
CRLF keep-alive) over UDP, TCP and TLS, and WS/WSS (RFC 7118: SIP over
WebSocket, L{linkrtc.sip.websocket}; connections only the client opens).

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
L{Address} destination) and L{SIPTransportLayer.sendResponse} (to the
request's source: its connection, or over UDP its IP and port; RFC 3261
§18.2.2 with the deviation of L{linkrtc.sip.routing.responseDestination}).

The layer's parts live in their own modules (re-exported here):
L{linkrtc.sip.address} (L{Address}, L{Source}), L{linkrtc.sip.udp}
(L{SIPDatagramProtocol}), L{linkrtc.sip.stream} (L{SIPStreamProtocol},
L{SIPStreamFactory}: TCP/TLS framing and keep-alives) and
L{linkrtc.sip.routing} (Via annotation, response addressing, stateless
error responses).

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

import math
import os
import socket

from twisted.internet.abstract import isIPv6Address
from twisted.internet.defer import DeferredList, fail, maybeDeferred, succeed
from twisted.logger import Logger

from linkrtc.error import SIPParseError, TransportError
from linkrtc.sip.address import (
    DEFAULT_PORTS,
    RELIABLE_TRANSPORTS,
    TRANSPORTS,
    Address,
    Source,
    _parsePublicAddress,
    _uriHost,
    isIPLiteral,
)
from linkrtc.sip.connections import StreamConnections
from linkrtc.sip.endpoints import DEFAULT_BUFFER_SIZE, setSocketBuffers, sipServerFromString
from linkrtc.sip.message import Request, Response
from linkrtc.sip.parser import parseMessage
from linkrtc.sip.ratelimit import ALLOW, REFUSE
from linkrtc.sip.routing import annotateTopVia, responseDestination, statelessErrorResponse
from linkrtc.sip.stream import SIPStreamFactory, SIPStreamProtocol
from linkrtc.sip.udp import SIPDatagramProtocol
from linkrtc.sip.uri import SIPURI, Via
from linkrtc.sip.websocket import WS_TRANSPORTS

log = Logger()

#: Idle time after which an unused stream connection is closed, in seconds.
DEFAULT_IDLE_TIMEOUT = 60.0

#: Time allowed to open a TCP/TLS connection, in seconds.
DEFAULT_CONNECT_TIMEOUT = 10.0

# What a datagram holding only a keep-alive may start with.
_BLANK = (b"", b"\r", b"\n", b"\t", b" ")


# ---------------------------------------------------------------------------
# The layer
# ---------------------------------------------------------------------------


class SIPTransportLayer(StreamConnections):
    """
    The SIP transport layer (RFC 3261 §18): listening sockets, stream
    connections, inbound parsing and Via processing, and routing of
    outbound requests and responses.

    @ivar receiver: the transaction layer: an object with
        C{requestReceived(request, source)} and
        C{responseReceived(response, source)}: given, or built by
        C{receiverFactory} with this layer, when the layer is built.
        Messages arriving while it is C{None} are dropped.
    @ivar idleTimeout: seconds without traffic after which a stream
        connection is closed, or C{None} never to close.
    """

    def __init__(self, reactor, publicAddress=None, receiver=None,
                 idleTimeout=DEFAULT_IDLE_TIMEOUT, bufferSize=DEFAULT_BUFFER_SIZE,
                 connectTimeout=DEFAULT_CONNECT_TIMEOUT, tlsTrustRoot=None,
                 tlsClientCertificate=None, rateLimiter=None, receiverFactory=None,
                 observers=()):
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
        @param rateLimiter: a L{linkrtc.sip.ratelimit.SourceRateLimiter}
            for per-source flood control, or C{None} for none.
        @param receiverFactory: C{None}, or a callable C{(layer) ->
            receiver} building the layer above (the transaction layer,
            which needs this one) as the last step of this constructor,
            instead of C{receiver}.
        @param observers: the first C{observers} (see that attribute).
        @raise ValueError: for a malformed C{publicAddress}.
        """
        self._reactor = reactor
        self._publicHost, self._publicPort = _parsePublicAddress(publicAddress)
        self.receiver = receiver
        #: Callables C{observer(direction, message, data, address)} told of
        #: every message parsed in (C{"in"}) or sent (C{"out"}); for the
        #: demo page's ladder. C{data} is the raw C{bytes}.
        self.observers = list(observers)
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
        # host (lower case) -> SIPWebSocketConnection: RFC 7118 §5.2 aliases
        self._wsAliases = {}
        # "WS"/"WSS" -> port of our HTTP socket a WebSocket client came to
        self._wsPorts = {}
        self._localIP = None
        # transport -> (host as in a URI, port) we advertise; and the ports
        # of _ourPorts: computed once, dropped when the sockets change
        # (listen, stopListening, a WebSocket port learnt).
        self._advertised = {}
        self._closed = False
        #: The L{SourceRateLimiter}, or C{None}.
        self.rateLimiter = rateLimiter
        if receiverFactory is not None:
            self.receiver = receiverFactory(self)

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
            self._advertised.clear()
            sock = getattr(port, "socket", None)
            if sock is not None:
                setSocketBuffers(sock, self.bufferSize)
            log.info("SIP listening on {local}", local=local)
            return port

        return d.addCallback(listening)

    def listeningAddresses(self):
        """@return: a C{list} of the L{Address}es we listen on, in order."""
        return [local for _, _, _, local in self._listeners]

    def datagramSockets(self):
        """@return: a C{list} of the UDP ports' C{socket.socket}s (overload control)."""
        return [port.socket for transport, port, _, _ in self._listeners
                if transport == "UDP" and getattr(port, "socket", None) is not None]

    def stopListening(self):
        """
        Close every listening port (connections stay open).

        @return: a L{Deferred} firing with C{None} when all are closed.
        """
        listeners, self._listeners = self._listeners, []
        self._advertised.clear()
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
        host, port = self._sentBy(transport)
        return Via(transport.upper(), host, port, {"branch": branch, "rport": None})

    def localContactURI(self, transport, user=None):
        """
        A URI for our Contact header field over C{transport}
        (C{;transport=tcp|tls} added for streams).

        @param transport: C{"UDP"}, C{"TCP"} or C{"TLS"}.
        @param user: C{str} or C{None}.
        @return: a L{linkrtc.sip.uri.SIPURI}.
        """
        host, port = self._sentBy(transport)
        params = {} if transport.upper() == "UDP" else {"transport": transport.lower()}
        return SIPURI("sip", user=user, host=host, port=port, params=params)

    def _sentBy(self, transport):
        """
        L{localAddress} with the host as written in a URI or Via.

        Fast path: computed once per transport (every response to an INVITE
        carries our Contact) until the sockets change.
        """
        result = self._advertised.get(transport)
        if result is None:
            host, port = self.localAddress(transport)
            result = self._advertised[transport] = (_uriHost(host), port)
        return result

    def _localPort(self, transport):
        """The port L{localAddress} writes for C{transport}."""
        if self._publicPort is not None:
            return self._publicPort
        for t, _, _, local in self._listeners:
            if t == transport:
                return local.port
        if transport in self._wsPorts:
            return self._wsPorts[transport]
        return DEFAULT_PORTS[transport]

    def _ourPorts(self):
        """Every port we listen on or write in a Via (computed once, as L{_sentBy})."""
        ports = self._advertised.get("ports")
        if ports is None:
            ports = {local.port for local in self.listeningAddresses()}
            ports.update(self._localPort(t) for t in TRANSPORTS)
            self._advertised["ports"] = ports
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
           connection to C{source}, else on a new connection to the source
           IP and the top Via's sent-by port;
         - unreliable: to the packet's source IP and port, from the socket
           the request arrived on (L{responseDestination}: never a
           C{maddr} or C{received} the sender wrote).

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
                return maybeDeferred(self._write, conn, data)
            conn = self._connections.get(Address(transport, source.host, source.port).key)
            if conn is not None and conn.connected:
                return maybeDeferred(self._write, conn, data)
        try:
            destination = self.responseDestination(via, source)
        except ValueError as e:
            return fail(TransportError(f"no route for response: {e}"))
        return self._send(destination, data, local=getattr(source, "local", None))

    @staticmethod
    def responseDestination(via, source):
        """
        Where a response goes when there is no connection to reuse; see
        L{linkrtc.sip.routing.responseDestination}.
        """
        return responseDestination(via, source)

    def _send(self, destination, data, local=None):
        if destination.transport == "UDP":
            return self._sendDatagram(destination, data, local)
        if destination.transport in WS_TRANSPORTS:
            conn = self.webSocketConnectionFor(destination)
            if conn is None:
                return fail(TransportError(f"no WebSocket connection to {destination}"))
            return maybeDeferred(self._write, conn, data)
        return self._connectionTo(destination).addCallback(self._write, data)

    def _udpProtocolFor(self, host, local=None):
        if local is not None:
            # (the socket a request came on: a response leaves from it)
            for t, _, handler, addr in self._listeners:
                if addr is local or (t == "UDP" and addr == local):
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
        if isIPLiteral(destination.host):
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

    # -- receiving -----------------------------------------------------------

    def _sourceOf(self, conn):
        return Source(conn.transportName, conn.peer.host, conn.peer.port,
                      connection=conn, local=conn.local)

    def _datagramReceived(self, proto, data, addr):
        limiter = self.rateLimiter
        if limiter is not None and limiter.banned(addr[0]):
            return  # a flood: dropped before any parsing
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
        limiter = self.rateLimiter
        if limiter is not None and limiter.banned(conn.peer.host):
            return
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
                if self.rateLimiter is not None and not self._admitted(message, source):
                    return
                if source.transport in WS_TRANSPORTS:
                    self._noteWebSocketAliases(message, source)
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

    def _noteWebSocketAliases(self, request, source):
        """
        Route the C{.invalid} hosts of a WebSocket client's Contact and Via
        to its connection (RFC 7118 §5.2); a host another open connection
        already owns is left to it.
        """
        conn = getattr(source, "connection", None)
        if conn is None or not hasattr(conn, "noteAliases"):
            return
        for host in conn.noteAliases(request):
            owner = self._wsAliases.get(host)
            if owner is None or owner is conn or not owner.connected:
                self._wsAliases[host] = conn
            else:
                conn.aliases.discard(host)

    def _admitted(self, request, source):
        """
        Per-source flood control (docs/security.rst): an out-of-dialog
        request (no To tag, not ACK) counts against its source's rate; the
        one that starts a ban is answered 503 with C{Retry-After} (the ban's
        length) statelessly, once; the ban's later ones are dropped.

        @return: C{True} if C{request} may go on to the transaction layer.
        """
        if request.method == "ACK":
            return True
        try:
            if request.toAddr.tag is not None:
                return True
        except SIPParseError:
            pass
        verdict = self.rateLimiter.admit(source.host)
        if verdict == ALLOW:
            return True
        if verdict == REFUSE:
            response = request.createResponse(503, toTag=os.urandom(6).hex())
            response.headers.add("Retry-After", str(math.ceil(self.rateLimiter.banSeconds)))
            self.sendResponse(response, source).addErrback(
                lambda f: log.info("Could not send 503 to {source}: {error}", source=source,
                                   error=f.value))
        return False

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
        # (received and rport values are a port and an IP literal: tokens;
        # only the top Via line is written again: Message.setTopVia)
        request.setTopVia(top)

    @staticmethod
    def _annotateTopVia(via, source):
        """
        @return: C{True} if C{via} (modified in place) changed.
        """
        return annotateTopVia(via, source)

    def _rejectUnparseable(self, error, data, source):
        """
        Answer an unparseable request statelessly (§8.2.6, §18.2.2), or
        drop what cannot be answered (responses, ACK, garbage, no Via).
        """
        response, destination = statelessErrorResponse(error, data, source)
        if response is None:
            log.info("Dropped {what} from {source}: {reason}",
                     what=destination, source=source, reason=error.reason)
            return
        status = response.status
        log.info("Answering unparseable request from {source} with {status} {reason}",
                 source=source, status=status, reason=response.reason)
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


__all__ = [
    "Address",
    "DEFAULT_IDLE_TIMEOUT",
    "SIPDatagramProtocol",
    "SIPStreamFactory",
    "SIPStreamProtocol",
    "SIPTransportLayer",
    "Source",
]
