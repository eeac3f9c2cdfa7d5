# -*- test-case-name: linkrtc.test.test_config -*-
"""
The checks of L{linkrtc.config.normalise} beyond types: host names and
addresses, the webhook URL, endpoint strings, STUN/TURN URLs and operator
plugin names. Each raises L{ConfigError} with one line naming the key.
"""

import ipaddress
import re
from urllib.parse import urlsplit

from twisted.internet.testing import MemoryReactor

from linkrtc.call.registry import buildMachine
from linkrtc.config import ConfigError
from linkrtc.error import OperatorConfigError
from linkrtc.sip.endpoints import sipServerFromString, streamServerFromString

_HOSTNAME_LABEL = re.compile(r"(?!-)[A-Za-z0-9-]{1,63}(?<!-)\Z")


def isHost(text):
    """
    @param text: C{str}.
    @return: C{True} when C{text} is an IPv4 or IPv6 literal (without
        brackets) or a valid DNS host name (RFC 1123 section 2.1: labels of
        letters, digits and hyphens, at most 63 characters each, 253 in all).
    """
    if not isinstance(text, str) or not text:
        return False
    try:
        ipaddress.ip_address(text)
        return True
    except ValueError:
        pass
    name = text[:-1] if text.endswith(".") else text
    if not name or len(name) > 253 or name.replace(".", "").isdigit():
        return False
    return all(_HOSTNAME_LABEL.match(label) for label in name.split("."))


def _checkPublicAddress(key, value):
    if not isHost(value):
        raise ConfigError(f"{key}: expected an IP address or a host name, got {value!r}")


def _checkWebhook(key, value):
    problem = None
    try:
        parts = urlsplit(value)
        parts.port
    except ValueError as e:
        problem = str(e)
    else:
        if parts.scheme.lower() not in ("http", "https"):
            problem = "the scheme must be http or https"
        elif not parts.hostname or not isHost(parts.hostname):
            problem = "no valid host"
    if problem is None and any(c.isspace() or ord(c) < 32 for c in value):
        problem = "white space in the URL"
    if problem is not None:
        raise ConfigError(f"{key}: expected an http:// or https:// URL with a host, "
                          f"got {value!r} ({problem})")


def _checkSIPEndpoints(key, value):
    for description in value:
        try:
            sipServerFromString(MemoryReactor(), description)
        except Exception as e:
            raise ConfigError(f"{key}: bad endpoint {description!r}: {e}")


def _checkHTTPEndpoint(key, value):
    try:
        streamServerFromString(MemoryReactor(), value)
    except Exception as e:
        raise ConfigError(f"{key}: bad endpoint {value!r}: {e}")


def _checkICEAddresses(key, value):
    for address in value:
        try:
            ipaddress.ip_address(address)
        except ValueError:
            raise ConfigError(f"{key}: expected an IP address, got {address!r}")


def _checkOperators(key, value):
    try:
        buildMachine(value)
    except OperatorConfigError as e:
        raise ConfigError(f"{key}: {e}")


ICE_SCHEMES = ("stun", "stuns", "turn", "turns")


def _checkICEURL(key, url, credentials):
    """
    Check one STUN (RFC 7064) or TURN (RFC 7065) URI: C{SCHEME:HOST[:PORT]}
    with C{?transport=udp|tcp} allowed for TURN only.

    @param credentials: C{True} when a username and credential come with it
        (TURN needs them).
    @raise ConfigError: naming C{key}.
    """
    scheme, colon, rest = url.partition(":") if isinstance(url, str) else ("", "", "")
    scheme = scheme.lower()
    hostPort, _, query = rest.partition("?")
    if hostPort.startswith("["):
        host, bracket, port = hostPort[1:].partition("]")
        ok = bool(bracket) and ":" in host and isHost(host) and (not port or port[:1] == ":")
        port = port[1:]
    else:
        host, _, port = hostPort.partition(":")
        ok = isHost(host)
    ok = ok and colon and scheme in ICE_SCHEMES and "@" not in rest
    ok = ok and (not port or (port.isdigit() and 1 <= int(port) <= 65535))
    if query:
        ok = ok and scheme.startswith("turn") and query.lower() in ("transport=udp",
                                                                    "transport=tcp")
    if not ok:
        raise ConfigError(f"{key}: expected stun:, stuns:, turn: or turns: HOST[:PORT], "
                          f"got {url!r}")
    if scheme.startswith("turn") and not credentials:
        raise ConfigError(f"{key}: {url!r} needs a username and credential (give a table "
                          "with urls, username and credential)")


def parseICEServers(key, value):
    """
    Check the STUN/TURN servers of the WebRTC leg.

    @param value: a URL, or a list of URLs (C{str}) and tables (C{dict})
        with C{urls} (a URL or a list of them), C{username} and
        C{credential}.
    @return: a C{tuple} of URLs and C{dict}s.
    @raise ConfigError: naming C{key}, for anything else.
    """
    if isinstance(value, (str, dict)):
        value = (value,)
    if not isinstance(value, (list, tuple)):
        raise ConfigError(f"{key}: expected a list of URLs or tables")
    servers = []
    for server in value:
        if isinstance(server, str):
            _checkICEURL(key, server, False)
            servers.append(server)
            continue
        if not isinstance(server, dict):
            raise ConfigError(f"{key}: expected a URL or a table, got {server!r}")
        unknown = set(server) - {"urls", "username", "credential"}
        if unknown:
            raise ConfigError(f"{key}: unknown key {sorted(unknown)[0]!r} (use urls, username, "
                              "credential)")
        for field in ("username", "credential"):
            if server.get(field) is not None and not isinstance(server[field], str):
                raise ConfigError(f"{key}: {field} must be a string")
        urls = server.get("urls")
        urls = [urls] if isinstance(urls, str) else urls
        if not isinstance(urls, (list, tuple)) or not urls:
            raise ConfigError(f"{key}: a table needs urls (a URL or a list of them)")
        credentials = server.get("username") is not None and server.get("credential") is not None
        for url in urls:
            _checkICEURL(key, url, credentials)
        servers.append(dict(server))
    return tuple(servers)


#: Attribute name -> a further check of a value already of the right type.
CHECKS = {
    "sip": _checkSIPEndpoints,
    "http": _checkHTTPEndpoint,
    "publicAddress": _checkPublicAddress,
    "webhook": _checkWebhook,
    "iceAddresses": _checkICEAddresses,
    "operators": _checkOperators,
}
