# -*- test-case-name: linkrtc.sip.test.test_sessiontimer -*-
"""
Session timers (RFC 4028) for the INVITE legs of both directions.

Negotiation: L{SessionTimerSettings} holds our C{Session-Expires} and
C{Min-SE} (seconds). An INVITE whose C{Session-Expires} is below our
C{Min-SE} gets 422 with our C{Min-SE} when the caller supports C{timer}
(L{tooSmall}, RFC 4028 §9); a caller without C{timer} gets our C{Min-SE}
instead. A caller that supports C{timer} without asking for an interval
gets ours, refresher C{uac}; a caller that neither supports C{timer} nor
sends C{Session-Expires} gets no session timer. Our INVITEs carry
C{Supported: timer}, C{Session-Expires} and C{Min-SE}; a 422 makes the leg
ask again with the 422's C{Min-SE} (L{uacRetry}); a 2xx without
C{Session-Expires} means no session timer (§7.2).

Running (L{DialogSessionTimer}, one per confirmed dialog): the refresher
sends a session refresh at half the interval (§10): UPDATE without a body
if the peer allows UPDATE, else a re-INVITE with our last SDP unchanged;
the other side ends the session with BYE when no refresh came by
C{interval - min(32, interval / 3)} seconds. A refresh answered 408 or 481,
or timing out, ends the session with BYE too (§10). Each end tells the leg's
listener C{legTerminated} with a reason that starts with C{"session-"}
(L{EXPIRED}, L{REFRESH_FAILED}), which the call writes in its CDR. Every
2xx to a re-INVITE or UPDATE we answer, and every 2xx to a refresh we
send, starts a new interval.
"""

from twisted.internet import defer
from twisted.logger import Logger

from linkrtc import metrics
from linkrtc.error import InvalidStateError, TransactionTimeout
from linkrtc.sip.reliable import optionTags

log = Logger()

#: The option tag of RFC 4028.
OPTION_TAG = "timer"

#: Default Session-Expires, seconds (RFC 4028 §4 recommends 1800).
DEFAULT_SESSION_EXPIRES = 1800

#: Default Min-SE, seconds (RFC 4028 §4: not below 90).
DEFAULT_MIN_SE = 90

#: The reason a session without refresh ends with (C{legTerminated}, CDR).
EXPIRED = "session-timer-expired"

#: The reason a session whose refresh failed ends with; a detail follows.
REFRESH_FAILED = "session-refresh-failed"

#: Seconds before a refresh that could not start (a re-INVITE of the call
#: in progress) is tried again.
RETRY_DELAY = 1.0


class SessionTimerSettings:
    """
    Our side of the negotiation.

    @ivar sessionExpires: the interval we ask for and the most we grant,
        seconds (C{int}).
    @ivar minSE: the shortest interval we accept, seconds (C{int}).
    """

    def __init__(self, sessionExpires=DEFAULT_SESSION_EXPIRES, minSE=DEFAULT_MIN_SE):
        """
        @raise ValueError: if either is not positive or C{minSE} exceeds
            C{sessionExpires}.
        """
        if minSE <= 0 or sessionExpires <= 0 or minSE > sessionExpires:
            raise ValueError("need 0 < min-se <= session-expires (%r, %r)"
                             % (minSE, sessionExpires))
        self.sessionExpires = int(sessionExpires)
        self.minSE = int(minSE)


def parseSessionExpires(message):
    """
    @param message: a request or response.
    @return: C{(delta, refresher)} from its C{Session-Expires} (seconds;
        C{"uac"}, C{"uas"} or C{None}), or C{None} if it has none or it
        cannot be read.
    """
    value = message.headers.get("Session-Expires")
    if not value:
        return None
    parts = value.split(";")
    delta = parts[0].strip()
    if not delta.isdigit() or int(delta) <= 0:
        return None
    refresher = None
    for param in parts[1:]:
        name, _, v = param.partition("=")
        if name.strip().lower() == "refresher" and v.strip().lower() in ("uac", "uas"):
            refresher = v.strip().lower()
    return int(delta), refresher


def parseMinSE(message):
    """@return: the C{Min-SE} of C{message} in seconds (C{int}), or 0."""
    value = (message.headers.get("Min-SE") or "").split(";")[0].strip()
    return int(value) if value.isdigit() else 0


