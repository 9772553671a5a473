"""BG/NBD: how many purchases a customer makes, and whether they are still a customer.

Fader, Hardie & Lee (2005), "Counting your customers the easy way: an alternative to the
Pareto/NBD model", Marketing Science 24(2), 275-284. While alive, a customer buys as a Poisson
process with rate ``lambda ~ Gamma(r, alpha)``; after each repeat purchase they drop out for good
with probability ``p ~ Beta(a, b)``. Time is in days (``alpha`` is a number of days).
"""

from __future__ import annotations

import numpy as np
import pandas as pd
from scipy.special import betaincinv, betaln, digamma, expit, gammaln, hyp2f1, roots_legendre
from sklearn.base import BaseEstimator
from sklearn.utils.validation import check_is_fitted

from segmentlab.lifetime.likelihood import maximise
from segmentlab.lifetime.summary import AGE, FREQUENCY, RECENCY, check_summary

PARAMS = ["r", "alpha", "a", "b"]


class BGNBDModel(BaseEstimator):
    """Beta-geometric / negative binomial model, fitted by maximum likelihood.

    Parameters
    ----------
    penalizer_coef : float
        L2 penalty on ``r, alpha, a, b`` added to the mean negative log-likelihood (as in
        ``lifetimes``). 0 gives the plain maximum likelihood estimate. ``alpha`` is in days, so
        the penalty falls mostly on it: on the Online Retail file 0.001 moves ``r`` from 0.72 to
        0.24 and ``alpha`` from 66 to 8.3. Use it only to keep a runaway fit finite.
    min_repeat_customers : int
        Fitting needs at least this many customers with a repeat purchase; with fewer, the
        dropout parameters ``a, b`` are not identified and ``fit`` raises ``ValueError``.

    Attributes
    ----------
    params_ : dict
        ``{"r", "alpha", "a", "b"}`` on the natural scale.
    standard_errors_ : dict
        Asymptotic standard errors from the observed information (delta method). NaN when
        the information is singular, as when the estimate runs to the boundary: ``a -> 0``
        (with any ``b``) means the data show no dropout, ``p_alive`` is then about 1 for
        everyone and the model reduces to the NBD (this happens on the Online Retail file).
    log_likelihood_ : float
        Summed over customers, at the estimate.
    converged_ : bool
    n_customers_, n_repeat_customers_ : int
    """

    def __init__(self, penalizer_coef: float = 0.0, min_repeat_customers: int = 10):
        self.penalizer_coef = penalizer_coef
        self.min_repeat_customers = min_repeat_customers

    def fit(self, summary: pd.DataFrame, y=None) -> BGNBDModel:
        """Fit on a frame with ``frequency``, ``recency`` and ``T`` (see ``rfm_summary``)."""
        if self.penalizer_coef < 0:
            raise ValueError(f"penalizer_coef must be >= 0, got {self.penalizer_coef}")
        missing = [c for c in (FREQUENCY, RECENCY, AGE) if c not in summary.columns]
        if missing:
            raise ValueError(f"BGNBDModel.fit: summary lacks columns {missing}")
        x, tx, age = check_summary(summary[FREQUENCY], summary[RECENCY], summary[AGE])
        n_repeat = int((x > 0).sum())
        if n_repeat < max(self.min_repeat_customers, 1):
            raise ValueError(f"BG/NBD needs at least {self.min_repeat_customers} customers with a "
                             f"repeat purchase, got {n_repeat} of {len(x)}")
        # Start from the pooled purchase rate (r = 1) and a one-in-three dropout per purchase.
        alpha0 = max(age.sum(), 1.0) / max(x.sum(), 1.0)
        start = np.log([1.0, alpha0, 1.0, 2.0])
        fit = maximise(lambda p: _loglik(p, x, tx, age), start, self.penalizer_coef, len(x), "BG/NBD")
        self.params_ = dict(zip(PARAMS, fit.params.tolist(), strict=True))
        self.standard_errors_ = dict(zip(PARAMS, fit.standard_errors.tolist(), strict=True))
        self.log_likelihood_ = fit.log_likelihood
        self.converged_ = fit.converged
        self.n_customers_, self.n_repeat_customers_ = len(x), n_repeat
        return self

    def p_alive(self, frequency, recency, T) -> np.ndarray:
        """P(still alive at ``T``); 1 when frequency is 0, since dropout follows a repeat purchase.

        Fader, Hardie & Lee, "Computing P(alive) using the BG/NBD model" (2008 note):
        ``1 / (1 + [x > 0] a / (b + x - 1) * ((alpha + T) / (alpha + t_x)) ** (r + x))``.

        Parameters
        ----------
        frequency, recency, T : array-like
            Repeat purchases, day of the last purchase and age at the cutoff, in days.

        Returns
        -------
        ndarray
        """
        x, tx, age = check_summary(frequency, recency, T)
        return expit(-self._log_death_odds(x, tx, age))

    def p_purchase(self, t, frequency, recency, T) -> np.ndarray:
        """P(at least one purchase in ``(T, T + t]``): a repurchase score.

        Derived from the model rather than taken from a table: given alive at ``T``, the
        posterior rate is ``Gamma(r + x, alpha + T)`` and the next purchase comes at that rate
        whatever ``p`` is (dropout happens only right after a purchase), so
        ``P(none in t | alive) = ((alpha + T) / (alpha + T + t)) ** (r + x)`` and the result is
        ``p_alive * (1 - that)``. This equals ``1 - P(Y(t) = 0 | x, t_x, T)`` of Fader, Hardie &
        Lee's conditional PMF note.

        Parameters
        ----------
        t : float or array-like
            Horizon in days, > 0.
        frequency, recency, T : array-like

        Returns
        -------
        ndarray
        """
        x, tx, age = check_summary(frequency, recency, T)
        t = _check_horizon(t)
        r, alpha = self._param("r"), self._param("alpha")
        log_none = (r + x) * (np.log(alpha + age) - np.log(alpha + age + t))
        return expit(-self._log_death_odds(x, tx, age)) * -np.expm1(log_none)

    def expected_purchases(self, t, frequency, recency, T) -> np.ndarray:
        """E[purchases in ``(T, T + t]`` | frequency, recency, T], FHL (2005) eq. (10).

        The Gauss hypergeometric function there, ``2F1(r+x, b+x; a+b+x-1; z)`` with
        ``z = t / (alpha + T + t)``, grows without bound with ``x``; Euler's transformation
        ``2F1(A, B; C; z) = (1-z)^(C-A-B) 2F1(C-A, C-B; C; z)`` turns it into
        ``2F1(a+b-1-r, a-1; a+b+x-1; z)``, whose parameters no longer grow with ``x`` and whose
        series converges faster as ``x`` grows, and the ``((alpha+T)/(alpha+T+t))^(r+x)``
        factor cancels to ``(1-z)^(a-1)``. That form still overflows when the dropout
        distribution is very concentrated (``a`` in the thousands, as a degenerate fit on few
        customers gives) or when ``a + b + x - 1 = 0``; there the expectation is integrated over
        the posterior ``p ~ Beta(a, b + x)`` instead (``_integrate_over_dropout``).

        Parameters
        ----------
        t : float or array-like
            Horizon in days, > 0.
        frequency, recency, T : array-like

        Returns
        -------
        ndarray
        """
        x, tx, age = check_summary(frequency, recency, T)
        t, x, tx, age = np.broadcast_arrays(_check_horizon(t), x, tx, age)
        r, alpha, a, b = (self._param(k) for k in PARAMS)
        z = t / (alpha + age + t)
        log_1mz = np.log(alpha + age) - np.log(alpha + age + t)
        with np.errstate(all="ignore"):
            bracket = 1.0 - np.exp((a - 1) * log_1mz) * hyp2f1(a + b - 1 - r, a - 1, a + b + x - 1, z)
            alive_part = np.asarray((a + b + x - 1) / (a - 1) * bracket, dtype=float)
        overflow = ~np.isfinite(alive_part)
        if overflow.any():
            alive_part = alive_part.copy()
            alive_part[overflow] = _integrate_over_dropout(
                r, alpha, a, b, t[overflow], x[overflow], age[overflow])
        return alive_part * expit(-self._log_death_odds(x, tx, age))

    def _log_death_odds(self, x: np.ndarray, tx: np.ndarray, age: np.ndarray) -> np.ndarray:
        """log of ``a / (b + x - 1) * ((alpha + T) / (alpha + t_x)) ** (r + x)``; -inf when x = 0."""
        r, alpha, a, b = (self._param(k) for k in PARAMS)
        repeat = x > 0
        xs = np.where(repeat, x, 1.0)
        odds = (np.log(a) - np.log(b + xs - 1)
                + (r + xs) * (np.log(alpha + age) - np.log(alpha + np.where(repeat, tx, 0.0))))
        return np.where(repeat, odds, -np.inf)

    def _param(self, name: str) -> float:
        check_is_fitted(self, "params_")
        return self.params_[name]


