"""Time windows of repurchase prediction: what was known before a cutoff, what happened after.

A *cutoff* is the moment of prediction. Features come from lines strictly before it, labels from
the ``horizon_days`` after it. `CutoffPlan` says which cutoffs a model learns from, where it is
validated, judged and which cutoffs the deployed model learns from; `pooling.CutoffFrames`
computes each cutoff's rows once and shares them between all of these.
"""

from __future__ import annotations

from dataclasses import dataclass, replace

import numpy as np
import pandas as pd
from sklearn.pipeline import FeatureUnion

from segmentlab import customers
from segmentlab.customers import align_to_purchasers, snapshot_date
from segmentlab.schema import AMOUNT, CUSTOMER_ID, INVOICE_DATE, IS_RETURN

WILL_BUY = "will_buy"  # 1 if the customer makes a purchase in [cutoff, cutoff + horizon)
FUTURE_SPEND = "future_spend"  # purchase value in that window, in the data's currency


def cutoff_frame(transactions: pd.DataFrame, cutoff: pd.Timestamp | str,
                 horizon_days: int = 90) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Split invoice lines at a cutoff into the past and what each customer did next.

    Parameters
    ----------
    transactions : DataFrame
        Cleaned invoice lines (purchases and returns).
    cutoff : Timestamp or str
        The moment of prediction.
    horizon_days : int
        Length of the target window, in days.

    Returns
    -------
    history : DataFrame
        Lines strictly before ``cutoff``.
    target : DataFrame
        Indexed by ``customer_id`` for every customer with a purchase in ``history`` (sorted):
        ``will_buy`` (int, 1 if they buy, returns not counting, in
        ``[cutoff, cutoff + horizon_days)``) and ``future_spend`` (their purchase value there).
    """
    cutoff = pd.Timestamp(cutoff)
    dates = transactions[INVOICE_DATE]
    history = transactions[dates < cutoff]
    later = (dates >= cutoff) & (dates < cutoff + pd.Timedelta(days=horizon_days))
    future = transactions[later & ~transactions[IS_RETURN]]
    buyers = customers.purchasers(history)
    spend = future.groupby(CUSTOMER_ID)[AMOUNT].sum()
    target = pd.DataFrame({
        WILL_BUY: buyers.isin(future[CUSTOMER_ID]).astype(np.int64),
        FUTURE_SPEND: spend.reindex(buyers, fill_value=0.0).to_numpy(float),
    }, index=buyers)
    return history, target


def last_period_spend(history: pd.DataFrame, cutoff: pd.Timestamp | str,
                      horizon_days: int = 90) -> pd.Series:
    """Purchase value per customer in ``[cutoff - horizon_days, cutoff)``: the naive forecast
    of ``future_spend`` (next period = last period). Customers absent there are missing."""
    cutoff = pd.Timestamp(cutoff)
    dates = history[INVOICE_DATE]
    last = history[(dates >= cutoff - pd.Timedelta(days=horizon_days)) & (dates < cutoff)
                   & ~history[IS_RETURN]]
    return last.groupby(CUSTOMER_ID)[AMOUNT].sum()


def rfm_baseline_features(history: pd.DataFrame, cutoff: pd.Timestamp | str) -> pd.DataFrame:
    """``log1p`` of recency (days to ``cutoff``), frequency (invoices) and monetary, per purchaser."""
    rfm = customers.rfm(history, pd.Timestamp(cutoff).normalize())
    return pd.DataFrame({"log_recency": np.log1p(rfm["recency_days"].clip(lower=0)),
                         "log_frequency": np.log1p(rfm["frequency"]),
                         "log_monetary": np.log1p(rfm["monetary"].clip(lower=0))})


def window_features(union: FeatureUnion, history: pd.DataFrame) -> pd.DataFrame:
    """Fit ``union`` on ``history``; one row per purchaser, in customer order."""
    if not (~history[IS_RETURN].to_numpy(bool)).any():
        raise ValueError("no purchases in the history to describe customers with")
    return align_to_purchasers(union.fit_transform(history), history)


class WindowError(ValueError):
    """A cutoff leaves nothing to learn from: no purchases before it, or a single-class target."""


def check_cutoffs(transactions: pd.DataFrame, horizon_days: int, eval_cutoff, train_cutoff):
    """Default and check the two cutoffs: complete eval labels, no training label after eval."""
    horizon, end = pd.Timedelta(days=horizon_days), snapshot_date(transactions)
    eval_cutoff = end - horizon if eval_cutoff is None else pd.Timestamp(eval_cutoff)
    train_cutoff = eval_cutoff - horizon if train_cutoff is None else pd.Timestamp(train_cutoff)
    if eval_cutoff + horizon > end:
        raise ValueError(f"eval cutoff {eval_cutoff} + {horizon_days} days passes the data end "
                         f"{end}: its labels would be incomplete")
    if train_cutoff + horizon > eval_cutoff:
        raise ValueError(f"train cutoff {train_cutoff} + {horizon_days} days passes the eval "
                         f"cutoff {eval_cutoff}: training labels would overlap the evaluation")
    return eval_cutoff, train_cutoff


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
class CutoffPlan:
    """Where a repurchase model learns, is validated, judged and deployed.

    The evaluated model learns from the ``grid`` of training cutoffs (every ``every_days`` back
    from ``train_cutoff``; ``train_cutoff`` alone when ``every_days`` is None) and is judged at
    ``eval_cutoff``. A model judged at an earlier cutoff ``s`` (validation, rolling rounds)
    learns from the grid cutoffs at least ``gap`` (= eval - train cutoff) before ``s``, so its
    labels end by ``s``, as the evaluated model's end by ``eval_cutoff``.

    Attributes
    ----------
    horizon_days : int
    data_start, data_end : Timestamp
        First invoice; midnight after the last invoice day.
    eval_cutoff, train_cutoff : Timestamp
        See `check_cutoffs`.
    every_days : int or None
        Step of the grid; None: a single training cutoff.
    grid : tuple of Timestamp
        Training cutoffs of the evaluated model, ascending.
    note : str
        Why the plan fell back to a single cutoff, or "".
    """

    horizon_days: int
    data_start: pd.Timestamp
    data_end: pd.Timestamp
    eval_cutoff: pd.Timestamp
    train_cutoff: pd.Timestamp
    every_days: int | None
    grid: tuple[pd.Timestamp, ...]
    note: str = ""

    @classmethod
    def of(cls, transactions: pd.DataFrame, horizon_days: int = 90, eval_cutoff=None,
           train_cutoff=None, every_days: int | None = 14, min_history_days: int = 60) -> CutoffPlan:
        """The plan of a transactions frame; see `check_cutoffs` and `train_cutoffs`.

        When no grid cutoff has ``min_history_days`` of history, the plan falls back to the
        single cutoff ``train_cutoff`` and says so in ``note`` (a short history degrades to
        one window, it does not fail).
        """
        eval_cutoff, train_cutoff = check_cutoffs(transactions, horizon_days, eval_cutoff, train_cutoff)
        start, end = transactions[INVOICE_DATE].min(), snapshot_date(transactions)
        plan = cls(horizon_days, start, end, eval_cutoff, train_cutoff, None, (train_cutoff,))
        if every_days is None:
            return plan
        if isinstance(every_days, bool) or int(every_days) != every_days or every_days <= 0:
            raise ValueError(f"every_days must be a positive whole number of days or None, "
                             f"got {every_days!r}")
        if min_history_days < 0:
            raise ValueError(f"min_history_days must be >= 0, got {min_history_days!r}")
        try:
            grid = train_cutoffs(start, train_cutoff + pd.Timedelta(days=horizon_days), horizon_days,
                                 every_days, min_history_days)
        except ValueError as e:
            return replace(plan, note=f"one training cutoff: {e}")
        return replace(plan, every_days=int(every_days), grid=tuple(grid))

    @property
    def gap(self) -> pd.Timedelta:
        return self.eval_cutoff - self.train_cutoff

    @property
    def training(self) -> str:
        """How the evaluated model is trained, in words: ``every 14 days, 20 cutoffs`` or
        ``one cutoff``."""
        if self.every_days is None:
            return "one cutoff"
        return f"every {self.every_days} days, {len(self.grid)} cutoffs"

    def single(self) -> CutoffPlan:
        """This plan with the train cutoff alone as training cutoff (and deployed on the latest
        one alone): judged and validated at the same cutoffs as the grid."""
        return replace(self, every_days=None, grid=(self.train_cutoff,), note="")

    def learn(self, score_cutoff: pd.Timestamp) -> list[pd.Timestamp]:
        """Training cutoffs of a model judged at ``score_cutoff`` (empty: no data for it)."""
        latest = pd.Timestamp(score_cutoff) - self.gap
        if self.every_days is None:
            return [latest] if latest > self.data_start else []
        return [c for c in self.grid if c <= latest]

    def validation(self, n_windows: int = 1) -> list[pd.Timestamp]:
        """Up to ``n_windows`` validation cutoffs, newest first: the train cutoff and the ones
        ``every_days`` (single cutoff: ``gap``) before it that have training cutoffs of their own."""
        step = self.gap if self.every_days is None else pd.Timedelta(days=self.every_days)
        windows = [self.train_cutoff - k * step for k in range(n_windows)]
        return [w for w in windows if self.learn(w)]

    def deploy(self) -> list[pd.Timestamp]:
        """Training cutoffs of the deployed model: every fully labelled cutoff of the grid,
        extended to the latest, ``data_end - horizon_days``."""
        latest = self.data_end - pd.Timedelta(days=self.horizon_days)
        if self.every_days is None:
            return [latest]
        step = pd.Timedelta(days=self.every_days)
        forward = [self.train_cutoff + k * step for k in range(1, (latest - self.train_cutoff) // step + 1)]
        return sorted({*self.grid, *forward, latest})
