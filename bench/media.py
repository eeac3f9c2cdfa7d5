"""
Media bridge capacity: N concurrent calls through ``twistd -n linkrtc
--media bridge``, for PCMU<->PCMU (packet relay), PCMA<->PCMA (packet
relay, mode ``pcma``) and Opus<->PCMU (transcoding), and a bare Twisted UDP relay carrying the same packet rate
(the ceiling).

Three processes besides LinkRTC, the roles of bench/mediaload.py:
  - ``gen``: the SIP side, one Python process: a minimal UAC (INVITE, ACK,
    BYE over UDP) and an RTP generator sending 20 ms PCMU packets for every
    call from one UDP socket (LinkRTC latches each call to it), spread over
    4 phases of 5 ms, and counting what comes back;
  - ``client``: the WebRTC side, one asyncio process (uvloop when
    installed) with N aiortc ``RTCPeerConnection``s answering LinkRTC's
    offers over the WebSocket; it sends 20 ms packets (PCMU, or a real
    Opus frame) and counts the decrypted ones without encoding or
    decoding audio, on libsrtp's contexts and the nominated pair's socket
    as LinkRTC's relay does (``--client-seam``: through
    ``RTCDtlsTransport._send_rtp`` and ``_handle_rtp_data``, a coroutine
    per packet and more CPU);
  - ``bare``: N pairs of Twisted UDP ports (asyncio reactor) that latch and
    forward, the same 200 packet operations per call-second as LinkRTC.

In relay mode each payload carries its send time (CLOCK_MONOTONIC, shared
by every process on the machine), so the receiver measures the one-way
latency added by what is in between; a frame is on time when it arrives
within ``--deadline-ms``. Transcoded payloads are rewritten, so there a
frame counts as delivered when it arrives in the measurement window
(shifted by 100 ms); no latency is measured.

For each N (a rising ladder, stopping at the first failure) the run
measures, over a window after a warm-up: frames sent and delivered on time
in each direction, LinkRTC's CPU (user+system, /proc/PID/stat) in
milliseconds per call-second, the load generator's CPU share (if one of
its processes is near a full core, it may be the limit, and the report
says so), and p50/p99 added latency. It prints the largest N with at
least 99.9 % of frames on time in both directions and writes
bench/results/media.json.

    python bench/media.py [--relay 25,50,100,150,200] [--pcma 50,100,200] [--transcode 5,10,20,30] [--profile]

The summary gives each LinkRTC mode's CPU per call-second as a ratio to
the bare relay's of the same run (``cpuRatioToBare``). ``--profile``
records LinkRTC with py-spy during each window (bench/flame.py;
bench/results/media-relay*, media-transcode*).


Everything is on 127.0.0.1; when run as root the whole run happens in a
new network namespace with only loopback (``unshare --net``;
``--no-netns`` to stay in the current one). Each step is bounded (setup
timeout, a few seconds of media), the whole run by ``--budget`` seconds.
"""


import argparse
import json
import os
import platform
import signal
import subprocess
import sys
import threading
import time

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(HERE)
sys.path.insert(0, ROOT)
sys.path.insert(0, HERE)

from mediaload import G711, PHASES, PTIME  # noqa: E402

TICK = os.sysconf("SC_CLK_TCK")
DELIVERY_GOAL = 0.999
#: The load generators' script (bench/mediaload.py), run by L{Child}.
LOAD = os.path.join(HERE, "mediaload.py")

def cpuSeconds(pid):
    """@return: user+system CPU seconds of process C{pid} (all its threads)."""
    with open(f"/proc/{pid}/stat") as f:
        fields = f.read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / TICK


def machineBusySeconds():
    """@return: CPU seconds all processes on the machine spent busy (from /proc/stat)."""
    with open("/proc/stat") as f:
        fields = [int(x) for x in f.readline().split()[1:]]
    idle = fields[3] + (fields[4] if len(fields) > 4 else 0)
    return (sum(fields[:8]) - idle) / TICK




# -- the orchestrator ------------------------------------------------------------

