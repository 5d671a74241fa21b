"""Per-machine timing calibration of the load generator: sleep overshoot and hand-over cost.

Two figures decide how the server scenario issues queries on a machine (runner.loadgen.isolation):
- **sleep overshoot**: how late a sleep of 50-500 us ends, measured in a process started as the
  issuer process is (`_issue_loop.py --calibrate`: 1 ns timer slack, pinned to the CPU it will
  issue from). The issuer sleeps until `spin_us` before each query and spins from there, so the
  spin is this machine's p99.9 overshoot plus a 10 us margin (at least 20 us, at most 0.5 ms): no
  longer than the machine needs, which is what the issuer costs in CPU per query.
- **hand-over cost**: how long a thread of this process takes to run after another wakes it
  (a threading.Event set -> the waiter's first clock read; the GIL and the scheduler's wake-up):
  what a query costs to hand from one thread to another when the workers issue it themselves.

Measuring takes about half a second on an idle machine, so the result is cached per host, under
$INFERSIGHT_CACHE_DIR (default $XDG_CACHE_HOME/infersight, else ~/.cache/infersight), in a file
keyed on the host name, CPU model and kernel; it is measured again when older than MAX_AGE_DAYS,
(one hour when the machine was busy, load average above its CPU count, while it was measured: its
figures then describe the other processes more than the machine), when its key no longer matches,
or when the file is damaged (the calibration's `note` says so,
and the run's system card records it). A cache that cannot be written is not an error: the
figures are used for this process and the note says they were not kept.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import json
import os
import platform
import subprocess
import sys
import tempfile
import threading
import time
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import numpy as np

from runner.loadgen import _issue_loop

__all__ = ["Calibration", "calibration", "measure", "cache_path", "MAX_AGE_DAYS", "FORMAT"]

MAX_AGE_DAYS = 7
BUSY_MAX_AGE = dt.timedelta(hours=1)  # a calibration taken while the machine was busy is kept this long only
FORMAT = 1
SLEEPS = 1_500          # sleeps measured
HANDOVERS = 300         # thread hand-overs measured
# a spin longer than ~0.5 ms cannot help: overshoot beyond that is the run queue's (a loaded machine), and a
# process spinning for milliseconds uses up its scheduler slice and is preempted right where it must not be
_MIN_SPIN_US, _MAX_SPIN_US, _MARGIN_US = 20.0, 500.0, 10.0
_THREAD_SPIN_US = 50.0  # a worker issuing its own queries spins for this long before each (server._SPIN_NS)


@dataclass(frozen=True)
class Calibration:
    """A machine's measured timing (µs) and where it came from."""

    host: str
    cpu_model: str
    kernel: str
    measured_at: str                      # ISO 8601, UTC
    sleep_overshoot_us: dict[str, float]  # p50, p99, p99_9, max
    handover_us: dict[str, float]         # p50, p99, max
    samples: int
    load_1m: float | None = None          # the machine's load average when measured (None: unknown)
    cpus: int | None = None               # and its logical CPUs
    source: str = "measured"              # measured | cache
    note: str | None = None               # why it was measured again, or why it was not cached
    format: int = FORMAT

    @property
    def key(self) -> str:
        return _key(self.host, self.cpu_model, self.kernel)

    @property
    def spin_us(self) -> float:
        """How long the issuer spins before each query: the p99.9 sleep overshoot + 10 us, within 20..500 us."""
        return round(min(max(self.sleep_overshoot_us["p99_9"] + _MARGIN_US, _MIN_SPIN_US), _MAX_SPIN_US), 1)

    @property
    def process_lateness_us(self) -> float:
        """Expected p99 lateness of an issuer process on a CPU of its own: overshoot beyond the spin."""
        return max(0.0, self.sleep_overshoot_us["p99"] - self.spin_us)

    @property
    def thread_lateness_us(self) -> float:
        """Expected p99 lateness of workers issuing their own queries: a hand-over plus overshoot beyond their spin."""
        return self.handover_us["p99"] + max(0.0, self.sleep_overshoot_us["p99"] - _THREAD_SPIN_US)

    def to_dict(self) -> dict[str, Any]:
        """The figures as the system card records them (rounded to 0.1 us), with the spin they give."""
        d = asdict(self)
        for name in ("sleep_overshoot_us", "handover_us"):
            d[name] = {k: round(v, 1) for k, v in d[name].items()}
        return {**d, "spin_us": self.spin_us}


def _key(host: str, cpu: str, kernel: str) -> str:
    return hashlib.sha256(f"{host}\0{cpu}\0{kernel}".encode()).hexdigest()[:16]


def _identity() -> tuple[str, str, str]:
    from runner.cards.system import cpu_model

    return platform.node() or "localhost", cpu_model(), platform.release()


def cache_dir() -> Path:
    explicit = os.environ.get("INFERSIGHT_CACHE_DIR")
    if explicit:
        return Path(explicit)
    base = os.environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
    return Path(base) / "infersight"


def cache_path() -> Path:
    """This host's calibration file."""
    return cache_dir() / f"timing-{_key(*_identity())}.json"


def calibration(cpu: int | None = None, now: dt.datetime | None = None, measure_fn: Any = None) -> Calibration:
    """This machine's calibration: the cached one while fresh, else measured now (and cached).

    `cpu`: the CPU the issuer will use (the sleeps are measured there). `now` and `measure_fn`
    (a function cpu -> Calibration) are for tests.
    """
    now = now or dt.datetime.now(dt.timezone.utc)
    path = cache_path()
    cached, why = _read(path, now)
    if cached is not None:
        return cached
    fresh = (measure_fn or measure)(cpu)
    note = why
    try:
        _write(path, fresh)
    except OSError as exc:
        note = "; ".join(filter(None, [why, f"not cached: cannot write {path}: {exc.strerror or exc}"]))
    return Calibration(**{**asdict(fresh), "note": note})


