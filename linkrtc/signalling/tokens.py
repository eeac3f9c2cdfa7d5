# -*- test-case-name: linkrtc.signalling.test.test_tokens -*-
"""
Client access tokens: who may register under which name, and what the
connection may then do (docs/security.rst, "Access tokens").

A token is a JWT (RFC 7519) signed with HS256 (RFC 7518 §3.2) by the
application's server with a key the switch shares (C{--auth-secret}, or
several keys in the TOML table C{[auth-secrets]} for rotation, each named by
a C{kid}, RFC 7515 §4.1.4). Claims:

    - C{sub}: the client name the holder may register (required);
    - C{exp}: expiry, Unix seconds (required: tokens without it are refused);
    - C{nbf}: not before, Unix seconds (optional);
    - C{grants}: an object, optional: C{outgoing} (C{true} to place calls),
      C{trunks} (a list of trunk names restricting C{outgoing}), C{trace}
      (C{true} to receive its own calls' ladder), C{app} (reserved for the
      call-control API), C{admin} (the admin endpoints: C{/admin/drain},
      C{/status/trunks}, C{/metrics}, C{/version}), C{metrics} (C{/metrics}
      only, for a Prometheus scraper). Unknown grants are ignored.

The time is the injected clock's, never the wall clock read by PyJWT, so
tests drive expiry with a C{task.Clock}.

The same keys also make time-limited SIP credentials, in the style of the
TURN REST API (draft-uberti-behave-turn-rest-00 §2.2): the digest
username (RFC 3261 §22.4) carries the identity, the expiry and the grant,
the password is an HMAC of that username (L{sipCredentials},
L{SIPCredentialChecker}; docs/security.rst, "SIP passwords from the
secret").
"""

import base64
import hashlib
import hmac
import re
import time
from dataclasses import dataclass

import jwt

from linkrtc.signalling.messages import isValidClientName

__all__ = [
    "ALGORITHM",
    "DEFAULT_KID",
    "LEEWAY",
    "MAX_SIP_TTL",
    "SIP_SEPARATOR",
    "Grants",
    "Identity",
    "SIPCredentialChecker",
    "SIPCredentialName",
    "TokenError",
    "TokenVerifier",
    "mintToken",
    "parseKeys",
    "sipCredentials",
    "sipPassword",
]

#: The only signature algorithm accepted (HMAC SHA-256, RFC 7518 §3.2).
ALGORITHM = "HS256"

#: The C{kid} of the single C{auth-secret} key.
DEFAULT_KID = "default"

#: Seconds of clock skew allowed between the application's server and the switch.
LEEWAY = 30.0

#: Shortest key accepted, in characters (RFC 7518 §3.2: at least the hash size).
MIN_SECRET_LENGTH = 32

_KID = re.compile(r"[A-Za-z0-9_.-]{1,64}\Z")
_TRUNK = re.compile(r"[\x21-\x7e]{1,64}\Z")
#: A caller ID a token may grant: a number, with an optional leading +.
_CALLER_ID = re.compile(r"\+?[0-9]{1,32}\Z")
#: The grants that are C{true} or C{false}.
_FLAGS = ("outgoing", "trace", "app", "admin", "metrics")


class TokenError(ValueError):
    """
    A token was refused. The peer never sees why (one C{401} for all);
    the reason goes to the security log.

    @ivar reason: a word from a fixed set: C{missing_token}, C{malformed},
        C{unknown_kid}, C{bad_signature}, C{missing_claim}, C{expired},
        C{not_yet_valid}, C{wrong_sub}, C{bad_grants}, C{unknown_name},
        C{bad_token}; for derived SIP credentials (L{SIPCredentialChecker})
        also C{not_derived} and C{too_far}.
    """

    def __init__(self, reason):
        super().__init__(reason)
        self.reason = reason


