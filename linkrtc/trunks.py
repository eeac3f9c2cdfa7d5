# -*- test-case-name: linkrtc.test.test_trunks -*-
"""
The configured SIP trunks at run time: their registrations (for trunks
with C{register = true}, L{linkrtc.sip.registration.Registration}) and the
HTTP status endpoint C{/status/trunks} (JSON).
"""

import json

from twisted.application.service import Service
from twisted.internet import defer
from twisted.logger import Logger
from twisted.web.resource import Resource

from linkrtc import metrics
from linkrtc.sip.registration import REGISTERED

log = Logger()


def trunkCredentials(trunk):
    """
    The digest credentials of a trunk, to be shared by its registration and
    its calls: they answer the trunk's C{realm} only or, when it is not
    configured, only the realm of the first challenge answered (the
    registration's, for a registering trunk).

    @param trunk: a L{linkrtc.config.Trunk}.
    @return: a L{linkrtc.sip.auth.DigestCredentials}, or C{None} for a
        trunk without username and password/HA1.
    """
    from linkrtc.sip.auth import DigestCredentials

    if not trunk.username or (trunk.password is None and trunk.ha1 is None):
        return None
    return DigestCredentials(trunk.username, password=trunk.password, ha1=trunk.ha1,
                             realm=trunk.realm, learnRealm=trunk.realm is None)


def makeRegistration(trunk, transactionLayer, transportLayer, clock, credentials=None,
                     **kwargs):
    """
    @param trunk: a L{linkrtc.config.Trunk} with C{register} true.
    @param credentials: the trunk's L{linkrtc.sip.auth.DigestCredentials}
        (L{trunkCredentials} when C{None}).
    @return: its L{linkrtc.sip.registration.Registration} (not started).
    """
    from linkrtc.sip.registration import Registration

    if credentials is None:
        credentials = trunkCredentials(trunk)
    outboundProxy = trunk.proxyURI() if trunk.registrar else None
    return Registration(
        transactionLayer, transportLayer, clock, trunk.registrarURI(), trunk.aor(), credentials,
        expires=trunk.expires, transport=trunk.destination().transport,
        outboundProxy=outboundProxy, name=trunk.name, **kwargs)


class TrunkService(Service):
    """
    Keeps the trunks' registrations up while running.

    @ivar trunks: the L{linkrtc.config.Trunk}s.
    @ivar registrations: C{{trunk name: Registration}} for trunks that register.
    @ivar credentials: C{{trunk name: DigestCredentials}} for trunks with
        credentials, shared with the outbound calls (L{trunkCredentials}).
    """

    name = "trunks"

    def __init__(self, trunks, transactionLayer, transportLayer, clock, **kwargs):
        self.trunks = tuple(trunks)
        self.clock = clock
        self.credentials = {t.name: c for t in self.trunks
                            if (c := trunkCredentials(t)) is not None}
        self.registrations = {
            t.name: makeRegistration(t, transactionLayer, transportLayer, clock,
                                     credentials=self.credentials.get(t.name), **kwargs)
            for t in self.trunks if t.register
        }
        self._starting = None
        for name, registration in self.registrations.items():
            metrics.TRUNK_REGISTERED.labels(trunk=name).set_function(
                lambda r=registration: 1 if r.state == REGISTERED else 0)

    def startService(self):
        Service.startService(self)
        # After the SIP service has opened its sockets.
        self._starting = self.clock.callLater(0, self._start)

    def _start(self):
        self._starting = None
        for registration in self.registrations.values():
            log.info("trunk {trunk}: registering with {registrar}", trunk=registration.name,
                     registrar=str(registration.registrar))
            registration.start()

    def stopService(self):
        Service.stopService(self)
        if self._starting is not None and self._starting.active():
            self._starting.cancel()
        self._starting = None
        return defer.DeferredList([r.stop() for r in self.registrations.values()])

    def unregistered(self):
        """
        @return: C{list} of C{(trunk name, state)} for the trunks that
            should be registered and are not (for C{/readyz}).
        """
        return [(name, r.state) for name, r in self.registrations.items()
                if r.state != REGISTERED]

    def status(self):
        """
        @return: C{list} of C{dict}, one per trunk: C{trunk}, C{proxy},
            C{register} (C{bool}) and, for registering trunks, C{state},
            C{expires_in}, C{last_error}, C{retry_in} (see
            L{linkrtc.sip.registration.Registration.status}); others have
            C{state} C{"not registering"}.
        """
        result = []
        for trunk in self.trunks:
            entry = {"trunk": trunk.name, "proxy": trunk.proxy, "register": trunk.register}
            registration = self.registrations.get(trunk.name)
            if registration is None:
                entry.update(state="not registering", expires_in=None, last_error=None,
                             retry_in=None)
            else:
                entry.update(registration.status())
                entry["trunk"] = trunk.name
            result.append(entry)
        return result


class TrunkStatusResource(Resource):
    """C{GET /status/trunks}: C{{"trunks": [...]}} from L{TrunkService.status}."""

    isLeaf = True

    def __init__(self, trunkService):
        super().__init__()
        self.trunkService = trunkService

    def render_GET(self, request):
        request.setHeader(b"Content-Type", b"application/json")
        request.setHeader(b"Cache-Control", b"no-store")
        return json.dumps({"trunks": self.trunkService.status()}).encode("utf-8")


def statusResource(trunkService):
    """@return: the C{/status} L{Resource} with its C{trunks} child."""
    status = Resource()
    status.putChild(b"trunks", TrunkStatusResource(trunkService))
    return status
