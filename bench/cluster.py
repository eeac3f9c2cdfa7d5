"""
Scale-out: calls per second through Kamailio (etc/kamailio/kamailio.cfg)
to one LinkRTC node, then to two nodes sharing a Redis directory
(docs/scaling.rst).

Three set-ups, each swept over rising rates with SIPp (uac_call.xml, no
pause) on 127.0.0.1, and one cheap auto-answering WebSocket client
process (bench/answerer.py) holding a connection per node
(``--media passthrough``):

  - ``one_node``: Kamailio -> node A; the client ``bench`` on A.
  - ``two_nodes``: Kamailio -> nodes A and B; a client ``bench`` on each
    (every call is local to the node Kamailio picks).
  - ``two_nodes_split``: clients ``bench-a`` on A and ``bench-b`` on B,
    two SIPp runs at half the rate each: some of the calls (the nodes count
    them) enter the other node first and are redirected (302, a Redis
    lookup) there.
  - ``redirects``: SIPp straight to node A for the client ``bench-b`` on
    node B, each INVITE answered 302 by A: the CPU a redirect costs the
    node a call enters (and Redis), alone.

As in production (no Record-Route), SIPp sends each call's ACK and BYE
straight to the node that answered (``--via-front`` sends them through
Kamailio too, as with ``WITH_RR``). Node A runs on core 0 and node B on
core 1; in the one-node run everything else is kept off core 0, so node A
has a core of its own (``--no-pin`` leaves the scheduler free).

For each rate it prints the CPU time per call (milliseconds, from /proc)
of each node, Kamailio (all its processes), Redis, the client and SIPp.
The summary gives, two nodes against one:

  - the measured ratio (the highest rates reached, wall clock);
  - the capacity ratio from the nodes' CPU per call at the same load per
    node: what two nodes with a core each do against one;
  - the bound the rest imposes on the measured ratio on this machine:
    with c the nodes' and g everything else's CPU per call, one node on
    its own core reaches at most 1/c calls/s, two nodes sharing the cores
    with the rest at most K/(c+g) on K cores, so the ratio is at most
    K c / (c + g);
  - in the split set-up, the nodes' CPU per call against local calls and
    the extra CPU per redirected call (counted by the nodes' metrics), and
    the cost of a redirect alone (``redirects``).

    python bench/cluster.py [--rates 200,400,600,800] [--seconds 5]

Results go to bench/results/cluster.json. Everything runs on 127.0.0.1
and stops by itself.
"""

import argparse
import json
import os
import re
import sys
import tempfile
import time
import urllib.request

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(HERE)
sys.path.insert(0, ROOT)

from answerer import Answerer  # noqa: E402
from sipload import TICK, cpuSeconds, pin, runSIPp, sweep  # noqa: E402

from linkrtc.test.e2e.cluster_harness import KamailioProcess, RedisProcess  # noqa: E402
from linkrtc.test.e2e.harness import SCENARIOS, LinkRTCProcess  # noqa: E402

#: The meters of every row besides SIPp's: node CPU, the rest's.
REST = ("kamailio", "redis", "client", "sipp")


def groupPids(pgid):
    """@return: the process ids of process group C{pgid} (Kamailio's processes)."""
    pids = []
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            with open(f"/proc/{entry}/stat") as f:
                if int(f.read().rsplit(")", 1)[1].split()[2]) == pgid:
                    pids.append(int(entry))
        except (OSError, ValueError):
            continue
    return pids


def groupCPUSeconds(pgid):
    """@return: user+system CPU seconds of the processes of group C{pgid}."""
    total = 0.0
    for pid in groupPids(pgid):
        try:
            total += cpuSeconds(pid)
        except (OSError, ValueError):
            continue
    return total


def machineBusySeconds():
    """
    @return: CPU seconds the whole machine spent busy (all cores, from
        /proc/stat: user, nice, system, irq, softirq and steal, the time the
        hypervisor gave to other guests).
    """
    with open("/proc/stat") as f:
        fields = [int(v) for v in f.readline().split()[1:9]]
    user, nice, system, _idle, _iowait, irq, softirq, steal = fields
    return (user + nice + system + irq + softirq + steal) / TICK


