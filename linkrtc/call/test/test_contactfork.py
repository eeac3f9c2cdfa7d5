"""
A client's call to a SIP user with several registered contacts rings them
all (L{linkrtc.call.contactfork}): on the fakes of L{linkrtc.testing} with
fake SIP legs, and on real INVITE client legs over a recording transport.
"""

from twisted.internet import defer
from twisted.logger import globalLogPublisher
from twisted.trial.unittest import SynchronousTestCase
from zope.interface.verify import verifyObject

from linkrtc.call.contactfork import ContactFork
from linkrtc.call.dialer import OutboundDialer
from linkrtc.call.fork import ANSWERED_ELSEWHERE_REASON
from linkrtc.call.passthrough import PassthroughMediaFactory
from linkrtc.call.test.test_contacts import FakeUserAgent
from linkrtc.call.test.test_outbound import OFFER, OutgoingApplication
from linkrtc.call.test.test_sipphones import PHONE_ANSWER, BranchLeg
from linkrtc.interfaces import ISIPClientLeg
from linkrtc.sip.bindings import Binding, BindingTable, flowOf
from linkrtc.sip.outbound import InviteClientLeg
from linkrtc.sip.test.test_outbound import ANSWER, SDP, LegMixin
from linkrtc.sip.transport import Address
from linkrtc.sip.uri import SIPURI, NameAddr, parseURI
from linkrtc.testing import CallHarness

EARLY_A = PHONE_ANSWER.replace("198.51.100.8", "198.51.100.21").encode()
EARLY_B = PHONE_ANSWER.replace("198.51.100.8", "198.51.100.22").encode()


def binding(clock, port, user="bob"):
    uri = f"sip:{user}@10.0.0.2:{port}"
    return Binding(user=user, contact=NameAddr(parseURI(uri)), uriText=uri,
                   flow=flowOf(Address("UDP", "198.51.100.7", port)), callId=f"c{port}",
                   cseq=1, expiresAt=clock.seconds() + 600)


