# -*- test-case-name: linkrtc.test.test_config -*-
"""
LinkRTC's configuration: one frozen L{LinkRTCConfig}, built from embedded
defaults, an optional TOML file (C{--config}) and command-line options, in
that order of precedence (the command line wins).

Every key of the TOML file is the long option's name with dashes or
underscores (C{public-address} or C{public_address}); times are in seconds.
docs/configuration.rst lists them all.
"""

import dataclasses
import math
import re
import tomllib
from dataclasses import dataclass, field

from linkrtc.error import LinkRTCError


class ConfigError(LinkRTCError):
    """A configuration value is invalid; the message names the key."""


@dataclass(frozen=True)
class LinkRTCConfig:
    """
    Everything a running LinkRTC needs to know.

    @ivar sip: endpoint strings SIP listens on (C{udp:5060:interface=...},
        C{tcp:...}, C{tls:...}/C{ssl:...}).
    @ivar http: endpoint string of the HTTP server (WebSocket at C{/ws}).
    @ivar publicAddress: the host written into Via, Contact and SDP, or
        C{None} to use the listening address.
    @ivar media: C{"passthrough"} or C{"bridge"}.
    @ivar webhook: the application's URL, or C{None} for the embedded
        default (route to the client named by the Request-URI user).
    @ivar webhookSecret: HMAC-SHA256 key for the signature header, or C{None}.
    @ivar webhookTimeout: seconds before a webhook request counts as failed.
    @ivar ringTimeout: seconds a call may ring before 480.
    @ivar mediaTimeout: seconds without RTP in a confirmed call before BYE.
    @ivar cdr: path of a file CDRs are appended to (JSON lines), or C{None}.
    @ivar rtpPorts: C{(low, high)} inclusive UDP port range for RTP.
    @ivar operators: C{NAME[:ARG]} operator plugins to add.
    @ivar clientTokens: C{{client name: token}}; empty means no token needed.
    @ivar iceServers: STUN/TURN URLs for the WebRTC leg (none by default).
    @ivar iceAddresses: host addresses ICE may offer, or empty for all but loopback.
    @ivar logLevel: the lowest level logged: debug, info, warn, error, critical.
    @ivar eventLoop: the asyncio loop under the reactor: C{"asyncio"} or C{"uvloop"}.
    @ivar trunks: C{tuple} of L{Trunk} (TOML C{[[trunk]]} tables); the first
        is the default for outbound calls.
    @ivar maxRingSeconds: seconds an outbound call waits for the answer
        (from the INVITE, and again from the first 180/183), seed 001.
    @ivar maxAnswerSeconds: seconds an answered outbound call may last
        before LinkRTC hangs up, or C{None} for no limit (seed 001).
    @ivar sipIdleTimeout: seconds without traffic after which a SIP TCP/TLS
        connection is closed, or C{None} never to close one idle.
    @ivar webhookQueueSize: most C{state}/C{dtmf}/C{cdr} webhook events
        held for delivery at once (an event beyond it is dropped).
    @ivar webhookGiveUpSeconds: seconds after which an undelivered
        C{state}/C{dtmf}/C{cdr} webhook event is dropped.
    @ivar drainSeconds: seconds live calls may go on after SIGTERM (or
        C{POST /admin/drain}) before LinkRTC ends them with BYE and exits;
        0 ends them at once (docs/operations.rst).
    @ivar authSecret: the HS256 key clients' access tokens are signed with
        (C{kid} C{"default"}), or C{None}; docs/security.rst.
    @ivar authSecrets: more keys, C{{kid: secret}} (TOML C{[auth-secrets]}),
        for rotation. With neither key nor C{clientTokens}, protected mode:
        only loopback clients, anonymously.
    @ivar allowedOrigins: browser origins allowed on C{/ws} besides the
        page's own (C{"https://app.example.com"}).
    @ivar registerTimeout: seconds a WebSocket may stay without a
        successful C{register}.
    @ivar maxConnectionsPerAddress: open WebSockets allowed per source address.
    @ivar maxOutboundCalls: outbound calls one identity may have at once
        (C{int}), or C{None} for no limit (docs/trunks.rst).
    @ivar maxOutboundCallsPerMinute: outbound calls one identity may start
        per 60 seconds (C{int}), or C{None} for no limit.
    @ivar resumeSeconds: seconds an answered call waits for a client whose
        WebSocket closed to come back with its resume token (bridge mode);
        0 ends the call at once.
    @ivar sipUsers: the registrar's SIP users (TOML C{[sip-users]}):
        C{{name: {"password": ...} or {"ha1": ...}}} (docs/clients.rst).
    @ivar sipRealm: the realm of the registrar's digest challenges.
    @ivar sipMinExpires: seconds; a shorter registration gets 423.
    @ivar sipMaxExpires: seconds; longer registrations are cut to it.
    @ivar sipMaxContacts: contacts one SIP user may register at once.
    @ivar sipDigestAlgorithms: digest algorithms the registrar challenges
        with, most preferred first (C{"SHA-256"}, C{"MD5"}).
    """

    sip: tuple = ("udp:5060:interface=127.0.0.1", "tcp:5060:interface=127.0.0.1")
    http: str = "tcp:8080:interface=127.0.0.1"
    publicAddress: str | None = None
    media: str = "bridge"
    webhook: str | None = None
    webhookSecret: str | None = None
    webhookTimeout: float = 5.0
    ringTimeout: float = 60.0
    mediaTimeout: float = 30.0
    cdr: str | None = None
    rtpPorts: tuple = (20000, 29999)
    operators: tuple = ()
    clientTokens: dict = field(default_factory=dict)
    iceServers: tuple = ()
    iceAddresses: tuple = ()
    logLevel: str = "info"
    eventLoop: str = "uvloop"
    trunks: tuple = ()
    maxRingSeconds: float = 60.0
    maxAnswerSeconds: float | None = None
    sipIdleTimeout: float | None = 60.0
    webhookQueueSize: int = 1000
    webhookGiveUpSeconds: float = 300.0
    drainSeconds: float = 300.0
    authSecret: str | None = None
    authSecrets: dict = field(default_factory=dict)
    allowedOrigins: tuple = ()
    registerTimeout: float = 10.0
    maxConnectionsPerAddress: int = 50
    maxOutboundCalls: int | None = 4
    maxOutboundCallsPerMinute: int | None = 10
    #: C{package.module:factory} of an in-process call-control application
    #: (L{linkrtc.app.api}), or C{None}.
    application: str | None = None
    #: The C{Server} / C{User-Agent} header of SIP, HTTP and the webhook
    #: (docs/security.rst); no version by default.
    serverHeader: str = "LinkRTC"
    #: Out-of-dialog SIP requests a second allowed per source address
    #: (C{float}), or C{None} for no limit (docs/security.rst).
    sipRateLimit: float | None = 100.0
    #: Requests a source may send at once (C{int}), or C{None}: twice the rate.
    sipRateBurst: int | None = None
    #: Seconds a source over the rate is ignored for.
    sipBanSeconds: float = 30.0
    #: C{True} to rate-limit loopback sources too (tests).
    sipRateLimitLoopback: bool = False
    #: Most calls at once (C{int}), or C{None}; more INVITEs get 503.
    maxCalls: int | None = 1000
    #: Most unanswered incoming calls from one source address, or C{None}.
    maxRingingPerClient: int | None = 10
    #: Most SIP server transactions held at once, or C{None}.
    maxSipTransactions: int | None = 20000
    resumeSeconds: float = 10.0
    sipUsers: dict = field(default_factory=dict)
    sipRealm: str = "linkrtc"
    sipMinExpires: int = 60
    sipMaxExpires: int = 3600
    sipMaxContacts: int = 10
    sipDigestAlgorithms: tuple = ("SHA-256", "MD5")
    #: Devices one incoming call rings at most (a user's connections and
    #: registered SIP contacts, docs/clients.rst).
    maxForks: int = 10
    #: C{True}: bridged incoming calls get a 183 with our SDP and a
    #: ringback tone until the client answers (docs/media.rst).
    earlyMedia: bool = True
    #: The ringback's country (L{linkrtc.media.ringback.TONE_PLANS}), or
    #: C{None} for early media in silence.
    ringbackTone: str | None = "us"
    #: Redis URL of a cluster's shared client directory (docs/scaling.rst),
    #: or C{None}: the directory is in-process.
    redis: str | None = None
    #: This node's id in the cluster, or C{None}: C{HOSTNAME-PID}.
    nodeId: str | None = None
    #: C{HOST:PORT} other nodes send this node's INVITEs to, or C{None}:
    #: from the first UDP/TCP C{--sip} endpoint.
    nodeAddress: str | None = None
    #: Seconds a client's entry lives in Redis without a refresh.
    directoryTTL: float = 30.0
    #: RFC 4028: the session interval we ask for and grant at most, seconds.
    sessionExpires: int = 1800
    #: RFC 4028: the shortest session interval we accept (Min-SE), seconds;
    #: below 90 for tests only.
    minSE: int = 90

    def replace(self, **changes):
        """@return: a copy with C{changes} applied."""
        return dataclasses.replace(self, **changes)

    def __post_init__(self):
        """
        Check and convert every field that differs from its default with
        L{normalise}: the one validation path for the command line, the
        TOML file and a .tac file that builds a L{LinkRTCConfig} itself.

        @raise ConfigError: for the first bad value, naming its key.
        """
        for f in dataclasses.fields(self):
            key = OPTION_NAMES.get(f.name)
            value = getattr(self, f.name)
            if key is None or value == _defaultOf(f):
                continue
            object.__setattr__(self, f.name, normalise(key, value)[1])


