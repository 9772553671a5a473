"""The simple answers a repurchase or spend model must beat, on the same customers.

* recency alone: the fewer days since the last purchase, the likelier a purchase;
* RFM-logreg: logistic regression on log recency, frequency and monetary value, trained on the
  same training rows as the model;
* BG/NBD (+ Gamma-Gamma): fitted on the history before the scoring cutoff, no labels needed;
  P(at least one purchase in the horizon) and expected spend in the horizon;
* last period: spend in the next horizon = spend in the last one.
"""

from __future__ import annotations

import warnings

import numpy as np
import pandas as pd
from sklearn.base import clone
from sklearn.linear_model import LogisticRegression
from sklearn.pipeline import Pipeline, make_pipeline
from sklearn.preprocessing import StandardScaler

from segmentlab.lifetime.value import CustomerValue
from segmentlab.prediction.pooling import BASELINE_COLUMNS, LAST_SPEND, CutoffFrames, PooledFrame
from segmentlab.schema import CUSTOMER_ID

RECENCY = BASELINE_COLUMNS[0]


def recency_scores(rows: PooledFrame) -> np.ndarray:
    """Minus log recency: higher for more recent buyers (log1p keeps the order of days)."""
    return -rows.frame[RECENCY].to_numpy(float)


def fit_rfm_logreg(train: PooledFrame) -> Pipeline:
    """Scaled logistic regression on the three RFM baseline columns of the training rows."""
    model = make_pipeline(StandardScaler(), LogisticRegression())
    return model.fit(train.frame[BASELINE_COLUMNS], train.y)


def rfm_logreg_scores(model: Pipeline, rows: PooledFrame) -> np.ndarray:
    return model.predict_proba(rows.frame[BASELINE_COLUMNS])[:, 1]


def last_period_spend(rows: PooledFrame) -> np.ndarray:
    """The naive spend forecast of each row: its purchase value in the horizon before the cutoff."""
    return rows.frame[LAST_SPEND].to_numpy(float)


def bgnbd_scores(frames: CutoffFrames, cutoff: pd.Timestamp, rows: PooledFrame,
                 lifetime: CustomerValue) -> tuple[pd.DataFrame, str]:
    """BG/NBD + Gamma-Gamma fitted on the lines before ``cutoff``, scored for ``rows``.

    Parameters
    ----------
    frames : CutoffFrames
        Where the history before ``cutoff`` comes from.
    cutoff : Timestamp
        The scoring cutoff; the models see only the lines before it.
    rows : PooledFrame
        Rows of that cutoff, whose customers are scored.
    lifetime : CustomerValue
        Unfitted template (its ``horizon_days`` should be the prediction horizon).

    Returns
    -------
    scores : DataFrame
        One row per row of ``rows`` (same order): ``p_purchase`` and ``expected_spend`` in the
        horizon; NaN where a model could not be fitted (too few repeat buyers).
    status : str
        ``"ok"`` or why columns are NaN.
    """
    history = frames.history(cutoff)
    model = clone(lifetime).set_params(cutoff=cutoff)
    with warnings.catch_warnings():  # a thin window is reported through ``status``
        warnings.simplefilter("ignore", RuntimeWarning)
        values = model.fit(history).transform(history)
    h = model.horizon_days
    customers = rows.frame[CUSTOMER_ID].to_numpy()
    scores = pd.DataFrame({"p_purchase": values[f"p_purchase_{h}d"].reindex(customers).to_numpy(),
                           "expected_spend": values[f"expected_spend_{h}d"].reindex(customers).to_numpy()})
    return scores, model.status_
