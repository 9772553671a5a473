"""segmentlab against a plain pandas/scikit-learn script doing the same RFM → K-means work.

    python benchmarks/baseline.py [--data PATH] [--json OUT]

Both sides start from the raw file in a fresh process (no caches), read it, drop rows without a
customer, cancellations and non-positive prices, compute recency/frequency/monetary, standardise,
and fit K-means (6 clusters, 10 restarts, seed 42). segmentlab does its full cleaning with the
ledger. Wall time and peak RSS are measured per side; the ratio is segmentlab / plain.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import subprocess
import sys
from pathlib import Path
from time import perf_counter

ROOT = Path(__file__).resolve().parents[1]
REAL_FILE = ROOT.parent / "shared" / "data" / "online_retail.csv.gz"


def plain(path: str) -> int:
    """What a data scientist would write without segmentlab."""
    import numpy as np
    import pandas as pd
    from sklearn.cluster import KMeans
    from sklearn.preprocessing import StandardScaler

    df = pd.read_csv(path, dtype={"InvoiceNo": str, "StockCode": str}, parse_dates=["InvoiceDate"])
    df = df.dropna(subset=["CustomerID"])
    df = df[~df["InvoiceNo"].str.startswith("C") & (df["UnitPrice"] > 0) & (df["Quantity"] > 0)]
    df["amount"] = df["Quantity"] * df["UnitPrice"]
    snapshot = df["InvoiceDate"].max().normalize() + pd.Timedelta(days=1)
    rfm = df.groupby("CustomerID").agg(last=("InvoiceDate", "max"), frequency=("InvoiceNo", "nunique"),
                                        monetary=("amount", "sum"))
    X = np.column_stack([(snapshot - rfm["last"].dt.normalize()).dt.days, np.log1p(rfm["frequency"]),
                         np.log1p(rfm["monetary"])])
    labels = KMeans(n_clusters=6, n_init=10, random_state=42).fit_predict(StandardScaler().fit_transform(X))
    return len(labels)


def framework(path: str) -> int:
    """The same work through segmentlab's loader, cleaner, RFM set and segmenter."""
    from sklearn.cluster import KMeans
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler

    from segmentlab.data.cleaning import TransactionCleaner
    from segmentlab.data.loading import OnlineRetailFile, load_dataset
    from segmentlab.features.rfm import RFMFeatures

    dataset = load_dataset(OnlineRetailFile(path), TransactionCleaner(), cache_dir=None)
    features = RFMFeatures().fit_transform(dataset.transactions)
    segmenter = make_pipeline(StandardScaler(), KMeans(n_clusters=6, n_init=10, random_state=42))
    return len(segmenter.fit_predict(features.to_numpy()))


def run_side(side: str, path: str) -> dict:
    out = subprocess.run([sys.executable, __file__, "--data", path, "--side", side], capture_output=True,
                         text=True, check=True, cwd=ROOT)
    return json.loads(out.stdout.strip().splitlines()[-1])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", default=os.environ.get("SEGMENTLAB_DATA", str(REAL_FILE)))
    parser.add_argument("--json", help="also write the result here")
    parser.add_argument("--side", choices=["plain", "framework"], help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.side:
        start = perf_counter()
        customers = (plain if args.side == "plain" else framework)(args.data)
        print(json.dumps({"side": args.side, "customers": customers, "seconds": perf_counter() - start,
                          "peak_rss_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024}))
        return
    rows = {side: run_side(side, args.data) for side in ("plain", "framework")}
    result = {**{f"{side}_{k}": v for side, row in rows.items() for k, v in row.items() if k != "side"},
              "time_ratio": rows["framework"]["seconds"] / rows["plain"]["seconds"],
              "memory_ratio": rows["framework"]["peak_rss_mb"] / rows["plain"]["peak_rss_mb"]}
    for key, value in result.items():
        print(f"{key:<24} {value:,.2f}" if isinstance(value, float) else f"{key:<24} {value:,}")
    if args.json:
        Path(args.json).write_text(json.dumps(result, indent=2))


if __name__ == "__main__":
    main()
