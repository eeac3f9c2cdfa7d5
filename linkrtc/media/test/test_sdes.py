"""
Tests for L{linkrtc.media.sdes} and L{linkrtc.media.sdesside}: the
C{a=crypto} attribute (RFC 4568), libsrtp contexts, the SIP leg of an
SRTP call (fake reactor, no sockets) and the trunks' C{srtp} policy.
"""

import base64
import os

from twisted.internet import defer
from twisted.trial.unittest import SynchronousTestCase

from linkrtc import metrics
from linkrtc.config import ConfigError, Trunk, parseTrunk
from linkrtc.error import MediaError
from linkrtc.media.actions.test.test_bridge_actions import FakeReactor
from linkrtc.media.bridge import BridgeMediaFactory
from linkrtc.media.rtp import buildHeader, parseRTP
from linkrtc.media.sdes import (
    KEY_LENGTH,
    SDES,
    SRTCPSink,
    SRTPContext,
    SRTPSession,
    TrunkPolicy,
    chooseAudio,
    formatCrypto,
    parseCrypto,
)
from linkrtc.media.sdp import buildSDP, parseSDP, sipCodec
from linkrtc.media.test.peers import sipOffer
from linkrtc.media.test.test_bridge import Listener
from linkrtc.testing import CallHarness

KEY = bytes(range(KEY_LENGTH))
PHONE_KEY = bytes(range(100, 100 + KEY_LENGTH))
INLINE = base64.b64encode(PHONE_KEY).decode()


def cryptoOffer(port=4000, crypto=("1 AES_CM_128_HMAC_SHA1_80 inline:" + INLINE,),
                proto="RTP/SAVP"):
    """@return: a phone's offer (C{bytes}) of PCMU on C{proto} with C{crypto} lines."""
    body = sipOffer(port, "0 101").decode().replace("RTP/AVP", proto)
    return (body + "".join("a=crypto:%s\r\n" % (c,) for c in crypto)).encode()


def failures():
    return metrics.REGISTRY.get_sample_value("linkrtc_srtp_auth_failures_total") or 0.0


class CryptoAttributeTests(SynchronousTestCase):
    def test_roundTrip(self):
        """formatCrypto's line parses back to the same tag, suite and key (RFC 4568 §9.1)."""
        line = formatCrypto(7, "AES_CM_128_HMAC_SHA1_80", KEY)
        self.assertTrue(line.startswith("7 AES_CM_128_HMAC_SHA1_80 inline:"))
        crypto = parseCrypto(line)
        self.assertEqual((crypto.tag, crypto.suite, crypto.key),
                         (7, "AES_CM_128_HMAC_SHA1_80", KEY))
        self.assertEqual(crypto.line(), line)

    def test_lifetimeAndHint(self):
        """A lifetime (decimal or 2^n) and a WSH session parameter are taken."""
        for tail in ("|2^31", "|1048576"):
            crypto = parseCrypto("1 AES_CM_128_HMAC_SHA1_32 inline:%s%s WSH=64" % (INLINE, tail))
            self.assertEqual((crypto.suite, crypto.key), ("AES_CM_128_HMAC_SHA1_32", PHONE_KEY))

    def test_bad(self):
        """Malformed or unsupported attributes raise ValueError."""
        short = base64.b64encode(PHONE_KEY[:29]).decode()
        for value in (
            "",
            "1 AES_CM_128_HMAC_SHA1_80",
            "x AES_CM_128_HMAC_SHA1_80 inline:" + INLINE,
            "1234567890 AES_CM_128_HMAC_SHA1_80 inline:" + INLINE,
            "1 F8_128_HMAC_SHA1_80 inline:" + INLINE,
            "1 AEAD_AES_256_GCM inline:" + INLINE,
            "1 AES_CM_128_HMAC_SHA1_80 uri:" + INLINE,
            "1 AES_CM_128_HMAC_SHA1_80 inline:" + short,
            "1 AES_CM_128_HMAC_SHA1_80 inline:" + INLINE + "AAAA",
            "1 AES_CM_128_HMAC_SHA1_80 inline:%%%%",
            "1 AES_CM_128_HMAC_SHA1_80 inline:" + INLINE + "|2^20|1:4",
            "1 AES_CM_128_HMAC_SHA1_80 inline:" + INLINE + "|x",
            "1 AES_CM_128_HMAC_SHA1_80 inline:%s;inline:%s" % (INLINE, INLINE),
            "1 AES_CM_128_HMAC_SHA1_80 inline:" + INLINE + " UNENCRYPTED_SRTP",
        ):
            self.assertRaises(ValueError, parseCrypto, value)

    def test_keyLength(self):
        """Only 30 octets of key and salt are written."""
        self.assertRaises(ValueError, formatCrypto, 1, "AES_CM_128_HMAC_SHA1_80", KEY[:16])
        self.assertRaises(ValueError, formatCrypto, 1, "NULL", KEY)
        self.assertEqual(len(SDES().key), KEY_LENGTH)
        self.assertNotEqual(SDES().key, SDES().key)

    def test_sdpKeepsCrypto(self):
        """parseSDP keeps the a=crypto values of each m= line; buildSDP writes one."""
        desc = parseSDP(cryptoOffer(crypto=("1 A inline:x", "2 B inline:y")))
        self.assertEqual(desc.media[0].crypto, ["1 A inline:x", "2 B inline:y"])
        body = buildSDP("127.0.0.1", 5000, [sipCodec("PCMU")], 1, proto="RTP/SAVP",
                        crypto=formatCrypto(3, "AES_CM_128_HMAC_SHA1_80", KEY))
        m = parseSDP(body).media[0]
        self.assertEqual(m.proto, "RTP/SAVP")
        self.assertEqual(parseCrypto(m.crypto[0]).key, KEY)


