# -*- test-case-name: linkrtc.sip.test.test_websocket -*-
"""
The SIP side of SIP over WebSocket (RFC 7118): a L{SIPWebSocketConnection}
makes one WebSocket connection (opened by a browser softphone such as
JsSIP or SIP.js) a stream connection of the L{SIPTransportLayer}, with
transport C{WS} (plain HTTP) or C{WSS} (HTTPS).

The WebSocket itself (handshake, C{sip} subprotocol, Origin, frames) is
L{linkrtc.signalling.sipws}; it hands this adapter one SIP message per
frame (RFC 7118 §5.1: each frame holds exactly one message, so there is
no Content-Length framing) and closes the WebSocket when the adapter says
so.

Routing (RFC 7118 §5.2, RFC 5626 flow reuse): a WebSocket client cannot
be connected to; requests to it go over the connection it opened. The
layer finds that connection by

 - the L{linkrtc.sip.address.Source} of a REGISTER (the registrar's
   L{linkrtc.sip.bindings.Flow} keeps it), or
 - the host of the client's Contact or top Via (a random C{.invalid} name,
   RFC 7118 §5.2), recorded as an alias of the connection for every
   request it sends: in-dialog requests go to the remote target, which is
   that Contact.

When the connection is gone the client is unreachable: sending fails
with L{linkrtc.error.TransportError}; nothing opens a new connection.
"""

import re

from twisted.logger import Logger

from linkrtc.error import SIPParseError
from linkrtc.sip.address import Address

log = Logger()

#: The transports of SIP over WebSocket (RFC 7118 §7: Via C{WS}/C{WSS}).
WS_TRANSPORTS = frozenset(("WS", "WSS"))

#: WebSocket close code for a frame that is not a SIP message (an
#: application code, RFC 6455 §7.4.2, in the 4xxx range like C{/ws}'s;
#: the reason says "not a SIP message").
CLOSE_NOT_SIP = 4400

#: WebSocket close code when the layer closes the connection (normal closure).
CLOSE_GOING_AWAY = 1000

# A SIP start line (RFC 3261 §7.1, §7.2): "METHOD SP URI SP SIP/2.0" or
# "SIP/2.0 SP 3DIGIT".
_START_LINE = re.compile(
    rb"^(?:[A-Za-z0-9.!%*_+`'~-]+ [^ \r\n]+ SIP/\d+\.\d+|SIP/\d+\.\d+ \d{3}(?: [^\r\n]*)?)\r?\n")


def isSIPFrame(data):
    """
    @param data: the payload of one WebSocket frame, C{bytes}.
    @return: C{True} if it starts with a SIP start line (it may still fail
        to parse; the layer answers such a request with 400).
    """
    return bool(_START_LINE.match(data))


class _Closer:
    """The C{transport} of a L{SIPWebSocketConnection}: C{loseConnection()}."""

    def __init__(self, connection):
        self._connection = connection

    def loseConnection(self):
        self._connection.close(CLOSE_GOING_AWAY, "SIP transport closed")


