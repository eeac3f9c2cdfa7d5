"""
Fuzzing targets for the parsers of untrusted input, with hypothesis.

Each target is a hypothesis strategy that makes inputs and a C{check}
function that feeds one input to the code under test. The property is the
same for all: the code either returns a result that can be used, or raises
the error it documents (L{SIPParseError} for SIP, L{MediaError} for SDP,
L{MessageError} for the clients' WebSocket messages, L{WebhookError} for
the application's webhook replies); any other exception is a bug.

The targets (L{TARGETS}, by name):

 - C{sip}: L{linkrtc.sip.parser.parseMessage} on messages built from a
   valid INVITE with header values replaced, added or garbled, then every
   parsed view (Via, From, To, Contact, Route, Record-Route, CSeq,
   Max-Forwards, Request-URI), serialising and parsing again, a response,
   the dialog checks of L{linkrtc.sip.dialog.checkDialogRequest} (an INVITE
   they accept must give a dialog whose BYE has a destination) and
   L{linkrtc.sip.parser.StreamFramer} on the same octets cut in two;
 - C{uri}: L{linkrtc.sip.uri.parseURI}, C{parseNameAddr},
   C{parseNameAddrList} and C{parseVia} on text from the URI alphabet;
 - C{sdp}: L{linkrtc.media.sdp.parseSDP}, then C{audio}, C{chooseCodec}
   and L{linkrtc.media.sdp.buildSDP} with what was parsed;
 - C{client}: L{linkrtc.signalling.messages.parseClientMessage} on JSON
   objects of every message type with fields of any JSON type, and on
   garbled frames;
 - C{webhook}: the webhook reply readers (C{incoming} and C{outgoing}
   decisions) on JSON objects and garbled bodies; a C{route} decision's
   fields must have their documented types.

The unit test C{linkrtc.test.test_fuzz} runs each target briefly with a
fixed seed; C{bench/fuzz.py} runs them for longer.
"""

import json
import math

from hypothesis import strategies as st

from linkrtc.api.webhook import WebhookError, _decision, _outgoingDecision
from linkrtc.call.outbound import _seconds
from linkrtc.error import MediaError, SIPParseError
from linkrtc.media import sdp as _sdp
from linkrtc.signalling.messages import CLIENT_MESSAGE_TYPES, MessageError, parseClientMessage
from linkrtc.sip.dialog import Dialog, checkDialogRequest
from linkrtc.sip.message import Request
from linkrtc.sip.parser import StreamFramer, parseMessage
from linkrtc.sip.transport import Address
from linkrtc.sip.uri import WILDCARD, parseNameAddr, parseNameAddrList, parseURI, parseVia
from linkrtc.sip.useragent import UserAgent

__all__ = ["TARGETS"]

# -- SIP ----------------------------------------------------------------------

SDP = (
    b"v=0\r\no=- 1 1 IN IP4 192.0.2.1\r\ns=-\r\nc=IN IP4 192.0.2.1\r\nt=0 0\r\n"
    b"m=audio 4000 RTP/AVP 0 8 101\r\na=rtpmap:101 telephone-event/8000\r\n"
    b"a=fmtp:101 0-16\r\na=ptime:20\r\na=sendrecv\r\n"
)

#: The header lines of a valid INVITE, in order: C{(name, value)}.
INVITE_HEADERS = [
    ("Via", "SIP/2.0/UDP 192.0.2.1:5060;branch=z9hG4bK776asdhds;rport"),
    ("Max-Forwards", "70"),
    ("From", '"Alice" <sip:alice@atlanta.example.com>;tag=1928301774'),
    ("To", "<sip:bob@biloxi.example.com>"),
    ("Call-ID", "a84b4c76e66710@pc33.atlanta.example.com"),
    ("CSeq", "314159 INVITE"),
    ("Contact", "<sip:alice@192.0.2.1:5060>"),
    ("Record-Route", "<sip:p1.example.com;lr>"),
    ("Content-Type", "application/sdp"),
]

#: Header names the fuzzer writes (compact forms included).
HEADER_NAMES = [
    "Via", "v", "From", "f", "To", "t", "Call-ID", "i", "CSeq", "Contact", "m",
    "Content-Length", "l", "Max-Forwards", "Record-Route", "Route", "Content-Type", "c",
    "Require", "Accept", "Content-Encoding", "Allow", "Expires", "X-Custom",
]

