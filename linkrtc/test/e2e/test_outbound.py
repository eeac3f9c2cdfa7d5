"""
Outbound calls end to end: a WebSocket client (wsclient.py C{--dial})
places a call through a trunk that SIPp plays as a UAS: it challenges the
INVITE with 407 and checks the MD5 credentials (C{verifyauth}), answers
with 183 and 200, or refuses (486, 404, 503), never answers (CANCEL after
C{max_ring_seconds} or the caller's hangup) or rejects the credentials
(no retry storm). Each outcome is checked on the client, in SIPp's exit
status and in the CDR.
"""

import os
import socket
import threading
import time

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

TRUNK = """
max-ring-seconds = {ring}

[[trunk]]
name = "sipp"
proxy = "sip:127.0.0.1:{port}"
username = "trunkuser"
password = "{password}"
realm = ["proxy.test", "linkrtc.test"]
caller_id = "{{client}}"
codecs = ["PCMU", "PCMA", "telephone-event"]
"""


class _SIPpThread:
    """SIPp as the trunk (UAS), run in a thread while the client dials."""

    def __init__(self, scenario, port, *extra):
        self.port = port
        self.result = None
        args = ["-sf", scenario, "-i", "127.0.0.1", "-p", str(port), "-mi", "127.0.0.1",
                "-mp", str(freePort()), "-m", "1", *extra]
        self.thread = threading.Thread(target=self._run, args=args, daemon=True)
        self.thread.start()
        self._waitBound()

    def _run(self, *args):
        self.result = runSIPp(*args, timeout=40)

    def _waitBound(self, timeout=10.0):
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if not self.thread.is_alive():
                r = self.result
                raise AssertionError(f"sipp exited: {r and (r.stdout[-2000:], r.stderr[-2000:])}")
            s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
            try:
                s.bind(("127.0.0.1", self.port))
            except OSError:
                return
            finally:
                s.close()
            time.sleep(0.05)
        raise AssertionError("sipp did not bind its port")

    def wait(self, timeout=60.0):
        self.thread.join(timeout)
        return self.result


class _OutboundBase(SynchronousTestCase):
    password = "trunkpass"
    ring = 30

    def setUp(self):
        requirePeer("sipp")
        self.trunkPort = freePort()
        config = os.path.abspath(self.mktemp() + ".toml")
        with open(config, "w") as f:
            f.write(TRUNK.format(port=self.trunkPort, password=self.password, ring=self.ring))
        self.cdr = os.path.abspath(self.mktemp())
        # wsclient.py offers a fake plain-RTP SDP: passthrough media.
        self.linkrtc = LinkRTCProcess("--media", "passthrough", "--config", config,
                                      "--cdr", self.cdr).start()
        self.addCleanup(self.linkrtc.stop)

    def trunk(self, scenario, *extra):
        return _SIPpThread(scenario, self.trunkPort, *extra)

    def dial(self, number, *args):
        client = WSClient(self.linkrtc, "alice", "--dial", number, *args)
        self.addCleanup(client.stop)
        return client

    def assertSIPp(self, sipp):
        result = sipp.wait()
        self.assertIsNotNone(result, "sipp did not finish")
        self.assertEqual(
            result.returncode, 0,
            f"sipp failed ({result.returncode}):\n{result.stdout[-3000:]}\n{result.stderr[-2000:]}"
            f"\nlinkrtc log:\n{self.linkrtc.logText()[-5000:]}",
        )

    def cdrs(self, count=1, timeout=10.0):
        """@return: the CDR lines once there are C{count} of them."""
        return readCDRs(self.cdr, count, timeout)

    def failing(self, status):
        """The trunk refuses with C{status}: the client sees dropped with that cause."""
        with open(os.path.join(SCENARIOS, "uas_fail.xml")) as f:
            text = f.read().replace("[expected]", str(status))
        path = os.path.abspath(self.mktemp() + ".xml")
        with open(path, "w") as f:
            f.write(text)
        sipp = self.trunk(path)
        client = self.dial("5550100")
        self.assertSIPp(sipp)
        dropped = client.waitFor(lambda m: m.get("state") == "dropped")
        self.assertEqual(dropped["cause"], status)
        self.assertIn("ringing", client.states())
        [cdr] = self.cdrs()
        self.assertEqual((cdr["call_dir"], cdr["cause"]), ("outbound", status))


