"""What to push and stock per segment: over-represented, rising and recommended products.

Everything is measured in spend (the ``amount`` of purchase lines; returns are ignored). A
product's *share* in a segment is its part of the segment's spend; its *lift* is that share over
its share of all customers' spend. Lift alone crowns a product one customer bought once, so a
product or category needs ``min_customers`` distinct buyers in the segment to be listed.
Categories come from a fitted TF-IDF feature set when one is given, else from the most common
word of each description (``grouping`` says which).
"""

from __future__ import annotations

import re

import numpy as np
import pandas as pd

from segmentlab.features.tfidf import DEFAULT_DROP_TOKENS
from segmentlab.recommend.history import PurchaseHistory
from segmentlab.schema import AMOUNT, CUSTOMER_ID, DESCRIPTION, INVOICE_DATE, IS_RETURN, STOCK_CODE

#: Columns of the frame behind ``recommend/segment_products.csv``.
SEGMENT_PRODUCT_COLUMNS = ["segment", "kind", "rank", STOCK_CODE, DESCRIPTION, "category",
                           "share", "reference_share", "lift", "n_customers", "grouping"]
_STOP = frozenset(DEFAULT_DROP_TOKENS) | {"of", "and", "the", "with", "in", "for", "set", "a",
                                          "to", "s", "t", "n", "assorted", "design", "retrospot"}
_WORD = re.compile(r"[a-z]+")


def segment_products(transactions: pd.DataFrame, segments: pd.Series, recommender=None,
                     categories: pd.Series | None = None, top: int = 10, min_customers: int = 5,
                     recent_days: int = 90, year_days: int = 365, k: int = 10) -> pd.DataFrame:
    """Per segment: products and categories with the highest lift, the rising ones, the
    most recommended ones.

    Parameters
    ----------
    transactions : DataFrame
        Cleaned invoice lines (the window the segments describe).
    segments : Series
        Segment label per customer id; customers without one only count in the reference.
    recommender : fitted recommender or None
        If given, its ``k`` recommendations to every segment member give the ``recommended``
        rows (share = members it is recommended to).
    categories : Series or None
        Category label per stock code (e.g. :func:`tfidf_product_categories`); None groups
        products by the most common word of their description.
    top : int
        Rows per segment and kind.
    min_customers : int
        Distinct buyers a product or category needs within the segment (and, for rising
        rows, within the recent window) to be listed.
    recent_days, year_days : int
        Rising = share of the segment's spend in the last ``recent_days`` over its share in
        the last ``year_days``, both ending at the last invoice.
    k : int
        Recommendations per customer for the ``recommended`` rows.

    Returns
    -------
    DataFrame
        ``SEGMENT_PRODUCT_COLUMNS``; ``kind`` is ``product_lift``, ``category_lift``,
        ``rising_product``, ``rising_category`` or ``recommended``, ``rank`` 1 = strongest.
        ``reference_share`` is the share among all customers (lift rows), over the year
        (rising rows) or among all customers' recommendations (recommended rows).
    """
    bought = transactions[~transactions[IS_RETURN].astype(bool)]
    codes = bought[STOCK_CODE].astype(str)
    names = PurchaseHistory.from_transactions(transactions).descriptions
    grouping = "tfidf" if categories is not None else "description word"
    if categories is None:
        categories = description_word_categories(names)
    lines = pd.DataFrame({
        "segment": segments.reindex(bought[CUSTOMER_ID]).to_numpy(),
        CUSTOMER_ID: bought[CUSTOMER_ID].to_numpy(), STOCK_CODE: codes.to_numpy(),
        "category": categories.reindex(codes).fillna("other").to_numpy(),
        INVOICE_DATE: bought[INVOICE_DATE].to_numpy(), AMOUNT: bought[AMOUNT].to_numpy()})
    end = lines[INVOICE_DATE].max()
    recent = lines[INVOICE_DATE] > end - pd.Timedelta(days=recent_days)
    year = lines[INVOICE_DATE] > end - pd.Timedelta(days=year_days)
    parts = [
        _lift(lines, STOCK_CODE, lines, min_customers, top).assign(kind="product_lift"),
        _lift(lines, "category", lines, min_customers, top).assign(kind="category_lift"),
        _lift(lines[recent], STOCK_CODE, lines[year], min_customers, top, by_segment=True)
        .assign(kind="rising_product"),
        _lift(lines[recent], "category", lines[year], min_customers, top, by_segment=True)
        .assign(kind="rising_category"),
    ]
    if recommender is not None:
        parts.append(_recommended(recommender, segments, k, top).assign(kind="recommended"))
    out = pd.concat(parts, ignore_index=True)
    out[DESCRIPTION] = out[STOCK_CODE].map(names)
    is_product = out[STOCK_CODE].notna()
    out.loc[is_product, "category"] = out.loc[is_product, STOCK_CODE].map(categories)
    out["grouping"] = grouping
    return out.reindex(columns=SEGMENT_PRODUCT_COLUMNS)


