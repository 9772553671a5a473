"""Reading Online Retail files in every supported format and layout, and the dataset cache."""

from __future__ import annotations

import gzip
import os
from datetime import datetime
from pathlib import Path

import numpy as np
import openpyxl
import pandas as pd
import pytest

from segmentlab.cache import file_hash
from segmentlab.data.cleaning import TransactionCleaner
from segmentlab.data.loading import LAYOUTS, OnlineRetailFile, load_dataset
from segmentlab.schema import (
    AMOUNT,
    CLEAN_COLUMNS,
    COUNTRY,
    CUSTOMER_ID,
    DESCRIPTION,
    INVOICE_DATE,
    INVOICE_NO,
    QUANTITY,
    RAW_COLUMNS,
    STOCK_CODE,
    UNIT_PRICE,
    DataError,
)

OR, OR2 = LAYOUTS["Online Retail"], LAYOUTS["Online Retail II"]

# Invented lines in the Online Retail shape: (invoice, code, description, quantity, date,
# price, customer, country). Customer None is a guest checkout.
ROWS = [
    ("700001", "10001A", "RED TEST MUG", 6, datetime(2010, 12, 1, 8, 5), 2.5, 20001, "France"),
    ("700001", "10002", "BLUE, TEST BOWL", 2, datetime(2010, 12, 1, 8, 5), 1.25, 20001, "France"),
    ("C700002", "10001A", "RED TEST MUG", -1, datetime(2010, 12, 13, 14, 30), 2.5, 20001,
     "France"),
    ("700003", "10003", None, 4, datetime(2011, 1, 2, 9, 0), 0.85, None, "United Kingdom"),
]


def csv_text(header=OR, rows=ROWS, date=lambda d: d.strftime("%Y-%m-%d %H:%M:%S")) -> str:
    def field(v):
        if v is None:
            return ""
        if isinstance(v, datetime):
            return date(v)
        v = str(v)
        return f'"{v}"' if "," in v else v

    return "\n".join([",".join(header)] + [",".join(field(v) for v in r) for r in rows]) + "\n"


def write(path: Path, text: str, encoding: str = "utf-8") -> str:
    data = text.encode(encoding)
    path.write_bytes(gzip.compress(data) if path.name.endswith(".gz") else data)
    return str(path)


def write_xlsx(path: Path, header=OR, rows=ROWS) -> str:
    book = openpyxl.Workbook()
    sheet = book.active
    sheet.append(list(header))
    for r in rows:
        # As the published workbook stores them: all-digit invoices as numbers, ids as floats.
        invoice = int(r[0]) if r[0].isdigit() else r[0]
        sheet.append([invoice, *r[1:6], None if r[6] is None else float(r[6]), r[7]])
    book.save(path)
    return str(path)


def write_parquet(path: Path, header=OR, rows=ROWS) -> str:
    frame = pd.DataFrame(rows, columns=header)
    frame[header[6]] = frame[header[6]].astype("float64")  # how pandas stores ids with gaps
    frame.to_parquet(path)
    return str(path)


def expected_frame() -> pd.DataFrame:
    frame = pd.DataFrame(ROWS, columns=RAW_COLUMNS[:-1])
    frame[INVOICE_DATE] = frame[INVOICE_DATE].astype("datetime64[us]")
    frame[CUSTOMER_ID] = frame[CUSTOMER_ID].astype("Int64")
    for col in [INVOICE_NO, STOCK_CODE, DESCRIPTION, COUNTRY]:
        frame[col] = frame[col].astype("str")
    frame[AMOUNT] = frame[QUANTITY] * frame[UNIT_PRICE]
    return frame


def message(path: str, **kwargs) -> str:
    with pytest.raises(DataError) as info:
        OnlineRetailFile(path, **kwargs).read()
    text = str(info.value)
    assert "\n" not in text and path in text
    return text


# --- Formats, layouts, encodings, dates


