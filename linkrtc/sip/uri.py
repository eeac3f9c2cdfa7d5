# -*- test-case-name: linkrtc.sip.test.test_uri -*-
"""
SIP, SIPS, tel and other URIs, name-addr/addr-spec values and Via values
(RFC 3261 §19.1, §20.10, §20.42, §25.1; RFC 3966; RFC 5118 for IPv6).

Every parser here raises L{SIPParseError} (status 400) on bad syntax; the
reason phrase names the fault.

Escaping (RFC 3261 §19.1.2): user, password, URI parameters and URI headers
are stored I{unescaped} (one pass only: C{value%2541} gives C{value%41},
never C{valueA}) and escaped again by C{str()}. Header parameters of
name-addr and Via values are tokens and are kept exactly as written
(quoted values keep their quotes).
"""

import ipaddress
import re
from urllib.parse import unquote

from linkrtc.error import SIPParseError

__all__ = [
    "SIPURI",
    "TelURI",
    "AbsoluteURI",
    "NameAddr",
    "Via",
    "WILDCARD",
    "parseURI",
    "parseNameAddr",
    "parseNameAddrList",
    "parseVia",
    "splitCommas",
]


def _bad(what):
    return SIPParseError("Bad Request (%s)" % (what,), 400)


# --------------------------------------------------------------------------
# Character classes (RFC 3261 §25.1)
# --------------------------------------------------------------------------

_UNRESERVED = "A-Za-z0-9\\-_.!~*'()"
_USER_RE = re.compile("[%s&=+$,;?/%%]+" % _UNRESERVED)
_PASSWORD_RE = re.compile("[%s&=+$,%%]*" % _UNRESERVED)
_PARAM_RE = re.compile("[%s\\[\\]/:&+$%%]+" % _UNRESERVED)
_HNV_RE = re.compile("[%s\\[\\]/?:+$%%]*" % _UNRESERVED)
_BAD_ESCAPE_RE = re.compile("%(?![0-9A-Fa-f]{2})")
_HOSTNAME_RE = re.compile(r"[A-Za-z0-9](?:[A-Za-z0-9\-_.]*[A-Za-z0-9.])?")
_IPV4_RE = re.compile(r"[0-9]{1,3}\.[0-9]{1,3}\.[0-9]{1,3}\.[0-9]{1,3}")
_TOKEN_RE = re.compile(r"[A-Za-z0-9\-.!%*_+`'~]+")
_SCHEME_RE = re.compile(r"[A-Za-z][A-Za-z0-9+\-.]*")
_WS = " \t"

# What may stay unescaped on output, per component.
_USER_OK = frozenset(
    "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_.!~*'()&=+$,;?/"
)
_PASSWORD_OK = frozenset(
    "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_.!~*'()&=+$,"
)
_PARAM_OK = frozenset(
    "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_.!~*'()[]/:&+$"
)
_HNV_OK = frozenset(
    "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_.!~*'()[]/?:+$"
)


def _unescape(text, what):
    """
    Undo %HEX HEX escapes once (RFC 3261 §19.1.2). Escaped octets are read
    as UTF-8; invalid UTF-8 survives as surrogate escapes so that C{str()}
    gives the same octets back.

    @raise SIPParseError: a C{%} not followed by two hex digits.
    """
    if "%" not in text:
        return text
    if _BAD_ESCAPE_RE.search(text):
        raise _bad("Bad escape in " + what)
    return unquote(text, encoding="utf-8", errors="surrogateescape")


def _escape(text, ok):
    """Escape every character of C{text} not in the set C{ok}."""
    for c in text:
        if c not in ok:
            break
    else:
        return text
    out = []
    for c in text:
        if c in ok:
            out.append(c)
        else:
            for b in c.encode("utf-8", "surrogateescape"):
                out.append("%%%02X" % (b,))
    return "".join(out)


