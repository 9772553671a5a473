"""Time-aware predictors in repurchase prediction: planted seasonal customers, any history length."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from sklearn.metrics import roc_auc_score
from sklearn.pipeline import FeatureUnion

from segmentlab.data.cleaning import TransactionCleaner
from segmentlab.data.synthetic import SyntheticTransactions
from segmentlab.features.activity import ActivityFeatures
from segmentlab.features.behaviour import BehaviourFeatures
from segmentlab.features.rfm import RFMFeatures
from segmentlab.prediction.estimators import scaled_logistic_regression
from segmentlab.prediction.evaluation import evaluate_repurchase
from segmentlab.prediction.windows import WILL_BUY
from segmentlab.schema import INVOICE_DATE

SETTINGS = dict(horizon_days=90, importance_repeats=0, n_bootstrap=0, every_days=28,
                min_history_days=400, validation_windows=1)


def union(activity: bool):
    def make() -> FeatureUnion:
        parts = [("rfm", RFMFeatures()), ("behaviour", BehaviourFeatures(top_countries=1))]
        if activity:
            parts.append(("activity", ActivityFeatures(windows=(30, 90), half_lives=(45,))))
        return FeatureUnion(parts).set_output(transform="pandas")
    return make


@pytest.fixture(scope="module")
def years():
    """Three years, half the repeat buyers seasonal, segments describing the last year."""
    source = SyntheticTransactions(n_customers=600, n_lines=80_000, start="2008-12-01",
                                   segment_days=365, seasonal_share=0.5, seed=7)
    lines = TransactionCleaner().clean(source.read())[0]
    return lines, source.seasonal_truth()["seasonal"]


def _seasonal_auc(result, seasonal: pd.Series) -> tuple[float, float]:
    scores = result.scores.assign(seasonal=seasonal.reindex(result.scores.index).fillna(False).astype(bool))
    part = scores[scores["seasonal"]]
    return (roc_auc_score(part[WILL_BUY], part["repurchase_probability"]),
            roc_auc_score(scores[WILL_BUY], scores["repurchase_probability"]))


def test_last_years_window_recovers_the_planted_seasonal_customers(years):
    lines, seasonal = years
    plain = evaluate_repurchase(lines, union(False), scaled_logistic_regression(), **SETTINGS)
    timed = evaluate_repurchase(lines, union(True), scaled_logistic_regression(), **SETTINGS)
    plain_seasonal, plain_all = _seasonal_auc(plain, seasonal)
    timed_seasonal, timed_all = _seasonal_auc(timed, seasonal)
    print(f"seasonal customers: ROC AUC {plain_seasonal:.3f} -> {timed_seasonal:.3f}; "
          f"all: {plain_all:.3f} -> {timed_all:.3f}")
    assert timed.metrics["predict/n_train_cutoffs"] > 5
    assert timed_seasonal - plain_seasonal > 0.05  # what last year's window is for
    assert timed_all > plain_all


@pytest.mark.parametrize("days", [200, 400, 800])
def test_any_history_length_gives_finite_scores(years, days):
    """Short histories degrade to fewer (or one) training cutoffs and empty year-ago windows."""
    lines, _ = years
    short = lines[lines[INVOICE_DATE] >= lines[INVOICE_DATE].max() - pd.Timedelta(days=days)]
    result = evaluate_repurchase(short, union(True), scaled_logistic_regression(),
                                 **{**SETTINGS, "min_history_days": 60})
    assert np.isfinite(result.metrics["predict/roc_auc"])
    assert result.metrics["predict/n_train_cutoffs"] >= 1