@pytest.mark.parametrize("header", [OR, OR2], ids=["online_retail", "online_retail_ii"])
@pytest.mark.parametrize("suffix", ["csv", "csv.gz", "xlsx", "parquet"])
def test_every_format_and_layout_reads_to_the_same_frame(tmp_path, header, suffix):
    path = tmp_path / f"data.{suffix}"
    if suffix == "xlsx":
        write_xlsx(path, header)
    elif suffix == "parquet":
        write_parquet(path, header)
    else:
        write(path, csv_text(header))
    raw = OnlineRetailFile(str(path)).read()
    assert list(raw.columns) == RAW_COLUMNS
    pd.testing.assert_frame_equal(raw, expected_frame())
    assert raw[INVOICE_NO].iloc[0] == "700001"  # text, never 700001.0


def test_gzip_is_detected_by_content_not_name(tmp_path):
    path = tmp_path / "export.dat"
    path.write_bytes(gzip.compress(csv_text().encode()))
    pd.testing.assert_frame_equal(OnlineRetailFile(str(path)).read(), expected_frame())


def test_column_order_and_header_spelling_do_not_matter(tmp_path):
    order = [7, 0, 3, 1, 6, 2, 5, 4]
    header = [" invoice_no ", "STOCKCODE", "description", "Quantity", "Invoice Date",
              "unit price", "Customer_ID", "country"]
    rows = [tuple(r[i] for i in order) for r in ROWS]
    path = write(tmp_path / "shuffled.csv", csv_text([header[i] for i in order], rows))
    pd.testing.assert_frame_equal(OnlineRetailFile(path).read(), expected_frame())


def test_codes_that_look_numeric_stay_text(tmp_path):
    rows = [("000123", "00456", "ZEROS", 1, ROWS[0][4], 1.0, 20001, "France")]
    raw = OnlineRetailFile(write(tmp_path / "z.csv", csv_text(rows=rows))).read()
    assert raw[INVOICE_NO].iloc[0] == "000123" and raw[STOCK_CODE].iloc[0] == "00456"


def test_latin1_pound_sign_is_decoded(tmp_path):
    rows = [("700009", "GIFT_1", "TEST VOUCHER £10.00", 1, ROWS[0][4], 8.33, None, "France")]
    path = write(tmp_path / "kaggle.csv", csv_text(rows=rows), encoding="latin-1")
    assert b"\xa3" in Path(path).read_bytes()
    assert OnlineRetailFile(path).read()[DESCRIPTION].iloc[0] == "TEST VOUCHER £10.00"


def test_utf8_with_byte_order_mark(tmp_path):
    path = write(tmp_path / "bom.csv", csv_text(), encoding="utf-8-sig")
    pd.testing.assert_frame_equal(OnlineRetailFile(path).read(), expected_frame())


def test_kaggle_month_day_year_dates(tmp_path):
    text = csv_text(date=lambda d: f"{d.month}/{d.day}/{d.year} {d.hour}:{d.minute:02d}")
    path = write(tmp_path / "kaggle.csv", text)
    assert "12/13/2010 14:30" in text
    pd.testing.assert_frame_equal(OnlineRetailFile(path).read(), expected_frame())


def test_customer_id_written_with_decimal_part(tmp_path):
    path = write(tmp_path / "f.csv", csv_text().replace(",20001,", ",20001.0,"))
    assert OnlineRetailFile(path).read()[CUSTOMER_ID].iloc[0] == 20001


def test_excel_serial_dates(tmp_path):
    frame = pd.DataFrame(ROWS, columns=OR)
    excel_epoch = pd.Timestamp("1899-12-30")
    frame["InvoiceDate"] = (frame["InvoiceDate"] - excel_epoch) / pd.Timedelta(days=1)
    frame.to_parquet(tmp_path / "serial.parquet")
    raw = OnlineRetailFile(str(tmp_path / "serial.parquet")).read()
    pd.testing.assert_series_equal(raw[INVOICE_DATE], expected_frame()[INVOICE_DATE])


def test_environment_variable_is_the_fallback(tmp_path, monkeypatch):
    path = write(tmp_path / "env.csv", csv_text())
    monkeypatch.setenv("SEGMENTLAB_DATA", path)
    source = OnlineRetailFile()
    assert source.describe() == path
    assert len(source.read()) == len(ROWS)
    monkeypatch.delenv("SEGMENTLAB_DATA")
    with pytest.raises(DataError, match="data.path=PATH.*SEGMENTLAB_DATA"):
        OnlineRetailFile()


