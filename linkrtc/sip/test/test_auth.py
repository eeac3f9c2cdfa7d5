"""
Tests for L{linkrtc.sip.auth}: digest computation against published vectors
(RFC 2617 §3.5, RFC 7616 §3.9.1), challenge parsing and choice, the client's
nonce counting and loop safety, and client -> verifier round trips.
"""

import hashlib

from twisted.trial.unittest import SynchronousTestCase

from linkrtc.sip import auth
from linkrtc.sip.auth import (
    DigestAuthError,
    DigestChallenge,
    DigestClient,
    DigestCredentials,
    challengesOf,
    chooseChallenge,
    computeHA1,
    digestResponse,
    makeChallenge,
    parseAuthorization,
    parseChallenges,
    verifyAuthorization,
)
from linkrtc.sip.message import Headers, Request, Response

# RFC 7616 §3.9.1.
R7616 = dict(
    username="Mufasa", password="Circle of Life", realm="http-auth@example.org",
    nonce="7ypf/xlj9XXwfDPEoM4URrv/xwf94BcCAzFZH4GiTo0v",
    cnonce="f2/wE4q74E6zIJEtWaHKaf5wv/H5QzzpXusqGemxURZJ", nc="00000001", qop="auth",
    method="GET", uri="/dir/index.html",
)


def H(name, text):
    return hashlib.new(name, text.encode()).hexdigest()


def register(uri="sip:registrar.example.com", body=b""):
    headers = Headers()
    headers.add("Via", "SIP/2.0/UDP 192.0.2.1:5060;branch=z9hG4bKabc")
    headers.add("From", "<sip:alice@example.com>;tag=1")
    headers.add("To", "<sip:alice@example.com>")
    headers.add("Call-ID", "c1@example.com")
    headers.add("CSeq", "1 REGISTER")
    return Request("REGISTER", uri, headers, body)


def challenge401(*values, status=401):
    response = Response(status)
    name = "Proxy-Authenticate" if status == 407 else "WWW-Authenticate"
    for value in values:
        response.headers.add(name, value)
    return response


