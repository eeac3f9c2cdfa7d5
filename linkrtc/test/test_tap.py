"""Tests for L{linkrtc.tap}: the options of C{twistd linkrtc}."""

import os
import sys
from io import StringIO

from twisted.application.service import IService, IServiceCollection
from twisted.python import usage
from twisted.trial.unittest import SynchronousTestCase

from linkrtc.tap import Options, installReactor, makeService
from linkrtc.test.test_config import examplePlugin


class OptionsTests(SynchronousTestCase):
    def test_defaults(self):
        """No options: the embedded defaults."""
        options = Options()
        options.parseOptions([])
        self.assertEqual(
            options.config.sip,
            ("udp:5060:interface=127.0.0.1", "tcp:5060:interface=127.0.0.1"),
        )
        self.assertEqual(options.config.http, "tcp:8080:interface=127.0.0.1")

    def test_repeatableSip(self):
        """--sip is repeatable and replaces the defaults."""
        options = Options()
        options.parseOptions(["--sip", "udp:5070", "--sip", "tcp:5071:interface=127.0.0.1"])
        self.assertEqual(options.config.sip, ("udp:5070", "tcp:5071:interface=127.0.0.1"))

    def test_allOptions(self):
        """Every documented option reaches the configuration."""
        examplePlugin(self)
        options = Options()
        options.parseOptions([
            "--http", "tcp:8081", "--public-address", "203.0.113.7", "--media", "bridge",
            "--webhook", "http://127.0.0.1:9/hook", "--webhook-secret", "k",
            "--webhook-timeout", "2.5", "--ring-timeout", "20", "--media-timeout", "10",
            "--cdr", "/tmp/cdr.jsonl", "--rtp-ports", "30000-30010",
            "--operator", "example.blocklist:mallory", "--ice-server", "stun:127.0.0.1:3478",
            "--ice-address", "127.0.0.1",
        ])
        c = options.config
        self.assertEqual(
            (c.http, c.publicAddress, c.media, c.webhook, c.webhookSecret, c.webhookTimeout,
             c.ringTimeout, c.mediaTimeout, c.cdr, c.rtpPorts, c.operators, c.iceServers,
             c.iceAddresses),
            ("tcp:8081", "203.0.113.7", "bridge", "http://127.0.0.1:9/hook", "k", 2.5, 20.0,
             10.0, "/tmp/cdr.jsonl", (30000, 30010), ("example.blocklist:mallory",),
             ("stun:127.0.0.1:3478",),
             ("127.0.0.1",)),
        )

    def test_serverHeader(self):
        """C{--server-header} sets the SIP/HTTP/webhook product name."""
        options = Options()
        options.parseOptions(["--server-header", "Acme"])
        self.assertEqual(options.config.serverHeader, "Acme")
        options = Options()
        options.parseOptions([])
        self.assertEqual(options.config.serverHeader, "LinkRTC")

    def test_badValues(self):
        """Bad values are usage errors naming the option."""
        for args, word in [(["--media", "mix"], "media"), (["--ring-timeout", "x"], "ring-timeout"),
                           (["--sip", "foo:1"], "foo:1"), (["--sip", "udp:notaport"], "udp")]:
            e = self.assertRaises(usage.UsageError, Options().parseOptions, args)
            self.assertIn(word, str(e))

    def test_sipIdleTimeout(self):
        """--sip-idle-timeout sets seconds (0: never); a bad value names the option."""
        options = Options()
        options.parseOptions(["--sip-idle-timeout", "1.5"])
        self.assertEqual(options.config.sipIdleTimeout, 1.5)
        options = Options()
        options.parseOptions(["--sip-idle-timeout", "0"])
        self.assertIsNone(options.config.sipIdleTimeout)
        e = self.assertRaises(usage.UsageError, Options().parseOptions,
                              ["--sip-idle-timeout", "-3"])
        self.assertIn("sip-idle-timeout", str(e))

    def test_webhookDelivery(self):
        """--webhook-queue-size and --webhook-give-up-seconds; bad values name the option."""
        options = Options()
        options.parseOptions(["--webhook-queue-size", "10", "--webhook-give-up-seconds", "30"])
        self.assertEqual(options.config.webhookQueueSize, 10)
        self.assertEqual(options.config.webhookGiveUpSeconds, 30.0)
        e = self.assertRaises(usage.UsageError, Options().parseOptions,
                              ["--webhook-queue-size", "0"])
        self.assertIn("webhook-queue-size", str(e))
    def test_drainSeconds(self):
        """--drain-seconds sets seconds (default 300); a bad value names the option."""
        options = Options()
        options.parseOptions([])
        self.assertEqual(options.config.drainSeconds, 300.0)
        options = Options()
        options.parseOptions(["--drain-seconds", "2"])
        self.assertEqual(options.config.drainSeconds, 2.0)
        e = self.assertRaises(usage.UsageError, Options().parseOptions, ["--drain-seconds", "-1"])
        self.assertIn("drain-seconds", str(e))

    def test_resumeSeconds(self):
        """--resume-seconds sets seconds (default 10); a bad value names the option."""
        options = Options()
        options.parseOptions(["--resume-seconds", "3"])
        self.assertEqual(options.config.resumeSeconds, 3.0)
        e = self.assertRaises(usage.UsageError, Options().parseOptions, ["--resume-seconds", "x"])
        self.assertIn("resume-seconds", str(e))

    def test_configFile(self):
        """--config reads TOML; the command line wins over it."""
        path = self.mktemp()
        with open(path, "w") as f:
            f.write('ring-timeout = 5\nmedia-timeout = 7\n')
        options = Options()
        options.parseOptions(["--config", path, "--ring-timeout", "9"])
        self.assertEqual((options.config.ringTimeout, options.config.mediaTimeout), (9.0, 7.0))

    def test_help(self):
        """--help lists the options."""
        options = Options()
        out = StringIO()
        self.patch(sys, "stdout", out)
        self.assertRaises(SystemExit, options.parseOptions, ["--help"])
        for name in ("--sip", "--http", "--public-address", "--config", "--media",
                     "--webhook", "--cdr", "--rtp-ports", "--operator", "--help-operators"):
            self.assertIn(name, out.getvalue())

    def test_helpOperators(self):
        """--help-operators lists the operator plugins, including the stock ones."""
        out = StringIO()
        self.patch(sys, "stdout", out)
        self.assertRaises(SystemExit, Options().parseOptions, ["--help-operators"])
        self.assertIn("OpRing", out.getvalue())


