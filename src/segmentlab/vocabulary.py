"""The names runs share, each declared once: metrics, artifacts and config groups.

Everything that lists metrics or artifacts derives from these declarations, in their order: the
console summary, the report's leaderboard and metric table, the "best run" rule (the configured
``objective`` and its direction), the tables the report fetches back from MLflow and the paths
the tracker logs them under. A new metric is one ``Metric`` line plus the code that computes it;
a new report table is one ``Artifact`` line plus the code that computes and renders it.

Pure data and lookups: no third-party imports, so any layer may import it.
"""

from __future__ import annotations

from dataclasses import dataclass
from fnmatch import fnmatchcase

#: Config groups whose choice becomes an MLflow tag, a leaderboard column and part of run names.
GROUPS = ("data", "features", "reducer", "clusterer", "classifier", "assigner", "recommender", "cleaning",
          "tuning")
#: Groups that name a run ("kmeans · rfm+behaviour · none") and a study.
RUN_NAME_GROUPS = ("clusterer", "features", "reducer")

MAX, MIN = "max", "min"


@dataclass(frozen=True)
class Metric:
    """One metric key: which way is better, how people read it, where it is shown.

    Attributes
    ----------
    key : str
        ``stage/name``; ``*`` matches a run-specific part (``cluster/size_*``).
    direction : {"max", "min"} or None
        Which values are better; None when neither is (counts, sizes, base rates).
    label : str
        Human label for tables and the console.
    summary : bool
        Printed in the console summary at the end of a run.
    report : bool
        A column of the report's leaderboard and a row of its metric table.
    """

    key: str
    direction: str | None
    label: str
    summary: bool = False
    report: bool = False

    @property
    def arrow(self) -> str:
        """↑ when higher is better, ↓ when lower is, nothing otherwise."""
        return {MAX: "↑", MIN: "↓"}.get(self.direction, "")