class ContactForkCallTests(SynchronousTestCase):
    """A browser (alice) calls bob, who registered several SIP contacts."""

    def setUp(self):
        self.h = CallHarness(mediaFactory=PassthroughMediaFactory(),
                             application=OutgoingApplication())
        self.bindings = BindingTable(self.h.clock)
        self.legs = []

        def legFactory(**kwargs):
            leg = BranchLeg(**kwargs)
            leg.byeResult = defer.succeed(None)
            self.legs.append(leg)
            return leg

        self.dialer = OutboundDialer(FakeUserAgent(), (), self.h.clock, legFactory=legFactory,
                                     bindings=self.bindings, maxRingSeconds=30)
        self.h.manager.dialer = self.dialer
        self.alice = self.h.connect("alice")

    def bind(self, *ports):
        for port in ports:
            self.bindings.bind(binding(self.h.clock, port))
            self.h.clock.advance(1)  # the later registration is preferred

    def call(self):
        self.h.manager.clientMessageReceived(
            self.alice, {"type": "call", "to": "bob", "sdp": OFFER, "ref": "r"})
        call = self.h.manager.calls[self.alice.ofType("calling")[-1]["call"]]
        self.h.application.decide(call, {"action": "route", "trunk": None})
        return call

    def cdr(self, call):
        return [c for c in self.h.cdrs if c["call"] == call.id][0]

    def states(self):
        return [m["state"] for m in self.alice.ofType("state")]

    def test_everyContactInvited(self):
        """Two contacts: an INVITE to each, through the flow its REGISTER came by."""
        self.bind(5062, 5064)
        call = self.call()
        self.assertIsInstance(call.leg, ContactFork)
        verifyObject(ISIPClientLeg, call.leg)
        self.assertEqual(len(self.legs), 2)
        b, a = self.legs  # the most recent registration (5064) first
        for leg, port in ((a, 5062), (b, 5064)):
            self.assertEqual(leg.actions, ["start"])
            self.assertEqual(str(leg.kwargs["requestURI"]), f"sip:bob@10.0.0.2:{port}")
            self.assertEqual(leg.kwargs["proxy"], Address("UDP", "198.51.100.7", port))
            self.assertEqual(str(leg.kwargs["fromAddr"].uri), "sip:alice@203.0.113.10:5060")
            self.assertEqual(str(leg.kwargs["toAddr"].uri), "sip:bob@203.0.113.10:5060")
            self.assertEqual(leg.kwargs["body"], OFFER.encode())
        self.assertEqual(call.state.name, "calling")

    def test_oneContactNoFork(self):
        """One contact: its leg is the call's leg, as before."""
        self.bind(5062)
        call = self.call()
        [leg] = self.legs
        self.assertIs(call.leg, leg)

    def test_firstAnswerWins(self):
        """
        The caller gets ringing once; the first 200 wins and reaches the
        caller; the other branch gets CANCEL with the Reason; the CDR's
        device is the contact that answered; the caller's hangup BYEs it.
        """
        self.bind(5062, 5064)
        call = self.call()
        first, second = self.legs
        second.progress(180)
        first.progress(180)
        second.progress(180)
        self.assertEqual(self.states(), ["ringing"])
        second.answer()
        self.assertEqual(call.state.name, "confirmed")
        self.assertEqual(self.alice.ofType("answer")[-1]["sdp"], PHONE_ANSWER)
        self.assertEqual(first.actions, ["start", "cancel"])
        self.assertEqual(first.cancelReason, ANSWERED_ELSEWHERE_REASON)
        self.assertEqual(second.actions, ["start"])
        self.assertIs(call.leg.dialog, second.dialog)
        self.assertEqual(self.h.startCdrs[0]["device"], "sip:bob@10.0.0.2:5062")
        self.h.manager.clientMessageReceived(self.alice, {"type": "hangup", "call": call.id})
        self.assertEqual(second.actions, ["start", "bye"])
        self.assertEqual(first.actions, ["start", "cancel"])
        self.assertEqual(self.cdr(call)["device"], "sip:bob@10.0.0.2:5062")

    def test_late200IsEnded(self):
        """A 200 from a branch after another won is ended with BYE; the caller hears of one."""
        self.bind(5062, 5064)
        call = self.call()
        a, b = self.legs
        a.answer()
        b.answer()
        self.assertEqual(b.actions, ["start", "cancel", "bye"])
        self.assertEqual(a.actions, ["start"])
        self.assertEqual(len(self.alice.ofType("answer")), 1)
        self.assertEqual(call.state.name, "confirmed")

    def test_allFailBestResponse(self):
        """Every branch fails: the caller gets the best response (486 before 503 and 408)."""
        self.bind(5062, 5064, 5066)
        call = self.call()
        a, b, c = self.legs
        a.fail(503)
        b.fail(486, "Busy Here")
        self.assertEqual(call.state.name, "calling")
        c.fail(408)
        self.assertEqual(call.state.name, "dropped")
        self.assertEqual(self.alice.ofType("state")[-1]["cause"], 486)
        self.assertEqual(self.cdr(call)["cause"], 486)
        self.assertIsNone(self.cdr(call)["device"])
        for leg in (a, b, c):
            self.assertEqual(leg.actions, ["start"])

    def test_6xxEndsTheFork(self):
        """A 603 from one contact ends the call at once; the others are CANCELed without Reason."""
        self.bind(5062, 5064)
        call = self.call()
        a, b = self.legs
        b.progress(180)
        a.fail(603, "Decline")
        self.assertEqual(self.alice.ofType("state")[-1]["cause"], 603)
        self.assertEqual(b.actions, ["start", "cancel"])
        self.assertIsNone(b.cancelReason)
        self.assertEqual(call.state.name, "dropped")

    def test_callerCancels(self):
        """The caller hangs up while they ring: every branch is CANCELed (no Reason), 487."""
        self.bind(5062, 5064)
        call = self.call()
        self.legs[0].progress(180)
        self.h.manager.clientMessageReceived(self.alice, {"type": "hangup", "call": call.id})
        for leg in self.legs:
            self.assertEqual(leg.actions, ["start", "cancel"])
            self.assertIsNone(leg.cancelReason)
        self.assertEqual(self.cdr(call)["cause"], 487)
        # A branch that answers anyway is ended; the call stays dropped.
        self.legs[1].answer()
        self.assertEqual(self.legs[1].actions, ["start", "cancel", "bye"])
        self.assertEqual(call.state.name, "dropped")

    def test_ringTimeoutCancelsAll(self):
        """max_ring_seconds passes: every branch is CANCELed, the caller gets 480."""
        self.bind(5062, 5064)
        call = self.call()
        self.h.clock.advance(30)
        for leg in self.legs:
            self.assertEqual(leg.actions, ["start", "cancel"])
        self.assertEqual(self.alice.ofType("state")[-1]["cause"], 480)
        self.assertEqual(call.state.name, "dropped")

    def test_maxForks(self):
        """No more than max-forks contacts ring (preferred first); the rest are logged once."""
        self.h.manager.services.maxForks = 2
        events = []
        globalLogPublisher.addObserver(events.append)
        self.addCleanup(globalLogPublisher.removeObserver, events.append)
        self.bind(5062, 5064, 5066)
        self.call()
        self.assertEqual([leg.kwargs["requestURI"].port for leg in self.legs], [5066, 5064])
        warnings = [e for e in events if "max-forks" in e.get("log_format", "")]
        self.assertEqual(len(warnings), 1)
        self.assertEqual((warnings[0]["count"], warnings[0]["bound"]), (3, 2))

    def test_earlyMediaFromOneBranch(self):
        """Early media (a 183's SDP) reaches the caller from the first branch that sent one only."""
        self.bind(5062, 5064)
        call = self.call()
        a, b = self.legs
        a.progress(180)
        b.progress(183, EARLY_B)
        a.progress(183, EARLY_A)
        self.assertEqual([m["sdp"].encode() for m in self.alice.ofType("answer")], [EARLY_B])
        self.assertEqual(self.states(), ["ringing"])
        b.answer(EARLY_B)
        self.assertEqual(len(self.alice.ofType("answer")), 1)
        self.assertEqual(a.cancelReason, ANSWERED_ELSEWHERE_REASON)
        self.assertEqual(call.state.name, "confirmed")


