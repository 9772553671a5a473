"""Time in the synthetic data: multi-year histories, personal buying seasons and migrations.

`synthetic.generate` runs these steps on its table of customer rows only when their parameters
are set, so the default data stay exactly as they were. A row is one customer's behaviour during
a *spell* of days ``[valid_from, valid_to)``. A migration ends the spell of each chosen customer
and adds a row in the new segment, with the same id, country and personal season, for the rest
of the period; invoices outside their row's spell are dropped, so from the migration date on the
customer buys like a customer of the new segment (rate, basket, hours, products, recency).

Three planted truths come out: the segment of every spell (`history_frame`), the personal
season of every customer (`season_frame`) and, as before, the segment at the end of the data.
Everything is vectorised; Python loops only over segments and migrations.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from numbers import Real
from typing import TYPE_CHECKING

import numpy as np
import pandas as pd

from segmentlab.schema import CUSTOMER_ID

if TYPE_CHECKING:
    from segmentlab.data.synthetic import SegmentProfile

MIGRATION_KEYS = ("date", "from", "to", "share")
#: Share of a seasonal customer's other invoices (neither the first nor the last) in season.
SEASON_LOYALTY = 0.9
_BASE, _IN, _OUT = 0, 1, 13  # offsets of a segment's day-weight profiles (see `_DayWeights`)
_PROFILES_PER_SEGMENT = 25


@dataclass(frozen=True)
class HistoryPlan:
    """The validated time parameters of `SyntheticTransactions`, in day numbers of the period."""

    multi_year: bool
    seasonal_share: float
    season_months: int
    migrations: tuple[tuple[int, int, int, float], ...]  # (day, from, to, share), by day

    @property
    def active(self) -> bool:
        return self.multi_year or self.seasonal_share > 0 or bool(self.migrations)


def plan_history(segment_days: int | None, seasonal_share: float, season_months: int,
                 migrations: Sequence[Mapping] | None, names: Sequence[str],
                 start: pd.Timestamp, end: pd.Timestamp) -> HistoryPlan:
    """Check the time parameters and turn dates and segment names into numbers.

    Raises
    ------
    ValueError
        One line naming the parameter (``migrations[1].to``...) and what was expected.
    """
    first, last = start.normalize(), end.normalize()
    n_days = (last - first).days + 1
    if segment_days is not None and not 28 <= segment_days <= n_days:
        raise ValueError(f"segment_days={segment_days}: expected a number of days from 28 to "
                         f"the {n_days} days of the period {first.date()}..{last.date()}")
    if not 0 <= seasonal_share <= 1:
        raise ValueError(f"seasonal_share={seasonal_share}: expected a share in [0, 1]")
    if not 1 <= season_months <= 11:
        raise ValueError(f"season_months={season_months}: expected 1 to 11 months")
    parsed = [_parse_migration(i, m, names, first, last) for i, m in enumerate(migrations or ())]
    parsed.sort(key=lambda m: m[0])
    totals: dict[tuple[int, int], float] = {}
    for day, source, _, share in parsed:
        totals[day, source] = totals.get((day, source), 0.0) + share
        if totals[day, source] > 1 + 1e-9:
            raise ValueError(f"migrations on {(first + pd.Timedelta(days=day)).date()} from "
                             f"'{names[source]}': shares add up to more than 1")
    return HistoryPlan(segment_days is not None and segment_days < n_days, float(seasonal_share),
                       int(season_months), tuple(parsed))


def _parse_migration(i: int, item, names: Sequence[str], first: pd.Timestamp,
                     last: pd.Timestamp) -> tuple[int, int, int, float]:
    """One ``{date, from, to, share}`` mapping as (day, from, to, share), or a one-line error."""
    where = f"migrations[{i}]"
    if not isinstance(item, Mapping) or set(item) != set(MIGRATION_KEYS):
        got = sorted(item) if isinstance(item, Mapping) else type(item).__name__
        raise ValueError(f"{where}: expected a mapping with keys {', '.join(MIGRATION_KEYS)}; "
                         f"got {got}")
    codes = {}
    for key in ("from", "to"):
        if item[key] not in names:
            raise ValueError(f"{where}.{key}: unknown segment {item[key]!r}; expected one of "
                             f"{', '.join(names)}")
        codes[key] = list(names).index(item[key])
    if codes["from"] == codes["to"]:
        raise ValueError(f"{where}: 'from' and 'to' are both {item['to']!r}")
    share = item["share"]
    if isinstance(share, bool) or not isinstance(share, Real) or not 0 <= share <= 1:
        raise ValueError(f"{where}.share={share!r}: expected a share in [0, 1]")
    try:  # strings must be ISO dates: pd.Timestamp("June") would be 1 June of year 1
        date = pd.Timestamp(pd.to_datetime(item["date"], format="ISO8601")
                            if isinstance(item["date"], str) else item["date"])
    except (TypeError, ValueError):
        raise ValueError(f"{where}.date={item['date']!r}: expected an ISO date") from None
    if not first < date.normalize() <= last:
        raise ValueError(f"{where}.date={date.date()}: outside the period; expected a day after "
                         f"{first.date()} and up to {last.date()}")
    return (date.normalize() - first).days, codes["from"], codes["to"], float(share)


class _DayWeights:
    """Cumulative day weights per segment and personal season, for draws with one weight profile
    per row: profile ``segment * 25`` is the segment's own calendar, ``+ 1 + m`` the same inside a
    season starting in month ``m`` (0 = January), ``+ 13 + m`` outside it."""

    def __init__(self, calendar, season_months: int):
        base = np.diff(np.stack(calendar.cum), axis=1)  # (segments, days)
        month_from_start = (calendar.month[None, :] - np.arange(12)[:, None]) % 12
        inside = month_from_start < season_months  # (12 season starts, days)
        weights = np.concatenate([base[:, None], base[:, None] * inside, base[:, None] * ~inside],
                                 axis=1).reshape(-1, base.shape[1])
        self.cum = np.concatenate([np.zeros((len(weights), 1)), np.cumsum(weights, 1)], axis=1)
        self.stride = self.cum.shape[1]
        # Rows stacked with gaps, so one searchsorted serves every row.
        self.gap = self.cum[:, -1].max() + 1.0
        self.flat = (self.cum + self.gap * np.arange(len(self.cum))[:, None]).ravel()

    def mass(self, profile: np.ndarray, lo: np.ndarray, hi: np.ndarray) -> np.ndarray:
        """Weight of the days ``lo..hi`` (inclusive) under each row's profile."""
        return self.cum[profile, hi + 1] - self.cum[profile, lo]

    def sample(self, rng: np.random.Generator, profile: np.ndarray, lo: np.ndarray,
               hi: np.ndarray, u: np.ndarray | None = None) -> np.ndarray:
        """Days in ``[lo, hi]`` by profile; rows whose profile is empty there use their base."""
        profile = np.where(self.mass(profile, lo, hi) > 0, profile,
                           profile - profile % _PROFILES_PER_SEGMENT)
        u = rng.random(len(profile)) if u is None else u
        a, b = self.cum[profile, lo], self.cum[profile, hi + 1]
        index = np.searchsorted(self.flat, profile * self.gap + a + u * (b - a), side="right") - 1
        return np.clip(index - profile * self.stride, lo, hi)


