"""Tests for L{linkrtc.media.actions.recorder} (seed 001 C{record_start})."""

import os

import av
import numpy
from twisted.trial.unittest import SynchronousTestCase

from linkrtc.media.actions.test.fakes import Leg, dominant, newClock, readWav, run


def decodeAny(path):
    """@return: C{(samples, rate)} of any audio file, through PyAV."""
    with av.open(path) as container:
        rate = container.streams.audio[0].rate
        chunks = [f.to_ndarray().reshape(-1) for f in container.decode(audio=0)]
    samples = numpy.concatenate(chunks)
    if samples.dtype == numpy.uint8:
        samples = (samples.astype(numpy.int16) - 128) << 8
    return samples, rate


class RecorderTests(SynchronousTestCase):
    def setUp(self):
        self.clock = newClock()
        self.dir = self.mktemp()
        os.makedirs(self.dir)
        self.path = os.path.join(self.dir, "rec.wav")

    def record(self, leg, **kw):
        done = []
        leg.audio.record(self.path, **kw).addCallback(done.append)
        return done

    def test_maxSeconds(self):
        """The WAV holds the far end's tone for max_seconds; seed 001: the result has an error."""
        leg = Leg(self.clock, freq=440)
        handler = leg.rtp.onAudio
        done = self.record(leg, maxSeconds=1)
        self.assertNotEqual(leg.rtp.onAudio, handler)  # decoding now
        run(self.clock, 1.5, [leg])
        self.assertEqual(done[0]["error"], "max_seconds reached")
        self.assertEqual(done[0]["path"], self.path)
        self.assertAlmostEqual(done[0]["end_time"] - done[0]["begin_time"], 1.0, places=3)
        samples, rate, channels = readWav(self.path)
        self.assertEqual((rate, channels, len(samples)), (8000, 1, 8000))
        self.assertApproximates(dominant(samples, rate), 440, tolerance=3)
        self.assertIs(leg.rtp.onAudio, handler)  # no decoding once it ended
        self.assertEqual(leg.packets(), [])  # recording sends nothing

    def test_finishKey(self):
        leg = Leg(self.clock, freq=440)
        done = self.record(leg, finishKeys="#")
        run(self.clock, 0.5, [leg])
        leg.press("5")
        run(self.clock, 0.5, [leg])
        leg.press("#")
        self.assertEqual((done[0]["error"], done[0]["finish_key"]), (None, "#"))
        samples, rate, _ = readWav(self.path)
        self.assertEqual(len(samples), 8000)

    def test_stop(self):
        """Seed 001 record_stop: the result has an error; the file is complete."""
        leg = Leg(self.clock, freq=440)
        done = self.record(leg)
        run(self.clock, 0.4, [leg])
        leg.audio.stop()
        self.assertEqual(done[0]["error"], "record stopped")
        samples, rate, _ = readWav(self.path)
        self.assertEqual(len(samples), 0.4 * 8000)

    def test_missingFramesAreSilence(self):
        """Frames the far end did not send are written as silence: the file's length is the time."""
        leg = Leg(self.clock, freq=440)
        done = self.record(leg, maxSeconds=1)
        run(self.clock, 0.5, [leg])
        run(self.clock, 0.5)
        self.assertTrue(done)
        samples, _, _ = readWav(self.path)
        self.assertEqual(len(samples), 8000)
        self.assertGreater(numpy.abs(samples[:3000]).max(), 3000)
        self.assertEqual(numpy.abs(samples[-3000:]).max(), 0)

    def test_beep(self):
        """beep: a 1 kHz beep goes out first, then recording starts."""
        leg = Leg(self.clock, freq=440)
        done = self.record(leg, beep=True, maxSeconds=1)
        run(self.clock, 0.3, [leg])
        self.assertApproximates(dominant(leg.heard(), 8000), 1000, tolerance=5)
        self.assertEqual(leg.sending, [True, False])
        run(self.clock, 1.2, [leg])
        self.assertTrue(done)
        samples, _, _ = readWav(self.path)
        self.assertEqual(len(samples), 8000)

    def test_g722(self):
        """A G.722 leg records 16 kHz; seed formats 2 and 3 write 8 kHz A-law and µ-law WAVs."""
        leg = Leg(self.clock, "G722", freq=1000)
        self.record(leg, maxSeconds=0.5)
        run(self.clock, 0.6, [leg])
        samples, rate, _ = readWav(self.path)
        self.assertEqual((rate, len(samples)), (16000, 8000))
        self.assertApproximates(dominant(samples[1600:], rate), 1000, tolerance=5)
        for fmt in (1, 2, 3):
            leg = Leg(self.clock, "PCMA", freq=600)
            self.record(leg, maxSeconds=0.5, fmt=fmt)
            run(self.clock, 0.6, [leg])
            samples, rate = decodeAny(self.path)
            self.assertEqual((rate, len(samples)), (8000, 4000))
            self.assertApproximates(dominant(samples, rate), 600, tolerance=5)

    def test_badPathOrFormat(self):
        leg = Leg(self.clock)
        for kw in ({"fmt": 6}, {}):
            done = []
            path = self.path if kw else os.path.join(self.dir, "no", "such", "dir.wav")
            leg.audio.record(path, **kw).addCallback(done.append)
            self.assertIsInstance(done[0]["error"], str)
            self.assertFalse(leg.audio.busy)
