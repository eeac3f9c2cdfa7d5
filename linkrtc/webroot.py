# -*- test-case-name: linkrtc.test.test_webroot -*-
"""
The static files of the HTTP root, safe against paths that name no file.

C{twisted.web.static.File} turns each path segment into a file name; a
segment with a NUL octet (C{GET /%00}) makes C{os.stat} raise and the
request end in 500 with a traceback in the log, and one that is not UTF-8
(C{GET /%ff}) is logged as an error. L{StaticFiles} answers both 404
before the file system is asked, as it does a segment longer than any file
name. A request line or header line longer than the HTTP channel takes
(16 KiB) made Twisted close the connection without a word; L{WebSite}
answers it 400 Bad Request first.
"""

from twisted.web.http import HTTPChannel
from twisted.web.resource import NoResource
from twisted.web.server import Site
from twisted.web.static import File

from linkrtc._version import PRODUCT

__all__ = ["StaticFiles", "WebSite", "MAX_SEGMENT_LENGTH"]

#: Longest path segment looked up on disk, octets (NAME_MAX of common file systems).
MAX_SEGMENT_LENGTH = 255


def _nameable(segment):
    """
    @param segment: one decoded path segment, C{bytes}.
    @return: C{True} if C{segment} can name a file: UTF-8, no NUL, at most
        L{MAX_SEGMENT_LENGTH} octets.
    """
    if b"\x00" in segment or len(segment) > MAX_SEGMENT_LENGTH:
        return False
    try:
        segment.decode("utf-8")
    except UnicodeDecodeError:
        return False
    return True


class StaticFiles(File):
    """
    A L{File} whose children are looked up only for path segments that can
    name a file (L{_nameable}); any other segment is 404 Not Found, with
    nothing logged. Children made with C{putChild} are found as usual.
    """

    def __init__(self, path, defaultType="text/html", ignoredExts=(), registry=None,
                 indexNames=None, contentTypes=None):
        """
        L{File}'s arguments, and:

        @param indexNames: the file names a directory is served as
            (C{list} of C{str}); default L{File}'s. Files made for children
            get a copy (L{File.createSimilarFile}).
        @param contentTypes: C{{".ext": "type"}} for this resource;
            default L{File}'s table. Files made for children use the
            default.
        """
        File.__init__(self, path, defaultType, ignoredExts, registry)
        if indexNames is not None:
            self.indexNames = list(indexNames)
        if contentTypes is not None:
            self.contentTypes = contentTypes

    def getChild(self, path, request):
        if not _nameable(path):
            return NoResource()
        return File.getChild(self, path, request)


class _Channel(HTTPChannel):
    """An HTTP/1.1 channel that answers an over-long line 400 before closing."""

    def lineLengthExceeded(self, line):
        self.transport.write(b"HTTP/1.1 400 Bad Request\r\nConnection: close\r\n"
                             b"Content-Length: 0\r\n\r\n")
        self.loseConnection()


class WebSite(Site):
    """
    The HTTP server's L{Site}: HTTP/1.1 (LinkRTC serves no HTTP/2), and a
    request or header line over C{MAX_LENGTH} octets (16384) is answered
    400 Bad Request, then the connection is closed. Its C{Server} header is
    C{serverHeader} (C{LinkRTC}, without version, by default;
    C{--server-header}) instead of Twisted's C{TwistedWeb/VERSION}.

    @param resource: the root L{Resource}.
    @param serverHeader: the C{Server} header value, ASCII C{str}.
    """

    protocol = _Channel

    def __init__(self, resource, serverHeader=PRODUCT, **kwargs):
        super().__init__(resource, **kwargs)
        self.serverHeader = serverHeader.encode("ascii")

    def getResourceFor(self, request):
        # Request.process set Twisted's Server header just before this.
        request.setHeader(b"Server", self.serverHeader)
        return super().getResourceFor(request)