def supportsTimer(message):
    """@return: C{True} if C{message} has C{timer} in Supported or Require."""
    return OPTION_TAG in optionTags(message, "Supported") + optionTags(message, "Require")


def tooSmall(request, settings):
    """
    RFC 4028 §9: the 422 check of an INVITE, re-INVITE or UPDATE.

    @return: our C{Min-SE} (C{int}) if the request must be answered 422
        with it, else C{None}.
    """
    asked = parseSessionExpires(request)
    if settings is None or asked is None or not supportsTimer(request):
        return None
    return settings.minSE if asked[0] < settings.minSE else None


def uasTerms(request, settings):
    """
    RFC 4028 §9: the terms a UAS grants for C{request} (one that passed
    L{tooSmall}).

    @return: C{(interval, refresher)} (seconds, C{"uac"}/C{"uas"}) or
        C{None} for no session timer.
    """
    if settings is None:
        return None
    asked = parseSessionExpires(request)
    supports = supportsTimer(request)
    floor = max(settings.minSE, parseMinSE(request))
    if asked is None:
        if not supports:
            return None
        interval, refresher = settings.sessionExpires, None
    else:
        interval, refresher = asked
        interval = min(interval, settings.sessionExpires)
    interval = max(interval, floor)
    if not supports:
        refresher = "uas"  # the caller would not refresh
    return interval, refresher or "uac"


def uacHeaders(settings, minSE=0):
    """
    @param minSE: a C{Min-SE} a 422 asked for (seconds), or 0.
    @return: the C{(name, value)} session-timer headers of our INVITE
        (Session-Expires, Min-SE; Supported is the leg's).
    """
    floor = max(settings.minSE, minSE)
    return [("Session-Expires", str(max(settings.sessionExpires, floor))),
            ("Min-SE", str(floor))]


def uacRetry(response, minSE):
    """
    RFC 4028 §7.3: a 422 to our INVITE.

    @param minSE: the C{Min-SE} our INVITE carried (seconds).
    @return: the C{Min-SE} to ask again with (C{int}), or C{None} if asking
        again would not help (none given, or not larger).
    """
    asked = parseMinSE(response)
    return asked if asked > minSE else None


def uacTerms(response):
    """
    RFC 4028 §7.2: the terms of the 2xx to our INVITE.

    @return: C{(interval, refresher)} or C{None} (no session timer).
    """
    granted = parseSessionExpires(response)
    if granted is None:
        return None
    return granted[0], granted[1] or "uac"


