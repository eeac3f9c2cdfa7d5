"""
Drive calls to a user with several devices, and SIP-to-SIP calls, through
a running C{twistd -n linkrtc --media bridge --config USERS.toml}
(C{[sip-users]} bob and carol), and print what happened as one JSON line
(the last line of stdout).

The caller is baresip registered as carol (digest, 440 Hz, records what
it hears), dialling C{sip:bob@LINKRTC}. bob's devices:

  - C{phone-calls-phone}: baresip registered as bob (880 Hz, answers by
    itself): a SIP-to-SIP call through the bridge (RTP relayed between
    the two SIP legs); carol hangs up.
  - C{phone-calls-phone-passthrough}: the same with C{--media
    passthrough}: the phones' SDP is passed through, RTP flows between
    them.
  - C{fork-phone-wins}: baresip as bob (880 Hz, answers by itself) and a
    SIPp device registered as bob that only rings (180) and expects a
    CANCEL with C{Reason: SIP;cause=200;text="Call completed
    elsewhere"} (SIPp's exit status says whether it came).
  - C{fork-client-wins}: the aiortc client C{rtcclient.py} logged in as
    bob (880 Hz, answers) and the same SIPp device.

The other way round, C{client-calls-forked-phone}: the aiortc client
alice (880 Hz) calls C{bob} by name; bob is the same SIPp device and a
baresip registered as bob (440 Hz, answers by itself): both get the
INVITE, baresip answers, the SIPp device must get the CANCEL with the
Reason; the client hangs up.

The SIPp device registers with one SIPp run (REGISTER, 401, REGISTER
with bob's credentials, 200) and is then played by a second SIPp run, a
UAS on the same port (LinkRTC reaches a contact at the address its
REGISTER came from).

Run inside a network namespace that has only loopback
(C{test_fork_e2e} does C{unshare --net}); the script brings C{lo} up.
"""

import os
import shutil
import subprocess
import sys
import time

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.dirname(HERE))))

from linkrtc.test.e2e.bridge_driver import RTCClient, stopProcess  # noqa: E402
from linkrtc.test.e2e.drivers import driverParser, runScenario  # noqa: E402
from linkrtc.test.e2e.harness import freePort  # noqa: E402
from linkrtc.test.e2e.registrar_driver import (  # noqa: E402
    CAROL_PASSWORD,
    PASSWORD,
    RegistrarRun,
)

CALLER_TONE = 440.0  # Hz, carol's baresip
CALLEE_TONE = 880.0  # Hz, bob's answering device

#: One REGISTER of bob's SIPp device: C{%(cseq)d}, and C{%(auth)s} for a
#: line with SIPp's C{[authentication]} keyword, or nothing.
REGISTER_MESSAGE = """
  <send retrans="500">
    <![CDATA[
      REGISTER sip:[remote_ip]:[remote_port] SIP/2.0
      Via: SIP/2.0/[transport] [local_ip]:[local_port];branch=[branch];rport
      Max-Forwards: 70
      From: <sip:bob@[remote_ip]:[remote_port]>;tag=[pid]SIPpTag00[call_number]
      To: <sip:bob@[remote_ip]:[remote_port]>
      Call-ID: [call_id]
      CSeq: %(cseq)d REGISTER
      Contact: <sip:bob@[local_ip]:[local_port]>
      Expires: 120%(auth)s
      Content-Length: 0

    ]]>
  </send>"""

REGISTER_XML = """<?xml version="1.0" encoding="ISO-8859-1" ?>
<!DOCTYPE scenario SYSTEM "sipp.dtd">
<scenario name="bob's second device registers (digest)">%s
  <recv response="401" auth="true"/>%s
  <recv response="200"/>
</scenario>
""" % (REGISTER_MESSAGE % {"cseq": 1, "auth": ""},
       REGISTER_MESSAGE % {"cseq": 2, "auth": "\n      [authentication]"})

