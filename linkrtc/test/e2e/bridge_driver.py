"""
Drive one bridged call through a running C{twistd -n linkrtc --media
bridge} and print what happened as one JSON line (the last line of
stdout). The WebRTC side is C{rtcclient.py} (aiortc, 880 Hz); the SIP
side is baresip (440 Hz WAV, records what it hears) or SIPp
(C{rtp_stream} of a 440 Hz mu-law file).

Run inside a network namespace that has only loopback
(C{test_bridge_e2e} does C{unshare --net}); the script brings C{lo} up:

    unshare --net python bridge_driver.py --scenario client-hangup --out DIR

Scenarios:
  - C{client-hangup}: baresip calls alice; the client answers (PCMU, so
    LinkRTC relays without decoding); after C{--talk} seconds baresip
    sends DTMF 5; then the client sends C{hangup}.
  - C{phone-hangup}: the same with the client answering Opus only (LinkRTC
    transcodes), and baresip hangs up (C{/hangup} typed into its console).
  - C{sipp}: SIPp calls alice and streams 440 Hz mu-law with
    C{<exec rtp_stream>}, then sends BYE; the client records.

baresip is told what to do through its C{cons} module (a UDP console on
127.0.0.1): C{/sndcode 5} sends the digit as RFC 4733 events (key press
and release), C{/hangup} ends the call.

Every process is bounded (C{-t}, timeouts, an alarm for the whole run)
and killed at the end.
"""

import glob
import json
import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import time
import traceback

import numpy

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.dirname(HERE))))

from linkrtc.test.e2e.drivers import analyseWav, driverParser, runScenario, writeTone  # noqa: E402
from linkrtc.test.e2e.harness import (  # noqa: E402
    JSONLinesProcess,
    LinkRTCProcess,
    freePort,
    shortTempDir,
)

CLIENT_TONE = 880.0  # Hz, what the WebRTC client sends
PHONE_TONE = 440.0  # Hz, what baresip / SIPp send
DIGIT = "5"

SIPP_SCENARIO = """<?xml version="1.0" encoding="ISO-8859-1" ?>
<!DOCTYPE scenario SYSTEM "sipp.dtd">
<scenario name="LinkRTC bridge: SIPp streams a tone, then hangs up">
  <send retrans="500">
    <![CDATA[
      INVITE sip:[service]@[remote_ip]:[remote_port] SIP/2.0
      Via: SIP/2.0/[transport] [local_ip]:[local_port];branch=[branch];rport
      Max-Forwards: 70
      From: "sipp" <sip:sipp@[local_ip]:[local_port]>;tag=[pid]SIPpTag00[call_number]
      To: <sip:[service]@[remote_ip]:[remote_port]>
      Call-ID: [call_id]
      CSeq: 1 INVITE
      Contact: <sip:sipp@[local_ip]:[local_port];transport=[transport]>
      Content-Type: application/sdp
      Content-Length: [len]

      v=0
      o=user1 53655765 2353687637 IN IP[local_ip_type] [local_ip]
      s=-
      c=IN IP[media_ip_type] [media_ip]
      t=0 0
      m=audio [media_port] RTP/AVP 0 101
      a=rtpmap:0 PCMU/8000
      a=rtpmap:101 telephone-event/8000
      a=sendrecv

    ]]>
  </send>
  <recv response="100" optional="true"/>
  <recv response="180" optional="true"/>
  <recv response="183" optional="true"/>
  <recv response="200" rrs="true"/>
  <send>
    <![CDATA[
      ACK [next_url] SIP/2.0
      Via: SIP/2.0/[transport] [local_ip]:[local_port];branch=[branch];rport
      Max-Forwards: 70
      From: "sipp" <sip:sipp@[local_ip]:[local_port]>;tag=[pid]SIPpTag00[call_number]
      To: <sip:[service]@[remote_ip]:[remote_port]>[peer_tag_param]
      Call-ID: [call_id]
      CSeq: 1 ACK
      [routes]
      Contact: <sip:sipp@[local_ip]:[local_port];transport=[transport]>
      Content-Length: 0

    ]]>
  </send>
  <nop><action><exec rtp_stream="@RTP_FILE@,-1,0"/></action></nop>
  <pause/>
  <nop><action><exec rtp_stream="pause"/></action></nop>
  <send retrans="500">
    <![CDATA[
      BYE [next_url] SIP/2.0
      Via: SIP/2.0/[transport] [local_ip]:[local_port];branch=[branch];rport
      Max-Forwards: 70
      From: "sipp" <sip:sipp@[local_ip]:[local_port]>;tag=[pid]SIPpTag00[call_number]
      To: <sip:[service]@[remote_ip]:[remote_port]>[peer_tag_param]
      Call-ID: [call_id]
      CSeq: 2 BYE
      [routes]
      Contact: <sip:sipp@[local_ip]:[local_port];transport=[transport]>
      Content-Length: 0

    ]]>
  </send>
  <recv response="200" crlf="true"/>
</scenario>
"""


