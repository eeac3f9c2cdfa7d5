# -*- test-case-name: linkrtc.sip.test.test_registrar,linkrtc.sip.test.test_derived -*-
"""
LinkRTC's registrar (RFC 3261 §10.3) and the digest authentication of SIP
phones (RFC 3261 §22.4, RFC 7616 / RFC 8760 for SHA-256).

 - L{SIPUserStore}: the SIP users and their passwords (or HA1s) from the
   configuration's C{[sip-users]} table (docs/clients.rst), and, with an
   auth secret, time-limited credentials derived from it
   (C{IDENTITY~EXPIRY[~outgoing][~kid=KID]},
   L{linkrtc.signalling.tokens.SIPCredentialChecker}, in the style of
   draft-uberti-behave-turn-rest; docs/security.rst).
 - L{DigestServer}: stateless nonces (HMAC-signed, time-limited) and the
   check of C{Authorization} / C{Proxy-Authorization}, reusing the
   client side's hashing (L{linkrtc.sip.auth}).
 - L{Registrar}: answers REGISTER, keeps the L{BindingTable}, challenges
   INVITEs and MESSAGEs that claim to come from a SIP user (407), and hands
   MESSAGEs to the messenger (L{linkrtc.sip.messaging}).

Bad input: an unauthenticated REGISTER gets 401 (both algorithms
offered, SHA-256 first), wrong credentials get 403 (so do derived ones
that expired, lie too far ahead, name an unknown key, or are for another
user than the To's); failures are counted
per source and per source and user with the WebSocket endpoint's
L{SourceGuard}, and a locked-out source or user gets 403 without any check
of its credentials. An expiry below the minimum gets 423 with
C{Min-Expires} (§10.3 step 7).
"""

import hashlib
import hmac
import os
from dataclasses import dataclass

from twisted.logger import Logger

from linkrtc import metrics
from linkrtc.error import SIPParseError
from linkrtc.signalling.guard import SourceGuard, securityEvent
from linkrtc.signalling.tokens import TokenError
from linkrtc.sip.auth import (
    QOPS,
    DigestCredentials,
    canonicalAlgorithm,
    digestResponse,
    makeChallenge,
    parseAuthorization,
)
from linkrtc.sip.bindings import Binding, flowOf
from linkrtc.sip.uri import SIPURI, parseURI

__all__ = [
    "DEFAULT_REALM",
    "DigestServer",
    "Registrar",
    "SIPAccount",
    "SIPUserStore",
    "parseSIPUsers",
]

log = Logger()

#: The realm of the challenges unless configured (C{sip-realm}).
DEFAULT_REALM = "linkrtc"

#: Algorithms offered, strongest first (RFC 8760 §2.4: SHA-256 before MD5).
DEFAULT_ALGORITHMS = ("SHA-256", "MD5")


def parseSIPUsers(value):
    """
    Check the C{[sip-users]} table of the configuration.

    Each entry is C{name = "password"} or a table with C{password} or
    C{ha1} (hex H(name:realm:password): 32 digits for MD5, 64 for SHA-256,
    or a table C{{MD5 = "...", SHA-256 = "..."}}).

    @return: C{{name: {"password": str} or {"ha1": str or dict}}}.
    @raise ValueError: a bad entry (the message names it).
    """
    from linkrtc.signalling.messages import isValidClientName

    if not isinstance(value, dict):
        raise ValueError("expected a table of name = password")
    users = {}
    for name, entry in value.items():
        if not isValidClientName(name):
            raise ValueError(f"{name!r} is not a valid user name")
        if isinstance(entry, str):
            entry = {"password": entry}
        if not isinstance(entry, dict) or set(entry) - {"password", "ha1"} or \
                len(entry) != 1:
            raise ValueError(f"{name}: give a password string, or a table with password "
                             f"or ha1")
        if "password" in entry:
            if not isinstance(entry["password"], str) or not entry["password"]:
                raise ValueError(f"{name}: the password must be a non-empty string")
            users[name] = {"password": entry["password"]}
            continue
        ha1 = entry["ha1"]
        try:
            DigestCredentials(name, ha1=ha1 if isinstance(ha1, (str, dict)) else None)
        except (ValueError, AttributeError, TypeError) as e:
            raise ValueError(f"{name}: bad ha1: {e}")
        users[name] = {"ha1": ha1 if isinstance(ha1, str) else dict(ha1)}
    return users


