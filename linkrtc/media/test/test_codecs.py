"""
Tests of the bridge's codecs with real aiortc peers on 127.0.0.1: PCMA,
G.722 and Opus relayed without transcoding when both legs have them, a
trunk's codec order in our offers, and the offerless outbound call (the
offer in the 2xx, our answer in the ACK).
"""

from twisted.internet import defer
from twisted.trial.unittest import SynchronousTestCase, TestCase
from zope.interface.verify import verifyObject

from linkrtc.error import MediaError
from linkrtc.interfaces import IOfferlessOutboundMediaSession
from linkrtc.media import sdp as sdpmod
from linkrtc.media.outboundside import trunkCodecs
from linkrtc.media.test.peers import OPUS_PCMU, Browser, Phone, dominantFrequency, sipOffer
from linkrtc.media.test.test_bridge import BridgeTestsMixin, lastSeconds, phoneAnswer
from linkrtc.media.webrtc import browserCodecOrder


class CodecOrderTests(SynchronousTestCase):
    """Pure: which codecs we offer and prefer."""

    def test_browserOrder(self):
        """The SIP codec leads the browser's list (the relay); Opus, PCMU, PCMA follow."""
        self.assertEqual(browserCodecOrder("PCMA"), ["PCMA", "OPUS", "PCMU"])
        self.assertEqual(browserCodecOrder("G722"), ["G722", "OPUS", "PCMU", "PCMA"])
        self.assertEqual(browserCodecOrder("OPUS"), ["OPUS", "PCMU", "PCMA"])
        self.assertEqual(browserCodecOrder(None), ["OPUS", "PCMU", "PCMA"])

    def test_trunkOrder(self):
        """A trunk's codecs are the order of our offer; its first browser codec leads WebRTC."""
        sip, browser = trunkCodecs(["g722", "PCMA", "opus", "telephone-event", "GSM"])
        self.assertEqual([c.name for c in sip], ["G722", "PCMA", "OPUS", "TELEPHONE-EVENT"])
        self.assertEqual(sip[2], sdpmod.Codec("OPUS", 48000, sdpmod.OPUS_PT, 2))
        self.assertEqual(browser[0], "G722")
        sip, _ = trunkCodecs(["PCMA", "PCMU"])
        self.assertEqual([c.name for c in sip], ["PCMA", "PCMU"])
        sip, browser = trunkCodecs(None)
        self.assertEqual([c.name for c in sip], ["PCMU", "PCMA", "G722", "TELEPHONE-EVENT"])
        self.assertEqual(browser[0], "PCMU")
        self.assertRaises(MediaError, trunkCodecs, ["GSM", "telephone-event"])

    def test_opusSDP(self):
        """Opus is written opus/48000/2 (RFC 7587 §7) and read back at 48 kHz."""
        body = sdpmod.buildSDP("192.0.2.1", 20000, sdpmod.ourCodecs(order=["opus", "pcmu"]), 1)
        self.assertIn(b"a=rtpmap:111 opus/48000/2", body)
        m = sdpmod.parseSDP(body).audio()[1]
        codec, event = sdpmod.chooseCodec(m)
        self.assertEqual(codec, sdpmod.Codec("OPUS", 48000, 111, 2))
        self.assertIsNone(event)

    def test_preference(self):
        """Our preference picks among the offered codecs; without it the offer's order wins."""
        m = sdpmod.parseSDP(sipOffer(4000, "0 8 9 101")).audio()[1]
        self.assertEqual(sdpmod.chooseCodec(m)[0].name, "PCMU")
        self.assertEqual(sdpmod.chooseCodec(m, preference=["g722", "pcma"])[0].name, "G722")
        self.assertEqual(sdpmod.chooseCodec(m, preference=["OPUS"])[0].name, "PCMU")


