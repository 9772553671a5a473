"""TransactionCleaner: each step, its switch, the ledger, and a row-by-row reference."""

from __future__ import annotations

import os
from collections import Counter

import numpy as np
import pandas as pd
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from sklearn.base import clone

from segmentlab.cache import stable_hash
from segmentlab.data.cleaning import NON_PRODUCT_CODES, TransactionCleaner
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
    DataError,
)

DAY = pd.Timestamp("2011-03-01 10:00")
BASE = dict(invoice_no="800001", stock_code="20001", description="TEST ITEM", quantity=2,
            invoice_date=DAY, unit_price=1.5, customer_id=30001, country="France")
STEPS = ["missing_customer", "bad_debt", "non_product_code", "non_positive_price",
         "wrong_quantity_sign", "duplicate", "quantity_outlier", "cancellation_kept_as_return"]


def line(**changes) -> dict:
    return {**BASE, **changes}


def raw_frame(lines: list[dict]) -> pd.DataFrame:
    """Lines in the layout and dtypes a source's ``read()`` returns."""
    frame = pd.DataFrame(lines, columns=SOURCE_COLUMNS)
    frame = frame.astype({INVOICE_DATE: "datetime64[us]", CUSTOMER_ID: "Int64",
                          QUANTITY: "int64", UNIT_PRICE: "float64"})
    for col in [INVOICE_NO, STOCK_CODE, DESCRIPTION, COUNTRY]:
        frame[col] = frame[col].astype("str")
    frame[AMOUNT] = frame[QUANTITY] * frame[UNIT_PRICE]
    return frame[RAW_COLUMNS]


# One line per reason; where two steps apply, the earlier step must claim it.
LABELLED = [
    ("kept", line()),
    ("missing_customer", line(customer_id=None)),
    ("missing_customer", line(customer_id=None, invoice_no="A800002")),
    ("bad_debt", line(invoice_no="A800003", stock_code="B", description="Adjust bad debt",
                      unit_price=-5.0)),
    ("bad_debt", line(invoice_no="A800033", unit_price=5.0)),
    ("non_product_code", line(stock_code="POST")),
    ("non_product_code", line(stock_code="m", unit_price=0.0)),
    ("non_positive_price", line(unit_price=0.0)),
    ("non_positive_price", line(unit_price=-1.0, quantity=-1)),
    ("wrong_quantity_sign", line(quantity=-3)),
    ("wrong_quantity_sign", line(quantity=0)),
    ("wrong_quantity_sign", line(invoice_no="C800004", quantity=2)),
    ("duplicate", line()),
    ("quantity_outlier", line(invoice_no="800005", stock_code="20002", quantity=50_000)),
    ("quantity_outlier", line(invoice_no="C800006", stock_code="20002", quantity=-50_000)),
    ("cancellation_kept_as_return", line(invoice_no="C800007", quantity=-1)),
    ("kept", line(invoice_no="800008", stock_code="20003")),
]


def test_each_step_counts_its_rows_in_order():
    raw = raw_frame([row for _, row in LABELLED])
    clean, ledger = TransactionCleaner().clean(raw)
    expected = Counter(label for label, _ in LABELLED)
    assert list(ledger.dropped) == STEPS
    assert ledger.dropped == {step: expected[step] for step in STEPS}
    assert (ledger.rows_in, ledger.rows_kept) == (len(LABELLED), expected["kept"])
    kept_invoices = [row[INVOICE_NO] for label, row in LABELLED
                     if label in ("kept", "cancellation_kept_as_return")]
    assert sorted(clean[INVOICE_NO]) == sorted(kept_invoices)


def test_output_layout_and_dtypes():
    clean, _ = TransactionCleaner().clean(raw_frame([row for _, row in LABELLED]))
    assert list(clean.columns) == CLEAN_COLUMNS
    assert clean[CUSTOMER_ID].dtype == np.int64 and clean[IS_RETURN].dtype == bool
    assert clean[INVOICE_DATE].dtype == "datetime64[us]"
    assert clean.index.equals(pd.RangeIndex(len(clean)))


