"""
Tests for L{linkrtc.api.webhook}, with L{StubTreq} and a twisted.web
resource playing the application.
"""

import json

from treq.testing import StubTreq
from twisted.internet.task import Clock
from twisted.logger import Logger
from twisted.trial.unittest import SynchronousTestCase
from twisted.web.resource import Resource
from twisted.web.server import NOT_DONE_YET
from zope.interface import implementer
from zope.interface.verify import verifyObject

from linkrtc.api import webhook as webhookModule
from linkrtc.api.webhook import (
    DefaultApplication,
    WebhookApplication,
    mapErrorStatus,
    signBody,
    verifySignature,
)
from linkrtc.interfaces import IApplication, IClientConnection
from linkrtc.signalling.directory import ClientDirectory

URL = "http://app.example/hook"

INFO = {
    "call": "c1",
    "from": "sip:100@pbx.example;tag=x",
    "to": "sip:alice@linkrtc.example",
    "caller": "100",
    "callee": "alice",
    "headers": {"User-Agent": "pbx"},
}


class FakeApp(Resource):
    """Records each request; answers with C{self.code} and C{self.body}."""

    isLeaf = True

    def __init__(self):
        super().__init__()
        self.requests = []
        self.code = 200
        self.body = b'{"action":"route","client":"alice"}'
        self.hang = False
        self.pending = []

    def render_POST(self, request):
        self.requests.append({
            "path": request.path,
            "headers": {k.decode().lower(): v[0].decode()
                        for k, v in request.requestHeaders.getAllRawHeaders()},
            "body": request.content.read(),
        })
        if self.hang:
            self.pending.append(request)
            return NOT_DONE_YET
        request.setResponseCode(self.code)
        request.setHeader(b"Content-Type", b"application/json")
        return self.body


class WebhookTestsMixin:
    secret = None

    def setUp(self):
        self.clock = Clock()
        self.clock.advance(1700000000.25)
        self.app = FakeApp()
        self.stub = StubTreq(self.app)
        self.webhook = WebhookApplication(URL, treq_client=self.stub, clock=self.clock,
                                          secret=self.secret)
        self.events = []
        self.patch(webhookModule, "log", Logger(observer=self.events.append))

    def decide(self):
        d = self.webhook.incoming(dict(INFO))
        self.stub.flush()
        return self.successResultOf(d)


