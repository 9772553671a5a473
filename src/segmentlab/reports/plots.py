"""Matplotlib figures of a segmentation, returned for the tracker to log.

Figures are built with ``matplotlib.figure.Figure`` on an Agg canvas, never through
``pyplot``: no global backend switch, and no figure piling up in pyplot's registry during a
tuning loop. In a notebook with the inline backend (``%matplotlib inline``) a returned
figure displays as usual. Noise (label ``-1``) is grey throughout
and every other segment keeps the same colour in every plot.
"""

from __future__ import annotations

import warnings

import numpy as np
import pandas as pd
from matplotlib import colormaps
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.colors import TwoSlopeNorm, to_hex
from matplotlib.figure import Figure
from sklearn.metrics import silhouette_samples

from segmentlab.segmentation.evaluation import NOISE
from segmentlab.segmentation.segmenting import project
from segmentlab.vocabulary import feature_label

_NOISE_COLOUR = "#b0b0b0"


def customer_map(
    X: np.ndarray,
    labels: np.ndarray,
    names: dict[int, str] | None = None,
    method: str = "pca",
    random_state: int = 42,
    projection: tuple[np.ndarray, list[str]] | None = None,
) -> Figure:
    """Customers on a 2-D map, coloured by segment.

    Parameters
    ----------
    X : ndarray of shape (n_samples, n_features)
        The matrix the clusterer saw.
    labels : ndarray of shape (n_samples,)
        Segment per customer, ``-1`` for noise.
    names : dict of int to str, optional
        Legend name per label; defaults to ``"segment k"`` and ``"noise"``.
    method : {"pca", "umap"}
        Projection. UMAP costs ~40 s of numba compilation once per process.
    random_state : int
        Seed of the UMAP projection (PCA uses the exact, deterministic solver).
    projection : (xy, axis names), optional
        The 2-D coordinates when already computed (`segmentation.segmenting.project`).

    Returns
    -------
    Figure
    """
    X = np.asarray(X, dtype=np.float64)
    labels = np.asarray(labels)
    xy, axis_names = projection if projection is not None else project(X, method, random_state)
    fig, ax = _figure(7.5, 6)
    # Many customers: small translucent markers; noise first so segments draw on top.
    size = float(np.clip(3000 / max(len(labels), 1), 2, 30))
    for label in _ordered(labels):
        mine = labels == label
        ax.scatter(*xy[mine].T, s=size, alpha=0.6, linewidths=0, color=_colour(label, labels),
                   label=f"{_name(label, names)} ({mine.sum():,})")
    ax.set(title=f"Customer map ({method.upper()}), coloured by segment",
           xlabel=axis_names[0], ylabel=axis_names[1])
    ax.legend(title="segment (customers)", markerscale=max(1.0, 30 / size) ** 0.5,
              fontsize="small", loc="best")
    return fig


def segment_sizes(labels: np.ndarray, names: dict[int, str] | None = None) -> Figure:
    """Horizontal bars: customers per segment, annotated with the share of all customers.

    Parameters
    ----------
    labels : ndarray of shape (n_samples,)
        Segment per customer, ``-1`` for noise.
    names : dict of int to str, optional
        Bar name per label; defaults to ``"segment k"`` and ``"noise"``.

    Returns
    -------
    Figure
    """
    labels = np.asarray(labels)
    order = _ordered(labels)[::-1]  # barh draws bottom-up; noise ends at the bottom
    counts = np.array([np.sum(labels == label) for label in order])
    fig, ax = _figure(7, 1.2 + 0.45 * max(len(order), 1))
    ax.barh([_name(label, names) for label in order], counts,
            color=[_colour(label, labels) for label in order])
    for y, count in enumerate(counts):
        ax.annotate(f" {count:,} ({count / max(len(labels), 1):.1%})", (count, y), va="center",
                    fontsize="small")
    ax.set(title=f"Segment sizes ({len(labels):,} customers)", xlabel="customers",
           ylabel="segment")
    ax.set_xlim(0, max(counts.max(initial=0), 1) * 1.25)  # room for the annotations
    return fig


