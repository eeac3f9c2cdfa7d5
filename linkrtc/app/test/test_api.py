"""
Tests for L{linkrtc.app.api}, the in-process Python API, and the IVR
example (etc/examples/ivr.py) run on the fake audio.
"""

import os
import sys

from twisted.internet import defer
from twisted.trial.unittest import SynchronousTestCase

from linkrtc.app.api import Switch, loadApplication
from linkrtc.app.testing import ApiHarness
from linkrtc.error import ApiError

EXAMPLES = os.path.join(os.path.dirname(__file__), "..", "..", "..", "etc", "examples")


class SwitchTests(SynchronousTestCase):
    """L{Switch} and L{Call}."""

    def setUp(self):
        self.h = ApiHarness(controller=False)
        self.switch = Switch(self.h.control)

    def test_incomingCallback(self):
        """C{on_incoming} gets a L{Call}; its methods return Deferreds."""
        seen = []
        self.switch.on_incoming(seen.append)
        call, leg = self.h.incoming()
        [handle] = seen
        self.assertEqual(handle.res_id, call.resId)
        self.assertEqual(handle.info["to_uri"], "sip:alice@example.com")
        results = []
        handle.answer().addCallback(results.append)
        self.assertEqual(results, [None])
        self.assertEqual(call.state.name, "Idle")

    def test_waitingForms(self):
        """C{play} fires with the params of C{on_play_completed}."""
        seen = []
        self.switch.on_incoming(seen.append)
        call, leg = self.h.incoming()
        seen[0].answer()
        done = []
        seen[0].play(content="a.wav").addCallback(done.append)
        self.assertEqual(done, [])
        self.h.audio(call).finish(finish_key="5")
        self.assertEqual(done[0]["finish_key"], "5")

    def test_errors(self):
        """A method in the wrong state fails with L{ApiError}."""
        seen = []
        self.switch.on_incoming(seen.append)
        self.h.incoming()
        failures = []
        seen[0].play(content="a.wav").addErrback(failures.append)
        self.assertIsInstance(failures[0].value, ApiError)

    def test_asyncIterators(self):
        """C{incoming()} and C{events()} are async iterators."""
        got = []

        async def app():
            async for call in self.switch.incoming():
                await call.answer()
                async for name, params in call.events():
                    got.append(name)
                    if name == "released":
                        return

        d = defer.ensureDeferred(app())
        call, leg = self.h.incoming()
        leg.receive("BYE")
        self.assertEqual(got, ["released"])
        self.successResultOf(d)

    def test_close(self):
        """A closed switch takes no more calls."""
        self.switch.close()
        self.assertFalse(self.h.control.hasController())

    def test_load(self):
        """L{loadApplication} calls the factory with a L{Switch}."""
        switch, result = loadApplication("linkrtc.app.test.test_api:_factory", self.h.control)
        self.assertIsInstance(switch, Switch)
        self.assertIs(result, switch)
        self.assertRaises(ValueError, loadApplication, "no.such.module:f", self.h.control)


def _factory(switch):
    return switch


class IVRTests(SynchronousTestCase):
    """etc/examples/ivr.py on the fake audio."""

    def setUp(self):
        sys.path.insert(0, os.path.abspath(EXAMPLES))
        self.addCleanup(sys.path.remove, os.path.abspath(EXAMPLES))
        self.addCleanup(sys.modules.pop, "ivr", None)
        self.h = ApiHarness(controller=False)
        loadApplication("ivr:factory", self.h.control)

    def test_recordMessage(self):
        """Answer, menu, key 2: record, goodbye, hang up."""
        call, leg = self.h.incoming()
        self.assertEqual(leg.finals[0].status, 200)
        leg.ack()
        audio = self.h.audio(call)
        self.assertEqual(audio.calls[0][0], "receiveDigits")
        self.assertEqual(audio.calls[0][1]["playContent"], "/usr/share/linkrtc/ivr/menu.wav")
        audio.finish(keys="2")
        self.assertEqual(audio.calls[1][0], "record")
        audio.finish(finish_key="#")
        self.assertEqual(audio.calls[2], ("play", {"content": "/usr/share/linkrtc/ivr/goodbye.wav",
                                                   "finishKeys": "", "repeat": 1}))
        audio.finish()
        self.assertTrue(call.isOver)
        self.assertEqual(len(leg.byes), 1)
        [released] = self.h.named("on_released")
        self.assertEqual((released["cause"], released["user_data"]), (200, "ivr"))

    def test_agentUnavailable(self):
        """Key 1 with no way to dial the agent: goodbye and hang up."""
        call, leg = self.h.incoming()
        leg.ack()
        audio = self.h.audio(call)
        audio.finish(keys="1")
        self.assertEqual(audio.calls[1][0], "play")
        audio.finish()
        self.assertTrue(call.isOver)

    def test_callerHangsUp(self):
        """The caller hangs up during the menu: nothing is left behind."""
        call, leg = self.h.incoming()
        leg.ack()
        leg.receive("BYE")
        self.assertEqual(self.h.control.resources, {})


class ConfigTests(SynchronousTestCase):
    """The C{application} key and C{--application}."""

    def test_normalise(self):
        """C{package.module:factory} is taken; other shapes are refused naming the key."""
        from linkrtc.config import ConfigError, normalise

        self.assertEqual(normalise("application", "ivr:factory"), ("application", "ivr:factory"))
        self.assertEqual(normalise("application", ""), ("application", None))
        for bad in ("ivr", "ivr:", ":f", 5):
            e = self.assertRaises(ConfigError, normalise, "application", bad)
            self.assertIn("application", str(e))

    def test_option(self):
        """C{--application} reaches the configuration."""
        from linkrtc.tap import Options

        options = Options()
        options.parseOptions(["--application", "ivr:factory"])
        self.assertEqual(options.config.application, "ivr:factory")
