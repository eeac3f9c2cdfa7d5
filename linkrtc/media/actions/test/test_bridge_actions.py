"""
The actions on L{BridgeSession}s: C{answerLocally} (fake reactor and
task.Clock), and C{audio()} on bridged calls with real peers (an aiortc
browser sending 880 Hz, an RTP phone sending 440 Hz): a prompt played to
the SIP side replaces the browser's audio while it plays and the browser
is heard again afterwards.
"""


import numpy
from twisted.internet import defer
from twisted.internet.task import Clock
from twisted.trial.unittest import SynchronousTestCase, TestCase
from zope.interface.verify import verifyObject

from linkrtc.error import MediaError
from linkrtc.interfaces import ICallAudio
from linkrtc.media.actions.test.fakes import FakeTransport, dominant, readWav, tone, writeWav
from linkrtc.media.bridge import BridgeMediaFactory
from linkrtc.media.relay import PacketRelay
from linkrtc.media.rtp import parseRTP
from linkrtc.media.sdp import parseSDP
from linkrtc.media.test.peers import sipOffer
from linkrtc.media.test.test_bridge import BridgeTestsMixin, Listener


class FakePort:
    def __init__(self, port):
        self.port = port

    def getHost(self):
        return self

    def stopListening(self):
        pass


class FakeReactor(Clock):
    """A clock that binds UDP ports to fake transports."""

    def __init__(self):
        Clock.__init__(self)
        self.transports = {}
        self.triggers = []

    def listenUDP(self, port, protocol, interface="", maxPacketSize=8192):
        transport = FakeTransport()
        protocol.makeConnection(transport)
        self.transports[port] = transport
        return FakePort(port)

    def addSystemEventTrigger(self, *args):
        self.triggers.append(args)
        return len(self.triggers)

    def removeSystemEventTrigger(self, trigger):
        pass


class AnswerLocallyTests(SynchronousTestCase):
    def setUp(self):
        self.reactor = FakeReactor()
        self.factory = BridgeMediaFactory(self.reactor, rtpPorts=(40000, 40009),
                                          rtpInterface="127.0.0.1")
        self.session = self.factory.newSession("app-1", Listener())

    def test_answerSDP(self):
        """Our RTP answers the offer: its first of PCMU/PCMA, telephone-event, our port."""
        self.assertRaises(MediaError, self.session.audio)
        body = self.successResultOf(self.session.answerLocally(sipOffer(4000, "9 8 0 101")))
        self.assertIsInstance(body, bytes)
        index, m = parseSDP(body).audio()
        self.assertEqual(m.address, ("IP4", "127.0.0.1"))
        self.assertEqual(m.port, 40000)
        self.assertEqual([c.name for c in m.codecs()], ["PCMA", "TELEPHONE-EVENT"])
        self.assertEqual(m.direction, "sendrecv")
        self.assertEqual(self.session.mode, "local")
        self.assertIsNone(self.session.leg)
        audio = self.session.audio()
        self.assertTrue(verifyObject(ICallAudio, audio))
        self.assertIs(self.session.audio(), audio)
        self.assertEqual(audio.rate, 8000)

    def test_playsToThePhone(self):
        path = self.mktemp() + ".wav"
        writeWav(path, tone(1000, 8000, 4000), 8000)
        self.successResultOf(self.session.answerLocally(sipOffer(4000, "0 101")))
        done = []
        self.session.audio().play(path).addCallback(done.append)
        for _ in range(30):
            self.reactor.advance(0.02)
        self.assertEqual(done[0]["error"], None)
        written = self.reactor.transports[40000].written
        self.assertEqual({addr for data, addr in written}, {("127.0.0.1", 4000)})
        packets = [parseRTP(data) for data, addr in written]
        self.assertEqual({p[1] for p in packets}, {0})
        self.assertEqual(len(packets), 25)

    def test_refused(self):
        """No shared codec, or media already set up: MediaError; G.722 on request."""
        self.failureResultOf(self.session.answerLocally(sipOffer(4000, "9 101")), MediaError)
        other = self.factory.newSession("app-2", Listener())
        self.successResultOf(other.answerLocally(sipOffer(4002, "9 101"),
                                                 codecs=("PCMU", "PCMA", "G722")))
        self.assertEqual(other.audio().rate, 16000)
        self.failureResultOf(other.answerLocally(sipOffer(4002, "0 101")), MediaError)
        self.failureResultOf(other.clientOffer(sipOffer(4002, "0 101")), MediaError)
        self.failureResultOf(other.sipOffer("v=0\r\n"), MediaError)
        self.assertEqual(other.mode, "local")

    def test_closeEndsActions(self):
        self.successResultOf(self.session.answerLocally(sipOffer(4000, "0 101")))
        done = []
        self.session.audio().receiveDigits().addCallback(done.append)
        self.session.close()
        self.assertEqual(done[0]["error"], "the call ended")
        self.assertRaises(MediaError, self.session.audio)

    def test_digitsReachActionAndListener(self):
        self.successResultOf(self.session.answerLocally(sipOffer(4000, "0 101")))
        done = []
        self.session.audio().receiveDigits(maxKeys=1).addCallback(done.append)
        self.session.rtp.onDigit("7")
        self.assertEqual(done[0]["keys"], "7")
        self.assertEqual(self.session.listener.digits, ["7"])


