# -*- test-case-name: linkrtc.test.test_overload -*-
"""
Overload control by event-loop lag (docs/operations.rst, "Overload").

A switch given more calls than it can carry should refuse the surplus at
once (503 with C{Retry-After}, RFC 3261 §21.5.4) rather than queue every
INVITE until each call's post-dial delay is seconds long. LinkRTC runs on
one event loop, so "more than it can carry" shows as the loop falling
behind: a timer due every L{LoopLagMonitor.interval} seconds fires late by
as long as the work queued before it (a burst of datagrams read in one go,
a long collection). But most of the queue is not in the loop: the SIP UDP
socket's receive buffer (4 MB, linkrtc/sip/endpoints.py) holds seconds of
INVITEs, and the loop reads them 256 kB at a time, so a timer is late by
one such read however long the queue behind it. So the monitor also asks
the kernel how long the oldest datagram waiting in each SIP UDP socket has
waited (its C{SO_TIMESTAMP}, read with C{MSG_PEEK}: nothing is consumed),
and the lag is the greater of the two. L{linkrtc.drain.Admission} refuses
new INVITEs while it (smoothed) is above C{--max-loop-lag}; requests inside
a dialog (ACK, BYE, re-INVITE) are never refused, so the calls already
taken go on.
"""

import socket
import struct

from twisted.application.service import Service
from twisted.logger import Logger

log = Logger()

#: C{SO_TIMESTAMP} (Linux; the C{socket} module does not name it): the
#: kernel stamps each datagram with its arrival time (a C{struct timeval}).
SO_TIMESTAMP = getattr(socket, "SO_TIMESTAMP", 29)
_TIMEVAL = struct.Struct("@ll")
_PEEK = getattr(socket, "MSG_PEEK", 2) | getattr(socket, "MSG_DONTWAIT", 0x40)


def watchArrivals(sock):
    """
    Have the kernel stamp each datagram C{sock} receives (C{SO_TIMESTAMP}),
    for L{oldestWait}. The socket's reader is unaffected (C{recvfrom}
    ignores the stamps).

    @param sock: a datagram C{socket.socket}.
    @return: C{True} if set, C{False} where the system does not allow it.
    """
    try:
        sock.setsockopt(socket.SOL_SOCKET, SO_TIMESTAMP, 1)
    except (OSError, AttributeError):
        return False
    return True


def oldestWait(sock, now):
    """
    @param sock: a datagram C{socket.socket} with L{watchArrivals} set.
    @param now: the time now, POSIX seconds (C{float}; the reactor's
        C{seconds()}).
    @return: seconds the first datagram in C{sock}'s receive queue has
        waited (C{float}), 0.0 when the queue is empty or the arrival time
        is unknown. Peeks (C{MSG_PEEK}): the datagram stays for the reader.
    """
    try:
        _, ancillary, _, _ = sock.recvmsg(1, socket.CMSG_SPACE(_TIMEVAL.size), _PEEK)
    except (OSError, AttributeError, ValueError):
        return 0.0  # empty (EAGAIN), closed, or a pending ICMP error
    for level, kind, data in ancillary:
        if level == socket.SOL_SOCKET and kind == SO_TIMESTAMP and len(data) >= _TIMEVAL.size:
            seconds, microseconds = _TIMEVAL.unpack_from(data)
            return max(0.0, now - (seconds + microseconds / 1e6))
    return 0.0


class LoopLagMonitor(Service):
    """
    Measures the event loop's lag: every L{interval} seconds a timer is
    set, and how late it fires (clock seconds past its due time, at least
    0), or how long the oldest datagram waiting in one of the C{sockets}
    has waited if longer, is one sample; L{lag} is their exponentially
    weighted moving average, each sample weighing L{weight}, so one late
    tick (a process descheduled once) moves it a little and a loop that
    stays behind moves it fully within a few ticks.

    Runs while the service runs (C{startService} / C{stopService}).

    @ivar clock: an C{IReactorTime}.
    @ivar interval: seconds between samples (C{float}, default 0.1).
    @ivar weight: the weight of a new sample in L{lag}, 0 < weight <= 1.
    @ivar lag: the smoothed lag, seconds (C{float}; 0.0 before a sample).
    @ivar lastLag: the latest sample, seconds (C{float}).
    """

    name = "loop-lag"

    def __init__(self, clock, interval=0.1, weight=0.3, sockets=lambda: ()):
        """
        @param sockets: a callable returning the datagram sockets (C{socket.socket})
            whose receive queues count, read at every tick (L{watchArrivals}
            is set on each the first time); C{()} by default.
        @raise ValueError: if C{interval} is not positive or C{weight} is
            outside (0, 1].
        """
        if not interval > 0:
            raise ValueError(f"interval must be positive, not {interval!r}")
        if not 0 < weight <= 1:
            raise ValueError(f"weight must be in (0, 1], not {weight!r}")
        self.clock = clock
        self.interval = float(interval)
        self.weight = float(weight)
        self.lag = 0.0
        self.lastLag = 0.0
        self.sockets = sockets
        self._watched = set()
        self._due = None
        self._call = None

    def startService(self):
        Service.startService(self)
        self._schedule()

    def stopService(self):
        Service.stopService(self)
        if self._call is not None and self._call.active():
            self._call.cancel()
        self._call = None

    def _schedule(self):
        self._due = self.clock.seconds() + self.interval
        self._call = self.clock.callLater(self.interval, self._tick)

    def _tick(self):
        self._call = None
        now = self.clock.seconds()
        sample = max(0.0, now - self._due)
        try:
            for sock in self.sockets():
                if sock not in self._watched:
                    self._watched.add(sock)
                    watchArrivals(sock)
                sample = max(sample, oldestWait(sock, now))
        except Exception:
            log.failure("loop lag: the socket queues could not be read")
        self.lastLag = sample
        self.lag += self.weight * (sample - self.lag)
        self._schedule()


__all__ = ["LoopLagMonitor", "oldestWait", "watchArrivals"]
