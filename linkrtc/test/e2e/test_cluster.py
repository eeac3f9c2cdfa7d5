"""
Scale-out end to end (docs/scaling.rst): Redis, Kamailio
(etc/kamailio/kamailio.cfg) and two LinkRTC nodes, each a real process on
127.0.0.1 with its own ports (no network namespace is needed: nothing
here uses a fixed port nor ICE). SIPp calls through Kamailio reach a
client on either node whichever node Kamailio picks (the other node
answers 302 and Kamailio follows it); then node B is killed (SIGKILL) and
new calls go to node A while A's live call goes on.

The test logs what happened (C{cluster e2e:} lines in trial's test.log):
which node bridged which calls, how many were redirected, what the calls
after the kill got.
"""

import os
import signal
import threading
import time

from twisted.internet.defer import ensureDeferred, gatherResults
from twisted.logger import Logger
from twisted.trial.unittest import SynchronousTestCase, TestCase

from linkrtc.test.e2e.cluster_harness import KamailioProcess, RedisProcess
from linkrtc.test.e2e.harness import (
    SCENARIOS,
    LinkRTCProcess,
    WSClient,
    freePort,
    readCDRs,
    requirePeer,
    runSIPp,
)

#: Seconds a client's entry lives in Redis in these tests (--directory-ttl).
TTL = 3

log = Logger()


class ClusterTests(SynchronousTestCase):
    def setUp(self):
        requirePeer("sipp")
        self.redis = RedisProcess().start()
        self.addCleanup(self.redis.stop)
        self.cdrs = {}
        self.nodes = {}
        for name in ("a", "b"):
            self.cdrs[name] = os.path.abspath(self.mktemp())
            node = LinkRTCProcess(
                "--media", "passthrough", "--cdr", self.cdrs[name], "--redis", self.redis.url,
                "--node-id", name, "--directory-ttl", str(TTL), "--max-ringing-per-client", "0",
            ).start()
            self.addCleanup(node.stop)
            self.nodes[name] = node
        self.kamailio = KamailioProcess([self.nodes["a"], self.nodes["b"]],
                                        probeInterval=1).start()
        self.addCleanup(self.kamailio.stop)

    def client(self, node, name):
        client = WSClient(self.nodes[node], name, "--action", "answer", "--lifetime", "120")
        self.addCleanup(client.stop)
        client.waitFor("registered")
        return client

    def logs(self):
        return "\n".join([f"kamailio log:\n{self.kamailio.logText()}"] + [
            f"node {n} log:\n{p.logText()[-3000:]}" for n, p in self.nodes.items()])

    def sippArgs(self, scenario, service, *extra, calls=1):
        return [f"127.0.0.1:{self.kamailio.port}", "-sf", scenario, "-s", service,
                "-i", "127.0.0.1", "-p", str(freePort()), "-mi", "127.0.0.1",
                "-mp", str(freePort()), "-m", str(calls), "-r", "5", *extra]

    def sipp(self, scenario, service, *extra, calls=1):
        result = runSIPp(*self.sippArgs(scenario, service, *extra, calls=calls), timeout=60)
        self.assertEqual(
            result.returncode, 0,
            f"sipp {scenario} to {service} failed ({result.returncode}):\n"
            f"{result.stdout[-3000:]}\n{result.stderr[-2000:]}\n{self.logs()}",
        )

    def failing(self, service, status, calls=1):
        with open(os.path.join(SCENARIOS, "uac_fail.xml")) as f:
            text = f.read().replace("[expected]", str(status))
        path = os.path.abspath(self.mktemp() + ".xml")
        with open(path, "w") as f:
            f.write(text)
        self.sipp(path, service, calls=calls)

    def report(self, phase):
        """Log, for the reader of test.log, the calls that ended on each node and its redirects."""
        for name, node in self.nodes.items():
            ends = readCDRs(self.cdrs[name], 0, 0)
            causes = {}
            for cdr in ends:
                key = f"{cdr.get('client')} {cdr.get('cause')}"
                causes[key] = causes.get(key, 0) + 1
            log.info("cluster e2e: {phase}: node {name} ({alive}) had {count} calls end "
                     "(client cause: count) {causes}, and redirected {redirected} INVITEs",
                     phase=phase, name=name, count=len(ends), causes=causes,
                     alive="alive" if node.process.poll() is None else "killed",
                     redirected=node.logText().count("redirected to node"))

    def waitForRedis(self, name, present):
        """Wait until client C{name} is (or is no longer) in Redis."""
        deadline = time.monotonic() + 15
        while time.monotonic() < deadline:
            reply = self.redis.command("EXISTS", f"linkrtc:client:{name}")
            if (reply == ":1") == present:
                return
            time.sleep(0.1)
        self.fail(f"linkrtc:client:{name} {'never came' if present else 'never went'}")

    def waitForKamailio(self, line):
        """Wait until Kamailio's log has C{line}."""
        deadline = time.monotonic() + 20
        while time.monotonic() < deadline:
            if line in self.kamailio.logText(full=True):
                return
            time.sleep(0.1)
        self.fail(f"kamailio never logged {line!r}:\n{self.logs()}")

    def test_callsAcrossNodesThenNodeBDies(self):
        alice = self.client("a", "alice")
        bob = self.client("b", "bob")
        self.waitForRedis("alice", True)
        self.waitForRedis("bob", True)

        # Kamailio alternates the nodes: of 4 calls to each client, 2 enter
        # the other node first and are redirected. Each call is bridged on
        # its client's node.
        self.sipp("uac_call.xml", "alice", "-d", "200", calls=4)
        self.sipp("uac_call.xml", "bob", "-d", "200", calls=4)
        self.assertEqual(len(readCDRs(self.cdrs["a"], 4, 10)), 4)
        self.assertEqual(len(readCDRs(self.cdrs["b"], 4, 10)), 4)
        for node, callee in (("a", "alice"), ("b", "bob")):
            ends = readCDRs(self.cdrs[node], 4, 10)
            self.assertEqual([c["cause"] for c in ends], [200] * 4)
            self.assertEqual({c["client"] for c in ends}, {callee})
            self.assertEqual(len(readCDRs(self.cdrs[node], 4, 10, record="start")), 4)
        self.assertIn("redirected to node", self.nodes["a"].logText() + self.nodes["b"].logText())
        self.assertEqual(len([m for m in alice.messages if m.get("type") == "incoming"]), 4)
        self.assertEqual(len([m for m in bob.messages if m.get("type") == "incoming"]), 4)
        self.report("8 calls, 4 to alice (node a) and 4 to bob (node b)")

        # A long call to alice (node A) is up when node B dies.
        longCall = {}
        args = self.sippArgs("uac_call.xml", "alice", "-d", "12000")

        def run():
            longCall["result"] = runSIPp(*args, timeout=60)

        thread = threading.Thread(target=run)
        thread.start()
        self.addCleanup(thread.join, 70)
        alice.waitFor(lambda m: m.get("type") == "state" and m.get("state") == "confirmed"
                      and len([x for x in alice.messages if x.get("type") == "incoming"]) == 5)

        self.nodes["b"].process.send_signal(signal.SIGKILL)
        self.nodes["b"].process.wait(10)
        # Kamailio's OPTIONS probes find B dead and take it out of rotation ...
        killed = time.monotonic()
        self.waitForKamailio(f"LinkRTC node sip:127.0.0.1:{self.nodes['b'].sipPort} down")
        log.info("cluster e2e: node b killed with a call to alice up on node a; Kamailio "
                 "took b out of rotation after {seconds:.1f} s", seconds=time.monotonic() - killed)
        # ... and B's entries expire from Redis (it no longer refreshes them).
        self.waitForRedis("bob", False)
        before = len(self.kamailio.logText(full=True))
        self.sipp("uac_call.xml", "alice", "-d", "200", calls=4)
        self.failing("bob", 480, calls=2)
        log.info("cluster e2e: after the kill and bob's entry expired from Redis, 4 calls to "
                 "alice were answered on node a, 2 calls to bob (his node dead) got 480 from "
                 "node a, none was sent to node b")
        # No new call was sent to the dead node.
        self.assertNotIn("did not answer", self.kamailio.logText(full=True)[before:])

        thread.join(70)
        result = longCall["result"]
        self.assertEqual(result.returncode, 0,
                         f"the long call failed:\n{result.stdout[-3000:]}\n{self.logs()}")
        ends = readCDRs(self.cdrs["a"], 9, 15)
        answered = [c for c in ends if c["cause"] == 200]
        self.assertEqual(len(answered), 9, ends)
        self.assertEqual(len(readCDRs(self.cdrs["a"], 9, 10, record="start")), 9)
        self.report("the end (the long call to alice, up when b died, ended normally)")
        self.assertIsNone(self.nodes["a"].process.poll())
        self.assertTrue(self.kamailio.process.poll() is None, self.kamailio.logText())


