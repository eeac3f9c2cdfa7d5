"""
Tests for L{linkrtc.sip.endpoints}.
"""

import socket

from twisted.internet.testing import EventLoggingObserver, MemoryReactorClock
from twisted.logger import globalLogPublisher
from twisted.python.modules import getModule
from twisted.trial.unittest import SynchronousTestCase

from linkrtc.sip import endpoints
from linkrtc.sip.endpoints import (
    UDPServerEndpoint,
    parseUDPDescription,
    setSocketBuffers,
    sipServerFromString,
    splitDescription,
)


class SplitDescriptionTests(SynchronousTestCase):
    """L{splitDescription} follows Twisted's endpoint string syntax."""

    def test_positionalAndKeywords(self):
        """Colons separate arguments; C{key=value} makes a keyword."""
        self.assertEqual(
            splitDescription("udp:5060:interface=127.0.0.1"),
            (["udp", "5060"], {"interface": "127.0.0.1"}),
        )

    def test_escapedColons(self):
        """A backslash escapes the next character (IPv6 addresses)."""
        self.assertEqual(
            splitDescription("udp:0:interface=\\:\\:1"), (["udp", "0"], {"interface": "::1"})
        )

    def test_equalsInValue(self):
        """Only the first C{=} of an argument separates key and value."""
        self.assertEqual(splitDescription("x:a=b=c"), (["x"], {"a": "b=c"}))

    def test_trailingBackslash(self):
        """A trailing backslash is a L{ValueError}."""
        self.assertRaises(ValueError, splitDescription, "udp:5060\\")

    def test_empty(self):
        """An empty description is a L{ValueError}."""
        self.assertRaises(ValueError, splitDescription, "")


class ParseUDPDescriptionTests(SynchronousTestCase):
    """L{parseUDPDescription} parses C{udp:} strings."""

    def test_port(self):
        """C{udp:5060} is port 5060 on every IPv4 interface."""
        self.assertEqual(parseUDPDescription("udp:5060"), (5060, ""))

    def test_interface(self):
        """C{udp:0:interface=127.0.0.1} binds an ephemeral loopback port."""
        self.assertEqual(parseUDPDescription("udp:0:interface=127.0.0.1"), (0, "127.0.0.1"))

    def test_portKeyword(self):
        """The port may be given as C{port=}."""
        self.assertEqual(parseUDPDescription("udp:port=5070"), (5070, ""))

    def test_caseInsensitiveType(self):
        """The type is case-insensitive."""
        self.assertEqual(parseUDPDescription("UDP:5060"), (5060, ""))

    def test_badStrings(self):
        """Malformed strings raise L{ValueError}."""
        for bad in [
            "udp",
            "udp:",
            "udp:abc",
            "udp:-1",
            "udp:65536",
            "udp:5060:5061",
            "udp:5060:port=5061",
            "udp:5060:bogus=1",
            "tcp:5060",
        ]:
            self.assertRaises(ValueError, parseUDPDescription, bad)


class FakeUDPReactor(MemoryReactorClock):
    """A L{MemoryReactorClock} that also records C{listenUDP}."""

    def __init__(self):
        super().__init__()
        self.udpPorts = []

    def listenUDP(self, port, protocol, interface="", maxPacketSize=8192):
        self.udpPorts.append((port, protocol, interface, maxPacketSize))
        return "the port"


