# -*- test-case-name: linkrtc.sip.test.test_invite -*-
"""
The SIP side of an incoming call: L{InviteServerLeg} (RFC 3261 §13.3,
§12.1.1, §15; RFC 6026 §8.1).

The leg owns the INVITE server transaction, sends the provisional and final
responses, makes the dialog with its 2xx and retransmits that 2xx itself
until the ACK comes (the transaction layer does not, RFC 6026), then handles
the requests inside the dialog and ends it with BYE.
"""

import random

from twisted.internet import defer
from twisted.logger import Logger
from zope.interface import implementer

from linkrtc import metrics
from linkrtc.error import InvalidStateError, TransactionTimeout, TransportError
from linkrtc.interfaces import ISIPServerLeg
from linkrtc.sip import sessiontimer
from linkrtc.sip.dialog import Dialog, newTag
from linkrtc.sip.reliable import NO_PRACK_STATUS, OPTION_TAG, ReliableProvisionals, offersReliable

log = Logger()


class _Retransmission:
    """
    Sends a 2xx to INVITE again at T1, 2*T1, ... capped at T2 until
    L{stop} (RFC 3261 §13.3.1.4), and calls C{onTimeout} after 64*T1
    seconds. On a reliable transport only the timeout runs.

    Fast path: one timer is pending at a time (the next retransmission, or
    the timeout once no retransmission comes before it), not two per 2xx:
    the ACK, which comes before T1 in most calls, cancels one timer.
    """

    def __init__(self, clock, T1, T2, send, onTimeout, reliable):
        self._clock = clock
        self._T2 = T2
        self._send = send
        self._onTimeout = onTimeout
        self._interval = T1
        self._deadline = clock.seconds() + 64 * T1
        if reliable:
            self._timer = clock.callLater(64 * T1, self._timeout)
        else:
            self._timer = clock.callLater(T1, self._retransmit)

    def _retransmit(self):
        self._timer = None
        self._send()
        if self._timer is not None or self._onTimeout is None:
            return  # (stopped, or started again, by what the send did)
        self._interval = min(self._interval * 2, self._T2)
        now = self._clock.seconds()
        if now + self._interval >= self._deadline:
            self._timer = self._clock.callLater(max(0.0, self._deadline - now), self._timeout)
        else:
            self._timer = self._clock.callLater(self._interval, self._retransmit)

    def _timeout(self):
        self._timer = None
        onTimeout, self._onTimeout = self._onTimeout, None
        if onTimeout is not None:
            onTimeout()

    def stop(self):
        """Stop retransmitting and cancel the timeout."""
        call, self._timer = self._timer, None
        self._onTimeout = None
        if call is not None and call.active():
            call.cancel()


