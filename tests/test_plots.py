"""Plots return readable Figures, with noise labels and on degenerate inputs."""

from __future__ import annotations

import io

import numpy as np
import pandas as pd
import pytest
from matplotlib.figure import Figure
from sklearn.datasets import make_blobs
from sklearn.metrics import silhouette_score

from segmentlab.reports.plots import customer_map, profile_heatmap, segment_sizes, silhouette_plot

NAMES = {0: "loyal", 1: "lapsed", 2: "big spenders"}


@pytest.fixture(scope="module")
def data():
    X, y = make_blobs(n_samples=150, n_features=4, centers=3, random_state=2)
    labels = y.copy()
    labels[::15] = -1
    return X, labels


def _renders(fig: Figure) -> None:
    """The figure draws to PNG, as the tracker will do."""
    buffer = io.BytesIO()
    fig.savefig(buffer, format="png")
    assert buffer.getvalue().startswith(b"\x89PNG")


def _texts(fig: Figure) -> list[str]:
    return [t.get_text() for t in fig.findobj(lambda a: hasattr(a, "get_text"))]


def test_customer_map_names_segments_and_noise(data):
    X, labels = data
    fig = customer_map(X, labels, names=NAMES)
    assert isinstance(fig, Figure)
    ax = fig.axes[0]
    legend = [t.get_text() for t in ax.get_legend().get_texts()]
    assert any(t.startswith("noise") for t in legend)
    assert all(any(t.startswith(name) for t in legend) for name in NAMES.values())
    assert "PCA" in ax.get_title() and "PC1" in ax.get_xlabel() and "PC2" in ax.get_ylabel()
    _renders(fig)


def test_customer_map_default_names_one_column_and_bad_method(data):
    X, labels = data
    fig = customer_map(X[:, :1], labels)
    assert any(t.get_text().startswith("segment 0") for t in fig.axes[0].get_legend().get_texts())
    _renders(fig)
    with pytest.raises(ValueError, match="method"):
        customer_map(X, labels, method="tsne")


def test_segment_sizes_counts_every_label(data):
    _, labels = data
    fig = segment_sizes(labels, names=NAMES)
    ax = fig.axes[0]
    widths = sorted(p.get_width() for p in ax.patches)
    assert widths == sorted(np.unique(labels, return_counts=True)[1])
    ticks = [t.get_text() for t in ax.get_yticklabels()]
    assert set(ticks) == {"noise", *NAMES.values()}
    _renders(fig)


def test_profile_heatmap_annotates_standardised_means():
    profile = pd.DataFrame(
        {"recency_days": [20.0, 200.0, 90.0], "frequency": [12.0, 1.0, np.nan],
         "monetary": [5000.0, 5000.0, 5000.0]},
        index=pd.Index([0, 1, -1], name="segment"),
    )
    fig = profile_heatmap(profile, names={0: "loyal", 1: "lapsed"})
    ax = fig.axes[0]
    cells = [t.get_text() for t in ax.texts]
    assert len(cells) == profile.size
    expected = (profile - profile.mean()) / profile.std(ddof=0)
    for (i, j), text in zip(np.ndindex(profile.shape), cells, strict=True):
        value = expected.iat[i, j]
        if profile.columns[j] == "monetary":
            assert text.startswith("+0.00")  # equal in every segment: no spread, no colour
        elif np.isnan(value):
            assert text == "–"
        else:
            assert float(text.split("\n")[0]) == pytest.approx(value, abs=0.005)
    assert "5.0k" in cells[2]  # raw mean, compact, under the z-score
    assert [t.get_text() for t in ax.get_yticklabels()] == ["loyal", "lapsed", "noise"]
    assert [t.get_text() for t in ax.get_xticklabels()] == list(profile.columns)
    _renders(fig)


def test_silhouette_plot_excludes_noise_and_marks_the_mean(data):
    X, labels = data
    fig = silhouette_plot(X, labels, names=NAMES)
    kept = labels != -1
    expected = silhouette_score(X[kept], labels[kept])
    ax = fig.axes[0]
    assert ax.lines[0].get_xdata()[0] == pytest.approx(expected)
    assert all(name in _texts(fig) for name in NAMES.values())
    assert "noise" not in _texts(fig)
    _renders(fig)


def test_silhouette_plot_samples(data):
    X, labels = data
    fig = silhouette_plot(X, labels, sample_size=40, random_state=0)
    assert "40 customers" in fig.axes[0].get_title()
    _renders(fig)


@pytest.mark.parametrize(
    ("labels", "why"),
    [(np.zeros(150, dtype=int), "only one segment"), (np.full(150, -1), "all customers are noise")],
    ids=["single", "all-noise"],
)
def test_degenerate_inputs_still_give_figures(labels, why, data):
    X, _ = data
    fig = silhouette_plot(X, labels)
    assert any(why in t for t in _texts(fig))
    for figure in (fig, customer_map(X, labels), segment_sizes(labels)):
        assert isinstance(figure, Figure)
        _renders(figure)


def test_colours_distinct_and_noise_grey():
    labels = np.repeat(np.arange(-1, 12), 3)  # noise plus more segments than tab10 holds
    fig = segment_sizes(labels)
    colours = {tuple(p.get_facecolor()) for p in fig.axes[0].patches}
    assert len(colours) == len(np.unique(labels))
    ticks = [t.get_text() for t in fig.axes[0].get_yticklabels()]
    noise = fig.axes[0].patches[ticks.index("noise")].get_facecolor()
    assert noise[0] == noise[1] == noise[2]  # grey
    greys = [c for c in colours if c[0] == c[1] == c[2]]
    assert greys == [tuple(noise)]  # no segment looks like noise
