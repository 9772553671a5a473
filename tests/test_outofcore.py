"""The DuckDB path equals the pandas path: same ledger, notes, features, summary and messages.

Each test writes a file to ``tmp_path``, reads it both ways (``OnlineRetailFile`` +
``TransactionCleaner`` + the feature sets + ``customer_summary``, and `OutOfCoreLines`) and
compares. The synthetic lines get extra noise planted for every cleaning step, including the
cases where SQL's text functions differ from Python's; bad files must give the pandas reader's
own one-line message, word for word.
"""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from segmentlab.customers import customer_summary
from segmentlab.data.cleaning import TransactionCleaner
from segmentlab.data.loading import LAYOUTS, OnlineRetailFile, load_dataset
from segmentlab.data.outofcore import OutOfCoreLines
from segmentlab.data.synthetic import SyntheticTransactions
from segmentlab.features.behaviour import BehaviourFeatures
from segmentlab.features.rfm import RFMFeatures
from segmentlab.schema import SOURCE_COLUMNS, DataError


def noisy_lines(seed: int = 3) -> pd.DataFrame:
    """Synthetic lines plus a line or more for every cleaning step and text quirk."""
    raw = SyntheticTransactions(n_customers=150, n_lines=12_000, seed=seed).read()
    raw = raw[SOURCE_COLUMNS].copy()
    first = raw[raw["customer_id"].notna() & ~raw["invoice_no"].str.startswith("C")].iloc[0]

    def line(**changes):
        return {**first.to_dict(), **changes}

    extra = [
        line(invoice_no="A900001", description="Adjust bad debt", unit_price=-11.0),
        line(description="\xa0ADJUST BAD DEBT\t"),              # bad debt only as Python strips
        line(description="adjust bad debt £"),                 # not bad debt: £ stays
        line(stock_code="post"), line(stock_code="Post "),      # non-product, and not (space)
        line(stock_code="ß1"), line(stock_code="SS1"),  # pandas (Arrow) upper keeps ß: distinct
        line(stock_code=first["stock_code"].lower()),           # duplicate of `first` upper-cased
        line(unit_price=0.0), line(unit_price=-0.0, quantity=3),
        line(quantity=0), line(invoice_no="C900002", quantity=5),  # wrong signs
        line(quantity=20_000), line(invoice_no="C900003", quantity=-20_000),  # outlier pair
        line(description=None), line(description=None),        # missing equals missing
        line(country=None), line(country="Unspecified"),        # one country for features
        line(customer_id=pd.NA),
    ]
    return pd.concat([raw, pd.DataFrame(extra).astype(raw.dtypes.to_dict())], ignore_index=True)


def as_file(frame: pd.DataFrame, path: Path, layout: str = "Online Retail",
            date_format: str = "%Y-%m-%d %H:%M:%S") -> Path:
    """``frame`` (SOURCE_COLUMNS) as Parquet (typed), or CSV (gzip when named .gz) with text dates."""
    frame = frame.set_axis(LAYOUTS[layout], axis=1)
    if path.suffix == ".parquet":
        frame.to_parquet(path, index=False)
        return path
    date = LAYOUTS[layout][SOURCE_COLUMNS.index("invoice_date")]
    frame[date] = frame[date].dt.strftime(date_format)
    frame.to_csv(path, index=False, compression="gzip" if path.suffix == ".gz" else None)
    return path


def both_ways(path: Path, cleaner=None, rfm=None, behaviour=None, **options):
    """(ledger, notes, rfm, behaviour, summary, fitted behaviour): pandas first, then DuckDB."""
    cleaner = cleaner or TransactionCleaner()
    rfm, behaviour = rfm or RFMFeatures(), behaviour or BehaviourFeatures()
    dataset = load_dataset(OnlineRetailFile(str(path), **options), cleaner, cache_dir=None)
    clean = dataset.transactions
    pandas_fit = behaviour.__class__(**behaviour.get_params())
    expected = (dataset.ledger, dataset.notes, rfm.__class__(**rfm.get_params()).fit_transform(clean),
                pandas_fit.fit_transform(clean), customer_summary(clean), pandas_fit)
    source = OnlineRetailFile(str(path), engine="duckdb", **options)
    with OutOfCoreLines(source, cleaner=cleaner, memory_limit="1GB", threads=1) as lines:
        duck_fit = behaviour.__class__(**behaviour.get_params())
        got = (lines.clean(), lines.notes_, lines.fit_transform(rfm.__class__(**rfm.get_params())),
               lines.fit_transform(duck_fit), lines.customer_summary(), duck_fit)
    return expected, got


