"""
Media bridge capacity: N concurrent calls through ``twistd -n linkrtc
--media bridge``, for PCMU<->PCMU (packet relay), PCMA<->PCMA (packet
relay, mode ``pcma``) and Opus<->PCMU (transcoding), and a bare Twisted UDP relay carrying the same packet rate
(the ceiling).

Three processes besides LinkRTC:
  - ``gen``: the SIP side, one Python process: a minimal UAC (INVITE, ACK,
    BYE over UDP) and an RTP generator sending 20 ms PCMU packets for every
    call from one UDP socket (LinkRTC latches each call to it), spread over
    4 phases of 5 ms, and counting what comes back;
  - ``client``: the WebRTC side, one asyncio process (uvloop when
    installed) with N aiortc ``RTCPeerConnection``s answering LinkRTC's
    offers over the WebSocket; it sends 20 ms packets (PCMU, or a real
    Opus frame) and counts the decrypted ones without encoding or
    decoding audio, on libsrtp's contexts and the nominated pair's socket
    as LinkRTC's relay does (``--client-seam``: through
    ``RTCDtlsTransport._send_rtp`` and ``_handle_rtp_data``, a coroutine
    per packet and more CPU);
  - ``bare``: N pairs of Twisted UDP ports (asyncio reactor) that latch and
    forward, the same 200 packet operations per call-second as LinkRTC.

In relay mode each payload carries its send time (CLOCK_MONOTONIC, shared
by every process on the machine), so the receiver measures the one-way
latency added by what is in between; a frame is on time when it arrives
within ``--deadline-ms``. Transcoded payloads are rewritten, so there a
frame counts as delivered when it arrives in the measurement window
(shifted by 100 ms); no latency is measured.

For each N (a rising ladder, stopping at the first failure) the run
measures, over a window after a warm-up: frames sent and delivered on time
in each direction, LinkRTC's CPU (user+system, /proc/PID/stat) in
milliseconds per call-second, the load generator's CPU share (if one of
its processes is near a full core, it may be the limit, and the report
says so), and p50/p99 added latency. It prints the largest N with at
least 99.9 % of frames on time in both directions and writes
bench/results/media.json.

    python bench/media.py [--relay 25,50,100,150,200] [--pcma 50,100,200] [--transcode 5,10,20,30] [--profile]

The summary gives each LinkRTC mode's CPU per call-second as a ratio to
the bare relay's of the same run (``cpuRatioToBare``). ``--profile``
records LinkRTC with py-spy during each window (bench/flame.py;
bench/results/media-relay*, media-transcode*).


Everything is on 127.0.0.1; when run as root the whole run happens in a
new network namespace with only loopback (``unshare --net``;
``--no-netns`` to stay in the current one). Each step is bounded (setup
timeout, a few seconds of media), the whole run by ``--budget`` seconds.
"""

import argparse
import json
import os
import platform
import re
import selectors
import signal
import socket
import struct
import subprocess
import sys
import threading
import time
import uuid

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(HERE)
sys.path.insert(0, ROOT)

TICK = os.sysconf("SC_CLK_TCK")
MAGIC = b"LRTB"
PTIME = 0.02  # seconds per packet
PHASES = 4  # send slots per 20 ms
DELIVERY_GOAL = 0.999
#: The SIP side's G.711 codec by name: RTP payload type and SDP encoding name.
G711 = {"pcmu": (0, "PCMU"), "pcma": (8, "PCMA")}


def cpuSeconds(pid):
    """@return: user+system CPU seconds of process C{pid} (all its threads)."""
    with open(f"/proc/{pid}/stat") as f:
        fields = f.read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / TICK


def machineBusySeconds():
    """@return: CPU seconds all processes on the machine spent busy (from /proc/stat)."""
    with open("/proc/stat") as f:
        fields = [int(x) for x in f.readline().split()[1:]]
    idle = fields[3] + (fields[4] if len(fields) > 4 else 0)
    return (sum(fields[:8]) - idle) / TICK


def rtpSeq(data):
    """@return: the RTP sequence number of C{data}."""
    return (data[2] << 8) | data[3]


def rtpPayload(data):
    """@return: the payload of an RTP packet (CSRCs, extension, padding removed) or C{None}."""
    if len(data) < 12 or data[0] >> 6 != 2:
        return None
    offset = 12 + 4 * (data[0] & 0x0F)
    if data[0] & 0x10:
        if len(data) < offset + 4:
            return None
        offset += 4 + 4 * struct.unpack_from("!H", data, offset + 2)[0]
    end = len(data)
    if data[0] & 0x20 and end > offset:
        end -= data[-1]
    return data[offset:end] if offset <= end else None


def stampedPayload(size=160):
    """@return: a PCMU-sized payload starting with L{MAGIC} and the send time."""
    return MAGIC + struct.pack("!d", time.monotonic()) + b"\xff" * (size - 12)


class Counter:
    """
    What one direction received: delivered frames in the window and their
    latencies (seconds) when payloads carry send times.
    """

    def __init__(self, stamped):
        self.stamped = stamped
        self.window = None
        self.received = 0
        self.late = 0
        self.latencies = []
        self.total = 0
        self.streams = {}  # key -> [last seq, unwrapped last, min, max]

    def packet(self, payload, now, key=None, seq=0):
        self.total += 1
        if self.window is None:
            return
        start, end = self.window
        if self.stamped:
            if payload[:4] != MAGIC or len(payload) < 12:
                return
            sent = struct.unpack_from("!d", payload, 4)[0]
            if start <= sent < end:
                latency = now - sent
                self.latencies.append(latency)
                if latency <= self.deadline:
                    self.received += 1
                else:
                    self.late += 1
        elif start + 0.1 <= now < end + 0.1:
            self.received += 1
            stream = self.streams.get(key)
            if stream is None:
                self.streams[key] = [seq, 0, 0, 0]
            else:
                delta = (seq - stream[0]) & 0xFFFF
                if delta >= 0x8000:
                    delta -= 0x10000
                stream[0] = seq
                stream[1] += delta
                stream[2] = min(stream[2], stream[1])
                stream[3] = max(stream[3], stream[1])

    def result(self):
        lat = sorted(self.latencies)

        def pct(p):
            return round(1000 * lat[min(len(lat) - 1, int(p * len(lat)))], 3) if lat else None

        span = sum(st[3] - st[2] + 1 for st in self.streams.values())
        return {"received": self.received, "late": self.late, "total": self.total,
                "p50ms": pct(0.50), "p99ms": pct(0.99), "maxms": pct(1.0),
                "seqSpan": span if self.streams else None}


