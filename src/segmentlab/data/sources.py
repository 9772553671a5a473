"""One history from several parts: files, or the sheets of a workbook.

Parts are put in time order (by their first invoice date) and concatenated. Releases of one shop's
data overlap (the two Online Retail files share December 2010), so a line found in two parts must
count once. Equality is on the normalised line (every source column), with multiset semantics: a
line that occurs ``k_i`` times in part ``i`` is kept ``max_i k_i`` times, so an exact repeat
inside one part is left for the cleaner's ``duplicate`` step, and only copies that merely repeat
another part are removed. Their number becomes the ledger step ``overlap_duplicate``.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
import pandas as pd

from segmentlab.schema import INVOICE_DATE, SOURCE_COLUMNS

#: The ledger step of lines removed because another part holds them too.
OVERLAP_STEP = "overlap_duplicate"
_MIX = np.uint64(0x9E3779B97F4A7C15)  # 2**64 / golden ratio: the usual multiplicative hash


@dataclass(frozen=True)
class PartSummary:
    """One part as read: its name, lines and date range."""

    name: str
    lines: int
    first: pd.Timestamp | None
    last: pd.Timestamp | None

    def format(self) -> str:
        """``read NAME: 1,234 lines, 2010-12-01 … 2011-06-07``."""
        span = f", {self.first:%Y-%m-%d} … {self.last:%Y-%m-%d}" if self.lines else ""
        return f"read {self.name}: {self.lines:,} lines{span}"


@dataclass(frozen=True)
class Reading:
    """What reading a source found besides its lines, for the console and the ledger.

    Attributes
    ----------
    parts : tuple of PartSummary
        In time order.
    overlap_duplicate : int
        Lines removed because an earlier part holds them too.
    warnings : tuple of str
        One line each (e.g. lines decoded as Windows-1252).
    """

    parts: tuple[PartSummary, ...]
    overlap_duplicate: int = 0
    warnings: tuple[str, ...] = field(default=())

    @property
    def lines_read(self) -> int:
        """Every line of every part, overlap included (the ledger's ``rows_in``)."""
        return sum(p.lines for p in self.parts)

    def notes(self) -> tuple[str, ...]:
        """Lines to print: the parts read, the overlap between them, then the warnings."""
        notes = [p.format() for p in self.parts]
        if len(self.parts) > 1:
            notes.append(f"{self.overlap_duplicate:,} lines found in two parts counted once "
                         f"(ledger step {OVERLAP_STEP})")
        return (*notes, *(f"warning: {w}" for w in self.warnings))


def combine_parts(parts: list[tuple[str, pd.DataFrame]],
                  warnings: tuple[str, ...] = ()) -> tuple[pd.DataFrame, Reading]:
    """Concatenate normalised parts in time order, counting lines shared between parts once.

    Parameters
    ----------
    parts : list of (name, DataFrame)
        Frames in ``RAW_COLUMNS``, as a file reader returns them.
    warnings : tuple of str
        Carried into the `Reading`.

    Returns
    -------
    frame : DataFrame
        The lines kept, part after part, each part in its own order, with a fresh index.
    reading : Reading
    """
    summaries = [_summary(name, frame) for name, frame in parts]
    # Parts without lines go last; ties keep the order given.
    order = sorted(range(len(parts)), key=lambda i: (summaries[i].first is None,
                                                     summaries[i].first or pd.Timestamp.min, i))
    frames = [parts[i][1] for i in order]
    summaries = [summaries[i] for i in order]
    if len(frames) == 1:
        return frames[0], Reading((summaries[0],), 0, tuple(warnings))
    part = np.repeat(np.arange(len(frames)), [len(f) for f in frames])
    frame = pd.concat(frames, ignore_index=True)
    repeated = _copies_from_other_parts(frame, part)
    if repeated.any():
        frame = frame[~repeated].reset_index(drop=True)
    return frame, Reading(tuple(summaries), int(repeated.sum()), tuple(warnings))


def _summary(name: str, frame: pd.DataFrame) -> PartSummary:
    dates = frame[INVOICE_DATE]
    if len(frame) == 0:
        return PartSummary(name, 0, None, None)
    return PartSummary(name, len(frame), dates.min(), dates.max())


def _copies_from_other_parts(frame: pd.DataFrame, part: np.ndarray) -> np.ndarray:
    """Lines beyond the most copies any earlier part holds of them: what multiset union drops.

    A line whose hash occurs in one part only cannot be shared; the exact comparison runs on the
    others, usually the overlap period alone.
    """
    keys = _line_keys(frame)
    pairs = pd.DataFrame({"key": keys, "part": part}).drop_duplicates()
    shared_keys = pairs["key"][pairs["key"].duplicated()].unique()
    candidates = np.flatnonzero(np.isin(keys, shared_keys))
    drop = np.zeros(len(frame), dtype=bool)
    if len(candidates) == 0:
        return drop
    lines = frame[SOURCE_COLUMNS].take(candidates)
    group = lines.groupby(SOURCE_COLUMNS, dropna=False, sort=False).ngroup().to_numpy()
    in_part = part[candidates]
    rank = pd.DataFrame({"g": group, "p": in_part}).groupby(["g", "p"]).cumcount().to_numpy()
    counts = np.zeros((group.max() + 1, part.max() + 1), dtype=np.int64)
    np.add.at(counts, (group, in_part), 1)
    # Copies already held by the parts before each part (parts are in time order).
    before = np.maximum.accumulate(np.pad(counts, ((0, 0), (1, 0)))[:, :-1], axis=1)
    drop[candidates] = rank < before[group, in_part]
    return drop


def _line_keys(frame: pd.DataFrame) -> np.ndarray:
    """uint64 per line, equal for equal lines (lines with equal keys are then compared exactly)."""
    mixed = np.zeros(len(frame), dtype=np.uint64)
    for column in SOURCE_COLUMNS:
        np.bitwise_xor(mixed, _bits(frame[column]).view(np.uint64), out=mixed)
        np.multiply(mixed, _MIX, out=mixed)
    return mixed


def _bits(values: pd.Series) -> np.ndarray:
    """int64 per line, equal for equal values (text by its code among the column's values)."""
    kind = values.dtype.kind
    if kind == "M":
        return values.to_numpy().view(np.int64)
    if kind == "f":
        return (values.to_numpy(dtype="float64", na_value=np.nan) + 0.0).view(np.int64)  # -0.0
    if kind in "iu":
        return values.to_numpy(dtype="int64", na_value=-1)
    return pd.factorize(values)[0].astype(np.int64)
