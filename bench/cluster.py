"""
Scale-out: calls per second through Kamailio (etc/kamailio/kamailio.cfg)
to one LinkRTC node, then to two nodes sharing a Redis directory
(docs/scaling.rst).

Three set-ups, each swept over rising rates with SIPp (uac_call.xml, no
pause) on 127.0.0.1, one auto-answering WebSocket client per node
(``--media passthrough``):

  - ``one_node``: Kamailio -> node A; the client ``bench`` on A.
  - ``two_nodes``: Kamailio -> nodes A and B; a client ``bench`` on each
    (every call is local to the node Kamailio picks).
  - ``two_nodes_split``: clients ``bench-a`` on A and ``bench-b`` on B,
    two SIPp runs at half the rate each: half of the calls enter the
    other node first and are redirected (302) there.

For each it prints the highest rate with 0 failed calls and the CPU time
per call (milliseconds, from /proc) of the nodes, Kamailio and the
clients, and writes bench/results/cluster.json with the ratios two vs
one: measured (wall clock, on this machine) and projected from the
nodes' CPU per call (each node on its own core).

    python bench/cluster.py [--rates 200,400,600,800] [--seconds 5]

Everything stops by itself. On a 2-core machine SIPp, Kamailio, Redis
and the clients share the cores with the nodes: the measured ratio is
bounded by that, the report says so.
"""

import argparse
import json
import os
import re
import subprocess
import sys
import tempfile
import time

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(HERE)
sys.path.insert(0, ROOT)

from cps import cpuSeconds  # noqa: E402

from linkrtc.test.e2e.cluster_harness import KamailioProcess, RedisProcess  # noqa: E402
from linkrtc.test.e2e.harness import SCENARIOS, LinkRTCProcess, WSClient, freePort  # noqa: E402


def groupCPUSeconds(pgid):
    """@return: user+system CPU seconds of the processes of group C{pgid} (Kamailio's)."""
    total = 0.0
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            with open(f"/proc/{entry}/stat") as f:
                if int(f.read().rsplit(")", 1)[1].split()[2]) != pgid:
                    continue
            total += cpuSeconds(int(entry))
        except (OSError, ValueError):
            continue
    return total


def startSIPp(port, rate, seconds, service, scratch):
    calls = int(rate * seconds)
    args = ["sipp", f"127.0.0.1:{port}", "-i", "127.0.0.1", "-p", str(freePort()),
            "-sf", os.path.join(SCENARIOS, "uac_call.xml"), "-s", service, "-d", "0",
            "-mi", "127.0.0.1", "-mp", str(freePort()),
            "-r", str(rate), "-m", str(calls), "-nostdin", "-l", str(max(rate * 4, 100)),
            "-timeout", f"{int(seconds) + 30}s", "-max_recv_loops", "10000",
            "-buff_size", str(4 * 1024 * 1024), "-trace_stat", "-fd", "1", "-trace_err",
            "-error_file", os.path.join(scratch, "errors.log")]
    return calls, subprocess.Popen(args, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                                   text=True, cwd=scratch)


