"""
Tests for L{linkrtc.sip.useragent} (RFC 3261 §8.2 UAS checks, dispatch).

The fakes here (transaction layer, transport layer, server transaction,
invite handler, leg listener) are also used by C{test_invite}.
"""

from twisted.internet.defer import succeed
from twisted.internet.task import Clock
from twisted.trial.unittest import SynchronousTestCase
from zope.interface import implementer
from zope.interface.verify import verifyObject

from linkrtc.interfaces import IInviteHandler, ISIPLegListener, ISIPServerLeg
from linkrtc.sip.parser import parseMessage
from linkrtc.sip.timers import TimerConfig
from linkrtc.sip.transport import Address
from linkrtc.sip.uri import SIPURI, Via
from linkrtc.sip.useragent import UserAgent, multipartTypes

SOURCE = Address("UDP", "192.0.2.1", 5060)


def request(
    method="INVITE",
    uri="sip:bob@example.com",
    toTag=None,
    fromTag="ft1",
    callId="call-1",
    cseq=1,
    cseqMethod=None,
    branch="z9hG4bK-1",
    extra=(),
    body=b"",
    contact="<sip:alice@192.0.2.1:5060>",
):
    """Build a parsed request from a few fields."""
    lines = [
        "%s %s SIP/2.0" % (method, uri),
        "Via: SIP/2.0/UDP 192.0.2.1:5060;branch=%s" % (branch,),
        "Max-Forwards: 70",
        "From: <sip:alice@example.org>" + (";tag=%s" % (fromTag,) if fromTag else ""),
        "To: <sip:bob@example.com>" + (";tag=%s" % (toTag,) if toTag else ""),
        "Call-ID: %s" % (callId,),
        "CSeq: %d %s" % (cseq, cseqMethod or method),
    ]
    if contact:
        lines.append("Contact: " + contact)
    lines.extend(extra)
    head = "\r\n".join(lines) + "\r\nContent-Length: %d\r\n\r\n" % (len(body),)
    return parseMessage(head.encode("utf-8") + body)


SDP = (
    b"v=0\r\no=- 1 1 IN IP4 192.0.2.1\r\ns=-\r\nc=IN IP4 192.0.2.1\r\n"
    b"t=0 0\r\nm=audio 4000 RTP/AVP 0\r\n"
)


class FakeServerTransaction:
    """A server transaction that records what it is told to send."""

    def __init__(self, request, source=SOURCE):
        self.request = request
        self.source = source
        self.responses = []
        self.state = "proceeding"

    def respond(self, response):
        self.responses.append(response)

    @property
    def statuses(self):
        return [r.status for r in self.responses]


class FakeTransactionLayer:
    """Records client transactions; finds INVITEs for CANCEL by Call-ID."""

    def __init__(self, timers=None):
        self.timers = timers or TimerConfig()
        self.sent = []
        self.invites = {}

    def sendRequest(self, request, destination, listener):
        self.sent.append((request, destination, listener))
        return object()

    def findInviteForCancel(self, cancel):
        return self.invites.get(cancel.callId)


class FakeTransportLayer:
    """Our address is 203.0.113.10:5060; sends are recorded."""

    def __init__(self):
        self.requests = []
        self.responses = []

    def isReliable(self, address):
        return address.transport != "UDP"

    def localContactURI(self, transport, user=None):
        params = {} if transport == "UDP" else {"transport": transport.lower()}
        return SIPURI("sip", user=user, host="203.0.113.10", port=5060, params=params)

    def localVia(self, transport, branch):
        return Via(transport, "203.0.113.10", 5060, {"branch": branch, "rport": None})

    def sendRequest(self, request, destination):
        self.requests.append((request, destination))
        return succeed(None)

    def sendResponse(self, response, source):
        self.responses.append((response, source))
        return succeed(None)


@implementer(ISIPLegListener)
class RecordingListener:
    """Records every leg event as a tuple; answers nothing by itself."""

    def __init__(self):
        self.events = []

    def legCancelled(self, request):
        self.events.append(("cancelled", request))

    def legAcknowledged(self, ack):
        self.events.append(("acknowledged", ack))

    def legAckTimeout(self):
        self.events.append(("ackTimeout",))

    def legRequestReceived(self, request, respond):
        self.events.append(("request", request, respond))

    def legTerminated(self, reason):
        self.events.append(("terminated", reason))

    def names(self):
        return [e[0] for e in self.events]


