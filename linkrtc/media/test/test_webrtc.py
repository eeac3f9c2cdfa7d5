"""
Tests for L{linkrtc.media.webrtc}: which host addresses ICE offers
(FIELD-NOTES "Loopback-only ICE").
"""

import aioice.ice
from twisted.trial.unittest import SkipTest, SynchronousTestCase, TestCase

from linkrtc.media.test.peers import SineTrack
from linkrtc.media.webrtc import LOOPBACK, WebRTCLeg, hostAddresses, loopOf


class HostAddressesTests(SynchronousTestCase):
    """L{hostAddresses} chooses what one ICE agent gathers on."""

    def test_configured(self):
        """C{--ice-address} wins over what the interfaces have."""
        self.assertEqual(hostAddresses(("192.0.2.7",), ["198.51.100.1"]), ["192.0.2.7"])
        self.assertEqual(hostAddresses(["127.0.0.1"], []), ["127.0.0.1"])

    def test_found(self):
        """Without C{--ice-address}, aioice's addresses (no loopback added)."""
        self.assertEqual(hostAddresses((), ["192.0.2.2", "fd00::2"]), ["192.0.2.2", "fd00::2"])
        self.assertEqual(hostAddresses(None, ["192.0.2.2"]), ["192.0.2.2"])

    def test_loopbackOnly(self):
        """
        Nothing configured and no address but loopback (aioice found
        none): 127.0.0.1 by itself, not an offer without candidates.
        """
        self.assertEqual(hostAddresses((), []), [LOOPBACK])
        self.assertEqual(LOOPBACK, "127.0.0.1")


class LoopbackOfferTests(TestCase):
    """A real aiortc offer on a machine whose only address is loopback."""

    timeout = 20

    def setUp(self):
        from twisted.internet import reactor

        if not hasattr(reactor, "_asyncioEventloop"):
            raise SkipTest("needs --reactor=asyncio")
        self.reactor = reactor
        self.loop = loopOf(reactor)

    async def offer(self, iceAddresses):
        leg = WebRTCLeg(self.reactor, SineTrack(440), ["PCMU"], iceAddresses=iceAddresses)
        try:
            sdp = await leg.createOffer()
        finally:
            await leg.close()
        return [line for line in sdp.splitlines() if line.startswith("a=candidate:")]

    async def test_loopbackOnly(self):
        """aioice finds no address (only C{lo} is up): the offer has a 127.0.0.1 candidate."""
        self.patch(aioice.ice, "get_host_addresses", lambda use_ipv4=True, use_ipv6=True: [])
        candidates = await self.offer(None)
        self.assertTrue(candidates)
        for line in candidates:
            self.assertIn(" 127.0.0.1 ", line)

    async def test_configuredAddress(self):
        """C{iceAddresses} is used as given, whatever the interfaces have."""
        self.patch(aioice.ice, "get_host_addresses",
                   lambda use_ipv4=True, use_ipv6=True: ["203.0.113.9"])
        candidates = await self.offer(["127.0.0.1"])
        self.assertTrue(candidates)
        for line in candidates:
            self.assertIn(" 127.0.0.1 ", line)
