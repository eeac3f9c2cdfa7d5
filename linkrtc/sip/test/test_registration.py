"""
Tests for L{linkrtc.sip.registration}: a L{Registration} on a fake
transaction layer and a L{task.Clock}.
"""

from twisted.internet.task import Clock
from twisted.logger import globalLogPublisher
from twisted.python.failure import Failure
from twisted.trial.unittest import SynchronousTestCase

from linkrtc.error import TransportError
from linkrtc.sip.auth import DigestCredentials, computeHA1, makeChallenge, verifyAuthorization
from linkrtc.sip.message import Response
from linkrtc.sip.registration import Registration
from linkrtc.sip.transport import Address
from linkrtc.sip.uri import SIPURI


class FakeTransactionLayer:
    """Records C{sendRequest} calls: C{sent} is a list of (request, destination, listener)."""

    def __init__(self):
        self.sent = []
        self.fail = None

    def sendRequest(self, request, destination, listener):
        self.sent.append((request, destination, listener))
        if self.fail is not None:
            listener.transportFailed(None, Failure(self.fail))
        return object()

    def registers(self):
        return [s for s in self.sent if s[0].method == "REGISTER"]

    def last(self):
        return self.sent[-1]


class FakeConnection:
    def __init__(self):
        self.written = []

    def send(self, data):
        self.written.append(data)


class FakeTransportLayer:
    def __init__(self):
        self.connections = {}

    def localContactURI(self, transport, user=None):
        params = {} if transport == "UDP" else {"transport": transport.lower()}
        return SIPURI("sip", user=user, host="192.0.2.10", port=5070, params=params)

    def connectionTo(self, address):
        return self.connections.get(address)


def respond(sent, status, *headers, contactExpires=None):
    """Answer a sent request (an entry of FakeTransactionLayer.sent)."""
    request, _, listener = sent
    response = request.createResponse(status, toTag="reg1" if status >= 200 else None)
    for name, value in headers:
        response.headers.add(name, value)
    if status == 200 and request.method == "REGISTER" and contactExpires is not None:
        response.headers.add("Contact", "%s;expires=%d" % (request.headers.get("Contact"),
                                                           contactExpires))
    listener.responseReceived(response, None)
    return response


class RegistrationTestsMixin:
    realm = "trunk.example"
    password = "secret"
    keepAlive = 30.0

    def setUp(self):
        self.clock = Clock()
        self.layer = FakeTransactionLayer()
        self.transport = FakeTransportLayer()
        self.events = []
        globalLogPublisher.addObserver(self.events.append)
        self.addCleanup(globalLogPublisher.removeObserver, self.events.append)

    def make(self, credentials=None, **kw):
        if credentials is None:
            credentials = DigestCredentials("alice", self.password)
        kw.setdefault("name", "trunk1")
        kw.setdefault("keepAliveInterval", self.keepAlive)
        reg = Registration(self.layer, self.transport, self.clock,
                           SIPURI(host="registrar.example", user="ignored"),
                           "sip:alice@trunk.example", credentials, **kw)
        self.addCleanup(self.cleanup, reg)
        return reg

    def cleanup(self, reg):
        reg._running = False
        reg._cancelTimer()
        reg._stopKeepAlive()

    def challenge(self, nonce="N1", algorithm="MD5", status=401, stale=False):
        name = "Proxy-Authenticate" if status == 407 else "WWW-Authenticate"
        return respond(self.layer.last(), status,
                       (name, makeChallenge(self.realm, nonce, algorithm=algorithm,
                                            stale=stale)))

    def register(self, reg, expires=3600):
        """start(), answer the 401, accept: registered."""
        reg.start()
        self.challenge()
        respond(self.layer.last(), 200, contactExpires=expires)
        self.assertEqual(reg.state, "registered")


