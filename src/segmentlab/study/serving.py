"""Commands that apply a registered model to new data: ``segmentlab predict``."""

from __future__ import annotations

from pathlib import Path

import pandas as pd

from segmentlab.data.cleaning import TransactionCleaner
from segmentlab.data.loading import OnlineRetailFile, load_dataset


def predict(model_uri: str, transactions: str, out: str, tracking_uri: str) -> int:
    """Clean a transactions file the way the model's training data was and write its segments."""
    from segmentlab.study.pyfunc import load_model

    model = load_model(model_uri, tracking_uri)
    cleaner = TransactionCleaner(**model.cleaning)
    dataset = load_dataset(OnlineRetailFile(transactions), cleaner, cache_dir=None)
    segments = model.predict(dataset.transactions)
    Path(out).parent.mkdir(parents=True, exist_ok=True)
    segments.to_csv(out, index=False)
    print(f"{len(segments):,} customers → {out}")
    print(assignment_summary(segments))
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
