"""
An offerless trunk in bridge mode end to end (RFC 3261 §13.2.1): an
aiortc WebRTC client (C{rtcclient.py --dial}) calls out through a running
C{twistd -n linkrtc --media bridge} whose trunk (C{offerless = true},
codecs PCMA first) is SIPp playing C{uas_offerless_answer.xml}: the
INVITE must have no body, SIPp offers PCMU and PCMA in its 200 OK, and
the ACK must carry LinkRTC's answer choosing PCMA (the trunk's order).
The client's leg was negotiated on PCMA when it placed the call, so the
call is relayed: the CDR's media mode is C{relay}, PCMA on SIP.
"""

import os
import subprocess
import sys

from twisted.trial.unittest import SynchronousTestCase

from linkrtc.test.e2e.harness import (
    ROOT,
    SCENARIOS,
    LinkRTCProcess,
    WSClient,
    freePort,
    requirePeer,
)
from linkrtc.test.e2e.test_outbound import _SIPpThread, readCDRs

TRUNK = """
[[trunk]]
name = "sipp"
proxy = "sip:127.0.0.1:{port}"
offerless = true
codecs = ["PCMA", "PCMU", "telephone-event"]
"""


class RTCClient(WSClient):
    """rtcclient.py (aiortc) in a subprocess, read like L{WSClient}."""

    def __init__(self, linkrtc, name, *args):
        script = os.path.join(os.path.dirname(os.path.abspath(__file__)), "rtcclient.py")
        self.process = subprocess.Popen(
            [sys.executable, script, f"ws://127.0.0.1:{linkrtc.httpPort}/ws", name,
             "--ice-address", "127.0.0.1", *args],
            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, cwd=ROOT,
        )
        self._reader = self.collect()


class OfferlessBridgeTests(SynchronousTestCase):
    def setUp(self):
        requirePeer("sipp")
        self.trunkPort = freePort()
        config = os.path.abspath(self.mktemp() + ".toml")
        with open(config, "w") as f:
            f.write(TRUNK.format(port=self.trunkPort))
        self.cdr = os.path.abspath(self.mktemp())
        self.linkrtc = LinkRTCProcess("--media", "bridge", "--config", config,
                                      "--ice-address", "127.0.0.1", "--cdr", self.cdr).start()
        self.addCleanup(self.linkrtc.stop)

    def test_offerInThe200AnswerInTheAck(self):
        """No SDP in the INVITE, our answer in the ACK (SIPp checks both); relayed PCMA."""
        sipp = _SIPpThread(os.path.join(SCENARIOS, "uas_offerless_answer.xml"), self.trunkPort,
                           "-d", "1500")
        client = RTCClient(self.linkrtc, "alice", "--dial", "5550100", "--lifetime", "30")
        self.addCleanup(client.stop)
        result = sipp.wait()
        log = self.linkrtc.logText()[-5000:]
        self.assertIsNotNone(result, "sipp did not finish")
        self.assertEqual(result.returncode, 0, f"sipp failed:\n{result.stdout[-3000:]}\n"
                                               f"{result.stderr[-2000:]}\nlinkrtc:\n{log}")
        dropped = client.waitFor(lambda m: m.get("state") == "dropped", timeout=20)
        self.assertEqual(dropped["cause"], 200)
        self.assertIn("PCMA/8000", client.waitFor("answer")["sdp"])
        [cdr] = readCDRs(self.cdr, 1, 10.0)
        self.assertEqual((cdr["call_dir"], cdr["cause"]), ("outbound", 200), cdr)
        self.assertEqual(cdr["media"]["mode"], "relay", cdr)
        self.assertEqual(cdr["media"]["sip"]["codec"], "PCMA", cdr)
        self.assertEqual(cdr["media"]["webrtc"]["codec"], "PCMA", cdr)
