"""Interpretable segment profiles, names and recommended actions.

Every run profiles its segments on the same per-customer summary
(`segmentlab.customers.customer_summary`),
whatever feature sets the clustering saw, so profiles of different runs compare directly.

Naming rules
------------
A segment is placed in its population by the percentile, among all labelled customers, of the
segment's median (``<metric>_pct`` columns of the profile): ``low`` at or below ``LOW``
(1/3), ``high`` at or above ``HIGH`` (2/3), else ``mid``. No fixed money or day thresholds, so
the rules work on any data set. Dimensions and their level words (``DIMENSIONS``): recency
(recent / mid / lapsing), frequency (low / mid / high, or ``one-off`` when the median customer
has one invoice), spend, basket value, units per invoice (low / mid / high) and tenure
(new / mid / long). The first row of ``NAMING_RULES`` whose conditions all hold names the
segment; the last row has none, so every segment gets a name:

==========================  ==============================================================
name                        conditions
==========================  ==============================================================
loyal high spenders         recency recent or mid, frequency high, spend high
wholesale bulk buyers       frequency not one-off, units per invoice high, basket high
one-off bulk buyers         frequency one-off, units per invoice high, basket high
new customers               tenure new, recency recent or mid
frequent low-value buyers   frequency high, basket low
loyal regulars              recency recent or mid, frequency high
lapsing big buyers          recency lapsing, spend high
at-risk regulars            recency lapsing, frequency mid or high
one-off low spenders        frequency one-off, spend low
lapsed one-off buyers       frequency one-off, recency lapsing
one-off buyers              frequency one-off
lapsed low spenders         recency lapsing, spend low
high spenders               spend high
occasional low spenders     spend low
steady mid-value customers  (anything else)
==========================  ==============================================================

Segments whose mean return rate is at least ``RETURN_LIFT`` times the population's and at
least ``RETURN_FLOOR`` get a "high returns" tag. The noise label -1 is always plain
"unassigned". Segments that would share a name get the first qualifier of ``QUALIFIERS``
(spend, recency, …), or else the first pair of them, that tells all of them apart; failing
that ``#1``, ``#2`` … by revenue.

Actions
-------
``ACTIONS`` gives marketing, retention and inventory recommendations per rule name. Their
placeholders are filled from the profile: ``cycle`` (typical days between orders, from medians:
(tenure - recency) / (invoices - 1), at least 1), ``alert`` (2 x cycle), ``recency`` (median
days since last order), ``basket`` and ``voucher`` (median basket value and 10 % of it, in the
data's currency), ``categories`` (the segment's top extra columns, e.g. product categories,
when profiled). Segments tagged "high returns" also get a return review and a quality check.
"""

from __future__ import annotations

from itertools import combinations

import numpy as np
import pandas as pd

from segmentlab.schema import COUNTRY

#: Columns of ``customer_summary`` profiled per segment (mean, median, population percentile).
METRICS = ["recency_days", "frequency", "monetary", "basket_value", "units_per_invoice",
           "return_rate", "tenure_days"]
LOW, HIGH = 1 / 3, 2 / 3
RETURN_LIFT, RETURN_FLOOR = 2.0, 0.05
NOISE_LABEL, NOISE_NAME = -1, "unassigned"

#: dimension -> (profile column, level words for low / mid / high percentile of the median)
DIMENSIONS = {
    "recency": ("recency_days_pct", ("recent", "mid", "lapsing")),
    "frequency": ("frequency_pct", ("low", "mid", "high")),
    "spend": ("monetary_pct", ("low", "mid", "high")),
    "basket": ("basket_value_pct", ("low", "mid", "high")),
    "units": ("units_per_invoice_pct", ("low", "mid", "high")),
    "tenure": ("tenure_days_pct", ("new", "mid", "long")),
}

#: (name, conditions) in priority order; a condition is one level word or a tuple of them.
NAMING_RULES = [
    ("loyal high spenders", {"recency": ("recent", "mid"), "frequency": "high", "spend": "high"}),
    ("wholesale bulk buyers", {"frequency": ("low", "mid", "high"), "units": "high",
                               "basket": "high"}),
    ("one-off bulk buyers", {"frequency": "one-off", "units": "high", "basket": "high"}),
    ("new customers", {"tenure": "new", "recency": ("recent", "mid")}),
    ("frequent low-value buyers", {"frequency": "high", "basket": "low"}),
    ("loyal regulars", {"recency": ("recent", "mid"), "frequency": "high"}),
    ("lapsing big buyers", {"recency": "lapsing", "spend": "high"}),
    ("at-risk regulars", {"recency": "lapsing", "frequency": ("mid", "high")}),
    ("one-off low spenders", {"frequency": "one-off", "spend": "low"}),
    ("lapsed one-off buyers", {"frequency": "one-off", "recency": "lapsing"}),
    ("one-off buyers", {"frequency": "one-off"}),
    ("lapsed low spenders", {"recency": "lapsing", "spend": "low"}),
    ("high spenders", {"spend": "high"}),
    ("occasional low spenders", {"spend": "low"}),
    ("steady mid-value customers", {}),
]

