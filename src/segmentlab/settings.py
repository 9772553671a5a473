"""Typed settings of the run stages, written once.

Each dataclass is both the Hydra structured config of its config node (registered in the
ConfigStore by `segmentlab.config`, so ``evaluation.stability_resamples=abc`` is refused with the
key and the expected type) and the object the stage receives (``OmegaConf.to_object``). The
defaults below are the only ones: ``configs/config.yaml`` selects these nodes and does not
repeat them.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Any


@dataclass
class EvaluationSettings:
    """How a clustering is scored (``evaluation.*``).

    Attributes
    ----------
    silhouette_sample : int
        Customers; silhouette is quadratic, so it is computed on a seeded sample above this.
    dbcv_sample : int
        Customers; DBCV is quadratic too.
    stability_resamples : int
        Refits on subsamples for ``cluster/stability_ari``; 0 skips it.
    stability_fraction : float
        Share of customers in each subsample.
    map_method : str
        2-D customer map: ``pca`` (fast) or ``umap`` (~40 s numba compile per process).
    n_jobs : int
        Worker processes for the stability refits. 1 by measurement on 2 cores: process start-up
        and the competition for the second core cost more than the refits (README, benchmarks).
    random_state : int
        Seed of every sample; the run's ``seed`` in a composed config.
    """

    silhouette_sample: int = 10_000
    dbcv_sample: int = 3_000
    stability_resamples: int = 5
    stability_fraction: float = 0.8
    map_method: str = "pca"
    n_jobs: int = 1
    random_state: int = 42


@dataclass
class PredictionSettings:
    """How the classifiers are trained and judged out of time (``prediction.*``).

    Attributes
    ----------
    enabled : bool
        False skips the ``assign/*`` and ``predict/*`` stages.
    horizon_days : int
        Repurchase target: buys again within this many days of a cutoff.
    n_rolling : int
        0, or at least 3: rolling-origin evaluation over that many cutoffs.
    new_customer_invoices : int
        New customers are described by only their first N invoices.
    min_history_days : int
        Days since their first order a customer unseen in training needs before the model
        assigns a segment; with less they go to the "new — not yet segmentable" group. Chosen
        on the measured curve of assignment F1 against days of history (``assign_history``
        table; README "Assigning new customers").
    importance_repeats : int
        Permutation-importance shuffles per feature; 0 skips the importance table.
    surrogate_depth : int
        Depth of the decision tree that explains the segments.
    test_size : float
        Share of customers held out for ``assign/accuracy`` and ``assign/f1_macro``.
    spend_regressor : config node or None
        Second target, spend in the horizon (``predict/spend_*``): an instantiable node; None
        skips it.
    features : config node
        The feature sets refitted in each time window for repurchase (plus the segment),
        composed through the defaults list (``features@prediction.features=[rfm,behaviour]``).
    """

    enabled: bool = True
    horizon_days: int = 90
    n_rolling: int = 0
    new_customer_invoices: int = 1
    min_history_days: int = 120
    importance_repeats: int = 5
    surrogate_depth: int = 3
    test_size: float = 0.25
    spend_regressor: Any = field(default_factory=lambda: {
        # Predicts means of a non-negative target with many zeros (experiments/spend_models).
        "_target_": "sklearn.ensemble.HistGradientBoostingRegressor",
        "loss": "poisson", "max_iter": 200, "learning_rate": 0.05, "max_depth": 3,
        "random_state": "${seed}",
    })
    features: Any = field(default_factory=dict)


@dataclass
class DynamicsSettings:
    """How segments are followed through time (``dynamics.*``; `segmentlab.dynamics`).

    Attributes
    ----------
    enabled : bool
        True: snapshots, migration matrices, rates and early warnings in the run.
    every : str
        Period between snapshots: ``month``, ``quarter`` or ``<N>d`` (e.g. ``30d``).
    min_history_days : int
        Days of data before the first snapshot.
    churn_days : int
        State "churned": no purchase in this many days before a snapshot.
    value_window_days : int
        Trailing spend window (days) that orders segments by value and values the warnings.
    risk_words : list of str
        A segment whose name holds one of these words is a risk state.
    action_column : str
        Profile column shown as the recommended action of a warned customer.
    top_warnings : int
        Warnings listed in the report (the CSV has them all).
    n_bootstrap : int
        Customer resamples for the warning AUC intervals.
    random_state : int
        Seed of the resamples; the run's ``seed`` in a composed config.
    """

    enabled: bool = False
    every: str = "month"
    min_history_days: int = 90
    churn_days: int = 180
    value_window_days: int = 365
    risk_words: list[str] = field(default_factory=lambda: ["at-risk", "lapsing", "lapsed"])
    action_column: str = "retention"
    top_warnings: int = 20
    n_bootstrap: int = 200
    random_state: int = 42

    def __post_init__(self) -> None:
        """Fail on a bad value with the config key that holds it."""
        if not re.fullmatch(r"month|quarter|[1-9]\d*d", str(self.every)):
            raise ValueError(f"dynamics.every must be 'month', 'quarter' or '<N>d' such as '30d', "
                             f"got {self.every!r}")
        for key, least in (("min_history_days", 0), ("churn_days", 1), ("value_window_days", 1),
                           ("top_warnings", 0), ("n_bootstrap", 0)):
            value = getattr(self, key)
            if isinstance(value, bool) or not isinstance(value, int) or value < least:
                raise ValueError(f"dynamics.{key} must be an integer >= {least}, got {value!r}")
        if isinstance(self.risk_words, str):
            raise ValueError(f"dynamics.risk_words must be a list of words, got {self.risk_words!r}")
        self.risk_words = tuple(self.risk_words)


@dataclass
class RecommendSettings:
    """How the chosen recommender (``recommender=``) is judged (``recommend.*``; `segmentlab.recommend`).

    Attributes
    ----------
    horizon_days : int
        Products first bought in this many days after the cutoff are what a list should hold.
    k : int
        Products recommended per customer (metrics are ``recommend/*_at_<k>``).
    n_boot : int
        Customer resamples for the recall intervals.
    top : int
        Products and categories listed per segment and kind in ``recommend/segment_products.csv``.
    """

    horizon_days: int = 90
    k: int = 10
    n_boot: int = 200
    top: int = 10
