"""The hardware axis on one machine: which CPU cores a run may use, and pinning the process to them.

A CPU list is written as Linux does (`taskset -c`, cpusets): `0`, `0-1`, `0,2`, `0-3,6`.
Pinning sets the affinity of every thread of this process (os.sched_setaffinity on each
thread id), so threads started later (a backend's thread pool) inherit it, and restores
each thread's previous affinity afterwards. Linux only; elsewhere `--cpus` is refused.
"""

from __future__ import annotations

import os
from collections.abc import Iterable, Iterator
from contextlib import contextmanager

import psutil

from runner.errors import SettingsError

__all__ = ["parse_cpus", "validate_cpus", "format_cpus", "available_cpus", "usable_cores", "pinned", "pinnable",
           "thread_pinned", "affinity_kept"]

_TASKS = "/proc/self/task"


def pinnable() -> bool:
    """Whether this platform can pin a process to cores (Linux's sched_setaffinity)."""
    return hasattr(os, "sched_setaffinity") and os.path.isdir(_TASKS)


def available_cpus() -> list[int]:
    """The CPUs this process may run on now (its affinity), sorted."""
    if hasattr(os, "sched_getaffinity"):
        return sorted(os.sched_getaffinity(0))
    return list(range(os.cpu_count() or 1))


def usable_cores() -> int:
    """Cores a backend should use by default: min(physical cores, CPUs in this process's affinity)."""
    physical = psutil.cpu_count(logical=False) or os.cpu_count() or 1
    return max(1, min(physical, len(available_cpus())))


def parse_cpus(spec: str | int | Iterable[int]) -> list[int]:
    """Parse `0`, `0-1`, `0,2` (or a list of ints) into a sorted list of CPU ids; SettingsError if malformed."""
    if isinstance(spec, bool):
        raise SettingsError(f"--cpus {spec!r}: expected CPU ids such as 0, 0-1 or 0,2")
    if isinstance(spec, int):
        spec = str(spec)
    if not isinstance(spec, str):
        return _check_ids(list(spec), str(spec))
    cpus: set[int] = set()
    for part in spec.replace(" ", "").split(","):
        cpus.update(_parse_part(part, spec))
    return sorted(cpus)


def _parse_part(part: str, spec: str) -> range:
    lo, sep, hi = part.partition("-")
    if not lo.isdigit() or (sep and not hi.isdigit()):
        raise SettingsError(f"--cpus {spec!r}: {part!r} is not a CPU id or range "
                            f"(write CPU ids as 0, 0-1 or 0,2)")
    first, last = int(lo), int(hi) if sep else int(lo)
    if last < first:
        raise SettingsError(f"--cpus {spec!r}: range {part!r} runs backwards")
    return range(first, last + 1)


def _check_ids(ids: list, spec: str) -> list[int]:
    if not ids or not all(isinstance(i, int) and not isinstance(i, bool) and i >= 0 for i in ids):
        raise SettingsError(f"--cpus {spec}: expected a non-empty list of CPU ids (integers >= 0)")
    return sorted(set(ids))


def validate_cpus(spec: str | int | Iterable[int]) -> list[int]:
    """Parse a CPU list and check that this process may run on every CPU of it."""
    if not pinnable():
        raise SettingsError("--cpus: this platform cannot pin a process to cores (needs Linux)")
    cpus = parse_cpus(spec)
    allowed = available_cpus()
    outside = [c for c in cpus if c not in allowed]
    if outside:
        raise SettingsError(f"--cpus {format_cpus(cpus)}: CPU(s) {format_cpus(outside)} not available "
                            f"on this machine; this process may use CPUs {format_cpus(allowed)} "
                            f"({len(allowed)} of {os.cpu_count()} logical CPUs)")
    return cpus


def format_cpus(cpus: Iterable[int]) -> str:
    """The compact form of a CPU list: [0, 1, 2, 5] -> '0-2,5'."""
    ids, parts = sorted(set(cpus)), []
    start = prev = None
    for cpu in ids + [None]:
        if prev is not None and cpu == prev + 1:
            prev = cpu
            continue
        if start is not None:
            parts.append(str(start) if start == prev else f"{start}-{prev}")
        start = prev = cpu
    return ",".join(parts)


def _thread_ids() -> list[int]:
    return [int(name) for name in os.listdir(_TASKS)]


@contextmanager
def pinned(cpus: list[int] | None) -> Iterator[list[int]]:
    """Pin every thread of this process to `cpus` for the block (None: leave as is); yield the CPUs in effect."""
    if cpus is None:
        yield available_cpus()
        return
    previous = {}
    for tid in _thread_ids():
        try:
            previous[tid] = os.sched_getaffinity(tid)
            os.sched_setaffinity(tid, cpus)
        except ProcessLookupError:  # the thread ended meanwhile
            continue
    try:
        yield available_cpus()
    finally:
        _restore(previous)


def _restore(previous: dict[int, set[int]]) -> None:
    main = previous.get(os.getpid()) or set().union(*previous.values())
    for tid in _thread_ids():
        try:
            os.sched_setaffinity(tid, previous.get(tid, main))
        except (ProcessLookupError, OSError):
            continue


@contextmanager
def affinity_kept() -> Iterator[None]:
    """Put the calling thread's CPU affinity back as it was after the block, whatever ran in it: OpenVINO's
    CPU plugin pins a thread that compiles or runs a model to CPUs of its own choosing, and that must not
    outlive the run (a later run in the same process would see fewer CPUs). Linux; elsewhere a no-op."""
    if not pinnable():
        yield
        return
    previous = os.sched_getaffinity(0)
    try:
        yield
    finally:
        os.sched_setaffinity(0, previous)


@contextmanager
def thread_pinned(cpus: list[int] | None) -> Iterator[None]:
    """Pin only the calling thread to `cpus` for the block (None: leave it), then restore its affinity.

    Threads it starts meanwhile inherit the mask and keep it (Linux): so the runner keeps a backend's
    thread pools on the CPUs it may use, by preparing the backend inside this block.
    """
    if cpus is None or not pinnable():
        yield
        return
    previous = os.sched_getaffinity(0)
    os.sched_setaffinity(0, cpus)
    try:
        yield
    finally:
        os.sched_setaffinity(0, previous)