class KnownAnswerTests(SynchronousTestCase):
    """The response formula against published examples and a fresh computation."""

    def test_rfc7616MD5(self):
        """RFC 7616 §3.9.1, MD5: response 8ca523f5e9506fed4657c9700eebdbec."""
        v = R7616
        ha1 = computeHA1("MD5", v["username"], v["realm"], v["password"])
        self.assertEqual(ha1, H("md5", "Mufasa:http-auth@example.org:Circle of Life"))
        response = digestResponse("MD5", ha1, v["nonce"], v["method"], v["uri"], qop="auth",
                                  nc=v["nc"], cnonce=v["cnonce"])
        self.assertEqual(response, "8ca523f5e9506fed4657c9700eebdbec")

    def test_rfc7616SHA256(self):
        """RFC 7616 §3.9.1, SHA-256."""
        v = R7616
        ha1 = computeHA1("SHA-256", v["username"], v["realm"], v["password"])
        response = digestResponse("SHA-256", ha1, v["nonce"], v["method"], v["uri"],
                                  qop="auth", nc=v["nc"], cnonce=v["cnonce"])
        self.assertEqual(response,
                         "753927fa0e85d155564e2e272a28d1802ca10daf4496794697cf8db5856cb6c1")

    def test_freshFormula(self):
        """The SHA-256 value recomputed step by step from RFC 7616 §3.4.1."""
        v = R7616
        ha1 = H("sha256", "%s:%s:%s" % (v["username"], v["realm"], v["password"]))
        ha2 = H("sha256", "%s:%s" % (v["method"], v["uri"]))
        expected = H("sha256", ":".join([ha1, v["nonce"], v["nc"], v["cnonce"], "auth", ha2]))
        self.assertEqual(
            digestResponse("SHA-256", ha1, v["nonce"], "GET", v["uri"], "auth", v["nc"],
                           v["cnonce"]), expected)

    def test_rfc2617(self):
        """RFC 2617 §3.5: response 6629fae49393a05397450978507c4ef1."""
        ha1 = computeHA1("MD5", "Mufasa", "testrealm@host.com", "Circle Of Life")
        self.assertEqual(
            digestResponse("MD5", ha1, "dcd98b7102dd2f0e8b11d0f600bfb0c093", "GET",
                           "/dir/index.html", qop="auth", nc="00000001", cnonce="0a4f113b"),
            "6629fae49393a05397450978507c4ef1")

    def test_rfc2069(self):
        """Without qop: H(HA1:nonce:HA2) (RFC 2069, RFC 3261 §22.4)."""
        ha1 = H("md5", "bob:biloxi.com:zanzibar")
        ha2 = H("md5", "REGISTER:sip:biloxi.com")
        self.assertEqual(digestResponse("MD5", ha1, "n0nce", "REGISTER", "sip:biloxi.com"),
                         H("md5", "%s:n0nce:%s" % (ha1, ha2)))

    def test_sess(self):
        """-sess: HA1 becomes H(H(A1):nonce:cnonce) (RFC 7616 §3.4.2)."""
        base = H("sha256", "bob:biloxi.com:zanzibar")
        ha1 = H("sha256", "%s:N:C" % (base,))
        ha2 = H("sha256", "REGISTER:sip:biloxi.com")
        self.assertEqual(
            digestResponse("SHA-256-sess", base, "N", "REGISTER", "sip:biloxi.com", "auth",
                           "00000001", "C"),
            H("sha256", "%s:N:00000001:C:auth:%s" % (ha1, ha2)))

    def test_authInt(self):
        """qop=auth-int hashes the body into A2 (RFC 7616 §3.4.3)."""
        ha1 = H("md5", "bob:r:p")
        ha2 = H("md5", "INVITE:sip:x:%s" % (H("md5", "v=0\r\n"),))
        self.assertEqual(
            digestResponse("MD5", ha1, "N", "INVITE", "sip:x", "auth-int", "00000001", "C",
                           body=b"v=0\r\n"),
            H("md5", "%s:N:00000001:C:auth-int:%s" % (ha1, ha2)))


class ParseTests(SynchronousTestCase):
    def test_full(self):
        """Every parameter, quoted or not; qop list; stale; algorithm canonicalised."""
        [c] = parseChallenges(
            'Digest realm="atlanta.com", domain="sip:ss1.carrier.com", '
            'qop="auth,auth-int", nonce="f84f1cec41e6cbe5aea9c8e88d359", '
            'opaque="", stale=TRUE, algorithm=sha-256')
        self.assertEqual(c.realm, "atlanta.com")
        self.assertEqual(c.nonce, "f84f1cec41e6cbe5aea9c8e88d359")
        self.assertEqual(c.opaque, "")
        self.assertEqual(c.qop, ("auth", "auth-int"))
        self.assertTrue(c.stale)
        self.assertEqual(c.algorithm, "SHA-256")
        self.assertTrue(c.algorithmGiven)
        self.assertFalse(c.proxy)
        self.assertEqual(c.chosenQop(), "auth")

    def test_defaults(self):
        """No algorithm: MD5; no qop: RFC 2069 mode; escapes in quoted strings."""
        [c] = parseChallenges('Digest realm="a \\"b\\"",nonce=xyz')
        self.assertEqual(c.realm, 'a "b"')
        self.assertEqual(c.nonce, "xyz")
        self.assertEqual(c.algorithm, "MD5")
        self.assertFalse(c.algorithmGiven)
        self.assertEqual(c.qop, ())
        self.assertIsNone(c.chosenQop())
        self.assertFalse(c.stale)

    def test_severalInOneValue(self):
        """Several challenges in one value; non-Digest schemes and incomplete ones skipped."""
        cs = parseChallenges(
            'Basic realm="x", Digest realm="r", nonce="1", algorithm=SHA-256, '
            'Digest realm="r", nonce="2", algorithm=MD5, Digest realm="r"')
        self.assertEqual([(c.nonce, c.algorithm) for c in cs], [("1", "SHA-256"), ("2", "MD5")])

    def test_malformed(self):
        self.assertRaises(ValueError, parseChallenges, 'Digest realm="unterminated')
        self.assertRaises(ValueError, parseChallenges, 'Digest realm="a" nonce="b"')

    def test_unsupported(self):
        """Unknown algorithms or qops make a challenge unsupported; -sess needs qop."""
        [a] = parseChallenges('Digest realm="r", nonce="n", algorithm=AKAv1-MD5')
        self.assertFalse(a.supported)
        [b] = parseChallenges('Digest realm="r", nonce="n", qop="auth-conf"')
        self.assertFalse(b.supported)
        [c] = parseChallenges('Digest realm="r", nonce="n", algorithm=MD5-sess')
        self.assertFalse(c.supported)
        [d] = parseChallenges('Digest realm="r", nonce="n", qop="auth-int"')
        self.assertEqual(d.chosenQop(), "auth-int")

    def test_challengesOf(self):
        """401 -> WWW-Authenticate; 407 -> Proxy-Authenticate (answered in Proxy-Authorization)."""
        r = challenge401('Digest realm="p", nonce="n"', status=407)
        r.headers.add("WWW-Authenticate", "Digest realm=\"garbage")
        [c] = challengesOf(r)
        self.assertTrue(c.proxy)
        self.assertEqual(c.headerName, "Proxy-Authorization")

    def test_parseAuthorization(self):
        params = parseAuthorization('Digest username="a", nc=00000001, qop=auth')
        self.assertEqual(params, {"username": "a", "nc": "00000001", "qop": "auth"})
        self.assertIsNone(parseAuthorization('Basic abc=='))
        self.assertIsNone(parseAuthorization('Digest username="a'))


