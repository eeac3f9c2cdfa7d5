"""
Drive call transfers through a running C{twistd -n linkrtc --media bridge}
and print what happened as one JSON line (the last line of stdout).

Two aiortc clients (C{rtcclient.py}, answering by themselves): alice
sends 880 Hz, carol 660 Hz; baresip sends 440 Hz and records; SIPp sends
no audio. Each side's recording is checked by FFT in the test.

Scenarios:
  - C{phone-transfers}: baresip calls alice; baresip blind-transfers the
    call to carol (C{/transfer sip:carol@LINKRTC}, REFER); LinkRTC rings
    carol, NOTIFYs baresip and releases it; alice and carol talk; carol
    hangs up and alice hears C{dropped}. Alice's recording after the
    transfer must be carol's tone, carol's alice's.
  - C{client-transfers}: baresip calls alice; alice sends
    C{{"type":"transfer","to":"carol"}}; LinkRTC REFERs baresip, which
    calls carol; its NOTIFY 200 ends alice's call; baresip and carol
    talk; carol hangs up.
  - C{sipp-replaces}: SIPp calls alice (the dialog to replace); a second
    SIPp sends an INVITE with a Replaces naming no dialog (481,
    C{uac_replaces_unknown.xml}), a third one naming alice's call
    (C{uac_replaces.xml}): it gets 200 and streams 440 Hz, the first
    dialog gets BYE, alice hears the tone; the new dialog's BYE ends
    alice's call.
  - C{sipp-attended}: SIPp (the transferor) calls carol
    (C{uac_attended_target.xml}), then alice (C{uac_attended_refer.xml}),
    and REFERs the alice call with Replaces naming the carol call;
    LinkRTC joins alice and carol and sends BYE to both SIPp dialogs.

Run inside a network namespace that has only loopback (the test does
C{unshare --net}); the script brings C{lo} up.
"""

import os
import re
import subprocess
import sys
import time
import wave

import numpy

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.dirname(HERE))))

from linkrtc.test.e2e.bridge_driver import PHONE_TONE, RTCClient, Run, writeUlawTone  # noqa: E402
from linkrtc.test.e2e.drivers import analyseSamples, driverParser, runScenario  # noqa: E402
from linkrtc.test.e2e.harness import SCENARIOS, freePort  # noqa: E402

#: Hz carol sends (alice sends bridge_driver's 880, the phone 440).
TARGET_TONE = 660.0


def analyseTail(path, seconds):
    """@return: L{analyseSamples} of the last C{seconds} of a WAV (mixed to mono)."""
    if not os.path.exists(path):
        return None
    with wave.open(path, "rb") as w:
        rate, channels, width = w.getframerate(), w.getnchannels(), w.getsampwidth()
        data = w.readframes(w.getnframes())
    samples = numpy.frombuffer(data, dtype={2: "<i2", 4: "<i4"}[width]).astype(float)
    samples /= float(2 ** (8 * width - 1))
    if channels > 1:
        samples = samples.reshape(-1, channels).mean(axis=1)
    return analyseSamples(samples[-int(seconds * rate):], rate)


class TransferRun(Run):
    """A L{Run} with a second client, carol."""

    def __init__(self, out):
        super().__init__(out)
        self.carol = None

    def startCarol(self):
        self.carolLog = open(os.path.join(self.out, "carol.log"), "w")
        self.carol = RTCClient(self.linkrtc, "carol", "--tone", str(TARGET_TONE), "--codec",
                               "pcmu", "--record", os.path.join(self.out, "carol-heard.wav"),
                               "--lifetime", "50", log=self.carolLog)
        self.carol.waitFor("registered", 15)
        self.step("carol registered")

    def finishCarol(self):
        heard = self.carol.waitFor("heard", 15)
        self.result["carolHeard"] = heard
        self.result["carolStates"] = [m.get("state") for m in self.carol.of("state")]
        self.result["carolErrors"] = self.carol.of("client-error") + self.carol.of("error")
        self.carol.stop()

    def failed(self):
        super().failed()
        if self.carol is not None:
            self.result["carolMessages"] = [
                m for m in self.carol.messages if m.get("type") != "incoming"][-40:]
        if self.baresip is not None:
            self.result["baresipLog"] = self.baresipText()[-3000:]

    def cleanup(self):
        if self.carol is not None:
            self.carol.stop()
        super().cleanup()


