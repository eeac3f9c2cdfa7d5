"""
Tests for the call-control API's transports: JSON-RPC 2.0
(L{linkrtc.app.jsonrpc}), the C{/api} WebSocket (L{linkrtc.signalling.api}),
HTTP C{POST /api} and the webhook sink (L{linkrtc.api.rpc}), the token
check (L{linkrtc.app.auth}) and the takeover of incoming calls
(L{linkrtc.app.application}).
"""

import json

import jwt
from twisted.internet import defer
from twisted.internet.address import IPv4Address
from twisted.internet.error import ConnectionDone
from twisted.python.failure import Failure
from twisted.trial.unittest import SynchronousTestCase
from twisted.web.test.requesthelper import DummyRequest

from linkrtc.api.rpc import ApiResource, webhookSink
from linkrtc.app.application import ApiApplication
from linkrtc.app.auth import ApiAuthorizer, bearerToken, isLoopback
from linkrtc.app.jsonrpc import JsonRpcEndpoint
from linkrtc.app.testing import ApiHarness
from linkrtc.signalling.api import ApiFactory
from linkrtc.signalling.test.test_protocol import (
    OP_TEXT,
    FakeTransport,
    clientFrame,
    serverFrames,
)
from linkrtc.testing import FakeApplication

SECRET = "s" * 40


def handshake(path=b"/api", headers=b""):
    return (b"GET " + path + b" HTTP/1.1\r\nHost: localhost:8080\r\nUpgrade: websocket\r\n"
            b"Connection: Upgrade\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n"
            b"Sec-WebSocket-Version: 13\r\n" + headers + b"\r\n")


def rpc(endpoint, message):
    """@return: the decoded response of C{message} (a C{dict}, C{list} or C{bytes})."""
    box = []
    payload = message if isinstance(message, bytes) else json.dumps(message).encode()
    endpoint.handle(payload).addCallback(box.append)
    return None if box[0] is None else json.loads(box[0])


class JsonRpcTests(SynchronousTestCase):
    """JSON-RPC 2.0 framing and errors."""

    def setUp(self):
        self.h = ApiHarness()
        self.endpoint = JsonRpcEndpoint(self.h.control)

    def test_result(self):
        """A request gets its result with the same id."""
        call, leg = self.h.incoming()
        response = rpc(self.endpoint, {"jsonrpc": "2.0", "id": 1, "method": "sys.call.answer",
                                       "params": {"res_id": call.resId}})
        self.assertEqual(response, {"jsonrpc": "2.0", "id": 1, "result": None})
        self.assertEqual(call.state.name, "Idle")

    def test_errors(self):
        """Parse error, invalid request, unknown method, bad params, unknown res_id."""
        cases = [
            (b"{not json", -32700),
            ({"jsonrpc": "1.0", "id": 2, "method": "x"}, -32600),
            ([], -32600),
            ({"jsonrpc": "2.0", "id": 3, "method": "sys.call.fly"}, -32601),
            ({"jsonrpc": "2.0", "id": 4, "method": "sys.call.drop", "params": [1]}, -32602),
            ({"jsonrpc": "2.0", "id": 5, "method": "sys.call.drop",
              "params": {"res_id": "nope"}}, -32001),
        ]
        for message, code in cases:
            self.assertEqual(rpc(self.endpoint, message)["error"]["code"], code, message)

    def test_badParamNamed(self):
        """-32602 names the parameter in its message and data."""
        response = rpc(self.endpoint, {"jsonrpc": "2.0", "id": 1, "method": "sys.call.play_start",
                                       "params": {"res_id": "r"}})
        self.assertEqual(response["error"]["data"], {"param": "content"})
        self.assertIn("content", response["error"]["message"])

    def test_notification(self):
        """A request without id gets no response."""
        self.assertIsNone(rpc(self.endpoint, {"jsonrpc": "2.0", "method": "sys.call.nop",
                                              "params": {"res_id": "x"}}))

    def test_batch(self):
        """A batch gets an array of the responses."""
        response = rpc(self.endpoint, [
            {"jsonrpc": "2.0", "id": 1, "method": "sys.call.exists", "params": {"res_id": "x"}},
            {"jsonrpc": "2.0", "id": 2, "method": "sys.call.fly"}])
        self.assertEqual([r["id"] for r in response], [1, 2])
        self.assertEqual(response[0]["result"], False)


