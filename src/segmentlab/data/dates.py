"""Invoice dates from timestamps, Excel day numbers or text, never guessed.

Text dates follow one layout per column, found from the column's distinct values (a million
lines hold a few tens of thousands of distinct timestamps), not from its first rows:

* year first: ``2010-12-01 08:26:00``, ``2010-12-01T08:26``, ``2010/12/01``;
* day and month first, in either order, separated by ``/``, ``-`` or ``.``, with a four- or
  two-digit year: ``12/1/2010 8:26``, ``01.12.2010 08:26:00``, ``12/1/10 8:26 AM``. A two-digit
  year is read as 20xx up to this year and as 19xx above it, never as year 0010.

Day-first or month-first is what fits every value of the column. When both fit (a file whose days
never exceed 12), nothing is guessed: a DataError names the column and an example value and asks
for ``data.dayfirst`` or ``data.date_format``. ``date_format`` (a strptime format) bypasses the
detection. Whatever the source, a date before 1990 or after today (one day of slack for time
zones ahead of ours) is an error naming the row.
"""

from __future__ import annotations

from datetime import date, datetime, timedelta

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from segmentlab.data.columns import EXPECTED, NUMBER, as_float, cell_error, first_true, is_text
from segmentlab.schema import INVOICE_DATE, DataError

EARLIEST = date(1990, 1, 1)
_EXCEL_EPOCH_OFFSET = 25569  # days from Excel's day 0 (1899-12-30) to 1970-01-01
_EXCEL_LAST_DAY = 2958465.0  # 9999-12-31, the last day Excel can show
_LAYOUT = (r"^\s*(?P<a>\d{1,4})(?P<sep>[-/.])(?P<b>\d{1,2})(?P<sep2>[-/.])(?P<c>\d{1,4})"
           r"(?:(?:\s+|T)(?P<hour>\d{1,2}):(?P<minute>\d{2})(?::(?P<second>\d{2})"
           r"(?:\.(?P<fraction>\d{1,9}))?)?(?:\s*(?P<half>[AaPp][Mm]))?)?\s*$")


def parse_dates(column: pa.ChunkedArray, where: str, date_format: str | None = None,
                dayfirst: bool | None = None) -> pa.ChunkedArray:
    """Invoice dates as ``timestamp[us]``.

    Parameters
    ----------
    column : pyarrow.ChunkedArray
        Timestamps, dates, Excel day numbers, or text (see the module docstring).
    where : str
        The file and column, as error messages name them.
    date_format : str, optional
        A strptime format for text dates (``%d/%m/%Y %H:%M``); None detects the layout.
    dayfirst : bool, optional
        Settles text dates that read both day-first and month-first.

    Returns
    -------
    pyarrow.ChunkedArray

    Raises
    ------
    DataError
        One line naming ``where``, the first bad data row and its value, or, for dates that read
        both ways, an example value and the options that settle it.
    """
    if pa.types.is_timestamp(column.type) or pa.types.is_date(column.type):
        values = pc.cast(column, pa.timestamp("us"))
    elif not is_text(column):
        values = _from_excel_serial(as_float(column, where, EXPECTED[INVOICE_DATE]), column, where)
    else:
        values = _from_text(column, where, date_format, dayfirst)
    _check_range(values, column, where)
    return values


def _from_text(column: pa.ChunkedArray, where: str, date_format: str | None,
               dayfirst: bool | None) -> pa.ChunkedArray:
    """Text dates, parsed once per distinct value."""
    encoded = pc.dictionary_encode(column)
    chunks = [c for c in encoded.chunks if len(c)]
    # Every chunk's indices point into the last chunk's dictionary, which holds all values.
    values = _Distinct(pc.utf8_trim_whitespace(chunks[-1].dictionary),
                       pa.chunked_array([c.indices for c in chunks], pa.int32()), column, where)
    if date_format is not None:
        parsed = pc.strptime(values.text, date_format, "us", error_is_null=True)
        values.reject(pc.is_null(parsed), "does not match data.date_format",
                      f"a date written as {date_format}")
    elif pc.match_substring_regex(values.text[values.first], NUMBER).as_py():  # day numbers saved as text
        values.reject(pc.invert(pc.match_substring_regex(values.text, NUMBER)), "is not a date",
                      EXPECTED[INVOICE_DATE])
        return _from_excel_serial(values.per_row(pc.cast(values.text, pa.float64())), column, where)
    else:
        parsed = values.parse(dayfirst)
    return values.per_row(parsed)


