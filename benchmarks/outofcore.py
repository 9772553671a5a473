"""Out of core: wall time and peak memory of load + clean + RFM + behaviour with DuckDB.

    python benchmarks/outofcore.py [--sizes 1e6,1e7,1e8] [--quick] [--memory-limit 8GB]
                                   [--pandas] [--data-dir /tmp/segmentlab-ooc] [--json PATH]

For each size, synthetic lines are written once (``make_lines.py``: one ``SyntheticTransactions``
per million lines, customers distinct between chunks) as Parquet under ``--data-dir`` and reused
by later runs. A fresh child process then times `segmentlab.data.outofcore.OutOfCoreLines`: ``clean``
(read + clean, the ledger), ``fit_transform(RFMFeatures())`` and
``fit_transform(BehaviourFeatures())``, then ``customer_summary()`` (what segment profiles
read; not part of the issue's target). Peak memory is the child's maximum resident set size
(``os.wait4``), so sizes do not share memory. CPU seconds count every thread of the child; the
load average before and after says how busy the shared machine was. ``--quick`` runs 20,000
lines in a temporary directory (seconds; the test suite runs it). ``--pandas`` also times the
pandas path on the same file, in its own fresh process: ``load_dataset`` (read + clean), then
`RFMFeatures`, `BehaviourFeatures` and `customer_summary` of the cleaned lines.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
STAGES = ["read+clean", "rfm", "behaviour"]  # the target: their total
EXTRA = ["summary"]


def measure(path: Path, memory_limit: str) -> dict:
    """Time each stage in this process; return seconds, CPU seconds, rows and customers."""
    from segmentlab.data.outofcore import OutOfCoreLines
    from segmentlab.features.behaviour import BehaviourFeatures
    from segmentlab.features.rfm import RFMFeatures

    stages: dict[str, dict] = {}

    def timed(name, work):
        start, cpu = time.perf_counter(), time.process_time()
        result = work()
        stages[name] = {"seconds": time.perf_counter() - start,
                        "cpu_seconds": time.process_time() - cpu}
        return result

    limit = None if memory_limit == "default" else memory_limit
    with OutOfCoreLines(str(path), memory_limit=limit) as lines:
        ledger = timed("read+clean", lines.clean)
        rfm = timed("rfm", lambda: lines.fit_transform(RFMFeatures()))
        timed("behaviour", lambda: lines.fit_transform(BehaviourFeatures()))
        timed("summary", lines.customer_summary)
    return {"rows_in": ledger.rows_in, "rows_kept": ledger.rows_kept, "customers": len(rfm),
            "ledger": ledger.to_dict(), "stages": stages}


def measure_pandas(path: Path) -> dict:
    """`measure` for the pandas path: every line in memory."""
    from segmentlab.customers import customer_summary
    from segmentlab.data.cleaning import TransactionCleaner
    from segmentlab.data.loading import OnlineRetailFile, load_dataset
    from segmentlab.features.behaviour import BehaviourFeatures
    from segmentlab.features.rfm import RFMFeatures

    stages: dict[str, dict] = {}

    def timed(name, work):
        start, cpu = time.perf_counter(), time.process_time()
        result = work()
        stages[name] = {"seconds": time.perf_counter() - start,
                        "cpu_seconds": time.process_time() - cpu}
        return result

    dataset = timed("read+clean", lambda: load_dataset(
        OnlineRetailFile(str(path), engine="pandas"), TransactionCleaner(), cache_dir=None))
    rfm = timed("rfm", lambda: RFMFeatures().fit_transform(dataset.transactions))
    timed("behaviour", lambda: BehaviourFeatures().fit_transform(dataset.transactions))
    timed("summary", lambda: customer_summary(dataset.transactions))
    ledger = dataset.ledger
    return {"rows_in": ledger.rows_in, "rows_kept": ledger.rows_kept, "customers": len(rfm),
            "ledger": ledger.to_dict(), "stages": stages}


def _child(args: list[str]) -> tuple[dict, float]:
    """Run this script as a child; return its JSON answer and its peak RSS in MiB."""
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(
        [str(HERE.parent / "src"), *filter(None, [os.environ.get("PYTHONPATH")])])}
    proc = subprocess.Popen([sys.executable, __file__, *args], stdout=subprocess.PIPE, env=env)
    out = proc.stdout.read()
    _, status, usage = os.wait4(proc.pid, 0)
    proc.stdout.close()
    if os.waitstatus_to_exitcode(status) != 0:
        raise SystemExit(f"child {' '.join(args)} failed with status {status}")
    return json.loads(out), usage.ru_maxrss / 1024


def run_size(n_lines: int, data_dir: Path, memory_limit: str, chunk_lines: int,
             engine: str = "duckdb") -> dict:
    """Write (once) and measure one size with ``engine`` in fresh processes."""
    path = data_dir / f"lines-{n_lines}.parquet"
    generated = None
    if not path.exists():
        generated, _ = _child(["--child", "generate", str(n_lines), str(path), str(chunk_lines)])
    load_before = os.getloadavg()[0]
    kind = "measure" if engine == "duckdb" else "pandas"
    result, peak = _child(["--child", kind, str(path), memory_limit])
    total = sum(result["stages"][s]["seconds"] for s in STAGES)
    cpu = sum(result["stages"][s]["cpu_seconds"] for s in STAGES)
    return {"n_lines": n_lines, "engine": engine, "file": str(path),
            "file_mib": path.stat().st_size / 2**20, "generated": generated, **result,
            "total_seconds": total, "total_cpu_seconds": cpu, "peak_mib": peak,
            "load_before": load_before, "load_after": os.getloadavg()[0]}


def table(results: list[dict]) -> str:
    """Plain-text table: one row per size."""
    head = (f"{'lines':>12} {'customers':>10} " + " ".join(f"{s:>10}" for s in STAGES + EXTRA)
            + f" {'total s':>8} {'cpu s':>7} {'peak MiB':>9} {'load':>9} engine")
    rows = [head, "-" * len(head)]
    for r in results:
        cells = " ".join(f"{r['stages'][s]['seconds']:>10.2f}" for s in STAGES + EXTRA)
        rows.append(f"{r['rows_in']:>12,} {r['customers']:>10,} {cells} {r['total_seconds']:>8.2f} "
                    f"{r['total_cpu_seconds']:>7.1f} {r['peak_mib']:>9,.0f} "
                    f"{r['load_before']:>4.1f}>{r['load_after']:<4.1f} {r['engine']}")
    rows.append("seconds are wall time of the stage in a fresh process (Parquet input); "
                "cpu = CPU seconds of all its threads; peak = max RSS of that process; load = "
                "1-minute load average before>after (2 cores, shared)")
    return "\n".join(rows)


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--sizes", default="1e6,1e7,1e8", help="comma-separated line counts")
    parser.add_argument("--quick", action="store_true", help="20,000 lines in a temporary dir")
    parser.add_argument("--memory-limit", default="default",
                        help="DuckDB memory_limit, e.g. 8GB; default: a third of the machine's memory")
    parser.add_argument("--pandas", action="store_true",
                        help="also time the pandas path (every line in memory) on each file")
    parser.add_argument("--data-dir", default="/tmp/segmentlab-ooc",
                        help="where generated files are written and reused (never the repo)")
    parser.add_argument("--json", help="write the results here")
    parser.add_argument("--child", nargs="+", help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.child:
        kind, *rest = args.child
        if kind == "generate":
            sys.path.insert(0, str(HERE))
            from make_lines import write

            answer = write(int(rest[0]), Path(rest[1]), "parquet", int(rest[2]), seed=42)
        elif kind == "pandas":
            answer = measure_pandas(Path(rest[0]))
        else:
            answer = measure(Path(rest[0]), rest[1])
        print(json.dumps(answer))
        return
    data_dir = Path(tempfile.mkdtemp(prefix="segmentlab-ooc-")) if args.quick else Path(args.data_dir)
    sizes = [20_000] if args.quick else [int(float(s)) for s in args.sizes.split(",")]
    chunk = 10_000 if args.quick else 1_000_000
    data_dir.mkdir(parents=True, exist_ok=True)
    try:
        results = []
        for n_lines in sizes:
            for engine in ["duckdb", "pandas"] if args.pandas else ["duckdb"]:
                results.append(run_size(n_lines, data_dir, args.memory_limit, chunk, engine))
            print(f"done {n_lines:,} lines", file=sys.stderr, flush=True)
    finally:
        if args.quick:
            shutil.rmtree(data_dir, ignore_errors=True)
    print(table(results))
    if args.json:
        Path(args.json).write_text(json.dumps(results, indent=2))


if __name__ == "__main__":
    main()
