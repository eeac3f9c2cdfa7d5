"""Tests for L{linkrtc.call.machine}, L{linkrtc.call.state} and L{linkrtc.call.events}."""

from twisted.internet.testing import EventLoggingObserver
from twisted.logger import globalLogPublisher
from twisted.trial.unittest import SynchronousTestCase
from zope.interface import implementer
from zope.interface.verify import verifyObject

from linkrtc.call.events import ClientMessageEvent, TimerEvent
from linkrtc.call.machine import CallStateMachine
from linkrtc.call.operators.base import Operator
from linkrtc.call.state import State
from linkrtc.error import InvalidStateError, OperatorConfigError
from linkrtc.interfaces import IOperator, IState
from linkrtc.testing import CallHarness, FakeClientConnection


class Recorder(Operator):
    """Records each call to C{process} in a shared log and returns C{result}."""

    def __init__(self, name, log, result=None, handles=(), transitions=None):
        self.name = name
        self.log = log
        self.result = result
        self.handles = handles
        if transitions is not None:
            self.transitions = transitions

    def process(self, call, event):
        self.log.append(self.name)
        return self.result


class FakeCall:
    """The parts of a Call the machine uses."""

    id = "c1"

    def __init__(self):
        self.state = None
        self.trace = []

    def now(self):
        return 0.0

    def recordTransition(self, t):
        self.trace.append(t)


def machine(*states, initial="a"):
    return CallStateMachine(states, initial)


class StateTests(SynchronousTestCase):
    def test_interface(self):
        """L{State} provides L{IState}, with three empty queues."""
        s = State("x")
        verifyObject(IState, s)
        self.assertEqual((s.entryOperators, s.operators, s.exitOperators), ([], [], []))

    def test_addOperatorPositions(self):
        """addOperator appends by default and inserts with C{"first"}."""
        s = State("x")
        a, b, c = (Recorder(n, []) for n in "abc")
        s.addOperator(a)
        s.addOperator(b, "event", "last")
        s.addOperator(c, "event", "first")
        s.addOperator(a, "exit")
        self.assertEqual(s.operators, [c, a, b])
        self.assertEqual(s.exitOperators, [a])

    def test_badQueue(self):
        """An unknown queue or position raises L{OperatorConfigError}."""
        s = State("x")
        self.assertRaises(OperatorConfigError, s.addOperator, Recorder("a", []), "during")
        self.assertRaises(OperatorConfigError, s.addOperator, Recorder("a", []), "event", "mid")


class ValidationTests(SynchronousTestCase):
    def test_unknownInitial(self):
        """An initial state that does not exist fails when the machine is built."""
        self.assertRaises(OperatorConfigError, machine, State("a"), initial="b")

    def test_duplicateState(self):
        """Two states with one name fail."""
        self.assertRaises(OperatorConfigError, machine, State("a"), State("a"))

    def test_notAnOperator(self):
        """An object that is not an L{IOperator} in any queue fails at build time."""
        for queue in ("entry", "event", "exit"):
            s = State("a")
            s.queue(queue).append(object())
            self.assertRaises(OperatorConfigError, machine, s)

    def test_typoInTransitions(self):
        """An operator naming a state that does not exist fails at build, not mid-call."""
        s = State("a")
        s.addOperator(Recorder("op", [], transitions=("ringnig",)))
        e = self.assertRaises(OperatorConfigError, machine, s)
        self.assertIn("ringnig", str(e))

    def test_findState(self):
        """findState takes a name or the state itself; others raise InvalidStateError."""
        a = State("a")
        m = machine(a)
        self.assertIs(m.findState("a"), a)
        self.assertIs(m.findState(a), a)
        self.assertRaises(InvalidStateError, m.findState, "b")
        self.assertRaises(InvalidStateError, m.findState, State("a"))

    def test_stockMachineValid(self):
        """The default machine names every published state and validates."""
        m = CallHarness().machine
        for name in ("pending", "calling", "ringing", "confirmed", "dropped"):
            self.assertIn(name, m.states)
        self.assertEqual(m.initial, "pending")
        self.assertEqual(m.finalState, "dropped")
        for state in m.states.values():
            for queue in ("entry", "event", "exit"):
                for op in state.queue(queue):
                    verifyObject(IOperator, op)


