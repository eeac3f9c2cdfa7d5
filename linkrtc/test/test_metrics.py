"""Tests for L{linkrtc.metrics}."""

from prometheus_client import generate_latest
from twisted.trial.unittest import SynchronousTestCase

from linkrtc import metrics


class MetricsTests(SynchronousTestCase):
    def test_methodLabel(self):
        """Known methods keep their name; anything else is C{other}."""
        self.assertEqual(metrics.methodLabel("INVITE"), "INVITE")
        self.assertEqual(metrics.methodLabel("FOO"), "other")

    def test_bindGauges(self):
        """A bound gauge reads its source when the registry is scraped."""
        metrics.bindGauges(calls_active=lambda: 7)
        self.addCleanup(metrics.bindGauges, calls_active=lambda: 0)
        self.assertIn(b"linkrtc_calls_active 7.0", generate_latest(metrics.REGISTRY))

    def test_unknownGauge(self):
        """An unknown gauge name raises L{KeyError}."""
        self.assertRaises(KeyError, metrics.bindGauges, nosuch=lambda: 1)
