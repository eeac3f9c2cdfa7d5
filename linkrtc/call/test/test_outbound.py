"""
Outgoing calls through the call engine (L{linkrtc.call.outbound}): the
client's C{call}, the application's decision, the SIP leg's answers,
timers (max_ring_seconds, max_answer_seconds) and every ending, on fakes
and a L{Clock}.
"""

from twisted.internet import defer
from twisted.trial.unittest import SynchronousTestCase
from zope.interface import implementer
from zope.interface.verify import verifyObject

from linkrtc.call.outbound import (
    OUTBOUND_STATE_NAMES,
    OutboundCall,
    OutboundDialer,
    buildOutboundMachine,
    filterCodecs,
)
from linkrtc.call.passthrough import PassthroughMediaFactory
from linkrtc.config import parseTrunks
from linkrtc.error import MediaError
from linkrtc.interfaces import (
    IMediaFactory,
    IOfferlessOutboundMediaSession,
    IOutboundMediaSession,
    IReofferMediaSession,
    ISIPClientLeg,
    ISIPClientLegListener,
)
from linkrtc.signalling.tokens import Grants, Identity
from linkrtc.testing import CallHarness, FakeApplication, FakeMediaFactory

OFFER = ("v=0\r\no=- 1 1 IN IP4 127.0.0.1\r\ns=-\r\nc=IN IP4 127.0.0.1\r\nt=0 0\r\n"
         "m=audio 4000 RTP/AVP 111 0 101\r\na=rtpmap:111 opus/48000/2\r\n"
         "a=fmtp:111 minptime=10\r\na=rtpmap:0 PCMU/8000\r\n"
         "a=rtpmap:101 telephone-event/8000\r\na=sendrecv\r\n")
ANSWER = b"v=0\r\no=far 1 1 IN IP4 192.0.2.9\r\ns=-\r\nc=IN IP4 192.0.2.9\r\nt=0 0\r\n" \
         b"m=audio 5000 RTP/AVP 0\r\n"


class FakeResponse:
    def __init__(self, status, body=b""):
        self.status = status
        self.body = body
        self.reason = None


@implementer(ISIPClientLeg)
class FakeClientLeg:
    """Records what the call asks of its SIP leg; tests play the far end."""

    def __init__(self, **kwargs):
        self.kwargs = kwargs
        self.request = None
        self.callId = "fake@linkrtc"
        self.localTag = "lt"
        self.dialog = None
        self.listener = None
        self.actions = []
        self.reinvites = []
        self.byeResult = defer.Deferred()

    def setListener(self, listener):
        self.listener = listener

    def start(self):
        self.actions.append("start")

    def cancel(self, reason=None):
        self.actions.append("cancel")
        self.cancelReason = reason

    def sendBye(self):
        self.actions.append("bye")
        return self.byeResult

    def sendRequest(self, method, body=None, contentType=None, headers=()):
        self.actions.append(method)
        if method == "INVITE":
            d = defer.Deferred()
            self.reinvites.append((body, contentType, d))
            return d
        return defer.succeed(FakeResponse(200))

    # the far end
    def progress(self, status=180, body=b""):
        self.listener.legProgress(FakeResponse(status, body))

    def answer(self, body=ANSWER):
        self.listener.legAnswered(FakeResponse(200, body))

    def fail(self, status, reason="refused"):
        self.listener.legFailed(status, reason, None)

    def bye(self):
        responses = []
        request = type("R", (), {"method": "BYE", "body": b""})()
        self.listener.legRequestReceived(request, lambda status, *a, **k: responses.append(status))
        return responses


TRUNKS = [
    {"name": "pbx", "proxy": "sip:198.51.100.1:5060", "username": "u1", "password": "p1",
     "caller_id": "{client}", "codecs": ["PCMU", "telephone-event"]},
    {"name": "other", "proxy": "sip:other.example.com", "offerless": True},
]


