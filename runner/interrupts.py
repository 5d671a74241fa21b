"""Ctrl-C (SIGINT) and SIGTERM while a command or a run is watched: each is raised as KeyboardInterrupt where
it lands, and counted.

The count is what makes an interrupt stick: library code that swallows the exception (a bare `except:`
in an import, a retry loop) cannot let an interrupted run carry on to be stored complete, because the
run asks `check()` before it records anything as finished and before it creates its row.
Watches nest (the command line watches a whole command, a run watches itself); only the main thread
can install signal handlers, so elsewhere a watch does nothing.
"""

from __future__ import annotations

import signal
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

__all__ = ["watched", "check", "SIGNALS"]

SIGNALS = (signal.SIGINT, signal.SIGTERM)
_received = [0]      # signals received while watched, ever (a count, so watches need not reset it)
_since: list[int] = []  # the count when each active watch began, outermost first


@contextmanager
def watched() -> Iterator[None]:
    """Raise KeyboardInterrupt for Ctrl-C and SIGTERM in the block, and remember each (see check)."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    previous = {sig: signal.signal(sig, _interrupt) for sig in SIGNALS}
    _since.append(_received[0])
    try:
        yield
    finally:
        _since.pop()
        for sig, handler in previous.items():
            signal.signal(sig, handler)


def _interrupt(signum: int, frame: Any) -> None:
    _received[0] += 1
    raise KeyboardInterrupt


def check() -> None:
    """KeyboardInterrupt if Ctrl-C or SIGTERM arrived since the outermost active watch began, even if the
    exception it raised was swallowed on its way."""
    if _since and _received[0] > _since[0]:
        raise KeyboardInterrupt
