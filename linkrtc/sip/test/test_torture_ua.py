"""
RFC 4475 and RFC 5118 torture messages through the whole UAS stack: each
file is fed as one UDP datagram from 192.0.2.1:5060 into the real
L{SIPTransportLayer}, L{TransactionLayer} and L{UserAgent}, on a fake
datagram transport and a fake clock; the response code (or silence) is
checked against the verdicts of the INDEX.md files, for the role of a UAS
with a registrar (L{linkrtc.sip.registrar}): an unauthenticated REGISTER
gets 401, one that is not for a SIP address-of-record 400.
"""

import os

from twisted.internet.address import IPv4Address
from twisted.internet.testing import MemoryReactorClock
from twisted.trial.unittest import SynchronousTestCase
from zope.interface import implementer

from linkrtc.interfaces import IInviteHandler
from linkrtc.signalling.directory import ClientDirectory
from linkrtc.sip.bindings import BindingTable
from linkrtc.sip.messaging import Messenger
from linkrtc.sip.registrar import Registrar, SIPUserStore
from linkrtc.sip.transaction import TransactionLayer
from linkrtc.sip.transport import SIPTransportLayer
from linkrtc.sip.useragent import UserAgent

MESSAGES = os.path.join(os.path.dirname(__file__), "messages")

#: RFC 4475: file -> expected status (C{None}: no answer at all;
#: C{"invite"}: 100 Trying and the INVITE reaches the handler).
RFC4475 = {
    # §3.1.1 valid messages.
    # wsinv carries a To tag: a request for a dialog we do not have (§12.2.2).
    "wsinv": 481,
    "intmeth": 501,
    "esc01": "invite",
    "escnull": 401,
    "esc02": 501,
    "lwsdisp": 200,
    "longreq": "invite",
    "dblreq": 401,
    "semiuri": 200,
    "transports": 200,
    "mpart01": 415,
    "unreason": None,
    "noreason": None,
    # §3.1.2 invalid messages.
    "badinv01": 400,
    "clerr": 400,
    "ncl": 400,
    "scalar02": 400,
    "scalarlg": None,
    "quotbal": 400,
    "ltgtruri": 400,
    "lwsruri": 400,
    "lwsstart": (400, "invite"),
    "trws": (400, 200),
    "escruri": (400, "invite"),
    "baddate": (400, "invite"),
    "regbadct": 400,
    "badaspec": 400,
    "baddn": 400,
    "badvers": 505,
    "mismatch01": 400,
    "mismatch02": (501, 400),
    "bigcode": None,
    # §3.2
    "badbranch": (400, 200),
    # §3.3 semantic
    "insuf": 400,
    "unkscm": 416,
    "novelsc": 416,
    "unksm2": 400,
    "bext01": 420,
    "invut": 415,
    "regaut01": 401,
    "multi01": 400,
    "mcl01": 400,
    "bcast": None,
    "zeromf": 200,
    "cparam01": 401,
    "cparam02": 401,
    "regescrt": 401,
    "sdp01": 406,
    # §3.4
    "inv2543": "invite",
    # Not in the RFC: a robustness probe. No Via and a bad Request-Line:
    # nothing to answer to, so it is dropped (400 would pass too).
    "test": (None, 400),
}

#: RFC 5118 (and the derived files with Content-Length fixed for CRLF).
RFC5118 = {
    "ipv6-good": 401,
    "ipv6-bad": 400,
    "port-ambiguous": 401,
    "port-unambiguous": 401,
    # BYE with a To tag for a dialog we do not have.
    "via-received-param-with-delim": 481,
    "via-received-param-no-delim": 200,
    "ipv6-in-sdp": "invite",
    "mult-ip-in-header": 481,
    "mult-ip-in-sdp": "invite",
    "ipv4-mapped-ipv6": "invite",
    "ipv6-bug-abnf-3-colons": (400, 200, 401, "invite"),
    "ipv6-correct-abnf-2-colons": (200, 401, "invite"),
    "derived/ipv4-mapped-ipv6.cl-fixed": "invite",
    "derived/ipv6-in-sdp.cl-fixed": "invite",
    "derived/mult-ip-in-sdp.cl-fixed": "invite",
}


class FakeDatagramTransport:
    """Records datagrams as C{(bytes, (host, port))}."""

    def __init__(self):
        self.written = []

    def write(self, data, addr):
        self.written.append((data, addr))


class FakeUDPPort:
    """A listening UDP port whose protocol writes to a L{FakeDatagramTransport}."""

    def __init__(self, port, protocol, interface):
        self.port = port
        self.interface = interface or "0.0.0.0"
        self.protocol = protocol
        self.transport = FakeDatagramTransport()
        protocol.makeConnection(self.transport)

    def getHost(self):
        return IPv4Address("UDP", self.interface, self.port)

    def stopListening(self):
        pass


class UDPReactor(MemoryReactorClock):
    """A memory reactor and clock that can listen on UDP with fakes."""

    def __init__(self):
        super().__init__()
        self.udpPorts = []

    def listenUDP(self, port, protocol, interface="", maxPacketSize=8192):
        udp = FakeUDPPort(port, protocol, interface)
        self.udpPorts.append(udp)
        return udp


@implementer(IInviteHandler)
class CollectingHandler:
    """Keeps every leg; answers nothing."""

    def __init__(self):
        self.legs = []

    def inviteReceived(self, leg):
        self.legs.append(leg)


class RecordingTransportLayer(SIPTransportLayer):
    """
    The real transport layer, also recording every response it is asked
    to send: answers to requests whose Via names TCP or TLS go out on a new
    stream connection (§18.2.2), not on the UDP socket.
    """

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self.sentResponses = []

    def sendResponse(self, response, source):
        self.sentResponses.append((response, source))
        return super().sendResponse(response, source)


