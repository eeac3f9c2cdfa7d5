# -*- test-case-name: linkrtc.sip.test.test_registrar -*-
"""
The registrar's location service (RFC 3261 §10.3): which contacts are
bound to which user, until when, and by which flow they are reached.

A L{Binding} keeps the address the REGISTER came from (its L{Flow}: the
transport, host and port, and the stream connection if any, RFC 5626
style): requests for the contact go there, not to the host of the
contact URI, so a phone behind NAT is reached through the hole its
REGISTER made. The flow is generic (a transport name plus an address and
an optional connection object), so a SIP-over-WebSocket transport's
REGISTERs bind the same way.
"""

from dataclasses import dataclass, field

from twisted.logger import Logger

__all__ = ["Binding", "BindingTable", "Flow", "flowOf"]

log = Logger()


@dataclass(frozen=True)
class Flow:
    """
    How a registered contact is reached: where its REGISTER came from.

    @ivar transport: the transport name (C{"UDP"}, C{"TCP"}, C{"TLS"},
        C{"WS"}, C{"WSS"}).
    @ivar host: the source IP address, C{str}.
    @ivar port: the source port, C{int}.
    @ivar source: the transport layer's own source object (a
        L{linkrtc.sip.transport.Source}, carrying the connection), used as
        the destination of requests to the contact.
    """

    transport: str
    host: str
    port: int
    source: object = field(default=None, compare=False, repr=False)

    @property
    def connection(self):
        """The stream connection the REGISTER came on, or C{None} (UDP)."""
        return getattr(self.source, "connection", None)

    @property
    def alive(self):
        """C{False} once the stream connection of the flow has closed."""
        conn = self.connection
        return conn is None or bool(getattr(conn, "connected", True))

    def destination(self):
        """@return: the address to send requests for the contact to."""
        if self.source is not None:
            return self.source
        from linkrtc.sip.transport import Address

        return Address(self.transport, self.host, self.port)

    def __str__(self):
        return f"{self.transport}:{self.host}:{self.port}"


def flowOf(source):
    """
    @param source: where a request came from (a transport L{Source} or
        L{Address}, or anything with C{transport}, C{host}, C{port}).
    @return: its L{Flow}.
    """
    return Flow(str(getattr(source, "transport", "UDP")).upper(), str(source.host),
                int(source.port), source)


@dataclass
class Binding:
    """
    One contact bound to a user (RFC 3261 §10.3 step 7).

    @ivar user: the address-of-record's user part, C{str}.
    @ivar contact: the contact, a L{linkrtc.sip.uri.NameAddr} (its URI
        with its URI parameters as registered; contact parameters such as
        C{expires} and C{q} are kept aside).
    @ivar uriText: the contact URI as text (the key of the binding).
    @ivar flow: the L{Flow} the REGISTER came by.
    @ivar expiresAt: the absolute time (clock seconds) it expires.
    @ivar callId: the Call-ID of the REGISTER that made or refreshed it.
    @ivar cseq: its CSeq number, C{int}.
    @ivar q: the preference, C{float} 0..1.
    @ivar registeredAt: clock seconds when it was first bound.
    @ivar userAgent: the User-Agent of the REGISTER, C{str} or C{None}.
    @ivar identity: the L{linkrtc.signalling.tokens.Identity} of the
        derived credentials the REGISTER carried (their grants, C{kid},
        expiry), or C{None} for a configured user.
    """

    user: str
    contact: object
    uriText: str
    flow: Flow
    expiresAt: float
    callId: str
    cseq: int
    q: float = 1.0
    registeredAt: float = 0.0
    userAgent: str | None = None
    identity: object = None

    def expiresIn(self, now):
        """@return: whole seconds left at C{now} (C{int}, at least 0)."""
        return max(0, int(round(self.expiresAt - now)))