class AuthTests(SynchronousTestCase):
    """L{ApiAuthorizer}."""

    def setUp(self):
        from twisted.internet.task import Clock

        self.clock = Clock()
        self.clock.advance(1000)

    def token(self, grants={"app": True}, exp=2000):
        return jwt.encode({"sub": "app", "exp": exp, "grants": grants}, SECRET, "HS256")

    def test_protectedMode(self):
        """Without a secret only loopback peers are let in."""
        auth = ApiAuthorizer(None, self.clock)
        self.assertTrue(auth.authorize("127.0.0.1", None))
        self.assertTrue(auth.authorize("::1", None))
        self.assertFalse(auth.authorize("192.0.2.1", None))

    def test_token(self):
        """With a secret: a valid token with the app grant, unexpired."""
        auth = ApiAuthorizer(SECRET, self.clock)
        self.assertTrue(auth.authorize("192.0.2.1", self.token()))
        self.assertFalse(auth.authorize("127.0.0.1", None))
        self.assertFalse(auth.authorize("192.0.2.1", self.token(grants={"outgoing": True})))
        self.assertFalse(auth.authorize("192.0.2.1", self.token(exp=900)))
        self.assertFalse(auth.authorize("192.0.2.1", "garbage"))

    def test_helpers(self):
        """L{bearerToken} and L{isLoopback}."""
        self.assertEqual(bearerToken(b"Bearer abc"), "abc")
        self.assertIsNone(bearerToken("Basic abc"))
        self.assertFalse(isLoopback("example.com"))


class WebSocketTests(SynchronousTestCase):
    """The C{/api} WebSocket."""

    def setUp(self):
        self.h = ApiHarness(controller=False)
        self.h.calls.application = None
        self.endpoint = JsonRpcEndpoint(self.h.control)
        self.factory = ApiFactory(self.endpoint, ApiAuthorizer(None, self.h.clock),
                                  clock=self.h.clock)

    def connect(self, host="127.0.0.1"):
        proto = self.factory.buildProtocol(IPv4Address("TCP", host, 40000))
        transport = FakeTransport(peerAddress=IPv4Address("TCP", host, 40000))
        proto.makeConnection(transport)
        proto.dataReceived(handshake())
        return proto, transport

    def frames(self, transport):
        out = [json.loads(p) for op, p in serverFrames(transport.value()) if op == OP_TEXT]
        transport.clear()
        return out

    def test_refused(self):
        """A peer that is not loopback (protected mode) gets 401."""
        proto, transport = self.connect("192.0.2.1")
        self.assertTrue(transport.value().startswith(b"HTTP/1.1 401"), transport.value())

    def test_callAndEvents(self):
        """
        An application on the WebSocket takes incoming calls: it hears
        C{on_incoming}, answers, drops, hears C{on_released}; when it
        leaves, the default routing is back.
        """
        proto, transport = self.connect()
        self.assertTrue(transport.value().startswith(b"HTTP/1.1 101"))
        transport.clear()
        self.assertTrue(self.h.control.hasController())
        application = ApiApplication(FakeApplication(lambda i: {"action": "reject",
                                                                "status": 480}),
                                     self.h.control)
        self.h.calls.manager.services.application = application
        call, leg = self.h.incoming()
        [incoming] = self.frames(transport)
        self.assertEqual(incoming["method"], "sys.call.on_incoming")
        self.assertNotIn("id", incoming)
        resId = incoming["params"]["res_id"]
        proto.dataReceived(clientFrame(json.dumps({
            "jsonrpc": "2.0", "id": 7, "method": "sys.call.answer",
            "params": {"res_id": resId}})))
        self.assertEqual(self.frames(transport), [{"jsonrpc": "2.0", "id": 7, "result": None}])
        proto.dataReceived(clientFrame(json.dumps({
            "jsonrpc": "2.0", "id": 8, "method": "sys.call.drop",
            "params": {"res_id": resId, "cause": 200}})))
        out = self.frames(transport)
        self.assertIn({"jsonrpc": "2.0", "id": 8, "result": None}, out)
        self.assertIn("sys.call.on_released", [m.get("method") for m in out])
        proto.connectionLost(Failure(ConnectionDone()))
        self.assertFalse(self.h.control.hasController())
        call2, leg2 = self.h.incoming()
        self.assertEqual(leg2.finals[0].status, 480)

    def test_disconnectDropsWaitingCalls(self):
        """An application that leaves: its calls in Initiated get 480 (no leak)."""
        proto, transport = self.connect()
        call, leg = self.h.incoming()
        proto.connectionLost(Failure(ConnectionDone()))
        self.assertEqual(leg.finals[0].status, 480)
        self.assertEqual(self.h.control.resources, {})


