"""Entry points: ``run.py`` (Hydra) calls :func:`main`."""

from __future__ import annotations

import logging
import math
import sys
from pathlib import Path

import pandas as pd
from omegaconf import DictConfig
from sklearn.base import clone

import segmentlab
from segmentlab import tuning
from segmentlab.cache import FrameCache, stable_hash
from segmentlab.config import (
    ConfigError,
    build,
    build_features,
    build_named_features,
    build_segmenter,
    flatten,
    resolved,
)
from segmentlab.data import OnlineRetailFile, load_dataset
from segmentlab.model import CustomerSegmentModel
from segmentlab.pipeline import (
    EvaluationSettings,
    PredictionSettings,
    RunResult,
    assess_classifiers,
    cluster_customers,
    compute_features,
    segment_customers,
)
from segmentlab.prediction import RepurchaseValidation, WindowError
from segmentlab.schema import CUSTOMER_ID, DataError, Dataset
from segmentlab.tracking import TrackingError
from segmentlab.tuning import TuningError

log = logging.getLogger("segmentlab")
DEFAULT_STORE = "sqlite:///outputs/mlflow.db"

#: Config groups whose choice becomes an MLflow tag (and part of the run name).
GROUPS = ["data", "features", "reducer", "clusterer", "classifier", "assigner", "cleaning", "tuning"]
#: Metrics shown in the console summary, in this order, when present.
SUMMARY_METRICS = ["cluster/n_clusters", "cluster/silhouette", "cluster/calinski_harabasz",
                   "cluster/davies_bouldin", "cluster/noise_fraction", "cluster/stability_ari",
                   "cluster/ari_truth", "cluster/nmi_truth", "assign/f1_macro",
                   "assign/new_customer_f1_macro", "predict/roc_auc", "predict/validation_roc_auc",
                   "predict/recency_roc_auc",
                   "predict/rfm_logreg_roc_auc", "predict/spend_mae", "predict/spend_last_period_mae"]


def main(cfg: DictConfig) -> float:
    """Run one experiment (one study with ``tuning=optuna``); bad input ends with exit status 2."""
    logging.getLogger("gensim").setLevel(logging.WARNING)  # per-epoch INFO lines drown the summary
    try:
        return run_experiment(cfg, *_hydra_context())
    except (DataError, TrackingError, TuningError, ConfigError) as e:
        print(f"segmentlab: error: {e}", file=sys.stderr)
        raise SystemExit(2) from None


def run_experiment(cfg: DictConfig, choices: dict[str, str], overrides: list[str]) -> float:
    """Load, clean, featurise, (tune,) segment and record; print a summary; return ``cfg.objective``."""
    tracker = build(cfg.tracking)
    tracker.check()  # an unusable store fails now, not after the long work
    tuned = cfg.tuning.n_trials > 0
    space = tuning.search_space(cfg, choices) if tuned else {}
    dataset = load_dataset(build(cfg.data), build(cfg.cleaning), cache_dir=cfg.cache_dir)
    print(f"cleaning ledger for {dataset.source}{' (cached)' if dataset.cache_hit else ''}:")
    print(dataset.ledger.format())

    tags = {group: choices.get(group) or "" for group in GROUPS}
    tags["features"] = "+".join(cfg.features.keys())
    nodes = [n for n in cfg.tuning.get("tune", []) if n != "clusterer" and n in tags]
    label = ".".join(tags[g] or "default" for g in [*nodes, "clusterer", "features", "reducer"])
    study = tuning.open_study(cfg, space, dataset.data_hash, label) if tuned else None
    config = resolved(cfg)
    params = {k: v for k, v in flatten(config) if tuned or not k.startswith("tuning.space.")}
    settings = _settings(cfg)
    resume = tracker.parent_of(study) if study else None
    with tracker.run(_run_name(tags), params, tags, config, overrides, resume_run_id=resume) as run_id:
        tracker.log_data(dataset)
        features = compute_features(dataset, build_features(cfg), *_feature_cache(cfg, dataset))
        tracker.log_features(features)
        if study is not None:
            tracker.link_study(study)
            evaluate = TrialEvaluator(cfg, features, dataset, settings)
            cfg = tuning.optimize(study, cfg, space, evaluate, tracker)
            best = tuning.best_trial(study)
            print(f"study {study.study_name}: best trial {best.number} {dict(best.params)}")
        result = segment_customers(features, build_segmenter(cfg), dataset, settings)
        if cfg.prediction.enabled:
            predicting = PredictionSettings(**build(cfg.prediction))  # builds the spend regressor too
            result = assess_classifiers(result, dataset, build_features(cfg),
                                        build_named_features(predicting.features, cfg.seed),
                                        build(cfg.classifier), lambda: build_segmenter(cfg), predicting,
                                        random_state=cfg.seed, fitted=features.union,
                                        assigner=build(cfg.assigner))
        tracker.log_result(result, resolved(cfg))
        if cfg.get("register_model"):
            example = dataset.transactions[dataset.transactions[CUSTOMER_ID].isin(result.labels.index[:60])]
            version = tracker.register_model(cfg.register_model, customer_model(result, cfg), example,
                                             resolved(cfg), dataset.data_hash)
            if version:
                print(f"registered model {cfg.register_model} version {version}")
                tracker.log_report(study_html(tracker.experiment, tracker.tracking_uri, run_id))
    print(summary(dataset, result, run_id, tracker.ui_command, features.cache_hit))
    objective = result.metrics.get(cfg.objective, math.nan)
    return float(objective)


