"""Recency, frequency and monetary value per customer."""

from __future__ import annotations

import numpy as np
import pandas as pd
from sklearn.base import BaseEstimator, TransformerMixin

from segmentlab.schema import AMOUNT, CUSTOMER_ID, INVOICE_DATE, INVOICE_NO, IS_RETURN


class RFMFeatures(TransformerMixin, BaseEstimator):
    """Recency, frequency and monetary value per customer, from purchases only.

    Parameters
    ----------
    log : bool
        Apply ``log1p`` to frequency and spend, which are heavy-tailed in retail data.
        Recency stays in days.
    """

    def __init__(self, log: bool = True):
        self.log = log

    def fit(self, transactions: pd.DataFrame, y=None) -> RFMFeatures:
        # The day after the last invoice, so the most recent buyer has recency 1, not 0.
        self.snapshot_date_ = transactions[INVOICE_DATE].max().normalize() + pd.Timedelta(days=1)
        return self

    def transform(self, transactions: pd.DataFrame) -> pd.DataFrame:
        purchases = transactions[~transactions[IS_RETURN]]
        by_customer = purchases.groupby(CUSTOMER_ID, sort=True)
        last = by_customer[INVOICE_DATE].max()
        frequency = by_customer[INVOICE_NO].nunique().astype(float)
        spend = by_customer[AMOUNT].sum()
        features = pd.DataFrame({
            "recency_days": (self.snapshot_date_ - last.dt.normalize()).dt.days.astype(float),
            "frequency": np.log1p(frequency) if self.log else frequency,
            "monetary": np.log1p(spend.clip(lower=0)) if self.log else spend,
        })
        features.index.name = CUSTOMER_ID
        return features

    def get_feature_names_out(self, input_features=None) -> np.ndarray:
        return np.array(["recency_days", "frequency", "monetary"], dtype=object)
