"""Tests for L{linkrtc.signalling.guard}."""

from twisted.internet.address import IPv4Address, IPv6Address, UNIXAddress
from twisted.internet.task import Clock
from twisted.trial.unittest import SynchronousTestCase

from linkrtc.signalling.guard import (
    SourceGuard,
    isLoopbackAddress,
    isLoopbackHost,
    normaliseOrigin,
    originAllowed,
    sourceOf,
)


class AddressTests(SynchronousTestCase):
    def test_sourceOf(self):
        self.assertEqual(sourceOf(IPv4Address("TCP", "10.0.0.1", 1)), "10.0.0.1")
        self.assertEqual(sourceOf(IPv6Address("TCP", "::ffff:127.0.0.1", 1)), "127.0.0.1")
        self.assertEqual(sourceOf(IPv6Address("TCP", "::1", 1)), "::1")
        self.assertEqual(sourceOf(UNIXAddress(b"/tmp/s")), "unix")

    def test_loopback(self):
        self.assertTrue(isLoopbackAddress("127.0.0.2"))
        self.assertTrue(isLoopbackAddress("::1"))
        self.assertFalse(isLoopbackAddress("10.0.0.1"))
        self.assertFalse(isLoopbackAddress("unix"))

    def test_loopbackHost(self):
        for host in ("localhost", "localhost:8080", "127.0.0.1:8080", "[::1]:8080",
                     "app.localhost", "LOCALHOST."):
            self.assertTrue(isLoopbackHost(host), host)
        for host in (None, "", "evil.example:8080", "10.0.0.1", "127.0.0.1.evil.example",
                     "localhost.evil.example", "[::1"):
            self.assertFalse(isLoopbackHost(host), host)


class OriginTests(SynchronousTestCase):
    def test_normalise(self):
        self.assertEqual(normaliseOrigin("HTTPS://App.Example.com"),
                         ("https", "app.example.com", 443))
        self.assertEqual(normaliseOrigin("http://a:81/"), ("http", "a", 81))
        for bad in ("null", "app.example.com", "ftp://a", "https://a/path", "https://u@a"):
            self.assertRaises(ValueError, normaliseOrigin, bad)

    def test_allowed(self):
        self.assertTrue(originAllowed("http://gw:8080", "gw:8080"))
        self.assertTrue(originAllowed("https://gw", "gw:443"))
        self.assertFalse(originAllowed("https://gw", "gw:8443"))
        self.assertFalse(originAllowed("https://evil.example", "gw"))
        self.assertFalse(originAllowed("https://gw", None))
        self.assertFalse(originAllowed("https://gw", "[bad"))
        self.assertTrue(originAllowed("https://app", "gw", {("https", "app", 443)}))


class SourceGuardTests(SynchronousTestCase):
    def test_counts(self):
        guard = SourceGuard(Clock(), maxConnections=1)
        guard.opened("a")
        self.assertFalse(guard.tooMany("a"))
        guard.opened("a")
        self.assertTrue(guard.tooMany("a"))
        guard.closed("a")
        guard.closed("a")
        self.assertEqual(guard.connections("a"), 0)
        guard.closed("a")
        self.assertEqual(guard.connections("a"), 0)

    def test_lockout(self):
        clock = Clock()
        guard = SourceGuard(clock, failureLimit=3, failureWindow=10, lockout=5)
        self.assertFalse(guard.failed("a"))
        self.assertFalse(guard.failed("a"))
        self.assertTrue(guard.failed("a"))
        self.assertTrue(guard.lockedOut("a"))
        self.assertFalse(guard.lockedOut("b"))
        clock.advance(5)
        self.assertFalse(guard.lockedOut("a"))
        self.assertFalse(guard.failed("a"))

    def test_sweep(self):
        clock = Clock()
        guard = SourceGuard(clock, failureLimit=2, failureWindow=10, lockout=5)
        guard.SWEEP_AT = 3
        for i in range(5):
            guard.failed(f"s{i}")
        clock.advance(11)
        guard.failed("new")
        self.assertEqual(list(guard._failures), ["new"])
