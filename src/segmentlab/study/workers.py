"""Several workers on one Optuna study: the storage, claims, heartbeats and dead trials.

Workers on one or many hosts share a study through an RDB storage (PostgreSQL, or SQLite on one
machine). Four things have to hold when they start, run and die at arbitrary moments:

- **Schema creation races safely.** Workers started together on an empty database all create
  Optuna's tables; on PostgreSQL all but one fail (``UniqueViolation … CREATE TYPE
  studydirection``). `open_storage` retries: table creation is one transaction on PostgreSQL and
  SQLite and Optuna creates only what is missing, so a loser's retry finds the winner's tables.
- **Something is decided once.** `claim_study_attr` and `claim_trial` insert a row against
  Optuna's unique ``(owner, key)`` index: of several workers inserting at once, exactly one
  succeeds, on every RDB. Used for the study's one MLflow parent run and for failing a dead
  trial once.
- **Live trials beat.** `Heartbeat` refreshes the running trial's ``segmentlab_heartbeat`` system
  attribute from a thread (Optuna's own heartbeat runs only inside ``study.optimize``, not in an
  ask/tell loop).
- **Dead trials are noticed.** `StaleWatch` calls a trial stale when its heartbeat has not changed
  for ``grace_period`` seconds *of the watching worker's own clock*, so clocks of different hosts
  are never compared. A trial of a dead process on the watcher's own host is recognised at once.

Optuna has no public API for these (a claim, writing another worker's trial); they go through
the study's storage (private attributes, checked with optuna 5.0.0).
"""

from __future__ import annotations

import json
import os
import random
import socket
import threading
import time
from collections.abc import Callable, Iterable
from typing import Any

import optuna
from optuna.trial import FrozenTrial, TrialState

WORKER = f"{socket.gethostname()}:{os.getpid()}"
WORKER_ATTR = "segmentlab_worker"        # trial system attr: host:pid of the worker running it
HEARTBEAT_ATTR = "segmentlab_heartbeat"  # trial system attr: wall time of the last beat (informative)
_FAILED_BY_ATTR = "segmentlab_failed_by"  # trial system attr: the worker that failed a dead trial


class StorageError(Exception):
    """The storage cannot be opened; the message names the (masked) URL and why."""


def open_storage(url: str, attempts: int = 6) -> optuna.storages.RDBStorage:
    """The RDB storage at ``url``, creating Optuna's schema when the database is empty.

    A worker that loses the schema race (or meets a transient database error) retries after a
    jittered pause doubling from 0.1 s; after ``attempts`` failures the error is raised as a
    `StorageError`. A missing driver fails at once with the package to install.
    """
    import sqlalchemy.exc

    from segmentlab.study.sqlite import use_write_ahead_log
    from segmentlab.study.tracking import mask_url

    use_write_ahead_log()
    for attempt in range(attempts):
        try:
            return optuna.storages.RDBStorage(url)
        except ImportError as e:
            raise StorageError(f"tuning.storage {mask_url(url)}: database driver missing ({_cause(e)}); "
                               "for PostgreSQL use a postgresql+psycopg2:// URL and "
                               "pip install psycopg2-binary") from None
        except sqlalchemy.exc.ArgumentError as e:  # not a URL SQLAlchemy can use: retrying cannot help
            raise StorageError(f"tuning.storage {mask_url(url)}: {_first_line(e)}; expected an RDB URL "
                               "such as sqlite:///outputs/optuna.db or postgresql+psycopg2://USER:"
                               "PASSWORD@HOST/DB") from None
        except (sqlalchemy.exc.SQLAlchemyError, optuna.exceptions.StorageInternalError) as e:
            if attempt == attempts - 1:
                raise StorageError(f"tuning.storage {mask_url(url)} is not usable after {attempts} "
                                   f"attempts: {_first_line(e)}") from None
            time.sleep(0.1 * 2**attempt * (0.5 + random.random()))
    raise AssertionError("unreachable")


def _cause(e: BaseException) -> str:
    return _first_line(e.__cause__ or e)


def _first_line(e: BaseException) -> str:
    text = str(e).strip()
    return text.splitlines()[0] if text else type(e).__name__


def _rdb(study: optuna.Study):
    """The study's RDBStorage (unwrapping Optuna's cache), or None for other storages."""
    storage = getattr(study._storage, "_backend", study._storage)
    return storage if isinstance(storage, optuna.storages.RDBStorage) else None


def _insert_attr(storage, model, owner: dict[str, int], key: str, value: Any) -> bool:
    """Insert one attribute row; False when the (owner, key) row exists already."""
    import sqlalchemy
    import sqlalchemy.exc

    table = model.__table__
    try:
        with storage.engine.begin() as connection:
            connection.execute(sqlalchemy.insert(table).values(**owner, key=key,
                                                               value_json=json.dumps(value)))
    except sqlalchemy.exc.IntegrityError:
        return False
    return True


