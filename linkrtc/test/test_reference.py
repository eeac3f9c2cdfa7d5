"""Tests for L{linkrtc.reference}."""

from twisted.trial.unittest import SynchronousTestCase
from zope.interface.verify import verifyObject

from linkrtc.interfaces import IClientMessageHandler, IInviteHandler
from linkrtc.reference import EngineReference, Reference


class Target:
    calls = {"a": 1}

    def inviteReceived(self, leg):
        return ("invite", leg)

    def clientMessageReceived(self, connection, message):
        return ("message", connection, message)

    def clientLost(self, connection):
        return ("lost", connection)


class ReferenceTests(SynchronousTestCase):
    def test_forwards(self):
        """Once bound, attributes and methods are the target's."""
        ref = Reference("the engine")
        target = Target()
        ref.bind(target)
        self.assertIs(ref.target, target)
        self.assertIs(ref.calls, target.calls)
        self.assertEqual(ref.inviteReceived("leg"), ("invite", "leg"))
        self.assertIsNone(getattr(ref, "missing", None))

    def test_unbound(self):
        """Used before it is bound, it says what is missing."""
        ref = Reference("the engine")
        e = self.assertRaises(RuntimeError, getattr, ref, "calls")
        self.assertIn("the engine is not built yet", str(e))

    def test_bindOnce(self):
        """A reference is bound once only."""
        ref = Reference("the engine")
        ref.bind(Target())
        self.assertRaises(RuntimeError, ref.bind, Target())


class EngineReferenceTests(SynchronousTestCase):
    def test_handlers(self):
        """
        The engine's reference is the user agent's invite handler and the
        phones' message handler, forwarding to the engine once bound.
        """
        ref = EngineReference()
        self.assertTrue(verifyObject(IInviteHandler, ref))
        self.assertTrue(verifyObject(IClientMessageHandler, ref))
        target = Target()
        ref.bind(target)
        self.assertIs(ref.calls, target.calls)
        self.assertEqual(ref.inviteReceived("leg"), ("invite", "leg"))
        self.assertEqual(ref.clientMessageReceived("c", {"type": "x"}),
                         ("message", "c", {"type": "x"}))
        self.assertEqual(ref.clientLost("c"), ("lost", "c"))
