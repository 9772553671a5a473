"""Out of core: Online Retail files read, cleaned and summarised per customer by DuckDB.

`OutOfCoreLines` answers what ``load_dataset`` + ``TransactionCleaner.clean`` + the RFM and
behaviour feature sets answer, for files too big for pandas (100 M lines): the line-level data
stays in DuckDB, which spills to a temporary directory above ``memory_limit``; only
customer-level frames come back, as pandas. The cleaning ledger is the pandas one, step for
step, and the feature frames equal the pandas ones up to float summation order
(``tests/test_outofcore.py`` proves both on synthetic and real files). `choose_engine` says
which path a run should take for a file.

``source`` reads and types the file, ``lines`` cleans it, ``features`` summarises it. May
import ``schema``, ``customers``, ``data`` and ``features``; nothing imports it but the run that
chooses the duckdb engine.
"""

from segmentlab.outofcore.lines import ENGINES, MAX_PANDAS_LINES, OutOfCoreLines, choose_engine
from segmentlab.outofcore.source import estimate_lines

__all__ = ["ENGINES", "MAX_PANDAS_LINES", "OutOfCoreLines", "choose_engine", "estimate_lines"]
