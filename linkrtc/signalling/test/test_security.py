"""
The findings of issue 11 against the WebSocket endpoint, each as a test:
nobody takes another's name (tokens), protected mode, the Origin check,
the register timeout, the per-source connection cap, one error for every
refused token, lock-out, and grants (trace, outgoing).
"""

import json
import struct

from twisted.internet.error import ConnectionDone
from twisted.logger import formatEvent, globalLogPublisher
from twisted.python.failure import Failure
from twisted.trial.unittest import SynchronousTestCase

from linkrtc import metrics
from linkrtc.signalling.guard import SourceGuard
from linkrtc.signalling.protocol import (
    CLOSE_LOCKED_OUT,
    CLOSE_REGISTER_TIMEOUT,
    CLOSE_UNAUTHENTICATED,
)
from linkrtc.signalling.test.test_protocol import (
    OP_CLOSE,
    OP_TEXT,
    ProtocolTestsMixin,
    handshake,
    serverFrames,
)
from linkrtc.signalling.tokens import Grants, TokenVerifier, mintToken

SECRET = "0123456789abcdef0123456789abcdef-test"
OTHER = "fedcba9876543210fedcba9876543210-other"
KEYS = {"k1": SECRET}
NOW = 1_700_000_000.0

AUTH_FAILED = {"type": "error", "code": 401, "message": "authentication failed",
               "field": "token"}


def securityCount(event):
    value = metrics.REGISTRY.get_sample_value("linkrtc_security_events_total",
                                              {"event": event})
    return value or 0.0


class SecurityTestsMixin(ProtocolTestsMixin):
    def setUp(self):
        super().setUp()
        self.clock.advance(NOW)
        self.logged = []
        globalLogPublisher.addObserver(self.logged.append)
        self.addCleanup(globalLogPublisher.removeObserver, self.logged.append)

    def securityLines(self):
        return [formatEvent(e) for e in self.logged if "security_event" in e]

    def closeFrame(self, transport):
        """@return: C{(code, reason)} of the close frame sent, or C{None}."""
        for opcode, payload in serverFrames(transport.value()):
            if opcode == OP_CLOSE:
                (code,) = struct.unpack("!H", payload[:2])
                return code, payload[2:].decode("utf-8")
        return None

    def messages(self, transport):
        return [json.loads(p) for o, p in serverFrames(transport.value()) if o == OP_TEXT]

    def token(self, name, grants=None, ttl=3600, kid="k1", keys=KEYS, now=None):
        return mintToken(name, keys, self.clock.seconds() if now is None else now, ttl=ttl,
                         grants=grants, kid=kid)


