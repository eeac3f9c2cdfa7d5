"""
Incoming calls through the whole engine (seed 000), one test per step and
per SIP outcome, on the fakes of L{linkrtc.testing}.
"""

from twisted.trial.unittest import SynchronousTestCase
from zope.interface.verify import verifyObject

from linkrtc.call.manager import CallManager, buildCallManager
from linkrtc.call.passthrough import PassthroughMediaFactory
from linkrtc.error import InvalidStateError, MediaError, SIPParseError, TransactionTimeout
from linkrtc.interfaces import (
    IApplication,
    IClientConnection,
    IClientDirectory,
    IClientMessageHandler,
    IInviteHandler,
    IMediaFactory,
    IMediaListener,
    IMediaSession,
    IReofferMediaSession,
    ISIPLegListener,
    ISIPServerLeg,
)
from linkrtc.testing import (
    CLIENT_ANSWER,
    SIP_OFFER,
    CallHarness,
    FakeApplication,
    FakeClientConnection,
    FakeClientDirectory,
    FakeMediaFactory,
    FakeMediaSession,
    FakeReofferMediaSession,
    FakeResponse,
    FakeServerLeg,
)


class HarnessMixin:
    def setUp(self):
        self.h = CallHarness()
        self.app = self.h.application

    def ringing(self, client="alice", connections=1):
        """A call routed to C{client} with C{connections} connections, in calling."""
        conns = [self.h.connect(client) for _ in range(connections)]
        call, leg = self.h.invite(to=f"sip:{client}@example.com")
        self.h.route(call, client)
        return call, leg, conns

    def assertReleased(self, call):
        """The call is dropped, has one CDR, no timers, media closed, not in the manager."""
        self.assertEqual(call.state.name, "dropped")
        self.assertEqual([c["call"] for c in self.h.cdrs].count(call.id), 1)
        self.assertEqual(call.timers, {})
        self.assertEqual(self.h.clock.getDelayedCalls(), [])
        self.assertTrue(self.h.media(call).closed)
        self.assertNotIn(call.id, self.h.manager.calls)
        self.assertEqual(self.app.states(call)[-1], "dropped")
        self.assertEqual(self.app.events("cdr", call), [self.h.cdrs[-1]])

    def cdr(self, call):
        return [c for c in self.h.cdrs if c["call"] == call.id][0]


class InterfaceTests(SynchronousTestCase):
    def test_fakes(self):
        """The public fakes provide their interfaces."""
        verifyObject(ISIPServerLeg, FakeServerLeg())
        verifyObject(IClientConnection, FakeClientConnection("a"))
        verifyObject(IClientDirectory, FakeClientDirectory())
        verifyObject(IApplication, FakeApplication())
        verifyObject(IMediaFactory, FakeMediaFactory())
        verifyObject(IMediaSession, FakeMediaSession())

    def test_managerAndCall(self):
        """The manager handles INVITEs and client messages; a call hears its leg and media."""
        h = CallHarness()
        verifyObject(IInviteHandler, h.manager)
        verifyObject(IClientMessageHandler, h.manager)
        call, leg = h.invite()
        verifyObject(ISIPLegListener, call)
        verifyObject(IMediaListener, call)
        self.assertIs(leg.listener, call)

    def test_buildCallManager(self):
        """buildCallManager wires the given services with the ring timeout and CDR path."""
        from twisted.internet.task import Clock

        path = self.mktemp()
        clock = Clock()
        m = buildCallManager(clock, FakeClientDirectory(), FakeApplication(),
                             PassthroughMediaFactory(), ringTimeout=5, cdrPath=path)
        self.assertIsInstance(m, CallManager)
        self.assertEqual(m.services.ringTimeout, 5.0)
        self.assertIs(m.services.clock, clock)
        self.assertEqual(m.services.cdrWriter.path, path)


