"""Names agree with the numbers: over random profiles (Hypothesis) and on the real data.

Every check reads the name text and the profile's medians only, not the naming code's own word
lists, so a word the code adds wrongly is caught whatever path added it.
"""

from __future__ import annotations

import os
import re

import numpy as np
import pandas as pd
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from segmentlab.schema import COUNTRY
from segmentlab.segmentation.naming import HIGH, LOW, name_basis, name_segments
from segmentlab.segmentation.profiles import profile_segments, recommend_actions

#: (pattern in a name, profile metric, which end); "one-off" is checked separately
LEVEL_WORDS = [
    (r"\blapsed\b", "recency_days", "high"), (r"\brecent\b", "recency_days", "low"),
    (r"\bnew\b", "tenure_days", "low"), (r"\bfrequent\b", "frequency", "high"),
    (r"\bhigh spenders\b", "monetary", "high"), (r"\blow spenders\b", "monetary", "low"),
    (r"\blarge baskets\b", "basket_value", "high"), (r"\bsmall baskets\b", "basket_value", "low"),
    (r"\bin bulk\b", "units_per_invoice", "high"), (r"\bfew units\b", "units_per_invoice", "low"),
]
COUNTRIES = ["United Kingdom", "Germany", "France", "EIRE", "Spain"]


def check_names(profile: pd.DataFrame, names: pd.Series, basis: pd.Series) -> None:
    """The properties every naming must have; fails with the segment and figures at fault."""
    assert names.is_unique, names.to_dict()
    segments = profile.index[profile.index != -1]
    if -1 in profile.index:
        assert names[-1] == "unassigned"
    for pattern, metric, side in LEVEL_WORDS:
        called = [s for s in segments if re.search(pattern, names[s])]
        others = [s for s in segments if s not in called]
        median = profile[f"{metric}_median"]
        for s in called:
            pct = profile.at[s, f"{metric}_pct"]
            assert (pct >= HIGH) if side == "high" else (pct <= LOW), (pattern, s, pct)
            word = re.sub(r"\\b", "", pattern)
            assert any(line.startswith(word) or line.startswith(f"with {word}")
                       or line.startswith(f"buying {word}") for line in basis[s].split("\n")), \
                (word, basis[s])
        if called and others:
            if side == "high":
                assert median[called].min() > median[others].max(), (pattern, median.to_dict(),
                                                                      names.to_dict())
            else:
                assert median[called].max() < median[others].min(), (pattern, median.to_dict(),
                                                                      names.to_dict())
    one_off = [s for s in segments if re.search(r"\bone-off\b", names[s])]
    assert set(one_off) == set(segments[profile.loc[segments, "frequency_median"] <= 1])
    returns = [s for s in segments if "high returns" in names[s]]
    others = [s for s in segments if s not in returns]
    if returns and others:
        rate = profile["return_rate_mean"]
        assert rate[returns].min() > rate[others].max()


@st.composite
def summaries(draw) -> tuple[pd.DataFrame, pd.Series]:
    """A customer summary with k segments that differ at random, ties and noise included."""
    seed = draw(st.integers(0, 2**32 - 1))
    k = draw(st.integers(2, 7))
    n = draw(st.integers(4 * k, 300))
    coarse = draw(st.booleans())      # few distinct values: medians tie across segments
    noise = draw(st.booleans())
    rng = np.random.default_rng(seed)
    labels = np.concatenate([np.arange(k), rng.integers(0, k, n - k)])
    shift = rng.normal(0, 1.2, (k, 6))[labels]
    draws = np.exp(shift + rng.normal(0, 0.6, (n, 6)))
    if coarse:
        draws = np.round(draws)
    recency = np.clip(np.round(30 * draws[:, 0]), 1, 370)
    frequency = 1 + np.floor(draws[:, 1] * rng.integers(0, 2, n))  # many one-off customers
    summary = pd.DataFrame({
        "recency_days": recency,
        "frequency": frequency,
        "monetary": 100 * draws[:, 2] * frequency,
        "basket_value": 100 * draws[:, 2],
        "units_per_invoice": 50 * draws[:, 3] + 1,
        "return_rate": np.clip(rng.beta(0.3, 8, n) * draws[:, 4], 0, 1),
        "tenure_days": np.minimum(recency + np.round(60 * draws[:, 5]) * (frequency > 1), 374),
        COUNTRY: np.array(COUNTRIES)[np.minimum(rng.poisson(draws[:, 4] / 2), 4)],
    }, index=pd.Index(np.arange(1000, 1000 + n), name="customer_id"))
    segment = pd.Series(labels, index=summary.index)
    if noise:
        segment[rng.random(n) < 0.15] = -1
    return summary, segment


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(summaries())
def test_names_follow_from_the_numbers_on_random_profiles(data):
    summary, labels = data
    profile = profile_segments(summary, labels)
    names = name_segments(profile)
    check_names(profile, names, name_basis(profile))
    actions = recommend_actions(profile, names)
    assert not actions[["marketing", "retention", "inventory"]].stack().str.contains("[{}]").any()


@pytest.mark.real_data
@pytest.mark.skipif(not os.environ.get("SEGMENTLAB_DATA"), reason="SEGMENTLAB_DATA is not set")
@pytest.mark.parametrize("overrides", [["experiment=final"], ["clusterer=kmeans",
                                                              "clusterer.n_clusters=6"]],
                         ids=["gmm5-final", "kmeans6"])
def test_names_follow_from_the_numbers_on_the_real_data(overrides, tmp_path):
    from hydra import compose, initialize_config_dir

    from segmentlab.data.loading import load_dataset
    from segmentlab.features.matrix import compute_features
    from segmentlab.segmentation.segmenting import segment_customers
    from segmentlab.settings import EvaluationSettings
    from segmentlab.study.experiment import assemble
    from tests.conftest import CONFIGS

    with initialize_config_dir(config_dir=str(CONFIGS), version_base="1.3"):
        cfg = compose("config", overrides=["data=online_retail", "tracking=none",
                                           f"data.path={os.environ['SEGMENTLAB_DATA']}",
                                           f"cache_dir={tmp_path}", *overrides])
    experiment = assemble(cfg)
    dataset = load_dataset(experiment.source, experiment.cleaner, cache_dir=str(tmp_path))
    features = compute_features(dataset, experiment.features(), None, None)
    segmentation = segment_customers(features.frame, experiment.segmenter(), dataset,
                                     EvaluationSettings(stability_resamples=0))
    profile = segmentation.profile
    check_names(profile, profile["name"], profile["name_basis"])
    assert profile["name"].nunique() == len(profile) >= 5
    # The contradiction: no segment called lapsed is more recent than one that is not.
    lapsed = profile["name"].str.contains(r"\blapsed\b")
    assert lapsed.any()
