"""The config tree itself: every choice composes and builds."""

from __future__ import annotations

import numpy as np
import pytest
from sklearn.datasets import make_blobs

from segmentlab.config import build, build_features, build_segmenter, flatten, with_overrides
from tests.conftest import CONFIGS, compose_config

REDUCERS = [p.stem for p in (CONFIGS / "reducer").glob("*.yaml") if p.stem != "umap"]  # umap: ~40 s numba
FEATURE_SETS = sorted(p.stem for p in (CONFIGS / "features").glob("*.yaml"))


@pytest.mark.parametrize("reducer", REDUCERS)
def test_segmenter_builds_and_fits(reducer):
    cfg = compose_config(f"reducer={reducer}")
    X, _ = make_blobs(200, n_features=6, random_state=0)
    labels = build_segmenter(cfg).fit_predict(X)
    assert labels.shape == (200,)


@pytest.mark.parametrize("feature_set", FEATURE_SETS)
def test_every_feature_set_composes_with_its_prefix(feature_set):
    cfg = compose_config(f"features=[{feature_set}]")
    union = build_features(cfg)
    assert [name for name, _ in union.transformer_list] == [feature_set]


def test_features_list_composes_in_order():
    cfg = compose_config("features=[rfm,behaviour]")
    assert list(cfg.features.keys()) == ["rfm", "behaviour"]


def test_flatten_gives_dotted_paths():
    assert dict(flatten({"a": {"b": 1, "c": {"d": [1, 2]}}, "e": {}})) == {"a.b": 1, "a.c.d": [1, 2], "e": {}}


def test_with_overrides_copies():
    cfg = compose_config()
    changed = with_overrides(cfg, {"clusterer.n_clusters": 9})
    assert changed.clusterer.n_clusters == 9 and cfg.clusterer.n_clusters != 9


def test_build_converts_lists():
    node = compose_config("reducer=pca", "reducer.n_components=2").reducer
    assert build(node).n_components == 2
    assert np.isfinite(build(node).fit_transform(np.random.default_rng(0).normal(size=(20, 4)))).all()
