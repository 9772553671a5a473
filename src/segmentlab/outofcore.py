"""Online Retail files read, cleaned and summarised per customer by DuckDB, out of core.

`OutOfCoreLines` answers what ``load_dataset`` + ``TransactionCleaner.clean`` + the RFM and
behaviour feature sets answer, for files too big for pandas (100 M lines): the line-level data
stays in DuckDB, which spills to a temporary directory above ``memory_limit``; only
customer-level frames come back, as pandas. The cleaning ledger is the pandas one, step for step
(the same rules in SQL, in the same order, duplicates found by grouping on every column), and
the feature frames equal the pandas ones up to float summation order; ``tests/test_outofcore.py``
proves both on synthetic and real files.

Bad input gives the pandas reader's one-line errors: a bad header is checked by
``OnlineRetailFile``, and when SQL finds a bad cell the offending column is re-read in file order
and converted by the pandas reader's own converter, which names the first bad row.

`choose_engine` says which path a run should take for a file.
"""

from __future__ import annotations

import csv
import gzip
import shutil
import tempfile
import zlib
from datetime import date, datetime, timedelta
from pathlib import Path

import duckdb
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq

from segmentlab.cleaning import _BAD_DEBT, TransactionCleaner
from segmentlab.data import (
    _DATE_FORMATS,
    _EXCEL_EPOCH_OFFSET,
    _EXCEL_LAST_DAY,
    _OPTIONAL,
    LAYOUTS,
    OnlineRetailFile,
    _convert,
    _header_key,
    _nothing_left,
)
from segmentlab.outofcore_features import behaviour_features, rfm_features
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
    CleaningLedger,
    DataError,
)

ENGINES = ("pandas", "duckdb", "auto")
#: ``auto`` reads files up to this many lines with pandas (about 3.7 GiB peak at 10 M lines).
MAX_PANDAS_LINES = 20_000_000
_TEXT = (INVOICE_NO, STOCK_CODE, DESCRIPTION, COUNTRY)
_WHOLE = (QUANTITY, CUSTOMER_ID)