class ChooseAudioTests(SynchronousTestCase):
    def test_firstUsable(self):
        """A bad attribute is ignored when another one is usable."""
        desc = parseSDP(cryptoOffer(crypto=("1 F8_128_HMAC_SHA1_80 inline:" + INLINE,
                                             "2 AES_CM_128_HMAC_SHA1_80 inline:" + INLINE)))
        index, m, crypto = chooseAudio(desc)
        self.assertEqual((index, crypto.tag), (0, 2))

    def test_noneUsable(self):
        """SAVP whose attributes are all unusable: MediaError."""
        desc = parseSDP(cryptoOffer(crypto=("1 F8_128_HMAC_SHA1_80 inline:" + INLINE,)))
        self.assertRaises(MediaError, chooseAudio, desc)
        self.assertRaises(MediaError, chooseAudio, desc, True)

    def test_offerOrder(self):
        """Plain and secure streams of one offer: the first usable one wins; SAVPF is taken."""
        secure = cryptoOffer(proto="RTP/SAVPF").decode()
        plain = sipOffer(4002, "0").decode()
        both = plain + secure[secure.index("m=audio"):]
        index, m, crypto = chooseAudio(parseSDP(both))
        self.assertEqual((index, m.proto, crypto), (0, "RTP/AVP", None))
        index, m, crypto = chooseAudio(parseSDP(both), required=True)
        self.assertEqual((index, m.proto, crypto.tag), (1, "RTP/SAVPF", 1))

    def test_required(self):
        """A plain offer when SRTP is required: MediaError."""
        self.assertRaises(MediaError, chooseAudio, parseSDP(sipOffer(4000)), True)


class ContextTests(SynchronousTestCase):
    def test_roundTrip(self):
        """What one side protects, the other unprotects, RTP and RTCP."""
        ours, theirs = SRTPContext(KEY, PHONE_KEY), SRTPContext(PHONE_KEY, KEY)
        packet = buildHeader(0, 0, 1, 160, 1234) + b"\xff" * 160
        protected = ours.protect(packet)
        self.assertEqual(len(protected), len(packet) + 10)
        self.assertNotIn(b"\xff" * 160, protected)
        self.assertEqual(theirs.unprotect(protected), packet)
        rtcp = bytes([0x80, 201, 0, 1]) + (1234).to_bytes(4, "big")
        self.assertEqual(theirs.unprotectRTCP(ours.protectRTCP(rtcp)), rtcp)