def runLoad(port, rate, seconds, services):
    """
    Run one SIPp per service at C{rate / len(services)} each, at once.

    @return: C{dict}: rate, calls, successful, failed, seconds, achieved.
    """
    share = max(1, rate // len(services))
    start = time.monotonic()
    runs = []
    with tempfile.TemporaryDirectory(prefix="lrclb") as scratch:
        for i, service in enumerate(services):
            sub = os.path.join(scratch, str(i))
            os.mkdir(sub)
            runs.append(startSIPp(port, share, seconds, service, sub))
        total = successful = failed = 0
        for i, (calls, process) in enumerate(runs):
            try:
                text, _ = process.communicate(timeout=seconds + 60)
            except subprocess.TimeoutExpired:
                process.kill()
                text, _ = process.communicate()
            ok = re.findall(r"Successful call\s*\|\s*\d+\s*\|\s*(\d+)", text)
            bad = re.findall(r"Failed call\s*\|\s*\d+\s*\|\s*(\d+)", text)
            good = int(ok[-1]) if ok else 0
            total += calls
            successful += good
            failed += int(bad[-1]) if bad else calls - good
            if not good:
                print(f"  SIPp completed no call (exit {process.returncode}):\n{text[-1500:]}",
                      flush=True)
            if bad and int(bad[-1]):
                try:
                    with open(os.path.join(scratch, str(i), "errors.log"), errors="replace") as f:
                        print(f"  SIPp errors:\n{f.read()[:1500]}", flush=True)
                except OSError:
                    pass
    elapsed = time.monotonic() - start
    return {"rate": rate, "calls": total, "successful": successful, "failed": failed,
            "seconds": elapsed, "achieved": successful / elapsed if elapsed else 0}


def sweep(name, kamailio, nodes, clients, rates, seconds, services):
    """@return: the per-rate rows and the best rate with no failure."""
    rows, best = [], None
    for rate in rates:
        nodesBefore = sum(cpuSeconds(n.process.pid) for n in nodes)
        kamBefore = groupCPUSeconds(kamailio.process.pid)
        clientsBefore = sum(cpuSeconds(c.process.pid) for c in clients)
        row = runLoad(kamailio.port, rate, seconds, services)
        calls = max(row["successful"], 1)
        row["nodes_cpu_ms_per_call"] = 1000 * (
            sum(cpuSeconds(n.process.pid) for n in nodes) - nodesBefore) / calls
        row["kamailio_cpu_ms_per_call"] = 1000 * (
            groupCPUSeconds(kamailio.process.pid) - kamBefore) / calls
        row["clients_cpu_ms_per_call"] = 1000 * (
            sum(cpuSeconds(c.process.pid) for c in clients) - clientsBefore) / calls
        row["reached"] = (not row["failed"] and row["successful"] == row["calls"]
                          and row["achieved"] >= 0.9 * rate)
        rows.append(row)
        print(f"  {name:16s} rate {rate:5d}/s: {row['successful']:6d} ok {row['failed']:5d} "
              f"failed achieved {row['achieved']:7.1f}/s  nodes "
              f"{row['nodes_cpu_ms_per_call']:.3f} ms/call  kamailio "
              f"{row['kamailio_cpu_ms_per_call']:.3f}  clients "
              f"{row['clients_cpu_ms_per_call']:.3f}", flush=True)
        if not row["reached"]:
            break
        best = row
    return {"rows": rows, "best": best}


def cluster(redis, nodeIds, clientNames, rates, seconds, services, name):
    """Start the nodes, clients and Kamailio; sweep; stop them."""
    nodes, clients, kamailio = [], [], None
    try:
        for nodeId in nodeIds:
            nodes.append(LinkRTCProcess(
                "--media", "passthrough", "--max-calls", "0", "--max-ringing-per-client", "0",
                "--redis", redis.url, "--node-id", nodeId).start())
        for node, clientName in zip(nodes, clientNames):
            client = WSClient(node, clientName, "--action", "answer", "--lifetime", "3600")
            clients.append(client)
            client.waitFor("registered")
        kamailio = KamailioProcess(nodes, probeInterval=2).start()
        time.sleep(1)
        print(f"{name}:", flush=True)
        return sweep(name, kamailio, nodes, clients, rates, seconds, services)
    finally:
        if kamailio is not None:
            kamailio.stop()
        for client in clients:
            client.stop()
        for node in nodes:
            node.stop()
        redis.command("FLUSHALL")


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--rates", default="100,200,300,400,500,600,800,1000")
    parser.add_argument("--seconds", type=float, default=5.0)
    parser.add_argument("--setups", default="one_node,two_nodes,two_nodes_split",
                        help="which set-ups to run (comma-separated)")
    options = parser.parse_args()
    rates = [int(r) for r in options.rates.split(",")]
    results = {"rates": rates, "seconds": options.seconds, "cores": os.cpu_count(),
               "command": "python bench/cluster.py --rates " + options.rates
               + f" --seconds {options.seconds:g}",
               # The machine's load before the run: other work on the same
               # cores lowers the measured rates (see the module docstring).
               "loadavg_before": os.getloadavg()}
    setups = {
        "one_node": (["a"], ["bench"], ["bench"], "one node"),
        "two_nodes": (["a", "b"], ["bench", "bench"], ["bench"], "two nodes"),
        "two_nodes_split": (["a", "b"], ["bench-a", "bench-b"], ["bench-a", "bench-b"],
                            "two nodes, split"),
    }
    wanted = options.setups.split(",")
    for key in setups:
        results[key] = {"rows": [], "best": None}
    redis = RedisProcess().start()
    try:
        for key in wanted:
            nodeIds, clientNames, services, title = setups[key]
            results[key] = cluster(redis, nodeIds, clientNames, rates, options.seconds,
                                   services, title)
    finally:
        redis.stop()

    one = results["one_node"]["best"]
    oneRows = {r["rate"]: r for r in results["one_node"]["rows"] if not r["failed"]}
    summary = {}
    for key in ("two_nodes", "two_nodes_split"):
        best = results[key]["best"]
        if not (one and best):
            continue
        # Each node on its own core, capacity is 1 / (node CPU per call):
        # compare at the same load per node (two nodes at 2R, one at R).
        pairs = [(r, oneRows[r["rate"] // 2]) for r in results[key]["rows"]
                 if not r["failed"] and r["rate"] // 2 in oneRows]
        projected = [{"two_nodes_rate": two["rate"], "one_node_rate": single["rate"],
                      "ratio": 2 * single["nodes_cpu_ms_per_call"]
                      / two["nodes_cpu_ms_per_call"]} for two, single in pairs]
        summary[key] = {"measured_ratio": best["achieved"] / one["achieved"],
                        "projected": projected}
    results["summary"] = summary
    results["loadavg_after"] = os.getloadavg()
    print("\nSummary: highest rate with 0 failed calls")
    for key in ("one_node", "two_nodes", "two_nodes_split"):
        best = results[key]["best"]
        if best:
            print(f"  {key:16s} {best['rate']:6d} calls/s (achieved {best['achieved']:.0f}/s) "
                  f"nodes {best['nodes_cpu_ms_per_call']:.3f} ms CPU/call "
                  f"kamailio {best['kamailio_cpu_ms_per_call']:.3f}")
        else:
            print(f"  {key:16s} failed at the lowest rate")
    for key, ratio in summary.items():
        print(f"  {key} vs one_node: measured {ratio['measured_ratio']:.2f}x")
        for p in ratio["projected"]:
            print(f"    projected from node CPU per call at {p['one_node_rate']}/s per node: "
                  f"{p['ratio']:.2f}x")
    os.makedirs(os.path.join(HERE, "results"), exist_ok=True)
    with open(os.path.join(HERE, "results", "cluster.json"), "w") as f:
        json.dump(results, f, indent=1)
    print("written to bench/results/cluster.json")


if __name__ == "__main__":
    main()