@implementer(ISIPServerLeg)
class InviteServerLeg:
    """
    One incoming INVITE and the dialog its 2xx makes.

    @ivar request: the initial INVITE (L{Request}).
    @ivar transaction: its server transaction.
    @ivar callId: C{str}.
    @ivar localTag: our To tag, C{str}.
    @ivar remoteTag: the caller's From tag (C{""} for an RFC 2543 caller).
    @ivar dialog: the L{Dialog} once a 2xx is sent, else C{None}.
    @ivar state: C{"proceeding"} (no final yet), C{"accepted"} (2xx sent,
        no ACK yet), C{"confirmed"} (ACK received), C{"terminating"} (our
        BYE is out) or C{"terminated"}.
    @ivar finalSent: C{True} once the INVITE has a final response.
    """

    def __init__(self, userAgent, request, transaction, clock, localTag=None):
        """
        @param userAgent: the L{linkrtc.sip.useragent.UserAgent}.
        @param request: the INVITE.
        @param transaction: its server transaction (with C{respond} and
            C{source}).
        @param clock: an C{IReactorTime} for the 2xx retransmissions.
        @param localTag: our To tag; a random one by default.
        """
        self.userAgent = userAgent
        self.request = request
        self.transaction = transaction
        self.clock = clock
        self.callId = request.callId
        self.localTag = localTag or newTag()
        self.remoteTag = request.fromAddr.tag or ""
        self.listener = None
        self.dialog = None
        self.state = "proceeding"
        self.finalSent = False
        self._secure = request.uriScheme == "sips"
        self._contactAddr = self._contactText = None
        self._retransmissions = {}
        self._reinviteIn = None
        self._reinviteRespond = None
        self._reinviteTransaction = None
        self._reinviteOut = False
        self._lastAck = None
        self._destination = None
        self._finalQueued = False
        self.sessionTimer = None
        self._sessionTerms = sessiontimer.uasTerms(
            request, getattr(userAgent, "sessionTimer", None))
        self._reliable = None
        if OPTION_TAG in getattr(userAgent, "supported", ()) and offersReliable(request):
            # RFC 3262 §3: the caller takes reliable provisionals
            self._reliable = ReliableProvisionals(
                clock, userAgent.T1, request.cseq.number, self._sendProvisionalNow,
                self._noPrack, userAgent.isReliable(self.source))

    def __repr__(self):
        return "<InviteServerLeg %s;%s %s>" % (self.callId, self.localTag, self.state)

    @property
    def source(self):
        """The transport address the INVITE came from, or C{None}."""
        return getattr(self.transaction, "source", None)

    def setListener(self, listener):
        """See L{ISIPServerLeg.setListener}."""
        self.listener = listener

    # -- responses to the INVITE --------------------------------------------

    def _dialogResponse(self, request, status, reason, body, contentType, headers,
                        contact=None):
        """
        A response that makes or keeps a dialog: our tag, Record-Route,
        Contact (C{contact}, else L{_contact}).
        """
        ua = self.userAgent
        response = ua.makeResponse(
            request, status, reason, self.localTag, body, contentType, headers
        )
        if not response.headers.getAll("Record-Route"):
            for value in request.headers.getAll("Record-Route"):
                response.headers.add("Record-Route", value)
        if "Contact" not in response.headers:
            if contact is None:
                contact = self._contact()
            response.headers.set(
                "Contact", self._contactText if contact is self._contactAddr else str(contact))
        return response

    def _contact(self):
        # Fast path: our Contact is the same in every response of the leg
        # (the source's transport and the Request-URI's scheme): made once.
        contact = self._contactAddr
        if contact is None:
            contact = self._contactAddr = self.userAgent.localContact(self.source, self._secure)
            self._contactText = str(contact)
        return contact

    def sendProvisional(self, status, reason=None, body=None, contentType=None, headers=()):
        """
        See L{ISIPServerLeg.sendProvisional}.

        @raise ValueError: if C{status} is not 101..199.
        @raise InvalidStateError: after the final response.
        """
        if not 101 <= status <= 199:
            raise ValueError("provisional status must be 101..199, not %r" % (status,))
        if self.finalSent:
            raise InvalidStateError("the INVITE already has its final response")
        response = self._dialogResponse(self.request, status, reason, body, contentType, headers)
        if self._reliable is not None:
            self._reliable.send(response)
        else:
            self.transaction.respond(response)

    def _sendProvisionalNow(self, response):
        """Send (or send again) a reliable provisional while the INVITE has no final."""
        if not self.finalSent:
            self.transaction.respond(response)

    def _noPrack(self):
        """RFC 3262 §3: no PRACK within 64*T1: a 5xx, and the leg ends."""
        if self.finalSent:
            return
        self._finalQueued = False
        metrics.SIP_PRACK_TIMEOUTS.inc()
        listener = self.listener  # the 5xx or _end forgets it
        try:
            self.sendFinal(NO_PRACK_STATUS, "Reliable Provisional Not Acknowledged")
        except Exception:
            log.failure("no PRACK: the 5xx was not sent")
            self._end()
        if listener is not None:
            listener.legTerminated("no PRACK for a reliable provisional")

    def sendFinal(self, status, reason=None, body=None, contentType=None, headers=()):
        """
        See L{ISIPServerLeg.sendFinal}.

        @raise ValueError: if C{status} is not 200..699.
        @raise InvalidStateError: if a final response was already sent.
        """
        if not 200 <= status <= 699:
            raise ValueError("final status must be 200..699, not %r" % (status,))
        if self.finalSent or (self._finalQueued and status < 300):
            raise InvalidStateError("the INVITE already has its final response")
        if status < 300 and self._reliable is not None and self._reliable.pending:
            # RFC 3262 §3: the 2xx waits for the PRACK of what is unacknowledged
            self._finalQueued = True
            self._reliable.whenAcknowledged(
                lambda: self._sendQueuedFinal(status, reason, body, contentType, headers))
            return
        self._finalQueued = False
        if self._reliable is not None:
            self._reliable.stop()
        if status >= 300:
            self.finalSent = True
            response = self.userAgent.makeResponse(
                self.request, status, reason, self.localTag, body, contentType, headers
            )
            self.state = "terminated"
            self.listener = self._reliable = None  # see _end
            self.userAgent.legEnded(self)
            self.transaction.respond(response)
            return
        contact = self._contact()
        if self._sessionTerms is not None:
            headers = tuple(headers) + tuple(
                sessiontimer.initialHeaders(self._sessionTerms, self.request))
        response = self._dialogResponse(self.request, status, reason, body, contentType, headers,
                                        contact)
        # Built before finalSent: a 2xx that cannot be built (a malformed
        # Record-Route) leaves the INVITE free for an error response.
        self.dialog = Dialog.fromServerRequest(self.request, self.localTag, contact)
        self.finalSent = True
        self._holdConnection(getattr(self.source, "connection", None))
        self.state = "accepted"
        self.userAgent.registerDialog(self.dialog, self)
        try:
            self.transaction.respond(response)
        except Exception:
            self._end()
            raise
        self._startRetransmission(self.transaction, response, self.request.cseq.number)
        self.sessionTimer = sessiontimer.startTimer(self, "uas", self._sessionTerms, self.request,
                                                    body)

    def _sendQueuedFinal(self, status, reason, body, contentType, headers):
        """The 2xx held for a PRACK goes now (unless a final went meanwhile)."""
        if not self._finalQueued or self.finalSent:
            return
        self._finalQueued = False
        try:
            self.sendFinal(status, reason, body, contentType, headers)
        except Exception:
            log.failure("the 2xx held for PRACK was not sent")

    def _startRetransmission(self, transaction, response, number):
        ua = self.userAgent
        self._retransmissions[number] = _Retransmission(
            self.clock,
            ua.T1,
            ua.T2,
            lambda: ua.retransmitResponse(transaction, response),
            lambda: self._ackTimedOut(number),
            ua.isReliable(getattr(transaction, "source", None)),
        )

    def _stopRetransmissions(self):
        for retransmission in self._retransmissions.values():
            retransmission.stop()
        self._retransmissions.clear()

    def _ackTimedOut(self, number):
        self._retransmissions.pop(number, None)
        log.info("no ACK for 2xx (Call-ID {callId}, CSeq {cseq})", callId=self.callId, cseq=number)
        if self.listener is not None and self.state not in ("terminating", "terminated"):
            self.listener.legAckTimeout()

    # -- what the user agent core passes in ----------------------------------

    def ackReceived(self, ack):
        """
        An ACK with our dialog's id (§13.3.1.4). The first ACK for each 2xx
        stops its retransmissions and reaches the listener; repeats are
        dropped.
        """
        retransmission = self._retransmissions.pop(ack.cseq.number, None)
        if retransmission is None:
            log.debug("ACK repeated or unexpected, dropped (Call-ID {callId})", callId=self.callId)
            return
        retransmission.stop()
        if self.state == "accepted":
            self.state = "confirmed"
        if self.listener is not None:
            self.listener.legAcknowledged(ack)

    def cancelReceived(self, cancel):
        """
        CANCEL matched our INVITE; the core already answered it 200. Before
        the final response the listener is told (it sends 487); with no
        listener the leg sends 487 itself.
        """
        if self.finalSent:
            if (
                self._reinviteRespond is not None
                and cancel.method == "CANCEL"
                and cancel.cseq.number == self._reinviteIn.cseq.number
            ):
                # A CANCEL of a pending re-INVITE: 487 to it (§9.2); the
                # listener's later answer is dropped.
                self._reinviteRespond.cancel()
            return
        if self.listener is not None:
            self.listener.legCancelled(cancel)
        else:
            self.sendFinal(487)

    def earlyRequestReceived(self, request, transaction):
        """
        A request with our tag before the dialog is confirmed. BYE is
        answered 200 and treated like CANCEL (RFC 3261 §15.1.2: the INVITE
        then gets 487). An UPDATE (RFC 3311 §5.2) without a body only
        refreshes the early session (RFC 4028 §7.4): 200 with our Contact
        (a target refresh request, §5.2) and the session timer's headers;
        one with an offer gets 488, and the early session stays as
        negotiated (media changes before the answer are not supported).
        The rest get 481 (we hold no other early dialog state).
        """
        ua = self.userAgent
        method = request.method
        if method == "BYE":
            ua.respond(transaction, request, 200)
            self.cancelReceived(request)
        elif method == "PRACK" and self._reliable is not None:
            ua.respond(transaction, request, self._reliable.prackReceived(request))
            self._reliable.advance()  # the next provisional or the held 2xx, after the 200
        elif method == "UPDATE":
            if request.body:
                ua.respond(transaction, request, 488, "Not Acceptable Here",
                           headers=[("Warning", '399 linkrtc "no media change before the answer"')])
                return
            headers = sessiontimer.answerHeaders(self.sessionTimer, request, 200, None)
            transaction.respond(self._dialogResponse(request, 200, None, None, None, headers))
        else:
            ua.respond(transaction, request, 481)

    def requestReceived(self, request, transaction):
        """
        A request inside the confirmed dialog (its CSeq already checked):
        BYE, re-INVITE, INFO, UPDATE... go to the listener with a
        C{respond} function.
        """
        ua = self.userAgent
        method = request.method
        if self.state == "terminated":
            ua.respond(transaction, request, 481)
            return
        if method == "BYE" and self.state == "terminating":
            # Our BYE crossed theirs: answer, the dialog ends with ours.
            ua.respond(transaction, request, 200)
            return
        if method == "PRACK":
            # a late PRACK (RFC 3262 §3): 200 if it names one acknowledged
            reliable = self._reliable
            ua.respond(transaction, request, reliable.prackReceived(request) if reliable else 481)
            return
        if sessiontimer.refuseTooSmall(self, request, transaction):
            return
        if method == "INVITE":
            if self._reinviteIn is not None:
                ua.respond(
                    transaction,
                    request,
                    500,
                    headers=[("Retry-After", str(random.randint(0, 10)))],
                )
                return
            if self._reinviteOut:
                ua.respond(transaction, request, 491)
                return
            self._reinviteIn = request
        if method == "BYE":
            self._stopRetransmissions()
        respond = self._responder(request, transaction)
        if method == "INVITE":
            self._reinviteRespond = respond
            self._reinviteTransaction = transaction
            self.userAgent.watchTransaction(transaction, self)
        if self.listener is None:
            respond(200 if method == "BYE" else 500)
            return
        self.listener.legRequestReceived(request, respond)

    def _responder(self, request, transaction):
        """The C{respond} function given with an in-dialog request."""
        done = []

        def respond(status, reason=None, body=None, contentType=None, headers=()):
            if done and done[0] == "cancelled":
                log.info("{method} was cancelled; {status} not sent", method=request.method,
                         status=status)
                return
            if done:
                raise InvalidStateError("%s already answered" % (request.method,))
            if status >= 200:
                done.append(status)
            self._respondInDialog(request, transaction, status, reason, body, contentType,
                                  headers)

        def cancel():
            if not done:
                self._respondInDialog(request, transaction, 487, None, None, None, ())
                done.append("cancelled")

        respond.cancel = cancel
        return respond

    def _respondInDialog(self, request, transaction, status, reason, body, contentType, headers):
        method = request.method
        refresh = method in ("INVITE", "UPDATE") and 200 <= status < 300
        headers = tuple(headers) + sessiontimer.answerHeaders(self.sessionTimer, request, status,
                                                              body)
        if refresh:
            response = self._dialogResponse(request, status, reason, body, contentType, headers)
            if self.dialog is not None:
                self.dialog.refreshTarget(request)
        else:
            response = self.userAgent.makeResponse(
                request, status, reason, None, body, contentType, headers
            )
        transaction.respond(response)
        if status < 200:
            return
        if method == "INVITE":
            self._reinviteIn = None
            self._reinviteRespond = self._reinviteTransaction = None
            self.userAgent.unwatchTransaction(transaction)
            if status < 300:
                self._startRetransmission(transaction, response, request.cseq.number)
        elif method == "BYE":
            self._end()

    def strayResponse(self, response):
        """
        A response matching no transaction in this dialog: a repeated 2xx
        to our re-INVITE, whose ACK is sent again (§13.2.2.4).
        """
        if self._lastAck is None or not 200 <= response.status < 300:
            return
        number, ack, destination = self._lastAck
        if response.cseq.method == "INVITE" and response.cseq.number == number:
            self.userAgent.sendAck(ack, destination)

    # -- requests we send ------------------------------------------------------

    def sendBye(self):
        """See L{ISIPServerLeg.sendBye}; the dialog is forgotten when it completes."""
        if self.dialog is None or self.state in ("terminating", "terminated"):
            return defer.fail(InvalidStateError("no confirmed dialog to end (%s)" % self.state))
        self._stopRetransmissions()
        self.state = "terminating"
        try:
            bye = self.dialog.createRequest("BYE")
            destination = self._destinationFor(bye)
        except Exception as e:
            log.failure("cannot build BYE for {callId}", callId=self.callId)
            self._end()
            return defer.fail(TransportError("no route for BYE: %s" % (e,)))
        d = self.userAgent.sendRequest(bye, destination)

        def ended(result):
            self._end()
            return result

        return d.addBoth(ended)

    def sendRequest(self, method, body=None, contentType=None, headers=(), endOnFailure=True):
        """
        See L{ISIPServerLeg.sendRequest}. A re-INVITE's 2xx is ACKed here.
        A 481 or 408 (or a timeout) ends the dialog (§12.2.1.2) and the
        listener hears C{legTerminated}, unless C{endOnFailure} is false
        (a session refresh, whose failure the session timer handles).

        @raise ValueError: for ACK or CANCEL.
        """
        if method in ("ACK", "CANCEL"):
            raise ValueError("%s is not sent with sendRequest" % (method,))
        if method == "BYE":
            return self.sendBye()
        if self.dialog is None or self.state in ("terminating", "terminated"):
            return defer.fail(InvalidStateError("no confirmed dialog (%s)" % self.state))
        if method == "INVITE":
            if self._reinviteOut or self._reinviteIn is not None:
                return defer.fail(InvalidStateError("a re-INVITE is already in progress"))
            self._reinviteOut = True
        try:
            request = self.dialog.createRequest(method, body, contentType, headers)
            destination = self._destinationFor(request)
        except Exception as e:
            log.failure("cannot build {method} for {callId}", method=method, callId=self.callId)
            if method == "INVITE":
                self._reinviteOut = False
            return defer.fail(TransportError("no route for %s: %s" % (method, e)))
        d = self.userAgent.sendRequest(request, destination)

        def answered(response):
            if method == "INVITE":
                self._reinviteOut = False
                if 200 <= response.status < 300 and self.dialog is not None:
                    self.dialog.refreshTarget(response)
                    ack = self.dialog.createRequest("ACK", cseq=request.cseq.number)
                    self._lastAck = (request.cseq.number, ack, destination)
                    self.userAgent.sendAck(ack, destination)
            if response.status in (408, 481) and endOnFailure:
                self._terminate("%d to %s" % (response.status, method))
            elif 200 <= response.status < 300 and method == "UPDATE" and self.dialog:
                self.dialog.refreshTarget(response)
            if 200 <= response.status < 300 and body and self.sessionTimer is not None:
                self.sessionTimer.localSdp = bytes(body)
            return response

        def failed(failure):
            if method == "INVITE":
                self._reinviteOut = False
            if failure.check(TransactionTimeout) and endOnFailure:
                self._terminate("%s timed out" % (method,))
            return failure

        return d.addCallbacks(answered, failed)

    def _destinationFor(self, request):
        ua = self.userAgent
        return ua.destinationFor(self.dialog.nextHop(request))

    # -- the end ---------------------------------------------------------------

    def _holdConnection(self, connection):
        """Keep the stream C{connection} (or C{None}) open while the dialog lives."""
        if connection is not None and hasattr(connection, "hold"):
            connection.hold()
            self._heldConnection = connection

    def _end(self):
        """Forget the dialog and leg: no timers, no table entries remain."""
        connection, self._heldConnection = getattr(self, "_heldConnection", None), None
        if connection is not None:
            connection.release()
        self._stopRetransmissions()
        self.state = "terminated"
        for running in (self.sessionTimer, self._reliable):
            if running is not None:
                running.stop()
        if self._reinviteTransaction is not None:
            self.userAgent.unwatchTransaction(self._reinviteTransaction)
            self._reinviteTransaction = None
        self.userAgent.legEnded(self)
        # The call and its leg point at each other, and the PRACK and session
        # timers hold the leg's methods: forgetting them once the leg is over
        # lets all be freed by reference counting, without waiting for the
        # cyclic garbage collector (docs/performance.rst).
        self.listener = self.sessionTimer = self._reliable = None

    def transportFailed(self, reason):
        """A response on our INVITE transaction could not be sent (§17.2.4)."""
        self._terminate("transport failed: %s" % (getattr(reason, "value", reason),))

    def _terminate(self, reason):
        if self.state == "terminated":
            return
        listener = self.listener
        self._end()
        if listener is not None:
            listener.legTerminated(reason)
