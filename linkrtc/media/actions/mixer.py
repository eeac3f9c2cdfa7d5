# -*- test-case-name: linkrtc.media.actions.test.test_mixer -*-
"""
Joining legs: L{Connection} (seed 001 C{connect_start}: two legs, one
hearing the other or both) and L{Conference} (C{conf_enter}/C{conf_exit}: each
party hears the sum of the others, not itself).

Seed 001's modes: a connection may be one-way (C{connect_mode}) and may
play a prompt to both parties at a set time (C{schedule_play_*}); a
conference party may hear, be heard, both or neither (C{voice_mode}).

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


#: Seed 001 C{connect_start} C{connect_mode}: both hear each other; only
#: the second party hears the first; only the first hears the second.
CONNECT_BOTH, CONNECT_TO_SECOND, CONNECT_TO_FIRST = 1, 2, 3


class Connection(Action):
    """
    Seed 001 C{connect_start} between this leg (the first party) and
    C{other} (the second, C{call_res_id}). The other leg is busy meanwhile
    (its L{ICallAudio.stop} ends the connection too).

    C{connectMode} (seed 001): L{CONNECT_BOTH} each hears the other;
    L{CONNECT_TO_SECOND} only the second party hears the first;
    L{CONNECT_TO_FIRST} only the first hears the second (listening in). A
    party that hears nothing is sent silence (its RTP keeps flowing). DTMF
    keys follow the audio: a key from a leg is sent on to the other
    (C{relayKey}: RFC 4733 to a SIP leg; a browser leg drops them) when
    the other hears it.

    When both legs are SIP legs of the same codec, with no gain and no
    recording, the packets are relayed as they are (no decoding), in the
    directions the mode opens; a browser leg
    (L{linkrtc.media.actions.webrtc_leg.WebRTCAudio}) is always joined by
    frames. Otherwise frames are decoded, scaled (C{localVolume} on this
    leg's audio, C{remoteVolume} on the other's, dB), converted between
    rates, encoded, and, with C{recordPath}, written to a stereo WAV
    (left: this leg, right: the other, whatever the mode; 16-bit at this
    leg's rate).

    Scheduled prompt (seed 001 C{schedule_play_time}, C{schedule_play_file},
    C{schedule_play_loop}): at the Unix time C{schedulePlayTime} (at once
    if it has passed when the connection starts) C{schedulePlayFile} is
    played C{schedulePlayLoop} times to both parties, whatever the mode,
    mixed with what each hears (and into both channels of the recording);
    a relayed connection runs on frames while it plays. A loop of 0, no
    file or no time: nothing is played. A file that cannot be read ends
    the connection at once with an C{error}.

    Result: C{error}, C{begin_time}, C{end_time}.
    """

    def __init__(self, audio, other, maxSeconds=None, recordPath=None, localVolume=None,
                 remoteVolume=None, connectMode=CONNECT_BOTH, schedulePlayTime=None,
                 schedulePlayFile=None, schedulePlayLoop=0):
        Action.__init__(self, audio)
        self.other = other
        self._partner = Partner(self)
        self._maxSeconds = maxSeconds
        self._recordPath = recordPath or None
        self._localGain = fixedGain(localVolume)
        self._remoteGain = fixedGain(remoteVolume)
        self.mode = connectMode
        self.toSecond = connectMode in (CONNECT_BOTH, CONNECT_TO_SECOND)
        self.toFirst = connectMode in (CONNECT_BOTH, CONNECT_TO_FIRST)
        self._schedule = None
        if schedulePlayFile and schedulePlayLoop and schedulePlayTime is not None:
            self._schedule = (float(schedulePlayTime), schedulePlayFile, int(schedulePlayLoop))
        unity = 1 << GAIN_SHIFT
        self.relayable = (audio.packetRelay and other.packetRelay
                          and audio.codec.name == other.codec.name and self._recordPath is None
                          and self._localGain == unity and self._remoteGain == unity)
        self.relayed = False
        self._prompts = None
        self._promptSamples = None
        self._inputs = []
        self._writer = None
        self._frameClock = None
        self._timer = None
        self._playTimer = None
        self._joined = False

    def _begin(self):
        audio, other = self.audio, self.other
        try:
            other._occupy(self._partner)
        except MediaError as e:
            self.finish(error=str(e))
            return
        self._joined = True
        if self._schedule is not None:
            try:
                self._promptSamples = (loadContent(self._schedule[1], audio.rate),
                                       loadContent(self._schedule[1], other.rate))
            except ContentError as e:
                self.finish(error=str(e))
                return
        if self._recordPath is not None:
            try:
                self._writer = WavWriter(self._recordPath, audio.rate, channels=2)
            except (OSError, ValueError, TypeError) as e:
                self.finish(error="cannot record to %r: %s" % (self._recordPath, e))
                return
        audio.needOutput(True)
        other.needOutput(True)
        self._frameClock = FrameClock(self.clock, self._tick)
        if self.relayable:
            self._relay(True)
        else:
            self._decode(True)
        if self.mode != CONNECT_BOTH or not self.relayed:
            self._frameClock.start()
        if self._schedule is not None:
            delay = max(0.0, self._schedule[0] - self.clock.seconds())
            self._playTimer = self.clock.callLater(delay, self._schedulePlay)
        if self._maxSeconds:
            self._timer = self.clock.callLater(float(self._maxSeconds), self.finish)

    def _relay(self, on):
        """Relay packets (undecoded) in the directions the mode opens, or stop."""
        audio, other = self.audio, self.other
        self.relayed = on
        if self.toSecond:
            audio.forwardTo(other.rtp.relayAudio if on else None)
        if self.toFirst:
            other.forwardTo(audio.rtp.relayAudio if on else None)

    def _decode(self, on):
        """Decode the legs whose audio is heard or recorded, or stop."""
        if on:
            recording = self._writer is not None
            self._inputs = [leg for leg, used in ((self.audio, self.toSecond or recording),
                                                  (self.other, self.toFirst or recording))
                            if used]
            for leg in self._inputs:
                leg.needInput(True)
        else:
            for leg in self._inputs:
                leg.needInput(False)
            self._inputs = []

    def _schedulePlay(self):
        self._playTimer = None
        loop = self._schedule[2]
        mine, theirs = self._promptSamples
        self._prompts = (PromptSource(mine, loop), PromptSource(theirs, loop))
        if self.relayed:
            self._relay(False)
            self._decode(True)
            self._frameClock.start()

    def _read(self, leg, gain):
        frame = leg.readFrame() if leg in self._inputs else None
        if frame is None:
            return numpy.zeros(leg.codec.frameSamples, numpy.int32)
        return scaled(frame, gain)

    def _tick(self, count):
        audio, other = self.audio, self.other
        for _ in range(count):
            if self.relayed:
                # One-way relay: the party that hears nothing gets silence.
                if not self.toFirst:
                    audio.writeFrame(numpy.zeros(audio.codec.frameSamples, numpy.int16))
                if not self.toSecond:
                    other.writeFrame(numpy.zeros(other.codec.frameSamples, numpy.int16))
                continue
            mine = clipped(self._read(audio, self._localGain))
            theirs = clipped(self._read(other, self._remoteGain))
            if audio.rate != other.rate:
                mineThere = resample(mine, audio.rate, other.rate)
                theirsHere = resample(theirs, other.rate, audio.rate)
            else:
                mineThere, theirsHere = mine, theirs
            toOther = mineThere if self.toSecond else numpy.zeros_like(mineThere)
            toMe = theirsHere if self.toFirst else numpy.zeros_like(theirsHere)
            promptHere = None
            if self._prompts is not None:
                promptHere = self._prompts[0].read(len(toMe))
                promptThere = self._prompts[1].read(len(toOther))
                if promptHere is None or promptThere is None:
                    self._promptEnded()
                    promptHere = None
                else:
                    toMe = clipped(toMe.astype(numpy.int32) + promptHere)
                    toOther = clipped(toOther.astype(numpy.int32) + promptThere)
            other.writeFrame(toOther)
            audio.writeFrame(toMe)
            if self._writer is not None:
                left, right = mine, theirsHere
                if promptHere is not None:
                    left = clipped(left.astype(numpy.int32) + promptHere)
                    right = clipped(right.astype(numpy.int32) + promptHere)
                try:
                    self._writer.write(numpy.stack((left, right), axis=1))
                except OSError as e:
                    self.finish(error="writing %r failed: %s" % (self._recordPath, e))
                    return
            if self.relayed:
                return

    def _promptEnded(self):
        """The scheduled prompt is over: back to the packet relay if the legs allow it."""
        self._prompts = None
        if self.relayable:
            self._decode(False)
            self._relay(True)
            if self.mode == CONNECT_BOTH:
                self._frameClock.stop()

    def keyPressed(self, key):
        if self.toSecond:
            self.other.relayKey(key)

    def partnerKey(self, key):
        if self.toFirst:
            self.audio.relayKey(key)

    def _end(self):
        for name in ("_timer", "_playTimer"):
            timer = getattr(self, name)
            if timer is not None and timer.active():
                timer.cancel()
            setattr(self, name, None)
        if not self._joined:
            return
        self._joined = False
        audio, other = self.audio, self.other
        if self._frameClock is not None:
            self._frameClock.stop()
            if self.relayed:
                self._relay(False)
            else:
                self._decode(False)
            audio.needOutput(False)
            other.needOutput(False)
        other._release(self._partner)
        if self._writer is not None:
            self._writer.close()


#: Seed 001 C{conf_enter} C{voice_mode} -> C{(hears, heard)}: 1 放音+收音
#: (played to and captured: hears the conference and is heard), 2 收音
#: (captured only: is heard, hears nothing), 3 放音 (played to only: hears,
#: is not heard), 4 无 (neither).
VOICE_MODES = {1: (True, True), 2: (False, True), 3: (True, False), 4: (False, False)}


class Party(Action):
    """
    One leg's seat in a L{Conference}; result C{error}, C{begin_time}, C{end_time}.

    @ivar hears: the conference is played to the party (seed 001 放音).
    @ivar heard: the party's audio is captured into the conference (收音).
    """

    def __init__(self, conference, audio, maxSeconds, volume, voiceMode=1):
        Action.__init__(self, audio)
        self.conference = conference
        self.gain = fixedGain(volume)
        self.hears, self.heard = VOICE_MODES[voiceMode]
        self._maxSeconds = maxSeconds
        self._timer = None
        self._seated = False

    def _begin(self):
        self._seated = True
        if self.heard:
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
            if self.heard:
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

    def enter(self, audio, maxSeconds=None, volume=None, playFile=None, voiceMode=1):
        """
        Seat C{audio}; a C{playFile} is played to everyone in the
        conference who hears it (the entering party too). C{voiceMode}:
        see L{VOICE_MODES}; a party that hears nothing is sent silence. A
        leg that is busy, or a C{voiceMode} outside 1-4, fails with
        L{MediaError}; a C{playFile} that cannot be read gives a result
        with an C{error} at once and the party does not enter.
        """
        if audio in self._parties:
            return defer.fail(MediaError("the call is already in this conference"))
        if voiceMode not in VOICE_MODES:
            return defer.fail(MediaError("voice mode %r is not 1-4" % (voiceMode,)))
        prompt = None
        if playFile:
            try:
                prompt = PromptSource(loadContent(playFile, self.rate))
            except ContentError as e:
                now = self.clock.seconds()
                return defer.succeed({"error": str(e), "begin_time": now, "end_time": now})
        d = audio._run(Party(self, audio, maxSeconds, volume, voiceMode))
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
            frame = party.audio.readFrame() if party.heard else None
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
            if not party.hears:
                party.audio.writeFrame(numpy.zeros(party.audio.codec.frameSamples, numpy.int16))
                continue
            frame = out[i]
            if party.audio.rate != self.rate:
                frame = resample(frame, self.rate, party.audio.rate)
            party.audio.writeFrame(frame)