#: Characters that matter to SIP syntax, and some that should not be there.
_SIP_PIECES = [
    "sip:", "sips:", "tel:", "http://", "<", ">", ";", ",", ":", "@", "=", '"', "\\", " ",
    "\t", "[", "]", "::1", "192.0.2.1", "example.com", "lr", "tag=", "branch=z9hG4bK",
    "rport", "received=", "maddr=", "transport=", "udp", "tcp", "tls", "sctp", "*", "%",
    "%00", "%zz", "65535", "65536", "99999", "0", "-1", "inf", "1e400", "SIP/2.0/UDP ",
    "\x00", "\xff", "\u2028", "\r", "\n", "\r\n ", "?", "&", "9" * 40, "a" * 300,
]

_sipText = st.lists(
    st.one_of(st.sampled_from(_SIP_PIECES), st.text(max_size=8)), max_size=12
).map("".join)

#: URIs, mostly well-formed, of every scheme and shape a header may carry.
_uris = st.one_of(
    st.builds(
        "{}{}{}{}{}".format,
        st.sampled_from(["sip:", "sips:", "tel:", "http://", "mailto:", "urn:x:", ""]),
        st.sampled_from(["", "alice@", "+1555@", "a:pw@", "%00@"]),
        st.sampled_from(["p.example.com", "192.0.2.1", "[::1]", "[::1", "", "-", "a..b"]),
        st.sampled_from(["", ":5060", ":0", ":65536", ":x"]),
        st.lists(st.sampled_from([";lr", ";transport=tcp", ";transport=sctp", ";transport",
                                  ";maddr=192.0.2.9", ";maddr=", ";method=INVITE", "?h=v"]),
                 max_size=3).map("".join),
    ),
    _sipText,
)


@st.composite
def _addresses(draw):
    """A header value made of name-addrs (or a bare URI, or C{*})."""
    items = []
    for _ in range(draw(st.integers(1, 3))):
        uri = draw(_uris)
        items.append(draw(st.sampled_from(["<%s>", '"N" <%s>', "%s", "<%s>;tag=t", "*"])
                          .map(lambda form: form % (uri,) if "%s" in form else form)))
    return ", ".join(items)


@st.composite
def sipMessages(draw):
    """
    Octets of a SIP message: a valid INVITE (mostly) with its header lines
    changed. Half the examples are I{tame}: only whole addresses (Contact,
    Record-Route, Route, From, To) and the Request-URI change, so that most
    of them parse and reach the dialog checks; the others are I{wild}:
    values replaced, added, dropped or garbled, Content-Length and raw
    octets too.
    """
    wild = draw(st.booleans())
    method = draw(st.sampled_from(["INVITE"] * 4 + ["OPTIONS", "BYE", "ACK", "UPDATE"]))
    uri = draw(st.sampled_from(["sip:bob@biloxi.example.com"] * 3 + [None]))
    if uri is None:
        uri = draw(_uris)
    headers = [list(h) for h in INVITE_HEADERS]
    headers[5][1] = "314159 " + method
    actions = ["replace", "add", "drop", "garble", "address"] if wild else ["address"]
    for _ in range(draw(st.integers(0 if wild else 1, 4))):
        action = draw(st.sampled_from(actions))
        if action == "add" or not headers:
            headers.append([draw(st.sampled_from(HEADER_NAMES)), draw(_sipText)])
            continue
        i = draw(st.integers(0, len(headers) - 1))
        if action == "address":
            name = draw(st.sampled_from(["Contact", "Record-Route", "Route", "From", "To"]))
            headers.append([name, draw(_addresses())])
            if name in ("Contact", "From", "To"):
                headers = [h for h in headers[:-1] if h[0] != name] + headers[-1:]
        elif action == "replace":
            headers[i][1] = draw(_sipText)
        elif action == "drop":
            del headers[i]
        else:
            value = headers[i][1]
            at = draw(st.integers(0, len(value)))
            headers[i][1] = value[:at] + draw(_sipText) + value[at:]
    body = draw(st.sampled_from([SDP, b"", b"x" * 10]))
    length = str(len(body))
    if wild and draw(st.booleans()):
        length = draw(_sipText)
    lines = ["%s %s SIP/2.0" % (method, uri)] + ["%s: %s" % (n, v) for n, v in headers]
    lines.append("Content-Length: " + length)
    data = ("\r\n".join(lines) + "\r\n\r\n").encode("utf-8", "surrogatepass") + body
    if wild and draw(st.booleans()):
        # a few raw octets changed anywhere
        data = bytearray(data)
        for _ in range(draw(st.integers(1, 3))):
            data[draw(st.integers(0, len(data) - 1))] = draw(st.integers(0, 255))
        data = bytes(data)
    return data