@dataclass(frozen=True)
class Grants:
    """
    What an identity may do beyond receiving its own calls.

    @ivar outgoing: C{True} to place calls (C{call} messages).
    @ivar trunks: C{tuple} of trunk names the outgoing calls may use, or
        C{None} for any trunk.
    @ivar trace: C{True} to receive C{trace} messages of its own calls.
    @ivar app: C{True} for the call-control API (docs/api.rst).
    @ivar caller_id: the number outgoing calls show as caller ID (the From
        user, docs/trunks.rst), or C{None} for the trunk's own.
    @ivar admin: C{True} for the admin endpoints (L{linkrtc.adminauth}).
    @ivar metrics: C{True} for C{/metrics} (L{linkrtc.adminauth}).
    """

    outgoing: bool = False
    trunks: tuple | None = None
    trace: bool = False
    app: bool = False
    caller_id: str | None = None
    admin: bool = False
    metrics: bool = False

    def mayUseTrunk(self, name):
        """@return: C{True} if outgoing calls may go through trunk C{name}."""
        return self.outgoing and (self.trunks is None or name in self.trunks)

    @classmethod
    def fromClaim(cls, value):
        """
        @param value: the C{grants} claim (a C{dict}) or C{None}.
        @return: a L{Grants}.
        @raise TokenError: C{bad_grants} for a claim of the wrong shape.
        """
        if value is None:
            return cls()
        if not isinstance(value, dict):
            raise TokenError("bad_grants")
        flags = {}
        for key in _FLAGS:
            flag = value.get(key, False)
            if not isinstance(flag, bool):
                raise TokenError("bad_grants")
            flags[key] = flag
        trunks = value.get("trunks")
        if trunks is not None:
            if not isinstance(trunks, list) or not all(
                    isinstance(t, str) and _TRUNK.match(t) for t in trunks):
                raise TokenError("bad_grants")
            trunks = tuple(trunks)
        callerId = value.get("caller_id")
        if callerId is not None and not (isinstance(callerId, str) and _CALLER_ID.match(callerId)):
            raise TokenError("bad_grants")
        return cls(trunks=trunks, caller_id=callerId, **flags)

    def toClaim(self):
        """@return: the C{grants} claim for these grants (a C{dict}; only true flags)."""
        claim = {k: True for k in _FLAGS if getattr(self, k)}
        if self.trunks is not None:
            claim["trunks"] = list(self.trunks)
        if self.caller_id is not None:
            claim["caller_id"] = self.caller_id
        return claim


#: What an anonymous loopback client (protected mode) and a development
#: C{[client-tokens]} token may do: place calls on any trunk and trace.
LOCAL_GRANTS = Grants(outgoing=True, trace=True)


@dataclass(frozen=True)
class Identity:
    """
    Who a registered connection is.

    @ivar name: the client name (the token's C{sub}).
    @ivar grants: its L{Grants}.
    @ivar anonymous: C{True} for a loopback client of protected mode.
    @ivar kid: the key id that verified the token, or C{None}.
    @ivar expires: the token's C{exp} (Unix seconds), or C{None}.
    """

    name: str
    grants: Grants
    anonymous: bool = False
    kid: str | None = None
    expires: float | None = None


def parseKeys(authSecret=None, authSecrets=None):
    """
    Build the key table from the configuration.

    @param authSecret: the C{auth-secret} (C{str}) or C{None}; its C{kid} is
        L{DEFAULT_KID}.
    @param authSecrets: C{{kid: secret}} (TOML C{[auth-secrets]}), in the
        order written, or C{None}.
    @return: a C{dict} C{kid -> secret}, the single C{auth-secret} first;
        the first key signs new tokens and checks tokens without a C{kid}.
    @raise ValueError: a C{kid} outside C{[A-Za-z0-9_.-]{1,64}}, a C{kid}
        given twice, or a secret shorter than 32 characters.
    """
    keys = {}
    if authSecret is not None:
        keys[DEFAULT_KID] = authSecret
    for kid, secret in (authSecrets or {}).items():
        if not isinstance(kid, str) or not _KID.match(kid):
            raise ValueError(f"key id {kid!r} must be 1-64 of A-Z a-z 0-9 _ . -")
        if kid in keys:
            raise ValueError(f"key id {kid!r} is given twice")
        keys[kid] = secret
    for kid, secret in keys.items():
        if not isinstance(secret, str) or len(secret) < MIN_SECRET_LENGTH:
            raise ValueError(f"the secret of key {kid!r} must be a string of at least "
                             f"{MIN_SECRET_LENGTH} characters")
    return keys


