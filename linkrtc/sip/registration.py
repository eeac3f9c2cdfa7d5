# -*- test-case-name: linkrtc.sip.test.test_registration -*-
"""
Outbound registration of one trunk (RFC 3261 §10.2, digest auth §22,
NAT keep-alive after RFC 5626 §3.5).

A L{Registration} keeps one binding (our Contact for the trunk's
address-of-record) alive at a registrar:

    - C{start()} sends REGISTER; a 401/407 is answered once with the
      credentials (L{linkrtc.sip.auth.DigestClient}); the 200 OK tells how
      long the binding lasts (the C{expires} parameter of our Contact, else
      the C{Expires} header, else what we asked for).
    - The binding is refreshed after C{max(granted / 2, granted -
      refreshMargin)} seconds (refreshMargin 60 s by default: room for a
      whole UDP transaction, 64*T1 = 32 s, plus an auth round trip before
      the binding lapses).
    - A failure (timeout, transport error, an error status, credentials
      rejected) sets the state to C{failed} and retries after a back-off of
      30 s doubling up to 30 min (C{retryBase}, C{retryMax}); a
      C{Retry-After} longer than that is honoured. A success resets it.
      Rejected credentials give one clear error per attempt -- never a loop
      of REGISTERs (see L{linkrtc.sip.auth.DigestClient}).
    - 423 Interval Too Brief: asked again at once with the C{Min-Expires}
      of the response (at most twice per attempt).
    - While registered, a keep-alive every C{keepAliveInterval} (30 s)
      seconds: a double CRLF on a TCP/TLS connection (RFC 5626 §3.5.1;
      if the connection is gone the binding is refreshed at once, as the
      flow it named is dead) and an OPTIONS request on UDP.
    - C{stop()} removes the binding (REGISTER with C{Expires: 0}).

Call-ID and From tag stay the same for every REGISTER of a Registration
(also across C{stop()}/C{start()}); the CSeq grows by one each time
(RFC 3261 §10.2).

States: C{unregistered}, C{registering}, C{registered}, C{failed}. Each
change is logged as a structured event (C{log_namespace}
C{linkrtc.sip.registration}, keys C{trunk}, C{oldState}, C{newState},
C{error}); L{Registration.status} gives a C{dict} for the HTTP status
endpoint.
"""

import os

from twisted.internet.defer import Deferred, succeed
from twisted.internet.task import LoopingCall
from twisted.logger import Logger
from twisted.python.failure import Failure

from linkrtc import _version
from linkrtc.sip.auth import DigestAuthError, DigestClient, DigestCredentials
from linkrtc.sip.message import Headers, Request
from linkrtc.sip.uri import SIPURI, NameAddr, parseNameAddr, parseURI

__all__ = [
    "FAILED",
    "REGISTERED",
    "REGISTERING",
    "UNREGISTERED",
    "Registration",
]

log = Logger()

UNREGISTERED = "unregistered"
REGISTERING = "registering"
REGISTERED = "registered"
FAILED = "failed"

_DEFAULT_PORTS = {"UDP": 5060, "TCP": 5060, "TLS": 5061}

#: Re-submissions (after 401/407/423) allowed for one request: a last guard
#: against a registrar that keeps answering with something new.
MAX_RESUBMISSIONS = 5

#: 423 retries allowed per attempt.
MAX_INTERVAL_RETRIES = 2


def _asURI(value):
    if isinstance(value, str):
        return parseURI(value)
    return value


def _intHeader(response, name):
    """@return: the C{int} value of header C{name} (leading digits), or C{None}."""
    value = response.headers.get(name)
    if value is None:
        return None
    digits = value.strip().split(None, 1)[0].split(";", 1)[0] if value.strip() else ""
    return int(digits) if digits.isdigit() else None


