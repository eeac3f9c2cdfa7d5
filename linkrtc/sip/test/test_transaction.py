"""
Tests for L{linkrtc.sip.transaction} and L{linkrtc.sip.timers}: RFC 3261 §17
with RFC 6026, written once for the client side (UAC) and once for the
server side (UAS), table-driven over the timers.
"""

from dataclasses import dataclass

from twisted.internet.defer import fail, succeed
from twisted.internet.task import Clock
from twisted.internet.testing import EventLoggingObserver
from twisted.logger import globalLogPublisher
from twisted.trial.unittest import SynchronousTestCase
from zope.interface import implementer
from zope.interface.verify import verifyObject

from linkrtc.error import InvalidStateError, TransportError
from linkrtc.sip.message import Headers, Request
from linkrtc.sip.parser import parseMessage
from linkrtc.sip.timers import TimerConfig
from linkrtc.sip.transaction import (
    ACCEPTED,
    CALLING,
    COMPLETED,
    CONFIRMED,
    PROCEEDING,
    TERMINATED,
    TRYING,
    IClientTransactionListener,
    InviteClientTransaction,
    InviteServerTransaction,
    ITransactionTransport,
    ITransactionUser,
    NonInviteClientTransaction,
    NonInviteServerTransaction,
    TransactionLayer,
    buildAck,
    hasMagicCookie,
    newBranch,
)

# --------------------------------------------------------------------------
# Fakes.
# --------------------------------------------------------------------------


@dataclass(frozen=True)
class FakeAddress:
    """An address: the transport name decides reliability in L{FakeTransport}."""

    transport: str
    host: str
    port: int


UDP_PEER = FakeAddress("UDP", "192.0.2.10", 5060)
TCP_PEER = FakeAddress("TCP", "192.0.2.10", 5060)


@implementer(ITransactionTransport)
class FakeTransport:
    """
    Records every message sent as C{(time, message, address)}.

    @ivar failWith: an exception to raise from the next sends, or C{None}.
    @ivar failAsync: if true, the failure comes as a failed Deferred.
    """

    def __init__(self, clock):
        self.clock = clock
        self.requests = []
        self.responses = []
        self.failWith = None
        self.failAsync = False

    def _record(self, into, message, address):
        if self.failWith is not None:
            if self.failAsync:
                return fail(self.failWith)
            raise self.failWith
        into.append((self.clock.seconds(), message, address))
        return succeed(None)

    def sendRequest(self, request, destination):
        return self._record(self.requests, request, destination)

    def sendResponse(self, response, source):
        return self._record(self.responses, response, source)

    def isReliable(self, address):
        return address.transport != "UDP"


@implementer(ITransactionUser)
class FakeTU:
    """Records what the layer hands up."""

    def __init__(self):
        self.requests = []
        self.responses = []
        self.timedOut = []
        self.failed = []
        self.onRequest = None

    def requestReceived(self, request, serverTransaction):
        self.requests.append((request, serverTransaction))
        if self.onRequest is not None:
            self.onRequest(request, serverTransaction)

    def responseReceived(self, response):
        self.responses.append(response)

    def transactionTimedOut(self, serverTransaction):
        self.timedOut.append(serverTransaction)

    def transportFailed(self, serverTransaction, reason):
        self.failed.append((serverTransaction, reason))


@implementer(IClientTransactionListener)
class FakeListener:
    """Records a client transaction's events."""

    def __init__(self):
        self.responses = []
        self.timedOut = []
        self.failed = []

    def responseReceived(self, response, transaction):
        self.responses.append((response, transaction))

    def transactionTimedOut(self, transaction):
        self.timedOut.append(transaction)

    def transportFailed(self, transaction, reason):
        self.failed.append((transaction, reason))


# --------------------------------------------------------------------------
# Messages.
# --------------------------------------------------------------------------

BRANCH = "z9hG4bK74bf9"


def makeRequest(
    method="INVITE",
    branch=BRANCH,
    sentBy="pc33.atlanta.example.com",
    uri="sip:bob@biloxi.example.com",
    toTag=None,
    fromTag="9fxced76sl",
    callId="3848276298220188511@atlanta.example.com",
    cseq=1,
    cseqMethod=None,
):
    """
    @return: a parsed L{Request}. C{branch=None} leaves the branch out.
    """
    via = "SIP/2.0/UDP %s" % (sentBy,)
    if branch is not None:
        via += ";branch=" + branch
    to = "Bob <sip:bob@biloxi.example.com>"
    if toTag:
        to += ";tag=" + toTag
    text = (
        "%(method)s %(uri)s SIP/2.0\r\n"
        "Via: %(via)s\r\n"
        "Via: SIP/2.0/UDP proxy.example.com;branch=z9hG4bKouter\r\n"
        "Max-Forwards: 70\r\n"
        "Route: <sip:p1.example.com;lr>, <sip:p2.example.com;lr>\r\n"
        "From: Alice <sip:alice@atlanta.example.com>;tag=%(fromTag)s\r\n"
        "To: %(to)s\r\n"
        "Call-ID: %(callId)s\r\n"
        "CSeq: %(cseq)d %(cseqMethod)s\r\n"
        "Contact: <sip:alice@client.atlanta.example.com>\r\n"
        "Content-Length: 0\r\n"
        "\r\n"
    ) % dict(
        method=method,
        uri=uri,
        via=via,
        fromTag=fromTag,
        to=to,
        callId=callId,
        cseq=cseq,
        cseqMethod=cseqMethod or method,
    )
    return parseMessage(text.encode("ascii"))


def respond(request, status, toTag="8321234356"):
    """@return: the response to C{request} (To tag added unless 100)."""
    return request.createResponse(status, toTag=None if status == 100 else toTag)


def wire(message):
    """A message as it comes off the wire (a fresh parse of its bytes)."""
    return parseMessage(message.toBytes())


def ack(request, response, branch=None):
    """An ACK for C{response} as the far end sends it, with the INVITE's branch or C{branch}."""
    message = buildAck(request, response)
    if branch is not None:
        via = message.topVia
        via.params["branch"] = branch
        message.headers.set("Via", str(via))
    return wire(message)


def sendTimes(clock, sent, until, step=0.25):
    """
    Advance C{clock} to C{until} seconds in C{step}s and return the times of
    the messages in C{sent}.
    """
    while clock.seconds() < until:
        clock.advance(step)
    return [t for (t, _, _) in sent]


class LayerMixin:
    """Builds a layer on a Clock, a FakeTransport and a FakeTU."""

    timerConfig = TimerConfig()

    def setUp(self):
        self.clock = Clock()
        self.transport = FakeTransport(self.clock)
        self.tu = FakeTU()
        self.layer = TransactionLayer(self.transport, self.clock, self.tu, self.timerConfig)

    def assertNothingLeft(self):
        """No live transaction and no pending timer remain."""
        self.assertEqual(self.layer.activeTransactions(), [])
        self.assertEqual(self.clock.getDelayedCalls(), [])


# --------------------------------------------------------------------------
# Timer values.
# --------------------------------------------------------------------------


