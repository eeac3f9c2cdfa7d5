# -*- test-case-name: linkrtc.test.test_service -*-
"""
The one place that builds LinkRTC's layers and wires them together.

L{makeLinkRTCService} is used by C{twistd linkrtc} (L{linkrtc.tap}) and by
.tac files (etc/linkrtc.tac).
"""

import gc
import os

from twisted.application.service import MultiService, Service
from twisted.internet import defer
from twisted.logger import Logger
from twisted.web.static import Data

from linkrtc._version import __version__
from linkrtc.adminauth import METRICS, AdminGuard
from linkrtc.api.rpc import ApiResource, webhookSink
from linkrtc.api.webhook import DefaultApplication, WebhookApplication
from linkrtc.app.api import loadApplication
from linkrtc.app.application import ApiApplication
from linkrtc.app.auth import ApiAuthorizer
from linkrtc.app.control import CallControl
from linkrtc.app.dial import ApplicationDialer
from linkrtc.app.jsonrpc import JsonRpcEndpoint
from linkrtc.call.dialer import OutboundDialer
from linkrtc.call.manager import buildCallManager
from linkrtc.call.passthrough import PassthroughMediaFactory
from linkrtc.call.sipphones import PhoneRinger
from linkrtc.call.wsphones import WebSocketPhones
from linkrtc.cluster.service import makeClusterDirectory
from linkrtc.drain import Admission, DrainService, adminResource
from linkrtc.logging import LogLevelService, levelNamed
from linkrtc.media.actions.mixer import Conference
from linkrtc.monitoring import (
    HealthResource,
    MetricsResource,
    ReadinessResource,
    SIPMessageCounter,
    bindSwitchGauges,
)
from linkrtc.overload import LoopLagMonitor
from linkrtc.reference import EngineReference, Reference
from linkrtc.signalling.api import ApiFactory, makeApiWebSocketResource
from linkrtc.signalling.directory import ClientDirectory
from linkrtc.signalling.guard import SourceGuard
from linkrtc.signalling.protocol import SignallingFactory, makeWebSocketResource
from linkrtc.signalling.sipws import SIPWebSocketFactory, makeSIPWebSocketResource
from linkrtc.signalling.tokens import TokenVerifier, parseKeys
from linkrtc.sip.bindings import BindingTable
from linkrtc.sip.messaging import Messenger
from linkrtc.sip.ratelimit import SourceRateLimiter
from linkrtc.sip.redact import redactMessage
from linkrtc.sip.registrar import DigestServer, Registrar, SIPUserStore
from linkrtc.sip.sessiontimer import SessionTimerSettings
from linkrtc.sip.transaction import TransactionLayer
from linkrtc.sip.transport import SIPTransportLayer
from linkrtc.sip.useragent import UserAgent
from linkrtc.startup import EndpointService, SIPListening, StartupReport
from linkrtc.trunks import TrunkService, statusResource
from linkrtc.webroot import StaticFiles, WebSite

log = Logger()


class SIPService(Service):
    """
    Listens for SIP on the configured endpoints while running.

    @ivar transport: the L{linkrtc.sip.transport.SIPTransportLayer}.
    @ivar listening: C{True} once every endpoint listens, until stopped
        (for C{/readyz}).
    """

    name = "sip"

    def __init__(self, transport, endpoints):
        self.transport = transport
        self.endpoints = tuple(endpoints)
        self.binder = SIPListening(transport, self.endpoints)
        self.listening = False

    def privilegedStartService(self):
        """Bind every endpoint, or end the process (L{linkrtc.startup.exitCannotListen})."""
        Service.privilegedStartService(self)
        self.binder.listen()

    def startService(self):
        Service.startService(self)
        self.binder.listen()
        self.listening = True

    def stopService(self):
        Service.stopService(self)
        self.listening = False
        return defer.maybeDeferred(self.transport.stopListening)


class Shutdown(Service):
    """Closes every call and media session before the reactor stops."""

    name = "shutdown"

    def __init__(self, closers):
        self.closers = closers

    def stopService(self):
        Service.stopService(self)
        return defer.DeferredList([defer.maybeDeferred(c) for c in self.closers])


