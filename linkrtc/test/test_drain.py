"""
Tests for L{linkrtc.drain}: SIGTERM drains (503 + Retry-After to new
INVITEs and OPTIONS, live calls go on, BYE after C{drain-seconds}, exit
once the last call ends; a second SIGTERM stops at once) and
C{POST /admin/drain}.
"""

import json

from twisted.internet.address import IPv4Address, IPv6Address
from twisted.internet.task import Clock
from twisted.trial.unittest import SynchronousTestCase
from twisted.web.test.requesthelper import DummyRequest

from linkrtc import metrics
from linkrtc.call.manager import CallManager
from linkrtc.drain import Admission, DrainResource, DrainService, adminResource, isLoopback
from linkrtc.sip.test.test_useragent import UserAgentMixin, request
from linkrtc.testing import CallHarness

SIGTERM = 15


class FakeReactor(Clock):
    """
    A L{Clock} that also runs C{callWhenRunning} and C{callFromThread} at
    once and counts C{stop}s.
    """

    def __init__(self):
        super().__init__()
        self.stops = 0

    def callWhenRunning(self, f, *args, **kwargs):
        f(*args, **kwargs)

    def callFromThread(self, f, *args, **kwargs):
        f(*args, **kwargs)

    def stop(self):
        self.stops += 1


class FakeSignals:
    """Stands for the C{signal} module: records the handlers installed."""

    SIGTERM = SIGTERM

    def __init__(self):
        self.handlers = {}

    def signal(self, number, handler):
        self.handlers[number] = handler


class AdmissionTests(SynchronousTestCase):
    def test_open(self):
        """Before a drain nothing is refused."""
        admission = Admission(Clock())
        self.assertFalse(admission.draining)
        self.assertIsNone(admission.refusal())

    def test_retryAfter(self):
        """Draining: 503 with Retry-After, the whole seconds left (at least 1)."""
        clock = Clock()
        admission = Admission(clock)
        admission.close(30)
        self.assertEqual(admission.refusal(), (503, "Service Unavailable", [("Retry-After", "30")]))
        clock.advance(10.5)
        self.assertEqual(admission.retryAfter(), 20)
        clock.advance(100)
        self.assertEqual(admission.retryAfter(), 1)


class UserAgentDrainTests(UserAgentMixin, SynchronousTestCase):
    """The SIP user agent refuses what would start something new while draining."""

    def makeAdmission(self):
        self.admission = Admission(self.clock)
        return self.admission

    def test_inviteBeforeDrain(self):
        """Not draining: a new INVITE reaches the handler."""
        self.receive(request("INVITE"))
        self.assertEqual(len(self.handler.legs), 1)

    def test_invite(self):
        """Draining: a new INVITE gets 503 with Retry-After and makes no call."""
        self.admission.close(300)
        tx = self.receive(request("INVITE"))
        self.assertEqual(tx.statuses, [503])
        self.assertEqual(tx.responses[0].headers.get("Retry-After"), "300")
        self.assertEqual(self.handler.legs, [])

    def test_options(self):
        """Draining: an OPTIONS outside a dialog (a load balancer's probe) gets 503."""
        self.admission.close(60)
        tx = self.receive(request("OPTIONS"))
        self.assertEqual(tx.statuses, [503])
        self.assertEqual(tx.responses[0].headers.get("Retry-After"), "60")

    def test_inDialog(self):
        """Draining: a request inside a dialog is not refused (481 here: no such dialog)."""
        self.admission.close(60)
        tx = self.receive(request("BYE", toTag="tt"))
        self.assertEqual(tx.statuses, [481])


