"""Self-contained HTML reports and SVG badges. See DESIGN.md section 1.

`render_run_report(store, run_id)` (reports.run), `render_compare_report(store, refs)`
(reports.compare), `render_decision_report(recommendation, task=, scenario=)` (reports.decision)
and `render_trend_report(store, "2026Q3")` (reports.trend) each return one HTML document;
`reports.badges.run_badge` the badges (`reproducibility_verdict` gives the reproducible kind its
verdict). Templates live in reports/templates (base.html.j2 is the page every report extends,
_macros.html.j2 its building blocks) and chart helpers in reports/charts.py. The reports are
imported on first use (Altair is heavy).
"""

from __future__ import annotations

import importlib
from typing import Any

from reports.badges import BADGE_KINDS, Badge, NoVerdictYet, render_badge, reproducibility_verdict, run_badge

_REPORTS = {"render_run_report": "run", "render_compare_report": "compare", "render_decision_report": "decision",
            "render_trend_report": "trend"}

__all__ = [*_REPORTS, "run_badge", "render_badge", "reproducibility_verdict", "Badge", "BADGE_KINDS", "NoVerdictYet"]


def __getattr__(name: str) -> Any:
    if name in _REPORTS:
        return getattr(importlib.import_module(f"reports.{_REPORTS[name]}"), name)
    raise AttributeError(f"module 'reports' has no attribute {name!r}")
