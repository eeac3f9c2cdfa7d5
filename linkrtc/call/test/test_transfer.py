"""
Call transfer through the engine (L{linkrtc.call.transfer},
L{linkrtc.call.operators.transfer}): REFER from the SIP side (blind to a
client, attended with Replaces, refused by the dial plan), INVITE with
Replaces, and the client's C{transfer}.
"""

from twisted.trial.unittest import SynchronousTestCase

from linkrtc import metrics
from linkrtc.call.dialplan import DialPlan
from linkrtc.call.transfer import JoinedLeg, Transfers, loopbackSdp
from linkrtc.config import parseTrunk
from linkrtc.sip.dialog import DialogId
from linkrtc.sip.uri import SIPURI, NameAddr
from linkrtc.testing import (
    CLIENT_ANSWER,
    SIP_OFFER,
    CallHarness,
    FakeMediaFactory,
    FakeRequest,
    FakeResponse,
    FakeServerLeg,
    SentResponse,
)


class BridgeLikeFactory(FakeMediaFactory):
    """Fake media that says it is the bridge (transfers need it)."""

    name = "bridge"


class FakeDialer:
    """What the transfer operators use of an L{OutboundDialer}: trunks, dial plan, bindings."""

    def __init__(self, trunks=()):
        self.trunks = list(trunks)
        self.dialPlan = DialPlan(self.trunks)
        self.bindings = None


class FakeUserAgent:
    """The dialog table the transfer engine looks Replaces up in, and our Contact."""

    def __init__(self):
        self.dialogs = {}

    def localContact(self, source=None):
        return NameAddr(SIPURI("sip", host="192.0.2.1", port=5060))


def _dialog(leg):
    return DialogId(leg.callId, leg.localTag, "from-tag")


class TransferTestsMixin:
    def setUp(self):
        self.h = CallHarness(mediaFactory=BridgeLikeFactory())
        self.ua = FakeUserAgent()
        self.h.manager.services.transfers = Transfers(self.h.manager)
        self.h.manager.dialer = FakeDialer([parseTrunk({
            "name": "pbx", "proxy": "sip:pbx.example.com", "allow": ["+1555*"]})])

    def answered(self, client="alice", callId="c1"):
        """An answered call to C{client} whose leg is in the fake UA's dialog table."""
        connection = self.h.connect(client)
        request = FakeRequest("INVITE", uri=f"sip:{client}@example.com", body=SIP_OFFER)
        leg = FakeServerLeg(request, callId=callId, localTag="lt-" + callId)
        leg.userAgent = self.ua
        call = self.h.manager.inviteReceived(leg)
        self.h.route(call, client)
        self.h.clientSays(connection, "accept", call, sdp=CLIENT_ANSWER)
        leg.ack()
        self.assertEqual(call.state.name, "confirmed")
        self.ua.dialogs[_dialog(leg)] = leg
        return call, leg, connection

    def refer(self, leg, referTo):
        """The SIP side sends REFER; @return: the responses list."""
        headers = [] if referTo is None else [("Refer-To", referTo)]
        request = FakeRequest("REFER", headers=headers)
        answers = []

        def respond(status, reason=None, body=None, contentType=None, headers=()):
            answers.append(SentResponse(status, reason, body, contentType, headers))

        leg.listener.legRequestReceived(request, respond)
        return answers

    def notifies(self, leg):
        """@return: C{(sipfrag body, Subscription-State)} of each NOTIFY the leg sent."""
        return [(body, dict(headers)["Subscription-State"])
                for method, body, contentType, headers in self.requestsOf(leg, "NOTIFY")]

    def requestsOf(self, leg, method):
        return [(m, b, c, h) for (m, b, c, d), h in zip(leg.requests, leg.sentHeaders)
                if m == method]


def _recordHeaders(leg):
    """Make C{leg.sendRequest} keep its headers too (in C{sentHeaders})."""
    leg.sentHeaders = []
    original = leg.sendRequest

    def sendRequest(method, body=None, contentType=None, headers=()):
        leg.sentHeaders.append(list(headers))
        return original(method, body, contentType, headers)

    leg.sendRequest = sendRequest


