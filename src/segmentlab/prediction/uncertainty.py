"""How sure a score is: a customer bootstrap of ROC AUC and of its gains over baselines.

Every resample draws customers (or whole groups of rows) with replacement; the model and the
baselines are scored on the same resamples, so the interval of a difference is that of paired
scores and the noise the two share cancels.
"""

from __future__ import annotations

from collections.abc import Mapping

import numpy as np
import pandas as pd


def bootstrap_auc(y: np.ndarray, scores: np.ndarray,
                  baseline_scores: Mapping[str, np.ndarray] | np.ndarray | None = None,
                  n: int = 1000, seed: int = 0, groups: np.ndarray | None = None) -> dict[str, float]:
    """ROC AUC with a customer-bootstrap 95 % interval, and its gain over each baseline.

    Every resample draws rows (or, with ``groups``, whole groups) with replacement, as many
    as there are; the model and the baselines are scored on the same resamples, so the
    interval of a difference is that of paired scores.

    Parameters
    ----------
    y : array of 0/1
        Outcomes; both classes must occur.
    scores : array
        Model scores (any monotone scale).
    baseline_scores : mapping of name to array, array, or None
        Baseline scores on the same rows; a bare array is named ``baseline``.
    n : int
        Number of resamples.
    seed : int
        Seed of the resampling.
    groups : array or None
        A group per row (e.g. the customer, when rows of several cutoffs are stacked): rows of
        a group are drawn together, so the interval reflects independent customers, not rows.

    Returns
    -------
    dict
        ``roc_auc``, ``roc_auc_ci_low``, ``roc_auc_ci_high`` (2.5 and 97.5 percentiles) and for
        each baseline ``<name>_roc_auc``, ``gain_vs_<name>``, ``gain_vs_<name>_ci_low``,
        ``gain_vs_<name>_ci_high``.
    """
    y = np.asarray(y).astype(int)
    if set(np.unique(y)) != {0, 1}:
        raise ValueError(f"y must hold both classes 0 and 1, got {np.unique(y)[:5]}")
    if isinstance(baseline_scores, np.ndarray | pd.Series | list):
        baseline_scores = {"baseline": baseline_scores}
    baselines = dict(baseline_scores or {})
    for name, values in [("scores", scores), *baselines.items()]:
        if len(values) != len(y):
            raise ValueError(f"{name}: {len(values)} values for {len(y)} outcomes")
    if n < 10:
        raise ValueError(f"n must be at least 10 resamples, got {n}")
    if groups is None:
        units, row_unit = len(y), np.arange(len(y))
    else:
        if len(groups) != len(y):
            raise ValueError(f"groups: {len(groups)} values for {len(y)} outcomes")
        row_unit = np.unique(np.asarray(groups), return_inverse=True)[1].ravel()
        units = int(row_unit.max()) + 1
    rng = np.random.default_rng(seed)
    draws = rng.integers(0, units, size=(n, units))
    counts = np.bincount((draws + units * np.arange(n)[:, None]).ravel(), minlength=n * units)
    weights = counts.reshape(n, units)[:, row_unit].astype(float)
    ones = np.ones((1, len(y)))
    model = _weighted_auc(y, np.asarray(scores, dtype=float), weights)
    out = {"roc_auc": float(_weighted_auc(y, np.asarray(scores, dtype=float), ones)[0]),
           **_interval("roc_auc", model)}
    for name, values in baselines.items():
        base = _weighted_auc(y, np.asarray(values, dtype=float), weights)
        base_point = float(_weighted_auc(y, np.asarray(values, dtype=float), ones)[0])
        out[f"{name}_roc_auc"] = base_point
        out[f"gain_vs_{name}"] = out["roc_auc"] - base_point
        out.update(_interval(f"gain_vs_{name}", model - base))
    return out


def _interval(name: str, values: np.ndarray) -> dict[str, float]:
    low, high = np.nanpercentile(values, [2.5, 97.5])
    return {f"{name}_ci_low": float(low), f"{name}_ci_high": float(high)}


def _weighted_auc(y: np.ndarray, scores: np.ndarray, weights: np.ndarray) -> np.ndarray:
    """ROC AUC of ``scores`` under each row of ``weights`` (counts), ties counting one half.

    The rows are sorted once; per weight vector the AUC is the weighted Mann-Whitney statistic:
    for each group of tied scores, its positive weight times the negative weight below it plus
    half the negative weight inside it. A resample without both classes gives NaN.
    """
    order = np.argsort(scores, kind="stable")
    sorted_scores, y_sorted = scores[order], y[order]
    starts = np.flatnonzero(np.r_[True, sorted_scores[1:] != sorted_scores[:-1]])
    w = weights[:, order]
    pos = np.add.reduceat(w * y_sorted, starts, axis=1)
    neg = np.add.reduceat(w * (1 - y_sorted), starts, axis=1)
    below = np.cumsum(neg, axis=1) - neg
    total_pos, total_neg = pos.sum(axis=1), neg.sum(axis=1)
    with np.errstate(invalid="ignore", divide="ignore"):
        auc = (pos * (below + 0.5 * neg)).sum(axis=1) / (total_pos * total_neg)
    return np.where((total_pos > 0) & (total_neg > 0), auc, np.nan)



def bootstrap_mean_difference(losses: np.ndarray, baseline_losses: np.ndarray, n: int = 1000,
                              seed: int = 0) -> dict[str, float]:
    """Mean of ``baseline_losses - losses`` (positive: the model loses less) with a 95 % interval.

    Parameters
    ----------
    losses, baseline_losses : array
        Per-customer losses of the model and of a baseline on the same customers (e.g. absolute
        spend errors).
    n : int
        Number of customer resamples.
    seed : int
        Seed of the resampling.

    Returns
    -------
    dict
        ``gain``, ``gain_ci_low``, ``gain_ci_high``.
    """
    difference = np.asarray(baseline_losses, dtype=float) - np.asarray(losses, dtype=float)
    if not len(difference) or np.isnan(difference).any():
        raise ValueError(f"losses: need equal-length arrays without NaN, got {len(difference)} values")
    rng = np.random.default_rng(seed)
    means = difference[rng.integers(0, len(difference), size=(n, len(difference)))].mean(axis=1)
    return {"gain": float(difference.mean()), **_interval("gain", means)}
