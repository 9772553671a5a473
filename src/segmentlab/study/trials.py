"""The tuning objective: scores one trial's experiment, doing shared work once per study."""

from __future__ import annotations

from segmentlab.features.matrix import FeatureResult
from segmentlab.prediction.repurchase import RepurchaseValidation, WindowError
from segmentlab.schema import Dataset
from segmentlab.segmentation.segmenting import cluster_customers
from segmentlab.study.experiment import Experiment
from segmentlab.study.tuning import TrialOutcome, TuningError


class TrialEvaluator:
    """Scores one trial: clustering metrics, plus ``predict/validation_*`` when a tuning metric
    asks for them; a degenerate clustering fails the trial.

    Work no tuned value can change is done once per study: the clustering, when only the
    classifier is tuned, and the repurchase feature windows.

    Parameters
    ----------
    study : Experiment
        The study's base experiment (its tuning settings decide what is shared).
    features : FeatureResult
        The study's customer features, computed once.
    dataset : Dataset
        The cleaned data.
    """

    def __init__(self, study: Experiment, features: FeatureResult, dataset: Dataset):
        self.features, self.dataset = features, dataset
        self.recluster = set(study.config.tuning.get("tune", ["clusterer"])) != {"classifier"}
        self._clustering = None
        self.validation = None
        if any(m.startswith("predict/validation_") for m in study.config.tuning.metrics):
            self.validation = repurchase_validation(study, dataset)

    def __call__(self, trial: Experiment) -> TrialOutcome:
        clustering = self._clustering
        if clustering is None or self.recluster:
            clustering = cluster_customers(self.features.frame, trial.segmenter(), self.dataset.truth,
                                           trial.evaluation)
            self._clustering = None if self.recluster else clustering
        if clustering.reasons:
            return TrialOutcome(clustering.metrics, "degenerate: " + "; ".join(clustering.reasons),
                                clustering.labels)
        metrics = dict(clustering.metrics)
        if self.validation is not None:
            metrics.update(self.validation.score(trial.classifier(), trial.segmenter))
        return TrialOutcome(metrics, None, clustering.labels)


def repurchase_validation(experiment: Experiment, dataset: Dataset) -> RepurchaseValidation:
    """The repurchase validation of an experiment, checked: a window without data is a TuningError."""
    horizon = experiment.prediction.horizon_days
    validation = RepurchaseValidation.of(dataset.transactions, experiment.prediction_features, horizon)
    try:
        validation.check()
    except WindowError as e:
        raise TuningError(f"predict/validation_* needs three horizons of data "
                          f"(3 × prediction.horizon_days={horizon}): {e}") from None
    return validation
