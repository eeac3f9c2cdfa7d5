"""
linkrtc.js's local ringback in real headless Chromium (Playwright): a page
that uses the SDK calls a number through a running C{twistd -n linkrtc
--media bridge} whose only trunk is SIPp (a UAS scenario), inside a network
namespace that has only loopback (C{test_ringback_browser} does
C{unshare --net}). Prints what happened as one JSON line.

Scenarios:
  - C{ringing}: the trunk rings with a 180 without SDP for 4 s, then
    answers (C{uas_ringing_answer.xml}): the SDK plays its ringback.
  - C{early}: the trunk sends a 183 with SDP (early media) for 4 s, then
    answers (C{uas_early_answer.xml}): no local ringback.
  - C{progress}: a 183 without SDP (no early media) for 4 s, then the
    answer (C{uas_progress_answer.xml}): the SDK rings after its grace.

An init script wraps the page's C{AudioContext} so that its
C{destination} is an C{AnalyserNode} (connected to the real one): every
200 ms the page samples, for each such context, the levels (dB) at 440
and 480 Hz and at 600 Hz (between the tones: the floor), beside the
call's C{ringbackPlaying} and C{state}. The call's C{ringback},
C{state} and C{answer} events are logged with their times.
"""

import os
import subprocess
import sys
import time

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.dirname(HERE))))

from linkrtc.test.e2e.browser_driver import CHROMIUM_FLAGS, closeChromium  # noqa: E402
from linkrtc.test.e2e.drivers import driverParser, runScenario, writeTone  # noqa: E402
from linkrtc.test.e2e.harness import (  # noqa: E402
    SCENARIOS as SIPP_SCENARIOS,
)
from linkrtc.test.e2e.harness import (  # noqa: E402
    LinkRTCProcess,
    freePort,
    requirePeer,
    shortTempDir,
)

TRUNK = """
[[trunk]]
name = "sipp"
proxy = "sip:127.0.0.1:{port}"
register = false
"""

#: Makes each AudioContext's destination an analyser the test can read.
TAP = """(() => {
  const Base = window.AudioContext;
  window.__taps = [];
  window.AudioContext = class extends Base {
    get destination() {
      if (!this.__tap) {
        this.__tap = this.createAnalyser();
        this.__tap.fftSize = 8192;
        this.__tap.smoothingTimeConstant = 0;
        this.__tap.connect(super.destination);
        window.__taps.push(this);
      }
      return this.__tap;
    }
  };
})();"""

#: Registers as alice with linkrtc.js, calls TO and samples every 200 ms.
DIAL = """async (to) => {
  const { Device } = await import("/linkrtc.js");
  const t0 = performance.now();
  const now = () => Math.round(performance.now() - t0) / 1000;
  window.__events = [];
  window.__samples = [];
  const device = new Device(`ws://${location.host}/ws`, { client: "alice" });
  await device.register("alice");
  const call = await device.connect({ to });
  window.__call = call;
  call.on("ringback", (playing) => __events.push({ t: now(), ringback: playing }));
  call.on("state", (state) => __events.push({ t: now(), state }));
  call.on("answer", () => __events.push({ t: now(), answer: true }));
  call.on("disconnect", (d) => __events.push({ t: now(), disconnect: d.cause }));
  const level = (ctx, data, hz) => data[Math.round(hz / (ctx.sampleRate / ctx.__tap.fftSize))];
  window.__timer = setInterval(() => {
    const taps = window.__taps.map((ctx) => {
      if (ctx.state === "closed") return { state: "closed" };
      const data = new Float32Array(ctx.__tap.frequencyBinCount);
      ctx.__tap.getFloatFrequencyData(data);
      return { state: ctx.state, db440: level(ctx, data, 440), db480: level(ctx, data, 480),
               db600: level(ctx, data, 600) };
    });
    __samples.push({ t: now(), playing: call.ringbackPlaying, state: call.state, taps });
  }, 200);
  return true;
}"""