@implementer(IInviteHandler)
class FakeInviteHandler:
    """Keeps each leg and gives it a L{RecordingListener}."""

    def __init__(self):
        self.legs = []
        self.listener = RecordingListener()

    def inviteReceived(self, leg):
        leg.setListener(self.listener)
        self.legs.append(leg)


class UserAgentMixin:
    """Builds a L{UserAgent} on fakes."""

    def setUp(self):
        self.clock = Clock()
        self.transactions = FakeTransactionLayer()
        self.transport = FakeTransportLayer()
        self.handler = FakeInviteHandler()
        self.ua = UserAgent(self.transactions, self.transport, self.handler, self.clock,
                            admission=self.makeAdmission())

    def makeAdmission(self):
        """
        @return: the user agent's L{linkrtc.drain.Admission} (built on
            C{self.clock}), or C{None} (the default) for none.
        """
        return None

    def receive(self, req, source=SOURCE):
        """Feed a request as the transaction layer would; return its tx."""
        tx = None if req.method == "ACK" else FakeServerTransaction(req, source)
        self.ua.requestReceived(req, tx)
        return tx

    def invite(self, **kw):
        """A new INVITE; returns (tx, leg)."""
        kw.setdefault("body", SDP)
        kw.setdefault("extra", ("Content-Type: application/sdp",))
        tx = self.receive(request("INVITE", **kw))
        self.transactions.invites[tx.request.callId] = tx
        return tx, self.handler.legs[-1]