class _Listener:
    """
    The client transaction listener of one REGISTER (or keep-alive OPTIONS).

    @ivar purpose: C{"register"}, C{"unregister"} or C{"keepalive"}.
    @ivar expires: the expiry asked for, seconds.
    """

    def __init__(self, registration, purpose, expires):
        self.registration = registration
        self.purpose = purpose
        self.expires = expires

    def responseReceived(self, response, transaction=None):
        self.registration._responseReceived(self, response)

    def transactionTimedOut(self, transaction=None):
        self.registration._transactionFailed(self, "no response (timeout)")

    def transportFailed(self, transaction=None, reason=None):
        message = reason.getErrorMessage() if isinstance(reason, Failure) else str(reason)
        self.registration._transactionFailed(self, "transport failed: %s" % (message,))


class Registration:
    """
    The outbound REGISTER client of one trunk.

    @ivar name: the trunk's name (C{str}), for logs and L{status}.
    @ivar registrar: the registrar L{SIPURI} (the Request-URI, without user
        part, RFC 3261 §10.2).
    @ivar aor: the address-of-record L{SIPURI} (To and From).
    @ivar expires: the expiry asked for, seconds (raised by a 423).
    @ivar state: C{"unregistered"}, C{"registering"}, C{"registered"} or
        C{"failed"}.
    @ivar callId: the Call-ID of every REGISTER (C{str}).
    @ivar fromTag: the From tag of every REGISTER (C{str}).
    @ivar cseq: the CSeq number of the last REGISTER sent (C{int}).
    @ivar lastError: a C{str} describing the last failure, or C{None}.
    """

    def __init__(self, transactionLayer, transportLayer, clock, registrar, aor, credentials,
                 expires=3600, transport="UDP", contact=None, outboundProxy=None, name=None,
                 keepAliveInterval=30.0, retryBase=30.0, retryMax=1800.0, refreshMargin=60.0,
                 userAgent=None):
        """
        @param transactionLayer: has C{sendRequest(request, destination,
            listener)} (L{linkrtc.sip.transaction.TransactionLayer}).
        @param transportLayer: the L{linkrtc.sip.transport.SIPTransportLayer}:
            C{localContactURI(transport, user)} for the default Contact and
            C{connectionTo(address)} for CRLF keep-alives.
        @param clock: an C{IReactorTime}.
        @param registrar: L{SIPURI} or C{str}: where to register.
        @param aor: L{SIPURI} or C{str}: the address-of-record.
        @param credentials: L{DigestCredentials}, a L{DigestClient}, or
            C{None} (a challenge is then a failure).
        @param expires: seconds asked for (C{int}).
        @param transport: C{"UDP"}, C{"TCP"} or C{"TLS"}, unless the
            registrar's (or proxy's) URI has a C{transport} parameter.
        @param contact: L{SIPURI}, L{NameAddr} or C{str}; default: the
            transport layer's address with the AOR's user part.
        @param outboundProxy: L{SIPURI} or C{str}, or C{None}: the first
            hop; a C{Route: <proxy;lr>} is added (RFC 3261 §8.1.2).
        @param name: the trunk's name (default: the AOR as text).
        @param keepAliveInterval: seconds between keep-alives, or C{None}
            / C{0} for none.
        @param retryBase: first retry delay after a failure, seconds.
        @param retryMax: largest retry delay, seconds.
        @param refreshMargin: seconds before expiry to refresh (but never
            before half the granted time).
        @param userAgent: the User-Agent value (default C{LinkRTC}, without
            version: docs/security.rst).
        """
        self._layer = transactionLayer
        self._transportLayer = transportLayer
        self._clock = clock
        self.registrar = _asURI(registrar)
        self.aor = _asURI(aor)
        if isinstance(credentials, DigestClient):
            self._auth = credentials
        elif isinstance(credentials, DigestCredentials):
            self._auth = DigestClient(credentials)
        elif credentials is None:
            self._auth = None
        else:
            raise TypeError("credentials must be DigestCredentials, DigestClient or None")
        self.configuredExpires = int(expires)
        self.expires = int(expires)
        self.transport = transport.upper()
        self._contact = contact
        self.outboundProxy = _asURI(outboundProxy) if outboundProxy is not None else None
        self.name = name or str(self.aor)
        self.keepAliveInterval = keepAliveInterval
        self.retryBase = retryBase
        self.retryMax = retryMax
        self.refreshMargin = refreshMargin
        self.userAgent = userAgent or _version.PRODUCT

        self.callId = "%s@linkrtc" % (os.urandom(12).hex(),)
        self.fromTag = os.urandom(8).hex()
        self.cseq = 0
        self.state = UNREGISTERED
        self.lastError = None
        self.failures = 0
        self.expiresAt = None
        self._running = False
        self._inflight = None
        self._resubmissions = 0
        self._intervalRetries = 0
        self._timer = None  # the refresh or retry DelayedCall
        self._retryAt = None
        self._keepAlive = None
        self._stopping = None

    # -- public ----------------------------------------------------------------

    def start(self):
        """
        Register now (no effect if already running).
        """
        if self._running:
            return
        self._running = True
        self.expires = self.configuredExpires
        self._setState(REGISTERING)
        self._newAttempt()

    def stop(self):
        """
        Stop refreshing and remove the binding: a REGISTER with C{Expires: 0}
        (answering a challenge once) if we hold or may hold one.

        @return: a L{Deferred} firing with C{None} when the unregistration
            is over (also when it failed: the failure is logged and kept in
            C{lastError}); never fails.
        """
        if self._stopping is not None:
            return self._whenStopped()
        wasRunning = self._running
        self._running = False
        self._cancelTimer()
        self._stopKeepAlive()
        mayBeBound = self.state == REGISTERED or (
            self._inflight is not None and self._inflight.purpose == "register") or (
            self.expiresAt is not None and self.expiresAt > self._clock.seconds())
        self._inflight = None
        if not wasRunning or not mayBeBound:
            self.expiresAt = None
            self._setState(UNREGISTERED)
            return succeed(None)
        self._stopping = []
        self._startAttempt()
        self._send("unregister", 0)
        return self._whenStopped()

    def status(self):
        """
        The state for an HTTP status endpoint.

        @return: C{{"trunk": str, "state": str, "expires_in": int | None
            (seconds left of the binding), "last_error": str | None,
            "retry_in": int | None (seconds to the next attempt after a
            failure)}}.
        """
        now = self._clock.seconds()
        expiresIn = None
        if self.state == REGISTERED and self.expiresAt is not None:
            expiresIn = max(0, int(round(self.expiresAt - now)))
        retryIn = None
        if self.state == FAILED and self._retryAt is not None:
            retryIn = max(0, int(round(self._retryAt - now)))
        return {
            "trunk": self.name,
            "state": self.state,
            "expires_in": expiresIn,
            "last_error": self.lastError,
            "retry_in": retryIn,
        }

    def refreshDelay(self, granted):
        """
        @param granted: the seconds the registrar granted.
        @return: seconds until the refresh: C{max(granted / 2, granted -
            refreshMargin)}.
        """
        return max(granted / 2.0, granted - self.refreshMargin)

    def retryDelay(self, failures, retryAfter=None):
        """
        @param failures: consecutive failures so far (1 for the first).
        @param retryAfter: a C{Retry-After} in seconds, or C{None}.
        @return: seconds to wait: C{retryBase * 2 ** (failures - 1)} capped
            at C{retryMax}, or C{retryAfter} if longer (also capped).
        """
        delay = min(self.retryBase * (2 ** max(0, failures - 1)), self.retryMax)
        if retryAfter is not None:
            delay = min(max(delay, retryAfter), max(self.retryMax, delay))
        return delay

    def destination(self):
        """
        The next hop (RFC 3261 §8.1.2, without RFC 3263 DNS): the outbound
        proxy if any, else the registrar; its C{maddr}, C{transport}
        parameter and port are honoured.

        @return: a L{linkrtc.sip.transport.Address}.
        """
        from linkrtc.sip.transport import Address

        uri = self.outboundProxy or self.registrar
        params = getattr(uri, "params", None) or {}
        transport = params.get("transport")
        if transport:
            transport = transport.upper()
        elif getattr(uri, "scheme", "sip") == "sips":
            transport = "TLS"
        else:
            transport = self.transport
        host = params.get("maddr") or uri.host
        port = uri.port or _DEFAULT_PORTS.get(transport, 5060)
        return Address(transport, host, port)

    def contactURI(self):
        """
        @return: our Contact L{SIPURI}: the one given, else the transport
            layer's address for our transport with the AOR's user part.
        """
        contact = self._contact
        if contact is None:
            return self._transportLayer.localContactURI(self.destination().transport,
                                                        user=self.aor.user)
        if isinstance(contact, NameAddr):
            return contact.uri
        if isinstance(contact, str):
            contact = contact.strip()
            if contact.startswith("<") or '"' in contact:
                return parseNameAddr(contact).uri
            return parseURI(contact)
        return contact

    # -- building requests -------------------------------------------------------

    def _requestURI(self):
        uri = self.registrar
        if isinstance(uri, SIPURI):
            return SIPURI(uri.scheme, None, None, uri.host, uri.port, dict(uri.params))
        return uri

    def _baseHeaders(self, method, cseq, callId, fromTag, to):
        headers = Headers()
        headers.add("Max-Forwards", "70")
        if self.outboundProxy is not None:
            route = self.outboundProxy.copy() if isinstance(self.outboundProxy, SIPURI) \
                else self.outboundProxy
            if isinstance(route, SIPURI):
                route.params.setdefault("lr", None)
            headers.add("Route", "<%s>" % (route,))
        headers.add("From", "<%s>;tag=%s" % (self.aor, fromTag))
        headers.add("To", "<%s>" % (to,))
        headers.add("Call-ID", callId)
        headers.add("CSeq", "%d %s" % (cseq, method))
        headers.add("User-Agent", self.userAgent)
        return headers

    def buildRegister(self, expires):
        """
        A new REGISTER (RFC 3261 §10.2) with the next CSeq, no Via (the
        transaction layer adds one with a fresh branch), and credentials
        for every realm already challenged.

        @param expires: seconds asked for (0 removes the binding).
        @return: a L{Request}.
        """
        self.cseq += 1
        headers = self._baseHeaders("REGISTER", self.cseq, self.callId, self.fromTag, self.aor)
        headers.add("Contact", "<%s>" % (self.contactURI(),))
        headers.add("Expires", str(int(expires)))
        request = Request("REGISTER", self._requestURI(), headers)
        if self._auth is not None:
            self._auth.authorize(request)
        return request

    # -- the state machine -------------------------------------------------------

    def _setState(self, state, error=None):
        old = self.state
        self.state = state
        if old == state and error is None:
            return
        emit = log.warn if state == FAILED else log.info
        emit(
            "SIP registration {trunk}: {oldState} -> {newState}{detail}",
            trunk=self.name,
            oldState=old,
            newState=state,
            error=error,
            detail="" if error is None else " (%s)" % (error,),
            registrar=str(self.registrar),
        )

    def _startAttempt(self):
        self._resubmissions = 0
        self._intervalRetries = 0
        if self._auth is not None:
            self._auth.startAttempt()

    def _newAttempt(self):
        self._cancelTimer()
        self._startAttempt()
        self._send("register", self.expires)

    def _send(self, purpose, expires):
        try:
            request = self.buildRegister(expires)
            destination = self.destination()
        except Exception as e:
            log.failure("SIP registration {trunk}: cannot build REGISTER", trunk=self.name)
            self._inflight = None
            self._attemptFailed("cannot build REGISTER: %s" % (e,), purpose=purpose)
            return
        listener = _Listener(self, purpose, expires)
        self._inflight = listener
        log.debug("SIP registration {trunk}: REGISTER CSeq {cseq} Expires {expires} to "
                  "{destination}", trunk=self.name, cseq=self.cseq, expires=expires,
                  destination=str(destination))
        try:
            self._layer.sendRequest(request, destination, listener)
        except Exception as e:
            if self._inflight is listener:
                self._inflight = None
                self._attemptFailed("cannot send REGISTER: %s" % (e,), purpose=purpose)

    def _resubmit(self, listener, expires):
        self._resubmissions += 1
        if self._resubmissions > MAX_RESUBMISSIONS:
            self._attemptFailed("too many re-submissions", purpose=listener.purpose)
            return
        self._send(listener.purpose, expires)

    def _responseReceived(self, listener, response):
        if listener.purpose == "keepalive":
            log.debug("SIP registration {trunk}: keep-alive answered {status}",
                      trunk=self.name, status=response.status)
            return
        if listener is not self._inflight or response.status < 200:
            return
        self._inflight = None
        status = response.status
        if 200 <= status < 300:
            if listener.purpose == "unregister":
                self._unregistered(None)
            else:
                self._registered(response, listener.expires)
            return
        if status in (401, 407):
            if self._auth is None:
                self._attemptFailed("%d %s: no credentials configured" % (status, response.reason),
                                    purpose=listener.purpose)
                return
            try:
                self._auth.answer(response)
            except DigestAuthError as e:
                # One clear error; the cached challenges are dropped so the
                # next attempt (after the back-off) starts afresh.
                self._auth.forget()
                self._attemptFailed("authentication failed: %s" % (e.reason,),
                                    purpose=listener.purpose)
                return
            self._resubmit(listener, listener.expires)
            return
        if status == 423 and listener.purpose == "register":
            minExpires = _intHeader(response, "Min-Expires")
            if (minExpires is None or minExpires <= listener.expires
                    or self._intervalRetries >= MAX_INTERVAL_RETRIES):
                self._attemptFailed("423 Interval Too Brief (Min-Expires %s)" % (minExpires,),
                                    purpose=listener.purpose)
                return
            self._intervalRetries += 1
            log.info("SIP registration {trunk}: 423, asking {minExpires} s", trunk=self.name,
                     minExpires=minExpires)
            self.expires = minExpires
            self._resubmit(listener, minExpires)
            return
        retryAfter = _intHeader(response, "Retry-After")
        self._attemptFailed("%d %s" % (status, response.reason), retryAfter=retryAfter,
                            purpose=listener.purpose)

    def _transactionFailed(self, listener, error):
        if listener.purpose == "keepalive":
            log.info("SIP registration {trunk}: keep-alive OPTIONS failed: {error}",
                     trunk=self.name, error=error)
            return
        if listener is not self._inflight:
            return
        self._inflight = None
        self._attemptFailed(error, purpose=listener.purpose)

    def _grantedExpires(self, response, asked):
        """The binding's lifetime from a 2xx (RFC 3261 §10.2.4), seconds."""
        ours = None
        try:
            contactURI = self.contactURI()
            contacts = [c for c in response.contacts if not c.isWildcard]
        except Exception:
            contacts = []
            contactURI = None
        for c in contacts:
            if c.uri == contactURI:
                ours = c
                break
        if ours is None and len(contacts) == 1:
            ours = contacts[0]
        if ours is not None:
            value = (ours.params.get("expires") or "").strip('"')
            if value.isdigit():
                return int(value)
        header = _intHeader(response, "Expires")
        if header is not None:
            return header
        return asked

    def _registered(self, response, asked):
        granted = self._grantedExpires(response, asked)
        if granted <= 0:
            self._attemptFailed("the registrar granted no binding (expires 0)")
            return
        now = self._clock.seconds()
        self.expiresAt = now + granted
        self.failures = 0
        self.lastError = None
        self._retryAt = None
        delay = self.refreshDelay(granted)
        self._setState(REGISTERED)
        log.info("SIP registration {trunk}: bound for {granted} s, refresh in {delay} s",
                 trunk=self.name, granted=granted, delay=delay)
        self._cancelTimer()
        self._timer = self._clock.callLater(delay, self._refresh)
        self._startKeepAlive()

    def _refresh(self):
        self._timer = None
        if not self._running or self._inflight is not None:
            return
        self._newAttempt()

    def _retry(self):
        self._timer = None
        self._retryAt = None
        if not self._running:
            return
        self._setState(REGISTERING)
        self._newAttempt()

    def _attemptFailed(self, error, retryAfter=None, purpose="register"):
        if purpose == "unregister":
            self._unregistered(error)
            return
        self.lastError = error
        self.failures += 1
        self._stopKeepAlive()
        if self.expiresAt is not None and self.expiresAt <= self._clock.seconds():
            self.expiresAt = None
        self._setState(FAILED, error)
        if not self._running:
            return
        delay = self.retryDelay(self.failures, retryAfter)
        log.info("SIP registration {trunk}: retry in {delay} s (failure {failures})",
                 trunk=self.name, delay=delay, failures=self.failures)
        self._cancelTimer()
        self._retryAt = self._clock.seconds() + delay
        self._timer = self._clock.callLater(delay, self._retry)

    def _unregistered(self, error):
        if error is not None:
            self.lastError = "unregistration failed: %s" % (error,)
            log.warn("SIP registration {trunk}: unregistration failed: {error}",
                     trunk=self.name, error=error)
        self.expiresAt = None
        self._setState(UNREGISTERED)
        waiters, self._stopping = self._stopping or [], None
        for d in waiters:
            d.callback(None)

    def _whenStopped(self):
        d = Deferred()
        self._stopping.append(d)
        return d

    def _cancelTimer(self):
        if self._timer is not None and self._timer.active():
            self._timer.cancel()
        self._timer = None

    # -- keep-alive ------------------------------------------------------------------

    def _startKeepAlive(self):
        if not self.keepAliveInterval or self._keepAlive is not None:
            return
        loop = LoopingCall(self._sendKeepAlive)
        loop.clock = self._clock
        self._keepAlive = loop
        d = loop.start(self.keepAliveInterval, now=False)
        d.addErrback(lambda f: log.failure("SIP registration keep-alive stopped", f))

    def _stopKeepAlive(self):
        loop, self._keepAlive = self._keepAlive, None
        if loop is not None and loop.running:
            loop.stop()

    def _sendKeepAlive(self):
        """One keep-alive: CRLFCRLF on a stream, OPTIONS on UDP. Never raises."""
        try:
            destination = self.destination()
            if destination.transport == "UDP":
                self._sendOptions(destination)
                return
            connectionTo = getattr(self._transportLayer, "connectionTo", None)
            conn = connectionTo(destination) if connectionTo is not None else None
            if conn is not None:
                conn.send(b"\r\n\r\n")
                return
            log.info("SIP registration {trunk}: no connection to {destination}; refreshing",
                     trunk=self.name, destination=str(destination))
            if self._running and self._inflight is None:
                self._newAttempt()
        except Exception:
            log.failure("SIP registration {trunk}: keep-alive failed", trunk=self.name)

    def _sendOptions(self, destination):
        headers = self._baseHeaders("OPTIONS", 1, "%s@linkrtc" % (os.urandom(12).hex(),),
                                    os.urandom(8).hex(), self._requestURI())
        request = Request("OPTIONS", self._requestURI(), headers)
        self._layer.sendRequest(request, destination, _Listener(self, "keepalive", None))