class ReferCheckTests(TransferTestsMixin, SynchronousTestCase):
    """A REFER that cannot be done leaves the call as it was."""

    def test_noReferTo(self):
        """No Refer-To: 400."""
        call, leg, _ = self.answered()
        [answer] = self.refer(leg, None)
        self.assertEqual(answer.status, 400)
        self.assertEqual(call.state.name, "confirmed")

    def test_badReferTo(self):
        """An unreadable Refer-To: 400 naming it."""
        call, leg, _ = self.answered()
        [answer] = self.refer(leg, "<http://x/>")
        self.assertEqual(answer.status, 400)
        self.assertIn("Refer-To", answer.reason)

    def test_badReplaces(self):
        """A Refer-To whose Replaces cannot be read: 481."""
        call, leg, _ = self.answered()
        [answer] = self.refer(leg, "<sip:bob@h?Replaces=xyz>")
        self.assertEqual(answer.status, 481)

    def test_unknownReplaces(self):
        """A Replaces naming no call here: 481, the call stays."""
        call, leg, _ = self.answered()
        [answer] = self.refer(leg, "<sip:bob@h?Replaces=nope%3Bto-tag%3Da%3Bfrom-tag%3Db>")
        self.assertEqual(answer.status, 481)
        self.assertEqual(call.state.name, "confirmed")
        self.assertEqual(leg.byes, [])

    def test_replacesItself(self):
        """A Replaces naming the REFER's own dialog: 481."""
        call, leg, _ = self.answered()
        [answer] = self.refer(leg, "<sip:bob@h?Replaces=c1%3Bto-tag%3Dlt-c1%3Bfrom-tag%3Dfrom-tag>")
        self.assertEqual(answer.status, 481)

    def test_dialPlanRefusal(self):
        """
        A number: the SIP side holds no grant to call out, so the dial plan
        refuses it: 403 and a NOTIFY of 403 ending the subscription; the
        call stays, nothing rings.
        """
        call, leg, connection = self.answered()
        _recordHeaders(leg)
        [answer] = self.refer(leg, "<sip:+15551234@pbx.example.com>")
        self.assertEqual(answer.status, 403)
        self.assertEqual(self.notifies(leg),
                         [(b"SIP/2.0 403 Forbidden\r\n", "terminated;reason=noresource")])
        self.assertEqual(call.state.name, "confirmed")
        self.assertEqual(leg.byes, [])
        self.assertEqual(list(self.h.manager.calls), [call.id])

    def test_noBridge(self):
        """Passthrough media cannot be re-bridged: 501."""
        self.h.mediaFactory.name = "passthrough"
        call, leg, _ = self.answered()
        self.h.connect("bob")
        [answer] = self.refer(leg, "<sip:bob@example.com>")
        self.assertEqual(answer.status, 501)

    def test_notConfirmed(self):
        """A REFER before the answer is not taken (no operator in ringing): 500."""
        self.h.connect("alice")
        call, leg = self.h.invite()
        self.h.route(call, "alice")
        answers = leg.receive("REFER")
        self.assertEqual(answers[0].status, 500)


