# -*- test-case-name: linkrtc.call.test.test_outbound -*-
"""
Outgoing calls (client -> SIP trunk): their own small topology, the call
object and the dialer that turns a client's C{call} message into an
INVITE through a trunk.

Topology (published names in brackets; the final state is shared in
spirit with incoming calls: the same entry operators release the call)::

    routing (-) --decision--> calling [calling] --180/183--> ringing [ringing]
        |                        |                               |
        +--reject/hangup-->  dropped [dropped] <--4xx-6xx/timeout/hangup
                                 ^                               |
                                 +------ BYE ---- confirmed [confirmed] <--2xx

C{max_ring_seconds} (seed 001) bounds the wait for the answer: it runs
from the INVITE and starts again when the far end rings (180/183).
C{max_answer_seconds} bounds the talk time once confirmed (BYE, cause
200). Both come from the configuration and may be given per call by the
webhook's C{outgoing} decision.

Media goes through the call's L{IOutboundMediaSession}, the same code
path for both media modes: C{sipOffer(clientSdp, trunk.codecs)} makes the
INVITE's offer (passthrough: the client's offer as it is, minus the codecs
the trunk does not allow; bridge: LinkRTC's RTP offer, once aiortc has
answered the client), and C{clientAnswer(sdp)} turns the SIP answer SDP
(from a 18x for early media, else the 2xx) into the client's
C{{"type": "answer"}}. Either may finish later (bridge): the call waits
in C{routing} for the offer, and in C{calling}/C{ringing} for the answer
to a 2xx. A trunk with C{offerless = true} sends an INVITE without SDP:
the 2xx then holds the far end's offer. In passthrough it is sent to the
client as C{answer}, and the ACK carries the client's offer; in bridge
mode (L{IOfferlessOutboundMediaSession}) the media session answers it
with LinkRTC's own RTP in the ACK (L{ackAnswerer}) and the client gets
the WebRTC answer made when the call was placed.

The parts: L{linkrtc.call.outboundmachine} (topology, timers, events),
L{linkrtc.call.outboundcall} (L{OutboundCall}), L{linkrtc.call.dialer}
(L{OutboundDialer}) and L{linkrtc.call.codecfilter} (C{filterCodecs}).
This module keeps their public names where they have always been.
"""

from linkrtc.call.codecfilter import filterCodecs
from linkrtc.call.dialer import (
    OUTBOUND_MEDIA,
    PENDING,
    OutboundDialer,
    _seconds,
    ackAnswerer,
)
from linkrtc.call.outboundcall import OutboundCall, resultNow
from linkrtc.call.outboundmachine import (
    ANSWER_TIMER,
    OUTBOUND_STATE_NAMES,
    RING_TIMER,
    ROUTING,
    OutgoingCallEvent,
    SIPFailureEvent,
    SIPResponseEvent,
    buildOutboundMachine,
    outboundStates,
)

__all__ = [
    "ANSWER_TIMER", "OUTBOUND_MEDIA", "OUTBOUND_STATE_NAMES", "PENDING", "RING_TIMER", "ROUTING",
    "OutboundCall", "OutboundDialer", "OutgoingCallEvent", "SIPFailureEvent", "SIPResponseEvent",
    "_seconds", "ackAnswerer", "buildOutboundMachine", "filterCodecs", "outboundStates",
    "resultNow",
]
