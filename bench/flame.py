"""
Sampling profiles of a running process for the benches: py-spy (a
profiling tool only, ``pip install py-spy``; not a dependency of LinkRTC)
records the stacks of a PID, and this module turns them into a text table
of the top functions by own time and by inclusive time.

    python bench/flame.py PID SECONDS NAME     # record and summarise
    python bench/flame.py --summary FILE.folded  # summarise a recording

It writes bench/results/NAME.folded (collapsed stacks: one stack and its
sample count per line, the input of flamegraph.pl or speedscope) and
bench/results/NAME-top.txt.
"""

import collections
import os
import shutil
import subprocess
import sys

HERE = os.path.dirname(os.path.abspath(__file__))
RESULTS = os.path.join(HERE, "results")


def pySpy():
    """@return: the path of py-spy (next to this Python first) or C{None}."""
    local = os.path.join(os.path.dirname(sys.executable), "py-spy")
    return local if os.path.exists(local) else shutil.which("py-spy")


def start(pid, seconds, name, rate=200):
    """
    Start recording C{pid} for C{seconds} (C{rate} samples per second).

    @return: the py-spy L{subprocess.Popen}, or C{None} without py-spy.
    """
    spy = pySpy()
    if spy is None:
        print("py-spy not found (pip install py-spy): no profile", flush=True)
        return None
    os.makedirs(RESULTS, exist_ok=True)
    return subprocess.Popen(
        [spy, "record", "--pid", str(pid), "-d", str(int(seconds)), "-r", str(rate),
         "--nonblocking", "-f", "raw", "-o", os.path.join(RESULTS, name + ".folded")],
        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)


def finish(process, name, top=40):
    """Wait for a recording started by L{start} and write its summary."""
    if process is None:
        return
    try:
        process.wait(timeout=120)
    except subprocess.TimeoutExpired:
        process.kill()
        process.wait()
    path = os.path.join(RESULTS, name + ".folded")
    if os.path.exists(path):
        with open(os.path.join(RESULTS, name + "-top.txt"), "w") as f:
            f.write(summary(path, top))
        print(f"profile: bench/results/{name}.folded, bench/results/{name}-top.txt", flush=True)


def _frame(text):
    """@return: C{"function (file)"} of a py-spy frame C{"function (path:line)"}."""
    name, _, rest = text.partition(" (")
    if not rest:
        return text
    path = rest.rsplit(":", 1)[0]
    for cut in ("site-packages/", "/linkrtc/", "/python3.11/"):
        if cut in path:
            path = path.split(cut, 1)[1]
            break
    return f"{name} ({path})"


def summary(path, top=40):
    """
    @param path: a collapsed-stack file (py-spy C{-f raw}).
    @return: the text table: percent of samples per function, by own time
        and by inclusive time (a function counted once per stack).
    """
    own, inclusive = collections.Counter(), collections.Counter()
    total = 0
    with open(path) as f:
        for line in f:
            stack, _, count = line.rstrip("\n").rpartition(" ")
            if not count.isdigit():
                continue
            frames = [_frame(x) for x in stack.split(";")
                      if x and not x.startswith(("process ", "thread "))]
            total += int(count)
            if frames:
                own[frames[-1]] += int(count)
                for frame in set(frames):
                    inclusive[frame] += int(count)
    lines = [f"{total} samples", "", "own time:"]
    lines += [f"{100 * n / max(total, 1):5.1f}% {k}" for k, n in own.most_common(top)]
    lines += ["", "inclusive time:"]
    lines += [f"{100 * n / max(total, 1):5.1f}% {k}" for k, n in inclusive.most_common(2 * top)]
    return "\n".join(lines) + "\n"


def main(argv):
    if argv[:1] == ["--summary"]:
        sys.stdout.write(summary(argv[1]))
        return
    pid, seconds, name = int(argv[0]), float(argv[1]), argv[2]
    finish(start(pid, seconds, name), name)


if __name__ == "__main__":
    main(sys.argv[1:])
