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
import uuid

import treq
from twisted.internet.defer import maybeDeferred, succeed
from twisted.logger import Logger
from zope.interface import implementer

from linkrtc import _version, metrics
from linkrtc.api.delivery import NotificationQueue, RetryLater, StaleConnection, makeClients
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
    "EVENT_ID_HEADER",
    "newEventId",
]

log = Logger()

SIGNATURE_HEADER = "X-LinkRTC-Signature"
TIMESTAMP_HEADER = "X-LinkRTC-Timestamp"
EVENT_HEADER = "X-LinkRTC-Event"
EVENT_ID_HEADER = "X-LinkRTC-Event-Id"

#: HTTP statuses after which a notification is sent again (with 5xx).
RETRIED_STATUSES = frozenset((408, 429))

#: HTTP error statuses passed to the caller as they are (valid SIP finals).
PASSED_STATUSES = frozenset((403, 404, 480, 486, 603))

#: Largest webhook reply body read, in octets.
MAX_REPLY_SIZE = 65536


class WebhookError(Exception):
    """
    The webhook failed: no answer in time, connection failure, a 3xx or
    5xx status, a body that is not a JSON object, or an unknown action.
    """


def newEventId():
    """
    @return: a new C{event_id}: a random UUID (RFC 9562 version 4) as 36
        characters of lower-case hex and dashes, C{str}.
    """
    return str(uuid.uuid4())


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


#: Names one C{route} decision's C{clients} may list at most.
MAX_ROUTE_CLIENTS = 10


def _decision(body):
    """
    Turn a 2xx reply body into a decision dict.

    @raise WebhookError: not JSON, not an object, or a bad action.
    """
    reply = _replyObject(body)
    action = reply.get("action")
    if action == "route":
        client = reply.get("client")
        clients = reply.get("clients")
        if clients is not None:
            if not isinstance(clients, list) or not clients or len(clients) > MAX_ROUTE_CLIENTS:
                raise WebhookError(f"route with a bad clients list (1 to {MAX_ROUTE_CLIENTS} "
                                   f"names)")
            for name in clients:
                if not isValidClientName(name):
                    raise WebhookError(f"route with a bad client name {str(name)[:80]!r}")
            if client is None:
                client = clients[0]
        if not isValidClientName(client):
            raise WebhookError(f"route with a bad client name {str(client)[:80]!r}")
        if clients is not None:
            return {"action": "route", "client": client, "clients": list(clients)}
        return {"action": "route", "client": client}
    if action == "reject":
        return _rejectDecision(reply)
    if action == "api":
        return {"action": "api"}
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
    """
    @return: C{{"event": kind, "event_id": ID}} with C{info}'s other items
        (a new L{newEventId} unless C{info} has an C{event_id}).
    """
    event = {"event": kind}
    event.update((k, v) for k, v in info.items() if k != "event")
    event.setdefault("event_id", newEventId())
    return event


def _statusDecision(result, parse, kind):
    """
    The decision an application's answer gives: C{parse(body)} for a 2xx,
    a C{reject} with L{mapErrorStatus} for a 4xx or 6xx. A 3xx or 5xx
    counts C{metrics.WEBHOOK_FAILURES} with reason C{status}, a body
    C{parse} refuses with reason C{body}.

    @param result: C{(code, body)}.
    @param kind: the event (C{incoming}, C{outgoing}) for the metrics.
    @raise WebhookError: for a 3xx or 5xx, or a bad body (the caller's
        failure path).
    """
    code, body = result
    if 200 <= code < 300:
        try:
            return parse(body)
        except WebhookError:
            metrics.WEBHOOK_FAILURES.labels(event=kind, reason="body").inc()
            raise
    if 300 <= code < 400 or 500 <= code < 600:
        metrics.WEBHOOK_FAILURES.labels(event=kind, reason="status").inc()
        raise WebhookError(f"HTTP status {code}")
    return {"action": "reject", "status": mapErrorStatus(code)}


