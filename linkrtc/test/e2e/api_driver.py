"""
Drive the call-control API (seed 001) end to end through a running
C{twistd -n linkrtc --media bridge}: an application on the WebSocket
C{/api} (C{apiapp.py}) and real peers (baresip, the aiortc client
C{rtcclient.py}); print what happened as one JSON line (the last line of
stdout). Run inside a network namespace with only loopback:

    unshare --net python api_driver.py --scenario ivr --out DIR

Scenarios:
  - C{ivr}: baresip (sending 550 Hz) calls in; the application answers,
    plays a 1000 Hz prompt (a 16 kHz WAV: resampled), collects the digit
    baresip sends as RFC 4733 events, records the caller, constructs a
    call to the browser client alice (aiortc, sending 880 Hz) with the
    caller as parent, connects the two, and drops both.
  - C{conf}: three baresip phones (500, 700 and 1100 Hz) call in; the
    application answers each and puts it into one conference.
  - C{example}: etc/examples/ivr.py runs in the switch (C{--application});
    baresip presses 1 during the menu and is connected to the browser
    client C{agent}, which hangs up.

What each peer heard is measured by FFT (L{toneShares}): the share of the
recording's power near each tone.
"""

import glob
import os
import re
import shutil
import socket
import subprocess
import sys
import time
import wave

import numpy

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.dirname(HERE))))

from linkrtc.test.e2e.bridge_driver import RTCClient, Run, stopProcess  # noqa: E402
from linkrtc.test.e2e.drivers import driverParser, runScenario, writeTone  # noqa: E402
from linkrtc.test.e2e.harness import ROOT, JSONLinesProcess, LinkRTCProcess, freePort  # noqa: E402

PROMPT_TONE = 1000.0
CALLER_TONE = 550.0
AGENT_TONE = 880.0
PARTY_TONES = (500.0, 700.0, 1100.0)
DIGIT = "5"

#: Hz either side of a tone counted as that tone.
BAND = 15.0


def readWav(path):
    """@return: C{(samples scaled -1..1, rate)} of a 16-bit WAV (channels mixed)."""
    with wave.open(path, "rb") as w:
        rate, channels = w.getframerate(), w.getnchannels()
        data = w.readframes(w.getnframes())
    samples = numpy.frombuffer(data, dtype="<i2").astype(float) / 32768.0
    if channels > 1:
        samples = samples.reshape(-1, channels).mean(axis=1)
    return samples, rate


def toneShares(path, tones):
    """
    @return: C{{"seconds", "rms", "shares": {tone: share}}}: each tone's
        share (0..1) of the recording's power above 50 Hz, within
        L{BAND} Hz of it (one FFT of the whole file).
    """
    samples, rate = readWav(path)
    result = {"seconds": len(samples) / rate if rate else 0.0, "shares": {}, "rms": 0.0}
    if len(samples) < rate // 4:
        return result
    result["rms"] = float(numpy.sqrt(numpy.mean(samples ** 2)))
    power = numpy.abs(numpy.fft.rfft(samples)) ** 2
    freqs = numpy.fft.rfftfreq(len(samples), 1.0 / rate)
    power[freqs < 50] = 0
    total = float(power.sum()) or 1e-12
    for tone in tones:
        near = numpy.abs(freqs - tone) <= BAND
        result["shares"][str(int(tone))] = round(float(power[near].sum()) / total, 4)
    return result


class App(JSONLinesProcess):
    """C{apiapp.py} in a subprocess."""

    def __init__(self, linkrtc, script, *args, log=None):
        self.process = subprocess.Popen(
            [sys.executable, os.path.join(HERE, "apiapp.py"),
             f"ws://127.0.0.1:{linkrtc.httpPort}/api", script, *args],
            stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=log or subprocess.DEVNULL,
            text=True,
        )
        self.collect()

    def of(self, kind):
        with self._lock:
            return [m for m in self.messages if m.get("type") == kind]

    def step(self, name, timeout):
        return self.waitFor(lambda m: m.get("type") == "step" and m.get("name") == name,
                            timeout)

    def stop(self):
        stopProcess(self.process)