class BindingTable:
    """
    The bindings of every user, expiring on an injected clock.

    @param clock: an C{IReactorTime}.
    @param maxPerUser: contacts one user may hold at once; registering
        one more removes that user's oldest binding.
    @param onChange: called with a user name (C{str}) whenever that user's
        bindings change (added, refreshed, removed, expired), or C{None}.
    """

    def __init__(self, clock, maxPerUser=10, onChange=None):
        self.clock = clock
        self.maxPerUser = maxPerUser
        self.onChange = onChange
        self._byUser = {}
        self._timers = {}

    def __len__(self):
        return sum(len(b) for b in self._byUser.values())

    def users(self):
        """@return: the sorted names of users with at least one live binding."""
        return sorted(u for u in self._byUser if self.bindingsFor(u))

    def bindingsFor(self, user):
        """
        @return: a new C{list} of the live L{Binding}s of C{user}, most
            preferred (q) first, then most recent first. Bindings whose
            stream connection has closed are left out.
        """
        now = self.clock.seconds()
        bindings = [b for b in self._byUser.get(user, {}).values()
                    if b.expiresAt > now and b.flow.alive]
        bindings.sort(key=lambda b: (-b.q, -b.registeredAt))
        return bindings

    def get(self, user, uriText):
        """@return: the L{Binding} of C{user} for contact C{uriText}, or C{None}."""
        return self._byUser.get(user, {}).get(uriText)

    def bind(self, binding):
        """
        Add or refresh C{binding} (keyed by user and contact URI text). The
        first registration time of a refreshed binding is kept.
        """
        now = self.clock.seconds()
        bindings = self._byUser.setdefault(binding.user, {})
        old = bindings.get(binding.uriText)
        binding.registeredAt = old.registeredAt if old is not None else now
        bindings[binding.uriText] = binding
        if old is None and len(bindings) > self.maxPerUser:
            oldest = min((b for b in bindings.values() if b is not binding),
                         key=lambda b: b.registeredAt)
            log.info("registrar: {user} has more than {n} contacts: {uri} dropped",
                     user=binding.user, n=self.maxPerUser, uri=oldest.uriText)
            self._remove(oldest.user, oldest.uriText)
        self._schedule(binding)
        self._changed(binding.user)

    def unbind(self, user, uriText):
        """Remove one binding (an C{expires=0} contact). Unknown ones are ignored."""
        if self._remove(user, uriText):
            self._changed(user)

    def unbindAll(self, user):
        """Remove every binding of C{user} (C{Contact: *}, C{Expires: 0})."""
        removed = False
        for uriText in list(self._byUser.get(user, {})):
            removed = self._remove(user, uriText) or removed
        if removed:
            self._changed(user)

    def clear(self):
        """Forget everything (shutdown and tests); cancels the expiry timers."""
        for timer in self._timers.values():
            if timer.active():
                timer.cancel()
        self._timers.clear()
        self._byUser.clear()

    def _remove(self, user, uriText):
        bindings = self._byUser.get(user)
        if not bindings or uriText not in bindings:
            return False
        del bindings[uriText]
        if not bindings:
            del self._byUser[user]
        timer = self._timers.pop((user, uriText), None)
        if timer is not None and timer.active():
            timer.cancel()
        return True

    def _schedule(self, binding):
        key = (binding.user, binding.uriText)
        timer = self._timers.pop(key, None)
        if timer is not None and timer.active():
            timer.cancel()
        delay = max(0.0, binding.expiresAt - self.clock.seconds())
        self._timers[key] = self.clock.callLater(delay, self._expired, binding)

    def _expired(self, binding):
        self._timers.pop((binding.user, binding.uriText), None)
        current = self.get(binding.user, binding.uriText)
        if current is binding:
            log.info("registrar: contact {uri} of {user} expired", uri=binding.uriText,
                     user=binding.user)
            self._remove(binding.user, binding.uriText)
            self._changed(binding.user)

    def _changed(self, user):
        if self.onChange is not None:
            try:
                self.onChange(user)
            except Exception:
                log.failure("registrar: binding change listener failed")
