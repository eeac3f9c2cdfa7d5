# -*- test-case-name: linkrtc.sip.test.test_transaction -*-
"""
The SIP transaction layer: RFC 3261 §17, with RFC 6026 for 2xx to INVITE.

Four state machines live here, one per kind of transaction:

    - L{InviteClientTransaction} (§17.1.1, RFC 6026 §8.4): Calling,
      Proceeding, Completed, Accepted, Terminated.
    - L{NonInviteClientTransaction} (§17.1.2): Trying, Proceeding,
      Completed, Terminated.
    - L{InviteServerTransaction} (§17.2.1, RFC 6026 §8.7): Proceeding,
      Completed, Confirmed, Accepted, Terminated.
    - L{NonInviteServerTransaction} (§17.2.2): Trying, Proceeding,
      Completed, Terminated.

L{TransactionLayer} owns them: it matches inbound messages to transactions
(§17.1.3, §17.2.3, with the RFC 2543 fallback), creates server transactions
for new requests and hands them to the transaction user (TU, the UA core),
and forgets every transaction when it terminates.

Each state machine dispatches on its state through a dict of per-state
handlers (pjsip's shape). Times come from an injected L{IReactorTime}; the
timer values from L{linkrtc.sip.timers.TimerConfig}. Retransmissions happen
only when C{transport.isReliable(address)} is false.

Requests whose top Via branch lacks the magic cookie C{z9hG4bK} -- and the
RFC 4475 "badbranch" case, a branch that is exactly C{z9hG4bK} -- are
matched with the RFC 2543 rules of §17.2.3 (last paragraphs): they are
not rejected, and nothing raises.
"""

import os

from twisted.internet.defer import Deferred
from twisted.logger import Logger
from twisted.python.failure import Failure
from zope.interface import Interface

from linkrtc.error import InvalidStateError, SIPParseError
from linkrtc.logging import debugEnabled
from linkrtc.sip.message import Headers, Request
from linkrtc.sip.timers import TimerConfig

__all__ = [
    "MAGIC_COOKIE",
    "CALLING",
    "TRYING",
    "PROCEEDING",
    "COMPLETED",
    "CONFIRMED",
    "ACCEPTED",
    "TERMINATED",
    "TimerConfig",
    "ITransactionUser",
    "IClientTransactionListener",
    "ITransactionTransport",
    "TransactionLayer",
    "ClientTransaction",
    "InviteClientTransaction",
    "NonInviteClientTransaction",
    "ServerTransaction",
    "InviteServerTransaction",
    "NonInviteServerTransaction",
    "newBranch",
    "hasMagicCookie",
    "buildAck",
    "buildCancel",
]

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
        if isinstance(result, Deferred):
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


class ClientTransaction(_Transaction):
    """
    A client transaction (§17.1). Made by L{TransactionLayer.sendRequest}.

    @ivar destination: where the request (and the ACK of a 3xx-6xx) goes.
    @ivar listener: the L{IClientTransactionListener}.
    """

    kind = "client"

    def __init__(self, layer, request, destination, listener, reliable):
        super().__init__(layer, request, reliable)
        self.destination = destination
        self.listener = listener

    def _send(self, message):
        return self._layer.transport.sendRequest(message, self.destination)

    def _notifyTransportFailed(self, reason):
        _callSafely("transportFailed", self.listener.transportFailed, self, reason)

    def _timedOut(self):
        log.info(
            "SIP client transaction {branch} {method} timed out in {state}",
            branch=self.branch,
            method=self.request.method,
            state=self.state,
        )
        self._terminate("timeout")
        _callSafely("transactionTimedOut", self.listener.transactionTimedOut, self)

    def _passUp(self, response):
        self.lastResponse = response
        _callSafely("responseReceived", self.listener.responseReceived, response, self)

    def _responseReceived(self, response):
        handler = self._responseHandlers.get(self.state)
        if handler is None:
            if debugEnabled():
                log.debug(
                    "SIP client transaction {branch}: {status} dropped in {state}",
                    branch=self.branch,
                    status=response.status,
                    state=self.state,
                )
            return
        handler(self, response)

    _responseHandlers = {}