class BlindTransferTests(TransferTestsMixin, SynchronousTestCase):
    """The SIP side REFERs its call to a connected client."""

    def start(self):
        call, leg, alice = self.answered()
        _recordHeaders(leg)
        bob = self.h.connect("bob")
        [answer] = self.refer(leg, "<sip:bob@linkrtc.example.com>")
        self.assertEqual(answer.status, 202)
        [target] = [c for c in self.h.manager.calls.values() if c is not call]
        return call, leg, alice, bob, target

    def test_rings(self):
        """202, NOTIFY 100 Trying (active), and bob gets C{incoming}."""
        call, leg, alice, bob, target = self.start()
        self.assertEqual(self.notifies(leg), [(b"SIP/2.0 100 Trying\r\n", "active;expires=60")])
        [incoming] = [m for m in bob.messages if m["type"] == "incoming"]
        self.assertEqual(incoming["call"], target.id)
        self.assertEqual(target.state.name, "calling")

    def test_answered(self):
        """
        Bob answers: alice's call's RTP is pointed at bob's leg (its offer,
        on the loopback hop), bob's leg gets our SDP as the ACK, NOTIFY 200
        ends the subscription, the transferor's dialog gets BYE and the
        call's leg is now joined to bob's call.
        """
        done = metrics.CALL_TRANSFERS.labels(kind="blind", result="done")._value.get()
        call, leg, alice, bob, target = self.start()
        self.h.clientSays(bob, "accept", target, sdp=CLIENT_ANSWER)
        self.assertEqual(target.state.name, "confirmed")
        self.assertEqual(metrics.CALL_TRANSFERS.labels(kind="blind", result="done")._value.get(),
                         done + 1)
        reoffers = [a for m, a in self.h.media(call).calls if m == "sipReoffer"]
        self.assertEqual(reoffers, [loopbackSdp(CLIENT_ANSWER.encode(), "127.0.0.1")])
        self.assertIn(("sipAckBody", b"v=0 reanswer"), self.h.media(target).calls)
        self.assertEqual(self.notifies(leg)[-1],
                         (b"SIP/2.0 200 OK\r\n", "terminated;reason=noresource"))
        self.assertEqual(len(leg.byes), 1)
        self.assertIsInstance(call.leg, JoinedLeg)
        self.assertEqual(call.state.name, "confirmed")
        # the transferor's late BYE is answered and changes nothing
        self.assertEqual(leg.receive("BYE")[0].status, 200)
        self.assertEqual(call.state.name, "confirmed")

    def test_targetHangsUp(self):
        """After the transfer bob's hang-up ends both calls, each with a CDR noting it."""
        call, leg, alice, bob, target = self.start()
        self.h.clientSays(bob, "accept", target, sdp=CLIENT_ANSWER)
        self.h.clientSays(bob, "hangup", target)
        self.assertEqual(target.state.name, "dropped")
        self.assertEqual(call.state.name, "dropped")
        dropped = [m for m in alice.messages if m.get("state") == "dropped"]
        self.assertEqual(len(dropped), 1)
        cdrs = {c["call"]: c for c in self.h.cdrs}
        self.assertEqual(cdrs[call.id]["transfer"]["kind"], "blind")
        self.assertEqual(cdrs[call.id]["transfer"]["peer"], target.id)
        self.assertEqual(cdrs[target.id]["transfer"]["role"], "target")
        self.assertEqual(self.h.manager.calls, {})

    def test_transfereeHangsUp(self):
        """After the transfer alice's hang-up ends bob's call too (bob hears dropped)."""
        call, leg, alice, bob, target = self.start()
        self.h.clientSays(bob, "accept", target, sdp=CLIENT_ANSWER)
        self.h.clientSays(alice, "hangup", call)
        self.assertEqual(call.state.name, "dropped")
        self.assertEqual(target.state.name, "dropped")
        self.assertTrue([m for m in bob.messages if m.get("state") == "dropped"])
        self.assertEqual(len(leg.byes), 1)  # only the transfer's BYE

    def test_targetDeclines(self):
        """Bob declines: NOTIFY 603, the call stays with its SIP leg."""
        call, leg, alice, bob, target = self.start()
        self.h.clientSays(bob, "reject", target, reason="decline")
        self.assertEqual(target.state.name, "dropped")
        self.assertEqual(self.notifies(leg)[-1][1], "terminated;reason=noresource")
        self.assertTrue(self.notifies(leg)[-1][0].startswith(b"SIP/2.0 603"))
        self.assertIs(call.leg, leg)
        self.assertEqual(call.state.name, "confirmed")
        self.assertEqual(leg.byes, [])
        self.assertNotIn(target.id, self.h.manager.calls)

    def test_transfereeGoneWhileRinging(self):
        """Alice hangs up while bob rings: bob's call is cancelled."""
        call, leg, alice, bob, target = self.start()
        self.h.clientSays(alice, "hangup", call)
        self.assertEqual(target.state.name, "dropped")
        self.assertEqual(target.ending.cause, 487)

    def test_transferorLeavesEarly(self):
        """
        The transferor BYEs right after the 202: 200, the call waits; bob
        answers and is joined to alice.
        """
        call, leg, alice, bob, target = self.start()
        self.assertEqual(leg.receive("BYE")[0].status, 200)
        self.assertEqual(call.state.name, "confirmed")
        self.h.clientSays(bob, "accept", target, sdp=CLIENT_ANSWER)
        self.assertIsInstance(call.leg, JoinedLeg)
        self.assertEqual(call.state.name, "confirmed")
        self.h.clientSays(alice, "hangup", call)
        self.assertEqual(target.state.name, "dropped")

    def test_transferorLeftAndTargetDeclines(self):
        """The transferor left and bob declines: alice's call ends."""
        call, leg, alice, bob, target = self.start()
        leg.receive("BYE")
        self.h.clientSays(bob, "reject", target, reason="decline")
        self.assertEqual(call.state.name, "dropped")
        self.assertEqual([m.get("state") for m in alice.messages if m["type"] == "state"][-1],
                         "dropped")

    def test_referToSelf(self):
        """A REFER to the transferee's own client: 403 and its NOTIFY."""
        call, leg, alice, bob, target = self.start()
        target.legCancelled(None)  # the first transfer ends
        [answer] = self.refer(leg, "<sip:alice@linkrtc.example.com>")
        self.assertEqual(answer.status, 403)
        self.assertTrue(self.notifies(leg)[-1][0].startswith(b"SIP/2.0 403"))

    def test_secondReferWhileRinging(self):
        """A second REFER while the first runs: 491."""
        call, leg, alice, bob, target = self.start()
        [answer] = self.refer(leg, "<sip:bob@linkrtc.example.com>")
        self.assertEqual(answer.status, 491)


