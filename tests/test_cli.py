"""End to end: the real configs and run.py, on small synthetic data."""

from __future__ import annotations

import gzip
import math
import subprocess
import sys
from pathlib import Path

import mlflow
import pandas as pd
import pytest
from conftest import run_experiment

from tests.conftest import FAST, ROOT, compose_config

HEADER = "InvoiceNo,StockCode,Description,Quantity,InvoiceDate,UnitPrice,CustomerID,Country\n"


def run_py(*args: str, cwd=ROOT) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, str(ROOT / "run.py"), *args], cwd=cwd,
                          capture_output=True, text=True, timeout=300)


def test_main_returns_finite_objective(cfg, capsys):
    objective = run_experiment(cfg, {}, [])
    assert math.isfinite(objective)
    out = capsys.readouterr().out
    assert "rows_in" in out and "segments:" in out and "silhouette" in out


def test_same_seed_gives_identical_labels_and_cache_is_reused(tmp_path, capsys):
    cfg = compose_config(cache_dir=tmp_path / "cache")
    first = run_experiment(cfg, {}, [])
    out_first = capsys.readouterr().out
    second = run_experiment(cfg, {}, [])
    out_second = capsys.readouterr().out
    assert first == second
    assert "(cached)" not in out_first and "(cached)" in out_second


def test_run_py_logs_a_complete_mlflow_run(tmp_path):
    store = f"sqlite:///{tmp_path}/mlflow.db"
    done = run_py(*FAST, "tracking=mlflow", f"tracking.tracking_uri={store}",
                  f"tracking.artifact_location={tmp_path}/artifacts", f"cache_dir={tmp_path}/cache",
                  f"hydra.run.dir={tmp_path}/hydra")
    assert done.returncode == 0, done.stderr[-2000:]
    assert "open the UI: mlflow ui --backend-store-uri" in done.stdout
    mlflow.set_tracking_uri(store)
    runs = mlflow.search_runs(experiment_names=["segmentlab"])
    assert len(runs) == 1
    run = runs.iloc[0]
    for key in ["cluster/silhouette", "cluster/calinski_harabasz", "cluster/davies_bouldin",
                "cluster/n_clusters", "cluster/ari_truth", "cluster/nmi_truth", "data/rows_in"]:
        assert f"metrics.{key}" in runs.columns and not pd.isna(run[f"metrics.{key}"]), key
    assert run["params.clusterer.n_clusters"] == str(compose_config().clusterer.n_clusters)
    assert run["tags.clusterer"] == "kmeans" and run["tags.features"] == "rfm+behaviour"
    assert run["tags.git_commit"] and run["tags.data_hash"]
    artifacts = {a.path for a in mlflow.MlflowClient().list_artifacts(run.run_id)}
    assert {"config.yaml", "overrides.txt", "packages.json", "data", "segments", "plots"} <= artifacts


@pytest.mark.parametrize(
    ("content", "expected"),
    [
        (HEADER.replace("InvoiceDate,", ""), "InvoiceDate"),
        (HEADER + "536365,85123A,HEART,six,2010-12-01 08:26:00,2.55,17850,United Kingdom\n", "Quantity"),
    ],
    ids=["missing-invoice-date", "text-in-quantity"],
)
def test_bad_files_exit_2_with_one_line(tmp_path, content, expected):
    path = tmp_path / "bad.csv.gz"
    with gzip.open(path, "wt") as f:
        f.write(content)
        if "InvoiceDate" not in content:
            f.write("536365,85123A,HEART,6,2.55,17850,United Kingdom\n")
    done = run_py("data=online_retail", f"data.path={path}", "tracking=none", "cache_dir=null",
                  f"hydra.run.dir={tmp_path}/hydra")
    assert done.returncode == 2
    message = done.stderr.strip()
    assert "\n" not in message and "Traceback" not in message
    assert str(path.name) in message and expected in message


def test_missing_file_exits_2(tmp_path):
    done = run_py("data=online_retail", f"data.path={tmp_path}/nowhere.csv", "tracking=none",
                  f"hydra.run.dir={tmp_path}/hydra")
    assert done.returncode == 2
    assert "nowhere.csv" in done.stderr and "\n" not in done.stderr.strip()


