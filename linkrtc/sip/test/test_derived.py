"""
Tests for SIP credentials derived from the access tokens' secret
(L{linkrtc.signalling.tokens.SIPCredentialChecker} in the registrar's
L{linkrtc.sip.registrar.SIPUserStore}): REGISTER, INVITE and MESSAGE
with C{IDENTITY~EXPIRY[~outgoing][~kid=KID]} usernames, and what the
C{outgoing} flag lets a WebSocket phone do.
"""

from twisted.internet.task import Clock
from twisted.internet.testing import EventLoggingObserver
from twisted.logger import formatEvent, globalLogPublisher
from twisted.trial.unittest import SynchronousTestCase

from linkrtc.call.dialer import OutboundDialer
from linkrtc.call.wsphones import WebSocketPhones
from linkrtc.config import LinkRTCConfig, parseTrunk
from linkrtc.service import makeSIPCredentialChecker
from linkrtc.signalling.directory import ClientDirectory
from linkrtc.signalling.tokens import (
    MAX_SIP_TTL,
    Grants,
    SIPCredentialChecker,
    sipCredentials,
)
from linkrtc.sip.bindings import BindingTable
from linkrtc.sip.registrar import Registrar, SIPAccount, SIPUserStore, parseSIPUsers
from linkrtc.sip.test.test_registrar import PHONE, SDP, RegistrarMixin, register
from linkrtc.sip.test.test_useragent import (
    FakeInviteHandler,
    FakeTransactionLayer,
    FakeTransportLayer,
    request,
)
from linkrtc.sip.transport import Source
from linkrtc.sip.useragent import UserAgent

OLD = "o" * 32
NEW = "n" * 40


class FakeWebSocket:
    connected = True


class FakeMessenger:
    """Takes every MESSAGE with 200, noting who it came from."""

    def __init__(self):
        self.senders = []

    def sipMessageReceived(self, request, respond, authenticatedUser=None):
        self.senders.append(authenticatedUser)
        respond(200)


class DerivedMixin(RegistrarMixin):
    """
    A registrar with bob (password) and carol (HA1) configured, and derived
    credentials from two keys: C{new} (first, signs by default) and C{old}.
    """

    def setUp(self):
        self.clock = Clock()
        self.clock.advance(1_700_000_000)
        self.bindings = BindingTable(self.clock, maxPerUser=3,
                                     onChange=lambda user: self.phones.bindingsChanged(user))
        self.phones = WebSocketPhones(self.clock, ClientDirectory(clock=self.clock),
                                      self.bindings)
        self.checker = SIPCredentialChecker({"new": NEW, "old": OLD}, self.clock)
        self.users = SIPUserStore(parseSIPUsers({"bob": "secret"}), realm="linkrtc",
                                  derive=self.checker)
        self.messenger = FakeMessenger()
        self.registrar = Registrar(self.clock, self.bindings, self.users,
                                   messenger=self.messenger)
        self.handler = FakeInviteHandler()
        self.ua = UserAgent(FakeTransactionLayer(), FakeTransportLayer(), self.handler,
                            self.clock, registrar=self.registrar)
        self.events = EventLoggingObserver.createWithCleanup(self, globalLogPublisher)

    def creds(self, identity="alice", ttl=600, secret=NEW, **kw):
        return sipCredentials(secret, identity, ttl, now=self.clock.seconds(), **kw)

    def registerAs(self, creds, aor="alice", source=PHONE, algorithm="MD5", **kw):
        return self.authorized(register, user=creds["username"], password=creds["password"],
                               algorithm=algorithm, aor=aor,
                               contact=f"<sip:{aor}@10.0.0.9:5062>", source=source, **kw)

    def authorized(self, make, user="bob", password="secret", algorithm=None, source=PHONE,
                   **kw):
        # RegistrarMixin.authorized, from another source when asked.
        receive = self.receive
        self.receive = lambda req, source=source: receive(req, source)
        try:
            return super().authorized(make, user=user, password=password,
                                      algorithm=algorithm, **kw)
        finally:
            self.receive = receive

    def securityReasons(self):
        return [e["line"].split("reason=")[1].split()[0] for e in self.events
                if e.get("security_event") == "auth_failed"]


