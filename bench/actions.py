"""
CPU cost of seed 001's media actions (linkrtc/media/actions), in process.

Each "call" is one SIP leg: a real ``RTPSession`` on a fake datagram
transport, whose far end sends one 20 ms PCMU packet every 20 ms; its
audio goes on to a second RTP session (the browser side of a bridge call)
through the packet relay, as in ``--media bridge``. A heap-based virtual
clock drives everything (the RTP timers and the actions' 20 ms frame
clocks), so the run measures only LinkRTC's per-packet and per-frame work
-- parsing, strict RTP, relaying, decoding, mixing, encoding, pacing --
and neither sockets nor the kernel (bench/media.py measures those).

Rows, for each N:
  - ``relay`` (the ceiling): the packet relay fast path, nothing else;
  - ``idle-audio``: the same with ``RTPAudio`` made and no action running
    (decoding only while an action needs it: this must cost as ``relay``);
  - ``play``: every call plays a prompt (an 8 kHz WAV, decoded once and
    cached) to its far end while its audio is still relayed;
  - ``record``: every call records its far end to a WAV file (tmpfs when
    there is one);
  - ``conference3``: N/3 conferences of 3 parties (decode, numpy mix,
    encode);
  - ``connect``: N/2 connections PCMU<->PCMA (decoded, with volumes).

The driver's own loop (making packets and calling ``datagramReceived``)
is measured alone with a no-op receiver and subtracted. The figure is CPU
milliseconds (``time.process_time``) per call-second of audio, and each
row's ratio to the ``relay`` ceiling of the same N in the same run.

    python bench/actions.py [--calls 30,90,180] [--seconds 5]

Writes bench/results/actions.json.
"""

import argparse
import json
import os
import platform
import sys
import tempfile
import time
import wave

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.dirname(HERE))

import numpy  # noqa: E402
from heapclock import HeapClock  # noqa: E402

from linkrtc.media.actions import Conference, RTPAudio  # noqa: E402
from linkrtc.media.actions.pcm import ulawEncode  # noqa: E402
from linkrtc.media.rtp import RTPSession, buildHeader  # noqa: E402
from linkrtc.media.sdp import Codec  # noqa: E402

PCMU = Codec("PCMU", 8000, 0)
PCMA = Codec("PCMA", 8000, 8)
EVENT = Codec("TELEPHONE-EVENT", 8000, 101)
FAR = ("192.0.2.7", 4000)


class Sink:
    """A datagram transport that keeps nothing."""

    __slots__ = ("packets",)

    def __init__(self):
        self.packets = 0

    def write(self, data, addr):
        self.packets += 1


def newLeg(clock, codec=PCMU, sink=None):
    rtp = RTPSession(clock, remote=FAR, audio=codec, event=EVENT, mediaTimeout=0)
    rtp.makeConnection(sink or Sink())
    return rtp


def bridge(clock, codec=PCMU):
    """@return: C{(sipLeg, browserLeg)}: the SIP leg's audio is relayed to the other."""
    sip, browser = newLeg(clock, codec), newLeg(clock, codec)
    sip.onAudio = lambda marker, pt, seq, ts, ssrc, payload: browser.relayAudio(
        marker, ssrc, seq, ts, payload)
    return sip, browser


class Driver:
    """The far ends: one packet every 20 ms for every SIP leg."""

    def __init__(self, legs, codecs):
        self.legs = legs
        payloads = {
            "PCMU": ulawEncode((6000 * numpy.sin(numpy.arange(160) * 0.35)).astype(numpy.int16)),
        }
        payloads["PCMA"] = payloads["PCMU"]
        self.payloads = [payloads[c] for c in codecs]
        self.pts = [0 if c == "PCMU" else 8 for c in codecs]
        self.seq = 0

    def send(self):
        self.seq += 1
        seq, ts = self.seq & 0xFFFF, self.seq * 160
        for leg, pt, payload in zip(self.legs, self.pts, self.payloads):
            leg.datagramReceived(buildHeader(0, pt, seq, ts, 0x4242) + payload, FAR)


class NullLeg:
    def datagramReceived(self, data, addr):
        pass


def measure(clock, driver, seconds):
    steps = int(seconds * 50)
    for _ in range(25):  # warm-up: 0.5 s
        driver.send()
        clock.advance(0.02)
    start = time.process_time()
    for _ in range(steps):
        driver.send()
        clock.advance(0.02)
    return time.process_time() - start


