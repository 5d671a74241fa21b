"""The rows of a recommendation's tables, built only for the candidates a caller shows.

`evaluate` judges every candidate with numpy over columns. A table row (identity, every figure with its CI,
P per bound, prices and their sources) is built here, and only for the rows asked for: the first n ranked,
the n nearest excluded, the frontier, or every row when a whole table is asked for. The first n come in the
whole table's order: a partial sort (numpy's partition) picks the candidates that can be among them, and the
same stable sort as the whole table's orders those, so ties keep the whole table's order.
"""

from __future__ import annotations

from functools import cached_property
from typing import Any

import numpy as np
import pandas as pd

from engine._evaluate import NO_OBJECTIVE, STATUSES, Evaluation
from engine._figures import FIGURES
from engine.constraints import METRICS, Objective
from engine.pareto import frontier_mask
from engine.ranking import UNKNOWN

__all__ = ["Rows"]

_DERIVED = ("cost_per_hour_usd", "cost_per_million_usd", "cost_per_million_tokens_usd", "units", "power_total_w",
            "plan_purchase_usd", "throughput_per_usd", "throughput_per_watt")
_IDENTITY = ["candidate", "system", "system_id", "backend", "settings", "model_variant", "task", "scenario",
             "accelerator", "accelerators", "provenance", "source", "submitter", "run_ids", "n_runs", "compliant",
             "quick", "ci_source", "accuracy_metric", "accuracy_reference", "capacity_basis"]
_EXCLUDED_IDENTITY = ["candidate", "system", "system_id", "backend", "settings", "model_variant", "provenance",
                      "source", "submitter", "run_ids", "n_runs"]
_PRICES = ("price_per_hour_usd", "purchase_price_usd", "lifetime_years", "price_source", "price_example",
           "power_source")
_LABELS = ("price_source", "price_example", "power_source")
# figures the ranked table always gives with CI columns (for the capacity plan and the cost)
_ALWAYS_CI = ("samples_per_s", "cost_per_million_usd", "cost_per_hour_usd", "units")
_NO_OBJECTIVE_TEXT = "no objective figure"


