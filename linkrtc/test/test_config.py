"""Tests for L{linkrtc.config}."""

import json
import os
import shutil
import sys

from twisted.python import usage
from twisted.trial.unittest import SynchronousTestCase

import linkrtc
import linkrtc.plugins
from linkrtc.config import (
    KEYS,
    ConfigError,
    LinkRTCConfig,
    applyChanges,
    configOrExit,
    loadTOML,
    normalise,
    parseRTPPorts,
)
from linkrtc.configcheck import isHost

EXAMPLE_PLUGIN = os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(linkrtc.__file__))),
                              "etc", "example_plugins", "linkrtc", "plugins",
                              "example_blocklist.py")


def examplePlugin(testCase):
    """
    Make the example operator plugin (C{example.blocklist}, from
    etc/example_plugins) findable for the rest of C{testCase}.
    """
    if not os.path.exists(EXAMPLE_PLUGIN):
        raise testCase.skipTest("not running from a source checkout")
    top = os.path.abspath(testCase.mktemp())
    plugins = os.path.join(top, "linkrtc", "plugins")
    os.makedirs(plugins)
    shutil.copy(EXAMPLE_PLUGIN, plugins)
    testCase.patch(sys, "path", [top] + sys.path)
    testCase.patch(linkrtc.plugins, "__path__", list(linkrtc.plugins.__path__) + [plugins])
    testCase.addCleanup(sys.modules.pop, "linkrtc.plugins.example_blocklist", None)


class ConfigTests(SynchronousTestCase):
    def test_defaults(self):
        """The embedded defaults listen on loopback: SIP 5060 UDP and TCP, HTTP 8080."""
        config = LinkRTCConfig()
        self.assertEqual(
            config.sip, ("udp:5060:interface=127.0.0.1", "tcp:5060:interface=127.0.0.1")
        )
        self.assertEqual(config.http, "tcp:8080:interface=127.0.0.1")
        self.assertEqual(config.media, "bridge")
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

    def test_webhookDelivery(self):
        """
        webhook-queue-size (events, default 1000) and webhook-give-up-seconds
        (default 300); a bad value names the key.
        """
        self.assertEqual(LinkRTCConfig().webhookQueueSize, 1000)
        self.assertEqual(LinkRTCConfig().webhookGiveUpSeconds, 300.0)
        config = applyChanges(LinkRTCConfig(), {"webhook-queue-size": "50",
                                                "webhook_give_up_seconds": 12})
        self.assertEqual(config.webhookQueueSize, 50)
        self.assertEqual(config.webhookGiveUpSeconds, 12.0)
        for key, value in [("webhook-queue-size", 0), ("webhook-queue-size", "many"),
                           ("webhook-queue-size", 1.5), ("webhook-queue-size", True),
                           ("webhook-give-up-seconds", 0), ("webhook-give-up-seconds", "x")]:
            e = self.assertRaises(ConfigError, applyChanges, config, {key: value})
            self.assertIn(key, str(e))
    def test_drainSeconds(self):
        """drain-seconds: 300 s by default, 0 or more seconds; not negative, words or true."""
        self.assertEqual(LinkRTCConfig().drainSeconds, 300.0)
        config = applyChanges(LinkRTCConfig(), {"drain-seconds": "12.5"})
        self.assertEqual(config.drainSeconds, 12.5)
        self.assertEqual(applyChanges(config, {"drain_seconds": 0}).drainSeconds, 0.0)
        for value in (-1, "soon", True, float("nan"), float("inf")):
            e = self.assertRaises(ConfigError, applyChanges, config, {"drain-seconds": value})
            self.assertIn("drain-seconds", str(e))

    def test_serverHeader(self):
        """server-header: C{LinkRTC} (no version) by default; printable ASCII only."""
        self.assertEqual(LinkRTCConfig().serverHeader, "LinkRTC")
        config = applyChanges(LinkRTCConfig(), {"server-header": "Acme PBX"})
        self.assertEqual(config.serverHeader, "Acme PBX")
        for value in ("", "a\r\nX-Evil: 1", "caf\u00e9", " lead", "x" * 129, 7):
            e = self.assertRaises(ConfigError, applyChanges, config, {"server-header": value})
            self.assertIn("server-header", str(e))
    def test_resumeSeconds(self):
        """resume-seconds: 10 s by default, 0 (off) or more, from TOML too; not negative."""
        self.assertEqual(LinkRTCConfig().resumeSeconds, 10.0)
        path = self.mktemp()
        with open(path, "w") as f:
            f.write("resume-seconds = 4\n")
        self.assertEqual(loadTOML(path).resumeSeconds, 4.0)
        config = applyChanges(LinkRTCConfig(), {"resume-seconds": 0})
        self.assertEqual(config.resumeSeconds, 0.0)
        for value in (-1, "soon", True):
            e = self.assertRaises(ConfigError, applyChanges, config, {"resume-seconds": value})
            self.assertIn("resume-seconds", str(e))

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


