# -*- test-case-name: linkrtc.sip.test.test_useragent -*-
"""
The SIP user-agent core: LinkRTC's transaction user (RFC 3261 §8.2, §12).

L{UserAgent} sits on the transaction layer. It checks every new request in
the order of RFC 3261 §8.2 (method, Request-URI, merged requests, Require,
content, Accept), answers what it can itself (OPTIONS, CANCEL, errors),
routes requests inside a dialog to the dialog's leg, and turns each new
INVITE into an L{InviteServerLeg} handed to the
L{linkrtc.interfaces.IInviteHandler}.

Wiring::

    # inbound: transport -> layer -> ua; each layer builds the one above
    transport = SIPTransportLayer(
        reactor, publicAddress,
        receiverFactory=lambda transport: TransactionLayer(
            transport, reactor, None,
            tuFactory=lambda layer: UserAgent(layer, transport, inviteHandler, reactor)))
    ua = transport.receiver.tu
    transport.listen("udp:5060")
"""

from twisted.internet import defer
from twisted.logger import Logger
from zope.interface import implementer

from linkrtc import _version
from linkrtc.error import SIPParseError, TransactionTimeout, TransportError
from linkrtc.sip.content import (  # noqa: F401 (re-exported)
    _mediaType,
    _tokens,
    acceptsSDP,
    checkContent,
    multipartTypes,
)
from linkrtc.sip.dialog import DialogTable, checkDialogRequest, checkTargetRefresh, newTag
from linkrtc.sip.refer import replacedLeg
from linkrtc.sip.sessiontimer import SessionTimerSettings, tooSmall
from linkrtc.sip.transaction import ITransactionUser
from linkrtc.sip.uri import SIPURI, NameAddr

log = Logger()

#: Requests remembered at most for merged-request detection (§8.2.2.2).
MAX_MERGE_MEMORY = 10000

#: Methods we handle (the Allow header).
DEFAULT_ALLOW = ("INVITE", "ACK", "CANCEL", "BYE", "OPTIONS", "INFO", "UPDATE", "PRACK",
                 "REFER", "NOTIFY")

#: Methods we know but do not serve: 405 rather than 501 (RFC 3261 §8.2.1).
#: REGISTER and MESSAGE are served when the user agent has a registrar
#: (L{linkrtc.sip.registrar.Registrar}), which adds them to Allow.
KNOWN_UNSUPPORTED = (
    "REGISTER",
    "SUBSCRIBE",
    "NOTIFY",
    "PUBLISH",
    "MESSAGE",
    "REFER",
)

#: Content types we understand in request bodies (RFC 3261 §8.2.3).
DEFAULT_ACCEPT = ("application/sdp", "application/dtmf-relay", "application/dtmf",
                  "message/sipfrag")

#: Request-URI schemes we serve (RFC 3261 §8.2.2.1; others get 416).
URI_SCHEMES = ("sip", "sips", "tel")

#: Option tags we support (Require/Supported, RFC 3261 §8.2.2.3):
#: C{100rel} (RFC 3262), C{timer} (RFC 4028), C{replaces} (RFC 3891,
#: L{linkrtc.call.transfer}).
DEFAULT_SUPPORTED = ("100rel", "timer", "replaces")

#: Methods that a request without a To tag may not carry: they only make
#: sense inside a dialog (RFC 3261 §12.2.2, §15.1.2; RFC 3311 §5.2).
_DIALOG_ONLY = ("BYE", "INFO", "UPDATE", "PRACK", "NOTIFY")


class _ClientTransactionListener:
    """
    Turns the transaction layer's client transaction callbacks into a
    L{Deferred} that fires with the final response.

    @ivar deferred: fires with the final L{Response}, or fails with
        L{TransactionTimeout} or L{TransportError}.
    @ivar provisional: called with each 1xx, or C{None}.
    """

    def __init__(self, provisional=None):
        self.deferred = defer.Deferred()
        self.provisional = provisional

    def responseReceived(self, response, transaction=None):
        if response.status < 200:
            if self.provisional is not None:
                self.provisional(response)
            return
        if not self.deferred.called:
            self.deferred.callback(response)

    def transactionTimedOut(self, transaction=None):
        if not self.deferred.called:
            self.deferred.errback(TransactionTimeout("no final response"))

    def transportFailed(self, transaction=None, reason=None):
        if not self.deferred.called:
            self.deferred.errback(TransportError(str(reason)))