def _checkHost(host, what="host"):
    """
    Validate a host: a hostname, an IPv4 address or an IPv6 reference in
    brackets (RFC 3261 §25.1, RFC 5118 §4.10: C{:::} is refused).
    """
    if not host:
        raise _bad("Missing " + what)
    if host[0] == "[":
        if host[-1] != "]":
            raise _bad("Bad IPv6 reference in " + what)
        try:
            ipaddress.IPv6Address(host[1:-1])
        except ValueError:
            raise _bad("Bad IPv6 reference in " + what) from None
        return
    if _HOSTNAME_RE.fullmatch(host) is None:
        raise _bad("Bad " + what)


def _parsePort(text, what="port"):
    if not text.isdigit() or not text.isascii() or len(text) > 5:
        raise _bad("Bad " + what)
    port = int(text)
    if port > 65535:
        raise _bad("Bad " + what)
    return port


def _splitHostPort(text, what="host"):
    """
    Split C{host[:port]}; an IPv6 reference keeps its brackets and a port
    is only read after the closing bracket (RFC 5118 §4.3).
    """
    if text[:1] == "[":
        close = text.find("]")
        if close < 0:
            raise _bad("Unterminated IPv6 reference in " + what)
        host = text[: close + 1]
        rest = text[close + 1 :]
        if not rest:
            return host, None
        if rest[0] != ":":
            raise _bad("Junk after IPv6 reference in " + what)
        return host, _parsePort(rest[1:], what + " port")
    colon = text.find(":")
    if colon < 0:
        return text, None
    return text[:colon], _parsePort(text[colon + 1 :], what + " port")


def _formatHost(host, port):
    if port is None:
        return host
    return "%s:%d" % (host, port)


# --------------------------------------------------------------------------
# URIs
# --------------------------------------------------------------------------


class SIPURI:
    """
    A SIP or SIPS URI (RFC 3261 §19.1).

    @ivar scheme: C{'sip'} or C{'sips'}.
    @ivar user: the user part, unescaped (C{str}) or C{None}.
    @ivar password: unescaped, or C{None}.
    @ivar host: C{str}; an IPv6 address keeps its brackets.
    @ivar port: C{int} or C{None} when absent.
    @ivar params: ordered C{dict} of URI parameters; names lower-case,
        values unescaped, C{None} for a flag such as C{lr}.
    @ivar headers: ordered C{dict} of URI headers, unescaped.
    """

    __slots__ = ("scheme", "user", "password", "host", "port", "params", "headers")

    def __init__(self, scheme="sip", user=None, password=None, host="", port=None,
                 params=None, headers=None):
        self.scheme = scheme
        self.user = user
        self.password = password
        self.host = host
        self.port = port
        self.params = {} if params is None else params
        self.headers = {} if headers is None else headers

    @property
    def transport(self):
        """The C{transport} parameter, or C{None}."""
        return self.params.get("transport")

    def copy(self):
        """A copy whose params and headers can be changed on their own."""
        return SIPURI(self.scheme, self.user, self.password, self.host, self.port,
                      dict(self.params), dict(self.headers))

    def __str__(self):
        parts = [self.scheme, ":"]
        if self.user is not None:
            parts.append(_escape(self.user, _USER_OK))
            if self.password is not None:
                parts.append(":")
                parts.append(_escape(self.password, _PASSWORD_OK))
            parts.append("@")
        parts.append(self.host)
        if self.port is not None:
            parts.append(":%d" % (self.port,))
        for name, value in self.params.items():
            parts.append(";")
            parts.append(_escape(name, _PARAM_OK))
            if value is not None:
                parts.append("=")
                parts.append(_escape(value, _PARAM_OK))
        if self.headers:
            parts.append("?")
            parts.append("&".join(
                _escape(k, _HNV_OK) + "=" + _escape(v, _HNV_OK)
                for k, v in self.headers.items()
            ))
        return "".join(parts)

    def __repr__(self):
        return "<SIPURI %s>" % (self,)

    def _hostKey(self):
        host = self.host.lower()
        if host[:1] == "[":
            try:
                return "[%s]" % (ipaddress.IPv6Address(host[1:-1]).compressed,)
            except ValueError:
                return host
        return host

    def __eq__(self, other):
        """URI comparison of RFC 3261 §19.1.4."""
        if not isinstance(other, SIPURI):
            return NotImplemented
        if (self.scheme.lower() != other.scheme.lower() or self.user != other.user
                or self.password != other.password or self.port != other.port
                or self._hostKey() != other._hostKey()):
            return False
        mine, theirs = self.params, other.params
        for name in ("user", "ttl", "method", "maddr", "transport"):
            if (name in mine) != (name in theirs):
                return False
        for name, value in mine.items():
            if name in theirs:
                a, b = value, theirs[name]
                if (a is None) != (b is None):
                    return False
                if a is not None and a.lower() != b.lower():
                    return False
        if len(self.headers) != len(other.headers):
            return False
        otherHeaders = {k.lower(): v for k, v in other.headers.items()}
        for name, value in self.headers.items():
            if otherHeaders.get(name.lower()) != value:
                return False
        return True

    def __ne__(self, other):
        result = self.__eq__(other)
        if result is NotImplemented:
            return result
        return not result

    def __hash__(self):
        return hash((self.scheme.lower(), self.user, self._hostKey(), self.port))


