"""
Tests of L{linkrtc.media.ringback} (frequencies and cadence by FFT, on a
L{task.Clock}) and of the bridge's early media with real peers: 183's SDP
then the same in the 200 OK, the caller hearing the ringback until the
client answers.
"""

import numpy
from twisted.internet import defer, task
from twisted.trial.unittest import SynchronousTestCase, TestCase

from linkrtc.media import ringback
from linkrtc.media.actions import RTPAudio
from linkrtc.media.actions.pcm import ulawDecode
from linkrtc.media.bridge import BridgeMediaFactory
from linkrtc.media.sdp import parseSDP
from linkrtc.media.test.peers import Browser, Phone, dominantFrequency, sipOffer
from linkrtc.media.test.test_bridge import BridgeTestsMixin, lastSeconds


class FakeRTP:
    """An L{RTPSession} stand-in that keeps what is sent: C{(time, payload, step)}."""

    def __init__(self, clock):
        self.clock = clock
        self.sent = []
        self.onAudio = None
        self.event = None

    def sendAudio(self, payload, samples, marker=False):
        self.sent.append((self.clock.seconds(), payload, samples))


def peaks(samples, rate, count=2):
    """@return: the C{count} strongest frequencies (Hz, sorted) of C{samples}."""
    spectrum = numpy.abs(numpy.fft.rfft(samples.astype(numpy.float64)
                                        * numpy.hanning(len(samples))))
    spectrum[0] = 0
    found = []
    for _ in range(count):
        i = int(numpy.argmax(spectrum))
        found.append(i * rate / len(samples))
        spectrum[max(0, i - 5):i + 6] = 0
    return sorted(found)


class TonePlanTests(SynchronousTestCase):
    def test_plans(self):
        """Every plan starts on, its cadence pairs on/off, and its frequencies are audible."""
        for name, plan in ringback.TONE_PLANS.items():
            self.assertEqual(len(plan.cadence) % 2, 0, name)
            self.assertTrue(all(300 <= f <= 500 for f in plan.frequencies), name)
        self.assertEqual(ringback.tonePlan("US"), ringback.TonePlan((440, 480), (2.0, 4.0)))
        self.assertRaises(ValueError, ringback.tonePlan, "atlantis")

    def test_samples(self):
        """One cycle: the on periods hold the plan's frequencies, the off ones silence."""
        plan = ringback.tonePlan("uk")
        samples = ringback.toneSamples(plan, 8000)
        self.assertEqual(len(samples), int(plan.period * 8000))
        self.assertEqual(peaks(samples[:3200], 8000), [400.0, 450.0])
        self.assertEqual(numpy.abs(samples[3200:4800]).max(), 0)
        self.assertEqual(peaks(samples[4800:8000], 8000), [400.0, 450.0])
        self.assertEqual(numpy.abs(samples[8000:]).max(), 0)

    def test_samplesCached(self):
        """
        The fast path: a tone's cycle is computed once per plan and rate
        and shared, read-only, by every call that plays it.
        """
        plan = ringback.tonePlan("us")
        first = ringback.toneSamples(plan, 48000)
        self.assertIs(ringback.toneSamples(ringback.tonePlan("us"), 48000), first)
        self.assertIsNot(ringback.toneSamples(plan, 8000), first)
        self.assertFalse(first.flags.writeable)
        self.assertRaises(ValueError, first.__setitem__, 0, 1)


