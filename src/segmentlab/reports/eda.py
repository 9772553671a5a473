"""Exploratory report of a cleaned data set: one self-contained interactive HTML page.

Each section pairs a plotly figure with one sentence computed from the data ("November 2011
is the busiest month: ..."), so the page reads without hovering. Buying is described from
purchases only; the cancellation lines kept aside as returns have their own section. Heavy
tailed quantities (basket size and value, orders, spend) are binned on a log scale.
"""

from __future__ import annotations

import math

import numpy as np
import pandas as pd
import plotly.graph_objects as go
from plotly.subplots import make_subplots

from segmentlab.customers import customer_summary
from segmentlab.reports.html import (
    Section,
    esc,
    figure_html,
    html_page,
    ledger_section,
    money,
    note,
    stats_html,
    table_html,
)
from segmentlab.schema import (
    AMOUNT,
    COUNTRY,
    CUSTOMER_ID,
    DESCRIPTION,
    INVOICE_DATE,
    INVOICE_NO,
    QUANTITY,
    STOCK_CODE,
    UNIT_PRICE,
    Dataset,
)

#: Section ids, in page order.
SECTIONS = ("monthly", "countries", "baskets", "returns", "products", "cohorts", "rfm", "cleaning")
_BLUE, _ORANGE, _RED = "#2563eb", "#f59e0b", "#dc2626"


def eda_report(dataset: Dataset, raw: pd.DataFrame | None = None, currency: str = "£",
               top: int = 10) -> str:
    """One self-contained HTML page describing a cleaned data set.

    Parameters
    ----------
    dataset : Dataset
        Cleaned transactions (purchases and returns) with their ledger and source.
    raw : DataFrame or None
        The frame before cleaning (``RAW_COLUMNS``); adds what cleaning removed to the
        cleaning section.
    currency : str
        Symbol put before amounts.
    top : int
        Countries and products listed.

    Returns
    -------
    str
        The HTML document, plotly.js inlined once; sections ``SECTIONS``.
    """
    purchases, returns = dataset.purchases, dataset.returns
    if purchases.empty:
        raise ValueError(f"{dataset.source}: no purchases to describe")
    sections = [_monthly(purchases, currency), _countries(purchases, top),
                _baskets(purchases, currency), _returns(purchases, returns, top, currency),
                _products(purchases, top, currency), _cohorts(purchases),
                _rfm(dataset.transactions, currency), _cleaning(dataset, raw)]
    return html_page("Exploratory data analysis", sections, _intro(dataset, currency))


def _intro(dataset: Dataset, currency: str) -> str:
    purchases = dataset.purchases
    start, end = purchases[INVOICE_DATE].min(), purchases[INVOICE_DATE].max()
    stats = {"input rows": f"{dataset.ledger.rows_in:,}", "purchase lines": f"{len(purchases):,}",
             "return lines": f"{len(dataset.returns):,}",
             "orders": f"{purchases[INVOICE_NO].nunique():,}",
             "customers": f"{purchases[CUSTOMER_ID].nunique():,}",
             "products": f"{purchases[STOCK_CODE].nunique():,}",
             "revenue": money(purchases[AMOUNT].sum(), currency)}
    return (f"<p>Source: {esc(dataset.source)} (data hash {esc(dataset.data_hash[:12])})</p>"
            f"<p>Period: {start:%d %b %Y} – {end:%d %b %Y} ({(end - start).days + 1} days)</p>"
            + stats_html(stats))


def _month_label(period: pd.Period) -> str:
    return period.strftime("%b %Y")


def _partial_months(dates: pd.Series) -> list[str]:
    """First and last months the data covers for less than 90% of their days."""
    notes = []
    for day, covered in ((dates.min(), lambda d: d.days_in_month - d.day + 1),
                         (dates.max(), lambda d: d.day)):
        if covered(day) < 0.9 * day.days_in_month:
            notes.append(f"{day:%b %Y} has only {covered(day)} days of data")
    return list(dict.fromkeys(notes))


