"""
SIP phones as clients of the switch, end to end: baresip registers with
LinkRTC's registrar using digest authentication (MD5: what baresip
answers with), then an aiortc WebRTC client calls it by name, and it
calls the client by name, through a running C{twistd -n linkrtc --media
bridge} inside a network namespace that has only loopback
(C{registrar_driver.py} under C{unshare --net}).

Each direction carries its own tone (440 Hz from the phone, 880 Hz from
the client) and each side's recording is checked by FFT. SHA-256 is
tested against our own client in L{linkrtc.sip.test.test_registrar}.

The demo softphone in real Chromium calls the registered phone by name
too (C{page-calls-phone}): 880 Hz from the page's fake microphone, found
by the page's WebAudio FFT at baresip's end as recorded, and 440 Hz from
baresip, found by the page's FFT.
"""

import os

from twisted.trial.unittest import SynchronousTestCase

from linkrtc.test.e2e.harness import requireNamespaces, requirePeer
from linkrtc.test.e2e.test_bridge_e2e import (
    BaresipTestsMixin,
    BridgeTestsMixin,
    runBaresipDriver,
    summary,
)
from linkrtc.test.e2e.test_browser import requireChromium

DRIVER = os.path.join(os.path.dirname(os.path.abspath(__file__)), "registrar_driver.py")


def runDriver(testCase, scenario, timeout=55.0):
    """
    Run C{registrar_driver.py --scenario SCENARIO} in a new network namespace.

    @param timeout: seconds; the driver's process group is killed after it.
    @return: the driver's result (C{dict}).
    """
    return runBaresipDriver(testCase, DRIVER, scenario, timeout)


class RegisteredPhoneTests(BaresipTestsMixin, SynchronousTestCase):
    """baresip, registered as bob, and the aiortc client alice call each other."""

    def check(self, result, direction):
        report = self.report(result)
        # Challenged first (401), then registered with bob's MD5 credentials.
        self.assertGreaterEqual(result["registrations"].get("challenged", 0), 1, report)
        self.assertGreaterEqual(result["registrations"].get("ok", 0), 1, report)
        self.assertTrue(any("bob at" in line for line in result["registrarLog"]), report)
        self.assertTone(result["phoneHeard"], 880.0, report)
        self.assertTone(result["clientHeard"], 440.0, report)
        self.assertTrue(result["phoneEnded"], report)
        self.assertEqual(result["clientStates"][-2:], ["confirmed", "dropped"], report)
        self.assertEqual(result["clientErrors"], [], report)
        self.assertEqual(result["linkrtcTracebacks"], 0, result.get("linkrtcLog", "")[-4000:])
        [cdr] = result["cdrs"]
        self.assertEqual((cdr["cause"], cdr["call_dir"]), (200, direction), report)
        return report

    def test_clientCallsPhone(self):
        """
        After a digest-authenticated REGISTER, C{call} to C{bob} rings
        baresip at its registered contact (no trunk is configured); tones
        both ways.
        """
        result = runDriver(self, "client-calls-phone")
        report = self.check(result, "outbound")
        self.assertIsNone(result["cdrs"][0].get("trunk"), report)

    def test_phoneCallsClient(self):
        """
        The registered phone dials C{sip:alice@LINKRTC}: its INVITE is
        challenged (407) and, with bob's credentials, rings the client;
        tones both ways.
        """
        result = runDriver(self, "phone-calls-client")
        report = self.check(result, "inbound")
        self.assertTrue(any("INVITE from bob authenticated" in line
                            for line in result["registrarLog"]), report)
        self.assertEqual(result["cdrs"][0]["from_uri"].split("@")[0], "sip:bob", report)


