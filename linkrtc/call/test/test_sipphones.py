"""
Ringing every device of a user (L{linkrtc.call.fork},
L{linkrtc.call.sipphones}): browsers and registered SIP phones at once,
first answer wins, on the fakes of L{linkrtc.testing} and fake SIP legs.
"""

from twisted.internet import defer
from twisted.trial.unittest import SynchronousTestCase
from zope.interface import implementer

from linkrtc.call.fork import ANSWERED_ELSEWHERE_REASON, bestResponse
from linkrtc.call.passthrough import PassthroughMediaFactory
from linkrtc.call.sipphones import HOLD_RETRIES, HOLD_RETRY_DELAY, PhoneRinger
from linkrtc.call.test.test_outbound import FakeClientLeg
from linkrtc.error import MediaError
from linkrtc.interfaces import IPhoneMediaSession
from linkrtc.sip import sessiontimer
from linkrtc.sip.bindings import Binding, BindingTable, flowOf
from linkrtc.sip.test.test_outbound import LegMixin
from linkrtc.sip.transport import Address
from linkrtc.sip.uri import SIPURI, NameAddr, parseURI
from linkrtc.testing import (
    CLIENT_ANSWER,
    SIP_OFFER,
    CallHarness,
    FakeApplication,
    FakeMediaFactory,
    FakeReofferMediaSession,
    FakeRequest,
)

PHONE_ANSWER = CLIENT_ANSWER.replace("198.51.100.7", "198.51.100.8")


class FakeUserAgent:
    def localContact(self, source=None, secure=False):
        return NameAddr(SIPURI("sip", host="203.0.113.10", port=5060))


class BranchLeg(FakeClientLeg):
    """A fake INVITE client leg whose 2xx makes a dialog, as the real one's does."""

    state = "calling"

    def answer(self, body=PHONE_ANSWER.encode()):
        self.dialog = object()
        self.state = "confirmed"
        super().answer(body)

    def sendBye(self):
        self.state = "terminated"
        return super().sendBye()

    def sendAck(self, body=None):
        self.actions.append("ack")
        self.ackBody = body


def _reoffer(sdp, direction):
    """C{sdp} (C{str}) with its direction attribute made C{direction}, as C{bytes}."""
    return sdp.replace("a=sendrecv", "a=" + direction).encode()


@implementer(IPhoneMediaSession)
class FakePhoneMediaSession(FakeReofferMediaSession):
    """
    Bridge mode's shape for the engine: the client's hold is a re-INVITE
    of the caller (L{FakeReofferMediaSession}); the phone side answers a
    re-offer with C{PHONE_SIDE} and the mirrored direction, or fails
    (L{MediaError}) for an offer without PCMU.
    """

    PHONE_SIDE = b"v=0\r\no=linkrtc 7 %d IN IP4 203.0.113.10\r\nm=audio 30000 RTP/AVP 0\r\na=%s\r\n"
    MIRROR = {"sendonly": "recvonly", "inactive": "inactive", "recvonly": "sendonly"}

    def phoneOffer(self, sipOffer):
        self.calls.append(("phoneOffer", sipOffer))
        return defer.succeed(self.PHONE_SIDE % (0, b"sendrecv"))

    def phoneAnswer(self, sdp):
        self.calls.append(("phoneAnswer", sdp))
        return defer.succeed(sdp.encode())

    def phoneReoffer(self, sdp):
        self.calls.append(("phoneReoffer", sdp))
        if "PCMU" not in sdp:
            return defer.fail(MediaError("no codec of the call"))
        direction = next((d for d in self.MIRROR if "a=" + d in sdp), "sendrecv")
        answer = self.MIRROR.get(direction, "sendrecv")
        return defer.succeed((self.PHONE_SIDE % (1, answer.encode()), direction != "sendrecv"))

    def phoneSdp(self):
        return self.PHONE_SIDE % (0, b"sendrecv")

    def sipAckBody(self, sdp):
        """The ACK's answer to an offerless INVITE: refused (L{MediaError}) without PCMU."""
        self.calls.append(("sipAckBody", sdp))
        if b"PCMU" not in sdp:
            return defer.fail(MediaError("SDP shares no codec with us (we support PCMU)"))
        return defer.succeed(None)


class PhoneMediaFactory(FakeMediaFactory):
    def newSession(self, callId, listener):
        session = FakePhoneMediaSession(callId, listener)
        self.sessions[callId] = session
        return session


