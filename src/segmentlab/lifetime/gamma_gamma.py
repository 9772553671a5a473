"""Gamma-Gamma: how much a customer spends per purchase.

Fader & Hardie (2013), "The Gamma-Gamma model of monetary value" (brucehardie.com note 025),
after Colombo & Jiang (1999). A customer's purchase values are ``Gamma(p, nu)``; the rate ``nu``
varies across customers as ``Gamma(q, v)``. The model is fitted on the mean value of each
customer's repeat purchases, so only customers with ``frequency > 0`` inform it; it assumes
spend is independent of purchase frequency (check with their correlation before trusting CLV).
"""

from __future__ import annotations

import numpy as np
import pandas as pd
from scipy.special import digamma, gammaln
from sklearn.base import BaseEstimator
from sklearn.utils.validation import check_is_fitted

from segmentlab.lifetime.likelihood import maximise
from segmentlab.lifetime.summary import FREQUENCY, MONETARY

PARAMS = ["p", "q", "v"]


class GammaGammaModel(BaseEstimator):
    """Gamma-Gamma spend model, fitted by maximum likelihood.

    Parameters
    ----------
    penalizer_coef : float
        L2 penalty on ``p, q, v`` added to the mean negative log-likelihood (as in
        ``lifetimes``). ``v`` is in money, so even a small value pulls hard; 0 by default.
    min_repeat_customers : int
        Fitting needs at least this many customers with ``frequency > 0`` and a positive
        ``monetary_value``; with fewer, ``fit`` raises ``ValueError``.

    Attributes
    ----------
    params_, standard_errors_ : dict
        ``{"p", "q", "v"}`` and their asymptotic standard errors.
    population_mean_ : float
        Mean spend per purchase of a new customer, ``p v / (q - 1)``; NaN when ``q <= 1``
        (the mean does not exist). Used for customers without a repeat purchase.
    n_customers_ : int
        Customers the model was fitted on.
    n_excluded_ : dict
        Customers left out of the fit, by reason (``no_repeat_purchase``,
        ``nonpositive_monetary_value``).
    log_likelihood_ : float
    converged_ : bool
    """

    def __init__(self, penalizer_coef: float = 0.0, min_repeat_customers: int = 10):
        self.penalizer_coef = penalizer_coef
        self.min_repeat_customers = min_repeat_customers

    def fit(self, summary: pd.DataFrame, y=None) -> GammaGammaModel:
        """Fit on a frame with ``frequency`` and ``monetary_value`` (see ``rfm_summary``)."""
        if self.penalizer_coef < 0:
            raise ValueError(f"penalizer_coef must be >= 0, got {self.penalizer_coef}")
        missing = [c for c in (FREQUENCY, MONETARY) if c not in summary.columns]
        if missing:
            raise ValueError(f"GammaGammaModel.fit: summary lacks columns {missing}")
        x, m = _check(summary[FREQUENCY], summary[MONETARY])
        repeat = x > 0
        usable = repeat & (m > 0)
        self.n_excluded_ = {"no_repeat_purchase": int((~repeat).sum()),
                            "nonpositive_monetary_value": int((repeat & ~usable).sum())}
        n = int(usable.sum())
        if n < max(self.min_repeat_customers, 1):
            raise ValueError(f"Gamma-Gamma needs at least {self.min_repeat_customers} customers with a "
                             f"repeat purchase of positive value, got {n} of {len(x)}")
        x, m = x[usable], m[usable]
        # Method-of-moments-like start: p = 1, q = 2 puts the population mean at v.
        start = np.log([1.0, 2.0, float(np.mean(m))])
        fit = maximise(lambda lp: _loglik(lp, x, m), start, self.penalizer_coef, n, "Gamma-Gamma")
        self.params_ = dict(zip(PARAMS, fit.params.tolist(), strict=True))
        self.standard_errors_ = dict(zip(PARAMS, fit.standard_errors.tolist(), strict=True))
        self.log_likelihood_ = fit.log_likelihood
        self.converged_ = fit.converged
        self.n_customers_ = n
        p, q, v = fit.params
        self.population_mean_ = float(p * v / (q - 1)) if q > 1 else float("nan")
        return self

    def expected_spend(self, frequency, monetary_value) -> np.ndarray:
        """E[spend per purchase | frequency, monetary_value].

        ``p (v + x m) / (p x + q - 1)``: a weighted average of the population mean and the
        customer's own mean, trusting the latter more the more purchases it rests on. Customers
        with no repeat purchase (``frequency`` 0) get ``population_mean_``; their own
        ``monetary_value`` is not used.

        Parameters
        ----------
        frequency : array-like
            Repeat purchases.
        monetary_value : array-like
            Mean value of the repeat purchases (ignored where frequency is 0).

        Returns
        -------
        ndarray
            NaN where the expectation does not exist (``p x + q <= 1``).
        """
        check_is_fitted(self, "params_")
        x, m = _check(frequency, monetary_value)
        p, q, v = (self.params_[k] for k in PARAMS)
        denominator = p * x + q - 1
        with np.errstate(divide="ignore", invalid="ignore"):
            spend = np.where(denominator > 0, p * (v + x * m) / denominator, np.nan)
        return np.where(x > 0, spend, self.population_mean_)


def _check(frequency, monetary_value) -> tuple[np.ndarray, np.ndarray]:
    """Arrays of frequency and monetary value, or ``ValueError`` naming the first bad row."""
    x, m = (np.asarray(v, dtype=float) for v in (frequency, monetary_value))
    if x.shape != m.shape:
        raise ValueError(f"frequency and monetary_value must have one shape, got {x.shape} and {m.shape}")
    bad = ~(np.isfinite(x) & np.isfinite(m) & (x >= 0))
    if bad.any():
        i = int(np.flatnonzero(bad.ravel())[0])
        raise ValueError(f"summary row {i}: frequency must be >= 0 and both finite "
                         f"(frequency={x.ravel()[i]}, monetary_value={m.ravel()[i]})")
    return x, m


def _loglik(log_params: np.ndarray, x: np.ndarray, m: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Per-customer log-density of the mean spend ``m`` over ``x`` purchases, and its gradient."""
    p, q, v = np.exp(log_params)
    px = p * x
    log_total = np.log(v + x * m)
    ll = (gammaln(px + q) - gammaln(px) - gammaln(q) + q * np.log(v)
          + (px - 1) * np.log(m) + px * np.log(x) - (px + q) * log_total)
    d_p = x * (digamma(px + q) - digamma(px) + np.log(m) + np.log(x) - log_total)
    d_q = digamma(px + q) - digamma(q) + np.log(v) - log_total
    d_v = q / v - (px + q) / (v + x * m)
    return ll, np.column_stack([d_p * p, d_q * q, d_v * v])
