# -*- test-case-name: linkrtc.api.test.test_webhook -*-
"""
The user's application as the call engine sees it (L{IApplication}):

 - L{WebhookApplication}: JSON over HTTP C{POST} to C{--webhook URL}
   (C{docs/webhooks.rst});
 - L{DefaultApplication}: without a webhook, route each call to the client
   registered under the Request-URI's user part.
"""

import hashlib
import hmac
import json

import treq
from twisted.internet.defer import Deferred, maybeDeferred, succeed
from twisted.logger import Logger
from zope.interface import implementer

from linkrtc import __version__
from linkrtc.interfaces import IApplication, IOutgoingApplication
from linkrtc.logging import debugEnabled
from linkrtc.signalling.messages import isValidClientName

__all__ = [
    "WebhookApplication",
    "DefaultApplication",
    "WebhookError",
    "signBody",
    "verifySignature",
    "mapErrorStatus",
    "SIGNATURE_HEADER",
    "TIMESTAMP_HEADER",
    "EVENT_HEADER",
]

log = Logger()

SIGNATURE_HEADER = "X-LinkRTC-Signature"
TIMESTAMP_HEADER = "X-LinkRTC-Timestamp"
EVENT_HEADER = "X-LinkRTC-Event"

#: HTTP error statuses passed to the caller as they are (valid SIP finals).
PASSED_STATUSES = frozenset((403, 404, 480, 486, 603))

#: Largest webhook reply body read, in octets.
MAX_REPLY_SIZE = 65536


class WebhookError(Exception):
    """
    The webhook failed: no answer in time, connection failure, a 3xx or
    5xx status, a body that is not a JSON object, or an unknown action.
    """


def signBody(secret, timestamp, body):
    """
    Compute the signature header value.

    @param secret: the shared secret, C{str} (UTF-8) or C{bytes}.
    @param timestamp: the C{X-LinkRTC-Timestamp} value, C{str} (Unix
        seconds, decimal integer).
    @param body: the raw request body, C{bytes}.
    @return: C{"sha256=" + hex(HMAC-SHA256(secret, timestamp + "." + body))}.
    """
    if isinstance(secret, str):
        secret = secret.encode("utf-8")
    mac = hmac.new(secret, timestamp.encode("ascii") + b"." + body, hashlib.sha256)
    return "sha256=" + mac.hexdigest()


def verifySignature(secret, timestamp, body, signature):
    """
    Check a signature the way an application should (constant time).

    @return: C{True} if C{signature} (the header's C{str} value) matches.
    """
    if not isinstance(signature, str):
        return False
    return hmac.compare_digest(signBody(secret, timestamp, body), signature)


def mapErrorStatus(code):
    """
    The SIP status that refuses a call when the webhook answered the HTTP
    status C{code} (>= 300).

    @return: C{code} for 403, 404, 480, 486, 603; 503 for 3xx and 5xx;
        403 for any other status.
    """
    if code in PASSED_STATUSES:
        return code
    if 300 <= code < 400 or 500 <= code < 600:
        return 503
    return 403


def _replyObject(body):
    """
    @param body: a 2xx reply body, C{bytes}.
    @return: the JSON object it holds, a C{dict}.
    @raise WebhookError: not JSON, or not an object.
    """
    try:
        reply = json.loads(body.decode("utf-8"))
    except (UnicodeDecodeError, ValueError, RecursionError):
        raise WebhookError("reply is not valid JSON") from None
    if not isinstance(reply, dict):
        raise WebhookError("reply is not a JSON object")
    return reply


def _rejectDecision(reply):
    """
    @return: C{{"action": "reject", "status": S}} from a reply's C{status}
        (default 403).
    @raise WebhookError: for a status that is not an integer 400..699.
    """
    status = reply.get("status", 403)
    if isinstance(status, bool) or not isinstance(status, int) or not 400 <= status <= 699:
        raise WebhookError(f"reject with a bad status {str(status)[:20]!r}")
    return {"action": "reject", "status": status}