class DerivedRegisterTests(DerivedMixin, SynchronousTestCase):
    """REGISTER with derived credentials."""

    def test_accepted(self):
        """
        alice's derived credentials register the AoR alice (MD5 and
        SHA-256); the binding carries their identity (no outgoing grant,
        the kid of the first key) and lasts no longer than they do.
        """
        creds = self.creds(ttl=600)
        tx = self.registerAs(creds, extra=("Expires: 3600",))
        self.assertEqual(tx.statuses, [200])
        self.assertEqual(tx.responses[0].headers.getAll("Contact"),
                         ["<sip:alice@10.0.0.9:5062>;expires=600"])
        [binding] = self.bindings.bindingsFor("alice")
        self.assertEqual(binding.identity.name, "alice")
        self.assertEqual(binding.identity.grants, Grants(outgoing=False))
        self.assertEqual(binding.identity.kid, "new")
        self.assertEqual(binding.identity.expires, creds["expires"])
        self.assertEqual(self.registerAs(creds, algorithm="SHA-256", callId="reg-2")
                         .statuses, [200])
        self.assertEqual(self.securityReasons(), [])

    def test_wrongPassword(self):
        """A password made with another secret: 401, then 403, logged once."""
        creds = self.creds(secret="x" * 32)
        first = self.receive(register(aor="alice"))
        self.assertEqual(first.statuses, [401])
        tx = self.registerAs(creds)
        self.assertEqual(tx.statuses, [403])
        self.assertEqual(self.bindings.bindingsFor("alice"), [])
        self.assertEqual(self.securityReasons(), ["bad_credentials"])

    def test_tamperedUsername(self):
        """Adding C{outgoing} to a username keeps its password: refused."""
        creds = self.creds()
        forged = dict(creds, username=creds["username"] + "~outgoing")
        self.assertEqual(self.registerAs(forged).statuses, [403])
        self.assertEqual(self.securityReasons(), ["bad_credentials"])

    def test_expired(self):
        """Once the expiry (plus the 30 s leeway) has passed: 403, reason expired."""
        creds = self.creds(ttl=60)
        self.clock.advance(60 + 29)
        self.assertEqual(self.registerAs(creds).statuses, [200])
        self.clock.advance(1)
        self.assertEqual(self.registerAs(creds, callId="reg-2").statuses, [403])
        self.assertEqual(self.securityReasons(), ["expired"])

    def test_registrationEndsWithCredentials(self):
        """The binding expires with the credentials, not at the asked-for expiry."""
        creds = self.creds(ttl=120)
        self.registerAs(creds)
        self.clock.advance(121)
        self.assertEqual(self.bindings.bindingsFor("alice"), [])

    def test_tooFar(self):
        """An expiry beyond the cap (7 days plus leeway) is refused: 403, too_far."""
        far = sipCredentials(NEW, "alice", MAX_SIP_TTL, now=self.clock.seconds() + 31)
        self.assertEqual(self.registerAs(far).statuses, [403])
        self.assertEqual(self.securityReasons(), ["too_far"])
        near = sipCredentials(NEW, "alice", MAX_SIP_TTL, now=self.clock.seconds())
        self.assertEqual(self.registerAs(near, callId="reg-2").statuses, [200])

    def test_otherIdentity(self):
        """alice's credentials never register bob or dave: 403, wrong_user."""
        creds = self.creds()
        self.assertEqual(self.registerAs(creds, aor="dave").statuses, [403])
        self.assertEqual(self.registerAs(creds, aor="bob", callId="reg-2").statuses, [403])
        self.assertEqual(self.bindings.users(), [])
        self.assertEqual(self.securityReasons(), ["wrong_user", "wrong_user"])

    def test_configUserWins(self):
        """
        bob is in C{[sip-users]}: his password works as before, derived
        credentials for bob do not (config_user).
        """
        self.assertEqual(self.authorized(register).statuses, [200])
        derived = self.creds(identity="bob")
        self.assertEqual(self.registerAs(derived, aor="bob", callId="reg-2").statuses, [403])
        self.assertEqual(self.securityReasons(), ["config_user"])
        [binding] = self.bindings.bindingsFor("bob")
        self.assertIsNone(binding.identity)

    def test_kidRotation(self):
        """
        A username naming kid C{old} is checked with the old key; one
        without a kid with the first key; an unknown kid is refused.
        """
        old = self.creds(secret=OLD, kid="old")
        self.assertEqual(self.registerAs(old).statuses, [200])
        self.assertEqual(self.bindings.bindingsFor("alice")[0].identity.kid, "old")
        unnamed = self.creds(secret=OLD)
        self.assertEqual(self.registerAs(unnamed, callId="reg-2").statuses, [403])
        self.assertEqual(self.registerAs(self.creds(), callId="reg-3").statuses, [200])
        gone = self.creds(secret=OLD, kid="older")
        self.assertEqual(self.registerAs(gone, callId="reg-4").statuses, [403])
        self.assertEqual(self.securityReasons(), ["bad_credentials", "unknown_kid"])

    def test_lockout(self):
        """Wrong derived passwords count like bad passwords: locked out after 5."""
        bad = dict(self.creds(), password="nope")
        for i in range(5):
            self.assertEqual(self.registerAs(bad, callId=f"reg-{i}").statuses, [403])
        self.assertEqual(self.receive(register(aor="alice")).statuses, [403])
        self.clock.advance(301)
        self.assertEqual(self.registerAs(self.creds(), callId="reg-9").statuses, [200])

    def test_noDerivation(self):
        """Without a checker (no auth secret) derived usernames name nobody."""
        store = SIPUserStore(parseSIPUsers({"bob": "secret"}))
        creds = self.creds()
        self.assertIsNone(store.credentialsFor(creds["username"]))
        self.assertIsNone(store.accountFor(creds["username"]))
        self.assertEqual(store.accountFor("bob"), SIPAccount("bob", "bob"))


