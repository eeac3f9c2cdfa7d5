"""
SIP message layer benchmark, in process CPU time (C{time.process_time}).

1. INVITE: parses a typical INVITE with SDP (about 900 octets, 12
   headers), reads the fields a transaction layer needs (top Via branch,
   Call-ID, CSeq, From tag) and serialises it again. Beside it, in the same
   run, a bare baseline splits the same octets into lines and header
   name/value pairs with plain C{bytes} methods.
2. Every message of a call (SIPp's C{uac_call.xml} against LinkRTC:
   INVITE, 100, 180, 200 with SDP, ACK, BYE, 200), each parsed, read and
   serialised: microseconds per message and per call.
3. The UAS path of one call as LinkRTC's SIP stack runs it at the message
   layer: the three requests parsed and their top Via annotated
   (C{SIPTransportLayer.annotateVia}: C{received}/C{rport}, RFC 3581), the
   merge/dialog fields read, and the four responses built
   (C{Request.createResponse}, Server, Contact, To tag, SDP body) and
   serialised. Microseconds per call.

The same texts are parsed again and again: the parser's remembered From,
To and Contact parses always hit here (in a real call the first INVITE of
a dialog misses); C{bench/sip_stack.py} has fresh tags in every call.

Prints the rates and appends them to C{bench/results/sip_parse.txt}.

Run: C{python bench/sip_parse.py} (about 20 s).
"""

import os
import platform
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

from linkrtc.sip.address import Source  # noqa: E402
from linkrtc.sip.parser import parseMessage  # noqa: E402
from linkrtc.sip.transport import SIPTransportLayer  # noqa: E402
from linkrtc.sip.uri import SIPURI, NameAddr  # noqa: E402

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


def _request(method, cseq, toTag=None, body=b""):
    """A request as SIPp's uac_call.xml sends it (rport, one Via)."""
    head = (
        "%s sip:bench@127.0.0.1:5060 SIP/2.0\r\n"
        "Via: SIP/2.0/UDP 127.0.0.1:5062;branch=z9hG4bK-4242-1-%d;rport\r\n"
        "Max-Forwards: 70\r\n"
        "From: \"sipp\" <sip:alice@127.0.0.1:5062>;tag=4242SIPpTag001\r\n"
        "To: <sip:bench@127.0.0.1:5060>%s\r\n"
        "Call-ID: 1-4242@127.0.0.1\r\n"
        "CSeq: %d %s\r\n"
        "Contact: <sip:alice@127.0.0.1:5062;transport=UDP>\r\n"
        "%s"
        "Content-Length: %d\r\n\r\n" % (
            method, cseq, ";tag=" + toTag if toTag else "", cseq, method,
            "Content-Type: application/sdp\r\n" if body else "", len(body)))
    return head.encode() + body


CALL_SDP = (b"v=0\r\no=user1 53655765 2353687637 IN IP4 127.0.0.1\r\ns=-\r\n"
            b"c=IN IP4 127.0.0.1\r\nt=0 0\r\nm=audio 6000 RTP/AVP 0 101\r\n"
            b"a=rtpmap:0 PCMU/8000\r\na=rtpmap:101 telephone-event/8000\r\na=sendrecv\r\n")
TO_TAG = "5e0f6a1c2b3d4e5f"
CALL_INVITE = _request("INVITE", 1, body=CALL_SDP)
CALL_ACK = _request("ACK", 1, TO_TAG)
CALL_BYE = _request("BYE", 2, TO_TAG)
SOURCE = Source("UDP", "127.0.0.1", 5062)
# (annotateVia needs no socket: the layer is only made for it)
LAYER = SIPTransportLayer(None)
CONTACT = str(NameAddr(SIPURI("sip", host="127.0.0.1", port=5060)))


def _responses(invite, bye):
    """The four responses of a call, built as the user agent builds them."""
    out = []
    for status, request, tag, body in ((100, invite, None, b""), (180, invite, TO_TAG, b""),
                                       (200, invite, TO_TAG, CALL_SDP), (200, bye, None, b"")):
        response = request.createResponse(status, toTag=tag)
        response.headers.set("Server", "LinkRTC")
        if tag is not None:
            response.headers.set("Contact", CONTACT)
        if body:
            response.body = body
            response.headers.set("Content-Type", "application/sdp")
        out.append(response)
    return out


def _receive(data):
    """Parse a request as the transport layer does: top Via annotated (RFC 3581)."""
    request = parseMessage(data)
    LAYER.annotateVia(request, SOURCE)
    request.fromAddr.tag
    request.toAddr.tag
    request.callId
    request.cseq
    return request


def uasCall(_=None):
    """One call's message work on LinkRTC's side: 3 requests in, 4 responses out."""
    invite = _receive(CALL_INVITE)
    invite.uri
    invite.contacts
    _receive(CALL_ACK)
    bye = _receive(CALL_BYE)
    return [r.toBytes() for r in _responses(invite, bye)]


CALL_MESSAGES = [CALL_INVITE] + uasCall()[:3] + [CALL_ACK, CALL_BYE] + uasCall()[3:]


def callSet(_=None):
    """Every message of a call parsed, its key fields read, and serialised."""
    out = None
    for data in CALL_MESSAGES:
        msg = parseMessage(data)
        msg.topVia.branch
        msg.callId
        msg.cseq
        msg.fromAddr.tag
        msg.toAddr.tag
        out = msg.toBytes()
    return out


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
    """Calls per CPU second of C{fn(data)}, best of three runs of C{seconds}/3."""
    best = 0.0
    for _ in range(3):
        n = 0
        begin = time.process_time()
        deadline = begin + seconds / 3
        while True:
            for _ in range(500):
                fn(data)
            n += 500
            now = time.process_time()
            if now >= deadline:
                break
        best = max(best, n / (now - begin))
    return best


def main():
    assert ours(INVITE) and parseMessage(ours(INVITE)) == parseMessage(INVITE)
    ourRate = rate(ours, INVITE, 6.0)
    baseRate = rate(baseline, INVITE, 3.0)
    for data in CALL_MESSAGES:
        assert parseMessage(parseMessage(data).toBytes()) == parseMessage(data)
    setRate = rate(callSet, None, 6.0)
    uasRate = rate(uasCall, None, 6.0)
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
        "  call set (INVITE 100 180 200 ACK BYE 200) parse+access+serialise: "
        "%.2f us/call (%.2f us/msg)" % (1e6 / setRate, 1e6 / setRate / len(CALL_MESSAGES)),
        "  UAS call path (3 requests parsed+annotated, 4 responses built+serialised): "
        "%.2f us/call" % (1e6 / uasRate,),
    ]
    record("\n".join(lines) + "\n")


def record(text):
    """
    Print C{text} (lines ending in a newline) and append it to
    C{bench/results/sip_parse.txt} (this benchmark's and
    C{bench/sip_stack.py}'s).
    """
    sys.stdout.write(text)
    folder = os.path.join(os.path.dirname(os.path.abspath(__file__)), "results")
    os.makedirs(folder, exist_ok=True)
    with open(os.path.join(folder, "sip_parse.txt"), "a") as f:
        f.write(text)


if __name__ == "__main__":
    main()