class TimerConfigTests(SynchronousTestCase):
    """L{TimerConfig} derives A-M from T1, T2, T4 (RFC 3261 Table 4, RFC 6026)."""

    def test_defaults(self):
        """The defaults are the RFC's: T1 0.5 s, T2 4 s, T4 5 s, and the timers derived."""
        t = TimerConfig()
        self.assertEqual((t.T1, t.T2, t.T4), (0.5, 4.0, 5.0))
        table = [
            ("A", t.A, 0.5),
            ("B", t.B, 32.0),
            ("D udp", t.D(False), 32.0),
            ("D tcp", t.D(True), 0.0),
            ("E", t.E, 0.5),
            ("F", t.F, 32.0),
            ("G", t.G, 0.5),
            ("H", t.H, 32.0),
            ("I udp", t.I(False), 5.0),
            ("I tcp", t.I(True), 0.0),
            ("J udp", t.J(False), 32.0),
            ("J tcp", t.J(True), 0.0),
            ("K udp", t.K(False), 5.0),
            ("K tcp", t.K(True), 0.0),
            ("L", t.L, 32.0),
            ("M", t.M, 32.0),
        ]
        for name, got, expected in table:
            self.assertEqual(got, expected, name)

    def test_derived(self):
        """Every timer but D follows T1 and T4; D stays at TD (at least 32 s)."""
        t = TimerConfig(T1=1.0, T2=8.0, T4=2.0)
        self.assertEqual([t.B, t.F, t.H, t.J(False), t.L, t.M], [64.0] * 6)
        self.assertEqual((t.I(False), t.K(False)), (2.0, 2.0))
        self.assertEqual(t.D(False), 32.0)

    def test_nextInterval(self):
        """Intervals double; E and G stop at T2, A does not."""
        t = TimerConfig()
        intervals = [0.5]
        for _ in range(6):
            intervals.append(t.nextInterval(intervals[-1]))
        self.assertEqual(intervals, [0.5, 1.0, 2.0, 4.0, 4.0, 4.0, 4.0])
        self.assertEqual(t.nextInterval(16.0, capped=False), 32.0)

    def test_invalid(self):
        """Non-positive values and T2 < T1 are refused."""
        for kwargs in [dict(T1=0), dict(T2=-1), dict(T4=0), dict(T1=5, T2=4), dict(tryingDelay=-1)]:
            self.assertRaises(ValueError, TimerConfig, **kwargs)


class HelperTests(SynchronousTestCase):
    """Branches and the magic cookie."""

    def test_newBranch(self):
        """New branches have the magic cookie and differ."""
        a, b = newBranch(), newBranch()
        self.assertTrue(hasMagicCookie(a))
        self.assertNotEqual(a, b)

    def test_magicCookie(self):
        """Only a branch longer than the cookie has it (RFC 4475 badbranch)."""
        table = [
            ("z9hG4bK1", True),
            ("z9hG4bK", False),
            ("abc", False),
            (None, False),
            ("", False),
            ("Z9HG4BK1", False),
        ]
        for branch, expected in table:
            self.assertEqual(hasMagicCookie(branch), expected, branch)

    def test_interfaces(self):
        """The fakes provide the interfaces the layer documents."""
        verifyObject(ITransactionTransport, FakeTransport(Clock()))
        verifyObject(ITransactionUser, FakeTU())
        verifyObject(IClientTransactionListener, FakeListener())


# --------------------------------------------------------------------------
# UAC: client transactions.
# --------------------------------------------------------------------------


class ClientTimerTests(LayerMixin, SynchronousTestCase):
    """
    Retransmission (Timers A, E) and timeout (Timers B, F), table-driven:
    (method, peer, timers, send times, timeout time).
    """

    table = [
        # Timer A: T1 doubling, uncapped; Timer B = 64*T1 = 32 s.
        ("INVITE", UDP_PEER, TimerConfig(), [0, 0.5, 1.5, 3.5, 7.5, 15.5, 31.5], 32.0),
        ("INVITE", TCP_PEER, TimerConfig(), [0], 32.0),
        # Timer E: T1 doubling capped at T2 = 4; Timer F = 32 s.
        (
            "OPTIONS",
            UDP_PEER,
            TimerConfig(),
            [0, 0.5, 1.5, 3.5, 7.5, 11.5, 15.5, 19.5, 23.5, 27.5, 31.5],
            32.0,
        ),
        ("OPTIONS", TCP_PEER, TimerConfig(), [0], 32.0),
        (
            "BYE",
            UDP_PEER,
            TimerConfig(),
            [0, 0.5, 1.5, 3.5, 7.5, 11.5, 15.5, 19.5, 23.5, 27.5, 31.5],
            32.0,
        ),
        # Another T1/T2: everything follows.
        ("INVITE", UDP_PEER, TimerConfig(T1=1.0, T2=2.0), [0, 1, 3, 7, 15, 31, 63], 64.0),
        ("OPTIONS", UDP_PEER, TimerConfig(T1=1.0, T2=2.0), [0, 1, 3] + list(range(5, 64, 2)), 64.0),
    ]

    def test_retransmitAndTimeout(self):
        """
        Requests are retransmitted at the table's times on UDP only, and the
        transaction times out at 64*T1 with the listener told once.
        """
        for method, peer, timers, times, timeout in self.table:
            self.timerConfig = timers
            self.setUp()
            listener = FakeListener()
            tx = self.layer.sendRequest(makeRequest(method), peer, listener)
            self.assertEqual(tx.state, CALLING if method == "INVITE" else TRYING)
            got = sendTimes(self.clock, self.transport.requests, timeout - 0.25)
            self.assertEqual(got, times, (method, peer, timers))
            self.assertEqual(listener.timedOut, [])
            self.clock.advance(0.25)
            self.assertEqual(listener.timedOut, [tx], (method, peer))
            self.assertEqual(tx.state, TERMINATED)
            self.assertEqual(tx.terminationReason, "timeout")
            self.assertNothingLeft()

    def test_retransmissionsAreTheRequest(self):
        """Every retransmission is the very request, to the same destination."""
        request = makeRequest("INVITE")
        self.layer.sendRequest(request, UDP_PEER, FakeListener())
        sendTimes(self.clock, self.transport.requests, 2)
        self.assertEqual(
            [(m, a) for (_, m, a) in self.transport.requests], [(request, UDP_PEER)] * 3
        )

    def test_timerEInProceeding(self):
        """Once Proceeding, Timer E is T2 each time (§17.1.2.2); F still ends it."""
        listener = FakeListener()
        request = makeRequest("OPTIONS")
        tx = self.layer.sendRequest(request, UDP_PEER, listener)
        sendTimes(self.clock, self.transport.requests, 0.75)  # sent at 0, 0.5; next due 1.5
        self.layer.responseReceived(wire(respond(request, 180)), UDP_PEER)
        self.assertEqual(tx.state, PROCEEDING)
        times = sendTimes(self.clock, self.transport.requests, 31.75)
        self.assertEqual(times, [0, 0.5, 1.5, 5.5, 9.5, 13.5, 17.5, 21.5, 25.5, 29.5])
        self.clock.advance(0.25)
        self.assertEqual(listener.timedOut, [tx])
        self.assertNothingLeft()

    def test_timerBOnlyInCalling(self):
        """A 1xx stops Timers A and B: a Proceeding INVITE waits (§17.1.1.2)."""
        listener = FakeListener()
        request = makeRequest("INVITE")
        tx = self.layer.sendRequest(request, UDP_PEER, listener)
        self.layer.responseReceived(wire(respond(request, 100)), UDP_PEER)
        self.clock.advance(100)
        self.assertEqual(len(self.transport.requests), 1)
        self.assertEqual(listener.timedOut, [])
        self.assertEqual(tx.state, PROCEEDING)
        self.assertEqual(self.clock.getDelayedCalls(), [])


