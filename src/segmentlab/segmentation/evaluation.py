"""Clustering quality, computed the same way for every clusterer.

All functions take the matrix the clusterer saw (standardised, maybe reduced) and its labels,
``-1`` meaning noise. Quadratic metrics are computed on seeded samples, so a score depends on
``random_state`` but is reproducible. Keys follow the ``stage/name`` convention.
"""

from __future__ import annotations

import warnings
from collections.abc import Callable

import numpy as np
from sklearn.base import BaseEstimator
from sklearn.metrics import (
    adjusted_rand_score,
    calinski_harabasz_score,
    davies_bouldin_score,
    normalized_mutual_info_score,
    silhouette_score,
)

from segmentlab.segmentation.dbcv import validity_index

NOISE = -1
#: A labelling whose largest cluster holds more than this share of customers is degenerate.
DOMINANT_SHARE = 0.95
#: Clusters with fewer sampled points are treated as noise by DBCV, whose core distances need
#: at least two points and whose MST misbehaves on fewer than three.
_DBCV_MIN_POINTS = 3
_QUALITY_KEYS = (
    "cluster/silhouette", "cluster/calinski_harabasz", "cluster/davies_bouldin", "cluster/dbcv",
)


def evaluate_clustering(
    X: np.ndarray,
    labels: np.ndarray,
    truth: np.ndarray | None = None,
    sample_size: int = 10000,
    random_state: int = 42,
    dbcv_sample: int = 3000,
) -> tuple[dict[str, float], list[str]]:
    """Score a labelling; undefined scores are NaN and the reasons say why.

    Silhouette, Calinski-Harabasz and Davies-Bouldin use non-noise points only; silhouette
    (O(n^2)) uses a seeded uniform sample of at most ``sample_size`` of them. DBCV
    (``hdbscan.validity.validity_index``'s value, computed faster by
    `segmentlab.segmentation.dbcv`; in [-1, 1], higher is better) uses a seeded uniform
    sample of at most ``dbcv_sample`` points *including* noise, which counts in its
    denominator as in Moulavi et al. (2014), so noise lowers it; clusters with fewer than three
    sampled points count as noise there. Its memory peaks at about ``33 * m^2`` bytes for a
    sampled cluster of ``m`` points (~0.3 GB at 3,000). Shares are relative to all points.

    A labelling is degenerate when every point is noise, there is a single cluster, or one
    cluster holds more than ``DOMINANT_SHARE`` of the points; the four quality scores are then
    NaN, so tuning marks such a trial failed instead of rewarding it.

    Parameters
    ----------
    X : ndarray of shape (n_samples, n_features)
        The matrix the clusterer saw.
    labels : ndarray of shape (n_samples,)
        Cluster per row, ``-1`` for noise.
    truth : ndarray of shape (n_samples,), optional
        Planted segments (synthetic data); adds ``cluster/ari_truth`` and ``cluster/nmi_truth``,
        computed on all points with noise as one more label.
    sample_size : int
        Largest number of non-noise points used for the silhouette.
    random_state : int
        Seed of both samples.
    dbcv_sample : int
        Largest number of points used for DBCV.

    Returns
    -------
    metrics : dict of str to float
        ``cluster/silhouette``, ``cluster/calinski_harabasz``, ``cluster/davies_bouldin``,
        ``cluster/dbcv``, ``cluster/noise_fraction``, ``cluster/n_clusters`` (noise excluded),
        ``cluster/min_cluster_share``, ``cluster/max_cluster_share``, and with ``truth``
        ``cluster/ari_truth``, ``cluster/nmi_truth``.
    reasons : list of str
        Why any metric is NaN, e.g. ``"one cluster holds 98.0% of customers"``; empty if none.
    """
    X = np.asarray(X, dtype=np.float64)
    labels = np.asarray(labels)
    if X.ndim != 2 or len(X) != len(labels):
        raise ValueError(f"X {X.shape} and labels {labels.shape} must have one label per row")
    metrics = _shares(labels)
    reasons = degeneracy_reasons(labels)
    if not np.isfinite(X).all():
        reasons.append("features contain NaN or infinite values")
    metrics.update(dict.fromkeys(_QUALITY_KEYS, np.nan))
    if not reasons:
        metrics.update(_separation_metrics(X, labels, sample_size, random_state, reasons))
        metrics["cluster/dbcv"] = _dbcv(X, labels, dbcv_sample, random_state, reasons)
    if truth is not None:
        truth = np.asarray(truth)
        if len(truth) != len(labels):
            raise ValueError(f"truth has {len(truth)} entries for {len(labels)} labels")
        metrics["cluster/ari_truth"] = float(adjusted_rand_score(truth, labels))
        metrics["cluster/nmi_truth"] = float(normalized_mutual_info_score(truth, labels))
    return metrics, reasons


