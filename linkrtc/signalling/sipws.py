# -*- test-case-name: linkrtc.signalling.test.test_sipws -*-
"""
The WebSocket of SIP over WebSocket (RFC 7118), mounted at C{/sip}
beside the JSON protocol's C{/ws}: browser softphones (JsSIP, SIP.js)
connect to C{ws[s]://HOST:PORT/sip} with the subprotocol C{sip}
(RFC 7118 §4: the handshake must offer it; one that does not is refused
with HTTP 400).

Each connection becomes a L{linkrtc.sip.websocket.SIPWebSocketConnection}
of the SIP transport layer (transport C{WS} on plain HTTP, C{WSS} on
HTTPS). Frames (RFC 7118 §5.1): one SIP message per WebSocket message,
text (UTF-8, checked by autobahn) or binary (RFC 7118 §5.1 allows both;
both are parsed); we send text frames.

Admission is that of C{/ws} (L{linkrtc.signalling.guard}): C{Origin}
must be the page's own or an allowed one (403), connections per address
are capped and locked-out sources refused (429), each refusal logged as a
security event; then every request goes through the SIP layer's per-source
rate limit like any other transport's. A message bigger than
C{maxMessageSize} octets drops the connection (autobahn fails it before
anything is parsed).
"""

from autobahn.twisted.resource import WebSocketResource
from autobahn.twisted.websocket import WebSocketServerFactory, WebSocketServerProtocol
from autobahn.websocket.types import ConnectionDeny
from twisted.internet.interfaces import ISSLTransport
from twisted.logger import Logger

from linkrtc.signalling.admission import GuardedConnection, admitHandshake
from linkrtc.signalling.guard import (
    SourceGuard,
    normaliseOrigin,
)
from linkrtc.signalling.protocol import _ClockTimer
from linkrtc.sip.websocket import SIPWebSocketConnection

log = Logger()

#: The WebSocket subprotocol of SIP (RFC 7118 §4, IANA registry).
SUBPROTOCOL = "sip"

#: Default largest SIP message accepted in one frame, in octets.
MAX_SIP_MESSAGE_SIZE = 65536


class SIPWebSocketProtocol(GuardedConnection, WebSocketServerProtocol):
    """
    One SIP-over-WebSocket connection: the handshake checks (subprotocol,
    Origin, per-address limits), then frames in and out of its
    L{SIPWebSocketConnection}.
    """

    sip = None

    def connectionGone(self):
        if self.sip is not None:
            self.sip.connectionLost()

    def onConnect(self, request):
        """
        @return: C{"sip"}, the subprotocol chosen.
        @raise ConnectionDeny: 429 (locked out, too many connections), 403
            (Origin), 400 (no C{sip} subprotocol offered).
        """
        admitHandshake(self.factory.guard, self.source, request, self.factory.allowedOrigins)
        if SUBPROTOCOL not in [p.strip().lower() for p in request.protocols]:
            raise ConnectionDeny(400, "the WebSocket subprotocol 'sip' is required (RFC 7118)")
        return SUBPROTOCOL

    def onOpen(self):
        peer = self.transport.getPeer()
        host = self.transport.getHost()
        secure = self.factory.secure
        if secure is None:
            secure = ISSLTransport.providedBy(self.transport)
        self.sip = SIPWebSocketConnection(
            self.factory.layer, self, "WSS" if secure else "WS",
            (getattr(peer, "host", self.source), getattr(peer, "port", 0)),
            (host.host, host.port) if hasattr(host, "port") else None)
        self.sip.connectionMade()

    def onMessage(self, payload, isBinary):
        if self.sip is not None:
            self.sip.frameReceived(payload)

    def onClose(self, wasClean, code, reason):
        if self.sip is not None:
            self.sip.connectionLost()

    # -- for SIPWebSocketConnection --------------------------------------------

    def sendSIP(self, data):
        """Send one SIP message (C{bytes}, UTF-8) as a text frame."""
        self.sendMessage(data, isBinary=False)

    def closeSIP(self, code, reason):
        """Close with C{code} (C{int}) and C{reason} (C{str})."""
        self.sendClose(code, reason)


class SIPWebSocketFactory(WebSocketServerFactory):
    """
    Builds L{SIPWebSocketProtocol}s.

    @param layer: the L{linkrtc.sip.transport.SIPTransportLayer}.
    @param clock: an L{IReactorTime} (the global reactor if C{None},
        imported late).
    @param allowedOrigins: origins allowed besides the page's own, as for
        C{/ws}.
    @param guard: the L{SourceGuard} (shared with C{/ws} in the service, so
        the per-address cap counts both); one with the defaults if C{None}.
    @param maxMessageSize: octets; a bigger frame or message drops the
        connection.
    @param secure: C{True} for C{WSS}, C{False} for C{WS}, C{None} to tell
        from the connection (TLS or not).
    @param autoPingInterval: seconds between WebSocket pings (0 = never).
    @param autoPingTimeout: seconds to wait for the pong.
    @raise ValueError: a malformed origin in C{allowedOrigins}.
    """

    protocol = SIPWebSocketProtocol

    def __init__(self, layer, clock=None, allowedOrigins=(), guard=None,
                 maxMessageSize=MAX_SIP_MESSAGE_SIZE, secure=None, url=None,
                 autoPingInterval=20.0, autoPingTimeout=10.0, openHandshakeTimeout=10.0):
        if clock is None:
            from twisted.internet import reactor as clock
        super().__init__(url=url, reactor=clock, protocols=[SUBPROTOCOL])
        # handshake, close and keep-alive timers on the injected clock, not
        # on txaio's batched timer over the global reactor
        self._batched_timer = _ClockTimer(clock)
        self.layer = layer
        self.clock = clock
        self.allowedOrigins = frozenset(normaliseOrigin(o) for o in allowedOrigins)
        self.guard = guard if guard is not None else SourceGuard(clock)
        self.maxMessageSize = maxMessageSize
        self.secure = secure
        self.setProtocolOptions(
            autoPingInterval=autoPingInterval,
            autoPingTimeout=autoPingTimeout,
            openHandshakeTimeout=openHandshakeTimeout,
            maxMessagePayloadSize=maxMessageSize,
            maxFramePayloadSize=maxMessageSize,
            allowNullOrigin=True,
        )


def makeSIPWebSocketResource(factory):
    """
    @param factory: a L{SIPWebSocketFactory}.
    @return: an L{IResource} to mount at C{/sip}.
    """
    return WebSocketResource(factory)


__all__ = ["MAX_SIP_MESSAGE_SIZE", "SIPWebSocketFactory", "SIPWebSocketProtocol",
           "SUBPROTOCOL", "makeSIPWebSocketResource"]