#: (key, bad value, words the one-line message must hold): every validation error.
BAD_VALUES = [
    ("ring-timeout", "soon", "expected seconds"),
    ("ring-timeout", -1, "must be positive"),
    ("ring-timeout", 0, "must be positive"),
    ("ring-timeout", "nan", "finite"),
    ("ring-timeout", "inf", "finite"),
    ("ring-timeout", True, "expected seconds"),
    ("webhook-timeout", "x", "expected seconds"),
    ("media-timeout", "-2", "must be positive"),
    ("max-ring-seconds", 0, "must be positive"),
    ("max-answer-seconds", -5, "must be positive"),
    ("sip-idle-timeout", -3, "must be positive"),
    ("rtp-ports", "30000-20000", "low 30000 > high 20000"),
    ("rtp-ports", "80-90", "outside 1024-65535"),
    ("rtp-ports", "many", "expected LOW-HIGH"),
    ("media", "foo", "passthrough, bridge"),
    ("log-level", "loud", "expected one of"),
    ("log-level", ["info"], "expected one of"),
    ("event-loop", "trio", "asyncio or uvloop"),
    ("webhook", "notaurl", "http:// or https:// URL"),
    ("webhook", "ftp://app.example.com/hook", "http:// or https:// URL"),
    ("webhook", "http://", "http:// or https:// URL"),
    ("webhook", "http://bad_host/hook", "no valid host"),
    ("webhook", "http://app.example.com:99999/", "http:// or https:// URL"),
    ("webhook", 7, "expected a string"),
    ("public-address", "not_an_addr", "IP address or a host name"),
    ("public-address", "999.1.1.1", "IP address or a host name"),
    ("public-address", "-x.example.com", "IP address or a host name"),
    ("ice-server", "garbage", "stun:, stuns:, turn: or turns:"),
    ("ice-server", "stun:", "stun:, stuns:, turn: or turns:"),
    ("ice-server", "stun:stun.example.net:99999", "stun:, stuns:, turn: or turns:"),
    ("ice-server", "stun:stun.example.net?transport=udp", "stun:, stuns:, turn: or turns:"),
    ("ice-server", "http://stun.example.net", "stun:, stuns:, turn: or turns:"),
    ("ice-server", "turn:turn.example.net", "needs a username and credential"),
    ("ice-server", [{"urls": "stun:x.example", "colour": "red"}], "unknown key 'colour'"),
    ("ice-server", [{"username": "u"}], "needs urls"),
    ("ice-server", [5], "expected a URL or a table"),
    ("ice-address", "not-an-ip", "expected an IP address"),
    ("sip", "foo:1", "Unsupported SIP endpoint type"),
    ("sip", "udp:notaport", "Bad port"),
    ("sip", [1], "list of strings"),
    ("http", "foo:1", "bad endpoint 'foo:1'"),
    ("http", "tcp:notaport", "bad endpoint"),
    ("operator", "nosuch", "unknown operator 'nosuch'"),
    ("webhook-secret", 5, "expected a string"),
    ("cdr", 5, "expected a string"),
    ("client-tokens", "alice", "table of name = token"),
]


