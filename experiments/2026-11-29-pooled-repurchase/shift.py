"""Why validation and evaluation disagree: single-predictor ROC AUC by window, and history length.

    python experiments/2026-11-29-pooled-repurchase/shift.py [--data PATH] [--json OUT]

Part of the pooled-repurchase study (see README.md). It reuses ``pooled.py``'s frames and prints:

* every predictor's ROC AUC on its own (oriented so that 0.5 is no information; a minus sign
  means "lower is likelier to buy") at the last validation cutoff and at the evaluation cutoff,
  sorted by the change;
* the mean of the gap predictors in the earliest and latest training rows and in the evaluation
  rows (short histories can only show short gaps);
* two pooled configurations (the validation rule's pick, and the LR + HGB average) trained from
  later first cutoffs (``min_history_days`` 60, 90, 120), scored at the evaluation cutoff only:
  validation cannot judge this setting on a one-year file, because its windows need the early
  cutoffs.
"""

from __future__ import annotations

import argparse
import json
import sys
from itertools import product
from pathlib import Path

import numpy as np
import pandas as pd
from sklearn.metrics import roc_auc_score

sys.path.insert(0, str(Path(__file__).resolve().parent))
import pooled  # noqa: E402  (the study's own script, beside this one)

from segmentlab.data.cleaning import TransactionCleaner  # noqa: E402
from segmentlab.data.loading import OnlineRetailFile, load_dataset  # noqa: E402
from segmentlab.prediction.pooling import CUTOFF  # noqa: E402
from segmentlab.prediction.uncertainty import bootstrap_auc  # noqa: E402
from segmentlab.prediction.windows import WILL_BUY  # noqa: E402

CONFIGS = [("rfm+behaviour+segment", "logreg", "every_14"),  # the validation rule's pick
           ("rfm+behaviour+segment", "average", "every_14")]


def oriented_auc(y: np.ndarray, x: np.ndarray) -> float:
    if np.ptp(x) == 0:
        return float("nan")
    auc = roc_auc_score(y, x)
    return auc if auc >= 0.5 else -(1 - auc)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", default=str(pooled.REAL_FILE))
    parser.add_argument("--cache-dir", default=str(pooled.ROOT / "outputs" / "cache"))
    parser.add_argument("--json", help="also write the tables as JSON here")
    args = parser.parse_args()
    transactions = load_dataset(OnlineRetailFile(args.data), TransactionCleaner(),
                                cache_dir=args.cache_dir).transactions
    train, test, cutoffs, *_ = pooled.build_frames(transactions)
    last = train[train[CUTOFF] == cutoffs[-1]]
    columns = [c for c in train if c.startswith(("rfm__", "behaviour__", "activity__"))]
    single = pd.DataFrame({
        "feature": columns,
        "auc_validation_cutoff": [oriented_auc(last[WILL_BUY].to_numpy(), last[c].to_numpy())
                                  for c in columns],
        "auc_eval_cutoff": [oriented_auc(test[WILL_BUY].to_numpy(), test[c].to_numpy())
                            for c in columns]}).dropna()
    single["change"] = single["auc_eval_cutoff"].abs() - single["auc_validation_cutoff"].abs()
    single = single.sort_values("change").round(3)
    print(single.to_string(index=False))

    gaps = ["activity__gap_mean_days", "activity__gap_median_days", "behaviour__purchase_gap_mean_days",
            "behaviour__tenure_days"]
    first = train[train[CUTOFF] == cutoffs[0]]
    means = pd.DataFrame({f"train {cutoffs[0].date()}": first[gaps].mean(),
                          f"train {cutoffs[-1].date()}": last[gaps].mean(),
                          "evaluation": test[gaps].mean()}).round(1)
    print(means.to_string())

    base_cols = pooled.columns_of(train, "rfm_baseline")
    baseline = pooled.fit_predict(pooled.RFM_LOGREG, last, base_cols, test)[1]
    sensitivity = []
    for (features, model, regime), days in product(CONFIGS, (60, 90, 120)):
        start = cutoffs[0] + pd.Timedelta(days=days - pooled.MIN_HISTORY)
        kept = [c for c in cutoffs if c >= start]
        rows = train[train[CUTOFF].isin(pooled.regime_cutoffs(kept, regime))]
        p = pooled.fit_predict(pooled.MODELS[model], rows, pooled.columns_of(train, features), test)[1]
        boot = bootstrap_auc(test[WILL_BUY].to_numpy(), p, {"rfm_logreg": baseline}, seed=0)
        sensitivity.append({"features": features, "model": model, "regime": regime,
                            "min_history_days": days, "first_cutoff": str(kept[0].date()),
                            "rows": len(rows), **{k: round(v, 4) for k, v in boot.items()}})
    print(pd.DataFrame(sensitivity).to_string(index=False))
    if args.json:
        Path(args.json).write_text(json.dumps({"single": single.to_dict("records"),
                                               "gap_means": means.reset_index().to_dict("records"),
                                               "min_history": sensitivity}, indent=2))


if __name__ == "__main__":
    main()
