"""Out-of-time scoring of recommenders: metrics on known rankings, coverage, no leakage."""

from __future__ import annotations

import os

import numpy as np
import pandas as pd
import pytest

from segmentlab.recommend.evaluation import (
    bootstrap_interval,
    evaluate_recommenders,
    paired_ratio_interval,
    ranking_metrics,
    recommendation_cutoffs,
)
from segmentlab.recommend.models import ItemCooccurrenceRecommender, PopularityRecommender
from tests.test_recommend import baskets

CUTOFF = pd.Timestamp("2011-03-10")


def shop_with_future() -> pd.DataFrame:
    """Before the cutoff: A-B and C-D pairs. After it: customers buy the partner product."""
    before = baskets({1: [["A", "B"]], 2: [["A", "B"]], 3: [["C", "D"]], 4: [["C", "D"]],
                      5: [["A"]], 6: [["C"]], 7: [["E"]], 9: [["B"]]})
    after = baskets({5: [["B", "A"]], 6: [["D"]], 7: [["E"]], 8: [["A", "F"]]},
                    start=CUTOFF + pd.Timedelta(days=1))
    after["invoice_no"] = "9" + after["invoice_no"]
    return pd.concat([before, after], ignore_index=True)


def test_metrics_on_a_known_ranking():
    recs = pd.DataFrame({"customer_id": [1, 1, 1, 2, 2], "rank": [1, 2, 3, 1, 2],
                         "stock_code": ["X", "Y", "Z", "X", "Y"]})
    relevant = pd.DataFrame({"customer_id": [1, 1, 2, 3], "stock_code": ["Y", "W", "Q", "X"]})
    out = ranking_metrics(recs, relevant, k=3)
    assert out.loc[1, "hits"] == 1 and out.loc[1, "recall"] == 0.5 and out.loc[1, "hit"] == 1
    ideal = 1 + 1 / np.log2(3)
    assert out.loc[1, "ndcg"] == pytest.approx((1 / np.log2(3)) / ideal)
    assert out.loc[2, ["hits", "hit", "recall", "ndcg"]].tolist() == [0, 0, 0.0, 0.0]
    assert out.loc[3, "recall"] == 0.0  # no list at all scores zero, it is not dropped
    assert ranking_metrics(recs, relevant, k=1).loc[1, "hits"] == 0  # Y is at rank 2


def test_perfect_ranking_has_ndcg_one():
    recs = pd.DataFrame({"customer_id": [1, 1], "rank": [1, 2], "stock_code": ["A", "B"]})
    relevant = pd.DataFrame({"customer_id": [1, 1, 1], "stock_code": ["A", "B", "C"]})
    out = ranking_metrics(recs, relevant, k=2)
    assert out.loc[1, "ndcg"] == pytest.approx(1.0)
    assert out.loc[1, "recall"] == pytest.approx(2 / 3)


def test_evaluation_scores_new_products_of_returning_and_new_customers():
    result = evaluate_recommenders(
        shop_with_future(), {"cooc": ItemCooccurrenceRecommender(min_cooccurrence=1),
                             "popularity": PopularityRecommender()},
        CUTOFF, horizon_days=30, k=1, n_boot=50)
    # 5 buys B (new to them; A is a repeat), 6 buys D: both scored. 7 only repeats E. 8 is new.
    assert result.customers == {"returning": 2, "new": 1, "returning_only_repeat_products": 1}
    assert result.unreachable_share == pytest.approx(1 / 4)  # F is first sold after the cutoff
    table = result.table.set_index(["recommender", "group", "segment"])
    assert table.loc[("cooc", "returning", "all"), "recall"] == 1.0
    assert table.loc[("cooc", "returning", "all"), "hit_rate"] == 1.0
    # Popularity recommends the most bought product not yet bought. A, B and C tie at three
    # buyers (ties go by code): B to customer 5 (a hit), A to customer 6, who wanted D.
    assert table.loc[("popularity", "returning", "all"), "recall"] == 0.5
    assert table.loc[("popularity", "new", "all"), "recall"] == 0.5  # A of {A, F}
    metrics = result.metrics("cooc")
    assert metrics["recommend/recall_at_1"] == 1.0
    assert metrics["recommend/popularity_recall_at_1"] == 0.5
    assert set(metrics) >= {"recommend/hit_rate_at_1", "recommend/ndcg_at_1", "recommend/coverage"}


def test_coverage_is_the_share_of_the_catalogue_recommended():
    result = evaluate_recommenders(shop_with_future(), {"popularity": PopularityRecommender()},
                                   CUTOFF, horizon_days=30, k=2, n_boot=10)
    row = result.table.query("group == 'returning' and segment == 'all'").iloc[0]
    # Catalogue before the cutoff: A..E (5). Customer 5 gets B, C; customer 6 gets A, B.
    assert result.catalogue_size == 5
    assert row["coverage"] == pytest.approx(3 / 5)


