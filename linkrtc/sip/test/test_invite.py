"""
Tests for L{linkrtc.sip.invite.InviteServerLeg} (RFC 3261 §13.3, §12.1.1,
§15; RFC 6026).
"""

from twisted.trial.unittest import SynchronousTestCase

from linkrtc.error import InvalidStateError, SIPParseError, TransactionTimeout
from linkrtc.sip.test.test_useragent import SDP, UserAgentMixin, request
from linkrtc.sip.transport import Address


def retransmissionTimes(clock, tx, until, status=200):
    """Advance C{clock} in 0.25 s steps; return the times C{status} was sent again."""
    times = []
    count = tx.statuses.count(status)
    t = 0.0
    while t < until:
        clock.advance(0.25)
        t += 0.25
        now = tx.statuses.count(status)
        if now > count:
            times.extend([t] * (now - count))
            count = now
    return times


class ResponseTests(UserAgentMixin, SynchronousTestCase):
    """
    Provisional and final responses to the INVITE.
    """

    def test_provisional(self):
        """
        A 180 carries our To tag, a Contact with our address, the
        Record-Route of the INVITE and the Server header.
        """
        tx, leg = self.invite(extra=("Record-Route: <sip:p1.example.com;lr>",))
        leg.sendProvisional(180)
        response = tx.responses[-1]
        self.assertEqual(response.status, 180)
        self.assertEqual(response.toAddr.tag, leg.localTag)
        self.assertEqual(response.contacts[0].uri.host, "203.0.113.10")
        self.assertEqual(response.headers.getAll("Record-Route"), ["<sip:p1.example.com;lr>"])
        self.assertTrue(response.headers.get("Server"))
        leg.sendProvisional(183, body=SDP, contentType="application/sdp")
        self.assertEqual(tx.responses[-1].body, SDP)
        self.assertEqual(tx.responses[-1].headers.get("Content-Type"), "application/sdp")

    def test_provisionalBadStatus(self):
        """Only 101-199 are provisional; none after the final response."""
        tx, leg = self.invite()
        self.assertRaises(ValueError, leg.sendProvisional, 100)
        self.assertRaises(ValueError, leg.sendProvisional, 200)
        leg.sendFinal(480)
        self.assertRaises(InvalidStateError, leg.sendProvisional, 180)

    def test_reject(self):
        """
        A 486 goes out with our tag and no Contact; the leg ends and is
        forgotten by the core; a second final raises.
        """
        tx, leg = self.invite()
        leg.sendFinal(486, headers=[("Retry-After", "60")])
        response = tx.responses[-1]
        self.assertEqual(response.status, 486)
        self.assertEqual(response.toAddr.tag, leg.localTag)
        self.assertNotIn("Contact", response.headers)
        self.assertEqual(response.headers.get("Retry-After"), "60")
        self.assertEqual(leg.state, "terminated")
        self.assertEqual(self.ua.legs, set())
        self.assertEqual(len(self.ua.dialogs), 0)
        self.assertRaises(InvalidStateError, leg.sendFinal, 500)
        self.assertRaises(ValueError, leg.sendFinal, 180)
        self.assertEqual(self.clock.getDelayedCalls(), [])

    def test_accept(self):
        """
        A 200 carries Contact, our tag and the SDP, and makes the dialog
        (registered in the core's table).
        """
        tx, leg = self.invite()
        leg.sendFinal(200, body=SDP, contentType="application/sdp")
        response = tx.responses[-1]
        self.assertEqual(response.status, 200)
        self.assertEqual(response.toAddr.tag, leg.localTag)
        self.assertEqual(str(response.contacts[0].uri), "sip:203.0.113.10:5060")
        self.assertEqual(response.body, SDP)
        self.assertEqual(leg.state, "accepted")
        self.assertEqual(leg.dialog.id, ("call-1", leg.localTag, "ft1"))
        self.assertEqual(str(leg.dialog.remoteTarget), "sip:alice@192.0.2.1:5060")
        self.assertIs(self.ua.dialogs.get(leg.dialog.id), leg)

    def test_contactForTCP(self):
        """Over TCP our Contact says ;transport=tcp."""
        tx = self.receive(request("INVITE"), source=Address("TCP", "192.0.2.1", 40000))
        leg = self.handler.legs[-1]
        leg.sendFinal(200)
        self.assertEqual(tx.responses[-1].contacts[0].uri.params.get("transport"), "tcp")

    def test_retransmit2xx(self):
        """
        On UDP the leg sends the 2xx again at T1, 2*T1, 4*T1... capped at T2
        (§13.3.1.4) until the ACK, which reaches the listener.
        """
        tx, leg = self.invite()
        leg.sendFinal(200, body=SDP, contentType="application/sdp")
        times = retransmissionTimes(self.clock, tx, 12)
        self.assertEqual(times, [0.5, 1.5, 3.5, 7.5, 11.5])
        self.assertEqual(tx.responses[-1].body, SDP)
        ack = request("ACK", toTag=leg.localTag, contact=None)
        self.receive(ack)
        self.assertEqual(self.handler.listener.names(), ["acknowledged"])
        self.assertIs(self.handler.listener.events[0][1], ack)
        self.assertEqual(leg.state, "confirmed")
        self.assertEqual(retransmissionTimes(self.clock, tx, 40), [])
        self.assertEqual(self.clock.getDelayedCalls(), [])
        self.receive(request("ACK", toTag=leg.localTag, contact=None))
        self.assertEqual(self.handler.listener.names(), ["acknowledged"])

    def test_ackTimeout(self):
        """
        Without ACK the leg gives up after 64*T1 and the listener hears
        C{legAckTimeout} (§13.3.1.4).
        """
        tx, leg = self.invite()
        leg.sendFinal(200)
        times = retransmissionTimes(self.clock, tx, 31.75)
        self.assertEqual(times, [0.5, 1.5, 3.5, 7.5, 11.5, 15.5, 19.5, 23.5, 27.5, 31.5])
        self.assertEqual(self.handler.listener.names(), [])
        self.clock.advance(0.25)
        self.assertEqual(self.handler.listener.names(), ["ackTimeout"])
        self.assertEqual(self.clock.getDelayedCalls(), [])

    def test_reliableNoRetransmission(self):
        """On TCP the 2xx is sent once; the ACK timeout still runs."""
        tx = self.receive(request("INVITE"), source=Address("TCP", "192.0.2.1", 40000))
        leg = self.handler.legs[-1]
        leg.sendFinal(200)
        self.assertEqual(retransmissionTimes(self.clock, tx, 32), [])
        self.assertEqual(self.handler.listener.names(), ["ackTimeout"])

    def test_streamConnectionHeld(self):
        """
        A dialog made over a stream holds its connection open (no idle close
        mid-call) and releases it when the dialog ends.
        """
        from linkrtc.sip.transport import Source

        class Connection:
            holds = 0

            def hold(self):
                self.holds += 1

            def release(self):
                self.holds -= 1

        connection = Connection()
        self.receive(request("INVITE"),
                     source=Source("TCP", "192.0.2.1", 40000, connection=connection))
        leg = self.handler.legs[-1]
        self.assertEqual(connection.holds, 0)
        leg.sendFinal(200)
        self.assertEqual(connection.holds, 1)
        leg.transportFailed("gone")
        self.assertEqual(connection.holds, 0)

    def test_retransmitAfterTransactionEnded(self):
        """Once the transaction is gone, the 2xx goes straight to the transport."""
        tx, leg = self.invite()
        leg.sendFinal(200)
        tx.state = "terminated"
        self.clock.advance(0.5)
        [(response, source)] = self.transport.responses
        self.assertEqual(response.status, 200)
        self.assertEqual(source, tx.source)


