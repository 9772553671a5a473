"""Training on many cutoffs at once: the rows of every cutoff, computed once, stacked on demand.

One training cutoff gives one row per customer. Stacking the windows of many cutoffs (every 7
or 14 days) gives the model more rows, more seasons and more situations a customer can be in,
all with labels that end before the evaluation period. `CutoffFrames` computes a cutoff's rows
on first use, refitting a fresh feature union on that cutoff's history only, so every row is
what the model would have seen on that day; the evaluated model, its validation windows, the
baselines and the deployed model then share them. The transactions are sorted once and each
history is a slice of them, not a filtered copy.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from time import perf_counter

import numpy as np
import pandas as pd
from sklearn.pipeline import FeatureUnion, Pipeline

from segmentlab.customers import snapshot_date as data_end
from segmentlab.prediction.windows import (
    FUTURE_SPEND,
    WILL_BUY,
    rfm_baseline_features,
    window_features,
)
from segmentlab.schema import AMOUNT, CUSTOMER_ID, INVOICE_DATE, INVOICE_NO, IS_RETURN

CUTOFF = "cutoff"
ACTIVE = "active"  # a purchase in the ``active_days`` before the cutoff
LAST_SPEND = "last_period_spend"  # purchase value in the horizon before the cutoff: the naive forecast
SEGMENT_CLUSTER = "segment_cluster"  # cluster of a fresh segmenter at that cutoff (its own labels)
POPULATIONS = ("active", "all")
BASELINE_PREFIX = "rfm_baseline__"  # log recency / frequency / monetary of the RFM-logreg baseline
BASELINE_COLUMNS = [f"{BASELINE_PREFIX}{c}" for c in ("log_recency", "log_frequency", "log_monetary")]


@dataclass(frozen=True)
class PooledFrame:
    """Customer × cutoff rows for training or scoring, with where every customer went.

    Attributes
    ----------
    frame : DataFrame
        One row per kept customer and cutoff: ``customer_id``, ``cutoff``, the feature columns,
        the RFM baseline columns, ``active``, ``last_period_spend``, ``will_buy`` and
        ``future_spend``. Sorted by cutoff, then customer. A
        feature column some window lacks (e.g. a country outside that window's top list) is 0.
    feature_columns : list of str
        The unions' output columns, in first-seen order.
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

    @property
    def groups(self) -> np.ndarray:
        """The customer of each row (rows of one customer at several cutoffs belong together)."""
        return self.frame[CUSTOMER_ID].to_numpy()


class CutoffFrames:
    """Per-cutoff rows of every purchaser, each computed once and stacked on demand.

    Parameters
    ----------
    transactions : DataFrame
        Cleaned invoice lines (purchases and returns), any order.
    make_features : callable
        Returns a fresh, unfitted feature union; one is fitted per cutoff on the lines strictly
        before it.
    horizon_days : int
        Label window ``[cutoff, cutoff + horizon_days)``: ``will_buy`` is 1 with a purchase
        there (returns do not count), ``future_spend`` its purchase value.
    active_days : int
        ``active`` marks customers with a purchase in the ``active_days`` before the cutoff.
    """

    def __init__(self, transactions: pd.DataFrame, make_features: Callable[[], FeatureUnion],
                 horizon_days: int = 90, active_days: int = 365):
        if isinstance(active_days, bool) or int(active_days) != active_days or active_days <= 0:
            raise ValueError(f"active_days must be a positive whole number of days, got {active_days!r}")
        if not transactions[INVOICE_DATE].is_monotonic_increasing:
            transactions = transactions.sort_values(INVOICE_DATE, kind="stable")
        self.transactions, self.make_features = transactions, make_features
        self.horizon_days, self.active_days = horizon_days, active_days
        self.data_end = data_end(transactions)
        self._dates = transactions[INVOICE_DATE].to_numpy()
        # Baseline, population and labels need four columns; invoice numbers as integer codes
        # count the same invoices as the text, at a fraction of the cost of hashing it per cutoff.
        self._narrow = transactions[[CUSTOMER_ID, INVOICE_DATE, AMOUNT, IS_RETURN]].assign(
            **{INVOICE_NO: pd.factorize(transactions[INVOICE_NO])[0]})
        self._done: dict[pd.Timestamp, tuple[pd.DataFrame, list[str], float]] = {}
        self._clusters: dict[tuple[pd.Timestamp, str], pd.Series] = {}

    def frame(self, cutoff: pd.Timestamp | str) -> pd.DataFrame:
        """The rows of one cutoff, indexed by ``customer_id`` (see `PooledFrame.frame`)."""
        return self._get(pd.Timestamp(cutoff))[0]

    def features(self, cutoff: pd.Timestamp | str) -> pd.DataFrame:
        """The feature columns of one cutoff's purchasers (what a segmenter clusters)."""
        rows, features, _ = self._get(pd.Timestamp(cutoff))
        return rows[features]

    def clusters(self, cutoff: pd.Timestamp | str, segmenter_factory: Callable[[], Pipeline]) -> pd.Series:
        """Labels of a fresh segmenter fitted on one cutoff's features (that cutoff's own labels),
        cached per cutoff and segmenter parameters."""
        segmenter = segmenter_factory()
        key = (pd.Timestamp(cutoff), repr(sorted(segmenter.get_params(deep=True).items(), key=str)))
        if key not in self._clusters:
            X = self.features(cutoff)
            self._clusters[key] = pd.Series(np.asarray(segmenter.fit_predict(X.to_numpy(float))),
                                            index=X.index, name=SEGMENT_CLUSTER)
        return self._clusters[key]

    def history(self, cutoff: pd.Timestamp | str) -> pd.DataFrame:
        """The lines strictly before ``cutoff`` (a slice of the sorted transactions)."""
        i = np.searchsorted(self._dates, pd.Timestamp(cutoff).to_datetime64())
        return self.transactions.iloc[:i]

    def stack(self, cutoffs: Sequence[pd.Timestamp | str], population: str = "active",
              labels_before: pd.Timestamp | str | None = None) -> PooledFrame:
        """The rows of ``cutoffs`` in ``population``, stacked; every label window must be complete
        (and end by ``labels_before`` when given)."""
        if population not in POPULATIONS:
            raise ValueError(f"population must be one of {POPULATIONS}, got {population!r}")
        cutoffs = sorted({pd.Timestamp(c) for c in cutoffs})
        if not cutoffs:
            raise ValueError("cutoffs: empty; give at least one cutoff")
        _check_label_windows(cutoffs, pd.Timedelta(days=self.horizon_days), self.data_end, labels_before)
        parts, counts, columns = [], [], {}
        for cutoff in cutoffs:
            rows, features, seconds = self._get(cutoff)
            columns.update(dict.fromkeys(features))
            kept = rows[ACTIVE].to_numpy() if population == "active" else np.ones(len(rows), bool)
            part = rows[kept]
            parts.append(part.reset_index().assign(**{CUTOFF: cutoff}))
            counts.append({CUTOFF: cutoff, "purchasers": len(rows), "dropped_inactive": int((~kept).sum()),
                           "rows": len(part), "buyers": int(part[WILL_BUY].sum()),
                           "base_rate": float(part[WILL_BUY].mean()) if len(part) else float("nan"),
                           "seconds": seconds})
        features = list(columns)
        order = [CUSTOMER_ID, CUTOFF, *features, *BASELINE_COLUMNS, ACTIVE, LAST_SPEND, WILL_BUY,
                 FUTURE_SPEND]
        frame = pd.concat(parts, ignore_index=True).reindex(columns=order)
        frame[features] = frame[features].fillna(0.0)
        return PooledFrame(frame, features, list(BASELINE_COLUMNS), pd.DataFrame(counts))

    def _get(self, cutoff: pd.Timestamp) -> tuple[pd.DataFrame, list[str], float]:
        if cutoff not in self._done:
            self._done[cutoff] = self._compute(cutoff)
        return self._done[cutoff]

    def _compute(self, cutoff: pd.Timestamp) -> tuple[pd.DataFrame, list[str], float]:
        start = perf_counter()
        horizon = pd.Timedelta(days=self.horizon_days)
        i, j = np.searchsorted(self._dates, [cutoff.to_datetime64(), (cutoff + horizon).to_datetime64()])
        base = window_features(self.make_features(), self.transactions.iloc[:i])
        features = list(base.columns)
        history, future = self._narrow.iloc[:i], self._narrow.iloc[i:j]
        rows = base.join(rfm_baseline_features(history, cutoff).add_prefix(BASELINE_PREFIX))
        bought = history.loc[~history[IS_RETURN].to_numpy(bool), [CUSTOMER_ID, INVOICE_DATE, AMOUNT]]
        by = bought.groupby(CUSTOMER_ID)
        rows[ACTIVE] = (by[INVOICE_DATE].max().reindex(rows.index)
                        >= cutoff - pd.Timedelta(days=self.active_days)).to_numpy()
        recent = bought[bought[INVOICE_DATE] >= cutoff - horizon].groupby(CUSTOMER_ID)[AMOUNT].sum()
        rows[LAST_SPEND] = recent.reindex(rows.index, fill_value=0.0).to_numpy(float)
        later = future.loc[~future[IS_RETURN].to_numpy(bool), [CUSTOMER_ID, AMOUNT]]
        spend = later.groupby(CUSTOMER_ID)[AMOUNT].sum()
        rows[WILL_BUY] = rows.index.isin(spend.index).astype(np.int64)
        rows[FUTURE_SPEND] = spend.reindex(rows.index, fill_value=0.0).to_numpy(float)
        return rows, features, perf_counter() - start


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
        Moments of prediction, e.g. from :func:`~segmentlab.prediction.windows.train_cutoffs`.
    horizon_days : int
        Label window ``[cutoff, cutoff + horizon_days)``.
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
    frames = CutoffFrames(transactions, make_features, horizon_days, active_days)
    return frames.stack(cutoffs, population, labels_before)


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
