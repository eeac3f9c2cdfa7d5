# -*- test-case-name: linkrtc.call.test.test_dialplan -*-
"""
The outbound dial plan: which numbers a caller may dial through which
trunk, with which caller ID, and how often (toll-fraud protection,
docs/trunks.rst "Dial plan").

    - L{identityOf} says who placed a call: the identity, its grants and
      whether a token authenticated it.
    - L{DialPlan.check} decides one target through one trunk: a
      L{DialDecision} or L{DialPlanRefused}. The client's C{call}, the
      application's C{outgoing} decision and a 3xx's Contacts all go
      through it (and a later transfer target will too).
    - L{callerIdentity} picks the From user and display name: the
      application's choice, the token's C{caller_id} claim, or the trunk's
      template, where C{{client}} only stands for an authenticated identity.
    - L{CallLimiter} bounds each identity's concurrent outbound calls and
      calls per minute.
    - L{securityEvent} writes the one log line of a refusal.

Patterns (a trunk's C{allow} and C{deny}): a pattern starting with C{^}
is a Python regular expression matched at the start of the number
(C{re.match}: add C{$} to anchor the end); any other pattern is a prefix
(compared without regard to case). Numbers are checked after their
visual separators (C{- . ( )}, RFC 3966 §5.1.1) are taken out, and that
normalised number is what the trunk receives.

Order (first rule that applies wins):

    1. a C{deny} pattern of the trunk matches: refused;
    2. an C{allow} pattern matches that is a regular expression, or a prefix
       at least as long as the longest matching built-in deny prefix
       (L{DEFAULT_DENY}): allowed;
    3. a built-in deny prefix matches: refused;
    4. allowed.

So C{allow = ["+49"]} opens German numbers in international form but
C{+49900} (premium) stays refused, C{allow = ["^"]} lifts the built-in
list altogether, and C{deny = ["^(?!\\\\+4930)"]} refuses every number not
starting with C{+4930}.
"""

import json
import re
from collections import deque
from dataclasses import dataclass

from twisted.logger import Logger

from linkrtc import metrics
from linkrtc.error import LinkRTCError

__all__ = [
    "DEFAULT_DENY",
    "CallLimiter",
    "DialDecision",
    "DialPlan",
    "DialPlanRefused",
    "callerIdentity",
    "compilePatterns",
    "identityOf",
    "normaliseNumber",
    "securityEvent",
]

securityLog = Logger(namespace="linkrtc.security")

#: Prefixes refused unless the trunk allows them: international access
#: (E.164 C{+}, C{00}, NANP C{011}) and premium-rate ranges (NANP 1-900,
#: C{09...} as in Germany, Austria, the UK; and a few well-known ones in
#: international form).
DEFAULT_DENY = ("+", "00", "011", "1900", "09", "+1900", "+1976", "+449", "+43900",
                "+49900", "+3389")

#: Default per-identity limits: concurrent outbound calls, calls per minute.
DEFAULT_MAX_CALLS = 4
DEFAULT_MAX_CALLS_PER_MINUTE = 10

#: A dialled number once normalised: an optional C{+}, then digits,
#: C{*}, C{#} or letters (extensions such as C{bob}).
_NUMBER = re.compile(r"\+?[0-9A-Za-z*#]{1,64}\Z")

#: Visual separators a number may carry (RFC 3966 §5.1.1).
_SEPARATORS = str.maketrans("", "", "-.()")

#: Prefix patterns: what a number may hold.
_PREFIX = re.compile(r"\+?[0-9A-Za-z*#]{0,64}\Z")

_WORD = re.compile(r"[A-Za-z0-9_.:+@/#*-]{1,200}\Z")


class DialPlanRefused(LinkRTCError):
    """
    A target, a trunk or a caller is refused.

    @ivar code: the C{int} code for the client's C{error} (or the call's
        C{cause}): 403 refused by policy, 484 not a number, 429 too many
        calls, 500 a bad caller ID from the application.
    @ivar reason: words, C{str}.
    @ivar event: the security event's name (C{dialplan_refused},
        C{outbound_limit}), or C{None} for a plain input error.
    """

    def __init__(self, code, reason, event="dialplan_refused"):
        super().__init__(reason)
        self.code = code
        self.reason = reason
        self.event = event


