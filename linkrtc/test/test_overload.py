"""
Tests for L{linkrtc.overload} and the overload control of
L{linkrtc.drain.Admission}: while the event loop lags more than
C{--max-loop-lag}, new INVITEs get 503 with C{Retry-After}; OPTIONS and
requests inside a dialog do not.
"""

import socket
import struct
import time

from twisted.internet.task import Clock
from twisted.logger import formatEvent, globalLogPublisher
from twisted.trial.unittest import SynchronousTestCase

from linkrtc import metrics
from linkrtc.drain import Admission
from linkrtc.overload import SO_TIMESTAMP, LoopLagMonitor, oldestWait, watchArrivals
from linkrtc.sip.test.test_useragent import UserAgentMixin, request
from linkrtc.tap import Options


def refused(reason):
    """@return: C{linkrtc_sip_refused_total} for C{reason} (C{float})."""
    return metrics.REGISTRY.get_sample_value("linkrtc_sip_refused_total",
                                             {"reason": reason}) or 0.0


class LoopLagMonitorTests(SynchronousTestCase):
    def setUp(self):
        self.clock = Clock()
        self.monitor = LoopLagMonitor(self.clock, interval=0.1, weight=0.5)
        self.monitor.startService()
        self.addCleanup(self.monitor.stopService)

    def test_onTime(self):
        """Ticks that fire when due: no lag."""
        for _ in range(5):
            self.clock.advance(0.1)
        self.assertEqual((self.monitor.lag, self.monitor.lastLag), (0.0, 0.0))

    def test_late(self):
        """A tick 0.3 s late is a sample of 0.3 s, weighed into the smoothed lag."""
        self.clock.advance(0.4)
        self.assertAlmostEqual(self.monitor.lastLag, 0.3)
        self.assertAlmostEqual(self.monitor.lag, 0.15)
        self.clock.advance(0.4)
        self.assertAlmostEqual(self.monitor.lag, 0.225)

    def test_recovers(self):
        """Once the ticks are on time again, the lag decays towards 0."""
        self.clock.advance(1.1)
        self.assertAlmostEqual(self.monitor.lag, 0.5)
        for _ in range(10):
            self.clock.advance(0.1)
        self.assertLess(self.monitor.lag, 0.001)
        self.assertEqual(self.monitor.lastLag, 0.0)

    def test_stop(self):
        """stopService cancels the pending tick."""
        self.monitor.stopService()
        self.assertEqual(self.clock.getDelayedCalls(), [])

    def test_bad(self):
        self.assertRaises(ValueError, LoopLagMonitor, self.clock, interval=0)
        self.assertRaises(ValueError, LoopLagMonitor, self.clock, weight=0)
        self.assertRaises(ValueError, LoopLagMonitor, self.clock, weight=1.5)


class FakeSocket:
    """A datagram socket whose first queued datagram arrived at C{arrival} (or none)."""

    def __init__(self, arrival=None):
        self.arrival = arrival
        self.options = []

    def setsockopt(self, level, option, value):
        self.options.append((level, option, value))

    def recvmsg(self, size, ancillarySize, flags):
        if self.arrival is None:
            raise BlockingIOError()
        seconds = int(self.arrival)
        stamp = struct.pack("@ll", seconds, round((self.arrival - seconds) * 1e6))
        return b"x", [(socket.SOL_SOCKET, SO_TIMESTAMP, stamp)], 0, ("127.0.0.1", 5060)


class SocketQueueTests(SynchronousTestCase):
    """The age of the oldest datagram in a socket's queue counts as lag."""

    def test_queuedDatagram(self):
        """A tick on time, but a datagram waiting 0.5 s: the sample is 0.5 s."""
        clock = Clock()
        clock.advance(1000)
        sock = FakeSocket()
        monitor = LoopLagMonitor(clock, weight=1.0, sockets=lambda: [sock])
        monitor.startService()
        self.addCleanup(monitor.stopService)
        sock.arrival = 1000.1 - 0.5
        clock.advance(0.1)
        self.assertAlmostEqual(monitor.lag, 0.5, places=5)
        self.assertEqual(sock.options, [(socket.SOL_SOCKET, SO_TIMESTAMP, 1)])
        sock.arrival = None
        clock.advance(0.1)
        self.assertEqual(monitor.lag, 0.0)
        self.assertEqual(len(sock.options), 1)  # set once

    def test_realSocket(self):
        """
        On a real loopback socket: a datagram queued 0.05 s ago has waited
        about that long, and peeking leaves it for the reader.
        """
        receiver = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        sender = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        self.addCleanup(receiver.close)
        self.addCleanup(sender.close)
        receiver.bind(("127.0.0.1", 0))
        if not watchArrivals(receiver):
            raise self.skipTest("no SO_TIMESTAMP here")
        self.assertEqual(oldestWait(receiver, time.time()), 0.0)
        sender.sendto(b"INVITE", receiver.getsockname())
        waited = oldestWait(receiver, time.time() + 0.05)
        self.assertTrue(0.04 < waited < 1.0, waited)
        self.assertEqual(receiver.recvfrom(100)[0], b"INVITE")