class OutboundTests(_OutboundBase):
    def test_authEarlyMediaAnswer(self):
        """
        407 is answered with MD5 credentials SIPp verifies; the 183's SDP
        reaches the client as 'answer' before 'confirmed'; the client hangs
        up: BYE; CDR cause 200.
        """
        sipp = self.trunk("uas_auth_answer.xml")
        client = self.dial("5550100", "--hangup-after", "0.5")
        self.assertSIPp(sipp)
        calling = client.waitFor("calling")
        self.assertEqual(calling["ref"], "e2e-dial")
        client.waitFor(lambda m: m.get("state") == "dropped")
        kinds = [(m.get("type"), m.get("state")) for m in client.messages]
        answer = kinds.index(("answer", None))
        self.assertLess(answer, kinds.index(("state", "confirmed")))
        self.assertIn("m=audio", client.waitFor("answer")["sdp"])
        self.assertEqual([m["type"] for m in client.messages].count("answer"), 1)
        [cdr] = self.cdrs()
        self.assertEqual((cdr["call_dir"], cdr["cause"], cdr["dropped_by"]),
                         ("outbound", 200, "usr"))
        self.assertEqual(cdr["to_uri"], f"sip:5550100@127.0.0.1:{self.trunkPort}")
        self.assertIsNotNone(cdr["answer_time"])

    def test_trunkHangsUp(self):
        """The trunk answers and sends BYE: the client sees confirmed then dropped (200)."""
        sipp = self.trunk("uas_answer_bye.xml", "-d", "500")
        client = self.dial("5550101")
        self.assertSIPp(sipp)
        dropped = client.waitFor(lambda m: m.get("state") == "dropped")
        self.assertEqual(dropped["cause"], 200)
        self.assertEqual(client.states()[-2:], ["confirmed", "dropped"])

    def test_busy(self):
        """486 Busy Here reaches the client as dropped 486."""
        self.failing(486)

    def test_notFound(self):
        """404 Not Found reaches the client as dropped 404."""
        self.failing(404)

    def test_unavailable(self):
        """503 Service Unavailable reaches the client as dropped 503."""
        self.failing(503)

    def test_temporarilyUnavailable(self):
        """480 Temporarily Unavailable reaches the client as dropped 480."""
        self.failing(480)

    def test_callerCancels(self):
        """The caller hangs up while it rings: CANCEL, 487; the client sees dropped 487."""
        sipp = self.trunk("uas_noanswer.xml")
        client = self.dial("5550102", "--cancel-after", "1")
        self.assertSIPp(sipp)
        dropped = client.waitFor(lambda m: m.get("state") == "dropped")
        self.assertEqual(dropped["cause"], 487)
        [cdr] = self.cdrs()
        self.assertEqual((cdr["cause"], cdr["dropped_by"]), (487, "usr"))


class RingTimeoutTests(_OutboundBase):
    """max_ring_seconds: a trunk that rings and never answers is CANCELled."""

    ring = 1.5

    def test_noAnswer(self):
        """After max-ring-seconds LinkRTC CANCELs; the client sees dropped 480."""
        sipp = self.trunk("uas_noanswer.xml")
        client = self.dial("5550103")
        self.assertSIPp(sipp)
        dropped = client.waitFor(lambda m: m.get("state") == "dropped")
        self.assertEqual(dropped["cause"], 480)
        [cdr] = self.cdrs()
        self.assertEqual((cdr["cause"], cdr["dropped_by"]), (480, "sys"))


class WrongPasswordTests(_OutboundBase):
    """Rejected credentials: one clear failure, no retry storm."""

    password = "wrong"

    def test_rejected(self):
        """The trunk challenges the answer again: no third INVITE; dropped 407."""
        sipp = self.trunk("uas_auth_reject.xml")
        client = self.dial("5550104")
        self.assertSIPp(sipp)
        dropped = client.waitFor(lambda m: m.get("state") == "dropped")
        self.assertEqual(dropped["cause"], 407)
        [cdr] = self.cdrs()
        self.assertIn("authentication failed", cdr["reason"])


class DialPlanTests(_OutboundBase):
    def test_tollFraudRefused(self):
        """
        A premium number, an international one and a foreign host get
        error 403 and nothing reaches the trunk (a UDP socket on its port).
        """
        trunk = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        self.addCleanup(trunk.close)
        trunk.bind(("127.0.0.1", self.trunkPort))
        for target in ("+19005550100", "011441234567890", "sip:2000@evil.example.com",
                       "sip:2000@127.0.0.1;maddr=192.0.2.66"):
            client = self.dial(target)
            error = client.waitFor("error")
            self.assertEqual(error["code"], 403, error)
            self.assertEqual(error["ref"], "e2e-dial")
        trunk.settimeout(1.0)
        self.assertRaises(socket.timeout, trunk.recv, 65536)
        self.assertIn("event=dialplan_refused", self.linkrtc.logText())

