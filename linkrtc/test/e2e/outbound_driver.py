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

import argparse
import json
import os
import signal
import subprocess
import sys
import tempfile
import time
import traceback

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.dirname(HERE))))

from linkrtc.test.e2e.bridge_driver import CLIENT_TONE, PHONE_TONE, RTCClient, Run  # noqa: E402
from linkrtc.test.e2e.harness import LinkRTCProcess, freePort  # noqa: E402
from linkrtc.test.e2e.rtcclient import writeTone  # noqa: E402

TRUNK = """
[[trunk]]
name = "baresip"
proxy = "sip:127.0.0.1:{port}"
register = false
"""


class OutboundRun(Run):
    """A L{Run} where baresip is the trunk and the client dials."""

    def startBaresip(self, seconds=45):
        """baresip listening on its own port, answering by itself; no dialling."""
        self.recordings = tempfile.mkdtemp(prefix="bsrec-", dir="/tmp")
        config = os.path.join(self.out, "baresip")
        os.makedirs(config)
        tone = os.path.join(self.out, "phone440.wav")
        writeTone(tone, PHONE_TONE, 60, 8000)  # longer than the call
        self.consPort = freePort(both=True)
        self.baresipPort = freePort(both=True)
        with open(os.path.join(config, "config"), "w") as f:
            f.write(
                f"sip_listen 127.0.0.1:{self.baresipPort}\n"
                "net_interface 127.0.0.1\n"
                f"audio_source aufile,{tone}\n"
                "audio_player alsa,null\naudio_alert alsa,null\n"
                "ausrc_srate 8000\nauplay_srate 8000\nausrc_channels 1\nauplay_channels 1\n"
                "module_path /usr/lib/baresip/modules\n"
                "module g711.so\nmodule alsa.so\nmodule aufile.so\nmodule sndfile.so\n"
                "module cons.so\n"
                "module_tmp account.so\n"
                "module_app menu.so\n"
                f"snd_path {self.recordings}\n"
                f"cons_listen 127.0.0.1:{self.consPort}\n"
            )
        with open(os.path.join(config, "accounts"), "w") as f:
            f.write("<sip:bob@127.0.0.1>;regint=0;audio_codecs=pcmu;answermode=auto\n")
        self.baresipLog = os.path.join(self.out, "baresip.log")
        self.baresip = subprocess.Popen(
            ["baresip", "-v", "-f", config, "-t", str(seconds)],
            stdin=subprocess.DEVNULL, stdout=open(self.baresipLog, "w"),
            stderr=subprocess.STDOUT, cwd=self.out,
        )
        if not self.waitForBaresip(r"baresip is ready|Listening on", 10):
            raise AssertionError("baresip did not start:\n" + self.baresipText()[-2000:])
        self.step("baresip listening", port=self.baresipPort)

    def startLinkRTC(self):
        self.cdr = os.path.join(self.out, "cdr.jsonl")
        trunks = os.path.join(self.out, "trunks.toml")
        with open(trunks, "w") as f:
            f.write(TRUNK.format(port=self.baresipPort))
        self.linkrtc = LinkRTCProcess("--media", "bridge", "--ice-address", "127.0.0.1",
                                      "--config", trunks, "--cdr", self.cdr)
        self.linkrtc.start(timeout=20)
        self.step("linkrtc started", sip=self.linkrtc.sipPort, http=self.linkrtc.httpPort)

    def startClient(self, *args):
        self.clientLog = open(os.path.join(self.out, "rtcclient.log"), "w")
        self.client = RTCClient(self.linkrtc, "alice", "--tone", str(CLIENT_TONE),
                                "--record", os.path.join(self.out, "client-heard.wav"),
                                "--lifetime", "50", *args, log=self.clientLog)
        self.client.waitFor("registered", 15)
        self.step("client registered, dialling")


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
    parser = argparse.ArgumentParser()
    parser.add_argument("--scenario", choices=sorted(SCENARIOS), required=True)
    parser.add_argument("--out", required=True)
    parser.add_argument("--talk", type=float, default=4.0, help="seconds of audio")
    parser.add_argument("--deadline", type=float, default=50.0,
                        help="seconds before the scenario is abandoned (then cleaned up)")
    args = parser.parse_args()
    os.makedirs(args.out, exist_ok=True)
    subprocess.run(["ip", "link", "set", "lo", "up"], check=True)

    def overtime(signum, frame):
        raise TimeoutError(f"the scenario ran over {args.deadline} s")

    signal.signal(signal.SIGALRM, overtime)
    signal.alarm(int(args.deadline))
    run = OutboundRun(args.out)
    run.result["scenario"] = args.scenario
    try:
        SCENARIOS[args.scenario](run, args)
    except BaseException as e:
        run.result["ok"] = False
        run.result["errors"].append("".join(traceback.format_exception(e))[-4000:])
        if run.client is not None:
            run.result["clientMessages"] = run.client.messages[-40:]
        if run.baresip is not None:
            run.result["baresipLog"] = run.baresipText()[-3000:]
    finally:
        signal.alarm(0)
        try:
            run.cleanup()
        except Exception as e:
            run.result["errors"].append("cleanup: " + "".join(traceback.format_exception(e)))
        run.step("done")
        print(json.dumps(run.result), flush=True)


if __name__ == "__main__":
    main()
