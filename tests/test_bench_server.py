"""The logic of the load-generator benchmarks, with no timing involved: bench_server's peak comparison (both load
generators searched by the project's own peak search, runner.peak, probes interleaved one by one; fake generators
of known capacity) and the issuer's spin rule on bench_issuer_spin's simulated clock (the real issue loop)."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import numpy as np
import pytest

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "benchmarks"))

import bench_issuer_spin  # noqa: E402
import bench_server  # noqa: E402


def _args(**kw) -> argparse.Namespace:
    base = dict(start_qps=50_000.0, tolerance=0.03, repeats_near_edge=2, edge_width=0.1, duration_ms=1, min_queries=1)
    return argparse.Namespace(**{**base, **kw})


def _generator(name: str, capacity: float, calls: list, limit_above: float | None = None):
    def run(qps, duration_ms, min_queries):
        calls.append(name)
        if limit_above is not None and qps > limit_above:
            return None, None, None, {}  # a load-generator limit: inconclusive
        return qps <= capacity, None, None, {}
    return run


def test_both_peaks_come_from_one_search_method_with_probes_taken_in_turn(monkeypatch, capsys):
    calls: list[str] = []
    monkeypatch.setattr(bench_server, "ours", _generator("ours", 600_000, calls))
    monkeypatch.setattr(bench_server, "loadgen", _generator("lg", 400_000, calls))
    bench_server.peak_qps(_args())
    out = capsys.readouterr().out
    line = next(x for x in out.splitlines() if x.startswith("(a)"))
    ours = float(line.split("infersight ")[1].split()[0].replace(",", ""))
    lg = float(line.split("LoadGen ")[1].split()[0].replace(",", ""))
    assert 600_000 / 1.03 <= ours <= 600_000 and 400_000 / 1.03 <= lg <= 400_000  # within the 3% resolution
    assert f"ratio {ours / lg:.2f}x" in line and "2 runs per QPS within 10% of the edge" in line
    both = min(calls.count("ours"), calls.count("lg"))
    assert all(calls[i] != calls[i + 1] for i in range(2 * both - 1))  # alternate while both search
    assert "P(VALID) by QPS:" in out and "2/2" in out  # the peak was run twice, VALID both times


def test_a_generator_that_cannot_keep_the_schedule_stops_its_own_search_only(monkeypatch, capsys):
    calls: list[str] = []
    monkeypatch.setattr(bench_server, "ours", _generator("ours", 600_000, calls, limit_above=150_000))
    monkeypatch.setattr(bench_server, "loadgen", _generator("lg", 400_000, calls))
    bench_server.peak_qps(_args())
    line = next(x for x in capsys.readouterr().out.splitlines() if x.startswith("(a)"))
    assert "infersight: stopped at 200000 QPS: the load generator could not keep the schedule" in line
    assert float(line.split("LoadGen ")[1].split()[0].replace(",", "")) == pytest.approx(400_000, rel=0.03)


def test_the_calibrations_spin_keeps_the_schedule_at_less_cpu_than_a_p99_9_spin():
    from runner.loadgen.calibration import Calibration

    drawn = bench_issuer_spin.OvershootClock(seed=2).draw(100_000) / 1e3
    figures = {"p50": float(np.percentile(drawn, 50)), "p99": float(np.percentile(drawn, 99)),
               "p99_9": float(np.percentile(drawn, 99.9)), "max": float(drawn.max())}
    cal = Calibration(host="h", cpu_model="c", kernel="k", measured_at="2027-02-01T11:00:00+00:00",
                      sleep_overshoot_us=figures, handover_us={"p50": 1.0, "p99": 2.0, "max": 3.0}, samples=50_000)
    now = bench_issuer_spin.simulate(10_000.0, 2.0, cal.spin_us)
    before = bench_issuer_spin.simulate(10_000.0, 2.0, figures["p99_9"] + 10)
    assert now["late_p99_us"] <= 0.25 and now["late_p999_us"] < figures["p99_9"] - figures["p99"]  # 0.25 us: a read
    assert now["ks_p"] > 0.01 and now["schedule_ks_p"] > 0.01
    assert now["cores_per_1k_qps"] < 0.8 * before["cores_per_1k_qps"]