class Pacer:
    """
    Sends one packet per call every 20 ms, calls spread over L{PHASES} slots;
    counts what it sent in the window and how late the sends ran.
    """

    def __init__(self, count, send):
        self.count = count
        self.send = send
        self.next = time.monotonic()
        self.phase = 0
        self.window = None
        self.stop = None
        self.sent = 0
        self.maxLag = 0.0
        self.lagged = 0

    def due(self, now):
        """@return: seconds until the next slot (after sending every slot due)."""
        while now >= self.next:
            if self.stop is not None and self.next >= self.stop:
                return None
            lag = now - self.next
            inWindow = self.window is not None and self.window[0] <= now < self.window[1]
            if inWindow:
                self.maxLag = max(self.maxLag, lag)
                if lag > PTIME:
                    self.lagged += 1
            for i in range(self.phase, self.count, PHASES):
                stamp = self.send(i)
                if stamp is not None and self.window is not None and (
                        self.window[0] <= stamp < self.window[1]):
                    self.sent += 1
            self.phase = (self.phase + 1) % PHASES
            self.next += PTIME / PHASES
            now = time.monotonic()
        return self.next - now


def readCommand(line, counters, pacer, deadline):
    message = json.loads(line)
    window = tuple(message["window"])
    for counter in counters:
        counter.window = window
        counter.deadline = deadline
    pacer.window = window
    pacer.stop = message["stop"]


# -- the SIP side ------------------------------------------------------------

class SIPCall:
    def __init__(self, index, sipPort, rtpPort):
        self.index = index
        self.callId = uuid.uuid4().hex + "@bench"
        self.tag = uuid.uuid4().hex[:10]
        self.sipPort = sipPort
        self.rtpPort = rtpPort
        self.toTag = None
        self.remote = None
        self.state = "new"
        self.inviteData = None
        self.sentAt = None
        self.seq = 0
        self.ts = 0
        self.ssrc = struct.unpack("!I", os.urandom(4))[0]

    def request(self, method, cseq, target, body=b"", toTag=None):
        branch = "z9hG4bK" + uuid.uuid4().hex
        to = f"<sip:bench@127.0.0.1:{target}>" + (f";tag={toTag}" if toTag else "")
        head = (
            f"{method} sip:bench@127.0.0.1:{target} SIP/2.0\r\n"
            f"Via: SIP/2.0/UDP 127.0.0.1:{self.sipPort};branch={branch};rport\r\n"
            "Max-Forwards: 70\r\n"
            f"From: <sip:gen{self.index}@127.0.0.1>;tag={self.tag}\r\n"
            f"To: {to}\r\n"
            f"Call-ID: {self.callId}\r\n"
            f"CSeq: {cseq} {method}\r\n"
            f"Contact: <sip:gen{self.index}@127.0.0.1:{self.sipPort}>\r\n"
        )
        if body:
            head += "Content-Type: application/sdp\r\n"
        return (head + f"Content-Length: {len(body)}\r\n\r\n").encode() + body

    def invite(self, target, codec="pcmu"):
        pt, name = G711[codec]
        sdp = (
            "v=0\r\no=gen 1 1 IN IP4 127.0.0.1\r\ns=-\r\nc=IN IP4 127.0.0.1\r\nt=0 0\r\n"
            f"m=audio {self.rtpPort} RTP/AVP {pt} 101\r\na=rtpmap:{pt} {name}/8000\r\n"
            "a=rtpmap:101 telephone-event/8000\r\na=ptime:20\r\na=sendrecv\r\n"
        ).encode()
        return self.request("INVITE", 1, target, sdp)


def header(data, name):
    m = re.search(rb"^" + name + rb"[ \t]*:[ \t]*([^\r\n]*)", data, re.M | re.I)
    return m.group(1).decode() if m else None


def responseTo(data):
    """@return: a 200 OK for a SIP request C{data} (BYE from LinkRTC, OPTIONS)."""
    head = data.split(b"\r\n\r\n", 1)[0].split(b"\r\n")
    keep = [h for h in head[1:] if re.match(rb"(?i)(via|from|to|call-id|cseq)\s*:", h)]
    return b"\r\n".join([b"SIP/2.0 200 OK"] + keep + [b"Content-Length: 0", b"", b""])


