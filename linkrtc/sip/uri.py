# -*- test-case-name: linkrtc.sip.test.test_uri -*-
"""
SIP, SIPS, tel and other URIs, name-addr/addr-spec values and Via values
(RFC 3261 §19.1, §20.10, §20.42, §25.1; RFC 3966; RFC 5118 for IPv6).

The import path of all of them; each RFC concept lives in its module:
L{linkrtc.sip.sipuri} (URIs, escaping, hosts and ports),
L{linkrtc.sip.headerparams} (comma lists, header parameters, quoted
strings), L{linkrtc.sip.nameaddr} (name-addr, addr-spec) and
L{linkrtc.sip.via} (Via).

Every parser here raises L{SIPParseError} (status 400) on bad syntax; the
reason phrase names the fault.

Escaping (RFC 3261 §19.1.2): user, password, URI parameters and URI headers
are stored I{unescaped} (one pass only: C{value%2541} gives C{value%41},
never C{valueA}) and escaped again by C{str()}. Header parameters of
name-addr and Via values are tokens and are kept exactly as written
(quoted values keep their quotes).
"""

from linkrtc.sip.headerparams import (  # noqa: F401 (re-exported)
    _formatParams,
    _parseHeaderParams,
    _quote,
    _splitSemis,
    splitCommas,
)
from linkrtc.sip.nameaddr import (  # noqa: F401 (re-exported)
    WILDCARD,
    NameAddr,
    _Wildcard,
    parseNameAddr,
    parseNameAddrList,
)
from linkrtc.sip.sipuri import (  # noqa: F401 (re-exported)
    SIPURI,
    AbsoluteURI,
    TelURI,
    _bad,
    _checkHost,
    _escape,
    _fastParams,
    _fastSIPURI,
    _formatHost,
    _parsePort,
    _splitHostPort,
    _unescape,
    parseURI,
)
from linkrtc.sip.via import Via, _parseOneVia, parseVia  # noqa: F401 (re-exported)

__all__ = [
    "SIPURI",
    "TelURI",
    "AbsoluteURI",
    "NameAddr",
    "Via",
    "WILDCARD",
    "parseURI",
    "parseNameAddr",
    "parseNameAddrList",
    "parseVia",
    "splitCommas",
]
