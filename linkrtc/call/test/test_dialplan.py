"""
L{linkrtc.call.dialplan} on its own: patterns and their order, targets,
identities, caller IDs, the limiter; and the trunk keys that feed it.
"""

from dataclasses import dataclass

from twisted.internet.task import Clock
from twisted.trial.unittest import SynchronousTestCase

from linkrtc.call.dialplan import (
    CallLimiter,
    DialPlan,
    DialPlanRefused,
    callerIdentity,
    compilePatterns,
    identityOf,
    normaliseNumber,
)
from linkrtc.config import ConfigError, LinkRTCConfig, applyChanges, parseTrunk
from linkrtc.testing import FakeClientConnection


def trunk(**kw):
    return parseTrunk(dict({"name": "t", "proxy": "sip:pbx.example.com", "username": "u"}, **kw))


class PatternTests(SynchronousTestCase):
    def check(self, number, **kw):
        t = trunk(**kw)
        return DialPlan([t]).check("alice", {}, t, number)

    def refused(self, number, code=403, **kw):
        e = self.assertRaises(DialPlanRefused, self.check, number, **kw)
        self.assertEqual(e.code, code)
        return e

    def test_defaults(self):
        """International and premium prefixes are refused; national numbers pass."""
        for number in ("+4930123", "0049301234", "01144123", "19005550100", "0900123456",
                       "+1-900-555-0100", "(0900)123"):
            self.refused(number)
        for number in ("0301234", "5551234", "*43", "bob", "112"):
            self.assertEqual(self.check(number).number, number)

    def test_separators(self):
        """Visual separators are taken out before the check and in what is sent."""
        decision = self.check("030-123.45(6)")
        self.assertEqual(decision.number, "030123456")
        self.assertEqual(str(decision.requestURI), "sip:030123456@pbx.example.com")

    def test_allowPrefix(self):
        """An allow prefix opens its numbers, but not a longer built-in premium prefix."""
        self.assertEqual(self.check("+4930123", allow=["+49"]).number, "+4930123")
        self.refused("+4990012345", allow=["+49"])
        self.refused("+4412345", allow=["+49"])
        self.assertEqual(self.check("+4990012345", allow=["+49900"]).number, "+4990012345")

    def test_allowRegex(self):
        """A regular expression allow outweighs every built-in prefix; ^ lifts them all."""
        self.assertEqual(self.check("+19005550100", allow=["^"]).number, "+19005550100")
        self.refused("+4930123", allow=["^\\+1"])

    def test_denyWins(self):
        """A deny pattern refuses even what allow opens."""
        self.refused("+4930123", allow=["^"], deny=["+4930"])
        self.refused("5551234", deny=["555"])

    def test_whitelist(self):
        """A negative look-ahead deny refuses everything outside a range."""
        kw = {"deny": ["^(?!030)"]}
        self.assertEqual(self.check("0301234", **kw).number, "0301234")
        self.refused("0401234", **kw)

    def test_notANumber(self):
        """Spaces, quotes, nothing: 484."""
        for target in ("555 1234", "", "a'b", "+", "sip:@pbx.example.com"):
            self.refused(target, 484)

    def test_uris(self):
        """tel: and sip: URIs at the trunk's host are numbers; others are refused."""
        self.assertEqual(self.check("tel:555-1234").number, "5551234")
        self.assertEqual(str(self.check("sip:2000@PBX.example.com:5060").requestURI),
                         "sip:2000@pbx.example.com")
        self.assertEqual(str(self.check("sips:2000@pbx.example.com").requestURI),
                         "sips:2000@pbx.example.com")
        for target in ("sip:2000@pbx.example.com:5070", "sip:2000:pw@pbx.example.com",
                       "sip:2000@pbx.example.com;user=phone", "sip:2000@evil.example.com",
                       "sip:2000@pbx.example.com?Subject=x"):
            self.refused(target)

    def test_compile(self):
        """Bad patterns are refused with the pattern named."""
        self.assertRaises(ValueError, compilePatterns, ["^("])
        self.assertRaises(ValueError, compilePatterns, ["12 3"])
        self.assertRaises(ValueError, compilePatterns, [""])
        self.assertEqual(len(compilePatterns(["+", "^0[1-9]"])), 2)

    def test_normalise(self):
        self.assertEqual(normaliseNumber("(030)1-1"), "03011")
        self.assertRaises(DialPlanRefused, normaliseNumber, "+49+30")


