"""
The demo softphone and C{linkrtc.js} in real headless Chromium (Debian's
C{/usr/bin/chromium} driven by Playwright for Python), against a running
C{twistd -n linkrtc}, inside a network namespace that has only loopback.

The browser side runs in C{browser_driver.py} (under C{unshare --net});
these tests check what it reports. The call test: LinkRTC in
C{--media bridge}; baresip calls alice; the page answers; the page's
880 Hz reaches baresip and baresip's 440 Hz reaches the page (FFT on both
sides, so an echo cannot pass); a DTMF key on the page reaches baresip;
the page hangs up; a second tab (bob) sees nothing of the call. The
README test: the same call against the README's run command, C{twistd -n
linkrtc} with no option at all (bridge media and loopback ICE by default).

Set C{LINKRTC_UPDATE_SCREENSHOT=1} to copy the in-call screenshot to
C{docs/images/softphone.png}; it is always kept in the test's temp dir.
"""

import json
import os
import shutil
import urllib.request

from twisted.trial.unittest import SkipTest, SynchronousTestCase

from linkrtc.test.e2e import harness
from linkrtc.test.e2e.harness import (
    ROOT,
    LinkRTCProcess,
    inCI,
    requireNamespaces,
    requirePeer,
)

DRIVER = os.path.join(os.path.dirname(os.path.abspath(__file__)), "browser_driver.py")
CHROMIUM = "/usr/bin/chromium"


def requireChromium():
    """Debian's Chromium and Playwright for Python; skip (dev) or fail (CI) without them."""
    missing = []
    if not os.access(CHROMIUM, os.X_OK):
        missing.append(f"{CHROMIUM} is not installed")
    try:
        import playwright.sync_api  # noqa: F401
    except ImportError:
        missing.append("playwright (pip install playwright; never `playwright install`)")
    if missing:
        message = "; ".join(missing)
        if inCI():
            raise AssertionError(message + " (CI must install it)")
        raise SkipTest(message)


def runDriver(testCase, scenario, timeout=85.0):
    """
    Run C{browser_driver.py --scenario SCENARIO} in a new network namespace.

    @param timeout: seconds; the driver's process group is killed after it.
    @return: the driver's result (C{dict}) and its output directory.
    """
    return harness.runScenario(
        testCase, DRIVER, scenario, timeout, "the browser scenario failed:",
        lambda result: [
            "\npages: " + json.dumps(result.get("pagesAtFailure"))[-4000:],
            "\nconsole: " + "\n".join(result.get("console", []))[-2000:]])


class StaticFilesTests(SynchronousTestCase):
    """LinkRTC serves the demo page at / and the SDK at /linkrtc.js."""

    def test_served(self):
        linkrtc = LinkRTCProcess().start()
        self.addCleanup(linkrtc.stop)
        base = f"http://127.0.0.1:{linkrtc.httpPort}"
        with urllib.request.urlopen(base + "/", timeout=10) as r:
            page = r.read().decode()
            self.assertTrue(r.headers["Content-Type"].startswith("text/html"))
        for marker in ('id="dialpad"', 'id="ladder"', 'src="app.js"'):
            self.assertIn(marker, page)
        for path, kind in (("/linkrtc.js", "text/javascript"), ("/app.js", "text/javascript"),
                           ("/style.css", "text/css")):
            with urllib.request.urlopen(base + path, timeout=10) as r:
                self.assertEqual(r.headers["Content-Type"].split(";")[0], kind, path)
                self.assertGreater(len(r.read()), 1000, path)