class RingbackPlayTests(SynchronousTestCase):
    """The tone played on a SIP leg, 20 ms frames paced by the clock."""

    def play(self, name, seconds, codec="PCMU"):
        clock = task.Clock()
        rtp = FakeRTP(clock)
        audio = RTPAudio(clock, rtp, codec)
        action = ringback.Ringback(audio, ringback.tonePlan(name))
        d = audio.runAction(action)
        for _ in range(int(round(seconds / 0.02))):
            clock.advance(0.02)
        return clock, rtp, audio, action, d

    def test_usCadence(self):
        """
        "us": 440 + 480 Hz for 2 s, silence for 4 s, again: one frame each
        20 ms of the clock, found by FFT in each second of the on periods.
        """
        clock, rtp, audio, action, d = self.play("us", 12.0)
        self.assertEqual(len(rtp.sent), 601)  # the first at once, then one per 20 ms
        self.assertEqual({step for _, _, step in rtp.sent}, {160})
        times = [t for t, _, _ in rtp.sent]
        self.assertEqual(numpy.diff(times).round(6).tolist(), [0.02] * 600)
        pcm = numpy.concatenate([ulawDecode(p) for _, p, _ in rtp.sent])
        second = 8000
        for start in (0, 1, 6, 7):  # on: 0-2 s and 6-8 s
            self.assertEqual(peaks(pcm[start * second:(start + 1) * second], 8000),
                             [440.0, 480.0], start)
        for start in (2, 3, 4, 5, 8, 9, 10, 11):  # off: 2-6 s and 8-12 s
            self.assertLess(numpy.abs(pcm[start * second:(start + 1) * second]).max(), 16)
        self.assertTrue(audio.busy)
        action.stop()
        sent = len(rtp.sent)
        clock.advance(1)
        self.assertEqual(len(rtp.sent), sent)
        self.assertFalse(audio.busy)
        self.assertIsNone(self.successResultOf(d)["error"])

    def test_deCadence(self):
        """"de": 425 Hz, 1 s on and 4 s off (E.180 Supplement 2)."""
        clock, rtp, audio, action, d = self.play("de", 10.0, "PCMA")
        from linkrtc.media.actions.pcm import alawDecode

        pcm = numpy.concatenate([alawDecode(p) for _, p, _ in rtp.sent])
        self.assertAlmostEqual(dominantFrequency(pcm[:8000], 8000), 425, delta=2)
        self.assertLess(numpy.abs(pcm[8000 + 80:5 * 8000]).max(), 16)
        self.assertAlmostEqual(dominantFrequency(pcm[5 * 8000:6 * 8000], 8000), 425, delta=2)
        action.stop()


class EarlyMediaBridgeTests(BridgeTestsMixin, TestCase):
    """C{earlyAnswer} on a bridged incoming call, with real peers."""

    def test_ringbackThenAnswer(self):
        """
        The 183's SDP (our RTP port, the offer's codec) and the 200 OK's are
        the same bytes; the caller hears 440 + 480 Hz before the answer and
        the browser's tone after it.
        """

        async def go():
            phone = Phone(self.reactor, "PCMU", freq=440)
            self.cleanups.append(phone.stop)
            port = phone.listen()
            session = self.factory.newSession("early", self.listener)
            self.cleanups.append(session.close)
            offer = await session.clientOffer(sipOffer(port, "0 101"))
            early = session.earlyAnswer()
            self.assertIs(session.earlyAnswer(), early)
            m = parseSDP(early).audio()[1]
            self.assertEqual(m.codecs()[0].name, "PCMU")
            self.assertTrue(session.ringing)
            await self.sleep(1.2)
            ring = numpy.concatenate(phone.heard)
            self.assertGreater(len(ring), 6000)
            self.assertEqual(peaks(ring[-6000:], 8000), [440.0, 480.0])
            browser = Browser(freq=880)
            self.cleanups.append(browser.close)
            answer = await session.sipAnswer(await browser.answer(offer))
            self.assertEqual(answer, early)
            self.assertFalse(session.ringing)
            self.assertEqual(session.mode, "relay")
            heard = len(phone.heard)
            await self.sleep(1.4)
            after = numpy.concatenate(phone.heard[heard:])
            self.assertAlmostEqual(dominantFrequency(lastSeconds([after], 8000, 0.6), 8000), 880,
                                   delta=20)

        return defer.ensureDeferred(go())

    def test_off(self):
        """C{earlyMedia=False}: no early answer (a 180), no port taken."""
        factory = BridgeMediaFactory(self.reactor, rtpPorts=(self.factory.allocator.low,
                                                             self.factory.allocator.high),
                                     iceAddresses=["127.0.0.1"], earlyMedia=False)
        session = factory.newSession("no-early", self.listener)
        self.cleanups.append(session.close)

        async def go():
            await session.clientOffer(sipOffer(4000, "0 101"))
            self.assertIsNone(session.earlyAnswer())
            self.assertEqual(factory.allocator.inUse, set())

        return defer.ensureDeferred(go())

    def test_unknownTone(self):
        self.assertRaises(ValueError, BridgeMediaFactory, self.reactor, ringbackTone="xx")
