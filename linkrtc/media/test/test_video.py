"""
Tests for video pass-through: the SDP functions of L{linkrtc.media.sdp},
L{linkrtc.media.video} (RTP rewriting, RTCP feedback relaying) and the
tap's video path in L{linkrtc.media.relay.WebRTCTap}. Pure: no sockets,
no aiortc peer.
"""

import struct

from twisted.internet.task import Clock
from twisted.trial.unittest import SynchronousTestCase

from linkrtc.media import sdp
from linkrtc.media.relay import WebRTCTap
from linkrtc.media.rtp import StreamRewriter, buildHeader
from linkrtc.media.test.test_relay import (
    FakeConnection,
    FakeDtls,
    FakeIceTransport,
    FakeLeg,
    stunProtocol,
)
from linkrtc.media.video import (
    FMT_FIR,
    FMT_NACK,
    FMT_PLI,
    RTCP_PSFB,
    RTCP_RTPFB,
    SIPVideoSocket,
    VideoRelay,
    feedbackMessages,
    feedbackPacket,
    rewriteFeedback,
)
from linkrtc.media.videoside import browserVideoDirection, intersectDirections

OFFER = (
    "v=0\r\no=phone 1 1 IN IP4 192.0.2.5\r\ns=-\r\nc=IN IP4 192.0.2.5\r\nt=0 0\r\n"
    "m=audio 4000 RTP/AVP 0\r\na=rtpmap:0 PCMU/8000\r\n"
    "m=video 5000 RTP/AVPF 100 101 102 31\r\n"
    "a=rtpmap:100 VP8/90000\r\n"
    "a=rtpmap:101 H264/90000\r\na=fmtp:101 profile-level-id=42e01f;packetization-mode=1\r\n"
    "a=rtpmap:102 H264/90000\r\na=fmtp:102 profile-level-id=42e01f;packetization-mode=0\r\n"
    "a=rtpmap:31 H261/90000\r\n"
    "a=rtcp-fb:* nack\r\na=rtcp-fb:100 nack pli\r\na=rtcp-fb:100 ccm fir\r\n"
    "a=rtcp-fb:100 goog-remb\r\na=sendrecv\r\n"
)

SIP_SSRC = 0x11111111
BROWSER_SSRC = 0x22222222
VIDEO_SSRC = 0x33333333  # what aiortc announced for our video to the browser


