"""How much history a new customer needs before the segment classifier can be trusted.

Segments are learnt from whole histories (a year of orders), but a new customer arrives with a
few days of them. `history_curve` measures what the deployed kind of classifier (fitted on whole
histories) gets right when it sees only a customer's first ``d`` days: held-out customers with at
least ``d`` days of tenure are cut to their first ``d`` days and moved in time by whole weeks
(weekday shares stay intact) so that, like a customer in a new file, their short history ends
where the data end. The truth is the segment the full clustering gave them.

The same cut histories teach a `HistoryCalibration`: the probability that the classifier's
choice is right, from its own probability and the days of history it rests on. It is fitted on
one half of the held-out customers and checked on the other (``reliability``), then refitted on
all of them for deployment.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
import pandas as pd
from sklearn.base import BaseEstimator, clone
from sklearn.linear_model import LogisticRegression
from sklearn.metrics import accuracy_score, f1_score
from sklearn.model_selection import train_test_split
from sklearn.pipeline import FeatureUnion

from segmentlab.customers import snapshot_date
from segmentlab.schema import CUSTOMER_ID, INVOICE_DATE, INVOICE_NO, IS_RETURN
from segmentlab.segmentation.evaluation import NOISE

#: Days of history the curve is measured at (and whole histories).
HISTORY_DAYS = (1, 7, 14, 30, 60, 90, 120, 180, 270)
#: The suggested threshold is the shortest measured history whose macro F1 reaches this:
#: three in four right, on balance across segments.
TARGET_F1 = 0.75
_EPS = 1e-4


class HistoryCalibration:
    """P(the assigned segment is right | classifier probability, days of history, segment).

    A logistic regression on ``logit(p)``, ``log1p(days)``, their product and, per assigned
    segment, an offset and a slope on ``log1p(days)``: some segments are recognisable from a
    first order, others only after months. Fitted on held-out customers seen through cut
    histories, it maps the classifier's top probability (which stays near 1 however short the
    history) to the share of such choices that were right.

    Parameters
    ----------
    classes : array-like
        The segment labels the classifier can assign.
    """

    def __init__(self, classes):
        self.classes = np.asarray(classes)

    def _design(self, probability, days, segment) -> np.ndarray:
        p = np.clip(np.asarray(probability, float), _EPS, 1 - _EPS)
        logit, log_days = np.log(p / (1 - p)), np.log1p(np.asarray(days, float))
        one_hot = (np.asarray(segment)[:, None] == self.classes[None, :]).astype(float)
        return np.column_stack([logit, log_days, logit * log_days, one_hot,
                                one_hot * log_days[:, None]])

    def fit(self, probability, days, segment, correct) -> HistoryCalibration:
        correct = np.asarray(correct, bool)
        if correct.all() or not correct.any():  # one outcome only: the observed rate is the answer
            self.model_ = float(correct.mean())
            return self
        self.model_ = LogisticRegression(C=10.0, max_iter=2000).fit(
            self._design(probability, days, segment), correct)
        return self

    def predict(self, probability, days, segment) -> np.ndarray:
        """Calibrated confidence for each (probability, days, assigned segment)."""
        if isinstance(self.model_, float):
            return np.full(len(np.asarray(probability)), self.model_)
        return self.model_.predict_proba(self._design(probability, days, segment))[:, 1]


@dataclass(frozen=True)
class HistoryCurve:
    """What `history_curve` measured.

    Attributes
    ----------
    table : DataFrame
        One row per history length (``history_days``; ``NaN`` for whole histories):
        ``n_customers``, ``median_invoices``, ``f1_macro``, ``accuracy``, ``mean_probability``
        (the classifier's own top probability), ``mean_confidence`` (calibrated, out of sample).
    reliability : DataFrame
        Calibrated confidence in bins (``bin``, ``n``, ``mean_confidence``, ``accuracy``) on the
        half of the held-out customers the calibration did not see.
    calibration : HistoryCalibration
        Fitted on all held-out customers: what the deployed model applies.
    metrics : dict
        ``assign/confidence_ece`` (expected calibration error on the unseen half),
        ``assign/history_f1_full`` and ``assign/history_n_heldout``.
    """

    table: pd.DataFrame
    reliability: pd.DataFrame
    calibration: HistoryCalibration
    metrics: dict[str, float]

    def f1_at(self, days: float) -> float:
        """Macro F1 at the longest measured history not above ``days`` (NaN below the grid)."""
        rows = self.table[self.table["history_days"] <= days]
        return float(rows["f1_macro"].iloc[-1]) if len(rows) else float("nan")

    def suggested_days(self, target: float = TARGET_F1) -> float:
        """The shortest measured history whose macro F1 reaches ``target`` (NaN if none does)."""
        cut = self.table.dropna(subset=["history_days"])
        reached = cut.loc[cut["f1_macro"] >= target, "history_days"]
        return float(reached.iloc[0]) if len(reached) else float("nan")


def history_curve(transactions: pd.DataFrame, labels: pd.Series,
                  make_features: Callable[[], FeatureUnion], classifier: BaseEstimator,
                  days: tuple[int, ...] = HISTORY_DAYS, test_size: float = 0.25,
                  random_state: int = 42) -> HistoryCurve:
    """Assignment quality against days of history, and the calibration it teaches.

    Parameters
    ----------
    transactions : DataFrame
        Cleaned invoice lines (purchases and returns).
    labels : Series
        Segment per ``customer_id`` from the full clustering; noise (-1) is left out.
    make_features : callable
        Returns the run's unfitted feature union.
    classifier : estimator
        Unfitted segment classifier with ``predict_proba``; cloned.
    days : tuple of int
        History lengths to measure.
    test_size : float
        Share of customers held out (stratified by segment).
    random_state : int
        Seed of the split.

    Returns
    -------
    HistoryCurve
    """
    labels = labels[labels != NOISE]
    customers = labels.index.to_numpy()
    counts = labels.value_counts()
    stratify = labels.to_numpy() if counts.min() >= 2 else None
    train, held = train_test_split(customers, test_size=test_size, random_state=random_state,
                                   stratify=stratify)
    lines = transactions[transactions[CUSTOMER_ID].isin(customers)]
    union = make_features()
    X_train = union.fit_transform(lines[lines[CUSTOMER_ID].isin(train)])
    classes = np.unique(labels.to_numpy())
    codes = np.searchsorted(classes, labels.reindex(X_train.index).to_numpy())
    model = clone(classifier).fit(X_train, codes)
    known = classes[np.asarray(model.classes_, int)]  # a segment absent from training has no column
    snapshot = snapshot_date(transactions)
    seen = []  # per (customer, history): top probability, history days, correct
    for d in [*days, None]:
        window = cut_histories(lines[lines[CUSTOMER_ID].isin(held)], d, snapshot)
        if window.empty:
            continue
        X = union.transform(window).reindex(columns=X_train.columns, fill_value=0.0)
        proba = model.predict_proba(X)
        predicted = known[proba.argmax(axis=1)]
        truth = labels.reindex(X.index).to_numpy()
        bought = window[~window[IS_RETURN]]
        first = bought.groupby(CUSTOMER_ID)[INVOICE_DATE].min().dt.normalize().reindex(X.index)
        seen.append(pd.DataFrame({
            "customer": X.index, "history_days": np.nan if d is None else d,
            "days": (snapshot - first).dt.days.to_numpy(float), "probability": proba.max(axis=1),
            "correct": predicted == truth, "truth": truth, "predicted": predicted,
            "invoices": bought.groupby(CUSTOMER_ID)[INVOICE_NO].nunique().reindex(X.index).to_numpy()}))
    frame = pd.concat(seen, ignore_index=True)
    return _summarise(frame, random_state)


def cut_histories(lines: pd.DataFrame, days: int | None, snapshot: pd.Timestamp) -> pd.DataFrame:
    """Each customer's lines of their first ``days`` days, moved by whole weeks to end near
    ``snapshot``; customers with less tenure than ``days`` are left out; None keeps all lines."""
    if days is None:
        return lines
    bought = lines[~lines[IS_RETURN]]
    first = bought.groupby(CUSTOMER_ID)[INVOICE_DATE].min().dt.normalize()
    first = first[(snapshot - first).dt.days >= days]
    start = lines[CUSTOMER_ID].map(first)
    keep = start.notna() & (lines[INVOICE_DATE] < start + pd.Timedelta(days=days))
    cut = lines[keep].copy()
    gap = (snapshot - pd.Timedelta(days=days) - start[keep]).dt.days
    cut[INVOICE_DATE] = cut[INVOICE_DATE] + pd.to_timedelta(7 * (gap // 7), unit="D")
    return cut


def _summarise(frame: pd.DataFrame, random_state: int) -> HistoryCurve:
    """Curve table, out-of-sample reliability and the deployable calibration from the cut views.

    Only cut histories teach the calibration: a whole history that happens to be short belongs
    to a customer whose segment was judged from that same short history, which says nothing
    about a new customer whose history goes on.
    """
    held = frame["customer"].unique()
    rng = np.random.default_rng(random_state)
    half = set(rng.choice(held, size=len(held) // 2, replace=False).tolist())
    cut = frame["history_days"].notna()
    fit_part, check_part = cut & frame["customer"].isin(half), cut & ~frame["customer"].isin(half)
    classes = np.unique(frame["truth"])
    check = HistoryCalibration(classes).fit(*_xy(frame[fit_part]))
    frame["confidence"] = check.predict(frame["probability"], frame["days"], frame["predicted"])
    frame.loc[fit_part, "confidence"] = np.nan  # in-sample: not shown
    rows = []
    for d, part in frame.groupby(frame["history_days"].fillna(np.inf), sort=True):
        rows.append({"history_days": np.nan if np.isinf(d) else d, "n_customers": len(part),
                     "median_invoices": float(part["invoices"].median()),
                     "f1_macro": float(f1_score(part["truth"], part["predicted"], average="macro")),
                     "accuracy": float(accuracy_score(part["truth"], part["predicted"])),
                     "mean_probability": float(part["probability"].mean()),
                     "mean_confidence": float(part["confidence"].mean())})
    table = pd.DataFrame(rows)
    reliability, ece = _reliability(frame[check_part])
    metrics = {"assign/confidence_ece": ece,
               "assign/history_f1_full": float(table["f1_macro"].iloc[-1]),
               "assign/history_n_heldout": float(len(held))}
    return HistoryCurve(table, reliability, HistoryCalibration(classes).fit(*_xy(frame[cut])),
                        metrics)


def _xy(frame: pd.DataFrame):
    return frame["probability"], frame["days"], frame["predicted"], frame["correct"]


def _reliability(frame: pd.DataFrame, bins: int = 10) -> tuple[pd.DataFrame, float]:
    """Calibrated confidence against observed accuracy in equal-width bins, and the ECE."""
    edges = np.linspace(0, 1, bins + 1)
    which = np.clip(np.digitize(frame["confidence"], edges[1:-1]), 0, bins - 1)
    table = frame.groupby(which).agg(n=("correct", "size"), mean_confidence=("confidence", "mean"),
                                     accuracy=("correct", "mean"))
    table.insert(0, "bin", [f"{edges[i]:.1f}–{edges[i + 1]:.1f}" for i in table.index])
    ece = float((table["n"] * (table["mean_confidence"] - table["accuracy"]).abs()).sum()
                / max(table["n"].sum(), 1))
    return table.reset_index(drop=True), ece
