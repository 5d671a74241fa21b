"""The cost model and capacity planning by hand, and the price catalogue's strict validation."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import yaml

from engine import EXAMPLE_CATALOG, Catalog, CatalogEntry, CostModel, load_catalog
from engine.cost import HOURS_PER_YEAR, cost_per_million, derive, unit_cost_per_hour, units_needed
from runner.errors import EngineError

DATA = Path(__file__).resolve().parents[2] / "shared/data/mlperf/v4.1"
NAN = np.array([np.nan])


def one(x: float) -> np.ndarray:
    return np.array([float(x)])


# -- cost arithmetic ------------------------------------------------------------------------------

def test_an_owned_unit_costs_its_amortised_price_plus_energy():
    # 8,766 USD over 1 year of 8,766 h = 1 USD/h; 500 W at 0.20 USD/kWh = 0.10 USD/h
    model = CostModel(tariff_usd_per_kwh=0.2)
    assert unit_cost_per_hour(NAN, one(HOURS_PER_YEAR), one(1), one(500), model)[0] == pytest.approx(1.10)
    # at 50% utilisation the hardware costs twice as much per hour served; energy is only spent serving
    model = CostModel(tariff_usd_per_kwh=0.2, utilisation=0.5)
    assert unit_cost_per_hour(NAN, one(HOURS_PER_YEAR), one(1), one(500), model)[0] == pytest.approx(2.10)
    # 100,000 USD over 4 years: 100000 / (4 x 8766) = 2.8519 USD/h
    assert unit_cost_per_hour(NAN, one(1e5), one(4), one(0), CostModel())[0] == pytest.approx(2.851928, rel=1e-6)


def test_a_rented_unit_costs_its_hourly_price_which_includes_its_power():
    model = CostModel(tariff_usd_per_kwh=0.5, utilisation=0.8)
    assert unit_cost_per_hour(one(2.0), one(9e9), one(1), one(1000), model)[0] == pytest.approx(2.0 / 0.8)


def test_no_price_or_no_power_for_a_tariff_is_no_cost():
    assert np.isnan(unit_cost_per_hour(NAN, NAN, NAN, one(100), CostModel())[0])
    assert np.isnan(unit_cost_per_hour(NAN, one(1000), one(3), NAN, CostModel(tariff_usd_per_kwh=0.1))[0])
    assert unit_cost_per_hour(NAN, one(HOURS_PER_YEAR), one(1), NAN, CostModel())[0] == pytest.approx(1.0)


def test_cost_per_million_inferences():
    # 1.10 USD/h at 1,000 inferences/s = 3.6 M inferences per hour -> 1.10 / 3.6 = 0.30556 USD per million
    assert cost_per_million(one(1.10), one(1000))[0] == pytest.approx(1.10 / 3.6)
    assert cost_per_million(one(1.0), one(0))[0] == np.inf  # a throughput CI reaching 0: no upper cost bound
    assert np.isnan(cost_per_million(one(1.0), NAN)[0])
    assert units_needed(100, one(0), 0.2, True)[0] == np.inf


@pytest.mark.parametrize("target, throughput, headroom, n_plus_one, units", [
    (20000, 7000, 0.2, True, 5),     # 24,000 / 7,000 = 3.43 -> 4, plus a spare
    (20000, 7000, 0.2, False, 4),
    (20000, 12000, 0.2, False, 2),   # exactly 2.0 units: no rounding up to 3
    (20000, 632229, 0.2, True, 2),   # one big unit and its spare
    (100, 100, 0.0, False, 1),
])
def test_units_needed_by_hand(target, throughput, headroom, n_plus_one, units):
    assert units_needed(target, one(throughput), headroom, n_plus_one)[0] == units


def test_capacity_plan_costs_and_its_range_over_the_throughput_ci():
    # throughput 7000 [6000, 8000]/s, 1.0 USD/h a unit, target 20,000/s with 20% headroom and N+1
    model = CostModel(headroom=0.2, n_plus_one=True)
    got = derive((one(7000), one(6000), one(8000)), (one(300),) * 3, one(1.0), NAN, NAN, model, 20000).columns
    assert [got["units"][k][0] for k in range(3)] == [5, 4, 5]    # 24000/8000 = 3 -> 4; 24000/6000 = 4 -> 5
    assert got["cost_per_hour_usd"][0][0] == pytest.approx(5.0)
    assert got["cost_per_million_usd"][0][0] == pytest.approx(5.0 / (20000 * 3600) * 1e6)
    assert got["power_total_w"][0][0] == pytest.approx(1500)
    # without a target: one unit, cost per million at its own throughput, bounds from the throughput CI
    got = derive((one(7000), one(6000), one(8000)), (one(300),) * 3, one(1.0), NAN, NAN, model, None).columns
    value, lo, hi = (got["cost_per_million_usd"][k][0] for k in range(3))
    assert (value, lo, hi) == pytest.approx((1e6 / (7000 * 3600), 1e6 / (8000 * 3600), 1e6 / (6000 * 3600)))
    assert got["throughput_per_watt"][0][0] == pytest.approx(7000 / 300)


# -- the catalogue --------------------------------------------------------------------------------

def write(tmp_path: Path, text: str, name: str = "catalog.yaml") -> Path:
    path = tmp_path / name
    path.write_text(text)
    return path


def test_the_shipped_example_validates_and_marks_every_figure_as_an_example():
    catalog = load_catalog(EXAMPLE_CATALOG)
    assert catalog.is_example and catalog.defaults.example
    assert all(entry.example for entry in catalog.systems)
    text = EXAMPLE_CATALOG.read_text()
    assert "EVERY NUMBER IN THIS FILE IS AN EXAMPLE" in text
    entries = yaml.safe_load(text)["systems"]
    assert all(e.get("example") is True for e in entries) and len(entries) == len(catalog.systems)


def test_the_shipped_example_covers_every_mlperf_v41_system_and_this_machine():
    names = set()
    for path in DATA.glob("*/*/systems/*.json"):
        data = json.loads(path.read_text())
        submitter, folder = path.parts[-3], path.stem
        names.add((data["system_name"], f"{submitter}/{folder}"))
    assert len(names) >= 19, f"expected the 19 v4.1 systems under {DATA}"
    catalog = load_catalog(EXAMPLE_CATALOG)
    missing = [n for n, i in names if catalog.lookup(n, i) is None]
    assert not missing
    # AMD's three systems share a name: each has its own entry (1x MI300X is not priced like 8x)
    amd = {i: catalog.lookup(n, i) for n, i in names if i.startswith("AMD/")}
    assert len({id(e) for e in amd.values()}) == 3
    # machines measured here match by pattern on any host, 1 and 2 CPUs priced apart
    one, two = catalog.lookup("vm (AMD EPYC) [1 CPU]"), catalog.lookup("ci-runner (Intel Xeon) [2 CPUs]")
    assert one.price_per_hour_usd == 0.025 and two.price_per_hour_usd == 0.05
    assert catalog.lookup("vm (AMD EPYC) [4 CPUs]") is None


def test_an_exact_entry_wins_over_a_pattern_and_brackets_are_literal(tmp_path):
    path = tmp_path / "prices.yaml"
    path.write_text("systems:\n  - system_name: '* [1 CPU]'\n    price_per_hour_usd: 1\n"
                    "  - system_name: 'box [1 CPU]'\n    price_per_hour_usd: 2\n"
                    "  - system_name: 'gpu?'\n    price_per_hour_usd: 3\n")
    catalog = load_catalog(path)
    assert catalog.lookup("box [1 CPU]").price_per_hour_usd == 2
    assert catalog.lookup("other [1 CPU]").price_per_hour_usd == 1
    assert catalog.lookup("other [1 CPUs]") is None and catalog.lookup("other 1") is None
    assert catalog.lookup("gpu7").price_per_hour_usd == 3 and catalog.lookup("gpu77") is None


@pytest.mark.parametrize("body, where, says", [
    ("systems:\n  - system_name: a\n    price_per_hour_usd: -3\n", ":3:", "greater than 0"),
    ("systems:\n  - system_name: a\n    price_per_hour_usd: 3\n    colour: red\n", ":4:", "unknown field"),
    ("systems:\n  - system_name: a\n    purchase_price_usd: 1000\n", ":2:", "needs lifetime_years"),
    ("systems:\n  - system_name: a\n    note: nothing\n", ":2:", "gives no price_per_hour_usd"),
    ("systems:\n  - system_name: a\n    tdp_w: 5\n  - system_name: a\n    tdp_w: 6\n", ":4:", "listed twice"),
    ("defaults:\n  utilisation: 1.5\nsystems: []\n", ":2:", "less than or equal to 1"),
    ("systems:\n  - system_name: a\n    tdp_w: @5\n", ":3:", "malformed YAML"),
    ("- just\n- a list\n", ":1:", "expected a mapping"),
])
def test_bad_catalogues_name_file_line_and_field(tmp_path, body, where, says):
    path = write(tmp_path, body)
    with pytest.raises(EngineError) as caught:
        load_catalog(path)
    message = str(caught.value)
    assert f"{path}{where}" in message and says in message


def test_a_default_lifetime_serves_entries_without_one(tmp_path):
    catalog = load_catalog(write(tmp_path, "defaults:\n  lifetime_years: 3\nsystems:\n"
                                           "  - system_name: a\n    purchase_price_usd: 1000\n"))
    assert catalog.lifetime(catalog.systems[0]) == 3 and catalog.source.endswith("catalog.yaml")


def test_csv_catalogues(tmp_path):
    good = write(tmp_path, "system_name,price_per_hour_usd,purchase_price_usd,lifetime_years,tdp_w,example\n"
                           "box,,20000,4,500,true\ncloud,2.5,,,,\n", "prices.csv")
    catalog = load_catalog(good)
    assert catalog.lookup("box").purchase_price_usd == 20000 and catalog.lookup("box").example
    assert catalog.lookup("cloud").price_per_hour_usd == 2.5 and not catalog.lookup("cloud").example
    bad = write(tmp_path, "system_name,price_per_hour_usd\nbox,-1\n", "bad.csv")
    with pytest.raises(EngineError, match=r"bad.csv:2: systems.0.price_per_hour_usd: Input should be greater than 0"):
        load_catalog(bad)
    with pytest.raises(EngineError, match=r"odd.csv:1: unknown column\(s\) price"):
        load_catalog(write(tmp_path, "system_name,price\nbox,1\n", "odd.csv"))
    with pytest.raises(EngineError, match="no such catalogue file"):
        load_catalog(tmp_path / "missing.yaml")


def test_lookup_prefers_the_system_id():
    catalog = Catalog(systems=(CatalogEntry(system_name="s", tdp_w=1), CatalogEntry(system_name="s", system_id="X/1",
                                                                                      tdp_w=2)))
    assert catalog.lookup("s", "X/1").tdp_w == 2
    assert catalog.lookup("s", "X/2").tdp_w == 1
    assert catalog.lookup("other") is None
