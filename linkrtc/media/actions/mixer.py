# -*- test-case-name: linkrtc.media.actions.test.test_mixer -*-
"""
Joining legs: L{Connection} (seed 001 C{connect_start}: two legs each
hearing the other) and L{Conference} (C{conf_enter}/C{conf_exit}: each
party hears the sum of the others, not itself).

Mixing is numpy over whole 20 ms frames: party frames are stacked in an
C{int32} matrix (gains applied in Q12 fixed point), summed once, each
party's own row subtracted from the sum, and the result clipped to 16
bits; legs at another rate (G.722's 16 kHz) are converted at the edge.
The frames are paced by the injected clock (L{FrameClock}).
"""

import numpy
from twisted.internet import defer
from twisted.logger import Logger
from zope.interface import implementer

from linkrtc.error import MediaError
from linkrtc.interfaces import IConference
from linkrtc.media.actions.base import Action, FrameClock, Partner
from linkrtc.media.actions.pcm import dbGain, resample
from linkrtc.media.actions.player import ContentError, PromptSource, loadContent
from linkrtc.media.actions.recorder import WavWriter

log = Logger()

#: Fixed-point shift of gains (Q12: 4096 is 0 dB).
GAIN_SHIFT = 12


def fixedGain(db):
    """@return: the Q12 C{int} gain of C{db} decibels (C{None}: 0 dB, 4096)."""
    return int(round(dbGain(db) * (1 << GAIN_SHIFT)))


def scaled(frame, gain):
    """@return: C{frame} as C{int32} times a Q12 C{gain}."""
    frame = frame.astype(numpy.int32)
    if gain != 1 << GAIN_SHIFT:
        frame = (frame * gain) >> GAIN_SHIFT
    return frame


def clipped(samples):
    """@return: C{int32} C{samples} clipped to 16 bits, as C{int16}."""
    return numpy.clip(samples, -32768, 32767).astype(numpy.int16)


class Connection(Action):
    """
    Seed 001 C{connect_start} between this leg and C{other}: each hears
    the other. The other leg is busy meanwhile (its L{ICallAudio.stop}
    ends the connection too). DTMF keys from one leg are sent on to the
    other (C{relayKey}: RFC 4733 to a SIP leg; a browser leg drops them).

    When both legs are SIP legs of the same codec, with no gain and no
    recording, the packets are relayed as they are (no decoding); a
    browser leg (L{linkrtc.media.actions.webrtc_leg.WebRTCAudio}) is always
    joined by frames. Otherwise frames are
    decoded, scaled (C{localVolume} on this leg's audio, C{remoteVolume}
    on the other's, dB), converted between rates, encoded, and, with
    C{recordPath}, written to a stereo WAV (left: this leg, right: the
    other; 16-bit at this leg's rate).

    Result: C{error}, C{begin_time}, C{end_time}.
    """

    def __init__(self, audio, other, maxSeconds=None, recordPath=None, localVolume=None,
                 remoteVolume=None):
        Action.__init__(self, audio)
        self.other = other
        self._partner = Partner(self)
        self._maxSeconds = maxSeconds
        self._recordPath = recordPath or None
        self._localGain = fixedGain(localVolume)
        self._remoteGain = fixedGain(remoteVolume)
        unity = 1 << GAIN_SHIFT
        self.relayed = (audio.packetRelay and other.packetRelay
                        and audio.codec.name == other.codec.name and self._recordPath is None
                        and self._localGain == unity and self._remoteGain == unity)
        self._writer = None
        self._frameClock = None
        self._timer = None
        self._joined = False

    def _begin(self):
        audio, other = self.audio, self.other
        try:
            other._occupy(self._partner)
        except MediaError as e:
            self.finish(error=str(e))
            return
        self._joined = True
        if self._recordPath is not None:
            try:
                self._writer = WavWriter(self._recordPath, audio.rate, channels=2)
            except (OSError, ValueError, TypeError) as e:
                self.finish(error="cannot record to %r: %s" % (self._recordPath, e))
                return
        audio.needOutput(True)
        other.needOutput(True)
        if self.relayed:
            audio.forwardTo(other.rtp.relayAudio)
            other.forwardTo(audio.rtp.relayAudio)
        else:
            audio.needInput(True)
            other.needInput(True)
            self._frameClock = FrameClock(self.clock, self._tick)
            self._frameClock.start()
        if self._maxSeconds:
            self._timer = self.clock.callLater(float(self._maxSeconds), self.finish)

    def _tick(self, count):
        audio, other = self.audio, self.other
        for _ in range(count):
            mine = audio.readFrame()
            theirs = other.readFrame()
            mine = (scaled(mine, self._localGain) if mine is not None
                    else numpy.zeros(audio.codec.frameSamples, numpy.int32))
            theirs = (scaled(theirs, self._remoteGain) if theirs is not None
                      else numpy.zeros(other.codec.frameSamples, numpy.int32))
            toOther = clipped(mine)
            toMe = clipped(theirs)
            if audio.rate != other.rate:
                toOther = resample(toOther, audio.rate, other.rate)
                toMe = resample(toMe, other.rate, audio.rate)
            other.writeFrame(toOther)
            audio.writeFrame(toMe)
            if self._writer is not None:
                try:
                    self._writer.write(numpy.stack((clipped(mine), toMe), axis=1))
                except OSError as e:
                    self.finish(error="writing %r failed: %s" % (self._recordPath, e))
                    return

    def keyPressed(self, key):
        self.other.relayKey(key)

    def partnerKey(self, key):
        self.audio.relayKey(key)

    def _end(self):
        if self._timer is not None and self._timer.active():
            self._timer.cancel()
        self._timer = None
        if not self._joined:
            return
        self._joined = False
        audio, other = self.audio, self.other
        if self._frameClock is not None:
            self._frameClock.stop()
            audio.needInput(False)
            other.needInput(False)
        if self.relayed:
            audio.forwardTo(None)
            other.forwardTo(None)
        audio.needOutput(False)
        other.needOutput(False)
        other._release(self._partner)
        if self._writer is not None:
            self._writer.close()


