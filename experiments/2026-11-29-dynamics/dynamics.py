"""Segments through time on the real file: how fast, what flows, do warnings foretell lapses?

    python experiments/2026-11-29-dynamics/dynamics.py --data PATH [--every month] [--out DIR]

Fits the default run in miniature (rfm + behaviour features, K-means with 6 clusters on the
standardised features, the settings of ``configs/``), then follows its segments with
``segmentlab.dynamics`` at monthly snapshots. Prints, as Markdown: time per snapshot, the
segments in value order, the rates, the last-period and mid-2011 -> end matrices, where the
"loyal" customers of mid-2011 ended, and the warning check (AUC of the warning, its score and
recency alone, with 95 % customer-bootstrap intervals), plus one out-of-time test of whether the
warning adds anything to recency. Writes the report section (HTML), the warning list (CSV) and
the figures into ``--out`` (git-ignored ``outputs/`` by default): they hold customer ids, so
they never go into git.
"""

from __future__ import annotations

import argparse
import json
import resource
from pathlib import Path
from time import perf_counter, process_time

import numpy as np
import pandas as pd
from hydra import compose, initialize_config_dir
from sklearn.linear_model import LogisticRegression
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler

from segmentlab.data.cleaning import TransactionCleaner
from segmentlab.data.loading import OnlineRetailFile, load_dataset
from segmentlab.dynamics.early_warning import auc
from segmentlab.dynamics.migration import flow_table, migration_matrix
from segmentlab.dynamics.snapshots import take_snapshots
from segmentlab.dynamics.tracker import DynamicsSettings, SegmentTracker
from segmentlab.features.matrix import compute_features
from segmentlab.reports.dynamics import dynamics_section
from segmentlab.reports.html import html_page
from segmentlab.segmentation.segmenting import segment_customers
from segmentlab.study.experiment import assemble

ROOT = Path(__file__).resolve().parents[2]


def fit_run(dataset, seed: int = 42):
    """The default run: fitted union, fitted segmenter, labels and named profile (K-means, 6)."""
    overrides = [f"seed={seed}", "features=[rfm,behaviour]", "clusterer=kmeans", "tracking=none"]
    with initialize_config_dir(config_dir=str(ROOT / "configs"), version_base="1.3"):
        experiment = assemble(compose("config", overrides=overrides))
    features = compute_features(dataset, experiment.features())
    segmentation = segment_customers(features.frame, experiment.segmenter(), dataset,
                                     experiment.evaluation)
    clustering = segmentation.clustering
    return features.union, clustering.segmenter, clustering.labels, segmentation.profile


def matrix_text(flows: pd.DataFrame, ranks: dict, names: dict) -> str:
    """Counts with row shares in brackets, as a Markdown table."""
    counts = migration_matrix(flows, ranks, "customers")
    shares = migration_matrix(flows, ranks, "share")
    header = "| from \\ to | " + " | ".join(names.get(c, c) for c in counts.columns) + " |"
    lines = [header, "|---" * (len(counts.columns) + 1) + "|"]
    for state in counts.index:
        cells = [f"{counts.loc[state, c]:,} ({shares.loc[state, c]:.0%})" for c in counts.columns]
        lines.append(f"| {names.get(state, state)} | " + " | ".join(cells) + " |")
    return "\n".join(lines)


def markdown(frame: pd.DataFrame, digits: int = 3) -> str:
    """A frame as a Markdown table (pandas' own needs tabulate, which is not installed)."""
    def cell(v) -> str:
        if isinstance(v, float | np.floating):
            return f"{v:,.{digits}f}"
        return str(v.date()) if isinstance(v, pd.Timestamp) else str(v)
    lines = ["| " + " | ".join(map(str, frame.columns)) + " |", "|---" * len(frame.columns) + "|"]
    lines += ["| " + " | ".join(cell(v) for v in row) + " |" for row in frame.itertuples(index=False)]
    return "\n".join(lines)


