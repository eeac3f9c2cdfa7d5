# -*- test-case-name: linkrtc.app.test.test_jsonrpc -*-
"""
JSON-RPC 2.0 (https://www.jsonrpc.org/specification) over the call-control
API: the one codec both transports use (the C{/api} WebSocket,
L{linkrtc.signalling.api}, and HTTP C{POST /api}, L{linkrtc.api.rpc}).

A request C{{"jsonrpc": "2.0", "id": 1, "method": "sys.call.answer",
"params": {"res_id": "..."}}} gets C{{"jsonrpc": "2.0", "id": 1, "result":
...}} or C{{"jsonrpc": "2.0", "id": 1, "error": {"code", "message",
"data"}}}; a notification (no C{id}) gets nothing; a batch (an array)
gets an array. Events go the other way as notifications
(L{linkrtc.app.control.CallControl.emit}).
"""

import json

from twisted.internet import defer
from twisted.logger import Logger

from linkrtc.app.errors import INTERNAL_ERROR, INVALID_REQUEST, PARSE_ERROR, ApiError

log = Logger()

#: Largest request accepted, in octets.
MAX_REQUEST_SIZE = 65536

#: Most requests in one batch.
MAX_BATCH = 50


def encode(message):
    """@return: C{message} as compact UTF-8 JSON C{bytes}."""
    return json.dumps(message, ensure_ascii=False, separators=(",", ":")).encode("utf-8")


def _error(id_, error):
    return {"jsonrpc": "2.0", "id": id_, "error": error.toJSON()}


class JsonRpcEndpoint:
    """
    Decodes JSON-RPC requests, calls L{CallControl.invoke}, encodes the
    responses.

    @param control: the L{linkrtc.app.control.CallControl}.
    """

    def __init__(self, control, maxRequestSize=MAX_REQUEST_SIZE):
        self.control = control
        self.maxRequestSize = maxRequestSize

    def handle(self, payload):
        """
        @param payload: one request or batch, C{bytes} (UTF-8 JSON).
        @return: a L{Deferred} firing with the response C{bytes}, or
            C{None} when nothing is to be sent back (notifications only).
            Never fails.
        """
        if len(payload) > self.maxRequestSize:
            return defer.succeed(encode(_error(None, ApiError(
                INVALID_REQUEST, f"request larger than {self.maxRequestSize} octets"))))
        try:
            message = json.loads(payload.decode("utf-8") if isinstance(payload, bytes)
                                 else payload)
        except (UnicodeDecodeError, ValueError, RecursionError):
            return defer.succeed(encode(_error(None, ApiError(PARSE_ERROR, "parse error"))))
        if isinstance(message, list):
            if not message or len(message) > MAX_BATCH:
                return defer.succeed(encode(_error(None, ApiError(
                    INVALID_REQUEST, f"a batch holds 1 to {MAX_BATCH} requests"))))
            d = defer.gatherResults([self.request(m) for m in message], consumeErrors=True)
            d.addCallback(lambda rs: [r for r in rs if r is not None])
            d.addCallback(lambda rs: encode(rs) if rs else None)
            return d
        d = self.request(message)
        d.addCallback(lambda r: None if r is None else encode(r))
        return d

    def request(self, message):
        """
        @param message: one decoded request.
        @return: a L{Deferred} firing with the response C{dict}, or C{None}
            for a notification. Never fails.
        """
        if not isinstance(message, dict):
            return defer.succeed(_error(None, ApiError(INVALID_REQUEST, "invalid request")))
        id_ = message.get("id")
        if (message.get("jsonrpc") != "2.0" or not isinstance(message.get("method"), str)
                or ("id" in message and (isinstance(id_, (bool, dict, list, float))))):
            return defer.succeed(_error(id_ if isinstance(id_, (str, int)) else None,
                                        ApiError(INVALID_REQUEST, "invalid request")))
        notification = "id" not in message
        d = self.control.invoke(message["method"], message.get("params"))

        def ok(result):
            return None if notification else {"jsonrpc": "2.0", "id": id_, "result": result}

        def failed(failure):
            if failure.check(ApiError):
                error = failure.value
            else:
                log.failure("call-control method {method} failed", failure,
                            method=message["method"])
                error = ApiError(INTERNAL_ERROR, "internal error")
            return None if notification else _error(id_, error)

        return d.addCallbacks(ok, failed)
