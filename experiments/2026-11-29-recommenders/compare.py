"""Which recommender should be the default? Tune on the validation window, judge on the last one.

    PYTHONPATH=src OMP_NUM_THREADS=1 .venv/bin/python experiments/2026-11-29-recommenders/compare.py \
        --data ../shared/data/online_retail.csv.gz --trials 20

Windows (horizon 90 days, data end 2011-12-10 on the real file): hyperparameters are chosen by
recall@10 of returning customers at the validation cutoff (2011-06-13, scored on purchases up
to 2011-09-11); every configuration is then refitted before the evaluation cutoff (2011-09-11)
and scored on the last 90 days, which no tuning step has seen. Segments are K-means (6) on
standardised rfm + behaviour features of each window's own history. Each search space is the
project's own ``configs/tuning/space/recommender/<name>.yaml``.
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path

import optuna
import pandas as pd
from omegaconf import OmegaConf
from sklearn.cluster import KMeans
from sklearn.pipeline import FeatureUnion, make_pipeline
from sklearn.preprocessing import StandardScaler

from segmentlab.config import CONFIG_DIR, build, flatten, with_overrides
from segmentlab.data.cleaning import TransactionCleaner
from segmentlab.data.loading import OnlineRetailFile, load_dataset
from segmentlab.features.behaviour import BehaviourFeatures
from segmentlab.features.rfm import RFMFeatures
from segmentlab.recommend.evaluation import (
    RETURNING,
    evaluate_recommenders,
    paired_ratio_interval,
    recommendation_cutoffs,
)

SEED, HORIZON, K = 42, 90, 10
TUNED = ["popularity", "segment_popularity", "cooccurrence", "als", "word2vec"]
TRIALS = {"popularity": 8, "segment_popularity": 8, "word2vec": 8}  # others: --trials


def segments_before(transactions: pd.DataFrame, cutoff: pd.Timestamp) -> pd.Series:
    """K-means (6) segments on standardised rfm + behaviour of the lines before ``cutoff``."""
    history = transactions[transactions["invoice_date"] < cutoff]
    union = FeatureUnion([("rfm", RFMFeatures()), ("behaviour", BehaviourFeatures())])
    features = union.set_output(transform="pandas").fit_transform(history)
    segmenter = make_pipeline(StandardScaler(), KMeans(6, n_init=10, random_state=SEED))
    return pd.Series(segmenter.fit_predict(features), index=features.index, name="segment")


def config(name: str, params: dict | None = None):
    """The recommender node of ``configs/recommender/<name>.yaml`` with dotted overrides."""
    node = OmegaConf.merge({"seed": SEED}, {"recommender": OmegaConf.load(
        CONFIG_DIR / "recommender" / f"{name}.yaml")})
    return with_overrides(node, params or {})


def tune(name: str, transactions, cutoff, segments, n_trials: int) -> tuple[dict, pd.DataFrame]:
    """TPE search of the recommender's space; objective = validation recall@10 (returning)."""
    space_file = CONFIG_DIR / "tuning" / "space" / "recommender" / f"{name}.yaml"
    space = dict(flatten(build(OmegaConf.load(space_file))))
    study = optuna.create_study(direction="maximize",
                                sampler=optuna.samplers.TPESampler(seed=SEED))
    rows = []
    for _ in range(n_trials):
        trial = study.ask(space)
        started = time.perf_counter()
        model = build(config(name, trial.params).recommender)
        result = evaluate_recommenders(transactions, {name: model}, cutoff, HORIZON, K,
                                       segments, n_boot=0)
        recall = result.metrics(name)[f"recommend/recall_at_{K}"]
        study.tell(trial, recall)
        rows.append({"recommender": name, "trial": trial.number, "recall": recall,
                     "seconds": time.perf_counter() - started, **trial.params})
        print(f"  {name} trial {trial.number}: recall {recall:.4f} {trial.params}", flush=True)
    return study.best_params, pd.DataFrame(rows)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--data", required=True)
    parser.add_argument("--cache-dir", default="outputs/cache")
    parser.add_argument("--out", default="outputs/recommenders")
    parser.add_argument("--trials", type=int, default=20)
    args = parser.parse_args()
    optuna.logging.set_verbosity(optuna.logging.WARNING)
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    transactions = load_dataset(OnlineRetailFile(args.data), TransactionCleaner(),
                                cache_dir=args.cache_dir).transactions
    validation, evaluation = recommendation_cutoffs(transactions, HORIZON)
    print(f"validation cutoff {validation:%Y-%m-%d}, evaluation cutoff {evaluation:%Y-%m-%d}")

    best, trials = {}, []
    val_segments = segments_before(transactions, validation)
    for name in TUNED:
        best[name], table = tune(name, transactions, validation, val_segments,
                                 TRIALS.get(name, args.trials))
        trials.append(table)
    pd.concat(trials).to_csv(out / "trials.csv", index=False)

    # Baselines as configured (whole fit window); the other models with their class defaults
    # (the untuned starting point) and with the validation winner's hyperparameters.
    candidates = {name: build(config(name).recommender)
                  for name in ["popularity", "segment_popularity"]}
    candidates |= {f"{name}_defaults": type(build(config(name).recommender))()
                   for name in ["cooccurrence", "als", "word2vec"]}
    candidates |= {f"{name}_tuned": build(config(name, best[name]).recommender) for name in TUNED}
    result = evaluate_recommenders(transactions, candidates, evaluation, HORIZON, K,
                                   segments_before(transactions, evaluation), seed=SEED)
    result.table.to_csv(out / "evaluation.csv", index=False)
    result.per_customer.to_csv(out / "per_customer.csv", index=False)  # outputs/: not in git
    report(result, best, out)


def report(result, best: dict, out: Path) -> None:
    """Print and save the headline table, ratios against both baselines, and segment rows."""
    table = result.table
    overall = table[(table["group"] == RETURNING) & (table["segment"] == "all")]
    print(f"customers: {result.customers}; catalogue {result.catalogue_size}; "
          f"relevant pairs first sold after the cutoff: {result.unreachable_share:.1%}")
    print(overall.round(4).to_string(index=False))
    per = result.per_customer[result.per_customer["group"] == RETURNING]
    recall = per.pivot(index="customer_id", columns="recommender", values="recall")
    ratios = []
    for name in recall.columns:
        for base in ["popularity", "segment_popularity"]:
            ratio, low, high = paired_ratio_interval(recall[name], recall[base], seed=SEED)
            ratios.append({"recommender": name, "baseline": base, "ratio": ratio,
                           "low": low, "high": high})
    ratios = pd.DataFrame(ratios)
    ratios.to_csv(out / "ratios.csv", index=False)
    print(ratios.round(3).to_string(index=False))
    print("new customers:")
    print(table[(table["group"] == "new") & (table["segment"] == "all")].round(4)
          .to_string(index=False))
    segments = table[(table["group"] == RETURNING) & (table["segment"] != "all")]
    print("recall per segment (returning customers):")
    print(segments.pivot(index="segment", columns="recommender", values="recall").round(4)
          .to_string())
    print("best hyperparameters (validation):", best)
    (out / "best_params.yaml").write_text(OmegaConf.to_yaml(best))


if __name__ == "__main__":
    main()
