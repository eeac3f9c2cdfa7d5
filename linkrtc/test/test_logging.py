"""Tests for L{linkrtc.logging}."""

from twisted.logger import Logger, LogLevel, LogPublisher
from twisted.trial.unittest import SynchronousTestCase

from linkrtc.logging import LogLevelService, levelNamed


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

    def test_levelNamed(self):
        """Levels are named as twisted.logger names them; others are refused."""
        self.assertIs(levelNamed("debug"), LogLevel.debug)
        self.assertRaises(ValueError, levelNamed, "loud")
