"""Tests for L{linkrtc.call.call.firedResult}."""

from twisted.internet.defer import Deferred, fail, succeed
from twisted.trial.unittest import SynchronousTestCase

from linkrtc.call.call import _PENDING, firedResult


class FiredResultTests(SynchronousTestCase):
    """L{linkrtc.call.call.firedResult}, the synchronous fast path for Deferreds."""

    def test_fired(self):
        """A fired Deferred's result is taken; the Deferred is left with C{None}."""
        d = succeed("decision")
        self.assertEqual(firedResult(d), "decision")
        self.assertIsNone(self.successResultOf(d))
        self.assertEqual(self.flushWarnings(), [])

    def test_pending(self):
        """
        A Deferred not fired yet is C{_PENDING}, and its result later
        reaches the callbacks the caller adds, untouched.
        """
        d = Deferred()
        self.assertIs(firedResult(d), _PENDING)
        d.callback("late")
        self.assertEqual(self.successResultOf(d), "late")

    def test_failed(self):
        """A failed Deferred is C{_PENDING}: its failure stays for the errbacks."""
        d = fail(ValueError("no"))
        self.assertIs(firedResult(d), _PENDING)
        self.failureResultOf(d, ValueError)

    def test_waitingOnAnother(self):
        """A Deferred paused on another it chained to is C{_PENDING}."""
        inner = Deferred()
        d = succeed(None).addCallback(lambda _: inner)
        self.assertIs(firedResult(d), _PENDING)
        inner.callback("inner")
        self.assertEqual(self.successResultOf(d), "inner")