def description_word_categories(descriptions: pd.Series) -> pd.Series:
    """Category per stock code: the word of its description found in most descriptions.

    Colour and size words and a few fillers ("set", "of") are skipped, so "JUMBO BAG RED
    RETROSPOT" goes to ``BAG``; a description without another word goes to ``OTHER``.
    """
    words = [[w for w in _WORD.findall(str(text).lower()) if w not in _STOP and len(w) > 2]
             for text in descriptions.fillna("")]
    frequency = pd.Series([w for ws in words for w in set(ws)], dtype=object).value_counts()
    labels = [max(ws, key=lambda w: (frequency[w], -ws.index(w))).upper() if ws else "OTHER"
              for ws in words]
    return pd.Series(labels, index=descriptions.index, name="category")


def tfidf_product_categories(tfidf, descriptions: pd.Series) -> pd.Series:
    """Category label per stock code from a fitted ``TfidfCategoryFeatures``.

    Parameters
    ----------
    tfidf : TfidfCategoryFeatures
        Fitted feature set (its ``category_labels_`` name the categories).
    descriptions : Series
        Description per stock code.
    """
    labels = np.asarray(tfidf.category_labels_, dtype=object)
    return pd.Series(labels[tfidf.categories(descriptions).to_numpy().astype(int)],
                     index=descriptions.index, name="category")


def _lift(lines: pd.DataFrame, key: str, reference: pd.DataFrame, min_customers: int,
          top: int, by_segment: bool = False) -> pd.DataFrame:
    """Top ``top`` keys per segment by share of segment spend over the reference share.

    The reference is everyone's spend (``by_segment`` False) or the same segment's spend in
    ``reference`` (rising rows).
    """
    mine = lines.dropna(subset=["segment"])
    spend = mine.groupby(["segment", key])[AMOUNT].sum()
    share = spend / spend.groupby(level="segment").transform("sum")
    buyers = mine.groupby(["segment", key])[CUSTOMER_ID].nunique()
    if by_segment:
        ref = reference.dropna(subset=["segment"]).groupby(["segment", key])[AMOUNT].sum()
        ref = (ref / ref.groupby(level="segment").transform("sum")).reindex(share.index)
    else:
        total = reference.groupby(key)[AMOUNT].sum()
        ref = pd.Series((total / total.sum()).reindex(share.index.get_level_values(key))
                        .to_numpy(), index=share.index)
    table = pd.DataFrame({"share": share, "reference_share": ref, "n_customers": buyers})
    table["lift"] = table["share"] / table["reference_share"]
    table = table[(table["n_customers"] >= min_customers) & (table["share"] > 0)
                  & np.isfinite(table["lift"])].reset_index()
    table = table.sort_values(["segment", "lift", "share"], ascending=[True, False, False],
                              kind="stable").groupby("segment").head(top)
    table["rank"] = table.groupby("segment").cumcount() + 1
    if key == "category":
        table[STOCK_CODE] = np.nan
    return table


def _recommended(recommender, segments: pd.Series, k: int, top: int) -> pd.DataFrame:
    """Products recommended to the largest share of each segment's members."""
    recs = recommender.recommend(segments.index.to_numpy(), k, segments=segments)
    recs["segment"] = segments.reindex(recs[CUSTOMER_ID]).to_numpy()
    members = segments.value_counts()
    counts = recs.groupby(["segment", STOCK_CODE])[CUSTOMER_ID].nunique()
    share = counts / members.reindex(counts.index.get_level_values("segment")).to_numpy()
    overall = recs.groupby(STOCK_CODE)[CUSTOMER_ID].nunique() / len(segments)
    ref = overall.reindex(counts.index.get_level_values(STOCK_CODE)).to_numpy()
    table = pd.DataFrame({"share": share, "reference_share": ref, "n_customers": counts})
    table["lift"] = table["share"] / table["reference_share"]
    table = table.reset_index().sort_values(["segment", "share", "lift"],
                                            ascending=[True, False, False], kind="stable")
    table = table.groupby("segment").head(top)
    table["rank"] = table.groupby("segment").cumcount() + 1
    return table