@dataclass(frozen=True)
class SIPAccount:
    """
    Who a request's digest credentials authenticated.

    @ivar username: the digest username, C{str} (RFC 3261 §22.4: it may
        differ from the address-of-record's user).
    @ivar name: the user it stands for, C{str}: the username of a
        configured user, the identity of derived credentials.
    @ivar identity: the L{linkrtc.signalling.tokens.Identity} of derived
        credentials (their C{outgoing} grant, C{kid}, C{expires}), or
        C{None} for a configured user.
    """

    username: str
    name: str
    identity: object = None


class SIPUserStore:
    """
    The SIP users the registrar knows.

    @param users: C{{name: {"password": ...} or {"ha1": ...}}}
        (L{parseSIPUsers}).
    @param realm: the realm the HA1s were computed for, C{str}.
    @param derive: C{None}, or a
        L{linkrtc.signalling.tokens.SIPCredentialChecker} giving the
        passwords of usernames derived from the access tokens' secret
        (C{IDENTITY~EXPIRY[~outgoing][~kid=KID]}, docs/security.rst).
        A configured user wins: derived credentials whose identity is a
        configured name are refused (C{config_user}).
    """

    def __init__(self, users=None, realm=DEFAULT_REALM, derive=None):
        self.realm = realm
        self.derive = derive
        self._credentials = {}
        for name, entry in (users or {}).items():
            if "password" in entry:
                creds = DigestCredentials(name, password=entry["password"])
            else:
                creds = DigestCredentials(name, ha1=entry["ha1"], realm=realm)
            self._credentials[name] = creds

    def __contains__(self, name):
        return self.credentialsFor(name) is not None

    def names(self):
        """@return: the sorted configured names (derived ones are not listed)."""
        return sorted(self._credentials)

    def isConfigured(self, name):
        """@return: C{True} if C{name} is a user of C{[sip-users]}."""
        return name in self._credentials

    def _derived(self, name):
        """
        @return: C{(SIPCredentialName, password)} of a valid derived username.
        @raise TokenError: not derived, refused (expired, too far, unknown
            C{kid}), or C{config_user}.
        """
        if self.derive is None:
            raise TokenError("not_derived")
        derived, password = self.derive.check(name)
        if derived.identity in self._credentials:
            raise TokenError("config_user")
        return derived, password

    def credentialsFor(self, name):
        """
        @return: the L{DigestCredentials} of C{name} (a configured user,
            or valid derived credentials), or C{None}.
        """
        if not isinstance(name, str):
            return None
        creds = self._credentials.get(name)
        if creds is None and self.derive is not None:
            try:
                password = self._derived(name)[1]
            except TokenError:
                return None
            creds = DigestCredentials(name, password=password)
        return creds

    def accountFor(self, username):
        """
        @param username: a digest username whose response was right.
        @return: its L{SIPAccount}, or C{None} if it names nobody (any more).
        """
        if username in self._credentials:
            return SIPAccount(username, username)
        try:
            derived = self._derived(username)[0]
        except TokenError:
            return None
        return SIPAccount(username, derived.identity, self.derive.identity(derived))

    def refusal(self, username):
        """
        @return: why derived credentials C{username} are refused (a word
            of L{TokenError}, or C{config_user}), or C{None} if it is not
            a derived username or is valid (a wrong password then).
        """
        if not isinstance(username, str) or username in self._credentials:
            return None
        try:
            self._derived(username)
        except TokenError as e:
            return None if e.reason == "not_derived" else e.reason
        return None


