"""
Tests for L{linkrtc.sip.registrar} and L{linkrtc.sip.bindings}: REGISTER
(RFC 3261 §10.3) with digest authentication (MD5 and SHA-256, RFC 8760),
expiry, several contacts, flows, lock-out, and the 407 challenge of
INVITEs from SIP users, through a L{UserAgent} on fakes.
"""

from twisted.internet.task import Clock
from twisted.trial.unittest import SynchronousTestCase

from linkrtc.sip.auth import DigestClient, DigestCredentials, computeHA1, parseChallenges
from linkrtc.sip.bindings import Binding, BindingTable, Flow, flowOf
from linkrtc.sip.registrar import DigestServer, Registrar, SIPUserStore, parseSIPUsers
from linkrtc.sip.test.test_useragent import (
    SDP,
    FakeInviteHandler,
    FakeServerTransaction,
    FakeTransactionLayer,
    FakeTransportLayer,
    request,
)
from linkrtc.sip.transport import Address, Source
from linkrtc.sip.uri import NameAddr, parseURI
from linkrtc.sip.useragent import UserAgent

PHONE = Address("UDP", "198.51.100.7", 40123)


def register(aor="bob", contact="<sip:bob@10.0.0.2:5062>", cseq=1, callId="reg-1",
             extra=(), to=None, branch=None):
    """A REGISTER from bob's phone."""
    req = request("REGISTER", uri="sip:linkrtc.example", callId=callId, cseq=cseq,
                  contact=contact, extra=extra, branch=branch or "z9hG4bK-r%d" % (cseq,))
    toText = to or "<sip:%s@linkrtc.example>" % (aor,)
    req.headers.set("To", toText)
    req.headers.set("From", toText + ";tag=f1")
    return req


class RegistrarMixin:
    """A user agent with a registrar: bob (password), carol (HA1)."""

    def setUp(self):
        self.clock = Clock()
        self.clock.advance(1000000)
        self.bindings = BindingTable(self.clock, maxPerUser=3)
        self.users = SIPUserStore(
            parseSIPUsers({"bob": "secret", "carol": {"ha1": computeHA1(
                "MD5", "carol", "linkrtc", "pw2")}}), realm="linkrtc")
        self.registrar = Registrar(self.clock, self.bindings, self.users)
        self.handler = FakeInviteHandler()
        self.ua = UserAgent(FakeTransactionLayer(), FakeTransportLayer(), self.handler,
                            self.clock, registrar=self.registrar)
        self.cseq = 1

    def receive(self, req, source=PHONE):
        tx = FakeServerTransaction(req, source)
        self.ua.requestReceived(req, tx)
        return tx

    def authorized(self, make, user="bob", password="secret", algorithm=None, **kw):
        """
        Send C{make(**kw)}, answer its challenge, send it again.

        @return: the second transaction.
        """
        first = self.receive(make(**kw))
        self.assertIn(first.statuses[0], (401, 407))
        creds = DigestCredentials(user, password=password)
        client = DigestClient(creds)
        response = first.responses[0]
        if algorithm is not None:
            name = "WWW-Authenticate" if response.status == 401 else "Proxy-Authenticate"
            values = [v for v in response.headers.getAll(name) if algorithm in v]
            response.headers.remove(name)
            for v in values:
                response.headers.add(name, v)
        client.answer(response)
        kw["cseq"] = kw.get("cseq", 1) + 1
        req = make(**kw)
        client.authorize(req)
        return self.receive(req)


