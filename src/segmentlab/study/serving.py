"""Commands that apply a registered model to new data: ``segmentlab predict``."""

from __future__ import annotations

from pathlib import Path

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
    counts = segments["assigned_by"].value_counts()
    print(f"{len(segments):,} customers → {out} ({counts.get('training', 0):,} known from training, "
          f"{counts.get('classifier', 0):,} assigned by the classifier)")
    print(segments["segment_name"].value_counts().to_string())
    return 0
