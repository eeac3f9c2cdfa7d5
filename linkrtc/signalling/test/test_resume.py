"""
Tests for resume tokens (L{linkrtc.signalling.resume}) and for
registering with one over the WebSocket (L{linkrtc.signalling.protocol}),
with a L{task.Clock}.
"""

import json

from twisted.internet.task import Clock
from twisted.trial.unittest import SynchronousTestCase
from zope.interface import implementer

from linkrtc.interfaces import IClientMessageHandler, IResumeHandler
from linkrtc.signalling.messages import MessageError, parseClientMessage
from linkrtc.signalling.protocol import CLOSE_RESUMED
from linkrtc.signalling.resume import ResumeError, ResumeTokens
from linkrtc.signalling.test.test_protocol import FakeHandler, ProtocolTestsMixin


class Conn:
    """A stand-in connection."""


class TokenTests(SynchronousTestCase):
    def setUp(self):
        self.clock = Clock()
        self.tokens = ResumeTokens(self.clock, 10.0)

    def assertRefused(self, token, name, code):
        e = self.assertRaises(ResumeError, self.tokens.redeem, token, name)
        self.assertEqual(e.code, code)

    def test_unguessable(self):
        """Tokens are 256 random bits in base64url: 43 characters, all different."""
        seen = {self.tokens.issue(Conn(), "alice") for _ in range(50)}
        self.assertEqual(len(seen), 50)
        self.assertEqual({len(t) for t in seen}, {43})
        for token in seen:
            parseClientMessage(json.dumps({"type": "register", "client": "a", "resume": token}))

    def test_rotation(self):
        """A new registration of the same connection rotates its token: the old one is unknown."""
        conn = Conn()
        first = self.tokens.issue(conn, "alice")
        second = self.tokens.issue(conn, "alice")
        self.assertNotEqual(first, second)
        self.assertRefused(first, "alice", 404)
        self.assertIs(self.tokens.redeem(second, "alice"), conn)

    def test_singleUse(self):
        conn = Conn()
        token = self.tokens.issue(conn, "alice")
        self.tokens.lost(conn)
        self.assertIs(self.tokens.redeem(token, "alice"), conn)
        self.assertRefused(token, "alice", 404)

    def test_boundToIdentity(self):
        """Another name cannot use the token (404), and that does not burn it."""
        conn = Conn()
        token = self.tokens.issue(conn, "alice")
        self.tokens.lost(conn)
        self.assertRefused(token, "bob", 404)
        self.assertIs(self.tokens.redeem(token, "alice"), conn)

    def test_wrong(self):
        self.assertRefused("nope", "alice", 404)

    def test_grace(self):
        """Usable for C{seconds} after the connection closed; 410 after, for its own client."""
        conn = Conn()
        token = self.tokens.issue(conn, "alice")
        self.clock.advance(100)  # still open: no expiry
        self.tokens.lost(conn)
        self.clock.advance(9.9)
        self.assertEqual(len(self.tokens), 1)
        self.clock.advance(0.1)
        self.assertEqual(len(self.tokens), 0)
        self.assertRefused(token, "alice", 410)
        self.assertRefused(token, "bob", 404)

    def test_disabled(self):
        tokens = ResumeTokens(self.clock, 0)
        self.assertIsNone(tokens.issue(Conn(), "alice"))
        self.assertFalse(tokens.enabled)

    def test_revokeCancelsExpiry(self):
        conn = Conn()
        self.tokens.issue(conn, "alice")
        self.tokens.lost(conn)
        self.tokens.revoke(conn)
        self.assertEqual(self.clock.getDelayedCalls(), [])


class ResumeMessageTests(SynchronousTestCase):
    def test_register(self):
        msg = parseClientMessage('{"type":"register","client":"a","resume":"abc_-1"}')
        self.assertEqual(msg["resume"], "abc_-1")

    def test_badToken(self):
        e = self.assertRaises(MessageError, parseClientMessage,
                              '{"type":"register","client":"a","resume":"a b"}')
        self.assertEqual(e.field, "resume")

    def test_resume(self):
        self.assertEqual(parseClientMessage('{"type":"resume","call":"c1","sdp":"v=0"}'),
                         {"type": "resume", "call": "c1", "sdp": "v=0"})
        e = self.assertRaises(MessageError, parseClientMessage, '{"type":"resume","call":"c1"}')
        self.assertEqual(e.field, "sdp")


@implementer(IClientMessageHandler, IResumeHandler)
class ResumeHandler(FakeHandler):
    def __init__(self):
        super().__init__()
        self.resumed = []

    def clientResumed(self, lost, connection):
        self.resumed.append((lost, connection))
        return [{"call": "c1", "state": "confirmed", "direction": "inbound"}]


