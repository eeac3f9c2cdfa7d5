"""
Tests for L{linkrtc.media.phoneside}: a SIP caller and a SIP phone joined
through the bridge (RTP relayed between two plain RTP legs), with Python
RTP phones on 127.0.0.1. Audio is checked by FFT: caller 440 Hz, phone
880 Hz. They need the asyncio reactor (C{trial --reactor=asyncio}).
"""

from twisted.trial.unittest import SynchronousTestCase, TestCase
from zope.interface.verify import verifyObject

from linkrtc.error import MediaError
from linkrtc.interfaces import IPhoneMediaSession
from linkrtc.media.phoneside import RTPRelay
from linkrtc.media.sdp import parseSDP
from linkrtc.media.test.peers import Browser, Phone, dominantFrequency, sipOffer
from linkrtc.media.test.test_bridge import BridgeTestsMixin, lastSeconds


class FakeRTP:
    def __init__(self):
        self.onAudio = None
        self.onDigit = None
        self.relayed = []
        self.digits = []

    def relayAudio(self, marker, ssrc, seq, ts, payload):
        self.relayed.append((seq, payload))

    def sendDigits(self, digits):
        self.digits.append(digits)


class RTPRelayTests(SynchronousTestCase):
    def test_bothWays(self):
        """Audio goes across with no decoding; keys are sent again as events; mute drops the phone's."""
        heard = []
        caller, phone = FakeRTP(), FakeRTP()
        caller.onDigit = heard.append
        relay = RTPRelay(caller, phone)
        relay.start()
        caller.onAudio(0, 0, 1, 160, 0x1, b"a" * 160)
        phone.onAudio(0, 0, 7, 320, 0x2, b"b" * 160)
        self.assertEqual(phone.relayed, [(1, b"a" * 160)])
        self.assertEqual(caller.relayed, [(7, b"b" * 160)])
        caller.onDigit("5")
        phone.onDigit("#")
        self.assertEqual((heard, phone.digits, caller.digits), (["5"], ["5"], ["#"]))
        relay.mute(True)
        phone.onAudio(0, 0, 8, 480, 0x2, b"c")
        self.assertEqual(len(caller.relayed), 1)
        relay.stop()
        self.assertIsNone(caller.onAudio)
        self.assertEqual(caller.onDigit, heard.append)


