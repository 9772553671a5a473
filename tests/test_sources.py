"""Several files and workbook sheets as one history; dates that are never guessed; all-text
Parquet. Every file is made here (tmp_path); the real-data tests build theirs from the shared file."""

from __future__ import annotations

from datetime import datetime
from pathlib import Path

import openpyxl
import pandas as pd
import pyarrow as pa
import pytest
from hydra import compose, initialize_config_dir

from segmentlab.cache import file_hash
from segmentlab.config import build
from segmentlab.data.cleaning import TransactionCleaner
from segmentlab.data.loading import LAYOUTS, OnlineRetailFile, load_dataset
from segmentlab.data.textfiles import decode_text
from segmentlab.schema import CUSTOMER_ID, INVOICE_DATE, INVOICE_NO, STOCK_CODE, DataError
from tests.conftest import CONFIGS, real_data_path
from tests.test_bad_inputs import csv_text, line, write

HEADER = LAYOUTS["Online Retail"]


def dated(when: str, code: str, invoice: str = "700001", **changes: str) -> list[str]:
    return line(date=when, code=code, invoice=invoice, **changes)


# Two releases of one shop's lines: A covers January and early February, B early February and
# March. They share a3 once and a4 (A holds a4 twice, an exact repeat the cleaner must still see).
A = [dated("2011-01-03 10:00:00", "1"), dated("2011-01-20 11:00:00", "2"),
     dated("2011-02-07 12:00:00", "3"), dated("2011-02-10 12:00:00", "4"),
     dated("2011-02-10 12:00:00", "4")]
B = [dated("2011-02-07 12:00:00", "3"), dated("2011-02-10 12:00:00", "4"),
     dated("2011-02-10 12:00:00", "4"), dated("2011-02-10 12:00:00", "4"),
     dated("2011-03-01 09:00:00", "5"), dated("2011-03-15 09:30:00", "6")]


def message(source: OnlineRetailFile) -> str:
    with pytest.raises(DataError) as info:
        source.read()
    text = str(info.value)
    assert "\n" not in text
    return text


# --- Several files: one history, shared lines counted once


def test_lines_shared_by_two_files_are_counted_once(tmp_path):
    a, b = write(tmp_path / "a.csv", csv_text(A)), write(tmp_path / "b.csv", csv_text(B))
    source = OnlineRetailFile([str(b), str(a)])  # given out of time order
    raw = source.read()
    # a3 once, a4 as often as the part holding it most often (B: three times), then B's own.
    assert raw[STOCK_CODE].tolist() == ["1", "2", "3", "4", "4", "4", "5", "6"]
    assert source.reading_.overlap_duplicate == 3
    assert [p.name for p in source.reading_.parts] == ["a.csv", "b.csv"]  # time order
    assert source.reading_.notes()[0] == "read a.csv: 5 lines, 2011-01-03 … 2011-02-10"
    dataset = load_dataset(OnlineRetailFile([str(a), str(b)]), TransactionCleaner(), None)
    ledger = dataset.ledger
    assert list(ledger.dropped)[0] == "overlap_duplicate" and ledger.rows_in == 11
    assert ledger.dropped["overlap_duplicate"] == 3 and ledger.dropped["duplicate"] == 2
    assert ledger.rows_kept == 6 and len(dataset.transactions) == 6
    assert dataset.notes[:2] == ("read a.csv: 5 lines, 2011-01-03 … 2011-02-10",
                                 "read b.csv: 6 lines, 2011-02-07 … 2011-03-15")


def test_the_same_file_twice_adds_nothing(tmp_path):
    a = str(write(tmp_path / "a.csv", csv_text(A)))
    once = OnlineRetailFile(a).read()
    twice = OnlineRetailFile([a, a])
    pd.testing.assert_frame_equal(twice.read(), once)
    assert twice.reading_.overlap_duplicate == len(A)


def test_lines_differing_in_one_value_are_both_kept(tmp_path):
    a = write(tmp_path / "a.csv", csv_text(A[:2]))
    b = write(tmp_path / "b.csv", csv_text([dated("2011-01-20 11:00:00", "2", price="2.55")]))
    source = OnlineRetailFile([str(a), str(b)])
    assert len(source.read()) == 3 and source.reading_.overlap_duplicate == 0


