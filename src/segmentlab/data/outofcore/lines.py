"""Cleaning out of core: `OutOfCoreLines` holds the cleaned lines of a file in DuckDB.

The file is read three times: to check every cell as the pandas reader checks it (`cells`), to
learn the text values (see below), and to type and clean it. The steps of `TransactionCleaner` run
as one SQL query in the cleaner's order, each line counted under the first step that drops it;
duplicates are found by grouping the remaining lines on every column, which also leaves one row
per distinct kept line for the features.

Grouping on text costs twice what grouping on numbers does, so the text columns are grouped by
their 64-bit hash, once the distinct values of each column are counted and found to have as many
distinct hashes (else that column is grouped as text): equal lines, and only they, stay equal.
The features only count invoices and products, so they work on these keys too; countries are
mapped back to their names by a small table.
"""

from __future__ import annotations

import os
import shutil
import tempfile
from pathlib import Path

import duckdb
import pandas as pd
import pyarrow as pa

from segmentlab.data.cleaning import BAD_DEBT, TransactionCleaner
from segmentlab.data.loading import OnlineRetailFile, nothing_left
from segmentlab.data.outofcore import features
from segmentlab.data.outofcore.cells import TypedColumns, at
from segmentlab.data.outofcore.reading import SourceFile, quote
from segmentlab.data.sources import PartSummary, Reading
from segmentlab.schema import (
    COUNTRY,
    CUSTOMER_ID,
    DESCRIPTION,
    INVOICE_DATE,
    INVOICE_NO,
    QUANTITY,
    STOCK_CODE,
    UNIT_PRICE,
    CleaningLedger,
    DataError,
)


