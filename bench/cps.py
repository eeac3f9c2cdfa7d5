"""
Calls per second: SIPp places calls at rising rates against
``twistd -n linkrtc --media passthrough`` (a Python WebSocket client
auto-answering), and, in the same run, against SIPp's own UAS
(``sipp -sn uas``) and a bare Twisted UDP responder (the ceilings).

For each target it prints the highest rate with 0 failed calls and the
target's CPU time per call (milliseconds, from /proc), and writes the
figures to bench/results/cps.json.

Then, at 80 % (and 50 %) of LinkRTC's highest rate, the post-dial delay:
SIPp times each call from its INVITE to the 180 Ringing (millisecond
steps), and the run prints p50/p95/p99 in milliseconds next to the same
figures of SIPp's own UAS at the same rate (the ceiling). The delay is
measured on a fresh LinkRTC (and client), after a warm-up at the same
rate (``--pdd-warmup`` seconds): the steady state of that load, not the
aftermath of the sweep's overload (whose transactions linger 32 s). ``--profile`` records LinkRTC
with py-spy during its sweep (bench/flame.py; bench/results/cps-linkrtc*).

    python bench/cps.py [--rates 100,200,400,800] [--seconds 5] [--profile]

Everything runs on 127.0.0.1 and stops by itself. On a 2-core machine
SIPp and the auto-answering client share the cores with LinkRTC; the
report says when SIPp itself was the limit (it could not reach the rate).
"""

import argparse
import json
import os
import subprocess
import sys
import time

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(HERE)
sys.path.insert(0, ROOT)

import flame  # noqa: E402
from sipload import cpuSeconds, runSIPp, sweep  # noqa: E402

from linkrtc.test.e2e.harness import LinkRTCProcess, WSClient, freePort  # noqa: E402


def pddRow(name, target, rate, seconds, scenario, service=None, warmup=0.0):
    """
    Run SIPp at C{rate} with a timed scenario and print the delays.

    @param warmup: seconds of untimed calls at C{rate} first (0: none).
    """
    if warmup > 0:
        runSIPp(target, rate, warmup, scenario, (service,))
    row = runSIPp(target, rate, seconds, scenario, (service,), timed=True)
    pdd = row["pdd_ms"]

    def ms(value):
        return "-" if value is None else f"{value:.1f}"

    print(f"  {name:10s} rate {rate:5d}/s: {row['successful']} ok {row['failed']} failed "
          f"(achieved {row['achieved']:.0f}/s); "
          f"INVITE->180 p50 {ms(pdd['p50'])} p95 {ms(pdd['p95'])} p99 {ms(pdd['p99'])} ms "
          f"({pdd['count']} timed)", flush=True)
    return row