class FixedLag:
    """Stands for a L{LoopLagMonitor}: C{lag} as set."""

    lag = 0.0


class AdmissionLagTests(SynchronousTestCase):
    def setUp(self):
        self.lag = FixedLag()
        self.admission = Admission(Clock(), loopLag=self.lag, maxLoopLag=0.2)
        self.logged = []
        globalLogPublisher.addObserver(self.logged.append)
        self.addCleanup(globalLogPublisher.removeObserver, self.logged.append)

    def warnings(self):
        return [formatEvent(e) for e in self.logged if "lags" in (e.get("log_format") or "")]

    def test_underLimit(self):
        self.lag.lag = 0.2
        self.assertIsNone(self.admission.refusal(calls=3))

    def test_overLimit(self):
        """A new INVITE over the limit: 503 with Retry-After, counted with reason loop_lag."""
        before = refused("loop_lag")
        self.lag.lag = 0.25
        self.assertEqual(self.admission.refusal(calls=3),
                         (503, "Service Unavailable", [("Retry-After", "5")]))
        self.assertEqual(refused("loop_lag"), before + 1)

    def test_optionsNotRefused(self):
        """OPTIONS (no C{calls}) is not refused for lag: the node is alive, only busy."""
        self.lag.lag = 5.0
        self.assertIsNone(self.admission.refusal())

    def test_loggedOncePerEpisode(self):
        self.lag.lag = 0.3
        self.admission.refusal(calls=1)
        self.admission.refusal(calls=1)
        self.assertEqual(len(self.warnings()), 1)
        self.assertIn("lags 300 ms", self.warnings()[0])
        self.lag.lag = 0.0
        self.assertIsNone(self.admission.refusal(calls=1))
        self.lag.lag = 0.3
        self.admission.refusal(calls=1)
        self.assertEqual(len(self.warnings()), 2)

    def test_noMonitor(self):
        """Without a monitor the limit is off."""
        admission = Admission(Clock(), maxLoopLag=0.2)
        self.assertIsNone(admission.maxLoopLag)
        self.assertIsNone(admission.refusal(calls=1))


class UserAgentLagTests(UserAgentMixin, SynchronousTestCase):
    """The SIP user agent under a lagging loop: new INVITEs only are refused."""

    def makeAdmission(self):
        self.monitor = LoopLagMonitor(self.clock)
        self.monitor.startService()
        self.addCleanup(self.monitor.stopService)
        self.admission = Admission(self.clock, loopLag=self.monitor, maxLoopLag=0.2)
        return self.admission

    def stall(self, seconds, times=3):
        """The loop is C{seconds} late on C{times} ticks in a row."""
        for _ in range(times):
            self.clock.advance(self.monitor.interval + seconds)

    def test_invite(self):
        """Lagging: a new INVITE gets 503 with Retry-After and makes no call."""
        self.stall(0.5)
        tx = self.receive(request("INVITE"))
        self.assertEqual(tx.statuses, [503])
        self.assertEqual(tx.responses[0].headers.get("Retry-After"), "5")
        self.assertEqual(self.handler.legs, [])

    def test_oneStall(self):
        """One late tick (a process descheduled once) does not refuse calls."""
        self.stall(0.5, times=1)
        self.receive(request("INVITE"))
        self.assertEqual(len(self.handler.legs), 1)

    def test_recovered(self):
        """Once the loop keeps time again, new INVITEs are taken."""
        self.stall(0.5)
        for _ in range(20):
            self.clock.advance(self.monitor.interval)
        self.receive(request("INVITE"))
        self.assertEqual(len(self.handler.legs), 1)

    def test_options(self):
        """Lagging: an OPTIONS outside a dialog is still answered 200."""
        self.stall(0.5)
        tx = self.receive(request("OPTIONS"))
        self.assertEqual(tx.statuses, [200])

    def test_inDialog(self):
        """Lagging: a request inside a dialog is not refused (481 here: no such dialog)."""
        self.stall(0.5)
        tx = self.receive(request("BYE", toTag="tt"))
        self.assertEqual(tx.statuses, [481])


class OptionTests(SynchronousTestCase):
    def test_default(self):
        options = Options()
        options.parseOptions([])
        self.assertEqual(options.config.maxLoopLag, 200)

    def test_set(self):
        options = Options()
        options.parseOptions(["--max-loop-lag", "500"])
        self.assertEqual(options.config.maxLoopLag, 500)

    def test_off(self):
        options = Options()
        options.parseOptions(["--max-loop-lag", "0"])
        self.assertIsNone(options.config.maxLoopLag)
