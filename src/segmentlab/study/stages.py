"""The optional stages of a run, each given the experiment, the data, the features and the
segmentation: prediction, segments through time and recommendations.

A stage that needs more data than the file has returns why instead of failing (the run logs the
reason as ``skipped/<stage>``).
"""

from __future__ import annotations

from dataclasses import replace

import pandas as pd

from segmentlab.customers import align_to_purchasers
from segmentlab.features.matrix import FeatureResult
from segmentlab.prediction.assess import Assessment, assess_classifiers
from segmentlab.prediction.windows import WindowError
from segmentlab.schema import INVOICE_DATE, DataError, Dataset
from segmentlab.segmentation.segmenting import Segmentation
from segmentlab.study.experiment import Experiment
from segmentlab.study.results import RunResult


def predict_stage(experiment: Experiment, dataset: Dataset, features: FeatureResult,
                  segmentation: Segmentation) -> Assessment:
    """Segment assignment and repurchase prediction, or why they cannot run on this data."""
    settings = experiment.prediction
    span = span_days(dataset.transactions)
    if span <= 2 * settings.horizon_days:  # a training window, and an evaluation window after it
        return Assessment(skipped=f"data covers {_days(span)}, needs more than 2 × "
                                  f"prediction.horizon_days = {2 * settings.horizon_days}")
    labelled = segmentation.labels[segmentation.labels >= 0]
    sizes = labelled.value_counts()
    if len(sizes) >= 2 and sizes.min() < MIN_PER_SEGMENT:
        return Assessment(skipped=f"segment {sizes.idxmin()} has {sizes.min()} customer(s); segment "
                                  f"assignment needs at least {MIN_PER_SEGMENT} per segment")
    try:
        return assess_classifiers(
            segmentation, features.frame, dataset, experiment.features(),
            experiment.prediction_features(), experiment.repurchase_classifier(), experiment.assigner(),
            experiment.segmenter, horizon_days=settings.horizon_days, n_rolling=settings.n_rolling,
            new_customer_invoices=settings.new_customer_invoices,
            min_history_days=settings.min_history_days,
            importance_repeats=settings.importance_repeats, surrogate_depth=settings.surrogate_depth,
            test_size=settings.test_size, spend_regressor=experiment.spend_regressor(),
            random_state=experiment.seed, fitted=features.union, lifetime=experiment.lifetime(),
            pooling=dict(every_days=settings.train_cutoffs.every_days,
                         min_history_days=settings.train_cutoffs.min_history_days,
                         compare_one_cutoff=settings.train_cutoffs.compare_one_cutoff,
                         population=settings.population, active_days=settings.active_days,
                         validation_windows=settings.validation_windows,
                         calibration=settings.calibration,
                         segment_predictors=settings.segment_predictors,
                         n_bootstrap=settings.n_bootstrap))
    except WindowError as e:
        return Assessment(skipped=str(e))




def segment_tracker(experiment: Experiment, dataset: Dataset, features: FeatureResult,
                    segmentation: Segmentation):
    """The run's fitted feature sets and segmenter, ready to follow segments through time."""
    from segmentlab.dynamics.tracker import SegmentTracker

    union = features.union if features.union is not None else \
        experiment.features().fit(dataset.transactions)  # features came from the cache
    tracker = SegmentTracker(union, segmentation.clustering.segmenter, experiment.dynamics)
    return tracker.fit(dataset.transactions, segmentation.labels, segmentation.profile)


def dynamics_stage(experiment: Experiment, dataset: Dataset, features: FeatureResult,
                   segmentation: Segmentation, result: RunResult) -> RunResult:
    """Snapshots, migrations and early warnings (``dynamics.enabled``), or why not."""
    tracker = segment_tracker(experiment, dataset, features, segmentation)
    try:
        dynamics = tracker.track(dataset.transactions, value=_value_at_stake(result))
    except DataError as e:  # too short a history for two snapshots
        return replace(result, skipped={**result.skipped, "dynamics": str(e)})
    sections = {}
    if experiment.tracker.records:
        from segmentlab.reports.dynamics import dynamics_section

        sections["dynamics_section"] = dynamics_section(dynamics, top=experiment.dynamics.top_warnings)
    return replace(result, metrics={**result.metrics, **dynamics.metrics},
                   tables={**result.tables, **dynamics.tables},
                   sections={**result.sections, **sections},
                   models={**result.models, "segment_tracker": tracker})


