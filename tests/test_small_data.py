"""Small and short files finish: every stage that needs more data is skipped with its reason."""

from __future__ import annotations

import math

import pandas as pd
import pytest
from conftest import run_experiment
from hydra import compose, initialize_config_dir

from segmentlab.data.synthetic import SyntheticTransactions
from segmentlab.schema import SOURCE_COLUMNS
from tests.conftest import CONFIGS

LAYOUT = ["InvoiceNo", "StockCode", "Description", "Quantity", "InvoiceDate", "UnitPrice",
          "CustomerID", "Country"]


def file_config(path, *overrides: str):
    """The real configs on a file, quick and side-effect free."""
    with initialize_config_dir(config_dir=str(CONFIGS), version_base="1.3"):
        return compose("config", overrides=["data=online_retail", f"data.path={path}", "tracking=none",
                                             "cache_dir=null", "evaluation.stability_resamples=2",
                                             "recommend.n_boot=10", *overrides])


def lines(n_customers: int = 150, n_lines: int = 6000) -> pd.DataFrame:
    raw = SyntheticTransactions(n_customers=n_customers, n_lines=n_lines, seed=3).read()[SOURCE_COLUMNS]
    return raw.set_axis(LAYOUT, axis=1)


def shape(name: str, raw: pd.DataFrame) -> pd.DataFrame:
    dated = raw.assign(InvoiceDate=pd.to_datetime(raw["InvoiceDate"]))
    with_id = dated[dated["CustomerID"].notna() & ~dated["InvoiceNo"].astype(str).str.startswith("C")]
    if name == "one_week":
        return dated[dated["InvoiceDate"] < dated["InvoiceDate"].min() + pd.Timedelta(days=7)]
    if name == "one_customer":
        return dated[dated["CustomerID"] == with_id["CustomerID"].value_counts().index[0]]
    if name == "every_customer_once":
        first = with_id.groupby("CustomerID")["InvoiceNo"].transform("first")
        return with_id[with_id["InvoiceNo"] == first]
    if name == "one_timestamp":
        return dated.assign(InvoiceDate=pd.Timestamp("2011-05-05 10:00"))
    if name == "two_customers":
        return dated[dated["CustomerID"].isin(with_id["CustomerID"].unique()[:2])]
    raise ValueError(name)


@pytest.mark.parametrize(("name", "skipped"), [
    ("one_week", ["prediction: data covers 7 days", "recommend: data covers 7 days"]),
    ("one_customer", ["prediction", "recommend"]),
    ("every_customer_once", ["prediction"]),
    ("one_timestamp", ["prediction: data covers 1 day,", "recommend: data covers 1 day,"]),
    ("two_customers", ["prediction", "recommend"]),
])
def test_small_files_finish_with_a_segmentation_and_skip_reasons(tmp_path, capsys, name, skipped):
    path = tmp_path / f"{name}.csv"
    shape(name, lines()).to_csv(path, index=False)
    cfg = file_config(path, "dynamics.enabled=true", "dynamics.n_bootstrap=0")
    objective = run_experiment(cfg)
    out = capsys.readouterr().out
    assert "segments:" in out
    for reason in skipped:
        assert f"skipped: {reason}" in out, out[-1500:]
    assert isinstance(objective, float)
    if name in ("one_customer", "two_customers"):  # no segments can be told apart: honest NaN
        assert math.isnan(objective) and "lowered to" in out


def test_the_clusterer_asks_for_no_more_segments_than_customers(tmp_path, capsys):
    path = tmp_path / "five.csv"
    raw = lines()
    keep = raw["CustomerID"].dropna().unique()[:5]
    raw[raw["CustomerID"].isin(keep)].to_csv(path, index=False)
    run_experiment(file_config(path, "clusterer.n_clusters=6"))
    assert "clusterer.n_clusters=6 lowered to 4: 5 customers" in capsys.readouterr().out