class BasicTests(RegistrationTestsMixin, SynchronousTestCase):
    def test_firstRegister(self):
        """start() sends REGISTER per RFC 3261 §10.2 to the registrar."""
        reg = self.make()
        reg.start()
        self.assertEqual(reg.state, "registering")
        [(request, destination, _)] = self.layer.sent
        self.assertEqual(request.method, "REGISTER")
        self.assertEqual(str(request.uri), "sip:registrar.example")
        self.assertEqual(str(request.toAddr.uri), "sip:alice@trunk.example")
        self.assertEqual(str(request.fromAddr.uri), "sip:alice@trunk.example")
        self.assertTrue(request.fromAddr.tag)
        self.assertIsNone(request.toAddr.tag)
        self.assertEqual(request.cseq, (1, "REGISTER"))
        self.assertEqual(str(request.contacts[0].uri), "sip:alice@192.0.2.10:5070")
        self.assertEqual(request.headers.get("Expires"), "3600")
        self.assertEqual(request.headers.get("Max-Forwards"), "70")
        self.assertNotIn("Authorization", request.headers)
        self.assertNotIn("Route", request.headers)
        self.assertEqual(destination, Address("UDP", "registrar.example", 5060))
        self.assertEqual(request.headers.get("User-Agent"), "LinkRTC")  # no version

    def test_challengeAnsweredOnce(self):
        """A 401 is answered once: new CSeq, same Call-ID and From tag, valid credentials."""
        reg = self.make()
        reg.start()
        self.challenge()
        self.assertEqual(len(self.layer.sent), 2)
        first, second = self.layer.sent[0][0], self.layer.sent[1][0]
        self.assertEqual(second.cseq.number, 2)
        self.assertEqual(second.callId, first.callId)
        self.assertEqual(second.fromAddr.tag, first.fromAddr.tag)
        self.assertTrue(verifyAuthorization(second, self.password, self.realm,
                                            nonceCheck=lambda n, nc: n == "N1"))
        respond(self.layer.last(), 200, contactExpires=3600)
        self.assertEqual(reg.state, "registered")
        self.assertEqual(reg.status(), {"trunk": "trunk1", "state": "registered",
                                        "expires_in": 3600, "last_error": None,
                                        "retry_in": None})

    def test_sha256(self):
        """A SHA-256 challenge (our Python fake registrar) is answered and verifies."""
        reg = self.make()
        reg.start()
        self.challenge(algorithm="SHA-256")
        self.assertTrue(verifyAuthorization(self.layer.last()[0], self.password, self.realm))
        self.assertIn("algorithm=SHA-256", self.layer.last()[0].headers.get("Authorization"))

    def test_ha1Credentials(self):
        """Credentials from an HA1 answer the challenge of their algorithm."""
        ha1 = computeHA1("MD5", "alice", self.realm, self.password)
        reg = self.make(DigestCredentials("alice", ha1=ha1, realm=self.realm))
        reg.start()
        self.challenge()
        self.assertTrue(verifyAuthorization(self.layer.last()[0], self.password, self.realm))

    def test_proxyChallenge(self):
        """A 407 is answered in Proxy-Authorization."""
        reg = self.make()
        reg.start()
        self.challenge(status=407)
        request = self.layer.last()[0]
        self.assertTrue(verifyAuthorization(request, self.password, self.realm,
                                            header="Proxy-Authorization"))
        respond(self.layer.last(), 200)
        self.assertEqual(reg.state, "registered")

    def test_wrongCredentials(self):
        """
        The registrar challenges our answer again with the same nonce: one
        clear failure, no third REGISTER, a retry only after the back-off.
        """
        reg = self.make(DigestCredentials("alice", "wrong"))
        reg.start()
        self.challenge("N1")
        self.assertFalse(verifyAuthorization(self.layer.last()[0], self.password, self.realm))
        self.challenge("N1")
        self.assertEqual(len(self.layer.sent), 2)
        self.assertEqual(reg.state, "failed")
        self.assertIn("authentication failed", reg.lastError)
        self.assertIn("credentials rejected", reg.lastError)
        failed = [e for e in self.events if e.get("newState") == "failed"]
        self.assertEqual(len(failed), 1)
        self.assertEqual(failed[0]["trunk"], "trunk1")
        self.assertEqual(reg.status()["retry_in"], 30)
        self.clock.advance(29)
        self.assertEqual(len(self.layer.sent), 2)
        self.clock.advance(1)
        self.assertEqual(len(self.layer.sent), 3)
        # The retry starts afresh: no stale credentials, then one answer again.
        self.assertNotIn("Authorization", self.layer.last()[0].headers)
        self.challenge("N2")
        self.assertEqual(len(self.layer.sent), 4)
        self.challenge("N3")
        self.assertEqual(len(self.layer.sent), 4)
        self.assertEqual(reg.status()["retry_in"], 60)

    def test_forbidden(self):
        """A 403 is a failure, retried after the back-off."""
        reg = self.make()
        reg.start()
        respond(self.layer.last(), 403)
        self.assertEqual(reg.state, "failed")
        self.assertEqual(reg.lastError, "403 Forbidden")

    def test_noCredentials(self):
        reg = self.make(credentials=None)
        reg._auth = None
        reg.start()
        self.challenge()
        self.assertEqual(reg.state, "failed")
        self.assertIn("no credentials", reg.lastError)
        self.assertEqual(len(self.layer.sent), 1)

    def test_provisionalIgnored(self):
        reg = self.make()
        reg.start()
        respond(self.layer.last(), 100)
        self.assertEqual(reg.state, "registering")

    def test_outboundProxy(self):
        """Through an outbound proxy: sent to it, with Route <proxy;lr>; Request-URI unchanged."""
        reg = self.make(outboundProxy="sip:proxy.example:5080;transport=tcp")
        reg.start()
        request, destination, _ = self.layer.last()
        self.assertEqual(destination, Address("TCP", "proxy.example", 5080))
        self.assertEqual(request.headers.get("Route"), "<sip:proxy.example:5080;transport=tcp;lr>")
        self.assertEqual(str(request.uri), "sip:registrar.example")
        self.assertEqual(str(request.contacts[0].uri), "sip:alice@192.0.2.10:5070;transport=tcp")

    def test_contactGiven(self):
        reg = self.make(contact="<sip:trunk@203.0.113.5:5999>")
        reg.start()
        self.assertEqual(str(self.layer.last()[0].contacts[0].uri), "sip:trunk@203.0.113.5:5999")


