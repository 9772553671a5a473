"""BG/NBD and Gamma-Gamma: likelihoods, parameter recovery, conditional expectations, bad input."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from scipy.integrate import quad
from scipy.optimize import check_grad
from scipy.special import gammaln, hyp2f1
from scipy.stats import beta as beta_dist

from segmentlab.lifetime import bgnbd, gamma_gamma
from segmentlab.lifetime.bgnbd import BGNBDModel
from segmentlab.lifetime.gamma_gamma import GammaGammaModel
from segmentlab.lifetime.simulation import simulate_bgnbd, simulate_gamma_gamma

# Published CDNOW estimates (Fader, Hardie & Lee 2005; time in weeks).
CDNOW = {"r": 0.243, "alpha": 4.414, "a": 0.793, "b": 2.426}
# Daily-data parameters of the size the Online Retail file gives (alpha in days).
DAILY = {"r": 0.7, "alpha": 60.0, "a": 0.8, "b": 2.5}
SPEND = {"p": 6.0, "q": 4.0, "v": 15.0}


def model_with(params: dict) -> BGNBDModel:
    model = BGNBDModel()
    model.params_ = dict(params)
    return model


@pytest.fixture(scope="module")
def simulated() -> pd.DataFrame:
    """5,000 customers aged 90-365 days drawn from DAILY, with Gamma-Gamma spend from SPEND."""
    age = np.random.default_rng(7).uniform(90, 365, 5000)
    summary = simulate_bgnbd(5000, T=age, seed=7, **DAILY)
    summary["monetary_value"] = simulate_gamma_gamma(summary["frequency"], seed=7, **SPEND)
    return summary


def test_loglik_gradients_are_exact(simulated):
    x, tx, age = (simulated[c].to_numpy() for c in ("frequency", "recency", "T"))
    at = np.log([0.5, 40.0, 1.2, 3.0])
    assert check_grad(lambda p: bgnbd._loglik(p, x, tx, age)[0].sum(),
                      lambda p: bgnbd._loglik(p, x, tx, age)[1].sum(0), at) < 1e-3
    repeat = x > 0
    m = simulated["monetary_value"].to_numpy()[repeat]
    at = np.log([4.0, 3.0, 20.0])
    assert check_grad(lambda p: gamma_gamma._loglik(p, x[repeat], m)[0].sum(),
                      lambda p: gamma_gamma._loglik(p, x[repeat], m)[1].sum(0), at) < 1e-3


def test_bgnbd_likelihood_integrates_to_one():
    # FHL's likelihood drops the factor t_x^(x-1) / (x-1)! (the ways to place the first x - 1
    # purchases before t_x); with it, the density of (x, t_x) at a fixed T sums to 1.
    age, top = 30.0, 120
    nodes, weights = np.polynomial.legendre.leggauss(400)
    tx = (nodes + 1) * age / 2
    x = np.repeat(np.arange(1, top + 1, dtype=float), len(tx))
    grid = np.tile(tx, top)
    log_params = np.log(list(CDNOW.values()))
    ll = bgnbd._loglik(log_params, x, grid, np.full_like(grid, age))[0]
    density = np.exp(ll + (x - 1) * np.log(grid) - gammaln(x))
    repeat_mass = (density.reshape(top, -1) @ weights).sum() * age / 2
    no_repeat = np.exp(bgnbd._loglik(log_params, np.zeros(1), np.zeros(1), np.full(1, age))[0][0])
    assert no_repeat + repeat_mass == pytest.approx(1.0, abs=1e-6)


def test_bgnbd_recovers_simulated_parameters(simulated):
    # Tolerance: 4 standard errors. Over 100 replicate simulations of this design the +-2 SE
    # intervals covered the truth 92-95 % of the time (README of experiments/2026-11-29-bgnbd),
    # so the SEs are honest and 4 SE fails by chance about once in 10^4 fits; the relative SE
    # bound keeps the check informative (a useless fit would have huge SEs).
    model = BGNBDModel().fit(simulated)
    assert model.converged_
    for name, truth in DAILY.items():
        estimate, se = model.params_[name], model.standard_errors_[name]
        assert se < 0.3 * truth, name
        assert abs(estimate - truth) < 4 * se, (name, estimate, truth, se)


def test_gamma_gamma_recovers_simulated_parameters(simulated):
    model = GammaGammaModel().fit(simulated)
    assert model.n_excluded_["no_repeat_purchase"] == int((simulated["frequency"] == 0).sum())
    for name, truth in SPEND.items():
        estimate, se = model.params_[name], model.standard_errors_[name]
        assert se < 0.2 * truth, name
        assert abs(estimate - truth) < 4 * se, (name, estimate, truth, se)


def test_p_alive_properties():
    model = model_with(CDNOW)
    assert np.all(model.p_alive([0, 0], [0, 0], [5, 80]) == 1.0)
    gaps = np.linspace(0, 60, 13)
    alive = model.p_alive(np.full(13, 4), np.full(13, 20.0), 20.0 + gaps)
    assert alive[0] < 1 and np.all(np.diff(alive) < 0)  # longer silence, less likely alive
    by_frequency = model.p_alive([1, 5, 20], [20, 20, 20], [40, 40, 40])
    assert np.all(np.diff(by_frequency) < 0)  # the same silence is more telling for a frequent buyer
    assert np.all(np.isfinite(model.p_alive([5000], [10.0], [10000.0])))


def _numeric_expectation(model, t, x, tx, age):
    """E[purchases in t] integrated over the posterior dropout p, rate integrated analytically."""
    r, alpha, a, b = model.params_.values()

    def integrand(p):
        none = (r + x) * (np.log(alpha + age) - np.log(alpha + age + p * t))
        return beta_dist.pdf(p, a, b + x) * -np.expm1(none) / p

    mass = quad(integrand, 0, 1e-3, limit=200)[0] + quad(integrand, 1e-3, 1, limit=200)[0]
    return model.p_alive(x, tx, age) * mass


@pytest.mark.parametrize("params,case", [
    (CDNOW, (39, 0, 0.0, 39.0)), (CDNOW, (39, 2, 30.43, 38.86)), (CDNOW, (52, 5, 20.0, 38.0)),
    (DAILY, (90, 80, 282.0, 284.0)), (DAILY, (3650, 300, 280.0, 284.0)),
    (DAILY, (36500, 500, 509.0, 510.0)), (DAILY, (365, 1000, 2900.0, 3000.0)),
])
def test_expected_purchases_matches_numeric_integration(params, case):
    model = model_with(params)
    assert model.expected_purchases(*case) == pytest.approx(_numeric_expectation(model, *case),
                                                            rel=1e-7)


def test_untransformed_hypergeometric_fails_where_ours_does_not():
    # FHL (2005) eq. 10 as printed: 2F1(r+x, b+x; a+b+x-1; z) overflows for a heavy buyer over
    # a long horizon, while the Euler-transformed form stays finite and matches the integral.
    r, alpha, a, b = DAILY.values()
    t, x, age = 3650.0, 300, 284.0
    printed = hyp2f1(r + x, b + x, a + b + x - 1, t / (alpha + age + t))
    assert not np.isfinite(printed * ((alpha + age) / (alpha + age + t)) ** (r + x))
    assert np.isfinite(model_with(DAILY).expected_purchases(t, x, 280.0, age))


@pytest.mark.parametrize("a,b,case,alive_part", [
    # Reference values from mpmath's hyp2f1 at 25 digits (r = 0.7, alpha = 60).
    (1000.0, 2.5, (365, 30, 200.0, 210.0), 1.0325325325253303),  # closed form overflows
    (1000.0, 0.2, (3650, 0, 0.0, 1.0), 0.9438060496606689),
    (0.8, 0.2, (90, 0, 0.0, 300.0), 0.15021062505938834),  # a + b + x - 1 = 0
])
def test_expected_purchases_where_the_closed_form_overflows(a, b, case, alive_part):
    model = model_with({"r": 0.7, "alpha": 60.0, "a": a, "b": b})
    t, x, tx, age = case
    expected = model.expected_purchases(t, x, tx, age) / model.p_alive(x, tx, age)
    assert expected == pytest.approx(alive_part, rel=1e-6)


def test_expected_purchases_of_a_homogeneous_dropout_fit():
    # a, b -> infinity with a / (a + b) fixed (a degenerate fit on ~100 customers gave these):
    # p is then a point mass and the expectation given alive is (1 - (1 + p u)^-(r + x)) / p.
    r, alpha, a, b = 0.58, 54.6, 2.25e7, 7.58e7
    x, age, t = np.array([0, 2, 40]), 300.0, 90.0
    p = a / (a + b + x)
    point_mass = -np.expm1(-(r + x) * np.log1p(p * t / (alpha + age))) / p
    model = model_with({"r": r, "alpha": alpha, "a": a, "b": b})
    recency = np.array([0.0, 100.0, 290.0])
    given_alive = model.expected_purchases(t, x, recency, age) / model.p_alive(x, recency, age)
    assert np.allclose(given_alive, point_mass, rtol=1e-6)


def test_conditional_predictions_match_simulation():
    # CDNOW parameters, 39-week calibration and 39-week holdout as in the paper.
    sim = simulate_bgnbd(200_000, T=39.0, horizon=39.0, seed=3, **CDNOW)
    model = model_with(CDNOW)
    args = (sim["frequency"], sim["recency"], sim["T"])
    expected, p_buy = model.expected_purchases(39.0, *args), model.p_purchase(39.0, *args)
    bought = (sim["future_purchases"] > 0).to_numpy()
    for group in (sim["frequency"] == 0, sim["frequency"].between(1, 3), sim["frequency"] > 3):
        actual = sim.loc[group, "future_purchases"]
        se = actual.std() / np.sqrt(len(actual))
        assert abs(actual.mean() - expected[group].mean()) < 4 * se
        se_share = np.sqrt(bought[group].mean() * (1 - bought[group].mean()) / group.sum())
        assert abs(bought[group].mean() - p_buy[group].mean()) < 4 * se_share
    alive = sim["alive"].to_numpy()
    assert abs(alive.mean() - model.p_alive(*args).mean()) < 4 * np.sqrt(0.25 / len(sim))


def test_gamma_gamma_expected_spend_shrinks_to_population_mean(simulated):
    model = GammaGammaModel().fit(simulated)
    p, q, v = model.params_.values()
    assert model.population_mean_ == pytest.approx(p * v / (q - 1))
    spend = model.expected_spend([0, 1, 10, 1000], [999.0, 50.0, 50.0, 50.0])
    assert spend[0] == model.population_mean_  # one-time buyer: own value ignored
    # More purchases, closer to the customer's own mean of 50.
    assert abs(spend[1] - 50) > abs(spend[2] - 50) > abs(spend[3] - 50)


@pytest.mark.parametrize("call,message", [
    (lambda m: m.p_alive([-1], [0], [10]), "frequency must be >= 0"),
    (lambda m: m.p_alive([2], [12], [10]), "recency must be <= T"),
    (lambda m: m.p_alive([0], [3], [10]), "recency must be 0 when frequency is 0"),
    (lambda m: m.p_alive([1.5], [3], [10]), "whole number"),
    (lambda m: m.p_alive([1, 2], [3], [10, 11, 12]), "one shape"),
    (lambda m: m.expected_purchases(0, [1], [3], [10]), "horizon t must be positive"),
    (lambda m: m.p_purchase(np.nan, [1], [3], [10]), "horizon t must be positive"),
])
def test_bad_summary_gives_one_line_error(call, message):
    with pytest.raises(ValueError, match=message) as error:
        call(model_with(CDNOW))
    assert "\n" not in str(error.value)


def test_fit_rejects_bad_frames_and_too_few_repeat_buyers():
    few = pd.DataFrame({"frequency": [0, 0, 1, 2], "recency": [0, 0, 5, 9], "T": [20, 20, 20, 30],
                        "monetary_value": [0, 0, 10, 12]})
    with pytest.raises(ValueError, match="needs at least 10 customers with a repeat purchase, got 2"):
        BGNBDModel().fit(few)
    with pytest.raises(ValueError, match="Gamma-Gamma needs at least 10"):
        GammaGammaModel().fit(few)
    with pytest.raises(ValueError, match=r"lacks columns \['T'\]"):
        BGNBDModel().fit(few.drop(columns="T"))
    with pytest.raises(ValueError, match="penalizer_coef must be >= 0"):
        BGNBDModel(penalizer_coef=-1, min_repeat_customers=1).fit(few)
    fitted = GammaGammaModel()
    fitted.params_, fitted.population_mean_ = dict(SPEND), 30.0
    with pytest.raises(ValueError, match="summary row 1"):
        fitted.expected_spend([1, -2], [3.0, 4.0])


def test_penalizer_shrinks_parameters(simulated):
    plain = BGNBDModel().fit(simulated).params_
    shrunk = BGNBDModel(penalizer_coef=0.01).fit(simulated).params_
    assert sum(v ** 2 for v in shrunk.values()) < sum(v ** 2 for v in plain.values())
