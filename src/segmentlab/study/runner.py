"""Running an experiment: load, featurise, (tune,) segment, predict, record, summarise.

`run` is what ``python run.py`` does for one Hydra job. Every stage that needs more data than
the file has is skipped with a one-line reason (console, and a ``skipped/<stage>`` tag in
MLflow) instead of failing the run; only input that cannot be read at all ends with exit 2. A
file read out of core (``data.engine``) is run by `segmentlab.study.outofcore.run_out_of_core`.
"""

from __future__ import annotations

import math
from contextlib import contextmanager
from dataclasses import replace
from datetime import datetime
from time import perf_counter

from segmentlab import vocabulary
from segmentlab.cache import stable_hash
from segmentlab.config import ConfigError, flatten
from segmentlab.data.loading import load_dataset
from segmentlab.data.outofcore.engine import choose_engine
from segmentlab.features.matrix import FeatureResult, compute_features
from segmentlab.prediction.model import CustomerSegmentModel
from segmentlab.schema import CUSTOMER_ID, Dataset
from segmentlab.segmentation.segmenting import Segmentation, fit_to_customers, segment_customers
from segmentlab.study.experiment import Experiment
from segmentlab.study.results import RunResult, draw_figures, gather
from segmentlab.study.stages import dynamics_stage, predict_stage, recommend_stage, segment_tracker


def run(experiment: Experiment) -> float:
    """Run one experiment (one study when tuning is on) and return its ``objective``."""
    from threadpoolctl import threadpool_limits

    with threadpool_limits(limits=experiment.threads):  # see ``threads`` in configs/config.yaml
        if choose_engine(experiment.source) == "duckdb":
            from segmentlab.study.outofcore import run_out_of_core

            return run_out_of_core(experiment)
        return _run(experiment)


def _run(experiment: Experiment) -> float:
    tracker = experiment.tracker
    tracker.check()  # an unusable store fails now, not after the long work
    space = search_space(experiment)
    seconds: dict[str, float] = {}
    with timed(seconds, "load"):
        dataset = load_dataset(experiment.source, experiment.cleaner, cache_dir=experiment.config.cache_dir)
    print_ledger(dataset)
    with tracked_run(experiment, dataset, space) as (run_id, study):
        with timed(seconds, "features"):
            features = compute_features(dataset, experiment.features(), *experiment.feature_cache(dataset))
        tracker.log_features(features)
        chosen = tune(experiment, study, space, features, dataset, seconds)
        segmentation, result = run_stages(chosen, dataset, features, seconds)
        for stage, reason in result.skipped.items():
            tracker.log_skipped(stage, reason)
        tracker.log_result(result, chosen.resolved_config())
        if chosen.register_model:
            register(chosen, dataset, features, segmentation, result, run_id)
    print(summary(dataset, result, run_id, tracker.ui_command, features.cache_hit))
    return float(result.metrics.get(experiment.objective, math.nan))


def run_stages(experiment: Experiment, dataset: Dataset, features: FeatureResult,
               seconds: dict[str, float] | None = None) -> tuple[Segmentation, RunResult]:
    """Segment the customers, then each enabled stage the data allows.

    ``seconds`` collects wall seconds per stage; they become ``time/<stage>_seconds`` metrics.
    """
    seconds = {} if seconds is None else seconds
    segmenter, adjusted = fit_to_customers(experiment.segmenter(), len(features.frame),
                                           experiment.evaluation)
    for note in adjusted:
        print(note)
    with timed(seconds, "segment"):
        segmentation = segment_customers(features.frame, segmenter, dataset, experiment.evaluation,
                                         summary=experiment.customer_summary(dataset))
    assessment, skipped = None, {}
    if experiment.prediction.enabled:
        with timed(seconds, "prediction"):
            assessment = predict_stage(experiment, dataset, features, segmentation)
        if assessment.skipped:
            skipped["prediction"] = assessment.skipped
    result = replace(gather(features, segmentation, assessment), skipped=skipped)
    if adjusted:
        result = replace(result, tags={**result.tags, "segmenter_adjusted": "; ".join(adjusted)})
    if experiment.dynamics.enabled:
        with timed(seconds, "dynamics_stage"):
            result = dynamics_stage(experiment, dataset, features, segmentation, result)
    if experiment.recommender() is not None:
        with timed(seconds, "recommend"):
            result = recommend_stage(experiment, dataset, features, segmentation, result)
    if experiment.tracker.records:
        with timed(seconds, "figures"):
            result = draw_figures(result, segmentation, experiment.evaluation)
    stages = {f"time/{stage}_seconds": value for stage, value in seconds.items()}
    return segmentation, replace(result, metrics={**result.metrics, **stages})


