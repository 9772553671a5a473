"""Optuna studies run by our own ask/tell loop (the Hydra Optuna sweeper pins optuna < 3).

A study is one Hydra job: its search space comes from ``configs/tuning/space/<node>/<choice>.yaml``
for each config node named in ``tuning.tune`` (``clusterer``, ``classifier``), keyed by the same
dotted paths a Hydra override uses, so one string names the Optuna parameter,
the override and the MLflow param. Trials persist in an RDB storage (SQLite by default); running
the same command again resumes the study, and several workers may share one study.

Counting. ``n_trials`` is the number of *finished* trials the study should hold: complete ones
and ones that failed for a reason of their own (an exception, a degenerate clustering). Three
kinds of trial do not count: a trial whose worker died (failed with ``interrupted`` and a reason
by the worker that notices, see `segmentlab.study.workers`; its slot is run again), a trial asked
for by a worker that lost the race for the last slot (PRUNED with ``surplus``, never run), and a
trial that drew a setting an earlier trial holds (FAIL with ``duplicate_of``, never run; see
`segmentlab.study.sampling`). A finite space with fewer settings than ``n_trials`` ends the
study when every setting is evaluated.
"""

from __future__ import annotations

import gc
import math
import sys
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, replace
from pathlib import Path
from time import monotonic
from typing import Any

import optuna
from omegaconf import DictConfig, OmegaConf
from optuna.distributions import BaseDistribution, CategoricalDistribution, IntDistribution
from optuna.trial import FrozenTrial, TrialState

from segmentlab.cache import stable_hash
from segmentlab.config import CONFIG_DIR, build, flatten, resolved, resolver
from segmentlab.study import workers
from segmentlab.study.sampling import TrialSeededSampler, ask, counted, finite_settings, free_settings

SPACE_DIR = CONFIG_DIR / "tuning" / "space"
_MISSING = object()


class TuningError(Exception):
    """The study cannot run as configured; the message names the key or file."""


@dataclass(frozen=True)
class TrialOutcome:
    """What one trial produced: metrics, and why it failed when it did."""

    metrics: dict[str, float]
    failure: str | None = None
    labels: Any = None  # pd.Series of segments per customer, logged for `segmentlab reproduce`


def search_space(cfg: DictConfig, choices: Mapping[str, str]) -> dict[str, BaseDistribution]:
    """The flattened search space of the nodes in ``tuning.tune``, checked against the config.

    ``choices`` maps config groups to the chosen options (``{"clusterer": "kmeans"}``…), used
    to name a missing space file. The objectives and the heartbeat settings are checked too
    (:func:`check_metrics`, :func:`heartbeat`).
    """
    tune = list(cfg.tuning.get("tune", ["clusterer"]))
    check_metrics(list(cfg.tuning.metrics), tune)
    heartbeat(cfg)
    space_node = cfg.tuning.get("space") or {}
    space: dict[str, BaseDistribution] = {}
    for node in tune:
        if not space_node.get(node):
            choice = choices.get(node, "?")
            raise TuningError(f"tuning.tune includes '{node}' but {node} '{choice}' has no search "
                              f"space: {SPACE_DIR / node / (choice + '.yaml')} does not exist")
        space.update(flatten(build(space_node[node]), prefix=f"{node}."))
    for key, dist in space.items():
        if not isinstance(dist, BaseDistribution):
            raise TuningError(f"tuning.space.{key}: expected an optuna.distributions class, got {dist!r}")
        if OmegaConf.select(cfg, key, default=_MISSING) is _MISSING:
            raise TuningError(f"tuning space key '{key}' does not exist in the config "
                              f"(keys under '{key.rsplit('.', 1)[0]}': {_siblings(cfg, key)})")
    return space


