"""The tracking store fails fast and clearly; secrets never reach logged params."""

from __future__ import annotations

import io
import subprocess
import sys
from types import SimpleNamespace

import pandas as pd
import pytest

from segmentlab.cache import FrameCache
from segmentlab.study.tracking import MlflowTracker, TrackingError, _param_value, mask_url
from tests.conftest import FAST, ROOT


def test_unreachable_server_is_reported_before_any_work():
    tracker = MlflowTracker(tracking_uri="http://127.0.0.1:9")  # nothing listens on the discard port
    with pytest.raises(TrackingError, match=r"tracking server http://127.0.0.1:9 is unreachable"):
        tracker.check()


def test_unwritable_store_folder_is_reported():
    tracker = MlflowTracker(tracking_uri="sqlite:////proc/segmentlab/mlflow.db")
    with pytest.raises(TrackingError, match=r"cannot create /proc/segmentlab"):
        tracker.check()


def test_run_py_exits_2_with_one_line_when_the_store_is_unreachable(tmp_path):
    done = subprocess.run([sys.executable, str(ROOT / "run.py"), *FAST, "tracking=mlflow",
                           "tracking.tracking_uri=http://127.0.0.1:9", f"hydra.run.dir={tmp_path}/h"],
                          capture_output=True, text=True, timeout=120, cwd=ROOT)
    assert done.returncode == 2
    assert done.stderr.strip().count("\n") == 0 and "unreachable" in done.stderr
    assert "rows_in" not in done.stdout  # no data was loaded first


def test_passwords_in_urls_are_masked():
    url = "postgresql+psycopg2://optuna:s3cret@db.example:5432/studies"
    assert mask_url(url) == "postgresql+psycopg2://optuna:***@db.example:5432/studies"
    assert "s3cret" not in _param_value(url)
    assert mask_url("sqlite:///outputs/optuna.db") == "sqlite:///outputs/optuna.db"


def test_failed_cache_write_leaves_no_trusted_entry(tmp_path, monkeypatch):
    cache = FrameCache(tmp_path)
    frame = pd.DataFrame({"x": range(100)})

    def disk_full(self, path, *args, **kwargs):
        with open(path, "wb") as f:
            f.write(b"PAR1 half a file")
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(pd.DataFrame, "to_parquet", disk_full)
    with pytest.raises(OSError):
        cache.save("k", {"f": frame}, {})
    monkeypatch.undo()
    assert cache.load("k") is None
    assert not list(tmp_path.glob("*.tmp"))  # the partial file was removed


def test_both_trackers_implement_the_whole_protocol():
    from segmentlab.study.tracking import NullTracker, Tracker

    members = [name for name in vars(Tracker) if not name.startswith("_")]
    assert "log_result" in members and "log_skipped" in members
    for tracker in (NullTracker(), MlflowTracker("sqlite:////tmp/never-created.db")):
        assert isinstance(tracker, Tracker)
        missing = [name for name in members if not hasattr(tracker, name)]
        assert not missing, f"{type(tracker).__name__} lacks {missing}"


def test_a_trial_logged_again_keeps_one_child_run(tmp_path):
    """A worker SIGKILLed while it logged a trial leaves a RUNNING child run; the worker that
    fails the trial as dead logs a FAILED child and the half-logged one is deleted."""
    import mlflow

    from segmentlab.study.tuning import TrialOutcome

    tracker = MlflowTracker(f"sqlite:///{tmp_path}/mlflow.db", "t", str(tmp_path / "artifacts"))
    tracker.check()
    trial = SimpleNamespace(number=3, params={"clusterer.n_clusters": 5})
    with mlflow.start_run() as parent:
        half_logged = mlflow.start_run(run_name="trial-3", nested=True,
                                       tags={"run_kind": "trial", "trial_number": "3"})
        mlflow.end_run("RUNNING")  # a killed worker ends nothing; pop it off this process's stack
        other = tracker.log_trial(SimpleNamespace(number=4, params={}), TrialOutcome({"m": 1.0}), {})
        dead = tracker.log_trial(trial, TrialOutcome({}, "worker vm:1 died (process gone)"), {},
                                 replace=True)
    runs = mlflow.search_runs(experiment_names=["t"],
                              filter_string=f"tags.mlflow.parentRunId = '{parent.info.run_id}'")
    assert sorted(runs.run_id) == sorted([other, dead])
    assert half_logged.info.run_id not in set(runs.run_id)
    assert runs.set_index("run_id").loc[dead, "status"] == "FAILED"


def test_a_trial_run_logs_comparable_metrics_and_its_labels_not_a_metric_per_segment(tmp_path):
    import mlflow

    from segmentlab.study.tuning import TrialOutcome

    tracker = MlflowTracker(f"sqlite:///{tmp_path}/mlflow.db", "t", str(tmp_path / "artifacts"))
    tracker.check()
    labels = pd.Series([0, 0, 1, -1], index=pd.Index([11, 12, 13, 14], name="customer_id"), name="segment")
    metrics = {"cluster/silhouette": 0.4, "cluster/min_cluster_share": 0.25, "cluster/size_0": 2.0,
               "cluster/size_1": 1.0, "cluster/size_noise": 1.0}
    with mlflow.start_run():
        child = tracker.log_trial(SimpleNamespace(number=0, params={"clusterer.eps": 0.5}),
                                  TrialOutcome(metrics, None, labels), {"clusterer": {"eps": 0.5}})
    run = mlflow.get_run(child)
    assert run.data.metrics == {"cluster/silhouette": 0.4, "cluster/min_cluster_share": 0.25,
                                "cluster/size_noise": 1.0}
    assert run.data.params == {"clusterer.eps": "0.5"} and run.info.status == "FINISHED"
    uri = run.info.artifact_uri
    assert mlflow.artifacts.load_text(f"{uri}/config.yaml") == "clusterer:\n  eps: 0.5\n"
    logged = pd.read_csv(io.StringIO(mlflow.artifacts.load_text(f"{uri}/segments/labels.csv")), index_col=0)
    assert logged.iloc[:, 0].tolist() == [0, 0, 1, -1] and logged.index.tolist() == [11, 12, 13, 14]
