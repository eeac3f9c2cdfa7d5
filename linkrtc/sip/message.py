# -*- test-case-name: linkrtc.sip.test.test_message -*-
"""
SIP requests, responses and their headers (RFC 3261 §7, §8.2.6, §20).
The header fields (L{Headers}) live in L{linkrtc.sip.headers}.

Headers are kept as text, exactly as received (folded lines are joined
with one space). The parsed views (L{Message.vias}, L{Message.fromAddr},
...) are computed on first access (the parser fills most of them while it
checks the message) and cached until the header they come from changes;
they are views: to change a message, set the header (for example
C{msg.headers.set("Via", ...)}, or L{Message.setVias}).
"""

from collections import namedtuple

from linkrtc.error import SIPParseError
from linkrtc.sip.headers import (  # noqa: F401 (re-exported)
    _EXACT,
    _VIEWED_KEYS,
    COMPACT,
    LIST_HEADERS,
    Headers,
    _entry,
    canonicalName,
)
from linkrtc.sip.uri import (
    SIPURI,
    NameAddr,
    Via,
    parseNameAddr,
    parseNameAddrList,
    parseURI,
    parseVia,
)

__all__ = [
    "CSeq",
    "Headers",
    "Message",
    "Request",
    "Response",
    "REASONS",
    "canonicalName",
    "isRequest",
]

CSeq = namedtuple("CSeq", ["number", "method"])
CSeq.__doc__ = "A CSeq value (RFC 3261 §20.16): C{number} (C{int}), C{method} (C{str})."

#: Largest CSeq number (RFC 3261 §8.1.1.5: a 32-bit unsigned integer).
MAX_CSEQ = 2**32 - 1

REASONS = {
    100: "Trying", 180: "Ringing", 181: "Call Is Being Forwarded", 182: "Queued",
    183: "Session Progress", 199: "Early Dialog Terminated", 200: "OK", 202: "Accepted",
    204: "No Notification", 300: "Multiple Choices", 301: "Moved Permanently",
    302: "Moved Temporarily", 305: "Use Proxy", 380: "Alternative Service",
    400: "Bad Request", 401: "Unauthorized", 402: "Payment Required", 403: "Forbidden",
    404: "Not Found", 405: "Method Not Allowed", 406: "Not Acceptable",
    407: "Proxy Authentication Required", 408: "Request Timeout", 410: "Gone",
    412: "Conditional Request Failed", 413: "Request Entity Too Large",
    414: "Request-URI Too Long", 415: "Unsupported Media Type",
    416: "Unsupported URI Scheme", 417: "Unknown Resource-Priority", 420: "Bad Extension",
    421: "Extension Required", 422: "Session Interval Too Small", 423: "Interval Too Brief",
    428: "Use Identity Header", 429: "Provide Referrer Identity", 433: "Anonymity Disallowed",
    436: "Bad Identity-Info", 437: "Unsupported Certificate", 438: "Invalid Identity Header",
    439: "First Hop Lacks Outbound Support", 440: "Max-Breadth Exceeded",
    469: "Bad Info Package", 470: "Consent Needed",
    480: "Temporarily Unavailable", 481: "Call/Transaction Does Not Exist",
    482: "Loop Detected", 483: "Too Many Hops", 484: "Address Incomplete", 485: "Ambiguous",
    486: "Busy Here", 487: "Request Terminated", 488: "Not Acceptable Here",
    489: "Bad Event", 491: "Request Pending", 493: "Undecipherable",
    494: "Security Agreement Required", 500: "Server Internal Error", 501: "Not Implemented",
    502: "Bad Gateway", 503: "Service Unavailable", 504: "Server Time-out",
    505: "Version Not Supported", 513: "Message Too Large", 580: "Precondition Failure",
    600: "Busy Everywhere", 603: "Decline", 604: "Does Not Exist Anywhere",
    606: "Not Acceptable", 607: "Unwanted",
}


