"""Reading Online Retail files into the normalised raw layout, and loading a cleaned Dataset.

`OnlineRetailFile` reads CSV (plain or gzip), ``.xlsx`` and ``.parquet`` files in either the
Online Retail or the Online Retail II layout and returns ``schema.RAW_COLUMNS``. Every value
is read as text first and converted with vectorised Arrow kernels, so a bad cell can be reported
by column, data row and value instead of surfacing as a library traceback.
`load_dataset` ties a source to a `TransactionCleaner` through a verified on-disk cache.

Bad input ends in one `DataError` line, never in a half-loaded frame: a cell that is not what
its column holds (text in a number, an unparseable date) and an invoice dated after today (a
file cannot hold invoices not yet raised; one day of slack for time zones) reject the file.
What is well-formed but unusable (no customer, price <= 0, huge quantities) loads and is
counted in the cleaning ledger; when cleaning leaves no purchase at all, `load_dataset` says so.
Blank lines are skipped, and columns without a header name are dropped when they hold nothing
(a trailing comma on every line).
"""

from __future__ import annotations

import csv
import os
import re
import warnings
import zipfile
from datetime import date, datetime, timedelta
from pathlib import Path
from typing import Protocol

import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.csv as pv
import pyarrow.parquet as pq

from segmentlab.cache import FrameCache, file_hash, stable_hash
from segmentlab.data.cleaning import TransactionCleaner
from segmentlab.schema import (
    AMOUNT,
    CLEAN_COLUMNS,
    COUNTRY,
    CUSTOMER_ID,
    DESCRIPTION,
    INVOICE_DATE,
    IS_RETURN,
    QUANTITY,
    RAW_COLUMNS,
    SOURCE_COLUMNS,
    UNIT_PRICE,
    CleaningLedger,
    DataError,
    Dataset,
)

#: Bump whenever reading or cleaning changes what a cached Dataset would contain.
CACHE_VERSION = 2

ENV_VAR = "SEGMENTLAB_DATA"

#: Source headers per layout, listed in ``SOURCE_COLUMNS`` order.
LAYOUTS = {
    "Online Retail": ["InvoiceNo", "StockCode", "Description", "Quantity", "InvoiceDate",
                      "UnitPrice", "CustomerID", "Country"],
    "Online Retail II": ["Invoice", "StockCode", "Description", "Quantity", "InvoiceDate",
                         "Price", "Customer ID", "Country"],
}


def _header_key(name: object) -> str:
    """Header as compared: case, whitespace and underscores ignored."""
    return re.sub(r"[\s_]+", "", str(name)).lower()


