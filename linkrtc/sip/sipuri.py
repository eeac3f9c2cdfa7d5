# -*- test-case-name: linkrtc.sip.test.test_uri -*-
"""
SIP, SIPS, tel and other URIs (RFC 3261 §19.1, §25.1; RFC 3966; RFC 5118
for IPv6), and the character classes, escaping, host and port syntax the
header values of L{linkrtc.sip.nameaddr} and L{linkrtc.sip.via} share.
Re-exported by L{linkrtc.sip.uri}.

Every parser here raises L{SIPParseError} (status 400) on bad syntax; the
reason phrase names the fault.

Escaping (RFC 3261 §19.1.2): user, password, URI parameters and URI headers
are stored I{unescaped} (one pass only: C{value%2541} gives C{value%41},
never C{valueA}) and escaped again by C{str()}.
"""

import ipaddress
import re
from urllib.parse import unquote

from linkrtc.error import SIPParseError

__all__ = ["SIPURI", "TelURI", "AbsoluteURI", "parseURI"]


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