def customer_model(result: RunResult, cfg: DictConfig) -> CustomerSegmentModel:
    """The deployable model of a run that assessed its classifiers."""
    if "segment_assigner" not in result.models:
        raise TuningError("register_model needs the classifier stage: set prediction.enabled=true")
    return CustomerSegmentModel(result.labels, result.profile["name"].to_dict(),
                                result.models["segment_assigner"], result.models.get("repurchase"),
                                build(cfg.cleaning).get_params())


class TrialEvaluator:
    """Scores one trial's config: clustering metrics, plus ``predict/validation_*`` when a tuning
    metric asks for them; a degenerate clustering fails the trial.

    Work no tuned value can change is done once per study: the clustering, when only the
    classifier is tuned, and the repurchase feature windows.
    """

    def __init__(self, cfg: DictConfig, features, dataset: Dataset, settings: EvaluationSettings):
        self.features, self.dataset, self.settings = features, dataset, settings
        self.recluster = set(cfg.tuning.get("tune", ["clusterer"])) != {"classifier"}
        self._clustering = None
        self.validation = None
        if any(m.startswith("predict/validation_") for m in cfg.tuning.metrics):
            self.validation = _validation(cfg, dataset)

    def __call__(self, cfg: DictConfig) -> tuning.TrialOutcome:
        clustering = self._clustering
        if clustering is None or self.recluster:
            clustering = cluster_customers(self.features.frame, build_segmenter(cfg), self.dataset.truth,
                                           self.settings)
            self._clustering = None if self.recluster else clustering
        if clustering.reasons:
            return tuning.TrialOutcome(clustering.metrics, "degenerate: " + "; ".join(clustering.reasons),
                                       clustering.labels)
        metrics = dict(clustering.metrics)
        if self.validation is not None:
            metrics.update(self.validation.score(build(cfg.classifier), lambda: build_segmenter(cfg)))
        return tuning.TrialOutcome(metrics, None, clustering.labels)


def _validation(cfg: DictConfig, dataset: Dataset) -> RepurchaseValidation:
    """The repurchase validation of a config, checked: a window without data is a TuningError."""
    union = build_named_features(list(cfg.prediction.features), cfg.seed)
    validation = RepurchaseValidation.of(dataset.transactions, lambda: clone(union),
                                         cfg.prediction.horizon_days)
    try:
        validation.check()
    except WindowError as e:
        raise TuningError(f"predict/validation_* needs three horizons of data "
                          f"(3 × prediction.horizon_days={cfg.prediction.horizon_days}): {e}") from None
    return validation


def _hydra_context() -> tuple[dict[str, str], list[str]]:
    """Group choices and command-line overrides of the running Hydra job (empty outside Hydra)."""
    from hydra.core.hydra_config import HydraConfig

    if not HydraConfig.initialized():
        return {}, []
    hydra_cfg = HydraConfig.get()
    choices = {k: str(v) for k, v in hydra_cfg.runtime.choices.items() if v is not None}
    return choices, list(hydra_cfg.overrides.task)


def _feature_cache(cfg: DictConfig, dataset: Dataset) -> tuple[FrameCache | None, str | None]:
    if cfg.cache_dir is None:
        return None, None
    key = stable_hash({"data": dataset.data_hash, "cleaning": resolved(cfg.cleaning),
                       "features": resolved(cfg.features), "version": segmentlab.__version__})
    return FrameCache(Path(cfg.cache_dir) / "features"), key


def _settings(cfg: DictConfig) -> EvaluationSettings:
    return EvaluationSettings(**resolved(cfg.evaluation), random_state=cfg.seed)


def _run_name(tags: dict[str, str]) -> str:
    return " · ".join(tags[g] for g in ["clusterer", "features", "reducer"] if tags.get(g))


