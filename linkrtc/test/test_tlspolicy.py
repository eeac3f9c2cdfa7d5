"""
Tests for L{linkrtc.tlspolicy}: real TLS handshakes on loopback (ephemeral
ports) between LinkRTC's policy and clients or servers limited to one
protocol version or one cipher suite.

Every refusal has a control: the same limited peer completes a handshake
with a permissive peer, so a refusal cannot come from a client (or server)
that could not talk at all.
"""

import datetime
import os
import shutil
import tempfile

from OpenSSL import SSL
from twisted.internet import defer, reactor
from twisted.internet.endpoints import (
    SSL4ServerEndpoint,
    TCP4ClientEndpoint,
    connectProtocol,
    wrapClientTLS,
)
from twisted.internet.interfaces import IHandshakeListener, IOpenSSLClientConnectionCreator
from twisted.internet.protocol import Factory, Protocol
from twisted.internet.ssl import Certificate, CertificateOptions, TLSVersion
from twisted.trial.unittest import TestCase
from zope.interface import implementer

from linkrtc import tlspolicy
from linkrtc.sip.endpoints import streamServerFromString

#: Seconds a handshake may take before the test gives up.
HANDSHAKE_TIMEOUT = 10.0


def makeRSACertificate(directory):
    """
    Make a self-signed RSA certificate for C{localhost} (one day): RSA, so
    that suites with RSA key transport (C{AES128-SHA}) could be chosen by a
    permissive server.

    @return: C{(certPath, keyPath)}: paths of PEM files in C{directory}.
    """
    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import rsa
    from cryptography.x509.oid import NameOID

    now = datetime.datetime.now(datetime.timezone.utc)
    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "localhost")])
    cert = (
        x509.CertificateBuilder()
        .subject_name(name).issuer_name(name).public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(hours=1))
        .not_valid_after(now + datetime.timedelta(days=1))
        .add_extension(x509.SubjectAlternativeName([x509.DNSName("localhost")]), critical=False)
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
        .sign(key, hashes.SHA256())
    )
    certPath = os.path.join(directory, "cert.pem")
    keyPath = os.path.join(directory, "key.pem")
    with open(certPath, "wb") as f:
        f.write(cert.public_bytes(serialization.Encoding.PEM))
    with open(keyPath, "wb") as f:
        f.write(key.private_bytes(serialization.Encoding.PEM,
                                  serialization.PrivateFormat.TraditionalOpenSSL,
                                  serialization.NoEncryption()))
    return certPath, keyPath


@implementer(IOpenSSLClientConnectionCreator)
class LimitedClient:
    """
    A TLS client that offers exactly one protocol version and the given
    TLS 1.2 cipher string, and verifies nothing (it tests the server).
    """

    def __init__(self, version, ciphers):
        self.context = SSL.Context(SSL.TLS_METHOD)
        self.context.set_min_proto_version(version)
        self.context.set_max_proto_version(version)
        # SECLEVEL=0 lets OpenSSL 3 speak TLS 1.1 and SHA-1 suites at all.
        self.context.set_cipher_list(ciphers.encode("ascii") + b":@SECLEVEL=0")

    def clientConnectionForTLS(self, tlsProtocol):
        connection = SSL.Connection(self.context, None)
        connection.set_app_data(tlsProtocol)
        connection.set_tlsext_host_name(b"localhost")
        return connection


@implementer(IHandshakeListener)
class Handshake(Protocol):
    """Fires C{done} with the negotiated C{(version, cipher)}, or fails."""

    def __init__(self):
        self.done = defer.Deferred()

    def connectionMade(self):
        # Writing forces the handshake; handshakeCompleted reports it.
        self.transport.write(b"ping")

    def handshakeCompleted(self):
        conn = self.transport.getHandle()
        if not self.done.called:
            self.done.callback((conn.get_protocol_version_name(), conn.get_cipher_name()))
        self.transport.loseConnection()

    def connectionLost(self, reason):
        if not self.done.called:
            self.done.errback(reason)


class Echo(Protocol):
    def dataReceived(self, data):
        self.transport.write(data)


