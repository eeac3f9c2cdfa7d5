"""
A SIP flood against a running LinkRTC, from one address, while a second
address sends its own OPTIONS; prints, as JSON, how many of the second
address's requests were answered (issue 11, "SIP admission").

Run inside a network namespace that has only loopback (the caller does
C{unshare --net}): LinkRTC listens on 127.0.0.1, the flood comes from
127.0.0.1 (a subprocess with a raw UDP socket that never reads nor ACKs:
a scanner), the well-behaved client from 127.0.0.2. Rate limiting is
turned on for loopback (C{--sip-rate-limit-loopback}) unless C{--no-limit}.

    unshare --net python flood_live.py --kind invite --rate 3000 --seconds 2

Bounded: the flood is exactly C{rate * seconds} datagrams and stops after
C{seconds} (plus a hard timeout) even when the sender falls behind.
"""

import argparse
import json
import os
import select
import socket
import subprocess
import sys
import time

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.dirname(HERE))))

from linkrtc.test.e2e.harness import LinkRTCProcess  # noqa: E402

FLOODER = r"""
import socket, sys, time
kind, port, rate, seconds = sys.argv[1], int(sys.argv[2]), int(sys.argv[3]), float(sys.argv[4])
sdp = (b"v=0\r\no=- 1 1 IN IP4 127.0.0.1\r\ns=-\r\nc=IN IP4 127.0.0.1\r\nt=0 0\r\n"
       b"m=audio 4000 RTP/AVP 0\r\na=rtpmap:0 PCMU/8000\r\n")
def message(n):
    method = b"INVITE" if kind == "invite" else b"OPTIONS"
    n = str(n).encode()
    body = sdp if kind == "invite" else b""
    return (method + b" sip:scan" + n + b"@127.0.0.1:%d SIP/2.0\r\n" % port
            + b"Via: SIP/2.0/UDP 127.0.0.1:5060;branch=z9hG4bKflood" + n + b"\r\n"
            + b"Max-Forwards: 70\r\nTo: <sip:scan@127.0.0.1>\r\n"
            + b"From: <sip:scanner@127.0.0.1>;tag=f" + n + b"\r\n"
            + b"Call-ID: flood-" + n + b"\r\nCSeq: 1 " + method + b"\r\n"
            + b"Contact: <sip:scanner@127.0.0.1:5060>\r\n"
            + (b"Content-Type: application/sdp\r\n" if body else b"")
            + b"Content-Length: %d\r\n\r\n" % len(body) + body)
s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
s.bind(("127.0.0.1", 0))
s.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 8 << 20)
total = int(rate * seconds)
start = time.monotonic()
sent = 0
while sent < total:
    due = min(total, int((time.monotonic() - start) * rate) + 1)
    while sent < due:
        try:
            s.sendto(message(sent), ("127.0.0.1", port))
        except OSError:
            pass
        sent += 1
    if time.monotonic() - start > seconds + 1:
        break
    time.sleep(0.001)
elapsed = time.monotonic() - start
time.sleep(1.0)
s.setblocking(False)
received = 0
while True:
    try:
        s.recv(65536)
    except OSError:
        break
    received += 1
print(sent, elapsed, received)
"""


def cpuSeconds(pid):
    """@return: user + system CPU seconds of process C{pid}, or C{None}."""
    try:
        with open(f"/proc/{pid}/stat") as f:
            fields = f.read().rsplit(")", 1)[1].split()
        return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")
    except (OSError, ValueError, IndexError):
        return None


def options(port, n):
    n = str(n).encode()
    return (b"OPTIONS sip:bob@127.0.0.1:%d SIP/2.0\r\n" % port
            + b"Via: SIP/2.0/UDP 127.0.0.2:5060;branch=z9hG4bKgood" + n + b";rport\r\n"
            + b"Max-Forwards: 70\r\nTo: <sip:bob@127.0.0.1>\r\n"
            + b"From: <sip:good@127.0.0.2>;tag=g" + n + b"\r\n"
            + b"Call-ID: good-" + n + b"\r\nCSeq: 1 OPTIONS\r\nContent-Length: 0\r\n\r\n")


def callIdOf(data):
    for line in data.split(b"\r\n"):
        if line.lower().startswith(b"call-id:"):
            return line.split(b":", 1)[1].strip()
    return None


def run(kind, rate, seconds, goodRate, limit, port):
    """
    @return: a C{dict}: what was sent and answered, LinkRTC's CPU seconds.
    """
    extra = ["--sip-rate-limit-loopback"] if limit else ["--sip-rate-limit", "0"]
    linkrtc = LinkRTCProcess(*extra, sipPort=port).start()
    try:
        good = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        good.bind(("127.0.0.2", 0))
        cpuBefore = cpuSeconds(linkrtc.process.pid)
        flooder = subprocess.Popen(
            [sys.executable, "-c", FLOODER, kind, str(port), str(rate), str(seconds)],
            stdout=subprocess.PIPE, text=True)
        answered, sent = set(), 0
        start = time.monotonic()
        deadline = start + seconds
        while time.monotonic() < deadline:
            if time.monotonic() >= start + sent / goodRate:
                good.sendto(options(port, sent), ("127.0.0.1", port))
                sent += 1
            ready, _, _ = select.select([good], [], [], 0.002)
            if ready:
                reply = good.recv(65536)
                if reply.startswith(b"SIP/2.0 200 "):
                    answered.add(callIdOf(reply))
        late = time.monotonic() + 2.0
        while time.monotonic() < late and len(answered) < sent:
            ready, _, _ = select.select([good], [], [], 0.05)
            if ready:
                reply = good.recv(65536)
                if reply.startswith(b"SIP/2.0 200 "):
                    answered.add(callIdOf(reply))
        out, _ = flooder.communicate(timeout=seconds + 30)
        floodSent, floodElapsed, floodResponses = out.split()
        cpuAfter = cpuSeconds(linkrtc.process.pid)
        alive = linkrtc.process.poll() is None
    finally:
        linkrtc.stop()
    return {
        "kind": kind,
        "limit": limit,
        "flood_rate_asked": rate,
        "flood_sent": int(floodSent),
        "flood_rate_achieved": round(int(floodSent) / float(floodElapsed)),
        "flood_responses": int(floodResponses),
        "good_sent": sent,
        "good_answered": len(answered),
        "answered_ratio": round(len(answered) / sent, 4) if sent else None,
        "linkrtc_cpu_seconds": (round(cpuAfter - cpuBefore, 2)
                                if None not in (cpuBefore, cpuAfter) else None),
        "alive": alive,
    }


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--kind", choices=("invite", "options"), default="options")
    parser.add_argument("--rate", type=int, default=6000, help="flood datagrams a second")
    parser.add_argument("--seconds", type=float, default=2.0)
    parser.add_argument("--good-rate", type=float, default=50.0)
    parser.add_argument("--no-limit", action="store_true")
    parser.add_argument("--port", type=int, default=5080)
    args = parser.parse_args()
    subprocess.run(["ip", "link", "set", "lo", "up"], check=True)
    print(json.dumps(run(args.kind, args.rate, args.seconds, args.good_rate,
                         not args.no_limit, args.port)))


if __name__ == "__main__":
    main()
