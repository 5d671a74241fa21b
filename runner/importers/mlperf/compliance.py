"""Compliance verdicts (compliance/<system>/<model>/<scenario>/TEST*/verify_*.txt) and power figures.

Each test has the verify files MLCommons' checker reads (TEST01: verify_accuracy.txt and
verify_performance.txt; TEST04, TEST05: verify_performance.txt; TEST06: verify_accuracy.txt). A
test's verdict is "PASS" when every one of them says so, "FAIL" when one says it failed,
"MISSING" when a required test's folder or one of its verify files is absent, "UNREADABLE" when a
file gives no verdict. TEST01/04/05 files end in "TEST PASS" or "TEST FAIL"; TEST06 (LLMs)
prints "<check> pass: True|False|Skipped" lines. TEST01's accuracy check may fail in deterministic
mode; the checker then accepts the result when TEST01/accuracy/ holds baseline_accuracy.txt and
compliance_accuracy.txt whose every quality metric differs by at most 1% (0.1% for 99.9 models):
|1 - baseline / compliance| x 100. Where that folder is missing (trees trimmed of it) the verdict is
"FAIL": it is what the files at hand say. Only the tests the round requires decide compliance.

Power (results/.../performance/power/ and run_1/spl.txt, MLPerf power results): the average of
the analyser's positive Watts readings strictly inside the detail log's power_begin..power_end
window, as MLCommons' checker computes it; for SingleStream and MultiStream also the energy
per query in millijoules (average W x window seconds x 1000 / result_query_count).
"""

from __future__ import annotations

import re
from datetime import datetime
from pathlib import Path
from typing import Any

from runner.importers.mlperf._numbers import as_number
from runner.importers.mlperf.accuracy import parse_accuracy
from runner.importers.mlperf.detail import DetailLog

__all__ = ["read_verdicts", "is_compliant", "read_power", "VERIFY_FILES"]

_TEST06 = re.compile(r"^(.+ check) pass:\s*(True|False|Skipped)\s*$", re.MULTILINE)
_POWER_TIME = "%m-%d-%Y %H:%M:%S.%f"
# test -> the verify files the checker reads for it (tests not listed: every verify_*.txt present)
VERIFY_FILES = {"TEST01": ("verify_accuracy.txt", "verify_performance.txt"),
                "TEST04": ("verify_performance.txt",), "TEST05": ("verify_performance.txt",),
                "TEST06": ("verify_accuracy.txt",)}


def read_verdicts(folder: Path | None, required: tuple[str, ...] = (), metrics: tuple[str, ...] = (),
                  tolerance_pct: float = 1.0) -> dict[str, str]:
    """TEST name -> verdict for every required test and every TEST* folder present under `folder`.

    `metrics` and `tolerance_pct` judge TEST01's accuracy fallback (see the module doc).
    """
    present = {}
    if folder is not None and folder.is_dir():
        present = {p.name.upper(): p for p in folder.iterdir()
                   if p.is_dir() and p.name.upper().startswith("TEST")}
    verdicts = {}
    for test in sorted(set(present) | set(required)):
        verdicts[test] = _test_verdict(test, present[test], metrics, tolerance_pct) if test in present else "MISSING"
    return verdicts


def _test_verdict(test: str, folder: Path, metrics: tuple[str, ...], tolerance_pct: float) -> str:
    names = VERIFY_FILES.get(test) or tuple(sorted(p.name for p in folder.glob("verify_*.txt")))
    if not names or not all((folder / name).is_file() for name in names):
        return "MISSING"
    found = {name: _verdict(folder / name) for name in names}
    if test == "TEST01" and found.get("verify_accuracy.txt") == "FAIL":
        found["verify_accuracy.txt"] = _test01_fallback(folder / "accuracy", metrics, tolerance_pct)
    return _combine(list(found.values()))


def _test01_fallback(folder: Path, metrics: tuple[str, ...], tolerance_pct: float) -> str:
    """PASS when every quality metric of the compliance run is within tolerance of the baseline's, else FAIL."""
    try:
        baseline = parse_accuracy((folder / "baseline_accuracy.txt").read_bytes())[0]
        compliance = parse_accuracy((folder / "compliance_accuracy.txt").read_bytes())[0]
    except OSError:
        return "FAIL"
    for metric in metrics:
        base, comp = baseline.get(metric), compliance.get(metric)
        if not base or not comp or abs(1 - base / comp) * 100 > tolerance_pct:
            return "FAIL"
    return "PASS" if metrics else "FAIL"


def _verdict(path: Path) -> str:
    try:
        text = path.read_text(encoding="utf-8", errors="replace")
    except OSError:
        return "UNREADABLE"
    if "TEST FAIL" in text:
        return "FAIL"
    if "TEST PASS" in text:
        return "PASS"
    checks = _TEST06.findall(text)
    if checks:
        return "FAIL" if any(flag == "False" for _, flag in checks) else "PASS"
    return "UNREADABLE"


def _combine(verdicts: list[str]) -> str:
    for worst in ("FAIL", "MISSING", "UNREADABLE"):
        if worst in verdicts:
            return worst
    return "PASS"


def is_compliant(required: tuple[str, ...], verdicts: dict[str, str]) -> bool:
    """Every test the round requires of the benchmark is present and passed (others are not judged)."""
    return all(verdicts.get(test) == "PASS" for test in required)


def read_power(spl: Path | None, detail: DetailLog | None, scenario: str) -> tuple[dict[str, Any] | None, str]:
    """(power figures, "") or (None, why not) for one result's run_1/spl.txt."""
    if spl is None or not spl.is_file():
        return None, ""
    if detail is None:
        return None, "power readings present but no detail log gives the measurement window"
    window = _window(detail)
    if window is None:
        return None, "the detail log has no readable power_begin/power_end"
    try:
        watts = _readings(spl, *window)
    except OSError as exc:
        return None, f"cannot read: {exc.strerror or exc}"
    if not watts:
        return None, "no positive Watts reading inside the power_begin..power_end window"
    return _figures(watts, window, detail, scenario), ""


def _window(detail: DetailLog) -> tuple[datetime, datetime] | None:
    try:
        begin = datetime.strptime(str(detail.get("power_begin")), _POWER_TIME)
        end = datetime.strptime(str(detail.get("power_end")), _POWER_TIME)
    except ValueError:
        return None
    return (begin, end) if end > begin else None


def _readings(spl: Path, begin: datetime, end: datetime) -> list[float]:
    watts = []
    for line in spl.read_text(encoding="utf-8", errors="replace").splitlines():
        fields = line.split(",")
        if len(fields) < 4 or fields[0] != "Time" or fields[2] != "Watts":
            continue
        try:
            stamp, value = datetime.strptime(fields[1], _POWER_TIME), float(fields[3])
        except ValueError:
            continue
        if begin < stamp < end and value > 0:
            watts.append(value)
    return watts


def _figures(watts: list[float], window: tuple[datetime, datetime], detail: DetailLog,
             scenario: str) -> dict[str, Any]:
    average = sum(watts) / len(watts)
    seconds = (window[1] - window[0]).total_seconds()
    out = {"avg_power_w": average, "readings": len(watts), "window_s": seconds,
           "metric": "avg_power_w", "value": average, "units": "Watts"}
    queries = as_number(detail.get("result_query_count"))
    if scenario in ("single_stream", "multi_stream"):
        if not queries:
            return {**out, "metric": None, "value": None, "units": None}
        energy = average * seconds * 1000 / queries
        out.update(energy_per_query_mj=energy, metric="energy_per_query_mj", value=energy, units="millijoules")
    return out
