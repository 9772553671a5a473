"""Tuning speed: a 40-trial K-means study on RFM features of the real file.

    python benchmarks/tuning.py [--data PATH] [--trials 40] [--runs 3] [--n-jobs 1,2]
                                [--busy-only | --idle-only] [--quick] [--json OUT]

Every study runs in a fresh process, as ``run.py ... tuning=optuna`` runs it: threads limited by
the config's ``threads``, Optuna on SQLite and MLflow on SQLite (a parent run and one child run
per trial), both in a temporary folder, so every run starts a new study. The clock covers the
trials (`segmentlab.study.tuning.optimize`), not loading the cached data. Reported per condition
(no competing process, one ``python -c "while True: pass"``) and per ``evaluation.n_jobs`` (the
worker processes of the stability refits): trials per minute and the overhead, the share of the
trials' wall time outside the estimators' own fitting and scoring (``time/estimator_seconds``:
scaling, K-means, the cluster metrics and the stability refits), as medians over ``--runs``
with their range. The study's summary on the parent run after the last trial (best values,
trials table, Optuna's plots; `MlflowTracker.log_study`) is timed on its own (``summary s``) and
left out of ``overhead %``; ``with summary %`` counts it in. Trials per minute count it in.
``--quick`` runs one 4-trial study on a small synthetic file.

The K-means space (``configs/tuning/space/clusterer/kmeans.yaml``, n_clusters 3 to 10) has 8
settings and a study ends once every setting of a finite space is evaluated, so the benchmark
widens it to ``--trials`` settings (n_clusters 3 to trials + 2): a 40-trial study runs 40 trials.
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import tempfile
from pathlib import Path
from time import perf_counter

sys.path.insert(0, str(Path(__file__).resolve().parent))
import harness  # noqa: E402

COLUMNS = {"competing": "competing processes", "n_jobs": "evaluation.n_jobs", "runs": "runs",
           "trials": "trials", "trials_per_minute": "trials/min", "overhead": "overhead %",
           "with_summary": "with summary %", "summary_s": "summary s",
           "estimator_s": "estimator s/trial", "fit_s": "K-means fit s/trial", "load": "load"}


def study(data: str, n_trials: int, n_jobs: int, workdir: Path) -> dict:
    """Run one fresh study in this process; wall and estimator seconds of its trials."""
    from hydra import compose, initialize_config_dir
    from threadpoolctl import threadpool_limits

    from segmentlab.config import flatten
    from segmentlab.data.loading import load_dataset
    from segmentlab.features.matrix import compute_features
    from segmentlab.study import tuning
    from segmentlab.study.experiment import assemble
    from segmentlab.study.trials import TrialEvaluator

    stores = Path(tempfile.mkdtemp(prefix="study-", dir=workdir))
    overrides = ["data=online_retail", f"data.path={data}", "features=[rfm]", "clusterer=kmeans",
                 "tuning=optuna", f"tuning.n_trials={n_trials}", "tuning.show_progress=false",
                 f"tuning.space.clusterer.n_clusters.high={n_trials + 2}",  # n_trials settings
                 f"evaluation.n_jobs={n_jobs}", f"cache_dir={workdir / 'cache'}",
                 f"tuning.storage=sqlite:///{stores}/optuna.db",
                 f"tracking.tracking_uri=sqlite:///{stores}/mlflow.db",
                 f"tracking.artifact_location={stores}/artifacts"]
    with initialize_config_dir(config_dir=str(harness.ROOT / "configs"), version_base="1.3"):
        experiment = assemble(compose("config", overrides=overrides), {"clusterer": "kmeans"}, overrides)
    per_trial: list[dict] = []
    with threadpool_limits(limits=experiment.threads):  # as segmentlab.study.runner.run does
        dataset = load_dataset(experiment.source, experiment.cleaner, cache_dir=experiment.config.cache_dir)
        features = compute_features(dataset, experiment.features())
        space = tuning.search_space(experiment.config, experiment.choices)
        score = TrialEvaluator(experiment, features, dataset)

        def evaluate(trial):
            outcome = score(trial)
            per_trial.append({k: outcome.metrics.get(f"time/{k}_seconds", 0.0)
                              for k in ("estimator", "cluster_fit")})
            return outcome

        tracker, config = experiment.tracker, experiment.resolved_config()
        summary = []
        log_study = tracker.log_study

        def timed_summary(*args, **kwargs):
            begin = perf_counter()
            log_study(*args, **kwargs)
            summary.append(perf_counter() - begin)

        tracker.log_study = timed_summary
        with tracker.run("benchmark", dict(flatten(config)), {}, config, overrides):
            opened = tuning.open_study(experiment.config, space, dataset.data_hash, "benchmark")
            tracker.link_study(opened)
            start = perf_counter()
            tuning.optimize(opened, experiment, space, evaluate)
            whole = perf_counter() - start
    inside, wall = sum(t["estimator"] for t in per_trial), whole - sum(summary)
    return {"trials": len(per_trial), "customers": len(features.frame), "wall_seconds": wall,
            "estimator_seconds": inside, "fit_seconds": sum(t["cluster_fit"] for t in per_trial),
            "summary_seconds": sum(summary), "overhead_share": 1 - inside / wall,
            "overhead_with_summary": 1 - inside / whole, "trials_per_minute": 60 * len(per_trial) / whole}


def run_child(data: str, n_trials: int, n_jobs: int, workdir: Path) -> dict:
    command = [sys.executable, __file__, "--child", "--data", data, "--trials", str(n_trials),
               "--n-jobs", str(n_jobs), "--workdir", str(workdir)]
    return json.loads(harness.fresh_process(command).stdout.strip().splitlines()[-1])


def measure(data: str, n_trials: int, n_runs: int, n_jobs: list[int], busy_only: bool = False,
            idle_only: bool = False) -> list[dict]:
    """Median figures per (competing processes, n_jobs); n_jobs variants alternate within a run."""
    workdir = Path(tempfile.mkdtemp(prefix="segmentlab-tuning-"))
    run_child(data, 1, 1, workdir)  # fills the data cache, so every timed study reads it warm
    counts = [0] if idle_only else harness.competitor_counts(busy_only)
    rows = []
    for n_competing in counts:
        results: dict[int, list[dict]] = {j: [] for j in n_jobs}
        with harness.competing(n_competing):
            load = harness.load_average()
            for r in range(n_runs):
                for j in (n_jobs if r % 2 == 0 else n_jobs[::-1]):
                    results[j].append(run_child(data, n_trials, j, workdir))
            load = max(load, harness.load_average())
        for j, runs in results.items():
            trials = runs[0]["trials"]
            rows.append({"competing": n_competing, "n_jobs": j, "runs": n_runs, "trials": trials,
                         "trials_per_minute": harness.median_range([r["trials_per_minute"] for r in runs], 1),
                         "overhead": harness.median_range([100 * r["overhead_share"] for r in runs], 1),
                         "with_summary": harness.median_range([100 * r["overhead_with_summary"]
                                                               for r in runs], 1),
                         "summary_s": statistics.median(r["summary_seconds"] for r in runs),
                         "estimator_s": statistics.median(r["estimator_seconds"] / trials for r in runs),
                         "fit_s": statistics.median(r["fit_seconds"] / trials for r in runs),
                         "load": load, "studies": runs})
    return rows


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", default=None, help="the Online Retail file (default: the real one)")
    parser.add_argument("--trials", type=int, default=40)
    parser.add_argument("--runs", type=int, default=3, help="studies per condition and n_jobs")
    parser.add_argument("--n-jobs", default="1,2", help="evaluation.n_jobs values to compare")
    parser.add_argument("--busy-only", action="store_true", help="only with one competing process")
    parser.add_argument("--idle-only", action="store_true", help="only with no competing process")
    parser.add_argument("--quick", action="store_true", help="one 4-trial study on a small synthetic file")
    parser.add_argument("--json", help="also write the results here")
    parser.add_argument("--child", action="store_true", help=argparse.SUPPRESS)
    parser.add_argument("--workdir", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        print(json.dumps(study(args.data, args.trials, int(args.n_jobs), Path(args.workdir))))
        return
    data = args.data
    if args.quick and data is None:
        data = str(Path(tempfile.mkdtemp(prefix="segmentlab-tuning-data-")) / "lines.csv.gz")
        harness.write_lines(20_000, Path(data))
    n_jobs = [1] if args.quick else [int(j) for j in args.n_jobs.split(",")]
    rows = measure(data or harness.real_file(), 4 if args.quick else args.trials,
                   1 if args.quick else args.runs, n_jobs, args.busy_only,
                   idle_only=args.quick or args.idle_only)
    print(harness.table(rows, COLUMNS))
    print("targets (issue 16): >= 30 trials/min with one competing process; overhead < 10 %. "
          "Overhead = 1 - estimator seconds / wall seconds of the trials; medians [range]")
    harness.write_json(args.json, rows)


if __name__ == "__main__":
    main()