def adds_to_recency(outcomes: pd.DataFrame) -> dict[str, float]:
    """Out of time: logistic regression on recency alone vs recency + warning + score, trained on
    every evaluated snapshot but the last and scored on the last (customers not yet churned)."""
    active = outcomes[~outcomes["churned_now"]]
    last = active["date"].max()
    train, test = active[active["date"] < last], active[active["date"] == last]
    y = test["lapsed"].to_numpy(bool)
    out, scores = {"test_rows": float(len(test)), "test_lapse_rate": float(y.mean())}, {}
    for name, columns in {"recency": ["recency_days"],
                          "recency+warning": ["recency_days", "warning", "score"]}.items():
        model = make_pipeline(StandardScaler(), LogisticRegression(max_iter=1000))
        model.fit(train[columns].astype(float), train["lapsed"])
        scores[name] = model.predict_proba(test[columns].astype(float))[:, 1]
        out[f"auc_{name}"] = auc(scores[name], y)
    # One row per customer at the last date, so resampling rows resamples customers.
    rng, gains = np.random.default_rng(0), []
    for _ in range(1000):
        rows = rng.integers(0, len(y), len(y))
        gains.append(auc(scores["recency+warning"][rows], y[rows]) - auc(scores["recency"][rows], y[rows]))
    out["gain"] = out["auc_recency+warning"] - out["auc_recency"]
    out["gain_ci_low"], out["gain_ci_high"] = (float(v) for v in np.percentile(gains, [2.5, 97.5]))
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", default=str(ROOT.parent / "shared/data/online_retail.csv.gz"))
    parser.add_argument("--cache-dir", default=str(ROOT / "outputs/cache"))
    parser.add_argument("--every", default="month")
    parser.add_argument("--out", default=str(ROOT / "outputs/dynamics"))
    parser.add_argument("--json", default=None, help="also write the metrics here (JSON)")
    args = parser.parse_args()
    start = perf_counter()
    dataset = load_dataset(OnlineRetailFile(args.data), TransactionCleaner(), cache_dir=args.cache_dir)
    loaded = perf_counter()
    union, segmenter, labels, profile = fit_run(dataset)
    fitted = perf_counter()
    cpu = process_time()
    tracker = SegmentTracker(union, segmenter, DynamicsSettings(every=args.every))
    tracker.fit(dataset.transactions, labels, profile)
    result = tracker.track(dataset.transactions)
    tracked, cpu = perf_counter(), process_time() - cpu
    m, names, ranks, snaps = result.metrics, result.names, result.ranks, result.snapshots
    # CPU time is what the snapshots cost on a machine shared with other work (wall time grows with it).
    cpu_snap = process_time()
    take_snapshots(dataset.transactions, union, tracker.labeller_, snaps.dates, snaps.step,
                   tracker.settings.churn_days)
    cpu_snap = (process_time() - cpu_snap) / len(snaps.dates)

    print(f"## Timing\n\nload {loaded - start:.1f} s (cache hit: {dataset.cache_hit}); features + "
          f"K-means {fitted - loaded:.1f} s; tracker fit + track {tracked - fitted:.1f} s "
          f"({cpu:.1f} s CPU) for "
          f"{len(snaps.dates)} snapshots ({snaps.dates[0].date()} .. {snaps.dates[-1].date()}).\n"
          f"seconds per snapshot: median {snaps.seconds.median():.2f}, max {snaps.seconds.max():.2f}, "
          f"total {snaps.seconds.sum():.1f}; CPU per snapshot {cpu_snap:.2f}; "
          f"fit-window agreement {m['dynamics/fit_window_agreement']:.3f}; "
          f"peak RSS {resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024:,.0f} MiB")
    values = result.values.assign(name=[names[str(k)] for k in result.values.index])
    print("\n## Segments in value order\n")
    print(markdown(values.sort_values("value_rank", ascending=False).reset_index(), digits=0))
    print("\n## Rates (pooled over consecutive monthly pairs)\n")
    print("\n".join(f"- {k}: {v:.3f}" for k, v in m.items()
                    if k.split("/")[1].startswith(("stay", "upgrade", "downgrade", "churn"))))
    dates = snaps.dates
    for a, b in [(dates[-2], dates[-1]), (dates[3], dates[-1])]:
        print(f"\n## Matrix {a.date()} -> {b.date()}\n")
        print(matrix_text(flow_table(snaps, dataset.transactions, a, b), ranks, names))
    a, b = dates[-3], dates[-2]
    revenue = migration_matrix(flow_table(snaps, dataset.transactions, a, b), ranks, "revenue_next")
    print(f"\n## Revenue in [{b.date()}, {dates[-1].date()}) carried by the flows {a.date()} -> {b.date()} "
          f"(£, total {revenue.to_numpy().sum():,.0f})\n")
    print(markdown(revenue.rename(index=names, columns=names).reset_index(), digits=0))
    loyal = [s for s in ranks if "loyal" in names.get(s, "")]
    mid = dates[3]
    paths = snaps.paths()
    for state in loyal:
        start_set = paths.index[paths[mid] == state]
        end = paths.loc[start_set, dates[-1]].map(lambda s: names.get(s, s)).value_counts()
        print(f"\n{names[state]} at {mid.date()}: {len(start_set):,} customers; at {dates[-1].date()}: "
              + ", ".join(f"{k} {v:,} ({v / len(start_set):.0%})" for k, v in end.items()))
    print("\n## Warnings\n")
    print(f"last period: {len(result.warnings):,} warnings, value at stake "
          f"£{result.warnings['value_at_stake'].sum():,.0f}; moves: "
          + ", ".join(f"{names.get(f, f)} -> {names.get(t, t)} {n}" for (f, t), n in
                      result.warnings.groupby(["from", "to"]).size().sort_values(ascending=False).items()))
    print("\n" + "\n".join(f"- {k}: {v:.3f}" for k, v in m.items()
                           if "auc" in k or "lapse" in k or "evaluated" in k))
    print("\n" + markdown(result.per_date))
    print("\nadds to recency (out of time, last evaluated snapshot, not-yet-churned customers):",
          {k: round(v, 3) for k, v in adds_to_recency(result.outcomes).items()})

    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    (out / "dynamics.html").write_text(html_page("Segments over time", [dynamics_section(result)]),
                                       encoding="utf-8")
    result.warnings.to_csv(out / "warnings.csv", index=False)
    print(f"\nwrote {out / 'dynamics.html'} and {out / 'warnings.csv'}")
    if args.json:
        Path(args.json).write_text(json.dumps({k: float(v) for k, v in m.items()}, indent=1))


if __name__ == "__main__":
    main()
