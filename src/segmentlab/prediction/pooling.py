"""Training on many cutoffs at once, and judging the result with its uncertainty.

One training cutoff gives one row per customer. Stacking the windows of many cutoffs (every 7
or 14 days) gives the model more rows, more seasons and more situations a customer can be in,
all with labels that end before the evaluation period. ``pooled_frame`` builds that stack from
a feature-union factory, refitting the union on each cutoff's history, so every row is what
the model would have seen on that day. The transactions are sorted once and each history is a
slice of them, not a filtered copy.

The scores come with a customer bootstrap (``bootstrap_auc``): the 95 % interval of ROC AUC
and of its difference to each baseline, computed on the same resamples so that the shared
noise cancels. ``expected_calibration_error`` and ``reliability_table`` say whether the
probabilities can be read as probabilities.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from time import perf_counter

import numpy as np
import pandas as pd
from sklearn.pipeline import FeatureUnion

from segmentlab.customers import snapshot_date as data_end
from segmentlab.prediction.windows import (
    FUTURE_SPEND,
    WILL_BUY,
    rfm_baseline_features,
    window_features,
)
from segmentlab.schema import AMOUNT, CUSTOMER_ID, INVOICE_DATE, INVOICE_NO, IS_RETURN

CUTOFF = "cutoff"
POPULATIONS = ("active", "all")
BASELINE_PREFIX = "rfm_baseline__"  # log recency / frequency / monetary of the RFM-logreg baseline


def train_cutoffs(data_start: pd.Timestamp | str, eval_cutoff: pd.Timestamp | str,
                  horizon_days: int, every_days: int = 7,
                  min_history_days: int = 60) -> list[pd.Timestamp]:
    """Training cutoffs whose label windows all end on or before the evaluation cutoff.

    The latest is ``eval_cutoff - horizon_days``; the others step back ``every_days`` from it
    (so they share its weekday) down to the first with ``min_history_days`` of history.

    Parameters
    ----------
    data_start : Timestamp or str
        First moment of the data (its first invoice).
    eval_cutoff : Timestamp or str
        Where the model will be judged; no training label may reach past it.
    horizon_days : int
        Length of each label window, in days.
    every_days : int
        Step between cutoffs, in days.
    min_history_days : int
        Least history, in days, a cutoff needs before it.

    Returns
    -------
    list of Timestamp
        Ascending; each ``c`` has ``c + horizon_days <= eval_cutoff``.
    """
    for name, value in [("horizon_days", horizon_days), ("every_days", every_days)]:
        if int(value) != value or value <= 0:
            raise ValueError(f"{name} must be a positive whole number of days, got {value!r}")
    if min_history_days < 0:
        raise ValueError(f"min_history_days must be >= 0, got {min_history_days!r}")
    latest = pd.Timestamp(eval_cutoff) - pd.Timedelta(days=horizon_days)
    earliest = pd.Timestamp(data_start) + pd.Timedelta(days=min_history_days)
    if latest < earliest:
        raise ValueError(f"no training cutoff: eval cutoff {pd.Timestamp(eval_cutoff).date()} - "
                         f"horizon {horizon_days} days leaves less than min_history_days="
                         f"{min_history_days} after the data start {pd.Timestamp(data_start).date()}")
    steps = (latest - earliest) // pd.Timedelta(days=every_days)
    return [latest - pd.Timedelta(days=every_days * k) for k in range(steps, -1, -1)]


@dataclass(frozen=True)
class PooledFrame:
    """Customer × cutoff rows for training or scoring, with where every customer went.

    Attributes
    ----------
    frame : DataFrame
        One row per kept customer and cutoff: ``customer_id``, ``cutoff``, the feature columns,
        the RFM baseline columns, ``will_buy`` and ``future_spend``. Sorted by cutoff, then
        customer. A feature column some window lacks (e.g. a country outside that window's
        top list) is 0 there.
    feature_columns : list of str
        The union's output columns, in first-seen order.
    baseline_columns : list of str
        ``rfm_baseline__log_recency``, ``…log_frequency``, ``…log_monetary``.
    counts : DataFrame
        Per cutoff: ``purchasers`` (customers with a purchase before it), ``dropped_inactive``
        (none bought in the ``active_days`` before it; 0 for population ``all``), ``rows``,
        ``buyers`` (rows with ``will_buy`` 1), ``base_rate`` and ``seconds`` (features).
    """

    frame: pd.DataFrame
    feature_columns: list[str]
    baseline_columns: list[str]
    counts: pd.DataFrame

    def X(self, columns: Sequence[str] | None = None) -> pd.DataFrame:
        """Predictors (default: every feature column), indexed like ``frame``."""
        return self.frame[list(self.feature_columns if columns is None else columns)]

    @property
    def y(self) -> np.ndarray:
        return self.frame[WILL_BUY].to_numpy()


def pooled_frame(transactions: pd.DataFrame, make_features: Callable[[], FeatureUnion],
                 cutoffs: Sequence[pd.Timestamp | str], horizon_days: int = 90,
                 population: str = "active", active_days: int = 365,
                 labels_before: pd.Timestamp | str | None = None) -> PooledFrame:
    """Stack, for each cutoff, features of its history and labels of its horizon.

    Parameters
    ----------
    transactions : DataFrame
        Cleaned invoice lines (purchases and returns), any order.
    make_features : callable
        Returns a fresh, unfitted feature union; one is fitted per cutoff on the lines strictly
        before it, so every row sees only its own past.
    cutoffs : sequence of Timestamp or str
        Moments of prediction, e.g. from :func:`train_cutoffs`.
    horizon_days : int
        Label window ``[cutoff, cutoff + horizon_days)``: ``will_buy`` is 1 with a purchase
        there (returns do not count), ``future_spend`` its purchase value.
    population : {"active", "all"}
        ``active`` keeps customers with a purchase in the ``active_days`` before the cutoff;
        ``all`` keeps everyone with a purchase before it.
    active_days : int
        See ``population``.
    labels_before : Timestamp, str or None
        If given, refuse any cutoff whose label window ends after it (the evaluation cutoff,
        for training rows).

    Returns
    -------
    PooledFrame
    """
    if population not in POPULATIONS:
        raise ValueError(f"population must be one of {POPULATIONS}, got {population!r}")
    if int(active_days) != active_days or active_days <= 0:
        raise ValueError(f"active_days must be a positive whole number of days, got {active_days!r}")
    horizon = pd.Timedelta(days=horizon_days)
    cutoffs = sorted(pd.Timestamp(c) for c in cutoffs)
    if not cutoffs:
        raise ValueError("cutoffs: empty; give at least one cutoff")
    _check_label_windows(cutoffs, horizon, data_end(transactions), labels_before)
    if not transactions[INVOICE_DATE].is_monotonic_increasing:
        transactions = transactions.sort_values(INVOICE_DATE, kind="stable")
    dates = transactions[INVOICE_DATE].to_numpy()
    # Baseline, population and labels need four columns; invoice numbers as integer codes
    # count the same invoices as the text, at a fraction of the cost of hashing it per cutoff.
    narrow = transactions[[CUSTOMER_ID, INVOICE_DATE, AMOUNT, IS_RETURN]].assign(
        **{INVOICE_NO: pd.factorize(transactions[INVOICE_NO])[0]})
    parts, counts, columns = [], [], {}
    for cutoff in cutoffs:
        start = perf_counter()
        i, j = np.searchsorted(dates, [cutoff.to_datetime64(), (cutoff + horizon).to_datetime64()])
        base = window_features(make_features(), transactions.iloc[:i])
        seconds = perf_counter() - start
        columns.update(dict.fromkeys(base.columns))
        history, future = narrow.iloc[:i], narrow.iloc[i:j]
        baseline = rfm_baseline_features(history, cutoff).add_prefix(BASELINE_PREFIX)
        kept = _in_population(history, cutoff, base.index, population, active_days)
        part = base[kept].join(baseline)
        bought = future.loc[~future[IS_RETURN], [CUSTOMER_ID, AMOUNT]]
        spend = bought.groupby(CUSTOMER_ID)[AMOUNT].sum()
        part[WILL_BUY] = part.index.isin(spend.index).astype(np.int64)
        part[FUTURE_SPEND] = spend.reindex(part.index, fill_value=0.0).to_numpy(float)
        parts.append(part.reset_index().assign(**{CUTOFF: cutoff}))
        counts.append({CUTOFF: cutoff, "purchasers": len(base), "dropped_inactive": int((~kept).sum()),
                       "rows": len(part), "buyers": int(part[WILL_BUY].sum()),
                       "base_rate": float(part[WILL_BUY].mean()) if len(part) else float("nan"),
                       "seconds": seconds})
    features, baselines = list(columns), [f"{BASELINE_PREFIX}{c}" for c in
                                          ("log_recency", "log_frequency", "log_monetary")]
    order = [CUSTOMER_ID, CUTOFF, *features, *baselines, WILL_BUY, FUTURE_SPEND]
    frame = pd.concat(parts, ignore_index=True).reindex(columns=order)
    frame[features] = frame[features].fillna(0.0)
    return PooledFrame(frame, features, baselines, pd.DataFrame(counts))


def time_split(pooled: PooledFrame, score_cutoff: pd.Timestamp | str,
               horizon_days: int) -> tuple[np.ndarray, np.ndarray]:
    """Rows to learn from and rows to score for a validation window at ``score_cutoff``.

    Learning rows are those whose label window ends on or before ``score_cutoff``; scoring rows
    those at ``score_cutoff`` itself. Customers appear in both, but at different times, as when
    the model is deployed.

    Returns
    -------
    learn, score : boolean arrays over ``pooled.frame``
    """
    score_cutoff = pd.Timestamp(score_cutoff)
    cutoff = pooled.frame[CUTOFF]
    learn = (cutoff + pd.Timedelta(days=horizon_days) <= score_cutoff).to_numpy()
    score = (cutoff == score_cutoff).to_numpy()
    if not score.any():
        raise ValueError(f"score_cutoff {score_cutoff.date()} is not one of the frame's cutoffs")
    if not learn.any():
        raise ValueError(f"no cutoff has its labels complete by {score_cutoff.date()}")
    return learn, score


def bootstrap_auc(y: np.ndarray, scores: np.ndarray,
                  baseline_scores: Mapping[str, np.ndarray] | np.ndarray | None = None,
                  n: int = 1000, seed: int = 0, groups: np.ndarray | None = None) -> dict[str, float]:
    """ROC AUC with a customer-bootstrap 95 % interval, and its gain over each baseline.

    Every resample draws rows (or, with ``groups``, whole groups) with replacement, as many
    as there are; the model and the baselines are scored on the same resamples, so the
    interval of a difference is that of paired scores.

    Parameters
    ----------
    y : array of 0/1
        Outcomes; both classes must occur.
    scores : array
        Model scores (any monotone scale).
    baseline_scores : mapping of name to array, array, or None
        Baseline scores on the same rows; a bare array is named ``baseline``.
    n : int
        Number of resamples.
    seed : int
        Seed of the resampling.
    groups : array or None
        A group per row (e.g. the customer, when rows of several cutoffs are stacked): rows of
        a group are drawn together, so the interval reflects independent customers, not rows.

    Returns
    -------
    dict
        ``roc_auc``, ``roc_auc_ci_low``, ``roc_auc_ci_high`` (2.5 and 97.5 percentiles) and for
        each baseline ``<name>_roc_auc``, ``gain_vs_<name>``, ``gain_vs_<name>_ci_low``,
        ``gain_vs_<name>_ci_high``.
    """
    y = np.asarray(y).astype(int)
    if set(np.unique(y)) != {0, 1}:
        raise ValueError(f"y must hold both classes 0 and 1, got {np.unique(y)[:5]}")
    if isinstance(baseline_scores, np.ndarray | pd.Series | list):
        baseline_scores = {"baseline": baseline_scores}
    baselines = dict(baseline_scores or {})
    for name, values in [("scores", scores), *baselines.items()]:
        if len(values) != len(y):
            raise ValueError(f"{name}: {len(values)} values for {len(y)} outcomes")
    if n < 10:
        raise ValueError(f"n must be at least 10 resamples, got {n}")
    if groups is None:
        units, row_unit = len(y), np.arange(len(y))
    else:
        if len(groups) != len(y):
            raise ValueError(f"groups: {len(groups)} values for {len(y)} outcomes")
        row_unit = np.unique(np.asarray(groups), return_inverse=True)[1].ravel()
        units = int(row_unit.max()) + 1
    rng = np.random.default_rng(seed)
    draws = rng.integers(0, units, size=(n, units))
    counts = np.bincount((draws + units * np.arange(n)[:, None]).ravel(), minlength=n * units)
    weights = counts.reshape(n, units)[:, row_unit].astype(float)
    ones = np.ones((1, len(y)))
    model = _weighted_auc(y, np.asarray(scores, dtype=float), weights)
    out = {"roc_auc": float(_weighted_auc(y, np.asarray(scores, dtype=float), ones)[0]),
           **_interval("roc_auc", model)}
    for name, values in baselines.items():
        base = _weighted_auc(y, np.asarray(values, dtype=float), weights)
        base_point = float(_weighted_auc(y, np.asarray(values, dtype=float), ones)[0])
        out[f"{name}_roc_auc"] = base_point
        out[f"gain_vs_{name}"] = out["roc_auc"] - base_point
        out.update(_interval(f"gain_vs_{name}", model - base))
    return out


def _interval(name: str, values: np.ndarray) -> dict[str, float]:
    low, high = np.nanpercentile(values, [2.5, 97.5])
    return {f"{name}_ci_low": float(low), f"{name}_ci_high": float(high)}


def _weighted_auc(y: np.ndarray, scores: np.ndarray, weights: np.ndarray) -> np.ndarray:
    """ROC AUC of ``scores`` under each row of ``weights`` (counts), ties counting one half.

    The rows are sorted once; per weight vector the AUC is the weighted Mann-Whitney statistic:
    for each group of tied scores, its positive weight times the negative weight below it plus
    half the negative weight inside it. A resample without both classes gives NaN.
    """
    order = np.argsort(scores, kind="stable")
    sorted_scores, y_sorted = scores[order], y[order]
    starts = np.flatnonzero(np.r_[True, sorted_scores[1:] != sorted_scores[:-1]])
    w = weights[:, order]
    pos = np.add.reduceat(w * y_sorted, starts, axis=1)
    neg = np.add.reduceat(w * (1 - y_sorted), starts, axis=1)
    below = np.cumsum(neg, axis=1) - neg
    total_pos, total_neg = pos.sum(axis=1), neg.sum(axis=1)
    with np.errstate(invalid="ignore", divide="ignore"):
        auc = (pos * (below + 0.5 * neg)).sum(axis=1) / (total_pos * total_neg)
    return np.where((total_pos > 0) & (total_neg > 0), auc, np.nan)


def reliability_table(y: np.ndarray, p: np.ndarray, n_bins: int = 10) -> pd.DataFrame:
    """Observed rate against mean predicted probability in equal-width probability bins.

    Parameters
    ----------
    y : array of 0/1
        Outcomes.
    p : array of float in [0, 1]
        Predicted probabilities of outcome 1.
    n_bins : int
        Bins of width ``1 / n_bins``; ``p == 1`` falls in the last. Empty bins are left out.

    Returns
    -------
    DataFrame
        ``bin_low``, ``bin_high``, ``n``, ``mean_predicted``, ``observed_rate`` and ``gap``
        (observed minus predicted), one row per non-empty bin.
    """
    y, p = np.asarray(y, dtype=float), np.asarray(p, dtype=float)
    if len(y) != len(p) or not len(y):
        raise ValueError(f"y and p must be non-empty and of equal length, got {len(y)} and {len(p)}")
    if np.isnan(p).any() or p.min() < 0 or p.max() > 1:
        raise ValueError("p must be probabilities in [0, 1] without NaN")
    if int(n_bins) != n_bins or n_bins < 1:
        raise ValueError(f"n_bins must be a positive whole number, got {n_bins!r}")
    edges = np.linspace(0.0, 1.0, n_bins + 1)
    which = np.clip(np.searchsorted(edges, p, side="right") - 1, 0, n_bins - 1)
    n = np.bincount(which, minlength=n_bins)
    used = n > 0
    mean_p = np.bincount(which, weights=p, minlength=n_bins)[used] / n[used]
    rate = np.bincount(which, weights=y, minlength=n_bins)[used] / n[used]
    return pd.DataFrame({"bin_low": edges[:-1][used], "bin_high": edges[1:][used], "n": n[used],
                         "mean_predicted": mean_p, "observed_rate": rate, "gap": rate - mean_p})


def expected_calibration_error(y: np.ndarray, p: np.ndarray, n_bins: int = 10) -> float:
    """Share-weighted mean of ``|observed rate - mean predicted|`` over equal-width bins.

    0 for probabilities that match the observed rates bin by bin; see ``reliability_table``.
    """
    table = reliability_table(y, p, n_bins)
    return float((table["n"] * table["gap"].abs()).sum() / table["n"].sum())


def _in_population(history: pd.DataFrame, cutoff: pd.Timestamp, customers: pd.Index,
                   population: str, active_days: int) -> np.ndarray:
    """Whether each of ``customers`` belongs to the population at ``cutoff``."""
    if population == "all":
        return np.ones(len(customers), dtype=bool)
    bought = history.loc[~history[IS_RETURN].to_numpy(bool), [CUSTOMER_ID, INVOICE_DATE]]
    last = bought.groupby(CUSTOMER_ID)[INVOICE_DATE].max().reindex(customers)
    return (last >= cutoff - pd.Timedelta(days=active_days)).to_numpy()


def _check_label_windows(cutoffs: list[pd.Timestamp], horizon: pd.Timedelta, end: pd.Timestamp,
                         labels_before) -> None:
    """Every label window must be complete in the data and, if asked, end by ``labels_before``."""
    last = cutoffs[-1]
    if last + horizon > end:
        raise ValueError(f"cutoff {last.date()} + {horizon.days} days passes the data end "
                         f"{end.date()}: its labels would be incomplete")
    if labels_before is not None and last + horizon > pd.Timestamp(labels_before):
        raise ValueError(f"cutoff {last.date()} + {horizon.days} days passes labels_before "
                         f"{pd.Timestamp(labels_before).date()}: its labels would overlap the "
                         "evaluation period")
