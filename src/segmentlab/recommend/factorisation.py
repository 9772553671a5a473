"""Implicit-feedback matrix factorisation (ALS from the ``implicit`` package).

``implicit`` is imported only in ``fit``. The fitted estimator keeps plain NumPy factor
matrices, so a pickled model recommends without ``implicit`` installed. Threads are pinned
(``n_threads``, default 1): ``implicit`` would otherwise start one per core, and its BLAS calls
are limited too, since OpenBLAS threads spinning against another busy process slow everything.
"""

from __future__ import annotations

from functools import partial

import numpy as np
import pandas as pd
from sklearn.base import BaseEstimator
from sklearn.utils.validation import check_is_fitted
from threadpoolctl import threadpool_limits

from segmentlab.recommend.history import PurchaseHistory, explain_by_similarity, rank_products


class ALSRecommender(BaseEstimator):
    """Customer and product factors from alternating least squares on purchase counts.

    The confidence that a customer likes a product is ``1 + alpha * w``, where ``w`` is the
    number of invoices holding it (recency-weighted when ``half_life_days`` is set), as in
    Hu, Koren and Volinsky (2008). A customer's score for a product is the dot product of their
    factors.

    Parameters
    ----------
    factors : int
        Latent dimensions.
    regularization : float
        L2 penalty on the factors.
    alpha : float
        Confidence scale of a purchase.
    iterations : int
        ALS sweeps.
    log_counts : bool
        Use ``log1p`` of the invoice counts, so a product bought weekly does not dominate.
    half_life_days : float or None
        Weight of a past purchase halves every this many days before the end of the window.
    segment_blend : float in [0, 1]
        Weight of the segment's popularity against the customer's factor score.
    popularity_days : float or None
        Popularity (for the blend and for filling lists) counts only the last this many days.
    random_state : int
        Seed of the factor initialisation.
    n_threads : int
        Threads for ``implicit`` and BLAS.
    """

    def __init__(self, factors: int = 64, regularization: float = 0.05, alpha: float = 10.0,
                 iterations: int = 15, log_counts: bool = True,
                 half_life_days: float | None = None, segment_blend: float = 0.0,
                 popularity_days: float | None = None,
                 random_state: int = 42, n_threads: int = 1):
        self.factors = factors
        self.regularization = regularization
        self.alpha = alpha
        self.iterations = iterations
        self.log_counts = log_counts
        self.half_life_days = half_life_days
        self.segment_blend = segment_blend
        self.popularity_days = popularity_days
        self.random_state = random_state
        self.n_threads = n_threads

    def fit(self, transactions: pd.DataFrame, segments: pd.Series | None = None) -> ALSRecommender:
        try:
            from implicit.als import AlternatingLeastSquares
        except ImportError:
            raise ImportError("ALSRecommender needs the 'implicit' package (pip install "
                              "implicit); or choose another recommender") from None
        self.history_ = PurchaseHistory.from_transactions(transactions, segments)
        weights = self.history_.matrix(self.half_life_days).astype(np.float32)
        if self.log_counts:
            weights.data = np.log1p(weights.data)
        model = AlternatingLeastSquares(
            factors=self.factors, regularization=self.regularization, alpha=self.alpha,
            iterations=self.iterations, random_state=self.random_state,
            num_threads=self.n_threads, use_gpu=False)
        with threadpool_limits(self.n_threads):
            model.fit(weights.tocsr(), show_progress=False)
        self.customer_factors_ = np.asarray(model.user_factors, dtype=float)
        self.product_factors_ = np.asarray(model.item_factors, dtype=float)
        return self

    def recommend(self, customers, k: int = 10, exclude_seen: bool = True,
                  segments: pd.Series | None = None) -> pd.DataFrame:
        """Top ``k`` products per customer; see :func:`history.rank_products`.

        The reason names the past purchase whose factors have the largest dot product with the
        recommended product's ("like 85123A").
        """
        check_is_fitted(self, "product_factors_")
        weights = self.history_.matrix()
        similar = self.product_factors_ @ self.product_factors_.T
        return rank_products(
            self.history_, customers, k, exclude_seen,
            personal=lambda rows: self.customer_factors_[rows] @ self.product_factors_.T,
            explain=partial(explain_by_similarity, weights, similar, self.history_.products,
                            "like"),
            segment_blend=self.segment_blend, segments=segments,
            popularity_days=self.popularity_days)