class DigestServer:
    """
    Issues digest challenges and checks the answers (the server side of
    RFC 3261 §22.4 / RFC 7616 §3.3-§3.4).

    Nonces are stateless: C{hex(time).random.HMAC}, valid for
    C{nonceLifetime} seconds; an older one gets a new challenge with
    C{stale=true} (the phone answers it without asking its user). The
    nonce-count is not tracked: replay is bounded by the nonce lifetime.

    @param clock: an C{IReactorTime}.
    @param realm: C{str}.
    @param algorithms: algorithm names offered, strongest first.
    @param nonceLifetime: seconds.
    @param secret: the nonce HMAC key (C{bytes}); random if C{None}.
    """

    def __init__(self, clock, realm=DEFAULT_REALM, algorithms=DEFAULT_ALGORITHMS,
                 nonceLifetime=300.0, secret=None):
        self.clock = clock
        self.realm = realm
        self.algorithms = tuple(canonicalAlgorithm(a) or a for a in algorithms)
        self.nonceLifetime = nonceLifetime
        self._secret = secret or os.urandom(32)

    def _mac(self, text):
        return hmac.new(self._secret, text.encode("ascii"), hashlib.sha256).hexdigest()[:24]

    def newNonce(self):
        """@return: a fresh nonce, C{str}."""
        head = "%x.%s" % (int(self.clock.seconds()), os.urandom(8).hex())
        return head + "." + self._mac(head)

    def nonceState(self, nonce):
        """@return: C{"ok"}, C{"stale"} (ours but too old) or C{"bad"} (not ours)."""
        try:
            stamp, rand, mac = nonce.split(".")
            issued = int(stamp, 16)
        except (ValueError, AttributeError):
            return "bad"
        if not hmac.compare_digest(self._mac(stamp + "." + rand), mac):
            return "bad"
        age = self.clock.seconds() - issued
        if age < -1 or age > self.nonceLifetime:
            return "stale"
        return "ok"

    def challenges(self, stale=False):
        """@return: C{list} of challenge values (one per algorithm, one nonce)."""
        nonce = self.newNonce()
        return [makeChallenge(self.realm, nonce, algorithm=a, qop=("auth",), stale=stale)
                for a in self.algorithms]

    def check(self, request, store, header="Authorization"):
        """
        Check the credentials of C{request} for our realm.

        @param store: the L{SIPUserStore}.
        @return: C{(verdict, username)}: C{"none"} (no credentials for our
            realm, or a nonce not ours), C{"stale"}, C{"ok"} or C{"bad"}
            (wrong response, unknown user, unusable parameters); the
            username given (C{str} or C{None}).
        """
        verdict, username = "none", None
        for value in request.headers.getAll(header):
            params = parseAuthorization(value)
            if params is None or params.get("realm") != self.realm:
                continue
            username = params.get("username")
            result = self._checkOne(request, params, store)
            if result == "ok":
                return "ok", username
            if result == "bad" or verdict == "none":
                verdict = result
        return verdict, username

    def _checkOne(self, request, params, store):
        algorithm = canonicalAlgorithm(params.get("algorithm"))
        nonce, uri = params.get("nonce"), params.get("uri")
        response, user = params.get("response"), params.get("username")
        if algorithm not in self.algorithms or not nonce or not uri or not response \
                or not user:
            return "bad"
        state = self.nonceState(nonce)
        if state == "bad":
            return "none"
        if state == "stale":
            return "stale"
        if uri != str(request.uri):
            try:
                if parseURI(uri) != request.uri:
                    return "bad"
            except Exception:
                return "bad"
        qop, nc, cnonce = params.get("qop"), params.get("nc"), params.get("cnonce")
        if qop is not None:
            qop = qop.lower()
            if qop not in QOPS or not nc or cnonce is None:
                return "bad"
        elif algorithm.lower().endswith("-sess"):
            return "bad"
        creds = store.credentialsFor(user)
        ha1 = creds.ha1For(algorithm, self.realm) if creds is not None else None
        if ha1 is None:
            return "bad"
        expected = digestResponse(algorithm, ha1, nonce, request.method, uri, qop=qop, nc=nc,
                                  cnonce=cnonce, body=request.body)
        return "ok" if hmac.compare_digest(expected, response.lower()) else "bad"


def _sourceText(source):
    return getattr(source, "host", None) or "unknown"


def _expiresValue(text):
    try:
        value = int(str(text).strip())
    except (TypeError, ValueError):
        return None
    return value if value >= 0 else None


