"""Self-contained interactive HTML reports: the page scaffolding and the study report.

A report is ONE HTML file that works offline from ``file://``: plotly.js is inlined once in the
page head, every figure is a ``<div>`` drawn by it, and the only other script is a few lines
that make tables sortable. Text taken from data or runs is escaped, so a segment named
``<script>`` shows as text. ``eda.py`` builds its report from the same pieces.

To look at a report without a browser window (or check its layout)::

    python -m segmentlab.reporting screenshot REPORT.html OUT.png [--height 9000]
"""

from __future__ import annotations

import argparse
import html
import math
import re
import shutil
import subprocess
import sys
import tempfile
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

import pandas as pd
import plotly.graph_objects as go
from plotly.colors import qualitative
from plotly.offline import get_plotlyjs
from plotly.subplots import make_subplots

#: Flags that let headless Chromium run as root in a container without network side trips.
CHROMIUM_FLAGS = ("--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
                  "--disable-background-networking", "--disable-component-update",
                  "--disable-sync", "--hide-scrollbars")
FONT = "system-ui, -apple-system, 'Segoe UI', Roboto, 'Helvetica Neue', Arial, sans-serif"

_CSS = """
:root{--fg:#1f2933;--muted:#52606d;--bg:#f4f6f8;--card:#fff;--line:#e1e5ea;--accent:#2563eb}
*{box-sizing:border-box}
body{margin:0;font:15px/1.5 """ + FONT + """;color:var(--fg);background:var(--bg)}
main{max-width:1200px;margin:0 auto;padding:24px 20px 60px}
h1{font-size:1.7rem;margin:0 0 6px}h2{font-size:1.25rem;margin:0 0 4px}h3{font-size:1.05rem;margin:0}
header.report p{margin:2px 0;color:var(--muted)}
nav.toc{margin:14px 0 0;display:flex;flex-wrap:wrap;gap:6px 14px;font-size:.9rem}
a{color:var(--accent);text-decoration:none}a:hover{text-decoration:underline}
.stats{display:flex;flex-wrap:wrap;gap:10px;margin:14px 0 0}
.stat{background:var(--card);border:1px solid var(--line);border-radius:8px;padding:8px 14px}
.stat b{display:block;font-size:1.2rem}.stat span{color:var(--muted);font-size:.85rem}
section.card{background:var(--card);border:1px solid var(--line);border-radius:10px;
 padding:18px 22px;margin:18px 0;box-shadow:0 1px 2px rgba(0,0,0,.04)}
p.reading{margin:0 0 12px;color:var(--muted)}p.note{font-style:italic;color:var(--muted);margin:0}
/* auto-fill, not auto-fit: a figure drawn before its neighbour exists must not take the row */
.pair{display:grid;grid-template-columns:repeat(auto-fill,minmax(460px,1fr));gap:12px}
.table-wrap{overflow-x:auto;margin-top:8px}
table{border-collapse:collapse;width:100%;font-size:.88rem;font-variant-numeric:tabular-nums}
th,td{padding:5px 9px;border-bottom:1px solid var(--line);text-align:left;vertical-align:top}
th{background:#f8fafc;font-weight:600}.num{text-align:right}
table.sortable th{cursor:pointer;user-select:none;white-space:nowrap}table.sortable td{white-space:nowrap}
table.sortable th:hover{background:#eef2f7}
th[aria-sort=ascending]::after{content:" \\25B2"}th[aria-sort=descending]::after{content:" \\25BC"}
tr.best td{background:#eaf1ff;font-weight:600}
.cards{display:grid;grid-template-columns:repeat(auto-fill,minmax(340px,1fr));gap:14px}
.segment{border:1px solid var(--line);border-top:5px solid var(--colour);border-radius:8px;
 padding:12px 14px}
.segment .sub{color:var(--muted);font-size:.88rem;margin:2px 0 8px}
dl.facts{display:grid;grid-template-columns:max-content 1fr;gap:1px 12px;margin:0 0 8px;
 font-size:.88rem}dl.facts dt{color:var(--muted)}dl.facts dd{margin:0}
ul.actions{margin:0;padding-left:18px;font-size:.88rem}ul.actions li{margin:2px 0}
"""