class OnlineRetailFile:
    """An Online Retail or Online Retail II file on disk, as a data source.

    Parameters
    ----------
    path : str, optional
        A ``.csv``, ``.csv.gz`` (any gzip CSV), ``.xlsx`` or ``.parquet`` file. When None, the
        ``SEGMENTLAB_DATA`` environment variable is used.
    sheet : str or int
        Worksheet name or position, for ``.xlsx`` files only.
    """

    def __init__(self, path: str | None = None, sheet: str | int = 0):
        self.path = path
        self.sheet = sheet
        resolved = path if path is not None else os.environ.get(ENV_VAR)
        if not resolved:
            raise DataError(f"no data file given: pass data.path=PATH or set {ENV_VAR}")
        self._file = Path(resolved).expanduser()

    def describe(self) -> str:
        """The file's path."""
        return str(self._file)

    def fingerprint(self) -> str:
        """Content hash of the file (plus the sheet, for workbooks)."""
        self._check_exists()
        try:
            digest = file_hash(self._file)
        except OSError as exc:
            raise DataError(f"{self._file}: cannot open ({exc.strerror or exc})") from None
        # Two sheets of one workbook are different data under the same bytes.
        return f"{digest}-sheet-{self.sheet}" if self._format() == "xlsx" else digest

    def truth(self) -> None:
        """Real data has no planted segments."""
        return None

    def read(self) -> pd.DataFrame:
        """Read the file into ``RAW_COLUMNS`` with normalised names and dtypes.

        Returns
        -------
        DataFrame
            ``customer_id`` is nullable ``Int64``; ``description``, ``customer_id`` and
            ``country`` may be missing; ``amount`` is ``quantity * unit_price``.

        Raises
        ------
        DataError
            One line naming the file, column, first bad data row (1-based, header excluded)
            and value, for a missing, unreadable or malformed file.
        """
        self._check_exists()
        if self._file.stat().st_size == 0:
            raise DataError(f"{self._file}: the file is empty")
        readers = {"xlsx": self._read_xlsx, "parquet": self._read_parquet, "csv": self._read_csv}
        try:
            table = readers[self._format()]()
        except (pa.ArrowException, OSError, EOFError, ValueError, KeyError,
                zipfile.BadZipFile) as exc:
            reason = " ".join(str(exc).split())[:300] or type(exc).__name__
            raise DataError(f"{self._file}: {_unreadable(reason)}") from None
        return self._normalise(self._drop_unnamed(table))

    def _check_exists(self) -> None:
        if not self._file.is_file():
            what = "is a directory" if self._file.is_dir() else "no such file"
            raise DataError(f"{self._file}: {what}")

    def _format(self) -> str:
        name = self._file.name.lower()
        if name.endswith((".xlsx", ".xlsm")):
            return "xlsx"
        return "parquet" if name.endswith((".parquet", ".pq")) else "csv"

    def _read_csv(self) -> pa.Table:
        with open(self._file, "rb") as f:
            compression = "gzip" if f.read(2) == b"\x1f\x8b" else None
        with pa.input_stream(str(self._file), compression=compression) as stream:
            head = stream.read(1 << 16).lstrip(b"\r\n")
        if head.startswith((b"\xff\xfe", b"\xfe\xff")):
            raise DataError(f"{self._file}: the file is UTF-16 text; save it as UTF-8 CSV")
        first = head.split(b"\n", 1)[0].rstrip(b"\r")
        if not first.strip():
            raise DataError(f"{self._file}: the file is empty")
        try:
            line = first.decode("utf-8-sig")
        except UnicodeDecodeError:
            line = first.decode("latin-1")
        if re.search(r"[\x00-\x08\x0b-\x1f\x7f-\x9f]", line):  # control characters
            raise DataError(f"{self._file}: not a CSV text file (binary data in the first line); "
                            f"expected CSV (plain or gzip), .xlsx or .parquet")
        header = next(csv.reader([line]))
        self._check_names(header)
        # Everything as text, and only the empty field is missing: "NA" is a valid string.
        convert = pv.ConvertOptions(column_types=dict.fromkeys(header, pa.string()),
                                    null_values=[""], strings_can_be_null=True)
        parse = pv.ParseOptions(newlines_in_values=True)
        try:
            return self._parse_csv(compression, "utf8", parse, convert)
        except pa.ArrowInvalid as exc:
            if "UTF8" not in str(exc):
                raise
        # Not UTF-8: the Kaggle copy is Latin-1 (the pound sign is byte 0xA3).
        return self._parse_csv(compression, "latin1", parse, convert)

    def _parse_csv(self, compression, encoding, parse, convert) -> pa.Table:
        with pa.input_stream(str(self._file), compression=compression) as stream:
            return pv.read_csv(stream, read_options=pv.ReadOptions(encoding=encoding),
                               parse_options=parse, convert_options=convert)

    def _read_xlsx(self) -> pa.Table:
        # header=None: pandas would rename a duplicated header ("Quantity.1") before we see it.
        sheet = pd.read_excel(self._file, sheet_name=self.sheet, header=None, dtype=object,
                              engine="openpyxl")
        if sheet.empty:
            raise DataError(f"{self._file}: sheet {self.sheet!r} is empty")
        header = [_cell_text(v) or "" for v in sheet.iloc[0]]
        self._check_names(header)
        body = sheet.iloc[1:]
        return pa.table([pa.array([_cell_text(v) for v in body[col]], pa.string())
                         for col in body.columns], names=header)

    def _read_parquet(self) -> pa.Table:
        table = pq.read_table(self._file)
        # A pandas index written along with the frame is not a data column.
        keep = [n for n in table.column_names if not re.fullmatch(r"__index_level_\d+__", n)]
        self._check_names(keep)
        return table.select(keep)

    def _check_names(self, header: list[str]) -> None:
        """Reject duplicated, missing or unexpected columns (blank names: see `_drop_unnamed`)."""
        header = [h for h in header if str(h).strip()]
        keys = [_header_key(h) for h in header]
        repeated = sorted({h for h, k in zip(header, keys, strict=True) if keys.count(k) > 1})
        if repeated:
            raise DataError(f"{self._file}: duplicated column name(s) {', '.join(repeated)} "
                            f"in the header")
        found = _shorten(", ".join(header), 200) or "none"
        if len(header) == 1 and any(sep in header[0] for sep in ";\t|"):
            found += " (one column: is the file comma-separated?)"
        best, missing, extra = min(
            ((name, [c for c in cols if _header_key(c) not in keys],
              [h for h in header if _header_key(h) not in {_header_key(c) for c in cols}])
             for name, cols in LAYOUTS.items()),
            key=lambda layout: len(layout[1]) + len(layout[2]),
        )
        expected = "; ".join(f"{n}: {', '.join(c)}" for n, c in LAYOUTS.items())
        if missing:
            raise DataError(f"{self._file}: missing column(s) {', '.join(missing)} for the "
                            f"{best} layout; found columns: {found}; expected {expected}")
        if extra:
            raise DataError(f"{self._file}: unexpected column(s) {', '.join(extra)}; "
                            f"expected exactly the {best} layout: {', '.join(LAYOUTS[best])}")

    def _drop_unnamed(self, table: pa.Table) -> pa.Table:
        """Drop columns with a blank name that hold nothing; one that holds a value is an error."""
        for i, name in enumerate(table.column_names):
            if not str(name).strip() and (row := _first(pc.is_valid(table.column(i)))) is not None:
                raise _bad_value(f"{self._file}: column {i + 1}", table.column(i), row,
                                 "stands under a blank header",
                                 "a name in the header for every column that holds values")
        return table.select([i for i, n in enumerate(table.column_names) if str(n).strip()])

    def _normalise(self, table: pa.Table) -> pd.DataFrame:
        if table.num_rows == 0:
            raise DataError(f"{self._file}: the file has a header but no data rows")
        by_key = {_header_key(n): i for i, n in enumerate(table.column_names)}
        layout = next(cols for cols in LAYOUTS.values()
                      if all(_header_key(c) in by_key for c in cols))
        columns = {}
        for target, source_name in zip(SOURCE_COLUMNS, layout, strict=True):
            name = table.column_names[by_key[_header_key(source_name)]]
            where = f"{self._file}: column {name!r}"
            try:
                columns[target] = _convert(target, table.column(name), where)
            except pa.ArrowException as exc:  # e.g. a number beyond int64
                raise DataError(f"{where}: {' '.join(str(exc).split())[:300]}") from None
        frame = pd.DataFrame(columns)
        frame[AMOUNT] = frame[QUANTITY] * frame[UNIT_PRICE]
        return frame[RAW_COLUMNS]


