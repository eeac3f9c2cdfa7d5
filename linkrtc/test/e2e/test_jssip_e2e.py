"""
SIP over WebSocket end to end (RFC 7118): JsSIP (the npm package
C{jssip@3}, which C{.ci/run} installs) in real headless Chromium registers
with LinkRTC's registrar over C{ws://.../sip} (subprotocol C{sip}, digest
authentication), then calls baresip (registered over UDP) and is called
by it, through a running C{twistd -n linkrtc --media bridge}: the
browser's DTLS-SRTP (WebRTC) on one side of the bridge, baresip's plain
RTP on the other (C{jssip_driver.py} under C{unshare --net}).

Each direction carries its own tone (880 Hz from the browser, 440 Hz
from baresip): the page's FFT and baresip's recording are checked.
"""

import os

from twisted.trial.unittest import SkipTest, SynchronousTestCase

from linkrtc.test.e2e import harness
from linkrtc.test.e2e.harness import inCI, requireNamespaces, requirePeer
from linkrtc.test.e2e.test_bridge_e2e import BridgeTestsMixin
from linkrtc.test.e2e.test_browser import requireChromium

DRIVER = os.path.join(os.path.dirname(os.path.abspath(__file__)), "jssip_driver.py")
MODULES = os.environ.get("LINKRTC_JSSIP_MODULES", "/tmp/linkrtc-npm/node_modules")


def requireJsSIP():
    """JsSIP from npm; skip (dev) or fail (CI) without it."""
    if not os.path.isfile(os.path.join(MODULES, "jssip", "package.json")):
        message = (f"JsSIP is not installed in {MODULES} "
                   "(npm install --prefix /tmp/linkrtc-npm jssip@3)")
        if inCI():
            raise AssertionError(message + " (.ci/run must install it)")
        raise SkipTest(message)


def runDriver(testCase, scenario, timeout=75.0):
    result, _ = harness.runScenario(
        testCase, DRIVER, scenario, timeout, "the {scenario} scenario failed (files in {out}):",
        lambda result: ["\npage events: " + str(result.get("pageEvents")),
                        "\nconsole: " + "\n".join(result.get("console", [])),
                        "\nbaresip:\n" + result.get("baresipLog", "")[-2000:]])
    return result


class JsSIPTests(BridgeTestsMixin, SynchronousTestCase):
    """carol (JsSIP over WebSocket) and bob (baresip over UDP) call each other."""

    def setUp(self):
        requirePeer("baresip")
        requireChromium()
        requireJsSIP()
        requireNamespaces()

    def check(self, result, direction):
        report = (f"steps: {result.get('steps')}\npage events: {result.get('pageEvents')}"
                  f"\nbaresip:\n{result.get('baresipLog', '')[-2000:]}")
        registrar = result["registrarLog"]
        # carol registered over the WebSocket: a .invalid contact, a WS flow.
        self.assertTrue(any("carol at sip:" in line and ".invalid;transport=ws via WS:" in line
                            for line in registrar), registrar)
        self.assertGreaterEqual(result["registrations"].get("challenged", 0), 2, report)
        self.assertTone(result["phoneHeard"], 880.0, report)
        heard = result["pageHeard"]
        self.assertIsNotNone(heard, report)
        self.assertLessEqual(abs(heard["dominant"] - 440.0), 10.0, report)
        self.assertGreater(heard["db"], -60.0, report)
        self.assertTrue(result["phoneEnded"], report)
        self.assertEqual(result["linkrtcTracebacks"], 0, result.get("linkrtcLog", "")[-4000:])
        [cdr] = result["cdrs"]
        self.assertEqual((cdr["cause"], cdr["call_dir"], cdr["client"]),
                         (200, direction, "carol"), report)
        self.assertGreater(cdr["media"]["webrtc"]["packetsReceived"], 100, report)
        return report

    def test_jssipCallsPhone(self):
        """JsSIP's INVITE over its WebSocket reaches baresip by name; tones both ways."""
        result = runDriver(self, "jssip-calls-phone")
        report = self.check(result, "outbound")
        self.assertEqual(result["cdrs"][0]["to_uri"].split("@")[0], "sip:bob", report)

    def test_phoneCallsJsSIP(self):
        """baresip dials carol: the INVITE goes to JsSIP over its own WebSocket; tones both ways."""
        result = runDriver(self, "phone-calls-jssip")
        report = self.check(result, "inbound")
        self.assertIn("incoming", result["pageEvents"], report)