class RegisterTests(RegistrarMixin, SynchronousTestCase):
    """REGISTER through the user agent."""

    def test_allow(self):
        """With a registrar, REGISTER and MESSAGE... REGISTER is in Allow."""
        tx = self.receive(request("OPTIONS"))
        self.assertIn("REGISTER", tx.responses[0].headers.get("Allow"))

    def test_challenge(self):
        """An unauthenticated REGISTER gets 401 with SHA-256 then MD5 challenges."""
        tx = self.receive(register())
        self.assertEqual(tx.statuses, [401])
        values = tx.responses[0].headers.getAll("WWW-Authenticate")
        algorithms = [parseChallenges(v)[0].algorithm for v in values]
        self.assertEqual(algorithms, ["SHA-256", "MD5"])
        self.assertEqual({parseChallenges(v)[0].realm for v in values}, {"linkrtc"})
        self.assertEqual(self.bindings.bindingsFor("bob"), [])

    def test_md5(self):
        """MD5 credentials register the contact: 200 lists it with its expiry."""
        tx = self.authorized(register, algorithm="MD5", extra=("Expires: 600",))
        self.assertEqual(tx.statuses, [200])
        self.assertEqual(tx.responses[0].headers.getAll("Contact"),
                         ["<sip:bob@10.0.0.2:5062>;expires=600"])
        [binding] = self.bindings.bindingsFor("bob")
        self.assertEqual(str(binding.contact.uri), "sip:bob@10.0.0.2:5062")

    def test_sha256(self):
        """SHA-256 credentials (RFC 8760) register too."""
        tx = self.authorized(register, algorithm="SHA-256")
        self.assertEqual(tx.statuses, [200])
        self.assertEqual(len(self.bindings.bindingsFor("bob")), 1)

    def test_ha1(self):
        """A user configured by HA1 authenticates with the password it was made from."""
        tx = self.authorized(register, user="carol", password="pw2", algorithm="MD5",
                             aor="carol", contact="<sip:carol@10.0.0.3>")
        self.assertEqual(tx.statuses, [200])
        self.assertEqual(len(self.bindings.bindingsFor("carol")), 1)

    def test_flow(self):
        """The binding's flow is the address the REGISTER came from (NAT, rport)."""
        self.authorized(register)
        [binding] = self.bindings.bindingsFor("bob")
        self.assertEqual(binding.flow, Flow("UDP", "198.51.100.7", 40123))
        self.assertEqual(binding.flow.destination(), PHONE)

    def test_badPassword(self):
        """Wrong credentials get 403 and bind nothing."""
        tx = self.authorized(register, password="wrong")
        self.assertEqual(tx.statuses, [403])
        self.assertEqual(self.bindings.bindingsFor("bob"), [])

    def test_otherUsersCredentials(self):
        """carol's good credentials cannot register bob's AoR: 403."""
        tx = self.authorized(register, user="carol", password="pw2", algorithm="MD5")
        self.assertEqual(tx.statuses, [403])

    def test_unknownUser(self):
        """An unknown user is challenged like any other, then refused (403)."""
        tx = self.authorized(register, user="mallory", password="x", aor="mallory")
        self.assertEqual(tx.statuses, [403])

    def test_lockout(self):
        """
        After 5 failures from one source for one user, even the right
        password gets 403 until the lock-out ends; another source is not
        affected.
        """
        for _ in range(5):
            self.authorized(register, password="wrong")
        self.assertEqual(self.receive(register()).statuses, [403])
        other = Address("UDP", "198.51.100.8", 5060)
        first = self.receive(register(), source=other)
        self.assertEqual(first.statuses, [401])
        self.clock.advance(301)
        tx = self.authorized(register)
        self.assertEqual(tx.statuses, [200])

    def test_lockedOutWithoutChallenge(self):
        """A locked-out user from that source gets 403 without a challenge."""
        for _ in range(5):
            self.authorized(register, password="wrong")
        tx = self.receive(register())
        self.assertEqual(tx.statuses, [403])

    def test_stale(self):
        """A nonce older than its lifetime gets 401 with stale=true."""
        first = self.receive(register())
        client = DigestClient(DigestCredentials("bob", password="secret"))
        client.answer(first.responses[0])
        self.clock.advance(301)
        req = register(cseq=2)
        client.authorize(req)
        tx = self.receive(req)
        self.assertEqual(tx.statuses, [401])
        self.assertTrue(parseChallenges(
            tx.responses[0].headers.get("WWW-Authenticate"))[0].stale)

    def test_minExpires(self):
        """An expiry below 60 s gets 423 with Min-Expires: 60."""
        tx = self.authorized(register, extra=("Expires: 30",))
        self.assertEqual(tx.statuses, [423])
        self.assertEqual(tx.responses[0].headers.get("Min-Expires"), "60")
        self.assertEqual(self.bindings.bindingsFor("bob"), [])

    def test_contactExpiresParam(self):
        """The contact's expires parameter wins over the Expires header (§10.2.1.1)."""
        tx = self.authorized(register, contact="<sip:bob@10.0.0.2>;expires=20",
                             extra=("Expires: 600",))
        self.assertEqual(tx.statuses, [423])

    def test_maxExpires(self):
        """Expiries above 3600 s are cut to 3600."""
        tx = self.authorized(register, extra=("Expires: 86400",))
        self.assertEqual(tx.responses[0].headers.get("Contact"),
                         "<sip:bob@10.0.0.2:5062>;expires=3600")

    def test_expiry(self):
        """A binding is gone once its expiry passes."""
        self.authorized(register, extra=("Expires: 120",))
        self.clock.advance(119)
        self.assertEqual(len(self.bindings.bindingsFor("bob")), 1)
        self.clock.advance(2)
        self.assertEqual(self.bindings.bindingsFor("bob"), [])
        self.assertEqual(len(self.bindings), 0)

    def test_refresh(self):
        """A refresh (same Call-ID, higher CSeq) extends the binding."""
        self.authorized(register, extra=("Expires: 120",))
        self.clock.advance(100)
        self.authorized(register, cseq=5, extra=("Expires: 120",))
        self.clock.advance(100)
        self.assertEqual(len(self.bindings.bindingsFor("bob")), 1)

    def test_outOfOrder(self):
        """A REGISTER with the Call-ID of a binding and an older CSeq gets 500."""
        self.authorized(register, cseq=10)
        tx = self.authorized(register, cseq=3)
        self.assertEqual(tx.statuses, [500])

    def test_severalContacts(self):
        """Several devices of one user are bound side by side."""
        self.authorized(register)
        tx = self.authorized(register, callId="reg-2", contact="<sip:bob@10.0.0.9:5060>")
        self.assertEqual(len(tx.responses[0].headers.getAll("Contact")), 2)
        self.assertEqual(len(self.bindings.bindingsFor("bob")), 2)

    def test_boundPerUser(self):
        """Beyond the bound (3 here), the oldest contact of the user is dropped."""
        for i in range(4):
            self.clock.advance(1)
            self.authorized(register, callId="reg-%d" % (i,),
                            contact="<sip:bob@10.0.0.%d>" % (i + 1,))
        uris = sorted(b.uriText for b in self.bindings.bindingsFor("bob"))
        self.assertEqual(uris, ["sip:bob@10.0.0.2", "sip:bob@10.0.0.3", "sip:bob@10.0.0.4"])

    def test_unregister(self):
        """expires=0 removes that contact."""
        self.authorized(register)
        tx = self.authorized(register, cseq=5, extra=("Expires: 0",))
        self.assertEqual(tx.statuses, [200])
        self.assertEqual(tx.responses[0].headers.getAll("Contact"), [])
        self.assertEqual(self.bindings.bindingsFor("bob"), [])

    def test_wildcard(self):
        """Contact: * with Expires: 0 removes every contact of the user."""
        self.authorized(register)
        self.authorized(register, callId="reg-2", contact="<sip:bob@10.0.0.9>")
        tx = self.authorized(register, cseq=7, contact="*", extra=("Expires: 0",))
        self.assertEqual(tx.statuses, [200])
        self.assertEqual(self.bindings.bindingsFor("bob"), [])

    def test_wildcardNeedsExpiresZero(self):
        """Contact: * without Expires: 0 is a bad request (§10.3 step 6)."""
        tx = self.authorized(register, contact="*", extra=("Expires: 60",))
        self.assertEqual(tx.statuses, [400])

    def test_fetch(self):
        """A REGISTER without Contact lists the bindings (a fetch)."""
        self.authorized(register)
        tx = self.authorized(register, callId="reg-9", contact=None)
        self.assertEqual(tx.statuses, [200])
        self.assertEqual(len(tx.responses[0].headers.getAll("Contact")), 1)

    def test_notSIPAoR(self):
        """A To that is not a SIP URI gets 400 before any challenge (RFC 4475 unksm2)."""
        tx = self.receive(register(to="<tel:+15551234>"))
        self.assertEqual(tx.statuses, [400])

    def test_notSIPContact(self):
        """A Contact that is not a SIP URI gets 400."""
        tx = self.receive(register(contact="<mailto:bob@example.com>"))
        self.assertEqual(tx.statuses, [400])

    def test_contactParamsKept(self):
        """URI parameters stay in the binding, contact parameters do not (RFC 4475 cparam)."""
        self.authorized(register, contact="<sip:bob@10.0.0.2;transport=tcp>;unknownparam")
        [binding] = self.bindings.bindingsFor("bob")
        self.assertEqual(binding.uriText, "sip:bob@10.0.0.2;transport=tcp")

    def test_tcpFlow(self):
        """A REGISTER over TCP binds its connection; once closed, the contact is unusable."""

        class Conn:
            connected = True

        conn = Conn()
        source = Source("TCP", "198.51.100.7", 50000, connection=conn)
        first = self.receive(register(), source=source)
        client = DigestClient(DigestCredentials("bob", password="secret"))
        client.answer(first.responses[0])
        req = register(cseq=2)
        client.authorize(req)
        self.assertEqual(self.receive(req, source=source).statuses, [200])
        [binding] = self.bindings.bindingsFor("bob")
        self.assertIs(binding.flow.connection, conn)
        conn.connected = False
        self.assertEqual(self.bindings.bindingsFor("bob"), [])


