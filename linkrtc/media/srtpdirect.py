# -*- test-case-name: linkrtc.media.test.test_srtpdirect -*-
"""
SRTP for the packet relay's hot path: libsrtp's C{srtp_protect} and
C{srtp_unprotect} called on the context of a C{pylibsrtp.Session} (the one
aiortc made for the DTLS-SRTP keys), without the session's Python wrapper.

Why (a fast path): per packet, C{Session.protect}/C{unprotect} allocate a
C C{int} (C{ffi.new}), copy into a buffer, check the result through another
Python call and slice the buffer; on a 172-octet PCMU packet that costs
about 5 times libsrtp's own AES-GCM (bench/relay_path.py, cProfile). Here
the length cell and the buffer are allocated once per context, the RTP
header of an outgoing packet is packed straight into the buffer
(L{DirectSRTP.protectRTP}: no header object, no concatenation), and the
result is copied out once.

The names used are pylibsrtp 1.0's (C{Session._srtp}, C{pylibsrtp._binding}:
the cffi C{ffi} and C{lib} with libsrtp 2's C{srtp_protect(ctx, buffer,
int *len)}); L{direct} falls back to the session itself when they are
missing, so only speed depends on them. The context is shared with aiortc,
which still protects its RTCP (and, in transcode mode, its RTP) through the
session: everything runs on the one event loop thread.
"""

import struct

import pylibsrtp

try:
    from pylibsrtp._binding import ffi, lib
except ImportError:  # another pylibsrtp build: the session's own methods are used
    ffi = lib = None

#: Largest packet handled (octets), as pylibsrtp's buffer.
MAX_PACKET = 1500
#: Room libsrtp may add to an RTP packet (auth tag, MKI): pylibsrtp's SRTP_MAX_TRAILER_LEN.
MAX_TRAILER = 16 + 128

_HEADER = struct.Struct("!BBHII")


class DirectSRTP:
    """
    One direction of an SRTP session, RTP only (SRTCP stays with the
    session: its packets are few).

    @param session: a C{pylibsrtp.Session} (kept alive by this object).
    """

    __slots__ = ("session", "_context", "_cdata", "_buffer", "_length", "_protect",
                 "_unprotect", "_unpack", "_memmove")

    def __init__(self, session):
        self.session = session
        self._context = session._srtp[0]
        self._cdata = ffi.new("char[]", MAX_PACKET + MAX_TRAILER)
        self._buffer = ffi.buffer(self._cdata)
        self._length = ffi.new("int *")
        self._protect = lib.srtp_protect
        self._unprotect = lib.srtp_unprotect
        self._unpack = ffi.unpack
        self._memmove = ffi.memmove

    # protect, protectRTP and unprotect repeat the same few lines (length
    # cell, libsrtp call, status check, copy out) on purpose: this is the
    # per-packet fast path, and a shared helper would add a Python call per
    # packet, the kind of overhead this module exists to remove (see the
    # module docstring). Keep the three in step when changing one.

    def protect(self, packet):
        """
        @param packet: an RTP packet (C{bytes}, at most L{MAX_PACKET} octets).
        @return: the SRTP packet (C{bytes}).
        @raise pylibsrtp.Error: libsrtp refused it.
        @raise ValueError: C{packet} is too long.
        """
        size = len(packet)
        if size > MAX_PACKET:
            raise ValueError("packet is too long")
        self._memmove(self._cdata, packet, size)
        length = self._length
        length[0] = size
        status = self._protect(self._context, self._cdata, length)
        if status:
            raise pylibsrtp.Error(_errorName(status))
        return self._unpack(self._cdata, length[0])

    def protectRTP(self, second, seq, ts, ssrc, payload):
        """
        Protect the RTP packet made of a 12-octet header (version 2, no
        CSRC, no extension) and C{payload}, built in place.

        @param second: the header's second octet (marker bit and payload type).
        @param seq: sequence number (16 bits); C{ts}: timestamp (32 bits).
        @return: the SRTP packet (C{bytes}).
        """
        size = 12 + len(payload)
        if size > MAX_PACKET:
            raise ValueError("packet is too long")
        buffer = self._buffer
        _HEADER.pack_into(buffer, 0, 0x80, second, seq, ts, ssrc)
        buffer[12:size] = payload
        length = self._length
        length[0] = size
        status = self._protect(self._context, self._cdata, length)
        if status:
            raise pylibsrtp.Error(_errorName(status))
        return self._unpack(self._cdata, length[0])

    def unprotect(self, packet):
        """
        @param packet: an SRTP packet (C{bytes}).
        @return: the RTP packet (C{bytes}).
        @raise pylibsrtp.Error: authentication or replay check failed.
        @raise ValueError: C{packet} is too long.
        """
        size = len(packet)
        if size > MAX_PACKET:
            raise ValueError("packet is too long")
        self._memmove(self._cdata, packet, size)
        length = self._length
        length[0] = size
        status = self._unprotect(self._context, self._cdata, length)
        if status:
            raise pylibsrtp.Error(_errorName(status))
        return self._unpack(self._cdata, length[0])


def _errorName(status):
    errors = getattr(pylibsrtp, "ERRORS", ())
    return errors[status] if 0 <= status < len(errors) else "libsrtp error %d" % (status,)


def direct(session):
    """
    @param session: a C{pylibsrtp.Session}, or any object with
        C{protect}/C{unprotect} (a test's fake).
    @return: a L{DirectSRTP} on it, or C{session} itself when it is not a
        pylibsrtp session or pylibsrtp lacks the names used.
    """
    if (lib is None or not isinstance(session, pylibsrtp.Session)
            or getattr(session, "_srtp", None) is None
            or not hasattr(lib, "srtp_protect") or not hasattr(lib, "srtp_unprotect")):
        return session
    return DirectSRTP(session)


def protectRTP(context):
    """
    @param context: what L{direct} returned.
    @return: a callable C{(second, seq, ts, ssrc, payload)} -> SRTP packet
        (C{bytes}): L{DirectSRTP.protectRTP}, or for any other context the
        header packed and joined to C{payload}, then C{context.protect}.
    """
    if isinstance(context, DirectSRTP):
        return context.protectRTP
    pack, protect = _HEADER.pack, context.protect

    def protectJoined(second, seq, ts, ssrc, payload):
        return protect(pack(0x80, second, seq, ts, ssrc) + payload)

    return protectJoined
