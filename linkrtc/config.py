# -*- test-case-name: linkrtc.test.test_config -*-
"""
LinkRTC's configuration: one frozen L{LinkRTCConfig}, built from embedded
defaults, an optional TOML file (C{--config}) and command-line options, in
that order of precedence (the command line wins).

Every key of the TOML file is the long option's name with dashes or
underscores (C{public-address} or C{public_address}); times are in seconds.
docs/configuration.rst lists them all.

The trunk tables are parsed in L{linkrtc.trunkconfig}, plain values
checked in L{linkrtc.configvalues}; their names are kept here. Modules of
the SIP, media and signalling layers are imported inside the checks that
use them: the command line (L{linkrtc.cli}) and twistd's option parsing
import this module, and would pay for them at every start.
"""

import dataclasses
import re
import tomllib
from dataclasses import dataclass, field

from linkrtc.configvalues import (
    ConfigError,
    _count,
    _countOrNone,
    _nonNegative,
    _positive,
    parseRTPPorts,
)
from linkrtc.trunkconfig import TRANSPORTS, TRUNK_KEYS, Trunk, parseTrunk, parseTrunks

#: What this module gives, its own and what it keeps from
#: L{linkrtc.configvalues} and L{linkrtc.trunkconfig}.
__all__ = [
    "KEYS", "MEDIA_MODES", "OPTION_NAMES", "TRANSPORTS", "TRUNK_KEYS", "ConfigError",
    "LinkRTCConfig", "Trunk", "_count", "_countOrNone", "_nonNegative", "_positive",
    "applyChanges", "configOrExit", "loadTOML", "normalise", "parseRTPPorts", "parseTrunk",
    "parseTrunks",
]


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
    #: Milliseconds of smoothed event-loop lag above which new INVITEs get
    #: 503 (overload control, linkrtc/overload.py), or C{None} for off.
    maxLoopLag: int | None = 200
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
    "max-loop-lag": "maxLoopLag",
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
    elif name in ("sipRateBurst", "maxCalls", "maxRingingPerClient", "maxSipTransactions",
                  "maxLoopLag"):
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
