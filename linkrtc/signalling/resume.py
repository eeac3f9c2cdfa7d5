# -*- test-case-name: linkrtc.signalling.test.test_resume -*-
"""
Resume tokens: how a client that lost its WebSocket (a page reload, a
network change) proves, on its next connection, that it is the same client
and may pick its live calls up again (docs/signalling.rst, "Resuming after
a reload").

Every successful C{register} gets a new token in C{registered}
(C{"resume": TOKEN}); the connection's previous token stops working
(rotation). The token is:
 - unguessable: 256 random bits (C{secrets.token_urlsafe(32)});
 - bound to the identity: only a C{register} of the same client name
   (authenticated as usual) may use it;
 - single use: it works once;
 - short-lived once its connection is gone: it works for C{seconds} after
   the connection closed (the grace period), and not after.

The store keeps no token of a connection that closed longer ago than the
grace period, except a bounded memory of the expired ones (so that a late
client hears 410 rather than 404).
"""

import collections
import secrets

from twisted.logger import Logger

__all__ = ["ResumeError", "ResumeTokens", "TOKEN_BYTES"]

log = Logger()

#: Random octets in a token (256 bits; 43 characters of base64url).
TOKEN_BYTES = 32

#: Expired tokens remembered (for the 410 answer), at most.
MAX_EXPIRED = 1024


class ResumeError(Exception):
    """
    A resume token cannot be used.

    @ivar code: the C{error.code}: 404 (unknown, used already, or issued to
        another client name) or 410 (its grace period is over).
    @ivar message: words for the client, C{str}.
    """

    def __init__(self, code, message):
        super().__init__(f"{code} {message}")
        self.code = code
        self.message = message


class _Entry:
    __slots__ = ("connection", "name", "expiry")

    def __init__(self, connection, name):
        self.connection = connection
        self.name = name
        #: The C{IDelayedCall} ending the grace period, once the connection closed.
        self.expiry = None


class ResumeTokens:
    """
    The resume tokens of the live client connections and of those lost less
    than C{seconds} ago.

    @param clock: an L{IReactorTime} for the grace periods.
    @param seconds: the grace period, in seconds (C{float}); 0 disables
        resuming (L{issue} then returns C{None}).
    @param token: a function returning a new token (C{str}); tests give
        their own. Default: C{secrets.token_urlsafe(TOKEN_BYTES)}.
    """

    def __init__(self, clock, seconds=10.0, token=None):
        self.clock = clock
        self.seconds = float(seconds)
        self._newToken = token or (lambda: secrets.token_urlsafe(TOKEN_BYTES))
        self._entries = {}
        self._tokenOf = {}
        self._expired = collections.OrderedDict()

    @property
    def enabled(self):
        """C{True} when resuming is on (a grace period above 0)."""
        return self.seconds > 0

    def issue(self, connection, name):
        """
        Give C{connection}, just registered as C{name}, a new token; its
        previous one (if any) stops working.

        @return: the token (C{str}), or C{None} when resuming is disabled.
        """
        self.revoke(connection)
        if not self.enabled:
            return None
        token = self._newToken()
        while token in self._entries:
            token = self._newToken()
        self._entries[token] = _Entry(connection, name)
        self._tokenOf[connection] = token
        return token

    def revoke(self, connection):
        """Forget C{connection}'s token (no-op if it has none)."""
        token = self._tokenOf.pop(connection, None)
        if token is None:
            return
        entry = self._entries.pop(token, None)
        if entry is not None and entry.expiry is not None and entry.expiry.active():
            entry.expiry.cancel()

    def lost(self, connection):
        """
        C{connection} closed: its token works for L{seconds} more, then
        expires (a later use gets 410).
        """
        token = self._tokenOf.get(connection)
        if token is None:
            return
        entry = self._entries[token]
        if entry.expiry is None:
            entry.expiry = self.clock.callLater(self.seconds, self._expire, token)

    def _expire(self, token):
        entry = self._entries.pop(token, None)
        if entry is None:
            return
        self._tokenOf.pop(entry.connection, None)
        self._expired[token] = entry.name
        while len(self._expired) > MAX_EXPIRED:
            self._expired.popitem(last=False)

    def redeem(self, token, name):
        """
        Use C{token} for a C{register} as C{name}: it works once.

        @return: the connection it was issued to (closed, or still open when
            the client came back before LinkRTC saw the old one close).
        @raise ResumeError: 404 for an unknown token, one used already or
            one issued to another name (the token then stays usable by its
            own client); 410 for one whose grace period is over.
        """
        entry = self._entries.get(token)
        if entry is None:
            if self._expired.get(token) == name:
                raise ResumeError(410, "resume token expired: the call ended")
            raise ResumeError(404, "unknown resume token")
        if entry.name != name:
            raise ResumeError(404, "unknown resume token")
        self.revoke(entry.connection)
        return entry.connection

    def __len__(self):
        """@return: the number of usable tokens."""
        return len(self._entries)
