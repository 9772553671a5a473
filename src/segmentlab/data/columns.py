"""Converting one source column to the values ``RAW_COLUMNS`` prescribe, or a DataError naming
the first bad cell.

Columns arrive as Arrow arrays: text from CSV files and all-text Parquet, numbers and timestamps
from typed Parquet and workbooks. Each is converted with vectorised Arrow kernels, so a bad cell
is reported by column, data row and value instead of surfacing as a library traceback. Dates
have their own module, `segmentlab.data.dates`.
"""

from __future__ import annotations

import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc

from segmentlab.schema import (
    COUNTRY,
    CUSTOMER_ID,
    DESCRIPTION,
    INVOICE_DATE,
    QUANTITY,
    UNIT_PRICE,
    DataError,
)

#: A number as text: what Arrow's cast to float64 accepts, without inf and nan.
NUMBER = r"^[+-]?(\d+\.?\d*|\.\d+)([eE][+-]?\d+)?$"
#: What each typed column holds, as error messages say it.
EXPECTED = {
    QUANTITY: "a whole number of units, e.g. 6",
    UNIT_PRICE: "a price, e.g. 2.55",
    CUSTOMER_ID: "a whole customer number, e.g. 17850",
    INVOICE_DATE: "a date such as 2010-12-01 08:26:00 or 12/1/2010 8:26",
}
#: Columns that may be empty; an empty cell anywhere else rejects the file.
OPTIONAL = {DESCRIPTION, CUSTOMER_ID, COUNTRY}


def first_true(mask: pa.ChunkedArray | pa.Array) -> int | None:
    """Position of the first True (nulls count as False), or None."""
    position = pc.index(pc.fill_null(mask, False), True).as_py()
    return None if position < 0 else position


def cell_error(where: str, column: pa.ChunkedArray, row: int, problem: str,
               expected: str) -> DataError:
    """The one-line error for a bad cell, showing its value as read."""
    value = column[row].as_py()
    shown = repr(value if not isinstance(value, str) or len(value) < 80 else value[:77] + "...")
    return DataError(f"{where}, data row {row + 1}: {shown} {problem}; expected {expected}")


def is_text(column: pa.ChunkedArray | pa.Array) -> bool:
    return pa.types.is_string(column.type) or pa.types.is_large_string(column.type)


def check_filled(target: str, column: pa.ChunkedArray, where: str) -> None:
    """Reject an empty cell in a column that must always hold a value."""
    if target not in OPTIONAL and (row := first_true(pc.is_null(column))) is not None:
        expected = EXPECTED.get(target, "a value")
        raise DataError(f"{where}, data row {row + 1}: empty value; expected {expected}")


def convert_column(target: str, column: pa.ChunkedArray, where: str) -> pd.Series:
    """A source column, other than the date, as the pandas values ``RAW_COLUMNS`` prescribe."""
    if target == QUANTITY:
        return as_whole(column, where, EXPECTED[target]).to_pandas()
    if target == UNIT_PRICE:
        return as_float(column, where, EXPECTED[target]).to_pandas()
    if target == CUSTOMER_ID:
        whole = pa.table({target: as_whole(column, where, EXPECTED[target])})
        return whole.to_pandas(types_mapper={pa.int64(): pd.Int64Dtype()}.get)[target]
    return as_text(column).to_pandas().astype("str")


def as_text(column: pa.ChunkedArray) -> pa.ChunkedArray:
    """Text as it is; numbers (from Parquet or a workbook) without a spurious ``.0``."""
    if is_text(column):
        return column
    if pa.types.is_floating(column.type) and pc.all(pc.equal(pc.floor(column), column)).as_py():
        column = pc.cast(column, pa.int64())
    return pc.cast(column, pa.string())


def as_float(column: pa.ChunkedArray, where: str, expected: str) -> pa.ChunkedArray:
    """Finite float64 values, or a DataError at the first cell that is not a number."""
    if is_text(column):
        try:  # clean text casts as it is: trimming every value first would copy the column
            values = pc.cast(column, pa.float64())
        except pa.ArrowInvalid:
            values = _trimmed_float(column, where, expected)
    else:
        values = pc.cast(column, pa.float64())  # integers, decimals, all-missing
    if (row := first_true(pc.invert(pc.is_finite(values)))) is not None:
        raise cell_error(where, column, row, "is not a finite number", expected)
    return values


def _trimmed_float(column: pa.ChunkedArray, where: str, expected: str) -> pa.ChunkedArray:
    """float64 of text with blanks around it, or a DataError at the first non-number."""
    text = pc.utf8_trim_whitespace(column)
    try:
        return pc.cast(text, pa.float64())
    except pa.ArrowInvalid:
        row = first_true(pc.invert(pc.match_substring_regex(text, NUMBER)))
        if row is None:
            raise
        raise cell_error(where, column, row, "is not a number", expected) from None


def as_whole(column: pa.ChunkedArray, where: str, expected: str) -> pa.ChunkedArray:
    """int64 values; "17850.0" is accepted, 2.5 is not."""
    if pa.types.is_integer(column.type):
        return pc.cast(column, pa.int64())
    if is_text(column):
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
    values = as_float(column, where, expected)
    if (row := first_true(pc.not_equal(pc.floor(values), values))) is not None:
        raise cell_error(where, column, row, "is not a whole number", expected)
    if (row := first_true(pc.greater(pc.abs(values), 2.0**53))) is not None:  # exact in float64
        raise cell_error(where, column, row, "is out of range", expected)
    return pc.cast(values, pa.int64())
