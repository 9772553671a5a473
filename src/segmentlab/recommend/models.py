"""Recommenders from purchase counts and item neighbours: popularity, co-purchase, word2vec.

Each is an estimator: ``__init__`` stores, ``fit(transactions, segments=None)`` learns from
cleaned invoice lines (returns ignored) and ``recommend(customers, k)`` returns one row per
customer and rank (``history.RECOMMENDATION_COLUMNS``). The neighbour models keep the
``n_neighbours`` most similar products of every product; a customer's score for a product is
the sum of its similarities to what they bought, each purchase weighted by recency when
``half_life_days`` is set. ``segment_blend`` mixes in the popularity of the customer's segment.
"""

from __future__ import annotations

from functools import partial

import numpy as np
import pandas as pd
from scipy import sparse
from sklearn.base import BaseEstimator
from sklearn.preprocessing import normalize
from sklearn.utils.validation import check_is_fitted

from segmentlab.recommend.history import PurchaseHistory, explain_by_similarity, rank_products
from segmentlab.schema import IS_RETURN


class PopularityRecommender(BaseEstimator):
    """Products bought by the most customers, overall or within the customer's segment.

    Parameters
    ----------
    by_segment : bool
        Rank by the share of the customer's segment who bought each product; customers without
        a segment get the overall ranking.
    window_days : float or None
        Count only the last this many days before the end of the fit window (None: all of it).
    """

    def __init__(self, by_segment: bool = False, window_days: float | None = None):
        self.by_segment = by_segment
        self.window_days = window_days

    def fit(self, transactions: pd.DataFrame,
            segments: pd.Series | None = None) -> PopularityRecommender:
        self.history_ = PurchaseHistory.from_transactions(
            transactions, segments if self.by_segment else None)
        return self

    def recommend(self, customers, k: int = 10, exclude_seen: bool = True,
                  segments: pd.Series | None = None) -> pd.DataFrame:
        """Top ``k`` products per customer; see :func:`history.rank_products`."""
        check_is_fitted(self, "history_")
        return rank_products(self.history_, customers, k, exclude_seen,
                             segments=segments if self.by_segment else None,
                             popularity_days=self.window_days)


class _NeighbourRecommender(BaseEstimator):
    """Shared scoring of the item-neighbour models; subclasses set ``neighbours_`` in fit."""

    _verb = "like"

    def recommend(self, customers, k: int = 10, exclude_seen: bool = True,
                  segments: pd.Series | None = None) -> pd.DataFrame:
        """Top ``k`` products per customer; see :func:`history.rank_products`."""
        check_is_fitted(self, "neighbours_")
        weights = self.history_.matrix(self.half_life_days)
        dense = self.neighbours_.toarray()
        return rank_products(
            self.history_, customers, k, exclude_seen,
            personal=lambda rows: (weights[rows] @ self.neighbours_).toarray(),
            explain=partial(explain_by_similarity, weights, dense, self.history_.products,
                            self._verb),
            segment_blend=self.segment_blend, segments=segments,
            popularity_days=self.popularity_days)


class ItemCooccurrenceRecommender(_NeighbourRecommender):
    """Products bought together with the customer's products (item-to-item co-purchase).

    Parameters
    ----------
    similarity : {"cosine", "lift"}
        ``cosine``: c_ij / sqrt(n_i n_j); ``lift``: c_ij N / (n_i n_j), where c_ij counts the
        baskets holding both products, n_i those holding i and N all baskets. Lift favours
        rare products, so ``min_cooccurrence`` matters more with it.
    basket : {"invoice", "customer"}
        What "bought together" means: in one invoice, or by one customer in the fit window.
    n_neighbours : int
        Neighbours kept per product.
    min_cooccurrence : int
        Pairs seen together in fewer baskets are not neighbours.
    half_life_days : float or None
        Weight of a past purchase halves every this many days before the end of the window.
    segment_blend : float in [0, 1]
        Weight of the segment's popularity against the customer's neighbour score.
    popularity_days : float or None
        Popularity (for the blend and for filling lists) counts only the last this many days.
    """

    _verb = "bought with"

    def __init__(self, similarity: str = "cosine", basket: str = "invoice",
                 n_neighbours: int = 50, min_cooccurrence: int = 2,
                 half_life_days: float | None = None, segment_blend: float = 0.0,
                 popularity_days: float | None = None):
        self.similarity = similarity
        self.basket = basket
        self.n_neighbours = n_neighbours
        self.min_cooccurrence = min_cooccurrence
        self.half_life_days = half_life_days
        self.segment_blend = segment_blend
        self.popularity_days = popularity_days

    def fit(self, transactions: pd.DataFrame,
            segments: pd.Series | None = None) -> ItemCooccurrenceRecommender:
        if self.similarity not in ("cosine", "lift"):
            raise ValueError(f"similarity must be 'cosine' or 'lift', got {self.similarity!r}")
        if self.basket not in ("invoice", "customer"):
            raise ValueError(f"basket must be 'invoice' or 'customer', got {self.basket!r}")
        self.history_ = PurchaseHistory.from_transactions(transactions, segments)
        baskets = self._baskets()
        together = (baskets.T @ baskets).tocsr()
        counts = together.diagonal().astype(float)
        together.setdiag(0)
        together.data[together.data < max(self.min_cooccurrence, 1)] = 0
        together.eliminate_zeros()
        pair = together.tocoo()
        if self.similarity == "cosine":
            value = pair.data / np.sqrt(counts[pair.row] * counts[pair.col])
        else:
            value = pair.data * baskets.shape[0] / (counts[pair.row] * counts[pair.col])
        similar = sparse.csr_matrix((value, (pair.row, pair.col)), shape=together.shape)
        self.neighbours_ = top_neighbours(similar, self.n_neighbours)
        return self

    def _baskets(self) -> sparse.csr_matrix:
        """Baskets x products, 1 where the basket holds the product."""
        lines = self.history_.lines
        if self.basket == "customer":
            rows, n_rows = lines["customer"].to_numpy(), len(self.history_.customers)
        else:
            rows, n_rows = pd.factorize(lines["invoice"])[0], lines["invoice"].nunique()
        ones = np.ones(len(lines))
        matrix = sparse.csr_matrix((ones, (rows, lines["product"].to_numpy())),
                                   shape=(n_rows, len(self.history_.products)))
        matrix.data[:] = 1.0  # a customer buying a product twice is still one basket
        return matrix


