"""
Bridged call set-ups per second with ICE + DTLS-SRTP: N calls placed at a
rising offered rate into ``twistd -n linkrtc --media bridge``, each
answered by an aiortc ``RTCPeerConnection`` in another process (the
``client`` role of bench/media.py) that completes ICE and the DTLS
handshake with LinkRTC; the SIP side is bench/media.py's ``gen`` (INVITE,
ACK, RTP, BYE over UDP). A call counts as set up when its peer connection
is ``connected`` and the SIP side has its 200 OK.

For each offered rate it prints the achieved set-ups per second (N over
the seconds from the first INVITE to the last call up), LinkRTC's CPU per
set-up (milliseconds, /proc/PID/stat; the media of the calls already up
during the set-ups, measured right after them, taken out) and what one
core would sustain at that cost, and, as the ceiling of the same run, the
CPU per set-up of the aiortc client process: the other half of the same
ICE + DTLS handshakes, with no SIP and no bridge. It writes
bench/results/setups.json.

    python bench/setups.py [--calls 100] [--rates 50,100,150,200] [--profile]

Everything is on 127.0.0.1; each step starts a fresh LinkRTC and is
bounded by a set-up timeout; the whole run by ``--budget`` seconds.
"""

import argparse
import json
import os
import platform
import sys
import time

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(HERE)
sys.path.insert(0, ROOT)

import flame  # noqa: E402
import media  # noqa: E402

from linkrtc.test.e2e.harness import LinkRTCProcess  # noqa: E402

#: The goal of issue 15: bridged set-ups per second on one core.
GOAL_PER_CORE = 150


def rssBytes(pid):
    """@return: the resident set size of process C{pid} in bytes (/proc/PID/status)."""
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) * 1024
    return 0


def startLinkRTC():
    """@return: a started bridge-mode LinkRTC with no admission limits."""
    return LinkRTCProcess("--media", "bridge", "--ice-address", "127.0.0.1",
                          "--media-timeout", "3600", "--ring-timeout", "60",
                          "--max-calls", "0", "--max-ringing-per-client", "0").start(timeout=20)


def stopLinkRTC(linkrtc):
    """Stop C{linkrtc}; a drain slower than 30 s on a loaded machine ends in a kill, not an error."""
    try:
        linkrtc.stop(timeout=30)
    except AssertionError as e:
        print(f"  note: {e} within 30 s (killed)", flush=True)


