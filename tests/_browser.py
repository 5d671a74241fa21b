"""Open a report in Debian's chromium (driven by Playwright, executable_path set; `playwright install`
is never needed) with every request but file:// aborted, and say what happened: the requests it
tried, console errors, whether any injected script ran, and what each chart drew. browser_page()
and watch() are the pieces, for tests that drive the browser themselves."""

from __future__ import annotations

import atexit
import contextlib
import json
import os
import re
import shutil
import socket
import subprocess
import sys
import time
import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest

CHROMIUM = Path("/usr/bin/chromium")
BROWSER_ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
                "--disable-component-update", "--no-first-run", "--disable-sync"]
A4_CONTENT_PX = 186 / 25.4 * 96  # A4 width less the reports' 12 mm print margins, in CSS px
SPEC_RE = re.compile(r'<script type="application/json" class="chart-spec" data-target="chart-([\w-]+)">(.*?)</script>',
                     re.S)
# per chart: id, SVG/canvas elements, marks drawn (paths, shapes, text with content), its width in px
CHARTS = """Array.from(document.querySelectorAll('div.chart')).map(d => [
    d.id, d.querySelectorAll('svg, canvas').length,
    d.querySelectorAll('svg .mark-symbol path, svg .mark-line path, svg .mark-rule line, svg .mark-rect path, '
                       + 'svg .mark-area path, svg .mark-text text').length,
    Math.max(0, ...Array.from(d.querySelectorAll('svg')).map(s => s.getBoundingClientRect().width))])"""
# An injected `alert(...)` or `onerror=` handler would call one of these; each records that it ran.
TRAPS = """for (const name of ['alert', 'confirm', 'prompt']) {
    window[name] = (...args) => { (window.__injected = window.__injected || []).push(name + ':' + args.join()); }; }"""


@dataclass
class Opened:
    """What the browser saw: charts drawn ('k/n'), per chart (id, svg count, marks, width), requests
    made, console errors and page errors, injected calls, and the screenshot's path."""

    drawn: str
    charts: list[list]
    requests: list[str]
    problems: list[str]
    injected: list[str]
    screenshot: Path
    texts: dict[str, str] = field(default_factory=dict)

    @property
    def outside(self) -> list[str]:
        return [u for u in self.requests if not u.startswith("file://")]


def chart_specs(html: str) -> dict[str, dict]:
    """The Vega-Lite spec of every chart in a report, by chart key."""
    return {key: json.loads(body) for key, body in SPEC_RE.findall(html)}


def require_chromium() -> None:
    """Fail the test, saying how to install it, when Debian's chromium is missing."""
    if not CHROMIUM.is_file() or shutil.which(str(CHROMIUM)) is None:
        pytest.fail(f"{CHROMIUM} is missing: run `make chromium` (installs Debian's chromium) and test again")


@contextlib.contextmanager
def browser_page(allow: str, viewport: dict[str, int]) -> Iterator[Any]:
    """A Playwright page in Debian's headless chromium (executable_path set; the test fails when chromium
    is missing) that aborts every request whose URL does not start with `allow`. Each page has a browser
    context of its own (cookies, storage, cache: a fresh profile), closed after; the browser itself is
    launched once per test process (launching it for every page cost seconds a test)."""
    require_chromium()
    context = _browser().new_context(viewport=viewport)
    try:
        page = context.new_page()
        page.route("**/*", lambda route: route.continue_() if route.request.url.startswith(allow)
                   else route.abort())
        yield page
    finally:
        context.close()


_SHARED: dict[str, Any] = {}


def _browser() -> Any:
    """The process's chromium, launched on first use (again if it has gone), stopped when the process ends."""
    browser = _SHARED.get("browser")
    if browser is None or not browser.is_connected():
        if "playwright" not in _SHARED:
            from playwright.sync_api import sync_playwright

            _SHARED["playwright"] = sync_playwright().start()
            atexit.register(_stop_browser)
        _SHARED["browser"] = _SHARED["playwright"].chromium.launch(executable_path=str(CHROMIUM), args=BROWSER_ARGS)
    return _SHARED["browser"]


def _stop_browser() -> None:
    with contextlib.suppress(Exception):  # the process is ending: the driver goes with it anyway
        _SHARED.pop("browser").close()
    with contextlib.suppress(Exception):
        _SHARED.pop("playwright").stop()


def watch(page: Any, requests: list[str], problems: list[str]) -> None:
    """Record every request's URL in `requests`, and console errors and page errors in `problems`."""
    page.on("request", lambda r: requests.append(r.url))
    page.on("console", lambda m: problems.append(m.text) if m.type == "error" else None)
    page.on("pageerror", lambda e: problems.append(str(e)))


def open_offline(html: str, folder: Path, name: str) -> Opened:
    """Write `html` to folder/name.html, open it in chromium with the network blocked, wait for every
    chart, take a full-page screenshot (folder/name.png)."""
    page_file = folder / f"{name}.html"
    page_file.write_text(html, encoding="utf-8")
    shot = folder / f"{name}.png"
    requests: list[str] = []
    problems: list[str] = []
    with browser_page("file://", {"width": 1000, "height": 1400}) as page:
        page.add_init_script(TRAPS)
        watch(page, requests, problems)
        page.goto(page_file.as_uri())
        page.wait_for_function("document.body.hasAttribute('data-charts') || "
                               "!document.querySelector('script.chart-spec')", timeout=60_000)
        drawn = page.evaluate("document.body.getAttribute('data-charts') || '0/0'")
        charts = page.evaluate(CHARTS)
        injected = page.evaluate("window.__injected || []")
        texts = {"body": page.inner_text("body")}
        page.screenshot(path=str(shot), full_page=True)
    return Opened(drawn, charts, requests, problems, injected, shot, texts)


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@contextlib.contextmanager
def streamlit_app(db: Path, log_path: Path) -> Iterator[str]:
    """`streamlit run app.py -- --db DB` on a free port (its output in log_path); yields its URL once
    /_stcore/health answers, stops it after."""
    repo = Path(__file__).resolve().parent.parent
    port = free_port()
    cmd = [sys.executable, "-m", "streamlit", "run", str(repo / "app.py"), "--server.headless", "true",
           "--server.port", str(port), "--server.address", "127.0.0.1", "--browser.gatherUsageStats", "false",
           "--", "--db", str(db)]
    with log_path.open("w") as log:
        proc = subprocess.Popen(cmd, cwd=repo, stdout=log, stderr=subprocess.STDOUT,
                                env={**os.environ, "PYTHONPATH": str(repo)})
        url = f"http://127.0.0.1:{port}"
        try:
            deadline = time.monotonic() + 120
            while True:
                assert proc.poll() is None, f"streamlit exited {proc.returncode}: {log_path.read_text()}"
                try:
                    with urllib.request.urlopen(f"{url}/_stcore/health", timeout=5) as reply:
                        if reply.status == 200:
                            break
                except OSError:
                    pass
                assert time.monotonic() < deadline, "streamlit did not answer /_stcore/health within 120 s"
                time.sleep(0.25)
            yield url
        finally:
            proc.terminate()
            try:
                proc.wait(timeout=30)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()