class SIPLadder:
    """
    Sends every SIP message of a call to the clients of that call that
    registered with C{"trace": true} (the demo page's ladder, as
    C{{"type": "trace", "proto": "sip", ...}}). Costs nothing while no
    client traces. C{Authorization} / C{Proxy-Authorization} values are
    redacted (L{linkrtc.sip.redact}): credentials never leave the switch.
    """

    def __init__(self, manager, directory):
        """
        @param manager: the call engine, or the L{EngineReference} bound to
            it (the transport is built before the engine).
        @param directory: the L{linkrtc.signalling.directory.ClientDirectory}.
        """
        self.manager = manager
        self.directory = directory

    def __call__(self, direction, message, data, address):
        if not self.directory.tracing:
            return
        try:
            sipCallId = message.callId
        except Exception:
            return
        for call in list(self.manager.calls.values()):
            if getattr(call.leg, "callId", None) == sipCallId:
                names = {c.clientName for c in call.connections} | {call.clientName}
                names.discard(None)
                self.directory.trace(call.id, direction, "sip", redactMessage(data), names)


STATIC = os.path.join(os.path.dirname(os.path.abspath(__file__)), "static")


def makeRootResource(adminGuard=None):
    """
    @param adminGuard: the L{linkrtc.adminauth.AdminGuard} that keeps
        C{/version} to loopback peers and admin tokens; C{None} for
        loopback only.
    @return: the HTTP root: the demo softphone (C{/}), the browser SDK
        (C{/linkrtc.js}) and the other files of C{linkrtc/static/}; the
        caller mounts C{/ws} and the APIs on it.
    """
    root = StaticFiles(STATIC, defaultType="application/octet-stream", indexNames=["index.html"],
                       contentTypes=dict(StaticFiles.contentTypes,
                                         **{".js": "text/javascript; charset=utf-8",
                                            ".html": "text/html; charset=utf-8",
                                            ".css": "text/css; charset=utf-8"}))
    guard = adminGuard if adminGuard is not None else AdminGuard()
    root.putChild(b"version", guard.protect(
        Data(f"LinkRTC {__version__}\n".encode(), "text/plain"), loopbackSuffices=True))
    return root


class GarbageCollectorTuning(Service):
    """
    Makes Python's cyclic garbage collector cheaper for a switch that
    allocates many short-lived objects per call: once running, the objects of
    start-up are frozen out of collections (C{gc.freeze}) and the youngest
    generation is collected every 50,000 allocations instead of 700.
    Measured: about 0.1 ms of CPU less per call.

    The middle generation is collected every 2 young collections (not 20):
    under load it holds the transactions that linger 32 s for
    retransmissions, and collecting 20 young generations' worth at once
    stopped the loop for 0.4-0.7 s of CPU (a post-dial delay spike for
    every call queued meanwhile); every 2, a pause is about 0.1 s, for no
    more CPU per call (docs/performance.rst, "Garbage collection").
    """

    name = "gc"
    thresholds = (50000, 2, 100)

    def startService(self):
        Service.startService(self)
        self._previous = gc.get_threshold()
        gc.freeze()
        gc.set_threshold(*self.thresholds)

    def stopService(self):
        Service.stopService(self)
        gc.set_threshold(*self._previous)
        gc.unfreeze()


def makeMediaFactory(config, reactor):
    """@return: the L{linkrtc.interfaces.IMediaFactory} for C{config.media}."""
    if config.media == "bridge":
        # Imported only for it: the bridge brings aiortc, PyAV and numpy
        # (about 0.2 s of CPU and their memory), which a passthrough switch
        # never uses.
        from linkrtc.media.bridge import BridgeMediaFactory
        from linkrtc.media.sdes import TrunkPolicy

        return BridgeMediaFactory(
            reactor, rtpPorts=config.rtpPorts, publicAddress=config.publicAddress,
            iceServers=config.iceServers, iceAddresses=config.iceAddresses or None,
            mediaTimeout=config.mediaTimeout,
            earlyMedia=config.earlyMedia, ringbackTone=config.ringbackTone,
            srtpPolicy=TrunkPolicy(config.trunks),
        )
    return PassthroughMediaFactory()


def makeTokenVerifier(config, clock):
    """
    @return: the L{linkrtc.signalling.tokens.TokenVerifier} for the
        configured keys (C{auth-secret}, C{[auth-secrets]}) and development
        tokens (C{[client-tokens]}), or C{None} for protected mode (no
        credentials: only loopback clients, anonymously), which is logged
        once (docs/security.rst).
    """
    keys = parseKeys(config.authSecret, config.authSecrets)
    if not keys and not config.clientTokens:
        log.warn("protected mode: no --auth-secret, so /ws accepts anonymous clients from "
                 "loopback only; set --auth-secret and give clients tokens to let others in")
        return None
    log.info("clients authenticate with tokens ({count} key(s){static})", count=len(keys),
             static=", [client-tokens] for development" if config.clientTokens else "")
    return TokenVerifier(keys, clock, staticTokens=config.clientTokens)