@pytest.mark.parametrize(("param", "off", "step"), [
    ("drop_missing_customer", False, "missing_customer"),
    ("drop_bad_debt", False, "bad_debt"),
    ("non_product_codes", (), "non_product_code"),
    ("drop_non_positive_price", False, "non_positive_price"),
    ("drop_duplicates", False, "duplicate"),
    ("max_quantity", None, "quantity_outlier"),
])
def test_a_disabled_step_leaves_the_ledger_and_keeps_more(param, off, step):
    raw = raw_frame([row for _, row in LABELLED])
    clean_on, on = TransactionCleaner().clean(raw)
    clean_off, ledger = TransactionCleaner(**{param: off}).clean(raw)
    assert step not in ledger.dropped and on.dropped[step] > 0
    assert len(clean_off) > len(clean_on)


def test_missing_customers_kept_on_request_stay_nullable():
    raw = raw_frame([line(), line(invoice_no="800002", customer_id=None)])
    clean, ledger = TransactionCleaner(drop_missing_customer=False).clean(raw)
    assert clean[CUSTOMER_ID].dtype == "Int64" and clean[CUSTOMER_ID].isna().sum() == 1
    assert ledger.rows_kept == 2


def test_outlier_goes_with_its_cancellation_but_other_returns_stay():
    raw = raw_frame([
        line(invoice_no="800001", stock_code="20009", quantity=80_000),
        line(invoice_no="C800002", stock_code="20009", quantity=-80_000),
        line(invoice_no="800003", stock_code="20009", quantity=10),
        line(invoice_no="C800004", stock_code="20009", quantity=-10),
    ])
    clean, ledger = TransactionCleaner(max_quantity=10_000).clean(raw)
    assert ledger.dropped["quantity_outlier"] == 2
    assert clean[QUANTITY].tolist() == [10, -10]
    assert clean[IS_RETURN].tolist() == [False, True]


def test_returns_are_kept_aside_or_dropped():
    raw = raw_frame([line(), line(invoice_no="C800009", quantity=-1)])
    clean, ledger = TransactionCleaner().clean(raw)
    returns = clean[clean[IS_RETURN]]
    assert ledger.dropped["cancellation_kept_as_return"] == len(returns) == 1
    assert (returns[QUANTITY] < 0).all() and returns[INVOICE_NO].str.startswith("C").all()
    clean, ledger = TransactionCleaner(keep_returns=False).clean(raw)
    assert not clean[IS_RETURN].any() and ledger.dropped["cancellation_dropped"] == 1
    assert "cancellation_kept_as_return" not in ledger.dropped


def test_stock_codes_are_upper_cased_on_request():
    raw = raw_frame([line(stock_code="20001a"), line(invoice_no="800002", stock_code="20001A")])
    clean, _ = TransactionCleaner().clean(raw)
    assert clean[STOCK_CODE].nunique() == 1
    clean, _ = TransactionCleaner(uppercase_stock_codes=False).clean(raw)
    assert set(clean[STOCK_CODE]) == {"20001a", "20001A"}


def test_non_product_codes_match_ignoring_case():
    raw = raw_frame([line(stock_code="m"), line(stock_code="Post"), line(stock_code="20001")])
    _, ledger = TransactionCleaner(uppercase_stock_codes=False,
                                   non_product_codes=["M", "post"]).clean(raw)
    assert ledger.dropped["non_product_code"] == 2


def test_frame_is_ordered_by_date_stably():
    hours = [3, 1, 2, 1, 3]
    raw = raw_frame([line(invoice_no=f"80000{i}", invoice_date=DAY + pd.Timedelta(hours=h))
                     for i, h in enumerate(hours)])
    clean, _ = TransactionCleaner().clean(raw)
    expected = sorted(range(len(hours)), key=lambda i: hours[i])  # Python's sort is stable
    assert clean[INVOICE_NO].tolist() == [f"80000{i}" for i in expected]


def test_input_is_left_alone_and_missing_columns_are_reported():
    raw = raw_frame([line(stock_code="20001a")])
    before = raw.copy()
    TransactionCleaner().clean(raw)
    pd.testing.assert_frame_equal(raw, before)
    with pytest.raises(DataError, match="amount"):
        TransactionCleaner().clean(raw.drop(columns=AMOUNT))


