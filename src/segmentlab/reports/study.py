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
    metric_heading,
    money,
    note,
    number,
    stats_html,
    table_html,
)
from segmentlab.reports.prediction import assignment_section, importance_section, repurchase_section

#: Run tags shown in the leaderboard, in this order, when present.
TAGS = ["data", "features", "reducer", "clusterer", "tuning"]
#: Metrics compared across runs first (and charted), when present.
KEY_METRICS = [m.key for m in vocabulary.METRICS if m.report and "*" not in m.key]
CHARTED = 6  # metrics charted across runs: the first ones of KEY_METRICS that runs have
NOISE_COLOUR = "#9aa5b1"
_PALETTE = qualitative.Plotly + qualitative.Set2 + qualitative.Dark2


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
    reason : str
        Why this run is the one detailed (registered model, best by the objective…).
    classifier, assigner : str or None
        The repurchase classifier and segment assigner choices (``logreg``…): which models the
        importance and the assignment section describe.
    assignment : dict of str to float, or None
        ``assign/*`` metrics.
    history, reliability : DataFrame or None
        Assignment F1 against days of history, and calibrated confidence against accuracy
        (`segmentlab.prediction.history`).
    repurchase : dict of str to DataFrame
        Repurchase tables as logged: ``predict_candidates``, ``predict_reliability``,
        ``segment_value`` (any may be missing).
    products : DataFrame or None
        What to push and stock per segment (`segmentlab.recommend.segment_products`):
        ``segment``, ``kind``, ``rank``, ``description``, ``category``, ``lift``.
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
    reason: str = ""
    classifier: str | None = None
    assigner: str | None = None
    assignment: dict[str, float] | None = None
    history: pd.DataFrame | None = None
    reliability: pd.DataFrame | None = None
    repurchase: dict[str, pd.DataFrame] = field(default_factory=dict)
    products: pd.DataFrame | None = None
    sections: list[Section] = field(default_factory=list)


def study_report(runs: pd.DataFrame, best: RunDetails | None,
                 title: str = "segmentlab study", currency: str = "£", coverage: str = "") -> str:
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
    coverage : str
        Which data the runs are on and why this run is detailed, shown under the title.

    Returns
    -------
    str
        The HTML document. A section whose input is missing says so in one line.
    """
    runs = runs if runs is not None else pd.DataFrame()
    colours = _segment_colours(best.profile if best is not None else None)
    sections = [_leaderboard(runs, best), _comparison(runs), _segment_cards(best, colours, currency),
                _customer_map(best, colours), importance_section(best), repurchase_section(best),
                assignment_section(best), *(best.sections if best is not None else []),
                ledger_section(best.ledger if best is not None else None)]
    stats = {"runs compared": f"{len(runs):,}"}
    if best is not None:
        stats["detailed run"] = best.run_name
        if best.profile is not None and "n_customers" in best.profile:
            stats["segments"] = f"{len(best.profile):,}"
            stats["customers"] = f"{int(best.profile['n_customers'].sum()):,}"
    intro = (f"<p>{esc(coverage)}</p>" if coverage else "") + stats_html(stats)
    if best is not None:
        intro = f"<p>Detailed run: {esc(best.run_name)} (MLflow run {esc(best.run_id)})</p>" + intro
    return html_page(title, sections, intro)


def _metric_columns(runs: pd.DataFrame) -> list[str]:
    """Report metrics some run has, in the vocabulary's order."""
    found = [c for c in runs.columns if "/" in str(c)
             and pd.to_numeric(runs[c], errors="coerce").notna().any()]
    return vocabulary.shown(found, "report")


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
        table.insert(1 if "run_name" in table else 0, "run", runs["run_id"].astype(str).str[:8])
    best_id = best.run_id if best is not None else None
    marks = ["best" if best_id is not None and str(r) == best_id else ""
             for r in runs.get("run_id", pd.Series([None] * len(runs)))]
    table = table.rename(columns={**{m: metric_heading(m) for m in metrics}, "run_name": "run name"})
    leaders = []
    for metric in [m for m in metrics if vocabulary.direction(m) is not None][:3]:
        values = pd.to_numeric(runs[metric], errors="coerce")
        low_is_good = vocabulary.direction(metric) == vocabulary.MIN
        at = values.idxmin() if low_is_good else values.idxmax()
        leaders.append(f"{'lowest' if low_is_good else 'highest'} {vocabulary.label(metric)} "
                       f"{number(values[at])} ({runs.at[at, 'run_name'] if 'run_name' in runs else at})")
    summary = "; ".join(leaders)
    reading = (f"{len(runs)} run{'' if len(runs) == 1 else 's'}. " + summary[:1].upper() + summary[1:]
               + ". ↑ higher is better, ↓ lower is better. Click a column header to sort, again to "
               "reverse; the detailed run is highlighted; the run name stays in view when the "
               "table scrolls sideways."
               + (" All runs share " + ", ".join(f"{t} {runs[t].iloc[0]}" for t in shared) + "."
                  if shared else ""))
    return Section("leaderboard", title, table_html(table, sortable=True, row_classes=marks,
                                                     pinned=True), reading)


def _comparison(runs: pd.DataFrame) -> Section:
    title = "Metrics by clusterer and feature set"
    metrics = [m for m in KEY_METRICS if m in runs and vocabulary.direction(m) is not None
               and pd.to_numeric(runs[m], errors="coerce").notna().any()
               and not (m == "cluster/noise_fraction"  # only methods with noise make it a choice
                        and not (pd.to_numeric(runs[m], errors="coerce") > 0).any())][:CHARTED]
    if runs.empty or not metrics:
        return Section("comparison", title, note("No run has any of " + ", ".join(KEY_METRICS) + "."))
    x = "clusterer" if "clusterer" in runs else "run_name" if "run_name" in runs else None
    group = "features" if "features" in runs else None
    frame = runs.assign(_x=runs[x].astype(str) if x else "all",
                        _g=runs[group].fillna("?").astype(str) if group else "all runs")
    rows = math.ceil(len(metrics) / 2)
    fig = make_subplots(rows=rows, cols=2 if len(metrics) > 1 else 1, vertical_spacing=0.3 / rows,
                        horizontal_spacing=0.08, subplot_titles=[metric_heading(m) for m in metrics])
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
    low = vocabulary.direction(metrics[0]) == vocabulary.MIN
    top = means.idxmin() if low else means.idxmax()
    reading = (f"{'Lowest' if low else 'Highest'} mean {vocabulary.label(metrics[0])}: {top[0]}"
               f"{f' with {top[1]}' if group else ''} ({means[top]:.3f}). "
               f"Each dot is a run; boxes show the spread when a group has several. "
               f"↑ higher is better, ↓ lower is better.")
    return Section("comparison", title, figure_html(fig), reading)


def _segment_colours(profile: pd.DataFrame | None) -> dict[int, str]:
    """Same colour for a segment in the cards and on the map; noise grey."""
    labels = [] if profile is None else [int(s) for s in profile.index]
    others = iter(_PALETTE * (1 + len(labels) // len(_PALETTE)))
    return {s: NOISE_COLOUR if s == -1 else next(others) for s in sorted(labels)}


def _segment_cards(best: RunDetails | None, colours: dict[int, str], currency: str) -> Section:
    title = "Segments of the detailed run"
    profile = best.profile if best is not None else None
    if profile is None or profile.empty:
        return Section("segments", title, note("No segment profile was logged for this run."))
    order = profile.assign(_noise=profile.index == -1).sort_values(
        ["_noise", "share_revenue"] if "share_revenue" in profile else ["_noise"],
        ascending=[True, False][: 2 if "share_revenue" in profile else 1]).index
    products = best.products if best is not None else None
    cards = [_card(label, profile.loc[label], colours.get(int(label), NOISE_COLOUR), currency,
                   _segment_products(products, label)) for label in order]
    top = profile.drop(index=-1, errors="ignore")
    reading = f"{len(top)} segments"
    if "share_revenue" in top and len(top):
        lead = top["share_revenue"].idxmax()
        reading += (f"; {top.at[lead, 'name'] if 'name' in top else lead} brings the most revenue "
                    f"({top.at[lead, 'share_revenue']:.0%}"
                    + (f" from {top.at[lead, 'share_customers']:.0%} of customers)"
                       if "share_customers" in top else ")"))
    reading += (". Every word of a name holds by a rule over these figures (under \"why this "
                "name\": the segment's place among the segments and among all customers); other "
                "figures are per-customer medians, means in brackets."
                + (" Push: the products this segment buys most above all customers (lift ×); "
                   "stock: those rising in its last 90 days against its year."
                   if products is not None and not products.empty else ""))
    return Section("segments", title, f'<div class="cards">{"".join(cards)}</div>', reading)


def _segment_products(products: pd.DataFrame | None, label: object, shown: int = 3,
                      min_lift: float = 1.1) -> dict[str, str]:
    """``push`` and ``stock`` lines of one segment's card: its top lift and rising products
    (at least ``min_lift`` times the reference share; below that there is nothing to act on)."""
    if products is None or products.empty or "segment" not in products:
        return {}
    rows = products[pd.to_numeric(products["segment"], errors="coerce") == int(label)]
    lines = {}
    for key, kinds in [("push", ("product_lift", "category_lift")),
                       ("stock", ("rising_product", "rising_category"))]:
        for kind in kinds:  # products when there are any, else categories
            part = rows[(rows["kind"] == kind) & (pd.to_numeric(rows["lift"]) >= min_lift)]
            part = part.sort_values("rank").head(shown)
            if part.empty:
                continue
            what = part["description"] if "product" in kind else part["category"]
            lines[key] = "; ".join(f"{str(w).strip().lower()} (×{lift:.1f})"
                                   for w, lift in zip(what, part["lift"], strict=True))
            break
    return lines


def _card(label: object, row: pd.Series, colour: str, currency: str,
          products: dict[str, str] | None = None) -> str:
    """One segment: who they are in numbers, then what to do and which products."""
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
             "countries": row.get("top_countries"), "categories": row.get("top_categories"),
             **(products or {})}
    dl = "".join(f"<dt>{esc(k)}</dt><dd>{esc(v)}</dd>" for k, v in facts.items()
                 if v is not None and not (isinstance(v, float) and math.isnan(v)) and v != "")
    actions = "".join(f"<li><b>{esc(k)}:</b> {esc(row[k])}</li>"
                      for k in ["marketing", "retention", "inventory"] if pd.notna(row.get(k)))
    basis = row.get("name_basis")
    why = ("".join(f"<li>{esc(line)}</li>" for line in str(basis).split("\n") if line)
           if isinstance(basis, str) and basis else "")
    size = [f"segment {esc(label)}"]
    if pd.notna(row.get("n_customers")):
        size.append(f"{int(row['n_customers']):,} customers ({row.get('share_customers', 0):.0%})")
    if pd.notna(row.get("share_revenue")):
        size.append(f"{row['share_revenue']:.0%} of revenue")
    return (f'<div class="segment" style="--colour:{colour}"><h3>{esc(row.get("name", label))}</h3>'
            f'<div class="sub">{" · ".join(size)}</div>'
            + (f'<div class="why"><b>why this name</b><ul>{why}</ul></div>' if why else "")
            + f'<dl class="facts">{dl}</dl>'
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
