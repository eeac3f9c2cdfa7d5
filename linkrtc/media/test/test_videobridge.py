"""
Video through L{linkrtc.media.bridge} with a real aiortc "browser" on
127.0.0.1 (C{trial --reactor=asyncio}; skipped otherwise): the SIP
offer's video is offered to the browser, answered on the SIP side, and
RTP and RTCP feedback are relayed without decoding. The test browser
counts the video packets at its DTLS transport (its own decoder is kept
out: the payloads are not real VP8).
"""

import random
import struct

from twisted.internet import defer
from twisted.internet.error import CannotListenError
from twisted.internet.protocol import DatagramProtocol
from twisted.trial.unittest import TestCase

from linkrtc import metrics
from linkrtc.media.rtp import buildHeader
from linkrtc.media.sdp import parseSDP, videoStream
from linkrtc.media.test.peers import Browser, Phone, sipOffer
from linkrtc.media.test.test_bridge import BridgeTestsMixin
from linkrtc.media.video import FMT_PLI, RTCP_PSFB, feedbackMessages, feedbackPacket
from linkrtc.media.webrtc import drive

PHONE_SSRC = 0x0BADCAFE
BROWSER_SSRC = 0x0B0B0B0B

VIDEO = "\r\n".join([
    "m=video %d RTP/AVP 100 31",
    "a=rtpmap:100 VP8/90000",
    "a=rtpmap:31 H261/90000",
    "a=rtcp-fb:100 nack",
    "a=rtcp-fb:100 nack pli",
    "a=rtcp-fb:100 ccm fir",
])


class Collector(DatagramProtocol):
    def __init__(self):
        self.got = []

    def datagramReceived(self, data, addr):
        self.got.append(data)


class VideoPhone:
    """The SIP phone's video: RTP and RTCP sockets on an even/odd pair."""

    def __init__(self, reactor):
        self.rtp, self.rtcp = Collector(), Collector()
        for _ in range(50):
            port = random.randrange(40000, 60000, 2)
            try:
                self.rtpPort = reactor.listenUDP(port, self.rtp, interface="127.0.0.1")
            except CannotListenError:
                continue
            try:
                self.rtcpPort = reactor.listenUDP(port + 1, self.rtcp, interface="127.0.0.1")
            except CannotListenError:
                self.rtpPort.stopListening()
                continue
            self.port = port
            return
        raise RuntimeError("no port pair")

    def stop(self):
        return defer.DeferredList([defer.maybeDeferred(self.rtpPort.stopListening),
                                   defer.maybeDeferred(self.rtcpPort.stopListening)])


class VideoBrowser(Browser):
    """An aiortc browser whose video packets are counted, not decoded; it may decline video."""

    def __init__(self, declineVideo=False, offerVideo=False):
        super().__init__(freq=880)
        self.declineVideo = declineVideo
        self.video = []
        if offerVideo:
            self.pc.addTransceiver("video", direction="sendrecv")

    def countVideo(self):
        """Count the video packets at the DTLS transport instead of decoding them."""
        dtls = self.transceiver.sender.transport
        original = dtls._handle_rtp_data

        async def counted(data, arrival_time_ms):
            if data[1] & 0x7F == self.videoPT:
                self.video.append(data)
            else:
                await original(data, arrival_time_ms)

        dtls._handle_rtp_data = counted

    def offer(self):
        self.countVideo()
        return super().offer()

    def answer(self, offerSdp):
        from aiortc import RTCSessionDescription

        from linkrtc.media.webrtc import aio

        async def go():
            await self.pc.setRemoteDescription(RTCSessionDescription(offerSdp, "offer"))
            for transceiver in self.pc.getTransceivers():
                if transceiver.kind == "video" and self.declineVideo:
                    transceiver.direction = "inactive"
            await self.pc.setLocalDescription(await self.pc.createAnswer())
            self.countVideo()
            return self.pc.localDescription.sdp

        return aio(go())

    @property
    def videoPT(self):
        for transceiver in self.pc.getTransceivers():
            if transceiver.kind == "video" and transceiver._codecs:
                return transceiver._codecs[0].payloadType
        return None

    def sendRaw(self, packet):
        drive(self.transceiver.sender.transport._send_rtp(packet))


