"""
Tests for L{linkrtc.adminauth}: the admin endpoints (C{/admin/drain},
C{/status/trunks}, C{/metrics}, C{/version}) behind the auth secret, or
loopback only in protected mode (issue 11, item 11).
"""

import json

from twisted.internet.address import IPv4Address, IPv6Address
from twisted.internet.task import Clock
from twisted.internet.testing import StringTransport
from twisted.logger import formatEvent, globalLogPublisher
from twisted.trial.unittest import SynchronousTestCase
from twisted.web.resource import Resource
from twisted.web.static import Data

from linkrtc import metrics
from linkrtc.adminauth import METRICS, AdminGuard, bearerToken
from linkrtc.drain import adminResource
from linkrtc.monitoring import MetricsResource
from linkrtc.service import makeRootResource
from linkrtc.signalling.tokens import Grants, TokenVerifier, mintToken
from linkrtc.webroot import WebSite

SECRET = "0123456789abcdef0123456789abcdef-admin"
KEYS = {"default": SECRET}
NOW = 1_700_000_000.0
LOOPBACK = IPv4Address("TCP", "127.0.0.1", 40000)
REMOTE = IPv4Address("TCP", "192.0.2.7", 40000)


def refusals():
    value = metrics.REGISTRY.get_sample_value("linkrtc_security_events_total",
                                              {"event": "admin_refused"})
    return value or 0.0


class _Drain:
    def __init__(self):
        self.asked = []

    def drain(self, why):
        self.asked.append(why)
        return {"draining": True, "calls": 0, "drain_seconds": 1.0}


class _Trunks:
    def status(self):
        return [{"trunk": "carrier", "state": "registered"}]


class AdminTestsMixin:
    """Requests through a real L{WebSite} over a L{StringTransport}."""

    verifier = None

    def setUp(self):
        self.clock = Clock()
        self.clock.advance(NOW)
        self.guard = AdminGuard(self.verifier(self.clock) if self.verifier else None)
        from linkrtc.trunks import statusResource

        self.drain = _Drain()
        root = makeRootResource(self.guard)
        root.putChild(b"status", self.guard.protect(statusResource(_Trunks())))
        root.putChild(b"metrics", self.guard.protect(MetricsResource(), METRICS))
        root.putChild(b"admin", adminResource(self.drain, self.guard))
        self.site = WebSite(root)
        self.logged = []
        globalLogPublisher.addObserver(self.logged.append)
        self.addCleanup(globalLogPublisher.removeObserver, self.logged.append)

    def request(self, path, peer=LOOPBACK, method=b"GET", headers=()):
        """@return: C{(status int, headers bytes, body bytes)}."""
        protocol = self.site.buildProtocol(None)
        transport = StringTransport(peerAddress=peer)
        protocol.makeConnection(transport)
        lines = [method + b" " + path + b" HTTP/1.1", b"Host: switch", b"Content-Length: 0"]
        lines += [name + b": " + value for name, value in headers]
        protocol.dataReceived(b"\r\n".join(lines) + b"\r\n\r\n")
        head, _, body = transport.value().partition(b"\r\n\r\n")
        protocol.connectionLost(None)
        status = int(head.split(b" ", 2)[1])
        if b"transfer-encoding: chunked" in head.lower():
            body = _unchunk(body)
        return status, head, body

    def securityLines(self):
        return [formatEvent(e) for e in self.logged if e.get("security_event")]

    def token(self, ttl=3600.0, **grants):
        return mintToken("ops", KEYS, NOW, ttl=ttl, grants=Grants(**grants)).encode("ascii")


def _unchunk(data):
    out = b""
    while data:
        size, _, rest = data.partition(b"\r\n")
        n = int(size, 16)
        if n == 0:
            break
        out += rest[:n]
        data = rest[n + 2:]
    return out


class ProtectedModeTests(AdminTestsMixin, SynchronousTestCase):
    """Without an auth secret: loopback peers only."""

    def test_loopback(self):
        """A loopback peer reads the trunks, the metrics and the version, and drains."""
        status, _, body = self.request(b"/status/trunks")
        self.assertEqual(status, 200)
        self.assertEqual(json.loads(body)["trunks"][0]["trunk"], "carrier")
        self.assertEqual(self.request(b"/metrics")[0], 200)
        self.assertEqual(self.request(b"/version")[0], 200)
        self.assertEqual(self.request(b"/status/trunks", IPv6Address("TCP", "::1", 1))[0], 200)
        self.assertEqual(self.request(b"/admin/drain", method=b"POST")[0], 202)
        self.assertEqual(self.drain.asked, ["POST /admin/drain"])
        self.assertEqual(self.securityLines(), [])

    def test_remoteRefused(self):
        """Another peer gets 403 everywhere, each refusal logged once and counted."""
        before = refusals()
        for path, method in ((b"/status/trunks", b"GET"), (b"/metrics", b"GET"),
                             (b"/version", b"GET"), (b"/admin/drain", b"POST"),
                             (b"/status", b"GET"), (b"/status/", b"GET")):
            status, _, body = self.request(path, REMOTE, method)
            self.assertEqual(status, 403, path)
            self.assertNotIn(b"carrier", body)
            self.assertNotIn(b"LinkRTC 0", body)
        self.assertEqual(self.drain.asked, [])
        lines = self.securityLines()
        self.assertEqual(len(lines), 6)
        self.assertEqual("security event=admin_refused source=192.0.2.7 "
                         'path="/status/trunks" reason=not_loopback', lines[0])
        self.assertEqual(refusals() - before, 6)

    def test_forwardedHeadersNotBelieved(self):
        """A remote peer cannot claim loopback with C{X-Forwarded-For} and the like."""
        spoof = ((b"X-Forwarded-For", b"127.0.0.1"), (b"Forwarded", b"for=127.0.0.1"),
                 (b"X-Real-IP", b"127.0.0.1"))
        self.assertEqual(self.request(b"/status/trunks", REMOTE, headers=spoof)[0], 403)

    def test_proxiedRefused(self):
        """
        A reverse proxy on loopback relaying a client (it adds a forwarding
        header) does not make the client local: 403, on C{/version} too.
        """
        for header in (b"X-Forwarded-For", b"Forwarded", b"X-Real-IP"):
            for path in (b"/status/trunks", b"/version", b"/metrics"):
                status, _, _ = self.request(path, headers=((header, b"for=192.0.2.7"),))
                self.assertEqual(status, 403, (header, path))
        self.assertIn("reason=proxied", self.securityLines()[0])

    def test_webPageRefused(self):
        """A POST with C{Origin} (a web page) is refused even on loopback."""
        status, _, _ = self.request(b"/admin/drain", method=b"POST",
                                    headers=((b"Origin", b"http://evil.example"),))
        self.assertEqual(status, 403)
        self.assertEqual(self.drain.asked, [])
        self.assertIn("reason=origin", self.securityLines()[0])

    def test_clientTokensOnlyIsProtected(self):
        """Development C{[client-tokens]} without keys: still loopback only."""
        guard = AdminGuard(TokenVerifier({}, self.clock, staticTokens={"alice": "x" * 40}))
        self.assertFalse(guard.tokensRequired)


