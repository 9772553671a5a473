"""Which predictors, training regime, calibration and validation windows the run should default to.

Issue 18, items 1-4 and 6: every configuration goes through segmentlab's own pooled learner
(`RepurchaseLearner`, `judge`), with the cutoffs a run uses (`CutoffPlan`): training cutoffs every
``every_days`` back from one horizon before the evaluation cutoff, validation cutoffs 0, 14 and
28 days before the train cutoff, each learning only from training cutoffs whose labels end by it.
Validation and evaluation are printed side by side; the choice rule reads validation only.

    PYTHONPATH=src python experiments/2026-11-30-repurchase-defaults/study.py \
        --data ../shared/data/online_retail.csv.gz --json defaults.json
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path
from time import perf_counter

import numpy as np
import pandas as pd
from hydra import compose, initialize_config_dir

from segmentlab.data.cleaning import TransactionCleaner
from segmentlab.data.loading import OnlineRetailFile, load_dataset
from segmentlab.prediction.pooling import CutoffFrames
from segmentlab.prediction.repurchase import RepurchaseLearner
from segmentlab.prediction.selection import judge
from segmentlab.prediction.spend import fit_spend, predict_spend
from segmentlab.prediction.uncertainty import bootstrap_auc
from segmentlab.prediction.windows import FUTURE_SPEND, CutoffPlan
from segmentlab.study.experiment import assemble

ROOT = Path(__file__).resolve().parents[2]
HORIZON, SEED = 90, 42
SETS = {"rfm+behaviour": ["rfm", "behaviour"], "rfm+behaviour+segment": ["rfm", "behaviour"],
        "rfm+behaviour+lifetime": ["rfm", "behaviour", "lifetime"],
        "rfm+behaviour+activity": ["rfm", "behaviour", "activity"]}
REGIMES = {"single": None, "every_14": 14, "every_7": 7}
MODELS = ("logreg", "hist_gradient_boosting", "average")
START = ("rfm+behaviour+segment", "every_14", "logreg")  # the earlier study's recommendation


def experiment(feature_sets: list[str], classifier: str = "logreg"):
    """The run's objects for these prediction feature sets and classifier, composed by Hydra."""
    overrides = [f"seed={SEED}", f"features@prediction.features=[{','.join(feature_sets)}]",
                 f"classifier={classifier}", "tracking=none"]
    with initialize_config_dir(config_dir=str(ROOT / "configs"), version_base="1.3"):
        return assemble(compose("config", overrides=overrides))


def run_grid(transactions: pd.DataFrame) -> tuple[pd.DataFrame, dict]:
    """Validation and evaluation predictions of every configuration."""
    models = {m: experiment(["rfm"], m).classifier() for m in MODELS}
    rows, predictions = [], {}
    for set_name, names in SETS.items():
        exp = experiment(names)
        frames = CutoffFrames(transactions, exp.prediction_features, HORIZON)
        segmenter = exp.segmenter if set_name.endswith("segment") else None
        learner = RepurchaseLearner(frames, exp.prediction_features, "active", segmenter)
        for regime, every in REGIMES.items():
            plan = CutoffPlan.of(transactions, HORIZON, every_days=every)
            windows = [plan.train_cutoff - pd.Timedelta(days=d) for d in (0, 14, 28)]
            for model_name, model in models.items():
                start = perf_counter()
                val = judge(learner, plan, model, windows, "predict/validation_")
                ev = judge(learner, plan, model, [plan.eval_cutoff])
                key = (set_name, regime, model_name)
                val_groups = np.concatenate([s.rows.groups for s in val.scored])
                predictions[key] = {"val": (val.y, val.probability, val_groups),
                                    "eval": (ev.y, ev.probability), "rfm": ev.baselines["rfm_logreg"],
                                    "val_rfm": val.baselines["rfm_logreg"]}
                both = {**val.metrics, **ev.metrics}
                rows.append({"features": set_name, "training": regime, "model": model_name,
                             **{k.removeprefix("predict/"): v for k, v in both.items()
                                if k.endswith(("roc_auc", "brier", "ece", "pr_auc"))},
                             "seconds": perf_counter() - start})
                print(rows[-1], flush=True)
    return pd.DataFrame(rows), predictions


def paired_gain(predictions: dict, new, old, split: str) -> dict[str, float]:
    """ROC AUC gain of ``new`` over ``old`` on the same rows, 95 % customer-bootstrap interval."""
    y, p, groups = predictions[new][split][:3] if split == "val" else (*predictions[new][split], None)
    q = predictions[old][split][1]
    out = bootstrap_auc(y, p, {"old": q}, n=1000, seed=SEED, groups=groups)
    return {"gain": out["gain_vs_old"], "low": out["gain_vs_old_ci_low"], "high": out["gain_vs_old_ci_high"]}


