# -*- test-case-name: linkrtc.sip.test.test_transaction -*-
"""
The SIP client transactions (RFC 3261 §17.1): L{InviteClientTransaction}
(§17.1.1, RFC 6026 §8.4) and L{NonInviteClientTransaction} (§17.1.2).
Made by L{linkrtc.sip.transaction.TransactionLayer.sendRequest}.
"""

from twisted.logger import Logger

from linkrtc.logging import debugEnabled
from linkrtc.sip.transaction_base import (
    ACCEPTED,
    CALLING,
    COMPLETED,
    PROCEEDING,
    TRYING,
    _callSafely,
    _Transaction,
    buildAck,
    buildCancel,
)

log = Logger()


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


__all__ = ["ClientTransaction", "InviteClientTransaction", "NonInviteClientTransaction"]
