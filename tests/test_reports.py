"""The run report and the badges: content, escaping, no network, downsampling, and a real browser."""

from __future__ import annotations

import json
import re
import time
import xml.etree.ElementTree as ET
from pathlib import Path

import numpy as np
import pytest

from _browser import A4_CONTENT_PX, browser_page, chart_specs, watch
from conftest import cli
from reports.badges import NoVerdictYet, format_headline, render_badge, run_badge, text_width
from reports.charts import MAX_POINTS
from reports.run import render_run_report
from runner.run import RunRequest, execute_run, prepare_run
from runner.store import RunRecord, Store

EVIL = "<script>alert(1)</script>"
MLPERF = Path(__file__).resolve().parents[2] / "shared/data/mlperf/v4.1"
MLPERF_RESULT = "closed/NVIDIA/results/H200-SXM-141GBx8_TRT/resnet50/Server"


@pytest.fixture(scope="module")
def report_db(tmp_path_factory, digits_models) -> tuple[Path, int]:
    """A store with one quick single_stream run of digits on a system named with a script tag."""
    db = tmp_path_factory.mktemp("reports") / "reports.db"
    with Store(str(db)) as store:
        req = RunRequest("digits", scenario="single_stream", quick=True, system_extra={"system_name": EVIL})
        run_id = execute_run(prepare_run(req), store)
    return db, run_id


@pytest.fixture(scope="module")
def report_html(report_db) -> str:
    db, run_id = report_db
    with Store(str(db)) as store:
        return render_run_report(store, run_id)


def data_rows(spec: dict) -> list[int]:
    """Row counts of every inline dataset of a spec; fails on data loaded from a URL."""
    counts = []

    def walk(node):
        if isinstance(node, dict):
            assert "url" not in node or not isinstance(node.get("url"), str), f"data from a URL: {node}"
            for value in node.values():
                walk(value)
        elif isinstance(node, list):
            for value in node:
                walk(value)

    walk(spec)
    counts += [len(rows) for rows in spec.get("datasets", {}).values()]
    return counts


# -- the run report -----------------------------------------------------------------------------

def test_run_report_holds_the_cards_headline_validity_and_seeds(report_db, report_html):
    db, run_id = report_db
    with Store(str(db)) as store:
        run = store.get_run(run_id)
    html = report_html
    for heading in ("task card", "model card", "backend card", "system card", "Validity", "Seeds",
                    "Four cards and two logs", "Accuracy against target"):
        assert heading in html, heading
    assert format_headline(run) in html and run.validity == "VALID" and ">VALID<" in html
    assert str(run.settings["scenario"]["schedule_rng_seed"]) in html
    assert run.uuid in html and "Complete: the task, model, backend and system cards" in html
    from analysis.views import analyze_run
    from reports._page import format_cell

    with Store(str(db)) as store:
        ci = analyze_run(store, run_id)["headline_ci"]
    # single_stream's headline is MLPerf's early-stopping estimate; the interval is of the plain p90
    assert ci["estimate"] == run.summary["latency_p90_ms"] and ci["low"] <= ci["estimate"] <= ci["high"]
    assert 'id="headline-ci"' in html and "% confidence interval" in html
    assert f"{format_cell(ci['low'])} .. {format_cell(ci['high'])}" in html
    assert "a --quick run" in html  # why it is not compliant
    assert set(chart_specs(html)) == {"latency_histogram", "latency_cdf", "latency_over_time", "throughput",
                                      "accuracy"}
    assert "class 9" in html  # per-class accuracy of the digits classifier


def test_run_report_escapes_strings_from_cards(report_html):
    assert EVIL not in report_html
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in report_html
    # the only script elements: the Vega bundle, the chart specs (JSON, not run) and the embedding code
    opening = re.findall(r"<script\b[^>]*>", report_html, re.I)
    assert len(opening) == 2 + len(chart_specs(report_html)), opening


