"""Recommenders judged out of time: fit before a cutoff, score on products first bought after it.

Every recommender is refitted (a clone) on the lines strictly before ``cutoff`` and asked for
``k`` products per customer who buys in ``[cutoff, cutoff + horizon_days)``. A product counts as
relevant when the customer buys it in that horizon and had not bought it before the cutoff, so
repeat purchases, which a shop needs no recommender for, neither help nor hurt. Customers who
bought before the cutoff ("returning") and first-time buyers ("new") are scored separately,
all recommenders on the same customers. Hyperparameters are chosen on the window one horizon
earlier (:func:`recommendation_cutoffs`), never on the evaluation window.
"""

from __future__ import annotations

import time
from collections.abc import Mapping
from dataclasses import dataclass, field

import numpy as np
import pandas as pd
from sklearn.base import clone

from segmentlab.recommend.history import RANK, check_lines
from segmentlab.schema import CUSTOMER_ID, INVOICE_DATE, IS_RETURN, STOCK_CODE

RETURNING, NEW = "returning", "new"
ALL = "all"
_METRICS = ["hit_rate", "recall", "ndcg"]


def recommendation_cutoffs(transactions: pd.DataFrame,
                           horizon_days: int = 90) -> tuple[pd.Timestamp, pd.Timestamp]:
    """(validation cutoff, evaluation cutoff): data end - 2 horizons and data end - 1 horizon.

    Data end is midnight after the last invoice day, so the evaluation horizon is the last
    ``horizon_days`` of the data and the validation horizon the ``horizon_days`` before it.
    """
    end = transactions[INVOICE_DATE].max().normalize() + pd.Timedelta(days=1)
    horizon = pd.Timedelta(days=horizon_days)
    return end - 2 * horizon, end - horizon


@dataclass(frozen=True)
class RecommenderEvaluation:
    """Result of :func:`evaluate_recommenders`.

    Attributes
    ----------
    table : DataFrame
        One row per recommender, group (``returning``, ``new``) and segment (``all`` or a
        label): ``n_customers``, ``hit_rate``, ``recall`` with its bootstrap interval
        (``recall_low``, ``recall_high``), ``ndcg``, ``coverage`` (share of the catalogue
        recommended to someone in the row), ``fit_seconds``, ``fit_cpu_seconds``,
        ``recommend_seconds``.
    per_customer : DataFrame
        One row per recommender and scored customer: ``group``, ``segment``, ``n_relevant``,
        ``hits``, ``hit``, ``recall``, ``ndcg``.
    recommendations : DataFrame
        Every list that was scored, with a ``recommender`` column.
    customers : dict
        Buyers in the horizon by what happened to them: ``returning`` and ``new`` (scored), and
        ``returning_only_repeat_products`` (not scored: nothing new to find).
    catalogue_size : int
        Products bought before the cutoff (what a recommender can suggest).
    unreachable_share : float
        Share of relevant (customer, product) pairs whose product was first sold after the
        cutoff, which no recommender can suggest but which still count as misses.
    """

    table: pd.DataFrame
    per_customer: pd.DataFrame
    recommendations: pd.DataFrame
    customers: dict[str, int]
    catalogue_size: int
    unreachable_share: float
    k: int
    fitted: dict = field(default_factory=dict, repr=False)

    def metrics(self, main: str) -> dict[str, float]:
        """Flat ``recommend/...`` metrics of returning customers over all segments.

        ``main`` gets ``recommend/hit_rate_at_{k}``, ``recall_at_{k}``, ``ndcg_at_{k}`` and
        ``coverage``; every other recommender the same keys with its name as prefix
        (``recommend/popularity_recall_at_10``).
        """
        rows = self.table[(self.table["group"] == RETURNING) & (self.table["segment"] == ALL)]
        out = {}
        for _, row in rows.iterrows():
            prefix = "recommend/" if row["recommender"] == main else f"recommend/{row['recommender']}_"
            out.update({f"{prefix}{m}_at_{self.k}": float(row[m]) for m in _METRICS})
            out[f"{prefix}coverage"] = float(row["coverage"])
        return out


