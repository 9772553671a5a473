"""RFM on the window it was fitted on, and on others."""

from __future__ import annotations

import numpy as np
from sklearn.base import clone

from segmentlab.features.rfm import RFMFeatures


def test_contract(transactions):
    features = RFMFeatures().fit_transform(transactions)
    purchasers = transactions.loc[~transactions["is_return"], "customer_id"].unique()
    assert features.index.is_unique and set(features.index) == set(purchasers)
    assert list(features.columns) == list(RFMFeatures().get_feature_names_out())
    assert not features.isna().any().any() and (features["recency_days"] >= 1).all()
    assert clone(RFMFeatures(log=False)).get_params() == {"log": False}


def test_later_window_is_measured_from_its_own_end(transactions):
    cut = transactions["invoice_date"].quantile(0.5)
    early = transactions[transactions["invoice_date"] < cut]
    late = transactions[transactions["invoice_date"] >= cut]
    rfm = RFMFeatures().fit(early)
    on_late = rfm.transform(late)
    assert (on_late["recency_days"] >= 1).all()  # never negative on newer data
    np.testing.assert_array_equal(on_late["recency_days"], RFMFeatures().fit_transform(late)["recency_days"])
    # an earlier window keeps the fitted snapshot: recency grows by the gap
    assert (RFMFeatures().fit(late).transform(early)["recency_days"] >=
            RFMFeatures().fit_transform(early)["recency_days"]).all()