class VideoSDPTests(SynchronousTestCase):
    """The video offer/answer functions of L{linkrtc.media.sdp}."""

    def setUp(self):
        self.desc = sdp.parseSDP(OFFER)
        self.index, self.m = sdp.videoStream(self.desc)

    def test_stream(self):
        """The first enabled RTP/AVP(F) video stream, with its rtcp-fb lines."""
        self.assertEqual(self.index, 1)
        self.assertEqual(self.m.proto, "RTP/AVPF")
        self.assertEqual(self.m.rtcpFeedback["*"], ["nack"])
        self.assertEqual(self.m.rtcpFeedback["100"], ["nack pli", "ccm fir", "goog-remb"])

    def test_noStream(self):
        """No video, or a disabled one (port 0): C{None}."""
        self.assertIsNone(sdp.videoStream(sdp.parseSDP(OFFER.replace("m=video 5000",
                                                                     "m=video 0"))))
        self.assertIsNone(sdp.videoStream(sdp.parseSDP(OFFER.split("m=video")[0])))

    def test_codecs(self):
        """VP8 and H.264 mode 1 Baseline are relayable; mode 0 and H.261 are not."""
        self.assertEqual(sdp.videoCodecs(self.m), [
            sdp.VideoCodec("VP8", 100), sdp.VideoCodec("H264", 101, sdp.H264_FMTP)])

    def test_h264Profiles(self):
        self.assertTrue(sdp.h264Relayable("packetization-mode=1"))
        self.assertTrue(sdp.h264Relayable("profile-level-id=42001f;packetization-mode=1"))
        self.assertFalse(sdp.h264Relayable("profile-level-id=640c1f;packetization-mode=1"))
        self.assertFalse(sdp.h264Relayable("profile-level-id=42e01f"))

    def test_feedback(self):
        """The feedback offered for the format or for *, in our order; REMB left out."""
        self.assertEqual(sdp.videoFeedback(self.m, 100), ("nack", "nack pli", "ccm fir"))
        self.assertEqual(sdp.videoFeedback(self.m, 101), ("nack",))

    def test_answer(self):
        """
        The answer keeps the audio, puts our video section at the video's
        index (one codec, the offer's payload type, its proto, the feedback
        offered) and rejects the rest.
        """
        codec = sdp.videoCodecs(self.m)[0]
        section = sdp.videoSection(6000, codec, "sendrecv", proto=self.m.proto,
                                   feedback=sdp.videoFeedback(self.m, 100))
        body = sdp.buildSDP("192.0.2.1", 4000, [sdp.sipCodec("PCMU")], 1,
                            rejected=[self.m], audioIndex=0, accepted={1: section}).decode()
        answer = sdp.parseSDP(body)
        video = answer.media[1]
        self.assertEqual((video.media, video.port, video.proto, video.formats),
                         ("video", 6000, "RTP/AVPF", ["100"]))
        self.assertEqual(video.rtpmap[100], ("VP8", 90000, 1))
        self.assertEqual(video.rtcpFeedback["100"], ["nack", "nack pli", "ccm fir"])
        self.assertIn("a=rtcp-fb:100 ccm fir\r\na=sendrecv\r\n", body)

    def test_answerH264(self):
        """H.264 is answered with packetization mode 1, 42e01f."""
        section = sdp.videoSection(6000, sdp.videoCodecs(self.m)[1], "recvonly")
        self.assertIn("a=fmtp:101 " + sdp.H264_FMTP, section)
        self.assertEqual(section[-1], "a=recvonly")

    def test_rejectedAsBefore(self):
        """Without C{accepted} the video stream is refused (port 0), as before."""
        body = sdp.buildSDP("192.0.2.1", 4000, [sdp.sipCodec("PCMU")], 1,
                            rejected=[self.m]).decode()
        self.assertIn("m=video 0 RTP/AVPF 100 101 102 31\r\n", body)

    def test_badFeedback(self):
        """An empty or odd rtcp-fb line is ignored."""
        desc = sdp.parseSDP(OFFER + "a=rtcp-fb:\r\na=rtcp-fb:100\r\n")
        self.assertEqual(sdp.videoStream(desc)[1].rtcpFeedback["100"][:1], ["nack pli"])

    def test_directions(self):
        self.assertEqual(intersectDirections("sendrecv", "recvonly"), "recvonly")
        self.assertEqual(intersectDirections("sendonly", "recvonly"), "inactive")
        self.assertEqual(intersectDirections("sendrecv", "sendrecv"), "sendrecv")

    def test_browserDirection(self):
        """The browser's video direction; C{None} if rejected, absent or unparseable."""
        self.assertEqual(browserVideoDirection(OFFER.replace("a=sendrecv", "a=sendonly")),
                         "sendonly")
        self.assertIsNone(browserVideoDirection(OFFER.replace("m=video 5000", "m=video 0")))
        self.assertIsNone(browserVideoDirection(OFFER.split("m=video")[0]))
        self.assertIsNone(browserVideoDirection("garbage"))


def rtp(seq, ts, ssrc=SIP_SSRC, pt=100, marker=0, payload=b"\x90\x80\x00vp8", extension=False,
        padding=b""):
    header = bytearray(buildHeader(marker, pt, seq, ts, ssrc))
    extra = b""
    if extension:
        header[0] |= 0x10
        extra = struct.pack("!HH", 0xBEDE, 1) + b"\x10\x01\x00\x00"
    if padding:
        header[0] |= 0x20
    return bytes(header) + extra + payload + padding


class FakeTap:
    def __init__(self):
        self.video = []
        self.rtcp = []
        self.attached = None

    def attachVideo(self, pt, onVideo, onRTCP):
        self.attached = (pt, onVideo, onRTCP)

    def detachVideo(self):
        self.attached = None

    def sendVideo(self, packet):
        self.video.append(packet)

    def sendRTCP(self, packet):
        self.rtcp.append(packet)


class FakeSocket(SIPVideoSocket):
    def __init__(self):
        super().__init__()
        self.out = []

    def send(self, data):
        self.out.append(data)


