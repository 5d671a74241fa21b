"""The Pareto frontier over two objectives, in O(n log n).

A candidate is on the frontier when no other candidate is at least as good on both objectives and
strictly better on one. Points right of the lowest point or above the leftmost one are dominated by
it and dropped first (O(n)); sort the rest by the first objective (then the second) and sweep once
keeping the best second objective seen so far: a point is on the frontier when it beats that strictly. Identical
points do not dominate each other, so duplicates of a frontier point are on it too. Candidates with a
missing (NaN) value on either objective are never on it.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from engine.constraints import metric

__all__ = ["frontier_mask", "frontier"]


def frontier_mask(x: np.ndarray, y: np.ndarray, x_lower_is_better: bool = True,
                  y_lower_is_better: bool = True) -> np.ndarray:
    """Boolean mask of the points on the Pareto frontier of (x, y)."""
    x = np.asarray(x, dtype=float) * (1.0 if x_lower_is_better else -1.0)
    y = np.asarray(y, dtype=float) * (1.0 if y_lower_is_better else -1.0)
    mask = np.zeros(len(x), dtype=bool)
    finite = np.isfinite(x) & np.isfinite(y)
    if not finite.any():
        return mask
    # O(n) prefilter: a point right of the lowest point, or above the leftmost one, is dominated by it
    low_y = np.min(y[finite])
    left_x = np.min(x[finite])
    x_of_low = np.min(x[finite & (y == low_y)])
    y_of_left = np.min(y[finite & (x == left_x)])
    valid = np.flatnonzero(finite & (x <= x_of_low) & (y <= y_of_left))
    order = valid[np.lexsort((y[valid], x[valid]))]
    xs, ys = x[order], y[order]
    best_before = np.concatenate(([np.inf], np.minimum.accumulate(ys)[:-1]))
    first = np.concatenate(([True], (xs[1:] != xs[:-1]) | (ys[1:] != ys[:-1])))  # first of each run of equal points
    on = first & (ys < best_before)
    run_start = np.maximum.accumulate(np.where(first, np.arange(len(order)), 0))
    mask[order] = on[run_start]
    return mask


def frontier(frame: pd.DataFrame, x: str, y: str) -> pd.DataFrame:
    """The rows of `frame` on the frontier of metrics x and y (names from engine.constraints.METRICS,
    each in its better direction), sorted by x from best; EngineError for an unknown metric."""
    mx, my = metric(x), metric(y)
    for m in (mx, my):
        if m.column not in frame:
            return frame.iloc[0:0]
    mask = frontier_mask(frame[mx.column].to_numpy(dtype=float), frame[my.column].to_numpy(dtype=float),
                         mx.better == "lower", my.better == "lower")
    return frame[mask].sort_values(mx.column, ascending=mx.better == "lower")
