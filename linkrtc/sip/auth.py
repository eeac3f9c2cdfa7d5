# -*- test-case-name: linkrtc.sip.test.test_auth -*-
"""
SIP digest authentication (RFC 3261 §22, with RFC 7616 / RFC 8760 for the
SHA-256 algorithms and RFC 2617 / RFC 2069 compatibility).

The client side:

    - L{parseChallenges} reads C{WWW-Authenticate} / C{Proxy-Authenticate}
      values into L{DigestChallenge}s; L{challengesOf} takes them from a
      401 or 407 response.
    - L{chooseChallenge} picks, among the challenges of one realm, the
      strongest algorithm the credentials can answer
      (SHA-512-256 > SHA-256 > MD5, each before its C{-sess} variant).
    - L{DigestCredentials} holds a username and a password, or a
      precomputed HA1 (which only answers the algorithm it was computed
      with, and only its realm).
    - L{DigestClient} answers challenges for one set of credentials: it
      counts C{nc} per nonce, remembers the last challenge of each realm so
      later requests carry credentials at once (RFC 3261 §22.3 "cache
      credentials"), and decides whether a new challenge may be answered
      (L{DigestClient.shouldAnswer}) so a rejected password gives one clear
      L{DigestAuthError} instead of a storm of requests.

The server side, for tests (a "registrar of our own" for SHA-256, which
SIPp 3.6.1 cannot check): L{makeChallenge} and L{verifyAuthorization}.

Formulas (RFC 7616 §3.4.1-§3.4.3; RFC 3261 §22.4 uses the MD5 ones):

    A1       = username ":" realm ":" password
    HA1      = H(A1)                     (for the -sess variants:
                                          H(H(A1) ":" nonce ":" cnonce))
    A2       = method ":" digest-uri     (qop=auth-int: ":" H(body) added)
    response = H(HA1 ":" nonce ":" nc ":" cnonce ":" qop ":" H(A2))
               or, with no qop (RFC 2069): H(HA1 ":" nonce ":" H(A2))

All hashes are lower-case hex.

The parts: L{linkrtc.sip.digest} (algorithms and the computation),
L{linkrtc.sip.digestheaders} (the header syntax),
L{linkrtc.sip.digestclient} (credentials and the client) and
L{linkrtc.sip.digestserver} (the server side). This module keeps their
names.
"""

from linkrtc.sip.digest import (
    ALGORITHMS,
    QOPS,
    DigestAuthError,
    canonicalAlgorithm,
    computeHA1,
    digestResponse,
    newNonce,
)
from linkrtc.sip.digestclient import DigestClient, DigestCredentials, chooseChallenge
from linkrtc.sip.digestheaders import (
    DigestChallenge,
    challengesOf,
    formatAuthorization,
    parseAuthorization,
    parseChallenges,
)
from linkrtc.sip.digestserver import makeChallenge, verifyAuthorization

__all__ = [
    "ALGORITHMS",
    "QOPS",
    "DigestAuthError",
    "DigestChallenge",
    "DigestCredentials",
    "DigestClient",
    "canonicalAlgorithm",
    "challengesOf",
    "chooseChallenge",
    "computeHA1",
    "digestResponse",
    "formatAuthorization",
    "makeChallenge",
    "newNonce",
    "parseAuthorization",
    "parseChallenges",
    "verifyAuthorization",
]
