"""One file on disk to Arrow tables, one per part (a CSV or Parquet file, or a workbook's sheet),
with the header checked against the Online Retail layouts.

* CSV, plain or gzip (found by content): the encoding is decided per file (`segmentlab.data.textfiles`)
  and every value is read as text; only the empty field is missing ("NA" is a valid string).
* Workbooks (``.xlsx``, ``.xlsm``) are read with ``fastexcel`` (Rust, calamine), every sheet by
  default. On the 541,909-line Online Retail workbook it takes about a twentieth of the CPU time of
  openpyxl (see the README). Each column gets one type from all of its cells: numbers, dates, or
  text when they mix ("536365" and "C536379").
* Parquet, typed or all text; in text columns the empty string is missing, as in a CSV.
"""

from __future__ import annotations

import csv
import logging
import re
from dataclasses import dataclass
from pathlib import Path

import fastexcel
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.csv as pv
import pyarrow.parquet as pq

from segmentlab.data.columns import cell_error, first_true, is_text
from segmentlab.data.textfiles import decode_text
from segmentlab.schema import DataError

#: Source headers per layout, listed in ``SOURCE_COLUMNS`` order.
LAYOUTS = {
    "Online Retail": ["InvoiceNo", "StockCode", "Description", "Quantity", "InvoiceDate",
                      "UnitPrice", "CustomerID", "Country"],
    "Online Retail II": ["Invoice", "StockCode", "Description", "Quantity", "InvoiceDate",
                         "Price", "Customer ID", "Country"],
}
# fastexcel logs a warning for every column without a typed cell (falling back to text), which
# is what an all-empty optional column should do: not worth a console line.
logging.getLogger("fastexcel.types.dtype").setLevel(logging.ERROR)


@dataclass(frozen=True)
class RawPart:
    """One part of a file, before its columns are converted.

    Attributes
    ----------
    name : str
        How the console names it: the file name, or the sheet and the file name.
    where : str
        How error messages name it: the path, plus the sheet for workbooks.
    table : pyarrow.Table
        The columns under a non-blank header, checked against ``LAYOUTS``.
    """

    name: str
    where: str
    table: pa.Table


def header_key(name: object) -> str:
    """Header as compared: case, whitespace and underscores ignored."""
    return re.sub(r"[\s_]+", "", str(name)).lower()


def file_format(file: Path) -> str:
    """``xlsx``, ``parquet`` or ``csv``, by the file name."""
    name = file.name.lower()
    if name.endswith((".xlsx", ".xlsm")):
        return "xlsx"
    return "parquet" if name.endswith((".parquet", ".pq")) else "csv"


def read_parts(file: Path, sheets: list[str | int] | None) -> tuple[list[RawPart], list[str]]:
    """Read one file into its parts.

    Parameters
    ----------
    file : Path
        An existing, non-empty file.
    sheets : list of str or int, or None
        Workbook sheets by name or position; None reads every sheet that holds anything.

    Returns
    -------
    parts : list of RawPart
    warnings : list of str
        One line each: lines decoded as Windows-1252, empty sheets skipped.
    """
    fmt = file_format(file)
    if fmt == "xlsx":
        return _read_workbook(file, sheets)
    if fmt == "parquet":
        table = pq.read_table(file)
        # A pandas index written along with the frame is not a data column.
        keep = [n for n in table.column_names if not re.fullmatch(r"__index_level_\d+__", n)]
        check_names(keep, str(file))
        table = blank_is_missing(table.select(keep))
        return [RawPart(file.name, str(file), drop_unnamed(table, str(file)))], []
    table, warning = _read_csv(file)  # checks the header before parsing the rest
    return [RawPart(file.name, str(file), drop_unnamed(table, str(file)))], [warning] if warning else []


def _read_csv(file: Path) -> tuple[pa.Table, str | None]:
    with open(file, "rb") as f:
        compression = "gzip" if f.read(2) == b"\x1f\x8b" else None
    with pa.input_stream(str(file), compression=compression) as stream:
        text = decode_text(stream.read_buffer(), str(file))
    head = text.data[: 1 << 16].to_pybytes().lstrip(b"\r\n")
    first = re.split(rb"\r\n|\r|\n", head, maxsplit=1)[0]
    if not first.strip():
        raise DataError(f"{file}: the file is empty")
    line = first.decode("utf-8", errors="replace")
    if re.search(r"[\x00-\x08\x0b-\x1f\x7f-\x9f]", line):  # control characters
        raise DataError(f"{file}: not a CSV text file (binary data in the first line); "
                        f"expected CSV (plain or gzip), .xlsx or .parquet")
    header = next(csv.reader([line]))
    check_names(header, str(file))
    # Everything as text, and only the empty field is missing: "NA" is a valid string.
    convert = pv.ConvertOptions(column_types=dict.fromkeys(header, pa.string()),
                                null_values=[""], strings_can_be_null=True)
    table = pv.read_csv(pa.BufferReader(text.data), read_options=pv.ReadOptions(encoding="utf8"),
                        parse_options=pv.ParseOptions(newlines_in_values=True),
                        convert_options=convert)
    return table, text.warning(str(file))


