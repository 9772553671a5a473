"""Feature-set cost on the real file: wall time and peak memory, cold and cached.

    python benchmarks/features.py [--data PATH] [--sets rfm,behaviour,tfidf,word2vec] [--json OUT]

Each feature set runs in its own process (so peaks don't mix): the cleaned data is loaded (from
the data cache when warm), then the set is computed with an empty feature cache (cold) and again
from the cache it just wrote (cached). Peak RSS is the process high-water mark; "added" is what the
feature computation raised it by over the loaded data.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import subprocess
import sys
import tempfile
from pathlib import Path
from time import perf_counter

ROOT = Path(__file__).resolve().parents[1]
REAL_FILE = ROOT.parent / "shared" / "data" / "online_retail.csv.gz"


def peak_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def measure_one(data: str, feature_set: str) -> dict:
    """Run in a child process: cold and cached timings of one feature set."""
    from hydra import compose, initialize_config_dir

    from segmentlab.cache import FrameCache
    from segmentlab.config import build, build_features
    from segmentlab.data.loading import load_dataset
    from segmentlab.features.matrix import compute_features

    with initialize_config_dir(config_dir=str(ROOT / "configs"), version_base="1.3"):
        cfg = compose("config", overrides=["data=online_retail", f"data.path={data}",
                                           f"features=[{feature_set}]"])
    dataset = load_dataset(build(cfg.data), build(cfg.cleaning), cache_dir=cfg.cache_dir)
    before = peak_mb()
    cache = FrameCache(tempfile.mkdtemp(prefix="segmentlab-featbench-"))
    start = perf_counter()
    cold = compute_features(dataset, build_features(cfg), cache, "bench")
    cold_seconds = perf_counter() - start
    cold_peak = peak_mb()
    start = perf_counter()
    warm = compute_features(dataset, build_features(cfg), cache, "bench")
    cached_seconds = perf_counter() - start
    assert warm.cache_hit and warm.frame.equals(cold.frame)
    return {"feature_set": feature_set, "customers": len(cold.frame), "columns": cold.frame.shape[1],
            "cold_seconds": round(cold_seconds, 2), "cached_seconds": round(cached_seconds, 3),
            "peak_rss_mb": round(cold_peak), "added_mb": round(cold_peak - before)}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", default=os.environ.get("SEGMENTLAB_DATA", str(REAL_FILE)))
    parser.add_argument("--sets", default="rfm,behaviour,tfidf,word2vec")
    parser.add_argument("--json", help="also write the rows here")
    parser.add_argument("--one", help=argparse.SUPPRESS)  # internal: run one set in this process
    args = parser.parse_args()
    if args.one:
        print(json.dumps(measure_one(args.data, args.one)))
        return
    rows = []
    for feature_set in args.sets.split(","):
        out = subprocess.run([sys.executable, __file__, "--data", args.data, "--one", feature_set],
                             capture_output=True, text=True, check=True, cwd=ROOT)
        rows.append(json.loads(out.stdout.strip().splitlines()[-1]))
    header = list(rows[0])
    print(" | ".join(header))
    print(" | ".join("---" for _ in header))
    for row in rows:
        print(" | ".join(str(row[k]) for k in header))
    if args.json:
        Path(args.json).write_text(json.dumps(rows, indent=2))


if __name__ == "__main__":
    main()