MEDIA_MODES = ("passthrough", "bridge")

# Option / TOML key -> attribute name.
KEYS = {
    "sip": "sip",
    "http": "http",
    "public-address": "publicAddress",
    "media": "media",
    "webhook": "webhook",
    "webhook-secret": "webhookSecret",
    "webhook-timeout": "webhookTimeout",
    "ring-timeout": "ringTimeout",
    "media-timeout": "mediaTimeout",
    "cdr": "cdr",
    "rtp-ports": "rtpPorts",
    "operator": "operators",
    "operators": "operators",
    "client-tokens": "clientTokens",
    "ice-server": "iceServers",
    "ice-servers": "iceServers",
    "ice-address": "iceAddresses",
    "ice-addresses": "iceAddresses",
    "log-level": "logLevel",
    "event-loop": "eventLoop",
    "trunk": "trunks",
    "trunks": "trunks",
    "max-ring-seconds": "maxRingSeconds",
    "max-answer-seconds": "maxAnswerSeconds",
    "sip-idle-timeout": "sipIdleTimeout",
    "webhook-queue-size": "webhookQueueSize",
    "webhook-give-up-seconds": "webhookGiveUpSeconds",
    "drain-seconds": "drainSeconds",
    "auth-secret": "authSecret",
    "auth-secrets": "authSecrets",
    "allowed-origin": "allowedOrigins",
    "allowed-origins": "allowedOrigins",
    "register-timeout": "registerTimeout",
    "max-connections-per-address": "maxConnectionsPerAddress",
    "max-outbound-calls": "maxOutboundCalls",
    "max-outbound-calls-per-minute": "maxOutboundCallsPerMinute",
    "application": "application",
    "server-header": "serverHeader",
    "sip-rate-limit": "sipRateLimit",
    "sip-rate-burst": "sipRateBurst",
    "sip-ban-seconds": "sipBanSeconds",
    "sip-rate-limit-loopback": "sipRateLimitLoopback",
    "max-calls": "maxCalls",
    "max-ringing-per-client": "maxRingingPerClient",
    "max-sip-transactions": "maxSipTransactions",
    "resume-seconds": "resumeSeconds",
    "sip-users": "sipUsers",
    "sip-realm": "sipRealm",
    "sip-min-expires": "sipMinExpires",
    "sip-max-expires": "sipMaxExpires",
    "sip-max-contacts": "sipMaxContacts",
    "sip-digest-algorithms": "sipDigestAlgorithms",
    "max-forks": "maxForks",
    "early-media": "earlyMedia",
    "ringback-tone": "ringbackTone",
    "redis": "redis",
    "node-id": "nodeId",
    "node-address": "nodeAddress",
    "directory-ttl": "directoryTTL",
    "session-expires": "sessionExpires",
    "min-se": "minSE",
}


