"""
SIP message layer benchmark: INVITEs parsed and serialised per second.

Parses a typical INVITE with SDP (about 900 octets, 12 headers), reads the
fields a transaction layer needs (top Via branch, Call-ID, CSeq, From tag)
and serialises it again. Beside it, in the same run, a bare baseline splits
the same octets into lines and header name/value pairs with plain C{bytes}
methods. Prints both rates and their ratio and appends them to
C{bench/results/sip_parse.txt}.

Run: C{/work/venv/bin/python bench/sip_parse.py} (about 10 s).
"""

import os
import platform
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

from linkrtc.sip.parser import parseMessage  # noqa: E402

SDP = (
    b"v=0\r\n"
    b"o=alice 2890844526 2890844526 IN IP4 198.51.100.7\r\n"
    b"s=-\r\n"
    b"c=IN IP4 198.51.100.7\r\n"
    b"t=0 0\r\n"
    b"m=audio 49170 RTP/AVP 0 8 9 101\r\n"
    b"a=rtpmap:0 PCMU/8000\r\n"
    b"a=rtpmap:8 PCMA/8000\r\n"
    b"a=rtpmap:9 G722/8000\r\n"
    b"a=rtpmap:101 telephone-event/8000\r\n"
    b"a=fmtp:101 0-16\r\n"
    b"a=ptime:20\r\n"
    b"a=maxptime:150\r\n"
    b"a=rtcp:49171 IN IP4 198.51.100.7\r\n"
    b"a=sendrecv\r\n"
)

INVITE = (
    b"INVITE sip:+14155550123@linkrtc.example.com;user=phone SIP/2.0\r\n"
    b"Via: SIP/2.0/UDP 198.51.100.7:5060;branch=z9hG4bK74bf9a1c2e;rport\r\n"
    b"Max-Forwards: 70\r\n"
    b"From: \"Alice Smith\" <sip:alice@atlanta.example.com>;tag=9fxced76sl\r\n"
    b"To: <sip:+14155550123@linkrtc.example.com;user=phone>\r\n"
    b"Call-ID: 3848276298220188511@atlanta.example.com\r\n"
    b"CSeq: 314159 INVITE\r\n"
    b"Contact: <sip:alice@198.51.100.7:5060;transport=udp>\r\n"
    b"Allow: INVITE, ACK, CANCEL, BYE, OPTIONS, INFO, UPDATE\r\n"
    b"Supported: replaces, timer\r\n"
    b"User-Agent: ExampleUA/4.2.1 (build 20260101; linux-x86_64)\r\n"
    b"Content-Type: application/sdp\r\n"
    b"Content-Length: " + str(len(SDP)).encode() + b"\r\n"
    b"\r\n" + SDP
)


def ours(data):
    msg = parseMessage(data)
    msg.topVia.branch
    msg.callId
    msg.cseq
    msg.fromAddr.tag
    return msg.toBytes()


def baseline(data):
    end = data.find(b"\r\n\r\n")
    lines = data[:end].split(b"\r\n")
    headers = []
    for line in lines[1:]:
        name, _, value = line.partition(b":")
        headers.append((name.strip(), value.strip()))
    start = lines[0].split(b" ", 2)
    out = [b" ".join(start)]
    for name, value in headers:
        out.append(name + b": " + value)
    return b"\r\n".join(out) + b"\r\n\r\n" + data[end + 4 :]


def rate(fn, data, seconds):
    """Calls per second of C{fn(data)}, best of three runs of C{seconds}/3."""
    best = 0.0
    for _ in range(3):
        n = 0
        begin = time.perf_counter()
        deadline = begin + seconds / 3
        while True:
            for _ in range(500):
                fn(data)
            n += 500
            now = time.perf_counter()
            if now >= deadline:
                break
        best = max(best, n / (now - begin))
    return best


def main():
    assert ours(INVITE) and parseMessage(ours(INVITE)) == parseMessage(INVITE)
    ourRate = rate(ours, INVITE, 6.0)
    baseRate = rate(baseline, INVITE, 3.0)
    lines = [
        "sip_parse %s python %s %s" % (
            time.strftime("%Y-%m-%dT%H:%M:%S"), platform.python_version(), platform.machine()),
        "  message: INVITE with SDP, %d octets, %d header lines" % (
            len(INVITE), INVITE[: INVITE.find(b"\r\n\r\n")].count(b"\r\n")),
        "  linkrtc parse+access+serialise: %10.0f msg/s (%.2f us/msg)" % (
            ourRate, 1e6 / ourRate),
        "  bare bytes split+join baseline: %10.0f msg/s (%.2f us/msg)" % (
            baseRate, 1e6 / baseRate),
        "  ratio baseline/linkrtc: %.2f" % (baseRate / ourRate,),
    ]
    text = "\n".join(lines) + "\n"
    sys.stdout.write(text)
    folder = os.path.join(os.path.dirname(os.path.abspath(__file__)), "results")
    os.makedirs(folder, exist_ok=True)
    with open(os.path.join(folder, "sip_parse.txt"), "a") as f:
        f.write(text)


if __name__ == "__main__":
    main()