class AttendedTransferTests(TransferTestsMixin, SynchronousTestCase):
    """REFER with Replaces naming another call here: the two clients are joined."""

    def test_join(self):
        """
        202; each call's RTP is pointed at the other's; NOTIFY 200; both SIP
        dialogs get BYE; a hang-up on either side ends both.
        """
        x, xleg, alice = self.answered("alice", "cx")
        y, yleg, bob = self.answered("bob", "cy")
        _recordHeaders(xleg)
        x.localSdp, y.localSdp = b"v=0 x\r\nc=IN IP4 192.0.2.1\r\n", b"v=0 y\r\nc=IN IP4 192.0.2.1\r\n"
        [answer] = self.refer(
            xleg, "<sip:bob@h?Replaces=cy%3Bto-tag%3Dlt-cy%3Bfrom-tag%3Dfrom-tag>")
        self.assertEqual(answer.status, 202)
        self.assertIn(("sipReoffer", b"v=0 y\r\nc=IN IP4 127.0.0.1\r\n"), self.h.media(x).calls)
        self.assertIn(("sipReoffer", b"v=0 x\r\nc=IN IP4 127.0.0.1\r\n"), self.h.media(y).calls)
        self.assertEqual(self.notifies(xleg), [(b"SIP/2.0 200 OK\r\n",
                                                "terminated;reason=noresource")])
        self.assertEqual((len(xleg.byes), len(yleg.byes)), (1, 1))
        self.assertIsInstance(x.leg, JoinedLeg)
        self.assertIsInstance(y.leg, JoinedLeg)
        self.h.clientSays(bob, "hangup", y)
        self.assertEqual((x.state.name, y.state.name), ("dropped", "dropped"))
        cdrs = {c["call"]: c for c in self.h.cdrs}
        self.assertEqual(cdrs[x.id]["transfer"], {"kind": "attended", "role": "transferee",
                                                  "peer": y.id})


class ReplacesInviteTests(TransferTestsMixin, SynchronousTestCase):
    """An INVITE with Replaces naming a call's dialog takes its SIP side."""

    def test_replaced(self):
        """The new leg is answered with our re-offer answer; the old one gets BYE."""
        call, leg, alice = self.answered()
        newLeg = FakeServerLeg(FakeRequest("INVITE", body=b"v=0 new"), callId="c2")
        call.legReplaced(newLeg)
        self.assertIn(("sipReoffer", b"v=0 new"), self.h.media(call).calls)
        self.assertEqual(newLeg.finalStatus, 200)
        self.assertEqual(newLeg.finals[0].body, b"v=0 reanswer")
        self.assertIs(call.leg, newLeg)
        self.assertEqual(len(leg.byes), 1)
        newLeg.ack()
        newLeg.receive("BYE")
        self.assertEqual(call.state.name, "dropped")

    def test_offerless(self):
        """An INVITE with Replaces and no SDP: 488, the call keeps its leg."""
        call, leg, alice = self.answered()
        newLeg = FakeServerLeg(FakeRequest("INVITE"), callId="c2")
        call.legReplaced(newLeg)
        self.assertEqual(newLeg.finalStatus, 488)
        self.assertIs(call.leg, leg)

    def test_notConfirmed(self):
        """A call not yet answered cannot be replaced: 481."""
        self.h.connect("alice")
        call, leg = self.h.invite()
        newLeg = FakeServerLeg(FakeRequest("INVITE", body=b"v=0 new"), callId="c2")
        call.legReplaced(newLeg)
        self.assertEqual(newLeg.finalStatus, 481)