class InviteChallengeTests(RegistrarMixin, SynchronousTestCase):
    """INVITEs that claim a SIP user must carry its credentials (407)."""

    def invite(self, fromUser="bob", cseq=1, **kw):
        req = request("INVITE", uri="sip:alice@linkrtc.example", cseq=cseq, body=SDP,
                      extra=("Content-Type: application/sdp",),
                      branch="z9hG4bK-i%d" % (cseq,), callId="inv-1")
        req.headers.set("From", "<sip:%s@linkrtc.example>;tag=ft%d" % (fromUser, cseq))
        return req

    def test_challenged(self):
        """An INVITE from bob without credentials gets 407 and reaches no handler."""
        tx = self.receive(self.invite())
        self.assertEqual(tx.statuses, [407])
        self.assertTrue(tx.responses[0].headers.get("Proxy-Authenticate"))
        self.assertEqual(self.handler.legs, [])

    def test_authenticated(self):
        """With bob's credentials the INVITE goes on to the call engine."""
        tx = self.authorized(self.invite)
        self.assertEqual(tx.statuses, [100])
        self.assertEqual(len(self.handler.legs), 1)

    def test_wrongPassword(self):
        """Wrong credentials on an INVITE: 403."""
        tx = self.authorized(self.invite, password="nope")
        self.assertEqual(tx.statuses, [403])
        self.assertEqual(self.handler.legs, [])

    def test_stranger(self):
        """An INVITE from someone who is not a SIP user goes through as before."""
        tx = self.receive(self.invite(fromUser="+15551234"))
        self.assertEqual(tx.statuses, [100])
        self.assertEqual(len(self.handler.legs), 1)