def claim_study_attr(study: optuna.Study, key: str, value: Any, replace: Any = None) -> Any:
    """Set the study user attribute ``key`` to ``value`` unless another worker set it first; return
    the value that holds afterwards (``value`` when this call won).

    With ``replace``, the attribute is changed only if it still holds ``replace`` (compare and
    set), e.g. to replace a parent run that was deleted.
    """
    storage = _rdb(study)
    if storage is None:  # in-memory or journal storage: one process, nothing to race with
        current = study.user_attrs.get(key)
        if current is None or current == replace:
            study.set_user_attr(key, value)
        return study.user_attrs[key]
    import sqlalchemy
    from optuna.storages._rdb import models

    table = models.StudyUserAttributeModel.__table__
    owner = {"study_id": study._study_id}
    if replace is None:
        _insert_attr(storage, models.StudyUserAttributeModel, owner, key, value)
    else:
        with storage.engine.begin() as connection:
            connection.execute(sqlalchemy.update(table)
                               .where(table.c.study_id == study._study_id, table.c.key == key,
                                      table.c.value_json == json.dumps(replace))
                               .values(value_json=json.dumps(value)))
    return study._storage.get_study_user_attrs(study._study_id).get(key)


def claim_trial(study: optuna.Study, trial: FrozenTrial) -> bool:
    """Whether this worker is the one to act on ``trial`` (fail it as dead): the first to claim it."""
    storage = _rdb(study)
    if storage is None:
        return True
    from optuna.storages._rdb import models

    return _insert_attr(storage, models.TrialSystemAttributeModel, {"trial_id": trial._trial_id},
                        _FAILED_BY_ATTR, WORKER)


class Heartbeat:
    """Refreshes a running trial's heartbeat every ``interval`` seconds from a daemon thread.

    Use as a context manager around the trial's evaluation. ``lost`` turns true when the trial
    was finished by someone else meanwhile (another worker judged it dead).
    """

    def __init__(self, study: optuna.Study, trial_id: int, interval: float):
        self.study, self.trial_id, self.interval = study, trial_id, interval
        self.lost = False
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="segmentlab-heartbeat", daemon=True)

    def __enter__(self) -> Heartbeat:
        self._beat()
        self._thread.start()
        return self

    def __exit__(self, *exc) -> None:
        self._stop.set()
        self._thread.join()

    def _run(self) -> None:
        while not self._stop.wait(self.interval) and not self.lost:
            self._beat()

    def _beat(self) -> None:
        try:
            self.study._storage.set_trial_system_attr(self.trial_id, HEARTBEAT_ATTR, time.time())
        except optuna.exceptions.UpdateFinishedTrialError:
            self.lost = True
        except Exception:  # a transient database error: the next beat tries again
            pass


class StaleWatch:
    """Finds other workers' RUNNING trials whose heartbeat stopped.

    A trial is stale once the value of its heartbeat has stayed the same for ``grace_period``
    seconds, timed by this worker's monotonic clock from the moment it first saw that value.
    A trial whose worker ran on this host in a process that no longer exists is dead at once.
    """

    def __init__(self, grace_period: float, clock: Callable[[], float] = time.monotonic):
        self.grace_period, self.clock = grace_period, clock
        self._seen: dict[int, tuple[Any, float]] = {}

    def dead(self, trials: Iterable[FrozenTrial]) -> list[tuple[FrozenTrial, str]]:
        """The RUNNING trials among ``trials`` judged dead, each with the reason."""
        now, found, running = self.clock(), [], set()
        for trial in trials:
            if trial.state != TrialState.RUNNING:
                continue
            worker = trial.system_attrs.get(WORKER_ATTR, "")
            running.add(trial._trial_id)
            host, _, pid = worker.rpartition(":")
            beat = trial.system_attrs.get(HEARTBEAT_ATTR)
            seen_beat, since = self._seen.get(trial._trial_id, (_UNSEEN, now))
            if beat != seen_beat:
                seen_beat, since = beat, now
            self._seen[trial._trial_id] = (seen_beat, since)
            if host == socket.gethostname() and pid.isdigit() and not alive(int(pid)):
                found.append((trial, f"worker {worker} died (process gone)"))
            elif now - since >= self.grace_period:
                found.append((trial, f"worker {worker} stopped beating: no heartbeat for "
                                     f"tuning.grace_period={self.grace_period:g} s"))
        self._seen = {k: v for k, v in self._seen.items() if k in running}
        return found


_UNSEEN = object()


def alive(pid: int) -> bool:
    """Whether a process with this id exists on this host."""
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def trial_state(study: optuna.Study, trial_id: int) -> TrialState:
    """A trial's state as the storage holds it now: on an RDB one column is read (~0.3 ms on
    SQLite; reading the whole trial takes ~5 ms)."""
    storage = _rdb(study)
    if storage is None:
        return study._storage.get_trial(trial_id).state
    import sqlalchemy
    from optuna.storages._rdb import models

    table = models.TrialModel.__table__
    with storage.engine.connect() as connection:
        return connection.execute(sqlalchemy.select(table.c.state)
                                  .where(table.c.trial_id == trial_id)).scalar_one()


def fail_dead_trial(study: optuna.Study, trial: FrozenTrial, reason: str) -> bool:
    """Fail another worker's dead RUNNING trial with ``reason`` (user attrs ``interrupted``,
    ``fail_reason``); True when this worker did it, False when another worker claimed it first
    or its owner finished it after all."""
    if not claim_trial(study, trial):
        return False
    storage, trial_id = study._storage, trial._trial_id
    try:
        storage.set_trial_user_attr(trial_id, "interrupted", True)
        storage.set_trial_user_attr(trial_id, "fail_reason", reason)
        storage.set_trial_state_values(trial_id, TrialState.FAIL)
    except optuna.exceptions.UpdateFinishedTrialError:
        return False
    return True