class BrowserTests(SynchronousTestCase):
    def setUp(self):
        requireChromium()
        requireNamespaces()

    def assertNear(self, value, expected, tolerance, message):
        """Assert C{value} is within C{tolerance} of C{expected} (Hz)."""
        self.assertIsNotNone(value, message)
        self.assertTrue(abs(value - expected) <= tolerance,
                        f"{value} Hz is not {expected} +/- {tolerance} Hz\n{message}")

    def test_loginAndReconnect(self):
        """
        The page logs in and shows registered; when LinkRTC goes away the
        page says so, and when it comes back the page registers again
        without a reload.
        """
        result, _ = runDriver(self, "login", timeout=60)
        [registered] = [s for s in result["steps"] if s["name"] == "alice registered"]
        self.assertEqual(registered["status"], "Registered as alice")
        self.assertIn("lost", result["lost"]["banner"].lower())
        self.assertIn("Registered as alice", result["reconnected"]["status"])

    def assertTwoWayAudio(self, result, report):
        """
        The page's 880 Hz reached baresip and baresip's 440 Hz reached the
        page (RTP statistics and an FFT on each side), over loopback.
        """
        # The page's tone (880 Hz) reached baresip.
        heard = result["phoneHeard"]
        self.assertIsNotNone(heard, "baresip recorded nothing\n" + report)
        self.assertGreater(heard["seconds"], 3, report)
        self.assertGreater(heard["rms"], 0.01, report)
        self.assertNear(heard["dominant"], 880.0, 20, report)

        # baresip's tone (440 Hz) reached the page: RTP stats and an FFT.
        first, second = result["stats"]
        self.assertEqual(second["ice"], "connected", report)
        self.assertGreater(first["inbound"]["packetsReceived"], 100, report)
        self.assertGreater(second["inbound"]["packetsReceived"],
                           first["inbound"]["packetsReceived"], report)
        self.assertGreater(second["inbound"]["totalAudioEnergy"], 0.01, report)
        self.assertGreater(second["outbound"]["packetsSent"], 100, report)
        self.assertIn("127.0.0.1", second["pair"], report)
        self.assertNear(result["pageHeard"]["dominant"], 440.0, 20, report)

    def test_callFromBaresip(self):
        """
        baresip calls alice through LinkRTC (bridge); the page answers;
        audio both ways, DTMF to baresip, hang-up from the page.
        """
        requirePeer("baresip")
        result, out = runDriver(self, "call")
        report = json.dumps({k: result.get(k) for k in (
            "stats", "pageHeard", "phoneHeard", "phoneDigits", "calllog", "steps")})
        self.assertTwoWayAudio(result, report)

        # The page's DTMF key reached baresip (RFC 4733).
        self.assertEqual(result["phoneDigits"], "5", report)

        # The page hung up: BYE at baresip, the call log says how it ended.
        self.assertTrue(result["phoneSawBye"], result["baresipLog"][-2000:])
        self.assertIn("confirmed → dropped", result["calllog"])
        self.assertIn("call ended normally (200)", result["calllog"])
        with open(os.path.join(out, "cdr.jsonl")) as f:
            start, cdr = [json.loads(line) for line in f if line.strip()]
        self.assertEqual((start["record"], cdr["record"]), ("start", "end"))
        self.assertEqual((cdr["cause"], cdr["dropped_by"], cdr["call_dir"]),
                         (200, "usr", "inbound"))

        # The ladder showed the call's signalling; bob's tab saw nothing.
        self.assertGreaterEqual(result["ladderRows"], 5)
        self.assertIn("accept", result["ladderText"])
        self.assertEqual(result["bobCalllog"].strip(), "")
        self.assertEqual(result["bobLadderRows"], 0)

        self.assertTrue(os.path.exists(result["screenshot"]))
        if os.environ.get("LINKRTC_UPDATE_SCREENSHOT"):
            images = os.path.join(ROOT, "docs", "images")
            os.makedirs(images, exist_ok=True)
            shutil.copy(result["screenshot"], os.path.join(images, "softphone.png"))

    def test_readmeRunCommand(self):
        """
        The README's run command, C{twistd -n linkrtc} with no option (no
        C{--media}, no C{--ice-address}): baresip calls the softphone page,
        which answers; baresip's 440 Hz reaches the page and the page's
        880 Hz reaches baresip. The default media mode bridges (plain RTP
        to baresip, WebRTC to the page) and ICE offers 127.0.0.1, the only
        address of the namespace.
        """
        requirePeer("baresip")
        result, _ = runDriver(self, "readme")
        report = json.dumps({k: result.get(k) for k in (
            "stats", "pageHeard", "phoneHeard", "calllog", "loggedCDRs", "steps")})
        [started] = [s for s in result["steps"] if s["name"] == "linkrtc started (no option)"]
        self.assertEqual((started["sip"], started["http"]), (5060, 8080), report)
        self.assertTwoWayAudio(result, report)
        self.assertIn("call ended normally (200)", result["calllog"], report)
        [cdr] = [c for c in result["loggedCDRs"] if c.get("record") == "end"]
        self.assertEqual((cdr["cause"], cdr["call_dir"]), (200, "inbound"), report)
        self.assertIn(cdr["media"]["mode"], ("relay", "transcode"), report)
        self.assertEqual(result["linkrtcTracebacks"], 0, result["linkrtcLog"])

    def test_reloadResumesCall(self):
        """
        A page reload in the middle of a call (issue 13): baresip calls
        alice, the page answers, audio flows; the page is reloaded; it logs
        in again by itself, resumes the same call with its resume token
        and a new offer, and audio flows both ways again: baresip's 440 Hz
        in the page's FFT after the reload, the page's 880 Hz at the end of
        baresip's recording (after the reload). One CDR, the page's hang-up.
        """
        requirePeer("baresip")
        result, out = runDriver(self, "reload", timeout=110)
        report = json.dumps({k: result.get(k) for k in (
            "stats", "pageHeardBefore", "pageHeard", "phoneHeard", "phoneHeardWhole",
            "calllog", "steps", "sameCall")})
        self.assertNear(result["pageHeardBefore"]["dominant"], 440.0, 20, report)
        self.assertTrue(result["sameCall"], report)
        # After the reload: baresip's tone at the page, the page's at baresip.
        self.assertNear(result["pageHeard"]["dominant"], 440.0, 20, report)
        first, second = result["stats"]
        self.assertEqual(second["ice"], "connected", report)
        self.assertGreater(second["inbound"]["packetsReceived"],
                           first["inbound"]["packetsReceived"], report)
        self.assertGreater(second["outbound"]["packetsSent"], 50, report)
        heard = result["phoneHeard"]
        self.assertIsNotNone(heard, "baresip recorded nothing\n" + report)
        self.assertGreater(heard["rms"], 0.01, report)
        self.assertNear(heard["dominant"], 880.0, 20, report)
        self.assertTrue(result["phoneSawBye"], result["baresipLog"][-2000:])
        with open(os.path.join(out, "cdr.jsonl")) as f:
            records = [json.loads(line) for line in f if line.strip()]
        ends = [r for r in records if r["record"] == "end"]
        self.assertEqual(len(ends), 1, records)
        self.assertEqual((ends[0]["cause"], ends[0]["dropped_by"]), (200, "usr"), report)
        self.assertEqual(ends[0]["media"]["webrtc"]["resumes"], 1, ends[0])
        self.assertEqual(result["linkrtcTracebacks"], 0, result["linkrtcLog"])
