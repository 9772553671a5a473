"""Pooled training windows: cutoffs, the stacked frame, leakage, bootstrap AUC and calibration."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from sklearn.metrics import roc_auc_score
from sklearn.pipeline import FeatureUnion

from segmentlab.customers import snapshot_date as data_end
from segmentlab.features.activity import ActivityFeatures
from segmentlab.features.behaviour import BehaviourFeatures
from segmentlab.features.rfm import RFMFeatures
from segmentlab.prediction.calibration import expected_calibration_error, reliability_table
from segmentlab.prediction.pooling import CUTOFF, pooled_frame, time_split
from segmentlab.prediction.uncertainty import _weighted_auc, bootstrap_auc
from segmentlab.prediction.windows import FUTURE_SPEND, WILL_BUY, cutoff_frame, train_cutoffs
from segmentlab.schema import AMOUNT, CUSTOMER_ID, INVOICE_DATE, QUANTITY, UNIT_PRICE
from tests.conftest import clean_lines

START = pd.Timestamp("2011-01-03")


def make_union() -> FeatureUnion:
    return FeatureUnion([("rfm", RFMFeatures()), ("behaviour", BehaviourFeatures(top_countries=2)),
                         ("activity", ActivityFeatures(season_days=30))]).set_output(transform="pandas")


def shop(seed: int = 0, n_customers: int = 60, days: int = 300) -> pd.DataFrame:
    """Customers with their own purchase rate, a few returns and three countries."""
    rng = np.random.default_rng(seed)
    rows = []
    for c in range(n_customers):
        rate, first = rng.gamma(1.0, 0.03), int(rng.integers(0, days // 2))
        country = ["United Kingdom", "France", "Germany"][c % 3]
        for day in range(first, days):
            if day == first or rng.random() < rate:
                when = START + pd.Timedelta(days=day, hours=int(rng.integers(8, 18)))
                invoice = f"{c:03d}{day:03d}"
                for k in range(int(rng.integers(1, 4))):
                    rows.append((invoice, f"S{k}", int(rng.integers(1, 9)), when.isoformat(),
                                 float(rng.integers(1, 9)), 1000 + c, country))
                if rng.random() < 0.1:
                    rows.append((f"C{invoice}", "S0", -1, (when + pd.Timedelta(hours=1)).isoformat(),
                                 1.0, 1000 + c, country))
    rows.append(("999999", "S0", 1, (START + pd.Timedelta(days=days)).isoformat(), 1.0, 1, "France"))
    return clean_lines(rows).sort_values(INVOICE_DATE, kind="stable").reset_index(drop=True)


BASE = shop()


# --- cutoffs --------------------------------------------------------------------------------------

def test_train_cutoffs_by_hand():
    cutoffs = train_cutoffs("2011-01-01", "2011-06-30", horizon_days=30, every_days=14,
                            min_history_days=60)
    expected = pd.to_datetime(["2011-03-08", "2011-03-22", "2011-04-05", "2011-04-19",
                               "2011-05-03", "2011-05-17", "2011-05-31"])
    assert cutoffs == list(expected)
    one = train_cutoffs("2011-01-01", "2011-06-30", 30, every_days=7, min_history_days=150)
    assert one == [pd.Timestamp("2011-05-31")]  # exactly 150 days of history is enough


def test_no_cutoff_is_an_error_naming_the_setting():
    with pytest.raises(ValueError, match="min_history_days"):
        train_cutoffs("2011-01-01", "2011-04-01", 30, min_history_days=90)
    with pytest.raises(ValueError, match="every_days"):
        train_cutoffs("2011-01-01", "2011-06-30", 30, every_days=0)


# --- the stacked frame ------------------------------------------------------------------------------

def test_pooled_rows_match_the_single_window_path():
    cutoffs = [START + pd.Timedelta(days=d) for d in (120, 150, 180)]
    pooled = pooled_frame(BASE, make_union, cutoffs, horizon_days=30, population="all")
    frame = pooled.frame
    assert frame[CUTOFF].is_monotonic_increasing and not frame[[CUSTOMER_ID, CUTOFF]].duplicated().any()
    for cutoff in cutoffs:
        history, target = cutoff_frame(BASE, cutoff, horizon_days=30)
        rows = frame[frame[CUTOFF] == cutoff].set_index(CUSTOMER_ID)
        pd.testing.assert_frame_equal(rows[[WILL_BUY, FUTURE_SPEND]], target)
        alone = make_union().fit_transform(history).loc[rows.index]
        pd.testing.assert_frame_equal(rows[alone.columns], alone, check_dtype=False)
    assert pooled.counts["rows"].tolist() == frame.groupby(CUTOFF).size().tolist()
    assert pooled.counts["buyers"].sum() == frame[WILL_BUY].sum()
    assert not frame[pooled.feature_columns + pooled.baseline_columns].isna().any().any()
    assert list(pooled.X().columns) == pooled.feature_columns and pooled.feature_columns
    np.testing.assert_array_equal(pooled.y, frame[WILL_BUY])


def test_population_drops_the_dormant_and_counts_them():
    cutoff = START + pd.Timedelta(days=200)
    everyone = pooled_frame(BASE, make_union, [cutoff], 30, population="all")
    active = pooled_frame(BASE, make_union, [cutoff], 30, population="active", active_days=60)
    history = BASE[(BASE[INVOICE_DATE] < cutoff) & ~BASE["is_return"]]
    last = history.groupby(CUSTOMER_ID)[INVOICE_DATE].max()
    recent = set(last.index[last >= cutoff - pd.Timedelta(days=60)])
    assert set(active.frame[CUSTOMER_ID]) == recent
    counts = active.counts.iloc[0]
    assert counts["purchasers"] == len(last) == everyone.counts.iloc[0]["rows"]
    assert counts["dropped_inactive"] == len(last) - len(recent) > 0
    assert counts["rows"] + counts["dropped_inactive"] == counts["purchasers"]
    with pytest.raises(ValueError, match="population"):
        pooled_frame(BASE, make_union, [cutoff], 30, population="recent")


def test_label_windows_must_end_before_the_evaluation_and_the_data():
    eval_cutoff = data_end(BASE) - pd.Timedelta(days=30)
    late = eval_cutoff - pd.Timedelta(days=29)  # its labels end one day into the evaluation
    with pytest.raises(ValueError, match="labels_before"):
        pooled_frame(BASE, make_union, [late], 30, labels_before=eval_cutoff)
    with pytest.raises(ValueError, match="data end"):
        pooled_frame(BASE, make_union, [data_end(BASE) - pd.Timedelta(days=29)], 30)


# --- leakage ------------------------------------------------------------------------------------

def tamper(tx: pd.DataFrame, cutoff: pd.Timestamp, seed: int) -> pd.DataFrame:
    """Delete, rescale and add lines at or after ``cutoff``; the data end stays where it was."""
    rng = np.random.default_rng(seed)
    late = (tx[INVOICE_DATE] >= cutoff).to_numpy()
    keep = ~late | (rng.random(len(tx)) < 0.6)
    keep[-1] = True
    changed = tx[keep].copy()
    moved = changed[INVOICE_DATE] >= cutoff
    changed.loc[moved, QUANTITY] *= 3
    changed.loc[moved, AMOUNT] = changed.loc[moved, QUANTITY] * changed.loc[moved, UNIT_PRICE]
    extra = changed[moved].sample(frac=0.3, random_state=seed).copy()
    extra[CUSTOMER_ID] = rng.choice(changed[CUSTOMER_ID].unique(), size=len(extra))
    return pd.concat([changed, extra]).sort_values(INVOICE_DATE, kind="stable")


def test_every_training_row_ignores_lines_at_or_after_its_cutoff_and_labels_end_in_time():
    eval_cutoff = data_end(BASE) - pd.Timedelta(days=30)
    cutoffs = train_cutoffs(BASE[INVOICE_DATE].min(), eval_cutoff, 30, every_days=28,
                            min_history_days=90)
    clean = pooled_frame(BASE, make_union, cutoffs, 30, labels_before=eval_cutoff)
    assert len(cutoffs) >= 5
    assert (clean.frame[CUTOFF] + pd.Timedelta(days=30) <= eval_cutoff).all()
    columns = clean.feature_columns + clean.baseline_columns
    for k, cutoff in enumerate(cutoffs):
        # Rows of later cutoffs may see the tampered lines: only those up to ``cutoff`` are built.
        dirty = pooled_frame(tamper(BASE, cutoff, seed=k), make_union, cutoffs[: k + 1], 30,
                             labels_before=eval_cutoff)
        before = clean.frame[clean.frame[CUTOFF] <= cutoff].set_index([CUTOFF, CUSTOMER_ID])
        after = dirty.frame.set_index([CUTOFF, CUSTOMER_ID])
        pd.testing.assert_frame_equal(before[columns], after.reindex(columns=columns, fill_value=0.0))
        # ...while the label of the cutoff itself saw the tampered future.
        at = (before.loc[cutoff, FUTURE_SPEND], after.loc[cutoff, FUTURE_SPEND])
        assert not at[0].equals(at[1])


def test_time_split_learns_only_from_labels_complete_by_the_score_cutoff():
    cutoffs = [START + pd.Timedelta(days=d) for d in (100, 120, 140, 160)]
    pooled = pooled_frame(BASE, make_union, cutoffs, 30)
    learn, score = time_split(pooled, cutoffs[-1], horizon_days=30)
    learnt = set(pooled.frame.loc[learn, CUTOFF])
    assert learnt == set(cutoffs[:2])  # 140 + 30 > 160
    assert set(pooled.frame.loc[score, CUTOFF]) == {cutoffs[-1]}
    with pytest.raises(ValueError, match="not one of"):
        time_split(pooled, START + pd.Timedelta(days=161), 30)


# --- bootstrap ------------------------------------------------------------------------------------

def test_weighted_auc_equals_sklearn_with_sample_weights():
    rng = np.random.default_rng(0)
    y = rng.integers(0, 2, 300)
    scores = np.round(y + rng.normal(0, 1.5, 300), 1)  # rounding makes ties
    weights = rng.integers(0, 4, (5, 300)).astype(float)
    expected = [roc_auc_score(y, scores, sample_weight=w) for w in weights]
    np.testing.assert_allclose(_weighted_auc(y, scores, weights), expected, rtol=1e-12)


def test_bootstrap_interval_and_paired_gain():
    rng = np.random.default_rng(1)
    y = rng.integers(0, 2, 2000)
    signal = y + rng.normal(0, 1.0, 2000)
    weak = y + rng.normal(0, 3.0, 2000)
    out = bootstrap_auc(y, signal, {"weak": weak, "same": signal}, n=300, seed=3)
    assert out["roc_auc"] == pytest.approx(roc_auc_score(y, signal))
    assert out["roc_auc_ci_low"] < out["roc_auc"] < out["roc_auc_ci_high"]
    assert 0.01 < out["roc_auc_ci_high"] - out["roc_auc_ci_low"] < 0.06
    assert out["weak_roc_auc"] == pytest.approx(roc_auc_score(y, weak))
    assert out["gain_vs_weak_ci_low"] > 0
    assert out["gain_vs_same"] == out["gain_vs_same_ci_low"] == out["gain_vs_same_ci_high"] == 0
    assert bootstrap_auc(y, signal, weak, n=300, seed=3)["gain_vs_baseline_ci_low"] == \
        out["gain_vs_weak_ci_low"]
    # Groups of one row are the plain row bootstrap. Stacking a copy of every row, grouped
    # with its original, resamples the same customers as the single copy did: same interval.
    # Resampling the copies as rows pretends to twice the customers: a narrower interval.
    rows = bootstrap_auc(y, signal, weak, n=300, seed=3, groups=np.arange(2000) * 7)
    assert rows == bootstrap_auc(y, signal, weak, n=300, seed=3)
    stacked = np.r_[y, y], np.r_[signal, signal]
    grouped = bootstrap_auc(*stacked, n=300, seed=3, groups=np.r_[np.arange(2000), np.arange(2000)])
    naive = bootstrap_auc(*stacked, n=300, seed=3)
    for key in ["roc_auc", "roc_auc_ci_low", "roc_auc_ci_high"]:
        assert grouped[key] == pytest.approx(out[key])
    width = {name: d["roc_auc_ci_high"] - d["roc_auc_ci_low"] for name, d in
             [("grouped", grouped), ("naive", naive)]}
    assert width["naive"] < 0.9 * width["grouped"]
    with pytest.raises(ValueError, match="both classes"):
        bootstrap_auc(np.ones(10), np.arange(10))
    with pytest.raises(ValueError, match="weak"):
        bootstrap_auc(y, signal, {"weak": weak[:-1]})


# --- calibration ------------------------------------------------------------------------------------

def test_calibration_error_on_known_inputs():
    y = np.array([1, 0] * 50)
    assert expected_calibration_error(y, np.full(100, 0.7)) == pytest.approx(0.2)
    # Two bins, each predicting exactly its observed rate: perfectly calibrated.
    p = np.r_[np.full(10, 0.2), np.full(10, 0.9)]
    y = np.r_[[1, 1] + [0] * 8, [1] * 9 + [0]]
    assert expected_calibration_error(y, p) == pytest.approx(0.0)
    # 0.25 is off by 0.25 on 4 rows, 1.0 (last bin) by 0.5 on 2: (4 * .25 + 2 * .5) / 6.
    p, y = np.r_[[0.25] * 4, [1.0] * 2], np.r_[[0, 0, 1, 1], [1, 0]]
    assert expected_calibration_error(y, p, n_bins=4) == pytest.approx(2 / 6)
    table = reliability_table(y, p, n_bins=4)
    assert table["n"].tolist() == [4, 2] and table["bin_high"].tolist() == [0.5, 1.0]
    assert table["observed_rate"].tolist() == [0.5, 0.5]
    with pytest.raises(ValueError, match="probabilities"):
        expected_calibration_error(y, p * 2)