def assert_same(expected, got) -> None:
    assert got[0] == expected[0]
    assert list(got[0].dropped) == list(expected[0].dropped)  # same steps, same order
    assert got[1] == expected[1]
    pd.testing.assert_frame_equal(got[2], expected[2], check_exact=False, rtol=1e-12)
    pd.testing.assert_frame_equal(got[3], expected[3], check_exact=False, rtol=1e-9, atol=1e-12)
    pd.testing.assert_frame_equal(got[4], expected[4], check_exact=False, rtol=1e-12,
                                  check_dtype=False)
    assert got[5].snapshot_date_ == expected[5].snapshot_date_
    assert got[5].countries_ == expected[5].countries_
    pd.testing.assert_series_equal(got[5].country_counts_, expected[5].country_counts_)


def same_error(path: Path, match: str, **options) -> str:
    """The DuckDB engine's message for a bad file, checked equal to the pandas reader's."""
    with pytest.raises(DataError) as pandas_error:
        load_dataset(OnlineRetailFile(str(path), **options), TransactionCleaner(), cache_dir=None)
    with pytest.raises(DataError, match=match) as duck_error, \
            OutOfCoreLines(OnlineRetailFile(str(path), engine="duckdb", **options)) as lines:
        lines.clean()
    assert str(duck_error.value) == str(pandas_error.value)
    assert "\n" not in str(duck_error.value)
    return str(duck_error.value)


@pytest.mark.parametrize("name,layout", [("lines.parquet", "Online Retail"),
                                         ("lines.csv.gz", "Online Retail II"),
                                         ("lines.csv", "Online Retail")])
def test_same_ledger_notes_features_and_summary_as_pandas(tmp_path, name, layout):
    path = as_file(noisy_lines(), tmp_path / name, layout)
    expected, got = both_ways(path)
    assert_same(expected, got)
    dropped = got[0].dropped  # every step had something to do
    assert all(dropped[step] > 0 for step in ["missing_customer", "bad_debt", "non_product_code",
                                              "non_positive_price", "wrong_quantity_sign",
                                              "duplicate", "quantity_outlier"])
    assert got[1][0].startswith(f"read {name}: ")


def test_same_with_every_switch_turned(tmp_path):
    path = as_file(noisy_lines(seed=5), tmp_path / "lines.parquet")
    cleaner = TransactionCleaner(drop_bad_debt=False, non_product_codes=(),
                                 drop_duplicates=False, max_quantity=None, keep_returns=False,
                                 drop_non_positive_price=False, uppercase_stock_codes=False)
    behaviour = BehaviourFeatures(top_countries=2, hour_edges=(10, 13, 16), weekday_detail=False,
                                  one_off_gap="zero", log=False)
    expected, got = both_ways(path, cleaner, RFMFeatures(log=False), behaviour)
    assert_same(expected, got)
    assert list(got[0].dropped) == ["missing_customer", "wrong_quantity_sign",
                                    "cancellation_dropped"]


def test_quantity_outlier_takes_its_cancellation_along(tmp_path):
    path = as_file(noisy_lines(), tmp_path / "lines.parquet")
    with OutOfCoreLines(str(path)) as lines:
        assert lines.clean().dropped["quantity_outlier"] == 2  # the order and its cancellation
        with pytest.raises(DataError, match="TfidfCategoryFeatures has no out-of-core version"):
            from segmentlab.features.tfidf import TfidfCategoryFeatures

            lines.fit_transform(TfidfCategoryFeatures())


