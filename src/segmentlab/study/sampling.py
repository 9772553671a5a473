"""Sampling that does not repeat itself across restarts and workers.

A seeded sampler replays its random stream from the start in every process: a study resumed
after a kill, or joined by a second worker, re-proposes the settings of its first trials. Two
remedies, both deterministic given the seed and the study's history:

- `TrialSeededSampler` rebuilds the configured sampler for every trial with a seed drawn from
  ``(seed, trial number)``. Trial numbers are unique within a study whatever the number of
  workers and restarts (Optuna numbers trials under a lock on the study row), unlike the number
  of finished trials, which two workers asking at once would share.
- In a *finite* space (integer and categorical dimensions only) a setting already held by an
  earlier trial is never run again (`ask` fails the new trial with ``duplicate_of``); the worker
  then takes one of the settings no trial holds yet (`free_settings`), and the study ends early
  when none is left: re-running a deterministic setting adds no information, so an exhausted
  space is a finished study. (Dropping the sampler's choice costs a little of TPE's guidance;
  in spaces with a continuous dimension an exact repeat is practically impossible and is not
  checked.)

`ask` also gives every trial its owner (``segmentlab.study.workers``) as it is created.
"""

from __future__ import annotations

import itertools
import math
from collections.abc import Callable, Mapping, Sequence
from typing import Any

import numpy as np
import optuna
from optuna.distributions import BaseDistribution, CategoricalDistribution, IntDistribution
from optuna.samplers import BaseSampler
from optuna.trial import FrozenTrial, TrialState, create_trial

from segmentlab.study import workers

MAX_ENUMERATED = 100_000  # finite spaces larger than this are treated as unbounded


def trial_seed(seed: int, number: int) -> int:
    """The seed of trial ``number`` in a study seeded with ``seed``."""
    return int(np.random.SeedSequence([seed, number]).generate_state(1)[0])


class TrialSeededSampler(BaseSampler):
    """A sampler rebuilt for each trial, seeded from ``(seed, trial number)``.

    Parameters
    ----------
    build : callable
        Returns the configured sampler for a given seed.
    seed : int
        The study's seed.
    """

    def __init__(self, build: Callable[[int], BaseSampler], seed: int,
                 space: Mapping[str, BaseDistribution] | None = None):
        self.build, self.seed = build, seed
        self._sampler = build(seed)
        self.space = dict(space) if space is not None else {}
        self._settings = finite_settings(self.space) if space is not None else None

    def before_trial(self, study: optuna.Study, trial: FrozenTrial) -> None:
        # Called by optuna.Trial(...) before any parameter is sampled.
        previous, self._sampler = self._sampler, self.build(trial_seed(self.seed, trial.number))
        _keep_caches(previous, self._sampler)
        self._sampler.before_trial(study, trial)

    def infer_relative_search_space(self, study, trial):
        return self._sampler.infer_relative_search_space(study, trial)

    def sample_relative(self, study, trial, search_space):
        params = self._sampler.sample_relative(study, trial, search_space)
        return self._free(study, trial, params) if params else params

    def sample_independent(self, study, trial, param_name, param_distribution):
        value = self._sampler.sample_independent(study, trial, param_name, param_distribution)
        return self._free(study, trial, {param_name: value})[param_name]

    def _free(self, study, trial: FrozenTrial, draw: dict[str, Any]) -> dict[str, Any]:
        """``draw`` (values of some dimensions), or the nearest one that a free setting agrees
        with, given the dimensions the trial has drawn already.

        TPE re-proposes its best region often: in a 40-setting K-means study 30 of 70 draws
        repeated a setting, each a trial created and failed as a duplicate. Moving a draw that
        no free setting agrees with to the nearest that one does (integers by their share of the
        range, categories by how many differ; ties to the first setting) keeps the sampler's
        guidance and wastes no trial. Only in a finite space of at most `MAX_ENUMERATED`
        settings; `ask` still catches the repeats this cannot (another worker drawing the same
        setting at the same moment).
        """
        if self._settings is None or not set(draw) <= set(self.space):
            return draw
        known = {k: v for k, v in trial.params.items() if k in self.space}
        taken = {_key(t.params, self.space) for t in study._get_trials(deepcopy=False, use_cache=True)
                 if t.number != trial.number and holds_setting(t)}  # what Optuna read for this ask
        free = [s for s in self._settings if _key(s, self.space) not in taken
                and all(s[k] == v for k, v in known.items())]
        if not free or any(all(s[k] == v for k, v in draw.items()) for s in free):
            return draw
        nearest = min(free, key=lambda s: _distance(s, draw, self.space))
        return {k: nearest[k] for k in draw}

    def after_trial(self, study, trial, state, values) -> None:
        self._sampler.after_trial(study, trial, state, values)

    def reseed_rng(self) -> None:
        self._sampler.reseed_rng()