class TLSPolicyTests(TestCase):
    """Handshakes against a server built from an C{ssl:} string (the policy)."""

    timeout = 60

    def setUp(self):
        directory = tempfile.mkdtemp()
        self.addCleanup(shutil.rmtree, directory)
        self.certPath, self.keyPath = makeRSACertificate(directory)

    def listen(self, endpoint):
        d = endpoint.listen(Factory.forProtocol(Echo))

        def listening(port):
            self.addCleanup(port.stopListening)
            return port.getHost().port

        return d.addCallback(listening)

    def listenPolicy(self):
        description = (f"ssl:0:interface=127.0.0.1:privateKey={self.keyPath}"
                       f":certKey={self.certPath}")
        return self.listen(streamServerFromString(reactor, description))

    def listenPermissive(self, version=TLSVersion.TLSv1_1, ciphers="ALL", maximum=None):
        """
        A server that takes what the limited clients offer (the control):
        TLS C{version} up to C{maximum} (TLS 1.3 if C{None}), C{ciphers}.
        """
        with open(self.certPath, "rb") as f:
            cert = Certificate.loadPEM(f.read())
        with open(self.keyPath, "rb") as f:
            from twisted.internet.ssl import KeyPair

            key = KeyPair.load(f.read(), 1)
        options = CertificateOptions(privateKey=key.original, certificate=cert.original,
                                     insecurelyLowerMinimumTo=version,
                                     lowerMaximumSecurityTo=maximum)
        options._cipherString = ciphers + ":@SECLEVEL=0"
        return self.listen(SSL4ServerEndpoint(reactor, 0, options, interface="127.0.0.1"))

    def handshake(self, port, creator):
        endpoint = wrapClientTLS(creator, TCP4ClientEndpoint(reactor, "127.0.0.1", port))
        protocol = Handshake()
        d = connectProtocol(endpoint, protocol)
        d.addCallback(lambda _: protocol.done)
        timer = reactor.callLater(HANDSHAKE_TIMEOUT, d.cancel)
        d.addBoth(lambda r: (timer.active() and timer.cancel(), r)[1])
        return d

    @defer.inlineCallbacks
    def assertRefused(self, port, creator):
        try:
            result = yield self.handshake(port, creator)
        except Exception:
            return
        self.fail(f"handshake succeeded: {result}")

    @defer.inlineCallbacks
    def test_ecdheAEADAccepted(self):
        """A TLS 1.2 client offering ECDHE-RSA-AES128-GCM-SHA256 gets it."""
        port = yield self.listenPolicy()
        version, cipher = yield self.handshake(
            port, LimitedClient(SSL.TLS1_2_VERSION, "ECDHE-RSA-AES128-GCM-SHA256"))
        self.assertEqual((version, cipher), ("TLSv1.2", "ECDHE-RSA-AES128-GCM-SHA256"))

    @defer.inlineCallbacks
    def test_chachaAccepted(self):
        """ChaCha20-Poly1305 with ECDHE is accepted in TLS 1.2."""
        port = yield self.listenPolicy()
        _, cipher = yield self.handshake(
            port, LimitedClient(SSL.TLS1_2_VERSION, "ECDHE-RSA-CHACHA20-POLY1305"))
        self.assertEqual(cipher, "ECDHE-RSA-CHACHA20-POLY1305")

    @defer.inlineCallbacks
    def test_tls13Accepted(self):
        """A TLS 1.3 client completes a handshake."""
        port = yield self.listenPolicy()
        version, _ = yield self.handshake(port, LimitedClient(SSL.TLS1_3_VERSION, "DEFAULT"))
        self.assertEqual(version, "TLSv1.3")

    @defer.inlineCallbacks
    def test_tls11Refused(self):
        """A client offering only TLS 1.1 is refused (a permissive server takes it)."""
        client = LimitedClient(SSL.TLS1_1_VERSION, "ALL")
        control = yield self.listenPermissive()
        version, _ = yield self.handshake(control, client)
        self.assertEqual(version, "TLSv1.1")
        port = yield self.listenPolicy()
        yield self.assertRefused(port, LimitedClient(SSL.TLS1_1_VERSION, "ALL"))

    @defer.inlineCallbacks
    def test_cbcSHA1Refused(self):
        """ECDHE with AES-CBC and a SHA-1 MAC is refused, even in TLS 1.2."""
        suite = "ECDHE-RSA-AES128-SHA"
        control = yield self.listenPermissive()
        _, cipher = yield self.handshake(control, LimitedClient(SSL.TLS1_2_VERSION, suite))
        self.assertEqual(cipher, suite)
        port = yield self.listenPolicy()
        yield self.assertRefused(port, LimitedClient(SSL.TLS1_2_VERSION, suite))

    @defer.inlineCallbacks
    def test_rsaKeyTransportRefused(self):
        """Suites without forward secrecy (RSA key transport) are refused."""
        for suite in ("AES128-GCM-SHA256", "AES128-SHA"):
            control = yield self.listenPermissive()
            _, cipher = yield self.handshake(control, LimitedClient(SSL.TLS1_2_VERSION, suite))
            self.assertEqual(cipher, suite)
            port = yield self.listenPolicy()
            yield self.assertRefused(port, LimitedClient(SSL.TLS1_2_VERSION, suite))

    @defer.inlineCallbacks
    def test_clientOptionsVerifiesAndNegotiatesAEAD(self):
        """
        L{tlspolicy.clientOptions} (SIP trunks over TLS) completes a verified
        handshake with the policy server.
        """
        port = yield self.listenPolicy()
        with open(self.certPath, "rb") as f:
            trust = Certificate.loadPEM(f.read())
        version, cipher = yield self.handshake(
            port, tlspolicy.clientOptions("localhost", trustRoot=trust))
        self.assertIn(version, ("TLSv1.2", "TLSv1.3"))
        self.assertTrue(cipher.startswith("TLS_") or "GCM" in cipher or "CHACHA" in cipher)

    @defer.inlineCallbacks
    def test_clientOptionsRefusesWrongName(self):
        """The server's certificate must name the host connected to."""
        port = yield self.listenPolicy()
        with open(self.certPath, "rb") as f:
            trust = Certificate.loadPEM(f.read())
        yield self.assertRefused(port, tlspolicy.clientOptions("sip.example.com",
                                                               trustRoot=trust))

    @defer.inlineCallbacks
    def test_clientOptionsRefusesOldServers(self):
        """
        Our client refuses a server that speaks only TLS 1.1, or only
        CBC-SHA1 / RSA key transport suites in TLS 1.2.
        """
        with open(self.certPath, "rb") as f:
            trust = Certificate.loadPEM(f.read())
        for version, ciphers, control in (
                (TLSVersion.TLSv1_1, "ALL", SSL.TLS1_1_VERSION),
                (TLSVersion.TLSv1_2, "ECDHE-RSA-AES128-SHA:AES128-SHA", SSL.TLS1_2_VERSION)):
            port = yield self.listenPermissive(version, ciphers, maximum=version)
            # The control: a client without the policy gets a session.
            yield self.handshake(port, LimitedClient(control, "ECDHE-RSA-AES128-SHA"))
            yield self.assertRefused(port, tlspolicy.clientOptions("localhost",
                                                                   trustRoot=trust))


class StreamServerFromStringTests(TestCase):
    """L{streamServerFromString}'s parsing of C{ssl:}/C{tls:} strings."""

    def test_sslmethodRefused(self):
        """C{sslmethod} would override the policy's versions: refused."""
        self.assertRaises(ValueError, streamServerFromString, reactor,
                          "ssl:5061:privateKey=k.pem:sslmethod=TLSv1_METHOD")

    def test_unknownKeyword(self):
        self.assertRaises(ValueError, streamServerFromString, reactor,
                          "ssl:5061:privateKey=k.pem:colour=blue")

    def test_missingFiles(self):
        """A key file that cannot be read is a L{ValueError} naming the string."""
        e = self.assertRaises(ValueError, streamServerFromString, reactor,
                              "tls:5061:privateKey=/nonexistent/key.pem")
        self.assertIn("/nonexistent/key.pem", str(e))

    def test_tcpUnchanged(self):
        """Other types go to Twisted's parser."""
        from twisted.internet.endpoints import TCP4ServerEndpoint

        self.assertIsInstance(streamServerFromString(reactor, "tcp:0:interface=127.0.0.1"),
                              TCP4ServerEndpoint)
