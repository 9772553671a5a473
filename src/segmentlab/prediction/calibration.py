"""Whether predicted probabilities can be read as probabilities, and making them so.

``reliability_table`` and ``expected_calibration_error`` compare predictions with observed
rates bin by bin; ``fit_calibrated`` fits a classifier with a sigmoid or isotonic map learnt on
out-of-fold predictions, the folds grouped by customer so that one customer's rows at several
cutoffs never sit on both sides of a split.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
from sklearn.base import BaseEstimator, clone
from sklearn.calibration import CalibratedClassifierCV
from sklearn.model_selection import GroupKFold

CALIBRATIONS = ("none", "sigmoid", "isotonic")


def fit_calibrated(classifier: BaseEstimator, X: pd.DataFrame, y: np.ndarray, groups: np.ndarray,
                   method: str = "none", n_folds: int = 3) -> BaseEstimator:
    """Fit ``classifier`` on all rows, calibrated by ``method`` unless it is ``"none"``.

    Parameters
    ----------
    classifier : estimator
        Unfitted binary classifier with ``predict_proba``; cloned.
    X, y : predictors and 0/1 outcomes
    groups : array
        A group per row (the customer); calibration folds keep a group together.
    method : {"none", "sigmoid", "isotonic"}
        ``none`` returns the plain fitted classifier. Otherwise out-of-fold predictions over
        ``n_folds`` grouped folds fit the map, and the classifier is refitted on all rows
        (scikit-learn's ``CalibratedClassifierCV`` with ``ensemble=False``).
    n_folds : int
        Folds of the out-of-fold predictions.

    Returns
    -------
    estimator
        Fitted, with ``predict_proba``.
    """
    if method not in CALIBRATIONS:
        raise ValueError(f"calibration must be one of {CALIBRATIONS}, got {method!r}")
    if method == "none":
        return clone(classifier).fit(X, y)
    n_groups = len(np.unique(groups))
    if n_groups < n_folds:
        raise ValueError(f"calibration needs at least {n_folds} customers, got {n_groups}")
    splits = list(GroupKFold(n_splits=n_folds).split(X, y, groups))
    calibrated = CalibratedClassifierCV(clone(classifier), method=method, cv=splits, ensemble=False)
    return calibrated.fit(X, y)


def reliability_table(y: np.ndarray, p: np.ndarray, n_bins: int = 10) -> pd.DataFrame:
    """Observed rate against mean predicted probability in equal-width probability bins.

    Parameters
    ----------
    y : array of 0/1
        Outcomes.
    p : array of float in [0, 1]
        Predicted probabilities of outcome 1.
    n_bins : int
        Bins of width ``1 / n_bins``; ``p == 1`` falls in the last. Empty bins are left out.

    Returns
    -------
    DataFrame
        ``bin_low``, ``bin_high``, ``n``, ``mean_predicted``, ``observed_rate`` and ``gap``
        (observed minus predicted), one row per non-empty bin.
    """
    y, p = np.asarray(y, dtype=float), np.asarray(p, dtype=float)
    if len(y) != len(p) or not len(y):
        raise ValueError(f"y and p must be non-empty and of equal length, got {len(y)} and {len(p)}")
    if np.isnan(p).any() or p.min() < 0 or p.max() > 1:
        raise ValueError("p must be probabilities in [0, 1] without NaN")
    if int(n_bins) != n_bins or n_bins < 1:
        raise ValueError(f"n_bins must be a positive whole number, got {n_bins!r}")
    edges = np.linspace(0.0, 1.0, n_bins + 1)
    which = np.clip(np.searchsorted(edges, p, side="right") - 1, 0, n_bins - 1)
    n = np.bincount(which, minlength=n_bins)
    used = n > 0
    mean_p = np.bincount(which, weights=p, minlength=n_bins)[used] / n[used]
    rate = np.bincount(which, weights=y, minlength=n_bins)[used] / n[used]
    return pd.DataFrame({"bin_low": edges[:-1][used], "bin_high": edges[1:][used], "n": n[used],
                         "mean_predicted": mean_p, "observed_rate": rate, "gap": rate - mean_p})


def expected_calibration_error(y: np.ndarray, p: np.ndarray, n_bins: int = 10) -> float:
    """Share-weighted mean of ``|observed rate - mean predicted|`` over equal-width bins.

    0 for probabilities that match the observed rates bin by bin; see ``reliability_table``.
    """
    table = reliability_table(y, p, n_bins)
    return float((table["n"] * table["gap"].abs()).sum() / table["n"].sum())


