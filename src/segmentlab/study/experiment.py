"""Assembling an experiment: a composed config in, every object a run needs out.

`assemble` is the one place that turns config into objects for a run; the runner, the tuning
objective, `segmentlab reproduce` and the scripts under ``benchmarks/`` and ``experiments/`` all
start from an `Experiment`. A trial is the study's experiment with a few values changed
(`Experiment.with_params`): the base config is never rebound.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

import pandas as pd
from omegaconf import DictConfig, OmegaConf
from sklearn.base import BaseEstimator, clone
from sklearn.pipeline import FeatureUnion, Pipeline

import segmentlab
from segmentlab import vocabulary
from segmentlab.cache import FrameCache, stable_hash
from segmentlab.config import (
    ConfigError,
    build,
    build_features,
    build_prediction_features,
    build_segmenter,
    build_settings,
    freeze,
    interpolations,
    resolved,
    with_overrides,
)
from segmentlab.data.cleaning import TransactionCleaner
from segmentlab.data.loading import TransactionSource
from segmentlab.schema import Dataset
from segmentlab.settings import (
    DynamicsSettings,
    EvaluationSettings,
    PredictionSettings,
    RecommendSettings,
)


@dataclass(frozen=True)
class Experiment:
    """Everything one run needs, built from a composed config by `assemble`.

    Estimators are unfitted templates: `features`, `segmenter`, `classifier`… return fresh
    clones, so one experiment serves any number of fits.

    Attributes
    ----------
    config : DictConfig
        The composed config it was built from (logged, and what reproduction rebuilds).
    choices : dict
        Config-group choices (``{"clusterer": "kmeans", …}``), for tags and names.
    overrides : tuple of str
        The command-line overrides, logged for reproduction.
    source, cleaner
        Where the invoice lines come from and how they are cleaned.
    evaluation, prediction, dynamics, recommend : settings
        Typed settings of the stages (`segmentlab.settings`).
    tracker
        Where results are recorded (`segmentlab.study.tracking.Tracker`).
    """

    config: DictConfig
    choices: Mapping[str, str]
    overrides: tuple[str, ...]
    source: TransactionSource
    cleaner: TransactionCleaner
    evaluation: EvaluationSettings
    prediction: PredictionSettings
    dynamics: DynamicsSettings
    recommend: RecommendSettings
    tracker: Any
    _features: FeatureUnion = field(repr=False)
    _segmenter: Pipeline = field(repr=False)
    _classifier: BaseEstimator | None = field(repr=False, default=None)
    _assigner: BaseEstimator | None = field(repr=False, default=None)
    _prediction_features: FeatureUnion | None = field(repr=False, default=None)
    _spend_regressor: BaseEstimator | None = field(repr=False, default=None)
    _recommender: BaseEstimator | None = field(repr=False, default=None)
    _candidates: Mapping[str, BaseEstimator] = field(repr=False, default_factory=dict)
    #: Top-level keys the config's interpolations refer to, found once (`with_params`).
    _referenced: frozenset[str] | None = field(repr=False, compare=False, default=None)
    _frozen: bytes | None = field(repr=False, compare=False, default=None)  # config.freeze(config)

    # --- fresh estimators ------------------------------------------------------------------
    def features(self) -> FeatureUnion:
        """The run's feature sets, unfitted."""
        return clone(self._features)

    def segmenter(self) -> Pipeline:
        """Scaler, reducer and clusterer, unfitted."""
        return clone(self._segmenter)

    def classifier(self) -> BaseEstimator:
        """The repurchase classifier, unfitted."""
        return clone(self._classifier)

    def repurchase_classifier(self) -> BaseEstimator | dict[str, BaseEstimator]:
        """What repurchase prediction trains: the ``classifier`` node alone (``prediction.select:
        classifier``, or a study that tunes it), else the candidates validation chooses from,
        the ``classifier`` node first under its choice name."""
        tuned = self.tuned and "classifier" in self.config.tuning.get("tune", [])
        if self.prediction.select == "classifier" or tuned or not self._candidates:
            return self.classifier()
        name = self.choices.get("classifier") or next(
            (n for n in self._candidates if self.config.prediction.candidates[n] == self.config.classifier),
            "classifier")
        others = {n: clone(c) for n, c in self._candidates.items() if n != name}
        return {name: self.classifier(), **others}

    def lifetime(self):
        """The unfitted BG/NBD + Gamma-Gamma model of the run, or None (``prediction.lifetime``)."""
        from segmentlab.lifetime.value import CustomerValue

        settings = self.prediction.lifetime
        if not settings.enabled:
            return None
        return CustomerValue(horizon_days=self.prediction.horizon_days,
                             discount_rate=settings.discount_rate, clv_months=settings.clv_months,
                             penalizer_coef=settings.penalizer_coef,
                             min_repeat_customers=settings.min_repeat_customers)

    def assigner(self) -> BaseEstimator:
        """The segment classifier, unfitted."""
        return clone(self._assigner)

    def prediction_features(self) -> FeatureUnion:
        """The feature sets repurchase prediction refits per time window, unfitted."""
        return clone(self._prediction_features)

    def spend_regressor(self) -> BaseEstimator | None:
        """The regressor of spend in the horizon, unfitted; None skips the spend target."""
        return None if self._spend_regressor is None else clone(self._spend_regressor)

    def recommender(self) -> BaseEstimator | None:
        """The chosen recommender, unfitted; None with ``recommender=none``."""
        return None if self._recommender is None else clone(self._recommender)

    @property
    def recommender_name(self) -> str:
        """The ``recommender=`` choice (the class name outside Hydra)."""
        return self.choices.get("recommender") or type(self._recommender).__name__

    # --- values of the config --------------------------------------------------------------
    @property
    def seed(self) -> int:
        return int(self.config.seed)

    @property
    def threads(self) -> int | None:
        """Threads per estimator (``threads``); None leaves the libraries' own defaults."""
        value = self.config.get("threads", 1)
        return None if value is None else int(value)

    @property
    def objective(self) -> str:
        return str(self.config.objective)

    @property
    def register_model(self) -> str | None:
        return self.config.get("register_model")

    @property
    def model_alias(self) -> str | None:
        """Registry alias moved to each newly registered version (``models:/NAME@ALIAS``)."""
        return self.config.get("model_alias")

    @property
    def tuned(self) -> bool:
        return int(self.config.tuning.get("n_trials", 0)) > 0

    @property
    def tags(self) -> dict[str, str]:
        """The group choices as MLflow tags (features joined with ``+``)."""
        tags = {group: str(self.choices.get(group) or "") for group in vocabulary.GROUPS}
        tags["features"] = "+".join(self.config.features.keys())
        return tags

    @property
    def label(self) -> str:
        """``<tuned nodes>.<clusterer>.<features>.<reducer>``: how studies and runs are named."""
        tags = self.tags
        tuned_nodes = [n for n in self.config.tuning.get("tune", []) if n != "clusterer" and n in tags]
        return ".".join(tags.get(g) or "default" for g in [*tuned_nodes, *vocabulary.RUN_NAME_GROUPS])

    def resolved_config(self) -> dict:
        """The config as plain containers with interpolations resolved (what gets logged)."""
        return resolved(self.config)

    def feature_cache(self, dataset: Dataset) -> tuple[FrameCache | None, str | None]:
        """The feature cache and this experiment's key in it (None, None without a cache)."""
        return self._cache("features", dataset, features=resolved(self.config.features))

    def _cache(self, folder: str, dataset: Dataset, **parts: Any) -> tuple[FrameCache | None, str | None]:
        """A frame cache under ``cache_dir/folder`` and the key of what depends on the data, the
        cleaning, this version and ``parts`` (None, None without a cache)."""
        if self.config.cache_dir is None:
            return None, None
        key = stable_hash({"data": dataset.data_hash, "cleaning": resolved(self.config.cleaning),
                           **parts, "version": segmentlab.__version__})
        return FrameCache(Path(self.config.cache_dir) / folder), key

    def customer_summary(self, dataset: Dataset) -> pd.DataFrame:
        """`segmentlab.customers.customer_summary` of the cleaned lines, kept in the cache next to
        the features (it depends on the data and the cleaning only): a warm run reads it instead
        of aggregating every line again (~0.2 s on the real file)."""
        from segmentlab.customers import customer_summary

        cache, key = self._cache("customers", dataset)
        found = cache.load(key) if cache is not None else None
        if found is not None:
            return found[0]["summary"]
        summary = customer_summary(dataset.transactions)
        if cache is not None:
            cache.save(key, {"summary": summary}, {})
        return summary

    def with_params(self, params: Mapping[str, Any]) -> Experiment:
        """This experiment with dotted config keys set (a trial, or the best trial).

        Only the estimators whose config node a key belongs to are rebuilt (a study's trial
        changes one node; rebuilding all of them took ~45 ms a trial); keys of other nodes, or of
        nodes other values interpolate (``seed``), assemble everything again.
        """
        if not params:
            return self
        if self._referenced is None:  # the same for every trial of a study: walked once (~0.1 s)
            object.__setattr__(self, "_referenced", _interpolated(self.config))
            object.__setattr__(self, "_frozen", freeze(self.config))
        config = with_overrides(self.config, params, self._frozen)
        nodes = {key.split(".", 1)[0] for key in params}
        if not nodes <= set(_REBUILT) or nodes & self._referenced:
            return assemble(config, self.choices, self.overrides, tracker=self.tracker)
        rebuilt = {name: value for node in nodes for name, value in _REBUILT[node](config).items()}
        if "_classifier" in rebuilt and config.get("assigner") is None:
            rebuilt["_assigner"] = rebuilt["_classifier"]  # no assigner node: the classifier assigns
        # A value set here may itself interpolate: the trial's own references are found anew.
        return replace(self, config=config, _referenced=None, _frozen=None, **rebuilt)

    def with_tracker(self, tracker: Any) -> Experiment:
        """This experiment recording to another tracker (e.g. none, for a quick check)."""
        return replace(self, tracker=tracker)


