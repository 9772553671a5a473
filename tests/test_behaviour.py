"""BehaviourFeatures: the feature-set contract plus hand-checked values."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from hydra.utils import instantiate
from hypothesis import given, settings
from hypothesis import strategies as st
from omegaconf import OmegaConf
from sklearn.base import clone

from segmentlab.features.behaviour import BehaviourFeatures
from segmentlab.schema import (
    AMOUNT,
    CUSTOMER_ID,
    INVOICE_DATE,
    IS_RETURN,
    DataError,
)
from tests.conftest import clean_lines

UK = "United Kingdom"
lines = clean_lines


def synthetic(seed: int = 0, n_customers: int = 40, start: str = "2011-01-01",
              days: int = 200) -> pd.DataFrame:
    """Random small transactions: several countries, some returns, a returns-only customer."""
    rng = np.random.default_rng(seed)
    countries = [UK] * 6 + ["Germany", "Germany", "France", "France", "Spain", "EIRE", "Norway"]
    rows = []
    for c in range(n_customers):
        country = countries[rng.integers(len(countries))]
        for i in range(rng.integers(1, 6)):
            when = pd.Timestamp(start) + pd.Timedelta(minutes=int(rng.integers(0, days * 1440)))
            invoice = f"{c:03d}{i:02d}"
            for _ in range(rng.integers(1, 4)):
                stock, qty = f"S{rng.integers(8)}", int(rng.integers(1, 12))
                price = float(rng.integers(1, 20)) / 2
                rows.append((invoice, stock, qty, str(when), price, 1000 + c, country))
            if rng.random() < 0.3:
                rows.append((f"C{invoice}", stock, -1, str(when + pd.Timedelta(days=2)), price,
                             1000 + c, country))
    rows.append(("C99999", "S1", -3, f"{start} 10:00", 2.0, 9999, UK))  # returns only
    return lines(rows)


def test_contract_index_columns_and_values():
    data = synthetic()
    features = BehaviourFeatures().fit_transform(data)
    purchasers = data.loc[~data[IS_RETURN], CUSTOMER_ID].unique()
    assert features.index.name == CUSTOMER_ID
    assert features.index.dtype == np.int64
    assert features.index.is_unique
    assert set(features.index) == set(purchasers)  # returns-only customer 9999 has no row
    assert not features.isna().any().any()
    assert all(dtype == np.float64 for dtype in features.dtypes)
    assert list(features.columns) == list(BehaviourFeatures().fit(data).get_feature_names_out())


def test_clone_round_trips_and_refit_is_deterministic():
    data = synthetic(seed=1)
    model = BehaviourFeatures(top_countries=2, hour_edges=[11, 13, 18], weekday_detail=False,
                              one_off_gap="zero", log=False)
    copy = clone(model)
    assert copy.get_params() == model.get_params()
    assert not hasattr(clone(model.fit(data)), "snapshot_date_")
    pd.testing.assert_frame_equal(copy.fit_transform(data), model.transform(data))


def test_shares_sum_to_one_and_country_is_one_hot():
    features = BehaviourFeatures().fit_transform(synthetic(seed=2))
    days = [c for c in features if c in {f"spend_share_{d}" for d in
                                         ["mon", "tue", "wed", "thu", "fri", "sat", "sun"]}]
    bands = [f"spend_share_{b}" for b in ["morning", "midday", "afternoon", "evening"]]
    country = ["is_home_country", *[c for c in features if c.startswith("country_")]]
    assert len(days) == 7
    for group in (days, bands, country):
        np.testing.assert_allclose(features[group].sum(axis=1), 1.0)


def test_return_rate_is_returned_over_purchased_value_clipped():
    data = lines([
        ("1", "A", 10, "2011-03-01 10:00", 2.0, 1, UK),
        ("1", "B", 5, "2011-03-01 10:00", 4.0, 1, UK),
        ("C1", "A", -2, "2011-03-05 10:00", 2.0, 1, UK),
        ("2", "A", 1, "2011-03-02 10:00", 2.0, 2, UK),
        ("C2", "A", -5, "2011-03-06 10:00", 2.0, 2, UK),   # returns more than it bought
        ("3", "A", 1, "2011-03-02 10:00", 2.0, 3, UK),
    ])
    rate = BehaviourFeatures().fit_transform(data)["return_rate"]
    assert rate[1] == pytest.approx((2 * 2.0) / (10 * 2.0 + 5 * 4.0))
    assert rate[2] == 1.0
    assert rate[3] == 0.0


def test_timing_baskets_and_one_off_rule():
    data = lines([
        ("1", "A", 2, "2011-03-01 09:00", 1.5, 1, UK),
        ("1", "B", 1, "2011-03-01 09:00", 4.0, 1, UK),
        ("2", "A", 10, "2011-03-04 15:00", 1.5, 1, UK),
        ("3", "A", 1, "2011-03-10 15:00", 1.5, 1, UK),
        ("4", "C", 3, "2011-03-05 18:00", 2.0, 2, UK),
        ("5", "C", 1, "2011-03-05 19:00", 2.0, 2, UK),   # same day: still one-off
    ])
    snapshot = pd.Timestamp("2011-03-11")
    got = BehaviourFeatures(log=False).fit_transform(data)
    one = got.loc[1]
    assert one["tenure_days"] == (snapshot - pd.Timestamp("2011-03-01")).days
    assert one["purchase_gap_mean_days"] == pytest.approx(np.mean([3, 6]))
    assert one["purchase_gap_std_days"] == pytest.approx(np.std([3, 6]))
    assert one["is_one_off"] == 0.0
    assert one["basket_lines_mean"] == pytest.approx(4 / 3) and one["basket_lines_max"] == 2
    assert one["basket_units_mean"] == pytest.approx(14 / 3) and one["basket_units_max"] == 10
    values = [2 * 1.5 + 4.0, 10 * 1.5, 1.5]
    assert one["basket_value_mean"] == pytest.approx(np.mean(values))
    assert one["basket_value_std"] == pytest.approx(np.std(values))
    assert one["n_products"] == 2
    assert one["unit_price_mean"] == pytest.approx(np.mean([1.5, 4.0, 1.5, 1.5]))
    two = got.loc[2]
    assert two["is_one_off"] == 1.0 and two["purchase_gap_std_days"] == 0.0
    assert two["purchase_gap_mean_days"] == two["tenure_days"] == (snapshot - pd.Timestamp(
        "2011-03-05")).days
    zero = BehaviourFeatures(one_off_gap="zero").fit_transform(data)
    assert zero.loc[2, "purchase_gap_mean_days"] == 0.0


def test_hour_bands_follow_edges_and_weekend_split():
    data = lines([
        ("1", "A", 1, "2011-03-05 11:59", 1.0, 1, UK),   # Saturday, morning
        ("2", "A", 1, "2011-03-07 12:00", 3.0, 1, UK),   # Monday, midday
        ("3", "A", 1, "2011-03-07 17:00", 6.0, 1, UK),   # Monday, evening
    ])
    got = BehaviourFeatures(weekday_detail=False).fit_transform(data).loc[1]
    assert got["spend_share_weekend"] == pytest.approx(1 / 10)
    assert got["spend_share_weekday"] == pytest.approx(9 / 10)
    assert got["spend_share_morning"] == pytest.approx(1 / 10)
    assert got["spend_share_midday"] == pytest.approx(3 / 10)
    assert got["spend_share_afternoon"] == 0.0
    assert got["spend_share_evening"] == pytest.approx(6 / 10)
    shifted = BehaviourFeatures(hour_edges=[12, 13, 18]).fit_transform(data).loc[1]
    assert shifted["spend_share_afternoon"] == pytest.approx(6 / 10)


def test_log_applies_log1p_to_heavy_tailed_columns_only():
    data = synthetic(seed=3)
    raw = BehaviourFeatures(log=False).fit_transform(data)
    logged = BehaviourFeatures(log=True).fit_transform(data)
    for column in ["basket_value_mean", "basket_units_max", "n_products", "unit_price_mean"]:
        np.testing.assert_allclose(logged[column], np.log1p(raw[column]))
    for column in ["tenure_days", "return_rate", "spend_share_mon"]:
        np.testing.assert_allclose(logged[column], raw[column])


def test_top_countries_by_customer_count_excluding_home():
    rows = [(f"{c}", "A", 1, "2011-03-01 10:00", 1.0, c, country) for c, country in enumerate(
        [UK] * 5 + ["Spain"] * 3 + ["France"] * 2 + ["Austria"] * 2 + ["Norway"])]
    model = BehaviourFeatures(top_countries=2).fit(lines(rows))
    assert list(model.countries_) == ["Spain", "Austria"]   # France ties Austria: by name
    got = model.transform(lines(rows))
    assert got["country_other"].sum() == 3                    # France twice, Norway
    assert got["is_home_country"].sum() == 5
    metrics, tables = model.report()
    assert metrics["behaviour/home_country_share"] == pytest.approx(5 / len(rows))
    assert tables["behaviour_countries"]["customers"].sum() == len(rows)


def test_fit_on_one_window_transform_on_another():
    data = synthetic(seed=4, days=300)
    cut = pd.Timestamp("2011-06-01")
    early, late = data[data[INVOICE_DATE] < cut], data[data[INVOICE_DATE] >= cut]
    model = BehaviourFeatures(top_countries=1).fit(early)
    learnt = (model.snapshot_date_, dict(model.countries_))
    later = model.transform(late)
    assert (model.snapshot_date_, dict(model.countries_)) == learnt   # nothing re-learnt
    assert list(later.columns) == list(model.get_feature_names_out())
    assert set(later.index) == set(late.loc[~late[IS_RETURN], CUSTOMER_ID])
    late_end = late[INVOICE_DATE].max().normalize() + pd.Timedelta(days=1)
    first = late[~late[IS_RETURN]].groupby(CUSTOMER_ID)[INVOICE_DATE].min().dt.normalize()
    np.testing.assert_allclose(later["tenure_days"], (late_end - first).dt.days)
    # An earlier window keeps the fitted (later) snapshot.
    full = BehaviourFeatures().fit(data)
    first = early[~early[IS_RETURN]].groupby(CUSTOMER_ID)[INVOICE_DATE].min().dt.normalize()
    np.testing.assert_allclose(full.transform(early)["tenure_days"],
                               (full.snapshot_date_ - first).dt.days)


def test_bad_input_and_parameters_fail_clearly():
    data = synthetic(seed=5)
    with pytest.raises(DataError, match="missing columns"):
        BehaviourFeatures().fit(data.drop(columns=[AMOUNT]))
    with pytest.raises(ValueError, match="hour_edges"):
        BehaviourFeatures(hour_edges=[14, 12, 17]).fit(data)
    with pytest.raises(ValueError, match="one_off_gap"):
        BehaviourFeatures(one_off_gap="nan").fit(data)
    empty = BehaviourFeatures().fit(data).transform(data[data[IS_RETURN]])
    assert empty.empty and list(empty.columns) == list(BehaviourFeatures().fit(data)
                                                        .get_feature_names_out())


def test_yaml_builds_the_estimator():
    node = OmegaConf.load("configs/features/behaviour.yaml").behaviour
    model = instantiate(node, _convert_="all")
    assert isinstance(model, BehaviourFeatures)
    assert clone(model).get_params() == model.get_params()
    assert model.fit_transform(synthetic(seed=6)).shape[1] == len(model.get_feature_names_out())


@settings(max_examples=25, deadline=None)
@given(seed=st.integers(0, 10_000), n=st.integers(1, 15), top=st.integers(0, 6))
def test_any_small_data_gives_complete_rows(seed, n, top):
    data = synthetic(seed=seed, n_customers=n)
    features = BehaviourFeatures(top_countries=top).fit_transform(data)
    assert features.index.is_unique and not features.isna().any().any()
    assert features["return_rate"].between(0, 1).all()
    assert (features["tenure_days"] >= 1).all()
