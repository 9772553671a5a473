"""Optuna studies: spaces, failures, resume after a killed worker, concurrent workers, reproduce."""

from __future__ import annotations

import math
import os
import signal
import subprocess
import sys
import time

import mlflow
import optuna
import pytest
from conftest import run_experiment
from omegaconf import OmegaConf
from optuna.distributions import IntDistribution
from optuna.trial import TrialState
from sklearn.datasets import make_classification

from segmentlab.config import build, with_overrides
from segmentlab.study import tuning, workers
from segmentlab.study.reproduce import reproduce
from segmentlab.study.store import fetch_run
from tests.conftest import FAST, ROOT, compose_config


def storage(tmp_path) -> str:
    return f"sqlite:///{tmp_path}/optuna.db"


def tuned(tmp_path, *overrides: str):
    return compose_config("tuning=optuna", f"tuning.storage={storage(tmp_path)}",
                          "tuning.show_progress=false", *overrides, cache_dir=tmp_path / "cache")


def trials(tmp_path) -> list[optuna.trial.FrozenTrial]:
    (summary,) = optuna.get_all_study_summaries(storage(tmp_path))
    return optuna.load_study(study_name=summary.study_name, storage=storage(tmp_path)).trials


def test_space_key_missing_from_config_is_a_clear_error(tmp_path):
    bogus = "{_target_:optuna.distributions.IntDistribution,low:2,high:4}"
    cfg = tuned(tmp_path, f"+tuning.space.clusterer.n_clustrs={bogus}")
    with pytest.raises(tuning.TuningError, match=r"'clusterer\.n_clustrs' does not exist.*n_clusters"):
        tuning.search_space(cfg, {"clusterer": "kmeans"})


def test_missing_space_file_names_the_file(tmp_path):
    cfg = tuned(tmp_path, "~tuning/space/clusterer")
    with pytest.raises(tuning.TuningError, match=r"tuning/space/clusterer/kmeans\.yaml"):
        tuning.search_space(cfg, {"clusterer": "kmeans"})


def test_space_keys_are_the_override_paths(tmp_path):
    cfg = tuned(tmp_path, "clusterer=dbscan")
    space = tuning.search_space(cfg, {"clusterer": "dbscan"})
    assert set(space) == {"clusterer.eps", "clusterer.min_samples"}


@pytest.mark.parametrize("classifier", ["logreg", "random_forest", "xgboost"])
def test_every_classifier_has_a_space_of_real_keys(tmp_path, classifier):
    cfg = tuned(tmp_path, "tuning=optuna_classifier", f"classifier={classifier}")
    space = tuning.search_space(cfg, {"classifier": classifier})
    assert space and all(key.startswith("classifier.") for key in space)
    # Every sampled point overrides real keys and builds a classifier that fits and predicts.
    X, y = make_classification(n_samples=80, n_features=5, random_state=0)
    study = optuna.create_study(sampler=optuna.samplers.RandomSampler(seed=0))
    for _ in range(4):
        params = study.ask(space).params
        trial_cfg = with_overrides(cfg, params)
        assert all(OmegaConf.select(trial_cfg, k) == v for k, v in params.items())
        proba = build(trial_cfg.classifier).fit(X, y).predict_proba(X)[:, 1]
        assert proba.shape == (80,) and ((proba >= 0) & (proba <= 1)).all()


def test_clusterer_studies_do_not_sample_the_classifier(tmp_path):
    cfg = tuned(tmp_path)
    assert all(k.startswith("clusterer.") for k in tuning.search_space(cfg, {"clusterer": "kmeans"}))


@pytest.mark.parametrize("overrides, message", [
    (["tuning.metrics=[predict/roc_auc]"], "evaluation period.*predict/validation_roc_auc"),
    (["tuning=optuna_classifier", "tuning.metrics=[cluster/silhouette]"], "does not depend on it"),
    (["tuning=optuna_classifier", "~tuning/space/classifier"], r"space/classifier/logreg\.yaml"),
])
def test_classifier_tuning_refuses_leaky_or_useless_objectives(tmp_path, overrides, message):
    cfg = tuned(tmp_path, *overrides)
    with pytest.raises(tuning.TuningError, match=message):
        tuning.search_space(cfg, {"clusterer": "kmeans", "classifier": "logreg"})


