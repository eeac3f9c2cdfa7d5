# -*- test-case-name: linkrtc.sip.test.test_useragent -*-
"""
Content processing of a request a user-agent server receives (RFC 3261
§8.2.3, §20.1): the body's Content-Type and Content-Encoding, the media
types of a multipart body (RFC 2046 §5.1) and the Accept header. Used by
L{linkrtc.sip.useragent.UserAgent} (which re-exports L{multipartTypes}).
"""

import re

__all__ = ["acceptsSDP", "checkContent", "multipartTypes"]

_BOUNDARY = re.compile(r';\s*boundary\s*=\s*("([^"]*)"|[^;\s]+)', re.IGNORECASE)


def _tokens(headers, name):
    """@return: the comma-separated tokens of every C{name} header, stripped, non-empty."""
    result = []
    for value in headers.getAll(name):
        for token in value.split(","):
            token = token.strip()
            if token:
                result.append(token)
    return result


def _mediaType(value):
    """@return: the lower-case C{type/subtype} of a Content-Type or Accept entry."""
    return value.split(";", 1)[0].strip().lower()


def multipartTypes(contentType, body):
    """
    The media types of the parts of a multipart body (RFC 2046 §5.1), one
    level deep.

    @param contentType: the full Content-Type header value, C{str}.
    @param body: C{bytes}.
    @return: C{list} of lower-case media types (C{str}); parts without a
        Content-Type count as C{text/plain}. Empty if there is no boundary.
    """
    match = _BOUNDARY.search(contentType or "")
    if match is None:
        return []
    boundary = (match.group(2) if match.group(2) is not None else match.group(1)).encode(
        "utf-8", "replace"
    )
    types = []
    delimiter = b"--" + boundary
    pieces = body.split(delimiter)
    for piece in pieces[1:]:
        if piece.startswith(b"--"):
            break
        piece = piece.lstrip(b"\r\n")
        head = re.split(rb"\r?\n\r?\n", piece, maxsplit=1)[0]
        partType = "text/plain"
        for line in re.split(rb"\r?\n", head):
            name, sep, value = line.partition(b":")
            if sep and name.strip().lower() in (b"content-type", b"c"):
                partType = _mediaType(value.decode("utf-8", "replace"))
        types.append(partType)
    return types


def checkContent(request, accept):
    """
    RFC 3261 §8.2.3: a body we cannot read gets 415 with Accept (or
    Accept-Encoding for an unknown Content-Encoding).

    @param request: a L{linkrtc.sip.message.Request}.
    @param accept: the lower-case media types we understand (C{tuple} of C{str}).
    @return: C{(status, headers)} or C{(None, None)} if acceptable.
    """
    for encoding in _tokens(request.headers, "Content-Encoding"):
        if encoding.lower() != "identity":
            return 415, [("Accept-Encoding", "identity")]
    if not request.body:
        return None, None
    raw = request.headers.get("Content-Type")
    if raw is None:
        # RFC 3261 §7.4.1 requires it; be liberal and read it as SDP.
        return None, None
    mediaType = _mediaType(raw)
    if mediaType in accept:
        return None, None
    if mediaType.startswith("multipart/") and mediaType != "multipart/signed":
        if any(t in accept for t in multipartTypes(raw, request.body)):
            return None, None
    return 415, [("Accept", ", ".join(accept))]


def acceptsSDP(request):
    """
    @return: C{False} if the request's Accept header lists media types
        and none of them covers application/sdp (RFC 3261 §20.1). An
        absent or empty Accept is read as "application/sdp".
    """
    entries = [_mediaType(e) for e in _tokens(request.headers, "Accept")]
    if not entries:
        return True
    return any(e in ("application/sdp", "application/*", "*/*") for e in entries)