class ContactForkWireTests(LegMixin, SynchronousTestCase):
    """A L{ContactFork} of two real INVITE client legs: what goes on the wire."""

    def setUp(self):
        LegMixin.setUp(self)
        self.a = Address("UDP", "198.51.100.7", 5062)
        self.b = Address("UDP", "198.51.100.7", 5064)
        legs = [(binding(self.clock, dest.port),
                 InviteClientLeg(self.ua, self.clock, parseURI(f"sip:bob@10.0.0.2:{dest.port}"),
                                 NameAddr(SIPURI("sip", user="alice", host="203.0.113.10")),
                                 proxy=dest, body=SDP))
                for dest in (self.a, self.b)]
        self.fork = ContactFork(legs)
        self.fork.setListener(self.listener)
        self.fork.start()

    def sentTo(self, method, destination):
        return [m for m, d in self.transport.sent
                if getattr(m, "method", None) == method and d == destination]

    def test_invites(self):
        """One INVITE per contact, to its flow, each with its own Call-ID."""
        [ia], [ib] = self.sentTo("INVITE", self.a), self.sentTo("INVITE", self.b)
        self.assertNotEqual(ia.headers.get("Call-ID"), ib.headers.get("Call-ID"))
        self.assertEqual(ia.body, SDP)

    def test_winnerAndCancelWithReason(self):
        """200 from one: ACKed, passed on; the other gets CANCEL with the RFC 3326 Reason."""
        [ia], [ib] = self.sentTo("INVITE", self.a), self.sentTo("INVITE", self.b)
        self.respond(180, ia, toTag="ta")
        self.respond(180, ib, toTag="tb")
        self.respond(200, ib, toTag="tb", body=ANSWER)
        self.assertEqual(self.listener.names(), ["progress", "answered"])
        self.assertEqual(len(self.sentTo("ACK", self.b)), 1)
        [cancel] = self.sentTo("CANCEL", self.a)
        self.assertEqual(cancel.headers.get("Reason"), ANSWERED_ELSEWHERE_REASON)
        self.assertEqual(self.sentTo("CANCEL", self.b), [])
        self.assertIs(self.fork.winningContact.flow.destination(), self.fork.winner.binding
                      .flow.destination())
        self.assertEqual(self.fork.winningContact.uriText, "sip:bob@10.0.0.2:5064")

    def test_late200AckedAndByed(self):
        """A 200 crossing the CANCEL is ACKed, then BYEd (RFC 3261 §13.2.2.4); no second answer."""
        [ia], [ib] = self.sentTo("INVITE", self.a), self.sentTo("INVITE", self.b)
        self.respond(180, ia, toTag="ta")
        self.respond(200, ib, toTag="tb", body=ANSWER)
        self.respond(200, ia, toTag="ta", body=ANSWER)
        self.assertEqual(len(self.sentTo("ACK", self.a)), 1)
        self.assertEqual(len(self.sentTo("BYE", self.a)), 1)
        self.assertEqual(self.sentTo("BYE", self.b), [])
        self.assertEqual(self.listener.names(), ["progress", "answered"])

    def test_cancelBeforeAnyProvisional(self):
        """The caller gives up before any 1xx: each CANCEL goes when its 1xx comes, no Reason."""
        [ia], [ib] = self.sentTo("INVITE", self.a), self.sentTo("INVITE", self.b)
        self.fork.cancel()
        self.assertEqual(self.transport.requests("CANCEL"), [])
        self.respond(180, ia, toTag="ta")
        self.respond(183, ib, toTag="tb")
        cancels = self.transport.requests("CANCEL")
        self.assertEqual(len(cancels), 2)
        self.assertEqual([c.headers.get("Reason") for c in cancels], [None, None])
        self.assertEqual(self.listener.names(), [])

    def test_allFail(self):
        """Both refuse: the listener hears the best response once."""
        [ia], [ib] = self.sentTo("INVITE", self.a), self.sentTo("INVITE", self.b)
        self.respond(480, ia, toTag="ta")
        self.assertEqual(self.listener.names(), [])
        self.respond(486, ib, toTag="tb")
        self.assertEqual(self.listener.events, [("failed", 480, "Temporarily Unavailable")])