def _monthly(purchases: pd.DataFrame, currency: str) -> Section:
    by = purchases.groupby(purchases[INVOICE_DATE].dt.to_period("M"))
    revenue, orders = by[AMOUNT].sum(), by[INVOICE_NO].nunique()
    labels = [_month_label(p) for p in revenue.index]
    fig = make_subplots(specs=[[{"secondary_y": True}]])
    fig.add_bar(x=labels, y=revenue, name="revenue", marker_color=_BLUE,
                hovertemplate=f"%{{x}}: {currency}%{{y:,.0f}}<extra></extra>")
    fig.add_scatter(x=labels, y=orders, name="orders", mode="lines+markers",
                    line_color=_ORANGE, secondary_y=True,
                    hovertemplate="%{x}: %{y:,} orders<extra></extra>")
    fig.update_yaxes(title_text=f"revenue ({currency})", secondary_y=False)
    # plotly.js 3+ syncs an overlaying axis to the primary's gridlines: odd ticks like 2354.
    fig.update_yaxes(title_text="orders", secondary_y=True, showgrid=False, rangemode="tozero",
                     tickmode="auto")
    fig.update_layout(legend={"orientation": "h", "y": 1.12})
    peak = revenue.idxmax()
    reading = (f"{peak.strftime('%B %Y')} is the busiest month: {money(revenue[peak], currency)}, "
               f"{revenue[peak] / revenue.sum():.0%} of all revenue, in {orders[peak]:,} orders")
    partial = _partial_months(purchases[INVOICE_DATE])
    reading += f" ({'; '.join(partial)})." if partial else "."
    return Section("monthly", "Revenue and orders by month", figure_html(fig), reading)


def _countries(purchases: pd.DataFrame, top: int) -> Section:
    by = purchases.groupby(COUNTRY)
    share = (by[AMOUNT].sum() / purchases[AMOUNT].sum()).sort_values(ascending=False)
    customers = by[CUSTOMER_ID].nunique() / purchases[CUSTOMER_ID].nunique()
    shown = share.head(top).iloc[::-1]
    fig = go.Figure(go.Bar(
        x=shown, y=shown.index, orientation="h", marker_color=_BLUE, text=[f"{v:.1%}" for v in shown],
        textposition="outside", customdata=customers[shown.index],
        hovertemplate="%{y}: %{x:.1%} of revenue, %{customdata:.1%} of customers<extra></extra>"))
    fig.update_layout(xaxis={"title": "share of revenue", "tickformat": ".0%",
                             "range": [0, shown.max() * 1.15]}, height=90 + 32 * len(shown))
    first = share.index[0]
    reading = (f"{first} brings {share.iloc[0]:.0%} of revenue from {customers[first]:.0%} of "
               f"customers; {len(share)} countries in all")
    if len(share) > 2:
        reading += f", next {share.index[1]} ({share.iloc[1]:.1%}) and {share.index[2]} ({share.iloc[2]:.1%})"
    return Section("countries", f"Top {len(shown)} countries by revenue", figure_html(fig), reading + ".")


def _log_histogram(fig: go.Figure, values: pd.Series, col: int, what: str, prefix: str = "",
                   discrete: bool = False, bins: int = 40) -> None:
    """Counts in log-spaced bins as bars on a log10 axis labelled with plain values."""
    v = values[values > 0].to_numpy(float)
    if v.size == 0:
        return
    low, high = math.log10(v.min()), math.log10(v.max()) + 1e-9
    edges = np.logspace(low, max(high, low + 1e-6), bins + 1)
    if discrete:  # whole numbers: bins between half-integers, so a bar sits on its value
        edges = np.unique(np.append(np.floor(edges[:-1]), v.max() + 1)) - 0.5
    counts, _ = np.histogram(v, edges)
    logs = np.log10(edges)
    if discrete:
        span = [f"{edges[i] + 0.5:,.0f}" if edges[i + 1] - edges[i] <= 1
                else f"{edges[i] + 0.5:,.0f}–{edges[i + 1] - 0.5:,.0f}" for i in range(len(counts))]
    else:
        span = [f"{edges[i]:,.3g}–{edges[i + 1]:,.3g}" for i in range(len(counts))]
    fig.add_bar(x=(logs[:-1] + logs[1:]) / 2, y=counts, width=np.diff(logs), customdata=span,
                marker_color=_BLUE, showlegend=False, row=1, col=col,
                hovertemplate=f"{prefix}%{{customdata}}: %{{y:,}} {what}<extra></extra>")
    decades = range(math.floor(low), math.ceil(high) + 1)
    steps = (1, 2, 5) if len(decades) <= 4 else (1,)
    ticks = [m * 10.0**e for e in decades for m in steps if v.min() / 1.5 <= m * 10.0**e <= v.max() * 1.5]
    fig.update_xaxes(tickvals=np.log10(ticks), ticktext=[prefix + _short(t) for t in ticks],
                     row=1, col=col)


