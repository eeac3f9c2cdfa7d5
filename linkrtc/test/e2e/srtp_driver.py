"""
Drive SDES-SRTP calls (RFC 4568) between baresip and an aiortc WebRTC
client through a running C{twistd -n linkrtc --media bridge} and print
what happened as one JSON line (the last line of stdout).

baresip loads its C{srtp} module and its account says
C{mediaenc=srtp-mand}: it offers and accepts only C{RTP/SAVP} with
C{a=crypto}. It plays 440 Hz and records what it hears; the client sends
880 Hz.

Run inside a network namespace that has only loopback
(C{test_srtp_e2e} does C{unshare --net}); the script brings C{lo} up.

Scenarios:
  - C{phone-calls-client}: baresip dials C{sip:alice@LINKRTC} offering
    SRTP; LinkRTC answers C{RTP/SAVP} with its own key (bridge mode); the
    client answers; tones both ways, a DTMF key (RFC 4733 in SRTP) from
    baresip; the client hangs up.
  - C{trunk-required}: baresip is a trunk with C{srtp = "required"}; the
    client calls C{bob} through it; LinkRTC offers C{RTP/SAVP} with
    C{a=crypto}, baresip answers by itself; tones both ways; the client
    hangs up.
  - C{plain-from-trunk}: baresip without SRTP dials C{sip:alice@LINKRTC}
    from the address of a trunk with C{srtp = "required"}: LinkRTC answers
    488 and the client is never offered the call.
"""

import os
import re
import sys

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.dirname(HERE))))

from linkrtc.test.e2e.bridge_driver import Run, baresipCall  # noqa: E402
from linkrtc.test.e2e.drivers import driverParser, runScenario  # noqa: E402
from linkrtc.test.e2e.outbound_driver import TRUNK as PLAIN_TRUNK  # noqa: E402
from linkrtc.test.e2e.outbound_driver import OutboundRun, dialOut  # noqa: E402

#: baresip as the trunk, SRTP only.
TRUNK = PLAIN_TRUNK + 'srtp = "required"\n'

#: baresip's account parameter: SDES-SRTP, mandatory.
SRTP_MANDATORY = ";mediaenc=srtp-mand"


class SRTPMixin:
    """baresip with its srtp module loaded."""

    def configureBaresip(self, sipPort, accountParameters):
        config = super().configureBaresip(sipPort, accountParameters + SRTP_MANDATORY)
        with open(os.path.join(config, "config"), "a") as f:
            f.write("module srtp.so\n")
        return config

    def finishBaresip(self):
        super().finishBaresip()
        text = self.baresipText()
        self.result["phoneSRTP"] = re.findall(r"SRTP is Enabled \(cryptosuite=(\w+)\)", text)


class InboundRun(SRTPMixin, Run):
    """baresip calls the client."""


class TrunkRun(SRTPMixin, OutboundRun):
    """baresip is an SRTP-only trunk."""

    trunkConfig = TRUNK


class PlainFromTrunkRun(OutboundRun):
    """baresip, plain RTP only, calls from the address of an SRTP-only trunk."""

    trunkConfig = TRUNK
    baresipPort = 5060  # the trunk's proxy: only its host matters here
    startBaresip = Run.startBaresip  # dialling alice


def scenarioPlainFromTrunk(run, args):
    run.startLinkRTC()
    run.startClient("--codec", "pcmu")
    run.startBaresip(seconds=15)
    run.result["phoneRefused"] = run.waitForBaresip(r"488 ", 15)
    run.step("baresip refused")
    run.result["cdrs"] = run.cdrs()
    run.result["clientIncoming"] = len(run.client.of("incoming"))
    run.result["clientStates"] = [m.get("state") for m in run.client.of("state")]
    run.client.stop()
    run.result["ok"] = True


def scenarioPhoneCallsClient(run, args):
    baresipCall(run, args, "pcmu", "client")


def scenarioTrunkRequired(run, args):
    dialOut(run, args, "pcmu")


SCENARIOS = {
    "phone-calls-client": (InboundRun, scenarioPhoneCallsClient),
    "trunk-required": (TrunkRun, scenarioTrunkRequired),
    "plain-from-trunk": (PlainFromTrunkRun, scenarioPlainFromTrunk),
}


def main():
    parser = driverParser(SCENARIOS, deadline=50.0)
    parser.add_argument("--talk", type=float, default=4.0, help="seconds of audio")
    args = parser.parse_args()
    runClass, scenario = SCENARIOS[args.scenario]
    run = runClass(args.out)
    runScenario(run, scenario, args, run.failed, run.finish)


if __name__ == "__main__":
    main()
