# -*- test-case-name: linkrtc.media.actions.test.test_player -*-
"""
Playing prompts (seed 001 C{play_start}): WAV files of any rate, sample
format and channel count, decoded and converted to the leg's rate by
PyAV (C{AudioResampler}: s16 mono) when the action starts, then sent 20 ms
at a time on the injected clock.

Content (seed 001 C{play_start}'s C{content}): a path (C{str}); or a
C{list} whose items are paths or C{[content, kind]} /
C{[content, kind, options]} lists, played in order. Kinds: C{0} a file,
C{7} several files joined by C{|}, a negative kind is skipped; the others
(numbers, money, dates, TTS) are not supported and give a result with an
C{error}.
"""

import collections
import os

import av
import numpy
from av.audio.resampler import AudioResampler
from twisted.logger import Logger

from linkrtc.media.actions.base import Action, FrameClock

log = Logger()

#: Decoded prompts kept in memory: C{(path, mtime, size, rate)} -> samples.
CACHE_SIZE = 64

#: Longest prompt decoded, seconds (a longer file is cut there).
MAX_PROMPT_SECONDS = 600


class ContentError(Exception):
    """The content cannot be played; the message says why."""


def contentFiles(content):
    """
    @param content: seed 001 play content (see the module docstring).
    @return: C{list} of file paths (C{str}), in order.
    @raise ContentError: for a shape or a kind that is not supported.
    """
    if isinstance(content, str):
        return [content]
    if not isinstance(content, (list, tuple)):
        raise ContentError("play content must be a file name or a list, not %s"
                           % (type(content).__name__,))
    files = []
    for item in content:
        if isinstance(item, str):
            files.append(item)
            continue
        if not isinstance(item, (list, tuple)) or not item:
            raise ContentError("bad play content item %r" % (item,))
        kind = item[1] if len(item) > 1 else 0
        if not isinstance(kind, int) or isinstance(kind, bool):
            raise ContentError("bad play type %r" % (kind,))
        if kind < 0:
            continue
        if kind == 0 and isinstance(item[0], str):
            files.append(item[0])
        elif kind == 7 and isinstance(item[0], str):
            files.extend(name for name in item[0].split("|") if name)
        else:
            raise ContentError("play type %d is not supported" % (kind,))
    return files


class PromptCache:
    """Decoded prompts by path, modification time, size and rate (LRU)."""

    def __init__(self, size=CACHE_SIZE):
        self._size = size
        self._entries = collections.OrderedDict()

    def load(self, path, rate):
        """
        @return: the file's audio as C{int16} mono samples at C{rate} Hz.
        @raise ContentError: if the file cannot be read or decoded.
        """
        try:
            info = os.stat(path)
        except (OSError, TypeError, ValueError) as e:
            raise ContentError("cannot read %r: %s" % (path, getattr(e, "strerror", e) or e))
        key = (path, info.st_mtime_ns, info.st_size, rate)
        samples = self._entries.get(key)
        if samples is not None:
            self._entries.move_to_end(key)
            return samples
        samples = decodeFile(path, rate)
        self._entries[key] = samples
        while len(self._entries) > self._size:
            self._entries.popitem(last=False)
        return samples


def decodeFile(path, rate):
    """
    Decode an audio file (WAV, or anything FFmpeg reads) to mono s16 at C{rate}.

    @return: C{int16} numpy array.
    @raise ContentError: if it has no audio or cannot be decoded.
    """
    chunks = []
    limit = rate * MAX_PROMPT_SECONDS
    try:
        with av.open(path) as container:
            if not container.streams.audio:
                raise ContentError("%r has no audio" % (path,))
            resampler = AudioResampler(format="s16", layout="mono", rate=rate)
            total = 0
            for frame in container.decode(audio=0):
                for out in resampler.resample(frame):
                    chunks.append(out.to_ndarray().reshape(-1))
                    total += out.samples
                if total >= limit:
                    break
            for out in resampler.resample(None):
                chunks.append(out.to_ndarray().reshape(-1))
    except ContentError:
        raise
    except Exception as e:
        raise ContentError("cannot play %r: %s" % (path, e))
    if not chunks:
        raise ContentError("%r holds no audio" % (path,))
    return numpy.concatenate(chunks)[:limit].astype(numpy.int16, copy=False)


