"""Customer vectors from word2vec embeddings of products learned on baskets.

Determinism: gensim is reproducible only single-threaded (``workers=1``) with a fixed ``seed``.
Since gensim 4.0 the initial vectors come from ``numpy.random.default_rng(seed)``, not from
``hashfxn`` (the builtin ``hash``, which PYTHONHASHSEED randomises for str); we still pass a
CRC32 ``hashfxn`` so no code path can depend on the interpreter's hash seed. Sentences come from
a stably sorted frame, so the order of invoices in the input does not matter either (lines keep
their order within an invoice). The test suite checks that two processes with different
PYTHONHASHSEED values give identical vectors.
"""

from __future__ import annotations

import zlib
from collections.abc import Callable

import numpy as np
import pandas as pd
from gensim.models import Word2Vec
from sklearn.base import BaseEstimator, TransformerMixin, clone
from sklearn.cluster import KMeans
from sklearn.preprocessing import normalize
from sklearn.utils.validation import check_is_fitted

from segmentlab.features.tfidf import category_names, spend_shares
from segmentlab.schema import (
    AMOUNT,
    CUSTOMER_ID,
    INVOICE_DATE,
    INVOICE_NO,
    IS_RETURN,
    STOCK_CODE,
)

# gensim silently truncates longer sentences (MAX_WORDS_IN_BATCH); customer histories can be.
_MAX_SENTENCE = 10_000


def _crc32(text: str) -> int:
    """Hash that, unlike builtin ``hash`` on str, does not change with PYTHONHASHSEED."""
    return zlib.crc32(str(text).encode("utf-8"))


def product_sentences(purchases: pd.DataFrame, sentences: str = "invoice") -> list[list[str]]:
    """Stock-code sentences: one per invoice (distinct codes), or one per customer in time order.

    Parameters
    ----------
    purchases : DataFrame
        Purchase lines.
    sentences : {"invoice", "customer"}
        What one sentence is.

    Returns
    -------
    list of list of str
        Customer histories longer than gensim's 10,000-token limit are split into chunks.
    """
    if sentences not in ("invoice", "customer"):
        raise ValueError(f"sentences must be 'invoice' or 'customer', got {sentences!r}")
    key = INVOICE_NO if sentences == "invoice" else CUSTOMER_ID
    # Stable sort: the order in which an invoice's lines were entered is kept.
    order = [INVOICE_NO] if sentences == "invoice" else [CUSTOMER_ID, INVOICE_DATE, INVOICE_NO]
    lines = purchases.sort_values(order, kind="stable")
    if sentences == "invoice":
        lines = lines.drop_duplicates([INVOICE_NO, STOCK_CODE])
    codes = lines[STOCK_CODE].astype(str).to_numpy()
    starts = np.flatnonzero(np.r_[True, lines[key].to_numpy()[1:] != lines[key].to_numpy()[:-1]])
    out = []
    for group in np.split(codes, starts[1:]):
        out += [group[i:i + _MAX_SENTENCE].tolist() for i in range(0, len(group), _MAX_SENTENCE)]
    return out