@dataclass(frozen=True)
class _Kinds:
    """Per-segment numbers the history steps need, indexable by segment number."""

    min_invoices: np.ndarray
    extra_invoices: np.ndarray
    lines_per_invoice: np.ndarray
    quantity: np.ndarray
    churner: np.ndarray  # customers stop buying well before the end (one-offs, lapsing)
    single: np.ndarray  # exactly one invoice
    seasonable: np.ndarray  # repeat buyers all year round: may have a personal season
    typical_mass: np.ndarray  # day weight of a typical window: the unit of invoice rates

    @classmethod
    def of(cls, profiles: Sequence[SegmentProfile], calendar) -> _Kinds:
        get = lambda field: np.array([getattr(p, field) for p in profiles])  # noqa: E731
        masses = []
        for s, p in enumerate(profiles):
            first = round(np.mean(calendar.window(p, p.first_day)))
            last = max(first, round(np.mean(calendar.window(p, p.last_day))))
            masses.append(max(calendar.cum[s][last + 1] - calendar.cum[s][first], 1e-9))
        return cls(get("min_invoices"), get("extra_invoices"), get("lines_per_invoice"),
                   get("quantity"), get("last_day")[:, 1] < 0.5,
                   (get("min_invoices") == 1) & (get("extra_invoices") == 0),
                   (get("min_invoices") > 1) & ~get("season_only"), np.array(masses))