def ulaw(samples):
    """
    Encode linear 16-bit samples as G.711 mu-law (ITU-T G.711, the classic
    biased-segment encoder), without audioop.

    @param samples: int16 numpy array.
    @return: C{bytes}, one octet per sample.
    """
    s = samples.astype(numpy.int32)
    sign = numpy.where(s < 0, 0x80, 0)
    magnitude = numpy.minimum(numpy.abs(s), 32635) + 0x84
    exponent = numpy.floor(numpy.log2(magnitude)).astype(numpy.int32) - 7
    exponent = numpy.clip(exponent, 0, 7)
    mantissa = (magnitude >> (exponent + 3)) & 0x0F
    return (~(sign | (exponent << 4) | mantissa) & 0xFF).astype(numpy.uint8).tobytes()


def writeUlawTone(path, frequency, seconds, amplitude=0.5):
    """Write C{seconds} of a C{frequency} Hz sine as raw 8 kHz mu-law (SIPp's rtp_stream)."""
    t = numpy.arange(int(seconds * 8000)) / 8000.0
    samples = (numpy.sin(2 * numpy.pi * frequency * t) * amplitude * 32767).astype(numpy.int16)
    with open(path, "wb") as f:
        f.write(ulaw(samples))


class RTCClient(JSONLinesProcess):
    """
    C{rtcclient.py} in a subprocess; its JSON lines are collected.

    @ivar messages: every line it printed, parsed (C{dict}s), in order.
    """

    def __init__(self, linkrtc, name, *args, log=None):
        script = os.path.join(HERE, "rtcclient.py")
        self.process = subprocess.Popen(
            [sys.executable, script, f"ws://127.0.0.1:{linkrtc.httpPort}/ws", name, *args],
            stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=log or subprocess.DEVNULL,
            text=True,
        )
        self.collect()

    def command(self, message):
        """Have the client send C{message} over its WebSocket."""
        self.process.stdin.write(json.dumps(message) + "\n")
        self.process.stdin.flush()

    def of(self, kind):
        with self._lock:
            return [m for m in self.messages if m.get("type") == kind]

    def stop(self):
        if self.process.poll() is None:
            try:
                self.process.stdin.close()
            except OSError:
                pass
            try:
                self.process.wait(10)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait(5)


def stopProcess(process, timeout=5):
    """SIGTERM, then SIGKILL after C{timeout} seconds."""
    if process is None or process.poll() is not None:
        return
    process.send_signal(signal.SIGTERM)
    try:
        process.wait(timeout)
    except subprocess.TimeoutExpired:
        process.kill()
        process.wait(5)


