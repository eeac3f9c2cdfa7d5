"""
Tests for L{linkrtc.app.control} and the call-control states and operators
(L{linkrtc.call.operators.api}): seed 001's methods, states and events.
"""

from twisted.trial.unittest import SynchronousTestCase

from linkrtc.app.errors import (
    INVALID_PARAMS,
    MEDIA_UNAVAILABLE,
    METHOD_NOT_FOUND,
    UNKNOWN_RESOURCE,
    WRONG_STATE,
)
from linkrtc.app.testing import APP_ANSWER, ApiHarness, FakeCallAudio
from linkrtc.call.states import apiStateName
from linkrtc.testing import CallHarness, FakeApplication


class IncomingTests(SynchronousTestCase):
    """An incoming call the application takes: Initiated, answer, drop, redirect."""

    def setUp(self):
        self.h = ApiHarness()

    def test_onIncoming(self):
        """
        The decision C{api} puts the call in C{Initiated}, sends 180 and
        raises C{on_incoming} with the seed's fields (times in Unix seconds).
        """
        self.h.clock.advance(1700000000.7)
        call, leg = self.h.incoming(to="sip:ivr@example.com")
        self.assertEqual(call.state.name, "Initiated")
        self.assertEqual([p.status for p in leg.provisionals], [180])
        [event] = self.h.events
        self.assertEqual(event["jsonrpc"], "2.0")
        self.assertEqual(event["method"], "sys.call.on_incoming")
        self.assertEqual(event["params"], {
            "res_id": call.resId, "from_uri": "sip:bob@192.0.2.10",
            "to_uri": "sip:ivr@example.com", "begin_time": 1700000000, "user_data": None,
            "ipsc_info": {"process_id": 4242, "call_id": leg.callId},
        })

    def test_answer(self):
        """
        C{answer}: the media answers the SIP offer itself; 200 OK with its
        SDP; the call is C{Idle}; C{user_data} is carried into events.
        """
        call, leg = self.h.incoming()
        ok, value = self.h.invoke("answer", res_id=call.resId, user_data="u1")
        self.assertEqual((ok, value), (True, None))
        self.assertEqual(leg.finals[0].status, 200)
        self.assertEqual(leg.finals[0].body, APP_ANSWER)
        self.assertEqual(call.state.name, "Idle")
        self.assertIsNotNone(call.answerTime)
        self.h.invoke("drop", res_id=call.resId)
        [released] = self.h.named("on_released")
        self.assertEqual(released["user_data"], "u1")

    def test_answerTwice(self):
        """An answered call cannot be answered again: wrong state, naming C{Idle}."""
        call, leg, _ = self.h.answered()
        ok, error = self.h.invoke("answer", res_id=call.resId)
        self.assertFalse(ok)
        self.assertEqual(error.code, WRONG_STATE)
        self.assertEqual(error.data, {"state": "Idle"})
        self.assertIn("Idle", error.message)

    def test_dropBeforeAnswer(self):
        """C{drop} before the answer: the final response C{cause} (603 by default)."""
        call, leg = self.h.incoming()
        self.assertEqual(self.h.invoke("drop", res_id=call.resId), (True, None))
        self.assertEqual(leg.finals[0].status, 603)
        [released] = self.h.named("on_released")
        self.assertEqual(released["cause"], 603)
        self.assertEqual(released["dropped_by"], "sys")
        self.assertEqual(released["call_dir"], "inbound")
        self.assertIsNone(released["answer_time"])
        self.assertNotIn(call.resId, self.h.control.resources)

    def test_dropAfterAnswer(self):
        """C{drop} after the answer: BYE; C{on_released} has the CDR fields."""
        self.h.clock.advance(100)
        call, leg, _ = self.h.answered()
        self.h.clock.advance(5)
        self.h.invoke("drop", res_id=call.resId, cause=200)
        self.assertEqual(len(leg.byes), 1)
        [released] = self.h.named("on_released")
        self.assertEqual(sorted(released), sorted([
            "res_id", "call_dir", "from_uri", "to_uri", "begin_time", "answer_time",
            "end_time", "dropped_by", "cause", "user_data", "ipsc_info"]))
        self.assertEqual((released["begin_time"], released["answer_time"],
                          released["end_time"]), (100, 100, 105))

    def test_byeFromCaller(self):
        """BYE from the caller: C{on_released} with C{dropped_by} C{usr}, cause 200."""
        call, leg, _ = self.h.answered()
        leg.receive("BYE")
        [released] = self.h.named("on_released")
        self.assertEqual((released["dropped_by"], released["cause"]), ("usr", 200))

    def test_cancel(self):
        """CANCEL in C{Initiated}: 487 and C{on_released}."""
        call, leg = self.h.incoming()
        leg.cancel()
        self.assertEqual(leg.finals[0].status, 487)
        self.assertEqual(self.h.named("on_released")[0]["cause"], 487)

    def test_redirect(self):
        """C{redirect}: 302 with the Contact, then C{Released}."""
        call, leg = self.h.incoming()
        self.h.invoke("redirect", res_id=call.resId, redirect_uri="sip:192.0.2.9:5070")
        self.assertEqual(leg.finals[0].status, 302)
        self.assertIn(("Contact", "<sip:192.0.2.9:5070>"), leg.finals[0].headers)
        self.assertEqual(self.h.named("on_released")[0]["cause"], 302)

    def test_redirectAfterAnswer(self):
        """An answered call cannot be redirected."""
        call, leg, _ = self.h.answered()
        ok, error = self.h.invoke("redirect", res_id=call.resId, redirect_uri="sip:x@y")
        self.assertEqual(error.code, WRONG_STATE)

    def test_decideTimeout(self):
        """No decision within the webhook timeout: 503."""
        call, leg = self.h.incoming()
        self.h.clock.advance(5)
        self.assertEqual(leg.finals[0].status, 503)

    def test_route(self):
        """C{route} hands the call to a browser client (seed 000 from C{calling})."""
        alice = self.h.calls.connect("alice")
        call, leg = self.h.incoming()
        self.h.invoke("route", res_id=call.resId, client="alice")
        self.assertEqual(call.state.name, "calling")
        self.assertEqual(len(alice.ofType("incoming")), 1)

    def test_routeNotConnected(self):
        """C{route} to a client not connected: an error, the call stays."""
        call, leg = self.h.incoming()
        ok, error = self.h.invoke("route", res_id=call.resId, client="nobody")
        self.assertFalse(ok)
        self.assertEqual(call.state.name, "Initiated")

    def test_answerWithoutMedia(self):
        """A media session that cannot answer alone: -32003, the call stays Initiated."""
        h = CallHarness(application=FakeApplication(lambda i: {"action": "api"}),
                        callControl=self.h.control)
        self.h.control.clock = h.clock
        call, leg = h.invoke = h.invite()
        ok, error = self.h.invoke("answer", res_id=call.resId)
        self.assertEqual(error.code, MEDIA_UNAVAILABLE)
        self.assertEqual(call.state.name, "Initiated")

    def test_maxAnswerSeconds(self):
        """C{max_answer_seconds} ends the call (BYE, cause 200)."""
        call, leg = self.h.incoming()
        self.h.invoke("answer", res_id=call.resId, max_answer_seconds=30)
        leg.ack()
        self.h.clock.advance(30)
        self.assertEqual(len(leg.byes), 1)
        self.assertEqual(self.h.named("on_released")[0]["cause"], 200)


