"""
SIP floods against a running C{twistd -n linkrtc} (issue 11, "SIP
admission"): a scanner's INVITE flood that never ACKs (3,000/s) and an
OPTIONS flood (6,000/s), each from one address for two seconds, while a
second address sends OPTIONS at 50/s; at least 99 % of the second
address's requests are answered. Inside a network namespace with only
loopback, rate limiting turned on for loopback (flood_live.py).
"""

import json
import os
import subprocess
import sys

from twisted.trial.unittest import SynchronousTestCase

from linkrtc.test.e2e.harness import requireNamespaces


class FloodTests(SynchronousTestCase):
    def flood(self, kind, rate):
        requireNamespaces()
        script = os.path.join(os.path.dirname(os.path.abspath(__file__)), "flood_live.py")
        out = subprocess.run(
            ["unshare", "--net", sys.executable, script, "--kind", kind, "--rate", str(rate),
             "--seconds", "2"],
            capture_output=True, text=True, timeout=120,
        )
        self.assertEqual(out.returncode, 0, out.stderr[-3000:])
        return json.loads(out.stdout.strip().splitlines()[-1])

    def test_inviteScanner(self):
        """A 3,000/s INVITE flood that never ACKs: the other address is answered."""
        result = self.flood("invite", 3000)
        self.assertTrue(result["alive"])
        self.assertGreaterEqual(result["answered_ratio"], 0.99, result)
        # no amplification: far fewer responses than requests
        self.assertLess(result["flood_responses"], result["flood_sent"] / 2, result)

    def test_optionsFlood(self):
        """A 6,000/s OPTIONS flood: the other address is answered."""
        result = self.flood("options", 6000)
        self.assertTrue(result["alive"])
        self.assertGreaterEqual(result["answered_ratio"], 0.99, result)
        self.assertLess(result["flood_responses"], result["flood_sent"] / 2, result)
