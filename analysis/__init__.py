"""Statistics over the store (confidence intervals, comparisons, reproducibility, trends).

Pure functions over numpy arrays and DataFrames; `analysis.load`, `views` and `service` are the
only modules that read the store. Never runs a model. See DESIGN.md section 5.

Modules: `ci` (within-run intervals), `compare` (A/B on run-level figures, TOST, FDR), `repro`
(variance components, ICC, verdict), `trend` (Theil-Sen, Mann-Kendall, HAC OLS by period),
`changepoints`, `outliers` (generalised ESD), `samples` (series from per-query records),
`load` (store to frames), `views` (store-level analyses as dicts) and `service` (the workflows every front
door calls: `analyse`, `compare`, `reproducibility`, `trend`, each a request in and a frozen record out).
The public names below are imported lazily, so `import analysis` stays cheap; `compare` and
`trend` are both modules and their main functions: call `analysis.compare.compare` and
`analysis.trend.trend`.
"""

from __future__ import annotations

import importlib
from typing import Any

_EXPORTS = {
    "percentile_ci": "ci", "percentile_cis": "ci", "mean_ci": "ci", "throughput_ci": "ci", "run_cis": "ci",
    "ljung_box": "ci", "CI": "ci",
    "compare_many": "compare", "benjamini_hochberg": "compare",
    "reproducibility": "repro", "variance_components": "repro", "icc_ci": "repro",
    "mann_kendall": "trend", "theil_sen": "trend",
    "detect": "changepoints", "generalized_esd": "outliers",
    "runs_frame": "load", "config_key": "load",
}

__all__ = list(_EXPORTS)  # noqa: PLE0605 - the lazily imported names below


def __getattr__(name: str) -> Any:
    if name not in _EXPORTS:
        raise AttributeError(f"module 'analysis' has no attribute {name!r}")
    return getattr(importlib.import_module(f"analysis.{_EXPORTS[name]}"), name)