class InviteClientTests(LayerMixin, SynchronousTestCase):
    """The INVITE client transaction (§17.1.1, RFC 6026 §8.4)."""

    def start(self, peer=UDP_PEER):
        self.listener = FakeListener()
        self.request = makeRequest("INVITE")
        self.tx = self.layer.sendRequest(self.request, peer, self.listener)
        self.assertIsInstance(self.tx, InviteClientTransaction)
        return self.tx

    def receive(self, status, toTag="8321234356"):
        response = wire(respond(self.request, status, toTag))
        self.layer.responseReceived(response, UDP_PEER)
        return response

    def test_provisional(self):
        """1xx go to the listener and move to Proceeding."""
        self.start()
        r100 = self.receive(100)
        r180 = self.receive(180)
        self.assertEqual(self.tx.state, PROCEEDING)
        self.assertEqual(self.listener.responses, [(r100, self.tx), (r180, self.tx)])

    def test_nonSuccessAck(self):
        """
        A 3xx-6xx gets an ACK (§17.1.1.3): the INVITE's Request-URI, one Via
        equal to its top Via, its Route, From and Call-ID, the response's To
        and CSeq number with method ACK, sent to the INVITE's destination.
        """
        self.start()
        response = self.receive(486)
        self.assertEqual(self.tx.state, COMPLETED)
        self.assertEqual(self.listener.responses, [(response, self.tx)])
        (_, sentAck, address) = self.transport.requests[-1]
        self.assertEqual(address, UDP_PEER)
        sentAck = wire(sentAck)
        self.assertEqual(sentAck.method, "ACK")
        self.assertEqual(str(sentAck.uri), str(self.request.uri))
        self.assertEqual(len(sentAck.vias), 1)
        self.assertEqual(str(sentAck.topVia), str(self.request.topVia))
        self.assertEqual(sentAck.topVia.branch, BRANCH)
        self.assertEqual(sentAck.headers.getAll("Route"), self.request.headers.getAll("Route"))
        self.assertEqual(sentAck.headers.get("From"), self.request.headers.get("From"))
        self.assertEqual(sentAck.toAddr.tag, "8321234356")
        self.assertEqual(sentAck.callId, self.request.callId)
        self.assertEqual((sentAck.cseq.number, sentAck.cseq.method), (1, "ACK"))
        self.assertEqual(sentAck.maxForwards, 70)
        self.assertNotIn("Contact", sentAck.headers)

    def test_timerDUnreliable(self):
        """
        In Completed, retransmitted finals get the ACK again and are not passed
        up; Timer D ends it after 32 s.
        """
        self.start()
        self.clock.advance(0.75)
        self.receive(486)
        sent = len(self.transport.requests)
        self.clock.advance(10)
        self.receive(486)
        self.receive(486)
        self.assertEqual(len(self.transport.requests), sent + 2)
        self.assertEqual(self.transport.requests[-1][1].method, "ACK")
        self.assertEqual(len(self.listener.responses), 1)
        self.clock.advance(32 - 10 - 0.125)
        self.assertEqual(self.tx.state, COMPLETED)
        self.clock.advance(0.125)
        self.assertEqual(self.tx.state, TERMINATED)
        self.assertIsNone(self.tx.terminationReason)
        self.assertNothingLeft()

    def test_timerDReliable(self):
        """Over a reliable transport Timer D is 0: the ACK is sent and it ends at once."""
        self.start(TCP_PEER)
        self.receive(603)
        self.assertEqual([m.method for (_, m, _) in self.transport.requests], ["INVITE", "ACK"])
        self.assertEqual(self.tx.state, TERMINATED)
        self.assertNothingLeft()

    def test_accepted(self):
        """
        RFC 6026: a 2xx moves to Accepted; every 2xx (retransmissions, other
        forks) is passed up and no ACK is sent; Timer M (32 s) ends it, and a
        later 2xx goes to the TU as a stray.
        """
        self.start()
        self.receive(180)
        ok = self.receive(200)
        self.assertEqual(self.tx.state, ACCEPTED)
        self.clock.advance(10)
        again = self.receive(200)
        fork = self.receive(200, toTag="fork2")
        self.receive(180)  # not a 2xx: dropped
        self.assertEqual([r for (r, _) in self.listener.responses][1:], [ok, again, fork])
        self.assertEqual([m.method for (_, m, _) in self.transport.requests], ["INVITE"])
        self.clock.advance(22 - 0.125)
        self.assertEqual(self.tx.state, ACCEPTED)
        self.clock.advance(0.125)
        self.assertEqual(self.tx.state, TERMINATED)
        self.assertNothingLeft()
        late = self.receive(200)
        self.assertEqual(self.tu.responses, [late])
        self.assertEqual(len(self.listener.responses), 4)

    def test_acceptedReliable(self):
        """Timer M is 64*T1 on reliable transports too (RFC 6026 §8.4)."""
        self.start(TCP_PEER)
        self.receive(200)
        self.clock.advance(31.75)
        self.assertEqual(self.tx.state, ACCEPTED)
        self.clock.advance(0.25)
        self.assertNothingLeft()

    def test_finalFromCalling(self):
        """A final response straight from Calling stops the retransmissions."""
        self.start()
        self.receive(404)
        self.clock.advance(31)
        self.assertEqual([m.method for (_, m, _) in self.transport.requests], ["INVITE", "ACK"])

    def test_createCancel(self):
        """createCancel builds the §9.1 CANCEL: same branch, URI, To, CSeq number."""
        self.start()
        cancel = wire(self.tx.createCancel())
        self.assertEqual(cancel.method, "CANCEL")
        self.assertEqual(cancel.topVia.branch, BRANCH)
        self.assertEqual(len(cancel.vias), 1)
        self.assertEqual((cancel.cseq.number, cancel.cseq.method), (1, "CANCEL"))
        self.assertEqual(cancel.headers.get("To"), self.request.headers.get("To"))
        self.assertEqual(cancel.headers.getAll("Route"), self.request.headers.getAll("Route"))

    def test_cancelHasItsOwnTransaction(self):
        """A CANCEL with the INVITE's branch is another transaction; responses match by method."""
        self.start()
        listener = FakeListener()
        cancelTx = self.layer.sendRequest(self.tx.createCancel(), UDP_PEER, listener)
        self.assertIsInstance(cancelTx, NonInviteClientTransaction)
        ok = wire(respond(cancelTx.request, 200))
        self.layer.responseReceived(ok, UDP_PEER)
        terminated = self.receive(487)
        self.assertEqual(listener.responses, [(ok, cancelTx)])
        self.assertEqual(self.listener.responses, [(terminated, self.tx)])


class NonInviteClientTests(LayerMixin, SynchronousTestCase):
    """The non-INVITE client transaction (§17.1.2)."""

    def start(self, peer=UDP_PEER, method="OPTIONS"):
        self.listener = FakeListener()
        self.request = makeRequest(method)
        self.tx = self.layer.sendRequest(self.request, peer, self.listener)
        self.assertIsInstance(self.tx, NonInviteClientTransaction)

    def receive(self, status):
        response = wire(respond(self.request, status))
        self.layer.responseReceived(response, UDP_PEER)
        return response

    def test_timerKUnreliable(self):
        """A final response -> Completed; retransmissions absorbed; Timer K = T4 = 5 s."""
        self.start()
        ok = self.receive(200)
        self.assertEqual(self.tx.state, COMPLETED)
        self.receive(200)
        self.assertEqual(self.listener.responses, [(ok, self.tx)])
        self.clock.advance(4.875)
        self.assertEqual(self.tx.state, COMPLETED)
        self.clock.advance(0.125)
        self.assertEqual(self.tx.state, TERMINATED)
        self.assertEqual(len(self.transport.requests), 1)
        self.assertNothingLeft()

    def test_timerKReliable(self):
        """Over TCP Timer K is 0."""
        self.start(TCP_PEER)
        self.receive(200)
        self.assertEqual(self.tx.state, TERMINATED)
        self.assertNothingLeft()

    def test_provisionalThenFinal(self):
        """1xx -> Proceeding and passed up; then the final."""
        self.start(method="BYE")
        trying = self.receive(100)
        self.assertEqual(self.tx.state, PROCEEDING)
        ok = self.receive(200)
        self.assertEqual(self.listener.responses, [(trying, self.tx), (ok, self.tx)])
        self.receive(180)  # late provisional in Completed: absorbed
        self.assertEqual(len(self.listener.responses), 2)

    def test_strayResponses(self):
        """Responses matching no transaction (branch or CSeq method) go to the TU (§18.1.2)."""
        self.start()
        other = wire(respond(makeRequest("OPTIONS", branch="z9hG4bKother"), 200))
        wrongMethod = wire(respond(makeRequest("INFO"), 200))
        self.layer.responseReceived(other, UDP_PEER)
        self.layer.responseReceived(wrongMethod, UDP_PEER)
        self.assertEqual(self.tu.responses, [other, wrongMethod])
        self.assertEqual(self.listener.responses, [])
        self.assertEqual(self.tx.state, TRYING)


