# -*- test-case-name: linkrtc.test.test_drain -*-
"""
Graceful drain: on SIGTERM (or C{POST /admin/drain}) LinkRTC stops taking
new calls, lets the live ones finish for up to C{--drain-seconds}, ends
the rest with BYE and exits. A second SIGTERM stops at once.

While draining, the SIP user agent answers a new INVITE and an
out-of-dialog OPTIONS with 503 and C{Retry-After} (RFC 3261 §21.5.4,
§20.33), and a client's C{call} gets C{error} 503 (docs/operations.rst).
"""

import ipaddress
import json
import math
import signal

from twisted.application.service import Service
from twisted.internet import error as netError
from twisted.logger import Logger
from twisted.web.resource import Resource

from linkrtc import metrics
from linkrtc.adminauth import AdminGuard

log = Logger()


class Admission:
    """
    Whether LinkRTC takes new calls: read by the SIP user agent (new
    INVITE, OPTIONS), the call manager (a client's C{call}) and C{/readyz};
    set by L{DrainService}. Also the caps of issue 11 ("SIP admission"):
    concurrent calls (C{--max-calls}, like FreeSWITCH's C{max-sessions})
    and ringing calls per client address (C{--max-ringing-per-client}).

    @ivar clock: an C{IReactorTime}.
    @ivar draining: C{True} once a drain began (it never ends: the process
        exits).
    @ivar deadline: clock seconds when the live calls are ended, or
        C{None} before a drain.
    @ivar maxCalls: most calls at once (C{int}), or C{None}.
    @ivar maxRingingPerClient: most unanswered incoming calls from one
        source address (C{int}), or C{None}.
    @ivar busyRetryAfter: the C{Retry-After} of a cap's 503, seconds (C{int}).
    @ivar loopLag: the L{linkrtc.overload.LoopLagMonitor} (its C{lag}), or
        C{None}.
    @ivar maxLoopLag: seconds (C{float}) of smoothed event-loop lag above
        which new INVITEs get 503 (C{--max-loop-lag}, overload control), or
        C{None}.
    """

    def __init__(self, clock, maxCalls=None, maxRingingPerClient=None, busyRetryAfter=5,
                 loopLag=None, maxLoopLag=None):
        self.clock = clock
        self.draining = False
        self.deadline = None
        self.maxCalls = maxCalls
        self.maxRingingPerClient = maxRingingPerClient
        self.busyRetryAfter = busyRetryAfter
        self.loopLag = loopLag
        self.maxLoopLag = maxLoopLag if loopLag is not None else None
        self._capped = set()

    def close(self, drainSeconds):
        """
        Take no new calls from now on.

        @param drainSeconds: seconds until the live calls are ended, C{float}.
        """
        self.draining = True
        self.deadline = self.clock.seconds() + drainSeconds

    def retryAfter(self):
        """
        @return: the C{Retry-After} value in seconds (C{int}, at least 1):
            the time left until the drain ends, when this process stops
            and its successor can take calls.
        """
        if self.deadline is None:
            return 1
        return max(1, math.ceil(self.deadline - self.clock.seconds()))

    def refusal(self, calls=None, ringing=None, source=None):
        """
        @param calls: the calls live now (C{int}), for a new INVITE; C{None}
            (OPTIONS) skips the C{maxCalls} and the loop lag checks.
        @param ringing: the unanswered incoming calls from the request's
            source address (C{int}), or C{None} to skip that check.
        @param source: that address (C{str}), for the log.
        @return: C{None} while calls are taken, else C{(status, reason,
            headers)} for a SIP request that would start something new:
            C{(503, "Service Unavailable", [("Retry-After", "N")])}, N the
            seconds of L{retryAfter} while draining, else
            L{busyRetryAfter} when the event loop lags more than
            L{maxLoopLag} (a new INVITE only) or a cap is reached (logged
            once per episode, counted in C{linkrtc_sip_refused_total} with
            reason C{loop_lag}, C{max_calls} or C{max_ringing}).
        """
        if self.draining:
            return 503, "Service Unavailable", [("Retry-After", str(self.retryAfter()))]
        cap = None
        lagging = (calls is not None and self.maxLoopLag is not None
                   and self.loopLag.lag > self.maxLoopLag)
        if lagging:
            cap = "loop_lag"
        elif calls is not None and self.maxCalls is not None and calls >= self.maxCalls:
            cap = "max_calls"
        elif (ringing is not None and self.maxRingingPerClient is not None
                and ringing >= self.maxRingingPerClient):
            cap = "max_ringing"
        if calls is not None and not lagging:
            self._capped.discard("loop_lag")
        if cap is None:
            self._capped.discard("max_calls")
            self._capped.discard(("max_ringing", source))
            return None
        metrics.SIP_REFUSED.labels(reason=cap).inc()
        episode = (cap, source) if cap == "max_ringing" else cap
        if episode not in self._capped:
            if len(self._capped) > 1000:
                self._capped.clear()
            self._capped.add(episode)
            if cap == "loop_lag":
                log.warn("Refusing new calls with 503: the event loop lags {lag:.0f} ms "
                         "(--max-loop-lag {limit:.0f} ms); {calls} calls live",
                         lag=1000 * self.loopLag.lag, limit=1000 * self.maxLoopLag, calls=calls)
            else:
                log.warn("Refusing new calls with 503: {cap} reached ({calls} calls, "
                         "{ringing} ringing from {source})", cap=cap, calls=calls,
                         ringing=ringing, source=source)
        return 503, "Service Unavailable", [("Retry-After", str(self.busyRetryAfter))]