@dataclass(frozen=True)
class DialDecision:
    """
    A target the dial plan lets through a trunk.

    @ivar trunk: the L{linkrtc.config.Trunk}.
    @ivar number: the normalised number, C{str}.
    @ivar requestURI: C{sip:NUMBER@DOMAIN} (L{linkrtc.sip.uri.SIPURI};
        C{sips:} when the target was a C{sips:} URI), DOMAIN the trunk's.
    """

    trunk: object
    number: str
    requestURI: object


def identityOf(connection):
    """
    Who placed a call: the one place that reads a connection's identity.

    A connection whose C{identity} is set was authenticated by a token
    (unless that identity says C{anonymous}); otherwise the identity is
    the client name it registered with and the grants are empty.

    @param connection: an L{linkrtc.interfaces.IClientConnection}.
    @return: C{(identity, grants, authenticated)}: C{identity} a C{str}
        (or C{None}), C{grants} a C{dict} or an object with the grant
        attributes (C{outgoing}, C{trunks}, C{caller_id}), C{authenticated}
        a C{bool}.
    """
    identity = getattr(connection, "identity", None)
    if identity is None:
        grants = getattr(connection, "grants", None)
        return getattr(connection, "clientName", None), grants if grants is not None else {}, False
    name = identity if isinstance(identity, str) else getattr(identity, "name", None)
    if name is None:
        name = getattr(connection, "clientName", None)
    grants = getattr(connection, "grants", None)
    if grants is None:
        grants = getattr(identity, "grants", None)
    authenticated = not getattr(identity, "anonymous", False)
    return name, grants if grants is not None else {}, authenticated


def grant(grants, name, default=None):
    """
    @param grants: a C{dict} (token claim) or an object with attributes.
    @param name: C{"outgoing"}, C{"trunks"} or C{"caller_id"}.
    @return: the grant's value, or C{default} when absent (C{None} too).
    """
    if isinstance(grants, dict):
        value = grants.get(name)
    else:
        value = getattr(grants, name, None)
        if value is None and name == "caller_id":
            value = getattr(grants, "callerId", None)
    return default if value is None else value


def normaliseNumber(text):
    """
    @param text: a dialled number, C{str}.
    @return: C{text} without visual separators (C{- . ( )}).
    @raise DialPlanRefused: 484 when the rest is not a number (an optional
        C{+}, then 1-64 of digits, C{*}, C{#}, letters).
    """
    number = text.translate(_SEPARATORS)
    if not _NUMBER.match(number):
        raise DialPlanRefused(484, f"not a number: {text[:80]!r} (use digits, + * #, letters)",
                              event=None)
    return number


@dataclass(frozen=True)
class _Pattern:
    text: str
    regex: object = None

    @property
    def weight(self):
        """How specific: a prefix's length; a regular expression outweighs any prefix."""
        return float("inf") if self.regex is not None else len(self.text)

    def matches(self, number):
        if self.regex is not None:
            return self.regex.match(number) is not None
        return number.lower().startswith(self.text.lower())


def compilePatterns(patterns, what="pattern"):
    """
    @param patterns: C{str}s: C{^...} regular expressions or prefixes.
    @return: C{tuple} of compiled patterns.
    @raise ValueError: naming C{what}, for a bad regular expression or a
        prefix that is not a number.
    """
    compiled = []
    for text in patterns:
        if not isinstance(text, str) or not text:
            raise ValueError(f"{what}: expected non-empty strings, got {text!r}")
        if text.startswith("^"):
            try:
                compiled.append(_Pattern(text, re.compile(text)))
            except re.error as e:
                raise ValueError(f"{what}: bad regular expression {text!r}: {e}") from None
        else:
            if not _PREFIX.match(text):
                raise ValueError(f"{what}: {text!r} is neither a prefix (+, digits, * #, "
                                 f"letters) nor a regular expression starting with ^")
            compiled.append(_Pattern(text))
    return tuple(compiled)


_BUILTIN = compilePatterns(DEFAULT_DENY)