class DialogSessionTimer:
    """
    The session timer of one confirmed dialog (RFC 4028 §10).

    @ivar interval: the session interval, seconds.
    @ivar refresher: C{"uac"} or C{"uas"}.
    @ivar localSdp: our last SDP (C{bytes} or C{None}), the body of a
        re-INVITE refresh.
    """

    def __init__(self, clock, role, interval, refresher, settings, sendRequest, end,
                 useUpdate, localSdp=None):
        """
        @param clock: an C{IReactorTime}.
        @param role: C{"uac"} or C{"uas"}: our role in the INVITE that made
            the dialog (the refresher parameter names roles of that INVITE).
        @param interval: seconds.
        @param refresher: C{"uac"} or C{"uas"}.
        @param settings: the L{SessionTimerSettings}.
        @param sendRequest: the leg's C{sendRequest(method, body,
            contentType, headers, endOnFailure=False)} returning a
            L{Deferred} of the final L{Response}.
        @param end: C{end(reason)}: send BYE and tell the listener
            C{legTerminated(reason)}.
        @param useUpdate: C{True} if the peer allows UPDATE (refresh by
            UPDATE, else re-INVITE).
        @param localSdp: our SDP so far.
        """
        self.clock = clock
        self.role = role
        self.settings = settings
        self.localSdp = localSdp
        self._sendRequest = sendRequest
        self._end = end
        self._useUpdate = useUpdate
        self._timer = None
        self._retry = None
        self._stopped = False
        self._refreshing = False
        self.refreshes = 0
        self._restart(interval, refresher)

    @property
    def weRefresh(self):
        """C{True} if we send the refreshes."""
        return self.refresher == self.role

    def _restart(self, interval, refresher):
        # never below our Min-SE, whatever a peer's 2xx says (no refresh storm)
        self.interval = max(1, self.settings.minSE, int(interval))
        self.refresher = refresher
        self._cancel()
        if self._stopped:
            return
        if self.weRefresh:
            self._timer = self.clock.callLater(self.interval / 2.0, self._refresh)
        else:
            margin = min(32.0, self.interval / 3.0)
            self._timer = self.clock.callLater(self.interval - margin, self._expired)

    def _cancel(self):
        for call in (self._timer, self._retry):
            if call is not None and call.active():
                call.cancel()
        self._timer = self._retry = None

    def stop(self):
        """The dialog is over: no more timers."""
        self._stopped = True
        self._cancel()

    # -- the peer's requests ---------------------------------------------------

    def answerHeaders(self, request):
        """
        A 2xx to the peer's re-INVITE or UPDATE is about to go: the session
        is refreshed (a new interval starts, with the request's terms).

        @return: the C{(name, value)} headers to add to that 2xx.
        """
        terms = uasTerms(request, self.settings) if parseSessionExpires(request) else None
        if terms is not None:
            self._restart(terms[0], self._dialogRole(terms[1], peerSent=True))
        else:
            self._restart(self.interval, self.refresher)
        headers = [("Session-Expires", "%d;refresher=%s"
                    % (self.interval, self._requestRole(self.refresher, peerSent=True)))]
        if supportsTimer(request):
            headers.append(("Require", OPTION_TAG))
        return headers

    def _dialogRole(self, requestRole, peerSent):
        """
        The refresher as a role of the dialog's INVITE, from a refresher
        named in a later request's roles.
        """
        if not peerSent:
            return self.role if requestRole == "uac" else self._peerRole()
        return self._peerRole() if requestRole == "uac" else self.role

    def _requestRole(self, dialogRole, peerSent):
        """The inverse of L{_dialogRole}: a dialog role as a role of a later request."""
        us = dialogRole == self.role
        if peerSent:
            return "uas" if us else "uac"
        return "uac" if us else "uas"

    def _peerRole(self):
        return "uas" if self.role == "uac" else "uac"

    # -- our refreshes -----------------------------------------------------------

    def _refresh(self):
        self._timer = None
        if self._stopped:
            return
        margin = min(32.0, self.interval / 3.0)
        # if no refresh succeeds, the session still ends at its expiry
        self._timer = self.clock.callLater(self.interval / 2.0 - margin, self._expired) \
            if self.interval / 2.0 > margin else None
        self._sendRefresh(self.settings.minSE)

    def _sendRefresh(self, minSE, retried=False):
        headers = [("Session-Expires", "%d;refresher=uac" % (max(self.interval, minSE),)),
                   ("Min-SE", str(minSE)), ("Supported", OPTION_TAG)]
        if self._useUpdate or not self.localSdp:
            method, body, contentType = "UPDATE", None, None
        else:
            method, body, contentType = "INVITE", self.localSdp, "application/sdp"
        self._refreshing = True
        try:
            d = defer.maybeDeferred(self._sendRequest, method, body, contentType, headers,
                                    endOnFailure=False)
        except Exception:
            d = defer.fail()
        d.addCallbacks(self._refreshAnswered, self._refreshLost,
                       callbackArgs=(method, minSE, retried), errbackArgs=(method,))
        d.addErrback(lambda f: log.failure("session refresh", f))

    def _refreshAnswered(self, response, method, minSE, retried):
        self._refreshing = False
        if self._stopped:
            return
        status = response.status
        if 200 <= status < 300:
            self.refreshes += 1
            terms = uacTerms(response)
            if terms is None:
                terms = (self.interval, "uac")
            self._restart(terms[0], self._dialogRole(terms[1], peerSent=False))
        elif status == 422 and not retried and parseMinSE(response) > minSE:
            self._sendRefresh(parseMinSE(response), retried=True)
        elif status in (408, 481):
            self._fail("%s (%d to %s)" % (REFRESH_FAILED, status, method))
        else:
            log.info("session refresh {method} answered {status}; the session expires "
                     "unless refreshed", method=method, status=status)

    def _refreshLost(self, failure, method):
        self._refreshing = False
        if self._stopped:
            return
        if failure.check(InvalidStateError):
            # another re-INVITE is in progress: try again soon; the session
            # still ends at its expiry if none succeeds
            self._retry = self.clock.callLater(RETRY_DELAY, self._retryRefresh)
            return
        if failure.check(TransactionTimeout):
            why = "%s timed out" % (method,)
        else:
            why = "%s not sent: %s" % (method, failure.getErrorMessage())
        self._fail("%s (%s)" % (REFRESH_FAILED, why))

    def _retryRefresh(self):
        self._retry = None
        if not self._stopped:
            self._sendRefresh(self.settings.minSE)

    def _fail(self, reason):
        log.info("session timer: {reason}: BYE", reason=reason)
        metrics.SIP_SESSION_TIMER_ENDS.labels(
            "expired" if reason == EXPIRED else "refresh_failed").inc()
        self.stop()
        self._end(reason)

    def _expired(self):
        self._timer = None
        if self._stopped:
            return
        self._fail(EXPIRED)


