# -*- test-case-name: linkrtc.call.test.test_calls -*-
"""
The call manager: makes a L{Call} for each new INVITE, routes client
messages to the right call, and holds the calls by id.

L{buildCallManager} is what C{linkrtc.service} calls.
"""

from twisted.internet import defer
from twisted.internet.interfaces import IReactorCore, IReactorThreads
from twisted.logger import Logger
from zope.interface import implementer

from linkrtc.call.call import Call, CallServices
from linkrtc.call.cdr import CDRWriter
from linkrtc.call.events import ShutdownEvent
from linkrtc.call.transfer import Transfers
from linkrtc.interfaces import (
    IClientMessageHandler,
    IInviteHandler,
    IResumeHandler,
)
from linkrtc.logging import debugEnabled
from linkrtc.monitoring import countCall
from linkrtc.reference import Reference

log = Logger()

#: The client message types about an existing call.
CALL_MESSAGES = ("ringing", "accept", "reject", "hangup", "dtmf", "hold", "unhold", "transfer")


@implementer(IInviteHandler, IClientMessageHandler, IResumeHandler)
class CallManager:
    """
    Holds the live calls and routes events to them.

    @ivar calls: C{dict} of call id to L{Call} (live calls only; a call
        leaves it when it is released).
    @ivar machine: the L{linkrtc.call.machine.CallStateMachine}.
    @ivar services: the L{CallServices} given to every call.
    @ivar admission: the L{linkrtc.drain.Admission} saying whether new
        calls are taken, or C{None} (always taken).
    """

    def __init__(self, machine, services, admission=None, cluster=None, dialer=None,
                 webSocketPhones=None):
        self.machine = machine
        self.services = services
        self.admission = admission
        #: The L{linkrtc.cluster.redirect.ClusterRouter} that sends INVITEs
        #: for other nodes' clients on (C{--redis}), or C{None}.
        self.cluster = cluster
        self.calls = {}
        self._idleWaiters = []
        #: The L{linkrtc.call.outbound.OutboundDialer} for clients' C{call}
        #: messages, or C{None} (they then get C{error} 503).
        self.dialer = dialer
        #: The L{linkrtc.call.wsphones.WebSocketPhones} that take INVITEs
        #: arriving over SIP over WebSocket, or C{None}.
        self.webSocketPhones = webSocketPhones

    # -- IInviteHandler ------------------------------------------------------

    def inviteReceived(self, leg):
        """
        Make a call for C{leg} (in C{pending}) and start it; an INVITE
        from a phone registered over a WebSocket is that phone's client
        C{call} instead (L{linkrtc.call.wsphones}).

        @return: the new L{Call}, or C{None} when the WebSocket phones took
            it, or the cluster router (the callee is on another node, or the
            router is asking the cluster directory; L{linkrtc.cluster.redirect}).
        """
        if self.webSocketPhones is not None and self.webSocketPhones.takes(leg):
            return None
        if self.cluster is not None and self.cluster.takes(leg, self.startCall):
            return None
        return self.startCall(leg)

    def startCall(self, leg):
        """
        Make a call on this node for the INVITE of C{leg} and start it.

        @return: the new L{Call}.
        """
        call = Call(leg, self.machine, self.services, onRelease=self._released)
        self.calls[call.id] = call
        leg.setListener(call)
        if debugEnabled():
            log.debug("call {call_id}: INVITE from {from_uri} to {to_uri} (Call-ID {sip_call_id})",
                      call_id=call.id, from_uri=call.fromURI, to_uri=call.toURI,
                      sip_call_id=getattr(leg, "callId", None))
        call.start()
        return call

    def _released(self, call):
        self.calls.pop(call.id, None)
        countCall(call, self.services.mediaFactory)
        if not self.calls and self._idleWaiters:
            waiters, self._idleWaiters = self._idleWaiters, []
            for d in waiters:
                d.callback(None)

    def whenIdle(self):
        """
        @return: a L{Deferred} firing with C{None} once no call is live (at
            once if none is); for the drain (L{linkrtc.drain}).
        """
        if not self.calls:
            return defer.succeed(None)
        d = defer.Deferred()
        self._idleWaiters.append(d)
        return d

    # -- IClientMessageHandler ---------------------------------------------------

    def clientMessageReceived(self, connection, message):
        """
        Route a validated client message to its call. An unknown call id, or
        a call this connection is not attached to, gets C{error} 404 (so one
        client cannot act on, or learn of, another's call).
        """
        kind = message.get("type")
        callId = message.get("call")
        if kind == "call":
            self.placeCall(connection, message)
            return
        if kind == "resume":
            self.resumeCall(connection, message)
            return
        if kind not in CALL_MESSAGES:
            self._error(connection, 400, f"message type {kind!r} not handled here", callId)
            return
        call = self.calls.get(callId) if isinstance(callId, str) else None
        if call is None or not call.involves(connection):
            self._error(connection, 404, "unknown call", callId)
            return
        call.clientMessage(connection, message)

    def placeCall(self, connection, message):
        """
        A client's C{call} (docs/signalling.rst): C{calling} with the new
        call's id at once, then the outbound topology runs. Without a
        dialer (no trunk) or in a media mode that cannot place calls the
        client gets C{error} (503 / 501) instead, and so does every client
        while LinkRTC drains (503, docs/operations.rst); so it does for a
        target the dial plan refuses (403 / 484) or a caller over its limits
        (429), and nothing is sent to a trunk (L{linkrtc.call.dialplan}).

        @return: the new L{linkrtc.call.outbound.OutboundCall} or C{None}.
        """
        if self.admission is not None and self.admission.draining:
            refused = (503, "LinkRTC is draining: no new calls")
        else:
            refused = (503, "outbound calls are not configured") if self.dialer is None \
                else self.dialer.refuse(message, connection)
        if refused is not None:
            reply = {"type": "error", "code": refused[0], "message": refused[1]}
            if message.get("ref") is not None:
                reply["ref"] = message["ref"]
            try:
                connection.sendMessage(reply)
            except Exception:
                log.failure("error reply to a client failed")
            return None
        call = self.dialer.placeCall(connection, message, self.services, onRelease=self._released)
        self.calls[call.id] = call
        log.info("call {call_id}: outbound from {client} to {to}", call_id=call.id,
                 client=call.clientName, to=call.target)
        reply = {"type": "calling", "call": call.id}
        if call.ref is not None:
            reply["ref"] = call.ref
        call.sendClient(connection, reply)
        call.start()
        return call

    def clientLost(self, connection):
        """End or detach every call C{connection} is attached to."""
        for call in list(self.calls.values()):
            if call.involves(connection):
                call.clientLost(connection)

    def clientResumed(self, lost, connection):
        """
        C{connection} registered with the resume token of C{lost}: it may
        resume the calls waiting for C{lost} (or for a connection that had
        taken them over from C{lost} and was lost in its turn).

        @return: C{list} of C{{"call", "state", "direction"}} C{dict}s.
        """
        waiting = []
        for call in list(self.calls.values()):
            if call.lostClient is not None and lost in (call.lostClient, call.heir):
                call.heir = connection
                waiting.append({"call": call.id, "state": call.publishedState(),
                                "direction": call.direction})
        return waiting

    def resumeCall(self, connection, message):
        """
        A client's C{resume} (docs/signalling.rst): hand it to its call when
        this connection may resume that call. Refused with C{error}: 501 in
        a media mode that cannot move a call's media (passthrough); 404
        (C{field} C{resume}) for an unknown call, one of another client or
        one not waiting to be resumed; 409 when this connection has resumed
        it already, or a resume of it is under way.
        """
        callId = message.get("call")
        if getattr(self.services.mediaFactory, "name", None) == "passthrough":
            self._error(connection, 501, "resuming a call needs --media bridge "
                        "(in passthrough the call's media cannot move)", callId, "resume")
            return
        call = self.calls.get(callId)
        if call is not None and call.involves(connection):
            self._error(connection, 409, "call already resumed", callId, "call")
            return
        if call is None or call.heir is not connection or call.lostClient is None:
            self._error(connection, 404, "no call to resume", callId, "resume")
            return
        call.clientMessage(connection, message)

    def _error(self, connection, code, text, callId, field=None):
        try:
            message = {"type": "error", "code": code, "message": text, "call": callId}
            if field is not None:
                message["field"] = field
            connection.sendMessage(message)
        except Exception:
            log.failure("error reply to a client failed")

    # -- lookups and shutdown ------------------------------------------------------

    def getCall(self, callId):
        """@return: the live L{Call} with id C{callId}, or C{None}."""
        return self.calls.get(callId)

    def closeAll(self):
        """
        End every live call (503 before answer, BYE after).

        @return: a L{Deferred} firing once every call is released.
        """
        waits = []
        for call in list(self.calls.values()):
            waits.append(call.whenReleased())
            call.dispatch(ShutdownEvent())
        return defer.DeferredList(waits, consumeErrors=True)


