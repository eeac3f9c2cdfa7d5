"""Tests for L{linkrtc.call.passthrough}."""

from twisted.logger import LogLevel, globalLogPublisher
from twisted.trial.unittest import SynchronousTestCase
from zope.interface.verify import verifyObject

from linkrtc.call.passthrough import (
    PassthroughMediaFactory,
    audioTarget,
    direction,
    isHold,
    plainRTP,
    withDirection,
)
from linkrtc.error import MediaError
from linkrtc.interfaces import (
    IMediaFactory,
    IMediaSession,
    IOutboundMediaSession,
    IPhoneMediaSession,
)
from linkrtc.testing import CLIENT_ANSWER, SIP_OFFER


class PassthroughTests(SynchronousTestCase):
    def setUp(self):
        self.factory = PassthroughMediaFactory()
        self.session = self.factory.newSession("c1", None)

    def test_interfaces(self):
        """The factory and its sessions provide their interfaces; the name is passthrough."""
        verifyObject(IMediaFactory, self.factory)
        verifyObject(IMediaSession, self.session)
        verifyObject(IOutboundMediaSession, self.session)
        self.assertEqual(self.factory.name, "passthrough")

    def test_outbound(self):
        """
        Outbound: the client's offer goes to SIP as bytes (minus codecs the
        trunk leaves out) and is what a re-INVITE gets; the SIP answer goes
        to the client as text; hold does nothing.
        """
        offer = SIP_OFFER.decode()
        self.assertEqual(self.successResultOf(self.session.sipOffer(offer)), SIP_OFFER)
        self.assertEqual(self.session.answer, SIP_OFFER)
        filtered = self.successResultOf(self.session.sipOffer(offer, ["PCMU"]))
        self.assertNotIn(b"telephone-event", filtered)
        self.assertEqual(self.successResultOf(self.session.clientAnswer(SIP_OFFER)), offer)
        self.assertIsNone(self.successResultOf(self.session.hold(True)))
        self.failureResultOf(self.session.sipOffer(offer, ["G729"]), MediaError)
        self.failureResultOf(self.session.sipOffer("garbage"), MediaError)
        self.failureResultOf(self.session.clientAnswer(b"\xff"), MediaError)

    def test_offerAsIs(self):
        """The SIP offer goes to the client as is (text)."""
        self.assertEqual(self.successResultOf(self.session.clientOffer(SIP_OFFER)),
                         SIP_OFFER.decode())

    def test_offerless(self):
        """An offerless INVITE: no offer for the client."""
        self.assertIsNone(self.successResultOf(self.session.clientOffer(None)))

    def test_answerAsIs(self):
        """The client's answer goes to SIP as is (bytes)."""
        self.assertEqual(self.successResultOf(self.session.sipAnswer(CLIENT_ANSWER)),
                         CLIENT_ANSWER.encode())

    def test_notSdp(self):
        """Something that is not SDP fails with MediaError."""
        self.failureResultOf(self.session.sipAnswer("hello"), MediaError)
        self.failureResultOf(self.session.clientOffer(b"\xff\xfe"), MediaError)

    def test_ackBody(self):
        """The ACK's SDP goes to the client as text."""
        self.assertEqual(self.successResultOf(self.session.sipAckBody(SIP_OFFER)),
                         SIP_OFFER.decode())

    def test_reoffer(self):
        """A re-INVITE is answered with the last answer; sendonly means hold."""
        self.successResultOf(self.session.sipAnswer(CLIENT_ANSWER))
        held = SIP_OFFER.replace(b"a=sendrecv", b"a=sendonly")
        self.assertEqual(self.successResultOf(self.session.sipReoffer(held)),
                         (CLIENT_ANSWER.encode(), True))
        self.assertEqual(self.successResultOf(self.session.sipReoffer(SIP_OFFER)),
                         (CLIENT_ANSWER.encode(), False))

    def test_reofferUnrelayable(self):
        """
        A re-offer sharing no audio codec with the client's answer fails
        (488 to SIP), and the answer stays what it was.
        """
        self.successResultOf(self.session.sipAnswer(CLIENT_ANSWER))
        g729 = SIP_OFFER.replace(b"RTP/AVP 0 101", b"RTP/AVP 18 101").replace(
            b"a=rtpmap:0 PCMU/8000", b"a=rtpmap:18 G729/8000")
        self.failureResultOf(self.session.sipReoffer(g729), MediaError)
        self.assertEqual(self.session.answer, CLIENT_ANSWER.encode())
        self.assertEqual(self.successResultOf(self.session.sipReoffer(SIP_OFFER)),
                         (CLIENT_ANSWER.encode(), False))

    def test_audioCodecs(self):
        """The names of the first audio section's codecs, static types included."""
        from linkrtc.call.passthrough import audioCodecs

        self.assertEqual(audioCodecs(SIP_OFFER.decode()), {"PCMU"})
        self.assertEqual(audioCodecs("m=audio 4 RTP/AVP 8 18\r\n"), {"PCMA", "G729"})
        self.assertEqual(audioCodecs("m=video 4 RTP/AVP 96\r\na=rtpmap:96 VP8/90000\r\n"),
                         set())

    def test_reofferBeforeAnswer(self):
        """A re-offer with no previous answer fails."""
        self.failureResultOf(self.session.sipReoffer(SIP_OFFER), MediaError)

    def test_isHold(self):
        """inactive and c=0.0.0.0 are hold too."""
        self.assertTrue(isHold("v=0\r\na=inactive\r\n"))
        self.assertTrue(isHold("v=0\r\nc=IN IP4 0.0.0.0\r\n"))
        self.assertFalse(isHold(SIP_OFFER.decode()))

    def test_statsAndClose(self):
        """stats names the mode; close fires."""
        self.assertEqual(self.session.stats(), {"mode": "passthrough"})
        self.successResultOf(self.session.close())
        self.successResultOf(self.session.sendDigits("1"))

    def test_closeForgetsListener(self):
        """Closed, a session forgets its listener (the call, which points back at it)."""
        session = self.factory.newSession("c2", object())
        self.successResultOf(session.close())
        self.assertIsNone(session.listener)