RING_ONLY_XML = """<?xml version="1.0" encoding="ISO-8859-1" ?>
<!DOCTYPE scenario SYSTEM "sipp.dtd">
<scenario name="bob's second device rings and is CANCELed: completed elsewhere">
  <recv request="INVITE">
    <action>
      <ereg regexp="[0-9]+" search_in="hdr" header="CSeq:" check_it="true" assign_to="cseq"/>
    </action>
  </recv>
  <send>
    <![CDATA[
      SIP/2.0 180 Ringing
      [last_Via:]
      [last_From:]
      [last_To:];tag=[pid]SIPpTag01[call_number]
      [last_Call-ID:]
      [last_CSeq:]
      Contact: <sip:bob@[local_ip]:[local_port]>
      Content-Length: 0

    ]]>
  </send>
  <recv request="CANCEL">
    <action>
      <ereg regexp="SIP;cause=200;text=&quot;Call completed elsewhere&quot;" search_in="hdr"
            header="Reason:" check_it="true" assign_to="reason"/>
    </action>
  </recv>
  <send>
    <![CDATA[
      SIP/2.0 200 OK
      [last_Via:]
      [last_From:]
      [last_To:];tag=[pid]SIPpTag01[call_number]
      [last_Call-ID:]
      [last_CSeq:]
      X-Reason-Seen: [$reason]
      Content-Length: 0

    ]]>
  </send>
  <send>
    <![CDATA[
      SIP/2.0 487 Request Terminated
      [last_Via:]
      [last_From:]
      [last_To:];tag=[pid]SIPpTag01[call_number]
      [last_Call-ID:]
      CSeq: [$cseq] INVITE
      Content-Length: 0

    ]]>
  </send>
  <recv request="ACK"/>
</scenario>
"""


class Device(RegistrarRun):
    """Another baresip of the run (its own files), on the run's LinkRTC."""

    def __init__(self, run, name):
        out = os.path.join(run.out, name)
        os.makedirs(out, exist_ok=True)
        super().__init__(out)
        self.linkrtc = run.linkrtc

    def stop(self):
        stopProcess(self.baresip)
        if self.peerFiles:
            shutil.rmtree(self.peerFiles, ignore_errors=True)


class ForkRun(RegistrarRun):
    """A L{RegistrarRun} with carol's baresip as the caller and bob's devices."""

    def __init__(self, out):
        super().__init__(out)
        self.bob = None
        self.device = None

    def startBob(self):
        """bob's baresip: 880 Hz, answers by itself."""
        self.bob = Device(self, "bob")
        self.bob.startRegisteredBaresip(seconds=60, tone=CALLEE_TONE)
        self.step("bob's baresip registered")

    def startRingingDevice(self):
        """The SIPp device of bob: registers, then waits for an INVITE to ring and be CANCELed."""
        port = freePort(both=True)
        register = self.peerPath("register.xml")
        ringOnly = self.peerPath("ring-only.xml")
        for path, text in ((register, REGISTER_XML), (ringOnly, RING_ONLY_XML)):
            with open(path, "w") as f:
                f.write(text)
        common = ["-i", "127.0.0.1", "-p", str(port), "-m", "1", "-nostdin"]
        registered = subprocess.run(
            ["sipp", f"127.0.0.1:{self.linkrtc.sipPort}", "-sf", register, "-au", "bob",
             "-ap", PASSWORD, *common, "-timeout", "15s", "-timeout_error"],
            capture_output=True, text=True, timeout=30, cwd=self.peerFiles)
        self.result["deviceRegisterExit"] = registered.returncode
        if registered.returncode != 0:
            raise AssertionError("the SIPp device did not register:\n"
                                 + (registered.stdout + registered.stderr)[-2000:])
        self.result["devicePort"] = port
        self.step("SIPp device registered", port=port)
        self.deviceLog = os.path.join(self.out, "sipp-device.log")
        self.device = subprocess.Popen(
            ["sipp", "-sf", ringOnly, *common, "-timeout", "40s", "-timeout_error",
             "-trace_err", "-trace_msg"],
            stdout=open(self.deviceLog, "w"), stderr=subprocess.STDOUT, cwd=self.peerFiles)
        time.sleep(0.5)  # SIPp binds its port

    def finishDevice(self):
        """The SIPp device's exit status (0: it was rung and CANCELed with the Reason)."""
        try:
            self.result["deviceExit"] = self.device.wait(10)
        except subprocess.TimeoutExpired:
            self.result["deviceExit"] = None
        with open(self.deviceLog, errors="replace") as f:
            self.result["deviceLog"] = f.read()[-2000:]
        messages = [name for name in os.listdir(self.peerFiles) if name.endswith("_messages.log")]
        text = ""
        for name in messages:
            with open(os.path.join(self.peerFiles, name), errors="replace") as f:
                text += f.read()
        self.result["deviceMessages"] = text[-6000:]
        self.result["deviceSawReason"] = \
            'Reason: SIP;cause=200;text="Call completed elsewhere"' in text

    def dialBob(self):
        """carol's baresip (440 Hz) registers and dials bob."""
        self.startRegisteredBaresip(
            "-e", f"/dial sip:bob@127.0.0.1:{self.linkrtc.sipPort}", seconds=60, user="carol",
            password=CAROL_PASSWORD, tone=CALLER_TONE)
        self.step("carol dialling bob")

    def carolHangsUp(self, args):
        """After the talk, carol hangs up; both baresips' recordings analysed."""
        if not self.waitForBaresip(r"Call established", 20):
            raise AssertionError("carol's call was not established:\n"
                                 + self.baresipText()[-2000:])
        self.step("carol's call established")
        time.sleep(args.talk)
        self.baresipCommand("/hangup\n")
        self.result["phoneEnded"] = self.waitForBaresip(r"terminated", 5)
        if self.bob is not None:
            self.result["bobEnded"] = self.bob.waitForBaresip(r"terminated", 5)
            self.bob.finishBaresip()
            self.result["bobHeard"] = self.bob.result.get("phoneHeard")
            self.result["bobLog"] = self.bob.result.get("baresipLog", "")[-2000:]
        self.finishPhone()

    def cleanup(self):
        stopProcess(self.device)
        if self.bob is not None:
            self.bob.stop()
        super().cleanup()


