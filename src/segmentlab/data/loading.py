"""Reading Online Retail files into one normalised history, and loading a cleaned Dataset.

`OnlineRetailFile` reads one file or several: CSV (plain or gzip; UTF-8, UTF-16 or UTF-32, with
stray Windows-1252 lines decoded and counted), ``.xlsx`` workbooks (every sheet by default) and
``.parquet`` (typed or all text), in either the Online Retail or the Online Retail II layout
(`segmentlab.data.formats`). Every part (a file, or a sheet) becomes ``schema.RAW_COLUMNS``
(`segmentlab.data.columns`, `segmentlab.data.dates`); parts are joined in time order with lines shared by
two parts counted once (`segmentlab.data.sources`). `load_dataset` ties a source to a
`TransactionCleaner` through a verified on-disk cache.

Bad input ends in one `DataError` line, never in a half-loaded frame: a cell that is not what
its column holds (text in a number, an unparseable date, dates that read both day-first and
month-first) and an invoice dated before 1990 or after today reject the file. What is
well-formed but unusable (no customer, price <= 0, huge quantities) loads and is counted in the
cleaning ledger; when cleaning leaves no purchase at all, `load_dataset` says so. Blank lines are
skipped, and columns without a header name are dropped when they hold nothing (a trailing comma
on every line).
"""

from __future__ import annotations

import os
import re
import warnings
import zipfile
from collections.abc import Sequence
from pathlib import Path
from typing import Protocol

import fastexcel
import pandas as pd
import pyarrow as pa

