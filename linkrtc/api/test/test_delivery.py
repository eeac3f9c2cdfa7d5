"""
Tests for L{linkrtc.api.delivery} and the delivery rules of
L{linkrtc.api.webhook.WebhookApplication}: the one retry after a stale
pooled connection, C{event_id}, the notification queue's back-off, bound
and give-up, the metrics, and the C{incoming} time budget.
"""

import json

import treq
from twisted.internet.defer import CancelledError, Deferred, fail, succeed
from twisted.internet.error import ConnectionDone, ConnectionRefusedError
from twisted.internet.task import Clock
from twisted.internet.testing import MemoryReactorClock, StringTransport
from twisted.logger import Logger
from twisted.python.failure import Failure
from twisted.trial.unittest import SynchronousTestCase
from twisted.web.client import Agent, ResponseDone, ResponseFailed, ResponseNeverReceived
from twisted.web.http_headers import Headers
from twisted.web.iweb import IBodyProducer
from zope.interface import implementer

from linkrtc.api import delivery as deliveryModule
from linkrtc.api import webhook as webhookModule
from linkrtc.api.delivery import (
    NotificationQueue,
    RetryLater,
    StaleConnection,
    WebhookConnectionPool,
    neverAnswered,
)
from linkrtc.api.webhook import WebhookApplication, verifySignature
from linkrtc.metrics import REGISTRY

URL = "http://app.example/hook"
INFO = {"call": "c1", "from": "sip:100@pbx", "to": "sip:alice@x", "caller": "100",
        "callee": "alice", "headers": {}}


def sample(name, **labels):
    """@return: a metric sample's value, 0 when not yet counted."""
    return REGISTRY.get_sample_value(name, labels) or 0


def stale():
    """@return: a L{Failure} of L{StaleConnection} as the pool gives it."""
    return Failure(StaleConnection([Failure(ConnectionDone())]))


class FakeResponse:
    """Enough of an L{IResponse} for C{treq.collect}."""

    def __init__(self, code=200, body=b'{"action":"route","client":"alice"}'):
        self.code = code
        self.body = body
        self.headers = Headers()
        self.length = len(body)

    def deliverBody(self, protocol):
        protocol.dataReceived(self.body)
        protocol.connectionLost(Failure(ResponseDone()))


class ScriptedClient:
    """
    A treq client whose C{post}s fire as scripted: each call takes the next
    item of C{script} (a L{FakeResponse}, a L{Failure}, or C{None} to hang
    until cancelled); C{posts} records C{(data, headers)}.
    """

    def __init__(self, *script):
        self.script = list(script)
        self.posts = []
        self.hanging = []

    def post(self, url, data, headers, allow_redirects):
        self.posts.append((data, headers))
        item = self.script.pop(0) if self.script else FakeResponse()
        if item is None:
            d = Deferred()
            self.hanging.append(d)
            return d
        if isinstance(item, Failure):
            return fail(item)
        return succeed(item)


@implementer(IBodyProducer)
class BytesProducer:
    """A body written at once (no cooperator, unlike treq's)."""

    def __init__(self, data):
        self.data = data
        self.length = len(data)

    def startProducing(self, consumer):
        consumer.write(self.data)
        return succeed(None)

    def stopProducing(self):
        pass


class FakeEndpoint:
    """Connects a protocol to a L{StringTransport} at once; keeps them."""

    def __init__(self):
        self.protocols = []

    def connect(self, factory):
        protocol = factory.buildProtocol(None)
        protocol.makeConnection(StringTransport())
        self.protocols.append(protocol)
        return succeed(protocol)


class FakeEndpointFactory:
    def __init__(self, endpoint):
        self.endpoint = endpoint

    def endpointForURI(self, uri):
        return self.endpoint