def test_parameters_clone_and_hash_the_same_from_a_list():
    cleaner = TransactionCleaner(non_product_codes=list(NON_PRODUCT_CODES))
    assert stable_hash(clone(cleaner).get_params()) == stable_hash(TransactionCleaner().get_params())


# --- Property: the vectorised cleaner agrees with a plain row-by-row reading of its docstring


def reference(lines: list[dict], params: dict) -> tuple[Counter, list[dict], list[str]]:
    """Count per reason, the surviving lines and each line's reason, one line at a time."""
    p = {**TransactionCleaner().get_params(), **params}
    codes = {c.upper() for c in p["non_product_codes"]}
    reasons, kept, seen, per_line = Counter(), [], set(), []
    for row in lines:
        row = dict(row, stock_code=row["stock_code"].upper() if p["uppercase_stock_codes"]
                   else row["stock_code"])
        cancel, q = row["invoice_no"].startswith("C"), row["quantity"]
        key = tuple(row[c] for c in SOURCE_COLUMNS)
        if p["drop_missing_customer"] and row["customer_id"] is None:
            reason = "missing_customer"
        elif p["drop_bad_debt"] and (row["invoice_no"].startswith("A")
                                     or (row["description"] or "").lower() == "adjust bad debt"):
            reason = "bad_debt"
        elif row["stock_code"].upper() in codes:
            reason = "non_product_code"
        elif p["drop_non_positive_price"] and not row["unit_price"] > 0:
            reason = "non_positive_price"
        elif (q >= 0) if cancel else (q <= 0):
            reason = "wrong_quantity_sign"
        elif p["drop_duplicates"] and key in seen:
            reason = "duplicate"
        else:
            seen.add(key)
            if p["max_quantity"] is not None and abs(q) > p["max_quantity"]:
                reason = "quantity_outlier"
            elif cancel:
                reason = ("cancellation_kept_as_return" if p["keep_returns"]
                          else "cancellation_dropped")
            else:
                reason = "kept"
        reasons[reason] += 1
        per_line.append(reason)
        if reason == "kept" or reason == "cancellation_kept_as_return":
            kept.append(dict(row, is_return=cancel))
    return reasons, kept, per_line


lines_strategy = st.lists(st.fixed_dictionaries({
    "invoice_no": st.sampled_from(["900001", "900002", "C900003", "A900004"]),
    "stock_code": st.sampled_from(["20001", "20001a", "20001A", "POST", "m", "d"]),
    "description": st.sampled_from([None, "ITEM", "Adjust bad debt"]),
    "quantity": st.one_of(st.integers(-4, 4), st.sampled_from([-20_000, 20_000])),
    "invoice_date": st.sampled_from([DAY + pd.Timedelta(hours=h) for h in range(3)]),
    "unit_price": st.sampled_from([-1.0, 0.0, 0.5, 2.0]),
    "customer_id": st.sampled_from([None, 30001, 30002]),
    "country": st.sampled_from(["France", "EIRE"]),
}), max_size=25)
params_strategy = st.fixed_dictionaries({
    "drop_missing_customer": st.booleans(), "drop_bad_debt": st.booleans(),
    "non_product_codes": st.sampled_from([(), NON_PRODUCT_CODES, ["D"]]),
    "drop_duplicates": st.booleans(), "max_quantity": st.sampled_from([None, 3, 10_000]),
    "keep_returns": st.booleans(), "drop_non_positive_price": st.booleans(),
    "uppercase_stock_codes": st.booleans(),
})