class TransactionSource(Protocol):
    """What `load_dataset` needs from a source: a file, or a synthetic generator."""

    def describe(self) -> str: ...
    def fingerprint(self) -> str: ...
    def read(self) -> pd.DataFrame: ...
    def truth(self) -> pd.Series | None: ...


def load_dataset(source: TransactionSource, cleaner: TransactionCleaner,
                 cache_dir: str | None = "outputs/cache") -> Dataset:
    """Read and clean a source, or take the result from the cache.

    Parameters
    ----------
    source : TransactionSource
        Anything with ``describe()``, ``fingerprint()``, ``read()`` and ``truth()``.
    cleaner : TransactionCleaner
        Its parameters are part of the cache key.
    cache_dir : str or None
        Cache directory; None disables caching.

    Returns
    -------
    Dataset
        With ``cache_hit=True`` when ``source.read()`` was not called.
    """
    data_hash = source.fingerprint()
    key = stable_hash({"data": data_hash, "cleaning": cleaner.get_params(),
                       "version": CACHE_VERSION})
    cache = FrameCache(cache_dir) if cache_dir is not None else None
    if cache is not None and (cached := _from_cache(cache, key)) is not None:
        return cached
    transactions, ledger = cleaner.clean(source.read())
    if not (~transactions[IS_RETURN].to_numpy(bool)).any():
        raise DataError(_nothing_left(source.describe(), ledger))
    truth = source.truth()
    dataset = Dataset(transactions, ledger, data_hash, source.describe(), truth)
    if cache is not None:
        _to_cache(cache, key, dataset)
    return dataset


