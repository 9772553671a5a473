"""Interpretable segment profiles and recommended actions.

Every run profiles its segments on the same per-customer summary
(`segmentlab.customers.customer_summary`),
whatever feature sets the clustering saw, so profiles of different runs compare directly. Names
follow from these profiles by the rules of `segmentlab.segmentation.naming`.

Actions
-------
``PLAYBOOKS`` gives marketing, retention and inventory recommendations; the first playbook whose
words all appear among the segment's level words applies (the last one needs none). Their
placeholders are filled from the profile: ``cycle`` (typical days between orders, from medians:
(tenure - recency) / (invoices - 1), at least 1), ``alert`` (2 x cycle, capped at the data's
span, the longest tenure of any customer, and saying so when capped), ``recency`` (median days
since last order), ``basket`` and ``voucher`` (median basket value and 10 % of it, in the data's
currency), ``categories`` (the segment's top extra columns, e.g. product categories, when
profiled). Segments with the "high returns" qualifier also get a return review and a quality
check; segments named for countries outside the home country get a localisation step.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd

from segmentlab.schema import COUNTRY
from segmentlab.segmentation.naming import NOISE_LABEL, NOISE_NAME, segment_words
from segmentlab.vocabulary import feature_label

#: Columns of ``customer_summary`` profiled per segment (mean, median, population percentile).
METRICS = ["recency_days", "frequency", "monetary", "basket_value", "units_per_invoice",
           "return_rate", "tenure_days"]


@dataclass(frozen=True)
class Playbook:
    """Recommendations for segments whose level words include all of ``words``."""

    name: str
    words: tuple[str, ...]
    marketing: str
    retention: str
    inventory: str
    any_of: tuple[str, ...] = ()   # at least one of these words too, when given
    none_of: tuple[str, ...] = ()  # and none of these


_KEEP_WARM = "alert when recency exceeds {alert}"
_BASKET_WORDS = ("with large baskets", "buying in bulk")
#: In priority order; the last one needs no word, so every segment gets a playbook.
PLAYBOOKS: tuple[Playbook, ...] = (
    Playbook("trade buyers", (), "volume-tier pricing and a trade catalogue; account contact "
             "every {cycle} days", "reorder reminder {cycle} days after the last order; " + _KEEP_WARM,
             "stock depth (several cartons) on {categories}; forecast from their reorder cycle",
             any_of=_BASKET_WORDS, none_of=("one-off", "lapsed")),
    Playbook("one-off bulk buyers", ("one-off",), "invite to a trade account with volume pricing",
             "personal contact after the first bulk order; ask about reorder plans",
             "check that {categories} can serve a repeat order of the same size",
             any_of=_BASKET_WORDS, none_of=("lapsed",)),
    Playbook("new customers", ("new",), "welcome series; second-purchase voucher of about {voucher} "
             "valid 30 days", "follow up within 30 days of the first order; ask for preferences",
             "keep entry best sellers in stock: {categories}"),
    Playbook("lapsed high spenders", ("lapsed", "high spenders"), "personal win-back offer now "
             "(median {recency} days since last order)", "call key accounts; find out why they "
             "stopped", "check {categories} for stock-outs or price rises"),
    Playbook("lapsed regulars", ("lapsed", "frequent"), "time-limited reactivation discount",
             "contact now: median {recency} days since last order against a {cycle}-day cycle; "
             "ask why they stopped", "review availability of {categories}"),
    Playbook("lapsed one-off buyers", ("lapsed", "one-off"), "one reactivation campaign, then "
             "suppress from paid channels", "low priority", "no specific action"),
    Playbook("lapsed buyers", ("lapsed",), "low-cost reactivation email; suppress if no response",
             "low priority", "no specific action"),
    Playbook("frequent high spenders", ("frequent", "high spenders"), "VIP tier and early access "
             "to new ranges; avoid blanket discounts", _KEEP_WARM,
             "prioritise availability of {categories}"),
    Playbook("frequent buyers", ("frequent",), "upsell higher-value items and bundles",
             "loyalty points; " + _KEEP_WARM, "keep {categories} available"),
    Playbook("one-off low spenders", ("one-off", "low spenders"), "low-cost second-purchase "
             "incentive (free shipping on the next order)", "automated messages only; no paid "
             "retention spend", "no specific action"),
    Playbook("one-off buyers", ("one-off",), "second-purchase voucher of about {voucher} valid 30 "
             "days", "post-purchase follow-up and review request", "no specific action"),
    Playbook("high spenders", ("high spenders",), "premium recommendations; invite to the "
             "loyalty tier", _KEEP_WARM, "keep {categories} available"),
    Playbook("low spenders", ("low spenders",), "seasonal campaigns and bundles to raise frequency",
             "newsletter", "no specific action"),
    Playbook("other buyers", (), "cross-sell from {categories}; test a loyalty tier", _KEEP_WARM,
             "standard replenishment"),
)
_NOISE_ACTIONS = ("no segment-level targeting; review individually", "none at segment level",
                  "none at segment level")
_HIGH_RETURNS = ("; review return reasons",
                 "; quality check on the products they return{in_categories} "
                 "(return rate {return_rate} vs {return_rate_all} overall)")
_LOCALISE = "; localise for {countries}: language, currency and delivery costs"


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
        per segment, ``<column>_all`` their population mean, and ``top_categories``, the three
        largest means with their lift over the population mean.

    Returns
    -------
    DataFrame
        Indexed by ``segment``: ``n_customers``, ``share_customers``, ``revenue``,
        ``share_revenue``; ``<metric>_mean`` and ``<metric>_median`` for each of ``METRICS``;
        ``<metric>_pct``, the population percentile (mid-rank) of the segment median, for all
        but the return rate; ``return_rate_lift`` (segment mean / population mean);
        ``span_days`` (longest tenure of any customer: how many days the data spans);
        ``top_countries``, ``main_country``, ``home_country`` (the most common one of all
        customers), ``home_share`` and ``home_share_all`` (its share in the segment and
        overall), ``other_country_1``/``_2`` with their ``_share`` (the segment's most common
        other countries); then the ``extra`` columns.
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
    profile["span_days"] = float(data["tenure_days"].max())
    profile["top_countries"] = _top_shares(data[COUNTRY], segment)
    profile = profile.join(_countries(data[COUNTRY], segment))
    if extra is not None:
        profile = profile.join(_extra_means(extra, segment))
    return profile


def recommend_actions(profile: pd.DataFrame, names: pd.Series) -> pd.DataFrame:
    """Marketing, retention and inventory recommendations per segment.

    Parameters
    ----------
    profile : DataFrame
        Output of ``profile_segments``.
    names : Series
        Segment names (``naming.name_segments``, or renamed by hand): only copied to ``name``;
        the playbook follows from the profile's level words, whatever the name says.

    Returns
    -------
    DataFrame
        Indexed like ``profile``: ``name``, ``playbook``, ``marketing``, ``retention``,
        ``inventory``.
    """
    words, qualifiers = segment_words(profile)
    rows = {}
    for label in profile.index:
        name = str(names.get(label, ""))
        if label == NOISE_LABEL:
            rows[label] = [name or NOISE_NAME, "none", *_NOISE_ACTIONS]
            continue
        mine = set(words.get(label, []))
        kinds = {kind: text for kind, text, _ in qualifiers.get(label, [])}
        book = next(b for b in PLAYBOOKS if set(b.words) <= mine
                    and (not b.any_of or mine & set(b.any_of)) and not mine & set(b.none_of))
        texts = [book.marketing, book.retention, book.inventory]
        if "returns" in kinds:
            texts[1] += _HIGH_RETURNS[0]
            texts[2] += _HIGH_RETURNS[1]
        if "country" in kinds:  # named for customers outside the home country
            texts[0] += _LOCALISE
        values = _placeholders(profile.loc[label], _localise_for(profile.loc[label], kinds))
        rows[label] = [name, book.name, *(text.format(**values) for text in texts)]
    columns = ["name", "playbook", "marketing", "retention", "inventory"]
    return pd.DataFrame.from_dict(rows, orient="index", columns=columns).rename_axis("segment")


def _localise_for(row: pd.Series, kinds: dict[str, str]) -> str | None:
    """The countries a segment named for customers abroad lives in ('Germany & France')."""
    tag = kinds.get("country")
    if tag is None or not tag.startswith("outside "):
        return tag
    others = [row.get(f"other_country_{i}") for i in (1, 2)]
    named = [str(c) for c in others if isinstance(c, str) and c]
    return "their countries (" + ", ".join(named) + ", …)" if named else "their countries"


def _placeholders(row: pd.Series, countries: str | None) -> dict[str, str]:
    """Values the action templates refer to, for one profile row."""
    active = row["tenure_days_median"] - row["recency_days_median"]
    cycle = max(active / max(row["frequency_median"] - 1, 1), 1)
    alert = f"{2 * cycle:.0f} days (2x their {cycle:.0f}-day cycle)"
    span = row.get("span_days")
    if span is not None and pd.notna(span) and 2 * cycle > span:
        # An alert past the data's span cannot be checked against anything these data show.
        alert = (f"{span:.0f} days, the data's span (2x their {cycle:.0f}-day cycle would be "
                 f"{2 * cycle:.0f}, longer than the {span:.0f} days the data cover)")
    overall = row["return_rate_mean"] / row["return_rate_lift"] if row["return_rate_lift"] else 0
    categories = row.get("top_categories")
    known = isinstance(categories, str) and bool(categories)
    if not known:
        categories = "their most-bought products"
    return {"in_categories": f", mostly in {categories}" if known else "",
            "cycle": f"{cycle:.0f}", "alert": alert,
            "recency": f"{row['recency_days_median']:.0f}",
            "basket": f"{row['basket_value_median']:,.0f}",
            "voucher": f"{0.1 * row['basket_value_median']:,.0f}",
            "categories": categories, "return_rate": f"{row['return_rate_mean']:.0%}",
            "return_rate_all": f"{overall:.0%}", "countries": countries or ""}


def _countries(countries: pd.Series, segment: pd.Series) -> pd.DataFrame:
    """Main country, the home country's share and the two most common other countries."""
    values = countries.fillna("Unspecified").astype(str).to_numpy()
    shares = (pd.DataFrame({"segment": segment.to_numpy(), "country": values})
              .value_counts(normalize=False).rename("n").reset_index())
    shares["share"] = shares["n"] / shares.groupby("segment")["n"].transform("sum")
    # Most common first, ties alphabetical, so the choice never depends on row order.
    shares = shares.sort_values(["segment", "share", "country"], ascending=[True, False, True])
    overall = pd.Series(values).value_counts()
    home = sorted(overall.index[overall == overall.max()])[0]
    labels = pd.Index(sorted(segment.unique()), name="segment")
    frame = pd.DataFrame({
        "main_country": shares.drop_duplicates("segment").set_index("segment")["country"],
        "home_country": home,
        "home_share": shares[shares["country"] == home].set_index("segment")["share"],
        "home_share_all": float(overall[home] / len(values)),
    }, index=labels)
    frame["home_share"] = frame["home_share"].fillna(0.0)
    others = shares[shares["country"] != home]
    others = others.assign(rank=others.groupby("segment").cumcount() + 1)
    for i in (1, 2):
        nth = others[others["rank"] == i].set_index("segment")
        frame[f"other_country_{i}"] = nth["country"].reindex(labels).astype(object)
        frame[f"other_country_{i}_share"] = nth["share"].reindex(labels).fillna(0.0)
    return frame


