"""
Tests for L{linkrtc.media.bridge} with real aiortc peers on 127.0.0.1:
an in-process aiortc "browser" and a Python RTP phone. They need the
asyncio reactor (C{trial --reactor=asyncio}) and skip otherwise.

Audio is checked with a different tone each way (phone 440 Hz, browser
880 Hz) by the dominant FFT frequency, within 20 Hz.
"""

import random

from twisted.internet import defer
from twisted.internet.task import deferLater
from twisted.trial.unittest import SkipTest, TestCase
from zope.interface import implementer
from zope.interface.verify import verifyObject

from linkrtc.error import MediaError
from linkrtc.interfaces import (
    IMediaFactory,
    IMediaListener,
    IMediaSession,
    IOutboundMediaSession,
    IReofferMediaSession,
)
from linkrtc.media.bridge import BridgeMediaFactory
from linkrtc.media.rtp import buildHeader
from linkrtc.media.sdp import parseSDP
from linkrtc.media.test.peers import (
    OPUS_PCMU,
    Browser,
    Phone,
    dominantFrequency,
    resources,
    sipOffer,
)
from linkrtc.media.webrtc import loopOf

#: What the audio tests measured, for the report (dominant Hz per direction).
MEASURED = {}


@implementer(IMediaListener)
class Listener:
    def __init__(self):
        self.digits = []
        self.timeouts = 0

    def mediaDigits(self, digits):
        self.digits.append(digits)

    def mediaTimeout(self):
        self.timeouts += 1


def lastSeconds(chunks, rate, seconds):
    import numpy

    samples = numpy.concatenate(chunks) if chunks else numpy.zeros(0)
    return samples[-int(rate * seconds):]


class BridgeTestsMixin:
    timeout = 20

    def setUp(self):
        from twisted.internet import reactor

        if loopOf(reactor) is None or not hasattr(reactor, "_asyncioEventloop"):
            raise SkipTest("needs --reactor=asyncio")
        self.reactor = reactor
        self.loop = loopOf(reactor)
        base = random.randrange(30000, 58000, 2)
        self.listener = Listener()
        self.factory = BridgeMediaFactory(reactor, rtpPorts=(base, base + 99),
                                          iceAddresses=["127.0.0.1"], mediaTimeout=30.0,
                                          rtpInterface="127.0.0.1")
        self.before = resources(self.factory, self.loop)
        self.cleanups = []

    def sleep(self, seconds):
        return deferLater(self.reactor, seconds, lambda: None)

    async def bridged(self, codecs, phoneCodec, mode):
        """
        A call bridged between a L{Phone} (440 Hz, C{phoneCodec}) offering
        C{codecs} and a L{Browser} (880 Hz; Opus and PCMU unless C{mode} is
        C{"relay"}), the session in C{mode}, with 0.6 seconds of audio.

        @return: C{(session, phone, browser)}, closed at cleanup.
        """
        phone = Phone(self.reactor, phoneCodec, freq=440)
        self.cleanups.append(phone.stop)
        port = phone.listen()
        session = self.factory.newSession("bridged", self.listener)
        self.cleanups.append(session.close)
        offer = await session.clientOffer(sipOffer(port, codecs))
        browser = Browser(freq=880, codecs=None if mode == "relay" else OPUS_PCMU)
        self.cleanups.append(browser.close)
        answer = await session.sipAnswer(await browser.answer(offer))
        index, m = parseSDP(answer).audio()
        self.assertEqual(session.mode, mode)
        phone.start(("127.0.0.1", m.port))
        await self.sleep(0.6)
        return session, phone, browser

    async def settle(self):
        """Wait (bounded) until resources are back to what they were before the test."""
        now = None
        for _ in range(40):
            now = resources(self.factory, self.loop)
            if now == self.before:
                return now
            await self.sleep(0.05)
        return now

    async def tearDownAsync(self):
        for cleanup in reversed(self.cleanups):
            try:
                await defer.maybeDeferred(cleanup)
            except Exception:
                pass

    def tearDown(self):
        return defer.ensureDeferred(self.tearDownAsync())


