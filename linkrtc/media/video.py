# -*- test-case-name: linkrtc.media.test.test_video -*-
"""
Video pass-through in C{--media bridge}: the SIP side's plain RTP video
and the browser's DTLS-SRTP video are relayed packet by packet, never
decoded (VP8, RFC 7741; H.264, RFC 6184: payload bytes as they are).

 - RTP: each packet gets the other leg's payload type, the SSRC of our
   stream towards that leg and a sequence number and timestamp moved by
   fixed offsets (L{linkrtc.media.rtp.StreamRewriter} at 90 kHz: gaps
   survive, a new source continues the numbering with the marker bit).
   Padding is kept; CSRCs and header extensions are dropped.
 - RTCP feedback: PLI and FIR (RFC 4585 §6.3.1, RFC 5104 §4.3.1) and
   generic NACK (RFC 4585 §6.2.1) from either side go to the other, their
   SSRCs rewritten (and a NACK's sequence numbers mapped back to the
   source's own), in a compound packet led by an empty RR (RFC 4585 §3.1).
   Other RTCP (reports, REMB, transport-cc) is not relayed: aiortc answers
   the browser's reports.
 - On the first packet of each source, a PLI asks it for a key frame so
   the far end can start decoding whatever it missed before the relay ran.

The browser leg's packets come through the L{linkrtc.media.relay.WebRTCTap}
(C{attachVideo}), before aiortc's receiver: aiortc's video jitter buffer
and decoder never see them. Our video send track is L{ParkedVideoTrack}:
aiortc's sender never encodes.
"""

import asyncio
import struct

from aiortc.mediastreams import MediaStreamError, MediaStreamTrack
from twisted.internet.protocol import DatagramProtocol
from twisted.logger import Logger

from linkrtc.media.rtp import StreamRewriter, buildHeader, parseRTP

log = Logger()

#: RTCP packet types (RFC 3550 §12.1, RFC 4585 §6.1).
RTCP_RR = 201
RTCP_RTPFB = 205
RTCP_PSFB = 206

#: Feedback message types: generic NACK (RTPFB 1), PLI (PSFB 1), FIR (PSFB 4).
FMT_NACK = 1
FMT_PLI = 1
FMT_FIR = 4

_HEAD = struct.Struct("!BBH")
_SSRC2 = struct.Struct("!II")

#: The 90 kHz clock of video RTP.
VIDEO_RATE = 90000


class ParkedVideoTrack(MediaStreamTrack):
    """
    Our video send track on the WebRTC leg: it never yields a frame, so
    aiortc's sender never encodes (the relay sends the packets itself).
    """

    kind = "video"

    def __init__(self):
        super().__init__()
        self._ended = None

    async def recv(self):
        if self._ended is None:
            self._ended = asyncio.get_event_loop().create_future()
        await self._ended
        raise MediaStreamError

    def stop(self):
        super().stop()
        if self._ended is not None and not self._ended.done():
            self._ended.set_result(None)


def isRTCP(data):
    """@return: C{True} if C{data} is RTCP rather than RTP (RFC 5761 §4)."""
    return len(data) > 1 and 191 < data[1] < 224


def feedbackMessages(data):
    """
    The transport-layer and payload-specific feedback messages of a
    compound RTCP packet (RFC 4585 §6.1).

    @param data: decrypted RTCP (C{bytes}).
    @return: C{list} of C{(packetType, fmt, senderSSRC, mediaSSRC, fci)};
        a malformed packet ends the list.
    """
    found = []
    offset = 0
    while offset + 4 <= len(data):
        first, packetType, length = _HEAD.unpack_from(data, offset)
        size = 4 * (length + 1)
        if first >> 6 != 2 or offset + size > len(data):
            break
        if packetType in (RTCP_RTPFB, RTCP_PSFB) and size >= 12:
            sender, media = _SSRC2.unpack_from(data, offset + 4)
            found.append((packetType, first & 0x1F, sender, media, data[offset + 12:offset + size]))
        offset += size
    return found


