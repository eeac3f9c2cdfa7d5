"""
Tests for L{linkrtc.sip.messaging}: SIP MESSAGE (RFC 3428) between
registered phones and JSON clients, and its answers (200/202, 404, 480,
413, 415), through the user agent and the registrar.
"""

from twisted.internet import defer
from twisted.internet.task import Clock
from twisted.trial.unittest import SynchronousTestCase

from linkrtc.sip.auth import DigestClient, DigestCredentials
from linkrtc.sip.bindings import Binding, BindingTable, flowOf
from linkrtc.sip.messaging import Messenger
from linkrtc.sip.registrar import Registrar, SIPUserStore
from linkrtc.sip.test.test_useragent import (
    FakeInviteHandler,
    FakeServerTransaction,
    FakeTransactionLayer,
    FakeTransportLayer,
    request,
)
from linkrtc.sip.transport import Address
from linkrtc.sip.uri import NameAddr, parseURI
from linkrtc.sip.useragent import UserAgent
from linkrtc.testing import FakeClientConnection, FakeClientDirectory

PHONE = Address("UDP", "198.51.100.7", 40123)


class FakeResponse:
    def __init__(self, status):
        self.status = status


class MessagingMixin:
    def setUp(self):
        self.clock = Clock()
        self.directory = FakeClientDirectory()
        self.bindings = BindingTable(self.clock)
        self.users = SIPUserStore({"bob": {"password": "secret"},
                                   "dave": {"password": "x"}})
        self.messenger = Messenger(self.clock, self.directory, self.bindings, self.users,
                                   maxSize=100)
        self.registrar = Registrar(self.clock, self.bindings, self.users,
                                   messenger=self.messenger)
        self.transactions = FakeTransactionLayer()
        self.ua = UserAgent(self.transactions, FakeTransportLayer(), FakeInviteHandler(),
                            self.clock, registrar=self.registrar)
        self.messenger.setUserAgent(self.ua)
        self.alice = FakeClientConnection("alice")
        self.directory.add(self.alice)

    def message(self, to="alice", fromUser="+15550001", text=b"hello", contentType="text/plain",
                cseq=1):
        extra = ("Content-Type: " + contentType,) if contentType else ()
        req = request("MESSAGE", uri="sip:%s@linkrtc.example" % (to,), body=text, extra=extra,
                      cseq=cseq, branch="z9hG4bK-m%d" % (cseq,), contact=None)
        req.headers.set("From", "<sip:%s@example.org>;tag=f%d" % (fromUser, cseq))
        return req

    def receive(self, req):
        tx = FakeServerTransaction(req, PHONE)
        self.ua.requestReceived(req, tx)
        return tx

    def bind(self, user="bob", uri="sip:bob@10.0.0.2:5062"):
        self.bindings.bind(Binding(user=user, contact=NameAddr(parseURI(uri)), uriText=uri,
                                   flow=flowOf(PHONE), callId="c", cseq=1,
                                   expiresAt=self.clock.seconds() + 600))