class BridgeAudioTests(BridgeTestsMixin, TestCase):
    """Calls with audio both ways."""

    async def call(self, sipCodecs, phoneCodec, expectMode, seconds=1.6):
        phone = Phone(self.reactor, phoneCodec, freq=440)
        self.cleanups.append(phone.stop)
        phonePort = phone.listen()
        session = self.factory.newSession("call-" + phoneCodec, self.listener)
        self.cleanups.append(session.close)
        verifyObject(IMediaSession, session)

        offer = await session.clientOffer(sipOffer(phonePort, sipCodecs))
        self.assertIn("127.0.0.1", offer)
        self.assertNotIn("stun.l.google.com", offer)
        browser = Browser(freq=880, codecs=None if expectMode == "relay" else OPUS_PCMU)
        self.cleanups.append(browser.close)
        answer = await browser.answer(offer)
        sipAnswer = await session.sipAnswer(answer)
        self.assertIsInstance(sipAnswer, bytes)
        index, m = parseSDP(sipAnswer).audio()
        self.assertEqual(m.address, ("IP4", "127.0.0.1"))
        self.assertEqual(session.mode, expectMode)
        phone.start(("127.0.0.1", m.port))
        await self.sleep(seconds)
        return session, phone, browser, m

    async def finish(self, session, phone, browser):
        stats = session.stats()
        await defer.maybeDeferred(phone.stop)
        await browser.close()
        await session.close()
        after = await self.settle()
        self.assertEqual(after, self.before)
        return stats

    def checkTones(self, name, phone, browser):
        toBrowser = dominantFrequency(lastSeconds(browser.heard, browser.rate, 0.8), browser.rate)
        toPhone = dominantFrequency(lastSeconds(phone.heard, phone.rate, 0.8), phone.rate)
        MEASURED[name] = (toBrowser, toPhone)
        print("\n%s: SIP->WebRTC %.1f Hz (440 sent), WebRTC->SIP %.1f Hz (880 sent)"
              % (name, toBrowser, toPhone))
        self.assertTrue(abs(toBrowser - 440) <= 20, toBrowser)
        self.assertTrue(abs(toPhone - 880) <= 20, toPhone)

    async def _relay(self):
        session, phone, browser, m = await self.call("0 101", "PCMU", "relay")
        # DTMF from SIP: one key press, end packet three times.
        for i, (flags, duration) in enumerate([(10, 160), (10, 320), (0x8A, 400),
                                               (0x8A, 400), (0x8A, 400)]):
            phone.sendRaw(buildHeader(i == 0, 101, 5000 + i, 777777, 0xC0FFEE)
                          + bytes([5, flags]) + duration.to_bytes(2, "big"))
        # DTMF to SIP, and SRTP that fails authentication.
        session.sendDigits("1")
        browser.sendGarbageSRTP(5)
        # A stranger sprays the call's port (RTP bleed): dropped and counted.
        stranger = Phone(self.reactor, "PCMU", freq=2000)
        self.cleanups.append(stranger.stop)
        stranger.listen()
        for seq in range(30):
            stranger.sendRaw(buildHeader(0, 0, seq, seq * 160, 0xBAD) + b"\x00" * 160,
                             ("127.0.0.1", m.port))
        await self.sleep(0.4)
        self.assertEqual(stranger.received, [])
        await defer.maybeDeferred(stranger.stop)
        self.checkTones("relay PCMU", phone, browser)
        self.assertEqual(self.listener.digits, ["5"])
        events = [p for p in phone.received if p[1] == 101]
        self.assertEqual(len(events), 7)
        self.assertEqual({p[5][0] for p in events}, {1})
        self.assertEqual(len({p[3] for p in events}), 1)
        stats = await self.finish(session, phone, browser)
        self.assertEqual(stats["mode"], "relay")
        self.assertGreater(stats["sip"]["packetsReceived"], 50)
        self.assertGreater(stats["webrtc"]["packetsReceived"], 50)
        self.assertGreater(stats["sip"]["packetsSent"], 50)
        self.assertGreater(stats["webrtc"]["packetsSent"], 50)
        self.assertGreaterEqual(stats["webrtc"]["srtpFailures"], 5)
        self.assertEqual(stats["sip"]["codec"], "PCMU")
        self.assertEqual(stats["rtp_rejected"], 30)
        self.assertEqual(stats["sip"]["rejected"], 30)

    def test_relayPCMU(self):
        """
        PCMU on both legs: packets are relayed without decoding, tones pass
        both ways, DTMF goes both ways, bad SRTP is counted, all released.
        """
        return defer.ensureDeferred(self._relay())

    async def _transcode(self, sipCodecs, codec):
        session, phone, browser, m = await self.call(sipCodecs, codec, "transcode")
        self.assertEqual(m.codecs()[0].name, codec)
        # The fast path (linkrtc.media.opuspath): no frame through aiortc's
        # receiver or sender once the SIP side's audio flows.
        self.assertTrue(session._pipe.inline)
        self.assertGreater(session._pipe.framesEncoded, 10)
        self.checkTones("transcode %s/Opus" % (codec,), phone, browser)
        stats = await self.finish(session, phone, browser)
        self.assertEqual(stats["webrtc"]["codec"], "OPUS")
        self.assertGreater(stats["sip"]["packetsReceived"], 50)

    def test_transcodePCMA(self):
        """PCMA on SIP, Opus in the browser: decoded and encoded, tones pass both ways."""
        return defer.ensureDeferred(self._transcode("8 101", "PCMA"))

    def test_transcodeG722(self):
        """G.722 on SIP, Opus in the browser."""
        return defer.ensureDeferred(self._transcode("9 101", "G722"))


