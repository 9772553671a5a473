"""Will a customer buy again in the next ``horizon_days``? Models learnt on pooled cutoffs.

A model learns from the rows of many training cutoffs (features from the lines strictly before
each, labels from the ``horizon_days`` after it) and is scored at a later cutoff that no
training label reaches. Each cutoff gets a fresh feature union fitted on its own history only:
recency, tenure and the snapshot are measured from the cutoff, as on the day of deployment, and
``RepurchaseModel`` does exactly the same with the transactions it is given.

`RepurchaseLearner` fits and scores such models for any cutoff of a `CutoffPlan`
(`selection.judge` puts them beside the baselines). Segments, when asked for, are re-clustered at
every cutoff and matched to the latest training cutoff's segments (`segments.SegmentEncoder`).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
import pandas as pd
from sklearn.base import BaseEstimator, clone
from sklearn.pipeline import FeatureUnion, Pipeline

from segmentlab.prediction.calibration import fit_calibrated
from segmentlab.prediction.pooling import CUTOFF, CutoffFrames, PooledFrame
from segmentlab.prediction.scoring import score_predictions
from segmentlab.prediction.segments import SEGMENT, SegmentEncoder
from segmentlab.prediction.windows import FUTURE_SPEND, WILL_BUY, WindowError, window_features
from segmentlab.schema import CUSTOMER_ID

__all__ = ["FUTURE_SPEND", "SEGMENT", "WILL_BUY", "WindowError", "RepurchaseLearner",
           "RepurchaseModel", "SegmentEncoder", "Scored"]


class RepurchaseModel:
    """A fitted repurchase classifier for deployment: transactions in, probability out.

    Parameters
    ----------
    union : FeatureUnion
        The feature union template (unfitted). Scoring fits a clone on the transactions given,
        as training did for each cutoff's own history.
    classifier : estimator
        Fitted on ``columns`` with target ``will_buy`` (calibrated when the run asks for it).
    columns : list of str
        Predictor columns in training order; a column a new window lacks (e.g. a country
        outside the new top list) is 0.
    horizon_days : int
        The window the probability refers to.
    segments : SegmentEncoder or None
        Re-clusters each window and one-hot encodes segments matched to the training ones.
    cutoffs : list of Timestamp
        The training cutoffs (provenance).
    """

    def __init__(self, union: FeatureUnion, classifier: BaseEstimator, columns: list[str],
                 horizon_days: int, segments: SegmentEncoder | None = None, cutoffs=()):
        self.union = union
        self.classifier = classifier
        self.columns = list(columns)
        self.horizon_days = horizon_days
        self.segments = segments
        self.cutoffs = list(cutoffs)

    def features(self, transactions: pd.DataFrame) -> pd.DataFrame:
        """The predictor frame of every purchasing customer in ``transactions``."""
        return self.encode(window_features(clone(self.union), transactions))

    def encode(self, base: pd.DataFrame, segments: pd.Series | None = None) -> pd.DataFrame:
        """Add matched segment columns to freshly fitted union output; align to ``columns``."""
        frame = base
        if self.segments is not None:
            matched = self.segments.matched(base) if segments is None else segments
            frame = base.join(self.segments.one_hot(matched))
        return frame.reindex(columns=self.columns, fill_value=0.0)

    def predict_proba(self, transactions: pd.DataFrame) -> pd.Series:
        """Probability of a purchase within ``horizon_days`` after the transactions end."""
        return self.score(self.features(transactions))

    def score(self, X: pd.DataFrame) -> pd.Series:
        proba = self.classifier.predict_proba(X[self.columns])[:, 1]
        return pd.Series(proba, index=X.index, name="repurchase_probability")


@dataclass(frozen=True)
class Scored:
    """A model's predictions on the rows of one or more scoring cutoffs.

    Attributes
    ----------
    rows : PooledFrame
        The scored rows (outcomes ``will_buy``, ``future_spend``, baselines…).
    X : DataFrame
        Their predictor frame, in the model's columns.
    probability : ndarray
    segments : Series or None
        Matched segment per row (training-window labels), with segment predictors.
    """

    rows: PooledFrame
    X: pd.DataFrame
    probability: np.ndarray
    segments: pd.Series | None

    @property
    def y(self) -> np.ndarray:
        return self.rows.y

    def metrics(self, prefix: str = "predict/") -> dict[str, float]:
        return score_predictions(self.y, self.probability, prefix)


class RepurchaseLearner:
    """Fits repurchase models on the pooled rows of training cutoffs and scores them elsewhere.

    Parameters
    ----------
    frames : CutoffFrames
        The per-cutoff rows, shared by every fit.
    make_features : callable
        Returns the unfitted feature union (kept by the fitted models for deployment).
    population : {"active", "all"}
        Which customers are rows, for training and for scoring alike.
    segmenter_factory : callable or None
        A fresh segmenter; with it the matched segment becomes one-hot predictors.
    calibration : {"none", "sigmoid", "isotonic"}
        See `calibration.fit_calibrated` (folds grouped by customer).
    """

    def __init__(self, frames: CutoffFrames, make_features: Callable[[], FeatureUnion],
                 population: str = "active", segmenter_factory: Callable[[], Pipeline] | None = None,
                 calibration: str = "none"):
        self.frames, self.make_features = frames, make_features
        self.population, self.segmenter_factory = population, segmenter_factory
        self.calibration = calibration

    def rows(self, cutoffs, population: str | None = None, labels_before=None) -> PooledFrame:
        return self.frames.stack(cutoffs, population or self.population, labels_before)

    def fit(self, classifier: BaseEstimator, cutoffs, labels_before=None,
            calibration: str | None = None) -> tuple[RepurchaseModel, pd.DataFrame, PooledFrame]:
        """Train on the rows of ``cutoffs``; returns the model, its predictor frame and the rows."""
        rows = self.rows(cutoffs, labels_before=labels_before)
        if rows.frame[WILL_BUY].nunique() < 2:
            raise WindowError(f"training cutoffs {_dates(cutoffs)}: every customer has the same target")
        encoder = None
        if self.segmenter_factory is not None:
            latest = rows.frame[CUTOFF].max()
            reference = self.frames.features(latest)
            encoder = SegmentEncoder(self.segmenter_factory()).fit(
                reference, self.frames.clusters(latest, self.segmenter_factory))
        X = self._design(rows, encoder)[0]
        fitted = fit_calibrated(classifier, X, rows.y, rows.groups, calibration or self.calibration)
        model = RepurchaseModel(self.make_features(), fitted, list(X.columns),
                                self.frames.horizon_days, encoder, sorted(set(rows.frame[CUTOFF])))
        return model, X, rows

    def score(self, model: RepurchaseModel, cutoffs, population: str | None = None) -> Scored:
        """``model``'s probabilities on the rows of ``cutoffs`` (in ``population``)."""
        rows = self.rows(cutoffs, population)
        if rows.frame.empty:
            raise WindowError(f"cutoffs {_dates(cutoffs)}: no customer of population "
                              f"{population or self.population} to score")
        X, segments = self._design(rows, model.segments)
        X = X.reindex(columns=model.columns, fill_value=0.0)
        return Scored(rows, X, model.score(X).to_numpy(), segments)

    def _design(self, rows: PooledFrame, encoder: SegmentEncoder | None):
        """Predictors of stacked rows: features, plus matched segments cutoff by cutoff."""
        X = rows.X()
        if encoder is None:
            return X, None
        matched = []
        for cutoff, part in rows.frame.groupby(CUTOFF, sort=True):
            window = self.frames.features(cutoff)
            labels = encoder.matched(window, self.frames.clusters(cutoff, self.segmenter_factory))
            matched.append(labels.reindex(part[CUSTOMER_ID]).set_axis(part.index))
        segments = pd.concat(matched).reindex(rows.frame.index)
        return X.join(encoder.one_hot(segments)), segments


def _dates(cutoffs) -> str:
    dates = sorted(pd.Timestamp(c).date() for c in cutoffs)
    return f"{dates[0]}..{dates[-1]}" if len(dates) > 1 else str(dates[0]) if dates else "(none)"
