"""Tests for L{linkrtc.media.actions.player} (seed 001 C{play_start}) on fake SIP legs."""

import os

import numpy
from twisted.trial.unittest import SynchronousTestCase
from zope.interface.verify import verifyObject

from linkrtc.error import MediaError
from linkrtc.interfaces import ICallAudio
from linkrtc.media.actions import player
from linkrtc.media.actions.test.fakes import Leg, dominant, newClock, run, tone, writeWav


class PlayerTests(SynchronousTestCase):
    def setUp(self):
        self.clock = newClock()
        self.dir = self.mktemp()
        os.makedirs(self.dir)

    def wav(self, name, freq, rate, seconds=1.0, channels=1):
        path = os.path.join(self.dir, name)
        samples = tone(freq, rate, int(rate * seconds))
        if channels == 2:
            samples = numpy.repeat(samples, 2)
        writeWav(path, samples, rate, channels)
        return path

    def results(self, d):
        out = []
        d.addCallback(out.append)
        return out

    def test_interface(self):
        leg = Leg(self.clock)
        self.assertTrue(verifyObject(ICallAudio, leg.audio))
        self.assertEqual(leg.audio.rate, 8000)

    def test_pacingAndResult(self):
        """A 1 s prompt goes out as 50 packets of 20 ms, one per tick; then the result."""
        leg = Leg(self.clock)
        path = self.wav("a.wav", 440, 8000)
        begin = self.clock.seconds()
        done = self.results(leg.audio.play(path))
        self.assertEqual(len(leg.packets(0)), 1)  # the first frame at once
        run(self.clock, 0.5)
        self.assertEqual(len(leg.packets(0)), 26)
        run(self.clock, 0.52)
        self.assertEqual(len(leg.packets(0)), 50)
        self.assertEqual(sorted(done[0]), ["begin_time", "end_time", "error", "finish_key"])
        self.assertEqual((done[0]["error"], done[0]["finish_key"]), (None, None))
        self.assertEqual(done[0]["begin_time"], begin)
        self.assertAlmostEqual(done[0]["end_time"], begin + 1.0, places=3)
        timestamps = [p[3] for p in leg.packets(0)]
        self.assertEqual(set(numpy.diff(timestamps) % 2 ** 32), {160})
        self.assertApproximates(dominant(leg.heard(), 8000), 440, tolerance=3)
        self.assertEqual(leg.sending, [True, False])
        self.assertFalse(leg.audio.busy)

    def test_lateReactorCatchesUp(self):
        """When the reactor runs late, the frames due are all sent: 50 a second on average."""
        leg = Leg(self.clock)
        leg.audio.play(self.wav("a.wav", 440, 8000, seconds=2))
        self.clock.advance(0.1)
        self.assertEqual(len(leg.packets(0)), 6)

    def test_resampledRates(self):
        """16 kHz and 48 kHz (stereo) WAVs reach an 8 kHz leg and a G.722 (16 kHz) leg at their frequency."""
        for rate, freq, channels in ((16000, 1000, 1), (48000, 1200, 2), (8000, 700, 1)):
            for codec in ("PCMU", "PCMA", "G722"):
                leg = Leg(self.clock, codec)
                path = self.wav("t%d.wav" % rate, freq, rate, channels=channels)
                done = self.results(leg.audio.play(path))
                run(self.clock, 1.1)
                self.assertEqual(done[0]["error"], None)
                self.assertEqual(len(leg.packets(leg.pt)), 50)
                heard = leg.heard()
                self.assertApproximates(dominant(heard[len(heard) // 10:], leg.rate), freq,
                                       tolerance=5, msg=(rate, codec))

    def test_contentList(self):
        """Seed 001 content lists: paths, [path, 0], [a|b, 7], negative kinds skipped; repeat."""
        a = self.wav("a.wav", 440, 8000, 0.2)
        b = self.wav("b.wav", 880, 8000, 0.2)
        self.assertEqual(player.contentFiles([a, [b, 0], [a + "|" + b, 7], ["x", -1]]),
                         [a, b, a, b])
        leg = Leg(self.clock)
        done = self.results(leg.audio.play([a, [b, 0, ""]], repeat=2))
        run(self.clock, 1)
        self.assertEqual(done[0]["error"], None)
        heard = leg.heard()
        self.assertEqual(len(heard), 8000 * 0.8)
        self.assertApproximates(dominant(heard[:1600], 8000), 440, tolerance=5)
        self.assertApproximates(dominant(heard[1600:3200], 8000), 880, tolerance=5)
        self.assertApproximates(dominant(heard[3200:4800], 8000), 440, tolerance=5)

    def test_unreadable(self):
        """A missing or broken file, or an unsupported kind: a result with error; the call goes on."""
        broken = os.path.join(self.dir, "broken.wav")
        with open(broken, "wb") as f:
            f.write(b"RIFF\x00\x00\x00\x00WAVEjunk")
        leg = Leg(self.clock)
        for content in (os.path.join(self.dir, "missing.wav"), broken, [["123", 1]], 42):
            done = self.results(leg.audio.play(content))
            self.assertEqual(len(done), 1)
            self.assertIsInstance(done[0]["error"], str)
            self.assertEqual(done[0]["begin_time"], done[0]["end_time"])
        self.assertEqual(leg.packets(), [])
        done = self.results(leg.audio.play(self.wav("a.wav", 440, 8000, 0.1)))
        run(self.clock, 0.2)
        self.assertEqual(done[0]["error"], None)

    def test_finishKey(self):
        leg = Leg(self.clock)
        done = self.results(leg.audio.play(self.wav("a.wav", 440, 8000), finishKeys="#*"))
        run(self.clock, 0.2)
        leg.press("1")
        self.assertEqual(done, [])
        leg.press("*")
        self.assertEqual(done[0]["finish_key"], "*")
        self.assertAlmostEqual(done[0]["end_time"] - done[0]["begin_time"], 0.2, places=3)
        sent = len(leg.packets())
        run(self.clock, 0.2)
        self.assertEqual(len(leg.packets()), sent)

    def test_stopAndBusy(self):
        leg = Leg(self.clock)
        path = self.wav("a.wav", 440, 8000)
        done = self.results(leg.audio.play(path))
        failure = self.failureResultOf(leg.audio.play(path), MediaError)
        self.assertIn("another action", failure.getErrorMessage())
        run(self.clock, 0.1)
        leg.audio.stop()
        self.assertEqual(done[0]["error"], None)
        self.assertEqual(leg.sending, [True, False])
        leg.audio.stop()  # nothing runs: no-op

    def test_closeEndsAction(self):
        leg = Leg(self.clock)
        done = self.results(leg.audio.play(self.wav("a.wav", 440, 8000)))
        leg.audio.close()
        self.assertEqual(done[0]["error"], "the call ended")
        self.failureResultOf(leg.audio.play("x"), MediaError)

    def test_noDecodingWhilePlaying(self):
        """Playing sends only: the RTP session's onAudio stays the bridge's own (fast path)."""
        leg = Leg(self.clock)
        def handler(*args):
            pass

        leg.rtp.onAudio = handler
        leg.audio.play(self.wav("a.wav", 440, 8000))
        self.assertIs(leg.rtp.onAudio, handler)

    def test_cache(self):
        """A prompt is decoded once per rate; a changed file is decoded again."""
        cache = player.PromptCache(size=2)
        path = self.wav("a.wav", 440, 8000)
        first = cache.load(path, 8000)
        self.assertIs(cache.load(path, 8000), first)
        self.assertEqual(len(cache.load(path, 16000)), 16000)
        self.wav("a.wav", 880, 8000, seconds=0.5)
        self.assertEqual(len(cache.load(path, 8000)), 4000)