class ChooseTests(SynchronousTestCase):
    def challenges(self):
        return parseChallenges(
            'Digest realm="r", nonce="1", algorithm=MD5, qop="auth", '
            'Digest realm="r", nonce="2", algorithm=SHA-256, qop="auth", '
            'Digest realm="r", nonce="3", algorithm=SHA-256-sess, qop="auth"')

    def test_strongest(self):
        """With a password, SHA-256 beats MD5 and its -sess variant (RFC 8760 §2.4)."""
        c = chooseChallenge(self.challenges(), DigestCredentials("u", "p"))
        self.assertEqual(c.algorithm, "SHA-256")

    def test_ha1Specific(self):
        """An MD5 HA1 answers only MD5; a SHA-256 HA1 only SHA-256 (and -sess)."""
        md5 = DigestCredentials("u", ha1=computeHA1("MD5", "u", "r", "p"))
        self.assertEqual(chooseChallenge(self.challenges(), md5).algorithm, "MD5")
        sha = DigestCredentials("u", ha1={"SHA-256": computeHA1("SHA-256", "u", "r", "p")})
        self.assertEqual(chooseChallenge(self.challenges(), sha).algorithm, "SHA-256")
        self.assertIsNone(chooseChallenge(
            parseChallenges('Digest realm="r", nonce="1"'), sha))

    def test_realm(self):
        """Credentials bound to a realm answer only that realm."""
        creds = DigestCredentials("u", "p", realm="other")
        self.assertIsNone(chooseChallenge(self.challenges(), creds))

    def test_credentialsErrors(self):
        self.assertRaises(ValueError, DigestCredentials, "u")
        self.assertRaises(ValueError, DigestCredentials, "u", "p", ha1="0" * 32)
        self.assertRaises(ValueError, DigestCredentials, "u", ha1="abc")
        self.assertRaises(ValueError, DigestCredentials, "u", ha1={"AKA": "00"})


