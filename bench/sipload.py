"""
The SIPp load loop shared by the SIP benches (bench/cps.py,
bench/cluster.py): run SIPp at a rate for some seconds, read its
statistics, and sweep rising rates while metering the CPU time of the
processes under test from /proc.

  - L{cpuSeconds}: user+system CPU seconds of a process (all its threads).
  - L{runSIPp}: one or several SIPp clients at once (one per service),
    with their own CPU time (C{sipp_cpu_s}, from C{getrusage} of the
    reaped children).
  - L{sweep}: rates in order until one is not reached; each row carries
    C{NAME_cpu_ms_per_call} for every meter (CPU milliseconds per
    successful call).

Everything goes to 127.0.0.1 and stops by itself (SIPp's C{-m} and
C{-timeout}).
"""

import os
import re
import resource
import subprocess
import sys
import tempfile
import time

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(HERE)
if ROOT not in sys.path:
    sys.path.insert(0, ROOT)

from linkrtc.test.e2e.harness import SCENARIOS, freePort  # noqa: E402

__all__ = ["TICK", "cpuSeconds", "pin", "runSIPp", "sweep"]

TICK = os.sysconf("SC_CLK_TCK")


def cpuSeconds(pid):
    """
    @return: CPU seconds of process C{pid}, C{float}: the scheduler's run
        time of each of its live threads (C{/proc/PID/task/TID/schedstat},
        nanoseconds), or, without schedstat, user+system time from
        C{/proc/PID/stat} (clock-tick steps, 10 ms: too coarse for a cheap
        process over a short run).
    """
    try:
        total = 0
        for tid in os.listdir(f"/proc/{pid}/task"):
            try:
                with open(f"/proc/{pid}/task/{tid}/schedstat") as f:
                    total += int(f.read().split()[0])
            except FileNotFoundError:
                continue  # the thread ended meanwhile
        return total / 1e9
    except FileNotFoundError:
        with open(f"/proc/{pid}/stat") as f:
            fields = f.read().rsplit(")", 1)[1].split()
        return (int(fields[11]) + int(fields[12])) / TICK


def pin(pid, cpus):
    """
    Restrict every thread of process C{pid} to the CPUs C{cpus} (a set of
    core numbers; C{None} does nothing). Threads started later inherit it.
    """
    if cpus is None:
        return
    for tid in os.listdir(f"/proc/{pid}/task"):
        try:
            os.sched_setaffinity(int(tid), cpus)
        except (OSError, ValueError):
            pass  # the thread ended meanwhile


def _childrenCPUSeconds():
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return usage.ru_utime + usage.ru_stime


def _sippArgs(target, rate, calls, seconds, scenario, service, scratch, timed, direct):
    args = ["sipp", f"127.0.0.1:{target}", "-i", "127.0.0.1", "-p", str(freePort()),
            "-r", str(rate), "-m", str(calls), "-nostdin", "-l", str(max(rate * 4, 100)),
            "-timeout", f"{int(seconds) + 30}s", "-max_recv_loops", "10000",
            "-buff_size", str(4 * 1024 * 1024), "-trace_stat", "-fd", "1", "-trace_err",
            "-error_file", os.path.join(scratch, "errors.log")]
    if service:
        args += ["-s", service]
    if scenario == "uac":
        return args + ["-sn", "uac", "-d", "0"]
    path = scenario if os.path.isabs(scenario) else os.path.join(SCENARIOS, scenario)
    if direct:
        path = directScenario(path, scratch)
    if timed:
        path = timedScenario(path, scratch)
        args += ["-trace_rtt", "-rtt_freq", "1"]
    return args + ["-sf", path, "-d", "0", "-mi", "127.0.0.1", "-mp", str(freePort())]


def timedScenario(source, scratch):
    """
    Write into C{scratch} a copy of SIPp scenario C{source} that times each
    call: response-time 1 from the INVITE to the 180 Ringing.

    @return: the path of the copy.
    """
    with open(source) as f:
        text = f.read()
    text = text.replace('<send retrans="500">', '<send retrans="500" start_rtd="1">', 1)
    text = text.replace('<recv response="180" optional="true"/>',
                        '<recv response="180" optional="true" rtd="1"/>', 1)
    path = os.path.join(scratch, "timed.xml")
    with open(path, "w") as f:
        f.write(text)
    return path


