"""The tuning objective: scores one trial's experiment, doing shared work once per study."""

from __future__ import annotations

from segmentlab.features.matrix import FeatureResult
from segmentlab.prediction.selection import RepurchaseValidation
from segmentlab.prediction.windows import WindowError
from segmentlab.schema import DataError, Dataset
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
        tuned = set(study.config.tuning.get("tune", ["clusterer"]))
        self.recluster = bool(tuned - {"classifier", "recommender"})
        self._clustering = None
        metrics = list(study.config.tuning.metrics)
        self.validation = self.recommendation = None
        if any(m.startswith("predict/validation_") for m in metrics):
            self.validation = repurchase_validation(study, dataset)
        if any(m.startswith("recommend/validation_") for m in metrics):
            self.recommendation = RecommendationValidation(study, dataset)

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
            settings = trial.prediction
            segmenter = trial.segmenter if settings.segment_predictors else None
            metrics.update(self.validation.score(trial.classifier(), segmenter, settings.calibration))
        if self.recommendation is not None:
            metrics.update(self.recommendation.score(trial))
        return TrialOutcome(metrics, None, clustering.labels)


class RecommendationValidation:
    """Scores recommenders one horizon before the evaluation window: what tuning may look at.

    The lists are fitted on the lines before the validation cutoff and judged on the horizon after
    it, which ends where the evaluation horizon starts; the segments they may blend in are the
    study's, fitted before the validation cutoff, once per study.
    """

    def __init__(self, study: Experiment, dataset: Dataset):
        from segmentlab.recommend.evaluation import recommendation_cutoffs
        from segmentlab.study.stages import segments_before

        self.transactions, self.settings = dataset.transactions, study.recommend
        self.cutoff = recommendation_cutoffs(self.transactions, self.settings.horizon_days)[0]
        try:
            self.segments = segments_before(study, self.transactions, self.cutoff)
        except (ValueError, DataError) as e:
            raise TuningError(f"recommend/validation_* needs history before the validation cutoff "
                              f"{self.cutoff.date()}: {e}") from None

    def score(self, trial: Experiment) -> dict[str, float]:
        """``recommend/validation_*`` of the trial's recommender."""
        from segmentlab.recommend.evaluation import evaluate_recommenders

        evaluation = evaluate_recommenders(self.transactions, {"trial": trial.recommender()}, self.cutoff,
                                           self.settings.horizon_days, self.settings.k, self.segments,
                                           n_boot=0, seed=trial.seed)
        return {key.replace("recommend/", "recommend/validation_", 1): value
                for key, value in evaluation.metrics("trial").items()}


def repurchase_validation(experiment: Experiment, dataset: Dataset) -> RepurchaseValidation:
    """The repurchase validation of an experiment, checked: a window without data is a TuningError."""
    settings = experiment.prediction
    horizon = settings.horizon_days
    validation = RepurchaseValidation.of(
        dataset.transactions, experiment.prediction_features, horizon,
        every_days=settings.train_cutoffs.every_days,
        min_history_days=settings.train_cutoffs.min_history_days, population=settings.population,
        active_days=settings.active_days, n_windows=settings.validation_windows)
    try:
        validation.check()
    except WindowError as e:
        raise TuningError(f"predict/validation_* needs three horizons of data (3 × "
                          f"prediction.horizon_days={horizon}) and a training cutoff with "
                          f"prediction.train_cutoffs.min_history_days of history: {e}") from None
    return validation
