"""HTML reports: sections, offline plotly, escaping, readings computed from the data, gaps."""

from __future__ import annotations

import re
from html.parser import HTMLParser

import numpy as np
import pandas as pd
import pytest
from plotly.offline import get_plotlyjs

from segmentlab import vocabulary
from segmentlab.customers import customer_summary
from segmentlab.recommend.segment_products import segment_products
from segmentlab.reports.eda import SECTIONS as EDA_SECTIONS
from segmentlab.reports.eda import eda_report
from segmentlab.reports.html import money, number
from segmentlab.reports.study import RunDetails, study_report
from segmentlab.schema import AMOUNT, CUSTOMER_ID, INVOICE_DATE, IS_RETURN, CleaningLedger, Dataset
from segmentlab.segmentation import naming
from segmentlab.segmentation import profiles as segments

EDA_IDS = ("monthly", "countries", "baskets", "returns", "products", "cohorts", "rfm", "cleaning")
STUDY_IDS = ("leaderboard", "comparison", "segments", "customer-map", "importance", "prediction",
             "assignment", "ledger")
HOSTILE = '<script>window.__pwned = 1</script><img src=x onerror="window.__pwned = 2">'


def make_dataset(transactions: pd.DataFrame) -> Dataset:
    """A Dataset around the conftest transactions with a ledger that adds up."""
    n_returns = int(transactions[IS_RETURN].sum())
    kept = len(transactions) - n_returns
    ledger = CleaningLedger(kept + n_returns + 7, kept, {"missing_customer": 7,
                                                         "cancellation_kept_as_return": n_returns})
    return Dataset(transactions, ledger, "0123456789abcdef", "synthetic(test)")