class ClientTransferTests(TransferTestsMixin, SynchronousTestCase):
    """The answering client's C{transfer}: LinkRTC REFERs the SIP side."""

    def test_toClient(self):
        """
        To a connected client: REFER with Refer-To sip:bob@LINKRTC; 202 is
        told as C{transfer}; NOTIFYs are relayed; a final 200 ends the call
        with BYE, cause 200 "transferred".
        """
        call, leg, alice = self.answered()
        self.h.connect("bob")
        _recordHeaders(leg)
        self.h.clientSays(alice, "transfer", call, to="bob")
        [(method, body, _, headers)] = self.requestsOf(leg, "REFER")
        self.assertEqual(dict(headers)["Refer-To"], "<sip:bob@192.0.2.1:5060>")
        leg.requests[-1][3].callback(FakeResponse(202, reason="Accepted"))
        self.assertEqual(alice.messages[-1], {"type": "transfer", "call": call.id, "status": 202,
                                          "reason": "Accepted"})
        notify = leg.receive("NOTIFY", body=b"SIP/2.0 180 Ringing\r\n",
                             contentType="message/sipfrag")
        self.assertEqual(notify[0].status, 200)
        self.assertEqual(alice.messages[-1]["status"], 180)
        self.assertEqual(call.state.name, "confirmed")
        leg.receive("NOTIFY", body=b"SIP/2.0 200 OK\r\n", contentType="message/sipfrag")
        self.assertEqual(call.state.name, "dropped")
        self.assertEqual(len(leg.byes), 1)
        cdr = self.h.cdrs[-1]
        self.assertEqual((cdr["cause"], cdr["reason"]), (200, "transferred"))
        self.assertEqual(cdr["transfer"]["role"], "transferor")

    def test_failed(self):
        """A final failure NOTIFY: told to the client, the call stays."""
        call, leg, alice = self.answered()
        self.h.connect("bob")
        self.h.clientSays(alice, "transfer", call, to="bob")
        leg.requests[-1][3].callback(FakeResponse(202))
        leg.receive("NOTIFY", body=b"SIP/2.0 486 Busy Here\r\n", contentType="message/sipfrag")
        self.assertEqual(alice.messages[-1]["status"], 486)
        self.assertEqual(call.state.name, "confirmed")
        self.h.clientSays(alice, "transfer", call, to="bob")
        self.assertEqual(leg.requests[-1][0], "REFER")

    def test_referRefused(self):
        """The SIP side refuses the REFER: C{error} with its status; the call stays."""
        call, leg, alice = self.answered()
        self.h.connect("bob")
        self.h.clientSays(alice, "transfer", call, to="bob")
        leg.requests[-1][3].callback(FakeResponse(405))
        self.assertEqual(alice.messages[-1]["type"], "error")
        self.assertEqual(alice.messages[-1]["code"], 405)
        self.assertEqual(call.state.name, "confirmed")

    def test_dialPlanRefusal(self):
        """A number the dial plan refuses: C{error} 403, no REFER."""
        call, leg, alice = self.answered()
        self.h.clientSays(alice, "transfer", call, to="+4420123")
        self.assertEqual(alice.messages[-1]["type"], "error")
        self.assertEqual(alice.messages[-1]["code"], 403)
        self.assertEqual(leg.requests, [])

    def test_number(self):
        """A number the dial plan allows: REFER to it at the trunk's domain."""
        call, leg, alice = self.answered()
        _recordHeaders(leg)
        self.h.clientSays(alice, "transfer", call, to="2001")
        [(method, body, _, headers)] = self.requestsOf(leg, "REFER")
        self.assertEqual(dict(headers)["Refer-To"], "<sip:2001@pbx.example.com>")

    def test_notifyUnasked(self):
        """A NOTIFY with no transfer of ours running: 200, nothing told."""
        call, leg, alice = self.answered()
        before = list(alice.messages)
        self.assertEqual(leg.receive("NOTIFY", body=b"SIP/2.0 200 OK\r\n",
                                     contentType="message/sipfrag")[0].status, 200)
        self.assertEqual(alice.messages, before)
        self.assertEqual(call.state.name, "confirmed")

    def test_onlyAnswerer(self):
        """Only the answering client may transfer (others are not attached: 404)."""
        call, leg, alice = self.answered()
        mallory = self.h.connect("mallory")
        self.h.clientSays(mallory, "transfer", call, to="bob")
        self.assertEqual(mallory.messages[-1]["code"], 404)
        self.assertEqual(leg.requests, [])