def _integrate_over_dropout(r: float, alpha: float, a: float, b: float, t: np.ndarray,
                           x: np.ndarray, age: np.ndarray) -> np.ndarray:
    """E[purchases in t | alive] as an integral over the dropout probability, for where the
    hypergeometric form overflows.

    Given alive, the rate integrates out in closed form: a customer with dropout ``p`` makes
    ``(1 - (1 + p t / (alpha + T)) ** -(r + x)) / p`` purchases in expectation. That is averaged
    over ``p ~ Beta(a, b + x)`` with Gauss-Legendre nodes on the Beta quantiles, which resolve a
    concentrated Beta whatever its width. Against mpmath, in the region where it is used, the
    relative error was below 4e-7 (it is larger for small ``a``, where the closed form works).
    """
    q, w = _QUANTILE_NODES
    # betaincinv is slow (tens of microseconds a call for large a); it only depends on x.
    distinct, position = np.unique(x, return_inverse=True)
    p = betaincinv(a, (b + distinct)[:, None], q[None, :])[position.ravel()]
    k_u = (r + x)[:, None] * (t / (alpha + age))[:, None]
    safe = np.where(p > 0, p, 1.0)
    # At p = 0 nobody drops out and the expectation is the Poisson mean (r + x) u.
    g = np.where(p > 0, -np.expm1(-(r + x)[:, None] * np.log1p(safe * (t / (alpha + age))[:, None]))
                 / safe, k_u)
    return g @ w


