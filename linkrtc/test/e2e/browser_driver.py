"""
Drive the demo softphone in real headless Chromium (Playwright) against a
running C{twistd -n linkrtc}, and print what happened as one JSON line.

Run inside a network namespace that has only loopback (C{test_browser}
does C{unshare --net}); the script brings C{lo} up itself:

    unshare --net python browser_driver.py --scenario call --out DIR

Scenarios:
  - C{login}: the page logs in as alice and shows C{registered}; LinkRTC is
    stopped (the page shows the lost connection) and started again on the
    same ports (the page re-registers without a reload).
  - C{call}: LinkRTC in C{--media bridge}; baresip calls alice; the page
    answers; audio both ways (880 Hz from the page, 440 Hz from baresip);
    the page sends a DTMF digit and hangs up. A second tab, logged in as
    bob, must see nothing of it.
  - C{reload}: as C{call}, but in the middle of the call the page is
    reloaded (C{page.reload()}); the page logs in again by itself, resumes
    the call with its resume token and a new offer, and audio flows both
    ways again (the page's FFT and the end of baresip's recording, both
    after the reload); the page then hangs up.
  - C{readme}: the same call against the README's run command itself,
    C{twistd -n linkrtc} with no option at all (its embedded defaults:
    SIP on 127.0.0.1:5060, the page on http://127.0.0.1:8080/, bridge
    media, ICE on loopback because that is all the namespace has).

The files baresip and Chromium read or write are in a short directory
under /tmp (baresip cuts paths at about 127 octets), whatever C{--out}.

Every process it starts is bounded (C{-t}, timeouts) and killed at the end.
"""

import glob
import json
import os
import re
import shutil
import signal
import subprocess
import sys
import time

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.dirname(HERE))))

from linkrtc.test.e2e.drivers import analyseWav, driverParser, runScenario, writeTone  # noqa: E402
from linkrtc.test.e2e.harness import LinkRTCProcess, freePort, shortTempDir  # noqa: E402

PAGE_TONE = 880.0  # Hz, what the browser's fake microphone plays
PHONE_TONE = 440.0  # Hz, what baresip plays
DIGIT = "5"

CHROMIUM_FLAGS = [
    "--use-fake-ui-for-media-stream", "--use-fake-device-for-media-stream",
    "--allow-loopback-in-peer-connection", "--no-sandbox", "--disable-background-networking",
    "--disable-component-update", "--disable-sync", "--no-first-run", "--headless",
    "--disable-gpu",
]


# The dominant frequency of the call's remote audio, by the page's WebAudio FFT.
REMOTE_FREQUENCY = """async () => {
  const record = window.softphone.current;
  if (!record || !record.call.remoteStream) return null;
  const ctx = new AudioContext();
  await ctx.resume();
  const analyser = ctx.createAnalyser();
  analyser.fftSize = 16384;
  ctx.createMediaStreamSource(record.call.remoteStream).connect(analyser);
  await new Promise((resolve) => setTimeout(resolve, 1500));
  const data = new Float32Array(analyser.frequencyBinCount);
  analyser.getFloatFrequencyData(data);
  const binHz = ctx.sampleRate / analyser.fftSize;
  let best = Math.ceil(50 / binHz);
  for (let i = best; i < data.length; i++) if (data[i] > data[best]) best = i;
  const result = {dominant: best * binHz, db: data[best], state: ctx.state};
  await ctx.close();
  return result;
}"""


def digitsHeard(log):
    """
    @return: the DTMF digits baresip logged receiving (RFC 4733), in
        order: C{received event: '5' (end=1)} (baresip 1.0 with C{-v}) or
        C{received DTMF: '5'}.
    """
    digits = re.findall(r"received event: '(.)' \(end=1\)", log)
    return "".join(digits or re.findall(r"received DTMF: '(.)'", log))


#: baresip 1.0's config lines for VP8 video with its fakevideo camera and display.
BARESIP_VIDEO = ("video_source fakevideo,nil\nvideo_display fakevideo,nil\n"
                 "video_size 320x240\nvideo_bitrate 300000\nvideo_fps 15\n"
                 "module vp8.so\nmodule fakevideo.so\n")