class SIPLegTests(SynchronousTestCase):
    """An SRTP phone and the bridge's SIP leg (C{answerLocally}, fake reactor)."""

    def setUp(self):
        self.reactor = FakeReactor()
        self.factory = BridgeMediaFactory(self.reactor, rtpPorts=(40000, 40009),
                                          rtpInterface="127.0.0.1")
        self.listener = Listener()
        self.session = self.factory.newSession("srtp-1", self.listener)
        self.addCleanup(self.session.close)

    def answer(self, offer):
        body = self.successResultOf(self.session.answerLocally(offer))
        m = parseSDP(body).media[0]
        return body, m

    def test_answerEchoesTag(self):
        """
        The answer is RTP/SAVP with the offer's chosen tag and suite and our
        own key (RFC 4568 §6.1); the leg is an L{SRTPSession}.
        """
        body, m = self.answer(cryptoOffer(crypto=(
            "5 AES_CM_128_HMAC_SHA1_32 inline:" + INLINE,
            "6 AES_CM_128_HMAC_SHA1_80 inline:" + INLINE)))
        self.assertEqual(m.proto, "RTP/SAVP")
        [line] = m.crypto
        crypto = parseCrypto(line)
        self.assertEqual((crypto.tag, crypto.suite), (5, "AES_CM_128_HMAC_SHA1_32"))
        self.assertNotEqual(crypto.key, PHONE_KEY)
        self.assertIsInstance(self.session.rtp, SRTPSession)

    def test_plainStaysPlain(self):
        """A plain offer is answered plain, without a=crypto."""
        body, m = self.answer(sipOffer(4000))
        self.assertEqual((m.proto, m.crypto), ("RTP/AVP", []))
        self.assertNotIsInstance(self.session.rtp, SRTPSession)

    def test_media(self):
        """
        The phone's SRTP is unprotected (its RFC 4733 key press arrives);
        what LinkRTC sends is SRTP the phone can unprotect with our key; a
        packet failing authentication, and a replay, are dropped and
        counted, once logged.
        """
        body, m = self.answer(cryptoOffer())
        ourKey = parseCrypto(m.crypto[0]).key
        phone = SRTPContext(PHONE_KEY, ourKey)
        rtp = self.session.rtp
        event = buildHeader(1, 101, 10, 800, 0xABC) + bytes([7, 0x8A, 0, 160])
        protected = phone.protect(event)
        before = failures()
        rtp.datagramReceived(protected, ("127.0.0.1", 4000))
        self.assertEqual(self.listener.digits, ["7"])
        tampered = bytearray(phone.protect(buildHeader(0, 0, 11, 960, 0xABC) + b"\x00" * 160))
        tampered[20] ^= 1
        rtp.datagramReceived(bytes(tampered), ("127.0.0.1", 4000))
        rtp.datagramReceived(protected, ("127.0.0.1", 4000))  # a replay
        self.assertEqual(failures() - before, 2)
        self.assertEqual(rtp.stats()["srtpFailures"], 2)
        self.assertEqual(rtp.stats()["packetsReceived"], 1)
        self.session.sendDigits("3")
        self.reactor.advance(0.2)
        written = self.reactor.transports[self.session._rtpPort].written
        self.assertTrue(written)
        for packet, addr in written:
            self.assertEqual(addr, ("127.0.0.1", 4000))
            plain = phone.unprotect(packet)
            self.assertEqual(parseRTP(plain)[1], 101)
        self.assertEqual(rtp.stats()["bytesSent"], 4 * len(written))

    def test_srtcp(self):
        """SRTCP is unprotected on the RTCP port; a forged packet is dropped and counted."""
        body, m = self.answer(cryptoOffer())
        phone = SRTPContext(PHONE_KEY, parseCrypto(m.crypto[0]).key)
        rtcp = bytes([0x80, 201, 0, 1]) + (1234).to_bytes(4, "big")
        sink = SRTCPSink(self.session.rtp)
        sink.datagramReceived(phone.protectRTCP(rtcp), ("127.0.0.1", 4001))
        before = failures()
        sink.datagramReceived(rtcp + b"\x00" * 14, ("127.0.0.1", 4001))
        self.assertEqual((sink.packets, failures() - before), (1, 1))

    def test_reofferKeepsSRTP(self):
        """A re-INVITE of an SRTP call must stay SRTP (488 for plain); a new key is taken."""
        body, m = self.answer(cryptoOffer())
        self.failureResultOf(self.session.sipReoffer(sipOffer(4000)), MediaError)
        sender = self.session.rtp.context.sender
        newKey = os.urandom(KEY_LENGTH)
        offer = cryptoOffer(crypto=("1 AES_CM_128_HMAC_SHA1_80 inline:"
                                    + base64.b64encode(newKey).decode(),))
        answer, held = self.successResultOf(self.session.sipReoffer(offer))
        again = parseSDP(answer).media[0]
        self.assertEqual(parseCrypto(again.crypto[0]).key, parseCrypto(m.crypto[0]).key)
        self.assertEqual(self.session.rtp.context.keys[1], newKey)
        # Our sending session goes on (its rollover counter with it).
        self.assertIs(self.session.rtp.context.sender, sender)

    def test_plainCallNotUpgraded(self):
        """A plain call re-offered SRTP: MediaError (488)."""
        self.answer(sipOffer(4000))
        self.failureResultOf(self.session.sipReoffer(cryptoOffer()), MediaError)


