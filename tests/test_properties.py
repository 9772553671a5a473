"""Properties over random frames: the cleaning ledger always adds up, duplicates are found exactly,
and the RFM and behaviour features keep their invariants whatever the cleaned lines look like."""

from __future__ import annotations

import numpy as np
import pandas as pd
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st

from segmentlab.data.cleaning import NON_PRODUCT_CODES, TransactionCleaner
from segmentlab.features.behaviour import BehaviourFeatures
from segmentlab.features.rfm import RFMFeatures
from segmentlab.schema import (
    AMOUNT,
    CLEAN_COLUMNS,
    COUNTRY,
    CUSTOMER_ID,
    DESCRIPTION,
    INVOICE_DATE,
    INVOICE_NO,
    IS_RETURN,
    QUANTITY,
    RAW_COLUMNS,
    SOURCE_COLUMNS,
    STOCK_CODE,
    UNIT_PRICE,
)

START = pd.Timestamp("2011-01-03")  # a Monday
FAST = settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])


def frame_of(rows: list[tuple], columns: list[str]) -> pd.DataFrame:
    """Rows in the dtypes a loader returns (text as ``str``, nullable ids, dates in us)."""
    frame = pd.DataFrame(rows, columns=columns)
    frame[INVOICE_DATE] = (START + pd.to_timedelta(frame[INVOICE_DATE], unit="min")).astype(
        "datetime64[us]")
    frame[QUANTITY] = frame[QUANTITY].astype("int64")
    frame[UNIT_PRICE] = frame[UNIT_PRICE].astype("float64")
    for column in [INVOICE_NO, STOCK_CODE, DESCRIPTION, COUNTRY]:
        if column in frame:
            frame[column] = frame[column].astype("str")
    frame[AMOUNT] = frame[QUANTITY] * frame[UNIT_PRICE]
    return frame


# --- Raw lines: every kind of noise the cleaner knows, in few enough values to collide often

raw_lines = st.lists(st.tuples(
    st.sampled_from(["800001", "800002", "C800003", "A800004", "c800005"]),
    st.sampled_from(["10001", "10001a", "10001A", "POST", "post", "M", "GIFT_0001_10"]),
    st.sampled_from([None, "MUG", " Adjust bad debt ", "ADJUST BAD DEBT", "adjust bad debt."]),
    st.one_of(st.integers(-5, 5), st.sampled_from([-50_000, 50_000, 2**40])),
    st.integers(0, 3),  # minutes after START: few values, so exact repeats are common
    st.one_of(st.sampled_from([-1.0, 0.0, -0.0, 0.5, 2.5]), st.just(float("nan"))),
    st.sampled_from([None, 30001, 30002]),
    st.sampled_from([None, "France", "EIRE"]),
), max_size=40)
cleaner_params = st.fixed_dictionaries({
    "drop_missing_customer": st.booleans(), "drop_bad_debt": st.booleans(),
    "non_product_codes": st.sampled_from([(), NON_PRODUCT_CODES, ["m"]]),
    "drop_duplicates": st.booleans(), "max_quantity": st.sampled_from([None, 3, 10_000]),
    "keep_returns": st.booleans(), "drop_non_positive_price": st.booleans(),
    "uppercase_stock_codes": st.booleans(),
})


def raw_frame(rows: list[tuple]) -> pd.DataFrame:
    frame = frame_of(rows, SOURCE_COLUMNS)
    frame[CUSTOMER_ID] = frame[CUSTOMER_ID].astype("Int64")
    return frame[RAW_COLUMNS]


@FAST
@given(rows=raw_lines, params=cleaner_params)
def test_the_ledger_accounts_for_every_row(rows, params):
    raw = raw_frame(rows)
    clean, ledger = TransactionCleaner(**params).clean(raw)
    assert ledger.rows_in == len(raw)
    assert ledger.rows_in == ledger.rows_kept + sum(ledger.dropped.values())
    assert all(count >= 0 for count in ledger.dropped.values())
    returns = int(clean[IS_RETURN].sum())
    assert len(clean) == ledger.rows_kept + returns
    assert returns == ledger.dropped.get("cancellation_kept_as_return", 0)
    assert list(clean.columns) == CLEAN_COLUMNS and clean.index.equals(pd.RangeIndex(len(clean)))
    assert clean[INVOICE_DATE].is_monotonic_increasing
    purchases = clean[~clean[IS_RETURN]]
    assert (purchases[QUANTITY] > 0).all() and (clean[IS_RETURN] == clean[INVOICE_NO]
                                                .str.startswith("C")).all()
    if params["drop_duplicates"]:
        assert not clean.duplicated().any()


