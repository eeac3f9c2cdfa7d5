"""
Tests for L{linkrtc.sip.outbound.InviteClientLeg} (RFC 3261 §13.2, §9.1,
§22, §8.1.3.4; RFC 6026), on the real transaction layer and user agent
with a recording transport and a L{Clock}.
"""

from twisted.internet.task import Clock
from twisted.trial.unittest import SynchronousTestCase
from zope.interface import implementer
from zope.interface.verify import verifyObject

from linkrtc.error import InvalidStateError, TransactionTimeout
from linkrtc.interfaces import ISIPClientLeg, ISIPClientLegListener
from linkrtc.sip.auth import DigestCredentials, makeChallenge, verifyAuthorization
from linkrtc.sip.outbound import InviteClientLeg
from linkrtc.sip.parser import parseMessage
from linkrtc.sip.transaction import TransactionLayer
from linkrtc.sip.transport import Address
from linkrtc.sip.uri import SIPURI, NameAddr, Via, parseURI
from linkrtc.sip.useragent import UserAgent

SDP = b"v=0\r\no=- 1 1 IN IP4 192.0.2.5\r\ns=-\r\nc=IN IP4 192.0.2.5\r\nt=0 0\r\n" \
      b"m=audio 4000 RTP/AVP 0\r\n"
ANSWER = SDP.replace(b"192.0.2.5", b"198.51.100.7")
PROXY = Address("UDP", "198.51.100.1", 5060)


class RecordingTransport:
    """The transport layer's sending side: records what is sent."""

    def __init__(self):
        self.sent = []

    def sendRequest(self, request, destination):
        # Through the wire format, as the peer would see it.
        self.sent.append((parseMessage(request.toBytes()), destination))

    def sendResponse(self, response, source):
        self.sent.append((parseMessage(response.toBytes()), source))

    def isReliable(self, address):
        return getattr(address, "transport", "UDP") != "UDP"

    def localVia(self, transport, branch):
        return Via(transport, "203.0.113.10", 5060, {"branch": branch, "rport": None})

    def localContactURI(self, transport, user=None):
        return SIPURI("sip", user=user, host="203.0.113.10", port=5060)

    def requests(self, method=None):
        return [m for m, _ in self.sent if hasattr(m, "method")
                and (method is None or m.method == method)]

    def responses(self):
        return [m for m, _ in self.sent if hasattr(m, "status")]


@implementer(ISIPClientLegListener)
class RecordingListener:
    def __init__(self):
        self.events = []

    def names(self):
        return [e[0] for e in self.events]

    def legProgress(self, response):
        self.events.append(("progress", response.status))

    def legAnswered(self, response):
        self.events.append(("answered", response.status))

    def legFailed(self, status, reason, response):
        self.events.append(("failed", status, reason))

    def legRequestReceived(self, request, respond):
        self.events.append(("request", request.method))
        respond(200)

    def legTerminated(self, reason):
        self.events.append(("terminated", reason))


class _Handler:
    def inviteReceived(self, leg):
        leg.sendFinal(603)