#: Attribute name -> the key an error message names (the command-line option's).
OPTION_NAMES = {}
for _key, _name in KEYS.items():
    OPTION_NAMES.setdefault(_name, _key)


#: A C{Server} / C{User-Agent} value: printable ASCII and spaces (RFC 3261
#: §25.1 server-val, RFC 9110 §10.2.4), no CR or LF.
_SERVER_HEADER = re.compile(r"[\x21-\x7e](?:[\x20-\x7e]{0,126}[\x21-\x7e])?\Z")


def _defaultOf(f):
    if f.default is not dataclasses.MISSING:
        return f.default
    return f.default_factory()


def parseRTPPorts(value):
    """
    Parse C{"LOW-HIGH"} (or a 2-item list) into C{(low, high)}.

    @raise ConfigError: when malformed or outside 1024..65535.
    """
    try:
        if isinstance(value, str):
            low, high = (int(v) for v in value.split("-", 1))
        else:
            low, high = (int(v) for v in value)
    except (TypeError, ValueError):
        raise ConfigError(f"rtp-ports: expected LOW-HIGH, got {value!r}")
    if low > high:
        raise ConfigError(f"rtp-ports: low {low} > high {high} (give LOW-HIGH)")
    if not 1024 <= low <= high <= 65535:
        raise ConfigError(f"rtp-ports: range {low}-{high} outside 1024-65535")
    return (low, high)


def _positive(key, value):
    try:
        if isinstance(value, bool):
            raise TypeError(value)
        number = float(value)
    except (TypeError, ValueError):
        raise ConfigError(f"{key}: expected seconds, got {value!r}")
    if not math.isfinite(number):
        raise ConfigError(f"{key}: expected a finite number of seconds, got {value!r}")
    if number <= 0:
        raise ConfigError(f"{key}: must be positive, got {value!r}")
    return number


