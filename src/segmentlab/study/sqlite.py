"""SQLite stores set up for a tuning study's many small transactions.

A study writes a few dozen short transactions per trial to Optuna's and MLflow's stores. In
SQLite's default rollback-journal mode every commit waits for the disk twice (about 2 ms here, a
tenth of a trial's bookkeeping); with a write-ahead log and ``synchronous=NORMAL`` a commit is an
append to the log, readers do not block the writer (several workers on one file), and the
database stays consistent after a crash of the process or of the machine. The price: after a
power failure the last transactions before it may be missing.
"""

from __future__ import annotations

import sqlite3

PRAGMAS = ("PRAGMA journal_mode=WAL", "PRAGMA synchronous=NORMAL")


def use_write_ahead_log() -> None:
    """Set the pragmas above on every SQLite connection SQLAlchemy opens in this process from now
    on (Optuna's RDB storage and MLflow's store open theirs through SQLAlchemy)."""
    from sqlalchemy import event
    from sqlalchemy.engine import Engine

    if not event.contains(Engine, "connect", _on_connect):
        event.listen(Engine, "connect", _on_connect)


def _on_connect(dbapi_connection, _record) -> None:
    if not isinstance(dbapi_connection, sqlite3.Connection):
        return
    cursor = dbapi_connection.cursor()
    try:
        for pragma in PRAGMAS:
            cursor.execute(pragma)
    except sqlite3.OperationalError:  # e.g. another connection holds a lock: keep SQLite's defaults
        pass
    finally:
        cursor.close()
