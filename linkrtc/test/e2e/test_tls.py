"""
SIP over TLS and TCP connection handling (RFC 3261 §18.3, RFC 5626 §4.4.1)
against a running C{twistd -n linkrtc}.

A CA and a server certificate for C{localhost}/C{127.0.0.1} are made at test
time with C{cryptography}; LinkRTC listens with
C{--sip tls:PORT:interface=127.0.0.1:privateKey=KEY:certKey=CERT}.

 - SIPp sends OPTIONS over TLS (C{-t l1}) when its build has TLS; Debian's
   C{sip-tester} (what CI installs) has none, so then SIPp runs the same
   scenario over TCP to a relay in this test that opens a verified TLS
   connection to LinkRTC for each SIPp connection.
 - A Python C{ssl} client verifies LinkRTC's certificate against the CA,
   sends two OPTIONS on one connection, then a request that cannot be
   framed (bad Content-Length): 400, then the connection is closed.
 - Over TCP: a message written in many small pieces is reassembled, two
   messages in one write are both answered, a well-framed but unparseable
   request gets 400 and the connection stays, a double-CRLF ping gets a
   CRLF pong, and C{--sip-idle-timeout} closes an idle connection (traffic
   keeps it open).

Every socket operation has a timeout; every process is killed at cleanup.
"""

import datetime
import ipaddress
import os
import selectors
import socket
import ssl
import subprocess
import threading
import time
import uuid

from twisted.trial.unittest import SynchronousTestCase

from linkrtc.test.e2e.harness import LinkRTCProcess, freePort, requirePeer, runSIPp

#: Seconds any single socket operation may block.
SOCKET_TIMEOUT = 10.0


def makeCertificates(directory):
    """
    Make a CA and a server certificate (EC P-256, one day) for C{localhost}
    and C{127.0.0.1} signed by it.

    @param directory: an existing directory (C{str}).
    @return: C{(caPath, certPath, keyPath)}: absolute paths of PEM files.
    """
    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

    now = datetime.datetime.now(datetime.timezone.utc)
    start, end = now - datetime.timedelta(hours=1), now + datetime.timedelta(days=1)

    caKey = ec.generate_private_key(ec.SECP256R1())
    caName = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "LinkRTC test CA")])
    caSKI = x509.SubjectKeyIdentifier.from_public_key(caKey.public_key())
    ca = (
        x509.CertificateBuilder()
        .subject_name(caName).issuer_name(caName).public_key(caKey.public_key())
        .serial_number(x509.random_serial_number()).not_valid_before(start).not_valid_after(end)
        .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
        .add_extension(x509.KeyUsage(
            digital_signature=True, content_commitment=False, key_encipherment=False,
            data_encipherment=False, key_agreement=False, key_cert_sign=True, crl_sign=True,
            encipher_only=False, decipher_only=False), critical=True)
        .add_extension(caSKI, critical=False)
        .sign(caKey, hashes.SHA256())
    )

    key = ec.generate_private_key(ec.SECP256R1())
    cert = (
        x509.CertificateBuilder()
        .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "localhost")]))
        .issuer_name(caName).public_key(key.public_key())
        .serial_number(x509.random_serial_number()).not_valid_before(start).not_valid_after(end)
        .add_extension(x509.SubjectAlternativeName([
            x509.DNSName("localhost"), x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]),
            critical=False)
        .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
        .add_extension(x509.ExtendedKeyUsage(
            [ExtendedKeyUsageOID.SERVER_AUTH, ExtendedKeyUsageOID.CLIENT_AUTH]), critical=False)
        .add_extension(x509.SubjectKeyIdentifier.from_public_key(key.public_key()),
                       critical=False)
        .add_extension(x509.AuthorityKeyIdentifier.from_issuer_subject_key_identifier(caSKI),
                       critical=False)
        .sign(caKey, hashes.SHA256())
    )

    directory = os.path.abspath(directory)
    paths = tuple(os.path.join(directory, n) for n in ("ca.pem", "cert.pem", "key.pem"))
    contents = (
        ca.public_bytes(serialization.Encoding.PEM),
        cert.public_bytes(serialization.Encoding.PEM),
        key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                          serialization.NoEncryption()),
    )
    for path, data in zip(paths, contents):
        with open(path, "wb") as f:
            f.write(data)
    return paths