class LegMixin:
    def setUp(self):
        self.clock = Clock()
        self.transport = RecordingTransport()
        self.ua = UserAgent(None, self.transport, _Handler(), self.clock)
        self.layer = TransactionLayer(self.transport, self.clock, self.ua)
        self.ua.setTransactionLayer(self.layer)
        self.listener = RecordingListener()

    def leg(self, credentials=None, body=SDP, **kwargs):
        leg = InviteClientLeg(
            self.ua, self.clock, parseURI("sip:5551234@pbx.example.com"),
            NameAddr(SIPURI("sip", user="alice", host="pbx.example.com")), proxy=PROXY,
            body=body, credentials=credentials, **kwargs)
        leg.setListener(self.listener)
        leg.start()
        return leg

    def respond(self, status, request=None, toTag="tt1", body=b"", headers=(), contact=True):
        """The far end answers C{request} (default: the last INVITE)."""
        if request is None:
            request = self.transport.requests("INVITE")[-1]
        response = request.createResponse(status, toTag=toTag if status > 100 else None)
        if contact and status < 300 and status > 100:
            response.headers.add("Contact", "<sip:far@192.0.2.99:5070>")
        for name, value in headers:
            response.headers.add(name, value)
        if body:
            response.body = body
            response.headers.set("Content-Type", "application/sdp")
        self.layer.responseReceived(parseMessage(response.toBytes()), PROXY)
        return response

    def farRequest(self, method, leg, cseq=9, branch="z9hG4bKfar1", body=b"", headers=()):
        """The far end sends C{method} in the confirmed dialog (C{body}: SDP, C{headers}: lines)."""
        invite = self.transport.requests("INVITE")[-1]
        extra = "".join(line + "\r\n" for line in headers)
        if body:
            extra += "Content-Type: application/sdp\r\n"
        text = (
            f"{method} sip:alice@203.0.113.10:5060 SIP/2.0\r\n"
            f"Via: SIP/2.0/UDP 192.0.2.99:5070;branch={branch}\r\n"
            "Max-Forwards: 70\r\n"
            f"From: <sip:5551234@pbx.example.com>;tag=tt1\r\n"
            f"To: {invite.headers.get('From')}\r\n"
            f"Call-ID: {leg.callId}\r\n"
            f"CSeq: {cseq} {method}\r\n{extra}Content-Length: {len(body)}\r\n\r\n"
        )
        self.layer.requestReceived(parseMessage(text.encode() + body),
                                   Address("UDP", "192.0.2.99", 5070))


