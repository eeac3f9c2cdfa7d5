# -*- test-case-name: linkrtc.media.test.test_videoside -*-
"""
The video of a L{linkrtc.media.bridge.BridgeSession} (a mix-in): an
incoming call whose SIP offer has an C{m=video} stream with a format the
bridge relays (L{linkrtc.media.sdp.videoCodecs}: VP8, H.264 mode 1
Baseline) offers the browser a video transceiver with the first of them
(one codec: the SIP answer, which may go in a 183 before the browser
answers, names it); the SIP answer accepts the stream on a port pair of
its own, and once the browser's answer takes video
L{linkrtc.media.video.VideoRelay} carries the packets both ways,
undecoded. Otherwise (no such format, the browser declined video before
the SIP answer, no port left) the SIP answer rejects the stream (port 0,
RFC 3264 §6), as for any stream the bridge does not carry.

Outgoing calls: when the client's offer has video in a relayable format,
aiortc answers it with our video transceiver (the first such codec) and
the INVITE's offer adds an C{m=video} section (L{_offerVideo}); the SIP
answer starts the relay (L{_videoAnswered}) or, declining it, leaves the
browser's video unanswered. A client that comes back after a reload
(L{linkrtc.media.reattach}) with video gets the relay on its new leg
(L{_videoReattached}).
"""

import json
import socket

from twisted.internet import defer
from twisted.logger import Logger

from linkrtc import metrics
from linkrtc.error import MediaError
from linkrtc.media import sdp as sdpmod
from linkrtc.media.video import SIPVideoSocket, VideoRelay

log = Logger()

_WILDCARDS = (None, "", "0.0.0.0", "::")

_FLAGS = {"sendrecv": (True, True), "sendonly": (True, False), "recvonly": (False, True),
          "inactive": (False, False)}


def intersectDirections(first, second):
    """
    @return: the direction allowed by both C{first} and C{second} (one of
        L{linkrtc.media.sdp.DIRECTIONS}): it sends if both send, receives
        if both receive.
    """
    a, b = _FLAGS.get(first, (True, True)), _FLAGS.get(second, (True, True))
    flags = (a[0] and b[0], a[1] and b[1])
    return next(name for name, value in _FLAGS.items() if value == flags)


def browserVideoDirection(clientSdp):
    """
    @param clientSdp: the browser's SDP (C{str}).
    @return: the direction of its first video stream, from the browser's
        side (C{"sendrecv"}: it sends and receives), or C{None} when it
        has none, rejected it (port 0) or the SDP does not parse.
    """
    try:
        desc = sdpmod.parseSDP(clientSdp)
    except MediaError:
        return None
    for m in desc.media:
        if m.media == "video":
            return m.direction if m.port != 0 else None
    return None


class SIPVideo:
    """
    One call's SIP-side video: the offered stream and, once running, its
    sockets, ports and relay.

    @ivar index: the stream's position among the offer's m= lines.
    @ivar offered: its L{linkrtc.media.sdp.MediaDescription}.
    @ivar codecs: the relayable L{linkrtc.media.sdp.VideoCodec}s offered.
    @ivar codec: the one in use, once running.
    @ivar direction: our direction towards the SIP side.
    """

    def __init__(self, index, offered, codecs):
        self.index = index
        self.offered = offered
        self.codecs = codecs
        self.codec = None
        self.direction = "sendrecv"
        self.rtp = SIPVideoSocket()
        self.rtcp = SIPVideoSocket()
        self.ports = None
        self.port = None
        self.relay = None

    def follow(self, m):
        """Take the SIP side's address for the stream from C{m} (held: none)."""
        host = m.address[1]
        held = host in ("0.0.0.0", "::")
        self.rtp.setRemote(None if held else (host, m.port))
        self.rtcp.setRemote(None if held else (host, m.port + 1))
        self.offered = m

    def section(self, direction):
        """@return: our C{m=video} lines (L{linkrtc.media.sdp.videoSection})."""
        feedback = sdpmod.videoFeedback(self.offered, self.codec.payloadType)
        return sdpmod.videoSection(self.port, self.codec,
                                   intersectDirections(self.direction, direction),
                                   proto=self.offered.proto, feedback=feedback)


