"""The Run page end to end in Debian's headless chromium: start a run with the page's defaults (digits on
onnxruntime, single_stream, quick), follow it to its result and report, reload and find it again, then
start a long one and cancel it from the page. Real streamlit, real job workers, a real SQLite store."""

from __future__ import annotations

import pytest
from _browser import browser_page, streamlit_app

from runner.store import Store

TIMEOUT_MS = 180_000  # generous: the machine is shared
VIEWPORT = {"width": 1400, "height": 1000}
MAIN = '[data-testid="stMain"]'


@pytest.fixture
def run_app(tmp_path, digits_models, monkeypatch):
    monkeypatch.setenv("INFERSIGHT_JOBS_DIR", str(tmp_path / "jobs"))
    db = tmp_path / "app.db"
    Store(str(db)).close()
    with streamlit_app(db, tmp_path / "streamlit.log") as url:
        yield url, db


def test_start_a_run_from_the_page_see_its_result_and_cancel_a_long_one(run_app, tmp_path):
    url, db = run_app
    problems: list[str] = []
    with browser_page(url, VIEWPORT) as page:
        page.set_default_timeout(TIMEOUT_MS)
        page.on("pageerror", lambda e: problems.append(str(e)))
        page.goto(f"{url}/?page=Run", timeout=TIMEOUT_MS)
        page.get_by_text("No jobs yet").wait_for()
        page.get_by_role("button", name="Start the one run").click()
        page.get_by_text("complete after").wait_for()
        assert "job=1" in page.url
        page.locator(f'{MAIN} [data-testid="stMetric"]').first.wait_for()
        page.get_by_role("button", name="Run report (HTML)").wait_for()
        page.screenshot(path=str(tmp_path / "run-page-result.png"), full_page=True)
        page.reload()  # the job is in the URL: a reload lands on it again
        page.get_by_text("complete after").wait_for()
        page.get_by_text("Settings", exact=True).click()
        page.get_by_label("Scenario settings (YAML)").fill("min_duration_ms: 600000")
        page.get_by_role("button", name="Start the one run").click()
        page.get_by_text("single_stream: warm-up and timed run").wait_for()
        page.get_by_role("button", name="Cancel").click()
        page.get_by_text("cancelled after").wait_for()
        exceptions = page.locator('[data-testid="stException"]').all_inner_texts()
    assert not exceptions and not problems, (exceptions, problems)
    with Store(str(db)) as s:
        runs = {r.id: r for r in s.list_runs()}
    assert runs[1].status == "complete" and runs[1].backend_name == "onnxruntime"
    assert runs[2].status == "aborted"
