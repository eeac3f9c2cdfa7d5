# -*- test-case-name: linkrtc.media.test.test_bridge -*-
"""
The packet relay: G.711 payloads move between SIP RTP and the browser's
SRTP without decoding, when both legs negotiated the same codec.

The seam, per MEDIA-RELAY.md (aiortc 1.16; stable since 0.9):
 - receive: C{RTCDtlsTransport._handle_rtp_data(data, arrival_time_ms)}
   gets every RTP packet after SRTP unprotect; L{WebRTCTap} replaces it
   on the instance (counting always; relaying in relay mode, handing to
   aiortc's receiver otherwise);
 - send: C{RTCDtlsTransport._send_rtp(data)} protects and sends, driven
   eagerly (L{linkrtc.media.webrtc.drive}) with the SSRC aiortc
   announced (C{RTCRtpSender._ssrc});
 - RTCP: C{RTCDtlsTransport._handle_rtcp_data(data)} is replaced on the
   instance to show the video relay the browser's feedback
   (L{WebRTCTap.attachVideo}); aiortc still handles every packet;
 - SRTP authentication failures: C{RTCDtlsTransport._rx_srtp} is wrapped
   once the transport is connected, to count them (aiortc drops them).

The relay's hot path goes one level lower ("relay-ice" in MEDIA-RELAY.md),
with no coroutine, Task or queue per packet, and falls back to the seam
above whenever those names are missing:
 - receive: once DTLS is connected, aioice's C{Connection.data_received(data,
   component)} is replaced on the instance (and the nominated pair's
   C{StunProtocol.datagram_received}, by L{WebRTCTap._datagramReceived}:
   SRTP skips the STUN parsing attempt); in relay mode SRTP (not SRTCP)
   packets are unprotected on C{RTCDtlsTransport._rx_srtp}'s libsrtp
   context directly (L{linkrtc.media.srtpdirect}) and relayed right there
   in the datagram callback. DTLS, STUN, SRTCP and everything outside
   relay mode still go through aioice's queue to aiortc. aiortc's own
   transport counters (C{getStats} "transport") no longer see relayed
   packets; ours do;
 - send: C{RTCDtlsTransport._tx_srtp}'s context, the RTP header packed in
   its buffer (L{linkrtc.media.srtpdirect.protectRTP}), and the nominated
   pair's C{StunProtocol.transport.sendto} (what C{_send_rtp} ->
   C{Connection.send} -> C{StunProtocol.send_data} do, without their
   coroutines); other protocols (TURN) get C{send_data} driven.
   bench/relay_path.py measures this path against bare pylibsrtp and a
   C{struct} header rewrite (docs/performance.rst, "Fast paths").

What aiortc's own sender sends (transcode mode) is renumbered through the
same L{StreamRewriter} as the relayed and local packets, so the browser
sees one stream whatever the mode: sequence numbers continue across a
switch between relay and transcode (the browser's SRTP replay check,
RFC 3711 §3.3.2, drops packets whose index goes back).

L{checkSeam} verifies those names at start-up.
"""

import inspect
import struct

import numpy
from twisted.internet.task import LoopingCall
from twisted.logger import Logger

from linkrtc.media.actions.pcm import PayloadCodec
from linkrtc.media.rtp import ReceiveStats, StreamRewriter, buildHeader, parseRTP
from linkrtc.media.srtpdirect import direct, protectRTP
from linkrtc.media.webrtc import drive, iceConnection, pairSender, plainStunProtocol

log = Logger()

#: The L{StreamRewriter} source of the packets aiortc's sender makes.
AIORTC_SOURCE = "aiortc"

_SEQ_TS = struct.Struct("!HI")

#: 20 ms of PCMU silence (mu-law 0xFF is zero).
PCMU_SILENCE = b"\xff" * 160

#: The codecs the packet relay carries when both legs negotiated the same one.
RELAY_CODECS = ("PCMU", "PCMA", "G722", "OPUS")


