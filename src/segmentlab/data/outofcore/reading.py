"""One CSV or Parquet file as DuckDB reads it, checked as the pandas reader checks it.

`SourceFile` makes the checks `OnlineRetailFile` makes before the lines (the file exists and is
not empty, the encoding, the header), through the loader's own public functions and with its
messages, and gives the file as a SQL relation with one text or typed column ``c<i>`` per header
position. Nothing here holds the lines: DuckDB streams them from the file.

CSV text that is not valid UTF-8 everywhere (the Kaggle copy of Online Retail is Latin-1) is first
rewritten as UTF-8 into the scratch directory, block by block, with the loader's own per-line
decisions (`segmentlab.data.textfiles.decode_text`), so the warning and the lines are the
loader's. UTF-16/32 files are refused with a one-line request to use the pandas engine.
"""

from __future__ import annotations

import csv
import gzip
import re
from pathlib import Path

import duckdb
import pyarrow as pa
import pyarrow.parquet as pq

from segmentlab.data.formats import LAYOUTS, blank_is_missing, check_names, file_format, header_key
from segmentlab.data.loading import unreadable
from segmentlab.data.textfiles import DecodedText, decode_text
from segmentlab.schema import SOURCE_COLUMNS, DataError

_HEAD = 1 << 16  # bytes looked at for the header line, as the pandas reader does
_BLOCK = 1 << 24  # bytes decoded at a time when a CSV is rewritten as UTF-8
_PANDAS = "use data.engine=pandas"