def mintToken(name, keys, now, ttl=3600.0, grants=None, kid=None):
    """
    Make a token, as the application's server would.

    @param name: the client name (C{sub}).
    @param keys: C{{kid: secret}} (L{parseKeys}).
    @param now: the time, Unix seconds.
    @param ttl: seconds until C{exp}.
    @param grants: L{Grants} or C{None} for none.
    @param kid: the key to sign with, or C{None} for the first one.
    @return: the token, C{str}.
    @raise KeyError: an unknown C{kid}, or no key at all.
    """
    if kid is None:
        kid = next(iter(keys))
    secret = keys[kid]
    claims = {"sub": name, "iat": int(now), "exp": int(now + ttl)}
    if grants is not None and grants.toClaim():
        claims["grants"] = grants.toClaim()
    return jwt.encode(claims, secret, algorithm=ALGORITHM, headers={"kid": kid})


class TokenVerifier:
    """
    Checks a C{register}'s token against the name it registers.

    @param keys: C{{kid: secret}} (L{parseKeys}); may be empty.
    @param clock: an C{IReactorTime} (C{seconds()} is Unix time).
    @param staticTokens: C{{name: token}} of the development shortcut
        C{[client-tokens]}, or C{None}; such a token gives L{LOCAL_GRANTS}.
    @param leeway: seconds of clock skew allowed on C{exp} and C{nbf}.
    """

    def __init__(self, keys, clock, staticTokens=None, leeway=LEEWAY):
        self.keys = dict(keys)
        self.clock = clock
        self.staticTokens = dict(staticTokens or {})
        self.leeway = leeway

    def verify(self, name, token):
        """
        @param name: the C{client} of the C{register} (validated syntax).
        @param token: the C{token} of the C{register}, C{str} or C{None}.
        @return: the L{Identity}.
        @raise TokenError: when refused (the reason is for the log only).
        """
        if not token:
            raise TokenError("missing_token")
        static = self.staticTokens.get(name)
        if static is not None:
            if hmac.compare_digest(token.encode("utf-8"), static.encode("utf-8")):
                return Identity(name, LOCAL_GRANTS)
            if not self.keys:
                raise TokenError("bad_token")
        elif not self.keys:
            # Same work as a known name, so timing tells nothing either.
            hmac.compare_digest(token.encode("utf-8"), token[::-1].encode("utf-8"))
            raise TokenError("unknown_name")
        return self._verifyJWT(name, token)

    def verifyBearer(self, token):
        """
        Check a token shown as C{Authorization: Bearer TOKEN} (RFC 6750) to
        the admin endpoints (L{linkrtc.adminauth}): a JWT signed with one of
        the keys, for any C{sub}. Development C{[client-tokens]} are not
        accepted there.

        @param token: C{str} or C{None}.
        @return: the L{Identity} (its C{name} is the C{sub}).
        @raise TokenError: when refused (the reason is for the log only).
        """
        if not token:
            raise TokenError("missing_token")
        if not self.keys:
            raise TokenError("bad_token")
        return self._verifyJWT(None, token)

    def _verifyJWT(self, name, token):
        try:
            header = jwt.get_unverified_header(token)
        except jwt.PyJWTError:
            raise TokenError("malformed") from None
        kid = header.get("kid")
        if kid is None:
            kid = next(iter(self.keys))
        if not isinstance(kid, str) or kid not in self.keys:
            raise TokenError("unknown_kid")
        try:
            claims = jwt.decode(
                token, self.keys[kid], algorithms=[ALGORITHM],
                options={"verify_exp": False, "verify_nbf": False, "verify_iat": False,
                         "require": ["sub", "exp"]},
            )
        except jwt.MissingRequiredClaimError:
            raise TokenError("missing_claim") from None
        except (jwt.InvalidSignatureError, jwt.InvalidAlgorithmError):
            raise TokenError("bad_signature") from None
        except jwt.PyJWTError:
            raise TokenError("malformed") from None
        now = self.clock.seconds()
        exp = claims["exp"]
        if isinstance(exp, bool) or not isinstance(exp, (int, float)):
            raise TokenError("malformed")
        if now >= exp + self.leeway:
            raise TokenError("expired")
        nbf = claims.get("nbf")
        if nbf is not None:
            if isinstance(nbf, bool) or not isinstance(nbf, (int, float)):
                raise TokenError("malformed")
            if now + self.leeway < nbf:
                raise TokenError("not_yet_valid")
        if not isinstance(claims["sub"], str):
            raise TokenError("malformed")
        if name is not None and claims["sub"] != name:
            raise TokenError("wrong_sub")
        grants = Grants.fromClaim(claims.get("grants"))
        return Identity(claims["sub"], grants, kid=kid, expires=float(exp))


