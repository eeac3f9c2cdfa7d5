# -*- test-case-name: linkrtc.sip.test.test_auth -*-
"""
The client side of SIP digest authentication: L{DigestCredentials} (a
username with a password or a precomputed HA1), L{chooseChallenge} and
L{DigestClient}, which answers challenges for one set of credentials.
"""

from twisted.logger import Logger

from linkrtc.sip.digest import (
    ALGORITHMS,
    DigestAuthError,
    _baseAlgorithm,
    canonicalAlgorithm,
    computeHA1,
    digestResponse,
    newNonce,
)
from linkrtc.sip.digestheaders import challengesOf, formatAuthorization

log = Logger()


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
