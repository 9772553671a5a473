"""Generation time of the synthetic source: one year against a multi-year history.

    python benchmarks/synthetic.py [--sizes 1e6,10e6] [--repeats 3] [--quick] [--json PATH]

Each (size, kind, repeat) runs in a fresh child process, which times
``SyntheticTransactions(...).read()`` (generation only: imports excluded) in wall and CPU
(user + system) seconds, and reports its peak resident memory. On a busy machine the CPU time
is the steadier figure: wall time grows with the other processes' load.
Kinds: ``one_year`` is the default period; ``four_years`` is 2007-12-01 to 2011-12-09 with
``segment_days=365``, a personal season for 30 % of the repeat buyers and two migrations.
One customer per 75 lines, as in ``scale.py``. ``--quick`` runs 100 k lines once.
"""

from __future__ import annotations

import argparse
import json
import resource
import statistics
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
import harness  # noqa: E402

LINES_PER_CUSTOMER = 75
COLUMNS = {"lines": "lines", "kind": "kind", "rows": "rows", "seconds_median": "seconds (median)",
           "seconds_min": "min", "seconds_max": "max", "cpu_seconds_median": "CPU seconds",
           "peak_mib": "peak MiB"}
KINDS = {
    "one_year": {},
    "four_years": {
        "start": "2007-12-01", "segment_days": 365, "seasonal_share": 0.3,
        "migrations": [
            {"date": "2010-06-01", "from": "regular_mid_value", "to": "lapsing", "share": 0.3},
            {"date": "2011-06-01", "from": "regular_mid_value", "to": "loyal_high_spender",
             "share": 0.2},
        ],
    },
}


def child(n_lines: int, kind: str) -> dict:
    """Generate once in this process; return rows, seconds and peak memory."""
    from segmentlab.data.synthetic import SyntheticTransactions

    source = SyntheticTransactions(n_customers=max(n_lines // LINES_PER_CUSTOMER, 1),
                                   n_lines=n_lines, **KINDS[kind])
    before, start = resource.getrusage(resource.RUSAGE_SELF), time.perf_counter()
    rows = len(source.read())
    seconds = time.perf_counter() - start
    after = resource.getrusage(resource.RUSAGE_SELF)
    cpu = after.ru_utime + after.ru_stime - before.ru_utime - before.ru_stime
    return {"rows": rows, "seconds": seconds, "cpu_seconds": cpu, "peak_mib": after.ru_maxrss / 1024}


def measure(sizes: list[int], repeats: int) -> list[dict]:
    """Median over fresh processes of every (size, kind)."""
    results = []
    for n_lines in sizes:
        for kind in KINDS:
            runs = []
            for _ in range(repeats):
                done = harness.fresh_process([sys.executable, __file__, "--child", str(n_lines), kind])
                runs.append(json.loads(done.stdout))
            seconds = [r["seconds"] for r in runs]
            results.append({"lines": n_lines, "kind": kind, "rows": runs[0]["rows"],
                            "seconds_median": statistics.median(seconds),
                            "seconds_min": min(seconds), "seconds_max": max(seconds),
                            "cpu_seconds_median": statistics.median(r["cpu_seconds"]
                                                                    for r in runs),
                            "peak_mib": max(r["peak_mib"] for r in runs)})
    return results


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", default="1e6,10e6")
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--quick", action="store_true")
    parser.add_argument("--json")
    parser.add_argument("--child", nargs=2, metavar=("N_LINES", "KIND"), help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        print(json.dumps(child(int(args.child[0]), args.child[1])))
        return
    sizes = [100_000] if args.quick else [int(float(s)) for s in args.sizes.split(",")]
    results = measure(sizes, 1 if args.quick else args.repeats)
    print(harness.table(results, COLUMNS))
    print(f"generation only (imports excluded), each in a fresh process; load {harness.load_average():.1f}")
    harness.write_json(args.json, results)


if __name__ == "__main__":
    main()