def holdCalls(linkrtc, n, cps, codec="pcmu", settle=0.0, profile=None):
    """
    Set up C{n} bridged calls at C{cps} offered set-ups per second, hold
    them C{settle} seconds, measure, then hang them up. With C{profile}
    (a name), LinkRTC is recorded with py-spy during the set-ups
    (bench/flame.py).

    @return: C{dict}: calls, cps, error (when they did not all come up),
        setupSeconds, achievedCps, rawCpuMsPerSetup (LinkRTC's CPU from the
        first INVITE to the last call up, per call), mediaCpuMsPerCallSecond
        (its CPU per call-second with all the calls up, after the set-ups),
        cpuMsPerSetup and clientCpuMsPerSetup (LinkRTC's and the aiortc
        client's set-up CPU per call, the media of the calls already up
        taken out), rssBefore/rssUp and clientRssBefore/clientRssUp (bytes).
    """
    row = {"calls": n, "cps": cps}
    client = media.Child("client", "--url", f"ws://127.0.0.1:{linkrtc.httpPort}/ws",
                         "--codec", codec, "--calls", str(n), "--lifetime", str(n / cps + 90))
    gen = None
    pid = linkrtc.process.pid
    try:
        if client.waitFor(("registered",), 20) is None:
            row["error"] = "client did not register: " + "".join(client.stderr[-5:])
            return row
        row.update(rssBefore=rssBytes(pid), clientRssBefore=rssBytes(client.pid))
        cpu0, clientCpu0 = media.cpuSeconds(pid), media.cpuSeconds(client.pid)
        t0 = time.monotonic()
        gen = media.Child("gen", "--target", str(linkrtc.sipPort), "--calls", str(n),
                          "--cps", str(cps), "--setup-timeout", str(n / cps + 60))
        spy = flame.start(pid, n / cps + 2, profile) if profile else None
        ups = [c.waitFor(("up", "setup-failed"), n / cps + 65) for c in (gen, client)]
        elapsed = time.monotonic() - t0
        flame.finish(spy, profile)
        cpu, clientCpu = media.cpuSeconds(pid) - cpu0, media.cpuSeconds(client.pid) - clientCpu0
        if any(u is None or u.get("type") != "up" or u.get("failed") for u in ups):
            row["error"] = "calls not set up: " + json.dumps(ups)
            return row
        # The calls already up carry media while the others set up: measure
        # that per call-second with all N up, and take out the share of the
        # set-up window (calls coming up evenly: N * elapsed / 2 call-seconds).
        hold = max(settle, 1.0)
        cpu1, clientCpu1 = media.cpuSeconds(pid), media.cpuSeconds(client.pid)
        time.sleep(hold)
        media1 = (media.cpuSeconds(pid) - cpu1) / (n * hold)
        clientMedia1 = (media.cpuSeconds(client.pid) - clientCpu1) / (n * hold)
        upCallSeconds = n * elapsed / 2
        if media1 * upCallSeconds > cpu / 2:
            # set-ups far slower than offered (a stalled machine): the even
            # ramp assumed above no longer holds, so report the raw figure
            row["note"] = "set-ups stalled: media share not taken out"
            media1 = clientMedia1 = 0.0
        row.update(
            setupSeconds=round(elapsed, 3),
            achievedCps=round(n / elapsed, 1),
            rawCpuMsPerSetup=round(1000 * cpu / n, 3),
            mediaCpuMsPerCallSecond=round(1000 * media1, 3),
            cpuMsPerSetup=round(1000 * max(0.0, cpu - media1 * upCallSeconds) / n, 3),
            clientCpuMsPerSetup=round(
                1000 * max(0.0, clientCpu - clientMedia1 * upCallSeconds) / n, 3),
            rssUp=rssBytes(pid),
            clientRssUp=rssBytes(client.pid),
        )
        return row
    finally:
        now = time.monotonic()
        for c in (gen, client):
            if c is not None:
                c.tell({"window": [now, now + 0.2], "stop": now + 0.3})
        if gen is not None:
            gen.waitFor(("result", "setup-failed"), 8)
            gen.stop()
        client.stop()
        media.waitIdle(linkrtc, n)


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--calls", type=int, default=100, help="calls per step")
    parser.add_argument("--rates", type=media.ladder, default=media.ladder("50,100,150,200"),
                        help="offered set-ups per second, one step each")
    parser.add_argument("--budget", type=float, default=240.0, help="seconds for the whole run")
    parser.add_argument("--profile", action="store_true",
                        help="record LinkRTC with py-spy during the first step's set-ups")
    options = parser.parse_args()
    started = time.monotonic()
    rows = []
    for cps in options.rates:
        if time.monotonic() + options.calls / cps + 30 > started + options.budget:
            print(f"  offered {cps}/s: skipped (time budget)", flush=True)
            break
        linkrtc = startLinkRTC()
        try:
            row = holdCalls(linkrtc, options.calls, cps,
                            profile="setups" if options.profile and not rows else None)
        finally:
            stopLinkRTC(linkrtc)
        rows.append(row)
        if "error" in row:
            print(f"  offered {cps:4d}/s: ERROR {row['error'][:300]}", flush=True)
            break
        row["perCore"] = round(1000 / row["cpuMsPerSetup"], 1) if row["cpuMsPerSetup"] else None
        row["ratioToClient"] = round(row["cpuMsPerSetup"] / max(row["clientCpuMsPerSetup"], 1e-6),
                                     2)
        print(f"  offered {cps:4d}/s: {row['calls']} up in {row['setupSeconds']:.2f} s = "
              f"{row['achievedCps']:6.1f}/s; LinkRTC {row['cpuMsPerSetup']:.2f} ms CPU/set-up "
              f"({row['perCore']}/s per core, goal {GOAL_PER_CORE}); aiortc client "
              f"{row['clientCpuMsPerSetup']:.2f} ms (ceiling), ratio {row['ratioToClient']}",
              flush=True)
    good = [r for r in rows if "error" not in r]
    best = max(good, key=lambda r: r["achievedCps"]) if good else None
    if best:
        print(f"\nbest: {best['achievedCps']}/s achieved (offered {best['cps']}/s), "
              f"{best['cpuMsPerSetup']} ms CPU per set-up = {best['perCore']}/s per core; "
              f"ratio to the aiortc peer's CPU per set-up: {best['ratioToClient']}")
    writeResult("setups", {"calls": options.calls, "rates": options.rates}, rows, best=best)


def writeResult(name, settings, rows, **figures):
    """Write bench/results/NAME.json: the run's settings, rows and C{figures}."""
    result = {
        "benchmark": name,
        "time": time.strftime("%Y-%m-%dT%H:%M:%S"),
        "machine": {"python": platform.python_version(), "cpus": os.cpu_count()},
        "settings": settings,
        "rows": rows,
        **figures,
        "command": " ".join(["python", f"bench/{name}.py"] + sys.argv[1:]),
    }
    os.makedirs(os.path.join(HERE, "results"), exist_ok=True)
    with open(os.path.join(HERE, "results", f"{name}.json"), "w") as f:
        json.dump(result, f, indent=1)
    print(f"written to bench/results/{name}.json")


if __name__ == "__main__":
    main()
