# -*- test-case-name: linkrtc.sip.test.test_uri -*-
"""
Header values (RFC 3261 §7.3.1, §25.1): comma lists, C{;} generic
parameters and quoted strings, shared by L{linkrtc.sip.nameaddr} and
L{linkrtc.sip.via}. Re-exported by L{linkrtc.sip.uri}.

Header parameters are tokens and are kept exactly as written (quoted values
keep their quotes).
"""

import re

from linkrtc.sip.sipuri import _TOKEN_RE, _WS, _bad

__all__ = ["splitCommas"]



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
    pieces, _ = _splitOutside(value, ",", True)
    return [v.strip() for v in pieces]


def _splitSemis(text):
    """Split at C{;} outside quoted strings."""
    if '"' not in text:
        return text.split(";")
    out, inQuote = _splitOutside(text, ";", False)
    if inQuote:
        raise _bad("Unterminated quoted string in parameter")
    return out


def _splitOutside(text, sep, angles):
    """
    The slow path of L{splitCommas} and L{_splitSemis}: split C{text} at
    each C{sep} (one character) outside quoted strings (C{\\} escapes
    the next character) and, when C{angles}, outside C{<>}.

    @return: C{(pieces, inQuote)}: the pieces as written (C{list} of
        C{str}, not stripped) and whether a quoted string was left open.
    """
    out = []
    start = 0
    i = 0
    n = len(text)
    inQuote = inAngle = False
    while i < n:
        c = text[i]
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
        elif angles and c == "<":
            inAngle = True
        elif c == sep:
            out.append(text[start:i])
            start = i + 1
        i += 1
    out.append(text[start:])
    return out, inQuote


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