def summary(dataset: Dataset, result: RunResult, run_id: str | None, ui_command: str | None,
            features_cached: bool) -> str:
    """The few lines a person reads when a run ends."""
    ledger = dataset.ledger
    lines = [
        "",
        f"rows       {ledger.rows_in:,} in, {ledger.rows_kept:,} purchases kept "
        f"({ledger.dropped.get('cancellation_kept_as_return', 0):,} returns kept aside)",
        f"customers  {len(result.labels):,}   features {result.features.shape[1]}"
        f"{' (cached)' if features_cached else ''}",
        "segments:",
    ]
    width = max(len(str(n)) for n in result.profile["name"])
    for label, row in result.profile.iterrows():
        lines.append(f"  {label:>3}  {row['name']:<{width}} {int(row['n_customers']):>7,} customers "
                     f"({row['share_customers']:.0%}), {row['share_revenue']:.0%} of revenue")
    shown = [(k, result.metrics[k]) for k in SUMMARY_METRICS if k in result.metrics]
    for stage in dict.fromkeys(k.split("/")[0] for k, _ in shown):
        values = "   ".join(f"{k.split('/', 1)[1]} {v:.3g}" for k, v in shown if k.startswith(stage + "/"))
        lines.append(f"{stage + ':':<10} {values}")
    if result.tags.get("degenerate"):
        lines.append(f"degenerate: {result.tags['degenerate']}")
    if run_id:
        lines.append(f"mlflow run {run_id}")
        lines.append(f"open the UI: {ui_command}")
    return "\n".join(lines)


def reproduce(run_id: str, tracking_uri: str) -> int:
    """Rebuild a logged run (a trial's included) from its config and compare labels and metrics.

    Returns 0 when the labels agree exactly (ARI 1.0) and every logged ``cluster/*`` and
    ``predict/validation_*`` metric is reproduced, 1 otherwise.
    """
    import numpy as np
    from omegaconf import OmegaConf
    from sklearn.metrics import adjusted_rand_score

    from segmentlab.tracking import fetch_run

    logged = fetch_run(run_id, tracking_uri)
    cfg = OmegaConf.create(logged.config)
    dataset = load_dataset(build(cfg.data), build(cfg.cleaning), cache_dir=cfg.cache_dir)
    if logged.data_hash and dataset.data_hash != logged.data_hash:
        print(f"warning: data hash {dataset.data_hash} differs from the run's {logged.data_hash}")
    features = compute_features(dataset, build_features(cfg), *_feature_cache(cfg, dataset))
    clustering = cluster_customers(features.frame, build_segmenter(cfg), dataset.truth, _settings(cfg))
    common = clustering.labels.index.intersection(logged.labels.index)
    ari = adjusted_rand_score(logged.labels.loc[common], clustering.labels.loc[common])
    print(f"reproduced run {run_id} ({logged.name})")
    print(f"  labels: ARI {ari:.4f} against the logged labels on {len(common):,} customers "
          f"({len(logged.labels):,} logged, {len(clustering.labels):,} now)")
    metrics = dict(clustering.metrics)
    if any(k.startswith("predict/validation_") for k in logged.metrics):
        metrics.update(_validation(cfg, dataset).score(build(cfg.classifier), lambda: build_segmenter(cfg)))
    mismatched = 0
    for key in sorted(k for k in logged.metrics if k.startswith(("cluster/", "predict/validation_"))):
        then, now = logged.metrics[key], metrics.get(key, math.nan)
        same = (np.isnan(then) and np.isnan(now)) or bool(np.isclose(then, now, rtol=1e-6, atol=1e-9))
        mismatched += not same
        print(f"  {key:<28} logged {then:>12.6g}   now {now:>12.6g}   {'ok' if same else 'DIFFERENT'}")
    exact = ari == 1.0 and len(common) == len(logged.labels) == len(clustering.labels) and not mismatched
    print("agreement: exact" if exact else "agreement: NOT exact")
    return 0 if exact else 1


def predict(model_uri: str, transactions: str, out: str, tracking_uri: str) -> int:
    """Clean a transactions file the way the model's training data was and write its segments."""
    from segmentlab.cleaning import TransactionCleaner
    from segmentlab.tracking import load_model

    model = load_model(model_uri, tracking_uri)
    cleaner = TransactionCleaner(**model.cleaning)
    dataset = load_dataset(OnlineRetailFile(transactions), cleaner, cache_dir=None)
    segments = model.predict(dataset.transactions)
    Path(out).parent.mkdir(parents=True, exist_ok=True)
    segments.to_csv(out, index=False)
    counts = segments["assigned_by"].value_counts()
    print(f"{len(segments):,} customers → {out} ({counts.get('training', 0):,} known from training, "
          f"{counts.get('classifier', 0):,} assigned by the classifier)")
    print(segments["segment_name"].value_counts().to_string())
    return 0