class ConnectionPoolTests(SynchronousTestCase):
    """
    L{WebhookConnectionPool} with Twisted's real HTTP/1.1 client protocol
    over L{StringTransport}s.
    """

    REPLY = b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\n{}"

    def setUp(self):
        self.reactor = MemoryReactorClock()
        self.endpoint = FakeEndpoint()
        self.agent = Agent.usingEndpointFactory(
            self.reactor, FakeEndpointFactory(self.endpoint),
            pool=WebhookConnectionPool(self.reactor))

    def post(self):
        return self.agent.request(b"POST", URL.encode(), Headers(), BytesProducer(b"{}"))

    def replied(self, d, protocol):
        protocol.dataReceived(self.REPLY)
        response = self.successResultOf(d)
        self.assertEqual(response.code, 200)
        self.assertEqual(self.successResultOf(treq.content(response)), b"{}")

    def test_staleReusedConnection(self):
        """
        A request on a reused connection closed before any response byte
        fails with L{StaleConnection} (the server closed it after its
        reply without C{Connection: close}).
        """
        self.replied(self.post(), self.endpoint.protocols[0])
        second = self.post()
        [protocol] = self.endpoint.protocols
        self.assertIn(b"POST /hook", protocol.transport.value())
        protocol.connectionLost(Failure(ConnectionDone()))
        failure = self.failureResultOf(second, StaleConnection)
        self.assertIn("closed cleanly", failure.getErrorMessage())

    def test_freshConnectionNotStale(self):
        """A new connection lost before a reply is a plain failure."""
        d = self.post()
        self.endpoint.protocols[0].connectionLost(Failure(ConnectionDone()))
        self.failureResultOf(d, ResponseNeverReceived)

    def test_responseByteNotStale(self):
        """Once a response byte came, the failure is not L{StaleConnection}."""
        self.replied(self.post(), self.endpoint.protocols[0])
        second = self.post()
        [protocol] = self.endpoint.protocols
        protocol.dataReceived(b"HTTP/1.1 2")
        protocol.connectionLost(Failure(ConnectionDone()))
        self.failureResultOf(second, ResponseFailed)

    def test_neverAnswered(self):
        self.assertTrue(neverAnswered(Failure(ResponseNeverReceived([Failure(ConnectionDone())]))))
        self.assertFalse(neverAnswered(Failure(ResponseFailed([Failure(ConnectionDone())]))))
        self.assertFalse(neverAnswered(Failure(ConnectionRefusedError())))
        self.assertFalse(neverAnswered(Failure(ResponseNeverReceived([Failure(CancelledError())]))))


class WebhookDeliveryMixin:
    secret = None

    def setUp(self):
        self.clock = Clock()
        self.clock.advance(1700000000)
        self.events = []
        self.patch(webhookModule, "log", Logger(observer=self.events.append))
        self.patch(deliveryModule, "log", Logger(observer=self.events.append))

    def webhook(self, pooled, fresh=None, **kw):
        return WebhookApplication(URL, treq_client=pooled, fresh_client=fresh or pooled,
                                  clock=self.clock, secret=self.secret, **kw)


