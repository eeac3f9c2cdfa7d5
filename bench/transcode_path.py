"""
The transcoder's per-frame path in process CPU time, per call-second (50
frames each way): Opus from the browser to PCMU on SIP and back.

Rows (each over the same frames: a 880 Hz tone from the browser as Opus
packets, a 440 Hz tone from SIP as PCMU payloads):

  - ``ceiling``: bare PyAV, the least any Opus transcoder does: one
    libopus decode of each browser packet and one libopus encode of each
    SIP frame (8 kHz mono s16 frames made in advance), no resampling, no
    G.711;
  - ``aiortc``: the codec work of the path before the fast path: aiortc's
    ``OpusDecoder`` (stereo 48 kHz) and ``PcmuEncoder`` (its resampler),
    ``PcmuDecoder`` and ``OpusEncoder`` (resampled to stereo 48 kHz);
    aiortc's receiver and sender (threads, Tasks, timers, RTP objects) come
    on top of this in LinkRTC and are not counted here;
  - ``opuspath``: ``linkrtc.media.opuspath`` (``SIPFromOpus``,
    ``OpusFromSIP``), the codec work of the fast path, with libopus
    through ctypes (``linkrtc.media.libopus``; the row is the same as
    ``opuspath-pyav`` when the system has no libopus), and
    ``opuspath-pyav``: the same through PyAV, its fallback;
  - ``transcoder``: ``Transcoder``'s inline callbacks for a packet each way,
    with the numbering and the tee check, the RTP session and the tap
    replaced by stubs that only count (no SRTP, no socket).

Prints each row and its ratio to the ceiling, and writes
bench/results/transcode_path.json.

    python bench/transcode_path.py [--frames 1000]
"""

import argparse
import asyncio
import fractions
import json
import os
import sys
import time

import av
import numpy

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.dirname(HERE))

from aiortc.codecs.g711 import PcmuDecoder, PcmuEncoder  # noqa: E402
from aiortc.codecs.opus import OpusDecoder, OpusEncoder  # noqa: E402
from aiortc.jitterbuffer import JitterFrame  # noqa: E402

from linkrtc.media.actions.pcm import ulawEncode  # noqa: E402
from linkrtc.media.opuspath import OpusFromSIP, SIPFromOpus  # noqa: E402
from linkrtc.media.rtp import StreamRewriter  # noqa: E402
from linkrtc.media.test.peers import libopusContext  # noqa: E402
from linkrtc.media.transcode import FeedTrack, Transcoder  # noqa: E402


def tone(freq, rate, frames):
    """@return: C{frames} 20 ms frames (C{int16} arrays) of a tone at C{rate} Hz."""
    size = rate // 50
    t = numpy.arange(size * frames) / rate
    samples = (8000 * numpy.sin(2 * numpy.pi * freq * t)).astype(numpy.int16)
    return [samples[i * size:(i + 1) * size] for i in range(frames)]


def browserPackets(frames):
    """@return: Opus payloads of a 880 Hz tone, as a browser sends (stereo 48 kHz)."""
    encoder = OpusEncoder()
    out = []
    for i, samples in enumerate(tone(880, 48000, frames)):
        frame = av.AudioFrame.from_ndarray(numpy.repeat(samples, 2).reshape(1, -1),
                                           format="s16", layout="stereo")
        frame.sample_rate = 48000
        frame.pts = i * 960
        payloads, _ = encoder.encode(frame)
        out.extend(payloads)
    return out


def timed(fn, count):
    """@return: CPU milliseconds per call-second (50 iterations) of C{fn(i)} for i < C{count}."""
    start = time.process_time()
    for i in range(count):
        fn(i)
    return 1000 * (time.process_time() - start) / count * 50