class VideoRelayTests(SynchronousTestCase):
    """L{VideoRelay}: header rewrite both ways and RTCP feedback relaying."""

    def setUp(self):
        self.clock = Clock()
        self.tap = FakeTap()
        self.rtp = FakeSocket()
        self.rtcp = FakeSocket()
        self.relay = VideoRelay(self.clock, self.tap, VIDEO_SSRC, self.rtp, self.rtcp, 100, 97)
        self.relay.start()

    def test_started(self):
        """The tap gives the relay the browser's video PT 97 and its RTCP."""
        self.assertEqual(self.tap.attached[0], 97)
        self.relay.stop()
        self.assertIsNone(self.tap.attached)
        self.assertIsNone(self.rtp.onPacket)

    def test_sipToBrowser(self):
        """
        SIP packets go to the browser with our video SSRC, the browser's PT,
        the payload untouched, and sequence numbers that keep the source's
        gaps; the extension is dropped, the marker kept.
        """
        self.rtp.onPacket(rtp(1000, 90000, extension=True))
        self.rtp.onPacket(rtp(1002, 93000, marker=1))
        first, second = self.tap.video
        b0, b1, seq1, ts1, ssrc = struct.unpack_from("!BBHII", first)
        self.assertEqual((b0, b1 & 0x7F, ssrc), (0x80, 97, VIDEO_SSRC))
        self.assertEqual(first[12:], b"\x90\x80\x00vp8")
        b0, b1, seq2, ts2, ssrc = struct.unpack_from("!BBHII", second)
        self.assertEqual((b1 >> 7, (seq2 - seq1) & 0xFFFF, (ts2 - ts1) & 0xFFFFFFFF),
                         (1, 2, 3000))
        self.assertEqual(self.relay.sipPackets, 2)

    def test_newSource(self):
        """A new SIP SSRC continues the sequence at last + 1, marker set."""
        self.rtp.onPacket(rtp(1000, 90000))
        self.rtp.onPacket(rtp(5, 7, ssrc=0x4444))
        seqs = [struct.unpack_from("!H", p, 2)[0] for p in self.tap.video]
        self.assertEqual((seqs[1] - seqs[0]) & 0xFFFF, 1)
        self.assertEqual(self.tap.video[1][1] >> 7, 1)

    def test_paddingKept(self):
        """A padded packet (Chrome's probes) keeps its padding and P bit."""
        self.tap.attached[1](rtp(7, 0, ssrc=BROWSER_SSRC, pt=97, payload=b"",
                                 padding=b"\x00" * 9 + b"\x0a"))
        [packet] = self.rtp.out
        self.assertEqual(packet[0], 0xA0)
        self.assertEqual(packet[1] & 0x7F, 100)
        self.assertEqual(len(packet), 22)

    def test_wrongPayloadType(self):
        """SIP packets of another payload type, or not RTP, are dropped."""
        self.rtp.onPacket(rtp(1, 0, pt=31))
        self.rtp.onPacket(b"\x00" * 20)
        self.rtp.onPacket(b"\x80")
        self.assertEqual(self.tap.video, [])

    def test_browserToSIP(self):
        """Browser packets go to SIP with SIP's PT and our SIP-side SSRC."""
        self.tap.attached[1](rtp(50, 1000, ssrc=BROWSER_SSRC, pt=97))
        [packet] = self.rtp.out
        self.assertEqual(packet[1] & 0x7F, 100)
        self.assertEqual(struct.unpack_from("!I", packet, 8)[0], self.relay.toSIP.ssrc)
        self.assertEqual(self.relay.webrtcPackets, 1)

    def test_keyFrameAsked(self):
        """The first packet of each source makes a PLI to it (a key frame)."""
        self.rtp.onPacket(rtp(1000, 90000))
        self.rtp.onPacket(rtp(1001, 90000))
        self.tap.attached[1](rtp(50, 1000, ssrc=BROWSER_SSRC, pt=97))
        [toSIP] = self.rtcp.out
        [toBrowser] = self.tap.rtcp
        self.assertEqual(feedbackMessages(toSIP),
                         [(RTCP_PSFB, FMT_PLI, self.relay.toSIP.ssrc, SIP_SSRC, b"")])
        self.assertEqual(feedbackMessages(toBrowser),
                         [(RTCP_PSFB, FMT_PLI, VIDEO_SSRC, BROWSER_SSRC, b"")])

    def flow(self):
        """Both streams running; the start PLIs forgotten."""
        self.rtp.onPacket(rtp(1000, 90000))
        self.tap.attached[1](rtp(50, 1000, ssrc=BROWSER_SSRC, pt=97))
        self.rtcp.out[:] = []
        self.tap.rtcp[:] = []

    def test_pliFromBrowser(self):
        """The browser's PLI on our video goes to SIP, SSRCs rewritten."""
        self.flow()
        self.tap.attached[2](feedbackPacket(RTCP_PSFB, FMT_PLI, BROWSER_SSRC, VIDEO_SSRC, b""))
        [packet] = self.rtcp.out
        self.assertEqual(packet[:8], struct.pack("!BBHI", 0x80, 201, 1, self.relay.toSIP.ssrc))
        self.assertEqual(feedbackMessages(packet),
                         [(RTCP_PSFB, FMT_PLI, self.relay.toSIP.ssrc, SIP_SSRC, b"")])
        self.assertEqual(self.relay.feedbackToSIP, 1)

    def test_firFromSIP(self):
        """The SIP side's FIR naming our SSRC goes to the browser naming its own."""
        self.flow()
        fci = struct.pack("!IB3x", self.relay.toSIP.ssrc, 7) + struct.pack("!IB3x", 0x999, 1)
        self.rtcp.onPacket(feedbackPacket(RTCP_PSFB, FMT_FIR, SIP_SSRC, 0, fci))
        [packet] = self.tap.rtcp
        self.assertEqual(feedbackMessages(packet), [
            (RTCP_PSFB, FMT_FIR, VIDEO_SSRC, 0, struct.pack("!IB3x", BROWSER_SSRC, 7))])

    def test_nackFromBrowser(self):
        """The browser's NACK names the SIP source's own sequence numbers."""
        self.flow()
        outSeq = struct.unpack_from("!H", self.tap.video[0], 2)[0]
        fci = struct.pack("!HH", outSeq, 0b101)
        self.tap.attached[2](feedbackPacket(RTCP_RTPFB, FMT_NACK, BROWSER_SSRC, VIDEO_SSRC, fci))
        [packet] = self.rtcp.out
        self.assertEqual(feedbackMessages(packet), [
            (RTCP_RTPFB, FMT_NACK, self.relay.toSIP.ssrc, SIP_SSRC, struct.pack("!HH", 1000, 5))])

    def test_nackFromSIP(self):
        """The SIP side's NACK (RTCP muxed on the RTP port too) reaches the browser."""
        self.flow()
        outSeq = struct.unpack_from("!H", self.rtp.out[0], 2)[0]
        fci = struct.pack("!HH", outSeq, 0)
        self.rtp.onPacket(feedbackPacket(RTCP_RTPFB, FMT_NACK, SIP_SSRC, self.relay.toSIP.ssrc,
                                         fci))
        [packet] = self.tap.rtcp
        self.assertEqual(feedbackMessages(packet), [
            (RTCP_RTPFB, FMT_NACK, VIDEO_SSRC, BROWSER_SSRC, struct.pack("!HH", 50, 0))])

    def test_otherFeedbackDropped(self):
        """REMB, other streams' PLI, reports and garbage are not relayed."""
        self.flow()
        remb = feedbackPacket(RTCP_PSFB, 15, BROWSER_SSRC, 0, b"REMB\x01\x00\x10\x00" + b"\0" * 4)
        for packet in (remb, feedbackPacket(RTCP_PSFB, FMT_PLI, BROWSER_SSRC, 0x5555, b""),
                       struct.pack("!BBHI", 0x80, 201, 1, 1), b"\x80\xce\x00\x09", b""):
            self.tap.attached[2](packet)
        self.assertEqual(self.rtcp.out, [])

    def test_feedbackBeforeMedia(self):
        """Feedback before the other side sent anything has no target: dropped."""
        self.tap.attached[2](feedbackPacket(RTCP_PSFB, FMT_PLI, BROWSER_SSRC, VIDEO_SSRC, b""))
        self.assertEqual(self.rtcp.out, [])

    def test_stats(self):
        self.flow()
        self.assertEqual(self.relay.stats(), {"sipPackets": 1, "webrtcPackets": 1,
                                              "feedbackToSIP": 0, "feedbackToBrowser": 0,
                                              "rejected": 0})


