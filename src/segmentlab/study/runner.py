"""Running an experiment: load, featurise, (tune,) segment, predict, record, summarise.

`run` is what ``python run.py`` does for one Hydra job. Every stage that needs more data than
the file has is skipped with a one-line reason (console, and a ``skipped/<stage>`` tag in
MLflow) instead of failing the run; only input that cannot be read at all ends with exit 2. A
file read out of core (``data.engine``) is run by `segmentlab.study.outofcore.run_out_of_core`.
"""

from __future__ import annotations

import math
from dataclasses import replace

from segmentlab import vocabulary
from segmentlab.config import flatten
from segmentlab.data.loading import load_dataset
from segmentlab.data.outofcore.engine import choose_engine
from segmentlab.features.matrix import FeatureResult, compute_features
from segmentlab.prediction.assess import Assessment, assess_classifiers
from segmentlab.prediction.model import CustomerSegmentModel
from segmentlab.prediction.repurchase import WindowError
from segmentlab.schema import CUSTOMER_ID, DataError, Dataset
from segmentlab.segmentation.segmenting import Segmentation, segment_customers
from segmentlab.study import tuning
from segmentlab.study.experiment import Experiment
from segmentlab.study.results import RunResult, draw_figures, gather
from segmentlab.study.trials import TrialEvaluator
from segmentlab.study.tuning import TuningError


def run(experiment: Experiment) -> float:
    """Run one experiment (one study when tuning is on) and return its ``objective``."""
    if choose_engine(experiment.source) == "duckdb":
        from segmentlab.study.outofcore import run_out_of_core

        return run_out_of_core(experiment)
    tracker = experiment.tracker
    tracker.check()  # an unusable store fails now, not after the long work
    space = tuning.search_space(experiment.config, experiment.choices) if experiment.tuned else {}
    dataset = load_dataset(experiment.source, experiment.cleaner, cache_dir=experiment.config.cache_dir)
    for note in dataset.notes:  # which files and sheets were read, overlaps, decoding warnings
        print(note)
    print(f"cleaning ledger for {dataset.source}{' (cached)' if dataset.cache_hit else ''}:")
    print(dataset.ledger.format())
    study = (tuning.open_study(experiment.config, space, dataset.data_hash, experiment.label)
             if experiment.tuned else None)
    config = experiment.resolved_config()
    params = {k: v for k, v in flatten(config) if study or not k.startswith("tuning.space.")}
    resume = tracker.parent_of(study) if study else None
    with tracker.run(run_name(experiment), params, experiment.tags, config,
                     list(experiment.overrides), resume_run_id=resume) as run_id:
        tracker.log_data(dataset)
        features = compute_features(dataset, experiment.features(), *experiment.feature_cache(dataset))
        tracker.log_features(features)
        chosen = experiment
        if study is not None:
            tracker.link_study(study)
            best = tuning.optimize(study, experiment, space, TrialEvaluator(experiment, features, dataset))
            print(f"study {study.study_name}: best trial {best.number} {dict(best.params)}")
            chosen = experiment.with_params(best.params)
        segmentation, result = run_stages(chosen, dataset, features)
        for stage, reason in result.skipped.items():
            tracker.log_skipped(stage, reason)
        tracker.log_result(result, chosen.resolved_config())
        if chosen.register_model:
            register(chosen, dataset, features, segmentation, result, run_id)
    print(summary(dataset, result, run_id, tracker.ui_command, features.cache_hit))
    return float(result.metrics.get(experiment.objective, math.nan))


def run_stages(experiment: Experiment, dataset: Dataset,
               features: FeatureResult) -> tuple[Segmentation, RunResult]:
    """Segment the customers, then each enabled stage the data allows."""
    segmentation = segment_customers(features.frame, experiment.segmenter(), dataset,
                                     experiment.evaluation)
    assessment, skipped = None, {}
    if experiment.prediction.enabled:
        assessment = predict_stage(experiment, dataset, features, segmentation)
        if assessment.skipped:
            skipped["prediction"] = assessment.skipped
    result = replace(gather(features, segmentation, assessment), skipped=skipped)
    if experiment.dynamics.enabled:
        result = dynamics_stage(experiment, dataset, features, segmentation, result)
    if experiment.tracker.records:
        result = draw_figures(result, segmentation, experiment.evaluation)
    return segmentation, result


