"""
SIP flood control: a 3,000/s INVITE flood that never ACKs (a scanner) and
a 6,000/s OPTIONS flood, each from one address, against
``twistd -n linkrtc`` while a second address sends OPTIONS at 50/s; with
the per-source rate limit (on for loopback here) and, in the same run,
without it (``--sip-rate-limit 0``: the ceiling LinkRTC meets unprotected).

For each it reports the share of the second address's requests answered,
LinkRTC's CPU seconds over the run (from /proc), how many datagrams the
flooder sent and how many responses it drew, and writes
bench/results/flood.json.

    python bench/flood.py [--seconds 3]

Runs inside ``unshare --net`` (root): only loopback, stops by itself.
"""

import argparse
import json
import os
import subprocess
import sys

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(HERE)
SCRIPT = os.path.join(ROOT, "linkrtc", "test", "e2e", "flood_live.py")

CASES = (("invite", 3000), ("options", 6000))


def run(kind, rate, seconds, limit):
    argv = ["unshare", "--net", sys.executable, SCRIPT, "--kind", kind, "--rate", str(rate),
            "--seconds", str(seconds)] + ([] if limit else ["--no-limit"])
    out = subprocess.run(argv, capture_output=True, text=True, timeout=seconds + 120)
    if out.returncode != 0:
        raise SystemExit(out.stderr[-3000:])
    return json.loads(out.stdout.strip().splitlines()[-1])


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--seconds", type=float, default=3.0)
    args = parser.parse_args()
    rows = []
    for kind, rate in CASES:
        for limit in (True, False):
            row = run(kind, rate, args.seconds, limit)
            rows.append(row)
            print(f"{kind:8} {rate}/s limit={'on ' if limit else 'off'} "
                  f"answered {row['answered_ratio']:.2%} of {row['good_sent']}, "
                  f"LinkRTC CPU {row['linkrtc_cpu_seconds']} s, "
                  f"flood {row['flood_sent']} sent / {row['flood_responses']} responses")
    results = {"seconds": args.seconds, "cores": os.cpu_count(), "rows": rows}
    os.makedirs(os.path.join(HERE, "results"), exist_ok=True)
    with open(os.path.join(HERE, "results", "flood.json"), "w") as f:
        json.dump(results, f, indent=1)
        f.write("\n")


if __name__ == "__main__":
    main()
