"""
Tests for L{linkrtc.sip.refer} (RFC 3515 Refer-To and sipfrag, RFC 3891
Replaces) and the user agent's REFER/Replaces checks.
"""

from twisted.trial.unittest import SynchronousTestCase

from linkrtc.error import SIPParseError
from linkrtc.sip.dialog import DialogId
from linkrtc.sip.refer import (
    notifyHeaders,
    parseReferTo,
    parseReplaces,
    parseSipfrag,
    replacesDialog,
    sipfrag,
)
from linkrtc.sip.test.test_useragent import SDP, UserAgentMixin, request


class ReferToTests(SynchronousTestCase):
    def test_blind(self):
        """A plain Refer-To gives its URI and user, no Replaces."""
        target = parseReferTo("<sip:bob@linkrtc.example.com;transport=tcp>")
        self.assertEqual(target.user, "bob")
        self.assertEqual(target.uri.host, "linkrtc.example.com")
        self.assertIsNone(target.replaces)

    def test_bareAndTel(self):
        """An addr-spec and a tel URI are read too."""
        self.assertEqual(parseReferTo("sip:carol@example.com").user, "carol")
        self.assertEqual(parseReferTo("<tel:+15551234567>").user, "+15551234567")

    def test_replaces(self):
        """An escaped Replaces header in the URI is an attended transfer's dialog."""
        target = parseReferTo("<sip:bob@h?Replaces=abc%40h%3Bto-tag%3D1%3Bfrom-tag%3D2>")
        self.assertEqual(target.replaces, ("abc@h", "1", "2"))
        self.assertEqual(target.uri.headers, {})

    def test_missing(self):
        """No Refer-To: 400 naming it."""
        e = self.assertRaises(SIPParseError, parseReferTo, None)
        self.assertEqual(e.status, 400)
        self.assertIn("Refer-To", e.reason)

    def test_bad(self):
        """An unreadable Refer-To or a scheme we cannot call: 400 naming Refer-To."""
        for value in ("<sip:>", "<http://example.com/>", "<<<"):
            e = self.assertRaises(SIPParseError, parseReferTo, value)
            self.assertEqual(e.status, 400, value)
            self.assertIn("Refer-To", e.reason)

    def test_badReplaces(self):
        """A Replaces that cannot be read: 481 (RFC 3891 §3)."""
        e = self.assertRaises(SIPParseError, parseReferTo,
                              "<sip:bob@h?Replaces=abc%3Bto-tag%3D1>")
        self.assertEqual(e.status, 481)


class ReplacesTests(SynchronousTestCase):
    def test_parse(self):
        """call-id, to-tag and from-tag, in any order, with early-only allowed."""
        self.assertEqual(parseReplaces("c1@h ; from-tag=F;to-tag=T;early-only"),
                         ("c1@h", "T", "F"))

    def test_bad(self):
        """Missing tags, empty call-id or no value: 481."""
        for value in ("c1", "c1;to-tag=T", ";to-tag=T;from-tag=F", "a b;to-tag=T;from-tag=F",
                      None):
            e = self.assertRaises(SIPParseError, parseReplaces, value)
            self.assertEqual(e.status, 481)

    def test_dialog(self):
        """The to-tag is the receiving UA's local tag."""
        self.assertEqual(replacesDialog(("c", "T", "F")), DialogId("c", "T", "F"))


class SipfragTests(SynchronousTestCase):
    def test_build(self):
        """The body is the status line; the standard reason by default."""
        self.assertEqual(sipfrag(100), b"SIP/2.0 100 Trying\r\n")
        self.assertEqual(sipfrag(603, "Declined"), b"SIP/2.0 603 Declined\r\n")

    def test_parse(self):
        """A sipfrag's status line is read; anything else is None."""
        self.assertEqual(parseSipfrag(b"SIP/2.0 180 Ringing\r\n"), (180, "Ringing"))
        self.assertEqual(parseSipfrag("SIP/2.0 200 OK"), (200, "OK"))
        self.assertIsNone(parseSipfrag(b"INVITE sip:x SIP/2.0\r\n"))
        self.assertIsNone(parseSipfrag(b""))

    def test_headers(self):
        """Event refer; active with expires, or terminated for the last one."""
        self.assertEqual(notifyHeaders(False), [("Event", "refer"),
                                               ("Subscription-State", "active;expires=60")])
        self.assertEqual(notifyHeaders(True)[1],
                         ("Subscription-State", "terminated;reason=noresource"))