# -- SIP credentials derived from the keys (TURN REST API style) -----------------------

#: Separates the fields of a derived SIP username. It is not a character of
#: a client name (L{linkrtc.signalling.messages.isValidClientName}:
#: C{A-Z a-z 0-9 _ . @ + -}) nor of a C{kid}, so the identity is
#: everything before the first one.
SIP_SEPARATOR = "~"

#: The longest lifetime of derived SIP credentials, seconds (7 days): an
#: expiry further away than this (plus L{LEEWAY}) is refused, so a leaked
#: password cannot be made to last for years. draft-uberti-behave-turn-rest
#: suggests a day for TURN; a phone that keeps its password in its settings
#: needs longer, a softphone in a page gets new ones each time it loads.
MAX_SIP_TTL = 7 * 86400.0

_EXPIRY = re.compile(r"[1-9][0-9]{0,11}\Z")


@dataclass(frozen=True)
class SIPCredentialName:
    """
    The fields of a derived SIP username, C{IDENTITY~EXPIRY[~outgoing][~kid=KID]}.

    @ivar identity: the client name the credentials are for (the
        address-of-record's user they may register), C{str}.
    @ivar expires: when they stop working, Unix seconds, C{int}.
    @ivar outgoing: C{True} to let a phone registered with them call out
        through trunks (the C{outgoing} grant).
    @ivar kid: the key of C{[auth-secrets]} the password is made with, or
        C{None} for the first key.
    """

    identity: str
    expires: int
    outgoing: bool = False
    kid: str | None = None

    @property
    def username(self):
        """The digest username, C{str} (at most 155 characters)."""
        parts = [self.identity, str(self.expires)]
        if self.outgoing:
            parts.append("outgoing")
        if self.kid is not None:
            parts.append("kid=" + self.kid)
        return SIP_SEPARATOR.join(parts)

    @classmethod
    def parse(cls, username):
        """
        @param username: a digest username, C{str}.
        @return: its L{SIPCredentialName}, or C{None} when it is not one
            (the fields in another order, a field twice, an expiry with a
            leading zero: only the form L{username} writes is accepted).
        """
        if not isinstance(username, str) or SIP_SEPARATOR not in username:
            return None
        parts = username.split(SIP_SEPARATOR)
        identity, expiry, rest = parts[0], parts[1], parts[2:]
        if not isValidClientName(identity) or not _EXPIRY.match(expiry):
            return None
        outgoing = bool(rest) and rest[0] == "outgoing"
        if outgoing:
            rest = rest[1:]
        kid = None
        if rest:
            if len(rest) != 1 or not rest[0].startswith("kid=") or \
                    not _KID.match(rest[0][4:]):
                return None
            kid = rest[0][4:]
        return cls(identity, int(expiry), outgoing, kid)


def sipPassword(secret, username):
    """
    The password of a derived SIP username.

    @param secret: the key, C{str} (its UTF-8 octets are the HMAC key, as
        for the HS256 tokens).
    @param username: the digest username, C{str}.
    @return: base64url without padding (RFC 4648 §5) of
        HMAC-SHA256(secret, username): 43 characters, the whole 256 bits
        (phones take passwords that long; nothing is gained by cutting).
    """
    mac = hmac.new(secret.encode("utf-8"), username.encode("utf-8"), hashlib.sha256).digest()
    return base64.urlsafe_b64encode(mac).rstrip(b"=").decode("ascii")


