"""
A video call through C{--media bridge} in real headless Chromium: baresip
(VP8, its C{fakevideo} camera) calls alice; the demo page, logged in with
video on, answers with Chromium's fake camera; VP8 frames must arrive
both ways. Prints one JSON line (see L{browser_driver} for the frame).

    unshare --net python video_driver.py --out DIR

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
    PAGE_TONE,
    PHONE_TONE,
    Run,
    baresipConfig,
    stopBaresip,
)
from linkrtc.test.e2e.drivers import driverParser, runScenario, writeTone  # noqa: E402
from linkrtc.test.e2e.harness import freePort  # noqa: E402

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


def videoCall(run, args, pageVideo):
    linkrtc = run.startLinkRTC("bridge")
    pageTone = run.peerPath("page880.wav")
    phoneTone = run.peerPath("phone440.wav")
    writeTone(pageTone, PAGE_TONE, 30, 48000)
    writeTone(phoneTone, PHONE_TONE, 60, 8000)
    run.launch(pageTone)
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
    time.sleep(args.talk)
    run.result["audioStats"] = page.evaluate("window.softphone.stats()")
    first = page.evaluate(VIDEO_STATS)
    run.result["rendered"] = page.evaluate(RENDERED_FRAMES)
    second = page.evaluate(VIDEO_STATS)
    run.result["videoStats"] = [first, second]
    shot = os.path.join(run.out, "video.png")
    page.screenshot(path=shot, full_page=True)
    page.click("#hangup")
    page.wait_for_selector('#calllog li[data-state="dropped"]', timeout=10000)
    run.step("hung up")
    text, _ = stopBaresip(run, baresipLog)
    run.result["baresipLog"] = text[-8000:]
    run.result["phoneAnswerVideo"] = re.findall(r"^m=video .*$", text, re.MULTILINE)
    run.result["phoneVideo"] = baresipVideo(text)
    run.result["ok"] = True


def main():
    scenarios = {"video": scenarioVideo, "videoOff": scenarioVideoOff}
    parser = driverParser(scenarios, deadline=75.0, defaultScenario="video")
    parser.add_argument("--talk", type=float, default=6.0, help="seconds of video before measuring")
    parser.add_argument("--baresip-seconds", type=float, default=45.0)
    args = parser.parse_args()
    run = Run(args.out)
    run.t0 = time.monotonic()

    def finished():
        run.finish()
        run.result["videoRelay"] = videoEnded(run.result.get("linkrtcLog") or "")

    runScenario(run, scenarios[args.scenario], args, run.snapshot, finished, catch=Exception)


if __name__ == "__main__":
    main()