def _short(value: float) -> str:
    for limit, suffix in ((1e6, "M"), (1e3, "k")):
        if value >= limit:
            return f"{value / limit:g}{suffix}"
    return f"{value:g}"


def _baskets(purchases: pd.DataFrame, currency: str) -> Section:
    by = purchases.groupby(INVOICE_NO)
    units, value, lines = by[QUANTITY].sum(), by[AMOUNT].sum(), by.size()
    fig = make_subplots(cols=2, horizontal_spacing=0.1,
                        subplot_titles=["units per order (log scale)", "order value (log scale)"])
    _log_histogram(fig, units, 1, "orders", discrete=True)
    _log_histogram(fig, value, 2, "orders", prefix=currency)
    fig.update_yaxes(title_text="orders", col=1)
    q99 = value.quantile(0.99)
    reading = (f"The median order has {lines.median():,.0f} lines and {units.median():,.0f} units "
               f"and is worth {money(value.median(), currency)}; the largest 1% of orders (above "
               f"{money(q99, currency)}) bring {value[value > q99].sum() / value.sum():.0%} of revenue.")
    return Section("baskets", "Basket size and value", figure_html(fig, height=400), reading)


def _descriptions(lines: pd.DataFrame, codes: pd.Index) -> pd.Series:
    """The most common description of each stock code (descriptions vary between lines)."""
    mine = lines[lines[STOCK_CODE].isin(codes)]
    counts = mine.groupby([STOCK_CODE, DESCRIPTION]).size().sort_values(ascending=False, kind="stable")
    return counts.reset_index().drop_duplicates(STOCK_CODE).set_index(STOCK_CODE)[DESCRIPTION]


def _returns(purchases: pd.DataFrame, returns: pd.DataFrame, top: int, currency: str) -> Section:
    title = "Cancellations and returns"
    if returns.empty:
        return Section("returns", title, note("No cancellation lines were kept as returns."))
    month = returns[INVOICE_DATE].dt.to_period("M")
    returned = (-returns[AMOUNT]).groupby(month).sum()  # return lines carry negative amounts
    sold = purchases[AMOUNT].groupby(purchases[INVOICE_DATE].dt.to_period("M")).sum()
    rate = (returned / sold).reindex(sold.index).fillna(0.0)
    returned = returned.reindex(sold.index, fill_value=0.0)
    labels = [_month_label(p) for p in sold.index]
    fig = make_subplots(specs=[[{"secondary_y": True}]])
    fig.add_bar(x=labels, y=returned, name="returned value", marker_color=_RED,
                hovertemplate=f"%{{x}}: {currency}%{{y:,.0f}} returned<extra></extra>")
    fig.add_scatter(x=labels, y=rate, name="return rate", mode="lines+markers", line_color="#374151",
                    secondary_y=True, hovertemplate="%{x}: %{y:.1%} of sales<extra></extra>")
    fig.update_yaxes(title_text=f"returned value ({currency})", secondary_y=False)
    fig.update_yaxes(title_text="returned / sold", tickformat=".0%", secondary_y=True,
                     showgrid=False, rangemode="tozero", tickmode="auto")
    fig.update_layout(legend={"orientation": "h", "y": 1.12})
    by = returns.groupby(STOCK_CODE)
    products = pd.DataFrame({"lines": by.size(), "units": -by[QUANTITY].sum(),
                             "value": -by[AMOUNT].sum()}).nlargest(top, "value")
    sold_units = purchases.groupby(STOCK_CODE)[QUANTITY].sum().reindex(products.index)
    products["units returned / sold"] = products["units"] / sold_units
    products.insert(0, "description", _descriptions(returns, products.index))
    table = products.reset_index().rename(columns={STOCK_CODE: "stock code"})
    formats = {"value": lambda v: money(v, currency),
               "units returned / sold": lambda v: "–" if pd.isna(v) else f"{v:.1%}"}
    worst, first = rate.idxmax(), products.iloc[0]
    reading = (f"{len(returns):,} cancellation lines from {returns[CUSTOMER_ID].nunique():,} customers "
               f"returned {money(returned.sum(), currency)}, {returned.sum() / sold.sum():.1%} of "
               f"sales; the highest monthly rate is {_month_label(worst)} ({rate[worst]:.1%}). "
               f"Most returned by value: {first['description']} ({money(first['value'], currency)}).")
    body = (figure_html(fig, height=380) + f"<h3>Top {len(table)} returned products by value</h3>"
            + table_html(table, formats=formats))
    return Section("returns", title, body, reading)