class Party(Action):
    """One leg's seat in a L{Conference}; result C{error}, C{begin_time}, C{end_time}."""

    def __init__(self, conference, audio, maxSeconds, volume):
        Action.__init__(self, audio)
        self.conference = conference
        self.gain = fixedGain(volume)
        self._maxSeconds = maxSeconds
        self._timer = None
        self._seated = False

    def _begin(self):
        self._seated = True
        self.audio.needInput(True)
        self.audio.needOutput(True)
        self.conference._seat(self)
        if self._maxSeconds:
            self._timer = self.clock.callLater(float(self._maxSeconds), self.finish)

    def _end(self):
        if self._timer is not None and self._timer.active():
            self._timer.cancel()
        self._timer = None
        if self._seated:
            self._seated = False
            self.conference._unseat(self)
            self.audio.needInput(False)
            self.audio.needOutput(False)


@implementer(IConference)
class Conference:
    """
    A conference resource (seed 001 C{conf_enter}/C{conf_exit}).

    @param clock: an L{IReactorTime}.
    @param rate: the mixing rate, Hz (legs at another rate are converted).
    """

    def __init__(self, clock, rate=8000):
        self.clock = clock
        self.rate = rate
        self._parties = {}
        self._prompts = []
        self._frameClock = FrameClock(clock, self._tick)

    def enter(self, audio, maxSeconds=None, volume=None, playFile=None):
        """
        Seat C{audio}; a C{playFile} is played to everyone in the
        conference (the entering party too). A leg that is busy fails with
        L{MediaError}; a C{playFile} that cannot be read gives a result
        with an C{error} at once and the party does not enter.
        """
        if audio in self._parties:
            return defer.fail(MediaError("the call is already in this conference"))
        prompt = None
        if playFile:
            try:
                prompt = PromptSource(loadContent(playFile, self.rate))
            except ContentError as e:
                now = self.clock.seconds()
                return defer.succeed({"error": str(e), "begin_time": now, "end_time": now})
        d = audio._run(Party(self, audio, maxSeconds, volume))
        if prompt is not None and audio in self._parties:
            self._prompts.append(prompt)
        return d

    def exit(self, audio):
        party = self._parties.get(audio)
        if party is not None:
            party.finish()

    def parties(self):
        return len(self._parties)

    def close(self):
        """Every party leaves (their results have no error)."""
        for party in list(self._parties.values()):
            party.finish()

    def _seat(self, party):
        self._parties[party.audio] = party
        self._frameClock.start()

    def _unseat(self, party):
        self._parties.pop(party.audio, None)
        if not self._parties:
            self._frameClock.stop()
            self._prompts = []

    def _tick(self, count):
        for _ in range(count):
            self._mix()

    def _mix(self):
        parties = list(self._parties.values())
        n = self.rate // 50
        heard = numpy.zeros((len(parties), n), dtype=numpy.int32)
        for i, party in enumerate(parties):
            frame = party.audio.readFrame()
            if frame is None:
                continue
            if party.audio.rate != self.rate:
                frame = resample(frame, party.audio.rate, self.rate)
            heard[i] = scaled(frame, party.gain)
        total = heard.sum(axis=0)
        for prompt in list(self._prompts):
            frame = prompt.read(n)
            if frame is None:
                self._prompts.remove(prompt)
            else:
                total += frame
        out = clipped(total[numpy.newaxis, :] - heard)
        for i, party in enumerate(parties):
            frame = out[i]
            if party.audio.rate != self.rate:
                frame = resample(frame, self.rate, party.audio.rate)
            party.audio.writeFrame(frame)