class ClientSendTests(LayerMixin, SynchronousTestCase):
    """L{TransactionLayer.sendRequest}, C{sendAck} and transport failures (§17.1.4)."""

    def test_branchAdded(self):
        """A request whose branch lacks the magic cookie gets a fresh branch."""
        for branch in (None, "z9hG4bK", "old2543"):
            request = makeRequest("OPTIONS", branch=branch, callId="c-%s" % (branch,))
            tx = self.layer.sendRequest(request, UDP_PEER, FakeListener())
            self.assertTrue(hasMagicCookie(tx.branch), branch)
            self.assertEqual(request.topVia.branch, tx.branch)
            self.assertEqual(len(request.vias), 2)
            self.assertEqual(request.vias[1].branch, "z9hG4bKouter")

    def test_viaAddedByTransport(self):
        """A request without Via gets one from C{transport.localVia} if it has it."""
        made = []

        def localVia(transport, branch):
            made.append((transport, branch))
            return makeRequest().topVia.__class__("TCP", "198.51.100.1", 5060, {"branch": branch})

        self.transport.localVia = localVia
        request = makeRequest("OPTIONS")
        request.headers.remove("Via")
        tx = self.layer.sendRequest(request, TCP_PEER, FakeListener())
        self.assertEqual(made, [("TCP", tx.branch)])
        self.assertEqual(request.topVia.host, "198.51.100.1")

    def test_refused(self):
        """ACK, a Via-less request (no localVia) and a duplicate branch raise ValueError."""
        self.assertRaises(
            ValueError, self.layer.sendRequest, makeRequest("ACK"), UDP_PEER, FakeListener()
        )
        bare = makeRequest("OPTIONS")
        bare.headers.remove("Via")
        self.assertRaises(ValueError, self.layer.sendRequest, bare, UDP_PEER, FakeListener())
        self.layer.sendRequest(makeRequest("OPTIONS"), UDP_PEER, FakeListener())
        self.assertRaises(
            ValueError, self.layer.sendRequest, makeRequest("OPTIONS"), UDP_PEER, FakeListener()
        )

    def test_sendAck(self):
        """sendAck sends statelessly: no transaction, no timer."""
        request = makeRequest("ACK", branch="z9hG4bKack2xx")
        self.layer.sendAck(request, UDP_PEER)
        self.assertEqual([(m, a) for (_, m, a) in self.transport.requests], [(request, UDP_PEER)])
        self.assertNothingLeft()

    def test_sendAckFailure(self):
        """A failing ACK send is logged, not raised."""
        observer = EventLoggingObserver.createWithCleanup(self, globalLogPublisher)
        for failAsync in (False, True):
            self.transport.failWith = TransportError("unreachable")
            self.transport.failAsync = failAsync
            self.layer.sendAck(makeRequest("ACK"), UDP_PEER)
        self.flushLoggedErrors(TransportError)
        self.assertEqual(len([e for e in observer if "ACK" in e.get("log_format", "")]), 2)

    def test_transportFailure(self):
        """
        A send failure (raised or a failed Deferred), first send or
        retransmission, terminates the transaction and tells the listener.
        """
        for method in ("INVITE", "OPTIONS"):
            for failAsync in (False, True):
                for whenSeconds in (0, 0.5):
                    self.setUp()
                    listener = FakeListener()
                    if whenSeconds == 0:
                        self.transport.failWith = TransportError("refused")
                        self.transport.failAsync = failAsync
                    tx = self.layer.sendRequest(makeRequest(method), UDP_PEER, listener)
                    if whenSeconds:
                        self.transport.failWith = TransportError("refused")
                        self.transport.failAsync = failAsync
                        self.clock.advance(whenSeconds)
                    case = (method, failAsync, whenSeconds)
                    self.assertEqual(len(listener.failed), 1, case)
                    self.assertIs(listener.failed[0][0], tx)
                    listener.failed[0][1].trap(TransportError)
                    self.assertEqual(tx.state, TERMINATED, case)
                    self.assertEqual(tx.terminationReason, "transport")
                    self.assertNothingLeft()

    def test_ackFailure(self):
        """An ACK that cannot be sent ends the INVITE transaction with transportFailed."""
        listener = FakeListener()
        request = makeRequest("INVITE")
        tx = self.layer.sendRequest(request, UDP_PEER, listener)
        self.transport.failWith = TransportError("gone")
        self.layer.responseReceived(wire(respond(request, 500)), UDP_PEER)
        self.assertEqual(len(listener.responses), 1)
        self.assertEqual([t for (t, _) in listener.failed], [tx])
        self.assertNothingLeft()

    def test_listenerErrors(self):
        """A listener that raises does not break the state machine."""

        class Broken(FakeListener):
            def responseReceived(self, response, transaction):
                raise RuntimeError("bug")

        request = makeRequest("OPTIONS")
        tx = self.layer.sendRequest(request, UDP_PEER, Broken())
        self.layer.responseReceived(wire(respond(request, 200)), UDP_PEER)
        self.assertEqual(len(self.flushLoggedErrors(RuntimeError)), 1)
        self.assertEqual(tx.state, COMPLETED)

    def test_terminationCallbacks(self):
        """onTerminated callables and whenTerminated Deferreds fire once, at the end."""
        request = makeRequest("OPTIONS")
        tx = self.layer.sendRequest(request, TCP_PEER, FakeListener())
        called = []
        tx.onTerminated.append(called.append)
        d = tx.whenTerminated()
        self.assertNoResult(d)
        self.layer.responseReceived(wire(respond(request, 200)), TCP_PEER)
        self.assertEqual(called, [tx])
        self.assertIs(self.successResultOf(d), tx)
        self.assertIs(self.successResultOf(tx.whenTerminated()), tx)

    def test_timeoutLogged(self):
        """A timeout is a structured log event naming the branch and method."""
        observer = EventLoggingObserver.createWithCleanup(self, globalLogPublisher)
        tx = self.layer.sendRequest(makeRequest("OPTIONS"), TCP_PEER, FakeListener())
        self.clock.advance(32)
        events = [
            e
            for e in observer
            if e.get("branch") == tx.branch and "timed out" in e.get("log_format", "")
        ]
        self.assertEqual(len(events), 1)
        self.assertEqual(events[0]["method"], "OPTIONS")

    def test_stop(self):
        """stop() ends every transaction and cancels every timer."""
        self.layer.sendRequest(makeRequest("INVITE"), UDP_PEER, FakeListener())
        self.layer.requestReceived(makeRequest("INVITE", branch="z9hG4bKin"), UDP_PEER)
        self.layer.stop()
        self.assertNothingLeft()


