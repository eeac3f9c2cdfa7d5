"""
Fake SIP legs for the action tests: a real L{RTPSession} on a fake
datagram transport and a L{task.Clock}; the far end is played by the test
(it injects RTP packets and decodes what was sent).
"""

import struct
import wave

import numpy
from twisted.internet.task import Clock

from linkrtc.media.actions.leg import RTPAudio
from linkrtc.media.actions.pcm import PayloadCodec
from linkrtc.media.rtp import EVENT_DIGITS, RTPSession, buildHeader, parseRTP
from linkrtc.media.sdp import Codec

PHONE = ("192.0.2.7", 4000)
EVENT = Codec("TELEPHONE-EVENT", 8000, 101)
PAYLOAD_TYPES = {"PCMU": 0, "PCMA": 8, "G722": 9}


def tone(freq, rate, samples, start=0, amplitude=6000):
    """@return: C{int16} sine at C{freq} Hz."""
    n = numpy.arange(start, start + samples)
    return (amplitude * numpy.sin(2 * numpy.pi * freq * n / rate)).astype(numpy.int16)


def spectrum(samples, rate):
    """@return: C{(frequencies, magnitudes)} of C{samples}, Hann-windowed."""
    samples = numpy.asarray(samples, dtype=numpy.float64)
    mags = numpy.abs(numpy.fft.rfft(samples * numpy.hanning(len(samples))))
    return numpy.fft.rfftfreq(len(samples), 1.0 / rate), mags


def dominant(samples, rate):
    """@return: the frequency (Hz) of the largest FFT bin, DC excluded."""
    freqs, mags = spectrum(samples, rate)
    mags[0] = 0
    return float(freqs[numpy.argmax(mags)])


def level(samples, rate, freq, width=20):
    """@return: the largest FFT magnitude within C{width} Hz of C{freq}, per sample."""
    freqs, mags = spectrum(samples, rate)
    band = numpy.abs(freqs - freq) <= width
    return float(mags[band].max()) / len(samples)


def writeWav(path, samples, rate, channels=1):
    """Write C{int16} C{samples} to a 16-bit WAV."""
    with wave.open(path, "wb") as w:
        w.setnchannels(channels)
        w.setsampwidth(2)
        w.setframerate(rate)
        w.writeframes(numpy.asarray(samples, dtype="<i2").tobytes())


def readWav(path):
    """@return: C{(samples, rate, channels)} of a 16-bit WAV."""
    with wave.open(path, "rb") as w:
        data = numpy.frombuffer(w.readframes(w.getnframes()), dtype="<i2")
        return data, w.getframerate(), w.getnchannels()


class FakeTransport:
    def __init__(self):
        self.written = []

    def write(self, data, addr):
        self.written.append((data, addr))


class Leg:
    """
    One SIP leg: its L{RTPSession} and L{RTPAudio}, and the far end.

    @ivar sending: the L{RTPAudio} C{onSending} notifications, in order.
    """

    def __init__(self, clock, codec="PCMU", event=True, freq=None):
        self.clock = clock
        self.name = codec
        self.pt = PAYLOAD_TYPES[codec]
        self.rtp = RTPSession(clock, remote=PHONE, audio=Codec(codec, 8000, self.pt),
                              event=EVENT if event else None, mediaTimeout=0)
        self.transport = FakeTransport()
        self.rtp.makeConnection(self.transport)
        self.sending = []
        self.audio = RTPAudio(clock, self.rtp, codec, onSending=self.sending.append)
        self.rtp.onDigit = self.audio.keyPressed  # as BridgeSession._digit does
        self.far = PayloadCodec(codec)
        self.farDecoder = PayloadCodec(codec)
        self.rate = self.far.rate
        self.freq = freq
        self._seq = 1
        self._ts = 0
        self._pos = 0
        self._eventTs = 100000

    def sendFrame(self, samples=None):
        """The far end sends 20 ms (its tone, or C{samples})."""
        n = self.far.frameSamples
        if samples is None:
            samples = tone(self.freq, self.rate, n, self._pos)
        self._pos += n
        packet = buildHeader(0, self.pt, self._seq, self._ts, 0x4242) + self.far.encode(samples)
        self._seq += 1
        self._ts += 160
        self.rtp.datagramReceived(packet, PHONE)

    def press(self, key):
        """The far end presses C{key} (RFC 4733: two packets, then the end three times)."""
        code = EVENT_DIGITS.index(key)
        self._eventTs += 2000
        for end, duration in ((0, 160), (0, 320), (1, 480), (1, 480), (1, 480)):
            payload = struct.pack("!BBH", code, (0x80 if end else 0) | 10, duration)
            self.rtp.datagramReceived(buildHeader(0, 101, self._seq, self._eventTs, 0x4242)
                                      + payload, PHONE)
            self._seq += 1

    def packets(self, pt=None):
        """@return: parsed RTP packets sent to the far end (of payload type C{pt})."""
        parsed = [parseRTP(data) for data, addr in self.transport.written]
        return [p for p in parsed if pt is None or p[1] == pt]

    def heard(self, since=0):
        """@return: the far end's decoded audio (C{int16}), from packet C{since} on."""
        payloads = [p[5] for p in self.packets(self.pt)][since:]
        decoder = PayloadCodec(self.name)
        if not payloads:
            return numpy.zeros(0, dtype=numpy.int16)
        return numpy.concatenate([decoder.decode(p) for p in payloads])


def run(clock, seconds, legs=()):
    """Advance C{clock} by C{seconds} in 20 ms steps, each leg with a tone sending 20 ms first."""
    for _ in range(int(round(seconds * 50))):
        for leg in legs:
            if leg.freq is not None:
                leg.sendFrame()
        clock.advance(0.02)


def newClock(start=1700000000.0):
    clock = Clock()
    clock.advance(start)
    return clock