def buildCallManager(reactor, directory, application, mediaFactory, ringTimeout=60.0,
                     operators=(), cdrPath=None, admission=None, callControl=None,
                     resumeSeconds=0.0, sipPhones=None, maxForks=10, cluster=None,
                     dialer=None, webSocketPhones=None):
    """
    Build the call engine.

    @param reactor: an C{IReactorTime} (the reactor, or a C{task.Clock}).
    @param directory: the L{linkrtc.interfaces.IClientDirectory}.
    @param application: the L{linkrtc.interfaces.IApplication}.
    @param mediaFactory: the L{linkrtc.interfaces.IMediaFactory}
        (L{linkrtc.call.passthrough.PassthroughMediaFactory} or the bridge).
    @param ringTimeout: seconds a call may ring before 480 (C{float}).
    @param operators: C{"NAME[:ARG]"} operator plugin specs to add.
    @param cdrPath: file to append CDR JSON lines to, or C{None}
        (L{buildCDRWriter}).
    @param admission: the L{linkrtc.drain.Admission}, or C{None}.
    @param callControl: the call-control API (L{linkrtc.app.control.CallControl})
        or C{None}.
    @param resumeSeconds: seconds an answered call waits for its client
        to come back after its connection closed (C{--resume-seconds});
        0 ends the call at once.
    @param sipPhones: the L{linkrtc.call.sipphones.PhoneRinger}, or C{None}.
    @param maxForks: devices one incoming call rings at most (C{max-forks}).
    @param cluster: the L{linkrtc.cluster.redirect.ClusterRouter} (with
        C{--redis}) or C{None}.
    @param dialer: the L{linkrtc.call.dialer.OutboundDialer} or C{None}.
    @param webSocketPhones: the L{linkrtc.call.wsphones.WebSocketPhones} or C{None}.
    @return: a L{CallManager} (the L{IInviteHandler} for the SIP user agent
        and the L{IClientMessageHandler} for signalling).
    @raise linkrtc.error.OperatorConfigError: for a bad operator spec
        (unknown name or state): at start-up.
    """
    from linkrtc.call.registry import buildMachine

    machine = buildMachine(operators)
    # Call transfer (REFER, Replaces, the client's transfer;
    # linkrtc.call.transfer) works on the manager built below: it is given
    # a reference bound to it once built.
    engine = Reference("the call engine")
    services = CallServices(reactor, directory, application, mediaFactory,
                            buildCDRWriter(reactor, cdrPath), ringTimeout=float(ringTimeout),
                            callControl=callControl, resumeSeconds=float(resumeSeconds),
                            sipPhones=sipPhones, maxForks=maxForks,
                            transfers=Transfers(engine))
    manager = CallManager(machine, services, admission=admission, cluster=cluster,
                          dialer=dialer, webSocketPhones=webSocketPhones)
    engine.bind(manager)
    return manager


def buildCDRWriter(reactor, path):
    """
    The CDR writer of the call engine: with a reactor that has threads, the
    file is written in its thread pool, and what is still queued when the
    reactor has stopped (its thread pool gone) is written after shutdown.

    @param reactor: the reactor, or a C{task.Clock} (then the file is
        written in the caller's thread).
    @param path: the C{--cdr} file or C{None}.
    @return: a L{CDRWriter}.
    """
    threads = reactor if IReactorThreads.providedBy(reactor) else None
    writer = CDRWriter(path, threads=threads)
    if path is not None and threads is not None and IReactorCore.providedBy(reactor):
        reactor.addSystemEventTrigger("after", "shutdown", writer.close)
    return writer