class TokenModeTests(AdminTestsMixin, SynchronousTestCase):
    """With an auth secret: a bearer token with the admin (or metrics) grant."""

    @staticmethod
    def verifier(clock):
        return TokenVerifier(KEYS, clock)

    def test_adminToken(self):
        """An C{admin} token opens every admin endpoint, from any address."""
        auth = ((b"Authorization", b"Bearer " + self.token(admin=True)),)
        for path, method, expected in ((b"/status/trunks", b"GET", 200),
                                       (b"/metrics", b"GET", 200),
                                       (b"/version", b"GET", 200),
                                       (b"/admin/drain", b"POST", 202)):
            self.assertEqual(self.request(path, REMOTE, method, auth)[0], expected, path)
        self.assertEqual(self.drain.asked, ["POST /admin/drain"])
        self.assertEqual(self.securityLines(), [])

    def test_noToken(self):
        """No token: 401 with C{WWW-Authenticate: Bearer}, even from loopback."""
        for peer in (REMOTE, LOOPBACK):
            status, head, body = self.request(b"/status/trunks", peer)
            self.assertEqual(status, 401)
            self.assertIn(b'WWW-Authenticate: Bearer realm="LinkRTC"', head)
            self.assertNotIn(b"carrier", body)
        self.assertIn("reason=missing_token", self.securityLines()[0])

    def test_badTokens(self):
        """Expired, wrongly signed or malformed tokens, or another scheme: 401."""
        other = mintToken("ops", {"default": "x" * 40}, NOW, grants=Grants(admin=True))
        before = refusals()
        for value in (b"Bearer " + self.token(ttl=-100, admin=True),
                      b"Bearer " + other.encode(),
                      b"Bearer not-a-jwt",
                      b"Basic b3BzOnNlY3JldA=="):
            status, _, _ = self.request(b"/metrics", REMOTE, headers=((b"Authorization", value),))
            self.assertEqual(status, 401, value)
        self.assertEqual(refusals() - before, 4)
        reasons = [line.split("reason=")[1].split()[0] for line in self.securityLines()]
        self.assertEqual(reasons, ["expired", "bad_signature", "malformed", "missing_token"])

    def test_missingGrant(self):
        """A valid token without the grant: 403, the identity logged."""
        auth = ((b"Authorization", b"Bearer " + self.token(outgoing=True, trace=True)),)
        status, _, _ = self.request(b"/admin/drain", REMOTE, b"POST", auth)
        self.assertEqual(status, 403)
        self.assertEqual(self.drain.asked, [])
        self.assertIn("reason=missing_grant identity=ops", self.securityLines()[0])

    def test_metricsGrant(self):
        """A C{metrics} token opens C{/metrics} only."""
        auth = ((b"Authorization", b"Bearer " + self.token(metrics=True)),)
        status, _, body = self.request(b"/metrics", REMOTE, headers=auth)
        self.assertEqual(status, 200)
        self.assertIn(b"linkrtc_", body)
        self.assertEqual(self.request(b"/status/trunks", REMOTE, headers=auth)[0], 403)
        self.assertEqual(self.request(b"/version", REMOTE, headers=auth)[0], 403)

    def test_versionLoopback(self):
        """C{/version} answers a loopback peer without a token, nobody else."""
        status, _, body = self.request(b"/version")
        self.assertEqual(status, 200)
        self.assertTrue(body.startswith(b"LinkRTC "))
        self.assertEqual(self.request(b"/version", REMOTE)[0], 401)


class BearerTokenTests(SynchronousTestCase):
    def test_parse(self):
        self.assertEqual(bearerToken(b"Bearer abc"), "abc")
        self.assertEqual(bearerToken("bearer  abc "), "abc")
        self.assertIsNone(bearerToken(b"Basic abc"))
        self.assertIsNone(bearerToken(b"Bearer "))
        self.assertIsNone(bearerToken(None))


class ProtectedResourceTests(SynchronousTestCase):
    def test_leafness(self):
        """The wrapper is a leaf exactly when the wrapped resource is."""
        guard = AdminGuard()
        self.assertTrue(guard.protect(MetricsResource()).isLeaf)
        self.assertFalse(guard.protect(Resource()).isLeaf)
        self.assertFalse(guard.protect(Data(b"x", "text/plain")).isLeaf)
