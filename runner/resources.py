"""What a run costs the machine: peak resident memory, CPU utilisation, GPU memory where present.

Peak RSS is a property of the process: on Linux the kernel's high-water mark (VmHWM) is
reset at the start of a run (writing 5 to /proc/self/clear_refs) and read at its end, so it
covers exactly the run; where that is impossible the lifetime peak (getrusage ru_maxrss) is
reported and says so. CPU utilisation is process CPU time (all threads) / wall time / cores
the process may use, over the scenario's timed part.
"""

from __future__ import annotations

import os
import re
import resource
import shutil
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from runner.cpus import available_cpus

__all__ = ["start_run_window", "peak_rss", "memory_summary", "CpuMeter", "gpu_memory_used_bytes"]

_STATUS = Path("/proc/self/status")
_CLEAR_REFS = Path("/proc/self/clear_refs")
_window_reset = False


def start_run_window() -> bool:
    """Reset the process's peak-RSS mark so `peak_rss` covers what follows; False if it cannot be reset."""
    global _window_reset
    try:
        _CLEAR_REFS.write_text("5")
        _window_reset = _vm_hwm_bytes() is not None
    except OSError:
        _window_reset = False
    return _window_reset


def peak_rss() -> dict[str, Any]:
    """Peak resident memory since `start_run_window` (or over the process's life where it could not reset)."""
    hwm = _vm_hwm_bytes() if _window_reset else None
    if hwm is not None:
        return {"peak_rss_bytes": hwm, "peak_rss_scope": "run"}
    maxrss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    factor = 1 if sys.platform == "darwin" else 1024  # bytes on macOS, KiB on Linux
    return {"peak_rss_bytes": int(maxrss) * factor, "peak_rss_scope": "process lifetime"}


def memory_summary() -> dict[str, Any]:
    """Peak RSS of the run, and the GPU memory this process holds where an NVIDIA GPU is in use."""
    gpu = gpu_memory_used_bytes(os.getpid())
    return {**peak_rss(), **({"gpu_memory_used_bytes": gpu} if gpu is not None else {})}


def _vm_hwm_bytes() -> int | None:
    try:
        match = re.search(r"^VmHWM:\s+(\d+)\s+kB", _STATUS.read_text(), re.MULTILINE)
    except OSError:
        return None
    return int(match.group(1)) * 1024 if match else None


@dataclass
class CpuMeter:
    """Process CPU time and wall time from `start()`; `result()` gives the utilisation of the usable cores."""

    wall_ns: int = 0
    cpu_ns: int = 0

    def start(self) -> None:
        """Mark the start of the measured span (called on the thread that runs the scenario)."""
        self.wall_ns, self.cpu_ns = time.perf_counter_ns(), time.process_time_ns()

    def result(self, span: str) -> dict[str, Any]:
        """cpu_utilisation (0..1 of the cores this process may use), CPU seconds, wall seconds, cores."""
        wall = max(time.perf_counter_ns() - self.wall_ns, 1)
        cpu = time.process_time_ns() - self.cpu_ns
        cores = len(available_cpus())
        return {"cpu_utilisation": cpu / wall / cores, "cpu_time_s": cpu / 1e9, "cpu_wall_s": wall / 1e9,
                "cpu_cores_available": cores, "cpu_utilisation_span": span}


def gpu_memory_used_bytes(pid: int) -> int | None:
    """GPU memory held by process `pid` now, from nvidia-smi (None without an NVIDIA GPU or a context)."""
    exe = shutil.which("nvidia-smi")
    if not exe:
        return None
    try:
        text = subprocess.run([exe, "--query-compute-apps=pid,used_memory", "--format=csv,noheader,nounits"],
                              capture_output=True, text=True, timeout=10, check=True).stdout
    except (OSError, subprocess.SubprocessError):
        return None
    used = [int(mib) for p, mib in (line.split(",")[:2] for line in text.splitlines() if "," in line)
            if p.strip() == str(pid) and mib.strip().isdigit()]
    return sum(used) * 2**20 if used else None
