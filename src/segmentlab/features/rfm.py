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

    Notes
    -----
    Recency is counted from the snapshot learnt in ``fit`` (the day after the last invoice), or,
    for a later window, from the day after that window's last invoice, so customers of new data
    never get a negative recency (as ``BehaviourFeatures`` does).
    """

    def __init__(self, log: bool = True):
        self.log = log

    def fit(self, transactions: pd.DataFrame, y=None) -> RFMFeatures:
        # The day after the last invoice, so the most recent buyer has recency 1, not 0.
        self.snapshot_date_ = transactions[INVOICE_DATE].max().normalize() + pd.Timedelta(days=1)
        return self

    def transform(self, transactions: pd.DataFrame) -> pd.DataFrame:
        bought = ~transactions[IS_RETURN].to_numpy(bool)
        # Only the numeric columns are filtered; invoice numbers are counted as integer codes
        # (missing stays missing), which is much cheaper than filtering and hashing the text.
        purchases = transactions.loc[bought, [CUSTOMER_ID, INVOICE_DATE, AMOUNT]]
        invoice = pd.factorize(transactions[INVOICE_NO])[0][bought].astype(float)
        invoice[invoice < 0] = np.nan
        by_customer = purchases.assign(**{INVOICE_NO: invoice}).groupby(CUSTOMER_ID, sort=True)
        last = by_customer[INVOICE_DATE].max()
        window_end = last.max().normalize() + pd.Timedelta(days=1) if len(last) else self.snapshot_date_
        snapshot = max(self.snapshot_date_, window_end)
        frequency = by_customer[INVOICE_NO].nunique().astype(float)
        spend = by_customer[AMOUNT].sum()
        features = pd.DataFrame({
            "recency_days": (snapshot - last.dt.normalize()).dt.days.astype(float),
            "frequency": np.log1p(frequency) if self.log else frequency,
            "monetary": np.log1p(spend.clip(lower=0)) if self.log else spend,
        })
        features.index.name = CUSTOMER_ID
        return features

    def get_feature_names_out(self, input_features=None) -> np.ndarray:
        return np.array(["recency_days", "frequency", "monetary"], dtype=object)
