"""The page machinery every report shares: the Jinja2 environment (autoescaped), the inlined
Vega/Vega-Lite/Vega-Embed JavaScript, and how chart specs are embedded.

A report is one HTML file that opens with no network: the three libraries come from
vl-convert-python's bundle (the JavaScript ships inside the wheel, nothing is fetched) and every
chart's data sits inline in its Vega-Lite spec, in a `<script type="application/json">` block
written with Jinja's `tojson` (which escapes `<`, `>`, `&` and `'`, so no string in a spec can
close the script element).
"""

from __future__ import annotations

import functools
import os
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

import jinja2

from runner.backends.base import distribution_version

__all__ = ["ChartBlock", "render_page", "vega_javascript", "environment", "significant", "signed_percent"]


@dataclass(frozen=True)
class ChartBlock:
    """One chart in a report: an element id, a Vega-Lite spec (a dict), a caption under it."""

    key: str
    spec: dict[str, Any]
    caption: str = ""


@functools.lru_cache(maxsize=1)
def environment() -> jinja2.Environment:
    """The Jinja2 environment of reports/templates, autoescaping every expression."""
    env = jinja2.Environment(loader=jinja2.PackageLoader("reports", "templates"), autoescape=True,
                             undefined=jinja2.StrictUndefined, trim_blocks=True, lstrip_blocks=True,
                             keep_trailing_newline=True)
    env.filters["number"] = format_cell
    env.filters["sig"] = significant
    env.filters["pct"] = signed_percent
    return env


@functools.lru_cache(maxsize=1)
def vega_javascript() -> str:
    """Vega, Vega-Lite and Vega-Embed in one script defining window.vega, vegaLite and vegaEmbed.

    The Vega-Lite version matches the one Altair writes specs for. Bundling takes vl-convert a few
    seconds, so the bundle is kept in the user's cache folder, keyed by the versions that make it.
    """
    import altair
    import vl_convert

    major_minor = ".".join(altair.SCHEMA_VERSION.lstrip("v").split(".")[:2])
    vl_version = major_minor if major_minor in vl_convert.get_vegalite_versions() else None
    key = f"vega-bundle-{distribution_version('vl-convert-python')}-vl{vl_version or 'latest'}.js"
    cached = _cache_dir() / key
    if cached.is_file():
        return cached.read_text(encoding="utf-8")
    code = vl_convert.javascript_bundle(vl_version=vl_version)
    if "</script" in code.lower():  # cannot happen with today's bundle; would end the inline script early
        code = code.replace("</script", "<\\/script").replace("</SCRIPT", "<\\/SCRIPT")
    _write_quietly(cached, code)
    return code


def _cache_dir() -> Path:
    """$XDG_CACHE_HOME/infersight (default ~/.cache/infersight)."""
    return Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache") / "infersight"


def _write_quietly(path: Path, text: str) -> None:
    """Write a cache file atomically; a cache that cannot be written is simply not kept."""
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        temporary = path.with_name(f"{path.name}.{os.getpid()}.tmp")
        temporary.write_text(text, encoding="utf-8")
        os.replace(temporary, path)
    except OSError:
        pass


def format_cell(value: Any) -> str:
    """A table cell's text: numbers compactly, lists joined, None as a dash (escaping stays Jinja's)."""
    if value is None or value == "":
        return "-"
    if isinstance(value, bool):
        return "yes" if value else "no"
    if isinstance(value, float):
        return f"{value:,.6g}" if abs(value) < 1e15 else f"{value:.6g}"
    if isinstance(value, int):
        return str(value)
    if isinstance(value, (list, tuple)):
        return ", ".join(format_cell(v) for v in value) or "-"
    return str(value)


def significant(value: Any, digits: int = 4) -> str:
    """A figure to `digits` significant digits, thousands separated from 1,000 up; None and NaN as a dash,
    anything not a number as its text."""
    if value is None or (isinstance(value, float) and value != value):
        return "-"
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        return str(value)
    return f"{value:,.0f}" if abs(value) >= 1000 else f"{value:.{digits}g}"


def signed_percent(ratio: Any, minus_one: bool = False) -> str:
    """A fraction as a signed percentage ('+4.2%'); with minus_one, a ratio's change (1.042 -> '+4.2%')."""
    if ratio is None or (isinstance(ratio, float) and ratio != ratio):
        return "-"
    return f"{(ratio - 1 if minus_one else ratio):+.1%}"


def render_page(template: str, context: dict[str, Any], charts: list[ChartBlock]) -> str:
    """Render a report template (which extends base.html.j2) with its charts inlined."""
    page = environment().get_template(template)
    return page.render(**context, charts={c.key: c for c in charts}, chart_list=charts,
                       vega_js=vega_javascript() if charts else "", version=distribution_version("infersight"),
                       generated_at=datetime.now(timezone.utc).strftime("%Y-%m-%d %H:%M UTC"))
