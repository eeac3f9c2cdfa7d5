# -*- test-case-name: linkrtc.sip.test.test_transaction -*-
"""
The SIP server transactions (RFC 3261 §17.2): L{InviteServerTransaction}
(§17.2.1, RFC 6026 §8.7) and L{NonInviteServerTransaction} (§17.2.2).
Made by L{linkrtc.sip.transaction.TransactionLayer} for each new request.
"""

from twisted.logger import Logger

from linkrtc.error import InvalidStateError
from linkrtc.sip.transaction_base import (
    ACCEPTED,
    COMPLETED,
    CONFIRMED,
    PROCEEDING,
    TRYING,
    _callSafely,
    _Transaction,
)

log = Logger()


class ServerTransaction(_Transaction):
    """
    A server transaction (§17.2). Made by the layer for each new request and
    handed to C{tu.requestReceived(request, tx)}.

    @ivar source: where the request came from; responses go back there.
    """

    kind = "server"
    #: Timer G retransmissions allowed (C{None}: as RFC 3261 §17.2.1 says,
    #: until ACK or Timer H); set by L{respondOnce} or the layer.
    _retransmitLimit = None
    _retransmitted = 0

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

    def respondOnce(self, response):
        """
        As L{respond}, for a final response that is sent once only: no
        Timer G retransmissions of a 3xx-6xx to INVITE (admission
        refusals: a source that never ACKs gets exactly one answer; a
        retransmitted INVITE still gets it again). Otherwise the same.
        """
        self._retransmitLimit = 0
        self.respond(response)

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
    C{transactionTimedOut} is called); to a source that never sent us an ACK
    (L{linkrtc.sip.transaction.TransactionLayer.unknownSourceRetransmissions})
    Timer G stops after a few retransmissions, so a scanner that never ACKs
    does not draw a dozen copies. A 2xx -> Accepted for Timer L
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
                # Lingers: the TU retransmits its 2xx itself (RFC 6026 §8.1),
                # straight to the transport once this transaction is gone.
                self._layer.lingering(self)
                self._startTimer("L", self.timers.L, self._terminate)
        else:
            self._setState(COMPLETED)
            if self._retransmitLimit is None:
                self._retransmitLimit = self._layer._retransmitLimitFor(self.source)
            if self._transmit(response):
                if not self.reliable and self._retransmitLimit != 0:
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
        self._retransmitted += 1
        if self._retransmitLimit is not None and self._retransmitted >= self._retransmitLimit:
            return  # no more (an unknown source): Timer H still ends the transaction
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
            self._layer.lingering(self)
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
                self._layer.lingering(self)
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


__all__ = ["InviteServerTransaction", "NonInviteServerTransaction", "ServerTransaction"]
