"""
Tests for L{linkrtc.media.reattach}: a bridged call's WebRTC leg dropped
(the client reloads its page) and rebuilt from a new offer, with real
aiortc peers and an RTP phone on 127.0.0.1 (C{trial --reactor=asyncio}).

Tones: the phone sends 440 Hz, the first browser 880 Hz, the browser
after the reload 660 Hz, so the audio after the reload can only come from
the new leg.
"""

import numpy
from twisted.internet import defer
from twisted.trial.unittest import TestCase
from zope.interface.verify import verifyObject

from linkrtc.error import MediaError
from linkrtc.interfaces import IResumableMediaSession
from linkrtc.media.bridge import BridgeMediaFactory
from linkrtc.media.reattach import silencePayload
from linkrtc.media.sdp import parseSDP
from linkrtc.media.test.peers import (
    OPUS_PCMU,
    Browser,
    Phone,
    dominantFrequency,
    resources,
    sipOffer,
)
from linkrtc.media.test.test_bridge import BridgeTestsMixin, lastSeconds
from linkrtc.media.transcode import codecParameters

#: Seconds of the media timeout in these tests: shorter than the wait.
MEDIA_TIMEOUT = 0.6


class ReattachTests(BridgeTestsMixin, TestCase):
    def setUp(self):
        super().setUp()
        ports = (self.factory.allocator.low, self.factory.allocator.high)
        self.factory = BridgeMediaFactory(self.reactor, rtpPorts=ports,
                                          iceAddresses=["127.0.0.1"], mediaTimeout=MEDIA_TIMEOUT,
                                          rtpInterface="127.0.0.1")
        self.before = resources(self.factory, self.loop)

    def checkTones(self, phone, browser, browserFreq, seconds=0.8):
        toBrowser = dominantFrequency(lastSeconds(browser.heard, browser.rate, seconds),
                                      browser.rate)
        toPhone = dominantFrequency(lastSeconds(phone.heard, phone.rate, seconds), phone.rate)
        print("\nSIP->WebRTC %.1f Hz (440 sent), WebRTC->SIP %.1f Hz (%d sent)"
              % (toBrowser, toPhone, browserFreq))
        self.assertTrue(abs(toBrowser - 440) <= 20, toBrowser)
        self.assertTrue(abs(toPhone - browserFreq) <= 20, toPhone)

    async def _reload(self, sipCodecs, phoneCodec, expectMode):
        phone = Phone(self.reactor, phoneCodec, freq=440)
        self.cleanups.append(phone.stop)
        phonePort = phone.listen()
        session = self.factory.newSession("reload-" + phoneCodec, self.listener)
        self.cleanups.append(session.close)
        verifyObject(IResumableMediaSession, session)
        browser = Browser(freq=880, codecs=None if expectMode == "relay" else OPUS_PCMU)
        self.cleanups.append(browser.close)
        answer = await browser.answer(await session.clientOffer(sipOffer(phonePort, sipCodecs)))
        m = parseSDP(await session.sipAnswer(answer)).audio()[1]
        self.assertEqual(session.mode, expectMode)
        phone.start(("127.0.0.1", m.port))
        await self.sleep(1.4)
        self.checkTones(phone, browser, 880)

        # The page reloads: its peer connection goes, the session drops the leg.
        await browser.close()
        session.clientDetached()
        self.assertTrue(session.detached)
        # The phone goes quiet as well: the media timeout must not fire while we wait.
        phone._loop.stop()
        heardBefore = len(phone.heard)
        await self.sleep(MEDIA_TIMEOUT * 2)
        self.assertEqual(self.listener.timeouts, 0)
        silence = phone.heard[heardBefore:]
        self.assertGreater(len(silence), 20)  # silence kept coming, 20 ms apart
        self.assertLess(numpy.abs(numpy.concatenate(silence[-10:])).max(), 64)
        # A second detach changes nothing; a bad offer is refused and the call still waits.
        session.clientDetached()
        with self.assertRaises(MediaError):
            await session.clientResumed("garbage")
        self.assertTrue(session.detached)

        # The page is back with a new offer.
        phone.start(("127.0.0.1", m.port))
        second = Browser(freq=660, codecs=None if expectMode == "relay" else OPUS_PCMU)
        self.cleanups.append(second.close)
        newAnswer = await session.clientResumed(await second.offer())
        self.assertIn("127.0.0.1", newAnswer)
        await second.accept(newAnswer)
        self.assertFalse(session.detached)
        self.assertEqual(session.mode, expectMode)
        third = Browser()
        with self.assertRaises(MediaError):
            await session.clientResumed(await third.offer())
        await third.close()
        await self.sleep(1.4)
        self.checkTones(phone, second, 660)
        # The media timeout runs again: the phone stops, the timeout fires.
        phone._loop.stop()
        await self.sleep(MEDIA_TIMEOUT * 2.5)
        self.assertEqual(self.listener.timeouts, 1)

        stats = session.stats()
        self.assertEqual(stats["webrtc"]["resumes"], 1)
        self.assertGreater(stats["webrtc"]["packetsReceived"], 100)
        await defer.maybeDeferred(phone.stop)
        await second.close()
        await session.close()
        self.assertEqual(await self.settle(), self.before)

    def test_reloadRelay(self):
        """
        PCMU both ways (relay): after the reload the new leg is relayed to
        the same RTP session; tones pass both ways again.
        """
        return defer.ensureDeferred(self._reload("0 101", "PCMU", "relay"))

    def test_reloadTranscode(self):
        """PCMA on SIP, Opus in the browser (transcode): the same after the reload."""
        return defer.ensureDeferred(self._reload("8 101", "PCMA", "transcode"))

    async def _closedWhileDetached(self):
        phone = Phone(self.reactor, "PCMU", freq=440)
        self.cleanups.append(phone.stop)
        phonePort = phone.listen()
        session = self.factory.newSession("gone", self.listener)
        browser = Browser()
        self.cleanups.append(browser.close)
        answer = await browser.answer(await session.clientOffer(sipOffer(phonePort, "0 101")))
        await session.sipAnswer(answer)
        await browser.close()
        session.clientDetached()
        await self.sleep(0.1)
        await session.close()
        count = len(phone.received)
        await self.sleep(0.1)
        self.assertEqual(len(phone.received), count)
        with self.assertRaises(MediaError):
            await session.clientResumed("v=0\r\n")
        await defer.maybeDeferred(phone.stop)
        self.assertEqual(await self.settle(), self.before)

    def test_closedWhileDetached(self):
        """The call ends while waiting: the silence stops and everything is released."""
        return defer.ensureDeferred(self._closedWhileDetached())

    def test_notDetached(self):
        """Before the answer there is no leg to drop, and no resume."""

        async def go():
            session = self.factory.newSession("early", self.listener)
            self.cleanups.append(session.close)
            session.clientDetached()
            self.assertFalse(session.detached)
            with self.assertRaises(MediaError):
                await session.clientResumed("v=0\r\n")

        return defer.ensureDeferred(go())


class SilenceTests(TestCase):
    def test_payloads(self):
        """One 20 ms payload of silence per SIP codec, decoding to zeros."""
        from aiortc.codecs import get_decoder
        from aiortc.jitterbuffer import JitterFrame

        for name, size in (("PCMU", 160), ("PCMA", 160), ("G722", 160)):
            payload = silencePayload(name)
            self.assertEqual(len(payload), size, name)
            frames = get_decoder(codecParameters(name)).decode(JitterFrame(payload, 0))
            samples = numpy.concatenate([f.to_ndarray().reshape(-1) for f in frames])
            self.assertLess(numpy.abs(samples).max(), 64, name)