from segmentlab.cache import FrameCache, file_hash, stable_hash
from segmentlab.data.cleaning import TransactionCleaner
from segmentlab.data.columns import check_filled, convert_column
from segmentlab.data.dates import parse_dates
from segmentlab.data.formats import LAYOUTS, RawPart, file_format, header_key, read_parts
from segmentlab.data.sources import OVERLAP_STEP, Reading, combine_parts
from segmentlab.schema import (
    AMOUNT,
    CLEAN_COLUMNS,
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

__all__ = ["CACHE_VERSION", "LAYOUTS", "OnlineRetailFile", "TransactionSource", "convert_source_column",
           "load_dataset", "nothing_left", "unreadable"]

#: Bump whenever reading or cleaning changes what a cached Dataset would contain.
CACHE_VERSION = 3

ENV_VAR = "SEGMENTLAB_DATA"
#: How a run may read the file (``data.engine``): see `segmentlab.data.outofcore.choose_engine`.
ENGINES = ("auto", "pandas", "duckdb")
_READ_ERRORS = (pa.ArrowException, OSError, EOFError, ValueError, KeyError, zipfile.BadZipFile,
                fastexcel.FastExcelError)


class OnlineRetailFile:
    """Online Retail or Online Retail II files on disk, as one data source.

    Parameters
    ----------
    path : str or list of str, optional
        One file or several (``data.path=[a.csv,b.xlsx]``): ``.csv``, ``.csv.gz`` (any gzip
        CSV), ``.xlsx`` or ``.parquet``. When None, the ``SEGMENTLAB_DATA`` environment variable
        is used.
    sheets : "all", str, int or list of str/int
        Workbook sheets to read, by name or 0-based position; ``"all"`` reads every sheet (empty
        ones are skipped with a warning).
    date_format : str, optional
        strptime format of text dates (``%d/%m/%Y %H:%M``); None detects it from the whole column.
    dayfirst : bool, optional
        Settles text dates that read both day-first and month-first (``01/02/2011``).
    sheet : str or int, optional
        The former single-sheet option, still read from older configs: the same as
        ``sheets=[sheet]``. It cannot be combined with ``sheets``.
    engine : {"auto", "pandas", "duckdb"}
        How a run reads the file: ``pandas`` holds every line in memory (`read`, every stage of
        a run); ``duckdb`` keeps the lines in DuckDB and hands the run customer-level frames
        (`segmentlab.data.outofcore`), for files too big for memory; ``auto`` takes DuckDB for
        one CSV or Parquet file above ``outofcore.MAX_PANDAS_LINES`` lines. It does not change
        what is read, nor the fingerprint.

    Attributes
    ----------
    reading_ : Reading
        Set by `read`: the parts read with their lines and dates, the lines found in two parts,
        and warnings.
    """

    def __init__(self, path: str | Sequence[str] | None = None,
                 sheets: str | int | Sequence[str | int] = "all", date_format: str | None = None,
                 dayfirst: bool | None = None, sheet: str | int | None = None,
                 engine: str = "auto"):
        self.path = path
        self.sheets = sheets
        self.date_format = date_format
        self.dayfirst = dayfirst
        self.sheet = sheet
        self.engine = engine
        resolved = path if path is not None else os.environ.get(ENV_VAR)
        if not resolved or (isinstance(resolved, str) and not resolved.strip()):
            raise DataError(f"no data file given: pass data.path=PATH or set {ENV_VAR}")
        paths = [resolved] if isinstance(resolved, str | os.PathLike) else list(resolved)
        if not paths:
            raise DataError("data.path is an empty list; expected one file or a list of files")
        self._files = [Path(str(p)).expanduser() for p in paths]
        self._sheets = _sheet_selection(sheets, sheet)
        if dayfirst not in (None, True, False):
            raise DataError(f"data.dayfirst={dayfirst!r}; expected true, false or null")
        if engine not in ENGINES:
            raise DataError(f"data.engine={engine!r}; expected {', '.join(ENGINES)}")

    @property
    def files(self) -> list[Path]:
        """The files to read, as paths (user home expanded)."""
        return list(self._files)

    def describe(self) -> str:
        """The file's path, or the paths joined by `` + ``."""
        return " + ".join(str(f) for f in self._files)

    def fingerprint(self) -> str:
        """Content hash of every file, plus the options that change what is read.

        A single CSV or Parquet file read with the default options hashes to its bytes' digest,
        as before multi-file sources existed.
        """
        digests = [self._hash(f) for f in self._files]
        options = {}
        if any(file_format(f) == "xlsx" for f in self._files):
            options["sheets"] = self._sheets or "all"
        if self.date_format is not None:
            options["date_format"] = self.date_format
        if self.dayfirst is not None:
            options["dayfirst"] = self.dayfirst
        if len(digests) == 1 and not options:
            return digests[0]
        if len(digests) == 1 and self.sheet is not None and list(options) == ["sheets"]:
            return f"{digests[0]}-sheet-{self.sheet}"  # the hash older runs logged
        return stable_hash({"files": digests, **options})

    def truth(self) -> None:
        """Real data has no planted segments."""
        return None

    def read(self) -> pd.DataFrame:
        """Read every file (every selected sheet) into one history in ``RAW_COLUMNS``.

        Returns
        -------
        DataFrame
            ``customer_id`` is nullable ``Int64``; ``description``, ``customer_id`` and
            ``country`` may be missing; ``amount`` is ``quantity * unit_price``. Parts follow
            each other in time order; a line found in two parts is there once (as often as the
            part holding it most often has it). ``reading_`` tells what was read.

        Raises
        ------
        DataError
            One line naming the file (and sheet), column, first bad data row (1-based, header
            excluded) and value, for a missing, unreadable or malformed file.
        """
        parts, notes = [], []
        for file in self._files:
            raw_parts, warnings_ = self._read_file(file)
            parts += [(part.name, _normalise(part, self.date_format, self.dayfirst))
                      for part in raw_parts]
            notes += warnings_
        frame, self.reading_ = combine_parts(parts, tuple(notes))
        return frame

    def _read_file(self, file: Path) -> tuple[list[RawPart], list[str]]:
        self._check_exists(file)
        if file.stat().st_size == 0:
            raise DataError(f"{file}: the file is empty")
        try:
            return read_parts(file, self._sheets)
        except _READ_ERRORS as exc:
            reason = " ".join(str(exc).split())[:300] or type(exc).__name__
            raise DataError(f"{file}: {unreadable(reason)}") from None

    def _hash(self, file: Path) -> str:
        self._check_exists(file)
        try:
            return file_hash(file)
        except OSError as exc:
            raise DataError(f"{file}: cannot open ({exc.strerror or exc})") from None

    @staticmethod
    def _check_exists(file: Path) -> None:
        if not file.is_file():
            what = "is a directory" if file.is_dir() else "no such file"
            raise DataError(f"{file}: {what}")


def _sheet_selection(sheets, sheet) -> list[str | int] | None:
    """The sheets to read as a list, or None for all of them."""
    if sheet is not None:
        if not (isinstance(sheets, str) and sheets == "all"):
            raise DataError(f"both data.sheet={sheet!r} and data.sheets={sheets!r} are given; "
                            f"data.sheet is the former name: keep only data.sheets")
        sheets = [sheet]
    if isinstance(sheets, str) and sheets.strip().lower() == "all":
        return None
    chosen = [sheets] if isinstance(sheets, str | int) else list(sheets)
    if not chosen or any(isinstance(s, bool) or not isinstance(s, str | int) for s in chosen):
        raise DataError(f"data.sheets={sheets!r}; expected all, or a list of sheet names or "
                        f"positions from 0, e.g. data.sheets=[0,'Year 2010-2011']")
    return chosen


def _normalise(part: RawPart, date_format: str | None, dayfirst: bool | None) -> pd.DataFrame:
    """A part's columns converted to ``RAW_COLUMNS``, or a DataError naming the first bad cell."""
    table = part.table
    if table.num_rows == 0:
        raise DataError(f"{part.where}: the file has a header but no data rows")
    by_key = {header_key(n): i for i, n in enumerate(table.column_names)}
    layout = next(cols for cols in LAYOUTS.values() if all(header_key(c) in by_key for c in cols))
    columns = {}
    for target, source_name in zip(SOURCE_COLUMNS, layout, strict=True):
        name = table.column_names[by_key[header_key(source_name)]]
        columns[target] = convert_source_column(target, table.column(name),
                                                f"{part.where}: column {name!r}", date_format,
                                                dayfirst)
    frame = pd.DataFrame(columns)
    frame[AMOUNT] = frame[QUANTITY] * frame[UNIT_PRICE]
    return frame[RAW_COLUMNS]


def convert_source_column(target: str, column: pa.ChunkedArray, where: str,
                          date_format: str | None = None, dayfirst: bool | None = None) -> pd.Series:
    """One source column as the pandas values ``RAW_COLUMNS`` prescribe, checked as `read` checks it.

    Parameters
    ----------
    target : str
        The ``SOURCE_COLUMNS`` name the column is read as.
    column : pyarrow.ChunkedArray
        The whole column as read, in file order (blank text already missing).
    where : str
        The file and column as error messages name them: ``PATH: column 'Quantity'``.
    date_format, dayfirst
        As `OnlineRetailFile` takes them, for the invoice date.

    Returns
    -------
    Series

    Raises
    ------
    DataError
        One line naming ``where``, the first bad data row (1-based) and its value.
    """
    try:
        check_filled(target, column, where)
        if target == INVOICE_DATE:
            return parse_dates(column, where, date_format, dayfirst).to_pandas()
        return convert_column(target, column, where)
    except pa.ArrowException as exc:  # e.g. a number beyond int64
        raise DataError(f"{where}: {' '.join(str(exc).split())[:300]}") from None


def unreadable(reason: str) -> str:
    """Why a file cannot be parsed, from the parser's ``reason``; a wrong field count, reported
    as Arrow words it (``Expected 8 columns, got 9: LINE``), says what to look for."""
    count = re.search(r"Expected (\d+) columns, got (\d+): (.*)", reason)
    if count is None:
        return f"cannot read the file ({reason})"
    expected, got, line = int(count[1]), int(count[2]), count[3]
    hint = ("a trailing comma, or a comma in an unquoted text?" if got > expected
            else "a line cut short?")
    line = line if len(line) <= 120 else line[:117] + "..."
    return (f"cannot read the file: a line has {got} fields where the header has {expected} "
            f"({hint}): {line!r}")


class TransactionSource(Protocol):
    """What `load_dataset` needs from a source: a file, or a synthetic generator."""

    def describe(self) -> str: ...
    def fingerprint(self) -> str: ...
    def read(self) -> pd.DataFrame: ...
    def truth(self) -> pd.Series | None: ...


def load_dataset(source: TransactionSource, cleaner: TransactionCleaner,
                 cache_dir: str | None = "outputs/cache", raw: pd.DataFrame | None = None) -> Dataset:
    """Read and clean a source, or take the result from the cache.

    Parameters
    ----------
    source : TransactionSource
        Anything with ``describe()``, ``fingerprint()``, ``read()`` and ``truth()``.
    cleaner : TransactionCleaner
        Its parameters are part of the cache key.
    cache_dir : str or None
        Cache directory; None disables caching.
    raw : DataFrame, optional
        What ``source.read()`` returned, when the caller has read it already (it is not read again).

    Returns
    -------
    Dataset
        With ``cache_hit=True`` when ``source.read()`` was not called. For a source of several
        parts the ledger starts with ``overlap_duplicate`` (lines found in two parts, counted
        once), and ``notes`` lists the parts read and any warning, for the caller to show.
    """
    data_hash = source.fingerprint()
    key = stable_hash({"data": data_hash, "cleaning": cleaner.get_params(),
                       "version": CACHE_VERSION})
    cache = FrameCache(cache_dir) if cache_dir is not None else None
    if cache is not None and (cached := _from_cache(cache, key)) is not None:
        return cached
    raw = source.read() if raw is None else raw
    reading = getattr(source, "reading_", None)  # sources of several parts say what they read
    transactions, ledger = cleaner.clean(raw)
    if isinstance(reading, Reading) and len(reading.parts) > 1:
        ledger = CleaningLedger(ledger.rows_in + reading.overlap_duplicate, ledger.rows_kept,
                                {OVERLAP_STEP: reading.overlap_duplicate, **ledger.dropped})
    notes = reading.notes() if isinstance(reading, Reading) else ()
    if not (~transactions[IS_RETURN].to_numpy(bool)).any():
        raise DataError(nothing_left(source.describe(), ledger))
    truth = source.truth()
    dataset = Dataset(transactions, ledger, data_hash, source.describe(), truth, notes=notes)
    if cache is not None:
        _to_cache(cache, key, dataset)
    return dataset


def nothing_left(source: str, ledger: CleaningLedger) -> str:
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
            "data_hash": dataset.data_hash, "truth_name": truth_name, "notes": list(dataset.notes)}
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
                   meta["source"], truth, cache_hit=True, notes=tuple(meta.get("notes", ())))
