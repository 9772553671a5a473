"""Will a customer buy again in the next ``horizon_days``? Judged out of time, never in-sample.

A model learns at a *train cutoff* (features from lines strictly before it, labels from the
``horizon_days`` after it) and is scored at a later *eval cutoff*, at least ``horizon_days``
after the train cutoff, so its training labels end before the period it is judged on. Each
window gets a fresh feature union fitted on its own history only: recency, tenure and the
snapshot are measured from the window's own end, as on the day of deployment, and
``RepurchaseModel`` does exactly the same with the transactions it is given.

Hyperparameters are chosen one step earlier still: ``RepurchaseValidation`` trains one horizon
before the train cutoff and scores at the train cutoff (``predict/validation_*``), so tuning never
looks at the evaluation period and ``predict/roc_auc`` stays an honest out-of-sample score.

Segments, when asked for, are re-clustered in every window and matched to the training
window's segments by nearest centroid (Hungarian matching on standardised feature means),
because labels of two independent clusterings carry no shared meaning.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from time import perf_counter

import numpy as np
import pandas as pd
from scipy.optimize import linear_sum_assignment
from sklearn.base import BaseEstimator, clone
from sklearn.linear_model import LogisticRegression
from sklearn.metrics import roc_auc_score
from sklearn.pipeline import FeatureUnion, Pipeline, make_pipeline
from sklearn.preprocessing import StandardScaler

from segmentlab.prediction.importance import gain_table, permutation_table
from segmentlab.prediction.scoring import score_predictions, score_spend
from segmentlab.prediction.windows import (
    FUTURE_SPEND,
    WILL_BUY,
    Window,
    WindowError,
    Windows,
    check_cutoffs,
    window_features,
)
from segmentlab.schema import INVOICE_DATE
from segmentlab.segmentation.evaluation import NOISE

SEGMENT = "segment"
__all__ = ["FUTURE_SPEND", "WILL_BUY", "WindowError", "RepurchaseModel", "RepurchaseResult",
           "RepurchaseValidation", "SegmentEncoder", "evaluate_repurchase"]


class RepurchaseModel:
    """A fitted repurchase classifier for deployment: transactions in, probability out.

    Parameters
    ----------
    union : FeatureUnion
        The feature union as fitted on the training window (kept for provenance). Scoring
        fits a clone on the transactions given, as the evaluation did for its own window.
    classifier : estimator
        Fitted on ``columns`` with target ``will_buy``.
    columns : list of str
        Predictor columns in training order; a column a new window lacks (e.g. a country
        outside the new top list) is 0.
    horizon_days : int
        The window the probability refers to.
    segments : SegmentEncoder or None
        Re-clusters each window and one-hot encodes segments matched to the training ones.
    """

    def __init__(self, union: FeatureUnion, classifier: BaseEstimator, columns: list[str],
                 horizon_days: int, segments: SegmentEncoder | None = None):
        self.union = union
        self.classifier = classifier
        self.columns = list(columns)
        self.horizon_days = horizon_days
        self.segments = segments

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


class SegmentEncoder:
    """Fits a fresh segmenter per window and maps its clusters onto the reference ones.

    Parameters
    ----------
    segmenter : Pipeline
        Unfitted scaler -> reducer -> clusterer template, cloned for every window.
    """

    def __init__(self, segmenter: Pipeline):
        self.segmenter = segmenter

    def fit(self, reference: pd.DataFrame) -> SegmentEncoder:
        """Cluster the reference window; its segments are the labels every window maps onto."""
        self.columns_ = list(reference.columns)
        self.scale_ = reference.std(ddof=0).replace(0.0, 1.0)
        self.labels_ = self._cluster(reference)
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

    def matched(self, X: pd.DataFrame) -> pd.Series:
        """Segments of a new window in reference labels; unmatched clusters become noise."""
        labels = self._cluster(X)
        mine = self._centroids(X, labels)
        cost = ((mine.to_numpy()[:, None, :] - self.centroids_.to_numpy()[None]) ** 2).sum(-1)
        rows, cols = linear_sum_assignment(cost)
        mapping = dict(zip(mine.index[rows], self.centroids_.index[cols], strict=True))
        return labels.map(lambda s: mapping.get(s, NOISE)).astype(np.int64)

    def one_hot(self, labels: pd.Series) -> pd.DataFrame:
        return pd.DataFrame({f"{SEGMENT}_{s}": (labels == s).astype(float)
                             for s in self.centroids_.index}, index=labels.index)


@dataclass(frozen=True)
class RepurchaseResult:
    """Out-of-time scores, tables, figures and the models of one repurchase evaluation.

    Attributes
    ----------
    metrics : dict
        ``predict/*`` scores at the eval cutoff, baselines, rolling means, timing.
    tables : dict of DataFrame
        ``importance`` (permutation, eval period), ``gain`` (XGBoost only), ``by_segment``
        (with a segmenter), ``rolling`` (with ``n_rolling``).
    model : RepurchaseModel
        Trained at the eval cutoff on the latest fully labelled window: the one to deploy.
    evaluated_model : RepurchaseModel
        Trained at the train cutoff: the one the metrics judge.
    scores : DataFrame
        Eval customers: ``repurchase_probability``, ``will_buy``, ``future_spend`` (plus
        ``predicted_spend`` with a spend regressor, and ``segment`` in training-window labels
        with a segmenter).
    """

    metrics: dict[str, float]
    tables: dict[str, pd.DataFrame]
    model: RepurchaseModel
    evaluated_model: RepurchaseModel
    scores: pd.DataFrame = field(repr=False)


@dataclass(frozen=True)
class _Round:
    metrics: dict[str, float]
    model: RepurchaseModel
    X_train: pd.DataFrame
    y_train: pd.DataFrame
    X_eval: pd.DataFrame
    y_eval: pd.DataFrame
    scores: pd.Series
    segments: pd.Series | None


def evaluate_repurchase(
    transactions: pd.DataFrame,
    make_features: Callable[[], FeatureUnion],
    classifier: BaseEstimator,
    horizon_days: int = 90,
    eval_cutoff: pd.Timestamp | str | None = None,
    train_cutoff: pd.Timestamp | str | None = None,
    segmenter_factory: Callable[[], Pipeline] | None = None,
    n_rolling: int = 0,
    random_state: int = 42,
    importance_repeats: int = 5,
    spend_regressor: BaseEstimator | None = None,
) -> RepurchaseResult:
    """Train at one cutoff, score at a later one, against two baselines.

    Parameters
    ----------
    transactions : DataFrame
        Cleaned invoice lines.
    make_features : callable
        Returns a fresh, unfitted feature union; called once per window.
    classifier : estimator
        Unfitted binary classifier with ``predict_proba``; cloned per fit.
    horizon_days : int
        Target window after each cutoff, in days.
    eval_cutoff : Timestamp, str or None
        Where predictions are judged; default ``data_end - horizon_days``.
    train_cutoff : Timestamp, str or None
        Where the model learns; default ``eval_cutoff - horizon_days`` (the latest whose
        labels end before ``eval_cutoff``; an earlier one is allowed, a later one refused).
    segmenter_factory : callable or None
        Returns a fresh unfitted scaler -> clusterer pipeline. Its matched segment becomes
        one-hot predictors and the ``by_segment`` table.
    n_rolling : int
        0, or at least 3 evaluations whose cutoffs step back ``horizon_days`` each time;
        ``predict/rolling_roc_auc_std`` is the sample standard deviation over them. The oldest
        rounds train on little history (see ``train_history_days`` in the table).
    random_state : int
        Seed of the permutation importance.
    importance_repeats : int
        Permutations per feature; 0 skips the importance table and figure.
    spend_regressor : estimator or None
        Learns ``future_spend`` on the training window; scored on the eval window by
        ``predict/spend_mae``, ``predict/spend_spearman`` and ``predict/spend_total_ratio``,
        beside the naive last-period forecast (``predict/spend_last_period_*``).

    Returns
    -------
    RepurchaseResult
    """
    start = perf_counter()
    if n_rolling and n_rolling < 3:
        raise ValueError(f"n_rolling must be 0 or at least 3, got {n_rolling}")
    eval_cutoff, train_cutoff = check_cutoffs(transactions, horizon_days, eval_cutoff, train_cutoff)
    windows = Windows(transactions, make_features, horizon_days)
    main = _evaluate_pair(windows, classifier, train_cutoff, eval_cutoff, segmenter_factory)
    metrics, tables = dict(main.metrics), {}
    metrics.update(RepurchaseValidation(windows, train_cutoff).score(classifier, segmenter_factory))
    if importance_repeats:
        tables["importance"] = permutation_table(main.model.classifier, main.X_eval,
                                                 main.y_eval[WILL_BUY], importance_repeats, random_state)
    if (gain := gain_table(main.model.classifier, main.model.columns)) is not None:
        tables["gain"] = gain
    if main.segments is not None:
        tables["by_segment"] = _by_segment(main)
    if n_rolling:
        tables["rolling"] = _rolling(windows, classifier, train_cutoff, eval_cutoff, horizon_days,
                                     n_rolling, segmenter_factory, main)
        for key in ["roc_auc", "recency_roc_auc", "rfm_logreg_roc_auc"]:
            metrics[f"predict/rolling_{key}_mean"] = float(tables["rolling"][key].mean())
        metrics["predict/rolling_roc_auc_std"] = float(tables["rolling"]["roc_auc"].std())
    scores = main.y_eval.assign(repurchase_probability=main.scores)
    if spend_regressor is not None:
        spend = _predict_spend(main, spend_regressor)
        actual = main.y_eval[FUTURE_SPEND].to_numpy()
        metrics.update(score_spend(actual, spend))
        metrics.update(score_spend(actual, windows.get(eval_cutoff).last_spend.to_numpy(),
                                   prefix="predict/spend_last_period_"))
        scores["predicted_spend"] = spend
    final = _fit_model(windows.get(eval_cutoff), classifier, segmenter_factory, horizon_days)[0]
    if main.segments is not None:
        scores[SEGMENT] = main.segments
    metrics["time/predict_seconds"] = perf_counter() - start
    return RepurchaseResult(metrics, tables, final, main.model, scores)


class RepurchaseValidation:
    """Scores a classifier one horizon before the evaluation period: what tuning may look at.

    The model learns at ``train_cutoff - horizon_days`` and is scored at ``train_cutoff``; every
    label it sees or is judged on ends before the eval cutoff. Build it once per study: the
    feature windows are computed on first use and shared by every trial.

    Parameters
    ----------
    windows : Windows
        The feature windows (see :meth:`of`).
    train_cutoff : Timestamp
        Where the evaluated model learns; the validation model is scored here.
    """

    def __init__(self, windows: Windows, train_cutoff: pd.Timestamp):
        self.windows = windows
        self.score_cutoff = pd.Timestamp(train_cutoff)
        self.fit_cutoff = self.score_cutoff - pd.Timedelta(days=windows.horizon_days)

    @classmethod
    def of(cls, transactions: pd.DataFrame, make_features: Callable[[], FeatureUnion],
           horizon_days: int = 90) -> RepurchaseValidation:
        """The validation of the default cutoffs (as ``evaluate_repurchase`` chooses them)."""
        train_cutoff = check_cutoffs(transactions, horizon_days, None, None)[1]
        return cls(Windows(transactions, make_features, horizon_days), train_cutoff)

    def check(self) -> None:
        """Raise WindowError now if either validation window has nothing to learn or judge."""
        self.windows.get(self.fit_cutoff)
        self.windows.get(self.score_cutoff)

    def score(self, classifier: BaseEstimator, segmenter_factory=None) -> dict[str, float]:
        """``predict/validation_*`` metrics; NaN when the data starts too late for the window."""
        try:
            self.check()
        except WindowError:
            return {f"predict/validation_{k}": float("nan") for k in ("roc_auc", "pr_auc", "brier")}
        pair = _evaluate_pair(self.windows, classifier, self.fit_cutoff, self.score_cutoff,
                              segmenter_factory)
        return {key.replace("predict/", "predict/validation_", 1): value
                for key, value in pair.metrics.items() if key != "predict/n_features"}


def _fit_model(window: Window, classifier: BaseEstimator, segmenter_factory,
               horizon_days: int) -> tuple[RepurchaseModel, pd.DataFrame]:
    """Train on one window; returns the model and the predictor frame it saw."""
    segments, X = None, window.base
    if segmenter_factory is not None:
        segments = SegmentEncoder(segmenter_factory()).fit(window.base)
        X = X.join(segments.one_hot(segments.labels_))
    model = clone(classifier).fit(X, window.target[WILL_BUY].to_numpy())
    return RepurchaseModel(window.union, model, list(X.columns), horizon_days, segments), X


def _evaluate_pair(windows: Windows, classifier: BaseEstimator, train_cutoff: pd.Timestamp,
                   eval_cutoff: pd.Timestamp, segmenter_factory) -> _Round:
    """Train at ``train_cutoff``, score at ``eval_cutoff`` with the baselines."""
    train, test = windows.get(train_cutoff), windows.get(eval_cutoff)
    model, X_train = _fit_model(train, classifier, segmenter_factory, windows.horizon_days)
    segments = None if model.segments is None else model.segments.matched(test.base)
    X_eval = model.encode(test.base, segments)
    scores = model.score(X_eval)
    y = test.target[WILL_BUY].to_numpy()
    metrics = score_predictions(y, scores.to_numpy())
    # Recency alone: fewer days since the last purchase, higher score (log1p keeps the order).
    metrics["predict/recency_roc_auc"] = float(roc_auc_score(y, -test.rfm["log_recency"]))
    rfm_model = make_pipeline(StandardScaler(), LogisticRegression())
    rfm_model.fit(train.rfm, train.target[WILL_BUY])
    rfm_scores = rfm_model.predict_proba(test.rfm)[:, 1]
    metrics["predict/rfm_logreg_roc_auc"] = float(roc_auc_score(y, rfm_scores))
    metrics["predict/n_features"] = float(len(model.columns))
    return _Round(metrics, model, X_train, train.target, X_eval, test.target, scores, segments)


def _rolling(windows: Windows, classifier: BaseEstimator, train_cutoff: pd.Timestamp,
             eval_cutoff: pd.Timestamp, horizon_days: int, n_rolling: int, segmenter_factory,
             first: _Round) -> pd.DataFrame:
    """One row of scores per cutoff pair, stepping back ``horizon_days`` each time."""
    rows = []
    for i in range(n_rolling):
        shift = pd.Timedelta(days=i * horizon_days)
        pair = first if i == 0 else _evaluate_pair(windows, classifier, train_cutoff - shift,
                                                   eval_cutoff - shift, segmenter_factory)
        # Short training histories (the oldest rounds) explain most of the spread.
        history = (train_cutoff - shift - windows.transactions[INVOICE_DATE].min()).days
        rows.append({"train_cutoff": train_cutoff - shift, "eval_cutoff": eval_cutoff - shift,
                     "train_history_days": history,
                     **{k.removeprefix("predict/"): v for k, v in pair.metrics.items()}})
    return pd.DataFrame(rows)


def _by_segment(pair: _Round) -> pd.DataFrame:
    """Scores per matched segment of the eval window."""
    frame = pd.DataFrame({SEGMENT: pair.segments, "y": pair.y_eval[WILL_BUY],
                          "p": pair.scores})
    rows = []
    for segment, group in frame.groupby(SEGMENT, sort=True):
        both = group["y"].nunique() == 2
        rows.append({SEGMENT: segment, "n_customers": len(group),
                     "base_rate": group["y"].mean(), "mean_probability": group["p"].mean(),
                     "roc_auc": roc_auc_score(group["y"], group["p"]) if both else np.nan})
    return pd.DataFrame(rows)


def _predict_spend(pair: _Round, regressor: BaseEstimator) -> np.ndarray:
    """Spend in the horizon, learnt on the raw scale so that predictions are means and add up
    (a Poisson loss suits a non-negative target with many zeros: the default regressor is
    gradient boosting with that loss; the README compares it with the alternatives measured)."""
    model = clone(regressor).fit(pair.X_train, pair.y_train[FUTURE_SPEND].clip(lower=0).to_numpy())
    return np.asarray(model.predict(pair.X_eval), dtype=float).clip(min=0)