class Rows:
    """Rows of the ranked and excluded tables of one evaluation, by candidate index (positions in `frame`).

    Ranked, best first: identity, rank and tie, objective with CI, P per bound and overall, every figure and
    derived cost, prices and their sources; CI columns (`_lo`/`_hi`) for the figures the bounds and objective
    name and for throughput, cost and units (the others' CIs are in the candidates frame). Excluded, nearest
    first: identity, status, the bound each fails worst and by how much, P per bound, and only the figures
    the bounds and objective name.
    """

    def __init__(self, frame: pd.DataFrame, ev: Evaluation, prices: dict[str, Any], objective: Objective):
        self.frame, self.ev, self.prices = frame, ev, prices
        named = {METRICS[b.metric].column for b in ev.bounds} | {METRICS[n].column for n in objective.weights}
        self._numbers = _numbers(ev, prices, named | set(_ALWAYS_CI))
        self._excluded_numbers = [k for k in self._numbers if k.removesuffix("_lo").removesuffix("_hi") in named
                                  or k.startswith("p_")
                                  or k in ("objective", "cost_per_million_usd", "unit_cost_per_hour_usd")]

    @property
    def ranked_count(self) -> int:
        return int(np.count_nonzero(self.ev.eligible))

    @property
    def excluded_count(self) -> int:
        return len(self.ev.eligible) - self.ranked_count

    @cached_property
    def first(self) -> dict[str, Any] | None:
        """The first ranked row as a record (the winner; None when none is ranked)."""
        return next(iter(self.ranked_records(self.ranked_order(1))), None)

    def ranked_order(self, n: int | None = None) -> np.ndarray:
        """Indices of the first n ranked candidates (all with None), best first: rank, then the objective's
        estimate, then position (as Evaluation.ordered)."""
        ev = self.ev
        idx = np.flatnonzero(ev.eligible)
        if n is not None and n < idx.size:
            rank = ev.rank[idx]
            idx = idx[rank <= np.partition(rank, n)[n]]  # ranks are whole numbers, never NaN here
        return idx[np.lexsort((ev.loss[idx], ev.rank[idx]))][:n]

    def excluded_order(self, n: int | None = None) -> np.ndarray:
        """Indices of the first n excluded candidates (all with None), nearest first: by the relative shortfall
        on the bound each fails worst (an unknown figure last), equal ones in position order."""
        idx = np.flatnonzero(~self.ev.eligible)
        if not len(self.ev.bounds):
            return idx[:n]
        keys = self._nearness[idx]
        if n is None or n >= idx.size:
            return idx[_stable_order(keys)][:n]
        cut = np.partition(keys, n)[n]
        near = np.flatnonzero(keys <= cut) if not np.isnan(cut) else np.arange(idx.size)
        return idx[near[np.argsort(keys[near], kind="stable")][:n]]

    def ranked(self, rows: np.ndarray) -> pd.DataFrame:
        """The ranked table's rows for candidates `rows` (from ranked_order)."""
        out = _frame(self._ranked_parts(rows))
        out["rank"] = out["rank"].astype(np.int64)
        return out

    def excluded(self, rows: np.ndarray) -> pd.DataFrame:
        """The excluded table's rows for candidates `rows` (from excluded_order)."""
        return _frame(self._excluded_parts(rows))

    def ranked_records(self, rows: np.ndarray) -> list[dict[str, Any]]:
        """`ranked(rows).to_dict("records")`, without building the frame."""
        return _records(self._ranked_parts(rows))

    def excluded_records(self, rows: np.ndarray) -> list[dict[str, Any]]:
        """`excluded(rows).to_dict("records")`, without building the frame."""
        return _records(self._excluded_parts(rows))

    def _ranked_parts(self, rows: np.ndarray) -> _Parts:
        labels = {k: _take(self.prices[k], rows) for k in _LABELS}
        labels.update(status=self._status(rows), tied=self._tied(rows))
        return _parts(self.frame, rows, _IDENTITY, self._numbers, labels)

    def _excluded_parts(self, rows: np.ndarray) -> _Parts:
        numbers = {k: self._numbers[k] for k in self._excluded_numbers}
        labels = {"status": self._status(rows), **self._failed(rows)}
        return _parts(self.frame, rows, _EXCLUDED_IDENTITY, numbers, labels)

    def frontier_order(self, x: str, y: str) -> np.ndarray:
        """Indices of the ranked candidates on the Pareto frontier of metrics x and y, sorted by x from best
        as pareto.frontier sorts the ranked table's rows (the frontier is a property of the set of points, so
        it is found in any order, then put in the ranked order before that sort)."""
        mx, my = METRICS[x], METRICS[y]
        ev = self.ev
        idx = np.flatnonzero(ev.eligible)
        xs, ys = (np.asarray(ev.values[m.column][0], dtype=float)[idx] for m in (mx, my))
        on = idx[frontier_mask(xs, ys, mx.better == "lower", my.better == "lower")]
        on = on[np.lexsort((ev.loss[on], ev.rank[on]))]
        by_x = pd.Series(np.asarray(ev.values[mx.column][0], dtype=float)[on])
        return on[by_x.sort_values(ascending=mx.better == "lower").index.to_numpy()]

    def _status(self, rows: np.ndarray) -> pd.Categorical:
        return pd.Categorical.from_codes(self.ev.status[rows], STATUSES)

    def _tied(self, rows: np.ndarray) -> np.ndarray:
        """Whether each candidate at `rows` is ranked and shares its rank with another."""
        ranks = np.nan_to_num(self.ev.rank[rows]).astype(np.int64)  # not ranked: 0, a rank no candidate has
        return self.ev.eligible[rows] & (self._rank_counts[ranks] > 1)

    @cached_property
    def _rank_counts(self) -> np.ndarray:
        """How many ranked candidates have each rank (index: rank; at least [0])."""
        ev = self.ev
        return np.bincount(ev.rank[ev.eligible].astype(np.int64), minlength=1)

    @cached_property
    def _scores(self) -> np.ndarray:
        """(k, n): each candidate's relative shortfall on each bound it does not meet, -inf on those it meets,
        inf where its figure is unknown."""
        ev = self.ev
        score = np.where(ev.verdict != 0, ev.shortfalls[1], -np.inf)
        score[ev.verdict == UNKNOWN] = np.inf
        return score

    @cached_property
    def _nearness(self) -> np.ndarray:
        """(n,): each candidate's score on the bound it fails worst (how far it is from being ranked)."""
        return self._scores.max(axis=0)

    def _worst(self, rows: np.ndarray) -> np.ndarray:
        """The bound each candidate at `rows` fails worst."""
        return np.argmax(self._scores[:, rows], axis=0)

    def _failed(self, rows: np.ndarray) -> dict[str, Any]:
        """For excluded candidates `rows`: the bound each fails worst (`failed`), by how much (`shortfall` in
        the bound's unit, `shortfall_rel`)."""
        ev = self.ev
        if not len(ev.bounds):
            nan = np.full(len(rows), np.nan)
            failed = pd.Categorical([_NO_OBJECTIVE_TEXT] * len(rows),  # as the whole table's, when it has rows
                                    categories=[_NO_OBJECTIVE_TEXT] if self.excluded_count else None)
            return {"failed": failed, "shortfall": nan, "shortfall_rel": nan}
        no_objective = ev.status[rows] == NO_OBJECTIVE
        worst = self._worst(rows)
        absolute, relative = (m[worst, rows] for m in ev.shortfalls)
        texts = [b.text() for b in ev.bounds] + [_NO_OBJECTIVE_TEXT]
        names = list(dict.fromkeys(texts))  # two equal bounds share one category
        codes = np.array([names.index(text) for text in texts])[np.where(no_objective, len(ev.bounds), worst)]
        return {"failed": pd.Categorical.from_codes(codes, names),
                "shortfall": np.where(no_objective, np.nan, absolute),
                "shortfall_rel": np.where(no_objective, np.nan, relative)}


