"""
Tests for resuming an answered call after the client's connection closed
(L{linkrtc.call.operators.resume}, L{linkrtc.call.manager.CallManager}),
on the call harness with a L{task.Clock}.
"""

from twisted.trial.unittest import SynchronousTestCase

from linkrtc.testing import CallHarness, FakeClientConnection, FakeMediaFactory

OFFER = "v=0\r\no=- 9 1 IN IP4 127.0.0.1\r\ns=-\r\n"


class ResumeTests(SynchronousTestCase):
    def setUp(self):
        self.h = CallHarness(mediaFactory=FakeMediaFactory(resumable=True), resumeSeconds=10.0)

    def lose(self, call=None):
        """Answer a call, lose its client; @return: C{(call, leg, old)}."""
        call, leg, old = self.h.answer("alice")
        self.h.disconnect(old)
        return call, leg, old

    def comeBack(self, old, name="alice"):
        """A new connection registers with C{old}'s token; @return: it and the calls listed."""
        new = self.h.connect(name)
        return new, self.h.manager.clientResumed(old, new)

    def test_waitsInsteadOfEnding(self):
        """
        The answering client's connection closes: the call stays
        confirmed, nothing goes to SIP, the media detaches the client's leg.
        """
        call, leg, old = self.lose()
        self.assertEqual(call.state.name, "confirmed")
        self.assertEqual(leg.byes, [])
        self.assertEqual(self.h.cdrs, [])
        self.assertIs(call.lostClient, old)
        self.assertIn(("clientDetached", None), self.h.media(call).calls)

    def test_graceExpiry(self):
        """
        No resume within the grace period: the call ends as a lost client's
        always did (BYE, cause 480 "client connection lost"), and a client
        that registered to resume it but did not hears C{dropped}.
        """
        call, leg, old = self.lose()
        new, waiting = self.comeBack(old)
        self.h.clock.advance(9.9)
        self.assertEqual(call.state.name, "confirmed")
        self.h.clock.advance(0.2)
        self.assertEqual(call.state.name, "dropped")
        self.assertEqual(self.h.cdrs[-1]["cause"], 480)
        self.assertEqual(self.h.cdrs[-1]["reason"], "client connection lost")
        self.assertEqual(len(leg.byes), 1)
        self.assertEqual(new.ofType("state")[-1]["state"], "dropped")
        # Too late now: the call is gone.
        self.h.clientSays(new, "resume", call, sdp=OFFER)
        self.assertEqual(new.ofType("error")[-1]["code"], 404)
        self.assertEqual(new.ofType("error")[-1]["field"], "resume")

    def test_resume(self):
        """
        The client comes back and resumes: the media answers its new offer,
        it gets C{answer} and C{state} C{confirmed}, it is the answerer
        again (its hangup ends the call with BYE, cause 200), and the grace
        timer no longer runs.
        """
        call, leg, old = self.lose()
        new, waiting = self.comeBack(old)
        self.assertEqual(waiting, [{"call": call.id, "state": "confirmed",
                                    "direction": "inbound"}])
        self.h.clientSays(new, "resume", call, sdp=OFFER)
        self.assertEqual(new.ofType("answer"), [{"type": "answer", "call": call.id,
                                                 "sdp": "answer to " + OFFER}])
        self.assertEqual(new.ofType("state")[-1]["state"], "confirmed")
        self.assertIs(call.answerer, new)
        self.assertIsNone(call.lostClient)
        self.h.clock.advance(60)
        self.assertEqual(call.state.name, "confirmed")
        self.h.clientSays(new, "dtmf", call, digits="1")
        self.assertEqual(self.h.media(call).digits, ["1"])
        self.h.clientSays(new, "hangup", call)
        self.assertEqual(call.state.name, "dropped")
        self.assertEqual(self.h.cdrs[-1]["cause"], 200)
        self.assertEqual(len(leg.byes), 1)

    def test_secondResume(self):
        """A second C{resume} of the same call gets 409."""
        call, leg, old = self.lose()
        new, _ = self.comeBack(old)
        self.h.clientSays(new, "resume", call, sdp=OFFER)
        self.h.clientSays(new, "resume", call, sdp=OFFER)
        error = new.ofType("error")[-1]
        self.assertEqual(error["code"], 409)
        self.assertEqual(len(new.ofType("answer")), 1)

    def test_resumeUnderWay(self):
        """A C{resume} while the media still builds the first one's leg gets 409."""
        self.h = CallHarness(mediaFactory=FakeMediaFactory(resumable=True, manual=True),
                             resumeSeconds=10.0)
        call, leg, old = self.h.answer("alice")
        # manual media: fire what the answer needed
        for method, d in list(self.h.media(call).deferreds):
            if not d.called:
                d.callback(b"v=0 sip answer" if method == "sipAnswer" else None)
        self.h.disconnect(old)
        new, _ = self.comeBack(old)
        self.h.clientSays(new, "resume", call, sdp=OFFER)
        self.h.clientSays(new, "resume", call, sdp=OFFER)
        self.assertEqual(new.ofType("error")[-1]["code"], 409)
        self.h.media(call).deferreds[-1][1].callback("late answer")
        self.assertEqual(new.ofType("answer")[-1]["sdp"], "late answer")

    def test_otherIdentity(self):
        """
        A connection that did not register with the lost one's token (for
        example another client) cannot resume the call: 404, C{field}
        C{resume}; nor can one that names an unknown call.
        """
        call, leg, old = self.lose()
        bob = self.h.connect("bob")
        self.h.clientSays(bob, "resume", call, sdp=OFFER)
        error = bob.ofType("error")[-1]
        self.assertEqual((error["code"], error["field"]), (404, "resume"))
        self.assertEqual(bob.ofType("answer"), [])
        self.h.clientSays(bob, "resume", "no-such-call", sdp=OFFER)
        self.assertEqual(bob.ofType("error")[-1]["code"], 404)
        self.assertEqual(call.state.name, "confirmed")

    def test_badOffer(self):
        """
        An offer the media refuses: C{error} 488 (C{field} C{sdp}); the call
        still waits, and a good offer then resumes it.
        """
        call, leg, old = self.lose()
        new, _ = self.comeBack(old)
        self.h.clientSays(new, "resume", call, sdp="not sdp")
        error = new.ofType("error")[-1]
        self.assertEqual((error["code"], error["field"]), (488, "sdp"))
        self.assertEqual(call.state.name, "confirmed")
        self.h.clientSays(new, "resume", call, sdp=OFFER)
        self.assertEqual(len(new.ofType("answer")), 1)

    def test_chainedReloads(self):
        """
        The client that registered to resume is lost in its turn before
        resuming; the next one, with that one's token, may resume.
        """
        call, leg, old = self.lose()
        second, _ = self.comeBack(old)
        self.h.disconnect(second)
        third, waiting = self.comeBack(second)
        self.assertEqual([w["call"] for w in waiting], [call.id])
        self.h.clientSays(second, "resume", call, sdp=OFFER)
        self.assertEqual(second.ofType("answer"), [])
        self.h.clientSays(third, "resume", call, sdp=OFFER)
        self.assertEqual(len(third.ofType("answer")), 1)

    def test_lostAgainAfterResume(self):
        """A resumed call whose new connection closes waits again, and can end by timeout."""
        call, leg, old = self.lose()
        new, _ = self.comeBack(old)
        self.h.clientSays(new, "resume", call, sdp=OFFER)
        self.h.disconnect(new)
        self.assertIs(call.lostClient, new)
        self.h.clock.advance(10)
        self.assertEqual(call.state.name, "dropped")
        self.assertEqual(self.h.cdrs[-1]["cause"], 480)

    def test_sipByeWhileWaiting(self):
        """The SIP side's own failure while waiting still ends the call (BYE from SIP)."""
        call, leg, old = self.lose()
        leg.receive("BYE")
        self.assertEqual(call.state.name, "dropped")
        self.assertEqual(self.h.cdrs[-1]["cause"], 200)

    def test_beforeAnswer(self):
        """A connection lost while the call rings ends it at once, as before (480)."""
        alice = self.h.connect("alice")
        call, leg = self.h.invite()
        self.h.route(call, "alice")
        self.h.clientSays(alice, "ringing", call)
        self.h.disconnect(alice)
        self.assertEqual(call.state.name, "dropped")
        self.assertEqual(leg.finals[-1].status, 480)

    def test_disabled(self):
        """With a grace period of 0 the call ends at once (BYE, 480)."""
        self.h = CallHarness(mediaFactory=FakeMediaFactory(resumable=True))
        call, leg, old = self.lose()
        self.assertEqual(call.state.name, "dropped")
        self.assertEqual(self.h.cdrs[-1]["cause"], 480)

    def test_mediaCannotResume(self):
        """A media session that cannot rebuild the client's leg: the call ends at once."""
        self.h = CallHarness(resumeSeconds=10.0)
        call, leg, old = self.lose()
        self.assertEqual(call.state.name, "dropped")

    def test_passthroughRefused(self):
        """In passthrough a C{resume} gets 501 (C{field} C{resume}): docs/signalling.rst."""
        factory = FakeMediaFactory()
        factory.name = "passthrough"
        self.h = CallHarness(mediaFactory=factory, resumeSeconds=10.0)
        call, leg, old = self.lose()
        self.assertEqual(call.state.name, "dropped")
        new = FakeClientConnection("alice")
        self.h.clientSays(new, "resume", call, sdp=OFFER)
        error = new.ofType("error")[-1]
        self.assertEqual((error["code"], error["field"]), (501, "resume"))
