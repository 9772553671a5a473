"""Out-of-time repurchase prediction: cutoffs, leakage, baselines, metrics, deployment."""

from __future__ import annotations

import pickle
from itertools import combinations

import numpy as np
import pandas as pd
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from matplotlib.figure import Figure
from sklearn.base import clone
from sklearn.cluster import KMeans
from sklearn.ensemble import HistGradientBoostingRegressor
from sklearn.linear_model import LogisticRegression
from sklearn.metrics import roc_auc_score
from sklearn.pipeline import FeatureUnion, make_pipeline
from sklearn.preprocessing import StandardScaler
from xgboost import XGBClassifier

from segmentlab.customers import snapshot_date as data_end
from segmentlab.features.behaviour import BehaviourFeatures
from segmentlab.features.rfm import RFMFeatures
from segmentlab.lifetime.value import CustomerValue
from segmentlab.prediction.estimators import scaled_logistic_regression
from segmentlab.prediction.evaluation import evaluate_repurchase
from segmentlab.prediction.pooling import CutoffFrames
from segmentlab.prediction.scoring import lift_at, score_predictions, score_spend
from segmentlab.prediction.selection import RepurchaseValidation
from segmentlab.prediction.windows import (
    FUTURE_SPEND,
    WILL_BUY,
    CutoffPlan,
    WindowError,
    cutoff_frame,
    last_period_spend,
)
from segmentlab.reports.plots import importance_figure
from segmentlab.schema import (
    AMOUNT,
    CLEAN_COLUMNS,
    CUSTOMER_ID,
    INVOICE_DATE,
    INVOICE_NO,
    IS_RETURN,
    QUANTITY,
    UNIT_PRICE,
)

START = pd.Timestamp("2011-01-03")


def lines(rows: list[tuple]) -> pd.DataFrame:
    """Cleaned lines from (invoice, customer, day offset, quantity, unit price); qty < 0 is a return."""
    frame = pd.DataFrame(rows, columns=[INVOICE_NO, CUSTOMER_ID, "day", QUANTITY, UNIT_PRICE])
    frame[INVOICE_DATE] = START + pd.to_timedelta(frame.pop("day"), unit="D")
    frame[IS_RETURN] = frame[QUANTITY] < 0
    frame[INVOICE_NO] = np.where(frame[IS_RETURN], "C", "") + frame[INVOICE_NO].astype(str)
    frame[AMOUNT] = frame[QUANTITY] * frame[UNIT_PRICE]
    frame["stock_code"] = "S" + (frame[CUSTOMER_ID] % 3).astype(str)
    frame["description"] = "ITEM " + frame["stock_code"]
    frame["country"] = np.where(frame[CUSTOMER_ID] % 5 == 0, "France", "United Kingdom")
    frame = frame.astype({QUANTITY: "int64", UNIT_PRICE: float, CUSTOMER_ID: "int64"})
    return frame[CLEAN_COLUMNS].sort_values(INVOICE_DATE, kind="stable").reset_index(drop=True)