def test_fingerprint_is_the_content_hash(tmp_path):
    path = write(tmp_path / "a.csv", csv_text())
    source = OnlineRetailFile(path)
    before = source.fingerprint()
    assert before == file_hash(path) and source.truth() is None
    write(tmp_path / "a.csv", csv_text(rows=ROWS[:2]))
    assert source.fingerprint() != before


def test_sheets_of_one_workbook_have_different_fingerprints(tmp_path):
    path = write_xlsx(tmp_path / "book.xlsx")
    assert OnlineRetailFile(path, sheet=0).fingerprint() != OnlineRetailFile(path, sheet=1).fingerprint()


# --- Bad input: one line naming the file, the column, the row and the value


def test_missing_file(tmp_path):
    assert "no such file" in message(str(tmp_path / "nope.csv"))


def test_truncated_gzip(tmp_path):
    data = gzip.compress((csv_text() * 50).encode())
    (tmp_path / "cut.csv.gz").write_bytes(data[: len(data) // 2])
    assert "cannot read" in message(str(tmp_path / "cut.csv.gz"))


def test_corrupt_workbook(tmp_path):
    (tmp_path / "bad.xlsx").write_bytes(b"PK\x03\x04 this is not a workbook")
    assert "cannot read" in message(str(tmp_path / "bad.xlsx"))


def test_wrong_delimiter_names_the_columns_found(tmp_path):
    path = write(tmp_path / "semi.csv", csv_text().replace(",", ";"))
    text = message(path)
    assert "missing column(s)" in text and "found columns: InvoiceNo;StockCode" in text
    assert "comma-separated" in text


@pytest.mark.parametrize("content", ["", "\n\n"], ids=["zero_bytes", "blank_lines"])
def test_empty_file(tmp_path, content):
    assert "empty" in message(write(tmp_path / "empty.csv", content))


def test_header_only(tmp_path):
    assert "no data rows" in message(write(tmp_path / "head.csv", csv_text(rows=[])))


def test_missing_columns_are_named_with_the_expected_layouts(tmp_path):
    header = [h for h in OR if h != "UnitPrice"]
    rows = [r[:5] + r[6:] for r in ROWS]
    text = message(write(tmp_path / "m.csv", csv_text(header, rows)))
    assert "missing column(s) UnitPrice" in text
    assert "Online Retail: InvoiceNo" in text and "Online Retail II: Invoice" in text


def test_extra_columns_are_named(tmp_path):
    rows = [(*r, "x") for r in ROWS]
    text = message(write(tmp_path / "x.csv", csv_text([*OR, "Notes"], rows)))
    assert "unexpected column(s) Notes" in text


def test_duplicated_header(tmp_path):
    rows = [(*r, 1) for r in ROWS]
    text = message(write(tmp_path / "d.csv", csv_text([*OR, "quantity"], rows)))
    assert "duplicated column name(s) Quantity, quantity" in text


def test_duplicated_header_in_workbook(tmp_path):
    book = openpyxl.Workbook()
    book.active.append([*OR, "Quantity"])
    book.active.append([*ROWS[0][:6], 20001, "France", 3])
    book.save(tmp_path / "d.xlsx")
    assert "duplicated column name(s) Quantity" in message(str(tmp_path / "d.xlsx"))


def bad_cell(tmp_path, header, column: int, value: str, row: int = 1) -> str:
    rows = [list(r) for r in ROWS]
    rows[row][column] = value
    return message(write(tmp_path / "bad.csv", csv_text(header, rows)))


@pytest.mark.parametrize(("header", "column", "value"), [
    (OR, 3, "six"), (OR, 3, "2.5"), (OR2, 5, "abc"), (OR, 5, ""), (OR, 4, "2010-13-45 08:00:00"),
    (OR, 4, "yesterday"), (OR, 6, "C17850"), (OR2, 6, "17850.5"), (OR, 0, ""),
    (OR, 3, "1" * 25), (OR, 5, "nan"),
])
def test_bad_cell_names_file_column_row_and_value(tmp_path, header, column, value):
    text = bad_cell(tmp_path, header, column, value)
    assert f"column '{header[column]}'" in text and "data row 2" in text
    assert (repr(value) if value else "empty value") in text
    assert "expected" in text


def test_first_bad_row_is_reported(tmp_path):
    rows = [list(r) for r in ROWS]
    rows[2][3], rows[3][3] = "many", "few"
    text = message(write(tmp_path / "b.csv", csv_text(rows=rows)))
    assert "data row 3" in text and "'many'" in text


# --- load_dataset and its cache


class CountingSource:
    """A source over an in-memory frame that counts how often it is read."""

    def __init__(self, raw: pd.DataFrame, truth: pd.Series | None = None):
        self.raw, self._truth, self.reads = raw, truth, 0

    def describe(self) -> str:
        return "counting"

    def fingerprint(self) -> str:
        return "fixed"

    def read(self) -> pd.DataFrame:
        self.reads += 1
        return self.raw

    def truth(self) -> pd.Series | None:
        return self._truth


@pytest.mark.parametrize("truth_name", ["segment", None])
def test_cache_hit_skips_read_and_keeps_dtypes(tmp_path, truth_name):
    truth = pd.Series([0, 1], index=pd.Index([20001, 20002], name=CUSTOMER_ID), name=truth_name)
    source = CountingSource(expected_frame(), truth)
    first = load_dataset(source, TransactionCleaner(), str(tmp_path))
    second = load_dataset(source, TransactionCleaner(), str(tmp_path))
    assert (first.cache_hit, second.cache_hit, source.reads) == (False, True, 1)
    assert list(second.transactions.columns) == CLEAN_COLUMNS
    pd.testing.assert_frame_equal(second.transactions, first.transactions)
    pd.testing.assert_series_equal(second.truth, truth)
    assert second.ledger == first.ledger
    assert (second.data_hash, second.source) == ("fixed", "counting")
    assert second.transactions[CUSTOMER_ID].dtype == np.int64


def test_cleaning_parameters_are_part_of_the_key(tmp_path):
    source = CountingSource(expected_frame())
    load_dataset(source, TransactionCleaner(), str(tmp_path))
    other = load_dataset(source, TransactionCleaner(keep_returns=False), str(tmp_path))
    assert not other.cache_hit and source.reads == 2


def test_corrupt_cache_entry_is_not_trusted(tmp_path):
    source = CountingSource(expected_frame())
    first = load_dataset(source, TransactionCleaner(), str(tmp_path))
    for parquet in tmp_path.glob("*.parquet"):
        parquet.write_bytes(parquet.read_bytes()[:-20] + b"\0" * 20)
    again = load_dataset(source, TransactionCleaner(), str(tmp_path))
    assert not again.cache_hit and source.reads == 2
    pd.testing.assert_frame_equal(again.transactions, first.transactions)
    assert load_dataset(source, TransactionCleaner(), str(tmp_path)).cache_hit


def test_no_cache_dir_always_reads(tmp_path):
    source = CountingSource(expected_frame())
    for _ in range(2):
        assert not load_dataset(source, TransactionCleaner(), None).cache_hit
    assert source.reads == 2


def test_file_source_end_to_end(tmp_path):
    path = write(tmp_path / "f.csv.gz", csv_text())
    dataset = load_dataset(OnlineRetailFile(path), TransactionCleaner(), str(tmp_path / "c"))
    assert dataset.data_hash == file_hash(path) and dataset.source == path
    assert dataset.purchases[CUSTOMER_ID].tolist() == [20001, 20001]
    assert dataset.returns[QUANTITY].tolist() == [-1]


@pytest.mark.real_data
@pytest.mark.skipif(not os.environ.get("SEGMENTLAB_DATA"), reason="SEGMENTLAB_DATA is not set")
def test_real_file_matches_published_figures():
    raw = OnlineRetailFile().read()
    assert len(raw) == 541_909
    assert raw[CUSTOMER_ID].nunique() == 4_372
    assert raw[AMOUNT].sum() == pytest.approx(9_747_747.93, abs=0.01)
    assert raw[INVOICE_NO].nunique() == 25_900
    assert raw[DESCRIPTION].isna().sum() == 1_454