# The only URLs inside the inlined Vega bundle: XML namespaces, the $schema id of compiled specs, an
# issue link in an error message, and Vega-Embed's "open in editor" link (not shown: actions are off).
BUNDLE_URLS = {"http://www.w3.org/2000/svg", "http://www.w3.org/1999/xlink", "http://www.w3.org/2000/xmlns/",
               "https://vega.github.io/schema/vega/v6.json", "https://vega.github.io/editor/",
               "https://github.com/vega/vega-lite/issues/2415"}


def test_run_report_loads_nothing_from_the_network(report_html):
    html = report_html
    scripts = re.findall(r"<script\b[^>]*>(.*?)</script>", html, re.S | re.I)
    markup = re.sub(r"(<script\b[^>]*>).*?(</script>)", r"\1\2", html, flags=re.S | re.I)
    assert not re.search(r"<(script|img|iframe|embed|source|audio|video|object)\b[^>]*\b(src|data)\s*=", markup, re.I)
    assert not re.search(r"<link\b", markup, re.I) and "@import" not in markup
    assert not re.search(r"""(href|src|action)\s*=\s*["']?\s*(https?:)?//""", markup, re.I)
    assert not re.search(r"""url\(\s*['"]?\s*(https?:)?//""", html, re.I)
    assert "default-src 'none'" in markup  # the page's CSP forbids any request, should one be attempted
    bundle, embed = scripts[0], scripts[-1]
    assert set(re.findall(r"https?://[^\s\"'`)]+", bundle)) <= BUNDLE_URLS
    assert "actions: false" in embed and not re.search(r"https?://", embed)
    for key, spec in chart_specs(html).items():
        assert all(0 < n <= MAX_POINTS for n in data_rows(spec)), key


def test_report_command_writes_the_file(report_db, tmp_path):
    db, run_id = report_db
    target = tmp_path / "run.html"
    proc = cli("report", "run", str(run_id), "--out", str(target), "--json", db=db, check=True)
    result = json.loads(proc.stdout)
    assert result["out"] == str(target) and result["bytes"] == target.stat().st_size
    assert "<!DOCTYPE html>" in target.read_text() and cli("report", "run", "99", db=db).returncode == 2


def new_run_like(store: Store, source: Store, run: RunRecord) -> int:
    """A new run in store with the cards and settings of a stored run (status running, no logs)."""
    hashes = {kind: store.put_card(kind, source.get_card(kind, run.card_hashes[kind]), run.card_hashes[kind], kind)
              for kind in ("task", "model", "backend", "system")}
    return store.create_run(task_name="digits", task_version=run.task_version, model_variant="fp32",
                            backend_name="onnxruntime", scenario="single_stream", card_hashes=hashes,
                            settings=run.settings, quick=True, compliant=False)


def test_large_run_is_downsampled_into_a_small_file(report_db, tmp_path):
    """300,000 per-query records (the cards of the quick run, synthetic timings) give a report of
    at most MAX_POINTS rows per dataset and a few MB."""
    db, run_id = report_db
    with Store(str(tmp_path / "large.db")) as store, Store(str(db)) as source:
        run = source.get_run(run_id)
        big = new_run_like(store, source, run)
        n = 300_000
        rng = np.random.default_rng(7)
        latency = (rng.lognormal(np.log(120_000), 0.2, n)).astype(np.int64)
        scheduled = np.cumsum(latency) - latency
        store.append_perf_samples(big, {"sample_index": rng.integers(0, 360, n), "query_index": np.arange(n),
                                        "scheduled_ns": scheduled, "issued_ns": scheduled + 1000,
                                        "completed_ns": scheduled + latency})
        store.finish_run(big, status="complete", validity="VALID", headline_metric="latency_p90_ms",
                         headline_value=float(np.quantile(latency, 0.9)) / 1e6, headline_units="ms",
                         summary={**run.summary, "sample_count": n, "query_count": n})
        started = time.perf_counter()
        html = render_run_report(store, big)
        seconds = time.perf_counter() - started
    specs = chart_specs(html)
    assert {"latency_histogram", "latency_cdf", "latency_over_time", "throughput"} <= set(specs)
    assert "accuracy" not in specs and "accuracy log: no per-sample predictions" in html
    for key, spec in specs.items():
        assert max(data_rows(spec)) <= MAX_POINTS, key
    assert len(html) < 3_000_000 and seconds < 60, (len(html), seconds)


