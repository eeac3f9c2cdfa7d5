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

The state machines live in L{linkrtc.sip.transaction_client} and
L{linkrtc.sip.transaction_server}, what they share in
L{linkrtc.sip.transaction_base}; this module holds the layer and
re-exports their public names.
"""

import os

from twisted.internet.defer import Deferred
from twisted.logger import Logger

from linkrtc import metrics
from linkrtc.error import SIPParseError
from linkrtc.logging import debugEnabled
from linkrtc.sip.timers import TimerConfig
from linkrtc.sip.transaction_base import (
    ACCEPTED,
    CALLING,
    COMPLETED,
    CONFIRMED,
    MAGIC_COOKIE,
    PROCEEDING,
    TERMINATED,
    TRYING,
    IClientTransactionListener,
    ITransactionTransport,
    ITransactionUser,
    _callSafely,
    _tagOf,
    _viaIdentity,
    buildAck,
    buildCancel,
    hasMagicCookie,
    newBranch,
)
from linkrtc.sip.transaction_client import (
    ClientTransaction,
    InviteClientTransaction,
    NonInviteClientTransaction,
)
from linkrtc.sip.transaction_server import (
    InviteServerTransaction,
    NonInviteServerTransaction,
    ServerTransaction,
)

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

#: C{Retry-After} (seconds) of the 503 sent when the server table is full.
FULL_RETRY_AFTER = 5


class TransactionLayer:
    """
    Holds every live transaction; matches messages to them.

    @ivar transport: an L{ITransactionTransport}.
    @ivar clock: an L{IReactorTime}.
    @ivar tu: an L{ITransactionUser}.
    @ivar timers: the L{TimerConfig}.
    """

    #: Default most server transactions held at once (L{maxServerTransactions}).
    DEFAULT_MAX_SERVER_TRANSACTIONS = 20000

    #: Source addresses remembered as having sent an ACK or answered us.
    KNOWN_SOURCES = 10000

    def __init__(self, transport, clock, tu, timers=None,
                 maxServerTransactions=DEFAULT_MAX_SERVER_TRANSACTIONS,
                 unknownSourceRetransmissions=None, tuFactory=None):
        """
        @param maxServerTransactions: most server transactions held at once
            (C{int}), or C{None} for no bound. When full, the oldest
            transaction that only lingers (L{lingering}: its final response
            sent, kept for the peer's retransmissions) is ended early to make
            room, counted in C{linkrtc_sip_refused_total{reason=
            "transactions_evicted"}}; only when none lingers is a new request
            dropped over UDP (its sender retransmits; a flood gets nothing)
            and answered 503 with C{Retry-After} statelessly over TCP/TLS;
            logged once per episode, counted in
            C{linkrtc_sip_refused_total{reason="transactions_full"}}.
        @param unknownSourceRetransmissions: Timer G retransmissions of a
            3xx-6xx to INVITE for a source IP that never sent us an ACK nor
            answered one of our requests (C{int}), or C{None} for RFC 3261
            behaviour (until ACK or Timer H; about ten).
        @param tuFactory: C{None}, or a callable C{(layer) -> tu} building
            the transaction user (which needs this layer) as the last step
            of this constructor, instead of C{tu}.
        """
        self.transport = transport
        self.clock = clock
        self.tu = tu
        self.timers = timers if timers is not None else TimerConfig()
        self.maxServerTransactions = maxServerTransactions
        self.unknownSourceRetransmissions = unknownSourceRetransmissions
        # RFC 3261 server transactions: (branch, sent-by host, port, method).
        self._servers = {}
        # RFC 2543 server transactions: (uri, from tag, call-id, cseq number,
        # top Via, method, to tag).
        self._servers2543 = {}
        # RFC 2543 INVITE transactions again, without the To tag, for ACKs.
        self._invites2543 = {}
        # Client transactions: (branch, method).
        self._clients = {}
        # Source hosts that sent an ACK or answered us, oldest first.
        self._knownSources = {}
        self._full = False
        # Server transactions that only linger (RFC 3261 §17.2.1 Confirmed,
        # RFC 6026 Accepted, §17.2.2 Completed: their final response is
        # sent), oldest first: what a full table gives up first.
        self._lingering = {}
        if tuFactory is not None:
            self.tu = tuFactory(self)

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
            self._noteKnown(source)
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
        if (self.maxServerTransactions is not None
                and self.serverTransactionCount() >= self.maxServerTransactions
                and not self._evictLingering()):
            self._refuseFull(request, source, reliable)
            return
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
            self._noteKnown(source)
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

    def lingering(self, tx):
        """
        Server transaction C{tx} sent its final response and now only
        absorbs or answers the peer's retransmissions (INVITE Confirmed or
        Accepted, non-INVITE Completed) until its timer (I, L or J: up to
        32 s over UDP). Called by the server transactions. At the rated call rate these are most of the table
        (two per call: the INVITE's and the BYE's), so a full table ends the
        oldest of them early (L{_evictLingering}) rather than refuse calls.
        """
        if tx.state != TERMINATED:
            self._lingering[tx] = None

    def _evictLingering(self):
        """
        End the oldest lingering server transaction to make room for a new one.
        Its peer loses only the absorption of a retransmission that comes
        later still (a request retransmitted after its final response: it is
        then handled as new, e.g. a BYE gets 481).

        @return: C{True} if one was ended.
        """
        for tx in self._lingering:
            break
        else:
            return False
        metrics.SIP_REFUSED.labels(reason="transactions_evicted").inc()
        tx._terminate("evicted")
        self._lingering.pop(tx, None)
        return True

    def _forget(self, tx):
        self._lingering.pop(tx, None)
        for table, key in getattr(tx, "_keys", ()):
            if table.get(key) is tx:
                del table[key]
        if self._full and self.serverTransactionCount() < 0.9 * self.maxServerTransactions:
            self._full = False
            log.info("SIP server transaction table below its bound again: taking requests")

    # -- bounds and amplification -------------------------------------------------

    def serverTransactionCount(self):
        """@return: the number of live server transactions (C{int})."""
        return len(self._servers) + len(self._servers2543)

    def _refuseFull(self, request, source, reliable):
        """
        The server table is full: drop C{request} (UDP) or answer it 503
        statelessly (TCP/TLS); log once per episode.
        """
        metrics.SIP_REFUSED.labels(reason="transactions_full").inc()
        if not self._full:
            self._full = True
            log.warn("SIP server transaction table full ({count}): refusing new requests",
                     count=self.serverTransactionCount())
        if not reliable:
            return
        response = request.createResponse(503, toTag=os.urandom(6).hex())
        response.headers.add("Retry-After", str(FULL_RETRY_AFTER))
        try:
            d = self.transport.sendResponse(response, source)
        except Exception:
            log.failure("Could not send 503 (table full)")
            return
        if isinstance(d, Deferred):
            d.addErrback(lambda f: log.info("Could not send 503: {error}", error=f.value))

    def _noteKnown(self, source):
        """Remember C{source}'s host: it ACKs or answers, so it is not a blind scanner."""
        host = getattr(source, "host", None)
        if host is None:
            return
        known = self._knownSources
        if host in known:
            return
        if len(known) >= self.KNOWN_SOURCES:
            del known[next(iter(known))]
        known[host] = None

    def _retransmitLimitFor(self, source):
        """
        @return: Timer G retransmissions allowed for a final response to
            C{source}: C{None} (no limit but Timer H's) for a known source,
            else L{unknownSourceRetransmissions}.
        """
        if getattr(source, "host", None) in self._knownSources:
            return None
        return self.unknownSourceRetransmissions


def _setTopBranch(request, branch):
    """Rewrite C{request}'s top Via with C{branch} (other Vias unchanged, in order)."""
    vias = list(request.vias)
    vias[0].params["branch"] = branch
    request.setVias(vias)

