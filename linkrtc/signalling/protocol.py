# -*- test-case-name: linkrtc.signalling.test.test_protocol -*-
"""
The WebSocket signalling endpoint (C{/ws}) for WebRTC clients, built on
Autobahn's Twisted flavour (RFC 6455).

Wiring::

    directory = ClientDirectory(clock=reactor)
    verifier = TokenVerifier(parseKeys(config.authSecret), reactor)   # or None
    factory = SignallingFactory(directory, callManager, verifier=verifier, clock=reactor)
    root.putChild(b"ws", makeWebSocketResource(factory))   # same Site as /api

Each text frame is one JSON message (C{docs/signalling.rst}). This module
handles C{register} itself and hands every other valid message to the
L{IClientMessageHandler} with the L{ClientConnection} it came on; the
handler (the call engine) checks that the connection owns the call.

Access control (docs/security.rst): with a verifier, every C{register}
needs a token for its name (L{linkrtc.signalling.tokens}); without one
(protected mode) only loopback peers may connect, anonymously. Browsers'
C{Origin} must be the page's own or an allowed one (403 at the handshake);
a connection must register within C{registerTimeout} seconds; sources are
limited in connections and in authentication failures
(L{linkrtc.signalling.guard.SourceGuard}).

Resuming (docs/signalling.rst): C{registered} carries a resume token
(L{linkrtc.signalling.resume}); a client that comes back within the grace
period registers with it (C{"resume": TOKEN}) and is told which calls wait
for it (C{"calls"}); it resumes each with a C{resume} message, which the
handler (an L{IResumeHandler}) takes.
"""

import json
import struct

from autobahn.exception import Disconnected
from autobahn.twisted.resource import WebSocketResource
from autobahn.twisted.websocket import WebSocketServerFactory, WebSocketServerProtocol
from twisted.internet.defer import Deferred
from twisted.logger import Logger
from zope.interface import implementer

from linkrtc.interfaces import IClientConnection, IResumeHandler
from linkrtc.signalling.admission import GuardedConnection, admitHandshake
from linkrtc.signalling.guard import (
    SourceGuard,
    isLoopbackAddress,
    isLoopbackHost,
    normaliseOrigin,
    securityEvent,
)
from linkrtc.signalling.messages import MAX_MESSAGE_SIZE, MessageError, parseClientMessage
from linkrtc.signalling.resume import ResumeError, ResumeTokens
from linkrtc.signalling.tokens import LOCAL_GRANTS, Grants, Identity, TokenError

__all__ = [
    "CLOSE_UNAUTHENTICATED",
    "CLOSE_REGISTER_TIMEOUT",
    "CLOSE_LOCKED_OUT",
    "CLOSE_RESUMED",
    "ClientConnection",
    "SignallingServerProtocol",
    "SignallingFactory",
    "makeWebSocketResource",
]

log = Logger()

#: WebSocket close code (RFC 6455 §7.4.2, private range): protected mode
#: refused a client that is not on loopback.
CLOSE_UNAUTHENTICATED = 4401

#: WebSocket close code: no C{register} within the register timeout.
CLOSE_REGISTER_TIMEOUT = 4408

#: WebSocket close code: the source failed authentication too often.
CLOSE_LOCKED_OUT = 4429

#: WebSocket close code: the client resumed on a newer connection.
CLOSE_RESUMED = 4410

#: The one error a refused token gets, whatever the cause.
AUTH_FAILED = (401, "authentication failed", "token")

#: Headers a reverse proxy adds: their presence on a loopback connection
#: means the client is elsewhere, so it is not trusted as local.
FORWARDING_HEADERS = ("forwarded", "x-forwarded-for", "x-real-ip")

_NO_GRANTS = Grants()

#: The encoder of every message sent, built once (fast path): C{json.dumps}
#: with arguments builds a new C{JSONEncoder} for every message.
_ENCODER = json.JSONEncoder(ensure_ascii=False, separators=(",", ":"))