class BridgeSignallingTests(BridgeTestsMixin, TestCase):
    """Offer/answer paths, bad input, isolation and clean-up."""

    def test_interfaces(self):
        verifyObject(IMediaFactory, self.factory)
        self.assertEqual(self.factory.name, "bridge")

    async def _unexpectedSetupFailure(self):
        import linkrtc.media.bridge as bridge

        def broken(*args, **kwargs):
            raise RuntimeError("no peer connection today")

        self.patch(bridge, "WebRTCLeg", broken)
        session = self.factory.newSession("broken", self.listener)
        failure = self.failureResultOf(session.clientOffer(sipOffer(4000)), MediaError)
        self.assertIn("media set-up failed: no peer connection today", str(failure.value))
        self.assertEqual(len(self.flushLoggedErrors(RuntimeError)), 1)
        await session.close()
        self.assertEqual(await self.settle(), self.before)

    def test_unexpectedSetupFailure(self):
        """
        An unexpected error while setting media up is logged and becomes a
        L{MediaError}; once closed, the session leaves nothing behind.
        """
        return defer.ensureDeferred(self._unexpectedSetupFailure())

    async def _badOffers(self):
        good = self.factory.newSession("good", self.listener)
        self.cleanups.append(good.close)
        phone = Phone(self.reactor)
        self.cleanups.append(phone.stop)
        offer = await good.clientOffer(sipOffer(phone.listen()))
        for bad in [b"garbage", b"v=0\r\nm=audio x RTP/AVP 0\r\n",
                    sipOffer(4000, codecs="18 3"), sipOffer(4000).replace(b"RTP/AVP", b"RTP/SAVP")]:
            session = self.factory.newSession("bad", self.listener)
            with self.assertRaises(MediaError):
                await session.clientOffer(bad)
            await session.close()
        # The good call is untouched: it still answers.
        browser = Browser()
        self.cleanups.append(browser.close)
        answer = await good.sipAnswer(await browser.answer(offer))
        self.assertIn(b"m=audio", answer)
        self.assertEqual(len(self.factory.sessions), 1)
        with self.assertRaises(MediaError):
            await self.factory.newSession("x", self.listener).sipAnswer("v=0")
        await self.factory.closeAll()
        await browser.close()
        await defer.maybeDeferred(phone.stop)
        self.assertEqual(await self.settle(), self.before)

    def test_badOffers(self):
        """
        Unparseable SDP, no common codec, SRTP-only: MediaError; another
        call is not affected; every resource is released.
        """
        return defer.ensureDeferred(self._badOffers())

    async def _offerless(self):
        self.factory.mediaTimeout = 0.5
        session = self.factory.newSession("offerless", self.listener)
        self.cleanups.append(session.close)
        offer = await session.clientOffer(None)
        browser = Browser()
        self.cleanups.append(browser.close)
        self.factory.publicAddress = "203.0.113.1"
        clientAnswer = await browser.answer(offer)
        sipOfferBody = await session.sipAnswer(clientAnswer)
        self.assertEqual(await session.sipAnswer(clientAnswer), sipOfferBody)
        index, m = parseSDP(sipOfferBody).audio()
        self.assertEqual(m.address, ("IP4", "203.0.113.1"))
        names = [c.name for c in m.codecs()]
        self.assertEqual(names, ["PCMU", "PCMA", "G722", "TELEPHONE-EVENT"])
        phone = Phone(self.reactor)
        self.cleanups.append(phone.stop)
        result = await session.sipAckBody(sipOffer(phone.listen(), "0 101"))
        self.assertIsNone(result)
        self.assertEqual(session.mode, "relay")
        await self.sleep(0.8)
        # The phone never sent: one media timeout.
        self.assertEqual(self.listener.timeouts, 1)
        # A re-INVITE putting the call on hold, then back.
        answer, hold = await session.sipReoffer(sipOffer(phone.port.getHost().port, "0 101",
                                                         extra="a=sendonly"))
        self.assertTrue(hold)
        self.assertIn(b"a=recvonly", answer)
        self.assertIn(b"m=audio %d " % (m.port,), answer)
        answer, hold = await session.sipReoffer(sipOffer(phone.port.getHost().port, "8 101"))
        self.assertFalse(hold)
        self.assertIn(b"a=sendrecv", answer)
        self.assertEqual(session.mode, "transcode")
        # an offer with no codec we can relay: refused (488), the media stays
        with self.assertRaises(MediaError):
            await session.sipReoffer(sipOffer(phone.port.getHost().port, "18"))
        self.assertEqual(session.mode, "transcode")
        answer, hold = await session.sipReoffer(sipOffer(phone.port.getHost().port, "8 101"))
        self.assertIn(b"PCMA", answer)
        await session.close()
        await browser.close()
        await defer.maybeDeferred(phone.stop)
        self.assertEqual(await self.settle(), self.before)

    def test_offerless(self):
        """
        An offerless INVITE: the client still gets an offer, the 200 OK
        carries our SIP offer with all codecs, the ACK's answer starts the
        media; a silent phone times out; re-INVITEs hold and change codec.
        """
        return defer.ensureDeferred(self._offerless())

    async def _shutdownTrigger(self):
        session = self.factory.newSession("s", self.listener)
        self.assertIsNotNone(self.factory._trigger)
        await session.clientOffer(sipOffer(9000))
        await session.close()
        self.assertIsNone(self.factory._trigger)
        other = self.factory.newSession("t", self.listener)
        await other.clientOffer(sipOffer(9000))
        await self.factory._shutdown()
        self.assertTrue(other.closed)
        self.assertEqual(await self.settle(), self.before)

    def test_shutdownTrigger(self):
        """A 'before shutdown' trigger closes open sessions; it goes away with the last one."""
        return defer.ensureDeferred(self._shutdownTrigger())

    async def _portsOnlyWhenAnswered(self):
        base = random.randrange(30000, 58000, 2)
        factory = BridgeMediaFactory(self.reactor, rtpPorts=(base, base + 1),
                                     iceAddresses=["127.0.0.1"], rtpInterface="127.0.0.1")
        self.cleanups.append(factory.closeAll)
        self.assertEqual(factory.allocator.capacity, 1)
        # Unanswered INVITEs (more than the range holds) take no port.
        ringing = [factory.newSession("ringing-%d" % i, self.listener) for i in range(3)]
        offers = [await r.clientOffer(sipOffer(4000 + 2 * i)) for i, r in enumerate(ringing)]
        self.assertEqual(factory.allocator.inUse, set())
        # One is answered: it takes the range's only pair.
        browser = Browser()
        self.cleanups.append(browser.close)
        answer = await ringing[0].sipAnswer(await browser.answer(offers[0]))
        self.assertEqual(parseSDP(answer).audio()[1].port, base)
        self.assertEqual(factory.allocator.portsInUse(), 2)
        # The range is full: a new call is refused at once, an answer fails
        # and gives nothing back it did not have.
        late = factory.newSession("late", self.listener)
        with self.assertRaises(MediaError):
            await late.clientOffer(sipOffer(5000))
        other = Browser()
        self.cleanups.append(other.close)
        with self.assertRaises(MediaError):
            await ringing[1].sipAnswer(await other.answer(offers[1]))
        self.assertEqual(factory.allocator.inUse, {base})
        # The answered call ends: its pair is free for the next one.
        await ringing[0].close()
        self.assertEqual(factory.allocator.inUse, set())
        third = Browser()
        self.cleanups.append(third.close)
        await ringing[2].sipAnswer(await third.answer(offers[2]))
        self.assertEqual(factory.allocator.inUse, {base})
        await factory.closeAll()
        self.assertEqual(factory.allocator.inUse, set())

    def test_portsOnlyWhenAnswered(self):
        """
        An incoming call takes its RTP ports when the client answers, not
        on the INVITE; a full range refuses new calls (MediaError: 488)
        and ended calls give their ports back.
        """
        return defer.ensureDeferred(self._portsOnlyWhenAnswered())