class ConfigTests(SynchronousTestCase):
    def test_trunkKeys(self):
        """allow/deny (a string or a list), realm as a list."""
        t = trunk(allow="+49", deny=["^9"], realm=["a", "b"])
        self.assertEqual((t.allow, t.deny, t.realm), (("+49",), ("^9",), ("a", "b")))
        self.assertEqual(trunk(realm=["a"]).realm, "a")

    def test_badTrunkKeys(self):
        for kw in ({"allow": ["^("]}, {"deny": ["a b"]}, {"allow": 5}, {"realm": 5},
                   {"realm": []}):
            self.assertRaises(ConfigError, trunk, **kw)

    def test_limits(self):
        """max-outbound-calls[-per-minute]: defaults 4 and 10; 0 means no limit."""
        config = LinkRTCConfig()
        self.assertEqual((config.maxOutboundCalls, config.maxOutboundCallsPerMinute), (4, 10))
        config = applyChanges(config, {"max-outbound-calls": 0,
                                       "max_outbound_calls_per_minute": 30})
        self.assertEqual((config.maxOutboundCalls, config.maxOutboundCallsPerMinute), (None, 30))
        for value in (-1, "x", 1.5, True):
            self.assertRaises(ConfigError, applyChanges, config, {"max-outbound-calls": value})


@dataclass
class _Grants:
    outgoing: bool = False
    trunks: tuple = None


@dataclass
class _Identity:
    name: str
    grants: _Grants
    anonymous: bool = False


class IdentityTests(SynchronousTestCase):
    def test_anonymous(self):
        """Without an identity: the client name, no grants, not authenticated."""
        self.assertEqual(identityOf(FakeClientConnection("bob")), ("bob", {}, False))

    def test_identityObject(self):
        """An identity object (the token layer's): its name and grants."""
        connection = FakeClientConnection("bob")
        grants = _Grants(outgoing=True, trunks=("pbx",))
        connection.identity = _Identity("bob", grants)
        self.assertEqual(identityOf(connection), ("bob", grants, True))
        connection.identity = _Identity("bob", grants, anonymous=True)
        self.assertFalse(identityOf(connection)[2])

    def test_grantObject(self):
        """Grants as an object: outgoing false and trunks are enforced."""
        t = trunk()
        plan = DialPlan([t])
        self.assertRaises(DialPlanRefused, plan.check, "bob", _Grants(False), t, "2000")
        self.assertRaises(DialPlanRefused, plan.check, "bob", _Grants(True, ("x",)), t, "2000")
        self.assertEqual(plan.check("bob", _Grants(True, ("t",)), t, "2000").number, "2000")


class CallerIdentityTests(SynchronousTestCase):
    def test_order(self):
        """Application, then the token's claim, then the trunk's template."""
        t = trunk(caller_id="+4930{client}")
        claim = {"caller_id": "+14155550100"}
        self.assertEqual(callerIdentity(t, "bob", claim, True, "+1"), ("+1", None))
        self.assertEqual(callerIdentity(t, "bob", claim, True), ("+14155550100", None))
        self.assertEqual(callerIdentity(t, "bob", claim, False), ("u", None))
        self.assertEqual(callerIdentity(t, "bob", {}, True), ("+4930bob", None))

    def test_noUsername(self):
        """A trunk without username and {client}: anonymous for anonymous clients."""
        t = parseTrunk({"name": "t", "proxy": "sip:pbx.example.com"})
        self.assertEqual(callerIdentity(t, "+14155550100", {}, False), ("anonymous", None))

    def test_badClaim(self):
        t = trunk()
        self.assertRaises(DialPlanRefused, callerIdentity, t, "bob", {"caller_id": "a b"}, True)


class LimiterTests(SynchronousTestCase):
    def test_window(self):
        """Calls per minute count in a sliding 60 seconds; release frees concurrency."""
        clock = Clock()
        limiter = CallLimiter(clock, maxCalls=2, maxPerMinute=3)
        first = limiter.record("a")
        limiter.record("a")
        e = self.assertRaises(DialPlanRefused, limiter.check, "a")
        self.assertEqual((e.code, e.event), (429, "outbound_limit"))
        limiter.check("b")
        first()
        first()
        self.assertEqual(limiter.active("a"), 1)
        limiter.check("a")
        clock.advance(30)
        limiter.record("a")()
        self.assertRaises(DialPlanRefused, limiter.check, "a")
        clock.advance(30)
        limiter.check("a")
