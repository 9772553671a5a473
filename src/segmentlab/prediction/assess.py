"""The prediction stage of a run: segment assignment and out-of-time repurchase, as one call."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

import pandas as pd
from sklearn.base import BaseEstimator, clone
from sklearn.pipeline import FeatureUnion, Pipeline

from segmentlab.lifetime.value import CustomerValue
from segmentlab.prediction import assignment
from segmentlab.prediction.evaluation import evaluate_repurchase
from segmentlab.prediction.history import HISTORY_DAYS, history_curve
from segmentlab.prediction.value import customer_value, segment_value
from segmentlab.schema import Dataset
from segmentlab.segmentation.evaluation import NOISE
from segmentlab.segmentation.segmenting import Segmentation


@dataclass(frozen=True)
class Assessment:
    """What the prediction stage adds to a run.

    Attributes
    ----------
    metrics : dict
        ``assign/*`` and ``predict/*`` scores.
    tables : dict of DataFrame
        Confusion matrix, segment rules, repurchase importance, per-customer scores…
    models : dict
        ``segment_assigner`` (SegmentAssigner), ``repurchase`` (RepurchaseModel) and, with
        lifetime value, ``customer_value`` (fitted CustomerValue).
    skipped : str or None
        Why the stage did not run, when it did not.
    """

    metrics: dict[str, float] = field(default_factory=dict)
    tables: dict[str, pd.DataFrame] = field(default_factory=dict)
    models: dict[str, object] = field(default_factory=dict)
    skipped: str | None = None


def assess_classifiers(
    segmentation: Segmentation,
    features: pd.DataFrame,
    dataset: Dataset,
    union: FeatureUnion,
    prediction_union: FeatureUnion,
    classifier: BaseEstimator | Mapping[str, BaseEstimator],
    assigner: BaseEstimator,
    segmenter_factory: Callable[[], Pipeline],
    *,
    horizon_days: int = 90,
    n_rolling: int = 0,
    new_customer_invoices: int = 1,
    min_history_days: int = 0,
    importance_repeats: int = 5,
    surrogate_depth: int = 3,
    test_size: float = 0.25,
    spend_regressor: BaseEstimator | None = None,
    random_state: int = 42,
    fitted: FeatureUnion | None = None,
    lifetime: CustomerValue | None = None,
    pooling: Mapping[str, Any] | None = None,
) -> Assessment:
    """Segment assignment and out-of-time repurchase prediction for one segmentation.

    ``union`` is the run's unfitted feature union (segment assignment learns from it);
    ``prediction_union`` the unfitted union repurchase prediction refits at each cutoff (plus
    the segment, one-hot, with ``segment_predictors``); ``classifier`` the unfitted repurchase
    classifier, or the named candidates validation chooses from, and ``assigner`` the unfitted
    segment classifier, each cloned for every use; ``fitted`` the run's union already fitted on
    the whole data, if at hand (else it is fitted here); ``lifetime`` the unfitted BG/NBD +
    Gamma-Gamma model (baselines, customer and segment value; None skips them); ``pooling`` the
    keywords of `evaluate_repurchase` that say how repurchase models are trained and judged
    (``every_days``, ``min_history_days`` of the training cutoffs, ``population``…). The other
    keywords are the ``prediction.*`` settings (`segmentlab.settings.PredictionSettings`).
    """
    labels = segmentation.labels
    if labels[labels != NOISE].nunique() < 2:  # a degenerate clustering: nothing to learn
        return Assessment(skipped="fewer than 2 segments")
    names = segmentation.names
    result = assignment.assign_segments(features, labels, clone(assigner), test_size,
                                        random_state=random_state)
    metrics = dict(result.metrics)
    metrics.update(assignment.new_customer_assignment(
        dataset.transactions, labels, lambda: clone(union), clone(assigner),
        n_first_invoices=new_customer_invoices))
    curve = history_curve(dataset.transactions, labels, lambda: clone(union), clone(assigner),
                          days=tuple(sorted({*HISTORY_DAYS, min_history_days} - {0})),
                          test_size=test_size, random_state=random_state)
    metrics.update(curve.metrics)
    metrics.update({"assign/min_history_days": float(min_history_days),
                    "assign/f1_at_min_history": curve.f1_at(min_history_days),
                    "assign/suggested_min_history_days": curve.suggested_days()})
    tree_metrics, rules = assignment.surrogate_tree(
        segmentation.summary.select_dtypes("number"), labels, max_depth=surrogate_depth,
        random_state=random_state, names=names)
    metrics.update(tree_metrics)
    repurchase = evaluate_repurchase(
        dataset.transactions, lambda: clone(prediction_union), classifier,
        horizon_days=horizon_days, segmenter_factory=segmenter_factory, n_rolling=n_rolling,
        random_state=random_state, importance_repeats=importance_repeats,
        spend_regressor=spend_regressor, lifetime=lifetime, **(pooling or {}))
    metrics.update(repurchase.metrics)
    predictors = repurchase.model.features(dataset.transactions)
    tables = {"assign_confusion": result.confusion, "repurchase_features": predictors.head(200),
              "assign_history": curve.table, "assign_reliability": curve.reliability,
              "segment_rules": pd.DataFrame({"rules": rules.splitlines()}),
              "predict_eval_scores": repurchase.scores,  # per customer: outcome beside prediction
              **{f"predict_{k}": v for k, v in repurchase.tables.items()}}
    fitted_union = fitted if fitted is not None else clone(union).fit(dataset.transactions)
    deployed = result.assigner(fitted_union, names, curve.calibration, min_history_days)
    models = {"segment_assigner": deployed, "repurchase": repurchase.model}
    if lifetime is not None:
        value, values = customer_value(dataset.transactions, lifetime)
        tables["customer_value"] = values
        tables["segment_value"] = segment_value(values, labels, names, dataset.transactions, value)
        models["customer_value"] = value
    return Assessment(metrics, tables, models)
