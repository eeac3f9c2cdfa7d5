# -*- test-case-name: linkrtc.test.test_tap -*-
"""
C{twistd linkrtc}: command-line options and the service they make.

Run C{twistd -n linkrtc} to start on the embedded defaults (SIP on UDP and
TCP 127.0.0.1:5060, HTTP and the WebSocket on 127.0.0.1:8080).
"""

import os
import sys

from twisted.python import usage

from linkrtc._version import __version__
from linkrtc.config import ConfigError, LinkRTCConfig, applyChanges, loadTOML
from twisted import copyright


class InvalidValue(usage.UsageError):
    """A value on the command line or in the C{--config} file is invalid."""


class Options(usage.Options):
    """The options of C{twistd linkrtc}; docs/configuration.rst lists them."""

    synopsis = "[options]"
    longdesc = (
        "LinkRTC: a telephony switch between SIP and WebRTC. With no options it "
        "listens for SIP on udp and tcp 127.0.0.1:5060 and for HTTP/WebSocket on "
        "127.0.0.1:8080."
    )

    optParameters = [
        ["http", None, None, "HTTP endpoint (WebSocket at /ws) [default: tcp:8080:interface=127.0.0.1]"],
        ["public-address", None, None, "Host written into Via, Contact and SDP (when behind NAT)."],
        ["config", "c", None, "TOML configuration file (optional)."],
        ["media", None, None, "Media mode: bridge, or passthrough for WebRTC-capable SIP peers [default: bridge]."],
        ["webhook", None, None, "URL of the application's webhook (default: route to the client named by the Request-URI user)."],
        ["webhook-secret", None, None, "Key for the X-LinkRTC-Signature HMAC-SHA256 header."],
        ["webhook-timeout", None, None, "Seconds before the webhook counts as failed (503 to the caller) [default: 5]."],
        ["ring-timeout", None, None, "Seconds a call may ring before 480 [default: 60]."],
        ["media-timeout", None, None, "Seconds without RTP in a confirmed call before BYE [default: 30]."],
        ["cdr", None, None, "Append each call's CDR as a JSON line to this file."],
        ["rtp-ports", None, None, "UDP port range for RTP, LOW-HIGH [default: 20000-29999]."],
        ["max-ring-seconds", None, None, "Seconds an outbound call waits for the answer (again from the first 180/183) [default: 60]."],
        ["max-answer-seconds", None, None, "Seconds an answered outbound call may last before LinkRTC hangs up [default: no limit]."],
        ["log-level", None, None, "Lowest level logged: debug, info, warn, error [default: info]."],
        ["sip-idle-timeout", None, None, "Seconds before an idle SIP TCP/TLS connection is closed; 0 never [default: 60]."],
        ["event-loop", None, None, "asyncio event loop under the reactor: uvloop, or asyncio for the standard library's [default: uvloop]."],
        ["webhook-queue-size", None, None, "Most state/dtmf/cdr webhook events held for delivery; more are dropped [default: 1000]."],
        ["webhook-give-up-seconds", None, None, "Seconds after which an undelivered state/dtmf/cdr webhook event is dropped [default: 300]."],
        ["drain-seconds", None, None, "Seconds live calls may go on after SIGTERM before LinkRTC ends them and exits [default: 300]."],
        ["auth-secret", None, None, "Key (32+ characters) clients' JWT access tokens are signed with (HS256); also env LINKRTC_AUTH_SECRET. Without one, only loopback clients may connect."],
        ["register-timeout", None, None, "Seconds a WebSocket may stay without a successful register [default: 10]."],
        ["max-connections-per-address", None, None, "Open WebSockets allowed per source address [default: 50]."],
        ["application", None, None, "An in-process call-control application, package.module:factory (docs/api.rst)."],
        ["server-header", None, None, "Server/User-Agent header of SIP, HTTP and the webhook [default: LinkRTC, no version]."],
        ["sip-rate-limit", None, None, "Out-of-dialog SIP requests a second allowed per source address; 0 no limit [default: 100]."],
        ["sip-rate-burst", None, None, "SIP requests a source may send at once [default: twice the rate]."],
        ["sip-ban-seconds", None, None, "Seconds a SIP source over the rate is ignored for [default: 30]."],
        ["max-calls", None, None, "Most calls at once; more INVITEs get 503; 0 no limit [default: 1000]."],
        ["max-ringing-per-client", None, None, "Most unanswered incoming calls from one source address; 0 no limit [default: 10]."],
        ["max-sip-transactions", None, None, "Most SIP server transactions held at once; 0 no limit [default: 20000]."],
        ["max-loop-lag", None, None, "Milliseconds of event-loop lag (smoothed) above which new INVITEs get 503 (overload control); 0 off [default: 200]."],
        ["resume-seconds", None, None, "Seconds an answered call waits for a client whose WebSocket closed to resume it; 0 ends it at once [default: 10]."],
        ["early-media", None, None, "Bridge mode: 183 with SDP and a ringback tone to SIP callers until the client answers: on or off [default: on]."],
        ["ringback-tone", None, None, "The ringback's country: us, uk, de, fr, ... or none for silence [default: us]."],
        ["redis", None, None, "Redis URL of a cluster's shared client directory, redis://HOST:PORT/DB (docs/scaling.rst) [default: in-process]."],
        ["node-id", None, None, "This node's id in the cluster [default: HOSTNAME-PID]."],
        ["node-address", None, None, "HOST:PORT other nodes and Kamailio reach this node's SIP at [default: the first --sip endpoint's]."],
        ["directory-ttl", None, None, "Seconds a client's entry lives in Redis without a refresh [default: 30]."],
        ["session-expires", None, None, "RFC 4028 session interval asked for and granted at most, seconds [default: 1800]."],
        ["min-se", None, None, "RFC 4028 shortest session interval accepted (Min-SE), seconds [default: 90]."],
    ]

    optFlags = [
        ["sip-rate-limit-loopback", None, "Rate-limit loopback SIP sources too (they are exempt by default)."],
    ]

    def __init__(self):
        super().__init__()
        self["sip"] = []
        self["operator"] = []
        self["ice-server"] = []
        self["ice-address"] = []
        self["allowed-origin"] = []

    def opt_sip(self, endpoint):
        """SIP endpoint; repeatable: udp:PORT[:interface=ADDR], tcp:..., tls:/ssl:... [default: udp and tcp 127.0.0.1:5060]"""
        self["sip"].append(endpoint)

    def opt_operator(self, spec):
        """Add an operator plugin, NAME[:ARG]; repeatable (see --help-operators)."""
        self["operator"].append(spec)

    def opt_ice_server(self, url):
        """STUN or TURN URL for the WebRTC leg; repeatable."""
        self["ice-server"].append(url)

    def opt_ice_address(self, address):
        """A host address ICE may offer; repeatable (default: all but loopback)."""
        self["ice-address"].append(address)

    def opt_allowed_origin(self, origin):
        """A browser origin (https://app.example.com) allowed on /ws besides the page's own; repeatable."""
        self["allowed-origin"].append(origin)

    def opt_help_operators(self):
        """List the operator plugins that --operator can add, and exit."""
        from linkrtc.call.registry import helpOperators

        sys.stdout.write(helpOperators())
        sys.exit(0)

    def postOptions(self):
        """
        Build C{self.config}, a L{LinkRTCConfig}: defaults, then the
        C{--config} file, then the command line.

        @raise usage.UsageError: for any invalid value.
        """
        try:
            config = LinkRTCConfig()
            if self["config"]:
                config = loadTOML(self["config"], config)
            changes = {}
            for key in ("http", "public-address", "media", "webhook", "webhook-secret",
                        "webhook-timeout", "ring-timeout", "media-timeout", "cdr", "rtp-ports",
                        "log-level", "max-ring-seconds", "max-answer-seconds", "event-loop",
                        "sip-idle-timeout"):
                if self[key] is not None:
                    changes[key] = self[key]
            if self["application"] is not None:
                changes["application"] = self["application"]
            if self["server-header"] is not None:
                changes["server-header"] = self["server-header"]
            for key in ("webhook-queue-size", "webhook-give-up-seconds"):
                if self[key] is not None:
                    changes[key] = self[key]
            if self["drain-seconds"] is not None:
                changes["drain-seconds"] = self["drain-seconds"]
            if self["resume-seconds"] is not None:
                changes["resume-seconds"] = self["resume-seconds"]
            for key in ("sip", "operator", "ice-server", "ice-address"):
                if self[key]:
                    changes[key] = self[key]
            for key in ("auth-secret", "register-timeout", "max-connections-per-address"):
                if self[key] is not None:
                    changes[key] = self[key]
            if self["allowed-origin"]:
                changes["allowed-origin"] = self["allowed-origin"]
            for key in ("sip-rate-limit", "sip-rate-burst", "sip-ban-seconds", "max-calls",
                        "max-ringing-per-client", "max-sip-transactions", "max-loop-lag"):
                if self[key] is not None:
                    changes[key] = self[key]
            if self["sip-rate-limit-loopback"]:
                changes["sip-rate-limit-loopback"] = True
            for key in ("early-media", "ringback-tone"):
                if self[key] is not None:
                    changes[key] = self[key]
            for key in ("redis", "node-id", "node-address", "directory-ttl",
                        "session-expires", "min-se"):
                if self[key] is not None:
                    changes[key] = self[key]
            envSecret = os.environ.get("LINKRTC_AUTH_SECRET")
            if self["auth-secret"] is None and envSecret and config.authSecret is None:
                changes["auth-secret"] = envSecret
            config = applyChanges(config, changes)
        except ConfigError as e:
            raise InvalidValue(str(e))
        self.config = config

    def parseOptions(self, options=None):
        """
        Parse C{options} (by default the command line).

        @raise usage.UsageError: for unknown options, and L{InvalidValue}
            (one line naming the key) for a bad value.
        @raise SystemExit: instead of L{InvalidValue} when run by twistd
            (as its C{linkrtc} subcommand): the one line goes to stderr,
            without twistd's usage text, and the exit status is 1.
        """
        try:
            super().parseOptions(options)
        except InvalidValue as e:
            if self.parent is None:
                raise
            raise SystemExit(f"linkrtc: {e}")

    def opt_version(self):
        """Display LinkRTC's and Twisted's versions and exit."""
        sys.stdout.write(f"LinkRTC {__version__} (Twisted {copyright.version})\n")
        sys.exit(0)


