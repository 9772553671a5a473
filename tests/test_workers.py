"""Several workers on one study, with SQLite: no repeated settings across restarts and workers,
stale trials of dead workers failed once and re-run, claims decided once, the schema race."""

from __future__ import annotations

import importlib.util
import multiprocessing
import threading

import mlflow
import optuna
import pytest
from optuna.distributions import CategoricalDistribution, FloatDistribution, IntDistribution
from optuna.trial import TrialState, create_trial

from segmentlab.study import sampling, tuning, workers
from segmentlab.study.tracking import MlflowTracker

SPACE = {"clusterer.n_clusters": IntDistribution(3, 10)}  # the K-means space: 8 settings


def url(tmp_path) -> str:
    return f"sqlite:///{tmp_path}/optuna.db"


def seeded_study(tmp_path, seed: int | None = 42, name: str = "s", space=None) -> optuna.Study:
    """What a freshly started worker opens: the stored study with a new seeded TPE sampler (that
    moves repeated draws to free settings of ``space``, as `tuning.open_study` makes it)."""
    sampler = (optuna.samplers.TPESampler(seed=None) if seed is None else
               sampling.TrialSeededSampler(lambda s: optuna.samplers.TPESampler(seed=s), seed, space))
    return optuna.create_study(study_name=name, storage=workers.open_storage(url(tmp_path)),
                               load_if_exists=True, sampler=sampler)


def score(params) -> tuning.TrialOutcome:
    return tuning.TrialOutcome({"m": -abs(params["clusterer.n_clusters"] - 6)})


def settings(study) -> list[int]:
    return [t.params["clusterer.n_clusters"] for t in study.trials if tuning.counted(t)]


def test_sqlite_stores_commit_to_a_write_ahead_log(tmp_path):
    import sqlite3

    study = seeded_study(tmp_path)
    study.enqueue_trial({"clusterer.n_clusters": 4})  # a write through the storage
    with sqlite3.connect(tmp_path / "optuna.db") as connection:
        assert connection.execute("PRAGMA journal_mode").fetchone()[0] == "wal"


def test_trial_state_reads_the_stored_state(tmp_path):
    study = seeded_study(tmp_path)
    trial = study.ask(SPACE)
    assert workers.trial_state(study, trial._trial_id) == TrialState.RUNNING
    workers.fail_dead_trial(study, study.trials[0], "gone")
    assert workers.trial_state(study, trial._trial_id) == TrialState.FAIL


def test_a_seeded_sampler_keeps_its_search_space_cache_across_trials(tmp_path):
    # The sampler is rebuilt per trial (its seed is the trial's); the intersection of the
    # trials' search spaces is built incrementally and must survive the rebuild.
    study = seeded_study(tmp_path, space=SPACE)
    tuning.run_trials(study, SPACE, 2, None, score, ["m"], progress=False)
    cache = study.sampler._sampler._search_space
    tuning.run_trials(study, SPACE, 4, None, score, ["m"], progress=False)
    assert study.sampler._sampler._search_space is cache
    assert len(set(settings(study))) == 4


def test_a_lone_worker_creates_no_surplus_trial(tmp_path):
    # After its own trial a worker decides from what its ask read; alone it must end exactly.
    study = seeded_study(tmp_path, space={"clusterer.n_clusters": IntDistribution(3, 40)})
    assert tuning.run_trials(study, study.sampler.space, 9, None, score, ["m"], progress=False) == 9
    assert [t.state for t in study.trials] == [TrialState.COMPLETE] * 9


def test_a_restarted_seeded_worker_replays_its_first_draws_without_per_trial_seeds(tmp_path):
    # The failure being fixed: a plain seeded sampler restarts its random stream.
    first = optuna.create_study(storage=url(tmp_path), study_name="plain",
                                sampler=optuna.samplers.TPESampler(seed=42))
    drawn = [first.ask(SPACE).params for _ in range(3)]
    again = optuna.load_study(study_name="plain", storage=url(tmp_path),
                              sampler=optuna.samplers.TPESampler(seed=42))
    assert again.ask(SPACE).params == drawn[0]


