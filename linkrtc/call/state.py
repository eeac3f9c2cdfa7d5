# -*- test-case-name: linkrtc.call.test.test_machine -*-
"""
A state of the call state machine: a name and three ordered operator queues
(VOCAL's C{State}, seed 004).
"""

from zope.interface import implementer

from linkrtc.error import OperatorConfigError
from linkrtc.interfaces import IState

#: The queue names used in placements and configuration.
ENTRY = "entry"
EVENT = "event"
EXIT = "exit"
QUEUES = (ENTRY, EVENT, EXIT)

#: Where a placed operator goes in its queue.
FIRST = "first"
LAST = "last"
POSITIONS = (FIRST, LAST)


@implementer(IState)
class State:
    """
    A named state with entry operators (run in order when the state is
    entered, results ignored), operators (run in order for each event until
    one returns a state) and exit operators (run in order when it is left).

    @ivar name: the state's name, C{str}.
    @ivar published: the state name told to clients and the application
        (C{pending}, C{calling}, C{ringing}, C{confirmed}, C{dropped}), or
        C{None} for an internal state that is not announced.
    @ivar final: C{True} for the end state: the call is over once entered.
    """

    def __init__(self, name, published=None, final=False):
        self.name = name
        self.published = published
        self.final = final
        self.entryOperators = []
        self.operators = []
        self.exitOperators = []

    def queue(self, queue):
        """
        @param queue: C{"entry"}, C{"event"} or C{"exit"}.
        @return: the C{list} of operators of that queue.
        @raise OperatorConfigError: for another queue name.
        """
        if queue == ENTRY:
            return self.entryOperators
        if queue == EVENT:
            return self.operators
        if queue == EXIT:
            return self.exitOperators
        raise OperatorConfigError(
            f"unknown queue {queue!r} for state {self.name!r} (use one of {', '.join(QUEUES)})"
        )

    def addOperator(self, operator, queue=EVENT, position=LAST):
        """
        Put C{operator} into C{queue}.

        @param position: C{"last"} (after those already there) or C{"first"}.
        @raise OperatorConfigError: for an unknown queue or position.
        """
        ops = self.queue(queue)
        if position == LAST:
            ops.append(operator)
        elif position == FIRST:
            ops.insert(0, operator)
        else:
            raise OperatorConfigError(
                f"unknown position {position!r} (use {FIRST!r} or {LAST!r})"
            )

    def __repr__(self):
        return f"<State {self.name}>"
