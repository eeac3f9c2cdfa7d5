# -*- test-case-name: linkrtc.media.test.test_rtp -*-
"""
The SIP side's plain RTP (RFC 3550) on a Twisted datagram protocol:
port allocation from a bounded range, symmetric RTP with strict source
checking (the "RTP bleed" fix, CVE-2017-14099), RFC 4733 telephone-events
both ways, receive statistics and the media timeout.

Nothing here imports aiortc; times come from an injected clock
(L{twisted.internet.interfaces.IReactorTime}).
"""

import errno
import random
import socket
import struct

from twisted.internet import error as netError
from twisted.internet.protocol import DatagramProtocol
from twisted.logger import Logger

from linkrtc import metrics
from linkrtc.error import MediaError

log = Logger()

_HEADER = struct.Struct("!BBHII")
_EVENT = struct.Struct("!BBH")

#: Socket buffer size asked for (bytes), see DECISIONS.md "Small things".
SOCKET_BUFFER = 4 * 1024 * 1024
_SO_SNDBUFFORCE = getattr(socket, "SO_SNDBUFFORCE", 32)
_SO_RCVBUFFORCE = getattr(socket, "SO_RCVBUFFORCE", 33)

#: RFC 4733 §3.2 event codes for DTMF.
EVENT_DIGITS = "0123456789*#ABCD"

#: RFC 4733 sending: event length, packet interval (seconds), gap between digits.
DIGIT_DURATION = 0.1
DIGIT_INTERVAL = 0.02
DIGIT_GAP = 0.05
DIGIT_VOLUME = 10

#: Strict RTP: a source other than the expected one is followed (NAT
#: rebinding) after this many packets of one SSRC with consecutive
#: sequence numbers (RFC 3550 §A.1 "probation", Asterisk C{strictrtp=yes})...
LEARN_PACKETS = 5
#: ... while the expected source has sent nothing for this many seconds.
LEARN_SILENCE = 1.0
#: Candidate sources tracked at once while learning (bounds memory under a spray).
_MAX_CANDIDATES = 8


def parseRTP(data):
    """
    Split an RTP packet (RFC 3550 §5.1), skipping CSRCs, the header
    extension and padding.

    @param data: C{bytes} of one datagram.
    @return: C{(marker, pt, seq, ts, ssrc, payload)} or C{None} if C{data}
        is not RTP version 2 or is truncated.
    """
    if len(data) < 12:
        return None
    b0, b1, seq, ts, ssrc = _HEADER.unpack_from(data)
    if b0 >> 6 != 2:
        return None
    offset = 12 + 4 * (b0 & 0x0F)
    if b0 & 0x10:
        if len(data) < offset + 4:
            return None
        offset += 4 + 4 * struct.unpack_from("!H", data, offset + 2)[0]
    end = len(data)
    if b0 & 0x20:
        if end == 0 or data[-1] == 0:
            return None
        end -= data[-1]
    if offset > end:
        return None
    return (b1 >> 7, b1 & 0x7F, seq, ts, ssrc, data[offset:end])


def buildHeader(marker, pt, seq, ts, ssrc):
    """@return: a 12-byte RTP header (version 2, no CSRC, no extension)."""
    return _HEADER.pack(0x80, (marker << 7) | pt, seq & 0xFFFF, ts & 0xFFFFFFFF, ssrc)


def setSocketBuffers(sock, size=SOCKET_BUFFER):
    """
    Ask for C{size} bytes of send and receive buffer: the FORCE options as
    root, else the plain ones (capped by net.core.[rw]mem_max).

    @return: the C{(rcvbuf, sndbuf)} the kernel granted.
    """
    for force, plain in ((_SO_RCVBUFFORCE, socket.SO_RCVBUF), (_SO_SNDBUFFORCE, socket.SO_SNDBUF)):
        try:
            sock.setsockopt(socket.SOL_SOCKET, force, size)
        except OSError:
            try:
                sock.setsockopt(socket.SOL_SOCKET, plain, size)
            except OSError:
                pass
    return (sock.getsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF),
            sock.getsockopt(socket.SOL_SOCKET, socket.SO_SNDBUF))


