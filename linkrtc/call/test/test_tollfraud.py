"""
Toll fraud through the outbound path (issue 11): each finding played
against the dialer with the real SIP leg, transaction layer and user agent
over a recording transport, so "nothing sent to the trunk" is what the
wire saw. Dial plan (L{linkrtc.call.dialplan}), caller ID, per-identity
limits and the trunk's realm.
"""

from twisted.internet import defer
from twisted.logger import Logger
from twisted.trial.unittest import SynchronousTestCase

from linkrtc.call import dialplan
from linkrtc.call.dialer import OutboundDialer
from linkrtc.call.passthrough import PassthroughMediaFactory
from linkrtc.call.test.test_outbound import OFFER
from linkrtc.config import parseTrunks
from linkrtc.sip.auth import makeChallenge, verifyAuthorization
from linkrtc.sip.parser import parseMessage
from linkrtc.sip.test.test_outbound import PROXY, RecordingTransport, _Handler
from linkrtc.sip.transaction import TransactionLayer
from linkrtc.sip.useragent import UserAgent
from linkrtc.testing import CallHarness, FakeApplication

ANSWER = b"v=0\r\no=far 1 1 IN IP4 192.0.2.9\r\ns=-\r\nc=IN IP4 192.0.2.9\r\nt=0 0\r\n" \
         b"m=audio 5000 RTP/AVP 0\r\n"

PBX = {"name": "pbx", "proxy": "sip:198.51.100.1:5060", "username": "trunkuser",
       "password": "trunkpass", "caller_id": "{client}", "caller_name": "{client}"}

TRUNKS = [
    PBX,
    {"name": "intl", "proxy": "sip:198.51.100.1:5060", "username": "trunkuser",
     "password": "trunkpass", "realm": "pbx.test", "allow": ["+44", "011"],
     "deny": ["+4490"]},
]


class RoutingApplication(FakeApplication):
    """Answers C{outgoing} at once with C{self.decision} (default trunk if C{None})."""

    decision = None

    def outgoing(self, info):
        self.incomings.append(info)
        return defer.succeed(dict(self.decision or {"action": "route", "trunk": None}))


class TollFraudMixin:
    maxCalls = 4
    maxCallsPerMinute = 10
    trunks = [PBX]

    def setUp(self):
        self.h = CallHarness(mediaFactory=PassthroughMediaFactory(),
                             application=RoutingApplication())
        self.clock = self.h.clock
        self.transport = RecordingTransport()
        self.ua = UserAgent(None, self.transport, _Handler(), self.clock)
        self.layer = TransactionLayer(self.transport, self.clock, self.ua)
        self.ua.setTransactionLayer(self.layer)
        self.dialer = OutboundDialer(self.ua, parseTrunks(self.trunks), self.clock,
                                     maxCalls=self.maxCalls,
                                     maxCallsPerMinute=self.maxCallsPerMinute)
        self.h.manager.dialer = self.dialer
        self.placed = {}
        placeCall = self.dialer.placeCall

        def recordingPlaceCall(*args, **kwargs):
            call = placeCall(*args, **kwargs)
            self.placed[call.id] = call
            return call

        self.patch(self.dialer, "placeCall", recordingPlaceCall)
        self.security = []
        self.patch(dialplan, "securityLog",
                   Logger(namespace="linkrtc.security", observer=self.security.append))
        self.alice = self.h.connect("alice")

    def dial(self, to, connection=None, ref="r1"):
        """The client dials C{to}: the call (routed at once), or C{None} if refused."""
        connection = connection or self.alice
        self.h.manager.clientMessageReceived(
            connection, {"type": "call", "to": to, "sdp": OFFER, "ref": ref})
        calling = [m for m in connection.ofType("calling") if m.get("ref") == ref]
        if not calling:
            return None
        self.clock.advance(0)
        return self.placed[calling[-1]["call"]]

    def invites(self):
        return self.transport.requests("INVITE")

    def respond(self, status, request=None, headers=(), body=b""):
        request = request or self.invites()[-1]
        response = request.createResponse(status, toTag="tt1" if status > 100 else None)
        for name, value in headers:
            response.headers.add(name, value)
        if body:
            response.body = body
            response.headers.set("Content-Type", "application/sdp")
        self.layer.responseReceived(parseMessage(response.toBytes()), PROXY)
        self.clock.advance(0)

    def assertRefused(self, to, code=403, connection=None):
        """C{to} gets an C{error} with C{code}, and the trunk gets nothing."""
        connection = connection or self.alice
        before = len(connection.ofType("error"))
        call = self.dial(to, connection)
        self.assertIsNone(call, f"{to!r} was placed")
        errors = connection.ofType("error")
        self.assertEqual(len(errors), before + 1, f"no error for {to!r}")
        self.assertEqual(errors[-1]["code"], code, errors[-1])
        self.assertEqual(self.transport.sent, [], f"{to!r} reached the trunk")
        return errors[-1]

    def securityLines(self, event=None):
        lines = [e["line"] for e in self.security if "line" in e]
        return [line for line in lines if event is None or f"event={event} " in line]


