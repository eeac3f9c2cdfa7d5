"""
Tests for L{linkrtc.monitoring}: C{/healthz}, C{/readyz}, C{/metrics} and
the metrics counted from the running switch.
"""

import json

from prometheus_client import CollectorRegistry, Counter
from twisted.internet.task import Clock
from twisted.trial.unittest import SynchronousTestCase
from twisted.web.test.requesthelper import DummyRequest

from linkrtc import metrics
from linkrtc.drain import Admission
from linkrtc.monitoring import (
    HealthResource,
    MetricsResource,
    ReadinessResource,
    SIPMessageCounter,
    bindSwitchGauges,
    callOutcome,
    countCall,
)
from linkrtc.sip.parser import parseMessage
from linkrtc.testing import CallHarness, FakeMediaFactory, FakeMediaSession

INVITE = (
    b"INVITE sip:bob@127.0.0.1 SIP/2.0\r\n"
    b"Via: SIP/2.0/UDP 127.0.0.1:5070;branch=z9hG4bK1\r\n"
    b"From: <sip:alice@127.0.0.1>;tag=a\r\nTo: <sip:bob@127.0.0.1>\r\n"
    b"Call-ID: c1@x\r\nCSeq: 1 INVITE\r\nMax-Forwards: 70\r\nContent-Length: 0\r\n\r\n"
)

RINGING = (
    b"SIP/2.0 180 Ringing\r\n"
    b"Via: SIP/2.0/UDP 127.0.0.1:5070;branch=z9hG4bK1\r\n"
    b"From: <sip:alice@127.0.0.1>;tag=a\r\nTo: <sip:bob@127.0.0.1>;tag=b\r\n"
    b"Call-ID: c1@x\r\nCSeq: 1 INVITE\r\nContent-Length: 0\r\n\r\n"
)


def sample(name, **labels):
    """@return: the current value of a sample of the registry (0 when absent)."""
    return metrics.REGISTRY.get_sample_value(name, labels) or 0.0


def get(resource, headers=()):
    request = DummyRequest([])
    for name, value in headers:
        request.requestHeaders.addRawHeader(name, value)
    body = resource.render(request)
    return request, body


class SIPMessageCounterTests(SynchronousTestCase):
    def test_request(self):
        """A request counts by direction and method; an unknown method as other."""
        counter = SIPMessageCounter()
        before = sample("linkrtc_sip_requests_total", direction="in", method="INVITE")
        other = sample("linkrtc_sip_requests_total", direction="out", method="other")
        counter("in", parseMessage(INVITE), INVITE, None)
        counter("in", parseMessage(INVITE), INVITE, None)
        weird = INVITE.replace(b"INVITE sip", b"FROB sip").replace(b"1 INVITE", b"1 FROB")
        counter("out", parseMessage(weird), weird, None)
        self.assertEqual(sample("linkrtc_sip_requests_total", direction="in", method="INVITE"),
                         before + 2)
        self.assertEqual(sample("linkrtc_sip_requests_total", direction="out", method="other"),
                         other + 1)

    def test_response(self):
        """A response counts by direction, its CSeq method and status."""
        counter = SIPMessageCounter()
        labels = dict(direction="out", method="INVITE", status="180")
        before = sample("linkrtc_sip_responses_total", **labels)
        counter("out", parseMessage(RINGING), RINGING, None)
        self.assertEqual(sample("linkrtc_sip_responses_total", **labels), before + 1)


class _StatsSession(FakeMediaSession):
    def stats(self):
        return {"mode": "relay",
                "sip": {"packetsReceived": 100, "packetsSent": 98, "packetsLost": 2},
                "webrtc": {"packetsReceived": 97, "packetsSent": 99, "packetsLost": 1}}


class _StatsFactory(FakeMediaFactory):
    name = "bridge"

    def newSession(self, callId, listener):
        session = _StatsSession(callId, listener)
        self.sessions[callId] = session
        return session