class ServiceTests(SynchronousTestCase):
    def test_makeService(self):
        """makeService builds a service collection on the asyncio reactor."""
        options = Options()
        options.parseOptions([])
        service = makeService(options)
        self.assertTrue(IService.providedBy(service))
        self.assertTrue(IServiceCollection.providedBy(service))

    def test_sipIdleTimeoutReachesTransport(self):
        """The SIP transport layer closes idle connections after --sip-idle-timeout."""
        options = Options()
        options.parseOptions(["--sip-idle-timeout", "7"])
        service = makeService(options)
        self.assertEqual(service.getServiceNamed("sip").transport.idleTimeout, 7.0)

    def test_webhookDeliveryReachesApplication(self):
        """The webhook's notification queue takes its size and give-up time."""
        options = Options()
        options.parseOptions(["--webhook", "http://127.0.0.1:9/hook", "--webhook-queue-size",
                              "7", "--webhook-give-up-seconds", "9"])
        service = makeService(options)
        manager = service.getServiceNamed("sip").transport.receiver.tu.inviteHandler
        queue = manager.services.application.queue
        self.assertEqual((queue.size, queue.giveUpSeconds), (7, 9.0))

    def test_reactor(self):
        """The reactor is Twisted's asyncio reactor."""
        from twisted.internet.asyncioreactor import AsyncioSelectorReactor

        self.assertIsInstance(installReactor(), AsyncioSelectorReactor)


