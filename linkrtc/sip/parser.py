# -*- test-case-name: linkrtc.sip.test.test_parser -*-
"""
Turning octets into SIP messages (RFC 3261 §7, §18.3, §25; RFC 4475).

L{parseMessage} reads one whole message (a UDP datagram, or one message
cut out of a stream by L{StreamFramer}). The start line and header lines
are split at once; Via, From, To and Contact are parsed (which checks them)
and kept for the message's accessors; the Request-URI is checked cheaply and
parsed when first used.
"""

import re

from linkrtc.error import SIPFramingError, SIPParseError
from linkrtc.sip import uri as _uri
from linkrtc.sip.message import (
    _EXACT,
    Headers,
    Request,
    Response,
    canonicalName,
    isToken,
    parseCSeq,
    parseMaxForwards,
)

__all__ = ["parseMessage", "StreamFramer", "MAX_MESSAGE_SIZE", "MAX_LINE_LENGTH", "MAX_HEADERS"]

#: Largest message accepted, octets.
MAX_MESSAGE_SIZE = 65536
#: Longest header line (after unfolding), octets.
MAX_LINE_LENGTH = 8192
#: Most header lines in one message.
MAX_HEADERS = 256

#: Methods whose CSeq method must match the request line (RFC 3261 §8.1.1.5). For other
#: (unknown) methods a mismatch is left to the user-agent core, which answers 501
#: (RFC 4475 §3.1.2.18 prefers that).
KNOWN_METHODS = frozenset([
    "INVITE", "ACK", "BYE", "CANCEL", "OPTIONS", "REGISTER", "PRACK", "SUBSCRIBE", "NOTIFY",
    "PUBLISH", "INFO", "REFER", "MESSAGE", "UPDATE",
])

_VERSION_RE = re.compile(r"SIP/[0-9]+\.[0-9]+", re.I)


def _bad(what, status=400):
    return SIPParseError("Bad Request (%s)" % (what,), status)


def _unfold(lines):
    """Join continuation lines (RFC 3261 §7.3.1) with one space."""
    out = [lines[0]]
    for line in lines[1:]:
        if line[:1] in (" ", "\t"):
            # (after the start line, this spoils the start line: a 400 that still
            # recovers the headers)
            out[-1] = out[-1] + " " + line.lstrip(" \t")
        else:
            out.append(line)
    return out


def _splitHead(data):
    """
    Find the header block.

    @return: C{(lines, bodyStart)}: the header lines as C{str} (unfolded,
        start line first) and the offset of the body in C{data}.
    """
    end = data.find(b"\r\n\r\n")
    if end >= 0:
        text = data[:end].decode("utf-8", "surrogateescape")
        lines = text.split("\r\n")
        count = len(lines) - 1
        if text.count("\n") != count or text.count("\r") != count:
            raise _bad("Bare CR or LF in header")
        bodyStart = end + 4
    else:
        # Tolerate bare-LF line ends, and a header without the empty line
        # (only when there is no body).
        end = data.find(b"\n\n")
        if end >= 0:
            bodyStart = end + 2
            head = data[:end]
        else:
            head = data.rstrip(b"\r\n")
            bodyStart = len(data)
        text = head.decode("utf-8", "surrogateescape")
        lines = [line[:-1] if line[-1:] == "\r" else line for line in text.split("\n")]
        if "\r" in "".join(lines):
            raise _bad("Bare CR in header")
    if "\n " in text or "\n\t" in text:
        lines = _unfold(lines)
    return lines, bodyStart


