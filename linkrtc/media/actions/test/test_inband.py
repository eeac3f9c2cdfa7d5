"""Tests for L{linkrtc.media.actions.inband}: in-band DTMF (Q.23 tones, Q.24 checks)."""

import numpy
from av import AudioFrame
from twisted.trial.unittest import SynchronousTestCase

from linkrtc.media.actions.inband import COLUMNS, KEYS, ROWS, ToneDigitDetector
from linkrtc.media.actions.pcm import PayloadCodec
from linkrtc.media.actions.test.fakes import Leg, newClock, tone, writeWav
from linkrtc.media.actions.test.test_webrtc_leg import FakeFeed
from linkrtc.media.actions.webrtc_leg import WebRTCAudio

ALL_KEYS = "".join(KEYS)


def frequencies(key):
    for r, row in enumerate(KEYS):
        if key in row:
            return ROWS[r], COLUMNS[row.index(key)]
    raise KeyError(key)


def dual(key, rate, seconds, low=5000.0, high=5000.0, phase=0.3):
    """@return: C{float} samples of C{key}'s two tones."""
    f1, f2 = frequencies(key)
    t = numpy.arange(int(round(rate * seconds))) / float(rate)
    return low * numpy.sin(2 * numpy.pi * f1 * t + phase) + high * numpy.sin(2 * numpy.pi * f2 * t)


def silence(rate, seconds):
    return numpy.zeros(int(round(rate * seconds)))


def pcm(samples):
    return numpy.clip(numpy.round(samples), -32768, 32767).astype(numpy.int16)


class DetectorTests(SynchronousTestCase):
    def detect(self, samples, rate=8000, chunk=None):
        keys = []
        detector = ToneDigitDetector(rate, keys.append)
        samples = pcm(samples)
        chunk = chunk or rate // 50
        for start in range(0, len(samples), chunk):
            detector.feed(samples[start:start + chunk])
        return "".join(keys)

    def sequence(self, keys, rate=8000, on=0.1, off=0.06, lead=0.013, **kw):
        parts = [silence(rate, lead)]
        for key in keys:
            parts += [dual(key, rate, on, **kw), silence(rate, off)]
        return numpy.concatenate(parts)

    def test_allKeys(self):
        """The 16 keys, at 8 and 16 kHz, each reported once."""
        for rate in (8000, 16000):
            self.assertEqual(self.detect(self.sequence(ALL_KEYS, rate), rate), ALL_KEYS)

    def test_odd_chunks(self):
        """Samples arriving in pieces that are not 20 ms give the same keys."""
        self.assertEqual(self.detect(self.sequence("159#"), chunk=97), "159#")

    def test_throughG711(self):
        """Tones after PCMU / PCMA coding."""
        for name in ("PCMU", "PCMA"):
            codec = PayloadCodec(name)
            samples = pcm(self.sequence("0123456789"))
            coded = numpy.concatenate([codec.decode(codec.encode(samples[i:i + 160]))
                                       for i in range(0, len(samples) - 159, 160)])
            self.assertEqual(self.detect(coded), "0123456789", name)

    def test_noise(self):
        """Keys at -16 dBm0 each in white noise 20 dB below are found."""
        rng = numpy.random.default_rng(7)
        samples = self.sequence("*0#D")
        samples = samples + rng.normal(0, 5000 / numpy.sqrt(2) / 10, len(samples))
        self.assertEqual(self.detect(samples), "*0#D")

    def test_duration(self):
        """40 ms tones are found whatever their alignment; 20 ms ones never."""
        for lead in (0.0, 0.003, 0.007, 0.011, 0.017):
            self.assertEqual(self.detect(self.sequence("2580", on=0.04, off=0.04, lead=lead)),
                             "2580", lead)
            self.assertEqual(self.detect(self.sequence("2580", on=0.02, off=0.04, lead=lead)),
                             "", lead)

    def test_onePerPress(self):
        """A long press is one key; a 10 ms drop-out inside it too; a repeated key twice."""
        self.assertEqual(self.detect(self.sequence("5", on=1.0)), "5")
        broken = numpy.concatenate((dual("5", 8000, 0.1), silence(8000, 0.01),
                                    dual("5", 8000, 0.1), silence(8000, 0.1)))
        self.assertEqual(self.detect(broken), "5")
        self.assertEqual(self.detect(self.sequence("55", off=0.04)), "55")

    def test_twist(self):
        """Within the twist limits found; beyond them (Q.24) not."""
        self.assertEqual(self.detect(self.sequence("8", low=5000, high=5000 / 10 ** (6 / 20.))),
                         "8")
        self.assertEqual(self.detect(self.sequence("8", high=5000, low=5000 / 10 ** (3 / 20.))),
                         "8")
        self.assertEqual(self.detect(self.sequence("8", low=5000, high=5000 / 10 ** (12 / 20.))),
                         "")
        self.assertEqual(self.detect(self.sequence("8", high=5000, low=5000 / 10 ** (8 / 20.))),
                         "")

    def test_tooQuiet(self):
        self.assertEqual(self.detect(self.sequence("1", low=200, high=200)), "")

    def test_falsePositives(self):
        """A 440 Hz tone with noise, a single DTMF frequency, and a speech-like buzz: no key."""
        rng = numpy.random.default_rng(11)
        t = numpy.arange(8000 * 3) / 8000.0
        tone440 = 8000 * numpy.sin(2 * numpy.pi * 440 * t) + rng.normal(0, 800, len(t))
        self.assertEqual(self.detect(tone440), "")
        self.assertEqual(self.detect(8000 * numpy.sin(2 * numpy.pi * 770 * t)), "")
        # A vowel-like sound: a gliding 100-140 Hz pitch with harmonics shaped by formants
        # near 730 and 1090 Hz (close to DTMF frequencies), and noise.
        pitch = 100 + 40 * numpy.sin(2 * numpy.pi * 0.7 * t)
        phase = 2 * numpy.pi * numpy.cumsum(pitch) / 8000.0
        voice = numpy.zeros_like(t)
        for h in range(1, 30):
            f = h * pitch
            weight = (numpy.exp(-((f - 730) / 120.0) ** 2) + 0.6 * numpy.exp(-((f - 1090) / 120.0) ** 2)
                      + 0.3 / h)
            voice += weight * numpy.sin(h * phase)
        voice *= 6000 / numpy.abs(voice).max()
        voice += rng.normal(0, 300, len(t))
        self.assertEqual(self.detect(voice), "")

    def test_close(self):
        keys = []
        detector = ToneDigitDetector(8000, keys.append)
        detector.close()
        detector.feed(pcm(self.sequence("1")))
        self.assertEqual(keys, [])


