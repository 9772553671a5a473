"""What a run needs from a file too big for pandas, as customer-level frames: `read_customers`.

The run's feature sets that DuckDB computes (`RFMFeatures`, `BehaviourFeatures`) are fitted and
joined side by side with ``<set>__`` column prefixes, as ``FeatureUnion`` joins them; any other set
(TF-IDF, word2vec: they read every line's text) is left out and named, for the run to report it as
skipped. The customer summary of segment profiles comes along, so nothing downstream needs the
lines.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import pandas as pd
from sklearn.pipeline import FeatureUnion

from segmentlab.data.cleaning import TransactionCleaner
from segmentlab.data.loading import OnlineRetailFile
from segmentlab.data.outofcore.lines import OutOfCoreLines
from segmentlab.features.behaviour import BehaviourFeatures
from segmentlab.features.rfm import RFMFeatures
from segmentlab.schema import CleaningLedger, DataError

#: The feature sets DuckDB computes; the others need the lines in memory.
OUT_OF_CORE_SETS = (RFMFeatures, BehaviourFeatures)


@dataclass(frozen=True)
class CustomerFrames:
    """A file read, cleaned and summarised per customer out of core.

    Attributes
    ----------
    ledger : CleaningLedger
        The pandas path's ledger, step for step.
    notes : tuple of str
        What the pandas reader says it read (parts, warnings).
    features : DataFrame
        One row per customer with a purchase (sorted ids), ``<set>__<column>`` floats.
    metrics, tables : dict
        What the feature sets reported (``report``), as ``compute_features`` gathers them.
    summary : DataFrame
        `segmentlab.customers.customer_summary` of the cleaned lines, same rows.
    left_out : dict
        Feature set name to the class the engine cannot compute.
    """

    ledger: CleaningLedger
    notes: tuple[str, ...]
    features: pd.DataFrame
    summary: pd.DataFrame
    metrics: dict[str, float] = field(default_factory=dict)
    tables: dict[str, pd.DataFrame] = field(default_factory=dict)
    left_out: dict[str, str] = field(default_factory=dict)


def read_customers(source: OnlineRetailFile, cleaner: TransactionCleaner, union: FeatureUnion,
                   **options) -> CustomerFrames:
    """Read, clean and summarise ``source`` with DuckDB; return customer-level frames only.

    Parameters
    ----------
    source : OnlineRetailFile
        One CSV or Parquet file.
    cleaner : TransactionCleaner
    union : FeatureUnion
        The run's feature sets (unfitted; those DuckDB computes are fitted in place).
    **options
        ``memory_limit``, ``threads``, ``temp_directory`` of `OutOfCoreLines`.

    Returns
    -------
    CustomerFrames

    Raises
    ------
    DataError
        As `OutOfCoreLines.clean`; also when no feature set of ``union`` can be computed.
    """
    sets = [(name, part) for name, part in union.transformer_list if part not in ("drop", "passthrough")]
    computed = [(name, part) for name, part in sets if isinstance(part, OUT_OF_CORE_SETS)]
    left_out = {name: type(part).__name__ for name, part in sets if not isinstance(part, OUT_OF_CORE_SETS)}
    if not computed:
        raise DataError(f"features={[name for name, _ in sets]}: none of them is computed out of core "
                        f"(only rfm and behaviour are); use data.engine=pandas or features=[rfm,behaviour]")
    with OutOfCoreLines(source, cleaner, **options) as lines:
        ledger = lines.clean()
        summary = lines.customer_summary()
        frames, metrics, tables = [], {}, {}
        for name, part in computed:
            frames.append(lines.fit_transform(part).add_prefix(f"{name}__"))
            if hasattr(part, "report"):
                part_metrics, part_tables = part.report()
                metrics.update(part_metrics)
                tables.update(part_tables)
        notes = lines.notes_
    features = pd.concat(frames, axis=1).reindex(summary.index).astype(float)
    if features.isna().to_numpy().any():  # every set has a row for every purchaser
        bad = features.columns[features.isna().any()].tolist()
        raise ValueError(f"feature columns {bad[:5]} have missing values for some customers")
    return CustomerFrames(ledger, tuple(notes), features, summary, metrics, tables, left_out)
