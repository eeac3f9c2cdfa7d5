"""
Tests for L{linkrtc.api.verify}: an application checks LinkRTC's webhook
requests (signature, timestamp window, C{event_id}) and refuses replays.
The requests are the ones L{WebhookApplication} really sends.
"""

import json

from twisted.trial.unittest import SynchronousTestCase

from linkrtc.api.test.test_webhook import WebhookTestsMixin
from linkrtc.api.verify import (
    DuplicateEvent,
    SeenEvents,
    WebhookVerificationError,
    verifyWebhook,
)
from linkrtc.api.webhook import signBody

SECRET = "webhook-secret-for-tests"


class VerifyWebhookTests(WebhookTestsMixin, SynchronousTestCase):
    secret = SECRET

    def setUp(self):
        super().setUp()
        self.webhook.notify({"event": "state", "call": "c1", "state": "ringing"})
        self.stub.flush()
        [request] = self.app.requests
        self.headers = request["headers"]
        self.body = request["body"]
        self.now = self.clock.seconds()

    def reason(self, headers=None, body=None, now=None, **kwargs):
        e = self.assertRaises(WebhookVerificationError, verifyWebhook, SECRET,
                              self.headers if headers is None else headers,
                              self.body if body is None else body,
                              self.now if now is None else now, **kwargs)
        return e.reason

    def test_accepted(self):
        """A request LinkRTC sent verifies and gives the event, C{event_id} included."""
        event = verifyWebhook(SECRET, self.headers, self.body, self.now)
        self.assertEqual(event["event"], "state")
        self.assertEqual(event["event_id"], self.headers["x-linkrtc-event-id"])
        self.assertEqual(event, json.loads(self.body))

    def test_headerShapes(self):
        """Header names in any case, values as C{str}, C{bytes} or lists."""
        shaped = {k.title().encode(): [v.encode()] for k, v in self.headers.items()}
        self.assertEqual(verifyWebhook(SECRET.encode(), shaped, self.body, self.now)["event"],
                         "state")

    def test_windowEdges(self):
        """Up to C{window} seconds early or late passes; beyond is stale."""
        ts = int(self.headers["x-linkrtc-timestamp"])
        for now in (ts + 300, ts - 300):
            verifyWebhook(SECRET, self.headers, self.body, now)
        for now in (ts + 301, ts - 301):
            self.assertEqual(self.reason(now=now), "stale_timestamp")
        self.assertEqual(self.reason(now=ts + 61, window=60), "stale_timestamp")

    def test_tampered(self):
        """Another body, secret, or signature is refused."""
        self.assertEqual(self.reason(body=self.body.replace(b"ringing", b"dropped")),
                         "bad_signature")
        self.assertRaises(WebhookVerificationError, verifyWebhook, "other", self.headers,
                          self.body, self.now)
        self.assertEqual(self.reason(dict(self.headers, **{"x-linkrtc-signature": "sha256=00"})),
                         "bad_signature")

    def test_timestampCovered(self):
        """Moving the timestamp forward (to revive an old request) breaks the signature."""
        old = int(self.headers["x-linkrtc-timestamp"])
        headers = dict(self.headers, **{"x-linkrtc-timestamp": str(old + 3600)})
        self.assertEqual(self.reason(headers, now=old + 3600), "bad_signature")

    def test_missingOrMalformed(self):
        without = {k: v for k, v in self.headers.items() if k != "x-linkrtc-timestamp"}
        self.assertEqual(self.reason(without), "missing_timestamp")
        without = {k: v for k, v in self.headers.items() if k != "x-linkrtc-signature"}
        self.assertEqual(self.reason(without), "missing_signature")
        for bad in ("-5", "1e9", "", "17000000000000"):
            self.assertEqual(self.reason(dict(self.headers, **{"x-linkrtc-timestamp": bad})),
                             "bad_timestamp")

    def test_bodyWithoutEventId(self):
        """A signed body without C{event_id} (or not an object) is refused."""
        ts = self.headers["x-linkrtc-timestamp"]
        for body, reason in ((b'{"event":"state"}', "missing_event_id"),
                             (b'[1]', "bad_body"), (b'\xff', "bad_body")):
            headers = dict(self.headers, **{"x-linkrtc-signature": signBody(SECRET, ts, body)})
            self.assertEqual(self.reason(headers, body), reason)

    def test_replayRefused(self):
        """The same request again inside the window is a L{DuplicateEvent}."""
        seen = SeenEvents()
        verifyWebhook(SECRET, self.headers, self.body, self.now, seen=seen)
        e = self.assertRaises(DuplicateEvent, verifyWebhook, SECRET, self.headers, self.body,
                              self.now + 10, seen=seen)
        self.assertEqual(e.eventId, json.loads(self.body)["event_id"])
        self.assertEqual(e.reason, "duplicate")

    def test_retryRecognised(self):
        """
        LinkRTC's own retry (a new timestamp and signature, the same
        C{event_id}) is recognised as a duplicate too.
        """
        seen = SeenEvents()
        verifyWebhook(SECRET, self.headers, self.body, self.now, seen=seen)
        later = str(int(self.now) + 8)
        headers = dict(self.headers, **{"x-linkrtc-timestamp": later,
                                        "x-linkrtc-signature": signBody(SECRET, later,
                                                                        self.body)})
        self.assertRaises(DuplicateEvent, verifyWebhook, SECRET, headers, self.body,
                          self.now + 8, seen=seen)

    def test_refusedNotRemembered(self):
        """A refused request does not enter C{seen}."""
        seen = SeenEvents()
        self.reason(body=self.body + b" ", seen=seen)
        self.assertEqual(len(seen), 0)


class SeenEventsTests(SynchronousTestCase):
    def test_forgetsAfterKeep(self):
        seen = SeenEvents(keep=600)
        self.assertTrue(seen.add("a", 1000))
        self.assertFalse(seen.add("a", 1500))
        self.assertTrue(seen.add("b", 1599))
        self.assertTrue(seen.add("a", 1601))  # forgotten after 600 s
        self.assertEqual(len(seen), 2)