def profile_heatmap(profile_means: pd.DataFrame, names: dict[int, str] | None = None) -> Figure:
    """Segment profiles as a heatmap of standardised means, annotated.

    Features have different units (days, invoices, GBP), so each column is standardised
    across the segments (z-score of the segment means; 0 where all segments are equal). Each
    cell shows that z-score and, below it, the raw mean in compact form (``1.2k``).

    Parameters
    ----------
    profile_means : DataFrame
        One row per segment (index = label, ``-1`` for noise), one column per feature,
        holding the segment's mean of the feature in its own units.
    names : dict of int to str, optional
        Row name per label; defaults to the index, with ``-1`` shown as ``"noise"``.

    Returns
    -------
    Figure
    """
    raw = profile_means.to_numpy(dtype=np.float64)
    with warnings.catch_warnings(), np.errstate(invalid="ignore", divide="ignore"):
        warnings.simplefilter("ignore", RuntimeWarning)  # all-NaN columns: NaN is the answer
        spread = np.nanstd(raw, axis=0)
        scores = np.where(spread > 0, (raw - np.nanmean(raw, axis=0)) / spread, 0.0)
    scores[~np.isfinite(raw)] = np.nan
    n_rows, n_cols = scores.shape
    fig, ax = _figure(max(6.0, 2.5 + 0.8 * n_cols), max(3.0, 1.8 + 0.5 * n_rows))
    finite = scores[np.isfinite(scores)]
    limit = max(float(np.abs(finite).max()) if finite.size else 1.0, 1e-9)
    image = ax.imshow(np.ma.masked_invalid(scores), cmap="RdBu_r", aspect="auto",
                      norm=TwoSlopeNorm(vcenter=0.0, vmin=-limit, vmax=limit))
    fontsize = 7 if n_cols <= 20 else 5
    for (i, j), score in np.ndenumerate(scores):
        text = f"{score:+.2f}\n{_compact(raw[i, j])}" if np.isfinite(score) else "–"
        dark = np.isfinite(score) and abs(score) > 0.6 * limit
        ax.text(j, i, text, ha="center", va="center", fontsize=fontsize,
                color="white" if dark else "black")
    ax.set_xticks(range(n_cols), [str(c) for c in profile_means.columns], rotation=45,
                  ha="right", fontsize=fontsize + 1)
    ax.set_yticks(range(n_rows), [_name(label, names) if isinstance(label, (int, np.integer))
                                  else str(label) for label in profile_means.index])
    ax.set(title="Segment profiles (z-score of segment means; raw mean below)",
           xlabel="feature", ylabel="segment")
    fig.colorbar(image, ax=ax, label="standard deviations across segments")
    return fig