#: dimension -> level -> qualifier used to tell apart segments that got the same name
QUALIFIERS = {
    "spend": {"low": "low spend", "mid": "mid spend", "high": "high spend"},
    "recency": {"recent": "recent", "mid": "mid recency", "lapsing": "lapsing"},
    "frequency": {"one-off": "one-off", "low": "rare", "mid": "occasional", "high": "frequent"},
    "basket": {"low": "small baskets", "mid": "mid baskets", "high": "large baskets"},
    "units": {"low": "few units", "mid": "mid units", "high": "many units"},
    "tenure": {"new": "new", "mid": "established", "long": "long-standing"},
}

_KEEP_WARM = "alert when recency exceeds {alert} days (2x their {cycle}-day cycle)"
#: rule name -> (marketing, retention, inventory)
ACTIONS = {
    "wholesale bulk buyers": (
        "volume-tier pricing and a trade catalogue; account contact every {cycle} days",
        "reorder reminder {cycle} days after the last order; " + _KEEP_WARM,
        "stock depth (several cartons) on {categories}; forecast from their reorder cycle"),
    "one-off bulk buyers": (
        "invite to a trade account with volume pricing; follow up within {recency} days",
        "personal contact after the first bulk order; ask about reorder plans",
        "check that {categories} can serve a repeat order of the same size"),
    "new customers": (
        "welcome series; second-purchase voucher of about {voucher} valid 30 days",
        "follow up within 30 days of the first order; ask for preferences",
        "keep entry best sellers in stock: {categories}"),
    "loyal high spenders": (
        "VIP tier and early access to new ranges; avoid blanket discounts",
        _KEEP_WARM, "prioritise availability of {categories}"),
    "frequent low-value buyers": (
        "bundles and a free-shipping threshold just above their median basket ({basket})",
        "regular newsletter; " + _KEEP_WARM, "cross-sell add-ons next to {categories}"),
    "loyal regulars": (
        "upsell higher-value items and bundles",
        "loyalty points; " + _KEEP_WARM, "keep {categories} available"),
    "lapsing big buyers": (
        "personal win-back offer now (median {recency} days since last order)",
        "win back before recency passes {alert} days (2x their {cycle}-day cycle); "
        "call key accounts", "check {categories} for stock-outs or price rises"),
    "at-risk regulars": (
        "time-limited reactivation discount",
        "trigger contact when recency passes {alert} days; ask why they stopped",
        "review availability of {categories}"),
    "one-off low spenders": (
        "low-cost second-purchase incentive (free shipping on the next order)",
        "automated messages only; no paid retention spend", "no specific action"),
    "lapsed one-off buyers": (
        "one reactivation campaign, then suppress from paid channels",
        "low priority", "no specific action"),
    "one-off buyers": (
        "second-purchase voucher of about {voucher} valid 30 days",
        "post-purchase follow-up and review request", "no specific action"),
    "lapsed low spenders": (
        "low-cost reactivation email; suppress if no response",
        "low priority", "no specific action"),
    "high spenders": (
        "premium recommendations; invite to the loyalty tier", _KEEP_WARM,
        "keep {categories} available"),
    "occasional low spenders": (
        "seasonal campaigns and bundles to raise frequency",
        "newsletter", "no specific action"),
    "steady mid-value customers": (
        "cross-sell from {categories}; test a loyalty tier", _KEEP_WARM,
        "standard replenishment"),
    NOISE_NAME: (
        "no segment-level targeting; review individually",
        "none at segment level", "none at segment level"),
}
_HIGH_RETURNS = ("; review return reasons",
                 "; quality check on returned products in {categories} "
                 "(return rate {return_rate} vs {return_rate_all} overall)")


