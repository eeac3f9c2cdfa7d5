"""
A WebRTC client of LinkRTC for end-to-end tests: aiortc plus the
WebSocket signalling (autobahn on asyncio, like C{wsclient.py}).

It registers under a name; for each ``incoming`` call it sends
``ringing``, makes an C{RTCPeerConnection(RTCConfiguration(iceServers=[]))}
that gathers host candidates on C{--ice-address} only (per connection, as
C{linkrtc.media.webrtc} does: a network namespace with only loopback has
no other address), sends a sine tone of C{--tone} Hz, records every
decoded frame it receives, and answers with ``accept`` (non-trickle: the
answer carries its candidates), C{--answer-after} seconds after ringing
when given. With C{--hangup-after} it sends
``hangup`` that many seconds after accepting.

Every message received is printed as a JSON line on stdout, and so are
its own events: ``{"type":"ice","state":...}`` and, when a call ends,
``{"type":"heard","seconds":...,"rms":...,"dominant":...,"codec":...}``
(the FFT of the loudest 2 s of what it recorded; the WAV goes to
C{--record} if given). It exits after C{--calls} calls ended or after
C{--lifetime} seconds. Each line written to its stdin is a JSON message it
sends as is, with C{"call"} set to the latest call when missing (for
example C{{"type":"hangup"}}), so a test can time hang-ups itself.

With C{--dial TO} it calls out instead, once registered: the same peer
connection makes an offer (non-trickle) sent as
C{{"type":"call","to":TO,"sdp":OFFER,"ref":"t1"}}; C{calling} names the
call and the first C{answer} is applied.

    python rtcclient.py ws://127.0.0.1:8080/ws alice --tone 880 --codec pcmu
    python rtcclient.py ws://127.0.0.1:8080/ws alice --dial bob
"""

import argparse
import asyncio
import fractions
import json
import os
import sys
import time
import wave

import numpy
from aiortc import RTCConfiguration, RTCPeerConnection, RTCRtpSender, RTCSessionDescription
from aiortc.mediastreams import MediaStreamError, MediaStreamTrack
from autobahn.asyncio.websocket import WebSocketClientProtocol
from av import AudioFrame

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.dirname(HERE))))

from linkrtc.media.webrtc import closePeerConnection, restrictHostAddresses  # noqa: E402
from linkrtc.test.e2e.drivers import analyseSamples  # noqa: E402
from linkrtc.test.e2e.wsclient import connect  # noqa: E402


def emit(message):
    print(json.dumps(message), flush=True)


class ToneTrack(MediaStreamTrack):
    """The client's microphone: a paced mono sine of C{freq} Hz in 20 ms frames."""

    kind = "audio"

    def __init__(self, freq, rate=48000, amplitude=0.4):
        super().__init__()
        self.freq = freq
        self.rate = rate
        self.amplitude = amplitude
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
        n = numpy.arange(self._pts, self._pts + samples)
        data = (self.amplitude * 32767 * numpy.sin(2 * numpy.pi * self.freq * n / self.rate))
        frame = AudioFrame.from_ndarray(data.astype(numpy.int16).reshape(1, -1),
                                        format="s16", layout="mono")
        frame.sample_rate = self.rate
        frame.pts = self._pts
        frame.time_base = fractions.Fraction(1, self.rate)
        self._pts += samples
        return frame


class Recorder:
    """Reads a received track and keeps its first channel as int16 samples."""

    def __init__(self, track):
        self.chunks = []
        self.rate = 0
        self.frames = 0
        self.task = asyncio.ensure_future(self._run(track))

    async def _run(self, track):
        try:
            while True:
                frame = await track.recv()
                data = frame.to_ndarray()
                channels = len(frame.layout.channels)
                if frame.format.is_planar or channels == 1:
                    mono = data[0] if data.ndim > 1 else data
                else:
                    mono = data.reshape(-1, channels)[:, 0]
                self.rate = frame.sample_rate
                self.frames += 1
                self.chunks.append(numpy.asarray(mono, dtype=numpy.int16).copy())
        except (MediaStreamError, asyncio.CancelledError):
            pass

    def samples(self):
        if not self.chunks:
            return numpy.zeros(0)
        return numpy.concatenate(self.chunks).astype(float) / 32768.0

    def save(self, path):
        with wave.open(path, "wb") as w:
            w.setnchannels(1)
            w.setsampwidth(2)
            w.setframerate(self.rate or 8000)
            w.writeframes(numpy.concatenate(self.chunks).astype("<i2").tobytes()
                          if self.chunks else b"")


