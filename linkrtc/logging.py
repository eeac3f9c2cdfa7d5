# -*- test-case-name: linkrtc.test.test_logging -*-
"""
Log levels for a running LinkRTC.

twistd has no log-level option, and a switch logs a structured event for
every transaction and call transition. L{LogLevelService}, once the
reactor runs (twistd has then added its log observers), wraps every
observer of the global log publisher in a level filter, so events below
C{--log-level} (default C{info}) are dropped before they are formatted.
"""

from twisted.application.service import Service
from twisted.logger import (
    FilteringLogObserver,
    LogLevel,
    LogLevelFilterPredicate,
    globalLogPublisher,
)

LEVELS = ("debug", "info", "warn", "error", "critical")


def levelNamed(name):
    """
    @param name: one of L{LEVELS}.
    @return: the L{LogLevel}.
    @raise ValueError: for another name.
    """
    if name not in LEVELS:
        raise ValueError(f"log level must be one of {', '.join(LEVELS)}, not {name!r}")
    return LogLevel.levelWithName(name)


class LogLevelService(Service):
    """
    Filters the global log observers by level while running.

    @ivar level: the lowest L{LogLevel} written.
    @ivar publisher: the L{twisted.logger.LogPublisher} to filter.
    """

    name = "log-level"

    def __init__(self, level=LogLevel.info, publisher=None):
        self.level = level
        self.publisher = publisher if publisher is not None else globalLogPublisher
        self._wrapped = []

    def startService(self):
        Service.startService(self)
        predicate = LogLevelFilterPredicate(defaultLogLevel=self.level)
        for observer in list(getattr(self.publisher, "_observers", ())):
            if isinstance(observer, FilteringLogObserver):
                continue
            wrapper = FilteringLogObserver(observer, [predicate])
            self.publisher.removeObserver(observer)
            self.publisher.addObserver(wrapper)
            self._wrapped.append((observer, wrapper))

    def stopService(self):
        Service.stopService(self)
        for observer, wrapper in self._wrapped:
            self.publisher.removeObserver(wrapper)
            self.publisher.addObserver(observer)
        self._wrapped = []