class ActionTests(SynchronousTestCase):
    """CTI actions: one at a time, stop, completion events."""

    def setUp(self):
        self.h = ApiHarness()
        self.call, self.leg, self.audio = self.h.answered()
        self.res = self.call.resId

    def test_play(self):
        """C{play_start}: C{Play}; its end raises C{on_play_completed}; C{Idle}."""
        self.h.invoke("play_start", res_id=self.res, content="menu.wav", finish_keys="#")
        self.assertEqual(self.call.state.name, "Play")
        self.assertEqual(self.audio.calls[0], ("play", {"content": "menu.wav",
                                                        "finishKeys": "#", "repeat": 1}))
        self.h.clock.advance(3)
        self.audio.finish(finish_key="#")
        self.assertEqual(self.call.state.name, "Idle")
        [done] = self.h.named("on_play_completed")
        self.assertEqual(sorted(done), ["begin_time", "end_time", "error", "finish_key",
                                        "res_id", "user_data"])
        self.assertEqual(done["finish_key"], "#")
        self.assertEqual(done["end_time"] - done["begin_time"], 3)

    def test_oneAtATime(self):
        """A second action while one runs: wrong state naming the running one."""
        self.h.invoke("play_start", res_id=self.res, content="a.wav")
        ok, error = self.h.invoke("record_start", res_id=self.res, record_file="/tmp/x.wav")
        self.assertEqual(error.code, WRONG_STATE)
        self.assertEqual(error.data, {"state": "Play"})
        self.assertEqual(len(self.audio.calls), 1)

    def test_playStop(self):
        """C{play_stop}: the audio stops; C{on_play_completed} with error null."""
        self.h.invoke("play_start", res_id=self.res, content="a.wav")
        self.assertEqual(self.h.invoke("play_stop", res_id=self.res), (True, None))
        self.assertEqual(self.call.state.name, "Idle")
        self.assertIsNone(self.h.named("on_play_completed")[0]["error"])

    def test_stopWrongAction(self):
        """C{record_stop} while playing: wrong state."""
        self.h.invoke("play_start", res_id=self.res, content="a.wav")
        ok, error = self.h.invoke("record_stop", res_id=self.res)
        self.assertEqual(error.code, WRONG_STATE)

    def test_stopInIdle(self):
        """C{play_stop} in C{Idle}: wrong state."""
        ok, error = self.h.invoke("play_stop", res_id=self.res)
        self.assertEqual(error.data, {"state": "Idle"})

    def test_record(self):
        """C{record_start} maps the seed's format; C{record_stop} makes error non-null."""
        self.h.invoke("record_start", res_id=self.res, record_file="/tmp/m.wav",
                      max_seconds=20, beep=True, record_format=3, finish_keys="#")
        self.assertEqual(self.audio.calls[0], ("record", {
            "path": "/tmp/m.wav", "maxSeconds": 20, "beep": True, "finishKeys": "#",
            "fmt": "ulaw"}))
        self.h.invoke("record_stop", res_id=self.res)
        [done] = self.h.named("on_record_completed")
        self.assertIsNotNone(done["error"])
        self.assertIn("finish_key", done)

    def test_sendDtmf(self):
        """C{send_dtmf_start}: C{SendDtmf}; C{on_send_dtmf_completed}."""
        self.h.invoke("send_dtmf_start", res_id=self.res, keys="12#")
        self.assertEqual(self.call.state.name, "SendDtmf")
        self.audio.finish()
        [done] = self.h.named("on_send_dtmf_completed")
        self.assertEqual(sorted(done), ["begin_time", "end_time", "error", "res_id",
                                        "user_data"])

    def test_receiveDtmf(self):
        """C{receive_dtmf_start} with the seed's defaults; C{on_receive_dtmf_completed}."""
        self.h.invoke("receive_dtmf_start", res_id=self.res, play_content="menu.wav")
        self.assertEqual(self.call.state.name, "ReceiveDtmf")
        self.assertEqual(self.audio.calls[0][1], {
            "validKeys": "0123456789*#ABCD", "maxKeys": 11, "finishKeys": "#",
            "firstKeyTimeout": 45, "continuesKeysTimeout": 30, "playContent": "menu.wav",
            "playRepeat": 0, "ifBreakOnKey": True})
        self.audio.finish(keys="42")
        [done] = self.h.named("on_receive_dtmf_completed")
        self.assertEqual(done["keys"], "42")

    def test_stopReceiveDtmf(self):
        """C{stop_receive_dtmf_start} ends the collection."""
        self.h.invoke("receive_dtmf_start", res_id=self.res)
        self.h.invoke("stop_receive_dtmf_start", res_id=self.res)
        self.assertEqual(len(self.h.named("on_receive_dtmf_completed")), 1)
        self.assertEqual(self.call.state.name, "Idle")

    def test_releasedDuringAction(self):
        """
        A hang-up during an action: the action stops and both
        C{on_play_completed} and C{on_released} are raised.
        """
        self.h.invoke("play_start", res_id=self.res, content="a.wav")
        self.leg.receive("BYE")
        methods = [e["method"] for e in self.h.events]
        self.assertIn("sys.call.on_play_completed", methods)
        self.assertIn("sys.call.on_released", methods)

    def test_actionOnReleased(self):
        """An action on a released call: an error naming C{Released}, no side effect."""
        self.h.invoke("drop", res_id=self.res)
        ok, error = self.h.invoke("play_start", res_id=self.res, content="a.wav")
        self.assertEqual(error.code, WRONG_STATE)
        self.assertEqual(error.data["state"], "Released")
        self.assertEqual(self.audio.calls[-1][0], "stop")

    def test_noAudio(self):
        """A session without audio: -32003 and the call stays C{Idle}."""
        self.h.media.sessions[self.call.id].audio = lambda: None
        ok, error = self.h.invoke("play_start", res_id=self.res, content="a.wav")
        self.assertEqual(error.code, MEDIA_UNAVAILABLE)
        self.assertEqual(self.call.state.name, "Idle")

    def test_nop(self):
        """C{nop} answers null in any live state."""
        self.assertEqual(self.h.invoke("nop", res_id=self.res), (True, None))

    def test_exists(self):
        """C{exists}: true for a live call, false after."""
        self.assertEqual(self.h.invoke("exists", res_id=self.res), (True, True))
        self.h.invoke("drop", res_id=self.res)
        self.assertEqual(self.h.invoke("exists", res_id=self.res), (True, False))