def test_files_of_different_formats_and_layouts_join(tmp_path):
    a = write(tmp_path / "a.csv.gz", csv_text(A))
    frame = pd.DataFrame(B, columns=LAYOUTS["Online Retail II"])
    frame["Quantity"] = frame["Quantity"].astype(int)
    frame["InvoiceDate"] = pd.to_datetime(frame["InvoiceDate"])
    frame.to_parquet(tmp_path / "b.parquet")
    source = OnlineRetailFile([str(a), str(tmp_path / "b.parquet")])
    assert len(source.read()) == 8 and source.reading_.overlap_duplicate == 3


def test_fingerprint_covers_every_file_and_option(tmp_path):
    a, b = str(write(tmp_path / "a.csv", csv_text(A))), str(write(tmp_path / "b.csv", csv_text(B)))
    both = OnlineRetailFile([a, b]).fingerprint()
    assert OnlineRetailFile(a).fingerprint() == file_hash(a)  # one plain file: its bytes' hash
    assert both not in {file_hash(a), file_hash(b)}
    assert OnlineRetailFile(a, dayfirst=True).fingerprint() != file_hash(a)
    assert OnlineRetailFile(a, date_format="%Y-%m-%d %H:%M:%S").fingerprint() != file_hash(a)
    write(tmp_path / "b.csv", csv_text(B[:-1]))
    assert OnlineRetailFile([a, b]).fingerprint() != both


def test_cached_load_keeps_the_overlap_step_and_the_notes(tmp_path):
    paths = [str(write(tmp_path / "a.csv", csv_text(A))), str(write(tmp_path / "b.csv", csv_text(B)))]
    first = load_dataset(OnlineRetailFile(paths), TransactionCleaner(), str(tmp_path / "cache"))
    again = load_dataset(OnlineRetailFile(paths), TransactionCleaner(), str(tmp_path / "cache"))
    assert again.cache_hit and again.ledger == first.ledger and again.notes == first.notes


def test_hydra_passes_a_list_of_paths(tmp_path):
    a, b = write(tmp_path / "a.csv", csv_text(A)), write(tmp_path / "b.csv", csv_text(B))
    with initialize_config_dir(config_dir=str(CONFIGS), version_base="1.3"):
        cfg = compose("config", overrides=["data=online_retail", f"data.path=[{a},{b}]",
                                           "data.sheets=[0]", "data.dayfirst=false"])
    source = build(cfg.data)
    assert source.describe() == f"{a} + {b}" and len(source.read()) == 8


@pytest.mark.parametrize("path", [[], "  "], ids=["empty_list", "blank"])
def test_no_path_is_one_line(path):
    with pytest.raises(DataError, match="data.path"):
        OnlineRetailFile(path)


# --- Workbooks: every sheet by default, or the ones named


def write_book(path: Path, sheets: dict[str, list[list[str]] | None]) -> str:
    """A workbook holding the lines as the published one stores them (numbers, dates)."""
    book = openpyxl.Workbook()
    book.remove(book.active)
    for name, rows in sheets.items():
        sheet = book.create_sheet(name)
        if rows is None:
            continue
        sheet.append(HEADER)
        for r in rows:
            invoice = int(r[0]) if r[0].isdigit() else r[0]
            sheet.append([invoice, r[1], r[2], int(r[3]), datetime.fromisoformat(r[4]),
                          float(r[5]), float(r[6]) if r[6] else None, r[7]])
    book.save(path)
    return str(path)


def test_every_sheet_is_read_in_time_order(tmp_path):
    book = write_book(tmp_path / "book.xlsx", {"Later": B, "Notes": None, "Earlier": A})
    source = OnlineRetailFile(book)
    raw = source.read()
    assert len(raw) == 8 and raw[INVOICE_DATE].is_monotonic_increasing
    assert raw[INVOICE_NO].iloc[0] == "700001" and raw[CUSTOMER_ID].iloc[0] == 20001
    reading = source.reading_
    assert [p.name for p in reading.parts] == ["sheet 'Earlier' of book.xlsx",
                                               "sheet 'Later' of book.xlsx"]
    assert reading.overlap_duplicate == 3
    assert reading.notes()[-1] == f"warning: {book}, sheet 'Notes': the sheet is empty; skipped"


@pytest.mark.parametrize("sheets", [["Earlier"], [2], "Earlier", 2])
def test_chosen_sheets_only(tmp_path, sheets):
    book = write_book(tmp_path / "book.xlsx", {"Later": B, "Notes": None, "Earlier": A})
    source = OnlineRetailFile(book, sheets=sheets)
    assert len(source.read()) == len(A)
    assert [p.name for p in source.reading_.parts] == ["sheet 'Earlier' of book.xlsx"]


