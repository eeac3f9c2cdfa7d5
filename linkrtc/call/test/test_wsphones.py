"""
Tests for L{linkrtc.call.wsphones}: SIP phones registered over WebSocket
as clients of the call engine, with fake legs and a fake engine.
"""

from twisted.internet.task import Clock
from twisted.trial.unittest import SynchronousTestCase

from linkrtc.call.contacts import contactsFor
from linkrtc.call.phonehold import HOLD_RETRIES, HOLD_RETRY_DELAY
from linkrtc.call.test.test_outbound import FakeClientLeg
from linkrtc.call.test.test_wsindialog import AIORTC_ANSWER, CHROME_OFFER, reoffer
from linkrtc.call.wsphones import WebSocketPhones
from linkrtc.signalling.directory import ClientDirectory
from linkrtc.sip.address import Source
from linkrtc.sip.bindings import Binding, BindingTable, flowOf
from linkrtc.sip.test.test_outbound import LegMixin
from linkrtc.sip.uri import SIPURI, NameAddr, parseURI
from linkrtc.testing import FakeRequest, FakeResponse, FakeServerLeg, SentResponse

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


def ask(leg, method, body=b"", contentType=None):
    """
    The phone sends C{method} in the call's dialog, on either leg.

    @return: the C{list} of L{SentResponse}s it got.
    """
    if isinstance(body, str):
        body = body.encode()
    request = FakeRequest(method, body=body, contentType=contentType)
    answers = []
    leg.listener.legRequestReceived(
        request, lambda status, reason=None, body=None, contentType=None, headers=():
        answers.append(SentResponse(status, reason, body, contentType, headers)))
    return answers


