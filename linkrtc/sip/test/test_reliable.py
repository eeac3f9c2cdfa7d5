"""
Tests for L{linkrtc.sip.reliable}: reliable provisional responses and
PRACK (RFC 3262) on the INVITE server leg (§3) and client leg (§4).
"""

from twisted.trial.unittest import SynchronousTestCase

from linkrtc import metrics
from linkrtc.sip.reliable import ReliableProvisionals, parseRAck
from linkrtc.sip.test.test_invite import retransmissionTimes
from linkrtc.sip.test.test_outbound import LegMixin
from linkrtc.sip.test.test_useragent import SDP, FakeServerTransaction, UserAgentMixin, request
from linkrtc.sip.transport import Address

RELIABLE = ("Content-Type: application/sdp", "Supported: 100rel")


class RAckTests(SynchronousTestCase):
    def test_parse(self):
        """RAck is response-num CSeq-num Method (RFC 3262 §7.2)."""
        self.assertEqual(parseRAck("5 1 INVITE"), (5, 1, "INVITE"))
        for bad in ("", "5 1", "x 1 INVITE", "5 y INVITE", None):
            self.assertRaises(ValueError, parseRAck, bad)

    def test_tooManyPending(self):
        """Only one reliable provisional is out at a time; the rest wait."""
        from twisted.internet.task import Clock

        from linkrtc.sip.message import Response

        sent = []
        reliable = ReliableProvisionals(Clock(), 0.5, 1, sent.append, lambda: None, True,
                                        firstRSeq=10)
        reliable.send(Response(183))
        reliable.send(Response(180))
        self.assertEqual([(r.status, r.headers.get("RSeq")) for r in sent], [(183, "10")])
        self.assertTrue(reliable.pending)