class IncomingTests(WebhookTestsMixin, SynchronousTestCase):
    def test_interface(self):
        self.assertTrue(verifyObject(IApplication, self.webhook))

    def test_route(self):
        self.assertEqual(self.decide(), {"action": "route", "client": "alice"})
        [req] = self.app.requests
        self.assertEqual(req["path"], b"/hook")
        sent = json.loads(req["body"])
        eventId = sent.pop("event_id")
        self.assertEqual(sent, dict(INFO, event="incoming"))
        self.assertEqual(req["headers"]["x-linkrtc-event-id"], eventId)
        self.assertEqual(req["headers"]["content-type"], "application/json")
        self.assertEqual(req["headers"]["x-linkrtc-event"], "incoming")
        self.assertNotIn("x-linkrtc-signature", req["headers"])

    def test_reject(self):
        self.app.body = b'{"action":"reject","status":486}'
        self.assertEqual(self.decide(), {"action": "reject", "status": 486})

    def test_rejectDefaultStatus(self):
        self.app.body = b'{"action":"reject"}'
        self.assertEqual(self.decide(), {"action": "reject", "status": 403})

    def test_http403(self):
        self.app.code = 403
        self.app.body = b""
        self.assertEqual(self.decide(), {"action": "reject", "status": 403})

    def test_httpPassedStatuses(self):
        for code in (404, 480, 486, 603):
            self.app.code = code
            self.assertEqual(self.decide(), {"action": "reject", "status": code})

    def test_httpOther4xx(self):
        self.app.code = 418
        self.assertEqual(self.decide(), {"action": "reject", "status": 403})

    def test_http500(self):
        self.app.code = 500
        self.assertEqual(self.decide(), {"action": "reject", "status": 503})

    def test_redirect(self):
        self.app.code = 302
        self.assertEqual(self.decide(), {"action": "reject", "status": 503})

    def test_badJSON(self):
        self.app.body = b"<html>ok</html>"
        self.assertEqual(self.decide(), {"action": "reject", "status": 503})

    def test_notObject(self):
        self.app.body = b'["route"]'
        self.assertEqual(self.decide(), {"action": "reject", "status": 503})

    def test_badAction(self):
        for body in (b'{"action":"dance"}', b'{}', b'{"action":"route","client":"a b"}',
                     b'{"action":"route"}', b'{"action":"reject","status":200}',
                     b'{"action":"reject","status":"486"}', b'{"action":"reject","status":true}'):
            self.app.body = body
            self.assertEqual(self.decide(), {"action": "reject", "status": 503}, body)

    def test_routeClients(self):
        """C{clients} names several users; C{client} defaults to the first."""
        self.app.body = b'{"action":"route","clients":["bob","alice"]}'
        self.assertEqual(self.decide(), {"action": "route", "client": "bob",
                                         "clients": ["bob", "alice"]})
        self.app.body = b'{"action":"route","client":"alice","clients":["bob"]}'
        self.assertEqual(self.decide(), {"action": "route", "client": "alice",
                                         "clients": ["bob"]})

    def test_routeBadClients(self):
        names = ",".join('"u%d"' % i for i in range(11))
        for body in (b'{"action":"route","clients":[]}', b'{"action":"route","clients":"bob"}',
                     b'{"action":"route","clients":["a b"]}',
                     b'{"action":"route","clients":[' + names.encode() + b']}'):
            self.app.body = body
            self.assertEqual(self.decide(), {"action": "reject", "status": 503}, body)

    def test_tooBig(self):
        self.app.body = b'{"action":"route","client":"alice","x":"' + b"a" * 70000 + b'"}'
        self.assertEqual(self.decide(), {"action": "reject", "status": 503})
        self.assertIn("larger", self.events[-1]["why"])

    def test_timeout(self):
        self.app.hang = True
        d = self.webhook.incoming(dict(INFO))
        self.stub.flush()
        self.assertNoResult(d)
        self.clock.advance(4.9)
        self.assertNoResult(d)
        self.clock.advance(0.1)
        self.assertEqual(self.successResultOf(d), {"action": "reject", "status": 503})
        [event] = [e for e in self.events if e.get("call") == "c1"]
        self.assertEqual(event["status"], 503)
        self.assertIn("5.0 s", event["why"], event["why"])

    def test_failureStatus(self):
        self.webhook.failureStatus = 480
        self.app.code = 503
        self.assertEqual(self.decide(), {"action": "reject", "status": 480})

    def test_connectionFailure(self):
        class Broken:
            def post(self, *a, **kw):
                raise ConnectionRefusedError("refused")

        webhook = WebhookApplication(URL, treq_client=Broken(), clock=self.clock)
        self.assertEqual(self.successResultOf(webhook.incoming(dict(INFO))),
                         {"action": "reject", "status": 503})


class SignatureTests(WebhookTestsMixin, SynchronousTestCase):
    secret = "top-secret"

    def test_signed(self):
        self.decide()
        [req] = self.app.requests
        self.assertEqual(req["headers"]["x-linkrtc-timestamp"], "1700000000")
        sig = req["headers"]["x-linkrtc-signature"]
        self.assertTrue(sig.startswith("sha256="))
        self.assertTrue(verifySignature(self.secret, "1700000000", req["body"], sig))
        self.assertFalse(verifySignature("other", "1700000000", req["body"], sig))
        self.assertFalse(verifySignature(self.secret, "1700000001", req["body"], sig))
        self.assertFalse(verifySignature(self.secret, "1700000000", req["body"] + b" ", sig))

    def test_userAgentWithoutVersion(self):
        """The webhook's C{User-Agent} is C{LinkRTC}, without version."""
        self.decide()
        [req] = self.app.requests
        self.assertEqual(req["headers"]["user-agent"], "LinkRTC")

    def test_knownVector(self):
        import hashlib
        import hmac

        expected = hmac.new(b"k", b"12.{}", hashlib.sha256).hexdigest()
        self.assertEqual(signBody(b"k", "12", b"{}"), "sha256=" + expected)


