# -*- test-case-name: linkrtc.call.test.test_registry -*-
"""
Operator plugins: finding them, parsing C{--operator NAME[:ARG]}, placing
them into the states and building the validated machine.

A plugin is a module in any C{linkrtc/plugins/} directory on C{sys.path}
(no C{__init__.py} in that C{linkrtc/} or C{plugins/}) with a module-level
object providing C{twisted.plugin.IPlugin} and
L{linkrtc.interfaces.IOperatorFactory}; see C{docs/operators.rst}.

Placements are C{(stateName, queue)} pairs, C{queue} one of C{"entry"},
C{"event"}, C{"exit"}; a third item C{"first"} or C{"last"} (the default)
says where in the queue the operator goes (C{"first"}: before the stock
operators, so it sees events first).
"""

from twisted.plugin import getPlugins

from linkrtc.call.machine import CallStateMachine
from linkrtc.call.state import LAST, POSITIONS, QUEUES
from linkrtc.call.states import INITIAL_STATE, emptyStates
from linkrtc.error import OperatorConfigError
from linkrtc.interfaces import IOperatorFactory


def stockFactories():
    """@return: the C{list} of stock operator factories, in queue order."""
    from linkrtc.plugins import linkrtc_builtin

    return list(linkrtc_builtin.stockFactories)


def operatorFactories():
    """
    Find every operator plugin.

    @return: C{dict} of C{operatorName} to L{IOperatorFactory} provider, the
        stock ones first.
    @raise OperatorConfigError: if two different plugins share a name.
    """
    import linkrtc.plugins

    found = {f.operatorName: f for f in stockFactories()}
    for factory in getPlugins(IOperatorFactory, linkrtc.plugins):
        name = getattr(factory, "operatorName", None)
        if not isinstance(name, str) or not name:
            raise OperatorConfigError(f"operator plugin {factory!r} has no operatorName")
        other = found.get(name)
        if other is not None and other is not factory:
            if getattr(other, "stock", False) and getattr(factory, "stock", False):
                continue  # the same stock module seen twice (e.g. via two paths)
            raise OperatorConfigError(f"two operator plugins are named {name!r}")
        found[name] = factory
    return found


def parseOperatorSpec(spec):
    """
    @param spec: C{"NAME"} or C{"NAME:ARG"} (C{ARG} may hold colons).
    @return: C{(name, argString)}, C{argString} C{None} when absent.
    @raise OperatorConfigError: for an empty name.
    """
    if not isinstance(spec, str):
        raise OperatorConfigError(f"operator spec must be a string, not {spec!r}")
    name, sep, arg = spec.partition(":")
    name = name.strip()
    if not name:
        raise OperatorConfigError(f"operator spec {spec!r} has no name")
    return name, (arg if sep else None)


def _placements(factory):
    out = []
    for placement in getattr(factory, "placements", ()):
        placement = tuple(placement)
        if len(placement) == 2:
            state, queue = placement
            position = LAST
        elif len(placement) == 3:
            state, queue, position = placement
        else:
            raise OperatorConfigError(
                f"operator {factory.operatorName!r}: bad placement {placement!r} "
                "(want (state, queue) or (state, queue, position))"
            )
        if queue not in QUEUES:
            raise OperatorConfigError(
                f"operator {factory.operatorName!r}: unknown queue {queue!r} "
                f"(use one of {', '.join(QUEUES)})"
            )
        if position not in POSITIONS:
            raise OperatorConfigError(
                f"operator {factory.operatorName!r}: unknown position {position!r}"
            )
        out.append((state, queue, position))
    if not out:
        raise OperatorConfigError(f"operator {factory.operatorName!r} has no placements")
    return out


def _place(states, factory, argString):
    placements = _placements(factory)
    for state, _, _ in placements:
        if state not in states:
            raise OperatorConfigError(
                f"operator {factory.operatorName!r} names unknown state {state!r} "
                f"(known: {', '.join(states)})"
            )
    try:
        operator = factory.buildOperator(argString)
    except OperatorConfigError:
        raise
    except Exception as e:
        raise OperatorConfigError(
            f"operator {factory.operatorName!r} could not be built from {argString!r}: {e}"
        ) from e
    for state, queue, position in placements:
        states[state].addOperator(operator, queue, position)
    return operator