def _decision(body):
    """
    Turn a 2xx reply body into a decision dict.

    @raise WebhookError: not JSON, not an object, or a bad action.
    """
    reply = _replyObject(body)
    action = reply.get("action")
    if action == "route":
        client = reply.get("client")
        if not isValidClientName(client):
            raise WebhookError(f"route with a bad client name {str(client)[:80]!r}")
        return {"action": "route", "client": client}
    if action == "reject":
        return _rejectDecision(reply)
    raise WebhookError(f"unknown action {str(action)[:40]!r}")


#: Optional fields of an C{outgoing} route decision passed on as they are.
_OUTGOING_FIELDS = ("to", "caller_id", "max_ring_seconds", "max_answer_seconds")


def _outgoingDecision(body):
    """
    Turn a 2xx reply to C{outgoing} into a decision dict:
    C{{"action": "route", "trunk": NAME or None, ...}} or C{reject}.

    @raise WebhookError: not JSON, not an object, or a bad action or field.
    """
    reply = _replyObject(body)
    action = reply.get("action")
    if action == "route":
        trunk = reply.get("trunk")
        if trunk is not None and (not isinstance(trunk, str) or not trunk):
            raise WebhookError(f"route with a bad trunk name {str(trunk)[:80]!r}")
        decision = {"action": "route", "trunk": trunk}
        for key in _OUTGOING_FIELDS:
            if reply.get(key) is not None:
                decision[key] = reply[key]
        for key in ("to", "caller_id"):
            if key in decision and (not isinstance(decision[key], str) or not decision[key]):
                raise WebhookError(f"route with a bad {key} {str(decision[key])[:80]!r}")
        return decision
    if action == "reject":
        return _rejectDecision(reply)
    raise WebhookError(f"unknown action {str(action)[:40]!r}")


def _event(kind, info):
    """@return: C{{"event": kind}} with C{info}'s other items."""
    event = {"event": kind}
    event.update((k, v) for k, v in info.items() if k != "event")
    return event


def _statusDecision(result, parse):
    """
    The decision an application's answer gives: C{parse(body)} for a 2xx,
    a C{reject} with L{mapErrorStatus} for a 4xx or 6xx.

    @param result: C{(code, body)}.
    @raise WebhookError: for a 3xx or 5xx (the caller's failure path).
    """
    code, body = result
    if 200 <= code < 300:
        return parse(body)
    if 300 <= code < 400 or 500 <= code < 600:
        raise WebhookError(f"HTTP status {code}")
    return {"action": "reject", "status": mapErrorStatus(code)}


