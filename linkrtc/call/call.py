# -*- test-case-name: linkrtc.call.test.test_calls,linkrtc.call.test.test_fired -*-
"""
One call: its SIP leg, its clients, its media session, timers, timestamps,
CDR and state. Operators act on a call only through this object and the
services it holds; there are no globals.

A call processes one event at a time: an event that arrives while another
is being processed (for example the result of a Deferred that fired at once)
is queued and processed next, in arrival order.
"""

import uuid

from twisted.internet import defer
from twisted.logger import Logger
from twisted.python.failure import Failure
from zope.interface import implementer

from linkrtc.call.cdr import RECORD_END, RECORD_START
from linkrtc.call.events import (
    ApiCommandEvent,
    ApplicationDecisionEvent,
    ClientLostEvent,
    ClientMessageEvent,
    InviteEvent,
    LegReplacedEvent,
    MediaDigitsEvent,
    MediaResultEvent,
    MediaTimeoutEvent,
    SIPAckTimeoutEvent,
    SIPCancelEvent,
    SIPLegTerminatedEvent,
    SIPRequestEvent,
    TimerEvent,
)
from linkrtc.call.fork import deviceName
from linkrtc.call.states import apiStateName
from linkrtc.error import ApiError
from linkrtc.interfaces import IMediaListener, ISIPLegListener
from linkrtc.sip.redact import redactHeader

log = Logger()

#: What L{firedResult} gives for a Deferred whose result is not there yet.
_PENDING = object()


def firedResult(d):
    """
    The result of C{d} if it has fired with one (not a failure) and has no
    callbacks left to run, for a synchronous fast path; the caller then
    consumes it (sets C{d.result} as its callbacks would have left it).

    Only public L{defer.Deferred} API: a callback added to a Deferred that
    has fired (and is not paused, waiting on another) runs at once, so one
    that runs before C{addBoth} returns takes the result; added to a
    Deferred still waiting, it passes the result on untouched. (Reading
    C{d.callbacks}, as this did, warns: deprecated since Twisted 25.5, and
    a warning per call cost more than the Deferred round trip it saved.)

    @param d: a L{defer.Deferred}.
    @return: the result, or C{_PENDING} if C{d} must be waited on (it
        has not fired, or has failed: its failure is left to the caller's
        errbacks).
    """
    taken = []

    def take(result):
        if taken is not None and not isinstance(result, Failure):
            taken.append(result)
            return None
        return result

    d.addBoth(take)
    if not taken:
        taken = None  # from now on the callback passes results through
        return _PENDING
    return taken[0]

#: The SIP actions an ending may ask for (see L{Ending}).
SIP_AUTO = "auto"
SIP_FINAL = "final"
SIP_BYE = "bye"
SIP_NONE = None


class Ending:
    """
    Why and how a call ends; set once, by the operator that ends it.

    @ivar cause: C{int} SIP status for the CDR and the C{dropped} messages
        (200 normal end, 487 cancelled, 480, 486, 603, 403, 408 ...).
    @ivar reason: words, C{str}.
    @ivar droppedBy: C{"usr"} (a user hung up, rejected or cancelled) or
        C{"sys"} (LinkRTC, the application, a timeout or a failure).
    @ivar sip: what to do on the SIP side: C{"auto"} (the final response
        C{cause} before a 2xx was sent, BYE after), C{"final"}, C{"bye"}
        or C{None} (nothing: the SIP side already ended it).
    """

    __slots__ = ("cause", "reason", "droppedBy", "sip")

    def __init__(self, cause, reason, droppedBy="sys", sip=SIP_AUTO):
        self.cause = cause
        self.reason = reason
        self.droppedBy = droppedBy
        self.sip = sip

    def __repr__(self):
        return f"<Ending {self.cause} {self.reason!r} by {self.droppedBy} sip={self.sip}>"