_M = Metric
#: Every metric segmentlab logs, in the order people read them.
METRICS: tuple[Metric, ...] = (
    _M("cluster/n_clusters", None, "segments", summary=True, report=True),
    _M("cluster/silhouette", MAX, "silhouette", summary=True, report=True),
    _M("cluster/calinski_harabasz", MAX, "Calinski-Harabasz", summary=True, report=True),
    _M("cluster/davies_bouldin", MIN, "Davies-Bouldin", summary=True, report=True),
    _M("cluster/dbcv", MAX, "DBCV", report=True),
    _M("cluster/noise_fraction", MIN, "noise share", summary=True, report=True),
    _M("cluster/min_cluster_share", None, "smallest segment share", report=True),
    _M("cluster/max_cluster_share", None, "largest segment share"),
    _M("cluster/size_balance", None, "size balance (1 = equal sizes)", report=True),
    _M("cluster/stability_ari", MAX, "stability (ARI)", summary=True, report=True),
    _M("cluster/stability_ari_std", None, "stability spread"),
    _M("cluster/ari_truth", MAX, "ARI vs planted truth", summary=True, report=True),
    _M("cluster/nmi_truth", MAX, "NMI vs planted truth", summary=True, report=True),
    _M("cluster/bic", MIN, "BIC"),
    _M("cluster/size_*", None, "segment size"),
    _M("assign/accuracy", MAX, "assignment accuracy", report=True),
    _M("assign/f1_macro", MAX, "assignment F1", summary=True, report=True),
    _M("assign/new_customer_f1_macro", MAX, "new-customer F1", summary=True, report=True),
    _M("assign/new_customer_accuracy", MAX, "new-customer accuracy"),
    _M("assign/f1_at_min_history", MAX, "F1 at the minimum history", summary=True, report=True),
    _M("assign/min_history_days", None, "minimum history to assign (days)", report=True),
    _M("assign/suggested_min_history_days", None, "suggested minimum history (days)", report=True),
    _M("assign/confidence_ece", MIN, "confidence calibration error", summary=True, report=True),
    _M("assign/history_f1_full", MAX, "F1, whole histories (history hold-out)"),
    _M("assign/history_n_heldout", None, "customers held out for the history curve"),
    _M("assign/surrogate_fidelity", MAX, "rule-tree fidelity", report=True),
    _M("assign/surrogate_leaves", None, "rule-tree leaves"),
    _M("assign/n_test", None, "held-out customers"),
    _M("assign/n_dropped_noise", None, "noise customers left out"),
    _M("assign/new_customer_n", None, "new customers scored"),
    _M("assign/new_customer_n_train", None, "earlier customers learnt from"),
    _M("assign/*", None, "assignment"),
    _M("predict/roc_auc", MAX, "repurchase ROC AUC", summary=True, report=True),
    _M("predict/roc_auc_ci_low", MAX, "ROC AUC, 95 % interval low", summary=True, report=True),
    _M("predict/roc_auc_ci_high", MAX, "ROC AUC, 95 % interval high", report=True),
    _M("predict/validation_roc_auc", MAX, "validation ROC AUC", summary=True, report=True),
    _M("predict/recency_roc_auc", MAX, "recency-only ROC AUC", summary=True, report=True),
    _M("predict/rfm_logreg_roc_auc", MAX, "RFM logistic ROC AUC", summary=True, report=True),
    _M("predict/bgnbd_roc_auc", MAX, "BG/NBD ROC AUC", summary=True, report=True),
    _M("predict/roc_auc_gain_vs_rfm", MAX, "ROC AUC gain over RFM logistic", report=True),
    _M("predict/roc_auc_gain_vs_rfm_ci_low", MAX, "gain over RFM logistic, interval low",
       summary=True, report=True),
    _M("predict/roc_auc_gain_vs_*_ci_low", MAX, "gain over a baseline, interval low"),
    _M("predict/roc_auc_gain_vs_*_ci_high", MAX, "gain over a baseline, interval high"),
    _M("predict/roc_auc_gain_vs_*", MAX, "ROC AUC gain over a baseline"),
    _M("predict/roc_auc_all", MAX, "ROC AUC, every purchaser"),
    _M("predict/roc_auc_active", MAX, "ROC AUC, active customers"),
    _M("predict/rfm_logreg_roc_auc_*", MAX, "RFM logistic ROC AUC, other population"),
    _M("predict/n_customers_*", None, "customers, other population"),
    _M("predict/pr_auc", MAX, "PR AUC", report=True),
    _M("predict/brier", MIN, "Brier score", report=True),
    _M("predict/ece", MIN, "expected calibration error", report=True),
    _M("predict/lift_at_10pct", MAX, "lift at 10 %", report=True),
    _M("predict/candidate_*_validation_roc_auc", MAX, "candidate's validation ROC AUC"),
    _M("predict/candidate_*_roc_auc", MAX, "candidate's ROC AUC"),
    _M("predict/n_train_cutoffs", None, "training cutoffs"),
    _M("predict/train_rows", None, "training rows (customer x cutoff)"),
    _M("predict/spend_mae", MIN, "spend MAE", summary=True, report=True),
    _M("predict/spend_last_period_mae", MIN, "spend MAE, last-period forecast", summary=True),
    _M("predict/bgnbd_spend_mae", MIN, "spend MAE, BG/NBD x Gamma-Gamma", summary=True, report=True),
    _M("predict/spend_mae_gain_vs_*_ci_low", MAX, "spend MAE gain, interval low"),
    _M("predict/spend_mae_gain_vs_*_ci_high", MAX, "spend MAE gain, interval high"),
    _M("predict/spend_mae_gain_vs_*", MAX, "spend MAE gain over a forecast"),
    _M("predict/spend_spearman", MAX, "spend rank correlation"),
    _M("predict/spend_last_period_spearman", MAX, "last-period rank correlation"),
    _M("predict/bgnbd_spend_spearman", MAX, "BG/NBD spend rank correlation"),
    _M("predict/spend_total_ratio", None, "predicted / actual spend total", summary=True, report=True),
    _M("predict/spend_last_period_total_ratio", None, "last-period / actual total"),
    _M("predict/bgnbd_spend_total_ratio", None, "BG/NBD / actual total"),
    _M("predict/base_rate", None, "share who buy again"),
    _M("predict/n_customers", None, "customers scored"),
    _M("predict/n_features", None, "predictors"),
    _M("predict/rolling_*_mean", MAX, "rolling mean"),
    _M("predict/rolling_roc_auc_std", None, "rolling spread"),
    _M("predict/*", None, "prediction"),
    _M("products/hit_rate_at_10", MAX, "product hit rate at 10"),
    _M("products/popularity_hit_rate_at_10", MAX, "popularity hit rate at 10"),
    _M("products/silhouette", MAX, "product-category silhouette"),
    _M("recommend/recall_at_10", MAX, "recommendation recall at 10", summary=True, report=True),
    _M("recommend/popularity_recall_at_10", MAX, "recall at 10, global popularity", summary=True,
       report=True),
    _M("recommend/segment_popularity_recall_at_10", MAX, "recall at 10, segment popularity",
       summary=True, report=True),
    _M("recommend/hit_rate_at_10", MAX, "recommendation hit rate at 10", report=True),
    _M("recommend/ndcg_at_10", MAX, "recommendation NDCG at 10", report=True),
    _M("recommend/coverage", MAX, "catalogue coverage of the lists", report=True),
    _M("recommend/validation_recall_at_10", MAX, "validation recall at 10"),
    _M("recommend/*_at_*", MAX, "recommendation"),
    _M("recommend/*", None, "recommendation"),
    _M("dynamics/stay_rate", MAX, "stay rate between snapshots", summary=True, report=True),
    _M("dynamics/upgrade_rate", MAX, "upgrade rate", summary=True, report=True),
    _M("dynamics/downgrade_rate", MIN, "downgrade rate", summary=True, report=True),
    _M("dynamics/churn_rate", MIN, "churn rate", summary=True, report=True),
    _M("dynamics/warning_auc", MAX, "warning AUC (next-period lapse)", summary=True, report=True),
    _M("dynamics/recency_auc", MAX, "recency AUC (next-period lapse)", summary=True, report=True),
    _M("dynamics/stay_rate_*", MAX, "stay rate of a segment"),
    _M("dynamics/churn_rate_*", MIN, "churn rate of a segment"),
    _M("dynamics/*", None, "dynamics"),
    _M("time/*", MIN, "seconds"),
    _M("tuning/*", None, "tuning"),
    _M("best/*", None, "best trial"),
    _M("data/*", None, "data"),
    _M("features/*", None, "features"),
)
_VALIDATION = "predict/validation_"