#: SIPp actions sending the rest of a call (ACK, BYE) to the Contact of the
#: 200 instead of the address the INVITE went to.
_TO_CONTACT = """
  <nop>
    <action>
      <assignstr assign_to="contact" value="[next_url]"/>
      <ereg regexp="([0-9.]+):([0-9]+)" search_in="var" variable="contact" check_it="true"
            assign_to="whole,host,port"/>
      <setdest host="[$host]" port="[$port]" protocol="udp"/>
    </action>
  </nop>
  <Reference variables="whole"/>"""


def directScenario(source, scratch):
    """
    Write into C{scratch} a copy of SIPp scenario C{source} whose in-dialog
    requests go straight to the answering node (the Contact of the 200), as
    a caller's do behind a Kamailio that does not Record-Route
    (etc/kamailio/kamailio.cfg): Kamailio then carries only the INVITE
    transaction, as in production.

    @return: the path of the copy.
    """
    with open(source) as f:
        text = f.read()
    start = text.index('<recv response="200" rrs="true">')
    end = text.index("</recv>", start) + len("</recv>")
    path = os.path.join(scratch, "direct.xml")
    with open(path, "w") as f:
        f.write(text[:end] + _TO_CONTACT + text[end:])
    return path


def readResponseTimes(scratch):
    """
    @return: C{{rtd: [milliseconds]}} from SIPp's C{-trace_rtt} files in
        C{scratch} (lines C{date_ms;response_time_ms;rtd_no}).
    """
    times = {}
    for name in os.listdir(scratch):
        if not name.endswith("_rtt.csv"):
            continue
        with open(os.path.join(scratch, name)) as f:
            for line in f:
                fields = line.strip().split(";")
                if len(fields) >= 3 and fields[2].strip().isdigit():
                    try:
                        times.setdefault(int(fields[2]), []).append(float(fields[1]))
                    except ValueError:
                        pass
    return times


def percentile(values, p):
    """@return: the C{p}-th percentile (nearest rank) of C{values}, or C{None}."""
    if not values:
        return None
    values = sorted(values)
    return values[min(len(values) - 1, max(0, round(p / 100 * len(values)) - 1))]


def _report(process, calls, scratch, seconds):
    """Wait for one SIPp; @return: (successful, failed, rtt dict)."""
    try:
        text, _ = process.communicate(timeout=seconds + 60)
    except subprocess.TimeoutExpired:
        process.kill()
        text, _ = process.communicate()
    ok = re.findall(r"Successful call\s*\|\s*\d+\s*\|\s*(\d+)", text)
    bad = re.findall(r"Failed call\s*\|\s*\d+\s*\|\s*(\d+)", text)
    good = int(ok[-1]) if ok else 0
    failed = int(bad[-1]) if bad else calls - good
    if not good:
        print(f"  SIPp completed no call (exit {process.returncode}):\n{text[-1500:]}",
              flush=True)
    if failed:
        try:
            with open(os.path.join(scratch, "errors.log"), errors="replace") as f:
                print(f"  SIPp errors:\n{f.read()[:1500]}", flush=True)
        except OSError:
            pass
    return good, failed


