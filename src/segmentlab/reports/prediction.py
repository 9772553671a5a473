"""Report sections about the prediction stage: what the repurchase model relies on, how it
compares with its baselines, and how new customers are assigned to segments.

Each takes the `segmentlab.reports.study.RunDetails` of the detailed run (or None) and returns a
`Section`; a missing input gives a one-line note instead of a figure.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import pandas as pd
import plotly.graph_objects as go

from segmentlab import vocabulary
from segmentlab.reports.html import Section, figure_html, metric_heading, note, number, table_html

if TYPE_CHECKING:
    from segmentlab.reports.study import RunDetails

#: prediction key -> bar label in the repurchase chart
_PREDICTORS = {"predict/roc_auc": "model", "predict/recency_roc_auc": "recency only",
               "predict/rfm_logreg_roc_auc": "RFM logistic regression",
               "predict/bgnbd_roc_auc": "BG/NBD P(purchase)"}
NEW_GROUP = "new — not yet segmentable"


def importance_section(best: RunDetails | None, top: int = 20) -> Section:
    title = "What the repurchase prediction relies on"
    table = best.importance if best is not None else None
    if table is None or table.empty:
        return Section("importance", title, note("No feature importance was logged for this run."))
    table = table.assign(label=table["feature"].map(vocabulary.feature_label))
    shown = table.nlargest(top, "mean").iloc[::-1]  # largest at the top of horizontal bars
    error = {"type": "data", "array": shown["std"]} if "std" in shown else None
    fig = go.Figure(go.Bar(x=shown["mean"], y=shown["label"].astype(str), orientation="h",
                           error_x=error, marker_color="#2563eb", customdata=shown["feature"],
                           hovertemplate="%{y} (%{customdata}): %{x:.4f}<extra></extra>"))
    fig.update_layout(xaxis_title="drop in repurchase ROC AUC when the predictor is shuffled",
                      height=max(300, 26 * len(shown) + 110))
    first = table.loc[table["mean"].idxmax()]
    total = table["mean"].clip(lower=0).sum()
    model = f"the {best.classifier} repurchase classifier" if best.classifier else \
        "the repurchase classifier"
    lead = str(first["label"])
    reading = (f"Which model this explains: {model} of this run (buys again within the horizon), "
               "trained at the training cutoff and judged on the evaluation period; permutation "
               "importance on that period, mean ± std over shuffles. Not the segment model. "
               f"{lead[:1].upper() + lead[1:]} matters most ({first['mean']:.3g}"
               + (f" ± {first['std']:.2g}" if "std" in table else "") + ")"
               + (f"; the top 3 of {len(table)} predictors carry "
                  f"{table['mean'].clip(lower=0).nlargest(3).sum() / total:.0%} of the total"
                  if total > 0 and len(table) > 3 else "") + ".")
    return Section("importance", title, figure_html(fig), reading)


def repurchase_section(best: RunDetails | None) -> Section:
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
    low, high = scores.get("predict/roc_auc_ci_low"), scores.get("predict/roc_auc_ci_high")
    interval = f" [95 % CI {low:.3f}–{high:.3f}]" if pd.notna(low) and pd.notna(high) else ""
    reading = f"The model reaches ROC AUC {model:.3f}{interval}" + "".join(
        f"{'; ' if i else ', '}{model - v:+.3f} against {k} ({v:.3f})"
        for i, (k, v) in enumerate(bars.items())) + "."
    gain = (scores.get("predict/roc_auc_gain_vs_rfm_ci_low"),
            scores.get("predict/roc_auc_gain_vs_rfm_ci_high"))
    if all(pd.notna(g) for g in gain):
        reading += (f" Gain over RFM logistic regression on the same customers, 95 % bootstrap "
                    f"interval: {gain[0]:+.3f} to {gain[1]:+.3f}.")
    rest = [k for k in vocabulary.ordered(scores) if k not in _PREDICTORS
            and pd.notna(scores[k]) and not k.startswith("predict/time")]
    rest = pd.DataFrame({"metric": [metric_heading(k) for k in rest], "key": rest,
                         "value": [scores[k] for k in rest]})
    return Section("prediction", title, figure_html(fig) + _repurchase_tables(best.repurchase)
                   + (table_html(rest) if len(rest) else ""), reading)


def _repurchase_tables(tables: dict[str, pd.DataFrame]) -> str:
    """Candidates judged on validation, the reliability curve and each segment's future value."""
    html = ""
    candidates = tables.get("predict_candidates")
    if candidates is not None and not candidates.empty:
        html += ("<h3>Candidates: chosen by validation ROC AUC (windows before the evaluation "
                 "period)</h3>" + table_html(candidates))
    reliability = tables.get("predict_reliability")
    if reliability is not None and {"mean_predicted", "observed_rate"} <= set(reliability):
        fig = go.Figure([
            go.Scatter(x=[0, 1], y=[0, 1], mode="lines", name="perfectly calibrated",
                       line={"dash": "dot", "color": "#9aa5b1"}),
            go.Scatter(x=reliability["mean_predicted"], y=reliability["observed_rate"],
                       mode="lines+markers", name="model", marker={"size": 8},
                       text=[f"{int(n):,} customers" for n in reliability.get("n", [])],
                       hovertemplate="predicted %{x:.2f}, observed %{y:.2f}<br>%{text}<extra></extra>")])
        fig.update_layout(xaxis={"title": "predicted probability of buying again", "range": [0, 1]},
                          yaxis={"title": "share who bought again", "range": [0, 1]}, height=380)
        html += "<h3>Reliability on the evaluation customers</h3>" + figure_html(fig)
    value = tables.get("segment_value")
    if value is not None and not value.empty:
        html += ("<h3>Future value by segment (BG/NBD × Gamma-Gamma)</h3>"
                 + table_html(*_segment_value_table(value)))
    return html


