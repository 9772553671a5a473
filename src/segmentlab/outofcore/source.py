"""The data file as DuckDB reads it: header checked and columns typed as the pandas reader does.

`Source` checks the header with `OnlineRetailFile` (same layouts, same messages) and types
each column in SQL the way ``data._convert`` types it, with a flag per cell that the pandas
reader would reject. When a flag is set, the offending column is read in file order and given
to ``data._convert`` itself, so the error is the pandas reader's own line.
"""

from __future__ import annotations

import csv
import gzip
import re
import zlib
from datetime import date, datetime, timedelta
from pathlib import Path

import duckdb
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq

from segmentlab.data.loading import (
    _DATE_FORMATS,
    _EXCEL_EPOCH_OFFSET,
    _EXCEL_LAST_DAY,
    _OPTIONAL,
    LAYOUTS,
    OnlineRetailFile,
    _bad_value,
    _convert,
    _first,
    _header_key,
)
from segmentlab.schema import (
    COUNTRY,
    CUSTOMER_ID,
    DESCRIPTION,
    INVOICE_DATE,
    INVOICE_NO,
    QUANTITY,
    SOURCE_COLUMNS,
    STOCK_CODE,
    UNIT_PRICE,
    DataError,
)

_TEXT = (INVOICE_NO, STOCK_CODE, DESCRIPTION, COUNTRY)
_WHOLE = (QUANTITY, CUSTOMER_ID)


class Attempt:
    """One way to read the file: its relation, typed columns and bad-cell conditions."""

    def __init__(self, relation: str, select: str, bad: list[int], retry_on_bad_date: bool):
        self.relation = relation
        self.select = select
        self.bad = bad
        self.retry_on_bad_date = retry_on_bad_date