def silencePayload(name):
    """
    @param name: one of L{RELAY_CODECS}.
    @return: C{(payload, clockStep)}: 20 ms of silence in codec C{name}
        and its RTP timestamp advance.
    """
    if name == "PCMU":
        return PCMU_SILENCE, 160
    if name == "PCMA":
        return b"\xd5" * 160, 160  # A-law 0xD5 is zero (G.711 table 1a)
    if name == "OPUS":
        return b"\xf8\xff\xfe", 960  # a CELT 20 ms frame of silence (RFC 6716 §3.1)
    codec = PayloadCodec(name)
    return codec.encode(numpy.zeros(codec.frameSamples, dtype=numpy.int16)), codec.clockStep


def checkSeam():
    """
    @return: C{None} if the aiortc names the relay needs exist, else a
        C{str} naming what is missing (the bridge then transcodes).
    """
    from aiortc.rtcdtlstransport import RTCDtlsTransport

    for name in ("_handle_rtp_data", "_send_rtp", "_handle_rtcp_data"):
        if not inspect.iscoroutinefunction(getattr(RTCDtlsTransport, name, None)):
            return "aiortc RTCDtlsTransport.%s is missing" % (name,)
    return None


class _CountingSRTP:
    """Stands in for aiortc's receive SRTP session and counts failed unprotects."""

    def __init__(self, session, tap):
        self._session = session
        self._tap = tap

    def unprotect(self, data):
        try:
            return self._session.unprotect(data)
        except Exception:
            self._tap.srtpFailures += 1
            raise

    def unprotect_rtcp(self, data):
        try:
            return self._session.unprotect_rtcp(data)
        except Exception:
            self._tap.srtpFailures += 1
            raise


