"""Tests for L{linkrtc.media.actions.dtmf} (seed 001 C{send_dtmf_start}, C{receive_dtmf_start})."""

import os
import struct

from twisted.trial.unittest import SynchronousTestCase

from linkrtc.media.actions.dtmf import sendingSeconds
from linkrtc.media.actions.test.fakes import Leg, dominant, newClock, run, tone, writeWav


class SendTests(SynchronousTestCase):
    def setUp(self):
        self.clock = newClock()

    def test_rfc4733(self):
        """Each key is one RFC 4733 event (same timestamp, end bit three times); then the result."""
        leg = Leg(self.clock)
        done = []
        begin = self.clock.seconds()
        leg.audio.sendDigits("1*d").addCallback(done.append)
        run(self.clock, sendingSeconds(3) - 0.02)
        self.assertEqual(done, [])
        run(self.clock, 0.04)
        self.assertEqual(done[0]["error"], None)
        self.assertEqual(done[0]["begin_time"], begin)
        events = leg.packets(101)
        byTs = {}
        for e in events:
            byTs.setdefault(e[3], []).append(e)
        codes = [byTs[ts][0][5][0] for ts in sorted(byTs)]
        self.assertEqual(codes, [1, 10, 15])
        for packets in byTs.values():
            self.assertEqual([p[5][1] >> 7 for p in packets][-3:], [1, 1, 1])
            self.assertEqual(struct.unpack("!H", packets[-1][5][2:])[0], 800)
        self.assertFalse(leg.audio.busy)

    def test_errors(self):
        """Bad keys, or no telephone-event negotiated: an error, nothing sent."""
        for keys, event in (("12x", True), ("", True), (None, True), ("1", False)):
            leg = Leg(self.clock, event=event)
            done = []
            leg.audio.sendDigits(keys).addCallback(done.append)
            self.assertIsInstance(done[0]["error"], str)
            self.clock.advance(1)
            self.assertEqual(leg.packets(), [])

    def test_stopDropsQueued(self):
        leg = Leg(self.clock)
        done = []
        leg.audio.sendDigits("123456").addCallback(done.append)
        run(self.clock, 0.04)
        leg.audio.stop()
        self.assertEqual(done[0]["error"], None)
        run(self.clock, 2)
        self.assertEqual(len({p[3] for p in leg.packets(101)}), 1)


class ReceiveTests(SynchronousTestCase):
    def setUp(self):
        self.clock = newClock()
        self.leg = Leg(self.clock)
        self.done = []

    def receive(self, **kw):
        self.leg.audio.receiveDigits(**kw).addCallback(self.done.append)

    def press(self, keys, gap=0.2):
        for key in keys:
            self.leg.press(key)
            run(self.clock, gap)

    def test_finishKeyNotIncluded(self):
        self.receive(maxKeys=11, finishKeys="#")
        self.press("123#")
        self.assertEqual(self.done[0]["keys"], "123")
        self.assertEqual(self.done[0]["error"], None)
        self.assertAlmostEqual(self.done[0]["end_time"] - self.done[0]["begin_time"], 0.6, places=3)

    def test_maxKeys(self):
        self.receive(maxKeys=2)
        self.press("4")
        self.assertEqual(self.done, [])
        self.press("5")
        self.assertEqual(self.done[0]["keys"], "45")
        self.press("6")
        self.assertEqual(len(self.done), 1)

    def test_validKeys(self):
        """Keys outside valid_keys are ignored, a finish key outside them too (seed 001)."""
        self.receive(validKeys="0123456789", maxKeys=5, finishKeys="#*")
        self.press("1A2#3*")
        self.assertEqual(self.done, [])
        self.press("45")
        self.assertEqual(self.done[0]["keys"], "12345")

    def test_firstKeyTimeout(self):
        self.receive(firstKeyTimeout=5, continuesKeysTimeout=2)
        run(self.clock, 4.98)
        self.assertEqual(self.done, [])
        run(self.clock, 0.04)
        self.assertEqual(self.done[0]["error"], "timeout")
        self.assertEqual(self.done[0]["keys"], "")

    def test_continuesKeysTimeout(self):
        self.receive(maxKeys=5, firstKeyTimeout=5, continuesKeysTimeout=2)
        run(self.clock, 3)
        self.press("7", gap=1.9)
        self.press("8", gap=1.98)
        self.assertEqual(self.done, [])
        run(self.clock, 0.04)
        self.assertEqual(self.done[0]["keys"], "78")
        self.assertEqual(self.done[0]["error"], None)

    def prompt(self, seconds=1.0):
        path = os.path.join(self.mktemp() + ".wav")
        writeWav(path, tone(500, 8000, int(8000 * seconds)), 8000)
        return path

    def test_promptThenTimer(self):
        """play_content plays first; the first-key timer starts when it ends."""
        self.receive(playContent=self.prompt(1.0), firstKeyTimeout=2)
        run(self.clock, 1.0)
        self.assertEqual(len(self.leg.packets(0)), 50)
        self.assertApproximates(dominant(self.leg.heard(), 8000), 500, tolerance=5)
        run(self.clock, 1.9)
        self.assertEqual(self.done, [])
        run(self.clock, 0.2)
        self.assertEqual(self.done[0]["error"], "timeout")
        self.assertEqual(self.leg.sending, [True, False])

    def test_playRepeat(self):
        """On each timeout the prompt plays again, play_repeat times; then the result."""
        self.receive(playContent=self.prompt(0.5), playRepeat=2, firstKeyTimeout=1)
        run(self.clock, 0.5 + 1 + 0.5 + 1 + 0.5 + 0.9)
        self.assertEqual(self.done, [])
        self.assertEqual(len(self.leg.packets(0)), 75)
        run(self.clock, 0.2)
        self.assertEqual(self.done[0]["error"], "timeout")

    def test_breakOnKey(self):
        """if_break_on_key: the first valid key stops the prompt; otherwise it plays on."""
        self.receive(playContent=self.prompt(2.0), maxKeys=3)
        run(self.clock, 0.5)
        self.press("9")
        sent = len(self.leg.packets(0))
        run(self.clock, 0.5)
        self.assertEqual(len(self.leg.packets(0)), sent)
        self.assertEqual(self.leg.sending, [True, False])
        self.leg.audio.stop()
        self.assertEqual(self.done[0]["keys"], "9")

        leg = Leg(self.clock)
        done = []
        leg.audio.receiveDigits(playContent=self.prompt(2.0), maxKeys=3,
                                ifBreakOnKey=False).addCallback(done.append)
        run(self.clock, 0.5)
        leg.press("9")
        run(self.clock, 2)
        self.assertEqual(len(leg.packets(0)), 100)

    def test_badPrompt(self):
        self.receive(playContent="/no/such/prompt.wav")
        self.assertIn("cannot read", self.done[0]["error"])

    def test_listener(self):
        """digitsListener gets every key, with or without an action."""
        keys = []
        self.leg.audio.digitsListener(keys.append)
        self.press("1")
        self.receive(maxKeys=1)
        self.press("2")
        self.leg.audio.digitsListener(None)
        self.press("3")
        self.assertEqual(keys, ["1", "2"])
        self.assertEqual(self.done[0]["keys"], "2")
