"""The config tree itself: every choice composes and builds."""

from __future__ import annotations

import numpy as np
import pytest
from sklearn.datasets import make_blobs

from segmentlab.config import (
    ConfigError,
    build,
    build_features,
    build_segmenter,
    check_command_line,
    flatten,
    resolved,
    resolver,
    with_overrides,
)
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


@pytest.mark.parametrize("params", [{"clusterer.n_clusters": 7}, {"clusterer.n_init": "auto"},
                                    {"seed": 3}, {"clusterer.random_state": "${seed}"}])
def test_resolver_gives_what_resolving_the_overridden_config_gives(params):
    # Setting a value into the config resolved once must equal resolving the trial's config,
    # including when an interpolation sees the value (seed) or the value is an interpolation.
    cfg = compose_config("clusterer=kmeans", "tuning=optuna")
    expected = resolved(with_overrides(cfg, params))
    assert resolver(cfg)(params) == expected
    if "seed" in params:
        assert expected["clusterer"]["random_state"] == 3  # the interpolation followed the new seed
    assert resolver(cfg)({}) == resolved(cfg) and cfg.clusterer.n_clusters != 7  # cfg untouched


def test_build_converts_lists():
    node = compose_config("reducer=pca", "reducer.n_components=2").reducer
    assert build(node).n_components == 2
    assert np.isfinite(build(node).fit_transform(np.random.default_rng(0).normal(size=(20, 4)))).all()


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["clusterer=kmean"], "unknown option 'kmean' for clusterer; choose from "
         + ", ".join(sorted(p.stem for p in (CONFIGS / "clusterer").glob("*.yaml")))),
        (["-m", "features=[rfm],[rfm,tfidff]"], r"unknown option 'tfidff' for features"),
        (["clusterer.n_clusterz=4"], r"unknown key 'clusterer.n_clusterz'; keys under clusterer: n_clusters"),
        (["clusterer.n_clusters=abc"], r"clusterer\.n_clusters: .*must be an int in the range \[1, inf\)"),
        (["-m", "clusterer.n_clusters=3,0"], r"clusterer\.n_clusters: .*Got 0 instead"),
        (["reducer=pca", "reducer.n_components=-3"], r"reducer\.n_components: .*range"),
        (["prediction.spend_regressor.max_depth=0"], r"prediction\.spend_regressor\.max_depth: .*range"),
        (["assigner=random_forest", "assigner.max_depth=0"], r"assigner\.max_depth: .*range"),
    ],
    ids=["option", "option-in-sweep-list", "key", "type", "range-in-sweep", "reducer-range",
         "spend-regressor-range", "assigner-range"],
)
def test_bad_overrides_are_one_line_errors(args, message):
    with pytest.raises(ConfigError, match=message) as raised:
        check_command_line(args, str(CONFIGS))
    assert "\n" not in str(raised.value)


def test_good_overrides_pass():
    check_command_line(["-m", "clusterer=kmeans,gmm", "features=[rfm],[rfm,tfidf]", "clusterer.n_init=3"],
                       str(CONFIGS))


def test_run_py_exits_2_on_a_config_error():
    import subprocess
    import sys

    done = subprocess.run([sys.executable, str(CONFIGS.parent / "run.py"), "clusterer=kmean"],
                          capture_output=True, text=True, timeout=120)
    assert done.returncode == 2 and done.stderr.count("\n") == 1 and "kmean" in done.stderr


@pytest.mark.parametrize("feature_set", FEATURE_SETS)
def test_every_feature_column_has_a_human_label(feature_set, transactions):
    from segmentlab.vocabulary import feature_label

    (name, part), = build_features(compose_config(f"features=[{feature_set}]")).transformer_list
    if feature_set in ("behaviour", "activity"):  # columns learnt in fit (countries, windows)
        part.fit(transactions)
    columns = [f"{name}__{c}" for c in part.get_feature_names_out()]
    labels = {c: feature_label(c) for c in columns}
    assert all(label != column for column, label in labels.items()), labels
    assert len(set(labels.values())) == len(labels)  # no two columns read the same
    assert feature_label("segment_3") == "in segment 3 of the repurchase window's clustering"