class UASChecksTests(UserAgentMixin, SynchronousTestCase):
    """
    The checks of RFC 3261 §8.2, in order.
    """

    def test_interface(self):
        """L{UserAgent} is the transaction layer's TU."""
        from linkrtc.sip.transaction import ITransactionUser

        self.assertTrue(verifyObject(ITransactionUser, self.ua))

    def test_options(self):
        """
        OPTIONS outside a dialog: 200 with Allow, Accept, Server and a To
        tag (§11.2, §8.2.6.2).
        """
        tx = self.receive(request("OPTIONS"))
        self.assertEqual(tx.statuses, [200])
        response = tx.responses[0]
        allow = response.headers.get("Allow")
        for method in ("INVITE", "ACK", "CANCEL", "BYE", "OPTIONS"):
            self.assertIn(method, allow)
        self.assertIn("application/sdp", response.headers.get("Accept"))
        self.assertEqual(response.headers.get("Server"), "LinkRTC")  # no version
        self.assertTrue(response.toAddr.tag)

    def test_unknownMethod(self):
        """An unknown method gets 501 with Allow (§8.2.1)."""
        tx = self.receive(request("FOO"))
        self.assertEqual(tx.statuses, [501])
        self.assertIn("INVITE", tx.responses[0].headers.get("Allow"))

    def test_register(self):
        """Without a registrar, REGISTER gets 405 with Allow (RFC 3261 §8.2.1)."""
        tx = self.receive(request("REGISTER", uri="sip:example.com"))
        self.assertEqual(tx.statuses, [405])
        self.assertIn("INVITE", tx.responses[0].headers.get("Allow"))

    def test_knownUnsupported(self):
        """MESSAGE, SUBSCRIBE... are known methods we do not serve: 405."""
        tx = self.receive(request("MESSAGE"))
        self.assertEqual(tx.statuses, [405])

    def test_methodBeforeScheme(self):
        """Method inspection comes before the Request-URI check."""
        tx = self.receive(request("FOO", uri="xyz:abc"))
        self.assertEqual(tx.statuses, [501])

    def test_unsupportedScheme(self):
        """A Request-URI scheme other than sip, sips, tel gets 416 (§8.2.2.1)."""
        tx = self.receive(request("OPTIONS", uri="http://example.com/"))
        self.assertEqual(tx.statuses, [416])

    def test_telScheme(self):
        """A tel: Request-URI is served."""
        tx = self.receive(request("OPTIONS", uri="tel:+15551234567"))
        self.assertEqual(tx.statuses, [200])

    def test_require(self):
        """
        Require with option tags we lack: 420 with Unsupported listing them
        (§8.2.2.3); Proxy-Require is not a UAS's business.
        """
        tx = self.receive(
            request(
                "OPTIONS",
                extra=("Require: foo, bar", "Proxy-Require: baz"),
            )
        )
        self.assertEqual(tx.statuses, [420])
        unsupported = tx.responses[0].headers.getAll("Unsupported")
        self.assertEqual(
            sorted(t.strip() for v in unsupported for t in v.split(",")), ["bar", "foo"]
        )

    def test_proxyRequireIgnored(self):
        """Proxy-Require alone does not stop a UAS."""
        tx = self.receive(request("OPTIONS", extra=("Proxy-Require: baz",)))
        self.assertEqual(tx.statuses, [200])

    def test_supportedTag(self):
        """A Require tag we support passes."""
        self.ua = UserAgent(
            self.transactions, self.transport, self.handler, self.clock, supported=("timer",)
        )
        tx = self.receive(request("OPTIONS", extra=("Require: timer",)))
        self.assertEqual(tx.statuses, [200])
        self.assertEqual(tx.responses[0].headers.get("Supported"), "timer")

    def test_unknownContentType(self):
        """A body of a type we do not read: 415 with Accept (§8.2.3)."""
        tx = self.receive(
            request("INVITE", body=b"<x/>", extra=("Content-Type: application/unknownformat",))
        )
        self.assertEqual(tx.statuses, [415])
        self.assertIn("application/sdp", tx.responses[0].headers.get("Accept"))
        self.assertEqual(self.handler.legs, [])

    def test_contentEncoding(self):
        """An unknown Content-Encoding: 415 with Accept-Encoding."""
        tx = self.receive(
            request(
                "INVITE",
                body=SDP,
                extra=("Content-Type: application/sdp", "Content-Encoding: gzip"),
            )
        )
        self.assertEqual(tx.statuses, [415])
        self.assertEqual(tx.responses[0].headers.get("Accept-Encoding"), "identity")

    def test_multipartWithSDP(self):
        """A multipart/mixed body with an SDP part is taken."""
        body = (
            b"--xyz\r\nContent-Type: application/sdp\r\n\r\n" + SDP
            + b"\r\n--xyz\r\nContent-Type: application/isup\r\n\r\nabc\r\n--xyz--\r\n"
        )
        tx = self.receive(
            request("INVITE", body=body, extra=("Content-Type: multipart/mixed;boundary=xyz",))
        )
        self.assertEqual(tx.statuses, [100])
        self.assertEqual(len(self.handler.legs), 1)

    def test_multipartWithoutSDP(self):
        """A multipart body with no part we read: 415."""
        body = b"--xyz\r\nContent-Type: text/html\r\n\r\n<p>\r\n--xyz--\r\n"
        tx = self.receive(
            request("INVITE", body=body, extra=('Content-Type: multipart/mixed; boundary="xyz"',))
        )
        self.assertEqual(tx.statuses, [415])

    def test_multipartTypes(self):
        """L{multipartTypes} lists the parts' media types."""
        body = b"--b\r\nContent-Type: application/SDP\r\n\r\nv=0\r\n--b\r\n\r\nhi\r\n--b--"
        self.assertEqual(
            multipartTypes("multipart/mixed;boundary=b", body), ["application/sdp", "text/plain"]
        )
        self.assertEqual(multipartTypes("multipart/mixed", body), [])

    def test_acceptWithoutSDP(self):
        """An INVITE whose Accept excludes application/sdp: 406 (RFC 4475 sdp01)."""
        tx = self.receive(
            request(
                "INVITE",
                body=SDP,
                extra=("Content-Type: application/sdp", "Accept: text/nobodyKnowsThis"),
            )
        )
        self.assertEqual(tx.statuses, [406])

    def test_acceptWildcard(self):
        """Accept: application/* covers SDP."""
        tx = self.receive(request("INVITE", extra=("Accept: text/plain, application/*",)))
        self.assertEqual(tx.statuses, [100])

    def test_maxForwardsZero(self):
        """A UAS processes a request with Max-Forwards 0 normally (RFC 4475 zeromf)."""
        req = request("OPTIONS")
        req.headers.set("Max-Forwards", "0")
        tx = self.receive(req)
        self.assertEqual(tx.statuses, [200])

    def test_merged(self):
        """
        A request with the From tag, Call-ID and CSeq of a recent one but
        another branch is a merged request: 482 (§8.2.2.2).
        """
        self.invite(branch="z9hG4bK-a")
        tx = self.receive(request("INVITE", branch="z9hG4bK-b", body=SDP,
                                  extra=("Content-Type: application/sdp",)))
        self.assertEqual(tx.statuses, [482])
        self.assertEqual(len(self.handler.legs), 1)

    def test_mergedForgotten(self):
        """After 64*T1 the request is forgotten."""
        self.receive(request("OPTIONS", branch="z9hG4bK-a"))
        self.clock.advance(32)
        tx = self.receive(request("OPTIONS", branch="z9hG4bK-b"))
        self.assertEqual(tx.statuses, [200])
        self.ua.stop()
        self.assertEqual(self.clock.getDelayedCalls(), [])

    def test_outOfDialogBye(self):
        """BYE without To tag: 481 (§15.1.2)."""
        tx = self.receive(request("BYE"))
        self.assertEqual(tx.statuses, [481])

    def test_unknownDialog(self):
        """A request with a To tag matching no dialog: 481 (§12.2.2)."""
        tx = self.receive(request("INFO", toTag="nope"))
        self.assertEqual(tx.statuses, [481])

    def test_strayAck(self):
        """An ACK matching no dialog is dropped without a word."""
        self.receive(request("ACK", toTag="nope"))
        self.assertEqual(self.transport.requests + self.transport.responses, [])

    def test_strayResponse(self):
        """A response matching no dialog is dropped."""
        response = request("INVITE").createResponse(200, toTag="x")
        self.ua.responseReceived(response)

    def test_handlerFails(self):
        """An invite handler that raises: the INVITE gets 500."""

        class Broken:
            def inviteReceived(self, leg):
                raise RuntimeError("boom")

        self.ua.inviteHandler = Broken()
        tx = self.receive(request("INVITE"))
        self.assertEqual(tx.statuses, [100, 500])
        self.assertEqual(len(self.flushLoggedErrors(RuntimeError)), 1)
        self.assertEqual(self.ua.legs, set())


