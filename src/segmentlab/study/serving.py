"""Commands that apply a registered model to new data: ``segmentlab predict``, ``dynamics``
and ``recommend``."""

from __future__ import annotations

from pathlib import Path

import pandas as pd

from segmentlab.data.cleaning import TransactionCleaner
from segmentlab.data.loading import OnlineRetailFile, load_dataset
from segmentlab.schema import CUSTOMER_ID, DataError


def predict(model_uri: str, transactions: str, out: str, tracking_uri: str) -> int:
    """Clean a transactions file the way the model's training data was and write its segments.

    Every customer of the file gets a row: those whose lines cleaning removed entirely (only
    postage, only an outlier line, only returns…) have an empty segment and the ``reason``.
    """
    from segmentlab.study.pyfunc import load_model

    model = load_model(model_uri, tracking_uri)
    cleaner = TransactionCleaner(**model.cleaning)
    source = OnlineRetailFile(transactions)
    raw = source.read()
    removed = cleaner.removed_customers(raw)
    try:
        dataset = load_dataset(source, cleaner, cache_dir=None, raw=raw)
        segments = model.predict(dataset.transactions).assign(reason="")
    except DataError:  # cleaning kept no purchase at all: every customer is reported below
        if removed.empty:
            raise
        segments = pd.DataFrame(columns=[*model.predict_columns, "reason"])
    segments = pd.concat([segments, removed_rows(removed, segments.columns)], ignore_index=True)
    segments = segments.sort_values(CUSTOMER_ID, kind="stable").reset_index(drop=True)
    # Removed customers have no segment: keep the column whole numbers, not floats.
    segments["segment"] = pd.to_numeric(segments["segment"]).astype("Int64")
    Path(out).parent.mkdir(parents=True, exist_ok=True)
    segments.to_csv(out, index=False)
    print(f"{len(segments):,} customers → {out} ({len(removed):,} removed by cleaning)")
    if len(removed):
        print("removed by cleaning, by reason: " + ", ".join(
            f"{reason} {n:,}" for reason, n in removed["reason"].value_counts().items()))
    print(assignment_summary(segments[segments["reason"] == ""]))
    return 0


def removed_rows(removed: pd.DataFrame, columns) -> pd.DataFrame:
    """Output rows for customers cleaning removed: no segment, the reason why."""
    rows = pd.DataFrame({CUSTOMER_ID: removed[CUSTOMER_ID].to_numpy(), "assigned_by": "removed",
                         "reason": removed["reason"].to_numpy()})
    return rows.reindex(columns=columns)


def dynamics(model_uri: str, transactions: str, out: str, tracking_uri: str) -> int:
    """Follow the model's segments through a transactions file and write its early warnings."""
    from segmentlab.study.pyfunc import load_model
    from segmentlab.study.tracking import TrackingError

    model = load_model(model_uri, tracking_uri)
    if getattr(model, "dynamics", None) is None:
        raise TrackingError(f"model {model_uri} carries no segment tracker: register it again "
                            "with this version (python run.py experiment=final)")
    cleaner = TransactionCleaner(**model.cleaning)
    dataset = load_dataset(OnlineRetailFile(transactions), cleaner, cache_dir=None)
    result = model.dynamics.track(dataset.transactions)
    Path(out).parent.mkdir(parents=True, exist_ok=True)
    result.warnings.to_csv(out, index=False)
    m = result.metrics
    print(f"{len(result.snapshots.dates)} snapshots, {len(result.warnings):,} warnings → {out} "
          f"(value at stake {result.warnings['value_at_stake'].sum():,.0f})")
    print(f"stay {m['dynamics/stay_rate']:.0%}, up {m['dynamics/upgrade_rate']:.0%}, "
          f"down {m['dynamics/downgrade_rate']:.0%}, churn {m['dynamics/churn_rate']:.0%} per period")
    return 0


def recommend(model_uri: str, transactions: str, out: str, tracking_uri: str, k: int = 10) -> int:
    """Write ``k`` product recommendations for every customer of a transactions file.

    Customers the model was trained on are served from their own history (products they already
    bought are left out); customers new to it from the segment the model assigns them.
    """
    from segmentlab.recommend.history import PurchaseHistory
    from segmentlab.schema import DESCRIPTION, STOCK_CODE
    from segmentlab.study.pyfunc import load_model
    from segmentlab.study.tracking import TrackingError

    model = load_model(model_uri, tracking_uri)
    if getattr(model, "recommender", None) is None:
        raise TrackingError(f"model {model_uri} carries no recommender: register it again with "
                            "a recommender (python run.py experiment=final)")
    cleaner = TransactionCleaner(**model.cleaning)
    dataset = load_dataset(OnlineRetailFile(transactions), cleaner, cache_dir=None)
    segments = model.predict(dataset.transactions).set_index("customer_id")["segment"]
    recs = model.recommender.recommend(segments.index.to_numpy(), k, segments=segments)
    catalogue = model.recommender.history_.descriptions
    current = PurchaseHistory.from_transactions(dataset.transactions).descriptions
    recs.insert(3, DESCRIPTION, recs[STOCK_CODE].map(catalogue).fillna(recs[STOCK_CODE].map(current)))
    Path(out).parent.mkdir(parents=True, exist_ok=True)
    recs.to_csv(out, index=False)
    served = recs.drop_duplicates("customer_id")["reason"].str.startswith("popular").value_counts()
    print(f"{recs['customer_id'].nunique():,} customers × up to {k} products → {out} "
          f"({served.get(True, 0):,} served from popularity first)")
    return 0


def assignment_summary(segments: pd.DataFrame) -> str:
    """How the customers were placed: known, assigned (by confidence), or too new, and where."""
    counts = segments["assigned_by"].value_counts()
    classified = segments[segments["assigned_by"] == "classifier"]
    young = segments[segments["assigned_by"] == "too little history"]
    lines = [f"  {counts.get('training', 0):,} known from training (their clustering segment)",
             f"  {len(classified):,} assigned by the classifier: "
             f"{(classified['confidence'] >= 0.5).sum():,} with confidence >= 0.5, "
             f"{(classified['confidence'] < 0.5).sum():,} below",
             f"  {len(young):,} new — not yet segmentable (history under the model's minimum; "
             f"median {young['history_days'].median():.0f} days of history; their closest "
             f"segment has median confidence {young['confidence'].median():.2f})" if len(young) else
             "  0 new — not yet segmentable", "", "segments:",
             segments["segment_name"].value_counts().to_string()]
    return "\n".join(lines)