class OutOfCoreLines:
    """The cleaned invoice lines of one file, held by DuckDB instead of pandas.

    Parameters
    ----------
    path : str
        A ``.parquet``, ``.csv`` or gzip CSV file in the Online Retail or Online Retail II layout.
    cleaner : TransactionCleaner, optional
        The cleaning settings; every switch of `TransactionCleaner` is honoured.
    memory_limit : str
        DuckDB's memory limit, e.g. ``"8GB"``; above it, operators spill to ``temp_directory``.
    threads : int, optional
        DuckDB worker threads; None lets DuckDB use every core.
    temp_directory : str, optional
        Parent of the private scratch directory (deleted by `close`); None uses the system's.
    """

    def __init__(self, path: str, cleaner: TransactionCleaner | None = None,
                 memory_limit: str = "8GB", threads: int | None = None,
                 temp_directory: str | None = None):
        self.path = path
        self.cleaner = cleaner
        self.memory_limit = memory_limit
        self.threads = threads
        self.temp_directory = temp_directory

    def clean(self) -> CleaningLedger:
        """Read and clean the file; keep the cleaned lines in DuckDB.

        Returns
        -------
        CleaningLedger
            Equal to ``TransactionCleaner.clean`` on ``OnlineRetailFile(path).read()``.

        Raises
        ------
        DataError
            One line naming the file (and column and data row for a bad cell), as the pandas
            reader would; also when cleaning leaves no purchase.
        """
        self._file = OnlineRetailFile(self.path)
        self._scratch = Path(tempfile.mkdtemp(prefix="segmentlab-duckdb-", dir=self.temp_directory))
        config = {"memory_limit": self.memory_limit, "temp_directory": str(self._scratch)}
        if self.threads is not None:
            config["threads"] = self.threads
        self._con = duckdb.connect(config=config)
        self._con.execute("SET enable_progress_bar = false")
        cleaner = self.cleaner if self.cleaner is not None else TransactionCleaner()
        _pandas_rules(self._con, cleaner)
        source = _Source(self._file, self._con)
        try:
            counts = self._load(source, cleaner)
        except duckdb.Error as exc:
            if not source.switch_to_latin1(exc):
                raise source.unreadable(exc) from None
            counts = self._load(source, cleaner)
        source.raise_bad_cells({-step for step in counts if step < 0})
        self.ledger_ = self._ledger(cleaner, counts)
        self.source_ = self._file.describe()
        return self.ledger_

    def fit_transform(self, feature_set) -> pd.DataFrame:
        """``feature_set.fit_transform(cleaned lines)``, computed by DuckDB.

        Parameters
        ----------
        feature_set : RFMFeatures or BehaviourFeatures
            Fitted in place (snapshot date, countries), as ``fit`` on the cleaned lines would.

        Returns
        -------
        DataFrame
            One row per customer with a purchase, indexed by ``customer_id``.
        """
        from segmentlab.features.behaviour import BehaviourFeatures
        from segmentlab.features.rfm import RFMFeatures

        if not hasattr(self, "ledger_"):
            raise RuntimeError("call clean() before fit_transform()")
        if isinstance(feature_set, RFMFeatures):
            return rfm_features(self._con, feature_set)
        if isinstance(feature_set, BehaviourFeatures):
            return behaviour_features(self._con, feature_set)
        raise DataError(f"feature set {type(feature_set).__name__} has no out-of-core version "
                        f"(only RFMFeatures and BehaviourFeatures); use data.engine=pandas")

    def close(self) -> None:
        """Drop the DuckDB database and its scratch directory."""
        if getattr(self, "_con", None) is not None:
            self._con.close()
            self._con = None
        if getattr(self, "_scratch", None) is not None:
            shutil.rmtree(self._scratch, ignore_errors=True)
            self._scratch = None

    def __enter__(self) -> OutOfCoreLines:
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    def _load(self, source: _Source, cleaner: TransactionCleaner) -> dict[int, int]:
        """Fill ``lines``; return rows per step (negative: a bad cell in that source column)."""
        date_step = -(SOURCE_COLUMNS.index(INVOICE_DATE) + 1)
        for attempt in source.attempts():
            try:
                self._con.execute("SET preserve_insertion_order = false")  # less memory
                self._con.execute(_load_sql(attempt, cleaner))
            except duckdb.Error as exc:
                if source.switch_to_latin1(exc):
                    return self._load(source, cleaner)
                raise source.unreadable(exc) from None
            counts = dict(self._con.execute("SELECT step, sum(copies)::BIGINT FROM lines "
                                            "GROUP BY step").fetchall())
            # As the pandas reader does: the next date format that fits, if this one failed.
            if date_step not in counts or not attempt.retry_on_bad_date:
                return counts
        return counts

    def _ledger(self, cleaner: TransactionCleaner, counts: dict[int, int]) -> CleaningLedger:
        """The ledger from the per-step counts and the distinct kept lines."""
        limit = cleaner.max_quantity
        outlier = "false" if limit is None else f"abs(quantity) > {int(limit)}"
        dup, out, ret, kept = self._con.execute(f"""
            SELECT coalesce(sum(copies - 1), 0), count(*) FILTER ({outlier}),
                   count(*) FILTER (NOT ({outlier}) AND is_return),
                   count(*) FILTER (NOT ({outlier}) AND NOT is_return)
            FROM lines WHERE step = 0""").fetchall()[0]
        dropped = {name: int(counts.get(i + 1, 0)) for i, (name, _) in enumerate(_steps(cleaner))}
        if cleaner.drop_duplicates:
            dropped["duplicate"] = int(dup)
        if limit is not None:
            dropped["quantity_outlier"] = int(out)
        dropped["cancellation_kept_as_return" if cleaner.keep_returns
                else "cancellation_dropped"] = int(ret)
        ledger = CleaningLedger(int(sum(counts.values())), int(kept), dropped)
        if ledger.rows_in == 0:
            raise DataError(f"{self._file.describe()}: the file has a header but no data rows")
        if kept == 0:
            raise DataError(_nothing_left(self._file.describe(), ledger))
        returns = "is_return" if cleaner.keep_returns else "false"
        self._con.execute(f"""
            CREATE VIEW kept AS
            SELECT customer_id, invoice_no, stock_code, quantity, invoice_date, unit_price,
                   country, {returns} AS is_return, quantity::DOUBLE * unit_price AS amount
            FROM lines WHERE step = 0 AND NOT ({outlier}) AND ({returns} OR NOT is_return)""")
        return ledger


def choose_engine(path: str, engine: str = "auto", max_pandas_lines: int = MAX_PANDAS_LINES) -> str:
    """``"pandas"`` or ``"duckdb"`` for reading ``path``.

    Parameters
    ----------
    path : str
        The data file.
    engine : {"auto", "pandas", "duckdb"}
        ``auto`` picks DuckDB above ``max_pandas_lines`` lines (counted from the Parquet footer,
        estimated from the first MiB of a CSV); the other two are returned as they are.
    max_pandas_lines : int
        Largest file pandas reads under ``auto``.
    """
    if engine not in ENGINES:
        raise ValueError(f"data.engine must be one of {', '.join(ENGINES)}, got {engine!r}")
    if engine != "auto":
        return engine
    return "duckdb" if estimate_lines(path) > max_pandas_lines else "pandas"


def estimate_lines(path: str) -> int:
    """Data lines of a file: exact for Parquet, from the first MiB for CSV (plain or gzip)."""
    file = Path(path)
    if _is_parquet(file):
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


