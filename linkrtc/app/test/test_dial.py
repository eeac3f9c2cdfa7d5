"""
Seed 001 C{construct}: the calls an application dials through a trunk
(L{linkrtc.app.dial.ApplicationCall}) and to a browser client
(L{linkrtc.app.dial.ClientLegCall}), on fakes and a clock.
"""

import os
import wave

from twisted.trial.unittest import SynchronousTestCase

from linkrtc.app.dial import ApplicationDialer, loopbackSdp, ringbackFile, uriHost, uriUser
from linkrtc.app.testing import APP_ANSWER, ApiHarness
from linkrtc.call.dialer import OutboundDialer
from linkrtc.call.passthrough import PassthroughMediaFactory
from linkrtc.call.registry import buildApplicationDialMachine
from linkrtc.call.test.test_outbound import ANSWER, FakeClientLeg
from linkrtc.config import parseTrunks

TRUNKS = [
    {"name": "pbx", "proxy": "sip:198.51.100.1:5060", "caller_id": "1000",
     "codecs": ["PCMU", "telephone-event"]},
]


class DialHarness(ApiHarness):
    """An L{ApiHarness} whose control dials through a fake trunk leg and the client directory."""

    def __init__(self, **kwargs):
        super().__init__(**kwargs)
        self.legs = []

        def legFactory(**kw):
            leg = FakeClientLeg(**kw)
            self.legs.append(leg)
            return leg

        self.outbound = OutboundDialer(None, parseTrunks(TRUNKS), self.clock, mediaName="bridge",
                                       maxRingSeconds=30, legFactory=legFactory)
        self.control.dialer = ApplicationDialer(self.calls.manager, self.outbound)


class HelperTests(SynchronousTestCase):
    def test_uriParts(self):
        self.assertEqual(uriUser("sip:5551234@198.51.100.1:5060"), "5551234")
        self.assertEqual(uriUser("tel:+4930123"), "+4930123")
        self.assertIsNone(uriUser("5551234"))
        self.assertEqual(uriHost("sip:5551234@PBX.example.com:5060;x=y"), "pbx.example.com")
        self.assertIsNone(uriHost("5551234"))

    def test_loopbackSdp(self):
        """Every c= line names the loopback address."""
        self.assertIn(b"c=IN IP4 127.0.0.1\r\n", loopbackSdp(APP_ANSWER, "127.0.0.1"))
        self.assertNotIn(b"192.0.2.1\r\nt=", loopbackSdp(APP_ANSWER, "127.0.0.1"))

    def test_ringback(self):
        """The ringback is a 6-second 8 kHz WAV, made once."""
        path = ringbackFile()
        self.assertTrue(os.path.exists(path))
        with wave.open(path) as w:
            self.assertEqual((w.getframerate(), w.getnframes()), (8000, 48000))
        self.assertEqual(ringbackFile(), path)

    def test_machine(self):
        """The dial machine starts in routing; the 2xx operator runs first."""
        machine = buildApplicationDialMachine()
        self.assertEqual(machine.initial, "routing")
        queues = machine.operatorsByQueue()
        self.assertEqual(queues["calling"]["event"][0], "OpOutgoingAnsweredApi")
        self.assertIn("OpApiIdle", queues["Idle"]["event"])
        self.assertIn("OpApiReleased", queues["dropped"]["entry"])


