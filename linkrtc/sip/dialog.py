# -*- test-case-name: linkrtc.sip.test.test_dialog -*-
"""
SIP dialogs (RFC 3261 §12).

A L{Dialog} holds the state two user agents share after a dialog-creating
response: its id (Call-ID, local tag, remote tag), the local and remote
URIs, the remote target (from Contact), the route set (from Record-Route),
the local and remote CSeq numbers and the secure flag. It builds the
requests sent inside the dialog (§12.2.1.1) and checks the ones that arrive
(§12.2.2). A L{DialogTable} finds dialogs by id.

L{checkDialogRequest} and L{checkTargetRefresh} refuse, before anything
else happens, a request whose Contact or Record-Route a dialog could not
use (RFC 3261 §8.1.1.8, §12.1.1, §12.2.2).
"""

import os
from collections import namedtuple

from twisted.logger import Logger

from linkrtc.error import SIPParseError
from linkrtc.sip.message import Request
from linkrtc.sip.uri import SIPURI, WILDCARD, NameAddr, parseNameAddrList

log = Logger()

#: Parameters a SIP URI may carry in a Request-URI: everything but C{method}
#: (RFC 3261 §19.1.1, table 1); URI headers are dropped too.
_NOT_IN_REQUEST_URI = ("method",)

DialogId = namedtuple("DialogId", ["callId", "localTag", "remoteTag"])
DialogId.__doc__ = """
The id of a dialog (RFC 3261 §12): C{callId}, C{localTag}, C{remoteTag}, all
C{str}; a tag missing from an RFC 2543 peer is C{""}.
"""


def _copyNameAddr(nameAddr, tag=None):
    """
    Copy C{nameAddr} without its C{tag} parameter, adding C{tag} if given.

    @param nameAddr: a L{NameAddr}.
    @param tag: the tag to set (C{str}) or C{None}.
    @return: a new L{NameAddr}.
    """
    params = {k: v for k, v in (nameAddr.params or {}).items() if k.lower() != "tag"}
    if tag:
        params["tag"] = tag
    return NameAddr(nameAddr.uri, display=nameAddr.display, params=params)


def _stripForRequestURI(uri):
    """
    Return a copy of a route URI fit for a Request-URI (§12.2.1.1 strict
    routing: "stripping any parameters that are not allowed in a
    Request-URI"): no C{method} parameter, no headers.
    """
    if not isinstance(uri, SIPURI):
        return uri
    params = {k: v for k, v in (uri.params or {}).items() if k not in _NOT_IN_REQUEST_URI}
    return SIPURI(
        scheme=uri.scheme,
        user=uri.user,
        password=uri.password,
        host=uri.host,
        port=uri.port,
        params=params,
        headers={},
    )


#: Values of a C{transport} URI parameter we can send on (RFC 3261 §19.1.1).
_TRANSPORTS = ("udp", "tcp", "tls", "ws", "wss")


def _bad(what):
    return SIPParseError("Bad Request (%s)" % (what,), 400)


def unusableURI(uri):
    """
    Why a URI cannot be a remote target or a route of a dialog: requests
    inside the dialog are sent to it (RFC 3261 §8.1.2, §12.2.1.1), so it
    must be a SIP or SIPS URI with a host and, if it names one, a transport
    we have.

    @param uri: a L{SIPURI}, L{linkrtc.sip.uri.TelURI} or
        L{linkrtc.sip.uri.AbsoluteURI}.
    @return: the fault in a few words (C{str}), or C{None} if it is usable.
    """
    if not isinstance(uri, SIPURI):
        return "not a SIP URI"
    if not uri.host:
        return "no host"
    params = uri.params or {}
    if "transport" in params and str(params["transport"]).lower() not in _TRANSPORTS:
        return "unknown transport"
    return None


