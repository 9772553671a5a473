"""Every recommender config builds and recommends; every tuning key exists in its config."""

from __future__ import annotations

import importlib.util

import pytest
from omegaconf import OmegaConf

from segmentlab.config import CONFIG_DIR, build, flatten, with_overrides
from tests.test_recommend import SHOP, baskets

CHOICES = sorted(p.stem for p in (CONFIG_DIR / "recommender").glob("*.yaml") if p.stem != "none")
SPACES = CONFIG_DIR / "tuning" / "space" / "recommender"


def node(name: str):
    loaded = OmegaConf.load(CONFIG_DIR / "recommender" / f"{name}.yaml")
    return OmegaConf.merge({"seed": 7}, {"recommender": loaded})


def needs(name: str) -> None:
    if name == "als" and importlib.util.find_spec("implicit") is None:
        pytest.skip("the als recommender needs the 'implicit' package")


def test_none_is_an_empty_choice():
    assert not OmegaConf.load(CONFIG_DIR / "recommender" / "none.yaml")


@pytest.mark.parametrize("name", CHOICES)
def test_config_builds_and_recommends(name):
    needs(name)
    model = build(node(name).recommender)
    if hasattr(model, "epochs"):
        model.set_params(epochs=2)  # word2vec: the point is the wiring, not the vectors
    recs = model.fit(baskets(SHOP)).recommend([6, 999], k=2)
    assert recs.groupby("customer_id").size().to_dict() == {6: 2, 999: 2}


@pytest.mark.parametrize("name", CHOICES)
def test_tuning_space_keys_exist_and_their_bounds_build(name):
    needs(name)
    space = dict(flatten(build(OmegaConf.load(SPACES / f"{name}.yaml"))))
    assert space, f"{name}: empty search space"
    cfg = node(name)
    for key in space:
        assert OmegaConf.select(cfg, key, default="missing") != "missing", key
    for end in ("low", "high"):
        values = {k: (getattr(d, end) if hasattr(d, end) else d.choices[-1])
                  for k, d in space.items()}
        model = build(with_overrides(cfg, values).recommender)
        if hasattr(model, "epochs"):
            model.set_params(epochs=2)
        assert len(model.fit(baskets(SHOP)).recommend([6], k=2)) == 2