_newSIPURI = object.__new__


class TelURI:
    """
    A tel URI (RFC 3966).

    @ivar number: the telephone-subscriber part before any C{;}, C{str}.
    @ivar params: ordered C{dict}, names lower-case, C{None} for flags.
    """

    __slots__ = ("number", "params")
    scheme = "tel"

    def __init__(self, number, params=None):
        self.number = number
        self.params = {} if params is None else params

    def __str__(self):
        out = ["tel:", self.number]
        for name, value in self.params.items():
            out.append(";" + name if value is None else ";%s=%s" % (name, value))
        return "".join(out)

    def __repr__(self):
        return "<TelURI %s>" % (self,)

    def _key(self):
        number = "".join(c for c in self.number if c not in "-.()")
        return (number.lower(), {k: (v.lower() if v else v) for k, v in self.params.items()})

    def __eq__(self, other):
        if not isinstance(other, TelURI):
            return NotImplemented
        return self._key() == other._key()

    def __hash__(self):
        return hash(self._key()[0])


class AbsoluteURI:
    """
    Any other absolute URI (RFC 3261 §25.1 absoluteURI), kept as text.

    @ivar scheme: lower-case scheme name, C{str}.
    @ivar rest: everything after the first C{:}, C{str}.
    """

    __slots__ = ("scheme", "rest")

    def __init__(self, scheme, rest):
        self.scheme = scheme
        self.rest = rest

    def __str__(self):
        return "%s:%s" % (self.scheme, self.rest)

    def __repr__(self):
        return "<AbsoluteURI %s>" % (self,)

    def __eq__(self, other):
        if not isinstance(other, AbsoluteURI):
            return NotImplemented
        return self.scheme.lower() == other.scheme.lower() and self.rest == other.rest

    def __hash__(self):
        return hash((self.scheme.lower(), self.rest))


_ABS_BAD = frozenset(' \t\r\n<>"')


def parseURI(text):
    """
    Parse a URI from a Request-URI or a name-addr.

    @param text: C{str}, without enclosing C{<>} or surrounding space.
    @return: L{SIPURI} for C{sip:}/C{sips:}, L{TelURI} for C{tel:},
        L{AbsoluteURI} otherwise.
    @raise SIPParseError: bad syntax (status 400).
    """
    colon = text.find(":")
    if colon <= 0:
        raise _bad("Bad URI")
    scheme = text[:colon].lower()
    rest = text[colon + 1 :]
    if scheme == "sip" or scheme == "sips":
        return _parseSIPURI(scheme, rest)
    if _SCHEME_RE.fullmatch(scheme) is None:
        raise _bad("Bad URI scheme")
    if not rest or not _ABS_BAD.isdisjoint(rest):
        raise _bad("Bad URI")
    if scheme == "tel":
        number, params = _parseSimpleParams(rest)
        if not number:
            raise _bad("Bad tel URI")
        return TelURI(number, params)
    return AbsoluteURI(scheme, rest)