def phoneAnswer(port, offer, codec):
    """@return: a SIP phone's answer (C{bytes}) to LinkRTC's C{offer} choosing C{codec}."""
    index, m = parseSDP(offer).audio()
    chosen = [c for c in m.codecs() if c.name == codec][0]
    return sipOffer(port, "%d 101" % (chosen.payloadType,))


class BridgeOutboundTests(BridgeTestsMixin, TestCase):
    """The client offers (outbound calls): sipOffer, clientAnswer, hold."""

    async def _outbound(self, phoneCodec, expectMode, trunkCodecs=None):
        phone = Phone(self.reactor, phoneCodec, freq=440)
        self.cleanups.append(phone.stop)
        phonePort = phone.listen()
        session = self.factory.newSession("out-" + phoneCodec, self.listener)
        self.cleanups.append(session.close)
        verifyObject(IOutboundMediaSession, session)
        browser = Browser(freq=880, codecs=None if expectMode == "relay" else OPUS_PCMU)
        self.cleanups.append(browser.close)
        offer = await session.sipOffer(await browser.offer(), trunkCodecs)
        self.assertIsInstance(offer, bytes)
        index, m = parseSDP(offer).audio()
        self.assertEqual(m.address, ("IP4", "127.0.0.1"))
        names = [c.name for c in m.codecs()]
        self.assertEqual(names[-1], "TELEPHONE-EVENT")
        answerBody = phoneAnswer(phonePort, offer, phoneCodec)
        webrtcAnswer = await session.clientAnswer(answerBody)
        self.assertIn("127.0.0.1", webrtcAnswer)
        # The 200 OK repeating the 183's SDP: the same answer, nothing restarted.
        self.assertEqual(await session.clientAnswer(answerBody), webrtcAnswer)
        self.assertEqual(session.mode, expectMode)
        await browser.accept(webrtcAnswer)
        phone.start(("127.0.0.1", m.port))
        await self.sleep(1.6)
        toBrowser = dominantFrequency(lastSeconds(browser.heard, browser.rate, 0.8),
                                      browser.rate)
        toPhone = dominantFrequency(lastSeconds(phone.heard, phone.rate, 0.8), phone.rate)
        MEASURED["outbound " + expectMode] = (toBrowser, toPhone)
        print("\noutbound %s: SIP->WebRTC %.1f Hz (440 sent), WebRTC->SIP %.1f Hz (880 sent)"
              % (expectMode, toBrowser, toPhone))
        self.assertTrue(abs(toBrowser - 440) <= 20, toBrowser)
        self.assertTrue(abs(toPhone - 880) <= 20, toPhone)
        # Client hold: nothing more goes to the phone; unhold resumes.
        await session.hold(True)
        await self.sleep(0.1)
        count = len(phone.received)
        await self.sleep(0.3)
        self.assertEqual(len(phone.received), count)
        await session.hold(False)
        await self.sleep(0.3)
        self.assertGreater(len(phone.received), count)
        stats = session.stats()
        self.assertEqual(stats["sip"]["codec"], phoneCodec)
        await defer.maybeDeferred(phone.stop)
        await browser.close()
        await session.close()
        self.assertEqual(await self.settle(), self.before)
        return names

    def test_relay(self):
        """The client offers PCMU: LinkRTC offers PCMU first, the phone takes it: relay."""
        return defer.ensureDeferred(self._outbound("PCMU", "relay"))

    def test_transcode(self):
        """A trunk allowing only PCMA and telephone-event: the offer has just those; transcoding."""

        async def go():
            names = await self._outbound("PCMA", "transcode", ["pcma", "telephone-event"])
            self.assertEqual(names, ["PCMA", "TELEPHONE-EVENT"])

        return defer.ensureDeferred(go())

    async def _outboundErrors(self):
        session = self.factory.newSession("x", self.listener)
        with self.assertRaises(MediaError):
            await session.sipOffer("v=0\r\n", ["G729"])
        with self.assertRaises(MediaError):
            await session.clientAnswer(b"v=0\r\n")
        session = self.factory.newSession("y", self.listener)
        with self.assertRaises(MediaError):
            await session.sipOffer("garbage")
        browser = Browser()
        self.cleanups.append(browser.close)
        session = self.factory.newSession("z", self.listener)
        self.cleanups.append(session.close)
        offer = await session.sipOffer(await browser.offer())
        with self.assertRaises(MediaError):
            await session.clientAnswer(sipOffer(4000, codecs="18"))
        with self.assertRaises(MediaError):
            await session.clientOffer(sipOffer(4000))
        self.assertIn(b"m=audio", offer)
        await self.factory.closeAll()
        await browser.close()
        self.assertEqual(await self.settle(), self.before)

    def test_outboundErrors(self):
        """No allowed codec, non-SDP, an answer without our codecs, mixing directions: MediaError."""
        return defer.ensureDeferred(self._outboundErrors())


