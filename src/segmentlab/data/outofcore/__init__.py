"""Out of core: an Online Retail file read, cleaned and summarised per customer by DuckDB.

`OutOfCoreLines` answers what ``load_dataset`` + ``TransactionCleaner.clean`` + the RFM and
behaviour feature sets (and the customer summary of segment profiles) answer, for files too big
for pandas (100 M lines): the line-level data stays in DuckDB, which spills to a scratch
directory above its memory limit; only customer-level frames come back, as pandas. The ledger,
the notes and the error messages are the pandas reader's, step for step and word for word: cells
are judged by the loader's own converters (`cells`), and the feature frames equal the pandas
ones up to float summation order (``tests/test_outofcore.py`` proves both). `choose_engine`
settles ``data.engine`` for a source.

``reading`` checks the file and gives it to SQL, ``cells`` types its columns, ``lines`` cleans
it, ``features`` summarises it, ``engine`` chooses. May import ``schema``, ``customers``,
``data`` and ``features``; only the run of ``segmentlab.study`` imports it.
"""

from segmentlab.data.outofcore.engine import MAX_PANDAS_LINES, choose_engine, estimate_lines

__all__ = ["MAX_PANDAS_LINES", "CustomerFrames", "OutOfCoreLines", "choose_engine", "estimate_lines",
           "read_customers"]


def __getattr__(name: str):
    # DuckDB is imported by the runs that use it, not by every run that asks `choose_engine`.
    if name == "OutOfCoreLines":
        from segmentlab.data.outofcore.lines import OutOfCoreLines

        return OutOfCoreLines
    if name in ("CustomerFrames", "read_customers"):
        from segmentlab.data.outofcore import customers

        return getattr(customers, name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
