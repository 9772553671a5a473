"""What customers bought before the fit cutoff, and the ranking every recommender shares.

A recommender only supplies *personal* scores (customers x products, 0 meaning "no signal") and
a reason per recommended item. ``rank_products`` does the rest the same way for all of them: it
blends in the segment's popularity, fills the list from the segment's (else the shop's) most
bought products when the personal signal runs out, serves customers unseen in ``fit`` from
their segment, removes products the customer already bought, and returns one tidy frame.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
import pandas as pd
from scipy import sparse

from segmentlab.schema import (
    CUSTOMER_ID,
    DESCRIPTION,
    INVOICE_DATE,
    INVOICE_NO,
    IS_RETURN,
    STOCK_CODE,
    DataError,
)

REQUIRED = [INVOICE_NO, STOCK_CODE, INVOICE_DATE, CUSTOMER_ID, IS_RETURN]
RANK, SCORE, REASON = "rank", "score", "reason"
#: Columns of every ``recommend`` frame, one row per customer and rank.
RECOMMENDATION_COLUMNS = [CUSTOMER_ID, RANK, STOCK_CODE, SCORE, REASON]
# Dense score blocks of this many customers x the catalogue (~4k products: ~30 MB of float64).
_BATCH = 1024

Personal = Callable[[np.ndarray], np.ndarray]
Explain = Callable[[np.ndarray, np.ndarray], np.ndarray]


def check_lines(transactions: pd.DataFrame, what: str = "transactions") -> None:
    """Raise DataError naming the missing columns, or an empty purchase window."""
    missing = [c for c in REQUIRED if c not in transactions.columns]
    if missing:
        raise DataError(f"{what}: missing column(s) {', '.join(missing)}; expected the cleaned "
                        f"columns {', '.join(REQUIRED)} (see segmentlab.schema)")
    if not (~transactions[IS_RETURN].astype(bool)).any():
        raise DataError(f"{what}: no purchase line (is_return False) to learn from")


@dataclass(frozen=True)
class PurchaseHistory:
    """Distinct (invoice, product) purchase lines of the fit window, as integer codes.

    Attributes
    ----------
    customers : Index
        Customer ids with a purchase, sorted.
    products : Index
        The catalogue: stock codes bought in the window, most customers first (ties by code), so
        that a stable sort breaks score ties towards popular products.
    lines : DataFrame
        ``customer`` and ``product`` (positions in the two indexes), ``invoice`` (code) and
        ``invoice_date``: one row per product per invoice.
    descriptions : Series
        Most frequent description per stock code.
    segments : Series
        Segment label per customer id (as given to ``fit``; may include customers without a
        purchase in the window, who are then served from their segment).
    end : Timestamp
        The last invoice date of the window.
    """

    customers: pd.Index
    products: pd.Index
    lines: pd.DataFrame
    descriptions: pd.Series
    segments: pd.Series
    end: pd.Timestamp

    @classmethod
    def from_transactions(cls, transactions: pd.DataFrame,
                          segments: pd.Series | None = None) -> PurchaseHistory:
        """Index the purchases (returns are ignored) of cleaned invoice lines."""
        check_lines(transactions)
        bought = transactions[~transactions[IS_RETURN].astype(bool)]
        codes = bought[STOCK_CODE].astype(str)
        invoice = pd.factorize(bought[INVOICE_NO])[0]
        frame = pd.DataFrame({"customer_id": bought[CUSTOMER_ID].to_numpy(),
                              "code": codes.to_numpy(), "invoice": invoice,
                              INVOICE_DATE: bought[INVOICE_DATE].to_numpy()})
        frame = frame.drop_duplicates(["invoice", "code"])
        buyers = frame.drop_duplicates(["customer_id", "code"])["code"].value_counts()
        order = buyers.rename_axis("code").reset_index().sort_values(
            ["count", "code"], ascending=[False, True], kind="stable")["code"]
        products = pd.Index(order.to_numpy(), name=STOCK_CODE)
        customers = pd.Index(np.sort(frame["customer_id"].unique()), name=CUSTOMER_ID)
        lines = pd.DataFrame({
            "customer": customers.get_indexer(frame["customer_id"]),
            "product": products.get_indexer(frame["code"]),
            "invoice": frame["invoice"].to_numpy(),
            INVOICE_DATE: frame[INVOICE_DATE].to_numpy(),
        })
        descriptions = _most_frequent_text(codes, bought[DESCRIPTION] if DESCRIPTION in bought
                                           else pd.Series("", index=bought.index))
        segments = pd.Series(dtype=object) if segments is None else segments
        return cls(customers, products, lines, descriptions.reindex(products), segments,
                   pd.Timestamp(bought[INVOICE_DATE].max()))

    def matrix(self, half_life_days: float | None = None) -> sparse.csr_matrix:
        """Customers x products: invoices containing the product, each weighted
        ``0.5 ** (age / half_life_days)`` (age in days before ``end``) when a half-life is set."""
        weight = np.ones(len(self.lines))
        if half_life_days:
            age = (self.end - self.lines[INVOICE_DATE]).dt.total_seconds().to_numpy() / 86400
            weight = 0.5 ** (age / half_life_days)
        shape = (len(self.customers), len(self.products))
        return sparse.csr_matrix((weight, (self.lines["customer"], self.lines["product"])),
                                 shape=shape)

    def popularity(self, window_days: float | None = None) -> np.ndarray:
        """Distinct customers per product (in the last ``window_days`` of the window, if set)."""
        lines = self.lines
        if window_days:
            lines = lines[lines[INVOICE_DATE] > self.end - pd.Timedelta(days=window_days)]
        pairs = lines.drop_duplicates(["customer", "product"])["product"].to_numpy()
        return np.bincount(pairs, minlength=len(self.products)).astype(float)

    def segment_popularity(self, window_days: float | None = None) -> dict:
        """Share of each segment's customers who bought each product (segments with buyers)."""
        lines = self.lines
        if window_days:
            lines = lines[lines[INVOICE_DATE] > self.end - pd.Timedelta(days=window_days)]
        label = self.segments.reindex(self.customers).to_numpy()
        pairs = lines.drop_duplicates(["customer", "product"])
        out = {}
        for value in pd.unique(label[pd.notna(label)]):
            members = label == value
            mine = pairs[members[pairs["customer"].to_numpy()]]["product"].to_numpy()
            out[value] = np.bincount(mine, minlength=len(self.products)) / members.sum()
        return out