class OutOfCoreLines:
    """The cleaned invoice lines of one file, held by DuckDB instead of pandas.

    Parameters
    ----------
    source : OnlineRetailFile or str
        One ``.parquet``, ``.csv`` or gzip CSV file in the Online Retail or Online Retail II
        layout; its ``date_format`` and ``dayfirst`` apply as for the pandas reader.
    cleaner : TransactionCleaner, optional
        The cleaning settings; every switch of `TransactionCleaner` is honoured.
    memory_limit : str, optional
        DuckDB's memory limit, e.g. ``"8GB"``; above it, operators spill to the scratch
        directory. None gives a third of the machine's memory.
    threads : int, optional
        DuckDB worker threads; None lets DuckDB use every core.
    temp_directory : str, optional
        Parent of the private scratch directory (deleted by `close`); None uses the system's.

    Attributes
    ----------
    ledger_ : CleaningLedger
        Set by `clean`: equal to the pandas reader's and cleaner's.
    notes_ : tuple of str
        Set by `clean`: what the pandas reader says it read (``Dataset.notes``).
    """

    def __init__(self, source: OnlineRetailFile | str, cleaner: TransactionCleaner | None = None,
                 memory_limit: str | None = None, threads: int | None = None,
                 temp_directory: str | None = None):
        self.source = source
        self.cleaner = cleaner
        self.memory_limit = memory_limit
        self.threads = threads
        self.temp_directory = temp_directory

    def clean(self) -> CleaningLedger:
        """Read and clean the file; keep the cleaned lines in DuckDB.

        Returns
        -------
        CleaningLedger
            Equal to ``TransactionCleaner.clean`` of ``OnlineRetailFile.read()``.

        Raises
        ------
        DataError
            The pandas reader's one line for a file it rejects (column, data row and value for a
            bad cell), also when cleaning leaves no purchase; a one-line request to use the pandas
            engine for what this engine does not read (several files, workbooks, UTF-16).
        """
        source = self.source if isinstance(self.source, OnlineRetailFile) else \
            OnlineRetailFile(str(self.source))
        if len(source.files) != 1:
            raise DataError(f"{source.describe()}: the duckdb engine reads one CSV or Parquet file; "
                            f"several files are read by data.engine=pandas")
        cleaner = self.cleaner if self.cleaner is not None else TransactionCleaner()
        self._connect()
        _pandas_rules(self._con, cleaner)
        file = SourceFile(source.files[0], self._con, self._scratch)
        typed = TypedColumns(file, source.date_format, source.dayfirst)
        try:
            rows, first, last = self._read(typed, cleaner)
        except duckdb.Error as exc:
            if not file.not_utf8(exc):  # DuckDB checks UTF-8 only in the columns a pass reads
                raise file.read_error(exc) from None
            file.rewrite_as_utf8()
            try:
                rows, first, last = self._read(typed, cleaner)
            except duckdb.Error as again:
                raise file.read_error(again) from None
        part = PartSummary(file.path.name, rows, pd.Timestamp(first), pd.Timestamp(last))
        self.notes_ = Reading((part,), 0, tuple(file.warnings)).notes()
        counts = dict(self._con.execute("SELECT step, sum(copies)::BIGINT FROM lines "
                                        "GROUP BY step").fetchall())
        self.ledger_ = self._ledger(cleaner, counts, source.describe())
        self._keep(cleaner)
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
        self._check_cleaned()
        return features.fit_transform(self._con, feature_set)

    def customer_summary(self) -> pd.DataFrame:
        """`segmentlab.customers.customer_summary` of the cleaned lines, computed by DuckDB."""
        self._check_cleaned()
        return features.customer_summary(self._con)

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

    def _connect(self) -> None:
        self.close()
        self._scratch = Path(tempfile.mkdtemp(prefix="segmentlab-duckdb-", dir=self.temp_directory))
        third = os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES") // 3 // 2**20
        config = {"memory_limit": self.memory_limit or f"{third}MiB",
                  "temp_directory": str(self._scratch)}
        if self.threads is not None:
            config["threads"] = self.threads
        self._con = duckdb.connect(config=config)
        self._con.execute("SET enable_progress_bar = false")

    def _check_cleaned(self) -> None:
        if not hasattr(self, "ledger_") or getattr(self, "_con", None) is None:
            raise RuntimeError("call clean() first (and before close())")

    def _read(self, typed: TypedColumns, cleaner: TransactionCleaner) -> tuple[int, object, object]:
        """Check the cells, learn the text keys and fill ``lines``; return lines and date range."""
        rows, first, last = typed.check()
        self._con.execute("SET preserve_insertion_order = false")  # less memory
        cased = _cased_sql(typed, typed.source.relation(), cleaner)
        self._con.execute(_load_sql(cased, cleaner, self._keys(cased)))
        return rows, first, last

    def _keys(self, cased: str) -> dict[str, str]:
        """What each text column is grouped by: its hash where no two of its values share one.

        Also makes the ``countries`` table: every country (and missing) with its key.
        """
        text = [INVOICE_NO, STOCK_CODE, DESCRIPTION]
        counts = ", ".join(f"count(DISTINCT {c}) + max(({c} IS NULL)::INT), count(DISTINCT hash({c}))"
                           for c in text)
        *found, countries = self._con.execute(
            f"SELECT {counts}, list(DISTINCT {COUNTRY}) FROM ({cased})").fetchone()
        keys = {c: "hash({c})" if found[2 * i] == found[2 * i + 1] else "{c}"
                for i, c in enumerate(text)}
        self._con.execute("CREATE OR REPLACE TABLE countries AS SELECT DISTINCT unnest("
                          "list_append(CAST($countries AS VARCHAR[]), NULL)) AS country",
                          {"countries": countries or []})
        n, hashes = self._con.execute("SELECT count(*), count(DISTINCT hash(country)) "
                                      "FROM countries").fetchone()
        keys[COUNTRY] = "hash({c})" if n == hashes else "{c}"
        self._con.execute(f"CREATE OR REPLACE TABLE countries AS SELECT country, "
                          f"{at(keys[COUNTRY], 'country')} AS country_key FROM countries")
        return keys

    def _ledger(self, cleaner: TransactionCleaner, counts: dict[int, int],
                where: str) -> CleaningLedger:
        """The ledger from the per-step counts and the distinct kept lines."""
        outlier = _outlier(cleaner)
        dup, out, ret, kept = self._con.execute(f"""
            SELECT coalesce(sum(copies - 1), 0), count(*) FILTER ({outlier}),
                   count(*) FILTER (NOT ({outlier}) AND is_return),
                   count(*) FILTER (NOT ({outlier}) AND NOT is_return)
            FROM lines WHERE step = 0""").fetchall()[0]
        dropped = {name: int(counts.get(i + 1, 0)) for i, (name, _) in enumerate(_steps(cleaner))}
        if cleaner.drop_duplicates:
            dropped["duplicate"] = int(dup)
        if cleaner.max_quantity is not None:
            dropped["quantity_outlier"] = int(out)
        dropped["cancellation_kept_as_return" if cleaner.keep_returns
                else "cancellation_dropped"] = int(ret)
        ledger = CleaningLedger(int(sum(counts.values())), int(kept), dropped)
        if kept == 0:
            raise DataError(nothing_left(where, ledger))
        return ledger

    def _keep(self, cleaner: TransactionCleaner) -> None:
        """The ``kept`` view: the lines `TransactionCleaner.clean` returns, with ``amount``."""
        outlier = _outlier(cleaner)
        returns = "is_return" if cleaner.keep_returns else "false"
        self._con.execute(f"""
            CREATE OR REPLACE VIEW kept AS
            SELECT customer_id, invoice_key, stock_key, quantity, invoice_date, unit_price,
                   country_key, {returns} AS is_return, quantity::DOUBLE * unit_price AS amount
            FROM lines WHERE step = 0 AND NOT ({outlier}) AND ({returns} OR NOT is_return)""")