def buildMachine(operators=(), factories=None):
    """
    Build the call state machine: the default states (L{linkrtc.call.states}),
    the stock operators, then each operator of C{operators} in order.

    @param operators: iterable of C{"NAME[:ARG]"} specs (from C{--operator}
        or the configuration file), or of C{(name, argString)} pairs.
    @param factories: C{dict} of name to factory; by default
        L{operatorFactories}.
    @return: a validated L{CallStateMachine}.
    @raise OperatorConfigError: for an unknown name, a stock operator named
        again, an unknown state or queue, a factory that fails, or an object
        that is not an L{IOperator}.
    """
    if factories is None:
        factories = operatorFactories()
    states = {state.name: state for state in emptyStates()}
    stock = stockFactories()
    stockNames = {f.operatorName for f in stock}
    for factory in stock:
        _place(states, factory, None)
    for spec in operators:
        name, arg = spec if isinstance(spec, tuple) else parseOperatorSpec(spec)
        if name in stockNames:
            raise OperatorConfigError(f"operator {name!r} is a stock operator, always on")
        factory = factories.get(name)
        if factory is None:
            known = sorted(n for n in factories if n not in stockNames)
            raise OperatorConfigError(
                f"unknown operator {name!r} (plugins found: {', '.join(known) or 'none'};"
                " see --help-operators)"
            )
        _place(states, factory, arg)
    return CallStateMachine(states.values(), INITIAL_STATE)


class _Placed:
    """A factory's operator in other placements (L{buildApplicationDialMachine})."""

    def __init__(self, factory, placements):
        self.factory = factory
        self.operatorName = factory.operatorName
        self.placements = tuple(placements)

    def buildOperator(self, argString):
        return self.factory.buildOperator(argString)


def buildApplicationDialMachine():
    """
    The topology of a call an application dials through a trunk (seed 001
    C{construct}, L{linkrtc.app.dial.ApplicationCall}): the outbound
    states (C{routing}, C{calling}, C{ringing}: the seed's C{Initiated})
    with their stock operators, where the 2xx leads to C{Idle}; then the
    call-control API's answered states (C{Idle} and the action states)
    with the operators incoming calls have there; C{nop} and C{drop} in
    every live state.

    @return: a validated L{CallStateMachine} starting in C{routing}.
    """
    from linkrtc.call.outboundmachine import outboundStates
    from linkrtc.call.state import State
    from linkrtc.call.states import API_ANSWERED_STATES, API_STATE_NAMES, DROPPED
    from linkrtc.plugins import linkrtc_builtin

    states = {state.name: state for state in outboundStates()}
    for name in API_STATE_NAMES:
        states[name] = State(name, published=None)
    for factory in linkrtc_builtin.dialFactories:
        _place(states, factory, None)
    for factory in linkrtc_builtin.outboundFactories:
        _place(states, factory, None)
    answered = set(API_ANSWERED_STATES)
    for factory in stockFactories():
        api = factory.operatorName.startswith("OpApi")
        placements = [p for p in _placements(factory)
                      if p[0] in answered or (api and p[0] == DROPPED)]
        if placements:
            _place(states, _Placed(factory, placements), None)
    return CallStateMachine(states.values(), "routing")


def helpOperators(factories=None):
    """
    @return: the text of C{--help-operators}: every operator plugin with
        its help, argument and placements (C{str}, ends with a newline).
    """
    if factories is None:
        factories = operatorFactories()
    plugins = [f for f in factories.values() if not getattr(f, "stock", False)]
    stock = [f for f in factories.values() if getattr(f, "stock", False)]
    lines = ["Operator plugins (add with --operator NAME[:ARG]):", ""]
    if not plugins:
        lines += ["  (none found in linkrtc/plugins/ on sys.path)", ""]
    for factory in sorted(plugins, key=lambda f: f.operatorName):
        lines += _describe(factory)
    lines += ["Stock operators (always on):", ""]
    for factory in stock:
        lines += _describe(factory)
    return "\n".join(lines).rstrip("\n") + "\n"


def _describe(factory):
    where = ", ".join("/".join(str(x) for x in p) for p in getattr(factory, "placements", ()))
    out = [f"  {factory.operatorName}", f"      {factory.operatorHelp}"]
    arg = getattr(factory, "argStringFormat", None)
    if arg and not getattr(factory, "stock", False):
        out.append(f"      ARG: {arg}")
    out += [f"      placed in: {where}", ""]
    return out