def warnings(node, count=5):
    """@return: the last C{count} warnings and errors of C{node}'s log but the per-call ones."""
    lines = [line for line in node.logText().splitlines()
             if ("#warn]" in line or "#error]" in line or "#critical]" in line)
             and "passthrough media" not in line]
    return lines[-count:]


def redirected(node):
    """@return: how many INVITEs C{node} redirected (its metrics), or C{None}."""
    try:
        with urllib.request.urlopen(f"http://127.0.0.1:{node.httpPort}/metrics", timeout=5) as r:
            text = r.read().decode()
    except OSError:
        return None
    found = re.search(r'^linkrtc_cluster_invites_total\{result="redirected"\} ([0-9.e+]+)$',
                      text, re.M)
    return float(found.group(1)) if found else 0.0


class Cluster:
    """
    Redis (shared), N nodes, one answering client, Kamailio: started
    whole, pinned, stopped by L{stop}.
    """

    def __init__(self, redis, nodeIds, clientNames, pinned):
        """
        @param nodeIds: the nodes' ids; node I runs on core I when C{pinned}.
        @param clientNames: the client name on each node (C{None}: no client there).
        @param pinned: pin the nodes (and keep the rest off a lone node's core).
        """
        self.redis = redis
        self.nodes, self.client, self.kamailio = [], None, None
        try:
            for nodeId in nodeIds:
                self.nodes.append(LinkRTCProcess(
                    "--media", "passthrough", "--max-calls", "0",
                    "--max-ringing-per-client", "0", "--redis", redis.url,
                    "--node-id", nodeId).start())
            self.client = Answerer([(f"ws://127.0.0.1:{n.httpPort}/ws", name)
                                    for n, name in zip(self.nodes, clientNames) if name])
            self.client.waitRegistered()
            self.kamailio = KamailioProcess(self.nodes, probeInterval=2, children=1).start()
        except BaseException:
            self.stop()
            raise
        cores = set(range(os.cpu_count() or 1))
        # The rest: off node A's core when it runs alone, else anywhere.
        self.restCores = None
        if pinned:
            for i, node in enumerate(self.nodes):
                pin(node.process.pid, {i % len(cores)})
            if len(self.nodes) == 1 and len(cores) > 1:
                self.restCores = cores - {0}
            for pid in [self.client.process.pid, redis.process.pid,
                        *groupPids(self.kamailio.process.pid)]:
                pin(pid, self.restCores or cores)

    def meters(self):
        """@return: the CPU meters (L{sipload.sweep}) of every part but SIPp."""
        meters = {f"node_{i}": (lambda pid=n.process.pid: cpuSeconds(pid))
                  for i, n in enumerate(self.nodes)}
        meters["kamailio"] = lambda: groupCPUSeconds(self.kamailio.process.pid)
        meters["redis"] = lambda: cpuSeconds(self.redis.process.pid)
        meters["client"] = lambda: cpuSeconds(self.client.process.pid)
        return meters

    def stop(self):
        if self.kamailio is not None:
            self.kamailio.stop()
        if self.client is not None:
            self.client.stop()
        for node in self.nodes:
            node.stop()
        self.redis.command("FLUSHALL")


def run(redis, nodeIds, clientNames, services, name, options):
    """Start a cluster, sweep the rates, stop it; @return: the sweep."""
    cluster = Cluster(redis, nodeIds, clientNames, not options.no_pin)
    try:
        time.sleep(1)
        print(f"{name}:", flush=True)
        rates = [int(r) for r in options.rates.split(",")]

        def load(rate):
            before = [redirected(n) for n in cluster.nodes]
            busy = machineBusySeconds()
            row = runSIPp(cluster.kamailio.port, rate, options.seconds, "uac_call.xml",
                          services, cpus=cluster.restCores, direct=not options.via_front)
            row["machine_busy_s"] = machineBusySeconds() - busy
            after = [redirected(n) for n in cluster.nodes]
            if None not in before + after:
                row["redirected"] = sum(after) - sum(before)
            if row["failed"]:
                for i, node in enumerate(cluster.nodes):
                    for line in warnings(node):
                        print(f"  node {nodeIds[i]}: {line[:300]}", flush=True)
            return row

        result = sweep(name, rates, load, cluster.meters())
        for row in result["rows"]:
            calls = max(row["successful"], 1)
            row["nodes_cpu_ms_per_call"] = sum(row[f"node_{i}_cpu_ms_per_call"]
                                               for i in range(len(nodeIds)))
            row["rest_cpu_ms_per_call"] = sum(row[f"{k}_cpu_ms_per_call"] for k in REST)
            # What the rest of the machine (other work, other guests) took
            # meanwhile, in cores: the cores this run did not have.
            ours = (row["nodes_cpu_ms_per_call"] + row["rest_cpu_ms_per_call"]) * calls / 1000
            row["others_cores"] = (row["machine_busy_s"] - ours) / row["seconds"]
            if "redirected" in row:
                row["redirected_share"] = row["redirected"] / calls
        print("  meanwhile other work on the machine took (cores): " + ", ".join(
            f"{r['others_cores']:.2f} at {r['rate']}/s" for r in result["rows"]), flush=True)
        return result
    finally:
        cluster.stop()


