"""Flows between states from one snapshot to another, their revenue, and the migration rates.

Value order
-----------
Segments are ranked by the median spend of their customers over the ``window_days`` before the
fit window's end (trailing spend, e.g. 12 months), computed once on the run's labels: rank 0 is
the lowest-value segment. Ties go to the mean, then to the label. Noise (-1) is not ranked, and
churned ranks below every segment. A move between ranked segments is an upgrade or a downgrade
by this order; the order never changes between snapshots, like the segments themselves.

Rates (``migration_metrics``) are pooled over all consecutive snapshot pairs and count, among
customers in a ranked segment at the earlier date, where they are at the next: the same segment
(``stay``), a higher or lower ranked one (``upgrade``, ``downgrade``), ``churned``, or noise
(none of the four), so stay + upgrade + downgrade + churn + to-noise = 1.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from segmentlab.dynamics.snapshots import CHURNED, NOT_YET, Snapshots, spend_between
from segmentlab.schema import CUSTOMER_ID

#: Rank given to CHURNED: below the lowest-value segment (rank 0).
CHURNED_RANK = -1.0
#: Columns of the flow table (``flow_table``), one row per (from, to) pair of states.
FLOW_COLUMNS = ["date_from", "date_to", "from", "to", "customers", "share", "revenue_next",
                "revenue_complete"]


def segment_values(transactions: pd.DataFrame, labels: pd.Series, end: pd.Timestamp,
                   window_days: int = 365) -> pd.DataFrame:
    """Trailing spend per segment at fit time and the value rank that orders the segments.

    Parameters
    ----------
    transactions : DataFrame
        Cleaned lines the run was fitted on.
    labels : Series
        The run's segment per ``customer_id``.
    end : Timestamp
        The fit window's end (the day after the last invoice).
    window_days : int
        Length of the trailing window, in days.

    Returns
    -------
    DataFrame
        Indexed by ``segment``: ``n_customers``, ``trailing_spend_median``,
        ``trailing_spend_mean`` and ``value_rank`` (0 = lowest; NaN for noise).
    """
    start = end - pd.Timedelta(days=window_days)
    spend = spend_between(transactions, start, end).reindex(labels.index, fill_value=0.0)
    grouped = spend.groupby(labels.to_numpy())
    table = pd.DataFrame({"n_customers": grouped.size(), "trailing_spend_median": grouped.median(),
                          "trailing_spend_mean": grouped.mean()}).rename_axis("segment")
    ranked = table.drop(index=-1, errors="ignore").reset_index()
    ranked = ranked.sort_values(["trailing_spend_median", "trailing_spend_mean", "segment"])
    table["value_rank"] = pd.Series(np.arange(len(ranked), dtype=float),
                                    index=ranked["segment"].to_numpy())
    return table


def state_ranks(values: pd.DataFrame) -> dict[str, float]:
    """Value rank per state text: ranked segments, and CHURNED below them all."""
    ranked = values["value_rank"].dropna()
    return {**{str(label): float(rank) for label, rank in ranked.items()}, CHURNED: CHURNED_RANK}


def state_order(states: pd.Index | list, ranks: dict[str, float]) -> list[str]:
    """Display order: not yet a customer, segments from highest to lowest value, noise, churned."""
    present = list(dict.fromkeys(states))
    segments = sorted((s for s in present if s in ranks and s != CHURNED), key=lambda s: -ranks[s])
    others = sorted(s for s in present if s not in ranks and s not in (NOT_YET, CHURNED))
    return ([NOT_YET] if NOT_YET in present else []) + segments + others + \
        ([CHURNED] if CHURNED in present else [])


def transitions(snapshots: Snapshots, date_from: pd.Timestamp, date_to: pd.Timestamp) -> pd.DataFrame:
    """Each customer's state at the two dates: ``from`` and ``to``, indexed by ``customer_id``."""
    before, after = snapshots.at(date_from)["state"], snapshots.at(date_to)["state"]
    return pd.DataFrame({"from": before, "to": after.reindex(before.index)}).rename_axis(CUSTOMER_ID)


