"""From a run's per-query records to the series the statistics work on.

Records are the performance log's columns (`Store.read_perf_samples` or `perf_dataframe`):
one row per sample with ns timestamps; samples of one query share its query_index. Latency is
per query (completion of its last sample minus its scheduled time, as the scenarios measure
it); throughput comes from completion events (distinct completion times, with the samples or
tokens each completed) and the gaps between them.
"""

from __future__ import annotations

import math
import re
from collections.abc import Mapping
from typing import Any

import numpy as np

from analysis._checks import require
from runner.errors import AnalysisError
from runner.loadgen.result import loadgen_percentile

__all__ = ["columns", "query_latencies", "time_to_first_token", "time_per_output_token", "completion_events",
           "metric_kind", "batch_figures", "batch_quantiles", "batch_size_for", "split_points"]

_PERCENTILE = re.compile(r"^latency_p(\d+(?:_\d+)?)_ms$")
_RATES = {"samples_per_second": "samples", "queries_per_second": "samples", "tokens_per_second": "tokens"}


def columns(records: Any) -> dict[str, np.ndarray]:
    """The records as a dict of numpy arrays (from a dict of arrays or a DataFrame)."""
    if hasattr(records, "columns") and hasattr(records, "to_numpy"):
        return {str(name): records[name].to_numpy() for name in records.columns}
    return {str(name): np.asarray(values) for name, values in dict(records).items()}


def _query_groups(rec: Mapping[str, np.ndarray]) -> tuple[np.ndarray | None, np.ndarray]:
    """(order, starts): the permutation sorting samples by query (None if already sorted) and where
    each query's samples start in that order."""
    q = rec["query_index"]
    if len(q) == 0:
        return None, np.empty(0, dtype=np.int64)
    step = np.diff(q)
    order = None if (step >= 0).all() else np.argsort(q, kind="stable")
    qs = q if order is None else q[order]
    return order, np.flatnonzero(np.r_[True, qs[1:] != qs[:-1]])


def _per_query(rec: Mapping[str, np.ndarray], name: str, reduce: np.ufunc) -> np.ndarray:
    """One value of a column per query (reduced over its samples), in query order."""
    values = rec[name]
    if len(values) and (np.diff(rec["query_index"]) > 0).all():
        return values  # one sample per query, already in order (single_stream, server)
    order, starts = _query_groups(rec)
    ordered = values if order is None else values[order]
    return reduce.reduceat(ordered, starts) if len(starts) else ordered[:0]


def query_latencies(records: Any) -> np.ndarray:
    """Latency of each query in ns (last completion minus scheduled time), in query order."""
    rec = columns(records)
    return _per_query(rec, "completed_ns", np.maximum) - _per_query(rec, "scheduled_ns", np.minimum)


def time_to_first_token(records: Any) -> np.ndarray | None:
    """TTFT of each query in ns (first token minus scheduled time), or None without first-token records."""
    rec = columns(records)
    if "first_token_ns" not in rec:
        return None
    return _per_query(rec, "first_token_ns", np.minimum) - _per_query(rec, "scheduled_ns", np.minimum)


def time_per_output_token(records: Any) -> np.ndarray | None:
    """TPOT of each query with 2+ tokens in ns: (latency - TTFT) / (tokens - 1); None without token records."""
    rec = columns(records)
    if "first_token_ns" not in rec or "output_tokens" not in rec:
        return None
    tokens = _per_query(rec, "output_tokens", np.add)
    latency, ttft = query_latencies(rec), time_to_first_token(rec)
    keep = tokens > 1
    return (latency[keep] - ttft[keep]) / (tokens[keep] - 1)


def completion_events(records: Any, weight: str = "samples") -> tuple[np.ndarray, np.ndarray]:
    """(counts, gaps_ns): per distinct completion time, the samples (or tokens) completed then and the
    time since the previous completion (the first gap runs from the earliest scheduled time)."""
    rec = columns(records)
    done = rec["completed_ns"]
    if len(done) == 0:
        raise AnalysisError("no per-query records: throughput needs completed samples")
    if weight == "tokens":
        if "output_tokens" not in rec:
            raise AnalysisError("no output_tokens records: tokens/s needs a streaming run")
        w = rec["output_tokens"].astype(np.float64)
    else:
        w = np.ones(len(done))
    if not (np.diff(done) >= 0).all():
        order = np.argsort(done, kind="stable")
        done, w = done[order], w[order]
    starts = np.flatnonzero(np.r_[True, done[1:] != done[:-1]])
    times = done[starts]
    gaps = np.diff(np.r_[rec["scheduled_ns"].min(), times]).astype(np.float64)
    return np.add.reduceat(w, starts), gaps


def metric_kind(metric: str) -> tuple[str, float | None]:
    """What a run figure is: ('percentile', p in %), ('mean', None), or ('samples' | 'tokens', None) for a rate."""
    m = _PERCENTILE.match(metric)
    if m:
        return "percentile", float(m.group(1).replace("_", "."))
    if metric == "latency_mean_ms":
        return "mean", None
    if metric in _RATES:
        return _RATES[metric], None
    raise AnalysisError(f"figure {metric!r} cannot be computed from per-query records; known: latency_pNN_ms, "
                        f"latency_mean_ms, {', '.join(_RATES)}")


def split_points(n: int, k: int) -> np.ndarray:
    """Start index of each of k contiguous, nearly equal parts of n items."""
    return (np.arange(k) * n) // k


def batch_size_for(pct: float | None) -> int:
    """Fewest queries in a batch whose percentile pct is not just its maximum: 10 / (1 - p), at least 10."""
    return 10 if pct is None else max(10, math.ceil(10 / (1 - pct / 100)))


def batch_quantiles(values: np.ndarray, pct: float, batches: int) -> np.ndarray:
    """LoadGen's pct-th percentile of each of up to `batches` contiguous batches (raises if fewer than 2)."""
    k = min(batches, len(values) // batch_size_for(pct))
    require(k, 2, f"p{pct:g} batches", f"{len(values)} values; two batches need {2 * batch_size_for(pct)}")
    parts = np.split(values, split_points(len(values), k)[1:])
    return np.array([loadgen_percentile(np.sort(part), pct) for part in parts], dtype=np.float64)


def batch_figures(records: Any, metric: str, batches: int = 16) -> np.ndarray:
    """The figure `metric` over each of up to `batches` contiguous batches of one run, in time order.

    Batches of one run stand in for replicas when there is only one run (they show within-run
    noise only). A percentile batch holds at least `batch_size_for(p)` queries; fewer batches
    are made when the run is short, and an AnalysisError says how many queries two would need.
    """
    kind, pct = metric_kind(metric)
    if kind in ("samples", "tokens"):
        counts, gaps = completion_events(records, kind)
        k = min(batches, len(counts) // 5)
        require(k, 2, f"{metric} batches", f"the run has {len(counts)} completion events; needs at least 10")
        starts = split_points(len(counts), k)
        return np.add.reduceat(counts, starts) * 1e9 / np.add.reduceat(gaps, starts)
    lat = query_latencies(records)
    if kind == "percentile":
        return batch_quantiles(lat, pct, batches) / 1e6
    k = min(batches, len(lat) // batch_size_for(None))
    require(k, 2, f"{metric} batches", f"the run has {len(lat)} queries; two batches need 20")
    starts = split_points(len(lat), k)
    return np.add.reduceat(lat.astype(np.float64), starts) / np.diff(np.r_[starts, len(lat)]) / 1e6
