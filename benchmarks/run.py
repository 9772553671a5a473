"""All benchmarks, one table: python benchmarks/run.py [--quick] [--json outputs/benchmarks.json]

Runs, each in its own processes so timings and memory peaks don't mix:
- scale.py     per-stage wall time and peak memory at 1 M / 3 M / 10 M synthetic lines (and the
               real file): read, clean, RFM, behaviour;
- features.py  every feature set on the real file, cold and cached;
- tuning.py    the 40-trial K-means study: overhead share and trials per minute;
- baseline.py  segmentlab against a plain pandas/scikit-learn RFM → K-means script.
``--quick`` uses 1 M lines only and a 10-trial study. Results also go to JSON.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
from pathlib import Path

HERE = Path(__file__).resolve().parent


def run(script: str, *args: str) -> object:
    """Run one benchmark script with ``--json`` and return what it wrote."""
    out = Path(tempfile.mkdtemp(prefix="segmentlab-bench-")) / "result.json"
    print(f"… {script} {' '.join(args)}", flush=True)
    subprocess.run([sys.executable, str(HERE / script), *args, "--json", str(out)], check=True,
                   stdout=subprocess.DEVNULL)
    return json.loads(out.read_text())


def table(title: str, rows: list[dict]) -> str:
    header = list(rows[0])
    lines = [f"\n{title}", " | ".join(header), " | ".join("---" for _ in header)]
    lines += [" | ".join(f"{v:,.2f}" if isinstance(v, float) else str(v) for v in row.values())
              for row in rows]
    return "\n".join(lines)


def scale_row(row: dict) -> dict:
    """One line of the scale table: size, per-stage seconds, total and peak memory."""
    stages = {name: stage["seconds"] for name, stage in row["stages"].items()}
    return {"lines": f"{row['rows_in']:,}", "customers": f"{row['customers']:,}", **stages,
            "load+clean+rfm+behaviour": row["core_seconds"], "peak_mib": row["peak_mib"]}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true")
    parser.add_argument("--json", default="outputs/benchmarks.json")
    args = parser.parse_args()
    sizes = "1e6" if args.quick else "1e6,3e6,10e6"
    results = {
        "scale": run("scale.py", "--sizes", sizes),
        "features": run("features.py"),
        "tuning": run("tuning.py", "--trials", "10" if args.quick else "40"),
        "baseline": run("baseline.py"),
    }
    print(table("scale: synthetic lines, wall seconds per stage, peak MiB of the whole run",
                [scale_row(row) for row in results["scale"]]))
    print(table("feature sets on the real file", results["features"]))
    print(table("tuning overhead (K-means on RFM, real file)", [results["tuning"]]))
    print(table("segmentlab vs plain pandas/scikit-learn (RFM → K-means, real file)", [results["baseline"]]))
    Path(args.json).parent.mkdir(parents=True, exist_ok=True)
    Path(args.json).write_text(json.dumps(results, indent=2))
    print(f"\nJSON: {args.json}")


if __name__ == "__main__":
    main()
