"""Early warnings: who is warned, in what order, with which action, and the AUC check."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from sklearn.metrics import roc_auc_score

from segmentlab.dynamics.early_warning import (
    WARNING_COLUMNS,
    auc,
    early_warnings,
    evaluate_warnings,
    score_moves,
    warning_outcomes,
)
from segmentlab.dynamics.snapshots import CHURNED, NOT_YET, Snapshots
from tests.conftest import clean_lines

DATES = pd.DatetimeIndex(["2011-03-01", "2011-04-01", "2011-05-01"], name="date")
#: segment "2" is the most valuable, "0" the least; "1" is a risk segment ranked above "0".
RANKS = {"0": 0.0, "1": 1.0, "2": 2.0, CHURNED: -1.0}
PATHS = {  # customer: states at the three dates
    1: ["2", "2", "0"],        # falls two ranks in the last period
    2: ["0", "0", "2"],        # moves up: no warning
    3: ["2", "2", CHURNED],    # churns
    4: ["0", "0", "1"],        # enters the risk segment, although it ranks higher
    5: ["2", "2", "-1"],       # becomes noise: no warning
    6: [NOT_YET, NOT_YET, "0"],  # a new customer: no warning
    7: ["2", "0", "0"],        # fell in the first period, stays down: no warning now
}


def hand_snapshots() -> Snapshots:
    rows = []
    for customer, states in PATHS.items():
        for date, state in zip(DATES, states, strict=True):
            segment = pd.NA if state == NOT_YET else (2 if state == CHURNED else int(state))
            rows.append((customer, date, state, segment, 10.0 * customer))
    states = pd.DataFrame(rows, columns=["customer_id", "date", "state", "segment", "recency_days"])
    states["segment"] = states["segment"].astype("Int64")
    return Snapshots(states, DATES, pd.DateOffset(months=1), pd.Timestamp("2011-05-15"),
                     pd.Series(0.0, index=DATES), {})


def spend(amounts: dict[int, float], day: str = "2011-04-20 10:00") -> pd.DataFrame:
    return clean_lines([(str(i), "P", 1, day, value, customer, "UK")
                        for i, (customer, value) in enumerate(amounts.items())])


def test_warned_customers_are_the_ones_who_moved_down_or_into_risk():
    warnings = early_warnings(hand_snapshots(), spend({1: 50.0, 3: 500.0, 4: 5.0}), RANKS, ["1"],
                              names={"0": "0 low", "1": "1 at-risk", "2": "2 top"},
                              actions={"0": "call them", "1": "win back", "2": "VIP"})
    assert list(warnings.columns) == WARNING_COLUMNS
    assert warnings["customer_id"].tolist() == [3, 1, 4]  # by value at stake
    assert warnings["value_at_stake"].tolist() == [500.0, 50.0, 5.0]
    assert warnings["to"].tolist() == [CHURNED, "0", "1"]
    assert warnings["ranks_fallen"].tolist() == [3.0, 2.0, 1.0]  # entering risk counts at least 1
    # Churned has no profile: the action is that of the segment left.
    assert warnings["action"].tolist() == ["VIP", "call them", "win back"]
    assert warnings["from_name"].tolist() == ["2 top", "2 top", "0 low"]
    assert (warnings["date"] == DATES[-1]).all()
    assert set(warnings["value_source"]) == {"trailing_365d_spend"}


def test_lifetime_value_takes_precedence_where_given():
    value = pd.Series({1: 900.0, 4: 10.0})
    warnings = early_warnings(hand_snapshots(), spend({3: 500.0}), RANKS, ["1"], value=value)
    assert warnings["customer_id"].tolist() == [1, 3, 4]
    assert warnings["value_source"].tolist() == ["lifetime_value", "trailing_365d_spend",
                                                 "lifetime_value"]


def test_an_earlier_date_compares_with_its_own_previous_snapshot():
    warnings = early_warnings(hand_snapshots(), spend({}), RANKS, [], date=DATES[1])
    assert warnings["customer_id"].tolist() == [7]
    with pytest.raises(ValueError, match="is the first snapshot"):
        early_warnings(hand_snapshots(), spend({}), RANKS, [], date=DATES[0])


def test_scores_of_unrankable_starts_are_missing():
    moves = pd.DataFrame({"from": [NOT_YET, "-1", CHURNED, "2"], "to": ["0", "0", "0", "2"]})
    scored = score_moves(moves, RANKS, [])
    assert scored["score"].isna().tolist() == [True, True, True, False]
    assert not scored["warning"].any()


def test_outcomes_pair_each_warning_with_the_next_period():
    snapshots = hand_snapshots()
    lines = spend({7: 10.0, 1: 5.0}, day="2011-04-20 10:00")
    outcomes = warning_outcomes(snapshots, lines, RANKS, ["1"])
    # Only the middle date has a previous and a next snapshot; 6 was not a customer yet.
    assert set(outcomes["date"]) == {DATES[1]}
    assert sorted(outcomes["customer_id"]) == [1, 2, 3, 4, 5, 7]
    row = outcomes.set_index("customer_id")
    assert row.loc[7, "warning"] and not row.loc[7, "lapsed"]  # bought on 20 April
    assert row.loc[2, "lapsed"] and not row.loc[2, "warning"]


def test_auc_matches_scikit_learn_with_ties_and_weights():
    rng = np.random.default_rng(1)
    score = rng.integers(0, 6, 500).astype(float)
    y = rng.random(500) < 0.2 + 0.1 * score
    assert auc(score, y) == pytest.approx(roc_auc_score(y, score))
    weight = rng.integers(0, 4, 500)
    rows = np.repeat(np.arange(500), weight)
    assert auc(score, y, weight.astype(float)) == pytest.approx(roc_auc_score(y[rows], score[rows]))
    assert np.isnan(auc(score, np.zeros(500, bool)))


def test_evaluation_separates_a_perfect_warning_from_noise():
    rng = np.random.default_rng(0)
    n = 400
    lapsed = rng.random(n) < 0.4
    outcomes = pd.DataFrame({
        "customer_id": np.arange(n) % 100, "date": pd.Timestamp("2011-04-01"),
        "warning": lapsed, "score": lapsed * 2.0, "recency_days": rng.integers(1, 300, n).astype(float),
        "churned_now": np.arange(n) % 10 == 0, "lapsed": lapsed})
    metrics, per_date = evaluate_warnings(outcomes, n_bootstrap=50, random_state=0)
    assert metrics["dynamics/warning_auc"] == 1.0 and metrics["dynamics/warning_auc_active"] == 1.0
    assert abs(metrics["dynamics/recency_auc"] - 0.5) < 0.1
    assert metrics["dynamics/recency_auc_ci_low"] <= metrics["dynamics/recency_auc"] \
        <= metrics["dynamics/recency_auc_ci_high"]
    assert metrics["dynamics/lapse_rate_warned"] == 1.0 and metrics["dynamics/lapse_rate_not_warned"] == 0
    assert metrics["dynamics/n_evaluated"] == n
    assert per_date["customers"].tolist() == [n] and per_date["warning_auc"].tolist() == [1.0]


def test_evaluation_of_nothing_is_missing_not_made_up():
    empty = warning_outcomes(Snapshots(hand_snapshots().states, DATES[:2], pd.DateOffset(months=1),
                                       pd.Timestamp("2011-05-15"), pd.Series(dtype=float)),
                             spend({}), RANKS, [])
    metrics, per_date = evaluate_warnings(empty, n_bootstrap=10)
    assert metrics["dynamics/n_evaluated"] == 0
    assert np.isnan(metrics["dynamics/warning_auc"]) and np.isnan(metrics["dynamics/recency_auc_ci_low"])
    assert per_date.empty