class ServerLegTests(UserAgentMixin, SynchronousTestCase):
    """The UAS of RFC 3262 §3: InviteServerLeg with a caller that offers 100rel."""

    def prack(self, leg, rseq, cseq=2, inviteCSeq=1, method="INVITE"):
        return self.receive(request("PRACK", toTag=leg.localTag, cseq=cseq, contact=None,
                                    branch="z9hG4bK-prack%d" % (cseq,),
                                    extra=("RAck: %d %d %s" % (rseq, inviteCSeq, method),)))

    def test_reliable180(self):
        """
        A 180 to a caller with Supported: 100rel carries Require: 100rel and
        an RSeq, and is sent again at T1, 2*T1, 4*T1... until the PRACK,
        which gets 200.
        """
        tx, leg = self.invite(extra=RELIABLE)
        leg.sendProvisional(180)
        ringing = tx.responses[-1]
        self.assertEqual(ringing.headers.get("Require"), "100rel")
        rseq = int(ringing.headers.get("RSeq"))
        self.assertEqual(retransmissionTimes(self.clock, tx, 16, status=180),
                         [0.5, 1.5, 3.5, 7.5, 15.5])
        prack = self.prack(leg, rseq)
        self.assertEqual(prack.statuses, [200])
        self.assertEqual(retransmissionTimes(self.clock, tx, 40, status=180), [])
        self.assertEqual(self.clock.getDelayedCalls(), [])

    def test_requireAccepted(self):
        """Require: 100rel is no longer 420; an unknown option tag still is."""
        tx, leg = self.invite(extra=("Content-Type: application/sdp", "Require: 100rel"))
        self.assertEqual(tx.statuses, [100])
        leg.sendProvisional(180)
        self.assertTrue(tx.responses[-1].headers.get("RSeq"))
        tx = self.receive(request("INVITE", callId="call-2", extra=("Require: foo",)))
        self.assertEqual(tx.statuses, [420])

    def test_unreliableWithoutOffer(self):
        """A caller without 100rel gets plain provisionals, sent once."""
        tx, leg = self.invite()
        leg.sendProvisional(180)
        self.assertIsNone(tx.responses[-1].headers.get("RSeq"))
        self.assertEqual(retransmissionTimes(self.clock, tx, 4, status=180), [])

    def test_prackWithoutMatch(self):
        """A PRACK whose RAck names no provisional of ours (RSeq, CSeq, method): 481."""
        tx, leg = self.invite(extra=RELIABLE)
        leg.sendProvisional(180)
        rseq = int(tx.responses[-1].headers.get("RSeq"))
        self.assertEqual(self.prack(leg, rseq + 1, cseq=2).statuses, [481])
        self.assertEqual(self.prack(leg, rseq, cseq=3, inviteCSeq=7).statuses, [481])
        self.assertEqual(self.prack(leg, rseq, cseq=4, method="BYE").statuses, [481])
        self.assertEqual(self.prack(leg, rseq, cseq=5).statuses, [200])
        self.assertEqual(self.prack(leg, rseq, cseq=6).statuses, [200])  # a repeat

    def test_prackOtherDialog(self):
        """A PRACK for no leg at all: 481."""
        tx = self.receive(request("PRACK", toTag="nobody", cseq=2, contact=None,
                                  extra=("RAck: 1 1 INVITE",)))
        self.assertEqual(tx.statuses, [481])

    def test_queuedInOrder(self):
        """A second reliable provisional waits for the PRACK of the first (RSeq + 1)."""
        tx, leg = self.invite(extra=RELIABLE)
        leg.sendProvisional(183, body=SDP, contentType="application/sdp")
        leg.sendProvisional(180)
        self.assertEqual(tx.statuses, [100, 183])
        rseq = int(tx.responses[-1].headers.get("RSeq"))
        self.prack(leg, rseq)
        self.assertEqual(tx.statuses, [100, 183, 180])
        self.assertEqual(int(tx.responses[-1].headers.get("RSeq")), rseq + 1)

    def test_2xxWaitsForPrack(self):
        """
        The 2xx to the INVITE waits for the PRACK of the reliable 183 with
        SDP (early media), then goes out at once.
        """
        tx, leg = self.invite(extra=RELIABLE)
        leg.sendProvisional(183, body=SDP, contentType="application/sdp")
        rseq = int(tx.responses[-1].headers.get("RSeq"))
        leg.sendFinal(200, body=SDP, contentType="application/sdp")
        self.assertEqual(tx.statuses, [100, 183])
        self.assertFalse(leg.finalSent)
        order = []
        original = FakeServerTransaction.respond

        def respond(transaction, response):
            order.append((response.status, response.cseq.method))
            original(transaction, response)

        self.patch(FakeServerTransaction, "respond", respond)
        self.assertEqual(self.prack(leg, rseq).statuses, [200])
        # the PRACK's 200 goes first, then the INVITE's
        self.assertEqual(order, [(200, "PRACK"), (200, "INVITE")])
        self.assertEqual(tx.statuses, [100, 183, 200])
        self.assertEqual(leg.state, "accepted")
        self.receive(request("ACK", toTag=leg.localTag, contact=None))
        self.assertEqual(leg.state, "confirmed")

    def test_2xxWithoutPending(self):
        """Once every reliable provisional is PRACKed, the 2xx is not held."""
        tx, leg = self.invite(extra=RELIABLE)
        leg.sendProvisional(180)
        self.prack(leg, int(tx.responses[-1].headers.get("RSeq")))
        leg.sendFinal(200, body=SDP, contentType="application/sdp")
        self.assertEqual(tx.statuses[-1], 200)

    def test_cancelWhile2xxHeld(self):
        """A final error response goes at once; the held 2xx never does."""
        tx, leg = self.invite(extra=RELIABLE)
        leg.sendProvisional(183, body=SDP, contentType="application/sdp")
        rseq = int(tx.responses[-1].headers.get("RSeq"))
        leg.sendFinal(200, body=SDP, contentType="application/sdp")
        leg.sendFinal(487)
        self.assertEqual(tx.statuses, [100, 183, 487])
        self.prack(leg, rseq)
        self.assertNotIn(200, tx.statuses)
        self.assertEqual(self.clock.getDelayedCalls(), [])

    def test_noPrack(self):
        """No PRACK within 64*T1: a 5xx to the INVITE and the listener hears the end."""
        before = metrics.SIP_PRACK_TIMEOUTS._value.get()
        tx, leg = self.invite(extra=RELIABLE)
        leg.sendProvisional(180)
        self.clock.advance(31.9)
        self.assertEqual(self.handler.listener.names(), [])
        self.clock.advance(0.1)
        self.assertEqual(tx.statuses[-1], 504)
        self.assertEqual(self.handler.listener.names(), ["terminated"])
        self.assertEqual(metrics.SIP_PRACK_TIMEOUTS._value.get(), before + 1)
        self.assertEqual(leg.state, "terminated")
        self.assertEqual(self.ua.legs, set())
        self.assertEqual(self.clock.getDelayedCalls(), [])

    def test_tcpNoRetransmission(self):
        """On TCP the reliable provisional is sent once; the 64*T1 limit stays."""
        tx = self.receive(request("INVITE", extra=RELIABLE, body=SDP),
                          source=Address("TCP", "192.0.2.1", 40000))
        leg = self.handler.legs[-1]
        leg.sendProvisional(180)
        self.assertEqual(retransmissionTimes(self.clock, tx, 31, status=180), [])
        self.clock.advance(1)
        self.assertEqual(tx.statuses[-1], 504)


