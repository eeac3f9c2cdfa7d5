"""
What a call records and reports (issue 10): the C{start} CDR of an
answered call, causes that say what happened (a 200 OK never sent, a
client's media failure), and the C{state} messages' C{cause} and
C{client}.
"""

from twisted.trial.unittest import SynchronousTestCase

from linkrtc.call.dialer import OutboundDialer
from linkrtc.call.passthrough import PassthroughMediaFactory
from linkrtc.call.test.test_outbound import OFFER, TRUNKS, FakeClientLeg, OutgoingApplication
from linkrtc.config import parseTrunks
from linkrtc.error import SIPParseError
from linkrtc.testing import CLIENT_ANSWER, CallHarness, FakeServerLeg


class _BrokenOkLeg(FakeServerLeg):
    """A leg whose 2xx cannot be built (as with a malformed Record-Route)."""

    def sendFinal(self, status, reason=None, body=None, contentType=None, headers=()):
        if 200 <= status < 300:
            raise SIPParseError("malformed Record-Route")
        return super().sendFinal(status, reason, body, contentType, headers)


class IncomingRecordTests(SynchronousTestCase):
    def setUp(self):
        self.h = CallHarness()
        self.app = self.h.application

    def test_startRecordWhenAnswered(self):
        """The 200 OK writes a start CDR with the call's fields so far; the end one follows."""
        self.h.clock.advance(10)
        call, leg, connection = self.h.answer()
        [start] = self.h.startCdrs
        self.assertEqual(self.h.cdrs, [])
        self.assertEqual(
            {k: start[k] for k in ("event", "record", "call", "call_dir", "client",
                                   "begin_time", "answer_time", "end_time", "cause")},
            {"event": "cdr", "record": "start", "call": call.id, "call_dir": "inbound",
             "client": "alice", "begin_time": 10.0, "answer_time": 10.0, "end_time": None,
             "cause": None})
        self.h.clock.advance(5)
        leg.receive("BYE")
        [end] = self.h.cdrs
        self.assertEqual((end["record"], end["answer_time"], end["end_time"], end["cause"]),
                         ("end", 10.0, 15.0, 200))
        self.assertEqual(len(self.h.startCdrs), 1)
        self.assertEqual(set(start), set(end))

    def test_noStartRecordUnanswered(self):
        """A call never answered has only its end record."""
        connection = self.h.connect("alice")
        call, leg = self.h.invite()
        self.h.route(call, "alice")
        self.h.clientSays(connection, "reject", call, reason="busy")
        self.assertEqual(self.h.startCdrs, [])
        self.assertEqual([c["cause"] for c in self.h.cdrs], [486])

    def test_okNotSentIsNotAnswered(self):
        """
        A 200 OK the leg cannot build: no start record, no answer_time, the
        CDR says 500 (not 200 normal), the SIP side gets 500, the client an
        error and dropped.
        """
        connection = self.h.connect("alice")
        leg = _BrokenOkLeg()
        call = self.h.manager.inviteReceived(leg)
        self.h.route(call, "alice")
        self.h.clientSays(connection, "accept", call, sdp=CLIENT_ANSWER)
        self.flushLoggedErrors(SIPParseError)
        self.assertEqual(call.state.name, "dropped")
        self.assertEqual(self.h.startCdrs, [])
        [cdr] = self.h.cdrs
        self.assertEqual((cdr["cause"], cdr["answer_time"], cdr["dropped_by"]),
                         (500, None, "sys"))
        self.assertIn("200 OK", cdr["reason"])
        self.assertEqual(leg.finalStatus, 500)
        self.assertEqual([m["code"] for m in connection.ofType("error")], [500])
        self.assertEqual(connection.ofType("state")[-1]["cause"], 500)
        self.assertNotIn("confirmed", self.app.states(call))

    def test_clientMediaFailureAfterAnswer(self):
        """A hangup with cause 488 (the client's media failed) is not 200 normal."""
        call, leg, connection = self.h.answer()
        self.h.clientSays(connection, "hangup", call, cause=488,
                          reason="media set-up failed: no ICE")
        [cdr] = self.h.cdrs
        self.assertEqual((cdr["cause"], cdr["reason"], cdr["dropped_by"]),
                         (488, "media set-up failed: no ICE", "usr"))
        self.assertEqual(len(leg.byes), 1)

    def test_clientMediaFailureBeforeAnswer(self):
        """
        A pre-answer hangup with a cause: that status to the caller when
        no other connection rings (it counts as busy does).
        """
        call, leg = self.h.invite()
        first, second = self.h.connect("alice"), self.h.connect("alice")
        self.h.route(call, "alice")
        self.h.clientSays(first, "hangup", call, cause=500)
        self.assertEqual(call.state.name, "calling")
        self.h.clientSays(second, "hangup", call, cause=488, reason="no microphone")
        self.assertEqual(leg.finalStatus, 488)
        [cdr] = self.h.cdrs
        self.assertEqual((cdr["cause"], cdr["reason"]), (488, "no microphone"))

    def test_plainHangupStillNormal(self):
        """A hangup without a cause is the normal end (200) as before."""
        call, leg, connection = self.h.answer()
        self.h.clientSays(connection, "hangup", call)
        self.assertEqual((self.h.cdrs[0]["cause"], self.h.cdrs[0]["reason"]), (200, "normal"))

    def test_stateCauses(self):
        """ringing carries 180, confirmed 200 (to the client and the application)."""
        call, leg, connection = self.h.answer()
        self.assertEqual([(m["state"], m["cause"]) for m in connection.ofType("state")],
                         [("ringing", 180), ("confirmed", 200)])
        events = self.app.events("state", call)
        self.assertEqual([(e["state"], e["cause"]) for e in events],
                         [("calling", None), ("ringing", 180), ("confirmed", 200)])

    def test_stateClient(self):
        """The application's state events name the client."""
        call, leg, connection = self.h.answer()
        leg.receive("BYE")
        events = self.app.events("state", call)
        self.assertEqual({e["client"] for e in events}, {"alice"})
        self.assertEqual(events[-1]["state"], "dropped")


