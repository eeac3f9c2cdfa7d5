"""
Early media and codec relays of the media bridge end to end: baresip
calls the aiortc client (C{rtcclient.py}) through a running
C{twistd -n linkrtc --media bridge}, inside a network namespace that has
only loopback (C{test_earlymedia_e2e} does C{unshare --net}). The
processes are those of C{bridge_driver.py}; the result is one JSON line.

Scenarios:
  - C{ringback}: the client sends C{ringing} and accepts C{--answer-after}
    seconds later (PCMU); LinkRTC answers baresip's offer in a 183 and
    plays the default ringback tone (US: 440+480 Hz, 2 s on, 4 s off)
    until then. baresip's recording of what it heard is split at the
    answer (the first 20 ms block where the client's 880 Hz dominates):
    C{ringback} is the FFT of the loudest 2 s before it (its two largest
    peaks) and the length of the first tone burst, C{afterAnswer} the
    analysis of what follows.
  - C{pcma}: baresip offers only PCMA (G.711 A-law) and the client
    answers only PCMA: LinkRTC relays the packets (no transcoding). Tones
    both ways; LinkRTC's C{/metrics} (C{linkrtc_media_packets_total} by
    mode) are read after the call ended.
"""

import os
import re
import sys
import time
import urllib.request

import numpy

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.dirname(HERE))))

from linkrtc.test.e2e.api_driver import readWav  # noqa: E402
from linkrtc.test.e2e.bridge_driver import CLIENT_TONE, Run  # noqa: E402
from linkrtc.test.e2e.drivers import analyseSamples, driverParser, runScenario  # noqa: E402
from linkrtc.test.e2e.harness import freePort  # noqa: E402

#: seconds of one analysis block of a recording.
BLOCK = 0.02


def bandLevel(block, rate, frequency):
    """@return: the magnitude of C{block}'s DFT at C{frequency} Hz (Goertzel-like dot product)."""
    t = numpy.arange(len(block)) / float(rate)
    return float(abs(numpy.dot(block, numpy.exp(-2j * numpy.pi * frequency * t)))) / len(block)


def analyseRingback(path, answerTone=CLIENT_TONE):
    """
    Split what baresip heard at the answer and analyse both parts.

    @param path: baresip's C{-dec.wav} recording.
    @param answerTone: Hz, the client's tone, which marks the answer.
    @return: C{dict}: C{seconds} (whole recording), C{answerAt} (seconds
        into it, C{None} if the client's tone never came), C{ringback}
        (C{peaks}: the two largest FFT peaks, Hz, of the loudest 2 s
        before the answer, at least 40 Hz apart; C{rms}; C{firstBurst}:
        seconds of the first run of loud blocks) and C{afterAnswer}
        (L{analyseSamples} of the rest).
    """
    samples, rate = readWav(path)
    size = int(BLOCK * rate)
    blocks = [samples[i:i + size] for i in range(0, len(samples) - size + 1, size)]
    answerAt = None
    for index, block in enumerate(blocks):
        rms = float(numpy.sqrt(numpy.mean(block ** 2)))
        if rms > 0.05 and bandLevel(block, rate, answerTone) > 0.6 * rms:
            answerAt = index
            break
    before = samples[:(answerAt if answerAt is not None else len(blocks)) * size]
    result = {"seconds": len(samples) / rate, "rate": rate,
              "answerAt": answerAt * BLOCK if answerAt is not None else None,
              "ringback": None, "afterAnswer": None}
    if answerAt is not None:
        result["afterAnswer"] = analyseSamples(samples[answerAt * size:], rate)
    if len(before) < 2 * rate:
        return result
    window = 2 * rate
    step = rate // 10
    start = max(range(0, len(before) - window + 1, step),
                key=lambda i: float(numpy.mean(before[i:i + window] ** 2)))
    chunk = before[start:start + window]
    spectrum = numpy.abs(numpy.fft.rfft(chunk * numpy.hanning(len(chunk))))
    freqs = numpy.fft.rfftfreq(len(chunk), 1.0 / rate)
    spectrum[freqs < 50] = 0
    first = int(numpy.argmax(spectrum))
    rest = spectrum.copy()
    rest[numpy.abs(freqs - freqs[first]) <= 40] = 0
    second = int(numpy.argmax(rest))
    rest[numpy.abs(freqs - freqs[second]) <= 40] = 0
    loud = [float(numpy.sqrt(numpy.mean(b ** 2))) > 0.02 for b in blocks[:answerAt]]
    burst = 0
    if True in loud:
        onset = loud.index(True)
        burst = (loud[onset:] + [False]).index(False)
    result["ringback"] = {
        "peaks": sorted([float(freqs[first]), float(freqs[second])]),
        "peakRatio": float(spectrum[second] / max(float(rest.max()), 1e-12)),
        "rms": float(numpy.sqrt(numpy.mean(chunk ** 2))),
        "firstBurst": burst * BLOCK,
    }
    return result