def assemble(cfg: DictConfig, choices: Mapping[str, str] | None = None,
             overrides: Sequence[str] = (), tracker: Any = None) -> Experiment:
    """Build every object of a run from a composed config.

    Parameters
    ----------
    cfg : DictConfig
        A config composed from ``configs/`` (by ``run.py``, ``compose`` or a logged run).
    choices : mapping, optional
        Config-group choices of the Hydra job; inferred from the config when absent.
    overrides : sequence of str
        Command-line overrides, for the record.
    tracker : optional
        Reuse this tracker instead of building ``cfg.tracking``.
    """
    prediction = build_settings(cfg, "prediction", PredictionSettings)
    evaluation = build_settings(cfg, "evaluation", EvaluationSettings)
    dynamics = build_settings(cfg, "dynamics", DynamicsSettings)
    recommend = build_settings(cfg, "recommend", RecommendSettings)
    classifier = build(cfg.classifier) if "classifier" in cfg else None
    assigner = build(cfg.assigner) if cfg.get("assigner") is not None else classifier
    spend = cfg.prediction.get("spend_regressor") if "prediction" in cfg else None
    candidates = cfg.prediction.get("candidates") or {} if "prediction" in cfg else {}
    return Experiment(
        config=cfg,
        choices=dict(choices or {}),
        overrides=tuple(overrides),
        source=build(cfg.data),
        cleaner=build(cfg.cleaning),
        evaluation=evaluation,
        prediction=prediction,
        dynamics=dynamics,
        recommend=recommend,
        tracker=tracker if tracker is not None else build(cfg.tracking),
        _features=build_features(cfg),
        _segmenter=build_segmenter(cfg),
        _classifier=classifier,
        _assigner=assigner,
        _prediction_features=_prediction_features(cfg),
        _spend_regressor=None if spend is None else build(spend),
        _recommender=_recommender(cfg),
        _candidates={name: build(node) for name, node in candidates.items()},
    )


