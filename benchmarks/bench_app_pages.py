"""Time every app page's load in Debian's headless chromium (the issue's figure: each under 2 s warm).

Run: .venv/bin/python benchmarks/bench_app_pages.py --db infersight.db [--repeat K]

Starts `streamlit run app.py -- --db DB` on a free port, opens each page (`?page=NAME`) at 1400x1000
once to warm the app's caches, then K more times, timing from navigation until the script has finished
and the page's title is drawn (the same readiness test as tests/test_app_pages_browser.py). Prints the
median and the worst warm load per page, and whether the page shows an error.
"""

from __future__ import annotations

import argparse
import os
import socket
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.request
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
PAGES = ["Recommend", "Explore", "Compare", "Trends", "Runs", "Reports"]
READY = """() => { const app = document.querySelector('[data-testid="stApp"]');
    return app && app.getAttribute('data-test-script-state') === 'notRunning'
        && document.querySelector('[data-testid="stMain"] h1') !== null
        && !document.querySelector('[data-testid="stSpinner"], [data-testid="stSkeleton"]'); }"""


def serve(db: str, log: Path) -> tuple[subprocess.Popen, str]:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    proc = subprocess.Popen([sys.executable, "-m", "streamlit", "run", str(ROOT / "app.py"), "--server.headless",
                             "true", "--server.port", str(port), "--server.address", "127.0.0.1",
                             "--browser.gatherUsageStats", "false", "--", "--db", db], cwd=ROOT,
                            stdout=log.open("w"), stderr=subprocess.STDOUT, env={**os.environ, "PYTHONPATH": str(ROOT)})
    url = f"http://127.0.0.1:{port}"
    for _ in range(480):
        try:
            with urllib.request.urlopen(f"{url}/_stcore/health", timeout=5):
                return proc, url
        except OSError:
            time.sleep(0.25)
    proc.kill()
    raise SystemExit(f"streamlit did not start: {log.read_text()[-2000:]}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--db", required=True)
    parser.add_argument("--repeat", type=int, default=3)
    args = parser.parse_args()
    from playwright.sync_api import sync_playwright

    proc, url = serve(args.db, Path(tempfile.mkdtemp()) / "streamlit.log")
    try:
        with sync_playwright() as pw:
            browser = pw.chromium.launch(executable_path="/usr/bin/chromium", args=["--headless", "--no-sandbox"])
            page = browser.new_page(viewport={"width": 1400, "height": 1000})
            for name in PAGES:
                times = []
                for i in range(args.repeat + 1):
                    start = time.perf_counter()
                    page.goto(f"{url}/?page={name}", timeout=300_000)
                    page.wait_for_function(READY, timeout=300_000)
                    if i:  # the first load warms the caches
                        times.append(time.perf_counter() - start)
                errors = page.locator('[data-testid="stAlertContentError"], [data-testid="stException"]').count()
                print(f"{name:10} warm load median {statistics.median(times):5.2f} s, worst {max(times):5.2f} s"
                      f" over {args.repeat}; {'ERRORS shown' if errors else 'no error shown'}")
            browser.close()
    finally:
        proc.terminate()
        proc.wait(timeout=30)
    print(f"load average {os.getloadavg()[0]:.2f} on {os.cpu_count()} CPUs")


if __name__ == "__main__":
    main()