class BridgeReofferTests(BridgeTestsMixin, TestCase):
    """The client's hold as a re-INVITE: reoffer and reofferAnswered (RFC 3264 §8.4)."""

    def checkReoffer(self, body, previous, direction, codecs):
        """C{body} re-offers C{previous}: same o= id, next version, port, address; C{direction}."""
        desc, before = parseSDP(body), parseSDP(previous)
        (_, m), (_, m0) = desc.audio(), before.audio()
        self.assertEqual(desc.origin[1], before.origin[1])
        self.assertEqual(int(desc.origin[2]), int(before.origin[2]) + 1)
        self.assertEqual((m.port, m.address), (m0.port, m0.address))
        self.assertEqual(m.direction, direction)
        self.assertEqual([(c.name, c.payloadType) for c in m.codecs()], codecs)
        self.assertEqual(len(desc.media), len(before.media))
        return body

    async def silentFor(self, phone, seconds=0.3):
        await self.sleep(0.1)
        count = len(phone.received)
        await self.sleep(seconds)
        return len(phone.received) == count

    async def _incoming(self):
        phone = Phone(self.reactor, "PCMU", freq=440)
        self.cleanups.append(phone.stop)
        port = phone.listen()
        session = self.factory.newSession("hold-in", self.listener)
        self.cleanups.append(session.close)
        verifyObject(IReofferMediaSession, session)
        with self.assertRaises(MediaError):
            await session.reoffer(True)
        offer = await session.clientOffer(sipOffer(port, extra="a=sendrecv")
                                          + b"m=video 5000 RTP/AVP 96\r\n")
        browser = Browser(freq=880)
        self.cleanups.append(browser.close)
        answer = await session.sipAnswer(await browser.answer(offer))
        _, m = parseSDP(answer).audio()
        phone.start(("127.0.0.1", m.port))
        await self.sleep(0.6)
        self.assertFalse(await self.silentFor(phone))
        with self.assertRaises(MediaError):
            await session.reofferAnswered(sipOffer(port, extra="a=recvonly"))
        # Hold: sendonly, same port, codec and m= lines, next version.
        held = self.checkReoffer(await session.reoffer(True), answer, "sendonly",
                                 [("PCMU", 0), ("TELEPHONE-EVENT", 101)])
        self.assertIn(b"m=video 0 ", held)
        # Nothing changes before the answer.
        self.assertFalse(await self.silentFor(phone))
        self.assertTrue(await session.reofferAnswered(sipOffer(port, extra="a=recvonly")))
        self.assertTrue(await self.silentFor(phone))
        # Their re-INVITE while we hold: our answer keeps the hold.
        reanswer, farHold = await session.sipReoffer(sipOffer(port)
                                                     + b"m=video 5000 RTP/AVP 96\r\n")
        self.assertFalse(farHold)
        self.checkReoffer(reanswer, held, "sendonly", [("PCMU", 0), ("TELEPHONE-EVENT", 101)])
        self.assertTrue(await self.silentFor(phone))
        # Unhold: sendrecv; audio to the phone again.
        resumed = self.checkReoffer(await session.reoffer(False), reanswer, "sendrecv",
                                    [("PCMU", 0), ("TELEPHONE-EVENT", 101)])
        self.assertFalse(await session.reofferAnswered(sipOffer(port)))
        self.assertFalse(await self.silentFor(phone))
        self.assertEqual(session.mode, "relay")
        # An unusable answer (not our codec) fails and changes nothing.
        await session.reoffer(True)
        with self.assertRaises(MediaError):
            await session.reofferAnswered(sipOffer(port, codecs="8 101", extra="a=recvonly"))
        self.assertFalse(await self.silentFor(phone))
        self.assertEqual(session.stats()["sip"]["codec"], "PCMU")
        self.assertIn(b"a=sendrecv", resumed)
        await defer.maybeDeferred(phone.stop)
        await browser.close()
        await session.close()
        self.assertEqual(await self.settle(), self.before)

    def test_incoming(self):
        """
        An incoming call held and resumed by re-offers: SDP direction,
        o= version, port and m= lines; no audio to SIP while held; the
        SIP side's own re-INVITE does not undo our hold.
        """
        return defer.ensureDeferred(self._incoming())

    async def _outbound(self):
        phone = Phone(self.reactor, "PCMA", freq=440)
        self.cleanups.append(phone.stop)
        port = phone.listen()
        session = self.factory.newSession("hold-out", self.listener)
        self.cleanups.append(session.close)
        browser = Browser(freq=880)
        self.cleanups.append(browser.close)
        offer = await session.sipOffer(await browser.offer())
        answer = phoneAnswer(port, offer, "PCMA")
        await browser.accept(await session.clientAnswer(answer))
        _, m = parseSDP(offer).audio()
        phone.start(("127.0.0.1", m.port))
        # The far end holds us first (we answer recvonly): our hold is then inactive.
        reanswer, farHold = await session.sipReoffer(sipOffer(port, "8 101", extra="a=sendonly"))
        self.assertTrue(farHold)
        self.assertIn(b"a=recvonly", reanswer)
        held = self.checkReoffer(await session.reoffer(True), reanswer, "inactive",
                                 [("PCMA", 8), ("TELEPHONE-EVENT", 101)])
        self.assertTrue(await session.reofferAnswered(sipOffer(port, "8 101", extra="a=inactive")))
        self.assertTrue(await self.silentFor(phone))
        self.checkReoffer(await session.reoffer(False), held, "sendrecv",
                          [("PCMA", 8), ("TELEPHONE-EVENT", 101)])
        self.assertFalse(await session.reofferAnswered(sipOffer(port, "8 101")))
        self.assertFalse(await self.silentFor(phone))
        self.assertEqual(session.mode, "transcode")
        await defer.maybeDeferred(phone.stop)
        await browser.close()
        await session.close()
        self.assertEqual(await self.settle(), self.before)

    def test_outbound(self):
        """
        An outgoing call: the re-offer has only the negotiated codec on
        our offer's port; held by the far end first, our hold is inactive.
        """
        return defer.ensureDeferred(self._outbound())