def _recommender(cfg: DictConfig) -> BaseEstimator | None:
    node = cfg.get("recommender")
    return build(node) if node and "_target_" in node else None


#: Config nodes a study tunes, and the `Experiment` fields built from each (see `with_params`).
_REBUILT = {
    "clusterer": lambda cfg: {"_segmenter": build_segmenter(cfg)},
    "reducer": lambda cfg: {"_segmenter": build_segmenter(cfg)},
    "classifier": lambda cfg: {"_classifier": build(cfg.classifier)},
    "assigner": lambda cfg: {"_assigner": build(cfg.assigner)},
    "recommender": lambda cfg: {"_recommender": _recommender(cfg)},
}


def _interpolated(cfg: DictConfig) -> frozenset[str]:
    """Top-level keys that ``${...}`` interpolations in the config refer to (``seed``...)."""
    import re

    pattern = re.compile(r"\$\{([A-Za-z_]\w*)")
    return frozenset({key for text in interpolations(cfg) for key in pattern.findall(text)} - {"oc"})


def _prediction_features(cfg: DictConfig) -> FeatureUnion | None:
    if "prediction" not in cfg:
        return None
    node = cfg.prediction.get("features")
    if not OmegaConf.is_dict(node):
        raise ConfigError("prediction.features is chosen in the defaults list: write "
                          "'features@prediction.features=[rfm,behaviour]', not prediction.features=...")
    if not node:
        raise ConfigError("prediction.features is empty: choose at least one feature set, e.g. "
                          "'features@prediction.features=[rfm,behaviour]'")
    return build_prediction_features(cfg)
