"""
LinkRTC's exceptions.

Every exception raised by LinkRTC on purpose derives from L{LinkRTCError}.
"""


class LinkRTCError(Exception):
    """Base class of LinkRTC's own errors."""


class SIPParseError(LinkRTCError):
    """
    A SIP message could not be parsed, or breaks a rule of RFC 3261 §7/§25
    that makes it unusable.

    @ivar status: the SIP status to answer a request with (400 unless a more
        precise code applies: 505 for a wrong version, 416, ...).
    @ivar reason: the reason phrase, naming the fault (for example
        C{"Bad Request (Content-Length larger than message)"}).
    @ivar headers: the raw header lines (name, value) recovered before the
        fault, so a stateless error response can copy Via, From, To,
        Call-ID and CSeq (RFC 3261 §8.2.6); may be empty.
    @ivar isRequest: C{True} if the start line was a request line, C{False}
        for a status line, C{None} if unknown. Only requests are answered.
    """

    def __init__(self, reason, status=400, headers=(), isRequest=None):
        super().__init__(reason)
        self.reason = reason
        self.status = status
        self.headers = list(headers)
        self.isRequest = isRequest


class SIPFramingError(SIPParseError):
    """
    A stream (TCP/TLS) can no longer be framed into messages (bad or
    conflicting Content-Length, over-long message or line): the connection
    must be closed (RFC 3261 §18.3).
    """


class TransactionTimeout(LinkRTCError):
    """A client transaction ended by Timer B or F (RFC 3261 §17.1) with no final response."""


class TransportError(LinkRTCError):
    """A message could not be sent (no route, connection refused or lost)."""


class InvalidStateError(LinkRTCError):
    """An event or command arrived in a state that cannot take it."""


class OperatorConfigError(LinkRTCError):
    """
    The call state machine was configured wrongly: an unknown state or
    operator name, or an object that does not provide
    L{linkrtc.interfaces.IOperator}. Raised at start-up, never mid-call.
    """


class MediaError(LinkRTCError):
    """An SDP could not be parsed or shares no codec with us (SIP 488 Not Acceptable Here)."""


class ApiError(LinkRTCError):
    """
    A call-control API method (seed 001 C{sys.call.*}, L{linkrtc.app})
    could not be carried out; becomes a JSON-RPC 2.0 error object.

    @ivar code: the JSON-RPC error code, C{int} (see L{linkrtc.app.errors}:
        -32602 bad parameter, -32001 unknown resource, -32002 wrong state,
        -32003 media actions unavailable, -32004 failed).
    @ivar message: the text, C{str}.
    @ivar data: extra JSON-able detail (C{{"state": NAME}},
        C{{"param": NAME}}) or C{None}.
    """

    def __init__(self, code, message, data=None):
        super().__init__(message)
        self.code = code
        self.message = message
        self.data = data

    @classmethod
    def wrongState(cls, method, state):
        """@return: the error -32002 for C{method} called in C{state} (a seed 001 name)."""
        return cls(-32002, f"{method} not allowed in state {state}", {"state": state})

    def toJSON(self):
        """@return: the JSON-RPC C{error} object, a C{dict}."""
        error = {"code": self.code, "message": self.message}
        if self.data is not None:
            error["data"] = self.data
        return error
