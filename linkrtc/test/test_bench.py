"""
Tests for the pure helpers of the benchmarks under C{bench/} (the load
tests themselves run by hand; see docs/performance.rst): the post-dial
delay scenario and percentiles of bench/sipload.py (bench/cps.py's load
loop), the RSS slope of bench/memory.py, the profile summary of
bench/flame.py and the in-process rows of bench/transcode_path.py.
"""

import importlib
import json
import os
import sys

from twisted.trial.unittest import SynchronousTestCase

from linkrtc.test.e2e.harness import SCENARIOS

BENCH = os.path.join(os.path.dirname(os.path.dirname(os.path.dirname(
    os.path.abspath(__file__)))), "bench")


def benchModule(name):
    """@return: the module C{bench/NAME.py}."""
    if BENCH not in sys.path:
        sys.path.insert(0, BENCH)
    return importlib.import_module(name)


class CPSBenchTests(SynchronousTestCase):
    def test_timedScenario(self):
        """The timed copy of the call scenario starts a timer at the INVITE, stops it at 180."""
        sipload = benchModule("sipload")
        scratch = self.mktemp()
        os.makedirs(scratch)
        with open(sipload.timedScenario(os.path.join(SCENARIOS, "uac_call.xml"), scratch)) as f:
            text = f.read()
        self.assertEqual(text.count('start_rtd="1"'), 1)
        self.assertEqual(text.count('rtd="1"/>'), 1)
        self.assertIn('<recv response="180" optional="true" rtd="1"/>', text)

    def test_responseTimes(self):
        """SIPp's C{-trace_rtt} lines are read by timer; the header is skipped."""
        sipload = benchModule("sipload")
        scratch = self.mktemp()
        os.makedirs(scratch)
        with open(os.path.join(scratch, "timed_1_rtt.csv"), "w") as f:
            f.write("Date_ms;response_time_ms;rtd_no\n204.001;3;1\n404;5;1\n")
        self.assertEqual(sipload.readResponseTimes(scratch), {1: [3.0, 5.0]})

    def test_percentile(self):
        sipload = benchModule("sipload")
        values = list(range(1, 101))
        self.assertEqual(sipload.percentile(values, 95), 95)
        self.assertEqual(sipload.percentile(values, 50), 50)
        self.assertIsNone(sipload.percentile([], 95))


class MemoryBenchTests(SynchronousTestCase):
    def test_slope(self):
        """The least-squares slope, C{None} below two points."""
        memory = benchModule("memory")
        self.assertAlmostEqual(memory.slope([100, 200, 300], [130.0, 160.0, 190.0]), 0.3)
        self.assertIsNone(memory.slope([100], [130.0]))


class FlameTests(SynchronousTestCase):
    def test_summary(self):
        """Own time goes to the innermost frame, inclusive time to each frame once."""
        flame = benchModule("flame")
        path = self.mktemp()
        with open(path, "w") as f:
            f.write("process 1;run (/x/twisted/app.py:1);parse (/w/linkrtc/sip/parser.py:9) 3\n"
                    "run (/x/twisted/app.py:1);run (/x/twisted/app.py:1) 1\n")
        text = flame.summary(path)
        self.assertIn("4 samples", text)
        own = text.split("inclusive time:")[0]
        self.assertIn(" 75.0% parse (sip/parser.py)", own)
        self.assertIn("100.0% run (/x/twisted/app.py)", text.split("inclusive time:")[1])


class TranscodePathBenchTests(SynchronousTestCase):
    def test_rows(self):
        """bench/transcode_path.py's in-process rows run on a few frames of its tones."""
        bench = benchModule("transcode_path")
        opus = bench.browserPackets(5)
        self.assertEqual(len(opus), 5)
        pcm = bench.tone(440, 8000, 5)
        ulaw = [bytes(len(samples)) for samples in pcm]
        for row in (bench.ceiling(opus, pcm), bench.aiortcCodecs(opus, ulaw),
                    bench.opuspath(opus, ulaw), bench.opuspath(opus, ulaw, False)):
            self.assertGreater(row, 0)