class EventLoopTests(SynchronousTestCase):
    def test_option(self):
        """--event-loop takes asyncio or uvloop, nothing else."""
        options = Options()
        options.parseOptions(["--event-loop", "uvloop"])
        self.assertEqual(options.config.eventLoop, "uvloop")
        self.assertRaises(usage.UsageError, Options().parseOptions, ["--event-loop", "trio"])

    def test_uvloopRuns(self):
        """twistd linkrtc --event-loop uvloop starts and answers SIP (uvloop under the reactor)."""
        from linkrtc.test.e2e.harness import LinkRTCProcess

        try:
            import uvloop  # noqa: F401
        except ImportError:
            raise self.skipTest("uvloop is not installed")
        process = LinkRTCProcess("--event-loop", "uvloop").start()
        try:
            self.assertIn("uvloop", process.logText())
        finally:
            process.stop()


class AccessOptionsTests(SynchronousTestCase):
    def test_options(self):
        options = Options()
        options.parseOptions(["--auth-secret", "a" * 32, "--allowed-origin", "https://a.example",
                              "--allowed-origin", "http://b.example:8080",
                              "--register-timeout", "3", "--max-connections-per-address", "9"])
        config = options.config
        self.assertEqual(config.authSecret, "a" * 32)
        self.assertEqual(config.allowedOrigins, ("https://a.example", "http://b.example:8080"))
        self.assertEqual((config.registerTimeout, config.maxConnectionsPerAddress), (3.0, 9))

    def test_environmentSecret(self):
        self.patch(os, "environ", {"LINKRTC_AUTH_SECRET": "e" * 32})
        options = Options()
        options.parseOptions([])
        self.assertEqual(options.config.authSecret, "e" * 32)
        options = Options()
        options.parseOptions(["--auth-secret", "f" * 32])
        self.assertEqual(options.config.authSecret, "f" * 32)

    def test_shortSecret(self):
        self.assertRaises(usage.UsageError, Options().parseOptions, ["--auth-secret", "x"])


class AdmissionOptionsTests(SynchronousTestCase):
    """The SIP admission and flood-control options (docs/security.rst)."""

    def test_defaults(self):
        config = Options()
        config.parseOptions([])
        config = config.config
        self.assertEqual((config.sipRateLimit, config.sipRateBurst, config.sipBanSeconds,
                          config.sipRateLimitLoopback),
                         (100.0, None, 30.0, False))
        self.assertEqual((config.maxCalls, config.maxRingingPerClient, config.maxSipTransactions),
                         (1000, 10, 20000))

    def test_set(self):
        options = Options()
        options.parseOptions(["--sip-rate-limit", "20", "--sip-rate-burst", "40",
                              "--sip-ban-seconds", "5", "--sip-rate-limit-loopback",
                              "--max-calls", "7", "--max-ringing-per-client", "0",
                              "--max-sip-transactions", "100"])
        config = options.config
        self.assertEqual((config.sipRateLimit, config.sipRateBurst, config.sipBanSeconds,
                          config.sipRateLimitLoopback),
                         (20.0, 40, 5.0, True))
        self.assertEqual((config.maxCalls, config.maxRingingPerClient, config.maxSipTransactions),
                         (7, None, 100))
        options = Options()
        options.parseOptions(["--sip-rate-limit", "0"])
        self.assertIsNone(options.config.sipRateLimit)

    def test_bad(self):
        for args, word in [(["--sip-rate-limit", "-1"], "sip-rate-limit"),
                           (["--sip-ban-seconds", "0"], "sip-ban-seconds"),
                           (["--max-calls", "x"], "max-calls")]:
            e = self.assertRaises(usage.UsageError, Options().parseOptions, args)
            self.assertIn(word, str(e))
