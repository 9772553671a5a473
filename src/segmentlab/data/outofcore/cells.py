"""The columns of a `SourceFile` typed in SQL, every cell judged by the pandas reader's own rules.

DuckDB's casts are more lenient than the loader's (``'5.5'::BIGINT`` is 6, ``'1_000'`` is 1000),
so SQL converts only the cells whose reading is beyond doubt (``17850``, ``2.55``, typed
Parquet values). Everything else goes through the loader's converters:

* invoice dates: DuckDB collects the distinct raw values and `convert_source_column` (hence
  `segmentlab.data.dates.parse_dates`) parses them, the value of the file's first row first, so
  the layout, the day-first/month-first question and the date range are decided as for the
  whole column; the parsed values are joined back;
* numbers written otherwise (`` 2.5``, ``17850.0``): their distinct texts are converted by the
  loader and joined back;
* a missing, malformed or out-of-range cell: the column is read again in file order and given to
  the loader, whose one-line message (column, data row, value) is the error.

Every check is counted in one pass over the file; the columns are judged in the loader's order.
"""

from __future__ import annotations

from dataclasses import dataclass

import pyarrow as pa
import pyarrow.compute as pc

from segmentlab.data.columns import OPTIONAL
from segmentlab.data.formats import drop_unnamed
from segmentlab.data.loading import convert_source_column
from segmentlab.data.outofcore.reading import SourceFile
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
_INTEGER = ("TINYINT", "SMALLINT", "INTEGER", "BIGINT", "UTINYINT", "USMALLINT", "UINTEGER",
            "UBIGINT", "HUGEINT")
_FLOAT = ("FLOAT", "DOUBLE")
_STAMP = ("TIMESTAMP", "TIMESTAMP_NS", "TIMESTAMP_MS", "TIMESTAMP_S", "DATE")
_EXACT = 2**53  # whole numbers beyond this are not exact in float64 (the loader refuses them)
# Texts whose number DuckDB and the loader (Arrow) read alike; anything else is the loader's.
_WHOLE_TEXT = r"-?[0-9]{1,18}"
_PRICE_TEXT = r"-?[0-9]{1,15}(\.[0-9]{1,15})?"


def at(template: str, column: str) -> str:
    """A SQL template written for ``{c}``, for ``column``."""
    return template.replace("{c}", column)


@dataclass
class Cell:
    """How one source column is typed: its SQL value and the conditions counted in the check pass.

    ``bad``: a cell the loader rejects; ``odd``: a cell only the loader can convert; ``refuse``:
    a cell this engine cannot read as the loader does.
    """

    value: str
    bad: str | None = None
    odd: str | None = None
    refuse: str | None = None
    big: str | None = None  # a plain whole number beyond 2**53 (matters when odd cells exist)


