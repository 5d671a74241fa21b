"""benchmarks/bench_server.py's peak comparison: both load generators searched by the project's own peak search
(runner.peak), their probes interleaved one by one, on fake generators of known capacity (no timing involved)."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "benchmarks"))

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
