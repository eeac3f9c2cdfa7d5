# -*- test-case-name: linkrtc.test.test_startup -*-
"""
Start-up: binding every listening endpoint before anything is served, and
the log lines that say what is served.

Under twistd the endpoints are bound in C{privilegedStartService}, before
the reactor runs. An endpoint that cannot be bound ends the process (exit
status 1) with one line, C{linkrtc: cannot listen on ENDPOINT: REASON},
on stderr and in the log; no traceback (L{CannotListen}). Once everything is bound,
L{StartupReport} logs one line per service (docs/configuration.rst,
"Start-up").
"""

import sys
from urllib.parse import urlsplit, urlunsplit

from twisted.application.internet import StreamServerEndpointService
from twisted.application.service import Service
from twisted.logger import Logger

from linkrtc._version import __version__
from linkrtc.error import LinkRTCError
from linkrtc.sip.endpoints import streamServerFromString

log = Logger()


def listenFailureReason(error):
    """
    @param error: the exception of a failed listen (a
        L{twisted.internet.error.CannotListenError} usually).
    @return: why, in a few words, C{str}: C{"address already in use"}.
    """
    socketError = getattr(error, "socketError", None)
    text = getattr(socketError, "strerror", None) or str(socketError or error).strip()
    text = text or type(error).__name__
    return text[:1].lower() + text[1:]


class CannotListen(LinkRTCError):
    """
    A listening endpoint cannot be bound at start-up. Raised out of
    C{privilegedStartService}, it ends twistd with status 1: twistd removes
    its pid file and, when daemonizing, reports the message to the parent
    process; L{quietExceptHook} keeps the traceback out of the output.
    """


def quietExceptHook(previous):
    """
    @param previous: the C{sys.excepthook} to call for other exceptions.
    @return: a C{sys.excepthook} that prints nothing for L{CannotListen}
        (its one line is already written).
    """

    def hook(kind, value, traceback):
        if not issubclass(kind, CannotListen):
            previous(kind, value, traceback)

    hook.quietCannotListen = True
    return hook


def exitCannotListen(description, error, stderr=None):
    """
    End start-up because an endpoint cannot be bound: write one line,
    C{linkrtc: cannot listen on ENDPOINT: REASON}, to the log (critical)
    and to the process's stderr, and raise L{CannotListen} (C{cannot listen
    on ENDPOINT: REASON}) after installing L{quietExceptHook}.

    @param description: the endpoint string, C{str}.
    @param error: the exception of the failed listen.
    @param stderr: the file written to; the process's original stderr
        (C{sys.__stderr__}, not twistd's redirection into the log) if
        C{None}.
    @raise CannotListen: always.
    """
    reason = f"cannot listen on {description}: {listenFailureReason(error)}"
    line = f"linkrtc: {reason}"
    log.critical("{line}", line=line)
    stderr = stderr if stderr is not None else sys.__stderr__
    if stderr is not None:
        stderr.write(line + "\n")
        stderr.flush()
    if not getattr(sys.excepthook, "quietCannotListen", False):
        sys.excepthook = quietExceptHook(sys.excepthook)
    raise CannotListen(reason)


def _synchronousFailure(d):
    """@return: the exception a fired L{Deferred} failed with, or C{None}."""
    failures = []
    d.addErrback(failures.append)
    return failures[0].value if failures else None


class EndpointService(StreamServerEndpointService):
    """
    A stream server on one endpoint string (the HTTP server) that binds at
    start-up or ends the process (L{exitCannotListen}); C{ssl:} strings get
    LinkRTC's TLS policy (L{linkrtc.sip.endpoints.streamServerFromString}).

    @ivar description: the endpoint string.
    @ivar port: the L{IListeningPort} once bound, else C{None}.
    """

    def __init__(self, reactor, description, factory):
        super().__init__(streamServerFromString(reactor, description), factory)
        self.description = description
        self.port = None

    def privilegedStartService(self):
        """
        Bind now.

        @raise CannotListen: when the endpoint cannot be bound.
        """
        self._raiseSynchronously = True
        try:
            super().privilegedStartService()
        except Exception as e:
            exitCannotListen(self.description, e)
        self._waitingForPort.addCallback(self._bound)

    def _bound(self, port):
        self.port = port
        return port