class UserAgentReferTests(UserAgentMixin, SynchronousTestCase):
    """REFER and Replaces at the user agent (RFC 3515, RFC 3891)."""

    def test_allowed(self):
        """REFER and NOTIFY are in Allow; replaces is Supported."""
        tx = self.receive(request("OPTIONS"))
        headers = tx.responses[0].headers
        self.assertIn("REFER", headers.get("Allow"))
        self.assertIn("NOTIFY", headers.get("Allow"))
        self.assertIn("replaces", headers.get("Supported"))

    def test_sipfragAccepted(self):
        """A NOTIFY's message/sipfrag body passes the content check (no 415)."""
        tx = self.receive(request("NOTIFY", body=b"SIP/2.0 200 OK\r\n", extra=(
            "Event: refer", "Content-Type: message/sipfrag")))
        self.assertEqual(tx.statuses, [481])  # no such dialog, but the body was read
        self.assertIn("message/sipfrag",
                      self.receive(request("OPTIONS", callId="o2")).responses[0].headers.get(
                          "Accept"))

    def test_referOutsideDialog(self):
        """A REFER with no To tag: 403 (we transfer calls only)."""
        tx = self.receive(request("REFER", extra=("Refer-To: <sip:bob@example.com>",)))
        self.assertEqual(tx.statuses, [403])

    def test_notifyOutsideDialog(self):
        """A NOTIFY with no To tag matches no subscription: 481."""
        tx = self.receive(request("NOTIFY", extra=("Event: refer",)))
        self.assertEqual(tx.statuses, [481])

    def test_requireReplaces(self):
        """Require: replaces is no longer 420."""
        tx = self.receive(request("OPTIONS", extra=("Require: replaces",)))
        self.assertEqual(tx.statuses, [200])

    def test_replacesUnknown(self):
        """An INVITE whose Replaces names no dialog here: 481, no leg."""
        tx = self.receive(request("INVITE", body=SDP, extra=(
            "Content-Type: application/sdp", "Replaces: nosuch@h;to-tag=a;from-tag=b")))
        self.assertEqual(tx.statuses, [481])
        self.assertEqual(self.handler.legs, [])

    def test_replacesUnparsable(self):
        """An INVITE whose Replaces cannot be read: 481."""
        tx = self.receive(request("INVITE", body=SDP, extra=(
            "Content-Type: application/sdp", "Replaces: ;;;")))
        self.assertEqual(tx.statuses, [481])

    def test_replacesKnown(self):
        """
        An INVITE whose Replaces names a confirmed dialog of ours: a new leg
        goes to that dialog's listener (C{legReplaced}), not to the handler.
        """
        tx, leg = self.invite()
        replaced = []
        self.handler.listener.legReplaced = replaced.append
        leg.sendFinal(200, body=SDP)
        other = self.receive(request("INVITE", callId="call-2", fromTag="ft2", branch="z9hG4bK-2",
                                     body=SDP, extra=(
                                         "Content-Type: application/sdp",
                                         f"Replaces: call-1;to-tag={leg.localTag};from-tag=ft1")))
        self.assertEqual(other.statuses, [100])
        self.assertEqual(len(self.handler.legs), 1)
        [newLeg] = replaced
        self.assertEqual(newLeg.callId, "call-2")

    def test_replacesWithoutTakeover(self):
        """A dialog whose listener cannot hand its call over: 481."""
        tx, leg = self.invite()
        leg.sendFinal(200, body=SDP)
        other = self.receive(request("INVITE", callId="call-2", fromTag="ft2", branch="z9hG4bK-2",
                                     body=SDP, extra=(
                                         "Content-Type: application/sdp",
                                         f"Replaces: call-1;to-tag={leg.localTag};from-tag=ft1")))
        self.assertEqual(other.statuses, [481])