def _product_bars(table: pd.DataFrame, column: str, label: str, fmt: str) -> go.Figure:
    shown = table.iloc[::-1]
    names = [d if len(d) <= 32 else d[:31] + "…" for d in shown["description"].astype(str)]
    fig = go.Figure(go.Bar(
        x=shown[column], y=names, orientation="h", marker_color=_BLUE,
        customdata=np.stack([shown["description"].astype(str), shown.index.astype(str)], axis=1),
        hovertemplate=f"%{{customdata[0]}} (%{{customdata[1]}}): %{{x:{fmt}}}<extra></extra>"))
    fig.update_layout(title={"text": label, "x": 0.02}, height=90 + 30 * len(shown),
                      margin={"l": 10, "r": 20, "t": 44, "b": 40})
    return fig


def _products(purchases: pd.DataFrame, top: int, currency: str) -> Section:
    by = purchases.groupby(STOCK_CODE)
    totals = pd.DataFrame({"revenue": by[AMOUNT].sum(), "units": by[QUANTITY].sum()})
    by_revenue, by_units = totals.nlargest(top, "revenue"), totals.nlargest(top, "units")
    names = _descriptions(purchases, by_revenue.index.union(by_units.index))
    by_revenue, by_units = by_revenue.assign(description=names), by_units.assign(description=names)
    figures = [_product_bars(by_revenue, "revenue", f"by revenue ({currency})", ",.0f"),
               _product_bars(by_units, "units", "by units sold", ",.0f")]
    body = '<div class="pair">' + "".join(f"<div>{figure_html(f)}</div>" for f in figures) + "</div>"
    a, b = by_revenue.iloc[0], by_units.iloc[0]
    reading = (f"{a['description']} leads by revenue ({money(a['revenue'], currency)}, "
               f"{a['revenue'] / totals['revenue'].sum():.1%}); {b['description']} by units "
               f"({b['units']:,.0f}). The top {len(by_revenue)} bring "
               f"{by_revenue['revenue'].sum() / totals['revenue'].sum():.0%} of revenue among "
               f"{len(totals):,} products.")
    return Section("products", f"Top {top} products", body, reading)


