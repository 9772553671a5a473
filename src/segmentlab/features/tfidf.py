"""Spend shares over product categories found by clustering TF-IDF vectors of descriptions."""

from __future__ import annotations

import re
from collections.abc import Sequence

import numpy as np
import pandas as pd
from sklearn.base import BaseEstimator, TransformerMixin
from sklearn.cluster import KMeans
from sklearn.decomposition import TruncatedSVD
from sklearn.feature_extraction.text import TfidfVectorizer
from sklearn.metrics import silhouette_score
from sklearn.preprocessing import normalize
from sklearn.utils.validation import check_is_fitted

from segmentlab.schema import AMOUNT, CUSTOMER_ID, DESCRIPTION, IS_RETURN

#: Colour and size words: they say how a product looks, not what it is, and would otherwise
#: pull "red lunch bag" and "red heart decoration" into one category.
DEFAULT_DROP_TOKENS = (
    "red", "pink", "blue", "white", "black", "green", "yellow", "purple", "orange", "ivory",
    "cream", "gold", "silver", "brown", "grey", "gray", "turquoise", "lilac", "pastel", "natural",
    "small", "large", "jumbo", "mini", "medium", "big", "giant", "tiny", "sml", "lge",
)

_NON_LETTERS = re.compile(r"[^a-z]+")


def _clean_descriptions(descriptions: pd.Series, drop_tokens: frozenset[str]) -> pd.Series:
    """Lower-case, letters only (sizes like "12" and "3x" carry no kind), without drop_tokens."""
    def clean(text: str) -> str:
        words = _NON_LETTERS.sub(" ", text.lower()).split()
        return " ".join(w for w in words if w not in drop_tokens)
    # A few thousand distinct descriptions repeat over ~400k lines: clean each once.
    codes, uniques = pd.factorize(descriptions.fillna("").astype(str))
    cleaned = np.array([clean(text) for text in uniques] + [""], dtype=object)
    return pd.Series(cleaned[codes], index=descriptions.index, dtype=object)


def _frequent_words(texts: Sequence[str], n: int = 3) -> list[str]:
    """The ``n`` words found in most of ``texts`` (ties broken alphabetically)."""
    counts = pd.Series([w for t in texts for w in set(t.split())], dtype=str).value_counts()
    return counts.rename_axis("w").reset_index().sort_values(
        ["count", "w"], ascending=[False, True])["w"].head(n).tolist()


def category_names(n_categories: int) -> list[str]:
    """Column names ``cat_00`` ... for ``n_categories`` categories."""
    return [f"cat_{i:02d}" for i in range(n_categories)]


def spend_shares(purchases: pd.DataFrame, category: pd.Series, n_categories: int) -> pd.DataFrame:
    """Share of each customer's spend per category (rows sum to 1; NaN category lines ignored).

    Parameters
    ----------
    purchases : DataFrame
        Purchase lines with ``customer_id`` and ``amount``.
    category : Series of int
        Category of each line, aligned with ``purchases``; NaN for lines without one.
    n_categories : int
        Number of categories, so absent categories still get a column of zeros.

    Returns
    -------
    DataFrame
        Indexed by every ``customer_id`` in ``purchases``; a customer none of whose lines has
        a category gets a row of zeros.
    """
    customers = pd.Index(np.sort(purchases[CUSTOMER_ID].unique()), name=CUSTOMER_ID)
    known = category.notna().to_numpy()
    if not known.any():
        return pd.DataFrame(0.0, index=customers, columns=category_names(n_categories))
    spend = pd.crosstab(
        purchases[CUSTOMER_ID].to_numpy()[known], category.to_numpy()[known].astype(int),
        values=purchases[AMOUNT].to_numpy()[known], aggfunc="sum",
    ).reindex(index=customers, columns=range(n_categories)).fillna(0.0)
    total = spend.sum(axis=1)
    shares = spend.div(total.where(total > 0), axis=0).fillna(0.0)
    shares.columns = category_names(n_categories)
    return shares.astype(float)


