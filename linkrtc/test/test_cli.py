"""Tests for L{linkrtc.cli}: C{linkrtc token} and C{linkrtc token --sip-password}."""

import json
from io import StringIO

from twisted.internet.task import Clock
from twisted.trial.unittest import SynchronousTestCase

from linkrtc.cli import main
from linkrtc.signalling.tokens import Grants, SIPCredentialChecker, TokenVerifier

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


class SIPPasswordCommandTests(SynchronousTestCase):
    """C{linkrtc token NAME --sip-password}: derived SIP credentials as one JSON line."""

    command = TokenCommandTests.command

    def check(self, username, password, keys):
        clock = Clock()
        clock.advance(NOW)
        name, expected = SIPCredentialChecker(keys, clock).check(username)
        self.assertEqual(password, expected)
        return name

    def test_password(self):
        status, out, err = self.command("token", "alice", "--sip-password", "--auth-secret",
                                        SECRET, "--ttl", "600", "--grant", "outgoing")
        self.assertEqual((status, err), (0, ""))
        printed = json.loads(out)
        self.assertEqual(printed, {"username": f"alice~{NOW + 600}~outgoing",
                                   "password": printed["password"], "realm": "linkrtc",
                                   "expires": NOW + 600})
        name = self.check(printed["username"], printed["password"], {"default": SECRET})
        self.assertTrue(name.outgoing)

    def test_configKidAndRealm(self):
        """With several keys the kid is named (the first unless --kid); the realm is the file's."""
        path = self.mktemp()
        with open(path, "w") as f:
            f.write(f'sip-realm = "example.com"\n'
                    f'[auth-secrets]\nnew = "{"n" * 40}"\nold = "{"o" * 32}"\n')
        keys = {"new": "n" * 40, "old": "o" * 32}
        for extra, kid in (((), "new"), (("--kid", "old"), "old")):
            status, out, err = self.command("token", "bob", "--sip-password", "--config", path,
                                            *extra)
            self.assertEqual((status, err), (0, ""))
            printed = json.loads(out)
            self.assertEqual(printed["username"], f"bob~{NOW + 3600}~kid={kid}")
            self.assertEqual(printed["realm"], "example.com")
            self.assertFalse(self.check(printed["username"], printed["password"], keys).outgoing)

    def test_errors(self):
        base = ("token", "a", "--sip-password", "--auth-secret", SECRET)
        for argv, words in (((*base, "--grant", "trace"), "only --grant outgoing"),
                            ((*base, "--grant", "outgoing", "--trunk", "x"),
                             "only --grant outgoing"),
                            ((*base, "--ttl", "700000"), "at most 604800")):
            status, out, err = self.command(*argv)
            self.assertEqual((status, out), (2, ""), argv)
            self.assertIn(words, err)