class _Distinct:
    """The distinct text dates of a column, with the rows that hold them."""

    def __init__(self, text: pa.Array, indices: pa.ChunkedArray, column: pa.ChunkedArray,
                 where: str):
        self.text, self.indices, self.column, self.where = text, indices, column, where
        self.first_row = first_true(pc.is_valid(column))
        self.first = self.indices[self.first_row].as_py()  # the distinct value of that row

    def per_row(self, values: pa.Array) -> pa.ChunkedArray:
        """Values per distinct text, spread to the rows."""
        return pa.chunked_array([pc.take(values, c) for c in self.indices.chunks], values.type)

    def reject(self, flags, problem: str, expected: str) -> None:
        """A DataError at the first row whose value is flagged, if any."""
        flags = pa.array(flags) if isinstance(flags, np.ndarray) else flags
        if (row := first_true(self.per_row(flags))) is not None:
            raise cell_error(self.where, self.column, row, problem, expected)

    def parse(self, dayfirst: bool | None) -> pa.Array:
        """Timestamps per distinct value, in the layout of the column's first value."""
        fields = _Fields(self.text)
        self.reject(~fields.matched, "is not a date", EXPECTED[INVOICE_DATE])
        example = repr(self.column[self.first_row].as_py())
        self.reject(~fields.same_layout(self.first), "is not a date",
                    f"one layout for the whole column, like data row {self.first_row + 1}: {example}")
        a, b, c = fields.number("a"), fields.number("b"), fields.number("c")
        if fields.year_first[self.first]:
            stamps = fields.stamps(a, b, c)
            self.reject(stamps.is_null(), "is not a date", EXPECTED[INVOICE_DATE])
            return stamps
        year = c if fields.digits["c"][self.first] == 4 else _full_year(c)
        return self._day_month(fields, fields.stamps(year, b, a), fields.stamps(year, a, b),
                               a != b, dayfirst)

    def _day_month(self, fields: _Fields, dm: pa.Array, md: pa.Array, differ: np.ndarray,
                   dayfirst: bool | None) -> pa.Array:
        """Day-first or month-first, whichever fits every value; a DataError when both do."""
        fits_dm, fits_md = dm.null_count == 0, md.null_count == 0
        if dayfirst is None and fits_dm and fits_md and differ.any():
            example = self.column[first_true(self.per_row(pa.array(differ)))].as_py()
            raise DataError(
                f"{self.where}: dates such as {example!r} read both day-first ({_span(dm)}) and "
                f"month-first ({_span(md)}) in every row; settle it with data.dayfirst=true "
                f"(data.date_format='{fields.format(example, day_first=True)}') or "
                f"data.dayfirst=false ('{fields.format(example, day_first=False)}')")
        if dayfirst is not None:
            option = "true" if dayfirst else "false"
            problem = f"is not a date with the {'day' if dayfirst else 'month'} first " \
                      f"(data.dayfirst={option})"
        else:
            dayfirst = fits_dm if fits_dm != fits_md else dm.null_count <= md.null_count
            problem = "is not a date"
        stamps = dm if dayfirst else md
        if stamps.null_count:
            good = first_true(stamps.is_valid())
            expected = EXPECTED[INVOICE_DATE] if good is None else (
                f"dates written as {fields.format(self.text[good].as_py(), dayfirst)}, like "
                f"{self.text[good].as_py()!r}")
            self.reject(stamps.is_null(), problem, expected)
        return stamps