class ClientLegTests(LegMixin, SynchronousTestCase):
    """The UAC of RFC 3262 §4: InviteClientLeg PRACKs reliable provisionals."""

    def reliable(self, status, rseq, body=b""):
        return self.respond(status, body=body,
                            headers=[("Require", "100rel"), ("RSeq", str(rseq))])

    def test_supported(self):
        """The INVITE offers 100rel (and timer) unless told not to."""
        self.leg()
        invite = self.transport.requests("INVITE")[-1]
        self.assertEqual(invite.headers.get("Supported"), "100rel, timer")
        self.transport.sent.clear()
        self.leg(reliableProvisionals=False)
        invite = self.transport.requests("INVITE")[-1]
        self.assertEqual(invite.headers.get("Supported"), "timer")

    def test_prack(self):
        """
        A reliable 183 is PRACKed once (RAck: RSeq, CSeq, INVITE) in its
        early dialog; a repeat is neither PRACKed nor passed on; one out of
        order is dropped; the next RSeq is PRACKed with a higher CSeq.
        """
        leg = self.leg()
        invite = self.transport.requests("INVITE")[-1]
        self.reliable(183, 5, body=SDP)
        [prack] = self.transport.requests("PRACK")
        self.assertEqual(prack.headers.get("RAck"), "5 %d INVITE" % (invite.cseq.number,))
        self.assertEqual(prack.toAddr.tag, "tt1")
        self.assertEqual(prack.fromAddr.tag, leg.localTag)
        self.assertEqual(prack.callId, leg.callId)
        self.assertEqual(str(prack.uri), "sip:far@192.0.2.99:5070")
        self.assertGreater(prack.cseq.number, invite.cseq.number)
        self.reliable(183, 5, body=SDP)
        self.reliable(180, 7)
        self.assertEqual(len(self.transport.requests("PRACK")), 1)
        self.assertEqual(self.listener.events, [("progress", 183)])
        self.reliable(180, 6)
        second = self.transport.requests("PRACK")[-1]
        self.assertEqual(second.headers.get("RAck"), "6 %d INVITE" % (invite.cseq.number,))
        self.assertGreater(second.cseq.number, prack.cseq.number)
        self.assertEqual(self.listener.events, [("progress", 183), ("progress", 180)])
        # the dialog's next request comes after the PRACKs
        self.respond(200, body=SDP)
        leg.sendBye()
        [bye] = self.transport.requests("BYE")
        self.assertGreater(bye.cseq.number, second.cseq.number)

    def test_unreliable(self):
        """A 180 without Require: 100rel is not PRACKed."""
        self.leg()
        self.respond(180)
        self.assertEqual(self.transport.requests("PRACK"), [])
        self.assertEqual(self.listener.events, [("progress", 180)])