class CallCountTests(SynchronousTestCase):
    def test_answeredCall(self):
        """A call answered and hung up counts once as inbound answered, with its packets."""
        h = CallHarness(mediaFactory=_StatsFactory())
        answered = sample("linkrtc_calls_total", direction="inbound", outcome="answered")
        received = sample("linkrtc_media_packets_total", mode="relay", direction="received")
        sent = sample("linkrtc_media_packets_total", mode="relay", direction="sent")
        lost = sample("linkrtc_media_packets_lost_total", mode="relay")
        call, leg, connection = h.answer()
        self.assertEqual(sample("linkrtc_calls_total", direction="inbound", outcome="answered"),
                         answered)
        leg.receive("BYE")
        self.assertEqual(sample("linkrtc_calls_total", direction="inbound", outcome="answered"),
                         answered + 1)
        self.assertEqual(sample("linkrtc_media_packets_total", mode="relay",
                                direction="received"), received + 197)
        self.assertEqual(sample("linkrtc_media_packets_total", mode="relay", direction="sent"),
                         sent + 197)
        self.assertEqual(sample("linkrtc_media_packets_lost_total", mode="relay"), lost + 3)

    def test_unreachable(self):
        """A call to nobody counts as unanswered (480)."""
        h = CallHarness()
        before = sample("linkrtc_calls_total", direction="inbound", outcome="unanswered")
        call, leg = h.invite(to="sip:nobody@example.com")
        h.route(call, "nobody")
        self.assertEqual(leg.finalStatus, 480)
        self.assertEqual(sample("linkrtc_calls_total", direction="inbound", outcome="unanswered"),
                         before + 1)

    def test_outcomes(self):
        """Outcomes by answer time and cause."""
        for cdr, outcome in [({"answer_time": 5.0, "cause": 408}, "answered"),
                             ({"answer_time": None, "cause": 487}, "cancelled"),
                             ({"answer_time": None, "cause": 480}, "unanswered"),
                             ({"answer_time": None, "cause": 486}, "refused"),
                             ({"answer_time": None, "cause": 603}, "refused"),
                             ({"answer_time": None, "cause": 503}, "failed"),
                             ({"answer_time": None, "cause": None}, "failed")]:
            self.assertEqual(callOutcome(cdr), outcome, cdr)

    def test_outbound(self):
        """An outbound CDR counts under direction outbound."""
        before = sample("linkrtc_calls_total", direction="outbound", outcome="refused")
        countCall(_Ended({"call_dir": "out", "answer_time": None, "cause": 486, "media": {}}))
        self.assertEqual(sample("linkrtc_calls_total", direction="outbound", outcome="refused"),
                         before + 1)

    def test_heldBridgeCall(self):
        """A session that names no mode (held bridge call) counts under the factory's name."""
        before = sample("linkrtc_media_packets_total", mode="bridge", direction="received")
        countCall(_Ended({"call_dir": "in", "answer_time": 1.0, "cause": 200,
                          "media": {"mode": None, "sip": {"packetsReceived": 5}}}),
                  _StatsFactory())
        self.assertEqual(sample("linkrtc_media_packets_total", mode="bridge",
                                direction="received"), before + 5)

    def test_neverRaises(self):
        """A broken CDR is logged, not raised: the call's release goes on."""
        countCall(_Ended({"call_dir": "in", "media": {"mode": "x", "sip": {"packetsSent": "?"}}}))
        self.assertEqual(len(self.flushLoggedErrors(ValueError)), 1)


class _Ended:
    id = "call-x"

    def __init__(self, cdr):
        self.cdr = cdr


class _SIP:
    listening = True


class _Trunks:
    def __init__(self, unregistered=()):
        self._unregistered = list(unregistered)

    def unregistered(self):
        return self._unregistered


