"""Per-customer lifetime value at a cutoff: BG/NBD for purchases, Gamma-Gamma for spend."""

from __future__ import annotations

import warnings

import numpy as np
import pandas as pd
from sklearn.base import BaseEstimator, TransformerMixin
from sklearn.utils.validation import check_is_fitted

from segmentlab.lifetime.bgnbd import BGNBDModel
from segmentlab.lifetime.gamma_gamma import GammaGammaModel
from segmentlab.lifetime.summary import (
    AGE,
    FREQUENCY,
    MONETARY,
    RECENCY,
    check_transactions,
    data_end,
    rfm_summary,
)
from segmentlab.schema import CUSTOMER_ID, INVOICE_DATE, IS_RETURN, DataError

MONTH_DAYS = 365.25 / 12  # so that 12 months are one year of days


class CustomerValue(TransformerMixin, BaseEstimator):
    """P(alive), expected purchases, spend per order and discounted CLV per customer.

    ``fit`` summarises purchases before the cutoff (``rfm_summary``) and fits a BG/NBD and a
    Gamma-Gamma model on them; ``transform`` scores every customer with a purchase before the
    cutoff. Like a feature set, it maps cleaned transactions to a frame indexed by
    ``customer_id`` (sorted).

    Parameters
    ----------
    cutoff : Timestamp, str or None
        The moment of prediction; lines at or after it are ignored. None: the midnight after
        the last invoice day of the transactions given (to ``fit``, and to ``transform``
        separately, so a later window is scored at its own end with the fitted parameters).
    horizon_days : int
        Horizon of ``p_purchase_<h>d``, ``expected_purchases_<h>d`` and ``expected_spend_<h>d``.
    discount_rate : float
        Annual discount rate of ``clv_<m>m``, applied monthly: month ``k`` is weighted
        ``(1 + discount_rate) ** (-k / 12)``.
    clv_months : int
        Length of the lifetime-value horizon in months of 365.25 / 12 days.
    penalizer_coef : float
        Passed to both models (see ``BGNBDModel``).
    min_repeat_customers : int
        Fewest customers with a repeat purchase each model is fitted on. With fewer, the
        affected columns are NaN and ``status_`` says why (a warning is raised too).

    Attributes
    ----------
    cutoff_ : Timestamp
        Where the models were fitted.
    bgnbd_, gamma_gamma_ : fitted models, or None when there were too few repeat buyers.
    status_ : str
        ``"ok"`` or a one-line reason why some columns are NaN.
    excluded_ : dict
        Lines and customers ``fit`` left out, by reason.
    """

    def __init__(self, cutoff: pd.Timestamp | str | None = None, horizon_days: int = 90,
                 discount_rate: float = 0.10, clv_months: int = 12, penalizer_coef: float = 0.0,
                 min_repeat_customers: int = 10):
        self.cutoff = cutoff
        self.horizon_days = horizon_days
        self.discount_rate = discount_rate
        self.clv_months = clv_months
        self.penalizer_coef = penalizer_coef
        self.min_repeat_customers = min_repeat_customers

    def fit(self, transactions: pd.DataFrame, y=None) -> CustomerValue:
        """Fit BG/NBD and Gamma-Gamma on the purchases before the cutoff."""
        self._check_params()
        check_transactions(transactions)
        self.cutoff_ = self._cutoff_for(transactions)
        summary = rfm_summary(transactions, self.cutoff_)
        if summary.empty:
            raise DataError(f"transactions: no purchase (is_return False) before the cutoff "
                            f"{self.cutoff_}")
        self.excluded_ = _exclusions(transactions, self.cutoff_, summary.index)
        reasons = []
        self.bgnbd_ = self._fit_or_reason(BGNBDModel, summary, reasons)
        self.gamma_gamma_ = self._fit_or_reason(GammaGammaModel, summary, reasons)
        self.status_ = "; ".join(reasons) or "ok"
        if reasons:
            warnings.warn(f"CustomerValue at {self.cutoff_.date()}: {self.status_}", RuntimeWarning,
                          stacklevel=2)
        self.n_customers_ = len(summary)
        return self

    def transform(self, transactions: pd.DataFrame) -> pd.DataFrame:
        """Score every customer with a purchase before the cutoff.

        Returns
        -------
        DataFrame
            Indexed by ``customer_id`` (sorted), columns ``get_feature_names_out()``:
            ``p_alive``; ``p_purchase_<h>d`` = P(at least one purchase in the horizon);
            ``expected_purchases_<h>d`` (purchase days); ``expected_spend_per_order`` (per
            purchase day; the population mean for customers without a repeat purchase);
            ``expected_spend_<h>d`` = their product; ``clv_<m>m``, the discounted expected
            spend over ``clv_months``.
        """
        check_is_fitted(self, "status_")
        check_transactions(transactions)
        summary = rfm_summary(transactions, self._cutoff_for(transactions))
        x, tx, age = (summary[c].to_numpy(float) for c in (FREQUENCY, RECENCY, AGE))
        h = float(self.horizon_days)
        nan = np.full(len(summary), np.nan)
        bg, gg = self.bgnbd_, self.gamma_gamma_
        purchases = bg.expected_purchases(h, x, tx, age) if bg is not None else nan
        spend = gg.expected_spend(x, summary[MONETARY].to_numpy(float)) if gg is not None else nan
        frame = pd.DataFrame({
            "p_alive": bg.p_alive(x, tx, age) if bg is not None else nan,
            f"p_purchase_{self.horizon_days}d": bg.p_purchase(h, x, tx, age) if bg is not None else nan,
            f"expected_purchases_{self.horizon_days}d": purchases,
            "expected_spend_per_order": spend,
            f"expected_spend_{self.horizon_days}d": purchases * spend,
            f"clv_{self.clv_months}m": self._clv(x, tx, age, spend) if bg is not None else nan,
        }, index=summary.index)
        frame.index.name = CUSTOMER_ID
        return frame

    def get_feature_names_out(self, input_features=None) -> np.ndarray:
        h, m = self.horizon_days, self.clv_months
        return np.array(["p_alive", f"p_purchase_{h}d", f"expected_purchases_{h}d",
                         "expected_spend_per_order", f"expected_spend_{h}d", f"clv_{m}m"], dtype=object)

    def _clv(self, x, tx, age, spend) -> np.ndarray:
        """Expected spend month by month over ``clv_months``, discounted to the cutoff."""
        months = np.arange(1, self.clv_months + 1)
        cumulative = np.stack([self.bgnbd_.expected_purchases(k * MONTH_DAYS, x, tx, age)
                               for k in months])
        per_month = np.diff(cumulative, axis=0, prepend=0.0)
        weights = (1.0 + self.discount_rate) ** (-months / 12.0)
        return spend * (weights @ per_month)

    def _fit_or_reason(self, model_class, summary: pd.DataFrame, reasons: list[str]):
        model = model_class(penalizer_coef=self.penalizer_coef,
                            min_repeat_customers=self.min_repeat_customers)
        try:
            return model.fit(summary)
        except ValueError as error:
            if "needs at least" not in str(error):  # only "too few repeat buyers" degrades
                raise
            reasons.append(str(error))
            return None

    def _cutoff_for(self, transactions: pd.DataFrame) -> pd.Timestamp:
        return data_end(transactions) if self.cutoff is None else pd.Timestamp(self.cutoff)

    def _check_params(self) -> None:
        if not (isinstance(self.horizon_days, int | np.integer) and self.horizon_days > 0):
            raise ValueError(f"horizon_days must be a positive whole number of days, "
                             f"got {self.horizon_days!r}")
        if not (isinstance(self.clv_months, int | np.integer) and self.clv_months > 0):
            raise ValueError(f"clv_months must be a positive whole number, got {self.clv_months!r}")
        if not (np.isfinite(self.discount_rate) and self.discount_rate >= 0):
            raise ValueError(f"discount_rate must be an annual rate >= 0, got {self.discount_rate!r}")
        if self.cutoff is not None:
            try:
                pd.Timestamp(self.cutoff)
            except (TypeError, ValueError):
                raise ValueError(f"cutoff must be a date, got {self.cutoff!r}") from None


def _exclusions(transactions: pd.DataFrame, cutoff: pd.Timestamp, scored: pd.Index) -> dict[str, int]:
    """Lines and customers the summary leaves out, counted once each under one reason."""
    before = (transactions[INVOICE_DATE] < cutoff).to_numpy()
    returns = transactions[IS_RETURN].to_numpy(bool)
    seen = transactions.loc[before, CUSTOMER_ID].dropna().unique()
    return {"lines_at_or_after_cutoff": int((~before).sum()),
            "return_lines_before_cutoff": int((before & returns).sum()),
            "customers_with_only_returns_before_cutoff": int((~pd.Index(seen).isin(scored)).sum())}
