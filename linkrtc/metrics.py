# -*- test-case-name: linkrtc.test.test_metrics -*-
"""
LinkRTC's Prometheus metrics, built with C{prometheus_client}.

Every metric lives in one registry, L{REGISTRY}, served at C{GET /metrics}
(docs/operations.rst lists them). Names are C{linkrtc_*} with the unit in
the name (C{_seconds}, C{_total}). Counters are module-level objects that
the layers increment; gauges that mirror a table (active calls, registered
clients, RTP ports in use) are read when scraped, through L{GaugeSource}s
that the service binds with L{bindGauges}.

Labels take values from small, fixed sets: a SIP method outside
L{KNOWN_METHODS} is counted as C{"other"} (L{methodLabel}), so a peer
cannot grow the registry by inventing methods.
"""

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram

REGISTRY = CollectorRegistry(auto_describe=True)

#: SIP methods counted under their own name; others are C{"other"}.
KNOWN_METHODS = frozenset((
    "INVITE", "ACK", "BYE", "CANCEL", "OPTIONS", "REGISTER", "INFO", "PRACK",
    "UPDATE", "REFER", "NOTIFY", "SUBSCRIBE", "MESSAGE", "PUBLISH",
))


def methodLabel(method):
    """
    @param method: a SIP method, C{str}.
    @return: C{method} when in L{KNOWN_METHODS}, else C{"other"}.
    """
    return method if method in KNOWN_METHODS else "other"


# Calls.
CALLS = Counter(
    "linkrtc_calls_total", "Calls ended, by direction (inbound/outbound) and outcome "
    "(answered, refused, cancelled, unanswered, failed).",
    ["direction", "outcome"], registry=REGISTRY)
CALLS_ACTIVE = Gauge(
    "linkrtc_calls_active", "Calls not yet ended.", registry=REGISTRY)
CALL_TRANSFERS = Counter(
    "linkrtc_call_transfers_total", "Call transfers, by kind (blind, attended, replaces, "
    "refer_out) and result (done, failed, refused).", ["kind", "result"], registry=REGISTRY)

# SIP.
SIP_REQUESTS = Counter(
    "linkrtc_sip_requests_total", "SIP requests by direction (in/out) and method.",
    ["direction", "method"], registry=REGISTRY)
SIP_RESPONSES = Counter(
    "linkrtc_sip_responses_total", "SIP responses by direction (in/out), method and status.",
    ["direction", "method", "status"], registry=REGISTRY)
SIP_TRANSACTIONS = Gauge(
    "linkrtc_sip_transactions", "SIP transactions in the transaction table, by kind "
    "(client, server).", ["kind"], registry=REGISTRY)
SIP_REFUSED = Counter(
    "linkrtc_sip_refused_total",
    "SIP requests refused or dropped by admission and flood control, by reason.",
    ["reason"], registry=REGISTRY)
SIP_SESSION_TIMER_ENDS = Counter(
    "linkrtc_sip_session_timer_ends_total",
    "Dialogs ended with BYE by their session timer (RFC 4028), by reason "
    "(expired, refresh_failed).", ["reason"], registry=REGISTRY)
SIP_PRACK_TIMEOUTS = Counter(
    "linkrtc_sip_prack_timeouts_total",
    "INVITEs rejected because a reliable provisional response had no PRACK "
    "(RFC 3262).", registry=REGISTRY)

# Clients.
WEBSOCKET_CONNECTIONS = Gauge(
    "linkrtc_websocket_connections", "Open client WebSocket connections.", registry=REGISTRY)
CLIENTS_REGISTERED = Gauge(
    "linkrtc_clients_registered", "Client names registered in the directory.",
    registry=REGISTRY)
SIP_REGISTRATIONS = Counter(
    "linkrtc_sip_registrations_total", "REGISTER requests answered by the registrar, by "
    "result (ok, challenged, refused, invalid, too_brief).", ["result"], registry=REGISTRY)
SIP_MESSAGES = Counter(
    "linkrtc_sip_messages_total", "Instant messages (SIP MESSAGE / client message) relayed, by "
    "direction (to_client, to_sip) and result (delivered, refused).",
    ["direction", "result"], registry=REGISTRY)