def _is_parquet(file: Path) -> bool:
    return file.name.lower().endswith((".parquet", ".pq"))


def _is_gzip(path: str) -> bool:
    with open(path, "rb") as f:
        return f.read(2) == b"\x1f\x8b"


def _pandas_rules(con: duckdb.DuckDBPyConnection, cleaner: TransactionCleaner) -> None:
    """The text rules of `TransactionCleaner` as SQL functions that run its pandas code.

    SQL's ``upper``/``lower`` agree with pandas' (Arrow's) on ASCII only, so non-ASCII values,
    rare in this data, go to these functions, which DuckDB calls on those rows alone.
    """
    codes = {str(c).upper() for c in cleaner.non_product_codes}
    rules = {"pd_upper": (lambda v: v.str.upper(), "VARCHAR"),
             "pd_bad_debt": (lambda v: v.str.strip().str.lower() == _BAD_DEBT, "BOOLEAN"),
             "pd_non_product": (lambda v: v.str.upper().isin(codes), "BOOLEAN")}
    for name, (rule, kind) in rules.items():
        con.create_function(name, _on_pandas_text(rule), ["VARCHAR"], kind, type="arrow")


def _on_pandas_text(rule):
    """An Arrow UDF applying ``rule`` to the values as a pandas ``str`` Series, as cleaning does."""
    def udf(values: pa.Array) -> pa.Array:
        return pa.array(rule(pd.Series(values.to_pylist(), dtype="str")).to_list())
    return udf


def _steps(cleaner: TransactionCleaner) -> list[tuple[str, str]]:
    """(ledger name, SQL condition) of steps 1-5 of `TransactionCleaner`, in its order."""
    ascii_only = "strlen({0}) = length({0})"
    steps = []
    if cleaner.drop_missing_customer:
        steps.append(("missing_customer", "customer_id IS NULL"))
    if cleaner.drop_bad_debt:
        # The pandas rule can only hold where the ASCII phrase occurs in some case (no other
        # character lower-cases to these letters), so ILIKE picks the few lines it judges.
        steps.append(("bad_debt", f"""starts_with(invoice_no, 'A') OR CASE
            WHEN description ILIKE '%{_BAD_DEBT}%' THEN pd_bad_debt(description) ELSE false END"""))
    if len(cleaner.non_product_codes) > 0:
        codes = _list({str(c).upper() for c in cleaner.non_product_codes})
        steps.append(("non_product_code", f"""CASE WHEN {ascii_only.format(STOCK_CODE)}
            THEN upper(stock_code) IN ({codes}) ELSE pd_non_product(stock_code) END"""))
    if cleaner.drop_non_positive_price:
        steps.append(("non_positive_price", "NOT (unit_price > 0)"))
    steps.append(("wrong_quantity_sign",
                  "CASE WHEN is_return THEN quantity >= 0 ELSE quantity <= 0 END"))
    return steps


def _load_sql(attempt: _Attempt, cleaner: TransactionCleaner) -> str:
    """``lines``: one row per distinct line that passed steps 1-5 (with its copies), one per
    other step; bad cells get step ``-k`` for source column ``k`` (1-based)."""
    bad = [f"WHEN bad_{k} THEN -{k}" for k in attempt.bad]
    rules = [f"WHEN {cond} THEN {i}" for i, (_, cond) in enumerate(_steps(cleaner), 1)]
    step = f"CASE {' '.join(bad + rules)} ELSE 0 END"
    code = STOCK_CODE
    if cleaner.uppercase_stock_codes:
        code = f"CASE WHEN strlen({code}) = length({code}) THEN upper({code}) ELSE pd_upper({code}) END"
    columns = [INVOICE_NO, STOCK_CODE, DESCRIPTION, QUANTITY, INVOICE_DATE, UNIT_PRICE,
               CUSTOMER_ID, COUNTRY, "is_return"]
    # Lines dropped by a step are counted, not kept: their columns are blanked, so each step
    # forms one group; the rest group on every column (the description too, though it is not
    # kept), which is the exact duplicate check.
    blanked = ", ".join(f"CASE WHEN step = 0 THEN {c} END AS {c}" for c in columns)
    kept = ", ".join(c for c in columns if c != DESCRIPTION)
    dedupe = cleaner.drop_duplicates
    return f"""
        CREATE OR REPLACE TABLE lines AS
        WITH typed AS (SELECT {attempt.select} FROM {attempt.relation}),
        cased AS (SELECT * REPLACE ({code} AS {STOCK_CODE}) FROM typed),
        flagged AS (SELECT *, {step} AS step FROM cased)
        SELECT step, {kept}, {"count(*)" if dedupe else "1"} AS copies
        FROM (SELECT step, {blanked} FROM flagged)
        {f"GROUP BY step, {', '.join(columns)}" if dedupe else ""}"""