class StreamRewriter:
    """
    Keeps one outgoing RTP stream consistent (RFC 3550 §5.1) while its
    packets come from several sources: relayed packets (sequence number and
    timestamp moved by fixed offsets, so gaps survive) and packets made
    here (silence, telephone-events, encoded audio).

    Whenever the source changes (another SSRC, or local packets were sent
    in between) the offsets are re-based so the sequence continues at
    last + 1, the timestamp advances with the wall clock, and the marker
    bit is set.

    @ivar ssrc: the stream's SSRC (C{int}).
    """

    def __init__(self, clock, ssrc=None, rate=8000, rng=random):
        self._clock = clock
        self.ssrc = rng.getrandbits(32) if ssrc is None else ssrc
        self._rate = rate
        self.seq = rng.getrandbits(16)
        self.ts = rng.getrandbits(32)
        self._tsTime = None
        self._source = None
        self._seqOffset = 0
        self._tsOffset = 0

    def _elapsed(self):
        if self._tsTime is None:
            return 0
        return max(0, int(round((self._clock.seconds() - self._tsTime) * self._rate)))

    def relay(self, ssrc, seq, ts):
        """
        @return: C{(seq, ts, rebased)} for a relayed packet; C{rebased} is
            C{True} when the marker bit should be set.
        """
        if ssrc == self._source:  # the relay's per-packet case: same source
            outSeq = (seq + self._seqOffset) & 0xFFFF
            outTs = (ts + self._tsOffset) & 0xFFFFFFFF
            if 0 < ((outSeq - self.seq) & 0xFFFF) < 0x8000:
                self.seq = outSeq
                self.ts = outTs
                self._tsTime = self._clock.seconds()
            return outSeq, outTs, False
        nextSeq = (self.seq + 1) & 0xFFFF
        nextTs = (self.ts + max(1, self._elapsed())) & 0xFFFFFFFF
        self._seqOffset = (nextSeq - seq) & 0xFFFF
        self._tsOffset = (nextTs - ts) & 0xFFFFFFFF
        self._source = ssrc
        self.seq = nextSeq
        self.ts = nextTs
        self._tsTime = self._clock.seconds()
        return nextSeq, nextTs, True

    def local(self, samples, atTime=False):
        """
        Number a packet made here.

        @param samples: timestamp advance over the previous packet, in clock units.
        @param atTime: C{True} to advance by the wall-clock time elapsed
            instead (first packet of a telephone-event or after a pause).
        @return: C{(seq, ts)}.
        """
        self._source = None
        advance = max(1, self._elapsed()) if atTime else samples
        if self._tsTime is None:
            advance = 0
        self.seq = (self.seq + 1) & 0xFFFF
        self.ts = (self.ts + advance) & 0xFFFFFFFF
        self._tsTime = self._clock.seconds()
        return self.seq, self.ts

    def repeat(self):
        """@return: C{(seq, ts)}: next sequence number, same timestamp (RFC 4733 §2.5.1)."""
        self._source = None
        self.seq = (self.seq + 1) & 0xFFFF
        return self.seq, self.ts

    @property
    def source(self):
        """The SSRC of the source relayed last (C{None} after local packets)."""
        return self._source

    def original(self, seq):
        """
        @param seq: a sequence number of this stream (e.g. in a NACK,
            RFC 4585 §6.2.1).
        @return: the relayed source's own sequence number for it.
        """
        return (seq - self._seqOffset) & 0xFFFF


