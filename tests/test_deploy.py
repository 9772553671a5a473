"""The registered model end to end: run with register_model, then the `segmentlab` commands."""

from __future__ import annotations

import mlflow
import pandas as pd
import pytest
from conftest import run_experiment

from segmentlab.cli import console
from segmentlab.data.synthetic import SyntheticTransactions
from segmentlab.schema import SOURCE_COLUMNS
from tests.conftest import compose_config

LAYOUT = {"invoice_no": "InvoiceNo", "stock_code": "StockCode", "description": "Description",
          "quantity": "Quantity", "invoice_date": "InvoiceDate", "unit_price": "UnitPrice",
          "customer_id": "CustomerID", "country": "Country"}


@pytest.fixture(scope="module")
def registered(tmp_path_factory):
    """A small synthetic run registered as a model, with segments followed through time."""
    tmp = tmp_path_factory.mktemp("deploy")
    store = f"sqlite:///{tmp}/mlflow.db"
    cfg = compose_config("tracking=mlflow", f"tracking.tracking_uri={store}",
                         f"tracking.artifact_location={tmp}/art", "register_model=segmentlab",
                         "dynamics.enabled=true", "dynamics.n_bootstrap=20")
    run_experiment(cfg, {}, [])
    raw = SyntheticTransactions(n_customers=150, n_lines=6000, seed=cfg.seed).read()
    path = tmp / "transactions.csv"
    raw[SOURCE_COLUMNS].rename(columns=LAYOUT).to_csv(path, index=False)
    return tmp, store, path


def test_the_run_logs_segments_over_time(registered):
    _, store, _ = registered
    mlflow.set_tracking_uri(store)
    run = mlflow.search_runs(experiment_names=["segmentlab"]).iloc[0]
    for key in ["dynamics/stay_rate", "dynamics/upgrade_rate", "dynamics/downgrade_rate",
                "dynamics/churn_rate", "dynamics/warning_auc", "dynamics/recency_auc"]:
        assert 0 <= run[f"metrics.{key}"] <= 1, key
    assert run["metrics.dynamics/fit_window_agreement"] == 1.0  # the fitted segmenter, not a refit
    flows = pd.read_csv(mlflow.artifacts.download_artifacts(f"runs:/{run.run_id}/dynamics/flows.csv"))
    assert len(flows) and {"from", "to", "customers"} <= set(flows.columns)


def test_the_run_logs_intervals_calibration_candidates_and_segment_value(registered):
    _, store, _ = registered
    mlflow.set_tracking_uri(store)
    run = mlflow.search_runs(experiment_names=["segmentlab"]).iloc[0]
    m = {k.removeprefix("metrics."): v for k, v in run.items() if k.startswith("metrics.predict/")}
    assert m["predict/roc_auc_ci_low"] <= m["predict/roc_auc"] <= m["predict/roc_auc_ci_high"]
    assert m["predict/roc_auc_gain_vs_rfm_ci_low"] <= m["predict/roc_auc_gain_vs_rfm_ci_high"]
    for key in ["predict/bgnbd_roc_auc", "predict/brier", "predict/ece", "predict/roc_auc_all",
                "predict/bgnbd_spend_mae", "predict/n_train_cutoffs"]:
        assert key in m, key
    artifacts = {a.path for d in ("tables", "plots")
                 for a in mlflow.MlflowClient().list_artifacts(run.run_id, d)}
    assert {"tables/segment_value.csv", "tables/predict_candidates.csv",
            "tables/predict_reliability.csv", "plots/predict_reliability.png"} <= artifacts
    value = pd.read_csv(mlflow.artifacts.download_artifacts(f"runs:/{run.run_id}/tables/segment_value.csv"))
    assert value["share_of_future_value"].sum() == pytest.approx(1.0)
    candidates = pd.read_csv(mlflow.artifacts.download_artifacts(
        f"runs:/{run.run_id}/tables/predict_candidates.csv"))
    assert set(candidates["candidate"]) == {"logreg", "hist_gradient_boosting", "average"}
    assert candidates["chosen"].sum() == 1