class InviteDispatchTests(UserAgentMixin, SynchronousTestCase):
    """
    New INVITEs, CANCEL and requests inside dialogs.
    """

    def test_newInvite(self):
        """
        A new INVITE gets 100 Trying at once (no To tag) and an
        L{ISIPServerLeg} goes to the handler.
        """
        tx, leg = self.invite()
        self.assertEqual(tx.statuses, [100])
        self.assertIsNone(tx.responses[0].toAddr.tag)
        self.assertTrue(verifyObject(ISIPServerLeg, leg))
        self.assertIs(leg.request, tx.request)
        self.assertEqual(leg.callId, "call-1")
        self.assertTrue(leg.localTag)
        self.assertIn(leg, self.ua.legs)

    def test_cancel(self):
        """
        CANCEL matching a pending INVITE: 200 to the CANCEL (with the
        leg's tag) and the listener hears C{legCancelled}.
        """
        tx, leg = self.invite()
        ctx = self.receive(request("CANCEL"))
        self.assertEqual(ctx.statuses, [200])
        self.assertEqual(ctx.responses[0].toAddr.tag, leg.localTag)
        self.assertEqual(self.handler.listener.names(), ["cancelled"])
        leg.sendFinal(487)
        self.assertEqual(tx.statuses, [100, 487])
        self.assertEqual(self.ua.legs, set())

    def test_cancelNoListener(self):
        """With no listener, a cancelled leg answers 487 itself."""
        self.ua.inviteHandler = type("H", (), {"inviteReceived": lambda s, leg: None})()
        tx = self.receive(request("INVITE"))
        self.transactions.invites["call-1"] = tx
        self.receive(request("CANCEL"))
        self.assertEqual(tx.statuses, [100, 487])

    def test_cancelUnknown(self):
        """CANCEL matching no INVITE: 481 (§9.2)."""
        tx = self.receive(request("CANCEL"))
        self.assertEqual(tx.statuses, [481])

    def test_cancelAfterFinal(self):
        """CANCEL after the final response: 200, nothing else happens."""
        tx, leg = self.invite()
        leg.sendFinal(486)
        ctx = self.receive(request("CANCEL"))
        self.assertEqual(ctx.statuses, [200])
        self.assertEqual(self.handler.listener.events, [])

    def test_cancelRequireIgnored(self):
        """Require on a CANCEL is not checked (§8.2.2.3)."""
        self.invite()
        ctx = self.receive(request("CANCEL", extra=("Require: foo",)))
        self.assertEqual(ctx.statuses, [200])

    def confirmed(self):
        """An INVITE answered 200 and ACKed; returns its leg."""
        tx, leg = self.invite()
        leg.sendFinal(200, body=SDP, contentType="application/sdp")
        self.receive(request("ACK", toTag=leg.localTag, contact=None))
        del self.handler.listener.events[:]
        return leg

    def test_byeInDialog(self):
        """
        BYE in a confirmed dialog goes to the listener with a C{respond};
        answering it ends the dialog.
        """
        leg = self.confirmed()
        tx = self.receive(request("BYE", toTag=leg.localTag, cseq=2))
        [(name, bye, respond)] = self.handler.listener.events
        self.assertEqual((name, bye.method), ("request", "BYE"))
        respond(200)
        self.assertEqual(tx.statuses, [200])
        self.assertEqual(len(self.ua.dialogs), 0)
        self.assertEqual(self.ua.legs, set())
        tx = self.receive(request("BYE", toTag=leg.localTag, cseq=3))
        self.assertEqual(tx.statuses, [481])

    def test_lowerCSeq(self):
        """A request with a lower CSeq than the last: 500 (§12.2.2)."""
        leg = self.confirmed()
        self.receive(request("INFO", toTag=leg.localTag, cseq=5))
        tx = self.receive(request("INFO", toTag=leg.localTag, cseq=4))
        self.assertEqual(tx.statuses, [500])

    def test_optionsInDialog(self):
        """OPTIONS inside a dialog is answered by the core."""
        leg = self.confirmed()
        tx = self.receive(request("OPTIONS", toTag=leg.localTag, cseq=2))
        self.assertEqual(tx.statuses, [200])
        self.assertEqual(self.handler.listener.events, [])

    def test_infoInDialog(self):
        """INFO goes to the listener; its respond sends the answer."""
        leg = self.confirmed()
        tx = self.receive(
            request(
                "INFO",
                toTag=leg.localTag,
                cseq=2,
                body=b"Signal=5\r\nDuration=160\r\n",
                extra=("Content-Type: application/dtmf-relay",),
            )
        )
        [(name, info, respond)] = self.handler.listener.events
        respond(200)
        self.assertEqual(tx.statuses, [200])
        self.assertEqual(tx.responses[0].toAddr.tag, leg.localTag)
        self.assertEqual(len(self.ua.dialogs), 1)

    def test_transportFailed(self):
        """A response that cannot be sent ends the leg (§17.2.4)."""
        tx, leg = self.invite()
        self.ua.transportFailed(tx, RuntimeError("no route"))
        self.assertEqual(self.handler.listener.names(), ["terminated"])
        self.assertEqual(self.ua.legs, set())


