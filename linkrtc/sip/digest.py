# -*- test-case-name: linkrtc.sip.test.test_auth -*-
"""
The digest computation of SIP digest authentication (the formulas are in
L{linkrtc.sip.auth}'s docstring): the algorithms LinkRTC supports, HA1,
the C{response} value, nonces, and L{DigestAuthError}.
"""

import hashlib
import os

from linkrtc.error import LinkRTCError


class DigestAuthError(LinkRTCError):
    """
    A challenge cannot or must not be answered: credentials rejected (the
    same realm challenged again after our answer without C{stale=true}), no
    supported algorithm or qop, no credentials for the realm, or a
    malformed challenge.

    @ivar reason: a short human-readable C{str}.
    @ivar realm: the realm concerned, or C{None}.
    """

    def __init__(self, reason, realm=None):
        super().__init__(reason)
        self.reason = reason
        self.realm = realm


def _sha512_256(data):
    return hashlib.new("sha512_256", data)


def _available(name):
    try:
        hashlib.new(name, b"")
    except (ValueError, TypeError):
        return False
    return True


#: Supported algorithms, strongest first: canonical name -> hash
#: constructor (bytes -> hash object). RFC 8760 §2.
ALGORITHMS = {}
for _name, _factory, _needs in (
    ("SHA-512-256", _sha512_256, "sha512_256"),
    ("SHA-512-256-sess", _sha512_256, "sha512_256"),
    ("SHA-256", hashlib.sha256, None),
    ("SHA-256-sess", hashlib.sha256, None),
    ("MD5", hashlib.md5, None),
    ("MD5-sess", hashlib.md5, None),
):
    if _needs is None or _available(_needs):
        ALGORITHMS[_name] = _factory
del _name, _factory, _needs

_CANONICAL_ALGORITHM = {name.lower(): name for name in ALGORITHMS}

#: The qop values we can answer, preferred first.
QOPS = ("auth", "auth-int")


def canonicalAlgorithm(name):
    """
    @param name: an algorithm as written in a challenge (any case), or
        C{None} (absent: MD5, RFC 2617 §3.2.1).
    @return: the canonical spelling (a key of L{ALGORITHMS}), or C{None}
        when unsupported.
    """
    if name is None:
        return "MD5"
    return _CANONICAL_ALGORITHM.get(name.strip().lower())


def _baseAlgorithm(algorithm):
    """C{"SHA-256-sess"} -> C{"SHA-256"}."""
    return algorithm[:-5] if algorithm.lower().endswith("-sess") else algorithm


def _hash(algorithm, text):
    if isinstance(text, str):
        text = text.encode("utf-8")
    return ALGORITHMS[algorithm](text).hexdigest()


def computeHA1(algorithm, username, realm, password):
    """
    @return: hex H(username ":" realm ":" password) with C{algorithm}'s
        hash (RFC 7616 §3.4.2); for a C{-sess} algorithm this is the base
        value, before nonce and cnonce are mixed in.
    """
    return _hash(_baseAlgorithm(algorithm), "%s:%s:%s" % (username, realm, password))


def digestResponse(algorithm, ha1, nonce, method, uri, qop=None, nc=None, cnonce=None,
                   body=b""):
    """
    The C{response} value (RFC 7616 §3.4.1; RFC 2069 without qop).

    @param algorithm: canonical algorithm name.
    @param ha1: hex H(username:realm:password) for that algorithm (the base
        value for C{-sess}).
    @param nonce: the server's nonce, C{str}.
    @param method: the request method, C{str}.
    @param uri: the digest-uri (the Request-URI as text, RFC 3261 §22.4).
    @param qop: C{"auth"}, C{"auth-int"} or C{None}.
    @param nc: 8 hex digits (C{str}) when C{qop} is given.
    @param cnonce: C{str} when C{qop} is given (and for C{-sess}).
    @param body: the message body (C{bytes}), for C{auth-int}.
    @return: hex C{str}.
    """
    if algorithm.lower().endswith("-sess"):
        ha1 = _hash(algorithm, "%s:%s:%s" % (ha1, nonce, cnonce))
    if qop == "auth-int":
        bodyHash = ALGORITHMS[algorithm](body or b"").hexdigest()
        ha2 = _hash(algorithm, "%s:%s:%s" % (method, uri, bodyHash))
    else:
        ha2 = _hash(algorithm, "%s:%s" % (method, uri))
    if qop:
        return _hash(algorithm, "%s:%s:%s:%s:%s:%s" % (ha1, nonce, nc, cnonce, qop, ha2))
    return _hash(algorithm, "%s:%s:%s" % (ha1, nonce, ha2))


def newNonce():
    """@return: a fresh random nonce or cnonce (C{str}, 32 hex digits)."""
    return os.urandom(16).hex()
