"""The customer feature matrix of a run: the configured feature sets fitted, joined and cached."""

from __future__ import annotations

from dataclasses import dataclass, field
from time import perf_counter

import pandas as pd
from sklearn.pipeline import FeatureUnion

from segmentlab.cache import FrameCache
from segmentlab.customers import align_to_purchasers
from segmentlab.schema import Dataset


@dataclass(frozen=True)
class FeatureResult:
    """The customer feature matrix and what the feature sets reported while fitting."""

    frame: pd.DataFrame
    metrics: dict[str, float] = field(default_factory=dict)
    tables: dict[str, pd.DataFrame] = field(default_factory=dict)
    cache_hit: bool = False
    seconds: float = 0.0
    union: FeatureUnion | None = None  # the fitted feature sets; None when read from the cache


def compute_features(
    dataset: Dataset, union: FeatureUnion, cache: FrameCache | None = None, key: str | None = None
) -> FeatureResult:
    """Fit the feature sets on the dataset and return one row per purchasing customer.

    With a cache and key, a verified earlier result is returned instead of recomputing.
    """
    if cache is not None and key is not None and (hit := cache.load(key)) is not None:
        frames, meta = hit
        tables = {name[len("table:"):]: f for name, f in frames.items() if name.startswith("table:")}
        return FeatureResult(frames["features"], meta["metrics"], tables, cache_hit=True)
    start = perf_counter()
    frame = align_to_purchasers(union.fit_transform(dataset.transactions), dataset.transactions)
    metrics, tables = {}, {}
    for _, part in union.transformer_list:
        if hasattr(part, "report"):
            part_metrics, part_tables = part.report(dataset.transactions)
            metrics.update(part_metrics)
            tables.update(part_tables)
    result = FeatureResult(frame, metrics, tables, cache_hit=False, seconds=perf_counter() - start,
                           union=union)
    if cache is not None and key is not None:
        frames = {"features": frame, **{f"table:{name}": t for name, t in tables.items()}}
        cache.save(key, frames, {"metrics": metrics})
    return result