#: The process-wide prompt cache.
CACHE = PromptCache()


def loadContent(content, rate, cache=CACHE):
    """
    @return: the content's samples at C{rate}, files joined (C{int16}).
    @raise ContentError: as L{contentFiles} and L{PromptCache.load}.
    """
    files = contentFiles(content)
    if not files:
        return numpy.zeros(0, dtype=numpy.int16)
    parts = [cache.load(path, rate) for path in files]
    return parts[0] if len(parts) == 1 else numpy.concatenate(parts)


def beep(rate, seconds=0.25, frequency=1000, amplitude=8000):
    """@return: a sine beep (C{int16}) at C{rate} Hz."""
    n = numpy.arange(int(rate * seconds))
    return (amplitude * numpy.sin(2 * numpy.pi * frequency * n / rate)).astype(numpy.int16)


class PromptSource:
    """
    Samples played C{repeat} times, read 20 ms at a time (the last frame
    padded with silence).

    @param samples: C{int16} array.
    @param repeat: C{int} >= 1.
    """

    def __init__(self, samples, repeat=1):
        self._samples = samples
        self._total = len(samples) * max(1, int(repeat))
        self.position = 0

    @property
    def finished(self):
        return self.position >= self._total

    def read(self, count):
        """@return: the next C{count} samples (C{int16}), or C{None} when finished."""
        if self.position >= self._total:
            return None
        end = min(self.position + count, self._total)
        frame = self._samples.take(numpy.arange(self.position, end), mode="wrap")
        self.position = end
        if len(frame) < count:
            frame = numpy.concatenate((frame, numpy.zeros(count - len(frame), numpy.int16)))
        return frame


class PromptPlayer:
    """
    Sends a L{PromptSource} to a leg, paced at 50 frames a second, then
    calls C{onDone()}; used by L{Play}, by the DTMF collector's prompt and
    by the recorder's beep.

    @param audio: the L{linkrtc.media.actions.leg.RTPAudio}.
    """

    def __init__(self, audio, source, onDone):
        self._audio = audio
        self._source = source
        self._onDone = onDone
        self._clock = FrameClock(audio.clock, self._tick)
        self.running = False

    def start(self):
        self.running = True
        self._audio.needOutput(True)
        self._clock.start()

    def _tick(self, count):
        for _ in range(count):
            frame = self._source.read(self._audio.codec.frameSamples)
            if frame is None:
                self.stop()
                self._onDone()
                return
            self._audio.writeFrame(frame)

    def stop(self):
        if not self.running:
            return
        self.running = False
        self._clock.stop()
        self._audio.needOutput(False)


class Play(Action):
    """
    Seed 001 C{play_start}: result C{error}, C{begin_time}, C{end_time},
    C{finish_key} (the key that stopped it, else C{None}).
    """

    def __init__(self, audio, content, finishKeys="", repeat=1):
        Action.__init__(self, audio, finish_key=None)
        self._content = content
        self._finishKeys = finishKeys or ""
        self.wantsKeys = bool(self._finishKeys)
        self._repeat = repeat
        self._player = None

    def _begin(self):
        try:
            repeat = int(self._repeat)
            if repeat < 1:
                raise ContentError("repeat must be at least 1")
            samples = loadContent(self._content, self.audio.rate)
        except (ContentError, TypeError, ValueError) as e:
            self.finish(error=str(e))
            return
        self._player = PromptPlayer(self.audio, PromptSource(samples, repeat), self.finish)
        self._player.start()

    def keyPressed(self, key):
        if key in self._finishKeys:
            self.finish(finish_key=key)

    def _end(self):
        if self._player is not None:
            self._player.stop()
