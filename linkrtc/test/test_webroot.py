"""
Tests for L{linkrtc.webroot}: paths that name no file, and over-long
lines, are answered without a traceback (RFC 9110 §15.5.1, §15.5.5).
"""

from twisted.internet.address import IPv4Address
from twisted.internet.testing import StringTransport
from twisted.trial.unittest import SynchronousTestCase
from twisted.web.static import Data

from linkrtc.service import makeRootResource
from linkrtc.webroot import MAX_SEGMENT_LENGTH, StaticFiles, WebSite


class WebRootTests(SynchronousTestCase):
    def setUp(self):
        self.root = makeRootResource()
        self.root.putChild(b"extra", Data(b"ok", "text/plain"))
        self.site = WebSite(self.root)

    def get(self, path, peer="127.0.0.1"):
        """Send C{GET path} from C{peer}; return the status line (C{bytes})."""
        protocol = self.site.buildProtocol(None)
        transport = StringTransport(peerAddress=IPv4Address("TCP", peer, 40000))
        protocol.makeConnection(transport)
        protocol.dataReceived(b"GET " + path + b" HTTP/1.1\r\nHost: x\r\n\r\n")
        status = transport.value().split(b"\r\n", 1)[0]
        protocol.connectionLost(None)
        return status

    def test_root(self):
        """The root is a L{StaticFiles}; its children and C{putChild} ones are served."""
        self.assertIsInstance(self.root, StaticFiles)
        self.assertEqual(self.get(b"/version"), b"HTTP/1.1 200 OK")
        self.assertEqual(self.get(b"/extra"), b"HTTP/1.1 200 OK")
        self.assertEqual(self.get(b"/missing.js"), b"HTTP/1.1 404 Not Found")

    def test_versionLoopbackOnly(self):
        """C{/version} answers loopback peers only (docs/security.rst)."""
        self.assertEqual(self.get(b"/version", peer="192.0.2.9"), b"HTTP/1.1 403 Forbidden")
        self.assertEqual(self.get(b"/extra", peer="192.0.2.9"), b"HTTP/1.1 200 OK")

    def test_serverHeader(self):
        """The C{Server} header is C{LinkRTC} without version, or the one configured."""
        for site, expected in ((self.site, b"Server: LinkRTC\r\n"),
                               (WebSite(self.root, "Switch"), b"Server: Switch\r\n")):
            protocol = site.buildProtocol(None)
            transport = StringTransport()
            protocol.makeConnection(transport)
            protocol.dataReceived(b"GET /extra HTTP/1.1\r\nHost: x\r\n\r\n")
            head = transport.value().split(b"\r\n\r\n", 1)[0] + b"\r\n"
            protocol.connectionLost(None)
            self.assertIn(expected, head)
            self.assertNotIn(b"Twisted", head)

    def test_nul(self):
        """
        C{GET /%00} (a NUL in a file name) is 404, not 500 with a
        traceback; so is a NUL later in a segment or in a deeper one.
        """
        for path in (b"/%00", b"/app.js%00", b"/a%00b/c", b"/version/%00", b"/x/%00"):
            self.assertEqual(self.get(path), b"HTTP/1.1 404 Not Found", path)
        self.assertEqual(self.flushLoggedErrors(), [])

    def test_notUTF8(self):
        """Segments that are not UTF-8 once decoded: 404, nothing logged."""
        for path in (b"/%ff", b"/%C0%AE%C0%AE/", b"/%ff/x", b"/%e2%82"):
            self.assertEqual(self.get(path), b"HTTP/1.1 404 Not Found", path)
        self.assertEqual(self.flushLoggedErrors(), [])

    def test_badPercentEncoding(self):
        """Broken %-escapes are taken literally: 404."""
        for path in (b"/%zz", b"/%", b"/%4"):
            self.assertEqual(self.get(path), b"HTTP/1.1 404 Not Found", path)

    def test_rawBytes(self):
        """A raw NUL or non-ASCII octet in the request line: 400 (Twisted's own check)."""
        self.assertEqual(self.get(b"/\x00"), b"HTTP/1.1 400 Bad Request")
        self.assertEqual(self.get(b"/\xff"), b"HTTP/1.1 400 Bad Request")

    def test_longSegment(self):
        """A segment longer than any file name is 404 without asking the file system."""
        self.assertEqual(self.get(b"/" + b"a" * (MAX_SEGMENT_LENGTH + 1)),
                         b"HTTP/1.1 404 Not Found")
        self.assertEqual(self.get(b"/" + b"a/" * 3000), b"HTTP/1.1 404 Not Found")

    def test_longRequestLine(self):
        """A request line over 16 KiB: 400, then the connection closes."""
        self.assertEqual(self.get(b"/" + b"%41" * 20000), b"HTTP/1.1 400 Bad Request")
