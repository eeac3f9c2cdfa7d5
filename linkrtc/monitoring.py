# -*- test-case-name: linkrtc.test.test_monitoring -*-
"""
What an operator watches: the HTTP resources C{/healthz}, C{/readyz} and
C{/metrics}, and the code that feeds the metrics of L{linkrtc.metrics}
from the running switch (SIP messages, ended calls, live tables).

docs/operations.rst describes every endpoint and metric.
"""

import json

from prometheus_client.exposition import choose_encoder
from twisted.logger import Logger
from twisted.web.resource import Resource

from linkrtc import metrics
from linkrtc.sip.transaction import ClientTransaction

log = Logger()


# -- SIP messages ------------------------------------------------------------------


class SIPMessageCounter:
    """
    A L{linkrtc.sip.transport.SIPTransportLayer} observer counting every SIP
    message parsed in or sent out: requests by direction and method
    (C{linkrtc_sip_requests_total}), responses by direction, the method of
    their CSeq and status (C{linkrtc_sip_responses_total}). Retransmissions
    count: each is a message on the wire.
    """

    def __init__(self):
        # The labelled children, cached: labels() costs more than inc().
        self._requests = {}
        self._responses = {}

    def __call__(self, direction, message, data, address):
        method = getattr(message, "method", None)
        if method is not None:
            key = (direction, method)
            child = self._requests.get(key)
            if child is None:
                child = metrics.SIP_REQUESTS.labels(direction, metrics.methodLabel(method))
                self._requests[key] = child
            child.inc()
            return
        status = getattr(message, "status", None)
        if not isinstance(status, int):
            return
        try:
            method = message.cseq.method
        except Exception:
            method = "other"
        key = (direction, method, status)
        child = self._responses.get(key)
        if child is None:
            child = metrics.SIP_RESPONSES.labels(direction, metrics.methodLabel(method),
                                                 str(status))
            self._responses[key] = child
        child.inc()


# -- ended calls ---------------------------------------------------------------------

#: CDR C{call_dir} to the C{direction} label.
DIRECTIONS = {"in": "inbound", "out": "outbound"}


def callOutcome(cdr):
    """
    Sort an ended call into an outcome for C{linkrtc_calls_total}.

    @param cdr: the call's CDR C{dict} (C{answer_time}, C{cause}).
    @return: C{"answered"} (it was answered, however it ended),
        C{"cancelled"} (487: the caller gave up), C{"unanswered"} (408,
        480: nobody answered in time or nobody could be reached),
        C{"refused"} (another 4xx or a 6xx: declined, busy, forbidden,
        not found) or C{"failed"} (5xx and anything else).
    """
    if cdr.get("answer_time") is not None:
        return "answered"
    cause = cdr.get("cause")
    if not isinstance(cause, int) or isinstance(cause, bool):
        return "failed"
    if cause == 487:
        return "cancelled"
    if cause in (408, 480):
        return "unanswered"
    if 400 <= cause < 500 or 600 <= cause < 700:
        return "refused"
    return "failed"


#: The C{linkrtc_calls_total} children by (direction, outcome), made once:
#: C{labels()} costs more than C{inc()} (both label sets are small and fixed).
_CALL_COUNTERS = {}


def _callCounter(direction, outcome):
    key = (direction, outcome)
    child = _CALL_COUNTERS.get(key)
    if child is None:
        child = _CALL_COUNTERS[key] = metrics.CALLS.labels(direction, outcome)
    return child


def _legs(media):
    return [leg for leg in (media.get("sip"), media.get("webrtc")) if isinstance(leg, dict)]


def countCall(call, mediaFactory=None):
    """
    Count an ended call: C{linkrtc_calls_total} by direction and outcome,
    and its media packets (both legs, received and sent) and losses by
    media mode. Called by the call manager when a call is released, with
    the call's CDR built. Never raises.

    @param call: the released L{linkrtc.call.call.Call} (its C{cdr}).
    @param mediaFactory: the L{linkrtc.interfaces.IMediaFactory}; its
        C{name} is the mode label when the session no longer names one
        (a held bridge call).
    """
    try:
        cdr = call.cdr if isinstance(getattr(call, "cdr", None), dict) else call.buildCDR()
        direction = DIRECTIONS.get(cdr.get("call_dir"), "inbound")
        _callCounter(direction, callOutcome(cdr)).inc()
        media = cdr.get("media") or {}
        if not isinstance(media, dict):
            return
        legs = _legs(media)
        if not legs:
            return
        mode = media.get("mode") or getattr(mediaFactory, "name", None) or "unknown"
        received = sum(int(leg.get("packetsReceived") or 0) for leg in legs)
        sent = sum(int(leg.get("packetsSent") or 0) for leg in legs)
        lost = sum(max(0, int(leg.get("packetsLost") or 0)) for leg in legs)
        metrics.MEDIA_PACKETS.labels(mode, "received").inc(received)
        metrics.MEDIA_PACKETS.labels(mode, "sent").inc(sent)
        metrics.MEDIA_PACKETS_LOST.labels(mode).inc(lost)
    except Exception:
        log.failure("call {call_id}: not counted in the metrics",
                    call_id=getattr(call, "id", None))


