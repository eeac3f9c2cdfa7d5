# -*- test-case-name: linkrtc.app.test.test_transports -*-
"""
The call-control API over HTTP: C{POST /api} takes the JSON-RPC 2.0 method
calls the C{/api} WebSocket takes (a WebSocket upgrade on the same path
goes to L{linkrtc.signalling.api}), and the events are POSTed to the
webhook URL as JSON-RPC notifications (L{webhookSink}), signed and with an
C{event_id} like every webhook event.
"""

from twisted.internet import defer
from twisted.logger import Logger
from twisted.web.resource import Resource
from twisted.web.server import NOT_DONE_YET

from linkrtc.api.webhook import newEventId
from linkrtc.app.auth import bearerToken
from linkrtc.app.jsonrpc import MAX_REQUEST_SIZE, encode

__all__ = ["ApiResource", "webhookSink"]

log = Logger()


class ApiResource(Resource):
    """
    C{/api}: C{POST} with a JSON-RPC request (C{Content-Type:
    application/json}) -> 200 with the response (204 for notifications
    only); 401 when the authorizer refuses; a WebSocket upgrade goes to
    C{websocket}.

    @param endpoint: the L{linkrtc.app.jsonrpc.JsonRpcEndpoint}.
    @param authorizer: an L{linkrtc.app.auth.ApiAuthorizer}.
    @param websocket: the resource for upgrades (or C{None}).
    """

    isLeaf = True

    def __init__(self, endpoint, authorizer, websocket=None):
        super().__init__()
        self.endpoint = endpoint
        self.authorizer = authorizer
        self.websocket = websocket

    def render(self, request):
        upgrade = (request.getHeader(b"upgrade") or b"").lower()
        if upgrade == b"websocket" and self.websocket is not None:
            return self.websocket.render(request)
        return super().render(request)

    def render_POST(self, request):
        request.setHeader(b"content-type", b"application/json")
        host = getattr(request.getClientAddress(), "host", "")
        token = bearerToken(request.getHeader(b"authorization"))
        if not self.authorizer.authorize(host, token):
            request.setResponseCode(401)
            return encode({"jsonrpc": "2.0", "id": None,
                           "error": {"code": -32005, "message": "unauthorized"}})
        body = request.content.read(MAX_REQUEST_SIZE + 1)
        d = self.endpoint.handle(body)

        def respond(response):
            if response is None:
                request.setResponseCode(204)
            else:
                request.write(response)
            request.finish()

        d.addCallback(respond)
        d.addErrback(lambda f: log.failure("POST /api failed", f))
        return NOT_DONE_YET

    def render_GET(self, request):
        request.setResponseCode(405)
        request.setHeader(b"allow", b"POST")
        return b""


class _Notification(dict):
    """
    A JSON-RPC notification as the webhook's delivery queue holds it: the
    C{dict} items are the body sent (C{jsonrpc}, C{method}, C{params}
    with C{event_id}); C{get} also answers the queue's C{event} (the
    method), C{call} (the C{res_id}, to keep a call's events in order) and
    C{event_id}.
    """

    def get(self, key, default=None):
        if key in self:
            return self[key]
        params = dict.get(self, "params") or {}
        if key == "event":
            return dict.get(self, "method", default)
        if key == "call":
            return params.get("res_id", default)
        if key == "event_id":
            return params.get("event_id", default)
        return default


def webhookSink(webhook):
    """
    @param webhook: the L{linkrtc.api.webhook.WebhookApplication}.
    @return: a L{CallControl} sink that POSTs each event to the webhook
        (in order per call, retried with back-off, signed).
    """

    def sink(notification):
        params = dict(notification.get("params") or {})
        params.setdefault("event_id", newEventId())
        d = webhook.queue.put(_Notification(jsonrpc="2.0", method=notification["method"],
                                            params=params))
        d.addErrback(lambda f: None)
        return defer.succeed(None)

    return sink
