"""What each stage of the default run costs on the real file, and what K-means restarts buy.

    python benchmarks/stages.py [--data PATH] [--runs 3] [--seeds 10] [--n-init 1,2,3,5,10,20]
                                [--quick] [--json OUT]

Stages: the default command, ``python run.py data=online_retail data.path=FILE`` (every default:
rfm + behaviour, K-means with 6 segments, prediction, recommendations, MLflow tracking and its
figures), from a fresh temporary working directory, so its stores and caches start empty. The
first run is cold (parses and cleans the file, computes the features); the next ``--runs`` are
warm. The table gives each stage's seconds from the run's own ``seconds:`` line (median of the
warm runs), and the whole command's wall seconds.

Restarts: K-means (``clusterer.n_init``) on the standardised features of two runs, the default
(rfm + behaviour, 6 segments) and the baseline command's (rfm, 4 segments), for every restart
count and ``--seeds`` seeds, one thread as in a run. Per restart count: median fit seconds, how
far the inertia stays above the best found by any fit (median and worst, %), the share of seeds
that reach that best (within 0.01 %), and how alike the labels of different seeds are (mean
pairwise adjusted Rand index): what more restarts buy. ``--quick``: small synthetic file, one
warm run with ``tracking=none prediction.enabled=false``, restarts 1 and 10 over 3 seeds.
"""

from __future__ import annotations

import argparse
import json
import re
import statistics
import sys
import tempfile
from itertools import combinations
from pathlib import Path
from time import perf_counter

sys.path.insert(0, str(Path(__file__).resolve().parent))
import harness  # noqa: E402

STAGES = ("load", "features", "segment", "prediction", "dynamics_stage", "recommend", "figures")
STAGE_COLUMNS = {"run": "run", **{s: s for s in STAGES}, "wall": "whole command s", "peak_mb": "peak MB"}
RESTART_COLUMNS = {"features": "features", "n_clusters": "segments", "n_init": "n_init",
                   "fit_s": "fit s (median)", "excess_median": "inertia above best % (median)",
                   "excess_max": "(worst)", "at_best": "seeds at best",
                   "ari_between_seeds": "ARI between seeds"}
#: What ``--quick`` adds to the default command to take seconds (no MLflow, so no figures).
QUICK_RUN = ["tracking=none", "prediction.enabled=false"]
#: The two feature spaces of the restart table: the default run's and the baseline command's.
SPACES = {"rfm+behaviour": (["features=[rfm,behaviour]"], 6), "rfm": (["features=[rfm]"], 4)}


def stage_seconds(stdout: str) -> dict[str, float]:
    """The stage seconds of a run's console summary (``seconds:   load 0.2   features 0.0 ...``)."""
    line = re.search(r"^seconds:\s+(.*)$", stdout, re.M)
    if line is None:
        raise RuntimeError("the run printed no 'seconds:' line")
    return {name: float(value) for name, value in re.findall(r"(\w+) ([\d.]+)", line.group(1))}


def stage_costs(data: str, n_runs: int, extra: list[str]) -> list[dict]:
    """The cold run, then ``n_runs`` warm runs of the default command, each a fresh process."""
    workdir = Path(tempfile.mkdtemp(prefix="segmentlab-stages-"))
    command = [sys.executable, str(harness.ROOT / "run.py"), "data=online_retail", f"data.path={data}",
               *extra]
    rows = []
    for i in range(n_runs + 1):
        done = harness.fresh_process(command, cwd=workdir, env=harness.environment(user_threads=True))
        rows.append({"run": "cold" if i == 0 else f"warm {i}", **stage_seconds(done.stdout),
                     "wall": done.seconds, "peak_mb": done.peak_mb})
    warm = rows[1:]
    median = {"run": f"warm, median of {len(warm)}",
              **{k: statistics.median(r.get(k, 0.0) for r in warm) for k in [*STAGES, "wall", "peak_mb"]
                 if any(k in r for r in warm)}}
    return [rows[0], median]


