"""Early warnings: customers who just moved down, ranked by what they are worth, and whether
moving down actually foretells a lapse.

A customer gets a warning at snapshot ``d`` when they were in a ranked segment at the previous
snapshot and are now in a different state that is lower in value (see ``migration``), a risk
segment (named "at-risk", "lapsing", … by ``segments.name_segments``) or churned. The warning
score is the number of value ranks fallen (churned counts one below the lowest segment, a move
to noise counts 0, a move up is negative), at least 1 for a warning.
"""

from __future__ import annotations

from collections.abc import Mapping

import numpy as np
import pandas as pd

from segmentlab.dynamics.migration import transitions
from segmentlab.dynamics.snapshots import CHURNED, Snapshots, spend_between
from segmentlab.schema import CUSTOMER_ID

#: Columns of the warning list (one row per warned customer), in CSV order.
WARNING_COLUMNS = [CUSTOMER_ID, "date", "from", "to", "from_name", "to_name", "ranks_fallen",
                   "recency_days", "value_at_stake", "value_source", "action"]


def score_moves(moves: pd.DataFrame, ranks: Mapping[str, float],
                risk_states: list[str]) -> pd.DataFrame:
    """``warning`` (bool) and ``score`` for each row of ``from`` / ``to`` states.

    Rows whose ``from`` is not a ranked segment (not yet a customer, noise, churned) can get no
    warning; their score is NaN.
    """
    ranked = moves["from"].isin([s for s in ranks if s != CHURNED])
    rank_from = moves["from"].map(ranks)
    rank_to = moves["to"].map(ranks)
    moved = ranked & (moves["to"] != moves["from"])
    lower = (rank_to < rank_from).fillna(False).astype(bool)
    warning = moved & (lower | (moves["to"] == CHURNED) | moves["to"].isin(risk_states))
    fallen = (rank_from - rank_to).where(rank_to.notna(), 0.0).where(ranked)
    score = fallen.where(~warning, np.maximum(fallen, 1.0))
    return pd.DataFrame({"warning": warning, "score": score}, index=moves.index)


def early_warnings(snapshots: Snapshots, transactions: pd.DataFrame, ranks: Mapping[str, float],
                   risk_states: list[str], names: Mapping[str, str] | None = None,
                   actions: Mapping[str, str] | None = None, value: pd.Series | None = None,
                   value_window_days: int = 365, date: pd.Timestamp | None = None) -> pd.DataFrame:
    """The warning list at ``date`` (default: the last snapshot), highest value at stake first.

    Parameters
    ----------
    snapshots : Snapshots
        States; ``date`` and the snapshot before it are compared.
    transactions : DataFrame
        Cleaned lines, for the trailing spend.
    ranks : mapping
        Value rank per state (``migration.state_ranks``).
    risk_states : list of str
        Segment states that warn whenever a customer enters them.
    names : mapping, optional
        Display name per state.
    actions : mapping, optional
        Recommended action per state (e.g. the profile's ``retention`` column); filled into
        ``action`` for the state the customer moved to, or for churned customers the segment
        they left.
    value : Series, optional
        Value per ``customer_id`` (e.g. predicted lifetime value). Customers it lacks, or all
        when None, are valued at their spend over the ``value_window_days`` before ``date``.
    value_window_days : int
        Trailing spend window, in days.
    date : Timestamp, optional
        A snapshot date other than the first.

    Returns
    -------
    DataFrame
        ``WARNING_COLUMNS``; ``value_source`` says which value each row carries.
    """
    dates = snapshots.dates
    date = dates[-1] if date is None else pd.Timestamp(date)
    position = dates.get_loc(date)
    if position == 0:
        raise ValueError(f"date {date.date()} is the first snapshot: nothing to compare it with")
    moves = transitions(snapshots, dates[position - 1], date)
    moves = moves[score_moves(moves, ranks, risk_states)["warning"]]
    scored = score_moves(moves, ranks, risk_states)
    trailing = spend_between(transactions, date - pd.Timedelta(days=value_window_days), date)
    trailing = trailing.reindex(moves.index, fill_value=0.0)
    given = (value if value is not None else pd.Series(dtype=float)).reindex(moves.index)
    names, actions = dict(names or {}), dict(actions or {})
    table = pd.DataFrame({
        "date": date, "from": moves["from"], "to": moves["to"],
        "from_name": moves["from"].map(lambda s: names.get(s, s)),
        "to_name": moves["to"].map(lambda s: names.get(s, s)),
        "ranks_fallen": scored["score"],
        "recency_days": snapshots.at(date)["recency_days"].reindex(moves.index),
        "value_at_stake": given.fillna(trailing),
        "value_source": np.where(given.notna(), "lifetime_value",
                                 f"trailing_{value_window_days}d_spend"),
        # Churned has no profile: its customers get the action of the segment they left.
        "action": moves["to"].map(actions).fillna(moves["from"].where(moves["to"] == CHURNED)
                                                  .map(actions)).fillna(""),
    }, index=moves.index).reset_index()
    table = table.sort_values(["value_at_stake", CUSTOMER_ID], ascending=[False, True])
    return table[WARNING_COLUMNS].reset_index(drop=True)


