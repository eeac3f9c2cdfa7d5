"""
Test peers for the bridge: an in-process aiortc "browser" and a Python
RTP phone, both on 127.0.0.1, plus tone generation and FFT analysis.
"""

import asyncio
import fractions
import os
import threading
import time

import av
import numpy
from aiortc import RTCConfiguration, RTCPeerConnection, RTCSessionDescription
from aiortc.codecs import get_decoder, get_encoder
from aiortc.jitterbuffer import JitterFrame
from aiortc.mediastreams import MediaStreamError, MediaStreamTrack
from av import AudioFrame
from twisted.internet.protocol import DatagramProtocol
from twisted.internet.task import LoopingCall

from linkrtc.media.rtp import buildHeader, parseRTP
from linkrtc.media.transcode import codecParameters
from linkrtc.media.webrtc import (
    aio,
    closePeerConnection,
    codecCapabilities,
    restrictHostAddresses,
)

#: A browser's codecs without PCMA and G.722: calls on those codecs transcode.
OPUS_PCMU = ("OPUS", "PCMU")


def tone(freq, rate, samples, start=0, amplitude=8000):
    """@return: int16 numpy array of a sine at C{freq} Hz."""
    n = numpy.arange(start, start + samples)
    return (amplitude * numpy.sin(2 * numpy.pi * freq * n / rate)).astype(numpy.int16)


def libopusContext(mode, rate, bitRate=None):
    """
    @param mode: C{"r"} (decoder) or C{"w"} (encoder).
    @param rate: sample rate (Hz) of the PCM side.
    @param bitRate: the encoder's bit rate (bit/s), or C{None}: libopus's default.
    @return: a PyAV C{libopus} codec context for mono C{s16} PCM (tests'
        and C{bench/transcode_path.py}'s reference codec).
    """
    context = av.CodecContext.create("libopus", mode)
    context.sample_rate = rate
    context.layout = "mono"
    context.format = "s16"
    if bitRate is not None:
        context.bit_rate = bitRate
    return context


def dominantFrequency(samples, rate):
    """@return: the frequency (Hz) of the largest FFT bin of C{samples}, windowed."""
    samples = numpy.asarray(samples, dtype=numpy.float64)
    spectrum = numpy.abs(numpy.fft.rfft(samples * numpy.hanning(len(samples))))
    spectrum[0] = 0
    return float(numpy.argmax(spectrum)) * rate / len(samples)


def frameSamples(frame):
    """@return: the first channel of an s16 C{AudioFrame} as a numpy array."""
    data = frame.to_ndarray()
    channels = len(frame.layout.channels)
    return data.reshape(-1, channels)[:, 0] if channels > 1 else data.reshape(-1)


class SineTrack(MediaStreamTrack):
    """The browser's microphone: a paced 48 kHz mono sine, 20 ms frames."""

    kind = "audio"

    def __init__(self, freq, rate=48000):
        super().__init__()
        self.freq = freq
        self.rate = rate
        self._pts = 0
        self._start = None

    async def recv(self):
        if self.readyState != "live":
            raise MediaStreamError
        samples = self.rate // 50
        if self._start is None:
            self._start = time.time()
        wait = self._start + self._pts / self.rate - time.time()
        if wait > 0:
            await asyncio.sleep(wait)
        frame = AudioFrame.from_ndarray(
            tone(self.freq, self.rate, samples, self._pts).reshape(1, -1),
            format="s16", layout="mono")
        frame.sample_rate = self.rate
        frame.pts = self._pts
        frame.time_base = fractions.Fraction(1, self.rate)
        self._pts += samples
        return frame


class Browser:
    """An aiortc peer that answers the bridge's offer, sends a tone and records what it hears."""

    def __init__(self, freq=880, codecs=None):
        """
        @param codecs: C{None} (aiortc's: Opus, G.722, PCMU, PCMA) or the
            WebRTC codec names this "browser" has, in its order (e.g.
            L{OPUS_PCMU}: one without PCMA and G.722, so the bridge transcodes).
        """
        self.pc = RTCPeerConnection(RTCConfiguration(iceServers=[]))
        self.track = SineTrack(freq)
        self.transceiver = self.pc.addTransceiver(self.track, direction="sendrecv")
        if codecs:
            self.transceiver.setCodecPreferences(codecCapabilities(codecs))
        restrictHostAddresses(self.transceiver, ["127.0.0.1"])
        self.heard = []
        self.rate = None
        self._task = None

    def answer(self, offerSdp):
        """@return: L{Deferred} with the answer SDP (C{str})."""

        async def go():
            await self.pc.setRemoteDescription(RTCSessionDescription(offerSdp, "offer"))
            await self.pc.setLocalDescription(await self.pc.createAnswer())
            self._task = asyncio.ensure_future(self._listen(self.transceiver.receiver.track))
            return self.pc.localDescription.sdp

        return aio(go())

    def offer(self):
        """@return: L{Deferred} with an offer SDP (C{str}) for an outbound call."""

        async def go():
            await self.pc.setLocalDescription(await self.pc.createOffer())
            return self.pc.localDescription.sdp

        return aio(go())

    def accept(self, answerSdp):
        """Apply LinkRTC's answer to our offer and start listening. @return: L{Deferred}."""

        async def go():
            await self.pc.setRemoteDescription(RTCSessionDescription(answerSdp, "answer"))
            self._task = asyncio.ensure_future(self._listen(self.transceiver.receiver.track))

        return aio(go())

    async def _listen(self, track):
        try:
            while True:
                frame = await track.recv()
                self.rate = frame.sample_rate
                self.heard.append(frameSamples(frame))
        except (MediaStreamError, asyncio.CancelledError):
            pass

    def sendGarbageSRTP(self, count):
        """Send C{count} packets that look like SRTP but fail authentication."""
        ice = self.transceiver.sender.transport.transport
        for i in range(count):
            packet = buildHeader(0, 0, 1000 + i, 1000, 0x1234) + os.urandom(170)
            asyncio.ensure_future(ice._send(packet))

    def close(self):
        if self._task is not None:
            self._task.cancel()
        return aio(closePeerConnection(self.pc))


