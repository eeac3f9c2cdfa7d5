# -*- test-case-name: linkrtc.sip.test.test_transport -*-
"""
The UDP side of the SIP transport layer (RFC 3261 §18): one
L{SIPDatagramProtocol} per listening UDP socket, handing every datagram to
its L{linkrtc.sip.transport.SIPTransportLayer}.
"""

from twisted.internet.protocol import DatagramProtocol
from twisted.logger import Logger

log = Logger()


class SIPDatagramProtocol(DatagramProtocol):
    """
    A UDP socket of a L{SIPTransportLayer}.

    @ivar localAddress: the L{Address} it is bound to (set by
        L{SIPTransportLayer.listen}).
    """

    def __init__(self, layer):
        self._layer = layer
        self.localAddress = None

    def datagramReceived(self, data, addr):
        """Hand one datagram to the layer; never raises."""
        try:
            self._layer._datagramReceived(self, data, addr)
        except Exception:
            log.failure("Unexpected error handling a datagram from {addr}", addr=addr)

    def send(self, data, host, port):
        """
        Write one datagram.

        @raise Exception: whatever the socket raises (caller converts it).
        """
        self.transport.write(data, (host, port))


__all__ = ["SIPDatagramProtocol"]