def test_classifier_study_tunes_on_validation_and_keeps_the_evaluation_out(tmp_path):
    store = f"sqlite:///{tmp_path}/mlflow.db"
    cfg = tuned(tmp_path, "tuning=optuna_classifier", "tuning.n_trials=4", "tracking=mlflow",
                f"tracking.tracking_uri={store}", f"tracking.artifact_location={tmp_path}/art",
                "prediction.importance_repeats=0")
    run_experiment(cfg, {"clusterer": "kmeans", "classifier": "logreg"}, [])
    (summary,) = optuna.get_all_study_summaries(storage(tmp_path))
    assert summary.study_name.startswith("logreg.kmeans.")
    study = optuna.load_study(study_name=summary.study_name, storage=storage(tmp_path))
    done = [t for t in study.trials if t.state == TrialState.COMPLETE]
    assert len(done) == 4 and len({t.params["classifier.C"] for t in done}) == 4
    mlflow.set_tracking_uri(store)
    runs = mlflow.search_runs(experiment_names=["segmentlab"])
    parent = runs[runs["tags.run_kind"] == "study"].iloc[0]
    # The final run re-scores the chosen classifier on the validation pair: the study's best value.
    assert parent["metrics.predict/validation_roc_auc"] == pytest.approx(study.best_value)
    effective = fetch_run(parent.run_id, store).config  # params hold the command; config.yaml the result
    assert effective["classifier"]["C"] == pytest.approx(study.best_params["classifier.C"])
    assert effective["assigner"]["C"] == compose_config().assigner.C  # assignment keeps its defaults
    trial_runs = runs[runs["tags.run_kind"] == "trial"]
    assert trial_runs["metrics.predict/validation_roc_auc"].notna().all()
    assert "metrics.predict/roc_auc" not in trial_runs or trial_runs["metrics.predict/roc_auc"].isna().all()
    # One clustering serves every trial of a classifier study: identical labels and metrics.
    assert trial_runs["metrics.cluster/silhouette"].nunique() == 1
    child = trial_runs.iloc[0].run_id
    assert reproduce(child, store) == 0


def test_failing_trials_are_recorded_with_reason_and_the_study_goes_on(tmp_path):
    study = optuna.create_study(storage=storage(tmp_path), study_name="s")
    space = {"clusterer.n_clusters": IntDistribution(2, 9)}

    def objective(params):
        if params["clusterer.n_clusters"] % 2:
            raise RuntimeError("odd clusters rejected")
        return tuning.TrialOutcome({"m": float(params["clusterer.n_clusters"])})

    ran = tuning.run_trials(study, space, 8, None, objective, ["m"], progress=False)
    assert ran == 8
    failed = [t for t in study.trials if t.state == TrialState.FAIL and tuning.counted(t)]
    assert failed and all("odd clusters rejected" in t.user_attrs["fail_reason"] for t in failed)
    assert sum(tuning.counted(t) for t in study.trials) == 8


def test_nan_objective_fails_the_trial():
    outcome = tuning.judge(tuning.TrialOutcome({"cluster/silhouette": math.nan}), ["cluster/silhouette"])
    assert outcome.failure == "objective undefined: cluster/silhouette"


def test_every_trial_failing_ends_with_a_clear_error(tmp_path):
    cfg = tuned(tmp_path, "clusterer=dbscan", "tuning.n_trials=3",
                "tuning.space.clusterer.eps._target_=optuna.distributions.FloatDistribution",
                "tuning.space.clusterer.eps.low=1e-6", "tuning.space.clusterer.eps.high=2e-6",
                "tuning.space.clusterer.eps.log=false")
    with pytest.raises(tuning.TuningError, match="every trial failed.*degenerate"):
        run_experiment(cfg, {"clusterer": "dbscan"}, [])


