"""One clustering run as pure computation: features in; labels, scores and segment profiles out.

Nothing here reads config, talks to MLflow or draws: `segmentlab.study` assembles the pieces from
config, draws the figures when a tracker records them and logs what this returns.
"""

from __future__ import annotations

from dataclasses import dataclass
from time import perf_counter

import numpy as np
import pandas as pd
from sklearn.base import clone
from sklearn.decomposition import PCA
from sklearn.pipeline import Pipeline

from segmentlab.customers import customer_summary
from segmentlab.schema import Dataset
from segmentlab.segmentation import evaluation, naming, profiles
from segmentlab.settings import EvaluationSettings


@dataclass(frozen=True)
class Clustering:
    """Labels of one fitted segmenter, the space it clustered in, and the scores."""

    labels: pd.Series
    space: np.ndarray
    metrics: dict[str, float]
    reasons: list[str]
    segmenter: Pipeline


@dataclass(frozen=True)
class Segmentation:
    """A scored clustering with what a person reads about its segments.

    Attributes
    ----------
    clustering : Clustering
        Labels, clustered space, scores, the fitted segmenter.
    profile : DataFrame
        One row per segment: sizes, medians, percentiles, name and actions.
    summary : DataFrame
        Interpretable numbers per customer (`segmentlab.customers.customer_summary`).
    customer_map : DataFrame
        ``x``, ``y``, ``segment``, ``segment_name`` per customer: the 2-D map.
    axis_names : list of str
        Names of the map's axes.
    """

    clustering: Clustering
    profile: pd.DataFrame
    summary: pd.DataFrame
    customer_map: pd.DataFrame
    axis_names: list[str]

    @property
    def labels(self) -> pd.Series:
        return self.clustering.labels

    @property
    def names(self) -> dict[int, str]:
        return self.profile["name"].to_dict()


def cluster_customers(
    features: pd.DataFrame,
    segmenter: Pipeline,
    truth: pd.Series | None = None,
    settings: EvaluationSettings | None = None,
) -> Clustering:
    """Scale, reduce and cluster the customers and score the result (no profiles).

    ``time/estimator_seconds`` is the time spent in the estimators' own fitting and in scoring,
    what a tuning study cannot avoid; everything else a trial does is overhead.
    """
    settings = settings or EvaluationSettings(random_state=42)
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
        metrics.update(evaluation.bic(clusterer, space))
    if settings.stability_resamples > 0 and len(labels) < 3:
        reasons.append(f"stability needs at least 3 customers, got {len(labels)}")
    elif settings.stability_resamples > 0:
        metrics.update(evaluation.stability(
            lambda: clone(clusterer), space, labels, n_resamples=settings.stability_resamples,
            sample_fraction=settings.stability_fraction, random_state=settings.random_state,
            n_jobs=settings.n_jobs,
        ))
    metrics["time/cluster_fit_seconds"] = fit_seconds
    metrics["time/estimator_seconds"] = perf_counter() - start
    metrics.update(evaluation.size_counts(labels))
    return Clustering(label_series, space, metrics, reasons, segmenter)


def describe_segments(clustering: Clustering, features: pd.DataFrame, dataset: Dataset,
                      settings: EvaluationSettings | None = None,
                      summary: pd.DataFrame | None = None) -> Segmentation:
    """Profile, name and map the segments of a clustering: what a person reads.

    ``summary`` is the customer summary when the lines are not in ``dataset`` (computed out of
    core); by default `customer_summary` of ``dataset.transactions``.
    """
    settings = settings or EvaluationSettings(random_state=42)
    labels = clustering.labels
    if summary is None:
        summary = customer_summary(dataset.transactions)
    summary = summary.reindex(features.index)
    category_columns = [c for c in features.columns if "__cat_" in c]
    extra = features[category_columns] if category_columns else None
    profile = profiles.profile_segments(summary, labels, extra=extra)
    names = naming.name_segments(profile)
    actions = profiles.recommend_actions(profile, names).drop(columns="name", errors="ignore")
    profile = profile.assign(name=names, name_basis=naming.name_basis(profile)).join(actions)
    xy, axis_names = project(clustering.space, settings.map_method, settings.random_state)
    customer_map = pd.DataFrame({"x": xy[:, 0], "y": xy[:, 1], "segment": labels.to_numpy(),
                                 "segment_name": labels.map(names.to_dict()).to_numpy()},
                                index=features.index)
    return Segmentation(clustering, profile, summary, customer_map, axis_names)


def segment_customers(features: pd.DataFrame, segmenter: Pipeline, dataset: Dataset,
                      settings: EvaluationSettings | None = None,
                      summary: pd.DataFrame | None = None) -> Segmentation:
    """Cluster, score, profile and name: one complete segmentation (``summary``: see
    `describe_segments`)."""
    clustering = cluster_customers(features, segmenter, dataset.truth, settings)
    return describe_segments(clustering, features, dataset, settings, summary)


#: Estimator parameters that count customers or segments, and must not exceed what the data has.
_SIZED = ("n_clusters", "n_components", "n_neighbors")


def fit_to_customers(segmenter: Pipeline, n_customers: int,
                     settings: EvaluationSettings | None = None) -> tuple[Pipeline, list[str]]:
    """The segmenter asking for no more segments (components, neighbours) than the customers allow.

    A small shop can have fewer customers than the configured ``n_clusters``; every stability
    refit sees ``stability_fraction`` of them. Such counts are lowered to what the smallest fit
    can hold, and each change is returned as a line for the console and the run's tags.

    Returns
    -------
    segmenter : Pipeline
        The same object, its oversized parameters lowered (``set_params``).
    notes : list of str
        E.g. ``"clusterer.n_clusters=6 lowered to 4: 5 customers"``.
    """
    settings = settings or EvaluationSettings(random_state=42)
    smallest = n_customers
    if settings.stability_resamples > 0:
        smallest = min(smallest, max(2, round(settings.stability_fraction * n_customers)))
    limit = max(1, min(n_customers - 1, smallest))
    notes = []
    for (_, step), node in zip(segmenter.steps[1:], ("reducer", "clusterer"), strict=False):
        params = step.get_params(deep=False)
        for key in _SIZED:
            value = params.get(key)
            if isinstance(value, int) and not isinstance(value, bool) and value > limit:
                step.set_params(**{key: limit})
                notes.append(f"{node}.{key}={value} lowered to {limit}: {n_customers} customers")
    return segmenter, notes


def project(X: np.ndarray, method: str, random_state: int) -> tuple[np.ndarray, list[str]]:
    """2-D coordinates of the clustered space and axis names; < 2 columns are padded with zeros."""
    X = np.asarray(X, dtype=np.float64)
    if method == "pca":
        if X.shape[1] < 2 or len(X) < 2:
            padded = np.zeros((len(X), 2))
            padded[:, : min(X.shape[1], 2)] = X[:, :2]
            return padded, ["feature 1", "feature 2" if X.shape[1] > 1 else "(constant)"]
        pca = PCA(n_components=2, svd_solver="full").fit(X)
        shares = pca.explained_variance_ratio_
        return pca.transform(X), [f"PC{i + 1} ({s:.0%} of variance)" for i, s in enumerate(shares)]
    if method == "umap":
        import umap  # lazy: importing it starts numba compilation (~40 s)

        xy = umap.UMAP(n_components=2, random_state=random_state).fit_transform(X)
        return xy, ["UMAP 1", "UMAP 2"]
    raise ValueError(f"method must be 'pca' or 'umap', got {method!r}")
