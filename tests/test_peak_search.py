"""Peak-QPS search: bracketing and bisection with repeats near the knee, P(VALID), probes stored as runs.

The search logic runs against synthetic systems whose VALID/INVALID outcome is a known function
of the target QPS; the whole stack (stored runs linked to the search) against the simulated
system of known capacity from test_server (a fake clock moved only by the system under test);
the CLI against the null backend.
"""

from __future__ import annotations

import json
from collections import defaultdict

import pytest

from conftest import cli
from runner import registry
from runner.peak import PeakSearch, PeakSettings, Probe, run_peak_search
from runner.run import RunRequest
from runner.scenarios import server
from runner.store.searches import SearchLog
from test_server import CLOCK, CapacityBackend

CAPACITY = 10_000.0  # queries/s of CapacityBackend on one worker (0.1 ms a query)


def knee(capacity: float, flip_from: float):
    """A system VALID below flip_from, INVALID at or above capacity, alternating VALID/INVALID in between."""
    seen: dict[float, int] = defaultdict(int)

    def probe(qps: float) -> Probe:
        seen[qps] += 1
        valid = qps < flip_from or (qps < capacity and seen[qps] % 2 == 1)
        return Probe(qps, valid, run_id=len(seen))
    return probe


def test_search_finds_a_sharp_knee_within_tolerance():
    s = PeakSettings(tolerance=0.02, repeats_near_edge=3)
    result = PeakSearch(s, knee(CAPACITY, CAPACITY), start_qps=100).run()
    peak, (lo, hi) = result["peak_qps"], result["bracket"]
    assert CAPACITY / 1.02 <= peak < CAPACITY
    assert lo == peak and CAPACITY <= hi <= peak * 1.02  # converged: the bracket is within the tolerance
    assert not result["knee_flips"] and result["note"] is None
    rows = {r["target_qps"]: r for r in result["table"]}
    assert rows[peak]["runs"] == 3 and rows[peak]["p_valid"] == 1.0
    assert all(r["p_valid"] == (1.0 if q < CAPACITY else 0.0) for q, r in rows.items())
    assert sum(r["runs"] for r in rows.values()) == len(result["probes"])


def test_a_knee_that_flips_is_reported_with_its_p_valid():
    s = PeakSettings(tolerance=0.02, repeats_near_edge=3)
    result = PeakSearch(s, knee(CAPACITY, 0.9 * CAPACITY), start_qps=1_000).run()
    assert result["knee_flips"]
    flipping = result["flipping_qps"]
    assert flipping and all(0.9 * CAPACITY <= q < CAPACITY for q in flipping)
    for row in result["table"]:
        assert row["p_valid"] == pytest.approx(row["valid"] / row["runs"])
    assert 0.9 * CAPACITY / 1.02 <= result["peak_qps"] < 0.9 * CAPACITY * 1.02
    # with a lower threshold, a QPS VALID in 2 runs of 3 counts: the peak moves into the flipping zone
    lenient = PeakSearch(s.model_copy(update={"valid_threshold": 0.6}), knee(CAPACITY, 0.9 * CAPACITY),
                         start_qps=1_000).run()
    assert lenient["peak_qps"] > result["peak_qps"] and lenient["peak_qps"] >= 0.9 * CAPACITY


def test_valid_up_to_max_qps_and_invalid_down_to_min_qps():
    capped = PeakSearch(PeakSettings(max_qps=5_000, repeats_near_edge=2), knee(CAPACITY, CAPACITY), 1_000).run()
    assert capped["peak_qps"] == 5_000 and "VALID at max_qps 5000" in capped["note"]
    assert capped["bracket"] == [5_000, None]
    hopeless = PeakSearch(PeakSettings(min_qps=20_000), knee(CAPACITY, CAPACITY), 100_000).run()
    assert hopeless["peak_qps"] is None and "no target QPS >= min_qps 20000 was VALID" in hopeless["note"]
    assert {p["target_qps"] for p in hopeless["probes"]} == {100_000, 50_000, 25_000, 20_000}


def test_max_probes_stops_the_search_and_says_so():
    result = PeakSearch(PeakSettings(max_probes=4), knee(CAPACITY, CAPACITY), 100).run()
    assert len(result["probes"]) == 4 and "max_probes (4)" in result["note"]


# -- the whole stack: every probe a stored run linked to the search -----------------------------------

@pytest.fixture
def capacity_backend(monkeypatch, digits_models):
    monkeypatch.setattr(server, "_clock", CLOCK.ns)
    monkeypatch.setattr(server, "_sleep", CLOCK.sleep)
    registry.register("backend", "capacity", CapacityBackend)
    yield
    registry.unregister("backend", "capacity")


def _request(**settings) -> RunRequest:
    base = {"warmup_duration_ms": 0, "concurrency": 1, "min_duration_ms": 2_000, "min_query_count": 1_000,
            "stop_when_invalid": False, "issuer": "thread"}  # workers read the fake clock; a process cannot
    return RunRequest("digits", backend="capacity", scenario="server", scenario_settings={**base, **settings})


