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

    #: Most hosts remembered in L{_checked}.
    MAX_CHECKED = 4096

    def __init__(self, layer):
        self._layer = layer
        self.localAddress = None
        # Hosts a datagram already went to through Port.write: its checks
        # (an IP literal of the socket's family) passed for them.
        self._checked = set()

    def datagramReceived(self, data, addr):
        """Hand one datagram to the layer; never raises."""
        try:
            self._layer._datagramReceived(self, data, addr)
        except Exception:
            log.failure("Unexpected error handling a datagram from {addr}", addr=addr)

    def send(self, data, host, port):
        """
        Write one datagram.

        Fast path: Twisted's C{Port.write} checks the address on every
        datagram (up to four C{isIPAddress}/C{isIPv6Address} parses, pure
        Python); once one datagram to C{host} went through it, later ones
        go straight to the socket's C{sendto}. Any C{OSError} there (nothing
        was sent) is left to C{Port.write}, which sends again and handles it
        as always (EINTR, EMSGSIZE, ECONNREFUSED).

        @param host: an IP literal (IPv6 without brackets).
        @param port: C{int}.
        @raise Exception: whatever the socket raises (caller converts it).
        """
        transport = self.transport
        addr = (host, port)
        if host in self._checked:
            try:
                transport.socket.sendto(data, addr)
                return
            except OSError:
                pass
        transport.write(data, addr)
        if getattr(transport, "socket", None) is not None and not getattr(
                transport, "_connectedAddr", None):
            checked = self._checked
            if len(checked) >= self.MAX_CHECKED:
                checked.clear()
            checked.add(host)


__all__ = ["SIPDatagramProtocol"]