class Word2VecProductFeatures(TransformerMixin, BaseEstimator):
    """Spend-weighted mean of word2vec product vectors per customer.

    Products (stock codes) bought together get similar vectors. A customer's vector is the
    spend-weighted mean of the L2-normalised vectors of the products they bought (``w2v_00``
    ...). Products unseen at fit time are ignored; a customer with none gets zeros.

    Parameters
    ----------
    vector_size, window, min_count, epochs, sg, negative, sample :
        gensim ``Word2Vec`` arguments (``sg=1`` is skip-gram). A basket is a set, so the
        window is wide (20, roughly a whole basket); CBOW (``sg=0``) is the default because
        on Online Retail it ranked held-out items nearly as well as skip-gram at a fraction
        of the training time.
    sentences : {"invoice", "customer"}
        Train on baskets, or on each customer's time-ordered purchases.
    n_categories : int or None
        If set, also cluster product vectors (KMeans) and add spend shares ``cat_00`` ...
    evaluate : bool
        Run :func:`evaluate_product_embeddings` during ``fit`` (trains a second model on the
        window before the hold-out); results come back from ``report``.
    holdout_days, eval_k, eval_max_baskets :
        Hold-out length (days), cut-off rank and basket cap of that evaluation.
    seed : int
        Seed for word2vec, KMeans and the evaluation's basket sample.
    """

    def __init__(
        self,
        vector_size: int = 32,
        window: int = 20,
        min_count: int = 1,
        epochs: int = 20,
        sg: int = 0,
        negative: int = 10,
        sample: float = 1e-3,
        sentences: str = "invoice",
        n_categories: int | None = None,
        evaluate: bool = True,
        holdout_days: int = 60,
        eval_k: int = 10,
        eval_max_baskets: int = 5000,
        seed: int = 42,
    ):
        self.vector_size = vector_size
        self.window = window
        self.min_count = min_count
        self.epochs = epochs
        self.sg = sg
        self.negative = negative
        self.sample = sample
        self.sentences = sentences
        self.n_categories = n_categories
        self.evaluate = evaluate
        self.holdout_days = holdout_days
        self.eval_k = eval_k
        self.eval_max_baskets = eval_max_baskets
        self.seed = seed

    def fit(self, transactions: pd.DataFrame, y=None) -> Word2VecProductFeatures:
        purchases = transactions[~transactions[IS_RETURN]]
        self.product_vectors_ = self._train(purchases)
        self.product_categories_ = None
        if self.n_categories:
            kmeans = KMeans(self.n_categories, n_init=10, random_state=self.seed)
            labels = kmeans.fit_predict(normalize(self.product_vectors_.to_numpy()))
            self.product_categories_ = pd.Series(labels, index=self.product_vectors_.index)
        return self

    def transform(self, transactions: pd.DataFrame) -> pd.DataFrame:
        purchases = transactions[~transactions[IS_RETURN]]
        codes = purchases[STOCK_CODE].astype(str).to_numpy()
        row = self.product_vectors_.index.get_indexer(codes)
        known = row >= 0
        vectors = normalize(self.product_vectors_.to_numpy())[row[known]]
        weights = purchases[AMOUNT].to_numpy()[known]
        customers = np.sort(purchases[CUSTOMER_ID].unique())
        owner = np.searchsorted(customers, purchases[CUSTOMER_ID].to_numpy()[known])
        total = np.zeros((len(customers), vectors.shape[1]))
        np.add.at(total, owner, vectors * weights[:, None])
        spend = np.bincount(owner, weights=weights, minlength=len(customers))
        mean = np.divide(total, spend[:, None], out=np.zeros_like(total),
                         where=spend[:, None] > 0)
        index = pd.Index(customers, name=CUSTOMER_ID)
        out = pd.DataFrame(mean, index=index, columns=self._vector_names())
        if self.product_categories_ is not None:
            category = pd.Series(self.product_categories_.reindex(codes).to_numpy(),
                                 index=purchases.index)
            out = out.join(spend_shares(purchases, category, self.n_categories))
        return out

    def get_feature_names_out(self, input_features=None) -> np.ndarray:
        names = self._vector_names()
        if self.n_categories:
            names += category_names(self.n_categories)
        return np.array(names, dtype=object)

    def report(self, transactions: pd.DataFrame | None = None
               ) -> tuple[dict[str, float], dict[str, pd.DataFrame]]:
        """Hold-out embedding metrics (when ``evaluate`` and given the fit lines) and no tables.

        The evaluation trains a second embedding on the lines before the hold-out period, so it
        runs here, on demand, not in ``fit``.

        Parameters
        ----------
        transactions : DataFrame, optional
            The lines the set was fitted on; without them there is no hold-out evaluation.

        Returns
        -------
        metrics : dict
            See :func:`evaluate_product_embeddings`, plus ``products/n_products``.
        tables : dict
            Empty.
        """
        check_is_fitted(self, "product_vectors_")
        evaluation = {}
        if self.evaluate and transactions is not None:
            purchases = transactions[~transactions[IS_RETURN]]
            probe = clone(self).set_params(evaluate=False, n_categories=None)
            evaluation = evaluate_product_embeddings(
                purchases, lambda train: probe.fit(train).product_vectors_,
                holdout_days=self.holdout_days, k=self.eval_k, seed=self.seed,
                max_baskets=self.eval_max_baskets)
        return {**evaluation, "products/n_products": float(len(self.product_vectors_))}, {}

    def _vector_names(self) -> list[str]:
        return [f"w2v_{i:02d}" for i in range(self.vector_size)]

    def _train(self, purchases: pd.DataFrame) -> pd.DataFrame:
        """Product vectors (index: stock code) from a single-threaded, seeded Word2Vec."""
        model = Word2Vec(
            product_sentences(purchases, self.sentences), vector_size=self.vector_size,
            window=self.window, min_count=self.min_count, epochs=self.epochs, sg=self.sg,
            negative=self.negative, sample=self.sample, seed=self.seed, workers=1,
            hashfxn=_crc32,
        )
        return pd.DataFrame(model.wv.vectors.astype(float), index=pd.Index(
            model.wv.index_to_key, name=STOCK_CODE))