def installReactor(eventLoop="uvloop"):
    """
    Make sure the running reactor is Twisted's asyncio reactor (aiortc needs
    asyncio): install it when none was chosen, refuse any other.

    @param eventLoop: C{"asyncio"} (the standard library's loop) or
        C{"uvloop"} (libuv: UDP for the WebRTC leg costs about a quarter);
        applies only when no reactor was chosen with C{--reactor}.
    @raise SystemExit: when another reactor is installed, or uvloop is
        asked for and not installed.
    """
    if "twisted.internet.reactor" not in sys.modules:
        from twisted.internet import asyncioreactor

        loop = None
        if eventLoop == "uvloop":
            try:
                import uvloop
            except ImportError:
                raise SystemExit("--event-loop uvloop needs uvloop (pip install uvloop), "
                                 "or use --event-loop asyncio")
            loop = uvloop.new_event_loop()
        asyncioreactor.install(loop)
    from twisted.internet import reactor
    from twisted.internet.asyncioreactor import AsyncioSelectorReactor

    if not isinstance(reactor, AsyncioSelectorReactor):
        raise SystemExit(
            f"linkrtc needs the asyncio reactor (aiortc runs on asyncio), not "
            f"{type(reactor).__module__}: use --reactor=asyncio or no --reactor at all"
        )
    return reactor


def makeService(options):
    """
    Build LinkRTC's service tree from parsed L{Options}.

    @return: an L{IService} (a C{MultiService}).
    """
    reactor = installReactor(options.config.eventLoop)
    from twisted.logger import Logger

    from linkrtc.service import makeLinkRTCService

    loop = getattr(reactor, "_asyncioEventloop", None)
    Logger().info("asyncio reactor on {loop}", loop=type(loop).__module__ if loop else "?")

    return makeLinkRTCService(options.config, reactor)