def _count(key, value):
    """@return: C{value} as an C{int} >= 1. @raise ConfigError: otherwise."""
    if isinstance(value, bool):
        raise ConfigError(f"{key}: expected a whole number, got {value!r}")
    try:
        number = int(value)
    except (TypeError, ValueError):
        raise ConfigError(f"{key}: expected a whole number, got {value!r}")
    if number < 1 or (isinstance(value, float) and value != number):
        raise ConfigError(f"{key}: expected a whole number of at least 1, got {value!r}")
    return number


def _nonNegative(key, value):
    """@return: C{value} as seconds (C{float}) >= 0. @raise ConfigError: otherwise."""
    if isinstance(value, bool):
        raise ConfigError(f"{key}: expected seconds, got {value!r}")
    try:
        number = float(value)
    except (TypeError, ValueError):
        raise ConfigError(f"{key}: expected seconds, got {value!r}")
    if not number >= 0 or number == float("inf"):
        raise ConfigError(f"{key}: must be 0 or more seconds, got {value!r}")
    return number


def _countOrNone(key, value):
    """A non-negative whole number; 0 (or none) means no limit: C{None}."""
    if value is None or value == "":
        return None
    try:
        number = int(value)
    except (TypeError, ValueError):
        raise ConfigError(f"{key}: expected a whole number, got {value!r}")
    if isinstance(value, bool) or isinstance(value, float) or number < 0:
        raise ConfigError(f"{key}: expected a whole number >= 0, got {value!r}")
    return number or None


def normalise(key, value):
    """
    Check and convert one option value.

    @param key: the option name (C{"ring-timeout"}, ...).
    @return: C{(attributeName, value)}.
    @raise ConfigError: for an unknown key or a bad value.
    """
    key = key.replace("_", "-")
    if key not in KEYS:
        raise ConfigError(f"unknown configuration key {key!r}")
    name = KEYS[key]
    if name in ("webhookTimeout", "ringTimeout", "mediaTimeout", "maxRingSeconds"):
        value = _positive(key, value)
    elif name in ("maxAnswerSeconds", "sipIdleTimeout"):
        value = None if value in (None, 0, "0", "") else _positive(key, value)
    elif name == "webhookGiveUpSeconds":
        value = _positive(key, value)
    elif name == "webhookQueueSize":
        value = _count(key, value)
    elif name in ("drainSeconds", "resumeSeconds"):
        value = _nonNegative(key, value)
    elif name == "application":
        if value in (None, ""):
            value = None
        elif not isinstance(value, str) or value.count(":") != 1 or not all(
                value.split(":")):
            raise ConfigError(f"application: expected package.module:factory, got {value!r}")
    elif name == "serverHeader":
        if not isinstance(value, str) or not _SERVER_HEADER.match(value):
            raise ConfigError(f"{key}: expected 1-128 printable ASCII characters, got {value!r}")
    elif name == "trunks":
        value = parseTrunks(value)
    elif name in ("maxOutboundCalls", "maxOutboundCallsPerMinute"):
        value = _countOrNone(key, value)
    elif name == "rtpPorts":
        value = parseRTPPorts(value)
    elif name == "media":
        if value not in MEDIA_MODES:
            raise ConfigError(f"media: expected one of {', '.join(MEDIA_MODES)}, got {value!r}")
    elif name == "iceServers":
        from linkrtc.configcheck import parseICEServers

        value = parseICEServers(key, value)
    elif name in ("sip", "operators", "iceAddresses"):
        if isinstance(value, str):
            value = (value,)
        if not all(isinstance(v, str) for v in value):
            raise ConfigError(f"{key}: expected a list of strings")
        value = tuple(value)
    elif name == "eventLoop":
        if value not in ("asyncio", "uvloop"):
            raise ConfigError(f"event-loop: expected asyncio or uvloop, got {value!r}")
    elif name == "logLevel":
        from linkrtc.logging import LEVELS

        if not isinstance(value, str) or value not in LEVELS:
            raise ConfigError(f"log-level: expected one of {', '.join(LEVELS)}, got {value!r}")
    elif name in ("authSecret", "authSecrets", "allowedOrigins", "registerTimeout",
                  "maxConnectionsPerAddress"):
        value = _normaliseAccess(key, name, value)
    elif name == "sipRateLimit":
        value = None if value in (None, 0, "0", "") else _positive(key, value)
    elif name == "sipBanSeconds":
        value = _positive(key, value)
    elif name in ("sipRateBurst", "maxCalls", "maxRingingPerClient", "maxSipTransactions"):
        value = _countOrNone(key, value)
    elif name == "sipRateLimitLoopback":
        if isinstance(value, str) and value.lower() in ("true", "yes", "1", "false", "no", "0"):
            value = value.lower() in ("true", "yes", "1")
        if not isinstance(value, bool):
            raise ConfigError(f"{key}: expected true or false, got {value!r}")
    elif name == "sipUsers":
        from linkrtc.sip.registrar import parseSIPUsers

        try:
            value = parseSIPUsers(value)
        except ValueError as e:
            raise ConfigError(f"{key}: {e}")
    elif name in ("sipMinExpires", "sipMaxExpires", "sipMaxContacts", "maxForks",
                  "sessionExpires", "minSE"):
        value = _count(key, value)
    elif name == "sipDigestAlgorithms":
        if isinstance(value, str):
            value = (value,)
        from linkrtc.sip.auth import canonicalAlgorithm

        names = tuple(canonicalAlgorithm(v) if isinstance(v, str) else None for v in value)
        if not names or any(n not in ("SHA-256", "MD5", "SHA-512-256") for n in names):
            raise ConfigError(f"{key}: expected a list of SHA-256, MD5, SHA-512-256")
        value = names
    elif name == "sipRealm":
        if not isinstance(value, str) or not value or '"' in value or "\\" in value:
            raise ConfigError(f"{key}: expected a non-empty string without quotes")
    elif name == "earlyMedia":
        if isinstance(value, str) and value.lower() in ("true", "yes", "on", "1", "false",
                                                        "no", "off", "0"):
            value = value.lower() in ("true", "yes", "on", "1")
        if not isinstance(value, bool):
            raise ConfigError(f"{key}: expected true or false, got {value!r}")
    elif name == "ringbackTone":
        from linkrtc.media.ringback import TONE_PLANS

        if value in (None, "", "none", "off"):
            value = None
        elif not isinstance(value, str) or value.strip().lower() not in TONE_PLANS:
            raise ConfigError(f"{key}: expected one of {', '.join(sorted(TONE_PLANS))} or none,"
                              f" got {value!r}")
        else:
            value = value.strip().lower()
    elif name == "directoryTTL":
        value = _positive(key, value)
    elif name == "redis" and value not in (None, ""):
        if not isinstance(value, str) or value.split("://")[0] not in ("redis", "rediss", "unix"):
            raise ConfigError(f"{key}: expected a redis://, rediss:// or unix:// URL, got {value!r}")
    elif name == "clientTokens":
        if not isinstance(value, dict):
            raise ConfigError(f"{key}: expected a table of name = token")
        value = {str(k): str(v) for k, v in value.items()}
    elif value is not None and not isinstance(value, str):
        raise ConfigError(f"{key}: expected a string, got {value!r}")
    from linkrtc.configcheck import CHECKS

    check = CHECKS.get(name)
    if check is not None and value is not None:
        check(key, value)
    return name, value


