"""Which predictor sets and calibration the default run should use, judged as the run judges them.

Each configuration goes through `evaluate_repurchase` with the run's own settings (pooled training
cutoffs every 14 days, three validation cutoffs, the three candidate classifiers chosen on
validation, BG/NBD baselines and 1,000 customer resamples). Only the validation columns may
choose a default; the evaluation columns are printed to report, not to pick.

    PYTHONPATH=src OMP_NUM_THREADS=1 python experiments/2026-11-30-repurchase-defaults/predictors.py \
        --data ../shared/data/online_retail.csv.gz
"""

from __future__ import annotations

import argparse
from pathlib import Path
from time import perf_counter

import pandas as pd
from hydra import compose, initialize_config_dir

from segmentlab.data.cleaning import TransactionCleaner
from segmentlab.data.loading import OnlineRetailFile, load_dataset
from segmentlab.prediction.evaluation import evaluate_repurchase
from segmentlab.study.experiment import assemble

ROOT = Path(__file__).resolve().parents[2]
CONFIGS = {
    "rfm+behaviour (default)": ([], ["rfm", "behaviour"]),
    "rfm+behaviour+lifetime": ([], ["rfm", "behaviour", "lifetime"]),
    "rfm+behaviour+activity": ([], ["rfm", "behaviour", "activity"]),
    "rfm+behaviour, sigmoid calibration": (["prediction.calibration=sigmoid"], ["rfm", "behaviour"]),
}
KEYS = ["validation_roc_auc", "roc_auc", "roc_auc_ci_low", "roc_auc_ci_high", "roc_auc_gain_vs_rfm_ci_low",
        "rfm_logreg_roc_auc", "bgnbd_roc_auc", "pr_auc", "brier", "ece", "validation_brier",
        "spend_mae", "spend_total_ratio", "bgnbd_spend_mae", "spend_last_period_mae"]


def run(transactions: pd.DataFrame, overrides: list[str], sets: list[str]) -> dict:
    with initialize_config_dir(config_dir=str(ROOT / "configs"), version_base="1.3"):
        sets_override = f"features@prediction.features=[{','.join(sets)}]"
        cfg = compose("config", overrides=["tracking=none", sets_override,
                                           *overrides])
    exp = assemble(cfg)
    s = exp.prediction
    start = perf_counter()
    result = evaluate_repurchase(
        transactions, exp.prediction_features, exp.repurchase_classifier(), s.horizon_days,
        importance_repeats=0, spend_regressor=exp.spend_regressor(), lifetime=exp.lifetime(),
        every_days=s.train_cutoffs.every_days, min_history_days=s.train_cutoffs.min_history_days,
        population=s.population, active_days=s.active_days, validation_windows=s.validation_windows,
        calibration=s.calibration, segment_predictors=False, n_bootstrap=s.n_bootstrap,
        random_state=exp.seed)
    chosen = result.tables["candidates"].query("chosen")["candidate"].iloc[0]
    return {"chosen": chosen, **{k: result.metrics.get(f"predict/{k}") for k in KEYS},
            "seconds": perf_counter() - start}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", default=str(ROOT.parent / "shared" / "data" / "online_retail.csv.gz"))
    parser.add_argument("--cache", default="outputs/cache")
    args = parser.parse_args()
    transactions = load_dataset(OnlineRetailFile(args.data), TransactionCleaner(),
                                cache_dir=args.cache).transactions
    rows = []
    for name, (overrides, sets) in CONFIGS.items():
        rows.append({"config": name, **run(transactions, overrides, sets)})
        print(rows[-1], flush=True)
    with pd.option_context("display.width", 250, "display.max_columns", 30):
        print(pd.DataFrame(rows).round(4).to_string())


if __name__ == "__main__":
    main()