def _value_at_stake(result: RunResult):
    """Lifetime value per customer when the run estimated it, else None (trailing spend is used)."""
    value = result.tables.get("customer_value")
    return None if value is None or "clv_12m" not in value else value["clv_12m"]


#: Customers per segment below which a classifier cannot be trained and judged on held-out ones.
MIN_PER_SEGMENT = 4


def span_days(transactions: pd.DataFrame) -> int:
    """Whole days from the first invoice day to the data's end (midnight after the last day)."""
    dates = transactions[INVOICE_DATE]
    return int((dates.max().normalize() + pd.Timedelta(days=1) - dates.min().normalize()).days)


def segments_before(experiment: Experiment, transactions: pd.DataFrame,
                    cutoff: pd.Timestamp) -> pd.Series:
    """The run's feature sets and segmenter fitted on the lines before ``cutoff`` only: segments
    a model judged after the cutoff may use without seeing it."""
    history = transactions[transactions[INVOICE_DATE] < cutoff]
    frame = align_to_purchasers(experiment.features().fit_transform(history), history)
    labels = experiment.segmenter().fit_predict(frame.to_numpy())
    return pd.Series(labels, index=frame.index, name="segment")


def recommend_stage(experiment: Experiment, dataset: Dataset, features: FeatureResult,
                    segmentation: Segmentation, result: RunResult) -> RunResult:
    """The chosen recommender against both popularity baselines, out of time, and what to push
    and stock per segment; the recommender refitted on all lines goes with the model."""
    from segmentlab.recommend.evaluation import evaluate_recommenders, recommendation_cutoffs
    from segmentlab.recommend.models import PopularityRecommender
    from segmentlab.recommend.segment_products import segment_products

    settings, transactions = experiment.recommend, dataset.transactions
    name = experiment.recommender_name
    span = span_days(transactions)
    if span <= 2 * settings.horizon_days:  # history to fit on, then the horizon to judge
        return replace(result, skipped={**result.skipped, "recommend": (
            f"data covers {_days(span)}, needs more than 2 × recommend.horizon_days = "
            f"{2 * settings.horizon_days}")})
    cutoff = recommendation_cutoffs(transactions, settings.horizon_days)[1]
    try:
        before = segments_before(experiment, transactions, cutoff)
        evaluation = evaluate_recommenders(
            transactions, {name: experiment.recommender(), "popularity": PopularityRecommender(),
                           "segment_popularity": PopularityRecommender(by_segment=True)},
            cutoff, settings.horizon_days, settings.k, before, settings.n_boot, experiment.seed)
    except (ValueError, DataError) as e:  # too little history before the cutoff, or no buyers after
        return replace(result, skipped={**result.skipped, "recommend": _first_line(e)})
    fitted = experiment.recommender().fit(transactions, segmentation.labels)
    products = segment_products(transactions, segmentation.labels, recommender=fitted,
                                categories=_categories(features, transactions), top=settings.top,
                                k=settings.k)
    metrics = {**evaluation.metrics(name), "recommend/n_customers": float(evaluation.customers["returning"])}
    tables = {"recommend_evaluation": evaluation.table, "segment_products": products}
    return replace(result, metrics={**result.metrics, **metrics}, tables={**result.tables, **tables},
                   models={**result.models, "recommender": fitted})


def _categories(features: FeatureResult, transactions: pd.DataFrame) -> pd.Series | None:
    """Product category per stock code from the run's fitted TF-IDF set, when it has one
    (else `segment_products` groups products by a description word)."""
    from segmentlab.features.tfidf import TfidfCategoryFeatures
    from segmentlab.recommend.history import PurchaseHistory
    from segmentlab.recommend.segment_products import tfidf_product_categories

    parts = features.union.transformer_list if features.union is not None else []
    tfidf = next((part for _, part in parts if isinstance(part, TfidfCategoryFeatures)), None)
    if tfidf is None:
        return None
    return tfidf_product_categories(tfidf, PurchaseHistory.from_transactions(transactions).descriptions)


def _days(n: int) -> str:
    return f"{n} day" if n == 1 else f"{n} days"


def _first_line(error: Exception) -> str:
    text = str(error).strip()
    return text.splitlines()[0] if text else type(error).__name__
