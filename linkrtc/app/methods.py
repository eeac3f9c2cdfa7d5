# -*- test-case-name: linkrtc.app.test.test_methods -*-
"""
The methods of the call-control API (seed 001, C{sys.call.*}, and the
conference resource C{sys.conf.*}): their parameters, types and defaults,
and the check that turns a JSON-RPC C{params} object into a C{dict} with
every parameter (L{checkParams}).

Parameters are named (a JSON object), as in the seed. A missing required
parameter, an unknown one, or one of the wrong type is refused with
JSON-RPC error -32602 naming it.
"""

from linkrtc.app.errors import badParam

#: Marks a required parameter.
REQUIRED = object()

# Kinds of parameter values.
STR = "str"
INT = "int"
BOOL = "bool"
CONTENT = "content"  # a str, or a list (seed 001 play content)
NUMBER = "number"


def _p(name, kind, default=REQUIRED, nullable=None):
    """
    @param nullable: whether C{null} is accepted; by default, when the
        default is C{None}.
    """
    return (name, kind, default, default is None if nullable is None else nullable)


_RES = _p("res_id", STR)

#: Method name -> tuple of C{(name, kind, default, nullable)}.
METHODS = {
    "sys.call.construct": (
        _p("from_uri", STR, None), _p("to_uri", STR), _p("max_answer_seconds", INT, None),
        _p("max_ring_seconds", INT, None), _p("parent_call_res_id", STR, None),
        _p("ring_play_file", STR, None), _p("user_data", STR, None),
    ),
    "sys.call.exists": (_RES,),
    "sys.call.nop": (_RES,),
    "sys.call.answer": (_RES, _p("max_answer_seconds", INT, None), _p("user_data", STR, None)),
    "sys.call.drop": (_RES, _p("cause", INT, 603)),
    "sys.call.redirect": (_RES, _p("redirect_uri", STR)),
    "sys.call.transfer": (_RES, _p("to_uri", STR)),
    "sys.call.route": (_RES, _p("client", STR)),
    "sys.call.play_start": (_RES, _p("content", CONTENT), _p("finish_keys", STR, "", True)),
    "sys.call.play_stop": (_RES,),
    "sys.call.record_start": (
        _RES, _p("max_seconds", INT, None), _p("beep", BOOL, False, True),
        _p("record_file", STR), _p("record_format", INT, 1, True),
        _p("finish_keys", STR, "", True),
    ),
    "sys.call.record_stop": (_RES,),
    "sys.call.send_dtmf_start": (_RES, _p("keys", STR)),
    "sys.call.receive_dtmf_start": (
        _RES, _p("valid_keys", STR, "0123456789*#ABCD", True), _p("max_keys", INT, 11, True),
        _p("finish_keys", STR, "#", True), _p("first_key_timeout", NUMBER, 45, True),
        _p("continues_keys_timeout", NUMBER, 30, True), _p("play_content", CONTENT, None),
        _p("play_repeat", INT, 0, True), _p("if_break_on_key", BOOL, True, True),
    ),
    "sys.call.stop_receive_dtmf_start": (_RES,),
    "sys.call.connect_start": (
        _RES, _p("max_seconds", INT, None), _p("call_res_id", STR),
        _p("connect_mode", INT, 1, True), _p("record_file", STR, None),
        _p("record_format", INT, 1, True), _p("local_volume", INT, None),
        _p("remote_volume", INT, None), _p("schedule_play_time", INT, None),
        _p("schedule_play_file", STR, None), _p("schedule_play_loop", INT, 0, True),
    ),
    "sys.call.connect_stop": (_RES,),
    "sys.call.conf_enter": (
        _RES, _p("conf_res_id", STR), _p("max_seconds", INT, None),
        _p("voice_mode", INT, 1, True), _p("volume", INT, None), _p("play_file", STR, None),
    ),
    "sys.call.conf_exit": (_RES, _p("conf_res_id", STR)),
    "sys.conf.construct": (_p("max_seconds", INT, None), _p("user_data", STR, None)),
    "sys.conf.exists": (_RES,),
    "sys.conf.release": (_RES,),
}

#: Longest string parameter accepted, in characters.
MAX_STRING = 2048

#: Longest play-content list.
MAX_CONTENT_ITEMS = 64


