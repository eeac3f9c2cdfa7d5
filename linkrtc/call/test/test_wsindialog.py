"""
Tests for L{linkrtc.call.wsindialog}: a WebSocket phone's DTMF INFO and
re-offers read as text, with SDP as Chrome (JsSIP) and aiortc write it.
"""

from twisted.trial.unittest import SynchronousTestCase

from linkrtc.call.wsindialog import InfoError, dtlsRole, infoDigit, reanswer
from linkrtc.error import MediaError

#: Chrome's offer (JsSIP's INVITE): ICE gathered, c=0.0.0.0 in the session part.
CHROME_OFFER = "\r\n".join([
    "v=0",
    "o=- 4611731400430051336 2 IN IP4 127.0.0.1",
    "s=-",
    "t=0 0",
    "a=group:BUNDLE 0",
    "a=msid-semantic: WMS stream",
    "m=audio 9 UDP/TLS/RTP/SAVPF 111 0 8 126",
    "c=IN IP4 0.0.0.0",
    "a=rtcp:9 IN IP4 0.0.0.0",
    "a=candidate:1 1 udp 2113937151 127.0.0.1 51000 typ host",
    "a=ice-ufrag:Chrm",
    "a=ice-pwd:chromepasswordchromepass",
    "a=ice-options:trickle",
    "a=fingerprint:sha-256 AA:BB:CC:DD",
    "a=setup:actpass",
    "a=mid:0",
    "a=sendrecv",
    "a=rtcp-mux",
    "a=rtpmap:111 opus/48000/2",
    "a=fmtp:111 minptime=10;useinbandfec=1",
    "a=rtpmap:0 PCMU/8000",
    "a=rtpmap:8 PCMA/8000",
    "a=rtpmap:126 telephone-event/8000",
]) + "\r\n"

#: aiortc's answer to it.
AIORTC_ANSWER = "\r\n".join([
    "v=0",
    "o=- 3912345678 3912345678 IN IP4 0.0.0.0",
    "s=-",
    "t=0 0",
    "a=group:BUNDLE 0",
    "a=msid-semantic:WMS *",
    "m=audio 40000 UDP/TLS/RTP/SAVPF 111 0 8",
    "c=IN IP4 127.0.0.1",
    "a=sendrecv",
    "a=mid:0",
    "a=rtcp:9 IN IP4 0.0.0.0",
    "a=rtcp-mux",
    "a=rtpmap:111 opus/48000/2",
    "a=rtpmap:0 PCMU/8000",
    "a=rtpmap:8 PCMA/8000",
    "a=candidate:1 1 udp 2130706431 127.0.0.1 40000 typ host",
    "a=end-of-candidates",
    "a=ice-ufrag:aior",
    "a=ice-pwd:aiortcpasswordaiortcpass",
    "a=fingerprint:sha-256 11:22:33:44",
    "a=setup:active",
]) + "\r\n"


def reoffer(direction="sendonly", version=3, **changes):
    """Chrome's re-offer: CHROME_OFFER with C{direction} and text replaced."""
    text = CHROME_OFFER.replace("a=sendrecv", f"a={direction}").replace(
        "4611731400430051336 2", f"4611731400430051336 {version}")
    for old, new in changes.values():
        text = text.replace(old, new)
    return text


class InfoDigitTests(SynchronousTestCase):
    def test_dtmfRelay(self):
        """JsSIP's and SIP.js's body: Signal and Duration."""
        self.assertEqual(infoDigit(b"Signal=5\r\nDuration=100\r\n", "application/dtmf-relay"), "5")
        self.assertEqual(infoDigit(b"Signal= #\nDuration= 250", "application/dtmf-relay"), "#")
        self.assertEqual(infoDigit(b"signal=d\r\n", "application/dtmf-relay"), "D")

    def test_dtmf(self):
        self.assertEqual(infoDigit(b"*\r\n", "application/dtmf"), "*")

    def test_bad(self):
        """Each bad body names what is wrong."""
        cases = [
            (b"Duration=100\r\n", "application/dtmf-relay", "dtmf-relay body has no Signal line"),
            (b"Signal=55\r\n", "application/dtmf-relay", "Signal is not one of 0-9 * # A-D"),
            (b"Signal=E\r\n", "application/dtmf-relay", "Signal is not one of 0-9 * # A-D"),
            (b"Signal=5\r\nDuration=x\r\n", "application/dtmf-relay",
             "Duration is not 1-60000 ms"),
            (b"Signal=5\r\nDuration=0\r\n", "application/dtmf-relay",
             "Duration is not 1-60000 ms"),
            (b"Signal=\xe9", "application/dtmf-relay", "DTMF body is not ASCII"),
            (b"", "application/dtmf", "application/dtmf body is not one of 0-9 * # A-D"),
            (b"12", "application/dtmf", "application/dtmf body is not one of 0-9 * # A-D"),
        ]
        for body, contentType, reason in cases:
            with self.assertRaises(InfoError) as caught:
                infoDigit(body, contentType)
            self.assertEqual(str(caught.exception), reason, body)


class DtlsRoleTests(SynchronousTestCase):
    def test_weAnswered(self):
        """Our answer's a=setup is our role."""
        self.assertEqual(dtlsRole(AIORTC_ANSWER, CHROME_OFFER, False), "active")
        passive = AIORTC_ANSWER.replace("setup:active", "setup:passive")
        self.assertEqual(dtlsRole(passive, CHROME_OFFER, False), "passive")

    def test_weOffered(self):
        """The phone's answer chose: its active makes us passive, its passive active."""
        chromeAnswer = CHROME_OFFER.replace("setup:actpass", "setup:active")
        self.assertEqual(dtlsRole(AIORTC_ANSWER, chromeAnswer, True), "passive")
        chromeAnswer = CHROME_OFFER.replace("setup:actpass", "setup:passive")
        self.assertEqual(dtlsRole(AIORTC_ANSWER, chromeAnswer, True), "active")
        noSetup = CHROME_OFFER.replace("a=setup:actpass\r\n", "")
        self.assertEqual(dtlsRole(AIORTC_ANSWER, noSetup, True), "passive")