def degeneracy_reasons(labels: np.ndarray) -> list[str]:
    """Why a labelling is degenerate (all noise, one cluster, one dominant cluster), or ``[]``.

    Parameters
    ----------
    labels : ndarray of shape (n_samples,)
        Cluster per row, ``-1`` for noise.

    Returns
    -------
    list of str
    """
    labels = np.asarray(labels)
    if len(labels) == 0:
        return ["no customers"]
    clustered = labels[labels != NOISE]
    if len(clustered) == 0:
        return ["all noise: no customer was assigned to a cluster"]
    sizes = np.unique(clustered, return_counts=True)[1]
    if len(sizes) == 1:
        return ["single cluster: every clustered customer is in the same cluster"]
    share = sizes.max() / len(labels)
    if share > DOMINANT_SHARE:
        return [f"one cluster holds {share:.1%} of customers (more than {DOMINANT_SHARE:.0%})"]
    return []


def bic(model, X: np.ndarray) -> dict[str, float]:
    """Bayesian information criterion of a fitted mixture model (lower is better).

    Parameters
    ----------
    model : fitted estimator with a ``bic(X)`` method, e.g. ``GaussianMixture``
    X : ndarray of shape (n_samples, n_features)
        The matrix the model was fitted on.

    Returns
    -------
    dict
        ``{"cluster/bic": value}``.
    """
    return {"cluster/bic": float(model.bic(np.asarray(X, dtype=np.float64)))}


def stability(
    make_estimator: Callable[[], BaseEstimator],
    X: np.ndarray,
    labels: np.ndarray,
    n_resamples: int = 5,
    sample_fraction: float = 0.8,
    random_state: int = 42,
    n_jobs: int = 1,
) -> dict[str, float]:
    """Agreement between a labelling and refits on seeded subsamples.

    Each resample draws ``sample_fraction`` of the rows without replacement, fits a fresh
    estimator from ``make_estimator`` on them, and scores the adjusted Rand index between its
    labels and ``labels`` on those rows (noise counts as one more label). Only the subsample
    varies: the estimator keeps its own ``random_state``. Exceptions from a refit propagate.

    Parameters
    ----------
    make_estimator : callable returning an unfitted clusterer
        E.g. ``lambda: sklearn.base.clone(estimator)``.
    X : ndarray or DataFrame of shape (n_samples, n_features)
        The matrix ``labels`` came from.
    labels : ndarray of shape (n_samples,)
        The full labelling, ``-1`` for noise.
    n_resamples : int
        Number of subsample refits.
    sample_fraction : float
        Share of rows in each subsample, in (0, 1].
    random_state : int
        Seed of the subsamples.
    n_jobs : int
        Worker processes for the refits (joblib); each runs its estimator on one thread. The
        subsamples are drawn before the refits, so the result does not depend on it.

    Returns
    -------
    dict
        ``cluster/stability_ari`` (mean, 1 = identical partitions, ~0 = chance) and
        ``cluster/stability_ari_std`` (population standard deviation over resamples).
    """
    if n_resamples < 1 or not 0 < sample_fraction <= 1:
        raise ValueError("need n_resamples >= 1 and 0 < sample_fraction <= 1")
    labels = np.asarray(labels)
    n = len(labels)
    size = max(2, round(sample_fraction * n))
    rng = np.random.default_rng(random_state)
    samples = [np.sort(rng.choice(n, size=size, replace=False)) for _ in range(n_resamples)]
    if n_jobs == 1:
        refits = [_refit(make_estimator(), X, rows) for rows in samples]
    else:
        from joblib import Parallel, delayed, parallel_config

        with parallel_config(backend="loky", inner_max_num_threads=1):
            refits = Parallel(n_jobs=min(n_jobs, n_resamples))(
                delayed(_refit)(make_estimator(), X, rows) for rows in samples)
    scores = [adjusted_rand_score(labels[rows], refit) for rows, refit in zip(samples, refits, strict=True)]
    return {
        "cluster/stability_ari": float(np.mean(scores)),
        "cluster/stability_ari_std": float(np.std(scores)),
    }


