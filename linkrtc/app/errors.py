# -*- test-case-name: linkrtc.app.test.test_methods -*-
"""
The error codes of the call-control API (JSON-RPC 2.0 §5.1; the
application codes are in the implementation-defined range -32000..-32099).
"""

from linkrtc.error import ApiError

__all__ = [
    "ApiError", "PARSE_ERROR", "INVALID_REQUEST", "METHOD_NOT_FOUND", "INVALID_PARAMS",
    "INTERNAL_ERROR", "UNKNOWN_RESOURCE", "WRONG_STATE", "MEDIA_UNAVAILABLE", "FAILED",
    "UNAUTHORIZED", "badParam", "wrongState", "unknownResource", "mediaUnavailable",
]

PARSE_ERROR = -32700
INVALID_REQUEST = -32600
METHOD_NOT_FOUND = -32601
INVALID_PARAMS = -32602
INTERNAL_ERROR = -32603

#: No live resource has the C{res_id} given.
UNKNOWN_RESOURCE = -32001
#: The resource's state does not take the method (seed 001: one action at a time).
WRONG_STATE = -32002
#: The call's media cannot run CTI actions (passthrough, or no media actions).
MEDIA_UNAVAILABLE = -32003
#: The method was taken but could not be done (no trunk, client not connected...).
FAILED = -32004
#: The transport refused the peer (no or bad token, not loopback in protected mode).
UNAUTHORIZED = -32005


def badParam(name, why):
    """@return: an L{ApiError} -32602 naming parameter C{name}."""
    return ApiError(INVALID_PARAMS, f"invalid params: {name}: {why}", {"param": name})


def wrongState(method, state):
    """@return: an L{ApiError} -32002 naming the resource's C{state} (seed 001 name)."""
    return ApiError.wrongState(method, state)


def unknownResource(resId):
    """@return: an L{ApiError} -32001 for C{resId}."""
    return ApiError(UNKNOWN_RESOURCE, f"unknown resource {str(resId)[:80]!r}",
                    {"res_id": resId if isinstance(resId, str) else None})


def mediaUnavailable(what="media actions unavailable"):
    """@return: an L{ApiError} -32003."""
    return ApiError(MEDIA_UNAVAILABLE, what)
