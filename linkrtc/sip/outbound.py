# -*- test-case-name: linkrtc.sip.test.test_outbound -*-
"""
The SIP side of an outgoing call: L{InviteClientLeg} (RFC 3261 §13.2,
§12.1.2, §9.1, §22; RFC 6026 §8.4).

The leg builds and sends the INVITE through the transaction layer, hands
provisional responses to its listener (early media), answers 401/407 with
digest credentials (L{linkrtc.sip.auth.DigestClient}: once per nonce, a
rejected password is one clear failure), follows 3xx once per target, ACKs
every 2xx itself (also the retransmissions that come after the INVITE
transaction ended, RFC 6026), CANCELs on request and then ends the dialog
with BYE or answers the far end's BYE.

Wiring: the leg registers its confirmed dialog in the user agent's dialog
table (L{linkrtc.sip.useragent.UserAgent.registerDialog}), so in-dialog
requests (C{requestReceived}), ACKs of our 2xx to a re-INVITE
(C{ackReceived}) and stray 2xx (C{strayResponse}) reach it the same way
they reach an L{linkrtc.sip.invite.InviteServerLeg}.
"""

import os
import random

from twisted.internet import defer
from twisted.logger import Logger
from zope.interface import implementer

from linkrtc.error import InvalidStateError, TransactionTimeout, TransportError
from linkrtc.interfaces import ISIPClientLeg
from linkrtc.sip import sessiontimer
from linkrtc.sip.auth import DigestAuthError, DigestClient, DigestCredentials
from linkrtc.sip.dialog import Dialog, newCSeq, newTag
from linkrtc.sip.invite import _Retransmission
from linkrtc.sip.message import Headers, Request
from linkrtc.sip.reliable import PrackSender
from linkrtc.sip.uri import SIPURI, NameAddr

log = Logger()

#: Targets a leg tries at most, the first included (3xx loop guard).
MAX_TARGETS = 6

#: INVITEs a leg sends at most for one target (401/407 re-submissions).
MAX_SUBMISSIONS = 6

#: The headers carrying credentials, copied into the ACK of a 2xx
#: (RFC 3261 §22.1: the ACK carries the INVITE's credentials).
_AUTH_HEADERS = ("Authorization", "Proxy-Authorization")

SDP = "application/sdp"


def _qValue(nameAddr):
    try:
        return float((nameAddr.params or {}).get("q") or 1.0)
    except ValueError:
        return 1.0


class _InviteListener:
    """The client-transaction listener of one INVITE; stale ones are ignored by the leg."""

    def __init__(self, leg):
        self.leg = leg
        self.transaction = None

    def responseReceived(self, response, transaction=None):
        self.leg._responseReceived(self, response)

    def transactionTimedOut(self, transaction=None):
        self.leg._inviteFailed(self, 408, "no response (timeout)")

    def transportFailed(self, transaction=None, reason=None):
        why = reason.getErrorMessage() if hasattr(reason, "getErrorMessage") else str(reason)
        self.leg._inviteFailed(self, 503, "transport failed: %s" % (why,))


class _IgnoringListener:
    """For a CANCEL or a BYE nobody waits for: outcomes are logged."""

    def __init__(self, what):
        self.what = what

    def responseReceived(self, response, transaction=None):
        if response.status >= 200:
            log.debug("{what} answered {status}", what=self.what, status=response.status)

    def transactionTimedOut(self, transaction=None):
        log.info("{what} timed out", what=self.what)

    def transportFailed(self, transaction=None, reason=None):
        log.info("{what} not sent: {reason}", what=self.what, reason=reason)