class DerivedCredentialsPhoneTests(BaresipTestsMixin, SynchronousTestCase):
    """
    LinkRTC with C{--auth-secret}: baresip registers as dave, a user of no
    C{[sip-users]} table, with SIP credentials derived from the secret
    (C{auth_user=dave~EXPIRY}, docs/security.rst), and calls the token
    client alice / is called by it.
    """

    def check(self, result, direction):
        report = self.report(result)
        self.assertTrue(result["sipUsername"].startswith("dave~"), report)
        self.assertGreaterEqual(result["registrations"].get("challenged", 0), 1, report)
        self.assertGreaterEqual(result["registrations"].get("ok", 0), 1, report)
        self.assertTrue(any("dave at" in line for line in result["registrarLog"]), report)
        self.assertTone(result["phoneHeard"], 880.0, report)
        self.assertTone(result["clientHeard"], 440.0, report)
        self.assertTrue(result["phoneEnded"], report)
        self.assertEqual(result["clientErrors"], [], report)
        self.assertEqual(result["linkrtcTracebacks"], 0, result.get("linkrtcLog", "")[-4000:])
        [cdr] = result["cdrs"]
        self.assertEqual((cdr["cause"], cdr["call_dir"]), (200, direction), report)
        return report

    def test_clientCallsPhone(self):
        """The token client's C{call} to C{dave} rings baresip at its contact; tones both ways."""
        self.check(runDriver(self, "derived-client-calls-phone"), "outbound")

    def test_phoneCallsClient(self):
        """
        baresip dials C{sip:alice@LINKRTC}: its INVITE is challenged (407,
        dave is registered) and passes with the derived credentials.
        """
        result = runDriver(self, "derived-phone-calls-client")
        report = self.check(result, "inbound")
        self.assertTrue(any("INVITE from dave authenticated" in line
                            for line in result["registrarLog"]), report)


class RegisteredPhoneMessageTests(BaresipTestsMixin, SynchronousTestCase):
    """Instant messages between baresip registered as bob and the aiortc client alice."""

    def test_messagesBothWays(self):
        """
        baresip's C{/message} to alice (a SIP MESSAGE, challenged with 407
        and sent again with bob's credentials) reaches the client as
        C{message}; the client's C{message} to C{bob} reaches baresip as
        a MESSAGE to its registered contact, and the client gets
        C{message-sent}.
        """
        result = runDriver(self, "messages")
        report = self.report(result)
        self.assertEqual(result["clientGot"],
                         {"type": "message", "from": "bob", "text": "hello alice from bob"},
                         report)
        self.assertTrue(any("MESSAGE from bob authenticated" in line
                            for line in result["registrarLog"]), report)
        sent = result["clientSent"]
        self.assertEqual((sent["type"], sent["to"], sent["ref"]), ("message-sent", "bob", "m1"),
                         report)
        self.assertIn(sent["status"], (200, 202), report)
        self.assertTrue(result["phoneGot"], report + "\n" + result.get("phoneShown", ""))
        self.assertEqual(result["linkrtcTracebacks"], 0, result.get("linkrtcLog", "")[-4000:])


class RegisteredPhoneBrowserTests(BridgeTestsMixin, SynchronousTestCase):
    """The demo softphone in Chromium, logged in as alice, calls baresip registered as bob."""

    def setUp(self):
        requirePeer("baresip")
        requireChromium()
        requireNamespaces()

    def test_pageCallsPhone(self):
        """
        After baresip's digest-authenticated (MD5) REGISTER, the page dials
        C{bob}: LinkRTC rings baresip at its registered contact, baresip
        answers by itself; the page's 880 Hz reaches baresip and
        baresip's 440 Hz reaches the page (FFT at each far end); the page
        hangs up and baresip sees the BYE.
        """
        result = runDriver(self, "page-calls-phone", timeout=90.0)
        report = (summary(result) + "\nbaresip:\n" + result.get("baresipLog", "")[-2000:]
                  + "\nconsole:\n" + "\n".join(result.get("console", []))[-2000:])
        self.assertGreaterEqual(result["registrations"].get("challenged", 0), 1, report)
        self.assertGreaterEqual(result["registrations"].get("ok", 0), 1, report)
        self.assertTrue(any("bob at" in line for line in result["registrarLog"]), report)
        self.assertTone(result["phoneHeard"], 880.0, report)
        heard = result["pageHeard"]
        self.assertIsNotNone(heard, report)
        self.assertLessEqual(abs(heard["dominant"] - 440.0), 20, report)
        self.assertGreater(result["stats"]["inbound"]["packetsReceived"], 100, report)
        self.assertTrue(result["phoneEnded"], report)
        self.assertIn("call ended normally (200)", result["calllog"], report)
        self.assertEqual(result["linkrtcTracebacks"], 0, result.get("linkrtcLog", "")[-4000:])
        [cdr] = result["cdrs"]
        self.assertEqual((cdr["cause"], cdr["call_dir"]), (200, "outbound"), report)
        self.assertIsNone(cdr.get("trunk"), report)
