# -*- test-case-name: linkrtc.api.test.test_delivery -*-
"""
Delivering webhook requests without losing them (docs/webhooks.rst,
"Delivery and retries"):

 - L{WebhookConnectionPool}: an HTTP connection pool that tells a request
   that failed on a I{reused} (pooled) connection before any response
   byte (L{StaleConnection}) from other failures. A web server that closes
   a connection after its reply without C{Connection: close} (Python's
   C{http.server}, servers with a short keep-alive) leaves such dead
   connections in the pool, and Twisted retries only idempotent requests
   on them (twisted/twisted#7843), never a C{POST}.
 - L{makeClients}: the pooled client and the client whose every request
   opens a fresh connection, for the one retry after L{StaleConnection}.
 - L{NotificationQueue}: the bounded queue that sends C{state}, C{dtmf}
   and C{cdr} events in order per call and sends a failed one again with
   exponential back-off until it is delivered or given up.
"""

import weakref

from treq.client import HTTPClient
from twisted.internet.defer import CancelledError, Deferred, maybeDeferred, succeed
from twisted.logger import Logger
from twisted.web.client import (
    Agent,
    HTTPConnectionPool,
    RequestNotSent,
    RequestTransmissionFailed,
    ResponseNeverReceived,
    _HTTP11ClientFactory,
)

from linkrtc import metrics

__all__ = [
    "StaleConnection",
    "RetryLater",
    "neverAnswered",
    "WebhookConnectionPool",
    "makeClients",
    "NotificationQueue",
]

log = Logger()


class StaleConnection(Exception):
    """
    A request failed on a reused (pooled) connection before any byte of a
    response arrived: the server had closed the connection. Safe to send
    again once on a fresh connection (the application dedupes by
    C{event_id} should it have seen the first copy).

    @ivar reasons: the L{Failure}s the HTTP client gave.
    """

    def __init__(self, reasons):
        super().__init__(", ".join(r.getErrorMessage() for r in reasons) or "connection lost")
        self.reasons = reasons


class RetryLater(Exception):
    """
    Raised (as a failure) by a L{NotificationQueue}'s C{send} function: the
    event was not delivered and is worth sending again later.
    """


def neverAnswered(failure):
    """
    @param failure: a L{Failure} from an HTTP client request.
    @return: C{True} when the request failed before any response byte
        arrived (L{RequestNotSent}, L{RequestTransmissionFailed} or
        L{ResponseNeverReceived}) and not because it was cancelled.
    """
    error = failure.value
    if not isinstance(error, (RequestNotSent, RequestTransmissionFailed, ResponseNeverReceived)):
        return False
    reasons = getattr(error, "reasons", ())
    return not any(reason.check(CancelledError) for reason in reasons)


class _ReusedConnection:
    """
    A pooled L{HTTP11ClientProtocol} handed out again: a request that fails
    on it before any response byte fails with L{StaleConnection}.
    """

    def __init__(self, protocol):
        self._protocol = protocol

    def request(self, request):
        """Send C{request} on the wrapped connection; see the class docstring."""
        d = self._protocol.request(request)

        def failed(failure):
            if neverAnswered(failure):
                raise StaleConnection(list(getattr(failure.value, "reasons", ())))
            return failure

        return d.addErrback(failed)

    def __getattr__(self, name):
        return getattr(self._protocol, name)


class _QuietClientFactory(_HTTP11ClientFactory):
    """Twisted's per-connection HTTP client factory without its start/stop log lines."""

    noisy = False


class QuietConnectionPool(HTTPConnectionPool):
    """An L{HTTPConnectionPool} that does not log every connection it opens and closes."""

    _factory = _QuietClientFactory


class WebhookConnectionPool(QuietConnectionPool):
    """
    A persistent L{HTTPConnectionPool} whose reused connections report a
    request lost before any response byte as L{StaleConnection} (Twisted's
    own automatic retry is off: it never applies to C{POST}).

    @param reactor: the reactor (L{IReactorTCP}, L{IReactorTime}).
    """

    retryAutomatically = False

    def __init__(self, reactor):
        super().__init__(reactor, persistent=True)
        self._used = weakref.WeakSet()

    def getConnection(self, key, endpoint):
        """
        @return: L{Deferred} firing with a connection for one request: a new
            one as it is, a reused one wrapped (L{StaleConnection}).
        """
        d = super().getConnection(key, endpoint)

        def got(connection):
            if connection in self._used:
                return _ReusedConnection(connection)
            self._used.add(connection)
            return connection

        return d.addCallback(got)


def makeClients(reactor):
    """
    The two HTTP clients a webhook needs.

    @param reactor: the reactor (L{IReactorTCP}, L{IReactorTime}).
    @return: C{(pooled, fresh, pool)}: two L{treq.client.HTTPClient}s,
        C{pooled} keeping connections open in C{pool} (a
        L{WebhookConnectionPool}), and C{fresh} opening a new connection
        for every request (the retry after L{StaleConnection}).
    """
    pool = WebhookConnectionPool(reactor)
    pooled = HTTPClient(Agent(reactor, pool=pool))
    fresh = HTTPClient(Agent(reactor, pool=QuietConnectionPool(reactor, persistent=False)))
    return pooled, fresh, pool