def check_metrics(metrics: Sequence[str], tune: Sequence[str]) -> None:
    """Refuse objectives that would let tuning see the evaluation period, or ignore the tuned node.

    ``predict/*`` and ``recommend/*`` scores judge the evaluation period; tuning on them would
    make the reported scores optimistic. Their ``validation_`` versions judge the period before
    it and are what a study may optimise. A classifier (recommender) study needs a
    ``predict/validation_*`` (``recommend/validation_*``) metric: no other metric depends on it.
    """
    for metric in metrics:
        for stage in ("predict/", "recommend/"):
            if metric.startswith(stage) and not metric.startswith(stage + "validation_"):
                raise TuningError(f"tuning.metrics: '{metric}' is scored on the evaluation period, "
                                  f"which tuning must not see; optimise "
                                  f"'{metric.replace(stage, stage + 'validation_', 1)}' instead")
    for node, stage, preset in (("classifier", "predict/", "optuna_classifier"),
                                ("recommender", "recommend/", "optuna_recommender")):
        if node in tune and not any(m.startswith(stage + "validation_") for m in metrics):
            raise TuningError(f"tuning.tune includes {node}, but tuning.metrics {list(metrics)} does "
                              f"not depend on it; use a {stage}validation_* metric "
                              f"(tuning={preset} sets one)")


def heartbeat(cfg: DictConfig) -> tuple[float, float]:
    """``(tuning.heartbeat_interval, tuning.grace_period)`` in seconds, checked: a grace period
    shorter than two heartbeats would fail live trials as dead."""
    beat, grace = float(cfg.tuning.get("heartbeat_interval", 10)), float(cfg.tuning.get("grace_period", 60))
    if not 0 < 2 * beat <= grace:
        raise TuningError(f"tuning.grace_period={grace:g} must be at least twice "
                          f"tuning.heartbeat_interval={beat:g} (both in seconds, > 0), or live "
                          "trials would be failed as dead")
    return beat, grace


def _siblings(cfg: DictConfig, key: str) -> str:
    node = OmegaConf.select(cfg, key.rsplit(".", 1)[0], default=None)
    return ", ".join(map(str, node.keys())) if isinstance(node, DictConfig) else "none"


def study_name(cfg: DictConfig, space: Mapping[str, BaseDistribution], data_hash: str, label: str) -> str:
    """``<label>.<hash>``, the label naming the config choices (``<clusterer>.<features>.<reducer>``);
    the hash covers the data and every config value that is neither tuned, nor a tuning budget
    (n_trials, timeout…), nor the worker's cache folder, so the same command — with more trials or
    not, from any worker — finds the same study, and any other change starts a new one."""
    config = resolved(cfg)
    config.pop("tracking", None)
    config.pop("cache_dir", None)  # where a worker caches changes nothing; workers on other hosts differ
    tuning = config.get("tuning", {})
    tuned_nodes = tuning.get("tune", ["clusterer"])
    # The spaces of nodes this study does not tune cannot change it.
    tuning["space"] = {k: v for k, v in (tuning.get("space") or {}).items() if k in tuned_nodes}
    for budget in ("n_trials", "timeout", "storage", "study_name", "show_progress",
                   "heartbeat_interval", "grace_period"):
        tuning.pop(budget, None)
    fixed = {k: v for k, v in flatten(config) if k not in space}
    return f"{label}.{stable_hash({'config': fixed, 'data': data_hash}, 10)}"


def build_sampler(cfg: DictConfig, space: Mapping[str, BaseDistribution],
                  seed: int | None = None) -> optuna.samplers.BaseSampler:
    """The configured sampler (with ``seed`` instead of the configured one, when given); ``grid``
    expands integer and categorical dimensions."""
    node = cfg.tuning.sampler
    seed = node.get("seed") if seed is None else seed
    if node.get("_target_") == "optuna.samplers.GridSampler":
        return optuna.samplers.GridSampler(_grid(space), seed=seed)
    return build(node) if seed is None else build(node, seed=seed)