class OutgoingApplication(FakeApplication):
    """A L{FakeApplication} that also decides outbound calls (C{decide})."""

    def outgoing(self, info):
        self.incomings.append(info)
        d = defer.Deferred()
        self.pending[info["call"]] = d
        return d


class OutboundMixin:
    def setUp(self):
        self.h = CallHarness(mediaFactory=PassthroughMediaFactory(),
                             application=OutgoingApplication())
        self.legs = []

        def legFactory(**kwargs):
            leg = FakeClientLeg(**kwargs)
            self.legs.append(leg)
            return leg

        self.dialer = OutboundDialer(None, parseTrunks(TRUNKS), self.h.clock,
                                     maxRingSeconds=30, maxAnswerSeconds=None,
                                     legFactory=legFactory)
        self.h.manager.dialer = self.dialer
        self.alice = self.h.connect("alice")

    def dial(self, to="5551234", sdp=OFFER, ref="r1", connection=None):
        connection = connection or self.alice
        message = {"type": "call", "to": to, "sdp": sdp}
        if ref is not None:
            message["ref"] = ref
        self.h.manager.clientMessageReceived(connection, message)
        calling = connection.ofType("calling")
        if not calling:
            return None
        return self.h.manager.calls.get(calling[-1]["call"]) or calling[-1]["call"]

    def routed(self, decision=None, **kw):
        call = self.dial(**kw)
        self.h.application.decide(call, decision or {"action": "route", "trunk": None})
        return call, self.legs[-1]

    def states(self, connection=None):
        return [m["state"] for m in (connection or self.alice).ofType("state")]

    def assertReleased(self, call):
        self.assertEqual(call.state.name, "dropped")
        self.assertNotIn(call.id, self.h.manager.calls)
        self.assertEqual(call.timers, {})
        self.assertEqual(self.h.clock.getDelayedCalls(), [])
        self.assertEqual([c["call"] for c in self.h.cdrs].count(call.id), 1)

    def cdr(self, call):
        return [c for c in self.h.cdrs if c["call"] == call.id][0]


class TopologyTests(SynchronousTestCase):
    def test_machine(self):
        """The outbound machine has its five states and starts in routing."""
        machine = buildOutboundMachine()
        self.assertEqual(tuple(machine.stateNames()), OUTBOUND_STATE_NAMES)
        self.assertEqual(machine.initial, "routing")
        self.assertEqual(machine.finalState, "dropped")
        queues = machine.operatorsByQueue()
        self.assertEqual(queues["routing"]["event"][:2], ["OpAskOutgoing", "OpRouteOutgoing"])
        self.assertEqual(queues["dropped"]["entry"],
                         ["OpSIPHangup", "OpNotifyClients", "OpNotifyApplication",
                          "OpTellHeir", "OpReleaseCall"])

    def test_fakes(self):
        verifyObject(ISIPClientLeg, FakeClientLeg())


