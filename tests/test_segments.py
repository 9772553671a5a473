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
from segmentlab.segmentation.naming import name_basis, name_segments
from segmentlab.segmentation.profiles import PLAYBOOKS, profile_segments, recommend_actions
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
    assert profile.loc[7, "main_country"] == "France"
    assert profile.loc[7, "home_country"] == UK
    assert profile.loc[7, "home_share"] == 0.0 and profile.loc[5, "home_share"] == 1.0
    assert profile.loc[7, "home_share_all"] == pytest.approx(20 / 30)
    assert profile.loc[7, "other_country_1"] == "France"
    assert profile.loc[7, "other_country_1_share"] == 1.0
    assert profile["span_days"].eq(summary["tenure_days"].max()).all()
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
    assert profile.loc[3, "top_categories"].startswith("product category 2 (tfidf)")
    assert profile.loc[7, "top_categories"].startswith(
        f"product category {int(expected.idxmax()[-2:])} (tfidf)")
    np.testing.assert_allclose(profile["tfidf__cat_02_all"], extra["tfidf__cat_02"].mean())


def test_profile_rejects_labels_for_unknown_customers():
    data, labels = planted()
    with pytest.raises(ValueError, match="missing from the summary"):
        profile_segments(customer_summary(data), pd.concat([labels, pd.Series({999: 1})]))


def test_planted_segments_get_names_their_numbers_support():
    data, labels = planted()
    names = name_segments(profile_segments(customer_summary(data), labels))
    assert names[5] == "recent frequent high spenders"
    assert names[3] == "lapsed one-off low spenders"
    assert names[7] == "new buyers (France)"
    assert names[-1] == "unassigned"
    # Rules are relative to the population: the same data in another currency, same names.
    rich = data.assign(**{UNIT_PRICE: data[UNIT_PRICE] * 1000, AMOUNT: data[AMOUNT] * 1000})
    pd.testing.assert_series_equal(
        name_segments(profile_segments(customer_summary(rich), labels)), names)


#: short key -> profile metric; a hand-made profile row gives population percentiles by short key
METRIC_OF = {"recency": "recency_days", "frequency": "frequency", "spend": "monetary",
             "basket": "basket_value", "units": "units_per_invoice", "tenure": "tenure_days"}


def profile_of(*rows: dict) -> pd.DataFrame:
    """Profile-shaped frame, labels 0..n-1: every median grows with its percentile (0.5 unless
    given); ``invoices`` sets the median order count; other keys are profile columns."""
    records = []
    for row in rows:
        record = {"n_customers": 10, "revenue": 1000.0, "return_rate_mean": 0.02,
                  "return_rate_lift": 1.0, "span_days": 374.0}
        for short, metric in METRIC_OF.items():
            record[f"{metric}_pct"] = row.get(short, 0.5)
            record[f"{metric}_median"] = 1 + 100 * record[f"{metric}_pct"]
        record["frequency_median"] = row.get("invoices", 2 + 10 * record["frequency_pct"])
        record.update({k: v for k, v in row.items() if k not in METRIC_OF and k != "invoices"})
        records.append(record)
    return pd.DataFrame(records).rename_axis("segment")


def test_a_word_needs_the_end_of_all_customers_and_of_the_segments():
    names = name_segments(profile_of({"spend": 0.9}, {"spend": 0.8}, {"spend": 0.7},
                                     {"spend": 0.1}))
    # Segment 2 is in the top third of customers but 3rd of 4 segments: no word. Segments 0
    # and 1 both are high spenders, and nothing else tells them apart.
    assert list(names) == ["high spenders (#1)", "high spenders (#2)", "buyers", "low spenders"]
    few = name_segments(profile_of({"spend": 0.6}, {"spend": 0.1}))
    assert few[0] == "buyers"  # first of 2 segments, but not in the top third of customers


def test_tied_segments_share_a_word_or_both_go_without():
    names = name_segments(profile_of({"frequency": 0.8}, {"frequency": 0.8}, {"frequency": 0.5},
                                     {"frequency": 0.2}))
    assert ["frequent" in n for n in names] == [True, True, False, False]
    basis = name_basis(profile_of({"frequency": 0.8}, {"frequency": 0.8}, {}, {}))
    assert "joint highest of 4 segments, 80th percentile of all customers" in basis[0]


def test_new_gives_way_to_lapsed_and_keeps_its_order():
    # The lapsed one-off segment has the shortest tenure: nobody can be "new" without it.
    names = name_segments(profile_of({"recency": 0.9, "tenure": 0.1, "invoices": 1},
                                     {"tenure": 0.2}, {"tenure": 0.6}, {"tenure": 0.7}))
    assert names[0] == "lapsed one-off buyers"
    assert not any("new" in n.split() for n in names)
    # With the newest segment not lapsed, it is new; the lapsed one, longer in tenure, is not.
    names = name_segments(profile_of({"recency": 0.9, "tenure": 0.2, "invoices": 1},
                                     {"tenure": 0.1}, {"tenure": 0.6}, {"tenure": 0.7}))
    assert names[1] == "new buyers" and names[0] == "lapsed one-off buyers"