class RefreshTests(RegistrationTestsMixin, SynchronousTestCase):
    keepAlive = None

    def test_refreshTiming(self):
        """Refresh at max(granted/2, granted-60): 3540 s of 3600."""
        reg = self.make()
        self.register(reg, 3600)
        self.assertEqual(reg.refreshDelay(3600), 3540)
        self.assertEqual(reg.refreshDelay(60), 30)
        count = len(self.layer.sent)
        self.clock.advance(3539)
        self.assertEqual(len(self.layer.sent), count)
        self.assertEqual(reg.status()["expires_in"], 61)
        self.clock.advance(1)
        self.assertEqual(len(self.layer.sent), count + 1)
        self.assertEqual(reg.state, "registered")

    def test_grantedByContactParam(self):
        """The Contact's expires parameter wins over the Expires header."""
        reg = self.make()
        reg.start()
        respond(self.layer.last(), 200, ("Expires", "3600"), contactExpires=120)
        self.assertEqual(reg.status()["expires_in"], 120)
        self.clock.advance(59)
        self.assertEqual(len(self.layer.sent), 1)
        self.clock.advance(1)
        self.assertEqual(len(self.layer.sent), 2)

    def test_grantedByExpiresHeader(self):
        """Without our Contact in the 200, the Expires header counts."""
        reg = self.make()
        reg.start()
        respond(self.layer.last(), 200, ("Expires", "300"),
                ("Contact", "<sip:other@198.51.100.1>;expires=10"),
                ("Contact", "<sip:third@198.51.100.2>;expires=20"))
        self.assertEqual(reg.status()["expires_in"], 300)

    def test_refreshSameDialogIds(self):
        """Refreshes keep Call-ID and From tag, CSeq grows; cached credentials go at once."""
        reg = self.make()
        self.register(reg, 600)
        self.clock.advance(540)
        requests = [s[0] for s in self.layer.sent]
        self.assertEqual(len({r.callId for r in requests}), 1)
        self.assertEqual(len({r.fromAddr.tag for r in requests}), 1)
        self.assertEqual([r.cseq.number for r in requests], [1, 2, 3])
        refresh = requests[-1]
        self.assertIn("nc=00000002", refresh.headers.get("Authorization"))
        self.assertTrue(verifyAuthorization(refresh, self.password, self.realm))
        # The registrar wants a new nonce: answered once more in this attempt.
        self.challenge("N2")
        self.assertEqual(len(self.layer.sent), 4)
        respond(self.layer.last(), 200, contactExpires=600)
        self.assertEqual(reg.state, "registered")

    def test_refreshStale(self):
        """A stale=true challenge to the pre-emptive credentials is answered."""
        reg = self.make()
        self.register(reg, 600)
        self.clock.advance(540)
        self.challenge("N2", stale=True)
        self.assertIn('nonce="N2"', self.layer.last()[0].headers.get("Authorization"))

    def test_refreshFailure(self):
        """A refresh that times out: failed, retried after 30 s."""
        reg = self.make()
        self.register(reg, 600)
        self.clock.advance(540)
        self.layer.last()[2].transactionTimedOut(None)
        self.assertEqual(reg.state, "failed")
        self.assertEqual(reg.lastError, "no response (timeout)")
        n = len(self.layer.sent)
        self.clock.advance(30)
        self.assertEqual(len(self.layer.sent), n + 1)
        self.assertEqual(reg.state, "registering")


