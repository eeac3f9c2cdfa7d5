# -*- test-case-name: linkrtc.test.test_logging -*-
"""
Log levels for a running LinkRTC.

twistd has no log-level option, and a switch logs a structured event for
every transaction and call transition. L{LogLevelService}, once the
reactor runs (twistd has then added its log observers), wraps every
observer of the global log publisher in a level filter, so events below
C{--log-level} (default C{info}) are dropped before they are formatted.

Hot paths (a transaction's state changes, a call's transitions) check
L{debugEnabled} before logging at debug level, so that nothing is built
for an event the filter would drop.
"""

from twisted.application.service import Service
from twisted.logger import (
    FilteringLogObserver,
    LogLevel,
    LogLevelFilterPredicate,
    globalLogPublisher,
)

LEVELS = ("debug", "info", "warn", "error", "critical")

# False while a LogLevelService drops debug events.
_debug = True


def debugEnabled():
    """
    @return: C{False} while a running L{LogLevelService} drops debug
        events, else C{True} (also when no such service runs, as in tests).
    """
    return _debug


def levelNamed(name):
    """
    @param name: one of L{LEVELS}.
    @return: the L{LogLevel}.
    @raise ValueError: for another name.
    """
    if name not in LEVELS:
        raise ValueError(f"log level must be one of {', '.join(LEVELS)}, not {name!r}")
    return LogLevel.levelWithName(name)


class LevelFilteringObserver(FilteringLogObserver):
    """
    A L{FilteringLogObserver} with one L{LogLevelFilterPredicate} (no
    per-namespace levels), checked by a set lookup: it forwards what the
    predicate would (events at C{level} or above, with a namespace) at a
    fraction of the cost, since every event of the process goes through it.
    """

    def __init__(self, observer, level):
        FilteringLogObserver.__init__(
            self, observer, [LogLevelFilterPredicate(defaultLogLevel=level)])
        levels = list(LogLevel.iterconstants())
        self._levels = frozenset(levels[levels.index(level):])

    def __call__(self, event):
        if event.get("log_level") in self._levels and event.get("log_namespace"):
            if "log_trace" in event:
                event["log_trace"].append((self, self._observer))
            self._observer(event)
        else:
            self._negativeObserver(event)


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
        global _debug
        Service.startService(self)
        _debug = self.level is LogLevel.debug
        for observer in list(getattr(self.publisher, "_observers", ())):
            if isinstance(observer, FilteringLogObserver):
                continue
            wrapper = LevelFilteringObserver(observer, self.level)
            self.publisher.removeObserver(observer)
            self.publisher.addObserver(wrapper)
            self._wrapped.append((observer, wrapper))

    def stopService(self):
        global _debug
        Service.stopService(self)
        _debug = True
        for observer, wrapper in self._wrapped:
            self.publisher.removeObserver(wrapper)
            self.publisher.addObserver(observer)
        self._wrapped = []