def _grid(space: Mapping[str, BaseDistribution]) -> dict[str, list]:
    grid = {}
    for key, dist in space.items():
        if isinstance(dist, IntDistribution):
            grid[key] = list(range(dist.low, dist.high + 1, dist.step))
        elif isinstance(dist, CategoricalDistribution):
            grid[key] = list(dist.choices)
        else:
            raise TuningError(f"tuning.sampler=grid cannot enumerate '{key}' ({type(dist).__name__}): "
                              "use Int or Categorical distributions, or another sampler")
    return grid


def open_study(cfg: DictConfig, space: Mapping[str, BaseDistribution], data_hash: str,
               label: str) -> optuna.Study:
    """Create or load the job's study in the configured storage (see `segmentlab.study.workers`
    for what makes this safe when several workers start at once)."""
    optuna.logging.set_verbosity(optuna.logging.WARNING)
    name = cfg.tuning.study_name or study_name(cfg, space, data_hash, label)
    storage = cfg.tuning.storage
    if storage.startswith("sqlite:///"):
        Path(storage.removeprefix("sqlite:///")).parent.mkdir(parents=True, exist_ok=True)
    directions = list(cfg.tuning.directions)
    if len(directions) != len(cfg.tuning.metrics):
        raise TuningError(f"tuning.directions has {len(directions)} entries for "
                          f"{len(cfg.tuning.metrics)} tuning.metrics")
    try:
        rdb = workers.open_storage(storage)
    except workers.StorageError as e:
        raise TuningError(str(e)) from None
    seed = cfg.tuning.sampler.get("seed")
    sampler = (build_sampler(cfg, space) if seed is None else
               TrialSeededSampler(lambda s: build_sampler(cfg, space, s), int(seed), space))
    return optuna.create_study(study_name=name, storage=rdb, load_if_exists=True,
                               directions=directions, sampler=sampler)


def recover(study: optuna.Study, watch: workers.StaleWatch,
            on_dead: Callable[[FrozenTrial, str], None] | None = None,
            trials: Sequence[FrozenTrial] | None = None) -> int:
    """Fail the RUNNING trials of dead workers (see `workers.StaleWatch`), each once across all
    workers, calling ``on_dead(trial, reason)`` for those this worker failed; return how many.
    ``trials``: the study's trials just read (read here when not given)."""
    failed = 0
    if trials is None:
        trials = study.get_trials(deepcopy=False, states=(TrialState.RUNNING,))
    for trial, reason in watch.dead([t for t in trials if t.state == TrialState.RUNNING]):
        if workers.fail_dead_trial(study, trial, reason):
            failed += 1
            if on_dead is not None:
                on_dead(trial, reason)
    return failed


def recover_interrupted(study: optuna.Study) -> int:
    """Fail the RUNNING trials whose worker process died on this host; return how many."""
    return recover(study, workers.StaleWatch(grace_period=math.inf))


def remaining(study: optuna.Study, n_trials: int, trials: Sequence[FrozenTrial] | None = None) -> int:
    """Slots left: n_trials minus counted and in-flight trials (of ``trials`` when given)."""
    if trials is None:
        trials = study.get_trials(deepcopy=False)
    busy = sum(counted(t) or t.state == TrialState.RUNNING for t in trials)
    return max(n_trials - busy, 0)


def judge(outcome: TrialOutcome, metric_names: Sequence[str]) -> TrialOutcome:
    """The outcome with its failure reason filled in when an objective is undefined (NaN)."""
    if outcome.failure is not None:
        return outcome
    undefined = [n for n in metric_names if not math.isfinite(outcome.metrics.get(n, math.nan))]
    if undefined:
        return replace(outcome, failure=f"objective undefined: {', '.join(undefined)}")
    return outcome