# --------------------------------------------------------------------------
# UAS: server transactions.
# --------------------------------------------------------------------------


class ServerTimerTests(LayerMixin, SynchronousTestCase):
    """
    The server side's timers, table-driven: (method, peer, final status,
    response send times, end time, timed out).
    """

    timerConfig = TimerConfig(tryingDelay=None)

    table = [
        # Timer G: T1 doubling capped at T2, until Timer H = 32 s, no ACK.
        (
            "INVITE",
            UDP_PEER,
            486,
            [0, 0.5, 1.5, 3.5, 7.5, 11.5, 15.5, 19.5, 23.5, 27.5, 31.5],
            32.0,
            True,
        ),
        ("INVITE", TCP_PEER, 486, [0], 32.0, True),
        # Timer L: 2xx is not retransmitted by the transaction (RFC 6026).
        ("INVITE", UDP_PEER, 200, [0], 32.0, False),
        ("INVITE", TCP_PEER, 200, [0], 32.0, False),
        # Timer J: 64*T1 unreliable, 0 reliable.
        ("OPTIONS", UDP_PEER, 200, [0], 32.0, False),
        ("OPTIONS", TCP_PEER, 200, [0], 0.0, False),
        ("BYE", UDP_PEER, 481, [0], 32.0, False),
    ]

    def test_timers(self):
        """Final responses are retransmitted and transactions end at the table's times."""
        for method, peer, status, times, end, timedOut in self.table:
            self.setUp()
            request = makeRequest(method)
            self.layer.requestReceived(request, peer)
            [(_, tx)] = self.tu.requests
            tx.respond(respond(request, status))
            case = (method, peer, status)
            if end:
                got = sendTimes(self.clock, self.transport.responses, end - 0.25)
                self.assertEqual(got, times, case)
                self.assertNotEqual(tx.state, TERMINATED, case)
                self.clock.advance(0.25)
            else:
                self.assertEqual(len(self.transport.responses), 1)
            self.assertEqual(tx.state, TERMINATED, case)
            self.assertEqual(self.tu.timedOut, [tx] if timedOut else [], case)
            self.assertEqual(tx.terminationReason, "timeout" if timedOut else None, case)
            self.assertEqual(
                [r.status for (_, r, _) in self.transport.responses], [status] * len(times)
            )
            self.assertTrue(all(a == peer for (_, _, a) in self.transport.responses))
            self.assertNothingLeft()

    def test_timerI(self):
        """After the ACK: Confirmed, ACK retransmissions absorbed, Timer I = T4 (0 on TCP)."""
        for peer, timerI in ((UDP_PEER, 5.0), (TCP_PEER, 0.0)):
            self.setUp()
            request = makeRequest("INVITE")
            self.layer.requestReceived(request, peer)
            [(_, tx)] = self.tu.requests
            final = respond(request, 404)
            tx.respond(final)
            self.clock.advance(1)
            self.layer.requestReceived(ack(request, final), peer)
            if timerI:
                self.assertEqual(tx.state, CONFIRMED)
                self.layer.requestReceived(ack(request, final), peer)
                self.layer.requestReceived(wire(request), peer)
                self.clock.advance(timerI - 0.125)
                self.assertEqual(tx.state, CONFIRMED)
                self.clock.advance(0.125)
            self.assertEqual(tx.state, TERMINATED, peer)
            self.assertEqual(len(self.tu.requests), 1)
            self.assertEqual(len(self.transport.responses), 2 if peer is UDP_PEER else 1)
            self.assertNothingLeft()


class InviteServerTests(LayerMixin, SynchronousTestCase):
    """The INVITE server transaction (§17.2.1, RFC 6026 §8.7)."""

    timerConfig = TimerConfig(tryingDelay=None)

    def start(self, peer=UDP_PEER, **kwargs):
        self.request = makeRequest("INVITE", **kwargs)
        self.layer.requestReceived(self.request, peer)
        [(request, self.tx)] = self.tu.requests
        self.assertIs(request, self.request)
        self.assertIsInstance(self.tx, InviteServerTransaction)
        self.assertEqual(self.tx.state, PROCEEDING)
        self.assertIs(self.tx.source, peer)
        return self.tx

    def sentStatuses(self):
        return [r.status for (_, r, _) in self.transport.responses]

    def test_absorbInProceeding(self):
        """A retransmitted INVITE gets the latest 1xx again, or nothing before any."""
        self.start()
        self.layer.requestReceived(wire(self.request), UDP_PEER)
        self.assertEqual(self.sentStatuses(), [])
        self.tx.respond(respond(self.request, 100))
        self.tx.respond(respond(self.request, 180))
        self.layer.requestReceived(wire(self.request), UDP_PEER)
        self.assertEqual(self.sentStatuses(), [100, 180, 180])
        self.assertEqual(len(self.tu.requests), 1)

    def test_absorbInCompleted(self):
        """In Completed a retransmitted INVITE gets the final response again."""
        self.start()
        self.tx.respond(respond(self.request, 486))
        self.layer.requestReceived(wire(self.request), UDP_PEER)
        self.assertEqual(self.sentStatuses(), [486, 486])
        self.assertEqual(len(self.tu.requests), 1)

    def test_accepted(self):
        """
        RFC 6026 Accepted: INVITE retransmissions are absorbed without a
        response, the TU's 2xx retransmissions are sent, an ACK goes to the TU
        with no transaction; Timer L (32 s) ends it.
        """
        self.start()
        ok = respond(self.request, 200)
        self.tx.respond(ok)
        self.assertEqual(self.tx.state, ACCEPTED)
        self.layer.requestReceived(wire(self.request), UDP_PEER)
        self.assertEqual(self.sentStatuses(), [200])
        self.clock.advance(0.5)
        self.tx.respond(ok)
        self.assertEqual(self.sentStatuses(), [200, 200])
        theAck = ack(self.request, ok, branch="z9hG4bKnewForAck")
        self.layer.requestReceived(theAck, UDP_PEER)
        sameBranchAck = ack(self.request, ok)
        self.layer.requestReceived(sameBranchAck, UDP_PEER)
        self.assertEqual(self.tu.requests[1:], [(theAck, None), (sameBranchAck, None)])
        self.assertRaises(InvalidStateError, self.tx.respond, respond(self.request, 180))
        self.assertRaises(InvalidStateError, self.tx.respond, respond(self.request, 486))
        self.clock.advance(31.5 - 0.125)
        self.assertEqual(self.tx.state, ACCEPTED)
        self.clock.advance(0.125)
        self.assertEqual(self.tx.state, TERMINATED)
        self.assertNothingLeft()
        # The transaction is gone: a late INVITE retransmission is a new request.
        self.layer.requestReceived(wire(self.request), UDP_PEER)
        self.assertEqual(len(self.tu.requests), 4)

    def test_ackInProceedingDropped(self):
        """An ACK matching an INVITE that has no final response yet is dropped."""
        self.start()
        self.layer.requestReceived(ack(self.request, respond(self.request, 486)), UDP_PEER)
        self.assertEqual(len(self.tu.requests), 1)
        self.assertEqual(self.tx.state, PROCEEDING)

    def test_strayAck(self):
        """An ACK matching no transaction goes up with no transaction."""
        request = makeRequest("ACK", toTag="abc")
        self.layer.requestReceived(request, UDP_PEER)
        self.assertEqual(self.tu.requests, [(request, None)])
        self.assertNothingLeft()

    def test_respondAfterFinal(self):
        """A second final, or any response once Terminated, raises InvalidStateError."""
        self.start(TCP_PEER)
        self.tx.respond(respond(self.request, 486))
        self.assertRaises(InvalidStateError, self.tx.respond, respond(self.request, 200))
        bogus = respond(self.request, 486)
        bogus.status = 700
        self.assertRaises(ValueError, self.tx.respond, bogus)
        self.clock.advance(32)
        self.assertRaises(InvalidStateError, self.tx.respond, respond(self.request, 500))

    def test_transportFailure(self):
        """A response that cannot be sent terminates; the TU's transportFailed is told (§17.2.4)."""
        for failAsync in (False, True):
            self.setUp()
            self.start()
            self.transport.failWith = TransportError("gone")
            self.transport.failAsync = failAsync
            self.tx.respond(respond(self.request, 180))
            self.assertEqual([t for (t, _) in self.tu.failed], [self.tx])
            self.tu.failed[0][1].trap(TransportError)
            self.assertEqual(self.tx.terminationReason, "transport")
            self.assertNothingLeft()

    def test_retransmissionFailure(self):
        """A failed Timer G retransmission ends the transaction too."""
        self.start()
        self.tx.respond(respond(self.request, 500))
        self.transport.failWith = TransportError("gone")
        self.clock.advance(0.5)
        self.assertEqual(len(self.tu.failed), 1)
        self.assertNothingLeft()

    def test_tuErrors(self):
        """A TU that raises is logged; the transaction stays usable."""

        def broken(request, tx):
            raise RuntimeError("bug")

        self.tu.onRequest = broken
        self.start()
        self.assertEqual(len(self.flushLoggedErrors(RuntimeError)), 1)
        self.tx.respond(respond(self.request, 180))
        self.assertEqual(self.sentStatuses(), [180])


