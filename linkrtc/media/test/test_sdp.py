"""
Tests for L{linkrtc.media.sdp}: pure parsing and building.
"""

from twisted.trial.unittest import SynchronousTestCase

from linkrtc.error import MediaError
from linkrtc.media import sdp

OFFER = (
    b"v=0\r\n"
    b"o=alice 2890844526 2890844526 IN IP4 192.0.2.10\r\n"
    b"s=-\r\n"
    b"c=IN IP4 192.0.2.10\r\n"
    b"t=0 0\r\n"
    b"m=audio 49170 RTP/AVP 8 0 101\r\n"
    b"a=rtpmap:101 telephone-event/8000\r\n"
    b"a=fmtp:101 0-15\r\n"
    b"a=ptime:20\r\n"
    b"m=video 51372 RTP/AVP 31\r\n"
    b"a=rtpmap:31 H261/90000\r\n"
)


class ParseTests(SynchronousTestCase):
    def test_offer(self):
        """Static payload types resolve without rtpmap; telephone-event is found; order kept."""
        desc = sdp.parseSDP(OFFER)
        index, m = desc.audio()
        self.assertEqual(index, 0)
        self.assertEqual(m.port, 49170)
        self.assertEqual(m.address, ("IP4", "192.0.2.10"))
        self.assertEqual(m.ptime, 20)
        self.assertEqual(m.direction, "sendrecv")
        self.assertEqual([c.name for c in m.codecs()], ["PCMA", "PCMU", "TELEPHONE-EVENT"])
        codec, event = sdp.chooseCodec(m)
        self.assertEqual(codec, sdp.Codec("PCMA", 8000, 8))
        self.assertEqual(event, sdp.Codec("TELEPHONE-EVENT", 8000, 101))
        self.assertEqual(desc.media[1].media, "video")

    def test_ptimeNotANumber(self):
        """
        C{a=ptime:} with inf, nan, a negative or absurd value is ignored
        (inf made C{int()} raise OverflowError); a fraction is cut.
        """
        for value, expected in [(b"inf", None), (b"-inf", None), (b"nan", None), (b"-20", None),
                                (b"0", None), (b"1e400", None), (b"1e9", None), (b"x", None),
                                (b"20.5", 20), (b"30", 30)]:
            text = OFFER.replace(b"a=ptime:20", b"a=ptime:" + value)
            self.assertEqual(sdp.parseSDP(text).audio()[1].ptime, expected, value)

    def test_ipv6(self):
        """C{IN IP6} addresses (RFC 5118 §4.3) are kept as literals."""
        text = OFFER.replace(b"IN IP4 192.0.2.10", b"IN IP6 2001:db8::10")
        index, m = sdp.parseSDP(text).audio()
        self.assertEqual(m.address, ("IP6", "2001:db8::10"))

    def test_mediaLevelConnectionAndDirection(self):
        """Media-level c= and direction override the session-level ones."""
        text = OFFER.replace(b"a=ptime:20\r\n", b"a=ptime:20\r\nc=IN IP4 198.51.100.1\r\n"
                             b"a=sendonly\r\n").replace(b"t=0 0\r\n", b"t=0 0\r\na=inactive\r\n")
        desc = sdp.parseSDP(text)
        m = desc.media[0]
        self.assertEqual(m.address, ("IP4", "198.51.100.1"))
        self.assertEqual(m.direction, "sendonly")
        self.assertTrue(m.isHold)
        self.assertEqual(desc.media[1].direction, "inactive")

    def test_oldStyleHold(self):
        """c=0.0.0.0 (RFC 2543) is hold."""
        text = OFFER.replace(b"c=IN IP4 192.0.2.10", b"c=IN IP4 0.0.0.0")
        self.assertTrue(sdp.parseSDP(text).audio()[1].isHold)

    def test_garbage(self):
        """Anything unparseable raises MediaError."""
        for bad in [None, b"", b"hello", b"v=1\r\n", b"v=0\r\nnot a line\r\n",
                    b"v=0\r\no=x\r\n", b"\xff\xfe", OFFER.replace(b"49170", b"99999"),
                    OFFER.replace(b"49170", b"x"), OFFER.replace(b"IN IP4 192.0.2.10", b"IN IP4"),
                    OFFER.replace(b"c=IN IP4 192.0.2.10", b"c=IN IP6 192.0.2.10"),
                    OFFER.replace(b"a=rtpmap:101 telephone-event/8000", b"a=rtpmap:101 x"),
                    OFFER.replace(b"m=audio 49170 RTP/AVP 8 0 101", b"m=audio 49170")]:
            self.assertRaises(MediaError, sdp.parseSDP, bad)

    def test_noCommonCodec(self):
        """No PCMU/PCMA/G722: MediaError."""
        m = sdp.parseSDP(OFFER.replace(b"RTP/AVP 8 0 101", b"RTP/AVP 18 101")).audio()[1]
        self.assertRaises(MediaError, sdp.chooseCodec, m)

    def test_noAudio(self):
        """Only SRTP, or no connection address: no usable stream."""
        desc = sdp.parseSDP(OFFER.replace(b"RTP/AVP 8", b"RTP/SAVP 8"))
        self.assertRaises(MediaError, desc.audio)
        desc = sdp.parseSDP(OFFER.replace(b"c=IN IP4 192.0.2.10\r\n", b""))
        self.assertRaises(MediaError, desc.audio)

    def test_webrtcSdp(self):
        """A browser's SDP parses too (its audio is not RTP/AVP)."""
        text = ("v=0\r\no=- 1 2 IN IP4 127.0.0.1\r\ns=-\r\nt=0 0\r\na=group:BUNDLE 0\r\n"
                "m=audio 9 UDP/TLS/RTP/SAVPF 111 0\r\nc=IN IP4 0.0.0.0\r\n"
                "a=rtpmap:111 opus/48000/2\r\na=rtpmap:0 PCMU/8000\r\n")
        m = sdp.parseSDP(text).media[0]
        self.assertEqual(m.codecs()[0], sdp.Codec("OPUS", 48000, 111, 2))