def test_logged_models_predict_through_pyfunc(tmp_path):
    store = f"sqlite:///{tmp_path}/mlflow.db"
    cfg = compose_config("tracking=mlflow", f"tracking.tracking_uri={store}",
                         f"tracking.artifact_location={tmp_path}/art")
    run_experiment(cfg, {}, [])
    mlflow.set_tracking_uri(store)
    run_id = mlflow.search_runs(experiment_names=["segmentlab"]).iloc[0].run_id
    segment_model = mlflow.pyfunc.load_model(f"runs:/{run_id}/segment_model")
    example = segment_model.input_example
    predicted = segment_model.predict(example)
    assert list(predicted.columns) == ["segment", "segment_name"] and len(predicted) == len(example)
    labels = pd.read_csv(mlflow.artifacts.download_artifacts(f"runs:/{run_id}/segments/labels.csv"))
    assert set(predicted["segment"]) <= set(labels["segment"])
    repurchase = mlflow.pyfunc.load_model(f"runs:/{run_id}/repurchase_model")
    probability = repurchase.predict(repurchase.input_example)["repurchase_probability"]
    assert probability.between(0, 1).all()
    # The evaluation customers' outcomes are logged beside both predictions.
    table = mlflow.artifacts.download_artifacts(f"runs:/{run_id}/tables/predict_eval_scores.csv")
    scores = pd.read_csv(table)
    assert {"repurchase_probability", "will_buy", "future_spend", "predicted_spend"} <= set(scores.columns)
    run = mlflow.get_run(run_id)
    assert run.data.metrics["predict/spend_mae"] == pytest.approx(
        (scores["predicted_spend"] - scores["future_spend"]).abs().mean())
    assert run.data.metrics["predict/spend_mae"] < run.data.metrics["predict/spend_last_period_mae"]


def test_assigner_follows_the_classifier_choice_but_not_its_hyperparameters(tmp_path):
    def assign_f1(*overrides):
        cfg = compose_config("objective=assign/f1_macro", "prediction.importance_repeats=0", *overrides,
                             cache_dir=tmp_path / "cache")
        return run_experiment(cfg, {}, [])

    default = assign_f1()
    # Tuning the repurchase classifier (classifier.*) leaves segment assignment alone...
    assert assign_f1("classifier.C=0.0001", "classifier.class_weight=balanced") == default
    # ...while the assigner's own settings reach it.
    assert assign_f1("assigner.C=0.0001") < default
    composed = compose_config("classifier=xgboost", "classifier.max_depth=7")
    assert composed.assigner._target_ == composed.classifier._target_ == "xgboost.XGBClassifier"
    assert composed.assigner.max_depth == compose_config("classifier=xgboost").classifier.max_depth != 7


def test_degenerate_clustering_finishes_with_nan_metrics_and_a_reason(tmp_path, capsys):
    cfg = compose_config("clusterer=dbscan", "clusterer.eps=0.0001", cache_dir=tmp_path / "cache")
    objective = run_experiment(cfg, {}, [])
    assert math.isnan(objective)
    out = capsys.readouterr().out
    assert "degenerate: all noise" in out and "unassigned" in out


@pytest.mark.parametrize("mode", [["-m"], ["hydra.mode=MULTIRUN"], []])
def test_run_py_runs_one_job_or_a_sweep_as_hydra_decides(tmp_path, mode):
    # run.py answers Hydra's hydra.mode probe from its own config check unless hydra.* is set.
    done = run_py(*mode, *FAST, "prediction.enabled=false", "recommender=none",
                  "clusterer.n_clusters=2" if not mode else "clusterer.n_clusters=2,3", cwd=tmp_path)
    assert done.returncode == 0, done.stderr[-2000:]
    jobs = (done.stdout + done.stderr).count("cluster:   n_clusters")
    assert jobs == (2 if mode else 1)


EXITING = '''
import logging, sys, tempfile, threading, time
from pathlib import Path
from segmentlab.cli import exit_after

out = Path(sys.argv[1])
logging.basicConfig(filename=out / "run.log", level=logging.INFO)
folder = tempfile.TemporaryDirectory(dir=out)  # removed by its finalizer at exit
Path(out / "folder.txt").write_text(folder.name)

def late():
    time.sleep(0.3)
    (out / "thread.txt").write_text("done")

def job():
    threading.Thread(target=late).start()  # non-daemon: the exit waits for it
    logging.info("logged before exit")
    print("x" * 100_000)  # more than a pipe buffer: still all delivered
    sys.exit(int(sys.argv[2]))

exit_after(job)
'''


@pytest.mark.parametrize("status", [0, 3])
def test_exit_after_keeps_everything_a_normal_exit_does(tmp_path, status):
    script = tmp_path / "job.py"
    script.write_text(EXITING)
    done = subprocess.run([sys.executable, str(script), str(tmp_path), str(status)], capture_output=True,
                          text=True, cwd=ROOT, timeout=120)
    assert done.returncode == status
    assert done.stdout == "x" * 100_000 + "\n"
    assert (tmp_path / "thread.txt").read_text() == "done"
    assert "logged before exit" in (tmp_path / "run.log").read_text()
    assert not Path((tmp_path / "folder.txt").read_text()).exists()


def test_a_run_collects_garbage_again_after_start_up(cfg):
    import gc

    from segmentlab.cli import main

    gc.disable()  # as run.py leaves it while the libraries load
    try:
        main(cfg)
        assert gc.isenabled()
    finally:
        gc.enable()
        gc.unfreeze()
