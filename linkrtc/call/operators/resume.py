# -*- test-case-name: linkrtc.call.test.test_resume -*-
"""
Resuming an answered call after the client's connection closed (a page
reload): the call waits C{services.resumeSeconds} seconds for the client
to come back on a new connection with its resume token
(L{linkrtc.signalling.resume}) and pick the call up with a new offer
(C{{"type": "resume", "call": ID, "sdp": OFFER}}); the media session
rebuilds its WebRTC leg (L{linkrtc.interfaces.IResumableMediaSession})
while the SIP side of the call stays up. Docs: docs/signalling.rst,
"Resuming after a reload".

If the client does not come back in time the call ends as a lost client's
call always did: BYE, cause 480 "client connection lost".
"""

from twisted.internet import defer
from twisted.logger import Logger

from linkrtc.call.events import ClientMessageEvent, MediaResultEvent, TimerEvent
from linkrtc.call.operators.base import Operator
from linkrtc.call.states import CONFIRMED, DROPPED
from linkrtc.interfaces import IResumableMediaSession

log = Logger()

#: The name of the timer bounding the wait for the client.
RESUME_TIMER = "resume"

#: The L{MediaResultEvent} of the media's new WebRTC leg.
CLIENT_RESUMED = "clientResumed"


def awaitResume(call, connection):
    """
    The answering C{connection} of C{call} closed: make the call wait for
    its client if it can (an answered call, resuming enabled, a media
    session that rebuilds the client's leg). The SIP side stays up; the
    media session is told the client is gone.

    @return: C{True} if the call now waits, C{False} if it must end.
    """
    seconds = getattr(call.services, "resumeSeconds", 0) or 0
    if (seconds <= 0 or call.state.name != CONFIRMED
            or not IResumableMediaSession.providedBy(call.media)):
        return False
    call.lostClient = connection
    call.heir = None
    call.resuming = False
    call.startTimer(RESUME_TIMER, seconds)
    try:
        call.media.clientDetached()
    except Exception:
        log.failure("call {call_id}: detaching the client's media failed", call_id=call.id)
    log.info("call {call_id}: client {client} gone; waiting {seconds:g} s for it to resume",
             call_id=call.id, client=call.clientName, seconds=seconds)
    return True


class OpResumeTimeout(Operator):
    """
    C{confirmed}, when the resume timer fires: the client did not come
    back; BYE, cause 480 "client connection lost" (as without resuming).
    """

    name = "OpResumeTimeout"
    handles = (TimerEvent,)
    transitions = (DROPPED,)

    def process(self, call, event):
        if event.name != RESUME_TIMER:
            return None
        log.info("call {call_id}: client did not resume in time", call_id=call.id)
        return call.end(480, "client connection lost", "sys")


class OpClientResume(Operator):
    """
    C{confirmed}: the client's C{resume} (from the connection that
    registered with the lost connection's resume token; the manager
    checked). The media answers the new offer; the client gets
    C{{"type": "answer", "call", "sdp"}} and then C{state} C{confirmed}
    (and C{hold} when the call is held), and is the call's answerer again.
    An offer the media refuses gets C{error} 488 (C{field} C{sdp}); the
    call keeps waiting until the resume timer ends it. A C{resume} while
    one is under way gets 409.
    """

    name = "OpClientResume"
    handles = (ClientMessageEvent, MediaResultEvent)
    transitions = (CONFIRMED,)

    def process(self, call, event):
        if isinstance(event, MediaResultEvent):
            if event.operation != CLIENT_RESUMED:
                return None
            return self.resumed(call, event)
        if event.type != "resume":
            return None
        connection = event.connection
        if call.lostClient is None or call.heir is not connection:
            call.sendClient(connection, {"type": "error", "code": 404,
                                         "message": "no call to resume", "field": "resume"})
            return call.state.name
        if call.resuming:
            call.sendClient(connection, {"type": "error", "code": 409, "field": "call",
                                         "message": "a resume of this call is under way"})
            return call.state.name
        call.resuming = True
        call.data[self.name] = connection
        d = defer.maybeDeferred(call.media.clientResumed, event.message.get("sdp"))
        call.whenDone(d, CLIENT_RESUMED)
        return call.state.name

    def resumed(self, call, event):
        call.resuming = False
        connection = call.data.pop(self.name, None)
        if call.lostClient is None or connection is None:
            return call.state.name
        if connection is not call.heir:
            # Its connection was lost and taken over meanwhile: the next
            # heir resumes with an offer of its own.
            return call.state.name
        if not event.succeeded:
            why = event.failure.getErrorMessage()
            log.info("call {call_id}: resume refused: {why}", call_id=call.id, why=why)
            call.sendClient(connection, {"type": "error", "code": 488, "field": "sdp",
                                         "message": f"offer not acceptable: {why}"})
            return call.state.name
        call.cancelTimer(RESUME_TIMER)
        call.lostClient = None
        call.heir = None
        call.connections = [connection]
        call.answerer = connection
        log.info("call {call_id}: client {client} resumed the call", call_id=call.id,
                 client=call.clientName)
        call.sendClient(connection, {"type": "answer", "sdp": event.result})
        call.sendClient(connection, {"type": "state", "state": call.publishedState(),
                                     "cause": 200})
        if call.held:
            call.sendClient(connection, {"type": "state", "state": "hold", "cause": None})
        return call.state.name


class OpTellHeir(Operator):
    """
    C{dropped} entry: a client that registered to resume the call but had
    not resumed it yet hears that it ended (C{state} C{dropped}).
    """

    name = "OpTellHeir"

    def process(self, call, event):
        heir = call.heir
        if heir is None or call.involves(heir):
            return
        ending = call.ending
        message = {"type": "state", "state": "dropped",
                   "cause": ending.cause if ending is not None else None}
        call.sendClient(heir, message)
