"""
Tests for L{linkrtc.signalling.directory}.
"""

from twisted.internet.task import Clock
from twisted.trial.unittest import SynchronousTestCase
from zope.interface import implementer
from zope.interface.verify import verifyObject

from linkrtc.interfaces import IClientConnection, IClientDirectory
from linkrtc.signalling.directory import ClientDirectory


@implementer(IClientConnection)
class FakeConnection:
    def __init__(self, name=None):
        self.clientName = name
        self.sent = []

    def sendMessage(self, message):
        self.sent.append(message)


class ClientDirectoryTests(SynchronousTestCase):
    def setUp(self):
        self.clock = Clock()
        self.clock.advance(1700000000)
        self.directory = ClientDirectory(self.clock)

    def test_interface(self):
        self.assertTrue(verifyObject(IClientDirectory, self.directory))
        self.assertTrue(verifyObject(IClientConnection, FakeConnection()))

    def test_empty(self):
        self.assertEqual(self.directory.connectionsFor("alice"), [])
        self.assertEqual(self.directory.names(), [])

    def test_manyPerName(self):
        a, b = FakeConnection(), FakeConnection()
        self.directory.register("alice", a)
        self.directory.register("alice", b)
        self.assertEqual(self.directory.connectionsFor("alice"), [a, b])
        self.assertEqual(self.directory.nameOf(b), "alice")

    def test_registerTwiceSameName(self):
        a = FakeConnection()
        self.directory.register("alice", a)
        self.directory.register("alice", a)
        self.assertEqual(self.directory.connectionsFor("alice"), [a])

    def test_returnsCopy(self):
        a = FakeConnection()
        self.directory.register("alice", a)
        self.directory.connectionsFor("alice").clear()
        self.assertEqual(self.directory.connectionsFor("alice"), [a])

    def test_move(self):
        a, b = FakeConnection(), FakeConnection()
        self.directory.register("alice", a)
        self.directory.register("alice", b)
        self.directory.register("bob", a)
        self.assertEqual(self.directory.connectionsFor("alice"), [b])
        self.assertEqual(self.directory.connectionsFor("bob"), [a])
        self.assertEqual(self.directory.names(), ["alice", "bob"])

    def test_unregister(self):
        a, b = FakeConnection(), FakeConnection()
        self.directory.register("alice", a)
        self.directory.register("alice", b)
        self.assertEqual(self.directory.unregister(a), "alice")
        self.assertEqual(self.directory.connectionsFor("alice"), [b])
        self.directory.unregister(b)
        self.assertEqual(self.directory.names(), [])
        self.assertIsNone(self.directory.unregister(b))
        self.assertIsNone(self.directory.nameOf(b))

    def test_traceConnections(self):
        a, b, c = FakeConnection(), FakeConnection(), FakeConnection()
        self.directory.register("alice", a, trace=True)
        self.directory.register("alice", b)
        self.directory.register("bob", c, trace=True)
        self.assertEqual(self.directory.traceConnections(["alice"]), [a])
        self.assertEqual(set(self.directory.traceConnections()), {a, c})
        self.directory.register("alice", a, trace=False)
        self.assertEqual(self.directory.traceConnections(["alice"]), [])

    def test_tracing(self):
        """C{tracing} says whether any connection traces."""
        a, b = FakeConnection(), FakeConnection()
        self.assertFalse(self.directory.tracing)
        self.directory.register("alice", a)
        self.assertFalse(self.directory.tracing)
        self.assertEqual(self.directory.traceConnections(), [])
        self.directory.register("bob", b, trace=True)
        self.assertTrue(self.directory.tracing)
        self.directory.unregister(b)
        self.assertFalse(self.directory.tracing)
        self.directory.trace("call1", "in", "sip", b"x", ["alice", "bob"])
        self.assertEqual((a.sent, b.sent), ([], []))

    def test_traceOnlyNamesInvolved(self):
        a, c = FakeConnection(), FakeConnection()
        self.directory.register("alice", a, trace=True)
        self.directory.register("bob", c, trace=True)
        self.directory.trace("call1", "in", "sip", b"INVITE sip:alice@x SIP/2.0\r\n", ["alice"])
        self.assertEqual(a.sent, [{"type": "trace", "call": "call1", "time": 1700000000,
                                   "dir": "in", "proto": "sip",
                                   "text": "INVITE sip:alice@x SIP/2.0\r\n"}])
        self.assertEqual(c.sent, [])

    def test_traceAfterUnregister(self):
        a = FakeConnection()
        self.directory.register("alice", a, trace=True)
        self.directory.unregister(a)
        self.directory.trace("call1", "out", "ws", "x", ["alice"])
        self.assertEqual(a.sent, [])