class CallingTests(OutboundMixin, SynchronousTestCase):
    def test_callingAtOnce(self):
        """
        'calling' with the id and ref comes at once; the application is
        asked with 'outgoing' (call, client, to, ref).
        """
        call = self.dial()
        self.assertIsInstance(call, OutboundCall)
        verifyObject(ISIPClientLegListener, call)
        [calling] = self.alice.ofType("calling")
        self.assertEqual(calling, {"type": "calling", "call": call.id, "ref": "r1"})
        self.assertEqual(call.state.name, "routing")
        [info] = self.h.application.incomings
        self.assertEqual((info["event"], info["call"], info["client"], info["to"], info["ref"]),
                         ("outgoing", call.id, "alice", "5551234", "r1"))
        self.assertEqual(self.legs, [])

    def test_routeDefaultTrunk(self):
        """
        The default route uses the first trunk: the INVITE's Request-URI is
        the number at the trunk's domain, From is the caller-ID rule (for
        an anonymous client C{{client}} is the trunk's username), the offer
        keeps only the allowed codecs, Route is not needed.
        """
        call, leg = self.routed()
        self.assertEqual(leg.actions, ["start"])
        self.assertEqual(call.state.name, "calling")
        self.assertEqual(str(leg.kwargs["requestURI"]), "sip:5551234@198.51.100.1:5060")
        self.assertEqual(str(leg.kwargs["fromAddr"]), "<sip:u1@198.51.100.1:5060>")
        self.assertEqual(leg.kwargs["routes"], ())
        self.assertEqual(str(leg.kwargs["proxy"]), "UDP:198.51.100.1:5060")
        body = leg.kwargs["body"].decode()
        self.assertIn("m=audio 4000 RTP/AVP 0 101", body)
        self.assertNotIn("opus", body)
        self.assertNotIn("a=fmtp:111", body)
        self.assertEqual(leg.kwargs["credentials"].username, "u1")
        self.assertEqual(self.h.application.states(call), ["calling"])
        self.assertEqual(call.trunk.name, "pbx")

    def test_routeNamedTrunkOfferless(self):
        """A decision naming a trunk uses it; an offerless trunk puts the offer in the ACK."""
        call, leg = self.routed({"action": "route", "trunk": "other"},
                                to="sip:bob@other.example.com")
        self.assertIsNone(leg.kwargs["body"])
        self.assertEqual(leg.kwargs["ackBody"], OFFER.encode())
        self.assertEqual(str(leg.kwargs["requestURI"]), "sip:bob@other.example.com")
        self.assertEqual(leg.kwargs["routes"], ())
        self.assertIsNone(leg.kwargs["credentials"])

    def test_unknownTrunk(self):
        """A trunk the configuration does not have: dropped 404, nothing sent."""
        call, _ = self.dial(), None
        self.h.application.decide(call, {"action": "route", "trunk": "nope"})
        self.assertEqual(self.legs, [])
        self.assertEqual(self.alice.ofType("state")[-1]["cause"], 404)
        self.assertReleased(call)

    def test_identityAndGrants(self):
        """The call carries who placed it and their grants, for the dial plan."""
        identity = Identity("alice", Grants(outgoing=True, trunks=("other",)))
        self.alice.identity = identity
        self.alice.grants = identity.grants
        call = self.dial()
        self.assertEqual(call.dialIdentity, "alice")
        self.assertIs(call.dialGrants, identity.grants)
        self.assertTrue(call.authenticated)

    def test_trunkNotGranted(self):
        """A token restricted to other trunks: dropped 403, nothing sent."""
        self.alice.grants = Grants(outgoing=True, trunks=("other",))
        call = self.dial()
        self.h.application.decide(call, {"action": "route", "trunk": "pbx"})
        self.assertEqual(self.legs, [])
        self.assertEqual(self.alice.ofType("state")[-1]["cause"], 403)
        self.assertReleased(call)
        call, leg = self.routed({"action": "route", "trunk": "other"}, ref="r2")
        self.assertEqual(call.trunk.name, "other")

    def test_reject(self):
        """The application rejects: dropped with its status, no SIP."""
        call = self.dial()
        self.h.application.decide(call, {"action": "reject", "status": 403})
        self.assertEqual(self.states(), ["dropped"])
        self.assertEqual(self.alice.ofType("state")[-1]["cause"], 403)
        self.assertEqual(self.legs, [])
        self.assertReleased(call)

    def test_badNumber(self):
        """A target that is neither a number nor a SIP URI: error 484, no call."""
        self.assertIsNone(self.dial(to="bad number!"))
        self.assertEqual(self.alice.ofType("error")[-1]["code"], 484)
        self.assertEqual(self.legs, [])

    def test_noAllowedCodec(self):
        """An offer without any allowed codec: dropped 488."""
        call = self.dial(sdp=OFFER.replace("111 0 101", "111"))
        self.h.application.decide(call, {"action": "route"})
        self.assertEqual(self.alice.ofType("state")[-1]["cause"], 488)

    def test_noDialer(self):
        """Without trunks a 'call' gets error 503 and no call is made."""
        self.h.manager.dialer = None
        self.assertIsNone(self.dial())
        self.assertEqual(self.alice.ofType("error")[-1]["code"], 503)
        self.assertEqual(self.alice.ofType("error")[-1]["ref"], "r1")

    def test_otherMediaRefused(self):
        """In a media mode without outbound support a 'call' gets error 501."""
        self.dialer.mediaName = "sfu"
        self.assertIsNone(self.dial())
        self.assertEqual(self.alice.ofType("error")[-1]["code"], 501)

    def test_bridgeOfferlessRefused(self):
        """
        Bridge mode, an offerless trunk and a media session that cannot
        answer a 2xx's offer: dropped 501, nothing sent.
        """
        self.dialer.mediaName = "bridge"
        call = self.dial()
        self.h.application.decide(call, {"action": "route", "trunk": "other"})
        self.assertEqual(self.legs, [])
        self.assertEqual(self.alice.ofType("state")[-1]["cause"], 501)
        self.assertReleased(call)

    def test_mediaWithoutOutbound(self):
        """A media session that cannot make offers: dropped 501."""
        self.h.manager.services.mediaFactory = FakeMediaFactory()
        call = self.dial()
        self.h.application.decide(call, {"action": "route"})
        self.assertEqual(self.legs, [])
        self.assertEqual(self.alice.ofType("state")[-1]["cause"], 501)

    def test_otherConnectionCannotAct(self):
        """Another connection's hangup for the call gets 404."""
        call, leg = self.routed()
        bob = self.h.connect("bob")
        self.h.clientSays(bob, "hangup", call)
        self.assertEqual(bob.ofType("error")[-1]["code"], 404)
        self.assertEqual(leg.actions, ["start"])