def defaultReason(status):
    """The standard reason phrase for C{status} (RFC 3261 §21)."""
    try:
        return REASONS[status]
    except KeyError:
        return REASONS.get(status // 100 * 100, "Unknown")


def _bad(what):
    return SIPParseError("Bad Request (%s)" % (what,), 400)


_TOKEN_CHARS = frozenset(
    "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-.!%*_+`'~"
)


def isToken(text):
    """C{True} if C{text} is a non-empty RFC 3261 token."""
    return bool(text) and _TOKEN_CHARS.issuperset(text)


def parseCSeq(value):
    """
    Parse a CSeq value (RFC 3261 §20.16).

    @rtype: L{CSeq}
    @raise SIPParseError: not C{number method}, or number above 2**32-1.
    """
    parts = value.split()
    if len(parts) != 2:
        raise _bad("Bad CSeq")
    number, method = parts
    if not number.isdigit() or not number.isascii():
        raise _bad("Bad CSeq number")
    if len(number) > 10 or int(number) > MAX_CSEQ:
        raise _bad("CSeq number too large")
    if not isToken(method):
        raise _bad("Bad CSeq method")
    return CSeq(int(number), method)


def parseMaxForwards(value):
    """
    Parse Max-Forwards (RFC 3261 §20.22): 0-255.

    @raise SIPParseError: not a number or above 255.
    """
    value = value.strip()
    if not value.isdigit() or not value.isascii():
        raise _bad("Bad Max-Forwards")
    value = value.lstrip("0") or "0"
    if len(value) > 3 or int(value) > 255:
        raise _bad("Max-Forwards too large")
    number = int(value)
    if number > 255:
        raise _bad("Max-Forwards too large")
    return number


class Message:
    """
    Common part of L{Request} and L{Response}.

    @ivar headers: L{Headers}.
    @ivar body: C{bytes}.
    @ivar version: C{'SIP/2.0'}.
    """

    version = "SIP/2.0"

    def __init__(self, headers=None, body=b""):
        if headers is None:
            headers = Headers()
        elif not isinstance(headers, Headers):
            headers = Headers(headers)
        self._headers = headers
        if isinstance(body, str):
            body = body.encode("utf-8")
        self.body = body
        self._cache = {}
        self._cacheGen = headers._gen

    @property
    def headers(self):
        return self._headers

    @headers.setter
    def headers(self, value):
        if not isinstance(value, Headers):
            value = Headers(value)
        self._headers = value
        self._cache = {}
        self._cacheGen = value._gen

    def _cached(self, key):
        # (the hot accessors inline its fast path: no header changed since the
        # views were checked, a dict lookup)
        if self._headers._gen != self._cacheGen:
            self._revalidate()
        return self._cache.get(key, _MISSING)

    def _revalidate(self):
        """The headers changed: drop the parsed views of the header fields that changed."""
        headers = self._headers
        since = self._cacheGen
        keyGens = headers._keyGens
        cache = self._cache
        for name in list(cache):
            key = _CACHE_KEYS.get(name)
            if key is None or keyGens.get(key, 0) > since:
                del cache[name]
        self._cacheGen = headers._gen

    def _single(self, key, name):
        values = [v for k, _, v, _ in self._headers._items if k == key]
        if not values:
            raise _bad("Missing " + name)
        if len(values) > 1:
            raise _bad("More than one " + name)
        return values[0]

    @property
    def vias(self):
        """
        Every Via value, top first.

        @rtype: C{list} of L{Via}
        @raise SIPParseError: a malformed Via.
        """
        result = (self._cache.get("vias", _MISSING) if self._headers._gen == self._cacheGen
                  else self._cached("vias"))
        if result is _MISSING:
            result = []
            for k, _, v, _ in self._headers._items:
                if k == "via":
                    result.extend(parseVia(v))
            self._cache["vias"] = result
        return result

    @property
    def topVia(self):
        """The first Via (L{Via}), or C{None} if there is none."""
        result = (self._cache.get("topVia", _MISSING) if self._headers._gen == self._cacheGen
                  else self._cached("topVia"))
        if result is _MISSING:
            result = None
            for k, _, v, _ in self._headers._items:
                if k == "via":
                    result = parseVia(v)[0]
                    break
            self._cache["topVia"] = result
        return result

    def setVias(self, vias, reparsed=False):
        """
        Replace every Via line by one line per L{Via} of C{vias}, in order.

        @param reparsed: C{True} if parsing the new lines would give C{vias}
            again (they were parsed from this message and only their
            parameters were set to tokens): they then stay the parsed view
            (L{vias}, L{topVia}) instead of being parsed again on next use.
        """
        headers = self._headers
        current = headers._gen == self._cacheGen
        headers.set("Via", [str(v) for v in vias])
        if reparsed and vias:
            if current:
                # only Via changed since the views were checked, and its
                # views are replaced here: the others stay valid
                self._cacheGen = headers._gen
            else:
                self._revalidate()
            vias = list(vias)
            self._cache["vias"] = vias
            self._cache["topVia"] = vias[0]

    def setTopVia(self, via):
        """
        Write again the line of the top Via after C{via}, this message's
        parsed top Via (L{topVia}, C{vias[0]}), was changed in place (the
        C{received}/C{rport} of RFC 3261 §18.2.1 and RFC 3581 §4).

        Fast path: only that line is formatted again when it holds that one
        Via alone; the other Via lines stay as received (L{setVias} formats
        every one). A first line holding several Vias falls back to
        L{setVias}. C{via} stays the parsed view (L{topVia}).
        """
        headers = self._headers
        items = headers._items
        for i, item in enumerate(items):
            if item[0] == "via":
                if "," in item[2]:
                    vias = list(self.vias)
                    vias[0] = via
                    self.setVias(vias, reparsed=True)
                    return
                current = headers._gen == self._cacheGen
                items[i] = _entry("via", item[1], str(via))
                headers._changed("via")
                if current:
                    self._cacheGen = headers._gen
                else:
                    self._revalidate()
                cache = self._cache
                cache["topVia"] = via
                vias = cache.get("vias")
                if vias is not None and (not vias or vias[0] is not via):
                    del cache["vias"]
                return
        raise ValueError("no Via to rewrite")

    @property
    def callId(self):
        """
        The Call-ID (C{str}).

        @raise SIPParseError: missing, repeated or empty.
        """
        result = (self._cache.get("callId", _MISSING) if self._headers._gen == self._cacheGen
                  else self._cached("callId"))
        if result is _MISSING:
            result = self._single("call-id", "Call-ID").strip()
            if not result or " " in result or "\t" in result:
                raise _bad("Bad Call-ID")
            self._cache["callId"] = result
        return result

    @property
    def cseq(self):
        """
        The CSeq (L{CSeq}).

        @raise SIPParseError: missing, repeated or malformed.
        """
        result = (self._cache.get("cseq", _MISSING) if self._headers._gen == self._cacheGen
                  else self._cached("cseq"))
        if result is _MISSING:
            result = parseCSeq(self._single("cseq", "CSeq"))
            self._cache["cseq"] = result
        return result

    @property
    def fromAddr(self):
        """
        The From value (L{NameAddr}).

        @raise SIPParseError: missing, repeated or malformed.
        """
        result = (self._cache.get("from", _MISSING) if self._headers._gen == self._cacheGen
                  else self._cached("from"))
        if result is _MISSING:
            result = parseNameAddr(self._single("from", "From"))
            self._cache["from"] = result
        return result

    @property
    def toAddr(self):
        """
        The To value (L{NameAddr}).

        @raise SIPParseError: missing, repeated or malformed.
        """
        result = (self._cache.get("to", _MISSING) if self._headers._gen == self._cacheGen
                  else self._cached("to"))
        if result is _MISSING:
            result = parseNameAddr(self._single("to", "To"))
            self._cache["to"] = result
        return result

    @property
    def contacts(self):
        """
        Every Contact value (C{list} of L{NameAddr}, possibly empty;
        C{[WILDCARD]} for C{Contact: *}).

        @raise SIPParseError: malformed.
        """
        result = (self._cache.get("contacts", _MISSING) if self._headers._gen == self._cacheGen
                  else self._cached("contacts"))
        if result is _MISSING:
            result = []
            for k, _, v, _ in self._headers._items:
                if k == "contact":
                    result.extend(parseNameAddrList(v))
            self._cache["contacts"] = result
        return result

    def _nameAddrs(self, key):
        result = self._cached(key)
        if result is _MISSING:
            result = []
            for k, _, v, _ in self._headers._items:
                if k == key:
                    result.extend(parseNameAddrList(v))
            self._cache[key] = result
        return result

    @property
    def routes(self):
        """Every Route value (C{list} of L{NameAddr})."""
        return self._nameAddrs("route")

    @property
    def recordRoutes(self):
        """Every Record-Route value (C{list} of L{NameAddr})."""
        return self._nameAddrs("record-route")

    @property
    def maxForwards(self):
        """
        Max-Forwards (C{int} 0-255) or C{None} if absent.

        @raise SIPParseError: malformed, out of range or repeated.
        """
        result = self._cached("maxForwards")
        if result is _MISSING:
            values = [v for k, _, v, _ in self._headers._items if k == "max-forwards"]
            if not values:
                result = None
            elif len(values) > 1:
                raise _bad("More than one Max-Forwards")
            else:
                result = parseMaxForwards(values[0])
            self._cache["maxForwards"] = result
        return result

    @property
    def contentType(self):
        """The media type of the body, lower-case, without parameters, or C{None}."""
        value = self._headers.get("Content-Type")
        if value is None:
            return None
        return value.split(";", 1)[0].strip().lower() or None

    def _startLine(self):
        raise NotImplementedError()

    def toBytes(self):
        """
        Serialise (RFC 3261 §7): the start line, every header line as
        stored (names canonical), and a Content-Length equal to the body's
        length (replacing any, at its place, else last).

        @rtype: C{bytes}
        """
        body = self.body
        lines = [e[3] if e[0] != "content-length" else None for e in self._headers._items]
        clLine = "Content-Length: %d" % (len(body),)
        if None in lines:
            lines[lines.index(None)] = clLine
            if None in lines:
                lines = [line for line in lines if line is not None]
        else:
            lines.append(clLine)
        return ("%s\r\n%s\r\n\r\n" % (self._startLine(), "\r\n".join(lines))).encode(
            "utf-8", "surrogateescape") + body

    __bytes__ = toBytes

    def __eq__(self, other):
        if type(self) is not type(other):
            return NotImplemented
        return (self._startKey() == other._startKey() and self.body == other.body
                and self._semanticHeaders() == other._semanticHeaders())

    def _semanticHeaders(self):
        return [(k, v) for k, _, v, _ in self._headers._items if k != "content-length"]

    __hash__ = None


_MISSING = object()

#: The header (key) each parsed view of L{Message._cache} is made from.
_CACHE_KEYS = {
    "vias": "via", "topVia": "via", "callId": "call-id", "cseq": "cseq", "from": "from",
    "to": "to", "contacts": "contact", "route": "route", "record-route": "record-route",
    "maxForwards": "max-forwards",
}

# (Headers counts the changes of the headers in linkrtc.sip.headers._VIEWED_KEYS)
assert set(_CACHE_KEYS.values()) == _VIEWED_KEYS


class Request(Message):
    """
    A SIP request (RFC 3261 §7.1).

    @ivar method: C{str}, case-sensitive (RFC 3261 §7.1).
    @ivar uri: the Request-URI (L{SIPURI}, L{TelURI} or L{AbsoluteURI}); a
        C{str} given to the constructor is parsed.
    """

    def __init__(self, method, uri, headers=None, body=b""):
        Message.__init__(self, headers, body)
        self.method = method
        self.uri = uri

    @property
    def uri(self):
        uri = self._uri
        if uri is None:
            uri = self._uri = parseURI(self._uriText)
        return uri

    @property
    def uriScheme(self):
        """
        The lower-case scheme of the Request-URI (C{str}: C{"sip"},
        C{"sips"}, C{"tel"}...).

        Fast path: a Request-URI the parser only checked (its common shape)
        is not parsed for it (an in-dialog request's URI is seldom read).
        """
        uri = self._uri
        if uri is None:
            text = self._uriText
            return text[: text.index(":")].lower()
        return (getattr(uri, "scheme", "") or "").lower()

    @uri.setter
    def uri(self, value):
        if isinstance(value, str):
            value = parseURI(value)
        self._uri = value
        self._uriText = None

    def _startLine(self):
        uri = self._uri
        return "%s %s SIP/2.0" % (self.method, self._uriText if uri is None else uri)

    def _startKey(self):
        return (self.method, self.uri)

    def __repr__(self):
        return "<Request %s %s>" % (self.method, self.uri)

    def createResponse(self, status, reason=None, toTag=None):
        """
        Make a response to this request (RFC 3261 §8.2.6.2): every Via in
        order, From, To (with C{;tag=toTag} added if C{toTag} is given and
        To has none), Call-ID, CSeq, and Timestamp for a 100.

        @param status: C{int} 100-699.
        @param reason: C{str} or C{None} for the standard phrase.
        @param toTag: C{str} or C{None}.
        @rtype: L{Response}
        """
        entries = []
        for item in self._headers._items:
            k = item[0]
            if k == "via" or k == "from" or k == "call-id" or k == "cseq":
                entries.append(item)
            elif k == "to":
                if toTag is not None and self.toAddr.tag is None:
                    item = _entry(k, item[1], "%s;tag=%s" % (item[2], toTag))
                entries.append(item)
            elif k == "timestamp" and status == 100:
                entries.append(item)
        response = Response(status, reason, Headers._fromParsed(entries))
        # The response has this request's Via, Call-ID and CSeq lines: reuse
        # their parsed views (Vias copied, as they are mutable).
        if self._headers._gen != self._cacheGen:
            self._revalidate()
        cache = self._cache
        if cache:
            copied = response._cache
            for name in ("callId", "cseq"):
                value = cache.get(name, _MISSING)
                if value is not _MISSING:
                    copied[name] = value
            vias = cache.get("vias")
            if vias is not None:
                vias = [via.copy() for via in vias]
                copied["vias"] = vias
                copied["topVia"] = vias[0] if vias else None
            else:
                top = cache.get("topVia", _MISSING)
                if top is not _MISSING:
                    copied["topVia"] = None if top is None else top.copy()
        return response


class Response(Message):
    """
    A SIP response (RFC 3261 §7.2).

    @ivar status: C{int}.
    @ivar reason: C{str}; the standard phrase if C{None} was given.
    """

    def __init__(self, status, reason=None, headers=None, body=b""):
        Message.__init__(self, headers, body)
        self.status = status
        self.reason = defaultReason(status) if reason is None else reason

    def _startLine(self):
        return "SIP/2.0 %d %s" % (self.status, self.reason)

    def _startKey(self):
        return (self.status, self.reason)

    def __repr__(self):
        return "<Response %d %s>" % (self.status, self.reason)


def isRequest(msg):
    """C{True} if C{msg} is a L{Request}."""
    return isinstance(msg, Request)


def isResponse(msg):
    """C{True} if C{msg} is a L{Response}."""
    return isinstance(msg, Response)


# re-exported for convenience
__all__ += ["NameAddr", "SIPURI", "Via", "defaultReason", "isResponse", "isToken",
            "parseCSeq", "parseMaxForwards"]
