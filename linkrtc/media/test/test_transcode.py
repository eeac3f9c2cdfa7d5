"""
Tests for L{linkrtc.media.transcode}'s fast paths (the end-to-end
transcoding itself is in test_bridge and test_codecs).
"""

import asyncio
import fractions
import threading

import numpy
from aiortc.codecs.opus import OpusEncoder
from av import AudioFrame
from twisted.trial.unittest import SynchronousTestCase

from linkrtc.media.transcode import AudioEncodeExecutor


def frame8k(pts=0):
    """@return: 20 ms of s16 mono silence at 8 kHz."""
    frame = AudioFrame.from_ndarray(numpy.zeros((1, 160), numpy.int16), format="s16",
                                    layout="mono")
    frame.sample_rate = 8000
    frame.pts = pts
    frame.time_base = fractions.Fraction(1, 8000)
    return frame


class AudioEncodeExecutorTests(SynchronousTestCase):
    """The loop's default executor runs audio encoders inline, the rest in threads."""

    def setUp(self):
        self.loop = asyncio.new_event_loop()
        self.addCleanup(self.loop.close)
        AudioEncodeExecutor.install(self.loop)
        self.addCleanup(self.loop._default_executor.shutdown, wait=True)

    def test_installOnce(self):
        """Installing twice keeps the first executor."""
        executor = self.loop._default_executor
        AudioEncodeExecutor.install(self.loop)
        self.assertIs(self.loop._default_executor, executor)

    def test_audioEncoderInline(self):
        """
        An audio encoder's C{encode}, as aiortc's sender calls it, runs in
        the loop's thread and gives the same payloads as a direct call.
        """
        encoder, reference = OpusEncoder(), OpusEncoder()
        threads = []

        def encode(self, frame, keyframe):
            threads.append(threading.current_thread())
            return OpusEncoder.encode(self, frame, keyframe)

        encoder.encode = encode.__get__(encoder)  # still bound to the encoder

        async def run():
            results = []
            for i in range(3):
                results.append(await self.loop.run_in_executor(
                    None, encoder.encode, frame8k(160 * i), False))
            return results

        results = self.loop.run_until_complete(run())
        expected = [reference.encode(frame8k(160 * i), False) for i in range(3)]
        self.assertEqual(results, expected)
        self.assertEqual(set(threads), {threading.current_thread()})

    def test_encoderErrorRaised(self):
        """An exception of an inline encoder reaches the awaiting coroutine."""
        encoder = OpusEncoder()

        async def run():
            return await self.loop.run_in_executor(None, encoder.encode, "not a frame", False)

        self.assertRaises(AssertionError, self.loop.run_until_complete, run())

    def test_otherWorkInThreads(self):
        """Anything but an audio encoder still runs in a worker thread."""

        async def run():
            return await self.loop.run_in_executor(None, threading.current_thread)

        self.assertIsNot(self.loop.run_until_complete(run()), threading.current_thread())
