"""
Issue 14, items 3 and 4, end to end (C{earlymedia_driver.py} in a
network namespace with only loopback, C{twistd -n linkrtc --media
bridge}, baresip and the aiortc client):

  - a caller hears LinkRTC's ringback before the client answers: the
    default tone plan (US, 440+480 Hz, 2 s on) found by FFT in what
    baresip recorded, then the client's 880 Hz after the answer;
  - a PCMA-only phone and a PCMA-only client: LinkRTC relays the packets
    (its C{/metrics} count relay packets, none transcoded), tones both
    ways by FFT.
"""

import os

from twisted.trial.unittest import SynchronousTestCase

from linkrtc.media.ringback import DEFAULT_TONE, tonePlan
from linkrtc.test.e2e.test_bridge_e2e import BaresipTestsMixin, runBaresipDriver, summary

DRIVER = os.path.join(os.path.dirname(os.path.abspath(__file__)), "earlymedia_driver.py")

#: Hz either way a measured peak may be off.
TOLERANCE = 5.0


class EarlyMediaTests(BaresipTestsMixin, SynchronousTestCase):
    """baresip calls the aiortc client through the bridge."""

    def test_callerHearsRingback(self):
        """
        The client rings for 4.5 s before it accepts: LinkRTC's 183 carries
        SDP and baresip hears the default plan's two frequencies in a 2 s
        burst, then the client's 880 Hz.
        """
        result = runBaresipDriver(self, DRIVER, "ringback", 65.0)
        report = self.report(result) + "\nringback: " + str(result.get("phoneRingback"))
        self.assertTrue(result["earlyMedia"], report)
        heard = result["phoneRingback"]
        self.assertIsNotNone(heard, report)
        plan = tonePlan(DEFAULT_TONE)
        ringback = heard["ringback"]
        self.assertIsNotNone(ringback, report)
        self.assertEqual(len(ringback["peaks"]), len(plan.frequencies), report)
        for measured, expected in zip(ringback["peaks"], sorted(plan.frequencies)):
            self.assertLessEqual(abs(measured - expected), TOLERANCE, report)
        # Both tones stand well above anything else in the spectrum.
        self.assertGreater(ringback["peakRatio"], 5.0, report)
        self.assertGreater(ringback["rms"], 0.02, report)
        # The first burst lasts the plan's first "on" period (20 ms blocks).
        self.assertLessEqual(abs(ringback["firstBurst"] - plan.cadence[0]), 0.2, report)
        self.assertIsNotNone(heard["answerAt"], report)
        self.assertTone(heard["afterAnswer"], 880.0, report)
        self.assertTone(result["clientHeard"], 440.0, report)
        self.assertTrue(result["phoneEnded"], report)
        self.assertEqual(result["clientErrors"], [], report)
        self.assertEqual(result["linkrtcTracebacks"], 0, result.get("linkrtcLog", "")[-4000:])
        [cdr] = result["cdrs"]
        self.assertEqual((cdr["cause"], cdr["call_dir"]), (200, "inbound"), report)

    def test_pcmaRelayed(self):
        """
        baresip offers PCMA only, the client answers PCMA only: LinkRTC
        relays (log and metrics), tones both ways.
        """
        result = runBaresipDriver(self, DRIVER, "pcma", 60.0)
        report = self.report(result) + "\nmetrics: " + str(result.get("mediaPackets"))
        self.assertEqual(result["mediaLines"], ["media relay (SIP PCMA, WebRTC PCMA)"], report)
        packets = result["mediaPackets"]
        self.assertGreater(packets.get("relay", 0), 100, report)
        self.assertEqual(packets.get("transcode", 0), 0, report)
        self.assertTone(result["phoneHeard"], 880.0, report)
        self.assertTone(result["clientHeard"], 440.0, report)
        self.assertTrue(result["phoneEnded"], report)
        self.assertEqual(result["clientErrors"], [], report)
        self.assertEqual(result["mediaModes"], ["relay"], report)
        self.assertEqual(result["linkrtcTracebacks"], 0, result.get("linkrtcLog", "")[-4000:])
        [cdr] = result["cdrs"]
        self.assertEqual((cdr["cause"], cdr["call_dir"]), (200, "inbound"), summary(result))