class BackoffTests(RegistrationTestsMixin, SynchronousTestCase):
    keepAlive = None

    def test_backoff(self):
        """Retries after 30, 60, 120, ... seconds, capped at 1800; a success resets."""
        reg = self.make()
        reg.start()
        delays = []
        for _ in range(8):
            self.layer.last()[2].transactionTimedOut(None)
            delays.append(reg.status()["retry_in"])
            self.clock.advance(delays[-1])
        self.assertEqual(delays, [30, 60, 120, 240, 480, 960, 1800, 1800])
        self.assertEqual(len(self.layer.sent), 9)
        respond(self.layer.last(), 200)
        self.assertEqual(reg.failures, 0)
        self.clock.advance(3540)
        self.layer.last()[2].transactionTimedOut(None)
        self.assertEqual(reg.status()["retry_in"], 30)

    def test_retryAfter(self):
        """A 503 with Retry-After longer than the back-off waits that long."""
        reg = self.make()
        reg.start()
        respond(self.layer.last(), 503, ("Retry-After", "300"))
        self.assertEqual(reg.status()["retry_in"], 300)
        self.assertEqual(reg.lastError, "503 Service Unavailable")

    def test_transportFailure(self):
        """A send that fails at once is a failure with a back-off, not a loop."""
        self.layer.fail = TransportError("connection refused")
        reg = self.make()
        reg.start()
        self.assertEqual(reg.state, "failed")
        self.assertIn("connection refused", reg.lastError)
        self.assertEqual(len(self.layer.sent), 1)
        self.clock.advance(30)
        self.assertEqual(len(self.layer.sent), 2)

    def test_sendRaises(self):
        reg = self.make()

        def boom(*a):
            raise ValueError("no Via")

        self.layer.sendRequest = boom
        reg.start()
        self.assertEqual(reg.state, "failed")
        self.assertIn("no Via", reg.lastError)