def runGen(args):
    """The SIP side: place calls, send and count RTP, hang up; print JSON lines."""
    sel = selectors.DefaultSelector()
    sip = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    sip.bind(("127.0.0.1", 0))
    sip.setblocking(False)
    rtp = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    for opt in (socket.SO_RCVBUF, socket.SO_SNDBUF):
        rtp.setsockopt(socket.SOL_SOCKET, opt, 4 * 1024 * 1024)
    rtp.bind(("127.0.0.1", 0))
    rtp.setblocking(False)
    sipPort, rtpPort = sip.getsockname()[1], rtp.getsockname()[1]
    sel.register(sip, selectors.EVENT_READ, "sip")
    sel.register(rtp, selectors.EVENT_READ, "rtp")
    sel.register(sys.stdin, selectors.EVENT_READ, "stdin")
    stamped = args.stamped
    counters = [Counter(stamped)]
    if args.mode == "bare":
        pairs = [tuple(map(int, p.split(":"))) for p in args.pairs.split(",")]
        destinations = [("127.0.0.1", port) for pair in pairs for port in pair]
        count = len(destinations)
        calls = []
        up = True
    else:
        count = args.calls
        calls = [SIPCall(i, sipPort, rtpPort) for i in range(count)]
        byCallId = {c.callId: c for c in calls}
        destinations = [None] * count
        up = False
    seqs = [0] * count
    ssrcs = [struct.unpack("!I", os.urandom(4))[0] for _ in range(count)]
    started = time.monotonic()
    print(json.dumps({"type": "started", "t": started}), flush=True)

    def send(i):
        dest = destinations[i]
        if dest is None:
            return
        seqs[i] = (seqs[i] + 1) & 0xFFFF
        head = struct.pack("!BBHII", 0x80, G711[args.codec][0], seqs[i],
                           (seqs[i] * 160) & 0xFFFFFFFF, ssrcs[i])
        payload = stampedPayload()
        try:
            rtp.sendto(head + payload, dest)
        except OSError:
            pass
        return struct.unpack_from("!d", payload, 4)[0]

    pacer = Pacer(count, send)
    placed = 0
    nextInvite = time.monotonic()
    deadline = time.monotonic() + args.setup_timeout
    byes = None
    finished = False
    while not finished:
        now = time.monotonic()
        wait = pacer.due(now)
        if wait is None:  # stop time reached: hang up once the last packets are in
            if byes is None:
                byes = now + 0.5
            wait = 0.05
        if not up and placed < count and now >= nextInvite:
            c = calls[placed]
            c.inviteData = c.invite(args.target, args.codec)
            sip.sendto(c.inviteData, ("127.0.0.1", args.target))
            c.state, c.sentAt = "inviting", now
            placed += 1
            nextInvite = now + 1.0 / args.cps
        if not up:
            for c in calls[:placed]:
                if c.state == "inviting" and now - c.sentAt > 2.0:  # INVITE lost: resend
                    # the same INVITE (same branch): a new one would be a merged request (482)
                    sip.sendto(c.inviteData, ("127.0.0.1", args.target))
                    c.sentAt = now
            if now > deadline:
                answered = sum(c.state == "up" for c in calls)
                print(json.dumps({"type": "setup-failed", "answered": answered}), flush=True)
                break
            wait = min(wait, max(0.0, nextInvite - now), 0.05)
        if byes is not None and now >= byes:
            for c in calls:
                if c.state == "up":
                    sip.sendto(c.request("BYE", 2, args.target, toTag=c.toTag),
                               ("127.0.0.1", args.target))
                    c.state = "bye"
            if all(c.state != "bye" for c in calls) or now > byes + 3.0:
                finished = True
            wait = 0.05
        for key, _ in sel.select(max(0.0, wait)):
            if key.data == "rtp":
                while True:
                    try:
                        data, addr = rtp.recvfrom(2048)
                    except BlockingIOError:
                        break
                    payload = rtpPayload(data)
                    if payload is not None:
                        counters[0].packet(payload, time.monotonic(), addr, rtpSeq(data))
            elif key.data == "sip":
                while True:
                    try:
                        data, addr = sip.recvfrom(65536)
                    except BlockingIOError:
                        break
                    if not data.startswith(b"SIP/2.0 "):
                        if data[:3].isalpha():
                            sip.sendto(responseTo(data), addr)
                        continue
                    c = byCallId.get(header(data, rb"(?:Call-ID|i)"))
                    status = int(data[8:11])
                    method = (header(data, rb"CSeq") or " ").split()[-1]
                    if c is None:
                        continue
                    if method == "INVITE" and status >= 200:
                        to = header(data, rb"(?:To|t)") or ""
                        m = re.search(r";tag=([^;>\s]+)", to)
                        c.toTag = m.group(1) if m else None
                        sip.sendto(c.request("ACK", 1, args.target, toTag=c.toTag),
                                   ("127.0.0.1", args.target))
                        if status == 200 and c.state == "inviting":
                            body = data.split(b"\r\n\r\n", 1)[1].decode(errors="replace")
                            port = int(re.search(r"m=audio (\d+)", body).group(1))
                            host = re.search(r"c=IN IP4 (\S+)", body).group(1)
                            destinations[c.index] = (host, port)
                            c.state = "up"
                        elif status != 200:
                            c.state = "failed"
                    elif method == "BYE" and status >= 200:
                        c.state = "ended"
                if not up and calls and all(c.state in ("up", "failed") for c in calls):
                    up = True
                    print(json.dumps({"type": "up", "t": time.monotonic(),
                                      "failed": sum(c.state == "failed" for c in calls)}),
                          flush=True)
            elif key.data == "stdin":
                line = sys.stdin.readline()
                if not line:
                    sel.unregister(sys.stdin)
                    continue
                readCommand(line, counters, pacer, args.deadline_ms / 1000.0)
        if args.mode == "bare" and up and calls == [] and byes is not None:
            finished = now >= byes
    result = {"type": "result", "sent": pacer.sent, "maxLagMs": round(pacer.maxLag * 1000, 2),
              "laggedSlots": pacer.lagged}
    result.update(counters[0].result())
    print(json.dumps(result), flush=True)


# -- the WebRTC side -----------------------------------------------------------

