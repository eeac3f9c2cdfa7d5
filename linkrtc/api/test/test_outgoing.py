"""
Tests for the outbound side of L{linkrtc.api.webhook}: the C{outgoing}
event and decision, and the default application's trunk routing.
"""

import json

from treq.testing import StubTreq
from twisted.internet.task import Clock
from twisted.trial.unittest import SynchronousTestCase
from zope.interface.verify import verifyObject

from linkrtc.api.test.test_webhook import URL, FakeApp
from linkrtc.api.webhook import DefaultApplication, WebhookApplication
from linkrtc.config import parseTrunks
from linkrtc.interfaces import IOutgoingApplication

INFO = {"call": "o1", "client": "alice", "to": "5551234", "ref": "r"}


class OutgoingWebhookTests(SynchronousTestCase):
    def setUp(self):
        self.app = FakeApp()
        self.webhook = WebhookApplication(URL, treq_client=StubTreq(self.app), clock=Clock())

    def decide(self, code=200, body=b"{}"):
        self.app.code, self.app.body = code, body
        return self.successResultOf(self.webhook.outgoing(INFO))

    def test_interface(self):
        verifyObject(IOutgoingApplication, self.webhook)

    def test_route(self):
        """The event is POSTed; route with trunk and limits is passed on."""
        decision = self.decide(body=json.dumps({
            "action": "route", "trunk": "pbx", "max_ring_seconds": 20, "caller_id": "+1555",
            "ignored": 1}).encode())
        self.assertEqual(decision, {"action": "route", "trunk": "pbx",
                                    "max_ring_seconds": 20, "caller_id": "+1555"})
        sent = json.loads(self.app.requests[0]["body"])
        eventId = sent.pop("event_id")
        self.assertEqual(sent, dict(INFO, event="outgoing"))
        self.assertEqual(self.app.requests[0]["headers"]["x-linkrtc-event-id"], eventId)
        self.assertEqual(self.app.requests[0]["headers"]["x-linkrtc-event"], "outgoing")

    def test_routeDefault(self):
        """A route without a trunk means the default trunk."""
        self.assertEqual(self.decide(body=b'{"action":"route"}'),
                         {"action": "route", "trunk": None})

    def test_reject(self):
        self.assertEqual(self.decide(body=b'{"action":"reject","status":403}'),
                         {"action": "reject", "status": 403})

    def test_failures(self):
        """Bad bodies and 5xx reject with 503; a 486 status rejects with 486."""
        for code, body, status in [(200, b"nope", 503), (200, b'{"action":"route","trunk":3}',
                                    503), (500, b"", 503), (486, b"", 486)]:
            self.assertEqual(self.decide(code, body), {"action": "reject", "status": status})


class DefaultTrunkRoutingTests(SynchronousTestCase):
    def setUp(self):
        class Directory:
            def connectionsFor(self, name):
                return ["conn"] if name in ("alice", "bob") else []

        trunks = parseTrunks([{"name": "pbx", "proxy": "sip:pbx", "username": "1001",
                               "route": {"+4930123": "bob"}, "default_client": "alice"}])
        self.app = DefaultApplication(Directory(), trunks)

    def decide(self, callee, to="sip:x@y"):
        return self.successResultOf(self.app.incoming({"call": "c", "callee": callee, "to": to}))

    def test_did(self):
        """A DID in a trunk's route table goes to its client."""
        self.assertEqual(self.decide("+4930123"), {"action": "route", "client": "bob"})

    def test_registeredContact(self):
        """To the trunk's contact user: the To user's route, else the default client."""
        self.assertEqual(self.decide("1001", "sip:+4930123@pbx"),
                         {"action": "route", "client": "bob"})
        self.assertEqual(self.decide("1001", "sip:999@pbx"),
                         {"action": "route", "client": "alice"})

    def test_plain(self):
        """Other calls keep the Request-URI user rule."""
        self.assertEqual(self.decide("alice"), {"action": "route", "client": "alice"})
        self.assertEqual(self.decide("carol")["status"], 480)

    def test_outgoing(self):
        """Without a webhook, outbound calls use the default trunk."""
        self.assertEqual(self.successResultOf(self.app.outgoing(INFO)),
                         {"action": "route", "trunk": None})
