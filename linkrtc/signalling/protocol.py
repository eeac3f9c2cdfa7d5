# -*- test-case-name: linkrtc.signalling.test.test_protocol -*-
"""
The WebSocket signalling endpoint (C{/ws}) for WebRTC clients, built on
Autobahn's Twisted flavour (RFC 6455).

Wiring::

    directory = ClientDirectory(clock=reactor)
    factory = SignallingFactory(directory, callManager, tokens=None, clock=reactor)
    root.putChild(b"ws", makeWebSocketResource(factory))   # same Site as /api

Each text frame is one JSON message (C{docs/signalling.rst}). This module
handles C{register} itself and hands every other valid message to the
L{IClientMessageHandler} with the L{ClientConnection} it came on; the
handler (the call engine) checks that the connection owns the call.
"""

import hmac
import json
from collections.abc import Mapping

from autobahn.exception import Disconnected
from autobahn.twisted.resource import WebSocketResource
from autobahn.twisted.websocket import WebSocketServerFactory, WebSocketServerProtocol
from twisted.internet.defer import Deferred
from twisted.logger import Logger
from zope.interface import implementer

from linkrtc.interfaces import IClientConnection
from linkrtc.signalling.messages import MAX_MESSAGE_SIZE, MessageError, parseClientMessage

__all__ = [
    "ClientConnection",
    "SignallingServerProtocol",
    "SignallingFactory",
    "makeWebSocketResource",
]

log = Logger()


@implementer(IClientConnection)
class ClientConnection:
    """
    One client's WebSocket connection as the rest of LinkRTC sees it.

    A separate object from the Autobahn protocol because Autobahn's
    C{sendMessage(payload, isBinary)} takes bytes, while
    L{IClientConnection.sendMessage} takes a C{dict}.

    @ivar clientName: the registered name (C{str}) or C{None}; kept after
        the connection closes so C{clientLost} can read it.
    @ivar trace: C{True} if it registered with C{"trace": true}.
    @ivar peer: the remote address as Autobahn gives it (C{str}, e.g.
        C{"tcp:127.0.0.1:40000"}), for logs.
    @ivar connected: C{False} once the WebSocket closed.
    """

    def __init__(self, protocol, peer=None):
        self._protocol = protocol
        self.clientName = None
        self.trace = False
        self.peer = peer
        self.connected = True

    def sendMessage(self, message):
        """
        Send one JSON message.

        @param message: a C{dict} with a C{"type"} key (JSON-serialisable).
        @return: C{True} if it was written, C{False} if the connection is
            closed (the message is dropped and logged at debug level).
        """
        return self._protocol.sendJSON(message)

    def close(self, code=1000, reason=None):
        """Start the WebSocket closing handshake (RFC 6455 §7.1.2)."""
        self._protocol.sendClose(code, reason)

    def __repr__(self):
        return f"<ClientConnection {self.clientName!r} {self.peer}>"


class SignallingServerProtocol(WebSocketServerProtocol):
    """
    One client WebSocket: decodes and validates JSON text frames, handles
    C{register}, passes the rest to C{factory.handler}.

    Errors are answered with C{{"type": "error", "code": INT, "message":
    TEXT, "field": NAME}} (plus C{"call"} when known); the connection
    stays open. Codes: 400 malformed message, 401 token missing, 403 bad
    token or not registered yet, 500 internal fault.
    """

    connection = None

    def onConnect(self, request):
        self.connection = ClientConnection(self, peer=request.peer)
        return None

    def onOpen(self):
        self.factory.openConnections.add(self)
        log.debug("signalling connection open from {peer}", peer=self.peer)

    def onMessage(self, payload, isBinary):
        try:
            self._messageReceived(payload, isBinary)
        except Exception:
            log.failure("fault handling a client message from {peer}", peer=self.peer)
            self.sendError(500, "internal error")

    def _messageReceived(self, payload, isBinary):
        conn = self.connection
        if isBinary:
            self.sendError(400, "binary frames are not accepted; send JSON text", "type")
            return
        try:
            msg = parseClientMessage(payload, self.factory.maxMessageSize)
        except MessageError as e:
            log.info("bad message from {peer}: {field}: {why}", peer=self.peer,
                     field=e.field, why=e.message)
            self.sendError(e.code, e.message, e.field, e.call)
            return
        if msg["type"] == "register":
            self._register(msg)
            return
        if conn.clientName is None:
            self.sendError(403, "not registered: send {\"type\":\"register\"} first", "type",
                           msg.get("call"))
            return
        if "call" in msg and self.factory.directory.tracing:
            self.factory.directory.trace(msg["call"], "in", "ws", _text(payload),
                                         [conn.clientName])
        result = self.factory.handler.clientMessageReceived(conn, msg)
        if isinstance(result, Deferred):
            result.addErrback(self._handlerFailed, msg)

    def _handlerFailed(self, failure, msg):
        log.failure("call engine failed on {type} from {name}", failure,
                    type=msg["type"], name=self.connection.clientName)
        self.sendError(500, "internal error", call=msg.get("call"))

    def _register(self, msg):
        conn = self.connection
        name = msg["client"]
        tokens = self.factory.tokens
        if tokens is not None:
            if isinstance(tokens, Mapping):
                expected = tokens.get(name)
            else:
                expected = tokens(name)
            if expected is None:
                log.info("register refused for unknown client {name} from {peer}",
                         name=name, peer=self.peer)
                self.sendError(403, "client name not allowed", "client")
                return
            token = msg.get("token")
            if token is None:
                self.sendError(401, "token required", "token")
                return
            if not hmac.compare_digest(token.encode("utf-8"), str(expected).encode("utf-8")):
                log.info("register refused for {name} from {peer}: bad token",
                         name=name, peer=self.peer)
                self.sendError(403, "bad token", "token")
                return
        old = conn.clientName
        self.factory.directory.register(name, conn, trace=msg["trace"])
        conn.clientName = name
        conn.trace = msg["trace"]
        if old is not None and old != name:
            log.info("connection {peer} moved from {old} to {name}", peer=self.peer,
                     old=old, name=name)
        else:
            log.info("client {name} registered from {peer}", name=name, peer=self.peer)
        self.sendJSON({"type": "registered", "client": name})

    def onClose(self, wasClean, code, reason):
        self.factory.openConnections.discard(self)
        conn = self.connection
        if conn is None or not conn.connected:
            return
        conn.connected = False
        self.factory.directory.unregister(conn)
        if conn.clientName is None:
            return
        log.info("client {name} connection {peer} closed ({code})", name=conn.clientName,
                 peer=self.peer, code=code)
        try:
            self.factory.handler.clientLost(conn)
        except Exception:
            log.failure("call engine failed on clientLost for {name}", name=conn.clientName)

    def sendError(self, code, message, field=None, call=None):
        """
        Send C{{"type": "error", "code": code, "message": message}} with
        C{"field"} and C{"call"} when given.
        """
        err = {"type": "error", "code": code, "message": message}
        if field is not None:
            err["field"] = field
        if call is not None:
            err["call"] = call
        self.sendJSON(err)

    def sendJSON(self, message):
        """
        Encode C{message} (a C{dict}) as compact UTF-8 JSON and send it as
        one text frame.

        @return: C{True} if sent, C{False} if the connection is not open.
        """
        conn = self.connection
        if conn is None or not conn.connected or self.state != self.STATE_OPEN:
            log.debug("dropping {type} for closed connection {peer}",
                      type=message.get("type"), peer=self.peer)
            return False
        payload = json.dumps(message, ensure_ascii=False, separators=(",", ":")).encode("utf-8")
        try:
            self.sendMessage(payload, False)
        except Disconnected:
            return False
        if (self.factory.directory.tracing and message.get("type") != "trace"
                and "call" in message and conn.clientName):
            self.factory.directory.trace(message["call"], "out", "ws", payload.decode("utf-8"),
                                         [conn.clientName])
        return True