class TokenTests(SecurityTestsMixin, SynchronousTestCase):
    def setUp(self):
        self.verifier = TokenVerifier(KEYS, None)
        super().setUp()
        self.verifier.clock = self.clock

    def test_otherIdentityCannotTakeName(self):
        """
        A second connection cannot register as bob with another name's token,
        so it never answers bob's calls; bob's own tabs can.
        """
        bob, bt = self.connect()
        self.assertEqual(self.register(bob, bt, name="bob", token=self.token("bob")),
                         [{"type": "registered", "client": "bob"}])
        mallory, mt = self.connect()
        self.assertEqual(self.register(mallory, mt, name="bob", token=self.token("alice")),
                         [AUTH_FAILED])
        self.assertEqual(self.register(mallory, mt, name="bob"), [AUTH_FAILED])
        self.assertEqual(self.directory.connectionsFor("bob"), [bob.connection])
        tab, tt = self.connect()
        self.register(tab, tt, name="bob", token=self.token("bob"))
        self.assertEqual(self.directory.connectionsFor("bob"), [bob.connection, tab.connection])

    def test_loopbackNeedsTokenToo(self):
        """With an auth secret, loopback clients need a token like anyone."""
        proto, transport = self.connect()
        self.assertEqual(self.register(proto, transport), [AUTH_FAILED])
        self.assertEqual(self.directory.names(), [])

    def test_remoteWithToken(self):
        proto, transport = self.connect(peer="203.0.113.5")
        self.assertEqual(self.register(proto, transport, token=self.token("alice")),
                         [{"type": "registered", "client": "alice"}])
        self.assertEqual(proto.connection.identity.name, "alice")
        self.assertFalse(proto.connection.identity.anonymous)

    def test_oneErrorWhateverTheCause(self):
        """
        Unknown key, bad signature, expired, wrong sub, no exp, no token,
        garbage and alg none: the peer sees the same error; the log knows why.
        """
        import jwt

        before = securityCount("auth_failed")
        cases = {
            "unknown_kid": self.token("alice", kid="k9", keys={"k9": SECRET}),
            "bad_signature": self.token("alice", keys={"k1": OTHER}),
            "expired": self.token("alice", ttl=-3600),
            "wrong_sub": self.token("bob"),
            "missing_claim": jwt.encode({"sub": "alice"}, SECRET, "HS256",
                                        headers={"kid": "k1"}),
            "missing_token": None,
            "malformed": "not-a-token",
            "bad_signature ": jwt.encode({"sub": "alice", "exp": NOW + 60}, None, "none",
                                         headers={"kid": "k1"}),
        }
        for reason, token in cases.items():
            proto, transport = self.connect()
            extra = {} if token is None else {"token": token}
            self.assertEqual(self.register(proto, transport, **extra), [AUTH_FAILED], reason)
            self.assertIsNone(proto.connection.clientName)
        self.assertEqual(securityCount("auth_failed") - before, len(cases))
        lines = self.securityLines()
        self.assertIn("security event=auth_failed source=127.0.0.1 identity=alice "
                      "reason=bad_signature", lines)
        self.assertIn("security event=auth_failed source=127.0.0.1 identity=alice "
                      "reason=expired", lines)
        self.assertIn("security event=auth_failed source=127.0.0.1 identity=alice "
                      "reason=wrong_sub", lines)

    def test_expiryFollowsInjectedClock(self):
        token = self.token("alice", ttl=60)
        self.clock.advance(60 + 29)
        proto, transport = self.connect()
        self.assertEqual(self.register(proto, transport, token=token)[0]["type"], "registered")
        self.clock.advance(1)
        proto, transport = self.connect()
        self.assertEqual(self.register(proto, transport, token=token), [AUTH_FAILED])

    def test_lockout(self):
        """
        Ten failures in a minute from one source: closed with 4429, then
        even a good token is refused and new handshakes get 429 for 60 s.
        Another source is not affected.
        """
        proto, transport = self.connect()
        for i in range(9):
            self.assertEqual(self.register(proto, transport, token=f"guess{i}"), [AUTH_FAILED])
        self.assertIsNone(self.closeFrame(transport))
        self.send(proto, {"type": "register", "client": "alice", "token": "guess9"})
        self.assertEqual(self.messages(transport), [AUTH_FAILED])
        self.assertEqual(self.closeFrame(transport)[0], CLOSE_LOCKED_OUT)
        self.assertIn("security event=locked_out source=127.0.0.1 identity=alice "
                      "failures=10 seconds=60", self.securityLines()[-1])
        self.connect(status=b"429")
        other, ot = self.connect(peer="198.51.100.7")
        self.assertEqual(self.register(other, ot, token=self.token("alice"))[0]["type"],
                         "registered")
        self.clock.advance(60)
        proto, transport = self.connect()
        self.assertEqual(self.register(proto, transport, token=self.token("alice"))[0]["type"],
                         "registered")

    def test_failuresOutsideWindowForgotten(self):
        proto, transport = self.connect()
        for i in range(9):
            self.register(proto, transport, token="x")
        self.clock.advance(61)
        proto, transport = self.connect()
        self.register(proto, transport, token="x")
        self.assertIsNone(self.closeFrame(transport))

    def test_traceNeedsGrant(self):
        """trace: true without the trace grant: registered, but no ladder."""
        proto, transport = self.connect()
        self.assertEqual(self.register(proto, transport, token=self.token("alice"), trace=True),
                         [{"type": "registered", "client": "alice", "trace": False}])
        self.assertFalse(proto.connection.trace)
        self.assertFalse(self.directory.tracing)
        tracer, tt = self.connect()
        self.register(tracer, tt, token=self.token("alice", Grants(trace=True)), trace=True)
        self.assertTrue(tracer.connection.trace)
        self.assertEqual(self.directory.traceConnections(), [tracer.connection])

    def test_outgoingNeedsGrant(self):
        """A call from a client without the outgoing grant: 403, nothing dialled."""
        proto, transport = self.connect()
        self.register(proto, transport, token=self.token("alice"))
        self.send(proto, {"type": "call", "to": "100", "sdp": "v=0", "ref": "r1"})
        [err] = self.received(transport)
        self.assertEqual((err["type"], err["code"], err["ref"]), ("error", 403, "r1"))
        self.assertEqual(self.handler.messages, [])
        caller, ct = self.connect()
        grants = Grants(outgoing=True, trunks=("pstn",))
        self.register(caller, ct, name="carol", token=self.token("carol", grants))
        self.send(caller, {"type": "call", "to": "100", "sdp": "v=0"})
        [(conn, msg)] = self.handler.messages
        self.assertIs(conn, caller.connection)
        self.assertEqual(conn.grants, grants)
        self.assertTrue(conn.grants.mayUseTrunk("pstn"))
        self.assertFalse(conn.grants.mayUseTrunk("other"))