@pytest.mark.parametrize("date_format", ["%d/%m/%Y %H:%M", "%m/%d/%y %I:%M %p", "%d.%m.%Y %H:%M:%S"])
def test_text_dates_are_detected_as_pandas_detects_them(tmp_path, date_format):
    frame = noisy_lines()
    assert frame["invoice_date"].iloc[0].day <= 12  # the first dates read both ways
    path = as_file(frame, tmp_path / "lines.csv", date_format=date_format)
    assert_same(*both_ways(path))


def test_ambiguous_dates_ask_the_pandas_question_and_the_options_settle_it(tmp_path):
    frame = noisy_lines()
    frame = frame[frame["invoice_date"].dt.day <= 12]  # every date reads day- and month-first
    path = as_file(frame, tmp_path / "lines.csv", date_format="%d/%m/%Y %H:%M")
    message = same_error(path, "read both day-first .* and month-first")
    assert "data.dayfirst=true" in message
    assert_same(*both_ways(path, dayfirst=True))
    assert_same(*both_ways(path, date_format="%m/%d/%Y %H:%M"))


def text_frame() -> pd.DataFrame:
    frame = noisy_lines().set_axis(LAYOUTS["Online Retail"], axis=1)
    frame["InvoiceDate"] = frame["InvoiceDate"].dt.strftime("%Y-%m-%d %H:%M:%S")
    return frame.astype({"Quantity": str, "UnitPrice": str, "CustomerID": "Int64"}).astype(
        {"CustomerID": str}).replace({"CustomerID": {"<NA>": None}})


@pytest.mark.parametrize("column,row,value,match", [
    ("Quantity", 7, "six", "column 'Quantity', data row 8: 'six' is not a number"),
    ("Quantity", 8, "2.5", "column 'Quantity', data row 9: '2.5' is not a whole number"),
    ("UnitPrice", 3, "2,55", "column 'UnitPrice', data row 4"),
    ("UnitPrice", 4, "inf", "column 'UnitPrice', data row 5: 'inf' is not a finite number"),
    ("CustomerID", 6, "1e300", "column 'CustomerID', data row 7: '1e300' is out of range"),
    ("InvoiceDate", 5, "yesterday", "column 'InvoiceDate', data row 6: 'yesterday' is not a date"),
    ("InvoiceDate", 9, "2099-01-01 10:00:00", "data row 10: '2099-01-01 10:00:00' is in the future"),
    ("InvoiceDate", 2, "1989-12-31 10:00:00", "data row 3: '1989-12-31 10:00:00' is before 1990"),
    ("InvoiceDate", 4, None, "column 'InvoiceDate', data row 5: empty value"),
    ("StockCode", 9, None, "column 'StockCode', data row 10: empty value"),
])
def test_a_bad_cell_gives_the_pandas_message(tmp_path, column, row, value, match):
    frame = text_frame()
    frame.loc[row, column] = value
    path = tmp_path / "bad.csv"
    frame.to_csv(path, index=False)
    same_error(path, match)


def test_numbers_written_otherwise_are_read_by_the_loader(tmp_path):
    frame = text_frame()
    known = frame["CustomerID"].notna()
    frame.loc[known, "CustomerID"] = frame.loc[known, "CustomerID"] + ".0"  # as the Kaggle CSV
    frame.loc[::7, "UnitPrice"] = " " + frame.loc[::7, "UnitPrice"]
    quantity = frame.loc[::5, "Quantity"]
    frame.loc[::5, "Quantity"] = quantity.where(quantity.str.startswith("-"), "+" + quantity)
    frame.loc[1, "UnitPrice"] = ".5"
    path = tmp_path / "written.csv"
    frame.to_csv(path, index=False)
    assert_same(*both_ways(path))


