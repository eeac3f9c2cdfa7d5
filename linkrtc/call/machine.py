# -*- test-case-name: linkrtc.call.test.test_machine -*-
"""
The call state machine: a registry of named L{State}s, validated when it is
built, and the dispatch loop that runs their operators (VOCAL's
C{State::process} and C{UaStateMachine}, seed 004, without its silent
C{findState() == 0} on a typo).

Dispatch of one event in the current state:

  1. the state's operators run in order; an operator whose C{handles}
     attribute (a tuple of event classes, optional) does not match the
     event is skipped;
  2. the first that returns something other than C{None} decides: the
     current state (or its name) means "handled, stay" (no exit or entry
     operators run); another state moves the call there;
  3. on a move, the old state's exit operators run, then the call's state is
     set, then the new state's entry operators run, all with the same event.
     Their return values are ignored, and one failing does not stop the
     others (the failure is logged).
"""

from twisted.logger import Logger
from zope.interface.exceptions import Invalid
from zope.interface.verify import verifyObject

from linkrtc.call.state import QUEUES
from linkrtc.error import InvalidStateError, OperatorConfigError
from linkrtc.interfaces import IOperator, IState
from linkrtc.logging import debugEnabled

log = Logger()


def _select(operators, event):
    """Yield the operators of C{operators} whose C{handles} takes C{event}."""
    for operator in operators:
        handles = getattr(operator, "handles", None)
        if handles and not isinstance(event, handles):
            continue
        yield operator


class Transition:
    """
    One state change of one call, as recorded in its trace.

    @ivar fromState: the old state's name, C{str} (C{None} for the start).
    @ivar toState: the new state's name, C{str}.
    @ivar event: the L{linkrtc.call.events.CallEvent} that caused it.
    @ivar operator: the name of the operator that decided it, C{str} or C{None}.
    @ivar time: the clock's seconds when it happened.
    """

    __slots__ = ("fromState", "toState", "event", "operator", "time")

    def __init__(self, fromState, toState, event, operator=None, time=None):
        self.fromState = fromState
        self.toState = toState
        self.event = event
        self.operator = operator
        self.time = time

    def key(self):
        """@return: C{(fromState, toState, event description)} for comparisons."""
        return (self.fromState, self.toState, self.event.describe())

    def __repr__(self):
        return f"<Transition {self.fromState} -> {self.toState} on {self.event.describe()}>"


