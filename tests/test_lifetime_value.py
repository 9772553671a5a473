"""The summary at a cutoff and CustomerValue, from cleaned transactions."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from sklearn.base import clone
from sklearn.metrics import roc_auc_score

from segmentlab.lifetime.summary import rfm_summary
from segmentlab.lifetime.value import MONTH_DAYS, CustomerValue
from segmentlab.schema import CUSTOMER_ID, INVOICE_DATE, IS_RETURN, DataError
from tests.conftest import clean_lines, real_data_path

CUTOFF = "2011-02-01"


@pytest.fixture
def lines() -> pd.DataFrame:
    return clean_lines([
        # customer 1: two invoices on 3 Jan make one purchase day (15), then 10 Jan (20) and
        # 20 Jan (2 lines, 40); a return before the cutoff and a purchase after it are ignored.
        ("1001", "A", 1, "2011-01-03 10:00", 10.0, 1, "UK"),
        ("1002", "B", 1, "2011-01-03 15:00", 5.0, 1, "UK"),
        ("1003", "A", 2, "2011-01-10 09:00", 10.0, 1, "UK"),
        ("1004", "A", 2, "2011-01-20 09:00", 10.0, 1, "UK"),
        ("1004", "B", 1, "2011-01-20 09:00", 20.0, 1, "UK"),
        ("C1005", "A", -1, "2011-01-15 09:00", 10.0, 1, "UK"),
        ("1006", "A", 9, "2011-02-05 09:00", 10.0, 1, "UK"),
        # customer 2: one purchase late on the day before the cutoff.
        ("1007", "A", 1, "2011-01-31 23:00", 7.0, 2, "UK"),
        # customer 3: only a return before the cutoff; customer 4: only buys after it.
        ("C1008", "A", -1, "2011-01-12 09:00", 10.0, 3, "UK"),
        ("1009", "A", 1, "2011-02-02 09:00", 10.0, 4, "UK"),
    ])


def test_summary_by_hand(lines):
    summary = rfm_summary(lines, CUTOFF)
    assert summary.index.tolist() == [1, 2] and summary.index.name == CUSTOMER_ID
    assert summary.loc[1].tolist() == [2.0, 17.0, 29.0, 30.0]  # (20 + 40) / 2 repeat days
    assert summary.loc[2].tolist() == [0.0, 0.0, 1.0, 0.0]


def test_summary_missing_column_is_one_line_error(lines):
    with pytest.raises(DataError, match=r"missing columns \['is_return'\]") as error:
        rfm_summary(lines.drop(columns=IS_RETURN), CUTOFF)
    assert "\n" not in str(error.value)


def test_too_few_repeat_buyers_gives_nan_with_reason(lines):
    with pytest.warns(RuntimeWarning, match="needs at least 10 customers with a repeat purchase, got 1"):
        model = CustomerValue(cutoff=CUTOFF).fit(lines)
    assert model.bgnbd_ is None and model.gamma_gamma_ is None
    assert "BG/NBD needs" in model.status_ and "Gamma-Gamma needs" in model.status_
    assert model.excluded_ == {"lines_at_or_after_cutoff": 2, "return_lines_before_cutoff": 2,
                               "customers_with_only_returns_before_cutoff": 1}
    scores = model.transform(lines)
    assert scores.index.tolist() == [1, 2] and scores.isna().all().all()


@pytest.fixture
def fitted(transactions) -> tuple[CustomerValue, pd.DataFrame]:
    model = CustomerValue(cutoff="2011-10-01", horizon_days=60).fit(transactions)
    return model, model.transform(transactions)


def test_customer_value_scores_every_purchaser_before_the_cutoff(transactions, fitted):
    model, scores = fitted
    assert model.status_ == "ok"
    before = transactions[(transactions[INVOICE_DATE] < "2011-10-01") & ~transactions[IS_RETURN]]
    assert scores.index.tolist() == sorted(before[CUSTOMER_ID].unique())
    assert scores.columns.tolist() == model.get_feature_names_out().tolist()
    assert scores.columns.tolist() == ["p_alive", "p_purchase_60d", "expected_purchases_60d",
                                       "expected_spend_per_order", "expected_spend_60d", "clv_12m"]
    assert np.isfinite(scores.to_numpy()).all()
    assert scores["p_alive"].between(0, 1).all()
    assert (scores["p_purchase_60d"] <= scores["p_alive"] + 1e-12).all()
    assert np.allclose(scores["expected_spend_60d"],
                       scores["expected_purchases_60d"] * scores["expected_spend_per_order"])
    assert clone(model).get_params() == model.get_params()


def test_clv_falls_as_the_discount_rate_rises(transactions, fitted):
    model, _ = fitted
    clv = [model.set_params(discount_rate=rate).transform(transactions)["clv_12m"]
           for rate in (0.0, 0.05, 0.10, 0.50)]
    assert all((earlier > later).all() for earlier, later in zip(clv, clv[1:], strict=False))
    # Undiscounted, the CLV is spend per order times the purchases expected in a year.
    summary = rfm_summary(transactions, model.cutoff_)
    year = model.bgnbd_.expected_purchases(12 * MONTH_DAYS, summary["frequency"], summary["recency"],
                                           summary["T"])
    spend = model.gamma_gamma_.expected_spend(summary["frequency"], summary["monetary_value"])
    assert np.allclose(clv[0], year * spend, rtol=1e-10)


def test_default_cutoff_is_the_midnight_after_the_last_invoice(transactions):
    model = CustomerValue().fit(transactions)
    assert model.cutoff_ == transactions[INVOICE_DATE].max().normalize() + pd.Timedelta(days=1)


@pytest.mark.parametrize("params,message", [
    ({"horizon_days": 0}, "horizon_days must be a positive whole number"),
    ({"horizon_days": 90.5}, "horizon_days must be a positive whole number"),
    ({"discount_rate": -0.1}, "discount_rate must be an annual rate >= 0"),
    ({"clv_months": 0}, "clv_months must be a positive whole number"),
    ({"cutoff": "not a date"}, "cutoff must be a date"),
    ({"cutoff": "2000-01-01"}, "no purchase .* before the cutoff 2000-01-01"),
])
def test_bad_settings_give_one_line_errors(transactions, params, message):
    with pytest.raises((ValueError, DataError), match=message) as error:
        CustomerValue(**params).fit(transactions)
    assert "\n" not in str(error.value)


@pytest.mark.real_data
@pytest.mark.skipif(real_data_path() is None, reason="SEGMENTLAB_DATA is not set")
def test_real_file_at_the_september_cutoff(tmp_path):
    from segmentlab.data.cleaning import TransactionCleaner
    from segmentlab.data.loading import OnlineRetailFile, load_dataset
    from segmentlab.prediction.windows import cutoff_frame

    transactions = load_dataset(OnlineRetailFile(real_data_path()), TransactionCleaner(),
                                cache_dir=tmp_path).transactions
    model = CustomerValue(cutoff="2011-09-11").fit(transactions)
    scores = model.transform(transactions)
    history, target = cutoff_frame(transactions, "2011-09-11", 90)
    assert scores.index.equals(target.index)  # the customers the prediction stage scores
    assert model.status_ == "ok" and np.isfinite(scores.to_numpy()).all()
    last = history[~history[IS_RETURN]].groupby(CUSTOMER_ID)[INVOICE_DATE].max()
    recency_auc = roc_auc_score(target["will_buy"], last.reindex(target.index).astype("int64"))
    assert roc_auc_score(target["will_buy"], scores["p_purchase_90d"]) > recency_auc