def make_study(transactions: pd.DataFrame, segment_name: str | None = None
               ) -> tuple[pd.DataFrame, RunDetails]:
    """Four runs (2 clusterers x 2 feature sets) and a best run profiled on real code paths."""
    summary = customer_summary(transactions)
    labels = pd.Series((summary.index - summary.index.min()) // 20, index=summary.index)
    profile = segments.profile_segments(summary, labels)
    names = naming.name_segments(profile)
    if segment_name is not None:
        names.iloc[0] = segment_name
    profile = profile.assign(name=names, name_basis=naming.name_basis(profile)).join(
        segments.recommend_actions(profile, names).drop(columns="name"))
    rng = np.random.default_rng(1)
    runs = pd.DataFrame({
        "run_id": [f"{i:032x}" for i in range(1, 5)],
        "run_name": ["kmeans · rfm", "kmeans · rfm+behaviour", "hdbscan · rfm",
                     "hdbscan · rfm+behaviour"],
        "data": "synthetic", "features": ["rfm", "rfm+behaviour"] * 2,
        "reducer": "none", "clusterer": ["kmeans"] * 2 + ["hdbscan"] * 2, "tuning": "none",
        "cluster/silhouette": [0.41, 0.35, np.nan, 0.52],
        "cluster/stability_ari": [0.9, 0.7, 0.8, 0.95],
        "cluster/noise_fraction": [0.0, 0.0, 0.2, 0.1],
        "cluster/all_missing": np.nan,
        "time/fit_seconds": [1.0, 2.0, 3.0, 4.0],
    })
    points = pd.DataFrame({"x": rng.normal(size=len(labels)), "y": rng.normal(size=len(labels)),
                           "segment": labels.to_numpy(),
                           "segment_name": names.reindex(labels.to_numpy()).to_numpy()})
    importance = pd.DataFrame({"feature": ["rfm__recency_days", "rfm__frequency", "rfm__monetary",
                                           "behaviour__basket_value"],
                               "mean": [0.08, 0.05, 0.02, 0.01], "std": [0.01, 0.01, 0.005, 0.002]})
    prediction = {"predict/roc_auc": 0.78, "predict/recency_roc_auc": 0.71,
                  "predict/rfm_logreg_roc_auc": 0.75, "predict/pr_auc": 0.7, "predict/brier": 0.2}
    ledger = make_dataset(transactions).ledger.to_frame()
    assignment = {"assign/accuracy": 0.99, "assign/f1_macro": 0.97,
                  "assign/new_customer_f1_macro": 0.37, "assign/f1_at_min_history": 0.75,
                  "assign/min_history_days": 120.0, "assign/suggested_min_history_days": 120.0,
                  "assign/confidence_ece": 0.033}
    history = pd.DataFrame({"history_days": [1, 30, 120, np.nan], "n_customers": [100, 90, 80, 100],
                            "median_invoices": [1, 1, 2, 2], "f1_macro": [0.29, 0.5, 0.75, 0.97],
                            "accuracy": [0.36, 0.52, 0.78, 0.99],
                            "mean_probability": [0.99, 0.99, 0.99, 0.99],
                            "mean_confidence": [0.3, 0.53, 0.76, 0.82]})
    reliability = pd.DataFrame({"bin": ["0.2–0.3", "0.9–1.0"], "n": [40, 60],
                                "mean_confidence": [0.27, 0.99], "accuracy": [0.4, 0.99]})
    best = RunDetails(runs.run_id[3], runs.run_name[3], runs.iloc[3].filter(like="/").to_dict(),
                      profile, points, importance, prediction, ledger,
                      reason="the registered model segmentlab@champion", classifier="logreg",
                      assigner="logreg", assignment=assignment, history=history,
                      reliability=reliability,
                      products=segment_products(transactions, labels, min_customers=2))
    return runs, best


class _Structure(HTMLParser):
    """Section ids with their first heading tag, script tags and their sources."""

    def __init__(self):
        super().__init__()
        self.sections, self.scripts, self._open = {}, [], None

    def handle_starttag(self, tag, attrs):
        attrs = dict(attrs)
        if tag == "section":
            self._open = attrs.get("id")
            self.sections[self._open] = None
        elif tag in ("h2", "h3") and self._open and self.sections[self._open] is None:
            self.sections[self._open] = tag
        elif tag == "script":
            self.scripts.append(attrs.get("src"))


def structure(page: str) -> _Structure:
    parser = _Structure()
    parser.feed(page)
    return parser


@pytest.fixture
def dataset(transactions):
    return make_dataset(transactions)


def test_eda_report_has_every_section_with_a_heading(dataset):
    page = structure(eda_report(dataset))
    assert tuple(page.sections) == EDA_IDS == EDA_SECTIONS
    assert all(tag == "h2" for tag in page.sections.values())


@pytest.mark.parametrize("which", ["eda", "study"])
def test_plotly_is_inlined_once_and_nothing_is_fetched(which, dataset, transactions):
    page = eda_report(dataset) if which == "eda" else study_report(*make_study(transactions))
    assert page.count(get_plotlyjs()) == 1
    assert all(src is None for src in structure(page).scripts)
    # Outside the bundle (whose defaults mention its CDN) nothing points off the machine.
    ours = page.replace(get_plotlyjs(), "")
    assert "cdn.plot.ly" not in ours and "https://" not in ours and "http://" not in ours
    assert page.count('class="plotly-graph-div"') == {"eda": 8, "study": 5}[which]


def test_eda_readings_are_computed_from_the_data(dataset, transactions):
    page = eda_report(dataset)
    purchases = transactions[~transactions[IS_RETURN]]
    revenue = purchases.groupby(purchases[INVOICE_DATE].dt.to_period("M"))[AMOUNT].sum()
    busiest = revenue.idxmax()
    assert f"{busiest.strftime('%B %Y')} is the busiest month: {money(revenue.max())}" in page
    assert f"{revenue.max() / revenue.sum():.0%} of all revenue" in page
    assert f"<b>{purchases[CUSTOMER_ID].nunique():,}</b><span>customers</span>" in page
    returns = transactions[transactions[IS_RETURN]]
    assert f"{len(returns):,} cancellation lines from {returns[CUSTOMER_ID].nunique():,} customers" in page


def test_eda_warns_that_the_first_cohorts_are_left_censored(dataset, transactions):
    page = eda_report(dataset)
    part = page[page.index('id="cohorts"'):page.index('id="rfm"')]
    first = transactions[INVOICE_DATE].min()
    customers = transactions.loc[(transactions[INVOICE_DATE].dt.to_period("M") == first.to_period("M"))
                                 & ~transactions[IS_RETURN], CUSTOMER_ID].nunique()
    assert f"The first cohort ({first:%b %Y}*, {customers:,} customers)" in part
    assert "it is left-censored" in part and "before the data start" in part
    assert f"{first:%b %Y}* ({customers:,})" in part  # the row label carries the mark


def test_eda_raw_frame_adds_what_cleaning_removed(dataset, transactions):
    raw = transactions.drop(columns=IS_RETURN).astype({CUSTOMER_ID: "Int64"})
    raw.loc[raw.index[:10], CUSTOMER_ID] = pd.NA
    page = eda_report(dataset, raw=raw)
    assert f"Before cleaning: {len(raw):,} lines; {10 / len(raw):.0%} have no customer id" in page
    assert "Before cleaning" not in eda_report(dataset)


def test_eda_without_returns_says_so(transactions):
    page = eda_report(make_dataset(transactions[~transactions[IS_RETURN]]))
    assert "No cancellation lines were kept as returns." in page
    assert tuple(structure(page).sections) == EDA_IDS


def test_eda_without_purchases_is_an_error(transactions):
    with pytest.raises(ValueError, match="no purchases"):
        eda_report(make_dataset(transactions[transactions[IS_RETURN]]))


def test_study_report_has_every_section_and_the_segments(transactions):
    runs, best = make_study(transactions)
    page = study_report(runs, best, title="my study")
    assert tuple(structure(page).sections) == STUDY_IDS
    for name in best.profile["name"]:
        assert f"<h3>{name}</h3>" in page
    for action in best.profile["marketing"]:
        assert action.replace("'", "&#x27;") in page
    assert "<title>my study</title>" in page


def test_leaderboard_rows_carry_sortable_values_and_mark_the_best(transactions):
    runs, best = make_study(transactions)
    page = study_report(runs, best)
    board = page[page.index('id="leaderboard"'):page.index('id="comparison"')]
    assert 'class="sortable"' in board
    header = re.findall(r"<th[^>]*>([^<]*)</th>", board)
    # Report metrics only, in the vocabulary's order, labelled with which way is better.
    assert header[:4] == ["run name", "run", "features", "clusterer"]
    assert header[4:] == ["silhouette ↑", "noise share ↓", "stability (ARI) ↑"]
    assert "data" not in header  # a tag all runs share is in the text
    assert '<th class="pin">run name</th>' in board  # the key column stays in view
    assert "All runs share data synthetic, reducer none, tuning none." in board
    rows = re.findall(r"<tr( class=\"best\")?>(.*?)</tr>", board)[1:]
    assert [bool(mark) for mark, _ in rows] == list(runs["run_id"] == best.run_id)
    column = header.index("silhouette ↑")
    values = [re.findall(r'data-value="([^"]*)"', cells)[column] for _, cells in rows]
    expected = ["" if np.isnan(v) else str(v) for v in runs["cluster/silhouette"]]
    assert values == expected
    assert "highest silhouette 0.520 (hdbscan · rfm+behaviour)" in board.lower()
    assert "lowest noise share 0 (kmeans · rfm)" in board.lower()


def test_text_is_escaped_everywhere(transactions):
    runs, best = make_study(transactions, segment_name=HOSTILE)
    runs.loc[0, "run_name"] = HOSTILE
    page = study_report(runs, best, title=HOSTILE)
    assert "<script>window" not in page and "<img" not in page
    assert "&lt;script&gt;window.__pwned = 1&lt;/script&gt;" in page
    # Inside plotly's JSON the name cannot close the script element it sits in.
    assert "</script><img" not in page


def test_missing_inputs_leave_one_line_each(transactions):
    runs, best = make_study(transactions)
    bare = RunDetails(best.run_id, best.run_name, best.metrics, best.profile.iloc[:0])
    page = study_report(runs.iloc[:0], bare)
    assert tuple(structure(page).sections) == STUDY_IDS
    for text in ["No runs to compare.", "No segment profile was logged", "No customer map",
                 "No feature importance", "No repurchase prediction", "No segment assignment",
                 "No cleaning ledger"]:
        assert text in page
    assert "plotly-graph-div" not in page and get_plotlyjs() not in page
    assert tuple(structure(study_report(runs, None)).sections) == STUDY_IDS


def test_prediction_reading_compares_with_both_baselines(transactions):
    runs, best = make_study(transactions)
    page = study_report(runs, best)
    p = best.prediction
    gain = p["predict/roc_auc"] - p["predict/recency_roc_auc"]
    assert f"ROC AUC {p['predict/roc_auc']:.3f}, {gain:+.3f} against recency only" in page


def test_noise_is_charted_only_when_some_method_produced_noise(transactions):
    runs, best = make_study(transactions)
    section = lambda page: page[page.index('id="comparison"'):page.index('id="segments"')]  # noqa: E731
    assert "noise share" in section(study_report(runs, best))
    quiet = runs.assign(**{"cluster/noise_fraction": 0.0})
    assert "noise share" not in section(study_report(quiet, best))


def test_importance_is_labelled_and_says_which_model_it_explains(transactions):
    runs, best = make_study(transactions)
    page = study_report(runs, best)
    part = page[page.index('id="importance"'):page.index('id="prediction"')]
    assert "Which model this explains: the logreg repurchase classifier" in part
    assert "Days since last order matters most" in part
    assert "orders (log)" in part and "rfm__frequency" not in part.split("<script")[0]


def test_segment_cards_show_the_figures_behind_each_name(transactions):
    runs, best = make_study(transactions)
    page = study_report(runs, best, coverage="Data: file.csv (data hash 0123). Detailed run: x.")
    assert "<p>Data: file.csv (data hash 0123). Detailed run: x.</p>" in page
    for basis in best.profile["name_basis"]:
        for line in filter(None, basis.split("\n")):
            assert f"<li>{line}</li>".replace("'", "&#x27;") in page, line
    assert "why this name" in page


def test_segment_cards_say_which_products_to_push_and_stock(transactions):
    from dataclasses import replace

    runs, best = make_study(transactions)
    products = best.products
    page = study_report(runs, best)
    cards = re.findall(r'<div class="segment".*?</dl>', page, flags=re.S)
    assert len(cards) == len(best.profile)
    shown = 0
    for label, card in zip(best.profile.sort_values("share_revenue", ascending=False).index,
                           cards, strict=True):
        lift = products[(products["segment"] == label) & (products["kind"] == "product_lift")
                        & (products["lift"] >= 1.1)]
        if lift.empty:
            continue
        top = lift.sort_values("rank").iloc[0]
        assert "<dt>push</dt>" in card
        text = f"{str(top['description']).strip().lower()} (×{top['lift']:.1f})"
        assert text in card.replace("&#x27;", "'")
        shown += 1
    assert shown > 0
    assert "<dt>push</dt>" not in study_report(runs, replace(best, products=None))  # no table, no line


def test_repurchase_section_shows_the_interval_candidates_reliability_and_segment_value(transactions):
    from dataclasses import replace

    from segmentlab.prediction.calibration import reliability_table

    runs, best = make_study(transactions)
    rng = np.random.default_rng(0)
    p = rng.uniform(size=500)
    tables = {"predict_candidates": pd.DataFrame({"candidate": ["logreg", "average"],
                                                  "validation_roc_auc": [0.749, 0.751],
                                                  "roc_auc": [0.743, 0.745], "chosen": [False, True]}),
              "predict_reliability": reliability_table(rng.uniform(size=500) < p, p),
              "segment_value": pd.DataFrame({"segment": [0, 1], "name": ["a", "b"],
                                             "clv_12m": [1000.0, 250.0],
                                             "share_of_future_value": [0.8, 0.2]})}
    scores = {**best.prediction, "predict/roc_auc_ci_low": 0.728, "predict/roc_auc_ci_high": 0.76,
              "predict/bgnbd_roc_auc": 0.734, "predict/roc_auc_gain_vs_rfm_ci_low": 0.001,
              "predict/roc_auc_gain_vs_rfm_ci_high": 0.014}
    page = study_report(runs, replace(best, prediction=scores, repurchase=tables))
    section = page[page.index('id="prediction"'):page.index('id="assignment"')]
    assert "[95 % CI 0.728–0.760]" in section and "+0.001 to +0.014" in section
    assert "against BG/NBD P(purchase) (0.734)" in section
    for heading in ["Candidates: chosen by validation", "Reliability on the evaluation customers",
                    "Future value by segment"]:
        assert heading in section
    assert "Candidates" not in study_report(runs, best)  # nothing logged, nothing shown


def test_assignment_section_shows_the_scores_the_curve_and_the_calibration(transactions):
    runs, best = make_study(transactions)
    page = study_report(runs, best)
    part = page[page.index('id="assignment"'):page.index('id="ledger"')]
    assert "placed by the logreg classifier" in part
    assert "macro F1 0.29 after 1 day(s), rising to 0.75 after 120 days" in part
    assert "under 120 days of history go to &quot;new — not yet segmentable&quot;" in part
    assert "off by 0.033 on average" in part
    assert "plotly-graph-div" in part
    # Metrics in the vocabulary's order, with their direction.
    rows = re.findall(r"<tr><td>([^<]*)</td><td>(assign/[^<]*)</td>", part)
    keys = [key for _, key in rows]
    assert keys == vocabulary.ordered(best.assignment)
    assert ("assignment F1 ↑", "assign/f1_macro") in rows
    assert ("confidence calibration error ↓", "assign/confidence_ece") in rows


def test_repurchase_table_lists_metrics_in_the_vocabulary_order(transactions):
    runs, best = make_study(transactions)
    page = study_report(runs, best)
    part = page[page.index('id="prediction"'):page.index('id="assignment"')]
    rows = re.findall(r"<tr><td>([^<]*)</td><td>(predict/[^<]*)</td>", part)
    assert rows == [("PR AUC ↑", "predict/pr_auc"), ("Brier score ↓", "predict/brier")]


@pytest.mark.parametrize(("value", "text"), [(1_160_000, "£1.16M"), (950_000, "£950k"),
                                             (301.63, "£302"), (12.5, "£12.50"), (-2500, "-£2.5k"),
                                             (float("nan"), "–")])
def test_money(value, text):
    assert money(value) == text


@pytest.mark.parametrize(("value", "text"), [(0.52345, "0.523"), (12.456, "12.46"), (3120.4, "3,120"),
                                             (5.0, "5"), (float("nan"), "–"), (None, "–")])
def test_number(value, text):
    assert number(value) == text


@pytest.mark.parametrize("key, text", [
    ("predict/roc_auc", "repurchase ROC AUC"),
    ("predict/candidate_hist_gradient_boosting_roc_auc", "candidate's ROC AUC (hist gradient boosting)"),
    ("predict/roc_auc_gain_vs_bgnbd_ci_low", "gain over a baseline, interval low (bgnbd)"),
    ("predict/not_declared_anywhere", "predict/not_declared_anywhere"),  # a group's catch-all
])
def test_metric_labels_name_what_a_pattern_matched(key, text):
    assert vocabulary.label(key) == text
