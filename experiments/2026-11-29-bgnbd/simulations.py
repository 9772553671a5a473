"""Simulation checks behind the tests' tolerances and the minimum number of repeat buyers.

    python experiments/2026-11-29-bgnbd/simulations.py [--replicates 100] [--fits 60]

1. Coverage: 5,000 customers aged 90-365 days from known BG/NBD and Gamma-Gamma parameters,
   fitted ``--replicates`` times; share of fits whose +-2 SE interval holds the truth.
2. Small samples: for 15-480 customers, ``--fits`` fits each; how many warn or fail, and how far
   their 90-day expected purchases for 5,000 reference customers are from the predictions at
   the true parameters (mean absolute error relative to the mean).
"""

from __future__ import annotations

import argparse
import warnings

import numpy as np
import pandas as pd

from segmentlab.lifetime.bgnbd import PARAMS, BGNBDModel
from segmentlab.lifetime.gamma_gamma import GammaGammaModel
from segmentlab.lifetime.simulation import simulate_bgnbd, simulate_gamma_gamma

TRUTH = {"r": 0.7, "alpha": 60.0, "a": 0.8, "b": 2.5}
SPEND = {"p": 6.0, "q": 4.0, "v": 15.0}


def customers(n: int, seed: int, horizon: float = 0.0) -> pd.DataFrame:
    age = np.random.default_rng(seed).uniform(90, 365, n)
    return simulate_bgnbd(n, T=age, horizon=horizon, seed=seed, **TRUTH)


def coverage(replicates: int) -> pd.DataFrame:
    rows = []
    for seed in range(replicates):
        summary = customers(5000, seed)
        summary["monetary_value"] = simulate_gamma_gamma(summary["frequency"], seed=seed, **SPEND)
        for model, truth in ((BGNBDModel().fit(summary), TRUTH),
                             (GammaGammaModel().fit(summary), SPEND)):
            for name, value in truth.items():
                z = (model.params_[name] - value) / model.standard_errors_[name]
                rows.append({"parameter": name, "z": z})
    table = pd.DataFrame(rows).groupby("parameter", sort=False)["z"]
    return pd.DataFrame({"covered_2se": table.apply(lambda z: float((z.abs() < 2).mean())),
                         "mean_z": table.mean(), "max_abs_z": table.apply(lambda z: z.abs().max())})


def small_samples(fits: int) -> pd.DataFrame:
    reference = customers(5000, 999, horizon=90)
    args = (reference["frequency"], reference["recency"], reference["T"])
    oracle = BGNBDModel()
    oracle.params_ = TRUTH
    truth = oracle.expected_purchases(90, *args)
    rows = []
    for n in (15, 30, 60, 120, 480):
        for seed in range(fits):
            summary = customers(n, seed)
            row = {"customers": n, "repeat_buyers": int((summary["frequency"] > 0).sum()),
                   "warned_or_failed": False, "relative_error": np.nan}
            with warnings.catch_warnings(record=True) as caught:
                warnings.simplefilter("always")
                try:
                    model = BGNBDModel(min_repeat_customers=1).fit(summary)
                    predicted = model.expected_purchases(90, *args)
                    row["relative_error"] = float(np.abs(predicted - truth).mean() / truth.mean())
                except ValueError:
                    row["warned_or_failed"] = True
            row["warned_or_failed"] |= bool(caught)
            rows.append(row)
    table = pd.DataFrame(rows).groupby("customers")
    return pd.DataFrame({"median_repeat_buyers": table["repeat_buyers"].median(),
                         "warned_or_failed": table["warned_or_failed"].sum(),
                         "median_relative_error": table["relative_error"].median(),
                         "p90_relative_error": table["relative_error"].quantile(0.9)})


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--replicates", type=int, default=100)
    parser.add_argument("--fits", type=int, default=60)
    args = parser.parse_args()
    assert list(TRUTH) == PARAMS
    print(coverage(args.replicates).round(3).to_string(), flush=True)
    print(small_samples(args.fits).round(3).to_string())


if __name__ == "__main__":
    main()