def profile_segments(summary: pd.DataFrame, labels: pd.Series,
                     extra: pd.DataFrame | None = None) -> pd.DataFrame:
    """One row per segment label (noise -1 included) describing who is in it.

    Parameters
    ----------
    summary : DataFrame
        Output of ``customer_summary``; must hold every labelled customer.
    labels : Series
        Segment label per ``customer_id``; -1 is noise. The labelled customers are the
        population that shares and percentiles refer to.
    extra : DataFrame or None
        More numeric columns per customer (e.g. ``tfidf__cat_03`` category shares): their mean
        per segment, and ``top_categories``, the three largest means with their lift over the
        population mean.

    Returns
    -------
    DataFrame
        Indexed by ``segment``: ``n_customers``, ``share_customers``, ``revenue``,
        ``share_revenue``; ``<metric>_mean`` and ``<metric>_median`` for each of ``METRICS``;
        ``<metric>_pct``, the population percentile (mid-rank) of the segment median, for all
        but the return rate; ``return_rate_lift`` (segment mean / population mean);
        ``top_countries``; then the ``extra`` columns.
    """
    if not labels.index.is_unique:
        raise ValueError("labels must have one entry per customer_id")
    unknown = labels.index.difference(summary.index)
    if len(unknown):
        raise ValueError(f"{len(unknown)} labelled customers are missing from the summary, "
                         f"e.g. {list(unknown[:3])}")
    data = summary.loc[labels.index]
    segment = pd.Series(labels.to_numpy(), index=labels.index, name="segment")
    grouped = data.groupby(segment, sort=True)
    n = grouped.size()
    revenue = grouped["monetary"].sum()
    profile = pd.DataFrame({"n_customers": n, "share_customers": n / n.sum(), "revenue": revenue,
                            "share_revenue": revenue / revenue.sum()})
    for metric in METRICS:
        profile[f"{metric}_mean"] = grouped[metric].mean()
        profile[f"{metric}_median"] = grouped[metric].median()
        if metric != "return_rate":
            population = np.sort(data[metric].to_numpy(float))
            median = profile[f"{metric}_median"].to_numpy(float)
            below = np.searchsorted(population, median, "left")
            upto = np.searchsorted(population, median, "right")
            profile[f"{metric}_pct"] = (below + upto) / (2 * len(population))
    overall = data["return_rate"].mean()
    profile["return_rate_lift"] = profile["return_rate_mean"] / overall if overall > 0 else 1.0
    profile["top_countries"] = _top_shares(data[COUNTRY], segment)
    if extra is not None:
        profile = profile.join(_extra_means(extra, segment))
    return profile


def name_segments(profile: pd.DataFrame) -> pd.Series:
    """Descriptive, unique name per segment from the rules in the module docstring.

    Parameters
    ----------
    profile : DataFrame
        Output of ``profile_segments``.

    Returns
    -------
    Series
        Name per segment label, indexed like ``profile``.
    """
    levels = _levels(profile)
    base = levels.apply(_rule_name, axis=1).astype(object)
    base[profile.index == NOISE_LABEL] = NOISE_NAME
    tags = {label: ["high returns"] if high else [] for label, high in
            zip(profile.index, _high_returns(profile), strict=True)}
    key = base + "|" + pd.Series({label: ",".join(t) for label, t in tags.items()})
    for _, group in key.groupby(key):
        if len(group) > 1:
            _disambiguate(group.index, levels, profile["revenue"], tags)
    names = pd.Series({label: f"{base[label]} ({', '.join(tags[label])})" if tags[label]
                       else base[label] for label in profile.index}, dtype=object)
    return names.rename("name")


def recommend_actions(profile: pd.DataFrame, names: pd.Series) -> pd.DataFrame:
    """Marketing, retention and inventory recommendations per segment.

    Parameters
    ----------
    profile : DataFrame
        Output of ``profile_segments``.
    names : Series
        Output of ``name_segments``. A name that does not start with a rule name (renamed by
        hand) falls back to the rule the profile matches.

    Returns
    -------
    DataFrame
        Indexed like ``profile``: ``name``, ``marketing``, ``retention``, ``inventory``.
    """
    levels = _levels(profile)
    high_returns = pd.Series(_high_returns(profile), index=profile.index)
    rows = {}
    for label in profile.index:
        name = str(names.get(label, ""))
        rule = max((r for r in ACTIONS if name.startswith(r)), key=len, default=None)
        if rule is None:
            rule = NOISE_NAME if label == NOISE_LABEL else _rule_name(levels.loc[label])
        texts = list(ACTIONS[rule])
        if high_returns[label]:
            texts[1] += _HIGH_RETURNS[0]
            texts[2] += _HIGH_RETURNS[1]
        values = _placeholders(profile.loc[label])
        rows[label] = [name, *(text.format(**values) for text in texts)]
    columns = ["name", "marketing", "retention", "inventory"]
    return pd.DataFrame.from_dict(rows, orient="index", columns=columns).rename_axis("segment")


