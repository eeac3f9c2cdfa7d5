# -*- test-case-name: linkrtc.media.test.test_opuspath -*-
"""
libopus (the system's C{libopus.so.0}, Debian C{libopus0}) through
C{ctypes}, for the transcoder's fast path (L{linkrtc.media.opuspath}).

Fast path: through PyAV, half of each 20 ms frame's Opus work was PyAV's
own (an C{AudioFrame} and a filter graph pass per encoded frame, a
C{Packet}, frames with C{Fraction} time bases, and a resampler because
FFmpeg's libopus decoder always gives 48 kHz). Called directly, libopus
encodes C{int16} samples from a numpy array into a reused buffer, and
decodes straight to the SIP side's 8 or 16 kHz (a rate libopus supports
natively, RFC 6716 §2: the decoder band-limits as it synthesises).

L{LIB} is C{None} when no libopus can be loaded by name (PyAV's wheels
carry their own copy under a private name); L{linkrtc.media.opuspath}
then uses PyAV.
"""

import ctypes
import ctypes.util

import numpy

#: C{OPUS_APPLICATION_RESTRICTED_LOWDELAY} (opus_defines.h): CELT only.
APPLICATION_RESTRICTED_LOWDELAY = 2051

_SET_BITRATE = 4002  # OPUS_SET_BITRATE_REQUEST

#: The largest Opus frame: 120 ms (RFC 6716 §3.2.1), in samples at 48 kHz.
MAX_FRAME_SAMPLES = 5760

#: The largest Opus packet we make, bytes (RFC 6716 §3.4: 1275 per frame).
MAX_PACKET = 1500


class LibopusError(ValueError):
    """libopus returned an error code (negative, opus_defines.h)."""


def _load():
    """@return: the libopus C{ctypes.CDLL} with its signatures set, or C{None}."""
    for name in ("libopus.so.0", ctypes.util.find_library("opus")):
        if not name:
            continue
        try:
            lib = ctypes.CDLL(name)
        except OSError:
            continue
        try:
            pointer, buffer = ctypes.c_void_p, ctypes.c_char_p
            lib.opus_encoder_create.restype = pointer
            lib.opus_encoder_create.argtypes = [ctypes.c_int32, ctypes.c_int, ctypes.c_int,
                                                ctypes.POINTER(ctypes.c_int)]
            lib.opus_encoder_destroy.argtypes = [pointer]
            lib.opus_encoder_ctl.argtypes = [pointer, ctypes.c_int, ctypes.c_int32]
            lib.opus_encode.restype = ctypes.c_int32
            lib.opus_encode.argtypes = [pointer, pointer, ctypes.c_int, buffer, ctypes.c_int32]
            lib.opus_decoder_create.restype = pointer
            lib.opus_decoder_create.argtypes = [ctypes.c_int32, ctypes.c_int,
                                                ctypes.POINTER(ctypes.c_int)]
            lib.opus_decoder_destroy.argtypes = [pointer]
            lib.opus_decode.restype = ctypes.c_int
            lib.opus_decode.argtypes = [pointer, buffer, ctypes.c_int32, pointer, ctypes.c_int,
                                        ctypes.c_int]
        except AttributeError:
            continue
        return lib
    return None


#: The loaded library, or C{None}.
LIB = _load()


class Encoder:
    """
    One mono libopus encoder.

    @param rate: input sample rate, Hz (8000, 12000, 16000, 24000, 48000).
    @param bitrate: bits per second.
    @param application: an C{OPUS_APPLICATION_*} value.
    @raise LibopusError: when libopus refuses the settings.
    @raise RuntimeError: when L{LIB} is C{None}.
    """

    def __init__(self, rate, bitrate, application=APPLICATION_RESTRICTED_LOWDELAY):
        if LIB is None:
            raise RuntimeError("libopus is not available")
        error = ctypes.c_int()
        self._state = LIB.opus_encoder_create(rate, 1, application, ctypes.byref(error))
        if error.value or not self._state:
            raise LibopusError("opus_encoder_create: error %d" % (error.value,))
        LIB.opus_encoder_ctl(self._state, _SET_BITRATE, bitrate)
        self._buffer = ctypes.create_string_buffer(MAX_PACKET)

    def encode(self, samples):
        """
        @param samples: one frame (2.5 to 60 ms) of C{int16} samples, a
            contiguous numpy array.
        @return: the Opus packet (C{bytes}).
        @raise LibopusError: for a frame length libopus refuses.
        """
        size = LIB.opus_encode(self._state, samples.ctypes.data, len(samples), self._buffer,
                               MAX_PACKET)
        if size < 0:
            raise LibopusError("opus_encode: error %d" % (size,))
        return self._buffer.raw[:size]

    def __del__(self):
        state, self._state = getattr(self, "_state", None), None
        if state and LIB is not None:
            LIB.opus_encoder_destroy(state)


class Decoder:
    """
    One mono libopus decoder (a stereo stream is downmixed).

    @param rate: output sample rate, Hz (8000, 12000, 16000, 24000, 48000).
    @raise LibopusError: when libopus refuses the rate.
    @raise RuntimeError: when L{LIB} is C{None}.
    """

    def __init__(self, rate):
        if LIB is None:
            raise RuntimeError("libopus is not available")
        error = ctypes.c_int()
        self._state = LIB.opus_decoder_create(rate, 1, ctypes.byref(error))
        if error.value or not self._state:
            raise LibopusError("opus_decoder_create: error %d" % (error.value,))
        self._out = numpy.zeros(MAX_FRAME_SAMPLES * rate // 48000, dtype=numpy.int16)

    def decode(self, payload):
        """
        @param payload: one Opus packet (C{bytes}, not empty).
        @return: its C{int16} samples (a new numpy array).
        @raise LibopusError: for a packet libopus cannot decode.
        """
        out = self._out
        count = LIB.opus_decode(self._state, payload, len(payload), out.ctypes.data, len(out), 0)
        if count < 0:
            raise LibopusError("opus_decode: error %d" % (count,))
        return out[:count].copy()

    def __del__(self):
        state, self._state = getattr(self, "_state", None), None
        if state and LIB is not None:
            LIB.opus_decoder_destroy(state)
