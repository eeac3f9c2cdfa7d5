"""
Drive one outbound bridged call (client -> LinkRTC -> SIP trunk) through a
running C{twistd -n linkrtc --media bridge --config TRUNKS.toml} and print
what happened as one JSON line (the last line of stdout). The trunk's
proxy is baresip itself (C{sip:127.0.0.1:PORT}, no registration, no
credentials); baresip answers by itself (C{answermode=auto}), plays a
440 Hz WAV and records what it hears. The WebRTC client
(C{rtcclient.py --dial bob}) offers PCMU with an 880 Hz tone.

Run inside a network namespace that has only loopback
(C{test_outbound_bridge} does C{unshare --net}); the script brings C{lo}
up:

    unshare --net python outbound_driver.py --scenario client-hangup --out DIR

Scenarios:
  - C{client-hangup}: the client calls bob offering PCMU, talks C{--talk}
    seconds, then sends C{hangup} (LinkRTC sends BYE to baresip). PCMU on
    both legs: LinkRTC relays packets.
  - C{opus}: the same with the client offering Opus only: LinkRTC
    transcodes (Opus <-> PCMU).

Every process is bounded and killed at the end (see C{bridge_driver.py},
whose L{Run} this reuses).
"""

import os
import sys
import time

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.dirname(HERE))))

from linkrtc.test.e2e.bridge_driver import Run  # noqa: E402
from linkrtc.test.e2e.drivers import driverParser, runScenario  # noqa: E402
from linkrtc.test.e2e.harness import LinkRTCProcess, freePort  # noqa: E402

TRUNK = """
[[trunk]]
name = "baresip"
proxy = "sip:127.0.0.1:{port}"
register = false
"""


class OutboundRun(Run):
    """A L{Run} where baresip is the trunk and the client dials."""

    CLIENT_REGISTERED = "client registered, dialling"

    #: LinkRTC's trunk table, C{{port}} standing for baresip's port.
    trunkConfig = TRUNK

    def startBaresip(self, seconds=45):
        """baresip listening on its own port, answering by itself; no dialling."""
        self.baresipPort = freePort(both=True)
        config = self.configureBaresip(self.baresipPort, ";answermode=auto")
        self.spawnBaresip(config, "-t", str(seconds))
        if not self.waitForBaresip(r"baresip is ready|Listening on", 10):
            raise AssertionError("baresip did not start:\n" + self.baresipText()[-2000:])
        self.step("baresip listening", port=self.baresipPort)

    def startLinkRTC(self):
        self.cdr = os.path.join(self.out, "cdr.jsonl")
        trunks = os.path.join(self.out, "trunks.toml")
        with open(trunks, "w") as f:
            f.write(self.trunkConfig.format(port=self.baresipPort))
        self.linkrtc = LinkRTCProcess("--media", "bridge", "--ice-address", "127.0.0.1",
                                      "--config", trunks, "--cdr", self.cdr)
        self.linkrtc.start(timeout=20)
        self.step("linkrtc started", sip=self.linkrtc.sipPort, http=self.linkrtc.httpPort)

    def failed(self):
        """After an error: the client's messages so far and baresip's log."""
        if self.client is not None:
            self.result["clientMessages"] = self.client.messages[-40:]
        if self.baresip is not None:
            self.result["baresipLog"] = self.baresipText()[-3000:]


def dialOut(run, args, codec):
    """The client calls bob; audio both ways; the client hangs up."""
    run.startBaresip()
    run.startLinkRTC()
    run.startClient("--codec", codec, "--dial", "bob")
    calling = run.client.waitFor("calling", 10)
    run.result["calling"] = calling
    run.client.waitFor("answer", 20)
    run.step("answer")
    run.client.waitFor(lambda m: m.get("state") == "confirmed", 20)
    run.step("confirmed")
    time.sleep(args.talk)
    run.client.command({"type": "hangup"})
    run.step("client hangup sent")
    run.client.waitFor(lambda m: m.get("state") == "dropped", 10)
    run.step("client saw dropped")
    run.result["phoneEnded"] = run.waitForBaresip(r"Call with \S+ terminated", 5)
    run.result["clientAnswers"] = len(run.client.of("answer"))
    run.finishClient()
    run.finishBaresip()
    run.result["cdrs"] = run.cdrs()
    run.result["ok"] = True


def scenarioClientHangup(run, args):
    dialOut(run, args, "pcmu")


def scenarioOpus(run, args):
    dialOut(run, args, "opus")


SCENARIOS = {
    "client-hangup": scenarioClientHangup,
    "opus": scenarioOpus,
}


def main():
    parser = driverParser(SCENARIOS, deadline=50.0)
    parser.add_argument("--talk", type=float, default=4.0, help="seconds of audio")
    args = parser.parse_args()
    run = OutboundRun(args.out)
    runScenario(run, SCENARIOS[args.scenario], args, run.failed, run.finish)


if __name__ == "__main__":
    main()