class WebRTCTap:
    """
    Taps one peer connection's DTLS transport.

    @ivar recvStats: L{ReceiveStats} of the browser's audio.
    @ivar out: the L{StreamRewriter} of what we send the browser ourselves.
    @ivar onPacket: C{None} (aiortc's receiver handles packets) or a
        callable taking C{(marker, pt, seq, ts, ssrc, payload)} (relay mode).
    """

    def __init__(self, clock, leg, audioPT, clockRate):
        self.dtls = leg.dtls
        self.audioPT = audioPT
        self.recvStats = ReceiveStats(rate=clockRate)
        self.out = StreamRewriter(clock, ssrc=leg.transceiver.sender._ssrc, rate=clockRate)
        self._clock = clock
        self.onPacket = None
        self.srtpFailures = 0
        self.packetsSent = 0
        self.bytesSent = 0
        self._isConnected = False
        #: Connected with a receive SRTP context: L{_datagramReceived} relays.
        self._receiving = False
        #: The SRTP contexts' calls (L{linkrtc.media.srtpdirect}), set on connection.
        self._unprotect = self._protect = self._protectRTP = None
        #: The nominated pair's own C{datagram_received} and ICE component.
        self._stunReceive = self._component = None
        #: The aioice connection whose C{data_received} we replaced, and its own.
        self._ice = None
        self._iceReceive = None
        #: The aioice C{StunProtocol} whose C{datagram_received} we replaced.
        self._protocol = None
        #: The nominated candidate pair we send on, and its L{pairSender}.
        self._pair = self._pairSend = None
        #: Video (L{attachVideo}): its payload type, RTP and RTCP handlers.
        self.videoPT = self._onVideo = self._onRTCP = None
        self._originalReceive = self.dtls._handle_rtp_data
        self._originalSend = self.dtls._send_rtp
        self._originalRTCP = getattr(self.dtls, "_handle_rtcp_data", None)
        self.dtls._handle_rtp_data = self._received
        self.dtls._send_rtp = self._sending
        if self._originalRTCP is not None:
            self.dtls._handle_rtcp_data = self._rtcpReceived
        self.dtls.on("statechange", self._stateChanged)
        self._stateChanged()

    @property
    def connected(self):
        return self.dtls.state == "connected"

    def _stateChanged(self):
        self._isConnected = connected = self.connected
        srtp = getattr(self.dtls, "_rx_srtp", None)
        if connected and srtp is not None and not isinstance(srtp, _CountingSRTP):
            self._unprotect = direct(srtp).unprotect
            self.dtls._rx_srtp = _CountingSRTP(srtp, self)
        self._receiving = connected and self._unprotect is not None
        tx = getattr(self.dtls, "_tx_srtp", None)
        if connected and tx is not None and self._protectRTP is None:
            context = direct(tx)
            self._protect = context.protect
            self._protectRTP = protectRTP(context)
        if connected and self._ice is None:
            ice = iceConnection(self.dtls)
            if ice is not None and tx is not None:
                self._ice = ice
                self._iceReceive = ice.data_received
                ice.data_received = self._iceData
                self._hookProtocol(ice)

    def _hookProtocol(self, ice):
        """
        Take the nominated pair's socket: L{_datagramReceived} replaces its
        C{StunProtocol.datagram_received}.
        """
        pair = ice._nominated.get(1)
        protocol = getattr(pair, "protocol", None)
        component = getattr(getattr(protocol, "local_candidate", None), "component", None)
        if component is None or not plainStunProtocol(protocol):
            return
        self._stunReceive = protocol.datagram_received
        self._component = component
        protocol.datagram_received = self._datagramReceived
        self._protocol = protocol

    def _datagramReceived(self, data, addr):
        """
        The nominated pair's C{datagram_received}: the relay's receive fast
        path, one Python frame from the socket to the relay's handler.

        SRTP (first octet 128-191, never STUN: RFC 7983) skips aioice's STUN
        parsing attempt; in relay mode it is unprotected here with the
        receive context used directly (L{linkrtc.media.srtpdirect}) and
        relayed at once. SRTCP (second octet 192-208, RFC 5761 §4), DTLS
        and everything outside relay mode go on as before.
        """
        if not data or not 127 < data[0] < 192:
            self._stunReceive(data, addr)
            return
        onPacket = self.onPacket
        if onPacket is None or not self._receiving or len(data) < 12 or 191 < data[1] < 209:
            self._iceReceive(data, self._component)
            return
        # The unprotect-and-deliver lines below stand again in _iceData on
        # purpose: both are per-packet entry points, and a shared helper would
        # add a Python frame per packet (the path is kept to one frame from
        # the socket to the relay's handler). Keep the two in step.
        try:
            data = self._unprotect(data)
        except Exception:
            self.srtpFailures += 1
            return
        self._deliver(data, onPacket)

    def _iceData(self, data, component):
        """
        aioice's C{Connection.data_received} (packets of pairs other than
        the one L{_hookProtocol} took): in relay mode, SRTP packets are
        unprotected and relayed here; anything else goes on to aiortc.
        """
        onPacket = self.onPacket
        if (onPacket is None or not self._receiving or len(data) < 12 or not 127 < data[0] < 192
                or 191 < data[1] < 209):  # SRTCP: aiortc (RFC 5761 §4)
            self._iceReceive(data, component)
            return
        # inlined as in _hookedReceive (one frame per packet): keep in step
        try:
            data = self._unprotect(data)
        except Exception:
            self.srtpFailures += 1
            return
        self._deliver(data, onPacket)

    def _deliver(self, data, onPacket):
        if data[1] & 0x7F == self.videoPT:
            self._video(data)
            return
        parsed = parseRTP(data)
        if parsed is None:
            return
        marker, pt, seq, ts, ssrc, payload = parsed
        if pt == self.audioPT:
            self.recvStats.update(ssrc, seq, ts, self._clock.seconds(), len(payload))
        try:
            onPacket(marker, pt, seq, ts, ssrc, payload)
        except Exception:
            log.failure("relaying a WebRTC packet failed")

    async def _received(self, data, arrival_time_ms):
        onPacket = self.onPacket
        if onPacket is not None:
            self._deliver(data, onPacket)
            return
        if len(data) > 1 and data[1] & 0x7F == self.videoPT:
            self._video(data)  # never to aiortc's receiver: no decoding
            return
        parsed = parseRTP(data)
        if parsed is None:
            return
        marker, pt, seq, ts, ssrc, payload = parsed
        if pt == self.audioPT:
            self.recvStats.update(ssrc, seq, ts, self._clock.seconds(), len(payload))
        await self._originalReceive(data, arrival_time_ms)

    async def _sending(self, data):
        """aiortc sends (RTP from its sender in transcode mode, RTCP)."""
        if len(data) > 1 and not 192 <= data[1] <= 223:  # RTP, not RTCP (RFC 5761 §4)
            data = self._renumber(data)
            self.packetsSent += 1
            self.bytesSent += len(data) - 12
        await self._originalSend(data)

    def _renumber(self, data):
        """
        @return: aiortc's RTP packet C{data} with its sequence number and
            timestamp moved into L{out}'s stream (the marker bit set when
            the source changed); other SSRCs' packets as they are.
        """
        if len(data) < 12 or int.from_bytes(data[8:12], "big") != self.out.ssrc:
            return data
        seq, ts = _SEQ_TS.unpack_from(data, 2)
        seq, ts, rebased = self.out.relay(AIORTC_SOURCE, seq, ts)
        second = data[1] | 0x80 if rebased else data[1]
        return bytes((data[0], second)) + _SEQ_TS.pack(seq, ts) + data[8:]

    def send(self, marker, pt, seq, ts, payload):
        """
        Send one RTP packet to the browser (SRTP-protected), synchronously.

        The fast path (the pair L{_transmit} chose is still the nominated
        one): the header is packed into the send context's buffer and
        protected there (L{linkrtc.media.srtpdirect.protectRTP}), then
        written to the pair's socket; no header object, no coroutine.
        """
        if not self._isConnected:
            return
        self.packetsSent += 1
        self.bytesSent += len(payload)
        pair = self._pair
        if pair is None or self._ice._nominated.get(1) is not pair:
            self._transmit(buildHeader(marker, pt, seq, ts, self.out.ssrc) + payload)
            return
        try:
            self._pairSend(self._protectRTP((marker << 7) | pt, seq & 0xFFFF, ts & 0xFFFFFFFF,
                                            self.out.ssrc, payload))
        except ConnectionError:
            pass
        except Exception:
            log.failure("RTP send failed")

    def _transmit(self, packet):
        """
        SRTP-protect one RTP packet and send it on the nominated pair, now
        (the nominated pair and its sender are kept for L{send}'s fast path).
        """
        ice = self._ice
        if ice is None:
            drive(self._originalSend(packet))
            return
        pair = ice._nominated.get(1)
        if pair is None:
            return  # aioice: "not connected"
        try:
            if pair is not self._pair:
                self._pairSend = pairSender(pair)
                self._pair = pair
            self._pairSend(self._protect(packet))
        except ConnectionError:
            pass
        except Exception:
            log.failure("RTP send failed")

    # -- video (L{linkrtc.media.video.VideoRelay}) ---------------------------

    def attachVideo(self, payloadType, onVideo, onRTCP):
        """
        Take the browser's video: RTP packets of C{payloadType} go to
        C{onVideo(data)} (decrypted C{bytes}) instead of aiortc's receiver,
        and every decrypted RTCP packet also to C{onRTCP(data)} (aiortc
        still handles it).
        """
        self.videoPT = payloadType
        self._onVideo = onVideo
        self._onRTCP = onRTCP

    def detachVideo(self):
        """Stop L{attachVideo}'s handlers; the video's packets are then dropped."""
        self._onVideo = self._onRTCP = None

    def _video(self, data):
        handler = self._onVideo
        if handler is None:
            return
        try:
            handler(data)
        except Exception:
            log.failure("relaying a WebRTC video packet failed")

    async def _rtcpReceived(self, data):
        handler = self._onRTCP
        if handler is not None:
            try:
                handler(data)
            except Exception:
                log.failure("relaying WebRTC RTCP failed")
        await self._originalRTCP(data)

    def sendVideo(self, packet):
        """Send one video RTP packet (header made by the caller) to the browser."""
        if self._isConnected:
            self._transmit(packet)

    def sendRTCP(self, packet):
        """Send one RTCP packet to the browser (SRTCP-protected by aiortc)."""
        if self._isConnected:
            drive(self._originalSend(packet))

    def stats(self):
        figures = self.recvStats.asDict()
        figures.update(packetsSent=self.packetsSent, bytesSent=self.bytesSent,
                       srtpFailures=self.srtpFailures)
        return figures

    def detach(self):
        """Give the transport back its own methods."""
        self.onPacket = None
        self.detachVideo()
        for name in ("_handle_rtp_data", "_send_rtp", "_handle_rtcp_data"):
            self.dtls.__dict__.pop(name, None)
        if self._ice is not None:
            if self._ice.__dict__.get("data_received") == self._iceData:
                del self._ice.data_received
            self._ice = self._iceReceive = None
            self._pair = self._pairSend = None
        if self._protocol is not None:
            self._protocol.__dict__.pop("datagram_received", None)
            self._protocol = None
        srtp = getattr(self.dtls, "_rx_srtp", None)
        if isinstance(srtp, _CountingSRTP):
            self.dtls._rx_srtp = srtp._session
        try:
            self.dtls.remove_listener("statechange", self._stateChanged)
        except Exception:
            pass