class Phone(DatagramProtocol):
    """
    A SIP phone's RTP: sends a tone in C{codec} every 20 ms to C{destination}
    once started; decodes and keeps what it receives.
    """

    def __init__(self, reactor, codec="PCMU", freq=440, pt=None):
        self.reactor = reactor
        self.codec = codec
        self.freq = freq
        params = codecParameters(codec)
        self.pt = params.payloadType if pt is None else pt
        self._encoder = get_encoder(params)
        self._decoder = get_decoder(params)
        self.rate = {"G722": 16000, "OPUS": 48000}.get(codec, 8000)
        self._tsStep = 960 if codec == "OPUS" else 160
        self.destination = None
        self.received = []
        self.heard = []
        self.packetsSent = 0
        self._seq = 1
        self._ts = 0
        self._pos = 0
        self._loop = None
        self.port = None

    def listen(self):
        self.port = self.reactor.listenUDP(0, self, interface="127.0.0.1")
        return self.port.getHost().port

    def start(self, destination):
        self.destination = destination
        self._loop = LoopingCall(self._send)
        self._loop.clock = self.reactor
        self._loop.start(0.02)

    def _send(self):
        samples = self.rate // 50
        frame = AudioFrame.from_ndarray(tone(self.freq, self.rate, samples, self._pos).reshape(1, -1),
                                        format="s16", layout="mono")
        frame.sample_rate = self.rate
        frame.pts = self._pos
        frame.time_base = fractions.Fraction(1, self.rate)
        self._pos += samples
        for payload in self._encoder.encode(frame)[0]:
            self.sendRaw(buildHeader(0, self.pt, self._seq, self._ts, 0xC0FFEE) + payload)
            self._seq += 1
            self._ts += self._tsStep

    def sendRaw(self, packet, destination=None):
        self.transport.write(packet, destination or self.destination)
        self.packetsSent += 1

    def datagramReceived(self, data, addr):
        parsed = parseRTP(data)
        if parsed is None:
            return
        self.received.append(parsed)
        marker, pt, seq, ts, ssrc, payload = parsed
        if pt == self.pt:
            for frame in self._decoder.decode(JitterFrame(payload, ts)):
                self.heard.append(frameSamples(frame))

    def stop(self):
        if self._loop is not None and self._loop.running:
            self._loop.stop()
        if self.port is not None:
            return self.port.stopListening()


def sipOffer(port, codecs="0 101", extra="", address="127.0.0.1"):
    """@return: a SIP phone's SDP offer (C{bytes})."""
    addrType = "IP6" if ":" in address else "IP4"
    lines = [
        "v=0", "o=phone 1 1 IN %s %s" % (addrType, address), "s=-",
        "c=IN %s %s" % (addrType, address), "t=0 0",
        "m=audio %d RTP/AVP %s" % (port, codecs),
        "a=rtpmap:0 PCMU/8000", "a=rtpmap:8 PCMA/8000", "a=rtpmap:9 G722/8000",
        "a=rtpmap:111 opus/48000/2",
        "a=rtpmap:101 telephone-event/8000", "a=fmtp:101 0-16", "a=ptime:20",
    ]
    if extra:
        lines.append(extra)
    return ("\r\n".join(lines) + "\r\n").encode()


def _readlink(path):
    try:
        return os.readlink(path)
    except OSError:
        return ""


def resources(factory, loop):
    """@return: C{dict} of what a call may hold: ports, sessions, tasks, threads, fds."""
    return {
        "ports": len(factory.allocator.inUse),
        "sessions": len(factory.sessions),
        "tasks": len([t for t in asyncio.all_tasks(loop) if not t.done()]),
        # asyncio_N: the loop's default executor, shared by the process, kept idle.
        "threads": sorted(t.name for t in threading.enumerate()
                          if not t.name.startswith("asyncio_")),
        "taskNames": sorted(repr(t.get_coro()) for t in asyncio.all_tasks(loop) if not t.done()),
        "sockets": len([fd for fd in os.listdir("/proc/self/fd")
                        if _readlink("/proc/self/fd/" + fd).startswith("socket:")]),
    }
