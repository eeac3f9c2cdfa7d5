"""
Tests for L{linkrtc.call.wsphones}: SIP phones registered over WebSocket
as clients of the call engine, with fake legs and a fake engine.
"""

from twisted.internet.task import Clock
from twisted.trial.unittest import SynchronousTestCase

from linkrtc.call.contacts import contactsFor
from linkrtc.call.test.test_outbound import FakeClientLeg
from linkrtc.call.wsphones import WebSocketPhones
from linkrtc.signalling.directory import ClientDirectory
from linkrtc.sip.address import Source
from linkrtc.sip.bindings import Binding, BindingTable, flowOf
from linkrtc.sip.uri import SIPURI, NameAddr, parseURI
from linkrtc.testing import FakeRequest, FakeResponse, FakeServerLeg

WEBRTC_OFFER = "v=0\r\nm=audio 9 UDP/TLS/RTP/SAVPF 111\r\n"
WEBRTC_ANSWER = "v=0\r\nm=audio 9 UDP/TLS/RTP/SAVPF 111\r\na=answer\r\n"


class FakeWebSocket:
    connected = True


class FakeEngine:
    def __init__(self):
        self.messages = []
        self.lost = []
        self.calls = {}
        self.onCall = None

    def clientMessageReceived(self, connection, message):
        self.messages.append((connection, message))
        if message["type"] == "call" and self.onCall is not None:
            self.onCall(connection, message)

    def clientLost(self, connection):
        self.lost.append(connection)


class FakeUserAgent:
    def localContact(self, source=None, secure=False):
        return NameAddr(SIPURI("sip", host="203.0.113.10", port=8080,
                               params={"transport": "ws"}))


class FakeLeg(FakeServerLeg):
    def __init__(self, source, body=WEBRTC_OFFER.encode(), uri="sip:bob@203.0.113.10"):
        super().__init__(request=FakeRequest("INVITE", uri=uri, body=body))
        self.source = source
        self.request.uri = parseURI(uri)


