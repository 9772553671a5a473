"""Every benchmark, each in its own process, every table printed: python benchmarks/run.py [--quick]

    python benchmarks/run.py [--quick] [--only baseline,tuning] [--json outputs/benchmarks.json]

Runs, in this order (see each script's docstring):
- harness.py    the machine: cores, load, a CPU-bound loop alone and beside a competing process;
- scale.py      read, clean, RFM and behaviour at 1 M / 3 M / 10 M synthetic lines;
- synthetic.py  generating 1 M and 10 M synthetic lines, one year and four years;
- features.py   every feature set on the real file, cold and cached;
- stages.py     what each stage of the default run costs on the real file; K-means restarts;
- baseline.py   the whole run.py command against a plain pandas/scikit-learn script;
- tuning.py     the 40-trial K-means study: trials per minute and overhead, evaluation.n_jobs;
- outofcore.py  load + clean + RFM + behaviour with DuckDB at 1 M / 10 M / 100 M lines (the full
                run writes its Parquet files with make_lines.py under /tmp/segmentlab-ooc and
                takes tens of minutes at 100 M lines).
``--quick`` passes ``--quick`` to each (small synthetic data, temporary stores, seconds each;
what the test suite runs). A script that fails is reported and the others still run; the exit
status is then 1. Results go to one JSON file (quick: a temporary one unless ``--json``).
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
import harness  # noqa: E402

SCRIPTS = ["harness", "scale", "synthetic", "features", "stages", "baseline", "tuning", "outofcore"]


def run_script(name: str, quick: bool, out: Path) -> tuple[int, float, object]:
    """Run one script in a fresh process, streaming its table; exit status, seconds, its JSON."""
    command = [sys.executable, str(Path(__file__).with_name(f"{name}.py")), "--json", str(out),
               *(["--quick"] if quick else [])]
    print(f"\n## {name}.py{' --quick' if quick else ''}\n", flush=True)
    start = time.perf_counter()
    status = subprocess.run(command, cwd=harness.ROOT, env=harness.environment()).returncode
    seconds = time.perf_counter() - start
    print(f"\n{name}.py: exit status {status}, {seconds:.1f} s", flush=True)
    return status, seconds, json.loads(out.read_text()) if status == 0 and out.exists() else None


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="every script with --quick")
    parser.add_argument("--only", help=f"comma-separated subset of {','.join(SCRIPTS)}")
    parser.add_argument("--json", help="where to write all results (default outputs/benchmarks.json; "
                                       "quick: a temporary file)")
    args = parser.parse_args()
    names = args.only.split(",") if args.only else SCRIPTS
    unknown = sorted(set(names) - set(SCRIPTS))
    if unknown:
        parser.error(f"--only: unknown script(s) {', '.join(unknown)}; choose from {', '.join(SCRIPTS)}")
    scratch = Path(tempfile.mkdtemp(prefix="segmentlab-benchmarks-"))
    results, failed = {}, []
    for name in names:
        status, seconds, result = run_script(name, args.quick, scratch / f"{name}.json")
        results[name] = {"exit_status": status, "seconds": seconds, "result": result}
        if status != 0:
            failed.append(name)
    target = args.json or (str(scratch / "benchmarks.json") if args.quick else "outputs/benchmarks.json")
    harness.write_json(target, {"quick": args.quick, "load_average_end": harness.load_average(),
                                "scripts": results})
    print(f"\nall results: {target}")
    if failed:
        print(f"failed: {', '.join(failed)}", file=sys.stderr)
        raise SystemExit(1)


if __name__ == "__main__":
    main()