class AnswerTests(OutboundMixin, SynchronousTestCase):
    def test_earlyMediaThenConfirmed(self):
        """
        183 with SDP: 'answer' to the client and 'ringing'; the 200 with
        the same SDP sends no second answer; 'confirmed'; the answer time
        is set.
        """
        call, leg = self.routed()
        leg.progress(183, ANSWER)
        self.assertEqual([m["sdp"] for m in self.alice.ofType("answer")], [ANSWER.decode()])
        self.assertEqual(self.states(), ["ringing"])
        self.h.clock.advance(2)
        leg.answer()
        self.assertEqual(len(self.alice.ofType("answer")), 1)
        self.assertEqual(self.states(), ["ringing", "confirmed"])
        self.assertEqual(call.answerTime, 2)
        self.assertEqual(self.h.application.states(call), ["calling", "ringing", "confirmed"])

    def test_answerWithoutEarlyMedia(self):
        """A 180 without SDP, then the 200's SDP goes as 'answer' before 'confirmed'."""
        call, leg = self.routed()
        leg.progress(180)
        leg.answer()
        kinds = [m["type"] for m in self.alice.messages]
        self.assertEqual(kinds[-2:], ["answer", "state"])

    def test_clientHangsUp(self):
        """The client hangs up a confirmed call: BYE, dropped 200 by usr; CDR out."""
        call, leg = self.routed()
        leg.answer()
        self.h.clientSays(self.alice, "hangup", call)
        self.assertEqual(leg.actions, ["start", "bye"])
        self.assertEqual(self.states()[-1], "dropped")
        cdr = self.cdr(call)
        self.assertEqual((cdr["call_dir"], cdr["cause"], cdr["dropped_by"]),
                         ("outbound", 200, "usr"))
        self.assertEqual(cdr["to_uri"], "sip:5551234@198.51.100.1:5060")
        self.assertEqual(cdr["from_uri"], "sip:u1@198.51.100.1:5060")
        self.assertEqual(cdr["trunk"], "pbx")
        self.assertReleased(call)

    def test_farEndHangsUp(self):
        """BYE from the trunk: 200, dropped 200."""
        call, leg = self.routed()
        leg.answer()
        self.assertEqual(leg.bye(), [200])
        self.assertEqual(self.alice.ofType("state")[-1], {
            "type": "state", "call": call.id, "state": "dropped", "cause": 200})
        self.assertEqual(leg.actions, ["start"])
        self.assertReleased(call)

    def test_maxAnswerSeconds(self):
        """max_answer_seconds from the decision: BYE when it passes, cause 200 by sys."""
        call, leg = self.routed({"action": "route", "max_answer_seconds": 10})
        leg.answer()
        self.h.clock.advance(9)
        self.assertEqual(leg.actions, ["start"])
        self.h.clock.advance(1)
        self.assertEqual(leg.actions, ["start", "bye"])
        cdr = self.cdr(call)
        self.assertEqual((cdr["cause"], cdr["dropped_by"]), (200, "sys"))

    def test_maxAnswerSecondsDefault(self):
        """The dialer's max_answer_seconds applies when the decision gives none."""
        self.dialer.maxAnswerSeconds = 5.0
        call, leg = self.routed()
        leg.answer()
        self.h.clock.advance(5)
        self.assertEqual(leg.actions, ["start", "bye"])

    def test_answerWithoutSDP(self):
        """A 200 without SDP and no early answer: BYE, dropped 488."""
        call, leg = self.routed()
        leg.answer(body=b"")
        self.assertEqual(leg.actions, ["start", "bye"])
        self.assertEqual(self.alice.ofType("state")[-1]["cause"], 488)