def codecCapabilities(name):
    """@return: aiortc capabilities for C{name} (C{pcmu}, C{pcma}, C{opus}) or C{None} for any."""
    if name == "any":
        return None
    mime = {"pcmu": "audio/pcmu", "pcma": "audio/pcma", "opus": "audio/opus"}[name]
    return [c for c in RTCRtpSender.getCapabilities("audio").codecs
            if c.mimeType.lower() == mime]


class Call:
    """One answered call: its peer connection, tone and recorder."""

    def __init__(self, client, callId, offer):
        self.client = client
        self.callId = callId
        self.offer = offer
        self.pc = None
        self.recorder = None
        self.ended = False

    def makePeer(self):
        """@return: the C{(pc, transceiver)} with the tone, the recorder and the event lines."""
        o = self.client.options
        pc = self.pc = RTCPeerConnection(RTCConfiguration(iceServers=[]))
        transceiver = pc.addTransceiver(ToneTrack(o.tone), direction="sendrecv")
        preferred = codecCapabilities(o.codec)
        if preferred:
            transceiver.setCodecPreferences(preferred)
        restrictHostAddresses(transceiver, o.ice_address)

        @pc.on("track")
        def onTrack(track):
            if track.kind == "audio" and self.recorder is None:
                self.recorder = Recorder(track)

        @pc.on("iceconnectionstatechange")
        def onIce():
            emit({"type": "ice", "call": self.callId, "state": pc.iceConnectionState})

        return pc, transceiver

    async def dial(self, to, ref):
        """Make the offer and send C{call}."""
        pc, transceiver = self.makePeer()
        await pc.setLocalDescription(await pc.createOffer())
        self.client.send({"type": "call", "to": to, "sdp": pc.localDescription.sdp, "ref": ref})

    async def answered(self, sdp):
        """Apply LinkRTC's C{answer} to our offer (the first one only)."""
        if self.pc is None or self.pc.remoteDescription is not None:
            return
        await self.pc.setRemoteDescription(RTCSessionDescription(sdp=sdp, type="answer"))
        codecs = [c.mimeType for c in self.pc.getTransceivers()[0]._codecs]
        emit({"type": "answered", "call": self.callId, "codecs": codecs})

    async def answer(self):
        o = self.client.options
        pc, transceiver = self.makePeer()
        await pc.setRemoteDescription(RTCSessionDescription(sdp=self.offer, type="offer"))
        await pc.setLocalDescription(await pc.createAnswer())
        codecs = [c.mimeType for c in transceiver._codecs]
        emit({"type": "answered", "call": self.callId, "codecs": codecs})
        self.client.send({"type": "accept", "call": self.callId, "sdp": pc.localDescription.sdp})
        if o.hangup_after is not None:
            asyncio.get_running_loop().call_later(
                o.hangup_after, self.client.send, {"type": "hangup", "call": self.callId})

    async def end(self):
        if self.ended:
            return
        self.ended = True
        o = self.client.options
        heard = {"type": "heard", "call": self.callId, "frames": 0}
        if self.recorder is not None:
            self.recorder.task.cancel()
            heard.update(analyseSamples(self.recorder.samples(), self.recorder.rate))
            heard["frames"] = self.recorder.frames
            if o.record:
                self.recorder.save(o.record)
        if self.pc is not None:
            try:
                stats = await self.pc.getStats()
                for s in stats.values():
                    if s.type == "inbound-rtp":
                        heard["packetsReceived"] = s.packetsReceived
                    elif s.type == "outbound-rtp":
                        heard["packetsSent"] = s.packetsSent
            except Exception as e:
                heard["statsError"] = repr(e)
            await closePeerConnection(self.pc)
        emit(heard)


