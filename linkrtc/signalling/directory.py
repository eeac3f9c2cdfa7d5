# -*- test-case-name: linkrtc.signalling.test.test_directory -*-
"""
The directory of connected WebRTC clients: which connections are
registered under which name.

Several connections may share one name (browser tabs, devices): an
incoming call for that name rings all of them.

SIP phones registered with LinkRTC's registrar (L{linkrtc.sip.registrar})
are in the same directory through its binding table: L{sipContactsFor}
gives a name's contacts and L{isReachable} is true for a name with a
connection or a contact (a client's C{call} to such a name rings the
phone, L{linkrtc.call.contacts}).
"""

import time

from twisted.logger import Logger
from zope.interface import implementer

from linkrtc.interfaces import IClientDirectory

__all__ = ["ClientDirectory"]

log = Logger()


@implementer(IClientDirectory)
class ClientDirectory:
    """
    Maps client names to the L{IClientConnection}s registered under them.

    A connection is under at most one name; registering it under another
    name moves it. The directory does not change C{connection.clientName}:
    the signalling protocol does that.

    @ivar clock: an L{IReactorTime} whose C{seconds()} stamps C{trace}
        messages, or C{None} to use the system time.
    @ivar bindings: the registrar's L{linkrtc.sip.bindings.BindingTable},
        or C{None} (no SIP phones).
    """

    def __init__(self, clock=None, bindings=None):
        self.clock = clock
        self.bindings = bindings
        self._byName = {}
        self._nameOf = {}
        self._tracing = set()

    def register(self, name, connection, trace=False):
        """
        Put C{connection} under C{name}, removing it from any other name.
        Registering again under the same name keeps its place (and updates
        C{trace}).

        @param name: the client name, C{str} (already validated).
        @param connection: an L{IClientConnection}.
        @param trace: C{True} to send this connection C{trace} messages.
        """
        old = self._nameOf.get(connection)
        if old is not None and old != name:
            self._remove(old, connection)
        conns = self._byName.setdefault(name, [])
        if connection not in conns:
            conns.append(connection)
        self._nameOf[connection] = name
        if trace:
            self._tracing.add(connection)
        else:
            self._tracing.discard(connection)
        log.debug("client {name} registered ({count} connection(s))", name=name,
                  count=len(conns))

    def unregister(self, connection):
        """
        Forget C{connection} (it closed). Unknown connections are ignored.

        @return: the name it was under (C{str}) or C{None}.
        """
        name = self._nameOf.pop(connection, None)
        self._tracing.discard(connection)
        if name is not None:
            self._remove(name, connection)
            log.debug("client {name} unregistered", name=name)
        return name

    def _remove(self, name, connection):
        conns = self._byName.get(name)
        if conns is None:
            return
        if connection in conns:
            conns.remove(connection)
        if not conns:
            del self._byName[name]

    def nameOf(self, connection):
        """@return: the name C{connection} is registered under, or C{None}."""
        return self._nameOf.get(connection)

    def connectionsFor(self, name):
        """
        @return: a new C{list} of the L{IClientConnection}s registered as
            C{name}, oldest first (empty if none). A connection whose
            C{connected} is false is left out (a phone registered over a
            WebSocket that closed: L{linkrtc.call.wsphones}).
        """
        return [c for c in self._byName.get(name, ()) if getattr(c, "connected", True)]

    def sipContactsFor(self, name):
        """
        @return: a new C{list} of the live registered SIP contacts
            (L{linkrtc.sip.bindings.Binding}) of C{name}, preferred first.
        """
        if self.bindings is None:
            return []
        return self.bindings.bindingsFor(name)

    def isReachable(self, name):
        """@return: C{True} if C{name} has a connection or a registered SIP contact."""
        return bool(self.connectionsFor(name)) or bool(self.sipContactsFor(name))

    def names(self):
        """@return: a sorted C{list} of the names with at least one connection."""
        return sorted(self._byName)

    @property
    def tracing(self):
        """
        C{True} while at least one connection asked for C{trace} messages:
        a cheap test to make before building a ladder line.
        """
        return bool(self._tracing)

    def traceConnections(self, names=None):
        """
        @param names: an iterable of client names to restrict to, or
            C{None} for every name.
        @return: a C{list} of the connections that registered with
            C{"trace": true} (under one of C{names}).
        """
        if not self._tracing:
            return []
        if names is None:
            return [c for c in self._nameOf if c in self._tracing]
        wanted = set(names)
        return [c for c, n in self._nameOf.items() if n in wanted and c in self._tracing]

    def trace(self, callId, direction, proto, text, names):
        """
        Send a ladder line to the trace-enabled connections of C{names}:
        C{{"type": "trace", "call": callId, "time": UNIX_SECONDS, "dir":
        direction, "proto": proto, "text": text}}.

        Only the names involved in the call should be given, so a client
        never sees another client's calls.

        @param callId: the call id, C{str}.
        @param direction: C{"in"} (towards LinkRTC) or C{"out"}.
        @param proto: C{"sip"} or C{"ws"}.
        @param text: the message, C{str} (or UTF-8 C{bytes}, decoded with
            replacement).
        @param names: an iterable of client names.
        """
        if not self._tracing:
            return
        conns = self.traceConnections(names)
        if not conns:
            return
        if isinstance(text, (bytes, bytearray)):
            text = bytes(text).decode("utf-8", "replace")
        now = self.clock.seconds() if self.clock is not None else time.time()
        message = {"type": "trace", "call": callId, "time": now, "dir": direction,
                   "proto": proto, "text": text}
        for conn in conns:
            conn.sendMessage(dict(message))