class FailureTests(OutboundMixin, SynchronousTestCase):
    def test_failures(self):
        """486, 404, 480, 503, 408, 407 from the leg: dropped with that cause, nothing sent."""
        for status in (486, 404, 480, 503, 408, 407):
            call, leg = self.routed()
            leg.progress(180)
            leg.fail(status)
            self.assertEqual(self.alice.ofType("state")[-1]["cause"], status)
            self.assertEqual(leg.actions, ["start"])
            self.assertEqual(self.cdr(call)["cause"], status)
            self.assertReleased(call)

    def test_cancelBeforeAnswer(self):
        """The client hangs up while it rings: CANCEL, dropped 487 by usr."""
        call, leg = self.routed()
        leg.progress(180)
        self.h.clientSays(self.alice, "hangup", call)
        self.assertEqual(leg.actions, ["start", "cancel"])
        self.assertEqual(self.alice.ofType("state")[-1]["cause"], 487)
        self.assertEqual(self.cdr(call)["dropped_by"], "usr")
        self.assertReleased(call)

    def test_hangupWhileRouting(self):
        """A hangup before the application answered: dropped 487; the late decision is ignored."""
        call = self.dial()
        self.h.clientSays(self.alice, "hangup", call)
        self.assertEqual(self.alice.ofType("state")[-1]["cause"], 487)
        self.h.application.decide(call, {"action": "route"})
        self.assertEqual(self.legs, [])

    def test_maxRingSeconds(self):
        """
        max_ring_seconds runs from the INVITE and again from the first 180:
        then CANCEL, dropped 480.
        """
        call, leg = self.routed()
        self.h.clock.advance(20)
        leg.progress(180)
        self.h.clock.advance(29)
        self.assertEqual(leg.actions, ["start"])
        self.h.clock.advance(1)
        self.assertEqual(leg.actions, ["start", "cancel"])
        self.assertEqual(self.alice.ofType("state")[-1]["cause"], 480)
        self.assertReleased(call)

    def test_maxRingSecondsNoProvisional(self):
        """Without any 1xx the timer still ends the call after max_ring_seconds."""
        call, leg = self.routed({"action": "route", "max_ring_seconds": 5})
        self.h.clock.advance(5)
        self.assertEqual(leg.actions, ["start", "cancel"])

    def test_clientLost(self):
        """The caller's connection closes while it rings: CANCEL, cause 480."""
        call, leg = self.routed()
        leg.progress(180)
        self.h.disconnect(self.alice)
        self.assertEqual(leg.actions, ["start", "cancel"])
        self.assertReleased(call)

    def test_clientLostConfirmed(self):
        """The caller's connection closes during the call: BYE."""
        call, leg = self.routed()
        leg.answer()
        self.h.disconnect(self.alice)
        self.assertEqual(leg.actions, ["start", "bye"])

    def test_shutdown(self):
        """closeAll: CANCEL before the answer."""
        call, leg = self.routed()
        leg.progress(180)
        self.h.manager.closeAll()
        self.assertEqual(leg.actions, ["start", "cancel"])
        self.assertEqual(self.alice.ofType("state")[-1]["cause"], 503)

    def test_applicationFails(self):
        """An application whose outgoing fails rejects with 503."""
        self.h.application.outgoing = lambda info: defer.fail(RuntimeError("boom"))
        callId = self.dial()
        self.assertEqual(self.alice.ofType("state")[-1]["cause"], 503)
        self.flushLoggedErrors(RuntimeError)
        self.assertNotIn(callId, self.h.manager.calls)
        self.assertEqual([c["cause"] for c in self.h.cdrs if c["call"] == callId], [503])