class InviteClientTransaction(ClientTransaction):
    """
    The INVITE client transaction (RFC 3261 §17.1.1, Figure 5 as amended by
    RFC 6026 §8.4).

    Calling: the INVITE is retransmitted on Timer A (T1, doubling, unreliable
    transports only) until a response, or Timer B (64*T1) times out.
    1xx -> Proceeding. 3xx-6xx -> Completed: the ACK is sent (and sent again
    for each retransmitted final response) for Timer D. 2xx -> Accepted:
    every 2xx is passed up for Timer M (64*T1); the TU sends the ACK.
    """

    kind = "INVITE client"
    _ack = None

    def _start(self):
        self._setState(CALLING)
        if not self._transmit(self.request):
            return
        if not self.reliable:
            self._startTimer("A", self.timers.A, self._timerA, self.timers.A)
        self._startTimer("B", self.timers.B, self._timerB)

    def createCancel(self):
        """@return: the CANCEL for this INVITE (§9.1); see L{buildCancel}."""
        return buildCancel(self.request)

    def _timerA(self, interval):
        if self.state != CALLING:
            return
        if not self._transmit(self.request):
            return
        interval = self.timers.nextInterval(interval, capped=False)
        self._startTimer("A", interval, self._timerA, interval)

    def _timerB(self):
        if self.state == CALLING:
            self._timedOut()

    def _timerD(self):
        self._terminate()

    def _timerM(self):
        self._terminate()

    def _pending(self, response):
        """A response in Calling or Proceeding."""
        status = response.status
        self._cancelTimer("A")
        self._cancelTimer("B")
        if status < 200:
            self._setState(PROCEEDING)
            self._passUp(response)
        elif status < 300:
            self._setState(ACCEPTED)
            self._passUp(response)
            if self.state == ACCEPTED:
                self._startTimer("M", self.timers.M, self._timerM)
        else:
            self._setState(COMPLETED)
            self._ack = buildAck(self.request, response)
            self._passUp(response)
            if self.state == COMPLETED and self._transmit(self._ack):
                self._startOrFire("D", self.timers.D(self.reliable), self._timerD)

    def _completed(self, response):
        if response.status >= 300:
            # A retransmission of the final response: ACK again, absorb.
            self._transmit(self._ack)

    def _accepted(self, response):
        if 200 <= response.status < 300:
            self._passUp(response)

    _responseHandlers = {
        CALLING: _pending,
        PROCEEDING: _pending,
        COMPLETED: _completed,
        ACCEPTED: _accepted,
    }


class NonInviteClientTransaction(ClientTransaction):
    """
    The non-INVITE client transaction (RFC 3261 §17.1.2, Figure 6).

    Trying/Proceeding: the request is retransmitted on Timer E (T1, doubling,
    capped at T2; always T2 once Proceeding; unreliable only) until a final
    response, or Timer F (64*T1) times out. A final response -> Completed,
    which absorbs retransmissions for Timer K (T4, 0 when reliable).
    """

    kind = "non-INVITE client"

    def _start(self):
        self._setState(TRYING)
        if not self._transmit(self.request):
            return
        if not self.reliable:
            self._startTimer("E", self.timers.E, self._timerE, self.timers.E)
        self._startTimer("F", self.timers.F, self._timerF)

    def _timerE(self, interval):
        if self.state not in (TRYING, PROCEEDING):
            return
        if not self._transmit(self.request):
            return
        if self.state == PROCEEDING:
            interval = self.timers.T2
        else:
            interval = self.timers.nextInterval(interval)
        self._startTimer("E", interval, self._timerE, interval)

    def _timerF(self):
        if self.state in (TRYING, PROCEEDING):
            self._timedOut()

    def _timerK(self):
        self._terminate()

    def _pending(self, response):
        if response.status < 200:
            self._setState(PROCEEDING)
            self._passUp(response)
            return
        self._cancelTimer("E")
        self._cancelTimer("F")
        self._setState(COMPLETED)
        self._passUp(response)
        if self.state == COMPLETED:
            self._startOrFire("K", self.timers.K(self.reliable), self._timerK)

    def _completed(self, response):
        pass  # absorbed

    _responseHandlers = {
        TRYING: _pending,
        PROCEEDING: _pending,
        COMPLETED: _completed,
    }


