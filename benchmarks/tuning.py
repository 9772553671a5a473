"""Tuning overhead: a 40-trial K-means study on RFM features of the real file.

    python benchmarks/tuning.py [--data PATH] [--trials 40]

Overhead is the share of the study's wall time spent outside the estimators' own fitting and
scoring (scaling, K-means, the cluster metrics and stability refits): Optuna's ask/tell and
storage, MLflow child runs, config copies. Both stores live in a temporary folder.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
from pathlib import Path
from time import perf_counter

from hydra import compose, initialize_config_dir

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from segmentlab.config import flatten  # noqa: E402
from segmentlab.data.loading import load_dataset  # noqa: E402
from segmentlab.features.matrix import compute_features  # noqa: E402
from segmentlab.study import tuning  # noqa: E402
from segmentlab.study.experiment import assemble  # noqa: E402
from segmentlab.study.trials import TrialEvaluator  # noqa: E402


def measure(data: str, n_trials: int) -> dict:
    """Run one fresh study and return wall time, estimator time, overhead share, trials/minute."""
    tmp = Path(tempfile.mkdtemp(prefix="segmentlab-bench-"))
    overrides = ["data=online_retail", f"data.path={data}", "features=[rfm]", "clusterer=kmeans",
                 "tuning=optuna", f"tuning.n_trials={n_trials}", "tuning.show_progress=false",
                 f"tuning.storage=sqlite:///{tmp}/optuna.db", f"tracking.tracking_uri=sqlite:///{tmp}/mlflow.db",
                 f"tracking.artifact_location={tmp}/artifacts"]
    with initialize_config_dir(config_dir=str(ROOT / "configs"), version_base="1.3"):
        experiment = assemble(compose("config", overrides=overrides))
    dataset = load_dataset(experiment.source, experiment.cleaner, cache_dir=experiment.config.cache_dir)
    features = compute_features(dataset, experiment.features())
    space = tuning.search_space(experiment.config, {"clusterer": "kmeans"})
    score = TrialEvaluator(experiment, features, dataset)
    estimator_seconds = []

    def evaluate(trial):
        outcome = score(trial)
        estimator_seconds.append(outcome.metrics["time/estimator_seconds"])
        return outcome

    tracker, config = experiment.tracker, experiment.resolved_config()
    with tracker.run("benchmark", dict(flatten(config)), {}, config, overrides):
        study = tuning.open_study(experiment.config, space, dataset.data_hash, "benchmark")
        tracker.link_study(study)
        start = perf_counter()
        tuning.optimize(study, experiment, space, evaluate)
        wall = perf_counter() - start
    inside = sum(estimator_seconds)
    return {"trials": len(estimator_seconds), "customers": len(features.frame), "wall_seconds": wall,
            "estimator_seconds": inside, "overhead_share": 1 - inside / wall,
            "trials_per_minute": 60 * len(estimator_seconds) / wall}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    real_file = ROOT.parent / "shared" / "data" / "online_retail.csv.gz"
    parser.add_argument("--data", default=os.environ.get("SEGMENTLAB_DATA", str(real_file)))
    parser.add_argument("--trials", type=int, default=40)
    parser.add_argument("--json", help="also write the result here")
    args = parser.parse_args()
    result = measure(args.data, args.trials)
    for key, value in result.items():
        print(f"{key:<20} {value:,.3f}" if isinstance(value, float) else f"{key:<20} {value:,}")
    if args.json:
        Path(args.json).write_text(json.dumps(result, indent=2))


if __name__ == "__main__":
    main()
