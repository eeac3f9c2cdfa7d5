"""
linkrtc.js's local ringback (issue 14, item 3) in real headless Chromium:
a page calls a number through C{twistd -n linkrtc --media bridge} whose
trunk is SIPp (C{ringback_driver.py} in a network namespace with only
loopback). The page's C{AudioContext} destinations are tapped with an
C{AnalyserNode}: a 180 without SDP makes the SDK play 440+480 Hz (2 s
on, then off) until the answer; a 183 with SDP (early media) plays
nothing.
"""

import json
import os

from twisted.trial.unittest import SynchronousTestCase

from linkrtc.test.e2e import harness
from linkrtc.test.e2e.harness import requireNamespaces, requirePeer
from linkrtc.test.e2e.test_browser import requireChromium

DRIVER = os.path.join(os.path.dirname(os.path.abspath(__file__)), "ringback_driver.py")

#: dB the tones must stand above the level between them (600 Hz).
ABOVE_FLOOR = 30.0


def runDriver(testCase, scenario, timeout=70.0):
    """@return: the result of C{ringback_driver.py --scenario SCENARIO} (C{dict})."""
    result, _ = harness.runScenario(
        testCase, DRIVER, scenario, timeout, "the {scenario} scenario failed (files in {out}):",
        lambda result: ["\nevents: " + json.dumps(result.get("events")),
                        "\nsipp:\n" + result.get("sippLog", "")[-1500:]])
    return result


def report(result):
    keys = ("events", "samples", "console", "sippExit", "errors")
    return json.dumps({k: result.get(k) for k in keys})[-6000:]


def toneOn(tap):
    """@return: whether a tap sample has both ringback tones well above the floor."""
    return (tap.get("db440") is not None and tap.get("db480") is not None
            and min(tap["db440"], tap["db480"]) > max(tap["db600"], -200.0) + ABOVE_FLOOR)


class LocalRingbackTests(SynchronousTestCase):
    def setUp(self):
        requireChromium()
        requirePeer("sipp")
        requireNamespaces()

    def assertCall(self, result, text):
        self.assertEqual(result["sippExit"], 0, text)
        states = [e["state"] for e in result["events"] if "state" in e]
        self.assertEqual(states, ["ringing", "confirmed", "dropped"], text)
        self.assertEqual([e["disconnect"] for e in result["events"] if "disconnect" in e],
                         [200], text)
        self.assertEqual(result["linkrtcTracebacks"], 0, result.get("linkrtcLog", "")[-4000:])

    def test_ringingWithoutEarlyMedia(self):
        """
        180 without SDP: the call's C{ringback} event says it plays from
        C{ringing} to C{confirmed}; the tap hears 440 and 480 Hz in the
        first on period and silence in the off period; nothing after the
        answer.
        """
        result = runDriver(self, "ringing")
        text = report(result)
        self.assertCall(result, text)
        events = result["events"]
        ringback = [e["ringback"] for e in events if "ringback" in e]
        self.assertEqual(ringback, [True, False], text)
        order = [next(k for k in ("state", "ringback", "answer", "disconnect") if k in e)
                 for e in events]
        started = events[order.index("ringback")]
        self.assertEqual(events[order.index("ringback") - 1].get("state"), "ringing", text)
        confirmed = next(e for e in events if e.get("state") == "confirmed")
        stopped = [e for e in events if e.get("ringback") is False][0]
        # It stops as the call is confirmed (the next event), not later.
        self.assertEqual(events.index(stopped), events.index(confirmed) + 1, text)
        playing = [s for s in result["samples"] if s["playing"]]
        self.assertTrue(playing, text)
        taps = [t for s in playing for t in s["taps"] if t.get("state") == "running"]
        self.assertTrue(any(toneOn(t) for t in taps), text)
        # The cadence: silent samples while it still plays (the off period).
        self.assertTrue(any(not toneOn(t) and t["db440"] < -100 for t in taps
                            if t["db440"] is not None), text)
        after = [s for s in result["samples"] if s["t"] > confirmed["t"]]
        self.assertTrue(after, text)
        self.assertFalse(any(s["playing"] for s in after), text)
        self.assertTrue(all(t.get("state") == "closed" for s in after for t in s["taps"]), text)
        self.assertGreater(stopped["t"], started["t"], text)

    def test_progressWithoutEarlyMedia(self):
        """
        183 without SDP: no early media comes, so after its grace the SDK
        plays the ringback (both tones heard) until C{confirmed}.
        """
        result = runDriver(self, "progress")
        text = report(result)
        self.assertCall(result, text)
        events = result["events"]
        self.assertEqual([e["ringback"] for e in events if "ringback" in e], [True, False], text)
        # No early media: the only answer is the 200's, after the ringback started.
        started = next(e for e in events if e.get("ringback") is True)
        answers = [e for e in events if e.get("answer")]
        self.assertEqual(len(answers), 1, text)
        self.assertGreater(events.index(answers[0]), events.index(started), text)
        taps = [t for s in result["samples"] if s["playing"] for t in s["taps"]
                if t.get("state") == "running"]
        self.assertTrue(any(toneOn(t) for t in taps), text)
        confirmed = next(e for e in events if e.get("state") == "confirmed")
        stopped = next(e for e in events if e.get("ringback") is False)
        self.assertEqual(events.index(stopped), events.index(confirmed) + 1, text)

    def test_earlyMedia(self):
        """183 with SDP: the far end's early media; no local ringback at all."""
        result = runDriver(self, "early")
        text = report(result)
        self.assertCall(result, text)
        self.assertEqual([e for e in result["events"] if "ringback" in e], [], text)
        self.assertTrue(any(e.get("answer") for e in result["events"]), text)
        self.assertFalse(any(s["playing"] for s in result["samples"]), text)
        self.assertEqual([t for s in result["samples"] for t in s["taps"]], [], text)