class TrunkDialTests(SynchronousTestCase):
    def setUp(self):
        self.h = DialHarness()

    def construct(self, **params):
        params.setdefault("to_uri", "5551234")
        return self.h.invoke("sys.call.construct", **params)

    def test_answered(self):
        """
        The INVITE carries LinkRTC's own offer through the trunk, the
        caller ID is the application's; the 2xx makes the call Idle and
        raises on_dial_completed with no error.
        """
        ok, result = self.construct(from_uri="sip:4930111@example.com", user_data="u1",
                                    max_answer_seconds=60)
        self.assertTrue(ok, result)
        resId = result["res_id"]
        call = self.h.control.resources[resId].call
        leg = self.h.legs[-1]
        self.assertEqual(leg.actions, ["start"])
        self.assertEqual(leg.kwargs["body"], APP_ANSWER)
        self.assertEqual(str(leg.kwargs["fromAddr"].uri).split("@")[0], "sip:4930111")
        self.assertEqual(str(leg.kwargs["requestURI"]).split("@")[0], "sip:5551234")
        media = self.h.media.sessions[call.id]
        self.assertEqual(media.calls[0], ("offerLocally", ("PCMU", "telephone-event")))
        leg.progress(180)
        self.assertEqual(self.h.named("on_dial_completed"), [])
        self.h.clock.advance(3)
        leg.answer()
        self.assertEqual(call.state.name, "Idle")
        self.assertIn(("offerAnswered", ANSWER), media.calls)
        [dial] = self.h.named("on_dial_completed", resId)
        self.assertIsNone(dial["error"])
        self.assertEqual((dial["begin_time"], dial["answer_time"], dial["user_data"]),
                         (0, 3, "u1"))
        ok, _ = self.h.invoke("play_start", res_id=resId, content="/x.wav")
        self.assertTrue(ok)
        self.assertEqual(call.state.name, "Play")
        self.h.clock.advance(60)
        self.assertEqual(call.state.name, "dropped")
        self.assertEqual(leg.actions, ["start", "bye"])
        [released] = self.h.named("on_released", resId)
        self.assertEqual((released["call_dir"], released["cause"]), ("outbound", 200))

    def test_dialPlanRefuses(self):
        """A premium or international number the trunk does not allow: -32004, no INVITE."""
        ok, error = self.construct(to_uri="+881234567")
        self.assertFalse(ok)
        self.assertEqual(error.code, -32004)
        self.assertEqual(error.data["status"], 403)
        self.assertEqual(self.h.legs, [])
        self.assertEqual(self.h.control.resources, {})

    def test_foreignHost(self):
        """A URI whose host is no trunk's is refused (dial a number)."""
        ok, error = self.construct(to_uri="sip:5551234@evil.example.com")
        self.assertFalse(ok)
        self.assertEqual(error.code, -32004)

    def test_trunkByName(self):
        """The trunk may be named by the host: sip:NUMBER@TRUNK."""
        ok, result = self.construct(to_uri="sip:5551234@pbx")
        self.assertTrue(ok, result)
        self.assertEqual(self.h.legs[-1].kwargs["requestURI"].user, "5551234")

    def test_ringTimeout(self):
        """max_ring_seconds, restarted by the 180: CANCEL, on_dial_completed with an error."""
        ok, result = self.construct(max_ring_seconds=10)
        leg = self.h.legs[-1]
        self.h.clock.advance(8)
        leg.progress(180)
        self.h.clock.advance(8)
        self.assertEqual(self.h.named("on_dial_completed"), [])
        self.h.clock.advance(3)
        [dial] = self.h.named("on_dial_completed")
        self.assertIn("max_ring_seconds", dial["error"])
        self.assertIsNone(dial["answer_time"])
        self.assertIn("cancel", leg.actions)
        [released] = self.h.named("on_released")
        self.assertEqual(released["cause"], 480)

    def test_failed(self):
        """486 from the far end: on_dial_completed with the error, once; Released."""
        ok, result = self.construct()
        self.h.legs[-1].fail(486, "Busy Here")
        [dial] = self.h.named("on_dial_completed")
        self.assertEqual(dial["error"], "Busy Here")
        self.assertEqual(self.h.named("on_released")[0]["cause"], 486)

    def test_dropWhileDialling(self):
        """drop before the answer: CANCEL."""
        ok, result = self.construct()
        ok, _ = self.h.invoke("drop", res_id=result["res_id"], cause=487)
        self.assertTrue(ok)
        self.assertIn("cancel", self.h.legs[-1].actions)
        self.assertEqual(len(self.h.named("on_dial_completed")), 1)

    def test_parent(self):
        """
        With parent_call_res_id the parent is in Dial hearing the ringback
        until the child answers; then Idle again.
        """
        parent, _leg, audio = self.h.answered()
        ok, result = self.construct(parent_call_res_id=parent.resId)
        self.assertTrue(ok, result)
        self.assertEqual(parent.state.name, "Dial")
        self.assertEqual(audio.calls[0][0], "play")
        self.assertEqual(audio.calls[0][1]["content"], ringbackFile())
        ok, error = self.h.invoke("play_start", res_id=parent.resId, content="/x.wav")
        self.assertEqual(error.code, -32002)
        self.h.legs[-1].answer()
        self.assertEqual(parent.state.name, "Idle")
        self.assertEqual(audio.calls[-1][0], "stop")

    def test_parentRingPlayFile(self):
        parent, _leg, audio = self.h.answered()
        self.construct(parent_call_res_id=parent.resId, ring_play_file="/r.wav")
        self.assertEqual(audio.calls[0][1]["content"], "/r.wav")
        self.h.legs[-1].fail(404, "Not Found")
        self.assertEqual(parent.state.name, "Idle")

    def test_connect(self):
        """An incoming call and a dialled one are connected (connect_start)."""
        parent, _leg, audio = self.h.answered()
        ok, result = self.construct()
        self.h.legs[-1].answer()
        child = self.h.control.resources[result["res_id"]].call
        ok, _ = self.h.invoke("connect_start", res_id=parent.resId, call_res_id=child.resId)
        self.assertTrue(ok)
        self.assertIs(audio.connectedTo, self.h.audio(child))
        self.assertEqual((parent.state.name, child.state.name), ("Connect", "Connect"))

    def test_noTrunk(self):
        """No trunk and no client named: -32004."""
        self.h.control.dialer = ApplicationDialer(self.h.calls.manager, None)
        ok, error = self.construct()
        self.assertEqual(error.code, -32004)
        self.assertIn("no trunk", error.message)


