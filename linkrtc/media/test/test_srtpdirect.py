"""
Tests for L{linkrtc.media.srtpdirect}: libsrtp contexts used directly
agree with pylibsrtp's own C{Session} methods (real keys, no sockets).
"""

import os

import pylibsrtp
from twisted.trial.unittest import SynchronousTestCase

from linkrtc.media.rtp import buildHeader, parseRTP
from linkrtc.media.srtpdirect import MAX_PACKET, DirectSRTP, direct, protectRTP

PROFILES = [pylibsrtp.Policy.SRTP_PROFILE_AEAD_AES_256_GCM,
            pylibsrtp.Policy.SRTP_PROFILE_AES128_CM_SHA1_80]
KEY_LENGTHS = {PROFILES[0]: 32 + 12, PROFILES[1]: 16 + 14}


def pair(profile):
    """@return: C{(sender, receiver)} pylibsrtp sessions on one fresh key."""
    key = os.urandom(KEY_LENGTHS[profile])
    return (pylibsrtp.Session(pylibsrtp.Policy(key=key, ssrc_type=pylibsrtp.Policy.SSRC_ANY_OUTBOUND,
                                               srtp_profile=profile)),
            pylibsrtp.Session(pylibsrtp.Policy(key=key, ssrc_type=pylibsrtp.Policy.SSRC_ANY_INBOUND,
                                               srtp_profile=profile)))


def rtp(seq, payload=b"\xff" * 160, ssrc=0x1234, second=0):
    return buildHeader(second >> 7, second & 0x7F, seq, 160 * seq, ssrc) + payload


class DirectSRTPTests(SynchronousTestCase):
    def test_direct(self):
        """A pylibsrtp session gets a L{DirectSRTP}; anything else is used as it is."""
        sender, receiver = pair(PROFILES[0])
        self.assertIsInstance(direct(sender), DirectSRTP)
        fake = object()
        self.assertIs(direct(fake), fake)

    def test_protectThenSessionUnprotects(self):
        """What L{DirectSRTP.protect} makes, pylibsrtp's session takes, and back."""
        for profile in PROFILES:
            sender, receiver = pair(profile)
            ours = direct(sender)
            for seq in range(1, 5):
                self.assertEqual(receiver.unprotect(ours.protect(rtp(seq))), rtp(seq))
            sender, receiver = pair(profile)
            ours = direct(receiver)
            for seq in range(1, 5):
                self.assertEqual(ours.unprotect(sender.protect(rtp(seq))), rtp(seq))

    def test_protectRTPBuildsTheHeader(self):
        """protectRTP packs the header in place: same packet as header + payload."""
        sender, receiver = pair(PROFILES[0])
        protect = protectRTP(direct(sender))
        data = protect(0x80 | 0, 7, 1120, 0xABCDEF, b"\x01\x02\x03")
        self.assertEqual(parseRTP(receiver.unprotect(data)), (1, 0, 7, 1120, 0xABCDEF, b"\x01\x02\x03"))
        # A shorter packet after a longer one: nothing of the first is left.
        data = protect(8, 8, 1280, 0xABCDEF, b"\x09")
        self.assertEqual(parseRTP(receiver.unprotect(data)), (0, 8, 8, 1280, 0xABCDEF, b"\x09"))

    def test_protectRTPFallback(self):
        """For a context that is not a L{DirectSRTP}, header and payload are joined and protected."""

        class Joining:
            def protect(self, packet):
                return packet + b"TAG"

        data = protectRTP(Joining())(0x80, 7, 1120, 0xABCDEF, b"\x01")
        self.assertEqual(data, buildHeader(1, 0, 7, 1120, 0xABCDEF) + b"\x01TAG")

    def test_failures(self):
        """Forged and replayed packets raise pylibsrtp.Error; too long ones ValueError."""
        sender, receiver = pair(PROFILES[0])
        ours = direct(receiver)
        data = sender.protect(rtp(1))
        forged = data[:-1] + bytes([data[-1] ^ 1])
        self.assertRaises(pylibsrtp.Error, ours.unprotect, forged)
        self.assertEqual(ours.unprotect(data), rtp(1))
        self.assertRaises(pylibsrtp.Error, ours.unprotect, data)  # replay
        self.assertRaises(ValueError, ours.unprotect, b"\x80" * (MAX_PACKET + 1))
        self.assertRaises(ValueError, direct(sender).protect, b"\x80" * (MAX_PACKET + 1))
        self.assertRaises(ValueError, direct(sender).protectRTP, 0, 1, 1, 1, b"\x00" * MAX_PACKET)

    def test_sharedWithTheSession(self):
        """The session (aiortc's, for RTCP) and the direct calls share one context."""
        sender, receiver = pair(PROFILES[0])
        ours = direct(sender)
        self.assertEqual(receiver.unprotect(ours.protect(rtp(1))), rtp(1))
        self.assertEqual(receiver.unprotect(sender.protect(rtp(2))), rtp(2))
        self.assertEqual(receiver.unprotect(ours.protect(rtp(3))), rtp(3))