def runClient(args):
    """N aiortc peer connections answering LinkRTC; raw SRTP send, count at the DTLS tap."""
    import asyncio

    loop = None
    if not args.seam:  # as LinkRTC runs (its --event-loop default), when installed
        try:
            import uvloop
        except ImportError:
            pass
        else:
            loop = uvloop.new_event_loop()
    if loop is None:
        loop = asyncio.new_event_loop()
    asyncio.set_event_loop(loop)
    from aiortc import (
        RTCConfiguration,
        RTCPeerConnection,
        RTCRtpSender,
        RTCSessionDescription,
    )
    from aiortc.mediastreams import MediaStreamTrack
    from autobahn.asyncio.websocket import WebSocketClientFactory, WebSocketClientProtocol

    from linkrtc.media.srtpdirect import direct, protectRTP
    from linkrtc.media.webrtc import (
        drive,
        iceConnection,
        pairSender,
        plainStunProtocol,
        restrictHostAddresses,
    )

    class ParkedTrack(MediaStreamTrack):
        kind = "audio"

        async def recv(self):
            await loop.create_future()

    mime = {"pcmu": "audio/pcmu", "pcma": "audio/pcma", "opus": "audio/opus"}[args.codec]
    capabilities = [c for c in RTCRtpSender.getCapabilities("audio").codecs
                    if c.mimeType.lower() == mime]
    opusFrame = None
    if args.codec == "opus":
        opusFrame = opusPayload()
    stamped = args.codec != "opus"
    counter = Counter(stamped)
    calls = []  # [dtls, pt, ssrc, seq] once connected
    state = {"answered": 0, "connected": 0, "up": False}

    def send(i):
        if i >= len(calls):
            return None
        call = calls[i]
        transmit, pt, ssrc = call[0], call[1], call[2]
        call[3] = (call[3] + 1) & 0xFFFF
        seq = call[3]
        ts = (seq * (960 if opusFrame else 160)) & 0xFFFFFFFF
        payload = opusFrame or stampedPayload()
        transmit(pt, seq, ts, ssrc, payload)
        return struct.unpack_from("!d", payload, 4)[0] if not opusFrame else time.monotonic()

    pacer = Pacer(args.calls, send)

    def count(data, key):
        payload = rtpPayload(data)
        if payload is not None:
            counter.packet(payload, time.monotonic(), key, rtpSeq(data))

    def hook(key):
        async def hooked(data, arrival_time_ms):
            count(data, key)

        return hooked

    def seamTransmit(dtls):
        """Through aiortc's own seam: C{_send_rtp}, driven (a coroutine per packet)."""

        def transmit(pt, seq, ts, ssrc, payload):
            drive(dtls._send_rtp(struct.pack("!BBHII", 0x80, pt, seq, ts, ssrc) + payload))

        return transmit

    def fastTransmit(dtls, key):
        """
        The load generator's own cost kept low (it shares the machine with
        LinkRTC): as LinkRTC's relay does (linkrtc/media/relay.py), SRTP on
        libsrtp's contexts directly and the nominated pair's socket, both
        ways, no coroutine or queue per packet. C{None} (aiortc's seam is
        used) when aioice's names are missing.
        """
        ice = iceConnection(dtls)
        pair = ice._nominated.get(1) if ice is not None else None
        protocol = getattr(pair, "protocol", None)
        if protocol is None or not plainStunProtocol(protocol):
            return None
        protect = protectRTP(direct(dtls._tx_srtp))
        unprotect = direct(dtls._rx_srtp).unprotect
        sendto = pairSender(pair)
        stunReceived = protocol.datagram_received

        def received(data, addr):
            if data and 127 < data[0] < 192 and not 191 < data[1] < 209:  # SRTP (RFC 7983, 5761)
                try:
                    data = unprotect(data)
                except Exception:
                    return
                count(data, key)
            else:
                stunReceived(data, addr)

        protocol.datagram_received = received

        def transmit(pt, seq, ts, ssrc, payload):
            sendto(protect(pt, seq, ts, ssrc, payload))  # marker 0

        return transmit

    pcs = []

    class Client(WebSocketClientProtocol):
        def onOpen(self):
            self.sendMessage(json.dumps({"type": "register", "client": "bench"}).encode())

        def onMessage(self, payload, isBinary):
            message = json.loads(payload)
            if message.get("type") == "registered":
                print(json.dumps({"type": "registered"}), flush=True)
            elif message.get("type") == "incoming":
                asyncio.ensure_future(self.answer(message["call"], message["sdp"]))

        async def answer(self, call, offer):
            self.sendMessage(json.dumps({"type": "ringing", "call": call}).encode())
            pc = RTCPeerConnection(RTCConfiguration(iceServers=[]))
            pcs.append(pc)
            transceiver = pc.addTransceiver(ParkedTrack(), direction="sendrecv")
            transceiver.setCodecPreferences(capabilities)
            restrictHostAddresses(transceiver, ["127.0.0.1"])

            @pc.on("connectionstatechange")
            def changed():
                if pc.connectionState == "connected":
                    dtls = transceiver.sender.transport
                    key = len(calls)
                    dtls._handle_rtp_data = hook(key)
                    transmit = (None if args.seam else fastTransmit(dtls, key)) or seamTransmit(dtls)
                    pt = transceiver._codecs[0].payloadType
                    calls.append([transmit, pt, transceiver.sender._ssrc, 0])
                    pacer.count = len(calls)
                    if len(calls) == args.calls and not state["up"]:
                        state["up"] = True
                        print(json.dumps({"type": "up", "t": time.monotonic()}), flush=True)

            await pc.setRemoteDescription(RTCSessionDescription(sdp=offer, type="offer"))
            await pc.setLocalDescription(await pc.createAnswer())
            self.sendMessage(json.dumps({"type": "accept", "call": call,
                                         "sdp": pc.localDescription.sdp}).encode())

    done = loop.create_future()

    def command():
        line = sys.stdin.readline()
        if not line:
            loop.remove_reader(sys.stdin.fileno())
            return
        readCommand(line, [counter], pacer, args.deadline_ms / 1000.0)
        loop.call_at(loop.time() + (pacer.stop - time.monotonic()) + 0.5,
                     lambda: done.done() or done.set_result(None))

    loop.add_reader(sys.stdin.fileno(), command)

    async def pace():
        pacer.count = 0
        pacer.next = time.monotonic()
        while not done.done():
            wait = pacer.due(time.monotonic())
            if wait is None:
                await done
                return
            await asyncio.sleep(wait)

    factory = WebSocketClientFactory(args.url)
    factory.protocol = Client
    host, port = args.url.split("//", 1)[1].split("/", 1)[0].split(":")
    loop.run_until_complete(loop.create_connection(factory, host, int(port)))
    task = loop.create_task(pace())
    loop.run_until_complete(asyncio.wait_for(done, args.lifetime))
    task.cancel()
    result = {"type": "result", "sent": pacer.sent, "maxLagMs": round(pacer.maxLag * 1000, 2),
              "laggedSlots": pacer.lagged, "connected": len(calls)}
    result.update(counter.result())
    print(json.dumps(result), flush=True)
    os._exit(0)  # N peer connections would take seconds to close; LinkRTC drops the calls


