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
  - C{phone-holds}: bob's one device is a SIPp phone (L{HOLD_XML}): it
    answers, streams 880 Hz (C{rtp_stream}), puts the call on hold with a
    re-INVITE C{a=sendonly} (its scenario fails unless the 200 has
    C{a=recvonly}), resumes with C{a=sendrecv} (unless C{a=sendrecv}
    comes back, it fails) and answers carol's BYE; carol hangs up a few
    seconds after LinkRTC logged the resume on her side. (baresip's
    recording of what carol hears stops at the hold's re-INVITE, which
    restarts its player: the audio after the resume is seen in the CDR's
    RTP counts, not in her recording.)

C{offerless-calls-phone}: the caller is SIPp (C{scenarios/uac_offerless.xml})
sending an offerless INVITE (RFC 3261 §13.2.1) for bob, a baresip (880
Hz, answers by itself): the 200 must carry LinkRTC's offer, SIPp's ACK
carries the answer; SIPp streams 440 Hz (C{rtp_stream}) and hangs up.
C{offerless-calls-phone-passthrough}: the same with C{--media
passthrough}: baresip's offer goes to SIPp, SIPp's answer (in its ACK)
names the port of an L{RTPRecorder}, which records what baresip sends.

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
import socket
import subprocess
import sys
import threading
import time

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.dirname(HERE))))

from linkrtc.media.actions.pcm import ulawDecode  # noqa: E402
from linkrtc.test.e2e.bridge_driver import RTCClient, stopProcess, writeUlawTone  # noqa: E402
from linkrtc.test.e2e.drivers import analyseSamples, driverParser, runScenario  # noqa: E402
from linkrtc.test.e2e.harness import SCENARIOS as SIPP_SCENARIOS  # noqa: E402
from linkrtc.test.e2e.harness import freePort  # noqa: E402
from linkrtc.test.e2e.registrar_driver import (  # noqa: E402
    CAROL_PASSWORD,
    PASSWORD,
    RegistrarRun,
)

CALLER_TONE = 440.0  # Hz, carol's baresip
CALLEE_TONE = 880.0  # Hz, bob's answering device

#: Seconds of talk (C{--talk}'s default).
TALK = 4.0

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


#: bob's SIPp phone in C{phone-holds}: answers (PCMU), streams @RTP_FILE@,
#: holds with a=sendonly and resumes with a=sendrecv (each 200's SDP
#: checked), then answers the BYE. Its own re-INVITEs carry From/To from
#: the INVITE, swapped, and go to the INVITE's Contact ([next_url]).
HOLD_XML = """<?xml version="1.0" encoding="ISO-8859-1" ?>
<!DOCTYPE scenario SYSTEM "sipp.dtd">
<scenario name="bob's SIPp phone answers, holds, resumes, and carol hangs up">
  <recv request="INVITE" rrs="true">
    <action>
      <ereg regexp=".*" search_in="hdr" header="From:" assign_to="caller"/>
      <ereg regexp=".*" search_in="hdr" header="To:" assign_to="callee"/>
      <ereg regexp="m=audio [0-9]+ RTP/AVP 0" search_in="body" check_it="true"
            assign_to="pcmu"/>
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
      Contact: <sip:bob@[local_ip]:[local_port]>
      Content-Type: application/sdp
      Content-Length: [len]

      v=0
      o=bob 1 1 IN IP[local_ip_type] [local_ip]
      s=-
      c=IN IP[media_ip_type] [media_ip]
      t=0 0
      m=audio [media_port] RTP/AVP 0 101
      a=rtpmap:0 PCMU/8000
      a=rtpmap:101 telephone-event/8000
      a=sendrecv

    ]]>
  </send>
  <recv request="ACK"/>
  <nop><action><exec rtp_stream="@RTP_FILE@,-1,0"/></action></nop>
  <pause milliseconds="@TALK_MS@"/>
@REINVITE_HOLD@
  <recv response="100" optional="true"/>
  <recv response="200">
    <action>
      <ereg regexp="a=recvonly" search_in="body" check_it="true" assign_to="held"/>
    </action>
  </recv>
@ACK_1@
  <pause milliseconds="@HOLD_MS@"/>
@REINVITE_RESUME@
  <recv response="100" optional="true"/>
  <recv response="200">
    <action>
      <ereg regexp="a=sendrecv" search_in="body" check_it="true" assign_to="resumed"/>
    </action>
  </recv>
@ACK_2@
  <recv request="BYE"/>
  <nop><action><exec rtp_stream="pause"/></action></nop>
  <send>
    <![CDATA[
      SIP/2.0 200 OK
      [last_Via:]
      [last_From:]
      [last_To:]
      [last_Call-ID:]
      [last_CSeq:]
      Content-Length: 0

    ]]>
  </send>
  <Reference variables="caller,callee,pcmu,held,resumed"/>
</scenario>
"""

