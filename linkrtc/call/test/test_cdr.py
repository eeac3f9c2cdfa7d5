"""Tests for L{linkrtc.call.cdr}."""

import json

from twisted.internet.testing import EventLoggingObserver
from twisted.logger import globalLogPublisher
from twisted.trial.unittest import SynchronousTestCase

from linkrtc.call.cdr import CDRWriter, cdrLine

RECORD = {"event": "cdr", "call": "abc", "cause": 200, "answer_time": None}


class CDRTests(SynchronousTestCase):
    def test_line(self):
        """A CDR is one line of JSON."""
        line = cdrLine(RECORD)
        self.assertNotIn("\n", line)
        self.assertEqual(json.loads(line), RECORD)

    def test_logged(self):
        """The CDR is a structured log event with the record and its JSON line."""
        observer = EventLoggingObserver.createWithCleanup(self, globalLogPublisher)
        CDRWriter().write(RECORD)
        [event] = [e for e in observer if "cdr" in e]
        self.assertEqual(event["cdr"], RECORD)
        self.assertEqual(json.loads(event["cdr_json"]), RECORD)
        self.assertEqual(event["call_id"], "abc")

    def test_appended(self):
        """With a path, each CDR is appended to the file as a line."""
        path = self.mktemp()
        w = CDRWriter(path)
        w.write(RECORD)
        w.write(dict(RECORD, call="def"))
        with open(path) as f:
            lines = f.read().splitlines()
        self.assertEqual([json.loads(x)["call"] for x in lines], ["abc", "def"])

    def test_fileErrorLogged(self):
        """A file that cannot be written is logged, not raised."""
        CDRWriter(self.mktemp() + "/missing/dir/cdr.log").write(RECORD)
        self.assertEqual(len(self.flushLoggedErrors(OSError)), 1)

    def test_callWritesToFile(self):
        """A whole call through buildCallManager appends its CDR to --cdr FILE."""
        from twisted.internet.task import Clock

        from linkrtc.call.manager import buildCallManager
        from linkrtc.call.passthrough import PassthroughMediaFactory
        from linkrtc.testing import FakeApplication, FakeClientDirectory, FakeServerLeg

        path = self.mktemp()
        app = FakeApplication(autoDecision=lambda info: {"action": "reject", "status": 403})
        m = buildCallManager(Clock(), FakeClientDirectory(), app, PassthroughMediaFactory(),
                             cdrPath=path)
        leg = FakeServerLeg()
        call = m.inviteReceived(leg)
        self.assertEqual(leg.finalStatus, 403)
        with open(path) as f:
            [line] = f.read().splitlines()
        self.assertEqual(json.loads(line)["call"], call.id)
        self.assertEqual(json.loads(line)["cause"], 403)