class SelectionTests(HarnessMixin, SynchronousTestCase):
    """Seed 000 step 1: the incoming call and the application's choice."""

    def test_1_1_inviteMakesPendingCall(self):
        """1.1: an INVITE makes a call in C{pending}, held by the manager under a unique id."""
        call, leg = self.h.invite()
        other, _ = self.h.invite()
        self.assertEqual(call.state.name, "pending")
        self.assertNotEqual(call.id, other.id)
        self.assertIs(self.h.manager.getCall(call.id), call)
        self.assertEqual(call.resId, call.id)

    def test_1_2_noSecondTrying(self):
        """1.2: the leg sent 100 Trying itself; the engine sends no provisional yet."""
        call, leg = self.h.invite()
        self.assertEqual(leg.provisionals, [])
        self.assertEqual(leg.finals, [])

    def test_1_3_applicationAsked(self):
        """1.3: OpRing asks the application with call, from, to, caller, callee, headers."""
        call, leg = self.h.invite(to="sip:alice@example.com", fromURI="sip:bob@192.0.2.10")
        [info] = self.app.incomings
        self.assertEqual(info["call"], call.id)
        self.assertEqual(info["from"], "sip:bob@192.0.2.10")
        self.assertEqual(info["to"], "sip:alice@example.com")
        self.assertEqual(info["caller"], "bob")
        self.assertEqual(info["callee"], "alice")
        self.assertIn(["From", "<sip:bob@192.0.2.10>;tag=from-tag"], info["headers"])

    def test_1_3_credentialsRedacted(self):
        """The webhook never sees Authorization / Proxy-Authorization values."""
        from linkrtc.testing import FakeRequest

        request = FakeRequest("INVITE", uri="sip:alice@example.com", fromURI="sip:bob@x",
                              headers=[("Proxy-Authorization",
                                        'Digest username="acct", response="99"')])
        self.h.invite(request=request)
        [info] = self.app.incomings
        self.assertIn(["Proxy-Authorization", "Digest [redacted]"], info["headers"])
        self.assertNotIn("acct", repr(info["headers"]))

    def test_1_3_1_refused403(self):
        """1.3.1: a refusal without status gives 403 Forbidden and C{dropped}."""
        call, leg = self.h.invite()
        self.app.decide(call, {"action": "reject"})
        self.assertEqual(leg.finalStatus, 403)
        self.assertEqual(self.cdr(call)["cause"], 403)
        self.assertEqual(self.cdr(call)["dropped_by"], "sys")
        self.assertEqual(self.app.states(call), ["dropped"])
        self.assertReleased(call)

    def test_1_3_1_refusedWithStatus(self):
        """A refusal's status goes to SIP; an invalid one becomes 403."""
        call, leg = self.h.invite()
        self.app.decide(call, {"action": "reject", "status": 486})
        self.assertEqual(leg.finalStatus, 486)
        call, leg = self.h.invite()
        self.app.decide(call, {"action": "reject", "status": 200})
        self.assertEqual(leg.finalStatus, 403)

    def test_applicationFailure503(self):
        """An application Deferred that fails anyway is a 503 refusal."""
        self.app.autoDecision = lambda info: 1 / 0
        call, leg = self.h.invite()
        self.assertEqual(leg.finalStatus, 503)
        self.assertReleased(call)
        self.flushLoggedErrors(ZeroDivisionError)

    def test_badDecision(self):
        """A decision that is neither route nor reject ends the call with 500."""
        call, leg = self.h.invite()
        self.app.decide(call, {"action": "dance"})
        self.assertEqual(leg.finalStatus, 500)

    def test_1_3_2_routed(self):
        """1.3.2: routing to a connected client moves to C{calling}, notified to the application."""
        call, leg, conns = self.ringing()
        self.assertEqual(call.state.name, "calling")
        self.assertEqual(call.clientName, "alice")
        self.assertEqual(self.app.states(call), ["calling"])