class DialogRequestTests(UserAgentMixin, SynchronousTestCase):
    """
    Requests inside the dialog, both ways.
    """

    def confirmed(self, **kw):
        tx, leg = self.invite(**kw)
        leg.sendFinal(200, body=SDP, contentType="application/sdp")
        self.receive(request("ACK", toTag=leg.localTag, contact=None))
        del self.handler.listener.events[:]
        return leg

    def test_sendBye(self):
        """
        BYE goes on a client transaction to the remote target, with our
        Via, the dialog's tags and a higher CSeq; its 200 fires the
        Deferred and the dialog is gone.
        """
        leg = self.confirmed()
        d = leg.sendBye()
        [(bye, destination, listener)] = self.transactions.sent
        self.assertEqual(bye.method, "BYE")
        self.assertEqual(destination, Address("UDP", "192.0.2.1", 5060))
        self.assertEqual(bye.topVia.host, "203.0.113.10")
        self.assertTrue(bye.topVia.branch.startswith("z9hG4bK"))
        self.assertEqual(bye.fromAddr.tag, leg.localTag)
        self.assertEqual(bye.toAddr.tag, "ft1")
        self.assertEqual(bye.cseq.number, leg.dialog.localSeq)
        self.assertEqual(bye.headers.get("User-Agent"), "LinkRTC")  # no version
        self.assertEqual(leg.state, "terminating")
        ok = bye.createResponse(200)
        listener.responseReceived(bye.createResponse(100), None)
        self.assertNoResult(d)
        listener.responseReceived(ok, None)
        self.assertIs(self.successResultOf(d), ok)
        self.assertEqual(leg.state, "terminated")
        self.assertEqual(len(self.ua.dialogs), 0)
        self.assertEqual(self.ua.legs, set())
        self.failureResultOf(leg.sendBye(), InvalidStateError)

    def test_byeTimeout(self):
        """A BYE that times out fails with TransactionTimeout; the dialog is gone."""
        leg = self.confirmed()
        d = leg.sendBye()
        self.transactions.sent[0][2].transactionTimedOut(None)
        self.failureResultOf(d, TransactionTimeout)
        self.assertEqual(len(self.ua.dialogs), 0)
        self.assertEqual(self.ua.legs, set())

    def test_byeBeforeAnswer(self):
        """sendBye without a 2xx fails with InvalidStateError."""
        tx, leg = self.invite()
        self.failureResultOf(leg.sendBye(), InvalidStateError)

    def test_byeLooseRoute(self):
        """With a Record-Route the BYE goes to the first (loose) route."""
        leg = self.confirmed(extra=("Record-Route: <sip:192.0.2.50:5070;lr>",
                                    "Content-Type: application/sdp"))
        leg.sendBye()
        [(bye, destination, _)] = self.transactions.sent
        self.assertEqual(destination, Address("UDP", "192.0.2.50", 5070))
        self.assertEqual(bye.headers.getAll("Route"), ["<sip:192.0.2.50:5070;lr>"])
        self.assertEqual(str(bye.uri), "sip:alice@192.0.2.1:5060")

    def test_crossingBye(self):
        """Their BYE while ours is out: 200, the listener is not bothered."""
        leg = self.confirmed()
        leg.sendBye()
        tx = self.receive(request("BYE", toTag=leg.localTag, cseq=2))
        self.assertEqual(tx.statuses, [200])
        self.assertEqual(self.handler.listener.events, [])

    def test_byeBeforeAck(self):
        """Their BYE before the ACK stops the 2xx retransmissions."""
        tx, leg = self.invite()
        leg.sendFinal(200)
        btx = self.receive(request("BYE", toTag=leg.localTag, cseq=2))
        self.handler.listener.events[-1][2](200)
        self.assertEqual(btx.statuses, [200])
        self.assertEqual(self.clock.getDelayedCalls(), [])
        self.assertEqual(self.ua.legs, set())

    def test_noListenerBye(self):
        """A leg without listener answers BYE 200 itself."""
        self.ua.inviteHandler = type("H", (), {"inviteReceived": lambda s, leg: None})()
        tx = self.receive(request("INVITE"))
        leg = next(iter(self.ua.legs))
        leg.sendFinal(200)
        self.receive(request("ACK", toTag=leg.localTag, contact=None))
        btx = self.receive(request("BYE", toTag=leg.localTag, cseq=2))
        self.assertEqual(btx.statuses, [200])
        self.assertEqual(tx.statuses[:2], [100, 200])
        self.assertEqual(self.ua.legs, set())

    def test_respondOnce(self):
        """The C{respond} of an in-dialog request takes one final response."""
        leg = self.confirmed()
        self.receive(request("INFO", toTag=leg.localTag, cseq=2))
        respond = self.handler.listener.events[-1][2]
        respond(200)
        self.assertRaises(InvalidStateError, respond, 200)

    def test_sendInfo(self):
        """sendRequest sends INFO in the dialog and fires with the final response."""
        leg = self.confirmed()
        d = leg.sendRequest("INFO", b"Signal=1\r\n", "application/dtmf-relay")
        [(info, destination, listener)] = self.transactions.sent
        self.assertEqual(info.method, "INFO")
        self.assertEqual(info.body, b"Signal=1\r\n")
        self.assertEqual(info.headers.get("Content-Type"), "application/dtmf-relay")
        ok = info.createResponse(200)
        listener.responseReceived(ok, None)
        self.assertIs(self.successResultOf(d), ok)
        self.assertEqual(leg.state, "confirmed")
        self.assertRaises(ValueError, leg.sendRequest, "ACK")

    def test_sendRequest481(self):
        """A 481 to our request ends the dialog (§12.2.1.2)."""
        leg = self.confirmed()
        d = leg.sendRequest("INFO")
        info, _, listener = self.transactions.sent[0]
        listener.responseReceived(info.createResponse(481), None)
        self.assertEqual(self.successResultOf(d).status, 481)
        self.assertEqual(self.handler.listener.names(), ["terminated"])
        self.assertEqual(len(self.ua.dialogs), 0)

    def test_sendReinvite(self):
        """
        Our re-INVITE's 2xx is ACKed straight over the transport (same
        CSeq, new Via), and again for a repeated 2xx.
        """
        leg = self.confirmed()
        d = leg.sendRequest("INVITE", SDP, "application/sdp")
        reinvite, destination, listener = self.transactions.sent[0]
        self.assertEqual(reinvite.contacts[0].uri.host, "203.0.113.10")
        self.failureResultOf(leg.sendRequest("INVITE"), InvalidStateError)
        ok = reinvite.createResponse(200)
        ok.headers.set("Contact", "<sip:alice@198.51.100.9>")
        listener.responseReceived(ok, None)
        self.assertIs(self.successResultOf(d), ok)
        [(ack, ackDestination)] = self.transport.requests
        self.assertEqual(ack.method, "ACK")
        self.assertEqual(tuple(ack.cseq), (reinvite.cseq.number, "ACK"))
        self.assertNotEqual(ack.topVia.branch, reinvite.topVia.branch)
        self.assertEqual(ackDestination, destination)
        self.assertEqual(str(leg.dialog.remoteTarget), "sip:alice@198.51.100.9")
        self.ua.responseReceived(ok)
        self.assertEqual(len(self.transport.requests), 2)

    def test_receiveReinvite(self):
        """
        A re-INVITE goes to the listener; its 2xx has our Contact and is
        retransmitted until its ACK, which the listener hears.
        """
        leg = self.confirmed()
        tx = self.receive(
            request("INVITE", toTag=leg.localTag, cseq=2, body=SDP,
                    contact="<sip:alice@198.51.100.9>",
                    extra=("Content-Type: application/sdp",))
        )
        [(name, reinvite, respond)] = self.handler.listener.events
        again = self.receive(request("INVITE", toTag=leg.localTag, cseq=3,
                                     branch="z9hG4bK-other"))
        self.assertEqual(again.statuses, [500])
        self.assertTrue(again.responses[0].headers.get("Retry-After"))
        respond(200, body=SDP, contentType="application/sdp")
        self.assertEqual(tx.statuses[-1], 200)
        self.assertEqual(tx.responses[-1].contacts[0].uri.host, "203.0.113.10")
        self.assertEqual(str(leg.dialog.remoteTarget), "sip:alice@198.51.100.9")
        self.assertEqual(retransmissionTimes(self.clock, tx, 1), [0.5])
        self.receive(request("ACK", toTag=leg.localTag, cseq=2, contact=None))
        self.assertEqual(self.handler.listener.names(), ["request", "acknowledged"])
        self.assertEqual(self.clock.getDelayedCalls(), [])

    def test_glare(self):
        """A re-INVITE while ours is pending: 491 (§14.2)."""
        leg = self.confirmed()
        leg.sendRequest("INVITE", SDP, "application/sdp")
        tx = self.receive(request("INVITE", toTag=leg.localTag, cseq=2))
        self.assertEqual(tx.statuses, [491])

    def test_earlyBye(self):
        """BYE with our tag before the final response: 200, and the leg is cancelled."""
        tx, leg = self.invite()
        leg.sendProvisional(180)
        btx = self.receive(request("BYE", toTag=leg.localTag, cseq=2))
        self.assertEqual(btx.statuses, [200])
        self.assertEqual(self.handler.listener.names(), ["cancelled"])
        itx = self.receive(request("INFO", toTag=leg.localTag, cseq=3))
        self.assertEqual(itx.statuses, [481])

    def test_earlyUpdateRefresh(self):
        """
        An UPDATE without a body in the early dialog refreshes it (RFC 3311
        §5.2): 200 with our tag and Contact; the INVITE goes on.
        """
        tx, leg = self.invite()
        leg.sendProvisional(180)
        utx = self.receive(request("UPDATE", toTag=leg.localTag, cseq=2))
        self.assertEqual(utx.statuses, [200])
        response = utx.responses[0]
        self.assertEqual(response.toAddr.tag, leg.localTag)
        self.assertEqual(response.contacts[0].uri.host, "203.0.113.10")
        self.assertNotIn("cancelled", self.handler.listener.names())
        leg.sendFinal(200, body=SDP, contentType="application/sdp")
        self.assertEqual(tx.statuses[-1], 200)

    def test_earlyUpdateOffer(self):
        """An UPDATE with an offer in the early dialog gets 488; the call goes on."""
        tx, leg = self.invite()
        leg.sendProvisional(183)
        utx = self.receive(request("UPDATE", toTag=leg.localTag, cseq=2, body=SDP,
                                   extra=("Content-Type: application/sdp",)))
        self.assertEqual(utx.statuses, [488])
        self.assertEqual(self.handler.listener.names(), [])