def flow_table(snapshots: Snapshots, transactions: pd.DataFrame, date_from: pd.Timestamp,
               date_to: pd.Timestamp) -> pd.DataFrame:
    """Customers and next-period revenue of every (from, to) pair between two snapshot dates.

    Parameters
    ----------
    snapshots : Snapshots
        States at both dates.
    transactions : DataFrame
        Cleaned lines, for the revenue.
    date_from, date_to : Timestamp
        Two snapshot dates, ``date_from`` first.

    Returns
    -------
    DataFrame
        ``FLOW_COLUMNS``: ``share`` is the pair's share of its ``from`` row (each row of states
        sums to 1); ``revenue_next`` the purchase spend of the pair's customers in
        ``[date_to, date_to + step)``, so the column sums to the whole period's revenue;
        ``revenue_complete`` is False when that period runs past the data's end.
    """
    moves = transitions(snapshots, date_from, date_to)
    period_end = date_to + snapshots.step
    spend = spend_between(transactions, date_to, period_end)
    moves["revenue"] = spend.reindex(moves.index, fill_value=0.0).to_numpy()
    flows = moves.groupby(["from", "to"], sort=False).agg(customers=("revenue", "size"),
                                                           revenue_next=("revenue", "sum"))
    flows = flows.reset_index()
    flows["share"] = flows["customers"] / flows.groupby("from")["customers"].transform("sum")
    complete = period_end <= snapshots.end
    return flows.assign(date_from=date_from, date_to=date_to,
                        revenue_next=flows["revenue_next"] if complete else np.nan,
                        revenue_complete=complete)[FLOW_COLUMNS]


def all_flows(snapshots: Snapshots, transactions: pd.DataFrame) -> pd.DataFrame:
    """Flow tables of every consecutive pair and of first -> last, with a ``pair`` column."""
    dates = snapshots.dates
    tables = [flow_table(snapshots, transactions, a, b).assign(pair="consecutive")
              for a, b in zip(dates[:-1], dates[1:], strict=True)]
    tables.append(flow_table(snapshots, transactions, dates[0], dates[-1]).assign(pair="first_last"))
    return pd.concat(tables, ignore_index=True)


def migration_matrix(flows: pd.DataFrame, ranks: dict[str, float],
                     value: str = "customers") -> pd.DataFrame:
    """One pair's flows as a from x to matrix of ``customers``, ``share`` or ``revenue_next``.

    Rows and columns follow :func:`state_order`; absent flows are 0.
    """
    matrix = flows.pivot_table(index="from", columns="to", values=value, aggfunc="sum", fill_value=0)
    rows = state_order(matrix.index, ranks)
    columns = state_order(matrix.columns, ranks)
    return matrix.reindex(index=rows, columns=columns, fill_value=0).rename_axis(
        index="from", columns="to")


def _rate(moves: pd.DataFrame, kind: str, segment: str | None = None) -> float:
    """Share of ``moves`` (of one ``from`` segment, or all) of the given kind; NaN if none."""
    rows = moves if segment is None else moves[moves["from"] == segment]
    return float((rows["kind"] == kind).mean()) if len(rows) else float("nan")


def migration_metrics(snapshots: Snapshots, ranks: dict[str, float]) -> dict[str, float]:
    """Stay, upgrade, downgrade and churn rates (see the module docstring).

    Returns
    -------
    dict
        ``dynamics/stay_rate``, ``dynamics/upgrade_rate``, ``dynamics/downgrade_rate``,
        ``dynamics/churn_rate``, and per ranked segment ``dynamics/stay_rate_<label>`` and
        ``dynamics/churn_rate_<label>``; NaN where no customer was in the segment.
    """
    dates = snapshots.dates
    pairs = [transitions(snapshots, a, b) for a, b in zip(dates[:-1], dates[1:], strict=True)]
    moves = pd.concat(pairs, ignore_index=True)
    moves = moves[moves["from"].isin([s for s in ranks if s != CHURNED])]
    rank_from = moves["from"].map(ranks)
    rank_to = moves["to"].map(ranks)
    segment_to = rank_to.notna() & (moves["to"] != CHURNED)
    kind = np.select([moves["to"] == moves["from"], moves["to"] == CHURNED,
                      segment_to & (rank_to > rank_from), segment_to & (rank_to < rank_from)],
                     ["stay", "churn", "upgrade", "downgrade"], "noise")
    moves = moves.assign(kind=kind)
    metrics = {f"dynamics/{k}_rate": _rate(moves, k) for k in ("stay", "upgrade", "downgrade", "churn")}
    for state in sorted((s for s in ranks if s != CHURNED), key=int):
        metrics[f"dynamics/stay_rate_{state}"] = _rate(moves, "stay", state)
        metrics[f"dynamics/churn_rate_{state}"] = _rate(moves, "churn", state)
    return metrics