def sipCredentials(secret, identity, ttl, outgoing=False, kid=None, now=None):
    """
    Make time-limited SIP credentials for C{identity}, as the application's
    server would (draft-uberti-behave-turn-rest-00 §2.2; the same in
    JavaScript is in docs/security.rst).

    @param secret: the switch's C{auth-secret} (or the C{[auth-secrets]}
        key C{kid}), C{str}.
    @param identity: the client name the phone registers as, C{str}.
    @param ttl: seconds until they expire, at most L{MAX_SIP_TTL}.
    @param outgoing: C{True} to let the phone call out through trunks.
    @param kid: the C{kid} of C{secret} when the switch has several keys
        (written in the username), or C{None} (the switch then uses its
        first key).
    @param now: the time, Unix seconds (the system clock if C{None}).
    @return: C{{"username": str, "password": str, "expires": int}}
        (C{expires} in Unix seconds): the phone's digest username
        (authorization user) and password; its address-of-record stays
        C{sip:IDENTITY@HOST}.
    @raise ValueError: an identity that is not a client name, a C{ttl}
        not in (0, L{MAX_SIP_TTL}], a bad C{kid}, or a secret shorter than
        32 characters.
    """
    if not isValidClientName(identity):
        raise ValueError(f"{identity!r} is not a client name (1-64 of A-Z a-z 0-9 _ . @ + -)")
    if not 0 < ttl <= MAX_SIP_TTL:
        raise ValueError(f"the lifetime must be more than 0 and at most {int(MAX_SIP_TTL)} s")
    if kid is not None and not (isinstance(kid, str) and _KID.match(kid)):
        raise ValueError(f"key id {kid!r} must be 1-64 of A-Z a-z 0-9 _ . -")
    if not isinstance(secret, str) or len(secret) < MIN_SECRET_LENGTH:
        raise ValueError(f"the secret must be a string of at least {MIN_SECRET_LENGTH} "
                         "characters")
    now = time.time() if now is None else now
    name = SIPCredentialName(identity, int(now + ttl), bool(outgoing), kid)
    username = name.username
    return {"username": username, "password": sipPassword(secret, username),
            "expires": name.expires}


class SIPCredentialChecker:
    """
    The switch's side of L{sipCredentials}: gives the password of a
    derived username while it is valid, for the registrar's digest check
    (L{linkrtc.sip.registrar.SIPUserStore}).

    @param keys: C{{kid: secret}} (L{parseKeys}), not empty.
    @param clock: an C{IReactorTime} (C{seconds()} is Unix time).
    @param maxTTL: seconds; an expiry further away than this (plus
        C{leeway}) is refused.
    @param leeway: seconds of clock skew allowed on the expiry, as for
        tokens.
    """

    def __init__(self, keys, clock, maxTTL=MAX_SIP_TTL, leeway=LEEWAY):
        self.keys = dict(keys)
        self.clock = clock
        self.maxTTL = maxTTL
        self.leeway = leeway

    def check(self, username):
        """
        @param username: a digest username, C{str}.
        @return: C{(name, password)}: its L{SIPCredentialName} and the
            password it must have answered with (L{sipPassword}).
        @raise TokenError: C{not_derived} (not of that form),
            C{unknown_kid}, C{expired} (the expiry plus C{leeway} has
            passed), C{too_far} (more than C{maxTTL} plus C{leeway} away).
        """
        name = SIPCredentialName.parse(username)
        if name is None:
            raise TokenError("not_derived")
        kid = name.kid if name.kid is not None else next(iter(self.keys))
        secret = self.keys.get(kid)
        if secret is None:
            raise TokenError("unknown_kid")
        now = self.clock.seconds()
        if now >= name.expires + self.leeway:
            raise TokenError("expired")
        if name.expires - now > self.maxTTL + self.leeway:
            raise TokenError("too_far")
        return name, sipPassword(secret, username)

    def identity(self, name):
        """
        @param name: a checked L{SIPCredentialName}.
        @return: the L{Identity} a phone registered with it has: its
            C{outgoing} grant, C{kid} and C{expires}.
        """
        kid = name.kid if name.kid is not None else next(iter(self.keys))
        return Identity(name.identity, Grants(outgoing=name.outgoing), kid=kid,
                        expires=float(name.expires))
