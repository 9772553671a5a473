"""Same seed, same labels: every feature set × clusterer, in two separate processes."""

from __future__ import annotations

import json
import os
import subprocess
import sys

from tests.conftest import CONFIGS, ROOT

FEATURE_SETS = sorted(p.stem for p in (CONFIGS / "features").glob("*.yaml"))
CLUSTERERS = sorted(p.stem for p in (CONFIGS / "clusterer").glob("*.yaml"))

# Runs in a fresh interpreter: labels of every combination as a hash, printed as JSON.
SCRIPT = """
import hashlib, json, sys
from hydra import compose, initialize_config_dir
from segmentlab.config import build, build_features, build_segmenter
from segmentlab.data.loading import load_dataset
from segmentlab.features.matrix import compute_features
from segmentlab.segmentation.segmenting import cluster_customers
from segmentlab.settings import EvaluationSettings
feature_sets, clusterers = json.loads(sys.argv[1]), json.loads(sys.argv[2])
fast = ["data.n_customers=150", "data.n_lines=6000", "tracking=none", "cache_dir=null"]
out = {}
with initialize_config_dir(config_dir=sys.argv[3], version_base="1.3"):
    for features in feature_sets:
        base = compose("config", overrides=[*fast, f"features=[{features}]"])
        dataset = load_dataset(build(base.data), build(base.cleaning), cache_dir=None)
        frame = compute_features(dataset, build_features(base)).frame
        for clusterer in clusterers:
            cfg = compose("config", overrides=[*fast, f"features=[{features}]", f"clusterer={clusterer}"])
            labels = cluster_customers(frame, build_segmenter(cfg), None,
                                       EvaluationSettings(stability_resamples=0, dbcv_sample=0)).labels
            out[f"{features}/{clusterer}"] = hashlib.sha256(labels.to_numpy().tobytes()).hexdigest()
print(json.dumps(out))
"""


def labels_in_fresh_process(hash_seed: str) -> dict[str, str]:
    env = {**os.environ, "PYTHONHASHSEED": hash_seed, "MPLBACKEND": "Agg"}
    done = subprocess.run([sys.executable, "-c", SCRIPT, json.dumps(FEATURE_SETS), json.dumps(CLUSTERERS),
                           str(CONFIGS)], capture_output=True, text=True, timeout=600, cwd=ROOT, env=env)
    assert done.returncode == 0, done.stderr[-2000:]
    return json.loads(done.stdout.strip().splitlines()[-1])


def test_every_feature_set_and_clusterer_is_deterministic_across_processes():
    first, second = labels_in_fresh_process("1"), labels_in_fresh_process("2")
    assert len(first) == len(FEATURE_SETS) * len(CLUSTERERS)
    assert first == second, [k for k in first if first[k] != second[k]]