def _normaliseAccess(key, name, value):
    """Check the WebSocket access keys (docs/security.rst)."""
    from linkrtc.signalling.guard import normaliseOrigin
    from linkrtc.signalling.tokens import parseKeys

    if name == "registerTimeout":
        return _positive(key, value)
    if name == "maxConnectionsPerAddress":
        if isinstance(value, bool) or not isinstance(value, (int, str)):
            raise ConfigError(f"{key}: expected a positive integer, got {value!r}")
        try:
            number = int(value)
        except ValueError:
            raise ConfigError(f"{key}: expected a positive integer, got {value!r}")
        if number <= 0:
            raise ConfigError(f"{key}: must be positive, got {value!r}")
        return number
    if name == "allowedOrigins":
        if isinstance(value, str):
            value = (value,)
        if not isinstance(value, (list, tuple)) or not all(isinstance(v, str) for v in value):
            raise ConfigError(f"{key}: expected a list of origins")
        for origin in value:
            try:
                normaliseOrigin(origin)
            except ValueError as e:
                raise ConfigError(f"{key}: {e}")
        return tuple(value)
    if name == "authSecret":
        if value is not None and not isinstance(value, str):
            raise ConfigError(f"{key}: expected a string")
        try:
            parseKeys(authSecret=value or None)
        except ValueError as e:
            raise ConfigError(f"{key}: {e}")
        return value or None
    if not isinstance(value, dict):
        raise ConfigError(f"{key}: expected a table of kid = secret")
    try:
        parseKeys(authSecrets=value)
    except ValueError as e:
        raise ConfigError(f"{key}: {e}")
    return dict(value)


TRANSPORTS = ("UDP", "TCP", "TLS")

_DEFAULT_PORTS = {"UDP": 5060, "TCP": 5060, "TLS": 5061}