class Registrar:
    """
    The REGISTER, MESSAGE and phone-INVITE hooks of the user agent
    (L{linkrtc.sip.useragent.UserAgent}).

    Each hook gets C{respond(status, reason=None, headers=())}, which
    answers the request on its server transaction.

    @param clock: an C{IReactorTime}.
    @param bindings: the L{linkrtc.sip.bindings.BindingTable}.
    @param users: the L{SIPUserStore}.
    @param digest: the L{DigestServer} (one for C{users.realm} if C{None}).
    @param minExpires: seconds; a shorter non-zero expiry gets 423.
    @param maxExpires: seconds; longer expiries are cut to it.
    @param defaultExpires: seconds, when the REGISTER gives none.
    @param sourceGuard: L{SourceGuard} of failures per source address.
    @param userGuard: L{SourceGuard} of failures per (source, user).
    @param messenger: a L{linkrtc.sip.messaging.Messenger} for MESSAGE,
        or C{None} (then MESSAGE is not in Allow and gets 405).
    """

    def __init__(self, clock, bindings, users, digest=None, minExpires=60, maxExpires=3600,
                 defaultExpires=3600, sourceGuard=None, userGuard=None, messenger=None):
        self.clock = clock
        self.bindings = bindings
        self.users = users
        self.digest = digest if digest is not None else DigestServer(clock, users.realm)
        self.minExpires = int(minExpires)
        self.maxExpires = int(maxExpires)
        self.defaultExpires = int(min(defaultExpires, maxExpires))
        self.sourceGuard = sourceGuard if sourceGuard is not None else SourceGuard(
            clock, failureLimit=20, failureWindow=60.0, lockout=300.0)
        self.userGuard = userGuard if userGuard is not None else SourceGuard(
            clock, failureLimit=5, failureWindow=60.0, lockout=300.0)
        self.messenger = messenger

    @property
    def methods(self):
        """The methods these hooks serve (for the user agent's Allow)."""
        return ("REGISTER", "MESSAGE") if self.messenger is not None else ("REGISTER",)

    # -- authentication ------------------------------------------------------------

    def authenticate(self, request, source, respond, proxy=False, expectedUser=None):
        """
        Check C{request}'s digest credentials, answering it when they do
        not pass: 401/407 with challenges (none given, or stale), 403
        (wrong, expired or too far off derived ones, another user's, or
        the source or user locked out). Each 403 is one failure for the
        L{SourceGuard}s and one C{security} log line.

        @param expectedUser: the user the credentials must be for: a
            configured user's own name, or the identity of derived
            credentials (C{alice~EXPIRY} is for C{alice}); C{None} for
            any user.
        @return: the L{SIPAccount} authenticated, or C{None} once
            answered.
        """
        header = "Proxy-Authorization" if proxy else "Authorization"
        status = 407 if proxy else 401
        sourceKey = _sourceText(source)
        if self.sourceGuard.lockedOut(sourceKey) or (
                expectedUser is not None and self.userGuard.lockedOut((sourceKey, expectedUser))):
            securityEvent("locked_out", sourceKey, identity=expectedUser, phase="sip")
            respond(403, "Too many authentication failures")
            return None
        verdict, username = self.digest.check(request, self.users, header)
        account = self.users.accountFor(username) if verdict == "ok" else None
        if account is not None and (expectedUser is None or account.name == expectedUser):
            if request.method != "REGISTER":
                log.info("registrar: {method} from {user} authenticated", user=account.name,
                         method=request.method)
            return account
        if verdict in ("none", "stale"):
            name = "Proxy-Authenticate" if proxy else "WWW-Authenticate"
            respond(status, headers=[(name, c) for c in
                                     self.digest.challenges(stale=verdict == "stale")])
            return None
        who = expectedUser or username or "?"
        if account is not None:
            reason = "wrong_user"
        else:
            # derived credentials: expired, too_far, unknown_kid, config_user
            reason = self.users.refusal(username) or "bad_credentials"
        securityEvent("auth_failed", sourceKey, identity=who, reason=reason,
                      method=request.method)
        locked = self.userGuard.failed((sourceKey, who))
        locked = self.sourceGuard.failed(sourceKey) or locked
        if locked:
            securityEvent("locked_out", sourceKey, identity=who, phase="sip")
        respond(403, "Forbidden")
        return None

    def callerUser(self, request):
        """
        @return: the From user if it names a SIP user (a call or message
            that must be authenticated): a configured user, or (with
            derived credentials on) a user with live bindings; else
            C{None}.
        """
        try:
            uri = request.fromAddr.uri
        except SIPParseError:
            return None
        user = getattr(uri, "user", None)
        if not user:
            return None
        if user in self.users:
            return user
        if self.users.derive is not None and self.bindings.bindingsFor(user):
            # Registered with derived credentials: its calls carry them too.
            return user
        return None

    def inviteAllowed(self, request, source, respond):
        """
        An out-of-dialog INVITE: one whose From names a SIP user must carry
        that user's credentials (407 / 403, L{authenticate}); others (a
        trunk, a stranger) go through as before.

        @return: C{True} to go on with the INVITE, C{False} once answered.
        """
        user = self.callerUser(request)
        if user is None:
            return True
        return self.authenticate(request, source, respond, proxy=True,
                                 expectedUser=user) is not None

    # -- MESSAGE ---------------------------------------------------------------------

    def messageReceived(self, request, source, respond):
        """
        An out-of-dialog MESSAGE (RFC 3428): authenticated (407) when it
        comes from a SIP user, then handed to the messenger.
        """
        user = self.callerUser(request)
        if user is not None and self.authenticate(request, source, respond, proxy=True,
                                                  expectedUser=user) is None:
            return
        self.messenger.sipMessageReceived(request, respond, authenticatedUser=user)

    # -- REGISTER --------------------------------------------------------------------

    def registerReceived(self, request, source, respond):
        """
        RFC 3261 §10.3: check the REGISTER, authenticate it, and add,
        refresh or remove its bindings; answer 200 with the user's
        current contacts.

        @param source: the transport L{Source} it came from (the flow).
        """
        checked = self._checkRegister(request)
        if isinstance(checked, tuple) and isinstance(checked[0], int):
            status, reason = checked
            metrics.SIP_REGISTRATIONS.labels(result="invalid").inc()
            respond(status, reason)
            return
        user, contacts, wildcard = checked
        account = self.authenticate(request, source, respond, expectedUser=user)
        if account is None:
            result = "challenged" if not request.headers.get("Authorization") else "refused"
            metrics.SIP_REGISTRATIONS.labels(result=result).inc()
            return
        headerExpires = _expiresValue(request.headers.get("Expires"))
        if wildcard:
            if headerExpires != 0:
                metrics.SIP_REGISTRATIONS.labels(result="invalid").inc()
                respond(400, "Contact * needs Expires: 0")
                return
            self.bindings.unbindAll(user)
            log.info("registrar: {user} removed all contacts", user=user)
            self._ok(request, respond, user)
            return
        wanted = []
        for nameAddr in contacts:
            expires = _expiresValue((nameAddr.params or {}).get("expires"))
            if expires is None:
                expires = headerExpires if headerExpires is not None else self.defaultExpires
            if 0 < expires < self.minExpires:
                metrics.SIP_REGISTRATIONS.labels(result="too_brief").inc()
                respond(423, headers=[("Min-Expires", str(self.minExpires))])
                return
            wanted.append((nameAddr, min(expires, self.maxExpires)))
        callId, cseq = request.callId, request.cseq.number
        for nameAddr, _ in wanted:
            old = self.bindings.get(user, str(nameAddr.uri))
            if old is not None and old.callId == callId and cseq <= old.cseq:
                metrics.SIP_REGISTRATIONS.labels(result="invalid").inc()
                respond(500, "Out of Order CSeq")
                return
        now = self.clock.seconds()
        identity = account.identity
        if identity is not None and identity.expires is not None:
            # A registration made with derived credentials ends with them.
            left = max(1, int(identity.expires - now))
            wanted = [(nameAddr, min(expires, left)) for nameAddr, expires in wanted]
        flow = flowOf(source)
        for nameAddr, expires in wanted:
            uriText = str(nameAddr.uri)
            if expires == 0:
                self.bindings.unbind(user, uriText)
                log.info("registrar: {user} removed {uri}", user=user, uri=uriText)
                continue
            q = 1.0
            try:
                q = min(1.0, max(0.0, float((nameAddr.params or {}).get("q") or 1.0)))
            except ValueError:
                pass
            self.bindings.bind(Binding(
                user=user, contact=nameAddr, uriText=uriText, flow=flow,
                expiresAt=now + expires, callId=callId, cseq=cseq, q=q,
                userAgent=request.headers.get("User-Agent"), identity=identity))
            log.info("registrar: {user} at {uri} via {flow} for {expires} s", user=user,
                     uri=uriText, flow=str(flow), expires=expires)
        self._ok(request, respond, user)

    def _checkRegister(self, request):
        """
        @return: C{(user, contacts, wildcard)}, or C{(status, reason)} for
            a REGISTER that cannot be served (400 for a To that is not a
            SIP AoR or a Contact that is not a SIP URI).
        """
        try:
            to = request.toAddr
            contacts = request.contacts
        except SIPParseError as e:
            return 400, e.reason or "Bad Request"
        uri = to.uri
        if not isinstance(uri, SIPURI) or uri.scheme not in ("sip", "sips"):
            return 400, "The address-of-record must be a SIP URI"
        if not uri.user:
            return 404, "No user in the address-of-record"
        wildcard = any(c.isWildcard for c in contacts)
        if wildcard and len(contacts) > 1:
            return 400, "Contact * must be alone"
        for c in contacts:
            if not c.isWildcard and (not isinstance(c.uri, SIPURI)
                                     or c.uri.scheme not in ("sip", "sips")):
                return 400, "Contacts must be SIP URIs"
        return uri.user, contacts, wildcard

    def _ok(self, request, respond, user):
        now = self.clock.seconds()
        headers = []
        for binding in self.bindings.bindingsFor(user):
            headers.append(("Contact", "<%s>;expires=%d" % (binding.uriText,
                                                             binding.expiresIn(now))))
        headers.append(("Date", _httpDate(now)))
        metrics.SIP_REGISTRATIONS.labels(result="ok").inc()
        respond(200, headers=headers)


def _httpDate(seconds):
    """@return: an RFC 1123 date (RFC 3261 §20.17)."""
    from email.utils import formatdate

    return formatdate(seconds, usegmt=True)