def baresipCallsAlice(run):
    run.startLinkRTC()
    run.startClient("--codec", "pcmu")
    run.startCarol()
    run.startBaresip(seconds=45)
    run.client.waitFor(lambda m: m.get("state") == "confirmed", 20)
    run.step("alice confirmed")


def carolHangsUp(run, args):
    time.sleep(args.talk)
    run.carol.command({"type": "hangup"})
    run.step("carol hangup sent")
    run.carol.waitFor(lambda m: m.get("state") == "dropped", 10)


def scenarioPhoneTransfers(run, args):
    baresipCallsAlice(run)
    time.sleep(2.0)
    run.baresipCommand(f"/transfer sip:carol@127.0.0.1:{run.linkrtc.sipPort}\n")
    run.carol.waitFor(lambda m: m.get("state") == "confirmed", 20)
    run.step("carol confirmed")
    run.result["phoneEnded"] = run.waitForBaresip(r"terminated", 10)
    carolHangsUp(run, args)
    run.client.waitFor(lambda m: m.get("state") == "dropped", 10)
    run.step("alice saw dropped")
    run.finishClient()
    run.finishCarol()
    run.result["aliceHeardAfter"] = analyseTail(os.path.join(run.out, "client-heard.wav"),
                                                args.talk - 1.0)
    run.finishBaresip()
    run.result["cdrs"] = run.cdrs(count=2)
    run.result["ok"] = True


def scenarioClientTransfers(run, args):
    baresipCallsAlice(run)
    time.sleep(2.0)
    run.client.command({"type": "transfer", "to": "carol"})
    run.step("alice transfer sent")
    run.carol.waitFor(lambda m: m.get("state") == "confirmed", 20)
    run.step("carol confirmed")
    run.client.waitFor(lambda m: m.get("state") == "dropped", 10)
    run.step("alice saw dropped")
    carolHangsUp(run, args)
    run.result["phoneEnded"] = run.waitForBaresip(r"terminated", 10)
    run.result["aliceTransfer"] = run.client.of("transfer")
    run.finishClient()
    run.finishCarol()
    run.finishBaresip()
    run.result["cdrs"] = run.cdrs(count=2)
    run.result["ok"] = True


def sipp(run, scenario, logName, *args, rtpFile=None):
    """
    Start SIPp on C{scenario} (from the scenarios directory) towards
    LinkRTC; C{rtpFile} replaces C{@RTP_FILE@} in it.
    """
    log = open(os.path.join(run.out, logName), "w")
    path = os.path.join(SCENARIOS, scenario)
    if rtpFile is not None:
        with open(path) as f:
            text = f.read().replace("@RTP_FILE@", rtpFile)
        path = run.peerPath(scenario)
        with open(path, "w") as f:
            f.write(text)
    return subprocess.Popen(
        ["sipp", f"127.0.0.1:{run.linkrtc.sipPort}", "-sf", path,
         "-i", "127.0.0.1", "-p", str(freePort(both=True)), "-mi", "127.0.0.1",
         "-mp", str(freePort()), "-m", "1", "-nostdin", "-timeout", "40s", "-timeout_error",
         *args],
        stdout=log, stderr=subprocess.STDOUT, cwd=run.peerPath("."))