class ReceiveStats:
    """
    Receive figures of one RTP stream (RFC 3550 §6.4.1, Appendix A.1/A.8).
    A new SSRC starts a new sequence space; losses so far are kept.

    @ivar packets: packets accepted.
    @ivar octets: payload octets accepted.
    """

    def __init__(self, rate=8000):
        self.rate = rate
        self.packets = 0
        self.octets = 0
        self._ssrc = None
        self._base = None
        self._maxSeq = 0
        self._cycles = 0
        self._receivedHere = 0
        self._lostBefore = 0
        self._transit = None
        self._jitter = 0.0

    def _lostCurrent(self):
        if self._base is None:
            return 0
        expected = self._cycles + self._maxSeq - self._base + 1
        return max(0, expected - self._receivedHere)

    def update(self, ssrc, seq, ts, arrival, size):
        """Account one packet: C{arrival} in seconds, C{size} payload octets."""
        if ssrc != self._ssrc:
            self._newSource(ssrc, seq)
        self.packets += 1
        self.octets += size
        self._receivedHere += 1
        maxSeq = self._maxSeq
        if 0 < ((seq - maxSeq) & 0xFFFF) < 0x8000:
            if seq < maxSeq:
                self._cycles += 1 << 16
            self._maxSeq = seq
        transit = arrival * self.rate - ts
        previous = self._transit
        self._transit = transit
        if previous is not None:
            d = abs(transit - previous)
            if d < self.rate * 10:  # a timestamp jump is not jitter
                self._jitter += (d - self._jitter) / 16.0

    def _newSource(self, ssrc, seq):
        """A new SSRC: a new sequence space; the losses so far are kept."""
        self._lostBefore += self._lostCurrent()
        self._ssrc = ssrc
        self._base = seq
        self._maxSeq = seq
        self._cycles = 0
        self._receivedHere = 0
        self._transit = None

    @property
    def lost(self):
        """Cumulative packets lost (expected minus received, never negative)."""
        return self._lostBefore + self._lostCurrent()

    @property
    def jitter(self):
        """Interarrival jitter in milliseconds."""
        return self._jitter * 1000.0 / self.rate

    def asDict(self):
        """@return: C{dict} with packetsReceived, bytesReceived, packetsLost, jitterMs."""
        return {
            "packetsReceived": self.packets,
            "bytesReceived": self.octets,
            "packetsLost": self.lost,
            "jitterMs": round(self.jitter, 3),
        }