def ceiling(opus, pcm):
    decoder = libopusContext("r", 48000)
    encoder = libopusContext("w", 8000, 32000)
    frames = []
    for i, samples in enumerate(pcm):
        frame = av.AudioFrame.from_ndarray(samples.reshape(1, -1), format="s16", layout="mono")
        frame.sample_rate = 8000
        frame.pts = i * 160
        frames.append(frame)

    def one(i):
        decoder.decode(av.Packet(opus[i]))
        encoder.encode(frames[i])

    return timed(one, len(opus))


def aiortcCodecs(opus, ulaw):
    opusDecoder, pcmuEncoder = OpusDecoder(), PcmuEncoder()
    pcmuDecoder, opusEncoder = PcmuDecoder(), OpusEncoder()
    base = fractions.Fraction(1, 8000)

    def one(i):
        for frame in opusDecoder.decode(JitterFrame(opus[i], i * 960)):
            pcmuEncoder.encode(frame)
        for frame in pcmuDecoder.decode(JitterFrame(ulaw[i], i * 160)):
            frame.pts, frame.sample_rate, frame.time_base = i * 160, 8000, base
            opusEncoder.encode(frame)

    return timed(one, len(opus))


def opuspath(opus, ulaw, useLibopus=True):
    fromOpus = SIPFromOpus("PCMU", useLibopus=useLibopus)
    toOpus = OpusFromSIP("PCMU", useLibopus=useLibopus)

    def one(i):
        fromOpus.transcode(opus[i])
        toOpus.encode(ulaw[i])

    return timed(one, len(opus))


class _Clock:
    def seconds(self):
        return time.monotonic()


class _StubRTP:
    onAudio = None

    def __init__(self):
        self.sent = 0

    def sendAudio(self, payload, samples, marker=False):
        self.sent += 1


class _StubTap:
    audioPT = 111
    onPacket = None

    def __init__(self):
        self.out = StreamRewriter(_Clock(), ssrc=1234, rate=48000)
        self.sent = 0

    def send(self, marker, pt, seq, ts, payload):
        self.sent += 1


async def transcoderPath(opus, ulaw):
    loop = asyncio.get_running_loop()
    rtp, tap = _StubRTP(), _StubTap()
    transcoder = Transcoder(loop, rtp, None, FeedTrack(), "PCMU", tap=tap, webrtcCodec="OPUS")
    assert transcoder.inline
    transcoder.start()
    fromSIP, fromWebRTC = rtp.onAudio, tap.onPacket

    def one(i):
        fromWebRTC(0, 111, i & 0xFFFF, i * 960, 5678, opus[i])
        fromSIP(0, 0, i & 0xFFFF, i * 160, 4321, ulaw[i])

    result = timed(one, len(opus))
    transcoder.stop()
    assert tap.sent == len(opus) and rtp.sent >= len(opus) - 1, (tap.sent, rtp.sent)
    return result


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--frames", type=int, default=1000)
    args = parser.parse_args()
    opus = browserPackets(args.frames)
    ulaw = [ulawEncode(samples) for samples in tone(440, 8000, args.frames)]
    pcm = tone(440, 8000, args.frames)
    rows = {
        "ceiling": ceiling(opus, pcm),
        "aiortc": aiortcCodecs(opus, ulaw),
        "opuspath-pyav": opuspath(opus, ulaw, useLibopus=False),
        "opuspath": opuspath(opus, ulaw),
        "transcoder": asyncio.run(transcoderPath(opus, ulaw)),
    }
    top = rows["ceiling"]
    for name, value in rows.items():
        print(f"{name:13} {value:6.2f} ms CPU per call-second (x{value / top:.2f} ceiling)")
    os.makedirs(os.path.join(HERE, "results"), exist_ok=True)
    with open(os.path.join(HERE, "results", "transcode_path.json"), "w") as f:
        json.dump({"benchmark": "transcode_path", "time": time.strftime("%Y-%m-%dT%H:%M:%S"),
                   "frames": args.frames,
                   "msPerCallSecond": {k: round(v, 3) for k, v in rows.items()},
                   "ratioToCeiling": {k: round(v / top, 2) for k, v in rows.items()}},
                  f, indent=1)


if __name__ == "__main__":
    main()
