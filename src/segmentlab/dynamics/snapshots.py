"""Customer states at a series of dates, from the run's fitted feature sets and segmenter.

Nothing is refitted: a segment means the same thing at every date. At a snapshot date ``d`` the
feature sets see only the lines strictly before ``d`` and measure recency and tenure from ``d``
(see :func:`features_at`); the fitted segmenter then labels the customers (see
:class:`SnapshotLabeller`). Two explicit states sit beside the segments: ``NOT_YET`` (no purchase
before ``d``) and ``CHURNED`` (no purchase in the ``churn_days`` before ``d``).
"""

from __future__ import annotations

import copy
import re
from dataclasses import dataclass, field
from functools import cached_property
from time import perf_counter

import numpy as np
import pandas as pd
from sklearn.neighbors import NearestNeighbors
from sklearn.pipeline import FeatureUnion, Pipeline

from segmentlab.schema import AMOUNT, CUSTOMER_ID, INVOICE_DATE, IS_RETURN, DataError

NOT_YET = "not yet a customer"
CHURNED = "churned"
#: Columns of ``Snapshots.states``, one row per customer and snapshot date.
STATE_COLUMNS = [CUSTOMER_ID, "date", "state", "segment", "recency_days"]
_EVERY = re.compile(r"^(month|quarter|(\d+)d)$")


def parse_every(every: str) -> pd.DateOffset:
    """The period between snapshots: ``"month"``, ``"quarter"`` or ``"<N>d"`` (e.g. ``"30d"``)."""
    match = _EVERY.match(str(every).strip())
    if not match or (match.group(2) is not None and int(match.group(2)) < 1):
        raise ValueError(f"every must be 'month', 'quarter' or '<N>d' such as '30d', got {every!r}")
    if match.group(1) == "month":
        return pd.DateOffset(months=1)
    if match.group(1) == "quarter":
        return pd.DateOffset(months=3)
    return pd.DateOffset(days=int(match.group(2)))


def snapshot_dates(start: pd.Timestamp, end: pd.Timestamp, every: str = "month",
                   min_history_days: int = 90) -> pd.DatetimeIndex:
    """Snapshot dates stepping back from ``end`` by ``every`` while ``min_history_days`` remain.

    Anchoring at the end (the day after the last invoice, where the segmenter was fitted) makes
    the last snapshot the fit window itself and gives every period its full length.

    Parameters
    ----------
    start, end : Timestamp
        First invoice day, and the day after the last invoice.
    every : str
        See :func:`parse_every`.
    min_history_days : int
        The earliest snapshot has at least this many days of data before it.

    Returns
    -------
    DatetimeIndex
        Increasing dates, ``end`` last; at least two, else DataError.
    """
    step = parse_every(every)
    start, end = pd.Timestamp(start).normalize(), pd.Timestamp(end).normalize()
    first = start + pd.Timedelta(days=min_history_days)
    dates, k = [], 0
    while (date := end - step * k) >= first:
        dates.append(date)
        k += 1
    if len(dates) < 2:
        raise DataError(f"transactions: {start.date()} to {end.date()} leaves fewer than two "
                        f"snapshots every {every} after {min_history_days} days of history")
    return pd.DatetimeIndex(dates[::-1], name="date")


