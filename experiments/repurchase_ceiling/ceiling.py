"""How high can 90-day repurchase ROC AUC go on this data? An upper bound, measured.

    python experiments/repurchase_ceiling/ceiling.py [--data PATH] [--json OUT]

For each predictor set and model it reports two numbers at the default cutoffs (the ones
``predict/roc_auc`` uses):

* ``out_of_time``: trained at the train cutoff, scored at the eval cutoff (as segmentlab does);
* ``in_period_cv``: 5-fold cross-validation *inside* the evaluation window, i.e. the model may
  learn the very period it is judged on. Not an honest score, but a generous ceiling on what
  these predictors carry about the label.

Predictor sets: segmentlab's ``rfm+behaviour`` (the default), ``+tfidf`` (product-category
shares), and ``+activity``, extra recency-weighted activity built here: distinct purchase days in
the last 30/90/180 days, exponentially decayed purchase-day counts (half-lives 15/45/120 days),
spend in the last 90 days, purchase-day rate over tenure and recency over the mean gap.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path
from time import perf_counter

import numpy as np
import pandas as pd
from hydra import compose, initialize_config_dir
from sklearn.base import clone
from sklearn.ensemble import HistGradientBoostingClassifier
from sklearn.metrics import roc_auc_score
from sklearn.model_selection import StratifiedKFold, cross_val_score

from segmentlab.data.cleaning import TransactionCleaner
from segmentlab.data.loading import OnlineRetailFile, load_dataset
from segmentlab.prediction.estimators import scaled_logistic_regression
from segmentlab.prediction.windows import WILL_BUY, check_cutoffs, cutoff_frame, window_features
from segmentlab.schema import AMOUNT, CUSTOMER_ID, INVOICE_DATE, IS_RETURN
from segmentlab.study.experiment import assemble

ROOT = Path(__file__).resolve().parents[2]
REAL_FILE = ROOT.parent / "shared" / "data" / "online_retail.csv.gz"
HORIZON = 90


def activity(history: pd.DataFrame, cutoff: pd.Timestamp) -> pd.DataFrame:
    """Recency-weighted activity per purchaser, from lines before ``cutoff`` only."""
    bought = history[~history[IS_RETURN]]
    days = (bought.assign(day=bought[INVOICE_DATE].dt.normalize())
            .groupby([CUSTOMER_ID, "day"], sort=True)[AMOUNT].sum().reset_index())
    days["age"] = (cutoff.normalize() - days["day"]).dt.days
    by = days.groupby(CUSTOMER_ID)
    out = pd.DataFrame(index=by.size().index)
    for window in (30, 90, 180):
        out[f"days_last_{window}"] = np.log1p((days["age"] <= window).groupby(days[CUSTOMER_ID]).sum())
    for half_life in (15, 45, 120):
        out[f"decayed_days_{half_life}"] = np.log1p(
            np.exp2(-days["age"] / half_life).groupby(days[CUSTOMER_ID]).sum())
    recent = days["age"] <= 90
    out["spend_last_90"] = np.log1p(days[AMOUNT].where(recent, 0).groupby(days[CUSTOMER_ID]).sum()
                                    .clip(lower=0))
    n, first, last = by.size(), by["age"].max(), by["age"].min()
    out["day_rate"] = n / (first + 1)
    gap = (first - last) / (n - 1).where(n > 1)
    out["recency_over_gap"] = np.log1p(last / gap).fillna(-1.0)
    return out


def feature_sets(names: list[str]):
    """The named feature sets as configured in ``configs/features/``, composed by Hydra."""
    overrides = [f"features@prediction.features=[{','.join(names)}]", "tracking=none"]
    with initialize_config_dir(config_dir=str(ROOT / "configs"), version_base="1.3"):
        return assemble(compose("config", overrides=overrides)).prediction_features()


def window(transactions: pd.DataFrame, cutoff: pd.Timestamp, sets: list[str]):
    history, target = cutoff_frame(transactions, cutoff, HORIZON)
    named = [s for s in sets if s != "activity"]
    X = window_features(feature_sets(named), history)
    if "activity" in sets:
        X = X.join(activity(history, cutoff))
    return X, target.loc[X.index, WILL_BUY]


MODELS = {
    "logreg": scaled_logistic_regression(max_iter=3000),
    "hist_gradient_boosting": HistGradientBoostingClassifier(max_depth=3, learning_rate=0.05,
                                                             max_iter=200, random_state=0),
}
SETS = {"rfm+behaviour": ["rfm", "behaviour"], "+tfidf": ["rfm", "behaviour", "tfidf"],
        "+activity": ["rfm", "behaviour", "activity"],
        "+tfidf+activity": ["rfm", "behaviour", "tfidf", "activity"]}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", default=str(REAL_FILE))
    parser.add_argument("--json", help="also write the rows as JSON here")
    args = parser.parse_args()
    start = perf_counter()
    transactions = load_dataset(OnlineRetailFile(args.data), TransactionCleaner(),
                                cache_dir=ROOT / "outputs" / "cache").transactions
    eval_cutoff, train_cutoff = check_cutoffs(transactions, HORIZON, None, None)
    print(f"train cutoff {train_cutoff.date()}, eval cutoff {eval_cutoff.date()}, horizon {HORIZON} days")
    rows = []
    folds = StratifiedKFold(5, shuffle=True, random_state=0)
    for set_name, sets in SETS.items():
        X_train, y_train = window(transactions, train_cutoff, sets)
        X_eval, y_eval = window(transactions, eval_cutoff, sets)
        X_eval = X_eval.reindex(columns=X_train.columns, fill_value=0.0)
        for model_name, model in MODELS.items():
            scores = clone(model).fit(X_train, y_train).predict_proba(X_eval)[:, 1]
            cv = cross_val_score(clone(model), X_eval, y_eval, cv=folds, scoring="roc_auc")
            rows.append({"predictors": set_name, "model": model_name, "n_columns": X_train.shape[1],
                         "out_of_time": roc_auc_score(y_eval, scores),
                         "in_period_cv": float(cv.mean()), "in_period_cv_std": float(cv.std())})
            print(f"{set_name:<18} {model_name:<24} columns {X_train.shape[1]:>3}   out of time "
                  f"{rows[-1]['out_of_time']:.3f}   in-period CV {cv.mean():.3f} ± {cv.std():.3f}")
    print(f"{perf_counter() - start:.0f} s")
    if args.json:
        Path(args.json).write_text(json.dumps(rows, indent=2))


if __name__ == "__main__":
    main()
