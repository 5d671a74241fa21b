"""The recommendation's fast path (partial sorts, rows built only for what is shown) gives the same answer as a
plain per-candidate reference and as the whole tables, on random candidate sets with ties, missing figures and
prices, and bounds no candidate meets (tests/_engine_cases.py)."""

from __future__ import annotations

import functools
import math

import numpy as np
import pandas as pd
from scipy.special import ndtr, ndtri

from _engine_cases import case as new_case
from engine import Constraints, recommend
from engine.candidates import from_records
from engine.constraints import METRICS
from runner.errors import EngineError

SEEDS = range(60)
case = functools.lru_cache(maxsize=None)(new_case)  # a case's frame is only read: shared by the tests


def _ask(seed: int):
    q = case(seed)
    try:
        rec = recommend(q["frame"], q["constraints"], q["objective"], q["catalog"], q["target_load"],
                        include_uncertain=q["include_uncertain"])
    except EngineError as exc:  # a cost question where no system has a price: refused, nothing to compare
        assert "needs prices" in str(exc)
        return None, q
    return rec, q


def _p(value: float, lo: float, hi: float, bound: float, upper: bool) -> float:
    """P(meets) of one figure: its CI read as a split normal, the side the bound lies on giving the sigma."""
    if math.isnan(value):
        return math.nan
    margin = bound - value if upper else value - bound
    side = (hi - value) if (margin >= 0) == upper else (value - lo)
    sigma = 0.0 if math.isnan(side) or side <= 0 else side / float(ndtri(0.975))
    return float(ndtr(margin / sigma)) if sigma > 0 else float(margin >= 0)


def _reference(rec, include_uncertain: bool) -> dict:
    """The answer computed candidate by candidate from each one's figures and objective (value, lo, hi): P per
    bound, status, ranks (1 + the candidates certainly better), order, ties, the nearest exclusions and the
    bound each fails worst, and the frontier."""
    ev, frame, n = rec._evaluation, rec._frame, len(rec._frame)
    bounds = rec.constraints.bounds
    for j, b in enumerate(bounds):
        value, lo, hi = ev.values[METRICS[b.metric].column]
        expected = [_p(value[i], lo[i], hi[i], b.value, b.upper) for i in range(n)]
        np.testing.assert_allclose(ev.p[j], expected, rtol=0, atol=1e-12)
    verdict = [[_verdict(p) for p in ev.p[:, i]] for i in range(n)]
    status = ["fails" if "fails" in v else "unknown" if "unknown" in v else "uncertain" if "uncertain" in v
              else "meets" for v in verdict]
    allowed = {"meets", "uncertain"} if include_uncertain else {"meets"}
    value, lo, hi = (np.where(np.isnan(x), ev.objective[0], x) for x in ev.objective)
    lower = not rec.objective.is_mix and rec.objective.metric.better == "lower"
    loss, loss_lo, loss_hi = (value, lo, hi) if lower else (-value, -hi, -lo)
    ranked = [i for i in range(n) if status[i] in allowed and math.isfinite(loss[i])]
    rank = {i: 1 + sum(max(loss_hi[k], loss[k]) < min(loss_lo[i], loss[i]) for k in ranked) for i in ranked}
    order = sorted(ranked, key=lambda i: (rank[i], loss[i], i))
    tied = {i: sum(rank[k] == rank[i] for k in ranked) > 1 for i in ranked}
    excluded, worst = [i for i in range(n) if i not in rank], {}
    for i in excluded:
        if status[i] in allowed:
            status[i] = "no objective figure"
        scores = [math.inf if v == "unknown" else -math.inf if v == "meets" else _shortfall(ev, b, i)
                  for b, v in zip(bounds, verdict[i])]
        worst[i] = (max(scores), scores.index(max(scores))) if bounds else (0.0, None)
    x, y = (METRICS[a] for a in rec.pareto_axes)
    xs, ys = ({i: (1 if m.better == "lower" else -1) * ev.values[m.column][0][i] for i in ranked} for m in (x, y))
    frontier = {i for i in ranked if math.isfinite(xs[i]) and math.isfinite(ys[i]) and not any(
        xs[k] <= xs[i] and ys[k] <= ys[i] and (xs[k] < xs[i] or ys[k] < ys[i]) for k in ranked)}
    return {"order": order, "rank": rank, "tied": tied, "worst": worst, "frontier": frontier, "status": status,
            "excluded": sorted(excluded, key=lambda i: (worst[i][0], i)), "names": frame["candidate"].tolist()}


def _verdict(p: float) -> str:
    return "unknown" if math.isnan(p) else "meets" if p >= 0.95 else "fails" if p <= 0.05 else "uncertain"


def _shortfall(ev, bound, i: int) -> float:
    value = ev.values[METRICS[bound.metric].column][0][i]
    return (value - bound.value if bound.upper else bound.value - value) / bound.value