class InviteTests(LegMixin, SynchronousTestCase):
    def test_interfaces(self):
        """The leg provides ISIPClientLeg."""
        verifyObject(ISIPClientLeg, self.leg())
        verifyObject(ISIPClientLegListener, self.listener)

    def test_invite(self):
        """
        The INVITE goes to the proxy with From (our tag), To, Call-ID,
        Contact, a Via with a fresh branch, the SDP and User-Agent.
        """
        leg = self.leg()
        [(invite, destination)] = self.transport.sent
        self.assertEqual(destination, PROXY)
        self.assertEqual(str(invite.uri), "sip:5551234@pbx.example.com")
        self.assertEqual(invite.fromAddr.tag, leg.localTag)
        self.assertIsNone(invite.toAddr.tag)
        self.assertEqual(invite.callId, leg.callId)
        self.assertEqual(str(invite.contacts[0].uri), "sip:203.0.113.10:5060")
        self.assertTrue(invite.topVia.branch.startswith("z9hG4bK"))
        self.assertEqual(invite.body, SDP)
        self.assertEqual(invite.headers.get("Content-Type"), "application/sdp")
        self.assertTrue(invite.headers.get("User-Agent"))
        self.assertEqual(leg.state, "calling")

    def test_offerless(self):
        """An offerless INVITE has no body; the ACK of the 2xx carries C{ackBody}."""
        self.leg(body=None, ackBody=ANSWER)
        invite = self.transport.requests("INVITE")[0]
        self.assertEqual(invite.body, b"")
        self.respond(200, body=SDP)
        [ack] = self.transport.requests("ACK")
        self.assertEqual(ack.body, ANSWER)

    def test_offerlessAnswerMadeFromThe2xx(self):
        """A callable C{ackBody} makes the ACK's answer from the 2xx (once: a retransmission reuses it)."""
        seen = []
        self.leg(body=None, ackBody=lambda response: seen.append(response.body) or ANSWER)
        self.respond(200, body=SDP)
        [ack] = self.transport.requests("ACK")
        self.assertEqual((ack.body, ack.headers.get("Content-Type")), (ANSWER, "application/sdp"))
        self.assertEqual(seen, [SDP])
        self.respond(200, body=SDP)
        self.assertEqual([a.body for a in self.transport.requests("ACK")], [ANSWER, ANSWER])
        self.assertEqual(seen, [SDP])

    def test_delayedAck(self):
        """
        C{delayedAck}: the 2xx confirms the leg and reaches the listener
        with no ACK; its retransmissions are not ACKed; L{sendAck} sends
        the ACK with the answer (the INVITE's CSeq), sent again for each
        retransmission then; a second L{sendAck} does nothing.
        """
        leg = self.leg(body=None, delayedAck=True)
        self.respond(200, body=SDP)
        self.assertEqual((leg.state, self.listener.names()), ("confirmed", ["answered"]))
        self.respond(200, body=SDP)
        self.assertEqual(self.transport.requests("ACK"), [])
        leg.sendAck(ANSWER.decode())
        [ack] = self.transport.requests("ACK")
        invite = self.transport.requests("INVITE")[0]
        self.assertEqual((ack.body, ack.headers.get("Content-Type")), (ANSWER, "application/sdp"))
        self.assertEqual(ack.cseq.number, invite.cseq.number)
        leg.sendAck(b"again")
        self.respond(200, body=SDP)
        self.assertEqual([a.body for a in self.transport.requests("ACK")], [ANSWER, ANSWER])

    def test_delayedAckThenBye(self):
        """A C{delayedAck} leg ended before L{sendAck}: an ACK without body, then the BYE."""
        leg = self.leg(body=None, delayedAck=True)
        self.respond(200, body=SDP)
        leg.sendBye()
        self.assertEqual([r.method for r in self.transport.requests()][-2:],
                         ["ACK", "BYE"])
        [ack] = self.transport.requests("ACK")
        self.assertEqual(ack.body, b"")

    def test_earlyMediaThenAnswer(self):
        """
        100 is not passed on; 183 with SDP is; the 200 is ACKed (to its
        Contact, CSeq of the INVITE, new branch), makes the dialog in the
        user agent's table, and reaches the listener.
        """
        leg = self.leg()
        self.respond(100)
        self.respond(183, body=ANSWER)
        self.assertEqual(self.listener.names(), ["progress"])
        self.assertEqual(leg.state, "proceeding")
        self.respond(200, body=ANSWER)
        self.assertEqual(self.listener.names(), ["progress", "answered"])
        [ack] = self.transport.requests("ACK")
        invite = self.transport.requests("INVITE")[0]
        self.assertEqual(str(ack.uri), "sip:far@192.0.2.99:5070")
        self.assertEqual(ack.cseq.number, invite.cseq.number)
        self.assertNotEqual(ack.topVia.branch, invite.topVia.branch)
        self.assertEqual(ack.toAddr.tag, "tt1")
        self.assertEqual(leg.state, "confirmed")
        self.assertIs(self.ua.dialogs.get(leg.dialog.id), leg)

    def test_2xxRetransmissions(self):
        """
        A repeated 2xx is ACKed again, while the transaction is Accepted and
        after Timer M ended it (RFC 6026: the user agent passes it on).
        """
        self.leg()
        self.respond(200, body=ANSWER)
        self.respond(200, body=ANSWER)
        self.assertEqual(len(self.transport.requests("ACK")), 2)
        self.clock.advance(64 * 0.5 + 1)
        self.assertEqual(self.layer.activeTransactions(), [])
        self.respond(200, body=ANSWER)
        self.assertEqual(len(self.transport.requests("ACK")), 3)
        self.assertEqual(self.listener.names(), ["answered"])

    def test_forked2xx(self):
        """A 2xx from another fork is ACKed and BYEd; the listener hears one answer."""
        leg = self.leg()
        self.respond(200, body=ANSWER)
        self.respond(200, toTag="other", body=ANSWER)
        self.assertEqual(len(self.transport.requests("ACK")), 2)
        [bye] = self.transport.requests("BYE")
        self.assertEqual(bye.toAddr.tag, "other")
        self.assertEqual(leg.remoteTag, "tt1")
        self.assertEqual(self.listener.names(), ["answered"])

    def test_failure(self):
        """A 486 is ACKed by the transaction and reaches the listener as a failure."""
        leg = self.leg()
        self.respond(180)
        self.respond(486)
        self.assertEqual(self.listener.events[-1][:2], ("failed", 486))
        [ack] = self.transport.requests("ACK")
        self.assertEqual(ack.topVia.branch, self.transport.requests("INVITE")[0].topVia.branch)
        self.assertEqual(leg.state, "terminated")

    def test_timeout(self):
        """No response at all: Timer B, a failure with 408."""
        self.leg()
        self.clock.advance(64 * 0.5 + 1)
        self.assertEqual(self.listener.events, [("failed", 408, "no response (timeout)")])