class ClientDialTests(SynchronousTestCase):
    def setUp(self):
        self.h = DialHarness()
        self.bob = self.h.calls.connect("bob")

    def ring(self, **params):
        params.setdefault("to_uri", "client:bob")
        ok, result = self.h.invoke("sys.call.construct", **params)
        self.assertTrue(ok, result)
        return self.h.control.resources[result["res_id"]].call

    def test_answered(self):
        """
        The client gets incoming; its accept answers the leg, which is Idle
        with the anchor's audio; on_dial_completed; its hangup releases it.
        """
        call = self.ring(from_uri="sip:ivr@example.com", user_data="b")
        [incoming] = self.bob.ofType("incoming")
        self.assertEqual(incoming["from"], "sip:ivr@example.com")
        self.h.calls.clientSays(self.bob, "ringing", call)
        self.h.clock.advance(2)
        self.h.calls.clientSays(self.bob, "accept", call, sdp="v=0 browser")
        self.assertEqual(call.state.name, "Idle")
        anchor = self.h.media.sessions[call.id + "-anchor"]
        # The browser session's RTP offer (here the fake's echo) goes to the anchor.
        self.assertEqual(anchor.calls[0], ("answerLocally", b"v=0 browser"))
        browser = self.h.media.sessions[call.id]
        self.assertEqual(browser.calls[-1], ("sipAckBody", loopbackSdp(APP_ANSWER, "127.0.0.1")))
        [dial] = self.h.named("on_dial_completed", call.resId)
        self.assertEqual((dial["error"], dial["answer_time"]), (None, 2))
        self.assertIs(self.h.control.resources[call.resId].audio(), anchor.audio())
        ok, _ = self.h.invoke("play_start", res_id=call.resId, content="/x.wav")
        self.assertTrue(ok)
        self.h.calls.clientSays(self.bob, "hangup", call)
        self.assertEqual(call.state.name, "dropped")
        [released] = self.h.named("on_released", call.resId)
        self.assertEqual((released["call_dir"], released["dropped_by"]), ("outbound", "usr"))
        self.assertTrue(anchor.closed and browser.closed)

    def test_connectToSip(self):
        """SIP call ⇄ browser leg: connect_start joins their audio."""
        parent, _leg, audio = self.h.answered()
        call = self.ring(parent_call_res_id=parent.resId)
        self.h.calls.clientSays(self.bob, "accept", call, sdp="v=0 browser")
        self.assertEqual(parent.state.name, "Idle")
        ok, _ = self.h.invoke("connect_start", res_id=parent.resId, call_res_id=call.resId)
        self.assertTrue(ok)
        self.assertIs(audio.connectedTo, self.h.media.sessions[call.id + "-anchor"].audio())

    def test_byUser(self):
        """A sip: URI whose user is a connected client rings it."""
        call = self.ring(to_uri="sip:bob@linkrtc.example.com")
        self.assertEqual(len(self.bob.ofType("incoming")), 1)
        self.assertEqual(call.clientName, "bob")

    def test_notConnected(self):
        ok, error = self.h.invoke("sys.call.construct", to_uri="client:carol")
        self.assertEqual(error.code, -32004)
        self.assertEqual(self.h.control.resources, {})

    def test_rejected(self):
        """The client rejects: on_dial_completed with an error, Released."""
        call = self.ring()
        self.h.calls.clientSays(self.bob, "reject", call)
        [dial] = self.h.named("on_dial_completed")
        self.assertIsNotNone(dial["error"])
        self.assertEqual(call.state.name, "dropped")

    def test_ringTimeout(self):
        call = self.ring(max_ring_seconds=5)
        self.h.clock.advance(5)
        self.assertEqual(call.state.name, "dropped")
        self.assertEqual(self.h.named("on_released")[0]["cause"], 480)
        self.assertEqual(self.bob.ofType("state")[-1]["state"], "dropped")

    def test_dropWhileRinging(self):
        call = self.ring()
        ok, _ = self.h.invoke("drop", res_id=call.resId, cause=487)
        self.assertTrue(ok)
        self.assertEqual(self.bob.ofType("state")[-1]["state"], "dropped")
        self.assertNotIn(call.id, self.h.calls.manager.calls)

    def test_connectionLost(self):
        call = self.ring()
        self.h.calls.clientSays(self.bob, "accept", call, sdp="v=0 browser")
        self.h.calls.disconnect(self.bob)
        self.assertEqual(call.state.name, "dropped")