class TryingTests(LayerMixin, SynchronousTestCase):
    """The INVITE server transaction's own 100 Trying (§17.2.1), configurable."""

    def receive(self, timers):
        self.timerConfig = timers
        self.setUp()
        self.request = makeRequest("INVITE")
        self.layer.requestReceived(self.request, UDP_PEER)
        return self.tu.requests[0][1]

    def statuses(self):
        return [(t, r.status) for (t, r, _) in self.transport.responses]

    def test_after200ms(self):
        """With the default, 100 Trying goes out after 200 ms if the TU sent no 1xx."""
        tx = self.receive(TimerConfig())
        self.clock.advance(0.1)
        self.assertEqual(self.statuses(), [])
        self.clock.advance(0.1)
        self.assertEqual(self.statuses(), [(0.2, 100)])
        trying = self.transport.responses[0][1]
        self.assertIsNone(trying.toAddr.tag)
        self.assertEqual(trying.headers.getAll("Via"), self.request.headers.getAll("Via"))
        # A retransmitted INVITE now gets the 100 again.
        self.layer.requestReceived(wire(self.request), UDP_PEER)
        self.assertEqual(len(self.statuses()), 2)
        self.assertEqual(tx.state, PROCEEDING)

    def test_notIfTUAnswered(self):
        """No 100 when the TU sent a response within 200 ms."""
        for status in (180, 100, 486, 200):
            tx = self.receive(TimerConfig())
            self.clock.advance(0.1)
            tx.respond(respond(self.request, status))
            self.clock.advance(0.5)
            self.assertEqual(self.statuses()[0], (0.1, status))
            self.assertNotIn(100, [s for (t, s) in self.statuses()[1:]])

    def test_noTimerIfTUAnsweredAtOnce(self):
        """
        A TU that answers while it is handed the INVITE leaves no Trying
        timer behind (only Timer L of the 2xx runs).
        """
        self.timerConfig = TimerConfig()
        self.setUp()
        self.tu.onRequest = lambda request, tx: tx.respond(respond(request, 200))
        self.layer.requestReceived(makeRequest("INVITE"), UDP_PEER)
        [call] = self.clock.getDelayedCalls()
        self.assertEqual(call.getTime(), TimerConfig().L)
        self.assertEqual(self.statuses(), [(0, 200)])

    def test_disabled(self):
        """tryingDelay=None: never."""
        self.receive(TimerConfig(tryingDelay=None))
        self.clock.advance(100)
        self.assertEqual(self.statuses(), [])

    def test_immediate(self):
        """tryingDelay=0: at once, before the TU sees the INVITE."""
        seen = []
        self.timerConfig = TimerConfig(tryingDelay=0)
        self.setUp()
        self.tu.onRequest = lambda request, tx: seen.append(self.statuses())
        self.layer.requestReceived(makeRequest("INVITE"), UDP_PEER)
        self.assertEqual(seen, [[(0, 100)]])

    def test_nonInvite(self):
        """Non-INVITE transactions never send 100 on their own."""
        self.receive(TimerConfig())
        self.layer.requestReceived(makeRequest("OPTIONS", branch="z9hG4bKopt"), UDP_PEER)
        sendTimes(self.clock, self.transport.responses, 1, step=0.1)
        self.assertEqual(self.statuses(), [(0.2, 100)])


class NonInviteServerTests(LayerMixin, SynchronousTestCase):
    """The non-INVITE server transaction (§17.2.2)."""

    def start(self, method="OPTIONS", peer=UDP_PEER):
        self.request = makeRequest(method)
        self.layer.requestReceived(self.request, peer)
        [(_, self.tx)] = self.tu.requests
        self.assertIsInstance(self.tx, NonInviteServerTransaction)
        self.assertEqual(self.tx.state, TRYING)

    def statuses(self):
        return [r.status for (_, r, _) in self.transport.responses]

    def test_absorption(self):
        """Trying absorbs, Proceeding and Completed resend the last response."""
        self.start("BYE")
        self.layer.requestReceived(wire(self.request), UDP_PEER)
        self.assertEqual(self.statuses(), [])
        self.tx.respond(respond(self.request, 100))
        self.assertEqual(self.tx.state, PROCEEDING)
        self.layer.requestReceived(wire(self.request), UDP_PEER)
        self.assertEqual(self.statuses(), [100, 100])
        self.tx.respond(respond(self.request, 200))
        self.assertEqual(self.tx.state, COMPLETED)
        self.layer.requestReceived(wire(self.request), UDP_PEER)
        self.assertEqual(self.statuses(), [100, 100, 200, 200])
        self.assertEqual(len(self.tu.requests), 1)
        self.assertRaises(InvalidStateError, self.tx.respond, respond(self.request, 500))

    def test_timerJ(self):
        """Timer J: the final is resent for 32 s on UDP, then the request is new again."""
        self.start()
        self.tx.respond(respond(self.request, 200))
        self.clock.advance(31.875)
        self.layer.requestReceived(wire(self.request), UDP_PEER)
        self.assertEqual(self.statuses(), [200, 200])
        self.clock.advance(0.125)
        self.assertNothingLeft()
        self.layer.requestReceived(wire(self.request), UDP_PEER)
        self.assertEqual(len(self.tu.requests), 2)