def baresipConfig(directory, sipPort, tone, recordings, video=False):
    """
    Write baresip's config and accounts (FIELD-NOTES §3) into C{directory};
    with C{video}, VP8 and the C{fakevideo} camera and display too
    (baresip 1.0 keys).
    """
    os.makedirs(directory, exist_ok=True)
    os.makedirs(recordings, exist_ok=True)
    with open(os.path.join(directory, "config"), "w") as f:
        f.write(
            f"sip_listen 127.0.0.1:{sipPort}\n"
            "net_interface 127.0.0.1\n"
            f"audio_source aufile,{tone}\n"
            "audio_player alsa,null\n"
            "audio_alert alsa,null\n"
            "ausrc_srate 8000\nauplay_srate 8000\nausrc_channels 1\nauplay_channels 1\n"
            "module_path /usr/lib/baresip/modules\n"
            "module g711.so\nmodule alsa.so\nmodule aufile.so\nmodule sndfile.so\n"
            "module stdio.so\n"
            "module_tmp account.so\n"
            "module_app menu.so\n"
            f"snd_path {recordings}\n"
        )
        if video:
            f.write(BARESIP_VIDEO)
    codecs = "audio_codecs=pcmu;video_codecs=vp8" if video else "audio_codecs=pcmu"
    with open(os.path.join(directory, "accounts"), "w") as f:
        f.write(f"<sip:bob@127.0.0.1>;regint=0;{codecs};answermode=manual\n")


def cdrsLogged(log):
    """@return: the CDRs (C{dict}s) LinkRTC's log holds (its C{CDR {json}} lines), in order."""
    return [json.loads(m) for m in re.findall(r"\bCDR (\{.*\})\s*$", log, re.MULTILINE)]


def launchChromium(run, tone):
    """
    Start headless Chromium (Playwright) whose fake microphone plays the
    WAV file C{tone}; sets C{run.playwright}, C{run.browser},
    C{run.context} and C{run.console} (the pages' console lines).
    L{closeChromium} stops it.
    """
    from playwright.sync_api import sync_playwright

    run.playwright = sync_playwright().start()
    run.browser = run.playwright.chromium.launch(
        executable_path="/usr/bin/chromium", headless=True, timeout=30000,
        args=CHROMIUM_FLAGS + [f"--use-file-for-fake-audio-capture={tone}"],
    )
    run.context = run.browser.new_context(viewport={"width": 1280, "height": 860})
    run.console = []
    run.step("chromium launched", version=run.browser.version)


def loginPage(run, name):
    """
    Open the softphone of C{run.linkrtc} in a new tab and log in as
    C{name}; @return: the page, once it shows C{registered} (also kept in
    C{run.pages}).
    """
    page = run.context.new_page()
    page.on("console", lambda m: run.console.append(f"{name} {m.type}: {m.text}"))
    page.on("pageerror", lambda e: run.console.append(f"{name} pageerror: {e}"))
    response = page.goto(f"http://127.0.0.1:{run.linkrtc.httpPort}/", timeout=15000)
    if response is None or response.status != 200 or not page.query_selector("#login"):
        raise AssertionError(
            f"LinkRTC does not serve the softphone at / (HTTP "
            f"{response.status if response else None}): linkrtc/static is not mounted")
    page.fill("#name", name)
    page.click("#login")
    page.wait_for_selector('#status[data-state="registered"]', timeout=10000)
    run.step(f"{name} registered", status=page.text_content("#status"))
    run.pages = getattr(run, "pages", {})
    run.pages[name] = page
    return page


def closeChromium(run, errors):
    """Close what L{launchChromium} started, appending failures to C{errors} (C{list})."""
    for closer in (lambda: getattr(run, "browser", None) and run.browser.close(),
                   lambda: getattr(run, "playwright", None) and run.playwright.stop()):
        try:
            closer()
        except Exception as e:
            errors.append(f"cleanup: {e}")


def snapshotPages(run):
    """After a failure: what each of C{run.pages} showed (and a screenshot), in C{run.result}."""
    shown = {}
    for name, page in getattr(run, "pages", {}).items():
        try:
            page.screenshot(path=os.path.join(run.out, f"failure-{name}.png"), full_page=True)
            shown[name] = {selector: page.inner_text(selector)[-2000:] for selector in
                           ("#status", "#banner", "#callInfo", "#calllog", "#ladder",
                            "#health", "#diagnosis")}
            shown[name]["panel"] = page.get_attribute("#callPanel", "data-state")
        except Exception as e:
            shown[name] = f"unavailable: {e}"
    run.result["pagesAtFailure"] = shown