def search_space(experiment: Experiment) -> dict:
    """The tuned search space, empty without tuning (Optuna loads only for studies)."""
    if not experiment.tuned:
        return {}
    from segmentlab.study import tuning

    return tuning.search_space(experiment.config, experiment.choices)


def print_ledger(dataset: Dataset, engine: str = "") -> None:
    """What was read (files and sheets, overlaps, decoding warnings) and the cleaning ledger."""
    for note in dataset.notes:
        print(note)
    how = ", ".join(filter(None, [engine, "cached" if dataset.cache_hit else ""]))
    print(f"cleaning ledger for {dataset.source}{f' ({how})' if how else ''}:")
    print(dataset.ledger.format())


@contextmanager
def tracked_run(experiment: Experiment, dataset: Dataset, space: dict):
    """The run in the tracker — a study's one parent run when tuning, resumed if it exists —
    with the data logged; yields ``(run_id, study)``, the study None without tuning."""
    tracker = experiment.tracker
    study = None
    if experiment.tuned:
        from segmentlab.study import tuning

        study = tuning.open_study(experiment.config, space, dataset.data_hash, experiment.label)
    config = experiment.resolved_config()
    params = {k: v for k, v in flatten(config) if study or not k.startswith("tuning.space.")}
    name = run_name(experiment, dataset.data_hash, study)
    resume = tracker.parent_of(study, name) if study else None
    with tracker.run(name, params, experiment.tags, config,
                     list(experiment.overrides), resume_run_id=resume) as run_id:
        tracker.log_data(dataset)
        yield run_id, study


def tune(experiment: Experiment, study, space: dict, features: FeatureResult, dataset: Dataset,
         seconds: dict[str, float]) -> Experiment:
    """Run the study's trials and return the experiment with its best settings (the experiment
    itself without a study)."""
    if study is None:
        return experiment
    from segmentlab.study import tuning
    from segmentlab.study.trials import TrialEvaluator

    experiment.tracker.link_study(study)
    with timed(seconds, "tuning"):
        best = tuning.optimize(study, experiment, space, TrialEvaluator(experiment, features, dataset))
    print(f"study {study.study_name}: best trial {best.number} {dict(best.params)}")
    return experiment.with_params(best.params)


@contextmanager
def timed(seconds: dict[str, float], stage: str):
    """Add the wall seconds of the block to ``seconds[stage]``."""
    start = perf_counter()
    try:
        yield
    finally:
        seconds[stage] = seconds.get(stage, 0.0) + perf_counter() - start


def register(experiment: Experiment, dataset: Dataset, features: FeatureResult,
             segmentation: Segmentation, result: RunResult, run_id: str | None) -> None:
    """Register the run's deployable model and log the study report beside it."""
    tracker = experiment.tracker
    if "segment_assigner" not in result.models:
        why = result.skipped.get("prediction") or result.tags.get("prediction_skipped") or "it is off"
        raise ConfigError(f"register_model needs the prediction stage, which did not run ({why}); "
                          "set prediction.enabled=true and use data with enough history")
    dynamics = result.models.get("segment_tracker") or segment_tracker(experiment, dataset, features,
                                                                      segmentation)
    model = CustomerSegmentModel(result.labels, result.profile["name"].to_dict(),
                                 result.models["segment_assigner"], result.models.get("repurchase"),
                                 experiment.cleaner.get_params(), dynamics=dynamics,
                                 recommender=result.models.get("recommender"),
                                 value=result.models.get("customer_value"))
    customers = result.labels.index[:60]
    example = dataset.transactions[dataset.transactions[CUSTOMER_ID].isin(customers)]
    version = tracker.register_model(experiment.register_model, model, example,
                                     experiment.resolved_config(), dataset.data_hash,
                                     alias=experiment.model_alias)
    if version:
        from segmentlab.study.report import study_html

        alias = f" as models:/{experiment.register_model}@{experiment.model_alias}" \
            if experiment.model_alias else ""
        print(f"registered model {experiment.register_model} version {version}{alias}")
        tracker.log_report(study_html(tracker.experiment, tracker.tracking_uri, run_id,
                                      model_name=experiment.register_model,
                                      alias=experiment.model_alias, objective=experiment.objective))


