"""Compliance verdicts (compliance/<system>/<model>/<scenario>/TEST*/verify_*.txt) and power figures.

A test's verdict is "PASS" when every verify file of it says so, "FAIL" when one says it
failed, "UNREADABLE" when a file gives no verdict. TEST01/04/05 files end in "TEST PASS" or
"TEST FAIL"; TEST06 (LLMs) prints "<check> pass: True|False" lines. TEST01's accuracy check may
fail in deterministic mode when the submitter shows instead that the accuracy of the compliance
run is within 1% (0.1% for 99.9 models) of the baseline: TEST01/accuracy/baseline_accuracy.txt
and compliance_accuracy.txt. Where those files are published they decide; where they are not
(trees trimmed of them), the verdict stays "FAIL": it is what the files at hand say.

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

__all__ = ["read_verdicts", "is_compliant", "read_power"]

_TEST06 = re.compile(r"^(.+ check) pass:\s*(True|False)\s*$", re.MULTILINE)
_POWER_TIME = "%m-%d-%Y %H:%M:%S.%f"


def read_verdicts(folder: Path | None, metric: str = "", tolerance_pct: float = 1.0) -> dict[str, str]:
    """TEST name -> verdict for every TEST* folder under `folder` (empty if there is none).

    `metric` and `tolerance_pct` judge TEST01's accuracy fallback (see the module doc).
    """
    if folder is None or not folder.is_dir():
        return {}
    verdicts = {}
    for test in sorted(p for p in folder.iterdir() if p.is_dir() and p.name.upper().startswith("TEST")):
        files = sorted(test.glob("verify_*.txt"))
        found = {f.name: _verdict(f) for f in files}
        if test.name.upper() == "TEST01" and found.get("verify_accuracy.txt") == "FAIL":
            found["verify_accuracy.txt"] = _test01_fallback(test / "accuracy", metric, tolerance_pct)
        verdicts[test.name] = _combine(list(found.values())) if files else "UNREADABLE"
    return verdicts


def _test01_fallback(folder: Path, metric: str, tolerance_pct: float) -> str:
    """PASS when the compliance run's accuracy is within tolerance of the baseline's, else FAIL."""
    try:
        baseline = parse_accuracy((folder / "baseline_accuracy.txt").read_bytes()).get(metric)
        compliance = parse_accuracy((folder / "compliance_accuracy.txt").read_bytes()).get(metric)
    except OSError:
        return "FAIL"
    if not baseline or compliance is None:
        return "FAIL"
    return "PASS" if abs(1 - compliance / baseline) * 100 <= tolerance_pct else "FAIL"


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
        return "PASS" if all(flag == "True" for _, flag in checks) else "FAIL"
    return "UNREADABLE"


def _combine(verdicts: list[str]) -> str:
    for worst in ("FAIL", "UNREADABLE"):
        if worst in verdicts:
            return worst
    return "PASS"


def is_compliant(required: tuple[str, ...], verdicts: dict[str, str]) -> bool:
    """Every test the benchmark requires is present and passed (and no present test failed)."""
    if any(v != "PASS" for v in verdicts.values()):
        return False
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