class CallingClientTests(HarnessMixin, SynchronousTestCase):
    """Seed 000 step 2: calling the client."""

    def test_2_1_incomingSent(self):
        """2.1: the client gets C{incoming} with from, to and the SIP offer as is."""
        call, leg, [alice] = self.ringing()
        [msg] = alice.ofType("incoming")
        self.assertEqual(msg, {"type": "incoming", "call": call.id, "from": "sip:bob@192.0.2.10",
                               "to": "sip:alice@example.com", "sdp": SIP_OFFER.decode()})

    def test_2_1_1_notConnected480(self):
        """2.1.1: a client with no connection: 480 and C{dropped}, the application told."""
        call, leg = self.h.invite()
        self.h.route(call, "nobody")
        self.assertEqual(leg.finalStatus, 480)
        self.assertEqual(self.app.states(call), ["dropped"])
        self.assertEqual(self.cdr(call)["cause"], 480)
        self.assertReleased(call)

    def test_2_1_1_connectionDead480(self):
        """2.1.1: a connection that cannot take C{incoming} counts as gone: 480."""
        self.h.directory.add(FakeClientConnection("alice", broken=True))
        call, leg = self.h.invite()
        self.h.route(call)
        self.assertEqual(leg.finalStatus, 480)
        self.assertEqual(self.app.states(call), ["calling", "dropped"])
        self.assertReleased(call)
        self.flushLoggedErrors(ConnectionError)

    def test_2_1_2_ringing180(self):
        """2.1.2: C{ringing}: 180 to SIP once, C{state} to the clients and the application."""
        call, leg, [a, b] = self.ringing(connections=2)
        self.h.clientSays(a, "ringing", call)
        self.h.clientSays(b, "ringing", call)
        self.h.clientSays(a, "ringing", call)
        self.assertEqual([p.status for p in leg.provisionals], [180])
        self.assertEqual(call.state.name, "ringing")
        self.assertEqual(self.app.states(call), ["calling", "ringing"])
        for conn in (a, b):
            self.assertEqual([m["state"] for m in conn.ofType("state")], ["ringing"])
            self.assertEqual(conn.ofType("error"), [])

    def test_2_2_2_accepted200(self):
        """2.2.2: C{accept}: 200 OK with the client's answer, C{confirmed}, application told."""
        call, leg, [alice] = self.ringing()
        self.h.clientSays(alice, "ringing", call)
        self.h.clock.advance(4)
        self.h.clientSays(alice, "accept", call, sdp=CLIENT_ANSWER)
        [final] = leg.finals
        self.assertEqual((final.status, final.body, final.contentType),
                         (200, CLIENT_ANSWER.encode(), "application/sdp"))
        self.assertEqual(call.state.name, "confirmed")
        self.assertEqual(self.app.states(call), ["calling", "ringing", "confirmed"])
        self.assertEqual(alice.ofType("state")[-1]["state"], "confirmed")
        self.assertEqual(call.answerTime, 4.0)

    def test_acceptWithoutRinging(self):
        """A client may accept straight from C{calling}."""
        call, leg, [alice] = self.ringing()
        self.h.clientSays(alice, "accept", call, sdp=CLIENT_ANSWER)
        self.assertEqual(leg.finalStatus, 200)
        self.assertEqual(leg.provisionals, [])

    def test_firstAcceptWins(self):
        """Several connections ring; the first C{accept} wins, the others: answered elsewhere."""
        call, leg, [a, b, c] = self.ringing(connections=3)
        for conn in (a, b, c):
            self.assertEqual(len(conn.ofType("incoming")), 1)
        self.h.clientSays(b, "accept", call, sdp=CLIENT_ANSWER)
        self.h.clientSays(a, "accept", call, sdp=CLIENT_ANSWER)
        self.assertEqual(leg.finalStatus, 200)
        for loser in (a, c):
            self.assertEqual(loser.ofType("state")[0],
                             {"type": "state", "call": call.id, "state": "dropped",
                              "cause": "answered elsewhere"})
        self.assertEqual(a.ofType("error")[0]["code"], 404)
        self.assertEqual(call.connections, [b])

    def test_2_2_1_rejectBusy486(self):
        """2.2.1: C{reject} busy: 486 Busy Here, C{dropped}, by the user."""
        call, leg, [alice] = self.ringing()
        self.h.clientSays(alice, "reject", call, reason="busy")
        self.assertEqual(leg.finalStatus, 486)
        self.assertEqual(self.cdr(call)["dropped_by"], "usr")
        self.assertEqual(alice.ofType("state")[-1]["state"], "dropped")
        self.assertReleased(call)

    def test_2_2_1_rejectDecline603(self):
        """2.2.1: C{reject} decline: 603 Decline, for every connection at once."""
        call, leg, [a, b] = self.ringing(connections=2)
        self.h.clientSays(a, "reject", call, reason="decline")
        self.assertEqual(leg.finalStatus, 603)
        self.assertEqual(b.ofType("state")[-1]["state"], "dropped")
        self.assertReleased(call)

    def test_busyOneOfTwo(self):
        """Busy from one of two connections keeps ringing the other; its accept answers."""
        call, leg, [a, b] = self.ringing(connections=2)
        self.h.clientSays(a, "reject", call, reason="busy")
        self.assertEqual(leg.finals, [])
        self.assertEqual(call.connections, [b])
        self.h.clientSays(b, "accept", call, sdp=CLIENT_ANSWER)
        self.assertEqual(leg.finalStatus, 200)

    def test_busyFromAll486(self):
        """Busy from every connection gives 486."""
        call, leg, [a, b] = self.ringing(connections=2)
        self.h.clientSays(a, "reject", call, reason="busy")
        self.h.clientSays(b, "reject", call, reason="busy")
        self.assertEqual(leg.finalStatus, 486)

    def test_hangupBeforeAnswer603(self):
        """C{hangup} while ringing declines the call (603)."""
        call, leg, [alice] = self.ringing()
        self.h.clientSays(alice, "ringing", call)
        self.h.clientSays(alice, "hangup", call)
        self.assertEqual(leg.finalStatus, 603)

    def test_2_2_1_ringTimeout480(self):
        """2.2.1: no answer within the ring timeout (60 s by default): 480."""
        call, leg, [alice] = self.ringing()
        self.h.clientSays(alice, "ringing", call)
        self.h.clock.advance(59.9)
        self.assertEqual(leg.finals, [])
        self.h.clock.advance(0.1)
        self.assertEqual(leg.finalStatus, 480)
        self.assertEqual(self.cdr(call)["reason"], "no answer")
        self.assertEqual(alice.ofType("state")[-1]["cause"], 480)
        self.assertReleased(call)

    def test_ringTimeoutConfigured(self):
        """The ring timeout is configurable (seconds)."""
        self.h = CallHarness(ringTimeout=5)
        self.app = self.h.application
        call, leg, _ = self.ringing()
        self.h.clock.advance(5)
        self.assertEqual(leg.finalStatus, 480)

    def test_ringTimerStoppedByAccept(self):
        """Once accepted, the ring timer cannot fire."""
        call, leg, conn = self.h.answer()
        self.h.clock.advance(120)
        self.assertEqual(call.state.name, "confirmed")

    def test_cancel487(self):
        """CANCEL before the answer: 487, C{dropped}, the client and application told."""
        call, leg, [alice] = self.ringing()
        self.h.clientSays(alice, "ringing", call)
        leg.cancel()
        self.assertEqual(leg.finalStatus, 487)
        self.assertEqual(self.cdr(call)["cause"], 487)
        self.assertEqual(self.cdr(call)["dropped_by"], "usr")
        self.assertEqual(alice.ofType("state")[-1]["state"], "dropped")
        self.assertReleased(call)

    def test_cancelWhilePending(self):
        """CANCEL before the application decides: 487; the late decision changes nothing."""
        call, leg = self.h.invite()
        leg.cancel()
        self.assertEqual(leg.finalStatus, 487)
        self.h.connect("alice")
        self.h.route(call)
        self.assertEqual(call.state.name, "dropped")
        self.assertEqual(len(self.h.cdrs), 1)

    def test_clientLostBeforeAnswer480(self):
        """The only ringing connection closes: 480."""
        call, leg, [alice] = self.ringing()
        self.h.disconnect(alice)
        self.assertEqual(leg.finalStatus, 480)
        self.assertEqual(alice.ofType("state"), [])
        self.assertReleased(call)

    def test_oneOfTwoLost(self):
        """One of two ringing connections closing keeps the call ringing."""
        call, leg, [a, b] = self.ringing(connections=2)
        self.h.disconnect(a)
        self.assertEqual(call.state.name, "calling")
        self.assertEqual(call.connections, [b])

    def test_answererLostBefore200(self):
        """The accepting connection closes before the 200 OK is sent: 480."""
        self.h = CallHarness(manualMedia=True)
        self.app = self.h.application
        call, leg, [alice] = self.ringing()
        self.h.media(call).deferreds.pop(0)[1].callback(SIP_OFFER.decode())
        self.h.clientSays(alice, "accept", call, sdp=CLIENT_ANSWER)
        self.assertEqual(call.state.name, "answering")
        self.h.disconnect(alice)
        self.assertEqual(leg.finalStatus, 480)

    def test_mediaRefusesAnswer488(self):
        """A client answer the media session refuses: 488 to SIP, C{error} to the client."""
        self.h = CallHarness(manualMedia=True)
        self.app = self.h.application
        call, leg, [alice] = self.ringing()
        media = self.h.media(call)
        media.deferreds.pop(0)[1].callback(None)
        self.h.clientSays(alice, "accept", call, sdp="garbage")
        media.deferreds.pop(0)[1].errback(MediaError("no common codec"))
        self.assertEqual(leg.finalStatus, 488)
        self.assertEqual(alice.ofType("error")[0]["code"], 488)
        self.assertReleased(call)

    def test_mediaRefusesOffer488(self):
        """An offer the media session refuses: 488."""
        self.h = CallHarness(manualMedia=True)
        self.app = self.h.application
        call, leg, [alice] = self.ringing()
        self.h.media(call).deferreds.pop(0)[1].errback(MediaError("bad SDP"))
        self.assertEqual(leg.finalStatus, 488)
        self.assertEqual(alice.ofType("incoming"), [])

    def test_okCannotBeSent(self):
        """
        A 200 OK the SIP leg cannot make: the call drops (the caller gets
        a 500 instead); the client is never told
        C{confirmed} and the CDR has no answer time.
        """
        call, leg, [alice] = self.ringing()

        def sendFinal(status, reason=None, body=None, contentType=None, headers=()):
            raise SIPParseError("Bad Request (Bad Record-Route: not a SIP URI)", 400)

        leg.sendFinal = sendFinal
        self.h.clientSays(alice, "accept", call, sdp=CLIENT_ANSWER)
        self.assertTrue(self.flushLoggedErrors(SIPParseError))
        self.assertNotIn("confirmed", [m["state"] for m in alice.ofType("state")])
        self.assertNotIn("confirmed", self.app.states(call))
        self.assertEqual(call.state.name, "dropped")
        self.assertIsNone(self.cdr(call)["answer_time"])
        self.assertEqual(self.cdr(call)["cause"], 500)
        self.assertEqual(leg.byes, [])


