"""Cleaning out of core: `OutOfCoreLines` holds the cleaned lines of a file in DuckDB.

The steps of `TransactionCleaner` run as one SQL query in the cleaner's order, each line
counted under the first step that drops it; duplicates are found by grouping the remaining
lines on every column, which also leaves one row per distinct kept line for the features.
"""

from __future__ import annotations

import os
import shutil
import tempfile
from pathlib import Path

import duckdb
import pandas as pd
import pyarrow as pa

from segmentlab.data.cleaning import _BAD_DEBT, TransactionCleaner
from segmentlab.data.loading import OnlineRetailFile, _nothing_left
from segmentlab.outofcore.features import behaviour_features, rfm_features
from segmentlab.outofcore.source import Attempt, Source, estimate_lines, sql_list
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


class OutOfCoreLines:
    """The cleaned invoice lines of one file, held by DuckDB instead of pandas.

    Parameters
    ----------
    path : str
        A ``.parquet``, ``.csv`` or gzip CSV file in the Online Retail or Online Retail II layout.
    cleaner : TransactionCleaner, optional
        The cleaning settings; every switch of `TransactionCleaner` is honoured.
    memory_limit : str, optional
        DuckDB's memory limit, e.g. ``"8GB"``; above it, operators spill to ``temp_directory``.
        None gives a third of the machine's memory: on 24 GiB, 100 M lines peaked at 9.0 GiB
        with ``"8GB"`` and at 12.3 GiB with ``"12GB"``, for the same CPU time.
    threads : int, optional
        DuckDB worker threads; None lets DuckDB use every core.
    temp_directory : str, optional
        Parent of the private scratch directory (deleted by `close`); None uses the system's.
    """

    def __init__(self, path: str, cleaner: TransactionCleaner | None = None,
                 memory_limit: str | None = None, threads: int | None = None,
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
        third = os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES") // 3 // 2**20
        config = {"memory_limit": self.memory_limit or f"{third}MiB",
                  "temp_directory": str(self._scratch)}
        if self.threads is not None:
            config["threads"] = self.threads
        self._con = duckdb.connect(config=config)
        self._con.execute("SET enable_progress_bar = false")
        cleaner = self.cleaner if self.cleaner is not None else TransactionCleaner()
        _pandas_rules(self._con, cleaner)
        source = Source(self._file, self._con)
        try:
            counts = self._load(source, cleaner)
        except duckdb.Error as exc:
            if not source.switch_to_latin1(exc):
                raise source.unreadable(exc) from None
            counts = self._load(source, cleaner)
        source.raise_bad_cells({-step for step in counts if step < 0})
        self.ledger_ = self._ledger(cleaner, counts)
        self._keep(cleaner)
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

    def _load(self, source: Source, cleaner: TransactionCleaner) -> dict[int, int]:
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
        return ledger

    def _keep(self, cleaner: TransactionCleaner) -> None:
        """The ``kept`` view: the lines `TransactionCleaner.clean` returns, with ``amount``."""
        limit = cleaner.max_quantity
        outlier = "false" if limit is None else f"abs(quantity) > {int(limit)}"
        returns = "is_return" if cleaner.keep_returns else "false"
        self._con.execute(f"""
            CREATE VIEW kept AS
            SELECT customer_id, invoice_no, stock_code, quantity, invoice_date, unit_price,
                   country, {returns} AS is_return, quantity::DOUBLE * unit_price AS amount
            FROM lines WHERE step = 0 AND NOT ({outlier}) AND ({returns} OR NOT is_return)""")


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
        codes = sql_list({str(c).upper() for c in cleaner.non_product_codes})
        steps.append(("non_product_code", f"""CASE WHEN {ascii_only.format(STOCK_CODE)}
            THEN upper(stock_code) IN ({codes}) ELSE pd_non_product(stock_code) END"""))
    if cleaner.drop_non_positive_price:
        steps.append(("non_positive_price", "NOT (unit_price > 0)"))
    steps.append(("wrong_quantity_sign",
                  "CASE WHEN is_return THEN quantity >= 0 ELSE quantity <= 0 END"))
    return steps


def _load_sql(attempt: Attempt, cleaner: TransactionCleaner) -> str:
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