class OutboundSDESTests(SynchronousTestCase):
    """Our offer to an SRTP trunk and its answer, without a browser (the SDESSide mix-in)."""

    def setUp(self):
        self.reactor = FakeReactor()
        self.factory = BridgeMediaFactory(self.reactor, rtpPorts=(40000, 40009),
                                          rtpInterface="127.0.0.1")
        self.session = self.factory.newSession("srtp-out", Listener())
        self.addCleanup(self.session.close)

    def offer(self, srtp):
        session = self.session
        session._offerSRTP(srtp)
        session._outbound = True
        session._ourOffer = [sipCodec("PCMU")]
        session._bind()
        return buildSDP("127.0.0.1", session._rtpPort, session._ourOffer, 1,
                        **session._sdpSecurity())

    def answerWith(self, body):
        desc = parseSDP(body)
        return self.session._answeredStream(desc)

    def test_offer(self):
        """C{optional} and C{required} offer RTP/SAVP with one a=crypto, tag 1."""
        m = parseSDP(self.offer("required")).media[0]
        self.assertEqual(m.proto, "RTP/SAVP")
        crypto = parseCrypto(m.crypto[0])
        self.assertEqual((crypto.tag, crypto.suite), (1, "AES_CM_128_HMAC_SHA1_80"))
        self.assertIsInstance(self.session.rtp, SRTPSession)
        self.assertIsNone(self.session.rtp.context)

    def test_answerEchoes(self):
        """An answer echoing tag 1 gives the context."""
        self.offer("required")
        self.answerWith(cryptoOffer())
        self.assertEqual(self.session.rtp.context.keys[1], PHONE_KEY)

    def test_answerOtherTag(self):
        """An answer with another tag: MediaError."""
        self.offer("required")
        body = cryptoOffer(crypto=("2 AES_CM_128_HMAC_SHA1_80 inline:" + INLINE,))
        self.assertRaises(MediaError, self.answerWith, body)

    def test_requiredPlainAnswer(self):
        """C{required}: a plain answer fails the call, saying why."""
        self.offer("required")
        e = self.assertRaises(MediaError, self.answerWith, sipOffer(4000))
        self.assertIn("requires SRTP", str(e))

    def test_optionalPlainAnswer(self):
        """C{optional}: a plain answer is taken and the call runs plain RTP."""
        self.offer("optional")
        index, m = self.answerWith(sipOffer(4000))
        self.assertEqual(m.proto, "RTP/AVP")
        self.assertTrue(self.session.rtp.plain)
        self.assertEqual(self.session._sdpSecurity(), {})

    def test_offerOffNoCrypto(self):
        """C{off}: a plain offer."""
        m = parseSDP(self.offer("off")).media[0]
        self.assertEqual((m.proto, m.crypto), ("RTP/AVP", []))

    def test_offerLocally(self):
        """An application's call through an SRTP trunk offers SAVP; the answer gives the keys."""
        body = self.successResultOf(self.session.offerLocally(("PCMU",), srtp="required"))
        m = parseSDP(body).media[0]
        self.assertEqual(parseCrypto(m.crypto[0]).tag, 1)
        self.failureResultOf(self.session.offerAnswered(sipOffer(4000)), MediaError)
        self.successResultOf(self.session.offerAnswered(cryptoOffer()))
        self.assertEqual(self.session.rtp.context.keys[1], PHONE_KEY)

    def test_sipOfferBadSetting(self):
        """An unknown setting: MediaError."""
        self.assertRaises(MediaError, self.session._offerSRTP, "maybe")


class Call:
    """What L{TrunkPolicy.requiredFor} reads of a call."""

    def __init__(self, host, user):
        self.leg = type("Leg", (), {"source": type("S", (), {"host": host})()})()
        self.request = type("R", (), {"uri": type("U", (), {"user": user})()})()


