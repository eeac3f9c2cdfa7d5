"""
PRACK (RFC 3262), session timers (RFC 4028) and UPDATE (RFC 3311) end to
end against SIPp: an incoming call whose caller requires 100rel gets its
180 reliably and LinkRTC answers the PRACK before the 200; an outgoing
call through a trunk that sends a reliable 183 is PRACKed by LinkRTC; a
session SIPp refreshes with UPDATE and re-INVITE lives past its interval
(and a re-INVITE LinkRTC cannot relay gets 488 without ending it); a
session LinkRTC refreshes gets UPDATEs; a session nobody refreshes is
ended by LinkRTC's BYE, with the reason in the CDR. Min-SE is set to 2 s
(C{--min-se 2}) so that intervals of 3-4 s keep the tests short.
"""

import os

from twisted.trial.unittest import SynchronousTestCase

from linkrtc.test.e2e.harness import (
    SCENARIOS,
    LinkRTCProcess,
    WSClient,
    freePort,
    readCDRs,
    requirePeer,
    runSIPp,
)
from linkrtc.test.e2e.test_outbound import TRUNK, _SIPpThread


class IncomingTests(SynchronousTestCase):
    """SIPp calls LinkRTC (UAC); a WebSocket client answers."""

    def setUp(self):
        requirePeer("sipp")
        self.cdr = os.path.abspath(self.mktemp())
        # wsclient.py answers with a fake plain-RTP SDP: passthrough media.
        self.linkrtc = LinkRTCProcess("--media", "passthrough", "--cdr", self.cdr,
                                      "--min-se", "2").start()
        self.addCleanup(self.linkrtc.stop)

    def client(self, name, *args):
        client = WSClient(self.linkrtc, name, *args)
        self.addCleanup(client.stop)
        client.waitFor("registered")
        return client

    def sipp(self, scenario, service, *extra):
        result = runSIPp(
            f"127.0.0.1:{self.linkrtc.sipPort}", "-sf", os.path.join(SCENARIOS, scenario),
            "-s", service, "-i", "127.0.0.1", "-p", str(freePort(both=True)),
            "-mi", "127.0.0.1", "-mp", str(freePort()), "-m", "1", *extra, timeout=60,
        )
        self.assertEqual(
            result.returncode, 0,
            f"sipp failed ({result.returncode}):\n{result.stdout[-3000:]}\n{result.stderr[-2000:]}"
            f"\nlinkrtc log:\n{self.linkrtc.logText()[-4000:]}",
        )

    def test_reliableRinging(self):
        """Require: 100rel: a reliable 180, 200 to SIPp's PRACK, then the 200 OK."""
        bob = self.client("bob", "--action", "answer", "--answer-after", "1")
        self.sipp("uac_100rel.xml", "bob", "-d", "300")
        bob.waitFor(lambda m: m.get("state") == "dropped")
        self.assertIn("confirmed", bob.states())
        [cdr] = readCDRs(self.cdr, 1, 10.0)
        self.assertEqual((cdr["cause"], cdr["dropped_by"]), (200, "usr"))

    def test_refreshedByUpdateAndReinvite(self):
        """
        A 4 s session refreshed by UPDATE and re-INVITE outlives its
        interval; a re-INVITE offering only G.729 gets 488 and the call
        stays up until SIPp's BYE (cause 200).
        """
        bob = self.client("bob", "--action", "answer")
        self.sipp("uac_session_refresh.xml", "bob")
        bob.waitFor(lambda m: m.get("state") == "dropped")
        [cdr] = readCDRs(self.cdr, 1, 10.0)
        self.assertEqual((cdr["cause"], cdr["dropped_by"]), (200, "usr"))

    def test_refreshedByUs(self):
        """refresher=uas: LinkRTC sends UPDATE at half the interval, twice."""
        bob = self.client("bob", "--action", "answer")
        self.sipp("uac_session_refreshed_by_us.xml", "bob")
        bob.waitFor(lambda m: m.get("state") == "dropped")
        [cdr] = readCDRs(self.cdr, 1, 10.0)
        self.assertEqual(cdr["cause"], 200)

    def test_expiry(self):
        """Nobody refreshes a 3 s session: LinkRTC sends BYE; the CDR says why."""
        bob = self.client("bob", "--action", "answer")
        self.sipp("uac_session_expire.xml", "bob")
        dropped = bob.waitFor(lambda m: m.get("state") == "dropped")
        self.assertIsNotNone(dropped)
        [cdr] = readCDRs(self.cdr, 1, 10.0)
        self.assertEqual((cdr["cause"], cdr["reason"], cdr["dropped_by"]),
                         (408, "session-timer-expired", "sys"))


class OutgoingTests(SynchronousTestCase):
    """A client dials through a trunk that SIPp plays (UAS)."""

    def setUp(self):
        requirePeer("sipp")
        self.trunkPort = freePort()
        config = os.path.abspath(self.mktemp() + ".toml")
        with open(config, "w") as f:
            f.write(TRUNK.format(port=self.trunkPort, password="trunkpass", ring=30))
        self.cdr = os.path.abspath(self.mktemp())
        self.linkrtc = LinkRTCProcess("--media", "passthrough", "--config", config,
                                      "--cdr", self.cdr).start()
        self.addCleanup(self.linkrtc.stop)

    def test_reliableEarlyMedia(self):
        """
        The trunk's 183 with SDP is reliable: LinkRTC PRACKs it (RAck), the
        client gets its SDP as 'answer', then the 200; the trunk hangs up.
        """
        sipp = _SIPpThread(os.path.join(SCENARIOS, "uas_100rel.xml"), self.trunkPort,
                           "-d", "500")
        client = WSClient(self.linkrtc, "alice", "--dial", "5550100")
        self.addCleanup(client.stop)
        result = sipp.wait()
        self.assertIsNotNone(result, "sipp did not finish")
        self.assertEqual(
            result.returncode, 0,
            f"sipp failed ({result.returncode}):\n{result.stdout[-3000:]}\n{result.stderr[-2000:]}"
            f"\nlinkrtc log:\n{self.linkrtc.logText()[-5000:]}",
        )
        client.waitFor(lambda m: m.get("state") == "dropped")
        self.assertIn("m=audio", client.waitFor("answer")["sdp"])
        self.assertIn("confirmed", client.states())
        [cdr] = readCDRs(self.cdr, 1, 10.0)
        self.assertEqual((cdr["call_dir"], cdr["cause"]), ("outbound", 200))