#: A WebRTC SDP's audio stream, as a SIP peer that speaks WebRTC sends it.
WEBRTC_OFFER = (
    "v=0\r\no=- 1 1 IN IP4 192.0.2.10\r\ns=-\r\nt=0 0\r\n"
    "m=audio 9 UDP/TLS/RTP/SAVPF 111\r\nc=IN IP4 0.0.0.0\r\n"
    "a=ice-ufrag:abcd\r\na=ice-pwd:abcdefghijklmnopqrstuv\r\n"
    "a=fingerprint:sha-256 " + ":".join(["AB"] * 32) + "\r\n"
    "a=setup:actpass\r\na=rtpmap:111 opus/48000/2\r\na=sendrecv\r\n"
)


class PhoneReofferTests(SynchronousTestCase):
    """A SIP phone's re-offers in passthrough (L{PassthroughSession.phoneReoffer})."""

    PHONE = CLIENT_ANSWER.replace("198.51.100.7", "198.51.100.8")

    def setUp(self):
        self.session = PassthroughMediaFactory().newSession("c1", None)

    def answered(self):
        verifyObject(IPhoneMediaSession, self.session)
        self.assertEqual(self.successResultOf(self.session.phoneOffer(SIP_OFFER)),
                         SIP_OFFER.decode())
        self.successResultOf(self.session.phoneAnswer(self.PHONE))

    def test_offerless(self):
        """
        An offerless INVITE: no offer for the phones (C{None}); the phone's
        offer goes to the caller as is; the caller's answer (the ACK's)
        is what the phone's hold re-offer is answered with.
        """
        self.assertIsNone(self.successResultOf(self.session.phoneOffer(None)))
        self.assertEqual(self.successResultOf(self.session.phoneAnswer(self.PHONE)),
                         self.PHONE.encode())
        self.assertEqual(self.successResultOf(self.session.sipAckBody(SIP_OFFER)),
                         SIP_OFFER.decode())
        held = self.PHONE.replace("a=sendrecv", "a=sendonly")
        answer, hold = self.successResultOf(self.session.phoneReoffer(held))
        self.assertTrue(hold)
        self.assertIn(b"m=audio 40000 RTP/AVP 0 101", answer)
        self.assertEqual(direction(answer.decode()), "recvonly")
        self.failureResultOf(self.session.sipAckBody(b"hello"), MediaError)

    def test_helpers(self):
        """direction, audioTarget and withDirection read and rewrite SDP text."""
        text = SIP_OFFER.decode()
        self.assertEqual(direction(text), "sendrecv")
        self.assertEqual(direction("v=0\r\na=inactive\r\nm=audio 1 RTP/AVP 0\r\n"), "inactive")
        self.assertEqual(direction("v=0\r\nm=audio 1 RTP/AVP 0\r\n"), "sendrecv")
        self.assertEqual(audioTarget(text), ("192.0.2.10", "40000"))
        self.assertEqual(audioTarget(text.replace("c=IN IP4 192.0.2.10", "c=IN IP4 0.0.0.0")),
                         (None, "40000"))
        self.assertIsNone(audioTarget("v=0\r\n"))
        recvonly = withDirection(text, "recvonly")
        self.assertEqual(direction(recvonly), "recvonly")
        self.assertIn("o=- 1 2 IN IP4", recvonly)
        self.assertNotIn("a=sendrecv", recvonly)
        back = withDirection(recvonly, "sendrecv")
        self.assertEqual(direction(back), "sendrecv")
        self.assertIn("o=- 1 3 IN IP4", back)

    def test_holdResume(self):
        """sendonly -> recvonly (version up), sendrecv -> sendrecv (up again), repeats unchanged."""
        self.answered()
        held = self.PHONE.replace("a=sendrecv", "a=sendonly")
        answer, hold = self.successResultOf(self.session.phoneReoffer(held))
        self.assertTrue(hold)
        self.assertEqual(direction(answer.decode()), "recvonly")
        self.assertEqual(self.session.phoneSdp(), answer)
        again, _ = self.successResultOf(self.session.phoneReoffer(held.encode()))
        self.assertEqual(again, answer)
        resumed, hold = self.successResultOf(self.session.phoneReoffer(self.PHONE))
        self.assertFalse(hold)
        self.assertEqual(direction(resumed.decode()), "sendrecv")
        self.assertIn(b"o=- 1 3 ", resumed)

    def test_refused(self):
        """Before the answer, a new port, no common codec, not SDP: MediaError; nothing changes."""
        self.failureResultOf(self.session.phoneReoffer(self.PHONE), MediaError)
        self.answered()
        for offer in (self.PHONE.replace("m=audio 50000", "m=audio 50002"),
                      self.PHONE.replace("RTP/AVP 0", "RTP/AVP 8").replace("0 PCMU", "8 PCMA"),
                      "hello"):
            self.failureResultOf(self.session.phoneReoffer(offer), MediaError)
        self.assertEqual(self.session.phoneSdp(), SIP_OFFER)