def plant_history(rng: np.random.Generator, customers: dict, calendar, plan: HistoryPlan,
                  profiles: Sequence[SegmentProfile],
                  draw_windows: Callable[[np.ndarray], tuple[np.ndarray, np.ndarray]]) -> dict:
    """Customer rows with personal seasons, multi-year windows and migration spells.

    Parameters
    ----------
    rng : numpy Generator
        The generator's random source.
    customers : dict of arrays
        One row per customer as `synthetic` draws them, windows inside the segment span.
    calendar : synthetic._Calendar
        Days of the period, segment day weights and windows.
    plan : HistoryPlan
        What to plant.
    profiles : sequence of SegmentProfile
        The segments, in segment-number order.
    draw_windows : callable
        Segment numbers -> (first, last) days drawn as for a new customer.

    Returns
    -------
    dict of arrays
        The rows, migration rows appended, with ``owner`` (row of the customer's first spell),
        ``valid_from``, ``valid_to``, ``season`` (start month 0-11, -1 for none) and new
        ``first``, ``last`` and ``n_invoices`` where they changed.
    """
    rows = with_spells(customers, calendar.n_days)
    weights = _DayWeights(calendar, plan.season_months)
    kinds = _Kinds.of(profiles, calendar)
    n = len(rows["segment"])
    rows["season"] = _draw_seasons(rng, rows["segment"], kinds.seasonable, plan.seasonal_share)
    if plan.multi_year:
        _extend_backwards(rng, rows, calendar.span[0], weights, kinds)
    seasonal = np.flatnonzero(rows["season"] >= 0)
    profile = _profile(rows, seasonal, _IN)
    rows["last"][seasonal] = weights.sample(
        rng, profile, np.maximum(rows["last"][seasonal] - 364, 0), rows["last"][seasonal])
    rows["first"][seasonal] = weights.sample(rng, profile, np.zeros(len(seasonal), np.int64),
                                             rows["last"][seasonal])
    redraw = np.full(n, plan.multi_year) | (rows["season"] >= 0)
    for day, source, targets in _grouped(plan.migrations):
        rows = _migrate(rng, rows, day, source, targets, kinds)
    new = np.arange(n, len(rows["segment"]))
    _settle_migrants(rng, rows, new, weights, kinds, draw_windows)
    _redraw_counts(rng, rows, redraw, n, weights, kinds, calibrate=plan.multi_year)
    return rows


def with_spells(customers: dict, n_days: int) -> dict:
    """Rows with the spell keys of a history without migrations or seasons (no random draws)."""
    n = len(customers["segment"])
    return {**customers, "first": customers["first"].copy(), "last": customers["last"].copy(),
            "n_invoices": customers["n_invoices"].copy(), "owner": np.arange(n),
            "valid_from": np.zeros(n, np.int64), "valid_to": np.full(n, n_days, np.int64),
            "season": np.full(n, -1)}


def _profile(rows: dict, idx: np.ndarray, part: int) -> np.ndarray:
    """Day-weight profile of rows ``idx``: their segment's, inside or outside their season."""
    season = rows["season"][idx]
    offset = np.where(season >= 0, part + season, 0) if part != _BASE else 0
    return rows["segment"][idx] * _PROFILES_PER_SEGMENT + offset


def _draw_seasons(rng: np.random.Generator, segment: np.ndarray, seasonable: np.ndarray,
                  share: float) -> np.ndarray:
    """Start month (0-11) of a personal season for ``share`` of each eligible segment, else -1."""
    season = np.full(len(segment), -1)
    if share <= 0:
        return season
    key = rng.random(len(segment))
    for s in np.flatnonzero(seasonable):
        members = np.flatnonzero(segment == s)
        chosen = members[np.argsort(key[members])[: round(share * len(members))]]
        season[chosen] = rng.integers(0, 12, len(chosen))
    return season


