"""Feature-set cost on the real file: wall time and peak memory, cold and cached.

    python benchmarks/features.py [--data PATH] [--sets rfm,behaviour,tfidf,word2vec] [--quick]
                                  [--json OUT]

Each feature set runs in its own process (so peaks don't mix): the cleaned data is loaded (from
a data cache in a temporary folder, filled by the first set), then the set is computed with an
empty feature cache (cold) and again from the cache it just wrote (cached). Peak RSS is the
process high-water mark; "added" is what the feature computation raised it by over the loaded
data. ``--quick`` runs rfm, behaviour and tfidf on a small synthetic file.
"""

from __future__ import annotations

import argparse
import json
import resource
import sys
import tempfile
from pathlib import Path
from time import perf_counter

sys.path.insert(0, str(Path(__file__).resolve().parent))
import harness  # noqa: E402

COLUMNS = {"feature_set": "set", "customers": "customers", "columns": "columns",
           "cold_seconds": "cold s", "cached_seconds": "cached s", "peak_rss_mb": "peak RSS MB",
           "added_mb": "added MB"}


def peak_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def measure_one(data: str, feature_set: str, workdir: Path) -> dict:
    """Run in a child process: cold and cached timings of one feature set."""
    from hydra import compose, initialize_config_dir

    from segmentlab.cache import FrameCache
    from segmentlab.config import build, build_features
    from segmentlab.data.loading import load_dataset
    from segmentlab.features.matrix import compute_features

    with initialize_config_dir(config_dir=str(harness.ROOT / "configs"), version_base="1.3"):
        cfg = compose("config", overrides=["data=online_retail", f"data.path={data}",
                                           f"features=[{feature_set}]", f"cache_dir={workdir / 'cache'}"])
    dataset = load_dataset(build(cfg.data), build(cfg.cleaning), cache_dir=cfg.cache_dir)
    before = peak_mb()
    cache = FrameCache(tempfile.mkdtemp(prefix=f"features-{feature_set}-", dir=workdir))
    start = perf_counter()
    cold = compute_features(dataset, build_features(cfg), cache, "bench")
    cold_seconds = perf_counter() - start
    cold_peak = peak_mb()
    start = perf_counter()
    warm = compute_features(dataset, build_features(cfg), cache, "bench")
    cached_seconds = perf_counter() - start
    if not (warm.cache_hit and warm.frame.equals(cold.frame)):
        raise RuntimeError(f"{feature_set}: the cached features differ from the computed ones")
    return {"feature_set": feature_set, "customers": len(cold.frame), "columns": cold.frame.shape[1],
            "cold_seconds": cold_seconds, "cached_seconds": cached_seconds,
            "peak_rss_mb": round(cold_peak), "added_mb": round(cold_peak - before)}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", default=None, help="the Online Retail file (default: the real one)")
    parser.add_argument("--sets", default="rfm,behaviour,tfidf,word2vec")
    parser.add_argument("--quick", action="store_true",
                        help="rfm, behaviour, tfidf on a small synthetic file")
    parser.add_argument("--json", help="also write the rows here")
    parser.add_argument("--one", help=argparse.SUPPRESS)  # internal: run one set in this process
    parser.add_argument("--workdir", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.one:
        print(json.dumps(measure_one(args.data, args.one, Path(args.workdir))))
        return
    workdir = Path(tempfile.mkdtemp(prefix="segmentlab-features-"))
    data, sets = args.data or harness.real_file(), args.sets
    if args.quick:
        sets = "rfm,behaviour,tfidf"
        if args.data is None:
            data = str(workdir / "lines.csv.gz")
            harness.write_lines(20_000, Path(data))
    rows = []
    for feature_set in sets.split(","):
        done = harness.fresh_process([sys.executable, __file__, "--data", data, "--one", feature_set,
                                      "--workdir", str(workdir)])
        rows.append(json.loads(done.stdout.strip().splitlines()[-1]))
    print(harness.table(rows, COLUMNS))
    print(f"data: {data}; each set in a fresh process, data cache warm after the first; "
          f"load {harness.load_average():.1f}")
    harness.write_json(args.json, rows)


if __name__ == "__main__":
    main()
