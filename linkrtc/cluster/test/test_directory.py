"""
Tests for L{linkrtc.cluster.directory} and L{linkrtc.cluster.service}.
"""

from twisted.application.service import MultiService
from twisted.internet import defer
from twisted.internet.task import Clock
from twisted.trial.unittest import SynchronousTestCase
from zope.interface import implementer
from zope.interface.verify import verifyObject

from linkrtc.cluster.directory import (
    ClusterDirectory,
    ClusterDirectoryService,
    defaultNodeId,
    nodeAddressFor,
)
from linkrtc.cluster.redirect import ClusterRouter
from linkrtc.cluster.service import makeClusterDirectory
from linkrtc.config import ConfigError, LinkRTCConfig
from linkrtc.interfaces import IClusterDirectory, ILocationStore
from linkrtc.testing import FakeClientConnection

START = 1700000000.0


@implementer(ILocationStore)
class MemoryLocationStore:
    """
    An L{ILocationStore} in memory, with Redis's semantics: entries scored
    with their expiry; C{failing} makes every operation fail.
    """

    def __init__(self):
        self.clients = {}
        self.nodes = {}
        self.calls = []
        self.failing = False
        self.closed = False

    def _result(self, value=None):
        if self.failing:
            return defer.fail(ConnectionError("redis unreachable"))
        return defer.succeed(value)

    def publish(self, nodeId, address, names, expiresAt, ttl):
        self.calls.append(("publish", nodeId, tuple(names), expiresAt, ttl))
        if not self.failing:
            self.nodes[nodeId] = address
            for name in names:
                self.clients.setdefault(name, {})[nodeId] = expiresAt
        return self._result()

    def withdraw(self, nodeId, name):
        self.calls.append(("withdraw", nodeId, name))
        if not self.failing:
            self.clients.get(name, {}).pop(nodeId, None)
        return self._result()

    def locate(self, name, now):
        live = sorted(((e, n) for n, e in self.clients.get(name, {}).items() if e > now),
                      reverse=True)
        return self._result([(n, self.nodes[n]) for e, n in live if n in self.nodes])

    def close(self):
        self.closed = True
        return self._result()


class NodeAddressTests(SynchronousTestCase):
    def test_interface(self):
        self.assertEqual(nodeAddressFor(["udp:5081:interface=127.0.0.1"]), "127.0.0.1:5081")

    def test_firstFixedUDPOrTCP(self):
        self.assertEqual(nodeAddressFor(["tls:5061:privateKey=k", "udp:0:interface=10.0.0.1",
                                         "tcp:port=5090:interface=10.0.0.2"]), "10.0.0.2:5090")

    def test_publicAddressWins(self):
        self.assertEqual(nodeAddressFor(["udp:5060:interface=0.0.0.0"], "192.0.2.7"),
                         "192.0.2.7:5060")

    def test_ipv6(self):
        self.assertEqual(nodeAddressFor(["udp:5060:interface=fd00\\:\\:1"], "fd00::1"),
                         "[fd00::1]:5060")

    def test_none(self):
        self.assertIsNone(nodeAddressFor(["udp:0:interface=127.0.0.1"]))

    def test_defaultNodeId(self):
        import os

        self.assertTrue(defaultNodeId().endswith(f"-{os.getpid()}"))