_SORT_JS = """
document.querySelectorAll("table.sortable").forEach(function (table) {
  var heads = table.tHead.rows[0].cells;
  Array.prototype.forEach.call(heads, function (th, col) {
    th.tabIndex = 0;
    function sort() {
      var up = th.getAttribute("aria-sort") !== "ascending", numeric = th.classList.contains("num");
      Array.prototype.forEach.call(heads, function (h) { h.removeAttribute("aria-sort"); });
      th.setAttribute("aria-sort", up ? "ascending" : "descending");
      function key(row) {
        var v = row.cells[col].getAttribute("data-value");
        return numeric ? (v === "" ? NaN : parseFloat(v)) : v;
      }
      var rows = Array.prototype.slice.call(table.tBodies[0].rows);
      rows.sort(function (a, b) {
        var x = key(a), y = key(b);
        if (!numeric) return up ? x.localeCompare(y) : y.localeCompare(x);
        if (isNaN(x) || isNaN(y)) return isNaN(x) - isNaN(y);  /* missing values last */
        return up ? x - y : y - x;
      });
      rows.forEach(function (row) { table.tBodies[0].appendChild(row); });
    }
    th.addEventListener("click", sort);
    th.addEventListener("keydown", function (e) { if (e.key === "Enter") sort(); });
  });
});
"""


def esc(value: object) -> str:
    """Text for HTML, quotes included."""
    return html.escape(str(value), quote=True)


@dataclass(frozen=True)
class Section:
    """One card of a report: ``body`` is HTML built by this package, ``reading`` plain text."""

    id: str
    title: str
    body: str
    reading: str = ""

    def to_html(self) -> str:
        reading = f'<p class="reading">{esc(self.reading)}</p>' if self.reading else ""
        return (f'<section id="{esc(self.id)}" class="card"><h2>{esc(self.title)}</h2>'
                f"{reading}{self.body}</section>")


def note(text: str) -> str:
    """A one-line remark in place of a figure, e.g. why a section is empty."""
    return f'<p class="note">{esc(text)}</p>'


def stats_html(stats: Mapping[str, str]) -> str:
    """Key figures as a row of small boxes: ``{label: value}``."""
    boxes = "".join(f'<div class="stat"><b>{esc(v)}</b><span>{esc(k)}</span></div>'
                    for k, v in stats.items())
    return f'<div class="stats">{boxes}</div>'


def html_page(title: str, sections: Sequence[Section], intro: str = "") -> str:
    """A complete HTML document: header, table of contents, the sections.

    Parameters
    ----------
    title : str
        Page title and ``<h1>`` (escaped).
    sections : sequence of Section
        In page order.
    intro : str
        HTML under the title (build it with ``esc``, ``stats_html``).

    Returns
    -------
    str
        The document; plotly.js is inlined once when any section holds a figure.
    """
    body = "\n".join(s.to_html() for s in sections)
    plotly = f"<script>{get_plotlyjs()}</script>" if "plotly-graph-div" in body else ""
    sort = f"<script>{_SORT_JS}</script>" if 'class="sortable"' in body else ""
    toc = "".join(f'<a href="#{esc(s.id)}">{esc(s.title)}</a>' for s in sections)
    return (f'<!DOCTYPE html>\n<html lang="en"><head><meta charset="utf-8">'
            f'<meta name="viewport" content="width=device-width, initial-scale=1">'
            f"<title>{esc(title)}</title><style>{_CSS}</style>{plotly}</head><body><main>"
            f'<header class="report"><h1>{esc(title)}</h1>{intro}<nav class="toc">{toc}</nav>'
            f"</header>\n{body}\n</main>{sort}</body></html>\n")