def _parseSimpleParams(text):
    parts = text.split(";")
    params = {}
    for part in parts[1:]:
        name, sep, value = part.partition("=")
        if not name:
            raise _bad("Empty URI parameter")
        params[name.lower()] = value if sep else None
    return parts[0], params


# The common shape of a SIP URI after the scheme: no escapes, no URI headers, no
# IPv6; the host is a hostname or IPv4 address that _checkHost accepts. Groups:
# user, password, host, port (1-5 digits: the caller checks <= 65535), params.
_SIPURI_REST = (
    r"(?:([A-Za-z0-9\-_.!~*'()&=+$,;?/]+)(?::([A-Za-z0-9\-_.!~*'()&=+$,]*))?@)?"
    r"([A-Za-z0-9](?:[A-Za-z0-9\-.]*[A-Za-z0-9])?)(?::([0-9]{1,5}))?"
    r"((?:;[A-Za-z0-9\-_.!~*'()\[\]/:&+$]+(?:=[A-Za-z0-9\-_.!~*'()\[\]/:&+$]+)?)*)"
)
_SIPURI_FAST = re.compile(_SIPURI_REST).fullmatch


def _fastParams(text):
    """
    Parameters the fast patterns already validated: C{";a=1;lr"} (leading
    C{;}) into C{{"a": "1", "lr": None}}, names lower-cased; C{{}} for
    C{None} or empty text.
    """
    params = {}
    if text:
        for item in text[1:].split(";"):
            name, sep, value = item.partition("=")
            params[name.lower()] = value if sep else None
    return params


def _fastSIPURI(scheme, user, password, host, port, paramText):
    """
    Build a L{SIPURI} from the groups of L{_SIPURI_REST}.

    @return: the L{SIPURI}, or C{None} for a port above 65535 (the full
        parser then reports it).
    """
    if port is not None:
        port = int(port)
        if port > 65535:
            return None
    params = _fastParams(paramText)
    uri = _newSIPURI(SIPURI)
    uri.scheme = scheme
    uri.user = user
    uri.password = password
    uri.host = host
    uri.port = port
    uri.params = params
    uri.headers = {}
    return uri


def _parseSIPURI(scheme, rest):
    m = _SIPURI_FAST(rest)
    if m is not None:
        uri = _fastSIPURI(scheme, *m.groups())
        if uri is not None:
            return uri
    user = password = None
    at = rest.find("@")
    if at >= 0:
        userinfo = rest[:at]
        rest = rest[at + 1 :]
        colon = userinfo.find(":")
        if colon >= 0:
            pw = userinfo[colon + 1 :]
            userinfo = userinfo[:colon]
            if _PASSWORD_RE.fullmatch(pw) is None:
                raise _bad("Bad password in URI")
            password = _unescape(pw, "password")
        if _USER_RE.fullmatch(userinfo) is None:
            raise _bad("Bad user part in URI")
        user = _unescape(userinfo, "user part")
    headers = {}
    q = rest.find("?")
    if q >= 0:
        for item in rest[q + 1 :].split("&"):
            name, sep, value = item.partition("=")
            if (not name or not sep or _HNV_RE.fullmatch(name) is None
                    or _HNV_RE.fullmatch(value) is None):
                raise _bad("Bad URI header")
            headers[_unescape(name, "URI header")] = _unescape(value, "URI header")
        rest = rest[:q]
    params = {}
    semi = rest.find(";")
    if semi >= 0:
        for item in rest[semi + 1 :].split(";"):
            name, sep, value = item.partition("=")
            if _PARAM_RE.fullmatch(name) is None or (sep and _PARAM_RE.fullmatch(value) is None):
                raise _bad("Bad URI parameter")
            params[_unescape(name, "URI parameter").lower()] = (
                _unescape(value, "URI parameter") if sep else None
            )
        rest = rest[:semi]
    host, port = _splitHostPort(rest, "URI host")
    _checkHost(host, "URI host")
    return SIPURI(scheme, user, password, host, port, params, headers)


