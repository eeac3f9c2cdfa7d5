# -*- test-case-name: linkrtc.sip.test.test_redact -*-
"""
Credentials never leave the switch: the values of C{Authorization} and
C{Proxy-Authorization} (RFC 3261 §20.7, §20.28) are replaced before a SIP
message is shown to a client (the ladder's C{trace}), written to a log or
put into a webhook payload (docs/security.rst).

Only the value goes: the scheme (C{Digest}) stays, so a ladder still shows
that the request was authenticated.
"""

import re

__all__ = ["CREDENTIAL_HEADERS", "REDACTED", "redactHeader", "redactMessage"]

#: Header names (lowercase) whose values are credentials.
CREDENTIAL_HEADERS = frozenset(("authorization", "proxy-authorization"))

#: What stands in for a credential's parameters.
REDACTED = "[redacted]"

# A credential header line and its folded continuation lines (RFC 3261 §7.3.1),
# up to the end of the header section; group 1 is "Name: Scheme".
_LINE = re.compile(
    rb"(?im)^((?:proxy-)?authorization[ \t]*:[ \t]*[!-~]*)[^\r\n]*(?:\r?\n[ \t][^\r\n]*)*")


def redactHeader(name, value):
    """
    @param name: a header name (any case).
    @param value: its value, C{str}.
    @return: C{value}, or C{"SCHEME [redacted]"} for a credential header.
    """
    if name.lower() not in CREDENTIAL_HEADERS:
        return value
    scheme = value.strip().split(None, 1)[0] if value.strip() else ""
    return f"{scheme} {REDACTED}".strip()


def redactMessage(data):
    """
    @param data: a whole SIP message, C{bytes} or C{str}.
    @return: the same type, with the value of every C{Authorization} and
        C{Proxy-Authorization} header of the header section replaced by
        L{REDACTED} (the body is left alone).
    """
    text = data.encode("utf-8", "surrogateescape") if isinstance(data, str) else bytes(data)
    if b"authorization" not in text.lower():
        return data
    end = text.find(b"\r\n\r\n")
    if end < 0:
        end = text.find(b"\n\n")
    head, body = (text, b"") if end < 0 else (text[:end], text[end:])
    head = _LINE.sub(lambda m: m.group(1) + b" " + REDACTED.encode("ascii"), head)
    out = head + body
    return out.decode("utf-8", "surrogateescape") if isinstance(data, str) else out
