"""Optuna studies run by our own ask/tell loop (the Hydra Optuna sweeper pins optuna < 3).

A study is one Hydra job: its search space comes from ``configs/tuning/space/<node>/<choice>.yaml``
for each config node named in ``tuning.tune`` (``clusterer``, ``classifier``), keyed by the same
dotted paths a Hydra override uses, so one string names the Optuna parameter,
the override and the MLflow param. Trials persist in an RDB storage (SQLite by default); running
the same command again resumes the study, and several workers may share one study.

Counting. ``n_trials`` is the number of *finished* trials the study should hold: complete ones
and ones that failed for a reason of their own (an exception, a degenerate clustering). Two kinds
of trial do not count and are re-run: a trial left RUNNING by a worker process that died on this
machine (marked FAIL with ``interrupted`` when the next worker starts), and a trial asked for by a
worker that lost the race for the last slot (marked PRUNED with ``surplus`` and never run).
"""

from __future__ import annotations

import math
import os
import socket
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

import optuna
from omegaconf import DictConfig, OmegaConf
from optuna.distributions import BaseDistribution, CategoricalDistribution, IntDistribution
from optuna.trial import FrozenTrial, TrialState, create_trial

from segmentlab.cache import stable_hash
from segmentlab.config import CONFIG_DIR, build, flatten, resolved, with_overrides

SPACE_DIR = CONFIG_DIR / "tuning" / "space"
_WORKER = f"{socket.gethostname()}:{os.getpid()}"
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
    to name a missing space file. The objectives are checked too (see :func:`check_metrics`).
    """
    tune = list(cfg.tuning.get("tune", ["clusterer"]))
    check_metrics(list(cfg.tuning.metrics), tune)
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


def _siblings(cfg: DictConfig, key: str) -> str:
    node = OmegaConf.select(cfg, key.rsplit(".", 1)[0], default=None)
    return ", ".join(map(str, node.keys())) if isinstance(node, DictConfig) else "none"


def study_name(cfg: DictConfig, space: Mapping[str, BaseDistribution], data_hash: str, label: str) -> str:
    """``<label>.<hash>``, the label naming the config choices (``<clusterer>.<features>.<reducer>``);
    the hash covers the data and every config value
    that is neither tuned nor a tuning budget (n_trials, timeout), so the same command — with more
    trials or not — finds the same study, and any other change starts a new one."""
    config = resolved(cfg)
    config.pop("tracking", None)
    tuning = config.get("tuning", {})
    tuned_nodes = tuning.get("tune", ["clusterer"])
    # The spaces of nodes this study does not tune cannot change it.
    tuning["space"] = {k: v for k, v in (tuning.get("space") or {}).items() if k in tuned_nodes}
    for budget in ("n_trials", "timeout", "storage", "study_name", "show_progress"):
        tuning.pop(budget, None)
    fixed = {k: v for k, v in flatten(config) if k not in space}
    return f"{label}.{stable_hash({'config': fixed, 'data': data_hash}, 10)}"


def build_sampler(cfg: DictConfig, space: Mapping[str, BaseDistribution]) -> optuna.samplers.BaseSampler:
    """The configured sampler; ``grid`` expands integer and categorical dimensions."""
    node = cfg.tuning.sampler
    if node.get("_target_") == "optuna.samplers.GridSampler":
        return optuna.samplers.GridSampler(_grid(space), seed=node.get("seed"))
    return build(node)


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
    """Create or load the job's study in the configured storage."""
    optuna.logging.set_verbosity(optuna.logging.WARNING)
    name = cfg.tuning.study_name or study_name(cfg, space, data_hash, label)
    storage = cfg.tuning.storage
    if storage.startswith("sqlite:///"):
        Path(storage.removeprefix("sqlite:///")).parent.mkdir(parents=True, exist_ok=True)
    directions = list(cfg.tuning.directions)
    if len(directions) != len(cfg.tuning.metrics):
        raise TuningError(f"tuning.directions has {len(directions)} entries for "
                          f"{len(cfg.tuning.metrics)} tuning.metrics")
    return optuna.create_study(study_name=name, storage=storage, load_if_exists=True,
                               directions=directions, sampler=build_sampler(cfg, space))


def counted(trial: FrozenTrial) -> bool:
    """Whether a finished trial counts toward ``n_trials`` (see the module docstring)."""
    if trial.state == TrialState.COMPLETE:
        return True
    return trial.state == TrialState.FAIL and not trial.user_attrs.get("interrupted", False)


def recover_interrupted(study: optuna.Study) -> int:
    """Mark RUNNING trials whose worker process died on this host as interrupted failures."""
    host = socket.gethostname()
    recovered = 0
    for trial in study.get_trials(deepcopy=False, states=(TrialState.RUNNING,)):
        worker = trial.system_attrs.get("segmentlab_worker", "")
        worker_host, _, pid = worker.rpartition(":")
        if worker_host == host and pid.isdigit() and not _alive(int(pid)):
            _fail_running_trial(study, trial, "worker process died")
            recovered += 1
    return recovered