class ClusterDirectoryTests(SynchronousTestCase):
    def setUp(self):
        self.clock = Clock()
        self.clock.advance(START)
        self.store = MemoryLocationStore()
        self.directory = ClusterDirectory(self.store, "a", "10.0.0.1:5060", self.clock, ttl=30)

    def test_interface(self):
        self.assertTrue(verifyObject(IClusterDirectory, self.directory))
        self.assertTrue(verifyObject(ILocationStore, self.store))

    def test_firstConnectionPublishes(self):
        """A name's first connection publishes it with an expiry TTL seconds away; a second does not."""
        self.directory.register("alice", FakeClientConnection("alice"))
        self.directory.register("alice", FakeClientConnection("alice"))
        self.assertEqual(self.store.calls, [("publish", "a", ("alice",), START + 30, 30.0)])
        self.assertEqual(self.directory.connectionsFor("alice").__len__(), 2)

    def test_lastConnectionWithdraws(self):
        one, two = FakeClientConnection("alice"), FakeClientConnection("alice")
        self.directory.register("alice", one)
        self.directory.register("alice", two)
        self.directory.unregister(one)
        self.assertEqual(len(self.store.calls), 1)
        self.assertEqual(self.directory.unregister(two), "alice")
        self.assertEqual(self.store.calls[-1], ("withdraw", "a", "alice"))
        self.assertEqual(self.store.clients["alice"], {})

    def test_renameMoves(self):
        """A connection registering under another name withdraws the old one and publishes the new."""
        conn = FakeClientConnection("alice")
        self.directory.register("alice", conn)
        self.directory.register("bob", conn)
        self.assertEqual(self.store.calls[1:], [("publish", "a", ("bob",), START + 30, 30.0),
                                                ("withdraw", "a", "alice")])

    def test_refreshEveryThirdOfTTL(self):
        self.directory.register("alice", FakeClientConnection("alice"))
        self.directory.start()
        self.assertEqual(self.store.calls[-1], ("publish", "a", ("alice",), START + 30, 30.0))
        self.clock.advance(10)
        self.assertEqual(self.store.calls[-1], ("publish", "a", ("alice",), START + 40, 30.0))
        self.assertEqual(len(self.store.calls), 3)

    def test_refreshWithNoNamesPublishesTheNode(self):
        self.directory.start()
        self.assertEqual(self.store.calls, [("publish", "a", (), START + 30, 30.0)])
        self.assertEqual(self.store.nodes, {"a": "10.0.0.1:5060"})

    def test_stopWithdrawsAndCloses(self):
        self.directory.register("alice", FakeClientConnection("alice"))
        self.directory.start()
        self.successResultOf(self.directory.stop())
        self.assertEqual(self.store.calls[-1], ("withdraw", "a", "alice"))
        self.assertTrue(self.store.closed)
        before = len(self.store.calls)
        self.clock.advance(30)
        self.assertEqual(len(self.store.calls), before)

    def test_storeFailureIsLoggedNotRaised(self):
        """Redis unreachable: registering still works locally; nothing raises."""
        self.store.failing = True
        conn = FakeClientConnection("alice")
        self.directory.register("alice", conn)
        self.assertEqual(self.directory.connectionsFor("alice"), [conn])
        self.directory.unregister(conn)
        self.successResultOf(self.directory.refresh())
        self.successResultOf(self.directory.stop())

    def test_locateOtherNode(self):
        other = ClusterDirectory(self.store, "b", "10.0.0.2:5060", self.clock, ttl=30)
        other.register("bob", FakeClientConnection("bob"))
        self.assertEqual(self.successResultOf(self.directory.locate("bob")), "10.0.0.2:5060")

    def test_locateSkipsThisNode(self):
        self.directory.register("alice", FakeClientConnection("alice"))
        self.assertIsNone(self.successResultOf(self.directory.locate("alice")))

    def test_locateExpired(self):
        """A dead node's entry (not refreshed for the TTL) is not found."""
        other = ClusterDirectory(self.store, "b", "10.0.0.2:5060", self.clock, ttl=30)
        other.register("bob", FakeClientConnection("bob"))
        self.clock.advance(30)
        self.assertIsNone(self.successResultOf(self.directory.locate("bob")))

    def test_locateFailureIsNone(self):
        self.store.failing = True
        self.assertIsNone(self.successResultOf(self.directory.locate("bob")))


class ServiceTests(SynchronousTestCase):
    def test_serviceStartsAndStops(self):
        clock = Clock()
        store = MemoryLocationStore()
        directory = ClusterDirectory(store, "a", "10.0.0.1:5060", clock, ttl=9)
        service = ClusterDirectoryService(directory)
        service.startService()
        self.assertEqual(len(store.calls), 1)
        clock.advance(3)
        self.assertEqual(len(store.calls), 2)
        self.successResultOf(service.stopService())
        self.assertTrue(store.closed)

    def test_makeClusterDirectory(self):
        config = LinkRTCConfig(redis="redis://127.0.0.1:6379/0", nodeId="n1",
                               sip=("udp:5081:interface=127.0.0.1",), directoryTTL=12)
        parent = MultiService()
        directory, router = makeClusterDirectory(config, Clock(), None, parent,
                                                 store=MemoryLocationStore())
        self.assertEqual((directory.nodeId, directory.address, directory.ttl),
                         ("n1", "127.0.0.1:5081", 12.0))
        self.assertIsInstance(router, ClusterRouter)
        self.assertIs(parent.getServiceNamed("cluster").directory, directory)

    def test_makeClusterDirectoryRedisStore(self):
        """Without a store given, a Redis one on C{config.redis} (no connection yet)."""
        config = LinkRTCConfig(redis="redis://127.0.0.1:1/0", nodeAddress="192.0.2.1:5070")
        directory, _ = makeClusterDirectory(config, Clock(), None, MultiService())
        self.assertEqual(directory.store.url, "redis://127.0.0.1:1/0")
        self.assertEqual(directory.address, "192.0.2.1:5070")

    def test_noAddress(self):
        config = LinkRTCConfig(redis="redis://127.0.0.1:6379/0", sip=("udp:0",))
        self.assertRaises(ConfigError, makeClusterDirectory, config, Clock(), None,
                          MultiService(), store=MemoryLocationStore())
