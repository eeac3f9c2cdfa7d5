"""
Outbound calls with the media bridge end to end (C{--media bridge}): an
aiortc WebRTC client (C{rtcclient.py --dial bob}) calls out through a
running C{twistd -n linkrtc} whose only trunk is baresip
(C{sip:127.0.0.1:PORT}, no registration), inside a network namespace that
has only loopback (C{outbound_driver.py} under C{unshare --net}).

baresip answers by itself and plays 440 Hz; the client sends 880 Hz. Each
side's recording is checked by FFT (within 20 Hz), so an echo or a
loop-back cannot pass. The client hangs up; baresip must see the call end.
"""

import os

from twisted.trial.unittest import SynchronousTestCase

from linkrtc.test.e2e.test_bridge_e2e import BaresipTestsMixin, runBaresipDriver

DRIVER = os.path.join(os.path.dirname(os.path.abspath(__file__)), "outbound_driver.py")


def runDriver(testCase, scenario, timeout=55.0):
    """
    Run C{outbound_driver.py --scenario SCENARIO} in a new network namespace.

    @param timeout: seconds; the driver's process group is killed after it.
    @return: the driver's result (C{dict}).
    """
    return runBaresipDriver(testCase, DRIVER, scenario, timeout)


class OutboundBridgeTests(BaresipTestsMixin, SynchronousTestCase):
    """The client calls baresip (the trunk) through LinkRTC's bridge."""

    def check(self, scenario, mode):
        result = runDriver(self, scenario)
        report = self.report(result)
        self.assertTone(result["phoneHeard"], 880.0, report)
        self.assertTone(result["clientHeard"], 440.0, report)
        self.assertTrue(result["phoneEnded"], report)
        self.assertEqual(result["clientStates"], ["ringing", "confirmed", "dropped"], report)
        self.assertEqual(result["clientAnswers"], 1, report)
        self.assertEqual(result["mediaModes"], [mode], report)
        self.assertEqual(result["clientErrors"], [], report)
        self.assertEqual(result["linkrtcTracebacks"], 0, result.get("linkrtcLog", "")[-4000:])
        [cdr] = result["cdrs"]
        self.assertEqual((cdr["cause"], cdr["call_dir"], cdr["trunk"], cdr["ref"]),
                         (200, "outbound", "baresip", "t1"), report)
        self.assertEqual(cdr["media"]["mode"], mode, report)

    def test_relay(self):
        """
        The client offers PCMU: LinkRTC offers baresip PCMU first and relays
        packets; 880 Hz reaches baresip, 440 Hz the client; the client's
        hangup is a BYE baresip sees.
        """
        self.check("client-hangup", "relay")

    def test_transcode(self):
        """The client offers Opus only: LinkRTC transcodes; tones both ways."""
        self.check("opus", "transcode")
