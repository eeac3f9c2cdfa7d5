# -*- test-case-name: linkrtc.test.test_tlspolicy -*-
"""
The one TLS policy of LinkRTC, for SIP over TLS (servers and the
connections we open to trunks) and for the HTTP/WebSocket server when
C{--http ssl:...} (docs/security.rst, "TLS").

 - TLS 1.2 or later (RFC 8996 deprecates 1.0 and 1.1; RFC 9325 §3.1.1);
 - in TLS 1.2, only ephemeral elliptic-curve key exchange (forward
   secrecy) with an AEAD cipher: ECDHE with AES-GCM or ChaCha20-Poly1305
   (RFC 9325 §4.2). No RSA key transport, no CBC, no SHA-1 MAC, no
   anonymous suites;
 - TLS 1.3 suites as OpenSSL offers them (all AEAD, all forward secret).

Certificates are verified on the connections we open: the peer's name
against its certificate by C{service_identity} (RFC 5922 §7 for SIP),
through Twisted's L{optionsForClientTLS}.
"""

from twisted.internet.ssl import (
    AcceptableCiphers,
    Certificate,
    CertificateOptions,
    PrivateCertificate,
    TLSVersion,
    optionsForClientTLS,
)
from twisted.python.filepath import FilePath

__all__ = [
    "CIPHERS",
    "MINIMUM_VERSION",
    "clientOptions",
    "serverContextFactory",
]

#: The lowest protocol version accepted, both ways.
MINIMUM_VERSION = TLSVersion.TLSv1_2

#: TLS 1.2 suites, as an OpenSSL cipher string: ECDHE key exchange (RSA or
#: ECDSA certificates) with AES-GCM or ChaCha20-Poly1305, strongest first.
#: TLS 1.3 suites are configured apart by OpenSSL and are all AEAD.
CIPHERS = (
    "ECDHE+AESGCM:ECDHE+CHACHA20:!aNULL:!eNULL:!SHA1:!kRSA:!DHE:!PSK:!SRP:!CAMELLIA:!ARIA"
)

#: The L{AcceptableCiphers} of L{CIPHERS}.
ACCEPTABLE_CIPHERS = AcceptableCiphers.fromOpenSSLCipherString(CIPHERS)


def _policy():
    return {"raiseMinimumTo": MINIMUM_VERSION, "acceptableCiphers": ACCEPTABLE_CIPHERS}


def serverContextFactory(privateKey, certKey=None, extraCertChain=None, dhParameters=None):
    """
    The context of a TLS server (SIP over TLS, HTTPS/WSS), from the files
    an C{ssl:} endpoint string names.

    @param privateKey: path of the PEM private key, C{str}.
    @param certKey: path of the PEM certificate, C{str}; C{privateKey} if
        C{None} (one file holding both).
    @param extraCertChain: path of a PEM file with the intermediate
        certificates, or C{None}.
    @param dhParameters: accepted for compatibility with Twisted's C{ssl:}
        syntax and ignored: the policy has no finite-field DHE suite.
    @return: a L{CertificateOptions} with this module's policy.
    @raise OSError: a file cannot be read.
    @raise ValueError: a file holds no certificate (C{extraCertChain}).
    @raise OpenSSL.SSL.Error: the key or certificate cannot be loaded.
    """
    del dhParameters
    if certKey is None:
        certKey = privateKey
    certPEM = FilePath(certKey).getContent()
    keyPEM = FilePath(privateKey).getContent()
    identity = PrivateCertificate.loadPEM(certPEM + b"\n" + keyPEM)
    chain = None
    if extraCertChain is not None:
        text = FilePath(extraCertChain).getContent()
        marker = b"-----END CERTIFICATE-----"
        pems = [part + marker for part in text.split(marker) if b"-----BEGIN" in part]
        chain = [Certificate.loadPEM(pem.strip()).original for pem in pems]
        if not chain:
            raise ValueError(f"{extraCertChain!r} holds no PEM certificate")
    return CertificateOptions(
        privateKey=identity.privateKey.original,
        certificate=identity.original,
        extraCertChain=chain,
        **_policy(),
    )


def clientOptions(hostname, trustRoot=None, clientCertificate=None):
    """
    The options of a TLS connection we open (a SIP trunk over TLS):
    L{optionsForClientTLS} with this module's policy, verifying that the
    peer's certificate names C{hostname} (C{service_identity}).

    @param hostname: the name (or IP address) we connect to, C{str}.
    @param trustRoot: an L{IOpenSSLTrustRoot}, or C{None} for the
        platform's trust store.
    @param clientCertificate: a L{PrivateCertificate} to present, or C{None}.
    @return: an L{IOpenSSLClientConnectionCreator}.
    """
    return optionsForClientTLS(
        hostname, trustRoot=trustRoot, clientCertificate=clientCertificate,
        extraCertificateOptions=_policy(),
    )