class NotifyTests(WebhookTestsMixin, SynchronousTestCase):
    def test_notify(self):
        event = {"event": "state", "call": "c1", "state": "ringing"}
        d = self.webhook.notify(event)
        self.stub.flush()
        self.assertIsNone(self.successResultOf(d))
        [req] = self.app.requests
        sent = json.loads(req["body"])
        self.assertEqual(sent, dict(event, event_id=sent["event_id"]))
        self.assertNotIn("event_id", event)
        self.assertEqual(req["headers"]["x-linkrtc-event"], "state")

    def test_failureLoggedNotRaised(self):
        """A 4xx (other than 408, 429) is logged, not sent again."""
        self.app.code = 404
        d = self.webhook.notify({"event": "cdr", "call": "c1"})
        self.stub.flush()
        self.assertIsNone(self.successResultOf(d))
        self.assertEqual(len(self.app.requests), 1)
        self.assertIn("not sent again", self.events[-1]["log_format"])

    def test_timeout(self):
        """A notification without a reply is sent again after back-off."""
        self.app.hang = True
        d = self.webhook.notify({"event": "state", "call": "c1", "state": "calling"})
        self.stub.flush()
        self.assertNoResult(d)
        self.clock.advance(5)
        self.assertNoResult(d)
        self.app.hang = False
        self.clock.advance(1)
        self.stub.flush()
        self.assertIsNone(self.successResultOf(d))
        self.assertEqual(len(self.app.requests), 2)

    def test_orderedPerCall(self):
        self.app.hang = True
        d1 = self.webhook.notify({"event": "state", "call": "c1", "state": "calling"})
        d2 = self.webhook.notify({"event": "state", "call": "c1", "state": "ringing"})
        d3 = self.webhook.notify({"event": "state", "call": "c2", "state": "calling"})
        self.stub.flush()
        # c1's second event waits for the first; c2 goes at once.
        self.assertEqual([json.loads(r["body"])["call"] for r in self.app.requests],
                         ["c1", "c2"])
        first = self.app.pending.pop(0)
        first.write(b"{}")
        first.finish()
        self.stub.flush()
        self.assertIsNone(self.successResultOf(d1))
        self.assertEqual(json.loads(self.app.requests[-1]["body"])["state"], "ringing")
        self.assertNoResult(d2)
        self.app.hang = False
        for request in self.app.pending:
            request.write(b"{}")
            request.finish()
        self.stub.flush()
        self.assertIsNone(self.successResultOf(d2))
        self.assertIsNone(self.successResultOf(d3))
        self.assertEqual(len(self.webhook.queue), 0)


class MapErrorStatusTests(SynchronousTestCase):
    def test_map(self):
        for code, status in ((403, 403), (404, 404), (480, 480), (486, 486), (603, 603),
                             (400, 403), (401, 403), (410, 403), (600, 403),
                             (500, 503), (502, 503), (301, 503)):
            self.assertEqual(mapErrorStatus(code), status, code)


@implementer(IClientConnection)
class FakeConnection:
    clientName = None

    def sendMessage(self, message):
        pass


class DefaultApplicationTests(SynchronousTestCase):
    def setUp(self):
        self.directory = ClientDirectory()
        self.application = DefaultApplication(self.directory)

    def test_interface(self):
        self.assertTrue(verifyObject(IApplication, self.application))

    def test_routesToRegistered(self):
        self.directory.register("alice", FakeConnection())
        self.assertEqual(self.successResultOf(self.application.incoming(dict(INFO))),
                         {"action": "route", "client": "alice"})

    def test_nobody(self):
        self.assertEqual(self.successResultOf(self.application.incoming(dict(INFO))),
                         {"action": "reject", "status": 480})

    def test_noTrunkNoTrunkClient(self):
        """Without trunks no table names a client (the fast path): the callee is used."""
        self.assertIsNone(self.application.trunkClient(dict(INFO)))

    def test_routesToRegisteredPhone(self):
        """A SIP user with a registered contact and no connection is routed (SIP to SIP)."""
        from linkrtc.sip.bindings import Binding, BindingTable, flowOf
        from linkrtc.sip.transport import Address
        from linkrtc.sip.uri import NameAddr, parseURI

        clock = Clock()
        bindings = BindingTable(clock)
        uri = "sip:alice@10.0.0.2:5062"
        bindings.bind(Binding(user="alice", contact=NameAddr(parseURI(uri)), uriText=uri,
                              flow=flowOf(Address("UDP", "10.0.0.2", 5062)), callId="c",
                              cseq=1, expiresAt=600))
        application = DefaultApplication(ClientDirectory(clock, bindings))
        self.assertEqual(self.successResultOf(application.incoming(dict(INFO))),
                         {"action": "route", "client": "alice"})

    def test_noCallee(self):
        self.assertEqual(self.successResultOf(self.application.incoming(dict(INFO, callee=None))),
                         {"action": "reject", "status": 404})

    def test_notify(self):
        self.assertIsNone(self.successResultOf(self.application.notify({"event": "cdr"})))
