"""Spend in the horizon: a regressor on the pooled training rows, beside two simple forecasts.

The regressor learns ``future_spend`` on the raw scale from the same rows and predictors as the
repurchase model, so that its predictions are means and add up to a total (a Poisson loss suits
a non-negative target with many zeros; see ``experiments/spend_models``). It is judged at the
evaluation cutoff beside "next period = last period" and BG/NBD × Gamma-Gamma, with customer
bootstrap intervals of the MAE gains.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
from sklearn.base import BaseEstimator, clone

from segmentlab.prediction.baselines import last_period_spend
from segmentlab.prediction.pooling import PooledFrame
from segmentlab.prediction.scoring import score_spend
from segmentlab.prediction.uncertainty import bootstrap_mean_difference
from segmentlab.prediction.windows import FUTURE_SPEND


def fit_spend(regressor: BaseEstimator, X: pd.DataFrame, rows: PooledFrame) -> BaseEstimator:
    """``regressor`` (cloned) fitted on ``future_spend`` of the training rows (returns count 0)."""
    return clone(regressor).fit(X, rows.frame[FUTURE_SPEND].clip(lower=0).to_numpy())


def predict_spend(model: BaseEstimator, X: pd.DataFrame) -> np.ndarray:
    return np.asarray(model.predict(X), dtype=float).clip(min=0)


def spend_metrics(rows: PooledFrame, predicted: np.ndarray, bgnbd: np.ndarray | None = None,
                  n_bootstrap: int = 1000, seed: int = 0) -> dict[str, float]:
    """``predict/spend_*`` of the model, ``predict/spend_last_period_*`` and ``predict/bgnbd_spend_*``.

    ``mae``, ``spearman`` and ``total_ratio`` each; ``predict/spend_mae_gain_vs_<baseline>``
    with ``_ci_low`` / ``_ci_high``: the baseline's MAE minus the model's (positive: the model
    errs less), 95 % customer bootstrap. BG/NBD rows without a fit (NaN) leave its scores NaN.
    """
    actual = rows.frame[FUTURE_SPEND].to_numpy(float)
    metrics = score_spend(actual, predicted)
    baselines = {"last_period": last_period_spend(rows)}
    if bgnbd is not None:
        baselines["bgnbd"] = np.asarray(bgnbd, dtype=float)
    error = np.abs(predicted - actual)
    for name, forecast in baselines.items():
        prefix = "predict/spend_last_period_" if name == "last_period" else "predict/bgnbd_spend_"
        if np.isnan(forecast).any():
            metrics.update({f"{prefix}{k}": float("nan") for k in ("mae", "spearman", "total_ratio")})
            continue
        metrics.update(score_spend(actual, forecast, prefix=prefix))
        gain = bootstrap_mean_difference(error, np.abs(forecast - actual), n_bootstrap, seed)
        metrics.update({f"predict/spend_mae_{k.replace('gain', f'gain_vs_{name}')}": v
                        for k, v in gain.items()})
    return metrics
