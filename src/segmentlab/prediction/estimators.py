"""Estimators we assemble ourselves for the ``classifier`` and ``assigner`` config nodes."""

from __future__ import annotations

from sklearn.linear_model import LogisticRegression
from sklearn.pipeline import Pipeline, make_pipeline
from sklearn.preprocessing import StandardScaler


def scaled_logistic_regression(C: float = 1.0, class_weight: str | None = None,
                               max_iter: int = 2000, random_state: int | None = None) -> Pipeline:
    """Logistic regression behind a StandardScaler (its penalty assumes comparable scales).

    Parameters
    ----------
    C : float
        Inverse L2 penalty strength.
    class_weight : "balanced" or None
        Reweight classes inversely to their frequency.
    max_iter : int
        Solver iterations (lbfgs).
    random_state : int or None
        Unused by lbfgs; kept so every classifier config takes ``${seed}``.

    Returns
    -------
    Pipeline
        ``StandardScaler -> LogisticRegression``.
    """
    return make_pipeline(StandardScaler(), LogisticRegression(
        C=C, class_weight=class_weight, max_iter=max_iter, random_state=random_state))