INVITE = (
    "INVITE sip:bob@192.0.2.10 SIP/2.0\r\n"
    "Via: SIP/2.0/UDP 192.0.2.1:5060;branch=z9hG4bK-inv1;rport\r\n"
    "Max-Forwards: 70\r\n"
    "From: <sip:alice@example.org>;tag=a1\r\n"
    "To: <sip:bob@example.com>\r\n"
    "Call-ID: real-1\r\n"
    "CSeq: 10 INVITE\r\n"
    "Contact: <sip:alice@192.0.2.1:5060>\r\n"
    "Content-Type: application/sdp\r\n"
    "Content-Length: %d\r\n\r\n" % (len(SDP),)
).encode("ascii") + SDP


def inDialog(method, toTag, branch, cseq=10, cseqMethod=None):
    return (
        "%s sip:bob@192.0.2.10 SIP/2.0\r\n"
        "Via: SIP/2.0/UDP 192.0.2.1:5060;branch=%s;rport\r\n"
        "Max-Forwards: 70\r\n"
        "From: <sip:alice@example.org>;tag=a1\r\n"
        "To: <sip:bob@example.com>%s\r\n"
        "Call-ID: real-1\r\n"
        "CSeq: %d %s\r\n"
        "Content-Length: 0\r\n\r\n"
        % (method, branch, ";tag=" + toTag if toTag else "", cseq, cseqMethod or method)
    ).encode("ascii")