class RegisterResumeTests(ProtocolTestsMixin, SynchronousTestCase):
    def setUp(self):
        super().setUp()
        self.handler = ResumeHandler()
        self.factory = self.makeFactory(resumeSeconds=10.0)

    def test_tokenInRegistered(self):
        """C{registered} carries a token, a new one at each registration."""
        proto, transport = self.connect()
        [reply] = self.register(proto, transport)
        self.assertEqual(reply["type"], "registered")
        [again] = self.register(proto, transport)
        self.assertNotEqual(reply["resume"], again["resume"])
        self.assertNotIn("calls", again)

    def test_noTokenWhenDisabled(self):
        self.factory = self.makeFactory()
        proto, transport = self.connect()
        self.assertEqual(self.register(proto, transport),
                         [{"type": "registered", "client": "alice"}])

    def test_resume(self):
        """
        After a reload (the old connection closed), registering with its
        token lists the calls waiting for it and hands them over.
        """
        old, oldTransport = self.connect()
        [reply] = self.register(old, oldTransport)
        self.disconnect(old)
        self.assertEqual(self.handler.lost, [old.connection])
        self.clock.advance(9)
        new, transport = self.connect()
        [registered] = self.register(new, transport, resume=reply["resume"])
        self.assertEqual(registered["calls"],
                         [{"call": "c1", "state": "confirmed", "direction": "inbound"}])
        self.assertNotEqual(registered["resume"], reply["resume"])
        self.assertEqual(self.handler.resumed, [(old.connection, new.connection)])
        self.send(new, {"type": "resume", "call": "c1", "sdp": "v=0"})
        self.assertEqual(self.handler.messages[-1],
                         (new.connection, {"type": "resume", "call": "c1", "sdp": "v=0"}))

    def test_late(self):
        """After the grace period: 410, C{field} C{resume}; the client is registered, no call."""
        old, oldTransport = self.connect()
        [reply] = self.register(old, oldTransport)
        self.disconnect(old)
        self.clock.advance(10)
        new, transport = self.connect()
        error, registered = self.register(new, transport, resume=reply["resume"])
        self.assertEqual((error["type"], error["code"], error["field"]), ("error", 410, "resume"))
        self.assertEqual((registered["type"], registered["calls"]), ("registered", []))
        self.assertEqual(self.handler.resumed, [])

    def test_wrongAndOtherIdentity(self):
        """A wrong token, or another client's: 404, C{field} C{resume}, no call."""
        old, oldTransport = self.connect()
        [reply] = self.register(old, oldTransport)
        self.disconnect(old)
        new, transport = self.connect()
        error, registered = self.register(new, transport, name="bob", resume=reply["resume"])
        self.assertEqual((error["code"], error["field"]), (404, "resume"))
        self.assertEqual(registered["calls"], [])
        error, registered = self.register(new, transport, resume="x" * 43)
        self.assertEqual((error["code"], error["field"]), (404, "resume"))
        self.assertEqual(self.handler.resumed, [])

    def test_usedTwice(self):
        old, oldTransport = self.connect()
        [reply] = self.register(old, oldTransport)
        self.disconnect(old)
        first, t1 = self.connect()
        self.register(first, t1, resume=reply["resume"])
        second, t2 = self.connect()
        error, _ = self.register(second, t2, resume=reply["resume"])
        self.assertEqual(error["code"], 404)
        self.assertEqual(len(self.handler.resumed), 1)

    def test_takeOver(self):
        """
        The client is back before its old connection's close reached
        LinkRTC: the old connection is treated as lost (once) and closed
        with L{CLOSE_RESUMED}.
        """
        old, oldTransport = self.connect()
        [reply] = self.register(old, oldTransport)
        new, transport = self.connect()
        [registered] = self.register(new, transport, resume=reply["resume"])
        self.assertEqual(self.handler.lost, [old.connection])
        self.assertEqual(self.handler.resumed, [(old.connection, new.connection)])
        self.assertFalse(old.connection.connected)
        self.assertEqual(self.directory.connectionsFor("alice"), [new.connection])
        self.assertIn(CLOSE_RESUMED.to_bytes(2, "big"), oldTransport.value())
        self.disconnect(old)
        self.assertEqual(self.handler.lost, [old.connection])

    def test_ownToken(self):
        """A connection registering again with its own token takes nothing over."""
        proto, transport = self.connect()
        [reply] = self.register(proto, transport)
        [again] = self.register(proto, transport, resume=reply["resume"])
        self.assertEqual(again["calls"], [])
        self.assertEqual(self.handler.lost, [])
        self.assertTrue(proto.connection.connected)