class DrainServiceTests(SynchronousTestCase):
    def setUp(self):
        self.h = CallHarness()
        self.reactor = FakeReactor()
        self.h.clock = self.reactor
        # The calls' clock is the reactor too.
        self.h.manager.services.clock = self.reactor
        self.admission = Admission(self.reactor)
        self.manager = CallManager(self.h.machine, self.h.manager.services,
                                   admission=self.admission)
        self.h.manager = self.manager
        self.signals = FakeSignals()
        self.service = DrainService(self.reactor, self.admission, self.manager,
                                    drainSeconds=300, signals=self.signals)
        self.service.startService()
        self.addCleanup(metrics.DRAINING.set, 0)

    def sigterm(self):
        self.signals.handlers[SIGTERM](SIGTERM, None)

    def test_takesSIGTERM(self):
        """Once the reactor runs, SIGTERM is the drain's."""
        self.assertIn(SIGTERM, self.signals.handlers)

    def test_noCalls(self):
        """SIGTERM without live calls: the reactor stops at once."""
        self.sigterm()
        self.assertTrue(self.admission.draining)
        self.reactor.advance(0)
        self.assertEqual(self.reactor.stops, 1)

    def test_lastCallEnds(self):
        """A live call goes on after SIGTERM; when it ends, LinkRTC stops."""
        call, leg, connection = self.h.answer()
        self.sigterm()
        self.reactor.advance(299)
        self.assertEqual(self.reactor.stops, 0)
        self.assertEqual(call.state.name, "confirmed")
        leg.receive("BYE")
        self.assertEqual(call.state.name, "dropped")
        self.assertEqual(self.reactor.stops, 0)
        self.reactor.advance(self.service.lingerSeconds)
        self.assertEqual(self.reactor.stops, 1)
        self.assertEqual(leg.byes, [])
        self.assertEqual(self.reactor.getDelayedCalls(), [])

    def test_deadline(self):
        """After drain-seconds the calls left end with BYE, then LinkRTC stops."""
        call, leg, connection = self.h.answer()
        self.sigterm()
        self.reactor.advance(300)
        self.assertEqual(len(leg.byes), 1)
        self.assertEqual(call.state.name, "dropped")
        self.assertEqual(self.h.cdrs[-1]["cause"], 503)
        self.reactor.advance(self.service.lingerSeconds)
        self.assertEqual(self.reactor.stops, 1)

    def test_secondSIGTERM(self):
        """A second SIGTERM stops at once (the shutdown ends the calls)."""
        self.h.answer()
        self.sigterm()
        self.assertEqual(self.reactor.stops, 0)
        self.sigterm()
        self.assertEqual(self.reactor.stops, 1)
        self.reactor.advance(1000)
        self.assertEqual(self.reactor.stops, 1)

    def test_newCallsRefused(self):
        """Draining: a client's outbound call gets error 503 and makes no call."""
        self.h.answer()
        self.sigterm()
        alice = self.h.connect("alice2")
        self.manager.clientMessageReceived(alice, {"type": "call", "to": "123", "sdp": "v=0",
                                                   "ref": "r1"})
        [error] = alice.ofType("error")
        self.assertEqual((error["code"], error["ref"]), (503, "r1"))
        self.assertEqual(len(self.manager.calls), 1)

    def test_drainTwice(self):
        """Asking again changes nothing: one deadline."""
        self.h.answer()
        first = self.service.drain("test")
        self.reactor.advance(100)
        second = self.service.drain("test")
        self.assertEqual((first["calls"], first["drain_seconds"]), (1, 300.0))
        self.assertEqual(second["drain_seconds"], 200.0)
        self.assertEqual(len(self.reactor.getDelayedCalls()), 1)

    def test_drainingGauge(self):
        """linkrtc_draining reads the admission."""
        from linkrtc.monitoring import bindSwitchGauges

        bindSwitchGauges(self.manager, _NoTransactions(), _NoClients(), _NoSignalling(),
                         self.h.mediaFactory, self.admission)
        self.sigterm()
        self.assertEqual(metrics.REGISTRY.get_sample_value("linkrtc_draining"), 1.0)
        self.assertEqual(metrics.REGISTRY.get_sample_value("linkrtc_calls_active"), 0.0)

    def test_stopService(self):
        """Stopping (the reactor stops for another reason) cancels the drain's timers."""
        self.h.answer()
        self.sigterm()
        self.service.stopService()
        self.assertEqual(self.reactor.getDelayedCalls(), [])
        self.sigterm()
        self.assertEqual(self.reactor.stops, 0)