class Run:
    """Holds every process and the result, and cleans up."""

    def __init__(self, out):
        self.out = out
        self.result = {"steps": [], "errors": []}
        self.linkrtc = None
        self.baresip = None
        self.browser = None
        self.playwright = None
        self.peerFiles = shortTempDir()

    def step(self, name, **details):
        self.result["steps"].append(dict(name=name, t=round(time.monotonic() - self.t0, 2),
                                         **details))

    def peerPath(self, name):
        """@return: the path of C{name} in this run's short directory (removed at cleanup)."""
        return os.path.join(self.peerFiles, name)

    def startDefaultLinkRTC(self):
        """Start the README's C{twistd -n linkrtc}, no option (CDRs only in its log)."""
        self.cdr = None
        process = LinkRTCProcess(embeddedDefaults=True)
        self.linkrtc = process
        process.start(timeout=20)
        self.step("linkrtc started (no option)", http=process.httpPort, sip=process.sipPort)
        return process

    def startLinkRTC(self, media, sipPort=None, httpPort=None):
        self.cdr = os.path.join(self.out, "cdr.jsonl")
        options = ["--media", media, "--cdr", self.cdr, "--ring-timeout", "20"]
        if media == "bridge":
            options += ["--ice-address", "127.0.0.1"]
        process = LinkRTCProcess(*options, sipPort=sipPort, httpPort=httpPort)
        self.linkrtc = process
        process.start(timeout=20)
        self.step("linkrtc started", http=process.httpPort, sip=process.sipPort)
        return process

    def launch(self, tone):
        launchChromium(self, tone)

    def page(self, name):
        return loginPage(self, name)

    def snapshot(self):
        snapshotPages(self)

    def finish(self):
        """Clean up; keep the pages' console and the end of LinkRTC's log."""
        self.cleanup()
        self.result["console"] = getattr(self, "console", [])[-80:]
        if self.linkrtc is not None:
            with open(os.path.join(self.out, "linkrtc.log"), errors="replace") as f:
                text = f.read()
            self.result["linkrtcLog"] = text[-8000:]
            self.result["loggedCDRs"] = cdrsLogged(text)
            self.result["linkrtcTracebacks"] = text.count("Traceback")

    def cleanup(self):
        closeChromium(self, self.result["errors"])
        if self.baresip is not None and self.baresip.poll() is None:
            self.baresip.send_signal(signal.SIGTERM)
            try:
                self.baresip.wait(3)
            except subprocess.TimeoutExpired:
                self.baresip.kill()
                self.baresip.wait(3)
        shutil.rmtree(self.peerFiles, ignore_errors=True)
        if self.linkrtc is not None:
            with open(os.path.join(self.out, "linkrtc.log"), "w") as f:
                f.write(self.linkrtc.logText())
            try:
                self.linkrtc.stop(timeout=10)
            except AssertionError as e:
                self.result["errors"].append(str(e))


def servesStatic(run):
    """Check LinkRTC serves C{/} and C{/linkrtc.js}; record the headers."""
    import urllib.error
    import urllib.request

    found = {}
    for path in ("/", "/linkrtc.js", "/app.js", "/style.css"):
        try:
            with urllib.request.urlopen(f"http://127.0.0.1:{run.linkrtc.httpPort}{path}",
                                        timeout=5) as r:
                body = r.read()
                found[path] = {"status": r.status, "type": r.headers.get("Content-Type"),
                               "length": len(body), "html": b"<html" in body[:200].lower()}
        except urllib.error.HTTPError as e:
            found[path] = {"status": e.code}
    run.result["static"] = found


def scenarioLogin(run, args):
    tone = run.peerPath("page880.wav")
    writeTone(tone, PAGE_TONE, 10, 48000)
    linkrtc = run.startLinkRTC(args.media)
    servesStatic(run)
    run.launch(tone)
    page = run.page("alice")
    sipPort, httpPort = linkrtc.sipPort, linkrtc.httpPort
    with open(os.path.join(run.out, "linkrtc-first.log"), "w") as f:
        f.write(linkrtc.logText())
    linkrtc.stop()
    page.wait_for_selector('#status[data-state="reconnecting"]', timeout=10000)
    run.result["lost"] = {"status": page.text_content("#status"),
                          "banner": page.text_content("#banner")}
    run.step("connection lost shown", **run.result["lost"])
    run.startLinkRTC(args.media, sipPort=sipPort, httpPort=httpPort)
    page.wait_for_selector('#status[data-state="registered"]', timeout=20000)
    run.result["reconnected"] = {"status": page.text_content("#status"),
                                 "banner": page.text_content("#banner")}
    run.step("re-registered without reload")
    run.result["ok"] = True


def scenarioCall(run, args):
    baresipCallsAlice(run, args, run.startLinkRTC(args.media))


