"""Segments as repurchase predictors: each window's clustering matched to a reference window's.

Labels of two independent clusterings carry no shared meaning, so each window is re-clustered
and its clusters are mapped onto the reference ones by nearest centroid (Hungarian matching on
standardised feature means).
"""

from __future__ import annotations

import numpy as np
import pandas as pd
from scipy.optimize import linear_sum_assignment
from sklearn.base import clone
from sklearn.pipeline import Pipeline

from segmentlab.segmentation.evaluation import NOISE

SEGMENT = "segment"


class SegmentEncoder:
    """Fits a fresh segmenter per window and maps its clusters onto the reference ones.

    Parameters
    ----------
    segmenter : Pipeline
        Unfitted scaler -> reducer -> clusterer template, cloned for every window.
    """

    def __init__(self, segmenter: Pipeline):
        self.segmenter = segmenter

    def fit(self, reference: pd.DataFrame, labels: pd.Series | None = None) -> SegmentEncoder:
        """Cluster the reference window (or take its ``labels``, already clustered); its
        segments are the labels every window maps onto."""
        self.columns_ = list(reference.columns)
        self.scale_ = reference.std(ddof=0).replace(0.0, 1.0)
        self.labels_ = self._cluster(reference) if labels is None else _as_labels(labels, reference)
        self.centroids_ = self._centroids(reference, self.labels_)
        return self

    def _cluster(self, X: pd.DataFrame) -> pd.Series:
        labels = clone(self.segmenter).fit_predict(X.to_numpy(float))
        return pd.Series(np.asarray(labels), index=X.index, name=SEGMENT)

    def _centroids(self, X: pd.DataFrame, labels: pd.Series) -> pd.DataFrame:
        # Windows can differ in columns (behaviour's top countries): compare on the reference's.
        keep = labels != NOISE
        X = X.reindex(columns=self.columns_, fill_value=0.0)
        return (X[keep] / self.scale_).groupby(labels[keep]).mean()

    def matched(self, X: pd.DataFrame, labels: pd.Series | None = None) -> pd.Series:
        """Segments of a new window in reference labels; unmatched clusters become noise.
        ``labels``: the window's own clustering, when already computed."""
        labels = self._cluster(X) if labels is None else _as_labels(labels, X)
        mine = self._centroids(X, labels)
        cost = ((mine.to_numpy()[:, None, :] - self.centroids_.to_numpy()[None]) ** 2).sum(-1)
        rows, cols = linear_sum_assignment(cost)
        mapping = dict(zip(mine.index[rows], self.centroids_.index[cols], strict=True))
        return labels.map(lambda s: mapping.get(s, NOISE)).astype(np.int64)

    def one_hot(self, labels: pd.Series) -> pd.DataFrame:
        return pd.DataFrame({f"{SEGMENT}_{s}": (labels == s).astype(float)
                             for s in self.centroids_.index}, index=labels.index)


def _as_labels(labels, X: pd.DataFrame) -> pd.Series:
    return pd.Series(np.asarray(labels, dtype=np.int64), index=X.index, name=SEGMENT)