def test_the_former_sheet_option_still_reads_one_sheet(tmp_path):
    book = write_book(tmp_path / "book.xlsx", {"Later": B, "Earlier": A})
    assert len(OnlineRetailFile(book, sheet=1).read()) == len(A)
    assert OnlineRetailFile(book, sheet=0).fingerprint() != OnlineRetailFile(book, sheet=1).fingerprint()
    with pytest.raises(DataError, match="keep only data.sheets"):
        OnlineRetailFile(book, sheet=0, sheets=[1])


@pytest.mark.parametrize(("sheets", "says"), [
    (["Missing"], "no sheet 'Missing'; the workbook has 2: 'Later', 'Notes'"),
    ([7], "no sheet 7"), (["Notes"], "sheet 'Notes': the sheet is empty"),
    ([], "data.sheets=[]"), ([True], "expected all, or a list of sheet names"),
])
def test_bad_sheet_choice_is_one_line(tmp_path, sheets, says):
    book = write_book(tmp_path / "book.xlsx", {"Later": B, "Notes": None})
    if sheets in ([], [True]):
        with pytest.raises(DataError, match="expected all") as info:
            OnlineRetailFile(book, sheets=sheets)
        assert says in str(info.value)
        return
    assert says in message(OnlineRetailFile(book, sheets=sheets))


def test_a_sheet_of_other_data_names_the_sheet_and_the_option(tmp_path):
    book = openpyxl.Workbook()
    book.active.title = "Lines"
    book.active.append(HEADER)
    book.active.append([700001, "1", "MUG", 1, datetime(2011, 1, 1), 1.0, 20001.0, "France"])
    book.create_sheet("Summary").append(["Month", "Revenue"])
    book.save(tmp_path / "b.xlsx")
    text = message(OnlineRetailFile(str(tmp_path / "b.xlsx")))
    assert "sheet 'Summary'" in text and "missing column(s)" in text and "data.sheets" in text
    assert len(OnlineRetailFile(str(tmp_path / "b.xlsx"), sheets=["Lines"]).read()) == 1


# --- Dates: one layout per column, day-first or month-first decided by every value


def dates_file(tmp_path: Path, dates: list[str], name: str = "d.csv") -> str:
    return str(write(tmp_path / name, csv_text([dated(d, str(i)) for i, d in enumerate(dates)])))


def read_dates(path: str, **options) -> list[str]:
    return [f"{d:%Y-%m-%d %H:%M}" for d in OnlineRetailFile(path, **options).read()[INVOICE_DATE]]


def test_day_first_dates_with_a_day_above_12_load_correctly(tmp_path):
    path = dates_file(tmp_path, ["01/12/2010 08:26", "13/12/2010 14:30", "02/01/2011 09:05"])
    assert read_dates(path) == ["2010-12-01 08:26", "2010-12-13 14:30", "2011-01-02 09:05"]


def test_dates_that_read_both_ways_stop_with_the_question(tmp_path):
    path = dates_file(tmp_path, ["01/12/2010 08:26", "03/12/2010 14:30", "12/12/2010 09:05"])
    text = message(OnlineRetailFile(path))
    assert path in text and "column 'InvoiceDate'" in text and "'01/12/2010 08:26'" in text
    assert "data.dayfirst=true" in text and "data.date_format='%d/%m/%Y %H:%M'" in text
    assert read_dates(path, dayfirst=True)[0] == "2010-12-01 08:26"
    assert read_dates(path, dayfirst=False)[0] == "2010-01-12 08:26"
    assert read_dates(path, date_format="%d/%m/%Y %H:%M")[1] == "2010-12-03 14:30"


def test_dates_equal_either_way_need_no_question(tmp_path):
    path = dates_file(tmp_path, ["1/1/2011 10:00", "2/2/2011 10:00", "12/12/2011 10:00"])
    assert read_dates(path) == ["2011-01-01 10:00", "2011-02-02 10:00", "2011-12-12 10:00"]


def test_a_chosen_order_the_data_contradicts_names_the_row(tmp_path):
    path = dates_file(tmp_path, ["01/12/2010 08:26", "13/12/2010 14:30"])
    text = message(OnlineRetailFile(path, dayfirst=False))
    assert "data row 2" in text and "'13/12/2010 14:30'" in text and "data.dayfirst=false" in text


