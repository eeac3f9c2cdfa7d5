"""
Video pass-through end to end (C{--media bridge}): baresip with VP8 and
its C{fakevideo} camera calls alice; the demo page, logged in with video
on, answers with Chromium's fake camera; VP8 frames arrive both ways,
relayed by LinkRTC without decoding. The browser side runs in
C{video_driver.py} under C{unshare --net}.
"""

import json
import os

from twisted.trial.unittest import SynchronousTestCase

from linkrtc.test.e2e import harness
from linkrtc.test.e2e.harness import requireNamespaces, requirePeer
from linkrtc.test.e2e.test_browser import requireChromium

DRIVER = os.path.join(os.path.dirname(os.path.abspath(__file__)), "video_driver.py")


class VideoCallTests(SynchronousTestCase):
    def setUp(self):
        requireChromium()
        requireNamespaces()
        requirePeer("baresip")

    def test_videoFromBaresip(self):
        """
        baresip (VP8) calls the page with video: Chromium decodes and
        renders baresip's frames, baresip decodes Chromium's, and the relay
        carried both streams and relayed RTCP feedback.
        """
        result, _ = harness.runScenario(
            self, DRIVER, "video", 100.0, "the video scenario failed:",
            lambda result: ["\nconsole: " + "\n".join(result.get("console", []))[-2000:]])
        report = json.dumps({k: result.get(k) for k in (
            "videoStats", "rendered", "videoRelay", "phoneVideo", "steps")})
        self.assertTrue(result["offerHasVideo"], report)

        # baresip's video reached the page: decoded, more and more, rendered.
        first, second = result["videoStats"]
        self.assertEqual(second["inbound"]["codec"], "video/VP8", report)
        self.assertGreater(first["inbound"]["framesDecoded"], 10, report)
        self.assertGreater(second["inbound"]["framesDecoded"],
                           first["inbound"]["framesDecoded"], report)
        self.assertGreater(second["inbound"]["frameWidth"], 0, report)
        self.assertTrue(second["remoteVideoStream"], report)
        self.assertFalse(second["element"]["hidden"], report)
        self.assertGreater(result["rendered"], 3, report)

        # The page's camera reached baresip, through the relay.
        self.assertGreater(second["outbound"]["packetsSent"], 50, report)
        relay = result["videoRelay"]
        self.assertIsNotNone(relay, report)
        self.assertGreater(relay["sipPackets"], 50, report)
        self.assertGreater(relay["webrtcPackets"], 50, report)
        self.assertEqual(relay["rejected"], 0, report)
        phone = result["phoneVideo"]
        self.assertIsNotNone(phone, "no baresip status line\n" + report)
        self.assertGreater(phone["receivedBps"], 0, report)
        self.assertGreater(phone["decodedFps"], 0, report)
        self.assertEqual(result["linkrtcTracebacks"], 0, result.get("linkrtcLog", "")[-4000:])

    def test_videoDeclined(self):
        """
        baresip calls with video; the page, logged in without video,
        answers with its video inactive: LinkRTC refuses baresip's video
        (port 0) and the audio call goes on.
        """
        result, _ = harness.runScenario(
            self, DRIVER, "videoOff", 100.0, "the video-off scenario failed:",
            lambda result: ["\nconsole: " + "\n".join(result.get("console", []))[-2000:]])
        report = json.dumps({k: result.get(k) for k in (
            "answerVideo", "videoStats", "videoRelay", "audioStats", "steps")})
        self.assertTrue(result["offerHasVideo"], report)
        self.assertTrue(result["answerVideo"]["inactive"], report)
        self.assertIn("video declined by the browser", result["linkrtcLog"], report)
        self.assertIsNone(result["videoRelay"], report)
        self.assertIsNone(result["videoStats"][1]["inbound"], report)
        self.assertFalse(result["videoStats"][1]["remoteVideoStream"], report)
        self.assertTrue(result["videoStats"][1]["element"]["hidden"], report)
        self.assertGreater(result["audioStats"]["inbound"]["packetsReceived"], 100, report)
        self.assertEqual(result["linkrtcTracebacks"], 0, result.get("linkrtcLog", "")[-4000:])

    def test_pageCallsPhone(self):
        """
        The page, with video, calls bob, a baresip registered with
        LinkRTC's registrar (VP8): the client's video offer reaches SIP as
        VP8, and frames arrive both ways.
        """
        result, _ = harness.runScenario(
            self, DRIVER, "pageCallsPhone", 100.0, "the page-calls-phone video scenario failed:",
            lambda result: ["\nbaresip: " + (result.get("baresipLog") or "")[-2000:]])
        report = json.dumps({k: result.get(k) for k in (
            "videoStats", "rendered", "videoRelay", "phoneVideo", "steps")})
        first, second = result["videoStats"]
        self.assertEqual(second["inbound"]["codec"], "video/VP8", report)
        self.assertGreater(second["inbound"]["framesDecoded"],
                           first["inbound"]["framesDecoded"], report)
        self.assertGreater(result["rendered"], 3, report)
        relay = result["videoRelay"]
        self.assertIsNotNone(relay, report)
        self.assertGreater(relay["sipPackets"], 50, report)
        self.assertGreater(relay["webrtcPackets"], 50, report)
        self.assertGreater(result["phoneVideo"]["receivedBps"], 0, report)
        self.assertGreater(result["phoneVideo"]["decodedFps"], 0, report)
