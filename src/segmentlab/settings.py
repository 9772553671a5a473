"""Typed settings of the run stages, written once.

Each dataclass is both the Hydra structured config of its config node (registered in the
ConfigStore by `segmentlab.config`, so ``evaluation.stability_resamples=abc`` is refused with the
key and the expected type) and the object the stage receives (``OmegaConf.to_object``). The
defaults below are the only ones: ``configs/config.yaml`` selects these nodes and does not
repeat them.
"""

from __future__ import annotations

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
    random_state : int
        Seed of every sample; the run's ``seed`` in a composed config.
    """

    silhouette_sample: int = 10_000
    dbcv_sample: int = 3_000
    stability_resamples: int = 5
    stability_fraction: float = 0.8
    map_method: str = "pca"
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
