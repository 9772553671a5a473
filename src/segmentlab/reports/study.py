"""The study report: runs of one study compared, and the chosen run explained.

Metric order, labels and directions come from `segmentlab.vocabulary`, so the leaderboard, the
metric comparison and the "highest/lowest" readings agree with the console and with tuning.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass, field

import pandas as pd
import plotly.graph_objects as go
from plotly.colors import qualitative
from plotly.subplots import make_subplots

from segmentlab import vocabulary
from segmentlab.reports.html import (
    Section,
    esc,
    figure_html,
    html_page,
    ledger_section,
    money,
    note,
    number,
    stats_html,
    table_html,
)

#: Run tags shown in the leaderboard, in this order, when present.
TAGS = ["data", "features", "reducer", "clusterer", "tuning"]
#: Metrics compared across runs first (and charted), when present.
KEY_METRICS = [m.key for m in vocabulary.METRICS if m.report and "*" not in m.key]
CHARTED = 6  # metrics charted across runs: the first ones of KEY_METRICS that runs have
NOISE_COLOUR = "#9aa5b1"
_PALETTE = qualitative.Plotly + qualitative.Set2 + qualitative.Dark2
#: prediction key -> bar label in the repurchase chart
_PREDICTORS = {"predict/roc_auc": "model", "predict/recency_roc_auc": "recency only",
               "predict/rfm_logreg_roc_auc": "RFM logistic regression"}


@dataclass(frozen=True)
class RunDetails:
    """What the study report shows about one run, usually the best.

    Attributes
    ----------
    run_id, run_name : str
        MLflow identifiers.
    metrics : dict of str to float
        The run's metrics (``cluster/silhouette``, ...).
    profile : DataFrame
        Segment profile as logged: index ``segment``; ``name``, ``n_customers``,
        ``share_customers``, ``share_revenue``, ``*_mean``/``*_median`` figures,
        ``return_rate_mean``, ``top_countries``, optional ``top_categories``, and the actions
        ``marketing``, ``retention``, ``inventory``.
    map_points : DataFrame or None
        ``x``, ``y``, ``segment``, ``segment_name``: one point per customer.
    importance : DataFrame or None
        ``feature``, ``mean``, ``std`` (permutation importance of the repurchase model).
    prediction : dict of str to float, or None
        ``predict/*`` metrics, baselines ``predict/recency_roc_auc`` and
        ``predict/rfm_logreg_roc_auc`` included.
    ledger : DataFrame or None
        Cleaning ledger: ``step``, ``rows``, ``share``.
    sections : list of Section
        Sections the run drew itself (e.g. "Segments over time"), shown before the ledger.
    """

    run_id: str
    run_name: str
    metrics: dict[str, float]
    profile: pd.DataFrame
    map_points: pd.DataFrame | None = None
    importance: pd.DataFrame | None = None
    prediction: dict[str, float] | None = None
    ledger: pd.DataFrame | None = None
    sections: list[Section] = field(default_factory=list)


def study_report(runs: pd.DataFrame, best: RunDetails | None,
                 title: str = "segmentlab study", currency: str = "£") -> str:
    """One self-contained HTML page comparing the runs of a study and explaining the best.

    Parameters
    ----------
    runs : DataFrame
        One row per run: ``run_id``, ``run_name``, tag columns (``TAGS``) and metric columns
        named ``stage/name``; any subset, NaN allowed.
    best : RunDetails or None
        The run whose segments, map, importance and prediction are shown.
    title : str
        Page title.
    currency : str
        Symbol put before amounts.

    Returns
    -------
    str
        The HTML document. A section whose input is missing says so in one line.
    """
    runs = runs if runs is not None else pd.DataFrame()
    colours = _segment_colours(best.profile if best is not None else None)
    sections = [_leaderboard(runs, best), _comparison(runs), _segment_cards(best, colours, currency),
                _customer_map(best, colours), _importance(best), _prediction(best),
                *(best.sections if best is not None else []),
                ledger_section(best.ledger if best is not None else None)]
    stats = {"runs": f"{len(runs):,}"}
    if best is not None:
        stats["best run"] = best.run_name
        if best.profile is not None and "n_customers" in best.profile:
            stats["segments (best run)"] = f"{len(best.profile):,}"
            stats["customers"] = f"{int(best.profile['n_customers'].sum()):,}"
    intro = stats_html(stats)
    if best is not None:
        intro = f"<p>Best run: {esc(best.run_name)} (MLflow run {esc(best.run_id)})</p>" + intro
    return html_page(title, sections, intro)


def _metric_columns(runs: pd.DataFrame) -> list[str]:
    """Metric columns worth a leaderboard column: key metrics first, sizes and timings left out."""
    found = [c for c in runs.columns if "/" in str(c) and not str(c).startswith("time/")
             and "/size_" not in str(c) and pd.to_numeric(runs[c], errors="coerce").notna().any()]
    return [m for m in KEY_METRICS if m in found] + sorted(c for c in found if c not in KEY_METRICS)


def _leaderboard(runs: pd.DataFrame, best: RunDetails | None) -> Section:
    title = "Leaderboard"
    if runs.empty:
        return Section("leaderboard", title, note("No runs to compare."))
    metrics = _metric_columns(runs)
    # Tags every run shares go into the reading, leaving the table room for the metrics.
    shared = [t for t in TAGS if t in runs and len(runs) > 1 and runs[t].nunique(dropna=False) == 1]
    columns = [c for c in ["run_name", *TAGS] if c in runs and c not in shared] + metrics
    table = runs[columns].copy()
    table[metrics] = table[metrics].apply(pd.to_numeric, errors="coerce")
    if "run_id" in runs:
        table.insert(0, "run", runs["run_id"].astype(str).str[:8])
    best_id = best.run_id if best is not None else None
    marks = ["best" if best_id is not None and str(r) == best_id else ""
             for r in runs.get("run_id", pd.Series([None] * len(runs)))]
    table = table.rename(columns=lambda c: c.removeprefix("cluster/"))
    leaders = []
    for metric in metrics[:3]:
        values = pd.to_numeric(runs[metric], errors="coerce")
        low_is_good = vocabulary.direction(metric) == vocabulary.MIN
        at = values.idxmin() if low_is_good else values.idxmax()
        leaders.append(f"{'lowest' if low_is_good else 'highest'} {metric.split('/')[-1]} "
                       f"{number(values[at])} ({runs.at[at, 'run_name'] if 'run_name' in runs else at})")
    summary = "; ".join(leaders)
    reading = (f"{len(runs)} runs. " + summary[:1].upper() + summary[1:]
               + ". Click a column header to sort, again to reverse; the best run is highlighted."
               + (" All runs share " + ", ".join(f"{t} {runs[t].iloc[0]}" for t in shared) + "."
                  if shared else ""))
    return Section("leaderboard", title, table_html(table, sortable=True, row_classes=marks), reading)


def _comparison(runs: pd.DataFrame) -> Section:
    title = "Metrics by clusterer and feature set"
    metrics = [m for m in KEY_METRICS if m in runs and vocabulary.direction(m) is not None
               and pd.to_numeric(runs[m], errors="coerce").notna().any()][:CHARTED]
    if runs.empty or not metrics:
        return Section("comparison", title, note("No run has any of " + ", ".join(KEY_METRICS) + "."))
    x = "clusterer" if "clusterer" in runs else "run_name" if "run_name" in runs else None
    group = "features" if "features" in runs else None
    frame = runs.assign(_x=runs[x].astype(str) if x else "all",
                        _g=runs[group].fillna("?").astype(str) if group else "all runs")
    rows = math.ceil(len(metrics) / 2)
    fig = make_subplots(rows=rows, cols=2 if len(metrics) > 1 else 1, vertical_spacing=0.3 / rows,
                        horizontal_spacing=0.08, subplot_titles=metrics)
    for j, (name, part) in enumerate(frame.groupby("_g", sort=True)):
        for i, metric in enumerate(metrics):
            fig.add_trace(go.Box(
                x=part["_x"], y=pd.to_numeric(part[metric], errors="coerce"), name=name,
                legendgroup=name, showlegend=i == 0, marker_color=_PALETTE[j % len(_PALETTE)],
                boxpoints="all", pointpos=0, jitter=0.3, text=part.get("run_name"),
                hovertemplate="%{text}<br>%{y:.3f}<extra>%{fullData.name}</extra>"),
                row=i // 2 + 1, col=i % 2 + 1)
    fig.update_layout(boxmode="group", legend_title_text=group or "", height=300 * rows + 90,
                      margin={"l": 60, "r": 24, "t": 90, "b": 40},
                      legend={"orientation": "h", "yref": "container", "y": 1, "yanchor": "top"})
    means = frame.groupby(["_x", "_g"])[metrics[0]].mean()
    top = means.idxmax()
    reading = (f"Highest mean {metrics[0].split('/')[-1]}: {top[0]}"
               f"{f' with {top[1]}' if group else ''} ({means.max():.3f}). "
               f"Each dot is a run; boxes show the spread when a group has several.")
    return Section("comparison", title, figure_html(fig), reading)


def _segment_colours(profile: pd.DataFrame | None) -> dict[int, str]:
    """Same colour for a segment in the cards and on the map; noise grey."""
    labels = [] if profile is None else [int(s) for s in profile.index]
    others = iter(_PALETTE * (1 + len(labels) // len(_PALETTE)))
    return {s: NOISE_COLOUR if s == -1 else next(others) for s in sorted(labels)}


def _segment_cards(best: RunDetails | None, colours: dict[int, str], currency: str) -> Section:
    title = "Segments of the best run"
    profile = best.profile if best is not None else None
    if profile is None or profile.empty:
        return Section("segments", title, note("No segment profile was logged for this run."))
    order = profile.assign(_noise=profile.index == -1).sort_values(
        ["_noise", "share_revenue"] if "share_revenue" in profile else ["_noise"],
        ascending=[True, False][: 2 if "share_revenue" in profile else 1]).index
    cards = [_card(label, profile.loc[label], colours.get(int(label), NOISE_COLOUR), currency)
             for label in order]
    top = profile.drop(index=-1, errors="ignore")
    reading = f"{len(top)} segments"
    if "share_revenue" in top and len(top):
        lead = top["share_revenue"].idxmax()
        reading += (f"; {top.at[lead, 'name'] if 'name' in top else lead} brings the most revenue "
                    f"({top.at[lead, 'share_revenue']:.0%}"
                    + (f" from {top.at[lead, 'share_customers']:.0%} of customers)"
                       if "share_customers" in top else ")"))
    reading += ". Figures are per-customer medians, means in brackets."
    return Section("segments", title, f'<div class="cards">{"".join(cards)}</div>', reading)


def _card(label: object, row: pd.Series, colour: str, currency: str) -> str:
    """One segment: who they are in numbers, then what to do."""
    def both(metric: str, fmt: Callable[[float], str]) -> str | None:
        med, mean = row.get(f"{metric}_median"), row.get(f"{metric}_mean")
        if med is None or pd.isna(med):
            return None
        return fmt(med) + ("" if mean is None or pd.isna(mean) else f" (mean {fmt(mean)})")

    rate = row.get("return_rate_mean")
    facts = {"days since last order": both("recency_days", lambda v: f"{v:,.0f}"),
             "orders": both("frequency", lambda v: f"{v:,.1f}".removesuffix(".0")),
             "total spend": both("monetary", lambda v: money(v, currency)),
             "order value": both("basket_value", lambda v: money(v, currency)),
             "returned": None if rate is None or pd.isna(rate) else f"{rate:.1%} of spend (mean)",
             "countries": row.get("top_countries"), "categories": row.get("top_categories")}
    dl = "".join(f"<dt>{esc(k)}</dt><dd>{esc(v)}</dd>" for k, v in facts.items()
                 if v is not None and not (isinstance(v, float) and math.isnan(v)) and v != "")
    actions = "".join(f"<li><b>{esc(k)}:</b> {esc(row[k])}</li>"
                      for k in ["marketing", "retention", "inventory"] if pd.notna(row.get(k)))
    size = [f"segment {esc(label)}"]
    if pd.notna(row.get("n_customers")):
        size.append(f"{int(row['n_customers']):,} customers ({row.get('share_customers', 0):.0%})")
    if pd.notna(row.get("share_revenue")):
        size.append(f"{row['share_revenue']:.0%} of revenue")
    return (f'<div class="segment" style="--colour:{colour}"><h3>{esc(row.get("name", label))}</h3>'
            f'<div class="sub">{" · ".join(size)}</div><dl class="facts">{dl}</dl>'
            f'{f"<ul class=actions>{actions}</ul>" if actions else ""}</div>')


def _customer_map(best: RunDetails | None, colours: dict[int, str],
                  max_points: int = 20_000) -> Section:
    title = "Customer map"
    points = best.map_points if best is not None else None
    if points is None or points.empty:
        return Section("customer-map", title, note("No customer map was logged for this run."))
    shown = points.sample(max_points, random_state=0) if len(points) > max_points else points
    fig = go.Figure()
    sizes = shown["segment"].value_counts()
    for label in sorted(sizes.index, key=lambda s: (s == -1, -sizes[s])):
        part = shown[shown["segment"] == label]
        # %{fullData.name} puts the (escaped by plotly) segment name in the hover box.
        fig.add_trace(go.Scatter(
            x=part["x"], y=part["y"], mode="markers", name=str(part["segment_name"].iloc[0]),
            marker={"size": 5, "opacity": 0.65, "color": colours.get(int(label), NOISE_COLOUR)},
            meta=int(label), hovertemplate="<b>%{fullData.name}</b><br>segment %{meta}<extra></extra>"))
    fig.update_layout(legend_title_text="segment", height=560, xaxis_title="map x",
                      yaxis_title="map y")
    reading = (f"{len(points):,} customers in {points['segment'].nunique()} groups"
               + (f" ({len(shown):,} drawn at random)" if len(shown) < len(points) else "")
               + "; hover a point for its segment, click a legend entry to hide it.")
    return Section("customer-map", title, figure_html(fig), reading)


def _importance(best: RunDetails | None, top: int = 20) -> Section:
    title = "Feature importance"
    table = best.importance if best is not None else None
    if table is None or table.empty:
        return Section("importance", title, note("No feature importance was logged for this run."))
    shown = table.nlargest(top, "mean").iloc[::-1]  # largest at the top of horizontal bars
    error = {"type": "data", "array": shown["std"]} if "std" in shown else None
    fig = go.Figure(go.Bar(x=shown["mean"], y=shown["feature"].astype(str), orientation="h",
                           error_x=error, marker_color="#2563eb"))
    fig.update_layout(xaxis_title="permutation importance (drop in score)",
                      height=max(300, 26 * len(shown) + 110))
    first = table.loc[table["mean"].idxmax()]
    total = table["mean"].clip(lower=0).sum()
    reading = (f"{first['feature']} matters most ({first['mean']:.3g}"
               + (f" ± {first['std']:.2g}" if "std" in table else "") + ")"
               + (f"; the top 3 of {len(table)} features carry "
                  f"{table['mean'].clip(lower=0).nlargest(3).sum() / total:.0%} of the total"
                  if total > 0 and len(table) > 3 else "") + ".")
    return Section("importance", title, figure_html(fig), reading)


def _prediction(best: RunDetails | None) -> Section:
    title = "Repurchase prediction against baselines"
    scores = best.prediction if best is not None else None
    if not scores or not pd.notna(scores.get("predict/roc_auc")):
        return Section("prediction", title, note("No repurchase prediction was logged for this run."))
    bars = {label: scores[k] for k, label in _PREDICTORS.items() if pd.notna(scores.get(k))}
    fig = go.Figure(go.Bar(x=list(bars), y=list(bars.values()), text=[f"{v:.3f}" for v in bars.values()],
                           textposition="outside", marker_color=["#2563eb"] + ["#9aa5b1"] * 3))
    fig.add_hline(y=0.5, line_dash="dot", annotation_text="chance", annotation_position="bottom right")
    fig.update_layout(yaxis={"title": "ROC AUC", "range": [0.4, 1.0]}, height=380)
    model = bars.pop("model")
    reading = f"The model reaches ROC AUC {model:.3f}" + "".join(
        f"{'; ' if i else ', '}{model - v:+.3f} against {k} ({v:.3f})"
        for i, (k, v) in enumerate(bars.items())) + "."
    rest = pd.DataFrame([(k, v) for k, v in scores.items() if k not in _PREDICTORS],
                        columns=["metric", "value"])
    return Section("prediction", title, figure_html(fig)
                   + (table_html(rest) if len(rest) else ""), reading)
