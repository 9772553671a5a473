"""Clusterers the libraries do not provide in a shape we can use directly.

Everything else in ``configs/clusterer/`` names a library class (``KMeans``, ``DBSCAN``,
``hdbscan.HDBSCAN``, ``GaussianMixture``); the rest of segmentlab relies only on
``fit_predict(X) -> labels`` with ``-1`` meaning noise.
"""

from __future__ import annotations

import numpy as np
from sklearn.base import BaseEstimator, ClusterMixin
from sklearn.cluster import AgglomerativeClustering
from sklearn.metrics import pairwise_distances_argmin
from sklearn.utils.validation import check_random_state, validate_data

_LINKAGES = ("ward", "average", "complete", "single")


class SampledAgglomerative(ClusterMixin, BaseEstimator):
    """Agglomerative clustering that stays within memory on many customers.

    ``AgglomerativeClustering`` builds a condensed distance matrix, O(n^2) in memory and
    time: 10,000 rows x 10 columns already take ~8 s and ~1 GB with ward linkage. Above
    ``max_samples`` rows this estimator therefore fits on a seeded uniform sample of
    ``max_samples`` rows and assigns every other row to the nearest cluster centroid
    (Euclidean mean of the sampled members). Sampled rows keep their agglomerative labels.
    Centroid assignment suits ward linkage, whose clusters are compact; with ``single`` or
    ``average`` linkage elongated clusters may be cut differently for the unsampled rows.

    Parameters
    ----------
    n_clusters : int
        Number of clusters.
    linkage : {"ward", "average", "complete", "single"}
        Merge criterion, passed to ``sklearn.cluster.AgglomerativeClustering``.
    max_samples : int
        Largest number of rows clustered hierarchically; more rows trigger sampling.
    random_state : int, RandomState or None
        Seed of the sample drawn when there are more than ``max_samples`` rows.

    Attributes
    ----------
    labels_ : ndarray of shape (n_samples,)
        Cluster of every row, ``0..n_clusters-1`` (never noise).
    cluster_centers_ : ndarray of shape (n_clusters, n_features)
        Mean of the hierarchically clustered rows of each cluster.
    sample_indices_ : ndarray
        Rows that were clustered hierarchically (all rows when no sampling happened).
    """

    def __init__(
        self,
        n_clusters: int = 5,
        linkage: str = "ward",
        max_samples: int = 10000,
        random_state: int | np.random.RandomState | None = None,
    ):
        self.n_clusters = n_clusters
        self.linkage = linkage
        self.max_samples = max_samples
        self.random_state = random_state

    def fit(self, X, y=None) -> SampledAgglomerative:
        """Cluster ``X``, sampling first when it has more than ``max_samples`` rows.

        Parameters
        ----------
        X : array-like of shape (n_samples, n_features)
            Customer features, standardised.
        y : ignored

        Returns
        -------
        self : SampledAgglomerative
        """
        X = validate_data(self, X, dtype=np.float64)
        self._check_params(len(X))
        n = len(X)
        if n > self.max_samples:
            rng = check_random_state(self.random_state)
            sample = np.sort(rng.choice(n, size=self.max_samples, replace=False))
        else:
            sample = np.arange(n)
        model = AgglomerativeClustering(n_clusters=self.n_clusters, linkage=self.linkage)
        sample_labels = model.fit_predict(X[sample])
        self.cluster_centers_ = np.vstack(
            [X[sample[sample_labels == k]].mean(axis=0) for k in range(self.n_clusters)]
        )
        labels = pairwise_distances_argmin(X, self.cluster_centers_)
        labels[sample] = sample_labels
        self.labels_ = labels.astype(np.intp)
        self.sample_indices_ = sample
        return self

    def fit_predict(self, X, y=None) -> np.ndarray:
        """Fit and return the cluster of every row (see ``fit``)."""
        return self.fit(X).labels_

    def _check_params(self, n_rows: int) -> None:
        """Fail early with a message naming the bad argument."""
        if self.linkage not in _LINKAGES:
            raise ValueError(f"linkage must be one of {_LINKAGES}, got {self.linkage!r}")
        if self.max_samples < self.n_clusters:
            raise ValueError(
                f"max_samples ({self.max_samples}) must be at least n_clusters ({self.n_clusters})"
            )
        if n_rows < self.n_clusters:
            raise ValueError(f"{n_rows} rows cannot form n_clusters={self.n_clusters} clusters")