@implementer(IApplication, IOutgoingApplication)
class WebhookApplication:
    """
    Ask and tell the application over HTTP.

    Every event is one C{POST} of a JSON object to C{url} with
    C{Content-Type: application/json}, C{X-LinkRTC-Event: EVENT}, and when
    a secret is set C{X-LinkRTC-Timestamp} and C{X-LinkRTC-Signature}
    (L{signBody}).

    @param url: the webhook URL, C{str}.
    @param treq_client: what C{post(url, data=..., headers=...)} is called
        on: the C{treq} module (default), a L{treq.client.HTTPClient}, or
        a L{treq.testing.StubTreq}.
    @param clock: an L{IReactorTime} for timeouts and timestamps (the
        global reactor if C{None}, imported late).
    @param timeout: seconds to wait for a whole reply (default 5.0).
    @param secret: the HMAC secret (C{str} or C{bytes}), or C{None} to
        send no signature.
    @param failureStatus: the SIP status refusing an C{incoming} call when
        the webhook fails (default 503).
    """

    def __init__(self, url, treq_client=None, clock=None, timeout=5.0, secret=None,
                 failureStatus=503):
        if clock is None:
            from twisted.internet import reactor as clock
        self.url = url
        self.treq = treq_client if treq_client is not None else treq
        self.clock = clock
        self.timeout = timeout
        self.secret = secret
        self.failureStatus = failureStatus
        self._notifyQueues = {}

    def _post(self, event):
        """
        POST C{event} and read the reply within C{self.timeout} seconds.

        @return: L{Deferred} firing with C{(status, body bytes)}, failing
            with L{WebhookError} on timeout, connection failure or an
            over-long body.
        """
        body = json.dumps(event, separators=(",", ":"), ensure_ascii=False).encode("utf-8")
        headers = {
            b"Content-Type": [b"application/json"],
            b"User-Agent": [f"LinkRTC/{__version__}".encode("ascii")],
            EVENT_HEADER.encode("ascii"): [str(event.get("event", "")).encode("utf-8")],
        }
        if self.secret is not None:
            timestamp = str(int(self.clock.seconds()))
            headers[TIMESTAMP_HEADER.encode("ascii")] = [timestamp.encode("ascii")]
            headers[SIGNATURE_HEADER.encode("ascii")] = [
                signBody(self.secret, timestamp, body).encode("ascii")]

        d = maybeDeferred(self.treq.post, self.url, data=body, headers=headers,
                         allow_redirects=False)

        def read(response):
            chunks = []
            size = [0]

            def collect(data):
                size[0] += len(data)
                if size[0] > MAX_REPLY_SIZE:
                    raise WebhookError(f"reply larger than {MAX_REPLY_SIZE} octets")
                chunks.append(data)

            done = treq.collect(response, collect)
            done.addCallback(lambda _: (response.code, b"".join(chunks)))
            return done

        d.addCallback(read)
        # Our own timer rather than Deferred.addTimeout: the HTTP client
        # reports a cancelled request as ResponseNeverReceived, not
        # CancelledError, so a flag tells a timeout from other failures.
        timedOut = []

        def expire():
            timedOut.append(True)
            d.cancel()

        timer = self.clock.callLater(self.timeout, expire)

        def finished(result):
            if timer.active():
                timer.cancel()
            return result

        def failed(failure):
            if timedOut:
                raise WebhookError(f"no reply within {self.timeout} s")
            if failure.check(WebhookError):
                return failure
            raise WebhookError(f"request failed: {failure.getErrorMessage()}")

        d.addBoth(finished)
        d.addErrback(failed)
        return d

    def incoming(self, info):
        """
        POST C{{"event": "incoming", ...info}} and return the decision.

        @param info: C{dict} with C{call}, C{from}, C{to}, C{caller},
            C{callee}, C{headers}.
        @return: L{Deferred} firing with C{{"action": "route", "client":
            NAME}} or C{{"action": "reject", "status": INT}}; never fails
            (failures give C{reject} with C{self.failureStatus}, logged).
        """
        callId = info.get("call")
        d = self._post(_event("incoming", info))

        def answered(result):
            decision = _statusDecision(result, _decision)
            log.debug("webhook: call {call} -> {decision}", call=callId, decision=decision)
            return decision

        def failed(failure):
            failure.trap(WebhookError)
            log.warn("webhook incoming for call {call} failed: {why}; rejecting with {status}",
                     call=callId, why=failure.getErrorMessage(), status=self.failureStatus)
            return {"action": "reject", "status": self.failureStatus}

        def unexpected(failure):
            log.failure("webhook incoming for call {call}: unexpected fault", failure,
                        call=callId)
            return {"action": "reject", "status": self.failureStatus}

        d.addCallback(answered)
        d.addErrback(failed)
        d.addErrback(unexpected)
        return d

    def outgoing(self, info):
        """
        POST C{{"event": "outgoing", ...info}} and return the decision for
        a client's outbound call.

        @param info: C{dict} with C{call}, C{client}, C{to}, C{ref}.
        @return: L{Deferred} firing with C{{"action": "route", "trunk":
            NAME or None, ...}} or C{{"action": "reject", "status": INT}};
            never fails (as for L{incoming}: a failure rejects with
            C{self.failureStatus}, an HTTP error status is mapped by
            L{mapErrorStatus}).
        """
        callId = info.get("call")
        d = self._post(_event("outgoing", info))

        def answered(result):
            decision = _statusDecision(result, _outgoingDecision)
            log.info("webhook: outgoing call {call} -> {decision}", call=callId,
                     decision=decision)
            return decision

        def failed(failure):
            log.warn("webhook outgoing for call {call} failed: {why}; rejecting with {status}",
                     call=callId, why=failure.getErrorMessage(), status=self.failureStatus)
            return {"action": "reject", "status": self.failureStatus}

        d.addCallback(answered)
        d.addErrback(failed)
        return d

    def notify(self, event):
        """
        POST C{event} (a C{dict} with C{"event"}: C{state}, C{dtmf},
        C{cdr}, ...), fire and forget. Events of one call are sent one
        after another in the order given; failures and non-2xx statuses
        are logged.

        @return: a L{Deferred} firing with C{None} once this event was
            delivered or given up (never fails); callers may ignore it.
        """
        callId = event.get("call")
        done = Deferred()

        def send(_=None):
            d = self._post(event)

            def answered(result):
                code, _body = result
                if not 200 <= code < 300:
                    log.warn("webhook {event} for call {call} answered HTTP {code}",
                             event=event.get("event"), call=callId, code=code)

            def failed(failure):
                log.warn("webhook {event} for call {call} failed: {why}",
                         event=event.get("event"), call=callId, why=failure.getErrorMessage())

            d.addCallbacks(answered, failed)
            return d

        previous = self._notifyQueues.get(callId)
        if previous is None:
            current = send()
        else:
            current = Deferred()
            previous.addBoth(lambda _: send().chainDeferred(current))
        self._notifyQueues[callId] = current

        def finished(_):
            if self._notifyQueues.get(callId) is current:
                del self._notifyQueues[callId]
            done.callback(None)

        current.addBoth(finished)
        return done


