"""
The call-control API (seed 001) end to end: an application on the
WebSocket C{/api} drives real calls through C{twistd -n linkrtc --media
bridge} inside a network namespace with only loopback (C{api_driver.py},
C{apiapp.py}).

  - C{ivr}: baresip calls in; the application answers, plays a prompt
    (baresip hears it), collects an RFC 4733 digit, records the caller
    (the WAV holds the caller's tone), constructs a call to the aiortc
    browser client and connects the two (each hears the other's tone),
    and drops both.
  - C{conf}: three baresip phones in one conference: each hears the other
    two tones and not its own.
  - C{example}: etc/examples/ivr.py loaded in the switch, on real media.

Tones are told apart by their share of each recording's power (FFT).
"""

import json
import os

from twisted.trial.unittest import SynchronousTestCase

from linkrtc.test.e2e import harness
from linkrtc.test.e2e.harness import requireNamespaces, requirePeer

DRIVER = os.path.join(os.path.dirname(os.path.abspath(__file__)), "api_driver.py")

#: A tone that was heard has at least this share of the recording's power.
HEARD = 0.15
#: A tone that must not be heard has at most this share.
ABSENT = 0.02


def appDetails(result):
    return ["\napplication: " + json.dumps(result.get("appMessages"))[-3000:]]


class CallControlEndToEndTests(SynchronousTestCase):
    def setUp(self):
        requireNamespaces()
        requirePeer("baresip")

    def run_(self, scenario):
        result, _ = harness.runScenario(
            self, DRIVER, scenario, 90.0, "the {scenario} scenario failed (files in {out}):",
            appDetails)
        return result

    def assertShares(self, heard, present, absent, report):
        self.assertIsNotNone(heard, "nothing recorded\n" + report)
        self.assertGreater(heard["rms"], 0.02, report)
        for tone in present:
            self.assertGreater(heard["shares"][str(tone)], HEARD, f"{tone} Hz not heard\n{report}")
        for tone in absent:
            self.assertLess(heard["shares"][str(tone)], ABSENT, f"{tone} Hz heard\n{report}")

    def test_ivr(self):
        """
        answer, play_start, receive_dtmf_start, record_start, construct to
        a browser client with a parent, connect_start, drop: every event
        with its fields, and the audio where it belongs.
        """
        result = self.run_("ivr")
        report = json.dumps({k: result.get(k) for k in (
            "phone", "recorded", "clientHeard", "clientStates", "appEvents", "steps")})
        app = result["app"]
        self.assertEqual(app["type"], "done", report)
        self.assertIsNone(app["played"]["error"], report)
        self.assertEqual(app["digits"]["keys"], "5", report)
        self.assertIsNone(app["dialled"]["error"], report)
        self.assertIsNotNone(app["dialled"]["answer_time"], report)
        self.assertIsNone(app["connected"]["error"], report)
        self.assertEqual(sorted(r["call_dir"] for r in app["released"]),
                         ["inbound", "outbound"], report)
        # The phone heard the prompt (1000 Hz) and the browser client (880 Hz), not itself.
        self.assertShares(result["phone"]["heard"], (1000, 880), (550,), report)
        self.assertEqual(result["phone"]["sentDigits"], ["5"], report)
        # The recording holds the caller's tone only.
        self.assertShares(result["recorded"], (550,), (1000, 880), report)
        # The browser client heard the caller through the connection.
        self.assertShares(result["clientHeard"], (550,), (880,), report)
        self.assertEqual(result["clientStates"][-1], "dropped", report)
        self.assertEqual(result["linkrtcTracebacks"], 0, result.get("linkrtcLog"))

    def test_conference(self):
        """Three phones in one conference: each hears the two others and not itself."""
        result = self.run_("conf")
        report = json.dumps({k: result.get(k) for k in ("phones", "app", "steps")})
        self.assertEqual(result["app"]["type"], "done", report)
        tones = [500, 700, 1100]
        for tone in tones:
            phone = result["phones"][str(tone)]
            others = [t for t in tones if t != tone]
            self.assertShares(phone["heard"], others, (tone,), report)
        self.assertEqual(result["linkrtcTracebacks"], 0, result.get("linkrtcLog"))

    def test_exampleIVR(self):
        """
        etc/examples/ivr.py in the switch (C{--application ivr:factory}) on
        real media: the menu is heard, 1 connects the caller to the browser
        client agent (each hears the other); the agent's hang-up ends both.
        """
        result = self.run_("example")
        report = json.dumps({k: result.get(k) for k in ("phone", "clientHeard", "cdrs", "steps")})
        self.assertShares(result["phone"]["heard"], (1000, 880), (550,), report)
        self.assertShares(result["clientHeard"], (550,), (880,), report)
        self.assertTrue(result["phone"]["ended"], report)
        self.assertEqual(sorted(c["call_dir"] for c in result["cdrs"]), ["inbound", "outbound"],
                         report)
        self.assertEqual(result["linkrtcTracebacks"], 0, result.get("linkrtcLog"))