class Phone:
    """One baresip: its config, tone, console and recordings."""

    def __init__(self, run, name, tone):
        self.run = run
        self.name = name
        self.tone = tone
        self.recordings = run.peerPath(f"rec-{name}")
        os.makedirs(self.recordings)
        self.config = run.peerPath(f"bs-{name}")
        os.makedirs(self.config)
        toneFile = run.peerPath(f"{name}.wav")
        writeTone(toneFile, tone, 60, 8000)
        self.consPort = freePort(both=True)
        with open(os.path.join(self.config, "config"), "w") as f:
            f.write(
                f"sip_listen 127.0.0.1:{freePort(both=True)}\n"
                "net_interface 127.0.0.1\n"
                f"audio_source aufile,{toneFile}\n"
                "audio_player alsa,null\naudio_alert alsa,null\n"
                "ausrc_srate 8000\nauplay_srate 8000\nausrc_channels 1\nauplay_channels 1\n"
                "module_path /usr/lib/baresip/modules\n"
                "module g711.so\nmodule alsa.so\nmodule aufile.so\nmodule sndfile.so\n"
                "module cons.so\nmodule_tmp account.so\nmodule_app menu.so\n"
                f"snd_path {self.recordings}\n"
                f"cons_listen 127.0.0.1:{self.consPort}\n"
            )
        with open(os.path.join(self.config, "accounts"), "w") as f:
            f.write(f"<sip:{name}@127.0.0.1>;regint=0;audio_codecs=pcmu\n")
        self.log = os.path.join(run.out, f"baresip-{name}.log")
        self.process = None

    def dial(self, target, seconds=40):
        self.process = subprocess.Popen(
            ["baresip", "-v", "-f", self.config, "-t", str(seconds),
             "-e", f"/dial sip:{target}@127.0.0.1:{self.run.linkrtc.sipPort}"],
            stdin=subprocess.DEVNULL, stdout=open(self.log, "w"), stderr=subprocess.STDOUT,
            cwd=self.run.out,
        )
        self.run.step(f"{self.name} dialling")

    def command(self, text):
        s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        try:
            s.sendto(text.encode(), ("127.0.0.1", self.consPort))
        finally:
            s.close()
        self.run.step(f"{self.name} command", text=text.strip())

    def text(self):
        with open(self.log, errors="replace") as f:
            return f.read()

    def finish(self, tones):
        """Stop baresip; @return: L{toneShares} of what it heard (or C{None})."""
        time.sleep(0.5)
        stopProcess(self.process)
        kept = os.path.join(self.run.out, f"rec-{self.name}")
        shutil.copytree(self.recordings, kept, dirs_exist_ok=True)
        decoded = sorted(glob.glob(os.path.join(kept, "*-dec.wav")))
        return {"heard": toneShares(decoded[-1], tones) if decoded else None,
                "ended": bool(re.search(r"terminated", self.text())),
                "sentDigits": re.findall(r"send DTMF digit: '(.)'", self.text())}


class ApiRun(Run):
    def __init__(self, out):
        Run.__init__(self, out)
        self.app = None
        self.phones = []

    def startApp(self, script, *args):
        self.appLog = open(os.path.join(self.out, "apiapp.log"), "w")
        self.app = App(self.linkrtc, script, *args, log=self.appLog)
        self.app.waitFor("open", 15)
        self.step("application connected")

    def finishApp(self, timeout):
        done = self.app.waitFor(lambda m: m.get("type") in ("done", "app-error"), timeout)
        self.result["app"] = done
        self.result["appEvents"] = [m.get("method") for m in self.app.messages
                                    if m.get("method")]
        self.result["appResults"] = self.app.of("result")[-30:]
        return done

    def failed(self):
        Run.failed(self)
        if self.app is not None:
            self.result["appMessages"] = self.app.messages[-40:]

    def cleanup(self):
        if self.app is not None:
            self.app.stop()
        for phone in self.phones:
            stopProcess(phone.process)
        Run.cleanup(self)


def scenarioIVR(run, args):
    run.startLinkRTC()
    prompt = os.path.join(run.out, "prompt.wav")
    writeTone(prompt, PROMPT_TONE, 2.0, 16000)
    record = os.path.join(run.out, "caller.wav")
    run.clientLog = open(os.path.join(run.out, "rtcclient.log"), "w")
    run.client = RTCClient(run.linkrtc, "alice", "--tone", str(AGENT_TONE), "--codec", "pcmu",
                           "--record", os.path.join(run.out, "client-heard.wav"),
                           "--lifetime", "55", log=run.clientLog)
    run.client.waitFor("registered", 15)
    run.step(run.CLIENT_REGISTERED)
    run.startApp("ivr", "--prompt", prompt, "--record", record, "--record-seconds", "3",
                 "--talk", str(args.talk), "--lifetime", "55")
    phone = Phone(run, "caller", CALLER_TONE)
    run.phones.append(phone)
    phone.dial("ivr")
    run.app.step("receiving", 20)
    time.sleep(0.5)
    phone.command(f"/sndcode {DIGIT}\n")
    done = run.finishApp(45)
    run.step("application done", type=done.get("type"))
    tones = (PROMPT_TONE, CALLER_TONE, AGENT_TONE)
    run.result["phone"] = phone.finish(tones)
    run.result["recorded"] = toneShares(record, tones) if os.path.exists(record) else None
    run.client.waitFor("heard", 10)
    client = os.path.join(run.out, "client-heard.wav")
    run.result["clientHeard"] = toneShares(client, tones) if os.path.exists(client) else None
    run.result["clientStates"] = [m.get("state") for m in run.client.of("state")]
    run.client.stop()
    run.result["ok"] = True