class SIPToClientTests(MessagingMixin, SynchronousTestCase):
    def test_allow(self):
        """With a messenger, MESSAGE is in Allow."""
        tx = self.receive(request("OPTIONS"))
        self.assertIn("MESSAGE", tx.responses[0].headers.get("Allow"))

    def test_delivered(self):
        """A MESSAGE for a connected client reaches it as 'message'; 200."""
        tx = self.receive(self.message(text="héllo".encode("utf-8"),
                                       contentType="text/plain;charset=UTF-8"))
        self.assertEqual(tx.statuses, [200])
        self.assertEqual(self.alice.ofType("message"),
                         [{"type": "message", "from": "+15550001", "text": "héllo"}])

    def test_unknown(self):
        """A name nobody uses: 404."""
        self.assertEqual(self.receive(self.message(to="zoe")).statuses, [404])

    def test_offline(self):
        """A SIP user with no contact and no connection: 480."""
        self.assertEqual(self.receive(self.message(to="dave")).statuses, [480])

    def test_tooLarge(self):
        """A body over the limit: 413, nothing delivered."""
        tx = self.receive(self.message(text=b"x" * 101))
        self.assertEqual(tx.statuses, [413])
        self.assertEqual(self.alice.ofType("message"), [])

    def test_notText(self):
        """A body that is not text/plain: 415 with Accept: text/plain."""
        tx = self.receive(self.message(contentType="application/im-iscomposing+xml"))
        self.assertEqual(tx.statuses, [415])
        self.assertEqual(tx.responses[0].headers.get("Accept"), "text/plain")

    def test_fromSIPUserChallenged(self):
        """A MESSAGE claiming SIP user bob gets 407; with bob's credentials it is delivered."""
        tx = self.receive(self.message(fromUser="bob"))
        self.assertEqual(tx.statuses, [407])
        client = DigestClient(DigestCredentials("bob", password="secret"))
        client.answer(tx.responses[0])
        req = self.message(fromUser="bob", cseq=2)
        client.authorize(req)
        self.assertEqual(self.receive(req).statuses, [200])
        self.assertEqual(self.alice.ofType("message")[0]["from"], "bob")

    def test_toPhone(self):
        """A MESSAGE for a registered phone is relayed to its contact: 202."""
        self.bind()
        tx = self.receive(self.message(to="bob"))
        self.assertEqual(tx.statuses, [202])
        [(sent, destination, _)] = self.transactions.sent
        self.assertEqual(sent.method, "MESSAGE")
        self.assertEqual(str(sent.uri), "sip:bob@10.0.0.2:5062")
        self.assertEqual(destination, PHONE)


class ClientToSIPTests(MessagingMixin, SynchronousTestCase):
    def send(self, to="bob", text="hi bob", ref="m1"):
        return self.messenger.clientMessage(
            self.alice, {"type": "message", "to": to, "text": text, "ref": ref})

    def test_toPhone(self):
        """
        A client's message to a registered phone is a MESSAGE to its
        contact through its flow; the phone's 200 gives 'message-sent'.
        """
        self.bind()
        d = self.send()
        [(sent, destination, listener)] = self.transactions.sent
        self.assertEqual(sent.method, "MESSAGE")
        self.assertEqual(sent.body, b"hi bob")
        self.assertEqual(sent.headers.get("Content-Type"), "text/plain;charset=UTF-8")
        self.assertEqual(sent.fromAddr.uri.user, "alice")
        self.assertEqual(destination, PHONE)
        listener.responseReceived(FakeResponse(200))
        self.assertEqual(self.successResultOf(d), 200)
        self.assertEqual(self.alice.ofType("message-sent"),
                         [{"type": "message-sent", "to": "bob", "status": 200, "ref": "m1"}])

    def test_phoneRefuses(self):
        """The phone's 488 becomes an error with that code."""
        self.bind()
        d = self.send()
        self.transactions.sent[0][2].responseReceived(FakeResponse(488))
        self.successResultOf(d)
        [error] = self.alice.ofType("error")
        self.assertEqual((error["code"], error["ref"]), (488, "m1"))

    def test_toClient(self):
        """A message to another client's name goes to its connections: 200."""
        carol = FakeClientConnection("carol")
        self.directory.add(carol)
        self.successResultOf(self.send(to="carol"))
        self.assertEqual(carol.ofType("message"),
                         [{"type": "message", "from": "alice", "text": "hi bob"}])
        self.assertEqual(self.alice.ofType("message-sent")[0]["status"], 200)

    def test_offlineAndUnknown(self):
        """An offline SIP user: error 480; an unknown name: error 404."""
        self.successResultOf(self.send(to="dave"))
        self.successResultOf(self.send(to="zoe"))
        self.assertEqual([e["code"] for e in self.alice.ofType("error")], [480, 404])

    def test_tooLarge(self):
        """More octets than the limit: error 413, nothing sent."""
        self.bind()
        self.successResultOf(self.send(text="é" * 60))
        self.assertEqual(self.alice.ofType("error")[0]["code"], 413)
        self.assertEqual(self.transactions.sent, [])

    def test_noAnswer(self):
        """No answer from the phone (timeout): error 408."""
        self.bind()
        d = self.send()
        self.transactions.sent[0][2].transactionTimedOut()
        self.successResultOf(d)
        self.assertEqual(self.alice.ofType("error")[0]["code"], 408)
        self.assertIsInstance(d, defer.Deferred)