def warning_outcomes(snapshots: Snapshots, transactions: pd.DataFrame,
                     ranks: Mapping[str, float], risk_states: list[str]) -> pd.DataFrame:
    """Warning, score and recency at each snapshot beside the next period's outcome.

    One row per customer in a ranked segment at the snapshot before ``date``, for every
    ``date`` that has both a previous and a next snapshot. ``lapsed`` is True when the customer
    bought nothing in ``[date, next date)``; ``churned_now`` when they are churned at ``date``.
    """
    dates, rows = snapshots.dates, []
    for before, date, after in zip(dates[:-2], dates[1:-1], dates[2:], strict=True):
        moves = transitions(snapshots, before, date)
        scored = score_moves(moves, ranks, risk_states)
        keep = scored["score"].notna()
        bought = spend_between(transactions, date, after).index
        frame = pd.DataFrame({
            "date": date, "warning": scored["warning"][keep], "score": scored["score"][keep],
            "recency_days": snapshots.at(date)["recency_days"].reindex(moves.index[keep]),
            "churned_now": moves["to"][keep] == CHURNED,
            "lapsed": ~moves.index[keep].isin(bought),
        })
        rows.append(frame.reset_index())
    if not rows:
        return pd.DataFrame(columns=[CUSTOMER_ID, "date", "warning", "score", "recency_days",
                                     "churned_now", "lapsed"])
    return pd.concat(rows, ignore_index=True)