class AuthTests(LegMixin, SynchronousTestCase):
    def credentials(self, password="secret"):
        return DigestCredentials("alice", password=password)

    def test_proxyAuth(self):
        """
        A 407 is answered with a new INVITE (after the transaction's ACK):
        same Call-ID, From tag, To; CSeq + 1; a new branch; valid
        Proxy-Authorization.
        """
        leg = self.leg(self.credentials())
        first = self.transport.requests("INVITE")[0]
        self.respond(407, headers=[("Proxy-Authenticate", makeChallenge("pbx", nonce="n1"))])
        self.assertEqual(len(self.transport.requests("INVITE")), 1)
        self.clock.advance(0)
        methods = [r.method for r in self.transport.requests()]
        self.assertEqual(methods, ["INVITE", "ACK", "INVITE"])
        second = self.transport.requests("INVITE")[1]
        self.assertEqual(second.callId, first.callId)
        self.assertEqual(second.fromAddr.tag, leg.localTag)
        self.assertIsNone(second.toAddr.tag)
        self.assertEqual(second.cseq.number, first.cseq.number + 1)
        self.assertNotEqual(second.topVia.branch, first.topVia.branch)
        self.assertTrue(verifyAuthorization(second, "secret", "pbx",
                                            header="Proxy-Authorization"))
        self.respond(200, body=ANSWER)
        [_, ack] = self.transport.requests("ACK")
        self.assertEqual(ack.headers.get("Proxy-Authorization"),
                         second.headers.get("Proxy-Authorization"))
        self.assertEqual(self.listener.names(), ["answered"])

    def test_wwwAuth(self):
        """A 401 is answered in Authorization."""
        self.leg(self.credentials())
        self.respond(401, headers=[("WWW-Authenticate", makeChallenge("pbx", nonce="n1"))])
        self.clock.advance(0)
        second = self.transport.requests("INVITE")[1]
        self.assertTrue(verifyAuthorization(second, "secret", "pbx"))

    def test_rejectedOnce(self):
        """
        Challenged again after our answer (a wrong password): one clear
        failure, no third INVITE.
        """
        self.leg(self.credentials("wrong"))
        self.respond(407, headers=[("Proxy-Authenticate", makeChallenge("pbx", nonce="n1"))])
        self.clock.advance(0)
        self.respond(407, headers=[("Proxy-Authenticate", makeChallenge("pbx", nonce="n2"))])
        self.clock.advance(10)
        self.assertEqual(len(self.transport.requests("INVITE")), 2)
        [(name, status, reason)] = self.listener.events
        self.assertEqual((name, status), ("failed", 407))
        self.assertIn("authentication failed", reason)

    def test_noCredentials(self):
        """A challenge without credentials is a failure with its status."""
        self.leg()
        self.respond(401, headers=[("WWW-Authenticate", makeChallenge("pbx"))])
        self.assertEqual(self.listener.events[0][:2], ("failed", 401))