def sweepTarget(name, target, pid, rates, seconds, scenario, service=None):
    """L{sipload.sweep} of SIPp against one target process C{pid} (its C{cpu_ms_per_call})."""
    return sweep(name, rates, lambda rate: runSIPp(target, rate, seconds, scenario, (service,)),
                 {"": lambda: cpuSeconds(pid)})


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--rates", default="50,100,200,400,800,1600")
    parser.add_argument("--seconds", type=float, default=5.0)
    parser.add_argument("--profile", action="store_true",
                        help="record LinkRTC with py-spy during its sweep (bench/flame.py)")
    parser.add_argument("--pdd-load", type=float, default=0.8,
                        help="post-dial delay at this fraction of LinkRTC's highest rate")
    parser.add_argument("--pdd-warmup", type=float, default=10.0,
                        help="seconds of calls at each post-dial delay rate before timing them")
    options = parser.parse_args()
    rates = [int(r) for r in options.rates.split(",")]
    results = {"rates": rates, "seconds": options.seconds, "cores": os.cpu_count()}

    # 1. LinkRTC, passthrough, a client auto-answering.
    linkrtc = LinkRTCProcess("--media", "passthrough", "--max-calls", "0",
                             "--max-ringing-per-client", "0").start()
    client = WSClient(linkrtc, "bench", "--action", "answer", "--lifetime", "3600")
    try:
        client.waitFor("registered")
        print("LinkRTC (passthrough, WebSocket client auto-answering):", flush=True)
        spy = None
        if options.profile:
            spy = flame.start(linkrtc.process.pid, len(rates) * (options.seconds + 2),
                              "cps-linkrtc")
        results["linkrtc"] = sweepTarget("linkrtc", linkrtc.sipPort, linkrtc.process.pid, rates,
                                   options.seconds, "uac_call.xml", "bench")
        results["linkrtc"]["client_cpu_s"] = cpuSeconds(client.process.pid)
        flame.finish(spy, "cps-linkrtc")
    finally:
        client.stop()
        linkrtc.stop()

    # The post-dial delay in the steady state of a load LinkRTC carries: a
    # fresh process (the sweep ended in overload, whose transactions and
    # heap would linger into the measurement), warmed up at each rate.
    best = results["linkrtc"]["best"]
    maxRate = best["rate"] if best else rates[0]
    pddRate = max(1, int(options.pdd_load * maxRate))
    halfRate = max(1, int(0.5 * maxRate))
    linkrtc = LinkRTCProcess("--media", "passthrough", "--max-calls", "0",
                             "--max-ringing-per-client", "0").start()
    client = WSClient(linkrtc, "bench", "--action", "answer", "--lifetime", "3600")
    try:
        client.waitFor("registered")
        print(f"LinkRTC post-dial delay at 50 % and {options.pdd_load:.0%} of its highest rate "
              f"(a fresh process, {options.pdd_warmup:g} s warm-up at each rate):", flush=True)
        results["linkrtc"]["pdd_half"] = pddRow("linkrtc", linkrtc.sipPort, halfRate,
                                                options.seconds, "uac_call.xml", "bench",
                                                warmup=options.pdd_warmup)
        results["linkrtc"]["pdd"] = pddRow("linkrtc", linkrtc.sipPort, pddRate,
                                           options.seconds, "uac_call.xml", "bench",
                                           warmup=options.pdd_warmup)
    finally:
        client.stop()
        linkrtc.stop()

    # 2. SIPp's own UAS.
    port = freePort()
    uas = subprocess.Popen(["sipp", "-sn", "uas", "-i", "127.0.0.1", "-p", str(port), "-nostdin",
                            "-buff_size", str(4 * 1024 * 1024)],
                           stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        time.sleep(0.5)
        print("SIPp UAS (ceiling):", flush=True)
        results["sipp_uas"] = sweepTarget("sipp-uas", port, uas.pid, rates, options.seconds, "uac")
        print(f"SIPp UAS post-dial delay at {halfRate}/s and {pddRate}/s (ceiling):", flush=True)
        results["sipp_uas"]["pdd_half"] = pddRow("sipp-uas", port, halfRate, options.seconds,
                                                 "uac_call.xml")
        results["sipp_uas"]["pdd"] = pddRow("sipp-uas", port, pddRate, options.seconds,
                                            "uac_call.xml")
    finally:
        uas.kill()
        uas.wait()

    # 3. A bare Twisted UDP responder.
    port = freePort()
    bare = subprocess.Popen([sys.executable, os.path.join(HERE, "bare_responder.py"), str(port)])
    try:
        time.sleep(0.5)
        print("bare Twisted UDP responder (ceiling):", flush=True)
        results["bare_twisted"] = sweepTarget("bare", port, bare.pid, rates, options.seconds, "uac")
    finally:
        bare.kill()
        bare.wait()

    print("\nSummary: highest rate with 0 failed calls, CPU per call of the target")
    for key in ("linkrtc", "sipp_uas", "bare_twisted"):
        best = results[key]["best"]
        if best:
            print(f"  {key:13s} {best['rate']:6d} calls/s  {best['cpu_ms_per_call']:.3f} ms CPU/call "
                  f"(achieved {best['achieved']:.0f}/s)")
        else:
            print(f"  {key:13s} failed at the lowest rate")
    for key, rate in (("pdd_half", halfRate), ("pdd", pddRate)):
        ours, ceiling = results["linkrtc"][key]["pdd_ms"], results["sipp_uas"][key]["pdd_ms"]
        if ours["p95"] is not None and ceiling["p95"] is not None:
            print(f"  post-dial delay p95 at {rate}/s ({rate / maxRate:.0%}): linkrtc "
                  f"{ours['p95']:.1f} ms, sipp-uas {ceiling['p95']:.1f} ms (ratio "
                  f"{ours['p95'] / max(ceiling['p95'], 1.0):.1f}, the ceiling counted as at "
                  f"least SIPp's 1 ms step)")
    bestOurs, bestBare = results["linkrtc"]["best"], results["bare_twisted"]["best"]
    if bestOurs and bestBare:
        print(f"  CPU per call, linkrtc / bare Twisted: "
              f"{bestOurs['cpu_ms_per_call'] / max(bestBare['cpu_ms_per_call'], 1e-6):.1f}; "
              f"calls/s per core at that cost: {1000 / bestOurs['cpu_ms_per_call']:.0f} "
              f"(goal 4500)")
    os.makedirs(os.path.join(HERE, "results"), exist_ok=True)
    with open(os.path.join(HERE, "results", "cps.json"), "w") as f:
        json.dump(results, f, indent=1)
    print("written to bench/results/cps.json")


if __name__ == "__main__":
    main()