class FilterCodecsTests(SynchronousTestCase):
    def test_keep(self):
        """Allowed codecs stay in order; the others' lines go."""
        out = filterCodecs(OFFER, ["pcmu"])
        self.assertIn("m=audio 4000 RTP/AVP 0\r\n", out)
        self.assertNotIn("opus", out)
        self.assertNotIn("telephone-event", out)
        self.assertIn("a=sendrecv", out)

    def test_all(self):
        """No list keeps the SDP as it is."""
        self.assertEqual(filterCodecs(OFFER, ()), OFFER)

    def test_staticWithoutRtpmap(self):
        """A static payload type without rtpmap is known by its number (RFC 3551)."""
        sdp = "v=0\r\nm=audio 1 RTP/AVP 0 8\r\n"
        self.assertIn("m=audio 1 RTP/AVP 8", filterCodecs(sdp, ["PCMA"]))

    def test_none(self):
        """No allowed audio codec: MediaError."""
        self.assertRaises(MediaError, filterCodecs, OFFER, ["G729"])


@implementer(IOutboundMediaSession)
class SlowMediaSession:
    """An outbound media session whose results the test fires (like bridge mode)."""

    def __init__(self):
        self.offers = []
        self.answers = []
        self.holds = []
        self.closed = False

    def clientOffer(self, sipOffer):
        return defer.succeed(None)

    def sipAnswer(self, clientSdp):
        return defer.succeed(b"")

    def sipAckBody(self, sdp):
        return defer.succeed(None)

    def sipReoffer(self, sdp):
        return defer.succeed((b"v=0\r\n", False))

    def sipOffer(self, clientOffer, codecs=None):
        d = defer.Deferred()
        self.offers.append((clientOffer, codecs, d))
        return d

    def clientAnswer(self, sipAnswer):
        d = defer.Deferred()
        self.answers.append((sipAnswer, d))
        return d

    def hold(self, onHold):
        self.holds.append(onHold)
        return defer.succeed(None)

    def sendDigits(self, digits):
        pass

    def stats(self):
        return {"mode": "slow"}

    def close(self):
        self.closed = True
        return defer.succeed(None)


@implementer(IOfferlessOutboundMediaSession)
class OfferlessMediaSession(SlowMediaSession):
    """A L{SlowMediaSession} that answers a 2xx's offer (bridge mode's C{ackAnswer})."""

    def __init__(self):
        super().__init__()
        self.lateOffers = []

    def ackAnswer(self, sipOffer):
        self.lateOffers.append(sipOffer)
        return b"v=0\r\nack-answer\r\n"


@implementer(IMediaFactory)
class SlowMediaFactory:
    name = "bridge"

    def __init__(self):
        self.sessions = []

    def newSession(self, callId, listener):
        session = OfferlessMediaSession()
        self.sessions.append(session)
        return session


