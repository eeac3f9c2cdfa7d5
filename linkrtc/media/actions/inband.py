# -*- test-case-name: linkrtc.media.actions.test.test_inband -*-
"""
In-band DTMF detection (ITU-T Q.23 dual tones, received per ITU-T Q.24)
for legs that carry no RFC 4733 telephone-events: browser legs, and SIP
legs whose SDP has no telephone-event (phones that send tones in the
audio). A leg runs a L{ToneDigitDetector} only while an action wants keys
(C{receive_dtmf_start}, C{play_start} / C{record_start} with
C{finish_keys}); see L{linkrtc.media.actions.leg.LegAudio}.

Analysis, vectorised with numpy (no per-sample Python loop):
 - windows of 20 ms (160 samples at 8 kHz, 320 at 16 kHz) every 10 ms:
   each 20 ms frame gives two windows, the second half of the previous
   frame with the first half of this one, and this frame;
 - the Goertzel magnitude at the eight Q.23 frequencies, evaluated
   exactly (not at DFT bins) as one product of the windows with a
   precomputed C{cos}/C{sin} basis (the same value the Goertzel recursion
   gives at its last sample);
 - a window is a hit for a key when, for its strongest row (low group)
   and column (high group) frequencies:
    - each tone is at least L{MIN_AMPLITUDE} (about -35 dBm0);
    - each is L{GROUP_MARGIN_DB} above the others of its group;
    - the twist (Q.24 §3.2) is within L{NORMAL_TWIST_DB} (high tone
      weaker) and L{REVERSE_TWIST_DB} (high tone stronger);
    - the two tones hold L{TONE_SHARE} of the window's energy (speech,
      music and noise spread theirs);
    - the energy is even across the window's four quarters (within
      L{EVENNESS_DB}): the tone fills the window, so a tone shorter than
      about 30 ms never gives two hits;
 - a key is reported once, after L{HITS_TO_REPORT} hits in a row (at
   least about 30 ms of tone: Q.24 accepts 40 ms, rejects under 23 ms);
   the press ends after L{MISSES_TO_END} windows without it (a 10 ms
   drop-out inside a tone does not make a second press; Q.24's 40 ms
   pause between keys does end it).
"""

import numpy

#: ITU-T Q.23 low (row) and high (column) frequencies, Hz.
ROWS = (697.0, 770.0, 852.0, 941.0)
COLUMNS = (1209.0, 1336.0, 1477.0, 1633.0)

#: Keys by C{[row][column]}.
KEYS = ("123A", "456B", "789C", "*0#D")

#: Smallest peak amplitude of each tone (C{int16} units): about -35 dBm0
#: (a full-scale G.711 sine is +3.17 dBm0).
MIN_AMPLITUDE = 400.0

#: The strongest tone of a group is at least this much above the next one, dB.
GROUP_MARGIN_DB = 8.0

#: Twist limits (Q.24 §3.2): high tone weaker (normal) / stronger (reverse) than the low one, dB.
NORMAL_TWIST_DB = 8.0
REVERSE_TWIST_DB = 4.0

#: Share of the window's energy the two tones hold at least.
TONE_SHARE = 0.6

#: Largest spread of energy across the window's four quarters, dB.
EVENNESS_DB = 6.0

#: Hits in a row (10 ms apart) before a key is reported.
HITS_TO_REPORT = 2

#: Windows in a row without the key before its press ends.
MISSES_TO_END = 4


def _db(ratio):
    return 10.0 ** (ratio / 10.0)