class BuildTests(SynchronousTestCase):
    def test_answer(self):
        """The answer keeps the offer's m= lines (others rejected with port 0) and PTs."""
        desc = sdp.parseSDP(OFFER)
        index, m = desc.audio()
        codec, event = sdp.chooseCodec(m)
        body = sdp.buildSDP("203.0.113.5", 20000, [codec, event], 42, 3, "recvonly",
                            rejected=[desc.media[1]], audioIndex=0)
        self.assertIsInstance(body, bytes)
        self.assertTrue(body.endswith(b"\r\n"))
        again = sdp.parseSDP(body)
        self.assertEqual(len(again.media), 2)
        self.assertEqual(again.media[1].port, 0)
        self.assertEqual(again.media[1].media, "video")
        m2 = again.media[0]
        self.assertEqual(m2.address, ("IP4", "203.0.113.5"))
        self.assertEqual(m2.port, 20000)
        self.assertEqual(m2.direction, "recvonly")
        self.assertEqual(m2.codecs(), [codec, event])
        self.assertIn(b"o=linkrtc 42 3 IN IP4 203.0.113.5", body)
        self.assertIn(b"a=ptime:20", body)
        self.assertIn(b"a=fmtp:101 0-16", body)

    def test_ipv6Answer(self):
        body = sdp.buildSDP("2001:db8::5", 20002, sdp.ourCodecs(), 1)
        self.assertIn(b"c=IN IP6 2001:db8::5", body)
        self.assertEqual(sdp.parseSDP(body).audio()[1].address, ("IP6", "2001:db8::5"))

    def test_ourCodecs(self):
        self.assertEqual([c.name for c in sdp.ourCodecs(first="PCMA")],
                         ["PCMA", "PCMU", "G722", "TELEPHONE-EVENT"])

    def test_answerDirection(self):
        self.assertEqual([sdp.answerDirection(d) for d in sdp.DIRECTIONS],
                         ["sendrecv", "recvonly", "sendonly", "inactive"])
