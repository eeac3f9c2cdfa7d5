"""Tests for L{linkrtc.logging}."""

from twisted.logger import (
    FilteringLogObserver,
    Logger,
    LogLevel,
    LogLevelFilterPredicate,
    LogPublisher,
)
from twisted.trial.unittest import SynchronousTestCase

from linkrtc.logging import LevelFilteringObserver, LogLevelService, debugEnabled, levelNamed


class LogLevelServiceTests(SynchronousTestCase):
    def test_filters(self):
        """While running, events below the level do not reach the observers."""
        publisher = LogPublisher()
        seen = []
        publisher.addObserver(seen.append)
        log = Logger(observer=publisher)
        service = LogLevelService(LogLevel.info, publisher)
        service.startService()
        log.debug("hidden")
        log.info("shown")
        self.assertEqual([e["log_format"] for e in seen], ["shown"])
        service.stopService()
        log.debug("back")
        self.assertEqual([e["log_format"] for e in seen], ["shown", "back"])

    def test_sameAsPredicate(self):
        """
        L{LevelFilteringObserver} forwards exactly the events that a
        L{FilteringLogObserver} with a L{LogLevelFilterPredicate} forwards.
        """
        events = [{}, {"log_namespace": "x"}, {"log_level": LogLevel.error},
                  {"log_level": LogLevel.error, "log_namespace": ""}]
        events += [{"log_level": level, "log_namespace": "a.b"}
                   for level in LogLevel.iterconstants()]
        for level in LogLevel.iterconstants():
            ours, theirs = [], []
            fast = LevelFilteringObserver(ours.append, level)
            slow = FilteringLogObserver(theirs.append,
                                        [LogLevelFilterPredicate(defaultLogLevel=level)])
            for event in events:
                fast(event)
                slow(event)
            self.assertEqual(ours, theirs)
            self.assertIsInstance(fast, FilteringLogObserver)

    def test_debugEnabled(self):
        """
        L{debugEnabled} is C{False} only while a service above debug runs.
        """
        self.assertTrue(debugEnabled())
        service = LogLevelService(LogLevel.info, LogPublisher())
        service.startService()
        self.addCleanup(lambda: service.running and service.stopService())
        self.assertFalse(debugEnabled())
        service.stopService()
        self.assertTrue(debugEnabled())
        service = LogLevelService(LogLevel.debug, LogPublisher())
        service.startService()
        self.assertTrue(debugEnabled())
        service.stopService()
        self.assertTrue(debugEnabled())

    def test_levelNamed(self):
        """Levels are named as twisted.logger names them; others are refused."""
        self.assertIs(levelNamed("debug"), LogLevel.debug)
        self.assertRaises(ValueError, levelNamed, "loud")