class EndTests(HarnessMixin, SynchronousTestCase):
    """Seed 000 step 4: the end of the call."""

    def test_4_byeFromSIP(self):
        """BYE from SIP: 200, the client and the application told at once, CDR written."""
        self.h.clock.advance(100)
        call, leg, alice = self.h.answer()
        self.h.clock.advance(30)
        [ok] = leg.receive("BYE")
        self.assertEqual(ok.status, 200)
        self.assertEqual(alice.ofType("state")[-1],
                         {"type": "state", "call": call.id, "state": "dropped", "cause": 200})
        self.assertEqual(leg.byes, [])
        cdr = self.cdr(call)
        self.assertEqual((cdr["begin_time"], cdr["answer_time"], cdr["end_time"]),
                         (100.0, 100.0, 130.0))
        self.assertEqual((cdr["cause"], cdr["dropped_by"], cdr["call_dir"]),
                         (200, "usr", "inbound"))
        self.assertEqual(cdr["res_id"], call.id)
        self.assertEqual(cdr["from_uri"], "sip:bob@192.0.2.10")
        self.assertEqual(cdr["to_uri"], "sip:alice@example.com")
        self.assertEqual(cdr["media"], {"mode": "fake"})
        self.assertReleased(call)

    def test_4_hangupFromClient(self):
        """C{hangup} from the client: BYE to SIP, C{dropped}, the application told."""
        call, leg, alice = self.h.answer()
        self.h.clientSays(alice, "hangup", call)
        self.assertEqual(len(leg.byes), 1)
        self.assertEqual(self.cdr(call)["cause"], 200)
        self.assertEqual(self.cdr(call)["dropped_by"], "usr")
        self.assertReleased(call)
        leg.byes[0].callback(None)

    def test_byeFailureLogged(self):
        """A BYE that times out is logged, not raised."""
        call, leg, alice = self.h.answer()
        self.h.clientSays(alice, "hangup", call)
        leg.byes[0].errback(Exception("timeout"))
        self.assertReleased(call)

    def test_ackTimeoutBye(self):
        """No ACK for the 200 OK (RFC 3261 §13.3.1.4): BYE, C{dropped}, cause 408."""
        alice = self.h.connect("alice")
        call, leg = self.h.invite()
        self.h.route(call)
        self.h.clientSays(alice, "accept", call, sdp=CLIENT_ANSWER)
        call.legAckTimeout()
        self.assertEqual(len(leg.byes), 1)
        self.assertEqual(self.cdr(call)["cause"], 408)
        self.assertEqual(alice.ofType("state")[-1]["state"], "dropped")
        self.assertReleased(call)

    def test_clientLostAfterAnswerBye(self):
        """The answering connection closes mid-call: BYE."""
        call, leg, alice = self.h.answer()
        self.h.disconnect(alice)
        self.assertEqual(len(leg.byes), 1)
        self.assertEqual(self.cdr(call)["dropped_by"], "sys")
        self.assertReleased(call)

    def test_mediaTimeoutBye(self):
        """The media session reports no RTP: BYE, cause 408."""
        call, leg, alice = self.h.answer()
        call.mediaTimeout()
        self.assertEqual(len(leg.byes), 1)
        self.assertEqual(self.cdr(call)["reason"], "media timeout")

    def test_legTerminated(self):
        """The SIP leg is lost: C{dropped}, nothing more sent to SIP."""
        call, leg, alice = self.h.answer()
        call.legTerminated("transaction timeout")
        self.assertEqual(leg.byes, [])
        self.assertEqual(self.cdr(call)["cause"], 408)
        self.assertReleased(call)

    def test_shutdown(self):
        """closeAll ends every call: 503 before the answer, BYE after; fires once released."""
        ringingCall, ringingLeg, _ = self.ringing()
        call, leg, alice = self.h.answer(client="carol")
        d = self.h.manager.closeAll()
        self.assertEqual(ringingLeg.finalStatus, 503)
        self.assertEqual(len(leg.byes), 1)
        self.successResultOf(d)
        self.assertEqual(self.h.manager.calls, {})

    def test_lateEventsIgnored(self):
        """Events reaching a dropped call do nothing; in-dialog requests get 481."""
        call, leg, alice = self.h.answer()
        leg.receive("BYE")
        call.mediaTimeout()
        [r] = leg.receive("INFO")
        self.assertEqual(r.status, 481)
        self.assertEqual(len(self.h.cdrs), 1)


