"""Reproducibility of one configuration: variance components, ICC, CVs, runs needed, and a verdict.

Input: one row per within-run observation (for example the figures of contiguous batches of each
run, `analysis.samples.batch_figures`) with its run and, optionally, the host and day of the run.
- Variance components by REML (Patterson & Thompson 1971) with statsmodels' MixedLM: nested
  random intercepts host > day > run, the residual being the variation within runs. A level
  with a single value (one host) cannot be told apart from the mean and is left out.
- ICC = between-run variance (every level above the residual) / total, with the exact F interval
  of the one-way random-effects ICC(1) (Shrout & Fleiss 1979; McGraw & Wong 1996, with Searle's n0
  for unequal group sizes).
- CV between runs (the components above the residual) and within runs (the residual); on the log
  scale a component s^2 is a CV of sqrt(exp(s^2) - 1).
- Runs needed: the fewest runs r whose mean has a t interval of relative half-width at most the
  target, given the spread of run figures (t_{r-1} s / sqrt(r) <= target).
- Verdict: reproducible when every run figure lies within +-tolerance of their median (MLPerf
  audits accept a re-run within 2% of the result); outlier runs are flagged by generalised ESD.
"""

from __future__ import annotations

import math
import warnings
from dataclasses import asdict, dataclass, field
from typing import Any

import numpy as np
import pandas as pd
import statsmodels.api as sm
from scipy import stats
from statsmodels.tools.sm_exceptions import ConvergenceWarning

from analysis._checks import finite, names, positive, require
from analysis.ci import CI
from analysis.outliers import generalized_esd
from runner.errors import AnalysisError

__all__ = ["VarianceComponents", "variance_components", "icc_ci", "runs_needed", "reproducibility",
           "DEFAULT_TOLERANCE"]

DEFAULT_TOLERANCE = 0.02
RESIDUAL = "within"


@dataclass(frozen=True)
class VarianceComponents:
    """REML variance components, outermost level first, then the residual ("within")."""

    mean: float
    components: dict[str, float]
    n_obs: int
    n_groups: dict[str, int]
    converged: bool
    notes: list[str] = field(default_factory=list)

    @property
    def between(self) -> float:
        """Sum of the components above the residual."""
        return float(sum(v for k, v in self.components.items() if k != RESIDUAL))

    @property
    def within(self) -> float:
        return float(self.components[RESIDUAL])

    @property
    def icc(self) -> float:
        total = self.between + self.within
        return self.between / total if total > 0 else float("nan")

    def to_dict(self) -> dict[str, Any]:
        return {**asdict(self), "between": self.between, "icc": self.icc}


def _nested_labels(df: pd.DataFrame, levels: list[str]) -> pd.DataFrame:
    """Each level's labels made unique within its parents ("host/day/run")."""
    out, path = pd.DataFrame(index=df.index), None
    for level in levels:
        label = df[level].astype(str)
        path = label if path is None else path + "/" + label
        out[level] = path
    return out


def _separable(labels: pd.DataFrame, levels: list[str]) -> tuple[list[str], list[str]]:
    """Levels that can be estimated: more than one group, and more groups than the level above
    (a day with one run each cannot be told apart from the run); notes for the others."""
    kept, notes = [], []
    for i, lv in enumerate(levels):
        groups = labels[lv].nunique()
        inner = labels[levels[i + 1]].nunique() if i + 1 < len(levels) else None
        if groups < 2:
            notes.append(f"level {lv!r} has one value only: left out")
        elif inner is not None and inner == groups:
            notes.append(f"each {lv} holds one {levels[i + 1]}: their variances cannot be told apart, "
                         f"so {lv!r} is counted in {levels[i + 1]!r}")
        else:
            kept.append(lv)
    return kept, notes


def variance_components(df: pd.DataFrame, value: str = "value", levels: tuple[str, ...] = ("run",)) -> VarianceComponents:
    """REML variance components of `value` for nested random levels (outermost first) plus the residual."""
    missing = [c for c in (value, *levels) if c not in df.columns]
    if missing:
        raise AnalysisError(f"variance components: no column {names(missing)} (have {names(list(df.columns))})")
    y = finite(df[value].to_numpy(), f"variance components of {value}", 3)
    labels = _nested_labels(df, list(levels))
    kept, notes = _separable(labels, list(levels))
    if not kept:
        raise AnalysisError(f"variance components: every level ({names(list(levels))}) has a single value; "
                            f"needs at least 2 groups")
    inner = labels[kept[-1]]
    if inner.nunique() == len(y):
        raise AnalysisError(f"variance components: one observation per {kept[-1]}: the within-{kept[-1]} "
                            f"variance cannot be separated (needs repeated observations in a group)")
    data = pd.DataFrame({"y": y, **{lv: labels[lv].to_numpy() for lv in kept}})
    comps, mean, converged, _, fit_notes = _reml(data, kept)
    comps = {**{lv: comps.get(lv, 0.0) for lv in kept}, RESIDUAL: comps[RESIDUAL]}
    return VarianceComponents(mean, comps, len(y), {lv: int(labels[lv].nunique()) for lv in kept}, converged,
                              notes + fit_notes)


