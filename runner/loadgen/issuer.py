"""The server scenario's issuer process, from the runner's side: start it, feed it a schedule, read it back.

Why a process: in one Python process every thread shares one GIL, so a query is issued only when
no other thread (a worker finishing the previous query, a collector) holds it; a system that
takes c microseconds to accept a query then makes inter-arrival gaps below c impossible, which a
Kolmogorov-Smirnov test sees once a run has ~10,000 queries. The issuer process
(runner.loadgen._issue_loop) has a GIL of its own and does nothing but keep the schedule: it
writes each query's issue time and publishes how many are issued, and the runner's worker
threads take published queries to the system under test. Its figures: inter-arrival gaps down
to ~0.15 us, so Poisson fidelity holds over runs of 100,000 queries (benchmarks/bench_server.py).

The price is a process that spins on the clock for the last `spin_ns` before each query (the
server scenario takes it from this machine's calibration, runner.loadgen.calibration: its p99
sleep overshoot plus a margin; a spin of 150 us costs up to 15% of a core at 1k QPS) on a CPU of its own
(`cpu`, by default the last the run may use; `keeping_off` keeps the calling thread off it), pinned
to it or floating over `cpus` (runner.loadgen.calibration's trial decides which). Which
runs use it, and on which CPU, is runner.loadgen.isolation's decision.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import numpy as np

from runner.errors import IssuerError
from runner.loadgen import _issue_loop as loop

__all__ = ["IssuerProcess", "keeping_off"]

_SCRIPT = Path(loop.__file__)
_START_TIMEOUT_S = 30.0


def _shared_dir(nbytes: int) -> str:
    """/dev/shm when it has room (memory, never written back to a disk), else the temporary directory."""
    shm = "/dev/shm"
    if os.path.isdir(shm) and os.access(shm, os.W_OK) and shutil.disk_usage(shm).free > 4 * nbytes:
        return shm
    return tempfile.gettempdir()


class IssuerProcess:
    """An issuer process over `offsets` (ns after the start, non-decreasing).

    `with IssuerProcess(offsets) as p: p.go(start_ns); ... p.published() ...`; after the block
    (or `close()`), `p.issued_ns` holds the issue timestamps (0 for a query never issued).
    """

    def __init__(self, offsets: np.ndarray, spin_ns: int = 150_000, cpu: int | None = None,
                 cpus: list[int] | None = None) -> None:
        # spin_ns: a sleep on a 2-vCPU VM overshoots by ~23 us at the median and up to ~130 us at p99.9
        n = len(offsets)
        nbytes = 8 * (loop.HEADER + 2 * n)
        fd, self.path = tempfile.mkstemp(prefix="infersight-issuer-", dir=_shared_dir(nbytes))
        self.issued_ns: np.ndarray | None = None
        self.cpu_ns: int | None = None  # the process's CPU time (its spins), once it has finished
        # the CPU the process keeps to itself: the last this process may use (Linux; None elsewhere)
        self.cpu = cpu if cpu is not None or not hasattr(os, "sched_getaffinity") else max(os.sched_getaffinity(0))
        # the CPUs it may run on: its own (pinned), or several (floating: it may leave a CPU another process takes)
        self.cpus = cpus or (None if self.cpu is None else [self.cpu])
        self._proc: subprocess.Popen | None = None
        try:
            with os.fdopen(fd, "r+b") as f:
                f.truncate(nbytes)
            self._words = np.memmap(self.path, dtype=np.int64, mode="r+", shape=(loop.HEADER + 2 * n,))
            self.ctrl = self._words[:loop.HEADER]
            self.ctrl[loop.N], self.ctrl[loop.SPIN] = n, spin_ns
            self._words[loop.HEADER:loop.HEADER + n] = offsets
            self.issued_view = self._words[loop.HEADER + n:]
            self.issued_view[:] = -1  # touch every page now: no page fault while the loop issues
            self.issued_view[:] = 0
            self._pub = memoryview(self.ctrl).cast("B").cast("q")  # ~40 ns reads, for the polling workers
            self._proc = subprocess.Popen([sys.executable, "-I", "-S", str(_SCRIPT), self.path]
                                          + ([] if self.cpus is None else [",".join(map(str, self.cpus))]),
                                          stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
                                          stderr=subprocess.PIPE)
            self._wait_ready()
        except BaseException:
            self.close()
            raise

    def __enter__(self) -> "IssuerProcess":
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def _wait_ready(self) -> None:
        end = time.monotonic() + _START_TIMEOUT_S
        while not self.ctrl[loop.READY]:
            self.check()
            if time.monotonic() > end:
                raise IssuerError(f"the issuer process did not start within {_START_TIMEOUT_S:g} s")
            time.sleep(0.001)

    def go(self, start_ns: int) -> None:
        """Start issuing: query i at start_ns + offsets[i] (time.perf_counter_ns)."""
        self.ctrl[loop.START] = start_ns

    @property
    def counter(self) -> memoryview:
        """The header as int64 words; word `PUB` is the count of issued queries (read it, never write it)."""
        return self._pub

    def published(self) -> int:
        return int(self._pub[loop.PUB])

    def stop(self) -> None:
        """Issue no further query."""
        if self._proc is not None:
            self.ctrl[loop.STOP] = 1

    def check(self) -> None:
        """Raise IssuerError if the process has ended with an error (or before finishing its schedule)."""
        if self._proc is None or self._proc.poll() is None:
            return
        if self._proc.returncode != 0 or (not self.ctrl[loop.DONE] and not self.ctrl[loop.STOP]):
            err = self._proc.stderr.read().decode(errors="replace").strip() if self._proc.stderr else ""
            raise IssuerError(f"the issuer process exited with code {self._proc.returncode} after issuing "
                              f"{self.published():,} of {int(self.ctrl[loop.N]):,} queries"
                              + (f": {err.splitlines()[-1]}" if err else ""))

    def close(self) -> None:
        """Stop the process, keep the issue timestamps, remove the shared file."""
        if self._proc is not None:
            self.stop()
            try:
                self._proc.wait(timeout=5)
            except subprocess.TimeoutExpired:
                self._proc.kill()
                self._proc.wait()
            if self._proc.stderr:
                self._proc.stderr.close()
            self._proc = None
        if hasattr(self, "_words"):
            if self.issued_ns is None:
                self.issued_ns = np.array(self.issued_view)
                self.cpu_ns = int(self.ctrl[loop.CPU_NS]) or None
            self._pub.release()
            del self._words, self.ctrl, self.issued_view
        Path(self.path).unlink(missing_ok=True)


@contextmanager
def keeping_off(issuer: IssuerProcess | None) -> Iterator[None]:
    """Keep the calling thread off the issuer process's CPU, and under SCHED_BATCH (same priority,
    any user may set it) so that its wake-ups do not preempt a running thread; restored after. On a
    2-CPU VM this takes the issuer's lateness at p99 from ~15 us to ~2-5 us. Linux; elsewhere a no-op."""
    if issuer is None or issuer.cpu is None or not hasattr(os, "sched_setscheduler"):
        yield
        return
    affinity, policy = os.sched_getaffinity(0), os.sched_getscheduler(0)
    try:
        if affinity - {issuer.cpu}:
            os.sched_setaffinity(0, affinity - {issuer.cpu})
        os.sched_setscheduler(0, os.SCHED_BATCH, os.sched_param(0))
    except OSError:
        pass
    try:
        yield
    finally:
        try:
            os.sched_setaffinity(0, affinity)
            os.sched_setscheduler(0, policy, os.sched_param(0))
        except OSError:
            pass
