"""The deployable piece: a run's fitted feature sets and segmenter, following segments in time.

``SegmentTracker`` is fitted once on the run (its transactions, labels and profile) and then
``track`` runs on any cleaned transactions, the run's own or newer ones, returning snapshots,
flow tables, rates, the warning list and the honest check of the warnings in one
``DynamicsResult``.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from time import perf_counter

import numpy as np
import pandas as pd
from sklearn.pipeline import FeatureUnion, Pipeline

from segmentlab.dynamics.early_warning import early_warnings, evaluate_warnings, warning_outcomes
from segmentlab.dynamics.migration import (
    all_flows,
    migration_metrics,
    segment_values,
    state_ranks,
)
from segmentlab.dynamics.snapshots import (
    CHURNED,
    NOT_YET,
    SnapshotLabeller,
    Snapshots,
    features_at,
    parse_every,
    snapshot_dates,
    take_snapshots,
)
from segmentlab.schema import INVOICE_DATE, DataError
from segmentlab.settings import DynamicsSettings

NOISE_NAME = "unassigned"


@dataclass(frozen=True)
class DynamicsResult:
    """What ``SegmentTracker.track`` computed; ``tables`` are what gets logged."""

    metrics: dict[str, float]
    snapshots: Snapshots
    flows: pd.DataFrame            # migration.all_flows
    warnings: pd.DataFrame         # early_warning.WARNING_COLUMNS, last snapshot
    outcomes: pd.DataFrame         # early_warning.warning_outcomes
    per_date: pd.DataFrame         # warning evaluation per snapshot date
    values: pd.DataFrame           # migration.segment_values at fit time
    names: dict[str, str]          # display name per state
    ranks: dict[str, float]        # value rank per state
    tables: dict[str, pd.DataFrame] = field(default_factory=dict)


class SegmentTracker:
    """Follow a run's segments through time without refitting anything.

    Parameters
    ----------
    union : FeatureUnion
        The run's feature union, fitted on the whole transactions.
    segmenter : Pipeline
        The run's fitted ``StandardScaler -> reducer -> clusterer``.
    settings : DynamicsSettings
        Snapshot period, churn horizon, value window, risk words, report and bootstrap sizes.
    """

    def __init__(self, union: FeatureUnion, segmenter: Pipeline,
                 settings: DynamicsSettings | None = None):
        self.union = union
        self.segmenter = segmenter
        self.settings = settings if settings is not None else DynamicsSettings()

    def fit(self, transactions: pd.DataFrame, labels: pd.Series,
            profile: pd.DataFrame | None = None) -> SegmentTracker:
        """Learn the labeller, the segments' value order, names, actions and risk segments.

        Parameters
        ----------
        transactions : DataFrame
            The cleaned lines the run was fitted on.
        labels : Series
            The run's segment per ``customer_id``.
        profile : DataFrame, optional
            The run's profile with ``name`` and the settings' ``action_column``.
        """
        self.end_ = transactions[INVOICE_DATE].max().normalize() + pd.Timedelta(days=1)
        features = features_at(self.union, transactions, self.end_)
        unlabelled = features.index.difference(labels.index)
        if len(unlabelled):
            raise DataError(f"labels: {len(unlabelled)} purchasing customers have no segment, "
                            f"e.g. customer_id {list(unlabelled[:3])}")
        labels = labels.reindex(features.index)
        self.labeller_ = SnapshotLabeller(self.segmenter).fit(features, labels)
        self.fit_labels_ = labels
        self.values_ = segment_values(transactions, labels, self.end_, self.settings.value_window_days)
        self.ranks_ = state_ranks(self.values_)
        names = {} if profile is None or "name" not in profile else profile["name"].to_dict()
        self.names_ = {str(k): f"{k} {names.get(k, NOISE_NAME if k == -1 else 'segment')}"
                       for k in self.values_.index}
        self.names_.update({NOT_YET: NOT_YET, CHURNED: CHURNED})
        column = self.settings.action_column
        self.actions_ = ({} if profile is None or column not in profile else
                         {str(k): str(v) for k, v in profile[column].items()})
        words = [w.lower() for w in self.settings.risk_words]
        self.risk_states_ = [str(k) for k, name in names.items()
                             if k != -1 and any(w in str(name).lower() for w in words)]
        return self

    def track(self, transactions: pd.DataFrame, value: pd.Series | None = None) -> DynamicsResult:
        """Snapshots, flows, rates and warnings on ``transactions`` (cleaned lines).

        Parameters
        ----------
        transactions : DataFrame
            The run's lines or newer ones; snapshots step back from their end.
        value : Series, optional
            Value per ``customer_id`` for the warnings (e.g. lifetime value); else trailing spend.
        """
        settings, start = self.settings, perf_counter()
        dates = snapshot_dates(transactions[INVOICE_DATE].min(),
                               transactions[INVOICE_DATE].max() + pd.Timedelta(days=1),
                               settings.every, settings.min_history_days)
        snapshots = take_snapshots(transactions, self.union, self.labeller_, dates,
                                   parse_every(settings.every), settings.churn_days)
        flows = all_flows(snapshots, transactions)
        warnings = early_warnings(snapshots, transactions, self.ranks_, self.risk_states_,
                                  self.names_, self.actions_, value, settings.value_window_days)
        outcomes = warning_outcomes(snapshots, transactions, self.ranks_, self.risk_states_)
        evaluation, per_date = evaluate_warnings(outcomes, settings.n_bootstrap,
                                                 settings.random_state)
        metrics = {**migration_metrics(snapshots, self.ranks_), **evaluation,
                   "dynamics/n_snapshots": float(len(dates)),
                   "time/dynamics_seconds_per_snapshot": float(snapshots.seconds.mean()),
                   "time/dynamics_seconds": perf_counter() - start,
                   "dynamics/n_warnings": float(len(warnings)),
                   "dynamics/warning_value_at_stake": float(warnings["value_at_stake"].sum()),
                   **self._agreement(snapshots)}
        tables = {"dynamics_flows": flows, "dynamics_warnings": warnings,
                  "dynamics_warning_evaluation": per_date,
                  "dynamics_segment_values": self.values_.reset_index(),
                  "dynamics_paths": snapshots.paths().rename(columns=lambda d: d.date().isoformat())
                  .reset_index()}
        return DynamicsResult(metrics, snapshots, flows, warnings, outcomes, per_date, self.values_,
                              dict(self.names_), dict(self.ranks_), tables)

    def _agreement(self, snapshots: Snapshots) -> dict[str, float]:
        """Share of the run's customers whose segment at the fit window's end is their run label."""
        if snapshots.dates[-1] != self.end_:
            return {}
        segment = snapshots.at(self.end_)["segment"].reindex(self.fit_labels_.index)
        same = segment.to_numpy(dtype=float, na_value=np.nan) == self.fit_labels_.to_numpy(float)
        return {"dynamics/fit_window_agreement": float(same.mean())}
