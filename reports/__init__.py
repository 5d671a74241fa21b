"""Self-contained HTML reports and SVG badges. See DESIGN.md section 1.

`reports.run.render_run_report(store, run_id)` writes the run report; `reports.badges.run_badge`
the badges. Templates live in reports/templates (base.html.j2 is the page every report extends,
_macros.html.j2 its building blocks) and chart helpers in reports/charts.py, for the comparison,
decision and trend reports to reuse. The run report is imported on first use (Altair is heavy).
"""

from __future__ import annotations

from typing import Any

from reports.badges import BADGE_KINDS, Badge, NoVerdictYet, render_badge, run_badge

__all__ = ["render_run_report", "run_badge", "render_badge", "Badge", "BADGE_KINDS", "NoVerdictYet"]


def __getattr__(name: str) -> Any:
    if name == "render_run_report":
        from reports.run import render_run_report

        return render_run_report
    raise AttributeError(f"module 'reports' has no attribute {name!r}")
