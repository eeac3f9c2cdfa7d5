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


class ConnectModeTests(SynchronousTestCase):
    """Seed 001 connect_mode 2 and 3, and the scheduled prompt."""

    def setUp(self):
        self.clock = newClock()

    def connect(self, a, b, **kw):
        results = []
        a.audio.connect(b.audio, **kw).addCallback(results.append)
        return results

    def hears(self, leg, freq, since=0):
        return level(leg.heard(since)[-4000:], leg.rate, freq) > 500

    def silent(self, leg, since=0):
        heard = leg.heard(since)
        return len(heard) > 0 and int(abs(heard.astype(int)).max()) < 50

    def test_oneWay(self):
        """Mode 2: only the second hears the first; mode 3 the reverse; the deaf side gets
        silence packets; relayed for the same codec, decoded across codecs."""
        for codec in ("PCMU", "G722"):
            for mode in (2, 3):
                a, b = Leg(self.clock, freq=440), Leg(self.clock, codec, freq=880)
                results = self.connect(a, b, connectMode=mode)
                run(self.clock, 1, [a, b])
                first, second = (b, a) if mode == 2 else (a, b)
                # first: the one that hears; second: the one that does not.
                heardFreq = 440 if mode == 2 else 880
                self.assertTrue(self.hears(first, heardFreq), (codec, mode))
                self.assertTrue(self.silent(second), (codec, mode))
                self.assertApproximates(len(second.packets(second.pt)), 50, 1)
                self.assertEqual(a.audio._action.relayed, codec == "PCMU")
                a.audio.stop()
                self.assertEqual(results[0]["error"], None)
                self.assertIsNone(a.rtp.onAudio)
                self.assertIsNone(b.rtp.onAudio)

    def test_oneWayRelayDecodesNothing(self):
        a, b = Leg(self.clock, freq=440), Leg(self.clock, freq=880)
        self.connect(a, b, connectMode=3)
        run(self.clock, 0.5, [a, b])
        self.assertEqual((a.audio._inputUsers, b.audio._inputUsers), (0, 0))
        self.assertIsNone(a.rtp.onAudio)  # a's audio goes nowhere: not even tapped
        self.assertEqual(b.rtp.onAudio, b.audio._received)

    def test_oneWayKeys(self):
        """Keys follow the audio: in mode 3 the second's keys reach the first, not back."""
        a, b = Leg(self.clock), Leg(self.clock)
        self.connect(a, b, connectMode=3)
        a.press("5")
        b.press("7")
        run(self.clock, 0.2)
        self.assertEqual(b.packets(101), [])
        self.assertEqual({p[5][0] for p in a.packets(101)}, {7})

    def test_oneWayRecordsBoth(self):
        """A recording in mode 2 still holds both parties."""
        path = self.mktemp() + ".wav"
        a, b = Leg(self.clock, freq=440), Leg(self.clock, freq=880)
        self.connect(a, b, connectMode=2, recordPath=path, maxSeconds=1)
        run(self.clock, 1.1, [a, b])
        self.assertTrue(self.silent(a))
        samples, rate, channels = readWav(path)
        self.assertGreater(level(samples[0::2], 8000, 440), 500)
        self.assertGreater(level(samples[1::2], 8000, 880), 500)

    def test_badMode(self):
        a, b = Leg(self.clock), Leg(self.clock)
        self.failureResultOf(a.audio.connect(b.audio, connectMode=4), MediaError)
        self.assertFalse(b.audio.busy)

    def test_schedulePlay(self):
        """At schedule_play_time both parties hear the file, loop times, mixed with the
        other's voice; the relay stops meanwhile and resumes after."""
        path = self.mktemp() + ".wav"
        writeWav(path, tone(1500, 8000, 4000), 8000)  # 0.5 s
        for mode in (1, 2):
            a, b = Leg(self.clock, freq=440), Leg(self.clock, freq=880)
            at = self.clock.seconds() + 1
            self.connect(a, b, connectMode=mode, schedulePlayTime=at, schedulePlayFile=path,
                         schedulePlayLoop=2)
            run(self.clock, 1, [a, b])
            self.assertTrue(a.audio._action.relayed)
            sinceA, sinceB = len(a.packets(0)), len(b.packets(0))
            run(self.clock, 1, [a, b])
            for leg in (a, b):
                since = sinceA if leg is a else sinceB
                heard = leg.heard(since)
                self.assertGreater(level(heard[:8000], 8000, 1500), 500, mode)
            self.assertGreater(level(b.heard(sinceB), 8000, 440), 500)
            if mode == 1:
                self.assertGreater(level(a.heard(sinceA), 8000, 880), 500)
            else:
                self.assertLess(level(a.heard(sinceA), 8000, 880), 20)
            sinceA = len(a.packets(0))
            run(self.clock, 0.5, [a, b])
            self.assertTrue(a.audio._action.relayed)
            self.assertLess(level(a.heard(sinceA + 2), 8000, 1500), 20)
            self.assertEqual(a.audio._inputUsers, 0)
            a.audio.stop()

    def test_schedulePast(self):
        """A time already past plays at once; loop 0 plays nothing; a bad file: error."""
        path = self.mktemp() + ".wav"
        writeWav(path, tone(1500, 8000, 8000), 8000)
        a, b = Leg(self.clock), Leg(self.clock)
        self.connect(a, b, schedulePlayTime=1, schedulePlayFile=path, schedulePlayLoop=1)
        run(self.clock, 0.5)
        self.assertGreater(level(a.heard(), 8000, 1500), 500)
        a.audio.stop()
        a, b = Leg(self.clock), Leg(self.clock)
        self.connect(a, b, schedulePlayTime=1, schedulePlayFile=path, schedulePlayLoop=0)
        run(self.clock, 0.5)
        self.assertEqual(a.heard().size, 0)
        a.audio.stop()
        results = self.connect(a, b, schedulePlayTime=1, schedulePlayFile="/no/such.wav",
                               schedulePlayLoop=1)
        self.assertIn("cannot read", results[0]["error"])
        self.assertFalse(a.audio.busy or b.audio.busy)


class VoiceModeTests(SynchronousTestCase):
    """Seed 001 conf_enter voice_mode: 1 hears and is heard, 2 is heard, 3 hears, 4 neither."""

    def test_modes(self):
        clock = newClock()
        conference = Conference(clock)
        legs = [Leg(clock, freq=f) for f in (300, 500, 700, 900)]
        for mode, leg in zip((1, 2, 3, 4), legs):
            conference.enter(leg.audio, voiceMode=mode)
        run(clock, 1, legs)
        normal, speaker, listener, neither = legs
        self.assertGreater(level(normal.heard()[-4000:], 8000, 500), 500)  # hears the speaker
        self.assertLess(level(normal.heard()[-4000:], 8000, 700), 20)  # not the listener
        self.assertLess(level(normal.heard()[-4000:], 8000, 900), 20)
        self.assertGreater(level(listener.heard()[-4000:], 8000, 300), 500)
        self.assertGreater(level(listener.heard()[-4000:], 8000, 500), 500)
        for deaf in (speaker, neither):
            self.assertEqual(len(deaf.packets(0)), 50)  # silence keeps RTP flowing
            self.assertLess(int(abs(deaf.heard().astype(int)).max()), 50)
        self.assertEqual(listener.audio._inputUsers, 0)
        self.assertEqual(neither.audio._inputUsers, 0)
        self.assertEqual(speaker.audio._inputUsers, 1)
        self.failureResultOf(conference.enter(Leg(clock).audio, voiceMode=5), MediaError)
        conference.close()
        self.assertEqual(speaker.audio._inputUsers, 0)
