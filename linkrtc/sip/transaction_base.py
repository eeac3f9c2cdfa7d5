# -*- test-case-name: linkrtc.sip.test.test_transaction -*-
"""
What the SIP transaction layer's parts share (RFC 3261 §17): the state
names, the layer's neighbours (L{ITransactionTransport},
L{ITransactionUser}, L{IClientTransactionListener}), branch and ACK/CANCEL
helpers (§8.1.1.7, §17.1.1.3, §9.1) and the base of the four state
machines (state, timers, sending, termination).
"""

import os

from twisted.internet.defer import Deferred
from twisted.logger import Logger
from twisted.python.failure import Failure
from zope.interface import Interface

from linkrtc.logging import debugEnabled
from linkrtc.sip.message import Headers, Request

log = Logger()

MAGIC_COOKIE = "z9hG4bK"

CALLING = "calling"
TRYING = "trying"
PROCEEDING = "proceeding"
COMPLETED = "completed"
CONFIRMED = "confirmed"
ACCEPTED = "accepted"
TERMINATED = "terminated"


# --------------------------------------------------------------------------
# The layer's neighbours.
# --------------------------------------------------------------------------


class ITransactionTransport(Interface):
    """What the transaction layer needs of the transport layer (§18)."""

    def sendRequest(request, destination):
        """
        Send C{request} to C{destination} (an C{Address}).

        @return: C{None} or a L{Deferred}; raising, or a Deferred that
            fails, means the send failed (§17.1.4).
        """

    def sendResponse(response, source):
        """
        Send C{response} back towards C{source}, the address (and
        connection) its request came from (§18.2.2).

        @return: C{None} or a L{Deferred}; failure as for C{sendRequest}.
        """

    def isReliable(address):
        """@return: C{True} for TCP/TLS (no retransmissions), C{False} for UDP."""


class ITransactionUser(Interface):
    """
    The TU (the UA core) as the transaction layer sees it.

    The two last methods are optional: the layer calls them only if the TU
    has them.
    """

    def requestReceived(request, serverTransaction):
        """
        A request that matches no transaction arrived and a new server
        transaction was made for it; answer with C{serverTransaction.respond}.
        ACKs never get a transaction: an ACK matching none (the ACK for a
        2xx) and an ACK absorbed by an INVITE server transaction in the
        RFC 6026 Accepted state come as C{requestReceived(ack, None)}.
        """

    def responseReceived(response):
        """
        A response matching no client transaction (§18.1.2): mostly 2xx
        retransmissions after the INVITE client transaction ended.
        """

    def transactionTimedOut(serverTransaction):
        """
        Optional. Timer H fired: no ACK for our 3xx-6xx (§17.2.1).
        """

    def transportFailed(serverTransaction, reason):
        """
        Optional. A response could not be sent (§17.2.4); the server
        transaction is terminated. C{reason} is a L{Failure}.
        """


class IClientTransactionListener(Interface):
    """Who hears a client transaction's outcome (given to C{sendRequest})."""

    def responseReceived(response, transaction):
        """
        A response for the transaction: every 1xx, the final response, and
        (INVITE, RFC 6026 Accepted state) every 2xx including retransmissions
        and other forks' 2xx. Retransmitted 3xx-6xx are absorbed.
        """

    def transactionTimedOut(transaction):
        """Timer B (INVITE, still Calling) or F (non-INVITE) fired: act as on a 408."""

    def transportFailed(transaction, reason):
        """The request (or the ACK of a 3xx-6xx) could not be sent; C{reason} is a L{Failure}."""


# --------------------------------------------------------------------------
# Helpers.
# --------------------------------------------------------------------------


def newBranch():
    """
    @return: a fresh RFC 3261 branch (C{str}): the magic cookie and 16 hex digits.
    """
    return MAGIC_COOKIE + os.urandom(8).hex()