def _numbers(ev: Evaluation, prices: dict[str, Any], with_ci: set[str]) -> dict[str, Any]:
    """The float columns of the tables, each a whole-length array (references: nothing is computed per row)."""
    numbers: dict[str, Any] = {"rank": ev.rank, "objective": ev.objective[0], "objective_lo": ev.objective[1],
                               "objective_hi": ev.objective[2],
                               "p_all": np.prod(ev.p, axis=0) if len(ev.p) else np.ones(len(ev.status))}
    numbers.update({name: ev.p[j] for j, name in enumerate(_bound_columns(ev))})
    for column in (*FIGURES, *_DERIVED):
        names = (column, f"{column}_lo", f"{column}_hi") if column in with_ci else (column,)
        numbers.update(zip(names, ev.values[column]))
    numbers.update({k: prices[k] for k in _PRICES if k not in _LABELS})
    numbers["unit_cost_per_hour_usd"] = ev.unit_cost_per_hour_usd
    return numbers


# a table's rows in three parts: identity columns (a frame), float columns (names and a (k, rows) block), labels
_Parts = tuple[pd.DataFrame, list[str], np.ndarray, dict[str, Any]]


def _parts(frame: pd.DataFrame, rows: np.ndarray, identity: list[str], numbers: dict[str, np.ndarray],
           labels: dict[str, Any]) -> _Parts:
    """The candidates at `rows`: identity columns, float columns, then `labels` (categoricals, booleans and
    floats, already taken at `rows`)."""
    block = np.empty((len(numbers), len(rows)))
    for j, values in enumerate(numbers.values()):
        np.take(np.asarray(values, dtype=float), rows, out=block[j])
    return frame[[c for c in identity if c in frame]].take(rows), list(numbers), block, labels


def _frame(parts: _Parts) -> pd.DataFrame:
    identity, names, block, labels = parts
    return pd.concat([identity.reset_index(drop=True), pd.DataFrame(block.T, columns=names, copy=False),
                      pd.DataFrame(labels)], axis=1)


def _records(parts: _Parts) -> list[dict[str, Any]]:
    """The rows of _frame(parts) as dicts of Python values (as DataFrame.to_dict("records") gives them; the
    ranked table's rank as an int), column by column."""
    identity, names, block, labels = parts
    columns = [identity[c].tolist() for c in identity.columns] + block.tolist()
    columns += [v.tolist() if isinstance(v, pd.Categorical) else np.asarray(v).tolist()
                for v in labels.values()]
    keys = [*identity.columns, *names, *labels]
    if "rank" in names:
        columns[len(identity.columns) + names.index("rank")] = [int(r) for r in block[names.index("rank")]]
    return [dict(zip(keys, row)) for row in zip(*columns)]


def _take(values: Any, rows: np.ndarray) -> Any:
    return values.take(rows) if isinstance(values, pd.Categorical) else np.asarray(values)[rows]


def _bound_columns(ev: Evaluation) -> list[str]:
    """'p_max_p99', 'p_min_accuracy_ratio', ... (a second bound on one metric gets '_2')."""
    names: list[str] = []
    for bound in ev.bounds:
        name = f"p_{bound.name}"
        names.append(name if name not in names else f"{name}_{len(names) + 1}")
    return names


def _stable_order(keys: np.ndarray) -> np.ndarray:
    """np.argsort(keys, kind="stable") (equal keys keep their order), faster: quicksort on unique int keys."""
    _, codes = np.unique(keys, return_inverse=True)
    return np.argsort(codes.astype(np.int64) * len(keys) + np.arange(len(keys)))