class ReanswerTests(SynchronousTestCase):
    def answer(self, offer, lastSent=AIORTC_ANSWER, role="active", base=AIORTC_ANSWER):
        return reanswer(base, CHROME_OFFER, offer, role, lastSent)

    def test_hold(self):
        """
        A sendonly re-offer: our last SDP, recvonly in the place of
        sendrecv, the DTLS role kept, the o= version one up; a hold.
        """
        answer, hold = self.answer(reoffer("sendonly"))
        self.assertTrue(hold)
        expected = AIORTC_ANSWER.replace("a=sendrecv", "a=recvonly").replace(
            "3912345678 3912345678", "3912345678 3912345679")
        self.assertEqual(answer, expected)

    def test_inactive(self):
        answer, hold = self.answer(reoffer("inactive"))
        self.assertTrue(hold)
        self.assertIn("a=inactive\r\n", answer)
        self.assertNotIn("a=sendrecv", answer)

    def test_recvonly(self):
        """recvonly is answered sendonly, and is no hold of ours."""
        answer, hold = self.answer(reoffer("recvonly"))
        self.assertFalse(hold)
        self.assertIn("a=sendonly\r\n", answer)

    def test_resumeVersion(self):
        """Resume after hold: sendrecv again, the version up again."""
        held, _ = self.answer(reoffer("sendonly"))
        resumed, hold = self.answer(reoffer("sendrecv", 4), lastSent=held)
        self.assertFalse(hold)
        self.assertIn("a=sendrecv\r\n", resumed)
        self.assertIn("o=- 3912345678 3912345680 IN IP4 0.0.0.0\r\n", resumed)

    def test_unchangedKeepsVersion(self):
        """RFC 3264 §8: a re-offer that changes nothing gets the same SDP, same version."""
        answer, hold = self.answer(reoffer("sendrecv"))
        self.assertEqual(answer, AIORTC_ANSWER)
        self.assertFalse(hold)
        held, _ = self.answer(reoffer("sendonly"))
        again, _ = self.answer(reoffer("sendonly", 5), lastSent=held)
        self.assertEqual(again, held)

    def test_actpassKeepsRole(self):
        """We offered (actpass); the phone's answer made us passive: the re-answer says passive."""
        ourOffer = AIORTC_ANSWER.replace("setup:active", "setup:actpass")
        answer, _ = reanswer(ourOffer, CHROME_OFFER.replace("actpass", "active"),
                             reoffer("sendonly"), "passive", ourOffer)
        self.assertIn("a=setup:passive\r\n", answer)
        self.assertNotIn("actpass", answer)

    def test_codecOfTheAnswer(self):
        """
        When we offered, the codec in use is the first of the phone's
        answer: a re-offer without the one we listed first is fine.
        """
        ourOffer = AIORTC_ANSWER.replace("setup:active", "setup:actpass")
        pcmuAnswer = CHROME_OFFER.replace("111 0 8 126", "0 126").replace(
            "setup:actpass", "setup:active")
        offer = reoffer(codecs=("111 0 8 126", "0 126"))
        answer, hold = reanswer(ourOffer, pcmuAnswer, offer, "passive", ourOffer, True)
        self.assertTrue(hold)
        with self.assertRaises(MediaError):
            reanswer(ourOffer, pcmuAnswer, reoffer(codecs=("111 0 8 126", "111 8")),
                     "passive", ourOffer, True)

    def test_phoneKeepsItsRole(self):
        """A re-offer naming the phone's own role (not actpass) is fine."""
        answer, _ = self.answer(reoffer("sendonly", roles=("setup:actpass", "setup:passive")))
        self.assertIn("a=setup:active\r\n", answer)

    def test_refused(self):
        """What would change the transport or the codec is refused with the reason."""
        cases = [
            (reoffer(ice=("ice-ufrag:Chrm", "ice-ufrag:New1")), "restarts ICE"),
            (reoffer(ice=("ice-pwd:chromepass", "ice-pwd:otherpasswordxxxxxxxxxxx")),
             "restarts ICE"),
            (reoffer(fp=("AA:BB:CC:DD", "AA:BB:CC:EE")), "changes the DTLS fingerprint"),
            (reoffer(role=("setup:actpass", "setup:active")), "a=setup:active changes the DTLS"),
            (reoffer(codecs=("111 0 8 126", "0 8 126")), "drops OPUS/48000 (payload type 111)"),
            (reoffer(pt=("rtpmap:111 opus", "rtpmap:109 opus")), "drops OPUS/48000"),
            (reoffer(video=("a=rtpmap:126 telephone-event/8000\r\n",
                            "a=rtpmap:126 telephone-event/8000\r\n"
                            "m=video 9 UDP/TLS/RTP/SAVPF 96\r\na=rtpmap:96 VP8/90000\r\n")),
             "has 2 m= sections, the call 1"),
            (reoffer(off=("m=audio 9", "m=audio 0")), "disables m= section 0"),
            ("v=1\r\n", "does not start with v=0"),
        ]
        for offer, reason in cases:
            with self.assertRaises(MediaError) as caught:
                self.answer(offer)
            self.assertIn(reason, str(caught.exception), offer)