def hasMagicCookie(branch):
    """
    @return: C{True} if C{branch} starts with C{z9hG4bK} and has more after it
        (a bare C{z9hG4bK} -- RFC 4475 "badbranch" -- counts as RFC 2543).
    """
    return bool(branch) and branch.startswith(MAGIC_COOKIE) and len(branch) > len(MAGIC_COOKIE)


def _copyForSameTransaction(request):
    """Headers shared by an ACK (§17.1.1.3) and a CANCEL (§9.1) for C{request}."""
    headers = Headers()
    vias = request.headers.getAll("Via")
    headers.add("Via", vias[0])
    headers.add("Max-Forwards", "70")
    for route in request.headers.getAll("Route"):
        headers.add("Route", route)
    headers.add("From", request.headers.get("From"))
    return headers


def buildAck(request, response):
    """
    The ACK for a 3xx-6xx final response to an INVITE (RFC 3261 §17.1.1.3).

    @param request: the INVITE (L{linkrtc.sip.message.Request}) as sent.
    @param response: the non-2xx final L{linkrtc.sip.message.Response}.
    @return: a new ACK L{Request}: the INVITE's Request-URI, its top Via only
        (same branch), Route headers, From and Call-ID, the response's To
        (with its tag) and C{CSeq: <number> ACK}; Max-Forwards 70, no body.
    """
    headers = _copyForSameTransaction(request)
    headers.add("To", response.headers.get("To"))
    headers.add("Call-ID", request.headers.get("Call-ID"))
    headers.add("CSeq", "%d ACK" % (request.cseq.number,))
    return Request("ACK", request.uri, headers)


def buildCancel(request):
    """
    The CANCEL for a pending INVITE (RFC 3261 §9.1).

    @param request: the INVITE (L{linkrtc.sip.message.Request}) as sent.
    @return: a new CANCEL L{Request}: same Request-URI, top Via (branch),
        Route, From, To, Call-ID and CSeq number, method CANCEL. Send it with
        L{TransactionLayer.sendRequest} to the INVITE's destination.
    """
    headers = _copyForSameTransaction(request)
    headers.add("To", request.headers.get("To"))
    headers.add("Call-ID", request.headers.get("Call-ID"))
    headers.add("CSeq", "%d CANCEL" % (request.cseq.number,))
    return Request("CANCEL", request.uri, headers)


def _viaIdentity(via):
    """The parts of a Via compared by the RFC 2543 rules (not received/rport)."""
    return (
        (via.protocol or "").upper(),
        (via.transport or "").upper(),
        (via.host or "").lower(),
        via.port,
        via.branch,
    )


def _tagOf(nameAddr):
    return None if nameAddr is None else nameAddr.tag


def _callSafely(what, fn, *args):
    """Call a TU/listener callback; its exceptions are logged, never raised into us."""
    try:
        fn(*args)
    except Exception:
        log.failure("{what} raised", what=what)


# --------------------------------------------------------------------------
# The state machines.
# --------------------------------------------------------------------------