class RedirectTests(LegMixin, SynchronousTestCase):
    def test_followOnce(self):
        """
        A 302 is followed to its Contact (CSeq + 1, same Call-ID); a 302
        back to a target already tried is a failure (no loop).
        """
        leg = self.leg()
        self.respond(302, headers=[("Contact", "<sip:5551234@other.example.com>")])
        self.clock.advance(0)
        second = self.transport.requests("INVITE")[1]
        self.assertEqual(str(second.uri), "sip:5551234@other.example.com")
        self.respond(302, headers=[("Contact", "<sip:5551234@pbx.example.com>"),
                                   ("Contact", "<sip:5551234@other.example.com>")])
        self.clock.advance(0)
        self.assertEqual(len(self.transport.requests("INVITE")), 2)
        self.assertEqual(self.listener.events[0][:2], ("failed", 302))
        self.assertEqual([str(t) for t in leg.targets],
                         ["sip:5551234@pbx.example.com", "sip:5551234@other.example.com"])

    def test_highestQFirst(self):
        """The Contact with the highest q is tried first."""
        self.leg()
        self.respond(302, headers=[("Contact", "<sip:a@x.example.com>;q=0.1, "
                                               "<sip:b@y.example.com>;q=0.9")])
        self.clock.advance(0)
        self.assertEqual(str(self.transport.requests("INVITE")[1].uri), "sip:b@y.example.com")


class CancelTests(LegMixin, SynchronousTestCase):
    def test_cancelWhileRinging(self):
        """
        After a 180, cancel() sends CANCEL (same branch, CSeq number); the
        487 is ACKed and the listener hears nothing more.
        """
        leg = self.leg()
        self.respond(180)
        leg.cancel()
        [cancel] = self.transport.requests("CANCEL")
        invite = self.transport.requests("INVITE")[0]
        self.assertEqual(cancel.topVia.branch, invite.topVia.branch)
        self.assertEqual(cancel.cseq.number, invite.cseq.number)
        self.respond(200, request=cancel)
        self.respond(487)
        self.assertEqual(len(self.transport.requests("ACK")), 1)
        self.assertEqual(self.listener.names(), ["progress"])
        self.assertEqual(leg.state, "terminated")
        self.clock.advance(100)
        self.assertEqual(self.clock.getDelayedCalls(), [])

    def test_cancelReason(self):
        """cancel(reason) puts a Reason header in the CANCEL (RFC 3326); none without."""
        leg = self.leg()
        self.respond(180)
        leg.cancel(reason='SIP;cause=200;text="Call completed elsewhere"')
        [cancel] = self.transport.requests("CANCEL")
        self.assertEqual(cancel.headers.getAll("Reason"),
                         ['SIP;cause=200;text="Call completed elsewhere"'])

    def test_cancelReasonAfterProvisional(self):
        """A CANCEL that waits for the first 1xx still carries the Reason."""
        leg = self.leg()
        leg.cancel(reason='SIP;cause=200;text="Call completed elsewhere"')
        self.respond(183)
        [cancel] = self.transport.requests("CANCEL")
        self.assertEqual(cancel.headers.get("Reason"),
                         'SIP;cause=200;text="Call completed elsewhere"')

    def test_cancelBeforeProvisional(self):
        """Before any 1xx nothing is sent (§9.1); the CANCEL goes with the first 1xx."""
        leg = self.leg()
        leg.cancel()
        self.assertEqual(self.transport.requests("CANCEL"), [])
        self.respond(180)
        self.assertEqual(len(self.transport.requests("CANCEL")), 1)
        self.assertEqual(self.listener.names(), [])

    def test_2xxAfterCancel(self):
        """A 2xx that crosses the CANCEL is ACKed and BYEd (§15, §9.1)."""
        leg = self.leg()
        self.respond(180)
        leg.cancel()
        self.respond(200, body=ANSWER)
        self.assertEqual(len(self.transport.requests("ACK")), 1)
        self.assertEqual(len(self.transport.requests("BYE")), 1)
        self.assertEqual(self.listener.names(), ["progress"])
        self.assertEqual(leg.state, "terminated")

    def test_noFinalAfterCancel(self):
        """64*T1 after the CANCEL without a final response, the INVITE is given up."""
        leg = self.leg()
        self.respond(180)
        leg.cancel()
        self.clock.advance(64 * 0.5 + 1)
        self.assertEqual(leg.state, "terminated")
        self.assertEqual([tx for tx in self.layer.activeTransactions()
                          if tx.request.method == "INVITE"], [])