def metric(key: str) -> Metric | None:
    """The declaration of ``key``: exact first, then the first matching pattern.

    ``predict/validation_<x>`` scores the same thing as ``predict/<x>`` one horizon earlier, so
    it takes that declaration's direction when it has none of its own.
    """
    exact = next((m for m in METRICS if m.key == key), None)
    if exact is not None:
        return exact
    if key.startswith(_VALIDATION):
        base = metric("predict/" + key.removeprefix(_VALIDATION))
        if base is not None and base.key != "predict/*":
            return Metric(key, base.direction, "validation " + base.label)
    return next((m for m in METRICS if "*" in m.key and fnmatchcase(key, m.key)), None)


def direction(key: str) -> str | None:
    """``"max"``, ``"min"`` or None for an undeclared or directionless key."""
    declared = metric(key)
    return declared.direction if declared is not None else None


def label(key: str) -> str:
    """Human label of a metric key: its declaration's; for a one-wildcard pattern such as
    ``predict/candidate_*_roc_auc``, that label with the matched part ("candidate's ROC AUC
    (logreg)"); the key itself when undeclared or caught only by a group's ``stage/*``."""
    declared = metric(key)
    if declared is None:
        return key
    if "*" not in declared.key:
        return declared.label
    prefix, _, suffix = declared.key.partition("*")
    if "*" in suffix or declared.key.endswith("/*"):
        return key
    return f"{declared.label} ({key[len(prefix):len(key) - len(suffix)].replace('_', ' ')})"


def shown(keys, where: str) -> list[str]:
    """The keys among ``keys`` shown in ``where`` ("summary" or "report"), in declared order."""
    keys = set(keys)
    return [m.key for m in METRICS if getattr(m, where) and m.key in keys]