def evaluate_warnings(outcomes: pd.DataFrame, n_bootstrap: int = 200,
                      random_state: int = 42) -> tuple[dict[str, float], pd.DataFrame]:
    """How well the warning, its score and recency alone rank next-period lapses.

    AUCs are pooled over all evaluated snapshots, with a 95 % interval from resampling
    customers (all their snapshots together). ``_active`` repeats them without the customers
    already churned at the snapshot, for whom a lapse is nearly certain whatever the score.

    Parameters
    ----------
    outcomes : DataFrame
        Output of :func:`warning_outcomes`.
    n_bootstrap : int
        Customer resamples for the intervals; 0 skips them.
    random_state : int
        Seed of the resamples.

    Returns
    -------
    metrics : dict
        ``dynamics/{warning,warning_score,recency}_auc[_active]`` with ``_ci_low`` / ``_ci_high``,
        ``dynamics/lapse_rate``, ``dynamics/lapse_rate_warned``, ``dynamics/lapse_rate_not_warned``
        and ``dynamics/n_evaluated``; NaN when there is nothing to evaluate.
    per_date : DataFrame
        Per snapshot date: customers, warned, lapse rates and the three AUCs.
    """
    scores = {"warning": "warning", "warning_score": "score", "recency": "recency_days"}
    metrics = {"dynamics/n_evaluated": float(len(outcomes))}
    lapsed = outcomes["lapsed"].to_numpy(bool)
    warned = outcomes["warning"].to_numpy(bool)
    metrics["dynamics/lapse_rate"] = _mean(lapsed)
    metrics["dynamics/lapse_rate_warned"] = _mean(lapsed[warned])
    metrics["dynamics/lapse_rate_not_warned"] = _mean(lapsed[~warned])
    active = ~outcomes["churned_now"].to_numpy(bool)
    rng = np.random.default_rng(random_state)
    for suffix, rows in (("", np.ones(len(outcomes), bool)), ("_active", active)):
        part = outcomes[rows]
        draws = _customer_resamples(part[CUSTOMER_ID].to_numpy(), n_bootstrap, rng)
        for name, column in scores.items():
            values, y = part[column].to_numpy(float), part["lapsed"].to_numpy(bool)
            key = f"dynamics/{name}_auc{suffix}"
            code = np.unique(values, return_inverse=True)[1]
            metrics[key] = _coded_auc(code, y)
            spread = [_coded_auc(code, y, w) for w in draws]
            finite = [a for a in spread if np.isfinite(a)]
            low, high = np.percentile(finite, [2.5, 97.5]) if finite else (np.nan, np.nan)
            metrics[f"{key}_ci_low"], metrics[f"{key}_ci_high"] = float(low), float(high)
    per_date = pd.DataFrame([{"date": date, **_period_row(rows)}
                             for date, rows in outcomes.groupby("date", sort=True)],
                            columns=["date", *_PERIOD_COLUMNS])
    return metrics, per_date


_PERIOD_COLUMNS = ["customers", "warned", "lapse_rate_warned", "lapse_rate_not_warned",
                   "warning_auc", "warning_score_auc", "recency_auc"]


def _period_row(rows: pd.DataFrame) -> dict[str, float]:
    """One evaluated snapshot: sizes, lapse rates and AUCs."""
    y, warned = rows["lapsed"].to_numpy(bool), rows["warning"].to_numpy(bool)
    return {"customers": len(rows), "warned": int(warned.sum()),
            "lapse_rate_warned": _mean(y[warned]), "lapse_rate_not_warned": _mean(y[~warned]),
            "warning_auc": auc(warned.astype(float), y),
            "warning_score_auc": auc(rows["score"].to_numpy(float), y),
            "recency_auc": auc(rows["recency_days"].to_numpy(float), y)}


def auc(score: np.ndarray, y: np.ndarray, weight: np.ndarray | None = None) -> float:
    """Area under the ROC curve (Mann-Whitney, ties count half), rows weighted by ``weight``;
    NaN with one class only."""
    return _coded_auc(np.unique(score, return_inverse=True)[1], y, weight)


def _coded_auc(code: np.ndarray, y: np.ndarray, weight: np.ndarray | None = None) -> float:
    """``_auc`` of scores given as their rank codes among the distinct values."""
    weight = np.ones(len(y)) if weight is None else weight
    if not len(code):
        return float("nan")
    positive = np.bincount(code, weights=weight * y, minlength=code.max() + 1)
    negative = np.bincount(code, weights=weight * ~y, minlength=code.max() + 1)
    n_pos, n_neg = positive.sum(), negative.sum()
    if n_pos == 0 or n_neg == 0:
        return float("nan")
    below = np.cumsum(negative) - negative  # negatives with a strictly lower score
    return float((positive * (below + negative / 2)).sum() / (n_pos * n_neg))


def _customer_resamples(customers: np.ndarray, n: int, rng: np.random.Generator) -> list[np.ndarray]:
    """Row weights of ``n`` resamples of whole customers drawn with replacement: a customer
    drawn m times weighs m on each of their rows."""
    if n <= 0 or not len(customers):
        return []
    codes, uniques = pd.factorize(customers)
    k = len(uniques)
    return [np.bincount(rng.integers(0, k, size=k), minlength=k)[codes].astype(float)
            for _ in range(n)]


def _mean(values: np.ndarray) -> float:
    return float(values.mean()) if len(values) else float("nan")