class ClientTests(SynchronousTestCase):
    def setUp(self):
        self.cnonces = iter("c%d" % i for i in range(100))
        self.client = DigestClient(DigestCredentials("alice", "secret"),
                                   cnonceFactory=lambda: next(self.cnonces))

    def params(self, request, name="Authorization"):
        return parseAuthorization(request.headers.get(name))

    def test_answer(self):
        """A challenge is answered in Authorization with qop=auth, nc=00000001 and opaque."""
        self.client.answer(challenge401(makeChallenge("r", "N1", opaque="op")))
        request = register()
        self.client.authorize(request)
        p = self.params(request)
        self.assertEqual(
            {k: p[k] for k in ("username", "realm", "nonce", "uri", "qop", "nc", "cnonce",
                               "opaque", "algorithm")},
            {"username": "alice", "realm": "r", "nonce": "N1", "uri": "sip:registrar.example.com",
             "qop": "auth", "nc": "00000001", "cnonce": "c0", "opaque": "op", "algorithm": "MD5"})
        ha1 = computeHA1("MD5", "alice", "r", "secret")
        self.assertEqual(p["response"], digestResponse("MD5", ha1, "N1", "REGISTER",
                                                       "sip:registrar.example.com", "auth",
                                                       "00000001", "c0"))

    def test_wireFormat(self):
        """Quoted values are quoted, algorithm/qop/nc bare (RFC 3261 §25.1)."""
        self.client.answer(challenge401(makeChallenge("r", "N1")))
        request = register()
        self.client.authorize(request)
        value = request.headers.get("Authorization")
        self.assertTrue(value.startswith('Digest username="alice", realm="r", nonce="N1", '
                                         'uri="sip:registrar.example.com", response="'))
        self.assertIn(", algorithm=MD5, ", value)
        self.assertIn(', cnonce="c0", qop=auth, nc=00000001', value)

    def test_ncPerNonce(self):
        """nc counts each use of a nonce: 1, 2, 3; a new nonce starts at 1 again."""
        self.client.answer(challenge401(makeChallenge("r", "N1")))
        ncs = []
        for _ in range(3):
            request = register()
            self.client.authorize(request)
            ncs.append(self.params(request)["nc"])
        self.assertEqual(ncs, ["00000001", "00000002", "00000003"])
        self.client.startAttempt()
        self.client.answer(challenge401(makeChallenge("r", "N2")))
        request = register()
        self.client.authorize(request)
        self.assertEqual(self.params(request)["nc"], "00000001")
        self.assertEqual(self.client.nonceCount("N1"), 3)

    def test_rfc2069(self):
        """Without qop, no cnonce, nc or qop is sent and algorithm is not added."""
        self.client.answer(challenge401(makeChallenge("r", "N1", qop=(), writeAlgorithm=False)))
        request = register()
        self.client.authorize(request)
        p = self.params(request)
        for name in ("qop", "nc", "cnonce", "algorithm"):
            self.assertNotIn(name, p)
        self.assertTrue(verifyAuthorization(request, "secret", "r"))

    def test_proxyAndRegistrar(self):
        """A 407 then a 401: the re-submission carries both answers."""
        self.client.answer(challenge401(makeChallenge("proxy", "P1"), status=407))
        self.client.answer(challenge401(makeChallenge("reg", "R1")))
        request = register()
        self.client.authorize(request)
        self.assertEqual(self.params(request, "Proxy-Authorization")["realm"], "proxy")
        self.assertEqual(self.params(request)["realm"], "reg")
        self.assertTrue(verifyAuthorization(request, "secret", "proxy",
                                            header="Proxy-Authorization"))
        self.assertTrue(verifyAuthorization(request, "secret", "reg"))

    def test_strongestChosen(self):
        """Offered MD5 and SHA-256, the client answers SHA-256."""
        self.client.answer(challenge401(makeChallenge("r", "N1"),
                                        makeChallenge("r", "N2", algorithm="SHA-256")))
        request = register()
        self.client.authorize(request)
        self.assertEqual(self.params(request)["algorithm"], "SHA-256")
        self.assertEqual(len(request.headers.getAll("Authorization")), 1)

    def test_sameNonceAgain(self):
        """The same nonce again after our answer, not stale: one clear error."""
        self.client.answer(challenge401(makeChallenge("r", "N1")))
        c = parseChallenges(makeChallenge("r", "N1"))[0]
        ok, reason = self.client.shouldAnswer(c)
        self.assertFalse(ok)
        self.assertIn("credentials rejected", reason)
        e = self.assertRaises(DigestAuthError, self.client.answer,
                              challenge401(makeChallenge("r", "N1")))
        self.assertEqual(e.realm, "r")

    def test_newNonceNotStale(self):
        """A new nonce without stale=true after our answer also means rejected credentials."""
        self.client.answer(challenge401(makeChallenge("r", "N1")))
        self.assertRaises(DigestAuthError, self.client.answer,
                          challenge401(makeChallenge("r", "N2")))

    def test_stale(self):
        """stale=true with a new nonce is answered; with the answered nonce it is not."""
        self.client.answer(challenge401(makeChallenge("r", "N1")))
        self.assertEqual(self.client.shouldAnswer(
            parseChallenges(makeChallenge("r", "N1", stale=True))[0])[0], False)
        self.client.answer(challenge401(makeChallenge("r", "N2", stale=True)))
        request = register()
        self.client.authorize(request)
        self.assertEqual(self.params(request)["nonce"], "N2")

    def test_staleBounded(self):
        """Stale re-challenges are answered at most maxStale times per attempt."""
        self.client.answer(challenge401(makeChallenge("r", "N0")))
        for i in range(DigestClient.maxStale):
            self.client.answer(challenge401(makeChallenge("r", "S%d" % i, stale=True)))
        self.assertRaises(DigestAuthError, self.client.answer,
                          challenge401(makeChallenge("r", "S9", stale=True)))

    def test_newAttempt(self):
        """A new attempt (e.g. a refresh) may answer the realm again, once."""
        self.client.answer(challenge401(makeChallenge("r", "N1")))
        self.client.startAttempt()
        self.client.answer(challenge401(makeChallenge("r", "N2")))
        self.assertRaises(DigestAuthError, self.client.answer,
                          challenge401(makeChallenge("r", "N3")))

    def test_nothingUsable(self):
        """No Digest challenge, or none answerable: DigestAuthError."""
        self.assertRaises(DigestAuthError, self.client.answer, challenge401('Basic realm="x"'))
        e = self.assertRaises(DigestAuthError, self.client.answer,
                              challenge401('Digest realm="r", nonce="n", algorithm=AKAv1-MD5'))
        self.assertIn("AKAv1-MD5", e.reason)

    def test_forget(self):
        self.client.answer(challenge401(makeChallenge("r", "N1")))
        self.client.forget()
        request = register()
        self.assertEqual(self.client.authorize(request), [])
        self.assertNotIn("Authorization", request.headers)


