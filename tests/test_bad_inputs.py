"""A corpus of malformed input files, generated here: each loads with every row accounted for,
or fails with exit status 2 and one line naming the file.

Outcomes, decided once for the whole project (see ``segmentlab.data.loading``):

* a cell that is not what its column holds, a date after today, a missing, renamed or
  duplicated column, a wrong delimiter and a damaged file are rejected;
* UTF-8, UTF-16 and UTF-32 are read; lines of a UTF-8 file that hold invalid bytes are read as
  Windows-1252 and counted in a warning;
* well-formed but unusable rows (no customer, price <= 0, huge quantity) load and are counted in
  the cleaning ledger; blank lines are skipped; empty unnamed columns (trailing commas) dropped;
* a file whose every row cleaning drops is rejected by ``load_dataset``, naming the main reason.

Most cases call the loader directly; a handful go through ``run.py`` to check the exit status.
"""

from __future__ import annotations

import gzip
import os
import subprocess
import sys
from dataclasses import dataclass
from datetime import date, timedelta
from pathlib import Path

import pandas as pd
import pytest

from segmentlab.data.cleaning import TransactionCleaner
from segmentlab.data.loading import LAYOUTS, OnlineRetailFile, load_dataset
from segmentlab.schema import DESCRIPTION, INVOICE_DATE, IS_RETURN, QUANTITY, DataError

ROOT = Path(__file__).resolve().parents[1]
HEADER = LAYOUTS["Online Retail"]
FIELDS = ["invoice", "code", "description", "quantity", "date", "price", "customer", "country"]


def line(**changes: str) -> list[str]:
    """One invented invoice line as the text fields of a CSV row."""
    values = {"invoice": "700001", "code": "10001", "description": "TEST MUG", "quantity": "6",
              "date": "2011-03-01 10:00:00", "price": "2.50", "customer": "20001",
              "country": "France", **changes}
    return [values[f] for f in FIELDS]


def lines(n: int = 4, **changes: str) -> list[list[str]]:
    """``n`` distinct lines (stock codes 10001, 10002, ...) sharing ``changes``."""
    return [line(**{"code": str(10001 + i), **changes}) for i in range(n)]


def quoted(field: str) -> str:
    needs = any(ch in field for ch in ',"\n')
    return '"' + field.replace('"', '""') + '"' if needs else field


def csv_text(rows: list[list[str]], header: list[str] = HEADER, sep: str = ",",
             newline: str = "\n") -> str:
    return newline.join(sep.join(quoted(f) for f in r) for r in [header, *rows]) + newline


def write(path: Path, text: str | bytes, encoding: str = "utf-8") -> Path:
    data = text.encode(encoding) if isinstance(text, str) else text
    path.write_bytes(gzip.compress(data) if path.name.endswith(".gz") else data)
    return path


def typed_frame(rows: list[list[str]]) -> pd.DataFrame:
    """The rows as a frame with the column types a Parquet export would have."""
    frame = pd.DataFrame(rows, columns=HEADER)
    frame["Quantity"] = frame["Quantity"].astype("int64")
    frame["UnitPrice"] = frame["UnitPrice"].astype(float)
    frame["CustomerID"] = frame["CustomerID"].astype(float)
    frame["InvoiceDate"] = pd.to_datetime(frame["InvoiceDate"])
    return frame


# --- The corpus: (id, file builder, expected outcome)


@dataclass(frozen=True)
class Rejected:
    """``OnlineRetailFile.read`` raises one line naming the file and saying these things."""

    says: tuple[str, ...]


@dataclass(frozen=True)
class Loads:
    """The file loads; every data row is in the ledger, and ``check`` holds on the Dataset."""

    rows: int
    check: object = None


@dataclass(frozen=True)
class NothingLeft:
    """The file reads, but cleaning keeps no purchase: ``load_dataset`` names the main reason."""

    reason: str