class PlainRTPWarningTests(SynchronousTestCase):
    """
    A plain-RTP SDP from the SIP side, which a browser refuses, is logged
    once per call, saying why the call fails.
    """

    def setUp(self):
        self.events = []
        observer = self.events.append
        globalLogPublisher.addObserver(observer)
        self.addCleanup(globalLogPublisher.removeObserver, observer)
        self.session = PassthroughMediaFactory().newSession("c7", None)

    def warnings(self):
        from twisted.logger import LogLevel, formatEvent

        return [formatEvent(e) for e in self.events
                if e.get("log_namespace") == "linkrtc.call.passthrough"
                and e.get("log_level") == LogLevel.warn]

    def test_plainRTP(self):
        """L{plainRTP} names the transport of an SDP without a DTLS fingerprint."""
        self.assertEqual(plainRTP(SIP_OFFER.decode()), "RTP/AVP")
        self.assertIsNone(plainRTP(WEBRTC_OFFER))
        self.assertEqual(plainRTP("v=0\r\ns=-\r\n"), "no audio stream")

    def test_plainOffer(self):
        """
        An incoming call's plain-RTP offer still goes to the client as is,
        with one warning naming the call, the SDP's transport and the
        remedy.
        """
        self.assertEqual(self.successResultOf(self.session.clientOffer(SIP_OFFER)),
                         SIP_OFFER.decode())
        [line] = self.warnings()
        self.assertIn("call c7", line)
        self.assertIn("the SIP offer is plain RTP (RTP/AVP, no DTLS fingerprint)", line)
        self.assertIn("browser refuses it", line)
        self.assertIn("--media bridge", line)

    def test_plainAnswer(self):
        """
        An outgoing call's plain-RTP answer (a 183 and the 200 OK): one
        warning for the call, not one per answer.
        """
        self.successResultOf(self.session.sipOffer(WEBRTC_OFFER))
        self.successResultOf(self.session.clientAnswer(SIP_OFFER))
        self.successResultOf(self.session.clientAnswer(SIP_OFFER))
        [line] = self.warnings()
        self.assertIn("the SIP answer is plain RTP (RTP/AVP", line)

    def test_oncePerFactory(self):
        """
        The first plain-RTP call of a factory is a warning; a later one is
        logged at debug level only (while debug is on), and while debug is
        off its SDP is not scanned at all.
        """
        from linkrtc import logging
        from linkrtc.call import passthrough

        factory = PassthroughMediaFactory()
        self.session = factory.newSession("c1", None)
        self.successResultOf(self.session.clientOffer(SIP_OFFER))
        self.successResultOf(factory.newSession("c2", None).clientOffer(SIP_OFFER))
        [line] = self.warnings()
        self.assertIn("call c1", line)
        self.assertIn("later calls like this one: at debug level", line)
        [debug] = [e for e in self.events if e.get("log_namespace") == "linkrtc.call.passthrough"
                   and e.get("log_level") == LogLevel.debug]
        self.assertEqual((debug["call_id"], debug["proto"]), ("c2", "RTP/AVP"))

        self.patch(logging, "_debug", False)
        scanned = []
        self.patch(passthrough, "plainRTP", lambda sdp: scanned.append(sdp))
        self.assertEqual(self.successResultOf(factory.newSession("c3", None).clientOffer(SIP_OFFER)),
                         SIP_OFFER.decode())
        self.assertEqual(scanned, [])
        self.assertEqual(len([e for e in self.events
                              if e.get("log_namespace") == "linkrtc.call.passthrough"]), 2)

    def test_offerNotSDP(self):
        """A SIP offer that is not SDP fails the Deferred with L{MediaError}."""
        self.failureResultOf(self.session.clientOffer(b"hello"), MediaError)

    def test_webRTC(self):
        """An SDP with a DTLS fingerprint (a WebRTC SIP peer): no warning."""
        self.successResultOf(self.session.clientOffer(WEBRTC_OFFER.encode()))
        self.successResultOf(self.session.clientAnswer(WEBRTC_OFFER.encode()))
        self.assertEqual(self.warnings(), [])