# -- what the INVITE legs call ----------------------------------------------------


def allowsUpdate(message):
    """@return: C{True} if C{message}'s Allow lists UPDATE (RFC 3311)."""
    return "update" in optionTags(message, "Allow")


def initialHeaders(terms, request):
    """
    @param terms: C{(interval, refresher)} from L{uasTerms}.
    @param request: the INVITE.
    @return: the C{(name, value)} headers of our 2xx to it (RFC 4028 §9).
    """
    headers = [("Session-Expires", "%d;refresher=%s" % terms)]
    if supportsTimer(request):
        headers.append(("Require", OPTION_TAG))
    return headers


def endSession(leg, reason):
    """
    End C{leg}'s session for the session timer: BYE, then the listener
    hears C{legTerminated(reason)}. Failures are logged.
    """
    try:
        d = leg.sendBye()
    except Exception:
        d = defer.fail()
    d.addErrback(lambda f: log.info("BYE after {reason}: {why}", reason=reason,
                                    why=f.getErrorMessage()))
    listener = getattr(leg, "listener", None)
    if listener is not None:
        try:
            listener.legTerminated(reason)
        except Exception:
            log.failure("listener of a session timer's end")


def startTimer(leg, role, terms, peerMessage, localSdp):
    """
    @param leg: an INVITE leg (its C{clock}, C{userAgent.sessionTimer},
        C{sendRequest}, C{sendBye}, C{listener}).
    @param role: C{"uac"} or C{"uas"}, ours in the dialog's INVITE.
    @param terms: C{(interval, refresher)} or C{None}.
    @param peerMessage: the peer's INVITE or 2xx (its Allow).
    @param localSdp: our SDP (C{bytes}) or C{None}.
    @return: a running L{DialogSessionTimer}, or C{None}.
    """
    settings = getattr(leg.userAgent, "sessionTimer", None)
    if terms is None or settings is None:
        return None
    return DialogSessionTimer(leg.clock, role, terms[0], terms[1], settings, leg.sendRequest,
                              lambda reason: endSession(leg, reason),
                              allowsUpdate(peerMessage), localSdp)


def refuseTooSmall(leg, request, transaction):
    """
    RFC 4028 §9 for a request in C{leg}'s dialog: a re-INVITE or UPDATE
    asking for less than our Min-SE is answered 422 here.

    @return: C{True} if it was (the leg does nothing more with it).
    """
    if request.method not in ("INVITE", "UPDATE"):
        return False
    minSE = tooSmall(request, getattr(leg.userAgent, "sessionTimer", None))
    if minSE is None:
        return False
    leg.userAgent.respond(transaction, request, 422, headers=[("Min-SE", str(minSE))])
    return True


def answerHeaders(timer, request, status, body):
    """
    A response to the peer's C{request} in a dialog with C{timer} (or
    C{None}) is about to go: a 2xx to a re-INVITE or UPDATE refreshes the
    session.

    @return: the C{(name, value)} headers to add (a C{tuple}).
    """
    if timer is None or request.method not in ("INVITE", "UPDATE") or not 200 <= status < 300:
        return ()
    if body:
        timer.localSdp = bytes(body)
    return tuple(timer.answerHeaders(request))
