"""
Tests for L{linkrtc.media.actions.webrtc_leg}: the browser leg's
L{ICallAudio} on a L{task.Clock}, fed aiortc-shaped frames (s16 stereo
48 kHz, as Opus decodes) and writing to a fake feed track.
"""

import numpy
from av import AudioFrame
from twisted.trial.unittest import SynchronousTestCase
from zope.interface.verify import verifyObject

from linkrtc.error import MediaError
from linkrtc.interfaces import ICallAudio
from linkrtc.media.actions.mixer import Conference
from linkrtc.media.actions.test.fakes import (
    Leg,
    dominant,
    level,
    newClock,
    readWav,
    tone,
    writeWav,
)
from linkrtc.media.actions.webrtc_leg import WebRTCAudio, dtmfSamples


class FakeFeed:
    """A L{FeedTrack}'s C{rate} and C{feed}: keeps what is fed."""

    def __init__(self, rate=8000):
        self.rate = rate
        self.frames = []

    def feed(self, frame):
        self.frames.append(frame)

    def samples(self, since=0):
        frames = self.frames[since:]
        if not frames:
            return numpy.zeros(0, dtype=numpy.int16)
        return numpy.concatenate([f.to_ndarray().reshape(-1) for f in frames])


class Browser:
    """The browser: a WebRTCAudio with a fake feed, given 48 kHz stereo frames of a tone."""

    def __init__(self, clock, freq=None, codec="OPUS", feedRate=8000):
        self.clock = clock
        self.freq = freq
        self.feed = FakeFeed(feedRate)
        self.events = []
        self.audio = WebRTCAudio(clock, None, None, self.feed, codec,
                                 onActive=lambda a: self.events.append(("active", a)),
                                 onSending=lambda s: self.events.append(("sending", s)))
        self._pos = 0

    def sendFrame(self):
        """The browser sends 20 ms (as aiortc's Opus decoder gives it)."""
        mono = tone(self.freq, 48000, 960, self._pos)
        self._pos += 960
        stereo = numpy.repeat(mono, 2).reshape(1, -1)
        frame = AudioFrame.from_ndarray(stereo, format="s16", layout="stereo")
        frame.sample_rate = 48000
        frame.pts = self._pos
        self.audio.frameReceived(frame)


def run(clock, seconds, peers):
    for _ in range(int(round(seconds * 50))):
        for peer in peers:
            if peer.freq is not None:
                peer.sendFrame()
        clock.advance(0.02)