def _reml(data: pd.DataFrame, kept: list[str]) -> tuple[dict[str, float], float, bool, float, list[str]]:
    """(components, mean, converged, REML log-likelihood, notes) of y ~ 1 with nested random intercepts.

    statsmodels inverts the Hessian for standard errors after fitting and fails when a component
    sits on the boundary (0); then each level is dropped in turn (its variance 0) and the restricted
    fit with the highest REML likelihood kept: the maximum on that boundary.
    """
    if not kept:
        return {RESIDUAL: float(data["y"].var(ddof=1))}, float(data["y"].mean()), True, -math.inf, []
    vc = {lv: f"0 + C({lv})" for lv in kept[1:]}
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        model = sm.MixedLM.from_formula("y ~ 1", groups=kept[0], re_formula="1", vc_formula=vc or None, data=data)
        try:
            fit = model.fit(reml=True, method=["bfgs", "lbfgs"], gtol=1e-10)  # tight: the defaults stop ~1e-4 short
        except np.linalg.LinAlgError:
            fit = None
    if fit is None:
        options = [(_reml(data, [k for k in kept if k != lv]), lv) for lv in kept]
        (comps, mean, converged, llf, notes), lv = max(options, key=lambda o: o[0][3])
        return {**comps, lv: 0.0}, mean, converged, llf, notes + [f"{lv} variance on the boundary: 0"]
    comps = {kept[0]: max(0.0, float(np.asarray(fit.cov_re)[0, 0]))}
    comps.update({name: max(0.0, float(v)) for name, v in zip(model.exog_vc.names, fit.vcomp)})
    comps[RESIDUAL] = float(fit.scale)
    # statsmodels warns "on the boundary" for any variance under 0.01 in absolute terms (every log-scale
    # fit); say it only for a component that is 0 next to the others
    notes = sorted({str(w.message).splitlines()[0] for w in caught if issubclass(w.category, ConvergenceWarning)
                    and "boundary" not in str(w.message)})
    notes += [f"{lv} variance on the boundary: 0" for lv in kept if comps[lv] <= 1e-9 * sum(comps.values())]
    return comps, float(fit.fe_params.iloc[0]), bool(fit.converged), float(fit.llf), notes


def icc_ci(values: Any, groups: Any, confidence: float = 0.95) -> CI:
    """One-way random-effects ICC(1) = (MSB - MSW) / (MSB + (n0 - 1) MSW) with its exact F interval."""
    y = finite(values, "ICC values", 3).astype(np.float64)
    g = pd.Series(np.asarray(groups)).astype(str).to_numpy()
    frame = pd.DataFrame({"y": y, "g": g})
    sizes = frame.groupby("g")["y"].size()
    k, n = len(sizes), len(y)
    require(k, 2, "ICC groups")
    if n == k:
        raise AnalysisError("ICC: one observation per group leaves no within-group variance")
    means = frame.groupby("g")["y"].transform("mean").to_numpy()
    msb = float(((means - y.mean()) ** 2).sum()) / (k - 1)
    msw = float(((y - means) ** 2).sum()) / (n - k)
    n0 = (n - float((sizes ** 2).sum()) / n) / (k - 1)
    if msw == 0:
        return CI(1.0, 1.0, 1.0, confidence, "one-way ANOVA F (no within-group variation)", n)
    f = msb / msw
    a = (1 - confidence) / 2
    f_low = f / stats.f.ppf(1 - a, k - 1, n - k)
    f_high = f * stats.f.ppf(1 - a, n - k, k - 1)
    icc = lambda x: (x - 1) / (x + n0 - 1)  # noqa: E731
    return CI(icc(f), icc(f_low), icc(f_high), confidence, "one-way random-effects ICC(1), exact F interval", n)


