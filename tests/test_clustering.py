"""Clusterer configs build and cluster; SampledAgglomerative samples and assigns correctly."""

from __future__ import annotations

from pathlib import Path

import hdbscan
import numpy as np
import pytest
from hydra.utils import instantiate
from omegaconf import OmegaConf
from sklearn.base import clone
from sklearn.cluster import AgglomerativeClustering
from sklearn.datasets import make_blobs
from sklearn.metrics import adjusted_rand_score
from sklearn.preprocessing import StandardScaler
from sklearn.utils.estimator_checks import parametrize_with_checks

from segmentlab.segmentation.clustering import SampledAgglomerative

CLUSTERER_CONFIGS = sorted((Path(__file__).parents[1] / "configs" / "clusterer").glob("*.yaml"))


def _build(path: Path, **overrides):
    """Instantiate a clusterer file the way the root config would (``seed`` at the top)."""
    node = OmegaConf.merge(OmegaConf.load(path), overrides)
    root = OmegaConf.create({"seed": 0, "clusterer": node})
    return instantiate(root.clusterer, _convert_="all")


@pytest.fixture(scope="module")
def blobs():
    return make_standard_blobs(5)


def make_standard_blobs(centers: int):
    """Well-separated blobs, standardised like the pipeline's StandardScaler step does."""
    X, y = make_blobs(n_samples=600, n_features=4, centers=centers, cluster_std=0.6, random_state=0)
    return StandardScaler().fit_transform(X), y


def test_every_clusterer_has_a_config():
    assert {p.stem for p in CLUSTERER_CONFIGS} >= {
        "kmeans", "agglomerative", "dbscan", "hdbscan", "gmm"}


@pytest.mark.parametrize("path", CLUSTERER_CONFIGS, ids=lambda p: p.stem)
def test_config_builds_and_recovers_blobs(path):
    config = OmegaConf.load(path)
    # As many blobs as the file asks for segments (density-based files find their own number).
    X, y = make_standard_blobs(config.get("n_clusters") or config.get("n_components") or 5)
    # DBSCAN's eps is a distance sized for the default 34-column feature space; these blobs have 4.
    estimator = _build(path, eps=0.5) if "eps" in config else _build(path)
    labels = estimator.fit_predict(X)
    assert labels.shape == (len(X),)
    assert np.issubdtype(labels.dtype, np.integer) and labels.min() >= -1
    # Defaults are meant for standardised features, so clear blobs must come out as they are.
    assert adjusted_rand_score(y, labels) > 0.95
    if "random_state" in estimator.get_params():
        assert estimator.get_params()["random_state"] == 0  # ${seed} interpolated
    # repr, not get_params(): hdbscan's default memory=Memory(None) has no value equality.
    assert repr(clone(estimator)) == repr(estimator)


def test_agglomerative_config_with_sampling():
    path = CLUSTERER_CONFIGS[0].with_name("agglomerative.yaml")
    X, y = make_standard_blobs(OmegaConf.load(path).n_clusters)
    estimator = _build(path, max_samples=120)
    labels = estimator.fit_predict(X)
    assert len(estimator.sample_indices_) == 120
    assert adjusted_rand_score(y, labels) > 0.95


def test_hdbscan_config_keeps_prediction_data(blobs):
    X, _ = blobs
    estimator = _build(CLUSTERER_CONFIGS[0].with_name("hdbscan.yaml"))
    estimator.fit(X)
    predicted, strengths = hdbscan.approximate_predict(estimator, X[:10])
    np.testing.assert_array_equal(predicted, estimator.labels_[:10])
    assert strengths.shape == (10,)


@pytest.mark.parametrize("linkage", ["ward", "average", "complete"])
def test_sampled_agglomerative_assigns_every_point(linkage, blobs):
    X, y = blobs
    model = SampledAgglomerative(n_clusters=5, linkage=linkage, max_samples=100, random_state=3)
    labels = model.fit_predict(X)
    assert labels.shape == (len(X),)
    assert set(np.unique(labels)) == set(range(5))  # no noise, no missing cluster
    sample = model.sample_indices_
    assert len(sample) == 100 and len(np.unique(sample)) == 100
    # Unsampled rows go to the nearest centroid of the sampled members.
    centroids = np.vstack([X[sample][labels[sample] == k].mean(axis=0) for k in range(5)])
    np.testing.assert_allclose(model.cluster_centers_, centroids)
    rest = np.setdiff1d(np.arange(len(X)), sample)
    nearest = np.linalg.norm(X[rest, None, :] - centroids[None], axis=2).argmin(axis=1)
    np.testing.assert_array_equal(labels[rest], nearest)
    assert adjusted_rand_score(y, labels) > 0.95


def test_sampled_agglomerative_without_sampling_equals_sklearn(blobs):
    X, _ = blobs
    labels = SampledAgglomerative(n_clusters=4, linkage="average", max_samples=len(X)).fit_predict(X)
    expected = AgglomerativeClustering(n_clusters=4, linkage="average").fit_predict(X)
    np.testing.assert_array_equal(labels, expected)


def test_sampled_agglomerative_sample_follows_seed(blobs):
    X, _ = blobs

    def sample(seed):
        model = SampledAgglomerative(max_samples=50, random_state=seed)
        return model.fit(X).sample_indices_

    np.testing.assert_array_equal(sample(1), sample(1))
    assert not np.array_equal(sample(1), sample(2))


def test_sampled_agglomerative_clones_and_checks_params(blobs):
    X, _ = blobs
    model = SampledAgglomerative(n_clusters=3, linkage="complete", max_samples=200, random_state=0)
    assert clone(model).get_params() == model.get_params()
    with pytest.raises(ValueError, match="max_samples"):
        SampledAgglomerative(n_clusters=10, max_samples=5).fit(X)
    with pytest.raises(ValueError, match="linkage"):
        SampledAgglomerative(linkage="centroid").fit(X)


@parametrize_with_checks([SampledAgglomerative(n_clusters=3, max_samples=50)])
def test_sampled_agglomerative_follows_the_scikit_learn_contract(estimator, check):
    check(estimator)
