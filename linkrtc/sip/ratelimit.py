# -*- test-case-name: linkrtc.sip.test.test_ratelimit -*-
"""
Per-source flood control for SIP (docs/security.rst, "SIP admission and
flood control"), in the manner of Kamailio's C{pike} module: a token
bucket per source IP address over the requests that start something new
(out-of-dialog requests), and a temporary ban once a source exceeds it.

The transport layer asks twice:

 - L{SourceRateLimiter.banned} for every packet (UDP datagram, stream
   message) before it is parsed, by source address only: a banned source
   costs a dictionary look-up per packet and gets no answer;
 - L{SourceRateLimiter.admit} for each parsed out-of-dialog request
   (no To tag, not ACK): the request that empties the bucket starts a ban
   and gets one 503 with Retry-After (L{REFUSE}); every later packet of
   the ban is dropped (L{DROP}).

Responses, ACKs and requests with a To tag (in a dialog) are not counted.
Loopback sources are not limited unless C{limitLoopback} is set. Each ban
is one security-event line (C{event=sip_flood}) and one count of
C{linkrtc_security_events_total{event="sip_flood"}}; each refused or
dropped request counts in C{linkrtc_sip_refused_total}.
"""

from twisted.logger import Logger

from linkrtc import metrics
from linkrtc.signalling.guard import securityEvent

log = Logger()

#: Out-of-dialog requests a second allowed per source (a token bucket's rate).
DEFAULT_RATE = 100.0

#: Default ban length, seconds.
DEFAULT_BAN_SECONDS = 30.0

#: Sources remembered at most; the oldest is forgotten beyond it.
DEFAULT_MAX_SOURCES = 100000

#: Verdicts of L{SourceRateLimiter.admit}.
ALLOW = "allow"
REFUSE = "refuse"
DROP = "drop"


def isLoopbackText(host):
    """
    @param host: an IP address as the socket gives it, C{str}.
    @return: C{True} for 127.0.0.0/8, C{::1} and IPv4-mapped loopback (a
        string test: no parsing, it runs for every request).
    """
    return host.startswith("127.") or host == "::1" or host.startswith("::ffff:127.")


class _Bucket:
    __slots__ = ("tokens", "updated", "bannedUntil", "dropped")

    def __init__(self, tokens, now):
        self.tokens = tokens
        self.updated = now
        self.bannedUntil = None
        self.dropped = 0


class SourceRateLimiter:
    """
    A token bucket and a ban per source IP address.

    @ivar rate: requests a second refilled into each bucket, C{float} > 0.
    @ivar burst: the bucket's size (requests), C{float} >= 1.
    @ivar banSeconds: how long a ban lasts, seconds (C{float}).
    @ivar limitLoopback: C{True} to limit loopback sources too.
    """

    def __init__(self, clock, rate=DEFAULT_RATE, burst=None, banSeconds=DEFAULT_BAN_SECONDS,
                 limitLoopback=False, maxSources=DEFAULT_MAX_SOURCES):
        """
        @param clock: an C{IReactorTime}.
        @param rate: requests a second, C{float} > 0.
        @param burst: requests a source may send at once (the bucket's
            size); default twice C{rate}, at least 1.
        @param banSeconds: seconds a source that exceeded the rate is
            dropped for, C{float} > 0.
        @param limitLoopback: C{True} to limit 127.0.0.0/8 and ::1 too
            (tests); by default they are exempt.
        @param maxSources: sources tracked at most (C{int}); beyond it the
            oldest entry is forgotten (its ban too).
        @raise ValueError: for a rate, burst or ban that is not positive.
        """
        rate = float(rate)
        burst = float(burst) if burst is not None else max(1.0, 2 * rate)
        if not rate > 0 or not burst >= 1 or not float(banSeconds) > 0:
            raise ValueError("rate, burst (>= 1) and banSeconds must be positive")
        self.clock = clock
        self.rate = rate
        self.burst = burst
        self.banSeconds = float(banSeconds)
        self.limitLoopback = limitLoopback
        self.maxSources = int(maxSources)
        self._sources = {}
        self._purged = None

    def __len__(self):
        """@return: the number of sources tracked."""
        return len(self._sources)

    def bannedSources(self):
        """@return: a C{list} of the source addresses (C{str}) banned now."""
        now = self.clock.seconds()
        return [host for host, b in self._sources.items()
                if b.bannedUntil is not None and b.bannedUntil > now]

    def banned(self, host):
        """
        The check before parsing: is C{host} under a ban? A packet from a
        banned host is counted (C{linkrtc_sip_refused_total{reason="banned"}})
        and should be dropped unread.

        @param host: the source IP address, C{str}.
        @return: C{True} while C{host} is banned.
        """
        bucket = self._sources.get(host)
        if bucket is None or bucket.bannedUntil is None:
            return False
        if self.clock.seconds() >= bucket.bannedUntil:
            self._unban(host, bucket)
            return False
        bucket.dropped += 1
        metrics.SIP_REFUSED.labels(reason="banned").inc()
        return True

    def admit(self, host):
        """
        Count one out-of-dialog request from C{host}.

        @param host: the source IP address, C{str}.
        @return: L{ALLOW}; L{REFUSE} for the request that starts a ban
            (answer it once: 503 with C{Retry-After} of L{banSeconds}); or
            L{DROP} while banned (no answer).
        """
        if not self.limitLoopback and isLoopbackText(host):
            return ALLOW
        now = self.clock.seconds()
        bucket = self._sources.get(host)
        if bucket is None:
            if len(self._sources) >= self.maxSources:
                self._forgetOldest()
            bucket = self._sources[host] = _Bucket(self.burst, now)
        elif bucket.bannedUntil is not None:
            if now < bucket.bannedUntil:
                bucket.dropped += 1
                metrics.SIP_REFUSED.labels(reason="banned").inc()
                return DROP
            self._unban(host, bucket)
        else:
            bucket.tokens = min(self.burst, bucket.tokens + (now - bucket.updated) * self.rate)
            bucket.updated = now
        if bucket.tokens >= 1:
            bucket.tokens -= 1
            return ALLOW
        bucket.bannedUntil = now + self.banSeconds
        bucket.dropped = 0
        securityEvent("sip_flood", host, rate=self.rate, burst=self.burst,
                      seconds=self.banSeconds)
        metrics.SIP_REFUSED.labels(reason="rate_limited").inc()
        return REFUSE

    def _unban(self, host, bucket):
        log.info("SIP source {source} no longer banned; {dropped} packet(s) dropped in the ban",
                 source=host, dropped=bucket.dropped)
        bucket.bannedUntil = None
        bucket.tokens = self.burst
        bucket.updated = self.clock.seconds()
        bucket.dropped = 0

    def _forgetOldest(self):
        """
        Make room: forget idle sources (full buckets, no ban) at most once a
        second, else the oldest (a flood from many addresses costs O(1)).
        """
        now = self.clock.seconds()
        if self._purged is None or now - self._purged >= 1.0:
            self._purged = now
            full = self.burst / self.rate
            idle = [host for host, b in self._sources.items()
                    if b.bannedUntil is None and now - b.updated >= full]
            for host in idle:
                del self._sources[host]
        if len(self._sources) >= self.maxSources:
            del self._sources[next(iter(self._sources))]


__all__ = [
    "ALLOW",
    "DEFAULT_BAN_SECONDS",
    "DEFAULT_RATE",
    "DROP",
    "REFUSE",
    "SourceRateLimiter",
    "isLoopbackText",
]