def writePrompt(path, seconds=30):
    n = numpy.arange(int(8000 * seconds))
    samples = (6000 * numpy.sin(2 * numpy.pi * 440 * n / 8000)).astype("<i2")
    with wave.open(path, "wb") as w:
        w.setnchannels(1)
        w.setsampwidth(2)
        w.setframerate(8000)
        w.writeframes(samples.tobytes())


def scenario(kind, n, seconds, workdir):
    """@return: CPU seconds for C{n} calls of C{kind} over C{seconds} of audio."""
    clock = HeapClock(1.7e9, slack=1e-9)
    if kind == "driver":
        return measure(clock, Driver([NullLeg()] * n, ["PCMU"] * n), seconds)
    codecs = ["PCMU"] * n
    if kind == "connect":
        codecs = ["PCMU" if i % 2 == 0 else "PCMA" for i in range(n)]
    legs = []
    for codec in codecs:
        sip, _ = bridge(clock, PCMU if codec == "PCMU" else PCMA)
        legs.append(sip)
    audios = [RTPAudio(clock, leg, leg.audio.name) for leg in legs] if kind != "relay" else []
    keep = []
    if kind == "play":
        prompt = os.path.join(workdir, "prompt.wav")
        writePrompt(prompt)
        keep = [a.play(prompt) for a in audios]
    elif kind == "record":
        keep = [a.record(os.path.join(workdir, "rec%d.wav" % i)) for i, a in enumerate(audios)]
    elif kind == "conference3":
        for i in range(0, n - n % 3, 3):
            conference = Conference(clock)
            keep.append(conference)
            for a in audios[i:i + 3]:
                conference.enter(a)
    elif kind == "connect":
        for i in range(0, n - n % 2, 2):
            keep.append(audios[i].connect(audios[i + 1], localVolume=-3, remoteVolume=3))
    cpu = measure(clock, Driver(legs, codecs), seconds)
    for a in audios:
        a.close()
    return cpu


KINDS = ("relay", "idle-audio", "play", "record", "conference3", "connect")


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--calls", default="30,90,180",
                        help="comma-separated call counts (multiples of 6 keep conferences whole)")
    parser.add_argument("--seconds", type=float, default=5.0, help="audio seconds per row")
    parser.add_argument("--output", default=os.path.join(HERE, "results", "actions.json"))
    args = parser.parse_args()
    counts = [int(x) for x in args.calls.split(",") if x.strip()]
    workdir = tempfile.mkdtemp(dir="/dev/shm" if os.path.isdir("/dev/shm") else None)
    rows = []
    for n in counts:
        driver = min(scenario("driver", n, args.seconds, workdir) for _ in range(3))
        figures = {}
        for kind in KINDS:
            cpu = min(scenario(kind, n, args.seconds, workdir) for _ in range(2))
            figures[kind] = max(0.0, cpu - driver) * 1000.0 / (n * args.seconds)
        ceiling = figures["relay"]
        for kind in KINDS:
            row = {"calls": n, "kind": kind,
                   "cpuMsPerCallSecond": round(figures[kind], 4),
                   "ratioToRelay": round(figures[kind] / ceiling, 2) if ceiling else None}
            rows.append(row)
            print(f"  N={n:<4} {kind:12} {row['cpuMsPerCallSecond']:8.4f} ms/call-s  "
                  f"x{row['ratioToRelay']} of relay", flush=True)
        print(f"  N={n:<4} (driver loop {driver * 1000 / (n * args.seconds):.4f} ms/call-s "
              "subtracted)", flush=True)
    result = {
        "benchmark": "actions",
        "time": time.strftime("%Y-%m-%dT%H:%M:%S"),
        "machine": {"python": platform.python_version(), "cpus": os.cpu_count(),
                    "machine": platform.machine(), "numpy": numpy.__version__},
        "settings": {"seconds": args.seconds, "calls": counts,
                     "what": "in-process, fake transports, virtual clock; no sockets"},
        "rows": rows,
    }
    os.makedirs(os.path.dirname(args.output), exist_ok=True)
    with open(args.output, "w") as f:
        json.dump(result, f, indent=2)
    print("wrote", args.output)


if __name__ == "__main__":
    main()
