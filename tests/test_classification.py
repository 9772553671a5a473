"""Segment classifiers: label handling, hold-out scores, new customers, surrogate rules, configs."""

from __future__ import annotations

import pickle

import numpy as np
import pandas as pd
import pytest
from sklearn.base import clone
from sklearn.datasets import make_blobs
from sklearn.ensemble import RandomForestClassifier
from sklearn.pipeline import FeatureUnion
from xgboost import XGBClassifier

from segmentlab.config import build
from segmentlab.features.behaviour import BehaviourFeatures
from segmentlab.features.rfm import RFMFeatures
from segmentlab.prediction.assignment import (
    SegmentAssigner,
    assign_segments,
    encode_labels,
    first_invoices,
    new_customer_assignment,
    surrogate_tree,
)
from segmentlab.prediction.estimators import scaled_logistic_regression
from segmentlab.schema import CUSTOMER_ID, INVOICE_DATE, INVOICE_NO, IS_RETURN
from tests.conftest import CONFIGS, compose_config

CLASSIFIERS = sorted(p.stem for p in (CONFIGS / "classifier").glob("*.yaml"))


def blobs(labels=(3, 7, 12), n=240, noise=20, seed=0) -> tuple[pd.DataFrame, pd.Series]:
    """Well-separated customers in ``len(labels)`` segments plus some noise (-1)."""
    X, y = make_blobs(n, n_features=4, centers=len(labels), cluster_std=0.5, random_state=seed)
    index = pd.Index(np.arange(5000, 5000 + n), name=CUSTOMER_ID)
    segment = pd.Series(np.asarray(labels)[y], index=index)
    segment.iloc[:noise] = -1
    return pd.DataFrame(X, index=index, columns=["a", "b", "c", "d"]), segment


def test_encode_labels_round_trips():
    labels = np.array([12, 3, 7, 3, 12])
    codes, classes = encode_labels(labels)
    assert sorted(set(codes.tolist())) == [0, 1, 2]
    np.testing.assert_array_equal(classes[codes], labels)


@pytest.mark.parametrize("classifier", [
    scaled_logistic_regression(),
    RandomForestClassifier(50, n_jobs=1, random_state=0),
    XGBClassifier(n_estimators=30, max_depth=2, n_jobs=1, random_state=0),
], ids=["logreg", "random_forest", "xgboost"])
def test_assign_segments_recovers_well_separated_segments(classifier):
    features, labels = blobs()
    result = assign_segments(features, labels, classifier, test_size=0.25, random_state=0)
    assert result.metrics["assign/accuracy"] >= 0.95
    assert result.metrics["assign/f1_macro"] >= 0.95
    assert result.metrics["assign/n_dropped_noise"] == (labels == -1).sum()
    assert result.confusion.index.tolist() == [3, 7, 12]
    assert result.confusion.to_numpy().sum() == result.metrics["assign/n_test"]
    predicted = result.decode(result.model.predict(features[result.columns]))
    clean = labels != -1
    assert (predicted[clean.to_numpy()] == labels[clean].to_numpy()).mean() >= 0.95


def test_xgboost_labels_are_encoded_and_decoded():
    features, labels = blobs(labels=(2, 5, 40))
    result = assign_segments(features, labels, XGBClassifier(n_estimators=20, n_jobs=1))
    assert sorted(np.unique(result.model.predict(features)).tolist()) == [0, 1, 2]
    assigned = result.assigner().predict(features)
    assert set(assigned["segment"]) == {2, 5, 40}


def test_noise_can_be_kept_as_a_class():
    features, labels = blobs()
    result = assign_segments(features, labels, scaled_logistic_regression(), keep_noise=True)
    assert -1 in result.classes and result.metrics["assign/n_dropped_noise"] == 0


def test_single_segment_is_refused():
    features, labels = blobs()
    with pytest.raises(ValueError, match="at least 2 segments"):
        assign_segments(features, labels.where(labels == -1, 3), scaled_logistic_regression())


