"""
Webhook delivery over a real loopback socket to a server built on Python's
C{http.server} that closes the connection after every reply without
C{Connection: close}: every event arrives, exactly once (by C{event_id}).
"""

import json
import threading
from http.server import BaseHTTPRequestHandler, HTTPServer

from twisted.internet import reactor
from twisted.internet.defer import gatherResults
from twisted.internet.task import deferLater
from twisted.trial.unittest import TestCase

from linkrtc.api.webhook import WebhookApplication
from linkrtc.metrics import REGISTRY


def sample(name, **labels):
    """@return: a metric sample's value, 0 when not yet counted."""
    return REGISTRY.get_sample_value(name, labels) or 0


class ClosingHandler(BaseHTTPRequestHandler):
    """
    Answers C{200 {}} over HTTP/1.1 with a C{Content-Length} and no
    C{Connection: close}, then closes the connection (as a server with a
    very short keep-alive does).
    """

    protocol_version = "HTTP/1.1"

    def do_POST(self):
        body = self.rfile.read(int(self.headers["Content-Length"]))
        with self.server.lock:
            self.server.received.append((self.headers["X-LinkRTC-Event-Id"], json.loads(body)))
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", "2")
        self.end_headers()
        self.wfile.write(b"{}")
        self.close_connection = True

    def log_message(self, format, *args):
        pass


class ClosingServerTests(TestCase):
    timeout = 60

    def setUp(self):
        self.server = HTTPServer(("127.0.0.1", 0), ClosingHandler)
        self.server.lock = threading.Lock()
        self.server.received = []
        thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        thread.start()

        def stopServer():
            self.server.shutdown()
            self.server.server_close()
            thread.join(10)

        self.addCleanup(stopServer)
        url = f"http://127.0.0.1:{self.server.server_port}/hook"
        self.webhook = WebhookApplication(url, clock=reactor, timeout=5.0)
        self.addCleanup(self.webhook.close)

    async def _calls(self, calls, gap):
        """Each call's events back to back, the calls C{gap} seconds apart."""
        waiting = []
        for n in range(calls):
            call = f"c{n}"
            for state in ("calling", "ringing", "confirmed", "dropped"):
                waiting.append(self.webhook.notify(
                    {"event": "state", "call": call, "state": state}))
            waiting.append(self.webhook.notify({"event": "dtmf", "call": call, "digits": "5"}))
            waiting.append(self.webhook.notify({"event": "cdr", "call": call, "cause": 200}))
            await deferLater(reactor, gap, lambda: None)
        await gatherResults(waiting)
        return len(waiting)

    async def test_everyEventOnce(self):
        """
        Six events for each of six calls, the calls spaced out: each
        event's POST after the first reuses a connection the server has
        closed; each arrives once, in order per call.
        """
        retries = sample("linkrtc_webhook_retries_total", event="state")
        dropped = sample("linkrtc_webhook_events_dropped_total", event="state")
        sent = await self._calls(6, 0.05)
        with self.server.lock:
            received = list(self.server.received)
        ids = [eventId for eventId, _body in received]
        self.assertEqual(len(ids), sent)
        self.assertEqual(len(set(ids)), sent)
        self.assertEqual(ids, [body["event_id"] for _eventId, body in received])
        for n in range(6):
            events = [(body["event"], body.get("state")) for _id, body in received
                      if body["call"] == f"c{n}"]
            self.assertEqual(events, [("state", "calling"), ("state", "ringing"),
                                      ("state", "confirmed"), ("state", "dropped"),
                                      ("dtmf", None), ("cdr", None)])
        # The stale connections were met (and got over), nothing dropped.
        self.assertGreater(sample("linkrtc_webhook_retries_total", event="state"), retries)
        self.assertEqual(sample("linkrtc_webhook_events_dropped_total", event="state"), dropped)