def test_resumed_study_repeats_no_setting_and_stops_when_the_space_is_exhausted(tmp_path, capsys):
    tuning.run_trials(seeded_study(tmp_path), SPACE, 3, None, score, ["m"], progress=False)
    first = settings(seeded_study(tmp_path))
    assert len(first) == 3
    # A new process with the same seed (a restart after a kill) resumes; then asks for more
    # trials than the space has settings.
    tuning.run_trials(seeded_study(tmp_path), SPACE, 6, None, score, ["m"], progress=False)
    tuning.run_trials(seeded_study(tmp_path), SPACE, 12, None, score, ["m"], progress=False)
    done = settings(seeded_study(tmp_path))
    assert done[:3] == first and sorted(done) == list(range(3, 11))
    assert "the search space has 8 settings, all evaluated" in capsys.readouterr().out
    assert not tuning.run_trials(seeded_study(tmp_path), SPACE, 12, None, score, ["m"], progress=False)


def test_two_workers_asking_at_once_never_share_a_setting(tmp_path):
    a, b = seeded_study(tmp_path), seeded_study(tmp_path)  # same seed, as two workers of one command
    held = []
    for _ in range(4):  # both ask before either tells
        ta, tb = tuning.ask(a, SPACE, 8, sampling.finite_settings(SPACE)), tuning.ask(
            b, SPACE, 8, sampling.finite_settings(SPACE))
        held += [ta.params["clusterer.n_clusters"], tb.params["clusterer.n_clusters"]]
        a.tell(ta, 1.0)
        b.tell(tb, 1.0)
    assert sorted(held) == list(range(3, 11))
    duplicates = [t for t in a.trials if "duplicate_of" in t.user_attrs]
    assert all(t.state == TrialState.FAIL and not tuning.counted(t) for t in duplicates)


def test_per_trial_seeds_make_a_study_reproducible(tmp_path):
    space = {"clusterer.eps": FloatDistribution(0.1, 2.0),
             "clusterer.metric": CategoricalDistribution(["a", "b"])}
    runs = []
    for name in ("one", "two"):
        study = seeded_study(tmp_path, name=name)
        tuning.run_trials(study, space, 5, None, lambda p: tuning.TrialOutcome({"m": p["clusterer.eps"]}),
                          ["m"], progress=False)
        runs.append([t.params for t in study.trials])
    assert runs[0] == runs[1]


def running_trial_of(study, worker: str, beat: float = 1.0) -> int:
    """A RUNNING trial owned by ``worker`` (a process on another host), holding setting 6."""
    template = create_trial(state=TrialState.RUNNING, params={"clusterer.n_clusters": 6},
                            distributions=SPACE,
                            system_attrs={workers.WORKER_ATTR: worker, workers.HEARTBEAT_ATTR: beat})
    return study._storage.create_new_trial(study._study_id, template_trial=template)


def test_stale_watch_times_heartbeats_by_its_own_clock():
    now = [100.0]
    watch = workers.StaleWatch(grace_period=30, clock=lambda: now[0])
    trial = create_trial(state=TrialState.RUNNING, system_attrs={workers.WORKER_ATTR: "elsewhere:7",
                                                                 workers.HEARTBEAT_ATTR: 5.0})
    trial._trial_id = 1
    assert watch.dead([trial]) == []
    now[0] += 29
    assert watch.dead([trial]) == []
    trial.system_attrs[workers.HEARTBEAT_ATTR] = 1e12  # a beat (any new value, whatever its clock)
    now[0] += 29
    assert watch.dead([trial]) == []
    now[0] += 31
    ((dead, reason),) = watch.dead([trial])
    assert dead is trial and "elsewhere:7 stopped beating" in reason and "grace_period=30" in reason


