"""Lifetime value of the run's customers and segments, from BG/NBD + Gamma-Gamma at the data end.

`customer_value` fits `segmentlab.lifetime.CustomerValue` on every purchase of the data and
scores each customer (``p_alive``, expected purchases and spend in the horizon, discounted
CLV); the fitted model is what the deployed model applies to new transactions. `segment_value`
sums it per segment: the segment's CLV and its share of the future value, beside its share of
past revenue, so a report can show where the value is going as well as where it was.
"""

from __future__ import annotations

import warnings

import numpy as np
import pandas as pd
from sklearn.base import clone

from segmentlab.lifetime.value import CustomerValue
from segmentlab.schema import AMOUNT, CUSTOMER_ID

#: Columns of ``CustomerValue``'s output that ``segmentlab predict`` writes (``h``, ``m`` filled in).
PREDICT_COLUMNS = ("p_alive", "expected_purchases_{h}d", "clv_{m}m")


def value_columns(model: CustomerValue) -> list[str]:
    """The lifetime columns ``segmentlab predict`` writes for a fitted ``CustomerValue``."""
    return [c.format(h=model.horizon_days, m=model.clv_months) for c in PREDICT_COLUMNS]


def customer_value(transactions: pd.DataFrame, lifetime: CustomerValue) -> tuple[CustomerValue, pd.DataFrame]:
    """Fit ``lifetime`` (cloned, cutoff None: the data end) on all purchases and score everyone.

    Returns
    -------
    model : CustomerValue
        Fitted; ``status_`` says why columns are NaN when a model could not be fitted.
    values : DataFrame
        Indexed by ``customer_id``: ``CustomerValue.get_feature_names_out()`` columns.
    """
    model = clone(lifetime).set_params(cutoff=None)
    with warnings.catch_warnings():  # too few repeat buyers: NaN columns, reason in status_
        warnings.simplefilter("ignore", RuntimeWarning)
        model.fit(transactions)
    return model, model.transform(transactions)


def segment_value(values: pd.DataFrame, labels: pd.Series, names: dict, transactions: pd.DataFrame,
                  model: CustomerValue) -> pd.DataFrame:
    """Per segment: customers, mean P(alive), expected purchases and spend, CLV and value shares.

    Parameters
    ----------
    values : DataFrame
        `customer_value` output, indexed by ``customer_id``.
    labels : Series
        Segment per ``customer_id`` (noise -1 included).
    names : dict
        Segment label → name.
    transactions : DataFrame
        Cleaned lines, for each segment's share of past revenue (purchases minus returns).
    model : CustomerValue
        The fitted model (for the horizon and CLV column names).

    Returns
    -------
    DataFrame
        One row per segment: ``segment``, ``name``, ``n_customers``, ``p_alive_mean``,
        ``expected_purchases_<h>d_mean``, ``expected_spend_<h>d``, ``clv_<m>m`` (segment total),
        ``clv_<m>m_per_customer``, ``share_of_future_value`` (of the total CLV),
        ``share_of_past_revenue``. NaN where the models could not be fitted.
    """
    h, m = model.horizon_days, model.clv_months
    clv, spend, purchases = f"clv_{m}m", f"expected_spend_{h}d", f"expected_purchases_{h}d"
    frame = values.reindex(labels.index).assign(segment=labels.to_numpy())
    net = transactions.groupby(CUSTOMER_ID)[AMOUNT].sum()  # returns carry negative amounts
    frame["past_revenue"] = net.reindex(labels.index, fill_value=0.0).to_numpy()
    by = frame.groupby("segment", sort=True)
    total_clv = frame[clv].sum(min_count=1)
    table = pd.DataFrame({
        "n_customers": by.size(),
        "p_alive_mean": by["p_alive"].mean(),
        f"{purchases}_mean": by[purchases].mean(),
        spend: by[spend].sum(min_count=1),
        clv: by[clv].sum(min_count=1),
        f"{clv}_per_customer": by[clv].mean(),
        "share_of_future_value": by[clv].sum(min_count=1) / total_clv if total_clv > 0 else np.nan,
        "share_of_past_revenue": by["past_revenue"].sum() / frame["past_revenue"].sum(),
    })
    table.insert(0, "name", [names.get(s, f"segment {s}") for s in table.index])
    return table.reset_index()