class FakeTap:
    onPacket = None
    audioPT = 0
    connected = False


class RelayMuteTests(SynchronousTestCase):
    def test_mute(self):
        """PacketRelay.mute swaps the tap's handler: the browser's packets are dropped, then relayed."""
        relayed = []

        class RTP:
            onAudio = None

            def relayAudio(self, *args):
                relayed.append(args)

        tap = FakeTap()
        relay = PacketRelay(Clock(), RTP(), tap)
        relay.start()
        tap.onPacket(0, 0, 1, 160, 1, b"\xff")
        relay.mute(True)
        tap.onPacket(0, 0, 2, 320, 1, b"\xff")
        relay.mute(False)
        tap.onPacket(0, 0, 3, 480, 1, b"\xff")
        self.assertEqual([r[2] for r in relayed], [1, 3])
        self.assertEqual(relay.webrtcPackets, 3)
        relay.stop()
        self.assertIsNone(tap.onPacket)


class BridgedActionTests(BridgeTestsMixin, TestCase):
    """audio() on bridged calls with real peers."""

    def heardSince(self, phone, start):
        return numpy.concatenate(phone.heard[start:]) if len(phone.heard) > start else numpy.zeros(8)

    async def _promptReplacesBrowser(self, codecs, phoneCodec, mode):
        path = self.mktemp() + ".wav"
        writeWav(path, tone(1500, 16000, 16000), 16000)
        recording = self.mktemp() + ".wav"
        session, phone, browser = await self.bridged(codecs, phoneCodec, mode)
        audio = session.audio()
        start = len(phone.heard)
        played = await audio.play(path)
        self.assertEqual(played["error"], None)
        during = self.heardSince(phone, start)[phone.rate // 5:]
        self.assertTrue(abs(dominant(during, phone.rate) - 1500) <= 20)
        # The browser's 880 Hz is replaced, not mixed.
        spectrum = numpy.abs(numpy.fft.rfft(during * numpy.hanning(len(during))))
        freqs = numpy.fft.rfftfreq(len(during), 1.0 / phone.rate)
        self.assertLess(spectrum[numpy.abs(freqs - 880) < 20].max(),
                        spectrum[numpy.abs(freqs - 1500) < 20].max() / 30)
        # Recording the SIP side while bridged; the browser is heard again.
        start = len(phone.heard)
        recorded = await audio.record(recording, maxSeconds=0.6)
        self.assertEqual(recorded["error"], "max_seconds reached")
        samples, rate, _ = readWav(recording)
        self.assertTrue(abs(dominant(samples[rate // 5:], rate) - 440) <= 20)
        after = self.heardSince(phone, start)[phone.rate // 5:]
        self.assertTrue(abs(dominant(after, phone.rate) - 880) <= 20)
        browserHeard = numpy.concatenate(browser.heard[-20:])
        self.assertTrue(abs(dominant(browserHeard, browser.rate) - 440) <= 20)

    def test_relay(self):
        """Relay mode: the prompt replaces the browser's audio, which comes back after."""
        return defer.ensureDeferred(self._promptReplacesBrowser("0 101", "PCMU", "relay"))

    def test_transcode(self):
        """Transcoding mode (PCMA/Opus): the same."""
        return defer.ensureDeferred(self._promptReplacesBrowser("8 101", "PCMA", "transcode"))
