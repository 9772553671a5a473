"""Scale: wall time and peak memory of load, clean and the feature sets on synthetic files.

    python benchmarks/scale.py --sizes 1e6,3e6,10e6 [--format csv.gz|parquet] [--tfidf]
                               [--word2vec] [--json PATH] [--data-dir /tmp/segmentlab-scale] [--quick]

For each size a child process generates ``SyntheticTransactions`` (one customer per 75 lines)
and writes it once in the Online Retail layout (original column names) under ``--data-dir``;
the file is reused by later runs. A second child then times the stages one after the other:
``OnlineRetailFile(path).read()``, ``TransactionCleaner().clean()``, ``RFMFeatures`` and
``BehaviourFeatures`` ``fit_transform`` (and TF-IDF and word2vec when asked). Every size runs in
fresh processes, so sizes do not share memory. Peak memory is the measuring child's maximum
resident set size, read with ``os.wait4``; ``peak so far`` after each stage is the child's own
high-water mark at that point (it never goes down, so a stage's own need shows as a rise).
``--quick`` measures 20,000 lines in a temporary folder.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import subprocess
import sys
import tempfile
import time
from functools import partial
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
import harness  # noqa: E402

ROOT = harness.ROOT
CORE_STAGES = ["read", "clean", "rfm", "behaviour"]


def _peak_mib() -> float:
    """This process's high-water resident set size so far (ru_maxrss is KiB on Linux)."""
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def measure(path: Path, tfidf: bool, word2vec: bool) -> dict:
    """Time each stage in this process; return seconds and high-water memory per stage."""
    from segmentlab.data.cleaning import TransactionCleaner
    from segmentlab.data.loading import OnlineRetailFile
    from segmentlab.features.behaviour import BehaviourFeatures
    from segmentlab.features.rfm import RFMFeatures

    stages: dict[str, dict] = {}

    def timed(name, work):
        start, cpu = time.perf_counter(), time.process_time()
        result = work()
        stages[name] = {"seconds": time.perf_counter() - start,
                        "cpu_seconds": time.process_time() - cpu, "peak_mib": _peak_mib()}
        return result

    raw = timed("read", lambda: OnlineRetailFile(str(path)).read())
    rows = len(raw)
    clean, ledger = timed("clean", partial(TransactionCleaner().clean, raw))
    del raw  # as in a run: the raw lines are not needed once cleaned
    rfm = timed("rfm", lambda: RFMFeatures().fit_transform(clean))
    timed("behaviour", lambda: BehaviourFeatures().fit_transform(clean))
    if tfidf:
        from segmentlab.features.tfidf import TfidfCategoryFeatures

        timed("tfidf", lambda: TfidfCategoryFeatures().fit_transform(clean))
    if word2vec:
        from segmentlab.features.word2vec import Word2VecProductFeatures

        timed("word2vec", lambda: Word2VecProductFeatures().fit_transform(clean))
    return {"rows_in": rows, "rows_kept": ledger.rows_kept, "customers": len(rfm),
            "stages": stages}


def _child(args: list[str]) -> tuple[dict, float]:
    """Run this script as a child; return its JSON answer and its own peak RSS in MiB."""
    proc = subprocess.Popen([sys.executable, __file__, *args], stdout=subprocess.PIPE, cwd=ROOT)
    out = proc.stdout.read()
    _, status, usage = os.wait4(proc.pid, 0)
    proc.stdout.close()
    if os.waitstatus_to_exitcode(status) != 0:
        raise SystemExit(f"child {' '.join(args)} failed with status {status}")
    return json.loads(out), usage.ru_maxrss / 1024


def run_size(n_lines: int, fmt: str, data_dir: Path, tfidf: bool, word2vec: bool) -> dict:
    """Generate (once) and measure one size in fresh processes."""
    data_dir.mkdir(parents=True, exist_ok=True)
    path = data_dir / f"synthetic-{n_lines}.{fmt}"
    generated = None
    if not path.exists():
        generated, _ = _child(["--child", "generate", str(n_lines), str(path), fmt])
    flags = [*(["--tfidf"] if tfidf else []), *(["--word2vec"] if word2vec else [])]
    result, peak = _child(["--child", "measure", str(path), *flags])
    core = sum(result["stages"][s]["seconds"] for s in CORE_STAGES)
    core_cpu = sum(result["stages"][s]["cpu_seconds"] for s in CORE_STAGES)
    return {"n_lines": n_lines, "format": fmt, "file": str(path),
            "file_mib": path.stat().st_size / 2**20, "generated": generated,
            **result, "core_seconds": core, "core_cpu_seconds": core_cpu, "peak_mib": peak,
            "load_average_1min": os.getloadavg()[0]}


def table(results: list[dict]) -> str:
    """One row per size: seconds per stage, core total and its CPU seconds, peak memory, load."""
    stages = [s for s in ["read", "clean", "rfm", "behaviour", "tfidf", "word2vec"]
              if any(s in r["stages"] for r in results)]
    rows = [{"lines": r["rows_in"], "customers": r["customers"],
             **{s: r["stages"][s]["seconds"] for s in stages if s in r["stages"]},
             "core": r["core_seconds"], "core_cpu": r["core_cpu_seconds"], "peak": r["peak_mib"],
             "load": r["load_average_1min"]} for r in results]
    columns = {"lines": "lines", "customers": "customers", **{s: s for s in stages},
               "core": "core s", "core_cpu": "core cpu s", "peak": "peak MiB", "load": "load"}
    high = [f"{r['n_lines']:.0e}: " + ", ".join(f"{s} {r['stages'][s]['peak_mib']:,.0f}"
                                                 for s in stages if s in r["stages"])
            for r in results]
    return "\n".join([harness.table(rows, columns),
                      "seconds are wall time; core = read + clean + rfm + behaviour; core cpu = their "
                      "CPU seconds (all threads); peak = max RSS of the measuring process; load = "
                      "1-minute load average after the run (the machine is shared)",
                      "high-water MiB after each stage: " + "; ".join(high)])


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--sizes", default="1e6,3e6,10e6", help="comma-separated line counts")
    parser.add_argument("--format", default="csv.gz", choices=["csv.gz", "parquet"])
    parser.add_argument("--tfidf", action="store_true", help="also time TfidfCategoryFeatures")
    parser.add_argument("--word2vec", action="store_true",
                        help="also time Word2VecProductFeatures (slow: minutes per million lines)")
    parser.add_argument("--json", help="write the results here")
    parser.add_argument("--data-dir", default="/tmp/segmentlab-scale",
                        help="where generated files are written and reused (never the repo)")
    parser.add_argument("--quick", action="store_true", help="20,000 lines in a temporary folder")
    parser.add_argument("--child", nargs="+", help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.child:
        kind, *rest = args.child
        if kind == "generate":
            answer = harness.write_lines(int(rest[0]), Path(rest[1]), rest[2])
        else:
            answer = measure(Path(rest[0]), args.tfidf, args.word2vec)
        print(json.dumps(answer))
        return
    if args.quick:
        args.sizes, args.data_dir = "2e4", tempfile.mkdtemp(prefix="segmentlab-scale-")
    results = []
    for size in args.sizes.split(","):
        n_lines = int(float(size))
        results.append(run_size(n_lines, args.format, Path(args.data_dir), args.tfidf,
                                args.word2vec))
        print(f"done {n_lines:,} lines", file=sys.stderr)
    print(table(results))
    harness.write_json(args.json, results)


if __name__ == "__main__":
    main()
