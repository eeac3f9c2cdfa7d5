"""
Graceful drain end to end: a running C{twistd -n linkrtc} gets SIGTERM
during a live call (SIPp calls, a WebSocket client answers). The call
goes on, new work is refused (OPTIONS 503, C{/readyz} 503), and the
process exits once the call has ended; with a short C{--drain-seconds},
LinkRTC ends the call with BYE itself. C{/metrics} is scraped during the
call.
"""

import json
import os
import signal
import socket
import subprocess
import threading
import time
import urllib.error
import urllib.request

from twisted.trial.unittest import SynchronousTestCase

from linkrtc.test.e2e.harness import (
    LinkRTCProcess,
    WSClient,
    freePort,
    optionsRequest,
    readCDRs,
    requirePeer,
    runSIPp,
)


def httpGet(port, path):
    """@return: C{(status, body bytes)} of C{GET path} on 127.0.0.1:C{port}."""
    try:
        with urllib.request.urlopen(f"http://127.0.0.1:{port}{path}", timeout=10) as response:
            return response.status, response.read()
    except urllib.error.HTTPError as e:
        return e.code, e.read()


def optionsStatus(port):
    """@return: the status line of LinkRTC's answer to an OPTIONS over UDP."""
    s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    s.bind(("127.0.0.1", 0))
    s.settimeout(5)
    try:
        s.sendto(optionsRequest(port, s.getsockname()[1]), ("127.0.0.1", port))
        data, _ = s.recvfrom(65536)
        return data.split(b"\r\n", 2)[:2]
    finally:
        s.close()


def metricValue(text, line):
    """@return: the value (C{float}) of the sample named by C{line} in C{text}, or C{None}."""
    for row in text.splitlines():
        if row.startswith(line + " "):
            return float(row.rsplit(" ", 1)[1])
    return None


class DrainTests(SynchronousTestCase):
    def start(self, *options):
        requirePeer("sipp")
        self.cdr = os.path.abspath(self.mktemp())
        self.linkrtc = LinkRTCProcess("--media", "passthrough", "--cdr", self.cdr, *options).start()
        self.addCleanup(self.linkrtc.stop)

    def client(self, name, *args):
        client = WSClient(self.linkrtc, name, *args)
        self.addCleanup(client.stop)
        client.waitFor("registered")
        return client

    def callInBackground(self, service):
        """
        SIPp calls C{service} and waits for LinkRTC's BYE, in a thread.

        @return: a C{dict} whose C{result} is SIPp's once it is done.
        """
        box = {}

        def run():
            box["result"] = runSIPp(
                f"127.0.0.1:{self.linkrtc.sipPort}", "-sf", "uac_wait_bye.xml", "-s", service,
                "-i", "127.0.0.1", "-p", str(freePort(both=True)), "-mi", "127.0.0.1",
                "-mp", str(freePort()), "-m", "1", timeout=60)

        thread = threading.Thread(target=run, daemon=True)
        thread.start()
        box["thread"] = thread
        return box

    def assertSIPpPassed(self, box):
        box["thread"].join(70)
        result = box.get("result")
        self.assertIsNotNone(result, "sipp did not finish")
        self.assertEqual(result.returncode, 0, f"sipp failed:\n{result.stdout[-3000:]}\n"
                                               f"{result.stderr[-2000:]}")

    def waitExit(self, timeout=30):
        try:
            return self.linkrtc.process.wait(timeout)
        except subprocess.TimeoutExpired:
            self.fail("linkrtc did not exit after the drain:\n" + self.linkrtc.logText()[-4000:])

    def test_liveCallFinishes(self):
        """
        SIGTERM during a call: the call goes on (OPTIONS and /readyz say
        503 meanwhile), the client hangs up, the process exits by itself.
        /metrics shows the live call and, before that, the SIP traffic.
        """
        self.start("--drain-seconds", "120")
        bob = self.client("bob", "--action", "answer", "--hangup-after", "6")
        box = self.callInBackground("bob")
        bob.waitFor(lambda m: m.get("state") == "confirmed", timeout=30)

        status, body = httpGet(self.linkrtc.httpPort, "/metrics")
        self.assertEqual(status, 200)
        text = body.decode()
        self.assertEqual(metricValue(text, "linkrtc_calls_active"), 1.0)
        self.assertEqual(metricValue(text, "linkrtc_clients_registered"), 1.0)
        self.assertGreaterEqual(metricValue(
            text, 'linkrtc_sip_requests_total{direction="in",method="INVITE"}'), 1.0)
        self.assertEqual(httpGet(self.linkrtc.httpPort, "/readyz")[0], 200)

        self.linkrtc.process.send_signal(signal.SIGTERM)
        # The signal is handled on the reactor's next turn.
        deadline = time.monotonic() + 10
        while True:
            status, body = httpGet(self.linkrtc.httpPort, "/readyz")
            if status != 200 or time.monotonic() > deadline:
                break
            time.sleep(0.05)
        self.assertEqual((status, json.loads(body)["reasons"]), (503, ["draining"]))
        self.assertEqual(httpGet(self.linkrtc.httpPort, "/healthz")[0], 200)
        self.assertEqual(optionsStatus(self.linkrtc.sipPort)[0], b"SIP/2.0 503 Service Unavailable")
        self.assertIsNone(self.linkrtc.process.poll())

        bob.waitFor(lambda m: m.get("state") == "dropped", timeout=30)
        self.assertSIPpPassed(box)
        self.assertEqual(self.waitExit(), 0)
        [cdr] = readCDRs(self.cdr, 1, 10)
        self.assertEqual(cdr["cause"], 200)

    def test_drainTimeEnds(self):
        """A call still live after --drain-seconds is ended with BYE; then the process exits."""
        self.start("--drain-seconds", "1")
        bob = self.client("bob", "--action", "answer")
        box = self.callInBackground("bob")
        bob.waitFor(lambda m: m.get("state") == "confirmed", timeout=30)
        self.linkrtc.process.send_signal(signal.SIGTERM)
        bob.waitFor(lambda m: m.get("state") == "dropped", timeout=30)
        self.assertSIPpPassed(box)
        self.assertEqual(self.waitExit(), 0)
        [cdr] = readCDRs(self.cdr, 1, 10)
        self.assertEqual((cdr["cause"], cdr["dropped_by"]), (503, "sys"))