class WebSocketPhonesTests(SynchronousTestCase):
    def setUp(self):
        self.clock = Clock()
        self.bindings = BindingTable(self.clock, onChange=lambda user: self.phones.bindingsChanged(user))
        self.directory = ClientDirectory(self.clock, self.bindings)
        self.engine = FakeEngine()
        self.legs = []

        def legFactory(**kwargs):
            leg = FakeClientLeg(**kwargs)
            self.legs.append(leg)
            return leg

        self.phones = WebSocketPhones(self.clock, self.directory, self.bindings,
                                      engine=self.engine, userAgent=FakeUserAgent(),
                                      legFactory=legFactory)
        self.socket = FakeWebSocket()
        self.source = Source("WS", "192.0.2.7", 50000, connection=self.socket)

    def register(self, user="alice", source=None, uri="sip:k1@abc.invalid;transport=ws"):
        self.bindings.bind(Binding(user=user, contact=NameAddr(parseURI(uri)), uriText=uri,
                                   flow=flowOf(source or self.source), callId="c", cseq=1,
                                   expiresAt=self.clock.seconds() + 600))

    def sent(self, kind):
        return [m for _, m in self.engine.messages if m["type"] == kind]

    def test_wsBindingIsClient(self):
        """A WS binding puts a phone in the directory under the user's name; unbinding removes it."""
        self.register()
        [phone] = self.directory.connectionsFor("alice")
        self.assertEqual(phone.clientName, "alice")
        self.assertTrue(phone.connected)
        self.bindings.unbindAll("alice")
        self.assertEqual(self.directory.connectionsFor("alice"), [])
        self.assertEqual(self.engine.lost, [phone])

    def test_udpBindingNotClient(self):
        """A phone registered over UDP stays a SIP contact, not a client."""
        self.register(source=Source("UDP", "192.0.2.9", 5060), uri="sip:bob@192.0.2.9")
        self.assertEqual(self.directory.connectionsFor("alice"), [])
        self.assertEqual(len(contactsFor(self.bindings, "alice")), 1)

    def test_wsBindingNotContact(self):
        """A WS binding is not called with an RTP offer through the contact path."""
        self.register()
        self.assertEqual(contactsFor(self.bindings, "alice"), [])

    def test_socketGoneUnreachable(self):
        """Once its WebSocket closed, the phone is not connected and an incoming call is rejected."""
        self.register()
        [phone] = self.directory.connectionsFor("alice")
        self.socket.connected = False
        self.assertFalse(phone.connected)
        self.assertEqual(self.directory.connectionsFor("alice"), [])
        self.assertFalse(self.directory.isReachable("alice"))
        phone.sendMessage({"type": "incoming", "call": "c9", "sdp": WEBRTC_OFFER})
        self.assertEqual(self.legs, [])
        self.assertEqual(self.sent("reject"), [{"type": "reject", "call": "c9",
                                                "reason": "decline"}])

    def test_otherInviteToEngine(self):
        leg = FakeLeg(Source("UDP", "192.0.2.9", 5060))
        self.assertFalse(self.phones.takes(leg))
        self.assertEqual(leg.finals, [])

    def test_unregisteredWebSocketInvite(self):
        """An INVITE over a WebSocket nobody registered on gets 403."""
        leg = FakeLeg(self.source)
        self.assertTrue(self.phones.takes(leg))
        self.assertEqual(leg.finalStatus, 403)
        self.assertEqual(self.engine.messages, [])

    def placed(self):
        """The phone calls bob; the engine says calling with id c1."""
        self.register()

        def calling(connection, message):
            connection.sendMessage({"type": "calling", "call": "c1", "ref": message["ref"]})

        self.engine.onCall = calling
        leg = FakeLeg(self.source)
        self.assertTrue(self.phones.takes(leg))
        [phone] = self.directory.connectionsFor("alice")
        return phone, leg

    def test_phoneCalls(self):
        """
        The phone's INVITE is the client's call to the Request-URI's user
        with its WebRTC offer; ringing is 180; the answer with confirmed is
        200 with the WebRTC answer; dropped is a BYE.
        """
        phone, leg = self.placed()
        [call] = self.sent("call")
        self.assertEqual((call["to"], call["sdp"]), ("bob", WEBRTC_OFFER))
        phone.sendMessage({"type": "state", "call": "c1", "state": "ringing"})
        self.assertEqual([p.status for p in leg.provisionals], [180])
        phone.sendMessage({"type": "answer", "call": "c1", "sdp": WEBRTC_ANSWER})
        self.assertEqual(leg.finals, [])
        phone.sendMessage({"type": "state", "call": "c1", "state": "confirmed"})
        [final] = leg.finals
        self.assertEqual((final.status, final.body), (200, WEBRTC_ANSWER.encode()))
        self.assertEqual(final.contentType, "application/sdp")
        leg.dialog = object()
        leg.state = "confirmed"
        phone.sendMessage({"type": "state", "call": "c1", "state": "dropped", "cause": 200})
        self.assertEqual(len(leg.byes), 1)

    def test_phoneHangsUp(self):
        """The phone's BYE is answered 200 and is the client's hangup."""
        phone, leg = self.placed()
        phone.sendMessage({"type": "answer", "call": "c1", "sdp": WEBRTC_ANSWER})
        phone.sendMessage({"type": "state", "call": "c1", "state": "confirmed"})
        [ok] = leg.receive("BYE")
        self.assertEqual(ok.status, 200)
        self.assertEqual(self.sent("hangup"), [{"type": "hangup", "call": "c1"}])
        # The engine's dropped that follows sends no BYE back.
        phone.sendMessage({"type": "state", "call": "c1", "state": "dropped", "cause": 200})
        self.assertEqual(leg.byes, [])

    def test_sessionRefresh(self):
        """
        The phone's UPDATE without SDP (a session refresh, RFC 4028) gets
        200; a re-INVITE or an UPDATE with SDP still gets 488.
        """
        phone, leg = self.placed()
        phone.sendMessage({"type": "answer", "call": "c1", "sdp": WEBRTC_ANSWER})
        phone.sendMessage({"type": "state", "call": "c1", "state": "confirmed"})
        self.assertEqual([r.status for r in leg.receive("UPDATE")], [200])
        self.assertEqual([r.status for r in leg.receive("UPDATE", b"v=0", "application/sdp")],
                         [200, 488])
        self.assertEqual([r.status for r in leg.receive("INVITE", b"v=0", "application/sdp")],
                         [488])
        self.assertEqual(self.sent("hangup"), [])

    def test_phoneCancels(self):
        phone, leg = self.placed()
        leg.cancel()
        self.assertEqual(leg.finalStatus, 487)
        self.assertEqual(self.sent("hangup"), [{"type": "hangup", "call": "c1"}])

    def test_refused(self):
        """An engine error for the call's ref is the INVITE's final status."""
        self.register()
        self.engine.onCall = lambda c, m: c.sendMessage(
            {"type": "error", "code": 404, "message": "no", "ref": m["ref"]})
        leg = FakeLeg(self.source)
        self.assertTrue(self.phones.takes(leg))
        self.assertEqual(leg.finalStatus, 404)

    def test_droppedBeforeAnswer(self):
        phone, leg = self.placed()
        phone.sendMessage({"type": "state", "call": "c1", "state": "dropped", "cause": 486})
        self.assertEqual(leg.finalStatus, 486)

    def test_noOffer(self):
        """An offerless INVITE from a phone gets 488."""
        self.register()
        leg = FakeLeg(self.source, body=b"")
        self.assertTrue(self.phones.takes(leg))
        self.assertEqual(leg.finalStatus, 488)
        self.assertEqual(self.engine.messages, [])

    def incoming(self):
        self.register()
        [phone] = self.directory.connectionsFor("alice")
        phone.sendMessage({"type": "incoming", "call": "c2", "from": "sip:bob@192.0.2.9",
                           "to": "sip:alice@203.0.113.10", "sdp": WEBRTC_OFFER})
        [leg] = self.legs
        return phone, leg

    def test_phoneCalled(self):
        """
        The engine's incoming is an INVITE with the WebRTC offer to the
        contact, over the REGISTER's flow (its WebSocket); 180 is ringing,
        200 is accept with the phone's answer.
        """
        phone, leg = self.incoming()
        self.assertEqual(leg.actions, ["start"])
        self.assertEqual(str(leg.kwargs["requestURI"]), "sip:k1@abc.invalid;transport=ws")
        self.assertIs(leg.kwargs["proxy"], self.source)
        self.assertEqual(leg.kwargs["body"], WEBRTC_OFFER.encode())
        self.assertEqual(leg.kwargs["fromAddr"].uri.user, "bob")
        leg.progress(180)
        leg.answer(WEBRTC_ANSWER.encode())
        self.assertEqual(self.sent("ringing"), [{"type": "ringing", "call": "c2"}])
        self.assertEqual(self.sent("accept"), [{"type": "accept", "call": "c2",
                                                "sdp": WEBRTC_ANSWER}])
        leg.dialog = object()
        leg.state = "confirmed"
        phone.sendMessage({"type": "state", "call": "c2", "state": "dropped", "cause": 200})
        self.assertEqual(leg.actions, ["start", "bye"])

    def test_calledOfferless(self):
        """
        An incoming without SDP (offerless, passthrough): an offerless
        INVITE whose ACK waits; 200 is accept with the phone's offer; the
        engine's answer goes in the ACK.
        """
        self.register()
        [phone] = self.directory.connectionsFor("alice")
        phone.sendMessage({"type": "incoming", "call": "c2", "from": "sip:bob@192.0.2.9",
                           "to": "sip:alice@203.0.113.10", "sdp": None})
        [leg] = self.legs
        self.assertEqual((leg.kwargs["body"], leg.kwargs["delayedAck"]), (None, True))
        acks = []
        leg.sendAck = acks.append
        leg.answer(WEBRTC_OFFER.encode())
        self.assertEqual(self.sent("accept"), [{"type": "accept", "call": "c2",
                                                "sdp": WEBRTC_OFFER}])
        phone.sendMessage({"type": "answer", "call": "c2", "sdp": WEBRTC_ANSWER})
        self.assertEqual(acks, [WEBRTC_ANSWER])

    def test_calledBusy(self):
        phone, leg = self.incoming()
        leg.listener.legFailed(486, "Busy Here", FakeResponse(486))
        self.assertEqual(self.sent("reject"), [{"type": "reject", "call": "c2",
                                                "reason": "busy"}])

    def test_calledCancelled(self):
        """The caller gives up while the phone rings: CANCEL."""
        phone, leg = self.incoming()
        phone.sendMessage({"type": "state", "call": "c2", "state": "dropped", "cause": 487})
        self.assertEqual(leg.actions, ["start", "cancel"])
        self.assertIsNone(leg.cancelReason)

    def test_calledAnsweredElsewhere(self):
        """Another device of the user answered: the CANCEL says so (RFC 3326 Reason)."""
        phone, leg = self.incoming()
        phone.sendMessage({"type": "state", "call": "c2", "state": "dropped",
                           "cause": "answered elsewhere"})
        self.assertEqual(leg.actions, ["start", "cancel"])
        self.assertEqual(leg.cancelReason, 'SIP;cause=200;text="Call completed elsewhere"')