class RealStackTests(SynchronousTestCase):
    """
    Whole calls through the real transport and transaction layers on a
    fake UDP socket.
    """

    def setUp(self):
        from linkrtc.sip.test.test_torture_ua import Stack
        from linkrtc.sip.test.test_useragent import FakeInviteHandler

        self.stack = Stack()
        self.handler = FakeInviteHandler()
        self.stack.ua.inviteHandler = self.handler
        self.addCleanup(self.stack.stop)

    def written(self):
        from linkrtc.sip.parser import parseMessage

        return [(parseMessage(d), addr) for d, addr in self.stack.udp.transport.written]

    def test_answeredCall(self):
        """
        INVITE, 100, 180, 200 (retransmitted until the ACK), ACK, our BYE
        and its 200: the leg and dialog are gone at the end.
        """
        stack = self.stack
        stack.feed(INVITE)
        [leg] = self.handler.legs
        leg.sendProvisional(180)
        leg.sendFinal(200, body=SDP, contentType="application/sdp")
        stack.reactor.advance(0.5)
        statuses = [m.status for m, _ in self.written()]
        self.assertEqual(statuses, [100, 180, 200, 200])
        stack.feed(inDialog("ACK", leg.localTag, "z9hG4bK-ack1"))
        self.assertEqual(self.handler.listener.names(), ["acknowledged"])
        stack.reactor.advance(5)
        self.assertEqual(len(self.written()), 4)
        d = leg.sendBye()
        bye, addr = self.written()[-1]
        self.assertEqual(bye.method, "BYE")
        self.assertEqual(addr, ("192.0.2.1", 5060))
        self.assertEqual(bye.topVia.host, "192.0.2.10")
        self.assertEqual(bye.toAddr.tag, "a1")
        ok = bye.createResponse(200)
        stack.udp.protocol.datagramReceived(ok.toBytes(), ("192.0.2.1", 5060))
        self.assertEqual(self.successResultOf(d).status, 200)
        self.assertEqual(len(stack.ua.dialogs), 0)
        self.assertEqual(stack.ua.legs, set())

    def test_theirBye(self):
        """Their BYE reaches the listener; our 200 goes back; the dialog ends."""
        stack = self.stack
        stack.feed(INVITE)
        [leg] = self.handler.legs
        leg.sendFinal(200, body=SDP, contentType="application/sdp")
        stack.feed(inDialog("ACK", leg.localTag, "z9hG4bK-ack1"))
        stack.feed(inDialog("BYE", leg.localTag, "z9hG4bK-bye1", cseq=11))
        name, bye, respond = self.handler.listener.events[-1]
        self.assertEqual(bye.method, "BYE")
        respond(200)
        response, _ = self.written()[-1]
        self.assertEqual((response.status, response.cseq.method), (200, "BYE"))
        self.assertEqual(len(stack.ua.dialogs), 0)

    def test_cancelledCall(self):
        """
        CANCEL: 200 to it, the listener sends 487, whose ACK the
        transaction absorbs.
        """
        stack = self.stack
        stack.feed(INVITE)
        [leg] = self.handler.legs
        stack.feed(inDialog("CANCEL", None, "z9hG4bK-inv1"))
        self.assertEqual(self.handler.listener.names(), ["cancelled"])
        leg.sendFinal(487)
        stack.feed(inDialog("ACK", leg.localTag, "z9hG4bK-inv1", cseqMethod="ACK"))
        got = [(m.status, m.cseq.method) for m, _ in self.written()]
        self.assertEqual(got, [(100, "INVITE"), (200, "CANCEL"), (487, "INVITE")])
        self.assertEqual(self.handler.listener.names(), ["cancelled"])
        self.assertEqual(stack.ua.legs, set())

    def test_ackTimeout(self):
        """No ACK: the 200 is sent again through the transaction, then legAckTimeout."""
        stack = self.stack
        stack.feed(INVITE)
        [leg] = self.handler.legs
        leg.sendFinal(200, body=SDP, contentType="application/sdp")
        for _ in range(130):
            stack.reactor.advance(0.25)
        statuses = [m.status for m, _ in self.written()]
        self.assertEqual(statuses.count(200), 11)
        self.assertEqual(self.handler.listener.names(), ["ackTimeout"])