class AsynchronousMediaTests(OutboundMixin, SynchronousTestCase):
    """Bridge-like media: the offer and the answers come later."""

    def setUp(self):
        super().setUp()
        self.media = SlowMediaFactory()
        self.h.manager.services.mediaFactory = self.media
        self.dialer.mediaName = "bridge"

    def test_interfaces(self):
        verifyObject(IOutboundMediaSession, SlowMediaSession())

    def test_offerLater(self):
        """
        The call waits in routing for the media's offer (the trunk's codecs
        are passed on), then the INVITE carries it; 183 and 200 answers go
        through clientAnswer; the 200 confirms once its answer is made.
        """
        call = self.dial()
        self.h.application.decide(call, {"action": "route"})
        [session] = self.media.sessions
        [(offer, codecs, d)] = session.offers
        self.assertEqual((offer, tuple(codecs)), (OFFER, ("PCMU", "telephone-event")))
        self.assertEqual(call.state.name, "routing")
        self.assertEqual(self.legs, [])
        d.callback(b"v=0\r\nm=audio 20000 RTP/AVP 0\r\n")
        [leg] = self.legs
        self.assertEqual(leg.kwargs["body"], b"v=0\r\nm=audio 20000 RTP/AVP 0\r\n")
        self.assertEqual(leg.actions, ["start"])
        self.assertEqual(call.state.name, "calling")
        leg.progress(183, ANSWER)
        self.assertEqual(self.states(), ["ringing"])
        session.answers[0][1].callback("v=0\r\nwebrtc-answer\r\n")
        self.assertEqual([m["sdp"] for m in self.alice.ofType("answer")],
                         ["v=0\r\nwebrtc-answer\r\n"])
        leg.answer()
        self.assertEqual(call.state.name, "ringing")
        self.assertEqual(session.answers[1][0], ANSWER)
        session.answers[1][1].callback("v=0\r\nwebrtc-answer\r\n")
        self.assertEqual(len(self.alice.ofType("answer")), 1)
        self.assertEqual(self.states(), ["ringing", "confirmed"])
        self.h.clientSays(self.alice, "hangup", call)
        self.assertEqual(leg.actions, ["start", "bye"])
        self.assertTrue(session.closed)
        self.assertReleased(call)

    def test_offerless(self):
        """
        Bridge mode and an offerless trunk: the INVITE has no SDP; the ACK's
        answer is made by the media session from the 2xx's offer
        (C{ackAnswer}); the 2xx's SDP then goes through C{clientAnswer} and
        the client gets the WebRTC answer; the call is confirmed.
        """
        call = self.dial()
        self.h.application.decide(call, {"action": "route", "trunk": "other"})
        [session] = self.media.sessions
        session.offers[0][2].callback(b"v=0\r\nm=audio 20000 RTP/AVP 0\r\n")
        [leg] = self.legs
        self.assertIsNone(leg.kwargs["body"])
        self.assertEqual(leg.actions, ["start"])
        ackBody = leg.kwargs["ackBody"]
        self.assertEqual(ackBody(FakeResponse(200, ANSWER)), b"v=0\r\nack-answer\r\n")
        self.assertEqual(session.lateOffers, [ANSWER])
        self.assertIsNone(ackBody(FakeResponse(200, b"")))
        leg.answer()
        self.assertEqual(session.answers[0][0], ANSWER)
        session.answers[0][1].callback("v=0\r\nwebrtc-answer\r\n")
        self.assertEqual([m["sdp"] for m in self.alice.ofType("answer")],
                         ["v=0\r\nwebrtc-answer\r\n"])
        self.assertEqual(call.state.name, "confirmed")

    def test_offerFails(self):
        """A media failure making the offer: dropped 488, no INVITE."""
        call = self.dial()
        self.h.application.decide(call, {"action": "route"})
        self.media.sessions[0].offers[0][2].errback(MediaError("no codec"))
        self.assertEqual(self.legs, [])
        self.assertEqual(self.alice.ofType("state")[-1]["cause"], 488)
        self.assertReleased(call)

    def test_hangupWhileOffering(self):
        """The client hangs up while the offer is made: dropped 487; the late offer is ignored."""
        call = self.dial()
        self.h.application.decide(call, {"action": "route"})
        self.h.clientSays(self.alice, "hangup", call)
        self.assertEqual(self.alice.ofType("state")[-1]["cause"], 487)
        self.media.sessions[0].offers[0][2].callback(b"v=0\r\n")
        self.assertEqual(self.legs, [])

    def test_clientHold(self):
        """The client's hold/unhold reaches the media session; 'state' hold/unhold."""
        call = self.dial()
        self.h.application.decide(call, {"action": "route"})
        session = self.media.sessions[0]
        session.offers[0][2].callback(b"v=0\r\n")
        leg = self.legs[0]
        leg.answer()
        session.answers[0][1].callback("v=0\r\nwebrtc-answer\r\n")
        self.h.clientSays(self.alice, "hold", call)
        self.h.clientSays(self.alice, "hold", call)
        self.h.clientSays(self.alice, "unhold", call)
        self.assertEqual(session.holds, [True, False])
        self.assertEqual(self.states()[-2:], ["hold", "unhold"])

    def test_answerFails(self):
        """The media cannot use the 200's SDP and there was no early answer: BYE, 488."""
        call = self.dial()
        self.h.application.decide(call, {"action": "route"})
        session = self.media.sessions[0]
        session.offers[0][2].callback(b"v=0\r\n")
        leg = self.legs[0]
        leg.answer()
        session.answers[0][1].errback(MediaError("no codec"))
        self.assertEqual(leg.actions, ["start", "bye"])
        self.assertEqual(self.alice.ofType("state")[-1]["cause"], 488)
        self.assertReleased(call)