@dataclass(frozen=True)
class Trunk:
    """
    A SIP trunk: the registrar or proxy LinkRTC sends outbound calls to
    (and may register with), as configured in a TOML C{[[trunk]]} table or a
    .tac file. docs/trunks.rst describes every field.

    @ivar name: C{str}, unique; the webhook names it in C{route}.
    @ivar proxy: the registrar/outbound proxy URI, C{str}
        (C{sip:pbx.example.com:5060}); every request goes there.
    @ivar transport: C{"UDP"}, C{"TCP"} or C{"TLS"} (a C{transport}
        parameter of C{proxy} wins).
    @ivar username: the digest user (and AOR user), or C{None}.
    @ivar password: C{str}, or C{None} when C{ha1} is given (or no auth).
    @ivar ha1: the hex H(username:realm:password), instead of C{password}.
    @ivar realm: the realm the credentials answer (C{str}, or a C{tuple}
        of realms), or C{None}: then the realm of the trunk's first
        challenge (its registration's, for a registering trunk) is the only
        one answered afterwards.
    @ivar register: C{True} to keep a registration up.
    @ivar expires: seconds asked for in REGISTER.
    @ivar registrar: the registrar URI if it differs from C{proxy}, or C{None}.
    @ivar domain: C{host[:port]} for the Request-URI of numbers, From and
        the AOR; default the proxy's host and port.
    @ivar callerId: the From user: a template with C{{client}} and
        C{{username}}; default C{{username}} (or C{{client}} without one).
        C{{client}} stands for a token-authenticated identity only (see
        L{callerIdFor}).
    @ivar callerName: the From display name template, or C{None} for none.
    @ivar codecs: encoding names the trunk allows (others are taken out
        of the offer); empty allows all.
    @ivar offerless: C{True} to send INVITEs without SDP (late offer).
    @ivar route: C{{DID: client name}} for calls arriving through the trunk
        without a webhook.
    @ivar defaultClient: the client for DIDs not in C{route}, or C{None}.
    @ivar allow: dial-plan patterns (prefixes, or regular expressions
        starting with C{^}) of numbers allowed in spite of the built-in
        international/premium denials (L{linkrtc.call.dialplan}).
    @ivar deny: dial-plan patterns of numbers always refused.
    @ivar srtp: SDES-SRTP on the trunk's calls in bridge mode (RFC 4568):
        C{"off"} (plain RTP offers), C{"optional"} (RTP/SAVP offers with
        a=crypto, a plain answer taken) or C{"required"} (RTP/SAVP offers,
        plain answers and plain incoming offers refused);
        L{linkrtc.media.sdes}.
    @ivar reliableProvisionals: C{True} (TOML C{100rel}) to offer reliable
        provisional responses (RFC 3262) in the INVITEs to the trunk.
    """

    name: str
    proxy: str
    transport: str = "UDP"
    username: str | None = None
    password: str | None = None
    ha1: str | None = None
    realm: str | tuple | None = None
    register: bool = False
    expires: int = 3600
    registrar: str | None = None
    domain: str | None = None
    callerId: str | None = None
    callerName: str | None = None
    codecs: tuple = ()
    offerless: bool = False
    route: dict = field(default_factory=dict)
    defaultClient: str | None = None
    allow: tuple = ()
    deny: tuple = ()
    srtp: str = "off"
    #: C{False} not to offer C{Supported: 100rel} (RFC 3262) to this trunk.
    reliableProvisionals: bool = True

    def proxyURI(self):
        """@return: the proxy as a L{linkrtc.sip.uri.SIPURI}."""
        return _sipURI(self.proxy, f"trunk {self.name}: proxy")

    def registrarURI(self):
        """@return: the registrar L{linkrtc.sip.uri.SIPURI} (the proxy by default)."""
        return _sipURI(self.registrar or self.proxy, f"trunk {self.name}: registrar")

    def domainHostPort(self):
        """@return: C{(host, port or None)} for Request-URIs, From and the AOR."""
        if self.domain:
            uri = _sipURI(self.domain, f"trunk {self.name}: domain")
        else:
            uri = self.proxyURI()
        return uri.host, uri.port

    def aor(self):
        """@return: the address-of-record (C{sip:username@domain}) as a C{str}."""
        from linkrtc.sip.uri import SIPURI

        host, port = self.domainHostPort()
        return str(SIPURI("sip", user=self.username or None, host=host, port=port))

    def destination(self):
        """@return: the L{linkrtc.sip.transport.Address} requests are sent to."""
        from linkrtc.sip.transport import Address

        uri = self.proxyURI()
        params = uri.params or {}
        transport = (params.get("transport") or "").upper()
        if not transport:
            transport = "TLS" if uri.scheme == "sips" else self.transport
        host = params.get("maddr") or uri.host
        return Address(transport, host, uri.port or _DEFAULT_PORTS[transport])

    def callerIdFor(self, client, override=None, authenticated=False):
        """
        @param client: the calling identity (C{str} or C{None}).
        @param override: a caller-ID the application chose, or C{None}.
        @param authenticated: C{True} when a token authenticated C{client}:
            only then does C{{client}} stand for it; a template using
            C{{client}} otherwise gives the trunk's username (or
            C{anonymous}), so no client picks its own caller ID.
        @return: the From user part, C{str}.
        """
        if override:
            return str(override)
        template = self.callerId or ("{username}" if self.username else "{client}")
        if not authenticated and _usesClient(template, self.username):
            return self.username or "anonymous"
        return template.format(client=client or "anonymous", username=self.username or "")

    def callerNameFor(self, client, authenticated=False):
        """
        @return: the From display name, or C{None} (always C{None} for a
            template using C{{client}} when C{authenticated} is false).
        """
        if not self.callerName:
            return None
        if not authenticated and _usesClient(self.callerName, self.username):
            return None
        return self.callerName.format(client=client or "", username=self.username or "")


