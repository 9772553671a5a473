"""Which engine reads a run's data file: pandas (every line in memory) or DuckDB (out of core).

``data.engine`` (`OnlineRetailFile.engine`) is ``pandas``, ``duckdb`` or ``auto``; `choose_engine`
settles ``auto`` by the number of lines, counted from the Parquet footer or estimated from the
first MiB of a CSV, against `MAX_PANDAS_LINES`.
"""

from __future__ import annotations

import zlib
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq

from segmentlab.data.formats import file_format
from segmentlab.schema import DataError

#: ``auto`` reads files up to this many lines with pandas, which keeps every stage of the run.
#: Measured on this 2-core machine (README, "Big files: data.engine"): at 10 M lines pandas
#: loads, cleans and featurises in 64 s at 3.1 GiB (the lines alone; a full run holds more),
#: DuckDB in 28 s at 1.4 GiB; memory grows linearly, so 100 M lines cannot be held in pandas.
MAX_PANDAS_LINES = 10_000_000


def choose_engine(source) -> str:
    """``"pandas"`` or ``"duckdb"``: how a run reads ``source``.

    Parameters
    ----------
    source : TransactionSource
        An `OnlineRetailFile` (its ``engine``); any other source (the synthetic generator) is
        read by pandas.

    Returns
    -------
    str

    Raises
    ------
    DataError
        When ``engine="duckdb"`` is asked for several files or a workbook, which only the pandas
        reader reads.
    """
    engine = getattr(source, "engine", None)
    if engine in (None, "pandas"):
        return "pandas"
    files = list(source.files)
    several = len(files) > 1
    workbook = any(file_format(f) == "xlsx" for f in files)
    if engine == "duckdb":
        if several or workbook:
            raise DataError(f"{source.describe()}: data.engine=duckdb reads one CSV or Parquet file, "
                            f"not {'several files' if several else 'a workbook'}; use "
                            f"data.engine=pandas or auto")
        return "duckdb"
    if several or workbook or not files[0].is_file():
        return "pandas"  # several parts are joined by pandas; a missing file is its to report
    try:
        lines = estimate_lines(files[0])
    except (OSError, pa.ArrowException, zlib.error):
        return "pandas"  # an unreadable file: the pandas reader's message says why
    return "duckdb" if lines > MAX_PANDAS_LINES else "pandas"


def estimate_lines(path: str | Path) -> int:
    """Data lines of a file: exact for Parquet, from the first MiB for CSV (plain or gzip)."""
    file = Path(path)
    if file_format(file) == "parquet":
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