class BridgeVideoTests(BridgeTestsMixin, TestCase):

    async def offered(self, browser, video=VIDEO):
        phone = Phone(self.reactor, "PCMU", freq=440)
        self.cleanups.append(phone.stop)
        audioPort = phone.listen()
        videoPhone = VideoPhone(self.reactor)
        self.cleanups.append(videoPhone.stop)
        session = self.factory.newSession("video", self.listener)
        self.cleanups.append(session.close)
        offer = await session.clientOffer(sipOffer(audioPort, "0 101",
                                                   extra=video % (videoPhone.port,)))
        self.cleanups.append(browser.close)
        answer = await session.sipAnswer(await browser.answer(offer))
        phone.start(("127.0.0.1", parseSDP(answer).audio()[1].port))
        self.phones = (phone, videoPhone)
        return session, offer, parseSDP(answer), videoPhone

    async def released(self, browser, session):
        """Close everything; the resources are back to what they were."""
        for phone in self.phones:
            await defer.maybeDeferred(phone.stop)
        await browser.close()
        await session.close()
        self.assertEqual(await self.settle(), self.before)

    async def _relayed(self):
        browser = VideoBrowser()
        session, offer, answer, phone = await self.offered(browser)
        # The browser was offered VP8 only: no H.261, no RTX, bundled.
        video = offer[offer.index("m=video"):]
        self.assertIn("VP8/90000", video)
        self.assertNotIn("rtx", video)
        self.assertNotIn("H261", video)
        self.assertIn("a=group:BUNDLE 0 1", offer)
        ourSSRC = session.leg.videoSSRC
        self.assertIn("a=ssrc:%d " % (ourSSRC,), video)

        # The SIP answer takes video: VP8 on the offer's PT 100, its feedback.
        index, m = videoStream(answer)
        self.assertEqual((index, m.formats, m.direction), (1, ["100"], "recvonly"))
        self.assertEqual(m.rtcpFeedback["100"], ["nack", "nack pli", "ccm fir"])
        self.assertEqual(answer.media[0].media, "audio")

        before = metrics.REGISTRY.get_sample_value(
            "linkrtc_video_packets_total", {"direction": "to_browser"}) or 0
        await self.exchange(session, browser, phone, m.port, ourSSRC, 100)
        await self.released(browser, session)
        self.assertEqual(metrics.REGISTRY.get_sample_value(
            "linkrtc_video_packets_total", {"direction": "to_browser"}), before + 5)

    async def exchange(self, session, browser, phone, sipPort, ourSSRC, sipPT):
        """
        Video both ways between C{phone} (sending to LinkRTC's C{sipPort})
        and C{browser}, and the browser's PLI to the phone.
        """
        for _ in range(100):
            if session.tap.connected and browser.transceiver.sender.transport.state == "connected":
                break
            await self.sleep(0.05)
        # SIP -> browser: PT mapped, our announced SSRC, payload untouched.
        for i in range(5):
            phone.rtpPort.write(buildHeader(0, sipPT, 100 + i, 9000 * i, PHONE_SSRC)
                                + b"\x10vp8-%d" % i, ("127.0.0.1", sipPort))
        # browser -> SIP (the browser's own video PT), and a PLI on our stream.
        for i in range(3):
            browser.sendRaw(buildHeader(0, browser.videoPT, 7 + i, 3000 * i, BROWSER_SSRC)
                            + b"\x10cam")
        for _ in range(40):
            await self.sleep(0.05)
            if len(browser.video) >= 5 and len(phone.rtp.got) >= 3:
                break
        browser.sendRaw(feedbackPacket(RTCP_PSFB, FMT_PLI, BROWSER_SSRC, ourSSRC, b""))
        for _ in range(40):
            await self.sleep(0.05)
            if any(feedbackMessages(p)[0][3] == PHONE_SSRC for p in phone.rtcp.got
                   if feedbackMessages(p) and session.stats()["video"]["feedbackToSIP"]):
                break

        self.assertEqual(len(browser.video), 5)
        for i, packet in enumerate(browser.video):
            self.assertEqual(struct.unpack_from("!I", packet, 8)[0], ourSSRC)
            self.assertTrue(packet.endswith(b"\x10vp8-%d" % i))
        self.assertEqual(len(phone.rtp.got), 3)
        self.assertEqual({p[1] & 0x7F for p in phone.rtp.got}, {sipPT})
        self.assertTrue(all(p.endswith(b"\x10cam") for p in phone.rtp.got))
        # The start PLI (key frame) and the browser's PLI, both naming the phone's SSRC.
        plis = [feedbackMessages(p) for p in phone.rtcp.got]
        self.assertGreaterEqual(len(plis), 2)
        for [(packetType, fmt, sender, media, fci)] in plis:
            self.assertEqual((packetType, fmt, media), (RTCP_PSFB, FMT_PLI, PHONE_SSRC))

        stats = session.stats()["video"]
        self.assertEqual((stats["codec"], stats["sipPackets"], stats["webrtcPackets"],
                          stats["feedbackToSIP"]), ("VP8", 5, 3, 1))

    def test_relayed(self):
        """VP8 both ways and the browser's PLI to SIP, undecoded; all released."""
        return defer.ensureDeferred(self._relayed())

    async def _declined(self):
        browser = VideoBrowser(declineVideo=True)
        session, offer, answer, phone = await self.offered(browser)
        self.assertIn("m=video", offer)
        self.assertEqual(answer.media[1].port, 0)
        self.assertNotIn("video", session.stats())
        await self.released(browser, session)

    def test_declined(self):
        """The browser declines video (inactive): the SIP answer rejects it (port 0)."""
        return defer.ensureDeferred(self._declined())

    async def _unsupported(self):
        only261 = VIDEO.replace("RTP/AVP 100 31", "RTP/AVP 31")
        session, offer, answer, phone = await self.offered(VideoBrowser(), only261)
        self.assertNotIn("m=video", offer)
        self.assertEqual((answer.media[1].media, answer.media[1].port), ("video", 0))

    def test_unsupported(self):
        """Video in a format we do not relay (H.261): not offered, rejected (port 0)."""
        return defer.ensureDeferred(self._unsupported())

    async def _outbound(self):
        phone = Phone(self.reactor, "PCMU", freq=440)
        self.cleanups.append(phone.stop)
        audioPort = phone.listen()
        videoPhone = VideoPhone(self.reactor)
        self.cleanups.append(videoPhone.stop)
        self.phones = (phone, videoPhone)
        browser = VideoBrowser(offerVideo=True)
        self.cleanups.append(browser.close)
        session = self.factory.newSession("video-out", self.listener)
        self.cleanups.append(session.close)
        offer = parseSDP(await session.sipOffer(await browser.offer()))
        # The INVITE offers VP8 (PT 96) with NACK, PLI and FIR after the audio.
        index, m = videoStream(offer)
        self.assertEqual((index, m.formats, m.rtpmap[96][0], m.direction),
                         (1, ["96"], "VP8", "sendrecv"))
        self.assertEqual(m.rtcpFeedback["96"], ["nack", "nack pli", "ccm fir"])
        # The phone answers video on its own payload type number.
        answer = sipOffer(audioPort, "0 101", extra=VIDEO.replace("100", "98") % (videoPhone.port,))
        webrtcAnswer = await session.clientAnswer(answer)
        self.assertIn("a=rtpmap:97 VP8/90000", webrtcAnswer)
        await browser.accept(webrtcAnswer)
        phone.start(("127.0.0.1", offer.audio()[1].port))
        await self.exchange(session, browser, videoPhone, m.port, session.leg.videoSSRC, 98)
        await self.released(browser, session)

    def test_outbound(self):
        """
        The client offers video: the INVITE offers VP8; the phone's answer
        starts the relay, with the phone's payload type.
        """
        return defer.ensureDeferred(self._outbound())

    async def offering(self):
        """@return: C{(session, offer)}: a browser offering video and LinkRTC's SIP offer."""
        browser = VideoBrowser(offerVideo=True)
        self.cleanups.append(browser.close)
        session = self.factory.newSession("video-out", self.listener)
        self.cleanups.append(session.close)
        return session, await session.sipOffer(await browser.offer())

    async def _outboundDeclined(self):
        session, offer = await self.offering()
        self.assertIn(b"m=video", offer)
        answer = sipOffer(4000, "0 101", extra="m=video 0 RTP/AVP 96")
        await session.clientAnswer(answer)
        self.assertNotIn("video", session.stats())
        self.assertEqual(self.factory.allocator.portsInUse(), 2)

    def test_outboundDeclined(self):
        """The SIP side rejects the video: its ports are given back."""
        return defer.ensureDeferred(self._outboundDeclined())

    async def _outboundNoRelay(self):
        self.factory.relayProblem = "no relay in this test"
        session, offer = await self.offering()
        self.assertNotIn(b"m=video", offer)
        answer = await session.clientAnswer(sipOffer(4000, "0 101"))
        video = answer[answer.index("m=video"):]
        self.assertIn("a=inactive", video)

    def test_outboundNoRelay(self):
        """
        Video the bridge cannot relay is answered inactive to the browser
        (aiortc would decode it) and not offered to SIP.
        """
        return defer.ensureDeferred(self._outboundNoRelay())