class PacketRelay:
    """
    Relay mode: same codec on both legs (one of L{RELAY_CODECS}). SIP ->
    browser packets get the browser stream's SSRC, payload type and
    rewritten numbers; browser -> SIP likewise through the RTP session's
    own rewriter. Until the first SIP audio packet, 20 ms silence packets
    (of the codec) go to the browser.

    @param clock: the reactor (L{IReactorTime}) for the silence timer.
    @param rtp: the L{linkrtc.media.rtp.RTPSession}.
    @param tap: the L{WebRTCTap}.
    @param codecName: the codec both legs use (C{"PCMU"} by default).
    """

    def __init__(self, clock, rtp, tap, codecName="PCMU"):
        self._clock = clock
        self._rtp = rtp
        self._tap = tap
        self._silencePayload, self._silenceStep = silencePayload(codecName)
        self._silence = None
        self.sipPackets = 0
        self.webrtcPackets = 0

    def start(self):
        self._rtp.onAudio = self._fromSIP
        self._tap.onPacket = self._fromWebRTC
        if self.sipPackets == 0:
            self._silence = LoopingCall(self._sendSilence)
            self._silence.clock = self._clock
            self._silence.start(0.02, now=True)

    def _sendSilence(self):
        if self._tap.connected:
            seq, ts = self._tap.out.local(self._silenceStep)
            self._tap.send(0, self._tap.audioPT, seq, ts, self._silencePayload)

    def _stopSilence(self):
        if self._silence is not None and self._silence.running:
            self._silence.stop()
        self._silence = None

    def _fromSIP(self, marker, pt, seq, ts, ssrc, payload):
        if self._silence is not None:
            self._stopSilence()
        self.sipPackets += 1
        outSeq, outTs, rebased = self._tap.out.relay(ssrc, seq, ts)
        self._tap.send(marker or rebased, self._tap.audioPT, outSeq, outTs, payload)

    def _fromWebRTC(self, marker, pt, seq, ts, ssrc, payload):
        if pt != self._tap.audioPT:
            return
        self.webrtcPackets += 1
        self._rtp.relayAudio(marker, ssrc, seq, ts, payload)

    def _dropWebRTC(self, marker, pt, seq, ts, ssrc, payload):
        if pt == self._tap.audioPT:
            self.webrtcPackets += 1

    def mute(self, muted):
        """
        Drop (C{True}) or relay again (C{False}) the browser's audio to SIP
        while an action sends its own (the relay's per-packet path is not
        touched: the tap's handler is swapped).
        """
        if self._tap.onPacket in (self._fromWebRTC, self._dropWebRTC):
            self._tap.onPacket = self._dropWebRTC if muted else self._fromWebRTC

    def stop(self):
        self._stopSilence()
        if self._rtp.onAudio == self._fromSIP:
            self._rtp.onAudio = None
        if self._tap.onPacket in (self._fromWebRTC, self._dropWebRTC):
            self._tap.onPacket = None