class VideoSide:
    """
    L{linkrtc.media.bridge.BridgeSession}'s methods for video; they use the
    session's C{factory}, C{leg}, C{tap}, C{_reactor}, C{_family} and
    C{callId}, and keep C{_video} (a L{SIPVideo} or C{None}).
    """

    _video = None

    def _videoOffered(self, desc):
        """
        The SIP offer C{desc} (a L{linkrtc.media.sdp.SessionDescription}).

        @return: the video codec names to offer the browser (C{list},
            empty when the offer has no video the bridge relays).
        """
        self._video = None
        found = sdpmod.videoStream(desc)
        if found is None or self.factory.relayProblem:
            return []
        index, m = found
        codecs = sdpmod.videoCodecs(m)
        if not codecs:
            log.info("call {callId}: video refused, no format we relay ({formats})",
                     callId=self.callId, formats=" ".join(m.formats))
            return []
        self._video = SIPVideo(index, m, codecs)
        self._video.codec = codecs[0]
        self._video.direction = sdpmod.answerDirection(m.direction)
        return [codecs[0].name]

    def _bindVideo(self):
        """
        Take the video's RTP/RTCP port pair (once).

        @return: C{True} if the video has its ports; C{False} (video
            refused, logged) when the range is exhausted.
        """
        video = self._video
        if video.ports is not None:
            return True
        interface = self.factory.rtpInterface
        if interface in _WILDCARDS:
            interface = "::" if self._family == socket.AF_INET6 else ""
        try:
            video.ports = self.factory.allocator.listen(video.rtp, video.rtcp, interface=interface)
        except MediaError:
            log.warn("call {callId}: no RTP port for video; video refused", callId=self.callId)
            self._video = None
            return False
        video.port = video.ports[0].getHost().port
        if video.offered is not None:
            video.follow(video.offered)
        return True

    def _startVideo(self, clientSdp):
        """
        The browser answered (C{clientSdp}): if it took video, take a port
        pair and start the relay; otherwise the SIP answer rejects video.
        """
        video = self._video
        if video is None:
            return
        negotiated = self.leg.negotiatedVideoCodec()
        browserDirection = browserVideoDirection(clientSdp)
        codec = video.codec
        if (negotiated is None or negotiated[0] != codec.name
                or browserDirection in (None, "inactive")):
            log.info("call {callId}: video declined by the browser", callId=self.callId)
            defer.DeferredList(self._videoRelease(), consumeErrors=True)
            return
        if not self._bindVideo():
            return
        video.direction = intersectDirections(video.direction, browserDirection)
        self._startRelay(negotiated[1])

    def _startRelay(self, webrtcPT):
        """Start the relay of L{_video} on the current tap and leg."""
        video = self._video
        video.relay = VideoRelay(self._reactor, self.tap, self.leg.videoSSRC, video.rtp,
                                 video.rtcp, video.codec.payloadType, webrtcPT)
        video.relay.start()
        log.info("call {callId}: video relayed ({codec}, SIP PT {sip}, WebRTC PT {webrtc})",
                 callId=self.callId, codec=video.codec.name, sip=video.codec.payloadType,
                 webrtc=webrtcPT)

    # -- outgoing calls and resumed clients ---------------------------------

    def _clientVideoNames(self, clientOffer):
        """
        @param clientOffer: the client's SDP offer (C{str}).
        @return: the video codec to answer it with (C{[name]}: the first
            relayable one it offers), or C{[]} (no enabled video, none
            relayable, or the relay is disabled).
        """
        if self.factory.relayProblem:
            return []
        try:
            desc = sdpmod.parseSDP(clientOffer)
        except MediaError:
            return []
        for m in desc.media:
            if m.media == "video" and m.port != 0 and m.direction != "inactive":
                self._clientVideoDirection = m.direction
                names = [c.name for c in sdpmod.videoCodecs(m)]
                return names[:1]
        return []

    _clientVideoDirection = "sendrecv"

    def _offerVideo(self, body):
        """
        Our SIP offer C{body} (C{bytes}, audio only) for an outgoing call:
        with an C{m=video} section (our payload type, NACK/PLI/FIR) when
        aiortc took the client's video.
        """
        negotiated = self.leg.negotiatedVideoCodec()
        if self.leg.videoTransceiver is None or negotiated is None:
            return body
        codec = sdpmod.ourVideoCodec(negotiated[0])
        self._video = SIPVideo(1, None, [codec])
        self._video.codec = codec
        self._video.direction = self._clientVideoDirection
        if not self._bindVideo():
            return body
        lines = sdpmod.videoSection(self._video.port, codec, self._video.direction)
        return body + ("\r\n".join(lines) + "\r\n").encode("ascii")

    def _videoAnswered(self, desc):
        """
        The SIP answer C{desc} to L{_offerVideo}'s offer: its video stream
        (at our index, our codec) starts the relay; a refused one (port 0,
        another codec, none) ends our side of it.
        """
        video = self._video
        if video is None:
            return
        m = desc.media[video.index] if video.index < len(desc.media) else None
        match = [c for c in sdpmod.videoCodecs(m) if c.name == video.codec.name] \
            if m is not None and m.media == "video" and m.port != 0 and m.address else []
        if not match:
            if video.relay is None or m is None or m.port == 0:
                log.info("call {callId}: the SIP side declined video", callId=self.callId)
                defer.DeferredList(self._videoRelease(), consumeErrors=True)
            return
        video.follow(m)
        if video.relay is not None:
            return
        video.codec = sdpmod.VideoCodec(video.codec.name, match[0].payloadType, video.codec.fmtp)
        video.direction = intersectDirections(video.direction,
                                              sdpmod.answerDirection(m.direction))
        self._startRelay(self.leg.negotiatedVideoCodec()[1])

    def _videoUnanswered(self):
        """An offerless call's video (the 2xx offers, we answer in the ACK): not carried."""
        if self._video is not None and self._video.offered is None:
            defer.DeferredList(self._videoRelease(), consumeErrors=True)

    def _resumeVideoNames(self, clientOffer):
        """@return: the video codec for a resumed client's new leg (C{[name]} or C{[]})."""
        video = self._video
        if video is None or video.relay is None:
            return []
        names = self._clientVideoNames(clientOffer)
        return [video.codec.name] if video.codec.name in names else []

    def _videoReattached(self):
        """The client's new leg is up: the video relay moves to it (if it took video)."""
        video = self._video
        if video is None or video.relay is None:
            return
        video.relay.stop()
        video.relay = None
        negotiated = self.leg.negotiatedVideoCodec()
        if negotiated is None or negotiated[0] != video.codec.name:
            log.info("call {callId}: the resumed client has no video", callId=self.callId)
            return
        self._startRelay(negotiated[1])

    def _videoSections(self, direction):
        """@return: C{{index: lines}} for L{linkrtc.media.sdp.buildSDP}'s C{accepted}."""
        if self._video is None or self._video.offered is None or not self._bindVideo():
            return None
        return {self._video.index: self._video.section(direction)}

    def _videoReoffered(self, desc):
        """
        A re-offer (C{desc}) from the SIP side: the running video follows
        its new address; it stops (and is rejected from then on) when the
        re-offer drops the stream or its codec.
        """
        video = self._video
        if video is None or video.relay is None:
            return
        found = sdpmod.videoStream(desc)
        if found is not None and found[0] == video.index:
            m = found[1]
            if any(c.name == video.codec.name and c.payloadType == video.codec.payloadType
                   for c in sdpmod.videoCodecs(m)):
                video.follow(m)
                return
        log.info("call {callId}: the SIP side dropped video", callId=self.callId)
        defer.DeferredList(self._videoRelease(), consumeErrors=True)

    def _videoRelease(self):
        """Stop the video relay and its ports; @return: C{list} of L{Deferred}s."""
        video, self._video = self._video, None
        waits = []
        if video is None:
            return waits
        if video.relay is not None:
            video.relay.stop()
            figures = video.relay.stats()
            metrics.VIDEO_PACKETS.labels("to_browser").inc(figures["sipPackets"])
            metrics.VIDEO_PACKETS.labels("to_sip").inc(figures["webrtcPackets"])
            log.info("call {callId}: video ended: {figures}", callId=self.callId,
                     figures=json.dumps(figures, sort_keys=True))
        if video.ports is not None:
            for port in video.ports:
                waits.append(defer.maybeDeferred(port.stopListening))
            self.factory.allocator.release(video.port)
        return waits

    def _videoFigures(self):
        """@return: the video relay's C{stats()} plus its C{codec}, or C{None}."""
        video = self._video
        if video is None or video.relay is None:
            return None
        figures = video.relay.stats()
        figures["codec"] = video.codec.name
        return figures