class PhoneSideTests(BridgeTestsMixin, TestCase):
    async def sipToSip(self, browserFirst=False):
        caller = Phone(self.reactor, "PCMA", freq=440)
        callee = Phone(self.reactor, "PCMA", freq=880)
        for p in (caller, callee):
            self.cleanups.append(p.stop)
        callerPort, calleePort = caller.listen(), callee.listen()
        session = self.factory.newSession("sip-to-sip", self.listener)
        self.cleanups.append(session.close)
        verifyObject(IPhoneMediaSession, session)
        offer = sipOffer(callerPort, "8 0 101")
        if browserFirst:
            await session.clientOffer(offer)
        phoneOffer = await session.phoneOffer(offer)
        self.assertEqual(await session.phoneOffer(offer), phoneOffer)
        _, m = parseSDP(phoneOffer).audio()
        self.assertEqual([c.name for c in m.codecs()], ["PCMA", "TELEPHONE-EVENT"])
        answer = await session.phoneAnswer(sipOffer(calleePort, "8 101"))
        self.assertEqual(session.mode, "sip")
        self.assertIsNone(session.leg)
        _, a = parseSDP(answer).audio()
        self.assertEqual(a.codecs()[0].name, "PCMA")
        caller.start(("127.0.0.1", a.port))
        callee.start(("127.0.0.1", m.port))
        await self.sleep(1.2)
        return session, caller, callee

    async def test_audioBothWays(self):
        """Each side hears the other's tone, relayed without decoding."""
        session, caller, callee = await self.sipToSip()
        self.assertAlmostEqual(dominantFrequency(lastSeconds(callee.heard, 8000, 0.4), 8000),
                               440, delta=20)
        self.assertAlmostEqual(dominantFrequency(lastSeconds(caller.heard, 8000, 0.4), 8000),
                               880, delta=20)
        stats = session.stats()
        self.assertEqual(stats["mode"], "sip")
        self.assertEqual(stats["phone"]["codec"], "PCMA")
        await session.close()
        await caller.stop()
        await callee.stop()
        self.assertEqual(await self.settle(), self.before)

    async def test_browserOfferedToo(self):
        """A browser leg offered beside the phones is closed when the phone answers."""
        session, caller, callee = await self.sipToSip(browserFirst=True)
        self.assertAlmostEqual(dominantFrequency(lastSeconds(callee.heard, 8000, 0.4), 8000),
                               440, delta=20)
        await session.close()
        await caller.stop()
        await callee.stop()
        self.assertEqual(await self.settle(), self.before)

    async def test_noCommonCodec(self):
        """A phone answering with a codec that was not offered: MediaError."""
        session = self.factory.newSession("bad", self.listener)
        self.cleanups.append(session.close)
        await session.phoneOffer(sipOffer(40000, "0 101"))
        with self.assertRaises(MediaError):
            await session.phoneAnswer(sipOffer(40002, "8"))

    async def offerlessAnswered(self, browserFirst=False):
        """
        An offerless INVITE answered by a phone: @return: C{(session,
        phone offer, our offer to the caller)}.
        """
        session = self.factory.newSession("offerless", self.listener)
        self.cleanups.append(session.close)
        if browserFirst:
            await session.clientOffer(None)
        phoneOffer = await session.phoneOffer(None)
        self.assertEqual(await session.phoneOffer(None), phoneOffer)
        _, m = parseSDP(phoneOffer).audio()
        self.assertEqual([c.name for c in m.codecs()], ["PCMU", "PCMA", "G722", "TELEPHONE-EVENT"])
        return session, phoneOffer

    async def test_offerlessAudioBothWays(self):
        """
        An offerless INVITE: the phones get every relayable codec; the
        phone's choice (PCMA) is the only codec of our offer to the caller
        (the 200 OK); the caller's answer in the ACK joins the relay, and
        each side hears the other's tone. A browser leg offered beside the
        phones is closed.
        """
        caller = Phone(self.reactor, "PCMA", freq=440)
        callee = Phone(self.reactor, "PCMA", freq=880)
        for p in (caller, callee):
            self.cleanups.append(p.stop)
        callerPort, calleePort = caller.listen(), callee.listen()
        session, phoneOffer = await self.offerlessAnswered(browserFirst=True)
        _, m = parseSDP(phoneOffer).audio()
        offer = await session.phoneAnswer(sipOffer(calleePort, "8 101"))
        self.assertEqual(session.mode, "sip")
        self.assertIsNone(session.leg)
        self.assertIsNone(session.earlyAnswer())
        _, a = parseSDP(offer).audio()
        self.assertEqual([c.name for c in a.codecs()], ["PCMA", "TELEPHONE-EVENT"])
        self.assertEqual(a.direction, "sendrecv")
        self.assertIsNone(await session.sipAckBody(sipOffer(callerPort, "8 101")))
        caller.start(("127.0.0.1", a.port))
        callee.start(("127.0.0.1", m.port))
        await self.sleep(1.2)
        self.assertAlmostEqual(dominantFrequency(lastSeconds(callee.heard, 8000, 0.4), 8000),
                               440, delta=20)
        self.assertAlmostEqual(dominantFrequency(lastSeconds(caller.heard, 8000, 0.4), 8000),
                               880, delta=20)
        stats = session.stats()
        self.assertEqual((stats["mode"], stats["phone"]["codec"]), ("sip", "PCMA"))
        await session.close()
        await caller.stop()
        await callee.stop()
        self.assertEqual(await self.settle(), self.before)

    async def test_offerlessUnusableAck(self):
        """
        An offerless INVITE a phone answered with PCMU: an ACK answering
        with another codec (or no audio) fails (the call ends, 488); no
        telephone-event offered to the caller when the phone took none.
        """
        session, _ = await self.offerlessAnswered()
        offer = await session.phoneAnswer(sipOffer(40002, "0"))
        _, a = parseSDP(offer).audio()
        self.assertEqual([c.name for c in a.codecs()], ["PCMU"])
        with self.assertRaises(MediaError):
            await session.sipAckBody(sipOffer(40000, "8 101"))
        with self.assertRaises(MediaError):
            await session.sipAckBody(b"v=0\r\n")
        await session.close()
        self.assertEqual(await self.settle(), self.before)

    async def test_offerlessPhoneCodecRefused(self):
        """A phone answering an offerless INVITE with a codec not offered: MediaError."""
        session, _ = await self.offerlessAnswered()
        with self.assertRaises(MediaError):
            await session.phoneAnswer(sipOffer(40002, "111"))
        await session.close()
        self.assertEqual(await self.settle(), self.before)

    async def test_browserWins(self):
        """A browser answers: the phones' port pair is given back at close."""
        session = self.factory.newSession("browser-wins", self.listener)
        self.cleanups.append(session.close)
        offer = sipOffer(40000, "0 101")
        clientOffer = await session.clientOffer(offer)
        await session.phoneOffer(offer)
        browser = Browser(freq=880)
        self.cleanups.append(browser.close)
        await session.sipAnswer(await browser.answer(clientOffer))
        self.assertEqual(self.factory.allocator.portsInUse(), 2)  # the caller's pair only
        with self.assertRaises(MediaError):
            await session.phoneAnswer(sipOffer(40002, "0"))
        await session.close()
        await browser.close()
        self.assertEqual(await self.settle(), self.before)