def _userOf(uri):
    """@return: the user part of a C{sip:user@host} text, or C{None}."""
    if not isinstance(uri, str) or "@" not in uri:
        return None
    return uri.split(":", 1)[-1].split("@", 1)[0] or None


@implementer(IApplication, IOutgoingApplication)
class DefaultApplication:
    """
    The embedded application used without C{--webhook}: an INVITE goes to
    the client registered under its Request-URI's user part, or, for a
    DID of a trunk, to the client its C{route} table (or C{default_client})
    names; a client's outbound call goes through the first trunk.

    @param directory: an L{IClientDirectory}.
    @param trunks: the L{linkrtc.config.Trunk}s (for their C{route} tables).
    """

    def __init__(self, directory, trunks=()):
        self.directory = directory
        self.trunks = tuple(trunks)

    def trunkClient(self, info):
        """
        The client a trunk's tables name for an incoming call: the callee
        (Request-URI user, the DID) in a trunk's C{route}; or, when the
        Request-URI is a trunk's registered contact (its username), the To
        user in that C{route}, else the trunk's C{default_client}.

        @return: a client name, or C{None} when no trunk claims the call.
        """
        callee = info.get("callee")
        for trunk in self.trunks:
            if callee is not None and callee in trunk.route:
                return trunk.route[callee]
        toUser = _userOf(info.get("to"))
        for trunk in self.trunks:
            if trunk.username and callee == trunk.username:
                return trunk.route.get(toUser) or trunk.defaultClient
        return None

    def incoming(self, info):
        """
        @return: L{Deferred} firing with C{route} to C{info["callee"]} (or
            the client a trunk's tables name) if a connection is registered
            under it, else C{reject} 480 (Temporarily Unavailable); 404 if
            there is no usable callee.
        """
        callee = self.trunkClient(info) or info.get("callee")
        if not isValidClientName(callee):
            decision = {"action": "reject", "status": 404}
        elif self.directory.connectionsFor(callee):
            decision = {"action": "route", "client": callee}
        else:
            decision = {"action": "reject", "status": 480}
        if debugEnabled():
            log.debug("default routing: call {call} for {callee} -> {decision}",
                      call=info.get("call"), callee=callee, decision=decision)
        return succeed(decision)

    def outgoing(self, info):
        """@return: L{Deferred} firing with C{route} through the default (first) trunk."""
        return succeed({"action": "route", "trunk": None})

    def notify(self, event):
        """Log C{event} at debug level."""
        if debugEnabled():
            log.debug("event {event}", event=event)
        return succeed(None)
