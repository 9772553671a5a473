"""The deployable customer model: cleaned transactions in, one row per customer out."""

from __future__ import annotations

import numpy as np
import pandas as pd

from segmentlab.customers import snapshot_date
from segmentlab.prediction.assignment import SegmentAssigner
from segmentlab.prediction.repurchase import RepurchaseModel
from segmentlab.prediction.value import value_columns
from segmentlab.schema import CUSTOMER_ID, INVOICE_DATE, INVOICE_NO, IS_RETURN

#: Output columns of :meth:`CustomerSegmentModel.predict`.
OUTPUT_COLUMNS = [CUSTOMER_ID, "segment", "segment_name", "assigned_by", "confidence",
                  "closest_segment_name", "history_days", "history_invoices",
                  "repurchase_probability"]


class CustomerSegmentModel:
    """Segments and repurchase probabilities for the customers in a set of transactions.

    Customers the model was trained on keep the segment the clustering gave them (no
    confidence: it is not a prediction). Customers unseen in training are assigned by the
    segment classifier from their features, with a calibrated confidence, unless their history
    is shorter than the assigner's ``min_history_days``: then they are in the explicit "new —
    not yet segmentable" group (segment -2), with the closest segment and its confidence beside.
    ``history_days`` (days from the first purchase in the file to the day after its last
    invoice) and ``history_invoices`` say what every row rests on.

    Parameters
    ----------
    known : Series
        Segment per training ``customer_id`` (noise -1 included).
    names : dict
        Segment label → descriptive name.
    assigner : SegmentAssigner
        Fitted feature union + classifier for unseen customers.
    repurchase : RepurchaseModel or None
        Probability of buying within its horizon after the transactions end.
    cleaning : dict
        The ``TransactionCleaner`` parameters the training data was cleaned with, so new files are
        cleaned the same way.
    min_repurchase_customers : int
        The repurchase model re-clusters the customers it scores (its segment predictors), which
        needs a population: with fewer purchasing customers the probability is left empty (NaN).
    dynamics : SegmentTracker or None
        The run's fitted feature sets and segmenter, fitted to follow segments through time
        (`segmentlab.dynamics`): ``segmentlab dynamics`` applies it to new transactions.
    recommender : fitted recommender or None
        Fitted on all training lines with the run's segments (`segmentlab.recommend`):
        ``segmentlab recommend`` lists products per customer, new customers from their segment.
    value : CustomerValue or None
        BG/NBD + Gamma-Gamma fitted on the training data (`segmentlab.lifetime`): ``predict``
        adds ``p_alive``, ``expected_purchases_<h>d`` and ``clv_<m>m``, scored with the fitted
        parameters up to the end of the transactions given.
    """

    def __init__(self, known: pd.Series, names: dict, assigner: SegmentAssigner,
                 repurchase: RepurchaseModel | None, cleaning: dict, min_repurchase_customers: int = 50,
                 dynamics=None, recommender=None, value=None):
        self.known = known
        self.names = dict(names)
        self.assigner = assigner
        self.repurchase = repurchase
        self.cleaning = dict(cleaning)
        self.min_repurchase_customers = min_repurchase_customers
        self.dynamics = dynamics
        self.recommender = recommender
        self.value = value

    @property
    def predict_columns(self) -> list[str]:
        """Columns of `predict`'s output, in order."""
        value = getattr(self, "value", None)  # models registered before lifetime value had none
        return [*OUTPUT_COLUMNS, *(value_columns(value) if value is not None else [])]

    def predict(self, transactions: pd.DataFrame) -> pd.DataFrame:
        """One row per purchasing customer, ordered by ``customer_id``: see `predict_columns`."""
        purchases = transactions[~transactions[IS_RETURN]]
        customers = pd.Index(sorted(purchases[CUSTOMER_ID].unique()), name=CUSTOMER_ID)
        by = purchases.groupby(CUSTOMER_ID)
        first = by[INVOICE_DATE].min().dt.normalize().reindex(customers)
        segment = self.known.reindex(customers)
        out = pd.DataFrame({
            "segment": segment,
            "segment_name": segment.map(lambda s: self.names.get(s, f"segment {s}")),
            "assigned_by": "training", "confidence": np.nan,
            "closest_segment_name": segment.map(lambda s: self.names.get(s, f"segment {s}")),
            "history_days": (snapshot_date(transactions) - first).dt.days.astype(float),
            "history_invoices": by[INVOICE_NO].nunique().reindex(customers).astype(float),
        }, index=customers)
        unseen = segment.index[segment.isna()]
        if len(unseen):
            lines = transactions[transactions[CUSTOMER_ID].isin(unseen)]
            features = self.assigner.union.transform(lines).reindex(unseen)
            assigned = self.assigner.assign_new(features, out.loc[unseen, "history_days"])
            out.loc[unseen, assigned.columns] = assigned
        out["segment"] = out["segment"].astype(int)
        out["repurchase_probability"] = float("nan")
        if self.repurchase is not None and len(customers) >= self.min_repurchase_customers:
            out["repurchase_probability"] = self.repurchase.predict_proba(transactions).reindex(customers)
        value = getattr(self, "value", None)
        if value is not None:
            columns = value_columns(value)
            out[columns] = value.transform(transactions)[columns].reindex(customers)
        return out.reset_index()