def random_shop(seed: int = 0, n_customers: int = 70, days: int = 360) -> pd.DataFrame:
    """Customers with different purchase rates and active spans over a year, a few returns."""
    rng = np.random.default_rng(seed)
    rows, invoice = [], 100000
    for c in range(n_customers):
        gap = rng.choice([4.0, 12.0, 40.0, 120.0])
        day, last = float(rng.integers(0, days // 2)), float(rng.integers(days // 3, days))
        while day < last:
            invoice += 1
            hour = int(rng.integers(8, 18)) / 24
            for _ in range(int(rng.integers(1, 4))):
                rows.append((invoice, 1000 + c, day + hour, int(rng.integers(1, 20)),
                             float(rng.choice([0.5, 1.5, 4.0]))))
            if rng.random() < 0.1:
                rows.append((invoice, 1000 + c, day + hour + 1, -1, 1.5))
            day += rng.exponential(gap) + 1
    rows.append((invoice + 1, 1000, days, 1, 1.0))  # pins the data end whatever the seed
    return lines(rows)


def make_union() -> FeatureUnion:
    parts = [("rfm", RFMFeatures()), ("behaviour", BehaviourFeatures(top_countries=1))]
    return FeatureUnion(parts).set_output(transform="pandas")


# --- cutoff split -------------------------------------------------------------------------------

def test_cutoff_frame_on_a_hand_made_case():
    tx = lines([
        (1, 1, 0, 2, 1.0), (2, 1, 50, 3, 2.0),          # buys again in the horizon
        (3, 2, 0, 2, 1.0), (4, 2, 40, -2, 1.0),         # only a return in the horizon
        (5, 3, 30, 1, 1.0),                             # first seen at the cutoff: not in target
        (6, 4, 1, 1, 1.0), (7, 4, 30 + 20, 1, 5.0),     # horizon ends at day 50: excluded
        (8, 5, 5, -1, 1.0),                             # only a return in history: not a customer
        (9, 6, 29.99, 1, 1.0), (10, 6, 30, 4, 2.5), (11, 6, 31, 1, 1.0),
    ])
    history, target = cutoff_frame(tx, START + pd.Timedelta(days=30), horizon_days=20)
    assert history[INVOICE_DATE].max() < START + pd.Timedelta(days=30)
    assert len(history) == (tx[INVOICE_DATE] < START + pd.Timedelta(days=30)).sum()
    assert target.index.tolist() == [1, 2, 4, 6]
    assert target[WILL_BUY].to_dict() == {1: 0, 2: 0, 4: 0, 6: 1}
    assert target.loc[6, FUTURE_SPEND] == pytest.approx(4 * 2.5 + 1 * 1.0)
    _, later = cutoff_frame(tx, START + pd.Timedelta(days=30), horizon_days=21)
    assert later.loc[1, WILL_BUY] == 1 and later.loc[4, WILL_BUY] == 1  # [cutoff, cutoff + h)
    # The naive spend forecast: purchases (not returns) in [cutoff - h, cutoff).
    last = last_period_spend(history, START + pd.Timedelta(days=30), horizon_days=20)
    assert last.to_dict() == pytest.approx({6: 1.0})
    last = last_period_spend(history, START + pd.Timedelta(days=30), horizon_days=30)
    assert last.to_dict() == pytest.approx({1: 2.0, 2: 2.0, 4: 1.0, 6: 1.0})  # day 0 is in, the return is not


# --- leakage ------------------------------------------------------------------------------------

BASE = random_shop(seed=3)


def _tamper(tx: pd.DataFrame, cutoff: pd.Timestamp, seed: int) -> pd.DataFrame:
    """Delete, rescale and add lines at or after ``cutoff``; the last line (data end) stays."""
    rng = np.random.default_rng(seed)
    after = tx[INVOICE_DATE] >= cutoff
    keep = ~after | (rng.random(len(tx)) < 0.5)
    keep[tx.index[-1]] = True
    changed = tx[keep].copy()
    late = changed[INVOICE_DATE] >= cutoff
    changed.loc[late, QUANTITY] = changed.loc[late, QUANTITY] * int(rng.integers(2, 9))
    changed.loc[late, AMOUNT] = changed.loc[late, QUANTITY] * changed.loc[late, UNIT_PRICE]
    extra = changed[late].sample(frac=0.3, random_state=seed).copy()
    extra[CUSTOMER_ID] = rng.choice([*changed[CUSTOMER_ID].unique(), 9999], size=len(extra))
    extra[INVOICE_DATE] = extra[INVOICE_DATE] + pd.Timedelta(hours=1)
    extra = extra[extra[INVOICE_DATE] < tx[INVOICE_DATE].max()]
    return pd.concat([changed, extra]).sort_values(INVOICE_DATE, kind="stable")


@settings(max_examples=12, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(day=st.integers(60, 330), seed=st.integers(0, 10_000))
def test_features_at_a_cutoff_ignore_everything_after_it(day, seed):
    cutoff = START + pd.Timedelta(days=day)
    tampered = _tamper(BASE, cutoff, seed)
    before = make_union().fit_transform(cutoff_frame(BASE, cutoff)[0])
    after = make_union().fit_transform(cutoff_frame(tampered, cutoff)[0])
    pd.testing.assert_frame_equal(before, after)


@pytest.mark.parametrize(("seed", "every_days"), [(0, 14), (1, None), (2, 7)])
def test_eval_predictions_ignore_everything_after_the_eval_cutoff(seed, every_days):
    """Any leak from any training window (pooled or single) would move the eval predictions."""
    end = data_end(BASE)
    eval_cutoff, train_cutoff = end - pd.Timedelta(days=60), end - pd.Timedelta(days=120)
    tampered = _tamper(BASE, eval_cutoff, seed)
    kwargs = dict(horizon_days=60, eval_cutoff=eval_cutoff, train_cutoff=train_cutoff,
                  importance_repeats=0, every_days=every_days, n_bootstrap=0)
    clean = evaluate_repurchase(BASE, make_union, scaled_logistic_regression(), **kwargs)
    dirty = evaluate_repurchase(tampered, make_union, scaled_logistic_regression(), **kwargs)
    for column in ("repurchase_probability", "rfm_logreg_probability", "recency_score"):
        pd.testing.assert_series_equal(clean.scores[column], dirty.scores[column])
    validation = [k for k in clean.metrics if k.startswith("predict/validation_")]
    assert validation and all(clean.metrics[k] == dirty.metrics[k] for k in validation)
    # ...while what happened after it, the targets, did change.
    assert not clean.scores[FUTURE_SPEND].equals(dirty.scores[FUTURE_SPEND])


def test_every_training_window_ends_before_what_its_model_is_judged_on():
    """Evaluated, validation and deployed models: every label window ends by the cutoff the
    model is scored at (the eval cutoff, each validation cutoff, the data end)."""
    h = pd.Timedelta(days=60)
    plan = CutoffPlan.of(BASE, 60, every_days=14, min_history_days=30)
    assert len(plan.grid) >= 8 and plan.grid[-1] == plan.train_cutoff == plan.eval_cutoff - h
    assert all(c + h <= plan.eval_cutoff for c in plan.learn(plan.eval_cutoff))
    validation = plan.validation(3)
    assert validation == [plan.train_cutoff - pd.Timedelta(days=14 * k) for k in range(3)]
    for cutoff in validation:
        learnt = plan.learn(cutoff)
        assert learnt and all(c + h <= cutoff <= plan.eval_cutoff - h for c in learnt)
    deploy = plan.deploy()
    assert set(plan.grid) < set(deploy) and deploy[-1] == plan.data_end - h
    assert all(c + h <= plan.data_end for c in deploy)
    result = evaluate_repurchase(BASE, make_union, scaled_logistic_regression(), horizon_days=60,
                                 min_history_days=30, importance_repeats=0, n_bootstrap=0)
    assert result.evaluated_model.cutoffs == list(plan.grid)
    assert result.model.cutoffs == deploy
    assert result.metrics["predict/n_train_cutoffs"] == len(plan.grid)
    training = result.tables["training"]
    assert training["cutoff"].tolist() == list(plan.grid)
    assert result.metrics["predict/train_rows"] == training["rows"].sum()


def test_a_history_too_short_for_pooling_falls_back_to_one_cutoff():
    plan = CutoffPlan.of(BASE, 60, every_days=14, min_history_days=365)
    assert plan.every_days is None and plan.grid == (plan.train_cutoff,)
    assert "min_history_days" in plan.note
    result = evaluate_repurchase(BASE, make_union, scaled_logistic_regression(), horizon_days=60,
                                 min_history_days=365, importance_repeats=0, n_bootstrap=0)
    assert result.metrics["predict/n_train_cutoffs"] == 1
    assert np.isfinite(result.metrics["predict/roc_auc"])
    with pytest.raises(ValueError, match="every_days"):
        CutoffPlan.of(BASE, 60, every_days=0)


@pytest.mark.parametrize("seed", [0, 1])
def test_validation_scores_ignore_the_evaluation_period(seed):
    """What tuning optimises is blind to everything from the eval cutoff on."""
    end = data_end(BASE)
    eval_cutoff, train_cutoff = end - pd.Timedelta(days=60), end - pd.Timedelta(days=120)
    tampered = _tamper(BASE, eval_cutoff, seed)
    scores = []
    for tx in (BASE, tampered):
        plan = CutoffPlan.of(tx, 60, eval_cutoff, train_cutoff, every_days=14, min_history_days=30)
        validation = RepurchaseValidation(CutoffFrames(tx, make_union, 60), plan, make_union, n_windows=2)
        scores.append(validation.score(scaled_logistic_regression()))
    assert scores[0] == scores[1]
    assert 0.5 < scores[0]["predict/validation_roc_auc"] <= 1.0
    assert validation.cutoffs == [train_cutoff, train_cutoff - pd.Timedelta(days=14)]


def test_evaluation_reports_the_validation_pair_one_horizon_earlier():
    end = data_end(BASE)
    result = evaluate_repurchase(BASE, make_union, scaled_logistic_regression(), horizon_days=60,
                                 n_rolling=3, importance_repeats=0, validation_windows=1,
                                 n_bootstrap=0)
    rolling = result.tables["rolling"]  # its second round is exactly the validation window
    assert rolling.loc[1, "eval_cutoff"] == end - pd.Timedelta(days=120)
    assert result.metrics["predict/validation_roc_auc"] == pytest.approx(rolling.loc[1, "roc_auc"])
    assert result.metrics["predict/validation_recency_roc_auc"] == pytest.approx(
        rolling.loc[1, "recency_roc_auc"])


def test_validation_without_enough_history_is_nan_not_an_error():
    short = BASE[BASE[INVOICE_DATE] >= data_end(BASE) - pd.Timedelta(days=150)]
    result = evaluate_repurchase(short, make_union, scaled_logistic_regression(), horizon_days=60,
                                 importance_repeats=0, n_bootstrap=0)
    assert np.isfinite(result.metrics["predict/roc_auc"])
    assert np.isnan(result.metrics["predict/validation_roc_auc"])
    with pytest.raises(WindowError, match="no validation cutoff"):
        RepurchaseValidation.of(short, make_union, 60).check()


def test_cutoffs_that_would_leak_are_refused():
    end = data_end(BASE)
    with pytest.raises(ValueError, match="overlap"):
        evaluate_repurchase(BASE, make_union, scaled_logistic_regression(), horizon_days=60,
                            train_cutoff=end - pd.Timedelta(days=100), importance_repeats=0)
    with pytest.raises(ValueError, match="incomplete"):
        evaluate_repurchase(BASE, make_union, scaled_logistic_regression(), horizon_days=60,
                            eval_cutoff=end - pd.Timedelta(days=30), importance_repeats=0)


# --- baselines and metrics ----------------------------------------------------------------------

def test_recency_baseline_is_perfect_when_recency_decides():
    rows, invoice = [], 0
    for c in range(12):  # regulars buy every 7 days all year; the others stop early
        stop = 360 if c % 2 else 20 + 10 * c
        for day in range(c, stop, 7):
            invoice += 1
            rows.append((invoice, c, day, 1 + c % 3, 2.0))
    result = evaluate_repurchase(lines(rows), make_union, scaled_logistic_regression(),
                                 horizon_days=60, importance_repeats=0)
    assert result.metrics["predict/recency_roc_auc"] == 1.0
    assert result.metrics["predict/base_rate"] == pytest.approx(0.5)


def _pair_auc(y, s):
    """ROC AUC by its definition: share of (positive, negative) pairs ranked right, ties half."""
    pairs = [(a, b) for a, b in combinations(range(len(y)), 2) if y[a] != y[b]]
    won = [1.0 if (s[a] - s[b]) * (y[a] - y[b]) > 0 else 0.5 if s[a] == s[b] else 0.0
           for a, b in pairs]
    return sum(won) / len(won)


def test_metric_helpers_on_known_inputs():
    y = np.array([1, 0, 0, 0, 0, 0, 0, 0, 0, 0])
    assert lift_at(y, np.linspace(1, 0, 10), 0.1) == pytest.approx(1 / y.mean())
    assert lift_at(y, np.linspace(0, 1, 10), 0.1) == 0.0
    m = score_predictions(np.array([0, 1]), np.array([0.2, 0.6]))
    assert m["predict/brier"] == pytest.approx((0.2**2 + 0.4**2) / 2)
    assert m["predict/roc_auc"] == 1.0 and m["predict/pr_auc"] == 1.0
    rng = np.random.default_rng(0)
    y, s = rng.integers(0, 2, 40), rng.integers(0, 5, 40) / 4
    m = score_predictions(y, s)
    assert m["predict/roc_auc"] == pytest.approx(_pair_auc(y, s))
    assert m["predict/base_rate"] == pytest.approx(y.mean()) and m["predict/n_customers"] == 40
    assert np.isnan(score_predictions(np.ones(5), s[:5])["predict/roc_auc"])
    assert np.isnan(score_predictions(y, s * 3)["predict/brier"])  # not probabilities
    spend = score_spend(np.array([0.0, 10.0, 30.0]), np.array([5.0, 5.0, 50.0]))
    assert spend == pytest.approx({"predict/spend_mae": 10.0, "predict/spend_spearman": 3 ** 0.5 / 2,
                                   "predict/spend_total_ratio": 1.5})
    assert np.isnan(score_spend(np.zeros(3), np.ones(3))["predict/spend_total_ratio"])


# --- the full evaluation ------------------------------------------------------------------------

def test_evaluation_reports_scores_tables_and_models():
    segmenter = make_pipeline(StandardScaler(), KMeans(3, n_init=3, random_state=0))
    xgb = XGBClassifier(n_estimators=20, max_depth=2, n_jobs=1, random_state=0)
    result = evaluate_repurchase(BASE, make_union, xgb, horizon_days=60,
                                 segmenter_factory=lambda: clone(segmenter), n_rolling=3,
                                 importance_repeats=2, segment_predictors=True, n_bootstrap=200,
                                 spend_regressor=HistGradientBoostingRegressor(loss="poisson", max_depth=3),
                                 lifetime=CustomerValue(horizon_days=60))
    m = result.metrics
    for key in ["roc_auc", "pr_auc", "brier", "ece", "lift_at_10pct", "recency_roc_auc",
                "rfm_logreg_roc_auc", "bgnbd_roc_auc", "rolling_roc_auc_mean", "rolling_roc_auc_std",
                "spend_mae", "spend_spearman", "spend_total_ratio", "spend_last_period_mae",
                "bgnbd_spend_mae", "roc_auc_ci_low", "roc_auc_ci_high", "roc_auc_gain_vs_rfm",
                "roc_auc_gain_vs_rfm_ci_low", "roc_auc_gain_vs_recency_ci_high",
                "roc_auc_gain_vs_bgnbd_ci_low", "spend_mae_gain_vs_bgnbd_ci_low",
                "spend_mae_gain_vs_last_period", "roc_auc_all", "validation_roc_auc"]:
        assert np.isfinite(m[f"predict/{key}"]), key
    assert m["predict/roc_auc_ci_low"] < m["predict/roc_auc"] < m["predict/roc_auc_ci_high"]
    assert m["predict/roc_auc_gain_vs_rfm"] == pytest.approx(
        m["predict/roc_auc"] - m["predict/rfm_logreg_roc_auc"])
    assert m["predict/bgnbd_roc_auc"] == pytest.approx(
        roc_auc_score(result.scores[WILL_BUY], result.scores["bgnbd_probability"]))
    assert m["predict/bgnbd_spend_mae"] != m["predict/spend_last_period_mae"]
    assert set(result.tables) >= {"candidates", "reliability", "training", "by_segment", "rolling"}
    assert result.tables["reliability"]["n"].sum() == len(result.scores)
    scores = result.scores
    assert (scores["predicted_spend"] >= 0).all()
    errors = (scores["predicted_spend"] - scores[FUTURE_SPEND]).abs()
    assert m["predict/spend_mae"] == pytest.approx(errors.mean())
    assert m["predict/spend_spearman"] > 0  # spend follows the purchase rate in this shop
    assert m["predict/spend_mae"] < m["predict/spend_last_period_mae"]  # beats "next = last"
    assert m["predict/n_customers"] == len(result.scores)
    rolling = result.tables["rolling"]
    assert len(rolling) == 3 and rolling["eval_cutoff"].is_monotonic_decreasing
    assert m["predict/rolling_roc_auc_mean"] == pytest.approx(rolling["roc_auc"].mean())
    # Each round learns from the pooled grid's latest cutoff whose labels end by its eval cutoff.
    gap = (rolling["eval_cutoff"] - rolling["train_cutoff"]).dt.days
    assert gap.iloc[0] == 60 and gap.between(60, 60 + 14 - 1).all()
    assert result.tables["by_segment"]["n_customers"].sum() == len(result.scores)
    assert set(result.tables["importance"]["feature"]) == set(result.evaluated_model.columns)
    assert {c for c in result.evaluated_model.columns if c.startswith("segment_")}
    gain = result.tables["gain"]
    assert set(gain["feature"]) == set(result.evaluated_model.columns)
    assert gain["share"].sum() == pytest.approx(1.0)
    assert isinstance(importance_figure(result.tables["importance"]), Figure)


def test_rolling_needs_three_cutoffs():
    with pytest.raises(ValueError, match="n_rolling"):
        evaluate_repurchase(BASE, make_union, scaled_logistic_regression(), n_rolling=2)


def test_repurchase_model_pickles_and_scores_new_transactions():
    result = evaluate_repurchase(BASE, make_union, scaled_logistic_regression(),
                                 horizon_days=60, importance_repeats=0)
    model = pickle.loads(pickle.dumps(result.model))
    recent = BASE[BASE[INVOICE_DATE] >= START + pd.Timedelta(days=100)]
    proba = model.predict_proba(recent)
    pd.testing.assert_series_equal(proba, result.model.predict_proba(recent))
    purchasers = np.sort(recent.loc[~recent[IS_RETURN], CUSTOMER_ID].unique())
    assert proba.index.tolist() == purchasers.tolist()
    assert proba.between(0, 1).all()
    # The evaluated model scored the eval customers through the same code path.
    history = BASE[BASE[INVOICE_DATE] < data_end(BASE) - pd.Timedelta(days=60)]
    np.testing.assert_allclose(result.evaluated_model.predict_proba(history).to_numpy(),
                               result.scores["repurchase_probability"].to_numpy())


@pytest.mark.parametrize("metrics, warned", [
    ({"predict/validation_roc_auc": 0.54, "predict/validation_recency_roc_auc": 0.70,
      "predict/roc_auc": 0.9, "predict/recency_roc_auc": 0.8}, "the validation windows"),
    ({"predict/validation_roc_auc": float("nan"), "predict/validation_recency_roc_auc": 0.7,
      "predict/roc_auc": 0.73, "predict/recency_roc_auc": 0.82}, "evaluation"),
    ({"predict/validation_roc_auc": 0.75, "predict/validation_recency_roc_auc": 0.67,
      "predict/roc_auc": 0.745, "predict/recency_roc_auc": 0.684}, None),
    ({}, None),
])
def test_a_model_below_recency_alone_is_flagged_in_the_summary(metrics, warned):
    from segmentlab.study.runner import prediction_warning

    warning = prediction_warning(metrics)
    if warned is None:
        assert warning is None
    else:
        assert f"on {warned};" in warning and "every_days=null" in warning


def test_the_train_cutoff_alone_is_judged_beside_the_pooled_grid_and_the_better_one_kept():
    logreg = make_pipeline(StandardScaler(), LogisticRegression(max_iter=500))
    candidates = {"logreg": logreg, "xgboost": XGBClassifier(n_estimators=20, max_depth=2, n_jobs=1,
                                                             random_state=0)}
    result = evaluate_repurchase(random_shop(3, n_customers=120), make_union, candidates, horizon_days=60,
                                 every_days=14, validation_windows=2, compare_one_cutoff=True,
                                 importance_repeats=0, n_bootstrap=0)
    table, m = result.tables["candidates"], result.metrics
    assert list(table["candidate"]) == ["logreg", "logreg", "xgboost", "xgboost"]
    pooled, single = table["training"].iloc[0], table["training"].iloc[1]
    assert pooled.startswith("every 14 days, ") and single == "one cutoff"
    assert list(table.index) == ["logreg", "logreg_one_cutoff", "xgboost", "xgboost_one_cutoff"]
    (chosen,) = table.index[table["chosen"]]
    assert table.loc[chosen, "validation_roc_auc"] == table["validation_roc_auc"].max()
    # What is reported and deployed is the chosen row: its score, its number of training cutoffs.
    assert m["predict/roc_auc"] == pytest.approx(table.loc[chosen, "roc_auc"])
    assert (m["predict/n_train_cutoffs"] == 1) == (table.loc[chosen, "training"] == "one cutoff")
    for key in table.index:
        assert m[f"predict/candidate_{key}_validation_roc_auc"] == pytest.approx(
            table.loc[key, "validation_roc_auc"], nan_ok=True)
    # The single-cutoff rows learn from fewer rows: a different model, not a copy of the pooled one.
    assert table["validation_roc_auc"].iloc[0] != table["validation_roc_auc"].iloc[1]
    off = evaluate_repurchase(random_shop(3, n_customers=120), make_union, candidates, horizon_days=60,
                              every_days=14, validation_windows=2, importance_repeats=0, n_bootstrap=0)
    assert list(off.tables["candidates"]["training"].str.startswith("every")) == [True, True]