@pytest.mark.parametrize("change,match", [
    (lambda f: f.drop(columns=["Quantity"]), "missing column"),
    (lambda f: f.assign(Quantity=f["Quantity"].where(f.index != 3, 2.5)), "data row 4: 2.5 is not a whole"),
    (lambda f: f.assign(UnitPrice=f["UnitPrice"].where(f.index != 5, np.nan)),
     "column 'UnitPrice', data row 6"),
    (lambda f: f.assign(InvoiceDate=f["InvoiceDate"] + pd.Timedelta(nanoseconds=1)), "InvoiceDate"),
    (lambda f: f.iloc[:0], "the file has a header but no data rows"),
])
def test_a_bad_typed_parquet_gives_the_pandas_message(tmp_path, change, match):
    frame = change(noisy_lines().set_axis(LAYOUTS["Online Retail"], axis=1))
    path = tmp_path / "bad.parquet"
    pq.write_table(pa.Table.from_pandas(frame, preserve_index=False), path)
    same_error(path, match)


def test_lines_that_are_not_utf8_are_decoded_as_pandas_decodes_them(tmp_path):
    path = as_file(noisy_lines(), tmp_path / "lines.csv")
    text = path.read_bytes().split(b"\n")
    for i in (5, 6, 900):  # a Latin-1 pound sign in three lines; the others stay UTF-8
        text[i] = text[i].replace(b",United Kingdom", b",United Kingdom \xa3")
    text[10] = text[10].replace(b",United Kingdom", b",United Kingdom \xc2\xa3")
    path.write_bytes(b"\n".join(text))
    expected, got = both_ways(path)
    assert_same(expected, got)
    assert "3 lines were not valid UTF-8" in got[1][-1] and "(first: line 6)" in got[1][-1]


def test_what_only_pandas_reads_is_refused_in_one_line(tmp_path):
    path = tmp_path / "wide.csv"
    path.write_bytes(as_file(noisy_lines(), tmp_path / "lines.csv").read_text().encode("utf-16"))
    with pytest.raises(DataError, match="UTF-16-LE text is read by the pandas engine only; "
                                        "use data.engine=pandas"), OutOfCoreLines(str(path)) as lines:
        lines.clean()
    two = OnlineRetailFile([str(tmp_path / "lines.csv"), str(tmp_path / "lines.csv")])
    with pytest.raises(DataError, match="several files are read by data.engine=pandas"), \
            OutOfCoreLines(two) as lines:
        lines.clean()


def test_file_errors_give_the_pandas_message(tmp_path):
    as_file(noisy_lines(), tmp_path / "lines.parquet").rename(tmp_path / "parquet.csv")
    same_error(tmp_path / "parquet.csv", "binary data in the first line")
    (tmp_path / "empty.csv").write_text("")
    same_error(tmp_path / "empty.csv", "the file is empty")
    same_error(tmp_path / "absent.csv", "no such file")
    ragged = as_file(noisy_lines(), tmp_path / "ragged.csv").read_text().split("\n")
    ragged[4] += ",extra"
    (tmp_path / "ragged.csv").write_text("\n".join(ragged))
    same_error(tmp_path / "ragged.csv", "a line has 9 fields where the header has 8")


def test_blank_trailing_column(tmp_path):
    frame = noisy_lines().set_axis(LAYOUTS["Online Retail"], axis=1)
    frame[""] = None  # a trailing comma on every line: dropped, as pandas drops it
    path = tmp_path / "trailing.csv"
    frame.to_csv(path, index=False)
    assert_same(*both_ways(path))
    frame.loc[4, ""] = "x"  # a value under the blank header: the pandas message
    frame.to_csv(path, index=False)
    same_error(path, "column 9, data row 5: 'x' stands under a blank header")


def test_nothing_left_after_cleaning_is_one_line(tmp_path):
    path = as_file(noisy_lines().assign(customer_id=pd.NA), tmp_path / "guests.parquet")
    same_error(path, "no purchases left after cleaning.*missing_customer")


@pytest.mark.real_data
@pytest.mark.skipif(not os.environ.get("SEGMENTLAB_DATA"), reason="SEGMENTLAB_DATA is not set")
def test_real_file_same_both_ways():
    expected, got = both_ways(Path(os.environ["SEGMENTLAB_DATA"]))
    assert_same(expected, got)
    assert got[0].dropped["duplicate"] == 5_220 and got[0].rows_kept == 391_148
