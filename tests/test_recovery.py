"""On the synthetic default, the planted segments are recovered by the default features."""

from __future__ import annotations

from hydra import compose, initialize_config_dir

from segmentlab.config import build, build_features, build_segmenter
from segmentlab.data.loading import load_dataset
from segmentlab.features.matrix import compute_features
from segmentlab.segmentation.segmenting import cluster_customers
from segmentlab.settings import EvaluationSettings
from tests.conftest import CONFIGS

CLUSTERERS = ["kmeans", "agglomerative", "dbscan", "hdbscan", "gmm"]


def test_best_clusterer_recovers_planted_segments():
    with initialize_config_dir(config_dir=str(CONFIGS), version_base="1.3"):
        base = compose("config", overrides=["tracking=none", "cache_dir=null"])
        cfgs = {name: compose("config", overrides=["tracking=none", "cache_dir=null", f"clusterer={name}"])
                for name in CLUSTERERS}
    assert list(base.features.keys()) == ["rfm", "behaviour"]  # the defaults are what is tested
    dataset = load_dataset(build(base.data), build(base.cleaning), cache_dir=None)
    features = compute_features(dataset, build_features(base))
    settings = EvaluationSettings(stability_resamples=0, random_state=base.seed)
    ari = {name: cluster_customers(features.frame, build_segmenter(cfg), dataset.truth, settings)
           .metrics["cluster/ari_truth"] for name, cfg in cfgs.items()}
    assert max(ari.values()) >= 0.8, ari