def test_search_on_a_system_of_known_capacity_stores_linked_probes(store, capacity_backend):
    search = run_peak_search(_request(), store, {"tolerance": 0.02, "repeats_near_edge": 2})
    result = search.result
    assert search.status == "complete" and search.task_name == "digits" and search.scenario == "server"
    # an M/D/1 queue served in 0.1 ms with a 15 ms p99 bound: VALID up to ~98% of the capacity, never above it
    assert 0.9 * CAPACITY <= result["peak_qps"] <= CAPACITY
    hi = result["bracket"][1]
    assert (hi - result["peak_qps"]) / result["peak_qps"] <= 0.02
    # every probe is a complete run pointing at the search; P(VALID) recomputed from the stored runs
    runs = [store.get_run(p.run_id) for p in search.runs]
    assert [r.id for r in runs] == [p["run_id"] for p in result["probes"]]
    tally: dict[float, list[bool]] = defaultdict(list)
    for run in runs:
        assert run.search_id == search.id and run.status == "complete" and run.scenario == "server"
        tally[run.settings["scenario"]["target_qps"]].append(run.validity == "VALID")
    assert {r["target_qps"]: r["p_valid"] for r in result["table"]} == {q: sum(v) / len(v) for q, v in tally.items()}
    assert not result["compliant"]  # lowered minimums
    assert SearchLog(store).search_of_run(runs[0].id) == search.model_copy(update={"runs": ()})


class InterruptingBackend(CapacityBackend):
    """Ctrl-C arrives during the second probe (its 5,000th batch)."""

    name = "interrupting"
    calls = 0

    def run_batch(self, inputs):
        InterruptingBackend.calls += 1
        if InterruptingBackend.calls == 5_000:
            raise KeyboardInterrupt
        return super().run_batch(inputs)


def test_interrupting_a_search_marks_it_and_its_probe_aborted(store, capacity_backend):
    registry.register("backend", "interrupting", InterruptingBackend)
    try:
        with pytest.raises(KeyboardInterrupt):
            run_peak_search(RunRequest(**{**_request().__dict__, "backend": "interrupting"}), store)
    finally:
        registry.unregister("backend", "interrupting")
    search = SearchLog(store).list()[0]
    assert search.status == "aborted" and "interrupted" in search.result["note"]
    runs = SearchLog(store).get(search.id).runs
    assert [r.status for r in runs] == ["complete", "aborted"]
    assert len(search.result["probes"]) == 1


# -- the CLI ------------------------------------------------------------------------------------------

def test_cli_peak_json_and_show_links_the_probe(tmp_path, digits_models):
    db = tmp_path / "peak.db"
    proc = cli("peak", "digits", "--backend", "null", "--quick",
               "--start-qps", "1000", "--max-qps", "4000", "--repeats-near-edge", "2",
               "--set", "latency_bound_ms=1000", "--json", db=db, check=True)
    search = json.loads(proc.stdout)
    result = search["result"]
    assert search["status"] == "complete" and result["peak_qps"] == 4000 and not result["compliant"]
    assert [(r["target_qps"], r["runs"], r["p_valid"]) for r in result["table"]] == [(1000, 1, 1.0), (4000, 2, 1.0)]
    runs = json.loads(cli("runs", "--json", db=db, check=True).stdout)
    assert sorted(r["id"] for r in runs) == [p["run_id"] for p in search["runs"]] == [1, 2, 3]
    assert all(r["search_id"] == search["id"] for r in runs)
    text = cli("show", "2", db=db, check=True).stdout
    assert f"peak search: probe of search {search['id']} (complete), peak target QPS 4,000" in text
    table = cli("peak", "digits", "--backend", "null", "--quick",
                "--start-qps", "1000", "--max-qps", "2000", "--repeats-near-edge", "1",
                "--set", "latency_bound_ms=1000", db=db, check=True).stdout
    assert "P(VALID)" in table and "peak search 2 complete: peak target QPS 2,000" in table


@pytest.mark.parametrize("args, message", [
    (["peak", "digits", "--min-qps", "10", "--max-qps", "5"],
     "PeakSearchRequest: search: min_qps (10) must be below max_qps (5)"),
    (["peak", "digits", "--repeats-near-edge", "0"], "PeakSearchRequest: search.repeats_near_edge 0: Input should be"),
    (["peak", "digits", "--threads", "2"], "--threads does not apply to backend 'null'"),
    (["run", "digits", "--find-peak"], "No such option '--find-peak'"),
])
def test_bad_search_input_exits_2_and_writes_nothing(tmp_path, digits_models, args, message):
    db = tmp_path / "bad.db"
    proc = cli(*args, "--backend", "null", db=db)
    assert proc.returncode == 2, proc.stderr
    assert message in " ".join(proc.stderr.split()) and "Traceback" not in proc.stderr
    assert json.loads(cli("runs", "--json", db=db, check=True).stdout) == []
    from runner.store import Store
    with Store(str(db)) as s:
        assert SearchLog(s).list() == []