class RedisStoreTests(TestCase):
    """L{linkrtc.cluster.store.RedisLocationStore} against a real redis-server."""

    def setUp(self):
        self.redis = RedisProcess().start()
        self.addCleanup(self.redis.stop)
        from linkrtc.cluster.store import RedisLocationStore

        self.store = RedisLocationStore(self.redis.url)
        self.addCleanup(self.store.close)

    async def _roundTrip(self):
        now = time.time()
        await self.store.publish("a", "127.0.0.1:5081", ["alice", "carol"], now + 30, 30)
        await self.store.publish("b", "127.0.0.1:5082", ["alice"], now + 40, 30)
        self.assertEqual(await self.store.locate("alice", now),
                         [("b", "127.0.0.1:5082"), ("a", "127.0.0.1:5081")])
        # An entry whose expiry is past is not found.
        self.assertEqual(await self.store.locate("alice", now + 35), [("b", "127.0.0.1:5082")])
        await self.store.withdraw("b", "alice")
        self.assertEqual(await self.store.locate("alice", now), [("a", "127.0.0.1:5081")])
        self.assertEqual(await self.store.locate("nobody", now), [])
        ttl = self.redis.command("TTL", "linkrtc:client:carol")
        self.assertTrue(ttl.startswith(":") and 0 < int(ttl[1:]) <= 30, ttl)
        self.assertEqual(self.redis.command("EXISTS", "linkrtc:node:a"), ":1")
        # A node whose address key is gone (expired) is not found.
        self.redis.command("DEL", "linkrtc:node:a")
        self.assertEqual(await self.store.locate("alice", now), [])

    def test_roundTrip(self):
        return ensureDeferred(self._roundTrip())

    async def _burst(self):
        now = time.time()
        await self.store.publish("b", "127.0.0.1:5082", ["bob"], now + 30, 30)
        found = await gatherResults([self.store.locate("bob", now) for _ in range(250)])
        self.assertEqual(found, [[("b", "127.0.0.1:5082")]] * 250)

    def test_burst(self):
        """
        More lookups at once than the pool has connections (a burst of
        INVITEs) wait for a connection: none fails.
        """
        return ensureDeferred(self._burst())