class SIPLoadTests(SynchronousTestCase):
    def test_directScenario(self):
        """
        The direct copy of the call scenario sends the ACK and BYE to the
        host and port of the 200's Contact, read right after the 200.
        """
        sipload = benchModule("sipload")
        scratch = self.mktemp()
        os.makedirs(scratch)
        with open(sipload.directScenario(os.path.join(SCENARIOS, "uac_call.xml"), scratch)) as f:
            text = f.read()
        self.assertEqual(text.count("<setdest "), 1)
        self.assertLess(text.index('<recv response="200" rrs="true">'), text.index("<setdest "))
        self.assertLess(text.index("<setdest "), text.index("ACK [next_url]"))

    def test_cpuSeconds(self):
        """This process's CPU time grows with work, in seconds."""
        sipload = benchModule("sipload")
        before = after = sipload.cpuSeconds(os.getpid())
        # /proc/PID/stat counts whole clock ticks (10 ms): work until one passes (bounded)
        for _ in range(500):
            sum(range(200000))
            after = sipload.cpuSeconds(os.getpid())
            if after > before:
                break
        self.assertGreater(after, before)
        self.assertLess(after - before, 5)


class AnswererTests(SynchronousTestCase):
    def test_frameRoundTrip(self):
        """
        Client frames carry the all-zero mask, so the payload is sent as
        is; L{frames} reads back every length form and keeps a partial frame.
        """
        answerer = benchModule("answerer")
        for size in (5, 200, 70000):
            payload = b"x" * size
            data = answerer.frame(payload)
            self.assertEqual(data[-size - 4:-size], b"\0\0\0\0")
            messages, rest = answerer.frames(data + data[:3])
            self.assertEqual(messages, [(answerer.TEXT, payload)])
            self.assertEqual(rest, data[:3])

    def test_serverFrames(self):
        """Unmasked server frames (text, ping) are split off in order."""
        answerer = benchModule("answerer")
        data = b"\x81\x02hi" + b"\x89\x00" + b"\x81\x7e\x00"
        self.assertEqual(answerer.frames(data),
                         ([(answerer.TEXT, b"hi"), (answerer.PING, b"")], b"\x81\x7e\x00"))

    def test_answer(self):
        """An incoming call is answered with ringing, then accept with an SDP."""
        answerer = benchModule("answerer")
        messages, rest = answerer.frames(answerer.answerOf("c1"))
        self.assertEqual(rest, b"")
        self.assertEqual([json.loads(p) for _, p in messages], [
            {"type": "ringing", "call": "c1"},
            {"type": "accept", "call": "c1", "sdp": answerer.ANSWER_SDP}])


class HeapClockTests(SynchronousTestCase):
    """bench/heapclock.py, the clock of bench/actions.py and bench/sip_stack.py."""

    def test_order(self):
        """Due calls run in time order, ties in scheduling order, with their keywords."""
        clock = benchModule("heapclock").HeapClock()
        ran = []
        clock.callLater(2, ran.append, "late")
        clock.callLater(1, lambda what, suffix: ran.append(what + suffix), "a", suffix="!")
        clock.callLater(1, ran.append, "b")
        clock.callLater(1, ran.append, "cancelled").cancel()
        clock.advance(1)
        self.assertEqual(ran, ["a!", "b"])
        self.assertEqual(len(clock.getDelayedCalls()), 1)
        clock.advance(1)
        self.assertEqual(ran, ["a!", "b", "late"])

    def test_slack(self):
        """With C{slack}, calls due just after the new time run too."""
        heapclock = benchModule("heapclock")
        for slack, expected in ((0.0, []), (1e-6, ["x"])):
            clock = heapclock.HeapClock(10.0, slack=slack)
            ran = []
            clock.callLater(1 + 1e-7, ran.append, "x")
            clock.advance(1)
            self.assertEqual(ran, expected)


class MediaLoadTests(SynchronousTestCase):
    def test_rtpPayload(self):
        """
        bench/mediaload.py finds the payload after the CSRCs and the header
        extension, without the padding; a short or non-RTP packet gives C{None}.
        """
        mediaload = benchModule("mediaload")
        header = bytes([0x80 | 0x20 | 0x10 | 1, 0, 0, 7]) + bytes(8) + bytes(4)
        extension = b"\xbe\xde\x00\x01" + bytes(4)
        packet = header + extension + b"abc" + b"\x00\x02"
        self.assertEqual(mediaload.rtpPayload(packet), b"abc")
        self.assertEqual(mediaload.rtpSeq(packet), 7)
        self.assertIsNone(mediaload.rtpPayload(b"\x80\x00"))
        self.assertIsNone(mediaload.rtpPayload(bytes(12)))

    def test_stampedPayload(self):
        """A stamped payload is PCMU-sized and starts with the magic bytes."""
        mediaload = benchModule("mediaload")
        payload = mediaload.stampedPayload()
        self.assertEqual(len(payload), 160)
        self.assertTrue(payload.startswith(mediaload.MAGIC))