def _outlier(cleaner: TransactionCleaner) -> str:
    limit = cleaner.max_quantity
    return "false" if limit is None else f"abs(quantity) > {int(limit)}"


def _pandas_rules(con: duckdb.DuckDBPyConnection, cleaner: TransactionCleaner) -> None:
    """The text rules of `TransactionCleaner` as SQL functions that run its pandas code.

    SQL's ``upper``/``lower`` agree with pandas' (Arrow's) on ASCII only, so non-ASCII values,
    rare in this data, go to these functions, which DuckDB calls on those rows alone.
    """
    codes = {str(c).upper() for c in cleaner.non_product_codes}
    rules = {"pd_upper": (lambda v: v.str.upper(), "VARCHAR"),
             "pd_bad_debt": (lambda v: v.str.strip().str.lower() == BAD_DEBT, "BOOLEAN"),
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
            WHEN description ILIKE '%{BAD_DEBT}%' THEN pd_bad_debt(description) ELSE false END"""))
    if len(cleaner.non_product_codes) > 0:
        codes = ", ".join(quote(c) for c in sorted({str(c).upper() for c in cleaner.non_product_codes}))
        steps.append(("non_product_code", f"""CASE WHEN {ascii_only.format(STOCK_CODE)}
            THEN upper(stock_code) IN ({codes}) ELSE pd_non_product(stock_code) END"""))
    if cleaner.drop_non_positive_price:
        steps.append(("non_positive_price", "NOT (unit_price > 0)"))
    steps.append(("wrong_quantity_sign",
                  "CASE WHEN is_return THEN quantity >= 0 ELSE quantity <= 0 END"))
    return steps


def _cased_sql(typed: TypedColumns, relation: str, cleaner: TransactionCleaner) -> str:
    """The typed lines with ``is_return``, stock codes upper-cased as the cleaner does."""
    code = STOCK_CODE
    if cleaner.uppercase_stock_codes:
        code = f"CASE WHEN strlen({code}) = length({code}) THEN upper({code}) ELSE pd_upper({code}) END"
    select, joins = typed.select()
    return f"""SELECT * REPLACE ({code} AS {STOCK_CODE}), starts_with({INVOICE_NO}, 'C') AS is_return
               FROM (SELECT {select} FROM {relation} r {joins})"""


def _load_sql(cased: str, cleaner: TransactionCleaner, keys: dict[str, str]) -> str:
    """``lines``: one row per distinct line that passed steps 1-5 (with its copies), one per
    step for the lines it took (``step`` is that step's 1-based position)."""
    rules = [f"WHEN {cond} THEN {i}" for i, (_, cond) in enumerate(_steps(cleaner), 1)]
    step = f"CASE {' '.join(rules)} ELSE 0 END"
    columns = {"invoice_key": at(keys[INVOICE_NO], INVOICE_NO),
               "stock_key": at(keys[STOCK_CODE], STOCK_CODE),
               "description_key": at(keys[DESCRIPTION], DESCRIPTION),
               QUANTITY: QUANTITY, INVOICE_DATE: INVOICE_DATE, UNIT_PRICE: UNIT_PRICE,
               CUSTOMER_ID: CUSTOMER_ID, "country_key": at(keys[COUNTRY], COUNTRY),
               "is_return": "is_return"}
    # Lines dropped by a step are counted, not kept: their columns are blanked, so each step
    # forms one group; the rest group on every column (the description too, though it is not
    # kept), which is the exact duplicate check.
    blanked = ", ".join(f"CASE WHEN step = 0 THEN {expr} END AS {name}"
                        for name, expr in columns.items())
    dedupe = cleaner.drop_duplicates
    return f"""
        CREATE OR REPLACE TABLE lines AS
        SELECT step, * EXCLUDE (step), {"count(*)" if dedupe else "1"} AS copies
        FROM (SELECT step, {blanked} FROM (SELECT *, {step} AS step FROM ({cased})))
        {"GROUP BY ALL" if dedupe else ""}"""