def evaluate_recommenders(transactions: pd.DataFrame, recommenders: Mapping[str, object],
                          cutoff: pd.Timestamp | str, horizon_days: int = 90, k: int = 10,
                          segments: pd.Series | None = None, n_boot: int = 1000,
                          seed: int = 42) -> RecommenderEvaluation:
    """Fit each recommender before ``cutoff`` and score it on products first bought after it.

    Parameters
    ----------
    transactions : DataFrame
        Cleaned invoice lines; lines at or after ``cutoff`` are only used as the target.
    recommenders : mapping of str to estimator
        Unfitted recommenders by name; each is cloned and fitted on the lines before ``cutoff``.
    cutoff : Timestamp or str
        End of the fit window, start of the horizon.
    horizon_days : int
        Length of the scored window, in days.
    k : int
        Products recommended per customer.
    segments : Series or None
        Segment label per customer id, learned before ``cutoff``; passed to ``fit``.
    n_boot : int
        Bootstrap resamples of customers for the recall interval (the same resamples for
        every recommender, so intervals compare like with like).
    seed : int
        Seed of the bootstrap.

    Returns
    -------
    RecommenderEvaluation
    """
    check_lines(transactions)
    cutoff = pd.Timestamp(cutoff)
    if not recommenders:
        raise ValueError("recommenders: give at least one name -> estimator")
    history = transactions[transactions[INVOICE_DATE] < cutoff]
    if not (~history[IS_RETURN].astype(bool)).any():
        raise ValueError(f"cutoff {cutoff:%Y-%m-%d}: no purchase before it to fit on")
    relevant, groups, counts, unreachable = _targets(history, transactions, cutoff, horizon_days)
    if relevant.empty:
        raise ValueError(f"cutoff {cutoff:%Y-%m-%d}: nobody bought a new product in the "
                         f"{horizon_days} days after it; choose an earlier cutoff")
    labels = (segments.reindex(groups.index) if segments is not None
              else pd.Series(np.nan, index=groups.index))
    catalogue = history.loc[~history[IS_RETURN].astype(bool), STOCK_CODE].astype(str).nunique()
    scored, lists, timings, fitted = [], [], {}, {}
    for name, recommender in recommenders.items():
        model, started, cpu = clone(recommender), time.perf_counter(), time.process_time()
        model.fit(history, segments)
        fit_wall, fit_cpu = time.perf_counter() - started, time.process_time() - cpu
        started = time.perf_counter()
        recs = model.recommend(groups.index.to_numpy(), k, exclude_seen=True)
        timings[name] = (fit_wall, fit_cpu, time.perf_counter() - started)
        fitted[name] = model
        lists.append(recs.assign(recommender=name))
        per = ranking_metrics(recs, relevant, k).assign(recommender=name)
        scored.append(per.assign(group=groups.reindex(per.index).to_numpy(),
                                 segment=labels.reindex(per.index).to_numpy()))
    per_customer = pd.concat(scored).reset_index()
    recommendations = pd.concat(lists, ignore_index=True)
    table = _summarise(per_customer, recommendations, catalogue, timings, n_boot, seed)
    return RecommenderEvaluation(table, per_customer, recommendations, counts, int(catalogue),
                                 unreachable, int(k), fitted)


def ranking_metrics(recommendations: pd.DataFrame, relevant: pd.DataFrame, k: int) -> pd.DataFrame:
    """Hits, hit, recall and NDCG at ``k`` per customer with at least one relevant product.

    Parameters
    ----------
    recommendations : DataFrame
        ``customer_id``, ``rank`` (1 = first) and ``stock_code``.
    relevant : DataFrame
        ``customer_id`` and ``stock_code`` of the products that count as hits.
    k : int
        Only ranks 1..k count.

    Returns
    -------
    DataFrame
        Indexed by ``customer_id``: ``n_relevant``, ``hits``, ``hit`` (0/1), ``recall``
        (hits / n_relevant) and ``ndcg`` (binary gains, ideal = min(n_relevant, k) hits on top).
        A customer without recommendations scores 0.
    """
    n_relevant = relevant.groupby(CUSTOMER_ID).size().rename("n_relevant")
    top = recommendations[recommendations[RANK] <= k]
    pairs = top.merge(relevant[[CUSTOMER_ID, STOCK_CODE]].drop_duplicates(),
                      on=[CUSTOMER_ID, STOCK_CODE])
    gain = 1.0 / np.log2(pairs[RANK].to_numpy(dtype=float) + 1.0)
    dcg = pd.Series(gain, index=pairs[CUSTOMER_ID].to_numpy()).groupby(level=0).sum()
    hits = pairs.groupby(CUSTOMER_ID).size()
    ideal_gains = np.cumsum(1.0 / np.log2(np.arange(2, k + 2)))
    ideal = ideal_gains[np.minimum(n_relevant.to_numpy(), k) - 1]
    out = pd.DataFrame({"n_relevant": n_relevant})
    out["hits"] = hits.reindex(out.index, fill_value=0).astype(int)
    out["hit"] = (out["hits"] > 0).astype(int)
    out["recall"] = out["hits"] / out["n_relevant"]
    out["ndcg"] = dcg.reindex(out.index, fill_value=0.0).to_numpy() / ideal
    out.index.name = CUSTOMER_ID
    return out