class ForkTests(SynchronousTestCase):
    def setUp(self, mediaFactory=None, maxForks=10):
        self.h = CallHarness(mediaFactory=mediaFactory or PassthroughMediaFactory(),
                             application=FakeApplication())
        self.bindings = BindingTable(self.h.clock)
        self.legs = []

        def legFactory(**kwargs):
            leg = BranchLeg(**kwargs)
            leg.byeResult = defer.succeed(None)
            self.legs.append(leg)
            return leg

        services = self.h.manager.services
        services.sipPhones = PhoneRinger(self.h.clock, self.bindings, FakeUserAgent(),
                                         legFactory=legFactory)
        services.maxForks = maxForks

    def bind(self, user="bob", port=5062):
        uri = f"sip:{user}@10.0.0.2:{port}"
        self.bindings.bind(Binding(user=user, contact=NameAddr(parseURI(uri)), uriText=uri,
                                   flow=flowOf(Address("UDP", "198.51.100.7", port)),
                                   callId=f"c{port}", cseq=1,
                                   expiresAt=self.h.clock.seconds() + 600))

    def ring(self, user="bob", **decision):
        call, leg = self.h.invite(to=f"sip:{user}@example.com")
        self.h.application.decide(call, dict({"action": "route", "client": user}, **decision))
        return call, leg

    def cdr(self, call):
        return [c for c in self.h.cdrs if c["call"] == call.id][0]

    def test_sipOnlyUserRings(self):
        """A user with only SIP phones: each contact gets the INVITE (was 480)."""
        self.bind(port=5062)
        self.bind(port=5064)
        call, leg = self.ring()
        self.assertEqual(len(self.legs), 2)
        for branch in self.legs:
            self.assertEqual(branch.actions, ["start"])
            self.assertEqual(branch.kwargs["body"], SIP_OFFER)
            self.assertEqual(branch.kwargs["proxy"].host, "198.51.100.7")
            self.assertEqual(branch.kwargs["toAddr"].uri.user, "bob")
            self.assertEqual(branch.kwargs["fromAddr"].uri.user, "bob")
            self.assertEqual(branch.kwargs["requestURI"].port in (5062, 5064), True)
        self.assertIsNone(leg.finalStatus)
        self.assertEqual(call.state.name, "calling")

    def test_ringingThenFirstAnswerWins(self):
        """180 from a phone rings the caller; the first 200 wins, the others get CANCEL with Reason."""
        self.bind(port=5062)
        self.bind(port=5064)
        self.bind(port=5066)
        call, leg = self.ring()
        a, b, c = self.legs
        a.progress(180)
        self.assertEqual([p.status for p in leg.provisionals], [180])
        b.answer()
        self.assertEqual(leg.finalStatus, 200)
        self.assertEqual(leg.finals[0].body, PHONE_ANSWER.encode())
        for loser in (a, c):
            self.assertEqual(loser.actions, ["start", "cancel"])
            self.assertEqual(loser.cancelReason, ANSWERED_ELSEWHERE_REASON)
        self.assertEqual(b.actions, ["start"])
        leg.ack()
        self.assertEqual(call.state.name, "confirmed")
        leg.receive("BYE")
        self.assertEqual(b.actions, ["start", "bye"])
        self.assertEqual(self.cdr(call)["device"], "sip:bob@10.0.0.2:5064")
        self.assertEqual(self.h.startCdrs[0]["device"], "sip:bob@10.0.0.2:5064")

    def test_browserAndPhoneRing(self):
        """A browser and a phone of one user both ring; the browser wins: the phone is CANCELed."""
        alice = self.h.connect("bob")
        self.bind()
        call, leg = self.ring()
        [incoming] = alice.ofType("incoming")
        self.assertEqual(incoming["sdp"], SIP_OFFER.decode())
        [phone] = self.legs
        self.h.clientSays(alice, "accept", call, sdp=CLIENT_ANSWER)
        self.assertEqual(leg.finalStatus, 200)
        self.assertEqual(phone.actions, ["start", "cancel"])
        self.assertEqual(phone.cancelReason, ANSWERED_ELSEWHERE_REASON)
        alice.peer = "tcp4:192.0.2.33:41000"
        leg.ack()
        leg.receive("BYE")
        self.assertEqual(self.cdr(call)["device"], "ws:tcp4:192.0.2.33:41000")

    def test_phoneWinsBrowserTold(self):
        """The phone answers first: the browser gets dropped, answered elsewhere."""
        alice = self.h.connect("bob")
        self.bind()
        call, leg = self.ring()
        self.legs[0].answer()
        self.assertEqual(leg.finalStatus, 200)
        self.assertEqual(alice.ofType("state")[-1],
                         {"type": "state", "call": call.id, "state": "dropped",
                          "cause": "answered elsewhere"})

    def test_late200AfterWinnerIsEnded(self):
        """A phone's 200 that comes once another device won is ended with BYE."""
        self.bind(port=5062)
        self.bind(port=5064)
        call, leg = self.ring()
        a, b = self.legs
        a.answer()
        b.answer()
        self.assertEqual(b.actions, ["start", "cancel", "bye"])
        self.assertEqual([f.status for f in leg.finals], [200])

    def test_allFailBestResponse(self):
        """Every branch fails: the caller gets the lowest class (486 before 503 and 480)."""
        self.bind(port=5062)
        self.bind(port=5064)
        self.bind(port=5066)
        call, leg = self.ring()
        a, b, c = self.legs
        a.fail(503)
        self.assertIsNone(leg.finalStatus)
        b.fail(486)
        c.fail(408)
        self.assertEqual(leg.finalStatus, 486)
        self.assertEqual(call.state.name, "dropped")

    def test_6xxEndsTheFork(self):
        """A 603 from one phone ends the call with 603; the other branches are CANCELed."""
        self.bind(port=5062)
        self.bind(port=5064)
        call, leg = self.ring()
        a, b = self.legs
        a.fail(603, "Decline")
        self.assertEqual(leg.finalStatus, 603)
        self.assertEqual(b.actions, ["start", "cancel"])
        self.assertIsNone(b.cancelReason)

    def test_callerCancels(self):
        """The caller's CANCEL: every branch is CANCELed, without the Reason of an answer."""
        self.bind(port=5062)
        self.bind(port=5064)
        call, leg = self.ring()
        leg.cancel()
        self.assertEqual(leg.finalStatus, 487)
        for branch in self.legs:
            self.assertEqual(branch.actions, ["start", "cancel"])
            self.assertIsNone(branch.cancelReason)

    def test_phoneHangsUp(self):
        """The answering phone's BYE: 200 to it, BYE to the caller."""
        self.bind()
        call, leg = self.ring()
        [phone] = self.legs
        phone.answer()
        leg.ack()
        self.assertEqual(phone.bye(), [200])
        self.assertEqual(call.state.name, "dropped")
        self.assertEqual(len(leg.byes), 1)
        self.assertEqual(phone.actions, ["start"])

    def test_boundOnForks(self):
        """No more than max-forks devices ring; the rest are left out (logged)."""
        self.setUp(maxForks=2)
        browser = self.h.connect("bob")
        for port in (5062, 5064, 5066):
            self.bind(port=port)
        call, leg = self.ring()
        self.assertEqual(len(browser.ofType("incoming")), 1)
        self.assertEqual(len(self.legs), 1)
        self.assertEqual(len(call.connections), 2)

    def test_clientsList(self):
        """A route decision with C{clients} rings every device of every name."""
        alice = self.h.connect("alice")
        self.bind("bob")
        call, leg = self.ring("bob", clients=["bob", "alice"])
        self.assertEqual(len(alice.ofType("incoming")), 1)
        self.assertEqual(len(self.legs), 1)
        self.assertEqual(call.clientName, "bob")

    def test_offerlessPassthrough(self):
        """
        Passthrough, offerless INVITE: the phone gets an offerless INVITE
        whose ACK waits (C{delayedAck}); its 200's offer goes in the
        caller's 200 OK as is; the caller's ACK answer goes in the ACK to
        the phone; the phone's hold re-INVITE is answered with the
        caller's answer made recvonly.
        """
        self.bind()
        call, leg = self.h.invite(to="sip:bob@example.com", body=b"")
        self.h.application.decide(call, {"action": "route", "client": "bob"})
        [phone] = self.legs
        self.assertEqual((phone.kwargs["body"], phone.kwargs["delayedAck"]), (None, True))
        phone.answer()
        self.assertEqual(leg.finals[0].body, PHONE_ANSWER.encode())
        self.assertEqual(phone.actions, ["start"])
        leg.ack(SIP_OFFER)
        self.assertEqual((phone.actions, phone.ackBody), (["start", "ack"], SIP_OFFER.decode()))
        self.assertEqual(call.state.name, "confirmed")
        [(status, body, _)] = self.phoneSends(phone, "INVITE", _reoffer(PHONE_ANSWER, "sendonly"))
        self.assertEqual(status, 200)
        self.assertIn("a=recvonly", body.decode())
        self.assertIn("m=audio 40000 RTP/AVP 0 101", body.decode())
        leg.receive("BYE")
        self.assertEqual(phone.actions, ["start", "ack", "bye"])
        self.assertEqual([c["call"] for c in self.h.cdrs], [call.id])

    def test_offerlessPassthroughAckWithoutSdp(self):
        """
        Passthrough, offerless INVITE a phone answered: an ACK without SDP
        ends the call (488): BYE to the caller, and to the phone (whose
        leg ACKs its 200 without body first).
        """
        self.bind()
        call, leg = self.h.invite(to="sip:bob@example.com", body=b"")
        self.h.application.decide(call, {"action": "route", "client": "bob"})
        [phone] = self.legs
        phone.answer()
        leg.ack(b"")
        self.assertEqual(len(leg.byes), 1)
        self.assertEqual(phone.actions, ["start", "bye"])
        cdr = self.cdr(call)
        self.assertEqual((cdr["cause"], cdr["reason"]), (488, "ACK carried no SDP answer"))

    def test_offerlessPassthroughBrowserWins(self):
        """
        Passthrough, offerless: the browser (sdp null) and the phone
        (offerless INVITE) ring; the browser answers with its offer: the
        phone is CANCELed with Reason; the ACK's SDP reaches the browser.
        """
        bob = self.h.connect("bob")
        self.bind()
        call, leg = self.h.invite(to="sip:bob@example.com", body=b"")
        self.h.application.decide(call, {"action": "route", "client": "bob"})
        [phone] = self.legs
        self.assertIsNone(phone.kwargs["body"])
        [incoming] = bob.ofType("incoming")
        self.assertIsNone(incoming["sdp"])
        self.h.clientSays(bob, "accept", call, sdp=CLIENT_ANSWER)
        self.assertEqual(leg.finalStatus, 200)
        self.assertEqual((phone.actions, phone.cancelReason), (["start", "cancel"],
                                                               ANSWERED_ELSEWHERE_REASON))
        leg.ack(SIP_OFFER)
        self.assertEqual(len(bob.ofType("answer")), 1)
        self.assertEqual(call.state.name, "confirmed")

    def ringOfferless(self, browser=False, phones=(5062,)):
        """
        Bridge mode, an offerless INVITE for bob (a browser too when
        C{browser}): @return: C{(call, leg, browser connection or None)}.
        """
        self.setUp(mediaFactory=PhoneMediaFactory())
        bob = self.h.connect("bob") if browser else None
        for port in phones:
            self.bind(port=port)
        call, leg = self.h.invite(to="sip:bob@example.com", body=b"")
        self.h.application.decide(call, {"action": "route", "client": "bob"})
        media = self.h.media(call)
        self.assertIn(("phoneOffer", None), media.calls)
        self.assertEqual(len(self.legs), len(phones))
        for phone in self.legs:
            self.assertEqual(phone.actions, ["start"])
            self.assertEqual(phone.kwargs["body"], FakePhoneMediaSession.PHONE_SIDE % (0, b"sendrecv"))
        return call, leg, bob

    def test_offerlessBridgeRingsPhones(self):
        """
        Bridge mode, offerless INVITE: every phone gets the phones' offer;
        the first 200 wins (the other is CANCELed with Reason); the
        caller's 200 OK carries what C{phoneAnswer} made of it (our
        offer); the ACK's SDP goes to C{sipAckBody}; the caller's BYE ends
        the phone's side too, one CDR naming the phone.
        """
        call, leg, _ = self.ringOfferless(phones=(5062, 5064))
        a, b = self.legs
        a.progress(180)
        self.assertEqual([p.status for p in leg.provisionals], [180])
        b.answer()
        self.assertEqual(leg.finalStatus, 200)
        self.assertEqual(leg.finals[0].body, PHONE_ANSWER.encode())
        self.assertEqual((a.actions, a.cancelReason), (["start", "cancel"],
                                                       ANSWERED_ELSEWHERE_REASON))
        leg.ack(SIP_OFFER)
        self.assertEqual(self.h.media(call).calls[-1], ("sipAckBody", SIP_OFFER))
        self.assertEqual(call.state.name, "confirmed")
        self.assertEqual(b.actions, ["start"])
        leg.receive("BYE")
        self.assertEqual(b.actions, ["start", "bye"])
        self.assertEqual([c["call"] for c in self.h.cdrs], [call.id])
        self.assertEqual(self.cdr(call)["device"], "sip:bob@10.0.0.2:5064")

    def test_offerlessBridgeAckUnusable(self):
        """
        Bridge mode, offerless INVITE a phone answered: an ACK whose SDP
        the media refuses, or one without SDP, ends the call: BYE to the
        caller and to the phone, the CDR's cause 488 with the reason.
        """
        for body, reason in [(SIP_OFFER.replace(b"RTP/AVP 0 101", b"RTP/AVP 8")
                              .replace(b"PCMU", b"PCMA"),
                              "answer not acceptable: SDP shares no codec with us "
                              "(we support PCMU)"),
                             (b"", "ACK carried no SDP answer")]:
            self.legs = []
            call, leg, _ = self.ringOfferless()
            [phone] = self.legs
            phone.answer()
            leg.ack(body)
            self.assertEqual(len(leg.byes), 1)
            self.assertEqual(phone.actions, ["start", "bye"])
            cdr = self.cdr(call)
            self.assertEqual((cdr["cause"], cdr["reason"]), (488, reason))

    def test_offerlessForkPhoneWins(self):
        """
        Bridge mode, offerless INVITE: the browser (sdp null) and the phone
        ring together; the phone answers: the browser is dropped
        (answered elsewhere).
        """
        call, leg, bob = self.ringOfferless(browser=True)
        [incoming] = bob.ofType("incoming")
        self.assertIsNone(incoming["sdp"])
        [phone] = self.legs
        phone.answer()
        self.assertEqual(leg.finalStatus, 200)
        self.assertEqual(bob.ofType("state")[-1]["cause"], "answered elsewhere")
        leg.ack(SIP_OFFER)
        self.assertEqual(call.state.name, "confirmed")

    def test_offerlessForkBrowserWins(self):
        """
        Bridge mode, offerless INVITE: the browser answers first (its
        offer in the 200 OK): the phone is CANCELed with Reason; the ACK's
        SDP goes to the media (C{sipAckBody}, then the browser).
        """
        call, leg, bob = self.ringOfferless(browser=True)
        [phone] = self.legs
        self.h.clientSays(bob, "accept", call, sdp=CLIENT_ANSWER)
        self.assertEqual(leg.finals[0].body, CLIENT_ANSWER.encode())
        self.assertEqual((phone.actions, phone.cancelReason), (["start", "cancel"],
                                                               ANSWERED_ELSEWHERE_REASON))
        leg.ack(SIP_OFFER)
        self.assertEqual(self.h.media(call).calls[-1], ("sipAckBody", SIP_OFFER))
        self.assertEqual(call.state.name, "confirmed")

    def answeredPhone(self):
        """A call bob's one phone answered, ACKed by the caller: C{(call, leg, phone)}."""
        self.bind()
        call, leg = self.ring()
        [phone] = self.legs
        phone.answer()
        leg.ack()
        self.assertEqual(call.state.name, "confirmed")
        return call, leg, phone

    def holdRetries(self):
        return [c for c in self.h.clock.getDelayedCalls() if c.func.__name__ == "_askHold"]

    def phoneSends(self, phone, method, body=b""):
        """The phone sends C{method} in its dialog: @return: the C{(status, body)}s answered."""
        responses = []

        def respond(status, reason=None, body=None, contentType=None, headers=()):
            responses.append((status, body, contentType))

        phone.listener.legRequestReceived(FakeRequest(method, body=body), respond)
        return responses

    def test_phoneHoldPassthrough(self):
        """
        Passthrough: the phone's sendonly re-INVITE gets 200 with the
        caller's SDP made recvonly (o= version plus one); its sendrecv one
        sendrecv again (plus one); each is the client's hold/unhold to the
        engine: the application hears state hold, unhold.
        """
        call, leg, phone = self.answeredPhone()
        [(status, body, contentType)] = self.phoneSends(
            phone, "INVITE", _reoffer(PHONE_ANSWER, "sendonly"))
        self.assertEqual((status, contentType), (200, "application/sdp"))
        text = body.decode()
        self.assertIn("a=recvonly", text)
        self.assertNotIn("a=sendrecv", text)
        self.assertIn("o=- 1 2 IN IP4 192.0.2.10", text)
        self.assertIn("m=audio 40000 RTP/AVP 0 101", text)
        self.assertEqual(self.h.application.states(call)[-1], "hold")
        self.assertTrue(call.held)
        [(status, body, _)] = self.phoneSends(phone, "INVITE", PHONE_ANSWER.encode())
        self.assertEqual(status, 200)
        self.assertNotIn("a=recvonly", body.decode())
        self.assertIn("o=- 1 3 IN IP4 192.0.2.10", body.decode())
        self.assertEqual(self.h.application.states(call)[-1], "unhold")
        self.assertFalse(call.held)
        # the same offer again: the same answer, the same version (RFC 3264 §8)
        [(status, again, _)] = self.phoneSends(phone, "INVITE", PHONE_ANSWER.encode())
        self.assertEqual(again, body)
        self.assertEqual(call.state.name, "confirmed")
        self.assertEqual(leg.requests, [])  # passthrough: signalling only

    def test_phoneInactivePassthrough(self):
        """inactive is answered inactive; an UPDATE with SDP is answered as a re-INVITE."""
        call, leg, phone = self.answeredPhone()
        [(status, body, _)] = self.phoneSends(phone, "UPDATE", _reoffer(PHONE_ANSWER, "inactive"))
        self.assertEqual(status, 200)
        self.assertIn("a=inactive", body.decode())
        self.assertTrue(call.held)

    def test_phoneMediaChangePassthrough(self):
        """
        Passthrough cannot move the caller's media: a re-offer with a new
        port, or without a codec of the call, gets 488; the call goes on
        and a later usable re-offer is answered.
        """
        call, leg, phone = self.answeredPhone()
        moved = PHONE_ANSWER.replace("m=audio 50000", "m=audio 50002").encode()
        self.assertEqual([r[0] for r in self.phoneSends(phone, "INVITE", moved)], [488])
        pcma = PHONE_ANSWER.replace("RTP/AVP 0", "RTP/AVP 8").replace("0 PCMU", "8 PCMA")
        self.assertEqual([r[0] for r in self.phoneSends(phone, "INVITE", pcma.encode())], [488])
        self.assertEqual([r[0] for r in self.phoneSends(phone, "INVITE", b"hello")], [488])
        self.assertFalse(call.held)
        held = PHONE_ANSWER.replace("IN IP4 198.51.100.8\r\nt=", "IN IP4 0.0.0.0\r\nt=")
        self.assertEqual([r[0] for r in self.phoneSends(phone, "INVITE", held.encode())], [200])
        self.assertTrue(call.held)
        self.assertEqual(call.state.name, "confirmed")

    def test_phoneRefresh(self):
        """
        A re-INVITE without SDP (a session refresh) gets 200 with the SDP
        last sent to the phone; an UPDATE without SDP a 200 without body;
        neither is a hold.
        """
        call, leg, phone = self.answeredPhone()
        [(status, body, contentType)] = self.phoneSends(phone, "INVITE")
        self.assertEqual((status, body, contentType), (200, SIP_OFFER, "application/sdp"))
        self.assertEqual(self.phoneSends(phone, "UPDATE"), [(200, None, None)])
        self.assertFalse(call.held)
        self.assertEqual(self.h.application.states(call)[-1], "confirmed")
        self.assertEqual([r[0] for r in self.phoneSends(phone, "OPTIONS")], [501])

    def test_phoneHoldBridge(self):
        """
        Bridge mode: the phone side answers the phone's sendonly with
        recvonly, and the hold is the client's: a re-INVITE with sendonly
        to the caller, state hold once its 2xx came; resume likewise.
        """
        self.setUp(mediaFactory=PhoneMediaFactory())
        call, leg, phone = self.answeredPhone()
        [(status, body, _)] = self.phoneSends(phone, "INVITE", _reoffer(PHONE_ANSWER, "sendonly"))
        self.assertEqual(status, 200)
        self.assertIn(b"a=recvonly", body)
        [(method, offer, _, d)] = leg.requests
        self.assertEqual(method, "INVITE")
        self.assertIn(b"a=sendonly", offer)
        self.assertFalse(call.held)
        d.callback(type("Ok", (), {"status": 200, "body": b"v=0 answer"})())
        self.assertTrue(call.held)
        self.assertEqual(self.h.application.states(call)[-1], "hold")
        [(status, body, _)] = self.phoneSends(phone, "INVITE", PHONE_ANSWER.encode())
        self.assertIn(b"a=sendrecv", body)
        self.assertIn(b"a=sendrecv", leg.requests[-1][1])
        leg.requests[-1][3].callback(type("Ok", (), {"status": 200, "body": b"v=0 answer"})())
        self.assertFalse(call.held)
        self.assertEqual(self.h.application.states(call)[-1], "unhold")

    def test_phoneCodecChangeBridge(self):
        """Bridge mode: a re-offer without the call's codec gets 488; nothing goes to the caller."""
        self.setUp(mediaFactory=PhoneMediaFactory())
        call, leg, phone = self.answeredPhone()
        pcma = PHONE_ANSWER.replace("RTP/AVP 0", "RTP/AVP 8").replace("0 PCMU", "8 PCMA")
        self.assertEqual([r[0] for r in self.phoneSends(phone, "INVITE", pcma.encode())], [488])
        self.assertEqual(leg.requests, [])
        self.assertFalse(call.held)
        self.assertEqual(call.state.name, "confirmed")

    def test_phoneRefreshBridge(self):
        """Bridge mode: a re-INVITE without SDP gets the phone side's SDP, unchanged."""
        self.setUp(mediaFactory=PhoneMediaFactory())
        call, leg, phone = self.answeredPhone()
        [(status, body, _)] = self.phoneSends(phone, "INVITE")
        self.assertEqual((status, body), (200, FakePhoneMediaSession.PHONE_SIDE % (0, b"sendrecv")))
        self.assertEqual(leg.requests, [])

    def test_phoneResumeWhileHoldPending(self):
        """
        The phone resumes while the caller's re-INVITE for its hold is out:
        the engine refuses (409); the unhold is asked again
        HOLD_RETRY_DELAY seconds later and then goes to the caller.
        """
        self.setUp(mediaFactory=PhoneMediaFactory())
        call, leg, phone = self.answeredPhone()
        self.phoneSends(phone, "INVITE", _reoffer(PHONE_ANSWER, "sendonly"))
        [(_, _, _, d)] = leg.requests
        self.assertEqual([r[0] for r in self.phoneSends(phone, "INVITE", PHONE_ANSWER.encode())],
                         [200])
        self.assertEqual(len(leg.requests), 1)
        d.callback(type("Ok", (), {"status": 200, "body": b"v=0 answer"})())
        self.assertTrue(call.held)
        self.h.clock.advance(HOLD_RETRY_DELAY)
        self.assertEqual(len(leg.requests), 2)
        self.assertIn(b"a=sendrecv", leg.requests[-1][1])
        leg.requests[-1][3].callback(type("Ok", (), {"status": 200, "body": b"v=0 answer"})())
        self.assertFalse(call.held)

    def test_holdRetriesBounded(self):
        """A hold the engine keeps refusing (409) is asked again at most HOLD_RETRIES times."""
        self.setUp(mediaFactory=PhoneMediaFactory())
        call, leg, phone = self.answeredPhone()
        call.pendingReinvite = lambda *a, **k: None  # the caller's re-INVITE, never answered
        self.phoneSends(phone, "INVITE", _reoffer(PHONE_ANSWER, "sendonly"))
        for _ in range(HOLD_RETRIES + 2):
            self.h.clock.advance(HOLD_RETRY_DELAY)
        self.assertEqual(leg.requests, [])
        self.assertEqual(self.holdRetries(), [])

    def test_phoneReinviteAfterEnd(self):
        """A re-INVITE reaching a branch that is over gets 481; the hold retry stops with it."""
        self.setUp(mediaFactory=PhoneMediaFactory())
        call, leg, phone = self.answeredPhone()
        call.pendingReinvite = lambda *a, **k: None
        self.phoneSends(phone, "INVITE", _reoffer(PHONE_ANSWER, "sendonly"))
        leg.receive("BYE")
        self.assertEqual(self.holdRetries(), [])
        self.assertEqual([r[0] for r in self.phoneSends(phone, "INVITE", PHONE_ANSWER.encode())],
                         [481])

    def test_phoneWithoutSDP(self):
        """A phone's 200 without SDP: BYE to it, and it counts as a 488 refusal."""
        self.bind()
        call, leg = self.ring()
        [phone] = self.legs
        phone.answer(b"")
        self.assertEqual(phone.actions, ["start", "bye"])
        self.assertEqual(leg.finalStatus, 488)

    def test_mediaWithoutPhones(self):
        """A media mode without phone support: the phones are left out, the browser rings."""
        self.setUp(mediaFactory=FakeMediaFactory())
        browser = self.h.connect("bob")
        self.bind()
        call, leg = self.ring()
        self.assertEqual(self.legs, [])
        self.assertEqual(len(browser.ofType("incoming")), 1)
        self.assertEqual(call.connections, [browser])