def evaluate_product_embeddings(
    transactions: pd.DataFrame,
    make_model: Callable[[pd.DataFrame], pd.DataFrame],
    holdout_days: int = 60,
    k: int = 10,
    seed: int = 42,
    max_baskets: int = 5000,
) -> dict[str, float]:
    """Next-item hit rate of product vectors on later baskets, against popularity.

    Vectors are learned on purchases before (last date - ``holdout_days``). For each later
    invoice with at least two known products, one product is hidden (seeded choice) and all
    known products except the basket's other items are ranked by cosine similarity to the mean
    of the other items' normalised vectors; the baseline ranks them by how many training
    invoices contain them. Ties count half.

    Parameters
    ----------
    transactions : DataFrame
        Cleaned invoice lines (returns are ignored).
    make_model : callable
        Maps training purchases to a DataFrame of product vectors indexed by stock code.
    holdout_days : int
        Length of the evaluation window at the end of the data, in days.
    k : int
        A hit is the hidden item ranked within the top ``k``.
    seed : int
        Seed of the basket sample and of the hidden-item choice.
    max_baskets : int
        At most this many evaluation baskets (seeded sample).

    Returns
    -------
    dict
        ``products/hit_rate_at_{k}``, ``products/popularity_hit_rate_at_{k}``,
        ``products/variant_pair_median_rank`` (rank 1 = nearest neighbour; NaN without pairs),
        ``products/n_eval_baskets`` and ``products/n_variant_pairs``. Rates are NaN when there
        is no training window or no evaluation basket.
    """
    purchases = transactions[~transactions[IS_RETURN]]
    cutoff = purchases[INVOICE_DATE].max() - pd.Timedelta(days=holdout_days)
    train = purchases[purchases[INVOICE_DATE] < cutoff]
    if train.empty:  # data shorter than the hold-out: nothing to learn from, nothing to score
        nan = float("nan")
        return {f"products/hit_rate_at_{k}": nan, f"products/popularity_hit_rate_at_{k}": nan,
                "products/variant_pair_median_rank": nan, "products/n_eval_baskets": 0.0,
                "products/n_variant_pairs": 0.0}
    vectors = make_model(train)
    unit = normalize(vectors.to_numpy(dtype=float))
    codes = vectors.index.astype(str)
    popularity = (train.drop_duplicates([INVOICE_NO, STOCK_CODE])[STOCK_CODE].astype(str)
                  .value_counts().reindex(codes, fill_value=0).to_numpy(dtype=float))
    baskets = _holdout_baskets(purchases[purchases[INVOICE_DATE] >= cutoff], codes,
                               max_baskets, np.random.default_rng(seed))
    hits = np.zeros(2)
    for items, hidden in baskets:
        context = items[items != hidden]
        query = unit[context].mean(axis=0)
        for j, scores in enumerate((unit @ query, popularity.copy())):
            scores[context] = -np.inf
            hits[j] += _rank(scores, hidden) < k
    pairs_rank, n_pairs = _variant_pair_median_rank(unit, codes)
    n = max(len(baskets), 1)
    return {
        f"products/hit_rate_at_{k}": float(hits[0] / n) if baskets else float("nan"),
        f"products/popularity_hit_rate_at_{k}": float(hits[1] / n) if baskets else float("nan"),
        "products/variant_pair_median_rank": pairs_rank,
        "products/n_eval_baskets": float(len(baskets)),
        "products/n_variant_pairs": float(n_pairs),
    }


def _holdout_baskets(later: pd.DataFrame, codes: pd.Index, max_baskets: int,
                     rng: np.random.Generator) -> list[tuple[np.ndarray, int]]:
    """(known product rows, hidden row) for a seeded sample of baskets with >= 2 known items."""
    rows = codes.get_indexer(later[STOCK_CODE].astype(str))
    lines = pd.DataFrame({"invoice": later[INVOICE_NO].to_numpy(), "row": rows})
    lines = lines[lines["row"] >= 0].drop_duplicates()
    groups = [g.to_numpy() for _, g in lines.groupby("invoice", sort=True)["row"] if len(g) >= 2]
    if len(groups) > max_baskets:
        groups = [groups[i] for i in np.sort(rng.choice(len(groups), max_baskets, replace=False))]
    return [(g, int(rng.choice(g))) for g in groups]


def _rank(scores: np.ndarray, target: int) -> float:
    """0-based rank of ``target`` by descending score, ties counted half."""
    s = scores[target]
    return float((scores > s).sum() + 0.5 * ((scores == s).sum() - 1))


def _variant_pair_median_rank(unit: np.ndarray, codes: pd.Index) -> tuple[float, int]:
    """Median rank of a variant (85123B) among the neighbours of its sibling (85123A)."""
    parts = codes.str.extract(r"^(\d{5})([A-Za-z]+)$")[0]
    stems = pd.Series(np.arange(len(codes)), index=parts.to_numpy())[parts.notna().to_numpy()]
    ranks = []
    for _, members in stems.groupby(level=0):
        for a in members:
            sims = unit @ unit[a]
            sims[a] = -np.inf  # a product is not its own neighbour
            ranks += [1 + _rank(sims, b) for b in members if b != a]
    return (float(np.median(ranks)) if ranks else float("nan")), len(ranks)