class FeedbackTests(SynchronousTestCase):
    def test_rewriteUnknown(self):
        """Not PLI, FIR or NACK: C{None}."""
        message = (RTCP_RTPFB, 15, 1, 2, b"")
        self.assertIsNone(rewriteFeedback(message, 3, 4, 2, StreamRewriter(Clock())))

    def test_truncated(self):
        """A compound packet cut short ends the list at the last whole message."""
        pli = feedbackPacket(RTCP_PSFB, FMT_PLI, 1, 2, b"")
        self.assertEqual(len(feedbackMessages(pli + pli[:6])), 1)

    def test_notRTP(self):
        """Truncated or not RTP version 2: nothing to relay."""
        for data in (b"\x90" + b"\x00" * 12, b"\x40" + b"\x00" * 12, b"\xa0" + b"\x00" * 12):
            self.assertIsNone(VideoRelay._rewrite(data, 97, StreamRewriter(Clock())))


class SIPVideoSocketTests(SynchronousTestCase):
    """The SIP side's video socket takes packets from the SDP's address only."""

    def setUp(self):
        self.socket = SIPVideoSocket()
        self.got = []
        self.socket.onPacket = self.got.append

    def test_sdpAddress(self):
        self.socket.setRemote(("192.0.2.5", 5000))
        self.socket.datagramReceived(b"a", ("192.0.2.5", 5000))
        self.socket.datagramReceived(b"b", ("198.51.100.1", 5000))
        self.assertEqual(self.got, [b"a"])
        self.assertEqual(self.socket.rejected, 1)

    def test_latch(self):
        """Another port of the same host is latched once; then only it."""
        self.socket.setRemote(("192.0.2.5", 5000))
        self.socket.datagramReceived(b"a", ("192.0.2.5", 6000))
        self.socket.datagramReceived(b"b", ("192.0.2.5", 7000))
        self.assertEqual(self.got, [b"a"])
        self.assertEqual(self.socket.latched, ("192.0.2.5", 6000))

    def test_held(self):
        self.socket.datagramReceived(b"a", ("192.0.2.5", 5000))
        self.assertEqual(self.got, [])

    def test_handlerFault(self):
        """A fault in the handler is logged, never raised to the reactor."""
        self.socket.setRemote(("192.0.2.5", 5000))
        self.socket.onPacket = lambda data: 1 / 0
        self.socket.datagramReceived(b"a", ("192.0.2.5", 5000))
        self.assertEqual(len(self.flushLoggedErrors(ZeroDivisionError)), 1)