class DialPlan:
    """
    The outbound dial plan of a set of trunks (their C{allow} / C{deny}).
    """

    def __init__(self, trunks=()):
        """
        @param trunks: the L{linkrtc.config.Trunk}s (their patterns are
            compiled once; others are compiled when first checked).
        @raise ValueError: a bad pattern.
        """
        self._patterns = {}
        for trunk in trunks:
            self._compiled(trunk)

    def _compiled(self, trunk):
        key = id(trunk)
        entry = self._patterns.get(key)
        if entry is None or entry[0] is not trunk:
            entry = (trunk,
                     compilePatterns(getattr(trunk, "allow", ()), f"trunk {trunk.name}: allow"),
                     compilePatterns(getattr(trunk, "deny", ()), f"trunk {trunk.name}: deny"))
            self._patterns[key] = entry
        return entry[1], entry[2]

    def check(self, identity, grants, trunk, target):
        """
        May C{identity} call C{target} through C{trunk}?

        @param identity: who calls (C{str} or C{None}), for messages.
        @param grants: see L{identityOf}: C{outgoing} C{false} refuses;
            C{trunks} (a list of names) limits the trunks.
        @param trunk: the L{linkrtc.config.Trunk}.
        @param target: a number, or a C{tel:} URI without parameters, or a
            C{sip:}/C{sips:} URI whose user is a number, whose host (and
            port, if given) is the trunk's domain or proxy, without
            password, parameters or headers.
        @return: a L{DialDecision}.
        @raise DialPlanRefused: 403 (not granted, host part, parameters,
            headers, number denied), 484 (not a number).
        """
        if grant(grants, "outgoing", True) is False:
            raise DialPlanRefused(403, f"{identity} may not place outgoing calls")
        trunks = grant(grants, "trunks")
        if trunks is not None and trunk.name not in trunks:
            raise DialPlanRefused(403, f"{identity} may not call through trunk {trunk.name!r}")
        number, scheme = self._number(trunk, target)
        self._checkNumber(trunk, number)
        from linkrtc.sip.uri import SIPURI

        host, port = trunk.domainHostPort()
        return DialDecision(trunk, number, SIPURI(scheme, user=number, host=host, port=port))

    def _number(self, trunk, target):
        """@return: C{(number, scheme)} of C{target} for C{trunk}."""
        from linkrtc.error import SIPParseError
        from linkrtc.sip.uri import SIPURI, TelURI, parseURI

        if not isinstance(target, str) or not target:
            raise DialPlanRefused(484, "no target to call", event=None)
        scheme = target.split(":", 1)[0].lower() if ":" in target else None
        if scheme not in ("sip", "sips", "tel"):
            if "@" in target:
                raise DialPlanRefused(403, "targets with a host part are refused: dial a number")
            if ";" in target or "?" in target:
                raise DialPlanRefused(403, "targets with parameters or headers are refused")
            return normaliseNumber(target), "sip"
        try:
            uri = parseURI(target)
        except SIPParseError as e:
            raise DialPlanRefused(484, f"bad URI: {e.reason}", event=None) from None
        if isinstance(uri, TelURI):
            if uri.params:
                raise DialPlanRefused(403, "tel: URIs with parameters are refused")
            return normaliseNumber(uri.number), "sip"
        if not isinstance(uri, SIPURI):
            raise DialPlanRefused(484, "not a SIP or tel URI", event=None)
        if uri.headers:
            raise DialPlanRefused(403, "URIs with headers are refused")
        if uri.params:
            raise DialPlanRefused(403, "URIs with parameters are refused")
        if uri.password is not None:
            raise DialPlanRefused(403, "URIs with a password are refused")
        if not self._trunkHost(trunk, uri):
            raise DialPlanRefused(403, f"host {uri.host!r} is not trunk {trunk.name!r}'s: "
                                       f"dial a number")
        if not uri.user:
            raise DialPlanRefused(484, "the URI has no number", event=None)
        return normaliseNumber(uri.user), uri.scheme

    def _trunkHost(self, trunk, uri):
        """C{True} if C{uri}'s host and port are the trunk's domain's or proxy's."""
        host = (uri.host or "").lower()
        for ownHost, ownPort in (trunk.domainHostPort(),
                                 (trunk.proxyURI().host, trunk.proxyURI().port)):
            if host == (ownHost or "").lower() and uri.port in (None, ownPort or 5060, ownPort):
                return True
        return False

    def _checkNumber(self, trunk, number):
        allow, deny = self._compiled(trunk)
        for pattern in deny:
            if pattern.matches(number):
                raise DialPlanRefused(403, f"{number} is denied on trunk {trunk.name!r} "
                                           f"({pattern.text})")
        denied = max((p.weight for p in _BUILTIN if p.matches(number)), default=None)
        if denied is None:
            return
        allowed = max((p.weight for p in allow if p.matches(number)), default=None)
        if allowed is not None and allowed >= denied:
            return
        raise DialPlanRefused(403, f"{number} is an international or premium number, not "
                                   f"allowed on trunk {trunk.name!r}")