class CallServices:
    """
    What a call may use, given by the L{linkrtc.call.manager.CallManager}.

    @ivar clock: an C{IReactorTime}; timestamps are its C{seconds()}.
    @ivar directory: the L{linkrtc.interfaces.IClientDirectory}.
    @ivar application: the L{linkrtc.interfaces.IApplication}.
    @ivar mediaFactory: the L{linkrtc.interfaces.IMediaFactory}.
    @ivar cdrWriter: a L{linkrtc.call.cdr.CDRWriter}.
    @ivar ringTimeout: seconds a call may ring before 480, C{float}.
    @ivar callControl: the call-control API's engine side
        (L{linkrtc.app.control.CallControl}) or C{None} when none is set up.
    @ivar resumeSeconds: seconds an answered call waits for its client to
        come back after its connection closed (docs/signalling.rst); 0
        ends it at once, C{float}.
    @ivar sipPhones: the L{linkrtc.call.sipphones.PhoneRinger} that makes
        the branches to registered SIP phones, or C{None} (none rung).
    @ivar maxForks: devices one incoming call rings at most (C{int},
        C{max-forks}; L{linkrtc.call.fork}).
    @ivar transfers: the L{linkrtc.call.transfer.Transfers} of the call
        manager, or C{None} (REFER then gets 501).
    """

    def __init__(self, clock, directory, application, mediaFactory, cdrWriter, ringTimeout=60.0,
                 callControl=None, resumeSeconds=0.0, sipPhones=None, maxForks=10,
                 transfers=None):
        self.sipPhones = sipPhones
        self.maxForks = maxForks
        self.callControl = callControl
        self.resumeSeconds = resumeSeconds
        self.clock = clock
        self.directory = directory
        self.application = application
        self.mediaFactory = mediaFactory
        self.cdrWriter = cdrWriter
        self.ringTimeout = ringTimeout
        self.transfers = transfers


def _uriText(addr):
    uri = getattr(addr, "uri", addr)
    return str(uri) if uri is not None else None


class _URIText:
    """
    C{str()} of a URI, remembered while the URI object stays the same (the
    From and To URIs of a call go into every notification and the CDR).
    """

    __slots__ = ("_uri", "_text")

    def __init__(self):
        self._uri = self._text = None

    def of(self, addr):
        uri = getattr(addr, "uri", addr)
        if uri is None:
            return None
        if uri is not self._uri:
            self._text = str(uri)
            self._uri = uri
        return self._text


def _uriUser(uri):
    user = getattr(uri, "user", None)
    if user is None:
        user = getattr(uri, "number", None)
    return user