@implementer(IClientConnection)
class ClientConnection:
    """
    One client's WebSocket connection as the rest of LinkRTC sees it.

    A separate object from the Autobahn protocol because Autobahn's
    C{sendMessage(payload, isBinary)} takes bytes, while
    L{IClientConnection.sendMessage} takes a C{dict}.

    @ivar clientName: the registered name (C{str}) or C{None}; kept after
        the connection closes so C{clientLost} can read it.
    @ivar trace: C{True} if it registered with C{"trace": true} and its
        identity holds the C{trace} grant.
    @ivar peer: the remote address as Autobahn gives it (C{str}, e.g.
        C{"tcp:127.0.0.1:40000"}), for logs.
    @ivar source: the peer's IP address from the socket (C{str}).
    @ivar identity: the L{linkrtc.signalling.tokens.Identity} it
        registered with, or C{None} before C{register}.
    @ivar connected: C{False} once the WebSocket closed.
    """

    def __init__(self, protocol, peer=None, source=None):
        self._protocol = protocol
        self.clientName = None
        self.trace = False
        self.peer = peer
        self.source = source
        self.identity = None
        self.connected = True

    @property
    def grants(self):
        """The L{linkrtc.signalling.tokens.Grants} of its identity (none before C{register})."""
        return self.identity.grants if self.identity is not None else _NO_GRANTS

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


