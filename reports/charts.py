"""Chart helpers shared by every report: Altair charts over numpy arrays, sized for A4.

Every helper reduces its data in numpy first (histograms binned, CDFs and time series thinned to
at most MAX_POINTS rows), so a run of a million queries gives specs of a few hundred kB.
Helpers return Altair charts; `block` turns one into the ChartBlock a template embeds.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import altair as alt
import numpy as np
import pandas as pd

from reports._page import ChartBlock

__all__ = ["MAX_POINTS", "WIDTH", "HEIGHT", "block", "latency_histogram", "latency_cdf", "latency_over_time",
           "throughput_timeline", "percentile_bars", "accuracy_dots", "thin_indices", "nice_width",
           "latency_cdfs", "throughput_vs_latency", "pareto_chart"]

MAX_POINTS = 5000  # most rows of data in one chart
WIDTH, HEIGHT = 600, 190  # px: with axes under 690 px, inside A4 portrait between 12 mm margins (703 px)
ACCENT, MUTED, WARN, MARK = "#1f6fb2", "#9db8d3", "#d9822b", "#6b6b6b"


def block(key: str, chart: alt.TopLevelMixin, caption: str = "") -> ChartBlock:
    """A chart as a ChartBlock: its Vega-Lite spec, with the data inline and the house style."""
    styled = chart.configure_view(stroke=None).configure_axis(labelFontSize=10, titleFontSize=11,
                                                              grid=True, gridOpacity=0.5)
    return ChartBlock(key, styled.to_dict(), caption)


def _frame(**columns: np.ndarray | Sequence) -> pd.DataFrame:
    """A DataFrame of plain columns, floats rounded to 6 decimals (1 ns in ms, 1 us in s) for size."""
    return pd.DataFrame({k: np.round(v, 6) if np.asarray(v).dtype.kind == "f" else v for k, v in columns.items()})


def thin_indices(n: int, limit: int = MAX_POINTS, tail: float = 0.2) -> np.ndarray:
    """At most `limit` sorted indices into n ordered values: evenly spaced, with `tail` of them spent
    on the top 1% (where the latency percentiles that matter live), always the first and last."""
    if n <= limit:
        return np.arange(n)
    top = int(limit * tail)
    body = np.linspace(0, n - 1, limit - top).round().astype(np.int64)
    upper = np.linspace(int(n * 0.99), n - 1, top).round().astype(np.int64)
    return np.unique(np.concatenate([body, upper]))


def _percentile_rules(marks: Mapping[str, float], axis: str) -> alt.LayerChart:
    """Dashed rules at named values across axis 'x' (vertical) or 'y' (horizontal), each labelled;
    labels of vertical rules are staggered so close values stay readable."""
    data = pd.DataFrame({"name": list(marks), "value": [float(v) for v in marks.values()],
                         "row": [2 + 11 * (i % 4) for i in range(len(marks))]})
    base = alt.Chart(data)
    if axis == "x":
        rules = base.mark_rule(color=WARN, strokeDash=[4, 3]).encode(x="value:Q", tooltip=["name:N", "value:Q"])
        labels = base.mark_text(align="left", baseline="top", dx=3, fontSize=9, color=WARN).encode(
            x="value:Q", y=alt.Y("row:Q", scale=None), text="name:N")
    else:
        rules = base.mark_rule(color=WARN, strokeDash=[4, 3]).encode(y="value:Q", tooltip=["name:N", "value:Q"])
        labels = base.mark_text(align="left", baseline="bottom", dx=2, dy=-2, fontSize=9, color=WARN).encode(
            y="value:Q", x=alt.value(2), text="name:N")
    return rules + labels


def latency_histogram(latency_ms: np.ndarray, marks: Mapping[str, float], bins: int = 60) -> tuple[alt.Chart, str]:
    """Histogram of latencies computed in numpy. When p99.9 is over 10x the median (a heavy tail)
    the bins are evenly spaced on a log axis and every query is drawn; otherwise a long tail past
    p99.9 is counted in the caption rather than squeezing the body into a few bars."""
    lo, hi = float(latency_ms.min()), float(latency_ms.max())
    median, q999 = (float(q) for q in np.quantile(latency_ms, [0.5, 0.999]))
    log = lo > 0 and q999 > 10 * median
    note = ""
    if log:
        edges = np.geomspace(lo, hi, bins + 1)
        note = "Bins are evenly spaced on the log latency axis; every query is drawn."
    else:
        if hi - lo > 4 * (q999 - lo) > 0:
            beyond = int(np.count_nonzero(latency_ms > q999))
            note = f"{beyond:,} queries above {q999:.4g} ms (up to {hi:.4g} ms) are not drawn."
            hi = q999
        edges = np.linspace(lo, hi if hi > lo else lo + 1e-6, bins + 1)
    counts, _ = np.histogram(latency_ms, bins=edges)
    data = _frame(start=edges[:-1], end=edges[1:], count=counts)
    scale = alt.Scale(type="log", nice=False) if log else alt.Scale(zero=False)
    bars = alt.Chart(data).mark_bar(color=ACCENT, opacity=0.85).encode(
        x=alt.X("start:Q", title="latency (ms, log scale)" if log else "latency (ms)", scale=scale), x2="end:Q",
        y=alt.Y("count:Q", title="queries"), y2=alt.datum(0),
        tooltip=[alt.Tooltip("start:Q", format=".4g"), alt.Tooltip("end:Q", format=".4g"), "count:Q"])
    shown = {k: v for k, v in marks.items() if edges[0] <= v <= edges[-1]}
    chart = bars + _percentile_rules(shown, "x") if shown else bars
    return chart.properties(width=WIDTH, height=HEIGHT), note


def latency_cdf(latency_ms: np.ndarray, marks: Mapping[str, float]) -> alt.LayerChart:
    """Empirical CDF of latencies (thinned to MAX_POINTS, the top 1% kept densely); a log latency
    axis when the tail reaches past 3x the median, so body and tail both stay readable."""
    ordered = np.sort(latency_ms)
    idx = thin_indices(len(ordered))
    data = _frame(latency_ms=ordered[idx], fraction=(idx + 1) / len(ordered))
    log = ordered[0] > 0 and ordered[-1] > 3 * ordered[len(ordered) // 2]
    scale = alt.Scale(type="log", nice=False) if log else alt.Scale(zero=False)
    line = alt.Chart(data).mark_line(color=ACCENT, interpolate="step-after").encode(
        x=alt.X("latency_ms:Q", title="latency (ms, log scale)" if log else "latency (ms)", scale=scale,
                axis=alt.Axis(format=",.3~g", labelOverlap=True, tickCount=8)),  # labels below 1 ms too
        y=alt.Y("fraction:Q", title="fraction of queries at or below", scale=alt.Scale(domain=[0, 1])),
        tooltip=[alt.Tooltip("latency_ms:Q", format=".4g"), alt.Tooltip("fraction:Q", format=".4f")])
    chart = line + _percentile_rules(marks, "x") if marks else line
    return chart.properties(width=WIDTH, height=HEIGHT)


def latency_cdfs(series: Mapping[str, np.ndarray]) -> alt.Chart:
    """Empirical CDFs of several runs' latencies overlaid (one colour per label), each thinned like
    `latency_cdf`; a log latency axis when any tail reaches past 3x its median."""
    parts, log = [], False
    for label, latency_ms in series.items():
        ordered = np.sort(np.asarray(latency_ms, dtype=float))
        if not len(ordered):
            continue
        idx = thin_indices(len(ordered), MAX_POINTS // max(len(series), 1))
        parts.append(_frame(latency_ms=ordered[idx], fraction=(idx + 1) / len(ordered)).assign(run=label))
        log |= bool(ordered[0] > 0 and ordered[-1] > 3 * ordered[len(ordered) // 2])
    data = pd.concat(parts, ignore_index=True) if parts else _frame(latency_ms=[], fraction=[]).assign(run=[])
    scale = alt.Scale(type="log", nice=False) if log else alt.Scale(zero=False)
    return alt.Chart(data).mark_line(interpolate="step-after").encode(
        x=alt.X("latency_ms:Q", title="latency (ms, log scale)" if log else "latency (ms)", scale=scale,
                axis=alt.Axis(format=",.3~g", labelOverlap=True, tickCount=8)),  # labels below 1 ms too
        y=alt.Y("fraction:Q", title="fraction of queries at or below", scale=alt.Scale(domain=[0, 1])),
        color=alt.Color("run:N", title=None, legend=alt.Legend(orient="bottom", columns=1, labelLimit=600)),
        tooltip=["run:N", alt.Tooltip("latency_ms:Q", format=".4g"), alt.Tooltip("fraction:Q", format=".4f")],
    ).properties(width=WIDTH, height=HEIGHT + 60)


def throughput_vs_latency(frame: pd.DataFrame, color: str = "system") -> alt.Chart:
    """One point per run: p99 latency (ms) against throughput (samples/s), both on log scales,
    coloured by `color`; `frame` has columns latency_ms, throughput, run, and the colour column."""
    return alt.Chart(frame).mark_point(filled=True, size=60, opacity=0.8).encode(
        x=alt.X("latency_ms:Q", title="p99 latency (ms, log scale)", scale=alt.Scale(type="log")),
        y=alt.Y("throughput:Q", title="throughput (samples/s, log scale)", scale=alt.Scale(type="log")),
        color=alt.Color(f"{color}:N", legend=alt.Legend(orient="bottom", columns=2, labelLimit=400)),
        tooltip=[c for c in frame.columns],
    ).properties(width=WIDTH, height=HEIGHT + 110)


def pareto_chart(frame: pd.DataFrame, frontier: pd.DataFrame, x: str, y: str) -> alt.LayerChart:
    """Every ranked candidate as a point, the frontier's points joined by a line, on two engine metrics
    (`engine.METRICS` names, log scales); the Recommend page and the decision report both draw it."""
    from engine import METRICS

    cx, cy = METRICS[x].column, METRICS[y].column
    data = frame[["candidate", cx, cy]].dropna()
    front = frontier[["candidate", cx, cy]].dropna().sort_values(cx)
    ax = alt.X(f"{cx}:Q", title=f"{METRICS[x].label} ({METRICS[x].unit})", scale=alt.Scale(type="log"))
    ay = alt.Y(f"{cy}:Q", title=f"{METRICS[y].label} ({METRICS[y].unit})", scale=alt.Scale(type="log"))
    points = alt.Chart(data).mark_point(color=MUTED, filled=True, size=50).encode(x=ax, y=ay, tooltip=list(data))
    line = alt.Chart(front).mark_line(point=True, color=ACCENT).encode(x=ax, y=ay, tooltip=list(front))
    return (points + line).properties(height=320)


def _latency_axis(latency_ms: np.ndarray, field: str) -> alt.Y:
    """The latency y axis: log scale when the slowest query is over 10x the median."""
    log = latency_ms.min() > 0 and latency_ms.max() > 10 * np.median(latency_ms)
    return alt.Y(field, title="latency (ms, log scale)" if log else "latency (ms)",
                 scale=alt.Scale(type="log") if log else alt.Scale(zero=False))


def latency_over_time(time_s: np.ndarray, latency_ms: np.ndarray, warmup_s: float | None) -> tuple[alt.Chart, str]:
    """Latency against time since the timed run started; beyond MAX_POINTS queries, per time bin the
    median (line) and the min..max range (band), so no outlier is lost to thinning."""
    x = alt.X("time_s:Q", title="time since the timed run started (s)", scale=alt.Scale(nice=False))
    y = _latency_axis(latency_ms, "latency_ms:Q" if len(time_s) <= MAX_POINTS else "low:Q")
    if len(time_s) <= MAX_POINTS:
        data = _frame(time_s=time_s, latency_ms=latency_ms)
        main = alt.Chart(data).mark_circle(size=9, opacity=0.5, color=ACCENT).encode(
            x=x, y=y, tooltip=[alt.Tooltip("time_s:Q", format=".4f"), alt.Tooltip("latency_ms:Q", format=".4g")])
        note = "Each dot is one query, at its completion time."
    else:
        main, note = _binned_over_time(time_s, latency_ms, x, y)
    layers = [main]
    if warmup_s:
        layers.insert(0, _warmup_band(warmup_s))
    return alt.layer(*layers).properties(width=WIDTH, height=HEIGHT), note


def _binned_over_time(time_s: np.ndarray, latency_ms: np.ndarray, x: alt.X, y: alt.Y,
                      bins: int = 1000) -> tuple[alt.Chart, str]:
    span = float(time_s.max()) or 1e-9
    which = np.minimum((time_s / span * bins).astype(np.int64), bins - 1)
    order = np.lexsort((latency_ms, which))  # by bin, then by latency within a bin
    which, ordered = which[order], latency_ms[order]
    starts = np.flatnonzero(np.r_[True, which[1:] != which[:-1]])
    ends = np.r_[starts[1:], len(which)]
    data = _frame(time_s=(which[starts] + 0.5) * span / bins, low=ordered[starts], high=ordered[ends - 1],
                  median=ordered[(starts + ends - 1) // 2], queries=ends - starts)
    band = alt.Chart(data).mark_area(color=MUTED, opacity=0.6).encode(x=x, y=y, y2="high:Q")
    line = alt.Chart(data).mark_line(color=ACCENT, strokeWidth=1).encode(
        x=x, y="median:Q", tooltip=[alt.Tooltip("time_s:Q", format=".3f"), alt.Tooltip("median:Q", format=".4g"),
                                    alt.Tooltip("high:Q", title="max", format=".4g"), "queries:Q"])
    note = (f"{len(time_s):,} queries in {len(starts):,} time bins of {_duration(span / bins)}: "
            f"the line is each bin's median, the band its min..max.")
    return band + line, note


def _duration(seconds: float) -> str:
    """'1 s', '321 ms', '50 ms': 3 significant digits in s from 1 s up, else in ms."""
    return f"{seconds:.3g} s" if seconds >= 0.9995 else f"{seconds * 1e3:.3g} ms"


def _warmup_band(warmup_s: float) -> alt.Chart:
    """A grey band left of t = 0 for the warm-up, which ran before the timed run and is not logged."""
    data = pd.DataFrame({"start": [-warmup_s], "end": [0.0], "label": ["warm-up (not logged)"]})
    band = alt.Chart(data).mark_rect(color="#d9d9d9", opacity=0.7).encode(x="start:Q", x2="end:Q")
    rule = alt.Chart(data).mark_rule(color=MARK, strokeWidth=1.5).encode(x="end:Q")
    text = alt.Chart(data).mark_text(align="left", baseline="top", dx=2, dy=2, fontSize=9, color=MARK).encode(
        x="start:Q", y=alt.value(0), text="label:N")
    return band + rule + text


def nice_width(seconds: float) -> float:
    """The smallest 1-2-5 step (1 ms .. 10 min) at least `seconds` long."""
    for exponent in range(-3, 3):
        for mantissa in (1, 2, 5):
            step = mantissa * 10.0 ** exponent
            if step >= seconds:
                return step
    return 600.0


def throughput_timeline(completed_s: np.ndarray) -> tuple[alt.Chart, str]:
    """Samples completed per time bin, as a rate: 1 s bins for runs of 20 s or more, else finer
    (about 50 bins), so a quick 1 s run still shows its shape. Bins split the run evenly, so the
    last one is not a partial bin that would read as a drop."""
    span = float(completed_s.max()) if len(completed_s) else 0.0
    step = 1.0 if span >= 20 else nice_width(max(span, 1e-3) / 50)
    count = int(min(2000, max(1, round(span / step))))
    edges = np.linspace(0.0, max(span, 1e-9), count + 1)
    counts, _ = np.histogram(completed_s, bins=edges)
    width = float(edges[1] - edges[0])
    data = _frame(start=edges[:-1], end=edges[1:], rate=counts / width)
    chart = alt.Chart(data).mark_bar(color=ACCENT, opacity=0.85).encode(
        x=alt.X("start:Q", title="time since the timed run started (s)", scale=alt.Scale(nice=False),
                axis=alt.Axis(tickCount=10, labelOverlap=True)),
        x2="end:Q", y=alt.Y("rate:Q", title="samples/s"), y2=alt.datum(0),
        tooltip=[alt.Tooltip("start:Q", format=".3f"), alt.Tooltip("rate:Q", format=",.0f")])
    return chart.properties(width=WIDTH, height=HEIGHT), f"Samples completed per {_duration(width)} bin, as a rate."


def percentile_bars(percentiles_ms: Mapping[str, float], estimates_ms: Mapping[str, float] | None = None,
                    bound_ms: float | None = None, what: str = "latency") -> alt.Chart:
    """Published percentiles as bars in percentile order, early-stopping estimates as ticks,
    and a latency bound as a rule."""
    names = sorted(percentiles_ms, key=lambda p: float(p))
    data = pd.DataFrame({"percentile": [f"p{p}" for p in names], "ms": [float(percentiles_ms[p]) for p in names]})
    x = alt.X("percentile:N", sort=list(data["percentile"]), title="percentile", axis=alt.Axis(labelAngle=0))
    bars = alt.Chart(data).mark_bar(color=ACCENT, opacity=0.85).encode(
        x=x, y=alt.Y("ms:Q", title=f"{what} (ms)"), tooltip=["percentile:N", alt.Tooltip("ms:Q", format=".4g")])
    labels = alt.Chart(data).mark_text(dy=-4, fontSize=9, baseline="bottom").encode(
        x=x, y="ms:Q", text=alt.Text("ms:Q", format=".4g"))
    layers = [bars, labels]
    if estimates_ms:
        est = pd.DataFrame({"percentile": [f"p{p}" for p in estimates_ms],
                            "ms": [float(v) for v in estimates_ms.values()]})
        layers.append(alt.Chart(est).mark_tick(color=WARN, thickness=3, size=30).encode(
            x=x, y="ms:Q", tooltip=[alt.Tooltip("ms:Q", title="early-stopping estimate", format=".4g")]))
    if bound_ms:
        layers.append(_percentile_rules({f"bound {bound_ms:g} ms": bound_ms}, "y"))
    return alt.layer(*layers).properties(width=WIDTH, height=HEIGHT)


def accuracy_dots(rows: Sequence[tuple[str, float, int | None]], target: float | None, metric: str) -> alt.Chart:
    """Accuracy of the whole set and of each class (name, value, samples) as dots against the target."""
    data = pd.DataFrame({"group": [r[0] for r in rows], "value": [float(r[1]) for r in rows],
                         "samples": [r[2] for r in rows]})
    data["meets"] = ["meets target" if target is None or v >= target else "below target" for v in data["value"]]
    y = alt.Y("group:N", sort=list(data["group"]), title=None)
    dots = alt.Chart(data).mark_circle(size=70, opacity=1).encode(
        x=alt.X("value:Q", title=metric, scale=alt.Scale(zero=False, padding=12)), y=y,
        color=alt.Color("meets:N", scale=alt.Scale(domain=["meets target", "below target"], range=[ACCENT, WARN]),
                        legend=alt.Legend(title=None, orient="bottom")),
        tooltip=["group:N", alt.Tooltip("value:Q", format=".4f"), "samples:Q"])
    chart = dots
    if target is not None:
        chart = dots + _percentile_rules({f"target {target:.4g}": target}, "x")
    return chart.properties(width=WIDTH, height=max(40, 18 * len(rows)))