class _Transaction:
    """
    What the four state machines share: state, timers, sending, termination.

    @ivar request: the request that created the transaction.
    @ivar state: one of the state names of this module (C{str}).
    @ivar reliable: C{True} if the transport is reliable (no retransmission).
    @ivar branch: the top Via branch of C{request} (C{str} or C{None}).
    @ivar lastResponse: the latest response sent or received, or C{None}.
    @ivar onTerminated: a C{list} of callables; each is called with the
        transaction when it terminates (in order, once).
    @ivar terminationReason: C{None} for a normal end, C{"timeout"}, or
        C{"transport"}.
    """

    kind = "transaction"

    def __init__(self, layer, request, reliable):
        self._layer = layer
        self.request = request
        self.reliable = reliable
        self.state = None
        self.lastResponse = None
        self.onTerminated = []
        self.terminationReason = None
        self._timers = {}
        self._waiters = []
        via = request.topVia
        self.branch = via.branch if via is not None else None

    def __repr__(self):
        return "<%s %s %s %s>" % (
            type(self).__name__,
            self.request.method,
            self.branch,
            self.state,
        )

    @property
    def timers(self):
        """The L{TimerConfig} in use."""
        return self._layer.timers

    def whenTerminated(self):
        """
        @return: a L{Deferred} that fires with this transaction once it is
            terminated (at once if it already is).
        """
        d = Deferred()
        if self.state == TERMINATED:
            d.callback(self)
        else:
            self._waiters.append(d)
        return d

    # -- state and timers --------------------------------------------------

    def _setState(self, state):
        old, self.state = self.state, state
        if debugEnabled():
            log.debug(
                "SIP {kind} transaction {branch} {method}: {oldState} -> {newState}",
                kind=self.kind,
                branch=self.branch,
                method=self.request.method,
                oldState=old,
                newState=state,
            )

    def _startTimer(self, name, delay, fn, *args):
        """Run C{fn(*args)} after C{delay} seconds, as timer C{name}."""
        self._cancelTimer(name)
        self._timers[name] = self._layer.clock.callLater(delay, self._timerFired, name, fn, *args)

    def _startOrFire(self, name, delay, fn):
        """As L{_startTimer}, but a delay of 0 (reliable transports) runs C{fn} now."""
        if delay <= 0:
            fn()
        else:
            self._startTimer(name, delay, fn)

    def _timerFired(self, name, fn, *args):
        self._timers.pop(name, None)
        if debugEnabled():
            log.debug(
                "SIP {kind} transaction {branch}: Timer {timer} fired in {state}",
                kind=self.kind,
                branch=self.branch,
                timer=name,
                state=self.state,
            )
        fn(*args)

    def _cancelTimer(self, name):
        call = self._timers.pop(name, None)
        if call is not None and call.active():
            call.cancel()

    # -- sending -----------------------------------------------------------

    def _send(self, message):
        """Hand C{message} to the transport; subclasses know which way."""
        raise NotImplementedError()

    def _transmit(self, message):
        """
        Send C{message}; a synchronous or asynchronous failure ends the
        transaction (§17.1.4, §17.2.4).

        @return: C{False} if the transaction has terminated because of it.
        """
        try:
            result = self._send(message)
        except Exception:
            self._transportFailed(Failure())
            return False
        # (fast path: a send that already succeeded, as a UDP datagram has,
        # needs no errback; one pending or failed gets it)
        if isinstance(result, Deferred) and not (result.called and result.result is None):
            result.addErrback(self._transportFailed)
        return self.state != TERMINATED

    def _transportFailed(self, reason):
        if self.state == TERMINATED:
            log.info(
                "SIP {kind} transaction {branch}: late send failure ignored: {reason}",
                kind=self.kind,
                branch=self.branch,
                reason=reason.getErrorMessage(),
            )
            return None
        log.warn(
            "SIP {kind} transaction {branch} {method}: transport failed: {reason}",
            kind=self.kind,
            branch=self.branch,
            method=self.request.method,
            reason=reason.getErrorMessage(),
        )
        self._terminate("transport")
        self._notifyTransportFailed(reason)
        return None

    def _notifyTransportFailed(self, reason):
        raise NotImplementedError()

    # -- the end ---------------------------------------------------------------

    def _terminate(self, reason=None):
        """Go to Terminated: stop every timer, leave the layer's tables, run callbacks."""
        if self.state == TERMINATED:
            return
        for name in list(self._timers):
            self._cancelTimer(name)
        self.terminationReason = reason
        self._setState(TERMINATED)
        self._layer._forget(self)
        callbacks, self.onTerminated = self.onTerminated, []
        for fn in callbacks:
            _callSafely("onTerminated callback", fn, self)
        waiters, self._waiters = self._waiters, []
        for d in waiters:
            d.callback(self)