def test_aborted_run_without_logs_reports_what_is_missing(report_db, tmp_path):
    db, run_id = report_db
    with Store(str(tmp_path / "aborted.db")) as store, Store(str(db)) as source:
        aborted = new_run_like(store, source, source.get_run(run_id))
        store.mark_aborted(aborted, "stopped by <b>Ctrl-C</b>")
        html = render_run_report(store, aborted)
        run = store.get_run(aborted)
    assert chart_specs(html) == {} and "vegaEmbed" not in html  # no empty charts, no chart code
    assert "status: aborted" in html and "no verdict" in html and "no per-query records" in html
    assert "stopped by &lt;b&gt;Ctrl-C&lt;/b&gt;" in html
    assert "performance log: no per-query records" in html  # the completeness check, spelled out
    badge = run_badge(run, "validity")
    assert badge.message == "no verdict (aborted)" and badge.color == "#9f9f9f"


def test_imported_mlperf_run_shows_published_percentiles_and_provenance(tmp_path):
    from runner.importers import import_tree

    with Store(str(tmp_path / "mlperf.db")) as store:
        import_tree(store, MLPERF / "closed/NVIDIA", "v4.1")
        run = next(r for r in store.list_runs(source="mlperf", limit=None)
                   if r.imported["source_path"] == MLPERF_RESULT)
        html = render_run_report(store, run.id)
    specs = chart_specs(html)
    assert set(specs) == {"percentiles_0", "accuracy"}  # no empty per-query charts
    bars = next(rows for rows in specs["percentiles_0"]["datasets"].values() if rows and "percentile" in rows[0])
    assert [r["percentile"] for r in bars] == ["p50", "p90", "p95", "p97", "p99", "p99.9"]
    published = run.summary["percentiles_ns"]["latency"]["99"] / 1e6
    assert any(abs(r["ms"] - published) < 1e-9 for r in bars)
    assert "MLPerf publishes no per-query records" in html and "latency bound" in html
    assert "imported: submitter" in html and "NVIDIA" in html and MLPERF_RESULT in html
    assert "Queries/s" in html and "TEST01" in html


# -- badges -------------------------------------------------------------------------------------

def parse_badge(svg: str) -> tuple[ET.Element, list[str]]:
    root = ET.fromstring(svg)
    texts = [t.text for t in root.iter("{http://www.w3.org/2000/svg}text") if t.get("aria-hidden") != "true"]
    return root, texts


def test_badges_are_valid_svg_with_the_figures(report_db):
    db, run_id = report_db
    with Store(str(db)) as store:
        run = store.get_run(run_id)
    root, texts = parse_badge(run_badge(run, "validity").svg())
    assert texts == ["digits single_stream", f"VALID (quick) \u00b7 p90 {run.headline_value:.4g} ms"]
    assert root.get("height") == "20" and root.find("{http://www.w3.org/2000/svg}title") is not None
    _, texts = parse_badge(run_badge(run, "accuracy").svg())
    value, target = run.accuracy_value, run.accuracy_target
    assert texts == ["accuracy verified", f"top1_accuracy {value:.4g} \u2265 {target:.4g}"]
    failed = run.model_copy(update={"validity": "INVALID", "accuracy_passed": False, "accuracy_value": 0.5})
    assert 'fill="#e05d44"' in run_badge(failed, "validity").svg()
    assert parse_badge(run_badge(failed, "accuracy").svg())[1][0] == "accuracy"
    with pytest.raises(NoVerdictYet, match="no reproducibility verdict exists yet"):
        run_badge(run, "reproducible")


def test_badge_text_is_escaped_and_sized_by_verdana_widths():
    svg = render_badge('a<b & "c"', "</svg><script>x</script>")
    root, texts = parse_badge(svg)
    assert texts == ['a<b & "c"', "</svg><script>x</script>"] and "<script>" not in svg
    assert text_width("VALID") == pytest.approx(7.52 + 7.52 + 6.12 + 4.63 + 8.48)
    wide, narrow = parse_badge(render_badge("x", "W" * 20))[0], parse_badge(render_badge("x", "i" * 20))[0]
    assert int(wide.get("width")) > 3 * int(narrow.get("width")) - 60