def test_recent_gives_way_to_new():
    names = name_segments(profile_of({"recency": 0.1, "tenure": 0.1}, {"recency": 0.2},
                                     {"recency": 0.7}, {"recency": 0.6}))
    assert names[0] == "new buyers" and "recent" not in names[1]


def test_a_basket_word_goes_where_it_sets_a_segment_apart_and_to_every_larger_one():
    names = name_segments(profile_of({"basket": 0.8}, {"basket": 0.9, "frequency": 0.95},
                                     {"spend": 0.1}, {"frequency": 0.1}))
    assert names[0] == "buyers with large baskets"
    # Frequency sets segment 1 apart more, but its baskets are larger than segment 0's.
    assert names[1] == "frequent buyers with large baskets"
    assert names[3] == "buyers"  # 10th percentile of frequency, but more than one order


def test_country_qualifier_names_the_countries_or_says_outside_home():
    home = {"home_country": "United Kingdom", "home_share_all": 0.9, "main_country": "United Kingdom",
            "home_share": 0.95, "other_country_1": None, "other_country_1_share": 0.0,
            "other_country_2": None, "other_country_2_share": 0.0}
    names = name_segments(profile_of(
        home, {**home, "home_share": 0.0, "main_country": "Germany", "other_country_1": "Germany",
               "other_country_1_share": 0.4, "other_country_2": "France",
               "other_country_2_share": 0.3},
        {**home, "home_share": 0.2, "main_country": "Italy", "other_country_1": "Italy",
         "other_country_1_share": 0.2, "other_country_2": "Spain", "other_country_2_share": 0.1},
        {**home, "home_share": 0.5}))
    # Segments 0 and 3 are both mostly British: only the revenue rank tells them apart.
    assert list(names) == ["buyers (#1)", "buyers (Germany & France)",
                           "buyers (outside the United Kingdom)", "buyers (#2)"]
    assert "United Kingdom 0% of this segment's customers vs 90% of all; Germany 40%, France 30%" \
        in name_basis(profile_of(home, home, {**home, "home_share": 0.0, "other_country_1": "Germany",
                                               "other_country_1_share": 0.4, "other_country_2":
                                               "France", "other_country_2_share": 0.3}))[2]


def test_names_are_unique_by_words_then_main_country_then_revenue_rank():
    names = name_segments(profile_of({"basket": 0.7}, {"basket": 0.5}, {"spend": 0.1}, {}))
    assert names.is_unique
    assert names[0] == "buyers with large baskets"  # no core word: its baskets set it apart
    twins = name_segments(profile_of({"revenue": 10.0}, {"revenue": 99.0}, {"spend": 0.9}))
    assert list(twins) == ["buyers (#2)", "buyers (#1)", "high spenders"]
    countries = profile_of({}, {}, {"spend": 0.9}).assign(main_country=["Spain", "EIRE", "Spain"])
    assert list(name_segments(countries))[:2] == ["buyers (Spain)", "buyers (EIRE)"]


def test_high_returns_qualifier_needs_lift_and_floor():
    names = name_segments(profile_of({"return_rate_mean": 0.2, "return_rate_lift": 3.0},
                                     {"return_rate_mean": 0.01, "return_rate_lift": 3.0}))
    assert names[0] == "buyers (high returns)"
    assert names[1] == "buyers"


def test_noise_is_unassigned_and_not_a_segment_the_rules_compare():
    profile = profile_of({"spend": 0.99}, {"spend": 0.9}, {"spend": 0.1})
    profile.index = [-1, 0, 1]
    names, basis = name_segments(profile), name_basis(profile)
    assert names[-1] == "unassigned" and basis[-1] == ""
    assert names[0] == "high spenders"  # first of the 2 segments; noise spends more
    assert "highest of 2 segments" in basis[0]


def test_every_word_of_a_name_has_its_figures():
    profile = profile_of({"recency": 0.9, "invoices": 1, "spend": 0.1}, {"frequency": 0.9},
                         {"return_rate_mean": 0.3, "return_rate_lift": 5.0})
    names, basis = name_segments(profile), name_basis(profile)
    assert names[0] == "lapsed one-off low spenders"
    lines = basis[0].split("\n")
    assert [line.split(":")[0] for line in lines] == ["lapsed", "one-off", "low spenders"]
    assert lines[0] == ("lapsed: median 91 days since last order — highest of 3 segments, "
                        "90th percentile of all customers")
    assert basis[2] == "high returns: 30.0% of spend returned (segment mean) vs 6.0% overall, 5.0x"