CLUSTER_INVITES = Counter(
    "linkrtc_cluster_invites_total", "INVITEs for a client with no connection on this node, "
    "by where the cluster directory sent them (redirected, local).",
    ["result"], registry=REGISTRY)
CLUSTER_STORE_ERRORS = Counter(
    "linkrtc_cluster_store_errors_total", "Failed operations on the cluster directory's "
    "Redis, by operation (publish, refresh, withdraw, close, locate).", ["operation"],
    registry=REGISTRY)

# Webhook.
WEBHOOK_LATENCY = Histogram(
    "linkrtc_webhook_request_duration_seconds", "Webhook request time, by event, "
    "from the POST to the reply.", ["event"], registry=REGISTRY,
    buckets=(0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10))
WEBHOOK_FAILURES = Counter(
    "linkrtc_webhook_failures_total", "Webhook requests that failed, by event and reason "
    "(timeout, connection, status, body).", ["event", "reason"], registry=REGISTRY)
WEBHOOK_RETRIES = Counter(
    "linkrtc_webhook_retries_total", "Webhook requests sent again, by event.", ["event"],
    registry=REGISTRY)
WEBHOOK_DROPPED = Counter(
    "linkrtc_webhook_events_dropped_total", "Webhook events given up (queue full or "
    "give-up time passed), by event.", ["event"], registry=REGISTRY)
WEBHOOK_QUEUE = Gauge(
    "linkrtc_webhook_queue_events", "Webhook events waiting to be sent again.",
    registry=REGISTRY)

# Media.
MEDIA_PACKETS = Counter(
    "linkrtc_media_packets_total", "RTP packets of ended calls, by media mode and "
    "direction (received, sent).", ["mode", "direction"], registry=REGISTRY)
MEDIA_PACKETS_LOST = Counter(
    "linkrtc_media_packets_lost_total", "RTP packets lost (sequence gaps) in ended calls, "
    "by media mode.", ["mode"], registry=REGISTRY)
RTP_PORTS_IN_USE = Gauge(
    "linkrtc_rtp_ports_in_use", "UDP ports of the RTP range held by calls.", registry=REGISTRY)
RTP_REJECTED = Counter(
    "linkrtc_rtp_rejected_packets_total", "RTP packets dropped because they came from an "
    "address the call does not expect (strict RTP).", registry=REGISTRY)
SRTP_AUTH_FAILURES = Counter(
    "linkrtc_srtp_auth_failures_total", "SIP-side SRTP and SRTCP packets (SDES, RFC 4568) "
    "dropped because they failed authentication or the replay check.", registry=REGISTRY)
VIDEO_PACKETS = Counter(
    "linkrtc_video_packets_total", "Video RTP packets relayed (never decoded) in ended calls, "
    "by direction (to_browser, to_sip).", ["direction"], registry=REGISTRY)

# Trunks.
TRUNK_REGISTERED = Gauge(
    "linkrtc_trunk_registered", "1 while the trunk's registration is up, else 0.",
    ["trunk"], registry=REGISTRY)

# Operations and security.
DRAINING = Gauge(
    "linkrtc_draining", "1 while the switch drains (takes no new calls).", registry=REGISTRY)
SECURITY_EVENTS = Counter(
    "linkrtc_security_events_total", "Requests refused for security reasons, by event.",
    ["event"], registry=REGISTRY)


def bindGauges(**sources):
    """
    Make gauges read their value from the running switch when scraped.

    @param sources: gauge name (C{calls_active}, C{websocket_connections},
        C{clients_registered}, C{rtp_ports_in_use}, C{draining},
        C{sip_transactions_client}, C{sip_transactions_server}) to a
        zero-argument callable returning a number.
    @raise KeyError: for an unknown name.
    """
    gauges = {
        "calls_active": CALLS_ACTIVE,
        "websocket_connections": WEBSOCKET_CONNECTIONS,
        "clients_registered": CLIENTS_REGISTERED,
        "rtp_ports_in_use": RTP_PORTS_IN_USE,
        "draining": DRAINING,
        "sip_transactions_client": SIP_TRANSACTIONS.labels(kind="client"),
        "sip_transactions_server": SIP_TRANSACTIONS.labels(kind="server"),
    }
    for name, source in sources.items():
        gauges[name].set_function(source)
