# -*- test-case-name: linkrtc.signalling.test.test_messages -*-
"""
Parsing and validation of the JSON messages a WebRTC client sends to
LinkRTC over the WebSocket (see C{docs/signalling.rst}).

This module is pure: no I/O, no Twisted. L{parseClientMessage} turns one
text frame into a new C{dict} holding only the fields it checked, or raises
L{MessageError} naming the first faulty field.
"""

import json
import re

__all__ = [
    "MAX_MESSAGE_SIZE",
    "CLIENT_MESSAGE_TYPES",
    "MessageError",
    "parseClientMessage",
    "isValidClientName",
]

#: The largest client message accepted, in octets of UTF-8 (64 KiB).
MAX_MESSAGE_SIZE = 65536

#: Longest accepted call id, in characters.
MAX_CALL_ID = 256

#: Longest accepted token, in characters.
MAX_TOKEN = 1024

#: Longest accepted C{to} of an outbound C{call}, in characters.
MAX_TARGET = 512

#: Longest accepted C{ref} of an outbound C{call}, in characters.
MAX_REF = 128

#: Longest accepted C{reason} of a C{hangup}, in characters.
MAX_HANGUP_REASON = 256

#: Longest C{text} of an instant C{message}, in characters (the SIP side
#: also limits its octets: docs/signalling.rst).
MAX_TEXT = 4096

#: Most DTMF digits in one C{dtmf} message.
MAX_DIGITS = 32

#: Longest accepted resume token, in characters.
MAX_RESUME_TOKEN = 128

_NAME = re.compile(r"[A-Za-z0-9_.@+-]{1,64}\Z")
_DIGITS = re.compile(r"[0-9*#A-D]{1,%d}\Z" % (MAX_DIGITS,))
# Printable ASCII without space: call ids are Call-ID-like words.
_CALL_ID = re.compile(r"[\x21-\x7e]{1,%d}\Z" % (MAX_CALL_ID,))
_TARGET = re.compile(r"[\x21-\x7e]{1,%d}\Z" % (MAX_TARGET,))
_NO_CONTROL = re.compile(r"[^\x00-\x1f\x7f]*\Z")
_RESUME_TOKEN = re.compile(r"[A-Za-z0-9_-]{1,%d}\Z" % (MAX_RESUME_TOKEN,))

#: The reasons a client may give in C{reject}.
REJECT_REASONS = ("busy", "decline")


class MessageError(ValueError):
    """
    A client message is malformed.

    @ivar field: the name of the faulty field (C{str}): C{"type"} when the
        message is not a JSON object, too big, or of an unknown type;
        otherwise the field's key (C{"call"}, C{"sdp"}, C{"digits"}, ...).
    @ivar message: a short English explanation (C{str}).
    @ivar call: the message's C{call} id (C{str}) when it was readable and
        valid, else C{None}; lets the error reply name the call.
    @ivar code: the C{error.code} to answer with (C{int}, 400).
    """

    def __init__(self, field, message, call=None, code=400):
        super().__init__(f"{field}: {message}")
        self.field = field
        self.message = message
        self.call = call
        self.code = code


def isValidClientName(name):
    """
    @return: C{True} if C{name} is a C{str} of 1-64 characters from
        C{[A-Za-z0-9_.@+-]}.
    """
    return isinstance(name, str) and _NAME.match(name) is not None


def _rejectConstant(name):
    raise ValueError(f"{name} is not JSON")


#: The decoder of every client message, built once (fast path):
#: C{json.loads} with arguments builds a new C{JSONDecoder} per message.
_DECODER = json.JSONDecoder(parse_constant=_rejectConstant)


def _string(msg, field, pattern=None, optional=False, maxLength=None, what=None, call=None):
    """
    Fetch C{msg[field]} and check it is a non-empty C{str} (matching
    C{pattern} if given).

    @raise MessageError: missing, wrong type, empty, too long or bad syntax.
    """
    if field not in msg or msg[field] is None:
        if optional:
            return None
        raise MessageError(field, f"missing field {field!r}", call)
    value = msg[field]
    if not isinstance(value, str):
        raise MessageError(field, f"{field!r} must be a string", call)
    if not value:
        raise MessageError(field, f"{field!r} must not be empty", call)
    if maxLength is not None and len(value) > maxLength:
        raise MessageError(field, f"{field!r} is longer than {maxLength} characters", call)
    if pattern is not None and pattern.match(value) is None:
        raise MessageError(field, f"{field!r} must be {what}", call)
    return value