class DialogTests(LegMixin, SynchronousTestCase):
    def confirmed(self):
        leg = self.leg()
        self.respond(200, body=ANSWER)
        return leg

    def test_byeFromFarEnd(self):
        """A BYE in the dialog reaches the listener; its 200 ends the leg."""
        leg = self.confirmed()
        self.farRequest("BYE", leg)
        self.assertEqual(self.listener.names(), ["answered", "request"])
        [response] = self.transport.responses()
        self.assertEqual(response.status, 200)
        self.assertEqual(leg.state, "terminated")
        self.assertEqual(len(self.ua.dialogs), 0)

    def test_sendBye(self):
        """sendBye sends BYE to the remote target with the next CSeq; the dialog ends."""
        leg = self.confirmed()
        d = leg.sendBye()
        [bye] = self.transport.requests("BYE")
        self.assertEqual(str(bye.uri), "sip:far@192.0.2.99:5070")
        self.assertEqual(bye.cseq.number, self.transport.requests("INVITE")[0].cseq.number + 1)
        self.respond(200, request=bye)
        self.assertEqual(self.successResultOf(d).status, 200)
        self.assertEqual(leg.state, "terminated")
        self.assertEqual(len(self.ua.dialogs), 0)

    def test_info(self):
        """sendRequest sends INFO in the dialog; ACK and CANCEL are refused."""
        leg = self.confirmed()
        leg.sendRequest("INFO", body=b"Signal=5", contentType="application/dtmf-relay")
        [info] = self.transport.requests("INFO")
        self.assertEqual(info.body, b"Signal=5")
        self.assertRaises(ValueError, leg.sendRequest, "ACK")
        self.assertRaises(ValueError, leg.sendRequest, "CANCEL")

    def test_sendReinvite(self):
        """
        sendRequest("INVITE") sends a re-INVITE in the dialog (next CSeq,
        our Contact, the SDP); its 2xx is ACKed (same CSeq, to the new
        remote target), and again when it comes as a stray retransmission;
        a second re-INVITE while one is pending fails.
        """
        leg = self.confirmed()
        [first] = self.transport.requests("INVITE")
        d = leg.sendRequest("INVITE", SDP, "application/sdp")
        [_, reinvite] = self.transport.requests("INVITE")
        self.assertEqual(reinvite.cseq.number, first.cseq.number + 1)
        self.assertEqual(str(reinvite.uri), "sip:far@192.0.2.99:5070")
        self.assertEqual(reinvite.toAddr.tag, "tt1")
        self.assertEqual(reinvite.fromAddr.tag, leg.localTag)
        self.assertEqual(reinvite.body, SDP)
        self.assertTrue(reinvite.contacts)
        self.failureResultOf(leg.sendRequest("INVITE", SDP, "application/sdp"),
                             InvalidStateError)
        ok = self.respond(200, request=reinvite, body=ANSWER, contact=False,
                          headers=[("Contact", "<sip:far@192.0.2.98:5072>")])
        response = parseMessage(ok.toBytes())
        self.assertEqual(self.successResultOf(d).status, 200)
        acks = self.transport.requests("ACK")
        self.assertEqual(len(acks), 2)
        self.assertEqual(tuple(acks[-1].cseq), (reinvite.cseq.number, "ACK"))
        self.assertEqual(str(acks[-1].uri), "sip:far@192.0.2.98:5072")
        self.ua.responseReceived(response)
        again = self.transport.requests("ACK")
        self.assertEqual(len(again), 3)
        self.assertEqual(tuple(again[-1].cseq), (reinvite.cseq.number, "ACK"))
        self.assertEqual(leg.state, "confirmed")
        # One re-INVITE at a time, but another once this one is done.
        leg.sendRequest("INVITE", SDP, "application/sdp")
        self.assertEqual(len(self.transport.requests("INVITE")), 3)

    def test_reinviteRefused(self):
        """A 488 to our re-INVITE: the transaction ACKs it, the dialog stays."""
        leg = self.confirmed()
        d = leg.sendRequest("INVITE", SDP, "application/sdp")
        [_, reinvite] = self.transport.requests("INVITE")
        self.respond(488, request=reinvite)
        self.assertEqual(self.successResultOf(d).status, 488)
        self.assertEqual(leg.state, "confirmed")
        self.assertEqual(self.listener.names(), ["answered"])
        leg.sendRequest("INVITE", SDP, "application/sdp")
        self.assertEqual(len(self.transport.requests("INVITE")), 3)

    def test_reinviteTimeout(self):
        """No answer to our re-INVITE: the dialog ends (§12.2.1.2)."""
        leg = self.confirmed()
        d = leg.sendRequest("INVITE", SDP, "application/sdp")
        self.clock.advance(64 * self.ua.T1 + 1)
        self.failureResultOf(d, TransactionTimeout)
        self.assertEqual(leg.state, "terminated")
        self.assertEqual(self.listener.names()[-1], "terminated")

    def test_reinviteGlare(self):
        """Their re-INVITE while ours is pending: 491 (§14.2), the listener hears nothing."""
        leg = self.confirmed()
        leg.sendRequest("INVITE", SDP, "application/sdp")
        self.farRequest("INVITE", leg)
        self.assertEqual([r.status for r in self.transport.responses()], [491])
        self.assertEqual(self.listener.names(), ["answered"])

    def test_reinviteWhileTheirsPending(self):
        """
        Their second re-INVITE while the first is being answered: 500 with
        a Retry-After of 0 to 10 seconds (§14.2, as the server leg); once
        the first is answered the next one is taken.
        """
        held = []
        self.listener.legRequestReceived = lambda request, respond: held.append(respond)
        leg = self.confirmed()
        self.farRequest("INVITE", leg)
        self.farRequest("INVITE", leg, cseq=10, branch="z9hG4bKfar2")
        [busy] = self.transport.responses()
        self.assertEqual(busy.status, 500)
        self.assertIn(int(busy.headers.get("Retry-After")), range(0, 11))
        self.assertEqual(len(held), 1)
        held[0](200, body=ANSWER, contentType="application/sdp")
        self.assertEqual([r.status for r in self.transport.responses()], [500, 200])
        self.farRequest("INVITE", leg, cseq=11, branch="z9hG4bKfar3")
        self.assertEqual(len(held), 2)

    def test_reinviteCredentials(self):
        """A re-INVITE carries the credentials of the trunk's challenge, and so does its ACK."""
        leg = self.leg(DigestCredentials("alice", password="secret"))
        self.respond(407, headers=[("Proxy-Authenticate", makeChallenge("pbx", nonce="n1"))])
        self.clock.advance(0)
        self.respond(200, body=ANSWER)
        leg.sendRequest("INVITE", SDP, "application/sdp")
        reinvite = self.transport.requests("INVITE")[-1]
        self.assertTrue(verifyAuthorization(reinvite, "secret", "pbx",
                                            header="Proxy-Authorization"))
        self.respond(200, request=reinvite, body=ANSWER)
        ack = self.transport.requests("ACK")[-1]
        self.assertEqual(ack.headers.get("Proxy-Authorization"),
                         reinvite.headers.get("Proxy-Authorization"))

    def test_byeBeforeConfirmed(self):
        """sendBye before the 2xx fails."""
        leg = self.leg()
        self.failureResultOf(leg.sendBye())
