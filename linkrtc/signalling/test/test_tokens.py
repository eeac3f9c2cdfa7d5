"""Tests for L{linkrtc.signalling.tokens}: JWT access tokens and grants."""

import json
import os
import shutil
import subprocess
import textwrap

import jwt
from twisted.internet.task import Clock
from twisted.trial.unittest import SkipTest, SynchronousTestCase

from linkrtc.signalling.tokens import (
    DEFAULT_KID,
    MAX_SIP_TTL,
    Grants,
    SIPCredentialChecker,
    SIPCredentialName,
    TokenError,
    TokenVerifier,
    mintToken,
    parseKeys,
    sipCredentials,
    sipPassword,
)

A = "a" * 32
B = "b" * 40
NOW = 1_700_000_000


class ParseKeysTests(SynchronousTestCase):
    def test_single(self):
        self.assertEqual(parseKeys(A), {DEFAULT_KID: A})

    def test_table(self):
        keys = parseKeys(A, {"2024": B})
        self.assertEqual(list(keys), [DEFAULT_KID, "2024"])

    def test_none(self):
        self.assertEqual(parseKeys(), {})

    def test_short(self):
        self.assertRaises(ValueError, parseKeys, "short")
        self.assertRaises(ValueError, parseKeys, None, {"k": "short"})

    def test_badKid(self):
        self.assertRaises(ValueError, parseKeys, None, {"a b": A})
        self.assertRaises(ValueError, parseKeys, A, {DEFAULT_KID: B})


class VerifyTests(SynchronousTestCase):
    def setUp(self):
        self.clock = Clock()
        self.clock.advance(NOW)
        self.keys = {"old": A, "new": B}
        self.verifier = TokenVerifier(self.keys, self.clock)

    def reason(self, name, token):
        with self.assertRaises(TokenError) as e:
            self.verifier.verify(name, token)
        return e.exception.reason

    def test_identity(self):
        token = mintToken("alice", self.keys, NOW, ttl=60, kid="new",
                          grants=Grants(outgoing=True, trunks=("pstn",), trace=True))
        self.assertEqual(jwt.get_unverified_header(token)["kid"], "new")
        identity = self.verifier.verify("alice", token)
        self.assertEqual(identity.name, "alice")
        self.assertEqual(identity.kid, "new")
        self.assertEqual(identity.expires, NOW + 60)
        self.assertEqual(identity.grants, Grants(outgoing=True, trunks=("pstn",), trace=True))
        self.assertFalse(identity.anonymous)

    def test_rotation(self):
        """Both keys verify their own tokens; a token without kid uses the first."""
        for kid in ("old", "new"):
            self.verifier.verify("alice", mintToken("alice", self.keys, NOW, kid=kid))
        bare = jwt.encode({"sub": "alice", "exp": NOW + 60}, A, "HS256")
        self.verifier.verify("alice", bare)
        wrongKey = jwt.encode({"sub": "alice", "exp": NOW + 60}, A, "HS256",
                              headers={"kid": "new"})
        self.assertEqual(self.reason("alice", wrongKey), "bad_signature")

    def test_noGrants(self):
        identity = self.verifier.verify("alice", mintToken("alice", self.keys, NOW))
        self.assertEqual(identity.grants, Grants())
        self.assertFalse(identity.grants.mayUseTrunk("pstn"))

    def test_requiresExp(self):
        token = jwt.encode({"sub": "alice"}, A, "HS256", headers={"kid": "old"})
        self.assertEqual(self.reason("alice", token), "missing_claim")

    def test_requiresSub(self):
        token = jwt.encode({"exp": NOW + 60}, A, "HS256", headers={"kid": "old"})
        self.assertEqual(self.reason("alice", token), "missing_claim")

    def test_expiredWithLeeway(self):
        token = mintToken("alice", self.keys, NOW - 100, ttl=71)
        self.verifier.verify("alice", token)
        self.clock.advance(1)
        self.assertEqual(self.reason("alice", token), "expired")

    def test_notBefore(self):
        token = jwt.encode({"sub": "alice", "exp": NOW + 600, "nbf": NOW + 100}, A, "HS256")
        self.assertEqual(self.reason("alice", token), "not_yet_valid")
        self.clock.advance(70)
        self.verifier.verify("alice", token)

    def test_otherAlgorithmsRefused(self):
        token = jwt.encode({"sub": "alice", "exp": NOW + 60}, A, "HS512",
                           headers={"kid": "old"})
        self.assertEqual(self.reason("alice", token), "bad_signature")

    def test_badGrants(self):
        for grants in ("all", {"outgoing": "yes"}, {"trunks": "pstn"}, {"trunks": [1]}):
            token = jwt.encode({"sub": "alice", "exp": NOW + 60, "grants": grants}, A, "HS256")
            self.assertEqual(self.reason("alice", token), "bad_grants", grants)

    def test_unknownGrantsIgnored(self):
        token = jwt.encode({"sub": "a", "exp": NOW + 60, "grants": {"video": True}}, A, "HS256")
        self.assertEqual(self.verifier.verify("a", token).grants, Grants())

    def test_missingToken(self):
        self.assertEqual(self.reason("alice", None), "missing_token")
        self.assertEqual(self.reason("alice", ""), "missing_token")