class SignallingServerProtocol(GuardedConnection, WebSocketServerProtocol):
    """
    One client WebSocket: decodes and validates JSON text frames, handles
    C{register}, passes the rest to C{factory.handler}.

    Errors are answered with C{{"type": "error", "code": INT, "message":
    TEXT, "field": NAME}} (plus C{"call"} when known); the connection
    stays open. Codes: 400 malformed message, 401 authentication failed
    (any refused token, field C{token}), 403 not registered yet or a
    grant missing, 500 internal fault.

    Close codes: L{CLOSE_UNAUTHENTICATED} (protected mode, not loopback),
    L{CLOSE_REGISTER_TIMEOUT}, L{CLOSE_LOCKED_OUT}. Handshakes are refused
    with HTTP 403 (C{Origin}) or 429 (too many connections, locked out).
    """

    connection = None
    anonymousAllowed = False
    _registerTimer = None

    def dataReceived(self, data):
        """
        Hand C{data} to Autobahn's frame parser.

        A fast path: Autobahn's own C{dataReceived} builds the arguments
        of a debug log event (C{hltype}, C{hlval}: a qualified name and
        markup) on every read before the logger drops it.
        """
        self._dataReceived(data)

    def connectionGone(self):
        self._cancelRegisterTimer()

    def onConnect(self, request):
        factory, source = self.factory, self.source
        admitHandshake(factory.guard, source, request, factory.allowedOrigins)
        host = request.headers.get("host")
        self.anonymousAllowed = (
            factory.verifier is None and isLoopbackAddress(source) and isLoopbackHost(host)
            and not any(h in request.headers for h in FORWARDING_HEADERS))
        self.connection = ClientConnection(self, peer=request.peer, source=source)
        return None

    def onOpen(self):
        self.factory.openConnections.add(self)
        log.debug("signalling connection open from {peer}", peer=self.peer)
        if self.factory.verifier is None and not self.anonymousAllowed:
            securityEvent("anonymous_refused", self.source)
            self.sendClose(CLOSE_UNAUTHENTICATED,
                           "anonymous clients only from loopback: run LinkRTC with "
                           "--auth-secret and register with a token")
            return
        self._registerTimer = self.factory.clock.callLater(
            self.factory.registerTimeout, self._registerTimedOut)

    def _registerTimedOut(self):
        self._registerTimer = None
        if self.connection is not None and self.connection.clientName is None:
            securityEvent("register_timeout", self.source,
                          seconds=self.factory.registerTimeout)
            self.sendClose(CLOSE_REGISTER_TIMEOUT,
                           f"no register within {self.factory.registerTimeout:g} s")

    def _cancelRegisterTimer(self):
        if self._registerTimer is not None and self._registerTimer.active():
            self._registerTimer.cancel()
        self._registerTimer = None

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
        if msg["type"] == "message":
            self._instantMessage(msg)
            return
        if msg["type"] == "call" and not conn.grants.outgoing:
            securityEvent("grant_refused", self.source, identity=conn.clientName,
                          grant="outgoing")
            err = {"type": "error", "code": 403, "field": "to",
                   "message": "this client may not place calls (no outgoing grant)"}
            if msg.get("ref") is not None:
                err["ref"] = msg["ref"]
            self.sendJSON(err)
            return
        if "call" in msg and self.factory.directory.tracing:
            self.factory.directory.trace(msg["call"], "in", "ws", _text(payload),
                                         [conn.clientName])
        result = self.factory.handler.clientMessageReceived(conn, msg)
        if isinstance(result, Deferred):
            result.addErrback(self._handlerFailed, msg)

    def _instantMessage(self, msg):
        """
        A C{message} (docs/signalling.rst): to the messenger
        (L{linkrtc.sip.messaging.Messenger}), or C{error} 501 without one.
        """
        messenger = self.factory.messenger
        if messenger is None:
            err = {"type": "error", "code": 501, "field": "type",
                   "message": "instant messages are not available"}
            if msg.get("ref") is not None:
                err["ref"] = msg["ref"]
            self.sendJSON(err)
            return
        result = messenger.clientMessage(self.connection, msg)
        if isinstance(result, Deferred):
            result.addErrback(self._handlerFailed, msg)

    def _handlerFailed(self, failure, msg):
        log.failure("call engine failed on {type} from {name}", failure,
                    type=msg["type"], name=self.connection.clientName)
        self.sendError(500, "internal error", call=msg.get("call"))

    def _register(self, msg):
        conn = self.connection
        name = msg["client"]
        guard = self.factory.guard
        if guard.lockedOut(self.source):
            securityEvent("locked_out", self.source, identity=name, phase="register")
            self.sendError(*AUTH_FAILED)
            self.sendClose(CLOSE_LOCKED_OUT, "too many authentication failures")
            return
        try:
            identity = self._authenticate(name, msg.get("token"))
        except TokenError as e:
            securityEvent("auth_failed", self.source, identity=name, reason=e.reason)
            self.sendError(*AUTH_FAILED)
            if guard.failed(self.source):
                securityEvent("locked_out", self.source, identity=name,
                              failures=guard.failureLimit, seconds=guard.lockout)
                self.sendClose(CLOSE_LOCKED_OUT, "too many authentication failures")
            return
        self._cancelRegisterTimer()
        trace = msg["trace"] and identity.grants.trace
        lost = self._redeem(name, msg.get("resume"))
        old = conn.clientName
        self.factory.directory.register(name, conn, trace=trace)
        conn.clientName = name
        conn.identity = identity
        conn.trace = trace
        if old is not None and old != name:
            log.info("connection {peer} moved from {old} to {name}", peer=self.peer,
                     old=old, name=name)
        else:
            log.info("client {name} registered from {peer}{how}", name=name, peer=self.peer,
                     how=" (anonymous, loopback)" if identity.anonymous else "")
        reply = {"type": "registered", "client": name}
        token = self.factory.resumeTokens.issue(conn, name)
        if token is not None:
            reply["resume"] = token
        if "resume" in msg:
            reply["calls"] = self._resumeCalls(lost) if lost is not None else []
        if msg["trace"] and not trace:
            reply["trace"] = False
        self.sendJSON(reply)

    def _redeem(self, name, token):
        """
        Use the resume token of a C{register} (if it has one).

        @return: the connection it was issued to, or C{None} (no token, or
            a refused one: the client was sent C{error} 404/410 with
            C{field} C{resume}).
        """
        if token is None:
            return None
        try:
            lost = self.factory.resumeTokens.redeem(token, name)
        except ResumeError as e:
            log.info("client {name} from {peer}: resume refused: {why}", name=name,
                     peer=self.peer, why=e.message)
            self.sendError(e.code, e.message, "resume")
            return None
        if lost is self.connection:
            return None  # its own token: nothing to take over
        if lost.connected:
            # The client came back before the old connection's close
            # reached us: that one is gone as far as its calls go.
            other = lost._protocol
            other._connectionGone(resumable=True)
            other.sendClose(CLOSE_RESUMED, "resumed on another connection")
        return lost

    def _resumeCalls(self, lost):
        """@return: the calls waiting for C{lost} (see L{IResumeHandler.clientResumed})."""
        handler = self.factory.handler
        if not IResumeHandler.providedBy(handler):
            return []
        calls = handler.clientResumed(lost, self.connection)
        log.info("client {name} resumed from {peer}: {count} call(s) waiting",
                 name=self.connection.clientName, peer=self.peer, count=len(calls))
        return calls

    def _authenticate(self, name, token):
        """
        @return: the L{Identity} for a C{register} of C{name} with C{token}.
        @raise TokenError: refused.
        """
        verifier = self.factory.verifier
        if verifier is None:
            if not self.anonymousAllowed:
                raise TokenError("not_loopback")
            return Identity(name, LOCAL_GRANTS, anonymous=True)
        return verifier.verify(name, token)

    def onClose(self, wasClean, code, reason):
        self.factory.openConnections.discard(self)
        self._cancelRegisterTimer()
        conn = self.connection
        if conn is not None and conn.connected and conn.clientName is not None:
            log.info("client {name} connection {peer} closed ({code})", name=conn.clientName,
                     peer=self.peer, code=code)
        self._connectionGone()

    def _connectionGone(self, resumable=False):
        """
        The connection is gone (closed, or taken over by a resume with
        C{resumable} true): out of the directory, its resume token's grace
        period starts, and the handler is told (once).
        """
        conn = self.connection
        if conn is None or not conn.connected:
            return
        conn.connected = False
        self.factory.directory.unregister(conn)
        if conn.clientName is None:
            return
        if resumable:
            self.factory.resumeTokens.revoke(conn)
        else:
            self.factory.resumeTokens.lost(conn)
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
        payload = _ENCODER.encode(message).encode("utf-8")
        try:
            self._sendText(payload)
        except Disconnected:
            return False
        if (self.factory.directory.tracing and message.get("type") != "trace"
                and "call" in message and conn.clientName):
            self.factory.directory.trace(message["call"], "out", "ws", payload.decode("utf-8"),
                                         [conn.clientName])
        return True


    def _sendText(self, payload):
        """
        Send C{payload} (UTF-8 C{bytes}) as one text message.

        A fast path: in the common case (the connection open, nothing
        queued, no compression, fragmentation, server-side masking, frame
        or octet logging, timing or size limit in the way) the frame is
        one unmasked header (RFC 6455 §5.2) and the payload, written at
        once; Autobahn's C{sendMessage}, C{sendFrame} and C{sendData}
        check all of these per message and build a debug log event's
        arguments. Otherwise it is Autobahn's C{sendMessage}. Autobahn's
        C{trafficStats} do not count fast-path messages.

        @raise Disconnected: the connection is not open.
        """
        size = len(payload)
        if (self.state != self.STATE_OPEN or self.send_queue or self._perMessageCompress is not None
                or self.autoFragmentSize or self.maskServerFrames or self.logFrames
                or self.logOctets or self.trackedTimings
                or 0 < self.maxMessagePayloadSize < size):
            self.sendMessage(payload, False)
            return
        if size <= 125:
            header = _TEXT_HEADERS[size]
        elif size <= 0xFFFF:
            header = _HEADER_16.pack(0x81, 126, size)
        else:
            header = _HEADER_64.pack(0x81, 127, size)
        self.transport.write(header + payload)