class DispatchTests(SynchronousTestCase):
    def setUp(self):
        self.log = []
        self.a, self.b = State("a"), State("b")

    def op(self, name, result=None, **kw):
        return Recorder(name, self.log, result, **kw)

    def test_firstResultWins(self):
        """The first operator returning a state moves the call; later ones do not run."""
        self.a.addOperator(self.op("one"))
        self.a.addOperator(self.op("two", "b"))
        self.a.addOperator(self.op("three", "a"))
        m = machine(self.a, self.b)
        call = FakeCall()
        call.state = self.a
        self.assertTrue(m.process(call, TimerEvent("t")))
        self.assertEqual(self.log, ["one", "two"])
        self.assertIs(call.state, self.b)

    def test_exitThenEntry(self):
        """A move runs the old state's exit operators, then the new state's entry ones, in order."""
        self.a.addOperator(self.op("go", "b"))
        self.a.addOperator(self.op("x1"), "exit")
        self.a.addOperator(self.op("x2"), "exit")
        self.b.addOperator(self.op("e1", "a"), "entry")  # result ignored
        self.b.addOperator(self.op("e2"), "entry")
        m = machine(self.a, self.b)
        call = FakeCall()
        call.state = self.a
        m.process(call, TimerEvent("t"))
        self.assertEqual(self.log, ["go", "x1", "x2", "e1", "e2"])
        self.assertIs(call.state, self.b)
        self.assertEqual([(t.fromState, t.toState, t.operator) for t in call.trace],
                         [("a", "b", "go")])

    def test_stay(self):
        """Returning the current state means handled: no exit or entry operators run."""
        self.a.addOperator(self.op("stay", "a"))
        self.a.addOperator(self.op("x"), "exit")
        self.a.addOperator(self.op("e"), "entry")
        m = machine(self.a)
        call = FakeCall()
        call.state = self.a
        self.assertTrue(m.process(call, TimerEvent("t")))
        self.assertEqual(self.log, ["stay"])
        self.assertEqual(call.trace, [])

    def test_stayByState(self):
        """
        Returning the current state object means handled too (the fast
        path, no lookup); a state of another machine with the same name
        is refused (L{InvalidStateError}), as before the fast path.
        """
        self.a.addOperator(self.op("stay", self.a))
        m = machine(self.a)
        call = FakeCall()
        call.state = self.a
        self.assertTrue(m.process(call, TimerEvent("t")))
        self.assertEqual((self.log, call.trace), (["stay"], []))
        other = State("a")
        other.addOperator(self.op("foreign", State("a")))
        m = machine(other)
        call.state = other
        self.assertRaises(InvalidStateError, m.process, call, TimerEvent("t"))

    def test_unhandled(self):
        """When every operator returns None, process returns False."""
        self.a.addOperator(self.op("one"))
        m = machine(self.a)
        call = FakeCall()
        call.state = self.a
        self.assertFalse(m.process(call, TimerEvent("t")))

    def test_handlesSkips(self):
        """An operator whose C{handles} does not match the event is not run."""
        self.a.addOperator(self.op("client", "b", handles=(ClientMessageEvent,)))
        self.a.addOperator(self.op("timer", None, handles=(TimerEvent,)))
        m = machine(self.a, self.b)
        call = FakeCall()
        call.state = self.a
        m.process(call, TimerEvent("t"))
        self.assertEqual(self.log, ["timer"])

    def test_undeclaredTransition(self):
        """A state the operator's C{transitions} does not name raises InvalidStateError."""
        self.a.addOperator(self.op("sneaky", "b", transitions=("a",)))
        m = machine(self.a, self.b)
        call = FakeCall()
        call.state = self.a
        self.assertRaises(InvalidStateError, m.process, call, TimerEvent("t"))

    def test_unknownResult(self):
        """A returned name that is no state raises InvalidStateError."""
        self.a.addOperator(self.op("bad", "nowhere"))
        m = machine(self.a)
        call = FakeCall()
        call.state = self.a
        self.assertRaises(InvalidStateError, m.process, call, TimerEvent("t"))

    def test_failingEntryOperator(self):
        """An entry operator that raises is logged; the others still run."""

        @implementer(IOperator)
        class Boom:
            name = "boom"

            def process(self, call, event):
                raise RuntimeError("boom")

        self.a.addOperator(self.op("go", "b"))
        self.b.addOperator(Boom(), "entry")
        self.b.addOperator(self.op("after"), "entry")
        m = machine(self.a, self.b)
        call = FakeCall()
        call.state = self.a
        m.process(call, TimerEvent("t"))
        self.assertEqual(self.log, ["go", "after"])
        self.assertEqual(len(self.flushLoggedErrors(RuntimeError)), 1)