def test_per_segment_rows_use_the_same_customers():
    segments = pd.Series({1: "x", 2: "x", 3: "y", 4: "y", 5: "x", 6: "y", 7: "x", 9: "x"})
    result = evaluate_recommenders(
        shop_with_future(), {"seg": PopularityRecommender(by_segment=True)}, CUTOFF,
        horizon_days=30, k=1, segments=segments, n_boot=10)
    rows = result.table.set_index("segment")
    assert rows.loc["x", "n_customers"] == 1 and rows.loc["y", "n_customers"] == 1
    # Segment y buys C and D: customer 6 (who has C) gets D, a hit; x gets B for customer 5.
    assert rows.loc["y", "recall"] == 1.0 and rows.loc["x", "recall"] == 1.0


class _Spy(PopularityRecommender):
    """Popularity that remembers the latest line it was fitted on."""

    def fit(self, transactions, segments=None):
        type(self).latest = transactions["invoice_date"].max()
        return super().fit(transactions, segments)


def test_no_line_at_or_after_the_cutoff_reaches_fit():
    frame = shop_with_future()
    at_cutoff = baskets({1: [["Z"]]}, start=CUTOFF)  # exactly at the cutoff: the future
    at_cutoff["invoice_no"] = "8" + at_cutoff["invoice_no"]
    frame = pd.concat([frame, at_cutoff], ignore_index=True)
    result = evaluate_recommenders(frame, {"spy": _Spy()}, CUTOFF, horizon_days=30, k=3,
                                   n_boot=10)
    assert _Spy.latest < CUTOFF
    assert "Z" not in set(result.recommendations["stock_code"])


def test_changing_the_future_leaves_the_recommendations_unchanged():
    frame = shop_with_future()
    other = frame.copy()
    future = other["invoice_date"] >= CUTOFF
    other.loc[future, "stock_code"] = other.loc[future, "stock_code"].map(
        {"B": "D", "D": "B", "A": "E", "E": "A", "F": "C"})  # a different future, same buyers
    models = {"cooc": ItemCooccurrenceRecommender(min_cooccurrence=1),
              "popularity": PopularityRecommender()}
    a = evaluate_recommenders(frame, models, CUTOFF, horizon_days=30, k=3, n_boot=10)
    b = evaluate_recommenders(other, models, CUTOFF, horizon_days=30, k=3, n_boot=10)
    both = np.intersect1d(a.recommendations["customer_id"], b.recommendations["customer_id"])
    assert len(both) >= 2

    def lists(result):
        recs = result.recommendations
        return recs[recs["customer_id"].isin(both)].reset_index(drop=True)

    pd.testing.assert_frame_equal(lists(a), lists(b))


def test_cutoffs_are_one_and_two_horizons_before_the_data_end():
    frame = baskets({1: [["A"]]}, start=pd.Timestamp("2011-12-09 12:50"))
    validation, evaluation = recommendation_cutoffs(frame, horizon_days=90)
    assert evaluation == pd.Timestamp("2011-09-11") and validation == pd.Timestamp("2011-06-13")


def test_windows_without_data_fail_with_the_cutoff_named():
    frame = shop_with_future()
    with pytest.raises(ValueError, match="cutoff 2011-01-01: no purchase before it"):
        evaluate_recommenders(frame, {"p": PopularityRecommender()}, "2011-01-01")
    with pytest.raises(ValueError, match="cutoff 2012-01-01: nobody bought a new product"):
        evaluate_recommenders(frame, {"p": PopularityRecommender()}, "2012-01-01")


def test_bootstrap_intervals_cover_the_mean_and_pair_customers():
    values = np.r_[np.zeros(50), np.ones(50)]
    low, high = bootstrap_interval(values, n_boot=500, seed=0)
    assert low < 0.5 < high and high - low < 0.3
    ratio, low, high = paired_ratio_interval(2 * values, values, n_boot=200, seed=0)
    assert ratio == low == high == pytest.approx(2.0)  # a paired ratio that never varies


@pytest.mark.real_data
@pytest.mark.skipif(not os.environ.get("SEGMENTLAB_DATA"), reason="SEGMENTLAB_DATA is not set")
def test_real_file_copurchase_beats_popularity_out_of_time(tmp_path):
    from segmentlab.data.cleaning import TransactionCleaner
    from segmentlab.data.loading import OnlineRetailFile, load_dataset

    frame = load_dataset(OnlineRetailFile(os.environ["SEGMENTLAB_DATA"]), TransactionCleaner(),
                         cache_dir=tmp_path).transactions
    _, cutoff = recommendation_cutoffs(frame, 90)
    result = evaluate_recommenders(
        frame, {"popularity": PopularityRecommender(),
                "cooccurrence": ItemCooccurrenceRecommender()}, cutoff, 90, 10, n_boot=200)
    metrics = result.metrics("cooccurrence")
    # Measured 0.0438 against 0.0168 (experiments/2026-11-29-recommenders); 2x is the target.
    assert metrics["recommend/recall_at_10"] > 2 * metrics["recommend/popularity_recall_at_10"]
    assert result.customers["returning"] > 1500