def _callId(msg):
    return _string(msg, "call", _CALL_ID, what="printable ASCII without spaces, at most "
                   f"{MAX_CALL_ID} characters")


def _sdp(msg, call):
    sdp = _string(msg, "sdp", call=call)
    if "\x00" in sdp:
        raise MessageError("sdp", "'sdp' must not contain NUL", call)
    return sdp


def _parseRegister(msg):
    client = _string(msg, "client", _NAME, what="1-64 characters of A-Z a-z 0-9 _ . @ + -")
    out = {"type": "register", "client": client}
    token = _string(msg, "token", _NO_CONTROL, optional=True, maxLength=MAX_TOKEN,
                    what="text without control characters")
    if token is not None:
        out["token"] = token
    trace = msg.get("trace", False)
    if trace is None:
        trace = False
    if not isinstance(trace, bool):
        raise MessageError("trace", "'trace' must be true or false")
    out["trace"] = trace
    resume = _string(msg, "resume", _RESUME_TOKEN, optional=True,
                     what=f"a resume token: 1-{MAX_RESUME_TOKEN} of A-Z a-z 0-9 _ -")
    if resume is not None:
        out["resume"] = resume
    return out


def _parseCallOnly(kind):
    def parse(msg):
        return {"type": kind, "call": _callId(msg)}

    return parse


def _parseAccept(msg):
    call = _callId(msg)
    return {"type": "accept", "call": call, "sdp": _sdp(msg, call)}


def _parseResume(msg):
    """C{resume}: pick a live call up again with a new offer (docs/signalling.rst)."""
    call = _callId(msg)
    return {"type": "resume", "call": call, "sdp": _sdp(msg, call)}


def _parseReject(msg):
    call = _callId(msg)
    reason = msg.get("reason")
    if reason is None:
        reason = "decline"
    if reason not in REJECT_REASONS:
        raise MessageError("reason", "'reason' must be \"busy\" or \"decline\"", call)
    return {"type": "reject", "call": call, "reason": reason}


def _parseHangup(msg):
    """
    C{hangup} with an optional C{cause} (an C{int} SIP status 400-699: the
    client ends the call because of a failure, e.g. 488 when its media
    set-up failed) and C{reason} (words, at most 256 characters).
    """
    call = _callId(msg)
    out = {"type": "hangup", "call": call}
    cause = msg.get("cause")
    if cause is not None:
        if isinstance(cause, bool) or not isinstance(cause, int) or not 400 <= cause <= 699:
            raise MessageError("cause", "'cause' must be a SIP status 400-699", call)
        out["cause"] = cause
    reason = _string(msg, "reason", _NO_CONTROL, optional=True, maxLength=MAX_HANGUP_REASON,
                     what="text without control characters", call=call)
    if reason is not None:
        out["reason"] = reason
    return out


def _parseDtmf(msg):
    call = _callId(msg)
    digits = _string(msg, "digits", _DIGITS, call=call,
                     what=f"1-{MAX_DIGITS} of 0-9 * # A-D")
    return {"type": "dtmf", "call": call, "digits": digits}


def _parseCall(msg):
    to = _string(msg, "to", _TARGET, what=f"a number or URI: printable ASCII without spaces, "
                 f"at most {MAX_TARGET} characters")
    sdp = _sdp(msg, None)
    out = {"type": "call", "to": to, "sdp": sdp}
    ref = _string(msg, "ref", _NO_CONTROL, optional=True, maxLength=MAX_REF,
                  what="text without control characters")
    if ref is not None:
        out["ref"] = ref
    return out


