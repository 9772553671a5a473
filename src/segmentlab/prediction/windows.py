"""Time windows of repurchase prediction: what was known before a cutoff, what happened after.

A *cutoff* is the moment of prediction. Features come from lines strictly before it, labels from
the ``horizon_days`` after it; `Windows` computes both once per cutoff and shares them between
the model, the baselines and every tuning trial.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

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


@dataclass(frozen=True)
class Window:
    union: FeatureUnion
    base: pd.DataFrame
    target: pd.DataFrame
    rfm: pd.DataFrame
    last_spend: pd.Series  # purchase value in the horizon before the cutoff, per target customer


class Windows:
    """Features, targets and baseline RFM per cutoff, each computed once."""

    def __init__(self, transactions: pd.DataFrame, make_features: Callable[[], FeatureUnion],
                 horizon_days: int):
        self.transactions, self.make_features = transactions, make_features
        self.horizon_days, self._done = horizon_days, {}

    def get(self, cutoff: pd.Timestamp) -> Window:
        if cutoff not in self._done:
            history, target = cutoff_frame(self.transactions, cutoff, self.horizon_days)
            if target.empty:
                raise WindowError(f"cutoff {cutoff.date()}: no purchases before it")
            if target[WILL_BUY].nunique() < 2:
                raise WindowError(f"cutoff {cutoff.date()}: every customer has the same target")
            union = self.make_features()
            base = window_features(union, history)
            rfm = rfm_baseline_features(history, cutoff).reindex(target.index)
            last = last_period_spend(history, cutoff, self.horizon_days).reindex(target.index, fill_value=0.0)
            self._done[cutoff] = Window(union, base, target, rfm, last)
        return self._done[cutoff]


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
