# -*- test-case-name: linkrtc.sip.test.test_uri -*-
"""
name-addr and addr-spec values with header parameters (RFC 3261 §20.10,
§20.20, §20.39, §25.1): From, To, Contact, Route, Record-Route.
Re-exported by L{linkrtc.sip.uri}.
"""

import re

from linkrtc.sip.headerparams import _formatParams, _parseHeaderParams, _quote, splitCommas
from linkrtc.sip.sipuri import (
    _ABS_BAD,
    _SIPURI_REST,
    _WS,
    SIPURI,
    _bad,
    _fastParams,
    _fastSIPURI,
    parseURI,
)

__all__ = ["NameAddr", "WILDCARD", "parseNameAddr", "parseNameAddrList"]



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