class RTCPDtls(FakeDtls):
    def __init__(self, ice):
        super().__init__(ice)
        self.aiortcRTCP = []

    async def _handle_rtcp_data(self, data):
        self.aiortcRTCP.append(data)


def run(coroutine):
    try:
        coroutine.send(None)
    except StopIteration:
        pass


class TapVideoTests(SynchronousTestCase):
    """The tap's video path: the browser's video never reaches aiortc's receiver."""

    def setUp(self):
        self.dtls = RTCPDtls(FakeIceTransport(FakeConnection(stunProtocol())))
        self.tap = WebRTCTap(Clock(), FakeLeg(self.dtls), 0, 8000)
        self.video = []
        self.rtcp = []
        self.tap.attachVideo(97, self.video.append, self.rtcp.append)

    def test_noDecodePath(self):
        """Video packets go to the relay; audio still to aiortc (transcode mode)."""
        video = rtp(1, 1, pt=97)
        run(self.dtls._handle_rtp_data(video, 0))
        run(self.dtls._handle_rtp_data(rtp(2, 2, pt=0), 0))
        self.assertEqual(self.video, [video])
        self.assertEqual(len(self.dtls.aiortcReceived), 1)
        self.assertEqual(self.dtls.aiortcReceived[0][1] & 0x7F, 0)

    def test_relayMode(self):
        """In the audio relay's mode too, video goes to the video relay."""
        audio = []
        self.tap.onPacket = lambda *fields: audio.append(fields)
        run(self.dtls._handle_rtp_data(rtp(1, 1, pt=97), 0))
        run(self.dtls._handle_rtp_data(rtp(2, 2, pt=0), 0))
        self.assertEqual(len(self.video), 1)
        self.assertEqual(len(audio), 1)
        self.assertEqual(self.dtls.aiortcReceived, [])

    def test_detachedDropped(self):
        """After detachVideo the video is dropped, still not decoded."""
        self.tap.detachVideo()
        run(self.dtls._handle_rtp_data(rtp(1, 1, pt=97), 0))
        self.assertEqual((self.video, self.dtls.aiortcReceived), ([], []))

    def test_rtcp(self):
        """Decrypted RTCP goes to the video relay and on to aiortc."""
        pli = feedbackPacket(RTCP_PSFB, FMT_PLI, 1, 2, b"")
        run(self.dtls._handle_rtcp_data(pli))
        self.assertEqual(self.rtcp, [pli])
        self.assertEqual(self.dtls.aiortcRTCP, [pli])

    def test_sendRTCP(self):
        """RTCP to the browser goes through aiortc's send (SRTCP), once connected."""
        pli = feedbackPacket(RTCP_PSFB, FMT_PLI, 1, 2, b"")
        self.tap.sendRTCP(pli)
        self.assertEqual(self.dtls.aiortcSent, [])
        self.dtls.connect()
        self.tap.sendRTCP(pli)
        self.assertEqual(self.dtls.aiortcSent, [pli])

    def test_detach(self):
        """detach() gives aiortc its RTCP handler back."""
        self.tap.detach()
        self.assertNotIn("_handle_rtcp_data", vars(self.dtls))