def escape(path):
    """@return: C{path} with C{:} and C{\\} escaped for an endpoint string."""
    return path.replace("\\", "\\\\").replace(":", "\\:")


def optionsRequest(transport, localPort, remotePort, callId=None, cseq=1, body=b"",
                   extra=""):
    """
    @param transport: C{"TCP"} or C{"TLS"}, for the Via.
    @return: C{bytes} of an OPTIONS request.
    """
    head = (
        f"OPTIONS sip:127.0.0.1:{remotePort} SIP/2.0\r\n"
        f"Via: SIP/2.0/{transport} 127.0.0.1:{localPort};branch=z9hG4bK{uuid.uuid4().hex};rport\r\n"
        "Max-Forwards: 70\r\n"
        f"From: <sip:probe@127.0.0.1>;tag={uuid.uuid4().hex[:8]}\r\n"
        f"To: <sip:127.0.0.1:{remotePort}>\r\n"
        f"Call-ID: {callId or uuid.uuid4().hex}@probe\r\n"
        f"CSeq: {cseq} OPTIONS\r\n"
        f"{extra}"
        f"Content-Length: {len(body)}\r\n\r\n"
    )
    return head.encode() + body


class StreamClient:
    """
    A blocking SIP client on one TCP or TLS socket, every read bounded by
    L{SOCKET_TIMEOUT}.
    """

    def __init__(self, sock, transport):
        self.sock = sock
        self.transport = transport
        self.buffer = b""
        sock.settimeout(SOCKET_TIMEOUT)

    @property
    def localPort(self):
        return self.sock.getsockname()[1]

    def send(self, data):
        self.sock.sendall(data)

    def options(self, remotePort, **kw):
        """@return: C{bytes} of an OPTIONS request from this socket."""
        return optionsRequest(self.transport, self.localPort, remotePort, **kw)

    def _more(self):
        data = self.sock.recv(65536)
        if not data:
            raise EOFError(f"connection closed; unread: {self.buffer!r}")
        self.buffer += data

    def readRaw(self, count):
        """@return: exactly C{count} octets."""
        while len(self.buffer) < count:
            self._more()
        data, self.buffer = self.buffer[:count], self.buffer[count:]
        return data

    def readMessage(self):
        """
        @return: C{(startLine, headers, body)} of the next message: C{str},
            C{dict} of lower-case name to first value, C{bytes}.
        @raise EOFError: the peer closed first.
        """
        while True:
            self.buffer = self.buffer.lstrip(b"\r\n")
            if b"\r\n\r\n" in self.buffer:
                break
            self._more()
        head, self.buffer = self.buffer.split(b"\r\n\r\n", 1)
        lines = head.decode("utf-8", "replace").split("\r\n")
        headers = {}
        for line in lines[1:]:
            name, _, value = line.partition(":")
            headers.setdefault(name.strip().lower(), value.strip())
        length = int(headers.get("content-length", headers.get("l", "0")))
        body = self.readRaw(length)
        return lines[0], headers, body

    def waitClosed(self):
        """
        Read until the peer closes.

        @return: the octets read before the close.
        @raise socket.timeout: still open after L{SOCKET_TIMEOUT} seconds.
        """
        while True:
            try:
                data = self.sock.recv(65536)
            except (ssl.SSLEOFError, ConnectionResetError):
                data = b""
            if not data:
                rest, self.buffer = self.buffer, b""
                return rest
            self.buffer += data

    def close(self):
        try:
            self.sock.close()
        except OSError:
            pass