def _segment_value_table(value: pd.DataFrame):
    """The segment value table with readable headings, money and shares formatted."""
    clv = next((c for c in value.columns if c.startswith("clv_") and c.endswith("_per_customer")), None)
    purchases = next((c for c in value.columns if c.startswith("expected_purchases_")), None)
    headings = {"name": "segment", "n_customers": "customers", "p_alive_mean": "mean P(alive)",
                **({purchases: f"expected orders, next {purchases.split('_')[2].removesuffix('d')} "
                               "days (mean)"} if purchases else {}),
                **({clv: f"CLV per customer, {clv.split('_')[1].removesuffix('m')} months"} if clv else {}),
                "share_of_future_value": "share of future value",
                "share_of_past_revenue": "share of past revenue"}
    table = value[[c for c in headings if c in value]].rename(columns=headings)
    percent = lambda v: "" if pd.isna(v) else f"{v:.0%}"  # noqa: E731
    formats = {"share of future value": percent, "share of past revenue": percent,
               "mean P(alive)": lambda v: "" if pd.isna(v) else f"{v:.2f}"}
    if clv:
        formats[headings[clv]] = lambda v: "" if pd.isna(v) else f"{v:,.0f}"
    return table, formats


def assignment_section(best: RunDetails | None) -> Section:
    """Assignment scores, F1 against days of history, and whether the confidence can be trusted."""
    title = "Assigning new customers to segments"
    scores = best.assignment if best is not None else None
    if not scores:
        return Section("assignment", title, note("No segment assignment was logged for this run."))
    keys = [k for k in vocabulary.ordered(scores) if pd.notna(scores[k])]
    table = pd.DataFrame({"metric": [metric_heading(k) for k in keys], "key": keys,
                          "value": [scores[k] for k in keys]})
    model = f"the {best.assigner} classifier" if best.assigner else "the segment classifier"
    reading = (f"New customers are placed by {model}, fitted on whole histories. On held-out "
               f"customers with whole histories: accuracy {number(scores.get('assign/accuracy'))}, "
               f"macro F1 {number(scores.get('assign/f1_macro'))}; customers first seen in the last "
               "quarter, described by their first invoice only: F1 "
               f"{number(scores.get('assign/new_customer_f1_macro'))}.")
    body = ""
    history = best.history
    if history is not None and not history.empty:
        body += figure_html(_history_figure(history, scores.get("assign/min_history_days")))
        cut = history.dropna(subset=["history_days"])
        minimum = scores.get("assign/min_history_days")
        reading += (f" Seen through only their first days, held-out customers are placed with "
                    f"macro F1 {cut['f1_macro'].iloc[0]:.2f} after {cut['history_days'].iloc[0]:.0f} "
                    f"day(s), rising to {cut['f1_macro'].iloc[-1]:.2f} after "
                    f"{cut['history_days'].iloc[-1]:.0f} days.")
        if minimum is not None and pd.notna(minimum):
            reading += (f" Customers with under {minimum:.0f} days of history go to \"{NEW_GROUP}\" "
                        f"(prediction.min_history_days; F1 at {minimum:.0f} days: "
                        f"{number(scores.get('assign/f1_at_min_history'))}; the shortest history "
                        f"reaching F1 0.75 on this run: "
                        f"{_days(scores.get('assign/suggested_min_history_days'))}).")
    reliability = best.reliability
    if reliability is not None and not reliability.empty:
        reading += (" The confidence written by segmentlab predict is the classifier's probability "
                    "recalibrated for the days of history (the raw probability stays near 1 "
                    "however short the history); on customers the calibration did not see it is "
                    f"off by {number(scores.get('assign/confidence_ece'))} on average (expected "
                    "calibration error; table below, each customer counted once per history "
                    "length).")
        shown = reliability.rename(columns={"bin": "confidence", "n": "customer views",
                                            "mean_confidence": "mean confidence",
                                            "accuracy": "share right"})
        body += "<h3>Calibrated confidence against how often it was right</h3>" + table_html(shown)
    body += "<h3>Assignment metrics</h3>" + table_html(table)
    return Section("assignment", title, body, reading)