def runSIPp(target, rate, seconds, scenario, services=(None,), timed=False, cpus=None,
            direct=False):
    """
    Run one SIPp per entry of C{services}, all at once, each at
    C{rate / len(services)} calls/s for C{seconds}, to UDP port C{target}
    of 127.0.0.1.

    @param scenario: C{"uac"} (SIPp's built-in UAC), a file name in the
        e2e scenarios directory, or an absolute path.
    @param services: the Request-URI users (C{-s}); C{None} for SIPp's default.
    @param timed: time each call (L{timedScenario}); the row then has
        C{pdd_ms}: count, p50/p95/p99 in milliseconds.
    @param cpus: the set of cores SIPp may run on, or C{None}.
    @param direct: send each call's ACK and BYE to the Contact of its 200
        (L{directScenario}), not to C{target}.
    @return: C{dict}: rate, calls, successful, failed, seconds (wall),
        achieved (calls/s), sipp_cpu_s (CPU seconds of the SIPp processes).
    """
    share = max(1, rate // len(services))
    calls = int(share * seconds)
    cpuBefore = _childrenCPUSeconds()
    start = time.monotonic()
    total = successful = failed = 0
    times = {}
    with tempfile.TemporaryDirectory(prefix="lrsipp") as scratch:
        runs = []
        for i, service in enumerate(services):
            sub = os.path.join(scratch, str(i))
            os.mkdir(sub)
            args = _sippArgs(target, share, calls, seconds, scenario, service, sub, timed,
                             direct)
            process = subprocess.Popen(args, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                                       text=True, cwd=sub)
            pin(process.pid, cpus)
            runs.append((process, sub))
        for process, sub in runs:
            good, bad = _report(process, calls, sub, seconds)
            total += calls
            successful += good
            failed += bad
            if timed:
                for rtd, values in readResponseTimes(sub).items():
                    times.setdefault(rtd, []).extend(values)
    elapsed = time.monotonic() - start
    row = {"rate": rate, "calls": total, "successful": successful, "failed": failed,
           "seconds": elapsed, "achieved": successful / elapsed if elapsed else 0,
           "sipp_cpu_s": _childrenCPUSeconds() - cpuBefore}
    if timed:
        values = times.get(1, [])
        row["pdd_ms"] = {"count": len(values), "p50": percentile(values, 50),
                         "p95": percentile(values, 95), "p99": percentile(values, 99)}
    return row


def _column(meter):
    return f"{meter}_cpu_ms_per_call" if meter else "cpu_ms_per_call"


def sweep(name, rates, load, meters):
    """
    Run C{load(rate)} (a L{runSIPp} row) for each rate in order, metering
    CPU, until a rate is not reached: a rate counts only when every call
    succeeded and SIPp kept up with it (90 %).

    @param meters: C{{name: callable}}, each callable returning cumulative
        CPU seconds of what it meters; the row gets C{NAME_cpu_ms_per_call}
        for each (C{cpu_ms_per_call} for the name C{""}), and
        C{sipp_cpu_ms_per_call}.
    @return: C{{"rows": [row], "best": the last reached row or None}}.
    """
    rows, best = [], None
    for rate in rates:
        before = {key: meter() for key, meter in meters.items()}
        row = load(rate)
        calls = max(row["successful"], 1)
        for key, meter in meters.items():
            row[_column(key)] = 1000 * (meter() - before[key]) / calls
        row["sipp_cpu_ms_per_call"] = 1000 * row["sipp_cpu_s"] / calls
        rows.append(row)
        cpu = "  ".join(f"{key or 'target'} {row[_column(key)]:.3f}" for key in (*meters, "sipp"))
        print(f"  {name:16s} rate {rate:5d}/s: {row['successful']:6d} ok {row['failed']:5d} "
              f"failed achieved {row['achieved']:7.1f}/s  CPU ms/call: {cpu}", flush=True)
        complete = not row["failed"] and row["successful"] == row["calls"]
        row["reached"] = complete and row["achieved"] >= 0.9 * rate
        if not row["reached"]:
            if complete:
                print(f"  {name:16s} rate {rate}/s: no failures, but the load only reached "
                      f"{row['achieved']:.0f}/s (the machine or the load generator saturated)")
            break
        best = row
    return {"rows": rows, "best": best}


def waitIdle(pid, timeout=30.0):
    """Wait (at most C{timeout} seconds) until process C{pid} uses under 5 % of a core."""
    deadline = time.monotonic() + timeout
    last = cpuSeconds(pid)
    while time.monotonic() < deadline:
        time.sleep(1.0)
        now = cpuSeconds(pid)
        if now - last < 0.05:
            return
        last = now