def tell(study: optuna.Study, trial: optuna.Trial, outcome: TrialOutcome,
         metric_names: Sequence[str]) -> FrozenTrial:
    """Record a judged trial's objective values, or its failure and the reason."""
    if outcome.failure is not None:
        trial.set_user_attr("fail_reason", outcome.failure)
        return study.tell(trial, state=TrialState.FAIL, skip_if_finished=True)
    return study.tell(trial, [outcome.metrics[name] for name in metric_names], skip_if_finished=True)


def best_trial(study: optuna.Study) -> FrozenTrial:
    """The best complete trial; for several objectives, the Pareto trial best on the first."""
    complete = study.get_trials(deepcopy=False, states=(TrialState.COMPLETE,))
    if not complete:
        reasons = sorted({t.user_attrs.get("fail_reason", "unknown") for t in study.trials
                          if t.state == TrialState.FAIL})
        raise TuningError(f"study '{study.study_name}': every trial failed ({'; '.join(reasons)[:300]})")
    if len(study.directions) == 1:
        return study.best_trial
    sign = 1 if study.directions[0] == optuna.study.StudyDirection.MAXIMIZE else -1
    return max(study.best_trials, key=lambda t: sign * t.values[0])


def run_trials(study: optuna.Study, space: Mapping[str, BaseDistribution], n_trials: int,
               timeout: float | None, objective: Callable[[dict[str, Any]], TrialOutcome],
               metric_names: Sequence[str],
               on_trial: Callable[[optuna.Trial, TrialOutcome], None] | None = None,
               progress: bool = True, on_dead: Callable[[FrozenTrial, str], None] | None = None,
               heartbeat_interval: float = 10.0, grace_period: float = 60.0) -> int:
    """Ask, evaluate and tell until the study holds ``n_trials`` counted trials, or every setting
    of a finite space; return how many trials this worker ran.

    A worker with no slot left waits while other workers' trials run, so every worker ends on
    the same finished study; a trial whose worker died is failed (``on_dead``) by whichever
    worker notices first (`workers.StaleWatch`), and its slot is run again.
    """
    from time import monotonic, sleep

    from tqdm.auto import tqdm

    watch, settings = workers.StaleWatch(grace_period), finite_settings(space)
    goal = n_trials if settings is None else min(n_trials, len(settings))  # a finite space ends early
    bar = tqdm(total=goal, initial=min(n_trials - remaining(study, n_trials), goal), desc=study.study_name,
               unit="trial", disable=not progress, leave=True)
    start, ran, free = monotonic(), 0, None
    known, watched = None, -math.inf
    while timeout is None or monotonic() - start < timeout:
        # A read costs ~8 ms on SQLite. After running a trial, the trials its ask read (with the
        # trial finished) decide whether to ask again; other workers' dead trials are looked for
        # in a fresh read every heartbeat interval, and a stale view never decides to stop or wait.
        fresh = known is None or monotonic() - watched >= heartbeat_interval
        if fresh:
            trials, watched = study.get_trials(deepcopy=False), monotonic()
            if recover(study, watch, on_dead, trials):
                trials = study.get_trials(deepcopy=False)
        else:
            trials = known
        known = None
        free = None if settings is None else free_settings(settings, trials, space)
        bar.n = min(sum(counted(t) for t in trials), goal)
        bar.refresh()
        if remaining(study, n_trials, trials) > 0 and free != []:
            trial = ask(study, space, n_trials, settings)
            if trial is not None:
                asked = study._get_trials(deepcopy=False, use_cache=True)  # what the ask read
                told = _run_one(study, trial, objective, metric_names, on_trial, heartbeat_interval)
                if told is not None:
                    ran += 1
                    known = [told if t.number == told.number else t for t in asked]
        elif not fresh:
            continue  # look again before waiting or stopping
        elif any(t.state == TrialState.RUNNING for t in trials):
            sleep(min(1.0, heartbeat_interval))  # other workers' trials: wait for them to end or die
        else:
            break
    bar.close()
    n_counted = sum(counted(t) for t in study.get_trials(deepcopy=False))
    if free == [] and n_counted < n_trials:
        print(f"study {study.study_name}: the search space has {len(settings)} settings, all "
              f"evaluated; the study ends with {n_counted} of tuning.n_trials={n_trials} trials")
    return ran