_CLIENT_MARK = "\x00client\x00"


def _usesClient(template, username):
    """C{True} if C{template} expands C{{client}}."""
    return _CLIENT_MARK in template.format(client=_CLIENT_MARK, username=username or "")


def _sipURI(text, what):
    from linkrtc.error import SIPParseError
    from linkrtc.sip.uri import SIPURI, parseURI

    text = text.strip()
    if not text.lower().startswith(("sip:", "sips:")):
        text = "sip:" + text
    try:
        uri = parseURI(text)
    except SIPParseError as e:
        raise ConfigError(f"{what}: bad SIP URI {text!r}: {e.reason}")
    if not isinstance(uri, SIPURI):
        raise ConfigError(f"{what}: not a SIP URI: {text!r}")
    return uri


#: TOML key of a trunk table -> Trunk field.
TRUNK_KEYS = {
    "name": "name",
    "proxy": "proxy",
    "transport": "transport",
    "username": "username",
    "password": "password",
    "ha1": "ha1",
    "realm": "realm",
    "register": "register",
    "expires": "expires",
    "registrar": "registrar",
    "domain": "domain",
    "caller-id": "callerId",
    "caller-name": "callerName",
    "codecs": "codecs",
    "offerless": "offerless",
    "route": "route",
    "default-client": "defaultClient",
    "allow": "allow",
    "deny": "deny",
    "srtp": "srtp",
    "100rel": "reliableProvisionals",
}


def parseTrunk(value, index=0):
    """
    Check one trunk table (or a L{Trunk}).

    @param value: C{dict} of TOML keys (dashes or underscores) or a L{Trunk}.
    @return: a L{Trunk}.
    @raise ConfigError: naming the trunk and the key.
    """
    if isinstance(value, Trunk):
        data = {f.name: getattr(value, f.name) for f in dataclasses.fields(Trunk)}
    elif isinstance(value, dict):
        data = {}
        for key, v in value.items():
            k = key.replace("_", "-")
            if k not in TRUNK_KEYS:
                raise ConfigError(f"trunk #{index + 1}: unknown key {key!r}")
            data[TRUNK_KEYS[k]] = v
    else:
        raise ConfigError(f"trunk #{index + 1}: expected a table")
    name = data.get("name")
    if not isinstance(name, str) or not name:
        raise ConfigError(f"trunk #{index + 1}: 'name' is required")
    where = f"trunk {name}"
    if not isinstance(data.get("proxy"), str) or not data["proxy"]:
        raise ConfigError(f"{where}: 'proxy' is required (sip:HOST[:PORT])")
    realm = data.get("realm")
    if isinstance(realm, (list, tuple)):
        if not realm or not all(isinstance(r, str) and r for r in realm):
            raise ConfigError(f"{where}: realm must be a string or a list of strings")
        data["realm"] = realm[0] if len(realm) == 1 else tuple(realm)
    elif realm is not None and not isinstance(realm, str):
        raise ConfigError(f"{where}: realm must be a string or a list of strings")
    for key in ("username", "password", "ha1", "registrar", "domain", "callerId",
                "callerName", "defaultClient"):
        if data.get(key) is not None and not isinstance(data[key], str):
            raise ConfigError(f"{where}: {key} must be a string")
    transport = str(data.get("transport", "UDP")).upper()
    if transport not in TRANSPORTS:
        raise ConfigError(f"{where}: transport must be udp, tcp or tls, not {transport!r}")
    data["transport"] = transport
    if data.get("password") is not None and data.get("ha1") is not None:
        raise ConfigError(f"{where}: give password or ha1, not both")
    if data.get("ha1") is not None and len(data["ha1"]) not in (32, 64):
        raise ConfigError(f"{where}: ha1 must be 32 (MD5) or 64 (SHA-256) hex digits")
    for key in ("register", "offerless", "reliableProvisionals"):
        if key in data and not isinstance(data[key], bool):
            raise ConfigError(f"{where}: {key} must be true or false")
    if data.get("register") and not data.get("username"):
        raise ConfigError(f"{where}: register = true needs a username")
    expires = data.get("expires", 3600)
    if isinstance(expires, bool) or not isinstance(expires, int) or expires <= 0:
        raise ConfigError(f"{where}: expires must be a positive number of seconds")
    codecs = data.get("codecs", ())
    if isinstance(codecs, str):
        codecs = tuple(c.strip() for c in codecs.split(",") if c.strip())
    if not all(isinstance(c, str) for c in codecs):
        raise ConfigError(f"{where}: codecs must be a list of names")
    data["codecs"] = tuple(codecs)
    route = data.get("route", {})
    if not isinstance(route, dict) or not all(isinstance(v, str) for v in route.values()):
        raise ConfigError(f"{where}: route must be a table of DID = client name")
    data["route"] = {str(k): v for k, v in route.items()}
    data.update(_dialPatterns(where, data))
    srtp = data.get("srtp", "off")
    if srtp not in ("off", "optional", "required"):
        raise ConfigError(f"{where}: srtp must be \"off\", \"optional\" or \"required\"")
    trunk = Trunk(**data)
    trunk.proxyURI()
    trunk.registrarURI()
    trunk.domainHostPort()
    try:
        trunk.callerIdFor("x", authenticated=True)
        trunk.callerNameFor("x", authenticated=True)
    except (KeyError, IndexError, ValueError) as e:
        raise ConfigError(f"{where}: bad caller-id/caller-name template: {e}")
    return trunk