class TLSRelay:
    """
    Accepts TCP connections on 127.0.0.1 and relays each over a TLS
    connection to C{port}, verifying the server's certificate for
    C{127.0.0.1} against C{caPath}. Runs in a daemon thread until L{stop}.

    @ivar port: the TCP port it accepts on.
    @ivar handshakes: how many verified TLS connections it made.
    @ivar errors: C{list} of exceptions (a failed handshake, for example).
    """

    def __init__(self, port, caPath):
        self.target = port
        self.context = ssl.create_default_context(cafile=caPath)
        self.listener = socket.create_server(("127.0.0.1", 0))
        self.listener.setblocking(False)
        self.port = self.listener.getsockname()[1]
        self.handshakes = 0
        self.errors = []
        self.selector = selectors.DefaultSelector()
        self.selector.register(self.listener, selectors.EVENT_READ, None)
        self.running = True
        self.thread = threading.Thread(target=self._run, daemon=True)
        self.thread.start()

    def _run(self):
        sockets = []
        try:
            while self.running:
                for key, _ in self.selector.select(0.1):
                    if key.data is None:
                        plain, _ = self.listener.accept()
                        try:
                            raw = socket.create_connection(("127.0.0.1", self.target),
                                                           timeout=SOCKET_TIMEOUT)
                            secure = self.context.wrap_socket(raw, server_hostname="127.0.0.1")
                        except Exception as e:
                            self.errors.append(e)
                            plain.close()
                            continue
                        self.handshakes += 1
                        plain.setblocking(False)
                        secure.setblocking(False)
                        sockets += [plain, secure]
                        self.selector.register(plain, selectors.EVENT_READ, secure)
                        self.selector.register(secure, selectors.EVENT_READ, plain)
                        continue
                    self._pump(key.fileobj, key.data)
        except Exception as e:
            self.errors.append(e)
        finally:
            for s in sockets:
                s.close()

    def _pump(self, source, sink):
        try:
            while True:
                data = source.recv(65536)
                if not data:
                    raise EOFError()
                sink.setblocking(True)
                sink.settimeout(SOCKET_TIMEOUT)
                sink.sendall(data)
                sink.setblocking(False)
                if not (isinstance(source, ssl.SSLSocket) and source.pending()):
                    return
        except (BlockingIOError, ssl.SSLWantReadError):
            return
        except (EOFError, OSError):
            for s in (source, sink):
                try:
                    self.selector.unregister(s)
                except (KeyError, ValueError):
                    pass
                s.close()

    def stop(self):
        self.running = False
        self.thread.join(5)
        self.listener.close()
        self.selector.close()


class _LinkRTCMixin:
    """Starts LinkRTC (UDP and TCP, plus TLS) for each test."""

    idleTimeout = None

    def setUp(self):
        directory = os.path.abspath(self.mktemp())
        os.makedirs(directory)
        self.caPath, self.certPath, self.keyPath = makeCertificates(directory)
        self.tlsPort = freePort(socket.SOCK_STREAM)
        options = [
            "--sip", f"tls:{self.tlsPort}:interface=127.0.0.1:privateKey={escape(self.keyPath)}"
                     f":certKey={escape(self.certPath)}",
        ]
        if self.idleTimeout is not None:
            options += ["--sip-idle-timeout", str(self.idleTimeout)]
        self.linkrtc = LinkRTCProcess(*options).start()
        self.addCleanup(self.linkrtc.stop)

    def fail(self, message):
        linkrtc = getattr(self, "linkrtc", None)
        log = linkrtc.logText()[-4000:] if linkrtc else ""
        super().fail(f"{message}\nlinkrtc log:\n{log}")

    def tcpClient(self):
        sock = socket.create_connection(("127.0.0.1", self.linkrtc.sipPort),
                                        timeout=SOCKET_TIMEOUT)
        sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        client = StreamClient(sock, "TCP")
        self.addCleanup(client.close)
        return client

    def tlsClient(self, serverHostname="127.0.0.1"):
        context = ssl.create_default_context(cafile=self.caPath)
        raw = socket.create_connection(("127.0.0.1", self.tlsPort), timeout=SOCKET_TIMEOUT)
        try:
            sock = context.wrap_socket(raw, server_hostname=serverHostname)
        except BaseException:
            raw.close()
            raise
        client = StreamClient(sock, "TLS")
        self.addCleanup(client.close)
        return client

    def assertAnswered(self, client, status, callId=None):
        try:
            start, headers, body = client.readMessage()
        except (EOFError, OSError) as e:
            self.fail(f"no {status} response: {e!r}")
        if not start.startswith(f"SIP/2.0 {status} "):
            self.fail(f"expected {status}, got {start!r} {headers}")
        if callId is not None:
            self.assertEqual(headers.get("call-id"), f"{callId}@probe")
        return headers


