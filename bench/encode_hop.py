"""
The cost of aiortc's per-frame encoder hop: C{RTCRtpSender} encodes each
20 ms audio frame with C{loop.run_in_executor(None, encoder.encode, ...)}.
This times 2,000 Opus frames through that call with asyncio's default
thread pool (the ceiling being what LinkRTC used before), then with
L{linkrtc.media.transcode.AudioEncodeExecutor} (audio encoded inline),
in process CPU milliseconds per call-second (50 frames), in one process.

    python bench/encode_hop.py
"""

import asyncio
import fractions
import json
import os
import sys
import time

import numpy
from aiortc.codecs.opus import OpusEncoder
from av import AudioFrame

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.dirname(HERE))

from linkrtc.media.transcode import AudioEncodeExecutor  # noqa: E402

FRAMES = 2000


def frame8k():
    """@return: 20 ms of s16 mono silence at 8 kHz."""
    frame = AudioFrame.from_ndarray(numpy.zeros((1, 160), numpy.int16), format="s16",
                                    layout="mono")
    frame.sample_rate = 8000
    frame.time_base = fractions.Fraction(1, 8000)
    return frame


async def encodeAll(inline):
    """@return: CPU ms per call-second encoding L{FRAMES} frames through the loop's executor."""
    loop = asyncio.get_running_loop()
    if inline:
        AudioEncodeExecutor.install(loop)
    encoder, frame = OpusEncoder(), frame8k()
    start = time.process_time()
    for i in range(FRAMES):
        frame.pts = 160 * i
        await loop.run_in_executor(None, encoder.encode, frame, False)
    return 1000 * (time.process_time() - start) / FRAMES * 50


def main():
    pool = asyncio.run(encodeAll(False))
    inline = asyncio.run(encodeAll(True))
    print(f"Opus encode through run_in_executor: thread pool {pool:.2f} ms CPU per call-second, "
          f"inline {inline:.2f} (ratio {inline / pool:.2f})")
    os.makedirs(os.path.join(HERE, "results"), exist_ok=True)
    with open(os.path.join(HERE, "results", "encode_hop.json"), "w") as f:
        json.dump({"benchmark": "encode_hop", "time": time.strftime("%Y-%m-%dT%H:%M:%S"),
                   "frames": FRAMES, "threadPoolMsPerCallSecond": round(pool, 3),
                   "inlineMsPerCallSecond": round(inline, 3)}, f, indent=1)


if __name__ == "__main__":
    main()