def rank_products(history: PurchaseHistory, customers, k: int, exclude_seen: bool = True,
                  personal: Personal | None = None, explain: Explain | None = None,
                  segment_blend: float = 0.0, segments: pd.Series | None = None,
                  popularity_days: float | None = None) -> pd.DataFrame:
    """Top ``k`` products per customer from personal scores and segment popularity.

    Parameters
    ----------
    history : PurchaseHistory
        The fit window.
    customers : array-like
        Customer ids, known to ``history`` or not.
    k : int
        Products per customer (fewer if a customer bought nearly the whole catalogue).
    exclude_seen : bool
        Leave out products the customer bought in the fit window.
    personal : callable or None
        Maps customer positions to non-negative scores (rows x catalogue); None for popularity.
    explain : callable or None
        Maps customer positions and their chosen product positions (rows x k) to reason texts.
    segment_blend : float in [0, 1]
        Weight of the segment's popularity against the personal score (each scaled to max 1).
    segments : Series or None
        Segment labels for customers, overriding or adding to those given to ``fit``.
    popularity_days : float or None
        Popularity counts only the last this many days of the fit window.

    Returns
    -------
    DataFrame
        ``RECOMMENDATION_COLUMNS``. ``score`` orders a customer's list: 1 + the (blended)
        personal score for products with a personal signal, else the fallback's popularity
        scaled to [0, 1] (segment products above 0.5, the rest of the shop below).
    """
    if int(k) < 1:
        raise ValueError(f"k must be a positive number of products, got {k!r}")
    if not 0.0 <= segment_blend <= 1.0:
        raise ValueError(f"segment_blend must be in [0, 1], got {segment_blend!r}")
    ids = pd.Index(pd.unique(np.asarray(customers)), name=CUSTOMER_ID)
    labels = history.segments
    if segments is not None:
        labels = pd.concat([labels[~labels.index.isin(segments.index)], segments])
    labels = labels.reindex(ids).to_numpy()
    fallback = _Fallback(history, popularity_days)
    seen = history.matrix().tocsr() if exclude_seen else None
    frames = [_rank_batch(history, ids[i:i + _BATCH], labels[i:i + _BATCH], int(k), seen,
                          personal, explain, segment_blend, fallback)
              for i in range(0, len(ids), _BATCH)]
    if not frames:
        dtypes = ["int64", "int64", object, float, object]
        return pd.DataFrame({c: pd.Series(dtype=t)
                             for c, t in zip(RECOMMENDATION_COLUMNS, dtypes, strict=True)})
    return pd.concat(frames, ignore_index=True)


class _Fallback:
    """Popularity scaled to [0, 1]: the segment's products in (0.5, 1], the shop's in [0, 0.5)."""

    def __init__(self, history: PurchaseHistory, window_days: float | None):
        overall = history.popularity(window_days)
        self.overall = 0.5 * overall / max(overall.max(), 1.0) * (1 - 1e-9)
        self.by_segment = {
            # A segment with nothing bought in the window (share all 0) falls back to the shop's.
            label: np.where(share > 0, 0.5 + 0.5 * share / max(share.max(), 1e-12), self.overall)
            for label, share in history.segment_popularity(window_days).items()}

    def rows(self, labels: np.ndarray) -> np.ndarray:
        return np.vstack([self.by_segment.get(label, self.overall) for label in labels])