class ServerMatchingTests(LayerMixin, SynchronousTestCase):
    """§17.2.3 matching: branch + sent-by + method, CANCEL, and the RFC 2543 fallback."""

    timerConfig = TimerConfig(tryingDelay=None)

    def txFor(self, request, peer=UDP_PEER):
        before = len(self.tu.requests)
        self.layer.requestReceived(request, peer)
        if len(self.tu.requests) == before:
            return None
        return self.tu.requests[-1][1]

    def test_table(self):
        """
        Each row: a second request, and whether it matches the first INVITE's
        transaction (a retransmission, absorbed) or is new.
        """
        table = [
            ("same", dict(), True),
            ("other branch", dict(branch="z9hG4bKdifferent"), False),
            ("other sent-by host", dict(sentBy="other.example.com"), False),
            ("other sent-by port", dict(sentBy="pc33.atlanta.example.com:5070"), False),
            ("sent-by host case", dict(sentBy="PC33.Atlanta.Example.COM"), True),
            ("other method", dict(method="OPTIONS"), False),
            ("CANCEL", dict(method="CANCEL"), False),
        ]
        for name, kwargs, matches in table:
            self.setUp()
            first = self.txFor(makeRequest("INVITE"))
            second = self.txFor(makeRequest(**kwargs))
            if matches:
                self.assertIsNone(second, name)
            else:
                self.assertIsNotNone(second, name)
                self.assertIsNot(second, first, name)
            self.assertEqual(len(self.layer.activeTransactions()), 1 if matches else 2, name)

    def test_findInviteForCancel(self):
        """The CANCEL gets its own transaction; findInviteForCancel finds the INVITE's."""
        invite = self.txFor(makeRequest("INVITE"))
        cancel = makeRequest("CANCEL")
        cancelTx = self.txFor(cancel)
        self.assertIsInstance(cancelTx, NonInviteServerTransaction)
        self.assertIs(self.layer.findInviteForCancel(cancel), invite)
        self.assertIsNone(self.layer.findInviteForCancel(makeRequest("CANCEL", branch="z9hG4bKx")))
        self.assertIsNone(
            self.layer.findInviteForCancel(makeRequest("CANCEL", sentBy="elsewhere.example.com"))
        )
        # Not an INVITE transaction: no match.
        self.txFor(makeRequest("OPTIONS", branch="z9hG4bKopt"))
        self.assertIsNone(
            self.layer.findInviteForCancel(makeRequest("CANCEL", branch="z9hG4bKopt"))
        )

    def test_findInviteForCancel2543(self):
        """Without the cookie, the CANCEL's URI, tags, Call-ID, CSeq number and Via decide (§9.2)."""
        invite = self.txFor(makeRequest("INVITE", branch=None))
        self.assertIs(self.layer.findInviteForCancel(makeRequest("CANCEL", branch=None)), invite)
        for kwargs in (
            dict(cseq=2),
            dict(callId="other"),
            dict(fromTag="x"),
            dict(toTag="y"),
            dict(uri="sip:carol@biloxi.example.com"),
            dict(sentBy="other.example.com"),
        ):
            self.assertIsNone(
                self.layer.findInviteForCancel(makeRequest("CANCEL", branch=None, **kwargs)), kwargs
            )

    def test_rfc2543Table(self):
        """
        RFC 2543 fallback (no branch, a non-cookie branch, or the bare cookie
        of RFC 4475 badbranch): Request-URI, To tag, From tag, Call-ID, CSeq
        and top Via decide.
        """
        table = [
            ("same", dict(), True),
            ("received added", "received", True),
            ("other CSeq", dict(cseq=2), False),
            ("other Call-ID", dict(callId="x@y"), False),
            ("other From tag", dict(fromTag="other"), False),
            ("other To tag", dict(toTag="other"), False),
            ("other URI", dict(uri="sip:carol@biloxi.example.com"), False),
            ("other Via", dict(sentBy="other.example.com"), False),
        ]
        for branch in (None, "z9hG4bK", "1234old"):
            for name, kwargs, matches in table:
                self.setUp()
                first = self.txFor(makeRequest("INVITE", branch=branch))
                if kwargs == "received":
                    retrans = makeRequest("INVITE", branch=branch)
                    via = retrans.topVia
                    via.params["received"] = "192.0.2.99"
                    retrans.headers.set("Via", str(via))
                    retrans.headers.add("Via", "SIP/2.0/UDP proxy.example.com;branch=z9hG4bKouter")
                    second = self.txFor(wire(retrans))
                else:
                    second = self.txFor(makeRequest("INVITE", branch=branch, **kwargs))
                case = (branch, name)
                self.assertIsNotNone(first, case)
                if matches:
                    self.assertIsNone(second, case)
                else:
                    self.assertIsNotNone(second, case)

    def test_rfc2543Ack(self):
        """
        A 2543 ACK matches the INVITE whose final response carried its To tag
        (Completed -> Confirmed); another To tag goes to the TU.
        """
        for branch in (None, "z9hG4bK"):
            self.setUp()
            request = makeRequest("INVITE", branch=branch)
            tx = self.txFor(request)
            final = respond(request, 486, toTag="t486")
            tx.respond(final)
            wrong = makeRequest("ACK", branch=branch, toTag="nottheone")
            self.layer.requestReceived(wrong, UDP_PEER)
            self.assertEqual(self.tu.requests[-1], (wrong, None))
            self.assertEqual(tx.state, COMPLETED)
            self.layer.requestReceived(makeRequest("ACK", branch=branch, toTag="t486"), UDP_PEER)
            self.assertEqual(tx.state, CONFIRMED, branch)
            self.assertEqual(len(self.tu.requests), 2)
            self.clock.advance(5)
            self.assertNothingLeft()

    def test_rfc2543AckBeforeFinal(self):
        """
        A 2543 ACK for an INVITE with no final response yet matches nothing
        and goes to the TU; the transaction is untouched.
        """
        request = makeRequest("INVITE", branch=None)
        tx = self.txFor(request)
        early = makeRequest("ACK", branch=None)
        self.layer.requestReceived(early, UDP_PEER)
        tx.respond(respond(request, 180))
        ringing = makeRequest("ACK", branch=None, toTag="8321234356")
        self.layer.requestReceived(ringing, UDP_PEER)
        self.assertEqual(self.tu.requests[1:], [(early, None), (ringing, None)])
        self.assertEqual(tx.state, PROCEEDING)

    def test_rfc2543AckFor2xx(self):
        """A 2543 ACK for a 2xx (Accepted) is passed to the TU."""
        request = makeRequest("INVITE", branch=None)
        tx = self.txFor(request)
        tx.respond(respond(request, 200, toTag="ok"))
        theAck = makeRequest("ACK", branch=None, toTag="ok")
        self.layer.requestReceived(theAck, UDP_PEER)
        self.assertEqual(self.tu.requests[-1], (theAck, None))
        self.assertEqual(tx.state, ACCEPTED)

    def test_rfc2543NonInvite(self):
        """A 2543 non-INVITE retransmission is absorbed and gets the final again."""
        request = makeRequest("OPTIONS", branch=None)
        tx = self.txFor(request)
        tx.respond(respond(request, 200))
        self.assertIsNone(self.txFor(makeRequest("OPTIONS", branch=None)))
        self.assertEqual(len(self.transport.responses), 2)
        self.clock.advance(32)
        self.assertNothingLeft()

    def test_badInput(self):
        """A request without Via, or with a bad header, is dropped and logged, never raised."""
        bare = Request("OPTIONS", makeRequest().uri, Headers())
        self.layer.requestReceived(bare, UDP_PEER)
        broken = makeRequest("INVITE", branch=None)
        broken.headers.set("CSeq", "not a number")
        self.layer.requestReceived(broken, UDP_PEER)
        self.assertEqual(self.tu.requests, [])
        self.assertIsNone(self.layer.findInviteForCancel(bare))
        self.assertNothingLeft()

    def test_noLeaks(self):
        """Many transactions of every kind, run to their end, leave nothing behind."""
        for i in range(20):
            branch = "z9hG4bKleak%d" % (i,)
            invite = makeRequest("INVITE", branch=branch)
            tx = self.txFor(invite)
            tx.respond(respond(invite, 200 if i % 2 else 486))
            options = makeRequest("OPTIONS", branch=branch)
            self.txFor(options).respond(respond(options, 200))
            self.layer.sendRequest(
                makeRequest("INFO", branch=branch + "c"), UDP_PEER, FakeListener()
            )
        self.clock.advance(100)
        self.assertNothingLeft()


