"""
Call transfer end to end (C{--media bridge}, L{linkrtc.call.transfer}),
through C{transfer_driver.py} in a network namespace with only loopback.

Tones tell the parties apart: alice (aiortc) sends 880 Hz, carol
(aiortc) 660 Hz, baresip 440 Hz; each recording is checked by FFT.

  - baresip blind-transfers its call with alice to carol (REFER): alice
    and carol then hear each other, baresip is released;
  - alice transfers baresip to carol (C{transfer} message; LinkRTC REFERs
    baresip): baresip and carol then hear each other;
  - SIPp, in two calls, makes an attended transfer (REFER with Replaces):
    alice and carol are joined;
  - SIPp's INVITE with Replaces takes over alice's call (its tone reaches
    alice); one whose Replaces names no dialog gets 481.
"""

import json
import os

from twisted.trial.unittest import SynchronousTestCase

from linkrtc.test.e2e import harness
from linkrtc.test.e2e.harness import requireNamespaces, requirePeer
from linkrtc.test.e2e.test_bridge_e2e import BridgeTestsMixin

DRIVER = os.path.join(os.path.dirname(os.path.abspath(__file__)), "transfer_driver.py")

ALICE, CAROL, PHONE = 880.0, 660.0, 440.0


def details(result):
    return ["\nclient: " + json.dumps(result.get("clientMessages"))[-2000:],
            "\ncarol: " + json.dumps(result.get("carolMessages"))[-2000:],
            "\nbaresip:\n" + (result.get("baresipLog") or "")[-2000:]]


def summary(result):
    keys = ("clientHeard", "aliceHeardAfter", "carolHeard", "phoneHeard", "clientStates",
            "carolStates", "aliceTransfer", "phoneEnded", "sippReferExit", "sippTargetExit",
            "sippUnknownExit", "sippReplacedExit", "sippReplacesExit",
            "mediaModes", "cdrs", "steps", "clientErrors", "carolErrors")
    return json.dumps({k: result.get(k) for k in keys})


class TransferTests(BridgeTestsMixin, SynchronousTestCase):
    def setUp(self):
        requirePeer("baresip")
        requirePeer("sipp")
        requireNamespaces()

    def runTransfer(self, scenario):
        result, _ = harness.runScenario(
            self, DRIVER, scenario, 100.0, "the {scenario} scenario failed (files in {out}):",
            details)
        return result, summary(result)

    def assertClean(self, result, report):
        self.assertEqual(result["clientStates"], ["ringing", "confirmed", "dropped"], report)
        self.assertEqual(result["carolStates"], ["ringing", "confirmed", "dropped"], report)
        self.assertEqual(result["clientErrors"], [], report)
        self.assertEqual(result["carolErrors"], [], report)
        self.assertEqual(result["linkrtcTracebacks"], 0, result.get("linkrtcLog", "")[-4000:])
        self.assertEqual(len(result["cdrs"]), 2, report)

    def test_phoneBlindTransfer(self):
        """
        baresip REFERs its call with alice to carol: carol rings and answers,
        baresip's call ends, then alice hears carol's tone and carol alice's.
        """
        result, report = self.runTransfer("phone-transfers")
        self.assertClean(result, report)
        self.assertTrue(result["phoneEnded"], report)
        self.assertTone(result["aliceHeardAfter"], CAROL, report)
        self.assertTone(result["carolHeard"], ALICE, report)
        self.assertTone(result["phoneHeard"], ALICE, report, minSeconds=1.0)
        kinds = sorted((c["transfer"]["role"], c["cause"]) for c in result["cdrs"])
        self.assertEqual(kinds, [("target", 200), ("transferee", 200)], report)

    def test_clientBlindTransfer(self):
        """
        alice's C{transfer} to carol: baresip is REFERred, calls carol, and
        alice's call ends; baresip and carol then hear each other.
        """
        result, report = self.runTransfer("client-transfers")
        self.assertClean(result, report)
        self.assertEqual(result["aliceTransfer"][0]["status"], 202, report)
        self.assertTrue(result["phoneEnded"], report)
        self.assertTone(result["carolHeard"], PHONE, report)
        self.assertTone(result["phoneHeard"], CAROL, report)
        [alice] = [c for c in result["cdrs"] if c.get("transfer")]
        self.assertEqual(alice["transfer"]["role"], "transferor", report)
        self.assertEqual((alice["cause"], alice["reason"]), (200, "transferred"), report)

    def test_attendedTransfer(self):
        """
        SIPp calls carol and alice and REFERs the alice call with Replaces
        naming the carol call: both SIPp dialogs end with BYE (after NOTIFY
        200), alice and carol hear each other.
        """
        result, report = self.runTransfer("sipp-attended")
        self.assertClean(result, report)
        self.assertEqual((result["sippReferExit"], result["sippTargetExit"]), (0, 0), report)
        self.assertTone(result["clientHeard"], CAROL, report)
        self.assertTone(result["carolHeard"], ALICE, report)
        roles = sorted(c["transfer"]["role"] for c in result["cdrs"])
        self.assertEqual(roles, ["target", "transferee"], report)

    def test_inviteWithReplaces(self):
        """
        An INVITE whose Replaces names no dialog gets 481; one naming
        alice's call from SIPp gets 200, the old dialog gets BYE, alice
        hears the new dialog's 440 Hz, and its BYE ends alice's call.
        """
        result, report = self.runTransfer("sipp-replaces")
        self.assertEqual(result["sippUnknownExit"], 0, report + result.get("sipp-unknown.log", ""))
        self.assertEqual((result["sippReplacedExit"], result["sippReplacesExit"]), (0, 0), report)
        self.assertTone(result["clientHeard"], PHONE, report)
        self.assertEqual(result["clientStates"], ["ringing", "confirmed", "dropped"], report)
        self.assertEqual(result["linkrtcTracebacks"], 0, result.get("linkrtcLog", "")[-4000:])
        [cdr] = result["cdrs"]
        self.assertEqual((cdr["cause"], cdr["transfer"]["kind"]), (200, "replaces"), report)
