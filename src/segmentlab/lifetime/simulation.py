"""Customers drawn from the BG/NBD and Gamma-Gamma models, for tests and sanity checks.

A simulated truth is the only way to check that a fit recovers its parameters and that the
conditional expectations are right, since real data has no known parameters.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from segmentlab.lifetime.summary import AGE, FREQUENCY, RECENCY


def simulate_bgnbd(n_customers: int, r: float, alpha: float, a: float, b: float,
                   T: float | np.ndarray, horizon: float = 0.0, seed: int = 0) -> pd.DataFrame:
    """Summaries of customers who behave exactly as the BG/NBD model assumes.

    Each customer draws a purchase rate ``lambda ~ Gamma(r, rate=alpha)`` and a dropout
    probability ``p ~ Beta(a, b)``, makes a first purchase at time 0, then buys as a Poisson
    process and drops out right after each repeat purchase with probability ``p``: the number of
    repeat purchases they live to make is geometric. Purchases of the uninterrupted process in
    ``(0, T]`` are uniform order statistics, which gives ``recency`` without a loop.

    Parameters
    ----------
    n_customers : int
    r, alpha, a, b : float
        Model parameters, ``alpha`` in the same unit as ``T``.
    T : float or array of shape (n_customers,)
        Age of each customer at the cutoff.
    horizon : float
        Length of the period after ``T`` whose purchases are counted in ``future_purchases``.
    seed : int

    Returns
    -------
    DataFrame
        ``frequency``, ``recency``, ``T``, ``future_purchases`` (in ``(T, T + horizon]``) and the
        latent ``alive`` (at ``T``), ``purchase_rate`` and ``dropout_probability``.
    """
    rng = np.random.default_rng(seed)
    age = np.broadcast_to(np.asarray(T, dtype=float), (n_customers,)).copy()
    rate = rng.gamma(r, 1.0 / alpha, n_customers)
    # p below 1e-12 would make the geometric draw overflow; such a customer never drops out anyway.
    dropout = np.clip(rng.beta(a, b, n_customers), 1e-12, 1.0)
    lifetime_purchases = rng.geometric(dropout)  # dies right after this repeat purchase
    uninterrupted = rng.poisson(rate * age)
    frequency = np.minimum(uninterrupted, lifetime_purchases)
    repeat = frequency > 0
    # The x-th of n uniform points on (0, T] is T * Beta(x, n - x + 1).
    recency = np.zeros(n_customers)
    recency[repeat] = age[repeat] * rng.beta(frequency[repeat],
                                             uninterrupted[repeat] - frequency[repeat] + 1)
    alive = lifetime_purchases > uninterrupted
    later = rng.poisson(rate * horizon) if horizon > 0 else np.zeros(n_customers, dtype=int)
    future = np.where(alive, np.minimum(later, lifetime_purchases - uninterrupted), 0)
    return pd.DataFrame({FREQUENCY: frequency.astype(float), RECENCY: recency, AGE: age,
                         "future_purchases": future, "alive": alive, "purchase_rate": rate,
                         "dropout_probability": dropout})


def simulate_gamma_gamma(frequency: np.ndarray, p: float, q: float, v: float,
                         seed: int = 0) -> np.ndarray:
    """Mean spend over each customer's ``frequency`` repeat purchases under Gamma-Gamma.

    Each customer draws a rate ``nu ~ Gamma(q, rate=v)``; each purchase is ``Gamma(p, rate=nu)``,
    so the total of ``x`` purchases is ``Gamma(p x, rate=nu)``. 0 where ``frequency`` is 0.

    Parameters
    ----------
    frequency : array-like of int
    p, q, v : float
    seed : int

    Returns
    -------
    ndarray
        ``monetary_value`` per customer.
    """
    rng = np.random.default_rng(seed)
    x = np.asarray(frequency, dtype=float)
    nu = rng.gamma(q, 1.0 / v, len(x))
    repeat = x > 0
    total = np.zeros(len(x))
    total[repeat] = rng.gamma(p * x[repeat], 1.0 / nu[repeat])
    return np.where(repeat, total / np.where(repeat, x, 1.0), 0.0)

