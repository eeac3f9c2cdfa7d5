# -*- test-case-name: linkrtc.test.test_tap -*-
"""
C{twistd linkrtc}: command-line options and the service they make.

Run C{twistd -n linkrtc} to start on the embedded defaults (SIP on UDP and
TCP 127.0.0.1:5060, HTTP and the WebSocket on 127.0.0.1:8080).
"""

import sys

from twisted.python import usage

from linkrtc.config import ConfigError, LinkRTCConfig, applyChanges, loadTOML


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
        ["application", None, None, "An in-process call-control application, package.module:factory (docs/api.rst)."],
    ]

    def __init__(self):
        super().__init__()
        self["sip"] = []
        self["operator"] = []
        self["ice-server"] = []
        self["ice-address"] = []

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
            for key in ("webhook-queue-size", "webhook-give-up-seconds"):
                if self[key] is not None:
                    changes[key] = self[key]
            for key in ("sip", "operator", "ice-server", "ice-address"):
                if self[key]:
                    changes[key] = self[key]
            config = applyChanges(config, changes)
        except ConfigError as e:
            raise usage.UsageError(str(e))
        from twisted.internet.testing import MemoryReactor

        from linkrtc.sip.endpoints import sipServerFromString

        for description in config.sip:
            try:
                sipServerFromString(MemoryReactor(), description)
            except Exception as e:
                raise usage.UsageError(f"--sip {description}: {e}")
        self.config = config


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
