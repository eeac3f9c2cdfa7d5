"""
Tests for L{linkrtc.sip.dialog} (RFC 3261 §12).
"""

from twisted.trial.unittest import SynchronousTestCase

from linkrtc.error import SIPParseError
from linkrtc.sip.dialog import (
    Dialog,
    DialogId,
    DialogTable,
    checkDialogRequest,
    newCSeq,
    newTag,
)
from linkrtc.sip.parser import parseMessage


def message(*lines, body=b""):
    """Build wire bytes from header lines (CRLF-joined) and a body."""
    head = "\r\n".join(lines) + "\r\nContent-Length: %d\r\n\r\n" % (len(body),)
    return parseMessage(head.encode("utf-8") + body)


def invite(recordRoute=(), contact="<sip:alice@192.0.2.1:5070>", fromTag="ftag", cseq=17):
    lines = [
        "INVITE sips:bob@example.com SIP/2.0",
        "Via: SIP/2.0/TLS 192.0.2.1:5061;branch=z9hG4bK776asdhds",
        "Max-Forwards: 70",
        'From: "Alice" <sip:alice@example.org>' + (";tag=" + fromTag if fromTag else ""),
        "To: Bob <sips:bob@example.com>",
        "Call-ID: a84b4c76e66710@pc33.example.org",
        "CSeq: %d INVITE" % (cseq,),
    ]
    if contact:
        lines.append("Contact: " + contact)
    for rr in recordRoute:
        lines.append("Record-Route: " + rr)
    return message(*lines)