class ConnectTests(SynchronousTestCase):
    """C{connect_start}/C{connect_stop} and conferences."""

    def setUp(self):
        self.h = ApiHarness()
        self.a, self.legA, self.audioA = self.h.answered()
        self.b, self.legB, self.audioB = self.h.answered()

    def test_connect(self):
        """Both calls are in C{Connect}; C{connect_stop} raises C{on_connect_completed}."""
        self.h.invoke("connect_start", res_id=self.a.resId, call_res_id=self.b.resId)
        self.assertEqual((self.a.state.name, self.b.state.name), ("Connect", "Connect"))
        self.assertIs(self.audioA.connectedTo, self.audioB)
        ok, error = self.h.invoke("connect_stop", res_id=self.b.resId)
        self.assertFalse(ok)
        self.h.invoke("connect_stop", res_id=self.a.resId)
        self.assertEqual((self.a.state.name, self.b.state.name), ("Idle", "Idle"))
        [done] = self.h.named("on_connect_completed")
        self.assertEqual(done["res_id"], self.a.resId)

    def test_connectBusy(self):
        """The second party must be C{Idle}."""
        self.h.invoke("play_start", res_id=self.b.resId, content="a.wav")
        ok, error = self.h.invoke("connect_start", res_id=self.a.resId,
                                  call_res_id=self.b.resId)
        self.assertEqual(error.data, {"state": "Play"})
        self.assertEqual(self.a.state.name, "Idle")

    def test_connectUnknown(self):
        """An unknown C{call_res_id}: -32001."""
        ok, error = self.h.invoke("connect_start", res_id=self.a.resId, call_res_id="nope")
        self.assertEqual(error.code, UNKNOWN_RESOURCE)

    def test_secondPartyHangsUp(self):
        """The second party hangs up: the connection ends for the first."""
        self.h.invoke("connect_start", res_id=self.a.resId, call_res_id=self.b.resId)
        self.legB.receive("BYE")
        self.assertEqual(self.a.state.name, "Idle")
        self.assertEqual(len(self.h.named("on_connect_completed")), 1)

    def test_connectModes(self):
        """C{connect_mode} 1-3 and the scheduled prompt reach the media; others: -32602."""
        for mode in (1, 2, 3):
            ok, result = self.h.invoke(
                "connect_start", res_id=self.a.resId, call_res_id=self.b.resId,
                connect_mode=mode, schedule_play_time=1700000100,
                schedule_play_file="warn.wav", schedule_play_loop=2)
            self.assertTrue(ok, result)
            method, args = self.audioA.calls[-1]
            self.assertEqual((method, args["connectMode"], args["schedulePlayTime"],
                              args["schedulePlayFile"], args["schedulePlayLoop"]),
                             ("connect", mode, 1700000100, "warn.wav", 2))
            self.h.invoke("connect_stop", res_id=self.a.resId)
        for params, name in [({"connect_mode": 4}, "connect_mode"),
                             ({"connect_mode": 0}, "connect_mode"),
                             ({"schedule_play_loop": -1}, "schedule_play_loop"),
                             ({"schedule_play_file": "w.wav", "schedule_play_loop": 1},
                              "schedule_play_time")]:
            ok, error = self.h.invoke("connect_start", res_id=self.a.resId,
                                      call_res_id=self.b.resId, **params)
            self.assertEqual(error.code, INVALID_PARAMS, params)
            self.assertEqual(error.data, {"param": name})
        self.assertEqual(self.a.state.name, "Idle")

    def test_voiceModes(self):
        """C{voice_mode} 1-4 reach the conference; 5: -32602."""
        ok, conf = self.h.invoke("sys.conf.construct")
        fake = self.h.control.conferences[conf["res_id"]].conference
        for mode in (2, 3, 4):
            ok, result = self.h.invoke("conf_enter", res_id=self.a.resId,
                                       conf_res_id=conf["res_id"], voice_mode=mode)
            self.assertTrue(ok, result)
            self.assertEqual(fake.entered[-1][1]["voiceMode"], mode)
            self.h.invoke("conf_exit", res_id=self.a.resId, conf_res_id=conf["res_id"])
        ok, error = self.h.invoke("conf_enter", res_id=self.a.resId,
                                  conf_res_id=conf["res_id"], voice_mode=5)
        self.assertEqual((error.code, error.data), (INVALID_PARAMS, {"param": "voice_mode"}))

    def test_conference(self):
        """C{sys.conf.construct}, C{conf_enter}, C{conf_exit}, C{on_conf_completed}."""
        ok, conf = self.h.invoke("sys.conf.construct")
        self.assertTrue(conf["res_id"].startswith("0.0.0-sys.conf-"))
        self.assertEqual(conf["ipsc_info"], {"process_id": 4242})
        self.h.invoke("conf_enter", res_id=self.a.resId, conf_res_id=conf["res_id"])
        self.h.invoke("conf_enter", res_id=self.b.resId, conf_res_id=conf["res_id"])
        self.assertEqual(self.a.state.name, "Conf")
        self.assertEqual(self.h.control.conferences[conf["res_id"]].conference.parties(), 2)
        self.h.invoke("conf_exit", res_id=self.a.resId, conf_res_id=conf["res_id"])
        self.assertEqual(self.a.state.name, "Idle")
        self.assertEqual(len(self.h.named("on_conf_completed")), 1)
        self.h.invoke("sys.conf.release", res_id=conf["res_id"])
        self.assertEqual(self.b.state.name, "Idle")
        self.assertEqual(self.h.invoke("sys.conf.exists", res_id=conf["res_id"]), (True, False))


