"""Seeded Poisson arrivals for the server scenario: the one place where arrival times are drawn.

Inter-arrival gaps are independent exponential draws with mean 1 / target_qps (a homogeneous
Poisson process, as MLPerf LoadGen's server scenario schedules queries). The first query arrives
one gap after the start. Same seed and target, same schedule; numpy's PCG64 generator
(`numpy.random.default_rng`) makes it reproducible across platforms.
"""

from __future__ import annotations

import math

import numpy as np

__all__ = ["poisson_gaps_ns", "server_schedule"]

_BLOCK = 1 << 16


def poisson_gaps_ns(target_qps: float, count: int, rng: np.random.Generator) -> np.ndarray:
    """`count` exponential inter-arrival gaps (float ns) of a Poisson process at `target_qps`."""
    if target_qps <= 0:
        raise ValueError(f"target_qps must be > 0, not {target_qps}")
    return rng.exponential(1e9 / target_qps, size=count)


def server_schedule(target_qps: float, seed: int, *, min_duration_ms: int, min_query_count: int,
                    max_duration_ms: int, max_query_count: int = 0) -> np.ndarray:
    """Scheduled arrival times (int64 ns after the start) of one server run.

    Draws arrivals until both minimums are met: at least `min_query_count` queries and the last
    one scheduled at or after `min_duration_ms` (LoadGen measures the minimum duration on the last
    query's scheduled time). No query is scheduled after `max_duration_ms`, nor beyond
    `max_query_count` queries (0: no limit); a schedule cut that way may miss the minimums.
    """
    rng = np.random.default_rng(seed)
    min_ns, max_ns = min_duration_ms * 1_000_000, max_duration_ms * 1_000_000
    cap = max_query_count or math.inf
    expected = max(min_query_count, math.ceil(target_qps * min_duration_ms / 1e3))
    first = int(min(cap, expected + 4 * math.sqrt(expected) + 16))  # usually the only draw
    times = np.cumsum(poisson_gaps_ns(target_qps, first, rng))
    blocks = [times]
    while len(times) < cap and times[-1] < max_ns and (sum(map(len, blocks)) < min_query_count
                                                       or times[-1] < min_ns):
        more = int(min(_BLOCK, cap - sum(map(len, blocks))))
        times = blocks[-1][-1] + np.cumsum(poisson_gaps_ns(target_qps, more, rng))
        blocks.append(times)
    arrivals = np.concatenate(blocks).astype(np.int64)
    n = max(min_query_count, int(np.searchsorted(arrivals, min_ns, side="left")) + 1)
    n = min(n, len(arrivals), int(np.searchsorted(arrivals, max_ns, side="right")))
    return arrivals[:n]