@implementer(ISIPLegListener, IMediaListener)
class Call:
    """
    One incoming call (SIP -> client).

    @cvar direction: the CDR's C{call_dir}: C{"inbound"} (seed 001's value).

    @ivar id: the call's id (C{str}, uuid4 hex), used in client messages,
        webhooks and logs; also the CDR's C{res_id}.
    @ivar leg: the L{linkrtc.interfaces.ISIPServerLeg}.
    @ivar request: the INVITE.
    @ivar state: the current L{linkrtc.call.state.State}.
    @ivar media: the call's L{linkrtc.interfaces.IMediaSession}.
    @ivar clientName: the client the application chose, C{str} or C{None}.
    @ivar connections: the client connections attached to the call (those
        ringing; after an accept, only the one that answered). Only these
        may send messages about the call.
    @ivar offered: the connections the call was routed to (all of them, for
        the record).
    @ivar answerer: the connection that accepted, or C{None}.
    @ivar sipOffer: the INVITE's SDP (C{bytes}) or C{None} (offerless).
    @ivar localSdp: the SDP of our 2xx (C{bytes}) once sent.
    @ivar finalStatus: the final status sent to the INVITE, C{int} or C{None}.
    @ivar ringingSent: C{True} once 180 Ringing was sent.
    @ivar provisionalStatus: the SIP status that made the call C{ringing}
        when it is not our 180 (an outgoing call's first 180/183), else
        C{None}.
    @ivar acked: C{True} once the ACK for our 2xx arrived.
    @ivar held: C{True} while the call is on hold.
    @ivar localHold: C{True} while the client's hold holds the SIP side
        (our re-INVITE, bridge mode).
    @ivar pendingReinvite: the C{respond} of the SIP side's re-INVITE being
        answered, or C{None}.
    @ivar pendingHold: C{True}/C{False} while our re-INVITE for the
        client's hold/unhold is under way, else C{None}.
    @ivar beginTime, answerTime, endTime: clock seconds (C{float}) or C{None}.
    @ivar ending: the L{Ending}, once the call is ending.
    @ivar cdr: the CDR C{dict}, once written.
    @ivar trace: C{list} of L{linkrtc.call.machine.Transition}.
    @ivar history: C{list} of every event processed, in order (for replay).
    @ivar timers: C{dict} of timer name to C{IDelayedCall}.
    @ivar data: C{dict} free for plugins' own per-call state (key it by
        your operator's name).
    @ivar lostClient: the answering connection that closed while the call
        waits for its client to resume it, else C{None}.
    @ivar heir: the connection that registered with the resume token of
        L{lostClient} and so may resume the call, else C{None}.
    @ivar resuming: C{True} while the media rebuilds the client's leg.
    """

    direction = "inbound"

    def __init__(self, leg, machine, services, onRelease=None, callId=None):
        self.id = callId or uuid.uuid4().hex
        self.leg = leg
        self.machine = machine
        self.services = services
        self.clock = services.clock
        self._onRelease = onRelease
        self.request = leg.request
        self.state = None
        self.clientName = None
        self.connections = []
        self.offered = []
        self.answerer = None
        body = getattr(self.request, "body", b"") or b""
        self.sipOffer = body if body else None
        self.localSdp = None
        self.finalStatus = None
        self.ringingSent = False
        self.provisionalStatus = None
        self.acked = False
        self.held = False
        self.pendingReinvite = None
        self.pendingHold = None
        self.localHold = False
        self.beginTime = self.now()
        self.answerTime = None
        self.endTime = None
        self.ending = None
        self.cdr = None
        self.trace = []
        self.history = []
        self.timers = {}
        self.data = {}
        self.lostClient = None
        self.heir = None
        self.resuming = False
        #: The call-control API resource (L{linkrtc.app.control.Resource})
        #: while an application controls the call, else C{None}.
        self.api = None
        self.released = False
        self._releaseWaiters = []
        self._queue = []
        self._busy = False
        self._after = []
        self._fromText = _URIText()
        self._toText = _URIText()
        self.media = services.mediaFactory.newSession(self.id, self)

    def __repr__(self):
        return f"<Call {self.id} {self.state.name if self.state else None}>"

    # -- identity ------------------------------------------------------------

    @property
    def resId(self):
        """The CDR's C{res_id}: the call id."""
        return self.id

    @property
    def offerless(self):
        """C{True} if the INVITE carried no SDP offer."""
        return self.sipOffer is None

    @property
    def fromURI(self):
        """The From URI, C{str}."""
        return self._fromText.of(self.request.fromAddr)

    @property
    def toURI(self):
        """The To URI, C{str}."""
        return self._toText.of(self.request.toAddr)

    def incomingInfo(self):
        """
        @return: the C{incoming} event for L{linkrtc.interfaces.IApplication.incoming}:
            C{call}, C{from}, C{to}, C{caller} (From user), C{callee}
            (Request-URI user), C{uri} (Request-URI), C{headers} (list of
            C{[name, value]}; C{Authorization} / C{Proxy-Authorization}
            values redacted, L{linkrtc.sip.redact}).
        """
        headers = getattr(self.request, "headers", None)
        items = [[k, redactHeader(k, v)] for k, v in headers.items()] if headers is not None else []
        return {
            "event": "incoming",
            "call": self.id,
            "from": self.fromURI,
            "to": self.toURI,
            "caller": _uriUser(getattr(self.request.fromAddr, "uri", None)),
            "callee": _uriUser(self.request.uri),
            "uri": str(self.request.uri),
            "headers": items,
        }

    def now(self):
        """@return: the clock's current seconds (C{float})."""
        return self.clock.seconds()

    @property
    def isOver(self):
        """C{True} once the call is in its final state."""
        return self.state is not None and getattr(self.state, "final", False)

    # -- dispatch ------------------------------------------------------------

    def firstEvent(self):
        """@return: the event the call starts with: the INVITE."""
        return InviteEvent(self.request)

    def start(self):
        """Enter the initial state with the first event (L{firstEvent})."""
        event = self.firstEvent()
        self.history.append(event)
        self._busy = True
        try:
            self.machine.start(self, event)
        except Exception:
            self._failed(event)
        finally:
            self._busy = False
        self._runAfter()
        self._drain()

    def afterEvent(self, callback):
        """
        Call C{callback()} once the event being processed is done (its
        transition made), or now when none is; for telling the outside
        world what the event did (seed 001 events: an application that
        acts on one at once finds the call in its new state).
        """
        if self._busy:
            self._after.append(callback)
        else:
            callback()

    def _runAfter(self):
        while self._after and not self._busy:
            callback = self._after.pop(0)
            try:
                callback()
            except Exception:
                log.failure("call {call_id}: after-event callback failed", call_id=self.id)

    def dispatch(self, event):
        """
        Process C{event} now, or after the event being processed.

        Never raises: an operator's exception is logged and ends the call
        with 500.
        """
        self._queue.append(event)
        if not self._busy:
            self._drain()

    def _drain(self):
        while self._queue and not self._busy:
            event = self._queue.pop(0)
            self._busy = True
            try:
                self.history.append(event)
                try:
                    handled = self.machine.process(self, event)
                except Exception:
                    self._failed(event)
                    continue
                if not handled:
                    self._unhandled(event)
            finally:
                self._busy = False
            self._runAfter()
        self._runAfter()

    def _failed(self, event):
        log.failure("call {call_id}: processing {event_kind} failed",
                    call_id=self.id, event_kind=event.describe())
        if self.isOver or self.machine.finalState is None:
            return
        self.end(500, "internal error", "sys")
        try:
            self.machine.transition(self, self.machine.finalState, event, None)
        except Exception:
            log.failure("call {call_id}: could not end the call", call_id=self.id)

    def _unhandled(self, event):
        """Default answers for an event no operator took in this state."""
        if isinstance(event, ApiCommandEvent):
            event.refuse(ApiError.wrongState(event.method, apiStateName(self.state)))
        elif isinstance(event, ClientMessageEvent):
            self.sendError(event.connection, 409,
                           f"{event.type!r} not allowed in state {self.publishedState()}")
        elif isinstance(event, LegReplacedEvent):
            event.leg.sendFinal(481)
        elif isinstance(event, SIPRequestEvent) and event.respond is not None:
            try:
                if self.isOver:
                    event.respond(481)
                else:
                    event.respond(500, "Request Not Expected Now")
            except Exception:
                log.failure("call {call_id}: answering {event_kind} failed",
                            call_id=self.id, event_kind=event.describe())
        else:
            log.debug("call {call_id}: {event_kind} ignored in {state}",
                      call_id=self.id, event_kind=event.describe(), state=self.state.name)

    def recordTransition(self, transition):
        """Add C{transition} to the trace (called by the machine)."""
        self.trace.append(transition)

    def publishedState(self):
        """@return: the published name of the current state (or its own name)."""
        return getattr(self.state, "published", None) or self.state.name

    # -- answering and ending ------------------------------------------------------

    def answered(self):
        """
        The call is answered (our 200 OK went out, or the far end's 2xx
        came): set L{answerTime} and write the C{start} CDR (L{startCDR}),
        so that a process killed during the call leaves a record of it.
        Only the first call counts.
        """
        if self.answerTime is not None:
            return
        self.answerTime = self.now()
        try:
            self.services.cdrWriter.write(self.startCDR())
        except Exception:
            log.failure("call {call_id}: start CDR not written", call_id=self.id)

    # -- ending ----------------------------------------------------------------

    def end(self, cause, reason, droppedBy="sys", sip=SIP_AUTO):
        """
        Record why the call ends (the first call wins) and name the final
        state, so an operator can C{return call.end(486, "busy", "usr")}.

        @return: the final state's name.
        """
        if self.ending is None:
            self.ending = Ending(cause, reason, droppedBy, sip)
        return self.machine.finalState

    def release(self):
        """
        Free everything the call holds: timers, media session, its place in
        the manager; write its CDR and tell the application. Safe to call
        twice.

        @return: a L{Deferred} firing when the media session is closed.
        """
        if self.released:
            return self.whenReleased()
        self.released = True
        if self.ending is None:
            self.ending = Ending(500, "internal error", "sys", SIP_NONE)
        self.cancelTimers()
        self.endTime = self.now()
        try:
            mediaStats = self.media.stats()
        except Exception:
            log.failure("call {call_id}: media stats failed", call_id=self.id)
            mediaStats = {}
        self.cdr = self.buildCDR(mediaStats)
        try:
            self.services.cdrWriter.write(self.cdr)
        except Exception:
            log.failure("call {call_id}: CDR not written", call_id=self.id)
        self.notify(dict(self.cdr))
        if self._onRelease is not None:
            self._onRelease(self)
        d = defer.maybeDeferred(self.media.close)
        result = firedResult(d)
        if result is _PENDING:
            d.addErrback(lambda f: log.failure("call {call_id}: media close failed", f,
                                               call_id=self.id))
            d.addBoth(self._closed)
        else:
            # closed already: no Deferred round trip
            d.result = None
            try:
                self._closed(result)
            except Exception:
                d.result = Failure()
        return self.whenReleased()

    def _closed(self, _):
        waiters, self._releaseWaiters = self._releaseWaiters, None
        for w in waiters:
            w.callback(None)

    def whenReleased(self):
        """@return: a L{Deferred} firing once the call is released and its media closed."""
        if self._releaseWaiters is None:
            return defer.succeed(None)
        d = defer.Deferred()
        self._releaseWaiters.append(d)
        return d

    def buildCDR(self, mediaStats=None):
        """
        @return: the C{end} CDR C{dict} (webhook C{cdr} event, seed 001's
            C{on_released}): C{event} (C{"cdr"}), C{record} (C{"end"}),
            C{call}, C{res_id}, C{call_dir} (C{"inbound"} or
            C{"outbound"}), C{from_uri}, C{to_uri}, C{client},
            C{begin_time}, C{answer_time}, C{end_time} (clock seconds or
            C{None}), C{dropped_by}, C{cause}, C{reason}, C{media}, and
            C{device}: the device that answered (a SIP phone's contact
            URI, C{"ws:"} and a connection's peer), else C{None}
            (L{linkrtc.call.fork.deviceName}).
        """
        ending = self.ending
        return {
            "event": "cdr",
            "record": RECORD_END,
            "call": self.id,
            "res_id": self.resId,
            "call_dir": self.direction,
            "from_uri": self.fromURI,
            "to_uri": self.toURI,
            "client": self.clientName,
            "begin_time": self.beginTime,
            "answer_time": self.answerTime,
            "end_time": self.endTime,
            "dropped_by": ending.droppedBy if ending else "sys",
            "cause": ending.cause if ending else None,
            "reason": ending.reason if ending else None,
            "media": mediaStats or {},
            "device": deviceName(self.answerer),
            **({"transfer": dict(self.data["transfer"])} if "transfer" in self.data else {}),
        }

    def startCDR(self):
        """
        @return: the C{start} CDR C{dict}, written when the call is
            answered: the fields of L{buildCDR} known so far, with
            C{record} C{"start"} and C{end_time}, C{dropped_by}, C{cause},
            C{reason} C{None} and C{media} empty.
        """
        cdr = self.buildCDR()
        cdr.update(record=RECORD_START, end_time=None, dropped_by=None, cause=None,
                   reason=None, media={})
        return cdr

    # -- timers ----------------------------------------------------------------

    def startTimer(self, name, seconds):
        """
        (Re)start timer C{name}: after C{seconds} a L{TimerEvent} with that
        name is dispatched.
        """
        self.cancelTimer(name)
        self.timers[name] = self.clock.callLater(seconds, self._timerFired, name)

    def _timerFired(self, name):
        self.timers.pop(name, None)
        self.dispatch(TimerEvent(name))

    def cancelTimer(self, name):
        """Stop timer C{name} if it is running."""
        dc = self.timers.pop(name, None)
        if dc is not None and dc.active():
            dc.cancel()

    def cancelTimers(self):
        """Stop every timer of the call."""
        for name in list(self.timers):
            self.cancelTimer(name)

    # -- asynchronous results ------------------------------------------------------

    def whenDone(self, deferred, operation):
        """
        Turn C{deferred}'s outcome into a L{MediaResultEvent} named
        C{operation}, dispatched to this call (at once if it has fired).
        """
        result = firedResult(deferred)
        if result is not _PENDING:
            # it has fired: no Deferred round trip
            deferred.result = None
            try:
                self.dispatch(MediaResultEvent(operation, result=result))
            except Exception:
                log.failure("call {call_id}: {op} result", Failure(),
                            call_id=self.id, op=operation)
            return

        def ok(result):
            self.dispatch(MediaResultEvent(operation, result=result))

        def failed(f):
            self.dispatch(MediaResultEvent(operation, failure=f))

        deferred.addCallbacks(ok, failed)
        deferred.addErrback(lambda f: log.failure("call {call_id}: {op} result", f,
                                                  call_id=self.id, op=operation))

    def askApplication(self):
        """
        Ask the application who takes the call; its decision comes back as
        an L{ApplicationDecisionEvent} (a failure becomes C{reject} 503).
        """
        try:
            d = defer.maybeDeferred(self.services.application.incoming, self.incomingInfo())
        except Exception:
            d = defer.fail(Failure())
        decision = firedResult(d)
        if decision is not _PENDING:
            # decided at once: no Deferred round trip
            d.result = None
            try:
                self.dispatch(ApplicationDecisionEvent(decision))
            except Exception:
                log.failure("call {call_id}: decision", Failure(), call_id=self.id)
            return
        self._decisionLater(d)

    def _decisionLater(self, d):
        """
        Dispatch the application's decision once C{d} fires, as an
        L{ApplicationDecisionEvent}; a failed application counts as
        C{{"action": "reject", "status": 503}} (logged).

        @param d: a L{Deferred} of the decision (a C{dict}).
        """

        def failed(f):
            log.failure("call {call_id}: application failed", f, call_id=self.id)
            return {"action": "reject", "status": 503}

        d.addErrback(failed)
        d.addCallback(lambda decision: self.dispatch(ApplicationDecisionEvent(decision)))
        d.addErrback(lambda f: log.failure("call {call_id}: decision", f, call_id=self.id))

    # -- talking to the outside ------------------------------------------------------

    def sendClient(self, connection, message):
        """
        Send C{message} (a C{dict}; C{"call"} is added) to one connection.

        @return: C{True} if it was handed over, C{False} if the connection
            raised (it is then treated as gone).
        """
        message = dict(message)
        message.setdefault("call", self.id)
        try:
            connection.sendMessage(message)
        except Exception:
            log.failure("call {call_id}: sending {type} to a client failed",
                        call_id=self.id, type=message.get("type"))
            return False
        return True

    def tellClients(self, message, connections=None):
        """Send C{message} to C{connections} (default: every attached one)."""
        for connection in list(self.connections if connections is None else connections):
            self.sendClient(connection, message)

    def sendError(self, connection, code, text):
        """Send C{{"type": "error", "code": code, "message": text, "call": id}}."""
        self.sendClient(connection, {"type": "error", "code": code, "message": text})

    def notify(self, event):
        """Tell the application C{event} (a C{dict}); never raises."""
        try:
            self.services.application.notify(event)
        except Exception:
            log.failure("call {call_id}: application notify failed", call_id=self.id)

    def involves(self, connection):
        """@return: C{True} if C{connection} is attached to this call."""
        return any(c is connection for c in self.connections)

    def detach(self, connection):
        """Forget C{connection}: it no longer hears of, nor acts on, this call."""
        self.connections = [c for c in self.connections if c is not connection]

    def sendFinal(self, status, reason=None, body=None, contentType=None):
        """
        Send the INVITE's final response once (later calls are ignored).

        @return: C{True} if sent; C{False} if one was sent already, or if
            the leg could not build or send this one (logged; L{finalStatus}
            then stays C{None}, so another final response may be tried).
        """
        if self.finalStatus is not None:
            return False
        self.finalStatus = status
        try:
            self.leg.sendFinal(status, reason=reason, body=body, contentType=contentType)
        except Exception:
            log.failure("call {call_id}: sending {status} failed", call_id=self.id, status=status)
            self.finalStatus = None
            return False
        return True

    def sendBye(self):
        """End the confirmed dialog with BYE (RFC 3261 §15.1.1); failures are logged."""
        try:
            d = defer.maybeDeferred(self.leg.sendBye)
        except Exception:
            d = defer.fail(Failure())
        d.addErrback(lambda f: log.info("call {call_id}: BYE failed: {why}",
                                        call_id=self.id, why=f.getErrorMessage()))
        return d

    # -- ISIPLegListener ---------------------------------------------------------------

    def legCancelled(self, request):
        self.dispatch(SIPCancelEvent(request))

    def legAcknowledged(self, ack):
        self.dispatch(SIPRequestEvent(ack))

    def legAckTimeout(self):
        self.dispatch(SIPAckTimeoutEvent())

    def legRequestReceived(self, request, respond):
        self.dispatch(SIPRequestEvent(request, respond))

    def legTerminated(self, reason):
        self.dispatch(SIPLegTerminatedEvent(reason))

    def legReplaced(self, leg):
        """An INVITE with Replaces names this call's dialog (RFC 3891)."""
        leg.setListener(self)
        self.dispatch(LegReplacedEvent(leg))

    # -- IMediaListener ----------------------------------------------------------------

    def mediaDigits(self, digits):
        self.dispatch(MediaDigitsEvent(digits))

    def mediaTimeout(self):
        self.dispatch(MediaTimeoutEvent())

    # -- the manager's hooks ---------------------------------------------------------------

    def clientMessage(self, connection, message):
        """A validated client message about this call (the manager checked the connection)."""
        self.dispatch(ClientMessageEvent(connection, message))

    def clientLost(self, connection):
        """A connection attached to this call closed."""
        self.dispatch(ClientLostEvent(connection))
