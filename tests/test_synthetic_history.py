"""Planted time structure of the synthetic source: multi-year histories, seasons, migrations."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from sklearn.metrics import roc_auc_score

from segmentlab.config import build
from segmentlab.data.synthetic import SEGMENTS, SyntheticTransactions
from segmentlab.schema import AMOUNT, CUSTOMER_ID, INVOICE_DATE, INVOICE_NO, STOCK_CODE
from tests.conftest import compose_config

DAY = pd.Timedelta(days=1)
MIGRATION_DATE = pd.Timestamp("2011-06-01")
YEAR_ROUND = ["loyal_high_spender", "regular_mid_value", "wholesale_bulk", "lapsing"]
STAYERS = ["loyal_high_spender", "regular_mid_value", "wholesale_bulk", "seasonal_gift"]


@pytest.fixture(scope="module")
def years() -> SyntheticTransactions:
    """Four years, the segments describing the last one, half the repeat buyers seasonal."""
    return SyntheticTransactions(n_customers=800, n_lines=120_000, start="2007-12-01",
                                 segment_days=365, seasonal_share=0.5, seed=7)


@pytest.fixture(scope="module")
def moved() -> SyntheticTransactions:
    """One year; on 1 June 30 % of the regular customers lapse and 25 % become loyal."""
    return SyntheticTransactions(n_customers=1500, n_lines=110_000, seed=11, migrations=[
        {"date": "2011-06-01", "from": "regular_mid_value", "to": "lapsing", "share": 0.3},
        {"date": "2011-06-01", "from": "regular_mid_value", "to": "loyal_high_spender",
         "share": 0.25},
    ])


def _invoices(source: SyntheticTransactions) -> pd.DataFrame:
    """Purchase invoices of customers with an id: customer, date, value, hour."""
    raw = source.read()
    lines = raw[raw[CUSTOMER_ID].notna() & ~raw[INVOICE_NO].str.startswith("C")
                & raw[STOCK_CODE].str.match(r"^\d{5}[A-Z]?$")]
    per_invoice = lines.groupby([CUSTOMER_ID, INVOICE_NO]).agg(
        date=(INVOICE_DATE, "first"), value=(AMOUNT, "sum")).reset_index()
    per_invoice[CUSTOMER_ID] = per_invoice[CUSTOMER_ID].astype("int64")
    per_invoice["hour"] = per_invoice["date"].dt.hour
    return per_invoice


def _segment_on(history: pd.DataFrame, day: pd.Timestamp) -> pd.Series:
    """Planted segment per customer on ``day``."""
    spells = history[(history["start"] <= day) & (day < history["end"])]
    return spells.set_index(CUSTOMER_ID)["segment"]


def test_a_multi_year_history_has_arrivals_and_churn_every_year(years):
    raw = years.read()
    assert len(raw) == pytest.approx(years.n_lines, rel=0.10)
    assert raw[INVOICE_DATE].min() >= pd.Timestamp("2007-12-01")
    assert raw[INVOICE_DATE].max() < pd.Timestamp("2011-12-10")
    assert not (raw[INVOICE_DATE].dt.day_of_week == 5).any()
    assert set(raw[CUSTOMER_ID].dropna().astype("int64")) == set(years.truth().index)
    invoices = _invoices(years)
    by_customer = invoices.groupby(CUSTOMER_ID)["date"]
    arrivals = by_customer.min().dt.year.value_counts(normalize=True)
    leavers = by_customer.max().dt.year.value_counts(normalize=True)
    for year in [2008, 2009, 2010, 2011]:
        assert arrivals[year] > 0.03, year  # new customers every year
    for year in [2008, 2009, 2010]:
        assert leavers[year] > 0.03, year  # and some stop buying every year
    # Every year follows the calendar of `MONTH_ACTIVITY`: a strong November, a slow February.
    month = invoices.groupby([invoices["date"].dt.year, invoices["date"].dt.month]).size()
    for year in [2008, 2009, 2010]:
        assert month[year, 11] > 1.8 * month[year, 2], year


def test_the_segments_describe_the_last_year_of_a_long_history(years):
    invoices = _invoices(years)
    truth = years.truth()
    last = invoices.groupby(CUSTOMER_ID)["date"].max()
    recency = (pd.Timestamp("2011-12-10") - last).dt.days
    everyday = ~years.seasonal_truth()["seasonal"]
    # Customers of segments still buying at the end did so in the last year, unless seasonal.
    stayers = truth.index[truth.isin(STAYERS) & everyday]
    assert (recency[stayers] < 365).all()
    median = recency.groupby(truth).median()
    assert median["loyal_high_spender"] < median["regular_mid_value"] < median["lapsing"]
    assert median["lapsing"] > 200 and median["one_off_low_spender"] > 365
    counts = invoices.groupby(CUSTOMER_ID).size().groupby(truth)
    assert counts.max()["one_off_low_spender"] == 1
    assert counts.median().idxmax() == "loyal_high_spender"


def test_seasonal_truth_plants_the_share_and_the_seasons(years):
    seasons, truth = years.seasonal_truth(), years.truth()
    assert seasons.index.equals(truth.index)
    assert seasons["seasonal"].dtype == bool
    personal = seasons["seasonal"] & truth.isin(YEAR_ROUND)
    assert personal[truth.isin(YEAR_ROUND)].mean() == pytest.approx(years.seasonal_share, abs=0.08)
    assert not seasons.loc[truth == "one_off_low_spender", "seasonal"].any()
    gift = seasons[truth == "seasonal_gift"]
    assert gift["seasonal"].all() and (gift["season_start_month"] == 10).all()
    assert (gift["season_months"] == 3).all()
    assert seasons.loc[personal, "season_start_month"].between(1, 12).all()
    assert seasons.loc[personal, "season_start_month"].nunique() >= 10
    assert (seasons.loc[personal, "season_months"] == years.season_months).all()
    assert seasons.loc[~seasons["seasonal"], ["season_start_month", "season_months"]].isna().all().all()
    # Without personal seasons only the season-only segment is seasonal.
    default = SyntheticTransactions(n_customers=150, n_lines=8_000, seed=3)
    assert default.seasonal_truth()["seasonal"].equals(default.truth() == "seasonal_gift")


def test_seasonal_customers_buy_in_their_season_every_year(years):
    invoices = _invoices(years)
    seasons, truth = years.seasonal_truth(), years.truth()
    invoices = invoices[invoices[CUSTOMER_ID].map(truth).isin(YEAR_ROUND)]
    # Others are measured against a season drawn for them in the same way.
    start = seasons["season_start_month"].astype(float).fillna(
        pd.Series(np.random.default_rng(0).integers(1, 13, len(seasons)), index=seasons.index))
    month = invoices["date"].dt.month
    inside = (month - invoices[CUSTOMER_ID].map(start)) % 12 < years.season_months
    seasonal = invoices[CUSTOMER_ID].map(seasons["seasonal"])
    share = inside.groupby([invoices["date"].dt.year, seasonal]).mean().unstack()
    for year in [2008, 2009, 2010, 2011]:
        assert share.loc[year, True] > 3 * share.loc[year, False], year
    # Year after year: seasonal customers whose in-season purchases span three seasons or more
    # bought in every season in between (seasons counted by the year in which they start).
    own = invoices[inside & seasonal & invoices[CUSTOMER_ID].map(truth).isin(YEAR_ROUND)]
    season_year = own["date"].dt.year - (own["date"].dt.month < own[CUSTOMER_ID].map(start))
    per_customer = season_year.groupby(own[CUSTOMER_ID]).agg(["min", "max", "nunique"])
    spanned = per_customer["max"] - per_customer["min"] + 1
    veterans = per_customer[spanned >= 3]
    assert len(veterans) > 50
    assert (veterans["nunique"] == spanned[spanned >= 3]).mean() > 0.8


def test_last_years_window_predicts_the_coming_90_days_for_seasonal_customers(years):
    invoices = _invoices(years)
    seasonal = years.seasonal_truth()["seasonal"]
    rows = []
    for cutoff in pd.date_range("2010-12-01", "2011-06-01", freq="MS"):
        def bought(lo, hi):
            window = invoices[(invoices["date"] >= lo) & (invoices["date"] < hi)]
            return set(window[CUSTOMER_ID])
        active = bought(cutoff - 365 * DAY, cutoff)  # who a model would score at this cutoff
        last_year = bought(cutoff - 365 * DAY, cutoff - 275 * DAY)
        coming = bought(cutoff, cutoff + 90 * DAY)
        rows += [(c, seasonal[c], c in last_year, c in coming) for c in active]
    scored = pd.DataFrame(rows, columns=["customer", "seasonal", "feature", "label"])
    auc = scored.groupby("seasonal").apply(
        lambda g: roc_auc_score(g["label"], g["feature"]), include_groups=False)
    assert auc[True] > 0.7
    assert auc[True] - auc[False] > 0.12
    lift = scored.groupby(["seasonal", "feature"])["label"].mean().unstack()
    assert (lift[True] / lift[False])[True] > 2 * (lift[True] / lift[False])[False]


def test_segment_history_tiles_the_period_and_ends_in_the_truth(moved):
    history, truth = moved.segment_history(), moved.truth()
    assert list(history.columns) == [CUSTOMER_ID, "start", "end", "segment"]
    assert set(history[CUSTOMER_ID]) == set(truth.index)
    by_customer = history.groupby(CUSTOMER_ID)
    assert (by_customer["start"].min() == pd.Timestamp("2010-12-01")).all()
    assert (by_customer["end"].max() == pd.Timestamp("2011-12-10")).all()
    following = by_customer["start"].shift(-1)
    assert (history["end"][following.notna()] == following.dropna()).all()
    assert history.groupby(CUSTOMER_ID).tail(1).set_index(CUSTOMER_ID)["segment"].equals(truth)
    # Only regular customers moved, and only on the migration date.
    assert set(history.loc[history[CUSTOMER_ID].duplicated(keep=False), "segment"]) == {
        "regular_mid_value", "lapsing", "loyal_high_spender"}
    assert set(history.loc[history["start"] > "2010-12-01", "start"]) == {MIGRATION_DATE}
    # Without migrations a customer has one spell, in their truth.
    default = SyntheticTransactions(n_customers=150, n_lines=8_000, seed=3)
    spells = default.segment_history()
    assert spells[CUSTOMER_ID].is_unique
    assert spells.set_index(CUSTOMER_ID)["segment"].equals(default.truth())


def test_migrated_shares_equal_the_planted_ones(moved):
    history = moved.segment_history()
    before = _segment_on(history, MIGRATION_DATE - DAY)
    regular = before.index[before == "regular_mid_value"]
    after = _segment_on(history, MIGRATION_DATE)[regular].value_counts(normalize=True)
    n = len(regular)
    assert n > 300
    assert after["lapsing"] == pytest.approx(0.30, abs=1 / n)
    assert after["loyal_high_spender"] == pytest.approx(0.25, abs=1 / n)
    # In the data: the customers who lapse are those who buy nothing from that day on.
    invoices = _invoices(moved)
    buyers_after = set(invoices.loc[invoices["date"] >= MIGRATION_DATE, CUSTOMER_ID])
    silent = 1 - pd.Series(regular).isin(buyers_after).mean()
    assert silent == pytest.approx(0.30, abs=3 * np.sqrt(0.3 * 0.7 / n))


def test_migrants_buy_like_their_new_segment_from_the_date_on(moved):
    history, truth = moved.segment_history(), moved.truth()
    was = _segment_on(history, MIGRATION_DATE - DAY)
    group = pd.Series(pd.NA, index=truth.index, dtype="object")
    group[(was == "regular_mid_value") & (truth == "loyal_high_spender")] = "migrant"
    group[(was == "regular_mid_value") & (truth == "regular_mid_value")] = "regular"
    group[(was == "loyal_high_spender")] = "loyal"
    invoices = _invoices(moved)
    invoices["group"] = invoices[CUSTOMER_ID].map(group)
    after = invoices[invoices["date"] >= MIGRATION_DATE]
    per_customer = after.groupby(CUSTOMER_ID).size().reindex(group.dropna().index, fill_value=0)
    stats = pd.DataFrame({
        "invoices": per_customer.groupby(group).mean(),
        "basket": after.groupby("group")["value"].median(),
        "hour": after.groupby("group")["hour"].mean(),
    })
    for stat in stats:
        to_loyal = abs(stats.loc["migrant", stat] - stats.loc["loyal", stat])
        to_regular = abs(stats.loc["migrant", stat] - stats.loc["regular", stat])
        assert to_loyal < 0.5 * to_regular, stat
    # Before the date they bought like the regular customers they were.
    basket = invoices[invoices["date"] < MIGRATION_DATE].groupby("group")["value"].median()
    assert abs(basket["migrant"] - basket["regular"]) < 0.5 * abs(basket["migrant"] - basket["loyal"])


def test_chained_and_early_migrations_in_a_multi_year_history():
    source = SyntheticTransactions(n_customers=1200, n_lines=80_000, start="2008-12-01",
                                   segment_days=365, seed=5, migrations=[
        {"date": "2010-09-01", "from": "regular_mid_value", "to": "loyal_high_spender",
         "share": 0.5},
        {"date": "2009-06-01", "from": "regular_mid_value", "to": "lapsing", "share": 0.4},
        {"date": "2009-09-01", "from": "loyal_high_spender", "to": "regular_mid_value",
         "share": 0.5},
    ])
    history, invoices = source.segment_history(), _invoices(source)
    paths = history.groupby(CUSTOMER_ID)["segment"].agg(" > ".join)
    chained = paths[paths == "loyal_high_spender > regular_mid_value > loyal_high_spender"]
    assert len(chained) > 10
    # Lapsing means buying nothing from the date on, even years before the end.
    lapsed = history.loc[(history["start"] == "2009-06-01"), CUSTOMER_ID]
    assert len(lapsed) > 20
    assert not invoices.loc[invoices[CUSTOMER_ID].isin(lapsed), "date"].ge("2009-06-01").any()
    # The customers who became loyal in 2010 buy to the end, as loyal customers do.
    loyal = history.loc[history["start"] == "2010-09-01", CUSTOMER_ID]
    last = invoices.groupby(CUSTOMER_ID)["date"].max()[loyal]
    assert (last > pd.Timestamp("2011-10-01")).mean() > 0.9


@pytest.mark.parametrize(("params", "message"), [
    ({"migrations": [{"date": "2011-06-01", "from": "regular", "to": "lapsing", "share": 0.3}]},
     r"^migrations\[0\]\.from: unknown segment 'regular'; expected one of loyal_high_spender"),
    ({"migrations": [{"date": "2011-06-01", "from": "lapsing", "to": "x", "share": 0.3}]},
     r"^migrations\[0\]\.to: unknown segment 'x'"),
    ({"migrations": [{"date": "2011-06-01", "from": "lapsing", "to": "lapsing", "share": 0.3}]},
     r"^migrations\[0\]: 'from' and 'to' are both 'lapsing'"),
    ({"migrations": [{"date": "2011-06-01", "from": "lapsing", "to": "seasonal_gift",
                      "share": 1.5}]},
     r"^migrations\[0\]\.share=1\.5: expected a share in \[0, 1\]"),
    ({"migrations": [{"date": "2011-06-01", "from": "lapsing", "to": "seasonal_gift",
                      "share": -0.1}]},
     r"^migrations\[0\]\.share=-0\.1: expected a share in \[0, 1\]"),
    ({"migrations": [{"date": "2011-06-01", "from": "lapsing", "to": "seasonal_gift",
                      "share": 0.2},
                     {"date": "2012-01-01", "from": "lapsing", "to": "seasonal_gift",
                      "share": 0.2}]},
     r"^migrations\[1\]\.date=2012-01-01: outside the period; expected a day after 2010-12-01 "
     r"and up to 2011-12-09"),
    ({"migrations": [{"date": "2010-12-01", "from": "lapsing", "to": "seasonal_gift",
                      "share": 0.2}]},
     r"^migrations\[0\]\.date=2010-12-01: outside the period"),
    ({"migrations": [{"date": "June", "from": "lapsing", "to": "seasonal_gift", "share": 0.2}]},
     r"^migrations\[0\]\.date='June': expected an ISO date"),
    ({"migrations": [{"date": "2011-06-01", "from": "lapsing", "to": "seasonal_gift"}]},
     r"^migrations\[0\]: expected a mapping with keys date, from, to, share; got \['date', "),
    ({"migrations": ["lapsing"]}, r"^migrations\[0\]: expected a mapping .* got str"),
    ({"migrations": [{"date": "2011-06-01", "from": "lapsing", "to": "seasonal_gift",
                      "share": 0.6},
                     {"date": "2011-06-01", "from": "lapsing", "to": "wholesale_bulk",
                      "share": 0.6}]},
     r"^migrations on 2011-06-01 from 'lapsing': shares add up to more than 1"),
    ({"segment_days": 10}, r"^segment_days=10: expected a number of days from 28 to the 374 "),
    ({"segment_days": 400}, r"^segment_days=400: expected"),
    ({"seasonal_share": 1.5}, r"^seasonal_share=1\.5: expected a share in \[0, 1\]"),
    ({"season_months": 12}, r"^season_months=12: expected 1 to 11 months"),
])
def test_bad_time_parameters_are_refused_in_one_line_naming_them(params, message):
    with pytest.raises(ValueError, match=message) as error:
        SyntheticTransactions(n_customers=50, n_lines=2_000, **params).read()
    assert "\n" not in str(error.value)


def test_the_yaml_config_passes_the_time_parameters():
    cfg = compose_config("data.start=2009-12-01", "data.segment_days=365",
                         "data.seasonal_share=0.3",
                         "data.migrations=[{date:2011-03-01,from:lapsing,to:regular_mid_value,"
                         "share:0.5}]")
    source = build(cfg.data)
    assert source.migrations == [{"date": "2011-03-01", "from": "lapsing",
                                  "to": "regular_mid_value", "share": 0.5}]
    assert "segment_days=365" in source.describe() and "migrations=1" in source.describe()
    history = source.segment_history()
    assert (history["start"] == "2011-03-01").any()
    assert source.seasonal_truth()["seasonal"].any()
    assert source.read()[INVOICE_DATE].min() < pd.Timestamp("2010-12-01")
    # The defaults in the YAML file leave the data as the class defaults make them.
    assert build(compose_config("data.n_customers=2000", "data.n_lines=150000").data
                 ).fingerprint() == SyntheticTransactions().fingerprint()


def test_same_seed_same_history():
    params = {"n_customers": 300, "n_lines": 20_000, "start": "2009-12-01", "segment_days": 365,
              "seasonal_share": 0.4, "seed": 9, "migrations": [
                  {"date": "2011-03-01", "from": "wholesale_bulk", "to": "regular_mid_value",
                   "share": 0.5}]}
    first, again = SyntheticTransactions(**params), SyntheticTransactions(**params)
    pd.testing.assert_frame_equal(first.read(), again.read())
    pd.testing.assert_frame_equal(first.segment_history(), again.segment_history())
    pd.testing.assert_frame_equal(first.seasonal_truth(), again.seasonal_truth())
    other = SyntheticTransactions(**{**params, "seed": 10})
    assert not first.read().equals(other.read())


def test_every_segment_can_be_a_migration_target():
    # Each target on a small population, including the season-only and one-invoice segments.
    names = [s.name for s in SEGMENTS]
    migrations = [{"date": "2011-04-01", "from": "regular_mid_value", "to": name, "share": 0.15}
                  for name in names if name != "regular_mid_value"]
    source = SyntheticTransactions(n_customers=400, n_lines=25_000, seed=2, migrations=migrations)
    truth = source.truth()
    assert set(truth) == set(names)
    invoices = _invoices(source)
    assert set(invoices[CUSTOMER_ID]) == set(truth.index)
    gift = truth.index[(truth == "seasonal_gift")]
    after = invoices[invoices[CUSTOMER_ID].isin(gift) & (invoices["date"] >= "2011-04-01")]
    assert after["date"].dt.month.isin([10, 11, 12]).all()