def bootstrap_interval(values: np.ndarray, n_boot: int = 1000, seed: int = 42,
                       level: float = 0.95) -> tuple[float, float]:
    """Percentile interval of the mean of ``values`` over resampled customers."""
    values = np.asarray(values, dtype=float)
    if len(values) < 2 or n_boot < 1:
        return float("nan"), float("nan")
    draws = np.random.default_rng(seed).integers(0, len(values), (n_boot, len(values)))
    means = values[draws].mean(axis=1)
    tail = (1 - level) / 2
    return float(np.quantile(means, tail)), float(np.quantile(means, 1 - tail))


def paired_ratio_interval(a: np.ndarray, b: np.ndarray, n_boot: int = 1000, seed: int = 42,
                          level: float = 0.95) -> tuple[float, float, float]:
    """mean(a) / mean(b) with a percentile interval, resampling the same customers for both."""
    a, b = np.asarray(a, dtype=float), np.asarray(b, dtype=float)
    if len(a) != len(b):
        raise ValueError(f"paired values differ in length: {len(a)} and {len(b)} customers")
    ratio = a.mean() / b.mean() if b.mean() > 0 else float("nan")
    draws = np.random.default_rng(seed).integers(0, len(a), (n_boot, len(a)))
    below = b[draws].mean(axis=1)
    ratios = np.divide(a[draws].mean(axis=1), below, out=np.full(n_boot, np.nan), where=below > 0)
    tail = (1 - level) / 2
    return (float(ratio), float(np.nanquantile(ratios, tail)),
            float(np.nanquantile(ratios, 1 - tail)))


def _targets(history: pd.DataFrame, transactions: pd.DataFrame, cutoff: pd.Timestamp,
             horizon_days: int) -> tuple[pd.DataFrame, pd.Series, dict[str, int], float]:
    """Relevant (customer, product) pairs, each scored customer's group, counts, unreachable."""
    dates = transactions[INVOICE_DATE]
    window = (dates >= cutoff) & (dates < cutoff + pd.Timedelta(days=horizon_days))
    future = transactions[window & ~transactions[IS_RETURN].astype(bool)]
    bought = history[~history[IS_RETURN].astype(bool)]
    past = pd.DataFrame({CUSTOMER_ID: bought[CUSTOMER_ID].to_numpy(),
                         STOCK_CODE: bought[STOCK_CODE].astype(str).to_numpy()}).drop_duplicates()
    later = pd.DataFrame({CUSTOMER_ID: future[CUSTOMER_ID].to_numpy(),
                          STOCK_CODE: future[STOCK_CODE].astype(str).to_numpy()}).drop_duplicates()
    fresh = later.merge(past, how="left", indicator=True)
    relevant = fresh.loc[fresh["_merge"] == "left_only", [CUSTOMER_ID, STOCK_CODE]]
    known = pd.Index(past[CUSTOMER_ID].unique())
    buyers = pd.Index(later[CUSTOMER_ID].unique())
    scored = pd.Index(np.sort(relevant[CUSTOMER_ID].unique()), name=CUSTOMER_ID)
    groups = pd.Series(np.where(scored.isin(known), RETURNING, NEW), index=scored, name="group")
    counts = {RETURNING: int((groups == RETURNING).sum()), NEW: int((groups == NEW).sum()),
              "returning_only_repeat_products": int(buyers.isin(known).sum()
                                                    - (groups == RETURNING).sum())}
    unreachable = float((~relevant[STOCK_CODE].isin(past[STOCK_CODE])).mean())
    return relevant.reset_index(drop=True), groups, counts, unreachable


def _summarise(per_customer: pd.DataFrame, recommendations: pd.DataFrame, catalogue: int,
               timings: dict, n_boot: int, seed: int) -> pd.DataFrame:
    """Metric rows per recommender x group x segment (``all`` plus each label)."""
    recommended = recommendations.merge(
        per_customer[["recommender", CUSTOMER_ID, "group", "segment"]],
        on=["recommender", CUSTOMER_ID])
    rows = []
    for (name, group), part in per_customer.groupby(["recommender", "group"], sort=False):
        slices = [(ALL, part)] + [(label, seg) for label, seg in
                                  part.groupby("segment", sort=True, dropna=True)]
        for label, rows_of in slices:
            mask = (recommended["recommender"] == name) & (recommended["group"] == group)
            if label != ALL:
                mask &= recommended["segment"] == label
            low, high = bootstrap_interval(rows_of["recall"].to_numpy(), n_boot, seed)
            fit_wall, fit_cpu, rec_wall = timings[name]
            rows.append({
                "recommender": name, "group": group, "segment": label,
                "n_customers": len(rows_of), "hit_rate": rows_of["hit"].mean(),
                "recall": rows_of["recall"].mean(), "recall_low": low, "recall_high": high,
                "ndcg": rows_of["ndcg"].mean(),
                "coverage": recommended.loc[mask, STOCK_CODE].nunique() / max(catalogue, 1),
                "fit_seconds": fit_wall, "fit_cpu_seconds": fit_cpu,
                "recommend_seconds": rec_wall})
    return pd.DataFrame(rows)