def choose(grid: pd.DataFrame, predictions: dict) -> list[dict]:
    """From START, switch training regime, then features, only on a validation gain whose 95 %
    lower bound is above 0 (the model itself is chosen by each run among the three)."""
    current, steps = list(START), []
    for position, options in ((1, REGIMES), (0, SETS)):
        scores = {}
        for option in options:
            key = tuple(option if i == position else current[i] for i in range(3))
            # Each run picks its model on validation: judge an option by its best model there.
            best = max(MODELS, key=lambda m: grid_value(grid, (*key[:2], m), "validation_roc_auc"))
            scores[(*key[:2], best)] = grid_value(grid, (*key[:2], best), "validation_roc_auc")
        best_key = max(scores, key=scores.get)
        base_model = max(MODELS, key=lambda m: grid_value(grid, (*current[:2], m), "validation_roc_auc"))
        base = (*current[:2], base_model)
        gain = (paired_gain(predictions, best_key, base, "val") if best_key != base
                else {"gain": 0.0, "low": 0.0, "high": 0.0})
        switched = best_key != base and gain["low"] > 0
        steps.append({"step": ["features", "training"][position == 1], "current": "/".join(base),
                      "best": "/".join(best_key), **gain, "switched": switched})
        if switched:
            current = list(best_key)
    return steps


def grid_value(grid: pd.DataFrame, key, column: str) -> float:
    row = grid[(grid["features"] == key[0]) & (grid["training"] == key[1]) & (grid["model"] == key[2])]
    return float(row[column].iloc[0])


def calibration_and_spend(transactions: pd.DataFrame, names: list[str], every: int | None) -> list[dict]:
    """Calibration of the chosen configuration, and the spend regressor's totals."""
    exp = experiment(names)
    frames = CutoffFrames(transactions, exp.prediction_features, HORIZON)
    plan = CutoffPlan.of(transactions, HORIZON, every_days=every)
    windows = [plan.train_cutoff - pd.Timedelta(days=d) for d in (0, 14, 28)]
    rows = []
    for method in ("none", "sigmoid", "isotonic"):
        learner = RepurchaseLearner(frames, exp.prediction_features, "active", None, method)
        for model_name in MODELS:
            model = experiment(["rfm"], model_name).classifier()
            val, ev = (judge(learner, plan, model, windows, "predict/validation_"),
                       judge(learner, plan, model, [plan.eval_cutoff]))
            rows.append({"calibration": method, "model": model_name,
                         **{k.removeprefix("predict/"): v for k, v in {**val.metrics, **ev.metrics}.items()
                            if k.endswith(("roc_auc", "brier", "ece")) and "_roc" not in k[8:]}})
            print(rows[-1], flush=True)
    regressor = exp.spend_regressor()
    learner = RepurchaseLearner(frames, exp.prediction_features, "active")
    for name, cutoffs in (("validation", windows), ("evaluation", [plan.eval_cutoff])):
        judged = judge(learner, plan, experiment(["rfm"]).classifier(), cutoffs)
        predicted = np.concatenate([predict_spend(fit_spend(regressor, X, r), s.X)
                                    for (X, r), s in zip(judged.train, judged.scored, strict=True)])
        actual = np.concatenate([s.rows.frame[FUTURE_SPEND].to_numpy() for s in judged.scored])
        rows.append({"spend": name, "total_ratio": predicted.sum() / actual.sum(),
                     "mae": float(np.abs(predicted - actual).mean())})
        print(rows[-1], flush=True)
    return rows


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", default=str(ROOT.parent / "shared" / "data" / "online_retail.csv.gz"))
    parser.add_argument("--json", default=None)
    parser.add_argument("--cache", default="outputs/cache")
    args = parser.parse_args()
    transactions = load_dataset(OnlineRetailFile(args.data), TransactionCleaner(),
                                cache_dir=args.cache).transactions
    grid, predictions = run_grid(transactions)
    with pd.option_context("display.width", 250, "display.max_columns", 30):
        print(grid.round(4).to_string())
    steps = choose(grid, predictions)
    print(pd.DataFrame(steps).round(4).to_string())
    final = [s for s in steps if s["switched"]]
    chosen = final[-1]["best"].split("/") if final else list(START)
    extra = calibration_and_spend(transactions, SETS[chosen[0]], REGIMES[chosen[1]])
    if args.json:
        Path(args.json).write_text(json.dumps({"grid": grid.to_dict("records"), "steps": steps,
                                               "extra": extra}, default=str, indent=1))


if __name__ == "__main__":
    main()