def _gauss_legendre_on_unit_interval(n: int) -> tuple[np.ndarray, np.ndarray]:
    nodes, weights = roots_legendre(n)
    return (nodes + 1) / 2, weights / 2


_QUANTILE_NODES = _gauss_legendre_on_unit_interval(128)


def _check_horizon(t) -> np.ndarray:
    t = np.asarray(t, dtype=float)
    if not (np.isfinite(t).all() and (t > 0).all()):
        raise ValueError(f"horizon t must be positive days, got {t.ravel()[:5].tolist()}")
    return t


def _loglik(log_params: np.ndarray, x: np.ndarray, tx: np.ndarray,
            age: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Per-customer BG/NBD log-likelihood (FHL 2005 eq. 6) and its gradient in the log-parameters."""
    r, alpha, a, b = np.exp(log_params)
    repeat = x > 0
    xs = np.where(repeat, x, 1.0)  # keeps b + x - 1 > 0 in the branch that is masked anyway
    a1 = gammaln(r + x) - gammaln(r) + r * np.log(alpha)
    a2 = betaln(a, b + x) - betaln(a, b)
    a3 = -(r + x) * np.log(alpha + age)
    a4 = np.where(repeat, np.log(a) - np.log(b + xs - 1) - (r + x) * np.log(alpha + tx), -np.inf)
    tail = np.logaddexp(a3, a4)
    w4 = np.exp(a4 - tail)  # share of the "dropped out after the last purchase" branch
    w3 = 1.0 - w4
    d_r = (digamma(r + x) - digamma(r) + np.log(alpha)
           - w3 * np.log(alpha + age) - w4 * np.log(alpha + tx))
    d_alpha = r / alpha - (r + x) * (w3 / (alpha + age) + w4 / (alpha + tx))
    d_a = digamma(a + b) - digamma(a + b + x) + w4 / a
    d_b = (digamma(b + x) - digamma(b) + digamma(a + b) - digamma(a + b + x)
           - w4 / (b + xs - 1))
    gradient = np.column_stack([d_r * r, d_alpha * alpha, d_a * a, d_b * b])
    return a1 + a2 + tail, gradient