class RouteFailureTests(UserAgentMixin, SynchronousTestCase):
    """A remote target we cannot send to fails the Deferred, never raises."""

    def test_unroutableTarget(self):
        """
        A non-SIP remote target (the user agent refuses such an INVITE with
        400; a leg made without that check): sendBye and sendRequest fail
        with TransportError.
        """
        from linkrtc.error import TransportError
        from linkrtc.sip.invite import InviteServerLeg
        from linkrtc.sip.test.test_useragent import FakeServerTransaction

        invite = request("INVITE", contact="<mailto:alice@example.org>")
        leg = InviteServerLeg(self.ua, invite, FakeServerTransaction(invite), self.clock)
        self.ua.legs.add(leg)
        leg.sendFinal(200)
        self.failureResultOf(leg.sendRequest("INFO"), TransportError)
        self.failureResultOf(leg.sendBye(), TransportError)
        self.assertEqual(len(self.flushLoggedErrors()), 2)
        self.assertEqual(self.ua.legs, set())

    def test_cancelReinvite(self):
        """
        CANCEL of a pending re-INVITE: 200 to the CANCEL, 487 to the
        re-INVITE; the listener's late answer is dropped.
        """
        tx, leg = self.invite()
        leg.sendFinal(200)
        self.receive(request("ACK", toTag=leg.localTag, contact=None))
        rtx = self.receive(request("INVITE", toTag=leg.localTag, cseq=2, branch="z9hG4bK-re"))
        self.transactions.invites["call-1"] = rtx
        respond = self.handler.listener.events[-1][2]
        ctx = self.receive(request("CANCEL", toTag=leg.localTag, cseq=2, branch="z9hG4bK-re"))
        self.assertEqual(ctx.statuses, [200])
        self.assertEqual(rtx.statuses[-1], 487)
        respond(200)
        self.assertEqual(rtx.statuses[-1], 487)
        self.assertEqual(self.ua._legsByTransaction, {id(tx): leg})
        self.assertEqual(leg.state, "confirmed")

    def test_acceptRefused(self):
        """If the transaction refuses the 2xx, the error is raised and nothing is left."""
        tx, leg = self.invite()

        def refuse(response):
            raise InvalidStateError("completed")

        tx.respond = refuse
        self.assertRaises(InvalidStateError, leg.sendFinal, 200)
        self.assertEqual(len(self.ua.dialogs), 0)
        self.assertEqual(self.ua.legs, set())
        self.assertEqual(self.clock.getDelayedCalls(), [])