#: TPESampler's search-space caches (checked with optuna 5.0.0): built incrementally from the
#: study's trials, so a sampler rebuilt per trial would read and intersect them all again.
_CACHES = ("_search_space", "_group_decomposed_search_space")


def _keep_caches(previous: BaseSampler, sampler: BaseSampler) -> None:
    """Hand a rebuilt sampler its predecessor's search-space caches (~15 ms a trial at 40 trials)."""
    if type(previous) is type(sampler):
        for name in _CACHES:
            if getattr(previous, name, None) is not None and hasattr(sampler, name):
                setattr(sampler, name, getattr(previous, name))


def finite_settings(space: Mapping[str, BaseDistribution]) -> list[dict[str, Any]] | None:
    """Every setting of a space of integer and categorical dimensions, or None when the space has
    a continuous dimension or more than `MAX_ENUMERATED` settings."""
    values = [_values(dist) for dist in space.values()]
    if any(v is None for v in values):
        return None
    if math.prod(len(v) for v in values) > MAX_ENUMERATED:
        return None
    return [dict(zip(space, combo, strict=True)) for combo in itertools.product(*values)]


def _distance(setting: Mapping[str, Any], proposed: Mapping[str, Any],
              space: Mapping[str, BaseDistribution]) -> float:
    """How far a setting is from a proposal: integer dimensions by their share of the range,
    categorical ones 1 when they differ."""
    total = 0.0
    for name, value in proposed.items():
        dist = space[name]
        if isinstance(dist, IntDistribution):
            total += abs(setting[name] - value) / max(dist.high - dist.low, 1)
        else:
            total += setting[name] != value
    return total


def _values(dist: BaseDistribution) -> Sequence[Any] | None:
    """The values of an integer or categorical dimension; None for a continuous one."""
    if isinstance(dist, IntDistribution):
        return range(dist.low, dist.high + 1, dist.step)
    if isinstance(dist, CategoricalDistribution):
        return dist.choices
    return None


def holds_setting(trial: FrozenTrial) -> bool:
    """Whether a trial's setting is taken: evaluated (or being evaluated) for good.

    Complete trials, trials failed by their own setting, and running ones hold it; trials cut
    short by a dead worker, trials never run (surplus, duplicate) do not.
    """
    if trial.state == TrialState.RUNNING:
        return True
    if trial.state == TrialState.COMPLETE:
        return True
    return trial.state == TrialState.FAIL and not ({"interrupted", "duplicate_of"} & trial.user_attrs.keys())


def _key(params: Mapping[str, Any], space: Mapping[str, BaseDistribution]) -> tuple:
    return tuple(params.get(name) for name in space)


def duplicate_of(trial: FrozenTrial | optuna.Trial, trials: list[FrozenTrial],
                 space: Mapping[str, BaseDistribution]) -> int | None:
    """The number of an earlier trial holding the same setting as ``trial``, if any.

    Only earlier trials count, so of two workers drawing one setting at once, the later trial
    gives way and the earlier runs.
    """
    mine = _key(trial.params, space)
    for other in trials:
        if other.number < trial.number and holds_setting(other) and _key(other.params, space) == mine:
            return other.number
    return None