#: Stages whose wall seconds the console summary shows, in this order.
STAGES = ("load", "features", "tuning", "segment", "prediction", "dynamics_stage", "recommend", "figures")


def run_name(experiment: Experiment, data_hash: str, study=None, now: datetime | None = None) -> str:
    """``kmeans · rfm+behaviour · none · 3f9a1c · 2026-11-29 14:02``: the run's name in MLflow.

    The hash is the study's (data and every untuned config value) or, without tuning, the same
    over the data and the whole config, so two studies never share a name; the start time tells
    apart repeated runs of one config (a resumed study keeps its first name).
    """
    tags = experiment.tags
    if study is not None:
        digest = study.study_name.rsplit(".", 1)[-1][:6]
    else:
        digest = stable_hash({"config": experiment.resolved_config(), "data": data_hash}, 6)
    when = (now or datetime.now()).strftime("%Y-%m-%d %H:%M")
    return " · ".join([*(tags[g] for g in vocabulary.RUN_NAME_GROUPS if tags.get(g)), digest, when])


def prediction_warning(metrics: dict[str, float]) -> str | None:
    """Why the repurchase model should not be trusted as it is, or None.

    Recency alone needs no training, so a model below it on the same customers — at the
    validation windows or at the evaluation cutoff — learnt something that does not carry over
    (e.g. pooled training windows from periods that behave differently).
    """
    for prefix, where in [("predict/validation_", "the validation windows"), ("predict/", "evaluation")]:
        model, recency = metrics.get(f"{prefix}roc_auc"), metrics.get(f"{prefix}recency_roc_auc")
        if model is not None and recency is not None and math.isfinite(model) \
                and math.isfinite(recency) and model < recency:
            return (f"ROC AUC {model:.3f} is below recency alone ({recency:.3f}) on {where}; "
                    "tables/predict_candidates.csv compares pooled with one-cutoff training "
                    "(prediction.train_cutoffs.compare_one_cutoff, every_days=null); more "
                    "validation windows (prediction.validation_windows) steady the choice")
    return None


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
    shown = [(k, result.metrics[k]) for k in vocabulary.shown(result.metrics, "summary")]
    for stage in dict.fromkeys(k.split("/")[0] for k, _ in shown):
        values = "   ".join(f"{k.split('/', 1)[1]} {v:.3g}" for k, v in shown if k.startswith(stage + "/"))
        lines.append(f"{stage + ':':<10} {values}")
    if result.tags.get("degenerate"):
        lines.append(f"degenerate: {result.tags['degenerate']}")
    for stage, reason in result.skipped.items():
        lines.append(f"skipped: {stage}: {reason}")
    warning = prediction_warning(result.metrics)
    if warning:
        lines.append(f"warning: prediction: {warning}")
    spent = {stage: result.metrics[f"time/{stage}_seconds"] for stage in STAGES
             if f"time/{stage}_seconds" in result.metrics}
    if spent:
        lines.append(f"{'seconds:':<10} " + "   ".join(f"{k} {v:.1f}" for k, v in spent.items()))
    if run_id:
        lines.append(f"mlflow run {run_id}")
        lines.append(f"open the UI: {ui_command}")
    return "\n".join(lines)
