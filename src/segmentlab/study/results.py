"""What one run produced, gathered for the tracker and the console: `RunResult`."""

from __future__ import annotations

from dataclasses import dataclass, field, replace

import pandas as pd
from sklearn.pipeline import Pipeline

from segmentlab.features.matrix import FeatureResult
from segmentlab.prediction.assess import Assessment
from segmentlab.segmentation.segmenting import Segmentation
from segmentlab.settings import EvaluationSettings


@dataclass(frozen=True)
class RunResult:
    """Everything one run produced; the tracker logs it, the console summarises it.

    ``tables`` are logged under their `segmentlab.vocabulary` artifact paths, ``figures``
    (matplotlib) as ``plots/<name>.png``; ``skipped`` maps a stage that could not run to why.
    """

    metrics: dict[str, float]
    labels: pd.Series
    profile: pd.DataFrame
    tables: dict[str, pd.DataFrame]
    tags: dict[str, str]
    features: pd.DataFrame
    segmenter: Pipeline
    summary: pd.DataFrame  # interpretable numbers per customer (customers.customer_summary)
    models: dict[str, object] = field(default_factory=dict)
    figures: dict = field(default_factory=dict)
    sections: dict = field(default_factory=dict)  # report sections drawn at run time (reports.html.Section)
    skipped: dict[str, str] = field(default_factory=dict)


def gather(features: FeatureResult, segmentation: Segmentation,
           assessment: Assessment | None = None) -> RunResult:
    """One `RunResult` from the stages' outputs."""
    clustering = segmentation.clustering
    tags = {"degenerate": "; ".join(clustering.reasons)} if clustering.reasons else {}
    result = RunResult(
        metrics=dict(clustering.metrics), labels=clustering.labels, profile=segmentation.profile,
        tables={**features.tables, "customer_map": segmentation.customer_map}, tags=tags,
        features=features.frame, segmenter=clustering.segmenter, summary=segmentation.summary)
    if assessment is None:
        return result
    if assessment.skipped:
        return replace(result, tags={**result.tags, "prediction_skipped": assessment.skipped})
    return replace(result, metrics={**result.metrics, **assessment.metrics},
                   tables={**result.tables, **assessment.tables}, models=dict(assessment.models))


def draw_figures(result: RunResult, segmentation: Segmentation,
                 settings: EvaluationSettings) -> RunResult:
    """The run's matplotlib figures (drawn only when a tracker will keep them)."""
    from segmentlab.reports import plots

    clustering = segmentation.clustering
    space, values, names = clustering.space, clustering.labels.to_numpy(), segmentation.names
    xy = segmentation.customer_map[["x", "y"]].to_numpy()
    figures = {
        "customer_map": plots.customer_map(space, values, names, method=settings.map_method,
                                           projection=(xy, segmentation.axis_names)),
        "segment_sizes": plots.segment_sizes(values, names),
        "profile_heatmap": plots.profile_heatmap(
            segmentation.summary.select_dtypes("number").groupby(clustering.labels).mean(), names=names),
        "silhouette": plots.silhouette_plot(space, values, sample_size=settings.silhouette_sample,
                                            random_state=settings.random_state, names=names),
    }
    if "predict_importance" in result.tables:
        figures["predict_importance"] = plots.importance_figure(result.tables["predict_importance"])
    if "predict_reliability" in result.tables:
        figures["predict_reliability"] = plots.reliability_figure(
            result.tables["predict_reliability"], result.metrics.get("predict/ece"))
    return replace(result, figures={**result.figures, **figures})
