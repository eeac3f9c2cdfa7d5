"""Tests of the early media settings: C{--early-media}, C{--ringback-tone}."""

from twisted.trial.unittest import SynchronousTestCase

from linkrtc.config import ConfigError, LinkRTCConfig, normalise
from linkrtc.tap import Options


class EarlyMediaConfigTests(SynchronousTestCase):
    def test_defaults(self):
        config = LinkRTCConfig()
        self.assertEqual((config.earlyMedia, config.ringbackTone), (True, "us"))

    def test_values(self):
        self.assertEqual(normalise("early-media", "off"), ("earlyMedia", False))
        self.assertEqual(normalise("early_media", True), ("earlyMedia", True))
        self.assertEqual(normalise("ringback-tone", "UK"), ("ringbackTone", "uk"))
        self.assertEqual(normalise("ringback-tone", "none"), ("ringbackTone", None))
        self.assertRaises(ConfigError, normalise, "early-media", "maybe")
        self.assertRaises(ConfigError, normalise, "ringback-tone", "atlantis")

    def test_commandLine(self):
        options = Options()
        options.parseOptions(["--early-media", "off", "--ringback-tone", "de"])
        self.assertEqual((options.config.earlyMedia, options.config.ringbackTone), (False, "de"))
