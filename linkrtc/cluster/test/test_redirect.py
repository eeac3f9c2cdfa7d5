"""
Tests for L{linkrtc.cluster.redirect}: INVITEs for another node's client
are answered 302 to that node; the rest are this node's calls.
"""

from twisted.internet import defer
from twisted.internet.task import Clock
from twisted.trial.unittest import SynchronousTestCase

from linkrtc.call.manager import buildCallManager
from linkrtc.call.passthrough import PassthroughMediaFactory
from linkrtc.cluster.directory import ClusterDirectory
from linkrtc.cluster.redirect import ClusterRouter
from linkrtc.cluster.test.test_directory import START, MemoryLocationStore
from linkrtc.testing import (
    FakeApplication,
    FakeClientConnection,
    FakeRequest,
    FakeServerLeg,
)


def invite(user):
    return FakeServerLeg(FakeRequest("INVITE", uri=f"sip:{user}@10.0.0.1"))


class RouterTests(SynchronousTestCase):
    def setUp(self):
        self.clock = Clock()
        self.clock.advance(START)
        self.store = MemoryLocationStore()
        self.a = ClusterDirectory(self.store, "a", "10.0.0.1:5060", self.clock)
        self.b = ClusterDirectory(self.store, "b", "10.0.0.2:5070", self.clock)
        self.router = ClusterRouter(self.a)
        self.local = []

    def test_localClientNotTaken(self):
        self.a.register("alice", FakeClientConnection("alice"))
        self.assertFalse(self.router.takes(invite("alice"), self.local.append))
        self.assertEqual(self.store.calls[1:], [])

    def test_notAClientName(self):
        """No user part (or one that is no client name): this node's, without a lookup."""
        self.assertFalse(self.router.takes(invite("bad name!"), self.local.append))
        leg = FakeServerLeg(FakeRequest("INVITE", uri="sip:10.0.0.1"))
        self.assertFalse(self.router.takes(leg, self.local.append))

    def test_otherNodeRedirected(self):
        """Bob is on node b: 302 with Contact sip:bob@NODE-B; nothing local."""
        self.b.register("bob", FakeClientConnection("bob"))
        leg = invite("bob")
        self.assertTrue(self.router.takes(leg, self.local.append))
        self.assertEqual(leg.finalStatus, 302)
        self.assertEqual(leg.finals[0].headers, (("Contact", "<sip:bob@10.0.0.2:5070>"),))
        self.assertEqual(self.local, [])

    def test_nowhereIsLocal(self):
        """Nobody holds the name: the call is this node's (which answers 480)."""
        leg = invite("carol")
        self.assertTrue(self.router.takes(leg, self.local.append))
        self.assertEqual(self.local, [leg])
        self.assertEqual(leg.finals, [])

    def test_deadNodeExpired(self):
        """Node b stopped refreshing a TTL ago: its client is nowhere."""
        self.b.register("bob", FakeClientConnection("bob"))
        self.clock.advance(self.b.ttl)
        leg = invite("bob")
        self.router.takes(leg, self.local.append)
        self.assertEqual(self.local, [leg])

    def test_storeDownIsLocal(self):
        self.store.failing = True
        leg = invite("bob")
        self.router.takes(leg, self.local.append)
        self.assertEqual(self.local, [leg])

    def test_cancelledDuringLookup(self):
        """A CANCEL answered (487) while the directory is asked: nothing more is sent."""
        pending = defer.Deferred()
        self.a.store.locate = lambda name, now: pending
        leg = invite("bob")
        self.assertTrue(self.router.takes(leg, self.local.append))
        leg.sendFinal(487)
        leg.finalSent = True  # as InviteServerLeg.cancelReceived leaves it
        pending.callback([("b", "10.0.0.2:5070")])
        self.assertEqual([f.status for f in leg.finals], [487])
        self.assertEqual(self.local, [])

    def test_connectedDuringLookup(self):
        """The client registered here while the directory answered: the call is local."""
        pending = defer.Deferred()
        self.a.store.locate = lambda name, now: pending
        leg = invite("bob")
        self.router.takes(leg, self.local.append)
        self.a.register("bob", FakeClientConnection("bob"))
        pending.callback([("b", "10.0.0.2:5070")])
        self.assertEqual(self.local, [leg])


class ManagerTests(SynchronousTestCase):
    def setUp(self):
        self.clock = Clock()
        self.clock.advance(START)
        self.store = MemoryLocationStore()
        self.directory = ClusterDirectory(self.store, "a", "10.0.0.1:5060", self.clock)
        self.manager = buildCallManager(self.clock, self.directory, FakeApplication(),
                                        PassthroughMediaFactory(), cluster=ClusterRouter(
                                            self.directory))

    def test_redirectedMakesNoCall(self):
        ClusterDirectory(self.store, "b", "10.0.0.2:5070", self.clock).register(
            "bob", FakeClientConnection("bob"))
        leg = invite("bob")
        self.assertIsNone(self.manager.inviteReceived(leg))
        self.assertEqual(leg.finalStatus, 302)
        self.assertEqual(self.manager.calls, {})

    def test_localClientMakesCall(self):
        self.directory.register("alice", FakeClientConnection("alice"))
        leg = invite("alice")
        call = self.manager.inviteReceived(leg)
        self.assertIs(self.manager.calls[call.id], call)
        self.assertIs(leg.listener, call)

    def test_unknownClientMakesCallAfterLookup(self):
        leg = invite("carol")
        self.assertIsNone(self.manager.inviteReceived(leg))
        self.assertEqual(len(self.manager.calls), 1)
        self.assertIsNotNone(leg.listener)

    def test_noClusterByDefault(self):
        """Without --redis the manager has no router (the single-process default)."""
        from linkrtc.testing import FakeClientDirectory

        manager = buildCallManager(self.clock, FakeClientDirectory(), FakeApplication(),
                                   PassthroughMediaFactory())
        self.assertIsNone(manager.cluster)
        self.assertIsNotNone(manager.inviteReceived(invite("alice")))


class MetricsTests(SynchronousTestCase):
    def value(self, name, **labels):
        from linkrtc.metrics import REGISTRY

        return REGISTRY.get_sample_value(name, labels) or 0.0

    def test_counted(self):
        """Redirected and local INVITEs, and failed lookups, are counted."""
        clock = Clock()
        clock.advance(START)
        store = MemoryLocationStore()
        a = ClusterDirectory(store, "a", "10.0.0.1:5060", clock)
        ClusterDirectory(store, "b", "10.0.0.2:5070", clock).register(
            "bob", FakeClientConnection("bob"))
        router = ClusterRouter(a)
        before = [self.value("linkrtc_cluster_invites_total", result=r)
                  for r in ("redirected", "local")]
        failedBefore = self.value("linkrtc_cluster_store_errors_total", operation="locate")
        router.takes(invite("bob"), lambda leg: None)
        router.takes(invite("carol"), lambda leg: None)
        store.failing = True
        router.takes(invite("bob"), lambda leg: None)
        self.assertEqual([self.value("linkrtc_cluster_invites_total", result=r) - b
                          for r, b in zip(("redirected", "local"), before)], [1, 2])
        self.assertEqual(self.value("linkrtc_cluster_store_errors_total", operation="locate")
                         - failedBefore, 1)
