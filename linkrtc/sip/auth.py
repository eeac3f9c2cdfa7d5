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
"""

import hashlib
import hmac
import os
from dataclasses import dataclass, field

from twisted.logger import Logger

from linkrtc.error import LinkRTCError

__all__ = [
    "ALGORITHMS",
    "DigestAuthError",
    "DigestChallenge",
    "DigestCredentials",
    "DigestClient",
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

log = Logger()


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


# ---------------------------------------------------------------------------
# Parsing challenges and credentials (RFC 3261 §25.1, RFC 7616 §3.3, §3.4)
# ---------------------------------------------------------------------------

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


# ---------------------------------------------------------------------------
# Credentials and the computation
# ---------------------------------------------------------------------------


class DigestCredentials:
    """
    A username with a password, or with a precomputed HA1.

    @ivar username: C{str}.
    @ivar password: C{str} or C{None}.
    @ivar ha1: C{None}, a hex C{str} (32 digits: MD5; 64 digits: SHA-256),
        or a C{dict} mapping algorithm names (C{"MD5"}, C{"SHA-256"},
        C{"SHA-512-256"}) to hex HA1s. HA1 = H(username:realm:password) is
        specific to its algorithm and realm; it also answers the C{-sess}
        variant of its algorithm.
    @ivar realm: C{str}, a collection of C{str} (several realms: a proxy's
        and a server's), or C{None} to answer any realm (but see
        C{learnRealm}). Given with C{ha1}, it is the realm the HA1 was
        computed for.
    @ivar realms: the C{frozenset} of realms answered, or C{None} for any.
    @ivar learnRealm: C{True} (with C{realm} C{None}): the realm of the
        first challenge answered (L{learn}) becomes the only one answered
        afterwards, by every L{DigestClient} sharing these credentials
        (a trunk's registration and its calls).
    @raise ValueError: neither or both of C{password} and C{ha1}, or an HA1
        whose algorithm cannot be told.
    """

    def __init__(self, username, password=None, ha1=None, realm=None, learnRealm=False):
        if (password is None) == (ha1 is None):
            raise ValueError("give exactly one of password and ha1")
        self.username = username
        self.password = password
        self.realm = realm
        if realm is None:
            self.realms = None
        elif isinstance(realm, str):
            self.realms = frozenset((realm,))
        else:
            self.realms = frozenset(realm)
        self.learnRealm = learnRealm
        self.ha1 = ha1
        self._ha1s = {}
        if isinstance(ha1, str):
            digits = ha1.strip().lower()
            algorithm = {32: "MD5", 64: "SHA-256"}.get(len(digits))
            if algorithm is None:
                raise ValueError("cannot tell the algorithm of an HA1 of %d digits; use a dict"
                                 % (len(digits),))
            self._ha1s[algorithm] = digits
        elif isinstance(ha1, dict):
            for name, digits in ha1.items():
                algorithm = canonicalAlgorithm(name)
                if algorithm is None:
                    raise ValueError("unsupported HA1 algorithm %r" % (name,))
                self._ha1s[_baseAlgorithm(algorithm)] = digits.strip().lower()

    def __repr__(self):
        return "<DigestCredentials %s realm=%r %s>" % (
            self.username, self.realm, "password" if self.password is not None else "HA1")

    def learn(self, realm):
        """
        A challenge of C{realm} is being answered: with C{learnRealm} and
        no realm yet, C{realm} becomes the only realm answered from now on.
        """
        if self.realms is None and self.learnRealm:
            self.realms = frozenset((realm,))
            log.info("digest credentials of {username}: answering realm {realm!r} only "
                     "(learned from the first challenge)", username=self.username, realm=realm)

    def canAnswer(self, challenge):
        """@return: C{True} if these credentials can answer C{challenge}."""
        if self.realms is not None and challenge.realm not in self.realms:
            return False
        if not challenge.supported:
            return False
        return self.password is not None or _baseAlgorithm(challenge.algorithm) in self._ha1s

    def ha1For(self, algorithm, realm):
        """
        @param algorithm: a canonical algorithm name (C{-sess} allowed: the
            base HA1 is returned).
        @return: the hex H(username:realm:password) for C{algorithm}, or
            C{None} if these credentials cannot give it.
        """
        if self.realms is not None and realm not in self.realms:
            return None
        base = _baseAlgorithm(algorithm)
        if self.password is not None:
            return computeHA1(base, self.username, realm, self.password)
        return self._ha1s.get(base)


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


def _strength(challenge):
    order = list(ALGORITHMS)
    try:
        rank = order.index(challenge.algorithm)
    except ValueError:
        rank = len(order)
    return (rank, 0 if challenge.chosenQop() == "auth" else 1)


def chooseChallenge(challenges, credentials=None):
    """
    Pick the challenge to answer among several (RFC 8760 §2.4: a server may
    offer one per algorithm; the client uses the strongest it supports).

    @param challenges: L{DigestChallenge}s, normally of one realm.
    @param credentials: L{DigestCredentials} or C{None} (only the
        algorithm and qop are then checked).
    @return: the strongest answerable L{DigestChallenge}, or C{None}.
    """
    usable = [c for c in challenges
              if (credentials.canAnswer(c) if credentials is not None else c.supported)]
    if not usable:
        return None
    return min(usable, key=_strength)


def newNonce():
    """@return: a fresh random nonce or cnonce (C{str}, 32 hex digits)."""
    return os.urandom(16).hex()


# ---------------------------------------------------------------------------
# The client
# ---------------------------------------------------------------------------


class DigestClient:
    """
    Answers digest challenges for one L{DigestCredentials}.

    The requests of one "attempt" (a request and its re-submissions after
    challenges, RFC 3261 §22.2) share loop state; call L{startAttempt}
    before each new one (a registration refresh, say). Inside an attempt:

        - a realm is answered once with a fresh challenge;
        - challenged again (the same nonce or a new one) without
          C{stale=true}, the credentials were rejected: L{DigestAuthError};
        - with C{stale=true} and a nonce not yet answered, it is answered
          again, at most L{maxStale} times per attempt.

    Across attempts it keeps the last challenge of each realm and answers it
    at once in later requests (L{authorize}), counting C{nc} per nonce
    (RFC 7616 §3.4: 00000001, 00000002, ...). Those pre-emptive answers do
    not count as answers in the loop rule: the server may expire the nonce
    without saying C{stale}, and its fresh challenge is then answered once.

    @ivar credentials: the L{DigestCredentials}.
    @ivar maxStale: stale re-challenges answered per attempt (C{int}).
    """

    maxStale = 3

    def __init__(self, credentials, cnonceFactory=newNonce):
        """
        @param credentials: L{DigestCredentials}.
        @param cnonceFactory: callable returning a fresh cnonce C{str}
            (tests pass a fixed one).
        """
        self.credentials = credentials
        self._cnonce = cnonceFactory
        self._nc = {}  # nonce -> last nc used
        self._cached = {}  # (proxy, realm) -> DigestChallenge
        self._answered = {}  # (proxy, realm) -> nonces answered in this attempt
        self._stale = 0

    def startAttempt(self):
        """Forget the loop state: a new request (not a re-submission) starts."""
        self._answered = {}
        self._stale = 0

    def forget(self):
        """Forget every cached challenge and nonce count (and the loop state)."""
        self._cached.clear()
        self._nc.clear()
        self.startAttempt()

    def nonceCount(self, nonce):
        """@return: how many times C{nonce} was used (C{int})."""
        return self._nc.get(nonce, 0)

    def shouldAnswer(self, challenge):
        """
        Loop safety: may C{challenge}, just received, be answered?

        @return: C{(True, None)} or C{(False, reason)} with C{reason} a
            C{str} saying why not.
        """
        key = (challenge.proxy, challenge.realm)
        answered = self._answered.get(key)
        if not answered:
            return True, None
        if not challenge.stale:
            return False, "credentials rejected for realm %r (challenged again after our answer)" % (
                challenge.realm,)
        if challenge.nonce in answered:
            return False, "realm %r says stale=true but repeats the nonce we answered" % (
                challenge.realm,)
        if self._stale >= self.maxStale:
            return False, "realm %r: too many stale nonces" % (challenge.realm,)
        return True, None

    def answer(self, response):
        """
        Take in the challenges of a 401/407 for the current attempt.

        For each realm challenged, the strongest answerable challenge is
        chosen, checked with L{shouldAnswer} and cached; L{authorize} then
        writes the answers into the re-submitted request.

        @param response: the 401 or 407 L{linkrtc.sip.message.Response}.
        @return: C{list} of the L{DigestChallenge}s chosen.
        @raise DigestAuthError: nothing answerable, or a realm must not be
            answered again (see the class docstring).
        """
        challenges = challengesOf(response)
        if not challenges:
            raise DigestAuthError("%d without a usable Digest challenge" % (response.status,))
        byRealm = {}
        for c in challenges:
            byRealm.setdefault((c.proxy, c.realm), []).append(c)
        chosen = []
        for key, group in byRealm.items():
            realms = getattr(self.credentials, "realms", None)
            if realms is not None and key[1] not in realms:
                raise DigestAuthError("realm %r is not the credentials' (%s): not answered"
                                      % (key[1], ", ".join(sorted(realms))), key[1])
            challenge = chooseChallenge(group, self.credentials)
            if challenge is None:
                offered = ", ".join(sorted({str(c.algorithm) for c in group}))
                raise DigestAuthError(
                    "no credentials or no supported algorithm/qop for realm %r (offered: %s)"
                    % (key[1], offered), key[1])
            ok, reason = self.shouldAnswer(challenge)
            if not ok:
                raise DigestAuthError(reason, challenge.realm)
            self.credentials.learn(challenge.realm)
            if self._answered.get(key):
                self._stale += 1
            self._answered.setdefault(key, set()).add(challenge.nonce)
            self._cached[key] = challenge
            chosen.append(challenge)
        return chosen

    def authorize(self, request):
        """
        Add an C{Authorization} / C{Proxy-Authorization} header to
        C{request} for every cached challenge (replacing any already
        there), each with the next C{nc} of its nonce and a fresh cnonce.

        @param request: a L{linkrtc.sip.message.Request}, complete (method,
            Request-URI, body).
        @return: C{list} of the header values added.
        """
        request.headers.remove("Authorization")
        request.headers.remove("Proxy-Authorization")
        added = []
        uri = str(request.uri)
        for challenge in self._cached.values():
            value = self.authorization(challenge, request.method, uri, request.body)
            if value is None:
                continue
            request.headers.add(challenge.headerName, value)
            added.append(value)
        return added

    def authorization(self, challenge, method, uri, body=b""):
        """
        Compute one answer to C{challenge}, using the next C{nc} of its nonce.

        @param uri: the digest-uri (the Request-URI as text).
        @return: the header value (C{str}), or C{None} when the credentials
            cannot answer it.
        """
        ha1 = self.credentials.ha1For(challenge.algorithm, challenge.realm)
        if ha1 is None or not challenge.supported:
            return None
        qop = challenge.chosenQop()
        nc = cnonce = None
        if qop or challenge.algorithm.lower().endswith("-sess"):
            cnonce = self._cnonce()
        if qop:
            count = self._nc.get(challenge.nonce, 0) + 1
            self._nc[challenge.nonce] = count
            nc = "%08x" % (count,)
        response = digestResponse(challenge.algorithm, ha1, challenge.nonce, method, uri,
                                  qop=qop, nc=nc, cnonce=cnonce, body=body)
        return formatAuthorization(self.credentials.username, challenge, uri, response,
                                   qop=qop, nc=nc, cnonce=cnonce)


# ---------------------------------------------------------------------------
# The server side (test fakes of a registrar / proxy)
# ---------------------------------------------------------------------------


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
    from linkrtc.sip.uri import parseURI

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