class DialogUASTests(SynchronousTestCase):
    """
    L{Dialog.fromServerRequest} makes the UAS side of a dialog (§12.1.1).
    """

    def test_state(self):
        """
        The id is Call-ID, our tag, their From tag; remote target is the
        Contact; the route set is Record-Route in order; the remote CSeq is
        the INVITE's; the dialog is secure for sips over TLS.
        """
        request = invite(
            recordRoute=["<sip:p1.example.com;lr>", "<sip:p2.example.com;lr>"]
        )
        dialog = Dialog.fromServerRequest(request, "ourtag")
        self.assertEqual(dialog.id, DialogId("a84b4c76e66710@pc33.example.org", "ourtag", "ftag"))
        self.assertEqual(str(dialog.remoteTarget), "sip:alice@192.0.2.1:5070")
        self.assertEqual([r.uri.host for r in dialog.routeSet], ["p1.example.com", "p2.example.com"])
        self.assertEqual(dialog.remoteSeq, 17)
        self.assertTrue(1 <= dialog.localSeq < 2**31)
        self.assertTrue(dialog.secure)
        self.assertEqual(dialog.state, "confirmed")

    def test_rfc2543NoTag(self):
        """An RFC 2543 INVITE without From tag makes a dialog whose remote tag is ""."""
        dialog = Dialog.fromServerRequest(invite(fromTag=None), "t")
        self.assertEqual(dialog.remoteTag, "")
        self.assertEqual(dialog.id.remoteTag, "")

    def test_createRequestLooseRouting(self):
        """
        With a loose-routing route set, the Request-URI is the remote target
        and the Route headers are the route set; From has our tag, To
        theirs; CSeq goes up by one; Max-Forwards is 70; no Via.
        """
        request = invite(recordRoute=["<sip:p1.example.com;lr>, <sip:p2.example.com;lr>"])
        dialog = Dialog.fromServerRequest(request, "ourtag")
        seq = dialog.localSeq
        bye = dialog.createRequest("BYE")
        self.assertEqual(bye.method, "BYE")
        self.assertEqual(str(bye.uri), "sip:alice@192.0.2.1:5070")
        self.assertEqual(len(bye.headers.getAll("Route")), 2)
        self.assertIn("p1.example.com", bye.headers.getAll("Route")[0])
        self.assertEqual(bye.fromAddr.tag, "ourtag")
        self.assertEqual(str(bye.fromAddr.uri), "sips:bob@example.com")
        self.assertEqual(bye.toAddr.tag, "ftag")
        self.assertEqual(str(bye.toAddr.uri), "sip:alice@example.org")
        self.assertEqual(bye.callId, "a84b4c76e66710@pc33.example.org")
        self.assertEqual(tuple(bye.cseq), (seq + 1, "BYE"))
        self.assertEqual(bye.headers.get("Max-Forwards"), "70")
        self.assertIsNone(bye.headers.get("Via"))
        info = dialog.createRequest("INFO", b"Signal=5\r\n", "application/dtmf-relay")
        self.assertEqual(info.cseq.number, seq + 2)
        self.assertEqual(info.body, b"Signal=5\r\n")
        self.assertEqual(info.headers.get("Content-Type"), "application/dtmf-relay")
        self.assertEqual(str(dialog.nextHop(info)), "sip:p1.example.com;lr")

    def test_createRequestStrictRouting(self):
        """
        When the first route has no C{lr}, the Request-URI is that route
        (stripped of C{method}), the rest follow as Route and the remote
        target is the last Route (§12.2.1.1).
        """
        request = invite(
            recordRoute=["<sip:strict.example.com;method=INVITE>", "<sip:p2.example.com;lr>"]
        )
        dialog = Dialog.fromServerRequest(request, "t")
        bye = dialog.createRequest("BYE")
        self.assertEqual(bye.uri.host, "strict.example.com")
        self.assertNotIn("method", bye.uri.params)
        routes = bye.headers.getAll("Route")
        self.assertEqual(len(routes), 2)
        self.assertIn("p2.example.com", routes[0])
        self.assertIn("alice@192.0.2.1:5070", routes[1])
        self.assertEqual(dialog.nextHop(bye).host, "strict.example.com")

    def test_ackAndCancelKeepCSeq(self):
        """ACK and CANCEL do not take a new CSeq number; ACK can be given one."""
        dialog = Dialog.fromServerRequest(invite(), "t")
        seq = dialog.localSeq
        self.assertEqual(dialog.createRequest("ACK", cseq=99).cseq.number, 99)
        self.assertEqual(dialog.createRequest("CANCEL").cseq.number, seq)
        self.assertEqual(dialog.localSeq, seq)

    def test_checkRemoteCSeq(self):
        """
        A request with a lower CSeq than the last is out of order (500,
        §12.2.2); equal or higher is taken and remembered; ACK passes.
        """
        dialog = Dialog.fromServerRequest(invite(cseq=17), "t")
        low = invite(cseq=16)
        self.assertFalse(dialog.checkRemoteCSeq(low))
        self.assertTrue(dialog.checkRemoteCSeq(invite(cseq=20)))
        self.assertEqual(dialog.remoteSeq, 20)
        self.assertFalse(dialog.checkRemoteCSeq(invite(cseq=19)))

    def test_refreshTarget(self):
        """A target refresh with a Contact replaces the remote target."""
        dialog = Dialog.fromServerRequest(invite(), "t")
        dialog.refreshTarget(invite(contact="<sip:alice@198.51.100.7>"))
        self.assertEqual(str(dialog.remoteTarget), "sip:alice@198.51.100.7")
        dialog.refreshTarget(invite(contact=None))
        self.assertEqual(str(dialog.remoteTarget), "sip:alice@198.51.100.7")

    def test_refreshTargetUnusable(self):
        """A Contact that is no usable SIP URI keeps the remote target."""
        dialog = Dialog.fromServerRequest(invite(), "t")
        for contact in ("<tel:+123>", "<http://x>", "*", "<sip:a@b.example;transport=sctp>"):
            dialog.refreshTarget(invite(contact=contact))
            self.assertEqual(str(dialog.remoteTarget), "sip:alice@192.0.2.1:5070")

    def test_checkDialogRequest(self):
        """
        L{checkDialogRequest} accepts usable Record-Route and Contact and
        refuses the others with 400 naming the header.
        """
        checkDialogRequest(invite(recordRoute=["<sip:p1.example.com;lr>"]))
        checkDialogRequest(invite(contact=None))
        for kw, header in [
            (dict(recordRoute=["<sip:p1.example.com;lr"]), "Record-Route"),
            (dict(recordRoute=["<tel:+1>"]), "Record-Route"),
            (dict(recordRoute=["<sip:p.example.com;transport=foo>"]), "Record-Route"),
            (dict(contact="<tel:+1>"), "Contact"),
            (dict(contact="<sip:a@b.example>, <sip:c@d.example>"), "Contact"),
        ]:
            e = self.assertRaises(SIPParseError, checkDialogRequest, invite(**kw))
            self.assertEqual(e.status, 400)
            self.assertIn(header, e.reason)


