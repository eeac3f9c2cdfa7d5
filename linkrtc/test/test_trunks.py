"""Tests for L{linkrtc.trunks}: trunk registrations and C{/status/trunks}."""

import json

from twisted.internet.task import Clock
from twisted.trial.unittest import SynchronousTestCase
from twisted.web.test.requesthelper import DummyRequest

from linkrtc.config import parseTrunks
from linkrtc.sip.uri import SIPURI
from linkrtc.trunks import TrunkService, TrunkStatusResource, statusResource

TRUNKS = [
    {"name": "pbx", "proxy": "sip:198.51.100.1", "username": "1001", "password": "p",
     "register": True, "expires": 300},
    {"name": "out", "proxy": "sip:198.51.100.2"},
]


class FakeLayer:
    def __init__(self):
        self.sent = []

    def sendRequest(self, request, destination, listener):
        self.sent.append((request, destination, listener))


class FakeTransport:
    def localContactURI(self, transport, user=None):
        return SIPURI("sip", user=user, host="203.0.113.10", port=5060)


class TrunkServiceTests(SynchronousTestCase):
    def setUp(self):
        self.clock = Clock()
        self.layer = FakeLayer()
        self.service = TrunkService(parseTrunks(TRUNKS), self.layer, FakeTransport(), self.clock)

    def test_registers(self):
        """Only trunks with register = true register, once the service runs."""
        self.assertEqual(list(self.service.registrations), ["pbx"])
        self.service.startService()
        self.assertEqual(self.layer.sent, [])
        self.clock.advance(0)
        [(request, destination, _)] = self.layer.sent
        self.assertEqual(request.method, "REGISTER")
        self.assertEqual(str(request.uri), "sip:198.51.100.1")
        self.assertEqual(request.headers.get("Expires"), "300")
        self.assertEqual(str(destination), "UDP:198.51.100.1:5060")
        self.assertEqual(str(request.toAddr.uri), "sip:1001@198.51.100.1")

    def test_status(self):
        """/status/trunks gives every trunk and its registration state as JSON."""
        self.service.startService()
        self.clock.advance(0)
        request = DummyRequest([b""])
        body = TrunkStatusResource(self.service).render_GET(request)
        status = json.loads(body)["trunks"]
        self.assertEqual([(t["trunk"], t["register"], t["state"]) for t in status],
                         [("pbx", True, "registering"), ("out", False, "not registering")])
        self.assertEqual(request.responseHeaders.getRawHeaders(b"content-type"),
                         [b"application/json"])
        self.assertIsInstance(statusResource(self.service).getStaticEntity(b"trunks"),
                              TrunkStatusResource)

    def test_stop(self):
        """Stopping before the start cancels it; nothing is sent."""
        self.service.startService()
        d = self.service.stopService()
        self.successResultOf(d)
        self.clock.advance(1)
        self.assertEqual(self.layer.sent, [])


class TrunkReadinessTests(SynchronousTestCase):
    def setUp(self):
        self.clock = Clock()
        self.service = TrunkService(parseTrunks(TRUNKS), FakeLayer(), FakeTransport(), self.clock)

    def test_unregistered(self):
        """Trunks that should register and are not are named with their state."""
        self.assertEqual(self.service.unregistered(), [("pbx", "unregistered")])
        self.service.registrations["pbx"].state = "registered"
        self.assertEqual(self.service.unregistered(), [])

    def test_gauge(self):
        """linkrtc_trunk_registered reads the registration's state: 1 registered, else 0."""
        from linkrtc import metrics

        def value():
            return metrics.REGISTRY.get_sample_value("linkrtc_trunk_registered",
                                                     {"trunk": "pbx"})

        self.assertEqual(value(), 0.0)
        self.service.registrations["pbx"].state = "registered"
        self.assertEqual(value(), 1.0)
        self.assertIsNone(metrics.REGISTRY.get_sample_value("linkrtc_trunk_registered",
                                                            {"trunk": "out"}))


class CredentialsTests(SynchronousTestCase):
    def test_sharedWithCalls(self):
        """
        One DigestCredentials per trunk with credentials, used by its
        registration and handed to the dialer; without realm it learns one.
        """
        from linkrtc.call.dialer import OutboundDialer

        trunks = parseTrunks(TRUNKS + [{"name": "fixed", "proxy": "sip:198.51.100.3",
                                        "username": "u", "password": "p", "realm": "r"}])
        service = TrunkService(trunks, FakeLayer(), FakeTransport(), Clock())
        self.assertEqual(sorted(service.credentials), ["fixed", "pbx"])
        pbx = service.credentials["pbx"]
        self.assertTrue(pbx.learnRealm)
        self.assertIs(service.registrations["pbx"]._auth.credentials, pbx)
        self.assertEqual(service.credentials["fixed"].realms, frozenset(["r"]))
        self.assertFalse(service.credentials["fixed"].learnRealm)
        dialer = OutboundDialer(None, trunks, Clock(), credentials=service.credentials)
        self.assertIs(dialer.credentials["pbx"], pbx)
        own = OutboundDialer(None, trunks, Clock())
        self.assertEqual(sorted(own.credentials), ["fixed", "pbx"])