class CallStateMachine:
    """
    The states of a call and the rules that move between them.

    @ivar states: C{dict} of name to L{State}.
    @ivar initial: the name of the state every call starts in.
    """

    def __init__(self, states, initial):
        """
        @param states: iterable of L{linkrtc.interfaces.IState} providers.
        @param initial: the name of the first state.
        @raise OperatorConfigError: see L{validate}.
        """
        self.states = {}
        for state in states:
            if state.name in self.states:
                raise OperatorConfigError(f"two states are named {state.name!r}")
            self.states[state.name] = state
        self.initial = initial
        #: (id of an operator queue, event class) -> (the queue's operators,
        #: those that take that class, the queue); see L{_operatorsFor}.
        self._selections = {}
        finals = [s.name for s in self.states.values() if getattr(s, "final", False)]
        #: The name of the end state (the first with C{final} true), or C{None}.
        self.finalState = finals[0] if finals else None
        self.validate()

    def validate(self):
        """
        Check the machine, so that a configuration mistake fails at start-up
        and not mid-call:
          - every state provides L{IState} and the initial state exists;
          - every operator in every queue provides L{IOperator} (checked
            with C{verifyObject});
          - every state an operator declares in its optional C{transitions}
            attribute exists.

        @raise OperatorConfigError: naming the first fault.
        """
        if self.initial not in self.states:
            raise OperatorConfigError(f"unknown initial state {self.initial!r}")
        for state in self.states.values():
            try:
                verifyObject(IState, state)
            except Invalid as e:
                raise OperatorConfigError(f"state {state.name!r} is not an IState: {e}")
            for queue in QUEUES:
                for operator in state.queue(queue):
                    self._validateOperator(state, queue, operator)

    def _validateOperator(self, state, queue, operator):
        where = f"state {state.name!r}, queue {queue!r}"
        try:
            verifyObject(IOperator, operator)
        except Invalid as e:
            raise OperatorConfigError(f"{operator!r} in {where} is not an IOperator: {e}")
        for name in getattr(operator, "transitions", None) or ():
            if name not in self.states:
                raise OperatorConfigError(
                    f"operator {operator.name!r} in {where} names unknown state {name!r}"
                    f" (known: {', '.join(sorted(self.states))})"
                )

    def findState(self, state):
        """
        @param state: an L{IState} of this machine or a state name.
        @return: the L{State}.
        @raise InvalidStateError: for a state this machine does not have.
        """
        name = state if isinstance(state, str) else getattr(state, "name", None)
        found = self.states.get(name)
        if found is None or (not isinstance(state, str) and found is not state):
            raise InvalidStateError(f"unknown state {state!r}")
        return found

    def stateNames(self):
        """@return: the state names, in the order they were given."""
        return list(self.states)

    def operatorsByQueue(self):
        """
        @return: C{dict} of state name to C{dict} of queue name to the
            C{list} of operator names (for docs, tests and C{--help-operators}).
        """
        return {
            state.name: {queue: [op.name for op in state.queue(queue)] for queue in QUEUES}
            for state in self.states.values()
        }

    # -- dispatch ------------------------------------------------------------

    def start(self, call, event):
        """
        Put C{call} in the initial state and run its entry operators with
        C{event}, then process C{event} there.
        """
        state = self.states[self.initial]
        call.state = state
        call.recordTransition(Transition(None, state.name, event, None, call.now()))
        self._runQueue(call, state.entryOperators, event, state.name, "entry")
        self.process(call, event)

    def process(self, call, event):
        """
        Run C{event} through C{call}'s current state.

        @return: C{True} if an operator handled it (moved the call or said
            stay), C{False} if every operator let it pass.
        @raise InvalidStateError: if an operator returned a state this
            machine does not have, or one its C{transitions} does not name.
        """
        state = call.state
        for operator in self._operatorsFor(state.operators, event):
            result = operator.process(call, event)
            if result is None:
                continue
            if result is state or result == state.name:
                return True  # handled, stay (fast path: no state lookup)
            nextState = self.findState(result)
            declared = getattr(operator, "transitions", None)
            if declared is not None and nextState is not state and nextState.name not in declared:
                raise InvalidStateError(
                    f"operator {operator.name!r} moved to {nextState.name!r}, "
                    f"which its transitions {tuple(declared)!r} do not name"
                )
            if nextState is not state:
                self._move(call, nextState, event, operator.name)
            return True
        return False

    def transition(self, call, nextState, event, operatorName=None):
        """
        Move C{call} to C{nextState}: exit operators of the old state, the
        state change (logged and traced), entry operators of the new one.

        @param nextState: a state of this machine or its name.
        @raise InvalidStateError: for a state this machine does not have.
        """
        self._move(call, self.findState(nextState), event, operatorName)

    def _move(self, call, nextState, event, operatorName):
        """L{transition} to C{nextState}, a L{State} of this machine (already found)."""
        old = call.state
        self._runQueue(call, old.exitOperators, event, old.name, "exit")
        call.state = nextState
        call.recordTransition(Transition(old.name, nextState.name, event, operatorName, call.now()))
        if debugEnabled():
            log.debug(
                "call {call_id}: {from_state} -> {to_state} on {event_kind} ({operator})",
                call_id=call.id, from_state=old.name, to_state=nextState.name,
                event_kind=event.describe(), operator=operatorName, linkrtc_transition=True,
            )
        self._runQueue(call, nextState.entryOperators, event, nextState.name, "entry")

    def _operatorsFor(self, operators, event):
        """
        @return: the operators of C{operators} (a queue) that take
            C{event}, in order (a C{tuple}): those whose C{handles} is
            empty or missing, and those whose C{handles} C{event} is an
            instance of.

        The selection is remembered per queue and event class (operators'
        C{handles} are class attributes, read when it is made), and made
        again when the queue's operators change.
        """
        key = (id(operators), type(event))
        cached = self._selections.get(key)
        snapshot = tuple(operators)
        if cached is not None and cached[0] == snapshot:
            return cached[1]
        try:
            selected = tuple(_select(snapshot, event))
        except Exception:
            # a C{handles} that cannot be checked: fail at that operator,
            # after the ones before it ran, as without the selection
            return _select(snapshot, event)
        # (the queue itself is kept so that its id is not reused)
        self._selections[key] = (snapshot, selected, operators)
        return selected

    def _runQueue(self, call, operators, event, stateName, queue):
        if not operators:
            return
        for operator in self._operatorsFor(operators, event):
            try:
                operator.process(call, event)
            except Exception:
                log.failure(
                    "call {call_id}: {queue} operator {operator} of {state} failed",
                    call_id=call.id, queue=queue, operator=operator.name, state=stateName,
                )
