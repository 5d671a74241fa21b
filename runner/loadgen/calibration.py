"""Per-machine timing calibration of the load generator: sleep overshoot, hand-over cost, pinned or floating.

Three measurements decide how the server scenario issues queries on a machine (runner.loadgen.isolation):
- **sleep overshoot**: how late a sleep of 50-500 us ends, measured in a process started as the
  issuer process is (`_issue_loop.py --calibrate`: 1 ns timer slack, pinned to the CPU it will
  issue from). The issuer sleeps until `spin_us` before each query and spins from there, so the
  spin is this machine's p99 overshoot plus a 10 us margin (at least 20 us, at most 0.5 ms): no
  longer than the machine needs, which is what the issuer costs in CPU per query. The p99, not a
  higher percentile: the lateness is held to its tolerance at p99, and the 1% of sleeps that overshoot
  further make their queries late by the difference to the p99.9 (tens of us), which moves the issued
  gaps' distribution by ~1% x that / the mean gap, far below what a KS test of 100,000 gaps sees. The sleeps are
  taken in BLOCKS blocks and the figures come from the quieter half of them (the blocks with the
  lowest p99): a burst of other processes' work during the measurement says nothing about this
  machine's timers, and a spin sized for it is CPU thrown away (a robust minimum).
- **hand-over cost**: how long a thread of this process takes to run after another wakes it
  (a threading.Event set -> the waiter's first clock read; the GIL and the scheduler's wake-up):
  what a query costs to hand from one thread to another when the workers issue it themselves.
- **pinned or floating issuer** (`_issue_loop.py --trial`): a short Poisson schedule issued with
  that spin, alternately pinned to the issuer's CPU and floating over every CPU; the arrangement
  with the lower p99 lateness is kept (`issuer_pinning`; a tie within 1 us stays pinned). A pinned
  issuer cannot be moved off a CPU another process takes; a floating one can, but may wander.

Measuring takes about a second on an idle machine, so the result is cached per host, under
$INFERSIGHT_CACHE_DIR (default $XDG_CACHE_HOME/infersight, else ~/.cache/infersight), in a file
keyed on the host name, CPU model and kernel. A cached calibration is checked against a short
fresh probe of the sleeps (PROBE_SLEEPS, about 0.1 s, at most once a minute per process): when
its p99 or p99.9 overshoot is far above the probe's (more than twice it plus 20 us), it was measured
under load and is measured again; when the probe's is far above the cache's, the machine is busy now and
the cache, the machine's own figure, is kept (the note says so). It is also measured again when
older than MAX_AGE_DAYS (one hour when the machine was busy, load average above its CPU count,
while it was measured), when its key or format no longer matches, or when the file is damaged (the
calibration's `note` says why, and the run's system card records it). A cache that cannot be
written is not an error: the figures are used for this process and the note says they were not kept.
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
FORMAT = 2              # 2: blocks, issuer_trial_us
SLEEPS = 2_400          # sleeps measured ...
BLOCKS = 8              # ... in this many blocks, of which the quieter half gives the figures
PROBE_SLEEPS = 300      # sleeps of the probe a cached calibration is checked against
PROBE_EVERY_S = 60.0    # a process probes at most this often (per CPU)
FAR = (2.0, 20.0)       # a p99 overshoot x is far above y when x > 2 y + 20 us
HANDOVERS = 300         # thread hand-overs measured
TRIAL_QUERIES, TRIAL_QPS = 1_000, 5_000.0  # the pinned / floating trial: 0.2 s
TIE_US = 1.0            # floating is kept only when its p99 lateness is lower by more than this
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
    issuer_trial_us: dict[str, dict[str, float]] | None = None  # pinned / floating: lateness p50, p99, max
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
        """How long the issuer spins before each query: the p99 sleep overshoot + 10 us, within 20..500 us."""
        return round(min(max(self.sleep_overshoot_us["p99"] + _MARGIN_US, _MIN_SPIN_US), _MAX_SPIN_US), 1)

    @property
    def issuer_pinning(self) -> str:
        """'floating' when the trial's floating issuer was later by less at p99 (by more than TIE_US), else 'pinned'."""
        t = self.issuer_trial_us
        if not t or "pinned" not in t or "floating" not in t:
            return "pinned"
        return "floating" if t["floating"]["p99"] < t["pinned"]["p99"] - TIE_US else "pinned"

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
        if d["issuer_trial_us"]:
            d["issuer_trial_us"] = {m: {k: round(v, 1) for k, v in f.items()} for m, f in d["issuer_trial_us"].items()}
        return {**d, "spin_us": self.spin_us, "issuer_pinning": self.issuer_pinning}


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