def _splitHeaderLines(lines, entries, tracked=None):
    """
    Turn header lines into C{(key, name, value, line)} entries, and append
    the values of the headers named in C{tracked} (a C{dict} of key to
    C{list}) to its lists.

    @return: the first fault (L{SIPParseError}) or C{None}; lines after a
        bad one are still recovered.
    """
    fault = None
    append = entries.append
    exact = _EXACT
    if tracked is None:
        tracked = {}
    track = tracked.get
    for line in lines:
        name, sep, value = line.partition(":")
        try:
            key, canon = exact[name]
        except KeyError:
            if not sep or not isToken(name.rstrip(" \t")):
                if fault is None:
                    if not line:
                        fault = _bad("Empty header line")
                    elif not sep or not name.strip(" \t"):
                        fault = _bad("Malformed header line")
                    else:
                        fault = _bad("Bad header name")
                continue
            key, canon = canonicalName(name)
        value = value.strip(" \t")
        append((key, canon, value, line))
        values = track(key)
        if values is not None:
            values.append(value)
    return fault


# A cheap check of the common shape of a Request-URI; it accepts only text that
# linkrtc.sip.uri.parseURI accepts too (which parses it when first used), anything
# else is parsed at once. Ports: 0-65535.
_HOST = r"[A-Za-z0-9](?:[A-Za-z0-9\-.]*[A-Za-z0-9])?"
_PORT = r"(?:[0-9]{1,4}|[0-5][0-9]{4}|6[0-4][0-9]{3}|65[0-4][0-9]{2}|655[0-2][0-9]|6553[0-5])"
_URIPARAMS = r"(?:;[A-Za-z0-9\-_.!~*'()\[\]/:&+$]+(?:=[A-Za-z0-9\-_.!~*'()\[\]/:&+$]+)?)*"
_SIPURI = (r"sips?:(?:[A-Za-z0-9\-_.!~*'()&=+$,;?/]+(?::[A-Za-z0-9\-_.!~*'()&=+$,]*)?@)?"
           + _HOST + r"(?::" + _PORT + r")?" + _URIPARAMS)
_URI_FAST = re.compile(_SIPURI).fullmatch
_parseVia = _uri.parseVia
_SIPURI_TYPE = _uri.SIPURI

#: Most values L{_nameAddrs} remembers.
MAX_REMEMBERED_ADDRESSES = 4096

# From, To and Contact text -> the tuple of NameAddr it parses to (kept
# pristine: only copies leave), for values whose URIs are all SIP URIs.
_ADDRESSES = {}


def _remember(text, parsed):
    """Keep C{parsed} (a C{list} of NameAddr) for C{text} if all its URIs are SIP URIs."""
    if all(type(addr.uri) is _SIPURI_TYPE for addr in parsed):
        if len(_ADDRESSES) >= MAX_REMEMBERED_ADDRESSES:
            _ADDRESSES.clear()
        _ADDRESSES[text] = tuple(parsed)


def _nameAddrs(text):
    """
    Parse a Contact value (L{linkrtc.sip.uri.parseNameAddrList}; C{*} gives
    C{[WILDCARD]}).

    Fast path: the messages of a call repeat their From, To and Contact
    values (the ACK and the BYE carry the INVITE's From and Contact, every
    call from a peer the same Contact): the parse of a text is remembered
    (at most L{MAX_REMEMBERED_ADDRESSES} texts; only values whose URIs are
    all SIP URIs, not a wildcard) and each message gets its own copies,
    which it may change. A value that does not parse raises as always and
    is not remembered.

    @return: a C{list} of L{linkrtc.sip.uri.NameAddr}.
    @raise SIPParseError: bad syntax.
    """
    parsed = _ADDRESSES.get(text)
    if parsed is None:
        result = _uri.parseNameAddrList(text)
        _remember(text, result)
        parsed = _ADDRESSES.get(text)
        if parsed is None:
            return result  # (not remembered: the message owns it)
    return [addr.copy() for addr in parsed]


def _nameAddr(text):
    """
    Parse a From or To value (L{linkrtc.sip.uri.parseNameAddr}), with the
    fast path of L{_nameAddrs}.

    @raise SIPParseError: bad syntax.
    """
    parsed = _ADDRESSES.get(text)
    if parsed is not None and len(parsed) == 1:
        return parsed[0].copy()
    addr = _uri.parseNameAddr(text)
    if parsed is None:
        _remember(text, [addr])
        if text in _ADDRESSES:
            return addr.copy()
    return addr


