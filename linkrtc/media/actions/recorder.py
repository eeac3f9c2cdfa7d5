# -*- test-case-name: linkrtc.media.actions.test.test_recorder -*-
"""
Recording (seed 001 C{record_start}): what the far end sends, decoded,
written to a WAV file 20 ms at a time on the injected clock (a frame that
did not arrive is written as silence, so the file's length is the
recording's duration).

Formats (C{fmt}): C{"wav"} (PCM 16-bit at the leg's rate, 16 kHz for
G.722), or seed 001's C{record_format} numbers: C{1} PCM 8-bit 8 kHz,
C{2} A-law 8 kHz, C{3} µ-law 8 kHz (WAV format tags 6 and 7). Others (4
IMA ADPCM, 5 GSM, 6 MP3) give a result with an C{error}.

As seed 001 says, a recording that reaches C{maxSeconds} or is stopped
(C{record_stop}) ends with an C{error} (C{"max_seconds reached"},
C{"record stopped"}); the file holds what was recorded until then. A
finish key ends it without error.
"""

import struct

import numpy
from twisted.logger import Logger

from linkrtc.media.actions.base import Action, FrameClock
from linkrtc.media.actions.pcm import alawEncode, resample, ulawEncode
from linkrtc.media.actions.player import PromptPlayer, PromptSource, beep

log = Logger()

#: WAV format tags (RFC 2361).
WAVE_PCM, WAVE_ALAW, WAVE_MULAW = 1, 6, 7

#: C{fmt} -> (format tag, bits per sample, fixed rate or C{None} for the leg's).
FORMATS = {
    "wav": (WAVE_PCM, 16, None),
    1: (WAVE_PCM, 8, 8000),
    2: (WAVE_ALAW, 8, 8000),
    3: (WAVE_MULAW, 8, 8000),
}


class WavWriter:
    """
    A mono or stereo WAV file written as it goes; the RIFF sizes are set on
    L{close}.

    @param path: the file (C{str}), truncated.
    @param rate: Hz.
    @param fmt: a key of L{FORMATS}.
    @param channels: 1 or 2 (interleaved).
    @raise OSError: if the file cannot be opened.
    @raise ValueError: for an unknown C{fmt}.
    """

    def __init__(self, path, rate, fmt="wav", channels=1):
        if fmt not in FORMATS:
            raise ValueError("record format %r is not supported (wav, 1, 2 or 3)" % (fmt,))
        self.tag, self.bits, fixed = FORMATS[fmt]
        self.inputRate = rate
        self.rate = fixed or rate
        self.channels = channels
        self.frames = 0
        self._file = open(path, "wb")
        self._writeHeader(0)

    def _writeHeader(self, dataBytes):
        blockAlign = self.channels * self.bits // 8
        fmtChunk = struct.pack("<HHIIHH", self.tag, self.channels, self.rate,
                               self.rate * blockAlign, blockAlign, self.bits)
        extra = b"" if self.tag == WAVE_PCM else struct.pack("<H", 0)
        fmtChunk += extra
        self._file.seek(0)
        self._file.write(b"RIFF" + struct.pack("<I", 4 + 8 + len(fmtChunk) + 8 + dataBytes)
                         + b"WAVE" + b"fmt " + struct.pack("<I", len(fmtChunk)) + fmtChunk
                         + b"data" + struct.pack("<I", dataBytes))

    def write(self, samples):
        """
        Append C{int16} samples at the input rate (for stereo, shape
        C{(n, 2)}).
        """
        if self.rate != self.inputRate:
            if self.channels == 1:
                samples = resample(samples, self.inputRate, self.rate)
            else:
                samples = numpy.stack([resample(samples[:, c], self.inputRate, self.rate)
                                       for c in range(self.channels)], axis=1)
        flat = numpy.ascontiguousarray(samples, dtype=numpy.int16).reshape(-1)
        if self.tag == WAVE_ALAW:
            data = alawEncode(flat)
        elif self.tag == WAVE_MULAW:
            data = ulawEncode(flat)
        elif self.bits == 8:
            data = ((flat.astype(numpy.int32) >> 8) + 128).astype(numpy.uint8).tobytes()
        else:
            data = flat.astype("<i2").tobytes()
        self._file.write(data)
        self.frames += len(flat) // self.channels

    def close(self):
        if self._file.closed:
            return
        dataBytes = self.frames * self.channels * self.bits // 8
        if dataBytes % 2:
            self._file.write(b"\x00")
        self._writeHeader(dataBytes)
        self._file.close()


class Record(Action):
    """
    Seed 001 C{record_start}: result C{error}, C{begin_time},
    C{end_time}, C{finish_key}, C{path}.
    """

    def __init__(self, audio, path, maxSeconds=None, beep=False, finishKeys="", fmt="wav"):
        Action.__init__(self, audio, finish_key=None, path=path)
        self._path = path
        self._maxFrames = None if not maxSeconds else int(round(float(maxSeconds) * 50))
        self._beep = beep
        self._finishKeys = finishKeys or ""
        self.wantsKeys = bool(self._finishKeys)
        self._fmt = fmt
        self._writer = None
        self._clock = FrameClock(audio.clock, self._tick)
        self._player = None
        self._recording = False
        self._frames = 0

    def _begin(self):
        try:
            self._writer = WavWriter(self._path, self.audio.rate, self._fmt)
        except (OSError, ValueError, TypeError) as e:
            self.finish(error="cannot record to %r: %s" % (self._path,
                                                          getattr(e, "strerror", None) or e))
            return
        if self._beep:
            self._player = PromptPlayer(self.audio, PromptSource(beep(self.audio.rate)),
                                        self._startRecording)
            self._player.start()
        else:
            self._startRecording()

    def _startRecording(self):
        if self.done:
            return
        self._recording = True
        self.audio.needInput(True)
        self._clock.start(now=False)

    def _tick(self, count):
        n = self.audio.codec.frameSamples
        for _ in range(count):
            frame = self.audio.readFrame()
            try:
                self._writer.write(frame if frame is not None else numpy.zeros(n, numpy.int16))
            except OSError as e:
                self.finish(error="writing %r failed: %s" % (self._path, e))
                return
            self._frames += 1
            if self._maxFrames is not None and self._frames >= self._maxFrames:
                self.finish(error="max_seconds reached")
                return

    def keyPressed(self, key):
        if key in self._finishKeys:
            self.finish(finish_key=key)

    def stopError(self):
        return "record stopped"

    def _end(self):
        self._clock.stop()
        if self._player is not None:
            self._player.stop()
        if self._recording:
            self._recording = False
            self.audio.needInput(False)
        if self._writer is not None:
            try:
                self._writer.close()
            except OSError as e:
                self.result["error"] = "writing %r failed: %s" % (self._path, e)
