"""SVG badges for a run, in shields.io's flat style, written by hand (no network, no template engine).

Three kinds: `validity` (VALID/INVALID with the headline figure), `accuracy` ("accuracy verified"
when the quality metric meets its target, with the value) and `reproducible` (from the statistics
layer's reproducibility verdict on the run's configuration, `reproducibility_verdict`: every
replica within 2% of their median; a run whose configuration has fewer than two complete runs gets
no badge but NoVerdictYet saying why, never an invented verdict). Text widths come from Verdana
11px advance widths, as shields computes them, so a badge is as wide as its text.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from typing import Any
from xml.sax.saxutils import escape, quoteattr

from runner.errors import InfersightError
from runner.store import RunRecord, Store

__all__ = ["Badge", "BADGE_KINDS", "NoVerdictYet", "run_badge", "render_badge", "text_width", "format_headline",
           "reproducibility_verdict"]

BADGE_KINDS = ("validity", "accuracy", "reproducible")

GREEN, RED, GREY, YELLOW, LABEL_GREY = "#4c1", "#e05d44", "#9f9f9f", "#dfb317", "#555"

# Advance widths (px) of the printable ASCII characters 32..126 in Verdana at 11px, the font and
# size shields.io measures badge text in (the figures are those of the MIT-licensed anafanafo
# table that shields uses). Other characters count as FALLBACK_WIDTH, a wide glyph, so a badge
# never clips its text.
_ASCII_WIDTHS = (
    3.87, 4.33, 5.05, 9, 6.99, 11.84, 7.99, 2.95, 5, 5, 6.99, 9, 4, 5, 4, 5,  # space ! " # $ % & ' ( ) * + , - . /
    6.99, 6.99, 6.99, 6.99, 6.99, 6.99, 6.99, 6.99, 6.99, 6.99, 5, 5, 9, 9, 9, 6,  # 0-9 : ; < = > ?
    11, 7.52, 7.54, 7.68, 8.48, 6.96, 6.32, 8.53, 8.27, 4.63, 5, 7.62, 6.12, 9.27, 8.23, 8.66,  # @ A-O
    6.63, 8.66, 7.65, 7.52, 6.78, 8.05, 7.52, 10.88, 7.54, 6.77, 7.54, 5, 5, 5, 9, 6.99,  # P-Z [ \ ] ^ _
    6.99, 6.61, 6.85, 5.73, 6.85, 6.55, 3.87, 6.85, 6.96, 3.02, 3.79, 6.51, 3.02, 10.7, 6.96, 6.68,  # ` a-o
    6.85, 6.85, 4.69, 5.73, 4.33, 6.96, 6.51, 9, 6.51, 6.51, 5.78, 6.98, 5, 6.98, 9,  # p-z { | } ~
)
_EXTRA_WIDTHS = {"\u00b7": 4.0, "\u00b1": 9.0, "\u00b5": 7.06, "\u00d7": 9.0, "\u2265": 9.0, "\u2264": 9.0}
FALLBACK_WIDTH = 11.0
HEIGHT, PADDING = 20, 5


class NoVerdictYet(InfersightError):
    """A badge needs a verdict that does not exist (e.g. reproducibility of a configuration run once)."""

    exit_code = 1


@dataclass(frozen=True)
class Badge:
    """The two halves of a badge: grey label on the left, coloured message on the right."""

    label: str
    message: str
    color: str = GREEN

    def svg(self) -> str:
        """This badge as a standalone SVG document."""
        return render_badge(self.label, self.message, self.color)


def text_width(text: str) -> float:
    """Width of text in px in Verdana 11px (shields' measure), wide fallback for unknown glyphs."""
    total = 0.0
    for char in text:
        code = ord(char)
        total += _ASCII_WIDTHS[code - 32] if 32 <= code <= 126 else _EXTRA_WIDTHS.get(char, FALLBACK_WIDTH)
    return total


def _odd_width(text: str) -> int:
    """Text width rounded down to whole px, then up to an odd number (shields' pixel-grid rule)."""
    width = int(text_width(text))
    return width if width % 2 else width + 1


def render_badge(label: str, message: str, color: str = GREEN) -> str:
    """A flat shields-style badge; label and message are XML-escaped, so any text is safe."""
    left = _odd_width(label) + 2 * PADDING
    right = _odd_width(message) + 2 * PADDING
    width = left + right
    accessible = f"{label}: {message}"
    # ids unique to the badge's content, so several badges inlined in one HTML page keep their own clip
    uid = hashlib.sha256(f"{label}\0{message}\0{color}".encode()).hexdigest()[:8]
    return "".join([
        f'<svg xmlns="http://www.w3.org/2000/svg" width="{width}" height="{HEIGHT}" role="img" '
        f'aria-label={quoteattr(accessible)}>',
        f"<title>{escape(accessible)}</title>",
        f'<linearGradient id="s{uid}" x2="0" y2="100%"><stop offset="0" stop-color="#bbb" stop-opacity=".1"/>'
        '<stop offset="1" stop-opacity=".1"/></linearGradient>',
        f'<clipPath id="r{uid}"><rect width="{width}" height="{HEIGHT}" rx="3" fill="#fff"/></clipPath>',
        f'<g clip-path="url(#r{uid})"><rect width="{left}" height="{HEIGHT}" fill="{LABEL_GREY}"/>'
        f'<rect x="{left}" width="{right}" height="{HEIGHT}" fill="{_colour(color)}"/>'
        f'<rect width="{width}" height="{HEIGHT}" fill="url(#s{uid})"/></g>',
        '<g fill="#fff" text-anchor="middle" font-family="Verdana,Geneva,DejaVu Sans,sans-serif" '
        'text-rendering="geometricPrecision" font-size="110">',
        _text(label, 5 * left, _odd_width(label)),
        _text(message, 10 * left + 5 * right, _odd_width(message)),
        "</g></svg>\n",
    ])


def _text(text: str, x_tenths: int, width: int) -> str:
    """A text with its shadow, at 10x scale (shields' trick for sub-pixel placement)."""
    body = escape(text)
    return (f'<text aria-hidden="true" x="{x_tenths}" y="150" fill="#010101" fill-opacity=".3" '
            f'transform="scale(.1)" textLength="{10 * width}">{body}</text>'
            f'<text x="{x_tenths}" y="140" transform="scale(.1)" fill="#fff" textLength="{10 * width}">{body}</text>')


def _colour(color: str) -> str:
    """A colour safe to put in an attribute: #rgb/#rrggbb or a plain name, else grey."""
    plain = color.lstrip("#")
    return color if plain.isalnum() and len(color) <= 20 else GREY


def format_number(value: float) -> str:
    """4 significant digits below 1000, whole numbers with thousands separators above."""
    return f"{value:,.0f}" if abs(value) >= 1000 else f"{value:.4g}"


def format_headline(run: RunRecord) -> str:
    """The headline figure in a few characters: 'p90 0.1258 ms', '34,428 samples/s'."""
    if run.headline_value is None:
        return "no headline"
    metric = str(run.headline_metric or "")
    name = metric.removeprefix("latency_").removesuffix("_ms") if metric.startswith("latency_") else ""
    units = run.headline_units or ""
    return " ".join(part for part in (name, format_number(run.headline_value), units) if part)


def run_badge(run: RunRecord, kind: str = "validity", verdict: dict[str, Any] | None = None) -> Badge:
    """The badge of a kind for a stored run (a `store.get_run` dict).

    `verdict` is a reproducibility verdict (`reproducibility_verdict(store, run)`: {"reproducible": bool,
    "cv": float, "run_ids": [...], "max_deviation": float, "tolerance": float, ...}) for the `reproducible`
    kind; without one that kind raises NoVerdictYet.
    """
    if kind == "validity":
        return _validity_badge(run)
    if kind == "accuracy":
        return _accuracy_badge(run)
    if kind == "reproducible":
        return _reproducible_badge(run, verdict)
    raise ValueError(f"badge kind must be one of {', '.join(BADGE_KINDS)}, not {kind!r}")


def _validity_badge(run: RunRecord) -> Badge:
    label = f"{run.task_name} {run.scenario}"
    if run.status != "complete" or run.validity is None:
        return Badge(label, f"no verdict ({run.status})", GREY)
    note = " (quick)" if run.quick else ("" if run.compliant else " (non-compliant)")
    if run.validity == "LOADGEN_LIMIT":  # neither VALID nor INVALID: the load generator fell behind
        return Badge(label, f"load-generator limit{note}", YELLOW)
    color = GREEN if run.validity == "VALID" else RED
    return Badge(label, f"{run.validity}{note} \u00b7 {format_headline(run)}", color)


def _accuracy_badge(run: RunRecord) -> Badge:
    value, target = run.accuracy_value, run.accuracy_target
    metric = run.accuracy_metric or "accuracy"
    if value is None:
        return Badge("accuracy", "not measured", GREY)
    if target is None or run.accuracy_passed is None:
        return Badge("accuracy", f"{metric} {format_number(value)}, no target", GREY)
    shown_value, shown_target = _distinct(value, target)
    if run.accuracy_passed:
        return Badge("accuracy verified", f"{metric} {shown_value} \u2265 {shown_target}", GREEN)
    return Badge("accuracy", f"FAILS {metric} {shown_value} < {shown_target}", RED)


def _distinct(value: float, target: float) -> tuple[str, str]:
    """Value and target with enough significant digits (4 to 8) that they do not print alike."""
    for digits in range(4, 9):
        a, b = f"{value:.{digits}g}", f"{target:.{digits}g}"
        if a != b:
            break
    return a, b


def reproducibility_verdict(store: Store, run: RunRecord) -> dict[str, Any]:
    """The statistics layer's reproducibility verdict on the configuration of `run` (a `store.get_run`
    dict): `analysis.views.repro_of_config` over every complete run with the same cards, scenario and
    settings. NoVerdictYet says why there is none: the run is not complete, or its configuration has
    fewer than two complete runs, or their figures cannot be analysed."""
    from analysis import views

    if run.status != "complete":
        raise NoVerdictYet(f"run {run.id}: no reproducibility verdict exists yet: the run is {run.status}, "
                           f"and only complete runs are replicas of a configuration")
    try:
        return views.repro_of_config(store, run.id)
    except InfersightError as exc:
        raise NoVerdictYet(f"run {run.id}: no reproducibility verdict exists yet: {exc}") from None


def _reproducible_badge(run: RunRecord, verdict: dict[str, Any] | None) -> Badge:
    if verdict is None:
        raise NoVerdictYet(f"run {run.id}: no reproducibility verdict exists yet: pass one "
                           f"(reports.badges.reproducibility_verdict(store, run) computes it from the run's replicas)")
    runs = len(verdict.get("run_ids") or verdict.get("runs") or [])
    tolerance = f"\u00b1{verdict.get('tolerance', 0.02) * 100:g}%"
    cv = f", CV {verdict['cv']:.1%}" if verdict.get("cv") is not None else ""
    if verdict.get("reproducible"):
        return Badge("reproducible", f"yes \u00b7 {runs} runs within {tolerance}{cv}", GREEN)
    worst = verdict.get("max_deviation")
    off = f", one {worst:.1%} off" if worst is not None else ""
    return Badge("reproducible", f"no \u00b7 {runs} runs{off} ({tolerance}){cv}", YELLOW)