def _dialPatterns(where, data):
    """
    Check a trunk's C{allow} and C{deny} (a string or a list of strings).

    @return: C{{"allow": tuple, "deny": tuple}}.
    @raise ConfigError: a bad pattern.
    """
    from linkrtc.call.dialplan import compilePatterns

    result = {}
    for key in ("allow", "deny"):
        value = data.get(key, ())
        if isinstance(value, str):
            value = (value,)
        if not isinstance(value, (list, tuple)):
            raise ConfigError(f"{where}: {key} must be a list of patterns")
        try:
            compilePatterns(value, f"{where}: {key}")
        except ValueError as e:
            raise ConfigError(str(e))
        result[key] = tuple(value)
    return result


def parseTrunks(value):
    """
    @param value: a list of trunk tables (TOML C{[[trunk]]}) or L{Trunk}s,
        or one table.
    @return: a C{tuple} of L{Trunk}.
    @raise ConfigError: for a bad trunk or two trunks with one name.
    """
    if isinstance(value, (dict, Trunk)):
        value = [value]
    if not isinstance(value, (list, tuple)):
        raise ConfigError("trunk: expected [[trunk]] tables")
    trunks = tuple(parseTrunk(v, i) for i, v in enumerate(value))
    names = [t.name for t in trunks]
    for name in names:
        if names.count(name) > 1:
            raise ConfigError(f"trunk: two trunks are named {name!r}")
    return trunks


def loadTOML(path, base=None):
    """
    Read a TOML configuration file.

    @param path: file path.
    @param base: the L{LinkRTCConfig} to start from (defaults if C{None}).
    @raise ConfigError: unreadable file, bad TOML, unknown key or bad value.
    """
    try:
        with open(path, "rb") as f:
            data = tomllib.load(f)
    except OSError as e:
        raise ConfigError(f"config: cannot read {path}: {e.strerror}")
    except tomllib.TOMLDecodeError as e:
        raise ConfigError(f"config: {path}: {e}")
    return applyChanges(base or LinkRTCConfig(), data)


def applyChanges(config, changes):
    """
    @param changes: C{{option name: value}}.
    @return: a new L{LinkRTCConfig}.
    """
    updates = dict(normalise(k, v) for k, v in changes.items())
    return config.replace(**updates)


def configOrExit(**fields):
    """
    Build a L{LinkRTCConfig} in a .tac file (etc/linkrtc.tac): a bad value
    ends twistd with one line naming the key, instead of a traceback.

    @param fields: L{LinkRTCConfig}'s fields (C{ringTimeout=30.0}, ...).
    @return: the L{LinkRTCConfig}.
    @raise SystemExit: C{"linkrtc: KEY: ..."} for a bad value or an
        unknown field.
    """
    try:
        return LinkRTCConfig(**fields)
    except (ConfigError, TypeError) as e:
        raise SystemExit(f"linkrtc: {e}")