class _Held:
    """One event in a L{NotificationQueue}: its dict, deadline and attempts."""

    __slots__ = ("event", "deadline", "attempts", "done")

    def __init__(self, event, deadline):
        self.event = event
        self.deadline = deadline
        self.attempts = 0
        self.done = Deferred()


class NotificationQueue:
    """
    Fire-and-forget events (C{state}, C{dtmf}, C{cdr}), sent in order per
    call, each sent again after a failure with exponential back-off.

    An event is held from L{put} until it is delivered or dropped. At most
    C{size} events are held at once; one that arrives when the queue is
    full is dropped. An event still undelivered C{giveUpSeconds} after
    L{put} is dropped after its failed attempt (every event is attempted at
    least once). A drop counts C{metrics.WEBHOOK_DROPPED} and logs one
    line; C{metrics.WEBHOOK_QUEUE} is the number of events held.

    @param clock: an L{IReactorTime} for the back-off timers.
    @param send: C{send(event)} returns a L{Deferred} that fires when the
        event is done with (delivered, or refused for good), or fails with
        L{RetryLater} to have it sent again.
    @param size: most events held, C{int} >= 1.
    @param giveUpSeconds: seconds after L{put} when an event is dropped.
    @param firstDelay: seconds before the first retry; each next waits
        twice as long, up to C{maxDelay} seconds.
    """

    def __init__(self, clock, send, size=1000, giveUpSeconds=300.0, firstDelay=1.0,
                 maxDelay=60.0):
        self.clock = clock
        self.send = send
        self.size = size
        self.giveUpSeconds = giveUpSeconds
        self.firstDelay = firstDelay
        self.maxDelay = maxDelay
        self._held = 0
        self._tails = {}
        self._timers = {}
        self._stopped = False

    def __len__(self):
        """@return: the number of events held."""
        return self._held

    def put(self, event):
        """
        Hold C{event} (a C{dict} with C{event}, C{call}, C{event_id}) and
        send it after the earlier events of the same call.

        @return: L{Deferred} firing with C{True} once delivered (or refused
            for good by the application), C{False} if dropped; never fails.
        """
        kind = event.get("event")
        if self._held >= self.size:
            self._drop(kind, event, f"queue full ({self.size} events)")
            return succeed(False)
        held = _Held(event, self.clock.seconds() + self.giveUpSeconds)
        self._held += 1
        metrics.WEBHOOK_QUEUE.inc()
        callId = event.get("call")
        previous = self._tails.get(callId)
        self._tails[callId] = held.done
        if previous is None:
            self._attempt(held)
        else:
            previous.addBoth(lambda _: self._attempt(held))

        def finished(result):
            self._held -= 1
            metrics.WEBHOOK_QUEUE.dec()
            if self._tails.get(callId) is held.done:
                del self._tails[callId]
            return result

        held.done.addBoth(finished)
        result = Deferred()
        held.done.addBoth(lambda outcome: result.callback(outcome))
        return result

    def _attempt(self, held):
        if self._stopped:
            self._drop(held.event.get("event"), held.event, "shutting down")
            held.done.callback(False)
            return
        held.attempts += 1
        d = maybeDeferred(self.send, held.event)

        def failed(failure):
            if not failure.check(RetryLater):
                log.failure("webhook {event} event {id}: unexpected fault", failure,
                            event=held.event.get("event"), id=held.event.get("event_id"))
                return True
            now = self.clock.seconds()
            if now >= held.deadline:
                self._drop(held.event.get("event"), held.event,
                           f"undelivered after {self.giveUpSeconds:g} s and {held.attempts} "
                           f"attempts ({failure.getErrorMessage()})")
                return False
            delay = min(self.firstDelay * 2 ** (held.attempts - 1), self.maxDelay,
                        held.deadline - now)
            (log.warn if held.attempts == 1 else log.info)(
                "webhook {event} event {id} of call {call} failed (attempt {attempts}): "
                "{why}; next attempt in {delay:.3g} s", event=held.event.get("event"),
                id=held.event.get("event_id"), call=held.event.get("call"),
                attempts=held.attempts, why=failure.getErrorMessage(), delay=delay)
            self._schedule(held, delay)
            return None

        def outcome(result):
            if result is None:
                return
            held.done.callback(result)

        d.addCallbacks(lambda _: True, failed)
        d.addCallback(outcome)

    def _schedule(self, held, delay):
        def again():
            del self._timers[timer]
            metrics.WEBHOOK_RETRIES.labels(event=str(held.event.get("event"))).inc()
            self._attempt(held)

        timer = self.clock.callLater(delay, again)
        self._timers[timer] = held

    def _drop(self, kind, event, why):
        metrics.WEBHOOK_DROPPED.labels(event=str(kind)).inc()
        log.warn("webhook: dropping {event} event {id} of call {call}: {why}",
                 event=kind, id=event.get("event_id"), call=event.get("call"), why=why)

    def stop(self):
        """
        Cancel the back-off timers (at shutdown): the events waiting for a
        retry are dropped (counted and logged), and so, in turn, are the
        later events of their calls.
        """
        self._stopped = True
        while self._timers:
            timer, held = self._timers.popitem()
            timer.cancel()
            self._drop(held.event.get("event"), held.event, "shutting down")
            held.done.callback(False)