def feedbackPacket(packetType, fmt, sender, media, fci):
    """
    @return: a compound RTCP packet (C{bytes}): an empty RR from C{sender}
        (RFC 4585 §3.1) and one feedback message.
    """
    fci = bytes(fci[:len(fci) - len(fci) % 4])
    rr = _HEAD.pack(0x80, RTCP_RR, 1) + struct.pack("!I", sender)
    message = _HEAD.pack(0x80 | fmt, packetType, 2 + len(fci) // 4) + _SSRC2.pack(sender, media)
    return rr + message + fci


def rewriteFeedback(message, sender, target, ours, rewriter):
    """
    Rewrite one feedback message aimed at our stream for the source of it.

    @param message: C{(packetType, fmt, senderSSRC, mediaSSRC, fci)} from
        L{feedbackMessages}.
    @param sender: the SSRC the rewritten message comes from.
    @param target: the source's SSRC (what the message asks of it).
    @param ours: the SSRC of the stream we send (what the message names).
    @param rewriter: the L{StreamRewriter} of that stream (to map a
        NACK's sequence numbers back to the source's).
    @return: the rewritten RTCP (C{bytes}), or C{None} for a message that
        is not PLI, FIR or NACK, or is about another stream.
    """
    packetType, fmt, _, media, fci = message
    if packetType == RTCP_PSFB and fmt == FMT_PLI and media == ours:
        return feedbackPacket(RTCP_PSFB, FMT_PLI, sender, target, b"")
    if packetType == RTCP_PSFB and fmt == FMT_FIR:
        entries = b"".join(struct.pack("!I", target) + fci[i + 4:i + 8]
                           for i in range(0, len(fci) - 7, 8)
                           if struct.unpack_from("!I", fci, i)[0] == ours)
        return feedbackPacket(RTCP_PSFB, FMT_FIR, sender, 0, entries) if entries else None
    if packetType == RTCP_RTPFB and fmt == FMT_NACK and media == ours:
        entries = b"".join(struct.pack("!HH", rewriter.original(pid), mask)
                           for pid, mask in (struct.unpack_from("!HH", fci, i)
                                             for i in range(0, len(fci) - 3, 4)))
        return feedbackPacket(RTCP_RTPFB, FMT_NACK, sender, target, entries) if entries else None
    return None


class SIPVideoSocket(DatagramProtocol):
    """
    One UDP socket of the SIP side's video (RTP, or RTCP on port + 1).
    Packets are taken from the address the SDP gave, or, until one came
    from it, from another port of the same host (the first such source is
    latched, RFC 4961 symmetric RTP); anything else is counted and dropped.

    @ivar onPacket: C{None} or a callable taking the datagram (C{bytes}).
    @ivar remote: C{(host, port)} from the SDP, or C{None} (held).
    """

    def __init__(self):
        self.onPacket = None
        self.remote = None
        self.latched = None
        self.received = self.sent = self.rejected = 0

    def setRemote(self, remote):
        """Follow the SDP's address C{(host, port)} (or C{None}: send nothing)."""
        if remote != self.remote:
            self.remote = remote
            self.latched = None

    def datagramReceived(self, data, addr):
        remote = self.remote
        if remote is None:
            self.rejected += 1
            return
        if addr != remote and addr != self.latched:
            if self.latched is not None or addr[0] != remote[0]:
                self.rejected += 1
                return
            self.latched = addr
        self.received += 1
        handler = self.onPacket
        if handler is not None:
            try:
                handler(data)
            except Exception:
                log.failure("relaying a SIP video packet failed")

    def send(self, data):
        destination = self.latched or self.remote
        if destination is None or self.transport is None:
            return
        try:
            self.transport.write(data, destination)
        except OSError as e:
            log.debug("video send to {dest} failed: {e}", dest=destination, e=e)
            return
        self.sent += 1


class VideoRelay:
    """
    Relays one call's video between the SIP side's sockets and the
    browser's DTLS transport (a L{linkrtc.media.relay.WebRTCTap}).

    @param clock: L{IReactorTime} (the rewriters' clock).
    @param tap: the call's L{linkrtc.media.relay.WebRTCTap}.
    @param videoSSRC: the SSRC aiortc announced for our video towards the
        browser (C{RTCRtpSender._ssrc} of the video transceiver).
    @param rtp: the SIP side's RTP L{SIPVideoSocket}.
    @param rtcp: the SIP side's RTCP L{SIPVideoSocket} (port + 1).
    @param sipPT: the video payload type on the SIP side.
    @param webrtcPT: the same codec's payload type on the WebRTC leg.
    """

    def __init__(self, clock, tap, videoSSRC, rtp, rtcp, sipPT, webrtcPT):
        self._tap = tap
        self._rtp = rtp
        self._rtcp = rtcp
        self.sipPT = sipPT
        self.webrtcPT = webrtcPT
        self.toBrowser = StreamRewriter(clock, ssrc=videoSSRC, rate=VIDEO_RATE)
        self.toSIP = StreamRewriter(clock, rate=VIDEO_RATE)
        self.sipSource = self.browserSource = None
        self.sipPackets = self.webrtcPackets = 0
        self.feedbackToSIP = self.feedbackToBrowser = 0
        self.running = False

    def start(self):
        self.running = True
        self._rtp.onPacket = self._fromSIP
        self._rtcp.onPacket = self._rtcpFromSIP
        self._tap.attachVideo(self.webrtcPT, self._fromWebRTC, self._rtcpFromWebRTC)

    def stop(self):
        self.running = False
        self._rtp.onPacket = self._rtcp.onPacket = None
        self._tap.detachVideo()

    @staticmethod
    def _rewrite(data, pt, rewriter):
        """
        @return: C{(packet, sourceSSRC)} for the other leg (the padding
            kept), or C{None} if C{data} is not RTP.
        """
        parsed = parseRTP(data)
        if parsed is None:
            return None
        marker, _, seq, ts, ssrc, payload = parsed
        outSeq, outTs, rebased = rewriter.relay(ssrc, seq, ts)
        header = buildHeader(marker | rebased, pt, outSeq, outTs, rewriter.ssrc)
        if data[0] & 0x20:
            header = bytes((header[0] | 0x20,)) + header[1:]
            payload += data[len(data) - data[-1]:]
        return header + payload, ssrc

    def _fromSIP(self, data):
        if isRTCP(data):  # RTCP multiplexed on the RTP port (RFC 5761)
            self._rtcpFromSIP(data)
            return
        if len(data) < 12 or data[1] & 0x7F != self.sipPT:
            return
        result = self._rewrite(data, self.webrtcPT, self.toBrowser)
        if result is None:
            return
        packet, ssrc = result
        self.sipPackets += 1
        self._tap.sendVideo(packet)
        if ssrc != self.sipSource:
            self.sipSource = ssrc
            self._rtcp.send(feedbackPacket(RTCP_PSFB, FMT_PLI, self.toSIP.ssrc, ssrc, b""))

    def _fromWebRTC(self, data):
        result = self._rewrite(data, self.sipPT, self.toSIP)
        if result is None:
            return
        packet, ssrc = result
        self.webrtcPackets += 1
        self._rtp.send(packet)
        if ssrc != self.browserSource:
            self.browserSource = ssrc
            self._tap.sendRTCP(feedbackPacket(RTCP_PSFB, FMT_PLI, self.toBrowser.ssrc, ssrc, b""))

    def _rtcpFromSIP(self, data):
        """The SIP side's feedback about our stream to it: to the browser."""
        self.feedbackToBrowser += self._relayFeedback(
            data, self.toBrowser.ssrc, self.browserSource, self.toSIP, self._tap.sendRTCP)

    def _rtcpFromWebRTC(self, data):
        """The browser's feedback about our stream to it: to the SIP side."""
        self.feedbackToSIP += self._relayFeedback(
            data, self.toSIP.ssrc, self.sipSource, self.toBrowser, self._rtcp.send)

    @staticmethod
    def _relayFeedback(data, sender, target, about, send):
        """
        Send on (C{send}) the feedback of RTCP C{data} about the stream of
        the L{StreamRewriter} C{about}, rewritten (L{rewriteFeedback}) to
        come from C{sender} and name C{target} (C{None} before the source
        sent anything: dropped).

        @return: how many messages were sent on.
        """
        if target is None:
            return 0
        count = 0
        for message in feedbackMessages(data):
            packet = rewriteFeedback(message, sender, target, about.ssrc, about)
            if packet is not None:
                count += 1
                send(packet)
        return count

    def stats(self):
        """
        @return: C{dict}: C{sipPackets} (SIP -> browser) and
            C{webrtcPackets} (browser -> SIP) relayed, C{feedbackToSIP} and
            C{feedbackToBrowser} (RTCP feedback messages relayed), C{rejected}
            (SIP-side datagrams from an unexpected source).
        """
        return {"sipPackets": self.sipPackets, "webrtcPackets": self.webrtcPackets,
                "feedbackToSIP": self.feedbackToSIP, "feedbackToBrowser": self.feedbackToBrowser,
                "rejected": self._rtp.rejected + self._rtcp.rejected}