class ValidationTests(SynchronousTestCase):
    """
    One validation path: each bad value is refused, with one line naming the
    key, from a .tac's L{LinkRTCConfig}, a TOML file and the command line.
    """

    def assertOneLine(self, message, key, words):
        self.assertNotIn("\n", message)
        self.assertTrue(message.startswith(key + ":"), message)
        self.assertIn(words, message)

    def test_tac(self):
        """LinkRTCConfig(field=bad) raises ConfigError naming the key."""
        for key, value, words in BAD_VALUES:
            with self.subTest(key=key, value=value):
                e = self.assertRaises(ConfigError, LinkRTCConfig, **{KEYS[key]: value})
                self.assertOneLine(str(e), key, words)

    def test_toml(self):
        """loadTOML refuses each bad value, naming the key."""
        for key, value, words in BAD_VALUES:
            if key == "client-tokens":
                text = f"{key} = {json.dumps(value)}\n"
            elif isinstance(value, list) and value and isinstance(value[0], dict):
                text = "".join(f"[[{key}]]\n" + "".join(f"{k} = {json.dumps(v)}\n"
                                                         for k, v in v.items())
                               for v in value)
            else:
                text = f"{key} = {json.dumps(value)}\n"
            if "nan" == value or "inf" == value:
                text = f"{key} = {value}\n"
            path = self.mktemp()
            with open(path, "w") as f:
                f.write(text)
            with self.subTest(key=key, value=value):
                e = self.assertRaises(ConfigError, loadTOML, path)
                self.assertOneLine(str(e), key, words)

    def test_commandLine(self):
        """twistd linkrtc --KEY bad is a usage error of one line naming the key."""
        from linkrtc.tap import Options

        for key, value, words in BAD_VALUES:
            if not isinstance(value, str) or key == "client-tokens":
                continue
            with self.subTest(key=key, value=value):
                e = self.assertRaises(usage.UsageError, Options().parseOptions,
                                      [f"--{key}", value])
                self.assertOneLine(str(e), key, words)

    def test_good(self):
        """Valid values of the checked keys are kept (converted where needed)."""
        turn = {"urls": ["turn:turn.example.net:3478?transport=tcp", "turns:[2001:db8::1]"],
                "username": "u", "credential": "c"}
        config = LinkRTCConfig(
            webhook="https://app.example.com:8443/hook?x=1", publicAddress="sip.example.com",
            iceServers=("stun:stun.example.net:3478", "stun:[::1]", turn),
            iceAddresses=["127.0.0.1", "::1"], rtpPorts="30000-30000", ringTimeout="2.5",
            sip=["udp:0:interface=127.0.0.1"], http="tcp:0",
        )
        self.assertEqual(config.iceServers, ("stun:stun.example.net:3478", "stun:[::1]", turn))
        self.assertEqual((config.iceAddresses, config.rtpPorts, config.ringTimeout, config.sip),
                         (("127.0.0.1", "::1"), (30000, 30000), 2.5,
                          ("udp:0:interface=127.0.0.1",)))
        for address in ("203.0.113.7", "2001:db8::7", "pbx.example.com.", "localhost"):
            self.assertEqual(LinkRTCConfig(publicAddress=address).publicAddress, address)

    def test_isHost(self):
        """IP literals and RFC 1123 host names are hosts; nothing else is."""
        for text in ("192.0.2.1", "::1", "a.example", "a-b.example", "x" * 63 + ".example"):
            self.assertTrue(isHost(text), text)
        for text in ("", "a_b", "a..b", "-a", "a-", "1.2.3.999", "x" * 64 + ".example",
                     "a b", "[::1]", None):
            self.assertFalse(isHost(text), text)

    def test_operatorResolved(self):
        """A known operator plugin with a good argument passes; a bad argument is refused."""
        examplePlugin(self)
        config = LinkRTCConfig(operators=("example.blocklist:mallory",))
        self.assertEqual(config.operators, ("example.blocklist:mallory",))
        e = self.assertRaises(ConfigError, LinkRTCConfig, operators=("example.blocklist",))
        self.assertOneLine(str(e), "operator", "example.blocklist")

    def test_configOrExit(self):
        """configOrExit (for .tac files) exits with one line naming the key."""
        self.assertEqual(configOrExit(media="bridge").media, "bridge")
        e = self.assertRaises(SystemExit, configOrExit, media="foo")
        self.assertEqual(e.code, "linkrtc: media: expected one of passthrough, bridge, "
                                 "got 'foo'")
        e = self.assertRaises(SystemExit, configOrExit, ringTimout=3)
        self.assertIn("ringTimout", e.code)

    def test_defaultsNotRechecked(self):
        """replace() keeps a valid configuration valid and converts the changed value."""
        config = LinkRTCConfig().replace(rtpPorts=[20000, 20010])
        self.assertEqual(config.rtpPorts, (20000, 20010))