class ServerTransaction(_Transaction):
    """
    A server transaction (§17.2). Made by the layer for each new request and
    handed to C{tu.requestReceived(request, tx)}.

    @ivar source: where the request came from; responses go back there.
    """

    kind = "server"

    def __init__(self, layer, request, source, reliable):
        super().__init__(layer, request, reliable)
        self.source = source

    def _send(self, message):
        return self._layer.transport.sendResponse(message, self.source)

    def _notifyTransportFailed(self, reason):
        notify = getattr(self._layer.tu, "transportFailed", None)
        if notify is not None:
            _callSafely("transportFailed", notify, self, reason)

    def _start(self):
        raise NotImplementedError()

    def _delivered(self):
        """Called once the TU has been handed the request."""

    def respond(self, response):
        """
        Send C{response} (a L{linkrtc.sip.message.Response}) on this
        transaction, moving it on per its state machine.

        @raise InvalidStateError: if the state takes no such response (a
            second final response, a response after Terminated, a 1xx after
            a 2xx).
        @raise ValueError: if the status is not 100..699.
        """
        status = response.status
        if not 100 <= status <= 699:
            raise ValueError("bad status %r" % (status,))
        handler = self._respondHandlers.get(self.state)
        if handler is None or not handler(self, response):
            raise InvalidStateError(
                "cannot send %d on %s transaction in state %s" % (status, self.kind, self.state)
            )

    def _resendLast(self, request=None):
        if self.lastResponse is not None:
            self._transmit(self.lastResponse)

    def _retransmissionReceived(self, request):
        handler = self._retransmissionHandlers.get(self.state)
        if handler is not None:
            handler(self, request)

    _respondHandlers = {}
    _retransmissionHandlers = {}


class InviteServerTransaction(ServerTransaction):
    """
    The INVITE server transaction (RFC 3261 §17.2.1, Figure 7 as amended by
    RFC 6026 §8.7).

    Proceeding: 1xx from the TU are sent; an INVITE retransmission gets the
    latest 1xx again; C{100 Trying} is sent if the TU sends no 1xx within
    C{TimerConfig.tryingDelay}. A 3xx-6xx -> Completed: retransmitted on
    Timer G (T1 doubling, capped at T2, unreliable only) until an ACK
    (-> Confirmed, Timer I) or Timer H (64*T1; the TU's optional
    C{transactionTimedOut} is called). A 2xx -> Accepted for Timer L
    (64*T1): more 2xx from the TU (its §13.3.1.4 retransmissions) are sent,
    INVITE retransmissions are absorbed, ACKs go to the TU.
    """

    kind = "INVITE server"

    def _start(self):
        self._setState(PROCEEDING)
        delay = self.timers.tryingDelay
        if delay is not None and delay <= 0:
            self._sendTrying()

    def _delivered(self):
        # The TU has seen the INVITE: start the Trying timer unless it has
        # answered already (most do at once; this spares a timer per call).
        delay = self.timers.tryingDelay
        if (delay is not None and delay > 0 and self.state == PROCEEDING
                and self.lastResponse is None):
            self._startTimer("Trying", delay, self._sendTrying)

    def _sendTrying(self):
        if self.state == PROCEEDING and self.lastResponse is None:
            self._respondProceeding(self.request.createResponse(100))

    def _respondProceeding(self, response):
        status = response.status
        self._cancelTimer("Trying")
        self.lastResponse = response
        if status < 200:
            self._transmit(response)
        elif status < 300:
            self._setState(ACCEPTED)
            if self._transmit(response):
                self._startTimer("L", self.timers.L, self._terminate)
        else:
            self._setState(COMPLETED)
            if self._transmit(response):
                if not self.reliable:
                    self._startTimer("G", self.timers.G, self._timerG, self.timers.G)
                self._startTimer("H", self.timers.H, self._timerH)
        return True

    def _respondAccepted(self, response):
        if not 200 <= response.status < 300:
            return False
        self.lastResponse = response
        self._transmit(response)
        return True

    def _timerG(self, interval):
        if self.state != COMPLETED:
            return
        if not self._transmit(self.lastResponse):
            return
        interval = self.timers.nextInterval(interval)
        self._startTimer("G", interval, self._timerG, interval)

    def _timerH(self):
        if self.state != COMPLETED:
            return
        log.info(
            "SIP INVITE server transaction {branch}: no ACK for {status} (Timer H)",
            branch=self.branch,
            status=self.lastResponse.status,
        )
        self._terminate("timeout")
        notify = getattr(self._layer.tu, "transactionTimedOut", None)
        if notify is not None:
            _callSafely("transactionTimedOut", notify, self)

    def _ackReceived(self, ack):
        if self.state == COMPLETED:
            self._cancelTimer("G")
            self._cancelTimer("H")
            self._setState(CONFIRMED)
            self._startOrFire("I", self.timers.I(self.reliable), self._terminate)
        elif self.state == ACCEPTED:
            # RFC 6026 §8.7: the ACK for a 2xx goes to the TU.
            self._layer._deliverRequest(ack, None)
        # Confirmed: absorbed. Proceeding: an ACK before any final; dropped.

    _respondHandlers = {
        PROCEEDING: _respondProceeding,
        ACCEPTED: _respondAccepted,
    }
    _retransmissionHandlers = {
        PROCEEDING: ServerTransaction._resendLast,
        COMPLETED: ServerTransaction._resendLast,
        # CONFIRMED, ACCEPTED: absorbed.
    }


