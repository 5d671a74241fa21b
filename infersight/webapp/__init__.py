"""The pages of the Streamlit app (app.py): each a function of the store URL that draws one page.

Pages hold no logic of their own: candidates, constraints and rankings come from engine/,
confidence intervals, comparisons and trends from analysis/, charts and HTML from reports/.
"""

from __future__ import annotations

import os
import sys
from collections.abc import Callable

from runner.store import resolve_url

__all__ = ["PAGES", "store_url"]


def store_url() -> str:
    """The store the app shows: `--db X` after `--` on the streamlit command line, else INFERSIGHT_DB, else ./infersight.db."""
    argv = sys.argv[1:]
    if "--db" in argv and argv.index("--db") + 1 < len(argv):
        return resolve_url(argv[argv.index("--db") + 1])
    return resolve_url(os.environ.get("INFERSIGHT_DB"))


def _pages() -> dict[str, Callable[[str], None]]:
    from infersight.webapp import compare, explore, recommend, reports_page, run_page, runs, trends

    return {"Recommend": recommend.page, "Explore": explore.page, "Compare": compare.page, "Trends": trends.page,
            "Runs": runs.page, "Reports": reports_page.page,
            "Run": run_page.page}


PAGES = _pages()
