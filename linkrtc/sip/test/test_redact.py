"""Tests for L{linkrtc.sip.redact}."""

from twisted.trial.unittest import SynchronousTestCase

from linkrtc.sip.redact import redactHeader, redactMessage

INVITE = (
    b"INVITE sip:100@trunk.example SIP/2.0\r\n"
    b"Via: SIP/2.0/UDP 10.0.0.1;branch=z9hG4bK1\r\n"
    b"Authorization: Digest username=\"acct\", realm=\"trunk\", nonce=\"n\",\r\n"
    b"  uri=\"sip:100@trunk.example\", response=\"0123456789abcdef0123456789abcdef\"\r\n"
    b"proxy-authorization:Digest username=\"acct\",response=\"fedcba\"\r\n"
    b"Call-ID: c1\r\n"
    b"Content-Length: 30\r\n"
    b"\r\n"
    b"Authorization: Digest in body\r\n"
)


class RedactTests(SynchronousTestCase):
    def test_message(self):
        out = redactMessage(INVITE)
        self.assertNotIn(b"acct", out)
        self.assertNotIn(b"0123456789abcdef", out)
        self.assertNotIn(b"fedcba", out)
        self.assertIn(b"Authorization: Digest [redacted]\r\nproxy-authorization:Digest "
                      b"[redacted]\r\nCall-ID: c1\r\n", out)
        self.assertTrue(out.endswith(b"\r\n\r\nAuthorization: Digest in body\r\n"))

    def test_str(self):
        out = redactMessage(INVITE.decode())
        self.assertIsInstance(out, str)
        self.assertNotIn("acct", out)

    def test_untouched(self):
        message = b"BYE sip:a@b SIP/2.0\r\nCall-ID: x\r\n\r\n"
        self.assertIs(redactMessage(message), message)

    def test_header(self):
        self.assertEqual(redactHeader("Proxy-Authorization", 'Digest username="a"'),
                         "Digest [redacted]")
        self.assertEqual(redactHeader("authorization", ""), "[redacted]")
        self.assertEqual(redactHeader("Subject", "hi"), "hi")
