"""Our maximum likelihood fits against PyMC-Marketing's MAP fits (optional: ``pip install -e ".[clv]"``).

With flat priors a MAP estimate is the maximum likelihood estimate, so both libraries must find
the same parameters and predictions on the same simulated customers. Takes ~1 min warm; the
first run compiles PyTensor code for a few minutes more.
"""

from __future__ import annotations

import numpy as np
import pytest

pytest.importorskip("pymc_marketing")

from pymc_marketing.clv import BetaGeoModel, GammaGammaModel  # noqa: E402
from pymc_marketing.prior import Prior  # noqa: E402

from segmentlab.lifetime import bgnbd, gamma_gamma  # noqa: E402
from segmentlab.lifetime.simulation import simulate_bgnbd, simulate_gamma_gamma  # noqa: E402

DAILY = {"r": 0.7, "alpha": 60.0, "a": 0.8, "b": 2.5}
SPEND = {"p": 6.0, "q": 4.0, "v": 15.0}


@pytest.fixture(scope="module")
def summary():
    age = np.random.default_rng(11).uniform(90, 365, 3000)
    frame = simulate_bgnbd(3000, T=age, seed=11, **DAILY)
    frame["monetary_value"] = simulate_gamma_gamma(frame["frequency"], seed=11, **SPEND)
    frame.index.name = "customer_id"
    return frame[["frequency", "recency", "T", "monetary_value"]].reset_index()


def map_estimates(model, names: list[str]) -> dict[str, float]:
    model.fit(method="map")
    return {name: float(model.idata.posterior[name].mean()) for name in names}


def test_bgnbd_agrees_with_pymc_marketing(summary):
    flat = {name: Prior("HalfFlat") for name in bgnbd.PARAMS}
    theirs = BetaGeoModel(data=summary[["customer_id", "frequency", "recency", "T"]], model_config=flat)
    their_params = map_estimates(theirs, bgnbd.PARAMS)
    ours = bgnbd.BGNBDModel().fit(summary)
    for name in bgnbd.PARAMS:  # well inside one standard error (3-11 % here)
        assert ours.params_[name] == pytest.approx(their_params[name], rel=1e-3), name
    x, tx, age = (summary[c] for c in ("frequency", "recency", "T"))
    theirs_at = bgnbd.BGNBDModel()
    theirs_at.params_ = their_params  # compare the formulas at one set of parameters
    mean = ("chain", "draw")
    assert np.allclose(theirs.expected_probability_alive().mean(mean), theirs_at.p_alive(x, tx, age),
                       rtol=1e-9)
    assert np.allclose(theirs.expected_purchases(future_t=90).mean(mean),
                       theirs_at.expected_purchases(90, x, tx, age), rtol=1e-7)
    # Their P(no purchase) lacks the "frequency > 0" indicator of the dropout branch, so it is
    # only comparable for repeat buyers; for the others ours is ((alpha+T)/(alpha+T+t))^r.
    repeat = (x > 0).to_numpy()
    no_purchase = theirs.expected_probability_no_purchase(t=90).mean(mean).to_numpy()
    assert np.allclose(1 - no_purchase[repeat],
                       theirs_at.p_purchase(90, x[repeat], tx[repeat], age[repeat]), rtol=1e-9)


def test_gamma_gamma_agrees_with_pymc_marketing(summary):
    repeat = summary[summary["frequency"] > 0]
    theirs = GammaGammaModel(data=repeat[["customer_id", "frequency", "monetary_value"]])
    their_params = map_estimates(theirs, gamma_gamma.PARAMS)  # default priors are flat
    ours = gamma_gamma.GammaGammaModel().fit(summary)
    for name in gamma_gamma.PARAMS:
        assert ours.params_[name] == pytest.approx(their_params[name], rel=1e-3), name
    theirs_at = gamma_gamma.GammaGammaModel()
    theirs_at.params_ = their_params
    p, q, v = their_params.values()
    theirs_at.population_mean_ = p * v / (q - 1)
    assert np.allclose(theirs.expected_customer_spend(data=repeat).mean(("chain", "draw")),
                       theirs_at.expected_spend(repeat["frequency"], repeat["monetary_value"]),
                       rtol=1e-9)