def scenarioConf(run, args):
    run.startLinkRTC()
    run.startApp("conf", "--parties", str(len(PARTY_TONES)), "--talk", str(args.talk),
                 "--lifetime", "55")
    for i, tone in enumerate(PARTY_TONES):
        phone = Phone(run, f"p{i}", tone)
        run.phones.append(phone)
        phone.dial("conf")
        time.sleep(0.3)
    done = run.finishApp(45)
    run.step("application done", type=done.get("type"))
    run.result["phones"] = {str(int(p.tone)): p.finish(PARTY_TONES) for p in run.phones}
    run.result["ok"] = True


def scenarioExample(run, args):
    """
    etc/examples/ivr.py loaded in the switch (C{--application ivr:factory})
    on real media: the phone hears the menu, presses 1, is connected to the
    browser client C{agent}, which hangs up after C{--talk} seconds.
    """
    sounds = run.peerPath("sounds")
    os.makedirs(sounds)
    writeTone(os.path.join(sounds, "menu.wav"), PROMPT_TONE, 2.0, 16000)
    writeTone(os.path.join(sounds, "goodbye.wav"), PROMPT_TONE, 0.5, 8000)
    examples = os.path.join(ROOT, "etc", "examples")
    run.cdr = os.path.join(run.out, "cdr.jsonl")
    run.linkrtc = LinkRTCProcess(
        "--media", "bridge", "--ice-address", "127.0.0.1", "--cdr", run.cdr,
        "--application", "ivr:factory",
        env={"PYTHONPATH": ROOT + os.pathsep + examples, "LINKRTC_IVR_SOUNDS": sounds,
             "LINKRTC_IVR_AGENT": "client:agent", "LINKRTC_IVR_MESSAGES": run.out})
    run.linkrtc.start(timeout=20)
    run.step("linkrtc started", sip=run.linkrtc.sipPort, http=run.linkrtc.httpPort)
    run.clientLog = open(os.path.join(run.out, "rtcclient.log"), "w")
    run.client = RTCClient(run.linkrtc, "agent", "--tone", str(AGENT_TONE), "--codec", "pcmu",
                           "--record", os.path.join(run.out, "client-heard.wav"),
                           "--hangup-after", str(args.talk), "--lifetime", "55",
                           log=run.clientLog)
    run.client.waitFor("registered", 15)
    run.step(run.CLIENT_REGISTERED)
    phone = Phone(run, "caller", CALLER_TONE)
    run.phones.append(phone)
    phone.dial("ivr")
    time.sleep(1.5)  # the menu plays while the digit is collected
    phone.command("/sndcode 1\n")
    run.client.waitFor(lambda m: m.get("state") == "dropped", 30)
    run.step("agent dropped")
    deadline = time.monotonic() + 15
    while not re.search(r"terminated", phone.text()) and time.monotonic() < deadline:
        time.sleep(0.2)
    tones = (PROMPT_TONE, CALLER_TONE, AGENT_TONE)
    run.result["phone"] = phone.finish(tones)
    run.client.waitFor("heard", 10)
    client = os.path.join(run.out, "client-heard.wav")
    run.result["clientHeard"] = toneShares(client, tones) if os.path.exists(client) else None
    run.client.stop()
    run.result["cdrs"] = run.cdrs(count=2, timeout=10)
    run.result["ok"] = True


SCENARIOS = {"ivr": scenarioIVR, "conf": scenarioConf, "example": scenarioExample}


def main():
    parser = driverParser(SCENARIOS, deadline=80.0)
    parser.add_argument("--talk", type=float, default=4.0, help="seconds connected")
    args = parser.parse_args()
    run = ApiRun(args.out)
    runScenario(run, SCENARIOS[args.scenario], args, run.failed, run.finish)


if __name__ == "__main__":
    main()