def figure_html(fig: go.Figure, height: int = 420) -> str:
    """A plotly figure as a ``<div>`` plus the call that draws it (plotly.js not included)."""
    fig = go.Figure(fig)  # a copy: styling here must not change the caller's figure
    fig.update_layout(template="plotly_white", font={"family": FONT, "size": 13},
                      height=fig.layout.height or height)
    if fig.layout.margin.t is None:
        fig.update_layout(margin={"l": 60, "r": 24, "t": 48, "b": 48})
    fig.update_xaxes(automargin=True)
    fig.update_yaxes(automargin=True)
    config = {"displaylogo": False, "responsive": True}
    return fig.to_html(full_html=False, include_plotlyjs=False, config=config)


def figures_to_html(figures: Mapping[str, go.Figure], title: str = "figures") -> str:
    """One self-contained page with a section per figure, e.g. to log plotly figures to MLflow.

    Parameters
    ----------
    figures : mapping of str to plotly Figure
        Section title -> figure; the section id is the title in lower-case kebab form.
    title : str
        Page title.

    Returns
    -------
    str
        The HTML document, plotly.js inlined once.
    """
    sections = [Section(re.sub(r"[^a-z0-9]+", "-", name.lower()).strip("-") or "figure", name,
                        figure_html(fig)) for name, fig in figures.items()]
    return html_page(title, sections)


def money(value: float, currency: str = "£") -> str:
    """Short amount: ``£1.16M``, ``£950k``, ``£302``, ``£12.50``."""
    if value is None or not math.isfinite(value):
        return "–"
    sign, size = ("-" if value < 0 else ""), abs(value)
    for limit, suffix in ((1e9, "B"), (1e6, "M"), (1e3, "k")):
        if size >= limit:
            return f"{sign}{currency}{size / limit:.3g}{suffix}"
    return f"{sign}{currency}{size:,.0f}" if size >= 100 else f"{sign}{currency}{size:,.2f}"


def number(value: object) -> str:
    """Metric value for a table: ``0.523``, ``12.46``, ``3,120``; missing as a dash."""
    try:
        v = float(value)
    except (TypeError, ValueError):
        return "–" if value is None else str(value)
    if not math.isfinite(v):
        return "–"
    if v.is_integer() or abs(v) >= 1000:
        return f"{v:,.0f}"
    return f"{v:.3f}" if abs(v) < 1 else f"{v:,.2f}"


def table_html(frame: pd.DataFrame, formats: Mapping[str, Callable[[object], str]] | None = None,
               sortable: bool = False, row_classes: Sequence[str] | None = None) -> str:
    """A frame as an escaped HTML table (index dropped; reset it first to show it).

    Parameters
    ----------
    frame : DataFrame
        Rows to show; numeric columns are right-aligned.
    formats : mapping of column to callable, optional
        Value -> display text; the default shows numbers with ``number`` and text as is.
    sortable : bool
        Clicking a header sorts by that column (each cell carries its raw value).
    row_classes : sequence of str, optional
        A CSS class per row (``"best"`` highlights).
    """
    formats = formats or {}
    numeric = [pd.api.types.is_numeric_dtype(frame[c]) and not pd.api.types.is_bool_dtype(frame[c])
               for c in frame.columns]
    head = "".join(f'<th{" class=num" if n else ""}>{esc(c)}</th>'
                   for c, n in zip(frame.columns, numeric, strict=True))
    rows = []
    for i, record in enumerate(frame.itertuples(index=False, name=None)):
        cells = []
        for column, value, is_num in zip(frame.columns, record, numeric, strict=True):
            text = formats.get(column, number if is_num else _text)(value)
            raw = "" if is_num and pd.isna(value) else value
            key = f' data-value="{esc(raw)}"' if sortable else ""
            cells.append(f'<td{" class=num" if is_num else ""}{key}>{esc(text)}</td>')
        css = f' class="{esc(row_classes[i])}"' if row_classes and row_classes[i] else ""
        rows.append(f"<tr{css}>{''.join(cells)}</tr>")
    kind = ' class="sortable"' if sortable else ""
    return (f'<div class="table-wrap"><table{kind}><thead><tr>{head}</tr></thead>'
            f"<tbody>{''.join(rows)}</tbody></table></div>")


def _text(value: object) -> str:
    return "–" if value is None or (isinstance(value, float) and math.isnan(value)) else str(value)