# -- live tables ---------------------------------------------------------------------


def _transactionCount(transactionLayer, kind):
    client = sum(1 for tx in transactionLayer.activeTransactions()
                 if isinstance(tx, ClientTransaction))
    if kind == "client":
        return client
    return len(transactionLayer.activeTransactions()) - client


def bindSwitchGauges(manager, transactionLayer, directory, signalling, mediaFactory,
                     admission):
    """
    Make the table gauges of L{linkrtc.metrics} read the running switch
    when scraped (L{metrics.bindGauges}).

    @param manager: the L{linkrtc.call.manager.CallManager} (C{calls}).
    @param transactionLayer: the L{linkrtc.sip.transaction.TransactionLayer}.
    @param directory: the L{linkrtc.signalling.directory.ClientDirectory}.
    @param signalling: the L{linkrtc.signalling.protocol.SignallingFactory}
        (C{openConnections}).
    @param mediaFactory: the media factory; RTP ports are those of its
        C{allocator} (bridge mode), 0 without one.
    @param admission: the L{linkrtc.drain.Admission}.
    """
    allocator = getattr(mediaFactory, "allocator", None)
    metrics.bindGauges(
        calls_active=lambda: len(manager.calls),
        websocket_connections=lambda: len(signalling.openConnections),
        clients_registered=lambda: len(directory.names()),
        rtp_ports_in_use=lambda: len(allocator.inUse) if allocator is not None else 0,
        draining=lambda: 1 if admission.draining else 0,
        sip_transactions_client=lambda: _transactionCount(transactionLayer, "client"),
        sip_transactions_server=lambda: _transactionCount(transactionLayer, "server"),
    )


# -- HTTP resources ----------------------------------------------------------------------


def _noStore(request, contentType):
    request.setHeader(b"Content-Type", contentType)
    request.setHeader(b"Cache-Control", b"no-store")


class HealthResource(Resource):
    """C{GET /healthz}: 200 C{ok} while the process runs its event loop (liveness)."""

    isLeaf = True

    def render_GET(self, request):
        _noStore(request, b"text/plain; charset=utf-8")
        return b"ok\n"


class ReadinessResource(Resource):
    """
    C{GET /readyz}: whether LinkRTC should get calls (readiness). 200 with
    C{{"ready": true, "reasons": []}}, or 503 with C{"ready": false} and the
    reasons (C{str}s): C{"draining"}, C{"SIP not listening"}, C{"trunk NAME
    STATE"} for each trunk that should be registered and is not.
    """

    isLeaf = True

    def __init__(self, admission, sipService, trunkService):
        """
        @param admission: the L{linkrtc.drain.Admission}.
        @param sipService: the L{linkrtc.service.SIPService} (C{listening}).
        @param trunkService: the L{linkrtc.trunks.TrunkService}.
        """
        super().__init__()
        self.admission = admission
        self.sipService = sipService
        self.trunkService = trunkService

    def reasons(self):
        """@return: C{list} of C{str}, why LinkRTC is not ready (empty when it is)."""
        reasons = []
        if self.admission.draining:
            reasons.append("draining")
        if not getattr(self.sipService, "listening", False):
            reasons.append("SIP not listening")
        for name, state in self.trunkService.unregistered():
            reasons.append(f"trunk {name} {state}")
        return reasons

    def render_GET(self, request):
        _noStore(request, b"application/json")
        reasons = self.reasons()
        if reasons:
            request.setResponseCode(503)
        return json.dumps({"ready": not reasons, "reasons": reasons}).encode("utf-8")


class MetricsResource(Resource):
    """
    C{GET /metrics}: the registry of L{linkrtc.metrics} in Prometheus text
    format (or OpenMetrics when the scraper asks for it in C{Accept}), from
    C{prometheus_client}'s exposition.
    """

    isLeaf = True

    def __init__(self, registry=None):
        super().__init__()
        self.registry = registry if registry is not None else metrics.REGISTRY

    def render_GET(self, request):
        accept = (request.getHeader(b"accept") or b"").decode("latin-1")
        encoder, contentType = choose_encoder(accept)
        _noStore(request, contentType.encode("latin-1"))
        return encoder(self.registry)
