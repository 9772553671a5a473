"""Clustering metrics on known inputs, degenerate labellings, BIC and stability."""

from __future__ import annotations

import math

import numpy as np
import pytest
from sklearn.base import BaseEstimator, ClusterMixin, clone
from sklearn.cluster import KMeans
from sklearn.datasets import make_blobs
from sklearn.metrics import calinski_harabasz_score, davies_bouldin_score, silhouette_score
from sklearn.mixture import GaussianMixture

from segmentlab.segmentation.evaluation import DOMINANT_SHARE, bic, evaluate_clustering, stability

QUALITY = ["cluster/silhouette", "cluster/calinski_harabasz", "cluster/davies_bouldin",
           "cluster/dbcv"]


@pytest.fixture(scope="module")
def blobs():
    return make_blobs(n_samples=400, n_features=3, centers=4, cluster_std=0.4, random_state=1)


def test_perfect_blobs_score_well(blobs):
    X, y = blobs
    metrics, reasons = evaluate_clustering(X, y, truth=y)
    assert reasons == []
    assert metrics["cluster/ari_truth"] == pytest.approx(1.0)
    assert metrics["cluster/nmi_truth"] == pytest.approx(1.0)
    assert metrics["cluster/silhouette"] > 0.7
    assert metrics["cluster/dbcv"] > 0.5
    assert metrics["cluster/davies_bouldin"] < 0.5
    assert metrics["cluster/n_clusters"] == 4
    assert metrics["cluster/noise_fraction"] == 0


def test_relabelled_truth_gives_ari_one(blobs):
    X, y = blobs
    renamed = np.array([7, 3, 11, 0])[y]  # same partition, other label values
    metrics, _ = evaluate_clustering(X, renamed, truth=y)
    assert metrics["cluster/ari_truth"] == pytest.approx(1.0)
    shuffled = np.random.default_rng(0).permutation(y)
    assert evaluate_clustering(X, shuffled, truth=y)[0]["cluster/ari_truth"] < 0.1


def test_scores_match_sklearn_on_non_noise_points(blobs):
    X, y = blobs
    labels = y.copy()
    labels[::10] = -1
    metrics, reasons = evaluate_clustering(X, labels)
    kept = labels != -1
    assert reasons == []
    assert metrics["cluster/silhouette"] == pytest.approx(silhouette_score(X[kept], labels[kept]))
    assert metrics["cluster/calinski_harabasz"] == pytest.approx(
        calinski_harabasz_score(X[kept], labels[kept]))
    assert metrics["cluster/davies_bouldin"] == pytest.approx(
        davies_bouldin_score(X[kept], labels[kept]))
    assert metrics["cluster/noise_fraction"] == pytest.approx(np.mean(labels == -1))


def test_shares_on_hand_made_labelling():
    labels = np.array([0] * 5 + [1] * 3 + [2] * 2 + [-1] * 2)
    X = np.random.default_rng(0).normal(size=(len(labels), 2))
    metrics, _ = evaluate_clustering(X, labels)
    assert metrics["cluster/n_clusters"] == 3  # noise is not a cluster
    assert metrics["cluster/min_cluster_share"] == pytest.approx(2 / 12)
    assert metrics["cluster/max_cluster_share"] == pytest.approx(5 / 12)
    assert metrics["cluster/noise_fraction"] == pytest.approx(2 / 12)
    shares = np.array([5, 3, 2]) / 10  # balance ignores noise
    assert metrics["cluster/size_balance"] == pytest.approx(-(shares * np.log(shares)).sum() / np.log(3))


@pytest.mark.parametrize(("labels", "balance"), [([0, 0, 1, 1, 2, 2], 1.0), ([0] * 6, np.nan),
                                                  ([0] * 999 + [1], 0.0114)])
def test_size_balance_is_one_for_equal_sizes_and_low_when_one_dominates(labels, balance):
    X = np.random.default_rng(0).normal(size=(len(labels), 2))
    value = evaluate_clustering(X, np.array(labels))[0]["cluster/size_balance"]
    assert (np.isnan(value) and np.isnan(balance)) or value == pytest.approx(balance, abs=1e-3)


def test_sampled_silhouette_is_seeded_and_close(blobs):
    X, y = blobs
    full = evaluate_clustering(X, y)[0]["cluster/silhouette"]
    a = evaluate_clustering(X, y, sample_size=150, random_state=5)[0]["cluster/silhouette"]
    b = evaluate_clustering(X, y, sample_size=150, random_state=5)[0]["cluster/silhouette"]
    c = evaluate_clustering(X, y, sample_size=150, random_state=6)[0]["cluster/silhouette"]
    assert a == b and a != c
    assert a == pytest.approx(full, abs=0.05)