class ReofferHoldTests(OutboundMixin, SynchronousTestCase):
    """Outgoing calls with media that re-offers (bridge mode): the client's hold is a re-INVITE."""

    def setUp(self):
        super().setUp()
        self.media = FakeMediaFactory(reoffer=True)
        self.h.manager.services.mediaFactory = self.media
        self.dialer.mediaName = "bridge"

    def confirmed(self):
        call, leg = self.routed()
        leg.answer()
        self.assertEqual(call.state.name, "confirmed")
        return call, leg, self.media.sessions[call.id]

    def test_holdAndUnhold(self):
        """hold: re-INVITE with the sendonly offer on the client leg; 200: 'state' hold; unhold too."""
        call, leg, media = self.confirmed()
        self.assertTrue(IReofferMediaSession.providedBy(media))
        self.h.clientSays(self.alice, "hold", call)
        [(body, contentType, d)] = leg.reinvites
        self.assertTrue(body.endswith(b"a=sendonly\r\n"))
        self.assertEqual(contentType, "application/sdp")
        self.assertEqual(self.states(), ["confirmed"])
        d.callback(FakeResponse(200, b"v=0 recvonly"))
        self.assertEqual(self.states()[-1], "hold")
        self.assertEqual(media.calls[-1], ("reofferAnswered", b"v=0 recvonly"))
        self.h.clientSays(self.alice, "unhold", call)
        body, _, d = leg.reinvites[1]
        self.assertTrue(body.endswith(b"a=sendrecv\r\n"))
        d.callback(FakeResponse(200, b"v=0"))
        self.assertEqual(self.states()[-2:], ["hold", "unhold"])
        self.assertEqual(self.alice.ofType("error"), [])
        self.assertEqual(call.state.name, "confirmed")

    def test_refused(self):
        """A 488 to the re-INVITE: 'error' 488, no state; hold while pending: 409."""
        call, leg, media = self.confirmed()
        self.h.clientSays(self.alice, "hold", call)
        self.h.clientSays(self.alice, "hold", call)
        self.assertEqual([e["code"] for e in self.alice.ofType("error")], [409])
        leg.reinvites[0][2].callback(FakeResponse(488))
        self.assertEqual([e["code"] for e in self.alice.ofType("error")], [409, 488])
        self.assertEqual(self.states(), ["confirmed"])
        self.assertFalse(call.held)
        self.assertEqual(call.state.name, "confirmed")