def calibration(cpu: int | None = None, now: dt.datetime | None = None, measure_fn: Any = None,
                probe_fn: Any = None) -> Calibration:
    """This machine's calibration: the cached one while fresh and not far above a fresh probe, else measured now
    (and cached).

    `cpu`: the CPU the issuer will use (the sleeps are measured there). `now`, `measure_fn` (a function
    cpu -> Calibration) and `probe_fn` (cpu -> sleep-overshoot percentiles in us, or None) are for tests.
    """
    now = now or dt.datetime.now(dt.timezone.utc)
    path = cache_path()
    cached, why = _read(path, now)
    if cached is not None:
        cached, why = _against_probe(cached, (probe_fn or probe)(cpu))
        if cached is not None:
            return cached
    fresh = (measure_fn or measure)(cpu)
    if measure_fn is None:  # a measurement is a newer probe: the next read compares the cache with itself
        _probes[cpu] = (time.monotonic(), fresh.sleep_overshoot_us)
    note = why
    try:
        _write(path, fresh)
    except OSError as exc:
        note = "; ".join(filter(None, [why, f"not cached: cannot write {path}: {exc.strerror or exc}"]))
    return Calibration(**{**asdict(fresh), "note": note})


def _far_above(x: float, y: float) -> bool:
    return x > FAR[0] * y + FAR[1]


def _against_probe(cached: Calibration, probed: dict[str, float] | None) -> tuple[Calibration | None, str | None]:
    """The cached calibration checked against a fresh probe: (it, None) when they agree or no probe could be
    taken; (it with a note) when the machine is busy now; (None, why) when the cache was measured under load."""
    if probed is None:
        return cached, None
    for q, label in (("p99", "p99"), ("p99_9", "p99.9")):  # a busy measurement may show in its tail only
        if _far_above(cached.sleep_overshoot_us[q], probed[q]):
            return None, (f"the cached calibration (sleep overshoot {label} {cached.sleep_overshoot_us[q]:.3g} us) was "
                          f"far above a fresh probe's ({probed[q]:.3g} us): it was measured under load, "
                          f"so measured again")
    have, now_p99 = cached.sleep_overshoot_us["p99"], probed["p99"]
    if _far_above(now_p99, have):
        return Calibration(**{**asdict(cached), "note": (
            f"a fresh probe's sleep overshoot p99 ({now_p99:.3g} us) was far above the cached calibration's "
            f"({have:.3g} us): the machine is busy now; the cache, the machine's own figure, kept")}), None
    return cached, None


_probes: dict[int | None, tuple[float, dict[str, float]]] = {}  # cpu -> (monotonic time, figures): one a minute


def probe(cpu: int | None = None) -> dict[str, float] | None:
    """A short fresh measurement of the sleep overshoot (us percentiles), reused for PROBE_EVERY_S in this process."""
    seen = _probes.get(cpu)
    if seen is not None and time.monotonic() - seen[0] < PROBE_EVERY_S:
        return seen[1]
    values = np.sort(np.asarray(_sleep_overshoots(cpu, PROBE_SLEEPS), dtype=np.float64)) / 1e3
    if len(values) == 0:
        return None
    figures = _percentiles(values, with_999=True)
    _probes[cpu] = (time.monotonic(), figures)
    return figures


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
        if not isinstance(data, dict):
            raise ValueError("not a JSON object")
        if not isinstance(data.get("format"), int):
            raise ValueError("no format number")
        if data["format"] != FORMAT:
            return None, f"the cached calibration {path} was of format {data['format']}, not {FORMAT}: measured again"
        cal = Calibration(**{**data, "source": "cache", "note": None})
        measured = dt.datetime.fromisoformat(cal.measured_at)
        for name, keys in (("sleep_overshoot_us", ("p50", "p99", "p99_9", "max")), ("handover_us", ("p50", "p99", "max"))):
            _numbers(getattr(cal, name), name, keys)
        if cal.issuer_trial_us is not None:
            for mode in ("pinned", "floating"):
                _numbers((cal.issuer_trial_us if isinstance(cal.issuer_trial_us, dict) else {}).get(mode),
                         f"issuer_trial_us.{mode}", ("p50", "p99", "max"))
    except (ValueError, TypeError) as exc:
        return None, f"the cached calibration {path} was damaged ({_first_line(exc)}): measured again"
    if cal.key != _key(*_identity()):
        return None, f"the cached calibration {path} was for another host, CPU or kernel: measured again"
    age = now - (measured if measured.tzinfo else measured.replace(tzinfo=dt.timezone.utc))
    if age > dt.timedelta(days=MAX_AGE_DAYS):
        return None, f"the cached calibration was {age.days} days old (stale after {MAX_AGE_DAYS}): measured again"
    if cal.load_1m is not None and cal.cpus and cal.load_1m > cal.cpus and age > BUSY_MAX_AGE:
        return None, (f"the cached calibration was measured on a busy machine (load average {cal.load_1m:g} on "
                      f"{cal.cpus} CPUs) over an hour ago: measured again")
    return cal, None