class OutboundRecordTests(SynchronousTestCase):
    def setUp(self):
        self.h = CallHarness(mediaFactory=PassthroughMediaFactory(),
                             application=OutgoingApplication())
        self.legs = []

        def legFactory(**kwargs):
            leg = FakeClientLeg(**kwargs)
            self.legs.append(leg)
            return leg

        self.h.manager.dialer = OutboundDialer(None, parseTrunks(TRUNKS), self.h.clock,
                                               legFactory=legFactory)
        self.alice = self.h.connect("alice")

    def routed(self):
        self.h.manager.clientMessageReceived(self.alice, {"type": "call", "to": "5551234",
                                                          "sdp": OFFER, "ref": "r1"})
        call = self.h.manager.calls[self.alice.ofType("calling")[-1]["call"]]
        self.h.application.decide(call, {"action": "route", "trunk": None})
        return call, self.legs[-1]

    def test_startRecord(self):
        """The far end's 200 OK writes the start record (call_dir outbound, trunk, ref)."""
        call, leg = self.routed()
        leg.progress(183)
        leg.answer()
        [start] = self.h.startCdrs
        self.assertEqual((start["record"], start["call_dir"], start["trunk"], start["ref"]),
                         ("start", "outbound", "pbx", "r1"))
        self.assertEqual([(m["state"], m["cause"]) for m in self.alice.ofType("state")],
                         [("ringing", 183), ("confirmed", 200)])

    def test_clientFailureBeforeAnswer(self):
        """The caller's hangup with a cause before the answer: CANCEL, that cause."""
        call, leg = self.routed()
        leg.progress(180)
        self.h.manager.clientMessageReceived(
            self.alice, {"type": "hangup", "call": call.id, "cause": 488,
                         "reason": "the far end's SDP answer was not usable"})
        self.assertIn("cancel", leg.actions)
        [cdr] = self.h.cdrs
        self.assertEqual((cdr["cause"], cdr["call_dir"]), (488, "outbound"))
        self.assertEqual(self.h.startCdrs, [])