def opusPayload():
    """@return: one 20 ms Opus frame of a 440 Hz tone, encoded by aiortc."""
    import fractions

    import numpy
    from aiortc.codecs import get_encoder
    from aiortc.rtcrtpparameters import RTCRtpCodecParameters
    from av import AudioFrame

    encoder = get_encoder(RTCRtpCodecParameters(mimeType="audio/opus", clockRate=48000,
                                                channels=2, payloadType=111))
    n = numpy.arange(960 * 5)
    tone = (8000 * numpy.sin(2 * numpy.pi * 440 * n / 48000)).astype(numpy.int16)
    payloads = []
    for k in range(5):
        frame = AudioFrame.from_ndarray(tone[k * 960:(k + 1) * 960].reshape(1, -1),
                                        format="s16", layout="mono")
        frame.sample_rate = 48000
        frame.pts = k * 960
        frame.time_base = fractions.Fraction(1, 48000)
        payloads += encoder.encode(frame)[0]
    return payloads[-1]


# -- the ceiling: a bare Twisted relay -----------------------------------------

def runBare(args):
    """N pairs of latching UDP ports forwarding to each other (asyncio reactor)."""
    from twisted.internet import asyncioreactor

    asyncioreactor.install()
    from twisted.internet import reactor
    from twisted.internet.protocol import DatagramProtocol

    class Leg(DatagramProtocol):
        other = None
        peer = None

        def datagramReceived(self, data, addr):
            self.peer = addr
            other = self.other
            if other.peer is not None:
                other.transport.write(data, other.peer)

    pairs = []
    for _ in range(args.calls):
        a, b = Leg(), Leg()
        a.other, b.other = b, a
        pa = reactor.listenUDP(0, a, interface="127.0.0.1")
        pb = reactor.listenUDP(0, b, interface="127.0.0.1")
        for p in (pa, pb):
            for opt in (socket.SO_RCVBUF, socket.SO_SNDBUF):
                p.socket.setsockopt(socket.SOL_SOCKET, opt, 4 * 1024 * 1024)
        pairs.append(f"{pa.getHost().port}:{pb.getHost().port}")
    print(json.dumps({"type": "ports", "pairs": ",".join(pairs)}), flush=True)
    reactor.callLater(args.lifetime, reactor.stop)
    reactor.run()


# -- the orchestrator ------------------------------------------------------------