class StaleRetryTests(WebhookDeliveryMixin, SynchronousTestCase):
    def test_retriedOnceOnFreshConnection(self):
        """After L{StaleConnection} the same body goes once on the fresh client."""
        pooled, fresh = ScriptedClient(stale()), ScriptedClient()
        retries = sample("linkrtc_webhook_retries_total", event="incoming")
        decision = self.successResultOf(self.webhook(pooled, fresh).incoming(dict(INFO)))
        self.assertEqual(decision, {"action": "route", "client": "alice"})
        self.assertEqual(len(pooled.posts), 1)
        self.assertEqual(len(fresh.posts), 1)
        self.assertEqual(pooled.posts[0][0], fresh.posts[0][0])
        self.assertEqual(sample("linkrtc_webhook_retries_total", event="incoming"), retries + 1)

    def test_onlyOnce(self):
        """A stale failure of the retry itself is not retried again."""
        pooled, fresh = ScriptedClient(stale()), ScriptedClient(stale())
        decision = self.successResultOf(self.webhook(pooled, fresh).incoming(dict(INFO)))
        self.assertEqual(decision, {"action": "reject", "status": 503})
        self.assertEqual((len(pooled.posts), len(fresh.posts)), (1, 1))

    def test_noRetryAfterResponseByte(self):
        """A failure after a response byte (L{ResponseFailed}) is not retried."""
        pooled = ScriptedClient(Failure(ResponseFailed([Failure(ConnectionDone())])))
        fresh = ScriptedClient()
        decision = self.successResultOf(self.webhook(pooled, fresh).incoming(dict(INFO)))
        self.assertEqual(decision, {"action": "reject", "status": 503})
        self.assertEqual(fresh.posts, [])

    def test_noRetryOtherFailure(self):
        """A refused connection is not a stale one."""
        pooled, fresh = ScriptedClient(Failure(ConnectionRefusedError())), ScriptedClient()
        failures = sample("linkrtc_webhook_failures_total", event="incoming",
                          reason="connection")
        decision = self.successResultOf(self.webhook(pooled, fresh).incoming(dict(INFO)))
        self.assertEqual(decision, {"action": "reject", "status": 503})
        self.assertEqual(fresh.posts, [])
        self.assertEqual(sample("linkrtc_webhook_failures_total", event="incoming",
                                reason="connection"), failures + 1)

    def test_incomingNeverPastBudget(self):
        """
        The retry shares the C{--webhook-timeout} budget: at 5 s the call
        is refused, the retry is cancelled, and nothing is sent again.
        """
        pooled, fresh = ScriptedClient(None), ScriptedClient(None)
        d = self.webhook(pooled, fresh).incoming(dict(INFO))
        self.clock.advance(4.9)
        pooled.hanging[0].errback(stale())
        self.assertEqual(len(fresh.posts), 1)
        self.assertNoResult(d)
        timeouts = sample("linkrtc_webhook_failures_total", event="incoming", reason="timeout")
        self.clock.advance(0.1)
        self.assertEqual(self.successResultOf(d), {"action": "reject", "status": 503})
        self.assertTrue(fresh.hanging[0].called)
        self.assertEqual(sample("linkrtc_webhook_failures_total", event="incoming",
                                reason="timeout"), timeouts + 1)
        self.clock.advance(1000)
        self.assertEqual((len(pooled.posts), len(fresh.posts)), (1, 1))
        self.assertEqual(self.clock.getDelayedCalls(), [])

    def test_outgoingNeverPastBudget(self):
        """An C{outgoing} decision that times out is refused, never sent again."""
        pooled = ScriptedClient(None)
        d = self.webhook(pooled).outgoing({"call": "o1", "client": "alice", "to": "1"})
        self.clock.advance(5)
        self.assertEqual(self.successResultOf(d), {"action": "reject", "status": 503})
        self.clock.advance(1000)
        self.assertEqual(len(pooled.posts), 1)

    def test_notifyStaleRetry(self):
        """A notification gets the fresh-connection retry too, at once."""
        pooled, fresh = ScriptedClient(stale()), ScriptedClient()
        d = self.webhook(pooled, fresh).notify({"event": "state", "call": "c1",
                                                "state": "ringing"})
        self.assertIsNone(self.successResultOf(d))
        self.assertEqual(pooled.posts[0][0], fresh.posts[0][0])

    def test_latencyCounted(self):
        before = sample("linkrtc_webhook_request_duration_seconds_count", event="dtmf")
        self.successResultOf(self.webhook(ScriptedClient()).notify(
            {"event": "dtmf", "call": "c1", "digits": "1"}))
        self.assertEqual(sample("linkrtc_webhook_request_duration_seconds_count",
                                event="dtmf"), before + 1)