class InDialogTests(SynchronousTestCase):
    """
    A WebSocket phone's INFO, re-INVITE and UPDATE in a call, when it
    called (server leg: our SDP the answer) and when it was called
    (client leg: our SDP the offer).
    """

    setUp = WebSocketPhonesTests.setUp
    register = WebSocketPhonesTests.register
    sent = WebSocketPhonesTests.sent

    def calling(self):
        """alice (Chrome) calls; the engine answers with aiortc's SDP: call c1."""
        self.register()

        def calling(connection, message):
            connection.sendMessage({"type": "calling", "call": "c1", "ref": message["ref"]})

        self.engine.onCall = calling
        leg = FakeLeg(self.source, body=CHROME_OFFER.encode())
        self.phones.takes(leg)
        [phone] = self.directory.connectionsFor("alice")
        phone.sendMessage({"type": "answer", "call": "c1", "sdp": AIORTC_ANSWER})
        phone.sendMessage({"type": "state", "call": "c1", "state": "confirmed"})
        self.assertEqual(leg.finals[0].status, 200)
        self.engine.messages.clear()
        return phone, leg, "c1"

    def called(self):
        """The engine calls alice with aiortc's offer; Chrome answers (active): call c2."""
        self.register()
        [phone] = self.directory.connectionsFor("alice")
        ourOffer = AIORTC_ANSWER.replace("setup:active", "setup:actpass")
        phone.sendMessage({"type": "incoming", "call": "c2", "from": "sip:bob@192.0.2.9",
                           "sdp": ourOffer})
        [leg] = self.legs
        leg.answer(CHROME_OFFER.replace("setup:actpass", "setup:active").encode())
        self.engine.messages.clear()
        return phone, leg, "c2"

    def both(self):
        return [self.calling, self.called]

    def test_dtmfRelay(self):
        """JsSIP's INFO (application/dtmf-relay): 200 and the client's dtmf."""
        for setUp in self.both():
            self.setUp()
            phone, leg, call = setUp()
            [ok] = ask(leg, "INFO", b"Signal=5\r\nDuration=100\r\n", "application/dtmf-relay")
            self.assertEqual(ok.status, 200)
            [ok] = ask(leg, "INFO", b"#", "application/dtmf")
            self.assertEqual(ok.status, 200)
            self.assertEqual(self.sent("dtmf"), [{"type": "dtmf", "call": call, "digits": "5"},
                                                 {"type": "dtmf", "call": call, "digits": "#"}])

    def test_badDtmf(self):
        """A bad DTMF body: 400 whose reason says what is wrong; nothing to the engine."""
        phone, leg, call = self.calling()
        [bad] = ask(leg, "INFO", b"Signal=X\r\n", "application/dtmf-relay")
        self.assertEqual((bad.status, bad.reason), (400, "Signal is not one of 0-9 * # A-D"))
        [bad] = ask(leg, "INFO", b"Duration=100\r\n", "application/dtmf-relay")
        self.assertEqual((bad.status, bad.reason), (400, "dtmf-relay body has no Signal line"))
        self.assertEqual(self.engine.messages, [])

    def test_otherInfo(self):
        """An INFO of another type: 415 with Accept; an empty one (no type): 200."""
        phone, leg, call = self.calling()
        [refused] = ask(leg, "INFO", b"{}", "application/json")
        self.assertEqual(refused.status, 415)
        self.assertEqual(list(refused.headers),
                         [("Accept", "application/dtmf-relay, application/dtmf")])
        [ok] = ask(leg, "INFO")
        self.assertEqual(ok.status, 200)
        self.assertEqual(self.engine.messages, [])

    def test_dtmfAfterEnd(self):
        """An INFO once the engine dropped the call: 481."""
        phone, leg, call = self.calling()
        leg.dialog, leg.state = object(), "confirmed"
        phone.sendMessage({"type": "state", "call": call, "state": "dropped", "cause": 200})
        self.engine.messages.clear()
        [gone] = ask(leg, "INFO", b"Signal=5\r\n", "application/dtmf-relay")
        self.assertEqual(gone.status, 481)
        self.assertEqual(self.engine.messages, [])

    def test_holdAndResume(self):
        """
        Chrome's hold (sendonly re-INVITE, actpass): 200 with our SDP
        recvonly, our DTLS role, the version up; the client's hold. Its
        resume: sendrecv, the version up again; unhold.
        """
        for setUp, role in ((self.calling, "active"), (self.called, "passive")):
            self.setUp()
            phone, leg, call = setUp()
            [ok] = ask(leg, "INVITE", reoffer("sendonly"))
            self.assertEqual((ok.status, ok.contentType), (200, "application/sdp"))
            answer = ok.body.decode()
            self.assertIn("a=recvonly\r\n", answer)
            self.assertIn(f"a=setup:{role}\r\n", answer)
            self.assertIn("o=- 3912345678 3912345679 ", answer)
            self.assertEqual(self.sent("hold"), [{"type": "hold", "call": call}])
            phone.sendMessage({"type": "state", "call": call, "state": "hold"})
            [ok] = ask(leg, "UPDATE", reoffer("sendrecv", 4))
            self.assertEqual(ok.status, 200)
            self.assertIn("a=sendrecv\r\n", ok.body.decode())
            self.assertIn("o=- 3912345678 3912345680 ", ok.body.decode())
            self.assertEqual(self.sent("unhold"), [{"type": "unhold", "call": call}])

    def test_repeatedHold(self):
        """The same hold again: the same SDP (same version), nothing more to the engine."""
        phone, leg, call = self.calling()
        [first] = ask(leg, "INVITE", reoffer("sendonly"))
        [second] = ask(leg, "INVITE", reoffer("sendonly", 4))
        self.assertEqual(first.body, second.body)
        self.assertEqual(len(self.sent("hold")), 1)

    def test_refusedReoffer(self):
        """An ICE restart, a new fingerprint or a dropped codec: 488 saying why; nothing changes."""
        phone, leg, call = self.calling()
        for offer, reason in (
                (reoffer(ice=("ice-ufrag:Chrm", "ice-ufrag:New1")),
                 "the re-offer restarts ICE (new ice-ufrag/ice-pwd)"),
                (reoffer(fp=("AA:BB:CC:DD", "AA:BB:CC:EE")),
                 "the re-offer changes the DTLS fingerprint"),
                (reoffer(codecs=("111 0 8 126", "0 8 126")),
                 "the re-offer drops OPUS/48000 (payload type 111)")):
            [refused] = ask(leg, "INVITE", offer)
            self.assertEqual((refused.status, refused.reason), (488, reason))
        [notSdp] = ask(leg, "INVITE", b"hello", "text/plain")
        self.assertEqual(notSdp.status, 488)
        self.assertEqual(self.engine.messages, [])
        # What we last sent is still the answer of the call.
        [ok] = ask(leg, "INVITE")
        self.assertEqual(ok.body, AIORTC_ANSWER.encode())

    def test_refresh(self):
        """
        A re-INVITE without SDP: 200 with the SDP last sent (the answer
        comes in the ACK); an UPDATE without SDP: 200 without body.
        """
        for setUp in self.both():
            self.setUp()
            phone, leg, call = setUp()
            [ok] = ask(leg, "INVITE", reoffer("sendonly"))
            held = ok.body
            [ok] = ask(leg, "INVITE")
            self.assertEqual((ok.status, ok.body, ok.contentType), (200, held, "application/sdp"))
            [ok] = ask(leg, "UPDATE")
            self.assertEqual((ok.status, ok.body), (200, None))
            self.assertEqual([m["type"] for _, m in self.engine.messages], ["hold"])

    def retries(self):
        return [c for c in self.clock.getDelayedCalls() if c.func.__name__ == "_askHold"]

    def test_holdRetried(self):
        """
        The engine refuses the hold with 409 (a re-INVITE of the far side
        was pending): asked again HOLD_RETRY_DELAY seconds later, at most
        HOLD_RETRIES times in a row.
        """
        phone, leg, call = self.calling()
        ask(leg, "INVITE", reoffer("sendonly"))
        for _ in range(HOLD_RETRIES + 2):
            phone.sendMessage({"type": "error", "call": call, "code": 409, "message": "busy"})
            self.clock.advance(HOLD_RETRY_DELAY)
        self.assertEqual(len(self.sent("hold")), 1 + HOLD_RETRIES)
        self.assertEqual(self.retries(), [])

    def test_holdRetryStopsWithCall(self):
        """A pending retry is dropped when the call ends."""
        phone, leg, call = self.calling()
        ask(leg, "INVITE", reoffer("sendonly"))
        phone.sendMessage({"type": "error", "call": call, "code": 409, "message": "busy"})
        self.assertEqual(len(self.retries()), 1)
        ask(leg, "BYE")
        self.assertEqual(self.retries(), [])
        self.assertEqual(self.sent("hangup"), [{"type": "hangup", "call": call}])

    def test_otherRequest(self):
        phone, leg, call = self.calling()
        [refused] = ask(leg, "MESSAGE", b"hi", "text/plain")
        self.assertEqual(refused.status, 501)


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