def _contentLength(values):
    """
    Check the Content-Length values of a message.

    @return: C{int} or C{None} when absent.
    @raise SIPParseError: negative, not a number, or conflicting.
    """
    if not values:
        return None
    result = None
    for value in values:
        if value[:1] == "-":
            raise _bad("Negative Content-Length")
        if not value.isdigit() or not value.isascii():
            raise _bad("Bad Content-Length")
        digits = value.lstrip("0") or "0"
        # (a value of thousands of digits is no number int() takes, nor any
        # message's length: it stands as larger than every message)
        length = int(digits) if len(digits) <= 18 else 10**18
        if result is not None and length != result:
            raise _bad("Conflicting Content-Length values")
        result = length
    return result


def parseMessage(data):
    """
    Parse one whole SIP message (UDP datagram semantics, RFC 3261 §18.3):
    the body is framed by Content-Length (the rest of the datagram without
    one; octets after it are ignored). CRLFs before the start line are
    skipped.

    Checks: start line; header syntax; exactly one From, To, Call-ID, CSeq
    and at least one Via; CSeq number 0..2**32-1 and, for known methods,
    CSeq method equal to the request method; Max-Forwards 0..255;
    Content-Length; syntax of Via, From, To, Contact and the Request-URI;
    limits (L{MAX_MESSAGE_SIZE}, L{MAX_LINE_LENGTH}, L{MAX_HEADERS}).

    @param data: C{bytes}.
    @rtype: L{Request} or L{Response}
    @raise SIPParseError: with C{status} 400 (505 for a request of another
        SIP version, 513 for an oversized message), a C{reason} naming the
        fault, the header lines recovered and C{isRequest}.
    """
    if len(data) > MAX_MESSAGE_SIZE:
        raise SIPParseError("Message Too Large", 513)
    if data[:1] == b"\r" or data[:1] == b"\n":
        data = data.lstrip(b"\r\n")
    if not data:
        raise _bad("Empty message")
    try:
        lines, bodyStart = _splitHead(data)
    except SIPParseError as e:
        e.isRequest = data[:4].upper() != b"SIP/"
        raise
    start = lines[0]
    entries = []
    if len(lines) > MAX_HEADERS + 1:
        fault = _bad("Too many header lines")
    elif bodyStart > MAX_LINE_LENGTH and max(map(len, lines)) > MAX_LINE_LENGTH:
        fault = _bad("Header line too long")
    else:
        fault = None
    request = start[:4].upper() != "SIP/"
    startFault = None
    if request:
        parts = start.split()
        if len(parts) != 3 or start[:1] in (" ", "\t"):
            startFault = _bad("Malformed Request-Line")
        else:
            method, uriText, version = parts
            if version.upper() != "SIP/2.0":
                if _VERSION_RE.fullmatch(version):
                    startFault = SIPParseError("Version Not Supported", 505)
                else:
                    startFault = _bad("Malformed Request-Line")
            elif not isToken(method):
                startFault = _bad("Bad method")
    else:
        parts = start.split(" ", 2)
        if len(parts) < 2:
            startFault = _bad("Malformed Status-Line")
        else:
            version, code = parts[0], parts[1]
            reason = parts[2] if len(parts) == 3 else ""
            if version.upper() != "SIP/2.0":
                startFault = SIPParseError("Version Not Supported", 505)
            elif len(code) != 3 or not code.isdigit() or not code.isascii() or code[0] == "0":
                startFault = _bad("Bad status code")
            else:
                status = int(code)
                if status < 100 or status > 699:
                    startFault = _bad("Bad status code")
    vias = []
    froms = []
    tos = []
    callIds = []
    cseqs = []
    lengths = []
    maxForwards = []
    contacts = []
    headerFault = _splitHeaderLines(lines[1:], entries, {
        "via": vias, "from": froms, "to": tos, "call-id": callIds, "cseq": cseqs,
        "content-length": lengths, "max-forwards": maxForwards, "contact": contacts,
    })
    fault = startFault or fault or headerFault
    if fault is not None:
        fault.headers = [(n, v) for _, n, v, _ in entries]
        fault.isRequest = request
        raise fault
    cache = {}
    header = None  # the header being parsed, for the reason phrase of its fault
    try:
        for values, name in ((froms, "From"), (tos, "To"), (callIds, "Call-ID"),
                             (cseqs, "CSeq")):
            if len(values) != 1:
                raise _bad(("Missing " if not values else "More than one ") + name)
        if not vias:
            raise _bad("Missing Via")
        callId = callIds[0]
        if not callId or " " in callId or "\t" in callId:
            raise _bad("Bad Call-ID")
        cache["callId"] = callId
        cseq = cache["cseq"] = parseCSeq(cseqs[0])
        if request:
            if method != cseq.method and method in KNOWN_METHODS:
                raise _bad("CSeq method does not match Request-Line")
            msg = Request.__new__(Request)
            msg.method = method
            if _URI_FAST(uriText) is None:
                uri = _uri.parseURI(uriText)
                if type(uri) is _uri.SIPURI and uri.headers:
                    raise _bad("Headers in Request-URI")
                msg._uri = uri
                msg._uriText = None
            else:
                msg._uri = None
                msg._uriText = uriText
        else:
            msg = Response.__new__(Response)
            msg.status = status
            msg.reason = reason
        if maxForwards:
            if len(maxForwards) > 1:
                raise _bad("More than one Max-Forwards")
            cache["maxForwards"] = parseMaxForwards(maxForwards[0])
        else:
            cache["maxForwards"] = None
        length = _contentLength(lengths)
        if length is None:
            body = data[bodyStart:]
        else:
            if bodyStart + length > len(data):
                raise _bad("Content-Length larger than message")
            body = data[bodyStart : bodyStart + length]
        # Parsing these is checking them; keep the results for the accessors.
        header = "Via"
        if len(vias) == 1:
            parsed = _parseVia(vias[0])
        else:
            parsed = []
            for v in vias:
                parsed.extend(_parseVia(v))
        cache["vias"] = parsed
        cache["topVia"] = parsed[0]
        header = "From"
        cache["from"] = _nameAddr(froms[0])
        header = "To"
        cache["to"] = _nameAddr(tos[0])
        header = "Contact"
        if len(contacts) == 1:
            cache["contacts"] = _nameAddrs(contacts[0])
        else:
            parsed = []
            for v in contacts:
                parsed.extend(_nameAddrs(v))
            cache["contacts"] = parsed
    except SIPParseError as e:
        if header is not None and header not in e.reason and e.reason.endswith(")"):
            # name the header in the reason phrase: "Bad Request (Bad port in Via)"
            e.reason = "%s in %s)" % (e.reason[:-1], header)
            e.args = (e.reason,) + e.args[1:]
        e.headers = [(n, v) for _, n, v, _ in entries]
        e.isRequest = request
        raise
    msg._headers = Headers._fromParsed(entries)
    msg.body = body
    msg._cacheGen = 0
    msg._cache = cache
    return msg