class HealthTests(SynchronousTestCase):
    def test_healthz(self):
        """/healthz: 200 ok while the process answers."""
        request, body = get(HealthResource())
        self.assertEqual((request.responseCode or 200, body), (200, b"ok\n"))

    def test_ready(self):
        """/readyz: 200 when not draining, SIP listening and trunks registered."""
        request, body = get(ReadinessResource(Admission(Clock()), _SIP(), _Trunks()))
        self.assertEqual(request.responseCode or 200, 200)
        self.assertEqual(json.loads(body), {"ready": True, "reasons": []})
        self.assertEqual(request.responseHeaders.getRawHeaders(b"content-type"),
                         [b"application/json"])

    def test_notReady(self):
        """/readyz: 503 with every reason."""
        admission = Admission(Clock())
        admission.close(300)
        sip = _SIP()
        sip.listening = False
        request, body = get(ReadinessResource(admission, sip, _Trunks([("pbx", "failed")])))
        self.assertEqual(request.responseCode, 503)
        self.assertEqual(json.loads(body), {"ready": False, "reasons": [
            "draining", "SIP not listening", "trunk pbx failed"]})


class MetricsResourceTests(SynchronousTestCase):
    def test_text(self):
        """/metrics: the registry in Prometheus text format."""
        request, body = get(MetricsResource())
        [contentType] = request.responseHeaders.getRawHeaders(b"content-type")
        self.assertTrue(contentType.startswith(b"text/plain; version=0.0.4"), contentType)
        for name in (b"linkrtc_calls_total", b"linkrtc_calls_active",
                     b"linkrtc_sip_requests_total", b"linkrtc_draining"):
            self.assertIn(b"# TYPE " + name, body)

    def test_openMetrics(self):
        """A scraper asking for OpenMetrics gets it."""
        registry = CollectorRegistry()
        Counter("x_total", "x", registry=registry).inc()
        request, body = get(MetricsResource(registry),
                            [(b"Accept", b"application/openmetrics-text; version=1.0.0")])
        [contentType] = request.responseHeaders.getRawHeaders(b"content-type")
        self.assertTrue(contentType.startswith(b"application/openmetrics-text"), contentType)
        self.assertTrue(body.endswith(b"# EOF\n"))


class _Transactions:
    def __init__(self, transactions):
        self.transactions = transactions

    def activeTransactions(self):
        return list(self.transactions)


class _Directory:
    def names(self):
        return ["alice", "bob"]


class _Signalling:
    openConnections = {object(), object(), object()}


class _Allocator:
    inUse = {20000, 20002}


class _BridgeFactory:
    allocator = _Allocator()


class _Manager:
    calls = {"a": 1}


class GaugeTests(SynchronousTestCase):
    def test_bound(self):
        """The table gauges read the switch's tables when scraped."""
        from linkrtc.sip.transaction import ClientTransaction, ServerTransaction

        client = object.__new__(ClientTransaction)
        server = object.__new__(ServerTransaction)
        bindSwitchGauges(_Manager(), _Transactions([client, server, server]), _Directory(),
                         _Signalling(), _BridgeFactory(), Admission(Clock()))
        self.addCleanup(bindSwitchGauges, _Manager(), _Transactions([]), _Directory(),
                        _Signalling(), None, Admission(Clock()))
        self.assertEqual(sample("linkrtc_calls_active"), 1)
        self.assertEqual(sample("linkrtc_sip_transactions", kind="client"), 1)
        self.assertEqual(sample("linkrtc_sip_transactions", kind="server"), 2)
        self.assertEqual(sample("linkrtc_clients_registered"), 2)
        self.assertEqual(sample("linkrtc_websocket_connections"), 3)
        self.assertEqual(sample("linkrtc_rtp_ports_in_use"), 2)
        self.assertEqual(sample("linkrtc_draining"), 0)

    def test_passthroughPorts(self):
        """Without an RTP allocator (passthrough) no port is in use."""
        bindSwitchGauges(_Manager(), _Transactions([]), _Directory(), _Signalling(),
                         FakeMediaFactory(), Admission(Clock()))
        self.assertEqual(sample("linkrtc_rtp_ports_in_use"), 0)