def test_a_dead_process_on_this_host_is_dead_at_once(monkeypatch):
    trial = create_trial(state=TrialState.RUNNING, system_attrs={workers.WORKER_ATTR: f"{workers.WORKER}1"})
    trial._trial_id = 1
    monkeypatch.setattr(workers, "alive", lambda pid: False)
    ((_, reason),) = workers.StaleWatch(grace_period=3600).dead([trial])
    assert "died" in reason


def test_stale_trial_of_another_host_is_failed_once_and_its_slot_rerun(tmp_path):
    study = seeded_study(tmp_path)
    stale = running_trial_of(study, "elsewhere:99")
    dead = []
    ran = tuning.run_trials(study, SPACE, 3, None, score, ["m"], progress=False,
                            on_dead=lambda t, reason: dead.append((t.number, reason)),
                            heartbeat_interval=0.2, grace_period=1.5)
    failed = study._storage.get_trial(stale)
    assert failed.state == TrialState.FAIL and failed.user_attrs["interrupted"]
    assert "elsewhere:99 stopped beating" in failed.user_attrs["fail_reason"]
    assert dead == [(failed.number, failed.user_attrs["fail_reason"])]
    assert ran == 3 and sum(tuning.counted(t) for t in study.trials) == 3
    assert 6 in settings(study)  # the dead trial's setting was never evaluated: free again
    # A second worker that noticed the same trial does not fail it (or log it) again.
    assert not workers.fail_dead_trial(study, failed, "again")


def test_a_trial_failed_as_dead_while_its_worker_lived_is_discarded_not_told(tmp_path, capsys):
    study = seeded_study(tmp_path)
    logged = []

    def objective(params):  # the first time, another worker judges this one dead meanwhile
        if not study.trials[:-1]:
            (mine,) = study.get_trials(states=(TrialState.RUNNING,))
            assert workers.fail_dead_trial(study, mine, "judged dead")
        return score(params)

    ran = tuning.run_trials(study, SPACE, 1, None, objective, ["m"], progress=False,
                            on_trial=lambda trial, outcome: logged.append(trial.number),
                            heartbeat_interval=0.05)
    assert "trial 0 was failed by another worker" in capsys.readouterr().err
    first, second = study.trials
    assert first.state == TrialState.FAIL and first.user_attrs["fail_reason"] == "judged dead"
    assert second.state == TrialState.COMPLETE and ran == 1 and logged == [1]


def _claim(args):
    storage_url, key, value = args
    study = optuna.load_study(study_name="s", storage=workers.open_storage(storage_url))
    return workers.claim_study_attr(study, key, value)


def test_a_study_attribute_is_claimed_once_across_processes(tmp_path):
    optuna.create_study(study_name="s", storage=url(tmp_path))
    with multiprocessing.get_context("spawn").Pool(4) as pool:
        holders = pool.map(_claim, [(url(tmp_path), "parent", f"run-{i}") for i in range(4)])
    assert len(set(holders)) == 1 and holders[0] in {f"run-{i}" for i in range(4)}
    study = optuna.load_study(study_name="s", storage=url(tmp_path))
    assert workers.claim_study_attr(study, "parent", "late") == holders[0]
    assert workers.claim_study_attr(study, "parent", "new", replace="stale-value") == holders[0]
    assert workers.claim_study_attr(study, "parent", "new", replace=holders[0]) == "new"


def _open(args):
    storage_url, barrier = args
    barrier.wait()
    workers.open_storage(storage_url)
    return True


def test_workers_started_together_on_an_empty_database_all_open_it(tmp_path):
    ctx = multiprocessing.get_context("spawn")
    with ctx.Manager() as manager:
        barrier = manager.Barrier(4)
        with ctx.Pool(4) as pool:
            assert pool.map(_open, [(url(tmp_path), barrier)] * 4) == [True] * 4