def segment_tracker(experiment: Experiment, dataset: Dataset, features: FeatureResult,
                    segmentation: Segmentation):
    """The run's fitted feature sets and segmenter, ready to follow segments through time."""
    from segmentlab.dynamics.tracker import SegmentTracker

    union = features.union if features.union is not None else \
        experiment.features().fit(dataset.transactions)  # features came from the cache
    tracker = SegmentTracker(union, segmentation.clustering.segmenter, experiment.dynamics)
    return tracker.fit(dataset.transactions, segmentation.labels, segmentation.profile)


def dynamics_stage(experiment: Experiment, dataset: Dataset, features: FeatureResult,
                   segmentation: Segmentation, result: RunResult) -> RunResult:
    """Snapshots, migrations and early warnings (``dynamics.enabled``), or why not."""
    tracker = segment_tracker(experiment, dataset, features, segmentation)
    try:
        dynamics = tracker.track(dataset.transactions, value=_value_at_stake(result))
    except DataError as e:  # too short a history for two snapshots
        return replace(result, skipped={**result.skipped, "dynamics": str(e)})
    sections = {}
    if experiment.tracker.records:
        from segmentlab.reports.dynamics import dynamics_section

        sections["dynamics_section"] = dynamics_section(dynamics, top=experiment.dynamics.top_warnings)
    return replace(result, metrics={**result.metrics, **dynamics.metrics},
                   tables={**result.tables, **dynamics.tables},
                   sections={**result.sections, **sections},
                   models={**result.models, "segment_tracker": tracker})


def _value_at_stake(result: RunResult):
    """Lifetime value per customer when the run estimated it, else None (trailing spend is used)."""
    value = result.tables.get("customer_value")
    return None if value is None or "clv_12m" not in value else value["clv_12m"]


def predict_stage(experiment: Experiment, dataset: Dataset, features: FeatureResult,
                  segmentation: Segmentation) -> Assessment:
    """Segment assignment and repurchase prediction, or why they cannot run on this data."""
    settings = experiment.prediction
    try:
        return assess_classifiers(
            segmentation, features.frame, dataset, experiment.features(),
            experiment.prediction_features(), experiment.classifier(), experiment.assigner(),
            experiment.segmenter, horizon_days=settings.horizon_days, n_rolling=settings.n_rolling,
            new_customer_invoices=settings.new_customer_invoices,
            importance_repeats=settings.importance_repeats, surrogate_depth=settings.surrogate_depth,
            test_size=settings.test_size, spend_regressor=experiment.spend_regressor(),
            random_state=experiment.seed, fitted=features.union)
    except WindowError as e:
        return Assessment(skipped=str(e))


def register(experiment: Experiment, dataset: Dataset, features: FeatureResult,
             segmentation: Segmentation, result: RunResult, run_id: str | None) -> None:
    """Register the run's deployable model and log the study report beside it."""
    tracker = experiment.tracker
    if "segment_assigner" not in result.models:
        why = result.skipped.get("prediction") or result.tags.get("prediction_skipped") or "it is off"
        raise TuningError(f"register_model needs the prediction stage, which did not run ({why}); "
                          "set prediction.enabled=true and use data with enough history")
    dynamics = result.models.get("segment_tracker") or segment_tracker(experiment, dataset, features,
                                                                      segmentation)
    model = CustomerSegmentModel(result.labels, result.profile["name"].to_dict(),
                                 result.models["segment_assigner"], result.models.get("repurchase"),
                                 experiment.cleaner.get_params(), dynamics=dynamics)
    customers = result.labels.index[:60]
    example = dataset.transactions[dataset.transactions[CUSTOMER_ID].isin(customers)]
    version = tracker.register_model(experiment.register_model, model, example,
                                     experiment.resolved_config(), dataset.data_hash)
    if version:
        from segmentlab.study.report import study_html

        print(f"registered model {experiment.register_model} version {version}")
        tracker.log_report(study_html(tracker.experiment, tracker.tracking_uri, run_id))


def run_name(experiment: Experiment) -> str:
    """``kmeans · rfm+behaviour · none``: the run's name in MLflow."""
    tags = experiment.tags
    return " · ".join(tags[g] for g in vocabulary.RUN_NAME_GROUPS if tags.get(g))


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
    if run_id:
        lines.append(f"mlflow run {run_id}")
        lines.append(f"open the UI: {ui_command}")
    return "\n".join(lines)