def _text(payload):
    if isinstance(payload, (bytes, bytearray)):
        return bytes(payload).decode("utf-8", "replace")
    return payload


class _ClockTimer:
    """
    Autobahn's batched-timer interface (C{call_later}) over an injected
    L{IReactorTime}, so handshake and keep-alive timers obey a test
    C{task.Clock} instead of txaio's global reactor.
    """

    def __init__(self, clock):
        self._clock = clock

    def call_later(self, delay, func, *args, **kwargs):
        return self._clock.callLater(delay, func, *args, **kwargs)


class SignallingFactory(WebSocketServerFactory):
    """
    Builds L{SignallingServerProtocol}s.

    @param directory: the L{linkrtc.signalling.directory.ClientDirectory}.
    @param handler: the L{IClientMessageHandler} (the call engine).
    @param tokens: C{None} (no token needed; a given token is ignored), or
        a mapping or callable C{name -> expected token (str) or None}:
        C{None} refuses the name (403), a missing token gets 401, a wrong
        one 403.
    @param clock: an L{IReactorTime} for the handshake, close and
        keep-alive timers (the global reactor if C{None}, imported late).
    @param autoPingInterval: seconds between WebSocket pings (0 = never).
    @param autoPingTimeout: seconds to wait for the pong before dropping
        the connection (which ends its calls through C{clientLost}).
    @param openHandshakeTimeout: seconds for the opening handshake.
    @param maxMessageSize: octets; a bigger message gets an C{error}
        (400, field C{type}) and the connection stays. Frames over 16
        times this (at least 1 MiB) close the connection (1009).
    """

    protocol = SignallingServerProtocol

    def __init__(self, directory, handler, tokens=None, clock=None, url=None,
                 autoPingInterval=20.0, autoPingTimeout=10.0, openHandshakeTimeout=10.0,
                 maxMessageSize=MAX_MESSAGE_SIZE):
        if clock is None:
            from twisted.internet import reactor as clock
        super().__init__(url=url, reactor=clock)
        self.clock = clock
        self._batched_timer = _ClockTimer(clock)
        self.directory = directory
        self.handler = handler
        self.tokens = tokens
        self.maxMessageSize = maxMessageSize
        #: The open connections' protocols (for the metrics).
        self.openConnections = set()
        hardLimit = max(16 * maxMessageSize, 1024 * 1024)
        self.setProtocolOptions(
            autoPingInterval=autoPingInterval,
            autoPingTimeout=autoPingTimeout,
            openHandshakeTimeout=openHandshakeTimeout,
            maxMessagePayloadSize=hardLimit,
            maxFramePayloadSize=hardLimit,
        )


def makeWebSocketResource(factory):
    """
    @param factory: a L{SignallingFactory}.
    @return: an L{IResource} to mount at C{/ws}:
        C{root.putChild(b"ws", makeWebSocketResource(factory))}.
    """
    return WebSocketResource(factory)
