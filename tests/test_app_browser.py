"""End to end: `streamlit run app.py` on the app fixture store, driven in Debian's headless chromium by
Playwright: fill the Recommend form, submit, read the top recommendation off the page and check it is
engine.recommend's winner for the same inputs. The screenshot is saved as recommend.png in the test's
tmp_path (pytest prints where when the test fails; the last three runs stay under pytest's basetemp)."""

from __future__ import annotations

from pathlib import Path

import pytest

from _browser import browser_page, require_chromium, streamlit_app
from engine import EXAMPLE_CATALOG, Constraints, load_catalog, recommend
from engine.candidates import load
from infersight.webapp._question import objectives_for
from runner.store import Store

TIMEOUT_MS = 180_000  # generous: the machine is shared and the first script run reads the whole store
OBJECTIVES = objectives_for("server", False)
# the top recommendation is a paragraph 'Top recommendation: NAME' (a metric would cut a long name)
RENDERED = """([label, before]) => {
    const app = document.querySelector('[data-testid="stApp"]');
    const para = Array.from(document.querySelectorAll('[data-testid="stMarkdownContainer"] p'))
        .find(m => m.innerText.startsWith(label));
    const value = para && para.innerText.split(':').slice(1).join(':').trim();
    return app && app.getAttribute('data-test-script-state') === 'notRunning' && value
        && value !== before && !para.closest('[data-stale="true"]');
}"""


@pytest.fixture
def app_server(app_db, tmp_path):
    """`streamlit run app.py -- --db <fixture store>` on a free port; yields its URL, stops it after."""
    with streamlit_app(app_db["db"], tmp_path / "streamlit.log") as url:
        yield url


def engine_winner(db: Path, objective: str) -> str:
    """engine.recommend's top candidate for the form's inputs (the page's defaults: accuracy >= 0.99 of
    the reference, the example catalogue, no target load)."""
    with Store(str(db)) as store:
        rec = recommend(load(store, "resnet50", "server"), Constraints.build(max_p99_ms=15, min_accuracy_ratio=0.99),
                        objective, load_catalog(EXAMPLE_CATALOG))
    return rec.winner["candidate"]


def choose(page, label: str, option: str) -> None:
    box = page.get_by_label(label, exact=True)
    box.click()
    page.get_by_role("option", name=option, exact=True).click()
    page.wait_for_function("([l, v]) => document.querySelector(`input[aria-label='${l}']`).value === v",
                           arg=[label, option], timeout=TIMEOUT_MS)


def submit_and_read(page, before: str) -> str:
    page.get_by_test_id("stFormSubmitButton").get_by_role("button").click()
    page.wait_for_function(RENDERED, arg=["Top recommendation", before], timeout=TIMEOUT_MS)
    return read(page)


def read(page) -> str:
    para = page.locator('[data-testid="stMarkdownContainer"] p').filter(has_text="Top recommendation").first
    return para.inner_text().split(":", 1)[1].strip()


def test_recommend_form_in_a_real_browser(app_server, app_db, tmp_path):
    require_chromium()
    by_cost, by_throughput = engine_winner(app_db["db"], "cost"), engine_winner(app_db["db"], "throughput")
    assert by_cost != by_throughput  # so the answer on the page must change with the objective
    problems: list[str] = []
    with browser_page(app_server, {"width": 1400, "height": 1800}) as page:
        page.set_default_timeout(TIMEOUT_MS)
        page.on("pageerror", lambda e: problems.append(str(e)))
        page.goto(f"{app_server}/?page=Recommend", timeout=TIMEOUT_MS)
        page.wait_for_function(RENDERED, arg=["Top recommendation", ""], timeout=TIMEOUT_MS)
        initial = read(page)
        choose(page, "Objective", OBJECTIVES["throughput"])
        first = submit_and_read(page, initial)
        assert first == by_throughput
        choose(page, "Task", "resnet50")
        choose(page, "Scenario", "server")
        choose(page, "Objective", OBJECTIVES["cost"])
        page.get_by_label("max p99 latency (ms), 0: none", exact=True).fill("15")
        shown = submit_and_read(page, first)
        page.screenshot(path=str(tmp_path / "recommend.png"), full_page=True)
    assert shown == by_cost
    assert problems == []
    assert (tmp_path / "recommend.png").stat().st_size > 10_000