def test_rerunning_resumes_and_adds_only_missing_trials(tmp_path):
    run_experiment(tuned(tmp_path, "tuning.n_trials=3"), {"clusterer": "kmeans"}, [])
    first = [t.number for t in trials(tmp_path) if tuning.counted(t)]
    run_experiment(tuned(tmp_path, "tuning.n_trials=3"), {"clusterer": "kmeans"}, [])
    assert [t.number for t in trials(tmp_path) if tuning.counted(t)] == first and len(first) == 3
    run_experiment(tuned(tmp_path, "tuning.n_trials=5"), {"clusterer": "kmeans"}, [])
    kept = [t for t in trials(tmp_path) if tuning.counted(t)]
    assert len(kept) == 5 and set(first) < {t.number for t in kept}
    assert len({t.params["clusterer.n_clusters"] for t in kept}) == 5  # no setting run twice


def worker(tmp_path, n_trials: int, *extra: str) -> subprocess.Popen:
    args = [*FAST, "tuning=optuna", f"tuning.storage={storage(tmp_path)}", f"tuning.n_trials={n_trials}",
            "tuning.show_progress=false", f"cache_dir={tmp_path}/cache", f"hydra.run.dir={tmp_path}/h",
            "evaluation.stability_resamples=0", *extra]
    return subprocess.Popen([sys.executable, str(ROOT / "run.py"), *args], cwd=ROOT,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)


def complete(tmp_path) -> int:
    try:
        return sum(t.state == TrialState.COMPLETE for t in trials(tmp_path))
    except (ValueError, KeyError, optuna.exceptions.StorageInternalError):
        return 0


def test_killed_study_loses_no_finished_trial(tmp_path):
    wide = "tuning.space.clusterer.n_clusters.high=60"  # more settings than a worker runs before the kill
    proc = worker(tmp_path, 58, wide)
    deadline = time.monotonic() + 240
    while complete(tmp_path) < 3 and time.monotonic() < deadline and proc.poll() is None:
        time.sleep(0.05)
    os.kill(proc.pid, signal.SIGKILL)
    proc.wait()
    before = {t.number: t.params for t in trials(tmp_path) if t.state == TrialState.COMPLETE}
    assert len(before) >= 3
    assert len(before) < 58, "the study ended before the worker was killed"
    assert worker(tmp_path, len(before) + 2, wide).wait(timeout=300) == 0
    after = trials(tmp_path)
    kept = {t.number: t.params for t in after if t.state == TrialState.COMPLETE}
    assert before.items() <= kept.items()  # every finished trial survived unchanged
    assert sum(tuning.counted(t) for t in after) == len(before) + 2
    settings = [t.params["clusterer.n_clusters"] for t in after if tuning.counted(t)]
    assert len(set(settings)) == len(settings)  # the restarted worker repeated no setting
    assert not [t for t in after if t.state == TrialState.RUNNING]


def test_a_worker_killed_inside_ask_leaves_a_trial_the_next_worker_recovers(tmp_path, monkeypatch):
    study = optuna.create_study(storage=storage(tmp_path), study_name="s")
    space = {"clusterer.n_clusters": IntDistribution(2, 9)}
    create = study._storage.create_new_trial

    def create_then_die(*args, **kwargs):  # the process dies right after the trial row exists
        create(*args, **kwargs)
        raise KeyboardInterrupt

    monkeypatch.setattr(study._storage, "create_new_trial", create_then_die)
    with pytest.raises(KeyboardInterrupt):
        tuning.ask(study, space, n_trials=3)
    monkeypatch.undo()
    assert tuning.remaining(study, 3) == 2  # the orphan holds a slot...
    monkeypatch.setattr(workers, "alive", lambda pid: False)  # ...until its worker is known dead
    assert tuning.recover_interrupted(study) == 1
    (orphan,) = study.trials
    assert orphan.state == TrialState.FAIL and orphan.user_attrs["interrupted"]
    assert tuning.remaining(study, 3) == 3 and not tuning.counted(orphan)