def _check(name, kind, value):
    if kind == STR:
        if not isinstance(value, str):
            raise badParam(name, "expected a string")
        if len(value) > MAX_STRING:
            raise badParam(name, f"longer than {MAX_STRING} characters")
    elif kind == INT:
        if isinstance(value, bool) or not isinstance(value, int):
            raise badParam(name, "expected an integer")
    elif kind == NUMBER:
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            raise badParam(name, "expected a number")
    elif kind == BOOL:
        if not isinstance(value, bool):
            raise badParam(name, "expected true or false")
    elif kind == CONTENT:
        if isinstance(value, str):
            if not value or len(value) > MAX_STRING:
                raise badParam(name, "expected a non-empty file name")
        elif isinstance(value, list):
            if not value or len(value) > MAX_CONTENT_ITEMS:
                raise badParam(name, f"expected 1 to {MAX_CONTENT_ITEMS} items")
            for item in value:
                if isinstance(item, str):
                    continue
                if (isinstance(item, list) and 1 <= len(item) <= 3
                        and isinstance(item[0], (str, int, float))
                        and not isinstance(item[0], bool)):
                    continue
                raise badParam(name, "items must be file names or [content, type, options]")
        else:
            raise badParam(name, "expected a file name or a list")
    return value


def checkParams(method, params):
    """
    @param method: a key of L{METHODS}.
    @param params: the request's C{params}: a C{dict} or C{None}.
    @return: a new C{dict} with every parameter of C{method}, defaults
        filled in.
    @raise linkrtc.error.ApiError: -32602 naming the first bad parameter.
    """
    if params is None:
        params = {}
    if not isinstance(params, dict):
        raise badParam("params", "expected an object of named parameters")
    spec = METHODS[method]
    known = {entry[0] for entry in spec}
    for name in params:
        if name not in known:
            raise badParam(str(name)[:40], "unknown parameter")
    out = {}
    for name, kind, default, nullable in spec:
        if name not in params:
            if default is REQUIRED:
                raise badParam(name, "missing")
            out[name] = default
            continue
        value = params[name]
        if value is None:
            if not nullable:
                raise badParam(name, "must not be null")
            out[name] = default if default is not REQUIRED else None
            continue
        out[name] = _check(name, kind, value)
    _ranges(method, out)
    return out


_DTMF = set("0123456789*#ABCDabcd")


def _keys(name, value, allowEmpty=True):
    if value is None:
        return
    if (not value and not allowEmpty) or not set(value) <= _DTMF:
        raise badParam(name, "expected DTMF keys (0-9 * # A-D)")


def _positive(params, name, allowNone=True):
    value = params.get(name)
    if value is None and allowNone:
        return
    if value is None or value <= 0:
        raise badParam(name, "must be a positive number of seconds")


def _ranges(method, p):
    """Value checks beyond the types (seed 001's enumerations and ranges)."""
    for name in ("max_answer_seconds", "max_ring_seconds", "max_seconds"):
        if name in p:
            _positive(p, name)
    if method == "sys.call.drop" and not 200 <= p["cause"] <= 699:
        raise badParam("cause", "expected a SIP status 200..699")
    if method in ("sys.call.record_start", "sys.call.connect_start"):
        if not 1 <= p["record_format"] <= 6:
            raise badParam("record_format", "expected 1..6 (seed 001)")
    if method == "sys.call.record_start" and not p["record_file"]:
        raise badParam("record_file", "must not be empty")
    if method == "sys.call.send_dtmf_start":
        _keys("keys", p["keys"], allowEmpty=False)
    if method in ("sys.call.play_start", "sys.call.record_start"):
        _keys("finish_keys", p["finish_keys"])
    if method == "sys.call.receive_dtmf_start":
        _keys("valid_keys", p["valid_keys"], allowEmpty=False)
        _keys("finish_keys", p["finish_keys"])
        if p["max_keys"] < 1:
            raise badParam("max_keys", "must be at least 1")
        for name in ("first_key_timeout", "continues_keys_timeout"):
            _positive(p, name, allowNone=False)
        if p["play_repeat"] < 0:
            raise badParam("play_repeat", "must not be negative")
    if method == "sys.call.connect_start":
        if p["connect_mode"] not in (1, 2, 3):
            raise badParam("connect_mode", "expected 1, 2 or 3 (seed 001)")
        if p["schedule_play_loop"] < 0:
            raise badParam("schedule_play_loop", "must not be negative")
        if p["schedule_play_loop"] and p["schedule_play_file"]:
            if p["schedule_play_time"] is None:
                raise badParam("schedule_play_time", "needed with schedule_play_file")
    if method == "sys.call.conf_enter":
        if p["voice_mode"] not in (1, 2, 3, 4):
            raise badParam("voice_mode", "expected 1..4 (seed 001)")
