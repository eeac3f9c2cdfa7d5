"""
Video calls through C{--media bridge} in real headless Chromium and
baresip (VP8, its C{fakevideo} camera); VP8 frames must arrive both ways.
Prints one JSON line (see L{browser_driver} for the frame).

    unshare --net python video_driver.py --scenario SCENARIO --out DIR

Scenarios:
  - C{video}: baresip calls alice; the demo page, logged in with video on,
    answers with Chromium's fake camera.
  - C{videoOff}: the same call, the page logged in without video: it
    declines the video (inactive), LinkRTC refuses it (port 0).
  - C{pageCallsPhone}: baresip registers as bob (LinkRTC's registrar,
    L{registrar_driver}) and answers by itself; the page, with video,
    dials bob: the client's video offer goes to SIP as VP8.

What is measured:
 - in Chromium, the remote video: C{getStats()} inbound-rtp video
   (C{framesDecoded}, C{packetsReceived}, C{codec}) twice, and frames
   rendered in the page's C{<video>} (C{requestVideoFrameCallback});
 - at baresip's side, LinkRTC's log line C{video ended: {...}} (the
   relay's counters: packets each way, feedback relayed) and baresip's
   own log (its video stream's decoder and RTCP).
"""

import json
import os
import re
import subprocess
import sys
import time

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.dirname(HERE))))

from linkrtc.test.e2e.browser_driver import (  # noqa: E402
    BARESIP_VIDEO,
    PAGE_TONE,
    PHONE_TONE,
    Run,
    baresipConfig,
    launchChromium,
    stopBaresip,
)
from linkrtc.test.e2e.drivers import driverParser, runScenario, writeTone  # noqa: E402
from linkrtc.test.e2e.harness import freePort  # noqa: E402
from linkrtc.test.e2e.registrar_driver import RegistrarRun  # noqa: E402

# The page's remote video: inbound-rtp video stats and the codec.
VIDEO_STATS = """async () => {
  const record = window.softphone.current;
  if (!record || !record.call.peerConnection) return null;
  const report = await record.call.peerConnection.getStats();
  const result = {inbound: null, outbound: null, codecs: {}};
  report.forEach((s) => {
    if (s.type === "codec") result.codecs[s.id] = s.mimeType;
    if (s.type === "inbound-rtp" && s.kind === "video") result.inbound = {
      packetsReceived: s.packetsReceived, framesDecoded: s.framesDecoded,
      framesReceived: s.framesReceived, keyFramesDecoded: s.keyFramesDecoded,
      frameWidth: s.frameWidth, frameHeight: s.frameHeight, pliCount: s.pliCount,
      nackCount: s.nackCount, firCount: s.firCount, codecId: s.codecId};
    if (s.type === "outbound-rtp" && s.kind === "video") result.outbound = {
      packetsSent: s.packetsSent, framesEncoded: s.framesEncoded, pliCount: s.pliCount,
      nackCount: s.nackCount, firCount: s.firCount, codecId: s.codecId};
  });
  for (const side of ["inbound", "outbound"]) {
    if (result[side]) result[side].codec = result.codecs[result[side].codecId] || null;
  }
  const video = document.querySelector("#remoteVideo");
  result.element = video ? {hidden: video.hidden, width: video.videoWidth,
                            height: video.videoHeight, hasStream: !!video.srcObject} : null;
  result.remoteVideoStream = !!record.call.remoteVideoStream;
  return result;
}"""

# Frames the page's <video> element renders in 2 s.
RENDERED_FRAMES = """async () => {
  const video = document.querySelector("#remoteVideo");
  if (!video || !video.requestVideoFrameCallback) return null;
  let frames = 0;
  const tick = () => { frames += 1; video.requestVideoFrameCallback(tick); };
  video.requestVideoFrameCallback(tick);
  await new Promise((resolve) => setTimeout(resolve, 2000));
  return frames;
}"""


def videoEnded(log):
    """@return: the video relay's counters of LinkRTC's C{video ended: {...}} line, or C{None}."""
    found = re.findall(r"video ended: (\{.*\})\s*$", log, re.MULTILINE)
    return json.loads(found[-1]) if found else None


def baresipVideo(log):
    """
    @return: baresip's last status line's video figures: C{sentBps},
        C{receivedBps} (bit/s) and C{encodedFps}, C{decodedFps} (its
        C{video=TX/RX (bit/s) efps=ENC/DEC}), or C{None}.
    """
    found = re.findall(r"video=(\d+)/(\d+) \(bit/s\) efps=([\d.]+)/([\d.]+)", log)
    if not found:
        return None
    sent, received, encoded, decoded = found[-1]
    return {"sentBps": int(sent), "receivedBps": int(received),
            "encodedFps": float(encoded), "decodedFps": float(decoded)}


def scenarioVideo(run, args):
    """baresip calls the page with video; the page answers with video."""
    videoCall(run, args, pageVideo=True)


def scenarioVideoOff(run, args):
    """baresip calls the page with video; the page, logged in without video, declines it."""
    videoCall(run, args, pageVideo=False)


def videoPage(run, linkrtc, pageVideo):
    """
    Launch Chromium and log alice in, with the page's *Video* box as
    C{pageVideo}; @return: the page.
    """
    pageTone = run.peerPath("page880.wav")
    writeTone(pageTone, PAGE_TONE, 30, 48000)
    launchChromium(run, pageTone)
    page = run.context.new_page()
    page.on("console", lambda m: run.console.append(f"alice {m.type}: {m.text}"))
    page.goto(f"http://127.0.0.1:{linkrtc.httpPort}/", timeout=15000)
    page.fill("#name", "alice")
    if pageVideo:
        page.check("#video")
    page.click("#login")
    page.wait_for_selector('#status[data-state="registered"]', timeout=10000)
    run.pages = {"alice": page}
    run.step("alice registered", video=pageVideo)
    return page