class HTTPTests(SynchronousTestCase):
    """HTTP C{POST /api}."""

    def setUp(self):
        self.h = ApiHarness()
        self.resource = ApiResource(JsonRpcEndpoint(self.h.control),
                                    ApiAuthorizer(None, self.h.clock))

    def post(self, body, host="127.0.0.1", headers=()):
        request = DummyRequest([b""])
        request.method = b"POST"
        request.client = IPv4Address("TCP", host, 50000)
        request.content = __import__("io").BytesIO(body)
        for k, v in headers:
            request.requestHeaders.addRawHeader(k, v)
        result = self.resource.render(request)
        if isinstance(result, bytes):
            request.write(result)
            request.finish()
        return request

    def test_post(self):
        """A method call POSTed gets its JSON-RPC response."""
        call, leg = self.h.incoming()
        request = self.post(json.dumps({"jsonrpc": "2.0", "id": "a", "method": "sys.call.answer",
                                        "params": {"res_id": call.resId}}).encode())
        self.assertEqual(json.loads(b"".join(request.written)),
                         {"jsonrpc": "2.0", "id": "a", "result": None})
        self.assertEqual(call.state.name, "Idle")

    def test_unauthorized(self):
        """Not loopback in protected mode: 401."""
        request = self.post(b"{}", host="192.0.2.1")
        self.assertEqual(request.responseCode, 401)

    def test_notificationOnly(self):
        """Only notifications: 204."""
        request = self.post(b'{"jsonrpc":"2.0","method":"sys.call.nop","params":{"res_id":"x"}}')
        self.assertEqual(request.responseCode, 204)


class FakeQueue:
    def __init__(self):
        self.items = []

    def put(self, item):
        self.items.append(item)
        return defer.succeed(None)


class FakeWebhook:
    def __init__(self):
        self.queue = FakeQueue()


class WebhookTests(SynchronousTestCase):
    """Events to the webhook, and the webhook's C{{"action": "api"}}."""

    def test_sink(self):
        """
        Each event goes to the webhook's delivery queue as a JSON-RPC
        notification with an C{event_id}, keyed by its C{res_id}.
        """
        webhook = FakeWebhook()
        h = ApiHarness(controller=False)
        h.control.addSink(webhookSink(webhook), controller=False)
        call, leg = h.incoming()
        [item] = webhook.queue.items
        body = json.loads(json.dumps(item))
        self.assertEqual(sorted(body), ["jsonrpc", "method", "params"])
        self.assertEqual(body["method"], "sys.call.on_incoming")
        self.assertIn("event_id", body["params"])
        self.assertEqual(item.get("call"), call.resId)
        self.assertEqual(item.get("event"), "sys.call.on_incoming")

    def test_webhookDecision(self):
        """The webhook's reply C{{"action": "api"}} is a decision."""
        from linkrtc.api.webhook import _decision

        self.assertEqual(_decision(b'{"action":"api"}'), {"action": "api"})