class SnapshotLabeller:
    """Segments of new feature rows from a fitted segmenter, never refitting it.

    When the clusterer has ``predict`` (KMeans, GaussianMixture) the pipeline's own ``predict``
    labels the rows. Otherwise (DBSCAN, agglomerative, HDBSCAN) a row gets the label of its
    nearest training customer in the space the clusterer saw (scaled, maybe reduced): 1-NN, so
    a row nearest to a noise point stays noise. A training customer whose own fit-time point is
    among the nearest (features unchanged) keeps its fit label, so duplicates of differently
    labelled points cannot swap labels.

    Parameters
    ----------
    segmenter : Pipeline
        The run's fitted ``StandardScaler -> reducer -> clusterer``.

    Notes
    -----
    A reducer whose ``transform`` differs from its ``fit_transform`` (UMAP) places even the fit
    rows slightly differently, so labels at the fit window may not match the run exactly; the
    share that does is ``SegmentTracker``'s ``dynamics/fit_window_agreement``.
    """

    def __init__(self, segmenter: Pipeline):
        self.segmenter = segmenter

    def fit(self, features: pd.DataFrame, labels: pd.Series) -> SnapshotLabeller:
        """Remember the fit rows in the clustered space and their labels.

        Parameters
        ----------
        features : DataFrame
            The features the segmenter was fitted on, indexed by ``customer_id``.
        labels : Series
            The run's label per ``customer_id`` (``fit_predict``), -1 meaning noise.
        """
        missing = features.index.difference(labels.index)
        if len(missing):
            raise ValueError(f"labels: {len(missing)} feature rows have no label, "
                             f"e.g. customer_id {list(missing[:3])}")
        self.columns_ = list(features.columns)
        self.uses_predict_ = hasattr(self.segmenter[-1], "predict")
        self.customers_ = features.index
        self.labels_ = labels.reindex(features.index).to_numpy(int)
        if not self.uses_predict_:
            self.space_ = self.segmenter[:-1].transform(features.to_numpy(float))
            self.neighbours_ = NearestNeighbors(n_neighbors=1).fit(self.space_)
        return self

    def predict(self, features: pd.DataFrame) -> pd.Series:
        """Segment per row of ``features`` (index kept), named ``segment``."""
        missing = [c for c in self.columns_ if c not in features.columns]
        if missing:
            raise ValueError(f"features lack {len(missing)} fit columns, e.g. {missing[:3]}")
        X = features[self.columns_].to_numpy(float)
        if not len(X):
            return pd.Series([], index=features.index, dtype=int, name="segment")
        if self.uses_predict_:
            labels = np.asarray(self.segmenter.predict(X), dtype=int)
        else:
            labels = self._nearest(self.segmenter[:-1].transform(X), features.index)
        return pd.Series(labels, index=features.index, name="segment")

    def _nearest(self, space: np.ndarray, customers: pd.Index) -> np.ndarray:
        """1-NN label, preferring the customer's own fit-time point when it is as near."""
        distance, nearest = self.neighbours_.kneighbors(space)
        labels = self.labels_[nearest[:, 0]]
        own = self.customers_.get_indexer(customers)
        known = own >= 0
        own_distance = np.linalg.norm(space[known] - self.space_[own[known]], axis=1)
        # A relative tolerance: the same row transformed in another batch may differ in the last bits.
        tie = own_distance <= distance[known, 0] * (1 + 1e-9) + 1e-12
        rows = np.flatnonzero(known)[tie]
        labels[rows] = self.labels_[own[known][tie]]
        return labels


def features_at(union: FeatureUnion, transactions: pd.DataFrame, date: pd.Timestamp) -> pd.DataFrame:
    """Features of the customers with a purchase before ``date``, measured as of ``date``.

    The lines strictly before ``date`` go through a copy of the fitted ``union`` whose parts
    that learnt a ``snapshot_date_`` (RFM, behaviour) get ``date`` instead: they measure recency
    and tenure from ``max(snapshot_date_, window end)``, and the window ends before ``date``.
    Parts without dates (TF-IDF, word2vec) describe the lines they are given; their fitted
    vocabulary and vectors stay those of the whole fit window.

    Parameters
    ----------
    union : FeatureUnion
        Fitted on the whole transactions (the run's union); not modified.
    transactions : DataFrame
        Cleaned lines.
    date : Timestamp
        Snapshot date (midnight).

    Returns
    -------
    DataFrame
        One row per customer with a purchase before ``date``, ordered by ``customer_id``.
    """
    dated = copy.copy(union)
    dated.transformer_list = [(name, _dated(part, date)) for name, part in union.transformer_list]
    before = transactions[transactions[INVOICE_DATE].to_numpy() < np.datetime64(date)]
    purchases = before.loc[~before[IS_RETURN].to_numpy(bool), CUSTOMER_ID]
    customers = pd.Index(np.sort(purchases.unique()), name=CUSTOMER_ID)
    if not len(customers):
        return pd.DataFrame(columns=dated.get_feature_names_out(), index=customers, dtype=float)
    frame = dated.transform(before).reindex(customers)
    bad = frame.columns[frame.isna().any()].tolist()
    if bad:
        raise ValueError(f"feature columns {bad[:5]} have missing values at {date.date()}")
    return frame.astype(float)


def _dated(part, date: pd.Timestamp):
    """A shallow copy of a fitted feature set measuring from ``date`` (the part itself if undated)."""
    if not hasattr(part, "snapshot_date_"):
        return part
    moved = copy.copy(part)
    moved.snapshot_date_ = pd.Timestamp(date)
    return moved