# --------------------------------------------------------------------------
# Header values: commas, parameters, quoted strings
# --------------------------------------------------------------------------


def splitCommas(value):
    """
    Split a header value at top-level commas (not inside a quoted string or
    C{<>}), RFC 3261 §7.3.1. Elements are stripped of LWS; empty elements
    are kept (callers decide whether that is an error).

    @rtype: C{list} of C{str}
    """
    if "," not in value:
        return [value.strip()]
    if '"' not in value and "<" not in value:
        return [v.strip() for v in value.split(",")]
    out = []
    start = 0
    i = 0
    n = len(value)
    inQuote = inAngle = False
    while i < n:
        c = value[i]
        if inQuote:
            if c == "\\":
                i += 1
            elif c == '"':
                inQuote = False
        elif c == '"':
            inQuote = True
        elif inAngle:
            if c == ">":
                inAngle = False
        elif c == "<":
            inAngle = True
        elif c == ",":
            out.append(value[start:i].strip())
            start = i + 1
        i += 1
    out.append(value[start:].strip())
    return out


def _splitSemis(text):
    """Split at C{;} outside quoted strings."""
    if '"' not in text:
        return text.split(";")
    out = []
    start = 0
    i = 0
    n = len(text)
    inQuote = False
    while i < n:
        c = text[i]
        if inQuote:
            if c == "\\":
                i += 1
            elif c == '"':
                inQuote = False
        elif c == '"':
            inQuote = True
        elif c == ";":
            out.append(text[start:i])
            start = i + 1
        i += 1
    if inQuote:
        raise _bad("Unterminated quoted string in parameter")
    out.append(text[start:])
    return out


_GENVALUE_RE = re.compile(r'[A-Za-z0-9\-.!%*_+`\'~:]+|\[[0-9A-Fa-f:.]+\]|"(?:[^"\\]|\\.)*"', re.S)


def _parseHeaderParams(text, what):
    """
    Parse C{*( SEMI generic-param )} (RFC 3261 §25.1), LWS allowed around
    C{;} and C{=}. C{text} starts with the first C{;} (after optional
    LWS) or is empty.

    @return: ordered C{dict}, names lower-case, values as written (C{None}
        for a flag).
    """
    params = {}
    if not text:
        return params
    parts = _splitSemis(text)
    if parts[0].strip(_WS):
        raise _bad("Junk before parameters in " + what)
    for part in parts[1:]:
        name, sep, value = part.partition("=")
        name = name.strip(_WS)
        if not name or _TOKEN_RE.fullmatch(name) is None:
            raise _bad("Bad parameter in " + what)
        if sep:
            value = value.strip(_WS)
            if _GENVALUE_RE.fullmatch(value) is None:
                raise _bad("Bad parameter value in " + what)
            params[name.lower()] = value
        else:
            params[name.lower()] = None
    return params


def _formatParams(params):
    if not params:
        return ""
    return "".join(
        ";" + name if value is None else ";%s=%s" % (name, value)
        for name, value in params.items()
    )


def _quote(text):
    out = ['"']
    for c in text:
        if c == '"' or c == "\\" or c < " " or c == "\x7f":
            out.append("\\")
        out.append(c)
    out.append('"')
    return "".join(out)


# --------------------------------------------------------------------------
# name-addr / addr-spec
# --------------------------------------------------------------------------