class ToneDigitDetector:
    """
    Detects DTMF keys in a stream of PCM samples.

    @param rate: sample rate, Hz (8000 or 16000; any multiple of 100).
    @param onKey: called with each key (C{str}: 0-9, *, #, A-D) once per
        press, as soon as it is recognised.
    """

    def __init__(self, rate, onKey):
        self.rate = rate
        self._onKey = onKey
        self._n = rate // 50
        self._half = self._n // 2
        n = numpy.arange(self._n)
        freqs = numpy.array(ROWS + COLUMNS)
        phase = 2 * numpy.pi * numpy.outer(n, freqs) / rate
        # (n, 16): cos columns then sin columns; one matmul gives both parts.
        self._basis = numpy.concatenate((numpy.cos(phase), numpy.sin(phase)), axis=1)
        self._partial = numpy.zeros(0, dtype=numpy.float64)
        self._tail = numpy.zeros(self._half, dtype=numpy.float64)
        self._current = None
        self._candidate = None
        self._hits = 0
        self._misses = 0
        self.closed = False

    def close(self):
        """Report nothing more."""
        self.closed = True

    def feed(self, samples):
        """
        Analyse C{samples} (C{int16}, any length; kept until whole 20 ms
        frames are there) and report the keys found.
        """
        samples = numpy.asarray(samples, dtype=numpy.float64)
        if len(self._partial):
            samples = numpy.concatenate((self._partial, samples))
        n = self._n
        whole = len(samples) // n * n
        self._partial = samples[whole:]
        if not whole:
            return
        frames = samples[:whole].reshape(-1, n)
        # Windows every 10 ms: previous tail + this head, then this frame.
        tails = numpy.concatenate((self._tail[numpy.newaxis, :], frames[:-1, self._half:]))
        middles = numpy.concatenate((tails, frames[:, :self._half]), axis=1)
        windows = numpy.empty((2 * len(frames), n))
        windows[0::2] = middles
        windows[1::2] = frames
        self._tail = frames[-1, self._half:].copy()
        for key in self.classify(windows):
            if self.closed:
                return
            self._step(key)

    def classify(self, windows):
        """
        @param windows: C{float} array C{(count, rate // 50)}.
        @return: C{list} of the key each window holds, or C{None}.
        """
        n = self._n
        parts = windows @ self._basis
        power = parts[:, :8] ** 2 + parts[:, 8:] ** 2
        amplitude = 2.0 * numpy.sqrt(power) / n
        rows, cols = power[:, :4], power[:, 4:]
        r = rows.argmax(axis=1)
        c = cols.argmax(axis=1)
        idx = numpy.arange(len(windows))
        rowPower, colPower = rows[idx, r], cols[idx, c]
        rowNext = numpy.sort(rows, axis=1)[:, -2]
        colNext = numpy.sort(cols, axis=1)[:, -2]
        margin = _db(GROUP_MARGIN_DB)
        energy = (windows ** 2).sum(axis=1)
        quarters = (windows.reshape(len(windows), 4, -1) ** 2).sum(axis=2)
        # Tone energy from its Goertzel power: N * A^2 / 2 = 2 |X|^2 / N.
        toneEnergy = 2.0 * (rowPower + colPower) / n
        ok = ((amplitude[idx, r] >= MIN_AMPLITUDE)
              & (amplitude[idx, 4 + c] >= MIN_AMPLITUDE)
              & (rowPower >= margin * rowNext) & (colPower >= margin * colNext)
              & (rowPower <= _db(NORMAL_TWIST_DB) * colPower)
              & (colPower <= _db(REVERSE_TWIST_DB) * rowPower)
              & (toneEnergy >= TONE_SHARE * energy)
              & (quarters.max(axis=1) <= _db(EVENNESS_DB) * quarters.min(axis=1)))
        return [KEYS[r[i]][c[i]] if ok[i] else None for i in range(len(windows))]

    def _step(self, key):
        if key is not None and key == self._current:
            self._misses = 0
            return
        if self._current is not None:
            self._misses += 1
            if self._misses >= MISSES_TO_END:
                self._current = None
                self._misses = 0
        if key is None:
            self._candidate, self._hits = None, 0
            return
        if key == self._candidate:
            self._hits += 1
        else:
            self._candidate, self._hits = key, 1
        if self._hits >= HITS_TO_REPORT and (self._current is None or self._current != key):
            self._current = key
            self._candidate, self._hits, self._misses = None, 0, 0
            self._onKey(key)