class DerivedCallTests(DerivedMixin, SynchronousTestCase):
    """INVITEs and MESSAGEs from a phone registered with derived credentials."""

    def invite(self, fromUser="alice", cseq=1, **kw):
        req = request("INVITE", uri="sip:bob@linkrtc.example", cseq=cseq, body=SDP,
                      extra=("Content-Type: application/sdp",),
                      branch="z9hG4bK-i%d" % (cseq,), callId="inv-1")
        req.headers.set("From", "<sip:%s@linkrtc.example>;tag=ft%d" % (fromUser, cseq))
        return req

    def test_challenged(self):
        """Once alice is registered, her INVITE gets 407 and passes with her credentials."""
        creds = self.creds()
        self.registerAs(creds)
        self.assertEqual(self.receive(self.invite()).statuses, [407])
        tx = self.authorized(self.invite, user=creds["username"], password=creds["password"])
        self.assertEqual(tx.statuses, [100])
        self.assertEqual(len(self.handler.legs), 1)
        self.assertTrue(any("INVITE from alice authenticated" in formatEvent(e)
                            for e in self.events))

    def test_othersCredentials(self):
        """dave's credentials do not authenticate alice's INVITE: 403."""
        self.registerAs(self.creds())
        dave = self.creds(identity="dave")
        tx = self.authorized(self.invite, user=dave["username"], password=dave["password"])
        self.assertEqual(tx.statuses, [403])
        self.assertEqual(self.handler.legs, [])

    def test_expiredOnInvite(self):
        """Credentials that expired since the REGISTER: the INVITE gets 403."""
        creds = self.creds(ttl=600)
        self.registerAs(creds)
        self.clock.advance(400)
        later = self.creds(ttl=600)
        self.registerAs(later, callId="reg-2")  # refreshed with new credentials
        self.clock.advance(300)
        tx = self.authorized(self.invite, user=creds["username"], password=creds["password"])
        self.assertEqual(tx.statuses, [403])
        tx = self.authorized(self.invite, user=later["username"], password=later["password"],
                             cseq=5)
        self.assertEqual(tx.statuses, [100])

    def message(self, fromUser="alice", cseq=1, **kw):
        req = request("MESSAGE", uri="sip:bob@linkrtc.example", cseq=cseq, body=b"hi",
                      extra=("Content-Type: text/plain",), branch="z9hG4bK-m%d" % (cseq,),
                      callId="msg-1", contact=None)
        req.headers.set("From", "<sip:%s@linkrtc.example>;tag=fm%d" % (fromUser, cseq))
        return req

    def test_message(self):
        """alice's MESSAGE is challenged (407) and passes with her credentials."""
        creds = self.creds()
        self.registerAs(creds)
        self.assertEqual(self.receive(self.message()).statuses, [407])
        tx = self.authorized(self.message, user=creds["username"], password=creds["password"])
        self.assertEqual(tx.statuses, [200])
        self.assertEqual(self.messenger.senders, ["alice"])
        bad = self.authorized(self.message, user=creds["username"], password="x", cseq=5)
        self.assertEqual(bad.statuses, [403])

    def test_notRegistered(self):
        """Not registered (no bindings): alice is a stranger, her INVITE goes through."""
        self.assertEqual(self.receive(self.invite()).statuses, [100])


