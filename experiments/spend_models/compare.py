"""Which regressor should forecast a customer's spend in the next 90 days? Measured.

    python experiments/spend_models/compare.py [--data PATH] [--json OUT]

Each candidate goes through segmentlab's own out-of-time evaluation (``evaluate_repurchase``
with the project's default features, classifier, segmenter and cutoffs): it learns spend in the
horizon after the training cutoff and is scored at the evaluation cutoff, beside the naive
forecast "next 90 days = last 90 days". Three data sets: the real file, the embedded synthetic
default, and a small synthetic shop (150 customers, 6,000 lines, the size the tests use), where
a fragile model shows itself.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path
from time import perf_counter

import numpy as np
from hydra import compose, initialize_config_dir
from sklearn.base import clone
from sklearn.compose import TransformedTargetRegressor
from sklearn.ensemble import HistGradientBoostingRegressor, RandomForestRegressor
from sklearn.linear_model import PoissonRegressor, Ridge
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler

from segmentlab.data.loading import load_dataset
from segmentlab.prediction.evaluation import evaluate_repurchase
from segmentlab.study.experiment import Experiment, assemble

ROOT = Path(__file__).resolve().parents[2]
REAL_FILE = ROOT.parent / "shared" / "data" / "online_retail.csv.gz"


def poisson_glm(alpha: float):
    return make_pipeline(StandardScaler(), PoissonRegressor(alpha=alpha, solver="newton-cholesky"))


MODELS = {
    "hgb_poisson (default)": HistGradientBoostingRegressor(loss="poisson", max_iter=200, learning_rate=0.05,
                                                           max_depth=3, random_state=42),
    "poisson_glm alpha=1": poisson_glm(1.0),
    "poisson_glm alpha=0.001": poisson_glm(1e-3),
    "random_forest": RandomForestRegressor(300, min_samples_leaf=10, n_jobs=2, random_state=42),
    "ridge on log1p(spend)": TransformedTargetRegressor(make_pipeline(StandardScaler(), Ridge()),
                                                        func=np.log1p, inverse_func=np.expm1),
}


def spend_metrics(transactions, experiment: Experiment, model) -> dict[str, float]:
    """``predict/spend_*`` of one regressor under the project's default evaluation."""
    result = evaluate_repurchase(transactions, experiment.prediction_features, experiment.classifier(),
                                 horizon_days=experiment.prediction.horizon_days,
                                 segmenter_factory=experiment.segmenter,
                                 importance_repeats=0, spend_regressor=clone(model))
    return {k.removeprefix("predict/"): v for k, v in result.metrics.items() if "spend" in k}


def data_sets(real: str) -> dict[str, list[str]]:
    return {"real": ["data=online_retail", f"data.path={real}"], "synthetic": [],
            "synthetic_150": ["data.n_customers=150", "data.n_lines=6000"]}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", default=str(REAL_FILE))
    parser.add_argument("--json", help="also write the rows as JSON here")
    args = parser.parse_args()
    start = perf_counter()
    rows = []
    for data_name, overrides in data_sets(str(Path(args.data).resolve())).items():
        with initialize_config_dir(config_dir=str(ROOT / "configs"), version_base="1.3"):
            experiment = assemble(compose("config", overrides=[*overrides, "tracking=none"]))
        transactions = load_dataset(experiment.source, experiment.cleaner,
                                    cache_dir=ROOT / "outputs" / "cache").transactions
        for model_name, model in MODELS.items():
            m = spend_metrics(transactions, experiment, model)
            rows.append({"data": data_name, "model": model_name, **m})
            print(f"{data_name:<14} {model_name:<24} MAE {m['spend_mae']:>10,.0f} "
                  f"(naive {m['spend_last_period_mae']:,.0f})   Spearman {m['spend_spearman']:.3f} "
                  f"(naive {m['spend_last_period_spearman']:.3f})   total ratio "
                  f"{m['spend_total_ratio']:.2f} (naive {m['spend_last_period_total_ratio']:.2f})",
                  flush=True)
    print(f"{perf_counter() - start:.0f} s")
    if args.json:
        Path(args.json).write_text(json.dumps(rows, indent=2))


if __name__ == "__main__":
    main()