def _nothing_left(source: str, ledger: CleaningLedger) -> str:
    """The one-line error for a source whose every row cleaning dropped or set aside."""
    reason, rows = max(ledger.dropped.items(), key=lambda item: item[1], default=("none", 0))
    return (f"{source}: no purchases left after cleaning: of {ledger.rows_in:,} rows, the most "
            f"({rows:,}) went to {reason}; check the file or the cleaning settings")


def _to_cache(cache: FrameCache, key: str, dataset: Dataset) -> None:
    """Store a Dataset; a failed write only costs the next run a re-read."""
    frames = {"transactions": dataset.transactions}
    truth_name = None
    if dataset.truth is not None:
        truth_name = dataset.truth.name
        # Parquet needs a string column name; the Series' own name travels in the meta.
        frames["truth"] = dataset.truth.to_frame(name="truth")
    meta = {"ledger": dataset.ledger.to_dict(), "source": dataset.source,
            "data_hash": dataset.data_hash, "truth_name": truth_name}
    try:
        cache.save(key, frames, meta)
    except OSError as exc:
        warnings.warn(f"could not write the data cache in {cache.directory}: {exc}",
                      stacklevel=3)


def _from_cache(cache: FrameCache, key: str) -> Dataset | None:
    """The cached Dataset, or None when absent, corrupt or of another shape."""
    entry = cache.load(key)
    if entry is None:
        return None
    frames, meta = entry
    transactions = frames.get("transactions")
    if transactions is None or list(transactions.columns) != CLEAN_COLUMNS:
        return None
    truth = None
    if "truth" in frames:
        truth = frames["truth"]["truth"].rename(meta.get("truth_name"))
    return Dataset(transactions, CleaningLedger.from_dict(meta["ledger"]), meta["data_hash"],
                   meta["source"], truth, cache_hit=True)


# --- Converting one column: text in, typed values out, or a DataError naming the first bad row.

_NUMBER = r"^[+-]?(\d+\.?\d*|\.\d+)([eE][+-]?\d+)?$"
#: Tried in order; only those that parse the first value are tried on the whole column. The
#: Kaggle CSV writes month/day/year ("12/1/2010 8:26"); day/month is tried after it.
_DATE_FORMATS = ("%Y-%m-%d %H:%M:%S", "%Y-%m-%d %H:%M", "%Y-%m-%dT%H:%M:%S", "%Y-%m-%d",
                 "%m/%d/%Y %H:%M", "%m/%d/%Y %H:%M:%S", "%m/%d/%Y",
                 "%d/%m/%Y %H:%M", "%d/%m/%Y %H:%M:%S", "%d/%m/%Y")
_EXCEL_EPOCH_OFFSET = 25569  # days from Excel's day 0 (1899-12-30) to 1970-01-01
_EXCEL_LAST_DAY = 2958465.0  # 9999-12-31, the last day Excel can show
_EXPECTED = {
    QUANTITY: "a whole number of units, e.g. 6",
    UNIT_PRICE: "a price, e.g. 2.55",
    CUSTOMER_ID: "a whole customer number, e.g. 17850",
    INVOICE_DATE: "a date such as 2010-12-01 08:26:00 or 12/1/2010 8:26",
}
_OPTIONAL = {DESCRIPTION, CUSTOMER_ID, COUNTRY}


def _shorten(text: str, limit: int) -> str:
    """``text`` cut to ``limit`` characters, marked with an ellipsis when cut."""
    return text if len(text) <= limit else text[: limit - 3] + "..."


def _unreadable(reason: str) -> str:
    """Why a file cannot be parsed; a wrong field count (from Arrow) says what to look for."""
    count = re.search(r"Expected (\d+) columns, got (\d+): (.*)", reason)
    if count is None:
        return f"cannot read the file ({reason})"
    expected, got, line = int(count[1]), int(count[2]), count[3]
    hint = ("a trailing comma, or a comma in an unquoted text?" if got > expected
            else "a line cut short?")
    return (f"cannot read the file: a line has {got} fields where the header has {expected} "
            f"({hint}): {_shorten(line, 120)!r}")


