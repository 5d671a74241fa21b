"""Reproducibility (analysis.repro): REML variance components against lme4/nlme, ICC, verdicts."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from analysis.repro import icc_ci, reproducibility, runs_needed, variance_components
from runner.errors import AnalysisError

# Dyestuff (Davies 1947; Box & Tiao 1973; lme4::Dyestuff): yield of dyestuff, 6 batches x 5.
# lme4 REML fit of Yield ~ 1 + (1|Batch) (Bates, lme4 book ch. 1): batch variance 1764.05 (sd 42.00),
# residual 2451.25 (sd 49.51), intercept 1527.50; nlme::gls with compound symmetry: rho 0.4184874.
DYESTUFF = [1545, 1440, 1440, 1520, 1580, 1540, 1555, 1490, 1560, 1495, 1595, 1550, 1605, 1510, 1560,
            1445, 1440, 1595, 1465, 1545, 1595, 1630, 1515, 1635, 1625, 1520, 1455, 1450, 1480, 1445]
# Dyestuff2 (Box & Tiao 1973, simulated; lme4::Dyestuff2): lme4 REML gives a batch variance of 0
# (a boundary fit), residual 13.81 (sd 3.716), intercept 5.6656.
DYESTUFF2 = [7.298, 3.846, 2.434, 9.566, 7.990, 5.220, 6.556, 0.608, 11.788, -0.892, 0.110, 10.386, 13.434,
             5.510, 8.166, 2.212, 4.852, 7.092, 9.288, 4.980, 0.282, 9.014, 4.458, 9.446, 7.198, 1.722, 4.782,
             8.106, 0.758, 3.758]
# Rail (Devore 2000; nlme::Rail; Pinheiro & Bates 2000, Mixed-Effects Models in S and S-PLUS, 1.1):
# travel time, 6 rails x 3; lme REML: rail sd 24.80547, residual sd 4.020779, intercept 66.5.
RAIL = [55, 53, 54, 26, 37, 32, 78, 91, 85, 92, 100, 96, 49, 51, 50, 80, 85, 83]
# Shrout & Fleiss (1979), Psychological Bulletin 86(2), Tables 1-2: 6 targets rated by 4 judges;
# one-way ANOVA BMS 11.24, WMS 6.26, ICC(1,1) = .17.
SHROUT_FLEISS = [[9, 2, 5, 8], [6, 1, 3, 2], [8, 4, 6, 8], [7, 1, 2, 6], [10, 5, 6, 9], [6, 2, 4, 7]]


def _one_way(values, per_group):
    return pd.DataFrame({"y": values, "g": np.repeat(np.arange(len(values) // per_group), per_group)})


@pytest.mark.parametrize("values, per_group, between, within, mean, rel", [
    (DYESTUFF, 5, 1764.05, 2451.25, 1527.5, 1e-5),
    (DYESTUFF2, 5, 0.0, 13.81, 5.6656, 5e-4),     # lme4 prints 13.81: 4 significant digits
    (RAIL, 3, 24.80547 ** 2, 4.020779 ** 2, 66.5, 1e-5),
])
def test_reml_variance_components_match_lme4_and_nlme(values, per_group, between, within, mean, rel):
    vc = variance_components(_one_way(values, per_group), "y", ("g",))
    assert vc.mean == pytest.approx(mean, rel=1e-5)
    assert vc.components["g"] == pytest.approx(between, rel=rel, abs=1e-6)
    assert vc.components["within"] == pytest.approx(within, rel=rel)


def test_icc_of_dyestuff_is_the_published_within_batch_correlation():
    vc = variance_components(_one_way(DYESTUFF, 5), "y", ("g",))
    assert vc.icc == pytest.approx(0.4184874, rel=1e-5)


def test_icc_of_shrout_and_fleiss_ratings():
    ratings = np.array(SHROUT_FLEISS, dtype=float)
    result = icc_ci(ratings.ravel(), np.repeat(np.arange(6), 4))
    assert round(result.estimate, 2) == 0.17
    # the interval comes from F = BMS / WMS = 11.24 / 6.26 on (5, 18) degrees of freedom
    assert result.low < 0 < result.estimate < result.high < 1


def test_nested_components_equal_the_anova_estimators_of_a_balanced_design():
    # for balanced nested data REML equals the ANOVA (expected mean squares) estimators when those are
    # positive (Searle, Casella & McCulloch 1992, 4.7); computed here independently of statsmodels
    rng = np.random.default_rng(12)
    H, D, R, K = 4, 3, 3, 6
    rows = []
    for h in range(H):
        uh = rng.normal(0, 1.0)
        for d in range(D):
            ud = rng.normal(0, 0.7)
            for r in range(R):
                ur = rng.normal(0, 0.5)
                rows += [(h, d, r, 10 + uh + ud + ur + rng.normal(0, 0.3)) for _ in range(K)]
    df = pd.DataFrame(rows, columns=["host", "day", "run", "y"])
    y = df["y"].to_numpy().reshape(H, D, R, K)
    m_run, m_day, m_host = y.mean(axis=3), y.mean(axis=(2, 3)), y.mean(axis=(1, 2, 3))
    msw = ((y - m_run[..., None]) ** 2).sum() / (H * D * R * (K - 1))
    msr = K * ((m_run - m_day[..., None]) ** 2).sum() / (H * D * (R - 1))
    msd = R * K * ((m_day - m_host[:, None]) ** 2).sum() / (H * (D - 1))
    msh = D * R * K * ((m_host - y.mean()) ** 2).sum() / (H - 1)
    expected = {"host": (msh - msd) / (D * R * K), "day": (msd - msr) / (R * K), "run": (msr - msw) / K,
                "within": msw}
    assert min(expected.values()) > 0
    vc = variance_components(df, "y", ("host", "day", "run"))
    assert list(vc.components) == ["host", "day", "run", "within"]
    for level, value in expected.items():
        assert vc.components[level] == pytest.approx(value, rel=1e-5), level


def test_runs_needed_by_hand():
    # CV 1%, target +-1%: t_{r-1, 0.975} <= sqrt(r) first holds at r = 7 (2.447 <= 2.646; r = 6: 2.571 > 2.449)
    assert runs_needed(0.01, 0.01) == 7
    assert runs_needed(0.0, 0.01) == 2
    assert runs_needed(1.0, 1e-4) is None


def _replicas(run_means, per_run=16, sd=0.002, seed=0):
    rng = np.random.default_rng(seed)
    rows = [{"value": m * np.exp(rng.normal(0, sd)), "run": f"r{i}", "host": "h", "day": f"d{i % 2}",
             "run_value": m} for i, m in enumerate(run_means) for _ in range(per_run)]
    return pd.DataFrame(rows)


def test_verdict_follows_the_tolerance():
    good = reproducibility(_replicas([100.0, 100.8, 99.5, 100.3]))
    assert good["reproducible"] and good["max_deviation"] == pytest.approx(0.65 / 100.15, rel=1e-6)
    assert 0 <= good["icc_ci"]["low"] <= good["icc"] <= good["icc_ci"]["high"] <= 1
    assert good["cv_between"] > 0 and good["cv_within"] > 0
    bad = reproducibility(_replicas([100.0, 104.0, 99.5]))
    assert not bad["reproducible"] and "NOT reproducible" in bad["verdict"] and "r1" in bad["verdict"]


def test_outlier_run_is_flagged_not_dropped():
    result = reproducibility(_replicas([100, 100.2, 99.9, 100.1, 99.8, 100.3, 100.0, 120.0]))
    assert result["outliers"] == ["r7"] and len(result["run_figures"]) == 8


def test_run_level_figures_only():
    df = pd.DataFrame({"value": [10.0, 10.1, 9.9], "run": ["a", "b", "c"]})
    result = reproducibility(df, run_value=None)
    assert result["reproducible"] and "components" not in result and result["notes"]


def test_bad_input():
    with pytest.raises(AnalysisError, match="needs at least 2"):
        reproducibility(pd.DataFrame({"value": [1.0, 1.1], "run": ["a", "a"]}))
    with pytest.raises(AnalysisError, match="NaN"):
        variance_components(pd.DataFrame({"y": [1.0, np.nan, 2.0, 3.0], "g": [0, 0, 1, 1]}), "y", ("g",))
    with pytest.raises(AnalysisError, match="one observation per g"):
        variance_components(pd.DataFrame({"y": [1.0, 2.0, 3.0], "g": [0, 1, 2]}), "y", ("g",))


def test_a_component_on_the_boundary_is_zero():
    # identical group means: the between-group REML variance is 0 and the residual the plain variance
    # (where statsmodels cannot invert its Hessian, the restricted fit on the boundary is taken instead)
    df = pd.DataFrame({"y": [1.0, 2.0, 3.0] * 3, "g": np.repeat([0, 1, 2], 3)})
    vc = variance_components(df, "y", ("g",))
    assert vc.components["g"] == pytest.approx(0.0, abs=1e-4)
    assert vc.components["within"] == pytest.approx(0.75, rel=1e-4)


def test_boundary_fit_of_batch_figures():
    # batch p90s of three runs from one distribution: no run-to-run variance; statsmodels' Hessian
    # is singular here, and the boundary fit gives run 0 and the plain variance within
    from analysis.samples import batch_figures

    rows = []
    for i in range(3):
        lat = (np.random.default_rng(20 + i).lognormal(0, 0.1, 2000) * 1e6).astype(np.int64)
        done = np.cumsum(lat)
        rec = {"query_index": np.arange(2000), "scheduled_ns": done - lat, "completed_ns": done}
        rows += [(np.log(v), f"r{i}") for v in batch_figures(rec, "latency_p90_ms", 16)]
    df = pd.DataFrame(rows, columns=["y", "run"])
    vc = variance_components(df, "y", ("run",))
    assert vc.components["run"] == 0.0 and vc.components["within"] == pytest.approx(df["y"].var(ddof=1))