class TypedColumns:
    """The typed ``SOURCE_COLUMNS`` of a file, checked as `OnlineRetailFile.read` checks them.

    Parameters
    ----------
    source : SourceFile
    date_format, dayfirst
        As `OnlineRetailFile` takes them.
    """

    def __init__(self, source: SourceFile, date_format: str | None, dayfirst: bool | None):
        self.source, self.date_format, self.dayfirst = source, date_format, dayfirst
        self.cells = {t: self._cell(t, source.types[source.columns[t]]) for t in SOURCE_COLUMNS}
        self.joins: dict[str, str] = {}  # target -> helper table joined on the raw value

    def check(self) -> tuple[int, object, object]:
        """Count every check in one pass, judge the columns in the loader's order and prepare the
        helper tables; return the number of lines and the first and last invoice dates."""
        date = self.source.columns[INVOICE_DATE]
        counts = {f"null_{t}": f"{self.source.columns[t]} IS NULL" for t in SOURCE_COLUMNS
                  if t not in OPTIONAL}
        counts |= {f"blank_{c}": f"{c} IS NOT NULL" for c in self.source.blank}
        for t, cell in self.cells.items():
            counts |= {f"{k}_{t}": at(cond, self.source.columns[t])
                       for k in ("bad", "odd", "refuse", "big") if (cond := getattr(cell, k)) is not None}
        sums = ", ".join(f"count(*) FILTER ({cond}) AS {name}" for name, cond in counts.items())
        distinct = INVOICE_DATE in self.joins_needed()
        query = (f"SELECT {date} AS raw, count(*) AS n{', ' + sums if sums else ''} "
                 f"FROM {self.source.relation()} GROUP BY ALL" if distinct else
                 f"SELECT count(*) AS n, min(CAST({date} AS TIMESTAMP)) AS first, "
                 f"max(CAST({date} AS TIMESTAMP)) AS last"
                 f"{', ' + sums if sums else ''} FROM {self.source.relation()}")
        groups = self.source.con.sql(query).to_arrow_table()
        found = {name: int(pc.sum(groups.column(name)).as_py() or 0)
                 for name in ["n", *counts]}
        if not distinct:
            found |= {"first": groups.column("first")[0].as_py(),
                      "last": groups.column("last")[0].as_py()}
        for column in self.source.blank:
            if found[f"blank_{column}"]:
                self._blank_error(column)
        if found["n"] == 0:
            raise DataError(f"{self.source.where}: the file has a header but no data rows")
        for t in SOURCE_COLUMNS:
            self._judge(t, found, groups if t == INVOICE_DATE and distinct else None)
        if distinct:
            stamps = self.source.con.execute("SELECT min(value), max(value) FROM dates").fetchone()
            return found["n"], *stamps
        return found["n"], found["first"], found["last"]

    def joins_needed(self) -> list[str]:
        """Targets whose value comes from a helper table (dates parsed by the loader)."""
        kind = self.source.types[self.source.columns[INVOICE_DATE]]
        return [] if kind in _STAMP or kind == '"NULL"' else [INVOICE_DATE]

    def select(self) -> tuple[str, str]:
        """The SELECT list of the typed columns and the joins it needs (after `check`)."""
        values, joins = [], []
        for t, cell in self.cells.items():
            raw = f"r.{self.source.columns[t]}"
            value = at(cell.value, raw)
            if t in self.joins:
                alias = f"j_{t}"
                joins.append(f"LEFT JOIN {self.joins[t]} {alias} ON {alias}.raw = {raw}")
                value = (f"{alias}.value" if t == INVOICE_DATE else
                         f"CASE WHEN {at(cell.odd, raw)} THEN {alias}.value ELSE {value} END")
            values.append(f"{value} AS {t}")
        return ", ".join(values), " ".join(joins)

    def _cell(self, target: str, kind: str) -> Cell:
        """The typing of one column, written for the column ``{c}``."""
        if kind == '"NULL"':  # a Parquet column without a value: only the optional ones pass
            sql = {QUANTITY: "BIGINT", CUSTOMER_ID: "BIGINT", UNIT_PRICE: "DOUBLE",
                   INVOICE_DATE: "TIMESTAMP"}.get(target, "VARCHAR")
            return Cell(f"CAST({{c}} AS {sql})")
        if target in _TEXT:
            if kind == "VARCHAR":
                return Cell("{c}")
            if kind in _INTEGER:
                return Cell("CAST({c} AS VARCHAR)")
            if kind in _FLOAT:  # whole numbers lose their ".0", as the loader writes them
                return Cell("CAST(CAST({c} AS BIGINT) AS VARCHAR)",
                            refuse="NOT coalesce(isfinite({c}) AND {c} = floor({c}), true)")
        elif target in (QUANTITY, CUSTOMER_ID):
            if kind in _INTEGER:
                return Cell("CAST({c} AS BIGINT)")
            if kind in _FLOAT or kind.startswith("DECIMAL"):
                number = "CAST({c} AS DOUBLE)"
                return Cell(f"CAST({number} AS BIGINT)",
                            bad=f"NOT (isfinite({number}) AND {number} = floor({number}) "
                                f"AND abs({number}) <= {_EXACT})")
            if kind == "VARCHAR":
                plain = f"regexp_full_match({{c}}, '{_WHOLE_TEXT}')"
                return Cell("TRY_CAST({c} AS BIGINT)", odd=f"{{c}} IS NOT NULL AND NOT {plain}",
                            big=f"{plain} AND abs(TRY_CAST({{c}} AS HUGEINT)) > {_EXACT}")
        elif target == UNIT_PRICE:
            if kind in _INTEGER or kind in _FLOAT or kind.startswith("DECIMAL"):
                # + 0.0: -0.0 is 0.0, as duplicated() sees them
                return Cell("(CAST({c} AS DOUBLE) + 0.0)", bad="NOT isfinite(CAST({c} AS DOUBLE))")
            if kind == "VARCHAR":
                return Cell("(TRY_CAST({c} AS DOUBLE) + 0.0)",
                            odd=f"{{c}} IS NOT NULL AND NOT regexp_full_match({{c}}, '{_PRICE_TEXT}')")
        elif kind in _STAMP:
            # Arrow refuses to cut nanoseconds to the microseconds the loader keeps.
            return Cell("CAST({c} AS TIMESTAMP)",
                        bad="epoch_ns({c}) % 1000 <> 0" if kind == "TIMESTAMP_NS" else None)
        elif kind == "VARCHAR" or kind in _INTEGER or kind in _FLOAT or kind.startswith("DECIMAL"):
            return Cell("{c}")  # parsed by the loader, distinct value by distinct value
        raise DataError(f"{self.source.where}: column {self.source.names[target]!r} is {kind}, "
                        f"which the duckdb engine does not read; use data.engine=pandas")

    def _judge(self, target: str, found: dict[str, int], groups: pa.Table | None) -> None:
        """Raise the loader's error for the column, or prepare what SQL needs to type it."""
        if found.get(f"null_{target}") or found.get(f"bad_{target}"):
            self._loader_error(target)
        if found.get(f"odd_{target}"):
            if found.get(f"big_{target}"):  # the loader then reads every value as a float
                self._loader_error(target)
            self._convert_odd(target)
        if found.get(f"refuse_{target}"):
            self._refuse(target, "numbers that are not whole in a text column")
        if groups is not None:
            self._parse_dates(groups.column("raw"))
        elif target == INVOICE_DATE:
            self._check_date_range(found["first"], found["last"])

    def _parse_dates(self, raw: pa.ChunkedArray) -> None:
        """Dates parsed by the loader from the distinct raw values, the first row's value first."""
        con, source = self.source.con, self.source
        con.execute("SET preserve_insertion_order = true")
        try:
            first = con.sql(f"SELECT {source.columns[INVOICE_DATE]} FROM {source.relation()} "
                            f"LIMIT 1").to_arrow_table().column(0)
        finally:
            con.execute("SET preserve_insertion_order = false")
        raw = raw.combine_chunks()
        if pa.types.is_string_view(raw.type) or pa.types.is_large_string(raw.type):
            raw, first = raw.cast(pa.string()), first.cast(pa.string())
        values = pa.chunked_array([first.combine_chunks().cast(raw.type), raw])
        try:
            parsed = self._convert(INVOICE_DATE, values)
        except DataError:
            self._loader_error(INVOICE_DATE)  # the same decision, with the file's row numbers
            raise
        table = pa.table({"raw": values, "value": pa.array(parsed, pa.timestamp("us"))})
        con.register("parsed_dates", table)
        con.execute("CREATE OR REPLACE TABLE dates AS SELECT DISTINCT raw, value FROM parsed_dates")
        con.unregister("parsed_dates")
        self.joins[INVOICE_DATE] = "dates"

    def _check_date_range(self, first, last) -> None:
        """Typed dates: the loader's range check on the first and last date."""
        try:
            self._convert(INVOICE_DATE, pa.chunked_array([pa.array([first, last], pa.timestamp("us"))]))
        except DataError:
            self._loader_error(INVOICE_DATE)
            raise

    def _convert_odd(self, target: str) -> None:
        """The loader's values of the texts SQL leaves to it, as a helper table."""
        column = self.source.columns[target]
        odd = at(self.cells[target].odd, column)
        texts = self.source.con.sql(f"SELECT DISTINCT {column} AS raw FROM {self.source.relation()} "
                                    f"WHERE {odd}").to_arrow_table().column(0).cast(pa.string())
        try:
            values = self._convert(target, texts)
        except DataError:
            self._loader_error(target)
            raise
        name = f"odd_{target}"
        self.source.con.register(f"{name}_view", pa.table({"raw": texts, "value": pa.array(values)}))
        self.source.con.execute(f"CREATE OR REPLACE TABLE {name} AS SELECT * FROM {name}_view")
        self.source.con.unregister(f"{name}_view")
        self.joins[target] = name

    def _convert(self, target: str, values: pa.ChunkedArray):
        where = f"{self.source.where}: column {self.source.names[target]!r}"
        return convert_source_column(target, values, where, self.date_format, self.dayfirst)

    def _loader_error(self, target: str) -> None:
        """Re-read the column in file order and let the loader raise its message."""
        self._convert(target, self.source.column(self.source.columns[target]))
        self._refuse(target, "values the pandas reader reads")

    def _refuse(self, target: str, what: str) -> None:
        raise DataError(f"{self.source.where}: column {self.source.names[target]!r} holds {what} "
                        f"but the duckdb engine cannot read them as it does; use data.engine=pandas")

    def _blank_error(self, column: str) -> None:
        """The loader's message for a value under a blank header."""
        values = self.source.column(column)
        i = int(column[1:])
        arrays = [values if k == i else pa.nulls(len(values)) for k in range(len(self.source.header))]
        drop_unnamed(pa.table(arrays, names=self.source.header), self.source.where)
        self._refuse(SOURCE_COLUMNS[0], "a value under a blank header")
