# -*- test-case-name: linkrtc.sip.test.test_refer -*-
"""
Call transfer on the wire: the Refer-To header of REFER (RFC 3515 §2.1),
the Replaces header (RFC 3891 §6.1) and the C{message/sipfrag} NOTIFYs that
report a REFER's progress (RFC 3515 §2.4.4, RFC 3420).

Everything here is parsing and building; what a transfer does to a call
is L{linkrtc.call.transfer}'s.
"""

from linkrtc.error import SIPParseError
from linkrtc.sip.dialog import DialogId
from linkrtc.sip.message import defaultReason
from linkrtc.sip.uri import SIPURI, TelURI, parseNameAddr

__all__ = ["ReferTarget", "parseReferTo", "parseReplaces", "replacedLeg", "replacesDialog", "sipfrag",
           "notifyHeaders", "parseSipfrag", "SIPFRAG", "REFER_EVENT"]

#: The Content-Type of a REFER's NOTIFY body (RFC 3420).
SIPFRAG = "message/sipfrag"

#: The Event of a REFER's implicit subscription (RFC 3515 §2.4.4).
REFER_EVENT = "refer"


class ReferTarget:
    """
    A parsed Refer-To.

    @ivar uri: the target's URI without its headers (a L{SIPURI} or
        L{TelURI}).
    @ivar user: the user part (or the tel number), C{str} or C{None}.
    @ivar replaces: C{(callId, toTag, fromTag)} from an embedded Replaces
        (an attended transfer, RFC 3891 §3), else C{None}.
    """

    def __init__(self, uri, user, replaces=None):
        self.uri = uri
        self.user = user
        self.replaces = replaces

    def __repr__(self):
        return f"<ReferTarget {self.uri} replaces={self.replaces!r}>"


def parseReplaces(text):
    """
    Parse a Replaces value: C{callid;to-tag=T;from-tag=F[;early-only]}
    (RFC 3891 §6.1).

    @param text: C{str}.
    @return: C{(callId, toTag, fromTag)}, all C{str}.
    @raise SIPParseError: status 481 when the value cannot be read or lacks
        a tag (RFC 3891 §3: a Replaces that matches no dialog gets 481).
    """
    if not isinstance(text, str):
        raise SIPParseError("Call/Transaction Does Not Exist (Replaces missing)", 481)
    parts = [p.strip() for p in text.split(";")]
    callId = parts[0]
    params = {}
    for part in parts[1:]:
        name, _, value = part.partition("=")
        params[name.strip().lower()] = value.strip()
    if not callId or any(c in callId for c in " \t,<>") \
            or not params.get("to-tag") or not params.get("from-tag"):
        raise SIPParseError("Call/Transaction Does Not Exist (malformed Replaces)", 481)
    return callId, params["to-tag"], params["from-tag"]


def replacesDialog(replaces):
    """
    @param replaces: C{(callId, toTag, fromTag)} from L{parseReplaces}.
    @return: the L{DialogId} on the receiving UA's side: the to-tag is
        its local tag, the from-tag its peer's (RFC 3891 §3).
    """
    callId, toTag, fromTag = replaces
    return DialogId(callId, toTag, fromTag)


def replacedLeg(dialogs, request):
    """
    The leg an INVITE's Replaces names (RFC 3891 §3): a confirmed dialog
    of ours, not ending, whose listener can hand its call over
    (C{legReplaced}).

    @param dialogs: the user agent's L{linkrtc.sip.dialog.DialogTable}.
    @param request: the INVITE.
    @return: that leg, or C{None} (the INVITE then gets 481: an unreadable
        Replaces, or one naming no such dialog).
    """
    try:
        dialogId = replacesDialog(parseReplaces(request.headers.get("Replaces")))
    except SIPParseError:
        return None
    leg = dialogs.get(dialogId)
    listener = getattr(leg, "listener", None)
    if leg is None or getattr(leg, "state", None) in ("terminating", "terminated") \
            or getattr(listener, "legReplaced", None) is None:
        return None
    return leg


def parseReferTo(value):
    """
    Parse a REFER's Refer-To (RFC 3515 §2.1; also accepted as C{r}).

    @param value: the header value, C{str} or C{None}.
    @return: a L{ReferTarget}.
    @raise SIPParseError: status 400 naming Refer-To for a missing or bad
        value or a scheme other than sip, sips or tel; status 481 for an
        embedded Replaces that cannot be read.
    """
    if not value:
        raise SIPParseError("Bad Request (Refer-To missing)", 400)
    try:
        addr = parseNameAddr(value)
    except SIPParseError as e:
        raise SIPParseError(f"Bad Request (Refer-To: {e.reason})", 400) from None
    uri = addr.uri
    if isinstance(uri, TelURI):
        return ReferTarget(uri, uri.number)
    if not isinstance(uri, SIPURI):
        raise SIPParseError("Bad Request (Refer-To: not a sip, sips or tel URI)", 400)
    replaces = None
    headers = {k.lower(): v for k, v in (uri.headers or {}).items()}
    if "replaces" in headers:
        replaces = parseReplaces(headers["replaces"])
    bare = SIPURI(uri.scheme, uri.user, None, uri.host, uri.port, dict(uri.params))
    return ReferTarget(bare, uri.user, replaces)


def sipfrag(status, reason=None):
    """
    @param status: C{int} SIP status.
    @param reason: its phrase (default: the standard one).
    @return: the C{message/sipfrag} body of a REFER NOTIFY (C{bytes}):
        the status line (RFC 3515 §2.4.5).
    """
    reason = reason or defaultReason(status)
    return f"SIP/2.0 {int(status)} {reason}\r\n".encode("utf-8")


def parseSipfrag(body):
    """
    @param body: a C{message/sipfrag} body (C{bytes} or C{str}).
    @return: C{(status, reason)} of its status line, or C{None} when it
        starts with none.
    """
    if isinstance(body, bytes):
        body = body.decode("utf-8", "replace")
    line = (body or "").split("\n", 1)[0].strip()
    parts = line.split(" ", 2)
    if len(parts) < 2 or not parts[0].upper().startswith("SIP/") or not parts[1].isdigit():
        return None
    return int(parts[1]), (parts[2] if len(parts) > 2 else "")


def notifyHeaders(final, expires=60):
    """
    @param final: C{True} for the last NOTIFY (a final status).
    @param expires: seconds left of an active subscription.
    @return: the C{(name, value)} headers of a REFER NOTIFY: Event and
        Subscription-State (RFC 3515 §2.4.4, RFC 6665 §8.2.3).
    """
    state = "terminated;reason=noresource" if final else f"active;expires={int(expires)}"
    return [("Event", REFER_EVENT), ("Subscription-State", state)]