def makeLinkRTCService(config, reactor=None):
    """
    Build LinkRTC.

    Every object is built whole, in dependency order. The call engine
    (L{linkrtc.call.manager.CallManager}) is built last: it needs the
    WebSocket phones and the call control (whose C{construct} dialer
    needs the engine back), and the SIP user agent it is reached through
    is needed by the phones, the ringer and the outbound dialer. Those
    that need the engine get C{engine}, an
    L{linkrtc.reference.EngineReference} bound to it once it is built.
    The instant messenger gets a L{linkrtc.reference.Reference} to the
    user agent likewise (the registrar it serves is built before the user
    agent). The SIP layers are built bottom-up, each building the one
    above it with its own reference (the transport's C{receiverFactory},
    the transaction layer's C{tuFactory}), so no message pays for a
    reference's indirection.

    @param config: a L{linkrtc.config.LinkRTCConfig}.
    @param reactor: the reactor (asyncio); the global one if C{None}.
    @return: a C{MultiService} with children C{sip}, C{http} and C{shutdown}
        (and C{drain}, which takes SIGTERM over once the reactor runs).
    """
    if reactor is None:
        # Not at the top: importing it installs the default reactor, and
        # twistd installs the configured one first (linkrtc.tap).
        from twisted.internet import reactor

    engine = EngineReference()
    userAgentReference = Reference("the SIP user agent")
    top = MultiService()
    LogLevelService(levelNamed(config.logLevel)).setServiceParent(top)

    loopLag = None
    if config.maxLoopLag:
        # the SIP UDP sockets' queues count too (transport: made below)
        loopLag = LoopLagMonitor(reactor, sockets=lambda: transport.datagramSockets())
        loopLag.setServiceParent(top)
    admission = Admission(reactor, maxCalls=config.maxCalls,
                          maxRingingPerClient=config.maxRingingPerClient, loopLag=loopLag,
                          maxLoopLag=config.maxLoopLag / 1000 if config.maxLoopLag else None)
    # The registrar's location service: SIP phones in the client directory.
    bindings = BindingTable(reactor, maxPerUser=config.sipMaxContacts,
                            onChange=lambda user: phones.bindingsChanged(user))
    directory = ClientDirectory(clock=reactor, bindings=bindings)
    cluster = None
    if config.redis:
        # Scale-out (docs/scaling.rst): the directory is shared in Redis.
        directory, cluster = makeClusterDirectory(config, reactor, bindings, top)
    sipUsers = SIPUserStore(config.sipUsers, realm=config.sipRealm)
    messenger = Messenger(reactor, directory, bindings, sipUsers, userAgent=userAgentReference)
    registrar = Registrar(reactor, bindings, sipUsers, minExpires=config.sipMinExpires,
                          digest=DigestServer(reactor, config.sipRealm,
                                              algorithms=config.sipDigestAlgorithms),
                          maxExpires=config.sipMaxExpires, messenger=messenger)

    rateLimiter = None
    if config.sipRateLimit is not None:
        rateLimiter = SourceRateLimiter(reactor, config.sipRateLimit, config.sipRateBurst,
                                        config.sipBanSeconds,
                                        limitLoopback=config.sipRateLimitLoopback)
    sessionTimer = SessionTimerSettings(max(config.sessionExpires, config.minSE), config.minSE)

    def transactionLayer(transport):
        # RFC 3261's layers, each built by the one below it: the transport
        # delivers to the transactions, which deliver to the user agent.
        return TransactionLayer(
            transport, reactor, None, maxServerTransactions=config.maxSipTransactions,
            unknownSourceRetransmissions=2,
            tuFactory=lambda transactions: UserAgent(
                transactions, transport, engine, reactor, admission=admission,
                userAgentName=config.serverHeader, registrar=registrar,
                sessionTimer=sessionTimer))

    transport = SIPTransportLayer(
        reactor, publicAddress=config.publicAddress, idleTimeout=config.sipIdleTimeout,
        rateLimiter=rateLimiter, receiverFactory=transactionLayer,
        observers=[SIPLadder(engine, directory), SIPMessageCounter()])
    transactions = transport.receiver
    useragent = transactions.tu
    userAgentReference.bind(useragent)
    SIPService(transport, config.sip).setServiceParent(top)

    # Phones registered over SIP over WebSocket (RFC 7118) are clients.
    phones = WebSocketPhones(reactor, directory, bindings, engine=engine, userAgent=useragent)
    # Phones registered over UDP/TCP/TLS ring as devices of incoming calls.
    ringer = PhoneRinger(reactor, bindings, userAgent=useragent)

    trunkService = TrunkService(config.trunks, transactions, transport, reactor,
                                userAgent=config.serverHeader)
    trunkService.setServiceParent(top)
    mediaFactory = makeMediaFactory(config, reactor)
    dialer = OutboundDialer(
        useragent, config.trunks, reactor, mediaName=mediaFactory.name,
        maxRingSeconds=config.maxRingSeconds, maxAnswerSeconds=config.maxAnswerSeconds,
        maxCalls=config.maxOutboundCalls, maxCallsPerMinute=config.maxOutboundCallsPerMinute,
        credentials=trunkService.credentials, bindings=bindings,
    )

    if config.webhook:
        application = WebhookApplication(
            config.webhook, clock=reactor, timeout=config.webhookTimeout,
            secret=config.webhookSecret,
            queueSize=config.webhookQueueSize, giveUpSeconds=config.webhookGiveUpSeconds,
            userAgent=config.serverHeader,
        )
    else:
        application = DefaultApplication(directory, config.trunks)
    # The call-control API (seed 001, docs/api.rst): /api and --application;
    # construct (seed 001) dials through the engine and the trunks.
    conferences = (lambda: Conference(reactor)) if mediaFactory.name == "bridge" else None
    callControl = CallControl(
        reactor, directory, decideTimeout=config.webhookTimeout, conferenceFactory=conferences,
        dialer=ApplicationDialer(engine, dialer,
                                 loopbackAddress=getattr(mediaFactory, "rtpInterface", None)))
    if config.webhook:
        callControl.addSink(webhookSink(application), controller=False)
    application = ApiApplication(application, callControl)
    manager = buildCallManager(
        reactor, directory, application, mediaFactory, ringTimeout=config.ringTimeout,
        operators=config.operators, cdrPath=config.cdr, admission=admission,
        callControl=callControl, resumeSeconds=config.resumeSeconds,
        sipPhones=ringer, maxForks=config.maxForks, cluster=cluster,
        dialer=dialer, webSocketPhones=phones,
    )
    engine.bind(manager)

    verifier = makeTokenVerifier(config, reactor)
    adminGuard = AdminGuard(verifier)
    webSocketGuard = SourceGuard(reactor, maxConnections=config.maxConnectionsPerAddress)
    signalling = SignallingFactory(
        directory, manager, verifier=verifier, clock=reactor,
        allowedOrigins=config.allowedOrigins, registerTimeout=config.registerTimeout,
        guard=webSocketGuard,
        resumeSeconds=config.resumeSeconds,
        messenger=messenger,
    )
    root = makeRootResource(adminGuard)
    root.putChild(b"ws", makeWebSocketResource(signalling))
    # SIP over WebSocket (RFC 7118) for browser softphones: a SIP transport.
    root.putChild(b"sip", makeSIPWebSocketResource(SIPWebSocketFactory(
        transport, clock=reactor, allowedOrigins=config.allowedOrigins, guard=webSocketGuard)))
    root.putChild(b"status", adminGuard.protect(statusResource(trunkService)))
    drainService = DrainService(reactor, admission, manager, config.drainSeconds)
    root.putChild(b"healthz", HealthResource())
    root.putChild(b"readyz", ReadinessResource(admission, top.getServiceNamed("sip"),
                                               trunkService))
    root.putChild(b"metrics", adminGuard.protect(MetricsResource(), METRICS))
    root.putChild(b"admin", adminResource(drainService, adminGuard))
    bindSwitchGauges(manager, transactions, directory, signalling, mediaFactory, admission)
    apiEndpoint = JsonRpcEndpoint(callControl)
    apiAuthorizer = ApiAuthorizer(getattr(config, "authSecret", None), reactor)
    root.putChild(b"api", ApiResource(apiEndpoint, apiAuthorizer, makeApiWebSocketResource(
        ApiFactory(apiEndpoint, apiAuthorizer, reactor))))
    if config.application:
        loadApplication(config.application, callControl)
    http = EndpointService(reactor, config.http, WebSite(root, config.serverHeader))
    http.setName("http")
    http.setServiceParent(top)
    StartupReport(config, transport, http).setServiceParent(top)

    Shutdown([manager.closeAll]).setServiceParent(top)
    GarbageCollectorTuning().setServiceParent(top)
    drainService.setServiceParent(top)
    return top