class SIPServerFromStringTests(SynchronousTestCase):
    """L{sipServerFromString} maps endpoint strings to SIP transports."""

    def test_udp(self):
        """C{udp:} gives a L{UDPServerEndpoint} that calls C{listenUDP}."""
        reactor = FakeUDPReactor()
        transport, endpoint = sipServerFromString(reactor, "udp:0:interface=127.0.0.1")
        self.assertEqual(transport, "UDP")
        self.assertEqual(endpoint, UDPServerEndpoint(reactor, 0, "127.0.0.1"))
        proto = object()
        d = endpoint.listen(proto)
        self.assertEqual(self.successResultOf(d), "the port")
        self.assertEqual(reactor.udpPorts, [(0, proto, "127.0.0.1", 65535)])

    def test_udpListenFailure(self):
        """A failing C{listenUDP} gives a failed L{Deferred}, not an exception."""
        from twisted.internet.error import CannotListenError

        class Busy(FakeUDPReactor):
            def listenUDP(self, *a, **kw):
                raise CannotListenError("", 5060, OSError("busy"))

        d = UDPServerEndpoint(Busy(), 5060).listen(object())
        self.failureResultOf(d, CannotListenError)

    def test_tcp(self):
        """C{tcp:} uses Twisted's parser and listens with C{listenTCP}."""
        reactor = MemoryReactorClock()
        transport, endpoint = sipServerFromString(reactor, "tcp:5060:interface=127.0.0.1")
        self.assertEqual(transport, "TCP")
        endpoint.listen(object())
        self.assertEqual(reactor.tcpServers[0][0], 5060)
        self.assertEqual(reactor.tcpServers[0][3], "127.0.0.1")

    def test_tlsAlias(self):
        """C{tls:} is an alias of C{ssl:} and means transport TLS."""
        reactor = MemoryReactorClock()
        path = getModule("twisted.test").filePath.sibling("server.pem").path
        for prefix in ("ssl", "tls"):
            transport, endpoint = sipServerFromString(
                reactor, f"{prefix}:5061:privateKey={path}:certKey={path}"
            )
            self.assertEqual(transport, "TLS")
            endpoint.listen(object())
        self.assertEqual([s[0] for s in reactor.sslServers], [5061, 5061])

    def test_badStrings(self):
        """Unknown types, missing or bad ports raise L{ValueError}."""
        reactor = MemoryReactorClock()
        for bad in ["unix:/tmp/x", "ws:80", "tcp", "tcp:abc", "tcp:70000", "udp:x", "", "sctp:5060"]:
            self.assertRaises(ValueError, sipServerFromString, reactor, bad)


class FakeSocket:
    """
    A socket recording C{setsockopt}; refuses the C{*FORCE} options unless
    C{privileged}, and reports twice the size set (as Linux does).
    """

    def __init__(self, privileged=False, refuseAll=False):
        self.privileged = privileged
        self.refuseAll = refuseAll
        self.calls = []
        self.values = {socket.SO_RCVBUF: 212992, socket.SO_SNDBUF: 212992}

    def setsockopt(self, level, option, value):
        self.calls.append((level, option, value))
        if self.refuseAll:
            raise OSError("no")
        if option in (endpoints.SO_RCVBUFFORCE, endpoints.SO_SNDBUFFORCE):
            if not self.privileged:
                raise PermissionError("not root")
            plain = (
                socket.SO_RCVBUF if option == endpoints.SO_RCVBUFFORCE else socket.SO_SNDBUF
            )
            self.values[plain] = value * 2
        else:
            self.values[option] = min(value, 425984) * 2

    def getsockopt(self, level, option):
        return self.values[option]


class SetSocketBuffersTests(SynchronousTestCase):
    """L{setSocketBuffers} asks for 4 MB and reports what was granted."""

    def setUp(self):
        if endpoints.SO_RCVBUFFORCE is None:
            raise self.skipTest("no SO_RCVBUFFORCE on this platform")

    def test_privileged(self):
        """With privilege the C{*FORCE} options set the full size."""
        sock = FakeSocket(privileged=True)
        size = 4 * 1024 * 1024
        self.assertEqual(setSocketBuffers(sock), (2 * size, 2 * size))
        self.assertEqual(
            [c[1] for c in sock.calls], [endpoints.SO_RCVBUFFORCE, endpoints.SO_SNDBUFFORCE]
        )

    def test_unprivileged(self):
        """Without privilege the plain options are used, capped by the kernel."""
        sock = FakeSocket()
        self.assertEqual(setSocketBuffers(sock), (851968, 851968))
        self.assertEqual(
            [c[1] for c in sock.calls],
            [endpoints.SO_RCVBUFFORCE, socket.SO_RCVBUF, endpoints.SO_SNDBUFFORCE, socket.SO_SNDBUF],
        )
        self.assertEqual({c[2] for c in sock.calls}, {4 * 1024 * 1024})

    def test_refusedNeverRaises(self):
        """When every option is refused the current sizes are reported."""
        sock = FakeSocket(refuseAll=True)
        self.assertEqual(setSocketBuffers(sock, 1024), (212992, 212992))

    def test_logsGranted(self):
        """The granted size is logged as a structured event."""
        observer = EventLoggingObserver.createWithCleanup(self, globalLogPublisher)
        setSocketBuffers(FakeSocket(privileged=True), 1000)
        granted = [e["granted"] for e in observer if "granted" in e]
        self.assertEqual(granted, [2000, 2000])

    def test_realSocket(self):
        """On a real UDP socket it grants at least the default size."""
        sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        self.addCleanup(sock.close)
        receive, send = setSocketBuffers(sock)
        self.assertGreater(receive, 0)
        self.assertGreater(send, 0)