class StaticTokenTests(SecurityTestsMixin, SynchronousTestCase):
    """The [client-tokens] shortcut: names cannot be listed any more."""

    def setUp(self):
        self.verifier = TokenVerifier({}, None, staticTokens={"alice": "s3cret"})
        super().setUp()

    def test_sameErrorForUnknownNameAndBadToken(self):
        proto, transport = self.connect()
        unknown = self.register(proto, transport, name="mallory", token="s3cret")
        wrong = self.register(proto, transport, name="alice", token="guess")
        self.assertEqual(unknown, [AUTH_FAILED])
        self.assertEqual(wrong, [AUTH_FAILED])
        self.assertEqual(self.register(proto, transport, token="s3cret"),
                         [{"type": "registered", "client": "alice"}])

    def test_failedReregisterKeepsOldName(self):
        proto, transport = self.connect()
        self.register(proto, transport, token="s3cret")
        self.register(proto, transport, name="mallory", token="x")
        self.assertEqual(self.directory.connectionsFor("alice"), [proto.connection])
        self.assertEqual(proto.connection.clientName, "alice")


class ProtectedModeTests(SecurityTestsMixin, SynchronousTestCase):
    """No auth secret: anonymous clients from loopback only."""

    def assertRefused(self, proto, transport):
        code, reason = self.closeFrame(transport)
        self.assertEqual(code, CLOSE_UNAUTHENTICATED)
        self.assertIn("--auth-secret", reason)
        transport.clear()
        self.assertEqual(self.register(proto, transport), [])
        self.assertEqual(self.directory.names(), [])

    def test_loopbackAnonymous(self):
        proto, transport = self.connect()
        self.assertEqual(self.register(proto, transport, trace=True),
                         [{"type": "registered", "client": "alice"}])
        self.assertTrue(proto.connection.identity.anonymous)
        self.assertTrue(proto.connection.trace)
        self.assertTrue(proto.connection.grants.outgoing)

    def test_ipv6Loopback(self):
        proto, transport = self.connect(peer="::1", data=handshake(host="[::1]:8080",
                                                                   origin=None))
        self.assertEqual(self.register(proto, transport)[0]["type"], "registered")

    def test_remoteRefused(self):
        before = securityCount("anonymous_refused")
        proto, transport = self.connect(peer="203.0.113.5")
        self.assertRefused(proto, transport)
        self.assertEqual(securityCount("anonymous_refused") - before, 1)
        self.assertIn("security event=anonymous_refused source=203.0.113.5",
                      self.securityLines())

    def test_remoteWithTokenRefused(self):
        """No secret, so no token can be valid."""
        proto, transport = self.connect(peer="203.0.113.5")
        self.send(proto, {"type": "register", "client": "alice", "token": "anything"})
        self.assertEqual(self.closeFrame(transport)[0], CLOSE_UNAUTHENTICATED)
        self.assertEqual(self.directory.names(), [])

    def test_loopbackBehindProxyRefused(self):
        """A reverse proxy on this host: the real client is elsewhere."""
        data = handshake(headers=[("X-Forwarded-For", "127.0.0.1")])
        proto, transport = self.connect(data=data)
        self.assertRefused(proto, transport)

    def test_reboundHostRefused(self):
        """DNS rebinding: a page of evil.example whose name now points at 127.0.0.1."""
        data = handshake(host="evil.example:8080", origin="http://evil.example:8080")
        proto, transport = self.connect(data=data)
        self.assertRefused(proto, transport)