def _fail_running_trial(study: optuna.Study, trial: FrozenTrial, reason: str) -> None:
    """Mark another worker's RUNNING trial failed (interrupted, with a reason).

    Optuna has no public way to change a trial this process did not ask for, so this goes
    through the study's storage and the trial's storage id (private; checked with optuna 5.0.0).
    """
    storage, trial_id = study._storage, trial._trial_id
    storage.set_trial_user_attr(trial_id, "interrupted", True)
    storage.set_trial_user_attr(trial_id, "fail_reason", reason)
    storage.set_trial_state_values(trial_id, TrialState.FAIL)


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def remaining(study: optuna.Study, n_trials: int) -> int:
    """Slots left: n_trials minus counted and in-flight trials."""
    trials = study.get_trials(deepcopy=False)
    busy = sum(counted(t) or t.state == TrialState.RUNNING for t in trials)
    return max(n_trials - busy, 0)


def ask(study: optuna.Study, space: Mapping[str, BaseDistribution], n_trials: int) -> optuna.Trial | None:
    """Ask for a trial, or None when another worker took the last slot first.

    Like ``study.ask(space)``, except that the trial is born owned by this worker: creation and
    ownership are one storage write, so a worker killed at any instant leaves no RUNNING trial
    that :func:`recover_interrupted` cannot attribute (one would hold a slot for ever).
    """
    trial = _ask_owned(study, space)
    earlier = [t for t in study.get_trials(deepcopy=False)
               if t.number < trial.number and (counted(t) or t.state == TrialState.RUNNING)]
    if len(earlier) >= n_trials:
        trial.set_user_attr("surplus", True)
        study.tell(trial, state=TrialState.PRUNED)
        return None
    return trial


def _ask_owned(study: optuna.Study, space: Mapping[str, BaseDistribution]) -> optuna.Trial:
    """``study.ask(space)`` with the worker tag written in the same storage call that creates the
    trial. Uses Optuna internals that ``Study.ask`` itself uses (the storage, the trial cache and
    ``Trial._suggest``; private, checked with optuna 5.0.0): seeded sampling is identical to
    ``study.ask`` (tested)."""
    owned = create_trial(state=TrialState.RUNNING, system_attrs={"segmentlab_worker": _WORKER})
    study._thread_local.cached_all_trials = None  # as Study.ask: the sampler sees every finished trial
    trial = optuna.Trial(study, study._storage.create_new_trial(study._study_id, template_trial=owned))
    for name, distribution in space.items():
        trial._suggest(name, distribution)
    return trial


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
        return study.tell(trial, state=TrialState.FAIL)
    return study.tell(trial, [outcome.metrics[name] for name in metric_names])


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
               progress: bool = True) -> int:
    """Ask, evaluate and tell until the study holds ``n_trials`` counted trials; return how many ran."""
    from time import monotonic

    from tqdm.auto import tqdm

    recover_interrupted(study)
    todo = remaining(study, n_trials)
    bar = tqdm(total=n_trials, initial=n_trials - todo, desc=study.study_name, unit="trial",
               disable=not progress, leave=True)
    start, ran = monotonic(), 0
    while remaining(study, n_trials) > 0 and (timeout is None or monotonic() - start < timeout):
        trial = ask(study, space, n_trials)
        if trial is None:
            break
        try:
            outcome = objective(dict(trial.params))
        except Exception as e:  # a trial that raises is recorded as failed; the study goes on
            outcome = TrialOutcome({}, f"{type(e).__name__}: {str(e).splitlines()[0] if str(e) else ''}")
        outcome = judge(outcome, metric_names)
        if on_trial is not None:  # before tell: a finished trial's attributes are frozen
            on_trial(trial, outcome)
        tell(study, trial, outcome, metric_names)
        ran += 1
        bar.update(1)
    bar.close()
    return ran


def optimize(study: optuna.Study, experiment, space: Mapping[str, BaseDistribution],
             evaluate: Callable[[Any], TrialOutcome]) -> FrozenTrial:
    """Run the study's missing trials and return the best trial.

    ``experiment`` is the study's base `Experiment`; each trial evaluates
    ``experiment.with_params(trial.params)`` with ``evaluate``, and the experiment's tracker
    records each trial as a child run of the active parent run and the study's summary on it.
    """
    cfg, tracker = experiment.config, experiment.tracker
    metric_names = list(cfg.tuning.metrics)

    def record(trial: optuna.Trial, outcome: TrialOutcome) -> None:
        child = tracker.log_trial(trial, outcome, resolved(with_overrides(cfg, trial.params)))
        if child:
            trial.set_user_attr("mlflow_run_id", child)
        tracker.log_progress(1 + sum(counted(t) for t in study.get_trials(deepcopy=False)))

    ran = run_trials(study, space, cfg.tuning.n_trials, cfg.tuning.timeout,
                     lambda params: evaluate(experiment.with_params(params)), metric_names,
                     on_trial=record, progress=cfg.tuning.show_progress)
    best = best_trial(study)
    tracker.log_study(study, best, metric_names, ran)
    return best