class NoRegistrarTests(SynchronousTestCase):
    """Without a registrar the user agent still answers REGISTER 405."""

    def test_405(self):
        ua = UserAgent(FakeTransactionLayer(), FakeTransportLayer(), FakeInviteHandler(),
                       Clock())
        tx = FakeServerTransaction(register())
        ua.requestReceived(register(), tx)
        self.assertEqual(tx.statuses, [405])
        self.assertNotIn("REGISTER", tx.responses[0].headers.get("Allow"))


class BindingTableTests(SynchronousTestCase):
    """L{BindingTable} on a clock."""

    def binding(self, table, uri, expires=100, user="bob"):
        return Binding(user=user, contact=NameAddr(parseURI(uri)), uriText=uri,
                       flow=flowOf(PHONE), expiresAt=table.clock.seconds() + expires,
                       callId="c", cseq=1)

    def test_onChange(self):
        """Adding and expiring a binding tell the listener."""
        clock = Clock()
        changes = []
        table = BindingTable(clock, onChange=changes.append)
        table.bind(self.binding(table, "sip:bob@h"))
        clock.advance(101)
        self.assertEqual(changes, ["bob", "bob"])
        self.assertEqual(table.users(), [])

    def test_preference(self):
        """Bindings come out by q, then the most recent first."""
        clock = Clock()
        table = BindingTable(clock)
        table.bind(self.binding(table, "sip:bob@a"))
        clock.advance(1)
        table.bind(self.binding(table, "sip:bob@b"))
        self.assertEqual([b.uriText for b in table.bindingsFor("bob")],
                         ["sip:bob@b", "sip:bob@a"])

    def test_clear(self):
        """clear() forgets everything and leaves no timer."""
        clock = Clock()
        table = BindingTable(clock)
        table.bind(self.binding(table, "sip:bob@a"))
        table.clear()
        self.assertEqual(clock.getDelayedCalls(), [])


class ConfigTests(SynchronousTestCase):
    """L{parseSIPUsers}, L{SIPUserStore}, L{DigestServer} details."""

    def test_forms(self):
        """A password string, a password table and an ha1 table are accepted."""
        users = parseSIPUsers({"a": "x", "b": {"password": "y"}, "c": {"ha1": "0" * 32}})
        self.assertEqual(users, {"a": {"password": "x"}, "b": {"password": "y"},
                                 "c": {"ha1": "0" * 32}})

    def test_bad(self):
        """Bad names, empty passwords, unknown keys and bad HA1s are refused."""
        for bad in ({"bad name": "x"}, {"a": ""}, {"a": {"pass": "x"}}, {"a": {"ha1": "12"}},
                    {"a": 3}, ["a"]):
            self.assertRaises(ValueError, parseSIPUsers, bad)

    def test_derive(self):
        """A credential checker gives passwords for derived names (L{test_derived})."""
        from linkrtc.signalling.tokens import SIPCredentialChecker, sipCredentials

        clock = Clock()
        store = SIPUserStore({}, derive=SIPCredentialChecker({"k": "s" * 32}, clock))
        self.assertIn(sipCredentials("s" * 32, "zed", 60, now=0)["username"], store)
        self.assertNotIn("zed", store)

    def test_foreignNonce(self):
        """A nonce not made by this server is not ours."""
        server = DigestServer(Clock())
        self.assertEqual(server.nonceState("1.2.3"), "bad")
        self.assertEqual(server.nonceState(server.newNonce()), "ok")