class DrainService(Service):
    """
    Takes over SIGTERM once the reactor runs (twistd's own handler would
    stop the reactor and hang up every call at once) and drains.

    @ivar admission: the L{Admission} it closes.
    @ivar manager: the L{linkrtc.call.manager.CallManager} (C{calls},
        C{whenIdle}, C{closeAll}).
    @ivar drainSeconds: seconds live calls may go on after the drain
        begins, C{float}.
    @ivar lingerSeconds: seconds between the last call's end and the stop,
        so the last BYE's transaction is answered while the sockets are up.
    @ivar closeSeconds: seconds the calls ended at the deadline have to be
        released (media closed) before the stop comes regardless.
    """

    name = "drain"
    lingerSeconds = 1.0
    closeSeconds = 10.0

    def __init__(self, reactor, admission, manager, drainSeconds=300.0, signals=signal):
        """
        @param reactor: an C{IReactorTime}, C{IReactorCore} (C{stop},
            C{callWhenRunning}) and C{IReactorThreads} (C{callFromThread},
            the only thing a signal handler does).
        @param signals: the module (or a fake) whose C{signal(number,
            handler)} installs the SIGTERM handler.
        """
        self.reactor = reactor
        self.admission = admission
        self.manager = manager
        self.drainSeconds = float(drainSeconds)
        self.signals = signals
        self.stopping = False
        self._deadline = None
        self._stopCall = None

    def startService(self):
        Service.startService(self)
        # The reactor installs its own SIGTERM handler during startup;
        # ours comes after it.
        self.reactor.callWhenRunning(self._takeSIGTERM)

    def stopService(self):
        Service.stopService(self)
        self.stopping = True
        for delayed in (self._deadline, self._stopCall):
            if delayed is not None and delayed.active():
                delayed.cancel()
        self._deadline = self._stopCall = None

    def _takeSIGTERM(self):
        self.signals.signal(self.signals.SIGTERM, self._sigterm)

    def _sigterm(self, number, frame=None):
        self.reactor.callFromThread(self.terminate)

    def terminate(self):
        """SIGTERM: the first begins the drain, the second stops at once."""
        if self.stopping:
            return
        if self.admission.draining:
            log.warn("SIGTERM again: stopping now, ending {count} call(s)",
                     count=len(self.manager.calls))
            self._stop()
            return
        self.drain("SIGTERM")

    def drain(self, why):
        """
        Stop taking calls; stop the reactor once the live calls have ended
        (or were ended, after L{drainSeconds}). Calling it again changes
        nothing.

        @param why: what asked for it, for the log (C{"SIGTERM"}, ...).
        @return: C{dict} with C{draining} (C{True}), C{calls} (live calls
            now) and C{drain_seconds} (time left, C{float}).
        """
        calls = len(self.manager.calls)
        if not self.admission.draining and not self.stopping:
            self.admission.close(self.drainSeconds)
            log.info("{why}: draining, taking no new calls; {count} live call(s) may go on "
                     "for {seconds} s", why=why, count=calls, seconds=self.drainSeconds)
            if calls == 0:
                self._stopCall = self.reactor.callLater(0, self._stop)
            else:
                self._deadline = self.reactor.callLater(self.drainSeconds, self._deadlineReached)
                self.manager.whenIdle().addCallback(self._idle)
        left = max(0.0, (self.admission.deadline or 0.0) - self.reactor.seconds())
        return {"draining": True, "calls": calls, "drain_seconds": left}

    def _idle(self, _):
        if self.stopping:
            return
        log.info("drain: the last call has ended")
        for delayed in (self._deadline, self._stopCall):
            if delayed is not None and delayed.active():
                delayed.cancel()
        self._deadline = None
        self._stopCall = self.reactor.callLater(self.lingerSeconds, self._stop)

    def _deadlineReached(self):
        self._deadline = None
        log.warn("drain: {seconds} s passed, ending {count} call(s) with BYE",
                 seconds=self.drainSeconds, count=len(self.manager.calls))
        # The calls leave the manager as they end: whenIdle fires, and the
        # stop follows after lingerSeconds; or after closeSeconds if one
        # does not end.
        self._stopCall = self.reactor.callLater(self.closeSeconds, self._stop)
        self.manager.closeAll()

    def _stop(self):
        self._stopCall = None
        if self.stopping:
            return
        self.stopping = True
        try:
            self.reactor.stop()
        except netError.ReactorNotRunning:
            pass