class Source:
    """The file as DuckDB sees it: header checked, columns typed as the pandas reader types them."""

    def __init__(self, file: OnlineRetailFile, con: duckdb.DuckDBPyConnection):
        self.file = file
        self.con = con
        file._check_exists()
        if Path(file.describe()).stat().st_size == 0:
            raise DataError(f"{file.describe()}: the file is empty")
        self.parquet = is_parquet(Path(file.describe()))
        self.encoding = "utf-8"
        header = self._parquet_header() if self.parquet else self._csv_header()
        file._check_names(header)
        self.header = header
        by_key = {_header_key(n): n for n in header if str(n).strip()}
        layout = next(cols for cols in LAYOUTS.values()
                      if all(_header_key(c) in by_key for c in cols))
        self.names = {target: by_key[_header_key(name)]
                      for target, name in zip(SOURCE_COLUMNS, layout, strict=True)}

    def relation(self) -> str:
        path = quote(self.file.describe())
        if self.parquet:
            return f"read_parquet({path})"
        compression = "gzip" if is_gzip(self.file.describe()) else "none"
        # Positional names: the header was checked above; blank names hold nothing or fail.
        columns = ", ".join(f"{quote(self._column(i))}: 'VARCHAR'" for i in range(len(self.header)))
        return (f"read_csv({path}, header = true, auto_detect = false, delim = ',', "
                f"quote = '\"', escape = '\"', nullstr = '', columns = {{{columns}}}, "
                f"compression = '{compression}', encoding = '{self.encoding}')")

    def attempts(self):
        """Ways to read, in order: date formats as the pandas reader tries them; Latin-1 CSV."""
        described = self.con.execute(f"DESCRIBE SELECT * FROM {self.relation()}").fetchall()
        types = {row[0]: row[1] for row in described} if self.parquet else {}
        formats = self._date_formats(types.get(self.names[INVOICE_DATE], "VARCHAR"))
        for i, fmt in enumerate(formats):
            select, bad = self._typed(types, fmt)
            yield Attempt(self.relation(), select, bad, retry_on_bad_date=i + 1 < len(formats))

    def unreadable(self, exc: Exception) -> DataError:
        reason = " ".join(str(exc).split())[:300]
        return DataError(f"{self.file.describe()}: cannot read the file ({reason})")

    def raise_bad_cells(self, columns: set[int]) -> None:
        """Let the pandas converter name the first bad cell of the first bad column."""
        if not columns:
            return
        for k in sorted(columns):
            if k > len(SOURCE_COLUMNS):  # a value under a blank header, as _drop_unnamed says it
                i = k - len(SOURCE_COLUMNS) - 1
                values = self._column_values(self._column(i))
                raise _bad_value(f"{self.file.describe()}: column {i + 1}", values,
                                 _first(pc.is_valid(values)), "stands under a blank header",
                                 "a name in the header for every column that holds values")
            target = SOURCE_COLUMNS[k - 1]
            name = self._name(target)
            values = self._column_values(self._column_of(name))
            _convert(target, values, f"{self.file.describe()}: column {name!r}")  # raises
        raise DataError(f"{self.file.describe()}: column {self._name(SOURCE_COLUMNS[min(columns) - 1])!r}"
                        f" holds values the duckdb engine cannot convert as the pandas reader "
                        f"does; use data.engine=pandas")

    def _column_values(self, column: str) -> pa.ChunkedArray:
        """One column in file order, typed as the pandas reader gets it (the error path only)."""
        if self.parquet:
            return pq.read_table(self.file.describe(), columns=[column]).column(column)
        self.con.execute("SET preserve_insertion_order = true")
        values = self.con.sql(f"SELECT {ident(column)} AS v "
                              f"FROM {self.relation()}").to_arrow_table().column("v")
        return pc.cast(values, pa.string())

    def _parquet_header(self) -> list[str]:
        try:
            names = pq.read_schema(self.file.describe()).names
        except (pa.ArrowException, OSError) as exc:
            raise DataError(f"{self.file.describe()}: cannot read the file "
                            f"({' '.join(str(exc).split())[:300]})") from None
        return [n for n in names if not (n.startswith("__index_level_") and n.endswith("__"))]

    def _csv_header(self) -> list[str]:
        """The header line, with the pandas reader's checks and messages."""
        opener = gzip.open if is_gzip(self.file.describe()) else open
        with opener(self.file.describe(), "rb") as f:
            head = f.read(1 << 16).lstrip(b"\r\n")
        if head.startswith((b"\xff\xfe", b"\xfe\xff")):
            raise DataError(f"{self.file.describe()}: the file is UTF-16 text; save it as UTF-8 CSV")
        first = head.split(b"\n", 1)[0].rstrip(b"\r")
        if not first.strip():
            raise DataError(f"{self.file.describe()}: the file is empty")
        try:
            text = first.decode("utf-8-sig")
        except UnicodeDecodeError:
            text, self.encoding = first.decode("latin-1"), "latin-1"
        if re.search(r"[\x00-\x08\x0b-\x1f\x7f-\x9f]", text):  # control characters
            raise DataError(f"{self.file.describe()}: not a CSV text file (binary data in the "
                            f"first line); expected CSV (plain or gzip), .xlsx or .parquet")
        return next(csv.reader([text]))

    def _column(self, i: int) -> str:
        """Name of header position ``i`` in the relation (CSV blanks get a made-up one)."""
        name = self.header[i]
        return name if self.parquet or str(name).strip() else f"__blank_{i}"

    def _name(self, target: str) -> str:
        return self.names[target]

    def _column_of(self, name: str) -> str:
        return name if self.parquet else self._column(self.header.index(name))

    def switch_to_latin1(self, exc: Exception) -> bool:
        """Retry a CSV as Latin-1 (the Kaggle copy) when it is not UTF-8, as pandas does."""
        if self.parquet or self.encoding == "latin-1" or "unicode" not in str(exc).lower():
            return False
        self.encoding = "latin-1"
        return True

    def _date_formats(self, kind: str) -> list[str | None]:
        """Date formats to try in order; None means the column is not text."""
        if kind != "VARCHAR":
            return [None]
        column = ident(self._column_of(self._name(INVOICE_DATE)))
        self.con.execute("SET preserve_insertion_order = true")
        rows = self.con.execute(f"SELECT {column} FROM {self.relation()} "
                                f"WHERE {column} IS NOT NULL LIMIT 1").fetchall()
        if not rows:
            return [_NO_DATE]
        sample = pc.utf8_trim_whitespace(pa.array([rows[0][0]]))
        found = [f for f in _DATE_FORMATS if pc.strptime(sample, f, "us", error_is_null=True)[0].is_valid]
        return found or [_SERIAL_TEXT]

    def _typed(self, types: dict[str, str], date_format: str | None) -> tuple[str, list[int]]:
        """SELECT list of the typed columns with a ``bad_k`` flag per source column ``k``, and
        the ``k`` whose flag can be set."""
        exprs, bad = {}, {}
        for k, target in enumerate(SOURCE_COLUMNS, 1):
            name = self._column_of(self._name(target))
            exprs[target], bad[k] = _typed_column(
                target, ident(name), types.get(self._name(target), "VARCHAR"), date_format)
        for i, name in enumerate(self.header):
            if not str(name).strip():
                bad[len(SOURCE_COLUMNS) + 1 + i] = f"{ident(self._column(i))} IS NOT NULL"
        bad = {k: cond for k, cond in bad.items() if cond != "false"}
        select = [f"{expr} AS {target}" for target, expr in exprs.items()]
        select.append(f"starts_with({exprs[INVOICE_NO]}, 'C') AS is_return")
        select += [f"({cond}) AS bad_{k}" for k, cond in bad.items()]
        return ", ".join(select), list(bad)