def _checkTarget(message, required):
    """
    Check the Contact of C{message} as a remote target (RFC 3261 §8.1.1.8:
    exactly one SIP or SIPS URI).

    @param required: C{True} if a missing Contact falls back to the From
        URI, which must then be usable (an RFC 2543 INVITE, §12.1.1);
        C{False} if a missing Contact keeps the current target.
    @raise SIPParseError: 400 C{"Bad Request (Bad Contact: ...)"} or
        C{"Bad Request (Missing Contact)"}.
    """
    try:
        contacts = message.contacts
    except SIPParseError as e:
        raise _bad("Bad Contact: %s" % (e.reason,)) from None
    if not contacts:
        if required and unusableURI(message.fromAddr.uri) is not None:
            raise _bad("Missing Contact")
        return
    if len(contacts) > 1:
        raise _bad("More than one Contact")
    if contacts[0] is WILDCARD:
        raise _bad("Bad Contact: *")
    fault = unusableURI(contacts[0].uri)
    if fault is not None:
        raise _bad("Bad Contact: %s" % (fault,))


def checkDialogRequest(request):
    """
    Check that a dialog-creating request (INVITE) gives a dialog it can
    use: every Record-Route entry and the Contact (or, for an RFC 2543
    request without Contact, the From URI) are L{usable<unusableURI>}
    SIP URIs (RFC 3261 §8.1.1.8, §12.1.1, §16.6 step 4). The Via was
    checked by the parser. To be called before the request rings.

    @param request: a L{Request}.
    @raise SIPParseError: 400 with a reason naming the header, e.g.
        C{"Bad Request (Bad Record-Route: not a SIP URI)"}.
    """
    try:
        routes = request.recordRoutes
    except SIPParseError as e:
        raise _bad("Bad Record-Route: %s" % (e.reason,)) from None
    for route in routes:
        fault = "*" if route is WILDCARD else unusableURI(route.uri)
        if fault is not None:
            raise _bad("Bad Record-Route: %s" % (fault,))
    _checkTarget(request, True)


def checkTargetRefresh(request):
    """
    Check the Contact of a target refresh request inside a dialog
    (re-INVITE, UPDATE; RFC 3261 §12.2.2): if present it must be one
    usable SIP URI. Its Record-Route is not used (the route set does not
    change, §12.2).

    @raise SIPParseError: 400 C{"Bad Request (Bad Contact: ...)"}.
    """
    _checkTarget(request, False)


def newTag():
    """
    @return: a fresh random tag (C{str}, 32 random bits as hex at least;
        RFC 3261 §19.3 asks for 32 bits of randomness).
    """
    # Fast path: one os.urandom call (random.SystemRandom() made an object
    # and went through getrandbits per tag); the same 16 hex digits.
    return os.urandom(8).hex()


def newCSeq():
    """
    @return: a random initial local CSeq number, C{int} in [1, 2**31)
        (RFC 3261 §8.1.1.5, §12.1.2).
    """
    # (31 random bits from one os.urandom call; 0, once in 2**31, becomes 1)
    return (int.from_bytes(os.urandom(4), "big") >> 1) or 1


def _isSecure(request):
    """
    @return: C{True} if the request came over TLS with a SIPS Request-URI
        (RFC 3261 §12.1.1: the dialog is secure).
    """
    if request.uriScheme != "sips":
        return False
    via = request.topVia
    return via is not None and via.transport.upper() == "TLS"