def scenarioPhoneCallsPhone(run, args, media="bridge"):
    run.startLinkRTC(media=media)
    run.startBob()
    run.dialBob()
    run.carolHangsUp(args)
    run.result["ok"] = True


def scenarioForkPhoneWins(run, args):
    run.startLinkRTC()
    run.startRingingDevice()
    run.startBob()
    run.dialBob()
    run.carolHangsUp(args)
    run.finishDevice()
    run.result["ok"] = True


def scenarioForkClientWins(run, args):
    run.startLinkRTC()
    run.startRingingDevice()
    run.clientLog = open(os.path.join(run.out, "rtcclient.log"), "w")
    run.client = RTCClient(run.linkrtc, "bob", "--tone", str(CALLEE_TONE), "--codec", "pcmu",
                           "--record", os.path.join(run.out, "client-heard.wav"),
                           "--lifetime", "50", log=run.clientLog)
    run.client.waitFor("registered", 15)
    run.step("client bob registered")
    run.dialBob()
    run.client.waitFor(lambda m: m.get("state") == "confirmed", 20)
    run.step("client confirmed")
    time.sleep(args.talk)
    run.baresipCommand("/hangup\n")
    run.client.waitFor(lambda m: m.get("state") == "dropped", 10)
    run.step("client saw dropped")
    run.result["phoneEnded"] = run.waitForBaresip(r"terminated", 5)
    run.finishClient()
    run.finishPhone()
    run.finishDevice()
    run.result["ok"] = True


def scenarioClientCallsForkedPhone(run, args):
    run.startLinkRTC()
    run.startRingingDevice()
    run.startRegisteredBaresip(seconds=60)
    run.startClient("--codec", "pcmu", "--dial", "bob")
    run.result["calling"] = run.client.waitFor("calling", 10)
    run.client.waitFor("answer", 20)
    run.step("answer")
    run.talkAndHangUp(args)
    run.finishDevice()


SCENARIOS = {
    "phone-calls-phone": scenarioPhoneCallsPhone,
    "phone-calls-phone-passthrough":
        lambda run, args: scenarioPhoneCallsPhone(run, args, media="passthrough"),
    "fork-phone-wins": scenarioForkPhoneWins,
    "fork-client-wins": scenarioForkClientWins,
    "client-calls-forked-phone": scenarioClientCallsForkedPhone,
}


def main():
    parser = driverParser(SCENARIOS, deadline=80.0)
    parser.add_argument("--talk", type=float, default=4.0, help="seconds of audio")
    args = parser.parse_args()
    run = ForkRun(args.out)
    runScenario(run, SCENARIOS[args.scenario], args, run.failed, run.finish)


if __name__ == "__main__":
    main()