class SourceFile:
    """A CSV (plain or gzip) or Parquet file: header checked, as a DuckDB relation.

    Parameters
    ----------
    path : Path
        The file.
    con : DuckDBPyConnection
        The connection that will read it.
    scratch : Path
        A private directory for a UTF-8 copy of a CSV that needs one.

    Attributes
    ----------
    where : str
        The file as messages name it (its path).
    columns : dict
        ``SOURCE_COLUMNS`` name to relation column (``c<i>``).
    names : dict
        ``SOURCE_COLUMNS`` name to the header name the file gives it.
    blank : list of str
        Relation columns under a blank header name (they must hold nothing).
    types : dict
        DuckDB type of every relation column.
    warnings : list of str
        What the loader would warn about (lines read as Windows-1252).
    """

    def __init__(self, path: Path, con: duckdb.DuckDBPyConnection, scratch: Path):
        self.path, self.where, self.con, self.scratch = path, str(path), con, scratch
        self.warnings: list[str] = []
        if not path.is_file():
            raise DataError(f"{path}: {'is a directory' if path.is_dir() else 'no such file'}")
        if path.stat().st_size == 0:
            raise DataError(f"{path}: the file is empty")
        self.format = file_format(path)
        if self.format == "xlsx":
            raise DataError(f"{path}: workbooks are read by the pandas engine only; {_PANDAS}")
        self.text = path  # the file DuckDB reads (a UTF-8 copy when rewritten)
        self.skip = 0  # blank lines before a CSV header
        header, positions = self._parquet_header() if self.format == "parquet" else self._csv_header()
        check_names(header, self.where)
        self.header = header
        self._positions = positions
        by_key = {header_key(n): i for i, n in enumerate(header) if str(n).strip()}
        layout = next(c for c in LAYOUTS.values() if all(header_key(n) in by_key for n in c))
        index = {t: by_key[header_key(n)] for t, n in zip(SOURCE_COLUMNS, layout, strict=True)}
        self.columns = {t: f"c{i}" for t, i in index.items()}
        self.names = {t: header[i] for t, i in index.items()}
        self.blank = [f"c{i}" for i, n in enumerate(header) if not str(n).strip()]
        self.types = self._describe()

    def relation(self) -> str:
        """The file as a SQL relation: ``c<i>`` per header position, empty text as missing."""
        if self.format == "parquet":
            path = quote(str(self.path))
            kinds = self.types if hasattr(self, "types") else {}
            select = ", ".join(
                f"nullif(#{p}, '') AS c{i}" if kinds.get(f"c{i}") == "VARCHAR" else f"#{p} AS c{i}"
                for i, p in enumerate(self._positions))
            return f"(SELECT {select} FROM read_parquet({path}))"
        columns = ", ".join(f"'c{i}': 'VARCHAR'" for i in range(len(self.header)))
        compression = "gzip" if self.text == self.path and _is_gzip(self.path) else "none"
        return (f"read_csv({quote(str(self.text))}, header = true, auto_detect = false, "
                f"delim = ',', quote = '\"', escape = '\"', nullstr = '', "
                f"columns = {{{columns}}}, compression = '{compression}', skip = {self.skip})")

    def column(self, name: str) -> pa.ChunkedArray:
        """One relation column in file order, as the pandas reader gets it (error paths only)."""
        if self.format == "parquet":
            position = self._positions[int(name[1:])] - 1
            table = pq.ParquetFile(self.path).read(columns=[pq.read_schema(self.path).names[position]])
            return blank_is_missing(table).column(0)
        self.con.execute("SET preserve_insertion_order = true")
        try:
            values = self.con.sql(f"SELECT {name} FROM {self.relation()}").to_arrow_table()
        finally:
            self.con.execute("SET preserve_insertion_order = false")
        return values.column(0).cast(pa.string())

    def read_error(self, exc: duckdb.Error) -> DataError:
        """The loader's message for a file its parser cannot read, from DuckDB's error."""
        text = str(exc)
        count = re.search(r"Original Line: (.*?)\n.*Expected Number of Columns: (\d+) Found: (\d+)",
                          text, flags=re.S)
        if count is not None:  # worded as Arrow words it, which `unreadable` explains
            reason = f"Expected {count[2]} columns, got {count[3]}: {count[1]}"
        else:
            reason = " ".join(text.split("\n\n")[0].split())[:300]
        return DataError(f"{self.where}: {unreadable(reason)}")

    def not_utf8(self, exc: duckdb.Error) -> bool:
        """Whether DuckDB stopped at bytes that are not UTF-8 (the CSV needs a UTF-8 copy)."""
        return self.format == "csv" and self.text == self.path and "unicode" in str(exc).lower()

    def rewrite_as_utf8(self) -> None:
        """Copy the CSV as UTF-8, deciding line by line as the pandas reader does; warn as it does."""
        copy = self.scratch / "utf8.csv"
        opener = gzip.open if _is_gzip(self.path) else open
        lines = repaired = 0
        first = None
        with opener(self.path, "rb") as source, open(copy, "wb") as out:
            rest = b""
            while True:
                block = source.read(_BLOCK)
                data = rest + block
                cut = data.rfind(b"\n") + 1 if block else len(data)
                if block and cut == 0:
                    rest = data
                    continue
                piece, rest = data[:cut], data[cut:]
                decoded = decode_text(pa.py_buffer(piece), self.where)
                if decoded.cp1252_lines:
                    first = first or lines + decoded.first_cp1252_line
                    repaired += decoded.cp1252_lines
                lines += piece.count(b"\n") + piece.count(b"\r") - piece.count(b"\r\n")
                out.write(decoded.data)
                if not block:
                    break
        self.text = copy
        warning = DecodedText(pa.py_buffer(b""), "utf-8", repaired, first).warning(self.where)
        self.warnings = [warning] if warning else []

    def _parquet_header(self) -> tuple[list[str], list[int]]:
        try:
            names = pq.read_schema(self.path).names
        except (pa.ArrowException, OSError) as exc:
            raise DataError(f"{self.where}: {unreadable(' '.join(str(exc).split())[:300])}") from None
        # A pandas index written along with the frame is not a data column.
        kept = [i for i, n in enumerate(names) if not re.fullmatch(r"__index_level_\d+__", n)]
        return [names[i] for i in kept], [i + 1 for i in kept]

    def _csv_header(self) -> tuple[list[str], list[int]]:
        """The header line, with the pandas reader's checks and messages."""
        opener = gzip.open if _is_gzip(self.path) else open
        with opener(self.path, "rb") as f:
            head = f.read(_HEAD)
        if len(head) == _HEAD:  # whole code units, should it be UTF-16/32 text
            head = head[: len(head) // 4 * 4]
        decoded = decode_text(pa.py_buffer(head), self.where)  # the loader's encoding decision
        if decoded.encoding != "utf-8":
            raise DataError(f"{self.where}: {decoded.encoding.upper()} text is read by the pandas "
                            f"engine only; {_PANDAS} or save the file as UTF-8")
        text = decoded.data.to_pybytes()
        stripped = text.lstrip(b"\r\n")
        skipped = text[: len(text) - len(stripped)]
        self.skip = skipped.count(b"\n") + skipped.count(b"\r") - skipped.count(b"\r\n")
        first = re.split(rb"\r\n|\r|\n", stripped, maxsplit=1)[0]
        if not first.strip():
            raise DataError(f"{self.where}: the file is empty")
        line = first.decode("utf-8", errors="replace")
        if re.search(r"[\x00-\x08\x0b-\x1f\x7f-\x9f]", line):  # control characters
            raise DataError(f"{self.where}: not a CSV text file (binary data in the first line); "
                            f"expected CSV (plain or gzip), .xlsx or .parquet")
        header = next(csv.reader([line]))
        return header, list(range(1, len(header) + 1))

    def _describe(self) -> dict[str, str]:
        try:
            described = self.con.execute(f"DESCRIBE SELECT * FROM {self.relation()}").fetchall()
        except duckdb.Error as exc:
            raise self.read_error(exc) from None
        return {row[0]: row[1] for row in described}


def _is_gzip(path: Path) -> bool:
    with open(path, "rb") as f:
        return f.read(2) == b"\x1f\x8b"


def quote(text: str) -> str:
    """A SQL string literal."""
    return "'" + str(text).replace("'", "''") + "'"