def _rank_batch(history, ids, labels, k, seen, personal, explain, blend, fallback) -> pd.DataFrame:
    """Scores, exclusions, top-k and reasons for one block of customers."""
    rows = history.customers.get_indexer(ids)
    known = rows >= 0
    base = fallback.rows(labels)
    own = np.zeros_like(base)
    if personal is not None and known.any():
        own[known] = np.clip(personal(rows[known]), 0.0, None)
        peak = own.max(axis=1, keepdims=True)
        own = np.divide(own, peak, out=np.zeros_like(own), where=peak > 0)
    personal_part = (1.0 - blend) * own if personal is not None else own
    segment_part = blend * base if personal is not None else np.zeros_like(base)
    has = personal_part + segment_part > 0
    score = np.where(has, 1.0 + personal_part + segment_part, base)
    if seen is not None and known.any():
        block = seen[rows[known]].tocoo()
        score[np.flatnonzero(known)[block.row], block.col] = -np.inf
    top = _top_k(score, k)
    top_score = np.take_along_axis(score, top, axis=1)
    from_own = np.take_along_axis((personal_part > 0) & (personal_part >= segment_part), top,
                                  axis=1)
    reasons = _fallback_reasons(labels, np.take_along_axis(base, top, axis=1))
    if explain is not None and (from_own & known[:, None]).any():
        mine = np.flatnonzero(known & from_own.any(axis=1))
        reasons[mine] = np.where(from_own[mine], explain(rows[mine], top[mine]), reasons[mine])
    keep = np.isfinite(top_score)
    width = top.shape[1]  # k, or the catalogue size when that is smaller
    customer = np.repeat(ids.to_numpy(), width).reshape(len(ids), width)
    rank = np.tile(np.arange(1, width + 1), (len(ids), 1))
    return pd.DataFrame({
        CUSTOMER_ID: customer[keep], RANK: rank[keep],
        STOCK_CODE: history.products.to_numpy()[top[keep]],
        SCORE: top_score[keep], REASON: reasons[keep],
    })


def _top_k(score: np.ndarray, k: int) -> np.ndarray:
    """Column positions of the ``k`` best scores per row, best first; ties go to the lower
    position (the more popular product), through a shift far below any real score gap."""
    k = min(k, score.shape[1])
    shifted = score - np.arange(score.shape[1]) * 1e-12
    part = np.argpartition(-shifted, k - 1, axis=1)[:, :k]
    order = np.argsort(-np.take_along_axis(shifted, part, axis=1), axis=1, kind="stable")
    return np.take_along_axis(part, order, axis=1)


def explain_by_similarity(weights: sparse.csr_matrix, similar: np.ndarray, products: pd.Index,
                          verb: str, rows: np.ndarray, top: np.ndarray) -> np.ndarray:
    """'<verb> CODE' naming, for each recommended product, the customer's past purchase that
    adds most to it: the largest ``weight * similar[bought, recommended]``.

    Parameters
    ----------
    weights : csr_matrix
        Customers x products purchase weights.
    similar : ndarray
        Products x products similarity (dense).
    products : Index
        Stock codes of the catalogue positions.
    verb : str
        Text before the code ("bought with").
    rows, top : ndarray
        Customer positions and their recommended product positions (rows x k).
    """
    block = weights[rows].tocoo()  # rows of a CSR slice come out sorted by customer
    owner, bought = block.row, block.col
    added = block.data[:, None] * similar[bought[:, None], top[owner]]
    best = np.empty(top.shape, dtype=np.int64)
    for c in range(top.shape[1]):
        order = np.lexsort((-added[:, c], owner))
        first = order[np.r_[True, owner[order][1:] != owner[order][:-1]]]
        best[owner[first], c] = bought[first]
    codes = products.to_numpy().astype(str)
    return np.char.add(f"{verb} ", codes[best]).astype(object)


def _most_frequent_text(codes: pd.Series, texts: pd.Series) -> pd.Series:
    """The description seen on most lines of each stock code (ties: the first seen)."""
    code, code_values = pd.factorize(codes)
    text, text_values = pd.factorize(texts.fillna("").astype(str))
    pairs = pd.DataFrame({"code": code, "text": text}).value_counts(sort=True)
    first = pairs.reset_index().drop_duplicates("code")
    return pd.Series(text_values.to_numpy()[first["text"].to_numpy()],
                     index=code_values.to_numpy()[first["code"].to_numpy()])


def _fallback_reasons(labels: np.ndarray, base: np.ndarray) -> np.ndarray:
    """'popular in segment L' for segment-popular products, else 'popular overall'."""
    text = np.array([f"popular in segment {label}" if pd.notna(label) else "popular overall"
                     for label in labels], dtype=object)
    return np.where(base > 0.5, text[:, None], "popular overall").astype(object)
