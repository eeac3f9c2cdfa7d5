# -*- test-case-name: linkrtc.call.test.test_calls -*-
"""
Operators that end a call (seed 000 step 4) and those that run when it has
ended: BYE either way, the client gone, the SIP leg gone, timeouts,
shutdown, and releasing the call's resources.
"""

from linkrtc.call.call import SIP_AUTO, SIP_BYE, SIP_FINAL, SIP_NONE
from linkrtc.call.events import (
    ClientLostEvent,
    ClientMessageEvent,
    MediaTimeoutEvent,
    ShutdownEvent,
    SIPAckTimeoutEvent,
    SIPLegTerminatedEvent,
    SIPRequestEvent,
)
from linkrtc.call.operators.base import Operator, hangupCause
from linkrtc.call.operators.resume import awaitResume
from linkrtc.call.states import DROPPED


class OpEndCall(Operator):
    """
    C{confirmed}, on BYE from SIP (VOCAL's OpEndCall): answer 200 (RFC 3261
    §15.1.2) and drop the call; the client and the application are told at
    once (the C{dropped} entry operators).
    """

    name = "OpEndCall"
    handles = (SIPRequestEvent,)
    transitions = (DROPPED,)

    def process(self, call, event):
        if event.method != "BYE":
            return None
        if event.respond is not None:
            event.respond(200)
        return call.end(200, "normal", "usr", sip=SIP_NONE)


class OpClientHangup(Operator):
    """
    C{confirmed}, on the answering client's C{hangup}: BYE to SIP,
    C{dropped}, cause 200 "normal", or the C{cause} and C{reason} the
    client gave (a failure on its side, such as its media set-up).
    """

    name = "OpClientHangup"
    handles = (ClientMessageEvent,)
    transitions = (DROPPED,)

    def process(self, call, event):
        if event.type != "hangup" or event.connection is not call.answerer:
            return None
        cause, reason = hangupCause(event, 200, "normal")
        return call.end(cause, reason, "usr")


class OpClientGone(Operator):
    """
    Live states, when an attached connection closes: before an accept the
    connection is detached and the call ends with 480 when none is left;
    when it is the one that accepted, the call ends (480 before the 200 OK,
    BYE after). An answered (C{confirmed}) call whose media can rebuild the
    client's leg waits instead for the client to resume it
    (L{linkrtc.call.operators.resume.awaitResume}).
    """

    name = "OpClientGone"
    handles = (ClientLostEvent,)
    transitions = (DROPPED,)

    def process(self, call, event):
        if not call.involves(event.connection):
            return None
        call.detach(event.connection)
        if event.connection is call.answerer and awaitResume(call, event.connection):
            return call.state.name
        if event.connection is call.answerer or not call.connections:
            return call.end(480, "client connection lost", "sys")
        return call.state.name


class OpAckTimeout(Operator):
    """
    C{confirmed}, when no ACK came for our 2xx (RFC 3261 §13.3.1.4): BYE
    and C{dropped}, cause 408.
    """

    name = "OpAckTimeout"
    handles = (SIPAckTimeoutEvent,)
    transitions = (DROPPED,)

    def process(self, call, event):
        return call.end(408, "no ACK for the 200 OK", "sys", sip=SIP_BYE)


class OpMediaTimeout(Operator):
    """C{confirmed}, when the media session saw no RTP for too long: BYE, cause 408."""

    name = "OpMediaTimeout"
    handles = (MediaTimeoutEvent,)
    transitions = (DROPPED,)

    def process(self, call, event):
        return call.end(408, "media timeout", "sys")


class OpLegTerminated(Operator):
    """
    Live states, when the SIP leg is gone (transport failure, transaction
    timeout): nothing more is sent to SIP; cause 408 for a timeout, else 503.
    A session timer's end (RFC 4028: no refresh, or a failed one; the leg
    sent the BYE) is cause 408 with the leg's reason as it is
    (C{session-timer-expired}, C{session-refresh-failed (...)}).
    """

    name = "OpLegTerminated"
    handles = (SIPLegTerminatedEvent,)
    transitions = (DROPPED,)

    def process(self, call, event):
        if (event.reason or "").startswith("session-"):
            # RFC 4028: the leg sent BYE itself; the CDR gets its reason
            return call.end(408, event.reason, "sys", sip=SIP_NONE)
        cause = 408 if "timeout" in (event.reason or "").lower() else 503
        return call.end(cause, f"SIP leg lost: {event.reason}", "sys", sip=SIP_NONE)


class OpShutdown(Operator):
    """Live states, when LinkRTC stops: 503 before answer, BYE after."""

    name = "OpShutdown"
    handles = (ShutdownEvent,)
    transitions = (DROPPED,)

    def process(self, call, event):
        return call.end(503, "shutting down", "sys")


class OpSIPHangup(Operator):
    """
    C{dropped} entry: do on the SIP side what the ending asks: before any
    final response, send C{cause} as the final (a non-final cause becomes
    500); after our 2xx, BYE (RFC 3261 §15.1.1).
    """

    name = "OpSIPHangup"

    def process(self, call, event):
        ending = call.ending
        if ending is None or ending.sip is SIP_NONE:
            return
        action = ending.sip
        if action == SIP_AUTO:
            action = SIP_FINAL if call.finalStatus is None else SIP_BYE
        if action == SIP_FINAL:
            status = ending.cause if isinstance(ending.cause, int) else 500
            if not 300 <= status <= 699:
                status = 500
            call.sendFinal(status)
        elif action == SIP_BYE and call.finalStatus is not None and 200 <= call.finalStatus < 300:
            call.sendBye()


class OpReleaseCall(Operator):
    """
    C{dropped} entry, last: free the call's timers, media session and
    manager entry, write its CDR and send the application the C{cdr} event.
    """

    name = "OpReleaseCall"

    def process(self, call, event):
        call.release()
