# -*- test-case-name: linkrtc.sip.test.test_auth -*-
"""
The server side of SIP digest authentication, as test fakes of a
registrar or proxy use it: L{makeChallenge} and L{verifyAuthorization}.
"""

import hmac

from linkrtc.sip.digest import QOPS, canonicalAlgorithm, computeHA1, digestResponse, newNonce
from linkrtc.sip.digestheaders import _quote, parseAuthorization
from linkrtc.sip.uri import parseURI


def makeChallenge(realm, nonce=None, algorithm="MD5", qop=("auth",), opaque=None, stale=False,
                  writeAlgorithm=True):
    """
    A C{WWW-Authenticate} / C{Proxy-Authenticate} value.

    @param qop: C{tuple} of qop values; empty for an RFC 2069 challenge.
    @param writeAlgorithm: C{False} to leave C{algorithm} out (means MD5).
    @return: C{str}.
    """
    parts = ["realm=" + _quote(realm), "nonce=" + _quote(nonce or newNonce())]
    if opaque is not None:
        parts.append("opaque=" + _quote(opaque))
    if writeAlgorithm:
        parts.append("algorithm=" + algorithm)
    if qop:
        parts.append("qop=" + _quote(",".join(qop)))
    if stale:
        parts.append("stale=true")
    return "Digest " + ", ".join(parts)


def verifyAuthorization(request, password, realm, nonceCheck=None, username=None,
                        header="Authorization"):
    """
    Check the digest credentials of C{request} for C{realm} (the server
    side of RFC 3261 §22.4 / RFC 7616 §3.4). The digest-uri must be the
    Request-URI (compared as URIs when both parse, else as text).

    @param request: a L{linkrtc.sip.message.Request}.
    @param password: the user's password (C{str}).
    @param realm: C{str}; only credentials for this realm are looked at.
    @param nonceCheck: C{None}, or a callable C{(nonce, nc)} -> C{bool}
        saying whether the nonce is one we issued, still valid, and the nc
        acceptable (C{nc} is the C{str} sent, or C{None}).
    @param username: the expected username, or C{None} for any.
    @param header: C{"Authorization"} or C{"Proxy-Authorization"}.
    @return: C{True} if some credentials for C{realm} are valid.
    """
    for value in request.headers.getAll(header):
        params = parseAuthorization(value)
        if params is None or params.get("realm") != realm:
            continue
        user = params.get("username")
        if user is None or (username is not None and user != username):
            continue
        algorithm = canonicalAlgorithm(params.get("algorithm"))
        nonce, uri, response = params.get("nonce"), params.get("uri"), params.get("response")
        if algorithm is None or nonce is None or uri is None or response is None:
            continue
        if uri != str(request.uri):
            try:
                if parseURI(uri) != request.uri:
                    continue
            except Exception:
                continue
        qop = params.get("qop")
        nc, cnonce = params.get("nc"), params.get("cnonce")
        if qop is not None:
            qop = qop.lower()
            if qop not in QOPS or not nc or cnonce is None:
                continue
        elif algorithm.lower().endswith("-sess"):
            continue
        if nonceCheck is not None and not nonceCheck(nonce, nc):
            continue
        expected = digestResponse(algorithm, computeHA1(algorithm, user, realm, password),
                                  nonce, request.method, uri, qop=qop, nc=nc, cnonce=cnonce,
                                  body=request.body)
        if hmac.compare_digest(expected, response.lower()):
            return True
    return False