class PhoneLegTests(LegMixin, SynchronousTestCase):
    """
    A phone's in-dialog requests through the real INVITE client leg
    (L{linkrtc.sip.outbound.InviteClientLeg}) and transaction layer:
    what goes on the wire, session timer headers and glare included.
    """

    def setUp(self):
        LegMixin.setUp(self)
        self.ua.sessionTimer = sessiontimer.SessionTimerSettings(1800, 90)
        self.h = CallHarness(mediaFactory=PassthroughMediaFactory(),
                             application=FakeApplication(), clock=self.clock)
        bindings = BindingTable(self.clock)
        uri = "sip:bob@192.0.2.99:5070"
        bindings.bind(Binding(user="bob", contact=NameAddr(parseURI(uri)), uriText=uri,
                              flow=flowOf(Address("UDP", "192.0.2.99", 5070)), callId="c1",
                              cseq=1, expiresAt=self.clock.seconds() + 3600))
        self.h.manager.services.sipPhones = PhoneRinger(self.clock, bindings, self.ua)
        self.call, self.callerLeg = self.h.invite(to="sip:bob@example.com")
        self.h.application.decide(self.call, {"action": "route", "client": "bob"})
        [self.invite] = self.transport.requests("INVITE")
        self.respond(200, body=PHONE_ANSWER.encode(),
                     headers=[("Session-Expires", "1800;refresher=uas")])
        self.callerLeg.ack()
        self.leg = self.call.answerer.leg

    def responses(self, method):
        return [r for r in self.transport.responses() if r.cseq.method == method]

    def test_refreshWithSessionTimer(self):
        """
        The phone's re-INVITE without SDP and Session-Expires (a refresh):
        200 with the SDP last sent to it and Session-Expires, as the
        inbound leg answers; its UPDATE without SDP: 200 without body.
        """
        self.assertEqual(self.call.state.name, "confirmed")
        self.farRequest("INVITE", self.leg, cseq=20, headers=("Supported: timer",
                                                              "Session-Expires: 1800"))
        [ok] = self.responses("INVITE")
        self.assertEqual(ok.status, 200)
        self.assertEqual(ok.body, SIP_OFFER)
        self.assertEqual(ok.headers.get("Session-Expires"), "1800;refresher=uac")
        self.farRequest("UPDATE", self.leg, cseq=21, branch="z9hG4bKfar2",
                        headers=("Session-Expires: 1800;refresher=uac",))
        [update] = self.responses("UPDATE")
        self.assertEqual((update.status, update.body), (200, b""))
        self.assertTrue(update.headers.get("Session-Expires"))

    def test_holdOnTheWire(self):
        """The phone's sendonly re-INVITE: 200 with the caller's SDP made recvonly."""
        held = PHONE_ANSWER.replace("a=sendrecv", "a=sendonly").encode()
        self.farRequest("INVITE", self.leg, cseq=20, body=held)
        [ok] = self.responses("INVITE")
        self.assertEqual(ok.status, 200)
        self.assertIn(b"a=recvonly", ok.body)
        self.assertTrue(self.call.held)

    def test_glareWithOurRefresh(self):
        """The phone's re-INVITE while our refresh re-INVITE to it is out: 491."""
        self.leg.sendRequest("INVITE", SIP_OFFER, "application/sdp", endOnFailure=False)
        self.farRequest("INVITE", self.leg, cseq=20, body=PHONE_ANSWER.encode())
        self.assertEqual([r.status for r in self.responses("INVITE")], [491])
        self.assertFalse(self.call.held)

    def test_offerlessOnTheWire(self):
        """
        Passthrough, an offerless INVITE: the phone's INVITE has no body;
        its 200 (with its offer) is not ACKed until the caller's ACK,
        whose answer the phone's ACK carries, sent again for a
        retransmitted 200.
        """
        acks = len(self.transport.requests("ACK"))
        call, callerLeg = self.h.invite(to="sip:bob@example.com", body=b"")
        self.h.application.decide(call, {"action": "route", "client": "bob"})
        invite = self.transport.requests("INVITE")[-1]
        self.assertEqual(invite.body, b"")
        self.respond(200, request=invite, toTag="tt2", body=PHONE_ANSWER.encode())
        self.assertEqual(callerLeg.finals[0].body, PHONE_ANSWER.encode())
        self.respond(200, request=invite, toTag="tt2", body=PHONE_ANSWER.encode())
        self.assertEqual(len(self.transport.requests("ACK")), acks)
        callerLeg.ack(SIP_OFFER)
        ack = self.transport.requests("ACK")[-1]
        self.assertEqual((ack.body, ack.cseq.number), (SIP_OFFER, invite.cseq.number))
        self.respond(200, request=invite, toTag="tt2", body=PHONE_ANSWER.encode())
        self.assertEqual([a.body for a in self.transport.requests("ACK")[acks:]],
                         [SIP_OFFER, SIP_OFFER])


class BestResponseTests(SynchronousTestCase):
    def test_none(self):
        self.assertEqual(bestResponse([]), (480, "no device answered"))

    def test_6xxWins(self):
        self.assertEqual(bestResponse([(486, "a"), (600, "b"), (603, "c")]), (600, "b"))

    def test_lowestClass(self):
        self.assertEqual(bestResponse([(503, "a"), (486, "b"), (480, "c")]), (486, "b"))

    def test_503Becomes500(self):
        self.assertEqual(bestResponse([(503, "busy here"), (500, "x")]), (500, "busy here"))

    def test_ignoresNonFinal(self):
        self.assertEqual(bestResponse([(180, "x"), ("bad", "y"), (404, "z")]), (404, "z"))