class _Attempt:
    """One way to read the file: its relation, typed columns and bad-cell conditions."""

    def __init__(self, relation: str, select: str, bad: list[int], retry_on_bad_date: bool):
        self.relation = relation
        self.select = select
        self.bad = bad
        self.retry_on_bad_date = retry_on_bad_date


class _Source:
    """The file as DuckDB sees it: header checked, columns typed as the pandas reader types them."""

    def __init__(self, file: OnlineRetailFile, con: duckdb.DuckDBPyConnection):
        self.file = file
        self.con = con
        file._check_exists()
        if Path(file.describe()).stat().st_size == 0:
            raise DataError(f"{file.describe()}: the file is empty")
        self.parquet = _is_parquet(Path(file.describe()))
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
        path = _quote(self.file.describe())
        if self.parquet:
            return f"read_parquet({path})"
        compression = "gzip" if _is_gzip(self.file.describe()) else "none"
        # Positional names: the header was checked above; blank names hold nothing or fail.
        columns = ", ".join(f"{_quote(self._column(i))}: 'VARCHAR'" for i in range(len(self.header)))
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
            yield _Attempt(self.relation(), select, bad, retry_on_bad_date=i + 1 < len(formats))

    def unreadable(self, exc: Exception) -> DataError:
        reason = " ".join(str(exc).split())[:300]
        return DataError(f"{self.file.describe()}: cannot read the file ({reason})")

    def raise_bad_cells(self, columns: set[int]) -> None:
        """Let the pandas converter name the first bad cell of the first bad column."""
        if not columns:
            return
        for k in sorted(columns):
            if k > len(SOURCE_COLUMNS):  # a value under a blank header
                raise DataError(f"{self.file.describe()}: column {k - len(SOURCE_COLUMNS)} holds "
                                f"values but has no name in the header; expected a name in the "
                                f"header for every column that holds values")
            target = SOURCE_COLUMNS[k - 1]
            name = self._name(target)
            _convert(target, self._column_values(name), f"{self.file.describe()}: column {name!r}")
        raise DataError(f"{self.file.describe()}: column {self._name(SOURCE_COLUMNS[min(columns) - 1])!r}"
                        f" holds values the duckdb engine cannot convert as the pandas reader "
                        f"does; use data.engine=pandas")

    def _column_values(self, name: str) -> pa.ChunkedArray:
        """One column in file order, typed as the pandas reader gets it (the error path only)."""
        if self.parquet:
            return pq.read_table(self.file.describe(), columns=[name]).column(name)
        self.con.execute("SET preserve_insertion_order = true")
        values = self.con.sql(f"SELECT {_ident(self._column_of(name))} AS v "
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
        opener = gzip.open if _is_gzip(self.file.describe()) else open
        with opener(self.file.describe(), "rb") as f:
            first = b""
            while not first.strip() and (line := f.readline()):
                first = line  # blank lines before the header are skipped, as pandas does
        first = first.rstrip(b"\r\n")
        if not first.strip():
            raise DataError(f"{self.file.describe()}: the file is empty")
        try:
            text = first.decode("utf-8-sig")
        except UnicodeDecodeError:
            text, self.encoding = first.decode("latin-1"), "latin-1"
        return next(csv.reader([text]))

    def _column(self, i: int) -> str:
        name = self.header[i]
        return name if str(name).strip() else f"__blank_{i}"

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
        column = _ident(self._column_of(self._name(INVOICE_DATE)))
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
                target, _ident(name), types.get(self._name(target), "VARCHAR"), date_format)
        for i, name in enumerate(self.header):
            if not str(name).strip():
                bad[len(SOURCE_COLUMNS) + 1 + i] = f"{_ident(self._column(i))} IS NOT NULL"
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
        value = f"try_strptime(trim({column}), {_quote(date_format)})"
    elif kind == "VARCHAR":
        value = "CAST(NULL AS TIMESTAMP)"
    else:
        return _unsupported(target, kind)
    return value, (f"{column} IS NULL OR NOT coalesce({value} < TIMESTAMP '{limit:%Y-%m-%d}', "
                   f"false)")


def _unsupported(target: str, kind: str):
    raise DataError(f"column for {target}: a {kind} column is not read by the duckdb engine; "
                    f"expected text or whole numbers (use data.engine=pandas)")


def _quote(text: str) -> str:
    return "'" + str(text).replace("'", "''") + "'"


def _ident(name: str) -> str:
    return '"' + str(name).replace('"', '""') + '"'


def _list(values) -> str:
    """A SQL IN list; never empty (NULL matches nothing)."""
    return ", ".join(_quote(v) for v in sorted(values)) or "NULL"


