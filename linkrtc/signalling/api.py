# -*- test-case-name: linkrtc.app.test.test_transports -*-
"""
The call-control API's WebSocket (C{/api}): JSON-RPC 2.0 text frames
between an application server and LinkRTC (docs/api.rst). Autobahn stays in
L{linkrtc.signalling}; the codec and the methods are
L{linkrtc.app.jsonrpc.JsonRpcEndpoint}'s.

The application sends method calls and gets their responses; every event
comes as a notification (C{{"jsonrpc": "2.0", "method":
"sys.call.on_incoming", "params": {...}}}). While one such connection is
open, incoming calls are the application's (L{linkrtc.app.application}).

The opening handshake is refused with HTTP 401 unless the authorizer lets
the peer in (L{linkrtc.app.auth.ApiAuthorizer}: a token with the C{app}
grant in C{Authorization: Bearer} or C{?token=}, or a loopback peer in
protected mode).
"""

from autobahn.exception import Disconnected
from autobahn.twisted.resource import WebSocketResource
from autobahn.twisted.websocket import (
    ConnectionDeny,
    WebSocketServerFactory,
    WebSocketServerProtocol,
)
from twisted.logger import Logger

from linkrtc.app.auth import bearerToken
from linkrtc.app.jsonrpc import encode
from linkrtc.signalling.protocol import _ClockTimer

__all__ = ["ApiServerProtocol", "ApiFactory", "makeApiWebSocketResource"]

log = Logger()


def _peerHost(peer):
    """@return: the address of an Autobahn peer text (C{"tcp:127.0.0.1:4000"})."""
    if not isinstance(peer, str):
        return ""
    parts = peer.split(":")
    if len(parts) >= 3:
        return ":".join(parts[1:-1])
    return peer


class ApiServerProtocol(WebSocketServerProtocol):
    """One application's WebSocket."""

    _sinkAdded = False

    def onConnect(self, request):
        token = bearerToken(request.headers.get("authorization"))
        if token is None:
            given = request.params.get("token") or [None]
            token = given[0]
        if not self.factory.authorizer.authorize(_peerHost(request.peer), token):
            log.info("call-control API refused for {peer}", peer=request.peer)
            raise ConnectionDeny(401, "Unauthorized")
        return None

    def onOpen(self):
        self.factory.control.addSink(self.notify, controller=True)
        self._sinkAdded = True
        log.info("call-control application connected from {peer}", peer=self.peer)

    def onMessage(self, payload, isBinary):
        if isBinary:
            self.sendJSON({"jsonrpc": "2.0", "id": None,
                           "error": {"code": -32600, "message": "send JSON text frames"}})
            return
        d = self.factory.endpoint.handle(payload)
        d.addCallback(self._respond)
        d.addErrback(lambda f: log.failure("call-control response failed", f))

    def _respond(self, response):
        if response is not None:
            self._send(response)

    def notify(self, notification):
        """Send one event (a notification C{dict})."""
        self.sendJSON(notification)

    def sendJSON(self, message):
        return self._send(encode(message))

    def _send(self, payload):
        if self.state != self.STATE_OPEN:
            return False
        try:
            self.sendMessage(payload, False)
        except Disconnected:
            return False
        return True

    def onClose(self, wasClean, code, reason):
        if self._sinkAdded:
            self._sinkAdded = False
            log.info("call-control application {peer} left ({code})", peer=self.peer,
                     code=code)
            self.factory.control.removeSink(self.notify)


class ApiFactory(WebSocketServerFactory):
    """
    @param endpoint: the L{linkrtc.app.jsonrpc.JsonRpcEndpoint}.
    @param authorizer: an L{linkrtc.app.auth.ApiAuthorizer}.
    @param clock: an C{IReactorTime} for Autobahn's timers.
    """

    protocol = ApiServerProtocol

    def __init__(self, endpoint, authorizer, clock=None, autoPingInterval=20.0,
                 autoPingTimeout=10.0):
        if clock is None:
            from twisted.internet import reactor as clock
        super().__init__(reactor=clock)
        self._batched_timer = _ClockTimer(clock)
        self.endpoint = endpoint
        self.control = endpoint.control
        self.authorizer = authorizer
        self.setProtocolOptions(autoPingInterval=autoPingInterval,
                                autoPingTimeout=autoPingTimeout,
                                maxMessagePayloadSize=1024 * 1024,
                                maxFramePayloadSize=1024 * 1024)


def makeApiWebSocketResource(factory):
    """@return: the resource to mount at C{/api} for WebSocket upgrades."""
    return WebSocketResource(factory)
