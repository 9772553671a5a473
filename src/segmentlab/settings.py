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
class TrainCutoffSettings:
    """Training cutoffs of repurchase and spend models (``prediction.train_cutoffs.*``).

    Attributes
    ----------
    every_days : int or None
        Days between pooled training cutoffs, counted back from one horizon before the
        evaluation cutoff; null trains on that one cutoff alone.
    min_history_days : int
        Days of data a training cutoff needs before it; when none has that much, one cutoff.
    compare_one_cutoff : bool
        Also validate every candidate trained on the latest training cutoff alone and keep it
        when it validates better than the pooled cutoffs (customers whose behaviour shifts make
        older cutoffs teach the wrong thing); the candidates table shows both.
    """

    every_days: int | None = 14
    min_history_days: int = 60
    compare_one_cutoff: bool = True

    def __post_init__(self) -> None:
        if self.every_days is not None and (isinstance(self.every_days, bool) or self.every_days < 1):
            raise ValueError(f"prediction.train_cutoffs.every_days must be a whole number of days "
                             f">= 1 or null, got {self.every_days!r}")
        if self.min_history_days < 0:
            raise ValueError(f"prediction.train_cutoffs.min_history_days must be >= 0, "
                             f"got {self.min_history_days!r}")


@dataclass
class LifetimeSettings:
    """BG/NBD + Gamma-Gamma of the run (``prediction.lifetime.*``; `segmentlab.lifetime`).

    Attributes
    ----------
    enabled : bool
        False: no ``predict/bgnbd_*`` baselines, no lifetime columns from ``segmentlab predict``
        and no ``tables/segment_value.csv``.
    discount_rate : float
        Annual discount rate of ``clv_<clv_months>m``, applied monthly.
    clv_months : int
        Months of the lifetime value.
    penalizer_coef : float
        L2 penalty of both fits (0: plain maximum likelihood).
    min_repeat_customers : int
        Fewest repeat buyers a fit needs; below it the columns are NaN (never a crash).
    """

    enabled: bool = True
    discount_rate: float = 0.10
    clv_months: int = 12
    penalizer_coef: float = 0.0
    min_repeat_customers: int = 10

    def __post_init__(self) -> None:
        if not self.discount_rate >= 0:
            raise ValueError(f"prediction.lifetime.discount_rate must be an annual rate >= 0, "
                             f"got {self.discount_rate!r}")
        if self.clv_months < 1 or self.min_repeat_customers < 1 or self.penalizer_coef < 0:
            raise ValueError("prediction.lifetime: clv_months and min_repeat_customers must be >= 1 "
                             f"and penalizer_coef >= 0, got {self.clv_months!r}, "
                             f"{self.min_repeat_customers!r}, {self.penalizer_coef!r}")


@dataclass
class PredictionSettings:
    """How the classifiers are trained and judged out of time (``prediction.*``).

    Attributes
    ----------
    enabled : bool
        False skips the ``assign/*`` and ``predict/*`` stages.
    horizon_days : int
        Repurchase target: buys again within this many days of a cutoff.
    train_cutoffs : TrainCutoffSettings
        Pooled training cutoffs (``every_days``, ``min_history_days``).
    population : str
        ``active`` (a purchase in the ``active_days`` before the cutoff) or ``all``: who is a row
        of training, evaluation and every baseline; the other one's ROC AUC is logged beside.
    active_days : int
        See ``population``.
    select : str
        ``validation``: the repurchase model is the best of ``candidates`` and the ``classifier``
        node by validation ROC AUC; ``classifier``: the ``classifier`` node, candidates scored
        beside. A study that tunes the classifier always keeps it.
    candidates : config node
        Named classifier nodes composed through the defaults list
        (``classifier@prediction.candidates.<name>: <choice>``).
    validation_windows : int
        Validation cutoffs, ``train_cutoffs.every_days`` apart, pooled into ``predict/validation_*``.
    calibration : str
        ``none``, ``sigmoid`` or ``isotonic``: calibration of the chosen classifier.
    segment_predictors : bool
        Whether the matched segment is a repurchase predictor.
    n_bootstrap : int
        Customer resamples of the intervals; 0 skips them.
    lifetime : LifetimeSettings
        BG/NBD + Gamma-Gamma baselines, outputs and segment value.
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
    train_cutoffs: TrainCutoffSettings = field(default_factory=TrainCutoffSettings)
    population: str = "active"
    active_days: int = 365
    select: str = "validation"
    candidates: Any = field(default_factory=dict)
    validation_windows: int = 3
    calibration: str = "none"
    segment_predictors: bool = False
    n_bootstrap: int = 1000
    lifetime: LifetimeSettings = field(default_factory=LifetimeSettings)
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

    def __post_init__(self) -> None:
        """Fail on a bad value with the config key that holds it; nested nodes become settings."""
        if isinstance(self.train_cutoffs, dict):
            self.train_cutoffs = TrainCutoffSettings(**self.train_cutoffs)
        if isinstance(self.lifetime, dict):
            self.lifetime = LifetimeSettings(**self.lifetime)
        choices = {"population": ("active", "all"), "select": ("validation", "classifier"),
                   "calibration": ("none", "sigmoid", "isotonic")}
        for key, allowed in choices.items():
            if getattr(self, key) not in allowed:
                raise ValueError(f"prediction.{key} must be one of {', '.join(allowed)}, "
                                 f"got {getattr(self, key)!r}")
        for key, least in (("active_days", 1), ("validation_windows", 1), ("n_bootstrap", 0)):
            value = getattr(self, key)
            if isinstance(value, bool) or not isinstance(value, int) or value < least:
                raise ValueError(f"prediction.{key} must be an integer >= {least}, got {value!r}")
        if 0 < self.n_bootstrap < 10:
            raise ValueError(f"prediction.n_bootstrap must be 0 or at least 10, got {self.n_bootstrap!r}")


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
