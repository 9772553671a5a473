"""The DuckDB path equals the pandas path: same ledger, same RFM and behaviour features.

Each test writes a file to ``tmp_path``, reads it both ways (``OnlineRetailFile`` +
``TransactionCleaner`` + the feature sets, and `OutOfCoreLines`) and compares. The synthetic
lines get extra noise planted for every cleaning step, including the cases where SQL's text
functions differ from Python's.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.csv as pv
import pyarrow.parquet as pq
import pytest

from segmentlab.data.cleaning import TransactionCleaner
from segmentlab.data.loading import LAYOUTS, OnlineRetailFile
from segmentlab.data.outofcore import OutOfCoreLines, choose_engine, estimate_lines
from segmentlab.data.synthetic import SyntheticTransactions
from segmentlab.features.behaviour import BehaviourFeatures
from segmentlab.features.rfm import RFMFeatures
from segmentlab.schema import SOURCE_COLUMNS, DataError

ROOT = Path(__file__).resolve().parents[1]


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


def write(frame: pd.DataFrame, path: Path, layout: str = "Online Retail") -> Path:
    """``frame`` (SOURCE_COLUMNS) as Parquet or CSV (gzip when named .gz) with ``layout`` headers."""
    table = pa.Table.from_pandas(frame.set_axis(LAYOUTS[layout], axis=1), preserve_index=False)
    if path.suffix == ".parquet":
        pq.write_table(table, path)
        return path
    date = LAYOUTS[layout][SOURCE_COLUMNS.index("invoice_date")]
    text = pc.strftime(pc.cast(table.column(date), pa.timestamp("s")), "%Y-%m-%d %H:%M:%S")
    table = table.set_column(table.column_names.index(date), date, text)
    if path.suffix == ".gz":
        with pa.CompressedOutputStream(str(path), "gzip") as out:
            pv.write_csv(table, out)
    else:
        pv.write_csv(table, path)
    return path


def both_ways(path: Path, cleaner=None, rfm=None, behaviour=None):
    """(ledger, rfm, behaviour, fitted behaviour) from pandas, then from DuckDB."""
    cleaner = cleaner or TransactionCleaner()
    clean, ledger = cleaner.clean(OnlineRetailFile(str(path)).read())
    rfm, behaviour = rfm or RFMFeatures(), behaviour or BehaviourFeatures()
    pandas_fit = behaviour.__class__(**behaviour.get_params())
    expected = (ledger, rfm.__class__(**rfm.get_params()).fit_transform(clean),
                pandas_fit.fit_transform(clean), pandas_fit)
    with OutOfCoreLines(str(path), cleaner=cleaner, memory_limit="1GB", threads=1) as lines:
        duck_fit = behaviour.__class__(**behaviour.get_params())
        got = (lines.clean(), lines.fit_transform(rfm.__class__(**rfm.get_params())),
               lines.fit_transform(duck_fit), duck_fit)
    return expected, got


def assert_same(expected, got) -> None:
    assert got[0] == expected[0]
    assert list(got[0].dropped) == list(expected[0].dropped)  # same steps, same order
    pd.testing.assert_frame_equal(got[1], expected[1], check_exact=False, rtol=1e-12)
    pd.testing.assert_frame_equal(got[2], expected[2], check_exact=False, rtol=1e-9, atol=1e-12)
    assert got[3].snapshot_date_ == expected[3].snapshot_date_
    assert got[3].countries_ == expected[3].countries_
    pd.testing.assert_series_equal(got[3].country_counts_, expected[3].country_counts_)


@pytest.mark.parametrize("name,layout", [("lines.parquet", "Online Retail"),
                                         ("lines.csv.gz", "Online Retail II"),
                                         ("lines.csv", "Online Retail")])
def test_same_ledger_and_features_as_pandas(tmp_path, name, layout):
    path = write(noisy_lines(), tmp_path / name, layout)
    expected, got = both_ways(path)
    assert_same(expected, got)
    dropped = got[0].dropped  # every step had something to do
    assert all(dropped[step] > 0 for step in ["missing_customer", "bad_debt", "non_product_code",
                                              "non_positive_price", "wrong_quantity_sign",
                                              "duplicate", "quantity_outlier"])


def test_same_with_every_switch_turned(tmp_path):
    path = write(noisy_lines(seed=5), tmp_path / "lines.parquet")
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
    frame = noisy_lines()
    path = write(frame, tmp_path / "lines.parquet")
    with OutOfCoreLines(str(path)) as lines:
        assert lines.clean().dropped["quantity_outlier"] == 2  # the order and its cancellation
        with pytest.raises(DataError, match="TfidfCategoryFeatures has no out-of-core version"):
            from segmentlab.features.tfidf import TfidfCategoryFeatures

            lines.fit_transform(TfidfCategoryFeatures())


def test_day_first_dates_are_read_as_pandas_reads_them(tmp_path):
    frame = noisy_lines()
    # The first dates fit month/day too; a later one only fits day/month.
    path = tmp_path / "lines.csv"
    write(frame, path)
    table = pv.read_csv(path, convert_options=pv.ConvertOptions(
        column_types={"InvoiceDate": pa.string()}))
    dates = pc.strftime(pc.strptime(table.column("InvoiceDate"), "%Y-%m-%d %H:%M:%S", "s"),
                        "%d/%m/%Y %H:%M")
    pv.write_csv(table.set_column(table.column_names.index("InvoiceDate"), "InvoiceDate", dates),
                 path)
    assert str(table.column("InvoiceDate")[0]).startswith("2010-12-0")  # ambiguous day
    expected, got = both_ways(path)
    assert_same(expected, got)


@pytest.mark.parametrize("mutate,match", [
    (lambda f: f.drop(columns=["Quantity"]), "missing column"),
    (lambda f: f.assign(Quantity=f["Quantity"].astype(str).where(f.index != 7, "six")),
     "column 'Quantity', data row 8: 'six' is not a number"),
    (lambda f: f.assign(UnitPrice=f["UnitPrice"].astype(str).where(f.index != 3, "2,55")),
     "column 'UnitPrice', data row 4"),
    (lambda f: f.assign(InvoiceDate=f["InvoiceDate"].where(f.index != 5, "yesterday")),
     "column 'InvoiceDate', data row 6: 'yesterday' is not a date"),
    (lambda f: f.assign(StockCode=f["StockCode"].where(f.index != 9, None)),
     "column 'StockCode', data row 10: empty value"),
])
def test_bad_input_gives_the_pandas_message(tmp_path, mutate, match):
    frame = noisy_lines().set_axis(LAYOUTS["Online Retail"], axis=1)
    frame["InvoiceDate"] = frame["InvoiceDate"].dt.strftime("%Y-%m-%d %H:%M:%S")
    path = tmp_path / "bad.csv"
    mutate(frame).to_csv(path, index=False)
    with pytest.raises(DataError) as pandas_error:
        OnlineRetailFile(str(path)).read()
    with pytest.raises(DataError, match=match) as duck_error, OutOfCoreLines(str(path)) as lines:
        lines.clean()
    assert str(duck_error.value) == str(pandas_error.value)
    assert "\n" not in str(duck_error.value)


def test_parquet_bytes_named_csv_give_the_pandas_message(tmp_path):
    path = tmp_path / "lines.csv"
    write(noisy_lines(), tmp_path / "lines.parquet").rename(path)
    with pytest.raises(DataError) as pandas_error:
        OnlineRetailFile(str(path)).read()
    with pytest.raises(DataError, match="binary data in the first line") as duck_error, \
            OutOfCoreLines(str(path)) as lines:
        lines.clean()
    assert str(duck_error.value) == str(pandas_error.value)


def test_blank_trailing_column(tmp_path):
    frame = noisy_lines().set_axis(LAYOUTS["Online Retail"], axis=1)
    frame[""] = None  # a trailing comma on every line: dropped, as pandas drops it
    path = tmp_path / "trailing.csv"
    frame.to_csv(path, index=False)
    assert_same(*both_ways(path))
    frame.loc[4, ""] = "x"  # a value under the blank header: the pandas message
    frame.to_csv(path, index=False)
    with pytest.raises(DataError) as pandas_error:
        OnlineRetailFile(str(path)).read()
    with pytest.raises(DataError, match="column 9, data row 5: 'x' stands under a blank") as \
            duck_error, OutOfCoreLines(str(path)) as lines:
        lines.clean()
    assert str(duck_error.value) == str(pandas_error.value)


def test_nothing_left_after_cleaning_is_one_line(tmp_path):
    frame = noisy_lines().assign(customer_id=pd.NA)
    path = write(frame, tmp_path / "guests.parquet")
    with pytest.raises(DataError, match="no purchases left after cleaning.*missing_customer"), \
            OutOfCoreLines(str(path)) as lines:
        lines.clean()


def test_engine_choice_counts_lines(tmp_path):
    frame = noisy_lines()
    parquet = write(frame, tmp_path / "lines.parquet")
    csv = write(frame, tmp_path / "lines.csv.gz")
    assert estimate_lines(str(parquet)) == len(frame)
    assert abs(estimate_lines(str(csv)) - len(frame)) < 0.05 * len(frame)
    assert choose_engine(str(parquet)) == "pandas"
    assert choose_engine(str(parquet), max_pandas_lines=1000) == "duckdb"
    assert choose_engine(str(csv), engine="duckdb") == "duckdb"
    with pytest.raises(ValueError, match="data.engine must be one of"):
        choose_engine(str(csv), engine="spark")


def test_benchmark_quick_mode_prints_its_table():
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(filter(None, [
        str(ROOT / "src"), os.environ.get("PYTHONPATH")]))}
    done = subprocess.run([sys.executable, str(ROOT / "benchmarks" / "outofcore.py"), "--quick"],
                          capture_output=True, text=True, env=env, timeout=600)
    assert done.returncode == 0, done.stderr[-2000:]
    header, _, row, *_ = done.stdout.splitlines()
    assert header.split()[:5] == ["lines", "customers", "read+clean", "rfm", "behaviour"]
    assert int(row.split()[0].replace(",", "")) > 10_000 and np.isfinite(float(row.split()[5]))


@pytest.mark.real_data
@pytest.mark.skipif(not os.environ.get("SEGMENTLAB_DATA"), reason="SEGMENTLAB_DATA is not set")
def test_real_file_same_both_ways():
    expected, got = both_ways(Path(os.environ["SEGMENTLAB_DATA"]))
    assert_same(expected, got)
    assert got[0].dropped["duplicate"] == 5_220 and got[0].rows_kept == 391_148