def restarts(data: str, n_init: list[int], n_seeds: int, workdir: Path) -> list[dict]:
    """Run in a child process: K-means fits per restart count and seed on both feature spaces."""
    from hydra import compose, initialize_config_dir
    from sklearn.cluster import KMeans
    from sklearn.metrics import adjusted_rand_score
    from threadpoolctl import threadpool_limits

    from segmentlab.data.loading import load_dataset
    from segmentlab.features.matrix import compute_features
    from segmentlab.study.experiment import assemble

    rows = []
    for name, (overrides, n_clusters) in SPACES.items():
        with initialize_config_dir(config_dir=str(harness.ROOT / "configs"), version_base="1.3"):
            cfg = compose("config", overrides=["data=online_retail", f"data.path={data}", "tracking=none",
                                               f"cache_dir={workdir / 'cache'}", *overrides])
        experiment = assemble(cfg)
        with threadpool_limits(limits=experiment.threads):
            dataset = load_dataset(experiment.source, experiment.cleaner, cache_dir=cfg.cache_dir)
            features = compute_features(dataset, experiment.features())
            space = experiment.segmenter()[:-1].fit_transform(features.frame.to_numpy())
            fits = {}
            for n in n_init:
                for seed in range(n_seeds):
                    start = perf_counter()
                    model = KMeans(n_clusters=n_clusters, n_init=n, random_state=seed).fit(space)
                    fits[n, seed] = (perf_counter() - start, model.inertia_, model.labels_)
        best = min(inertia for _, inertia, _ in fits.values())
        for n in n_init:
            runs = [fits[n, seed] for seed in range(n_seeds)]
            excess = [100 * (inertia / best - 1) for _, inertia, _ in runs]
            pairs = [adjusted_rand_score(a[2], b[2]) for a, b in combinations(runs, 2)]
            rows.append({"features": name, "n_clusters": n_clusters, "n_init": n, "customers": len(space),
                         "fit_s": statistics.median(s for s, _, _ in runs),
                         "excess_median": statistics.median(excess), "excess_max": max(excess),
                         "at_best": f"{sum(e < 0.01 for e in excess)}/{n_seeds}",
                         "ari_between_seeds": statistics.mean(pairs) if pairs else float("nan")})
    return rows


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", default=None, help="the Online Retail file (default: the real one)")
    parser.add_argument("--runs", type=int, default=3, help="warm runs of the default command")
    parser.add_argument("--seeds", type=int, default=10, help="K-means seeds per restart count")
    parser.add_argument("--n-init", default="1,2,3,5,10,20", help="restart counts to compare")
    parser.add_argument("--quick", action="store_true", help="small synthetic file, one warm run")
    parser.add_argument("--json", help="also write the results here")
    parser.add_argument("--child", action="store_true", help=argparse.SUPPRESS)
    parser.add_argument("--workdir", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        n_init = [int(n) for n in args.n_init.split(",")]
        print(json.dumps(restarts(args.data, n_init, args.seeds, Path(args.workdir))))
        return
    workdir = Path(tempfile.mkdtemp(prefix="segmentlab-restarts-"))
    data = args.data or harness.real_file()
    if args.quick:
        args.runs, args.seeds, args.n_init = 1, 3, "1,10"
        if args.data is None:
            data = str(workdir / "lines.csv.gz")
            harness.write_lines(20_000, Path(data))
    stages = stage_costs(data, args.runs, QUICK_RUN if args.quick else [])
    done = harness.fresh_process([sys.executable, __file__, "--child", "--data", data, "--seeds",
                                  str(args.seeds), "--n-init", args.n_init, "--workdir", str(workdir)])
    restart_rows = json.loads(done.stdout.strip().splitlines()[-1])
    print(harness.table(stages, STAGE_COLUMNS))
    print(f"the default command{' ' + ' '.join(QUICK_RUN) if args.quick else ''} on {data}: seconds "
          f"per stage from its 'seconds:' line; load {harness.load_average():.1f}")
    print()
    print(harness.table(restart_rows, RESTART_COLUMNS))
    print(f"K-means on {restart_rows[0]['customers']:,} customers, one thread, seeds 0..{args.seeds - 1}; "
          "best = lowest inertia of any fit in the table's feature space")
    harness.write_json(args.json, {"stages": stages, "restarts": restart_rows})


if __name__ == "__main__":
    main()