def test_predict_and_dynamics_commands_use_the_registered_model(registered, capsys):
    tmp, store, path = registered
    out = tmp / "segments.csv"
    assert console(["predict", "--transactions", str(path), "--out", str(out), "--tracking-uri", store]) == 0
    segments = pd.read_csv(out)
    assert segments["customer_id"].is_unique and len(segments) > 100
    # BG/NBD + Gamma-Gamma of the run, applied to the new transactions (issue 18).
    value = segments[["p_alive", "expected_purchases_90d", "clv_12m"]]
    assert value.notna().all().all()
    assert value["p_alive"].between(0, 1).all()
    assert (value[["expected_purchases_90d", "clv_12m"]] >= 0).all().all()
    warnings = tmp / "warnings.csv"
    assert console(["dynamics", "--transactions", str(path), "--out", str(warnings),
                    "--tracking-uri", store]) == 0
    table = pd.read_csv(warnings)
    assert {"customer_id", "value_at_stake", "action"} <= set(table.columns)
    assert table["value_at_stake"].is_monotonic_decreasing
    assert "snapshots" in capsys.readouterr().out


def test_recommend_command_lists_products_for_every_customer(registered):
    tmp, store, path = registered
    out = tmp / "recs.csv"
    assert console(["recommend", "--transactions", str(path), "--out", str(out), "--k", "5",
                    "--tracking-uri", store]) == 0
    recs = pd.read_csv(out)
    assert list(recs.columns) == ["customer_id", "rank", "stock_code", "description", "score", "reason"]
    segments = pd.read_csv(tmp / "segments.csv") if (tmp / "segments.csv").exists() else None
    assert recs.groupby("customer_id")["rank"].max().le(5).all()
    assert recs["description"].notna().all() and recs["reason"].str.len().gt(0).all()
    if segments is not None:  # every customer the model segments gets a list
        assert set(segments["customer_id"]) == set(recs["customer_id"])


def test_the_run_judges_the_recommender_against_both_popularity_baselines(registered):
    _, store, _ = registered
    mlflow.set_tracking_uri(store)
    run = mlflow.search_runs(experiment_names=["segmentlab"]).iloc[0]
    for key in ["recall_at_10", "popularity_recall_at_10", "segment_popularity_recall_at_10",
                "hit_rate_at_10", "ndcg_at_10", "coverage"]:
        assert 0 <= run[f"metrics.recommend/{key}"] <= 1, key
    products = pd.read_csv(mlflow.artifacts.download_artifacts(
        f"runs:/{run.run_id}/recommend/segment_products.csv"))
    assert {"product_lift", "recommended"} <= set(products["kind"])


def test_report_shows_the_segments_over_time_section(registered):
    tmp, store, _ = registered
    out = tmp / "report.html"
    assert console(["report", "--out", str(out), "--tracking-uri", store]) == 0
    page = out.read_text()
    assert 'id="segments-over-time"' in page and "Segments over time" in page


def test_predict_reports_every_customer_cleaning_removed(registered, capsys):
    tmp, store, path = registered
    extra = pd.DataFrame([
        ["590001", "POST", "POSTAGE", 1, "2011-11-01 10:00", 18.0, 990001, "France"],
        ["590002", "84879", "BIRD ORNAMENT", 90000, "2011-11-01 11:00", 1.69, 990002, "United Kingdom"],
        ["C590003", "84879", "BIRD ORNAMENT", -2, "2011-11-01 12:00", 1.69, 990003, "United Kingdom"],
    ], columns=list(LAYOUT.values()))
    source = pd.read_csv(path, dtype=str)
    mixed = tmp / "mixed.csv"
    pd.concat([source, extra.astype(str)], ignore_index=True).to_csv(mixed, index=False)
    out = tmp / "mixed_segments.csv"
    assert console(["predict", "--transactions", str(mixed), "--out", str(out), "--tracking-uri", store]) == 0
    segments = pd.read_csv(out).set_index("customer_id")
    ids = pd.to_numeric(source["CustomerID"], errors="coerce").dropna().astype(int)
    assert set(segments.index) == set(ids) | {990001, 990002, 990003}  # every customer has a row
    assert segments.loc[990001, "reason"] == "non_product_code"
    assert segments.loc[990002, "reason"] == "quantity_outlier"
    assert segments.loc[990003, "reason"] == "cancellation_kept_as_return"
    assert segments.loc[[990001, 990002, 990003], "segment"].isna().all()
    written = pd.read_csv(out, dtype=str)["segment"].dropna()
    assert written.str.fullmatch(r"-?\d+").all()  # written as 3, not 3.0
    assert "removed by cleaning, by reason:" in capsys.readouterr().out