class ApiTransferTests(SynchronousTestCase):
    """C{sys.call.transfer}: an application REFERs its answered call's SIP side."""

    def setUp(self):
        from linkrtc.app.testing import ApiHarness

        self.h = ApiHarness()
        manager = self.h.calls.manager
        manager.services.transfers = Transfers(manager)
        manager.dialer = FakeDialer([parseTrunk({"name": "pbx", "proxy": "sip:pbx.example.com"})])

    def answered(self):
        call, leg, audio = self.h.answered()
        leg.userAgent = FakeUserAgent()
        _recordHeaders(leg)
        return call, leg

    def invokeLater(self, call, to="2001"):
        """@return: the L{Deferred} of C{sys.call.transfer} (not fired yet)."""
        d = self.h.control.invoke("sys.call.transfer", {"res_id": call.resId, "to_uri": to})
        self.assertFalse(d.called)
        return d

    def test_transfer(self):
        """
        REFER to the number at the trunk; the method returns once the SIP
        side accepts; NOTIFY 200 releases the call (cause 200, transferred).
        """
        call, leg = self.answered()
        d = self.invokeLater(call)
        [(method, body, _, headers)] = [r for r in zip(
            [r[0] for r in leg.requests], [r[1] for r in leg.requests],
            [r[2] for r in leg.requests], leg.sentHeaders) if r[0] == "REFER"]
        self.assertEqual(dict(headers)["Refer-To"], "<sip:2001@pbx.example.com>")
        results = []
        d.addCallback(results.append)
        self.assertEqual(results, [])
        leg.requests[-1][3].callback(FakeResponse(202))
        self.assertEqual(results, [None])
        self.assertEqual(call.state.name, "Idle")
        leg.receive("NOTIFY", body=b"SIP/2.0 200 OK\r\n", contentType="message/sipfrag")
        self.assertEqual(call.state.name, "dropped")
        [released] = self.h.named("on_released")
        self.assertEqual(released["cause"], 200)

    def test_refusedBySIP(self):
        """The SIP side refuses the REFER: error -32004 with its status; the call stays."""
        call, leg = self.answered()
        d = self.invokeLater(call)
        failures = []
        d.addErrback(lambda f: failures.append(f.value))
        leg.requests[-1][3].callback(FakeResponse(603))
        [error] = failures
        self.assertEqual((error.code, error.data["status"]), (-32004, 603))
        self.assertEqual(call.state.name, "Idle")

    def test_dialPlan(self):
        """A number the dial plan refuses: -32004 with status 403, no REFER."""
        call, leg = self.answered()
        ok, error = self.h.invoke("transfer", res_id=call.resId, to_uri="+4420123")
        self.assertFalse(ok)
        self.assertEqual(error.data["status"], 403)
        self.assertEqual(leg.requests, [])

    def test_missingTarget(self):
        """No to_uri: -32602 naming it."""
        call, leg = self.answered()
        ok, error = self.h.invoke("transfer", res_id=call.resId)
        self.assertFalse(ok)
        self.assertEqual(error.code, -32602)
        self.assertIn("to_uri", error.message)

    def test_beforeAnswer(self):
        """Before the answer (Initiated): wrong state."""
        call, leg = self.h.incoming()
        ok, error = self.h.invoke("transfer", res_id=call.resId, to_uri="2001")
        self.assertFalse(ok)
        self.assertEqual(error.code, -32002)
