"""Repurchase and spend judged out of time: pooled training, a validated choice, baselines and
intervals, in one call (`evaluate_repurchase`).

The evaluated model learns from the training cutoffs of a `CutoffPlan` (every ``every_days``
back from one horizon before the evaluation cutoff) and is scored at the evaluation cutoff,
which no training label reaches. Candidates are chosen on validation cutoffs whose labels all
end before the evaluation period. The deployed model is the chosen classifier retrained on every
fully labelled cutoff, up to one horizon before the data end.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from time import perf_counter

import numpy as np
import pandas as pd
from sklearn.base import BaseEstimator
from sklearn.metrics import roc_auc_score
from sklearn.pipeline import FeatureUnion, Pipeline

from segmentlab.lifetime.value import CustomerValue
from segmentlab.prediction.baselines import bgnbd_scores, fit_rfm_logreg, rfm_logreg_scores
from segmentlab.prediction.calibration import reliability_table
from segmentlab.prediction.importance import gain_table, permutation_table
from segmentlab.prediction.pooling import CUTOFF, CutoffFrames
from segmentlab.prediction.repurchase import RepurchaseLearner, RepurchaseModel, Scored
from segmentlab.prediction.segments import SEGMENT, SegmentEncoder
from segmentlab.prediction.selection import Choice, Judged, choose, judge
from segmentlab.prediction.spend import fit_spend, predict_spend, spend_metrics
from segmentlab.prediction.uncertainty import bootstrap_auc
from segmentlab.prediction.windows import FUTURE_SPEND, WILL_BUY, CutoffPlan
from segmentlab.schema import CUSTOMER_ID

OTHER = {"active": "all", "all": "active"}
NO_VALIDATION = {f"predict/validation_{k}": float("nan") for k in ("roc_auc", "pr_auc", "brier")}


@dataclass(frozen=True)
class RepurchaseResult:
    """Out-of-time scores, tables and the models of one repurchase evaluation.

    Attributes
    ----------
    metrics : dict
        ``predict/*`` scores at the eval cutoff with intervals, baselines, validation, timing.
    tables : dict of DataFrame
        ``candidates`` (every candidate's validation and evaluation scores), ``reliability``,
        ``training`` (rows per training cutoff), ``importance`` (permutation, eval period),
        ``gain`` (XGBoost only), ``by_segment`` (with a segmenter), ``rolling`` (``n_rolling``).
    model : RepurchaseModel
        The chosen classifier trained on every fully labelled cutoff: the one to deploy.
    evaluated_model : RepurchaseModel
        The chosen classifier trained on the training cutoffs: the one the metrics judge.
    scores : DataFrame
        Eval customers: ``repurchase_probability``, ``will_buy``, ``future_spend``, the baseline
        scores (plus ``predicted_spend`` with a spend regressor, and ``segment`` with a segmenter).
    """

    metrics: dict[str, float]
    tables: dict[str, pd.DataFrame]
    model: RepurchaseModel
    evaluated_model: RepurchaseModel
    scores: pd.DataFrame = field(repr=False)


def evaluate_repurchase(
    transactions: pd.DataFrame,
    make_features: Callable[[], FeatureUnion],
    classifier: BaseEstimator | Mapping[str, BaseEstimator],
    horizon_days: int = 90,
    eval_cutoff: pd.Timestamp | str | None = None,
    train_cutoff: pd.Timestamp | str | None = None,
    segmenter_factory: Callable[[], Pipeline] | None = None,
    n_rolling: int = 0,
    random_state: int = 42,
    importance_repeats: int = 5,
    spend_regressor: BaseEstimator | None = None,
    *,
    every_days: int | None = 14,
    min_history_days: int = 60,
    compare_one_cutoff: bool = False,
    population: str = "active",
    active_days: int = 365,
    validation_windows: int = 1,
    calibration: str = "none",
    segment_predictors: bool = True,
    lifetime: CustomerValue | None = None,
    n_bootstrap: int = 1000,
) -> RepurchaseResult:
    """Train on pooled cutoffs, score at a later one, against the baselines, with intervals.

    Parameters
    ----------
    transactions : DataFrame
        Cleaned invoice lines.
    make_features : callable
        Returns a fresh, unfitted feature union; called once per cutoff.
    classifier : estimator or mapping of name to estimator
        Unfitted binary classifier(s) with ``predict_proba``; cloned per fit. A mapping is a set
        of candidates: the one with the best validation ROC AUC is judged and deployed.
    horizon_days : int
        Target window after each cutoff, in days.
    eval_cutoff : Timestamp, str or None
        Where predictions are judged; default ``data_end - horizon_days``.
    train_cutoff : Timestamp, str or None
        The latest training cutoff; default ``eval_cutoff - horizon_days`` (an earlier one is
        allowed, a later one refused).
    segmenter_factory : callable or None
        Returns a fresh unfitted scaler -> clusterer pipeline: the ``by_segment`` table, and
        with ``segment_predictors`` the matched segment as one-hot predictors.
    n_rolling : int
        0, or at least 3 evaluations whose cutoffs step back ``horizon_days`` each time
        (``rolling`` table, ``predict/rolling_*``).
    random_state : int
        Seed of the permutation importance and of the bootstrap.
    importance_repeats : int
        Permutations per feature; 0 skips the importance table.
    spend_regressor : estimator or None
        Learns ``future_spend`` on the training rows; judged by ``predict/spend_*`` beside the
        last-period and BG/NBD forecasts.
    every_days : int or None
        Step between training cutoffs; None trains on ``train_cutoff`` alone.
    min_history_days : int
        Least history a training cutoff needs; with none left, one cutoff (``predict/n_train_cutoffs``).
    compare_one_cutoff : bool
        Also judge every candidate trained on ``train_cutoff`` alone, and keep that when it
        validates better than the pooled grid (a shop whose customers change: older cutoffs
        then teach last year's behaviour). The ``candidates`` table has both rows.
    population : {"active", "all"}
        Customers with a purchase in the ``active_days`` before a cutoff, or every purchaser:
        the rows of training, evaluation and every baseline. The other population's ROC AUC is
        logged as ``predict/roc_auc_<other>``.
    active_days : int
        See ``population``.
    validation_windows : int
        Validation cutoffs, ``every_days`` apart from the train cutoff back, pooled.
    calibration : {"none", "sigmoid", "isotonic"}
        Calibration of the chosen classifier (customer-grouped folds on its training rows).
    segment_predictors : bool
        Whether the matched segment is a predictor (needs ``segmenter_factory``).
    lifetime : CustomerValue or None
        Unfitted template of the BG/NBD baseline (``predict/bgnbd_*``); None skips it.
    n_bootstrap : int
        Customer resamples of the intervals; 0 skips them.

    Returns
    -------
    RepurchaseResult
    """
    start = perf_counter()
    if n_rolling and n_rolling < 3:
        raise ValueError(f"n_rolling must be 0 or at least 3, got {n_rolling}")
    plan = CutoffPlan.of(transactions, horizon_days, eval_cutoff, train_cutoff, every_days,
                         min_history_days)
    frames = CutoffFrames(transactions, make_features, horizon_days, active_days)
    learner = RepurchaseLearner(frames, make_features, population,
                                segmenter_factory if segment_predictors else None, calibration)
    candidates = dict(classifier) if isinstance(classifier, Mapping) else {"classifier": classifier}
    validation_cutoffs = plan.validation(validation_windows)
    plans = [plan, plan.single()] if compare_one_cutoff and plan.every_days is not None else [plan]
    choice = choose(learner, plans, candidates, validation_cutoffs)
    chosen, plan = candidates[choice.name], choice.plan
    main, validation = choice.evaluation[choice.key], choice.validation[choice.key]
    if calibration != "none":
        main = judge(learner, plan, chosen, [plan.eval_cutoff])
        if validation is not None:
            validation = judge(learner, plan, chosen, validation_cutoffs, "predict/validation_")
    metrics = {**main.metrics, **_plan_metrics(plan, choice, candidates),
               **(validation.metrics if validation is not None else NO_VALIDATION)}
    scored, (X_train, train_rows) = main.scored[0], main.train[0]
    scores = scored.rows.frame[[CUSTOMER_ID, WILL_BUY, FUTURE_SPEND]].set_index(CUSTOMER_ID).assign(
        repurchase_probability=scored.probability, recency_score=main.baselines["recency"],
        rfm_logreg_probability=main.baselines["rfm_logreg"])
    bgnbd = None
    if lifetime is not None:
        bgnbd, _ = bgnbd_scores(frames, plan.eval_cutoff, scored.rows, lifetime)
        scores["bgnbd_probability"] = bgnbd["p_purchase"].to_numpy()
    metrics.update(_baseline_metrics(main, scores, n_bootstrap, random_state))
    metrics.update(_other_population(learner, main, plan.eval_cutoff, population))
    tables = {"candidates": choice.table, "training": train_rows.counts,
              "reliability": reliability_table(scored.y, scored.probability)}
    tables.update(_importance(main, importance_repeats, random_state))
    if segmenter_factory is not None:
        segments = scored.segments if scored.segments is not None else _eval_segments(
            frames, scored, plan.eval_cutoff, segmenter_factory)
        scores[SEGMENT] = segments.to_numpy()
        tables["by_segment"] = _by_segment(scores)
    if n_rolling:
        tables["rolling"] = _rolling(learner, plan, chosen, main, n_rolling)
        for key in ["roc_auc", "recency_roc_auc", "rfm_logreg_roc_auc"]:
            metrics[f"predict/rolling_{key}_mean"] = float(tables["rolling"][key].mean())
        metrics["predict/rolling_roc_auc_std"] = float(tables["rolling"]["roc_auc"].std())
    if spend_regressor is not None:
        scores["predicted_spend"] = predict_spend(fit_spend(spend_regressor, X_train, train_rows), scored.X)
        metrics.update(spend_metrics(scored.rows, scores["predicted_spend"].to_numpy(),
                                     None if bgnbd is None else bgnbd["expected_spend"].to_numpy(),
                                     n_bootstrap or 200, random_state))
    final = learner.fit(chosen, plan.deploy())[0]
    metrics["time/predict_seconds"] = perf_counter() - start
    return RepurchaseResult(metrics, tables, final, main.models[0], scores)


def _plan_metrics(plan: CutoffPlan, choice: Choice, candidates) -> dict[str, float]:
    """How the evaluated model was trained, and every candidate's two scores."""
    judged = choice.evaluation[choice.key]
    metrics = {"predict/n_train_cutoffs": float(len(plan.grid)),
               "predict/train_rows": float(len(judged.train[0][1].frame)),
               "predict/n_features": float(len(judged.models[0].columns))}
    if len(choice.table) > 1:
        for key, row in choice.table.iterrows():
            metrics[f"predict/candidate_{key}_roc_auc"] = float(row["roc_auc"])
            metrics[f"predict/candidate_{key}_validation_roc_auc"] = float(row["validation_roc_auc"])
    return metrics


def _auc(y: np.ndarray, scores: np.ndarray) -> float:
    both = len(np.unique(y)) == 2 and np.isfinite(scores).all()
    return float(roc_auc_score(y, scores)) if both else float("nan")


def _baseline_metrics(main: Judged, scores: pd.DataFrame, n: int, seed: int) -> dict[str, float]:
    """``predict/bgnbd_roc_auc``; ``predict/roc_auc_ci_*`` and ``predict/roc_auc_gain_vs_<baseline>``
    with its interval, for recency, RFM-logreg and BG/NBD (when fitted) on the same resamples."""
    y, p = main.y, main.probability
    baselines = {"recency": main.baselines["recency"], "rfm": main.baselines["rfm_logreg"]}
    out = {}
    if "bgnbd_probability" in scores:
        bgnbd = scores["bgnbd_probability"].to_numpy(float)
        fitted = np.isfinite(bgnbd).all() and len(np.unique(y)) == 2
        out["predict/bgnbd_roc_auc"] = float(roc_auc_score(y, bgnbd)) if fitted else float("nan")
        if fitted:
            baselines["bgnbd"] = bgnbd
    if not n or len(np.unique(y)) < 2:
        return out
    boot = bootstrap_auc(y, p, baselines, n=n, seed=seed)
    out.update({"predict/roc_auc_ci_low": boot["roc_auc_ci_low"],
                "predict/roc_auc_ci_high": boot["roc_auc_ci_high"]})
    for name in baselines:
        for suffix in ("", "_ci_low", "_ci_high"):
            out[f"predict/roc_auc_gain_vs_{name}{suffix}"] = boot[f"gain_vs_{name}{suffix}"]
    return out


def _importance(main: Judged, repeats: int, seed: int) -> dict[str, pd.DataFrame]:
    """Permutation importance on the eval rows, and XGBoost gain when the model has a booster."""
    model, scored = main.models[0], main.scored[0]
    tables = {}
    if repeats:
        tables["importance"] = permutation_table(model.classifier, scored.X, scored.y, repeats, seed)
    if (gain := gain_table(model.classifier, model.columns)) is not None:
        tables["gain"] = gain
    return tables


def _other_population(learner: RepurchaseLearner, main: Judged, cutoff, population: str) -> dict[str, float]:
    """The evaluated model and RFM-logreg on the other population's eval customers."""
    other = OTHER[population]
    scored = learner.score(main.models[0], [cutoff], other)
    rfm = rfm_logreg_scores(fit_rfm_logreg(main.train[0][1]), scored.rows)
    return {f"predict/roc_auc_{other}": _auc(scored.y, scored.probability),
            f"predict/rfm_logreg_roc_auc_{other}": _auc(scored.y, rfm),
            f"predict/n_customers_{other}": float(len(scored.y))}


def _eval_segments(frames: CutoffFrames, scored: Scored, cutoff, segmenter_factory) -> pd.Series:
    """Clusters of the eval window itself, for the per-segment table (not predictors)."""
    labels = SegmentEncoder(segmenter_factory()).fit(frames.features(cutoff)).labels_
    return labels.reindex(scored.rows.frame[CUSTOMER_ID]).fillna(-1).astype(np.int64)


def _by_segment(scores: pd.DataFrame) -> pd.DataFrame:
    """Scores per segment of the eval customers."""
    rows = []
    for segment, group in scores.groupby(SEGMENT, sort=True):
        y, p = group[WILL_BUY], group["repurchase_probability"]
        rows.append({SEGMENT: segment, "n_customers": len(group), "base_rate": y.mean(),
                     "mean_probability": p.mean(),
                     "roc_auc": roc_auc_score(y, p) if y.nunique() == 2 else np.nan})
    return pd.DataFrame(rows)


def _rolling(learner: RepurchaseLearner, plan: CutoffPlan, classifier, first: Judged,
             n_rolling: int) -> pd.DataFrame:
    """One row of scores per evaluation cutoff, stepping back ``horizon_days`` each time."""
    rows = []
    for i in range(n_rolling):
        cutoff = plan.eval_cutoff - pd.Timedelta(days=i * plan.horizon_days)
        judged = first if i == 0 else judge(learner, plan, classifier, [cutoff])
        learnt = judged.train[0][1].frame[CUTOFF]
        # Short training histories (the oldest rounds) explain most of the spread.
        rows.append({"eval_cutoff": cutoff, "train_cutoff": learnt.max(),
                     "n_train_cutoffs": learnt.nunique(),
                     "train_history_days": (learnt.max() - plan.data_start).days,
                     **{k.removeprefix("predict/"): v for k, v in judged.metrics.items()}})
    return pd.DataFrame(rows)