class TLSTests(_LinkRTCMixin, SynchronousTestCase):
    def test_sipp(self):
        """
        SIPp's OPTIONS scenario completes over TLS: natively (C{-t l1}) when
        SIPp was built with TLS, else over TCP through a relay that opens a
        verified TLS connection to LinkRTC.
        """
        sipp = requirePeer("sipp")
        usage = subprocess.run([sipp, "-h"], capture_output=True, text=True, timeout=15)
        hasTLS = "l1:" in (usage.stdout + usage.stderr)
        common = ["-sf", "options.xml", "-i", "127.0.0.1", "-p", str(freePort(both=True)),
                  "-m", "10", "-r", "20", "-trace_err"]
        if hasTLS:
            result = runSIPp(f"127.0.0.1:{self.tlsPort}", "-t", "l1", "-tls_cert", self.certPath,
                             "-tls_key", self.keyPath, *common, timeout=60)
        else:
            relay = TLSRelay(self.tlsPort, self.caPath)
            self.addCleanup(relay.stop)
            result = runSIPp(f"127.0.0.1:{relay.port}", "-t", "t1", *common, timeout=60)
            self.assertEqual(relay.errors, [])
            self.assertEqual(relay.handshakes, 1)
        if result.returncode != 0:
            self.fail(f"sipp failed ({result.returncode}, tls={hasTLS}):\n"
                      f"{result.stdout[-3000:]}\n{result.stderr[-2000:]}")

    def test_verifiedReuse(self):
        """
        LinkRTC's certificate verifies against the CA for 127.0.0.1 and
        localhost; two OPTIONS on one TLS connection are both answered on it.
        """
        client = self.tlsClient()
        for cseq in (1, 2):
            callId = uuid.uuid4().hex
            client.send(client.options(self.tlsPort, callId=callId, cseq=cseq))
            headers = self.assertAnswered(client, 200, callId)
            self.assertIn("SIP/2.0/TLS", headers["via"])
        self.tlsClient(serverHostname="localhost").close()

    def test_untrusted(self):
        """A client that does not trust the CA refuses the certificate."""
        context = ssl.create_default_context()
        raw = socket.create_connection(("127.0.0.1", self.tlsPort), timeout=SOCKET_TIMEOUT)
        self.addCleanup(raw.close)
        self.assertRaises(ssl.SSLCertVerificationError, context.wrap_socket, raw,
                          server_hostname="127.0.0.1")
        deadline = time.monotonic() + SOCKET_TIMEOUT
        while "TLS connection from" not in self.linkrtc.logText():
            if time.monotonic() > deadline:
                self.fail("the refused handshake was not logged")
            time.sleep(0.05)

    def test_framingError(self):
        """
        A request whose Content-Length is not a number cannot be framed: a
        best-effort 400, then LinkRTC closes the connection (§18.3). The
        request answered before it on the same connection is unaffected.
        """
        client = self.tlsClient()
        client.send(client.options(self.tlsPort))
        self.assertAnswered(client, 200)
        bad = client.options(self.tlsPort).replace(b"Content-Length: 0", b"Content-Length: x")
        client.send(bad)
        self.assertAnswered(client, 400)
        try:
            rest = client.waitClosed()
        except socket.timeout:
            self.fail("connection still open after a framing error")
        self.assertEqual(rest.strip(b"\r\n"), b"")