class ConfirmedTests(HarnessMixin, SynchronousTestCase):
    """The confirmed call: offerless INVITEs, DTMF, hold, re-INVITE."""

    def test_offerless(self):
        """
        Offerless INVITE: C{incoming} has sdp null, the client's offer goes in
        the 200 OK and the ACK's SDP reaches the client as C{answer}.
        """
        alice = self.h.connect("alice")
        call, leg = self.h.invite(body=b"")
        self.h.route(call)
        self.assertIsNone(alice.ofType("incoming")[0]["sdp"])
        self.h.clientSays(alice, "accept", call, sdp=CLIENT_ANSWER)
        self.assertEqual(leg.finals[0].body, CLIENT_ANSWER.encode())
        self.assertEqual(alice.ofType("answer"), [])
        leg.ack(SIP_OFFER)
        self.assertEqual(alice.ofType("answer"),
                         [{"type": "answer", "call": call.id, "sdp": SIP_OFFER.decode()}])

    def test_offerlessAckWithoutSdp(self):
        """An offerless INVITE's ACK without SDP ends the call with BYE (488)."""
        alice = self.h.connect("alice")
        call, leg = self.h.invite(body=b"")
        self.h.route(call)
        self.h.clientSays(alice, "accept", call, sdp=CLIENT_ANSWER)
        leg.ack(b"")
        self.assertEqual(len(leg.byes), 1)
        self.assertEqual(self.cdr(call)["cause"], 488)

    def test_ackWithOfferNoAnswerMessage(self):
        """With an offer in the INVITE the ACK sends the client nothing."""
        call, leg, alice = self.h.answer()
        self.assertEqual(alice.ofType("answer"), [])
        self.assertTrue(call.acked)

    def test_clientDtmf(self):
        """The client's C{dtmf} goes to the media session."""
        call, leg, alice = self.h.answer()
        self.h.clientSays(alice, "dtmf", call, digits="12#")
        self.assertEqual(self.h.media(call).digits, ["12#"])

    def test_sipDtmf(self):
        """DTMF from SIP (media or INFO dtmf-relay) goes to the client and the application."""
        call, leg, alice = self.h.answer()
        call.mediaDigits("7")
        [r] = leg.receive("INFO", b"Signal=#\r\nDuration=160\r\n", "application/dtmf-relay")
        self.assertEqual(r.status, 200)
        leg.receive("INFO", b"9", "application/dtmf")
        answers = leg.receive("INFO", b"Signal=x", "application/dtmf-relay")
        self.assertEqual([r.status for r in answers], [200, 200, 200])
        self.assertEqual([m["digits"] for m in alice.ofType("dtmf")], ["7", "#", "9"])
        self.assertEqual([e["digits"] for e in self.app.events("dtmf", call)], ["7", "#", "9"])

    def test_clientHold(self):
        """C{hold}/C{unhold} keep the call confirmed and are told as states."""
        call, leg, alice = self.h.answer()
        self.h.clientSays(alice, "hold", call)
        self.h.clientSays(alice, "hold", call)
        self.h.clientSays(alice, "unhold", call)
        self.assertEqual(call.state.name, "confirmed")
        self.assertEqual([m["state"] for m in alice.ofType("state")][-2:], ["hold", "unhold"])
        self.assertEqual(self.app.states(call)[-2:], ["hold", "unhold"])

    def test_reinviteHold(self):
        """A re-INVITE's SDP goes to the media; its answer goes back; hold is told."""
        call, leg, alice = self.h.answer()
        self.h.media(call).hold = True
        [ok] = leg.receive("INVITE", b"v=0 sendonly", "application/sdp")
        self.assertEqual((ok.status, ok.body), (200, b"v=0 reanswer"))
        self.assertEqual(alice.ofType("state")[-1]["state"], "hold")

    def test_reinviteWithoutSdp(self):
        """A re-INVITE without SDP gets our last SDP."""
        call, leg, alice = self.h.answer()
        [ok] = leg.receive("INVITE")
        self.assertEqual(ok.body, CLIENT_ANSWER.encode())

    def test_updateWithoutSdp(self):
        """An UPDATE without SDP (a session refresh, RFC 3311): 200 without a body."""
        call, leg, alice = self.h.answer()
        [ok] = leg.receive("UPDATE")
        self.assertEqual((ok.status, ok.body), (200, None))
        self.assertEqual(call.state.name, "confirmed")

    def test_reofferUnrelayable(self):
        """
        A re-INVITE or UPDATE whose offer the media cannot take (no codec we
        can relay): 488, and the call goes on with its media.
        """
        call, leg, alice = self.h.answer()
        media = self.h.media(call)
        media.manual = True
        for method in ("INVITE", "UPDATE"):
            answers = leg.receive(method, b"v=0 g729 only", "application/sdp")
            media.deferreds.pop(0)[1].errback(MediaError("SDP shares no codec with us"))
            self.assertEqual([a.status for a in answers], [488])
            self.assertEqual(call.state.name, "confirmed")
        self.assertEqual(leg.byes, [])
        self.assertNotIn("close", [c[0] for c in media.calls])

    def test_sessionTimerEnded(self):
        """
        The leg ended the session for its session timer (RFC 4028; it sent
        the BYE): dropped, no second BYE, the reason in the CDR.
        """
        call, leg, alice = self.h.answer()
        call.legTerminated("session-refresh-failed (481 to UPDATE)")
        self.assertEqual(leg.byes, [])
        cdr = self.cdr(call)
        self.assertEqual((cdr["cause"], cdr["reason"], cdr["dropped_by"]),
                         (408, "session-refresh-failed (481 to UPDATE)", "sys"))
        self.assertReleased(call)

    def test_otherRequests(self):
        """OPTIONS in the dialog gets 200, an unknown method 501."""
        call, leg, alice = self.h.answer()
        self.assertEqual(leg.receive("OPTIONS")[0].status, 200)
        self.assertEqual(leg.receive("MESSAGE")[0].status, 501)
        self.assertEqual(call.state.name, "confirmed")