class EngineInDialogTests(SynchronousTestCase):
    """Through the real call manager: the WebSocket phone's DTMF and hold reach the call."""

    setUp = EngineTests.setUp

    def answered(self):
        leg = FakeLeg(self.source, body=CHROME_OFFER.encode())
        self.h.manager.inviteReceived(leg)
        [call] = self.h.manager.calls.values()
        self.h.application.decide(call, {"action": "route", "trunk": None})
        [out] = self.legs
        out.answer(AIORTC_ANSWER.encode())
        self.assertEqual(leg.finals[0].status, 200)
        return call, leg

    def test_dtmfAndHold(self):
        """
        INFO: the call's media is asked to send the key (RFC 4733 on the
        SIP side); a sendonly re-INVITE: the call is held (passthrough:
        at once), sendrecv: resumed.
        """
        call, leg = self.answered()
        keys = []
        call.media.sendDigits = keys.append
        [ok] = ask(leg, "INFO", b"Signal=7\r\nDuration=100\r\n", "application/dtmf-relay")
        self.assertEqual((ok.status, keys), (200, ["7"]))
        [ok] = ask(leg, "INVITE", reoffer("sendonly"))
        self.assertEqual(ok.status, 200)
        self.assertTrue(call.held)
        [ok] = ask(leg, "INVITE", reoffer("sendrecv", 4))
        self.assertEqual(ok.status, 200)
        self.assertFalse(call.held)


