# -*- test-case-name: linkrtc.signalling.test.test_security,linkrtc.signalling.test.test_sipws -*-
"""
What every WebSocket endpoint of LinkRTC (C{/ws}, C{/sip}) checks before a
connection is taken: the per-address count and lock-out of a
L{linkrtc.signalling.guard.SourceGuard}, and the browser's C{Origin}
(docs/security.rst).
"""

from autobahn.websocket.types import ConnectionDeny

from linkrtc.signalling.guard import originAllowed, securityEvent, sourceOf


class GuardedConnection:
    """
    A mixin for a C{WebSocketServerProtocol} whose factory has a C{guard}
    (L{linkrtc.signalling.guard.SourceGuard}): counts the connection
    against its source address while it is open.

    @ivar source: the peer's address (C{str}, from the socket), or C{None}
        once closed.
    """

    source = None

    def connectionMade(self):
        self.source = sourceOf(self.transport.getPeer())
        self.factory.guard.opened(self.source)
        super().connectionMade()

    def connectionLost(self, reason):
        try:
            super().connectionLost(reason)
        finally:
            self.connectionGone()
            if self.source is not None:
                self.factory.guard.closed(self.source)
                self.source = None

    def connectionGone(self):
        """Called once the connection is lost, before its source is released."""


def admitHandshake(guard, source, request, allowedOrigins):
    """
    The checks of an opening handshake, each refusal logged as a security
    event.

    @param guard: the L{linkrtc.signalling.guard.SourceGuard}.
    @param source: the peer's address (C{str}).
    @param request: the autobahn C{ConnectionRequest}.
    @param allowedOrigins: origins allowed besides the request's own host.
    @raise ConnectionDeny: 429 (locked out, too many connections from
        C{source}) or 403 (a foreign C{Origin}).
    """
    if guard.lockedOut(source):
        securityEvent("locked_out", source, phase="handshake")
        raise ConnectionDeny(429, "too many authentication failures; try again later")
    if guard.tooMany(source):
        securityEvent("too_many_connections", source, limit=guard.maxConnections)
        raise ConnectionDeny(429, "too many connections from this address")
    host = request.headers.get("host")
    origin = request.headers.get("origin")
    if origin is not None and not originAllowed(origin, host, allowedOrigins):
        securityEvent("origin_refused", source, origin=origin, host=host)
        raise ConnectionDeny(403, "origin not allowed")