class Word2VecRecommender(_NeighbourRecommender):
    """Products whose word2vec vectors (learned on baskets) are close to the customer's products.

    Parameters
    ----------
    vector_size, window, epochs, sg, negative, sample, sentences, seed :
        Passed to :class:`segmentlab.features.word2vec.Word2VecProductFeatures`, which trains
        single-threaded and seeded (``min_count`` is 1, so every product gets a vector).
    n_neighbours : int
        Neighbours kept per product (cosine similarity; only positive similarities count).
    half_life_days : float or None
        Weight of a past purchase halves every this many days before the end of the window.
    segment_blend : float in [0, 1]
        Weight of the segment's popularity against the customer's neighbour score.
    popularity_days : float or None
        Popularity (for the blend and for filling lists) counts only the last this many days.
    """

    _verb = "similar to"

    def __init__(self, vector_size: int = 32, window: int = 20, epochs: int = 20, sg: int = 0,
                 negative: int = 10, sample: float = 1e-3, sentences: str = "invoice",
                 n_neighbours: int = 50, half_life_days: float | None = None,
                 segment_blend: float = 0.0, popularity_days: float | None = None,
                 seed: int = 42):
        self.vector_size = vector_size
        self.window = window
        self.epochs = epochs
        self.sg = sg
        self.negative = negative
        self.sample = sample
        self.sentences = sentences
        self.n_neighbours = n_neighbours
        self.half_life_days = half_life_days
        self.segment_blend = segment_blend
        self.popularity_days = popularity_days
        self.seed = seed

    def fit(self, transactions: pd.DataFrame,
            segments: pd.Series | None = None) -> Word2VecRecommender:
        from segmentlab.features.word2vec import Word2VecProductFeatures  # gensim loads late

        self.history_ = PurchaseHistory.from_transactions(transactions, segments)
        embedding = Word2VecProductFeatures(
            vector_size=self.vector_size, window=self.window, min_count=1, epochs=self.epochs,
            sg=self.sg, negative=self.negative, sample=self.sample, sentences=self.sentences,
            evaluate=False, seed=self.seed)
        vectors = embedding.fit(transactions[~transactions[IS_RETURN].astype(bool)])
        aligned = vectors.product_vectors_.reindex(self.history_.products, fill_value=0.0)
        unit = normalize(aligned.to_numpy(dtype=float))
        self.neighbours_ = _cosine_top_neighbours(unit, self.n_neighbours)
        return self


def top_neighbours(similar, n: int, block: int = 512) -> sparse.csr_matrix:
    """Keep the ``n`` largest positive entries of each row of a square similarity matrix
    (sparse or dense), in blocks of rows so that only ``block`` dense rows exist at once."""
    parts = []
    for start in range(0, similar.shape[0], block):
        rows = similar[start:start + block]
        rows = rows.toarray() if sparse.issparse(rows) else np.array(rows, dtype=float)
        rows[rows < 0] = 0.0
        m = min(n, rows.shape[1])
        best = np.argpartition(-rows, m - 1, axis=1)[:, :m]
        value = np.take_along_axis(rows, best, axis=1)
        owner = np.repeat(np.arange(len(rows)), m)
        keep = value.ravel() > 0
        parts.append(sparse.csr_matrix((value.ravel()[keep], (owner[keep], best.ravel()[keep])),
                                       shape=rows.shape))
    return sparse.vstack(parts).tocsr()


def _cosine_top_neighbours(unit: np.ndarray, n: int, block: int = 512) -> sparse.csr_matrix:
    """Top-``n`` cosine neighbours of each row of unit vectors, self excluded."""
    parts = []
    for start in range(0, len(unit), block):
        sims = unit[start:start + block] @ unit.T
        sims[np.arange(len(sims)), np.arange(start, start + len(sims))] = 0.0
        parts.append(top_neighbours(sims, n, block))
    return sparse.vstack(parts).tocsr()