class SIPWebSocketConnection:
    """
    One SIP-over-WebSocket connection as the L{SIPTransportLayer} sees a
    stream connection: C{transportName}, C{peer}, C{local}, C{connected},
    C{outbound}, C{send}, C{hold}/C{release} and C{transport.loseConnection}.

    @ivar transportName: C{"WS"} or C{"WSS"}.
    @ivar peer: the L{Address} of the client (transport, IP, TCP port).
    @ivar local: the L{Address} of our HTTP socket, or C{None}.
    @ivar aliases: the hosts (C{str}, lower case) of the client's Contact
        and Via that route to this connection.
    """

    outbound = False

    def __init__(self, layer, socket, transportName, peer, local=None):
        """
        @param layer: the L{linkrtc.sip.transport.SIPTransportLayer}.
        @param socket: the WebSocket: an object with C{sendSIP(data)}
            (C{bytes}, one text frame) and C{closeSIP(code, reason)}
            (C{int}, C{str}).
        @param transportName: C{"WS"} or C{"WSS"}.
        @param peer: C{(host, port)} of the client.
        @param local: C{(host, port)} of our socket, or C{None}.
        @raise ValueError: for another transport name.
        """
        transportName = transportName.upper()
        if transportName not in WS_TRANSPORTS:
            raise ValueError(f"not a WebSocket transport: {transportName!r}")
        self._layer = layer
        self._socket = socket
        self.transportName = transportName
        self.peer = Address(transportName, peer[0], peer[1])
        self.local = None if local is None else Address(transportName, local[0], local[1])
        self.connected = False
        self.aliases = set()
        self.transport = _Closer(self)

    def __repr__(self):
        return f"<SIPWebSocketConnection {self.peer}>"

    # -- from the WebSocket ---------------------------------------------------

    def connectionMade(self):
        """The WebSocket is open (handshake done with the C{sip} subprotocol)."""
        self.connected = True
        self._layer._connectionMade(self)

    def connectionLost(self):
        """The WebSocket closed: the flow and its aliases are gone."""
        if not self.connected:
            return
        self.connected = False
        self._layer._connectionLost(self, None)

    def frameReceived(self, data):
        """
        One WebSocket message (RFC 7118 §5.1: exactly one SIP message).

        A frame that is not SIP (no start line) closes the connection with
        L{CLOSE_NOT_SIP} and a reason; nothing else is touched. A SIP
        request that cannot be parsed is answered 400 statelessly on this
        connection (RFC 3261 §8.2.6), which stays open. Never raises.

        @param data: C{bytes} (a text frame's UTF-8, or a binary frame).
        """
        if not self.connected:
            return
        if not isSIPFrame(data):
            log.info("Closing {transport} connection from {peer}: frame is not SIP",
                     transport=self.transportName, peer=self.peer)
            self.close(CLOSE_NOT_SIP, "not a SIP message")
            return
        try:
            self._layer._streamMessageReceived(self, data)
        except Exception:
            log.failure("Error handling a SIP-over-WebSocket frame from {peer}", peer=self.peer)

    # -- from the layer -------------------------------------------------------

    def send(self, data):
        """Send one SIP message (C{bytes}) as one text frame (RFC 7118 §5.1)."""
        self._socket.sendSIP(data)

    def close(self, code, reason):
        """Close the WebSocket with C{code} (C{int}) and C{reason} (C{str})."""
        if self.connected:
            self.connected = False
            self._layer._connectionLost(self, None)
        self._socket.closeSIP(code, reason)

    def hold(self):
        """A dialog uses the connection; WebSocket connections are never closed for idling."""

    def release(self):
        """Undo L{hold}."""

    def noteAliases(self, request):
        """
        Record the hosts of C{request}'s Contact URIs and top Via sent-by
        as aliases of this connection (RFC 7118 §5.2: a C{.invalid} host
        the client made up).

        @param request: a L{linkrtc.sip.message.Request} received on it.
        @return: the C{set} of hosts added (lower case).
        """
        hosts = set()
        try:
            for contact in request.contacts:
                uri = contact.uri
                host = getattr(uri, "host", None)
                transport = str((getattr(uri, "params", None) or {}).get("transport", "")).lower()
                if host and transport in ("ws", "wss"):
                    hosts.add(host.lower())
        except (SIPParseError, AttributeError, TypeError):
            pass
        try:
            vias = request.vias
            if vias and vias[0].transport.upper() in WS_TRANSPORTS:
                hosts.add(vias[0].host.lower().strip("[]"))
        except (SIPParseError, AttributeError):
            pass
        hosts -= self.aliases
        self.aliases |= hosts
        return hosts


__all__ = ["CLOSE_NOT_SIP", "SIPWebSocketConnection", "WS_TRANSPORTS", "isSIPFrame"]
