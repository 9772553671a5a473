"""ActivityFeatures: the feature-set contract plus values worked out by hand."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from hydra.utils import instantiate
from omegaconf import OmegaConf
from sklearn.base import clone

from segmentlab.config import build_features, build_prediction_features
from segmentlab.features.activity import ActivityFeatures
from segmentlab.features.rfm import RFMFeatures
from segmentlab.schema import CUSTOMER_ID, DataError
from tests.conftest import CONFIGS, clean_lines, compose_config

SNAPSHOT = pd.Timestamp("2012-07-01")  # 2012 is a leap year: ages are counted, not calendar dates


def aged(rows: list[tuple]) -> pd.DataFrame:
    """Cleaned lines from (customer, age in days before SNAPSHOT, quantity, price); qty < 0 returns.

    Every line is at 10:00, so the last line of age 1 makes the fitted snapshot SNAPSHOT.
    """
    out = []
    for i, (customer, age, quantity, price) in enumerate(rows):
        when = SNAPSHOT - pd.Timedelta(days=age) + pd.Timedelta(hours=10)
        invoice = f"{'C' if quantity < 0 else ''}{500000 + i}"
        out.append((invoice, "S1", quantity, when.isoformat(), price, customer, "United Kingdom"))
    return clean_lines(out)


SHORT = aged([
    (1, 1, 2, 5.0), (1, 1, 1, 3.0),    # one day, two lines, 13.0
    (1, 10, 1, 4.0),
    (1, 40, 1, 6.0), (1, 40, 1, 1.0),  # two invoices on one day: still one purchase day
    (1, 6, -1, 4.0),                   # a return: ignored
    (2, 100, 1, 5.0), (2, 100, 1, 5.0),
    (3, 3, -2, 2.0),                   # returns only: no row
    (4, 7, 1, 2.0), (4, 8, 1, 3.0),    # window edges: age 7 is in the last 7 days, age 8 is not
])


def test_short_history_by_hand():
    f = ActivityFeatures(windows=[7, 14, 60, 180], half_lives=[15], log=False).fit_transform(SHORT)
    assert f.index.tolist() == [1, 2, 4] and f.index.dtype == np.int64
    one, two, four = f.loc[1], f.loc[2], f.loc[4]
    assert (one["days_last_7"], one["spend_last_7"], one["lines_last_7"]) == (1, 13.0, 2)
    assert (one["days_last_14"], one["spend_last_14"], one["lines_last_14"]) == (2, 17.0, 3)
    assert (one["days_last_60"], one["spend_last_60"], one["lines_last_60"]) == (3, 24.0, 5)
    assert (two["days_last_60"], two["days_last_180"], two["spend_last_180"]) == (0, 1, 10.0)
    assert (four["days_last_7"], four["days_last_14"], four["spend_last_14"]) == (1, 2, 5.0)
    assert one["decayed_days_15"] == pytest.approx(2 ** (-1 / 15) + 2 ** (-10 / 15) + 2 ** (-40 / 15))
    # Purchase days at ages 40, 10, 1: gaps 30 and 9; the last purchase day is 1 day old.
    assert (one["gap_mean_days"], one["gap_std_days"], one["gap_median_days"]) == (19.5, 10.5, 19.5)
    assert (one["current_gap_days"], one["has_gap"]) == (1, 1)
    assert one["current_gap_ratio"] == pytest.approx(1 / 19.5)
    # A one-off buyer: no gap, so zeros and the flag, and the current gap still counts.
    assert two[["gap_mean_days", "gap_std_days", "gap_median_days", "current_gap_ratio",
                "has_gap"]].tolist() == [0, 0, 0, 0, 0]
    assert two["current_gap_days"] == 100
    # Trend over 90 days: all of 1 is recent, all of 2 lies in the 90 days before.
    assert (one["trend_days"], one["trend_spend"]) == (1, 1)
    assert (two["trend_days"], two["trend_spend"]) == (-1, -1)
    # 100 days of history: last year is not observed, so zeros and the flags say so.
    season = [c for c in f if c.startswith(("last_year", "has_last_year"))]
    assert len(season) == 7 and (f[season] == 0).all().all()


def test_two_years_see_the_same_window_last_year():
    tx = aged([
        (1, 1, 1, 1.0),
        (1, 300, 1, 2.0), (1, 365, 1, 3.0),   # in [s - 365, s - 275): ages 276..365
        (1, 366, 1, 4.0), (1, 455, 1, 5.0),   # the window before: ages 366..455
        (1, 456, 1, 100.0),                   # in neither
        (2, 275, 1, 7.0), (2, 276, 1, 8.0),   # 275 is last year's window's (open) end
        (3, 500, 1, 1.0),                     # the history starts 500 days back
    ])
    f = ActivityFeatures(log=False).fit_transform(tx)
    assert f.loc[1, ["last_year_bought", "last_year_days", "last_year_spend"]].tolist() == [1, 2, 5.0]
    assert f.loc[1, ["last_year_prior_days", "last_year_prior_spend"]].tolist() == [2, 9.0]
    assert f.loc[2, ["last_year_bought", "last_year_days", "last_year_spend"]].tolist() == [1, 1, 8.0]
    assert f.loc[3, ["last_year_bought", "last_year_days", "last_year_prior_days"]].tolist() == [0, 0, 0]
    assert (f[["has_last_year", "has_last_year_prior"]] == 1).all().all()
    # 400 days of history cover last year's window but only part of the one before: that
    # part is not reported as a (too small) count, it is zero and flagged.
    recent = tx[tx["invoice_date"] > SNAPSHOT - pd.Timedelta(days=401)]
    partial = ActivityFeatures(log=False).fit_transform(recent)
    assert partial.loc[1, ["last_year_days", "has_last_year", "has_last_year_prior"]].tolist() == [2, 1, 0]
    assert (partial[["last_year_prior_days", "last_year_prior_spend"]] == 0).all().all()
    # A shorter horizon narrows the window: age 300 falls out of [s - 365, s - 335).
    narrow = ActivityFeatures(season_days=30, log=False).fit_transform(tx)
    assert narrow.loc[1, ["last_year_days", "last_year_prior_days"]].tolist() == [1, 1]


def test_log_applies_log1p_to_counts_and_money_only():
    raw = ActivityFeatures(log=False).fit_transform(SHORT)
    logged = ActivityFeatures().fit_transform(SHORT)
    for column in ["days_last_30", "spend_last_90", "lines_last_180", "decayed_days_45",
                   "current_gap_ratio", "last_year_spend"]:
        np.testing.assert_allclose(logged[column], np.log1p(raw[column]))
    for column in ["gap_mean_days", "current_gap_days", "trend_days", "has_gap", "has_last_year"]:
        np.testing.assert_array_equal(logged[column], raw[column])


def test_contract_on_the_shared_fixture(transactions):
    model = ActivityFeatures()
    features = model.fit_transform(transactions)
    purchasers = transactions.loc[~transactions["is_return"], CUSTOMER_ID].unique()
    assert features.index.name == CUSTOMER_ID and features.index.is_unique
    assert set(features.index) == set(purchasers)
    assert list(features.columns) == list(model.get_feature_names_out())
    assert not features.isna().any().any()
    assert all(dtype == np.float64 for dtype in features.dtypes)
    assert not hasattr(clone(model), "snapshot_date_")
    pd.testing.assert_frame_equal(clone(model).fit_transform(transactions), features)
    # Current gap is the recency RFM reports: same snapshot, same last purchase day.
    rfm = RFMFeatures(log=False).fit_transform(transactions)
    np.testing.assert_array_equal(features["current_gap_days"], rfm.loc[features.index, "recency_days"])


def test_later_window_is_measured_from_its_own_end(transactions):
    cut = transactions["invoice_date"].quantile(0.5)
    early = transactions[transactions["invoice_date"] < cut]
    late = transactions[transactions["invoice_date"] >= cut]
    fitted_early = ActivityFeatures().fit(early)
    pd.testing.assert_frame_equal(fitted_early.transform(late), ActivityFeatures().fit_transform(late))
    # An earlier window keeps the later fitted snapshot: every line is older by the gap.
    shift = (late["invoice_date"].max().normalize() - early["invoice_date"].max().normalize()).days
    on_early = ActivityFeatures(log=False).fit(late).transform(early)
    own = ActivityFeatures(log=False).fit_transform(early)
    np.testing.assert_array_equal(on_early["current_gap_days"], own["current_gap_days"] + shift)


def test_empty_window_gives_an_empty_frame_with_the_columns():
    model = ActivityFeatures().fit(SHORT)
    empty = model.transform(SHORT[SHORT["is_return"]])
    assert empty.empty and list(empty.columns) == list(model.get_feature_names_out())


def test_the_config_file_builds_it():
    node = OmegaConf.load(CONFIGS / "features" / "activity.yaml")["activity"]
    model = instantiate(node, _convert_="all")
    assert isinstance(model, ActivityFeatures) and model.windows == [7, 14, 30, 60, 90, 180]
    assert model.fit_transform(SHORT).shape[1] == 6 * 3 + 3 + 6 + 2 + 7


def test_selectable_for_clustering_and_for_prediction(transactions):
    """``features=[rfm,activity]`` for segments, ``prediction.features`` by name."""
    union = build_features(compose_config("features=[rfm,activity]"))
    frame = union.fit_transform(transactions)
    assert {"rfm__recency_days", "activity__days_last_90", "activity__has_last_year"} <= set(frame)
    chosen = compose_config("features@prediction.features=[rfm,behaviour,activity]")
    named = build_prediction_features(chosen).fit_transform(transactions)
    assert named.filter(like="activity__").shape[1] == frame.filter(like="activity__").shape[1]


@pytest.mark.parametrize("params, message", [
    ({"windows": []}, "windows"), ({"windows": [7, 7]}, "windows"),
    ({"half_lives": [0]}, "half_lives"), ({"trend_days": -1}, "trend_days"),
    ({"season_days": 365}, "season_days"),
])
def test_bad_parameters_are_named(params, message):
    with pytest.raises(ValueError, match=message):
        ActivityFeatures(**params).fit(SHORT)


def test_missing_column_is_named():
    with pytest.raises(DataError, match="is_return"):
        ActivityFeatures().fit(SHORT.drop(columns="is_return"))
