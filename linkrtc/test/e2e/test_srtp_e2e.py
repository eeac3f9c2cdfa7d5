"""
SDES-SRTP (RFC 4568) on the SIP side, end to end: baresip with its
C{srtp} module and C{mediaenc=srtp-mand} (RTP/SAVP with a=crypto only)
and an aiortc WebRTC client, through a running C{twistd -n linkrtc
--media bridge} inside a network namespace that has only loopback
(C{srtp_driver.py} under C{unshare --net}).

Each direction carries its own tone (440 Hz from baresip, 880 Hz from
the client), each checked by FFT at the far end; baresip must report
SRTP enabled, and LinkRTC's CDR must show the SIP leg as SRTP
(C{srtpFailures} is a figure of SRTP legs only). A plain-RTP call from
the address of a trunk that requires SRTP is refused with 488.
"""

import os

from twisted.trial.unittest import SynchronousTestCase

from linkrtc.test.e2e.test_bridge_e2e import BaresipTestsMixin, runBaresipDriver

DRIVER = os.path.join(os.path.dirname(os.path.abspath(__file__)), "srtp_driver.py")


class SRTPTests(BaresipTestsMixin, SynchronousTestCase):
    """baresip speaking SDES-SRTP only, and the aiortc client alice."""

    def check(self, scenario, direction):
        result = runBaresipDriver(self, DRIVER, scenario, 60.0)
        report = self.report(result)
        self.assertEqual(result["phoneSRTP"][-1:], ["AES_CM_128_HMAC_SHA1_80"], report)
        self.assertTone(result["phoneHeard"], 880.0, report)
        self.assertTone(result["clientHeard"], 440.0, report)
        self.assertTrue(result["phoneEnded"], report)
        self.assertEqual(result["clientStates"], ["ringing", "confirmed", "dropped"], report)
        self.assertEqual(result["clientErrors"], [], report)
        self.assertEqual(result["mediaModes"], ["relay"], report)
        self.assertEqual(result["linkrtcTracebacks"], 0, result.get("linkrtcLog", "")[-4000:])
        [cdr] = result["cdrs"]
        self.assertEqual((cdr["cause"], cdr["call_dir"]), (200, direction), report)
        sip = cdr["media"]["sip"]
        self.assertIn("srtpFailures", sip, report)
        # baresip may send one plain RTCP report before its SRTP starts
        # (its log: RTCP starts before the media encryption): dropped, counted.
        self.assertLessEqual(sip["srtpFailures"], 2, report)
        self.assertGreater(sip["packetsReceived"], 100, report)
        if direction == "inbound":
            self.assertEqual(result["clientDigits"], ["5"], report)
        return cdr

    def test_phoneCallsClient(self):
        """
        baresip offers RTP/SAVP with a=crypto: LinkRTC answers RTP/SAVP with
        its own key; SRTP both ways, tones heard at each far end; baresip's
        DTMF key (RFC 4733, inside SRTP) reaches the client once.
        """
        self.check("phone-calls-client", "inbound")

    def test_trunkRequired(self):
        """
        The client calls out through a trunk with C{srtp = "required"}
        (baresip): LinkRTC offers RTP/SAVP with a=crypto, baresip answers
        with its key; tones heard at each far end.
        """
        cdr = self.check("trunk-required", "outbound")
        self.assertEqual(cdr["trunk"], "baresip")

    def test_plainFromTrunkRefused(self):
        """
        baresip without SRTP calls from the address of a trunk with C{srtp =
        "required"}: 488, the client is never offered the call, and the
        CDR says why.
        """
        result = runBaresipDriver(self, DRIVER, "plain-from-trunk", 45.0)
        report = self.report(result)
        self.assertTrue(result["phoneRefused"], report)
        self.assertEqual(result["clientIncoming"], 0, report)
        self.assertEqual(result["linkrtcTracebacks"], 0, result.get("linkrtcLog", "")[-4000:])
        [cdr] = result["cdrs"]
        self.assertEqual((cdr["cause"], cdr["call_dir"], cdr["answer_time"]),
                         (488, "inbound", None), report)
        self.assertIn("trunk baresip requires SRTP", cdr["reason"], report)