class PortAllocator:
    """
    Hands out even RTP ports (with the odd RTCP port above) from an
    inclusive range, round robin, skipping ports in use by anyone. The
    range is the bound: once every pair is held, L{listen} refuses.

    @ivar inUse: C{set} of RTP port numbers we hold now.
    @ivar capacity: how many RTP/RTCP pairs the range holds (C{int}).
    """

    def __init__(self, reactor, low=20000, high=29999):
        if low > high or low < 1 or high > 65535:
            raise ValueError("bad RTP port range %r-%r" % (low, high))
        self._reactor = reactor
        self.low = low + (low % 2)
        self.high = high
        self._next = self.low
        self.inUse = set()
        self.capacity = max(0, (self.high - 1 - self.low) // 2 + 1)

    def portsInUse(self):
        """@return: UDP ports of the range we hold now (RTP and RTCP), C{int}."""
        return 2 * len(self.inUse)

    @property
    def full(self):
        """C{True} when we hold every pair of the range (ports taken by others aside)."""
        return len(self.inUse) >= self.capacity

    def exhausted(self):
        """
        Log that the range is exhausted and a call is refused.

        @return: the L{MediaError} to raise (488 Not Acceptable Here).
        """
        log.warn("RTP port range {low}-{high} exhausted ({held} of {capacity} pairs held by "
                 "calls): call refused", low=self.low, high=self.high, held=len(self.inUse),
                 capacity=self.capacity)
        return MediaError("no free RTP port in %d-%d" % (self.low, self.high))

    def listen(self, rtpProtocol, rtcpProtocol, interface=""):
        """
        Bind an RTP/RTCP pair.

        @return: C{(rtpPort, rtcpPort)} L{IListeningPort}s.
        @raise MediaError: if every pair in the range is taken (logged).
        """
        if self.full:
            raise self.exhausted()
        count = (self.high - self.low) // 2 + 1
        for _ in range(count):
            port = self._next
            self._next += 2
            if self._next + 1 > self.high:
                self._next = self.low
            if port in self.inUse or port + 1 > self.high:
                continue
            try:
                rtp = self._reactor.listenUDP(port, rtpProtocol, interface=interface)
            except netError.CannotListenError:
                continue
            try:
                rtcp = self._reactor.listenUDP(port + 1, rtcpProtocol, interface=interface)
            except netError.CannotListenError:
                rtp.stopListening()
                continue
            self.inUse.add(port)
            sock = getattr(rtp, "socket", None)
            if sock is not None:
                granted = setSocketBuffers(sock)
                log.debug("RTP port {port} socket buffers {granted}", port=port, granted=granted)
            return rtp, rtcp
        raise self.exhausted()

    def release(self, port):
        """Forget C{port} (the caller stops listening)."""
        self.inUse.discard(port)


class RTCPSink(DatagramProtocol):
    """Receives the far end's RTCP on port + 1 and counts it; reports are not generated yet."""

    packets = 0

    def datagramReceived(self, data, addr):
        self.packets += 1


class SourceGuard:
    """
    Strict RTP's state for one L{RTPSession} (which holds the logic).

    @ivar sdpSource: the last usable SDP address C{(host, port)}: packets
        from it are always taken.
    @ivar heardAt: when the expected source began to be expected (the port
        opened, a new SDP address), clock seconds.
    @ivar candidates: sources on probation, C{{addr: (ssrc, seq, count)}}.
    @ivar peerSends: C{False} while the far end's SDP says it does not
        send: no learning.
    @ivar rejected: packets dropped (C{int}).
    @ivar packets: in-sequence packets needed to follow a new source.
    @ivar silence: seconds the expected source must have been silent.
    """

    __slots__ = ("sdpSource", "heardAt", "candidates", "peerSends", "rejected", "packets",
                 "silence")

    def __init__(self, sdpSource, heardAt, packets=LEARN_PACKETS, silence=LEARN_SILENCE):
        self.sdpSource = sdpSource
        self.heardAt = heardAt
        self.candidates = {}
        self.peerSends = True
        self.rejected = 0
        self.packets = max(1, packets)
        self.silence = silence


class RTPSession(DatagramProtocol):
    """
    One call's SIP-side RTP endpoint, with strict RTP (the "RTP bleed"
    fix, CVE-2017-14099; Asterisk's C{strictrtp=yes}).

    Which packets are taken (everything else is dropped and counted in
    C{rejected} and L{linkrtc.metrics.RTP_REJECTED}):
     - from the latched source (C{latched}): the hot path, one tuple
       compare;
     - from the address and port of the far end's SDP (c=/m= lines, the
       last usable one: a C{c=0.0.0.0} hold keeps it): at once, and the
       session latches to it;
     - from any other source, once it sent C{learnPackets} packets of one
       SSRC with consecutive sequence numbers while the expected source
       (the latched one, else the SDP address) sent nothing for
       C{learnSilence} seconds: NAT rebinding, or an SDP address that is
       not where the packets come from (private address, C{0.0.0.0}). The
       run's last packet is taken and the session latches to its source.
       Not while the far end's SDP says it does not send (C{peerSends}).
    Silence counts from the last packet taken, the port's opening or the
    last new SDP address, whichever is latest. Only RTP version 2 with a
    negotiated payload type latches or counts in a run; such junk from an
    accepted source is counted in C{ignored}.

    We send to the latched source, else to the SDP address (C{remote}).

    @param clock: an L{IReactorTime}.
    @param remote: C{(host, port)} from the SDP, or C{None} until known.
    @param audio: the negotiated audio L{linkrtc.media.sdp.Codec} or C{None}.
    @param event: the telephone-event L{linkrtc.media.sdp.Codec} or C{None}.
    @param onAudio: called with C{(marker, pt, seq, ts, ssrc, payload)} for
        each accepted audio packet.
    @param onDigit: called with a one-character C{str} per key press.
    @param onTimeout: called once when no RTP arrived for C{mediaTimeout} seconds.
    @param mediaTimeout: seconds; C{None} or 0 disables.
    @param learnPackets: in-sequence packets (C{int}) before another source
        is followed; L{LEARN_PACKETS} by default.
    @param learnSilence: seconds (C{float}) the expected source must have
        been silent before another source is followed; L{LEARN_SILENCE}.
    """

    def __init__(self, clock, remote=None, audio=None, event=None, onAudio=None,
                 onDigit=None, onTimeout=None, mediaTimeout=30.0, rng=random,
                 learnPackets=LEARN_PACKETS, learnSilence=LEARN_SILENCE):
        self._clock = clock
        self.remote = remote
        self.latched = None
        self.audio = audio
        self.event = event
        self.onAudio = onAudio
        self.onDigit = onDigit
        self.onTimeout = onTimeout
        self.mediaTimeout = mediaTimeout
        self.out = StreamRewriter(clock, rng=rng)
        self.recvStats = ReceiveStats()
        self.packetsSent = 0
        self.bytesSent = 0
        self.ignored = 0
        self.sending = True
        #: Strict RTP's state, apart: with more than about 30 attributes an
        #: instance loses CPython's shared-key layout and every packet pays for it.
        self.guard = SourceGuard(remote, clock.seconds(), learnPackets, learnSilence)
        self._lastEvent = None
        self._digitQueue = ""
        self._digitCall = None
        self._eventActive = False
        self._timeoutCall = None
        self._lastReceived = None
        self._timeoutRunning = False
        self._timedOut = False
        #: The destination and transport L{_fastPath} holds C{_sendto} for.
        self._checked = self._checkedTransport = self._sendto = None

    def startProtocol(self):
        """The port is open: the expected source's silence counts from now."""
        self.guard.heardAt = self._clock.seconds()

    # -- configuration ---------------------------------------------------

    def setRemote(self, remote, peerSends=True):
        """
        New far-end address from SDP (C{(host, port)}, or C{None} for a
        C{c=0.0.0.0} hold). A new address unlatches: packets from it are
        taken at once, the old source's are rejected. C{None}, or the
        address we had before a hold, keeps the latched source.

        @param peerSends: C{False} when the SDP says the far end will not
            send (C{recvonly}, C{inactive}): no other source is learned
            then, since its silence proves nothing.
        """
        self.guard.peerSends = peerSends
        if remote == self.remote:
            return
        self.remote = remote
        if remote is not None and remote != self.guard.sdpSource:
            self.guard.sdpSource = remote
            self.latched = None
            self.guard.candidates.clear()
            self.guard.heardAt = self._clock.seconds()

    def setCodecs(self, audio, event):
        """The negotiated audio and telephone-event L{Codec}s."""
        self.audio = audio
        self.event = event

    @property
    def rejected(self):
        """Packets strict RTP dropped in this call (C{int})."""
        return self.guard.rejected

    @property
    def destination(self):
        """Where we send: the latched source, else the SDP address."""
        return self.latched or self.remote

    # -- receiving -------------------------------------------------------

    def datagramReceived(self, data, addr):
        """
        One datagram: the relay's per-packet path on the SIP side (one
        frame; audio, the common case, is tested first).
        """
        try:
            if addr != self.latched and not self._admit(data, addr):
                return
            parsed = parseRTP(data)
            if parsed is None:
                self.ignored += 1
                return
            marker, pt, seq, ts, ssrc, payload = parsed
            audio = self.audio
            if audio is not None and pt == audio.payloadType:
                now = self._lastReceived = self._clock.seconds()
                self.recvStats.update(ssrc, seq, ts, now, len(payload))
                onAudio = self.onAudio
                if onAudio is not None:
                    onAudio(marker, pt, seq, ts, ssrc, payload)
                return
            if self.event is None or pt != self.event.payloadType:
                self.ignored += 1
                return
            now = self._lastReceived = self._clock.seconds()
            self.recvStats.update(ssrc, seq, ts, now, len(payload))
            self._eventReceived(ts, payload)
        except Exception:
            log.failure("RTP packet from {addr} broke the session", addr=addr)

    def _negotiated(self, pt):
        return ((self.audio is not None and pt == self.audio.payloadType)
                or (self.event is not None and pt == self.event.payloadType))

    def _admit(self, data, addr):
        """
        Strict RTP, off the hot path: a packet from a source that is not
        the latched one.

        @return: C{True} if it is taken (the session is now latched to
            C{addr}), C{False} if it was dropped (and counted).
        """
        parsed = parseRTP(data)
        valid = parsed is not None and self._negotiated(parsed[1])
        if addr == self.guard.sdpSource:
            if not valid:
                self.ignored += 1
                return False
            self._latch(addr, "its SDP address")
            return True
        if valid and self.guard.peerSends and self._learn(addr, parsed[4], parsed[2]):
            self._latch(addr, "%d in-sequence packets while %s was silent"
                        % (self.guard.packets, self.latched or self.guard.sdpSource))
            return True
        if not self.guard.rejected:
            log.info("RTP from unexpected source {addr} dropped (expecting {expected}); "
                     "further drops are only counted", addr=addr,
                     expected=self.latched or self.guard.sdpSource)
        self.guard.rejected += 1
        metrics.RTP_REJECTED.inc()
        return False

    def _learn(self, addr, ssrc, seq):
        """
        Put C{addr} on probation. @return: C{True} when it completed a run
        of C{learnPackets} in-sequence packets and the expected source has
        been silent long enough.
        """
        guard = self.guard
        candidates = guard.candidates
        previous = candidates.get(addr)
        if previous is not None and previous[0] == ssrc and seq == (previous[1] + 1) & 0xFFFF:
            count = previous[2] + 1
        else:
            count = 1
            if previous is None and len(candidates) >= _MAX_CANDIDATES:
                candidates.clear()
        candidates[addr] = (ssrc, seq, count)
        if count < guard.packets:
            return False
        heard = guard.heardAt
        if self._lastReceived is not None and self._lastReceived > heard:
            heard = self._lastReceived
        return self._clock.seconds() - heard >= guard.silence

    def _latch(self, addr, why):
        old, self.latched = self.latched, addr
        self.guard.candidates.clear()
        if old is None:
            log.debug("RTP latched to {addr} ({why})", addr=addr, why=why)
        else:
            log.info("RTP source moved from {old} to {addr} ({why})", old=old, addr=addr,
                     why=why)

    def _eventReceived(self, ts, payload):
        if len(payload) < 4:
            return
        event, flags, duration = _EVENT.unpack_from(payload)
        if ts == self._lastEvent:
            return
        self._lastEvent = ts
        if event < len(EVENT_DIGITS) and self.onDigit is not None:
            self.onDigit(EVENT_DIGITS[event])

    # -- sending ---------------------------------------------------------

    def _write(self, packet):
        destination = self.latched or self.remote
        transport = self.transport
        if destination is None or transport is None or not self.sending:
            return
        try:
            if destination is self._checked and transport is self._checkedTransport:
                try:
                    self._sendto(packet, destination)
                except OSError as e:
                    if e.errno != errno.ECONNREFUSED:  # which Twisted's write ignores
                        transport.write(packet, destination)  # its handling of the rest
            else:
                transport.write(packet, destination)
                self._fastPath(transport, destination)
        except OSError as e:
            log.debug("RTP send to {dest} failed: {e}", dest=destination, e=e)
            return
        self.packetsSent += 1
        self.bytesSent += len(packet) - 12

    def _fastPath(self, transport, destination):
        """
        After a first successful C{transport.write} to C{destination}
        (Twisted checked the address), later packets to it go straight to
        the socket's C{sendto}, skipping Twisted's per-packet address checks.
        """
        sock = getattr(transport, "socket", None)
        if sock is None or getattr(transport, "_connectedAddr", None):
            return
        self._sendto = sock.sendto
        self._checked = destination
        self._checkedTransport = transport

    def relayAudio(self, marker, ssrc, seq, ts, payload):
        """
        Send a packet taken from the other leg, numbers rewritten (same codec).
        Dropped while a telephone-event is being sent.
        """
        if self._eventActive or self.audio is None:
            return
        outSeq, outTs, rebased = self.out.relay(ssrc, seq, ts)
        self._write(buildHeader(marker or rebased, self.audio.payloadType, outSeq, outTs,
                                self.out.ssrc) + payload)

    def sendAudio(self, payload, samples, marker=False):
        """Send audio made here (transcoded): C{samples} is the timestamp advance."""
        if self._eventActive or self.audio is None:
            return
        seq, ts = self.out.local(samples)
        self._write(buildHeader(marker, self.audio.payloadType, seq, ts, self.out.ssrc) + payload)

    def sendDigits(self, digits):
        """
        Queue DTMF C{digits} as RFC 4733 events: 100 ms each, a packet
        every 20 ms, the end packet sent 3 times, 50 ms between digits.
        Characters outside 0-9*#A-D are skipped. Nothing is sent when
        telephone-event was not negotiated.
        """
        if self.event is None:
            log.info("DTMF {digits!r} not sent: no telephone-event negotiated", digits=digits)
            return
        self._digitQueue += "".join(d for d in digits.upper() if d in EVENT_DIGITS)
        if self._digitCall is None and not self._eventActive:
            self._nextDigit()

    def cancelDigits(self):
        """Drop the keys L{sendDigits} queued that have not started (the current one ends normally)."""
        self._digitQueue = ""

    def _nextDigit(self):
        self._digitCall = None
        if not self._digitQueue or self.transport is None:
            return
        code = EVENT_DIGITS.index(self._digitQueue[0])
        self._digitQueue = self._digitQueue[1:]
        self._eventActive = True
        total = int(DIGIT_DURATION * 8000)
        step = int(DIGIT_INTERVAL * 8000)
        self._sendEvent(code, step, total, step, first=True)

    def _sendEvent(self, code, duration, total, step, first=False, endCount=0):
        pt = self.event.payloadType
        if first:
            seq, ts = self.out.local(0, atTime=True)
        else:
            seq, ts = self.out.repeat()
        end = duration >= total
        flags = (0x80 if end else 0) | DIGIT_VOLUME
        payload = _EVENT.pack(code, flags, min(duration, total))
        self._write(buildHeader(first, pt, seq, ts, self.out.ssrc) + payload)
        if end:
            endCount += 1
            if endCount < 3:
                self._digitCall = self._clock.callLater(
                    0, self._sendEvent, code, duration, total, step, False, endCount)
            else:
                self._eventActive = False
                self._digitCall = self._clock.callLater(DIGIT_GAP, self._nextDigit)
        else:
            self._digitCall = self._clock.callLater(
                DIGIT_INTERVAL, self._sendEvent, code, duration + step, total, step)

    # -- media timeout ---------------------------------------------------

    def startTimeout(self):
        """Start (or resume) watching for RTP: L{onTimeout} after C{mediaTimeout} s of silence."""
        if not self.mediaTimeout or self._timedOut:
            return
        self._timeoutRunning = True
        self._lastReceived = self._clock.seconds()
        self._schedule(self.mediaTimeout)

    def pauseTimeout(self):
        """Stop watching (the far end put the call on hold and will not send)."""
        self._timeoutRunning = False
        if self._timeoutCall is not None and self._timeoutCall.active():
            self._timeoutCall.cancel()
        self._timeoutCall = None

    def _schedule(self, delay):
        if self._timeoutCall is not None and self._timeoutCall.active():
            self._timeoutCall.cancel()
        self._timeoutCall = self._clock.callLater(delay, self._checkTimeout)

    def _checkTimeout(self):
        self._timeoutCall = None
        if not self._timeoutRunning:
            return
        idle = self._clock.seconds() - self._lastReceived
        if idle >= self.mediaTimeout:
            self._timedOut = True
            self._timeoutRunning = False
            if self.onTimeout is not None:
                try:
                    self.onTimeout()
                except Exception:
                    log.failure("media timeout handler failed")
        else:
            self._schedule(self.mediaTimeout - idle)

    # -- figures and shutdown -------------------------------------------

    def stats(self):
        """
        @return: C{dict} of this leg's figures: packets, bytes, lost, jitter
            in ms, C{ignored} (junk from an accepted source) and
            C{rejected} (packets from sources strict RTP refused).
        """
        figures = self.recvStats.asDict()
        figures.update(packetsSent=self.packetsSent, bytesSent=self.bytesSent,
                       ignored=self.ignored, rejected=self.guard.rejected)
        return figures

    def stop(self):
        """Cancel every pending call (digits, timeout)."""
        self.pauseTimeout()
        if self._digitCall is not None and self._digitCall.active():
            self._digitCall.cancel()
        self._digitCall = None
        self._digitQueue = ""
        self.onAudio = self.onDigit = self.onTimeout = None