def _read(path: Path, now: dt.datetime) -> tuple[Calibration | None, str | None]:
    """(the cached calibration if usable, else None with why it was measured again; None when there was no file)."""
    try:
        text = path.read_text(encoding="utf-8")
    except (FileNotFoundError, NotADirectoryError):
        return None, None
    except OSError as exc:
        return None, f"the cached calibration {path} could not be read ({exc.strerror or exc}): measured again"
    try:
        data = json.loads(text)
        cal = Calibration(**{**data, "source": "cache", "note": None})
        measured = dt.datetime.fromisoformat(cal.measured_at)
        for name, keys in (("sleep_overshoot_us", ("p50", "p99", "p99_9", "max")), ("handover_us", ("p50", "p99", "max"))):
            values = getattr(cal, name)
            if not isinstance(values, dict) or any(not isinstance(values.get(k), (int, float)) for k in keys):
                raise ValueError(f"{name} must hold numbers {', '.join(keys)}")
    except (ValueError, TypeError) as exc:
        return None, f"the cached calibration {path} was damaged ({_first_line(exc)}): measured again"
    if cal.format != FORMAT or cal.key != _key(*_identity()):
        return None, f"the cached calibration {path} was for another host, CPU or kernel: measured again"
    age = now - (measured if measured.tzinfo else measured.replace(tzinfo=dt.timezone.utc))
    if age > dt.timedelta(days=MAX_AGE_DAYS):
        return None, f"the cached calibration was {age.days} days old (stale after {MAX_AGE_DAYS}): measured again"
    if cal.load_1m is not None and cal.cpus and cal.load_1m > cal.cpus and age > BUSY_MAX_AGE:
        return None, (f"the cached calibration was measured on a busy machine (load average {cal.load_1m:g} on "
                      f"{cal.cpus} CPUs) over an hour ago: measured again")
    return cal, None


def _write(path: Path, cal: Calibration) -> None:
    """Write atomically (a temporary file renamed over the old one): never a half-written file."""
    path.parent.mkdir(parents=True, exist_ok=True)
    data = {k: v for k, v in asdict(cal).items() if k not in ("source", "note")}
    fd, tmp = tempfile.mkstemp(prefix=".timing-", dir=path.parent)
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as f:
            json.dump(data, f, indent=1)
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def measure(cpu: int | None = None) -> Calibration:
    """Measure this machine now: sleep overshoot in an issuer-like process, hand-over cost in this one."""
    overshoot = np.sort(np.asarray(_sleep_overshoots(cpu), dtype=np.float64)) / 1e3
    handover = np.sort(np.asarray(_handovers(HANDOVERS), dtype=np.float64)) / 1e3
    host, cpu_name, kernel = _identity()
    return Calibration(host=host, cpu_model=cpu_name, kernel=kernel,
                       measured_at=dt.datetime.now(dt.timezone.utc).isoformat(timespec="seconds"),
                       sleep_overshoot_us=_percentiles(overshoot, with_999=True),
                       handover_us=_percentiles(handover), samples=len(overshoot), **_load())


def _load() -> dict[str, Any]:
    try:
        return {"load_1m": round(os.getloadavg()[0], 2), "cpus": os.cpu_count()}
    except (OSError, AttributeError):
        return {}


def _percentiles(ordered: np.ndarray, with_999: bool = False) -> dict[str, float]:
    pick = lambda q: float(ordered[min(len(ordered) - 1, int(len(ordered) * q))])  # noqa: E731 - LoadGen's convention
    out = {"p50": pick(0.5), "p99": pick(0.99)}
    if with_999:
        out["p99_9"] = pick(0.999)
    return {**out, "max": float(ordered[-1])}


def _sleep_overshoots(cpu: int | None) -> list[int]:
    cmd = [sys.executable, "-I", "-S", str(Path(_issue_loop.__file__)), "--calibrate", str(SLEEPS)]
    try:
        done = subprocess.run(cmd + ([] if cpu is None else [str(cpu)]), capture_output=True, text=True,
                              timeout=120, check=True)
        values = json.loads(done.stdout)
    except (OSError, subprocess.SubprocessError, ValueError):
        values = _issue_loop.calibrate(SLEEPS)  # measured here instead: the same loop, this process's slack
    return [int(v) for v in values]


def _handovers(count: int) -> list[int]:
    """Wake-up delays (ns) of a thread woken `count` times by this one."""
    wake, ready = threading.Event(), threading.Event()
    sent, got = [0] * count, [0] * count

    def waiter() -> None:
        for i in range(count):
            ready.set()
            wake.wait()
            got[i] = time.perf_counter_ns()
            wake.clear()

    t = threading.Thread(target=waiter, name="calibration-waiter", daemon=True)
    t.start()
    for i in range(count):
        ready.wait()
        ready.clear()
        time.sleep(50e-6)  # the waiter is asleep in wait()
        sent[i] = time.perf_counter_ns()
        wake.set()
    t.join()
    return [g - s for g, s in zip(got, sent)]


def _first_line(exc: BaseException) -> str:
    return (str(exc).strip() or type(exc).__name__).splitlines()[0][:200]