def redirects(redis, options):
    """
    SIPp straight to node A for a client of node B: every INVITE is a
    lookup and a 302 on A. @return: the sweep, with C{node_0} A's CPU.
    """
    cluster = Cluster(redis, ["a", "b"], [None, "bench-b"], not options.no_pin)
    try:
        time.sleep(1)
        print("redirects (SIPp -> node A, the client on node B, each INVITE answered 302):",
              flush=True)
        with tempfile.TemporaryDirectory(prefix="lrclb") as scratch:
            scenario = os.path.join(scratch, "redirected.xml")
            with open(os.path.join(SCENARIOS, "uac_fail.xml")) as f:
                text = f.read()
            with open(scenario, "w") as f:
                f.write(text.replace("[expected]", "302"))
            rates = [int(r) for r in options.rates.split(",")]
            return sweep("redirects", rates,
                         lambda rate: runSIPp(cluster.nodes[0].sipPort, rate, options.seconds,
                                              scenario, ("bench-b",), cpus=cluster.restCores),
                         cluster.meters())
    finally:
        cluster.stop()


def ratios(results, cores):
    """@return: the summary of two nodes against one (see the module docstring)."""
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
        capacity = [{"two_nodes_rate": two["rate"], "one_node_rate": single["rate"],
                     "ratio": 2 * single["nodes_cpu_ms_per_call"]
                     / two["nodes_cpu_ms_per_call"]} for two, single in pairs]
        c, g = best["nodes_cpu_ms_per_call"], best["rest_cpu_ms_per_call"]
        summary[key] = {"measured_ratio": best["achieved"] / one["achieved"],
                        "capacity": capacity,
                        "node_ms": c, "rest_ms": g,
                        "bound": min(2.0, cores * c / (c + g))}
    split, local = results["two_nodes_split"]["rows"], results["two_nodes"]["rows"]
    localRows = {r["rate"]: r for r in local if not r["failed"]}
    cross = []
    for row in split:
        same = localRows.get(row["rate"])
        # Below a fifth of the calls redirected, the difference is noise.
        if row["failed"] or not same or row.get("redirected_share", 0) < 0.2:
            continue
        calls = max(row["successful"], 1)
        extra = (row["nodes_cpu_ms_per_call"] - same["nodes_cpu_ms_per_call"]) * calls
        cross.append({"rate": row["rate"], "redirected_share": row["redirected_share"],
                      "split_nodes_ms": row["nodes_cpu_ms_per_call"],
                      "local_nodes_ms": same["nodes_cpu_ms_per_call"],
                      "split_kamailio_ms": row["kamailio_cpu_ms_per_call"],
                      "local_kamailio_ms": same["kamailio_cpu_ms_per_call"],
                      "extra_nodes_ms_per_redirect": extra / row["redirected"],
                      "extra_kamailio_ms_per_redirect": (
                          row["kamailio_cpu_ms_per_call"] - same["kamailio_cpu_ms_per_call"])
                      * calls / row["redirected"]})
    summary["cross_node"] = cross
    best = results["redirects"]["best"]
    if best:
        summary["redirect"] = {"rate": best["rate"],
                               "node_ms": best["node_0_cpu_ms_per_call"],
                               "redis_ms": best["redis_cpu_ms_per_call"]}
    return summary