class JsSIPInCallTests(BridgeTestsMixin, SynchronousTestCase):
    """carol (JsSIP) calls bob (baresip): DTMF by INFO, hold and resume by re-INVITE."""

    setUp = JsSIPTests.setUp
    check = JsSIPTests.check

    def checkInCall(self, result, direction):
        report = self.check(result, direction)
        self.assertEqual(result["phoneDigits"], "5", report)
        # aiortc's WebRTC SDP has no telephone-event: the browser cannot
        # send RFC 4733 itself (JsSIP's transportType 'RFC2833'), INFO it is.
        self.assertFalse(result["canInsertDTMF"], report)
        self.assertEqual(result["directions"], {"hold": "recvonly", "unhold": "sendrecv"},
                         report)
        events = result["pageEvents"]
        self.assertLess(events.index("hold"), events.index("unhold"), report)
        self.assertFalse([e for e in events if e.startswith("failed")], report)
        lines = result["holdLines"]
        self.assertEqual(len(lines), 2, lines)
        self.assertIn("SIP side held", lines[0])
        self.assertIn("SIP side resumed", lines[1])
        # Audio to baresip after the resume (its recording stopped at the
        # hold): the SIP side sent more than 80% of 50 packets/s since.
        times = {step["name"]: step["t"] for step in result["steps"]}
        resumed = times["page hung up"] - times["jssip unhold"]
        sent = result["cdrs"][0]["media"]["sip"]["packetsSent"]
        self.assertGreater(sent, 0.8 * 50 * resumed, report)
        return report

    def test_dtmfHoldResume(self):
        """
        C{sendDTMF('5')} (SIP INFO) reaches baresip as RFC 4733; JsSIP's
        hold gets our recvonly answer and baresip LinkRTC's sendonly
        re-INVITE; unhold gets sendrecv and baresip's resume; tones both
        ways (the page's FFT is taken after the resume; baresip's side
        after it is the CDR's RTP count, its recording stopping at a
        re-INVITE).
        """
        result = runDriver(self, "jssip-dtmf-hold", timeout=90.0)
        report = self.checkInCall(result, "outbound")
        self.assertEqual(result["remoteSetup"], "active", report)

    def test_calledDtmfHoldResume(self):
        """
        The same when baresip calls JsSIP: our SDP was the offer, so the
        answers to JsSIP's re-offers say C{passive}, the role its answer
        gave us.
        """
        result = runDriver(self, "called-dtmf-hold", timeout=90.0)
        report = self.checkInCall(result, "inbound")
        self.assertEqual(result["remoteSetup"], "passive", report)


class JsSIPDerivedCredentialsTests(BridgeTestsMixin, SynchronousTestCase):
    """
    JsSIP with SIP credentials derived from C{--auth-secret}
    (C{authorization_user}): their C{outgoing} flag decides whether it may
    call a number through the trunk (baresip).
    """

    def setUp(self):
        requirePeer("baresip")
        requireChromium()
        requireJsSIP()
        requireNamespaces()

    def test_outgoingFlag(self):
        """
        Without C{~outgoing} the call to 5551234 is refused (a security
        line says so); with it the call reaches baresip through the trunk;
        tones both ways.
        """
        result = runDriver(self, "derived-calls-trunk")
        report = (f"steps: {result.get('steps')}\npage events: {result.get('pageEvents')}"
                  f"\nbaresip:\n{result.get('baresipLog', '')[-2000:]}")
        self.assertTrue(result["deniedState"].get("registered"), report)
        self.assertTrue(result["deniedState"].get("failed"), report)
        self.assertFalse(result["deniedState"].get("confirmed"), report)
        self.assertTrue(any("erin may not place outgoing calls" in line
                            for line in result["refusals"]), report)
        self.assertTrue(any("erin at sip:" in line and "transport=ws via WS:" in line
                            for line in result["registrarLog"]), result["registrarLog"])
        self.assertTone(result["phoneHeard"], 880.0, report)
        heard = result["pageHeard"]
        self.assertIsNotNone(heard, report)
        self.assertLessEqual(abs(heard["dominant"] - 440.0), 10.0, report)
        self.assertTrue(result["phoneEnded"], report)
        self.assertEqual(result["linkrtcTracebacks"], 0, result.get("linkrtcLog", "")[-4000:])
        [cdr] = [c for c in result["cdrs"] if c.get("cause") == 200]
        self.assertEqual((cdr["call_dir"], cdr["client"], cdr["trunk"]),
                         ("outbound", "erin", "baresip"), report)
