"""The whole ``run.py`` command against a plain pandas/scikit-learn script, as a user meets them.

    python benchmarks/baseline.py [--data PATH] [--pairs 5] [--quick] [--json OUT]

segmentlab side, warm (the first run fills the caches of cleaning and features, then every timed
run reads them), from a fresh temporary working directory:

    python run.py data=online_retail data.path=FILE features=[rfm] clusterer.n_clusters=4 \\
        prediction.enabled=false recommender=none tracking=none

plain side: `PLAIN` below, what the usual tutorials write (read the CSV, drop rows without a
customer, cancellations, non-positive quantities and prices and duplicates; RFM; log and
standardise; K-means with scikit-learn's defaults; a sampled silhouette).

Each run is a fresh process timed from start to exit (wall seconds, peak RSS from ``os.wait4``).
Runs come in pairs whose order alternates (segmentlab first, then plain first, ...); the ratio
of a pair is segmentlab / plain, and the table gives the median ratio with its range. The pairs
run with no competing process and again with one (``python -c "while True: pass"``, started
before the first pair of that condition and killed after the last). Both sides run without
``OMP_NUM_THREADS`` and the like, as in a user's shell: each keeps its own thread choices
(segmentlab: ``threads: 1``; the plain script: scikit-learn's defaults).
``--quick`` writes a small synthetic file and runs one pair per condition.
"""

from __future__ import annotations

import argparse
import re
import statistics
import sys
import tempfile
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
import harness  # noqa: E402

PLAIN = '''"""RFM segmentation with K-means, as the usual tutorials write it."""
import sys

import numpy as np
import pandas as pd
from sklearn.cluster import KMeans
from sklearn.metrics import silhouette_score
from sklearn.preprocessing import StandardScaler

df = pd.read_csv(sys.argv[1], dtype={"InvoiceNo": str, "StockCode": str}, parse_dates=["InvoiceDate"])
df = df.dropna(subset=["CustomerID"])
df = df[~df["InvoiceNo"].str.startswith("C")]  # cancellations
df = df[(df["Quantity"] > 0) & (df["UnitPrice"] > 0)]
df = df.drop_duplicates()
df["TotalPrice"] = df["Quantity"] * df["UnitPrice"]

snapshot = df["InvoiceDate"].max() + pd.Timedelta(days=1)
rfm = df.groupby("CustomerID").agg(
    Recency=("InvoiceDate", lambda d: (snapshot - d.max()).days),
    Frequency=("InvoiceNo", "nunique"),
    Monetary=("TotalPrice", "sum"),
)
X = StandardScaler().fit_transform(np.log1p(rfm))
kmeans = KMeans(n_clusters=4, random_state=42).fit(X)
score = silhouette_score(X, kmeans.labels_, sample_size=10000, random_state=42)
print(f"customers {len(rfm)}  silhouette {score:.3f}")
print(rfm.groupby(kmeans.labels_).mean().round(1))
'''
#: The command after ``python run.py``, as in issue 16.
COMMAND = ["data=online_retail", "data.path={data}", "features=[rfm]", "clusterer.n_clusters=4",
           "prediction.enabled=false", "recommender=none", "tracking=none"]
COLUMNS = {"competing": "competing processes", "pairs": "pairs", "segmentlab_s": "segmentlab s",
           "plain_s": "plain s", "ratio": "ratio (median [range])", "segmentlab_mb": "segmentlab MB",
           "plain_mb": "plain MB", "load": "load"}


def commands(data: str, workdir: Path) -> dict[str, list[str]]:
    """The two sides' command lines (the plain script is written into ``workdir``)."""
    script = workdir / "plain_rfm_kmeans.py"
    script.write_text(PLAIN)
    return {"segmentlab": [sys.executable, str(harness.ROOT / "run.py"),
                           *(a.format(data=data) for a in COMMAND)],
            "plain": [sys.executable, str(script), data]}


def run_once(side: str, command: list[str], workdir: Path) -> dict:
    """One fresh process; a segmentlab run must have read both caches."""
    done = harness.fresh_process(command, cwd=workdir, env=harness.environment(user_threads=True))
    if side == "segmentlab" and done.stdout.count("(cached)") < 2:
        raise RuntimeError("the segmentlab run was not warm: cleaning or features were recomputed")
    return {"side": side, "seconds": done.seconds, "peak_mb": done.peak_mb, "stdout": done.stdout}


def pairs_under(n_competing: int, n_pairs: int, sides: dict[str, list[str]], workdir: Path) -> dict:
    """``n_pairs`` alternating pairs while ``n_competing`` CPU-bound processes run."""
    runs = []
    with harness.competing(n_competing):
        load = harness.load_average()
        for i in range(n_pairs):
            order = ["segmentlab", "plain"] if i % 2 == 0 else ["plain", "segmentlab"]
            pair = {side: run_once(side, sides[side], workdir) for side in order}
            runs.append(pair)
        load = max(load, harness.load_average())
    ratios = [p["segmentlab"]["seconds"] / p["plain"]["seconds"] for p in runs]

    def median(side, key):
        return statistics.median(p[side][key] for p in runs)

    return {"competing": n_competing, "pairs": n_pairs, "segmentlab_s": median("segmentlab", "seconds"),
            "plain_s": median("plain", "seconds"), "ratio": harness.median_range(ratios),
            "ratio_median": statistics.median(ratios), "ratios": ratios,
            "segmentlab_mb": median("segmentlab", "peak_mb"), "plain_mb": median("plain", "peak_mb"),
            "load": load, "last": {side: runs[-1][side]["stdout"] for side in sides}}


def measure(data: str | None, n_pairs: int, quick: bool) -> list[dict]:
    """Warm both sides once, then time the pairs with no and with one competing process."""
    workdir = Path(tempfile.mkdtemp(prefix="segmentlab-baseline-"))
    if data is None:
        data = str(workdir / "lines.csv.gz")
        harness.write_lines(20_000 if quick else 200_000, Path(data))
    sides = commands(data, workdir)
    for command in sides.values():  # fills the caches, compiles .pyc, warms the page cache
        harness.fresh_process(command, cwd=workdir, env=harness.environment(user_threads=True))
    return [pairs_under(n, n_pairs, sides, workdir) for n in harness.competitor_counts()]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", default=None, help="the Online Retail file (default: the real one)")
    parser.add_argument("--pairs", type=int, default=5, help="paired runs per condition")
    parser.add_argument("--quick", action="store_true", help="small synthetic file, one pair per condition")
    parser.add_argument("--json", help="also write the results here")
    args = parser.parse_args()
    data = args.data or (None if args.quick else harness.real_file())
    rows = measure(data, 1 if args.quick else args.pairs, args.quick)
    print(harness.table(rows, COLUMNS))
    print("targets (issue 16): ratio <= 1.0 with no competing process, <= 1.2 with one "
          "(python -c 'while True: pass', killed after the pairs)")
    last = rows[0]["last"]
    seconds = re.search(r"^seconds:.*$", last["segmentlab"], re.M)
    print(f"segmentlab stages, last run: {seconds.group(0) if seconds else '(no seconds line)'}")
    plain = re.search(r"customers (\d+)\s+silhouette (\S+)", last["plain"])
    ours = re.search(r"customers\s+([\d,]+)", last["segmentlab"])
    print(f"customers: segmentlab {ours.group(1) if ours else '?'} (full cleaning), "
          f"plain {plain.group(1) if plain else '?'} (tutorial cleaning); data: {data or 'synthetic'}")
    harness.write_json(args.json, [{k: v for k, v in r.items() if k != "last"} for r in rows])


if __name__ == "__main__":
    main()
