"""Tests for L{linkrtc.media.actions.mixer}: seed 001 C{connect_start} and C{conf_enter}."""


from twisted.trial.unittest import SynchronousTestCase
from zope.interface.verify import verifyObject

from linkrtc.error import MediaError
from linkrtc.interfaces import IConference
from linkrtc.media.actions.mixer import Conference
from linkrtc.media.actions.test.fakes import (
    Leg,
    level,
    newClock,
    readWav,
    run,
    tone,
    writeWav,
)

TONES = (300, 500, 700)


class ConferenceTests(SynchronousTestCase):
    def setUp(self):
        self.clock = newClock()
        self.conference = Conference(self.clock)

    def test_interface(self):
        self.assertTrue(verifyObject(IConference, self.conference))

    def check(self, legs):
        for leg in legs:
            heard = leg.heard()[-8000 * leg.rate // 8000:]
            for other in legs:
                present = level(heard, leg.rate, other.freq)
                if other is leg:
                    self.assertLess(present, 20, (leg.freq, other.freq))
                else:
                    self.assertGreater(present, 500, (leg.freq, other.freq))

    def test_threeParties(self):
        """Each of three parties hears the other two tones and not its own (FFT)."""
        legs = [Leg(self.clock, freq=f) for f in TONES]
        results = []
        for leg in legs:
            self.conference.enter(leg.audio).addCallback(results.append)
        self.assertEqual(self.conference.parties(), 3)
        run(self.clock, 2, legs)
        self.check(legs)
        self.assertEqual(len(legs[0].packets(0)), 101)
        self.conference.exit(legs[1].audio)
        self.assertEqual(results[0]["error"], None)
        self.assertEqual(self.conference.parties(), 2)
        self.assertFalse(legs[1].audio.busy)
        self.assertEqual(legs[1].sending, [True, False])

    def test_mixedCodecs(self):
        """A G.722 (16 kHz) and a PCMA party mix with a PCMU one."""
        legs = [Leg(self.clock, c, freq=f) for c, f in zip(("PCMU", "G722", "PCMA"), TONES)]
        for leg in legs:
            self.conference.enter(leg.audio)
        run(self.clock, 2, legs)
        self.check(legs)

    def test_volume(self):
        """volume (dB) scales what a party says into the conference."""
        legs = [Leg(self.clock, freq=f) for f in TONES[:2]]
        self.conference.enter(legs[0].audio, volume=-12)
        self.conference.enter(legs[1].audio)
        run(self.clock, 1, legs)
        quiet = level(legs[1].heard()[-4000:], 8000, TONES[0])
        loud = level(legs[0].heard()[-4000:], 8000, TONES[1])
        self.assertApproximates(loud / quiet, 10 ** (12 / 20.0), tolerance=0.4)

    def test_maxSecondsAndClose(self):
        legs = [Leg(self.clock, freq=f) for f in TONES[:2]]
        results = []
        self.conference.enter(legs[0].audio, maxSeconds=1).addCallback(results.append)
        self.conference.enter(legs[1].audio).addCallback(results.append)
        run(self.clock, 1.02, legs)
        self.assertEqual(len(results), 1)
        self.assertApproximates(results[0]["end_time"] - results[0]["begin_time"], 1, 0.021)
        legs[1].audio.close()
        self.assertEqual(results[1]["error"], "the call ended")
        self.assertEqual(self.conference.parties(), 0)
        sent = len(legs[1].packets())
        run(self.clock, 1)
        self.assertEqual(len(legs[1].packets()), sent)

    def test_busyAndStop(self):
        leg = Leg(self.clock, freq=300)
        results = []
        self.conference.enter(leg.audio).addCallback(results.append)
        self.failureResultOf(self.conference.enter(leg.audio), MediaError)
        self.failureResultOf(leg.audio.play("x.wav"), MediaError)
        self.failureResultOf(Conference(self.clock).enter(leg.audio), MediaError)
        leg.audio.stop()
        self.assertEqual(results[0]["error"], None)
        self.assertEqual(self.conference.parties(), 0)

    def test_playFile(self):
        """play_file is heard by every party; an unreadable one: error, no entry."""
        path = self.mktemp() + ".wav"
        writeWav(path, tone(1500, 16000, 16000), 16000)
        legs = [Leg(self.clock) for _ in range(2)]
        self.conference.enter(legs[0].audio)
        self.conference.enter(legs[1].audio, playFile=path)
        run(self.clock, 1)
        for leg in legs:
            self.assertGreater(level(leg.heard()[-4000:], 8000, 1500), 500)
        results = []
        other = Leg(self.clock)
        self.conference.enter(other.audio, playFile="/no/such.wav").addCallback(results.append)
        self.assertIn("cannot read", results[0]["error"])
        self.assertEqual(self.conference.parties(), 2)


class ConnectTests(SynchronousTestCase):
    def setUp(self):
        self.clock = newClock()

    def connect(self, a, b, **kw):
        results = []
        a.audio.connect(b.audio, **kw).addCallback(results.append)
        return results

    def test_relaySameCodec(self):
        """Same codec, no gain, no recording: packets are relayed undecoded, both ways."""
        a, b = Leg(self.clock, freq=440), Leg(self.clock, freq=880)
        results = self.connect(a, b)
        run(self.clock, 1, [a, b])
        self.assertEqual(level(a.heard(), 8000, 880) > 500, True)
        self.assertLess(level(a.heard(), 8000, 440), 20)
        self.assertGreater(level(b.heard(), 8000, 440), 500)
        self.assertEqual(len(a.packets(0)), 50)
        self.assertEqual(a.audio._inputUsers, 0)  # nothing decoded
        a.audio.stop()
        self.assertEqual(results[0]["error"], None)
        self.assertFalse(b.audio.busy)
        self.assertEqual(a.rtp.onAudio, None)

    def test_decodedAcrossCodecs(self):
        """PCMU with G.722, and PCMU with PCMA: each hears the other."""
        for codec in ("G722", "PCMA"):
            a, b = Leg(self.clock, freq=440), Leg(self.clock, codec, freq=880)
            self.connect(a, b)
            run(self.clock, 1, [a, b])
            self.assertGreater(level(a.heard()[-4000:], 8000, 880), 500, codec)
            self.assertLess(level(a.heard()[-4000:], 8000, 440), 20)
            heard = b.heard()[-b.rate // 2:]
            self.assertGreater(level(heard, b.rate, 440), 500, codec)
            self.assertLess(level(heard, b.rate, 880), 20)

    def test_volumesAndRecording(self):
        """Volumes in dB; the recording is stereo: this leg left, the other right."""
        path = self.mktemp() + ".wav"
        a, b = Leg(self.clock, freq=440), Leg(self.clock, freq=880)
        results = self.connect(a, b, recordPath=path, localVolume=-6, remoteVolume=6,
                               maxSeconds=1)
        run(self.clock, 1.1, [a, b])
        self.assertEqual(results[0]["error"], None)
        self.assertApproximates(results[0]["end_time"] - results[0]["begin_time"], 1, 0.021)
        heardByB = level(b.heard()[-4000:], 8000, 440)
        heardByA = level(a.heard()[-4000:], 8000, 880)
        self.assertApproximates(heardByA / heardByB, 10 ** (12 / 20.0), tolerance=0.4)
        samples, rate, channels = readWav(path)
        self.assertEqual((rate, channels), (8000, 2))
        left, right = samples[0::2], samples[1::2]
        self.assertGreater(level(left, 8000, 440), 500)
        self.assertLess(level(left, 8000, 880), 20)
        self.assertGreater(level(right, 8000, 880), 500)
        self.assertLess(level(right, 8000, 440), 20)

    def test_otherLeg(self):
        """The other leg is busy; its stop or its end ends the connection."""
        a, b = Leg(self.clock), Leg(self.clock)
        results = self.connect(a, b)
        self.failureResultOf(b.audio.play("x.wav"), MediaError)
        self.failureResultOf(Leg(self.clock).audio.connect(b.audio), MediaError)
        b.audio.stop()
        self.assertEqual(results[0]["error"], None)
        results = self.connect(a, b)
        b.audio.close()
        self.assertEqual(results[0]["error"], "the other call ended")
        self.assertFalse(a.audio.busy)
        self.failureResultOf(a.audio.connect(a.audio), MediaError)

    def test_digitsCrossOver(self):
        """A key from one leg is sent on to the other (RFC 4733)."""
        a, b = Leg(self.clock), Leg(self.clock)
        self.connect(a, b)
        a.press("5")
        b.press("7")
        run(self.clock, 0.2)
        self.assertEqual({p[5][0] for p in b.packets(101)}, {5})
        self.assertEqual({p[5][0] for p in a.packets(101)}, {7})
