"""BG/NBD and Gamma-Gamma outputs as predictors: a customer-base model's view of each customer.

`segmentlab.lifetime.CustomerValue` fits both models on the purchases it is given and scores
every customer; this feature set puts its outputs on scales a classifier can use (logs of the
heavy-tailed counts and money) and never yields a missing value: in a window with too few repeat
buyers to fit a model, that model's columns are 0 and its ``*_fitted`` flag is 0.
"""

from __future__ import annotations

import warnings

import numpy as np
import pandas as pd
from sklearn.base import BaseEstimator, TransformerMixin
from sklearn.utils.validation import check_is_fitted

from segmentlab.lifetime.value import CustomerValue
from segmentlab.schema import CUSTOMER_ID

_COLUMNS = ["p_alive", "p_purchase", "log_expected_purchases", "log_expected_spend_per_order",
            "log_expected_spend", "bgnbd_fitted", "gamma_gamma_fitted"]


class LifetimeFeatures(TransformerMixin, BaseEstimator):
    """P(alive), P(purchase), expected purchases and spend in a horizon, per customer.

    ``fit`` fits BG/NBD and Gamma-Gamma on the purchases given (up to the midnight after their
    last invoice day); ``transform`` scores the customers of any transactions with the fitted
    parameters, measured to that window's own end, as the other feature sets do.

    Columns: ``p_alive``; ``p_purchase`` (at least one purchase in ``horizon_days``);
    ``log_expected_purchases`` (log1p of expected purchase days); ``log_expected_spend_per_order``
    and ``log_expected_spend`` (log1p, in the data's currency); ``bgnbd_fitted`` and
    ``gamma_gamma_fitted`` (1, or 0 when the window had fewer than ``min_repeat_customers`` repeat
    buyers and the model's columns are 0).

    Parameters
    ----------
    horizon_days : int
        Horizon of the purchase probability and expectations; keep it equal to
        ``prediction.horizon_days``.
    penalizer_coef : float
        See `segmentlab.lifetime.bgnbd.BGNBDModel`.
    min_repeat_customers : int
        Fewest repeat buyers a model is fitted on.
    """

    def __init__(self, horizon_days: int = 90, penalizer_coef: float = 0.0,
                 min_repeat_customers: int = 10):
        self.horizon_days = horizon_days
        self.penalizer_coef = penalizer_coef
        self.min_repeat_customers = min_repeat_customers

    def fit(self, transactions: pd.DataFrame, y=None) -> LifetimeFeatures:
        """Fit both models on the purchases of ``transactions``."""
        self.value_ = CustomerValue(horizon_days=self.horizon_days, penalizer_coef=self.penalizer_coef,
                                    min_repeat_customers=self.min_repeat_customers)
        with warnings.catch_warnings():  # a thin window is what the *_fitted flags say
            warnings.simplefilter("ignore", RuntimeWarning)
            self.value_.fit(transactions)
        return self

    def transform(self, transactions: pd.DataFrame) -> pd.DataFrame:
        """One row per customer with a purchase in ``transactions``, sorted by ``customer_id``."""
        check_is_fitted(self, "value_")
        values = self.value_.transform(transactions)
        h = self.horizon_days
        frame = pd.DataFrame({
            # Rounded: where the dropout process collapses (a -> 0, as on the Online Retail file)
            # p_alive is 1 - 1e-9 noise, which a scaler would blow up into a huge, window-specific
            # signal; four decimals are all a probability needs.
            "p_alive": values["p_alive"].round(4),
            "p_purchase": values[f"p_purchase_{h}d"],
            "log_expected_purchases": np.log1p(values[f"expected_purchases_{h}d"]),
            "log_expected_spend_per_order": np.log1p(values["expected_spend_per_order"].clip(lower=0)),
            "log_expected_spend": np.log1p(values[f"expected_spend_{h}d"].clip(lower=0)),
            "bgnbd_fitted": float(self.value_.bgnbd_ is not None),
            "gamma_gamma_fitted": float(self.value_.gamma_gamma_ is not None),
        }, index=values.index)
        frame.index.name = CUSTOMER_ID
        return frame.fillna(0.0)[_COLUMNS]

    def get_feature_names_out(self, input_features=None) -> np.ndarray:
        return np.array(_COLUMNS, dtype=object)
