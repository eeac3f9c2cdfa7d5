"""
Incoming calls end to end (seed 000): SIPp calls a running
C{twistd -n linkrtc}; a Python WebSocket client registered as the callee
answers, rejects or rings; each SIP outcome is checked on both sides and
in the CDR file.
"""

import json
import os
import stat
import threading
from http.server import BaseHTTPRequestHandler, HTTPServer

from twisted.trial.unittest import SynchronousTestCase

from linkrtc.test.e2e.harness import (
    LinkRTCProcess,
    WSClient,
    freePort,
    readCDRs,
    requirePeer,
    runSIPp,
)


class _CallTestBase(SynchronousTestCase):
    options = ()

    def setUp(self):
        requirePeer("sipp")
        self.cdr = os.path.abspath(self.mktemp())
        # wsclient.py answers with a fake plain-RTP SDP: passthrough media.
        self.linkrtc = LinkRTCProcess("--media", "passthrough", "--cdr", self.cdr,
                                      *self.options).start()
        self.addCleanup(self.linkrtc.stop)

    def client(self, name, *args):
        client = WSClient(self.linkrtc, name, *args)
        self.addCleanup(client.stop)
        client.waitFor("registered")
        return client

    def sipp(self, scenario, service, *extra, calls=1):
        result = runSIPp(
            f"127.0.0.1:{self.linkrtc.sipPort}", "-sf", scenario, "-s", service,
            "-i", "127.0.0.1", "-p", str(freePort(both=True)), "-mi", "127.0.0.1",
            "-mp", str(freePort()), "-m", str(calls), "-r", "5", *extra, timeout=60,
        )
        self.assertEqual(
            result.returncode, 0,
            f"sipp failed ({result.returncode}):\n{result.stdout[-3000:]}\n{result.stderr[-2000:]}"
            f"\nlinkrtc log:\n{self.linkrtc.logText()[-4000:]}",
        )

    def failing(self, service, status, *extra):
        """Call C{service} and expect the final C{status} (uac_fail.xml with it filled in)."""
        from linkrtc.test.e2e.harness import SCENARIOS

        with open(os.path.join(SCENARIOS, "uac_fail.xml")) as f:
            text = f.read().replace("[expected]", str(status))
        path = os.path.abspath(self.mktemp() + ".xml")
        with open(path, "w") as f:
            f.write(text)
        self.sipp(path, service, *extra)

    def cdrs(self, count, timeout=10.0):
        """@return: the CDR lines once there are C{count} of them."""
        return readCDRs(self.cdr, count, timeout)



class CallTests(_CallTestBase):
    def test_answeredSIPHangsUp(self):
        """The client answers; SIPp hangs up: client sees confirmed then dropped; CDR cause 200."""
        bob = self.client("bob", "--action", "answer")
        self.sipp("uac_call.xml", "bob", "-d", "500")
        bob.waitFor(lambda m: m.get("state") == "dropped")
        incoming = bob.waitFor("incoming")
        self.assertIn("m=audio", incoming["sdp"])
        self.assertEqual(bob.states()[-1], "dropped")
        self.assertIn("confirmed", bob.states())
        [cdr] = self.cdrs(1)
        self.assertEqual((cdr["cause"], cdr["dropped_by"], cdr["call_dir"]),
                         (200, "usr", "inbound"))
        self.assertIsNotNone(cdr["answer_time"])
        # The answered call left a start record first, in a file only we read.
        [start] = readCDRs(self.cdr, 1, 0, record="start")
        self.assertEqual((start["call"], start["answer_time"], start["cause"]),
                         (cdr["call"], cdr["answer_time"], None))
        self.assertEqual(stat.S_IMODE(os.stat(self.cdr).st_mode), 0o600)

    def test_clientHangsUp(self):
        """The client answers and hangs up: LinkRTC sends BYE to SIP."""
        self.client("carol", "--action", "answer", "--hangup-after", "0.5")
        self.sipp("uac_wait_bye.xml", "carol")
        [cdr] = self.cdrs(1)
        self.assertEqual(cdr["cause"], 200)

    def test_unreachable(self):
        """Nobody registered under the name: 480."""
        self.failing("nobody", 480)
        [cdr] = self.cdrs(1)
        self.assertEqual(cdr["cause"], 480)

    def test_busy(self):
        """The client rejects as busy: 486."""
        self.client("dave", "--action", "reject", "--reason", "busy")
        self.failing("dave", 486)

    def test_decline(self):
        """The client declines: 603."""
        self.client("erin", "--action", "reject", "--reason", "decline")
        self.failing("erin", 603)

    def test_cancel(self):
        """SIPp cancels while the client rings: 487, and the client sees dropped."""
        frank = self.client("frank", "--action", "ring")
        self.sipp("uac_cancel.xml", "frank")
        frank.waitFor(lambda m: m.get("state") == "dropped")
        [cdr] = self.cdrs(1)
        self.assertEqual(cdr["cause"], 487)

    def test_lost(self):
        """With SIPp's -lost 10, ten answered calls all complete."""
        self.client("gina", "--action", "answer")
        self.sipp("uac_call.xml", "gina", "-d", "200", "-lost", "10", calls=10)


class _RefusingApp(BaseHTTPRequestHandler):
    def do_POST(self):
        length = int(self.headers.get("Content-Length", 0))
        body = json.loads(self.rfile.read(length))
        if body.get("event") == "incoming":
            reply = json.dumps({"action": "reject", "status": 403}).encode()
        else:
            reply = b"{}"
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(reply)))
        self.end_headers()
        self.wfile.write(reply)

    def log_message(self, *args):
        pass


class RefusedTests(_CallTestBase):
    """The application's webhook refuses the call: 403."""

    def setUp(self):
        self.app = HTTPServer(("127.0.0.1", 0), _RefusingApp)
        threading.Thread(target=self.app.serve_forever, daemon=True).start()
        self.addCleanup(self.app.shutdown)
        self.options = ("--webhook", f"http://127.0.0.1:{self.app.server_port}/hook")
        _CallTestBase.setUp(self)

    def test_refused(self):
        """The webhook answers reject 403: the caller gets 403."""
        self.failing("bob", 403)
        [cdr] = self.cdrs(1)
        self.assertEqual(cdr["cause"], 403)
