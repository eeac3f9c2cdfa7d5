"""
Memory per bridged call: the slope of LinkRTC's resident set size over
100 -> 200 -> 300 concurrent bridged calls (PCMU, ICE + DTLS-SRTP with an
aiortc peer per call, RTP flowing both ways), a fresh
``twistd -n linkrtc --media bridge`` for each count, the calls set up with
bench/setups.py's ``holdCalls``.

It prints, per count, LinkRTC's RSS with the calls up, and the least-squares
slope in MB per call; as the ceiling of the same run, the slope of the
aiortc client process (the other end of the same peer connections, with no
SIP and no bridge). It writes bench/results/memory.json.

    python bench/memory.py [--calls 100,200,300] [--cps 50] [--settle 2]

Everything is on 127.0.0.1, each step bounded by a set-up timeout.
"""

import argparse
import os
import sys

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)

import media  # noqa: E402
import setups  # noqa: E402

#: The goal of issue 15, megabytes per bridged call.
GOAL_MB = 0.5
MB = 1024 * 1024


def slope(xs, ys):
    """@return: the least-squares slope of C{ys} over C{xs} (C{None} for < 2 points)."""
    if len(xs) < 2:
        return None
    mx, my = sum(xs) / len(xs), sum(ys) / len(ys)
    den = sum((x - mx) ** 2 for x in xs)
    return sum((x - mx) * (y - my) for x, y in zip(xs, ys)) / den if den else None


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--calls", type=media.ladder, default=media.ladder("100,200,300"))
    parser.add_argument("--cps", type=float, default=50.0, help="set-ups per second")
    parser.add_argument("--settle", type=float, default=2.0,
                        help="seconds the calls run before RSS is read")
    options = parser.parse_args()
    rows = []
    for n in options.calls:
        linkrtc = setups.startLinkRTC()
        try:
            row = setups.holdCalls(linkrtc, n, options.cps, settle=options.settle)
        finally:
            setups.stopLinkRTC(linkrtc)
        rows.append(row)
        if "error" in row:
            print(f"  N={n}: ERROR {row['error'][:300]}", flush=True)
            break
        print(f"  N={n:4d}: LinkRTC RSS {row['rssBefore'] / MB:7.1f} MB idle, "
              f"{row['rssUp'] / MB:7.1f} MB with the calls up; aiortc client "
              f"{row['clientRssUp'] / MB:7.1f} MB", flush=True)
    good = [r for r in rows if "error" not in r]
    ours = slope([r["calls"] for r in good], [r["rssUp"] / MB for r in good])
    theirs = slope([r["calls"] for r in good], [r["clientRssUp"] / MB for r in good])
    summary = {"mbPerCall": round(ours, 4) if ours is not None else None,
               "clientMbPerCall": round(theirs, 4) if theirs is not None else None,
               "goalMb": GOAL_MB}
    if ours is not None and theirs:
        summary["ratioToClient"] = round(ours / theirs, 2)
        print(f"\nRSS slope: LinkRTC {ours:.3f} MB per bridged call (goal <= {GOAL_MB}); "
              f"aiortc client {theirs:.3f} MB per peer connection (ceiling); "
              f"ratio {summary['ratioToClient']}")
    setups.writeResult("memory", {"calls": options.calls, "cps": options.cps,
                                  "settle": options.settle}, rows, summary=summary)


if __name__ == "__main__":
    main()