def sippCall(run, client, callIdPrefix):
    """
    SIPp (C{uac_attended_target.xml}) calls C{client}, which answers.

    @return: the SIPp process and LinkRTC's To tag of that dialog (its
        Call-ID is C{callIdPrefix}-1, SIPp's tag C{ytag1}).
    """
    os.makedirs(run.peerPath("."), exist_ok=True)
    process = sipp(run, "uac_attended_target.xml", f"sipp-{client}.log", "-s", client,
                   "-cid_str", callIdPrefix + "-%u", "-trace_msg")
    peer = run.carol if client == "carol" else run.client
    peer.waitFor(lambda m: m.get("state") == "confirmed", 20)
    run.step(f"{client} confirmed")
    totag = None
    deadline = time.monotonic() + 10
    while totag is None and time.monotonic() < deadline:
        for name in os.listdir(run.peerPath(".")):
            if name.endswith("_messages.log"):
                with open(run.peerPath(name), errors="replace") as f:
                    found = re.search(r"SIP/2.0 200 OK.*?\n\s*To:[^\n]*;tag=([^;>\s]+)",
                                      f.read(), re.S)
                totag = found.group(1) if found else None
        time.sleep(0.1)
    run.step("dialog", totag=totag)
    return process, totag


def scenarioSIPpReplaces(run, args):
    run.startLinkRTC()
    run.startClient("--codec", "pcmu")
    first, totag = sippCall(run, "alice", "replaced")
    unknown = sipp(run, "uac_replaces_unknown.xml", "sipp-unknown.log", "-s", "alice",
                   "-set", "rcid", "replaced-1", "-set", "rtotag", "nosuchtag",
                   "-set", "rfromtag", "ytag1")
    run.result["sippUnknownExit"] = unknown.wait(20)
    stream = run.peerPath("tone440.ulaw")
    writeUlawTone(stream, PHONE_TONE, 2.0)
    replacer = sipp(run, "uac_replaces.xml", "sipp-replaces.log", "-s", "alice",
                    "-set", "rcid", "replaced-1", "-set", "rtotag", totag,
                    "-set", "rfromtag", "ytag1", "-d", str(int(args.talk * 1000)),
                    rtpFile=stream)
    run.result["sippReplacedExit"] = first.wait(20)
    run.step("first dialog released")
    run.result["sippReplacesExit"] = replacer.wait(30)
    run.step("replacing dialog hung up")
    for name in ("sipp-alice.log", "sipp-unknown.log", "sipp-replaces.log"):
        with open(os.path.join(run.out, name), errors="replace") as f:
            run.result[name] = f.read()[-2000:]
    run.client.waitFor(lambda m: m.get("state") == "dropped", 10)
    run.step("alice saw dropped")
    run.finishClient()
    run.result["cdrs"] = run.cdrs(count=1)
    run.result["ok"] = True


def scenarioSIPpAttended(run, args):
    run.startLinkRTC()
    run.startClient("--codec", "pcmu")
    run.startCarol()
    target, totag = sippCall(run, "carol", "attended-y")
    refer = sipp(run, "uac_attended_refer.xml", "sipp-refer.log", "-s", "alice",
                 "-set", "ycid", "attended-y-1", "-set", "ytotag", totag,
                 "-set", "yfromtag", "ytag1")
    run.client.waitFor(lambda m: m.get("state") == "confirmed", 20)
    run.step("alice confirmed")
    run.result["sippReferExit"] = refer.wait(30)
    run.result["sippTargetExit"] = target.wait(30)
    run.step("sipp done")
    for name in ("sipp-carol.log", "sipp-refer.log"):
        with open(os.path.join(run.out, name), errors="replace") as f:
            run.result[name] = f.read()[-2000:]
    carolHangsUp(run, args)
    run.client.waitFor(lambda m: m.get("state") == "dropped", 10)
    run.step("alice saw dropped")
    run.finishClient()
    run.finishCarol()
    run.result["cdrs"] = run.cdrs(count=2)
    run.result["ok"] = True


SCENARIOS_RUN = {
    "phone-transfers": scenarioPhoneTransfers,
    "client-transfers": scenarioClientTransfers,
    "sipp-attended": scenarioSIPpAttended,
    "sipp-replaces": scenarioSIPpReplaces,
}


def main():
    parser = driverParser(SCENARIOS_RUN, deadline=80.0)
    parser.add_argument("--talk", type=float, default=4.0, help="seconds of audio after")
    args = parser.parse_args()
    run = TransferRun(args.out)
    runScenario(run, SCENARIOS_RUN[args.scenario], args, run.failed, run.finish)


if __name__ == "__main__":
    main()
