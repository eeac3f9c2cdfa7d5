"""
Outbound registration against SIPp playing a registrar that challenges with
401 and checks the MD5 digest credentials itself (SIPp's C{verifyauth},
scenarios/uas_registrar.xml). LinkRTC's L{Registration} runs on the asyncio
reactor in register_driver.py.

SIPp 3.6.1 checks MD5 only; SHA-256 is covered by
L{linkrtc.sip.test.test_auth} and L{linkrtc.sip.test.test_registration}
against our own verifier (DECISIONS.md).
"""

import json
import os
import subprocess
import sys

from twisted.trial.unittest import SynchronousTestCase

from linkrtc.test.e2e.harness import ROOT, freePort, requirePeer, runSIPp

DRIVER = os.path.join(os.path.dirname(os.path.abspath(__file__)), "register_driver.py")


class RegisterTests(SynchronousTestCase):
    def register(self, password):
        """
        Run SIPp as registrar and the driver against it.

        @return: C{(sippResult, driverReport, driverStderr)}.
        """
        requirePeer("sipp")
        port = freePort(both=True)
        driver = subprocess.Popen(
            [sys.executable, DRIVER, f"sip:127.0.0.1:{port}", "--user", "linkrtc",
             "--password", password, "--timeout", "40"],
            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, cwd=ROOT,
        )
        try:
            sipp = runSIPp("-sf", "uas_registrar.xml", "-i", "127.0.0.1", "-p", str(port),
                           "-m", "1", timeout=45)
            out, err = driver.communicate(timeout=60)
        finally:
            if driver.poll() is None:
                driver.kill()
                driver.wait(5)
        lines = out.strip().splitlines()
        self.assertTrue(lines, f"the driver printed nothing; stderr:\n{err[-3000:]}")
        return sipp, json.loads(lines[-1]), err

    def assertSIPpSucceeded(self, sipp, err):
        self.assertEqual(
            sipp.returncode, 0,
            f"sipp failed ({sipp.returncode}):\n{sipp.stdout[-3000:]}\n{sipp.stderr[-2000:]}"
            f"\ndriver log:\n{err[-3000:]}",
        )

    def test_registerRefreshUnregister(self):
        """
        401 answered once with MD5 (qop=auth, nc=1) and verified by SIPp; the
        refresh carries the cached credentials (nc=2) and the un-REGISTER
        (Expires: 0) too, both verified; the registration was 'registered'.
        """
        sipp, report, err = self.register("s3cret")
        self.assertSIPpSucceeded(sipp, err)
        self.assertIn("registered", report["states"])
        self.assertEqual(report["bound"], 2)
        self.assertFalse(report["timeout"])
        self.assertEqual([r["cseq"] for r in report["registers"]], [1, 2, 3, 4])
        self.assertEqual([r["authorization"] for r in report["registers"]],
                         [False, True, True, True])
        self.assertEqual(report["registers"][-1]["expires"], "0")
        self.assertEqual(report["status"]["state"], "unregistered")
        self.assertIsNone(report["status"]["last_error"])

    def test_wrongPassword(self):
        """
        SIPp refuses the credentials and challenges again with the same
        nonce: one clear failure, and no further REGISTER (SIPp fails the
        call on any REGISTER in the next 5 s).
        """
        sipp, report, err = self.register("wrong")
        self.assertSIPpSucceeded(sipp, err)
        self.assertNotIn("registered", report["states"])
        self.assertIn("failed", report["states"])
        self.assertEqual(len(report["registers"]), 2)
        self.assertIn("credentials rejected", report["status"]["last_error"])