class ErrorTests(SynchronousTestCase):
    """Bad method calls."""

    def setUp(self):
        self.h = ApiHarness()

    def test_unknownMethod(self):
        """-32601."""
        ok, error = self.h.invoke("sys.call.fly")
        self.assertEqual(error.code, METHOD_NOT_FOUND)

    def test_unknownResource(self):
        """-32001, never a crash."""
        ok, error = self.h.invoke("answer", res_id="nope")
        self.assertEqual(error.code, UNKNOWN_RESOURCE)

    def test_badParams(self):
        """-32602 naming the parameter."""
        call, leg = self.h.incoming()
        for params, name in [({}, "res_id"), ({"res_id": 5}, "res_id"),
                             ({"res_id": call.resId, "cause": "x"}, "cause"),
                             ({"res_id": call.resId, "cause": 99}, "cause"),
                             ({"res_id": call.resId, "color": 1}, "color")]:
            ok, error = self.h.invoke("drop", **params)
            self.assertEqual(error.code, INVALID_PARAMS, params)
            self.assertEqual(error.data, {"param": name})
        self.assertEqual(call.state.name, "Initiated")


class OrphanTests(SynchronousTestCase):
    """The application leaves mid-call."""

    def test_orphans(self):
        """
        Calls in C{Initiated} are dropped (480); answered calls without
        C{max_answer_seconds} are dropped; those with it are kept.
        """
        h = ApiHarness()
        waiting, waitingLeg = h.incoming()
        plain, plainLeg, _ = h.answered()
        kept, keptLeg = h.incoming()
        h.invoke("answer", res_id=kept.resId, max_answer_seconds=60)
        h.control.removeSink(h.events.append)
        self.assertEqual(waitingLeg.finals[0].status, 480)
        self.assertTrue(plain.isOver)
        self.assertEqual(kept.state.name, "Idle")
        h.clock.advance(60)
        self.assertTrue(kept.isOver)


class StateNameTests(SynchronousTestCase):
    """L{apiStateName}."""

    def test_names(self):
        """Seed 000 states map to seed 001 names."""
        h = CallHarness()
        call, leg = h.invoke() if False else h.invite()
        self.assertEqual(apiStateName(call.state), "Initiated")
        self.assertEqual(apiStateName(None), "Initiated")

    def test_fakeAudio(self):
        """The fake audio provides L{ICallAudio}."""
        from zope.interface.verify import verifyObject

        from linkrtc.interfaces import ICallAudio

        verifyObject(ICallAudio, FakeCallAudio(None))