class PassthroughTests(SynchronousTestCase):
    def test_clearError(self):
        """--media passthrough: answer and construct say -32003 and why."""
        h = ApiHarness()
        h.calls.manager.services.mediaFactory = PassthroughMediaFactory()
        call, leg = h.incoming()
        ok, error = h.invoke("answer", res_id=call.resId)
        self.assertEqual(error.code, -32003)
        self.assertIn("--media bridge", error.message)
        h.control.dialer = ApplicationDialer(h.calls.manager, None)
        ok, error = h.invoke("sys.call.construct", to_uri="5551234")
        self.assertEqual(error.code, -32003)


class EventOrderTests(SynchronousTestCase):
    def test_actOnEventAtOnce(self):
        """
        An in-process application that acts on an event as it arrives finds
        the call in its new state (the event is raised after the
        transition): a construct with the parent on on_play_completed works.
        """
        h = DialHarness()
        h.calls.connect("bob")
        call, _leg, audio = h.answered()
        results = []

        def sink(notification):
            if notification["method"] == "sys.call.on_play_completed":
                d = h.control.invoke("sys.call.construct",
                                     {"to_uri": "client:bob", "parent_call_res_id": call.resId})
                d.addBoth(results.append)

        h.control.addSink(sink)
        h.invoke("play_start", res_id=call.resId, content="/x.wav")
        audio.finish()
        self.assertIsInstance(results[0], dict, results)
        self.assertEqual(call.state.name, "Dial")