def study_html(experiment: str, tracking_uri: str, run_id: str | None = None) -> str:
    """The study report of an experiment; details for ``run_id``, else the registered model's run,
    else the best non-degenerate run by silhouette."""
    from segmentlab.reporting import RunDetails, study_report
    from segmentlab.tracking import fetch_study, fetch_tables, registered_run

    runs = fetch_study(experiment, tracking_uri)
    if runs.empty:
        raise TrackingError(f"experiment '{experiment}' in {tracking_uri} has no finished runs")
    best_id = run_id or registered_run("segmentlab", tracking_uri)
    if best_id is None or best_id not in set(runs["run_id"]):
        ok = runs[runs.get("degenerate", pd.Series(index=runs.index, dtype=str)).isna()]
        ok = ok if "cluster/silhouette" in ok and ok["cluster/silhouette"].notna().any() else runs
        best_id = ok.sort_values("cluster/silhouette", ascending=False).iloc[0]["run_id"]
    row = runs.set_index("run_id").loc[best_id]
    metrics = {k: float(v) for k, v in row.items() if "/" in str(k) and pd.notna(v)}
    tables = fetch_tables(best_id, ["segments/profile", "tables/customer_map",
                                    "tables/predict_importance", "data/cleaning_ledger"])
    profile = tables.get("segments/profile", pd.DataFrame({"segment": []})).set_index("segment")
    details = RunDetails(
        run_id=best_id, run_name=str(row.get("run_name", best_id)), metrics=metrics, profile=profile,
        map_points=tables.get("tables/customer_map"), importance=tables.get("tables/predict_importance"),
        prediction={k: v for k, v in metrics.items() if k.startswith("predict/")} or None,
        ledger=tables.get("data/cleaning_ledger"))
    return study_report(runs, details, title=f"segmentlab study: {experiment}")


def report(experiment: str, out: str, run_id: str | None, tracking_uri: str) -> int:
    """Write the study report of an MLflow experiment as one self-contained HTML file."""
    html = study_html(experiment, tracking_uri, run_id)
    Path(out).parent.mkdir(parents=True, exist_ok=True)
    Path(out).write_text(html, encoding="utf-8")
    print(f"study report → {out} ({len(html) / 1e6:.1f} MB; open it in a browser, works offline)")
    return 0


def eda(data: str, out: str) -> int:
    """Write the exploratory report of a transactions file (default cleaning)."""
    from segmentlab.cleaning import TransactionCleaner
    from segmentlab.eda import eda_report

    source = OnlineRetailFile(data)
    dataset = load_dataset(source, TransactionCleaner(), cache_dir="outputs/cache")
    html = eda_report(dataset, raw=source.read())
    Path(out).parent.mkdir(parents=True, exist_ok=True)
    Path(out).write_text(html, encoding="utf-8")
    print(f"EDA report → {out} ({len(html) / 1e6:.1f} MB; open it in a browser, works offline)")
    return 0


def console(argv: list[str] | None = None) -> int:
    """The ``segmentlab`` command."""
    import argparse
    import os

    parser = argparse.ArgumentParser(prog="segmentlab", description=__doc__)
    commands = parser.add_subparsers(dest="command", required=True)
    rep = commands.add_parser("reproduce", help="rebuild a logged run from its config and compare")
    rep.add_argument("run_id")
    pred = commands.add_parser("predict", help="segments for the customers in a transactions file")
    pred.add_argument("--model", default="models:/segmentlab/latest",
                      help="registered model or run model URI (default models:/segmentlab/latest)")
    pred.add_argument("--transactions", required=True, help="a file in any supported layout")
    pred.add_argument("--out", required=True, help="CSV to write: one row per customer")
    rpt = commands.add_parser("report", help="interactive HTML report of a study (an MLflow experiment)")
    rpt.add_argument("--experiment", default="segmentlab")
    rpt.add_argument("--out", default="outputs/report.html")
    rpt.add_argument("--run", help="run to detail (default: the registered model's run, else the best)")
    eda_cmd = commands.add_parser("eda", help="interactive HTML exploratory report of a data file")
    eda_cmd.add_argument("--data", required=True, help="a transactions file in any supported layout")
    eda_cmd.add_argument("--out", default="outputs/eda.html")
    for sub in (rep, pred, rpt):
        sub.add_argument("--tracking-uri", default=os.environ.get("MLFLOW_TRACKING_URI", DEFAULT_STORE),
                         help=f"MLflow store holding the run or model (default {DEFAULT_STORE})")
    args = parser.parse_args(argv)
    try:
        if args.command == "predict":
            return predict(args.model, args.transactions, args.out, args.tracking_uri)
        if args.command == "report":
            return report(args.experiment, args.out, args.run, args.tracking_uri)
        if args.command == "eda":
            return eda(args.data, args.out)
        return reproduce(args.run_id, args.tracking_uri)
    except (DataError, TrackingError, TuningError) as e:
        print(f"segmentlab: error: {e}", file=sys.stderr)
        return 2