class WireTests(LegMixin, SynchronousTestCase):
    """
    The phone is called through the real INVITE client leg and
    transaction layer: its re-INVITE on the wire, and glare (the leg's).
    """

    def setUp(self):
        LegMixin.setUp(self)
        self.bindings = BindingTable(self.clock,
                                     onChange=lambda user: self.phones.bindingsChanged(user))
        self.engine = FakeEngine()
        self.phones = WebSocketPhones(self.clock, ClientDirectory(self.clock, self.bindings),
                                      self.bindings, engine=self.engine, userAgent=self.ua)
        source = Source("WS", "192.0.2.99", 5070, connection=FakeWebSocket())
        uri = "sip:k1@abc.invalid;transport=ws"
        self.bindings.bind(Binding(user="alice", contact=NameAddr(parseURI(uri)), uriText=uri,
                                   flow=flowOf(source), callId="c", cseq=1,
                                   expiresAt=self.clock.seconds() + 600))
        phone = self.phones.phoneFor("alice")
        ourOffer = AIORTC_ANSWER.replace("setup:active", "setup:actpass")
        phone.sendMessage({"type": "incoming", "call": "c2", "from": "sip:bob@192.0.2.9",
                           "sdp": ourOffer})
        self.respond(200, body=CHROME_OFFER.replace("setup:actpass", "setup:active").encode())
        self.leg = phone._calls["c2"].leg

    def responses(self, method):
        return [r for r in self.transport.responses() if r.cseq.method == method]

    def test_holdOnTheWire(self):
        """Chrome's hold: 200 with our SDP, recvonly, passive (the role in use); the client's hold."""
        self.farRequest("INVITE", self.leg, cseq=20, body=reoffer("sendonly").encode())
        [ok] = self.responses("INVITE")
        self.assertEqual(ok.status, 200)
        self.assertEqual(ok.headers.get("Content-Type"), "application/sdp")
        self.assertIn(b"a=recvonly\r\n", ok.body)
        self.assertIn(b"a=setup:passive\r\n", ok.body)
        self.assertEqual([m for _, m in self.engine.messages if m["type"] == "hold"],
                         [{"type": "hold", "call": "c2"}])

    def test_glareWithOurReinvite(self):
        """The phone's re-INVITE while one of ours to it is out: 491, nothing changes."""
        self.leg.sendRequest("INVITE", AIORTC_ANSWER.encode(), "application/sdp",
                             endOnFailure=False)
        self.farRequest("INVITE", self.leg, cseq=20, body=reoffer("sendonly").encode())
        self.assertEqual([r.status for r in self.responses("INVITE")], [491])
        self.assertEqual([m for _, m in self.engine.messages if m["type"] == "hold"], [])

    def test_reinviteAfterReinvite(self):
        """
        Our answer to a re-INVITE is sent at once (no media to wait for),
        so the phone's next one finds none pending: hold then resume, both
        200 (the leg's 500 with Retry-After is for one still being answered).
        """
        self.farRequest("INVITE", self.leg, cseq=20, body=reoffer("sendonly").encode())
        self.farRequest("INVITE", self.leg, cseq=21, branch="z9hG4bKfar2",
                        body=reoffer("sendrecv", 4).encode())
        [held, resumed] = self.responses("INVITE")
        self.assertEqual((held.status, resumed.status), (200, 200))
        self.assertIn(b"a=sendrecv\r\n", resumed.body)