class TfidfCategoryFeatures(TransformerMixin, BaseEstimator):
    """Share of each customer's spend in product categories learned from descriptions.

    The unique cleaned descriptions of purchased products are TF-IDF vectorised, optionally
    reduced by truncated SVD (latent semantic analysis), L2-normalised and clustered by KMeans
    into ``n_categories`` categories. A description first seen at transform time is assigned
    to the nearest category through the fitted vectoriser.

    Parameters
    ----------
    n_categories : int
        Number of product categories (columns ``cat_00`` ...).
    analyzer : {"word", "char_wb"}
        Word n-grams, or character n-grams within word boundaries.
    ngram_range : list of two ints
        Smallest and largest n-gram length (a list, since YAML has no tuples).
    stop_words : "english", list of str or None
        Passed to the vectoriser; only used by the word analyzer.
    drop_tokens : list of str or None
        Words removed from descriptions before vectorising; by default colours and sizes.
    min_df : int
        Ignore n-grams found in fewer unique descriptions.
    svd_components : int or None
        Dimensions kept by truncated SVD before clustering; None clusters raw TF-IDF.
    n_init : int
        KMeans restarts.
    silhouette_sample_size : int
        Products sampled (seeded) for the product-level cosine silhouette in ``report``.
    random_state : int
        Seed for SVD, KMeans and the silhouette sample.
    """

    def __init__(
        self,
        n_categories: int = 12,
        analyzer: str = "word",
        ngram_range: Sequence[int] = (1, 2),
        stop_words: str | Sequence[str] | None = "english",
        drop_tokens: Sequence[str] | None = DEFAULT_DROP_TOKENS,
        min_df: int = 2,
        svd_components: int | None = 20,
        n_init: int = 10,
        silhouette_sample_size: int = 3000,
        random_state: int = 42,
    ):
        self.n_categories = n_categories
        self.analyzer = analyzer
        self.ngram_range = ngram_range
        self.stop_words = stop_words
        self.drop_tokens = drop_tokens
        self.min_df = min_df
        self.svd_components = svd_components
        self.n_init = n_init
        self.silhouette_sample_size = silhouette_sample_size
        self.random_state = random_state

    def fit(self, transactions: pd.DataFrame, y=None) -> TfidfCategoryFeatures:
        purchases = transactions[~transactions[IS_RETURN]]
        texts = _clean_descriptions(purchases[DESCRIPTION], frozenset(self.drop_tokens or ()))
        spend = purchases[AMOUNT].groupby(texts.to_numpy()).sum()
        products = spend.index.to_numpy()
        if len(products) < self.n_categories:
            raise ValueError(f"{len(products)} distinct descriptions, fewer than "
                             f"n_categories={self.n_categories}")
        self.vectorizer_ = TfidfVectorizer(
            analyzer=self.analyzer, ngram_range=tuple(self.ngram_range), min_df=self.min_df,
            stop_words=self.stop_words if self.analyzer == "word" else None,
        )
        tfidf = self.vectorizer_.fit_transform(products)
        self.svd_ = None
        if self.svd_components:
            # TruncatedSVD needs fewer components than features; tiny vocabularies get fewer.
            k = min(self.svd_components, tfidf.shape[1] - 1, len(products) - 1)
            if k >= 2:
                self.svd_ = TruncatedSVD(k, random_state=self.random_state).fit(tfidf)
        space = self._embed(tfidf)
        self.kmeans_ = KMeans(self.n_categories, n_init=self.n_init,
                              random_state=self.random_state).fit(space)
        self.product_categories_ = pd.Series(self.kmeans_.labels_, index=products, name="category")
        self.silhouette_ = self._silhouette(space, self.kmeans_.labels_)
        self.categories_table_ = self._describe(tfidf, spend)
        self.category_labels_ = self.categories_table_["label"].tolist()
        return self

    def transform(self, transactions: pd.DataFrame) -> pd.DataFrame:
        purchases = transactions[~transactions[IS_RETURN]]
        return spend_shares(purchases, self.categories(purchases[DESCRIPTION]), self.n_categories)

    def categories(self, descriptions: pd.Series) -> pd.Series:
        """Category number (0..n_categories-1) of each description, index kept.

        Descriptions unseen in ``fit`` go to the nearest category in the fitted space.
        """
        check_is_fitted(self, "kmeans_")
        texts = _clean_descriptions(descriptions, frozenset(self.drop_tokens or ()))
        lookup = self.product_categories_
        unseen = pd.Index(texts.unique()).difference(lookup.index)
        if len(unseen):
            labels = self.kmeans_.predict(self._embed(self.vectorizer_.transform(unseen)))
            lookup = pd.concat([lookup, pd.Series(labels, index=unseen)])
        return pd.Series(lookup.reindex(texts.to_numpy()).to_numpy(), index=descriptions.index,
                         name="category")

    def get_feature_names_out(self, input_features=None) -> np.ndarray:
        return np.array(category_names(self.n_categories), dtype=object)

    def report(self, transactions: pd.DataFrame | None = None
               ) -> tuple[dict[str, float], dict[str, pd.DataFrame]]:
        """Product-level silhouette and a table describing each category.

        Returns
        -------
        metrics : dict
            ``products/silhouette`` (cosine, on the clustered space) and ``products/n_categories``.
        tables : dict
            ``tfidf_categories``: per category its label, size, top 10 terms, five example
            descriptions (highest spend first) and share of spend in the fit window.
        """
        metrics = {"products/silhouette": self.silhouette_,
                   "products/n_categories": float(self.n_categories)}
        return metrics, {"tfidf_categories": self.categories_table_.copy()}

    def _embed(self, tfidf) -> np.ndarray:
        """Map TF-IDF rows to the L2-normalised space KMeans clusters."""
        reduced = self.svd_.transform(tfidf) if self.svd_ is not None else tfidf
        return normalize(reduced)

    def _silhouette(self, space, labels: np.ndarray) -> float:
        """Cosine silhouette on a seeded sample of products (O(n^2) otherwise)."""
        n = space.shape[0]
        if len(np.unique(labels)) < 2 or n <= self.n_categories:
            return float("nan")
        size = min(self.silhouette_sample_size, n)
        return float(silhouette_score(space, labels, metric="cosine", sample_size=size,
                                      random_state=self.random_state))

    def _describe(self, tfidf, spend: pd.Series) -> pd.DataFrame:
        """One row per category: label from top terms, size, examples, share of spend."""
        terms = self.vectorizer_.get_feature_names_out()
        labels = self.kmeans_.labels_
        rows = []
        for c in range(self.n_categories):
            members = labels == c
            # Mean TF-IDF weight within the category ranks its characteristic terms.
            weight = np.asarray(tfidf[members].mean(axis=0)).ravel() if members.any() else []
            top = [terms[i] for i in np.argsort(-np.asarray(weight), kind="stable")[:10]
                   if weight[i] > 0]
            words = [t for t in top if " " not in t] or top
            if self.analyzer != "word":  # character n-grams make no readable label
                words = _frequent_words(spend.index[members])
            examples = spend[members].sort_values(ascending=False, kind="stable").index[:5]
            rows.append({
                "category": category_names(self.n_categories)[c],
                "label": "|".join(sorted(words[:3])) or f"category_{c}",
                "size": int(members.sum()),
                "spend_share": float(spend[members].sum() / spend.sum()),
                "top_terms": ", ".join(top),
                "examples": " / ".join(examples),
            })
        return pd.DataFrame(rows)
