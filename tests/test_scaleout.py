"""Scale-out on real services: workers on PostgreSQL and an MLflow tracking server.

Needs ``SEGMENTLAB_PG_URL`` (a PostgreSQL URL whose role may create databases, e.g.
``postgresql+psycopg2://segmentlab:PW@127.0.0.1:5432/postgres``) and ``SEGMENTLAB_MLFLOW_URL``
(an ``mlflow server`` with served artifacts); skipped only when they are unset. ``.ci/run``
starts both services (``.ci/services.sh``) and sets them, so in CI these tests run. Each test
makes its own empty Optuna database and its own MLflow experiment, and drops the database.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import threading
import time
import uuid
from pathlib import Path

import mlflow
import optuna
import pytest
from optuna.trial import TrialState

from segmentlab.study import tuning
from segmentlab.study.reproduce import reproduce
from segmentlab.study.tracking import MlflowTracker
from tests.conftest import FAST, ROOT

PG_URL = os.environ.get("SEGMENTLAB_PG_URL")
MLFLOW_URL = os.environ.get("SEGMENTLAB_MLFLOW_URL")
ARTIFACTS = os.environ.get("SEGMENTLAB_MLFLOW_ARTIFACTS")  # the server's --artifacts-destination

pytestmark = [pytest.mark.postgres, pytest.mark.skipif(
    not (PG_URL and MLFLOW_URL), reason="SEGMENTLAB_PG_URL and SEGMENTLAB_MLFLOW_URL are unset "
                                        "(.ci/run starts PostgreSQL and an MLflow server and sets them)")]

N_TRIALS = 6  # of the 8 K-means settings (n_clusters 3..10)


@pytest.fixture
def empty_db():
    """A new, empty PostgreSQL database; its URL."""
    import sqlalchemy

    name = f"optuna_{uuid.uuid4().hex[:12]}"
    admin = sqlalchemy.create_engine(PG_URL, isolation_level="AUTOCOMMIT")
    with admin.connect() as connection:
        connection.execute(sqlalchemy.text(f"CREATE DATABASE {name}"))
    yield PG_URL.rsplit("/", 1)[0] + "/" + name
    with admin.connect() as connection:
        connection.execute(sqlalchemy.text(f"DROP DATABASE {name} WITH (FORCE)"))
    admin.dispose()


@pytest.fixture
def experiment():
    return f"scaleout-{uuid.uuid4().hex[:8]}"


def worker(tmp_path, storage: str, experiment: str, n_trials: int = N_TRIALS) -> subprocess.Popen:
    """``python run.py …`` as a user runs it on each host (each worker with its own output folder)."""
    folder = tmp_path / uuid.uuid4().hex[:6]
    args = [*FAST, "tuning=optuna", "clusterer=kmeans", f"tuning.storage={storage}",
            f"tuning.n_trials={n_trials}", "tuning.show_progress=false", "tuning.heartbeat_interval=1",
            "tuning.grace_period=20", "tracking=mlflow", f"tracking.tracking_uri={MLFLOW_URL}",
            f"tracking.experiment={experiment}", f"cache_dir={folder}/cache", f"hydra.run.dir={folder}/h",
            "evaluation.stability_resamples=0"]
    return subprocess.Popen([sys.executable, str(ROOT / "run.py"), *args], cwd=ROOT,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)


def finish(*procs: subprocess.Popen) -> list[str]:
    outputs = [p.communicate(timeout=900) for p in procs]
    failed = [f"worker {p.pid} exit {p.returncode}:\n{err[-3000:]}"
              for p, (_, err) in zip(procs, outputs, strict=True) if p.returncode != 0]
    if failed:
        pytest.fail("\n".join(failed), pytrace=False)
    return [out for out, _ in outputs]


def the_study(storage: str) -> optuna.Study:
    (summary,) = optuna.get_all_study_summaries(storage)
    return optuna.load_study(study_name=summary.study_name, storage=storage)


def runs_of(experiment: str):
    """(parents, children) of the experiment: active runs only (a losing candidate is deleted)."""
    mlflow.set_tracking_uri(MLFLOW_URL)
    runs = mlflow.search_runs(experiment_names=[experiment])
    return runs[runs["tags.run_kind"] == "study"], runs[runs["tags.run_kind"] == "trial"]


def check_artifacts_on_server(children, experiment: str) -> None:
    client = mlflow.MlflowClient(MLFLOW_URL)
    assert client.get_experiment_by_name(experiment).artifact_location.startswith("mlflow-artifacts:/")
    for run_id in children.run_id:
        run = client.get_run(run_id)
        assert run.info.artifact_uri.startswith("mlflow-artifacts:/")
        names = {a.path for a in client.list_artifacts(run_id)}
        assert "config.yaml" in names, (run_id, names)
        if ARTIFACTS:  # and they are in the server's --artifacts-destination
            assert list(Path(ARTIFACTS).rglob(f"{run_id}/artifacts/config.yaml"))


def test_two_workers_started_together_on_an_empty_database_share_one_study(tmp_path, empty_db, experiment):
    outputs = finish(worker(tmp_path, empty_db, experiment), worker(tmp_path, empty_db, experiment))
    study = the_study(empty_db)
    complete = [t for t in study.trials if t.state == TrialState.COMPLETE]
    assert len(complete) == N_TRIALS and sum(tuning.counted(t) for t in study.trials) == N_TRIALS
    settings = [t.params["clusterer.n_clusters"] for t in complete]
    assert len(set(settings)) == N_TRIALS  # a finite space: no setting twice
    parents, children = runs_of(experiment)
    assert len(parents) == 1
    parent = parents.iloc[0]
    assert (children["tags.mlflow.parentRunId"] == parent.run_id).all()
    assert len(children) == N_TRIALS and (children["status"] == "FINISHED").all()
    assert sorted(children["tags.trial_number"].astype(int)) == sorted(t.number for t in complete)
    assert parent["metrics.tuning/n_finished_trials"] == N_TRIALS
    assert parent["tags.best_trial_number"] == str(study.best_trial.number)
    assert parent["tags.best_trial_run_id"] == study.best_trial.user_attrs["mlflow_run_id"]
    check_artifacts_on_server(children, experiment)
    assert reproduce(children.run_id.iloc[0], MLFLOW_URL) == 0  # artifacts read back through the server
    experiment_id = mlflow.get_experiment_by_name(experiment).experiment_id
    assert all(f"{MLFLOW_URL}/#/experiments/{experiment_id}/runs" in out for out in outputs)


def test_a_worker_killed_mid_trial_is_accounted_for_and_a_restart_repeats_nothing(
        tmp_path, empty_db, experiment):
    victim, survivor = worker(tmp_path, empty_db, experiment), worker(tmp_path, empty_db, experiment)
    held = wait_for_running_trial(empty_db, victim)
    os.kill(victim.pid, signal.SIGKILL)
    victim.communicate()
    before = {t.number: t.params for t in the_study(empty_db).trials if t.state == TrialState.COMPLETE}
    finish(survivor)
    study = the_study(empty_db)
    dead = study._storage.get_trial(held)
    assert dead.state == TrialState.FAIL and dead.user_attrs["interrupted"]
    assert "died" in dead.user_attrs["fail_reason"]
    complete = {t.number: t.params for t in study.trials if t.state == TrialState.COMPLETE}
    assert before.items() <= complete.items()  # no finished trial lost
    assert sum(tuning.counted(t) for t in study.trials) == N_TRIALS
    parents, children = runs_of(experiment)
    failed = children[children["tags.trial_number"] == str(dead.number)]
    assert list(failed["status"]) == ["FAILED"]
    assert list(failed["tags.fail_reason"]) == [dead.user_attrs["fail_reason"]]
    # A restart (all 8 settings now) adds only new settings, to the same parent run.
    finish(worker(tmp_path, empty_db, experiment, n_trials=8))
    study = the_study(empty_db)
    settings = [t.params["clusterer.n_clusters"] for t in study.trials if tuning.counted(t)]
    assert sorted(settings) == list(range(3, 11))
    parents_after, children = runs_of(experiment)
    assert list(parents_after.run_id) == list(parents.run_id)
    assert (children["tags.mlflow.parentRunId"] == parents.iloc[0].run_id).all()
    assert (children["status"] == "FINISHED").sum() == 8
    check_artifacts_on_server(children[children["status"] == "FINISHED"], experiment)


def test_workers_tagging_the_parent_run_at_the_same_moment_both_succeed(experiment):
    """Joined workers write the same tags to the one parent run at the same moment (they load the
    same data as fast); MLflow's single ``set_tag`` then fails on PostgreSQL with a unique-key
    violation for whichever inserts second (17 of 20 rounds here), its batch call retries."""
    tracker = MlflowTracker(MLFLOW_URL, experiment)
    tracker.check()
    run_id = mlflow.MlflowClient(MLFLOW_URL).create_run(tracker.experiment_id_).info.run_id
    rounds, barrier, errors = 20, threading.Barrier(2), []

    def tag_together(name: str) -> None:
        with mlflow.start_run(run_id=run_id):
            for i in range(rounds):
                barrier.wait(timeout=60)
                try:
                    tracker.log_skipped(f"stage{i}", f"reason from {name}")
                except Exception as e:  # noqa: BLE001 - collected and asserted below
                    errors.append(e)

    threads = [threading.Thread(target=tag_together, args=(name,)) for name in ("a", "b")]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert errors == []
    tags = mlflow.MlflowClient(MLFLOW_URL).get_run(run_id).data.tags
    assert sum(key.startswith("skipped/stage") for key in tags) == rounds


def wait_for_running_trial(storage: str, proc: subprocess.Popen, timeout: float = 600) -> int:
    """The id of a trial ``proc`` is evaluating, once at least one trial of the study is complete.

    Reads the database only once the workers have made a study in it, so that the test itself
    never creates the schema the workers race to create."""
    import sqlalchemy

    engine, study = sqlalchemy.create_engine(storage), None
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline and proc.poll() is None:
        time.sleep(0.05)
        if study is None:
            try:
                with engine.connect() as connection:
                    if not connection.execute(sqlalchemy.text("SELECT count(*) FROM studies")).scalar():
                        continue
            except sqlalchemy.exc.ProgrammingError:  # no tables yet
                continue
            study = the_study(storage)
        trials = study.trials
        # Being evaluated: it has beaten. A trial still being asked for may yet be failed by its
        # own worker as a duplicate setting (no heartbeat then), which is not an interruption.
        mine = [t for t in trials if t.state == TrialState.RUNNING
                and t.system_attrs.get("segmentlab_worker", "").endswith(f":{proc.pid}")
                and "segmentlab_heartbeat" in t.system_attrs]
        if mine and any(t.state == TrialState.COMPLETE for t in trials):
            engine.dispose()
            return mine[0]._trial_id
    raise AssertionError(f"worker {proc.pid} ran no trial in {timeout} s (exit {proc.poll()})")
