"""``segmentlab reproduce``: rebuild a logged run from its config and compare what comes out."""

from __future__ import annotations

import math

import numpy as np
from omegaconf import OmegaConf
from sklearn.metrics import adjusted_rand_score

from segmentlab.data.loading import load_dataset
from segmentlab.features.matrix import compute_features
from segmentlab.segmentation.segmenting import cluster_customers
from segmentlab.study.experiment import assemble
from segmentlab.study.tracking import NullTracker
from segmentlab.study.trials import repurchase_validation


def reproduce(run_id: str, tracking_uri: str) -> int:
    """Rebuild a logged run (a trial's included) from its config and compare labels and metrics.

    Returns 0 when the labels agree exactly (ARI 1.0) and every logged ``cluster/*`` and
    ``predict/validation_*`` metric is reproduced, 1 otherwise.
    """
    from segmentlab.study.store import fetch_run

    logged = fetch_run(run_id, tracking_uri)
    experiment = assemble(OmegaConf.create(logged.config), tracker=NullTracker())
    dataset = load_dataset(experiment.source, experiment.cleaner, cache_dir=experiment.config.cache_dir)
    if logged.data_hash and dataset.data_hash != logged.data_hash:
        print(f"warning: data hash {dataset.data_hash} differs from the run's {logged.data_hash}")
    features = compute_features(dataset, experiment.features(), *experiment.feature_cache(dataset))
    clustering = cluster_customers(features.frame, experiment.segmenter(), dataset.truth,
                                   experiment.evaluation)
    common = clustering.labels.index.intersection(logged.labels.index)
    ari = adjusted_rand_score(logged.labels.loc[common], clustering.labels.loc[common])
    print(f"reproduced run {run_id} ({logged.name})")
    print(f"  labels: ARI {ari:.4f} against the logged labels on {len(common):,} customers "
          f"({len(logged.labels):,} logged, {len(clustering.labels):,} now)")
    metrics = dict(clustering.metrics)
    if any(k.startswith("predict/validation_") for k in logged.metrics):
        validation = repurchase_validation(experiment, dataset)
        settings = experiment.prediction  # as the trial scored it (`trials.TrialEvaluator`)
        segmenter = experiment.segmenter if settings.segment_predictors else None
        metrics.update(validation.score(experiment.classifier(), segmenter, settings.calibration))
    mismatched = 0
    for key in sorted(k for k in logged.metrics if k.startswith(("cluster/", "predict/validation_"))):
        then, now = logged.metrics[key], metrics.get(key, math.nan)
        same = (np.isnan(then) and np.isnan(now)) or bool(np.isclose(then, now, rtol=1e-6, atol=1e-9))
        mismatched += not same
        print(f"  {key:<28} logged {then:>12.6g}   now {now:>12.6g}   {'ok' if same else 'DIFFERENT'}")
    exact = ari == 1.0 and len(common) == len(logged.labels) == len(clustering.labels) and not mismatched
    print("agreement: exact" if exact else "agreement: NOT exact")
    return 0 if exact else 1