class PhoneReofferTests(BridgeTestsMixin, TestCase):
    """
    The answering phone's re-offers (L{PhoneSide.phoneReoffer}): the SDP
    answers and the phone side's RTP state only, no audio (no sleeps).
    """

    async def answered(self):
        session = self.factory.newSession("reoffer", self.listener)
        self.cleanups.append(session.close)
        offer = await session.phoneOffer(sipOffer(40000, "8 0 101"))
        await session.phoneAnswer(sipOffer(40002, "8 101"))
        return session, offer

    async def test_holdResume(self):
        """
        sendonly -> recvonly, then sendrecv -> sendrecv: LinkRTC's address,
        port and codec as offered, the o= version up by one only when the
        SDP changes (RFC 3264 §8); no RTP to the phone while it holds.
        """
        session, offer = await self.answered()
        _, ours = parseSDP(offer).audio()
        self.assertEqual(session.phoneSdp(), offer)
        answer, hold = await session.phoneReoffer(sipOffer(40002, "8 101", "a=sendonly"))
        self.assertTrue(hold)
        desc = parseSDP(answer)
        _, m = desc.audio()
        self.assertEqual((m.direction, m.port, m.address), ("recvonly", ours.port, ours.address))
        self.assertEqual([c.name for c in m.codecs()], ["PCMA", "TELEPHONE-EVENT"])
        self.assertEqual(desc.origin[1:3], [parseSDP(offer).origin[1], "1"])
        self.assertFalse(session._phoneRtp.sending)
        self.assertEqual(session.phoneSdp(), answer)
        again, hold = await session.phoneReoffer(sipOffer(40002, "8 101", "a=sendonly"))
        self.assertEqual(again, answer)
        resumed, hold = await session.phoneReoffer(sipOffer(40002, "8 101", "a=sendrecv"))
        self.assertFalse(hold)
        desc = parseSDP(resumed)
        self.assertEqual(desc.audio()[1].direction, "sendrecv")
        self.assertEqual(desc.origin[2], "2")
        self.assertTrue(session._phoneRtp.sending)
        self.assertEqual(session._phoneRtp.remote, ("127.0.0.1", 40002))

    async def test_refreshUnchanged(self):
        """The phone re-offers what it answered (a refresh with SDP): our SDP, version 0, again."""
        session, offer = await self.answered()
        answer, hold = await session.phoneReoffer(sipOffer(40002, "8 101"))
        self.assertFalse(hold)
        self.assertEqual(answer, offer)

    async def test_inactiveAndNewAddress(self):
        """inactive -> inactive; a new address and port are followed."""
        session, offer = await self.answered()
        answer, hold = await session.phoneReoffer(
            sipOffer(40010, "8", "a=inactive", address="127.0.0.2"))
        self.assertTrue(hold)
        _, m = parseSDP(answer).audio()
        self.assertEqual(m.direction, "inactive")
        self.assertEqual([c.name for c in m.codecs()], ["PCMA"])
        self.assertEqual(session._phoneRtp.remote, ("127.0.0.2", 40010))
        self.assertFalse(session._phoneRtp.sending)

    async def test_codecChangeRefused(self):
        """A re-offer without the relayed codec: MediaError (488), the media unchanged."""
        session, offer = await self.answered()
        with self.assertRaises(MediaError):
            await session.phoneReoffer(sipOffer(40010, "0 101", "a=sendonly"))
        self.assertEqual(session.phoneSdp(), offer)
        self.assertEqual(session._phoneRtp.remote, ("127.0.0.1", 40002))
        self.assertTrue(session._phoneRtp.sending)
        self.assertEqual(session._phoneCodec.name, "PCMA")

    async def test_beforeAnswer(self):
        """No re-offer before a phone answered."""
        session = self.factory.newSession("early", self.listener)
        self.cleanups.append(session.close)
        await session.phoneOffer(sipOffer(40000, "8 0 101"))
        with self.assertRaises(MediaError):
            await session.phoneReoffer(sipOffer(40002, "8 101"))