def _levels(profile: pd.DataFrame) -> pd.DataFrame:
    """Level word per naming dimension per segment."""
    needed = [column for column, _ in DIMENSIONS.values()] + ["frequency_median"]
    missing = [c for c in needed if c not in profile.columns]
    if missing:
        raise ValueError(f"profile lacks {missing}; build it with profile_segments")
    levels = {}
    for dimension, (column, (low, mid, high)) in DIMENSIONS.items():
        pct = profile[column].to_numpy(float)
        levels[dimension] = np.select([pct <= LOW, pct >= HIGH], [low, high], mid)
    levels = pd.DataFrame(levels, index=profile.index, dtype=object)
    levels.loc[profile["frequency_median"] <= 1, "frequency"] = "one-off"
    return levels


def _rule_name(levels: pd.Series) -> str:
    """Name of the first rule whose conditions hold for one segment's levels."""
    for name, conditions in NAMING_RULES:
        if all(levels[d] in ((v,) if isinstance(v, str) else v) for d, v in conditions.items()):
            return name
    raise AssertionError("the last naming rule has no conditions")


def _high_returns(profile: pd.DataFrame) -> np.ndarray:
    """Whether each segment (noise aside) returns clearly more than the population."""
    lift = profile["return_rate_lift"].to_numpy(float)
    high = (lift >= RETURN_LIFT) & (profile["return_rate_mean"].to_numpy(float) >= RETURN_FLOOR)
    return high & (profile.index != NOISE_LABEL)


def _disambiguate(group: pd.Index, levels: pd.DataFrame, revenue: pd.Series,
                  tags: dict) -> None:
    """Add to ``tags`` the first qualifier (or pair) that separates every segment in ``group``."""
    dims = list(QUALIFIERS)
    for chosen in [[d] for d in dims] + [list(p) for p in combinations(dims, 2)]:
        if not levels.loc[group, chosen].duplicated().any():
            for label in group:
                tags[label] += [QUALIFIERS[d][levels.loc[label, d]] for d in chosen]
            return
    order = revenue.loc[group].sort_values(ascending=False, kind="stable").index
    for rank, label in enumerate(order, start=1):
        tags[label].append(f"#{rank}")


def _placeholders(row: pd.Series) -> dict[str, str]:
    """Values the action templates refer to, for one profile row."""
    active = row["tenure_days_median"] - row["recency_days_median"]
    cycle = max(active / max(row["frequency_median"] - 1, 1), 1)
    overall = row["return_rate_mean"] / row["return_rate_lift"] if row["return_rate_lift"] else 0
    categories = row.get("top_categories") or "their most-bought products"
    return {"cycle": f"{cycle:.0f}", "alert": f"{2 * cycle:.0f}",
            "recency": f"{row['recency_days_median']:.0f}",
            "basket": f"{row['basket_value_median']:,.0f}",
            "voucher": f"{0.1 * row['basket_value_median']:,.0f}",
            "categories": categories, "return_rate": f"{row['return_rate_mean']:.0%}",
            "return_rate_all": f"{overall:.0%}"}


def _top_shares(values: pd.Series, segment: pd.Series, k: int = 3) -> pd.Series:
    """'A 80%, B 12%, C 5%': the k most common values per segment with their shares."""
    counts = values.groupby([segment.to_numpy(), values.to_numpy()]).size()
    shares = (counts / counts.groupby(level=0).transform("sum")).sort_index()
    top = shares.sort_values(ascending=False, kind="stable").groupby(level=0).head(k)
    return top.groupby(level=0).apply(
        lambda s: ", ".join(f"{value} {share:.0%}" for (_, value), share in s.items()))


def _extra_means(extra: pd.DataFrame, segment: pd.Series, k: int = 3) -> pd.DataFrame:
    """Mean of each extra column per segment, and the top k columns with their lift."""
    numeric = extra.reindex(segment.index).select_dtypes("number")
    means = numeric.groupby(segment).mean()
    lift = means / numeric.mean().where(numeric.mean() != 0)
    top = {label: ", ".join(f"{col} {means.loc[label, col]:.3g} (x{lift.loc[label, col]:.1f})"
                            for col in means.loc[label].nlargest(k).index)
           for label in means.index}
    return means.assign(top_categories=pd.Series(top))
