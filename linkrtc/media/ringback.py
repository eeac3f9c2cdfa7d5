# -*- test-case-name: linkrtc.media.test.test_ringback -*-
"""
Ringback tones: what a caller hears while the called client rings
(ITU-T E.180 §2.2 "ringing tone", with the national frequencies and
cadences of ITU-T E.180 Supplement 2).

A L{TonePlan} gives the frequencies (summed, each at the same level) and
the cadence (on/off periods in seconds, repeated). L{toneSamples} makes one
whole cycle of it as C{int16} samples with numpy; L{Ringback} plays it on
a SIP leg's audio (L{linkrtc.media.actions.leg.RTPAudio}) through the
call-control player (L{PromptPlayer}: 20 ms frames paced by the injected
clock), until stopped.
"""

import functools
from dataclasses import dataclass

import numpy

from linkrtc.media.actions.base import Action
from linkrtc.media.actions.player import PromptPlayer, PromptSource


@dataclass(frozen=True)
class TonePlan:
    """
    One country's ringing tone.

    @ivar frequencies: C{tuple} of Hz, played together (a sum of sines).
    @ivar cadence: C{tuple} of seconds, alternately on and off, starting
        with on; the cycle repeats.
    """

    frequencies: tuple
    cadence: tuple

    @property
    def period(self):
        """One cycle, seconds."""
        return float(sum(self.cadence))


#: Ringing tones by country code (ISO 3166 alpha-2, lower case), from
#: ITU-T E.180 Supplement 2 (and national standards where it defers).
TONE_PLANS = {
    "us": TonePlan((440, 480), (2.0, 4.0)),            # North America (also ca)
    "ca": TonePlan((440, 480), (2.0, 4.0)),
    "uk": TonePlan((400, 450), (0.4, 0.2, 0.4, 2.0)),  # BT SIN 350
    "gb": TonePlan((400, 450), (0.4, 0.2, 0.4, 2.0)),
    "au": TonePlan((400, 425), (0.4, 0.2, 0.4, 2.0)),
    "de": TonePlan((425,), (1.0, 4.0)),
    "at": TonePlan((425,), (1.0, 5.0)),
    "ch": TonePlan((425,), (1.0, 4.0)),
    "nl": TonePlan((425,), (1.0, 4.0)),
    "be": TonePlan((425,), (1.0, 3.0)),
    "it": TonePlan((425,), (1.0, 4.0)),
    "es": TonePlan((425,), (1.5, 3.0)),
    "fr": TonePlan((440,), (1.5, 3.5)),
    "se": TonePlan((425,), (1.0, 5.0)),
    "no": TonePlan((425,), (1.0, 4.0)),
    "dk": TonePlan((425,), (1.0, 4.0)),
    "fi": TonePlan((425,), (1.0, 4.0)),
    "pl": TonePlan((425,), (1.0, 4.0)),
    "ru": TonePlan((425,), (0.8, 3.2)),
    "jp": TonePlan((400,), (1.0, 2.0)),
    "cn": TonePlan((450,), (1.0, 4.0)),
    "in": TonePlan((400, 425), (0.4, 0.2, 0.4, 2.0)),
    "br": TonePlan((425,), (1.0, 4.0)),
}

#: The default tone plan's name.
DEFAULT_TONE = "us"

#: Peak amplitude of each sine, C{int16} units (about -16 dBm0 per tone:
#: E.180 §2.2 asks for -10 to -24 dBm0 as sent).
TONE_AMPLITUDE = 3500

#: A played tone repeats this many cycles at most (hours of ringing).
MAX_CYCLES = 10000


def tonePlan(name):
    """
    @param name: a key of L{TONE_PLANS} (any case).
    @return: its L{TonePlan}.
    @raise ValueError: for an unknown name (the message lists the known ones).
    """
    plan = TONE_PLANS.get(str(name).strip().lower())
    if plan is None:
        raise ValueError("unknown ringback tone %r (known: %s)"
                         % (name, ", ".join(sorted(TONE_PLANS))))
    return plan


def toneSamples(plan, rate, amplitude=TONE_AMPLITUDE):
    """
    One cycle of C{plan}'s tone.

    Fast path: computed once per C{(plan, rate, amplitude)} and cached (a
    cycle at 48 kHz took about 17 ms of CPU, at every ringing call); the
    array is shared, so it is read-only.

    @param plan: a L{TonePlan}.
    @param rate: sample rate, Hz.
    @return: read-only C{int16} numpy array of C{round(plan.period * rate)}
        samples; the sines run on through the off periods (no click at
        each on).
    """
    return _toneCycle(plan, rate, amplitude)


@functools.lru_cache(maxsize=64)
def _toneCycle(plan, rate, amplitude):
    """L{toneSamples}, computed."""
    total = int(round(plan.period * rate))
    t = numpy.arange(total) / float(rate)
    tone = numpy.zeros(total)
    for frequency in plan.frequencies:
        tone += numpy.sin(2 * numpy.pi * frequency * t)
    gate = numpy.zeros(total, dtype=bool)
    start = 0.0
    for i, seconds in enumerate(plan.cadence):
        end = start + seconds
        if i % 2 == 0:
            gate[int(round(start * rate)):int(round(end * rate))] = True
        start = end
    samples = numpy.where(gate, tone * amplitude, 0).astype(numpy.int16)
    samples.flags.writeable = False
    return samples


class Ringback(Action):
    """
    Plays a L{TonePlan} on a leg's audio until stopped (the client
    answers, or the call ends). Runs as the leg's action, so the leg is
    busy meanwhile; the result C{dict} has C{error}, C{begin_time},
    C{end_time}.

    @param audio: an L{linkrtc.media.actions.leg.LegAudio} (its C{rate}
        and C{codec} give the frames).
    @param plan: the L{TonePlan}.
    """

    def __init__(self, audio, plan):
        Action.__init__(self, audio)
        self._plan = plan
        self._player = None

    def _begin(self):
        samples = toneSamples(self._plan, self.audio.rate)
        self._player = PromptPlayer(self.audio, PromptSource(samples, MAX_CYCLES), self.finish)
        self._player.start()

    def _end(self):
        if self._player is not None:
            self._player.stop()
