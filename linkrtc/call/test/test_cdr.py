"""Tests for L{linkrtc.call.cdr}."""

import json
import os
import stat

from twisted.internet.interfaces import IReactorCore, IReactorThreads
from twisted.internet.testing import EventLoggingObserver
from twisted.logger import globalLogPublisher
from twisted.trial.unittest import SynchronousTestCase
from zope.interface import implementer

from linkrtc.call.cdr import CDRWriter, cdrLine
from linkrtc.call.manager import buildCDRWriter

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

    def test_startAtDebug(self):
        """
        A C{start} record is logged at debug level, an C{end} one at info:
        a call's one line at the default level is its end record.
        """
        from twisted.logger import LogLevel

        observer = EventLoggingObserver.createWithCleanup(self, globalLogPublisher)
        CDRWriter().write(dict(RECORD, record="start"))
        CDRWriter().write(dict(RECORD, record="end"))
        levels = [(e["cdr"]["record"], e["log_level"]) for e in observer if "cdr" in e]
        self.assertEqual(levels, [("start", LogLevel.debug), ("end", LogLevel.info)])

    def test_startNotEncodedUnlessWanted(self):
        """
        With debug off and no file, a C{start} record is neither logged
        nor encoded; with a file it is encoded once, for the file.
        """
        from linkrtc import logging
        from linkrtc.call import cdr

        self.patch(logging, "_debug", False)
        lines = []

        def counting(record):
            lines.append(record)
            return cdrLine(record)

        self.patch(cdr, "cdrLine", counting)
        observer = EventLoggingObserver.createWithCleanup(self, globalLogPublisher)
        start = dict(RECORD, record="start")
        CDRWriter().write(start)
        self.assertEqual((lines, [e for e in observer if "cdr" in e]), ([], []))
        path = self.mktemp()
        CDRWriter(path).write(start)
        self.assertEqual(lines, [start])
        with open(path) as f:
            self.assertEqual([json.loads(x) for x in f.read().splitlines()], [start])

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


class _Threads:
    """An C{IReactorThreads} stand-in: C{callInThread} jobs run when the test says."""

    def __init__(self):
        self.jobs = []

    def callInThread(self, f, *args, **kwargs):
        self.jobs.append((f, args, kwargs))

    def runAll(self):
        jobs, self.jobs = self.jobs, []
        for f, args, kwargs in jobs:
            f(*args, **kwargs)


class _StoppedThreads:
    """A thread pool that refuses work (the reactor's, once stopped)."""

    def callInThread(self, f, *args, **kwargs):
        raise RuntimeError("thread pool stopped")


class CDRFileTests(SynchronousTestCase):
    """The CDR file is written off the reactor thread, fsynced, mode 0600, in order."""

    def setUp(self):
        self.path = self.mktemp()
        self.threads = _Threads()
        self.syncs = []
        self.writer = CDRWriter(self.path, threads=self.threads, fsync=self.fsync)

    def fsync(self, fd):
        self.syncs.append(fd)
        os.fsync(fd)

    def lines(self):
        with open(self.path) as f:
            return [json.loads(line)["call"] for line in f.read().splitlines()]

    def test_notInCallersThread(self):
        """write() only queues: the file is written by the job given to callInThread."""
        self.writer.write(RECORD)
        self.assertFalse(os.path.exists(self.path))
        self.assertEqual(len(self.threads.jobs), 1)
        self.threads.runAll()
        self.assertEqual(self.lines(), ["abc"])

    def test_fsynced(self):
        """Each job fsyncs the file (and the directory when it created the file)."""
        self.writer.write(RECORD)
        self.threads.runAll()
        self.assertEqual(len(self.syncs), 2)
        self.writer.write(dict(RECORD, call="def"))
        self.threads.runAll()
        self.assertEqual(len(self.syncs), 3)

    def test_mode0600(self):
        """A CDR file LinkRTC creates is readable by its owner only."""
        self.writer.write(RECORD)
        self.threads.runAll()
        self.assertEqual(stat.S_IMODE(os.stat(self.path).st_mode), 0o600)

    def test_groupCommitInOrder(self):
        """Records queued while a job is pending go in that job, in write order."""
        for call in ("a", "b", "c"):
            self.writer.write(dict(RECORD, call=call))
        self.assertEqual(len(self.threads.jobs), 1)
        self.threads.runAll()
        self.writer.write(dict(RECORD, call="d"))
        self.threads.runAll()
        self.assertEqual(self.lines(), ["a", "b", "c", "d"])
        self.assertEqual(len(self.syncs), 3)

    def test_appendsToExisting(self):
        """An existing file is appended to, not truncated."""
        with open(self.path, "w") as f:
            f.write('{"call":"old"}\n')
        self.writer.write(RECORD)
        self.threads.runAll()
        self.assertEqual(self.lines(), ["old", "abc"])

    def test_closeWritesQueued(self):
        """close() writes what a job never wrote (the pool stopped) and later records too."""
        self.writer.write(RECORD)
        self.writer.close()
        self.assertEqual(self.lines(), ["abc"])
        self.writer.write(dict(RECORD, call="def"))
        self.assertEqual(self.lines(), ["abc", "def"])
        self.threads.runAll()
        self.assertEqual(self.lines(), ["abc", "def"])

    def test_poolRefuses(self):
        """A thread pool that refuses the job: the record is written here, and logged."""
        writer = CDRWriter(self.path, threads=_StoppedThreads())
        writer.write(RECORD)
        self.assertEqual(self.lines(), ["abc"])
        self.assertEqual(len(self.flushLoggedErrors(RuntimeError)), 1)

    def test_writeErrorInThread(self):
        """A file error in the worker is logged; later records are still tried."""
        writer = CDRWriter(self.mktemp() + "/missing/cdr.log", threads=self.threads)
        writer.write(RECORD)
        self.threads.runAll()
        self.assertEqual(len(self.flushLoggedErrors(OSError)), 1)
        writer.write(RECORD)
        self.assertEqual(len(self.threads.jobs), 1)


@implementer(IReactorThreads, IReactorCore)
class _Reactor(_Threads):
    def __init__(self):
        super().__init__()
        self.triggers = []

    def addSystemEventTrigger(self, phase, event, f, *args, **kwargs):
        self.triggers.append((phase, event, f))


class BuildCDRWriterTests(SynchronousTestCase):
    def test_reactorThreads(self):
        """With a reactor, the writer uses its threads and is closed after shutdown."""
        reactor = _Reactor()
        writer = buildCDRWriter(reactor, self.mktemp())
        writer.write(RECORD)
        self.assertEqual(len(reactor.jobs), 1)
        self.assertEqual(reactor.triggers, [("after", "shutdown", writer.close)])

    def test_clock(self):
        """With a task.Clock (unit tests), the file is written at once."""
        from twisted.internet.task import Clock

        path = self.mktemp()
        buildCDRWriter(Clock(), path).write(RECORD)
        self.assertTrue(os.path.exists(path))