class IntervalTests(RegistrationTestsMixin, SynchronousTestCase):
    def test_423(self):
        """423 Interval Too Brief: asked again at once with Min-Expires."""
        reg = self.make(expires=60)
        reg.start()
        respond(self.layer.last(), 423, ("Min-Expires", "1800"))
        self.assertEqual(len(self.layer.sent), 2)
        request = self.layer.last()[0]
        self.assertEqual(request.headers.get("Expires"), "1800")
        self.assertEqual(request.cseq.number, 2)
        respond(self.layer.last(), 200)
        self.assertEqual(reg.state, "registered")
        self.assertEqual(reg.status()["expires_in"], 1800)

    def test_423WithoutMinExpires(self):
        reg = self.make(expires=60)
        reg.start()
        respond(self.layer.last(), 423)
        self.assertEqual(reg.state, "failed")
        self.assertEqual(len(self.layer.sent), 1)

    def test_423Bounded(self):
        """A registrar that keeps raising Min-Expires gets two retries, then a failure."""
        reg = self.make(expires=60)
        reg.start()
        for value in (100, 200, 300):
            respond(self.layer.last(), 423, ("Min-Expires", str(value)))
        self.assertEqual(len(self.layer.sent), 3)
        self.assertEqual(reg.state, "failed")


class KeepAliveTests(RegistrationTestsMixin, SynchronousTestCase):
    def test_udpOptions(self):
        """On UDP, an OPTIONS every 30 s while registered; none before."""
        reg = self.make()
        reg.start()
        self.clock.advance(30)
        self.assertEqual([s[0].method for s in self.layer.sent], ["REGISTER"])
        self.challenge()
        respond(self.layer.last(), 200)
        n = len(self.layer.sent)
        self.clock.advance(29)
        self.assertEqual(len(self.layer.sent), n)
        self.clock.advance(1)
        options, destination, listener = self.layer.last()
        self.assertEqual(options.method, "OPTIONS")
        self.assertEqual(destination, Address("UDP", "registrar.example", 5060))
        self.assertNotEqual(options.callId, reg.callId)
        respond(self.layer.last(), 200)
        listener.transactionTimedOut(None)  # logged only
        self.clock.advance(30)
        self.assertEqual([s[0].method for s in self.layer.sent[n:]], ["OPTIONS", "OPTIONS"])
        self.assertEqual(reg.state, "registered")

    def test_configurable(self):
        reg = self.make(keepAliveInterval=15)
        self.register(reg)
        n = len(self.layer.sent)
        for _ in range(3):
            self.clock.advance(15)
        self.assertEqual(len(self.layer.sent), n + 3)

    def test_disabled(self):
        reg = self.make(keepAliveInterval=None)
        self.register(reg)
        n = len(self.layer.sent)
        self.clock.advance(300)
        self.assertEqual(len(self.layer.sent), n)

    def test_streamCRLF(self):
        """On TCP, a double CRLF every 30 s on the connection (RFC 5626 §3.5.1)."""
        reg = self.make(transport="TCP")
        conn = FakeConnection()
        self.transport.connections[Address("TCP", "registrar.example", 5060)] = conn
        self.register(reg)
        n = len(self.layer.sent)
        self.clock.advance(30)
        self.clock.advance(30)
        self.assertEqual(conn.written, [b"\r\n\r\n", b"\r\n\r\n"])
        self.assertEqual(len(self.layer.sent), n)

    def test_streamLost(self):
        """The connection is gone: the binding is refreshed at once."""
        reg = self.make(transport="TCP")
        self.register(reg)
        n = len(self.layer.sent)
        self.clock.advance(30)
        self.assertEqual(len(self.layer.sent), n + 1)
        self.assertEqual(self.layer.last()[0].method, "REGISTER")
        self.assertEqual(self.layer.last()[1].transport, "TCP")

    def test_stopsOnFailure(self):
        reg = self.make()
        self.register(reg, 600)
        self.clock.advance(540)
        n = len(self.layer.sent)
        self.layer.last()[2].transactionTimedOut(None)
        self.clock.advance(29)
        self.assertEqual(len(self.layer.sent), n)


