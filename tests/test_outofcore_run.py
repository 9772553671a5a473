"""``data.engine``: which engine reads a run's file, and a run whose lines stay in DuckDB.

The out-of-core run must print and log the pandas run's ledger, join the feature sets as
``FeatureUnion`` does, skip what needs the lines with a one-line reason, cache its customer
frames, and finish ``python run.py`` with exit status 0.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from conftest import CONFIGS
from hydra import compose, initialize_config_dir
from sklearn.pipeline import FeatureUnion

from segmentlab.config import ConfigError
from segmentlab.customers import customer_summary
from segmentlab.data.cleaning import TransactionCleaner
from segmentlab.data.loading import OnlineRetailFile, load_dataset
from segmentlab.data.outofcore import choose_engine, engine, estimate_lines, read_customers
from segmentlab.data.synthetic import SyntheticTransactions
from segmentlab.features.behaviour import BehaviourFeatures
from segmentlab.features.matrix import compute_features
from segmentlab.features.rfm import RFMFeatures
from segmentlab.features.tfidf import TfidfCategoryFeatures
from segmentlab.schema import DataError
from segmentlab.study.experiment import assemble
from segmentlab.study.outofcore import run_out_of_core
from segmentlab.study.tuning import TuningError

ROOT = Path(__file__).resolve().parents[1]


@pytest.fixture(scope="module")
def lines_file(tmp_path_factory) -> Path:
    """About 30,000 synthetic lines as ``benchmarks/make_lines.py`` writes them (Parquet)."""
    path = tmp_path_factory.mktemp("ooc") / "lines.parquet"
    done = subprocess.run([sys.executable, str(ROOT / "benchmarks" / "make_lines.py"), "30000",
                           str(path), "--chunk-lines", "10000"], capture_output=True, text=True,
                          env=_env(), timeout=300)
    assert done.returncode == 0, done.stderr[-2000:]
    return path


def _env() -> dict[str, str]:
    return {**os.environ, "OMP_NUM_THREADS": "1", "PYTHONPATH": os.pathsep.join(
        filter(None, [str(ROOT / "src"), os.environ.get("PYTHONPATH")]))}


def test_engine_choice(lines_file, tmp_path, monkeypatch):
    assert choose_engine(OnlineRetailFile(str(lines_file))) == "pandas"  # auto, small
    assert choose_engine(OnlineRetailFile(str(lines_file), engine="duckdb")) == "duckdb"
    assert choose_engine(SyntheticTransactions(n_customers=10, n_lines=100)) == "pandas"
    monkeypatch.setattr(engine, "MAX_PANDAS_LINES", 1000)
    assert choose_engine(OnlineRetailFile(str(lines_file))) == "duckdb"
    assert choose_engine(OnlineRetailFile(str(lines_file), engine="pandas")) == "pandas"
    two = [str(lines_file), str(lines_file)]
    assert choose_engine(OnlineRetailFile(two)) == "pandas"  # parts are joined by pandas
    assert choose_engine(OnlineRetailFile(str(tmp_path / "absent.csv"))) == "pandas"
    with pytest.raises(DataError, match="data.engine=duckdb reads one CSV or Parquet file, not "
                                        "several files; use data.engine=pandas"):
        choose_engine(OnlineRetailFile(two, engine="duckdb"))
    with pytest.raises(DataError, match="not a workbook"):
        choose_engine(OnlineRetailFile(str(tmp_path / "book.xlsx"), engine="duckdb"))
    with pytest.raises(DataError, match="data.engine='spark'; expected auto, pandas, duckdb"):
        OnlineRetailFile(str(lines_file), engine="spark")


def test_line_counts(lines_file, tmp_path):
    frame = pd.read_parquet(lines_file)
    assert estimate_lines(lines_file) == len(frame)
    csv = tmp_path / "lines.csv.gz"
    frame.to_csv(csv, index=False, compression="gzip")
    assert abs(estimate_lines(csv) - len(frame)) < 0.05 * len(frame)


def test_read_customers_joins_the_sets_as_feature_union_does(lines_file):
    cleaner = TransactionCleaner()
    dataset = load_dataset(OnlineRetailFile(str(lines_file)), cleaner, cache_dir=None)
    union = FeatureUnion([("rfm", RFMFeatures()), ("behaviour", BehaviourFeatures())])
    expected = compute_features(dataset, union.set_output(transform="pandas"))
    union = FeatureUnion([("rfm", RFMFeatures()), ("words", TfidfCategoryFeatures()),
                          ("behaviour", BehaviourFeatures())])
    got = read_customers(OnlineRetailFile(str(lines_file)), cleaner, union, threads=1)
    pd.testing.assert_frame_equal(got.features, expected.frame, check_exact=False, rtol=1e-9,
                                  atol=1e-12)
    assert got.left_out == {"words": "TfidfCategoryFeatures"}
    assert got.ledger == dataset.ledger and got.notes == dataset.notes
    assert got.metrics == expected.metrics
    pd.testing.assert_frame_equal(got.tables["behaviour_countries"],
                                  expected.tables["behaviour_countries"])
    pd.testing.assert_frame_equal(got.summary, customer_summary(dataset.transactions),
                                  check_exact=False, rtol=1e-12, check_dtype=False)
    with pytest.raises(DataError, match=r"features=\['words'\]: none of them is computed out of core"):
        read_customers(OnlineRetailFile(str(lines_file)), cleaner,
                       FeatureUnion([("words", TfidfCategoryFeatures())]))


def ledger_block(stdout: str) -> list[str]:
    """The printed ledger lines, without the heading (which names the engine)."""
    lines = stdout.splitlines()
    start = next(i for i, line in enumerate(lines) if line.startswith("cleaning ledger for"))
    end = next(i for i in range(start, len(lines)) if lines[i].startswith("  rows_kept"))
    return lines[start + 1:end + 1]


def run_py(*overrides: str) -> subprocess.CompletedProcess:
    done = subprocess.run([sys.executable, str(ROOT / "run.py"), "data=online_retail",
                           "tracking=none", "evaluation.stability_resamples=2", *overrides],
                          capture_output=True, text=True, env=_env(), timeout=600, cwd=ROOT)
    assert done.returncode == 0, done.stderr[-3000:]
    return done


def test_run_py_with_the_duckdb_engine(lines_file, tmp_path):
    common = [f"data.path={lines_file}", f"cache_dir={tmp_path / 'cache'}"]
    duck = run_py(*common, "data.engine=duckdb")
    pandas = run_py(*common, "data.engine=pandas", "prediction.enabled=false", "recommender=none")
    assert ledger_block(duck.stdout) == ledger_block(pandas.stdout)
    assert f"cleaning ledger for {lines_file} (duckdb):" in duck.stdout
    assert "skipped: prediction: prediction builds features per time window from the lines" \
        in duck.stdout
    assert "skipped: recommend: recommenders learn from each customer's products" in duck.stdout
    assert "seconds:   load " in duck.stdout
    # Same features and clustering, so the same segments and scores.
    assert segments(duck.stdout) == segments(pandas.stdout)
    again = run_py(*common, "data.engine=duckdb")
    assert f"cleaning ledger for {lines_file} (duckdb, cached):" in again.stdout
    assert ledger_block(again.stdout) == ledger_block(duck.stdout)
    assert segments(again.stdout) == segments(duck.stdout)


def segments(stdout: str) -> list[str]:
    """The segments and the clustering scores the run printed."""
    lines = stdout.split("\nsegments:\n")[1].splitlines()
    return [line for line in lines if line.startswith(("  ", "cluster:"))]


def duckdb_config(lines_file: Path, *overrides: str):
    """The real config tree reading ``lines_file`` with DuckDB, quick and without tracking."""
    with initialize_config_dir(config_dir=str(CONFIGS), version_base="1.3"):
        return compose("config", overrides=[
            "data=online_retail", f"data.path={lines_file}", "data.engine=duckdb", "tracking=none",
            "evaluation.stability_resamples=2", "cache_dir=null", *overrides])


def test_out_of_core_run_skips_and_tunes(lines_file, tmp_path, capsys):
    cfg = duckdb_config(lines_file, "features=[rfm,behaviour,tfidf]", "dynamics.enabled=true",
                        "tuning=optuna", "tuning.n_trials=3", "tuning.show_progress=false",
                        f"tuning.storage=sqlite:///{tmp_path}/optuna.db")
    objective = run_out_of_core(assemble(cfg, {"clusterer": "kmeans"}))
    out = capsys.readouterr().out
    assert np.isfinite(objective) and "best trial" in out
    for stage in ["features: tfidf (TfidfCategoryFeatures) read every invoice line",
                  "prediction: prediction builds", "dynamics: segments through time",
                  "recommend: recommenders learn"]:
        assert f"skipped: {stage}" in out
    with pytest.raises(ConfigError, match="register_model needs the prediction stage"):
        run_out_of_core(assemble(duckdb_config(lines_file, "register_model=segmentlab")))
    predicting = duckdb_config(lines_file, "tuning=optuna", "tuning.metrics=[predict/validation_roc_auc]",
                               "tuning.directions=[maximize]")
    with pytest.raises(TuningError, match="need validation windows of the lines"):
        run_out_of_core(assemble(predicting))
    recommending = duckdb_config(lines_file, "tuning=optuna_recommender")
    with pytest.raises(TuningError, match=r"\['recommend/validation_recall_at_10'\] need validation"):
        run_out_of_core(assemble(recommending))


def test_benchmark_quick_mode_prints_its_table():
    done = subprocess.run([sys.executable, str(ROOT / "benchmarks" / "outofcore.py"), "--quick"],
                          capture_output=True, text=True, env=_env(), timeout=600)
    assert done.returncode == 0, done.stderr[-2000:]
    header, _, row, *_ = done.stdout.splitlines()
    assert header.split()[:5] == ["lines", "customers", "read+clean", "rfm", "behaviour"]
    assert int(row.split()[0].replace(",", "")) > 10_000 and np.isfinite(float(row.split()[6]))


def test_out_of_core_run_is_tracked_like_a_pandas_run(lines_file, tmp_path):
    from mlflow.tracking import MlflowClient

    uri = f"sqlite:///{tmp_path}/mlflow.db"
    cfg = duckdb_config(lines_file, "tracking=mlflow", f"tracking.tracking_uri={uri}",
                        f"tracking.artifact_location={tmp_path}/artifacts")
    run_out_of_core(assemble(cfg))
    (run,) = MlflowClient(uri).search_runs(MlflowClient(uri).get_experiment_by_name("segmentlab")
                                            .experiment_id)
    dataset = load_dataset(OnlineRetailFile(str(lines_file)), TransactionCleaner(), cache_dir=None)
    assert run.data.metrics["data/rows_kept"] == dataset.ledger.rows_kept
    assert run.data.metrics["features/n_columns"] == 34 and "cluster/silhouette" in run.data.metrics
    assert run.data.tags["skipped/prediction"].startswith("prediction builds features")
    assert run.data.tags["skipped/recommend"].startswith("recommenders learn")