_REINVITE = """  <send retrans="500">
    <![CDATA[
      INVITE [next_url] SIP/2.0
      Via: SIP/2.0/[transport] [local_ip]:[local_port];branch=[branch];rport
      Max-Forwards: 70
      From:[$callee];tag=[pid]SIPpTag01[call_number]
      To:[$caller]
      Call-ID: [call_id]
      CSeq: %(cseq)d INVITE
      Contact: <sip:bob@[local_ip]:[local_port]>
      Content-Type: application/sdp
      Content-Length: [len]

      v=0
      o=bob 1 %(version)d IN IP[local_ip_type] [local_ip]
      s=-
      c=IN IP[media_ip_type] [media_ip]
      t=0 0
      m=audio [media_port] RTP/AVP 0 101
      a=rtpmap:0 PCMU/8000
      a=rtpmap:101 telephone-event/8000
      a=%(direction)s

    ]]>
  </send>"""

_ACK = """  <send>
    <![CDATA[
      ACK [next_url] SIP/2.0
      Via: SIP/2.0/[transport] [local_ip]:[local_port];branch=[branch];rport
      Max-Forwards: 70
      From:[$callee];tag=[pid]SIPpTag01[call_number]
      To:[$caller]
      Call-ID: [call_id]
      CSeq: %(cseq)d ACK
      Content-Length: 0

    ]]>
  </send>"""

#: Seconds of talk before the hold, of hold, and after the resume (C{phone-holds}).
HOLD_TALK, HOLD_SECONDS, RESUMED_TALK = 3.0, 2.5, 3.0


def holdScenario(stream):
    """@return: L{HOLD_XML} filled in, streaming the raw mu-law file C{stream}."""
    return (HOLD_XML
            .replace("@REINVITE_HOLD@", _REINVITE % {"cseq": 1, "version": 2,
                                                     "direction": "sendonly"})
            .replace("@REINVITE_RESUME@", _REINVITE % {"cseq": 2, "version": 3,
                                                       "direction": "sendrecv"})
            .replace("@ACK_1@", _ACK % {"cseq": 1})
            .replace("@ACK_2@", _ACK % {"cseq": 2})
            .replace("@RTP_FILE@", stream)
            .replace("@TALK_MS@", str(int(HOLD_TALK * 1000)))
            .replace("@HOLD_MS@", str(int(HOLD_SECONDS * 1000))))


class RTPRecorder(threading.Thread):
    """
    A UDP port on 127.0.0.1 keeping the PCMU payloads (RTP payload type
    0) it receives, until L{heard}.

    @ivar port: its port (C{int}).
    """

    def __init__(self):
        super().__init__(daemon=True)
        self.sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        self.sock.bind(("127.0.0.1", 0))
        self.sock.settimeout(0.2)
        self.port = self.sock.getsockname()[1]
        self.payloads = []
        self.stopped = False

    def run(self):
        while not self.stopped:
            try:
                data = self.sock.recv(2048)
            except socket.timeout:
                continue
            except OSError:
                return
            if len(data) > 12 and data[1] & 0x7F == 0:
                self.payloads.append(data[12 + 4 * (data[0] & 0x0F):])

    def heard(self):
        """Stop; @return: L{analyseSamples} of what came (C{dict}), and C{packets}."""
        self.stopped = True
        self.join(2)
        self.sock.close()
        samples = ulawDecode(b"".join(self.payloads)).astype(float) / 32768.0
        return dict(analyseSamples(samples, 8000), packets=len(self.payloads))


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
        self.caller = None

    def startBob(self):
        """bob's baresip: 880 Hz, answers by itself."""
        self.bob = Device(self, "bob")
        self.bob.startRegisteredBaresip(seconds=60, tone=CALLEE_TONE)
        self.step("bob's baresip registered")

    def startRingingDevice(self, scenario=RING_ONLY_XML, media=()):
        """
        The SIPp device of bob: registers, then plays C{scenario} (by
        default: waits for an INVITE to ring and be CANCELed), with the
        SIPp options C{media} (C{-mi}, C{-mp}).
        """
        port = freePort(both=True)
        register = self.peerPath("register.xml")
        ringOnly = self.peerPath("device.xml")
        for path, text in ((register, REGISTER_XML), (ringOnly, scenario)):
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
            ["sipp", "-sf", ringOnly, *common, *media, "-timeout", "40s", "-timeout_error",
             "-trace_err", "-trace_msg"],
            stdout=open(self.deviceLog, "w"), stderr=subprocess.STDOUT, cwd=self.peerFiles)
        time.sleep(0.5)  # SIPp binds its port

    def finishDevice(self):
        """The SIPp device's exit status (0: its scenario passed, e.g. rung and CANCELed with the Reason)."""
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
        stopProcess(self.caller)
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