# --------------------------------------------------------------------------
# Bounds and amplification (issue 11, "SIP admission").
# --------------------------------------------------------------------------


class AmplificationTests(SynchronousTestCase):
    """
    A final non-2xx to an INVITE from a source that never ACKs (a scanner)
    is retransmitted on Timer G about ten times (the finding: each
    unanswered INVITE drew 12 responses). Unknown sources get a few;
    L{ServerTransaction.respondOnce} gets exactly one.
    """

    def makeLayer(self, **kwargs):
        self.clock = Clock()
        self.transport = FakeTransport(self.clock)
        self.tu = FakeTU()
        self.layer = TransactionLayer(self.transport, self.clock, self.tu, **kwargs)

    def finalToInvite(self, status=486, once=False, branch=BRANCH, peer=UDP_PEER):
        self.layer.requestReceived(wire(makeRequest(branch=branch)), peer)
        _, tx = self.tu.requests[-1]
        response = respond(tx.request, status)
        if once:
            tx.respondOnce(response)
        else:
            tx.respond(response)
        for _ in range(640):
            self.clock.advance(0.1)
        return tx

    def test_rfcRetransmitsAboutTen(self):
        """Without a cap (RFC 3261), Timer G sends the 486 again until Timer H."""
        self.makeLayer()
        self.finalToInvite()
        self.assertGreaterEqual(len(self.transport.responses), 10)

    def test_unknownSourceCapped(self):
        """With C{unknownSourceRetransmissions=2}: the 486 and two copies, no more."""
        self.makeLayer(unknownSourceRetransmissions=2)
        tx = self.finalToInvite()
        self.assertEqual(len(self.transport.responses), 3)
        self.assertEqual(tx.state, TERMINATED)

    def test_knownSourceNotCapped(self):
        """A source that sent an ACK before gets RFC 3261's retransmissions."""
        self.makeLayer(unknownSourceRetransmissions=2)
        tx = self.finalToInvite()
        self.layer.requestReceived(wire(buildAck(tx.request, tx.lastResponse)), UDP_PEER)
        del self.transport.responses[:]
        self.finalToInvite(branch="z9hG4bKsecond")
        self.assertGreaterEqual(len(self.transport.responses), 10)

    def test_respondOnce(self):
        """C{respondOnce}: exactly one response to a source that never ACKs."""
        self.makeLayer()
        tx = self.finalToInvite(status=503, once=True)
        self.assertEqual([r.status for _, r, _ in self.transport.responses], [503])
        self.assertEqual(tx.state, TERMINATED)

    def test_respondOnceRetransmittedInvite(self):
        """A retransmitted INVITE still gets the final response again (1:1)."""
        self.makeLayer()
        request = wire(makeRequest())
        self.layer.requestReceived(request, UDP_PEER)
        _, tx = self.tu.requests[-1]
        tx.respondOnce(respond(tx.request, 503))
        self.layer.requestReceived(wire(makeRequest()), UDP_PEER)
        self.assertEqual([r.status for _, r, _ in self.transport.responses], [503, 503])


class BoundedTableTests(SynchronousTestCase):
    """The server transaction table has a bound; beyond it requests are refused."""

    def setUp(self):
        self.clock = Clock()
        self.transport = FakeTransport(self.clock)
        self.tu = FakeTU()
        self.tu.onRequest = lambda request, tx: tx.respond(respond(request, 200))
        self.layer = TransactionLayer(self.transport, self.clock, self.tu,
                                      maxServerTransactions=100)
        self.log = EventLoggingObserver.createWithCleanup(self, globalLogPublisher)

    def flood(self, count, peer=UDP_PEER, start=0):
        for i in range(start, start + count):
            self.layer.requestReceived(
                wire(makeRequest("OPTIONS", branch="z9hG4bKf%d" % i, callId="c%d" % i)), peer)

    def hold(self):
        """The TU answers nothing: every transaction stays in progress."""
        self.tu.onRequest = lambda request, tx: None

    def test_optionsFloodBounded(self):
        """
        The finding: an OPTIONS flood kept 32 s of transactions (Timer J)
        and took memory to 1 GB. The table stops at its bound: answered
        transactions that only linger for retransmissions are ended early,
        oldest first, to make room (counted, not refused).
        """
        self.flood(5000)
        self.assertEqual(self.layer.serverTransactionCount(), 100)
        self.assertEqual(len(self.tu.requests), 5000)
        self.assertEqual(len(self.transport.responses), 5000)
        evicted = [tx for _, tx in self.tu.requests if tx.terminationReason == "evicted"]
        self.assertEqual(len(evicted), 4900)
        self.assertEqual([tx.request.callId for tx in evicted[:2]], ["c0", "c1"])
        warnings = [e for e in self.log if "table full" in e.get("log_format", "")]
        self.assertEqual(warnings, [])

    def test_inProgressFloodRefused(self):
        """
        When every transaction is still in progress (nothing lingers), the
        rest is dropped over UDP, logged once.
        """
        self.hold()
        self.flood(5000)
        self.assertEqual(self.layer.serverTransactionCount(), 100)
        self.assertEqual(len(self.tu.requests), 100)
        warnings = [e for e in self.log if "table full" in e.get("log_format", "")]
        self.assertEqual(len(warnings), 1)

    def test_inviteLingersAfter2xx(self):
        """
        An INVITE transaction that sent its 2xx lingers (RFC 6026 Accepted):
        once evicted, the user agent's 2xx retransmissions go straight to
        the transport.
        """
        self.layer.requestReceived(wire(makeRequest("INVITE", branch="z9hG4bKi1",
                                                    callId="i1")), UDP_PEER)
        _, tx = self.tu.requests[-1]
        self.assertIn(tx, self.layer._lingering)
        self.flood(100)
        self.assertEqual(tx.terminationReason, "evicted")
        self.assertNotIn(tx, self.layer._lingering)

    def test_reliableGets503(self):
        """Over TCP/TLS a refused request is answered 503 with Retry-After, statelessly."""
        self.hold()
        self.flood(100)
        del self.transport.responses[:]
        self.flood(1, peer=TCP_PEER, start=100)
        [(_, response, address)] = self.transport.responses
        self.assertEqual(response.status, 503)
        self.assertEqual(response.headers.get("Retry-After"), "5")
        self.assertEqual(address, TCP_PEER)

    def test_episodeEnds(self):
        """Once transactions end, requests are taken again; a new episode logs again."""
        self.hold()
        self.flood(200)
        for _, tx in self.tu.requests:
            tx.respond(respond(tx.request, 200))
        self.clock.pump([1] * 64)
        self.assertEqual(self.layer.serverTransactionCount(), 0)
        self.flood(1, start=1000)
        self.assertEqual(len(self.tu.requests), 101)
        self.flood(200, start=2000)
        warnings = [e for e in self.log if "table full" in e.get("log_format", "")]
        self.assertEqual(len(warnings), 2)


class BuiltWholeTests(SynchronousTestCase):
    def test_tuFactory(self):
        """C{tuFactory} builds the transaction user with the layer itself, last."""
        clock = Clock()
        built = []

        def factory(layer):
            built.append((layer, layer.maxServerTransactions))
            return FakeTU()

        layer = TransactionLayer(FakeTransport(clock), clock, None, maxServerTransactions=7,
                                 tuFactory=factory)
        self.assertEqual(built, [(layer, 7)])
        self.assertIsInstance(layer.tu, FakeTU)