def mediaPackets(run):
    """@return: C{{mode: packets}} of LinkRTC's C{linkrtc_media_packets_total} (both directions)."""
    url = f"http://127.0.0.1:{run.linkrtc.httpPort}/metrics"
    with urllib.request.urlopen(url, timeout=5) as response:
        text = response.read().decode()
    packets = {}
    for mode, value in re.findall(
            r'^linkrtc_media_packets_total\{[^}]*mode="(\w+)"[^}]*\} ([0-9.e+]+)$', text, re.M):
        packets[mode] = packets.get(mode, 0) + float(value)
    return packets


def baresipCalls(run, codec):
    """Start baresip dialling alice with only C{codec} in its account."""
    config = run.configureBaresip(freePort(both=True), "")
    with open(os.path.join(config, "accounts"), "w") as f:
        f.write(f"<sip:bob@127.0.0.1>;regint=0;audio_codecs={codec}\n")
    run.spawnBaresip(config, "-t", "40",
                     "-e", f"/dial sip:alice@127.0.0.1:{run.linkrtc.sipPort}")
    run.step("baresip dialling", codec=codec)


def endCall(run):
    """The client hangs up; both sides' recordings are analysed."""
    run.client.command({"type": "hangup"})
    run.client.waitFor(lambda m: m.get("state") == "dropped", 10)
    run.step("client saw dropped")
    run.result["phoneEnded"] = run.waitForBaresip(r"terminated", 5)
    run.finishClient()
    run.finishBaresip()
    run.result["cdrs"] = run.cdrs()


def scenarioRingback(run, args):
    run.startLinkRTC()
    run.startClient("--codec", "pcmu", "--answer-after", str(args.answer_after))
    baresipCalls(run, "pcmu")
    run.client.waitFor(lambda m: m.get("state") == "confirmed", args.answer_after + 20)
    run.step("confirmed")
    time.sleep(args.talk)
    endCall(run)
    recordings = sorted(os.listdir(os.path.join(run.out, "bsrec")))
    decoded = [name for name in recordings if name.endswith("-dec.wav")]
    run.result["phoneRingback"] = (
        analyseRingback(os.path.join(run.out, "bsrec", decoded[-1])) if decoded else None)
    run.result["earlyMedia"] = bool(re.search(r"early media \(SIP", run.linkrtc.logText()))
    run.result["ok"] = True


def scenarioPCMA(run, args):
    run.startLinkRTC()
    run.startClient("--codec", "pcma")
    baresipCalls(run, "pcma")
    run.client.waitFor(lambda m: m.get("state") == "confirmed", 20)
    run.step("confirmed")
    time.sleep(args.talk)
    endCall(run)
    deadline = time.monotonic() + 5
    while time.monotonic() < deadline:
        run.result["mediaPackets"] = mediaPackets(run)
        if run.result["mediaPackets"]:
            break
        time.sleep(0.2)
    run.result["mediaLines"] = re.findall(r"media \w+ \(SIP [^)]*\)", run.linkrtc.logText())
    run.result["ok"] = True


SCENARIOS = {
    "ringback": scenarioRingback,
    "pcma": scenarioPCMA,
}


def main():
    parser = driverParser(SCENARIOS, deadline=55.0)
    parser.add_argument("--talk", type=float, default=3.0, help="seconds of audio after answer")
    parser.add_argument("--answer-after", type=float, default=4.5,
                        help="seconds the client rings before it accepts")
    args = parser.parse_args()
    run = Run(args.out)
    runScenario(run, SCENARIOS[args.scenario], args, run.failed, run.finish)


if __name__ == "__main__":
    main()