class EngineTests(SynchronousTestCase):
    """
    Through the real call manager: a WebSocket phone's INVITE reaches a
    phone registered over UDP as a client's call to it by name.
    """

    def setUp(self):
        from linkrtc.call.dialer import OutboundDialer
        from linkrtc.call.passthrough import PassthroughMediaFactory
        from linkrtc.call.test.test_contacts import FakeUserAgent as ContactUserAgent
        from linkrtc.call.test.test_outbound import OutgoingApplication
        from linkrtc.testing import CallHarness

        self.h = CallHarness(mediaFactory=PassthroughMediaFactory(),
                             application=OutgoingApplication())
        self.bindings = BindingTable(self.h.clock,
                                     onChange=lambda user: self.phones.bindingsChanged(user))
        self.legs = []

        def legFactory(**kwargs):
            leg = FakeClientLeg(**kwargs)
            self.legs.append(leg)
            return leg

        self.h.manager.dialer = OutboundDialer(ContactUserAgent(), (), self.h.clock,
                                               legFactory=legFactory, bindings=self.bindings)
        self.phones = WebSocketPhones(self.h.clock, ClientDirectory(self.h.clock, self.bindings),
                                      self.bindings, engine=self.h.manager,
                                      userAgent=FakeUserAgent(), legFactory=legFactory)
        self.h.manager.webSocketPhones = self.phones
        self.socket = FakeWebSocket()
        self.source = Source("WS", "192.0.2.7", 50000, connection=self.socket)
        for user, flow, uri in (("alice", self.source, "sip:k1@abc.invalid;transport=ws"),
                                ("bob", Source("UDP", "192.0.2.9", 5062), "sip:bob@192.0.2.9:5062")):
            self.bindings.bind(Binding(user=user, contact=NameAddr(parseURI(uri)), uriText=uri,
                                       flow=flowOf(flow), callId=user, cseq=1,
                                       expiresAt=self.h.clock.seconds() + 600))

    def test_wsPhoneCallsUDPPhone(self):
        leg = FakeLeg(self.source)
        self.assertIsNone(self.h.manager.inviteReceived(leg))
        [call] = self.h.manager.calls.values()
        self.assertEqual(call.clientName, "alice")
        self.h.application.decide(call, {"action": "route", "trunk": None})
        [out] = self.legs
        self.assertEqual(str(out.kwargs["requestURI"]), "sip:bob@192.0.2.9:5062")
        self.assertEqual(out.kwargs["body"], WEBRTC_OFFER.encode())
        out.progress(180)
        self.assertEqual([p.status for p in leg.provisionals], [180])
        out.answer(WEBRTC_ANSWER.encode())
        [final] = leg.finals
        self.assertEqual((final.status, final.body), (200, WEBRTC_ANSWER.encode()))