class _Fields:
    """Distinct text dates split into their numeric fields (see ``_LAYOUT``)."""

    def __init__(self, text: pa.Array):
        self.fields = pc.extract_regex(text, _LAYOUT)
        self.matched = self.fields.is_valid().to_numpy(zero_copy_only=False)
        self.digits = {f.name: pc.utf8_length(self.fields.field(f.name)).fill_null(0).to_numpy()
                       for f in self.fields.type}
        self.year_first = self.digits["a"] >= 3

    def number(self, name: str) -> np.ndarray:
        """The field as int64, 0 where absent."""
        field = self.fields.field(name)
        return pc.cast(pc.if_else(pc.equal(field, ""), "0", field), pa.int64()).fill_null(0).to_numpy()

    def same_layout(self, first: int) -> np.ndarray:
        """Values written like value ``first``: field order, separator, digits of the year."""
        digits, sep = self.digits, self.fields.field("sep")
        year_digits = np.where(self.year_first, digits["a"], digits["c"])
        plausible = np.where(self.year_first, (digits["a"] == 4) & (digits["c"] <= 2),
                             (digits["a"] <= 2) & np.isin(digits["c"], (2, 4)))
        same_sep = pc.and_(pc.equal(sep, self.fields.field("sep2")), pc.equal(sep, sep[first]))
        return (self.matched & plausible & same_sep.fill_null(False).to_numpy(zero_copy_only=False)
                & (self.year_first == self.year_first[first]) & (year_digits == year_digits[first]))

    def stamps(self, year: np.ndarray, month: np.ndarray, day: np.ndarray) -> pa.Array:
        """Timestamps of the fields, null where they name no real date or time."""
        hour, minute, second = self.number("hour"), self.number("minute"), self.number("second")
        half = pc.utf8_lower(self.fields.field("half")).fill_null("").to_numpy(zero_copy_only=False)
        clock = half == ""
        valid = (np.where(clock, hour <= 23, (hour >= 1) & (hour <= 12)) & (minute <= 59)
                 & (second <= 59) & (month >= 1) & (month <= 12) & (day >= 1) & self.matched)
        hour = np.where(clock, hour, hour % 12 + np.where(half == "pm", 12, 0))
        months = ((year - 1970) * 12 + np.clip(month, 1, 12) - 1).astype("datetime64[M]")
        first_day = months.astype("datetime64[D]")
        valid &= day <= ((months + 1).astype("datetime64[D]") - first_day).astype(np.int64)
        fraction = pc.utf8_slice_codeunits(pc.utf8_rpad(self.fields.field("fraction"), 6, "0"), 0, 6)
        micros = pc.cast(fraction, pa.int64()).fill_null(0).to_numpy()
        stamps = (first_day.astype("datetime64[us]") + (day - 1) * np.timedelta64(1, "D")
                  + (hour * 3600 + minute * 60 + second) * np.timedelta64(1, "s")
                  + micros * np.timedelta64(1, "us"))
        return pa.array(stamps, pa.timestamp("us"), mask=~valid)

    @staticmethod
    def format(example: str, day_first: bool) -> str:
        """The strptime format of a day-and-month value such as ``example``."""
        fields = pc.extract_regex(pa.array([example.strip()]), _LAYOUT)[0].as_py() or {}
        sep = fields.get("sep") or "/"
        year = "%Y" if len(fields.get("c") or "") == 4 else "%y"
        out = sep.join(["%d", "%m"] if day_first else ["%m", "%d"]) + sep + year
        if fields.get("hour"):
            out += " %I:%M" if fields.get("half") else " %H:%M"
            out += ":%S" if fields.get("second") else ""
            out += " %p" if fields.get("half") else ""
        return out


def _span(stamps: pa.Array) -> str:
    """``2010-12-01 … 2010-12-09``: the dates a reading gives."""
    low, high = pc.min_max(stamps).values()
    return f"{low.as_py():%Y-%m-%d} … {high.as_py():%Y-%m-%d}"


def _full_year(two_digits: np.ndarray) -> np.ndarray:
    """20xx up to this year, 19xx above it: ``10`` is 2010, ``95`` is 1995."""
    this_century = 2000 + two_digits
    return np.where(this_century <= date.today().year, this_century, 1900 + two_digits)


def _check_range(values: pa.ChunkedArray, column: pa.ChunkedArray, where: str) -> None:
    """Reject dates before 1990 and after tomorrow (slack for time zones ahead of ours)."""
    earliest = pa.scalar(datetime.combine(EARLIEST, datetime.min.time()), pa.timestamp("us"))
    if (row := first_true(pc.less(values, earliest))) is not None:
        raise cell_error(where, column, row, f"is before {EARLIEST.year}",
                         f"an invoice date from {EARLIEST.isoformat()} to today")
    today = date.today()
    limit = datetime.combine(today + timedelta(days=2), datetime.min.time())
    if (row := first_true(pc.greater_equal(values, pa.scalar(limit, pa.timestamp("us"))))) is not None:
        raise cell_error(where, column, row, f"is in the future (today is {today.isoformat()})",
                         "an invoice date no later than today")


def _from_excel_serial(days: pa.ChunkedArray, column: pa.ChunkedArray,
                       where: str) -> pa.ChunkedArray:
    """Excel day numbers (1.0 = 1900-01-00) to timestamps, rounded to the second."""
    # Anything else numeric (e.g. nanoseconds since 1970) is no date Excel can hold.
    outside = pc.or_(pc.less(days, 0.0), pc.greater(days, _EXCEL_LAST_DAY))
    if (row := first_true(outside)) is not None:
        raise cell_error(where, column, row, "is a number but not an Excel day number",
                         f"a date, or a day number from 0 to {_EXCEL_LAST_DAY:.0f} (9999-12-31)")
    seconds = pc.round(pc.multiply(pc.subtract(days, float(_EXCEL_EPOCH_OFFSET)), 86400.0))
    return pc.cast(pc.multiply(pc.cast(seconds, pa.int64()), 1_000_000), pa.timestamp("us"))