class UnusableDialogTests(UserAgentMixin, SynchronousTestCase):
    """
    A leg whose INVITE gives no usable dialog (the user agent refuses such
    INVITEs before they ring; a leg made without that check still answers).
    """

    def test_okCannotBeMade(self):
        """
        C{sendFinal(200)} with a malformed Record-Route raises and sends
        nothing; the INVITE is still free for an error response.
        """
        from linkrtc.sip.invite import InviteServerLeg
        from linkrtc.sip.test.test_useragent import FakeServerTransaction

        invite = request("INVITE", body=SDP, extra=("Content-Type: application/sdp",
                                                    "Record-Route: <sip:p1.example.com;lr"))
        tx = FakeServerTransaction(invite)
        leg = InviteServerLeg(self.ua, invite, tx, self.clock)
        self.ua.legs.add(leg)
        self.assertRaises(SIPParseError, leg.sendFinal, 200, body=SDP,
                          contentType="application/sdp")
        self.assertEqual(tx.statuses, [])
        self.assertIsNone(leg.dialog)
        leg.sendFinal(500)
        self.assertEqual(tx.statuses, [500])
        self.assertEqual(tx.responses[0].toAddr.tag, leg.localTag)
        self.assertEqual(self.ua.legs, set())
        self.assertEqual(len(self.ua.dialogs), 0)
        self.assertEqual(self.clock.getDelayedCalls(), [])


