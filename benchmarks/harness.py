"""What every benchmark shares: fresh processes, a competing process, small files, tables.

    python benchmarks/harness.py [--quick] [--seconds 3] [--json OUT]

Run on its own, it prints the machine's conditions: cores, load average and how fast one
CPU-bound Python loop runs alone and beside one competing process (``python -c "while True:
pass"``), the competition the other benchmarks use. On 2 cores the loop should keep its speed
with one competitor; a slower loop means other jobs are sharing the machine.

The other scripts import it (``import harness``): `fresh_process` runs a command in a new process
and returns its wall seconds and peak RSS, `competing` keeps CPU-bound processes busy around a
measurement and kills them by their own ids, `write_lines` writes synthetic invoice lines in the
Online Retail layout (quick modes need no real file), `table` prints the tables.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import time
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import NamedTuple

ROOT = Path(__file__).resolve().parents[1]
#: Where the Online Retail file is looked for: beside the checkout (``/work/main``) or beside its
#: worktrees folder (``/work/wt/NAME``).
REAL_FILES = [ROOT.parent / "shared" / "data" / "online_retail.csv.gz",
              ROOT.parents[1] / "shared" / "data" / "online_retail.csv.gz"]
#: The thread settings a user's shell does not have; benchmarks that time what a user meets drop them.
THREAD_VARIABLES = ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS")
#: Original Online Retail headers, in ``schema.SOURCE_COLUMNS`` order.
HEADER = ["InvoiceNo", "StockCode", "Description", "Quantity", "InvoiceDate", "UnitPrice",
          "CustomerID", "Country"]
SPIN = "while True: pass"


class Finished(NamedTuple):
    """A command that ran in a fresh process: wall seconds, peak RSS and what it printed."""

    seconds: float
    peak_mb: float
    stdout: str


def real_file() -> str:
    """The Online Retail file: ``SEGMENTLAB_DATA``, else ``shared/data`` beside the repo (or its
    worktrees folder); the first candidate when none exists, so the error names it."""
    found = [p for p in REAL_FILES if p.exists()]
    return os.environ.get("SEGMENTLAB_DATA", str((found or REAL_FILES)[0]))


def environment(user_threads: bool = False) -> dict[str, str]:
    """This environment with the worktree's package first on the path.

    ``user_threads`` drops ``OMP_NUM_THREADS`` and the like, as in a user's shell: whole-command
    timings then include each side's own thread choices.
    """
    env = {k: v for k, v in os.environ.items() if not (user_threads and k in THREAD_VARIABLES)}
    env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(ROOT / "src"), env.get("PYTHONPATH")]))
    return env


def fresh_process(command: Sequence[str], cwd: Path | str = ROOT,
                  env: dict[str, str] | None = None) -> Finished:
    """Run ``command`` in a new process; its wall seconds and its own peak RSS (``os.wait4``).

    Raises RuntimeError with the command's last lines of stderr when it fails.
    """
    start = time.perf_counter()
    proc = subprocess.Popen(list(command), cwd=cwd, env=env or environment(),
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    # Both pipes are read to the end before waiting, so a chatty child cannot block on a full pipe.
    out, err = _drain(proc)
    _, status, usage = os.wait4(proc.pid, 0)
    seconds = time.perf_counter() - start
    proc.returncode = os.waitstatus_to_exitcode(status)
    if proc.returncode != 0:
        tail = "\n".join(err.strip().splitlines()[-5:])
        raise RuntimeError(f"{' '.join(command)} exited with {proc.returncode}:\n{tail}")
    return Finished(seconds, usage.ru_maxrss / 1024, out)


def _drain(proc: subprocess.Popen) -> tuple[str, str]:
    import threading

    chunks: dict[str, str] = {}

    def read(name, stream):
        chunks[name] = stream.read()
        stream.close()

    readers = [threading.Thread(target=read, args=(n, s)) for n, s in
               (("out", proc.stdout), ("err", proc.stderr))]
    for reader in readers:
        reader.start()
    for reader in readers:
        reader.join()
    return chunks["out"], chunks["err"]


@contextmanager
def competing(n: int) -> Iterator[list[int]]:
    """Keep ``n`` CPU-bound processes (``python -c "while True: pass"``) busy inside the block.

    Yields their process ids; each is killed by its own id when the block ends, even on error.
    """
    procs = [subprocess.Popen([sys.executable, "-c", SPIN], stdin=subprocess.DEVNULL,
                              stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL) for _ in range(n)]
    try:
        time.sleep(0.2 if procs else 0)  # let them start spinning before the measurement does
        yield [p.pid for p in procs]
    finally:
        for proc in procs:
            proc.kill()
            proc.wait()


def competitor_counts(busy_only: bool = False) -> list[int]:
    """The machine conditions of the targets: no competing process, and one."""
    return [1] if busy_only else [0, 1]


def load_average() -> float:
    """The 1-minute load average (competing processes included)."""
    return os.getloadavg()[0]


def write_lines(n_lines: int, path: Path, fmt: str = "csv.gz", seed: int = 42) -> dict:
    """Write synthetic invoice lines in the Online Retail layout (original column names).

    One customer per 75 lines, as in the real file's ratio of lines to customers. Text files
    look like the real file: ``2010-12-01 08:26:00`` dates, ids without ``.0``, empty for missing.

    Returns
    -------
    dict
        ``rows`` written and ``seconds`` taken.
    """
    import pyarrow as pa
    import pyarrow.compute as pc
    import pyarrow.csv as pv
    import pyarrow.parquet as pq

    from segmentlab.data.synthetic import SyntheticTransactions
    from segmentlab.schema import SOURCE_COLUMNS

    start = time.perf_counter()
    source = SyntheticTransactions(n_customers=max(n_lines // 75, 1), n_lines=n_lines, seed=seed)
    frame = source.read()[SOURCE_COLUMNS]
    frame.columns = HEADER
    table_ = pa.Table.from_pandas(frame, preserve_index=False)
    tmp = path.with_name(path.name + ".tmp")
    if fmt == "parquet":
        pq.write_table(table_, tmp)
    else:
        seconds = pc.cast(table_.column("InvoiceDate"), pa.timestamp("s"))  # no ".000000000"
        date = pc.strftime(seconds, "%Y-%m-%d %H:%M:%S")
        table_ = table_.set_column(HEADER.index("InvoiceDate"), "InvoiceDate", date)
        if fmt == "csv.gz":
            with pa.CompressedOutputStream(str(tmp), "gzip") as out:
                pv.write_csv(table_, out)
        else:
            pv.write_csv(table_, str(tmp))
    os.replace(tmp, path)
    return {"rows": len(frame), "seconds": time.perf_counter() - start}


def table(rows: Sequence[dict], columns: dict[str, str]) -> str:
    """A Markdown table: ``columns`` maps row keys to headers; floats get 2 decimals, ints commas."""
    def cell(value) -> str:
        if value is None:
            return "–"
        if isinstance(value, bool):
            return str(value)
        if isinstance(value, int):
            return f"{value:,}"
        if isinstance(value, float):
            return f"{value:,.2f}"
        return str(value)

    lines = ["| " + " | ".join(columns.values()) + " |", "|" + "---|" * len(columns)]
    lines += ["| " + " | ".join(cell(row.get(key)) for key in columns) + " |" for row in rows]
    return "\n".join(lines)


def median_range(values: Sequence[float], digits: int = 2) -> str:
    """``median [min–max]`` of a few measurements, the spread a reader should see."""
    import statistics

    if len(values) == 1:
        return f"{values[0]:.{digits}f}"
    return (f"{statistics.median(values):.{digits}f} "
            f"[{min(values):.{digits}f}–{max(values):.{digits}f}]")


def write_json(path: str | None, result: object) -> None:
    """Also write the result as JSON when ``--json`` was given."""
    if path:
        Path(path).parent.mkdir(parents=True, exist_ok=True)
        Path(path).write_text(json.dumps(result, indent=2, default=str))


# --- the machine's own table ------------------------------------------------------------------
def spin_rate(seconds: float) -> float:
    """Millions of iterations per second of a bare Python loop in a fresh process."""
    code = (f"import time\nn, end = 0, time.perf_counter() + {seconds}\n"
            "while time.perf_counter() < end:\n    for _ in range(10_000): n += 1\n"
            f"print(n / {seconds} / 1e6)")
    return float(fresh_process([sys.executable, "-c", code]).stdout)


def machine(seconds: float) -> list[dict]:
    """Cores, load and the loop's speed with no and with one competing process."""
    rows = []
    for n in competitor_counts():
        with competing(n):
            load = load_average()
            rate = spin_rate(seconds)
        rows.append({"competing": n, "cores": os.cpu_count(), "load": load, "rate": rate})
    for row in rows:
        row["relative"] = row["rate"] / rows[0]["rate"]
    return rows


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="0.5 s per condition")
    parser.add_argument("--seconds", type=float, default=3.0, help="loop seconds per condition")
    parser.add_argument("--json", help="also write the rows here")
    args = parser.parse_args()
    rows = machine(0.5 if args.quick else args.seconds)
    print(table(rows, {"competing": "competing processes", "cores": "cores", "load": "load (1 min)",
                       "rate": "loop M it/s", "relative": "relative speed"}))
    print(f"python {sys.version.split()[0]}; load is the 1-minute average, competitors included")
    write_json(args.json, rows)


if __name__ == "__main__":
    main()