def _cell_text(value: object) -> str | None:
    """A workbook cell as the text a CSV would hold (536365, not 536365.0)."""
    if value is None or (not isinstance(value, str) and pd.isna(value)):
        return None
    if isinstance(value, datetime):
        # Excel stores times as fractions of a day; round off the float noise.
        return (value + timedelta(microseconds=500_000)).strftime("%Y-%m-%d %H:%M:%S")
    if isinstance(value, float) and value.is_integer():
        return str(int(value))
    return str(value)


def _first(mask: pa.ChunkedArray | pa.Array) -> int | None:
    """Position of the first True (nulls count as False), or None."""
    position = pc.index(pc.fill_null(mask, False), True).as_py()
    return None if position < 0 else position


def _bad_value(where: str, column: pa.ChunkedArray, row: int, problem: str,
               expected: str) -> DataError:
    """The one-line error for a bad cell, showing its value as read."""
    value = column[row].as_py()
    shown = repr(value if not isinstance(value, str) or len(value) < 80 else value[:77] + "...")
    return DataError(f"{where}, data row {row + 1}: {shown} {problem}; expected {expected}")


def _convert(target: str, column: pa.ChunkedArray, where: str) -> pd.Series:
    """One source column as the pandas values ``RAW_COLUMNS`` prescribes for ``target``."""
    if target not in _OPTIONAL and (row := _first(pc.is_null(column))) is not None:
        expected = _EXPECTED.get(target, "a value")
        raise DataError(f"{where}, data row {row + 1}: empty value; expected {expected}")
    if target == QUANTITY:
        return _as_whole(column, where, _EXPECTED[target]).to_pandas()
    if target == UNIT_PRICE:
        return _as_float(column, where, _EXPECTED[target]).to_pandas()
    if target == CUSTOMER_ID:
        whole = pa.table({target: _as_whole(column, where, _EXPECTED[target])})
        return whole.to_pandas(types_mapper={pa.int64(): pd.Int64Dtype()}.get)[target]
    if target == INVOICE_DATE:
        values = _as_datetime(column, where)
        _check_not_future(values, column, where)
        return values.to_pandas()
    return _as_text(column).to_pandas().astype("str")


def _as_text(column: pa.ChunkedArray) -> pa.ChunkedArray:
    """Text as it is; numbers (from Parquet or a workbook) without a spurious ``.0``."""
    if pa.types.is_string(column.type) or pa.types.is_large_string(column.type):
        return column
    if pa.types.is_floating(column.type) and pc.all(pc.equal(pc.floor(column), column)).as_py():
        column = pc.cast(column, pa.int64())
    return pc.cast(column, pa.string())


def _as_float(column: pa.ChunkedArray, where: str, expected: str) -> pa.ChunkedArray:
    """Finite float64 values, or a DataError at the first cell that is not a number."""
    if pa.types.is_string(column.type) or pa.types.is_large_string(column.type):
        try:  # clean text casts as it is: trimming every value first would copy the column
            values = pc.cast(column, pa.float64())
        except pa.ArrowInvalid:
            values = _trimmed_float(column, where, expected)
    else:
        values = pc.cast(column, pa.float64())  # integers, decimals, all-missing
    if (row := _first(pc.invert(pc.is_finite(values)))) is not None:
        raise _bad_value(where, column, row, "is not a finite number", expected)
    return values


def _trimmed_float(column: pa.ChunkedArray, where: str, expected: str) -> pa.ChunkedArray:
    """float64 of text with blanks around it, or a DataError at the first non-number."""
    text = pc.utf8_trim_whitespace(column)
    try:
        return pc.cast(text, pa.float64())
    except pa.ArrowInvalid:
        row = _first(pc.invert(pc.match_substring_regex(text, _NUMBER)))
        if row is None:
            raise
        raise _bad_value(where, column, row, "is not a number", expected) from None