def callerIdentity(trunk, identity, grants, authenticated, override=None):
    """
    The From of an outbound call: never a name the client chose itself.

    Order: C{override} (the application's C{caller_id}, trusted), the
    token's C{caller_id} claim (authenticated identities only), else the
    trunk's C{caller_id} template, whose C{{client}} stands for the
    identity only when authenticated (else the trunk's username, or
    C{anonymous}). The display name (C{caller_name}) follows the same rule.

    @return: C{(user, display name or None)}.
    @raise DialPlanRefused: 500 (application) or 403 (claim) for a caller
        ID that is not a number.
    """
    if override is not None:
        if not isinstance(override, str) or not _NUMBER.match(override):
            raise DialPlanRefused(500, f"bad caller_id from the application: {override!r}"[:120],
                                  event=None)
        user = override
    else:
        claim = grant(grants, "caller_id") if authenticated else None
        if claim is not None and (not isinstance(claim, str) or not _NUMBER.match(claim)):
            raise DialPlanRefused(403, "the token's caller_id is not a number")
        user = claim or trunk.callerIdFor(identity, authenticated=authenticated)
    return user, trunk.callerNameFor(identity, authenticated=authenticated)


def _field(value):
    text = str(value)
    return text if _WORD.match(text) else json.dumps(text[:200])


def securityEvent(event, connection=None, **fields):
    """
    Log one refusal as one parsable line (namespace C{linkrtc.security})
    and count it in L{linkrtc.metrics.SECURITY_EVENTS}::

        security event=dialplan_refused source=1.2.3.4 identity=bob trunk=pbx ...

    @param event: C{dialplan_refused} or C{outbound_limit}.
    @param connection: the client connection (its C{source} is logged when
        it has one), or C{None}.
    @param fields: more C{key=value} pairs; C{None} values are left out.
    """
    parts = [f"event={event}"]
    source = getattr(connection, "source", None)
    if source is not None:
        parts.append(f"source={_field(source)}")
    parts += [f"{k}={_field(v)}" for k, v in fields.items() if v is not None]
    line = "security " + " ".join(parts)
    securityLog.warn("{line}", line=line, security_event=event)
    metrics.SECURITY_EVENTS.labels(event=event).inc()


class CallLimiter:
    """
    Per-identity limits on outbound calls: how many at once and how many
    started in the last 60 seconds.

    @ivar maxCalls: concurrent calls per identity (C{int}), C{None} for
        no limit.
    @ivar maxPerMinute: calls per identity per sliding 60 seconds
        (C{int}), C{None} for no limit.
    """

    window = 60.0

    def __init__(self, clock, maxCalls=DEFAULT_MAX_CALLS,
                 maxPerMinute=DEFAULT_MAX_CALLS_PER_MINUTE):
        """@param clock: an C{IReactorTime}."""
        self.clock = clock
        self.maxCalls = maxCalls or None
        self.maxPerMinute = maxPerMinute or None
        self._active = {}
        self._started = {}

    def active(self, identity):
        """@return: the identity's calls not yet released, C{int}."""
        return self._active.get(identity, 0)

    def _recent(self, identity):
        times = self._started.get(identity)
        if times is None:
            return 0
        horizon = self.clock.seconds() - self.window
        while times and times[0] <= horizon:
            times.popleft()
        if not times:
            del self._started[identity]
            return 0
        return len(times)

    def check(self, identity):
        """
        @raise DialPlanRefused: 429 (event C{outbound_limit}) when
            C{identity} has C{maxCalls} calls up or started C{maxPerMinute}
            in the last minute.
        """
        if self.maxCalls is not None and self.active(identity) >= self.maxCalls:
            raise DialPlanRefused(429, f"too many outbound calls at once (limit {self.maxCalls})",
                                  event="outbound_limit")
        if self.maxPerMinute is not None and self._recent(identity) >= self.maxPerMinute:
            raise DialPlanRefused(
                429, f"too many outbound calls per minute (limit {self.maxPerMinute})",
                event="outbound_limit")

    def record(self, identity):
        """
        Count a call of C{identity} that starts now.

        @return: a callable releasing it (once; later calls do nothing).
        """
        self._active[identity] = self._active.get(identity, 0) + 1
        self._started.setdefault(identity, deque()).append(self.clock.seconds())
        done = []

        def release():
            if done:
                return
            done.append(True)
            left = self._active.get(identity, 0) - 1
            if left > 0:
                self._active[identity] = left
            else:
                self._active.pop(identity, None)

        return release
