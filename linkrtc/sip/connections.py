# -*- test-case-name: linkrtc.sip.test.test_transport -*-
"""
The stream connections of the SIP transport layer (RFC 3261 §18: TCP and
TLS connections reused both ways, §18.2.2; RFC 7118 §5.2 WebSocket flows
and their C{.invalid} aliases): finding, opening and forgetting them.
L{StreamConnections} is a part of L{linkrtc.sip.transport.SIPTransportLayer}
(its base class), on the layer's C{_reactor}, C{_connections},
C{_connecting}, C{_wsAliases}, C{_wsPorts} (a new port clears the cached
addresses we advertise, C{_advertised}), C{_closed}, C{connectTimeout}
and TLS settings.
"""

from twisted.internet.abstract import isIPAddress, isIPv6Address
from twisted.internet.defer import Deferred, fail, succeed
from twisted.internet.endpoints import (
    HostnameEndpoint,
    TCP4ClientEndpoint,
    TCP6ClientEndpoint,
    connectProtocol,
    wrapClientTLS,
)
from twisted.logger import Logger

from linkrtc.error import TransportError
from linkrtc.sip.stream import SIPStreamProtocol, _isTLSError
from linkrtc.sip.websocket import WS_TRANSPORTS
from linkrtc.tlspolicy import clientOptions

log = Logger()

__all__ = ["StreamConnections"]


class StreamConnections:
    """The stream connection part of L{linkrtc.sip.transport.SIPTransportLayer}."""

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

    def webSocketConnectionFor(self, destination):
        """
        The open SIP-over-WebSocket connection that reaches C{destination}
        (RFC 7118 §5.2, RFC 5626 flow reuse): its own connection (a
        L{Source}'s), the one from its address, or the one whose client
        wrote its host (a C{.invalid} name) in a Contact or Via. A WebSocket
        client cannot be connected to, so nothing else is tried.

        @param destination: an L{Address} or L{Source} with transport
            C{WS} or C{WSS}.
        @return: a L{linkrtc.sip.websocket.SIPWebSocketConnection}, or
            C{None} when the client is unreachable.
        """
        conn = getattr(destination, "connection", None)
        if conn is not None and conn.connected:
            return conn
        conn = self._connections.get(destination.key)
        if conn is not None and conn.connected:
            return conn
        conn = self._wsAliases.get(destination.host.lower())
        if conn is not None and conn.connected:
            return conn
        return None

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
        if conn.transportName in WS_TRANSPORTS and conn.local is not None:
            if self._wsPorts.get(conn.transportName) != conn.local.port:
                self._wsPorts[conn.transportName] = conn.local.port
                self._advertised.clear()

    def _connectionLost(self, conn, reason):
        for key, registered in list(self._connections.items()):
            if registered is conn:
                del self._connections[key]
        for host in getattr(conn, "aliases", ()):
            if self._wsAliases.get(host) is conn:
                del self._wsAliases[host]
        if conn.transportName == "TLS" and _isTLSError(reason):
            # A refused certificate (ours or theirs) would otherwise go unseen.
            log.warn("TLS connection {direction} {peer} failed: {error}", peer=conn.peer,
                     direction="to" if conn.outbound else "from", error=reason.value)
