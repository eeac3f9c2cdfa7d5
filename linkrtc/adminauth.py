# -*- test-case-name: linkrtc.test.test_adminauth -*-
"""
Who may use the admin endpoints of the HTTP server (docs/security.rst,
"Admin endpoints"): C{POST /admin/drain}, C{GET /status/trunks},
C{GET /metrics} and C{GET /version}.

 - With an auth secret (C{--auth-secret} or C{[auth-secrets]}), a request
   shows C{Authorization: Bearer TOKEN} (RFC 6750 §2.1): a JWT of one of the
   keys (L{linkrtc.signalling.tokens.TokenVerifier.verifyBearer}) whose
   C{grants} has C{"admin": true}, or C{"metrics": true} for C{/metrics}.
   No token or a bad one: 401 with C{WWW-Authenticate: Bearer}; a good
   token without the grant: 403.
 - Without one (protected mode), only loopback peers: the address is the
   socket's, and a request carrying C{Forwarded}, C{X-Forwarded-For} or
   C{X-Real-IP} came through a reverse proxy from elsewhere, so it is
   refused (as on C{/ws}, L{linkrtc.signalling.protocol.FORWARDING_HEADERS}).
   A C{POST} carrying C{Origin} (sent by a web page) is refused too.
   Refusals are 403.
 - C{/version} is also open to such a local peer without a token.

Every refusal logs one security-event line
(L{linkrtc.signalling.guard.securityEvent}, event C{admin_refused}) and is
counted in C{linkrtc_security_events_total}.
"""

import json

from twisted.web.resource import Resource

from linkrtc.signalling.guard import isLoopbackAddress, securityEvent, sourceOf
from linkrtc.signalling.tokens import TokenError

__all__ = ["ADMIN", "METRICS", "AdminGuard", "Protected", "bearerToken"]

#: The grants that open the admin endpoints.
ADMIN = ("admin",)

#: The grants that open C{/metrics}.
METRICS = ("admin", "metrics")

#: The C{realm} of C{WWW-Authenticate: Bearer} (RFC 6750 §3).
REALM = "LinkRTC"

#: Headers a reverse proxy adds: a loopback peer sending one relays a client
#: from elsewhere (the same list as the WebSocket's protected mode).
FORWARDING_HEADERS = (b"forwarded", b"x-forwarded-for", b"x-real-ip")


def bearerToken(value):
    """
    @param value: an C{Authorization} header value (C{bytes} or C{str}) or C{None}.
    @return: the token of C{Bearer TOKEN} (C{str}), or C{None}.
    """
    if isinstance(value, bytes):
        value = value.decode("latin-1")
    if not value:
        return None
    scheme, _, token = value.strip().partition(" ")
    token = token.strip()
    if scheme.lower() != "bearer" or not token:
        return None
    return token


class AdminGuard:
    """
    Decides whether a request may use an admin endpoint.

    @param verifier: a L{linkrtc.signalling.tokens.TokenVerifier}, or
        C{None}. Tokens are required when it has keys; otherwise (protected
        mode, or only development C{[client-tokens]}) loopback peers only.
    """

    def __init__(self, verifier=None):
        self.verifier = verifier

    @property
    def tokensRequired(self):
        """C{True} when an auth secret is configured."""
        return self.verifier is not None and bool(self.verifier.keys)

    def refuse(self, request, grants=ADMIN, loopbackSuffices=False):
        """
        Check C{request}; when it is refused, set the status (401 or 403) and
        headers, log the security event and return the body.

        @param request: a L{twisted.web.server.Request}.
        @param grants: C{tuple} of grant names, any of which opens the endpoint.
        @param loopbackSuffices: C{True} to let a loopback peer in without a
            token even when tokens are required (C{/version}).
        @return: C{None} to go on, else the response body (C{bytes}, JSON).
        """
        source = sourceOf(request.getClientAddress())
        loopback = isLoopbackAddress(source)
        proxied = any(request.getHeader(name) is not None for name in FORWARDING_HEADERS)
        local = loopback and not proxied
        path = (getattr(request, "path", None) or request.uri).split(b"?", 1)[0]
        path = path.decode("latin-1", "replace")
        fromPage = request.method == b"POST" and request.getHeader(b"origin") is not None
        if loopbackSuffices and local and not fromPage:
            return None
        if not self.tokensRequired:
            if not local:
                return self._refused(request, 403, source, path,
                                     "proxied" if loopback else "not_loopback",
                                     "admin endpoints answer loopback peers only")
            if fromPage:
                return self._refused(request, 403, source, path, "origin",
                                     "admin endpoints do not answer web pages")
            return None
        token = bearerToken(request.getHeader(b"authorization"))
        try:
            identity = self.verifier.verifyBearer(token)
        except TokenError as e:
            request.setHeader(b"WWW-Authenticate", f'Bearer realm="{REALM}"'.encode("ascii"))
            return self._refused(request, 401, source, path, e.reason,
                                 "a bearer token with an admin grant is required")
        if not any(getattr(identity.grants, g, False) for g in grants):
            return self._refused(request, 403, source, path, "missing_grant",
                                 f"the token has no {' or '.join(grants)} grant",
                                 identity=identity.name)
        return None

    def _refused(self, request, status, source, path, reason, message, identity=None):
        securityEvent("admin_refused", source, path=path, reason=reason, identity=identity)
        request.setResponseCode(status)
        request.setHeader(b"Content-Type", b"application/json")
        request.setHeader(b"Cache-Control", b"no-store")
        return json.dumps({"error": message}).encode("utf-8")

    def protect(self, resource, grants=ADMIN, loopbackSuffices=False):
        """
        @param resource: the L{Resource} to put behind this guard (and its
            children).
        @return: a L{Protected} resource to mount in its place.
        """
        return Protected(self, resource, grants, loopbackSuffices)


class _Refusal(Resource):
    """Renders the body of a refusal already set on the request."""

    isLeaf = True

    def __init__(self, body):
        super().__init__()
        self.body = body

    def render(self, request):
        return self.body


class Protected(Resource):
    """
    A resource (and its children) behind an L{AdminGuard}: every request is
    checked before the wrapped resource sees it.

    @param guard: the L{AdminGuard}.
    @param resource: the wrapped L{Resource}.
    @param grants: see L{AdminGuard.refuse}.
    @param loopbackSuffices: see L{AdminGuard.refuse}.
    """

    def __init__(self, guard, resource, grants=ADMIN, loopbackSuffices=False):
        super().__init__()
        self.guard = guard
        self.resource = resource
        self.grants = tuple(grants)
        self.loopbackSuffices = loopbackSuffices
        self.isLeaf = getattr(resource, "isLeaf", False)

    def _refusal(self, request):
        return self.guard.refuse(request, self.grants, self.loopbackSuffices)

    def getChildWithDefault(self, path, request):
        body = self._refusal(request)
        if body is not None:
            return _Refusal(body)
        return self.resource.getChildWithDefault(path, request)

    def render(self, request):
        body = self._refusal(request)
        if body is not None:
            return body
        return self.resource.render(request)
