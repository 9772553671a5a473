"""Which predictors a fitted repurchase model relies on: permutation importance and XGBoost gain."""

from __future__ import annotations

import pandas as pd
from sklearn.base import BaseEstimator
from sklearn.inspection import permutation_importance
from sklearn.pipeline import Pipeline


def permutation_table(model: BaseEstimator, X: pd.DataFrame, y, n_repeats: int,
                      random_state: int) -> pd.DataFrame:
    """Drop in eval-period ROC AUC when one column is shuffled, most important first."""
    result = permutation_importance(model, X, y,
                                    scoring="roc_auc", n_repeats=n_repeats,
                                    random_state=random_state, n_jobs=1)
    table = pd.DataFrame({"feature": X.columns, "mean": result.importances_mean,
                          "std": result.importances_std})
    return table.sort_values("mean", ascending=False, kind="stable").reset_index(drop=True)


def gain_table(classifier: BaseEstimator, columns: list[str]) -> pd.DataFrame | None:
    """XGBoost gain per column (share of the total), or None for models without a booster."""
    final = classifier[-1] if isinstance(classifier, Pipeline) else classifier
    if not hasattr(final, "get_booster"):
        return None
    gain = final.get_booster().get_score(importance_type="gain")
    # Fitted on a DataFrame the booster knows the column names; on an array it says f0, f1, ...
    named = {(columns[int(k[1:])] if k not in columns and k[1:].isdigit() else k): v
             for k, v in gain.items()}
    table = pd.DataFrame({"feature": columns,
                          "gain": [float(named.get(c, 0.0)) for c in columns]})
    table["share"] = table["gain"] / table["gain"].sum() if table["gain"].sum() > 0 else 0.0
    return table.sort_values("gain", ascending=False, kind="stable").reset_index(drop=True)
