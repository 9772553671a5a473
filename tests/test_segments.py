"""Segment summary, profiles, naming rules and actions on hand-made data."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from segmentlab.customers import customer_summary
from segmentlab.schema import (
    AMOUNT,
    COUNTRY,
    CUSTOMER_ID,
    UNIT_PRICE,
)
from segmentlab.segmentation import profiles as segments
from segmentlab.segmentation.profiles import (
    ACTIONS,
    NAMING_RULES,
    name_segments,
    profile_segments,
    recommend_actions,
)
from tests.conftest import clean_lines

UK = "United Kingdom"
lines = clean_lines


def planted() -> tuple[pd.DataFrame, pd.Series]:
    """Three planted behaviours, ten customers each, and their labels (two noise customers).

    5: monthly buyers all year with big baskets; 3: one small order in January;
    7: two mid-size orders in the last month.
    """
    rows, labels = [], {}
    start = pd.Timestamp("2011-01-01 10:00")
    for c in range(10):
        for k in range(12):
            when = start + pd.Timedelta(days=30 * k + c)
            rows += [(f"A{c}-{k}", f"P{i}", 10, when, 3.0, 100 + c, UK) for i in range(5)]
        labels[100 + c] = 5
        rows += [(f"B{c}", f"P{i}", 2, start + pd.Timedelta(days=c), 2.0, 200 + c, UK)
                 for i in range(2)]
        labels[200 + c] = 3
        for k, day in enumerate([313, 328]):
            when = start + pd.Timedelta(days=day + c)
            rows += [(f"C{c}-{k}x", f"P{i}", 10, when, 2.5, 300 + c, "France") for i in range(2)]
        labels[300 + c] = 7
    labels[100] = labels[101] = -1
    frame = lines([(inv.replace("C", "N", 1), *rest) for inv, *rest in rows])
    return frame, pd.Series(labels).rename_axis(CUSTOMER_ID)


def test_customer_summary_on_a_hand_made_case():
    data = lines([
        ("1", "A", 10, "2011-03-01 10:00", 2.0, 1, UK),
        ("1", "B", 5, "2011-03-01 10:00", 4.0, 1, UK),
        ("2", "A", 4, "2011-03-11 10:00", 1.5, 1, UK),
        ("C1", "A", -2, "2011-03-12 10:00", 2.0, 1, UK),
        ("3", "A", 3, "2011-03-05 10:00", 2.0, 2, "Germany"),
        ("3", "B", 1, "2011-03-05 10:00", 2.0, 2, "Germany"),
        ("4", "A", 1, "2011-03-06 10:00", 2.0, 2, UK),
    ])
    summary = customer_summary(data)
    snapshot = pd.Timestamp("2011-03-13")
    spend = 10 * 2.0 + 5 * 4.0 + 4 * 1.5
    one = summary.loc[1]
    assert one["recency_days"] == (snapshot - pd.Timestamp("2011-03-11")).days
    assert one["frequency"] == 2
    assert one["monetary"] == pytest.approx(spend)
    assert one["basket_value"] == pytest.approx(spend / 2)
    assert one["units_per_invoice"] == pytest.approx((10 + 5 + 4) / 2)
    assert one["return_rate"] == pytest.approx(2 * 2.0 / spend)
    assert one["tenure_days"] == (snapshot - pd.Timestamp("2011-03-01")).days
    assert summary.loc[2, COUNTRY] == "Germany"          # two of its three lines
    assert summary.loc[2, "return_rate"] == 0.0
    later = customer_summary(data, snapshot="2011-04-01")
    assert later.loc[2, "recency_days"] == (pd.Timestamp("2011-04-01") - pd.Timestamp(
        "2011-03-06")).days


def test_profile_sizes_and_revenue_shares_add_up():
    data, labels = planted()
    summary = customer_summary(data)
    profile = profile_segments(summary, labels)
    assert list(profile.index) == [-1, 3, 5, 7]
    assert profile["n_customers"].sum() == len(labels)
    assert profile["share_customers"].sum() == pytest.approx(1.0)
    assert profile["share_revenue"].sum() == pytest.approx(1.0)
    assert profile["revenue"].sum() == pytest.approx(summary["monetary"].sum())
    members = summary.loc[labels.index[labels == 7]]
    assert profile.loc[7, "monetary_median"] == pytest.approx(members["monetary"].median())
    assert profile.loc[7, "recency_days_mean"] == pytest.approx(members["recency_days"].mean())
    assert profile.loc[7, "top_countries"] == "France 100%"
    pct = profile.filter(like="_pct")
    assert ((pct >= 0) & (pct <= 1)).all().all()
    assert profile.loc[5, "frequency_pct"] > profile.loc[7, "frequency_pct"] > profile.loc[
        3, "frequency_pct"]


def test_profile_extra_columns_and_top_categories():
    data, labels = planted()
    rng = np.random.default_rng(0)
    extra = pd.DataFrame(rng.random((len(labels), 4)), index=labels.index,
                         columns=[f"tfidf__cat_{i:02d}" for i in range(4)])
    extra.loc[labels == 3, "tfidf__cat_02"] += 5
    profile = profile_segments(customer_summary(data), labels, extra=extra)
    expected = extra[labels == 7].mean()
    np.testing.assert_allclose(profile.loc[7, expected.index].astype(float), expected)
    assert profile.loc[3, "top_categories"].startswith("tfidf__cat_02")
    assert profile.loc[7, "top_categories"].startswith(expected.idxmax())


def test_profile_rejects_labels_for_unknown_customers():
    data, labels = planted()
    with pytest.raises(ValueError, match="missing from the summary"):
        profile_segments(customer_summary(data), pd.concat([labels, pd.Series({999: 1})]))


def test_planted_segments_get_the_expected_names():
    data, labels = planted()
    names = name_segments(profile_segments(customer_summary(data), labels))
    assert names[5] == "loyal high spenders"
    assert names[3] == "one-off low spenders"
    assert names[7] == "new customers"
    assert names[-1] == "unassigned"
    # Rules are relative to the population: the same data in another currency, same names.
    rich = data.assign(**{UNIT_PRICE: data[UNIT_PRICE] * 1000, AMOUNT: data[AMOUNT] * 1000})
    pd.testing.assert_series_equal(
        name_segments(profile_segments(customer_summary(rich), labels)), names)


DEFAULTS = {"n_customers": 10, "revenue": 1000.0, "recency_days_pct": 0.5,
            "frequency_pct": 0.5, "monetary_pct": 0.5, "basket_value_pct": 0.5,
            "units_per_invoice_pct": 0.5, "tenure_days_pct": 0.5, "frequency_median": 3.0,
            "return_rate_mean": 0.02, "return_rate_lift": 1.0, "tenure_days_median": 200.0,
            "recency_days_median": 30.0, "basket_value_median": 300.0}
SHORT = {"recency": "recency_days_pct", "frequency": "frequency_pct", "spend": "monetary_pct",
         "basket": "basket_value_pct", "units": "units_per_invoice_pct",
         "tenure": "tenure_days_pct", "invoices": "frequency_median"}


def profile_of(*rows: dict) -> pd.DataFrame:
    """Profile-shaped frame: DEFAULTS overridden by short keys, labels 0..n-1."""
    return pd.DataFrame([{**DEFAULTS, **{SHORT.get(k, k): v for k, v in row.items()}}
                         for row in rows]).rename_axis("segment")


ONE_OFF = {"invoices": 1, "frequency": 0.17}
CASES = [
    ("loyal high spenders", {"recency": 0.1, "frequency": 0.9, "spend": 0.9, "units": 0.9,
                             "basket": 0.9}),
    ("wholesale bulk buyers", {"units": 0.9, "basket": 0.9}),
    ("one-off bulk buyers", {**ONE_OFF, "units": 0.9, "basket": 0.9}),
    ("new customers", {"tenure": 0.1, "recency": 0.2}),
    ("frequent low-value buyers", {"frequency": 0.9, "basket": 0.1}),
    ("loyal regulars", {"frequency": 0.9, "recency": 0.2}),
    ("lapsing big buyers", {"recency": 0.9, "spend": 0.9}),
    ("at-risk regulars", {"recency": 0.9, "frequency": 0.6}),
    ("one-off low spenders", {**ONE_OFF, "spend": 0.1}),
    ("lapsed one-off buyers", {**ONE_OFF, "recency": 0.9}),
    ("one-off buyers", ONE_OFF),
    ("lapsed low spenders", {"recency": 0.9, "spend": 0.1, "frequency": 0.2}),
    ("high spenders", {"spend": 0.9}),
    ("occasional low spenders", {"spend": 0.1}),
    ("steady mid-value customers", {}),
]


def test_cases_cover_every_rule_and_the_docstring_lists_them():
    assert {name for name, _ in CASES} == {name for name, _ in NAMING_RULES}
    for name, _ in NAMING_RULES:
        assert name in segments.__doc__
        assert name in ACTIONS


@pytest.mark.parametrize(("expected", "row"), CASES, ids=[name for name, _ in CASES])
def test_naming_rule(expected, row):
    assert name_segments(profile_of(row))[0] == expected


def test_names_are_unique_with_qualifiers_then_revenue_rank():
    names = name_segments(profile_of({"basket": 0.1}, {}, {"basket": 0.9, "units": 0.1}))
    assert names.is_unique
    assert names[0] == "steady mid-value customers (small baskets)"
    assert names[2] == "steady mid-value customers (large baskets)"
    twins = name_segments(profile_of({"revenue": 10.0}, {"revenue": 99.0}, {"spend": 0.9}))
    assert list(twins) == ["steady mid-value customers (#2)", "steady mid-value customers (#1)",
                           "high spenders"]


def test_high_returns_tag_needs_lift_and_floor():
    names = name_segments(profile_of({"return_rate_mean": 0.2, "return_rate_lift": 3.0},
                                     {"return_rate_mean": 0.01, "return_rate_lift": 3.0}))
    assert names[0] == "steady mid-value customers (high returns)"
    assert names[1] == "steady mid-value customers"


def test_actions_exist_for_every_segment_and_fill_their_numbers():
    profile = profile_of(*[row for _, row in CASES],
                         {"return_rate_mean": 0.2, "return_rate_lift": 3.0})
    profile.index = [*range(len(profile) - 1), -1]
    actions = recommend_actions(profile, name_segments(profile))
    assert list(actions.index) == list(profile.index)
    for column in ["marketing", "retention", "inventory"]:
        assert actions[column].str.len().gt(0).all()
        assert not actions[column].str.contains("[{}]").any()
    assert actions.loc[-1, "name"] == "unassigned"
    lapsing = [name for name, _ in CASES].index("lapsing big buyers")
    cycle = (DEFAULTS["tenure_days_median"] - DEFAULTS["recency_days_median"]) / (
        DEFAULTS["frequency_median"] - 1)
    assert f"{2 * cycle:.0f} days" in actions.loc[lapsing, "retention"]


def test_actions_use_categories_returns_and_fall_back_for_renamed_segments():
    profile = profile_of({"units": 0.9, "basket": 0.9, "return_rate_mean": 0.3,
                          "return_rate_lift": 4.0}).assign(top_categories="tfidf__cat_03 0.4")
    actions = recommend_actions(profile, name_segments(profile))
    assert "tfidf__cat_03" in actions.loc[0, "inventory"]
    assert "quality check" in actions.loc[0, "inventory"]
    renamed = recommend_actions(profile, pd.Series({0: "our trade accounts"}))
    assert renamed.loc[0, "marketing"] == actions.loc[0, "marketing"]
