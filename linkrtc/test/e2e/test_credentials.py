"""
Credentials never leave the switch (issue 11, item 6; docs/security.rst):
an outbound call through a trunk that challenges with 407 and 401 (SIPp,
C{uas_auth_answer.xml}, checking the MD5 answer with C{verifyauth}), placed
by a client that registered with C{"trace": true}, with C{--log-level
debug} and a webhook. The trunk's password, its HA1 and every digest
C{response} that went over the wire (read back from SIPp's message log) are
then looked for in every log event (each field, not only the text), every
trace message the client got, every webhook body and header, and the CDR:
none may be there.
"""

import hashlib
import json
import os
import re
import shutil
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

from linkrtc.test.e2e.harness import LinkRTCProcess, WSClient, freePort, shortTempDir
from linkrtc.test.e2e.test_outbound import TRUNK, _OutboundBase, _SIPpThread

USERNAME = "trunkuser"
PASSWORD = "trunkpass"
REALMS = ("proxy.test", "linkrtc.test")


class _Webhook:
    """An application on loopback that routes every outgoing call and keeps every request."""

    def __init__(self):
        self.requests = []
        received = self.requests

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self):
                body = self.rfile.read(int(self.headers.get("Content-Length", 0)))
                received.append((dict(self.headers.items()), body))
                event = json.loads(body)
                answer = {"action": "route"} if event.get("event") == "outgoing" else {}
                data = json.dumps(answer).encode()
                self.send_response(200)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

            def log_message(self, *args):
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}/hook"
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()

    def stop(self):
        self.server.shutdown()
        self.server.server_close()


class _EventLoggingLinkRTC(LinkRTCProcess):
    """LinkRTC whose log holds every field of every event (L{eventlog})."""

    def __init__(self, *options, eventLog):
        super().__init__(*options, env={"LINKRTC_E2E_EVENT_LOG": eventLog})
        self.eventLog = eventLog

    def command(self):
        argv = super().command()
        return argv[:argv.index("-n") + 1] + [
            "--logger=linkrtc.test.e2e.eventlog.observer"] + argv[argv.index("-n") + 1:]

    def logText(self):
        try:
            with open(self.eventLog, encoding="utf-8", errors="replace") as f:
                return f.read()
        except OSError:
            return ""


class CredentialsStayInsideTests(_OutboundBase):
    def setUp(self):
        # _OutboundBase.setUp starts a LinkRTC of its own; this test builds
        # its own instead, with debug logging, the event log and a webhook.
        from linkrtc.test.e2e.harness import requirePeer

        requirePeer("sipp")
        self.trunkPort = freePort()
        config = os.path.abspath(self.mktemp() + ".toml")
        with open(config, "w") as f:
            f.write(TRUNK.format(port=self.trunkPort, password=PASSWORD, ring=30))
        self.cdr = os.path.abspath(self.mktemp())
        self.webhook = _Webhook()
        self.addCleanup(self.webhook.stop)
        self.eventLog = os.path.abspath(self.mktemp() + ".events")
        self.linkrtc = _EventLoggingLinkRTC(
            "--media", "passthrough", "--config", config, "--cdr", self.cdr,
            "--log-level", "debug", "--webhook", self.webhook.url,
            eventLog=self.eventLog).start()
        self.addCleanup(self.linkrtc.stop)

    def test_digestNeverLeaks(self):
        # SIPp overflows a buffer on long paths: the message log goes to a short one.
        scratch = shortTempDir()
        self.addCleanup(shutil.rmtree, scratch, ignore_errors=True)
        messageLog = os.path.join(scratch, "sipp-messages")
        sipp = _SIPpThread("uas_auth_answer.xml", self.trunkPort,
                           "-trace_msg", "-message_file", messageLog)
        client = WSClient(self.linkrtc, "alice", "--dial", "5550100", "--trace",
                          "--hangup-after", "0.5")
        self.addCleanup(client.stop)
        self.assertSIPp(sipp)
        client.waitFor(lambda m: m.get("state") == "dropped")
        [cdr] = self.cdrs()
        # The webhook's cdr event comes after the CDR is written.
        deadline = 100
        while deadline and not any(b'"event":"cdr"' in body for _, body in self.webhook.requests):
            deadline -= 1
            threading.Event().wait(0.1)

        with open(messageLog, encoding="utf-8", errors="replace") as f:
            wire = f.read()
        responses = set(re.findall(r'response="([0-9a-f]{32})"', wire))
        # Two INVITEs with Proxy-Authorization, one with Authorization too.
        self.assertGreaterEqual(len(responses), 2, wire[-3000:])
        secrets = {PASSWORD, *responses}
        secrets |= {hashlib.md5(f"{USERNAME}:{realm}:{PASSWORD}".encode()).hexdigest()
                    for realm in REALMS}

        traces = [m["text"] for m in client.messages if m.get("type") == "trace"]
        authorized = [t for t in traces if t.startswith("INVITE ") and "Authorization:" in t]
        self.assertGreaterEqual(len(authorized), 2, "the client saw no authorized INVITE")
        for text in authorized:
            self.assertIn("Authorization: Digest [redacted]", text)

        self.linkrtc.stop()
        with open(self.eventLog, encoding="utf-8", errors="replace") as f:
            events = f.read()
        self.assertIn("EVENT {", events)
        self.assertIn("'log_level': <LogLevel=debug>", events)
        webhookText = "\n".join(json.dumps(headers) + body.decode("utf-8", "replace")
                                for headers, body in self.webhook.requests)
        self.assertIn('"event":"cdr"', webhookText)
        with open(self.cdr, encoding="utf-8") as f:
            cdrText = f.read()
        places = {"log events": events, "traces": "\n".join(traces),
                  "webhook requests": webhookText, "CDR": cdrText,
                  "client messages": json.dumps(client.messages)}
        for secret in sorted(secrets):
            for where, text in places.items():
                self.assertNotIn(secret, text, f"{secret!r} found in the {where}")
        self.assertEqual(cdr["cause"], 200)