#: The header of an unmasked, final text frame (RFC 6455 §5.2), by payload
#: length up to 125 octets; then 126 or 127 and the length in 2 or 8 octets.
_TEXT_HEADERS = [bytes((0x81, n)) for n in range(126)]
_HEADER_16 = struct.Struct("!BBH")
_HEADER_64 = struct.Struct("!BBQ")


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
    @param verifier: a L{linkrtc.signalling.tokens.TokenVerifier}, or
        C{None} for protected mode (loopback peers only, anonymous; a given
        token is ignored).
    @param clock: an L{IReactorTime} for the handshake, close and
        keep-alive timers (the global reactor if C{None}, imported late).
    @param autoPingInterval: seconds between WebSocket pings (0 = never).
    @param autoPingTimeout: seconds to wait for the pong before dropping
        the connection (which ends its calls through C{clientLost}).
    @param openHandshakeTimeout: seconds for the opening handshake.
    @param maxMessageSize: octets; a bigger message gets an C{error}
        (400, field C{type}) and the connection stays. Frames over 16
        times this (at least 1 MiB) close the connection (1009).
    @param allowedOrigins: origins (C{"https://app.example.com"}) allowed
        besides the page's own.
    @param registerTimeout: seconds a connection may stay without a
        successful C{register} before it is closed (4408).
    @param guard: the L{SourceGuard} (one with the defaults if C{None}).
    @param resumeSeconds: the grace period, in seconds, during which a
        client whose connection closed may come back with its resume
        token (C{--resume-seconds}); 0 (the default here) disables resume
        tokens.
    @param messenger: the L{linkrtc.sip.messaging.Messenger} that relays
        C{message}s, or C{None} (C{message} gets C{error} 501).
    @raise ValueError: a malformed origin in C{allowedOrigins}.
    """

    protocol = SignallingServerProtocol

    def __init__(self, directory, handler, verifier=None, clock=None, url=None,
                 autoPingInterval=20.0, autoPingTimeout=10.0, openHandshakeTimeout=10.0,
                 maxMessageSize=MAX_MESSAGE_SIZE, allowedOrigins=(), registerTimeout=10.0,
                 guard=None, resumeSeconds=0.0, messenger=None):
        if clock is None:
            from twisted.internet import reactor as clock
        super().__init__(url=url, reactor=clock)
        self.clock = clock
        self._batched_timer = _ClockTimer(clock)
        self.directory = directory
        self.handler = handler
        self.verifier = verifier
        self.allowedOrigins = frozenset(normaliseOrigin(o) for o in allowedOrigins)
        self.registerTimeout = registerTimeout
        self.guard = guard if guard is not None else SourceGuard(clock)
        self.maxMessageSize = maxMessageSize
        #: The L{ResumeTokens} of this endpoint's clients.
        self.resumeTokens = ResumeTokens(clock, resumeSeconds)
        self.messenger = messenger
        #: The open connections' protocols (for the metrics).
        self.openConnections = set()
        hardLimit = max(16 * maxMessageSize, 1024 * 1024)
        self.setProtocolOptions(
            autoPingInterval=autoPingInterval,
            autoPingTimeout=autoPingTimeout,
            openHandshakeTimeout=openHandshakeTimeout,
            maxMessagePayloadSize=hardLimit,
            maxFramePayloadSize=hardLimit,
            # "null" reaches onConnect, which refuses it with 403 like any
            # other foreign origin.
            allowNullOrigin=True,
        )


def makeWebSocketResource(factory):
    """
    @param factory: a L{SignallingFactory}.
    @return: an L{IResource} to mount at C{/ws}:
        C{root.putChild(b"ws", makeWebSocketResource(factory))}.
    """
    return WebSocketResource(factory)