def _days(value) -> str:
    return "none measured" if value is None or pd.isna(value) else f"{value:.0f} days"


def _history_figure(history: pd.DataFrame, minimum: float | None) -> go.Figure:
    cut = history.dropna(subset=["history_days"])
    whole = history[history["history_days"].isna()]
    fig = go.Figure()
    lines = [("f1_macro", "macro F1", "#2563eb", "solid"), ("accuracy", "accuracy", "#16a34a", "solid"),
             ("mean_confidence", "mean calibrated confidence", "#f59e0b", "dash"),
             ("mean_probability", "mean raw classifier probability", "#9aa5b1", "dot")]
    for column, name, colour, dash in lines:
        if column in cut:
            fig.add_scatter(x=cut["history_days"], y=cut[column], name=name, mode="lines+markers",
                            line={"color": colour, "dash": dash}, customdata=cut["n_customers"],
                            hovertemplate=f"%{{x}} days: {name} %{{y:.3f}} "
                                          "(%{customdata} customers)<extra></extra>")
    if len(whole):
        fig.add_hline(y=float(whole["f1_macro"].iloc[0]), line_dash="dot", line_color="#2563eb",
                      annotation_text="macro F1, whole histories", annotation_position="bottom right")
    if minimum is not None and pd.notna(minimum) and minimum > 0:
        # A trace, not a shape: on a log axis plotly reads shape coordinates as log10 values.
        fig.add_scatter(x=[minimum, minimum], y=[0, 1.05], mode="lines", hoverinfo="skip",
                        line={"color": "#dc2626", "dash": "dash", "width": 1.5},
                        name=f"minimum history to assign ({minimum:.0f} days)")
    days = [float(d) for d in cut["history_days"]]
    fig.update_layout(xaxis={"title": "days of history since the first order (log scale)",
                             "type": "log", "tickvals": days, "ticktext": [f"{d:g}" for d in days]},
                      yaxis={"title": "held-out customers: score", "range": [0, 1.05]},
                      height=420, legend={"orientation": "h", "y": -0.25})
    return fig