def _read_workbook(file: Path, sheets: list[str | int] | None) -> tuple[list[RawPart], list[str]]:
    book = fastexcel.read_excel(str(file))
    names = book.sheet_names
    chosen = names if sheets is None else [_sheet_name(file, names, s) for s in sheets]
    parts, warnings = [], []
    for name in chosen:
        where = f"{file}, sheet {name!r}"
        # Types from every row, not the first thousand: invoices turn from "536365" to "C536379".
        sheet = book.load_sheet(name, header_row=0, schema_sample_rows=None,
                                dtype_coercion="coerce")
        if sheet.width == 0:
            if sheets is not None:
                raise DataError(f"{where}: the sheet is empty")
            warnings.append(f"{where}: the sheet is empty; skipped")
            continue
        header = _sheet_header(sheet)
        try:
            check_names(header, where)
        except DataError as exc:
            if sheets is not None:
                raise
            raise DataError(f"{exc}; choose the sheets to read with data.sheets=[...]") from None
        table = pa.Table.from_batches([sheet.to_arrow()])
        parts.append(RawPart(f"sheet {name!r} of {file.name}", where,
                             drop_unnamed(blank_is_missing(table.rename_columns(header)), where)))
    if not parts:
        raise DataError(f"{file}: every sheet is empty")
    return parts, warnings


def _sheet_name(file: Path, names: list[str], wanted: str | int) -> str:
    """A sheet's name from its name or 0-based position."""
    if isinstance(wanted, int) and 0 <= wanted < len(names):
        return names[wanted]
    if isinstance(wanted, str) and wanted in names:
        return wanted
    raise DataError(f"{file}: no sheet {wanted!r}; the workbook has {len(names)}: "
                    f"{', '.join(map(repr, names))} (data.sheets takes names or positions from 0)")


def _sheet_header(sheet) -> list[str]:
    """The header as written: fastexcel names blank cells ``__UNNAMED__n`` and the second of two
    equal names ``Name_1``; both are undone so that the checks see what a CSV would show."""
    header = []
    for column in sheet.available_columns():
        name = "" if column.column_name_from == "generated" else column.name
        repeat = re.fullmatch(r"(.*)_\d+", name)
        header.append(repeat[1] if repeat and repeat[1] in header else name)
    return header


def blank_is_missing(table: pa.Table) -> pa.Table:
    """Empty strings as missing values, and dictionary-encoded text decoded, in every column.

    Parameters
    ----------
    table : pyarrow.Table
        Columns as read from a Parquet file or a workbook sheet.

    Returns
    -------
    pyarrow.Table
    """
    columns = []
    for column in table.columns:
        if pa.types.is_dictionary(column.type):
            column = pc.cast(column, column.type.value_type)
        if is_text(column):
            column = pc.if_else(pc.equal(column, ""), pa.scalar(None, column.type), column)
        columns.append(column)
    return pa.table(columns, names=table.column_names)


def check_names(header: list[str], where: str) -> None:
    """Reject duplicated, missing or unexpected columns (blank names: see `drop_unnamed`)."""
    header = [h for h in header if str(h).strip()]
    keys = [header_key(h) for h in header]
    repeated = sorted({h for h, k in zip(header, keys, strict=True) if keys.count(k) > 1})
    if repeated:
        raise DataError(f"{where}: duplicated column name(s) {', '.join(repeated)} in the header")
    found = _shorten(", ".join(header), 200) or "none"
    if len(header) == 1 and any(sep in header[0] for sep in ";\t|"):
        found += " (one column: is the file comma-separated?)"
    best, missing, extra = min(
        ((name, [c for c in cols if header_key(c) not in keys],
          [h for h in header if header_key(h) not in {header_key(c) for c in cols}])
         for name, cols in LAYOUTS.items()),
        key=lambda layout: len(layout[1]) + len(layout[2]),
    )
    expected = "; ".join(f"{n}: {', '.join(c)}" for n, c in LAYOUTS.items())
    if missing:
        raise DataError(f"{where}: missing column(s) {', '.join(missing)} for the {best} layout; "
                        f"found columns: {found}; expected {expected}")
    if extra:
        raise DataError(f"{where}: unexpected column(s) {', '.join(extra)}; "
                        f"expected exactly the {best} layout: {', '.join(LAYOUTS[best])}")


def drop_unnamed(table: pa.Table, where: str) -> pa.Table:
    """Drop columns with a blank name that hold nothing; one that holds a value is an error.

    Parameters
    ----------
    table : pyarrow.Table
        A part as read, blank header names included.
    where : str
        The file (and sheet), as error messages name it.

    Returns
    -------
    pyarrow.Table
        The columns with a name.

    Raises
    ------
    DataError
        Naming the column's position (1-based), the first data row holding a value and that value.
    """
    for i, name in enumerate(table.column_names):
        if not str(name).strip() and (row := first_true(pc.is_valid(table.column(i)))) is not None:
            raise cell_error(f"{where}: column {i + 1}", table.column(i), row,
                             "stands under a blank header",
                             "a name in the header for every column that holds values")
    return table.select([i for i, n in enumerate(table.column_names) if str(n).strip()])


def _shorten(text: str, limit: int) -> str:
    """``text`` cut to ``limit`` characters, marked with an ellipsis when cut."""
    return text if len(text) <= limit else text[: limit - 3] + "..."