@implementer(IApplication, IOutgoingApplication)
class WebhookApplication:
    """
    Ask and tell the application over HTTP.

    Every event is one C{POST} of a JSON object to C{url} with
    C{Content-Type: application/json}, C{X-LinkRTC-Event: EVENT},
    C{X-LinkRTC-Event-Id: EVENT_ID} (the body's C{event_id}, unique per
    event, the same in every copy sent), and when a secret is set
    C{X-LinkRTC-Timestamp} and C{X-LinkRTC-Signature} (L{signBody}).

    A request that fails on a reused connection before any response byte
    (L{StaleConnection}) is sent again once on a fresh connection, within
    the same C{timeout}. C{state}, C{dtmf} and C{cdr} events that still
    fail go to a L{NotificationQueue} (back-off, bounded, given up after
    C{giveUpSeconds}); C{incoming} and C{outgoing} are never sent again
    after C{timeout}.

    @param url: the webhook URL, C{str}.
    @param treq_client: what C{post(url, data=..., headers=...)} is called
        on: a L{treq.client.HTTPClient} or a L{treq.testing.StubTreq}; by
        default the pooled client of L{makeClients}C{(clock)}.
    @param clock: an L{IReactorTime} for timeouts, back-off and timestamps
        (the global reactor if C{None}, imported late); also
        L{IReactorTCP} when C{treq_client} is C{None}.
    @param timeout: seconds to wait for a whole reply (default 5.0),
        including the one retry on a fresh connection.
    @param secret: the HMAC secret (C{str} or C{bytes}), or C{None} to
        send no signature.
    @param failureStatus: the SIP status refusing an C{incoming} call when
        the webhook fails (default 503).
    @param fresh_client: the client for the retry after L{StaleConnection}
        (a new connection per request); by default L{makeClients}'s fresh
        client, or C{treq_client} when that is given.
    @param queueSize: most notifications held at once (default 1000).
    @param giveUpSeconds: seconds after which an undelivered notification
        is dropped (default 300).
    @param userAgent: the C{User-Agent} header, ASCII C{str} (default
        C{LinkRTC}, no version; C{--server-header}).
    """

    def __init__(self, url, treq_client=None, clock=None, timeout=5.0, secret=None,
                 failureStatus=503, fresh_client=None, queueSize=1000, giveUpSeconds=300.0,
                 userAgent=_version.PRODUCT):
        if clock is None:
            from twisted.internet import reactor as clock
        self._pool = None
        if treq_client is None:
            treq_client, pooledFresh, self._pool = makeClients(clock)
            fresh_client = fresh_client if fresh_client is not None else pooledFresh
        self.url = url
        self.treq = treq_client
        self.fresh = fresh_client if fresh_client is not None else treq_client
        self.clock = clock
        self.timeout = timeout
        self.secret = secret
        self.failureStatus = failureStatus
        self.userAgent = userAgent
        self.queue = NotificationQueue(clock, self._deliver, size=queueSize,
                                       giveUpSeconds=giveUpSeconds)

    def close(self):
        """
        Stop at shutdown: drop the notifications waiting for a retry
        (L{NotificationQueue.stop}) and close the pooled connections.

        @return: L{Deferred} firing when the pooled connections are closed.
        """
        self.queue.stop()
        if self._pool is None:
            return succeed(None)
        return self._pool.closeCachedConnections()

    def _headers(self, event, body):
        """
        @return: the request headers for C{event} (a C{dict}) whose JSON
            is C{body} (C{bytes}), signed now when a secret is set.
        """
        headers = {
            b"Content-Type": [b"application/json"],
            b"User-Agent": [self.userAgent.encode("ascii")],
            EVENT_HEADER.encode("ascii"): [str(event.get("event", "")).encode("utf-8")],
            EVENT_ID_HEADER.encode("ascii"): [str(event.get("event_id", "")).encode("utf-8")],
        }
        if self.secret is not None:
            timestamp = str(int(self.clock.seconds()))
            headers[TIMESTAMP_HEADER.encode("ascii")] = [timestamp.encode("ascii")]
            headers[SIGNATURE_HEADER.encode("ascii")] = [
                signBody(self.secret, timestamp, body).encode("ascii")]
        return headers

    def _post(self, event):
        """
        POST C{event} and read the reply within C{self.timeout} seconds;
        send it once more on a fresh connection after L{StaleConnection}.

        Counts C{metrics.WEBHOOK_LATENCY} for a reply,
        C{metrics.WEBHOOK_FAILURES} (C{timeout}, C{connection}, C{body})
        when the request fails, and C{metrics.WEBHOOK_RETRIES} (only) for
        the fresh-connection retry.

        @param event: the C{dict} to send, with C{event} and C{event_id}.
        @return: L{Deferred} firing with C{(status, body bytes)}, failing
            with L{WebhookError} on timeout, connection failure or an
            over-long body.
        """
        kind = str(event.get("event", ""))
        body = json.dumps(event, separators=(",", ":"), ensure_ascii=False).encode("utf-8")

        def attempt(client):
            started = self.clock.seconds()
            sent = maybeDeferred(client.post, self.url, data=body,
                                 headers=self._headers(event, body), allow_redirects=False)

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

            def replied(result):
                metrics.WEBHOOK_LATENCY.labels(event=kind).observe(
                    max(0.0, self.clock.seconds() - started))
                return result

            return sent.addCallback(read).addCallback(replied)

        # Our own timer rather than Deferred.addTimeout: the HTTP client
        # reports a cancelled request as ResponseNeverReceived, not
        # CancelledError, so a flag tells a timeout from other failures.
        timedOut = []

        def stale(failure):
            if timedOut or not failure.check(StaleConnection):
                return failure
            # Not a failure (the retry usually succeeds): counted as a retry.
            metrics.WEBHOOK_RETRIES.labels(event=kind).inc()
            log.debug("webhook {event} event {id}: the reused connection was closed ({why}); "
                     "sending again on a new connection", event=kind,
                     id=event.get("event_id"), why=failure.getErrorMessage())
            return attempt(self.fresh)

        d = attempt(self.treq)
        d.addErrback(stale)

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
                metrics.WEBHOOK_FAILURES.labels(event=kind, reason="timeout").inc()
                raise WebhookError(f"no reply within {self.timeout} s")
            if failure.check(WebhookError):
                metrics.WEBHOOK_FAILURES.labels(event=kind, reason="body").inc()
                return failure
            metrics.WEBHOOK_FAILURES.labels(event=kind, reason="connection").inc()
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
            decision = _statusDecision(result, _decision, "incoming")
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
            decision = _statusDecision(result, _outgoingDecision, "outgoing")
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
        C{cdr}, ...), fire and forget, through C{self.queue}: events of one
        call are sent one after another in the order given, and one that
        fails (no reply, connection failure, HTTP 5xx, 408 or 429) is sent
        again with back-off until delivered or given up (then counted in
        C{metrics.WEBHOOK_DROPPED} and logged). Any other non-2xx status is
        logged and not sent again.

        @param event: the event; not changed. What is sent is a copy with
            an C{event_id} (L{newEventId}) unless it has one.
        @return: a L{Deferred} firing with C{None} once this event was
            delivered or given up (never fails); callers may ignore it.
        """
        return self.queue.put(_event(event.get("event"), event)).addCallback(lambda _: None)

    def _deliver(self, event):
        """
        Send one notification (the L{NotificationQueue}'s C{send}).

        @return: L{Deferred} firing when done with, failing with
            L{RetryLater} when worth sending again.
        """
        d = self._post(event)

        def answered(result):
            code, _body = result
            if 200 <= code < 300:
                return
            kind = str(event.get("event"))
            metrics.WEBHOOK_FAILURES.labels(event=kind, reason="status").inc()
            if code >= 500 or code in RETRIED_STATUSES:
                raise RetryLater(f"HTTP status {code}")
            log.warn("webhook {event} event {id} of call {call} answered HTTP {code}; "
                     "not sent again", event=kind, id=event.get("event_id"),
                     call=event.get("call"), code=code)

        def failed(failure):
            failure.trap(WebhookError)
            raise RetryLater(failure.getErrorMessage())

        d.addCallbacks(answered, failed)
        return d


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
        if not self.trunks:
            return None  # fast path: no trunk, no table to read
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
            the client a trunk's tables name) if a connection or a SIP
            contact is registered under it, else C{reject} 480 (Temporarily Unavailable); 404 if
            there is no usable callee.
        """
        callee = self.trunkClient(info) or info.get("callee")
        reachable = getattr(self.directory, "isReachable", self.directory.connectionsFor)
        if not isValidClientName(callee):
            decision = {"action": "reject", "status": 404}
        elif reachable(callee):
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