def printSummary(results, summary):
    print("\nSummary: highest rate with 0 failed calls; CPU ms per call")
    for key in ("one_node", "two_nodes", "two_nodes_split"):
        best = results[key]["best"]
        if best:
            parts = "  ".join(f"{k} {best[f'{k}_cpu_ms_per_call']:.3f}"
                              for k in ("nodes", *REST))
            print(f"  {key:16s} {best['rate']:6d} calls/s (achieved {best['achieved']:.0f}/s)  "
                  f"{parts}  (other work: {best['others_cores']:.2f} cores)")
        elif results[key]["rows"]:
            print(f"  {key:16s} failed at the lowest rate")
    for key in ("two_nodes", "two_nodes_split"):
        if key not in summary:
            continue
        s = summary[key]
        print(f"  {key} vs one_node: measured {s['measured_ratio']:.2f}x; on this machine at "
              f"most {s['bound']:.2f}x = 2c/(c+g), c {s['node_ms']:.3f} ms the nodes, "
              f"g {s['rest_ms']:.3f} ms the rest per call")
        for p in s["capacity"]:
            print(f"    capacity from the nodes' CPU per call at {p['one_node_rate']}/s per "
                  f"node: {p['ratio']:.2f}x")
    redirect = summary.get("redirect")
    if redirect:
        print(f"  a redirect alone (302 at {redirect['rate']}/s): {redirect['node_ms']:.3f} ms "
              f"on the node the call enters, {redirect['redis_ms']:.3f} ms in Redis")
    for p in summary["cross_node"]:
        print(f"  cross-node at {p['rate']}/s ({p['redirected_share']:.0%} redirected): nodes "
              f"{p['split_nodes_ms']:.3f} ms/call against {p['local_nodes_ms']:.3f} local, "
              f"+{p['extra_nodes_ms_per_redirect']:.3f} ms per redirect on the nodes, "
              f"+{p['extra_kamailio_ms_per_redirect']:.3f} in Kamailio")


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--rates", default="100,200,300,400,500,600,800,1000")
    parser.add_argument("--seconds", type=float, default=5.0)
    parser.add_argument("--setups", default="one_node,two_nodes,two_nodes_split,redirects",
                        help="which set-ups to run (comma-separated)")
    parser.add_argument("--no-pin", action="store_true",
                        help="do not pin the nodes to cores (the scheduler places everything)")
    parser.add_argument("--via-front", action="store_true",
                        help="send ACK and BYE through Kamailio too (as with WITH_RR)")
    options = parser.parse_args()
    cores = os.cpu_count() or 1
    command = f"python bench/cluster.py --rates {options.rates} --seconds {options.seconds:g}"
    for flag in ("no_pin", "via_front"):
        if getattr(options, flag):
            command += " --" + flag.replace("_", "-")
    if options.setups != parser.get_default("setups"):
        command += f" --setups {options.setups}"
    results = {"rates": [int(r) for r in options.rates.split(",")], "seconds": options.seconds,
               "cores": cores, "command": command, "pinned": not options.no_pin,
               "direct_in_dialog": not options.via_front,
               # Other work on the same cores lowers the measured rates.
               "loadavg_before": os.getloadavg()}
    setups = {
        "one_node": (["a"], ["bench"], ["bench"], "one node"),
        "two_nodes": (["a", "b"], ["bench", "bench"], ["bench"], "two nodes"),
        "two_nodes_split": (["a", "b"], ["bench-a", "bench-b"], ["bench-a", "bench-b"],
                            "two nodes, split"),
    }
    for key in setups:
        results[key] = {"rows": [], "best": None}
    results["redirects"] = {"rows": [], "best": None}
    redis = RedisProcess().start()
    try:
        for key in options.setups.split(","):
            if key == "redirects":
                results[key] = redirects(redis, options)
                continue
            nodeIds, clientNames, services, title = setups[key]
            results[key] = run(redis, nodeIds, clientNames, services, title, options)
    finally:
        redis.stop()
    results["summary"] = summary = ratios(results, cores)
    results["loadavg_after"] = os.getloadavg()
    printSummary(results, summary)
    os.makedirs(os.path.join(HERE, "results"), exist_ok=True)
    with open(os.path.join(HERE, "results", "cluster.json"), "w") as f:
        json.dump(results, f, indent=1)
    print("written to bench/results/cluster.json")


if __name__ == "__main__":
    main()