def runs_needed(cv_runs: float, target_half_width: float, confidence: float = 0.95, limit: int = 10_000) -> int | None:
    """Fewest runs r with t_{r-1} x cv / sqrt(r) <= target (relative half-width); None beyond `limit`."""
    if cv_runs <= 0:
        return 2
    q = (1 + confidence) / 2
    for r in range(2, limit + 1):
        if stats.t.ppf(q, r - 1) * cv_runs / math.sqrt(r) <= target_half_width:
            return r
    return None


def _cv(variance: float, log: bool, mean: float) -> float:
    return math.sqrt(math.expm1(variance)) if log else math.sqrt(variance) / abs(mean)


def _run_figures(df: pd.DataFrame, value: str, run: str, run_value: str | None) -> pd.Series:
    if run_value and run_value in df.columns:
        return df.groupby(run, sort=False)[run_value].first()
    return df.groupby(run, sort=False)[value].median()


def reproducibility(df: pd.DataFrame, *, value: str = "value", run: str = "run", levels: tuple[str, ...] = ("host", "day"),
                    run_value: str | None = "run_value", log: bool = True, tolerance: float = DEFAULT_TOLERANCE,
                    confidence: float = 0.95, target_half_width: float | None = None) -> dict[str, Any]:
    """Reproducibility of one configuration's runs (see the module docstring); a JSON-able dict.

    `df` has one row per within-run observation: `value`, `run`, optionally the `levels` (host,
    day) and `run_value` (the run's own figure, e.g. its headline; else the median of its rows).
    A run with a single row (an imported result) gives run-level figures only: then no variance
    components or ICC, only the spread of the runs.
    """
    if run not in df.columns or value not in df.columns:
        raise AnalysisError(f"reproducibility needs columns {value!r} and {run!r}; got {names(list(df.columns))}")
    figures = _run_figures(df, value, run, run_value)
    require(len(figures), 2, "runs of the configuration", "run it again (infersight repro ... -n 3)")
    x = positive(figures.to_numpy(), "run figures")
    median = float(np.median(x))
    deviation = np.abs(x / median - 1)
    cv_runs = float(np.std(np.log(x), ddof=1)) if log else float(np.std(x, ddof=1) / np.mean(x))
    target = target_half_width if target_half_width is not None else tolerance / 2
    out: dict[str, Any] = {
        "runs": [str(r) for r in figures.index], "run_figures": x.tolist(), "median": median,
        "max_deviation": float(deviation.max()), "tolerance": tolerance, "cv": cv_runs,
        "reproducible": bool(deviation.max() <= tolerance),
        "runs_needed": runs_needed(cv_runs, target, confidence), "target_half_width": target,
        "confidence": confidence, "scale": "log" if log else "linear", "notes": []}
    worst = figures.index[int(deviation.argmax())]
    out["verdict"] = (f"reproducible: every run within {tolerance:.1%} of the median" if out["reproducible"] else
                      f"NOT reproducible: run {worst} is {deviation.max():.2%} from the median "
                      f"(tolerance {tolerance:.1%})")
    out["outliers"] = _outlier_runs(figures, x)
    if df.groupby(run).size().max() < 2:
        out["notes"].append("one figure per run (no per-query records): no variance components or ICC")
        return out
    out.update(_components(df, value, run, levels, log, confidence))
    return out


def _outlier_runs(figures: pd.Series, x: np.ndarray) -> list[str]:
    if len(x) < 6:
        return []
    esd = generalized_esd(np.log(x), max_outliers=max(1, len(x) // 5))
    return [str(figures.index[i]) for i in esd.outliers]


def _components(df: pd.DataFrame, value: str, run: str, levels: tuple[str, ...], log: bool,
                confidence: float) -> dict[str, Any]:
    y = positive(df[value].to_numpy(), f"within-run {value}") if log else df[value].to_numpy()
    frame = df.assign(**{value: np.log(y) if log else y})
    lv = tuple(c for c in levels if c in frame.columns) + (run,)
    vc = variance_components(frame, value, lv)
    mean = math.exp(vc.mean) if log else vc.mean
    icc = icc_ci(frame[value].to_numpy(), frame[run].to_numpy(), confidence)
    return {"components": vc.to_dict(), "mean": mean, "icc": vc.icc,
            "icc_ci": {"low": max(0.0, icc.low), "high": min(1.0, icc.high), "method": icc.method},
            "cv_between": _cv(vc.between, log, vc.mean), "cv_within": _cv(vc.within, log, vc.mean)}