def silhouette_plot(
    X: np.ndarray,
    labels: np.ndarray,
    sample_size: int = 5000,
    random_state: int = 42,
    names: dict[int, str] | None = None,
) -> Figure:
    """Classic per-segment silhouette "knife" plot on a seeded sample, noise excluded.

    When the silhouette is undefined (fewer than two segments, or every sampled customer alone
    in its segment) the figure holds only a sentence saying why.

    Parameters
    ----------
    X : ndarray of shape (n_samples, n_features)
        The matrix the clusterer saw.
    labels : ndarray of shape (n_samples,)
        Segment per customer, ``-1`` for noise.
    sample_size : int
        Largest number of non-noise customers plotted (silhouette is O(n^2)).
    random_state : int
        Seed of the sample.
    names : dict of int to str, optional
        Axis name per label; defaults to ``"segment k"``.

    Returns
    -------
    Figure
    """
    all_labels = np.asarray(labels)
    keep = np.flatnonzero(all_labels != NOISE)
    if len(keep) > sample_size:
        rng = np.random.default_rng(random_state)
        keep = np.sort(rng.choice(keep, size=sample_size, replace=False))
    X, labels = np.asarray(X, dtype=np.float64)[keep], all_labels[keep]
    segments = np.unique(labels)
    if not 2 <= len(segments) < len(labels):
        why = "all customers are noise" if len(labels) == 0 else (
            "only one segment" if len(segments) < 2 else "every customer is alone in its segment")
        return _message(f"Silhouette undefined: {why}.", "Silhouette by segment")
    scores = silhouette_samples(X, labels)
    fig, ax = _figure(7, max(4.0, 0.5 * len(segments) + 2))
    y, centres = 0, []
    gap = max(len(labels) // 50, 5)
    for label in segments:
        mine = np.sort(scores[labels == label])
        ax.fill_betweenx(np.arange(y, y + len(mine)), 0, mine, linewidth=0,
                         color=_colour(label, all_labels), alpha=0.85)
        centres.append(y + len(mine) / 2)
        y += len(mine) + gap
    ax.set_yticks(centres, [_name(label, names) for label in segments], fontsize="small")
    ax.tick_params(axis="y", length=0)
    mean = float(scores.mean())
    ax.axvline(mean, color="black", linestyle="--", label=f"mean silhouette {mean:.3f}")
    ax.set(title=f"Silhouette by segment ({len(labels):,} customers, noise excluded)",
           xlabel="silhouette coefficient", ylabel="segment",
           xlim=(min(-0.1, float(scores.min()) - 0.05), 1.0))
    ax.legend(loc="lower right", fontsize="small")
    return fig


def importance_figure(table: pd.DataFrame, top: int = 20) -> Figure:
    """Horizontal bars of permutation importance with one-std error bars, largest on top."""
    shown = table.head(top).iloc[::-1]
    fig = Figure(figsize=(7.5, 0.3 * len(shown) + 1.5))
    FigureCanvasAgg(fig)
    ax = fig.add_subplot()
    ax.barh(shown["feature"].map(feature_label), shown["mean"], xerr=shown["std"], color="#4c72b0",
            alpha=0.85)
    ax.axvline(0, color="black", linewidth=0.8)
    ax.set(title=f"Repurchase classifier: permutation importance, evaluation period (top {len(shown)})",
           xlabel="drop in ROC AUC when the predictor is shuffled")
    ax.tick_params(axis="y", labelsize="small")
    fig.tight_layout()
    return fig


def reliability_figure(table: pd.DataFrame, ece: float | None = None) -> Figure:
    """Observed repurchase rate against mean predicted probability per bin (a reliability
    diagram), marker area by customers in the bin; the diagonal is perfect calibration.

    ``table`` is `segmentlab.prediction.calibration.reliability_table` output.
    """
    if table.empty:
        return _message("no predictions to draw", "Reliability of repurchase probabilities")
    fig, ax = _figure(5.5, 5)
    ax.plot([0, 1], [0, 1], color="grey", linestyle="--", linewidth=1, label="perfectly calibrated")
    ax.plot(table["mean_predicted"], table["observed_rate"], color="#4c72b0", linewidth=1.2)
    size = 400 * table["n"] / table["n"].max()
    ax.scatter(table["mean_predicted"], table["observed_rate"], s=size, color="#4c72b0", alpha=0.7,
               label="bins (area: customers)")
    title = "Reliability, evaluation period"
    ax.set(xlim=(0, 1), ylim=(0, 1), xlabel="mean predicted probability of a purchase",
           ylabel="observed share who bought", title=title if ece is None else f"{title} (ECE {ece:.3f})")
    ax.legend(loc="upper left", fontsize="small")
    return fig


def _figure(width: float, height: float):
    """A pyplot-free figure with one axes on an Agg canvas."""
    fig = Figure(figsize=(width, height), layout="constrained")
    FigureCanvasAgg(fig)
    return fig, fig.add_subplot()


def _message(text: str, title: str) -> Figure:
    """A text-only figure, for plots that are undefined on degenerate input."""
    fig, ax = _figure(6, 2.5)
    ax.text(0.5, 0.5, text, ha="center", va="center", wrap=True)
    ax.set_title(title)
    ax.set_axis_off()
    return fig


def _ordered(labels: np.ndarray) -> list:
    """Labels in display order: noise first, then segments ascending."""
    present = np.unique(labels)
    return [label for label in present if label == NOISE] + [
        label for label in present if label != NOISE]


def _colour(label, labels: np.ndarray) -> str:
    """Stable colour of a label: grey for noise, else by rank among the segments."""
    if label == NOISE:
        return _NOISE_COLOUR
    segments = [s for s in np.unique(labels) if s != NOISE]
    rank = segments.index(label)
    # The qualitative maps' own greys would pass for noise, so they are left out.
    tab10 = [c for i, c in enumerate(colormaps["tab10"].colors) if i != 7]
    tab20 = [c for i, c in enumerate(colormaps["tab20"].colors) if i not in (14, 15)]
    if len(segments) <= len(tab10):
        return to_hex(tab10[rank])
    if len(segments) <= len(tab20):
        return to_hex(tab20[rank])
    return to_hex(colormaps["turbo"](rank / (len(segments) - 1)))


def _compact(value: float) -> str:
    """A raw mean in at most ~5 characters: 0.123, 12.3, 1.2k, 3.4M."""
    for limit, suffix in ((1e9, "G"), (1e6, "M"), (1e3, "k")):
        if abs(value) >= limit:
            return f"{value / limit:.1f}{suffix}"
    return f"{value:.3g}"


def _name(label, names: dict[int, str] | None) -> str:
    """Display name of a label."""
    if names and label in names:
        return str(names[label])
    return "noise" if label == NOISE else f"segment {label}"