class NameAddr:
    """
    A name-addr or addr-spec with header parameters, as in From, To,
    Contact, Route and Record-Route (RFC 3261 §20.10, §20.20, §20.39).

    @ivar uri: L{SIPURI}, L{TelURI} or L{AbsoluteURI}; C{None} only for
        L{WILDCARD} (C{Contact: *}).
    @ivar display: the display name, unquoted and unescaped, or C{None}.
    @ivar params: ordered C{dict} of header parameters (names lower-case,
        values as written, quoted values with their quotes; C{None} for
        flags).
    """

    __slots__ = ("uri", "display", "params")
    isWildcard = False

    def __init__(self, uri, display=None, params=None):
        self.uri = uri
        self.display = display
        self.params = {} if params is None else params

    @property
    def tag(self):
        """The C{tag} parameter (RFC 3261 §19.3), or C{None}."""
        return self.params.get("tag")

    @tag.setter
    def tag(self, value):
        if value is None:
            self.params.pop("tag", None)
        else:
            self.params["tag"] = value

    def copy(self):
        uri = self.uri.copy() if isinstance(self.uri, SIPURI) else self.uri
        return NameAddr(uri, self.display, dict(self.params))

    def __str__(self):
        if self.display:
            head = "%s <%s>" % (_quote(self.display), self.uri)
        else:
            head = "<%s>" % (self.uri,)
        return head + _formatParams(self.params)

    def __repr__(self):
        return "<NameAddr %s>" % (self,)

    def __eq__(self, other):
        if not isinstance(other, NameAddr):
            return NotImplemented
        return (self.uri == other.uri and self.display == other.display
                and self.params == other.params)

    def __hash__(self):
        return hash(self.uri)


class _Wildcard(NameAddr):
    __slots__ = ()
    isWildcard = True

    def __str__(self):
        return "*"

    def __repr__(self):
        return "<NameAddr *>"


#: C{Contact: *} (RFC 3261 §10.2.2).
WILDCARD = _Wildcard(None)

_QUOTED_RE = re.compile(r'"((?:[^"\\]|\\.)*)"', re.S)
_UNQUOTE_RE = re.compile(r"\\(.)", re.S)
_DISPLAY_TOKENS_RE = re.compile(r"[A-Za-z0-9\-.!%*_+`'~]+(?:[ \t]+[A-Za-z0-9\-.!%*_+`'~]+)*")


_NAMEADDR_FAST = re.compile(
    r'(?:"([^"\\\x00-\x1f]*)"[ \t]*|([A-Za-z0-9\-.!%*_+`\'~]+(?:[ \t]+[A-Za-z0-9\-.!%*_+`\'~]+)*)'
    r"[ \t]*)?<(sips?:[^<>\"\s]+)>((?:;[A-Za-z0-9\-.!%*_+`'~]+(?:=[A-Za-z0-9\-.!%*_+`'~]+)?)*)"
).fullmatch


# The commonest shape in one match: an optional display name, a SIP URI of the
# _SIPURI_REST shape in <>, token header parameters. Groups: quoted display,
# token display, scheme, the five of _SIPURI_REST, header parameters.
_NAMEADDR_SIP = re.compile(
    r'(?:"([^"\\\x00-\x1f]*)"[ \t]*|([A-Za-z0-9\-.!%*_+`\'~]+(?:[ \t]+[A-Za-z0-9\-.!%*_+`\'~]+)*)'
    r"[ \t]*)?<(sips?):" + _SIPURI_REST
    + r">((?:;[A-Za-z0-9\-.!%*_+`'~]+(?:=[A-Za-z0-9\-.!%*_+`'~]+)?)*)"
).fullmatch
_newNameAddr = object.__new__