def test_a_profile_without_the_needed_columns_is_refused():
    with pytest.raises(ValueError, match="profile lacks columns"):
        name_segments(profile_of({}).drop(columns="monetary_pct"))


#: playbook -> a profile row whose words select it
PLAYBOOK_ROWS = {
    "trade buyers": {"basket": 0.95},
    "one-off bulk buyers": {"basket": 0.95, "invoices": 1},
    "new customers": {"tenure": 0.05},
    "lapsed high spenders": {"recency": 0.95, "spend": 0.95},
    "lapsed regulars": {"recency": 0.95, "frequency": 0.95},
    "lapsed one-off buyers": {"recency": 0.95, "invoices": 1},
    "lapsed buyers": {"recency": 0.95},
    "frequent high spenders": {"frequency": 0.95, "spend": 0.95},
    "frequent buyers": {"frequency": 0.95},
    "one-off low spenders": {"invoices": 1, "spend": 0.05},
    "one-off buyers": {"invoices": 1},
    "high spenders": {"spend": 0.95},
    "low spenders": {"spend": 0.05},
    "other buyers": {},
}


@pytest.mark.parametrize("playbook", list(PLAYBOOK_ROWS))
def test_every_playbook_is_reached_by_its_words(playbook):
    # Three plain segments beside it, so the row is first of four on whatever it sets high.
    profile = profile_of(PLAYBOOK_ROWS[playbook], {}, {}, {})
    actions = recommend_actions(profile, name_segments(profile))
    assert actions.loc[0, "playbook"] == playbook
    assert {p.name for p in PLAYBOOKS} == set(PLAYBOOK_ROWS)


def test_actions_fill_every_placeholder_for_every_segment():
    profile = profile_of(*PLAYBOOK_ROWS.values(), {"return_rate_mean": 0.2, "return_rate_lift": 3.0})
    profile.index = [*range(len(profile) - 1), -1]
    actions = recommend_actions(profile, name_segments(profile))
    assert list(actions.index) == list(profile.index)
    for column in ["marketing", "retention", "inventory"]:
        assert actions[column].str.len().gt(0).all()
        assert not actions[column].str.contains("[{}]").any()
    assert actions.loc[-1, "name"] == "unassigned"


def test_alert_thresholds_stay_within_the_data_span_and_say_so():
    short = profile_of({"frequency": 0.9, "invoices": 5.0, "tenure": 0.9, "recency": 0.1}, {}, {})
    short[["tenure_days_median", "recency_days_median"]] = [[300.0, 20.0]] * 3
    actions = recommend_actions(short, name_segments(short))
    assert "alert when recency exceeds 140 days (2x their 70-day cycle)" in actions.loc[0, "retention"]
    long = short.assign(frequency_median=2.0, span_days=374.0)
    long[["tenure_days_median", "recency_days_median"]] = [[370.0, 30.0]] * 3
    text = recommend_actions(long, name_segments(long)).loc[2, "retention"]
    assert "alert when recency exceeds 374 days, the data's span (2x their 340-day cycle would be " \
           "680, longer than the 374 days the data cover)" in text


def test_actions_use_categories_returns_countries_and_ignore_renaming():
    profile = profile_of({"basket": 0.95, "return_rate_mean": 0.3, "return_rate_lift": 4.0,
                          "home_country": "United Kingdom", "home_share": 0.0,
                          "home_share_all": 0.9, "main_country": "Germany",
                          "other_country_1": "Germany", "other_country_1_share": 1.0,
                          "other_country_2": None, "other_country_2_share": 0.0}, {}, {}
                         ).assign(top_categories="product category 3 (tfidf) 40% (x2.0)")
    actions = recommend_actions(profile, name_segments(profile))
    assert "product category 3 (tfidf)" in actions.loc[0, "inventory"]
    assert "quality check" in actions.loc[0, "inventory"]
    assert "localise for Germany" in actions.loc[0, "marketing"]
    renamed = recommend_actions(profile, pd.Series({0: "our trade accounts"}))
    assert renamed.loc[0, "name"] == "our trade accounts"
    assert renamed.loc[0, "marketing"] == actions.loc[0, "marketing"]


def test_segments_named_outside_home_are_localised_for_their_countries():
    home = {"home_country": "United Kingdom", "home_share_all": 0.9, "main_country": "Italy",
            "home_share": 0.1, "other_country_1": "Italy", "other_country_1_share": 0.2,
            "other_country_2": "Spain", "other_country_2_share": 0.1}
    profile = profile_of(home, {**home, "home_share": 0.95, "main_country": "United Kingdom"},
                         {**home, "home_share": 0.95, "spend": 0.1})
    names = name_segments(profile)
    assert names[0] == "buyers (outside the United Kingdom)"
    actions = recommend_actions(profile, names)
    assert "localise for their countries (Italy, Spain, …)" in actions.loc[0, "marketing"]
    assert "localise" not in actions.loc[1, "marketing"]
