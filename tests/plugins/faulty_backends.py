"""Backends with injected faults, for sweep isolation tests (not shipped; named in $INFERSIGHT_EXTRA_PLUGINS).

Each fails for real inside the cell's own process: a segmentation fault through ctypes, a hang
that ignores SIGTERM. They answer like the null backend until the fault.
"""

from __future__ import annotations

import ctypes
import signal
import time

from runner.backends.null import NullBackend

__all__ = ["SegfaultBackend", "HangBackend"]

_FAULT_AT_BATCH = 50


class SegfaultBackend(NullBackend):
    """Reads address 0 on its 50th batch: the process dies of SIGSEGV."""

    name = "segfault"

    def run_batch(self, inputs):
        self.calls = getattr(self, "calls", 0) + 1
        if self.calls == _FAULT_AT_BATCH:
            ctypes.string_at(0)
        return super().run_batch(inputs)


class HangBackend(NullBackend):
    """Blocks SIGTERM and sleeps for an hour on its 50th batch: only SIGKILL ends it."""

    name = "hang"

    def run_batch(self, inputs):
        self.calls = getattr(self, "calls", 0) + 1
        if self.calls == _FAULT_AT_BATCH:
            signal.pthread_sigmask(signal.SIG_BLOCK, {signal.SIGTERM})
            time.sleep(3600)
        return super().run_batch(inputs)