class DialogUACTests(SynchronousTestCase):
    """
    L{Dialog.fromClientResponse} makes the UAC side (§12.1.2).
    """

    def test_fromResponse(self):
        """
        The route set is the response's Record-Route reversed, the remote
        target its Contact, the local CSeq that of our request.
        """
        request = message(
            "INVITE sip:bob@example.com SIP/2.0",
            "Via: SIP/2.0/UDP 192.0.2.9;branch=z9hG4bKabc",
            "From: <sip:linkrtc@example.net>;tag=ours",
            "To: <sip:bob@example.com>",
            "Call-ID: uac1",
            "CSeq: 100 INVITE",
        )
        response = message(
            "SIP/2.0 200 OK",
            "Via: SIP/2.0/UDP 192.0.2.9;branch=z9hG4bKabc",
            "Record-Route: <sip:p2.example.com;lr>, <sip:p1.example.com;lr>",
            "From: <sip:linkrtc@example.net>;tag=ours",
            "To: <sip:bob@example.com>;tag=theirs",
            "Call-ID: uac1",
            "CSeq: 100 INVITE",
            "Contact: <sip:bob@203.0.113.5>",
        )
        dialog = Dialog.fromClientResponse(request, response)
        self.assertEqual(dialog.id, DialogId("uac1", "ours", "theirs"))
        self.assertEqual([r.uri.host for r in dialog.routeSet], ["p1.example.com", "p2.example.com"])
        self.assertEqual(dialog.localSeq, 100)
        self.assertIsNone(dialog.remoteSeq)
        self.assertEqual(str(dialog.remoteTarget), "sip:bob@203.0.113.5")
        self.assertEqual(dialog.state, "confirmed")
        bye = dialog.createRequest("BYE")
        self.assertEqual(bye.cseq.number, 101)
        self.assertEqual(DialogTable.idForResponse(response), dialog.id)

    def test_noTag(self):
        """A response without To tag makes no dialog."""
        request = message(
            "INVITE sip:bob@example.com SIP/2.0",
            "Via: SIP/2.0/UDP 192.0.2.9;branch=z9hG4bKabc",
            "From: <sip:linkrtc@example.net>;tag=ours",
            "To: <sip:bob@example.com>",
            "Call-ID: uac1",
            "CSeq: 100 INVITE",
        )
        response = message(
            "SIP/2.0 180 Ringing",
            "Via: SIP/2.0/UDP 192.0.2.9;branch=z9hG4bKabc",
            "From: <sip:linkrtc@example.net>;tag=ours",
            "To: <sip:bob@example.com>",
            "Call-ID: uac1",
            "CSeq: 100 INVITE",
        )
        self.assertRaises(ValueError, Dialog.fromClientResponse, request, response)

    def test_unusableContact(self):
        """
        A 2xx whose Contact is no SIP URI: the remote target stays the
        Request-URI, so the dialog can still be ended with BYE.
        """
        request = message(
            "INVITE sip:bob@example.com SIP/2.0",
            "Via: SIP/2.0/UDP 192.0.2.9;branch=z9hG4bKabc",
            "From: <sip:linkrtc@example.net>;tag=ours",
            "To: <sip:bob@example.com>",
            "Call-ID: uac1",
            "CSeq: 100 INVITE",
        )
        response = message(
            "SIP/2.0 200 OK",
            "Via: SIP/2.0/UDP 192.0.2.9;branch=z9hG4bKabc",
            "From: <sip:linkrtc@example.net>;tag=ours",
            "To: <sip:bob@example.com>;tag=theirs",
            "Call-ID: uac1",
            "CSeq: 100 INVITE",
            "Contact: <tel:+123>",
        )
        dialog = Dialog.fromClientResponse(request, response)
        self.assertEqual(str(dialog.remoteTarget), "sip:bob@example.com")


class DialogTableTests(SynchronousTestCase):
    """
    L{DialogTable} finds dialogs by id.
    """

    def test_addFindRemove(self):
        """A request names its dialog by Call-ID, To tag and From tag."""
        table = DialogTable()
        dialog = Dialog.fromServerRequest(invite(), "ourtag")
        table.add(dialog, "leg")
        self.assertEqual(len(table), 1)
        self.assertIn(dialog.id, table)
        bye = message(
            "BYE sip:x@192.0.2.2 SIP/2.0",
            "Via: SIP/2.0/UDP 192.0.2.1;branch=z9hG4bKbye",
            "From: <sip:alice@example.org>;tag=ftag",
            "To: <sips:bob@example.com>;tag=ourtag",
            "Call-ID: a84b4c76e66710@pc33.example.org",
            "CSeq: 18 BYE",
        )
        self.assertEqual(table.findRequest(bye), "leg")
        self.assertIs(table.getDialog(dialog.id), dialog)
        table.remove(dialog.id)
        self.assertEqual(len(table), 0)
        self.assertIsNone(table.findRequest(bye))
        table.remove(dialog.id)

    def test_randomValues(self):
        """Tags differ; CSeq starts are below 2**31."""
        self.assertNotEqual(newTag(), newTag())
        for _ in range(50):
            self.assertTrue(1 <= newCSeq() < 2**31)