class RoundTripTests(SynchronousTestCase):
    """Client answers checked by the server-side verifier."""

    def roundTrip(self, credentials, algorithm, qop=("auth",), password="secret", **kw):
        client = DigestClient(credentials)
        client.answer(challenge401(makeChallenge("reg.example", "N1", algorithm=algorithm,
                                                 qop=qop, opaque="o")))
        request = register(**kw)
        client.authorize(request)
        self.assertEqual(parseAuthorization(request.headers.get("Authorization"))["algorithm"],
                         algorithm)
        return verifyAuthorization(request, password, "reg.example",
                                   nonceCheck=lambda nonce, nc: nonce == "N1")

    def test_algorithms(self):
        """MD5, MD5-sess, SHA-256, SHA-256-sess (and SHA-512-256 if available) verify."""
        for algorithm in auth.ALGORITHMS:
            self.assertTrue(self.roundTrip(DigestCredentials("alice", "secret"), algorithm),
                            algorithm)

    def test_authInt(self):
        self.assertTrue(self.roundTrip(DigestCredentials("alice", "secret"), "SHA-256",
                                       qop=("auth-int",), body=b"hello"))

    def test_ha1(self):
        """Credentials from a precomputed HA1 (MD5 and SHA-256) verify."""
        for algorithm in ("MD5", "SHA-256"):
            ha1 = computeHA1(algorithm, "alice", "reg.example", "secret")
            self.assertTrue(self.roundTrip(DigestCredentials("alice", ha1=ha1), algorithm))

    def test_wrongPassword(self):
        self.assertFalse(self.roundTrip(DigestCredentials("alice", "nope"), "SHA-256"))
        self.assertFalse(self.roundTrip(DigestCredentials("alice", "nope"), "MD5"))

    def test_checks(self):
        """Wrong realm, user, URI, or a refused nonce: not verified."""
        client = DigestClient(DigestCredentials("alice", "secret"))
        client.answer(challenge401(makeChallenge("reg.example", "N1", algorithm="SHA-256")))
        request = register()
        client.authorize(request)
        self.assertTrue(verifyAuthorization(request, "secret", "reg.example", username="alice"))
        self.assertFalse(verifyAuthorization(request, "secret", "other"))
        self.assertFalse(verifyAuthorization(request, "secret", "reg.example", username="bob"))
        self.assertFalse(verifyAuthorization(request, "secret", "reg.example",
                                             nonceCheck=lambda nonce, nc: False))
        request.uri = "sip:elsewhere.example.com"
        self.assertFalse(verifyAuthorization(request, "secret", "reg.example"))
        self.assertFalse(verifyAuthorization(register(), "secret", "reg.example"))

    def test_challengeObject(self):
        """DigestChallenge can be built directly (for callers that parse elsewhere)."""
        c = DigestChallenge(realm="r", nonce="n", qop=("auth",))
        self.assertTrue(c.supported)
        self.assertEqual(c.headerName, "Authorization")