class _NoTransactions:
    def activeTransactions(self):
        return []


class _NoClients:
    def names(self):
        return []


class _NoSignalling:
    openConnections = ()


class _Drain:
    def __init__(self):
        self.asked = []

    def drain(self, why):
        self.asked.append(why)
        return {"draining": True, "calls": 2, "drain_seconds": 300.0}


class DrainResourceTests(SynchronousTestCase):
    def post(self, address, headers=()):
        drain = _Drain()
        resource = adminResource(drain).getChildWithDefault(b"drain", DummyRequest([b"drain"]))
        request = DummyRequest([])
        request.method = b"POST"
        request.client = address
        for name, value in headers:
            request.requestHeaders.addRawHeader(name, value)
        body = resource.render(request)
        return drain, request, body

    def test_loopback(self):
        """POST from loopback: 202 and the drain's figures as JSON."""
        drain, request, body = self.post(IPv4Address("TCP", "127.0.0.1", 40000))
        self.assertEqual(request.responseCode, 202)
        self.assertEqual(json.loads(body), {"draining": True, "calls": 2, "drain_seconds": 300.0})
        self.assertEqual(drain.asked, ["POST /admin/drain"])

    def test_loopbackIPv6(self):
        """::1 is loopback too."""
        drain, request, body = self.post(IPv6Address("TCP", "::1", 40000))
        self.assertEqual(request.responseCode, 202)

    def test_remote(self):
        """Another peer gets 403 and nothing drains."""
        drain, request, body = self.post(IPv4Address("TCP", "192.0.2.7", 40000))
        self.assertEqual(request.responseCode, 403)
        self.assertEqual(drain.asked, [])

    def test_webPage(self):
        """A request from a web page (with Origin), even on loopback, gets 403."""
        drain, request, body = self.post(IPv4Address("TCP", "127.0.0.1", 40000),
                                         [(b"Origin", b"http://evil.example")])
        self.assertEqual(request.responseCode, 403)
        self.assertEqual(drain.asked, [])

    def test_get(self):
        """Only POST drains: GET gets 405."""
        from twisted.web.error import UnsupportedMethod

        request = DummyRequest([])
        request.method = b"GET"
        self.assertRaises(UnsupportedMethod, DrainResource(_Drain()).render, request)

    def test_isLoopback(self):
        """Loopback in IPv4, IPv6 and IPv4-mapped IPv6; nothing else, nor non-addresses."""
        for host, expected in [("127.0.0.1", True), ("127.8.9.1", True), ("::1", True),
                               ("::ffff:127.0.0.1", True), ("10.0.0.1", False),
                               ("::ffff:10.0.0.1", False), ("localhost", False), (None, False)]:
            self.assertEqual(isLoopback(host), expected, host)


class _StuckManager:
    """A call table whose one call never ends (its media never closes)."""

    def __init__(self):
        self.calls = {"stuck": object()}
        self.closed = 0

    def whenIdle(self):
        from twisted.internet.defer import Deferred

        return Deferred()

    def closeAll(self):
        self.closed += 1


class StuckCallTests(SynchronousTestCase):
    def test_backstop(self):
        """A call that does not end at the deadline does not keep LinkRTC up."""
        reactor = FakeReactor()
        manager = _StuckManager()
        service = DrainService(reactor, Admission(reactor), manager, drainSeconds=5,
                               signals=FakeSignals())
        service.drain("test")
        reactor.advance(5)
        self.assertEqual((manager.closed, reactor.stops), (1, 0))
        reactor.advance(service.closeSeconds)
        self.assertEqual(reactor.stops, 1)
