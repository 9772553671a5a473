"""Scores of predictions on one set of customers: ranking, calibration, lift and spend error."""

from __future__ import annotations

import numpy as np
from scipy.stats import spearmanr
from sklearn.metrics import average_precision_score, brier_score_loss, roc_auc_score


def score_spend(actual: np.ndarray, predicted: np.ndarray,
                prefix: str = "predict/spend_") -> dict[str, float]:
    """Mean absolute error, Spearman rank correlation and total predicted / total actual."""
    actual, predicted = np.asarray(actual, dtype=float), np.asarray(predicted, dtype=float)
    total = actual.sum()
    ranked = len(actual) > 1 and np.ptp(actual) > 0 and np.ptp(predicted) > 0
    return {f"{prefix}mae": float(np.abs(predicted - actual).mean()),
            f"{prefix}spearman": float(spearmanr(predicted, actual).statistic) if ranked else float("nan"),
            f"{prefix}total_ratio": float(predicted.sum() / total) if total > 0 else float("nan")}


def lift_at(y_true: np.ndarray, scores: np.ndarray, fraction: float = 0.1) -> float:
    """Positive rate among the ``fraction`` highest scores over the overall positive rate."""
    y = np.asarray(y_true, dtype=float)
    k = max(1, int(np.ceil(fraction * len(y))))
    top = np.argsort(-np.asarray(scores, dtype=float), kind="stable")[:k]
    base = y.mean() if len(y) else np.nan
    return float(y[top].mean() / base) if base > 0 else float("nan")


def score_predictions(y_true: np.ndarray, scores: np.ndarray,
                      prefix: str = "predict/") -> dict[str, float]:
    """ROC AUC, PR AUC, Brier score (probabilities only), lift at 10 %, base rate and n.

    A single-class ``y_true`` gives NaN for the rank metrics rather than a made-up number.
    """
    y, s = np.asarray(y_true, dtype=int), np.asarray(scores, dtype=float)
    both = len(np.unique(y)) == 2
    probabilities = len(s) > 0 and s.min() >= 0 and s.max() <= 1
    return {
        f"{prefix}roc_auc": float(roc_auc_score(y, s)) if both else float("nan"),
        f"{prefix}pr_auc": float(average_precision_score(y, s)) if both else float("nan"),
        f"{prefix}brier": float(brier_score_loss(y, s)) if probabilities else float("nan"),
        f"{prefix}lift_at_10pct": lift_at(y, s, 0.1),
        f"{prefix}base_rate": float(y.mean()) if len(y) else float("nan"),
        f"{prefix}n_customers": float(len(y)),
    }