class RealmTests(SynchronousTestCase):
    """Credentials bound to a realm, several realms, or the first realm seen."""

    def test_configuredRealm(self):
        """A realm that is not the credentials' is not answered, with a clear reason."""
        client = DigestClient(DigestCredentials("alice", "secret", realm="pbx"))
        e = self.assertRaises(DigestAuthError, client.answer,
                              challenge401(makeChallenge("evil", "N1")))
        self.assertIn("'evil'", e.reason)
        self.assertEqual(e.realm, "evil")
        request = register()
        client.authorize(request)
        self.assertIsNone(request.headers.get("Authorization"))

    def test_severalRealms(self):
        """A collection of realms answers each of them (a proxy's and a server's)."""
        credentials = DigestCredentials("alice", "secret", realm=("proxy", "server"))
        client = DigestClient(credentials)
        client.answer(challenge401(makeChallenge("proxy", "N1"), status=407))
        client.answer(challenge401(makeChallenge("server", "N2")))
        self.assertRaises(DigestAuthError, DigestClient(credentials).answer,
                          challenge401(makeChallenge("other", "N3")))

    def test_learnRealm(self):
        """
        learnRealm: the first realm answered binds every client sharing the
        credentials; without it any realm is answered (as before).
        """
        credentials = DigestCredentials("alice", "secret", learnRealm=True)
        DigestClient(credentials).answer(challenge401(makeChallenge("pbx", "N1")))
        self.assertEqual(credentials.realms, frozenset(["pbx"]))
        self.assertRaises(DigestAuthError, DigestClient(credentials).answer,
                          challenge401(makeChallenge("evil", "N2")))
        DigestClient(credentials).answer(challenge401(makeChallenge("pbx", "N3")))
        anyRealm = DigestCredentials("alice", "secret")
        DigestClient(anyRealm).answer(challenge401(makeChallenge("pbx", "N1")))
        DigestClient(anyRealm).answer(challenge401(makeChallenge("evil", "N2")))
        self.assertIsNone(anyRealm.realms)

    def test_learnOneOfTwo(self):
        """Two realms in the first challenge: the first is learned, the other refused."""
        credentials = DigestCredentials("alice", "secret", learnRealm=True)
        self.assertRaises(DigestAuthError, DigestClient(credentials).answer,
                          challenge401(makeChallenge("pbx", "N1"), makeChallenge("evil", "N2")))
        self.assertEqual(credentials.realms, frozenset(["pbx"]))
