"""
Tests for the fast paths of the SIP stack (docs/performance.rst, "Fast
paths"): each gives what the slow path it skips would give.
"""

import errno

from twisted.trial.unittest import SynchronousTestCase

from linkrtc.sip import address
from linkrtc.sip.address import isIPLiteral
from linkrtc.sip.udp import SIPDatagramProtocol


class FakeSocket:
    """Records C{sendto}; raises the errors queued in C{errors} first."""

    def __init__(self):
        self.sent = []
        self.errors = []

    def sendto(self, data, addr):
        if self.errors:
            raise self.errors.pop(0)
        self.sent.append((data, addr))


class FakePort:
    """A UDP port: C{write} (Twisted's checked path) and its C{socket}."""

    def __init__(self, connected=None):
        self.socket = FakeSocket()
        self.written = []
        self._connectedAddr = connected

    def write(self, data, addr):
        self.written.append((data, addr))


class DatagramSendTests(SynchronousTestCase):
    """L{SIPDatagramProtocol.send}: C{Port.write} once per host, then C{sendto}."""

    def setUp(self):
        self.proto = SIPDatagramProtocol(None)
        self.port = FakePort()
        self.proto.makeConnection(self.port)

    def test_firstThroughWrite(self):
        """The first datagram to a host goes through C{Port.write} (its checks), later ones straight to the socket."""
        self.proto.send(b"a", "192.0.2.1", 5060)
        self.proto.send(b"b", "192.0.2.1", 5062)
        self.proto.send(b"c", "192.0.2.2", 5060)
        self.assertEqual(self.port.written, [(b"a", ("192.0.2.1", 5060)),
                                             (b"c", ("192.0.2.2", 5060))])
        self.assertEqual(self.port.socket.sent, [(b"b", ("192.0.2.1", 5062))])

    def test_errorLeftToWrite(self):
        """An C{OSError} of C{sendto} (nothing sent) hands the datagram to C{Port.write}."""
        self.proto.send(b"a", "192.0.2.1", 5060)
        self.port.socket.errors.append(OSError(errno.EINTR, "interrupted"))
        self.proto.send(b"b", "192.0.2.1", 5060)
        self.assertEqual(self.port.written, [(b"a", ("192.0.2.1", 5060)),
                                             (b"b", ("192.0.2.1", 5060))])
        self.assertEqual(self.port.socket.sent, [])

    def test_writeErrorRaised(self):
        """A host whose C{Port.write} raised (a name, a wrong family) is not remembered."""
        def refuse(data, addr):
            raise ValueError("not an IP address")

        self.port.write = refuse
        self.assertRaises(ValueError, self.proto.send, b"a", "example.com", 5060)
        self.assertNotIn("example.com", self.proto._checked)

    def test_connectedNotRemembered(self):
        """A connected port always goes through C{Port.write}."""
        proto = SIPDatagramProtocol(None)
        port = FakePort(connected=("192.0.2.1", 5060))
        proto.makeConnection(port)
        proto.send(b"a", "192.0.2.1", 5060)
        proto.send(b"b", "192.0.2.1", 5060)
        self.assertEqual(len(port.written), 2)
        self.assertEqual(port.socket.sent, [])

    def test_bounded(self):
        """At most C{MAX_CHECKED} hosts are remembered."""
        self.proto.MAX_CHECKED = 3
        for i in range(5):
            self.proto.send(b"a", "192.0.2.%d" % (i,), 5060)
        self.assertLessEqual(len(self.proto._checked), 3)


class IPLiteralTests(SynchronousTestCase):
    """L{isIPLiteral}: Twisted's answer, remembered."""

    def test_answers(self):
        for host, expected in (("192.0.2.1", True), ("::1", True), ("2001:db8::1", True),
                               ("example.com", False), ("192.0.2.300", False),
                               ("[::1]", False)):
            self.assertEqual(isIPLiteral(host), expected, host)
            self.assertEqual(isIPLiteral(host), expected, host)

    def test_bounded(self):
        self.patch(address, "_IP_LITERALS", {})
        for i in range(5000):
            isIPLiteral("host%d.example.com" % (i,))
        self.assertLessEqual(len(address._IP_LITERALS), 4096)