class Dialog:
    """
    One SIP dialog (RFC 3261 §12).

    @ivar callId: C{str}.
    @ivar localTag: our tag, C{str}.
    @ivar remoteTag: the peer's tag, C{str} (C{""} for an RFC 2543 peer).
    @ivar localParty: the L{NameAddr} we put in From (without tag).
    @ivar remoteParty: the L{NameAddr} we put in To (without tag).
    @ivar remoteTarget: the peer's Contact URI (the Request-URI of our
        requests).
    @ivar routeSet: C{list} of L{NameAddr}, in the order our requests carry
        them as Route.
    @ivar localSeq: the CSeq number of our last request, C{int}.
    @ivar remoteSeq: the CSeq number of the peer's last request, C{int} or
        C{None} if it sent none in the dialog yet.
    @ivar secure: C{True} for a SIPS dialog.
    @ivar state: C{"early"}, C{"confirmed"} or C{"terminated"}.
    @ivar localContact: our Contact (a L{NameAddr} or C{None}) for target
        refresh requests.
    """

    def __init__(
        self,
        callId,
        localTag,
        remoteTag,
        localParty,
        remoteParty,
        remoteTarget,
        routeSet=(),
        localSeq=None,
        remoteSeq=None,
        secure=False,
        state="confirmed",
        localContact=None,
    ):
        self.callId = callId
        self.localTag = localTag
        self.remoteTag = remoteTag or ""
        self.localParty = _copyNameAddr(localParty)
        self.remoteParty = _copyNameAddr(remoteParty)
        self.remoteTarget = remoteTarget
        self.routeSet = list(routeSet)
        self.localSeq = newCSeq() if localSeq is None else localSeq
        self.remoteSeq = remoteSeq
        self.secure = secure
        self.state = state
        self.localContact = localContact

    def __repr__(self):
        return "<Dialog %s;%s;%s %s>" % (self.callId, self.localTag, self.remoteTag, self.state)

    @property
    def id(self):
        """The L{DialogId} of this dialog."""
        return DialogId(self.callId, self.localTag, self.remoteTag)

    @classmethod
    def fromServerRequest(cls, request, localTag, localContact=None, state="confirmed"):
        """
        Make the UAS side of a dialog (RFC 3261 §12.1.1) from the request
        that created it and the tag of our 2xx (or 101-199).

        @param request: the dialog-creating L{Request} (INVITE).
        @param localTag: the To tag of our response, C{str}.
        @param localContact: the Contact we sent (L{NameAddr}) or C{None}.
        @param state: C{"confirmed"} (2xx) or C{"early"} (1xx).
        @raise SIPParseError: if a header needed is malformed.
        """
        contacts = request.contacts
        remoteTarget = contacts[0].uri if contacts else request.fromAddr.uri
        routeSet = []
        for value in request.headers.getAll("Record-Route"):
            routeSet.extend(parseNameAddrList(value))
        return cls(
            callId=request.callId,
            localTag=localTag,
            remoteTag=request.fromAddr.tag or "",
            localParty=request.toAddr,
            remoteParty=request.fromAddr,
            remoteTarget=remoteTarget,
            routeSet=routeSet,
            remoteSeq=request.cseq.number,
            secure=_isSecure(request),
            state=state,
            localContact=localContact,
        )

    @classmethod
    def fromClientResponse(cls, request, response, localContact=None):
        """
        Make the UAC side of a dialog (RFC 3261 §12.1.2) from the request we
        sent and a 2xx or a 101-199 with a To tag.

        @param request: our L{Request} (its CSeq becomes the local CSeq).
        @param response: the L{Response} with a To tag.
        @raise ValueError: if the response has no To tag.
        """
        remoteTag = response.toAddr.tag
        if not remoteTag:
            raise ValueError("a response without a To tag does not make a dialog")
        contacts = response.contacts
        if contacts and contacts[0] is not WILDCARD and unusableURI(contacts[0].uri) is None:
            remoteTarget = contacts[0].uri
        else:
            # none, or one we could not send to: keep sending to the Request-URI
            remoteTarget = request.uri
        routeSet = []
        for value in response.headers.getAll("Record-Route"):
            routeSet.extend(parseNameAddrList(value))
        routeSet.reverse()
        secure = getattr(request.uri, "scheme", None) == "sips"
        return cls(
            callId=request.callId,
            localTag=request.fromAddr.tag or "",
            remoteTag=remoteTag,
            localParty=request.fromAddr,
            remoteParty=response.toAddr,
            remoteTarget=remoteTarget,
            routeSet=routeSet,
            localSeq=request.cseq.number,
            remoteSeq=None,
            secure=secure,
            state="confirmed" if 200 <= response.status < 300 else "early",
            localContact=localContact,
        )

    def checkRemoteCSeq(self, request):
        """
        Check and record the CSeq of a request received in this dialog
        (RFC 3261 §12.2.2). ACK and CANCEL carry the CSeq of the request
        they go with and are always accepted.

        @return: C{True} if the request is in order; C{False} if its CSeq
            is lower than the last one, when it must be answered 500.
        """
        if request.method in ("ACK", "CANCEL"):
            return True
        number = request.cseq.number
        if self.remoteSeq is not None and number < self.remoteSeq:
            return False
        self.remoteSeq = number
        return True

    def refreshTarget(self, message):
        """
        Take the remote target from a target refresh request or its 2xx
        (RFC 3261 §12.2.2, §12.2.1.2) if it has a Contact we can use
        (L{unusableURI}); an unusable one is ignored.
        """
        try:
            contacts = message.contacts
        except SIPParseError:
            return
        if contacts and contacts[0] is not WILDCARD and unusableURI(contacts[0].uri) is None:
            self.remoteTarget = contacts[0].uri

    def createRequest(self, method, body=None, contentType=None, headers=(), cseq=None):
        """
        Build a request inside this dialog (RFC 3261 §12.2.1.1). It has no
        Via: the transaction layer adds it when sending.

        @param method: C{str}, e.g. C{"BYE"}.
        @param body: C{bytes} or C{None}.
        @param contentType: the Content-Type of C{body}, C{str}.
        @param headers: extra C{(name, value)} pairs.
        @param cseq: the CSeq number for ACK or CANCEL (that of the INVITE
            they go with); other methods take the next local CSeq.
        @return: a L{Request}.
        """
        if method in ("ACK", "CANCEL"):
            number = self.localSeq if cseq is None else cseq
        else:
            self.localSeq += 1
            number = self.localSeq
        routes = list(self.routeSet)
        if routes and "lr" not in (routes[0].uri.params or {}):
            # Strict routing: the first route becomes the Request-URI and
            # the remote target goes last.
            requestURI = _stripForRequestURI(routes[0].uri)
            routes = routes[1:] + [NameAddr(self.remoteTarget)]
        else:
            requestURI = self.remoteTarget
        request = Request(method, requestURI)
        h = request.headers
        for route in routes:
            h.add("Route", str(route))
        h.set("Max-Forwards", "70")
        h.set("From", str(_copyNameAddr(self.localParty, self.localTag)))
        h.set("To", str(_copyNameAddr(self.remoteParty, self.remoteTag)))
        h.set("Call-ID", self.callId)
        h.set("CSeq", "%d %s" % (number, method))
        if self.localContact is not None and method in ("INVITE", "UPDATE", "SUBSCRIBE"):
            h.set("Contact", str(self.localContact))
        for name, value in headers:
            h.add(name, value)
        if body:
            request.body = bytes(body)
            if contentType:
                h.set("Content-Type", contentType)
        return request

    def nextHop(self, request):
        """
        The URI a request of this dialog goes to first (RFC 3261 §8.1.2,
        §12.2.1.1): the first route if it is a loose router, else the
        Request-URI (the remote target, or a strict router).

        @param request: a L{Request} from L{createRequest}.
        """
        if self.routeSet and "lr" in (self.routeSet[0].uri.params or {}):
            return self.routeSet[0].uri
        return request.uri


