# -*- test-case-name: linkrtc.sip.test.test_transport -*-
"""
The stream side of the SIP transport layer (RFC 3261 §18.3, RFC 5626
§3.5.1 CRLF keep-alive): one L{SIPStreamProtocol} per TCP or TLS
connection, framed by Content-Length, and the L{SIPStreamFactory} that
builds them for a listening port.
"""

from twisted.internet.protocol import Factory, Protocol
from twisted.logger import Logger

from linkrtc.error import SIPFramingError
from linkrtc.sip.address import Address
from linkrtc.sip.parser import StreamFramer

log = Logger()


def _isTLSError(reason):
    """@return: C{True} if C{reason} (a L{Failure} or C{None}) is an OpenSSL error."""
    try:
        from OpenSSL.SSL import Error
    except ImportError:
        return False
    return reason is not None and reason.check(Error) is not None



class SIPStreamProtocol(Protocol):
    """
    One TCP or TLS connection carrying SIP (RFC 3261 §18.3): framed by
    Content-Length, answering RFC 5626 double-CRLF pings with a CRLF, closed
    by its layer after C{idleTimeout} seconds without traffic.

    @ivar transportName: C{"TCP"} or C{"TLS"}.
    @ivar peer: the L{Address} of the other end, once connected.
    @ivar outbound: C{True} if we opened it.
    """

    def __init__(self, layer, transportName, outbound=False):
        self._layer = layer
        self.transportName = transportName
        self.outbound = outbound
        self.peer = None
        self.local = None
        self.connected = False
        self._framer = StreamFramer()
        self._pending = 0  # octets of an unfinished message held by the framer
        self._crlf = b""
        self._lastActivity = 0.0
        self._idleCall = None
        self._holds = 0

    def hold(self):
        """
        A dialog uses this connection: it is not closed for being idle
        until every hold is released (a long call may carry no SIP for
        longer than the idle timeout). Holds nest.
        """
        self._holds += 1

    def release(self):
        """Undo one L{hold}; the idle timeout counts from now."""
        if self._holds > 0:
            self._holds -= 1
            self._touch()

    def connectionMade(self):
        self.connected = True
        peer = self.transport.getPeer()
        host = self.transport.getHost()
        self.peer = Address(self.transportName, peer.host, peer.port)
        try:
            self.local = Address(self.transportName, host.host, host.port)
        except (AttributeError, ValueError):
            self.local = None
        self._touch()
        self._layer._connectionMade(self)

    def connectionLost(self, reason):
        self.connected = False
        if self._idleCall is not None and self._idleCall.active():
            self._idleCall.cancel()
        self._idleCall = None
        self._layer._connectionLost(self, reason)

    def _touch(self):
        """Note traffic now, and (re)arm the idle timer."""
        self._lastActivity = self._layer._reactor.seconds()
        timeout = self._layer.idleTimeout
        if timeout is not None and self._idleCall is None and self.connected:
            self._idleCall = self._layer._reactor.callLater(timeout, self._idleCheck)

    def _idleCheck(self):
        self._idleCall = None
        timeout = self._layer.idleTimeout
        if not self.connected or timeout is None:
            return
        idle = self._layer._reactor.seconds() - self._lastActivity
        if self._holds:
            self._idleCall = self._layer._reactor.callLater(timeout, self._idleCheck)
        elif idle >= timeout:
            log.info("Closing idle {transport} connection to {peer} after {idle} s",
                     transport=self.transportName, peer=self.peer, idle=idle)
            self.transport.loseConnection()
        else:
            self._idleCall = self._layer._reactor.callLater(timeout - idle, self._idleCheck)

    def send(self, data):
        """Write C{data} (C{bytes}) on the connection."""
        self.transport.write(data)
        self._touch()

    def dataReceived(self, data):
        """Frame messages and hand each to the layer; never raises."""
        if not self.connected:
            return
        self._touch()
        try:
            self._dataReceived(data)
        except SIPFramingError as e:
            # Whole messages framed before the fault in this chunk are handled first.
            for message in getattr(e, "messages", ()):
                if self.connected:
                    self._layer._streamMessageReceived(self, message)
            self._framingFailed(e)
        except Exception:
            log.failure("Unexpected error on {transport} connection from {peer}",
                        transport=self.transportName, peer=self.peer)
            self.transport.loseConnection()
            self.connected = False

    def _dataReceived(self, data):
        messages = self._framer.feed(data)
        # Mirror the framer (which returns each message's exact octets and
        # skips CR/LF before a start line) to find the CR/LF runs between
        # messages: a double CRLF there is an RFC 5626 ping.
        pos = 0
        if self._pending == 0:
            pos = self._skipCRLF(data, 0)
        for message in messages:
            pos += len(message) - self._pending
            self._pending = 0
            self._crlf = b""
            pos = self._skipCRLF(data, pos)
        if pos < len(data):
            self._pending += len(data) - pos
            self._crlf = b""
        for message in messages:
            if not self.connected:
                return
            self._layer._streamMessageReceived(self, message)

    def _skipCRLF(self, data, pos):
        """
        Skip CR and LF from C{data[pos:]}, answering each double CRLF (ping)
        with one CRLF (pong, RFC 5626 §4.4.1).

        @return: the offset of the first other octet, or C{len(data)}.
        """
        start = pos
        while pos < len(data) and data[pos] in b"\r\n":
            pos += 1
        if pos > start:
            run = self._crlf + data[start:pos]
            index = run.find(b"\r\n\r\n")
            while index >= 0:
                self.transport.write(b"\r\n")
                run = run[index + 4:]
                index = run.find(b"\r\n\r\n")
            self._crlf = run[-3:]
        return pos

    def _framingFailed(self, error):
        log.warn("Closing {transport} connection from {peer}: cannot frame: {reason}",
                 transport=self.transportName, peer=self.peer, reason=error.reason)
        try:
            if error.isRequest:
                self._layer._rejectUnparseable(error, b"", self._layer._sourceOf(self))
        except Exception:
            log.failure("Could not answer an unframeable request")
        self.transport.loseConnection()
        self.connected = False


class SIPStreamFactory(Factory):
    """Builds L{SIPStreamProtocol}s for a listening TCP/TLS port."""

    def __init__(self, layer, transportName):
        self._layer = layer
        self.transportName = transportName

    def buildProtocol(self, addr):
        return SIPStreamProtocol(self._layer, self.transportName)



__all__ = ["SIPStreamFactory", "SIPStreamProtocol"]