class Run:
    """Holds every process and the result; cleans up."""

    #: the step noted once the client registered.
    CLIENT_REGISTERED = "client registered"

    def __init__(self, out):
        self.out = out
        self.result = {"steps": [], "errors": []}
        self.t0 = time.monotonic()
        self.linkrtc = None
        self.client = None
        self.baresip = None
        self.sipp = None
        self.recordings = None
        self.peerFiles = None

    def step(self, name, **details):
        self.result["steps"].append(
            dict(name=name, t=round(time.monotonic() - self.t0, 2), **details))

    def peerPath(self, name):
        """
        @return: the path of C{name} in this run's short directory (made
            once, removed at cleanup): the files baresip and SIPp read or
            write go there, never under C{self.out}, whose length depends
            on the checkout's path.
        """
        if self.peerFiles is None:
            self.peerFiles = shortTempDir()
        return os.path.join(self.peerFiles, name)

    def startLinkRTC(self):
        self.cdr = os.path.join(self.out, "cdr.jsonl")
        self.linkrtc = LinkRTCProcess("--media", "bridge", "--ice-address", "127.0.0.1",
                                      "--cdr", self.cdr, "--ring-timeout", "20")
        self.linkrtc.start(timeout=20)
        self.step("linkrtc started", sip=self.linkrtc.sipPort, http=self.linkrtc.httpPort)

    def startClient(self, *args):
        self.clientLog = open(os.path.join(self.out, "rtcclient.log"), "w")
        self.client = RTCClient(self.linkrtc, "alice", "--tone", str(CLIENT_TONE),
                                "--record", os.path.join(self.out, "client-heard.wav"),
                                "--lifetime", "50", *args, log=self.clientLog)
        self.client.waitFor("registered", 15)
        self.step(self.CLIENT_REGISTERED)

    def startBaresip(self, seconds=40):
        config = self.configureBaresip(freePort(both=True), "")
        self.spawnBaresip(config, "-t", str(seconds),
                          "-e", f"/dial sip:alice@127.0.0.1:{self.linkrtc.sipPort}")
        self.step("baresip dialling")

    def configureBaresip(self, sipPort, accountParameters, tone=PHONE_TONE):
        """
        Write baresip's config (listening on C{sipPort}, playing C{tone}
        Hz, 440 by default, recording, its console on C{self.consPort})
        and its account (bob, PCMU, with C{accountParameters} appended).

        @return: the config directory.
        """
        # baresip cuts long file names (about 127 octets): short paths only.
        self.recordings = self.peerPath("rec")
        os.makedirs(self.recordings)
        config = self.peerPath("baresip")
        os.makedirs(config)
        frequency, tone = tone, self.peerPath("phone%d.wav" % (tone,))
        writeTone(tone, frequency, 60, 8000)  # longer than the call: baresip hangs up at EOF
        self.consPort = freePort(both=True)
        with open(os.path.join(config, "config"), "w") as f:
            f.write(
                f"sip_listen 127.0.0.1:{sipPort}\n"
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
            f.write(f"<sip:bob@127.0.0.1>;regint=0;audio_codecs=pcmu{accountParameters}\n")
        return config

    def spawnBaresip(self, config, *args):
        """Start baresip with C{config} and C{args}, its output to C{baresip.log}."""
        self.baresipLog = os.path.join(self.out, "baresip.log")
        self.baresip = subprocess.Popen(
            ["baresip", "-v", "-f", config, *args],
            stdin=subprocess.DEVNULL, stdout=open(self.baresipLog, "w"),
            stderr=subprocess.STDOUT, cwd=self.out,
        )

    def baresipCommand(self, text):
        """Type C{text} into baresip's console (the cons module, UDP)."""
        s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        try:
            s.sendto(text.encode(), ("127.0.0.1", self.consPort))
        finally:
            s.close()
        self.step("baresip command", text=text.strip())

    def baresipText(self):
        with open(self.baresipLog, errors="replace") as f:
            return f.read()

    def waitForBaresip(self, pattern, timeout):
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if re.search(pattern, self.baresipText()):
                return True
            if self.baresip.poll() is not None:
                return bool(re.search(pattern, self.baresipText()))
            time.sleep(0.1)
        return False

    def finishBaresip(self):
        """Stop baresip (its recording is closed) and analyse what it heard."""
        time.sleep(0.5)
        stopProcess(self.baresip)
        text = self.baresipText()
        self.result["baresipLog"] = text[-5000:]
        self.result["phoneSawEnd"] = bool(re.search(r"terminated", text))
        self.result["phoneSentDigits"] = re.findall(r"send DTMF digit: '(.)'", text)
        kept = os.path.join(self.out, "bsrec")
        shutil.copytree(self.recordings, kept, dirs_exist_ok=True)
        decoded = sorted(glob.glob(os.path.join(kept, "*-dec.wav")))
        self.result["phoneHeard"] = analyseWav(decoded[-1]) if decoded else None

    def finishClient(self, timeout=15):
        heard = self.client.waitFor("heard", timeout)
        self.result["clientHeard"] = heard
        self.result["clientDigits"] = [m.get("digits") for m in self.client.of("dtmf")]
        self.result["clientStates"] = [m.get("state") for m in self.client.of("state")]
        self.result["clientAnswered"] = self.client.of("answered")
        self.result["clientErrors"] = self.client.of("client-error") + self.client.of("error")
        self.client.stop()

    def cdrs(self, count=1, timeout=5):
        deadline = time.monotonic() + timeout
        lines = []
        while time.monotonic() < deadline:
            if os.path.exists(self.cdr):
                with open(self.cdr) as f:
                    lines = [json.loads(line) for line in f if line.strip()]
                lines = [r for r in lines if r.get("record") == "end"]
                if len(lines) >= count:
                    break
            time.sleep(0.1)
        return lines

    def failed(self):
        """After an error: the client's messages so far (not its offers)."""
        if self.client is not None:
            self.result["clientMessages"] = [
                m for m in self.client.messages if m.get("type") != "incoming"][-40:]

    def finish(self):
        """Clean up, noting (not raising) what went wrong."""
        try:
            self.cleanup()
        except Exception as e:
            self.result["errors"].append("cleanup: " + "".join(traceback.format_exception(e)))
        self.step("done")

    def cleanup(self):
        if self.client is not None:
            self.client.stop()
        stopProcess(self.baresip)
        stopProcess(self.sipp)
        if self.peerFiles:
            shutil.rmtree(self.peerFiles, ignore_errors=True)
        if self.linkrtc is not None:
            os.environ["LINKRTC_KEEP_LOGS"] = "1"
            try:
                self.linkrtc.stop(timeout=10)
            except AssertionError as e:
                self.result["errors"].append(str(e))
            text = self.linkrtc.logText()
            shutil.copy(self.linkrtc.log, os.path.join(self.out, "linkrtc.log"))
            os.unlink(self.linkrtc.log)
            self.result["mediaModes"] = re.findall(r"media (relay|transcode) \(", text)
            self.result["linkrtcTracebacks"] = text.count("Traceback")
            self.result["linkrtcLog"] = text[-6000:]


def baresipCall(run, args, codec, hangup):
    """baresip calls alice; audio both ways, one DTMF digit, then C{hangup} ('client'|'phone')."""
    run.startLinkRTC()
    run.startClient("--codec", codec)
    run.startBaresip()
    run.client.waitFor(lambda m: m.get("state") == "confirmed", 20)
    run.step("confirmed")
    time.sleep(args.talk)
    run.baresipCommand(f"/sndcode {DIGIT}\n")
    run.client.waitFor("dtmf", 5)
    run.step("dtmf received")
    time.sleep(1.0)  # a duplicate (end-packet retransmissions) would arrive by now
    if hangup == "client":
        run.client.command({"type": "hangup"})
        run.step("client hangup sent")
    else:
        run.baresipCommand("/hangup\n")
    run.client.waitFor(lambda m: m.get("state") == "dropped", 10)
    run.step("client saw dropped")
    run.result["phoneEnded"] = run.waitForBaresip(r"terminated", 5)
    run.finishClient()
    run.finishBaresip()
    run.result["cdrs"] = run.cdrs()
    run.result["ok"] = True


def scenarioClientHangup(run, args):
    baresipCall(run, args, codec="pcmu", hangup="client")


def scenarioPhoneHangup(run, args):
    baresipCall(run, args, codec="opus", hangup="phone")


#: SIPP_SCENARIO with Require: 100rel (RFC 3262): the early-media 183 must
#: come reliably (RSeq); SIPp PRACKs it and takes the PRACK's 200 before
#: the INVITE's.
SIPP_SCENARIO_100REL = SIPP_SCENARIO.replace(
    "CSeq: 1 INVITE\n", "CSeq: 1 INVITE\n      Require: 100rel\n", 1,
).replace(
    """  <recv response="180" optional="true"/>
  <recv response="183" optional="true"/>
  <recv response="200" rrs="true"/>""",
    """  <recv response="183" rrs="true">
    <action>
      <ereg regexp="[0-9]+" search_in="hdr" header="RSeq:" check_it="true" assign_to="rseq"/>
      <ereg regexp="m=audio" search_in="body" check_it="true" assign_to="early"/>
    </action>
  </recv>
  <send retrans="500">
    <![CDATA[
      PRACK [next_url] SIP/2.0
      Via: SIP/2.0/[transport] [local_ip]:[local_port];branch=[branch];rport
      Max-Forwards: 70
      From: "sipp" <sip:sipp@[local_ip]:[local_port]>;tag=[pid]SIPpTag00[call_number]
      To: <sip:[service]@[remote_ip]:[remote_port]>[peer_tag_param]
      Call-ID: [call_id]
      CSeq: 2 PRACK
      RAck: [$rseq] 1 INVITE
      [routes]
      Content-Length: 0

    ]]>
  </send>
  <recv response="200">
    <action>
      <ereg regexp="PRACK" search_in="hdr" header="CSeq:" check_it="true" assign_to="prack"/>
    </action>
  </recv>
  <recv response="200" rrs="true">
    <action>
      <ereg regexp="INVITE" search_in="hdr" header="CSeq:" check_it="true" assign_to="ok"/>
    </action>
  </recv>""", 1,
).replace("CSeq: 2 BYE", "CSeq: 3 BYE", 1).replace(
    "</scenario>", '  <Reference variables="early,prack,ok"/>\n</scenario>', 1)


def scenarioSIPp(run, args, text=SIPP_SCENARIO):
    run.startLinkRTC()
    run.startClient("--codec", "pcmu")
    stream = run.peerPath("tone440.ulaw")
    writeUlawTone(stream, PHONE_TONE, 2.0)
    scenario = run.peerPath("uac_rtp_stream.xml")
    with open(scenario, "w") as f:
        f.write(text.replace("@RTP_FILE@", stream))
    talk = int(args.talk * 1000) + 1000
    sippLog = os.path.join(run.out, "sipp.log")
    with open(sippLog, "w") as log:
        run.sipp = subprocess.Popen(
            ["sipp", f"127.0.0.1:{run.linkrtc.sipPort}", "-sf", scenario, "-s", "alice",
             "-i", "127.0.0.1", "-p", str(freePort(both=True)), "-mi", "127.0.0.1",
             "-mp", str(freePort()), "-m", "1", "-d", str(talk), "-nostdin",
             "-timeout", "30s", "-timeout_error"],
            stdout=log, stderr=subprocess.STDOUT, cwd=run.peerFiles,
        )
        run.step("sipp calling")
        run.client.waitFor(lambda m: m.get("state") == "confirmed", 20)
        run.step("confirmed")
        run.result["sippExit"] = run.sipp.wait(40)
    run.step("sipp done", exit=run.result["sippExit"])
    with open(sippLog, errors="replace") as f:
        run.result["sippLog"] = f.read()[-3000:]
    run.client.waitFor(lambda m: m.get("state") == "dropped", 10)
    run.finishClient()
    run.result["cdrs"] = run.cdrs()
    run.result["ok"] = True


SCENARIOS = {
    "client-hangup": scenarioClientHangup,
    "phone-hangup": scenarioPhoneHangup,
    "sipp": scenarioSIPp,
    "sipp-100rel": lambda run, args: scenarioSIPp(run, args, SIPP_SCENARIO_100REL),
}


def main():
    parser = driverParser(SCENARIOS, deadline=50.0)
    parser.add_argument("--talk", type=float, default=3.0, help="seconds of audio before DTMF")
    args = parser.parse_args()
    run = Run(args.out)
    runScenario(run, SCENARIOS[args.scenario], args, run.failed, run.finish)


if __name__ == "__main__":
    main()