@pytest.mark.skipif(importlib.util.find_spec("psycopg") is not None, reason="psycopg 3 is installed")
def test_a_bare_postgresql_url_without_its_driver_is_one_line_naming_the_fix():
    # SQLAlchemy 2 maps postgresql:// to psycopg 3; the README's URLs name psycopg2.
    with pytest.raises(workers.StorageError, match=r"u:\*\*\*@h/db: database driver missing.*psycopg2://"):
        workers.open_storage("postgresql://u:secret@h/db")


def test_an_unknown_driver_fails_at_once():
    with pytest.raises(workers.StorageError, match=r"u:\*\*\*@h/db: Can't load plugin.*expected an RDB URL"):
        workers.open_storage("postgresql+nosuchdriver://u:secret@h/db")


def test_one_parent_run_when_two_workers_start_the_study_together(tmp_path, monkeypatch):
    study = optuna.create_study(study_name="s", storage=url(tmp_path))
    tracker = MlflowTracker(f"sqlite:///{tmp_path}/mlflow.db", "race", str(tmp_path / "art"))
    tracker.check()
    arrived, claim = threading.Barrier(2, timeout=120), workers.claim_study_attr

    def claim_together(*args, **kwargs):  # both have made a candidate before either claims
        arrived.wait()
        return claim(*args, **kwargs)

    monkeypatch.setattr(workers, "claim_study_attr", claim_together)
    found = []
    threads = [threading.Thread(target=lambda: found.append(tracker.parent_of(study, "kmeans")))
               for _ in range(2)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    monkeypatch.undo()
    mlflow.set_tracking_uri(tracker.tracking_uri)
    runs = mlflow.search_runs(experiment_names=["race"])
    assert found[0] == found[1] and list(runs.run_id) == [found[0]]
    assert tracker.parent_of(study, "kmeans") == found[0]  # a later worker joins it
    mlflow.MlflowClient().delete_run(found[0])
    assert tracker.parent_of(study, "kmeans") not in (found[0], None)  # a deleted parent is replaced


@pytest.mark.parametrize("uri, location, expected", [
    ("http://127.0.0.1:5000", "outputs/mlartifacts", None),  # the server decides: mlflow-artifacts:/
    ("http://127.0.0.1:5000", "s3://bucket/art", "s3://bucket/art"),
    ("sqlite:///x.db", "s3://bucket/art", "s3://bucket/art"),
])
def test_a_server_stores_the_artifacts_unless_a_uri_is_given(uri, location, expected):
    assert MlflowTracker(uri, "e", location).new_artifact_location() == expected


def test_the_end_of_run_hint_fits_the_store():
    server = MlflowTracker("http://u:pw@10.0.0.5:5000/", "e")
    server.experiment_id_ = "3"
    assert server.ui_command == "http://u:***@10.0.0.5:5000/#/experiments/3/runs"
    local = MlflowTracker("sqlite:///outputs/mlflow.db", "e")
    assert local.ui_command.startswith("mlflow ui --backend-store-uri sqlite:///outputs/mlflow.db")


def test_a_grace_period_shorter_than_two_heartbeats_is_refused(tmp_path):
    from tests.conftest import compose_config

    cfg = compose_config("tuning=optuna", "tuning.heartbeat_interval=10", "tuning.grace_period=15")
    with pytest.raises(tuning.TuningError, match=r"tuning.grace_period=15 must be at least twice "
                                                 r"tuning.heartbeat_interval=10"):
        tuning.search_space(cfg, {"clusterer": "kmeans"})


def test_workers_joining_a_parent_run_keep_the_first_value_of_a_param_they_differ_in(tmp_path, monkeypatch):
    from mlflow.exceptions import MlflowException

    from segmentlab.study import tracking

    tracker = MlflowTracker(f"sqlite:///{tmp_path}/mlflow.db", "join", str(tmp_path / "art"))
    with tracker.run("parent", {"seed": 42, "cache_dir": "/host-a/cache"}, {}, {}, []) as parent:
        pass
    log, calls = tracking._log_params, []

    def raced_once(params):  # another worker logged between our read and our write
        calls.append(dict(params))
        if len(calls) == 1:
            raise MlflowException("Changing param values is not allowed")
        log(params)

    monkeypatch.setattr(tracking, "_log_params", raced_once)
    with tracker.run("parent", {"seed": 42, "cache_dir": "/host-b/cache", "extra": 1}, {}, {}, [],
                     resume_run_id=parent):
        pass
    assert mlflow.get_run(parent).data.params == {"seed": "42", "cache_dir": "/host-a/cache", "extra": "1"}
    assert len(calls) == 2 and "cache_dir" not in calls[1]


@pytest.mark.parametrize("space", [
    {"clusterer.n_clusters": IntDistribution(3, 22)},
    {"clusterer.n_clusters": IntDistribution(3, 7),
     "clusterer.init": CategoricalDistribution(["k-means++", "random"]),
     "clusterer.n_init": CategoricalDistribution([1, 10])}], ids=["one dimension", "three"])
def test_a_seeded_study_moves_a_repeated_draw_to_the_nearest_free_setting(tmp_path, space):
    """TPE re-proposes its best region; in a finite space the draw goes to a free setting instead
    of a trial created and failed as a duplicate, and the study covers the space exactly."""
    n_settings = len(sampling.finite_settings(space))
    without = seeded_study(tmp_path, name="without")  # the sampler as it was: duplicates were failed
    tuning.run_trials(without, space, n_settings, None,
                      lambda p: tuning.TrialOutcome({"m": -abs(p["clusterer.n_clusters"] - 5)}),
                      ["m"], progress=False)
    assert any("duplicate_of" in t.user_attrs for t in without.trials)
    study = seeded_study(tmp_path, space=space)
    tuning.run_trials(study, space, n_settings, None,
                      lambda p: tuning.TrialOutcome({"m": -abs(p["clusterer.n_clusters"] - 5)}),
                      ["m"], progress=False)
    assert [t.state for t in study.trials] == [TrialState.COMPLETE] * n_settings
    assert len({tuple(t.params[k] for k in space) for t in study.trials}) == n_settings


def test_a_repeated_draw_goes_to_the_nearest_free_setting_ties_to_the_lower():
    space = {"clusterer.n_clusters": IntDistribution(3, 10),
             "clusterer.init": CategoricalDistribution(["k-means++", "random"])}
    sampler = sampling.TrialSeededSampler(lambda s: optuna.samplers.RandomSampler(seed=s), 1, space)
    study = optuna.create_study(sampler=sampler)
    for k in (5, 6, 7):
        for init in ("k-means++", "random"):
            study.add_trial(create_trial(params={"clusterer.n_clusters": k, "clusterer.init": init},
                                         distributions=space, value=0.0))
    study.add_trial(create_trial(params={"clusterer.n_clusters": 4, "clusterer.init": "random"},
                                 distributions=space, value=0.0))
    frozen = study._storage.get_trial(study.ask()._trial_id)
    free = sampler._free
    assert free(study, frozen, {"clusterer.n_clusters": 6}) == {"clusterer.n_clusters": 4}
    assert free(study, frozen, {"clusterer.n_clusters": 7}) == {"clusterer.n_clusters": 8}
    assert free(study, frozen, {"clusterer.n_clusters": 9}) == {"clusterer.n_clusters": 9}
    frozen.params["clusterer.init"] = "random"  # drawn first: 4 is taken with it, so 6 goes to 8
    assert free(study, frozen, {"clusterer.n_clusters": 6}) == {"clusterer.n_clusters": 8}
    both = {"clusterer.n_clusters": 4, "clusterer.init": "random"}
    assert free(optuna.create_study(sampler=sampler), frozen, both) == both  # nothing taken there