class DialPlanTests(TollFraudMixin, SynchronousTestCase):
    def test_premiumRefused(self):
        """+1900 and 1900 (premium) are refused by default: error 403, nothing sent."""
        self.assertRefused("+19005550100")
        self.assertRefused("19005550100")
        self.assertRefused("1-900-555-0100")
        self.assertRefused("09001234567")

    def test_internationalRefused(self):
        """011..., 00... and +... are refused by default; one security line each."""
        self.assertRefused("011441234567890")
        self.assertRefused("00441234567890")
        self.assertRefused("+4930123456")
        self.assertRefused("tel:+4930123456")
        lines = self.securityLines("dialplan_refused")
        self.assertEqual(len(lines), 4)
        self.assertIn("identity=alice", lines[0])
        self.assertIn("to=011441234567890", lines[0])

    def test_nationalAllowed(self):
        """A national number goes to the trunk as sip:NUMBER@DOMAIN."""
        call = self.dial("0301234567")
        self.assertIsNotNone(call)
        [invite] = self.invites()
        self.assertEqual(str(invite.uri), "sip:0301234567@198.51.100.1:5060")



    def test_foreignHostRefused(self):
        """A SIP URI for another host: error 403, nothing sent."""
        self.assertRefused("sip:2000@evil.example.com")
        self.assertRefused("sips:2000@evil.example.com")
        self.assertRefused("2000@evil.example.com")

    def test_uriHeadersRefused(self):
        """URI headers (?Route=...&X-Injected=1) are refused."""
        self.assertRefused("sip:2000@198.51.100.1:5060?Route=%3Csip:evil.example.com%3E"
                           "&X-Injected=1")
        self.assertRefused("2000?X-Injected=1")

    def test_uriParametersRefused(self):
        """maddr and transport parameters (any parameter) are refused."""
        self.assertRefused("sip:2000@198.51.100.1:5060;maddr=203.0.113.66")
        self.assertRefused("sip:2000@198.51.100.1:5060;transport=tcp")
        self.assertRefused("tel:2000;phone-context=example.com")
        self.assertRefused("2000;maddr=203.0.113.66")

    def test_trunkURIAccepted(self):
        """sip:NUMBER@ the trunk's own host is a number: sent as sip:NUMBER@DOMAIN."""
        self.dial("sip:2000@198.51.100.1")
        [invite] = self.invites()
        self.assertEqual(str(invite.uri), "sip:2000@198.51.100.1:5060")
        self.assertIsNone(invite.headers.get("Route"))

    def test_notANumber(self):
        """A target that is no number: error 484."""
        self.assertRefused("bad number!", 484)

    def test_applicationTargetChecked(self):
        """The application's 'to' passes the same dial plan: cause 403, nothing sent."""
        for n, to in enumerate(("+19005550100", "sip:2000@evil.example.com",
                                "sip:2000@198.51.100.1;maddr=203.0.113.66")):
            self.h.application.decision = {"action": "route", "trunk": None, "to": to}
            call = self.dial("2000", ref=f"r{n}")
            self.assertIsNotNone(call)
            self.assertEqual(self.alice.ofType("state")[-1]["cause"], 403)
        self.assertEqual(self.transport.sent, [])
        self.assertEqual(len(self.securityLines("dialplan_refused")), 3)

    def test_redirectChecked(self):
        """A 302 to a denied number or another host is not followed."""
        call = self.dial("2000")
        self.respond(302, headers=[("Contact", "<sip:+19005550100@198.51.100.1:5060>, "
                                               "<sip:2000@evil.example.com>")])
        self.assertEqual(len(self.invites()), 1)
        self.assertEqual(call.state.name, "dropped")
        self.assertEqual(self.alice.ofType("state")[-1]["cause"], 302)
        self.assertEqual(len(self.securityLines("dialplan_refused")), 2)

    def test_redirectAllowedFollowed(self):
        """A 302 to an allowed number at the trunk is followed."""
        self.dial("2000")
        self.respond(302, headers=[("Contact", "<sip:2001@198.51.100.1:5060>")])
        self.assertEqual([str(i.uri) for i in self.invites()],
                         ["sip:2000@198.51.100.1:5060", "sip:2001@198.51.100.1:5060"])