class OutgoingGrantTests(DerivedMixin, SynchronousTestCase):
    """
    The C{outgoing} flag of derived credentials is the outgoing grant of the
    phone registered with them over a WebSocket (the only SIP phones whose
    calls reach trunks): the dialer's check refuses or places its call.
    """

    def setUp(self):
        super().setUp()
        self.trunk = parseTrunk({"name": "pstn", "proxy": "sip:pbx.example.com"})
        self.dialer = OutboundDialer(None, [self.trunk], self.clock, mediaName="bridge",
                                     bindings=self.bindings)
        self.ws = Source("WS", "192.0.2.7", 50000, connection=FakeWebSocket())

    def phone(self, creds=None, aor="alice"):
        if creds is None:
            tx = self.authorized(register, source=self.ws)
        else:
            tx = self.registerAs(creds, aor=aor, source=self.ws)
        self.assertEqual(tx.statuses, [200])
        return self.phones.phoneFor(aor)

    def test_withoutOutgoing(self):
        """Without C{outgoing}: a number is refused (403); a registered user by name is not."""
        phone = self.phone(self.creds())
        code, reason = self.dialer.refuse({"type": "call", "to": "5551234"}, phone)
        self.assertEqual(code, 403)
        self.assertIn("alice may not place outgoing calls", reason)
        self.authorized(register)  # bob's phone
        self.assertIsNone(self.dialer.refuse({"type": "call", "to": "bob"}, phone))

    def test_withOutgoing(self):
        """With C{outgoing}: the number passes the dial plan, as an authenticated identity."""
        phone = self.phone(self.creds(outgoing=True))
        self.assertIsNone(self.dialer.refuse({"type": "call", "to": "5551234"}, phone))
        self.assertEqual(phone.identity.name, "alice")
        self.assertEqual(phone.grants, Grants(outgoing=True))

    def test_refreshedGrants(self):
        """A refresh with other credentials changes the phone's grant."""
        phone = self.phone(self.creds(outgoing=True))
        self.registerAs(self.creds(), source=self.ws, callId="reg-2", cseq=5)
        self.assertIs(self.phones.phoneFor("alice"), phone)
        self.assertEqual(phone.grants, Grants(outgoing=False))

    def test_configUser(self):
        """A configured user's WebSocket phone keeps calling out as before (no grants)."""
        phone = self.phone(aor="bob")
        self.assertIsNone(phone.identity)
        self.assertIsNone(self.dialer.refuse({"type": "call", "to": "5551234"}, phone))


class ServiceTests(SynchronousTestCase):
    """L{makeSIPCredentialChecker}: derived credentials only with an auth secret."""

    def test_protectedMode(self):
        self.assertIsNone(makeSIPCredentialChecker(LinkRTCConfig(), Clock()))

    def test_secret(self):
        checker = makeSIPCredentialChecker(LinkRTCConfig(authSecret=NEW), Clock())
        self.assertEqual(checker.keys, {"default": NEW})
