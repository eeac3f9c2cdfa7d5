"""
A short, deterministic run of the fuzzing targets of L{linkrtc.test.fuzz}
(hypothesis, derandomized: the same examples on every run). The long run
is C{bench/fuzz.py}.
"""

import json

from hypothesis import HealthCheck, given, settings
from twisted.trial.unittest import SynchronousTestCase

from linkrtc.test.fuzz import TARGETS

#: Examples per target in the unit test run.
EXAMPLES = 200


def _fuzz(name):
    strategy, check = TARGETS[name]

    def test(self, example):
        check(example)

    test.__name__ = test.__qualname__ = f"test_{name}"
    test.__doc__ = f"The {name!r} target raises only its documented error ({EXAMPLES} examples)."
    return settings(max_examples=EXAMPLES, derandomize=True, deadline=None, database=None,
                    print_blob=False, suppress_health_check=list(HealthCheck))(
        given(strategy)(test))


class FuzzTests(SynchronousTestCase):
    test_sip = _fuzz("sip")
    test_uri = _fuzz("uri")
    test_sdp = _fuzz("sdp")
    test_client = _fuzz("client")
    test_webhook = _fuzz("webhook")


class FoundTests(SynchronousTestCase):
    """
    What fuzzing found in the webhook reply of an outgoing call (the other
    finds have their tests beside the code: C{test_parser}, C{test_sdp},
    C{test_useragent}).
    """

    def test_outgoingBadTarget(self):
        """
        C{"to"} or C{"caller_id"} that is not a non-empty string is a bad
        reply (L{WebhookError}), not a C{TypeError} when the call is placed.
        """
        from linkrtc.api.webhook import WebhookError, _outgoingDecision

        for field in ("to", "caller_id"):
            for value in ([], 5, {}, "", True):
                body = json.dumps({"action": "route", field: value}).encode()
                self.assertRaises(WebhookError, _outgoingDecision, body)
        decision = _outgoingDecision(b'{"action": "route", "to": "+1555", "caller_id": "100"}')
        self.assertEqual((decision["to"], decision["caller_id"]), ("+1555", "100"))

    def test_secondsNotFinite(self):
        """
        C{max_ring_seconds} of C{NaN} or C{Infinity} (JSON constants, or
        1e400) is refused like 0 or -1, not given to C{callLater}.
        """
        from linkrtc.api.webhook import _outgoingDecision
        from linkrtc.call.outbound import _seconds

        for text in (b"NaN", b"Infinity", b"-Infinity", b"1e400", b"0", b"-1"):
            decision = _outgoingDecision(b'{"action": "route", "max_ring_seconds": %s}' % text)
            self.assertRaises(ValueError, _seconds, decision["max_ring_seconds"], "x")
        self.assertEqual(_seconds(30, "x"), 30.0)