def _gzip_cut(p: Path) -> Path:
    data = gzip.compress(csv_text(lines(200)).encode())
    p.write_bytes(data[: len(data) // 2])
    return p


def _parquet(p: Path, frame: pd.DataFrame) -> Path:
    frame.to_parquet(p, index=False)
    return p


def _half_units(p: Path) -> Path:
    frame = typed_frame(lines())
    frame["Quantity"] = [6.0, 2.5, 1.0, 3.0]
    return _parquet(p, frame)


def _dates_as_numbers(p: Path) -> Path:
    frame = typed_frame(lines())
    frame["InvoiceDate"] = frame["InvoiceDate"].astype("int64")  # nanoseconds since 1970
    return _parquet(p, frame)


def _text_prices(p: Path) -> Path:
    frame = typed_frame(lines())
    frame["UnitPrice"] = ["2.50", "cheap", "1.00", "3.00"]
    return _parquet(p, frame)


FUTURE = (date.today() + timedelta(days=30)).isoformat() + " 10:00:00"
TOMORROW = (date.today() + timedelta(days=1)).isoformat() + " 09:00:00"
DIRTY = [line(code="10001"), line(code="10002", price="-1.00"), line(code="10003", price="0"),
         line(code="10004", quantity="1000000"), line(code="10005", customer=""),
         line(code="10006")]

CASES = [
    # Columns and layout
    ("missing_column", lambda p: write(p / "m.csv", csv_text(
        [r[:5] + r[6:] for r in lines()], [h for h in HEADER if h != "UnitPrice"])),
     Rejected(("missing column(s) UnitPrice", "found columns"))),
    ("renamed_column", lambda p: write(p / "r.csv", csv_text(
        lines(), [h if h != "UnitPrice" else "Price EUR" for h in HEADER])),
     Rejected(("missing column(s) UnitPrice", "Price EUR"))),
    ("duplicated_header", lambda p: write(p / "d.csv", csv_text(
        [[*r, "6"] for r in lines()], [*HEADER, "QUANTITY"])),
     Rejected(("duplicated column name(s) QUANTITY, Quantity",))),
    ("semicolon_delimiter", lambda p: write(p / "s.csv", csv_text(lines(), sep=";")),
     Rejected(("missing column(s)", "comma-separated"))),
    ("values_under_a_blank_header", lambda p: write(p / "b.csv", csv_text(
        [[*r, "x"] for r in lines()], [*HEADER, ""])),
     Rejected(("column 9, data row 1", "blank header"))),
    ("trailing_comma_on_data_lines_only", lambda p: write(p / "t.csv", csv_text(
        [[*r, ""] for r in lines()])),
     Rejected(("a line has 9 fields where the header has 8", "trailing comma"))),
    ("line_cut_short", lambda p: write(p / "c.csv", csv_text([*lines(), line()[:4]])),
     Rejected(("a line has 4 fields where the header has 8",))),
    # Encodings and damaged files
    # UTF-16/32 were rejected until issue 14; they are read now, with or without a BOM.
    ("utf16_text", lambda p: write(p / "u16.csv", csv_text(lines()), "utf-16"), Loads(4)),
    ("utf16_be_without_bom", lambda p: write(p / "u16be.csv", csv_text(lines()), "utf-16-be"),
     Loads(4)),
    ("utf32_text", lambda p: write(p / "u32.csv", csv_text(lines(description="MUG £2")),
                                   "utf-32"),
     Loads(4, lambda ds: (ds.transactions[DESCRIPTION] == "MUG £2").all())),
    ("utf16_cut_in_half_a_character", lambda p: write(p / "odd.csv", csv_text(
        lines()).encode("utf-16")[:-1]), Rejected(("UTF-16-LE", "cannot be decoded"))),
    ("binary_garbage", lambda p: write(p / "g.csv", bytes(range(256)) * 8),
     Rejected(("not a CSV text file",))),
    ("empty_file", lambda p: write(p / "e.csv", b""), Rejected(("the file is empty",))),
    ("only_blank_lines", lambda p: write(p / "e.csv", "\n\r\n\n"), Rejected(("empty",))),
    ("header_only", lambda p: write(p / "h.csv", csv_text([])), Rejected(("no data rows",))),
    ("truncated_gzip", lambda p: _gzip_cut(p / "cut.csv.gz"), Rejected(("cannot read",))),
    ("corrupted_xlsx", lambda p: write(p / "x.xlsx", b"PK\x03\x04 not a workbook"),
     Rejected(("cannot read",))),
    ("corrupted_parquet", lambda p: write(p / "x.parquet", b"PAR1 not parquet"),
     Rejected(("cannot read",))),
    ("directory_not_file", lambda p: p, Rejected(("is a directory",))),
    # Cells that are not what their column holds
    ("text_in_quantity", lambda p: write(p / "q.csv", csv_text(
        [line(), line(code="10002", quantity="six")])),
     Rejected(("column 'Quantity', data row 2", "'six'", "whole number"))),
    ("text_in_unit_price", lambda p: write(p / "pr.csv", csv_text(
        [line(), line(code="10002", price="2.55 GBP")])),
     Rejected(("column 'UnitPrice', data row 2", "'2.55 GBP'", "not a number"))),
    ("nan_price", lambda p: write(p / "nan.csv", csv_text([line(), line(price="nan")])),
     Rejected(("column 'UnitPrice', data row 2", "not a finite number"))),
    ("quantity_beyond_int64", lambda p: write(p / "big.csv", csv_text(
        [line(quantity="9" * 25)])), Rejected(("column 'Quantity', data row 1", "out of range"))),
    ("customer_id_with_text", lambda p: write(p / "id.csv", csv_text(
        [line(), line(code="10002", customer="C17850")])),
     Rejected(("column 'CustomerID', data row 2", "'C17850'"))),
    ("unparseable_date", lambda p: write(p / "dt.csv", csv_text(
        [line(), line(code="10002", date="31/31/2011 25:00")])),
     Rejected(("column 'InvoiceDate', data row 2", "not a date"))),
    ("mixed_date_formats", lambda p: write(p / "mix.csv", csv_text(
        [line(), line(code="10002", date="3/1/2011 10:00")])),
     Rejected(("column 'InvoiceDate', data row 2", "'3/1/2011 10:00'", "not a date"))),
    ("future_date", lambda p: write(p / "fut.csv", csv_text(
        [line(), line(code="10002", date=FUTURE)])),
     Rejected(("column 'InvoiceDate', data row 2", "in the future"))),
    ("date_before_1990", lambda p: write(p / "old.csv", csv_text(
        [line(), line(code="10002", date="1989-12-31 10:00:00")])),
     Rejected(("column 'InvoiceDate', data row 2", "'1989-12-31 10:00:00' is before 1990"))),
    ("dates_that_read_both_ways", lambda p: write(p / "dm.csv", csv_text(
        [line(date="01/03/2011 10:00"), line(code="10002", date="02/03/2011 10:00")])),
     Rejected(("column 'InvoiceDate'", "'01/03/2011 10:00' read both day-first",
               "data.dayfirst=true"))),
    ("parquet_fractional_quantity", lambda p: _half_units(p / "q.parquet"),
     Rejected(("column 'Quantity', data row 2", "not a whole number"))),
    ("parquet_text_price", lambda p: _text_prices(p / "p.parquet"),
     Rejected(("column 'UnitPrice', data row 2", "'cheap'"))),
    ("parquet_dates_as_integers", lambda p: _dates_as_numbers(p / "n.parquet"),
     Rejected(("column 'InvoiceDate', data row 1", "not an Excel day number"))),
    # Well-formed but odd: loads, every row accounted for
    ("utf8_byte_order_mark", lambda p: write(p / "bom.csv", csv_text(lines()), "utf-8-sig"),
     Loads(4)),
    ("latin1_pound_sign", lambda p: write(p / "l1.csv", csv_text(
        lines(description="VOUCHER £10")), "latin-1"),
     Loads(4, lambda ds: (ds.transactions[DESCRIPTION] == "VOUCHER £10").all())),
    ("crlf_line_ends", lambda p: write(p / "crlf.csv", csv_text(lines(), newline="\r\n")),
     Loads(4)),
    ("old_mac_cr_line_ends", lambda p: write(p / "cr.csv", csv_text(lines(), newline="\r")),
     Loads(4)),
    ("one_cp1252_line_in_utf8", lambda p: write(p / "mixed.csv", csv_text(
        lines(description="VOUCHER £10")).encode() + "700002,10009,TEA £5,1,2011-03-01 10:00:00,"
        "5.00,20001,France\n".encode("cp1252")),
     Loads(5, lambda ds: set(ds.transactions[DESCRIPTION]) == {"VOUCHER £10", "TEA £5"}
           and "1 line was not valid UTF-8" in ds.notes[-1])),
    ("blank_lines", lambda p: write(p / "bl.csv", csv_text(lines()).replace("\n", "\n\n")),
     Loads(4)),
    ("trailing_comma_everywhere", lambda p: write(p / "tc.csv", csv_text(
        [[*r, ""] for r in lines()], [*HEADER, ""])), Loads(4)),
    ("quoted_commas_and_newlines", lambda p: write(p / "qt.csv", csv_text(
        lines(description='MUG, "RED"\nSECOND LINE'))),
     Loads(4, lambda ds: (ds.transactions[DESCRIPTION] == 'MUG, "RED"\nSECOND LINE').all())),
    ("blanks_around_numbers", lambda p: write(p / "ws.csv", csv_text(
        lines(quantity=" 6 ", price=" 2.50", customer="20001 "))),
     Loads(4, lambda ds: (ds.transactions[QUANTITY] == 6).all())),
    ("customer_id_with_decimal_part", lambda p: write(p / "f.csv", csv_text(
        lines(customer="20001.0"))), Loads(4)),
    ("date_tomorrow_within_slack", lambda p: write(p / "tm.csv", csv_text(
        lines(date=TOMORROW))), Loads(4)),
    ("two_digit_years", lambda p: write(p / "yy.csv", csv_text(
        [line(date="3/1/11 10:00"), line(code="10002", date="3/13/11 9:30")])),
     Loads(2, lambda ds: ds.transactions[INVOICE_DATE].dt.year.eq(2011).all())),
    ("negative_zero_and_huge_values_and_guests", lambda p: write(p / "dirty.csv", csv_text(DIRTY)),
     Loads(6, lambda ds: ds.ledger.dropped["non_positive_price"] == 2
           and ds.ledger.dropped["quantity_outlier"] == 1
           and ds.ledger.dropped["missing_customer"] == 1 and ds.ledger.rows_kept == 2)),
    # Reads, but nothing is left to segment
    ("all_rows_without_customer", lambda p: write(p / "guests.csv", csv_text(
        lines(customer=""))), NothingLeft("missing_customer")),
    ("only_cancellations", lambda p: write(p / "cx.csv", csv_text(
        lines(invoice="C700009", quantity="-2"))), NothingLeft("cancellation_kept_as_return")),
]


def one_line_naming(message: str, path: Path) -> str:
    assert "\n" not in message and "\r" not in message and str(path) in message, message
    assert len(message) < 700, message
    return message


@pytest.mark.parametrize(("build", "outcome"), [pytest.param(b, o, id=i) for i, b, o in CASES])
def test_each_bad_input_loads_accounted_or_fails_in_one_line(tmp_path, build, outcome):
    path = build(tmp_path)
    if isinstance(outcome, Rejected):
        with pytest.raises(DataError) as info:
            OnlineRetailFile(str(path)).read()
        message = one_line_naming(str(info.value), path)
        for part in outcome.says:
            assert part in message
        return
    if isinstance(outcome, NothingLeft):
        assert len(OnlineRetailFile(str(path)).read()) > 0
        with pytest.raises(DataError) as info:
            load_dataset(OnlineRetailFile(str(path)), TransactionCleaner(), cache_dir=None)
        message = one_line_naming(str(info.value), path)
        assert "no purchases left" in message and outcome.reason in message
        return
    dataset = load_dataset(OnlineRetailFile(str(path)), TransactionCleaner(), cache_dir=None)
    ledger = dataset.ledger
    assert ledger.rows_in == outcome.rows
    assert ledger.rows_in == ledger.rows_kept + sum(ledger.dropped.values())
    assert len(dataset.transactions) == ledger.rows_kept + int(dataset.transactions[IS_RETURN].sum())
    assert outcome.check is None or outcome.check(dataset)


def test_the_corpus_is_large_and_varied():
    kinds = [type(outcome) for _, _, outcome in CASES]
    assert len(CASES) >= 20 and len({case_id for case_id, _, _ in CASES}) == len(CASES)
    assert {Rejected, Loads, NothingLeft} <= set(kinds)


CLI_CASES = ["empty_file", "missing_column", "text_in_quantity", "future_date",
             "dates_that_read_both_ways", "all_rows_without_customer"]


@pytest.fixture(scope="module")
def cli_runs(tmp_path_factory) -> dict[str, tuple[Path, subprocess.CompletedProcess]]:
    """``run.py`` on each CLI case; started together, since each run is mostly start-up time."""
    env = {**os.environ, "MPLBACKEND": "Agg"}
    started = {}
    for case_id in CLI_CASES:
        folder = tmp_path_factory.mktemp(case_id)
        path = next(build for i, build, _ in CASES if i == case_id)(folder)
        command = [sys.executable, "run.py", "data=online_retail", f"data.path={path}",
                   "tracking=none", "cache_dir=null", f"hydra.run.dir={folder}/h"]
        started[case_id] = path, command, subprocess.Popen(
            command, cwd=ROOT, env=env, text=True, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    runs = {}
    for case_id, (path, command, process) in started.items():
        stdout, stderr = process.communicate(timeout=180)
        runs[case_id] = path, subprocess.CompletedProcess(command, process.returncode, stdout,
                                                          stderr)
    return runs


@pytest.mark.parametrize("case_id", CLI_CASES)
def test_the_command_line_exits_2_with_one_line(cli_runs, case_id):
    path, done = cli_runs[case_id]
    assert done.returncode == 2, done.stderr[-2000:]
    errors = done.stderr.strip().splitlines()
    assert len(errors) == 1 and errors[0].startswith("segmentlab: error: "), done.stderr
    one_line_naming(errors[0], path)
    assert "Traceback" not in done.stdout + done.stderr