#: A WebRTC peer's offer with audio and video (VP8, H.264) and RTCP feedback.
VIDEO_OFFER = (
    "v=0\r\no=- 1 1 IN IP4 192.0.2.9\r\ns=-\r\nt=0 0\r\na=group:BUNDLE 0 1\r\n"
    "a=fingerprint:sha-256 AA:BB\r\n"
    "m=audio 9 UDP/TLS/RTP/SAVPF 111 0\r\nc=IN IP4 192.0.2.9\r\na=mid:0\r\n"
    "a=rtpmap:111 opus/48000/2\r\na=rtpmap:0 PCMU/8000\r\n"
    "m=video 9 UDP/TLS/RTP/SAVPF 96 102\r\nc=IN IP4 192.0.2.9\r\na=mid:1\r\n"
    "a=rtpmap:96 VP8/90000\r\na=rtcp-fb:96 nack\r\na=rtcp-fb:96 nack pli\r\n"
    "a=rtcp-fb:96 ccm fir\r\na=rtcp-fb:96 goog-remb\r\n"
    "a=rtpmap:102 H264/90000\r\n"
    "a=fmtp:102 level-asymmetry-allowed=1;packetization-mode=1;profile-level-id=42e01f\r\n"
)


class PassthroughVideoTests(SynchronousTestCase):
    """C{--media passthrough} leaves video m-lines as they are, both ways."""

    def setUp(self):
        self.session = PassthroughMediaFactory().newSession("v1", None)

    def test_incoming(self):
        """A SIP offer's video reaches the client unchanged, and the answer's comes back."""
        self.assertEqual(self.successResultOf(self.session.clientOffer(VIDEO_OFFER.encode())),
                         VIDEO_OFFER)
        self.assertEqual(self.successResultOf(self.session.sipAnswer(VIDEO_OFFER)),
                         VIDEO_OFFER.encode())

    def test_outgoing(self):
        """The client's video goes into the INVITE unchanged (no trunk codec list)."""
        self.assertEqual(self.successResultOf(self.session.sipOffer(VIDEO_OFFER)),
                         VIDEO_OFFER.encode())

    def test_trunkListsVideo(self):
        """A trunk whose codecs name VP8 keeps VP8 (and its rtcp-fb) and drops H.264."""
        offer = self.successResultOf(self.session.sipOffer(VIDEO_OFFER, ["PCMU", "VP8"])).decode()
        self.assertIn("m=video 9 UDP/TLS/RTP/SAVPF 96\r\n", offer)
        self.assertIn("a=rtcp-fb:96 nack pli\r\n", offer)
        self.assertNotIn("H264", offer)