def test_two_concurrent_workers_share_one_study_exactly(tmp_path):
    optuna.create_study(storage=storage(tmp_path))  # create the schema before the race
    first, second = worker(tmp_path, 6), worker(tmp_path, 6)
    codes = [p.wait(timeout=300) for p in (first, second)]
    assert codes == [0, 0], (first.stderr.read()[-1500:], second.stderr.read()[-1500:])
    studies = [s for s in optuna.get_all_study_summaries(storage(tmp_path)) if s.n_trials]
    assert len(studies) == 1
    finished = [t for t in trials_of(tmp_path, studies[0].study_name) if tuning.counted(t)]
    assert len(finished) == 6
    assert len({t.params["clusterer.n_clusters"] for t in finished}) == 6  # K-means: 8 settings


def trials_of(tmp_path, name):
    return optuna.load_study(study_name=name, storage=storage(tmp_path)).trials


def test_reproduce_a_trial_gives_ari_one(tmp_path, capsys):
    store = f"sqlite:///{tmp_path}/mlflow.db"
    cfg = tuned(tmp_path, "tuning.n_trials=2", "tracking=mlflow", f"tracking.tracking_uri={store}",
                f"tracking.artifact_location={tmp_path}/art")
    run_experiment(cfg, {"clusterer": "kmeans"}, [])
    mlflow.set_tracking_uri(store)
    runs = mlflow.search_runs(experiment_names=["segmentlab"])
    child = runs[runs["tags.run_kind"] == "trial"].iloc[0].run_id
    parent = runs[runs["tags.run_kind"] == "study"].iloc[0].run_id
    for run_id in (child, parent):
        assert reproduce(run_id, store) == 0
        out = capsys.readouterr().out
        assert "ARI 1.0000" in out and "agreement: exact" in out


def test_recommender_study_tunes_on_the_validation_window(tmp_path):
    cfg = tuned(tmp_path, "tuning=optuna_recommender", "recommender=cooccurrence", "tuning.n_trials=3",
                "prediction.enabled=false")
    objective = run_experiment(cfg, {"clusterer": "kmeans", "recommender": "cooccurrence"}, [])
    assert math.isfinite(objective)
    done = trials(tmp_path)
    values = [t.value for t in done if t.state.name == "COMPLETE"]
    assert len(values) == 3 and all(0 <= v <= 1 for v in values)
    assert {k.split(".")[0] for t in done for k in t.params} == {"recommender"}


@pytest.mark.parametrize("metric", ["recommend/recall_at_10", "predict/roc_auc"])
def test_studies_refuse_evaluation_window_objectives(tmp_path, metric):
    cfg = tuned(tmp_path, f"tuning.metrics=[{metric}]")
    with pytest.raises(tuning.TuningError, match="evaluation period"):
        run_experiment(cfg, {"clusterer": "kmeans"}, [])


@pytest.mark.parametrize("params", [
    {"clusterer.n_clusters": 3},
    {"reducer.n_components": 2, "clusterer.n_clusters": 5},
    {"classifier.C": 0.5},
    {"seed": 7},  # interpolated into other nodes: everything is assembled again
    {"features.rfm.log": False},  # not a node a trial rebuilds alone
])
def test_with_params_builds_what_assembling_the_changed_config_builds(tmp_path, params):
    from segmentlab.study.experiment import assemble

    cfg = compose_config("reducer=pca", cache_dir=tmp_path / "cache")
    fast = assemble(cfg).with_params(params)
    full = assemble(with_overrides(cfg, params))
    assert OmegaConf.to_yaml(fast.config) == OmegaConf.to_yaml(full.config)
    for name in ("features", "segmenter", "classifier", "assigner", "prediction_features"):
        got, want = getattr(fast, name)(), getattr(full, name)()
        assert repr(got.get_params()) == repr(want.get_params()), name
    assert (fast.evaluation, fast.prediction) == (full.evaluation, full.prediction)
    assert repr(vars(fast.source)) == repr(vars(full.source))
