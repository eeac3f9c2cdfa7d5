"""
The load generators of bench/media.py (also used by bench/setups.py and
bench/memory.py), each a role run in its own process:

  - ``gen``: the SIP side: a minimal UAC (INVITE, ACK, BYE over UDP) and an
    RTP generator for every call from one UDP socket, paced by L{Pacer};
  - ``client``: the WebRTC side: N aiortc ``RTCPeerConnection``s answering
    LinkRTC's offers over the WebSocket, sending and counting packets on
    libsrtp's contexts directly (``--seam``: through aiortc's seam);
  - ``bare``: N pairs of Twisted UDP ports that latch and forward (the
    ceiling).

Each role prints JSON lines on stdout (``ports``, ``registered``, ``up``,
``result``, ...) and reads commands (the measurement window) on stdin;
bench/media.py's orchestrator (its ``Child``) drives them.

    python bench/mediaload.py gen|client|bare ...
"""


import argparse
import json
import os
import re
import selectors
import socket
import struct
import sys
import time
import uuid

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(HERE)
sys.path.insert(0, ROOT)

MAGIC = b"LRTB"
PTIME = 0.02  # seconds per packet
PHASES = 4  # send slots per 20 ms
#: The SIP side's G.711 codec by name: RTP payload type and SDP encoding name.
G711 = {"pcmu": (0, "PCMU"), "pcma": (8, "PCMA")}


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


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    sub = parser.add_subparsers(dest="role", required=True)
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
    return {"gen": runGen, "client": runClient, "bare": runBare}[args.role](args)


if __name__ == "__main__":
    main()