def test_the_answer_is_the_reference_computation():
    compared = 0
    for seed in SEEDS:
        rec, question = _ask(seed)
        if rec is None:
            continue
        ref = _reference(rec, question["include_uncertain"])
        for limit in (1, 5, None):
            _check(rec.to_dict(limit=limit), limit, rec, ref)
        compared += 1
    assert compared >= 50


def _check(answer: dict, limit: int | None, rec, ref: dict) -> None:
    """One to_dict(limit) answer against the reference: ranked rows, exclusions with reasons, frontier."""
    names, order, shown = ref["names"], ref["order"][:limit], ref["excluded"][:limit]
    assert [r["candidate"] for r in answer["ranked"]] == [names[i] for i in order]
    assert [(r["rank"], r["tied"]) for r in answer["ranked"]] == [(ref["rank"][i], ref["tied"][i]) for i in order]
    assert [r["objective"] for r in answer["ranked"]] == [_none(rec._evaluation.objective[0][i]) for i in order]
    assert answer["winner"] == (answer["ranked"][0] if order else None)
    assert (answer["ranked_count"], answer["excluded_count"]) == (len(ref["order"]), len(ref["excluded"]))
    assert [(r["candidate"], r["status"]) for r in answer["excluded"]] == [(names[i], ref["status"][i])
                                                                          for i in shown]
    for row, i in zip(answer["excluded"], shown):
        bound = ref["worst"][i][1]
        assert row["failed"] == ("no objective figure" if row["status"] == "no objective figure" or bound is None
                                 else rec.constraints.bounds[bound].text())
        assert row["reasons"] and row["reasons"] == rec.why_excluded(names[i])
    frontier = {names.index(r["candidate"]) for r in answer["frontier"]}
    assert frontier == ref["frontier"] if limit is None else frontier <= ref["frontier"]
    x = METRICS[rec.pareto_axes[0]]
    xs = [r[x.column] for r in answer["frontier"]]
    assert xs == sorted(xs, reverse=x.better == "higher")


def _none(value: float) -> float | None:
    return None if not math.isfinite(value) else float(value)


def _same(got: pd.DataFrame, expected: pd.DataFrame) -> None:
    if not (got.equals(expected) and list(got.columns) == list(expected.columns)
            and (got.dtypes == expected.dtypes).all()):
        pd.testing.assert_frame_equal(got, expected, check_exact=True)  # says where they differ
        raise AssertionError("frames differ")


def test_heads_and_the_answer_are_the_whole_tables_first_rows():
    for seed in SEEDS[::3]:
        (rec, _), (whole, _) = _ask(seed), _ask(seed)
        if rec is None:
            continue
        for n in (0, 1, 3, 200):
            _same(rec.ranked_head(n), whole.ranked.head(n))
            _same(rec.excluded_head(n), whole.excluded.head(n))
            _same(rec.frontier_head(n), whole.frontier.head(n).reset_index(drop=True))
        lazy = rec.to_dict(limit=4)
        from_whole = {"ranked": _records(whole.ranked.head(4)), "frontier": _records(whole.frontier.head(4)),
                      "winner": _records(whole.ranked.head(1))[0] if len(whole.ranked) else None,
                      "excluded": [dict(r, reasons=whole.why_excluded(r["candidate"]))
                                   for r in _records(whole.excluded.head(4))]}
        assert {k: lazy[k] for k in from_whole} == from_whole, seed
        assert rec.capacity == whole.capacity and rec.assumptions == whole.assumptions


def _records(frame: pd.DataFrame) -> list[dict]:
    """DataFrame.to_dict("records") with NaN and infinities as None (as Recommendation.to_dict gives them)."""
    return [{k: (None if isinstance(v, float) and not math.isfinite(v) else v) for k, v in r.items()}
            for r in frame.to_dict("records")]


def test_large_tie_groups_keep_the_whole_tables_order():
    """Thousands of candidates with few distinct figures: the partial sort's cut falls inside tie groups."""
    rng = np.random.default_rng(7)
    n = 3000
    frame = pd.DataFrame({"system": rng.choice(["a", "b", "c"], n), "candidate": [f"c{i}" for i in range(n)],
                          "samples_per_s": rng.choice([100.0, 200.0, 300.0], n),
                          "p99_ms": rng.choice([5.0, 10.0, 20.0, np.nan], n)})
    frame["samples_per_s_lo"] = frame["samples_per_s"] * rng.choice([1.0, 0.5], n)
    rec = recommend(from_records(frame), Constraints.build(max_p99_ms=12), "throughput")
    assert rec.ranked["tied"].sum() > 100 and (rec.excluded["failed"] == "p99 <= 12 ms").sum() > 100
    for n in (1, 7, 500, 1200):
        _same(rec.ranked_head(n), rec.ranked.head(n))
        _same(rec.excluded_head(n), rec.excluded.head(n))