def _run_one(study: optuna.Study, trial: optuna.Trial, objective: Callable[[dict[str, Any]], TrialOutcome],
             metric_names: Sequence[str], on_trial: Callable[[optuna.Trial, TrialOutcome], None] | None,
             heartbeat_interval: float) -> FrozenTrial | None:
    """Evaluate one trial while its heartbeat runs, record it and tell it; the finished trial, or
    None when another worker failed it meanwhile as dead (its result is then discarded)."""
    with workers.Heartbeat(study, trial._trial_id, heartbeat_interval):
        try:
            outcome = objective(dict(trial.params))
        except Exception as e:  # a trial that raises is recorded as failed; the study goes on
            outcome = TrialOutcome({}, f"{type(e).__name__}: {str(e).splitlines()[0] if str(e) else ''}")
    outcome = judge(outcome, metric_names)
    if workers.trial_state(study, trial._trial_id) != TrialState.RUNNING:
        print(f"segmentlab: warning: trial {trial.number} was failed by another worker that saw no "
              "heartbeat from this one; its result is discarded (raise tuning.grace_period)",
              file=sys.stderr)
        return None
    if on_trial is not None:  # before tell: a finished trial's attributes are frozen
        on_trial(trial, outcome)
    return tell(study, trial, outcome, metric_names)


PROGRESS_EVERY = 5.0  # seconds between updates of the parent run's tuning/n_finished_trials


def optimize(study: optuna.Study, experiment, space: Mapping[str, BaseDistribution],
             evaluate: Callable[[Any], TrialOutcome]) -> FrozenTrial:
    """Run the study's missing trials and return the best trial.

    ``experiment`` is the study's base `Experiment`; each trial evaluates
    ``experiment.with_params(trial.params)`` with ``evaluate``, and the experiment's tracker
    records each trial as a child run of the active parent run (a trial of a dead worker too,
    as a FAILED child with the reason), and the study's summary on it.
    """
    cfg, tracker = experiment.config, experiment.tracker
    metric_names = list(cfg.tuning.metrics)

    config_of = resolver(cfg)  # a trial's config as logged (the study's resolved once, its values set)
    progressed = [-math.inf]  # when the parent run's progress metric was last logged

    def objective(params: dict[str, Any]) -> TrialOutcome:
        return evaluate(experiment.with_params(params))

    def record(trial: optuna.Trial, outcome: TrialOutcome) -> None:
        if tracker.records:
            child = tracker.log_trial(trial, outcome, config_of(trial.params))
            trial.set_user_attr("mlflow_run_id", child)
            if monotonic() - progressed[0] >= PROGRESS_EVERY:  # the study's summary logs the last count
                progressed[0] = monotonic()
                # the trials read when this one was asked for: a later round logs any finished since
                known = study._get_trials(deepcopy=False, use_cache=True)
                tracker.log_progress(1 + sum(counted(t) for t in known))

    def dead(trial: FrozenTrial, reason: str) -> None:
        if tracker.records:
            tracker.log_trial(trial, TrialOutcome({}, reason), config_of(trial.params), replace=True)

    beat, grace = heartbeat(cfg)
    # The data, features and libraries loaded so far live as long as the study: kept out of the
    # garbage collector's full passes, which otherwise scan them all (~0.6 s each on the real file).
    gc.freeze()
    try:
        ran = run_trials(study, space, cfg.tuning.n_trials, cfg.tuning.timeout, objective, metric_names,
                         on_trial=record, progress=cfg.tuning.show_progress, on_dead=dead,
                         heartbeat_interval=beat, grace_period=grace)
    finally:
        gc.unfreeze()
    best = best_trial(study)
    tracker.log_study(study, best, metric_names, ran)
    return best