class ListenerReleaseTests(UserAgentMixin, SynchronousTestCase):
    """
    A leg that is over forgets its listener (the call, which points back at
    the leg), so the two are freed by reference counting when the call
    ends, not by the cyclic garbage collector.
    """

    def confirmed(self):
        tx, leg = self.invite()
        leg.sendFinal(200, body=SDP, contentType="application/sdp")
        self.receive(request("ACK", toTag=leg.localTag, contact=None))
        return leg

    def test_theirBye(self):
        leg = self.confirmed()
        self.receive(request("BYE", toTag=leg.localTag, cseq=2))
        self.handler.listener.events[-1][2](200)
        self.assertEqual(leg.state, "terminated")
        self.assertIsNone(leg.listener)

    def test_ourBye(self):
        leg = self.confirmed()
        leg.sendBye()
        [(bye, _, listener)] = self.transactions.sent
        listener.responseReceived(bye.createResponse(200), None)
        self.assertIsNone(leg.listener)

    def test_refused(self):
        """A 3xx-6xx final response ends the leg: the listener is forgotten."""
        tx, leg = self.invite()
        leg.sendFinal(486)
        self.assertIsNone(leg.listener)

    def test_transportFailed(self):
        """The listener still hears legTerminated, then is forgotten."""
        leg = self.confirmed()
        listener = leg.listener
        del listener.events[:]
        leg.transportFailed("gone")
        self.assertEqual([e[0] for e in listener.events], ["terminated"])
        self.assertIsNone(leg.listener)

    def test_reliableForgotten(self):
        """The PRACK machinery (which holds the leg's methods) goes with the leg."""
        tx, leg = self.invite(extra=("Content-Type: application/sdp", "Supported: 100rel"))
        leg.sendProvisional(180)
        self.assertIsNotNone(leg._reliable)
        leg.sendFinal(486)
        self.assertIsNone(leg._reliable)
        self.assertIsNone(leg.listener)