class NonInviteServerTransaction(ServerTransaction):
    """
    The non-INVITE server transaction (RFC 3261 §17.2.2, Figure 8).

    Trying: retransmissions are absorbed. A 1xx -> Proceeding (retransmissions
    get it again). A final response -> Completed: retransmissions get it
    again for Timer J (64*T1, 0 when reliable).
    """

    kind = "non-INVITE server"

    def _start(self):
        self._setState(TRYING)

    def _respondPending(self, response):
        self.lastResponse = response
        if response.status < 200:
            self._setState(PROCEEDING)
            self._transmit(response)
        else:
            self._setState(COMPLETED)
            if self._transmit(response):
                self._startOrFire("J", self.timers.J(self.reliable), self._terminate)
        return True

    _respondHandlers = {
        TRYING: _respondPending,
        PROCEEDING: _respondPending,
    }
    _retransmissionHandlers = {
        PROCEEDING: ServerTransaction._resendLast,
        COMPLETED: ServerTransaction._resendLast,
    }


# --------------------------------------------------------------------------
# The layer.
# --------------------------------------------------------------------------


class TransactionLayer:
    """
    Holds every live transaction; matches messages to them.

    @ivar transport: an L{ITransactionTransport}.
    @ivar clock: an L{IReactorTime}.
    @ivar tu: an L{ITransactionUser}.
    @ivar timers: the L{TimerConfig}.
    """

    def __init__(self, transport, clock, tu, timers=None):
        self.transport = transport
        self.clock = clock
        self.tu = tu
        self.timers = timers if timers is not None else TimerConfig()
        # RFC 3261 server transactions: (branch, sent-by host, port, method).
        self._servers = {}
        # RFC 2543 server transactions: (uri, from tag, call-id, cseq number,
        # top Via, method, to tag).
        self._servers2543 = {}
        # RFC 2543 INVITE transactions again, without the To tag, for ACKs.
        self._invites2543 = {}
        # Client transactions: (branch, method).
        self._clients = {}

    # -- inspection -------------------------------------------------------------

    def activeTransactions(self):
        """@return: a C{list} of every transaction not yet terminated."""
        seen = {}
        for table in (self._servers, self._servers2543, self._clients):
            for tx in table.values():
                seen[id(tx)] = tx
        return list(seen.values())

    def stop(self):
        """
        Terminate every transaction at once (shutdown), cancelling its timers.
        Listeners and the TU are not told; C{onTerminated} callbacks run.
        """
        for tx in self.activeTransactions():
            tx._terminate("stopped")

    # -- keys -------------------------------------------------------------------

    @staticmethod
    def _serverKey(request):
        """
        The server-transaction key of C{request} (§17.2.3); ACK maps to its
        INVITE. RFC 2543 keys (no magic cookie) start with C{"2543"} and
        lack the To tag.

        @raise SIPParseError: if the request lacks a Via or a header is bad.
        """
        via = request.topVia
        if via is None:
            raise SIPParseError("no Via")
        method = "INVITE" if request.method == "ACK" else request.method
        if hasMagicCookie(via.branch):
            return ("3261", via.branch, (via.host or "").lower(), via.port, method)
        return (
            "2543",
            str(request.uri),
            _tagOf(request.fromAddr),
            request.callId,
            request.cseq.number,
            _viaIdentity(via),
            method,
        )

    # -- inbound -------------------------------------------------------------------

    def requestReceived(self, request, source):
        """
        A request arrived from the transport (§17.2.3). Never raises.

        @param request: a L{linkrtc.sip.message.Request}.
        @param source: the address (and connection) it came from.
        """
        try:
            self._requestReceived(request, source)
        except SIPParseError as e:
            log.warn("SIP request dropped by the transaction layer: {reason}", reason=e.reason)
        except Exception:
            log.failure("SIP request handling failed")

    def _requestReceived(self, request, source):
        key = self._serverKey(request)
        if request.method == "ACK":
            tx = self._findInviteForAck(request, key)
            if tx is not None:
                tx._ackReceived(request)
            else:
                self._deliverRequest(request, None)
            return
        if key[0] == "2543":
            tx = self._servers2543.get(key + (_tagOf(request.toAddr),))
        else:
            tx = self._servers.get(key)
        if tx is not None:
            if debugEnabled():
                log.debug(
                    "SIP {method} retransmission for {tx}",
                    method=request.method,
                    tx=tx,
                )
            tx._retransmissionReceived(request)
            return
        self._newServerTransaction(request, source, key)

    def _findInviteForAck(self, ack, key):
        if key[0] != "2543":
            return self._servers.get(key)
        tx = self._invites2543.get(key)
        if tx is None or tx.lastResponse is None or tx.lastResponse.status < 200:
            return None
        if _tagOf(tx.lastResponse.toAddr) != _tagOf(ack.toAddr):
            return None
        return tx

    def _newServerTransaction(self, request, source, key):
        reliable = bool(self.transport.isReliable(source))
        if request.method == "INVITE":
            tx = InviteServerTransaction(self, request, source, reliable)
        else:
            tx = NonInviteServerTransaction(self, request, source, reliable)
        if key[0] == "2543":
            tx._keys = [(self._servers2543, key + (_tagOf(request.toAddr),))]
            if request.method == "INVITE":
                tx._keys.append((self._invites2543, key))
        else:
            tx._keys = [(self._servers, key)]
        for table, k in tx._keys:
            table[k] = tx
        tx._start()
        if tx.state != TERMINATED:
            self._deliverRequest(request, tx)
            tx._delivered()

    def _deliverRequest(self, request, tx):
        _callSafely("TU requestReceived", self.tu.requestReceived, request, tx)

    def responseReceived(self, response, source):
        """
        A response arrived from the transport (§17.1.3, §18.1.2). Never raises.
        One matching no client transaction goes to C{tu.responseReceived}.

        @param response: a L{linkrtc.sip.message.Response}.
        @param source: the address it came from (unused by matching).
        """
        try:
            via = response.topVia
            key = (via.branch if via is not None else None, response.cseq.method)
            tx = self._clients.get(key)
            if tx is None:
                if debugEnabled():
                    log.debug(
                        "SIP stray {status} {method} to the TU",
                        status=response.status,
                        method=response.cseq.method,
                    )
                _callSafely("TU responseReceived", self.tu.responseReceived, response)
                return
            tx._responseReceived(response)
        except SIPParseError as e:
            log.warn("SIP response dropped by the transaction layer: {reason}", reason=e.reason)
        except Exception:
            log.failure("SIP response handling failed")

    # -- outbound -----------------------------------------------------------------

    def sendRequest(self, request, destination, listener):
        """
        Start a client transaction for C{request} (§17.1) and send it.

        The request's top Via must be present; if its branch lacks the magic
        cookie, a fresh branch is put in. If the transport fails at once,
        C{listener.transportFailed} is called before this returns and the
        transaction returned is already terminated.

        @param request: a L{linkrtc.sip.message.Request}, not ACK (an ACK for
            a 2xx is sent by the TU straight to the transport, §13.2.2.4).
        @param destination: the address to send to (next hop, §8.1.2).
        @param listener: an L{IClientTransactionListener}.
        @return: the L{InviteClientTransaction} or L{NonInviteClientTransaction}.
        @raise ValueError: for ACK, a request without Via, or a branch and
            method already in use by a live client transaction.
        """
        if request.method == "ACK":
            raise ValueError("ACK has no client transaction; use sendAck")
        via = self._ensureVia(request, destination)
        if not hasMagicCookie(via.branch):
            _setTopBranch(request, newBranch())
            via = request.topVia
        key = (via.branch, request.method)
        if key in self._clients:
            raise ValueError("a client transaction %r already exists" % (key,))
        reliable = bool(self.transport.isReliable(destination))
        if request.method == "INVITE":
            tx = InviteClientTransaction(self, request, destination, listener, reliable)
        else:
            tx = NonInviteClientTransaction(self, request, destination, listener, reliable)
        tx._keys = [(self._clients, key)]
        self._clients[key] = tx
        tx._start()
        return tx

    def sendAck(self, ack, destination):
        """
        Send an ACK for a 2xx statelessly (RFC 3261 §13.2.2.4: it has no
        transaction). A top Via with a fresh branch is added if it has none.
        A transport failure is logged, never raised.

        @param ack: the ACK L{linkrtc.sip.message.Request}.
        @param destination: the address to send to.
        @return: what the transport returned (C{None} or a L{Deferred} whose
            failure is already logged and consumed), or C{None} on failure.
        """
        try:
            self._ensureVia(ack, destination)
            result = self.transport.sendRequest(ack, destination)
        except Exception:
            log.failure("SIP ACK to {destination} not sent", destination=destination)
            return None
        if isinstance(result, Deferred):

            def failed(reason):
                log.warn(
                    "SIP ACK to {destination} not sent: {reason}",
                    destination=destination,
                    reason=reason.getErrorMessage(),
                )

            result.addErrback(failed)
        return result

    def _ensureVia(self, request, destination):
        """
        @return: the top Via of C{request}; if it has none, one is made with
            C{transport.localVia(transportName, newBranch())} (the transport
            layer's helper) and added.
        @raise ValueError: no Via and the transport cannot make one.
        """
        via = request.topVia
        if via is not None:
            return via
        localVia = getattr(self.transport, "localVia", None)
        if localVia is None:
            raise ValueError("the request needs a top Via")
        via = localVia(getattr(destination, "transport", "UDP"), newBranch())
        request.headers.addFirst("Via", str(via))
        return request.topVia

    def findInviteForCancel(self, cancel):
        """
        The INVITE server transaction a CANCEL cancels (RFC 3261 §9.2):
        same branch and sent-by (method INVITE), or with the RFC 2543 rules
        the same Request-URI, From and To tags, Call-ID, CSeq number and top
        Via. The caller checks its C{state} (a CANCEL after a final response
        has no effect).

        @param cancel: a CANCEL L{linkrtc.sip.message.Request}.
        @return: the live L{InviteServerTransaction}, or C{None}.
        """
        try:
            key = self._serverKey(cancel)
        except SIPParseError:
            return None
        key = key[:-1] + ("INVITE",)
        if key[0] == "2543":
            tx = self._servers2543.get(key + (_tagOf(cancel.toAddr),))
        else:
            tx = self._servers.get(key)
        return tx if isinstance(tx, InviteServerTransaction) else None

    # -- bookkeeping -----------------------------------------------------------------

    def _forget(self, tx):
        for table, key in getattr(tx, "_keys", ()):
            if table.get(key) is tx:
                del table[key]


def _setTopBranch(request, branch):
    """Rewrite C{request}'s top Via with C{branch} (other Vias unchanged, in order)."""
    vias = list(request.vias)
    vias[0].params["branch"] = branch
    request.setVias(vias)