class StaticTokenTests(SynchronousTestCase):
    def test_staticBesideKeys(self):
        verifier = TokenVerifier({"k": A}, Clock(), staticTokens={"dev": "devtoken"})
        self.assertTrue(verifier.verify("dev", "devtoken").grants.outgoing)
        token = mintToken("dev", {"k": A}, 0, ttl=600)
        self.assertEqual(verifier.verify("dev", token).kid, "k")

    def test_staticOnly(self):
        verifier = TokenVerifier({}, Clock(), staticTokens={"dev": "devtoken"})
        for name, token, reason in (("dev", "x", "bad_token"), ("eve", "devtoken", "unknown_name")):
            with self.assertRaises(TokenError) as e:
                verifier.verify(name, token)
            self.assertEqual(e.exception.reason, reason)


class GrantsTests(SynchronousTestCase):
    def test_roundTrip(self):
        for grants in (Grants(), Grants(outgoing=True), Grants(True, ("a", "b"), True, True)):
            self.assertEqual(Grants.fromClaim(grants.toClaim()), grants)

    def test_trunks(self):
        self.assertTrue(Grants(outgoing=True).mayUseTrunk("x"))
        self.assertFalse(Grants(outgoing=True, trunks=()).mayUseTrunk("x"))
        self.assertFalse(Grants(trunks=("x",)).mayUseTrunk("x"))


class CallerIdGrantTests(SynchronousTestCase):
    def test_callerIdClaim(self):
        """The C{caller_id} grant is a number; it survives a claim round trip."""
        from linkrtc.signalling.tokens import Grants, TokenError

        grants = Grants.fromClaim({"outgoing": True, "caller_id": "+14155550100"})
        self.assertEqual(grants.caller_id, "+14155550100")
        self.assertEqual(Grants.fromClaim(grants.toClaim()), grants)
        for bad in ("alice", "", 5, "+1 415"):
            self.assertRaises(TokenError, Grants.fromClaim, {"caller_id": bad})