def ordered(keys) -> list[str]:
    """``keys`` in declaration order (undeclared keys last, alphabetically)."""
    rank = {m.key: i for i, m in enumerate(METRICS)}

    def position(key: str) -> tuple[int, str]:
        declared = metric(key)
        return (rank.get(declared.key, len(METRICS)) if declared else len(METRICS), key)

    return sorted(keys, key=position)


@dataclass(frozen=True)
class Artifact:
    """A table or file a run logs, by the name the code uses for it.

    Attributes
    ----------
    name : str
        Key in ``RunResult.tables`` (or the name the tracker logs it under).
    path : str
        MLflow artifact path.
    report : bool
        Fetched back by the study report for the chosen run.
    index : bool
        Whether the CSV carries the frame's index as its first column.
    kind : {"table", "section"}
        A DataFrame logged as CSV, or a report section drawn at run time (JSON: id, title,
        body HTML, reading), for results too rich to redraw from tables.
    """

    name: str
    path: str
    report: bool = False
    index: bool = True
    kind: str = "table"


_A = Artifact
#: Tables a run logs. Tables without a declaration go to ``tables/<name>.csv``.
ARTIFACTS: tuple[Artifact, ...] = (
    _A("profile", "segments/profile.csv", report=True),
    _A("labels", "segments/labels.csv"),
    _A("cleaning_ledger", "data/cleaning_ledger.csv", report=True, index=False),
    _A("customer_map", "tables/customer_map.csv", report=True),
    _A("predict_importance", "tables/predict_importance.csv", report=True),
    _A("predict_eval_scores", "tables/predict_eval_scores.csv"),
    _A("predict_candidates", "tables/predict_candidates.csv", report=True, index=False),
    _A("predict_reliability", "tables/predict_reliability.csv", report=True, index=False),
    _A("predict_training", "tables/predict_training.csv", index=False),
    _A("segment_value", "tables/segment_value.csv", report=True, index=False),
    _A("customer_value", "tables/customer_value.csv"),
    _A("recommend_evaluation", "recommend/evaluation.csv", index=False),
    _A("segment_products", "recommend/segment_products.csv", report=True, index=False),
    _A("dynamics_flows", "dynamics/flows.csv", index=False),
    _A("dynamics_warnings", "dynamics/warnings.csv", index=False),
    _A("dynamics_warning_evaluation", "dynamics/warning_evaluation.csv", index=False),
    _A("dynamics_segment_values", "dynamics/segment_values.csv", index=False),
    _A("dynamics_paths", "dynamics/paths.csv", index=False),
    _A("dynamics_section", "dynamics/section.json", report=True, kind="section"),
    _A("assign_history", "tables/assign_history.csv", report=True, index=False),
    _A("assign_reliability", "tables/assign_reliability.csv", report=True, index=False),
    _A("trials", "tuning/trials.csv", index=False),
    _A("pareto", "tuning/pareto.csv", index=False),
)