class CallDispatchTests(SynchronousTestCase):
    """Dispatch through a real call: logging, failures, queueing, replay."""

    def test_transitionLogged(self):
        """Every transition is a structured twisted.logger event with the call id."""
        observer = EventLoggingObserver.createWithCleanup(self, globalLogPublisher)
        h = CallHarness()
        call, leg, conn = h.answer()
        moves = [e for e in observer if e.get("linkrtc_transition")]
        self.assertEqual([(e["from_state"], e["to_state"]) for e in moves],
                         [("pending", "calling"), ("calling", "ringing"),
                          ("ringing", "answering"), ("answering", "confirmed")])
        self.assertTrue(all(e["call_id"] == call.id for e in moves))
        self.assertEqual(moves[0]["event_kind"], "decision:route")

    def test_operatorFailureEndsCall(self):
        """An event operator that raises ends the call with 500, resources freed."""

        @implementer(IOperator)
        class Boom:
            name = "boom"

            def process(self, call, event):
                raise RuntimeError("boom")

        h = CallHarness()
        h.machine.states["pending"].addOperator(Boom(), "event", "first")
        call, leg = h.invite()
        self.assertEqual(leg.finalStatus, 500)
        self.assertEqual(call.state.name, "dropped")
        self.assertEqual(h.cdrs[0]["cause"], 500)
        self.assertEqual(h.manager.calls, {})
        self.assertEqual(len(self.flushLoggedErrors(RuntimeError)), 1)

    def test_eventsQueued(self):
        """An event dispatched while another is processed runs after it, in order."""
        h = CallHarness()
        call, leg = h.invite()
        seen = []

        @implementer(IOperator)
        class Nested:
            name = "nested"

            def process(self, c, event):
                seen.append(event.describe())
                if isinstance(event, TimerEvent) and event.name == "one":
                    c.dispatch(TimerEvent("two"))
                    seen.append("after dispatch")
                return None

        h.machine.states["pending"].addOperator(Nested(), "event", "first")
        call.dispatch(TimerEvent("one"))
        self.assertEqual(seen, ["timer:one", "after dispatch", "timer:two"])

    def test_replay(self):
        """A call's recorded events replayed into a fresh call give the same transitions."""
        h = CallHarness()
        other = h.connect("alice")
        call, leg, conn = h.answer()
        self.assertEqual(len(call.offered), 2)
        leg.receive("INFO", b"Signal=5\r\nDuration=160", "application/dtmf-relay")
        h.clientSays(conn, "hangup", call)
        copy = h.replay(call)
        self.assertEqual([t.key() for t in copy.trace], [t.key() for t in call.trace])
        self.assertEqual(copy.trace[-1].toState, "dropped")
        self.assertTrue(other.ofType("incoming"))

    def test_replayCancelled(self):
        """A cancelled call replays to the same end."""
        h = CallHarness()
        h.connect("alice")
        call, leg = h.invite()
        h.route(call)
        h.clock.advance(3)
        leg.cancel()
        copy = h.replay(call)
        self.assertEqual([t.key() for t in copy.trace], [t.key() for t in call.trace])
        self.assertEqual(copy.leg.finalStatus, 487)

    def test_unknownClientMessageIgnoredConnection(self):
        """A message dispatched from a connection not attached to the call changes nothing."""
        h = CallHarness()
        h.connect("alice")
        call, leg = h.invite()
        h.route(call)
        stranger = FakeClientConnection("mallory")
        call.clientMessage(stranger, {"type": "accept", "call": call.id, "sdp": "v=0"})
        self.assertEqual(call.state.name, "calling")
        self.assertEqual(stranger.ofType("error")[0]["code"], 409)
