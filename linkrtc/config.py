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
    """

    sip: tuple = ("udp:5060:interface=127.0.0.1", "tcp:5060:interface=127.0.0.1")
    http: str = "tcp:8080:interface=127.0.0.1"
    publicAddress: str | None = None
    media: str = "passthrough"
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

    def replace(self, **changes):
        """@return: a copy with C{changes} applied."""
        return dataclasses.replace(self, **changes)


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
}


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
    if not 1024 <= low <= high <= 65535:
        raise ConfigError(f"rtp-ports: range {low}-{high} outside 1024-65535")
    return (low, high)


def _positive(key, value):
    try:
        number = float(value)
    except (TypeError, ValueError):
        raise ConfigError(f"{key}: expected seconds, got {value!r}")
    if number <= 0:
        raise ConfigError(f"{key}: must be positive, got {value!r}")
    return number


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
    if name in ("webhookTimeout", "ringTimeout", "mediaTimeout"):
        value = _positive(key, value)
    elif name == "rtpPorts":
        value = parseRTPPorts(value)
    elif name == "media":
        if value not in MEDIA_MODES:
            raise ConfigError(f"media: expected one of {', '.join(MEDIA_MODES)}, got {value!r}")
    elif name in ("sip", "operators", "iceServers", "iceAddresses"):
        if isinstance(value, str):
            value = (value,)
        if not all(isinstance(v, str) for v in value):
            raise ConfigError(f"{key}: expected a list of strings")
        value = tuple(value)
    elif name == "clientTokens":
        if not isinstance(value, dict):
            raise ConfigError(f"{key}: expected a table of name = token")
        value = {str(k): str(v) for k, v in value.items()}
    elif value is not None and not isinstance(value, str):
        raise ConfigError(f"{key}: expected a string, got {value!r}")
    return name, value


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