def ledger_section(ledger: pd.DataFrame | None, section_id: str = "ledger") -> Section:
    """The cleaning ledger (``step``, ``rows``, ``share``) as a table with a one-line reading."""
    title = "Cleaning ledger"
    if ledger is None or ledger.empty:
        return Section(section_id, title, note("No cleaning ledger was recorded."))
    rows = ledger.set_index("step")["rows"]
    reading = ""
    if {"rows_in", "rows_kept"} <= set(rows.index):
        steps = rows.drop(["rows_in", "rows_kept"])
        reading = (f"{rows['rows_kept']:,} of {rows['rows_in']:,} input rows kept as purchases "
                   f"({rows['rows_kept'] / max(rows['rows_in'], 1):.0%})")
        if len(steps) and steps.max() > 0:
            reading += (f"; the largest step is {steps.idxmax()} "
                        f"({steps.max():,} rows, {steps.max() / max(rows['rows_in'], 1):.1%})")
        reading += "."
    share = {"share": lambda v: f"{float(v):.2%}"} if "share" in ledger else {}
    return Section(section_id, title, table_html(ledger, formats=share), reading)


# --- The study report ------------------------------------------------------------------------

#: Run tags shown in the leaderboard, in this order, when present.
TAGS = ["data", "features", "reducer", "clusterer", "tuning"]
#: Metrics compared across runs first (and charted), when present.
KEY_METRICS = ["cluster/silhouette", "cluster/stability_ari", "cluster/dbcv",
               "cluster/noise_fraction", "cluster/n_clusters", "predict/roc_auc"]
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
    """

    run_id: str
    run_name: str
    metrics: dict[str, float]
    profile: pd.DataFrame
    map_points: pd.DataFrame | None = None
    importance: pd.DataFrame | None = None
    prediction: dict[str, float] | None = None
    ledger: pd.DataFrame | None = None


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
        low_is_good = metric.endswith(("noise_fraction", "davies_bouldin"))
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
    metrics = [m for m in KEY_METRICS if m in runs and m != "cluster/n_clusters"
               and pd.to_numeric(runs[m], errors="coerce").notna().any()]
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


def screenshot(report: str | Path, out: str | Path, width: int = 1400, height: int = 4000,
               chromium: str | None = None, timeout: float = 180.0) -> Path:
    """Render a report in headless Chromium and save a PNG of its top ``height`` pixels.

    Parameters
    ----------
    report : str or Path
        The HTML file.
    out : str or Path
        PNG to write.
    width, height : int
        Window size in CSS pixels; the page is cut at ``height``.
    chromium : str, optional
        Browser executable; default ``chromium`` on the PATH, else ``/usr/bin/chromium``.
    timeout : float
        Seconds before giving up.

    Returns
    -------
    Path
        ``out``, resolved.
    """
    browser = chromium or shutil.which("chromium") or "/usr/bin/chromium"
    out = Path(out).resolve()
    with tempfile.TemporaryDirectory(prefix="segmentlab-chromium-") as profile:
        # The virtual time budget lets the plotly calls finish before the capture.
        command = [browser, *CHROMIUM_FLAGS, f"--user-data-dir={profile}",
                   f"--window-size={width},{height}", f"--screenshot={out}",
                   "--virtual-time-budget=15000", Path(report).resolve().as_uri()]
        subprocess.run(command, check=True, capture_output=True, timeout=timeout)
    if not out.exists():
        raise RuntimeError(f"chromium wrote no screenshot to {out}")
    return out


def main(argv: list[str] | None = None) -> int:
    """``python -m segmentlab.reporting screenshot REPORT.html OUT.png``."""
    parser = argparse.ArgumentParser(prog="python -m segmentlab.reporting")
    commands = parser.add_subparsers(dest="command", required=True)
    shot = commands.add_parser("screenshot", help="PNG of a report, via headless Chromium")
    shot.add_argument("report")
    shot.add_argument("out")
    shot.add_argument("--width", type=int, default=1400)
    shot.add_argument("--height", type=int, default=4000)
    args = parser.parse_args(argv)
    print(screenshot(args.report, args.out, args.width, args.height))
    return 0


if __name__ == "__main__":
    sys.exit(main())
