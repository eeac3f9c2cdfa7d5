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
"""

import hmac
import re
from dataclasses import dataclass

import jwt

__all__ = [
    "ALGORITHM",
    "DEFAULT_KID",
    "LEEWAY",
    "Grants",
    "Identity",
    "TokenError",
    "TokenVerifier",
    "mintToken",
    "parseKeys",
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
        C{bad_token}.
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