class SIPCredentialsTests(SynchronousTestCase):
    """L{sipCredentials}, L{SIPCredentialName} and L{SIPCredentialChecker}."""

    def test_vector(self):
        """
        The password is base64url (no padding) of HMAC-SHA256(secret,
        username); this vector was made with C{openssl dgst -sha256 -hmac}.
        """
        creds = sipCredentials(A, "alice", 600, outgoing=True, now=NOW)
        self.assertEqual(creds, {"username": "alice~1700000600~outgoing",
                                 "password": "H0Ilhkw0mMUgs1sJq8fGnPQJHEBObcyyQkn3X_5DyBw",
                                 "expires": NOW + 600})
        self.assertEqual(sipPassword(A, creds["username"]), creds["password"])

    def test_forms(self):
        """The username's fields, in the one order accepted."""
        for username, name in (
                ("bob~1700000000", SIPCredentialName("bob", NOW)),
                ("b.o+b@x~1700000000~outgoing", SIPCredentialName("b.o+b@x", NOW, True)),
                ("bob~1700000000~kid=k-1", SIPCredentialName("bob", NOW, False, "k-1")),
                ("bob~1700000000~outgoing~kid=k", SIPCredentialName("bob", NOW, True, "k"))):
            self.assertEqual(SIPCredentialName.parse(username), name)
            self.assertEqual(name.username, username)
        for bad in ("bob", "bob~", "~1700000000", "bob~01700000000", "bob~-1", "bob~1e9",
                    "bob~1700000000~kid=k~outgoing", "bob~1700000000~outgoing~outgoing",
                    "bob~1700000000~kid=", "bob~1700000000~kid=a b", "bob~1700000000~x",
                    "b b~1700000000", "bob~1700000000~kid=a~kid=b", None, 3):
            self.assertIsNone(SIPCredentialName.parse(bad), bad)

    def test_errors(self):
        for args, kw in (((A, "a b", 60), {}), ((A, "bob", 0), {}),
                         ((A, "bob", MAX_SIP_TTL + 1), {}), (("short", "bob", 60), {}),
                         ((A, "bob", 60), {"kid": "a~b"})):
            self.assertRaises(ValueError, sipCredentials, *args, **kw)

    def test_checker(self):
        """The checker gives the password while valid, else the reason."""
        clock = Clock()
        clock.advance(NOW)
        checker = SIPCredentialChecker({"new": B, "old": A}, clock)
        creds = sipCredentials(A, "alice", 60, kid="old", now=NOW)
        name, password = checker.check(creds["username"])
        self.assertEqual(password, creds["password"])
        self.assertEqual(checker.identity(name).grants, Grants())
        self.assertEqual(checker.identity(name).kid, "old")
        self.assertEqual(checker.check(sipCredentials(B, "al", 60, now=NOW)["username"])[1],
                         sipCredentials(B, "al", 60, now=NOW)["password"])
        for username, reason in (
                ("alice", "not_derived"),
                (sipCredentials(A, "a", 60, kid="gone", now=NOW)["username"], "unknown_kid"),
                (sipCredentials(A, "a", 60, now=NOW - 90)["username"], "expired"),
                (sipCredentials(A, "a", MAX_SIP_TTL, now=NOW + 31)["username"], "too_far")):
            e = self.assertRaises(TokenError, checker.check, username)
            self.assertEqual(e.reason, reason)


def _docsBlock(marker):
    """@return: the code block of docs/security.rst that contains C{marker}, dedented."""
    path = os.path.join(os.path.dirname(__file__), "..", "..", "..", "docs", "security.rst")
    with open(path, encoding="utf-8") as f:
        lines = f.read().splitlines()
    for i, line in enumerate(lines):
        if line.startswith(".. code-block::"):
            body = []
            for text in lines[i + 1:]:
                if text.strip() and not text.startswith(" "):
                    break
                body.append(text)
            block = textwrap.dedent("\n".join(body))
            if marker in block:
                return block
    raise AssertionError(f"no code block with {marker!r} in docs/security.rst")


class SIPCredentialsDocsTests(SynchronousTestCase):
    """docs/security.rst's Python and Node.js code makes the passwords the switch expects."""

    def check(self, username, password, outgoing, kid):
        name = SIPCredentialName.parse(username)
        self.assertEqual((name.identity, name.outgoing, name.kid), ("alice", outgoing, kid))
        self.assertEqual(password, sipPassword(A, username))

    def test_python(self):
        namespace = {}
        exec(_docsBlock("def linkrtc_sip_credentials"), namespace)
        username, password = namespace["linkrtc_sip_credentials"]("alice", A, 600, True, "k1")
        self.check(username, password, True, "k1")

    def test_node(self):
        node = shutil.which("node")
        if node is None:
            raise SkipTest("no node")
        script = _docsBlock("function linkrtcSipCredentials") + (
            f'\nconsole.log(JSON.stringify(linkrtcSipCredentials("alice", "{A}", 600)));\n')
        out = subprocess.run([node, "-e", script], capture_output=True, text=True, timeout=30,
                             check=True).stdout
        creds = json.loads(out)
        self.check(creds["username"], creds["password"], False, None)