class Client(WebSocketClientProtocol):
    options = None
    done = None
    instances = []

    def onOpen(self):
        self.instances.append(self)
        self.calls = {}
        self.ended = 0
        register = {"type": "register", "client": self.options.name}
        if self.options.token:
            register["token"] = self.options.token
        self.send(register)

    def send(self, message):
        if self.state == self.STATE_OPEN:
            self.sendMessage(json.dumps(message).encode())

    def onMessage(self, payload, isBinary):
        message = json.loads(payload)
        emit(message)
        kind = message.get("type")
        if kind == "registered" and self.options.dial:
            call = self.dialling = Call(self, None, None)
            asyncio.ensure_future(self._dial(call))
        elif kind == "calling" and getattr(self, "dialling", None) is not None:
            self.dialling.callId = message["call"]
            self.calls[message["call"]] = self.dialling
        elif kind == "answer" and message.get("call") in self.calls:
            asyncio.ensure_future(self._applyAnswer(self.calls[message["call"]], message["sdp"]))
        elif kind == "error" and getattr(self, "dialling", None) is not None \
                and not self.calls:
            asyncio.ensure_future(self._end(self.dialling))
        elif kind == "incoming":
            call = Call(self, message["call"], message.get("sdp"))
            self.calls[call.callId] = call
            self.send({"type": "ringing", "call": call.callId})
            if self.options.answer_after:
                asyncio.get_running_loop().call_later(
                    self.options.answer_after, asyncio.ensure_future, self._answer(call))
            else:
                asyncio.ensure_future(self._answer(call))
        elif kind == "state" and message.get("state") == "dropped":
            call = self.calls.get(message.get("call"))
            asyncio.ensure_future(self._end(call))

    async def _dial(self, call):
        try:
            await call.dial(self.options.dial, "t1")
        except Exception as e:
            emit({"type": "client-error", "error": repr(e)})

    async def _applyAnswer(self, call, sdp):
        try:
            await call.answered(sdp)
        except Exception as e:
            emit({"type": "client-error", "call": call.callId, "error": repr(e)})
            self.send({"type": "hangup", "call": call.callId})

    async def _answer(self, call):
        try:
            await call.answer()
        except Exception as e:
            emit({"type": "client-error", "call": call.callId, "error": repr(e)})
            self.send({"type": "hangup", "call": call.callId})

    async def _end(self, call):
        try:
            if call is not None:
                await call.end()
        finally:
            self.ended += 1
            if self.options.calls and self.ended >= self.options.calls:
                self.sendClose()

    def onClose(self, wasClean, code, reason):
        if not self.done.done():
            self.done.set_result(code)


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("url")
    parser.add_argument("name")
    parser.add_argument("--tone", type=float, default=880.0, help="Hz")
    parser.add_argument("--codec", default="any", choices=["any", "pcmu", "pcma", "opus"])
    parser.add_argument("--ice-address", action="append", default=None,
                        help="host address to gather on (repeat) [default: 127.0.0.1]")
    parser.add_argument("--record", default=None, help="WAV file for what the client heard")
    parser.add_argument("--answer-after", type=float, default=None,
                        help="seconds between ringing and accept (the caller hears ringback)")
    parser.add_argument("--hangup-after", type=float, default=None, help="seconds after accept")
    parser.add_argument("--dial", default=None, help="call this number or URI once registered")
    parser.add_argument("--token", default=None, help="access token (linkrtc token NAME)")
    parser.add_argument("--calls", type=int, default=1, help="exit after this many calls ended")
    parser.add_argument("--lifetime", type=float, default=60.0, help="seconds")
    options = parser.parse_args()
    options.ice_address = options.ice_address or ["127.0.0.1"]

    loop = connect(Client, options)
    instances = Client.instances

    def command():
        line = sys.stdin.readline()
        if not line:
            loop.remove_reader(sys.stdin.fileno())
            return
        try:
            message = json.loads(line)
        except ValueError:
            emit({"type": "client-error", "error": "bad command: %r" % (line,)})
            return
        for p in instances:
            if "call" not in message and getattr(p, "calls", None):
                message["call"] = list(p.calls)[-1]
            p.send(message)

    try:
        loop.add_reader(sys.stdin.fileno(), command)
    except (OSError, ValueError):  # stdin is /dev/null or closed: no commands
        pass
    try:
        loop.run_until_complete(asyncio.wait_for(asyncio.shield(Client.done), options.lifetime))
    except asyncio.TimeoutError:
        emit({"type": "lifetime-expired"})
    for p in instances:
        for call in list(getattr(p, "calls", {}).values()):
            loop.run_until_complete(asyncio.wait_for(call.end(), 10))
    sys.exit(0)


if __name__ == "__main__":
    main()