def _top_shares(values: pd.Series, segment: pd.Series, k: int = 3) -> pd.Series:
    """'A 80%, B 12%, C 5%': the k most common values per segment with their shares."""
    counts = values.groupby([segment.to_numpy(), values.to_numpy()]).size()
    shares = (counts / counts.groupby(level=0).transform("sum")).sort_index()
    top = shares.sort_values(ascending=False, kind="stable").groupby(level=0).head(k)
    return top.groupby(level=0).apply(
        lambda s: ", ".join(f"{value} {_percent(share)}" for (_, value), share in s.items()))


def _percent(share: float) -> str:
    """'12%', or '<1%' for a share that would round to a misleading 0%."""
    return "<1%" if 0 < share < 0.005 else f"{share:.0%}"


def _extra_means(extra: pd.DataFrame, segment: pd.Series, k: int = 3) -> pd.DataFrame:
    """Mean of each extra column per segment and overall, and the top k with their lift."""
    numeric = extra.reindex(segment.index).select_dtypes("number")
    means = numeric.groupby(segment).mean()
    overall = numeric.mean()
    lift = means / overall.where(overall != 0)
    top = {label: ", ".join(f"{feature_label(col)} {means.loc[label, col]:.0%} "
                            f"(x{lift.loc[label, col]:.1f})"
                            for col in means.loc[label].nlargest(k).index)
           for label in means.index}
    population = pd.DataFrame([overall.to_numpy()] * len(means), index=means.index,
                              columns=[f"{c}_all" for c in numeric.columns])
    return means.join(population).assign(top_categories=pd.Series(top))