#: Feature columns as people read them ("rfm__frequency" -> "orders (log)"); `feature_label` also
#: knows the generated ones (weekday and hour shares, countries, product categories, embedding
#: dimensions, the repurchase model's segment columns). Logged columns follow the feature sets'
#: defaults (``log=True``).
FEATURE_LABELS: dict[str, str] = {
    "rfm__recency_days": "days since last order",
    "rfm__frequency": "orders (log)",
    "rfm__monetary": "total spend (log)",
    "behaviour__tenure_days": "days since first order",
    "behaviour__purchase_gap_mean_days": "mean days between orders",
    "behaviour__purchase_gap_std_days": "spread of days between orders",
    "behaviour__is_one_off": "bought on a single day",
    "behaviour__basket_lines_mean": "lines per order (log)",
    "behaviour__basket_lines_max": "most lines in one order (log)",
    "behaviour__basket_units_mean": "units per order (log)",
    "behaviour__basket_units_max": "most units in one order (log)",
    "behaviour__basket_value_mean": "order value (log)",
    "behaviour__basket_value_std": "spread of order value (log)",
    "behaviour__n_products": "distinct products (log)",
    "behaviour__unit_price_mean": "mean unit price (log)",
    "behaviour__return_rate": "share of spend returned",
    "behaviour__is_home_country": "lives in the home country",
    "behaviour__country_other": "lives in a less common country",
    "activity__gap_mean_days": "mean days between purchase days (log)",
    "activity__gap_std_days": "spread of days between purchase days (log)",
    "activity__gap_median_days": "median days between purchase days (log)",
    "activity__current_gap_days": "days since the last purchase day (log)",
    "activity__current_gap_ratio": "current gap over the usual gap (log)",
    "activity__has_gap": "bought on more than one day",
    "activity__trend_days": "purchase days, last 90 days against the 90 before",
    "activity__trend_spend": "spend, last 90 days against the 90 before",
    "activity__last_year_bought": "bought in the coming window a year ago",
    "activity__last_year_days": "purchase days in the coming window a year ago (log)",
    "activity__last_year_spend": "spend in the coming window a year ago (log)",
    "activity__last_year_prior_days": "purchase days in the window before it a year ago (log)",
    "activity__last_year_prior_spend": "spend in the window before it a year ago (log)",
    "activity__has_last_year": "history reaches a year back",
    "activity__has_last_year_prior": "history reaches a year and a window back",
    "lifetime__p_alive": "BG/NBD probability still a customer",
    "lifetime__p_purchase": "BG/NBD probability of a purchase in the horizon",
    "lifetime__log_expected_purchases": "BG/NBD expected purchases in the horizon (log)",
    "lifetime__log_expected_spend_per_order": "Gamma-Gamma expected order value (log)",
    "lifetime__log_expected_spend": "BG/NBD x Gamma-Gamma expected spend in the horizon (log)",
    "lifetime__bgnbd_fitted": "BG/NBD could be fitted in the window",
    "lifetime__gamma_gamma_fitted": "Gamma-Gamma could be fitted in the window",
}
_ACTIVITY_WINDOWS = {"days_last_": "purchase days in the last {} days (log)",
                     "spend_last_": "spend in the last {} days (log)",
                     "lines_last_": "lines bought in the last {} days (log)",
                     "decayed_days_": "purchase days, {}-day half-life decay (log)"}
_SPEND_SHARE = {"mon": "Mondays", "tue": "Tuesdays", "wed": "Wednesdays", "thu": "Thursdays",
                "fri": "Fridays", "sat": "Saturdays", "sun": "Sundays", "weekday": "weekdays",
                "weekend": "weekends", "morning": "mornings", "midday": "around midday",
                "afternoon": "afternoons", "evening": "evenings"}


def feature_label(column: str) -> str:
    """How people read a feature column; the column itself when nothing is declared."""
    column = str(column)
    if column in FEATURE_LABELS:
        return FEATURE_LABELS[column]
    prefix, _, name = column.partition("__")
    if name.startswith("spend_share_") and name[12:] in _SPEND_SHARE:
        return f"share of spend on {_SPEND_SHARE[name[12:]]}"
    if name.startswith("country_"):
        return "lives in " + name[8:].replace("_", " ").title()
    if name.startswith("cat_") and name[4:].isdigit():
        return f"product category {int(name[4:])} ({prefix})"
    for start, text in _ACTIVITY_WINDOWS.items():
        if prefix == "activity" and name.startswith(start) and name[len(start):].isdigit():
            return text.format(name[len(start):])
    if name.startswith("w2v_") and name[4:].isdigit():
        return f"product-embedding dimension {int(name[4:])}"
    if column.startswith("segment_") and column[8:].lstrip("-").isdigit():
        return f"in segment {column[8:]} of the repurchase window's clustering"
    return column


def artifact(name: str) -> Artifact:
    """The declaration of a table name; undeclared tables live under ``tables/``."""
    return next((a for a in ARTIFACTS if a.name == name), Artifact(name, f"tables/{name}.csv"))


def report_artifacts() -> list[Artifact]:
    """The tables the study report fetches for the run it details."""
    return [a for a in ARTIFACTS if a.report]