def test_segment_assigner_pickles_and_names_segments(transactions):
    union = FeatureUnion([("rfm", RFMFeatures())]).set_output(transform="pandas")
    features = union.fit_transform(transactions)
    labels = pd.Series(np.where(features["rfm__frequency"] > features["rfm__frequency"].median(),
                                1, 0), index=features.index)
    result = assign_segments(features, labels, XGBClassifier(n_estimators=10, n_jobs=1))
    assigner = pickle.loads(pickle.dumps(result.assigner(union, names={1: "regulars"})))
    assert isinstance(assigner, SegmentAssigner)
    out = assigner.predict(features)
    pd.testing.assert_frame_equal(out, result.assigner(union, {1: "regulars"}).predict(features))
    assert out.columns.tolist() == ["segment", "segment_name"]
    assert set(out.loc[out["segment"] == 1, "segment_name"]) == {"regulars"}
    pd.testing.assert_frame_equal(assigner.assign(transactions), out)
    with pytest.raises(ValueError, match="training columns"):
        assigner.predict(features.drop(columns="rfm__frequency"))


def test_first_invoices_keeps_each_customers_earliest_purchases(transactions):
    kept = first_invoices(transactions, n=2)
    assert not kept[IS_RETURN].any()
    assert kept.groupby(CUSTOMER_ID)[INVOICE_NO].nunique().max() == 2
    purchases = transactions[~transactions[IS_RETURN]]
    earliest = purchases.groupby(CUSTOMER_ID)[INVOICE_DATE].min()
    assert kept.groupby(CUSTOMER_ID)[INVOICE_DATE].min().equals(earliest)


def test_new_customers_are_placed_from_their_first_invoice(transactions):
    # The fixture plants three kinds of buyer (20 customers each) that differ in every basket.
    customers = np.sort(transactions[CUSTOMER_ID].unique())
    labels = pd.Series((customers - customers.min()) // 20, index=customers)
    union = FeatureUnion([("behaviour", BehaviourFeatures(top_countries=1))]).set_output(
        transform="pandas")
    metrics = new_customer_assignment(transactions, labels, lambda: clone(union),
                                      RandomForestClassifier(100, n_jobs=1, random_state=0),
                                      n_first_invoices=1, late_share=0.25)
    assert metrics["assign/new_customer_n"] + metrics["assign/new_customer_n_train"] == 60
    assert metrics["assign/new_customer_n"] == pytest.approx(15, abs=2)
    assert metrics["assign/new_customer_f1_macro"] >= 0.8
    shuffled = pd.Series(np.random.default_rng(0).permutation(labels.to_numpy()), index=customers)
    chance = new_customer_assignment(transactions, shuffled, lambda: clone(union),
                                     RandomForestClassifier(100, n_jobs=1, random_state=0))
    assert chance["assign/new_customer_f1_macro"] < metrics["assign/new_customer_f1_macro"]


def test_surrogate_tree_finds_a_planted_rule():
    rng = np.random.default_rng(0)
    summary = pd.DataFrame({"recency_days": rng.uniform(0, 300, 400),
                            "monetary": rng.lognormal(5, 1, 400), "country": "UK"})
    labels = pd.Series(np.where(summary["recency_days"] > 150, 1, 0), index=summary.index)
    labels.iloc[:10] = -1
    metrics, rules = surrogate_tree(summary, labels, max_depth=2, names={1: "lapsing"})
    assert metrics["assign/surrogate_fidelity"] >= 0.97
    assert "recency_days" in rules and "lapsing" in rules and "country" not in rules


def test_every_classifier_has_an_assigner_config():
    # config.yaml selects `assigner: ${classifier}`: a classifier without one cannot be chosen.
    assert sorted(p.stem for p in (CONFIGS / "assigner").glob("*.yaml")) == CLASSIFIERS


@pytest.mark.parametrize("name", CLASSIFIERS)
def test_every_classifier_config_builds_and_fits(name):
    classifier = build(compose_config(f"classifier={name}").classifier)
    features, labels = blobs(labels=(1, 4, 9), n=400, noise=0)  # leaves of 40 need room
    result = assign_segments(features, labels, classifier, refit=False)
    assert result.metrics["assign/accuracy"] > 0.9