class OriginTests(SecurityTestsMixin, SynchronousTestCase):
    def test_evilOriginRefused(self):
        before = securityCount("origin_refused")
        self.connect(data=handshake(origin="https://evil.example"), status=b"403")
        self.assertEqual(securityCount("origin_refused") - before, 1)
        self.assertIn('security event=origin_refused source=127.0.0.1 '
                      'origin="https://evil.example" host=localhost:8080',
                      self.securityLines())

    def test_nullOriginRefused(self):
        self.connect(data=handshake(origin="null"), status=b"403")

    def test_samePortMatters(self):
        self.connect(data=handshake(origin="http://localhost:9999"), status=b"403")
        self.connect(data=handshake(origin="https://localhost:8080"), status=b"101")

    def test_defaultPorts(self):
        self.connect(data=handshake(host="localhost", origin="http://localhost"))
        self.connect(data=handshake(host="LOCALHOST:443", origin="https://localhost"))

    def test_noOriginAllowed(self):
        """Non-browser clients send no Origin: tokens protect them."""
        self.connect(data=handshake(origin=None))

    def test_allowedOrigin(self):
        self.factory = self.makeFactory(allowedOrigins=["https://app.example.com"])
        self.connect(data=handshake(origin="https://app.example.com"))
        self.connect(data=handshake(origin="https://app.example.com:443"))
        self.connect(data=handshake(origin="https://evil.example"), status=b"403")

    def test_badAllowedOrigin(self):
        self.assertRaises(ValueError, self.makeFactory, allowedOrigins=["app.example.com"])


class LimitTests(SecurityTestsMixin, SynchronousTestCase):
    def test_unregisteredClosedAfterTimeout(self):
        """A connection that never registers is closed after 10 s (4408)."""
        proto, transport = self.connect()
        self.clock.advance(9.9)
        self.assertIsNone(self.closeFrame(transport))
        self.clock.advance(0.1)
        self.assertEqual(self.closeFrame(transport)[0], CLOSE_REGISTER_TIMEOUT)
        self.assertIn("security event=register_timeout source=127.0.0.1 seconds=10",
                      self.securityLines())

    def test_registeredNotClosed(self):
        proto, transport = self.connect()
        self.register(proto, transport)
        self.clock.advance(15)
        self.assertNotIn(OP_CLOSE, [o for o, _ in serverFrames(transport.value())])

    def test_registerTimeoutConfigurable(self):
        self.factory = self.makeFactory(registerTimeout=2.5)
        proto, transport = self.connect()
        self.clock.advance(2.5)
        self.assertEqual(self.closeFrame(transport)[0], CLOSE_REGISTER_TIMEOUT)

    def test_timerCancelledOnClose(self):
        proto, transport = self.connect()
        proto.connectionLost(Failure(ConnectionDone()))
        self.assertEqual(self.clock.getDelayedCalls(), [])

    def test_connectionsPerSource(self):
        """The 4th connection from one address gets 429; others are not affected."""
        self.factory = self.makeFactory(guard=SourceGuard(self.clock, maxConnections=3))
        first = self.connect()
        self.connect()
        self.connect()
        before = securityCount("too_many_connections")
        self.connect(status=b"429")
        self.assertEqual(securityCount("too_many_connections") - before, 1)
        self.connect(peer="198.51.100.7")
        first[0].connectionLost(Failure(ConnectionDone()))
        self.connect()
        self.assertEqual(self.factory.guard.connections("127.0.0.1"), 3)