class EventIdTests(WebhookDeliveryMixin, SynchronousTestCase):
    secret = "s3cret"

    def test_uniqueSignedAndInHeader(self):
        """
        Every event has its own C{event_id}, in the signed body and in the
        C{X-LinkRTC-Event-Id} header.
        """
        client = ScriptedClient()
        webhook = self.webhook(client)
        webhook.incoming(dict(INFO))
        webhook.outgoing({"call": "o1", "client": "alice", "to": "1"})
        for n in range(3):
            webhook.notify({"event": "state", "call": "c1", "state": "ringing"})
        ids = []
        for body, headers in client.posts:
            eventId = json.loads(body)["event_id"]
            self.assertEqual(headers[b"X-LinkRTC-Event-Id"], [eventId.encode()])
            timestamp = headers[b"X-LinkRTC-Timestamp"][0].decode()
            signature = headers[b"X-LinkRTC-Signature"][0].decode()
            self.assertTrue(verifySignature(self.secret, timestamp, body, signature))
            forged = body.replace(eventId.encode(), b"0" * len(eventId))
            self.assertFalse(verifySignature(self.secret, timestamp, forged, signature))
            ids.append(eventId)
        self.assertEqual(len(ids), 5)
        self.assertEqual(len(set(ids)), 5)

    def test_sameIdWhenSentAgain(self):
        """A notification sent again (back-off) keeps its C{event_id}."""
        client = ScriptedClient(FakeResponse(503, b""), FakeResponse(200, b""))
        d = self.webhook(client).notify({"event": "cdr", "call": "c1"})
        self.clock.advance(1)
        self.assertIsNone(self.successResultOf(d))
        [first, second] = [json.loads(body)["event_id"] for body, _ in client.posts]
        self.assertEqual(first, second)

    def test_givenIdKept(self):
        client = ScriptedClient()
        self.webhook(client).notify({"event": "cdr", "call": "c1", "event_id": "e-1"})
        self.assertEqual(json.loads(client.posts[0][0])["event_id"], "e-1")


class NotifyRetryTests(WebhookDeliveryMixin, SynchronousTestCase):
    def test_statusRetried(self):
        """5xx, 408 and 429 are sent again; the failure is counted."""
        for code in (500, 503, 408, 429):
            client = ScriptedClient(FakeResponse(code, b""))
            failures = sample("linkrtc_webhook_failures_total", event="state", reason="status")
            d = self.webhook(client).notify({"event": "state", "call": "c1", "state": "x"})
            self.assertNoResult(d)
            self.clock.advance(1)
            self.assertIsNone(self.successResultOf(d))
            self.assertEqual(len(client.posts), 2, code)
            self.assertEqual(sample("linkrtc_webhook_failures_total", event="state",
                                    reason="status"), failures + 1)

    def test_orderKeptAcrossRetry(self):
        """A later event of the call waits for the earlier one's retry."""
        client = ScriptedClient(Failure(ConnectionRefusedError()))
        webhook = self.webhook(client)
        webhook.notify({"event": "state", "call": "c1", "state": "ringing"})
        webhook.notify({"event": "state", "call": "c1", "state": "confirmed"})
        webhook.notify({"event": "state", "call": "c2", "state": "ringing"})
        self.assertEqual([json.loads(b)["call"] for b, _ in client.posts], ["c1", "c2"])
        self.clock.advance(1)
        self.assertEqual([(json.loads(b)["call"], json.loads(b)["state"])
                          for b, _ in client.posts],
                         [("c1", "ringing"), ("c2", "ringing"), ("c1", "ringing"),
                          ("c1", "confirmed")])
        self.assertEqual(len(webhook.queue), 0)


class FakeSender:
    """A L{NotificationQueue} C{send}: fails with L{RetryLater} while C{down}."""

    def __init__(self, clock):
        self.clock = clock
        self.down = True
        self.attempts = []

    def __call__(self, event):
        self.attempts.append((self.clock.seconds(), event["event_id"]))
        if self.down:
            return fail(RetryLater("connection refused"))
        return succeed(None)