class StopTests(RegistrationTestsMixin, SynchronousTestCase):
    def test_unregister(self):
        """stop() sends REGISTER Expires: 0 for our Contact; then unregistered, no timers."""
        reg = self.make()
        self.register(reg)
        d = reg.stop()
        results = []
        d.addCallback(results.append)
        request = self.layer.last()[0]
        self.assertEqual(request.headers.get("Expires"), "0")
        self.assertEqual(str(request.contacts[0].uri), "sip:alice@192.0.2.10:5070")
        self.assertEqual(request.callId, reg.callId)
        self.assertEqual(request.cseq.number, 3)
        self.assertTrue(verifyAuthorization(request, self.password, self.realm))
        self.assertEqual(results, [])
        respond(self.layer.last(), 200)
        self.assertEqual(results, [None])
        self.assertEqual(reg.state, "unregistered")
        self.assertEqual(self.clock.getDelayedCalls(), [])
        self.assertEqual(reg.status()["expires_in"], None)

    def test_unregisterChallenged(self):
        """A challenge to the un-REGISTER is answered once."""
        reg = self.make()
        self.register(reg)
        d = reg.stop()
        self.challenge("N2")
        self.assertEqual(self.layer.last()[0].headers.get("Expires"), "0")
        self.challenge("N2")
        self.assertEqual(reg.state, "unregistered")
        self.assertIn("unregistration failed", reg.lastError)
        self.assertEqual(self.successResultOf(d), None)

    def test_unregisterTimeout(self):
        reg = self.make()
        self.register(reg)
        d = reg.stop()
        self.layer.last()[2].transactionTimedOut(None)
        self.assertEqual(self.successResultOf(d), None)
        self.assertEqual(self.clock.getDelayedCalls(), [])

    def test_stopNotRegistered(self):
        """Never registered: nothing to remove."""
        reg = self.make()
        self.assertIsNone(self.successResultOf(reg.stop()))
        reg.start()
        respond(self.layer.last(), 403)
        self.assertIsNone(self.successResultOf(reg.stop()))
        self.assertEqual(len(self.layer.sent), 1)
        self.assertEqual(self.clock.getDelayedCalls(), [])
        self.assertEqual(reg.state, "unregistered")

    def test_stopWhileRegistering(self):
        """A REGISTER in flight may bind: stop() unregisters; the late answer is ignored."""
        reg = self.make()
        reg.start()
        first = self.layer.last()
        d = reg.stop()
        self.assertEqual(self.layer.last()[0].headers.get("Expires"), "0")
        respond(first, 200)
        self.assertNoResult(d)
        self.assertNotEqual(reg.state, "registered")
        respond(self.layer.last(), 200)
        self.successResultOf(d)

    def test_restart(self):
        """start() after stop() keeps Call-ID and From tag; CSeq goes on."""
        reg = self.make()
        self.register(reg)
        reg.stop()
        respond(self.layer.last(), 200)
        reg.start()
        request = self.layer.last()[0]
        self.assertEqual(request.callId, reg.callId)
        self.assertEqual(request.cseq.number, 4)
        self.assertEqual(request.fromAddr.tag, self.layer.sent[0][0].fromAddr.tag)


class ResponseUtilityTests(SynchronousTestCase):
    def test_respondHelper(self):
        """The fake answers carry the request's identifiers (sanity of the fixture)."""
        layer = FakeTransactionLayer()
        reg = Registration(layer, FakeTransportLayer(), Clock(), "sip:r.example", "sip:a@r.example",
                           None)
        reg.start()
        response = respond(layer.last(), 200)
        self.assertIsInstance(response, Response)
        self.assertEqual(response.callId, reg.callId)
        reg.stop()