class StreamFramer:
    """
    Cut a byte stream (TCP, TLS) into SIP messages by Content-Length (RFC
    3261 §18.3). CRLFs between messages (keep-alives, RFC 5626 §3.5.1) are
    skipped. Limits are checked as data arrives, so an endless header or a
    huge Content-Length is refused before it is buffered.

    @ivar maxMessageSize: largest message (header and body), octets.
    @ivar maxLineLength: longest header line, octets.
    @ivar maxHeaders: most header lines.
    """

    def __init__(self, maxMessageSize=MAX_MESSAGE_SIZE, maxLineLength=MAX_LINE_LENGTH,
                 maxHeaders=MAX_HEADERS):
        self.maxMessageSize = maxMessageSize
        self.maxLineLength = maxLineLength
        self.maxHeaders = maxHeaders
        self._buffer = bytearray()
        self._scanned = 0  # octets of the header already searched for its end
        self._lineStart = 0  # offset of the current (unfinished) header line
        self._lines = 0
        self._bodyEnd = None  # offset where the current message ends, once known
        self._broken = None

    def feed(self, data):
        """
        Add received octets.

        @param data: C{bytes}.
        @return: C{list} of C{bytes}, each one whole message, in order.
        @raise SIPFramingError: the stream cannot be framed any more (bad,
            missing, negative or conflicting Content-Length; a message, a
            line or a header count over the limits). The connection must
            be closed; later calls raise the same error. Its C{messages}
            attribute holds the whole messages (C{list} of C{bytes}) framed
            before the fault in this call, which may still be handled.
        """
        if self._broken is not None:
            raise self._broken
        buf = self._buffer
        buf += data
        out = []
        try:
            while True:
                if self._bodyEnd is None:
                    if not self._findHeader():
                        break
                end = self._bodyEnd
                if len(buf) < end:
                    break
                out.append(bytes(buf[:end]))
                del buf[:end]
                self._bodyEnd = None
                self._scanned = self._lineStart = self._lines = 0
        except SIPFramingError as e:
            e.messages = out
            self._broken = e
            del buf[:]
            raise
        return out

    def _fail(self, reason, head=None):
        error = SIPFramingError("Bad Request (%s)" % (reason,), 400)
        if head is not None:
            try:
                lines = _splitHead(bytes(head) + b"\r\n\r\n")[0]
            except SIPParseError:
                lines = []
            if lines:
                entries = []
                _splitHeaderLines(lines[1:], entries)
                error.headers = [(n, v) for _, n, v, _ in entries]
                error.isRequest = lines[0][:4].upper() != "SIP/"
        return error

    def _findHeader(self):
        """
        Look for the end of the header in the buffer, checking limits.

        @return: C{True} when C{_bodyEnd} is known.
        """
        buf = self._buffer
        if self._scanned == 0:
            # Skip keep-alive CRLFs before a start line.
            skip = 0
            n = len(buf)
            while skip < n and buf[skip] in (13, 10):
                skip += 1
            if skip:
                del buf[:skip]
            if not buf:
                return False
        n = len(buf)
        scanFrom = max(0, self._scanned - 3)
        end = buf.find(b"\r\n\r\n", scanFrom)
        limit = n if end < 0 else end + 2
        # Count lines and check their length from where we stopped.
        lineStart = self._lineStart
        pos = buf.find(b"\n", max(lineStart, self._scanned), limit)
        while pos >= 0:
            if pos - lineStart > self.maxLineLength:
                raise self._fail("Header line too long")
            self._lines += 1
            if self._lines > self.maxHeaders + 1:
                raise self._fail("Too many header lines")
            lineStart = pos + 1
            pos = buf.find(b"\n", lineStart, limit)
        self._lineStart = lineStart
        if end < 0:
            self._scanned = n
            if n - lineStart > self.maxLineLength:
                raise self._fail("Header line too long")
            if n > self.maxMessageSize:
                raise self._fail("Message too large")
            return False
        headEnd = end + 4
        head = bytes(buf[:end])
        length = self._streamContentLength(head)
        if headEnd + length > self.maxMessageSize:
            raise self._fail("Message too large", head)
        self._bodyEnd = headEnd + length
        return True

    def _streamContentLength(self, head):
        values = []
        for line in head.split(b"\r\n")[1:]:
            if line[:1] in (b" ", b"\t"):
                if values and values[-1][1]:
                    values[-1] = (values[-1][0] + line.strip(), True)
                continue
            i = line.find(b":")
            if i <= 0:
                continue
            name = line[:i].rstrip(b" \t").lower()
            if name == b"content-length" or name == b"l":
                values.append((line[i + 1 :].strip(b" \t"), True))
            elif values:
                values[-1] = (values[-1][0], False)
        if not values:
            raise self._fail("Missing Content-Length", head)
        try:
            return _contentLength([v.decode("ascii", "replace") for v, _ in values])
        except SIPParseError as e:
            raise self._fail(e.reason[len("Bad Request (") : -1], head) from None
