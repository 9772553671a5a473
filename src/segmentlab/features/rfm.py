"""Recency, frequency and monetary value per customer."""

from __future__ import annotations

import numpy as np
import pandas as pd
from sklearn.base import BaseEstimator, TransformerMixin
from sklearn.utils.validation import check_is_fitted

from segmentlab import customers
from segmentlab.customers import snapshot_date
from segmentlab.schema import INVOICE_DATE, IS_RETURN


class RFMFeatures(TransformerMixin, BaseEstimator):
    """Recency, frequency and monetary value per customer, from purchases only.

    Parameters
    ----------
    log : bool
        Apply ``log1p`` to frequency and spend, which are heavy-tailed in retail data.
        Recency stays in days.

    Notes
    -----
    Recency is counted from the snapshot learnt in ``fit`` (the day after the last invoice), or,
    for a later window, from the day after that window's last invoice, so customers of new data
    never get a negative recency (as ``BehaviourFeatures`` does).
    """

    def __init__(self, log: bool = True):
        self.log = log

    def fit(self, transactions: pd.DataFrame, y=None) -> RFMFeatures:
        self.snapshot_date_ = snapshot_date(transactions)
        return self

    def transform(self, transactions: pd.DataFrame) -> pd.DataFrame:
        check_is_fitted(self, "snapshot_date_")
        bought = ~transactions[IS_RETURN].to_numpy(bool)
        dates = transactions[INVOICE_DATE].to_numpy()[bought]
        # A later window is measured from its own end (its last purchase day + 1).
        window_end = (pd.Timestamp(dates.max()).normalize() + pd.Timedelta(days=1) if len(dates)
                      else self.snapshot_date_)
        features = customers.rfm(transactions, max(self.snapshot_date_, window_end))
        if self.log:
            features["frequency"] = np.log1p(features["frequency"])
            features["monetary"] = np.log1p(features["monetary"].clip(lower=0))
        return features

    def get_feature_names_out(self, input_features=None) -> np.ndarray:
        return np.array(["recency_days", "frequency", "monetary"], dtype=object)
