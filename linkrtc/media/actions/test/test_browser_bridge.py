"""
The browser leg's actions on L{BridgeSession}s with real peers over
loopback (aiortc "browsers" and Python RTP phones; needs the asyncio
reactor): calls with a browser leg only (C{browserOffer} /
C{browserAnswer}), a prompt played to a browser, a recording of it, a
SIP leg and a browser leg connected, two browsers connected, a
conference of two SIP legs and a browser, and the browser leg of a
relayed call leaving the relay for an action and coming back.

Tones are told apart by FFT: each listener must hear the others' tones
well above its own.
"""

import numpy
from twisted.internet import defer
from twisted.trial.unittest import TestCase
from zope.interface.verify import verifyObject

from linkrtc.error import MediaError
from linkrtc.interfaces import ICallAudio
from linkrtc.media.actions import Conference, WebRTCAudio
from linkrtc.media.actions.test.fakes import dominant, level, readWav, tone, writeWav
from linkrtc.media.sdp import parseSDP
from linkrtc.media.test.peers import Browser, Phone, sipOffer
from linkrtc.media.test.test_bridge import BridgeTestsMixin


def since(chunks, start, skip=0.0, rate=48000):
    """@return: the samples heard from chunk C{start} on, the first C{skip} seconds left out."""
    chunks = chunks[start:]
    if not chunks:
        return numpy.zeros(8)
    return numpy.concatenate(chunks)[int(skip * rate):]