@implementer(ISIPClientLeg)
class InviteClientLeg:
    """
    One outgoing INVITE and the dialog its 2xx makes.

    @ivar request: the last INVITE sent, or C{None} before L{start}.
    @ivar callId: C{str}.
    @ivar localTag: our From tag, C{str}.
    @ivar remoteTag: the callee's To tag once known, else C{None}.
    @ivar dialog: the confirmed L{Dialog}, or C{None}.
    @ivar state: C{"idle"}, C{"calling"} (INVITE out, nothing back),
        C{"proceeding"} (a 1xx came), C{"confirmed"} (2xx ACKed),
        C{"terminating"} (our BYE is out), C{"cancelling"} or
        C{"terminated"}.
    @ivar targets: the Request-URIs tried, in order (C{list} of URIs).
    @ivar lastStatus: the last final status received, C{int} or C{None}.
    """

    def __init__(self, userAgent, clock, requestURI, fromAddr, toAddr=None, proxy=None,
                 body=None, contentType=SDP, ackBody=None, credentials=None, headers=(),
                 routes=(), callId=None, localTag=None, redirectCheck=None,
                 reliableProvisionals=True, delayedAck=False):
        """
        @param userAgent: the L{linkrtc.sip.useragent.UserAgent} (its
            transaction layer, transport helpers and dialog table).
        @param clock: an C{IReactorTime}.
        @param requestURI: the callee's URI (L{SIPURI} or L{TelURI}).
        @param fromAddr: our L{NameAddr} for From (the caller-ID); a tag is
            added.
        @param toAddr: the L{NameAddr} for To; default the Request-URI.
        @param proxy: the L{linkrtc.sip.transport.Address} every INVITE is
            sent to (a trunk's proxy), or C{None} to send to the
            Request-URI's host (RFC 3263 without DNS SRV).
        @param body: the offer (C{bytes}) or C{None} for an offerless INVITE.
        @param ackBody: the SDP (C{bytes}) for the ACK of a 2xx (our answer
            to an offer in the 2xx of an offerless INVITE), or C{None}; or
            a callable taking the 2xx (L{Response}) and returning that SDP
            or C{None}, called once per answering dialog (RFC 3261
            §13.2.1: the answer to the 2xx's offer goes in the ACK).
        @param credentials: L{DigestCredentials}, a L{DigestClient} or
            C{None} (a 401/407 is then a failure).
        @param headers: extra C{(name, value)} pairs for the INVITE.
        @param routes: C{Route} values (C{str}) for the INVITE (a
            pre-loaded route set, RFC 3261 §8.1.2).
        @param redirectCheck: C{None} to follow a 3xx's Contacts as they
            are, or a callable C{(uri) -> uri or None}: the Request-URI to
            use for a Contact, or C{None} to skip it (a dial plan:
            L{linkrtc.call.dialplan}).
        @param reliableProvisionals: C{True} to offer C{Supported: 100rel}
            (RFC 3262; a reliable 1xx is PRACKed either way).
        @param delayedAck: C{True}: the ACK of the answering 2xx waits for
            L{sendAck} (an offerless INVITE whose answer comes from
            elsewhere, e.g. the caller's ACK in passthrough; RFC 3261
            §13.2.2.4 lets the ACK carry it). The 2xx's retransmissions
            are not ACKed meanwhile; L{sendBye} sends it without body
            first. C{ackBody} is not used then.
        """
        self.userAgent = userAgent
        self.clock = clock
        self.requestURI = requestURI
        self.localTag = localTag or newTag()
        self.fromAddr = NameAddr(fromAddr.uri, fromAddr.display,
                                 dict(fromAddr.params or {}, tag=self.localTag))
        self.toAddr = toAddr if toAddr is not None else NameAddr(requestURI)
        self.proxy = proxy
        self.body = body
        self.contentType = contentType
        self.ackBody = ackBody
        if isinstance(credentials, DigestCredentials):
            credentials = DigestClient(credentials)
        self.auth = credentials
        self.extraHeaders = tuple(headers)
        self.routes = tuple(routes)
        self.redirectCheck = redirectCheck
        self.callId = callId or "%s@linkrtc" % (os.urandom(12).hex(),)
        self.remoteTag = None
        self.request = None
        self.transaction = None
        self.dialog = None
        self.listener = None
        self.state = "idle"
        self.targets = []
        self.lastStatus = None
        self._cseq = newCSeq() % 100000 + 1
        self._current = None
        self._submissions = 0
        self._cancelWanted = False
        self._cancelReason = None
        self._cancelTimer = None
        self._resubmitting = None
        self._acks = {}  # remote tag -> (ack, destination)
        self.delayedAck = delayedAck
        self._pendingAck = None  # (remote tag, INVITE) of a 2xx whose ACK waits (delayedAck)
        self._reinviteRetransmission = None
        self._reinviteCSeq = None
        self._reinviteOut = False
        self._lastReinviteAck = None
        self.reliableProvisionals = reliableProvisionals
        self._prack = PrackSender(self._sendPrack)
        self._minSE = 0  # a 422's Min-SE (RFC 4028 §7.3)
        self.sessionTimer = None

    def __repr__(self):
        return "<InviteClientLeg %s;%s %s>" % (self.callId, self.localTag, self.state)

    def setListener(self, listener):
        """See L{ISIPClientLeg.setListener}."""
        self.listener = listener

    def _tell(self, method, *args):
        if self.listener is None:
            return
        try:
            getattr(self.listener, method)(*args)
        except Exception:
            log.failure("client leg listener {method} failed", method=method)

    # -- sending INVITEs -------------------------------------------------------

    def start(self):
        """See L{ISIPClientLeg.start}. @raise InvalidStateError: if started already."""
        if self.state != "idle":
            raise InvalidStateError("the leg was started already")
        self.targets.append(self.requestURI)
        if self.auth is not None:
            self.auth.startAttempt()
        self._sendInvite()

    def destination(self):
        """@return: the L{Address} the INVITE goes to (the proxy, else the Request-URI's)."""
        if self.proxy is not None:
            return self.proxy
        return self.userAgent.destinationFor(self.requestURI)

    def buildInvite(self):
        """
        A new INVITE for the current target with the next CSeq, no Via
        (the transaction layer adds one with a new branch) and credentials
        for every realm challenged so far.

        @return: a L{Request}.
        """
        self._cseq += 1
        destination = self.destination()
        headers = Headers()
        for route in self.routes:
            headers.add("Route", route)
        headers.add("Max-Forwards", "70")
        headers.add("From", str(self.fromAddr))
        headers.add("To", str(self.toAddr))
        headers.add("Call-ID", self.callId)
        headers.add("CSeq", "%d INVITE" % (self._cseq,))
        headers.add("Contact", str(self.userAgent.localContact(destination)))
        headers.add("Allow", ", ".join(self.userAgent.allow))
        headers.add("User-Agent", self.userAgent.userAgentName)
        for name, value in self.extraHeaders:
            headers.add(name, value)
        settings = getattr(self.userAgent, "sessionTimer", None)
        tags = ["100rel"] * bool(self.reliableProvisionals) + ["timer"] * bool(settings)
        if tags:
            headers.add("Supported", ", ".join(tags))
        for name, value in sessiontimer.uacHeaders(settings, self._minSE) if settings else ():
            headers.add(name, value)
        request = Request("INVITE", self.requestURI, headers)
        if self.body:
            request.body = bytes(self.body)
            request.headers.set("Content-Type", self.contentType)
        if self.auth is not None:
            self.auth.authorize(request)
        return request

    def _sendInvite(self):
        self._submissions += 1
        try:
            request = self.buildInvite()
            destination = self.destination()
        except Exception as e:
            log.failure("cannot build INVITE for {callId}", callId=self.callId)
            self._fail(500, "cannot build INVITE: %s" % (e,), None)
            return
        listener = _InviteListener(self)
        self._current = listener
        self.request = request
        self.state = "calling"
        log.info("SIP outbound {callId}: INVITE {uri} via {destination} (CSeq {cseq})",
                 callId=self.callId, uri=str(self.requestURI), destination=str(destination),
                 cseq=self._cseq)
        try:
            tx = self.userAgent.transactionLayer.sendRequest(request, destination, listener)
        except Exception as e:
            if self._current is listener:
                log.failure("sending INVITE failed")
                self._fail(503, "cannot send INVITE: %s" % (e,), None)
            return
        if self._current is listener:
            listener.transaction = tx
            self.transaction = tx

    # -- responses to the INVITE --------------------------------------------------

    def _responseReceived(self, listener, response):
        status = response.status
        if 200 <= status < 300:
            self._okReceived(response)
            return
        if listener is not self._current or self.state in ("terminated", "confirmed"):
            return
        if status < 200:
            if status == 100:
                return
            if self.state == "calling":
                self.state = "proceeding"
            if self._cancelWanted:
                self._sendCancel()
                return
            if self.state == "cancelling":
                return
            if not self._prack.provisionalReceived(self.request, response,
                                                   self.userAgent.localContact(self.destination())):
                return  # a repeated reliable 1xx (RFC 3262 §4)
            self._tell("legProgress", response)
            return
        self.lastStatus = status
        self._current = None
        if self._cancelWanted or self.state == "cancelling":
            self._end()
            return
        if status in (401, 407):
            self._challenged(response)
        elif 300 <= status < 400:
            self._redirected(response)
        elif status == 422 and sessiontimer.uacRetry(response, self._minSE) is not None:
            self._minSE = sessiontimer.uacRetry(response, self._minSE)
            self._resubmit()
        else:
            self._fail(status, response.reason, response)

    def _challenged(self, response):
        status = response.status
        if self.auth is None:
            self._fail(status, "%s (no credentials configured)" % (response.reason,), response)
            return
        try:
            self.auth.answer(response)
        except DigestAuthError as e:
            log.warn("SIP outbound {callId}: authentication failed: {reason}",
                     callId=self.callId, reason=e.reason)
            self._fail(status, "authentication failed: %s" % (e.reason,), response)
            return
        if self._submissions >= MAX_SUBMISSIONS:
            self._fail(status, "too many challenges", response)
            return
        self._resubmit()

    def _resubmit(self):
        """
        Send the next INVITE once the transaction layer has ACKed the
        401/407/3xx (it passes the response up before sending that ACK).
        """
        self.state = "calling"
        self._resubmitting = self.clock.callLater(0, self._resubmitNow)

    def _resubmitNow(self):
        self._resubmitting = None
        if self.state != "calling" or self._current is not None:
            return
        if self._cancelWanted:
            self._end()
            return
        self._sendInvite()

    def _redirected(self, response):
        """RFC 3261 §8.1.3.4: try each new Contact once, highest q first."""
        status = response.status
        try:
            contacts = [c for c in response.contacts if not getattr(c, "isWildcard", False)]
        except Exception:
            contacts = []
        contacts.sort(key=_qValue, reverse=True)
        for contact in contacts:
            uri = contact.uri
            if not isinstance(uri, SIPURI) and getattr(uri, "scheme", None) != "tel":
                continue
            if any(uri == tried for tried in self.targets):
                continue
            if len(self.targets) >= MAX_TARGETS:
                break
            if self.redirectCheck is not None:
                try:
                    checked = self.redirectCheck(uri)
                except Exception:
                    log.failure("SIP outbound {callId}: checking a redirect", callId=self.callId)
                    checked = None
                if checked is None:
                    log.info("SIP outbound {callId}: {status} to {uri} not followed",
                             callId=self.callId, status=status, uri=str(uri))
                    continue
                uri = checked
                if any(uri == tried for tried in self.targets):
                    continue
            log.info("SIP outbound {callId}: {status} redirects to {uri}", callId=self.callId,
                     status=status, uri=str(uri))
            self.targets.append(uri)
            self.requestURI = uri
            self._submissions = 0
            if self.auth is not None:
                self.auth.startAttempt()
            self._resubmit()
            return
        self._fail(status, "%s (no new target to follow)" % (response.reason,), response)

    def _inviteFailed(self, listener, status, reason):
        if listener is not self._current:
            return
        self._current = None
        if self._cancelWanted or self.state == "cancelling":
            self._end()
            return
        self._fail(status, reason, None)

    def _fail(self, status, reason, response):
        self.lastStatus = status
        self._end()
        self._tell("legFailed", status, reason, response)

    def _okReceived(self, response):
        """
        A 2xx to one of our INVITEs (first one or a retransmission, maybe
        from another fork): ACK it (§13.2.2.4). The first makes the dialog;
        one from another fork, or one after we gave up, is ACKed and BYEd.
        """
        try:
            remoteTag = response.toAddr.tag or ""
        except Exception:
            return
        known = self._acks.get(remoteTag)
        if known is not None:
            self.userAgent.sendAck(*known)
            return
        if self._pendingAck is not None and self._pendingAck[0] == remoteTag:
            return  # its ACK waits for sendAck: the UAS retransmits until then
        invite = self.request
        if invite is None or response.cseq.number != invite.cseq.number:
            log.info("SIP outbound {callId}: 2xx to an older INVITE ignored", callId=self.callId)
            return
        wanted = self.dialog is None and self.state not in ("terminated", "cancelling") \
            and not self._cancelWanted
        try:
            dialog = Dialog.fromClientResponse(invite, response,
                                               self.userAgent.localContact(self.destination()))
            if self.delayedAck and wanted:
                self._holdConnection()
                self._pendingAck = (remoteTag, invite)
                self._confirmed(dialog, remoteTag, response, None)
                return
            ackBody = self.ackBody(response) if callable(self.ackBody) else self.ackBody
            ack, destination = self._makeAck(dialog, invite, ackBody)
        except Exception:
            log.failure("SIP outbound {callId}: cannot ACK a 2xx", callId=self.callId)
            return
        self._holdConnection()
        self._acks[remoteTag] = (ack, destination)
        self.userAgent.sendAck(ack, destination)
        if not wanted:
            # Another fork answered, or we gave up: end that dialog (§13.2.2.4).
            log.info("SIP outbound {callId}: unwanted 2xx (tag {tag}): BYE", callId=self.callId,
                     tag=remoteTag)
            self._byeUnwanted(dialog)
            if self.state in ("calling", "proceeding", "cancelling"):
                self._end()
            return
        self._confirmed(dialog, remoteTag, response, ackBody)

    def _holdConnection(self):
        if getattr(self, "_heldConnection", None) is None and self.state != "terminated":
            connectionTo = getattr(self.userAgent.transportLayer, "connectionTo", None)
            connection = connectionTo(self.destination()) if connectionTo else None
            if connection is not None and hasattr(connection, "hold"):
                # Keep the stream to the trunk open while the dialog lives.
                connection.hold()
                self._heldConnection = connection

    def _confirmed(self, dialog, remoteTag, response, ackBody):
        """The wanted 2xx made C{dialog}: the leg is C{confirmed}; the listener is told."""
        self._current = None
        self.dialog = dialog
        self.remoteTag = remoteTag
        self.state = "confirmed"
        dialog.localSeq = max(dialog.localSeq, self._prack.lastCSeq(remoteTag))  # after PRACKs
        self.userAgent.registerDialog(dialog, self)
        self.sessionTimer = sessiontimer.startTimer(
            self, "uac", sessiontimer.uacTerms(response), response, self.body or ackBody)
        self._tell("legAnswered", response)

    def sendAck(self, body=None):
        """
        Send the ACK a C{delayedAck} leg's 2xx waits for, with C{body}
        (the SDP answer, C{bytes} or C{str}, or C{None}); it is sent again
        for each retransmission of that 2xx. Does nothing when no ACK
        waits (already sent, or no 2xx).
        """
        pending, self._pendingAck = self._pendingAck, None
        if pending is None or self.dialog is None:
            return
        remoteTag, invite = pending
        if isinstance(body, str):
            body = body.encode("utf-8")
        try:
            ack, destination = self._makeAck(self.dialog, invite, body)
        except Exception:
            log.failure("SIP outbound {callId}: cannot ACK a 2xx", callId=self.callId)
            return
        self._acks[remoteTag] = (ack, destination)
        self.userAgent.sendAck(ack, destination)

    def _makeAck(self, dialog, invite, body):
        """
        The ACK of a 2xx to C{invite} in C{dialog} (RFC 3261 §13.2.2.4):
        the INVITE's CSeq number and credentials, C{body} (C{bytes}, or
        C{None}/empty for none).

        @return: C{(ack, destination)}.
        """
        ack = dialog.createRequest("ACK", body=body or None, contentType=SDP if body else None,
                                   cseq=invite.cseq.number)
        for name in _AUTH_HEADERS:
            for value in invite.headers.getAll(name):
                ack.headers.add(name, value)
        return ack, self._destinationFor(dialog, ack)

    def _byeUnwanted(self, dialog):
        try:
            bye = dialog.createRequest("BYE")
            self.userAgent.transactionLayer.sendRequest(
                bye, self._destinationFor(dialog, bye), _IgnoringListener("BYE of an unwanted 2xx"))
        except Exception:
            log.failure("SIP outbound {callId}: BYE of an unwanted 2xx failed",
                        callId=self.callId)

    def _sendPrack(self, prack, dialog):
        """Send a PRACK (RFC 3262 §4) in an early dialog, with the credentials so far."""
        if self.auth is not None:
            self.auth.authorize(prack)
        d = self.userAgent.sendRequest(prack, self._destinationFor(dialog, prack))
        d.addErrback(lambda f: log.info("PRACK failed: {why}", why=f.getErrorMessage()))

    def _destinationFor(self, dialog, request):
        if self.proxy is not None and not dialog.routeSet:
            return self.proxy
        return self.userAgent.destinationFor(dialog.nextHop(request))

    # -- CANCEL ---------------------------------------------------------------------

    def cancel(self, reason=None):
        """
        See L{ISIPClientLeg.cancel}. Before any provisional response the
        CANCEL waits for one (§9.1); 64*T1 seconds after the CANCEL without
        a final response the INVITE is given up.

        @param reason: a C{Reason} header value for the CANCEL (RFC 3326,
            e.g. L{linkrtc.call.fork.ANSWERED_ELSEWHERE}), or C{None}.
        """
        if self.state in ("confirmed", "terminating", "terminated", "cancelling"):
            return
        if self.state == "idle" or self._resubmitting is not None:
            self._end()
            return
        self._cancelReason = reason
        self._cancelWanted = True
        if self.state == "proceeding":
            self._sendCancel()
        # In "calling" the CANCEL goes when a 1xx comes; Timer B ends it otherwise.

    def _sendCancel(self):
        self._cancelWanted = False
        self.state = "cancelling"
        tx = self.transaction
        try:
            cancel = tx.createCancel()
            if self._cancelReason:
                cancel.headers.add("Reason", self._cancelReason)
            self.userAgent.transactionLayer.sendRequest(
                cancel, tx.destination, _IgnoringListener("CANCEL of %s" % (self.callId,)))
        except Exception:
            log.failure("SIP outbound {callId}: CANCEL not sent", callId=self.callId)
            self._end()
            return
        log.info("SIP outbound {callId}: CANCEL sent", callId=self.callId)
        self._cancelTimer = self.clock.callLater(64 * self.userAgent.T1, self._cancelTimedOut)

    def _cancelTimedOut(self):
        self._cancelTimer = None
        if self.state != "cancelling":
            return
        log.info("SIP outbound {callId}: no final response after CANCEL; given up",
                 callId=self.callId)
        tx = self.transaction
        terminate = getattr(tx, "_terminate", None)
        if terminate is not None and getattr(tx, "state", None) != "terminated":
            terminate("cancelled")
        self._end()

    # -- the dialog -------------------------------------------------------------------

    def sendBye(self):
        """See L{ISIPClientLeg.sendBye}."""
        if self.dialog is None or self.state != "confirmed":
            return defer.fail(InvalidStateError("no confirmed dialog to end (%s)" % self.state))
        self.sendAck(None)  # a delayed ACK goes first (RFC 3261 §13.2.2.4)
        self.state = "terminating"
        self._stopReinviteRetransmission()
        try:
            bye = self.dialog.createRequest("BYE")
            destination = self._destinationFor(self.dialog, bye)
        except Exception as e:
            self._end()
            return defer.fail(TransportError("no route for BYE: %s" % (e,)))
        d = self.userAgent.sendRequest(bye, destination)

        def ended(result):
            self._end()
            return result

        return d.addBoth(ended)

    def sendRequest(self, method, body=None, contentType=None, headers=(), endOnFailure=True):
        """
        See L{ISIPClientLeg.sendRequest}. A re-INVITE carries the trunk's
        credentials cached so far; its 2xx is ACKed here (§13.2.2.4), also
        when it comes again; one re-INVITE at a time. A 481 or 408 (or a
        timeout) ends the dialog (§12.2.1.2), unless C{endOnFailure} is
        false (a session refresh: the session timer handles its failure).

        @raise ValueError: for ACK, CANCEL.
        """
        if method in ("ACK", "CANCEL"):
            raise ValueError("%s is not sent with sendRequest" % (method,))
        if method == "BYE":
            return self.sendBye()
        if self.dialog is None or self.state != "confirmed":
            return defer.fail(InvalidStateError("no confirmed dialog (%s)" % self.state))
        invite = method == "INVITE"
        if invite:
            if self._reinviteOut or self._reinviteCSeq is not None:
                return defer.fail(InvalidStateError("a re-INVITE is already in progress"))
            self._reinviteOut = True
        try:
            request = self.dialog.createRequest(method, body, contentType, headers)
            if invite and self.auth is not None:
                self.auth.authorize(request)
            destination = self._destinationFor(self.dialog, request)
        except Exception as e:
            log.failure("cannot build {method} for {callId}", method=method, callId=self.callId)
            if invite:
                self._reinviteOut = False
            return defer.fail(TransportError("no route for %s: %s" % (method, e)))
        d = self.userAgent.sendRequest(request, destination)

        def answered(response):
            if invite:
                self._reinviteOut = False
                if 200 <= response.status < 300 and self.dialog is not None:
                    self._ackReinvite(request, response)
            if response.status in (408, 481) and endOnFailure:
                self._terminate("%d to %s" % (response.status, method))
            elif 200 <= response.status < 300 and body and self.sessionTimer is not None:
                self.sessionTimer.localSdp = bytes(body)  # a refresh re-offers it
            return response

        def failed(failure):
            if invite:
                self._reinviteOut = False
            if failure.check(TransactionTimeout) and endOnFailure:
                self._terminate("%s timed out" % (method,))
            return failure

        return d.addCallbacks(answered, failed)

    def _ackReinvite(self, invite, response):
        """ACK the 2xx to our re-INVITE (with its credentials, §22.1) and remember the ACK."""
        try:
            self.dialog.refreshTarget(response)
            ack = self.dialog.createRequest("ACK", cseq=invite.cseq.number)
            for name in _AUTH_HEADERS:
                for value in invite.headers.getAll(name):
                    ack.headers.add(name, value)
            destination = self._destinationFor(self.dialog, ack)
        except Exception:
            log.failure("SIP outbound {callId}: cannot ACK the re-INVITE's 2xx",
                        callId=self.callId)
            return
        self._lastReinviteAck = (invite.cseq.number, ack, destination)
        self.userAgent.sendAck(ack, destination)

    def requestReceived(self, request, transaction):
        """
        A request in our dialog (the user agent checked its CSeq): BYE,
        re-INVITE, INFO... go to the listener with a C{respond} function.
        """
        ua = self.userAgent
        if self.state == "terminated":
            ua.respond(transaction, request, 481)
            return
        if request.method == "BYE" and self.state == "terminating":
            ua.respond(transaction, request, 200)
            return
        if request.method == "INVITE" and self._reinviteCSeq is not None:
            # RFC 3261 §14.2, as the server leg does (L{InviteServerLeg.requestReceived})
            ua.respond(transaction, request, 500,
                       headers=[("Retry-After", str(random.randint(0, 10)))])
            return
        if request.method == "INVITE" and self._reinviteOut:
            ua.respond(transaction, request, 491)  # glare (§14.2)
            return
        if sessiontimer.refuseTooSmall(self, request, transaction):
            return
        if request.method == "INVITE":
            self._reinviteCSeq = request.cseq.number
        respond = self._responder(request, transaction)
        if self.listener is None:
            respond(200 if request.method == "BYE" else 501)
            return
        self.listener.legRequestReceived(request, respond)

    def _responder(self, request, transaction):
        done = []

        def respond(status, reason=None, body=None, contentType=None, headers=()):
            if done:
                raise InvalidStateError("%s already answered" % (request.method,))
            if status >= 200:
                done.append(status)
            self._respondInDialog(request, transaction, status, reason, body, contentType,
                                  headers)

        return respond

    def _respondInDialog(self, request, transaction, status, reason, body, contentType, headers):
        ua = self.userAgent
        method = request.method
        headers = tuple(headers) + sessiontimer.answerHeaders(self.sessionTimer, request, status,
                                                              body)
        response = ua.makeResponse(request, status, reason, None, body, contentType, headers)
        if method in ("INVITE", "UPDATE") and 200 <= status < 300 and self.dialog is not None:
            response.headers.set("Contact", str(self.dialog.localContact
                                                or ua.localContact(self.destination())))
            self.dialog.refreshTarget(request)
        transaction.respond(response)
        if status < 200:
            return
        if method == "INVITE":
            self._reinviteCSeq = None
            if status < 300:
                self._stopReinviteRetransmission()
                self._reinviteRetransmission = (request.cseq.number, _Retransmission(
                    self.clock, ua.T1, ua.T2, lambda: ua.retransmitResponse(transaction, response),
                    lambda: log.info("no ACK for our 2xx to a re-INVITE ({callId})",
                                     callId=self.callId),
                    ua.isReliable(getattr(transaction, "source", None))))
        elif method == "BYE":
            self._end()

    def _stopReinviteRetransmission(self):
        if self._reinviteRetransmission is not None:
            self._reinviteRetransmission[1].stop()
            self._reinviteRetransmission = None

    def ackReceived(self, ack):
        """The ACK for our 2xx to a re-INVITE: stop retransmitting it."""
        pending = self._reinviteRetransmission
        if pending is not None and ack.cseq.number == pending[0]:
            self._stopReinviteRetransmission()

    def earlyRequestReceived(self, request, transaction):
        """Never called for client legs (no early dialogs are kept): 481."""
        self.userAgent.respond(transaction, request, 481)

    def strayResponse(self, response):
        """A 2xx retransmission after the INVITE transaction ended: ACK it again."""
        if 200 <= response.status < 300 and response.cseq.method == "INVITE":
            last = self._lastReinviteAck
            if last is not None and response.cseq.number == last[0]:
                self.userAgent.sendAck(last[1], last[2])
                return
            self._okReceived(response)

    # -- the end -----------------------------------------------------------------------

    def _terminate(self, reason):
        if self.state == "terminated":
            return
        self._end()
        self._tell("legTerminated", reason)

    def _end(self):
        """Forget timers and the dialog entry; the leg is over."""
        connection, self._heldConnection = getattr(self, "_heldConnection", None), None
        if connection is not None:
            connection.release()
        self.state = "terminated"
        self._cancelWanted = False
        self._stopReinviteRetransmission()
        if self.sessionTimer is not None:
            self.sessionTimer.stop()
        for timer in (self._cancelTimer, self._resubmitting):
            if timer is not None and timer.active():
                timer.cancel()
        self._cancelTimer = self._resubmitting = None
        if self.dialog is not None:
            self.userAgent.unregisterDialog(self.dialog)
