"""Tests for L{linkrtc.config}."""

from twisted.trial.unittest import SynchronousTestCase

from linkrtc.config import ConfigError, LinkRTCConfig, applyChanges, loadTOML, parseRTPPorts


class ConfigTests(SynchronousTestCase):
    def test_defaults(self):
        """The embedded defaults listen on loopback: SIP 5060 UDP and TCP, HTTP 8080."""
        config = LinkRTCConfig()
        self.assertEqual(
            config.sip, ("udp:5060:interface=127.0.0.1", "tcp:5060:interface=127.0.0.1")
        )
        self.assertEqual(config.http, "tcp:8080:interface=127.0.0.1")
        self.assertEqual(config.media, "passthrough")
        self.assertEqual(config.ringTimeout, 60.0)
        self.assertEqual(config.webhookTimeout, 5.0)

    def test_toml(self):
        """A TOML file sets options under their option names, dashes or underscores."""
        path = self.mktemp()
        with open(path, "w") as f:
            f.write(
                'sip = "udp:5070"\npublic_address = "203.0.113.7"\nring-timeout = 30\n'
                'rtp-ports = "30000-30100"\n[client-tokens]\nalice = "x"\n'
            )
        config = loadTOML(path)
        self.assertEqual(config.sip, ("udp:5070",))
        self.assertEqual(config.publicAddress, "203.0.113.7")
        self.assertEqual(config.ringTimeout, 30.0)
        self.assertEqual(config.rtpPorts, (30000, 30100))
        self.assertEqual(config.clientTokens, {"alice": "x"})

    def test_unknownKey(self):
        """An unknown key is refused, naming it."""
        e = self.assertRaises(ConfigError, applyChanges, LinkRTCConfig(), {"rign-timeout": 3})
        self.assertIn("rign-timeout", str(e))

    def test_badValues(self):
        """Bad values are refused, naming the key."""
        for key, value in [("ring-timeout", "soon"), ("ring-timeout", -1),
                           ("media", "mix"), ("rtp-ports", "9-8"), ("sip", [1])]:
            e = self.assertRaises(ConfigError, applyChanges, LinkRTCConfig(), {key: value})
            self.assertIn(key, str(e))

    def test_badTOML(self):
        """A file that is not TOML, or is missing, gives a ConfigError."""
        path = self.mktemp()
        with open(path, "w") as f:
            f.write("sip = [\n")
        self.assertRaises(ConfigError, loadTOML, path)
        self.assertRaises(ConfigError, loadTOML, self.mktemp())

    def test_rtpPorts(self):
        """RTP port ranges parse from LOW-HIGH or a pair."""
        self.assertEqual(parseRTPPorts("20000-20010"), (20000, 20010))
        self.assertEqual(parseRTPPorts([20000, 20010]), (20000, 20010))
        self.assertRaises(ConfigError, parseRTPPorts, "80-90")