def _cohorts(purchases: pd.DataFrame) -> Section:
    month = purchases[INVOICE_DATE].dt.year * 12 + purchases[INVOICE_DATE].dt.month - 1
    active = pd.DataFrame({CUSTOMER_ID: purchases[CUSTOMER_ID], "month": month}).drop_duplicates()
    active["cohort"] = active.groupby(CUSTOMER_ID)["month"].transform("min")
    active["since"] = active["month"] - active["cohort"]
    counts = active.groupby(["cohort", "since"]).size().unstack(fill_value=0).astype(float)
    retention = counts.div(counts[0], axis=0)
    # Months after the end of the data are unknown, not zero retention.
    beyond = np.add.outer(counts.index.to_numpy(), counts.columns.to_numpy()) > month.max()
    retention = retention.mask(beyond)
    months = [_month_label(pd.Period(year=c // 12, month=c % 12 + 1, freq="M")) for c in counts.index]
    # The first month holds everybody who bought in it, also customers whose first purchase
    # precedes the data (left-censored): mark it, and keep it out of the new-customer average.
    names = [f"{m}{'*' if i == 0 else ''} ({int(n):,})"
             for i, (m, n) in enumerate(zip(months, counts[0], strict=True))]
    later = retention.drop(columns=0)
    fig = go.Figure(go.Heatmap(
        z=retention.to_numpy(), x=[str(c) for c in retention.columns], y=names,
        colorscale="Blues", zmin=0, zmax=float(np.nanmax(later.to_numpy())) if later.size else 1,
        texttemplate="%{z:.0%}", textfont={"size": 10}, colorbar={"tickformat": ".0%"},
        hovertemplate="cohort %{y}, month %{x}: %{z:.1%} active<extra></extra>", xgap=1, ygap=1))
    fig.update_layout(xaxis_title="months since first purchase", yaxis={"autorange": "reversed",
                      "title": "first-purchase month (customers)"}, height=140 + 28 * len(names))
    reading = "Each row is the customers whose first purchase fell in that month."
    last = purchases[INVOICE_DATE].max()
    if last.day < 0.9 * last.days_in_month:  # a short last month: keep it out of the averages
        reading += f" The last diagonal is {last:%b %Y}, a partial month."
        later = later.mask(np.add.outer(later.index.to_numpy(), later.columns.to_numpy())
                           >= month.max())
    if later.size and later[1].notna().any():
        first = later.iloc[0].dropna()
        newer = later[1].iloc[1:].dropna()
        average = (f"On average {newer.mean():.0%} of a cohort buy again the month after their "
                   f"first purchase (cohorts after the first). " if len(newer) else "")
        reading = (average + f"The first cohort ({months[0]}*, {int(counts[0].iloc[0]):,} "
                   f"customers) keeps {first.mean():.0%} active per month over the next "
                   f"{len(first)} full months, but it is left-censored: it holds everyone who "
                   f"bought in {months[0]}, also customers whose first purchase came before the "
                   "data start, so it shows established customers, not new ones; the next few "
                   "cohorts still hold some returning customers whose earlier orders precede the "
                   f"data. {reading}")
    return Section("cohorts", "Customer cohorts: monthly retention", figure_html(fig), reading)


def _rfm(transactions: pd.DataFrame, currency: str) -> Section:
    summary = customer_summary(transactions)
    fig = make_subplots(cols=3, horizontal_spacing=0.07, subplot_titles=[
        "recency: days since last order", "frequency: orders (log scale)",
        "monetary: total spend (log scale)"])
    counts, edges = np.histogram(summary["recency_days"], bins=30)
    fig.add_bar(x=(edges[:-1] + edges[1:]) / 2, y=counts, width=np.diff(edges), marker_color=_BLUE,
                showlegend=False, row=1, col=1,
                hovertemplate="%{x:.0f} days: %{y:,} customers<extra></extra>")
    _log_histogram(fig, summary["frequency"], 2, "customers", discrete=True)
    _log_histogram(fig, summary["monetary"], 3, "customers", prefix=currency)
    fig.update_yaxes(title_text="customers", col=1)
    spend = summary["monetary"].sort_values(ascending=False)
    top_decile = spend.head(max(1, len(spend) // 10)).sum() / spend.sum()
    reading = (f"The median customer last ordered {summary['recency_days'].median():.0f} days before "
               f"the end of the data, placed {summary['frequency'].median():.0f} orders and spent "
               f"{money(summary['monetary'].median(), currency)}; "
               f"{(summary['frequency'] == 1).mean():.0%} ordered only once, and the top 10% of "
               f"customers bring {top_decile:.0%} of revenue.")
    return Section("rfm", "Recency, frequency and monetary value per customer",
                   figure_html(fig, height=400), reading)


def _cleaning(dataset: Dataset, raw: pd.DataFrame | None) -> Section:
    section = ledger_section(dataset.ledger.to_frame(), "cleaning")
    if raw is None or raw.empty:
        return section
    sales = raw[(raw[QUANTITY] > 0) & (raw[UNIT_PRICE] > 0)]
    guests = sales[CUSTOMER_ID].isna()
    extra = (f"Before cleaning: {len(raw):,} lines; {raw[CUSTOMER_ID].isna().mean():.0%} have no "
             f"customer id and carry {sales.loc[guests, AMOUNT].sum() / sales[AMOUNT].sum():.0%} "
             "of the sales value, which segmentation cannot use.")
    return Section(section.id, section.title, section.body + note(extra), section.reading)