def test_two_digit_years_are_this_century(tmp_path):
    path = dates_file(tmp_path, ["12/1/10 8:26", "12/13/10 14:30", "1/2/11 9:00"])
    assert read_dates(path) == ["2010-12-01 08:26", "2010-12-13 14:30", "2011-01-02 09:00"]


@pytest.mark.parametrize(("value", "problem"), [
    ("12/1/1985 8:26", "before 1990"), ("12/13/0010 8:26", "before 1990"),
    ("2010-12-01 8:26", None)])
def test_a_date_before_1990_names_the_row(tmp_path, value, problem):
    path = dates_file(tmp_path, ["12/13/2010 14:30", value] if "/" in value
                      else ["2010-12-13 14:30:00", value])
    if problem is None:
        assert read_dates(path)[1] == "2010-12-01 08:26"
        return
    text = message(OnlineRetailFile(path))
    assert "data row 2" in text and repr(value) in text and problem in text


def test_a_date_format_that_does_not_fit_names_the_row(tmp_path):
    path = dates_file(tmp_path, ["2010-12-01 08:26:00", "2010-12-01 08:27"])
    text = message(OnlineRetailFile(path, date_format="%Y-%m-%d %H:%M:%S"))
    assert "data row 2" in text and "data.date_format" in text


@pytest.mark.parametrize(("value", "dayfirst"), [
    ("2010-12-01T08:26:00", None), ("2010/12/01 08:26", None), ("2010-12-01 08:26:00.000", None),
    ("01.12.2010 08:26:00", True), ("12-1-2010 8:26 AM", False), ("12/1/2010 8:26 PM", False)])
def test_date_layouts(tmp_path, value, dayfirst):
    hour = "20" if "PM" in value else "08"
    assert read_dates(dates_file(tmp_path, [value]), dayfirst=dayfirst) == [f"2010-12-01 {hour}:26"]


# --- Encodings: decided per file, stray Windows-1252 lines counted


@pytest.mark.parametrize("newline", ["\n", "\r\n", "\r"])
def test_only_the_lines_with_invalid_bytes_are_read_as_cp1252(newline):
    lines = ["h", "caf\u00e9 \u00a3", "plain", "\u2013 dash", "x"]
    data = newline.join(lines).encode("utf-8").replace("\u2013".encode(), b"\x96")
    decoded = decode_text(pa.py_buffer(data), "f.csv")
    assert decoded.data.to_pybytes().decode("utf-8").split(newline) == lines
    assert (decoded.cp1252_lines, decoded.first_cp1252_line) == (1, 4)
    assert decoded.warning("f.csv").startswith("f.csv: 1 line was not valid UTF-8")


@pytest.mark.parametrize("codec", ["utf-16-le", "utf-16-be", "utf-32-le", "utf-32-be", "utf-16",
                                   "utf-32", "utf-8-sig"])
def test_unicode_files_are_found_by_mark_or_by_their_nul_bytes(codec):
    text = "InvoiceNo,StockCode\n700001,\u00a3 MUG\n" * 20
    decoded = decode_text(pa.py_buffer(text.encode(codec)), "f.csv")
    assert decoded.data.to_pybytes().decode("utf-8") == text and decoded.cp1252_lines == 0


# --- Parquet with every column as text loads as the same values in a CSV


def test_all_text_parquet_equals_the_csv(tmp_path):
    rows = [*A, dated("2011-04-01 10:00:00", "7", customer="", description="")]
    path = write(tmp_path / "t.csv", csv_text(rows))
    pd.DataFrame(rows, columns=HEADER).to_parquet(tmp_path / "t.parquet")  # "" for missing
    from_csv = OnlineRetailFile(str(path)).read()
    pd.testing.assert_frame_equal(OnlineRetailFile(str(tmp_path / "t.parquet")).read(), from_csv)
    assert from_csv[CUSTOMER_ID].isna().sum() == 1


def test_all_text_parquet_reports_bad_cells_like_a_csv(tmp_path):
    rows = [A[0], dated("2011-01-04 10:00:00", "2", quantity="six")]
    pd.DataFrame(rows, columns=HEADER).to_parquet(tmp_path / "t.parquet")
    text = message(OnlineRetailFile(str(tmp_path / "t.parquet")))
    assert "column 'Quantity', data row 2: 'six' is not a number" in text


# --- The real file, split at 2011-06-01 with a week of overlap, as a workbook and as two files

SPLIT, OVERLAP_FROM = "2011-06-08", "2011-06-01"  # first part: before SPLIT; second: from OVERLAP_FROM