def _parseTransfer(msg):
    """
    C{transfer}: the answering client hands the call's far party to
    another target (docs/signalling.rst, L{linkrtc.call.operators.transfer}):
    C{call} and C{to} (a client name, a registered SIP user's name or a
    number, as C{call}'s C{to}).
    """
    call = _callId(msg)
    to = _string(msg, "to", _TARGET, call=call, what="a client name, number or URI: printable "
                 f"ASCII without spaces, at most {MAX_TARGET} characters")
    return {"type": "transfer", "call": call, "to": to}


def _parseMessage(msg):
    """
    C{message}: an instant message to another client or a SIP phone by
    name (RFC 3428 on the SIP side): C{to} (a client name), C{text}
    (1..L{MAX_TEXT} characters, no NUL) and an optional C{ref}.
    """
    to = _string(msg, "to", _NAME, what="a client name: 1-64 characters of "
                 "A-Z a-z 0-9 _ . @ + -")
    text = msg.get("text")
    if not isinstance(text, str) or not text:
        raise MessageError("text", "'text' must be a non-empty string")
    if len(text) > MAX_TEXT:
        raise MessageError("text", f"'text' is longer than {MAX_TEXT} characters", code=413)
    if "\x00" in text:
        raise MessageError("text", "'text' must not contain NUL")
    out = {"type": "message", "to": to, "text": text}
    ref = _string(msg, "ref", _NO_CONTROL, optional=True, maxLength=MAX_REF,
                  what="text without control characters")
    if ref is not None:
        out["ref"] = ref
    return out


_PARSERS = {
    "register": _parseRegister,
    "ringing": _parseCallOnly("ringing"),
    "accept": _parseAccept,
    "reject": _parseReject,
    "hangup": _parseHangup,
    "dtmf": _parseDtmf,
    "hold": _parseCallOnly("hold"),
    "unhold": _parseCallOnly("unhold"),
    "call": _parseCall,
    "resume": _parseResume,
    "message": _parseMessage,
    "transfer": _parseTransfer,
}

#: The C{type} values a client may send.
CLIENT_MESSAGE_TYPES = frozenset(_PARSERS)


def parseClientMessage(text, maxSize=MAX_MESSAGE_SIZE):
    """
    Parse and validate one client -> server message.

    @param text: the frame's payload, C{str} or UTF-8 C{bytes}.
    @param maxSize: the size limit in octets (default 64 KiB).
    @return: a new C{dict} with C{"type"} and only the fields that type
        defines, all checked; unknown fields are dropped. Defaults are
        filled in: C{reject}'s C{reason} is C{"decline"}, C{register}'s
        C{trace} is C{False}.
    @raise MessageError: the message is too big, not UTF-8, not JSON, not
        an object, of an unknown C{type} (all naming C{"type"}), or a field
        is missing or malformed (naming that field).
    """
    if isinstance(text, str):
        try:
            size = len(text.encode("utf-8"))
        except UnicodeEncodeError:
            raise MessageError("type", "message is not valid UTF-8") from None
        decoded = text
    elif isinstance(text, (bytes, bytearray, memoryview)):
        size = len(text) if not isinstance(text, memoryview) else text.nbytes
        decoded = None
    else:
        raise MessageError("type", "message must be text")
    if size > maxSize:
        raise MessageError("type", f"message is larger than {maxSize} octets")
    if decoded is None:
        try:
            decoded = bytes(text).decode("utf-8")
        except UnicodeDecodeError:
            raise MessageError("type", "message is not valid UTF-8") from None
    # json.loads refuses a leading BOM; the decoder, built once, does not
    if decoded.startswith("\ufeff"):
        raise MessageError("type", "message is not valid JSON")
    try:
        msg = _DECODER.decode(decoded)
    except (ValueError, RecursionError):
        raise MessageError("type", "message is not valid JSON") from None
    if not isinstance(msg, dict):
        raise MessageError("type", "message must be a JSON object")
    kind = msg.get("type")
    if not isinstance(kind, str):
        raise MessageError("type", "missing or non-string 'type'")
    parser = _PARSERS.get(kind)
    if parser is None:
        raise MessageError("type", f"unknown message type {kind[:40]!r}")
    return parser(msg)