class _Transport:
    """What L{UserAgent.destinationFor} and C{localContact} need."""

    def localContactURI(self, transport, user=None):
        return parseURI("sip:203.0.113.10:5060")


_userAgent = UserAgent(None, _Transport(), None, None)


def _views(msg):
    """Read every parsed view of C{msg}; only L{SIPParseError} may come out."""
    for name in ("vias", "topVia", "callId", "cseq", "fromAddr", "toAddr", "contacts",
                 "routes", "recordRoutes", "maxForwards", "contentType"):
        try:
            getattr(msg, name)
        except SIPParseError:
            pass
    try:
        for via in msg.vias:
            via.rport, via.ttl, via.sentBy, str(via)
    except SIPParseError:
        pass
    if isinstance(msg, Request):
        try:
            str(msg.uri)
        except SIPParseError:
            pass


def checkSIP(data):
    """
    Parse C{data} as a datagram and as a stream; use everything parsed.

    @raise AssertionError: for a dialog that passed the checks but cannot
        be ended with BYE.
    """
    for cut in (len(data) // 2, 1):
        framer = StreamFramer()
        try:
            framer.feed(data[:cut])
            framer.feed(data[cut:])
        except SIPParseError:
            pass
    try:
        msg = parseMessage(data)
    except SIPParseError:
        return
    _views(msg)
    try:
        again = parseMessage(msg.toBytes())
    except SIPParseError:
        pass
    else:
        _views(again)
    if not isinstance(msg, Request):
        return
    try:
        msg.createResponse(400, toTag="x").toBytes()
    except SIPParseError:
        pass
    if msg.method != "INVITE":
        return
    try:
        checkDialogRequest(msg)
        dialog = Dialog.fromServerRequest(msg, "ourtag")
    except SIPParseError:
        return
    bye = dialog.createRequest("BYE")
    destination = _userAgent.destinationFor(dialog.nextHop(bye))
    assert isinstance(destination, Address), destination
    parseMessage(b"%s\r\nVia: SIP/2.0/UDP 192.0.2.9;branch=z9hG4bKx\r\n%s" % tuple(
        bye.toBytes().split(b"\r\n", 1)))


# -- URIs -----------------------------------------------------------------------

def checkURI(text):
    """Every URI-ish parser on C{text}; what parses prints and parses again."""
    for parse in (parseURI, parseNameAddr, parseNameAddrList, parseVia):
        try:
            result = parse(text)
        except SIPParseError:
            continue
        for item in result if isinstance(result, list) else [result]:
            if item is WILDCARD:
                continue
            printed = str(item)
            again = parse(printed)
            str(again)


# -- SDP ------------------------------------------------------------------------

_SDP_LINES = [
    "v=0", "o=- 1 1 IN IP4 192.0.2.1", "s=-", "c=IN IP4 192.0.2.1", "c=IN IP6 ::1", "t=0 0",
    "m=audio 4000 RTP/AVP 0 8 101", "m=video 0 RTP/AVP 96", "a=rtpmap:101 telephone-event/8000",
    "a=rtpmap:0 PCMU/8000", "a=fmtp:101 0-16", "a=ptime:20", "a=sendonly", "a=inactive",
]
_SDP_PIECES = [
    "v=", "o=", "c=", "m=", "a=", "IN", "IP4", "IP6", "audio", "RTP/AVP", "rtpmap:", "ptime:",
    "fmtp:", "/", " ", ":", "0", "-1", "65536", "128", "inf", "nan", "1e400", "9" * 5000,
    "0.0.0.0", "::", "\x00", "\r\n", "\n", "telephone-event", "PCMU", "G722",
]
_sdpText = st.lists(
    st.one_of(st.sampled_from(_SDP_PIECES), st.text(max_size=6)), max_size=8
).map("".join)


@st.composite
def sdpBodies(draw):
    """Octets of a session description: valid lines, changed ones and garbage."""
    lines = draw(st.lists(st.one_of(st.sampled_from(_SDP_LINES), _sdpText), max_size=14))
    if draw(st.booleans()):
        lines = ["v=0"] + lines
    text = "\r\n".join(lines) + "\r\n"
    if draw(st.booleans()):
        return text.encode("utf-8", "surrogatepass")
    return draw(st.binary(max_size=200)) if draw(st.booleans()) else text.encode(
        "utf-8", "surrogatepass")


def checkSDP(data):
    """Parse C{data}; answer what parses (only L{MediaError} may come out)."""
    try:
        desc = _sdp.parseSDP(data)
        index, m = desc.audio()
        m.codecs()
        codec, event = _sdp.chooseCodec(m)
    except MediaError:
        return
    codecs = [codec] + ([event] if event is not None else [])
    rejected = [x for i, x in enumerate(desc.media) if i != index]
    body = _sdp.buildSDP("192.0.2.7", 4000, codecs, 1, 0, _sdp.answerDirection(m.direction),
                         m.ptime or 20, rejected, index)
    # our answer must be readable by ourselves
    _sdp.parseSDP(body).audio()


# -- JSON (client messages and webhook replies) ------------------------------------

_jsonScalars = st.one_of(
    st.none(), st.booleans(), st.integers(), st.floats(allow_nan=True, allow_infinity=True),
    st.text(max_size=20), st.sampled_from(["", "alice", "sip:bob@example.com", "busy", "1#",
                                           "x" * 600, "\x00", "route", "reject"]),
)
_json = st.recursive(
    _jsonScalars,
    lambda children: st.one_of(st.lists(children, max_size=3),
                               st.dictionaries(st.text(max_size=8), children, max_size=3)),
    max_leaves=8,
)

_CLIENT_FIELDS = ["type", "call", "sdp", "to", "ref", "name", "token", "trace", "reason",
                  "digits"]


def _frames(objects):
    """Octets of JSON C{objects}, sometimes garbled or replaced by raw octets."""

    @st.composite
    def frames(draw):
        obj = draw(objects)
        text = json.dumps(obj, allow_nan=True)
        how = draw(st.sampled_from(["json", "json", "json", "cut", "binary", "nest"]))
        if how == "cut":
            return text[: draw(st.integers(0, len(text)))].encode("utf-8", "surrogatepass")
        if how == "binary":
            return draw(st.binary(max_size=100))
        if how == "nest":
            return ("[" * 5000 + "]" * 5000).encode()
        return text.encode("utf-8", "surrogatepass")

    return frames()


@st.composite
def _clientObjects(draw):
    obj = {"type": draw(st.one_of(st.sampled_from(sorted(CLIENT_MESSAGE_TYPES)), _jsonScalars))}
    for key in draw(st.lists(st.sampled_from(_CLIENT_FIELDS), max_size=5)):
        obj[key] = draw(_json)
    return obj


def checkClient(frame):
    """Parse a client frame; only L{MessageError} may come out."""
    try:
        parseClientMessage(frame)
    except MessageError:
        pass
    try:
        parseClientMessage(frame.decode("utf-8", "replace"))
    except MessageError:
        pass


_REPLY_FIELDS = ["action", "client", "status", "trunk", "to", "caller_id", "max_ring_seconds",
                 "max_answer_seconds"]


@st.composite
def _replyObjects(draw):
    obj = {"action": draw(st.one_of(st.sampled_from(["route", "reject"]), _jsonScalars))}
    for key in draw(st.lists(st.sampled_from(_REPLY_FIELDS), max_size=5)):
        obj[key] = draw(_json)
    return obj


def checkWebhook(body):
    """
    Read C{body} as a reply to C{incoming} and to C{outgoing}; only
    L{WebhookError} may come out, and a decision has its documented shape.
    """
    try:
        decision = _decision(body)
    except WebhookError:
        pass
    else:
        assert decision["action"] in ("route", "reject"), decision
        if decision["action"] == "reject":
            assert isinstance(decision["status"], int) and 400 <= decision["status"] <= 699
        else:
            assert isinstance(decision["client"], str), decision
    try:
        decision = _outgoingDecision(body)
    except WebhookError:
        return
    if decision["action"] == "reject":
        assert isinstance(decision["status"], int) and 400 <= decision["status"] <= 699
        return
    assert decision["trunk"] is None or isinstance(decision["trunk"], str), decision
    for key in ("to", "caller_id"):
        if key in decision:
            assert isinstance(decision[key], str) and decision[key], decision
    for key in ("max_ring_seconds", "max_answer_seconds"):
        if key in decision:
            # checked where the call applies them: only ValueError, else a time
            try:
                seconds = _seconds(decision[key], key)
            except ValueError:
                continue
            assert math.isfinite(seconds) and seconds > 0, decision


#: name -> (strategy, check)
TARGETS = {
    "sip": (sipMessages(), checkSIP),
    "uri": (st.one_of(_sipText, _uris, _addresses()), checkURI),
    "sdp": (sdpBodies(), checkSDP),
    "client": (_frames(_clientObjects()), checkClient),
    "webhook": (_frames(_replyObjects()), checkWebhook),
}