class TrunkPolicyTests(SynchronousTestCase):
    def setUp(self):
        self.trunks = (
            Trunk("secure", "sip:192.0.2.10:5060", srtp="required", route={"+4930111": "a"}),
            Trunk("named", "sip:pbx.example.net", registrar="sip:[2001:db8::1]",
                  srtp="required"),
            Trunk("loose", "sip:192.0.2.20", srtp="optional", username="4930222"),
        )
        self.policy = TrunkPolicy(self.trunks)

    def test_match(self):
        """Source address of the proxy or registrar, or a DID: the trunk that requires SRTP."""
        self.assertEqual(self.policy.requiredFor(Call("192.0.2.10", "x")), "secure")
        self.assertEqual(self.policy.requiredFor(Call("2001:db8:0::1", None)), "named")
        self.assertEqual(self.policy.requiredFor(Call("198.51.100.1", "+4930111")), "secure")
        self.assertIsNone(self.policy.requiredFor(Call("192.0.2.20", "4930222")))
        self.assertIsNone(self.policy.requiredFor(object()))
        self.assertFalse(TrunkPolicy(()))

    def test_plainOfferRefused(self):
        """A plain offer from a trunk with srtp = required: MediaError (488), naming it."""
        factory = BridgeMediaFactory(FakeReactor(), rtpPorts=(40000, 40009),
                                     rtpInterface="127.0.0.1", srtpPolicy=self.policy)
        session = factory.newSession("in-1", Call("192.0.2.10", "alice"))
        self.addCleanup(session.close)
        failure = self.failureResultOf(session.answerLocally(sipOffer(4000)), MediaError)
        self.assertIn("trunk secure requires SRTP", failure.getErrorMessage())
        self.assertIsNone(session.rtp)
        other = factory.newSession("in-2", Call("192.0.2.10", "alice"))
        self.addCleanup(other.close)
        self.successResultOf(other.answerLocally(cryptoOffer()))

    def test_clientOfferRefused(self):
        """The bridge's clientOffer refuses it too, before any peer connection."""
        factory = BridgeMediaFactory(FakeReactor(), rtpPorts=(40000, 40009),
                                     rtpInterface="127.0.0.1", srtpPolicy=self.policy)
        session = factory.newSession("in-3", Call("192.0.2.10", "alice"))
        d = defer.maybeDeferred(session.clientOffer, sipOffer(4000))
        self.failureResultOf(d, MediaError)
        self.assertIsNone(session.leg)

    def test_offerlessFromTrunk(self):
        """
        An offerless INVITE from a trunk that requires SRTP: our offer (in
        the 2xx) is RTP/SAVP with a=crypto, and the ACK's answer must
        echo it; from elsewhere the offer is plain.
        """
        factory = BridgeMediaFactory(FakeReactor(), rtpPorts=(40000, 40009),
                                     rtpInterface="127.0.0.1", srtpPolicy=self.policy)
        for source, secure in (("192.0.2.10", True), ("192.0.2.99", False)):
            session = factory.newSession("in-" + source, Call(source, "alice"))
            self.addCleanup(session.close)
            session._offerless = True
            session._offerSRTPIfRequired()
            session._bind()
            session._ourOffer = [sipCodec("PCMU")]
            self.assertEqual("crypto" in session._sdpSecurity(), secure)
            self.assertEqual(isinstance(session.rtp, SRTPSession), secure)
        self.failureResultOf(session.sipAckBody(cryptoOffer()), MediaError)
        secureSession = factory.newSession("in-3", Call("192.0.2.10", "alice"))
        self.addCleanup(secureSession.close)
        secureSession._offerless = True
        secureSession._offerSRTPIfRequired()
        secureSession._bind()
        secureSession._ourOffer = [sipCodec("PCMU")]
        self.failureResultOf(secureSession.sipAckBody(sipOffer(4000)), MediaError)
        self.successResultOf(secureSession.sipAckBody(cryptoOffer()))
        self.assertEqual(secureSession.rtp.context.keys[1], PHONE_KEY)

    def test_callRefused488(self):
        """
        Through the call engine: an INVITE to a DID of a trunk with srtp =
        required offering plain RTP gets 488 before anything rings, the
        CDR saying why.
        """
        factory = BridgeMediaFactory(FakeReactor(), rtpPorts=(40000, 40009),
                                     rtpInterface="127.0.0.1", srtpPolicy=self.policy)
        harness = CallHarness(mediaFactory=factory)
        alice = harness.connect("alice")
        call, leg = harness.invite(to="sip:+4930111@example.com", body=sipOffer(4000))
        harness.route(call, "alice")
        self.assertEqual(leg.finalStatus, 488)
        self.assertEqual(alice.ofType("incoming"), [])
        self.assertIn("requires SRTP", harness.cdrs[-1]["reason"])

    def test_config(self):
        """The TOML key srtp: off, optional, required; anything else refused."""
        self.assertEqual(parseTrunk({"name": "t", "proxy": "sip:h"}).srtp, "off")
        self.assertEqual(parseTrunk({"name": "t", "proxy": "sip:h", "srtp": "required"}).srtp,
                         "required")
        self.assertRaises(ConfigError, parseTrunk, {"name": "t", "proxy": "sip:h", "srtp": "yes"})
        self.assertRaises(ConfigError, parseTrunk, {"name": "t", "proxy": "sip:h", "srtp": True})