def scenarioReadme(run, args):
    baresipCallsAlice(run, args, run.startDefaultLinkRTC())


def baresipCallsAlice(run, args, linkrtc):
    """
    baresip calls alice through C{linkrtc} (running); the page answers,
    both tones flow, the page sends DTMF and hangs up; bob's tab looks on.
    """
    pageTone = run.peerPath("page880.wav")
    phoneTone = run.peerPath("phone440.wav")
    writeTone(pageTone, PAGE_TONE, 20, 48000)
    writeTone(phoneTone, PHONE_TONE, 60, 8000)  # longer than the call: baresip hangs up at EOF
    servesStatic(run)
    run.launch(pageTone)
    alice = run.page("alice")
    bob = run.page("bob")

    # baresip cuts long file names (about 127 octets): its config, tone and
    # recordings are in the short directory; recordings are copied to out.
    baresipLog = startBaresip(run, args, linkrtc, phoneTone)

    alice.wait_for_selector("#answer:not([disabled])", timeout=15000)
    run.result["incoming"] = alice.text_content("#callInfo")
    run.step("incoming shown", info=run.result["incoming"])
    alice.click("#answer")
    alice.wait_for_selector('#callPanel[data-state="open"]', timeout=20000)
    run.step("confirmed")
    time.sleep(args.talk)
    stats1 = alice.evaluate("window.softphone.stats()")
    run.result["pageHeard"] = alice.evaluate(REMOTE_FREQUENCY)
    alice.click(f'#dialpad button[data-digit="{DIGIT}"]')
    run.step("dtmf sent", digit=DIGIT)
    time.sleep(1.5)
    stats2 = alice.evaluate("window.softphone.stats()")
    run.result["stats"] = [stats1, stats2]
    shot = os.path.join(run.out, "softphone.png")
    alice.screenshot(path=shot, full_page=True)
    run.result["screenshot"] = shot
    run.step("screenshot", path=shot)
    run.result["ladderRows"] = alice.locator("#ladder .row").count()
    run.result["ladderText"] = alice.inner_text("#ladder")[-3000:]
    alice.click("#hangup")
    alice.wait_for_selector('#calllog li[data-state="dropped"]', timeout=10000)
    run.result["calllog"] = alice.inner_text("#calllog")
    run.result["callPanel"] = alice.inner_text("#callInfo")
    run.step("hung up", log=run.result["calllog"])
    run.result["bobCalllog"] = bob.inner_text("#calllog")
    run.result["bobLadderRows"] = bob.locator("#ladder .row").count()

    # Let baresip see the BYE and close its recording, then stop it.
    text, decoded = stopBaresip(run, baresipLog)
    run.result["baresipLog"] = text[-6000:]
    run.result["phoneDigits"] = digitsHeard(text)
    run.result["phoneSawBye"] = "terminated" in text.lower()
    encoded = sorted(glob.glob(os.path.join(run.out, "bsrec", "*-enc.wav")))
    run.result["phoneHeard"] = analyseWav(decoded[-1]) if decoded else None
    run.result["phoneSent"] = analyseWav(encoded[-1]) if encoded else None
    run.result["ok"] = True


def startBaresip(run, args, linkrtc, phoneTone):
    """Start baresip (440 Hz) dialling alice through C{linkrtc}; @return: its log file."""
    recordings = run.peerPath("rec")
    config = run.peerPath("baresip")
    baresipConfig(config, freePort(both=True), phoneTone, recordings)
    baresipLog = open(os.path.join(run.out, "baresip.log"), "w")
    run.baresip = subprocess.Popen(
        ["baresip", "-v", "-s", "-f", config, "-t", str(int(args.baresip_seconds)),
         "-e", f"/dial sip:alice@127.0.0.1:{linkrtc.sipPort}"],
        stdin=subprocess.DEVNULL, stdout=baresipLog, stderr=subprocess.STDOUT, cwd=run.out,
    )
    run.step("baresip dialling")
    return baresipLog


def stopBaresip(run, baresipLog):
    """Let baresip see the BYE, stop it; @return: its log and its recordings' paths."""
    deadline = time.monotonic() + 5
    while time.monotonic() < deadline and run.baresip.poll() is None:
        with open(baresipLog.name, errors="replace") as f:
            if "terminated" in f.read().lower():
                break
        time.sleep(0.2)
    time.sleep(0.5)
    if run.baresip.poll() is None:
        run.baresip.send_signal(signal.SIGTERM)
        try:
            run.baresip.wait(5)
        except subprocess.TimeoutExpired:
            run.baresip.kill()
            run.baresip.wait(3)
    baresipLog.close()
    with open(baresipLog.name, errors="replace") as f:
        text = f.read()
    kept = os.path.join(run.out, "bsrec")
    shutil.copytree(run.peerPath("rec"), kept, dirs_exist_ok=True)
    decoded = sorted(glob.glob(os.path.join(kept, "*-dec.wav")))
    return text, decoded