class Stack:
    """The transport, transaction and UA layers wired as in the service."""

    def __init__(self):
        self.reactor = UDPReactor()
        self.handler = CollectingHandler()
        self.transport = RecordingTransportLayer(self.reactor)
        bindings = BindingTable(self.reactor)
        self.registrar = Registrar(self.reactor, bindings, SIPUserStore({"phone1": {"password": "pw"}}),
                                   messenger=Messenger(self.reactor, ClientDirectory(),
                                                       bindings, SIPUserStore()))
        self.ua = UserAgent(None, self.transport, self.handler, self.reactor,
                            registrar=self.registrar)
        self.transactions = TransactionLayer(self.transport, self.reactor, self.ua)
        self.ua.setTransactionLayer(self.transactions)
        self.transport.receiver = self.transactions
        self.transport.listen("udp:5060:interface=192.0.2.10")
        self.udp = self.reactor.udpPorts[0]

    def feed(self, data, source=("192.0.2.1", 5060)):
        """
        Feed one datagram; return the statuses of the responses sent, in
        order (those given to C{sendResponse}, else those written on the
        UDP socket).
        """
        self.udp.protocol.datagramReceived(data, source)
        return self.statuses()

    def statuses(self):
        if self.transport.sentResponses:
            return [r.status for r, _ in self.transport.sentResponses]
        return [int(d.split(b" ", 2)[1]) for d, _ in self.udp.transport.written]

    def lastResponse(self):
        return self.transport.sentResponses[-1][0]

    def stop(self):
        self.transactions.stop()
        self.ua.stop()


def verdict(stack, data):
    """
    Feed C{data}; return C{None} (silence), C{"invite"} (100 Trying and the
    handler got a leg) or the status of the one final response.
    """
    statuses = stack.feed(data)
    if stack.handler.legs:
        if statuses == [100]:
            return "invite"
        return ("invite?", statuses)
    if not statuses:
        return None
    if len(statuses) != 1:
        return tuple(statuses)
    return statuses[0]


def read(corpus, name):
    with open(os.path.join(MESSAGES, corpus, name + ".sip"), "rb") as f:
        return f.read()


class TortureMixin:
    corpus = None
    table = None

    def check(self, name):
        stack = Stack()
        self.addCleanup(stack.stop)
        data = read(self.corpus, name)
        got = verdict(stack, data)
        expected = self.table[name]
        allowed = expected if isinstance(expected, tuple) else (expected,)
        self.assertIn(got, allowed, "%s: got %r, expected %r" % (name, got, expected))
        return stack, got

    @classmethod
    def makeTests(cls):
        for name in cls.table:
            def test(self, name=name):
                self.check(name)

            test.__doc__ = "%s/%s.sip is answered %r." % (cls.corpus, name, cls.table[name])
            setattr(cls, "test_" + name.replace("/", "_").replace("-", "_").replace(".", "_"),
                    test)


class RFC4475Tests(TortureMixin, SynchronousTestCase):
    """RFC 4475 messages through the real stack."""

    corpus = "rfc4475"
    table = RFC4475

    def test_everyFile(self):
        """Every message file of the corpus has a verdict here."""
        names = sorted(
            n[:-4] for n in os.listdir(os.path.join(MESSAGES, self.corpus)) if n.endswith(".sip")
        )
        self.assertEqual(names, sorted(self.table))

    def test_bext01Unsupported(self):
        """bext01: 420 lists the Require tags in Unsupported, not Proxy-Require's."""
        stack, _ = self.check("bext01")
        response = stack.lastResponse()
        tags = [t.strip() for v in response.headers.getAll("Unsupported") for t in v.split(",")]
        self.assertEqual(sorted(tags), ["nothingSupportsThis", "nothingSupportsThisEither"])

    def test_invutAccept(self):
        """invut: 415 carries Accept with application/sdp."""
        stack, _ = self.check("invut")
        response = stack.lastResponse()
        self.assertIn("application/sdp", response.headers.get("Accept"))

    def test_registerChallenge(self):
        """An unauthenticated REGISTER's 401 carries digest challenges (SHA-256, MD5)."""
        stack, _ = self.check("cparam01")
        response = stack.lastResponse()
        values = response.headers.getAll("WWW-Authenticate")
        self.assertEqual(len(values), 2)
        self.assertIn("SHA-256", values[0])

    def test_intmethAllow(self):
        """intmeth: 501 carries Allow."""
        stack, _ = self.check("intmeth")
        response = stack.lastResponse()
        self.assertIn("INVITE", response.headers.get("Allow"))

    def test_responseDestination(self):
        """zeromf's 200 goes back to the source (received), port 5060."""
        stack, _ = self.check("zeromf")
        self.assertEqual(stack.udp.transport.written[0][1], ("192.0.2.1", 5060))

    def test_inviteLeg(self):
        """inv2543: the leg's INVITE is the parsed message; answering it works."""
        stack, _ = self.check("inv2543")
        [leg] = stack.handler.legs
        self.assertEqual(leg.request.method, "INVITE")
        leg.sendFinal(486)
        response = stack.lastResponse()
        self.assertEqual(response.status, 486)
        self.assertEqual(response.toAddr.tag, leg.localTag)


class RFC5118Tests(TortureMixin, SynchronousTestCase):
    """RFC 5118 (IPv6) messages through the real stack."""

    corpus = "rfc5118"
    table = RFC5118


RFC4475Tests.makeTests()
RFC5118Tests.makeTests()