def scenarioPhoneHolds(run, args):
    run.startLinkRTC()
    stream = run.peerPath("tone880.ulaw")
    writeUlawTone(stream, CALLEE_TONE, 2.0)
    run.startRingingDevice(holdScenario(stream),
                           media=("-mi", "127.0.0.1", "-mp", str(freePort())))
    run.dialBob()
    if not run.waitForBaresip(r"Call established", 20):
        raise AssertionError("carol's call was not established:\n" + run.baresipText()[-2000:])
    run.step("carol's call established")
    deadline = time.monotonic() + HOLD_TALK + HOLD_SECONDS + 15
    while time.monotonic() < deadline:
        if any("SIP side resumed" in line for line in run.linkrtcLines()):
            break
        time.sleep(0.1)
    run.result["holdLines"] = [line for line in run.linkrtcLines()
                               if "SIP side held" in line or "SIP side resumed" in line
                               or "re-offer" in line]
    run.step("resumed on carol's side")
    time.sleep(RESUMED_TALK)
    run.baresipCommand("/hangup\n")
    run.result["phoneEnded"] = run.waitForBaresip(r"terminated", 5)
    run.finishDevice()
    run.finishPhone()
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


def scenarioOfferlessCallsPhone(run, args, media="bridge"):
    run.startLinkRTC(media=media)
    run.startBob()
    writeUlawTone(run.peerPath("tone440.ulaw"), CALLER_TONE, 2.0)
    mediaPort = freePort()
    recorder = None
    if media == "passthrough":
        # bob's RTP goes straight to the caller's answer: a recorder there.
        recorder = RTPRecorder()
        recorder.start()
    callerLog = os.path.join(run.out, "sipp-caller.log")
    with open(callerLog, "w") as log:
        run.caller = subprocess.Popen(
            ["sipp", f"127.0.0.1:{run.linkrtc.sipPort}", "-sf",
             os.path.join(SIPP_SCENARIOS, "uac_offerless.xml"), "-s", "bob",
             "-i", "127.0.0.1", "-p", str(freePort(both=True)), "-mi", "127.0.0.1",
             "-mp", str(mediaPort), "-key", "answer_port",
             str(recorder.port if recorder else mediaPort),
             "-m", "1", "-d", str(int(args.talk * 1000)), "-nostdin",
             "-timeout", "30s", "-timeout_error", "-trace_err"],
            stdout=log, stderr=subprocess.STDOUT, cwd=run.peerFiles)
        run.step("sipp calling bob offerless")
        try:
            run.result["callerExit"] = run.caller.wait(40)
        except subprocess.TimeoutExpired:
            run.result["callerExit"] = None
    run.step("sipp done", exit=run.result["callerExit"])
    with open(callerLog, errors="replace") as f:
        run.result["callerLog"] = f.read()[-3000:]
    run.result["bobEnded"] = run.bob.waitForBaresip(r"terminated", 5)
    run.bob.finishBaresip()
    run.result["bobHeard"] = run.bob.result.get("phoneHeard")
    run.result["bobLog"] = run.bob.result.get("baresipLog", "")[-2000:]
    if recorder is not None:
        run.result["callerHeard"] = recorder.heard()
    run.result["cdrs"] = run.cdrs()
    run.result["ok"] = True


SCENARIOS = {
    "offerless-calls-phone": scenarioOfferlessCallsPhone,
    "offerless-calls-phone-passthrough":
        lambda run, args: scenarioOfferlessCallsPhone(run, args, media="passthrough"),
    "phone-holds": scenarioPhoneHolds,
    "phone-calls-phone": scenarioPhoneCallsPhone,
    "phone-calls-phone-passthrough":
        lambda run, args: scenarioPhoneCallsPhone(run, args, media="passthrough"),
    "fork-phone-wins": scenarioForkPhoneWins,
    "fork-client-wins": scenarioForkClientWins,
    "client-calls-forked-phone": scenarioClientCallsForkedPhone,
}


def main():
    parser = driverParser(SCENARIOS, deadline=80.0)
    parser.add_argument("--talk", type=float, default=TALK, help="seconds of audio")
    args = parser.parse_args()
    run = ForkRun(args.out)
    runScenario(run, SCENARIOS[args.scenario], args, run.failed, run.finish)


if __name__ == "__main__":
    main()
