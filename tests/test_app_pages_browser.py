"""Every app page at first view, and every report kind the Reports page writes, in Debian's headless chromium at
1400x1000 on the app fixture store (MLPerf v4.1 plus quick digits runs in four quarters): no exception or
console error, a result rather than an error, no text cut by overflow in the answer area, nothing wider
than the window, and every chart drawn with a finite domain. Screenshots are saved in the test's tmp_path
(<page>.png, report-<kind>.png)."""

from __future__ import annotations

import time

import pandas as pd
import pytest

from _browser import browser_page, open_offline, require_chromium, streamlit_app
from infersight.webapp import PAGES

TIMEOUT_MS = 180_000  # generous: the machine is shared and the first script run reads the whole store

VIEWPORT = {"width": 1400, "height": 1000}
IDLE = """() => { const app = document.querySelector('[data-testid="stApp"]');
    return app && app.getAttribute('data-test-script-state') === 'notRunning'
        && document.querySelector('[data-testid="stMain"] h1') !== null
        && !document.querySelector('[data-testid="stSpinner"], [data-testid="stSkeleton"]'); }"""
# text cut by overflow in the answer area: elements whose text is wider than their box, clipped or ellipsed
CUT = """() => Array.from(document.querySelectorAll('[data-testid="stMain"] *')).filter(e => {
    if (!e.childNodes.length || !Array.from(e.childNodes).some(n => n.nodeType === 3 && n.textContent.trim())) return false;
    const s = getComputedStyle(e);
    const clips = s.textOverflow === 'ellipsis' || ['hidden', 'clip'].includes(s.overflowX);
    return clips && e.scrollWidth > e.clientWidth + 1 && e.clientWidth > 0;
}).map(e => e.innerText.slice(0, 80))"""
# every Vega chart: its SVG's size (a non-finite domain shows as NaN/Infinity or astronomic sizes)
CHART_SIZES = """() => Array.from(document.querySelectorAll('[data-testid="stMain"] .vega-embed svg, div.chart svg'))
    .map(s => [s.getAttribute('width'), s.getAttribute('height'), s.getAttribute('viewBox')])"""


def finite_sizes(sizes: list[list]) -> list[str]:
    bad = []
    for width, height, box in sizes:
        numbers = [float(x) for x in [width, height, *(box or "").split()] if x not in (None, "")]
        if not all(abs(v) < 20_000 for v in numbers):  # NaN fails this too
            bad.append(f"{width}x{height} viewBox {box}")
    return bad


@pytest.fixture(scope="module")
def app_server(app_db, tmp_path_factory):
    """One `streamlit run app.py` on the fixture store for every page of this module."""
    with streamlit_app(app_db["db"], tmp_path_factory.mktemp("pages") / "streamlit.log") as url:
        yield url


@pytest.mark.parametrize("name", list(PAGES))
def test_every_page_first_view_shows_a_result(app_server, tmp_path, name):
    require_chromium()
    problems: list[str] = []
    with browser_page(app_server, VIEWPORT) as page:
        page.set_default_timeout(TIMEOUT_MS)
        page.on("console", lambda m: problems.append(m.text) if m.type == "error" or "Infinite extent" in m.text
                else None)
        page.on("pageerror", lambda e: problems.append(str(e)))
        page.goto(f"{app_server}/?page={name}", timeout=TIMEOUT_MS)
        page.wait_for_function(IDLE, timeout=TIMEOUT_MS)
        time.sleep(1.0)  # charts draw after the script is done
        page.wait_for_function(IDLE, timeout=TIMEOUT_MS)
        errors = page.locator('[data-testid="stMain"] [data-testid="stAlertContentError"]').all_inner_texts()
        exceptions = page.locator('[data-testid="stException"]').all_inner_texts()
        cut, sizes = page.evaluate(CUT), page.evaluate(CHART_SIZES)
        wide = page.evaluate("document.documentElement.scrollWidth")
        page.screenshot(path=str(tmp_path / f"{name}.png"), full_page=True)
    assert not exceptions and not errors, (exceptions, errors)
    assert problems == [], problems
    assert cut == [], f"text cut in the answer area: {cut}"
    assert wide <= VIEWPORT["width"], f"the page is {wide} px wide"
    assert finite_sizes(sizes) == []
    assert (tmp_path / f"{name}.png").stat().st_size > 10_000


@pytest.mark.parametrize("kind", ["run", "compare", "decision", "trend"])
def test_every_report_kind_at_its_app_defaults(app_db, tmp_path, kind):
    """The report the Reports page writes with its first-view inputs, opened offline at 1400 px."""
    from engine import EXAMPLE_CATALOG, Constraints, load_catalog, recommend
    from engine.candidates import load
    from reports.compare import render_compare_report
    from reports.decision import render_decision_report
    from reports.run import render_run_report
    from reports.trend import render_trend_report
    from runner.store import Store

    with Store(str(app_db["db"])) as s:
        if kind == "run":
            html = render_run_report(s, app_db["fp32"][-1])
        elif kind == "compare":
            html = render_compare_report(s, [str(app_db["int8"][0]), str(app_db["int8"][1])])
        elif kind == "decision":
            rec = recommend(load(s, "resnet50", "server"), Constraints.build(max_p99_ms=15, min_accuracy_ratio=0.99),
                            "cost", load_catalog(EXAMPLE_CATALOG), target_load=20000)
            html = render_decision_report(rec, task="resnet50", scenario="server", candidates=len(rec.ranked),
                                          catalog=load_catalog(EXAMPLE_CATALOG))
        else:
            html = render_trend_report(s, str(pd.Timestamp.now(tz="UTC").tz_localize(None).to_period("Q")))
    opened = open_offline(html, tmp_path, f"report-{kind}")
    assert opened.problems == [], opened.problems
    done, total = (int(x) for x in opened.drawn.split("/"))
    assert done == total and total >= 1
    assert all(width < 20_000 for _, _, _, width in opened.charts)
    if kind == "decision":
        assert "EXAMPLE" in opened.texts["body"]
