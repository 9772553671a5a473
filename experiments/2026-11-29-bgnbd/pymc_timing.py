"""Time PyMC-Marketing's BetaGeoModel and GammaGammaModel on the real file's summary.

    pip install -e ".[clv]"      # in a separate venv: pytensor pins numba<=0.65.1
    python experiments/2026-11-29-bgnbd/pymc_timing.py --method map  [--data PATH]
    python experiments/2026-11-29-bgnbd/pymc_timing.py --method mcmc [--data PATH]

Same summary as ``bgnbd.py`` (``rfm_summary`` at 90 days before the data end), PyMC-Marketing's
default priors, and, for comparison, flat priors (then MAP = maximum likelihood). MCMC runs 2
chains of 500 tuning + 500 draws, a quarter of PyMC's default work, to stay within minutes on 2
cores. Prints one JSON line; the first run of a fresh install also compiles PyTensor code.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path
from time import perf_counter

import pandas as pd

from segmentlab.data.cleaning import TransactionCleaner
from segmentlab.data.loading import OnlineRetailFile, load_dataset
from segmentlab.lifetime.summary import data_end, rfm_summary

ROOT = Path(__file__).resolve().parents[2]
REAL_FILE = ROOT.parent / "shared" / "data" / "online_retail.csv.gz"


def fit(model, method: str, names: list[str]) -> dict:
    kwargs = {}
    if method == "mcmc":
        kwargs = {"draws": 500, "tune": 500, "chains": 2, "cores": 2, "random_seed": 1,
                  "progressbar": False}
    begin = perf_counter()
    model.fit(method=method, **kwargs)
    posterior = model.idata.posterior
    out = {"seconds": perf_counter() - begin,
           "estimate": {k: float(posterior[k].mean()) for k in names}}
    if method == "mcmc":
        out["posterior_sd"] = {k: float(posterior[k].std()) for k in names}
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", default=str(REAL_FILE))
    parser.add_argument("--method", choices=["map", "mcmc"], default="map")
    args = parser.parse_args()
    start = perf_counter()  # the optional package is imported (and timed) only for a real run
    from pymc_marketing.clv import BetaGeoModel, GammaGammaModel
    from pymc_marketing.prior import Prior

    import_seconds = perf_counter() - start
    flat_bgnbd = {name: Prior("HalfFlat") for name in ("r", "alpha", "a", "b")}
    transactions = load_dataset(OnlineRetailFile(args.data), TransactionCleaner(),
                                cache_dir=ROOT / "outputs" / "cache").transactions
    cutoff = data_end(transactions) - pd.Timedelta(days=90)
    summary = rfm_summary(transactions, cutoff).reset_index()
    repeat = summary[summary["frequency"] > 0]
    bg_columns = ["customer_id", "frequency", "recency", "T"]
    gg_columns = ["customer_id", "frequency", "monetary_value"]
    result = {"import_seconds": import_seconds, "method": args.method, "cutoff": str(cutoff.date()),
              "bgnbd_default_priors": fit(BetaGeoModel(data=summary[bg_columns]), args.method,
                                          ["r", "alpha", "a", "b"]),
              "gamma_gamma": fit(GammaGammaModel(data=repeat[gg_columns]), args.method,
                                 ["p", "q", "v"])}
    if args.method == "map":
        result["bgnbd_flat_priors"] = fit(BetaGeoModel(data=summary[bg_columns], model_config=flat_bgnbd),
                                          "map", ["r", "alpha", "a", "b"])
    print(json.dumps(result))


if __name__ == "__main__":
    main()
