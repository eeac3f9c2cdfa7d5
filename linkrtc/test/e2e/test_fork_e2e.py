"""
A user with several devices, and SIP-to-SIP calls, end to end
(L{linkrtc.call.fork}, L{linkrtc.call.sipphones}): baresip registered as
carol (digest) calls bob by name through a running C{twistd -n linkrtc
--media bridge}, inside a network namespace that has only loopback
(C{fork_driver.py} under C{unshare --net}).

Each direction carries its own tone (440 Hz from carol, 880 Hz from bob's
answering device), each side's recording checked by FFT. bob's second
device, a SIPp UAS registered as bob, only rings: its scenario fails
unless it gets a CANCEL with C{Reason: SIP;cause=200;text="Call
completed elsewhere"} (RFC 3326).

A SIPp phone answering as bob holds and resumes the call with
re-INVITEs (C{phone-holds}); see L{test_phoneHoldsAndResumes}.

An offerless INVITE (RFC 3261 §13.2.1) from a SIPp caller rings bob's
baresip: LinkRTC's offer goes in the 200, the caller's answer comes in
the ACK; see L{test_offerlessCallsPhone}.

The other way round, an aiortc client calls bob by name while bob is
registered from baresip and from that SIPp device: both devices get the
INVITE (L{linkrtc.call.contactfork}); baresip answers, the SIPp device
must get the CANCEL with the Reason; tones both ways.
"""

import os

from twisted.trial.unittest import SynchronousTestCase

from linkrtc.test.e2e.fork_driver import HOLD_SECONDS, HOLD_TALK, RESUMED_TALK, TALK
from linkrtc.test.e2e.harness import requireNamespaces, requirePeer
from linkrtc.test.e2e.test_bridge_e2e import BridgeTestsMixin, runBaresipDriver, summary

DRIVER = os.path.join(os.path.dirname(os.path.abspath(__file__)), "fork_driver.py")


