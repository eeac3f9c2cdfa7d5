"""
The media bridge end to end (C{--media bridge}): a real SIP phone
(baresip, or SIPp's C{rtp_stream}) calls a WebRTC client (aiortc,
C{rtcclient.py}) through a running C{twistd -n linkrtc}, inside a network
namespace that has only loopback (C{bridge_driver.py} under
C{unshare --net}).

Each direction carries its own tone (440 Hz from the phone, 880 Hz from
the client), and each side's recording is checked by FFT, so an echo or a
loop-back cannot pass. baresip's DTMF digit must reach the client exactly
once. One call is hung up by the client, one by baresip; the first uses
PCMU on both legs (LinkRTC relays packets), the second Opus towards the
client (LinkRTC transcodes).
"""

import json
import os

from twisted.trial.unittest import SynchronousTestCase

from linkrtc.test.e2e import harness
from linkrtc.test.e2e.harness import requireNamespaces, requirePeer

DRIVER = os.path.join(os.path.dirname(os.path.abspath(__file__)), "bridge_driver.py")

#: Hz either way a measured tone may be off.
TOLERANCE = 20.0


def clientDetails(result):
    """@return: what the client got before a failure, for its message."""
    return ["\nclient: " + json.dumps(result.get("clientMessages"))[-3000:]]


def runDriver(testCase, scenario, timeout=60.0):
    """
    Run C{bridge_driver.py --scenario SCENARIO} in a new network namespace.

    @param timeout: seconds; the driver's process group is killed after it.
    @return: the driver's result (C{dict}).
    """
    result, _ = harness.runScenario(
        testCase, DRIVER, scenario, timeout, "the {scenario} scenario failed (files in {out}):",
        clientDetails)
    return result


def summary(result):
    """@return: the figures worth showing when an assertion fails (C{str})."""
    keys = ("phoneHeard", "clientHeard", "clientDigits", "phoneSentDigits", "clientStates",
            "mediaModes", "cdrs", "phoneEnded", "sippExit", "steps", "clientErrors")
    return json.dumps({k: result.get(k) for k in keys})


def baresipTail(result):
    """@return: the end of baresip's log (C{str}), for a failure's message."""
    return "\nbaresip:\n" + result.get("baresipLog", "")[-2000:]


def runBaresipDriver(testCase, driver, scenario, timeout):
    """
    Run C{DRIVER --scenario SCENARIO} (a driver whose phone is baresip) in
    a new network namespace.

    @param driver: the driver script's path.
    @param timeout: seconds; the driver's process group is killed after it.
    @return: the driver's result (C{dict}).
    """
    result, _ = harness.runScenario(
        testCase, driver, scenario, timeout, "the {scenario} scenario failed (files in {out}):",
        lambda result: clientDetails(result) + [baresipTail(result)])
    return result


class BridgeTestsMixin:
    def assertTone(self, heard, expected, report, minSeconds=2.0):
        """What a side recorded is mainly C{expected} Hz, loud enough, long enough."""
        self.assertIsNotNone(heard, "nothing recorded\n" + report)
        self.assertGreaterEqual(heard["seconds"], minSeconds, report)
        self.assertGreater(heard["rms"], 0.02, report)
        self.assertIsNotNone(heard["dominant"], report)
        self.assertLessEqual(abs(heard["dominant"] - expected), TOLERANCE,
                             f"{heard['dominant']} Hz is not {expected} Hz\n{report}")
        # A tone, not noise: the peak stands well above anything 40 Hz away.
        self.assertGreater(heard["peakRatio"], 5.0, report)

    def assertCleanCall(self, result, report, mode):
        self.assertEqual(result["clientStates"], ["ringing", "confirmed", "dropped"], report)
        self.assertEqual(result["mediaModes"], [mode], report)
        self.assertEqual(result["clientErrors"], [], report)
        self.assertEqual(result["linkrtcTracebacks"], 0, result.get("linkrtcLog", "")[-4000:])
        [cdr] = result["cdrs"]
        self.assertEqual((cdr["cause"], cdr["call_dir"]), (200, "inbound"), report)


class BaresipTestsMixin(BridgeTestsMixin):
    """Tests with baresip as the phone, in a network namespace."""

    def setUp(self):
        requirePeer("baresip")
        requireNamespaces()

    def report(self, result):
        """@return: L{summary} and the end of baresip's log (C{str})."""
        return summary(result) + baresipTail(result)


class BaresipBridgeTests(BaresipTestsMixin, SynchronousTestCase):
    """baresip calls the aiortc client through LinkRTC."""

    def check(self, result, mode):
        report = summary(result)
        self.assertTone(result["phoneHeard"], 880.0, report)
        self.assertTone(result["clientHeard"], 440.0, report)
        self.assertEqual(result["phoneSentDigits"], ["5"], report)
        self.assertEqual(result["clientDigits"], ["5"], report)
        self.assertTrue(result["phoneEnded"], result.get("baresipLog", "")[-2000:])
        self.assertCleanCall(result, report, mode)

    def test_clientHangsUp(self):
        """
        PCMU both ways (relay): tones both ways, one DTMF digit, the client's
        C{hangup} ends baresip's call with a BYE.
        """
        self.check(runDriver(self, "client-hangup"), "relay")

    def test_phoneHangsUp(self):
        """
        Opus to the client (transcoding): tones both ways, one DTMF digit,
        baresip's hang-up reaches the client as C{dropped}.
        """
        self.check(runDriver(self, "phone-hangup"), "transcode")


class SIPpBridgeTests(BridgeTestsMixin, SynchronousTestCase):
    """SIPp streams a tone with C{rtp_stream}; the client hears it."""

    def setUp(self):
        requirePeer("sipp")
        requireNamespaces()

    def test_rtpStreamReliableEarlyMedia(self):
        """
        With Require: 100rel the early-media 183 comes reliably; SIPp PRACKs
        it, gets the 200 OK after the PRACK's, and its stream is heard.
        """
        result = runDriver(self, "sipp-100rel")
        report = summary(result) + "\nsipp:\n" + result.get("sippLog", "")[-2000:]
        self.assertEqual(result["sippExit"], 0, report)
        self.assertTone(result["clientHeard"], 440.0, report)
        self.assertCleanCall(result, report, "relay")

    def test_rtpStream(self):
        """SIPp's 440 Hz mu-law stream reaches the aiortc client as 440 Hz."""
        result = runDriver(self, "sipp")
        report = summary(result) + "\nsipp:\n" + result.get("sippLog", "")[-2000:]
        self.assertEqual(result["sippExit"], 0, report)
        self.assertTone(result["clientHeard"], 440.0, report)
        self.assertEqual(result["clientDigits"], [], report)
        self.assertCleanCall(result, report, "relay")
