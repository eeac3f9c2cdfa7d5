# -*- test-case-name: linkrtc.app.test.test_auth -*-
"""
Who may use the call-control API (C{/api}, WebSocket and HTTP).

With an auth secret (the HS256 key of the client access tokens,
C{--auth-secret}), a peer shows a JWT (RFC 7519) whose C{grants} claim has
C{"app": true}: as C{Authorization: Bearer TOKEN}, or C{?token=TOKEN} on the
WebSocket URL. Without one (protected mode) only loopback peers are let in.

L{ApiAuthorizer} is the hook: C{authorize(host, token)}; a verifier of the
client tokens can replace L{ApiAuthorizer.verify}.
"""

import ipaddress

import jwt

#: The only signature algorithm accepted (RFC 7518 §3.2).
ALGORITHM = "HS256"

#: Seconds of clock skew allowed on C{exp}.
LEEWAY = 30.0


def isLoopback(host):
    """@return: C{True} for 127.0.0.0/8 and ::1 (C{str} address)."""
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def bearerToken(value):
    """@return: the token of an C{Authorization: Bearer TOKEN} value (C{str}/C{bytes}), or C{None}."""
    if isinstance(value, bytes):
        value = value.decode("latin-1")
    if not value:
        return None
    scheme, _, token = value.strip().partition(" ")
    if scheme.lower() != "bearer" or not token.strip():
        return None
    return token.strip()


class ApiAuthorizer:
    """
    @param secret: the HS256 key (C{str}), or C{None} for protected mode.
    @param clock: an C{IReactorTime} whose C{seconds()} is Unix time
        (token expiry is checked against it, never the wall clock).
    """

    def __init__(self, secret=None, clock=None):
        self.secret = secret
        self.clock = clock

    def authorize(self, host, token):
        """
        @param host: the peer's address, C{str}.
        @param token: the token shown, C{str} or C{None}.
        @return: C{True} if the peer may use the API.
        """
        if self.secret is None:
            return isLoopback(host)
        if not token:
            return False
        return self.verify(token)

    def verify(self, token):
        """@return: C{True} for a valid, unexpired HS256 JWT granting C{app}."""
        try:
            claims = jwt.decode(token, self.secret, algorithms=[ALGORITHM],
                                options={"verify_exp": False, "verify_nbf": False,
                                         "verify_iat": False, "verify_aud": False,
                                         "require": ["exp"]})
        except jwt.PyJWTError:
            return False
        exp = claims.get("exp")
        if isinstance(exp, bool) or not isinstance(exp, (int, float)):
            return False
        if self.clock.seconds() >= exp + LEEWAY:
            return False
        grants = claims.get("grants")
        return isinstance(grants, dict) and grants.get("app") is True