class ForkTests(BridgeTestsMixin, SynchronousTestCase):
    def setUp(self):
        requirePeer("baresip")
        requirePeer("sipp")
        requireNamespaces()

    def run_(self, scenario):
        result = runBaresipDriver(self, DRIVER, scenario, timeout=90.0)
        report = (summary(result) + "\nbob: " + str(result.get("bobHeard"))
                  + "\ndevice: " + str(result.get("deviceLog", ""))[-1500:]
                  + "\nlinkrtc:\n" + result.get("linkrtcLog", "")[-3000:])
        self.assertEqual(result["linkrtcTracebacks"], 0, report)
        [cdr] = result["cdrs"]
        self.assertEqual((cdr["cause"], cdr["call_dir"], cdr["client"]),
                         (200, "inbound", "bob"), report)
        self.assertEqual(cdr["from_uri"].split("@")[0], "sip:carol", report)
        self.assertTone(result["phoneHeard"], 880.0, report)
        self.assertTrue(result["phoneEnded"], report)
        return result, cdr, report

    def assertCancelledElsewhere(self, result, report):
        self.assertEqual(result["deviceExit"], 0, report)
        self.assertTrue(result["deviceSawReason"], report)

    def test_phoneCallsPhone(self):
        """
        baresip (carol) dials C{sip:bob@LINKRTC}, bob is only a registered
        baresip: it rings and answers (was 480); the bridge relays RTP
        between the two SIP legs; tones both ways; carol hangs up and bob
        sees the BYE.
        """
        result, cdr, report = self.run_("phone-calls-phone")
        self.assertTone(result["bobHeard"], 440.0, report)
        self.assertTrue(result["bobEnded"], report)
        self.assertEqual(cdr["media"]["mode"], "sip", report)
        self.assertTrue(cdr["device"].startswith("sip:bob"), report)

    def test_phoneCallsPhonePassthrough(self):
        """
        The same with C{--media passthrough}: carol's SDP goes to bob and
        bob's answer back as they are; RTP flows between the phones;
        tones both ways.
        """
        result, cdr, report = self.run_("phone-calls-phone-passthrough")
        self.assertTone(result["bobHeard"], 440.0, report)
        self.assertEqual(cdr["media"]["mode"], "passthrough", report)
        self.assertTrue(cdr["device"].startswith("sip:bob"), report)

    def test_forkPhoneWins(self):
        """
        bob has two SIP devices: both ring; baresip answers, the SIPp
        device is CANCELed with the Reason; tones both ways on the winner.
        """
        result, cdr, report = self.run_("fork-phone-wins")
        self.assertCancelledElsewhere(result, report)
        self.assertTone(result["bobHeard"], 440.0, report)
        self.assertTrue(cdr["device"].startswith("sip:bob"), report)

    def test_forkClientWins(self):
        """
        bob has a WebRTC client and a SIP device: both ring; the client
        answers, the SIP device is CANCELed with the Reason; tones both
        ways between carol's baresip and the client.
        """
        result, cdr, report = self.run_("fork-client-wins")
        self.assertCancelledElsewhere(result, report)
        self.assertTone(result["clientHeard"], 440.0, report)
        self.assertEqual(result["clientStates"][-2:], ["confirmed", "dropped"], report)
        self.assertTrue(cdr["device"].startswith("ws:"), report)

    def test_phoneHoldsAndResumes(self):
        """
        bob is a SIPp phone (bridge mode): it answers carol's call and
        streams 880 Hz, sends a re-INVITE with C{a=sendonly} and gets 200
        with C{a=recvonly}, then one with C{a=sendrecv} and gets
        C{a=sendrecv} (its scenario checks both, exit 0); carol's leg is
        held and resumed by LinkRTC's re-INVITEs (the client's hold, as a
        browser's); carol's BYE ends the call with its CDR.

        Audio: carol hears 880 Hz before the hold (FFT of her recording;
        baresip's recording stops at the hold, which restarts its
        player). That bob's audio is dropped during the hold and relayed
        again after the resume is read from the CDR's RTP counts (50
        packets a second): what LinkRTC sent carol covers the talk before
        the hold and after the resume, and falls short of what bob sent by
        about the hold.
        """
        result, cdr, report = self.run_("phone-holds")
        report += "\nholdLines: " + str(result.get("holdLines")) \
            + "\ndevice messages: " + str(result.get("deviceMessages", ""))[-4000:]
        self.assertEqual(result["deviceExit"], 0, report)
        self.assertEqual(cdr["media"]["mode"], "sip", report)
        self.assertTrue(cdr["device"].startswith("sip:bob"), report)
        holds = result["holdLines"]
        self.assertTrue(any("SIP side held" in line for line in holds), report)
        self.assertTrue(any("SIP side resumed" in line for line in holds), report)
        phone, sip = cdr["media"]["phone"], cdr["media"]["sip"]
        self.assertGreaterEqual(sip["packetsSent"], 50 * (HOLD_TALK + RESUMED_TALK - 1.5), report)
        self.assertGreaterEqual(phone["packetsReceived"] - sip["packetsSent"],
                                50 * (HOLD_SECONDS - 1.0), report)

    def test_offerlessCallsPhone(self):
        """
        SIPp (dave) sends an offerless INVITE for bob, registered only from
        baresip (880 Hz): baresip gets an INVITE with LinkRTC's RTP offer
        and answers; SIPp's scenario fails unless the 200 carries an offer
        with PCMU (baresip's codec); its ACK carries the answer; it
        streams 440 Hz, which baresip hears (FFT); bob's audio reaches
        the caller's leg (the CDR's RTP counts: what LinkRTC sent SIPp, 50
        packets a second, SIPp cannot record); SIPp's BYE ends the call
        on baresip too, one CDR.
        """
        result, cdr, report = self.runOfferless("offerless-calls-phone")
        self.assertEqual(cdr["media"]["mode"], "sip", report)
        self.assertTrue(cdr["device"].startswith("sip:bob"), report)
        phone, sip = cdr["media"]["phone"], cdr["media"]["sip"]
        self.assertEqual(phone["codec"], "PCMU", report)
        self.assertGreaterEqual(sip["packetsSent"], 50 * (TALK - 1.5), report)
        self.assertGreaterEqual(phone["packetsSent"], 50 * (TALK - 1.5), report)

    def runOfferless(self, scenario):
        """Run an C{offerless-calls-phone} scenario: @return: C{(result, cdr, report)}."""
        result = runBaresipDriver(self, DRIVER, scenario, timeout=90.0)
        report = (summary(result) + "\nbob: " + str(result.get("bobHeard"))
                  + "\ncaller heard: " + str(result.get("callerHeard"))
                  + "\ncaller: " + str(result.get("callerLog", ""))[-1500:]
                  + "\nbob's baresip: " + str(result.get("bobLog", ""))[-1500:]
                  + "\nlinkrtc:\n" + result.get("linkrtcLog", "")[-3000:])
        self.assertEqual(result["linkrtcTracebacks"], 0, report)
        self.assertEqual(result["callerExit"], 0, report)
        self.assertTone(result["bobHeard"], 440.0, report)
        self.assertTrue(result["bobEnded"], report)
        [cdr] = result["cdrs"]
        self.assertEqual((cdr["cause"], cdr["call_dir"], cdr["client"]),
                         (200, "inbound", "bob"), report)
        self.assertEqual(cdr["from_uri"].split("@")[0], "sip:dave", report)
        return result, cdr, report

    def test_offerlessCallsPhonePassthrough(self):
        """
        The same with C{--media passthrough}: baresip gets an offerless
        INVITE, its offer goes in the 200 to SIPp, SIPp's answer (in its
        ACK, naming a recorder's port) in the ACK LinkRTC holds until
        then; SIPp's 440 Hz reaches baresip, baresip's 880 Hz the
        recorder (FFT both); BYE; one CDR.
        """
        result, cdr, report = self.runOfferless("offerless-calls-phone-passthrough")
        self.assertEqual(cdr["media"]["mode"], "passthrough", report)
        self.assertTrue(cdr["device"].startswith("sip:bob"), report)
        self.assertTone(result["callerHeard"], 880.0, report)

    def test_clientCallsForkedPhone(self):
        """
        The aiortc client alice calls C{bob}, registered from baresip and
        from a SIPp device: both ring (SIPp answers the INVITE with 180),
        baresip answers; the SIPp device gets CANCEL with C{Reason:
        SIP;cause=200;text="Call completed elsewhere"} (its scenario fails
        without it); tones both ways; the CDR names baresip's contact.
        """
        result = runBaresipDriver(self, DRIVER, "client-calls-forked-phone", timeout=90.0)
        report = (summary(result) + "\ndevice: " + str(result.get("deviceLog", ""))[-1500:]
                  + "\ndevice messages: " + str(result.get("deviceMessages", ""))[-2500:]
                  + "\nlinkrtc:\n" + result.get("linkrtcLog", "")[-3000:])
        self.assertEqual(result["linkrtcTracebacks"], 0, report)
        self.assertCancelledElsewhere(result, report)
        self.assertIn("INVITE sip:bob@", result["deviceMessages"], report)
        self.assertTone(result["phoneHeard"], 880.0, report)
        self.assertTone(result["clientHeard"], 440.0, report)
        self.assertEqual(result["clientStates"][-2:], ["confirmed", "dropped"], report)
        [cdr] = result["cdrs"]
        self.assertEqual((cdr["cause"], cdr["call_dir"], cdr["client"]),
                         (200, "outbound", "alice"), report)
        self.assertTrue(cdr["device"].startswith("sip:bob"), report)
        self.assertNotIn(f":{result['devicePort']}", cdr["device"], report)