def _refit(estimator: BaseEstimator, X, rows: np.ndarray) -> np.ndarray:
    """Labels of a fresh estimator fitted on the given rows of ``X``."""
    subset = X.iloc[rows] if hasattr(X, "iloc") else np.asarray(X)[rows]
    return np.asarray(estimator.fit_predict(subset))


def _shares(labels: np.ndarray) -> dict[str, float]:
    """Noise fraction, cluster count and extreme cluster shares (of all points)."""
    n = max(len(labels), 1)
    sizes = np.unique(labels[labels != NOISE], return_counts=True)[1]
    return {
        "cluster/noise_fraction": float(np.sum(labels == NOISE) / n) if len(labels) else np.nan,
        "cluster/n_clusters": float(len(sizes)),
        "cluster/min_cluster_share": float(sizes.min() / n) if len(sizes) else np.nan,
        "cluster/max_cluster_share": float(sizes.max() / n) if len(sizes) else np.nan,
        "cluster/size_balance": _balance(sizes),
    }


def _balance(sizes: np.ndarray) -> float:
    """Normalised entropy of the segment sizes: 1 when all are equal, near 0 when one dominates.

    One number for "are the segments of workable sizes", which the smallest and largest shares
    only bound; undefined (NaN) with fewer than two segments.
    """
    if len(sizes) < 2:
        return np.nan
    shares = sizes / sizes.sum()
    return float(-(shares * np.log(shares)).sum() / np.log(len(sizes)))


def size_counts(labels) -> dict[str, float]:
    """Customers per segment as ``cluster/size_<label>`` (``cluster/size_noise`` for -1)."""
    values, counts = np.unique(np.asarray(labels), return_counts=True)
    return {f"cluster/size_{'noise' if v == NOISE else v}": float(c)
            for v, c in zip(values, counts, strict=True)}


def _separation_metrics(X, labels, sample_size, random_state, reasons) -> dict[str, float]:
    """Silhouette (sampled), Calinski-Harabasz and Davies-Bouldin on non-noise points."""
    keep = labels != NOISE
    X, labels = X[keep], labels[keep]
    n_clusters = len(np.unique(labels))
    if n_clusters >= len(labels):
        reasons.append("every clustered customer is alone in its cluster")
        return {}
    metrics = {
        "cluster/calinski_harabasz": float(calinski_harabasz_score(X, labels)),
        "cluster/davies_bouldin": float(davies_bouldin_score(X, labels)),
    }
    rows = _sample(len(labels), sample_size, random_state)
    if 2 <= len(np.unique(labels[rows])) < len(rows):
        metrics["cluster/silhouette"] = float(silhouette_score(X[rows], labels[rows]))
    else:
        reasons.append(f"silhouette sample of {len(rows)} points has too few clusters")
    return metrics


def _dbcv(X, labels, sample_size, random_state, reasons) -> float:
    """DBCV on a seeded sample; tiny sampled clusters become noise (see evaluate_clustering)."""
    rows = _sample(len(labels), sample_size, random_state)
    sampled = labels[rows]
    ids, counts = np.unique(sampled[sampled != NOISE], return_counts=True)
    big = ids[counts >= _DBCV_MIN_POINTS]
    if len(big) < 2:
        reasons.append(f"DBCV sample has fewer than 2 clusters of {_DBCV_MIN_POINTS}+ points")
        return np.nan
    # validity_index wants labels 0..k-1 (it loops to labels.max()) and float64 (Cython MST).
    dense = np.where(np.isin(sampled, big), np.searchsorted(big, sampled), NOISE)
    try:
        with np.errstate(all="ignore"), warnings.catch_warnings():
            warnings.simplefilter("ignore", RuntimeWarning)
            score = float(validity_index(np.ascontiguousarray(X[rows]), dense.astype(np.intp)))
    except (ValueError, AssertionError, ZeroDivisionError) as err:
        reasons.append(f"DBCV failed: {err}")
        return np.nan
    if not np.isfinite(score):
        reasons.append("DBCV is not finite (e.g. a cluster of identical points)")
        return np.nan
    return score


def _sample(n: int, size: int, random_state: int) -> np.ndarray:
    """Sorted row indices of a seeded uniform sample of at most ``size`` of ``n`` rows."""
    if n <= size:
        return np.arange(n)
    return np.sort(np.random.default_rng(random_state).choice(n, size=size, replace=False))