class BadInputTests(HarnessMixin, SynchronousTestCase):
    """What one client or the application sends cannot reach another's call."""

    def test_unknownCall404(self):
        """A message naming an unknown call gets C{error} 404."""
        alice = self.h.connect("alice")
        self.h.clientSays(alice, "accept", "nope", sdp=CLIENT_ANSWER)
        self.assertEqual(alice.messages, [{"type": "error", "code": 404,
                                           "message": "unknown call", "call": "nope"}])

    def test_otherClientsCall404(self):
        """A client cannot accept, hang up or reject a call offered to someone else."""
        call, leg, [alice] = self.ringing()
        mallory = self.h.connect("mallory")
        for kind in ("accept", "hangup", "reject", "ringing"):
            self.h.clientSays(mallory, kind, call, sdp=CLIENT_ANSWER, reason="busy")
        self.assertEqual([m["code"] for m in mallory.messages], [404] * 4)
        self.assertEqual(call.state.name, "calling")
        self.assertEqual(leg.finals, [])

    def test_sameNameOtherCall(self):
        """A client's message about its own call does not touch its other calls."""
        alice = self.h.connect("alice")
        one, leg1 = self.h.invite()
        two, leg2 = self.h.invite()
        self.h.route(one)
        self.h.route(two)
        self.h.clientSays(alice, "reject", one, reason="busy")
        self.assertEqual(leg1.finalStatus, 486)
        self.assertEqual(two.state.name, "calling")

    def test_wrongState409(self):
        """A message the call's state cannot take gets C{error} 409."""
        call, leg, alice = self.h.answer()
        self.h.clientSays(alice, "ringing", call)
        self.h.clientSays(alice, "accept", call, sdp=CLIENT_ANSWER)
        self.assertEqual([m["code"] for m in alice.ofType("error")], [409, 409])
        self.assertEqual(len(leg.finals), 1)

    def test_dtmfBeforeAnswer409(self):
        """C{dtmf} before the answer is a wrong-state error."""
        call, leg, [alice] = self.ringing()
        self.h.clientSays(alice, "dtmf", call, digits="1")
        self.assertEqual(alice.ofType("error")[0]["code"], 409)

    def test_unsupportedType400(self):
        """A message type the call engine does not handle gets C{error} 400."""
        alice = self.h.connect("alice")
        self.h.clientSays(alice, "conference", "x")
        self.assertEqual(alice.messages[0]["code"], 400)

    def test_disconnectEndsOnlyItsCalls(self):
        """A client disconnecting ends its calls, not others'."""
        mine, myLeg, [alice] = self.ringing("alice")
        theirs, theirLeg, [bob] = self.ringing("bob")
        self.h.disconnect(alice)
        self.assertEqual(myLeg.finalStatus, 480)
        self.assertEqual(theirs.state.name, "calling")

    def test_decisionOnlyItsCall(self):
        """A decision is tied to its own call: it cannot route or end another."""
        self.h.connect("alice")
        one, leg1 = self.h.invite()
        two, leg2 = self.h.invite()
        self.app.decide(one, {"action": "reject", "status": 403, "call": two.id})
        self.assertEqual(leg1.finalStatus, 403)
        self.assertEqual(two.state.name, "pending")


