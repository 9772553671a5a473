"""The Hydra glue: turns a composed config into objects. The only module that instantiates."""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from copy import deepcopy
from typing import Any

from hydra.utils import instantiate
from omegaconf import DictConfig, OmegaConf
from sklearn.pipeline import FeatureUnion, Pipeline, make_pipeline
from sklearn.preprocessing import StandardScaler


def build(node: DictConfig) -> Any:
    """Instantiate a config node; YAML lists reach scikit-learn as lists, not ListConfig."""
    return instantiate(node, _convert_="all")


def build_features(cfg: DictConfig) -> FeatureUnion:
    """The selected feature sets, joined side by side with ``<set>__`` column prefixes."""
    parts = [(name, build(node)) for name, node in cfg.features.items()]
    return FeatureUnion(parts).set_output(transform="pandas")


def build_segmenter(cfg: DictConfig) -> Pipeline:
    """Scaling, the reducer and the clusterer, in that order."""
    return make_pipeline(StandardScaler(), build(cfg.reducer), build(cfg.clusterer))


def flatten(tree: Mapping, prefix: str = "") -> Iterator[tuple[str, Any]]:
    """Dotted paths to leaves: ``{"clusterer": {"eps": 0.5}}`` → ``("clusterer.eps", 0.5)``."""
    for key, value in tree.items():
        path = f"{prefix}{key}"
        if isinstance(value, Mapping) and value:
            yield from flatten(value, f"{path}.")
        else:
            yield path, value


def resolved(cfg: DictConfig) -> dict:
    """The config as plain containers with interpolations resolved (what gets logged)."""
    return OmegaConf.to_container(cfg, resolve=True)


def with_overrides(cfg: DictConfig, params: Mapping[str, Any]) -> DictConfig:
    """A copy of ``cfg`` with dotted keys set, e.g. ``{"clusterer.eps": 0.3}``."""
    copy = deepcopy(cfg)
    for key, value in params.items():
        OmegaConf.update(copy, key, value, merge=False)
    return copy