class Run:
    """Holds every process and the result, and cleans up."""

    def __init__(self, out):
        self.out = out
        self.result = {"steps": [], "errors": []}
        self.t0 = time.monotonic()
        self.linkrtc = None
        self.sipp = None
        self.browser = None
        self.playwright = None
        self.page = None
        self.peerFiles = shortTempDir()

    def step(self, name, **details):
        self.result["steps"].append(
            dict(name=name, t=round(time.monotonic() - self.t0, 2), **details))

    def startSIPp(self, scenario):
        """SIPp as the trunk: a UAS playing C{scenario} once, its BYE after 1 s."""
        self.sippPort = freePort(both=True)
        self.sippLog = os.path.join(self.out, "sipp.log")
        self.sipp = subprocess.Popen(
            [requirePeer("sipp"), "-sf", os.path.join(SIPP_SCENARIOS, scenario),
             "-i", "127.0.0.1", "-p", str(self.sippPort), "-mi", "127.0.0.1",
             "-mp", str(freePort()), "-m", "1", "-d", "1000", "-nostdin",
             "-timeout", "40s", "-timeout_error"],
            stdout=open(self.sippLog, "w"), stderr=subprocess.STDOUT, cwd=self.peerFiles)
        self.step("sipp listening", port=self.sippPort, scenario=scenario)

    def startLinkRTC(self):
        trunks = os.path.join(self.out, "trunks.toml")
        with open(trunks, "w") as f:
            f.write(TRUNK.format(port=self.sippPort))
        self.linkrtc = LinkRTCProcess("--media", "bridge", "--ice-address", "127.0.0.1",
                                      "--config", trunks)
        self.linkrtc.start(timeout=20)
        self.step("linkrtc started", sip=self.linkrtc.sipPort, http=self.linkrtc.httpPort)

    def launch(self):
        from playwright.sync_api import sync_playwright

        tone = os.path.join(self.peerFiles, "page880.wav")
        writeTone(tone, 880.0, 30, 48000)
        self.playwright = sync_playwright().start()
        self.browser = self.playwright.chromium.launch(
            executable_path="/usr/bin/chromium", headless=True, timeout=30000,
            args=CHROMIUM_FLAGS + [f"--use-file-for-fake-audio-capture={tone}",
                                   "--autoplay-policy=no-user-gesture-required"])
        context = self.browser.new_context()
        context.add_init_script(TAP)
        self.page = context.new_page()
        self.console = []
        self.page.on("console", lambda m: self.console.append(m.text))
        self.page.goto(f"http://127.0.0.1:{self.linkrtc.httpPort}/", timeout=15000)
        self.step("chromium launched", version=self.browser.version)

    def finish(self):
        try:
            self.cleanup()
        except Exception as e:
            self.result["errors"].append(f"cleanup: {e}")
        self.step("done")

    def cleanup(self):
        if self.page is not None:
            self.result["console"] = self.console[-30:]
        closeChromium(self, self.result["errors"])
        if self.sipp is not None and self.sipp.poll() is None:
            self.sipp.kill()
            self.sipp.wait(5)
        if os.path.exists(getattr(self, "sippLog", "")):
            with open(self.sippLog, errors="replace") as f:
                self.result["sippLog"] = f.read()[-2000:]
        if self.linkrtc is not None:
            try:
                self.linkrtc.stop(timeout=10)
            except AssertionError as e:
                self.result["errors"].append(str(e))
            text = self.linkrtc.logText()
            self.result["linkrtcTracebacks"] = text.count("Traceback")
            self.result["linkrtcLog"] = text[-6000:]


def dial(run, scenario):
    run.startSIPp(scenario)
    run.startLinkRTC()
    run.launch()
    run.page.evaluate(DIAL, "5550101")
    run.step("dialled")
    run.page.wait_for_function(
        "window.__events.some((e) => e.disconnect !== undefined)", timeout=25000)
    run.step("call ended")
    time.sleep(0.5)
    run.result["events"] = run.page.evaluate("window.__events")
    run.result["samples"] = run.page.evaluate("clearInterval(window.__timer), window.__samples")
    run.result["sippExit"] = run.sipp.wait(15)
    run.result["ok"] = True


SCENARIOS = {
    "ringing": lambda run, args: dial(run, "uas_ringing_answer.xml"),
    "early": lambda run, args: dial(run, "uas_early_answer.xml"),
    "progress": lambda run, args: dial(run, "uas_progress_answer.xml"),
}


def main():
    parser = driverParser(SCENARIOS, deadline=55.0)
    args = parser.parse_args()
    run = Run(args.out)
    runScenario(run, SCENARIOS[args.scenario], args, lambda: None, run.finish)


if __name__ == "__main__":
    main()
