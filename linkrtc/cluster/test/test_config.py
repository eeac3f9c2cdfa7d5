"""
Tests for the cluster options of L{linkrtc.config} and L{linkrtc.tap}:
C{--redis}, C{--node-id}, C{--node-address}, C{--directory-ttl}.
"""

from twisted.trial.unittest import SynchronousTestCase

from linkrtc.config import ConfigError, LinkRTCConfig, normalise
from linkrtc.tap import Options


class ClusterConfigTests(SynchronousTestCase):
    def test_defaultsAreSingleProcess(self):
        """No Redis by default: the directory stays in-process (zero-config)."""
        config = LinkRTCConfig()
        self.assertIsNone(config.redis)
        self.assertIsNone(config.nodeId)
        self.assertIsNone(config.nodeAddress)
        self.assertEqual(config.directoryTTL, 30.0)

    def test_redisURL(self):
        for url in ("redis://127.0.0.1:6379/0", "rediss://r.example.com", "unix:///run/r.sock"):
            self.assertEqual(normalise("redis", url), ("redis", url))

    def test_badRedisURL(self):
        for url in ("http://x", "127.0.0.1:6379", 6379):
            self.assertRaises(ConfigError, normalise, "redis", url)

    def test_directoryTTL(self):
        self.assertEqual(normalise("directory-ttl", "12"), ("directoryTTL", 12.0))
        self.assertRaises(ConfigError, normalise, "directory-ttl", "0")

    def test_toml(self):
        """The TOML keys go through the same check (the dataclass's __post_init__)."""
        self.assertRaises(ConfigError, LinkRTCConfig, redis="nope")
        self.assertEqual(LinkRTCConfig(nodeId="n1").nodeId, "n1")

    def test_commandLine(self):
        options = Options()
        options.parseOptions(["--redis", "redis://127.0.0.1:6379/1", "--node-id", "a",
                              "--node-address", "10.0.0.1:5060", "--directory-ttl", "9"])
        config = options.config
        self.assertEqual((config.redis, config.nodeId, config.nodeAddress, config.directoryTTL),
                         ("redis://127.0.0.1:6379/1", "a", "10.0.0.1:5060", 9.0))


class ServiceTests(SynchronousTestCase):
    def build(self, *args):
        from linkrtc.tap import makeService

        options = Options()
        options.parseOptions(list(args))
        service = makeService(options)
        manager = service.getServiceNamed("sip").transport.receiver.tu.inviteHandler
        return service, manager

    def test_singleProcessDefault(self):
        """Without --redis: the in-process directory, no router, no cluster service."""
        from linkrtc.signalling.directory import ClientDirectory

        service, manager = self.build()
        self.assertIs(type(manager.services.directory), ClientDirectory)
        self.assertIsNone(manager.cluster)
        self.assertRaises(KeyError, service.getServiceNamed, "cluster")

    def test_redis(self):
        """With --redis: the shared directory everywhere, the router in the call manager."""
        from linkrtc.cluster.directory import ClusterDirectory

        service, manager = self.build("--redis", "redis://127.0.0.1:1/0", "--node-id", "a",
                                      "--sip", "udp:5099:interface=127.0.0.1")
        directory = manager.services.directory
        self.assertIsInstance(directory, ClusterDirectory)
        self.assertEqual((directory.nodeId, directory.address), ("a", "127.0.0.1:5099"))
        self.assertIs(manager.cluster.directory, directory)
        self.assertIs(service.getServiceNamed("cluster").directory, directory)