def _numbers(values: Any, name: str, keys: tuple[str, ...]) -> None:
    if not isinstance(values, dict) or any(not isinstance(values.get(k), (int, float)) for k in keys):
        raise ValueError(f"{name} must hold numbers {', '.join(keys)}")


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
    """Measure this machine now: sleep overshoot in an issuer-like process (its quieter blocks), hand-over cost
    in this one, then a pinned and a floating issuer with the spin that gives."""
    overshoot = quieter_half(np.asarray(_sleep_overshoots(cpu, SLEEPS), dtype=np.float64) / 1e3, BLOCKS)
    handover = np.sort(np.asarray(_handovers(HANDOVERS), dtype=np.float64)) / 1e3
    host, cpu_name, kernel = _identity()
    cal = Calibration(host=host, cpu_model=cpu_name, kernel=kernel,
                      measured_at=dt.datetime.now(dt.timezone.utc).isoformat(timespec="seconds"),
                      sleep_overshoot_us=_percentiles(overshoot, with_999=True),
                      handover_us=_percentiles(handover), samples=len(overshoot), **_load())
    return Calibration(**{**asdict(cal), "issuer_trial_us": _trial(cpu, cal.spin_us)})


def quieter_half(values: np.ndarray, blocks: int) -> np.ndarray:
    """The values (sorted) of the `blocks` consecutive blocks' quieter half: the blocks with the lowest p99."""
    parts = [np.sort(p) for p in np.array_split(values, blocks) if len(p)]
    parts.sort(key=lambda p: p[min(len(p) - 1, int(len(p) * 0.99))])
    return np.sort(np.concatenate(parts[:max(1, len(parts) // 2)]))


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


def _loop(*args: Any) -> Any:
    """What `_issue_loop.py ARGS` prints (JSON), run as the issuer is; raises OSError/SubprocessError/ValueError."""
    cmd = [sys.executable, "-I", "-S", str(Path(_issue_loop.__file__)), *map(str, args)]
    return json.loads(subprocess.run(cmd, capture_output=True, text=True, timeout=120, check=True).stdout)


def _sleep_overshoots(cpu: int | None, count: int) -> list[int]:
    try:
        values = _loop("--calibrate", count, *([] if cpu is None else [cpu]))
    except (OSError, subprocess.SubprocessError, ValueError):
        values = _issue_loop.calibrate(count)  # measured here instead: the same loop, this process's slack
    return [int(v) for v in values]


def _trial(cpu: int | None, spin_us: float) -> dict[str, dict[str, float]] | None:
    """Lateness figures (us) of a short schedule issued pinned to `cpu` and floating; None where it cannot run."""
    if cpu is None and not hasattr(os, "sched_getaffinity"):
        return None
    cpu = max(os.sched_getaffinity(0)) if cpu is None else cpu
    try:
        got = _loop("--trial", TRIAL_QUERIES, TRIAL_QPS, int(spin_us * 1_000), cpu)
        return {mode: _percentiles(np.sort(np.asarray(got[mode], dtype=np.float64)) / 1e3)
                for mode in ("pinned", "floating")}
    except (OSError, subprocess.SubprocessError, ValueError, KeyError, TypeError):
        return None


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