class RelayCodecTests(BridgeTestsMixin, TestCase):
    """Incoming calls relayed on each codec both legs have."""

    async def relayed(self, sipCodecs, codec, browserCodecs=None, expectMode="relay"):
        phone = Phone(self.reactor, codec, freq=440)
        self.cleanups.append(phone.stop)
        port = phone.listen()
        session = self.factory.newSession("relay-" + codec, self.listener)
        self.cleanups.append(session.close)
        offer = await session.clientOffer(sipOffer(port, sipCodecs))
        browser = Browser(freq=880, codecs=browserCodecs)
        self.cleanups.append(browser.close)
        answer = await session.sipAnswer(await browser.answer(offer))
        m = sdpmod.parseSDP(answer).audio()[1]
        self.assertEqual(m.codecs()[0].name, codec)
        self.assertEqual(session.mode, expectMode)
        phone.start(("127.0.0.1", m.port))
        await self.sleep(1.6)
        toBrowser = dominantFrequency(lastSeconds(browser.heard, browser.rate, 0.8), browser.rate)
        toPhone = dominantFrequency(lastSeconds(phone.heard, phone.rate, 0.8), phone.rate)
        print("\n%s %s: SIP->WebRTC %.1f Hz (440 sent), WebRTC->SIP %.1f Hz (880 sent)"
              % (expectMode, codec, toBrowser, toPhone))
        self.assertTrue(abs(toBrowser - 440) <= 20, toBrowser)
        self.assertTrue(abs(toPhone - 880) <= 20, toPhone)
        stats = session.stats()
        self.assertEqual(stats["mode"], expectMode)
        self.assertEqual(stats["sip"]["codec"], codec)
        self.assertGreater(stats["sip"]["packetsReceived"], 50)
        self.assertGreater(stats["webrtc"]["packetsReceived"], 50)
        return offer, stats

    def test_pcma(self):
        """PCMA on SIP: the browser is offered PCMA first, takes it, and packets are relayed."""

        async def go():
            offer, stats = await self.relayed("8 101", "PCMA")
            self.assertIn("a=rtpmap:8 PCMA/8000", offer)
            self.assertEqual(stats["webrtc"]["codec"], "PCMA")

        return defer.ensureDeferred(go())

    def test_g722(self):
        """G.722 on SIP with a browser that has it (Chrome, aiortc): relayed."""

        async def go():
            offer, stats = await self.relayed("9 101", "G722")
            self.assertEqual(stats["webrtc"]["codec"], "G722")

        return defer.ensureDeferred(go())

    def test_g722Transcoded(self):
        """G.722 on SIP with a browser without it (Firefox): transcoded to Opus."""

        async def go():
            offer, stats = await self.relayed("9 101", "G722", OPUS_PCMU, "transcode")
            self.assertEqual(stats["webrtc"]["codec"], "OPUS")

        return defer.ensureDeferred(go())

    def test_opus(self):
        """An Opus phone (opus/48000/2): the browser is offered Opus and packets are relayed."""

        async def go():
            offer, stats = await self.relayed("111 0 101", "OPUS")
            self.assertEqual(stats["webrtc"]["codec"], "OPUS")

        return defer.ensureDeferred(go())


class OutboundCodecTests(BridgeTestsMixin, TestCase):
    """Outbound calls: the trunk's order, and the offerless INVITE."""

    def test_trunkOrder(self):
        """The trunk lists PCMA first: our offer has PCMA first, the phone takes it, relay."""

        async def go():
            phone = Phone(self.reactor, "PCMA", freq=440)
            self.cleanups.append(phone.stop)
            port = phone.listen()
            session = self.factory.newSession("order", self.listener)
            self.cleanups.append(session.close)
            browser = Browser(freq=880)
            self.cleanups.append(browser.close)
            offer = await session.sipOffer(await browser.offer(),
                                           ["PCMA", "PCMU", "telephone-event"])
            names = [c.name for c in sdpmod.parseSDP(offer).audio()[1].codecs()]
            self.assertEqual(names, ["PCMA", "PCMU", "TELEPHONE-EVENT"])
            webrtc = await session.clientAnswer(phoneAnswer(port, offer, "PCMA"))
            self.assertIn("PCMA/8000", webrtc)
            self.assertEqual(session.mode, "relay")

        return defer.ensureDeferred(go())

    def test_offerless(self):
        """
        The 2xx holds the trunk's offer: L{ackAnswer} answers it at once (the
        trunk's order picks PCMA), the media starts (relay) and the 2xx's
        SDP given to C{clientAnswer} gives the client aiortc's answer;
        tones pass both ways.
        """

        async def go():
            phone = Phone(self.reactor, "PCMA", freq=440)
            self.cleanups.append(phone.stop)
            port = phone.listen()
            session = self.factory.newSession("offerless", self.listener)
            self.cleanups.append(session.close)
            verifyObject(IOfferlessOutboundMediaSession, session)
            browser = Browser(freq=880)
            self.cleanups.append(browser.close)
            await session.sipOffer(await browser.offer(), ["PCMA", "PCMU", "telephone-event"])
            late = sipOffer(port, "0 8 101")
            ack = session.ackAnswer(late)
            m = sdpmod.parseSDP(ack).audio()[1]
            self.assertEqual([c.name for c in m.codecs()], ["PCMA", "TELEPHONE-EVENT"])
            self.assertEqual(session.mode, "relay")
            webrtc = await session.clientAnswer(late)
            await browser.accept(webrtc)
            phone.start(("127.0.0.1", m.port))
            await self.sleep(1.6)
            toBrowser = dominantFrequency(lastSeconds(browser.heard, browser.rate, 0.8),
                                          browser.rate)
            toPhone = dominantFrequency(lastSeconds(phone.heard, phone.rate, 0.8), phone.rate)
            self.assertTrue(abs(toBrowser - 440) <= 20, toBrowser)
            self.assertTrue(abs(toPhone - 880) <= 20, toPhone)

        return defer.ensureDeferred(go())

    def test_offerlessUnusable(self):
        """A 2xx offer sharing no codec: no ACK body, and clientAnswer fails (the call ends)."""

        async def go():
            session = self.factory.newSession("offerless-bad", self.listener)
            self.cleanups.append(session.close)
            browser = Browser(freq=880)
            self.cleanups.append(browser.close)
            await session.sipOffer(await browser.offer(), ["PCMA"])
            late = sipOffer(4000, "0 101")
            self.assertIsNone(session.ackAnswer(late))
            with self.assertRaises(MediaError):
                await session.clientAnswer(late)
            self.assertIsNone(session.ackAnswer(b"garbage"))

        return defer.ensureDeferred(go())