def parseNameAddr(text):
    """
    Parse one name-addr or addr-spec with its header parameters.

    Accepts a display name with no LWS before C{<} (RFC 4475 §3.1.1.6).
    An addr-spec without C{<>} may not contain C{,} or C{?} (RFC 3261
    §20), and its C{;} parameters are header parameters.

    @param text: C{str}.
    @rtype: L{NameAddr}
    @raise SIPParseError: bad syntax.
    """
    m = _NAMEADDR_SIP(text)
    if m is not None:
        quoted, tokens, scheme, user, password, host, port, uriParams, paramText = m.groups()
        uri = _fastSIPURI(scheme, user, password, host, port, uriParams)
        if uri is not None:
            params = _fastParams(paramText)
            addr = _newNameAddr(NameAddr)
            addr.uri = uri
            addr.display = tokens if quoted is None else quoted
            addr.params = params
            return addr
    m = _NAMEADDR_FAST(text)
    if m is not None:
        quoted, tokens, uriText, paramText = m.groups()
        params = _fastParams(paramText)
        return NameAddr(parseURI(uriText), tokens if quoted is None else quoted, params)
    text = text.strip(_WS)
    display = None
    if text[:1] == '"':
        m = _QUOTED_RE.match(text)
        if m is None:
            raise _bad("Unterminated quoted string in display name")
        display = m.group(1)
        if "\\" in display:
            display = _UNQUOTE_RE.sub(r"\1", display)
        rest = text[m.end() :].lstrip(_WS)
        if rest[:1] != "<":
            raise _bad("Missing < after display name")
        return _angle(rest, display)
    lt = text.find("<")
    if lt >= 0:
        semi = text.find(";")
        if semi < 0 or lt < semi:
            if lt:
                display = text[:lt].rstrip(_WS)
                if _DISPLAY_TOKENS_RE.fullmatch(display) is None:
                    raise _bad("Bad display name")
            return _angle(text[lt:], display)
    semi = text.find(";")
    if semi >= 0:
        uriText = text[:semi].rstrip(_WS)
        paramText = text[semi:]
    else:
        uriText = text
        paramText = ""
    if not uriText or "," in uriText or "?" in uriText:
        raise _bad("Bad addr-spec")
    for c in uriText:
        if c in _ABS_BAD:
            raise _bad("Bad addr-spec")
    return NameAddr(parseURI(uriText), None, _parseHeaderParams(paramText, "name-addr"))


def _angle(text, display):
    gt = text.find(">")
    if gt < 0:
        raise _bad("Missing > in name-addr")
    uriText = text[1:gt]
    if not uriText or not _ABS_BAD.isdisjoint(uriText):
        raise _bad("Bad URI in name-addr")
    rest = text[gt + 1 :]
    return NameAddr(parseURI(uriText), display, _parseHeaderParams(rest, "name-addr"))


def parseNameAddrList(text):
    """
    Parse a comma-separated list of name-addrs (Contact, Route,
    Record-Route). C{*} alone gives C{[WILDCARD]}.

    @rtype: C{list} of L{NameAddr}
    @raise SIPParseError: bad syntax or an empty element.
    """
    if text.strip(_WS) == "*":
        return [WILDCARD]
    out = []
    for item in splitCommas(text):
        if not item:
            raise _bad("Empty element in list")
        out.append(parseNameAddr(item))
    return out


# --------------------------------------------------------------------------
# Via
# --------------------------------------------------------------------------


