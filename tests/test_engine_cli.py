"""`infersight recommend` through the real CLI, on a store holding the published MLPerf v4.1 results."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from conftest import cli
from runner.importers import import_tree
from runner.store import Store

DATA = Path(__file__).resolve().parents[2] / "shared/data/mlperf/v4.1"
ASK = ["recommend", "--task", "resnet50", "--scenario", "server", "--max-p99-ms", "15", "--min-accuracy-ratio",
       "0.99", "--objective", "cost"]


@pytest.fixture(scope="module")
def db(tmp_path_factory) -> Path:
    path = tmp_path_factory.mktemp("recommend") / "mlperf.db"
    with Store(str(path)) as store:
        import_tree(store, DATA)
    return path


def test_recommend_answers_with_a_ranked_explained_costed_plan(db):
    proc = cli(*ASK, "--target-qps", "20000", db=db, check=True)
    text = proc.stdout
    assert "resnet50 server: 6 candidates (0 measured here, 6 imported from MLPerf)" in text
    assert "EXAMPLE catalogue" in text and "Ranked (6;" in text
    assert "Winner: " in text and "Binding constraint: " in text
    assert "Capacity plan for 20,000 inferences/s with 20% headroom and N+1" in text
    assert "MLPerf Inference v4.1 closed" in text and ", run " in text


def test_recommend_json_matches_the_table(db):
    data = json.loads(cli(*ASK, "--json", "--what-if", "--pareto", "cost,p99", db=db, check=True).stdout)
    assert data["task"] == "resnet50" and data["candidates"] == 6 and data["catalog_is_example"]
    assert data["constraints"] == ["p99 <= 15 ms", "accuracy_ratio >= 0.99"]
    winner = data["winner"]
    assert winner["rank"] == 1 and winner["candidate"] == data["explanation"]["winner"]
    costs = [row["cost_per_million_usd"] for row in data["ranked"]]
    assert costs == sorted(costs) and len(costs) == 6
    assert all(row["p99_ms"] <= 15 and row["p_all"] == 1.0 for row in data["ranked"])
    assert data["pareto_axes"] == ["cost_per_million", "p99"] and data["frontier"]
    assert {m["parameter"] for m in data["what_if"]} >= {"p99 <= 15 ms", "accuracy_ratio >= 0.99"}
    assert data["ranked"][0]["run_ids"] and data["ranked"][0]["provenance"] == "imported"


def test_no_candidate_meets_prints_the_nearest_misses(db):
    proc = cli("recommend", "--task", "resnet50", "--scenario", "server", "--max-p99-ms", "5", "--where",
               "accuracy_ratio >= 99.5 %", db=db, check=True)
    assert "No candidate meets all constraints." in proc.stdout
    assert "Nearest miss: Dell PowerEdge R760xa (6x speedAI240 Slim)" in proc.stdout
    assert "p99 <= 5 ms to 5.157 ms (+3.1%)" in proc.stdout and "accuracy_ratio >= 0.995 to 0.9931" in proc.stdout


def test_pareto_frontier_and_what_if_tables(db):
    proc = cli(*ASK, "--pareto", "throughput,power", "--what-if", db=db, check=True)
    assert "Pareto frontier of the ranked candidates: throughput (higher is better) vs power (lower is better)" \
           in proc.stdout
    assert "What-if: " in proc.stdout and "the winner changes in" in proc.stdout


@pytest.mark.parametrize("args, says", [
    (["--task", "resnet", "--scenario", "server"], "did you mean 'resnet50'?"),
    (["--task", "resnet50", "--scenario", "interactive"], "it holds: 3d-unet (offline, single_stream)"),
    (["--task", "resnet50", "--scenario", "server", "--max-p99-ms", "-15"], "a bound must be a positive number"),
    (["--task", "resnet50", "--scenario", "server", "--where", "p99 >= 20 ms", "--max-p99-ms", "15"],
     "contradictory: p99 >= 20 ms and p99 <= 15 ms cannot both hold"),
    (["--task", "resnet50", "--scenario", "server", "--where", "p99 <= 15"], "p99 gives no unit"),
    (["--task", "resnet50", "--scenario", "server", "--objective", "speed"], "unknown metric 'speed'"),
    (["--task", "resnet50", "--scenario", "server", "--pareto", "cost"], "--pareto takes two metrics"),
    (["--task", "resnet50", "--scenario", "server", "--max-units", "2"], "needs a target load"),
])
def test_bad_input_exits_2_with_one_message(db, args, says):
    proc = cli("recommend", *args, db=db)
    assert proc.returncode == 2, proc.stdout + proc.stderr
    assert says in proc.stderr and "Traceback" not in proc.stderr
    assert proc.stderr.count("error:") == 1


def test_a_bad_catalogue_names_file_and_line(db, tmp_path):
    path = tmp_path / "prices.yaml"
    path.write_text("systems:\n  - system_name: box\n    price_per_hour_usd: -2\n")
    proc = cli(*ASK, "--catalog", str(path), db=db)
    assert proc.returncode == 2
    assert f"{path}:3: systems.0.price_per_hour_usd: Input should be greater than 0" in proc.stderr


def test_help_has_an_example():
    proc = cli("recommend", "--help", check=True)
    assert "Example:" in proc.stdout and "--json" in proc.stdout and "--max-p99-ms" in proc.stdout