def _as_whole(column: pa.ChunkedArray, where: str, expected: str) -> pa.ChunkedArray:
    """int64 values; "17850.0" is accepted, 2.5 is not."""
    if pa.types.is_integer(column.type):
        return pc.cast(column, pa.int64())
    if pa.types.is_string(column.type) or pa.types.is_large_string(column.type):
        # The common case, exact and fast; "17850.0" takes the float route below. Clean text
        # casts as it is, so the trimmed copy is only made when that fails.
        try:
            return pc.cast(column, pa.int64())
        except pa.ArrowInvalid:
            pass
        try:
            return pc.cast(pc.utf8_trim_whitespace(column), pa.int64())
        except pa.ArrowInvalid:
            pass
    values = _as_float(column, where, expected)
    if (row := _first(pc.not_equal(pc.floor(values), values))) is not None:
        raise _bad_value(where, column, row, "is not a whole number", expected)
    if (row := _first(pc.greater(pc.abs(values), 2.0**53))) is not None:  # exact in float64
        raise _bad_value(where, column, row, "is out of range", expected)
    return pc.cast(values, pa.int64())


def _as_datetime(column: pa.ChunkedArray, where: str) -> pa.ChunkedArray:
    """timestamp[us] from timestamps, Excel day numbers, or text in one of ``_DATE_FORMATS``."""
    if pa.types.is_timestamp(column.type) or pa.types.is_date(column.type):
        return pc.cast(column, pa.timestamp("us"))
    if not (pa.types.is_string(column.type) or pa.types.is_large_string(column.type)):
        return _from_excel_serial(_as_float(column, where, _EXPECTED[INVOICE_DATE]), column, where)
    sample = pc.utf8_trim_whitespace(pa.array([pc.drop_null(column)[0].as_py()]))
    candidates = [f for f in _DATE_FORMATS
                  if pc.strptime(sample, f, "us", error_is_null=True)[0].is_valid]
    # Trimming copies the whole column, so a clean file is parsed as it is: strptime skips
    # leading blanks and rejects trailing ones, so whatever parses untrimmed parses the same.
    for fmt in candidates[:1]:
        parsed = pc.strptime(column, fmt, "us", error_is_null=True)
        if _first(pc.and_(pc.is_null(parsed), pc.is_valid(column))) is None:
            return parsed
    text = pc.utf8_trim_whitespace(column)
    if not candidates and _first(pc.invert(pc.match_substring_regex(text, _NUMBER))) is None:
        # Serial numbers saved as text.
        return _from_excel_serial(pc.cast(text, pa.float64()), column, where)
    first_failure = None
    for fmt in candidates:
        parsed = pc.strptime(text, fmt, "us", error_is_null=True)
        row = _first(pc.and_(pc.is_null(parsed), pc.is_valid(text)))
        if row is None:
            return parsed
        first_failure = row if first_failure is None else first_failure
    row = first_failure if first_failure is not None else _first(pc.is_valid(text))
    raise _bad_value(where, column, row, "is not a date", _EXPECTED[INVOICE_DATE])


def _check_not_future(values: pa.ChunkedArray, column: pa.ChunkedArray, where: str) -> None:
    """Reject invoice dates after tomorrow: the day of slack covers time zones ahead of ours."""
    today = date.today()
    limit = datetime.combine(today + timedelta(days=2), datetime.min.time())
    if (row := _first(pc.greater_equal(values, pa.scalar(limit, pa.timestamp("us"))))) is not None:
        raise _bad_value(where, column, row, f"is in the future (today is {today.isoformat()})",
                         "an invoice date no later than today")


def _from_excel_serial(days: pa.ChunkedArray, column: pa.ChunkedArray,
                       where: str) -> pa.ChunkedArray:
    """Excel day numbers (1.0 = 1900-01-00) to timestamps, rounded to the second."""
    # Anything else numeric (e.g. nanoseconds since 1970) is no date Excel can hold.
    outside = pc.or_(pc.less(days, 0.0), pc.greater(days, _EXCEL_LAST_DAY))
    if (row := _first(outside)) is not None:
        raise _bad_value(where, column, row, "is a number but not an Excel day number",
                         f"a date, or a day number from 0 to {_EXCEL_LAST_DAY:.0f} (9999-12-31)")
    seconds = pc.round(pc.multiply(pc.subtract(days, float(_EXCEL_EPOCH_OFFSET)), 86400.0))
    return pc.cast(pc.multiply(pc.cast(seconds, pa.int64()), 1_000_000), pa.timestamp("us"))
