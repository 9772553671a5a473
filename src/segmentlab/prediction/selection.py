"""Judging repurchase models at a cutoff beside the baselines, and choosing one by validation.

`judge` trains a classifier for each scoring cutoff on the training cutoffs whose labels end by
it (`CutoffPlan.learn`), scores it there together with recency and RFM-logreg trained on the
same rows, and pools the scores of several cutoffs. `choose` judges every candidate at the
validation cutoffs, all before the evaluation period, and at the evaluation cutoff, and keeps
the one with the best validation ROC AUC: the evaluation scores are reported, never used.
Given several plans (`CutoffPlan`: the pooled grid, the train cutoff alone), `choose` judges
every candidate under each and keeps the best pair. `RepurchaseValidation` is the validation
alone, what tuning may look at.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from time import perf_counter

import numpy as np
import pandas as pd
from sklearn.base import BaseEstimator
from sklearn.metrics import roc_auc_score
from sklearn.pipeline import FeatureUnion

from segmentlab.prediction.baselines import fit_rfm_logreg, recency_scores, rfm_logreg_scores
from segmentlab.prediction.calibration import expected_calibration_error
from segmentlab.prediction.pooling import CutoffFrames, PooledFrame
from segmentlab.prediction.repurchase import RepurchaseLearner, RepurchaseModel, Scored
from segmentlab.prediction.scoring import score_predictions
from segmentlab.prediction.windows import WILL_BUY, CutoffPlan, WindowError


@dataclass(frozen=True)
class Judged:
    """A classifier trained and scored at one or more cutoffs, beside the baselines.

    Attributes
    ----------
    metrics : dict
        ``<prefix>roc_auc``, ``pr_auc``, ``brier``, ``lift_at_10pct``, ``base_rate``,
        ``n_customers``, ``ece``, ``recency_roc_auc`` and ``rfm_logreg_roc_auc`` over the pooled
        rows of the scoring cutoffs.
    scored : list of Scored
        Per scoring cutoff, the model's predictions.
    models : list of RepurchaseModel
        Per scoring cutoff, the model trained for it.
    train : list of (DataFrame, PooledFrame)
        Per scoring cutoff, the training predictor frame and rows.
    baselines : dict of name to array
        ``recency`` and ``rfm_logreg`` scores on the pooled scored rows.
    seconds : float
        Wall time of the fits and scoring.
    """

    metrics: dict[str, float]
    scored: list[Scored]
    models: list[RepurchaseModel]
    train: list[tuple[pd.DataFrame, PooledFrame]]
    baselines: dict[str, np.ndarray]
    seconds: float

    @property
    def y(self) -> np.ndarray:
        return np.concatenate([s.y for s in self.scored])

    @property
    def probability(self) -> np.ndarray:
        return np.concatenate([s.probability for s in self.scored])


def judge(learner: RepurchaseLearner, plan: CutoffPlan, classifier: BaseEstimator,
          cutoffs: Sequence[pd.Timestamp], prefix: str = "predict/",
          calibration: str | None = None) -> Judged:
    """Train ``classifier`` for each of ``cutoffs`` and score it there, with the baselines.

    Raises WindowError when a cutoff has no training cutoff or a single-class target.
    """
    start = perf_counter()
    scored, models, train, recency, rfm = [], [], [], [], []
    for cutoff in cutoffs:
        learn = plan.learn(cutoff)
        if not learn:
            raise WindowError(f"cutoff {pd.Timestamp(cutoff).date()}: no training cutoff before it")
        model, X, rows = learner.fit(classifier, learn, labels_before=cutoff, calibration=calibration)
        result = learner.score(model, [cutoff])
        scored.append(result)
        models.append(model)
        train.append((X, rows))
        recency.append(recency_scores(result.rows))
        rfm.append(rfm_logreg_scores(fit_rfm_logreg(rows), result.rows))
    y = np.concatenate([s.y for s in scored])
    p = np.concatenate([s.probability for s in scored])
    baselines = {"recency": np.concatenate(recency), "rfm_logreg": np.concatenate(rfm)}
    metrics = score_predictions(y, p, prefix)
    metrics[f"{prefix}ece"] = expected_calibration_error(y, p) if len(y) else float("nan")
    both = len(np.unique(y)) == 2
    for name, values in baselines.items():
        metrics[f"{prefix}{name}_roc_auc"] = float(roc_auc_score(y, values)) if both else float("nan")
    return Judged(metrics, scored, models, train, baselines, perf_counter() - start)


@dataclass(frozen=True)
class Choice:
    """The candidates judged, and the one validation chose.

    Attributes
    ----------
    name : str
        The chosen candidate.
    key : str
        The chosen row: the candidate's name, with ``_one_cutoff`` when it was trained on the
        train cutoff alone beside a pooled grid (keys of ``validation``, ``evaluation`` and the
        ``predict/candidate_<key>_*`` metrics).
    plan : CutoffPlan
        The plan of the chosen row.
    table : DataFrame
        One row per candidate and plan: ``candidate``, ``training`` (`CutoffPlan.training`),
        ``validation_roc_auc``, ``validation_brier``, ``validation_ece``, ``roc_auc``,
        ``pr_auc``, ``brier``, ``ece``, ``seconds`` and ``chosen``, indexed by ``key``.
    validation : dict of key to Judged or None
        None where no validation cutoff had data.
    evaluation : dict of key to Judged
    """

    name: str
    key: str
    plan: CutoffPlan
    table: pd.DataFrame
    validation: dict[str, Judged | None]
    evaluation: dict[str, Judged]


def choose(learner: RepurchaseLearner, plans: CutoffPlan | Sequence[CutoffPlan],
           candidates: Mapping[str, BaseEstimator], validation_cutoffs: Sequence[pd.Timestamp]) -> Choice:
    """Judge every candidate under every plan at the validation cutoffs and at the evaluation
    cutoff; keep the best validation ROC AUC (ties, and no validation data at all, go to the
    first candidate under the first plan).

    Candidates are compared uncalibrated: calibration does not change the ranking of a
    sigmoid map, and barely that of an isotonic one.
    """
    if not candidates:
        raise ValueError("candidates: empty; give at least one classifier")
    plans = [plans] if isinstance(plans, CutoffPlan) else list(plans)
    validation, evaluation, rows, keyed = {}, {}, [], {}
    for name, classifier in candidates.items():
        for i, plan in enumerate(plans):
            key = name if i == 0 else name + "_" + re.sub(r"\W+", "_", plan.training)  # metric-safe
            keyed[key] = plan
            validation[key] = _validate(learner, plan, classifier, validation_cutoffs)
            evaluation[key] = judge(learner, plan, classifier, [plan.eval_cutoff], calibration="none")
            v = validation[key].metrics if validation[key] is not None else {}
            e = evaluation[key].metrics
            rows.append({"candidate": name, "training": plan.training,
                         **{f"validation_{k}": v.get(f"predict/validation_{k}", float("nan"))
                            for k in ("roc_auc", "brier", "ece")},
                         **{k: e[f"predict/{k}"] for k in ("roc_auc", "pr_auc", "brier", "ece")},
                         "seconds": evaluation[key].seconds
                         + (validation[key].seconds if validation[key] is not None else 0.0)})
    table = pd.DataFrame(rows, index=pd.Index(list(keyed), name="key"))
    scores = table["validation_roc_auc"].to_numpy(float)
    best = int(np.nanargmax(scores)) if np.isfinite(scores).any() else 0
    table["chosen"] = np.arange(len(table)) == best
    key = str(table.index[best])
    return Choice(str(table["candidate"].iloc[best]), key, keyed[key], table, validation, evaluation)


def _validate(learner, plan, classifier, cutoffs) -> Judged | None:
    if not cutoffs:
        return None
    try:
        return judge(learner, plan, classifier, cutoffs, "predict/validation_", calibration="none")
    except WindowError:
        return None


class RepurchaseValidation:
    """Scores a classifier at validation cutoffs before the evaluation period: what tuning sees.

    A model judged at a validation cutoff ``v`` learns from the training cutoffs whose labels
    end by ``v`` (`CutoffPlan.learn`), and ``v + horizon`` is at most the eval cutoff, so every
    label it sees or is judged on ends before the evaluation period. Build it once per study:
    the cutoff rows are computed on first use and shared by every trial.

    Parameters
    ----------
    frames : CutoffFrames
    plan : CutoffPlan
    make_features : callable
        The unfitted feature union factory.
    population : {"active", "all"}
    n_windows : int
        Validation cutoffs (``plan.validation``), stacked into one score.
    """

    def __init__(self, frames: CutoffFrames, plan: CutoffPlan, make_features: Callable[[], FeatureUnion],
                 population: str = "active", n_windows: int = 1):
        self.frames, self.plan, self.make_features = frames, plan, make_features
        self.population, self.n_windows = population, n_windows

    @classmethod
    def of(cls, transactions: pd.DataFrame, make_features: Callable[[], FeatureUnion],
           horizon_days: int = 90, every_days: int | None = 14, min_history_days: int = 60,
           population: str = "active", active_days: int = 365, n_windows: int = 1) -> RepurchaseValidation:
        """The validation of the default cutoffs (as `evaluate_repurchase` chooses them)."""
        plan = CutoffPlan.of(transactions, horizon_days, every_days=every_days,
                             min_history_days=min_history_days)
        return cls(CutoffFrames(transactions, make_features, horizon_days, active_days), plan,
                   make_features, population, n_windows)

    @property
    def cutoffs(self) -> list[pd.Timestamp]:
        """The validation cutoffs, newest first."""
        return self.plan.validation(self.n_windows)

    def check(self) -> None:
        """Raise WindowError now if no validation cutoff has data to learn from and to judge."""
        if not self.cutoffs:
            raise WindowError(f"no validation cutoff: the data start {self.plan.data_start.date()} "
                              f"leaves no training cutoff before {self.plan.train_cutoff.date()}")
        for cutoff in self.cutoffs:
            rows = self.frames.stack(self.plan.learn(cutoff), self.population)
            if rows.frame.empty or rows.frame[WILL_BUY].nunique() < 2:
                raise WindowError(f"validation cutoff {cutoff.date()}: its training rows hold "
                                  f"{len(rows.frame)} customers and one class at most")

    def score(self, classifier: BaseEstimator, segmenter_factory=None,
              calibration: str = "none") -> dict[str, float]:
        """``predict/validation_*`` metrics; NaN when the data start too late for a window."""
        try:
            self.check()
        except WindowError:
            return {f"predict/validation_{k}": float("nan") for k in ("roc_auc", "pr_auc", "brier")}
        learner = RepurchaseLearner(self.frames, self.make_features, self.population,
                                    segmenter_factory, calibration)
        return judge(learner, self.plan, classifier, self.cutoffs, "predict/validation_").metrics