def isLoopback(host):
    """
    @param host: an IP address, C{str} (IPv4, IPv6 or IPv4-mapped IPv6).
    @return: C{True} for a loopback address; C{False} otherwise or when
        C{host} is no IP address (a UNIX socket peer has none).
    """
    try:
        address = ipaddress.ip_address(host)
    except (TypeError, ValueError):
        return False
    mapped = getattr(address, "ipv4_mapped", None)
    return (mapped or address).is_loopback


class DrainResource(Resource):
    """
    C{POST /admin/drain}: begin the drain (as SIGTERM does); C{202} with
    L{DrainService.drain}'s C{dict} as JSON. Who may ask is the
    L{linkrtc.adminauth.AdminGuard}'s decision: with an auth secret, a
    bearer token with the C{admin} grant (401/403 otherwise); without one,
    loopback peers only, and not from a web page (a request with an
    C{Origin} header gets 403, so a browser cannot be made to drain the
    switch).

    @param drainService: the L{DrainService}.
    @param guard: the L{linkrtc.adminauth.AdminGuard}; C{None} for protected
        mode's (loopback only).
    """

    isLeaf = True

    def __init__(self, drainService, guard=None):
        super().__init__()
        self.drainService = drainService
        self.guard = guard if guard is not None else AdminGuard()

    def render_POST(self, request):
        request.setHeader(b"Content-Type", b"application/json")
        request.setHeader(b"Cache-Control", b"no-store")
        refusal = self.guard.refuse(request)
        if refusal is not None:
            return refusal
        request.setResponseCode(202)
        return json.dumps(self.drainService.drain("POST /admin/drain")).encode()


def adminResource(drainService, guard=None):
    """
    @param guard: the L{linkrtc.adminauth.AdminGuard} of the admin
        endpoints, or C{None} for loopback only.
    @return: the C{/admin} L{Resource} with its C{drain} child.
    """
    admin = Resource()
    admin.putChild(b"drain", DrainResource(drainService, guard))
    return admin