class PassthroughCallTests(SynchronousTestCase):
    def test_wholeCall(self):
        """A whole call with the real passthrough media: offer to the client, answer to SIP."""
        h = CallHarness(mediaFactory=PassthroughMediaFactory())
        call, leg, alice = h.answer()
        self.assertEqual(alice.ofType("incoming")[0]["sdp"], SIP_OFFER.decode())
        self.assertEqual(leg.finals[0].body, CLIENT_ANSWER.encode())
        h.clientSays(alice, "hangup", call)
        self.assertEqual(h.cdrs[0]["media"], {"mode": "passthrough"})

    def test_clientHoldSignallingOnly(self):
        """Passthrough: the client's hold sends no re-INVITE; only 'state' hold/unhold."""
        h = CallHarness(mediaFactory=PassthroughMediaFactory())
        call, leg, alice = h.answer()
        self.assertFalse(IReofferMediaSession.providedBy(call.media))
        h.clientSays(alice, "hold", call)
        h.clientSays(alice, "unhold", call)
        self.assertEqual(leg.requests, [])
        self.assertEqual([m["state"] for m in alice.ofType("state")][-2:], ["hold", "unhold"])


class ClientHoldReinviteTests(SynchronousTestCase):
    """
    The client's hold with media that re-offers (bridge mode): a re-INVITE
    with the media's sendonly/sendrecv offer; the state comes with its 2xx.
    """

    def setUp(self):
        self.h = CallHarness(mediaFactory=FakeMediaFactory(reoffer=True))
        self.app = self.h.application
        self.call, self.leg, self.alice = self.h.answer()
        self.media = self.h.media(self.call)

    def hold(self, kind="hold"):
        self.h.clientSays(self.alice, kind, self.call)
        return self.leg.requests[-1] if self.leg.requests else None

    def holdStates(self):
        return [m["state"] for m in self.alice.ofType("state") if m["state"] in ("hold", "unhold")]

    def test_interfaces(self):
        verifyObject(IReofferMediaSession, self.media)

    def test_holdAndUnhold(self):
        """
        hold: the media's sendonly offer goes in a re-INVITE; its 2xx's SDP
        goes back to the media; then the client and the application get
        'state' hold. unhold does the same with sendrecv.
        """
        method, body, contentType, d = self.hold()
        self.assertEqual((method, contentType), ("INVITE", "application/sdp"))
        self.assertEqual(body, FakeReofferMediaSession.reofferSdp + b"a=sendonly\r\n")
        self.assertIn(("reoffer", True), self.media.calls)
        self.assertEqual(self.holdStates(), [])
        d.callback(FakeResponse(200, b"v=0 recvonly"))
        self.assertEqual(self.media.calls[-1], ("reofferAnswered", b"v=0 recvonly"))
        self.assertEqual(self.holdStates(), ["hold"])
        self.assertEqual(self.app.states(self.call)[-1], "hold")
        self.assertTrue(self.call.held)
        self.assertTrue(self.call.localHold)
        self.assertEqual(self.call.localSdp, body)
        # hold again: nothing to do.
        self.hold()
        self.assertEqual(len(self.leg.requests), 1)
        method, body, contentType, d = self.hold("unhold")
        self.assertEqual(body, FakeReofferMediaSession.reofferSdp + b"a=sendrecv\r\n")
        d.callback(FakeResponse(200, b"v=0 sendrecv"))
        self.assertEqual(self.holdStates(), ["hold", "unhold"])
        self.assertFalse(self.call.held)
        self.assertFalse(self.call.localHold)
        self.assertEqual(self.call.state.name, "confirmed")
        self.assertEqual(self.alice.ofType("error"), [])
        self.assertEqual(self.media.calls.count(("hold", True)), 0)

    def test_refused(self):
        """A 488 to the re-INVITE: 'error' 488, no state, the call as it was; hold can be tried again."""
        d = self.hold()[3]
        d.callback(FakeResponse(488, reason="Not Acceptable Here"))
        [error] = self.alice.ofType("error")
        self.assertEqual(error["code"], 488)
        self.assertEqual(error["call"], self.call.id)
        self.assertEqual(self.holdStates(), [])
        self.assertFalse(self.call.held)
        self.assertIsNone(self.call.pendingHold)
        self.assertNotIn("reofferAnswered", [c[0] for c in self.media.calls])
        self.assertEqual(self.call.state.name, "confirmed")
        self.hold()[3].callback(FakeResponse(200, b"v=0"))
        self.assertEqual(self.holdStates(), ["hold"])

    def test_glare(self):
        """A 491 to the re-INVITE (glare) is told as 'error' 491."""
        self.hold()[3].callback(FakeResponse(491))
        self.assertEqual([e["code"] for e in self.alice.ofType("error")], [491])
        self.assertFalse(self.call.held)

    def test_timeout(self):
        """No answer to the re-INVITE: 'error' 408 (the leg ends the dialog itself)."""
        self.hold()[3].errback(TransactionTimeout("no final response"))
        self.assertEqual([e["code"] for e in self.alice.ofType("error")], [408])
        self.assertFalse(self.call.held)

    def test_legBusy(self):
        """The leg refuses (a re-INVITE of the SIP side's is in progress): 'error' 409."""
        self.hold()[3].errback(InvalidStateError("a re-INVITE is already in progress"))
        self.assertEqual([e["code"] for e in self.alice.ofType("error")], [409])

    def test_2xxWithoutSdp(self):
        """A 2xx without SDP: 'error' 488, no state."""
        self.hold()[3].callback(FakeResponse(200))
        self.assertEqual([e["code"] for e in self.alice.ofType("error")], [488])
        self.assertEqual(self.holdStates(), [])

    def test_badAnswer(self):
        """The media cannot use the 2xx's SDP: 'error' 488, no state, the call goes on."""
        self.media.manual = True
        self.hold()
        [(name, make)] = self.media.deferreds
        make.callback(b"v=0 offer")
        self.leg.requests[-1][3].callback(FakeResponse(200, b"v=0 junk"))
        [(name, d)] = self.media.deferreds[1:]
        self.assertEqual(name, "reofferAnswered")
        d.errback(MediaError("no codec"))
        self.assertEqual([e["code"] for e in self.alice.ofType("error")], [488])
        self.assertEqual(self.holdStates(), [])
        self.assertFalse(self.call.localHold)
        self.assertIsNone(self.call.pendingHold)

    def test_mediaFails(self):
        """The media cannot make the offer: 'error' 500, no re-INVITE."""
        self.media.manual = True
        self.hold()
        self.media.deferreds[0][1].errback(MediaError("no media yet"))
        self.assertEqual(self.leg.requests, [])
        self.assertEqual([e["code"] for e in self.alice.ofType("error")], [500])

    def test_pending409(self):
        """hold/unhold while our re-INVITE is pending: 'error' 409; the first still completes."""
        d = self.hold()[3]
        self.hold()
        self.hold("unhold")
        self.assertEqual([e["code"] for e in self.alice.ofType("error")], [409, 409])
        self.assertEqual(len(self.leg.requests), 1)
        d.callback(FakeResponse(200, b"v=0"))
        self.assertEqual(self.holdStates(), ["hold"])

    def test_theirReinvitePending409(self):
        """hold while the SIP side's re-INVITE is being answered: 'error' 409."""
        self.media.manual = True
        answers = self.leg.receive("INVITE", b"v=0 sendrecv", "application/sdp")
        self.hold()
        self.assertEqual([e["code"] for e in self.alice.ofType("error")], [409])
        self.assertEqual(self.leg.requests, [])
        [(name, d)] = self.media.deferreds
        d.callback((b"v=0 reanswer", False))
        self.assertEqual(answers[0].status, 200)

    def test_theirReinviteWhileOursPending(self):
        """A re-INVITE from SIP while ours is pending: 491 (RFC 3261 §14.2)."""
        d = self.hold()[3]
        [answer] = self.leg.receive("INVITE", b"v=0 sendrecv", "application/sdp")
        self.assertEqual(answer.status, 491)
        d.callback(FakeResponse(200, b"v=0"))
        self.assertEqual(self.holdStates(), ["hold"])

    def test_theirReofferKeepsOurHold(self):
        """While the client holds, a sendrecv re-INVITE from SIP is no 'unhold'."""
        self.hold()[3].callback(FakeResponse(200, b"v=0"))
        [ok] = self.leg.receive("INVITE", b"v=0 sendrecv", "application/sdp")
        self.assertEqual(ok.status, 200)
        self.assertEqual(self.holdStates(), ["hold"])
        self.assertTrue(self.call.held)

    def test_endedWhilePending(self):
        """The call ends while the re-INVITE is pending: its late answer is ignored."""
        d = self.hold()[3]
        self.h.clientSays(self.alice, "hangup", self.call)
        d.callback(FakeResponse(200, b"v=0"))
        self.assertEqual(self.holdStates(), [])
        self.assertEqual(self.call.state.name, "dropped")