class LegDetectionTests(SynchronousTestCase):
    """In-band keys on legs: only with no RFC 4733, only while an action wants keys."""

    def setUp(self):
        self.clock = newClock()

    def pressInBand(self, leg, keys):
        samples = pcm(DetectorTests.sequence(None, keys))
        for start in range(0, len(samples) - 159, 160):
            leg.sendFrame(samples[start:start + 160])
            self.clock.advance(0.02)

    def test_sipWithoutTelephoneEvent(self):
        """receive_dtmf_start on a SIP leg with no telephone-event gets tone keys."""
        leg = Leg(self.clock, event=False)
        self.assertIsNone(leg.rtp.onAudio)
        heard = []
        leg.audio.digitsListener(heard.append)
        self.pressInBand(leg, "12")  # no action: nothing decoded, nothing found
        self.assertEqual(heard, [])
        results = []
        leg.audio.receiveDigits(maxKeys=3, finishKeys="#").addCallback(results.append)
        self.assertEqual(leg.rtp.onAudio, leg.audio._received)
        self.pressInBand(leg, "9*#")
        self.assertEqual(results[0]["keys"], "9*")
        self.assertEqual(heard, ["9", "*", "#"])
        self.assertIsNone(leg.audio._detector)
        self.assertIsNone(leg.rtp.onAudio)

    def test_finishKeys(self):
        """play_start and record_start with finish_keys stop on an in-band key."""
        leg = Leg(self.clock, event=False)
        path = self.mktemp() + ".wav"
        writeWav(path, tone(400, 8000, 8000 * 5), 8000)
        results = []
        leg.audio.play(path, finishKeys="5").addCallback(results.append)
        self.pressInBand(leg, "45")
        self.assertEqual(results[0]["finish_key"], "5")
        leg.audio.record(self.mktemp() + ".wav", finishKeys="#").addCallback(results.append)
        self.pressInBand(leg, "#")
        self.assertEqual(results[1]["finish_key"], "#")
        leg.audio.play(path).addCallback(results.append)
        self.assertIsNone(leg.audio._detector)  # no finish keys: no detection
        leg.audio.stop()

    def test_rfc4733Preferred(self):
        """With telephone-event negotiated, tones in the audio are not reported."""
        leg = Leg(self.clock, event=True)
        results = []
        leg.audio.receiveDigits(maxKeys=2, firstKeyTimeout=5).addCallback(results.append)
        self.assertIsNone(leg.audio._detector)
        self.pressInBand(leg, "12")
        leg.press("7")
        leg.press("8")
        self.assertEqual(results[0]["keys"], "78")

    def test_browserLeg(self):
        """A browser leg's audio is searched while receive_dtmf_start runs."""
        feed = FakeFeed()
        events = []
        audio = WebRTCAudio(self.clock, None, None, feed, "OPUS", onActive=events.append)
        results = []
        audio.receiveDigits(maxKeys=2).addCallback(results.append)
        self.assertEqual(events, [True])
        samples = pcm(DetectorTests.sequence(None, "38", rate=48000))
        for start in range(0, len(samples) - 959, 960):
            stereo = numpy.repeat(samples[start:start + 960], 2).reshape(1, -1)
            frame = AudioFrame.from_ndarray(stereo, format="s16", layout="stereo")
            frame.sample_rate = 48000
            frame.pts = start
            audio.frameReceived(frame)
        self.assertEqual(results[0]["keys"], "38")
        self.assertEqual(events, [True, False])
        self.assertIsNone(audio.readFrame())
