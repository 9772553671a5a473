"""Plotly figures and the "Segments over time" report section, drawn from a ``DynamicsResult``.

Reads results, never computes them. The section uses the report kit of `reports.html`
(offline: plotly.js is inlined once by ``html_page``).
"""

from __future__ import annotations

import html

import pandas as pd
import plotly.graph_objects as go
from plotly.colors import qualitative

from segmentlab.dynamics.migration import migration_matrix, state_order
from segmentlab.dynamics.snapshots import CHURNED, NOT_YET
from segmentlab.dynamics.tracker import DynamicsResult
from segmentlab.reports.html import Section, figure_html, money, note, table_html
from segmentlab.reports.study import NOISE_COLOUR

# Same palette and order as the report's segment cards: sorted labels, noise grey.
_PALETTE = qualitative.Plotly + qualitative.Set2 + qualitative.Dark2
_FIXED = {NOT_YET: "#cbd2d9", CHURNED: "#b91c1c", "-1": NOISE_COLOUR}


def state_colours(states) -> dict[str, str]:
    """Colour per state text; segments take the palette in label order."""
    segments = sorted((s for s in set(states) if s not in _FIXED), key=int)
    return {**{s: _PALETTE[i % len(_PALETTE)] for i, s in enumerate(segments)}, **_FIXED}


def pair_flows(result: DynamicsResult, date_from: pd.Timestamp | None = None,
               date_to: pd.Timestamp | None = None) -> pd.DataFrame:
    """The flow rows of one pair of snapshot dates (default: the last two)."""
    dates = result.snapshots.dates
    date_from = dates[-2] if date_from is None else pd.Timestamp(date_from)
    date_to = dates[-1] if date_to is None else pd.Timestamp(date_to)
    flows = result.flows
    rows = flows[(flows["date_from"] == date_from) & (flows["date_to"] == date_to)]
    return rows.drop_duplicates(["from", "to"])


def sankey(result: DynamicsResult, date_from: pd.Timestamp | None = None,
           date_to: pd.Timestamp | None = None) -> go.Figure:
    """Customers flowing between the states of two snapshots (default: the last two)."""
    flows = pair_flows(result, date_from, date_to)
    flows = flows[flows["from"] != NOT_YET]  # people who are not customers yet carry no story here
    left = state_order(flows["from"], result.ranks)
    right = state_order(flows["to"], result.ranks)
    colours = state_colours(left + right)
    when = _pair_label(flows)
    labels = [result.names.get(s, s) for s in left + right]
    source = flows["from"].map({s: i for i, s in enumerate(left)})
    target = flows["to"].map({s: len(left) + i for i, s in enumerate(right)})
    fig = go.Figure(go.Sankey(
        arrangement="snap",
        node={"label": labels, "color": [colours[s] for s in left + right], "pad": 12},
        link={"source": source.tolist(), "target": target.tolist(),
              "value": flows["customers"].tolist(),
              "color": [_fade(colours[s]) for s in flows["from"]],
              "hovertemplate": "%{source.label} → %{target.label}: %{value:,} customers<extra></extra>"}))
    fig.update_layout(title=f"Where customers went, {when}", height=520)
    return fig


def sizes_over_time(result: DynamicsResult) -> go.Figure:
    """Customers per state at every snapshot, stacked (people not yet customers left out)."""
    counts = result.snapshots.states.groupby(["date", "state"]).size().unstack(fill_value=0)
    counts = counts.drop(columns=NOT_YET, errors="ignore")
    order = state_order(counts.columns, result.ranks)[::-1]  # churned at the bottom
    colours = state_colours(order)
    fig = go.Figure()
    for state in order:
        fig.add_trace(go.Scatter(x=counts.index, y=counts[state], name=result.names.get(state, state),
                                 mode="lines", stackgroup="states", line={"width": 0.5},
                                 fillcolor=colours[state], marker_color=colours[state]))
    fig.update_layout(title="Segment sizes over time", yaxis_title="customers",
                      legend_title_text="state", hovermode="x unified")
    return fig


def migration_heatmap(result: DynamicsResult, date_from: pd.Timestamp | None = None,
                      date_to: pd.Timestamp | None = None) -> go.Figure:
    """Row shares as colour, customer counts as text, between two snapshots (default: the last two)."""
    flows = pair_flows(result, date_from, date_to)
    counts = migration_matrix(flows, result.ranks, "customers")
    shares = migration_matrix(flows, result.ranks, "share")
    rows = [result.names.get(s, s) for s in counts.index]
    columns = [_wrap(result.names.get(s, s)) for s in counts.columns]
    fig = go.Figure(go.Heatmap(
        z=shares.to_numpy(), x=columns, y=rows, text=counts.to_numpy(), texttemplate="%{text:,}",
        colorscale="Blues", zmin=0, zmax=1, colorbar={"title": "share of row"},
        hovertemplate="%{y} → %{x}<br>%{text:,} customers (%{z:.0%} of the row)<extra></extra>"))
    fig.update_layout(title=f"Migration matrix, {_pair_label(flows)}", height=560,
                      xaxis_title="to", yaxis_title="from", yaxis_autorange="reversed",
                      xaxis_tickangle=0, xaxis_side="bottom")
    return fig


