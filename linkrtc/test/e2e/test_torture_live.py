"""
A running C{twistd -n linkrtc} answers the RFC 4475 (and RFC 5118) torture
messages sent to it over UDP as their INDEX.md says, inside a network
namespace that has only loopback.
"""

import json
import os
import subprocess
import sys

from twisted.trial.unittest import SynchronousTestCase

from linkrtc.test.e2e.harness import HERE_MESSAGES, requireNamespaces

# file -> the acceptable first responses (None: no response at all).
EXPECTED = {
    # §3.1.1 valid: accepted (INVITEs get 100 Trying first; wsinv's To has a
    # tag naming no dialog of ours, so its well-formed answer is 481, §12.2.2).
    "wsinv.sip": {481}, "intmeth.sip": {501}, "esc01.sip": {100}, "escnull.sip": {401},
    "esc02.sip": {501}, "lwsdisp.sip": {200}, "longreq.sip": {100}, "dblreq.sip": {401},
    "semiuri.sip": {200}, "transports.sip": {200}, "mpart01.sip": {415},
    "unreason.sip": {None}, "noreason.sip": {None},
    # §3.1.2 invalid.
    "badinv01.sip": {400}, "clerr.sip": {400}, "ncl.sip": {400}, "scalar02.sip": {400},
    "scalarlg.sip": {None}, "quotbal.sip": {400}, "ltgtruri.sip": {400}, "lwsruri.sip": {400},
    "lwsstart.sip": {400, 100}, "trws.sip": {400, 200}, "escruri.sip": {400},
    "baddate.sip": {400, 100}, "regbadct.sip": {400}, "badaspec.sip": {400}, "baddn.sip": {400},
    "badvers.sip": {505}, "mismatch01.sip": {400}, "mismatch02.sip": {501}, "bigcode.sip": {None},
    # §3.2, §3.3, §3.4.
    "badbranch.sip": {400, 200}, "insuf.sip": {400}, "unkscm.sip": {416}, "novelsc.sip": {416},
    "unksm2.sip": {400}, "bext01.sip": {420}, "invut.sip": {415}, "regaut01.sip": {401},
    "multi01.sip": {400}, "mcl01.sip": {400}, "bcast.sip": {None}, "zeromf.sip": {200},
    "cparam01.sip": {401}, "cparam02.sip": {401}, "regescrt.sip": {401}, "sdp01.sip": {406},
    "inv2543.sip": {100},
}

EXPECTED_5118 = {
    "ipv6-good.sip": {401}, "ipv6-bad.sip": {400}, "port-ambiguous.sip": {401},
    "port-unambiguous.sip": {401}, "via-received-param-with-delim.sip": {481},
    "via-received-param-no-delim.sip": {200, 401}, "mult-ip-in-header.sip": {481},
    "ipv6-bug-abnf-3-colons.sip": {400, 200, 401}, "ipv6-correct-abnf-2-colons.sip": {200, 401},
    "ipv4-mapped-ipv6.cl-fixed.sip": {100}, "ipv6-in-sdp.cl-fixed.sip": {100},
    "mult-ip-in-sdp.cl-fixed.sip": {100},
}


class TortureLiveTests(SynchronousTestCase):
    def test_rfc4475(self):
        """Every RFC 4475 message gets the response INDEX.md asks for, and LinkRTC survives."""
        requireNamespaces()
        result = self.run_(os.path.join(HERE_MESSAGES, "rfc4475"))
        wrong = {name: got for name, got in result["results"].items()
                 if name in EXPECTED and got not in EXPECTED[name]}
        self.assertEqual(wrong, {}, f"unexpected answers: {wrong}")
        self.assertTrue(result["alive"])
        self.assertEqual(set(EXPECTED) - set(result["results"]), set())

    def test_rfc5118(self):
        """The RFC 5118 IPv6 messages: valid ones accepted, the bad reference refused."""
        requireNamespaces()
        result = self.run_(os.path.join(HERE_MESSAGES, "rfc5118", "derived"),
                           os.path.join(HERE_MESSAGES, "rfc5118"))
        wrong = {name: got for name, got in result["results"].items()
                 if name in EXPECTED_5118 and got not in EXPECTED_5118[name]}
        self.assertEqual(wrong, {}, f"unexpected answers: {wrong}")

    def run_(self, *directories):
        script = os.path.join(os.path.dirname(os.path.abspath(__file__)), "torture_live.py")
        out = subprocess.run(
            ["unshare", "--net", sys.executable, script, *directories],
            capture_output=True, text=True, timeout=180,
        )
        self.assertEqual(out.returncode, 0, out.stderr[-3000:])
        return json.loads(out.stdout.strip().splitlines()[-1])
