"""What to push and stock per segment: lift with minimum support, rising products, categories."""

from __future__ import annotations

import pandas as pd
import pytest

from segmentlab.recommend.models import PopularityRecommender
from segmentlab.recommend.segment_products import (
    SEGMENT_PRODUCT_COLUMNS,
    description_word_categories,
    segment_products,
)
from tests.conftest import clean_lines

END = pd.Timestamp("2011-12-01")
NAMES = {"P": "JUMBO BAG RED", "Q": "LUNCH BAG PINK", "R": "CAKE TIN SET", "S": "CANDLE POT",
         "T": "GOLD CLOCK"}


def shop() -> tuple[pd.DataFrame, pd.Series]:
    """Segment 'bakers' (customers 1-6) buys R a year ago and S lately; 'baggers' (7-12) buy
    P and Q all year; customer 1 alone spends a fortune on T once."""
    rows, invoice = [], 200000

    def line(customer, code, days_ago, value):
        nonlocal invoice
        invoice += 1
        date = (END - pd.Timedelta(days=days_ago)).isoformat()
        rows.append((str(invoice), code, 1, date, float(value), customer, "United Kingdom"))

    for c in range(1, 7):
        line(c, "R", 300, 10)
        line(c, "S", 10, 10)
        line(c, "P", 200, 2)
    for c in range(7, 13):
        line(c, "P", 300, 10)
        line(c, "Q", 200, 10)
        line(c, "P", 10, 10)
    line(1, "T", 150, 1000)
    frame = clean_lines(rows)
    frame["description"] = frame["stock_code"].map(NAMES)
    segments = pd.Series({c: "bakers" if c <= 6 else "baggers" for c in range(1, 13)})
    return frame, segments


def test_lift_needs_minimum_support_so_a_one_off_line_does_not_win():
    frame, segments = shop()
    out = segment_products(frame, segments, min_customers=3)
    assert list(out.columns) == SEGMENT_PRODUCT_COLUMNS
    bakers = out[(out["segment"] == "bakers") & (out["kind"] == "product_lift")]
    assert "T" not in set(bakers["stock_code"])  # one buyer, although 1000 of 1132 spent
    top = bakers.iloc[0]
    # R: 60 of the bakers' 1132 spend; 60 of everyone's 1312 spend (S ties with it).
    assert top["stock_code"] in {"R", "S"} and top["rank"] == 1
    assert top["share"] == pytest.approx(60 / 1132)
    assert top["lift"] == pytest.approx((60 / 1132) / (60 / 1312))
    assert top["n_customers"] == 6 and top["description"] == NAMES[top["stock_code"]]
    with_one = segment_products(frame, segments, min_customers=1)
    first = with_one[(with_one["segment"] == "bakers") & (with_one["kind"] == "product_lift")]
    assert first.iloc[0]["stock_code"] == "T"


def test_rising_products_compare_the_recent_share_with_the_year():
    frame, segments = shop()
    out = segment_products(frame, segments, min_customers=3, recent_days=90)
    rising = out[(out["segment"] == "bakers") & (out["kind"] == "rising_product")]
    # Lately the bakers bought only S: share 1 against 60 of 1132 over the year.
    assert rising["stock_code"].tolist() == ["S"]
    assert rising.iloc[0]["share"] == pytest.approx(1.0)
    assert rising.iloc[0]["reference_share"] == pytest.approx(60 / 1132)


def test_categories_group_descriptions_by_their_most_common_word():
    names = pd.Series(NAMES)
    categories = description_word_categories(names)
    assert categories["P"] == categories["Q"] == "BAG"  # colours and sizes are not kinds
    frame, segments = shop()
    out = segment_products(frame, segments, min_customers=3)
    baggers = out[(out["segment"] == "baggers") & (out["kind"] == "category_lift")]
    assert baggers.iloc[0]["category"] == "BAG" and pd.isna(baggers.iloc[0]["stock_code"])
    assert set(out["grouping"]) == {"description word"}
    given = segment_products(frame, segments, categories=pd.Series(
        {"P": "bags", "Q": "bags", "R": "baking", "S": "light", "T": "time"}), min_customers=3)
    assert set(given["grouping"]) == {"tfidf"}
    assert "bags" in set(given.loc[given["kind"] == "category_lift", "category"])


def test_recommended_rows_count_the_members_each_product_is_recommended_to():
    frame, segments = shop()
    model = PopularityRecommender(by_segment=True).fit(frame, segments)
    out = segment_products(frame, segments, recommender=model, k=1, min_customers=3)
    rows = out[(out["kind"] == "recommended") & (out["rank"] == 1)].set_index("segment")
    # Bakers own P, R and S; T, bought by one baker, is the segment's next product: it goes
    # to the five bakers who lack it (customer 1 gets the shop's next, Q).
    assert rows.loc["bakers", "stock_code"] == "T"
    assert rows.loc["bakers", "share"] == pytest.approx(5 / 6)
    # Baggers own P and Q: their segment has nothing else, the shop's next is R.
    assert rows.loc["baggers", "stock_code"] == "R"
