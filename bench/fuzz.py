"""
The long fuzzing run: every target of L{linkrtc.test.fuzz} (SIP messages,
URIs, SDP, client WebSocket messages, webhook replies) with random seeds,
for a number of examples or of seconds per target.

Prints, per target, the examples tried, the seconds spent and the failures
found (the shrunk example and the exception), and appends the figures as
one JSON line to C{bench/results/fuzz.json}. Exits 1 if a target failed.

Run (needs the C{test} extras, for hypothesis)::

    /work/main/.venv/bin/python bench/fuzz.py --seconds 60          # 60 s per target
    /work/main/.venv/bin/python bench/fuzz.py --examples 100000 --target sip

The unit test C{linkrtc.test.test_fuzz} runs the same targets for 200
examples each with a fixed seed.
"""

import argparse
import json
import os
import platform
import sys
import time
import traceback

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

from hypothesis import HealthCheck, given, settings  # noqa: E402

from linkrtc.test.fuzz import TARGETS  # noqa: E402

RESULTS = os.path.join(os.path.dirname(os.path.abspath(__file__)), "results", "fuzz.json")

#: Examples per hypothesis run; a run is repeated (new seed) until the budget is spent.
BATCH = 2000


def fuzz(name, examples=None, seconds=None):
    """
    Run target C{name} until C{examples} examples or C{seconds} seconds.

    @return: C{dict} with C{examples}, C{seconds} and C{failure} (C{None}
        or the text of the exception hypothesis shrank to).
    """
    strategy, check = TARGETS[name]
    count = [0]

    def counted(example):
        count[0] += 1
        check(example)

    start = time.monotonic()
    failure = None
    while failure is None:
        done = count[0]
        if examples is not None and done >= examples:
            break
        if seconds is not None and time.monotonic() - start >= seconds:
            break
        batch = BATCH if examples is None else min(BATCH, examples - done)

        @settings(max_examples=batch, derandomize=False, deadline=None, database=None,
                  suppress_health_check=list(HealthCheck))
        @given(strategy)
        def run(example):
            counted(example)

        try:
            run()
        except Exception:
            failure = traceback.format_exc(limit=-8)
    return {"examples": count[0], "seconds": round(time.monotonic() - start, 1),
            "failure": failure}


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--examples", type=int, default=None,
                        help="examples per target (default: 20000 unless --seconds)")
    parser.add_argument("--seconds", type=float, default=None, help="seconds per target")
    parser.add_argument("--target", action="append", choices=sorted(TARGETS),
                        help="a target to run (repeatable; default: all)")
    options = parser.parse_args(argv)
    if options.examples is None and options.seconds is None:
        options.examples = 20000
    names = options.target or list(TARGETS)
    results = {}
    for name in names:
        result = results[name] = fuzz(name, options.examples, options.seconds)
        state = "ok" if result["failure"] is None else "FAILED"
        print(f"{name:8} {result['examples']:8d} examples {result['seconds']:8.1f} s  {state}",
              flush=True)
        if result["failure"]:
            print(result["failure"])
    record = {"time": time.strftime("%Y-%m-%dT%H:%M:%S"), "python": platform.python_version(),
              "machine": platform.machine(), "examples": options.examples,
              "seconds": options.seconds, "targets": results}
    os.makedirs(os.path.dirname(RESULTS), exist_ok=True)
    with open(RESULTS, "a") as f:
        f.write(json.dumps(record) + "\n")
    return 1 if any(r["failure"] for r in results.values()) else 0


if __name__ == "__main__":
    sys.exit(main())
