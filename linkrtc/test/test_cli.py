"""Tests for L{linkrtc.cli}: C{linkrtc token}."""

from io import StringIO

from twisted.internet.task import Clock
from twisted.trial.unittest import SynchronousTestCase

from linkrtc.cli import main
from linkrtc.signalling.tokens import Grants, TokenVerifier

SECRET = "s" * 32
NOW = 1_700_000_000


class TokenCommandTests(SynchronousTestCase):
    def command(self, *argv, environ=None):
        out, err = StringIO(), StringIO()
        status = main(list(argv), stdout=out, stderr=err, environ=environ or {}, now=NOW)
        return status, out.getvalue(), err.getvalue()

    def verify(self, name, token, keys):
        clock = Clock()
        clock.advance(NOW)
        return TokenVerifier(keys, clock).verify(name, token.strip())

    def test_token(self):
        status, out, err = self.command("token", "alice", "--auth-secret", SECRET, "--ttl", "60",
                                    "--grant", "outgoing", "--grant", "trace",
                                    "--trunk", "pstn")
        self.assertEqual((status, err), (0, ""))
        identity = self.verify("alice", out, {"default": SECRET})
        self.assertEqual(identity.grants, Grants(outgoing=True, trunks=("pstn",), trace=True))
        self.assertEqual(identity.expires, NOW + 60)

    def test_adminGrants(self):
        """C{--grant admin} and C{--grant metrics} (the admin endpoints, /metrics)."""
        status, out, err = self.command("token", "ops", "--auth-secret", SECRET,
                                        "--grant", "admin", "--grant", "metrics")
        self.assertEqual((status, err), (0, ""))
        clock = Clock()
        clock.advance(NOW)
        identity = TokenVerifier({"default": SECRET}, clock).verifyBearer(out.strip())
        self.assertEqual(identity.name, "ops")
        self.assertEqual(identity.grants, Grants(admin=True, metrics=True))

    def test_environment(self):
        status, out, _ = self.command("token", "bob", environ={"LINKRTC_AUTH_SECRET": SECRET})
        self.assertEqual(status, 0)
        self.assertEqual(self.verify("bob", out, {"default": SECRET}).grants, Grants())

    def test_configWithKid(self):
        path = self.mktemp()
        with open(path, "w") as f:
            f.write(f'[auth-secrets]\nold = "{"o" * 32}"\nnew = "{"n" * 40}"\n')
        status, out, _ = self.command("token", "bob", "--config", path, "--kid", "new")
        self.assertEqual(status, 0)
        self.assertEqual(self.verify("bob", out, {"old": "o" * 32, "new": "n" * 40}).kid, "new")
        status, _, err = self.command("token", "bob", "--config", path, "--kid", "nope")
        self.assertEqual(status, 2)
        self.assertIn("nope", err)

    def test_errors(self):
        for argv, words in ((("token", "alice"), "no key"),
                            (("token", "a b", "--auth-secret", SECRET), "client name"),
                            (("token", "a", "--auth-secret", "short"), "32"),
                            (("token", "a", "--auth-secret", SECRET, "--ttl", "0"), "--ttl"),
                            (("token", "a", "--auth-secret", SECRET, "--trunk", "x"),
                             "--grant outgoing")):
            status, out, err = self.command(*argv)
            self.assertEqual((status, out), (2, ""), argv)
            self.assertIn(words, err)
