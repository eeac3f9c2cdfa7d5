"""Tests for L{linkrtc.service}."""

from twisted.trial.unittest import SynchronousTestCase

from linkrtc.service import SIPLadder
from linkrtc.signalling.directory import ClientDirectory
from linkrtc.sip.parser import parseMessage
from linkrtc.testing import FakeClientConnection

INVITE = (
    b"INVITE sip:bob@127.0.0.1 SIP/2.0\r\n"
    b"Via: SIP/2.0/UDP 127.0.0.1:5070;branch=z9hG4bK1\r\n"
    b"From: <sip:alice@127.0.0.1>;tag=a\r\nTo: <sip:bob@127.0.0.1>\r\n"
    b"Call-ID: c1@x\r\nCSeq: 1 INVITE\r\nMax-Forwards: 70\r\nContent-Length: 0\r\n\r\n"
)


class _Leg:
    callId = "c1@x"


class _Call:
    def __init__(self, connections):
        self.id = "call-1"
        self.leg = _Leg()
        self.connections = connections
        self.clientName = "bob"


class _Manager:
    def __init__(self, calls):
        self.calls = {c.id: c for c in calls}


class SIPLadderTests(SynchronousTestCase):
    def setUp(self):
        self.directory = ClientDirectory()
        self.bob = FakeClientConnection("bob")
        self.eve = FakeClientConnection("eve")
        self.directory.register("bob", self.bob, True)
        self.directory.register("eve", self.eve, True)
        self.ladder = SIPLadder(_Manager([_Call([self.bob])]), self.directory)

    def test_traced(self):
        """A SIP message of bob's call reaches bob's tracing connection only."""
        self.ladder("in", parseMessage(INVITE), INVITE, None)
        traces = self.bob.ofType("trace")
        self.assertEqual(len(traces), 1)
        self.assertEqual((traces[0]["call"], traces[0]["dir"], traces[0]["proto"]),
                         ("call-1", "in", "sip"))
        self.assertTrue(traces[0]["text"].startswith("INVITE sip:bob"))
        self.assertEqual(self.eve.ofType("trace"), [])

    def test_otherCall(self):
        """A message of no known call is not traced."""
        self.ladder("in", parseMessage(INVITE.replace(b"c1@x", b"zz")), INVITE, None)
        self.assertEqual(self.bob.ofType("trace"), [])

    def test_credentialsRedacted(self):
        """The trunk's Authorization / Proxy-Authorization values never reach a client."""
        invite = INVITE.replace(
            b"Max-Forwards: 70\r\n",
            b"Max-Forwards: 70\r\nAuthorization: Digest username=\"acct\", "
            b"response=\"0123456789abcdef0123456789abcdef\"\r\n"
            b"Proxy-Authorization: Digest username=\"acct\", response=\"99\"\r\n")
        self.ladder("out", parseMessage(invite), invite, None)
        [trace] = self.bob.ofType("trace")
        self.assertNotIn("acct", trace["text"])
        self.assertNotIn("0123456789abcdef", trace["text"])
        self.assertIn("Authorization: Digest [redacted]\r\n", trace["text"])
        self.assertIn("Proxy-Authorization: Digest [redacted]\r\n", trace["text"])


class TokenVerifierTests(SynchronousTestCase):
    def setUp(self):
        from twisted.logger import globalLogPublisher

        self.logged = []
        globalLogPublisher.addObserver(self.logged.append)
        self.addCleanup(globalLogPublisher.removeObserver, self.logged.append)

    def test_protectedMode(self):
        """No credentials: no verifier, and one line at start-up says so."""
        from twisted.logger import formatEvent

        from linkrtc.config import LinkRTCConfig
        from linkrtc.service import makeTokenVerifier

        self.assertIsNone(makeTokenVerifier(LinkRTCConfig(), None))
        [line] = [formatEvent(e) for e in self.logged if "protected mode" in formatEvent(e)]
        self.assertIn("--auth-secret", line)
        self.assertIn("loopback", line)

    def test_keys(self):
        from linkrtc.config import LinkRTCConfig
        from linkrtc.service import makeTokenVerifier

        config = LinkRTCConfig(authSecret="a" * 32, authSecrets={"k2": "b" * 32},
                               clientTokens={"dev": "t"})
        verifier = makeTokenVerifier(config, None)
        self.assertEqual(list(verifier.keys), ["default", "k2"])
        self.assertEqual(verifier.staticTokens, {"dev": "t"})