@implementer(ITransactionUser)
class UserAgent:
    """
    The transaction user of LinkRTC's SIP stack (RFC 3261 §8.2 UAS core).

    @ivar dialogs: the L{DialogTable} of confirmed dialogs; the value of
        each is its L{InviteServerLeg}.
    @ivar legs: C{set} of live L{InviteServerLeg}s (before and after 2xx).
    """

    def __init__(
        self,
        transactionLayer,
        transportLayer,
        inviteHandler,
        clock,
        userAgentName=None,
        allow=DEFAULT_ALLOW,
        accept=DEFAULT_ACCEPT,
        supported=DEFAULT_SUPPORTED,
        T1=None,
        T2=None,
        mergeWindow=None,
        admission=None,
        registrar=None,
        sessionTimer=None,
    ):
        """
        @param transactionLayer: the L{linkrtc.sip.transaction.TransactionLayer}
            (or C{None}, set later with L{setTransactionLayer}: the layer
            needs its TU when it is made).
        @param transportLayer: the L{linkrtc.sip.transport.SIPTransportLayer};
            gives our address for Contact and sends ACKs for 2xx.
        @param inviteHandler: an L{linkrtc.interfaces.IInviteHandler}.
        @param clock: an C{IReactorTime}.
        @param userAgentName: the Server/User-Agent header value
            (default C{"LinkRTC"}, no version: docs/security.rst).
        @param allow: methods we serve (the Allow header).
        @param accept: body media types we understand (the Accept header).
        @param supported: option tags we support.
        @param T1: RFC 3261 T1 in seconds (default: the transaction
            layer's, else 0.5).
        @param T2: RFC 3261 T2 in seconds (default: the transaction
            layer's, else 4.0).
        @param mergeWindow: seconds a request is remembered for merged
            request detection (§8.2.2.2); default 64*T1.
        @param admission: a L{linkrtc.drain.Admission}: while its
            C{refusal()} gives a status, a new INVITE and an out-of-dialog
            OPTIONS get it (503 with Retry-After while draining); C{None}
            takes every call.
        @param registrar: a L{linkrtc.sip.registrar.Registrar}: it answers
            REGISTER and MESSAGE outside dialogs (its C{methods} join
            Allow) and may challenge INVITEs from SIP users; C{None}: 405.
        @param sessionTimer: the L{SessionTimerSettings} of RFC 4028
            (default 1800 s, Min-SE 90 s).
        """
        self.transactionLayer = None
        self.transportLayer = transportLayer
        self.inviteHandler = inviteHandler
        self.clock = clock
        self.userAgentName = userAgentName or _version.PRODUCT
        self.registrar = registrar
        if registrar is not None:
            allow = tuple(allow) + tuple(m for m in registrar.methods if m not in allow)
        self.allow = tuple(allow)
        self.accept = tuple(a.lower() for a in accept)
        self.supported = tuple(supported)
        self._T1 = T1
        self._T2 = T2
        self._mergeWindow = mergeWindow
        self.admission = admission
        self.sessionTimer = sessionTimer or SessionTimerSettings()
        self.dialogs = DialogTable()
        self.legs = set()
        self._unanswered = {}
        self._legsByKey = {}
        self._legsByTransaction = {}
        self._recent = {}
        if transactionLayer is not None:
            self.setTransactionLayer(transactionLayer)

    # -- wiring and helpers used by the legs -------------------------------

    def setTransactionLayer(self, transactionLayer):
        """Name the transaction layer this TU sends through."""
        self.transactionLayer = transactionLayer

    @property
    def T1(self):
        """RFC 3261 T1, seconds."""
        if self._T1 is not None:
            return self._T1
        return self._timer("T1", 0.5)

    @property
    def T2(self):
        """RFC 3261 T2, seconds."""
        if self._T2 is not None:
            return self._T2
        return self._timer("T2", 4.0)

    def _timer(self, name, default):
        timers = getattr(self.transactionLayer, "timers", None)
        value = getattr(timers, name, None)
        return default if value is None else value

    def isReliable(self, address):
        """
        @param address: a transport L{Address} (or C{None}).
        @return: C{True} if messages to C{address} need no retransmission.
        """
        if address is None:
            return False
        isReliable = getattr(self.transportLayer, "isReliable", None)
        if isReliable is not None:
            return bool(isReliable(address))
        return getattr(address, "transport", "UDP").upper() != "UDP"

    def localContact(self, source=None, secure=False):
        """
        Our Contact for a dialog (RFC 3261 §12.1.1): the transport layer's
        public or listening address for the transport C{source} came on
        (C{;transport=tcp|tls} for streams; C{sips:} for a secure dialog).

        @param source: the transport L{Address} of the peer, or C{None} (UDP).
        @param secure: C{True} for a SIPS dialog.
        @return: a L{NameAddr}.
        """
        transport = (getattr(source, "transport", None) or "UDP").upper()
        uri = self.transportLayer.localContactURI(transport)
        if secure:
            params = {k: v for k, v in (uri.params or {}).items() if k != "transport"}
            uri = SIPURI(scheme="sips", user=uri.user, host=uri.host, port=uri.port,
                         params=params)
        return NameAddr(uri)

    def destinationFor(self, uri):
        """
        Where to send a request whose next hop is C{uri} (RFC 3263
        simplified: no DNS SRV; C{maddr}, C{transport} and the port are
        honoured; a name is left to the transport layer).

        @param uri: a L{SIPURI}.
        @return: a L{linkrtc.sip.transport.Address}.
        """
        from linkrtc.sip.transport import Address

        params = getattr(uri, "params", None) or {}
        secure = getattr(uri, "scheme", "sip") == "sips"
        transport = (params.get("transport") or ("tls" if secure else "udp")).upper()
        host = params.get("maddr") or uri.host
        if host.startswith("[") and host.endswith("]"):
            host = host[1:-1]
        port = uri.port or (5061 if transport == "TLS" else 5060)
        return Address(transport, host, port)

    def makeResponse(
        self, request, status, reason=None, toTag=None, body=None, contentType=None, headers=()
    ):
        """
        Build a response to C{request} (RFC 3261 §8.2.6) with our Server
        header.

        @param toTag: the To tag to add if the request's To has none.
        @param headers: extra C{(name, value)} pairs.
        @return: a L{Response}.
        """
        response = request.createResponse(status, reason, toTag=toTag)
        # (add, not set: createResponse copies no Server; no scan for one)
        response.headers.add("Server", self.userAgentName)
        for name, value in headers:
            response.headers.add(name, value)
        if body:
            response.body = bytes(body)
            response.headers.set("Content-Type", contentType or "application/sdp")
        return response

    def respond(self, transaction, request, status, reason=None, headers=(), body=None,
                contentType=None, toTag=None, once=False):
        """
        Answer C{request} on its server transaction. A request outside a
        dialog with no To tag gets a fresh tag on anything but 100
        (§8.2.6.2). With C{once}, a final response is sent once, without
        Timer G retransmissions (admission refusals: no amplification).

        @return: the L{Response} sent, or C{None} if there is no transaction.
        """
        if toTag is None and status != 100:
            try:
                hasTag = bool(request.toAddr.tag)
            except SIPParseError:
                hasTag = True
            if not hasTag:
                toTag = newTag()
        response = self.makeResponse(request, status, reason, toTag, body, contentType, headers)
        if transaction is None:
            log.warn(
                "no server transaction to send {status} for {method}",
                status=status,
                method=request.method,
            )
            return None
        respondOnce = getattr(transaction, "respondOnce", None) if once else None
        if respondOnce is not None:
            respondOnce(response)
        else:
            transaction.respond(response)
        return response

    def retransmitResponse(self, transaction, response):
        """
        Send a 2xx to INVITE again (RFC 6026 §8.1: the TU retransmits it;
        the transaction in its Accepted state passes it to the transport;
        once the transaction is gone, straight to the transport).
        """
        try:
            if getattr(transaction, "state", None) == "terminated":
                d = self.transportLayer.sendResponse(response, transaction.source)
            else:
                d = transaction.respond(response)
        except Exception:
            log.failure("2xx retransmission failed")
            return
        if isinstance(d, defer.Deferred):
            d.addErrback(lambda f: log.info("2xx retransmission failed: {f}", f=f.value))

    def _addVia(self, request, destination, branch=None):
        """
        Put our Via on top of C{request} (RFC 3261 §8.1.1.7), from the
        transport layer's address for C{destination}'s transport.
        """
        from linkrtc.sip.transaction import newBranch

        transport = getattr(destination, "transport", "UDP")
        via = self.transportLayer.localVia(transport, branch or newBranch())
        request.headers.addFirst("Via", str(via))

    def sendRequest(self, request, destination, provisional=None):
        """
        Send a request on a new client transaction, with our Via on top
        and our User-Agent.

        @param destination: an L{Address} (the next hop, see
            L{destinationFor}).
        @param provisional: called with each 1xx response, or C{None}.
        @return: a L{Deferred} firing with the final L{Response} or failing
            with L{TransactionTimeout} / L{TransportError}.
        """
        listener = _ClientTransactionListener(provisional)
        if not request.headers.get("User-Agent"):
            request.headers.set("User-Agent", self.userAgentName)
        try:
            self._addVia(request, destination)
            self.transactionLayer.sendRequest(request, destination, listener)
        except Exception as e:
            log.failure("sending {method} failed", method=request.method)
            if not listener.deferred.called:
                listener.deferred.errback(TransportError(str(e)))
        return listener.deferred

    def sendAck(self, ack, destination):
        """
        Send an ACK for a 2xx (RFC 3261 §13.2.2.4): no transaction, straight
        to the transport, with a Via of its own (new branch) the first time.
        Failures are logged.
        """
        try:
            if not ack.headers.get("Via"):
                self._addVia(ack, destination)
            if not ack.headers.get("User-Agent"):
                ack.headers.set("User-Agent", self.userAgentName)
            d = self.transportLayer.sendRequest(ack, destination)
        except Exception:
            log.failure("sending ACK failed")
            return
        if isinstance(d, defer.Deferred):
            d.addErrback(lambda f: log.info("ACK not sent: {f}", f=f.value))

    # -- leg bookkeeping -----------------------------------------------------

    def _legKey(self, callId, localTag, remoteTag):
        return (callId, localTag, remoteTag or "")

    def registerDialog(self, dialog, leg):
        """Record a confirmed dialog and the leg that owns it."""
        self.dialogs.add(dialog, leg)
        self._answered(leg)

    def unregisterDialog(self, dialog):
        """Forget a dialog (after BYE, or when the leg ends)."""
        self.dialogs.remove(dialog.id)

    def watchTransaction(self, transaction, leg):
        """Let a CANCEL of C{transaction} (a re-INVITE) reach C{leg}."""
        self._legsByTransaction[id(transaction)] = leg

    def unwatchTransaction(self, transaction):
        """Undo L{watchTransaction}."""
        self._legsByTransaction.pop(id(transaction), None)

    def legEnded(self, leg):
        """
        Forget a leg and its dialog: no references to it remain here.
        """
        self.legs.discard(leg)
        self._answered(leg)
        self._legsByTransaction.pop(id(leg.transaction), None)
        self._legsByKey.pop(
            self._legKey(leg.callId, leg.localTag, leg.remoteTag), None
        )
        if leg.dialog is not None:
            self.unregisterDialog(leg.dialog)

    # -- the TU interface of the transaction layer -------------------------

    def requestReceived(self, request, serverTransaction):
        """
        A request matching no transaction (RFC 3261 §8.2): check it, answer
        it or pass it up. Never raises.

        @param request: a L{Request}.
        @param serverTransaction: its new server transaction, or C{None}
            for an ACK matching no transaction (the ACK for a 2xx).
        """
        try:
            self._requestReceived(request, serverTransaction)
        except SIPParseError as e:
            log.info("bad request {method}: {reason}", method=request.method, reason=e.reason)
            if request.method != "ACK" and serverTransaction is not None:
                try:
                    self.respond(serverTransaction, request, e.status or 400, e.reason)
                except Exception:
                    log.failure("could not answer a bad request")
        except Exception:
            log.failure("error handling {method}", method=getattr(request, "method", "?"))
            if getattr(request, "method", "ACK") != "ACK" and serverTransaction is not None:
                try:
                    self.respond(serverTransaction, request, 500)
                except Exception:
                    log.failure("could not answer 500")

    def transportFailed(self, serverTransaction, reason):
        """
        A response could not be sent (RFC 3261 §17.2.4): the leg of that
        INVITE (if any) ends and its listener hears C{legTerminated}.
        """
        leg = self._legForTransaction(serverTransaction)
        if leg is not None:
            leg.transportFailed(reason)

    def transactionTimedOut(self, serverTransaction):
        """Timer H: no ACK for a 3xx-6xx; the leg has already ended."""
        log.debug("no ACK for a final response ({tx})", tx=serverTransaction)

    def responseReceived(self, response):
        """
        A response matching no client transaction: a 2xx retransmission to
        an INVITE whose transaction has ended (RFC 6026). Passed to the
        dialog's leg (which sends the ACK again); others are dropped.
        """
        try:
            dialogId = DialogTable.idForResponse(response)
        except SIPParseError:
            return
        leg = self.dialogs.get(dialogId)
        if leg is not None:
            leg.strayResponse(response)
        else:
            log.debug("stray response {status} dropped", status=response.status)

    def _requestReceived(self, request, tx):
        method = request.method
        if method == "ACK":
            self._ackReceived(request)
            return

        # §8.2.1 Method inspection.
        if method not in self.allow:
            status = 405 if method in KNOWN_UNSUPPORTED else 501
            self.respond(tx, request, status, headers=[("Allow", ", ".join(self.allow))])
            return

        # §8.2.2.1 Request-URI.
        if request.uriScheme not in URI_SCHEMES:
            self.respond(tx, request, 416)
            return

        toTag = request.toAddr.tag

        # §8.2.2.2 Merged requests.
        if not toTag and method != "CANCEL" and self._isMerged(request):
            self.respond(tx, request, 482)
            return

        # §8.2.2.3 Require.
        if method != "CANCEL":
            unsupported = [
                tag
                for tag in _tokens(request.headers, "Require")
                if tag.lower() not in [s.lower() for s in self.supported]
            ]
            if unsupported:
                self.respond(
                    tx, request, 420, headers=[("Unsupported", ", ".join(unsupported))]
                )
                return

        if method == "CANCEL":
            self._cancelReceived(request, tx)
            return

        # RFC 3261 §10.3 REGISTER, RFC 3428 MESSAGE: the registrar's.
        if method in ("REGISTER", "MESSAGE") and not toTag and self.registrar is not None:
            self._registrarRequest(request, tx)
            return

        # §8.2.3 Content processing.
        status, headers = self._checkContent(request)
        if status is not None:
            self.respond(tx, request, status, headers=headers)
            return

        # §8.2.6 / §20.1: we answer INVITE and UPDATE with SDP.
        if method in ("INVITE", "UPDATE") and not self._acceptsSDP(request):
            self.respond(tx, request, 406, headers=[("Accept", ", ".join(self.accept))])
            return

        if toTag:
            self._inDialogRequest(request, tx)
            return

        if method in ("INVITE", "OPTIONS") and self.admission is not None:
            if method == "INVITE":
                host = getattr(tx.source, "host", None)
                refusal = self.admission.refusal(calls=self._callCount(),
                                                 ringing=self._ringingFrom(host), source=host)
            else:
                refusal = self.admission.refusal()
            if refusal is not None:
                status, reason, headers = refusal
                self.respond(tx, request, status, reason, headers=headers, once=True)
                return

        if method == "OPTIONS":
            self.respond(tx, request, 200, headers=self.capabilities())
        elif method == "INVITE":
            # a Contact or Record-Route the dialog could not use: 400 before it rings
            checkDialogRequest(request)
            if self.registrar is not None and not self.registrar.inviteAllowed(
                    request, getattr(tx, "source", None), self._responder(request, tx)):
                return
            self._newInvite(request, tx)
        elif method in _DIALOG_ONLY:
            self.respond(tx, request, 481)
        elif method == "REFER":
            # RFC 3515 allows a REFER outside a dialog; we transfer calls only.
            self.respond(tx, request, 403, "REFER Outside A Dialog")
        else:
            self.respond(tx, request, 405, headers=[("Allow", ", ".join(self.allow))])

    def _callCount(self):
        """
        @return: the calls live now (C{int}): the invite handler's C{calls}
            (the call manager's, every kind of call) if it has them, else
            our incoming INVITE legs.
        """
        calls = getattr(self.inviteHandler, "calls", None)
        return len(calls if calls is not None else self.legs)

    def _ringingFrom(self, host):
        """
        @return: our incoming legs from C{host} without a final response (C{int}).
            Fast path: O(1) from C{_unanswered} (no scan of every live leg).
        """
        return len(self._unanswered.get(host, ()))

    def _answered(self, leg):
        """Drop C{leg} from C{_unanswered}: its 2xx registered a dialog, or it ended."""
        host = getattr(getattr(getattr(leg, "transaction", None), "source", None), "host", None)
        unanswered = self._unanswered.get(host)
        if unanswered is not None:
            unanswered.discard(leg)
            if not unanswered:
                del self._unanswered[host]

    def _responder(self, request, tx):
        """@return: C{respond(status, reason=None, headers=())} answering C{request}."""

        def respond(status, reason=None, headers=()):
            return self.respond(tx, request, status, reason, headers=headers)

        return respond

    def _registrarRequest(self, request, tx):
        """Hand a REGISTER or MESSAGE to the registrar with its source and a responder."""
        source = getattr(tx, "source", None)
        respond = self._responder(request, tx)
        if request.method == "REGISTER":
            self.registrar.registerReceived(request, source, respond)
        else:
            self.registrar.messageReceived(request, source, respond)

    def capabilities(self):
        """
        @return: the C{(name, value)} headers that describe us (OPTIONS
            answer, RFC 3261 §11.2): Allow, Accept, Accept-Encoding,
            Accept-Language and Supported.
        """
        headers = [
            ("Allow", ", ".join(self.allow)),
            ("Accept", ", ".join(self.accept)),
            ("Accept-Encoding", "identity"),
            ("Accept-Language", "en"),
        ]
        headers.append(("Supported", ", ".join(self.supported)))
        return headers

    def _isMerged(self, request):
        """
        RFC 3261 §8.2.2.2: a request without To tag whose From tag, Call-ID
        and CSeq match a request we saw recently on another branch is a
        merged request (it forked and came back by two paths).

        @return: C{True} if the request must be answered 482.
        """
        fromTag = request.fromAddr.tag
        if not fromTag:
            return False
        via = request.topVia
        branch = via.branch if via is not None else None
        sentBy = (via.host, via.port) if via is not None else None
        cseq = request.cseq
        key = (fromTag, request.callId, cseq.number, cseq.method)
        now = self.clock.seconds()
        window = self._mergeWindow if self._mergeWindow is not None else 64 * self.T1
        # Forget what is older than the window; entries are in time order.
        recent = self._recent
        while recent:
            oldest = next(iter(recent))
            if recent[oldest][1] + window > now:
                break
            del recent[oldest]
        seen = recent.get(key)
        if seen is not None:
            return seen[0] != (branch, sentBy)
        recent[key] = ((branch, sentBy), now)
        if len(recent) > MAX_MERGE_MEMORY:
            # a flood of new requests: forget the oldest (bounded memory)
            del recent[next(iter(recent))]
        return False

    def stop(self):
        """Forget the merged-request memory (shutdown and tests)."""
        self._recent.clear()

    def _checkContent(self, request):
        """RFC 3261 §8.2.3; see L{linkrtc.sip.content.checkContent}."""
        return checkContent(request, self.accept)

    def _acceptsSDP(self, request):
        """RFC 3261 §20.1; see L{linkrtc.sip.content.acceptsSDP}."""
        return acceptsSDP(request)

    # -- dispatch ------------------------------------------------------------

    def _ackReceived(self, ack):
        """An ACK outside any transaction: the ACK for a 2xx (§13.3.1.4)."""
        try:
            dialogId = DialogTable.idForRequest(ack)
        except SIPParseError:
            return
        leg = self.dialogs.get(dialogId) or self._legsByKey.get(tuple(dialogId))
        if leg is None:
            log.debug("ACK matching no dialog dropped (Call-ID {callId})", callId=ack.callId)
            return
        leg.ackReceived(ack)

    def _cancelReceived(self, cancel, tx):
        """RFC 3261 §9.2: 200 to the CANCEL, then the leg is told."""
        find = getattr(self.transactionLayer, "findInviteForCancel", None)
        inviteTx = find(cancel) if find is not None else None
        if inviteTx is None:
            self.respond(tx, cancel, 481)
            return
        leg = self._legForTransaction(inviteTx)
        toTag = leg.localTag if leg is not None else None
        self.respond(tx, cancel, 200, toTag=toTag)
        if leg is not None:
            leg.cancelReceived(cancel)

    def _legForTransaction(self, transaction):
        return self._legsByTransaction.get(id(transaction))

    def _inDialogRequest(self, request, tx):
        """RFC 3261 §12.2.2: a request with a To tag."""
        dialogId = DialogTable.idForRequest(request)
        leg = self.dialogs.get(dialogId)
        if leg is None:
            leg = self._legsByKey.get(tuple(dialogId))
            if leg is not None and leg.dialog is None:
                leg.earlyRequestReceived(request, tx)
                return
            self.respond(tx, request, 481)
            return
        dialog = self.dialogs.getDialog(dialogId)
        if not dialog.checkRemoteCSeq(request):
            self.respond(tx, request, 500, "Out of Order CSeq")
            return
        if request.method == "OPTIONS":
            self.respond(tx, request, 200, headers=self.capabilities())
            return
        if request.method in ("INVITE", "UPDATE"):
            checkTargetRefresh(request)
        leg.requestReceived(request, tx)

    def _newInvite(self, request, tx):
        """A dialog-creating INVITE: 100 Trying, a new leg, the handler."""
        from linkrtc.sip.invite import InviteServerLeg

        minSE = tooSmall(request, self.sessionTimer)
        if minSE is not None:  # RFC 4028 §9
            self.respond(tx, request, 422, headers=[("Min-SE", str(minSE))])
            return
        replaced = None
        if request.headers.get("Replaces") is not None:
            # RFC 3891 §3: the call whose dialog it names takes the new leg
            replaced = replacedLeg(self.dialogs, request)
            if replaced is None:
                self.respond(tx, request, 481)
                return
        self.respond(tx, request, 100)
        leg = InviteServerLeg(self, request, tx, self.clock)
        self.legs.add(leg)
        self._unanswered.setdefault(getattr(tx.source, "host", None), set()).add(leg)
        self._legsByTransaction[id(tx)] = leg
        self._legsByKey[self._legKey(leg.callId, leg.localTag, leg.remoteTag)] = leg
        try:
            if replaced is not None:
                replaced.listener.legReplaced(leg)
            else:
                self.inviteHandler.inviteReceived(leg)
        except Exception:
            log.failure("invite handler failed")
            if not leg.finalSent:
                leg.sendFinal(500)
