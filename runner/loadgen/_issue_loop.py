"""The server scenario's issuer process: issues each query at its scheduled time, on a GIL of its own.

runner.loadgen.issuer starts it as `python -I -S _issue_loop.py FILE [CPUS]` (standard library
only, so it starts in a few milliseconds; kept on CPUS, a comma-separated list, when given: one CPU
for a pinned issuer, several for a floating one) and shares FILE with it through mmap: 8 int64 header words
(below), then the queries' scheduled offsets from the start (ns), then the issue timestamps the
loop writes. For each query in order the loop sleeps (1 ns timer slack, so sleeps end within
~10 us) until `spin_ns` before the query's time, spins on the clock to it, writes the time it
issued the query, then publishes the count of issued queries, which the runner's workers poll
(a query is handed to a worker once published). A query the loop reaches late (the process was
descheduled) is issued at once, with its real, later, timestamp: nothing is back-dated.

`python -I -S _issue_loop.py --calibrate COUNT [CPU]` instead measures this machine's sleep
overshoot under the same conditions (1 ns timer slack, pinned to CPU when given): COUNT sleeps of
50-500 us, printing each overshoot (ns) on one line of JSON (runner.loadgen.calibration).
`python -I -S _issue_loop.py --trial COUNT QPS SPIN_NS CPU` issues COUNT queries of a Poisson schedule
at QPS with that spin, in four alternating parts pinned to CPU and floating over every CPU the process
may use, and prints each part's lateness (issued - scheduled, ns) as JSON {"pinned": [...], "floating": [...]}:
the calibration keeps the arrangement with the lower p99.

Both processes read CLOCK_MONOTONIC (time.perf_counter_ns), one clock for the whole machine.
"""

from __future__ import annotations

import ctypes
import gc
import json
import mmap
import os
import sys
import time

# header words
N, PUB, STOP, READY, START, SPIN, DONE, CPU_NS = range(8)  # CPU_NS: the loop's CPU time when it ends
HEADER = 8

_WAKE_NS = 20_000            # a sleep may end this late (timer slack 1 ns; the scheduler's wake-up)
_MAX_SLEEP_NS = 50_000_000   # wake at least every 50 ms to see a stop or an orphaned loop
_PR_SET_TIMERSLACK = 29


def issue(offsets, issued, ctrl, clock=time.perf_counter_ns, sleep=time.sleep, parent: int | None = None) -> int:
    """Issue queries 0..n-1 at start + offsets[i]: write issued[i], then publish i + 1; return the count issued.

    Stops early (returning the count issued) when ctrl[STOP] is set or, when `parent` is given,
    when that process is gone.
    """
    n, start, spin = ctrl[N], ctrl[START], ctrl[SPIN]
    for i in range(n):
        t = start + offsets[i]
        now = clock()
        while t - now > spin + _WAKE_NS:
            if ctrl[STOP] or (parent is not None and os.getppid() != parent):
                return i
            sleep(min(t - now - spin, _MAX_SLEEP_NS) * 1e-9)
            now = clock()
        while now < t:
            now = clock()
        if ctrl[STOP]:
            return i
        issued[i] = now
        ctrl[PUB] = i + 1
    return n


def _precise_sleeps() -> None:
    if sys.platform == "linux":
        try:
            ctypes.CDLL(None).prctl(_PR_SET_TIMERSLACK, 1, 0, 0, 0)
        except (OSError, AttributeError):
            pass


def calibrate(count: int, clock=time.perf_counter_ns, sleep=time.sleep) -> list[int]:
    """Overshoots (ns) of `count` sleeps of 50-500 us (a fixed, spread set of durations)."""
    out = []
    for i in range(count):
        want = 50_000 + (i * 7919) % 450_000
        t0 = clock()
        sleep(want * 1e-9)
        out.append(clock() - t0 - want)
    return out


def trial(count: int, qps: float, spin_ns: int, cpu: int, clock=time.perf_counter_ns) -> dict[str, list[int]]:
    """Lateness (ns) of `count` Poisson-scheduled queries issued pinned to `cpu` and floating, alternately."""
    import random

    rng, everywhere = random.Random(20261205), os.sched_getaffinity(0)
    out: dict[str, list[int]] = {"pinned": [], "floating": []}
    part = max(1, count // 4)
    for k in range(4):
        mode = ("pinned", "floating")[k % 2]
        os.sched_setaffinity(0, {cpu} if mode == "pinned" else everywhere)
        offsets, t = [], 0
        for _ in range(part):
            t += int(rng.expovariate(qps) * 1e9)
            offsets.append(t)
        issued, ctrl = [0] * part, [0] * HEADER
        ctrl[N], ctrl[SPIN], ctrl[START] = part, spin_ns, clock() + 2_000_000
        issue(offsets, issued, ctrl)
        out[mode] += [i - ctrl[START] - o for i, o in zip(issued, offsets)]
    return out


def _cpus(arg: str) -> set[int]:
    return {int(c) for c in arg.split(",")}


def main(path: str) -> int:
    parent = os.getppid()
    _precise_sleeps()
    if len(sys.argv) > 2:
        os.sched_setaffinity(0, _cpus(sys.argv[2]))
    gc.disable()
    with open(path, "r+b") as f:
        mm = mmap.mmap(f.fileno(), 0)
    words = memoryview(mm).cast("q")
    ctrl = words[:HEADER]
    n = ctrl[N]
    offsets, issued = words[HEADER:HEADER + n], words[HEADER + n:HEADER + 2 * n]
    ctrl[READY] = 1
    while ctrl[START] == 0:
        if ctrl[STOP] or os.getppid() != parent:
            break
        time.sleep(1e-4)
    else:
        count = issue(offsets, issued, ctrl, parent=parent)
        ctrl[CPU_NS] = time.process_time_ns()
        ctrl[DONE] = count + 1  # +1: 0 means "not finished"
    for view in (offsets, issued, ctrl, words):
        view.release()
    mm.close()
    return 0


def _calibrate_main(argv: list[str]) -> int:
    _precise_sleeps()
    if len(argv) > 1:
        os.sched_setaffinity(0, {int(argv[1])})
    gc.disable()
    print(json.dumps(calibrate(int(argv[0]))))
    return 0


def _trial_main(argv: list[str]) -> int:
    _precise_sleeps()
    gc.disable()
    print(json.dumps(trial(int(argv[0]), float(argv[1]), int(argv[2]), int(argv[3]))))
    return 0


if __name__ == "__main__":
    modes = {"--calibrate": _calibrate_main, "--trial": _trial_main}
    sys.exit(modes[sys.argv[1]](sys.argv[2:]) if sys.argv[1] in modes else main(sys.argv[1]))
