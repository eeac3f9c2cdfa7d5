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
        self.assertEqual(config.eventLoop, "uvloop")

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

    def test_sipIdleTimeout(self):
        """sip-idle-timeout: 60 s by default, seconds, 0 for never; not negative or words."""
        self.assertEqual(LinkRTCConfig().sipIdleTimeout, 60.0)
        config = applyChanges(LinkRTCConfig(), {"sip-idle-timeout": "2.5"})
        self.assertEqual(config.sipIdleTimeout, 2.5)
        self.assertIsNone(applyChanges(config, {"sip_idle_timeout": 0}).sipIdleTimeout)
        for value in (-1, "soon"):
            e = self.assertRaises(ConfigError, applyChanges, config, {"sip-idle-timeout": value})
            self.assertIn("sip-idle-timeout", str(e))

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


class TrunkConfigTests(SynchronousTestCase):
    """C{[[trunk]]} tables, C{max-ring-seconds} and C{max-answer-seconds}."""

    def load(self, text):
        path = self.mktemp()
        with open(path, "w") as f:
            f.write(text)
        return loadTOML(path)

    def test_trunks(self):
        """Every key of a trunk table is read; the first trunk comes first."""
        config = self.load(
            'max-ring-seconds = 45\nmax_answer_seconds = 3600\n'
            '[[trunk]]\nname = "pbx"\nproxy = "sip:pbx.example.com:5070;transport=tcp"\n'
            'username = "1001"\npassword = "s3cret"\nrealm = "pbx"\nregister = true\n'
            'expires = 600\ncaller_id = "+4930{client}"\ncaller-name = "{client}"\n'
            'codecs = ["PCMU", "PCMA"]\nofferless = true\ndefault_client = "alice"\n'
            '[trunk.route]\n"+4930123" = "bob"\n'
            '[[trunk]]\nname = "itsp"\nproxy = "itsp.example.net"\nusername = "x"\n'
            'ha1 = "0123456789abcdef0123456789abcdef"\ntransport = "tls"\n'
        )
        self.assertEqual((config.maxRingSeconds, config.maxAnswerSeconds), (45.0, 3600.0))
        pbx, itsp = config.trunks
        self.assertEqual((pbx.name, pbx.username, pbx.password, pbx.realm), (
            "pbx", "1001", "s3cret", "pbx"))
        self.assertTrue(pbx.register and pbx.offerless)
        self.assertEqual(pbx.expires, 600)
        self.assertEqual(pbx.codecs, ("PCMU", "PCMA"))
        self.assertEqual(pbx.route, {"+4930123": "bob"})
        self.assertEqual(pbx.defaultClient, "alice")
        self.assertEqual(str(pbx.destination()), "TCP:pbx.example.com:5070")
        self.assertEqual(pbx.aor(), "sip:1001@pbx.example.com:5070")
        self.assertEqual(pbx.callerIdFor("alice", authenticated=True), "+4930alice")
        self.assertEqual(pbx.callerIdFor("alice", "+1555"), "+1555")
        self.assertEqual(pbx.callerNameFor("alice", authenticated=True), "alice")
        # {client} is not a client's own choice unless a token says who it is.
        self.assertEqual(pbx.callerIdFor("alice"), "1001")
        self.assertIsNone(pbx.callerNameFor("alice"))
        self.assertEqual(str(itsp.destination()), "TLS:itsp.example.net:5061")
        self.assertEqual(itsp.callerIdFor("alice"), "x")
        self.assertFalse(itsp.register)

    def test_defaults(self):
        """No trunks, 60 s to ring, no talk limit by default."""
        config = LinkRTCConfig()
        self.assertEqual((config.trunks, config.maxRingSeconds, config.maxAnswerSeconds),
                         ((), 60.0, None))

    def test_bad(self):
        """Mistakes name the trunk and the key."""
        for text, words in [
            ('[[trunk]]\nproxy = "sip:x"\n', "'name' is required"),
            ('[[trunk]]\nname = "a"\n', "'proxy' is required"),
            ('[[trunk]]\nname = "a"\nproxy = "sip:x"\ncolour = 1\n', "unknown key"),
            ('[[trunk]]\nname = "a"\nproxy = "sip:x"\ntransport = "sctp"\n', "transport"),
            ('[[trunk]]\nname = "a"\nproxy = "sip:x"\nregister = true\n', "needs a username"),
            ('[[trunk]]\nname = "a"\nproxy = "sip:x"\npassword = "p"\nha1 = "%s"\n' % ("0" * 32),
             "not both"),
            ('[[trunk]]\nname = "a"\nproxy = "sip:x"\n[[trunk]]\nname = "a"\nproxy = "sip:y"\n',
             "two trunks"),
            ('[[trunk]]\nname = "a"\nproxy = "sip:x"\ncaller_id = "{nope}"\n', "template"),
            ('[[trunk]]\nname = "a"\nproxy = "sip:[bad"\n', "bad SIP URI"),
            ('max-ring-seconds = 0\n', "max-ring-seconds"),
        ]:
            e = self.assertRaises(ConfigError, self.load, text)
            self.assertIn(words, str(e), text)

    def test_tacTrunk(self):
        """A .tac may give Trunk objects; applyChanges checks them."""
        from linkrtc.config import Trunk

        config = applyChanges(LinkRTCConfig(), {"trunks": [Trunk("t", "sip:192.0.2.1")]})
        self.assertEqual(config.trunks[0].name, "t")
        self.assertRaises(ConfigError, applyChanges, LinkRTCConfig(),
                          {"trunks": [Trunk("t", "sip:192.0.2.1", transport="x")]})

    def test_commandLine(self):
        """--max-ring-seconds and --max-answer-seconds."""
        from linkrtc.tap import Options

        options = Options()
        options.parseOptions(["--max-ring-seconds", "20", "--max-answer-seconds", "120"])
        self.assertEqual((options.config.maxRingSeconds, options.config.maxAnswerSeconds),
                         (20.0, 120.0))