class SIPListening:
    """
    Binds the SIP endpoints of a transport layer at start-up, in order, or
    ends the process (L{exitCannotListen}); used by
    L{linkrtc.service.SIPService}.

    @ivar transport: a L{linkrtc.sip.transport.SIPTransportLayer}.
    @ivar endpoints: the endpoint strings, C{tuple} of C{str}.
    @ivar bound: C{True} once every endpoint is bound.
    """

    def __init__(self, transport, endpoints):
        self.transport = transport
        self.endpoints = tuple(endpoints)
        self.bound = False

    def listen(self):
        """
        Bind every endpoint (once).

        @raise CannotListen: when one cannot be bound.
        """
        if self.bound:
            return
        for description in self.endpoints:
            try:
                error = _synchronousFailure(self.transport.listen(description))
            except Exception as e:
                error = e
            if error is not None:
                exitCannotListen(description, error)
        self.bound = True


def _urlHost(host, fallback):
    if host in ("0.0.0.0", "::", ""):
        host = fallback or host
    return f"[{host}]" if ":" in host else host


def redactURL(url):
    """@return: C{url} without its user information (a password may be there)."""
    parts = urlsplit(url)
    if "@" not in parts.netloc:
        return url
    return urlunsplit(parts._replace(netloc=parts.netloc.rpartition("@")[2]))


def describeTrunk(trunk):
    """@return: C{"NAME (PROXY, TRANSPORT[, registering as USER][, SRTP MODE])"}."""
    text = f"{trunk.name} ({trunk.proxy}, {trunk.destination().transport}"
    if trunk.register:
        text += f", registering as {trunk.username}"
    if trunk.srtp != "off":
        text += f", SRTP {trunk.srtp}"
    return text + ")"


class StartupReport(Service):
    """
    Logs what is served, one line per service, when started (after the SIP
    and HTTP services, so with the addresses actually bound): SIP
    endpoints, softphone URL, WebSocket URL, media mode and RTP range,
    trunks, and the webhook or default routing.

    @ivar config: the L{linkrtc.config.LinkRTCConfig}.
    @ivar transport: the L{linkrtc.sip.transport.SIPTransportLayer}.
    @ivar http: the L{EndpointService} of the HTTP server.
    """

    name = "startup-report"

    def __init__(self, config, transport, http):
        self.config = config
        self.transport = transport
        self.http = http

    def lines(self):
        """@return: the report, a C{list} of one-line C{str}."""
        config = self.config
        sip = ", ".join(f"{a.transport} {_urlHost(a.host, None)}:{a.port}"
                        for a in self.transport.listeningAddresses())
        lines = [f"LinkRTC {__version__}: SIP on {sip or 'no endpoint'}"]
        port = self.http.port
        if port is not None:
            address = port.getHost()
            secure = self.http.description.split(":", 1)[0].lower() in ("ssl", "tls")
            hostPort = f"{_urlHost(address.host, config.publicAddress)}:{address.port}"
            lines.append(f"softphone at {'https' if secure else 'http'}://{hostPort}/")
            lines.append(f"WebSocket at {'wss' if secure else 'ws'}://{hostPort}/ws")
        low, high = config.rtpPorts
        if config.media == "bridge":
            lines.append(f"media: bridge, RTP on UDP ports {low}-{high}")
        else:
            lines.append(f"media: {config.media} (RTP flows between the peers; "
                         f"rtp-ports {low}-{high} unused)")
        trunks = ", ".join(describeTrunk(t) for t in config.trunks)
        lines.append(f"trunks: {trunks or 'none'}")
        if config.webhook:
            lines.append(f"routing: webhook {redactURL(config.webhook)}")
        else:
            lines.append("routing: default routing (each call to the client named by the "
                         "Request-URI user)")
        return lines

    def startService(self):
        Service.startService(self)
        for line in self.lines():
            log.info("{line}", line=line)