class DialogHeaderChecksTests(UserAgentMixin, SynchronousTestCase):
    """
    A Contact or Record-Route the dialog could not use is refused with 400
    when the INVITE arrives (RFC 3261 §8.1.1.8, §12.1.1): the caller gets a
    final response, nothing rings, no leg is made.
    """

    def refused(self, header, **kw):
        kw.setdefault("body", SDP)
        kw.setdefault("extra", ())
        kw["extra"] = ("Content-Type: application/sdp",) + tuple(kw["extra"])
        tx = self.receive(request("INVITE", **kw))
        self.assertEqual(tx.statuses, [400])
        self.assertIn(header, tx.responses[0].reason)
        self.assertTrue(tx.responses[0].toAddr.tag)
        self.assertEqual(self.handler.legs, [])
        self.assertEqual(self.ua.legs, set())
        self.assertEqual(len(self.ua.dialogs), 0)
        self.assertEqual(self.ua._legsByKey, {})
        self.assertEqual(self.ua._legsByTransaction, {})
        return tx.responses[0]

    def test_malformedRecordRoute(self):
        """A Record-Route that does not parse: 400 naming Record-Route."""
        response = self.refused("Record-Route", extra=("Record-Route: <sip:p.example.com;lr",))
        self.assertTrue(response.reason.startswith("Bad Request (Bad Record-Route"))

    def test_recordRouteNotSIP(self):
        """A Record-Route with a tel: or http: URI cannot be routed to."""
        self.refused("Record-Route", extra=("Record-Route: <sip:p1.example.com;lr>, <tel:+123>",))
        self.refused("Record-Route", extra=("Record-Route: <http://x>",), callId="c2")

    def test_recordRouteWildcard(self):
        """C{Record-Route: *} is no route."""
        self.refused("Record-Route", extra=("Record-Route: *",))

    def test_recordRouteUnknownTransport(self):
        """A route naming a transport we do not have."""
        self.refused("Record-Route", extra=("Record-Route: <sip:p.example.com;lr;transport=sctp>",))

    def test_contactNotSIP(self):
        """
        A non-SIP Contact (tel:, http:) would leave no target for BYE: 400
        naming Contact.
        """
        response = self.refused("Contact", contact="<tel:+123>")
        self.assertEqual(response.reason, "Bad Request (Bad Contact: not a SIP URI)")
        self.refused("Contact", contact="<http://x>", callId="c2")

    def test_contactWildcard(self):
        """C{Contact: *} is for REGISTER only."""
        self.refused("Contact", contact="*")

    def test_moreThanOneContact(self):
        """A dialog-creating request has exactly one Contact (§8.1.1.8)."""
        self.refused("Contact", contact="<sip:a@192.0.2.1>, <sip:b@192.0.2.1>")

    def test_missingContactFromNotSIP(self):
        """
        Without Contact the From URI is the target (RFC 2543 peers); a
        non-SIP From then leaves none: 400 "Missing Contact".
        """
        tx = self.receive(request("INVITE", contact=None, body=SDP,
                                  extra=("Content-Type: application/sdp",)))
        self.assertEqual(tx.statuses, [100])
        self.receive(request("CANCEL", contact=None))
        lines = request("INVITE", contact=None, callId="c2", body=SDP,
                        extra=("Content-Type: application/sdp",)).toBytes().replace(
            b"From: <sip:alice@example.org>", b"From: <tel:+1555>")
        from linkrtc.sip.parser import parseMessage as parse
        tx = self.receive(parse(lines))
        self.assertEqual(tx.statuses, [400])
        self.assertIn("Contact", tx.responses[0].reason)

    def test_goodRecordRoute(self):
        """Usable routes and Contact: the INVITE rings as usual."""
        tx, leg = self.invite(extra=("Content-Type: application/sdp",
                                     "Record-Route: <sip:p1.example.com;lr>, <sips:p2.example.com;lr>"))
        self.assertEqual(tx.statuses, [100])
        leg.sendFinal(200, body=SDP, contentType="application/sdp")
        self.assertEqual(tx.statuses, [100, 200])
        self.assertEqual(len(leg.dialog.routeSet), 2)

    def test_reinviteBadContact(self):
        """
        A re-INVITE (target refresh) with an unusable Contact: 400, the
        dialog keeps its target and the listener hears nothing.
        """
        tx, leg = self.invite()
        leg.sendFinal(200, body=SDP, contentType="application/sdp")
        self.receive(request("ACK", toTag=leg.localTag, contact=None))
        del self.handler.listener.events[:]
        target = leg.dialog.remoteTarget
        for cseq, contact in ((2, "<tel:+123>"), (3, "<http://x>")):
            tx = self.receive(request("INVITE", toTag=leg.localTag, cseq=cseq, contact=contact,
                                      body=SDP, extra=("Content-Type: application/sdp",)))
            self.assertEqual(tx.statuses, [400])
            self.assertIn("Contact", tx.responses[0].reason)
        tx = self.receive(request("UPDATE", toTag=leg.localTag, cseq=4, contact="*"))
        self.assertEqual(tx.statuses, [400])
        self.assertEqual(self.handler.listener.events, [])
        self.assertEqual(leg.dialog.remoteTarget, target)
        bye = leg.dialog.createRequest("BYE")
        self.assertEqual(self.ua.destinationFor(leg.dialog.nextHop(bye)).host, "192.0.2.1")