class Child:
    """A role of this script in a subprocess, its JSON lines collected."""

    def __init__(self, *args):
        self.process = subprocess.Popen(
            [sys.executable, os.path.abspath(__file__), *args], cwd=ROOT,
            stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        self.lines = []
        self.cond = threading.Condition()
        threading.Thread(target=self._read, daemon=True).start()
        self.stderr = []
        threading.Thread(target=self._readErr, daemon=True).start()

    def _read(self):
        for line in self.process.stdout:
            try:
                message = json.loads(line)
            except ValueError:
                continue
            with self.cond:
                self.lines.append(message)
                self.cond.notify_all()

    def _readErr(self):
        for line in self.process.stderr:
            self.stderr.append(line)

    def waitFor(self, kinds, timeout):
        """@return: the first message whose type is in C{kinds}, or C{None} after C{timeout} s."""
        deadline = time.monotonic() + timeout
        with self.cond:
            while True:
                for m in self.lines:
                    if m.get("type") in kinds:
                        return m
                remaining = deadline - time.monotonic()
                if remaining <= 0:
                    return None
                if self.process.poll() is not None:
                    remaining = min(remaining, 0.3)  # let the reader thread finish
                    deadline = min(deadline, time.monotonic() + 0.3)
                self.cond.wait(min(remaining, 0.5))

    def tell(self, message):
        try:
            self.process.stdin.write(json.dumps(message) + "\n")
            self.process.stdin.flush()
        except OSError:
            pass

    def stop(self):
        if self.process.poll() is None:
            self.process.kill()
        self.process.wait(5)

    @property
    def pid(self):
        return self.process.pid


def measureStep(target, n, mode, args, children, generator, serverPid):
    """
    Wait for the calls, run the window, collect results.

    @param target: C{"linkrtc"} or C{"bare"} (names the server measured).
    @param children: the load generator's processes (L{Child}).
    @param generator: the L{Child} of the SIP side.
    @param serverPid: the process whose CPU is measured.
    """
    t0 = time.monotonic()
    cpu0 = cpuSeconds(serverPid)
    setupTimeout = n / args.cps + 10
    ups = [c.waitFor(("up", "setup-failed"), setupTimeout) for c in children]
    row = {"target": target, "mode": mode, "calls": n}
    if any(u is None or u.get("type") != "up" or u.get("failed") for u in ups):
        row["error"] = "calls not set up: " + json.dumps(ups) + " " + "".join(
            "".join(c.stderr[-5:]) for c in children)[-1500:]
        return row
    setupSeconds = time.monotonic() - t0
    setupCpu = cpuSeconds(serverPid) - cpu0
    ws = time.monotonic() + args.warmup
    we = ws + args.window
    stop = we + 0.3
    for c in children:
        c.tell({"window": [ws, we], "stop": stop})
    time.sleep(max(0.0, ws - time.monotonic()))
    spy = None
    if getattr(args, "profile", False) and target == "linkrtc":
        import flame

        spy = flame.start(serverPid, args.window, f"media-{mode}")
    cpus = [cpuSeconds(serverPid)] + [cpuSeconds(c.pid) for c in children]
    busy = machineBusySeconds()
    time.sleep(max(0.0, we - time.monotonic()))
    cpus2 = [cpuSeconds(serverPid)] + [cpuSeconds(c.pid) for c in children]
    busy = machineBusySeconds() - busy
    results = [c.waitFor(("result",), 15) for c in children]
    if spy is not None:
        flame.finish(spy, f"media-{mode}")
    if any(r is None for r in results):
        row["error"] = "no result from the load generator: " + "".join(
            "".join(c.stderr[-5:]) for c in children)[-1500:]
        return row
    elapsed = we - ws
    serverCpu = cpus2[0] - cpus[0]
    row.update(
        setupSeconds=round(setupSeconds, 2),
        setupCpuMsPerCall=round(1000 * setupCpu / n, 2) if target == "linkrtc" else None,
        windowSeconds=round(elapsed, 2),
        cpuMsPerCallSecond=round(1000 * serverCpu / (n * elapsed), 3),
        serverCpuShare=round(serverCpu / elapsed, 3),
        loadGenCpuShare=[round((b - a) / elapsed, 3) for a, b in zip(cpus[1:], cpus2[1:])],
        # CPU used on the machine by processes that are not part of this step
        # (other work on a shared box perturbs the figures).
        otherCpuShare=round(max(0.0, busy - sum(b - a for a, b in zip(cpus, cpus2))) / elapsed, 3),
    )
    if target == "bare":
        # Each generator packet goes out on one leg and comes back on the other.
        [g] = results
        sent, got = g["sent"], g["received"]
        row["directions"] = {"both": {"sent": sent, "onTime": got, "late": g["late"],
                                      "p50ms": g["p50ms"], "p99ms": g["p99ms"],
                                      "maxms": g["maxms"], "senderMaxLagMs": g["maxLagMs"]}}
    else:
        g, c = results[0], results[1]

        def direction(sender, receiver):
            return {"sent": sender["sent"], "onTime": receiver["received"],
                    "late": receiver["late"], "p50ms": receiver["p50ms"],
                    "p99ms": receiver["p99ms"], "maxms": receiver["maxms"],
                    "seqSpan": receiver["seqSpan"], "senderMaxLagMs": sender["maxLagMs"]}

        # SIP -> WebRTC: sent by the generator, received by the client; and back.
        row["directions"] = {"sip->webrtc": direction(g, c), "webrtc->sip": direction(c, g)}
    worst, ok = 1.0, True
    for d in row["directions"].values():
        if d.get("seqSpan") is None:  # stamped: on time / sent
            d["delivery"] = round(d["onTime"] / d["sent"], 5) if d["sent"] else 0.0
        else:
            # Transcoded: LinkRTC makes the packets, so count them against the
            # sequence numbers they span (losses) and against 50 per call-second
            # (a backlog makes fewer arrive in the window).
            d["delivery"] = round(d["onTime"] / d["seqSpan"], 5) if d["seqSpan"] else 0.0
            d["rateRatio"] = round(d["onTime"] / (n * elapsed / PTIME), 4)
            ok = ok and d["rateRatio"] >= 0.99
        worst = min(worst, d["delivery"])
    row["delivery"] = worst
    row["pass"] = ok and worst >= DELIVERY_GOAL
    # The generator is the limit when one of its processes is near a full core
    # or more than 1 % of its 5 ms send slots ran over 20 ms late.
    slots = elapsed / PTIME * PHASES
    row["loadGenLaggedSlots"] = [r.get("laggedSlots", 0) for r in results]
    row["loadGenSaturated"] = max(row["loadGenCpuShare"]) >= 0.85 or any(
        lagged > 0.01 * slots for lagged in row["loadGenLaggedSlots"])
    row["serverSaturated"] = row["serverCpuShare"] >= 0.9
    return row


def runLinkRTCStep(linkrtc, n, mode, args):
    codec = {"relay": "pcmu", "pcma": "pcma"}.get(mode, "opus")
    client = Child("client", "--url", f"ws://127.0.0.1:{linkrtc.httpPort}/ws",
                   "--codec", codec, "--calls", str(n), "--deadline-ms", str(args.deadline_ms),
                   "--lifetime", str(n / args.cps + 40),
                   *(["--seam"] if args.client_seam else []))
    gen = None
    try:
        if client.waitFor(("registered",), 15) is None:
            return {"target": "linkrtc", "mode": mode, "calls": n,
                    "error": "client did not register: " + "".join(client.stderr[-10:])}
        gen = Child("gen", "--target", str(linkrtc.sipPort), "--calls", str(n),
                    "--cps", str(args.cps), "--setup-timeout", str(n / args.cps + 10),
                    "--deadline-ms", str(args.deadline_ms),
                    "--codec", codec if codec in G711 else "pcmu",
                    *(["--stamped"] if codec != "opus" else []))
        return measureStep("linkrtc", n, mode, args, [gen, client], gen, linkrtc.process.pid)
    finally:
        if gen is not None:
            gen.waitFor(("result", "setup-failed"), 1)
            deadline = time.monotonic() + 5
            while gen.process.poll() is None and time.monotonic() < deadline:
                time.sleep(0.1)
            gen.stop()
        client.stop()
        waitIdle(linkrtc, n)


def waitIdle(linkrtc, n, timeout=10):
    """Give LinkRTC time to close the calls (its CPU settles) before the next step."""
    deadline = time.monotonic() + timeout
    last = cpuSeconds(linkrtc.process.pid)
    while time.monotonic() < deadline:
        time.sleep(0.5)
        now = cpuSeconds(linkrtc.process.pid)
        if now - last < 0.05:
            return
        last = now


def runBareStep(n, args):
    bare = Child("bare", "--calls", str(n), "--lifetime", "60")
    gen = None
    try:
        ports = bare.waitFor(("ports",), 15)
        if ports is None:
            return {"target": "bare", "calls": n, "error": "".join(bare.stderr[-10:])}
        gen = Child("gen", "--mode", "bare", "--pairs", ports["pairs"], "--stamped",
                    "--deadline-ms", str(args.deadline_ms))
        gen.waitFor(("started",), 10)
        gen.lines.append({"type": "up"})
        return measureStep("bare", n, "relay", args, [gen], gen, bare.pid)
    finally:
        if gen is not None:
            gen.waitFor(("result",), 5)
            gen.stop()
        bare.stop()


def summarise(rows, target, mode):
    mine = [r for r in rows if r["target"] == target and r["mode"] == mode]
    passed = [r for r in mine if r.get("pass")]
    best = max(passed, key=lambda r: r["calls"]) if passed else None
    failed = [r for r in mine if not r.get("pass")]
    first = min(failed, key=lambda r: r["calls"]) if failed else None
    summary = {"target": target, "mode": mode, "maxCalls": best["calls"] if best else 0,
               "firstFailingCalls": first["calls"] if first else None}
    if best:
        summary.update(
            cpuMsPerCallSecond=best["cpuMsPerCallSecond"],
            serverCpuShare=best["serverCpuShare"],
            p99ms={k: d["p99ms"] for k, d in best["directions"].items()},
            delivery=best["delivery"],
            loadGenCpuShare=best["loadGenCpuShare"],
            otherCpuShare=best["otherCpuShare"],
        )
    if first is not None:
        if "error" in first:
            why = "error: " + first["error"][:200]
        else:
            rates = [d["rateRatio"] for d in first["directions"].values() if "rateRatio" in d]
            why = "delivery %.4f%s, server CPU %.2f core, load generator CPU %s" % (
                first["delivery"], ", rate %.4f" % min(rates) if rates else "",
                first["serverCpuShare"], first["loadGenCpuShare"])
            why += ", other processes %.2f core" % first["otherCpuShare"]
            if first.get("loadGenSaturated"):
                why = "load generator saturated first (" + why + ")"
            elif first.get("serverSaturated"):
                why = "server CPU saturated (" + why + ")"
            else:
                why = "server (" + why + ")"
        summary["limitedBy"] = why
    return summary


def orchestrate(args):
    from linkrtc.test.e2e.harness import LinkRTCProcess

    started = time.monotonic()
    budget = started + args.budget
    rows = []
    linkrtc = LinkRTCProcess("--media", "bridge", "--ice-address", "127.0.0.1",
                             "--media-timeout", "3600", "--ring-timeout", "60",
                             "--max-calls", "0", "--max-ringing-per-client", "0")
    linkrtc.start(timeout=20)
    try:
        for mode, ladder in (("relay", args.relay), ("pcma", args.pcma),
                             ("transcode", args.transcode)):
            for n in ladder:
                if time.monotonic() + n / args.cps + 25 > budget:
                    print(f"  {mode} N={n}: skipped (time budget)", flush=True)
                    break
                row = runLinkRTCStep(linkrtc, n, mode, args)
                rows.append(row)
                report(row)
                if not row.get("pass"):
                    break
        if linkrtc.logText().count("Traceback"):
            print("  note: LinkRTC's log holds tracebacks: " + linkrtc.log, flush=True)
    finally:
        linkrtc.stop()
    for n in args.bare:
        if time.monotonic() + 20 > budget:
            print(f"  bare N={n}: skipped (time budget)", flush=True)
            break
        row = runBareStep(n, args)
        rows.append(row)
        report(row)
    summaries = [summarise(rows, "linkrtc", "relay"), summarise(rows, "linkrtc", "pcma"),
                 summarise(rows, "linkrtc", "transcode"), summarise(rows, "bare", "relay")]
    ceiling = summaries[-1].get("cpuMsPerCallSecond")
    for s in summaries[:-1]:
        if ceiling and s.get("cpuMsPerCallSecond") is not None:
            s["cpuRatioToBare"] = round(s["cpuMsPerCallSecond"] / ceiling, 2)
    print("\nlargest N with >= 99.9 % of frames on time (both directions):")
    for s in summaries:
        print("  %-8s %-9s N=%-4s cpu %s ms/call-s (x%s bare), p99 %s, limited by: %s" % (
            s["target"], s["mode"], s["maxCalls"], s.get("cpuMsPerCallSecond"),
            s.get("cpuRatioToBare", "1" if s["target"] == "bare" else "?"),
            s.get("p99ms"), s.get("limitedBy", "not reached (ladder ended)")))
    result = {
        "benchmark": "media",
        "time": time.strftime("%Y-%m-%dT%H:%M:%S"),
        "machine": {"python": platform.python_version(), "cpus": os.cpu_count(),
                    "machine": platform.machine()},
        "settings": {"window": args.window, "warmup": args.warmup, "cps": args.cps,
                     "deadlineMs": args.deadline_ms, "goal": DELIVERY_GOAL,
                     "netns": os.environ.get("LINKRTC_BENCH_NETNS") == "1"},
        "summary": summaries,
        "steps": rows,
        "seconds": round(time.monotonic() - started, 1),
        "command": " ".join(["python", "bench/media.py"] + sys.argv[1:]),
    }
    os.makedirs(os.path.join(HERE, "results"), exist_ok=True)
    path = os.path.join(HERE, "results", "media.json")
    with open(path, "w") as f:
        json.dump(result, f, indent=2)
    print(f"wrote {path} ({result['seconds']} s)")


def report(row):
    if "error" in row:
        print(f"  {row['target']:8} {row['mode']:9} N={row['calls']:<4} ERROR {row['error'][:300]}",
              flush=True)
        return
    dirs = "  ".join(
        f"{k}: {d['delivery']:.4f} p99 {d['p99ms']} ms" for k, d in row["directions"].items())
    print(f"  {row['target']:8} {row['mode']:9} N={row['calls']:<4} "
          f"cpu {row['cpuMsPerCallSecond']:6.2f} ms/call-s (server {row['serverCpuShare']:.2f} "
          f"core, load gen {row['loadGenCpuShare']}, other {row['otherCpuShare']})  {dirs}  "
          f"{'PASS' if row['pass'] else 'FAIL'}"
          f"{' (load gen saturated)' if row['loadGenSaturated'] else ''}"
          f"{' (server saturated)' if row['serverSaturated'] else ''}",
          flush=True)


def ladder(text):
    return [int(x) for x in text.split(",") if x.strip()]


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    sub = parser.add_subparsers(dest="role")
    run = sub.add_parser("run")
    for p in (parser, run):
        p.add_argument("--relay", type=ladder, default=ladder("25,50,100,150,175,200"))
        p.add_argument("--pcma", type=ladder, default=ladder("50,100,200"),
                       help="PCMA<->PCMA relay ladder")
        p.add_argument("--transcode", type=ladder, default=ladder("5,10,20,25,30"))
        p.add_argument("--bare", type=ladder, default=ladder("50,100,200,400"))
        p.add_argument("--window", type=float, default=4.0, help="seconds measured")
        p.add_argument("--warmup", type=float, default=1.5, help="seconds")
        p.add_argument("--cps", type=float, default=40.0, help="call set-ups per second")
        p.add_argument("--deadline-ms", type=float, default=100.0,
                       help="one-way added latency beyond which a frame is late")
        p.add_argument("--budget", type=float, default=290.0, help="seconds for the whole run")
        p.add_argument("--no-netns", action="store_true")
        p.add_argument("--profile", action="store_true",
                       help="record LinkRTC with py-spy in each window (bench/flame.py)")
        p.add_argument("--client-seam", action="store_true",
                       help="the WebRTC-side load generator sends and counts through aiortc's "
                       "_send_rtp/_handle_rtp_data, as before its fast path (costs it more CPU)")
    gen = sub.add_parser("gen")
    gen.add_argument("--mode", default="linkrtc", choices=["linkrtc", "bare"])
    gen.add_argument("--target", type=int, default=0)
    gen.add_argument("--calls", type=int, default=0)
    gen.add_argument("--pairs", default="")
    gen.add_argument("--cps", type=float, default=25.0)
    gen.add_argument("--setup-timeout", type=float, default=20.0)
    gen.add_argument("--stamped", action="store_true")
    gen.add_argument("--codec", default="pcmu", choices=sorted(G711))
    gen.add_argument("--deadline-ms", type=float, default=100.0)
    client = sub.add_parser("client")
    client.add_argument("--url", required=True)
    client.add_argument("--codec", default="pcmu", choices=["pcmu", "pcma", "opus"])
    client.add_argument("--calls", type=int, required=True)
    client.add_argument("--deadline-ms", type=float, default=100.0)
    client.add_argument("--lifetime", type=float, default=60.0)
    client.add_argument("--seam", action="store_true",
                        help="send and count through aiortc's seam (a coroutine per packet)")
    bare = sub.add_parser("bare")
    bare.add_argument("--calls", type=int, required=True)
    bare.add_argument("--lifetime", type=float, default=60.0)
    args = parser.parse_args()

    if args.role == "gen":
        return runGen(args)
    if args.role == "client":
        return runClient(args)
    if args.role == "bare":
        return runBare(args)
    if (not args.no_netns and os.environ.get("LINKRTC_BENCH_NETNS") != "1"
            and os.geteuid() == 0
            and subprocess.run(["unshare", "--net", "true"], capture_output=True).returncode == 0):
        env = dict(os.environ, LINKRTC_BENCH_NETNS="1")
        process = subprocess.Popen(
            ["unshare", "--net", "sh", "-c", 'ip link set lo up && exec "$@"', "sh",
             sys.executable, os.path.abspath(__file__), *sys.argv[1:]], env=env)
        try:
            sys.exit(process.wait(args.budget + 60))
        except subprocess.TimeoutExpired:
            process.send_signal(signal.SIGTERM)
            process.wait(10)
            sys.exit("the benchmark ran over its budget")
    print(f"media bench: relay {args.relay}, pcma {args.pcma}, transcode {args.transcode}, "
          f"bare {args.bare}; "
          f"window {args.window} s after {args.warmup} s warm-up; in a network namespace: "
          f"{os.environ.get('LINKRTC_BENCH_NETNS') == '1'}", flush=True)
    orchestrate(args)


if __name__ == "__main__":
    main()