_NO_DATE = "no date"  # every date cell empty: the required-value check reports it
_SERIAL_TEXT = "excel serial as text"


def _typed_column(target: str, column: str, kind: str, date_format: str | None) -> tuple[str, str]:
    """(SQL value, SQL bad-cell condition) of one source column, typed as the pandas reader does."""
    missing = "false" if target in _OPTIONAL else f"{column} IS NULL"
    numeric = kind in ("DOUBLE", "FLOAT", "REAL") or kind.startswith("DECIMAL")
    integer = kind.endswith("INT") or kind in ("HUGEINT", "UHUGEINT")
    if target in _TEXT:
        if kind == "VARCHAR":
            return column, missing
        if integer:
            return f"CAST({column} AS VARCHAR)", missing
        return _unsupported(target, kind)
    if target == UNIT_PRICE:
        value = f"(TRY_CAST({column} AS DOUBLE) + 0.0)"  # -0.0 is 0.0, as for duplicated()
        return value, f"{column} IS NULL OR NOT coalesce(isfinite({value}), false)"
    if target in _WHOLE:
        if integer:
            return f"CAST({column} AS BIGINT)", missing
        number = f"TRY_CAST({column} AS DOUBLE)"
        whole = (f"coalesce(isfinite({number}) AND {number} = floor({number}) "
                 f"AND abs({number}) <= 9007199254740992, false)")
        return f"CAST({number} AS BIGINT)", f"{missing} OR ({column} IS NOT NULL AND NOT {whole})"
    # The invoice date; a day of slack for time zones ahead, as the pandas reader allows.
    limit = datetime.combine(date.today() + timedelta(days=2), datetime.min.time())
    if kind.startswith("TIMESTAMP") or kind == "DATE":
        value = f"CAST({column} AS TIMESTAMP)"
    elif numeric or integer or date_format == _SERIAL_TEXT:
        days = f"TRY_CAST({column} AS DOUBLE)"
        value = (f"CASE WHEN {days} BETWEEN 0 AND {_EXCEL_LAST_DAY} THEN make_timestamp(CAST(round(("
                 f"{days} - {_EXCEL_EPOCH_OFFSET}) * 86400) AS BIGINT) * 1000000) END")
    elif kind == "VARCHAR" and date_format != _NO_DATE:
        value = f"try_strptime(trim({column}), {quote(date_format)})"
    elif kind == "VARCHAR":
        value = "CAST(NULL AS TIMESTAMP)"
    else:
        return _unsupported(target, kind)
    return value, (f"{column} IS NULL OR NOT coalesce({value} < TIMESTAMP '{limit:%Y-%m-%d}', "
                   f"false)")


def _unsupported(target: str, kind: str):
    raise DataError(f"column for {target}: a {kind} column is not read by the duckdb engine; "
                    f"expected text or whole numbers (use data.engine=pandas)")


def estimate_lines(path: str) -> int:
    """Data lines of a file: exact for Parquet, from the first MiB for CSV (plain or gzip)."""
    file = Path(path)
    if is_parquet(file):
        return pq.ParquetFile(file).metadata.num_rows
    size = file.stat().st_size
    with open(file, "rb") as f:
        head = f.read(1 << 20)
    if head[:2] == b"\x1f\x8b":
        inflate = zlib.decompressobj(wbits=31)
        text = inflate.decompress(head)
        used = len(head) - len(inflate.unconsumed_tail)
        return round(text.count(b"\n") * size / max(used, 1))
    return round(head.count(b"\n") * size / max(len(head), 1))


def is_parquet(file: Path) -> bool:
    return file.name.lower().endswith((".parquet", ".pq"))


def is_gzip(path: str) -> bool:
    with open(path, "rb") as f:
        return f.read(2) == b"\x1f\x8b"


def quote(text: str) -> str:
    return "'" + str(text).replace("'", "''") + "'"


def ident(name: str) -> str:
    return '"' + str(name).replace('"', '""') + '"'


def sql_list(values) -> str:
    """A SQL IN list; never empty (NULL matches nothing)."""
    return ", ".join(quote(v) for v in sorted(values)) or "NULL"


