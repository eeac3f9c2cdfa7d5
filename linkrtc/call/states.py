# -*- test-case-name: linkrtc.call.test.test_registry -*-
"""
The default topology of an incoming call (seed 000): its states.

Published states (told to clients and the application) are the seed's:
C{pending}, C{calling}, C{ringing}, C{confirmed}, C{dropped}. One internal
state, C{answering}, lies between a client's C{accept} and the 200 OK (the
media session turns the client's SDP into the SIP answer); it is not
announced, so clients and the application still see C{ringing} there.

The operators that fill these states are the stock operator plugins of
L{linkrtc.plugins.linkrtc_builtin}, placed in their declared order by
L{linkrtc.call.registry.buildMachine}.
"""

from linkrtc.call.state import State

PENDING = "pending"
CALLING = "calling"
RINGING = "ringing"
ANSWERING = "answering"
CONFIRMED = "confirmed"
DROPPED = "dropped"

#: The states a call may be in, in the order of a successful call.
STATE_NAMES = (PENDING, CALLING, RINGING, ANSWERING, CONFIRMED, DROPPED)

#: The states published to clients and the application.
PUBLISHED_STATES = (PENDING, CALLING, RINGING, CONFIRMED, DROPPED)

#: The live states (every state but C{dropped}).
LIVE_STATES = (PENDING, CALLING, RINGING, ANSWERING, CONFIRMED)

#: The state every call starts in.
INITIAL_STATE = PENDING


def emptyStates():
    """
    @return: a new C{list} of the default L{State}s, with empty queues.
    """
    return [
        State(PENDING, published=PENDING),
        State(CALLING, published=CALLING),
        State(RINGING, published=RINGING),
        State(ANSWERING, published=None),
        State(CONFIRMED, published=CONFIRMED),
        State(DROPPED, published=DROPPED, final=True),
    ]
