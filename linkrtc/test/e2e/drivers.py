"""
What the end-to-end driver scripts (C{bridge_driver.py},
C{outbound_driver.py}, C{browser_driver.py}) and the clients they run
(C{rtcclient.py}) share: tones and their analysis, and the skeleton of a
driver's C{main()} (arguments, loopback, a deadline for the whole run, one
JSON result line on stdout).
"""

import argparse
import json
import os
import signal
import subprocess
import traceback
import wave

import numpy


def writeTone(path, frequency, seconds, rate, amplitude=0.5):
    """Write a mono S16LE sine WAV of C{seconds} at C{rate} Hz."""
    t = numpy.arange(int(seconds * rate)) / rate
    samples = (numpy.sin(2 * numpy.pi * frequency * t) * amplitude * 32767).astype("<i2")
    with wave.open(path, "wb") as w:
        w.setnchannels(1)
        w.setsampwidth(2)
        w.setframerate(rate)
        w.writeframes(samples.tobytes())


def analyseSamples(samples, rate):
    """
    @param samples: mono samples scaled to -1..1 (numpy floats).
    @param rate: Hz.
    @return: C{dict} with C{seconds}, C{rms} (0..1, whole signal), C{dominant}
        (Hz, the largest FFT bin above 50 Hz of the loudest 2 s window, Hann
        windowed) and C{peakRatio} (that bin's magnitude over the next largest
        bin more than 40 Hz away: a tone gives a large ratio, noise about 1).
    """
    result = {"seconds": len(samples) / rate if rate else 0.0, "rate": rate, "rms": 0.0,
              "dominant": None, "peakRatio": None}
    if rate == 0 or len(samples) < rate // 4:
        return result
    window = min(len(samples), 2 * rate)
    step = max(1, rate // 4)
    best = max(range(0, len(samples) - window + 1, step),
               key=lambda i: float(numpy.mean(samples[i:i + window] ** 2)))
    chunk = samples[best:best + window]
    spectrum = numpy.abs(numpy.fft.rfft(chunk * numpy.hanning(len(chunk))))
    freqs = numpy.fft.rfftfreq(len(chunk), 1.0 / rate)
    spectrum[freqs < 50] = 0
    peak = int(numpy.argmax(spectrum))
    others = spectrum.copy()
    others[numpy.abs(freqs - freqs[peak]) <= 40] = 0
    result["rms"] = float(numpy.sqrt(numpy.mean(samples ** 2)))
    result["dominant"] = float(freqs[peak])
    result["peakRatio"] = float(spectrum[peak] / max(float(others.max()), 1e-12))
    return result


def analyseWav(path):
    """@return: L{analyseSamples} of a WAV file (mixed down to mono)."""
    with wave.open(path, "rb") as w:
        rate, channels, width = w.getframerate(), w.getnchannels(), w.getsampwidth()
        data = w.readframes(w.getnframes())
    dtype = {1: "u1", 2: "<i2", 4: "<i4"}[width]
    samples = numpy.frombuffer(data, dtype=dtype).astype(float)
    if width == 1:
        samples -= 128
    samples /= float(2 ** (8 * width - 1))
    if channels > 1:
        samples = samples.reshape(-1, channels).mean(axis=1)
    return analyseSamples(samples, rate)


def driverParser(scenarios, deadline, defaultScenario=None):
    """
    @param scenarios: the C{--scenario} choices.
    @param deadline: the default of C{--deadline}, seconds.
    @param defaultScenario: when given, C{--scenario} may be left out.
    @return: an L{argparse.ArgumentParser} with C{--scenario}, C{--out} and
        C{--deadline}; the driver adds its own options.
    """
    parser = argparse.ArgumentParser()
    if defaultScenario is None:
        parser.add_argument("--scenario", choices=sorted(scenarios), required=True)
    else:
        parser.add_argument("--scenario", choices=list(scenarios), default=defaultScenario)
    parser.add_argument("--out", required=True)
    parser.add_argument("--deadline", type=float, default=deadline,
                        help="seconds before the scenario is abandoned (then cleaned up)")
    return parser


def runScenario(run, scenario, args, failed, finished, catch=BaseException):
    """
    Run one scenario inside the network namespace and print C{run.result}
    as one JSON line.

    Makes C{args.out}, brings C{lo} up and arms an alarm of
    C{args.deadline} seconds (L{TimeoutError} in the scenario); an error
    C{catch} covers sets C{ok} to C{False}, adds its traceback to
    C{errors} and calls C{failed()}; C{finished()} always follows (the
    alarm disarmed), then the result is printed.

    @param run: holds C{result} (C{dict} with C{errors}).
    @param scenario: a callable of C{(run, args)}.
    """
    os.makedirs(args.out, exist_ok=True)
    subprocess.run(["ip", "link", "set", "lo", "up"], check=True)

    def overtime(signum, frame):
        raise TimeoutError(f"the scenario ran over {args.deadline} s")

    signal.signal(signal.SIGALRM, overtime)
    signal.alarm(int(args.deadline))
    run.result["scenario"] = args.scenario
    try:
        scenario(run, args)
    except catch as e:
        run.result["ok"] = False
        run.result["errors"].append("".join(traceback.format_exception(e))[-4000:])
        failed()
    finally:
        signal.alarm(0)
        finished()
    print(json.dumps(run.result), flush=True)
