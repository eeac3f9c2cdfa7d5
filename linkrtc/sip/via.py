# -*- test-case-name: linkrtc.sip.test.test_uri -*-
"""
Via values (RFC 3261 §20.42, §18.2.1; RFC 3581 rport; RFC 4475 §3.1.1.1
for LWS). Re-exported by L{linkrtc.sip.uri}.
"""

import re

from linkrtc.sip.headerparams import _formatParams, _parseHeaderParams, splitCommas
from linkrtc.sip.sipuri import _WS, _bad, _checkHost, _fastParams, _formatHost, _parsePort

__all__ = ["Via", "parseVia"]



class Via:
    """
    One Via value (RFC 3261 §20.42, §18.2.1).

    @ivar protocol: C{'SIP/2.0'} (LWS removed).
    @ivar transport: upper-case, C{'UDP'}, C{'TCP'}, C{'TLS'}, ...
    @ivar host: sent-by host; IPv6 keeps its brackets.
    @ivar port: sent-by port, C{int} or C{None}.
    @ivar params: ordered C{dict}; names lower-case, values as written
        (C{received} may hold an IPv6 address with or without brackets),
        C{None} for flags such as C{rport}.
    """

    __slots__ = ("transport", "host", "port", "params", "protocol")

    def __init__(self, transport="UDP", host="", port=None, params=None, protocol="SIP/2.0"):
        self.transport = transport
        self.host = host
        self.port = port
        self.params = {} if params is None else params
        self.protocol = protocol

    def _param(name):
        def get(self):
            return self.params.get(name)

        def set(self, value):
            self.params[name] = value

        return property(get, set, doc="The C{%s} parameter (C{str}) or C{None}." % (name,))

    branch = _param("branch")
    received = _param("received")
    maddr = _param("maddr")
    del _param

    @property
    def rport(self):
        """
        RFC 3581 C{rport}: C{None} if absent, C{True} if present without a
        value, else the port (C{int}). Set to C{True}, an C{int} or C{None}.

        @raise SIPParseError: a value that is not a port.
        """
        params = self.params
        if "rport" not in params:
            return None
        value = params["rport"]
        if value is None:
            return True
        return _parsePort(value, "rport in Via")

    @rport.setter
    def rport(self, value):
        if value is None:
            self.params.pop("rport", None)
        elif value is True:
            self.params["rport"] = None
        else:
            self.params["rport"] = str(int(value))

    @property
    def ttl(self):
        """The C{ttl} parameter as C{int} (0-255) or C{None}."""
        value = self.params.get("ttl")
        if value is None:
            return None
        if not value.isdigit() or int(value) > 255:
            raise _bad("Bad ttl in Via")
        return int(value)

    @property
    def sentBy(self):
        """C{(host, port)}; port is C{None} when absent."""
        return (self.host, self.port)

    def copy(self):
        new = _newVia(Via)
        new.transport = self.transport
        new.host = self.host
        new.port = self.port
        new.params = dict(self.params)
        new.protocol = self.protocol
        return new

    def __str__(self):
        return "%s/%s %s%s" % (self.protocol, self.transport,
                               _formatHost(self.host, self.port), _formatParams(self.params))

    def __repr__(self):
        return "<Via %s>" % (self,)

    def __eq__(self, other):
        if not isinstance(other, Via):
            return NotImplemented
        return (self.protocol == other.protocol and self.transport == other.transport
                and self.host.lower() == other.host.lower() and self.port == other.port
                and self.params == other.params)

    def __hash__(self):
        return hash((self.transport, self.host.lower(), self.port))


_VIA_RE = re.compile(
    r"[ \t]*([A-Za-z0-9\-.!%*_+`'~]+)[ \t]*/[ \t]*([A-Za-z0-9\-.!%*_+`'~]+)[ \t]*/[ \t]*"
    r"([A-Za-z0-9\-.!%*_+`'~]+)[ \t]+(\[[0-9A-Fa-f:.]*\]|[A-Za-z0-9\-_.]+)"
    r"(?:[ \t]*:[ \t]*([0-9]+))?[ \t]*"
)
_VIA_SIMPLE = re.compile(
    r"SIP/2\.0/([A-Z]+) ([A-Za-z0-9](?:[A-Za-z0-9\-.]*[A-Za-z0-9])?)(?::([0-9]{1,5}))?"
    r"((?:;[A-Za-z0-9\-.!%*_+`'~]+(?:=[A-Za-z0-9\-.!%*_+`'~:]+)?)*)"
).fullmatch


_newVia = object.__new__


def _parseOneVia(text):
    m = _VIA_SIMPLE(text)
    if m is not None:
        transport, host, port, rest = m.groups()
        if port is not None:
            port = int(port)
            if port > 65535:
                raise _bad("Bad port in Via")
        params = _fastParams(rest)
        # (the host pattern of _VIA_SIMPLE only takes what _checkHost accepts)
        via = _newVia(Via)
        via.transport = transport
        via.host = host
        via.port = port
        via.params = params
        via.protocol = "SIP/2.0"
        return via
    m = _VIA_RE.match(text)
    if m is None:
        raise _bad("Bad Via")
    name, version, transport, host, port = m.groups()
    if port is not None:
        port = _parsePort(port, "Via port")
    _checkHost(host, "Via host")
    params = _parseHeaderParams(text[m.end() :], "Via")
    return Via(transport.upper(), host, port, params, "%s/%s" % (name.upper(), version))


def parseVia(text):
    """
    Parse a Via header value, which may hold several comma-separated
    via-parms (RFC 3261 §20.42). LWS may appear around C{/}, C{:}, C{;}
    and C{=} (RFC 4475 §3.1.1.1).

    @rtype: C{list} of L{Via}
    @raise SIPParseError: bad syntax or an empty element.
    """
    if "," not in text:
        return [_parseOneVia(text.strip(_WS))]
    out = []
    for item in splitCommas(text):
        if not item:
            raise _bad("Empty element in Via")
        out.append(_parseOneVia(item))
    return out