# Equal for pandas, different in bits: 0.0 and -0.0, NaN and -NaN, missing ids and texts.
KEPT_ALL = {"drop_missing_customer": False, "drop_bad_debt": False, "non_product_codes": (),
            "drop_duplicates": True, "max_quantity": None, "keep_returns": True,
            "drop_non_positive_price": False, "uppercase_stock_codes": False}
TWINS = [("800001", "10001", None, 2, 0, price, None, None)
         for price in (0.0, -0.0, float("nan"), -float("nan"), 0.0)]


@FAST
@given(rows=raw_lines, params=cleaner_params)
@example(rows=TWINS, params=KEPT_ALL)
@example(rows=[("C800001", *t[1:3], -2, *t[4:]) for t in TWINS], params=KEPT_ALL)
def test_duplicates_are_exactly_what_pandas_finds(rows, params):
    # Everything up to the duplicate step, then pandas' own (slow, exact) duplicated().
    raw = raw_frame(rows)
    before, _ = TransactionCleaner(**{**params, "drop_duplicates": False, "max_quantity": None,
                                      "keep_returns": True}).clean(raw)
    _, ledger = TransactionCleaner(**{**params, "drop_duplicates": True,
                                      "max_quantity": None}).clean(raw)
    assert ledger.dropped["duplicate"] == int(before[RAW_COLUMNS].duplicated().sum())


# --- Cleaned lines: purchases and returns of a few customers over a few weeks

clean_lines = st.lists(st.tuples(
    st.integers(0, 30),                       # invoice number (C prefix for returns)
    st.booleans(),                            # is a return
    st.sampled_from(["20001", "20002", "20003", "POSTER"]),
    st.integers(1, 500),                      # units (negated on returns)
    st.integers(0, 60 * 24 * 40),             # minutes after START
    st.sampled_from([0.19, 0.85, 2.55, 12.75, 99.0]),
    st.integers(40001, 40008),                # customer
    st.sampled_from([None, "United Kingdom", "France", "EIRE", "Côte d'Ivoire"]),
), min_size=1, max_size=50)
behaviour_params = st.fixed_dictionaries({
    "top_countries": st.integers(0, 4), "weekday_detail": st.booleans(),
    "one_off_gap": st.sampled_from(["tenure", "zero"]), "log": st.booleans(),
    "hour_edges": st.sampled_from([(12, 14, 17), (0, 0, 24), (6, 12, 18)]),
})


def cleaned_frame(rows: list[tuple]) -> pd.DataFrame:
    records = [(("C" if ret else "") + str(500000 + inv), code, "ITEM", -units if ret else units,
                minute, price, customer, country, ret)
               for inv, ret, code, units, minute, price, customer, country in rows]
    frame = frame_of([r[:-1] for r in records], SOURCE_COLUMNS)
    frame[IS_RETURN] = [r[-1] for r in records]
    return frame[CLEAN_COLUMNS].sort_values(INVOICE_DATE, kind="stable", ignore_index=True)


@FAST
@given(rows=clean_lines, params=behaviour_params)
def test_features_cover_exactly_the_buying_customers(rows, params):
    clean = cleaned_frame(rows)
    buyers = np.sort(clean.loc[~clean[IS_RETURN], CUSTOMER_ID].unique())
    rfm = RFMFeatures(log=params["log"]).fit_transform(clean)
    if len(buyers) == 0:
        assert rfm.empty
        return
    behaviour = BehaviourFeatures(**params).fit_transform(clean)
    for features in (rfm, behaviour):
        assert features.index.is_unique and features.index.name == CUSTOMER_ID
        np.testing.assert_array_equal(np.sort(features.index.to_numpy()), buyers)
        assert not features.isna().any().any() and np.isfinite(features.to_numpy()).all()
    assert (rfm["recency_days"] >= 0).all() and (rfm["frequency"] >= 0).all()
    assert (behaviour["tenure_days"] >= rfm.loc[behaviour.index, "recency_days"]).all()
    shares = behaviour.filter(like="spend_share_")
    assert shares.to_numpy().min() >= 0 and shares.to_numpy().max() <= 1 + 1e-12
    assert behaviour["return_rate"].between(0, 1).all()
    days = shares.drop(columns=[f"spend_share_{b}" for b in
                                ["morning", "midday", "afternoon", "evening"]])
    np.testing.assert_allclose(days.sum(axis=1), 1.0)
    countries = behaviour.filter(regex="^(is_home_country|country_)")
    np.testing.assert_array_equal(countries.sum(axis=1), 1.0)
    assert behaviour["is_one_off"].isin([0.0, 1.0]).all()