@dataclass(frozen=True)
class Snapshots:
    """Every customer's state at every snapshot date.

    Attributes
    ----------
    states : DataFrame
        ``STATE_COLUMNS``: ``state`` is the segment label as text (``"3"``, ``"-1"`` for noise),
        ``NOT_YET`` or ``CHURNED``; ``segment`` the segmenter's label (also for churned
        customers; missing when not yet a customer); ``recency_days`` days since the last
        purchase day (a purchase the day before counts 1, as in RFM).
    dates : DatetimeIndex
        Snapshot dates, increasing.
    step : DateOffset
        The period between snapshot dates.
    end : Timestamp
        The day after the last invoice.
    seconds : Series
        Time spent per snapshot date (features, labels, states).
    dropped : dict
        Customers left out, by reason (``returns_only``: no purchase line at all).
    """

    states: pd.DataFrame
    dates: pd.DatetimeIndex
    step: pd.DateOffset
    end: pd.Timestamp
    seconds: pd.Series
    dropped: dict[str, int] = field(default_factory=dict)

    def paths(self) -> pd.DataFrame:
        """The wide view: one row per customer, one column per date, the state as text."""
        return self.states.pivot(index=CUSTOMER_ID, columns="date", values="state")

    def at(self, date: pd.Timestamp) -> pd.DataFrame:
        """States at one snapshot date, indexed by ``customer_id``."""
        return self._by_date[pd.Timestamp(date)]

    @cached_property
    def _by_date(self) -> dict[pd.Timestamp, pd.DataFrame]:
        return {date: rows.drop(columns="date").set_index(CUSTOMER_ID)
                for date, rows in self.states.groupby("date", sort=True)}


def take_snapshots(transactions: pd.DataFrame, union: FeatureUnion, labeller: SnapshotLabeller,
                   dates: pd.DatetimeIndex, step: pd.DateOffset, churn_days: int) -> Snapshots:
    """States of every purchasing customer at each date (see the module docstring).

    Parameters
    ----------
    transactions : DataFrame
        Cleaned lines; their purchasing customers are the population.
    union : FeatureUnion
        The fitted feature union (see :func:`features_at`).
    labeller : SnapshotLabeller
        Fitted on the run's features and labels.
    dates : DatetimeIndex
        Snapshot dates (:func:`snapshot_dates`).
    step : DateOffset
        Period between the dates, kept for the revenue windows.
    churn_days : int
        A customer with a purchase before ``d`` but none in the ``churn_days`` before it is churned.

    Returns
    -------
    Snapshots
    """
    if churn_days < 1:
        raise ValueError(f"churn_days must be at least 1, got {churn_days}")
    bought = ~transactions[IS_RETURN].to_numpy(bool)
    customers = pd.Index(np.sort(transactions.loc[bought, CUSTOMER_ID].unique()), name=CUSTOMER_ID)
    returns_only = transactions[CUSTOMER_ID].nunique() - len(customers)
    days = transactions.loc[bought, INVOICE_DATE].dt.normalize()
    purchase_days = pd.DataFrame({CUSTOMER_ID: transactions.loc[bought, CUSTOMER_ID], "day": days})
    frames, seconds = [], {}
    for date in dates:
        start = perf_counter()
        segment = labeller.predict(features_at(union, transactions, date))
        before = purchase_days[purchase_days["day"] < date]
        recency = (date - before.groupby(CUSTOMER_ID)["day"].max()).dt.days.astype(float)
        frame = pd.DataFrame({"segment": segment.reindex(customers).astype("Int64"),
                              "recency_days": recency.reindex(customers)}, index=customers)
        state = frame["segment"].astype(str).where(frame["segment"].notna(), NOT_YET)
        state[frame["recency_days"] > churn_days] = CHURNED
        frames.append(frame.assign(state=state.astype(object), date=date).reset_index())
        seconds[date] = perf_counter() - start
    states = pd.concat(frames, ignore_index=True)[STATE_COLUMNS]
    return Snapshots(states, pd.DatetimeIndex(dates, name="date"), step,
                     _data_end(transactions), pd.Series(seconds, name="seconds"),
                     {"returns_only": int(returns_only)})


def _data_end(transactions: pd.DataFrame) -> pd.Timestamp:
    """The day after the last invoice: where fitted feature sets measure from."""
    return transactions[INVOICE_DATE].max().normalize() + pd.Timedelta(days=1)


def spend_between(transactions: pd.DataFrame, start: pd.Timestamp, stop: pd.Timestamp) -> pd.Series:
    """Purchase spend per customer on lines in ``[start, stop)`` (returns not netted)."""
    dates = transactions[INVOICE_DATE].to_numpy()
    inside = (dates >= np.datetime64(start)) & (dates < np.datetime64(stop))
    inside &= ~transactions[IS_RETURN].to_numpy(bool)
    # Plain arrays: filtering the frame would copy every text column for two numbers.
    amount = pd.Series(transactions[AMOUNT].to_numpy(float)[inside])
    spend = amount.groupby(transactions[CUSTOMER_ID].to_numpy()[inside]).sum()
    return spend.rename_axis(CUSTOMER_ID).rename(AMOUNT)