def dynamics_figures(result: DynamicsResult) -> dict[str, go.Figure]:
    """The figures of the section, keyed for logging: last-pair Sankey and heatmap, sizes,
    first-to-last heatmap."""
    dates = result.snapshots.dates
    return {"dynamics_sankey": sankey(result), "dynamics_sizes": sizes_over_time(result),
            "dynamics_matrix": migration_heatmap(result),
            "dynamics_matrix_first_last": migration_heatmap(result, dates[0], dates[-1])}


def dynamics_section(result: DynamicsResult, currency: str = "£", top: int = 20) -> Section:
    """The "Segments over time" report card: figures, rates, the warning check and list."""
    figures = dynamics_figures(result)
    m = result.metrics
    reading = (f"{len(result.snapshots.dates)} snapshots every "
               f"{_step_text(result.snapshots.step)}; the fitted segmenter labels customers at each "
               f"date (nothing refitted). Between consecutive snapshots {_pct(m, 'stay')} of "
               f"customers stayed in their segment, {_pct(m, 'upgrade')} moved up, "
               f"{_pct(m, 'downgrade')} moved down and {_pct(m, 'churn')} churned.")
    # One figure per row: Sankey node labels and matrix axis names need the width.
    body = "".join(figure_html(figures[k]) for k in ("dynamics_sankey", "dynamics_matrix",
                                                      "dynamics_sizes")) + _check_html(m)
    warnings = result.warnings.head(top)
    if warnings.empty:
        body += note("No customer moved down in the last period.")
    else:
        shown = warnings[["customer_id", "from_name", "to_name", "recency_days", "value_at_stake",
                          "action"]].rename(columns={"from_name": "from", "to_name": "to"})
        body += (f"<h3>Early warnings: top {len(shown)} of {len(result.warnings):,} by value at stake "
                 f"({money(result.warnings['value_at_stake'].sum(), currency)} in all)</h3>"
                 + table_html(shown, {"value_at_stake": lambda v: money(v, currency),
                                           "customer_id": str}, sortable=True))
    return Section("segments-over-time", "Segments over time", body, reading)


def _check_html(m: dict[str, float]) -> str:
    """One line: does moving down predict a lapse in the next period, next to recency alone?"""
    if pd.isna(m.get("dynamics/warning_auc")):
        return note("Too few snapshots to check the warnings against a following period.")
    return note(f"Does moving down foretell a lapse? Over {m['dynamics/n_evaluated']:,.0f} customer-"
                f"periods, warned customers bought nothing in the next period "
                f"{m['dynamics/lapse_rate_warned']:.0%} of the time, others "
                f"{m['dynamics/lapse_rate_not_warned']:.0%}. AUC of the warning "
                f"{_auc(m, 'warning')}, of its score {_auc(m, 'warning_score')}, of recency alone "
                f"{_auc(m, 'recency')}; among customers not yet churned, warning "
                f"{_auc(m, 'warning', '_active')} vs recency {_auc(m, 'recency', '_active')} "
                f"(AUC 0.5 is chance; 95 % intervals from resampling customers).")


def _auc(m: dict[str, float], name: str, suffix: str = "") -> str:
    key = f"dynamics/{name}_auc{suffix}"
    low, high = m.get(f"{key}_ci_low"), m.get(f"{key}_ci_high")
    interval = "" if low is None or pd.isna(low) else f" [{low:.2f}, {high:.2f}]"
    return f"{m[key]:.2f}{interval}"


def _pct(m: dict[str, float], kind: str) -> str:
    value = m.get(f"dynamics/{kind}_rate", float("nan"))
    return "–" if pd.isna(value) else f"{value:.0%}"


def _pair_label(flows: pd.DataFrame) -> str:
    if flows.empty:
        return ""
    return f"{flows['date_from'].iloc[0].date()} → {flows['date_to'].iloc[0].date()}"


def _step_text(step: pd.DateOffset) -> str:
    months, days = step.kwds.get("months"), step.kwds.get("days")
    return {1: "month", 3: "quarter"}.get(months, f"{months} months") if months else f"{days} days"


def _wrap(text: str, width: int = 14) -> str:
    """Break a long axis label over lines at spaces (plotly reads ``<br>``); escape the rest."""
    lines, line = [], ""
    for word in text.split():
        if line and len(line) + 1 + len(word) > width:
            lines.append(line)
            line = word
        else:
            line = f"{line} {word}".strip()
    return "<br>".join(html.escape(part) for part in [*lines, line])


def _fade(colour: str) -> str:
    """A hex colour at 40 % opacity for Sankey links."""
    if colour.startswith("#") and len(colour) == 7:
        return f"rgba({int(colour[1:3], 16)},{int(colour[3:5], 16)},{int(colour[5:7], 16)},0.4)"
    return colour.replace("rgb(", "rgba(").replace(")", ",0.4)")