class TCPTests(_LinkRTCMixin, SynchronousTestCase):
    def test_smallWrites(self):
        """A message written a few octets at a time is reassembled and answered."""
        client = self.tcpClient()
        callId = uuid.uuid4().hex
        body = b"v=0\r\no=- 1 1 IN IP4 127.0.0.1\r\ns=-\r\nc=IN IP4 127.0.0.1\r\nt=0 0\r\n"
        data = client.options(self.linkrtc.sipPort, callId=callId, body=body,
                              extra="Content-Type: application/sdp\r\n")
        for i in range(0, len(data), 7):
            client.send(data[i:i + 7])
            time.sleep(0.003)
        self.assertAnswered(client, 200, callId)

    def test_twoInOneWrite(self):
        """Two requests in one write (after a keep-alive CRLF) are both answered, in order."""
        client = self.tcpClient()
        first, second = uuid.uuid4().hex, uuid.uuid4().hex
        port = self.linkrtc.sipPort
        client.send(b"\r\n" + client.options(port, callId=first)
                    + client.options(port, callId=second, cseq=2))
        self.assertAnswered(client, 200, first)
        self.assertAnswered(client, 200, second)

    def test_unparseableKeepsConnection(self):
        """
        A well-framed request with a bad CSeq gets 400 and the connection
        stays up: the next request on it is answered.
        """
        client = self.tcpClient()
        port = self.linkrtc.sipPort
        client.send(client.options(port).replace(b"CSeq: 1 OPTIONS", b"CSeq: x OPTIONS"))
        self.assertAnswered(client, 400)
        callId = uuid.uuid4().hex
        client.send(client.options(port, callId=callId))
        self.assertAnswered(client, 200, callId)

    def test_framingErrorAfterMessage(self):
        """
        A request and, in the same write, one that cannot be framed: the
        first is answered, then 400, then the connection is closed.
        """
        client = self.tcpClient()
        callId = uuid.uuid4().hex
        port = self.linkrtc.sipPort
        bad = client.options(port).replace(b"Content-Length: 0", b"Content-Length: x")
        client.send(client.options(port, callId=callId) + bad)
        self.assertAnswered(client, 200, callId)
        self.assertAnswered(client, 400)
        try:
            client.waitClosed()
        except socket.timeout:
            self.fail("connection still open after a framing error")

    def test_ping(self):
        """A double-CRLF ping gets a CRLF pong (RFC 5626 §4.4.1)."""
        client = self.tcpClient()
        client.send(b"\r\n\r\n")
        self.assertEqual(client.readRaw(2), b"\r\n")


class IdleTimeoutTests(_LinkRTCMixin, SynchronousTestCase):
    idleTimeout = 2

    def test_idleClosed(self):
        """
        With C{--sip-idle-timeout 2}, traffic every 0.3 s keeps a connection
        open past 2 s, and it is closed about 2 s after the last traffic.
        """
        client = self.tcpClient()
        for _ in range(9):
            client.send(b"\r\n\r\n")
            self.assertEqual(client.readRaw(2), b"\r\n")
            time.sleep(0.3)
        client.send(client.options(self.linkrtc.sipPort))
        self.assertAnswered(client, 200)
        quiet = time.monotonic()
        try:
            client.waitClosed()
        except socket.timeout:
            self.fail(f"idle connection still open after {SOCKET_TIMEOUT} s")
        elapsed = time.monotonic() - quiet
        self.assertTrue(1.5 <= elapsed <= 8.0, f"closed after {elapsed:.2f} s")

    def test_idleTLSClosed(self):
        """A TLS connection with no traffic at all is closed after the idle timeout."""
        client = self.tlsClient()
        opened = time.monotonic()
        try:
            client.waitClosed()
        except socket.timeout:
            self.fail(f"idle TLS connection still open after {SOCKET_TIMEOUT} s")
        elapsed = time.monotonic() - opened
        self.assertTrue(1.5 <= elapsed <= 8.0, f"closed after {elapsed:.2f} s")