def wavTail(path, seconds):
    """@return: L{analyseSamples} of the last C{seconds} of a WAV file (mono)."""
    import wave

    import numpy

    from linkrtc.test.e2e.drivers import analyseSamples

    with wave.open(path, "rb") as w:
        rate, channels = w.getframerate(), w.getnchannels()
        data = w.readframes(w.getnframes())
    samples = numpy.frombuffer(data, dtype="<i2").astype(float) / 32768.0
    if channels > 1:
        samples = samples.reshape(-1, channels).mean(axis=1)
    return analyseSamples(samples[-int(rate * seconds):], rate)


def scenarioReload(run, args):
    """
    baresip calls alice; the page answers; audio flows; the page reloads
    in the middle of the call and resumes it by itself; audio flows both
    ways again; the page hangs up.
    """
    linkrtc = run.startLinkRTC("bridge")
    pageTone = run.peerPath("page880.wav")
    phoneTone = run.peerPath("phone440.wav")
    writeTone(pageTone, PAGE_TONE, 30, 48000)
    writeTone(phoneTone, PHONE_TONE, 60, 8000)  # longer than the call: baresip hangs up at EOF
    run.launch(pageTone)
    alice = run.page("alice")
    baresipLog = startBaresip(run, args, linkrtc, phoneTone)
    alice.wait_for_selector("#answer:not([disabled])", timeout=15000)
    alice.click("#answer")
    alice.wait_for_selector('#callPanel[data-state="open"]', timeout=20000)
    run.step("confirmed")
    time.sleep(args.talk)
    run.result["pageHeardBefore"] = alice.evaluate(REMOTE_FREQUENCY)
    callBefore = alice.evaluate("window.softphone.current && window.softphone.current.call.id")

    alice.reload(timeout=15000)
    run.step("page reloaded")
    alice.wait_for_selector('#status[data-state="registered"]', timeout=15000)
    run.step("registered again by itself", status=alice.text_content("#status"))
    alice.wait_for_selector('#callPanel[data-state="open"]', timeout=20000)
    run.step("call resumed")
    callAfter = alice.evaluate("window.softphone.current && window.softphone.current.call.id")
    run.result["sameCall"] = bool(callBefore) and callBefore == callAfter
    time.sleep(args.talk)
    stats1 = alice.evaluate("window.softphone.stats()")
    run.result["pageHeard"] = alice.evaluate(REMOTE_FREQUENCY)
    time.sleep(1.0)
    stats2 = alice.evaluate("window.softphone.stats()")
    run.result["stats"] = [stats1, stats2]
    run.result["ladderText"] = alice.inner_text("#ladder")[-3000:]
    alice.click("#hangup")
    alice.wait_for_selector('#calllog li[data-state="dropped"]', timeout=10000)
    run.result["calllog"] = alice.inner_text("#calllog")
    run.step("hung up", log=run.result["calllog"])

    text, decoded = stopBaresip(run, baresipLog)
    run.result["baresipLog"] = text[-6000:]
    run.result["phoneSawBye"] = "terminated" in text.lower()
    # The end of baresip's recording: only audio from after the reload.
    run.result["phoneHeard"] = wavTail(decoded[-1], args.talk - 1.0) if decoded else None
    run.result["phoneHeardWhole"] = analyseWav(decoded[-1]) if decoded else None
    run.result["ok"] = True


SCENARIOS = {"login": scenarioLogin, "call": scenarioCall, "readme": scenarioReadme,
             "reload": scenarioReload}


def main():
    parser = driverParser(SCENARIOS, deadline=70.0, defaultScenario="call")
    parser.add_argument("--media", default=None)
    parser.add_argument("--talk", type=float, default=4.0, help="seconds of audio before DTMF")
    parser.add_argument("--baresip-seconds", type=float, default=45.0)
    args = parser.parse_args()
    if args.media is None:
        args.media = "passthrough" if args.scenario == "login" else "bridge"
    run = Run(args.out)
    run.t0 = time.monotonic()
    runScenario(run, SCENARIOS[args.scenario], args, run.snapshot, run.finish, catch=Exception)


if __name__ == "__main__":
    main()