class Via:
    """
    One Via value (RFC 3261 §20.42, §18.2.1).

    @ivar protocol: C{'SIP/2.0'} (LWS removed).
    @ivar transport: upper-case, C{'UDP'}, C{'TCP'}, C{'TLS'}, ...
    @ivar host: sent-by host; IPv6 keeps its brackets.
    @ivar port: sent-by port, C{int} or C{None}.
    @ivar params: ordered C{dict}; names lower-case, values as written
        (C{received} may hold an IPv6 address with or without brackets),
        C{None} for flags such as C{rport}.
    """

    __slots__ = ("transport", "host", "port", "params", "protocol")

    def __init__(self, transport="UDP", host="", port=None, params=None, protocol="SIP/2.0"):
        self.transport = transport
        self.host = host
        self.port = port
        self.params = {} if params is None else params
        self.protocol = protocol

    def _param(name):
        def get(self):
            return self.params.get(name)

        def set(self, value):
            self.params[name] = value

        return property(get, set, doc="The C{%s} parameter (C{str}) or C{None}." % (name,))

    branch = _param("branch")
    received = _param("received")
    maddr = _param("maddr")
    del _param

    @property
    def rport(self):
        """
        RFC 3581 C{rport}: C{None} if absent, C{True} if present without a
        value, else the port (C{int}). Set to C{True}, an C{int} or C{None}.

        @raise SIPParseError: a value that is not a port.
        """
        params = self.params
        if "rport" not in params:
            return None
        value = params["rport"]
        if value is None:
            return True
        return _parsePort(value, "rport in Via")

    @rport.setter
    def rport(self, value):
        if value is None:
            self.params.pop("rport", None)
        elif value is True:
            self.params["rport"] = None
        else:
            self.params["rport"] = str(int(value))

    @property
    def ttl(self):
        """The C{ttl} parameter as C{int} (0-255) or C{None}."""
        value = self.params.get("ttl")
        if value is None:
            return None
        if not value.isdigit() or int(value) > 255:
            raise _bad("Bad ttl in Via")
        return int(value)

    @property
    def sentBy(self):
        """C{(host, port)}; port is C{None} when absent."""
        return (self.host, self.port)

    def copy(self):
        new = _newVia(Via)
        new.transport = self.transport
        new.host = self.host
        new.port = self.port
        new.params = dict(self.params)
        new.protocol = self.protocol
        return new

    def __str__(self):
        return "%s/%s %s%s" % (self.protocol, self.transport,
                               _formatHost(self.host, self.port), _formatParams(self.params))

    def __repr__(self):
        return "<Via %s>" % (self,)

    def __eq__(self, other):
        if not isinstance(other, Via):
            return NotImplemented
        return (self.protocol == other.protocol and self.transport == other.transport
                and self.host.lower() == other.host.lower() and self.port == other.port
                and self.params == other.params)

    def __hash__(self):
        return hash((self.transport, self.host.lower(), self.port))


_VIA_RE = re.compile(
    r"[ \t]*([A-Za-z0-9\-.!%*_+`'~]+)[ \t]*/[ \t]*([A-Za-z0-9\-.!%*_+`'~]+)[ \t]*/[ \t]*"
    r"([A-Za-z0-9\-.!%*_+`'~]+)[ \t]+(\[[0-9A-Fa-f:.]*\]|[A-Za-z0-9\-_.]+)"
    r"(?:[ \t]*:[ \t]*([0-9]+))?[ \t]*"
)
_VIA_SIMPLE = re.compile(
    r"SIP/2\.0/([A-Z]+) ([A-Za-z0-9](?:[A-Za-z0-9\-.]*[A-Za-z0-9])?)(?::([0-9]{1,5}))?"
    r"((?:;[A-Za-z0-9\-.!%*_+`'~]+(?:=[A-Za-z0-9\-.!%*_+`'~:]+)?)*)"
).fullmatch


_newVia = object.__new__


def _parseOneVia(text):
    m = _VIA_SIMPLE(text)
    if m is not None:
        transport, host, port, rest = m.groups()
        if port is not None:
            port = int(port)
            if port > 65535:
                raise _bad("Bad port in Via")
        params = _fastParams(rest)
        # (the host pattern of _VIA_SIMPLE only takes what _checkHost accepts)
        via = _newVia(Via)
        via.transport = transport
        via.host = host
        via.port = port
        via.params = params
        via.protocol = "SIP/2.0"
        return via
    m = _VIA_RE.match(text)
    if m is None:
        raise _bad("Bad Via")
    name, version, transport, host, port = m.groups()
    if port is not None:
        port = _parsePort(port, "Via port")
    _checkHost(host, "Via host")
    params = _parseHeaderParams(text[m.end() :], "Via")
    return Via(transport.upper(), host, port, params, "%s/%s" % (name.upper(), version))


def parseVia(text):
    """
    Parse a Via header value, which may hold several comma-separated
    via-parms (RFC 3261 §20.42). LWS may appear around C{/}, C{:}, C{;}
    and C{=} (RFC 4475 §3.1.1.1).

    @rtype: C{list} of L{Via}
    @raise SIPParseError: bad syntax or an empty element.
    """
    if "," not in text:
        return [_parseOneVia(text.strip(_WS))]
    out = []
    for item in splitCommas(text):
        if not item:
            raise _bad("Empty element in Via")
        out.append(_parseOneVia(item))
    return out