@settings(max_examples=80, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(lines=lines_strategy, params=params_strategy)
def test_cleaner_matches_row_by_row_reference(lines, params):
    clean, ledger = TransactionCleaner(**params).clean(raw_frame(lines))
    reasons, kept, _ = reference(lines, params)
    assert ledger.rows_in == len(lines)
    assert ledger.rows_kept == reasons["kept"]
    assert ledger.dropped == {k: reasons[k] for k in ledger.dropped}
    assert sum(ledger.dropped.values()) + ledger.rows_kept == len(lines)
    expected = raw_frame(kept).assign(is_return=[r[IS_RETURN] for r in kept] or [])
    expected = expected.astype({IS_RETURN: bool}).sort_values(INVOICE_DATE, kind="stable",
                                                              ignore_index=True)
    if not expected[CUSTOMER_ID].hasnans:
        expected[CUSTOMER_ID] = expected[CUSTOMER_ID].astype("int64")
    pd.testing.assert_frame_equal(clean, expected[CLEAN_COLUMNS])
    purchases = clean[~clean[IS_RETURN]]
    assert (purchases[QUANTITY] > 0).all() and (clean[IS_RETURN] == clean[INVOICE_NO]
                                                .str.startswith("C")).all()


@settings(max_examples=80, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(lines=lines_strategy, params=params_strategy)
def test_removed_customers_match_the_reference(lines, params):
    removed = TransactionCleaner(**params).removed_customers(raw_frame(lines))
    _, _, per_line = reference(lines, params)
    order = [*STEPS, "cancellation_dropped"]
    expected = {}
    for customer in {row[CUSTOMER_ID] for row in lines} - {None}:
        mine = [r for row, r in zip(lines, per_line, strict=True) if row[CUSTOMER_ID] == customer]
        if "kept" not in mine:
            counts = Counter(mine)
            expected[customer] = (min(counts, key=lambda r: (-counts[r], order.index(r))), len(mine))
    got = {c: (r, n) for c, r, n in removed.itertuples(index=False)}
    assert got == expected
    assert removed[CUSTOMER_ID].is_monotonic_increasing


def test_removed_customers_name_the_main_reason():
    raw = raw_frame([
        line(customer_id=30001),                                        # buys: not removed
        line(customer_id=30002, stock_code="BANK CHARGES"),             # only a fee
        line(customer_id=30003, invoice_no="800003", quantity=80_000),  # only an outlier
        line(customer_id=30003, invoice_no="800004", unit_price=0.0),   # ... and a free line: tie
        line(customer_id=30004, invoice_no="C800005", quantity=-1),     # only a return
        line(customer_id=30005, stock_code="POST"), line(customer_id=30005, stock_code="POST",
                                                         invoice_no="800006"),
        line(customer_id=30005, invoice_no="800007", quantity=80_000),
        line(customer_id=None, invoice_no="800008"),                    # nobody's
    ])
    removed = TransactionCleaner().removed_customers(raw)
    assert list(removed.columns) == [CUSTOMER_ID, "reason", "lines"]
    assert removed.values.tolist() == [
        [30002, "non_product_code", 1], [30003, "non_positive_price", 2],
        [30004, "cancellation_kept_as_return", 1], [30005, "non_product_code", 3]]
    clean, _ = TransactionCleaner().clean(raw)
    buyers = set(clean.loc[~clean[IS_RETURN], CUSTOMER_ID])
    assert buyers | set(removed[CUSTOMER_ID]) == set(raw[CUSTOMER_ID].dropna())
    assert TransactionCleaner().removed_customers(raw_frame([line()])).empty


@pytest.mark.real_data
@pytest.mark.skipif(not os.environ.get("SEGMENTLAB_DATA"), reason="SEGMENTLAB_DATA is not set")
def test_real_file_cleaning_figures():
    from segmentlab.data.loading import OnlineRetailFile

    raw = OnlineRetailFile().read()
    clean, ledger = TransactionCleaner().clean(raw)
    assert ledger.rows_in == len(raw) and ledger.dropped["missing_customer"] == 135_080
    assert clean[IS_RETURN].sum() == ledger.dropped["cancellation_kept_as_return"]
    # The usual cleaning of the literature: no customer id, cancellations, price <= 0.
    usual = TransactionCleaner(non_product_codes=(), drop_duplicates=False, max_quantity=None,
                               uppercase_stock_codes=False, keep_returns=False)
    clean, ledger = usual.clean(raw)
    assert clean[CUSTOMER_ID].nunique() == 4_338
    assert ledger.rows_kept == 397_884