def test_dbcv_sampled_seeded_and_float32_safe(blobs):
    X, y = blobs
    first = evaluate_clustering(X.astype(np.float32), y, dbcv_sample=120)[0]["cluster/dbcv"]
    again = evaluate_clustering(X.astype(np.float32), y, dbcv_sample=120)[0]["cluster/dbcv"]
    assert math.isfinite(first) and first == again


def test_dbcv_survives_tiny_clusters(blobs):
    X, y = blobs
    labels = y.copy()
    labels[:2] = 9  # a two-point cluster, and a singleton below
    labels[2] = 10
    metrics, reasons = evaluate_clustering(X, labels)
    assert math.isfinite(metrics["cluster/dbcv"]), reasons


@pytest.mark.parametrize(
    ("make_labels", "reason"),
    [
        (lambda n: np.zeros(n, dtype=int), "single cluster"),
        (lambda n: np.full(n, -1), "all noise"),
        (lambda n: np.where(np.arange(n) < round(0.97 * n), 0, 1), "97.0%"),
    ],
    ids=["single", "all-noise", "dominant"],
)
def test_degenerate_labellings_give_nan_and_reasons(make_labels, reason, blobs):
    X, y = blobs
    labels = make_labels(len(X))
    metrics, reasons = evaluate_clustering(X, labels, truth=y)
    assert any(reason in r for r in reasons), reasons
    for key in QUALITY:
        assert math.isnan(metrics[key]), key
    assert math.isfinite(metrics["cluster/ari_truth"])  # comparing to truth stays defined


def test_dominance_threshold_and_shares(blobs):
    X, _ = blobs
    n = len(X)
    labels = np.where(np.arange(n) < round(0.97 * n), 0, 1)
    metrics, _ = evaluate_clustering(X, labels)
    assert metrics["cluster/max_cluster_share"] == pytest.approx(np.mean(labels == 0))
    assert metrics["cluster/max_cluster_share"] > DOMINANT_SHARE
    all_noise, _ = evaluate_clustering(X, np.full(n, -1))
    assert all_noise["cluster/n_clusters"] == 0 and all_noise["cluster/noise_fraction"] == 1
    assert math.isnan(all_noise["cluster/min_cluster_share"])


def test_non_finite_features_and_bad_shapes(blobs):
    X, y = blobs
    X = X.copy()
    X[0, 0] = np.nan
    metrics, reasons = evaluate_clustering(X, y)
    assert math.isnan(metrics["cluster/silhouette"]) and any("NaN" in r for r in reasons)
    with pytest.raises(ValueError):
        evaluate_clustering(X, y[:-1])


def test_bic_prefers_the_true_number_of_components(blobs):
    X, _ = blobs
    scores = {k: bic(GaussianMixture(k, random_state=0).fit(X), X)["cluster/bic"] for k in (1, 4)}
    assert scores[4] < scores[1]
    model = GaussianMixture(4, random_state=0).fit(X)
    assert bic(model, X)["cluster/bic"] == pytest.approx(model.bic(X))


def test_stability_of_separated_kmeans_is_one(blobs):
    X, _ = blobs
    estimator = KMeans(n_clusters=4, n_init=3, random_state=0)
    labels = estimator.fit_predict(X)
    result = stability(lambda: clone(estimator), X, labels, n_resamples=3)
    assert result["cluster/stability_ari"] > 0.99
    assert result["cluster/stability_ari_std"] < 0.01


class _Recorder(ClusterMixin, BaseEstimator):
    """Random labels; records what each fit saw, to check how stability resamples."""

    seen: list = []

    def __init__(self, random_state=7):
        self.random_state = random_state

    def fit(self, X, y=None):
        _Recorder.seen.append((self.random_state, X[:, 0].copy()))
        self.labels_ = np.random.default_rng(len(_Recorder.seen)).integers(0, 4, len(X))
        return self


def test_stability_varies_only_the_subsample(blobs):
    X, y = blobs
    X = np.column_stack([np.arange(len(X), dtype=float), X])  # first column = row id
    _Recorder.seen = []
    result = stability(_Recorder, X, y, n_resamples=4, sample_fraction=0.5, random_state=1)
    assert [seed for seed, _ in _Recorder.seen] == [7] * 4  # estimator's own seed kept
    rows = [ids for _, ids in _Recorder.seen]
    assert all(len(r) == len(X) // 2 and len(np.unique(r)) == len(r) for r in rows)
    assert not np.array_equal(rows[0], rows[1])
    assert abs(result["cluster/stability_ari"]) < 0.1  # random refits agree only by chance
    with pytest.raises(ValueError):
        stability(_Recorder, X, y, sample_fraction=0)
