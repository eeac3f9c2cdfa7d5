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

# -- the call-control API (seed 001, linkrtc.app) -------------------------------
# A call an application controls (sys.call.*) leaves C{pending} for these
# states, named as seed 001 names them; C{dropped} is the seed's
# C{Released}. None is published as a C{state} message or webhook event:
# the application hears the seed's C{on_*} events instead.

INITIATED = "Initiated"
ANSWER = "Answer"
IDLE = "Idle"
PLAY = "Play"
RECORD = "Record"
SEND_DTMF = "SendDtmf"
RECEIVE_DTMF = "ReceiveDtmf"
DIAL = "Dial"
CONNECT = "Connect"
CONF = "Conf"

#: The seed's name for C{dropped}.
RELEASED = "Released"

#: The action states: one CTI action runs (seed 001: one at a time).
ACTION_STATES = (PLAY, RECORD, SEND_DTMF, RECEIVE_DTMF, DIAL, CONNECT, CONF)

#: Every state of an application-controlled call but the end, in order.
API_STATE_NAMES = (INITIATED, ANSWER, IDLE) + ACTION_STATES

#: The states of an answered application-controlled call.
API_ANSWERED_STATES = (IDLE,) + ACTION_STATES


def apiStateName(state):
    """
    @param state: a L{State} (or C{None}).
    @return: the seed 001 name of C{state}: its own name for the API
        states, C{Released} for C{dropped}, C{Initiated} for the states of
        seed 000 before the answer and C{Idle} for C{confirmed}.
    """
    name = getattr(state, "name", None)
    if name in API_STATE_NAMES:
        return name
    if name == DROPPED:
        return RELEASED
    if name == CONFIRMED:
        return IDLE
    return INITIATED


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
    ] + [State(name, published=None) for name in API_STATE_NAMES]
