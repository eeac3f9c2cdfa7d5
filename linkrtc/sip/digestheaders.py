# -*- test-case-name: linkrtc.sip.test.test_auth -*-
"""
The header syntax of SIP digest authentication (RFC 3261 §25.1, RFC 7616
§3.3, §3.4): challenges (C{WWW-Authenticate}, C{Proxy-Authenticate}) read
into L{DigestChallenge}s, credentials (C{Authorization},
C{Proxy-Authorization}) read and written.
"""

from dataclasses import dataclass, field

from twisted.logger import Logger

from linkrtc.sip.digest import ALGORITHMS, QOPS, canonicalAlgorithm

log = Logger()

_TOKEN = frozenset("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-.!%*_+`'~")


class _Scanner:
    """A tiny cursor over an auth header value."""

    def __init__(self, text):
        self.text = text
        self.pos = 0

    def skipSpace(self):
        while self.pos < len(self.text) and self.text[self.pos] in " \t\r\n":
            self.pos += 1

    def atEnd(self):
        self.skipSpace()
        return self.pos >= len(self.text)

    def peek(self):
        self.skipSpace()
        return self.text[self.pos] if self.pos < len(self.text) else ""

    def token(self):
        self.skipSpace()
        start = self.pos
        while self.pos < len(self.text) and self.text[self.pos] in _TOKEN:
            self.pos += 1
        return self.text[start:self.pos]

    def quoted(self):
        """Read a quoted-string (the cursor is on the opening quote)."""
        self.pos += 1
        out = []
        while self.pos < len(self.text):
            c = self.text[self.pos]
            if c == "\\" and self.pos + 1 < len(self.text):
                out.append(self.text[self.pos + 1])
                self.pos += 2
                continue
            if c == '"':
                self.pos += 1
                return "".join(out)
            out.append(c)
            self.pos += 1
        raise ValueError("unterminated quoted string")

    def value(self):
        if self.peek() == '"':
            return self.quoted(), True
        self.skipSpace()
        start = self.pos
        while self.pos < len(self.text) and self.text[self.pos] not in ", \t":
            self.pos += 1
        return self.text[start:self.pos], False


def _parseAuthValues(text):
    """
    Parse one header value holding one or more C{scheme param=value, ...}
    groups (RFC 7235 §4.1 style; SIP normally has one per header).

    @return: C{list} of C{(scheme, {lower-case name: value})}.
    @raise ValueError: malformed.
    """
    scanner = _Scanner(text)
    result = []
    while not scanner.atEnd():
        if scanner.peek() == ",":
            scanner.pos += 1
            continue
        scheme = scanner.token()
        if not scheme:
            raise ValueError("expected an auth scheme at %r" % (text[scanner.pos:],))
        params = {}
        result.append((scheme, params))
        while not scanner.atEnd():
            save = scanner.pos
            name = scanner.token()
            if not name:
                if scanner.peek() == ",":
                    scanner.pos += 1
                    continue
                raise ValueError("bad auth parameter at %r" % (text[scanner.pos:],))
            if scanner.peek() != "=":
                # A new scheme starts here.
                scanner.pos = save
                break
            scanner.pos += 1
            value, _ = scanner.value()
            params[name.lower()] = value
            if scanner.peek() == ",":
                scanner.pos += 1
            elif not scanner.atEnd():
                raise ValueError("expected ',' at %r" % (text[scanner.pos:],))
    return result


@dataclass
class DigestChallenge:
    """
    One C{Digest} challenge (RFC 3261 §20.44 / §20.27, RFC 7616 §3.3).

    @ivar realm: C{str}.
    @ivar nonce: C{str}.
    @ivar opaque: C{str} or C{None}.
    @ivar algorithm: the canonical algorithm name (C{"MD5"} when absent),
        or the name as written when unsupported (see L{supported}).
    @ivar algorithmGiven: C{True} if the challenge named an algorithm.
    @ivar qop: C{tuple} of lower-case qop values offered (empty: RFC 2069).
    @ivar stale: C{True} for C{stale=true}.
    @ivar proxy: C{True} if it came in C{Proxy-Authenticate} (a 407): it is
        then answered in C{Proxy-Authorization}.
    @ivar params: every parameter, C{{lower-case name: str}}.
    """

    realm: str
    nonce: str
    opaque: "str | None" = None
    algorithm: str = "MD5"
    algorithmGiven: bool = False
    qop: tuple = ()
    stale: bool = False
    proxy: bool = False
    params: dict = field(default_factory=dict)

    @property
    def supported(self):
        """C{True} if we know the algorithm and can use one of the offered qops (or none)."""
        return self.algorithm in ALGORITHMS and self.chosenQop() is not False

    def chosenQop(self):
        """
        @return: the qop we would answer with: C{"auth"}, C{"auth-int"},
            C{None} (no qop offered: RFC 2069 mode), or C{False} when only
            unknown qops are offered (or a C{-sess} algorithm without qop).
        """
        if not self.qop:
            if self.algorithm.lower().endswith("-sess"):
                return False
            return None
        for qop in QOPS:
            if qop in self.qop:
                return qop
        return False

    @property
    def headerName(self):
        """C{"Proxy-Authorization"} or C{"Authorization"}: where the answer goes."""
        return "Proxy-Authorization" if self.proxy else "Authorization"


