"""New customers: cut histories, the F1-against-history curve, calibrated confidence, the new group."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from sklearn.base import clone
from sklearn.ensemble import RandomForestClassifier
from sklearn.pipeline import FeatureUnion

from segmentlab.customers import snapshot_date
from segmentlab.features.behaviour import BehaviourFeatures
from segmentlab.features.rfm import RFMFeatures
from segmentlab.prediction.assignment import NEW_SEGMENT, NEW_SEGMENT_NAME, assign_segments
from segmentlab.prediction.history import HistoryCalibration, cut_histories, history_curve
from segmentlab.prediction.model import OUTPUT_COLUMNS, CustomerSegmentModel
from segmentlab.schema import CUSTOMER_ID, INVOICE_DATE, IS_RETURN
from tests.conftest import clean_lines

UK = "United Kingdom"


def planted(transactions: pd.DataFrame) -> pd.Series:
    """The conftest fixture's three kinds of buyer, 20 customers each, as segment labels."""
    customers = np.sort(transactions[CUSTOMER_ID].unique())
    return pd.Series((customers - customers.min()) // 20, index=customers)


def union() -> FeatureUnion:
    return FeatureUnion([("rfm", RFMFeatures()), ("behaviour", BehaviourFeatures(top_countries=1))]
                        ).set_output(transform="pandas")


def test_cut_histories_keep_the_first_days_moved_by_whole_weeks():
    lines = clean_lines([
        ("1", "A", 1, "2011-01-03 10:00", 2.0, 1, UK),    # a Monday
        ("2", "A", 1, "2011-01-08 10:00", 2.0, 1, UK),
        ("3", "A", 1, "2011-01-20 10:00", 2.0, 1, UK),
        ("4", "A", 1, "2011-12-05 10:00", 2.0, 2, UK),    # 4 days of tenure: too short for 7
        ("5", "A", 1, "2011-12-08 10:00", 2.0, 3, UK),
    ])
    snapshot = snapshot_date(lines)  # 2011-12-09
    cut = cut_histories(lines, 7, snapshot)
    assert sorted(cut[CUSTOMER_ID].unique()) == [1]  # 2 and 3 have under 7 days of tenure
    one = cut[cut[CUSTOMER_ID] == 1]
    assert len(one) == 2  # the 20 January line is past the first 7 days
    assert (one[INVOICE_DATE].dt.dayofweek.to_numpy() == [0, 5]).all()  # weekdays kept
    first = one[INVOICE_DATE].min().normalize()
    assert 7 <= (snapshot - first).days <= 13  # ends within a week of the data's end
    assert (one[INVOICE_DATE].diff().dropna() == pd.Timedelta(days=5)).all()
    assert cut_histories(lines, None, snapshot).equals(lines)


def test_history_curve_rises_with_history_and_its_confidence_is_calibrated(transactions):
    labels = planted(transactions)
    curve = history_curve(transactions, labels, union, RandomForestClassifier(
        100, n_jobs=1, random_state=0), days=(1, 30, 120), test_size=0.5, random_state=0)
    table = curve.table
    assert list(table["history_days"].fillna(-1)) == [1, 30, 120, -1]
    assert table["n_customers"].iloc[-1] == 30  # half the 60 customers held out
    assert table["f1_macro"].iloc[-1] >= table["f1_macro"].iloc[0]
    assert table["f1_macro"].iloc[-1] >= 0.8
    assert curve.f1_at(45) == table["f1_macro"].iloc[1] and np.isnan(curve.f1_at(0))
    assert curve.metrics["assign/history_n_heldout"] == 30
    assert 0 <= curve.metrics["assign/confidence_ece"] <= 1
    assert curve.reliability["n"].sum() <= table["n_customers"].iloc[:-1].sum() / 2 + 3
    confidence = curve.calibration.predict([0.9, 0.9], [1, 120], [0, 0])
    assert ((confidence >= 0) & (confidence <= 1)).all()


def test_calibration_learns_that_short_histories_are_often_wrong():
    rng = np.random.default_rng(0)
    days = rng.choice([1, 7, 30, 90, 180], 4000)
    probability = rng.uniform(0.95, 1.0, 4000)   # the classifier is sure whatever it saw
    correct = rng.random(4000) < np.log1p(days) / np.log1p(200)
    calibration = HistoryCalibration(np.array([0, 1])).fit(probability, days, np.zeros(4000), correct)
    short, long = calibration.predict([0.97, 0.97], [1, 180], [0, 0])
    assert short == pytest.approx(np.log1p(1) / np.log1p(200), abs=0.06)
    assert long == pytest.approx(np.log1p(180) / np.log1p(200), abs=0.06)
    always = HistoryCalibration(np.array([0])).fit([0.9, 0.8], [1, 2], [0, 0], [True, True])
    assert list(always.predict([0.5], [3], [0])) == [1.0]


def test_the_model_puts_short_histories_in_the_new_group_and_says_what_it_rests_on(transactions):
    labels = planted(transactions)
    fitted = union().fit(transactions)
    features = fitted.transform(transactions)
    result = assign_segments(features, labels, RandomForestClassifier(50, n_jobs=1, random_state=0))
    calibration = HistoryCalibration(np.array([0, 1, 2])).fit(
        [0.9, 0.9, 0.9, 0.9], [1, 1, 200, 200], [0, 1, 0, 1], [False, True, True, True])
    names = {0: "bags", 1: "cakes", 2: "lights"}
    model = CustomerSegmentModel(labels.iloc[:30], names,
                                 result.assigner(fitted, names, calibration, min_history_days=60),
                                 None, {})
    out = model.predict(transactions).set_index(CUSTOMER_ID)
    assert list(out.reset_index().columns) == OUTPUT_COLUMNS
    known, unseen = labels.index[:30], labels.index[30:]
    assert (out.loc[known, "assigned_by"] == "training").all()
    assert out.loc[known, "confidence"].isna().all()
    bought = transactions[~transactions[IS_RETURN]]
    first = bought.groupby(CUSTOMER_ID)[INVOICE_DATE].min().dt.normalize()
    expected = (snapshot_date(transactions) - first).dt.days
    np.testing.assert_array_equal(out["history_days"], expected.reindex(out.index))
    young = out.loc[unseen][out.loc[unseen, "history_days"] < 60]
    old = out.loc[unseen][out.loc[unseen, "history_days"] >= 60]
    assert len(old) and (old["assigned_by"] == "classifier").all()
    assert (old["segment_name"] == old["closest_segment_name"]).all()
    assert old["confidence"].between(0, 1).all()
    assert (young["segment"] == NEW_SEGMENT).all() and (young["segment_name"] == NEW_SEGMENT_NAME).all()
    # A new file of the same customers under new ids: everybody is unseen.
    shifted = transactions.assign(**{CUSTOMER_ID: transactions[CUSTOMER_ID] + 100_000})
    fresh = model.predict(shifted)
    assert (fresh["assigned_by"] != "training").all()
    clone(model.assigner.classifier)  # still an estimator after all this
