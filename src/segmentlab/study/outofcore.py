"""The run of a file read out of core (``data.engine=duckdb``): `run_out_of_core`.

`segmentlab.study.runner.run` hands over here when `choose_engine` picks DuckDB. The invoice lines
stay in DuckDB (`segmentlab.data.outofcore`); the run gets the cleaning ledger, the customer
feature matrix and the customer summary, and clusters, profiles, tunes and records them as `run`
does. What reads the lines themselves is skipped with a one-line reason (console, and a
``skipped/<stage>`` tag): prediction, segments through time, recommendations and feature sets
other than rfm and behaviour. The customer-level frames are cached under the file's content hash,
the cleaning and the feature sets, so the next run does not read the file again.
"""

from __future__ import annotations

import math
from dataclasses import replace
from pathlib import Path

import pandas as pd

import segmentlab
from segmentlab.cache import FrameCache, stable_hash
from segmentlab.config import ConfigError, resolved
from segmentlab.features.matrix import FeatureResult
from segmentlab.schema import CleaningLedger, Dataset
from segmentlab.segmentation.segmenting import fit_to_customers, segment_customers
from segmentlab.study.experiment import Experiment
from segmentlab.study.results import draw_figures, gather
from segmentlab.study.runner import print_ledger, search_space, summary, timed, tracked_run, tune

_WHY = "data.engine=duckdb keeps the invoice lines out of memory; use data.engine=pandas"


def run_out_of_core(experiment: Experiment) -> float:
    """`runner.run` for a source DuckDB reads; returns the run's ``objective``."""
    tracker = experiment.tracker
    tracker.check()
    _check_asks(experiment)
    space = search_space(experiment)
    seconds: dict[str, float] = {}
    with timed(seconds, "load"):  # read, clean and the feature sets: one DuckDB session
        dataset, features, customers, skipped = load_customers(experiment)
    print_ledger(dataset, "duckdb")
    with tracked_run(experiment, dataset, space) as (run_id, study):
        tracker.log_features(features)
        chosen = tune(experiment, study, space, features, dataset, seconds)
        segmenter, adjusted = fit_to_customers(chosen.segmenter(), len(features.frame),
                                               chosen.evaluation)
        for note in adjusted:
            print(note)
        with timed(seconds, "segment"):
            segmentation = segment_customers(features.frame, segmenter, dataset,
                                             chosen.evaluation, summary=customers)
        result = replace(gather(features, segmentation), skipped=skipped)
        if adjusted:
            result = replace(result, tags={**result.tags, "segmenter_adjusted": "; ".join(adjusted)})
        if chosen.tracker.records:
            with timed(seconds, "figures"):
                result = draw_figures(result, segmentation, chosen.evaluation)
        stages = {f"time/{stage}_seconds": value for stage, value in seconds.items()}
        result = replace(result, metrics={**result.metrics, **stages})
        for stage, reason in result.skipped.items():
            tracker.log_skipped(stage, reason)
        tracker.log_result(result, chosen.resolved_config())
    print(summary(dataset, result, run_id, tracker.ui_command, features.cache_hit))
    return float(result.metrics.get(experiment.objective, math.nan))


def load_customers(experiment: Experiment
                   ) -> tuple[Dataset, FeatureResult, pd.DataFrame, dict[str, str]]:
    """The run's data as customer-level frames, from the cache or from DuckDB.

    Returns
    -------
    dataset : Dataset
        Ledger, notes and provenance; ``transactions`` is None.
    features : FeatureResult
        The feature matrix of the sets DuckDB computes.
    summary : DataFrame
        The customer summary of segment profiles.
    skipped : dict
        Stage to the one-line reason it cannot run out of core.
    """
    from segmentlab.data.outofcore import CustomerFrames, read_customers

    source, cleaner = experiment.source, experiment.cleaner
    data_hash = source.fingerprint()
    cache, key = None, None
    if experiment.config.cache_dir is not None:
        cache = FrameCache(Path(experiment.config.cache_dir) / "outofcore")
        key = stable_hash({"data": data_hash, "cleaning": cleaner.get_params(),
                           "features": resolved(experiment.config.features),
                           "version": segmentlab.__version__})
    hit = cache.load(key) if cache is not None else None
    if hit is None:
        frames = read_customers(source, cleaner, experiment.features())
        if cache is not None:
            cache.save(key, {"features": frames.features, "summary": frames.summary,
                             **{f"table:{name}": t for name, t in frames.tables.items()}},
                       {"ledger": frames.ledger.to_dict(), "notes": list(frames.notes),
                        "metrics": frames.metrics, "left_out": frames.left_out})
    else:
        tables, meta = hit
        frames = CustomerFrames(CleaningLedger.from_dict(meta["ledger"]), tuple(meta["notes"]),
                                tables["features"], tables["summary"], meta["metrics"],
                                {n[len("table:"):]: t for n, t in tables.items() if n.startswith("table:")},
                                meta["left_out"])
    dataset = Dataset(None, frames.ledger, data_hash, source.describe(), source.truth(),
                      cache_hit=hit is not None, notes=frames.notes)
    features = FeatureResult(frames.features, frames.metrics, frames.tables, cache_hit=hit is not None)
    return dataset, features, frames.summary, _skipped(experiment, frames.left_out)


def _skipped(experiment: Experiment, left_out: dict[str, str]) -> dict[str, str]:
    """The stages that read invoice lines, each with why it did not run."""
    skipped = {}
    if left_out:
        sets = ", ".join(f"{name} ({kind})" for name, kind in left_out.items())
        skipped["features"] = (f"{sets} read every invoice line, and {_WHY}; the run uses the "
                               f"other feature sets")
    if experiment.prediction.enabled:
        skipped["prediction"] = f"prediction builds features per time window from the lines, and {_WHY}"
    if experiment.dynamics.enabled:
        skipped["dynamics"] = f"segments through time refit the features per window, and {_WHY}"
    if experiment.recommender() is not None:
        skipped["recommend"] = f"recommenders learn from each customer's products, and {_WHY}"
    return skipped


def _check_asks(experiment: Experiment) -> None:
    """Refuse, before the long work, what cannot run without the lines in memory."""
    if experiment.register_model:
        raise ConfigError(f"register_model needs the prediction stage, which cannot run: {_WHY}")
    metrics = [m for m in experiment.config.tuning.get("metrics", [])
               if m.startswith(("predict/", "recommend/"))]
    if experiment.tuned and metrics:
        from segmentlab.study.tuning import TuningError

        raise TuningError(f"tuning.metrics {metrics} need validation windows of the lines: "
                          f"{_WHY}, or tune on cluster/* metrics")
