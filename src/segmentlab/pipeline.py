"""One segmentation run, as pure computation: features in, labels, metrics, profiles and plots out.

Nothing here reads Hydra config or talks to MLflow; ``cli.py`` assembles the pieces from config
and ``tracking.py`` records what this returns.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field, replace
from time import perf_counter

import numpy as np
import pandas as pd
from matplotlib.figure import Figure
from sklearn.base import BaseEstimator, clone
from sklearn.pipeline import FeatureUnion, Pipeline

from segmentlab import classification, evaluation, plots, prediction, segments
from segmentlab.cache import FrameCache
from segmentlab.schema import CUSTOMER_ID, IS_RETURN, Dataset


@dataclass(frozen=True)
class FeatureResult:
    """The customer feature matrix and what the feature sets reported while fitting."""

    frame: pd.DataFrame
    metrics: dict[str, float] = field(default_factory=dict)
    tables: dict[str, pd.DataFrame] = field(default_factory=dict)
    cache_hit: bool = False
    seconds: float = 0.0
    union: FeatureUnion | None = None  # the fitted feature sets; None when read from the cache


@dataclass(frozen=True)
class RunResult:
    """Everything one run produced; the tracker logs it, the console summarises it."""

    metrics: dict[str, float]
    labels: pd.Series
    profile: pd.DataFrame
    tables: dict[str, pd.DataFrame]
    figures: dict[str, Figure]
    tags: dict[str, str]
    features: pd.DataFrame
    segmenter: Pipeline
    summary: pd.DataFrame  # interpretable numbers per customer (segments.customer_summary)
    models: dict[str, object] = field(default_factory=dict)


@dataclass(frozen=True)
class PredictionSettings:
    """How the classifiers are judged; see ``configs/config.yaml`` ``prediction``."""

    enabled: bool = True
    features: tuple[str, ...] = ("rfm", "behaviour")
    horizon_days: int = 90
    n_rolling: int = 0
    new_customer_invoices: int = 1
    importance_repeats: int = 5
    surrogate_depth: int = 3
    test_size: float = 0.25
    spend_regressor: BaseEstimator | None = None  # unfitted regressor of spend in the horizon; None skips it


@dataclass(frozen=True)
class EvaluationSettings:
    """How a clustering is scored; see ``configs/config.yaml`` ``evaluation``."""

    silhouette_sample: int = 10_000
    dbcv_sample: int = 3_000
    stability_resamples: int = 5
    stability_fraction: float = 0.8
    map_method: str = "pca"
    random_state: int = 42


def compute_features(
    dataset: Dataset, union: FeatureUnion, cache: FrameCache | None = None, key: str | None = None
) -> FeatureResult:
    """Fit the feature sets on the dataset and return one row per purchasing customer.

    With a cache and key, a verified earlier result is returned instead of recomputing.
    """
    if cache is not None and key is not None and (hit := cache.load(key)) is not None:
        frames, meta = hit
        tables = {name[len("table:"):]: f for name, f in frames.items() if name.startswith("table:")}
        return FeatureResult(frames["features"], meta["metrics"], tables, cache_hit=True)
    start = perf_counter()
    frame = union.fit_transform(dataset.transactions)
    frame = _align_to_customers(frame, dataset)
    metrics, tables = {}, {}
    for _, part in union.transformer_list:
        if hasattr(part, "report"):
            part_metrics, part_tables = part.report()
            metrics.update(part_metrics)
            tables.update(part_tables)
    result = FeatureResult(frame, metrics, tables, cache_hit=False, seconds=perf_counter() - start,
                           union=union)
    if cache is not None and key is not None:
        frames = {"features": frame, **{f"table:{name}": t for name, t in tables.items()}}
        cache.save(key, frames, {"metrics": metrics})
    return result


def _align_to_customers(frame: pd.DataFrame, dataset: Dataset) -> pd.DataFrame:
    """Rows in customer order, one per customer with a purchase; a NaN is a feature-set bug."""
    customers = np.sort(dataset.transactions.loc[~dataset.transactions[IS_RETURN], CUSTOMER_ID].unique())
    frame = frame.reindex(pd.Index(customers, name=CUSTOMER_ID))
    bad = frame.columns[frame.isna().any()].tolist()
    if bad:
        raise ValueError(f"feature columns {bad[:5]} have missing values for some customers")
    return frame.astype(float)


@dataclass(frozen=True)
class Clustering:
    """Labels of one fitted segmenter, the space it clustered in, and the scores."""

    labels: pd.Series
    space: np.ndarray
    metrics: dict[str, float]
    reasons: list[str]
    segmenter: Pipeline


def cluster_customers(
    features: pd.DataFrame,
    segmenter: Pipeline,
    truth: pd.Series | None = None,
    settings: EvaluationSettings = EvaluationSettings(),
) -> Clustering:
    """Scale, reduce and cluster the customers and score the result (no profiles, no plots).

    ``time/estimator_seconds`` is the time spent in the estimators' own fitting and in scoring,
    what a tuning study cannot avoid; everything else a trial does is overhead.
    """
    start = perf_counter()
    space = segmenter[:-1].fit_transform(features.to_numpy())
    clusterer = segmenter[-1]
    labels = np.asarray(clusterer.fit_predict(space))
    fit_seconds = perf_counter() - start
    label_series = pd.Series(labels, index=features.index, name="segment")
    truth_values = None if truth is None else truth.reindex(features.index).to_numpy()
    metrics, reasons = evaluation.evaluate_clustering(
        space, labels, truth=truth_values, sample_size=settings.silhouette_sample,
        dbcv_sample=settings.dbcv_sample, random_state=settings.random_state,
    )
    if hasattr(clusterer, "bic"):  # Gaussian mixtures: a likelihood criterion comes for free
        metrics["cluster/bic"] = float(clusterer.bic(space))
    if settings.stability_resamples > 0:
        metrics.update(evaluation.stability(
            lambda: clone(clusterer), space, labels, n_resamples=settings.stability_resamples,
            sample_fraction=settings.stability_fraction, random_state=settings.random_state,
        ))
    metrics["time/cluster_fit_seconds"] = fit_seconds
    metrics["time/estimator_seconds"] = perf_counter() - start
    metrics.update(_size_metrics(label_series))
    return Clustering(label_series, space, metrics, reasons, segmenter)


def describe_segments(
    clustering: Clustering,
    features: FeatureResult,
    dataset: Dataset,
    settings: EvaluationSettings = EvaluationSettings(),
) -> RunResult:
    """Profile, name and plot the segments of a clustering: what a person reads."""
    frame, labels = features.frame, clustering.labels
    summary = segments.customer_summary(dataset.transactions).reindex(frame.index)
    category_columns = [c for c in frame.columns if "__cat_" in c]
    extra = frame[category_columns] if category_columns else None
    profile = segments.profile_segments(summary, labels, extra=extra)
    names = segments.name_segments(profile)
    actions = segments.recommend_actions(profile, names).drop(columns="name", errors="ignore")
    profile = profile.assign(name=names).join(actions)

    space, values, name_map = clustering.space, labels.to_numpy(), names.to_dict()
    figures = {
        "customer_map": plots.customer_map(space, values, name_map, method=settings.map_method),
        "segment_sizes": plots.segment_sizes(values, name_map),
        "profile_heatmap": plots.profile_heatmap(summary.select_dtypes("number").groupby(labels).mean(),
                                                 names=name_map),
        "silhouette": plots.silhouette_plot(space, values, sample_size=settings.silhouette_sample,
                                            random_state=settings.random_state, names=name_map),
    }
    xy, _ = plots.project(space, settings.map_method, settings.random_state)
    customer_map = pd.DataFrame({"x": xy[:, 0], "y": xy[:, 1], "segment": values,
                                 "segment_name": labels.map(name_map).to_numpy()}, index=frame.index)
    tags = {"degenerate": "; ".join(clustering.reasons)} if clustering.reasons else {}
    return RunResult(
        metrics=dict(clustering.metrics), labels=labels, profile=profile,
        tables={**features.tables, "customer_map": customer_map}, figures=figures, tags=tags, features=frame,
        segmenter=clustering.segmenter, summary=summary,
    )


def segment_customers(
    features: FeatureResult,
    segmenter: Pipeline,
    dataset: Dataset,
    settings: EvaluationSettings = EvaluationSettings(),
) -> RunResult:
    """Cluster, score, profile, name and plot: one complete run."""
    clustering = cluster_customers(features.frame, segmenter, dataset.truth, settings)
    return describe_segments(clustering, features, dataset, settings)


def _size_metrics(labels: pd.Series) -> dict[str, float]:
    counts = labels.value_counts().sort_index()
    return {f"cluster/size_{'noise' if k == -1 else k}": float(v) for k, v in counts.items()}


def assess_classifiers(
    result: RunResult,
    dataset: Dataset,
    union: FeatureUnion,
    prediction_union: FeatureUnion,
    classifier,
    segmenter_factory: Callable[[], Pipeline],
    settings: PredictionSettings,
    random_state: int = 42,
    fitted: FeatureUnion | None = None,
    assigner=None,
) -> RunResult:
    """Add segment assignment and out-of-time repurchase prediction to a run's result.

    ``union`` is the run's unfitted feature union (segment assignment learns from it);
    ``prediction_union`` the unfitted union repurchase prediction refits in each time window (plus
    the segment, one-hot); ``classifier`` the unfitted repurchase classifier and ``assigner`` the
    unfitted segment classifier (``classifier`` when None), each cloned for every use; ``fitted``
    the run's union already fitted on the whole data, if at hand (else it is fitted here).
    """
    assigner = classifier if assigner is None else assigner
    labels, frame = result.labels, result.features
    if labels[labels != evaluation.NOISE].nunique() < 2:  # a degenerate clustering: nothing to learn
        return replace(result, tags={**result.tags, "prediction_skipped": "fewer than 2 segments"})
    names = result.profile["name"].to_dict()
    assignment = classification.assign_segments(frame, labels, clone(assigner), settings.test_size,
                                                random_state=random_state)
    metrics = dict(assignment.metrics)
    metrics.update(classification.new_customer_assignment(
        dataset.transactions, labels, lambda: clone(union), clone(assigner),
        n_first_invoices=settings.new_customer_invoices))
    tree_metrics, rules = classification.surrogate_tree(
        result.summary.select_dtypes("number"), labels, max_depth=settings.surrogate_depth,
        random_state=random_state, names=names)
    metrics.update(tree_metrics)
    repurchase = prediction.evaluate_repurchase(
        dataset.transactions, lambda: clone(prediction_union), clone(classifier),
        horizon_days=settings.horizon_days, segmenter_factory=segmenter_factory,
        n_rolling=settings.n_rolling, random_state=random_state,
        importance_repeats=settings.importance_repeats, spend_regressor=settings.spend_regressor)
    metrics.update(repurchase.metrics)
    predictors = repurchase.model.features(dataset.transactions)
    tables = {"assign_confusion": assignment.confusion, "repurchase_features": predictors.head(200),
              "segment_rules": pd.DataFrame({"rules": rules.splitlines()}),
              "predict_eval_scores": repurchase.scores,  # per customer: outcome beside prediction
              **{f"predict_{k}": v for k, v in repurchase.tables.items()}}
    figures = {f"predict_{k}": v for k, v in repurchase.figures.items()}
    fitted_union = fitted if fitted is not None else clone(union).fit(dataset.transactions)
    models = {"segment_assigner": assignment.assigner(fitted_union, names), "repurchase": repurchase.model}
    return replace(result, metrics={**result.metrics, **metrics}, tables={**result.tables, **tables},
                   figures={**result.figures, **figures}, models={**result.models, **models})