class AccessConfigTests(SynchronousTestCase):
    """The WebSocket access keys (docs/security.rst)."""

    def test_defaults(self):
        config = LinkRTCConfig()
        self.assertIsNone(config.authSecret)
        self.assertEqual(config.authSecrets, {})
        self.assertEqual(config.allowedOrigins, ())
        self.assertEqual(config.registerTimeout, 10.0)
        self.assertEqual(config.maxConnectionsPerAddress, 50)

    def test_toml(self):
        path = self.mktemp()
        with open(path, "w") as f:
            f.write('auth-secret = "' + "a" * 32 + '"\n'
                    'allowed-origins = ["https://app.example.com"]\n'
                    'register-timeout = 5\nmax-connections-per-address = 8\n'
                    '[auth-secrets]\n2025 = "' + "b" * 32 + '"\n')
        config = loadTOML(path)
        self.assertEqual(config.authSecret, "a" * 32)
        self.assertEqual(config.authSecrets, {"2025": "b" * 32})
        self.assertEqual(config.allowedOrigins, ("https://app.example.com",))
        self.assertEqual(config.registerTimeout, 5.0)
        self.assertEqual(config.maxConnectionsPerAddress, 8)

    def test_bad(self):
        for key, value in (("auth-secret", "short"), ("auth-secret", 5),
                           ("auth-secrets", {"a b": "c" * 32}), ("auth-secrets", "x"),
                           ("allowed-origins", ["app.example.com"]),
                           ("allowed-origin", "https://a/path"),
                           ("register-timeout", 0), ("max-connections-per-address", 0),
                           ("max-connections-per-address", "x"),
                           ("max-connections-per-address", True)):
            self.assertRaises(ConfigError, applyChanges, LinkRTCConfig(), {key: value})


class SIPUsersConfigTests(SynchronousTestCase):
    """The registrar's keys: [sip-users], sip-realm, sip-digest-algorithms, expiries."""

    def test_toml(self):
        """A TOML file's [sip-users] and registrar keys reach the configuration."""
        path = self.mktemp()
        with open(path, "w") as f:
            f.write('sip-min-expires = 120\nsip-digest-algorithms = ["md5"]\n'
                    '[sip-users]\nbob = "pw"\ncarol = { ha1 = "%s" }\n' % ("a" * 32,))
        config = loadTOML(path)
        self.assertEqual(config.sipUsers, {"bob": {"password": "pw"},
                                           "carol": {"ha1": "a" * 32}})
        self.assertEqual(config.sipMinExpires, 120)
        self.assertEqual(config.sipDigestAlgorithms, ("MD5",))

    def test_bad(self):
        """A bad user entry or algorithm is a ConfigError naming the key."""
        for key, value in (("sip-users", {"bob": ""}), ("sip-users", "bob"),
                           ("sip-digest-algorithms", ["SHA-1"]), ("sip-max-contacts", 0)):
            e = self.assertRaises(ConfigError, normalise, key, value)
            self.assertIn(key, str(e))


class MaxForksConfigTests(SynchronousTestCase):
    """max-forks: devices one incoming call rings at most."""

    def test_default(self):
        self.assertEqual(loadTOML(self._write("")).maxForks, 10)

    def test_toml(self):
        self.assertEqual(loadTOML(self._write("max-forks = 3\n")).maxForks, 3)

    def test_bad(self):
        for value in (0, -1, "many"):
            e = self.assertRaises(ConfigError, normalise, "max-forks", value)
            self.assertIn("max-forks", str(e))

    def _write(self, text):
        path = self.mktemp()
        with open(path, "w") as f:
            f.write(text)
        return path
class SessionTimerConfigTests(SynchronousTestCase):
    """RFC 4028 and RFC 3262 settings: session-expires, min-se, a trunk's 100rel."""

    def test_defaults(self):
        """1800 s and Min-SE 90 s; trunks offer 100rel."""
        config = LinkRTCConfig()
        self.assertEqual((config.sessionExpires, config.minSE), (1800, 90))

    def test_toml(self):
        """The TOML keys and a trunk's 100rel = false reach the configuration."""
        path = self.mktemp()
        with open(path, "w") as f:
            f.write('session-expires = 600\nmin-se = 120\n'
                    '[[trunk]]\nname = "pbx"\nproxy = "sip:pbx.example.com"\n100rel = false\n'
                    '[[trunk]]\nname = "itsp"\nproxy = "sip:itsp.example.com"\n')
        config = loadTOML(path)
        self.assertEqual((config.sessionExpires, config.minSE), (600, 120))
        self.assertEqual([t.reliableProvisionals for t in config.trunks], [False, True])

    def test_commandLine(self):
        """--session-expires and --min-se are whole seconds; others are refused."""
        from linkrtc.tap import Options

        options = Options()
        options.parseOptions(["--session-expires", "300", "--min-se", "2"])
        self.assertEqual((options.config.sessionExpires, options.config.minSE), (300, 2))
        for bad in ("0", "soon", "1.5"):
            self.assertRaises(ConfigError, normalise, "min-se", bad)

    def test_badTrunk(self):
        """100rel must be true or false."""
        path = self.mktemp()
        with open(path, "w") as f:
            f.write('[[trunk]]\nname = "pbx"\nproxy = "sip:pbx.example.com"\n100rel = "yes"\n')
        self.assertRaises(ConfigError, loadTOML, path)
