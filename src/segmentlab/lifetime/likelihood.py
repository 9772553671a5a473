"""Maximum likelihood on log-parameters, shared by the BG/NBD and Gamma-Gamma models.

Both models have a few positive parameters and a closed-form log-likelihood with an analytic
gradient. Optimising their logarithms keeps them positive without bounds; standard errors come
from the observed information (a finite-difference Hessian of the analytic gradient) and are
turned back to the natural scale by the delta method.
"""

from __future__ import annotations

import warnings
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
from scipy.optimize import minimize

#: ``(log_params) -> (per-customer log-likelihood, per-customer gradient rows)``
LogLikelihood = Callable[[np.ndarray], tuple[np.ndarray, np.ndarray]]


@dataclass(frozen=True)
class MaximumLikelihoodFit:
    """What the optimiser found: estimates, standard errors and diagnostics."""

    params: np.ndarray  # natural scale
    standard_errors: np.ndarray  # natural scale, delta method; NaN when the Hessian is singular
    log_likelihood: float  # summed over customers, without the penalty
    converged: bool
    message: str
    n_iterations: int


def maximise(loglik: LogLikelihood, start: np.ndarray, penalizer_coef: float,
             n_obs: int, name: str) -> MaximumLikelihoodFit:
    """Maximise the mean log-likelihood minus ``penalizer_coef * sum(params ** 2)``.

    Parameters
    ----------
    loglik : callable
        Per-customer log-likelihood and its gradient with respect to the log-parameters.
    start : ndarray
        Starting point, on the log scale.
    penalizer_coef : float
        L2 penalty on the natural-scale parameters, added to the *mean* negative
        log-likelihood, as ``lifetimes``' ``penalizer_coef`` does.
    n_obs : int
        Number of customers (scales the information matrix back to the total).
    name : str
        Model name for the warning when the optimiser stops early.

    Returns
    -------
    MaximumLikelihoodFit
    """

    def objective(log_params: np.ndarray) -> tuple[float, np.ndarray]:
        ll, grad = loglik(log_params)
        params = np.exp(log_params)
        value = -ll.mean() + penalizer_coef * np.sum(params ** 2)
        gradient = -grad.mean(axis=0) + 2 * penalizer_coef * params ** 2  # chain rule: d/dlog
        if not np.isfinite(value):  # pushes the line search back into the valid region
            return np.inf, np.zeros_like(log_params)
        return float(value), gradient

    result = minimize(objective, start, jac=True, method="L-BFGS-B",
                      options={"maxiter": 2000, "ftol": 1e-13, "gtol": 1e-9})
    # L-BFGS-B stops "ABNORMAL" when the likelihood keeps rising by less than rounding along a
    # ridge to the boundary (e.g. BG/NBD's a -> 0 when no dropout is visible); the gradient
    # there is ~1e-6, so that is a maximum to working precision, not a failure.
    converged = bool(result.success) or float(np.abs(result.jac).max()) < 1e-5
    if not converged:
        warnings.warn(f"{name}: the likelihood maximisation did not converge ({result.message}; "
                      f"log-parameters {np.round(result.x, 2).tolist()})", RuntimeWarning, stacklevel=3)
    hessian = _hessian(lambda p: objective(p)[1], result.x) * n_obs
    with np.errstate(invalid="ignore"):
        try:
            covariance = np.linalg.inv(hessian)
            log_se = np.sqrt(np.diag(covariance))
        except np.linalg.LinAlgError:
            log_se = np.full(len(start), np.nan)
    params = np.exp(result.x)
    ll_total = float(loglik(result.x)[0].sum())
    return MaximumLikelihoodFit(params, params * log_se, ll_total, converged, str(result.message),
                                int(result.nit))


def _hessian(gradient: Callable[[np.ndarray], np.ndarray], x: np.ndarray,
             step: float = 1e-5) -> np.ndarray:
    """Central-difference Jacobian of an analytic gradient, symmetrised."""
    columns = []
    for i in range(len(x)):
        e = np.zeros_like(x)
        e[i] = step
        columns.append((gradient(x + e) - gradient(x - e)) / (2 * step))
    h = np.column_stack(columns)
    return (h + h.T) / 2