def test_badge_command(report_db, tmp_path):
    db, run_id = report_db
    target = tmp_path / "badge.svg"
    cli("badge", str(run_id), "--out", str(target), db=db, check=True)
    assert parse_badge(target.read_text())[1][1].startswith("VALID")
    proc = cli("badge", str(run_id), "--kind", "reproducible", "--out", str(tmp_path / "r.svg"), db=db)
    assert proc.returncode == 1 and "no reproducibility verdict exists yet" in proc.stderr
    assert not (tmp_path / "r.svg").exists()


# -- a real browser, network blocked ----------------------------------------------------------------

def test_badges_render_in_a_real_browser(report_db, tmp_path):
    """Each badge kind opened as an SVG file in headless chromium: drawn at its own size, both texts
    laid out with their declared widths, no request leaves the file, no console error; a screenshot each."""
    db, run_id = report_db
    with Store(str(db)) as store:
        run = store.get_run(run_id)
    badges = {"validity": run_badge(run, "validity"), "accuracy": run_badge(run, "accuracy"),
              "escaped": render_badge('a<b & "c"', '"><img src=x onerror=alert(1)>')}
    with browser_page("file://", {"width": 400, "height": 60}) as page:
        for name, badge in badges.items():
            svg = badge if isinstance(badge, str) else badge.svg()
            path = tmp_path / f"{name}.svg"
            path.write_text(svg, encoding="utf-8")
            requests, problems = [], []
            watch(page, requests, problems)
            page.goto(path.as_uri())
            width = page.evaluate("document.documentElement.getBoundingClientRect().width")
            texts = page.evaluate("Array.from(document.querySelectorAll('text')).map(t => t.getComputedTextLength())")
            root, _ = parse_badge(svg)
            assert width == pytest.approx(float(root.get("width")), abs=1), name
            assert texts and min(texts) > 0, f"{name}: a text did not lay out"
            assert page.evaluate("document.querySelectorAll('img, script').length") == 0, name
            assert not [u for u in requests if not u.startswith("file://")] and not problems, (name, requests, problems)
            page.screenshot(path=str(tmp_path / f"{name}.png"))
            assert (tmp_path / f"{name}.png").stat().st_size > 200


CHART_SIZES = """Array.from(document.querySelectorAll('div.chart')).map(d => [
    d.id, d.querySelectorAll('svg, canvas').length, d.getBoundingClientRect().width,
    Math.max(0, ...Array.from(d.querySelectorAll('svg')).map(s => s.getBoundingClientRect().width))])"""


def test_report_renders_offline_in_chromium(report_html, tmp_path):
    """Debian's chromium, driven by Playwright, opens the report with every non-file request aborted:
    the charts render, nothing is requested, the console stays clean, and it prints to A4."""
    page_file = tmp_path / "run-report.html"
    page_file.write_text(report_html, encoding="utf-8")
    requests, problems = [], []
    with browser_page("file://", {"width": 1000, "height": 1400}) as page:
        watch(page, requests, problems)
        page.goto(page_file.as_uri())
        page.wait_for_function("document.body.hasAttribute('data-charts')", timeout=60_000)
        drawn = page.evaluate("document.body.getAttribute('data-charts')")
        charts = page.evaluate(CHART_SIZES)
        page.screenshot(path=str(tmp_path / "run-report.png"), full_page=True)
        page.emulate_media(media="print")
        pdf = page.pdf(path=str(tmp_path / "run-report.pdf"), format="A4", print_background=True)
    assert drawn == "5/5", drawn
    assert len(charts) == 5 and all(count >= 1 for _, count, _, _ in charts), charts
    assert all(width <= A4_CONTENT_PX for *_, width in charts), charts  # charts fit an A4 page
    assert [u for u in requests if not u.startswith("file://")] == []
    assert problems == []
    assert pdf.startswith(b"%PDF") and (tmp_path / "run-report.png").stat().st_size > 20_000
