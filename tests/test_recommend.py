"""Recommenders on tiny hand-built baskets whose answers can be worked out by hand."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from sklearn.base import clone

from segmentlab.recommend.history import RECOMMENDATION_COLUMNS, PurchaseHistory
from segmentlab.recommend.models import (
    ItemCooccurrenceRecommender,
    PopularityRecommender,
    Word2VecRecommender,
    top_neighbours,
)
from segmentlab.schema import DataError
from tests.conftest import clean_lines

DAY = pd.Timestamp("2011-03-01")


def baskets(spec: dict[int, list[list[str]]], start: pd.Timestamp = DAY) -> pd.DataFrame:
    """Cleaned lines from {customer: [basket, ...]}; baskets are one day apart, in order."""
    rows, invoice = [], 100000
    for customer, their in spec.items():
        for day, basket in enumerate(their):
            invoice += 1
            date = (start + pd.Timedelta(days=day)).isoformat()
            rows += [(str(invoice), code, 1, date, 2.0, customer, "United Kingdom")
                     for code in basket]
    return clean_lines(rows)


# A is in 4 baskets, B in 3, C, D and E in 1. A-B are bought together twice, A-C once, B-D
# once: cosine(A,B) = 2/sqrt(12) = 0.577 > cosine(A,C) = 1/sqrt(4) = 0.5.
SHOP = {1: [["A", "B"]], 2: [["A", "B"]], 3: [["A", "C"]], 4: [["B", "D"]], 5: [["E"]],
        6: [["A"]]}


def test_cooccurrence_ranks_known_neighbours_and_names_the_reason():
    model = ItemCooccurrenceRecommender(min_cooccurrence=1).fit(baskets(SHOP))
    recs = model.recommend([6], k=3)
    assert list(recs.columns) == RECOMMENDATION_COLUMNS
    assert recs["stock_code"].tolist()[:2] == ["B", "C"]
    assert recs["reason"].tolist()[:2] == ["bought with A", "bought with A"]
    assert recs["rank"].tolist() == [1, 2, 3]
    # The third slot has no co-purchase signal left: it is filled from popularity.
    assert recs["reason"].iloc[2] == "popular overall" and recs["score"].iloc[2] < 1


def test_cosine_and_lift_values_match_the_hand_computation():
    cosine = ItemCooccurrenceRecommender(min_cooccurrence=1).fit(baskets(SHOP))
    products = cosine.history_.products
    a, b, c = (products.get_loc(code) for code in "ABC")
    assert cosine.neighbours_[a, b] == pytest.approx(2 / np.sqrt(12))
    assert cosine.neighbours_[a, c] == pytest.approx(0.5)
    lift = ItemCooccurrenceRecommender(similarity="lift", min_cooccurrence=1).fit(baskets(SHOP))
    n_baskets = 6
    assert lift.neighbours_[a, c] == pytest.approx(1 * n_baskets / (4 * 1))
    strict = ItemCooccurrenceRecommender(min_cooccurrence=2).fit(baskets(SHOP))
    assert strict.neighbours_[a, c] == 0 and strict.neighbours_[a, b] > 0


def test_customer_basket_counts_purchases_on_different_days_together():
    shop = {1: [["A"], ["B"]], 2: [["A"], ["B"]], 3: [["C"]], 4: [["A"]]}
    by_invoice = ItemCooccurrenceRecommender(min_cooccurrence=1).fit(baskets(shop))
    assert by_invoice.neighbours_.nnz == 0
    by_customer = ItemCooccurrenceRecommender(basket="customer", min_cooccurrence=1)
    assert by_customer.fit(baskets(shop)).recommend([4], k=1)["stock_code"].tolist() == ["B"]


def test_top_neighbours_keeps_the_largest_positive_entries_per_row():
    sims = np.array([[0.0, 0.9, 0.2, 0.5], [0.9, 0.0, -0.3, 0.1], [0.0, 0.0, 0.0, 0.0],
                     [0.5, 0.1, 0.4, 0.0]])
    kept = top_neighbours(sims, 2, block=3).toarray()
    assert kept.tolist() == [[0, 0.9, 0, 0.5], [0.9, 0, 0, 0.1], [0, 0, 0, 0], [0.5, 0, 0.4, 0]]


def test_seen_products_are_excluded_unless_asked():
    model = ItemCooccurrenceRecommender(min_cooccurrence=1).fit(baskets(SHOP))
    for customer in SHOP:
        bought = set(code for basket in SHOP[customer] for code in basket)
        recs = model.recommend([customer], k=5)
        assert not bought & set(recs["stock_code"]), customer
        assert len(recs) == 5 - len(bought)  # five products in the catalogue
    assert "A" in set(model.recommend([6], k=5, exclude_seen=False)["stock_code"])
    assert len(model.recommend([6, 999], k=50)) == 4 + 5  # k beyond the catalogue: all of it


def test_popularity_orders_by_buyers_and_breaks_ties_by_code():
    recs = PopularityRecommender().fit(baskets(SHOP)).recommend([999], k=5)
    # A and B have three buyers each, then C, D, E one each.
    assert recs["stock_code"].tolist() == ["A", "B", "C", "D", "E"]
    assert set(recs["reason"]) == {"popular overall"}


def test_popularity_window_counts_recent_buyers_only():
    shop = {1: [["A"], [], [], ["B"]], 2: [["A"], [], [], ["B"]], 3: [["A"], [], [], ["C"]]}
    recent = PopularityRecommender(window_days=2).fit(baskets(shop)).recommend([999], k=2)
    assert recent["stock_code"].tolist() == ["B", "C"]


SEGMENTED = {1: [["A", "B"]], 2: [["A", "B"]], 3: [["A", "C"]],
             11: [["D", "E"]], 12: [["D"]], 13: [["E", "D"]]}
LABELS = pd.Series({1: "shop", 2: "shop", 3: "shop", 11: "trade", 12: "trade", 13: "trade"})


def test_cold_start_customers_are_served_from_their_segment():
    model = PopularityRecommender(by_segment=True).fit(baskets(SEGMENTED), LABELS)
    new = pd.Series({900: "trade", 901: "shop"})
    recs = model.recommend([900, 901, 902], k=2, segments=new)
    top = recs.groupby("customer_id")["stock_code"].apply(list).to_dict()
    assert top == {900: ["D", "E"], 901: ["A", "B"], 902: ["A", "D"]}
    reasons = recs.groupby("customer_id")["reason"].first().to_dict()
    assert reasons == {900: "popular in segment trade", 901: "popular in segment shop",
                       902: "popular overall"}


def test_neighbour_model_serves_unknown_customers_from_the_segment_given_at_fit():
    labels = pd.concat([LABELS, pd.Series({950: "trade"})])  # 950 has no purchase yet
    model = ItemCooccurrenceRecommender(min_cooccurrence=1).fit(baskets(SEGMENTED), labels)
    assert model.recommend([950], k=2)["stock_code"].tolist() == ["D", "E"]


def test_global_popularity_ignores_segments():
    model = PopularityRecommender(by_segment=False).fit(baskets(SEGMENTED), LABELS)
    recs = model.recommend([900], k=2, segments=pd.Series({900: "trade"}))
    assert recs["stock_code"].tolist() == ["A", "D"]


def test_full_segment_blend_ranks_like_segment_popularity():
    shop = {**SEGMENTED, 14: [["A"]]}
    labels = pd.concat([LABELS, pd.Series({14: "trade"})])
    blended = ItemCooccurrenceRecommender(min_cooccurrence=1, segment_blend=1.0)
    by_segment = PopularityRecommender(by_segment=True)
    a = blended.fit(baskets(shop), labels).recommend([14], k=3)
    b = by_segment.fit(baskets(shop), labels).recommend([14], k=3)
    assert a["stock_code"].tolist() == b["stock_code"].tolist() == ["D", "E", "B"]
    own = ItemCooccurrenceRecommender(min_cooccurrence=1).fit(baskets(shop), labels)
    assert own.recommend([14], k=1)["stock_code"].tolist() == ["B"]


def test_half_life_weights_purchases_by_age():
    shop = {1: [["A"], [], ["B"]]}  # A two days before the last invoice
    history = PurchaseHistory.from_transactions(baskets(shop))
    weights = history.matrix(half_life_days=2).toarray()[0]
    products = history.products
    assert weights[products.get_loc("A")] == pytest.approx(0.5)
    assert weights[products.get_loc("B")] == pytest.approx(1.0)


def test_word2vec_neighbours_recommend_from_the_customers_family():
    rng = np.random.default_rng(0)
    families = {"bag": ["B1", "B2", "B3", "B4"], "cup": ["C1", "C2", "C3", "C4"]}
    shop = {c: [list(rng.choice(families["bag" if c % 2 else "cup"], 3, replace=False))
                for _ in range(6)] for c in range(40)}
    shop[100] = [["B1", "B2"]]
    # Skip-gram without down-sampling: with eight products every word is "frequent", and
    # down-sampling or CBOW leave too little signal to separate the two families.
    model = Word2VecRecommender(vector_size=8, epochs=30, sg=1, sample=0, n_neighbours=3, seed=1)
    recs = model.fit(baskets(shop)).recommend([100], k=2)
    assert set(recs["stock_code"]) <= {"B3", "B4"}
    assert recs["reason"].str.startswith("similar to B").all()
    again = clone(model).fit(baskets(shop)).recommend([100], k=2)
    pd.testing.assert_frame_equal(recs, again)


def test_als_recommends_from_the_customers_family():
    pytest.importorskip("implicit")
    from segmentlab.recommend.factorisation import ALSRecommender

    rng = np.random.default_rng(0)
    families = {"bag": ["B1", "B2", "B3", "B4"], "cup": ["C1", "C2", "C3", "C4"]}
    shop = {c: [list(rng.choice(families["bag" if c % 2 else "cup"], 3, replace=False))
                for _ in range(4)] for c in range(60)}
    shop[100] = [["C1", "C2"]]
    model = ALSRecommender(factors=4, iterations=10, regularization=0.1, random_state=0)
    recs = model.fit(baskets(shop)).recommend([100], k=2)
    assert set(recs["stock_code"]) == {"C3", "C4"}
    assert recs["reason"].str.match(r"like C[12]$").all()


def test_bad_inputs_give_one_line_errors():
    frame = baskets(SHOP)
    with pytest.raises(DataError, match="missing column.*stock_code"):
        PopularityRecommender().fit(frame.drop(columns="stock_code"))
    with pytest.raises(DataError, match="no purchase line"):
        PopularityRecommender().fit(frame.assign(is_return=True))
    with pytest.raises(ValueError, match="similarity must be 'cosine' or 'lift', got 'jaccard'"):
        ItemCooccurrenceRecommender(similarity="jaccard").fit(frame)
    model = PopularityRecommender().fit(frame)
    with pytest.raises(ValueError, match="k must be a positive"):
        model.recommend([1], k=0)
    with pytest.raises(ValueError, match="segment_blend must be in"):
        ItemCooccurrenceRecommender(segment_blend=1.5).fit(frame).recommend([1], k=2)


def test_no_customers_gives_an_empty_frame_with_the_columns():
    recs = PopularityRecommender().fit(baskets(SHOP)).recommend([], k=3)
    assert list(recs.columns) == RECOMMENDATION_COLUMNS and recs.empty