def measureVideo(run, args, page):
    """After C{args.talk} seconds: the page's audio and video figures, a screenshot."""
    time.sleep(args.talk)
    run.result["audioStats"] = page.evaluate("window.softphone.stats()")
    first = page.evaluate(VIDEO_STATS)
    run.result["rendered"] = page.evaluate(RENDERED_FRAMES)
    second = page.evaluate(VIDEO_STATS)
    run.result["videoStats"] = [first, second]
    page.screenshot(path=os.path.join(run.out, "video.png"), full_page=True)


def videoCall(run, args, pageVideo):
    linkrtc = run.startLinkRTC("bridge")
    phoneTone = run.peerPath("phone440.wav")
    writeTone(phoneTone, PHONE_TONE, 60, 8000)
    page = videoPage(run, linkrtc, pageVideo)

    recordings = run.peerPath("rec")
    config = run.peerPath("baresip")
    baresipConfig(config, freePort(both=True), phoneTone, recordings, video=True)
    baresipLog = open(os.path.join(run.out, "baresip.log"), "w")
    run.baresip = subprocess.Popen(
        ["baresip", "-v", "-f", config, "-t", str(int(args.baresip_seconds)),
         "-e", f"/dial sip:alice@127.0.0.1:{linkrtc.sipPort}"],
        stdin=subprocess.DEVNULL, stdout=baresipLog, stderr=subprocess.STDOUT, cwd=run.out,
    )
    run.step("baresip dialling with video")
    page.wait_for_selector("#answer:not([disabled])", timeout=15000)
    run.result["offerHasVideo"] = page.evaluate(
        "/^m=video [1-9]/m.test(window.softphone.current.call.offer || '')")
    page.click("#answer")
    page.wait_for_selector('#callPanel[data-state="open"]', timeout=20000)
    run.step("confirmed")
    run.result["answerVideo"] = page.evaluate("""() => {
      const pc = window.softphone.current.call.peerConnection;
      const sdp = pc && pc.localDescription ? pc.localDescription.sdp : "";
      const m = sdp.split("m=").find((s) => s.startsWith("video"));
      return m ? {line: "m=" + m.split("\\r\\n")[0],
                  inactive: m.includes("a=inactive")} : null;
    }""")
    measureVideo(run, args, page)
    page.click("#hangup")
    page.wait_for_selector('#calllog li[data-state="dropped"]', timeout=10000)
    run.step("hung up")
    text, _ = stopBaresip(run, baresipLog)
    run.result["baresipLog"] = text[-8000:]
    run.result["phoneAnswerVideo"] = re.findall(r"^m=video .*$", text, re.MULTILINE)
    run.result["phoneVideo"] = baresipVideo(text)
    run.result["ok"] = True


class VideoRegistrarRun(RegistrarRun):
    """A L{RegistrarRun} whose registered baresip has VP8 video."""

    def spawnBaresip(self, config, *args):
        with open(os.path.join(config, "config"), "a") as f:
            f.write(BARESIP_VIDEO)
        accounts = os.path.join(config, "accounts")
        with open(accounts) as f:
            account = f.read()
        with open(accounts, "w") as f:
            f.write(account.replace("audio_codecs=pcmu", "audio_codecs=pcmu;video_codecs=vp8"))
        super().spawnBaresip(config, *args)


def scenarioPageCallsPhone(run, args):
    """The page, with video, calls bob (a registered baresip with video)."""
    run.startLinkRTC()
    run.startRegisteredBaresip(seconds=60)
    page = videoPage(run, run.linkrtc, True)
    page.fill("#to", "bob")
    page.click("#call")
    run.step("page dialled bob")
    page.wait_for_selector('#callPanel[data-state="open"]', timeout=20000)
    run.step("confirmed")
    measureVideo(run, args, page)
    page.click("#hangup")
    page.wait_for_selector('#calllog li[data-state="dropped"]', timeout=10000)
    run.step("page hung up")
    run.finishPhone()
    run.result["phoneVideo"] = baresipVideo(run.baresipText())
    deadline = time.monotonic() + 5
    while time.monotonic() < deadline and not videoEnded("\n".join(run.linkrtcLines())):
        time.sleep(0.1)
    run.result["linkrtcLog"] = "\n".join(run.linkrtcLines())[-8000:]
    run.result["ok"] = True


def main():
    scenarios = {"video": scenarioVideo, "videoOff": scenarioVideoOff,
                 "pageCallsPhone": scenarioPageCallsPhone}
    parser = driverParser(scenarios, deadline=75.0, defaultScenario="video")
    parser.add_argument("--talk", type=float, default=6.0, help="seconds of video before measuring")
    parser.add_argument("--baresip-seconds", type=float, default=45.0)
    args = parser.parse_args()
    if args.scenario == "pageCallsPhone":
        run = VideoRegistrarRun(args.out)
        failed = run.failed
    else:
        run = Run(args.out)
        failed = run.snapshot
    run.t0 = time.monotonic()

    def finished():
        run.finish()
        run.result["videoRelay"] = videoEnded(run.result.get("linkrtcLog") or "")

    runScenario(run, scenarios[args.scenario], args, failed, finished, catch=Exception)


if __name__ == "__main__":
    main()