class TwoTrunkTests(TollFraudMixin, SynchronousTestCase):
    trunks = TRUNKS

    def test_allowedWhenTrunkAllows(self):
        """The application routes +44 to the trunk allowing it: the INVITE goes out."""
        self.h.application.decision = {"action": "route", "trunk": "intl"}
        call = self.dial("+441234567890")
        self.assertIsNotNone(call)
        [invite] = self.invites()
        self.assertEqual(str(invite.uri), "sip:+441234567890@198.51.100.1:5060")
        self.dial("011441234567890", ref="r2")
        self.assertEqual(len(self.invites()), 2)

    def test_allowedPrefixKeepsPremiumAndDenyRefused(self):
        """
        allow +44 does not open the built-in premium +449, and the trunk's
        own deny (+4490) always wins.
        """
        self.h.application.decision = {"action": "route", "trunk": "intl"}
        self.assertRefused("+449812345678")  # built-in +449
        self.assertRefused("+449012345678")  # the trunk's deny +4490
        self.assertIsNotNone(self.dial("+441900123"))
        [invite] = self.invites()
        self.assertEqual(str(invite.uri), "sip:+441900123@198.51.100.1:5060")

    def test_defaultTrunkRefusesWhatAnotherAllows(self):
        """
        A number only another trunk allows, routed to the default trunk:
        the call ends with cause 403 before any INVITE.
        """
        call = self.dial("+441234567890")
        self.assertIsNotNone(call)
        self.assertEqual(self.alice.ofType("state")[-1]["state"], "dropped")
        self.assertEqual(self.alice.ofType("state")[-1]["cause"], 403)
        self.assertEqual(self.transport.sent, [])


class GrantTests(TollFraudMixin, SynchronousTestCase):
    trunks = TRUNKS

    def token(self, connection, grants):
        """As the token layer will: an authenticated identity with grants."""
        connection.identity = connection.clientName
        connection.grants = grants

    def test_outgoingGrantFalse(self):
        """A token without the outgoing grant: error 403."""
        self.token(self.alice, {"outgoing": False})
        self.assertRefused("2000")

    def test_trunkGrant(self):
        """A token limited to trunk intl: the default trunk's route is refused."""
        self.token(self.alice, {"outgoing": True, "trunks": ["intl"]})
        call = self.dial("2000")
        self.assertEqual(self.alice.ofType("state")[-1]["cause"], 403)
        self.assertEqual(call.state.name, "dropped")
        self.assertEqual(self.transport.sent, [])


class CallerIdTests(TollFraudMixin, SynchronousTestCase):
    def fromOf(self, invite):
        return invite.fromAddr

    def test_clientNameNotCallerId(self):
        """
        An anonymous client named +14155550100 with caller_id "{client}":
        From is the trunk's username, without the client's name anywhere.
        """
        mallory = self.h.connect("+14155550100")
        self.dial("2000", mallory)
        [invite] = self.invites()
        self.assertEqual(invite.fromAddr.uri.user, "trunkuser")
        self.assertIsNone(invite.fromAddr.display)
        self.assertNotIn(b"4155550100", invite.toBytes())

    def test_tokenCallerIdClaim(self):
        """A token's caller_id claim is the From user."""
        self.alice.identity = "alice"
        self.alice.grants = {"outgoing": True, "caller_id": "+14155550100"}
        self.dial("2000")
        [invite] = self.invites()
        self.assertEqual(invite.fromAddr.uri.user, "+14155550100")

    def test_authenticatedClientTemplate(self):
        """For a token-authenticated identity {client} is its name."""
        self.alice.identity = "alice"
        self.alice.grants = {}
        self.dial("2000")
        [invite] = self.invites()
        self.assertEqual((invite.fromAddr.uri.user, invite.fromAddr.display), ("alice", "alice"))

    def test_applicationCallerId(self):
        """The application's caller_id is trusted; the dial plan still applies."""
        self.h.application.decision = {"action": "route", "caller_id": "+4930555000"}
        self.dial("2000")
        [invite] = self.invites()
        self.assertEqual(invite.fromAddr.uri.user, "+4930555000")

    def test_applicationCallerIdNotANumber(self):
        """A caller_id that is not a number: cause 500, nothing sent."""
        self.h.application.decision = {"action": "route", "caller_id": "x>\r\nX-Evil: 1"}
        self.dial("2000")
        self.assertEqual(self.alice.ofType("state")[-1]["cause"], 500)
        self.assertEqual(self.transport.sent, [])


