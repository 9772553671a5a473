"""The study report is about one study: the detailed run, the data it covers, the registry alias."""

from __future__ import annotations

import re

import mlflow
import numpy as np
import pandas as pd
import pytest

from segmentlab.cli import console, report_defaults
from segmentlab.study.report import choose_run
from segmentlab.study.tracking import EXPERIMENT_KIND, TrackingError
from tests.conftest import compose_config, run_experiment


def runs_frame() -> pd.DataFrame:
    """Five runs: three on data A (the registered one not the best), two on data B (better)."""
    return pd.DataFrame({
        "run_id": ["a1", "a2", "a3", "b1", "b2"],
        "run_name": ["gmm a", "kmeans a", "dbscan a", "kmeans b", "gmm b"],
        "start_time": pd.to_datetime(["2026-01-01", "2026-01-02", "2026-01-03", "2026-01-04",
                                      "2026-01-05"]),
        "data_hash": ["A", "A", "A", "B", "B"],
        "cluster/silhouette": [0.30, 0.35, 0.90, 0.60, 0.50],
        "degenerate": [None, None, "one cluster holds 99%", None, None],
    })


def test_the_registered_run_is_detailed_and_only_its_data_compared():
    choice = choose_run(runs_frame(), None, "a1", "segmentlab@champion", "cluster/silhouette")
    assert choice.run_id == "a1" and choice.reason == "the registered model segmentlab@champion"
    assert list(choice.runs["run_id"]) == ["a1", "a2", "a3"] and choice.other_data == 2
    every = choose_run(runs_frame(), None, "a1", "x", "cluster/silhouette", all_data=True)
    assert len(every.runs) == 5 and every.run_id == "a1"


def test_without_a_registered_run_the_best_on_the_latest_data_never_a_run_on_other_data():
    choice = choose_run(runs_frame(), None, None, "segmentlab@champion", "cluster/silhouette")
    assert choice.run_id == "b1" and choice.data_hash == "B"  # b2 is the latest run: data B
    assert "best silhouette" in choice.reason
    on_a = choose_run(runs_frame(), None, None, "x", "cluster/silhouette", data_hash="A")
    assert on_a.run_id == "a2"  # a3 scores higher but is degenerate; b1 is on other data
    registered_elsewhere = choose_run(runs_frame(), None, "b2", "x", "cluster/silhouette",
                                      data_hash="A")
    assert registered_elsewhere.run_id == "a2"
    assert choose_run(runs_frame(), None, None, "x", "cluster/davies_bouldin").run_id in {"b1", "b2"}


def test_an_explicit_run_sets_the_data_and_unknown_runs_or_data_are_errors():
    choice = choose_run(runs_frame(), "b2", "a1", "x", "cluster/silhouette")
    assert choice.run_id == "b2" and list(choice.runs["run_id"]) == ["b1", "b2"]
    with pytest.raises(TrackingError, match="run zz is not a finished run"):
        choose_run(runs_frame(), "zz", None, "x", "cluster/silhouette")
    with pytest.raises(TrackingError, match="no run of this experiment is on data C"):
        choose_run(runs_frame(), None, None, "x", "cluster/silhouette", data_hash="C")


def test_report_defaults_come_from_the_final_experiment(tmp_path):
    assert report_defaults() == {"register_model": "segmentlab", "model_alias": "champion",
                                 "objective": "cluster/silhouette"}
    assert report_defaults(str(tmp_path)) == report_defaults()  # no configs there: the same values


def test_report_covers_one_data_set_and_predict_takes_alias_and_latest(tmp_path, capsys):
    store = f"sqlite:///{tmp_path}/mlflow.db"
    common = ["tracking=mlflow", f"tracking.tracking_uri={store}",
              f"tracking.artifact_location={tmp_path}/art", "evaluation.stability_resamples=0",
              "prediction.importance_repeats=0"]
    choices = {"clusterer": "kmeans", "reducer": "none"}
    run_experiment(compose_config(*common, "data.seed=7"), choices)                # other data
    run_experiment(compose_config(*common, "register_model=segmentlab"), choices)  # @champion
    mlflow.set_tracking_uri(store)
    experiment = mlflow.get_experiment_by_name("segmentlab")
    assert EXPERIMENT_KIND.items() <= experiment.tags.items()  # opens on the classic runs view
    runs = mlflow.search_runs(experiment_names=["segmentlab"])
    names = list(runs["tags.mlflow.runName"])
    assert len(set(names)) == 2
    assert all(re.fullmatch(r"kmeans · rfm\+behaviour · none · [0-9a-f]{6} · [0-9-]+ [0-9:]+", n)
               for n in names), names
    client = mlflow.MlflowClient()
    champion = client.get_model_version_by_alias("segmentlab", "champion")
    registered = runs[runs["run_id"] == champion.run_id].iloc[0]

    out = tmp_path / "report.html"
    assert console(["report", "--tracking-uri", store, "--out", str(out)]) == 0
    page = out.read_text()
    assert f"data hash {registered['tags.data_hash'][:12]}" in page
    assert "the registered model segmentlab@champion" in page
    assert "Left out: 1 run on other data" in page
    board = page[page.index('id="leaderboard"'):page.index('id="comparison"')]
    assert board.count("<tr") == 2 and '<tr class="best">' in board  # the other data's run is out
    assert 'id="assignment"' in page and "No segment assignment" not in page
    everything = tmp_path / "all.html"
    assert console(["report", "--tracking-uri", store, "--out", str(everything), "--all-data"]) == 0
    assert "All 2 runs are compared, 1 of them on other data" in everything.read_text()

    data = tmp_path / "new.csv"
    data.write_text(_new_customers_csv())
    for uri in ["models:/segmentlab@champion", "models:/segmentlab/latest"]:
        target = tmp_path / f"{uri.rsplit('/', 1)[-1]}.csv"
        assert console(["predict", "--model", uri, "--transactions", str(data), "--out",
                        str(target), "--tracking-uri", store]) == 0
        predicted = pd.read_csv(target)
        assert {"confidence", "history_days", "history_invoices"} <= set(predicted.columns)
        assert (predicted["segment_name"] == "new — not yet segmentable").all()  # 1-2 days old
    assert "new — not yet segmentable" in capsys.readouterr().out


def _new_customers_csv() -> str:
    rng = np.random.default_rng(0)
    rows = ["InvoiceNo,StockCode,Description,Quantity,InvoiceDate,UnitPrice,CustomerID,Country"]
    for c in range(8):
        for k in range(2):
            rows.append(f"9{c}{k},8512{k}A,MUG,{rng.integers(1, 20)},2012-01-0{k + 1} 10:00:00,2.5,"
                        f"{900000 + c},United Kingdom")
    return "\n".join(rows) + "\n"


def test_the_importance_names_the_classifier_the_run_chose_on_validation():
    from segmentlab.study.report import _chosen_candidate

    logged = pd.DataFrame({"candidate": ["logreg", "average"], "chosen": [False, True]})
    assert _chosen_candidate(logged) == "average"
    assert _chosen_candidate(logged.astype(str)) == "average"  # as read back from the CSV
    assert _chosen_candidate(None) is None
    assert _chosen_candidate(logged.assign(chosen=False)) is None