@pytest.fixture(scope="session")
def real_parts(tmp_path_factory):
    """The shared file as text, its CSV Dataset, and the number of lines in the overlap week."""
    path = real_data_path()
    if path is None:
        pytest.skip("SEGMENTLAB_DATA is not set")
    text = pd.read_csv(path, dtype=str, keep_default_na=False)  # "" for missing, as in the file
    dataset = load_dataset(OnlineRetailFile(path), TransactionCleaner(), cache_dir=None)
    first = text[text["InvoiceDate"] < SPLIT]
    second = text[text["InvoiceDate"] >= OVERLAP_FROM]
    overlap = int(((text["InvoiceDate"] >= OVERLAP_FROM) & (text["InvoiceDate"] < SPLIT)).sum())
    return tmp_path_factory.mktemp("real"), first, second, overlap, dataset


def as_workbook_cells(text: pd.DataFrame) -> list[list]:
    """Rows typed as the published workbook stores them: all-digit codes and ids as numbers."""
    def number_if_digits(values: pd.Series) -> list:
        digits = values.str.fullmatch(r"\d+")
        return [int(v) if d else v for v, d in zip(values, digits, strict=True)]

    columns = [number_if_digits(text["InvoiceNo"]), number_if_digits(text["StockCode"]),
               [v or None for v in text["Description"]], text["Quantity"].astype(int).tolist(),
               pd.to_datetime(text["InvoiceDate"]).dt.to_pydatetime().tolist(),
               text["UnitPrice"].astype(float).tolist(),
               [float(v) if v else None for v in text["CustomerID"]], text["Country"].tolist()]
    return [list(row) for row in zip(*columns, strict=True)]


def assert_same_history(dataset, csv_dataset, overlap: int) -> None:
    """Shared lines counted once: the CSV's transactions, ledger and customers, plus the overlap."""
    ledger, expected = dataset.ledger, csv_dataset.ledger
    assert list(ledger.dropped)[0] == "overlap_duplicate"
    assert ledger.dropped["overlap_duplicate"] == overlap
    assert {k: v for k, v in ledger.dropped.items() if k != "overlap_duplicate"} == expected.dropped
    assert (ledger.rows_in, ledger.rows_kept) == (expected.rows_in + overlap, expected.rows_kept)
    pd.testing.assert_frame_equal(dataset.transactions, csv_dataset.transactions)
    assert dataset.purchases[CUSTOMER_ID].nunique() == 4_333


@pytest.mark.real_data
def test_real_two_sheet_workbook_counts_the_overlap_once(real_parts):
    folder, first, second, overlap, csv_dataset = real_parts
    # openpyxl takes about 2.5 CPU minutes for these 550,527 lines; fastexcel reads them in ~7 s.
    book = openpyxl.Workbook(write_only=True)
    for name, part in [("Year 2010-2011 H1", first), ("Year 2011 H2", second)]:
        sheet = book.create_sheet(name)
        sheet.append(HEADER)
        for row in as_workbook_cells(part):
            sheet.append(row)
    book.save(folder / "two_sheets.xlsx")
    source = OnlineRetailFile(str(folder / "two_sheets.xlsx"))
    dataset = load_dataset(source, TransactionCleaner(), cache_dir=None)
    assert_same_history(dataset, csv_dataset, overlap)
    assert overlap == 8_618
    assert dataset.notes[0] == ("read sheet 'Year 2010-2011 H1' of two_sheets.xlsx: 217,647 lines, "
                                "2010-12-01 … 2011-06-07")


@pytest.mark.real_data
def test_real_csv_and_parquet_halves_count_the_overlap_once(real_parts):
    folder, first, second, overlap, csv_dataset = real_parts
    first.to_csv(folder / "first_half.csv", index=False)
    typed = second.assign(Quantity=second["Quantity"].astype(int),
                          UnitPrice=second["UnitPrice"].astype(float),
                          CustomerID=pd.to_numeric(second["CustomerID"].mask(second["CustomerID"] == "")),
                          InvoiceDate=pd.to_datetime(second["InvoiceDate"]))
    typed.to_parquet(folder / "second_half.parquet", index=False)
    paths = [str(folder / "first_half.csv"), str(folder / "second_half.parquet")]
    dataset = load_dataset(OnlineRetailFile(paths), TransactionCleaner(), cache_dir=None)
    assert_same_history(dataset, csv_dataset, overlap)