class WebRTCAudioTests(SynchronousTestCase):
    def setUp(self):
        self.clock = newClock()
        self.browser = Browser(self.clock, freq=1000)
        self.audio = self.browser.audio

    def test_interface(self):
        self.assertTrue(verifyObject(ICallAudio, self.audio))
        self.assertEqual(self.audio.rate, 16000)
        self.assertEqual(WebRTCAudio(self.clock, None, None, FakeFeed(), "PCMU").rate, 8000)
        self.assertRaises(KeyError, WebRTCAudio, self.clock, None, None, FakeFeed(), "VP8")

    def test_idleDropsFrames(self):
        """With no action, frames are neither converted nor kept, and the owner is not told."""
        run(self.clock, 0.2, [self.browser])
        self.assertIsNone(self.audio.readFrame())
        self.assertEqual(self.audio.framesReceived, 0)
        self.assertEqual(self.browser.events, [])

    def test_record(self):
        """A recording holds the browser's tone at 16 kHz; the owner is active meanwhile."""
        path = self.mktemp() + ".wav"
        done = []
        self.audio.record(path, maxSeconds=1).addCallback(done.append)
        self.assertEqual(self.browser.events, [("active", True)])
        run(self.clock, 1.02, [self.browser])
        self.assertEqual(done[0]["error"], "max_seconds reached")
        samples, rate, channels = readWav(path)
        self.assertEqual((rate, channels), (16000, 1))
        self.assertApproximates(len(samples), 16000, 320)
        self.assertApproximates(dominant(samples[1600:], rate), 1000, 5)
        self.assertEqual(self.browser.events, [("active", True), ("active", False)])

    def test_inboxBounded(self):
        """Frames nobody reads are dropped beyond 200 ms."""
        self.audio.needInput(True)
        for _ in range(50):
            self.browser.sendFrame()
        frames = []
        while True:
            frame = self.audio.readFrame()
            if frame is None:
                break
            frames.append(frame)
        self.assertEqual(len(frames), 10)
        self.assertEqual({len(f) for f in frames}, {320})

    def test_play(self):
        """A prompt reaches the feed track at its rate; onActive frames onSending."""
        path = self.mktemp() + ".wav"
        writeWav(path, tone(1500, 16000, 8000), 16000)
        done = []
        self.audio.play(path).addCallback(done.append)
        for _ in range(30):
            self.clock.advance(0.02)
        self.assertEqual(done[0]["error"], None)
        self.assertEqual(len(self.browser.feed.frames), 25)
        self.assertEqual({f.sample_rate for f in self.browser.feed.frames}, {8000})
        self.assertEqual({f.samples for f in self.browser.feed.frames}, {160})
        self.assertApproximates(dominant(self.browser.feed.samples()[800:], 8000), 1500, 10)
        self.assertEqual(self.browser.events, [("active", True), ("sending", True),
                                               ("sending", False), ("active", False)])

    def test_sendDigits(self):
        """Keys to the browser are in-band Q.23 tones; bad keys give an error."""
        done = []
        self.audio.sendDigits("5").addCallback(done.append)
        for _ in range(10):
            self.clock.advance(0.02)
        self.assertEqual(done[0]["error"], None)
        heard = self.browser.feed.samples()[:800]
        for freq in (770, 1336):
            self.assertGreater(level(heard, 8000, freq), 500)
        for freq in (697, 852, 1209, 1477):
            self.assertLess(level(heard, 8000, freq, width=10), 200)
        self.audio.sendDigits("5x").addCallback(done.append)
        self.assertIn("invalid DTMF keys", done[1]["error"])
        self.assertEqual(len(dtmfSamples("12", 8000)), 2 * 1200)

    def test_keysAndClose(self):
        """keyPressed (the client's dtmf message) reaches actions; close ends them."""
        keys, done = [], []
        self.audio.digitsListener(keys.append)
        self.audio.receiveDigits(maxKeys=2).addCallback(done.append)
        self.audio.keyPressed("4")
        self.audio.keyPressed("2")
        self.assertEqual(done[0]["keys"], "42")
        self.assertEqual(keys, ["4", "2"])
        self.audio.record(self.mktemp() + ".wav").addCallback(done.append)
        self.audio.close()
        self.assertEqual(done[1]["error"], "the call ended")
        self.assertEqual(self.browser.events[-1], ("active", False))
        self.assertFalse(self.audio.active)
        self.failureResultOf(self.audio.play("x.wav"), MediaError)


class BrowserConnectionTests(SynchronousTestCase):
    def setUp(self):
        self.clock = newClock()

    def test_sipAndBrowser(self):
        """A SIP leg (440 Hz) and a browser leg (880 Hz) connected hear each other."""
        sip = Leg(self.clock, freq=440)
        browser = Browser(self.clock, freq=880)
        done = []
        sip.audio.connect(browser.audio).addCallback(done.append)
        self.assertTrue(browser.audio.busy)
        run(self.clock, 1, [sip, browser])
        self.assertApproximates(dominant(sip.heard()[1600:], 8000), 880, 10)
        self.assertApproximates(dominant(browser.feed.samples()[1600:], 8000), 440, 10)
        # The browser's keys go on to the SIP leg (RFC 4733); the phone's are dropped.
        browser.audio.keyPressed("7")
        self.clock.advance(0.2)
        self.assertTrue(sip.packets(101))
        sip.press("1")
        browser.audio.stop()
        self.assertEqual(done[0]["error"], None)
        self.assertFalse(browser.audio.busy)
        self.assertEqual(browser.events[-1], ("active", False))

    def test_browsers(self):
        """Two browser legs connected hear each other."""
        one = Browser(self.clock, freq=600)
        two = Browser(self.clock, freq=1100, feedRate=16000)
        one.audio.connect(two.audio)
        run(self.clock, 1, [one, two])
        self.assertApproximates(dominant(one.feed.samples()[1600:], 8000), 1100, 10)
        self.assertApproximates(dominant(two.feed.samples()[3200:], 16000), 600, 10)

    def test_conference(self):
        """Two SIP legs and a browser in a conference: each hears the other two, not itself."""
        conference = Conference(self.clock)
        sips = [Leg(self.clock, freq=f) for f in (300, 500)]
        browser = Browser(self.clock, freq=700)
        for party in sips + [browser]:
            conference.enter(party.audio)
        run(self.clock, 2, sips + [browser])
        heard = {300: sips[0].heard()[-8000:], 500: sips[1].heard()[-8000:],
                 700: browser.feed.samples()[-8000:]}
        for own, samples in heard.items():
            for freq in (300, 500, 700):
                if freq == own:
                    self.assertLess(level(samples, 8000, freq), 20, (own, freq))
                else:
                    self.assertGreater(level(samples, 8000, freq), 500, (own, freq))
        conference.close()
        self.assertEqual(browser.events[-1], ("active", False))