class NotificationQueueTests(SynchronousTestCase):
    def setUp(self):
        self.clock = Clock()
        self.send = FakeSender(self.clock)
        self.events = []
        self.patch(deliveryModule, "log", Logger(observer=self.events.append))

    def queue(self, **kw):
        return NotificationQueue(self.clock, self.send, **kw)

    def test_backOff(self):
        """Attempts at 0, 1, 3, 7, 15 ... s: the delay doubles, up to C{maxDelay}."""
        retries = sample("linkrtc_webhook_retries_total", event="state")
        queue = self.queue(giveUpSeconds=1000, maxDelay=60)
        d = queue.put({"event": "state", "call": "c1", "event_id": "e1"})
        for _ in range(9):
            self.clock.advance(self.clock.getDelayedCalls()[0].getTime() - self.clock.seconds())
        self.assertEqual([t for t, _ in self.send.attempts],
                         [0, 1, 3, 7, 15, 31, 63, 123, 183, 243])
        self.assertEqual(sample("linkrtc_webhook_retries_total", event="state"), retries + 9)
        self.send.down = False
        self.clock.advance(60)
        self.assertTrue(self.successResultOf(d))
        self.assertEqual(len(queue), 0)
        self.assertEqual(self.clock.getDelayedCalls(), [])

    def test_giveUp(self):
        """
        An event still failing C{giveUpSeconds} after it was queued is
        dropped: counted, one log line, its Deferred fires C{False}.
        """
        dropped = sample("linkrtc_webhook_events_dropped_total", event="cdr")
        queue = self.queue(giveUpSeconds=10)
        d = queue.put({"event": "cdr", "call": "c1", "event_id": "e1"})
        self.clock.pump([1] * 20)
        self.assertEqual([t for t, _ in self.send.attempts], [0, 1, 3, 7, 10])
        self.assertFalse(self.successResultOf(d))
        self.assertEqual(sample("linkrtc_webhook_events_dropped_total", event="cdr"),
                         dropped + 1)
        [line] = [e for e in self.events if "dropping" in e["log_format"]]
        self.assertEqual(line["id"], "e1")
        self.assertIn("10 s", line["why"])
        self.assertEqual(len(queue), 0)

    def test_bound(self):
        """When C{size} events are held, the next one is dropped at once."""
        dropped = sample("linkrtc_webhook_events_dropped_total", event="dtmf")
        gauge = sample("linkrtc_webhook_queue_events")
        queue = self.queue(size=2)
        first = queue.put({"event": "state", "call": "c1", "event_id": "e1"})
        queue.put({"event": "state", "call": "c2", "event_id": "e2"})
        self.assertEqual(sample("linkrtc_webhook_queue_events"), gauge + 2)
        third = queue.put({"event": "dtmf", "call": "c3", "event_id": "e3"})
        self.assertFalse(self.successResultOf(third))
        self.assertEqual(sample("linkrtc_webhook_events_dropped_total", event="dtmf"),
                         dropped + 1)
        self.assertEqual([e for _, e in self.send.attempts], ["e1", "e2"])
        [line] = [e for e in self.events if "dropping" in e["log_format"]]
        self.assertIn("queue full", line["why"])
        self.send.down = False
        self.clock.advance(1)
        self.assertTrue(self.successResultOf(first))
        self.assertEqual(len(queue), 0)
        self.assertEqual(sample("linkrtc_webhook_queue_events"), gauge)

    def test_unexpectedFault(self):
        """A fault of C{send} other than L{RetryLater} ends the event, logged."""
        queue = NotificationQueue(self.clock, lambda event: fail(ZeroDivisionError()))
        d = queue.put({"event": "state", "call": "c1", "event_id": "e1"})
        self.assertTrue(self.successResultOf(d))
        [logged] = [e for e in self.events if "log_failure" in e]
        self.assertTrue(logged["log_failure"].check(ZeroDivisionError))
        self.assertEqual(len(queue), 0)

    def test_stop(self):
        """L{NotificationQueue.stop} drops the events waiting for a retry."""
        queue = self.queue()
        first = queue.put({"event": "state", "call": "c1", "event_id": "e1"})
        second = queue.put({"event": "state", "call": "c1", "event_id": "e2"})
        queue.stop()
        self.assertFalse(self.successResultOf(first))
        self.assertFalse(self.successResultOf(second))
        self.assertEqual(self.clock.getDelayedCalls(), [])
        self.assertEqual(len(queue), 0)


class QuietPoolTests(SynchronousTestCase):
    def test_noConnectionLogLines(self):
        """The webhook's pools do not log a line per connection opened and closed."""
        from linkrtc.api.delivery import QuietConnectionPool, WebhookConnectionPool

        for pool in (WebhookConnectionPool(MemoryReactorClock()),
                     QuietConnectionPool(MemoryReactorClock(), persistent=False)):
            self.assertFalse(pool._factory.noisy)