class Child:
    """A role of this script in a subprocess, its JSON lines collected."""

    def __init__(self, *args):
        self.process = subprocess.Popen(
            [sys.executable, LOAD, *args], cwd=ROOT,
            stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        self.lines = []
        self.cond = threading.Condition()
        threading.Thread(target=self._read, daemon=True).start()
        self.stderr = []
        threading.Thread(target=self._readErr, daemon=True).start()

    def _read(self):
        for line in self.process.stdout:
            try:
                message = json.loads(line)
            except ValueError:
                continue
            with self.cond:
                self.lines.append(message)
                self.cond.notify_all()

    def _readErr(self):
        for line in self.process.stderr:
            self.stderr.append(line)

    def waitFor(self, kinds, timeout):
        """@return: the first message whose type is in C{kinds}, or C{None} after C{timeout} s."""
        deadline = time.monotonic() + timeout
        with self.cond:
            while True:
                for m in self.lines:
                    if m.get("type") in kinds:
                        return m
                remaining = deadline - time.monotonic()
                if remaining <= 0:
                    return None
                if self.process.poll() is not None:
                    remaining = min(remaining, 0.3)  # let the reader thread finish
                    deadline = min(deadline, time.monotonic() + 0.3)
                self.cond.wait(min(remaining, 0.5))

    def tell(self, message):
        try:
            self.process.stdin.write(json.dumps(message) + "\n")
            self.process.stdin.flush()
        except OSError:
            pass

    def stop(self):
        if self.process.poll() is None:
            self.process.kill()
        self.process.wait(5)

    @property
    def pid(self):
        return self.process.pid


def measureStep(target, n, mode, args, children, generator, serverPid):
    """
    Wait for the calls, run the window, collect results.

    @param target: C{"linkrtc"} or C{"bare"} (names the server measured).
    @param children: the load generator's processes (L{Child}).
    @param generator: the L{Child} of the SIP side.
    @param serverPid: the process whose CPU is measured.
    """
    t0 = time.monotonic()
    cpu0 = cpuSeconds(serverPid)
    setupTimeout = n / args.cps + 10
    ups = [c.waitFor(("up", "setup-failed"), setupTimeout) for c in children]
    row = {"target": target, "mode": mode, "calls": n}
    if any(u is None or u.get("type") != "up" or u.get("failed") for u in ups):
        row["error"] = "calls not set up: " + json.dumps(ups) + " " + "".join(
            "".join(c.stderr[-5:]) for c in children)[-1500:]
        return row
    setupSeconds = time.monotonic() - t0
    setupCpu = cpuSeconds(serverPid) - cpu0
    ws = time.monotonic() + args.warmup
    we = ws + args.window
    stop = we + 0.3
    for c in children:
        c.tell({"window": [ws, we], "stop": stop})
    time.sleep(max(0.0, ws - time.monotonic()))
    spy = None
    if getattr(args, "profile", False) and target == "linkrtc":
        import flame

        spy = flame.start(serverPid, args.window, f"media-{mode}")
    cpus = [cpuSeconds(serverPid)] + [cpuSeconds(c.pid) for c in children]
    busy = machineBusySeconds()
    time.sleep(max(0.0, we - time.monotonic()))
    cpus2 = [cpuSeconds(serverPid)] + [cpuSeconds(c.pid) for c in children]
    busy = machineBusySeconds() - busy
    results = [c.waitFor(("result",), 15) for c in children]
    if spy is not None:
        flame.finish(spy, f"media-{mode}")
    if any(r is None for r in results):
        row["error"] = "no result from the load generator: " + "".join(
            "".join(c.stderr[-5:]) for c in children)[-1500:]
        return row
    elapsed = we - ws
    serverCpu = cpus2[0] - cpus[0]
    row.update(
        setupSeconds=round(setupSeconds, 2),
        setupCpuMsPerCall=round(1000 * setupCpu / n, 2) if target == "linkrtc" else None,
        windowSeconds=round(elapsed, 2),
        cpuMsPerCallSecond=round(1000 * serverCpu / (n * elapsed), 3),
        serverCpuShare=round(serverCpu / elapsed, 3),
        loadGenCpuShare=[round((b - a) / elapsed, 3) for a, b in zip(cpus[1:], cpus2[1:])],
        # CPU used on the machine by processes that are not part of this step
        # (other work on a shared box perturbs the figures).
        otherCpuShare=round(max(0.0, busy - sum(b - a for a, b in zip(cpus, cpus2))) / elapsed, 3),
    )
    if target == "bare":
        # Each generator packet goes out on one leg and comes back on the other.
        [g] = results
        sent, got = g["sent"], g["received"]
        row["directions"] = {"both": {"sent": sent, "onTime": got, "late": g["late"],
                                      "p50ms": g["p50ms"], "p99ms": g["p99ms"],
                                      "maxms": g["maxms"], "senderMaxLagMs": g["maxLagMs"]}}
    else:
        g, c = results[0], results[1]

        def direction(sender, receiver):
            return {"sent": sender["sent"], "onTime": receiver["received"],
                    "late": receiver["late"], "p50ms": receiver["p50ms"],
                    "p99ms": receiver["p99ms"], "maxms": receiver["maxms"],
                    "seqSpan": receiver["seqSpan"], "senderMaxLagMs": sender["maxLagMs"]}

        # SIP -> WebRTC: sent by the generator, received by the client; and back.
        row["directions"] = {"sip->webrtc": direction(g, c), "webrtc->sip": direction(c, g)}
    worst, ok = 1.0, True
    for d in row["directions"].values():
        if d.get("seqSpan") is None:  # stamped: on time / sent
            d["delivery"] = round(d["onTime"] / d["sent"], 5) if d["sent"] else 0.0
        else:
            # Transcoded: LinkRTC makes the packets, so count them against the
            # sequence numbers they span (losses) and against 50 per call-second
            # (a backlog makes fewer arrive in the window).
            d["delivery"] = round(d["onTime"] / d["seqSpan"], 5) if d["seqSpan"] else 0.0
            d["rateRatio"] = round(d["onTime"] / (n * elapsed / PTIME), 4)
            ok = ok and d["rateRatio"] >= 0.99
        worst = min(worst, d["delivery"])
    row["delivery"] = worst
    row["pass"] = ok and worst >= DELIVERY_GOAL
    # The generator is the limit when one of its processes is near a full core
    # or more than 1 % of its 5 ms send slots ran over 20 ms late.
    slots = elapsed / PTIME * PHASES
    row["loadGenLaggedSlots"] = [r.get("laggedSlots", 0) for r in results]
    row["loadGenSaturated"] = max(row["loadGenCpuShare"]) >= 0.85 or any(
        lagged > 0.01 * slots for lagged in row["loadGenLaggedSlots"])
    row["serverSaturated"] = row["serverCpuShare"] >= 0.9
    return row


def runLinkRTCStep(linkrtc, n, mode, args):
    codec = {"relay": "pcmu", "pcma": "pcma"}.get(mode, "opus")
    client = Child("client", "--url", f"ws://127.0.0.1:{linkrtc.httpPort}/ws",
                   "--codec", codec, "--calls", str(n), "--deadline-ms", str(args.deadline_ms),
                   "--lifetime", str(n / args.cps + 40),
                   *(["--seam"] if args.client_seam else []))
    gen = None
    try:
        if client.waitFor(("registered",), 15) is None:
            return {"target": "linkrtc", "mode": mode, "calls": n,
                    "error": "client did not register: " + "".join(client.stderr[-10:])}
        gen = Child("gen", "--target", str(linkrtc.sipPort), "--calls", str(n),
                    "--cps", str(args.cps), "--setup-timeout", str(n / args.cps + 10),
                    "--deadline-ms", str(args.deadline_ms),
                    "--codec", codec if codec in G711 else "pcmu",
                    *(["--stamped"] if codec != "opus" else []))
        return measureStep("linkrtc", n, mode, args, [gen, client], gen, linkrtc.process.pid)
    finally:
        if gen is not None:
            gen.waitFor(("result", "setup-failed"), 1)
            deadline = time.monotonic() + 5
            while gen.process.poll() is None and time.monotonic() < deadline:
                time.sleep(0.1)
            gen.stop()
        client.stop()
        waitIdle(linkrtc, n)


def waitIdle(linkrtc, n, timeout=10):
    """Give LinkRTC time to close the calls (its CPU settles) before the next step."""
    deadline = time.monotonic() + timeout
    last = cpuSeconds(linkrtc.process.pid)
    while time.monotonic() < deadline:
        time.sleep(0.5)
        now = cpuSeconds(linkrtc.process.pid)
        if now - last < 0.05:
            return
        last = now


def runBareStep(n, args):
    bare = Child("bare", "--calls", str(n), "--lifetime", "60")
    gen = None
    try:
        ports = bare.waitFor(("ports",), 15)
        if ports is None:
            return {"target": "bare", "calls": n, "error": "".join(bare.stderr[-10:])}
        gen = Child("gen", "--mode", "bare", "--pairs", ports["pairs"], "--stamped",
                    "--deadline-ms", str(args.deadline_ms))
        gen.waitFor(("started",), 10)
        gen.lines.append({"type": "up"})
        return measureStep("bare", n, "relay", args, [gen], gen, bare.pid)
    finally:
        if gen is not None:
            gen.waitFor(("result",), 5)
            gen.stop()
        bare.stop()


def summarise(rows, target, mode):
    mine = [r for r in rows if r["target"] == target and r["mode"] == mode]
    passed = [r for r in mine if r.get("pass")]
    best = max(passed, key=lambda r: r["calls"]) if passed else None
    failed = [r for r in mine if not r.get("pass")]
    first = min(failed, key=lambda r: r["calls"]) if failed else None
    summary = {"target": target, "mode": mode, "maxCalls": best["calls"] if best else 0,
               "firstFailingCalls": first["calls"] if first else None}
    if best:
        summary.update(
            cpuMsPerCallSecond=best["cpuMsPerCallSecond"],
            serverCpuShare=best["serverCpuShare"],
            p99ms={k: d["p99ms"] for k, d in best["directions"].items()},
            delivery=best["delivery"],
            loadGenCpuShare=best["loadGenCpuShare"],
            otherCpuShare=best["otherCpuShare"],
        )
    if first is not None:
        if "error" in first:
            why = "error: " + first["error"][:200]
        else:
            rates = [d["rateRatio"] for d in first["directions"].values() if "rateRatio" in d]
            why = "delivery %.4f%s, server CPU %.2f core, load generator CPU %s" % (
                first["delivery"], ", rate %.4f" % min(rates) if rates else "",
                first["serverCpuShare"], first["loadGenCpuShare"])
            why += ", other processes %.2f core" % first["otherCpuShare"]
            if first.get("loadGenSaturated"):
                why = "load generator saturated first (" + why + ")"
            elif first.get("serverSaturated"):
                why = "server CPU saturated (" + why + ")"
            else:
                why = "server (" + why + ")"
        summary["limitedBy"] = why
    return summary


def orchestrate(args):
    from linkrtc.test.e2e.harness import LinkRTCProcess

    started = time.monotonic()
    budget = started + args.budget
    rows = []
    linkrtc = LinkRTCProcess("--media", "bridge", "--ice-address", "127.0.0.1",
                             "--media-timeout", "3600", "--ring-timeout", "60",
                             "--max-calls", "0", "--max-ringing-per-client", "0")
    linkrtc.start(timeout=20)
    try:
        for mode, ladder in (("relay", args.relay), ("pcma", args.pcma),
                             ("transcode", args.transcode)):
            for n in ladder:
                if time.monotonic() + n / args.cps + 25 > budget:
                    print(f"  {mode} N={n}: skipped (time budget)", flush=True)
                    break
                row = runLinkRTCStep(linkrtc, n, mode, args)
                rows.append(row)
                report(row)
                if not row.get("pass"):
                    break
        if linkrtc.logText().count("Traceback"):
            print("  note: LinkRTC's log holds tracebacks: " + linkrtc.log, flush=True)
    finally:
        linkrtc.stop()
    for n in args.bare:
        if time.monotonic() + 20 > budget:
            print(f"  bare N={n}: skipped (time budget)", flush=True)
            break
        row = runBareStep(n, args)
        rows.append(row)
        report(row)
    summaries = [summarise(rows, "linkrtc", "relay"), summarise(rows, "linkrtc", "pcma"),
                 summarise(rows, "linkrtc", "transcode"), summarise(rows, "bare", "relay")]
    ceiling = summaries[-1].get("cpuMsPerCallSecond")
    for s in summaries[:-1]:
        if ceiling and s.get("cpuMsPerCallSecond") is not None:
            s["cpuRatioToBare"] = round(s["cpuMsPerCallSecond"] / ceiling, 2)
    print("\nlargest N with >= 99.9 % of frames on time (both directions):")
    for s in summaries:
        print("  %-8s %-9s N=%-4s cpu %s ms/call-s (x%s bare), p99 %s, limited by: %s" % (
            s["target"], s["mode"], s["maxCalls"], s.get("cpuMsPerCallSecond"),
            s.get("cpuRatioToBare", "1" if s["target"] == "bare" else "?"),
            s.get("p99ms"), s.get("limitedBy", "not reached (ladder ended)")))
    result = {
        "benchmark": "media",
        "time": time.strftime("%Y-%m-%dT%H:%M:%S"),
        "machine": {"python": platform.python_version(), "cpus": os.cpu_count(),
                    "machine": platform.machine()},
        "settings": {"window": args.window, "warmup": args.warmup, "cps": args.cps,
                     "deadlineMs": args.deadline_ms, "goal": DELIVERY_GOAL,
                     "netns": os.environ.get("LINKRTC_BENCH_NETNS") == "1"},
        "summary": summaries,
        "steps": rows,
        "seconds": round(time.monotonic() - started, 1),
        "command": " ".join(["python", "bench/media.py"] + sys.argv[1:]),
    }
    os.makedirs(os.path.join(HERE, "results"), exist_ok=True)
    path = os.path.join(HERE, "results", "media.json")
    with open(path, "w") as f:
        json.dump(result, f, indent=2)
    print(f"wrote {path} ({result['seconds']} s)")


def report(row):
    if "error" in row:
        print(f"  {row['target']:8} {row['mode']:9} N={row['calls']:<4} ERROR {row['error'][:300]}",
              flush=True)
        return
    dirs = "  ".join(
        f"{k}: {d['delivery']:.4f} p99 {d['p99ms']} ms" for k, d in row["directions"].items())
    print(f"  {row['target']:8} {row['mode']:9} N={row['calls']:<4} "
          f"cpu {row['cpuMsPerCallSecond']:6.2f} ms/call-s (server {row['serverCpuShare']:.2f} "
          f"core, load gen {row['loadGenCpuShare']}, other {row['otherCpuShare']})  {dirs}  "
          f"{'PASS' if row['pass'] else 'FAIL'}"
          f"{' (load gen saturated)' if row['loadGenSaturated'] else ''}"
          f"{' (server saturated)' if row['serverSaturated'] else ''}",
          flush=True)


def ladder(text):
    return [int(x) for x in text.split(",") if x.strip()]


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    sub = parser.add_subparsers(dest="role")
    run = sub.add_parser("run")
    for p in (parser, run):
        p.add_argument("--relay", type=ladder, default=ladder("25,50,100,150,175,200"))
        p.add_argument("--pcma", type=ladder, default=ladder("50,100,200"),
                       help="PCMA<->PCMA relay ladder")
        p.add_argument("--transcode", type=ladder, default=ladder("5,10,20,25,30"))
        p.add_argument("--bare", type=ladder, default=ladder("50,100,200,400"))
        p.add_argument("--window", type=float, default=4.0, help="seconds measured")
        p.add_argument("--warmup", type=float, default=1.5, help="seconds")
        p.add_argument("--cps", type=float, default=40.0, help="call set-ups per second")
        p.add_argument("--deadline-ms", type=float, default=100.0,
                       help="one-way added latency beyond which a frame is late")
        p.add_argument("--budget", type=float, default=290.0, help="seconds for the whole run")
        p.add_argument("--no-netns", action="store_true")
        p.add_argument("--profile", action="store_true",
                       help="record LinkRTC with py-spy in each window (bench/flame.py)")
        p.add_argument("--client-seam", action="store_true",
                       help="the WebRTC-side load generator sends and counts through aiortc's "
                       "_send_rtp/_handle_rtp_data, as before its fast path (costs it more CPU)")
    args = parser.parse_args()

    if (not args.no_netns and os.environ.get("LINKRTC_BENCH_NETNS") != "1"
            and os.geteuid() == 0
            and subprocess.run(["unshare", "--net", "true"], capture_output=True).returncode == 0):
        env = dict(os.environ, LINKRTC_BENCH_NETNS="1")
        process = subprocess.Popen(
            ["unshare", "--net", "sh", "-c", 'ip link set lo up && exec "$@"', "sh",
             sys.executable, os.path.abspath(__file__), *sys.argv[1:]], env=env)
        try:
            sys.exit(process.wait(args.budget + 60))
        except subprocess.TimeoutExpired:
            process.send_signal(signal.SIGTERM)
            process.wait(10)
            sys.exit("the benchmark ran over its budget")
    print(f"media bench: relay {args.relay}, pcma {args.pcma}, transcode {args.transcode}, "
          f"bare {args.bare}; "
          f"window {args.window} s after {args.warmup} s warm-up; in a network namespace: "
          f"{os.environ.get('LINKRTC_BENCH_NETNS') == '1'}", flush=True)
    orchestrate(args)


if __name__ == "__main__":
    main()