def parseChallenges(value, proxy=False):
    """
    Parse a C{WWW-Authenticate} or C{Proxy-Authenticate} header value.

    @param value: C{str}.
    @param proxy: C{True} if the value came from C{Proxy-Authenticate}.
    @return: C{list} of L{DigestChallenge} (non-Digest schemes and Digest
        challenges without realm or nonce are left out).
    @raise ValueError: the value cannot be parsed at all.
    """
    challenges = []
    for scheme, params in _parseAuthValues(value):
        if scheme.lower() != "digest":
            continue
        if "realm" not in params or "nonce" not in params:
            log.info("Digest challenge without realm or nonce ignored: {value}", value=value)
            continue
        given = params.get("algorithm")
        algorithm = canonicalAlgorithm(given) or given
        qop = tuple(q.strip().lower() for q in params.get("qop", "").split(",") if q.strip())
        challenges.append(
            DigestChallenge(
                realm=params["realm"],
                nonce=params["nonce"],
                opaque=params.get("opaque"),
                algorithm=algorithm,
                algorithmGiven=given is not None,
                qop=qop,
                stale=params.get("stale", "").strip().lower() == "true",
                proxy=proxy,
                params=params,
            )
        )
    return challenges


def challengesOf(response):
    """
    The digest challenges of a 401 (C{WWW-Authenticate}) or 407
    (C{Proxy-Authenticate}) response; unparseable header values are logged
    and skipped.

    @param response: a L{linkrtc.sip.message.Response}.
    @return: C{list} of L{DigestChallenge}, in header order.
    """
    result = []
    for name, proxy in (("WWW-Authenticate", False), ("Proxy-Authenticate", True)):
        for value in response.headers.getAll(name):
            try:
                result.extend(parseChallenges(value, proxy=proxy))
            except ValueError as e:
                log.warn("Unparseable {header}: {value} ({error})", header=name, value=value,
                         error=str(e))
    return result


def parseAuthorization(value):
    """
    Parse an C{Authorization} / C{Proxy-Authorization} value.

    @return: C{{lower-case name: str}} of the Digest parameters, or C{None}
        if the value is not Digest or cannot be parsed.
    """
    try:
        parsed = _parseAuthValues(value)
    except ValueError:
        return None
    for scheme, params in parsed:
        if scheme.lower() == "digest":
            return params
    return None


def _quote(text):
    return '"%s"' % (str(text).replace("\\", "\\\\").replace('"', '\\"'),)


def formatAuthorization(username, challenge, uri, response, qop=None, nc=None, cnonce=None):
    """
    The C{Authorization} / C{Proxy-Authorization} value (RFC 3261 §25.1,
    RFC 8760 §2.4): quoted username, realm, nonce, uri, response, cnonce and
    opaque; bare algorithm, qop and nc.

    @return: C{str}.
    """
    parts = [
        "username=" + _quote(username),
        "realm=" + _quote(challenge.realm),
        "nonce=" + _quote(challenge.nonce),
        "uri=" + _quote(uri),
        "response=" + _quote(response),
    ]
    if challenge.algorithmGiven:
        parts.append("algorithm=" + challenge.algorithm)
    if qop:
        parts.append("cnonce=" + _quote(cnonce))
        parts.append("qop=" + qop)
        parts.append("nc=" + nc)
    if challenge.opaque is not None:
        parts.append("opaque=" + _quote(challenge.opaque))
    return "Digest " + ", ".join(parts)