class BrowserBridgeTests(BridgeTestsMixin, TestCase):
    timeout = 30

    async def browserCall(self, freq, name="browser"):
        """@return: C{(session, browser)}: a call with a browser leg only, answered."""
        session = self.factory.newSession(name, self.listener)
        self.cleanups.append(session.close)
        offer = await session.browserOffer()
        browser = Browser(freq=freq)
        self.cleanups.append(browser.close)
        await session.browserAnswer(await browser.answer(offer))
        self.assertEqual(session.mode, "browser")
        return session, browser

    async def sipCall(self, freq, name="sip"):
        """@return: C{(session, phone)}: a SIP call answered by LinkRTC, the phone sending."""
        phone = Phone(self.reactor, "PCMU", freq=freq)
        self.cleanups.append(phone.stop)
        port = phone.listen()
        session = self.factory.newSession(name, self.listener)
        self.cleanups.append(session.close)
        answer = await session.answerLocally(sipOffer(port, "0 101"))
        index, m = parseSDP(answer).audio()
        phone.start(("127.0.0.1", m.port))
        return session, phone

    def assertHears(self, samples, rate, heard, notHeard=(), name=""):
        """Each frequency of C{heard} is well above every one of C{notHeard}."""
        levels = {f: level(samples, rate, f) for f in tuple(heard) + tuple(notHeard)}
        floor = max([levels[f] for f in notHeard] + [0.0])
        for f in heard:
            self.assertGreater(levels[f], max(10 * floor, 50.0), (name, levels))

    async def _playAndRecord(self):
        session, browser = await self.browserCall(880)
        audio = session.audio()
        self.assertIsInstance(audio, WebRTCAudio)
        self.assertIs(session.browserAudio(), audio)
        self.assertTrue(verifyObject(ICallAudio, audio))
        self.assertEqual(audio.rate, 16000)
        self.failureResultOf(session.clientOffer(None), MediaError)
        self.failureResultOf(session.sipAnswer("v=0\r\n"), MediaError)
        self.failureResultOf(session.answerLocally(sipOffer(4000)), MediaError)
        self.failureResultOf(session.browserOffer(), MediaError)
        await session.browserAnswer(session._answered[0])
        await self.sleep(0.3)
        path = self.mktemp() + ".wav"
        writeWav(path, tone(1500, 8000, 8000), 8000)
        start = len(browser.heard)
        played = await audio.play(path)
        self.assertEqual(played["error"], None)
        during = since(browser.heard, start, skip=0.2, rate=browser.rate)
        self.assertApproximates(dominant(during, browser.rate), 1500, 20)
        recording = self.mktemp() + ".wav"
        recorded = await audio.record(recording, maxSeconds=0.8)
        self.assertEqual(recorded["error"], "max_seconds reached")
        samples, rate, _ = readWav(recording)
        self.assertEqual(rate, 16000)
        self.assertApproximates(dominant(samples[rate // 5:], rate), 880, 20)
        self.assertFalse(audio.active)
        stats = session.stats()
        self.assertEqual(stats["mode"], "browser")
        self.assertEqual(stats["webrtc"]["codec"], "OPUS")
        self.assertGreater(stats["webrtc"]["packetsReceived"], 50)
        await session.close()
        self.assertTrue(audio.closed)
        await browser.close()
        self.assertEqual(await self.settle(), self.before)

    def test_playAndRecord(self):
        """A call with only a browser leg: it hears a prompt; a recording holds its tone."""
        return defer.ensureDeferred(self._playAndRecord())

    async def _sipAndBrowser(self):
        sip, phone = await self.sipCall(440)
        web, browser = await self.browserCall(880)
        done = []
        sip.audio().connect(web.audio()).addCallback(done.append)
        start, phoneStart = len(browser.heard), len(phone.heard)
        await self.sleep(1.2)
        self.assertHears(since(browser.heard, start, 0.3, browser.rate), browser.rate,
                         [440], [880], "browser")
        self.assertHears(since(phone.heard, phoneStart, 0.3, 8000), 8000, [880], [440], "phone")
        # The client's keys reach the phone as RFC 4733 events.
        web.sendDigits("5")
        await self.sleep(0.3)
        self.assertEqual({p[5][0] for p in phone.received if p[1] == 101}, {5})
        web.audio().stop()
        self.assertEqual(done[0]["error"], None)
        self.assertFalse(web.audio().active)

    def test_sipAndBrowser(self):
        """A SIP leg and a browser leg connected hear each other (FFT both ways)."""
        return defer.ensureDeferred(self._sipAndBrowser())

    async def _browsers(self):
        one, first = await self.browserCall(600, "one")
        two, second = await self.browserCall(1100, "two")
        one.audio().connect(two.audio(), maxSeconds=1.2)
        starts = len(first.heard), len(second.heard)
        await self.sleep(1.0)
        self.assertHears(since(first.heard, starts[0], 0.3, first.rate), first.rate,
                         [1100], [600], "first")
        self.assertHears(since(second.heard, starts[1], 0.3, second.rate), second.rate,
                         [600], [1100], "second")

    def test_browsers(self):
        """Two browser legs connected hear each other."""
        return defer.ensureDeferred(self._browsers())

    async def _conference(self):
        sips = [await self.sipCall(f, "sip%d" % f) for f in (440, 660)]
        web, browser = await self.browserCall(1000)
        conference = Conference(self.reactor)
        for session, _ in sips:
            conference.enter(session.audio())
        conference.enter(web.audio())
        self.assertEqual(conference.parties(), 3)
        starts = [len(phone.heard) for _, phone in sips] + [len(browser.heard)]
        await self.sleep(1.5)
        heard = [(since(phone.heard, starts[i], 0.4, 8000), 8000, f)
                 for i, (f, (_, phone)) in enumerate(zip((440, 660), sips))]
        heard.append((since(browser.heard, starts[2], 0.4, browser.rate), browser.rate, 1000))
        for samples, rate, own in heard:
            others = [f for f in (440, 660, 1000) if f != own]
            self.assertHears(samples, rate, others, [own], own)
        conference.close()
        self.assertEqual(conference.parties(), 0)

    def test_conference(self):
        """A conference of two SIP legs and a browser: each hears the other two, not itself."""
        return defer.ensureDeferred(self._conference())

    async def _bridgedCall(self, codecs, phoneCodec, mode, rate):
        session, phone, browser = await self.bridged(codecs, phoneCodec, mode)
        audio = session.browserAudio()
        self.assertIsNot(audio, session.audio())
        self.assertEqual(audio.rate, rate)
        path = self.mktemp() + ".wav"
        writeWav(path, tone(1500, 8000, 8000), 8000)
        start, phoneStart = len(browser.heard), len(phone.heard)
        d = audio.play(path)
        self.assertEqual(session.mode, "transcode")
        played = await d
        self.assertEqual(played["error"], None)
        self.assertEqual(session.mode, mode)
        # The prompt replaced the phone's 440 Hz; the phone kept hearing the browser.
        self.assertHears(since(browser.heard, start, 0.3, browser.rate), browser.rate,
                         [1500], [440], "browser")
        self.assertHears(since(phone.heard, phoneStart, 0.3, 8000), 8000, [880], [], "phone")
        start = len(browser.heard)
        recording = self.mktemp() + ".wav"
        recorded = await audio.record(recording, maxSeconds=0.8)
        self.assertEqual(session.mode, mode)
        samples, rate, _ = readWav(recording)
        self.assertApproximates(dominant(samples[rate // 5:], rate), 880, 20)
        await self.sleep(0.6)
        self.assertHears(since(browser.heard, start, 0.3, browser.rate)[-browser.rate // 2:],
                         browser.rate, [440], [1500], "browser after")
        self.assertEqual(recorded["error"], "max_seconds reached")

    def test_relayedCall(self):
        """
        The browser leg of a PCMU relayed call leaves the relay while an
        action needs it (a prompt replaces the SIP audio; a recording holds
        the browser's tone) and comes back after.
        """
        return defer.ensureDeferred(self._bridgedCall("0 101", "PCMU", "relay", 8000))

    def test_transcodedCall(self):
        """The same on a transcoded call (PCMA, Opus): the transcoder shares the browser's frames."""
        return defer.ensureDeferred(self._bridgedCall("8 101", "PCMA", "transcode", 16000))
