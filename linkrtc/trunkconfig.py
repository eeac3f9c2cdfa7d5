# -*- test-case-name: linkrtc.test.test_config -*-
"""
The SIP trunks of the configuration: L{Trunk} and the parsing of the TOML
C{[[trunk]]} tables (L{parseTrunk}, L{parseTrunks}); docs/trunks.rst
describes every key. L{linkrtc.config} keeps these names.
"""

import dataclasses
from dataclasses import dataclass, field

from linkrtc.configvalues import ConfigError
from linkrtc.error import SIPParseError
from linkrtc.sip.uri import SIPURI, parseURI

# linkrtc.sip.transport (Twisted's internet) and linkrtc.call.dialplan
# (prometheus_client) are imported where they are used: this module loads
# with linkrtc.config, which the command line (linkrtc.cli) and twistd's
# option parsing import; the two would cost them about 0.3 s of CPU.

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
        host, port = self.domainHostPort()
        return str(SIPURI("sip", user=self.username or None, host=host, port=port))

    def destination(self):
        """@return: the L{linkrtc.sip.transport.Address} requests are sent to."""
        from linkrtc.sip.transport import Address  # see the module's imports

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
    from linkrtc.call.dialplan import compilePatterns  # see the module's imports

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