def free_settings(settings: list[dict[str, Any]], trials: list[FrozenTrial],
                  space: Mapping[str, BaseDistribution]) -> list[dict[str, Any]]:
    """The settings of a finite space that no trial holds."""
    taken = {_key(t.params, space) for t in trials if holds_setting(t)}
    return [s for s in settings if _key(s, space) not in taken]


def pick(settings: list[dict[str, Any]], seed: int | None, number: int) -> dict[str, Any]:
    """One of ``settings``, drawn from ``(seed, number)``."""
    rng = np.random.default_rng([seed or 0, number])
    return settings[int(rng.integers(len(settings)))]


def counted(trial: FrozenTrial) -> bool:
    """Whether a finished trial counts toward ``n_trials`` (see `segmentlab.study.tuning`)."""
    return trial.state != TrialState.RUNNING and holds_setting(trial)


def ask(study: optuna.Study, space: Mapping[str, BaseDistribution], n_trials: int,
        settings: list[dict[str, Any]] | None = None) -> optuna.Trial | None:
    """Ask for a trial, or None when another worker took the last slot first or the finite space
    ``settings`` (`finite_settings`) is exhausted.

    Like ``study.ask(space)``, except that the trial is born owned by this worker: creation and
    ownership are one storage write, so a worker killed at any instant leaves no RUNNING trial
    that a `segmentlab.study.workers.StaleWatch` cannot attribute (one would hold a slot for
    ever). In a finite space a drawn setting an earlier trial holds is not run: that trial is
    failed with ``duplicate_of`` (it does not count) and the next one takes a setting nobody
    holds, drawn from ``(seed, trial number)``.
    """
    fixed = None
    while True:
        trial = _ask_owned(study, space, fixed)
        trials = _settled(study, trial.number, space)
        earlier = [t for t in trials if t.number < trial.number
                   and (counted(t) or t.state == TrialState.RUNNING)]
        if len(earlier) >= n_trials:
            trial.set_user_attr("surplus", True)
            study.tell(trial, state=TrialState.PRUNED)
            return None
        same = None if settings is None else duplicate_of(trial, trials, space)
        if same is None:
            return trial
        trial.set_user_attr("duplicate_of", same)
        trial.set_user_attr("fail_reason", f"duplicate of trial {same}; not run")
        study.tell(trial, state=TrialState.FAIL)
        # Each pass either returns or loses a setting to another worker: it ends.
        free = free_settings(settings, study.get_trials(deepcopy=False), space)
        if not free:
            return None
        fixed = pick(free, getattr(study.sampler, "seed", None), trial.number)


def _settled(study: optuna.Study, number: int, space: Mapping[str, BaseDistribution],
             wait: float = 2.0) -> list[FrozenTrial]:
    """The study's trials once every earlier RUNNING trial has written its setting (a worker that
    asked a moment before this one may still be sampling), waiting at most ``wait`` seconds."""
    from time import monotonic, sleep

    deadline = monotonic() + wait
    trials = study._get_trials(deepcopy=False, use_cache=True)  # read by this ask, after its trial was made
    while True:
        pending = [t for t in trials if t.number < number and t.state == TrialState.RUNNING
                   and not set(space) <= set(t.params)]
        if not pending or monotonic() > deadline:
            return trials
        sleep(0.02)
        trials = study.get_trials(deepcopy=False)


def _ask_owned(study: optuna.Study, space: Mapping[str, BaseDistribution],
               fixed: dict[str, Any] | None = None) -> optuna.Trial:
    """``study.ask(space)`` with the worker tag (and ``fixed`` params, if any) written in the same
    storage call that creates the trial. Uses Optuna internals that ``Study.ask`` itself uses
    (the storage, the trial cache and ``Trial._suggest``; private, checked with optuna 5.0.0)."""
    attrs = {workers.WORKER_ATTR: workers.WORKER, **({"fixed_params": fixed} if fixed else {})}
    owned = create_trial(state=TrialState.RUNNING, system_attrs=attrs)
    study._thread_local.cached_all_trials = None  # as Study.ask: the sampler sees every finished trial
    trial = optuna.Trial(study, study._storage.create_new_trial(study._study_id, template_trial=owned))
    for name, distribution in space.items():
        trial._suggest(name, distribution)
    return trial