class DialogTable:
    """
    The dialogs of a user agent, by L{DialogId}.
    """

    def __init__(self):
        self._dialogs = {}

    def __len__(self):
        return len(self._dialogs)

    def __contains__(self, dialogId):
        return tuple(dialogId) in self._dialogs

    def __iter__(self):
        return iter(list(self._dialogs.values()))

    def add(self, dialog, value=None):
        """
        Record C{dialog}; C{value} (default: the dialog) is what
        L{get} returns for it.
        """
        self._dialogs[tuple(dialog.id)] = (dialog, dialog if value is None else value)

    def remove(self, dialogId):
        """Forget a dialog; no error if it is unknown."""
        self._dialogs.pop(tuple(dialogId), None)

    def get(self, dialogId):
        """
        @return: the value recorded for C{dialogId}, or C{None}.
        """
        entry = self._dialogs.get(tuple(dialogId))
        return None if entry is None else entry[1]

    def getDialog(self, dialogId):
        """@return: the L{Dialog} recorded for C{dialogId}, or C{None}."""
        entry = self._dialogs.get(tuple(dialogId))
        return None if entry is None else entry[0]

    @staticmethod
    def idForRequest(request):
        """
        The id a request received inside a dialog names (§12.2.2): its
        Call-ID, To tag (ours) and From tag (theirs).

        @raise SIPParseError: if From or To is malformed.
        """
        return DialogId(request.callId, request.toAddr.tag or "", request.fromAddr.tag or "")

    @staticmethod
    def idForResponse(response):
        """The id a response to our request names: Call-ID, From tag, To tag."""
        return DialogId(response.callId, response.fromAddr.tag or "", response.toAddr.tag or "")

    def findRequest(self, request):
        """@return: the value for the dialog C{request} belongs to, or C{None}."""
        return self.get(self.idForRequest(request))