class LimitTests(TollFraudMixin, SynchronousTestCase):
    def test_burst(self):
        """200 calls in one burst: 4 INVITEs, 196 errors 429, one security line each."""
        for n in range(200):
            self.dial("2000", ref=f"r{n}")
        self.assertEqual(len(self.invites()), 4)
        errors = self.alice.ofType("error")
        self.assertEqual(len(errors), 196)
        self.assertEqual({e["code"] for e in errors}, {429})
        self.assertEqual(len(self.securityLines("outbound_limit")), 196)

    def test_concurrentReleased(self):
        """A call that ends frees its place."""
        calls = [self.dial("2000", ref=f"r{n}") for n in range(4)]
        self.assertIsNone(self.dial("2000", ref="r4"))
        self.respond(486, self.invites()[0])
        self.assertEqual(calls[0].state.name, "dropped")
        self.assertIsNotNone(self.dial("2000", ref="r5"))

    def test_perIdentity(self):
        """Another identity has its own limit."""
        for n in range(4):
            self.dial("2000", ref=f"r{n}")
        bob = self.h.connect("bob")
        self.assertIsNotNone(self.dial("2000", bob, ref="b1"))

    def test_perMinute(self):
        """10 calls a minute: the 11th is refused (429) until a minute has passed."""
        for n in range(10):
            call = self.dial("2000", ref=f"r{n}")
            self.respond(486, self.invites()[-1])
            self.assertEqual(call.state.name, "dropped")
            self.clock.advance(1)
        self.assertIsNone(self.dial("2000", ref="r10"))
        self.assertEqual(self.alice.ofType("error")[-1]["code"], 429)
        self.assertIn("per minute", self.alice.ofType("error")[-1]["message"])
        self.clock.advance(51)
        self.assertIsNotNone(self.dial("2000", ref="r11"))


class NoLimitTests(TollFraudMixin, SynchronousTestCase):
    maxCalls = None
    maxCallsPerMinute = 0

    def test_unlimited(self):
        """Limits of none (or 0) place every call."""
        for n in range(12):
            self.dial("2000", ref=f"r{n}")
        self.assertEqual(len(self.invites()), 12)


class RealmTests(TollFraudMixin, SynchronousTestCase):
    trunks = TRUNKS

    def challenge(self, realm, nonce, status=407):
        header = "Proxy-Authenticate" if status == 407 else "WWW-Authenticate"
        self.respond(status, headers=[(header, makeChallenge(realm, nonce=nonce))])

    def credentialHeaders(self):
        return [r for r in self.transport.requests()
                if r.headers.get("Proxy-Authorization") or r.headers.get("Authorization")]

    def test_configuredRealmOnly(self):
        """
        A trunk with realm pbx.test challenged by realm evil: the call ends
        with the 407's status and no credentials are sent.
        """
        self.h.application.decision = {"action": "route", "trunk": "intl"}
        call = self.dial("2000")
        self.challenge("evil.example.com", "n1")
        self.assertEqual(len(self.invites()), 1)
        self.assertEqual(self.credentialHeaders(), [])
        self.assertEqual(call.state.name, "dropped")
        self.assertEqual(self.alice.ofType("state")[-1]["cause"], 407)

    def test_configuredRealmAnswered(self):
        """The configured realm is answered."""
        self.h.application.decision = {"action": "route", "trunk": "intl"}
        self.dial("2000")
        self.challenge("pbx.test", "n1")
        self.assertEqual(len(self.invites()), 2)
        self.assertTrue(verifyAuthorization(self.invites()[1], "trunkpass", "pbx.test",
                                            header="Proxy-Authorization"))

    def test_learnedRealm(self):
        """
        Without realm, the first challenge's realm is learned; a later call
        challenged by another realm fails with its 401, no credentials sent.
        """
        self.dial("2000")
        self.challenge("pbx.test", "n1")
        self.assertEqual(len(self.credentialHeaders()), 1)
        self.respond(486)
        self.transport.sent.clear()
        call = self.dial("2001", ref="r2")
        self.challenge("evil.example.com", "n2", status=401)
        self.assertEqual(self.credentialHeaders(), [])
        self.assertEqual(len(self.invites()), 1)
        self.assertEqual(call.state.name, "dropped")
        self.assertEqual(self.alice.ofType("state")[-1]["cause"], 401)


class DomainTests(TollFraudMixin, SynchronousTestCase):
    trunks = [dict(PBX, domain="voip.example.org")]

    def test_domainHost(self):
        """
        A URI at the trunk's domain is accepted; the INVITE goes to the
        proxy with a Route, its Request-URI at the domain.
        """
        self.dial("sip:2000@voip.example.org")
        [invite] = self.invites()
        self.assertEqual(str(invite.uri), "sip:2000@voip.example.org")
        self.assertEqual(invite.headers.get("Route"), "<sip:198.51.100.1:5060;lr>")
        self.assertEqual(self.transport.sent[0][1], PROXY)