def _extend_backwards(rng: np.random.Generator, rows: dict, span_start: int,
                      weights: _DayWeights, kinds: _Kinds) -> None:
    """Spread arrivals and churn over the years before the segment span (in place).

    Churners' windows move back by whole weeks (weekdays stay valid) to anywhere in the history;
    then everyone but one-invoice customers arrives at a day drawn before their window start.
    """
    seg = rows["segment"]
    shift = 7 * rng.integers(0, span_start // 7 + 1, len(seg)) * kinds.churner[seg]
    rows["first"] -= shift
    rows["last"] -= shift
    back = np.flatnonzero(~kinds.single[seg])
    rows["first"][back] = weights.sample(rng, _profile(rows, back, _BASE),
                                         np.zeros(len(back), np.int64), rows["first"][back])


def _grouped(migrations) -> list[tuple[int, int, list[tuple[int, float]]]]:
    """Migrations as (day, from, [(to, share), ...]), one group per day and source segment."""
    groups: dict[tuple[int, int], list[tuple[int, float]]] = {}
    for day, source, target, share in migrations:
        groups.setdefault((day, source), []).append((target, share))
    return [(day, source, targets) for (day, source), targets in groups.items()]


def _migrate(rng: np.random.Generator, rows: dict, day: int, source: int,
             targets: list[tuple[int, float]], kinds: _Kinds) -> dict:
    """End the spell of the chosen share of ``source`` customers at ``day``; append new rows.

    Eligible: customers with an id, in ``source`` on ``day`` since before it, who bought before.
    """
    arrival = rows["first"][rows["owner"]]
    eligible = np.flatnonzero((rows["segment"] == source) & ~rows["guest"]
                              & (rows["valid_from"] < day) & (day < rows["valid_to"])
                              & (arrival < day))
    order = eligible[rng.permutation(len(eligible))]
    bounds = np.round(np.cumsum([0.0] + [share for _, share in targets]) * len(order)).astype(int)
    chosen = [order[a:b] for a, b in zip(bounds[:-1], bounds[1:], strict=True)]
    moved = np.concatenate(chosen)
    new = {key: values[moved].copy() for key, values in rows.items()}
    new["segment"] = np.repeat([t for t, _ in targets], [len(c) for c in chosen])
    new["valid_from"] = np.full(len(moved), day)
    new["season"] = np.where(kinds.seasonable[new["segment"]], new["season"], -1)
    new["quantity"] = new["quantity"] * kinds.quantity[new["segment"]] / kinds.quantity[source]
    rows["valid_to"] = rows["valid_to"].copy()
    rows["valid_to"][moved] = day
    return {key: np.concatenate([rows[key], new[key]]) for key in rows}


def _settle_migrants(rng: np.random.Generator, rows: dict, new: np.ndarray,
                     weights: _DayWeights, kinds: _Kinds, draw_windows: Callable) -> None:
    """Windows of the migration rows: those of a new customer of the target segment (in place).

    Every window opens the day before the migration, so only invoices from the migration day on
    are kept; it closes where a new customer's would. Churners (lapsing, one-off) close it on
    that day too: customers who lapse stop buying at the migration date.
    """
    if not len(new):
        return
    seg, day = rows["segment"][new], rows["valid_from"][new]
    _, last = draw_windows(seg)
    last = np.where(kinds.churner[seg], day - 1, np.maximum(last, day - 1))
    seasonal = rows["season"][new] >= 0
    idx = new[seasonal]
    lo = np.maximum(day[seasonal], last[seasonal] - 364)
    hi = np.maximum(lo, last[seasonal])
    moved_in = weights.sample(rng, _profile(rows, idx, _IN), lo, hi)
    last[seasonal] = np.where(last[seasonal] >= day[seasonal], moved_in, last[seasonal])
    rows["first"][new], rows["last"][new] = day - 1, last


def _redraw_counts(rng: np.random.Generator, rows: dict, redraw: np.ndarray, n_original: int,
                   weights: _DayWeights, kinds: _Kinds, calibrate: bool) -> None:
    """Invoices of rows whose window changed, at their segment's rate per unit of day weight.

    Original rows (the first ``n_original``) keep their segment's minimum over their window;
    migration rows buy at the rate of the segment's original rows, minimum included, plus the
    dropped invoice that opens their window. With ``calibrate`` the rates are scaled so that the
    original rows keep the number of lines they would have in one segment span (``n_lines``
    stays the size of the whole history).
    """
    seg = rows["segment"]
    base = _profile(rows, np.arange(len(seg)), _BASE)
    factor = weights.mass(base, rows["first"], rows["last"]) / kinds.typical_mass[seg]
    extra = rows["activity"] * kinds.extra_invoices[seg]
    if calibrate:
        lines = kinds.lines_per_invoice[seg[:n_original]]
        extra = extra * ((extra[:n_original] * lines).sum()
                         / max((extra[:n_original] * factor[:n_original] * lines).sum(), 1e-9))
    idx = np.flatnonzero(redraw)
    rows["n_invoices"][idx] = kinds.min_invoices[seg[idx]] + rng.poisson(extra[idx] * factor[idx])
    # An original row's minimum is spread over its window, on average `spread` typical windows.
    counts = np.bincount(seg[:n_original], minlength=len(kinds.min_invoices))
    spread = np.bincount(seg[:n_original], factor[:n_original], len(counts)) / np.maximum(counts, 1)
    spread = np.where(counts > 0, np.maximum(spread, 1e-9), 1.0)
    new = np.arange(n_original, len(seg))
    mean = (kinds.min_invoices[seg[new]] / spread[seg[new]] + extra[new]) * factor[new]
    rows["n_invoices"][new] = 1 + rng.poisson(mean)


def seasonal_invoice_days(rng: np.random.Generator, invoices: dict, rows: dict,
                          calendar, season_months: int) -> dict:
    """Move the middle invoices of seasonal rows into their season (most) or out of it.

    In-season days are drawn stratified over the row's window, so a customer buys in their
    season every year they are active, not only on average.
    """
    cust = invoices["customer"]
    n_inv = rows["n_invoices"]
    k = np.arange(len(cust)) - np.repeat(np.cumsum(n_inv) - n_inv, n_inv)
    middle = (k > 0) & (k < n_inv[cust] - 1) & (rows["season"][cust] >= 0)
    inside = middle & (rng.random(len(cust)) < SEASON_LOYALTY)
    weights = _DayWeights(calendar, season_months)
    day = invoices["minute"] // 1440
    new_day = day.copy()
    for part, mask in ((_IN, inside), (_OUT, middle & ~inside)):
        idx = np.flatnonzero(mask)
        u = _stratified(rng, cust[idx]) if part == _IN else None
        new_day[idx] = weights.sample(rng, _profile(rows, cust[idx], part),
                                      rows["first"][cust[idx]], rows["last"][cust[idx]], u)
    return {**invoices, "minute": invoices["minute"] + (new_day - day) * 1440}


def _stratified(rng: np.random.Generator, group: np.ndarray) -> np.ndarray:
    """Uniforms in [0, 1), the j-th of m draws of a (sorted) group in [j/m, (j+1)/m)."""
    _, start, count = np.unique(group, return_index=True, return_counts=True)
    j = np.arange(len(group)) - np.repeat(start, count)
    return (j + rng.random(len(group))) / np.repeat(count, count)


def keep_spells(invoices: dict, rows: dict) -> dict:
    """Invoices whose day lies inside their row's spell."""
    cust, day = invoices["customer"], invoices["minute"] // 1440
    keep = (day >= rows["valid_from"][cust]) & (day < rows["valid_to"][cust])
    return {key: values[keep] for key, values in invoices.items()}


def at_end(rows: dict) -> np.ndarray:
    """Rows of customers with an id whose spell reaches the end: one per customer."""
    return ~rows["guest"] & (rows["valid_to"] == rows["valid_to"].max())


def history_frame(rows: dict, names: Sequence[str], start: pd.Timestamp) -> pd.DataFrame:
    """Spells of customers with an id: ``customer_id``, ``start``, ``end`` (exclusive), ``segment``."""
    known = np.flatnonzero(~rows["guest"])
    day0 = start.normalize()
    frame = pd.DataFrame({
        CUSTOMER_ID: rows["id"][known].astype(np.int64),
        "start": day0 + pd.to_timedelta(rows["valid_from"][known], unit="D"),
        "end": day0 + pd.to_timedelta(rows["valid_to"][known], unit="D"),
        "segment": pd.array(np.asarray(names, dtype=object)[rows["segment"][known]], dtype="str"),
    })
    return frame.sort_values([CUSTOMER_ID, "start"], ignore_index=True)


def season_frame(rows: dict, profiles: Sequence[SegmentProfile],
                 segment_season: tuple[int, int], season_months: int) -> pd.DataFrame:
    """Per customer with an id, at the end of the data: seasonal or not, season start and length.

    Customers of a season-only segment are seasonal in that segment's season
    (``segment_season``: start month 0-11 and length); others in their personal season, if any.
    """
    final = np.flatnonzero(at_end(rows))
    seg, personal = rows["segment"][final], rows["season"][final]
    by_segment = np.array([p.season_only for p in profiles])[seg]
    start = np.where(by_segment, segment_season[0], personal)
    months = np.where(by_segment, segment_season[1], season_months)
    seasonal = start >= 0
    return pd.DataFrame({
        "seasonal": seasonal,
        "season_start_month": pd.arrays.IntegerArray(np.where(seasonal, start + 1, 0), ~seasonal),
        "season_months": pd.arrays.IntegerArray(months.astype(np.int64), ~seasonal),
    }, index=pd.Index(rows["id"][final].astype(np.int64), name=CUSTOMER_ID)).sort_index()
