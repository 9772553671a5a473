"""Synthetic invoice lines shaped like Online Retail, with planted customer segments.

The default data of the project: it runs on a fresh machine with no data file and, unlike the
real data, knows the true segment of every customer (``truth()``), so clusterings can be scored.

Six segments (`SEGMENTS`) differ in recency, frequency, basket size and value, units per line,
return rate, country, hour and weekday, and in the product families they prefer, so RFM,
behaviour and text features can all find them. Products come from twelve families (`FAMILIES`)
whose descriptions are built from family nouns and words plus shared colours and patterns. The
noise of the real file is there too: guest orders without a customer id, "C" cancellations that
reverse earlier purchase lines, postage/manual lines, exact duplicates, zero prices and a few
missing descriptions. Everything is vectorised with numpy; Python loops only over segments,
families and products (about 1 s per million lines).

Time structure is optional (`synthetic_history`): ``segment_days`` turns a long period into a
multi-year history (customers arrive every year, churners leave at any time), ``seasonal_share``
gives customers a personal buying season that repeats every year, and ``migrations`` move a
share of one segment's customers to another segment at a date. Their truths are
``segment_history()`` and ``seasonal_truth()``; with their defaults the data are unchanged.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from functools import partial

import numpy as np
import pandas as pd

from segmentlab.cache import stable_hash
from segmentlab.data import synthetic_history as history
from segmentlab.schema import (
    AMOUNT,
    COUNTRY,
    CUSTOMER_ID,
    DESCRIPTION,
    INVOICE_DATE,
    INVOICE_NO,
    QUANTITY,
    RAW_COLUMNS,
    STOCK_CODE,
    UNIT_PRICE,
)

#: Bump whenever the same parameters would produce different data, so caches are invalidated.
GENERATOR_VERSION = "1"
SEGMENT = "segment"
FAMILY = "family"

# Family: (median unit price in GBP, nouns, family words). Nearly every noun of a family shares
# its head word (BAG, CAKE, CHRISTMAS, GARDEN...) and family words are its own, while colours
# and patterns are shared by all families: TF-IDF can recover families, but not trivially.
FAMILIES: dict[str, tuple[float, list[str], list[str]]] = {
    "bags": (1.95, ["JUMBO BAG", "LUNCH BAG", "SHOPPER BAG", "CHARLOTTE BAG", "STORAGE BAG",
                    "TOTE BAG", "WASH BAG", "BEACH BAG"],
             ["JUMBO", "RECYCLED", "WOVEN"]),
    "baking": (2.55, ["CAKE CASES", "CAKESTAND", "CAKE TINS", "CAKE BAKING SET", "CAKE MOULD",
                      "MINI CAKE CASES", "CAKE FORKS"],
               ["REGENCY", "PACK OF 72", "3 TIER"]),
    "candles": (2.95, ["T-LIGHT HOLDER", "HANGING T-LIGHT HOLDER", "CANDLE HOLDER", "LANTERN",
                       "LED TEA LIGHTS", "NIGHT LIGHT", "LIGHT CHAIN"],
                ["GLASS", "WICKER", "SCENTED"]),
    "christmas": (1.45, ["CHRISTMAS DECORATION", "CHRISTMAS BAUBLE", "CHRISTMAS ADVENT CALENDAR",
                         "CHRISTMAS STOCKING", "CHRISTMAS PAPER CHAIN KIT", "CHRISTMAS TREE STAR"],
                  ["SANTA", "REINDEER", "SNOWFLAKE", "ANGEL"]),
    "kitchen": (3.75, ["SPICE TIN", "TEA TIN", "BISCUIT TIN", "BREAD TIN", "KITCHEN SCALES",
                       "TEA TOWEL", "KITCHEN APRON", "MUG"],
                ["SET OF 6", "PANTRY", "ENAMEL"]),
    "stationery": (0.85, ["GREETING CARD", "WRAPPING PAPER", "PAPER NOTEBOOK", "GIFT TAGS",
                          "STICKER SHEET", "PENCILS", "PAPER ENVELOPES"],
                   ["PACK OF 12", "A5", "MINI"]),
    "garden": (4.25, ["GARDEN WATERING CAN", "GARDEN KNEELING PAD", "GARDEN PLANT POT",
                      "BIRD FEEDER", "GARDENERS GLOVES", "GARDEN HERB MARKERS", "BIRD HOUSE"],
               ["ZINC", "GARDEN", "TERRACOTTA"]),
    "toys": (2.10, ["CHILDRENS SKIPPING ROPE", "JIGSAW PUZZLE", "SPINNING TOP", "RAG DOLL",
                    "CHILDRENS TOY TIDY", "CHILDRENS PLAYHOUSE", "CHILDRENS CUTLERY"],
             ["CHILDRENS", "WOODEN TOY", "KIDS"]),
    "jewellery": (1.65, ["NECKLACE", "BRACELET", "EARRINGS", "HAIR CLIP", "BROOCH", "RING",
                         "HAIR BAND"],
                  ["DIAMANTE", "BEADED", "GLASS BEAD", "CRYSTAL"]),
    "signs": (2.10, ["METAL SIGN", "HANGING SIGN", "DOOR SIGN", "WALL SIGN", "WOODEN SIGN",
                     "HOME SWEET HOME SIGN"],
              ["HOME", "WELCOME", "FUNNY"]),
    "party": (0.65, ["PARTY BUNTING", "PARTY PLATES", "PARTY CUPS", "PARTY NAPKINS",
                     "PARTY BALLOONS", "PARTY STRAWS", "PARTY HATS"],
              ["PARTY", "BIRTHDAY", "PACK OF 20"]),
    "vintage": (5.95, ["VINTAGE PHOTO FRAME", "ALARM CLOCK BAKELIKE", "VINTAGE DOILY",
                       "VINTAGE CHEST OF DRAWERS", "VINTAGE WALL MIRROR", "TRINKET BOX"],
                ["ANTIQUE", "FRENCH", "ORNATE", "VINTAGE"]),
}
COLOURS = ["RED", "PINK", "BLUE", "WHITE", "CREAM", "GREEN", "IVORY", "BLACK", "SILVER", "GOLD"]
PATTERNS = ["RETROSPOT", "POLKADOT", "PAISLEY", "SPOTTY", "STRIPES", "SKULLS",
            "STRAWBERRY", "FLORAL", "DOLLY GIRL", "SPACEBOY", "WOODLAND", "LOVE BIRD", "HEARTS"]
# Units per line come in the pack sizes shops sell, not any integer.
PACK_SIZES = np.array([1, 2, 3, 4, 5, 6, 8, 10, 12, 16, 20, 24, 25, 30, 36, 48, 50, 60, 72, 80,
                       96, 100, 120, 144, 160, 200, 240, 288, 300, 360, 400, 480, 576, 600, 720])
PRICE_POINTS = np.array([0.19, 0.21, 0.29, 0.39, 0.42, 0.55, 0.65, 0.72, 0.79, 0.85, 0.95, 1.25,
                         1.45, 1.65, 1.95, 2.10, 2.46, 2.55, 2.95, 3.25, 3.75, 4.25, 4.95, 5.95,
                         6.75, 7.95, 8.50, 9.95, 12.75, 14.95, 16.95, 19.95, 24.95, 29.95, 39.95])
# Share of non-UK customers per country (UK is decided per segment).
ABROAD = {"Germany": 20, "France": 18, "EIRE": 17, "Spain": 6, "Netherlands": 6, "Belgium": 5,
          "Switzerland": 5, "Portugal": 4, "Australia": 3, "Norway": 3, "Italy": 2,
          "Channel Islands": 2, "Finland": 2, "Sweden": 2, "Denmark": 1, "Japan": 1, "Poland": 1}
# Relative activity per calendar month (Jan..Dec): a slow spring, a strong November.
MONTH_ACTIVITY = np.array([0.8, 0.7, 0.85, 0.75, 0.85, 0.85, 0.9, 0.85, 1.3, 1.5, 2.4, 1.6])
# Families that sell by season, as multipliers of their weight per calendar month.
FAMILY_SEASON = {
    "christmas": [0.05, 0.02, 0.02, 0.02, 0.05, 0.1, 0.2, 0.5, 1.5, 3.0, 4.0, 3.0],
    "garden": [0.5, 0.7, 1.3, 1.6, 1.6, 1.4, 1.1, 0.9, 0.7, 0.5, 0.4, 0.3],
}
# The season of season-only segments: start month (0 = January) and length, October-December.
GIFT_SEASON = (9, 3)
# Non-product codes as the real data has them: (stock code, description).
POSTAGE, DOTCOM, MANUAL = ("POST", "POSTAGE"), ("DOT", "DOTCOM POSTAGE"), ("M", "Manual")


@dataclass(frozen=True)
class SegmentProfile:
    """How the customers of one planted segment buy.

    Day windows are fractions of the segment span (the period, or its last ``segment_days``;
    0 = start, 1 = end); a ``season_only`` segment's windows are fractions of the last
    October-December inside the period instead.
    """

    name: str
    share: float  # of customers
    min_invoices: int
    extra_invoices: float  # mean invoices above the minimum, before scaling to ``n_lines``
    lines_per_invoice: float  # mean
    quantity: float  # median units per line
    first_day: tuple[float, float]
    last_day: tuple[float, float]
    return_weight: float  # relative chance that a line is later cancelled
    uk_share: float
    hour: tuple[float, float]  # mean and sd of the hour of day
    weekdays: tuple[float, ...]
    families: dict[str, float]
    season_only: bool = False


SEGMENTS: tuple[SegmentProfile, ...] = (
    SegmentProfile(
        "loyal_high_spender", share=0.12, min_invoices=4, extra_invoices=8.0,
        lines_per_invoice=20.0, quantity=8.0, first_day=(0.0, 0.15), last_day=(0.96, 0.99),
        return_weight=1.0, uk_share=0.97, hour=(10.5, 1.0),
        weekdays=(1.0, 1.0, 1.0, 1.0, 1.0, 0.0, 0.05),
        families={"candles": 3, "kitchen": 3, "baking": 3, "signs": 2, "bags": 1, "vintage": 1}),
    SegmentProfile(
        "regular_mid_value", share=0.24, min_invoices=4, extra_invoices=3.0,
        lines_per_invoice=12.0, quantity=4.0, first_day=(0.0, 0.4), last_day=(0.78, 0.9),
        return_weight=1.0, uk_share=0.97, hour=(12.8, 0.7),
        weekdays=(0.2, 1.0, 2.0, 1.0, 0.2, 0.0, 0.05),
        families={"bags": 3, "stationery": 3, "kitchen": 2, "toys": 2, "baking": 1}),
    SegmentProfile(
        "wholesale_bulk", share=0.10, min_invoices=2, extra_invoices=1.0,
        lines_per_invoice=30.0, quantity=60.0, first_day=(0.0, 0.5), last_day=(0.55, 0.95),
        return_weight=0.3, uk_share=0.1, hour=(9.5, 1.0),
        weekdays=(2.0, 2.0, 0.3, 0.2, 0.1, 0.0, 0.0),
        families={"party": 3, "bags": 3, "baking": 2, "jewellery": 2, "stationery": 1}),
    # Bought once, months ago, and never came back; last_day (0, 0) means "same as first".
    SegmentProfile(
        "one_off_low_spender", share=0.22, min_invoices=1, extra_invoices=0.0,
        lines_per_invoice=4.0, quantity=1.5, first_day=(0.0, 0.6), last_day=(0.0, 0.0),
        return_weight=0.2, uk_share=0.97, hour=(15.0, 0.6),
        weekdays=(0.2, 0.2, 0.2, 0.3, 2.0, 0.0, 0.1),
        families={"jewellery": 3, "vintage": 3, "signs": 2, "toys": 1}),
    SegmentProfile(
        "lapsing", share=0.16, min_invoices=3, extra_invoices=0.5,
        lines_per_invoice=16.0, quantity=6.0, first_day=(0.0, 0.1), last_day=(0.25, 0.4),
        return_weight=1.0, uk_share=0.97, hour=(15.0, 0.8),
        weekdays=(0.2, 0.3, 1.0, 2.0, 1.0, 0.0, 0.05),
        families={"garden": 4, "toys": 3, "vintage": 2, "kitchen": 1}),
    SegmentProfile(
        "seasonal_gift", share=0.16, min_invoices=2, extra_invoices=1.0,
        lines_per_invoice=10.0, quantity=2.0, first_day=(0.3, 0.6), last_day=(0.8, 0.95),
        return_weight=10.0, uk_share=0.97, hour=(18.5, 1.0),
        weekdays=(0.1, 0.1, 0.1, 0.2, 0.4, 0.0, 6.0),
        families={"christmas": 6, "candles": 2, "stationery": 2, "party": 1}, season_only=True),
)


class SyntheticTransactions:
    """Online-Retail-like invoice lines with planted customer segments.

    A data source like the real-file one: ``read()`` gives raw lines (noise included) and
    ``truth()`` the segment planted for every customer that has an id. Results are cached on the
    instance, so both come from one generation and agree.

    Parameters
    ----------
    n_customers : int
        Customers with an id (the ones ``truth()`` labels).
    n_lines : int
        Approximate number of lines in ``read()``, noise included (within a few percent). Repeat
        customers buy more often as ``n_lines / n_customers`` grows; below about 40 lines per
        customer baskets shrink instead, and below about 4 the request cannot be met. The
        segments are tuned for the default ratio of 75.
    n_products : int
        Products in the catalogue, spread over twelve families.
    start, end : str
        First and last day of the period (ISO dates).
    missing_customer_rate : float
        Share of lines without a customer id (customers who never logged in).
    cancellation_rate : float
        Cancellation lines per purchase line; each reverses an earlier purchase line.
    duplicate_rate : float
        Share of product lines that appear twice, as in the real file.
    zero_price_rate : float
        Share of product lines priced 0 (never the first line of an invoice).
    seed : int
        Seed of the only random generator used.
    segment_days : int or None
        Days, ending at ``end``, that the segment profiles describe (e.g. 365). None: the whole
        period. Shorter than the period makes a multi-year history: customers arrive at any time
        before their segment window (a share every year), churners (one-off and lapsing
        customers) leave at any time, everyone else is still buying in the last span, where the
        segments look as in a one-year period. ``n_lines`` remains the size of the whole history.
    seasonal_share : float
        Share of the year-round repeat buyers (loyal, regular, wholesale, lapsing) who buy
        mainly in a personal season every year: first and last purchase in it and
        `synthetic_history.SEASON_LOYALTY` of the others. See ``seasonal_truth()``.
    season_months : int
        Length of a personal season in months; its start month is drawn per customer.
    migrations : list of mappings, optional
        ``{"date": "2011-06-01", "from": "regular_mid_value", "to": "lapsing", "share": 0.3}``
        each: from ``date`` on, ``share`` of the customers with an id who were in ``from`` (and
        had bought before) buy like new customers of ``to``; they keep id, country and season.
        Several entries for one date and source split its customers (shares summing to <= 1).
        See ``segment_history()``.
    """

    def __init__(self, n_customers: int = 2000, n_lines: int = 150_000, n_products: int = 600,
                 start: str = "2010-12-01", end: str = "2011-12-09",
                 missing_customer_rate: float = 0.2, cancellation_rate: float = 0.02,
                 duplicate_rate: float = 0.01, zero_price_rate: float = 0.002, seed: int = 42,
                 segment_days: int | None = None, seasonal_share: float = 0.0,
                 season_months: int = 3, migrations: Sequence[Mapping] | None = None):
        self.n_customers = n_customers
        self.n_lines = n_lines
        self.n_products = n_products
        self.start = start
        self.end = end
        self.missing_customer_rate = missing_customer_rate
        self.cancellation_rate = cancellation_rate
        self.duplicate_rate = duplicate_rate
        self.zero_price_rate = zero_price_rate
        self.seed = seed
        self.segment_days = segment_days
        self.seasonal_share = seasonal_share
        self.season_months = season_months
        self.migrations = migrations

    def get_params(self) -> dict:
        """Constructor arguments by name."""
        names = ["n_customers", "n_lines", "n_products", "start", "end", "missing_customer_rate",
                 "cancellation_rate", "duplicate_rate", "zero_price_rate", "seed", *TIME_PARAMS]
        return {name: getattr(self, name) for name in names}

    def describe(self) -> str:
        """Human-readable origin, e.g. ``synthetic(n_customers=2000, n_lines=150000, seed=42)``."""
        params = self._hashed_params()
        if params.get("migrations"):
            params["migrations"] = len(params["migrations"])  # a count reads better than dicts
        defaults = SyntheticTransactions().get_params()
        shown = {"n_customers", "n_lines", "seed"}
        parts = [f"{k}={v}" for k, v in params.items() if k in shown or v != defaults[k]]
        return f"synthetic({', '.join(parts)})"

    def fingerprint(self) -> str:
        """Hash of the parameters and the generator version: equal hashes mean equal data."""
        return stable_hash({"generator": "synthetic", "version": GENERATOR_VERSION,
                            **self._hashed_params()})

    def _hashed_params(self) -> dict:
        # Time parameters at their defaults are left out, so data made before they existed keep
        # their fingerprint (and cache entries).
        params = self.get_params()
        params["migrations"] = [dict(m) if isinstance(m, Mapping) else m
                                for m in params["migrations"] or ()]
        return {k: v for k, v in params.items()
                if k not in TIME_PARAMS or v != TIME_PARAMS[k]}

    def read(self) -> pd.DataFrame:
        """Invoice lines in ``schema.RAW_COLUMNS`` order, with the loader's dtypes."""
        return self._generated()[0].copy(deep=False)

    def truth(self) -> pd.Series:
        """Planted segment name per ``customer_id`` (int64 index), for every customer with an id."""
        return self._generated()[1].copy(deep=False)

    def catalogue(self) -> pd.DataFrame:
        """Products: ``stock_code``, ``description``, ``family`` and base ``unit_price``."""
        return self._generated()[2].copy(deep=False)

    def segment_history(self) -> pd.DataFrame:
        """Planted segment of every customer with an id through time.

        Returns
        -------
        DataFrame
            One row per spell: ``customer_id``, ``start`` (day it begins: the first day of the
            period or a migration date), ``end`` (exclusive: the next migration date or the day
            after the period) and ``segment``, sorted by customer and start. A customer's spells
            tile the period; the last one's segment is ``truth()``. Spells say nothing of
            arrival: a customer is in a segment before their first purchase.
        """
        return self._generated()[3].copy(deep=False)

    def seasonal_truth(self) -> pd.DataFrame:
        """Planted buying season of every customer with an id, at the end of the data.

        Returns
        -------
        DataFrame
            Indexed by ``customer_id``: ``seasonal`` (bool: buys mainly in one season of the
            year, every year), ``season_start_month`` (1-12) and ``season_months`` (both <NA>
            when not seasonal). Customers with a personal season (``seasonal_share``) and those
            of the season-only segment (October to December) are seasonal.
        """
        return self._generated()[4].copy(deep=False)

    def _generated(self) -> tuple[pd.DataFrame, pd.Series, pd.DataFrame, pd.DataFrame,
                                  pd.DataFrame]:
        # Keyed by fingerprint so that changing an attribute after a read regenerates.
        key = self.fingerprint()
        cached = getattr(self, "_cache", None)
        if cached is None or cached[0] != key:
            self._cache = (key, *generate(**self.get_params()))
        return self._cache[1:]


#: Time parameters and their defaults (off): the data are then as before they existed.
TIME_PARAMS = {"segment_days": None, "seasonal_share": 0.0, "season_months": 3,
               "migrations": []}


def generate(n_customers: int, n_lines: int, n_products: int, start: str, end: str,
             missing_customer_rate: float, cancellation_rate: float, duplicate_rate: float,
             zero_price_rate: float, seed: int, segment_days: int | None = None,
             seasonal_share: float = 0.0, season_months: int = 3,
             migrations: Sequence[Mapping] | None = None
             ) -> tuple[pd.DataFrame, pd.Series, pd.DataFrame, pd.DataFrame, pd.DataFrame]:
    """Generate ``(lines, truth, catalogue, segment_history, seasonal_truth)``.

    See `SyntheticTransactions` for the parameters.
    """
    if not 0 <= missing_customer_rate < 1 or n_customers < 1 or n_products < len(FAMILIES):
        raise ValueError(f"need n_customers >= 1, n_products >= {len(FAMILIES)} and "
                         "0 <= missing_customer_rate < 1")
    names = [s.name for s in SEGMENTS]
    plan = history.plan_history(segment_days, seasonal_share, season_months, migrations, names,
                                pd.Timestamp(start), pd.Timestamp(end))
    rng = np.random.default_rng(seed)
    calendar = _Calendar(pd.Timestamp(start), pd.Timestamp(end), segment_days)
    catalogue = build_catalogue(n_products, rng)
    n_guests = round(n_customers * missing_customer_rate / (1 - missing_customer_rate))
    overhead = 1 + cancellation_rate + duplicate_rate + 0.01  # + postage and manual lines
    customers = _draw_customers(rng, n_customers, n_guests, n_lines / overhead, calendar)
    if plan.active:
        customers = history.plant_history(rng, customers, calendar, plan, SEGMENTS,
                                          partial(_draw_windows, rng, calendar=calendar))
    else:
        customers = history.with_spells(customers, calendar.n_days)
    invoices = _draw_invoices(rng, customers, calendar)
    if plan.seasonal_share > 0:
        invoices = history.seasonal_invoice_days(rng, invoices, customers, calendar,
                                                 season_months)
    if plan.migrations:
        invoices = history.keep_spells(invoices, customers)
    lines = _draw_lines(rng, customers, invoices, catalogue, calendar)
    lines = _zero_prices(rng, customers, invoices, lines, zero_price_rate)
    returns, cancels = _draw_cancellations(rng, customers, invoices, lines, cancellation_rate,
                                           calendar)
    invoices = {k: np.concatenate([invoices[k], returns[k]]) for k in returns}
    extras = _draw_extra_lines(rng, customers, invoices, len(catalogue))
    repeats = 1 + (rng.random(len(lines["invoice"])) < duplicate_rate)  # exact duplicate lines
    lines = {key: np.repeat(values, repeats) for key, values in lines.items()}
    frame = _assemble(customers, invoices, [lines, extras, cancels], catalogue, calendar)
    known = history.at_end(customers)
    truth = pd.Series(np.array(names, dtype=object)[customers["segment"][known]], dtype="str",
                      name=SEGMENT,
                      index=pd.Index(customers["id"][known], dtype="int64", name=CUSTOMER_ID))
    spells = history.history_frame(customers, names, pd.Timestamp(start))
    seasons = history.season_frame(customers, SEGMENTS, GIFT_SEASON, season_months)
    return frame, truth.sort_index(), catalogue, spells, seasons


def build_catalogue(n_products: int, rng: np.random.Generator) -> pd.DataFrame:
    """Products family by family: stock code, description, family and base unit price.

    Parameters
    ----------
    n_products : int
        How many products; families get equal shares.
    rng : numpy Generator
        Source of randomness.

    Returns
    -------
    DataFrame
        One row per product, ordered by family in `FAMILIES` order.
    """
    names = list(FAMILIES)
    counts = np.full(len(names), n_products // len(names))
    counts[: n_products % len(names)] += 1
    # Colour variants of one design share the 5-digit code with a letter suffix (85123A/85123B).
    base_codes = iter(rng.choice(np.arange(10000, 90000), size=n_products, replace=False))
    rows = []
    for family, count in zip(names, counts, strict=True):
        median_price, nouns, words = FAMILIES[family]
        designs = _designs(rng, nouns, words)
        made = 0
        while made < count:
            if not designs:
                raise ValueError(f"n_products={n_products} exceeds the designs of '{family}'")
            design, code = designs.pop(), next(base_codes)
            price = _snap(median_price * rng.lognormal(0, 0.45), PRICE_POINTS)
            n_variants = min(count - made, rng.choice([1, 2, 3, 4], p=[0.75, 0.15, 0.07, 0.03]))
            if n_variants == 1:
                rows.append((str(code), design, family, price))
            else:
                colours = rng.choice(COLOURS, n_variants, replace=False)
                rows += [(f"{code}{letter}", f"{colour} {design}", family, price)
                         for letter, colour in zip("ABCD", colours, strict=False)]
            made += n_variants
    frame = pd.DataFrame(rows, columns=[STOCK_CODE, DESCRIPTION, FAMILY, UNIT_PRICE])
    return frame.astype({STOCK_CODE: "str", DESCRIPTION: "str", FAMILY: "str"})


def _designs(rng: np.random.Generator, nouns: list[str], words: list[str]) -> list[str]:
    """Design names of a family, to be popped from the end: family words first, then patterns."""
    pairs = [(w, n) for w in words for n in nouns if w not in n]  # no "PARTY PARTY BUNTING"
    tiers = [
        [f"{w} {n}" for w, n in pairs],
        [f"{w} {n} {p}" for w, n in pairs for p in PATTERNS],
        [f"{n} {p}" for n in nouns for p in PATTERNS]
        + [f"{p} {n}" for n in nouns for p in PATTERNS],
    ]
    shuffled = [[tier[i] for i in rng.permutation(len(tier))] for tier in tiers]
    return [name for tier in reversed(shuffled) for name in tier]


def _snap(values, grid: np.ndarray):
    """Nearest grid value on a log scale (grid sorted ascending)."""
    edges = np.sqrt(grid[1:] * grid[:-1])
    return grid[np.searchsorted(edges, values)]


class _Calendar:
    """Days of the period with month, weekday and per-segment cumulative day weights."""

    def __init__(self, start: pd.Timestamp, end: pd.Timestamp, segment_days: int | None = None):
        days = pd.date_range(start.normalize(), end.normalize(), freq="D")
        if len(days) < 28:
            raise ValueError(f"the period {start.date()}..{end.date()} is shorter than four weeks")
        self.start_ns = days[0].as_unit("ns").value
        self.n_days = len(days)
        self.span = (self.n_days - (segment_days or self.n_days), self.n_days - 1)
        self.month = days.month.to_numpy() - 1
        self.weekday = days.weekday.to_numpy()
        in_season = (self.month - GIFT_SEASON[0]) % 12 < GIFT_SEASON[1]
        self.season = self._last_run(in_season) if in_season.any() else (0, self.n_days - 1)
        self.cum = []  # per segment: cumulative day weights, cum[d] = weight of days < d
        for profile in SEGMENTS:
            weights = MONTH_ACTIVITY[self.month] * np.asarray(profile.weekdays)[self.weekday]
            if profile.season_only and in_season.any():
                weights = weights * in_season
            self.cum.append(np.concatenate([[0.0], np.cumsum(weights)]))

    @staticmethod
    def _last_run(mask: np.ndarray) -> tuple[int, int]:
        last = int(np.flatnonzero(mask)[-1])
        gaps = np.flatnonzero(~mask[:last])
        return (int(gaps[-1]) + 1 if len(gaps) else 0), last

    def window(self, profile: SegmentProfile, fractions: tuple[float, float]) -> tuple[int, int]:
        lo, hi = self.season if profile.season_only else self.span
        return lo + round(fractions[0] * (hi - lo)), lo + round(fractions[1] * (hi - lo))

    def sample(self, segment: int, lo, hi, u) -> np.ndarray:
        """Days in ``[lo, hi]`` drawn with the segment's day weights (``u`` uniform in [0, 1))."""
        cum = self.cum[segment]
        a, b = cum[lo], cum[np.asarray(hi) + 1]
        days = np.searchsorted(cum, a + u * (b - a), side="right") - 1
        return np.clip(days, lo, hi)


def _profile_array(field: str) -> np.ndarray:
    """One profile attribute for all segments, indexable by segment number."""
    return np.array([getattr(p, field) for p in SEGMENTS])


def _lognormal(rng: np.random.Generator, sigma: float, size: int) -> np.ndarray:
    """Multiplicative noise with mean 1."""
    return rng.lognormal(-sigma**2 / 2, sigma, size)


def _allocate(n: int, shares: np.ndarray) -> np.ndarray:
    """Segment numbers for ``n`` customers in exact proportions (largest remainder)."""
    counts = np.floor(n * shares).astype(int)
    counts[np.argsort(counts - n * shares)[: n - counts.sum()]] += 1
    return np.repeat(np.arange(len(shares)), counts)


def _draw_customers(rng: np.random.Generator, n_customers: int, n_guests: int,
                    target_lines: float, calendar: _Calendar) -> dict[str, np.ndarray]:
    """Segment, id, country, active window and buying scales of every customer."""
    shares = _profile_array("share") / _profile_array("share").sum()
    segment = np.concatenate([_allocate(n_customers, shares), _allocate(n_guests, shares)])
    n = len(segment)
    min_inv, extra = _profile_array("min_invoices"), _profile_array("extra_invoices")
    per_invoice = _profile_array("lines_per_invoice")
    # Repeat buyers buy more often when more lines per customer are asked for; below the
    # minimum numbers of invoices, baskets shrink instead.
    per_customer = target_lines / n
    fixed, scalable = (shares * min_inv * per_invoice).sum(), (shares * extra * per_invoice).sum()
    scale = max((per_customer - fixed) / scalable, 0.0)
    single = (shares * min_inv).sum()  # lines per customer with one-line invoices
    shrink = np.clip((per_customer - single) / (fixed - single), 0.0, 1.0)
    noise = _lognormal(rng, 0.5, n)
    n_invoices = min_inv[segment] + rng.poisson(scale * extra[segment] * noise)
    abroad = np.array(list(ABROAD.values()), dtype=float)
    country = np.where(rng.random(n) < _profile_array("uk_share")[segment], 0,
                       1 + rng.choice(len(abroad), n, p=abroad / abroad.sum()))
    first, last = _draw_windows(rng, segment, calendar)
    return {
        "segment": segment, "guest": np.arange(n) >= n_customers,
        "id": 12346 + rng.choice(max(6000, 2 * n), n, replace=False), "country": country,
        "first": first, "last": last, "n_invoices": n_invoices,
        "line_scale": shrink * _lognormal(rng, 0.3, n),
        "quantity": _profile_array("quantity")[segment] * rng.lognormal(0, 0.25, n),
        "activity": scale * noise,  # mean extra invoices per unit of a segment's `extra_invoices`
    }


def _draw_windows(rng: np.random.Generator, segment: np.ndarray,
                  calendar: _Calendar) -> tuple[np.ndarray, np.ndarray]:
    """First and last purchase day of customers of the given segments, in the segment span."""
    first, last = np.empty(len(segment), dtype=np.int64), np.empty(len(segment), dtype=np.int64)
    for s, profile in enumerate(SEGMENTS):
        idx = np.flatnonzero(segment == s)
        f_lo, f_hi = calendar.window(profile, profile.first_day)
        l_lo, l_hi = calendar.window(profile, profile.last_day)
        first[idx] = calendar.sample(s, f_lo, f_hi, rng.random(len(idx)))
        lo = np.maximum(first[idx], l_lo)
        last[idx] = calendar.sample(s, lo, np.maximum(lo, l_hi), rng.random(len(idx)))
    return first, last


def _draw_invoices(rng: np.random.Generator, customers: dict, calendar: _Calendar) -> dict:
    """Customer, minute of the period and number of lines of every purchase invoice."""
    n_inv = customers["n_invoices"]
    cust = np.repeat(np.arange(len(n_inv)), n_inv)
    k = np.arange(len(cust)) - np.repeat(np.cumsum(n_inv) - n_inv, n_inv)
    seg, first, last = customers["segment"][cust], customers["first"][cust], customers["last"][cust]
    # The first and last invoices sit on the window ends, so recency is what the segment says.
    day = np.where(k == n_inv[cust] - 1, last, first)
    middle = (k > 0) & (k < n_inv[cust] - 1)
    for s in range(len(SEGMENTS)):
        idx = np.flatnonzero(middle & (seg == s))
        day[idx] = calendar.sample(s, first[idx], last[idx], rng.random(len(idx)))
    hour_mean, hour_sd = _profile_array("hour").T
    hour = np.clip(np.rint(rng.normal(hour_mean[seg], hour_sd[seg])), 7, 20).astype(np.int64)
    minute = day * 1440 + hour * 60 + rng.integers(0, 60, len(cust))
    per_invoice = _profile_array("lines_per_invoice")[seg] - 1
    n_lines = 1 + rng.poisson(per_invoice * customers["line_scale"][cust]
                              * _lognormal(rng, 0.5, len(cust)))
    return {"customer": cust, "minute": minute, "cancel": np.zeros(len(cust), bool),
            "n_lines": n_lines}


def _offset_cdf(weights: np.ndarray) -> np.ndarray:
    """Row-wise CDFs shifted by the row number, so one searchsorted samples every row."""
    cum = np.cumsum(weights, axis=-1)
    cum = cum / cum[:, -1:]  # exactly 1.0 at the end of each row
    return (cum + np.arange(len(cum))[:, None]).ravel()


def _family_table() -> np.ndarray:
    """Family probabilities per (segment, calendar month), shape (segments * 12, families)."""
    names = list(FAMILIES)
    season = np.ones((12, len(names)))
    for family, months in FAMILY_SEASON.items():
        season[:, names.index(family)] = months
    prefs = np.array([[p.families.get(f, 0.0) for f in names] for p in SEGMENTS])
    table = prefs[:, None, :] * season[None, :, :]
    table /= table.sum(-1, keepdims=True)
    # A tenth of every basket is browsing outside the segment's favourite families.
    table = 0.9 * table + 0.1 * (season / season.sum(-1, keepdims=True))[None]
    return table.reshape(len(SEGMENTS) * 12, len(names))


def _draw_lines(rng: np.random.Generator, customers: dict, invoices: dict,
                catalogue: pd.DataFrame, calendar: _Calendar) -> dict:
    """Product, quantity and price of every purchase line."""
    inv = np.repeat(np.arange(len(invoices["n_lines"])), invoices["n_lines"])
    cust = invoices["customer"][inv]
    context = customers["segment"][cust] * 12 + calendar.month[invoices["minute"][inv] // 1440]
    n_fam = len(FAMILIES)
    family = np.searchsorted(_offset_cdf(_family_table()), context + rng.random(len(inv)),
                             side="right") - context * n_fam
    family = np.clip(family, 0, n_fam - 1)
    # Within a family a few best sellers take most lines (Zipf-like popularity).
    family_of = pd.Categorical(catalogue[FAMILY], categories=list(FAMILIES)).codes
    rank = np.empty(len(family_of))
    for f in range(n_fam):
        members = np.flatnonzero(family_of == f)
        rank[members] = rng.permutation(len(members))
    popularity = 1 / (rank + 1) ** 0.5
    cum = np.concatenate([np.cumsum(popularity[family_of == f]) / popularity[family_of == f].sum()
                          + f for f in range(n_fam)])
    product = np.searchsorted(cum, family + rng.random(len(inv)), side="right")
    product = np.clip(product, 0, len(catalogue) - 1)
    quantity = _snap(customers["quantity"][cust] * rng.lognormal(0, 0.7, len(inv)), PACK_SIZES)
    base = catalogue[UNIT_PRICE].to_numpy()[product]
    # Bulk lines get the trade price, as on the real price list.
    tier = np.where(quantity >= 100, 0.7, np.where(quantity >= 24, 0.85, 1.0))
    price = np.where(tier < 1, _snap(base * tier, PRICE_POINTS), base)
    return {"invoice": inv, "product": product, "quantity": quantity, "price": price}


def _draw_cancellations(rng: np.random.Generator, customers: dict, invoices: dict, lines: dict,
                        rate: float, calendar: _Calendar) -> tuple[dict, dict]:
    """New "C" invoices and their lines, each reversing (part of) an earlier purchase line."""
    segment = customers["segment"][invoices["customer"][lines["invoice"]]]
    weight = _profile_array("return_weight")[segment] * (lines["price"] > 0)
    picked = np.flatnonzero(rng.random(len(weight)) < rate * weight / weight.mean())
    # One cancellation invoice per purchase invoice that has cancelled lines.
    original, which = np.unique(lines["invoice"][picked], return_inverse=True)
    minute = _cancellation_time(rng, invoices["minute"][original], calendar)
    new_invoices = {"customer": invoices["customer"][original], "minute": minute,
                    "cancel": np.ones(len(original), bool)}
    bought = lines["quantity"][picked]
    returned = np.where(rng.random(len(picked)) < 0.3, rng.integers(1, bought + 1), bought)
    cancel_lines = {"invoice": len(invoices["minute"]) + which, "product": lines["product"][picked],
                    "quantity": -returned, "price": lines["price"][picked]}
    return new_invoices, cancel_lines


def _cancellation_time(rng: np.random.Generator, bought: np.ndarray,
                       calendar: _Calendar) -> np.ndarray:
    """Minutes later on the same day, or office hours up to four weeks later, within the period."""
    n = len(bought)
    delay = rng.integers(0, 29, n)
    later = (bought // 1440 + delay) * 1440 + rng.integers(9 * 60, 18 * 60, n)
    # The shop takes no orders on Saturdays, and takes no cancellations either.
    later += 1440 * (calendar.weekday[np.minimum(later // 1440, calendar.n_days - 1)] == 5)
    same_day = bought + rng.integers(5, 120, n)  # purchases end by 21:00, so still that day
    return np.where((delay == 0) | (later >= calendar.n_days * 1440), same_day, later)


def _draw_extra_lines(rng: np.random.Generator, customers: dict, invoices: dict,
                      n_products: int) -> dict:
    """Non-product lines: postage abroad, dotcom postage of guest orders, a few manual ones."""
    n = len(invoices["minute"])
    cust, purchase = invoices["customer"], ~invoices["cancel"]
    post = np.flatnonzero(purchase & (customers["country"][cust] > 0) & (rng.random(n) < 0.6))
    dot = np.flatnonzero(purchase & customers["guest"][cust] & (rng.random(n) < 0.08))
    manual = np.flatnonzero(purchase & (rng.random(n) < 0.002))
    price = np.concatenate([
        rng.choice([15.0, 18.0, 28.0, 40.0], len(post), p=[0.2, 0.6, 0.1, 0.1]),
        np.round(rng.lognormal(np.log(120), 0.8, len(dot)), 2),
        np.round(rng.lognormal(np.log(2), 1.0, len(manual)), 2),
    ])
    return {
        "invoice": np.concatenate([post, dot, manual]),
        "product": np.repeat(n_products + np.arange(3), [len(post), len(dot), len(manual)]),
        "quantity": np.concatenate([rng.integers(1, 4, len(post)),
                                    np.ones(len(dot) + len(manual), np.int64)]),
        "price": price,
    }


def _zero_prices(rng: np.random.Generator, customers: dict, invoices: dict, lines: dict,
                 rate: float) -> dict:
    """Some lines priced 0; half of those on guest orders also lose their description."""
    inv = lines["invoice"]
    # Never the first line, so every invoice keeps a priced product and every customer survives
    # a cleaning that drops zero prices.
    first = np.r_[True, inv[1:] != inv[:-1]]
    zero = ~first & (rng.random(len(inv)) < rate)
    guest = customers["guest"][invoices["customer"][inv]]
    return {**lines, "price": np.where(zero, 0.0, lines["price"]),
            "no_description": zero & guest & (rng.random(len(inv)) < 0.5)}


def _assemble(customers: dict, invoices: dict, parts: list[dict], catalogue: pd.DataFrame,
              calendar: _Calendar) -> pd.DataFrame:
    """Lines in invoice-number order (numbers follow time, as in the real file) as a frame."""
    cols = {k: np.concatenate([p[k] for p in parts]) for k in ("invoice", "product", "quantity",
                                                                 "price")}
    no_description = np.concatenate([p.get("no_description", np.zeros(len(p["invoice"]), bool))
                                     for p in parts])
    by_time = np.argsort(invoices["minute"], kind="stable")
    rank = np.empty(len(by_time), dtype=np.int64)
    rank[by_time] = np.arange(len(by_time))
    order = np.argsort(rank[cols["invoice"]], kind="stable")
    inv = cols["invoice"][order]
    numbers = (536365 + np.arange(len(by_time))).astype(str)
    invoice_no = pd.array(np.char.add(np.where(invoices["cancel"][by_time], "C", ""), numbers),
                          dtype="str").take(rank[inv])
    codes = pd.array([*catalogue[STOCK_CODE], POSTAGE[0], DOTCOM[0], MANUAL[0]], dtype="str")
    # The last entry is missing: taking it is much faster than masking the column afterwards.
    texts = pd.array([*catalogue[DESCRIPTION], POSTAGE[1], DOTCOM[1], MANUAL[1], None],
                     dtype="str")
    product = cols["product"][order]
    description = texts.take(np.where(no_description[order], len(texts) - 1, product))
    cust = invoices["customer"][inv]
    minute_ns = invoices["minute"][inv] * 60_000_000_000
    quantity = cols["quantity"][order].astype(np.int64)
    price = cols["price"][order].astype(np.float64)
    frame = pd.DataFrame({
        INVOICE_NO: invoice_no,
        STOCK_CODE: codes.take(product),
        DESCRIPTION: description,
        QUANTITY: quantity,
        INVOICE_DATE: (calendar.start_ns + minute_ns).astype("datetime64[ns]"),
        UNIT_PRICE: price,
        CUSTOMER_ID: pd.arrays.IntegerArray(customers["id"][cust].astype(np.int64),
                                            customers["guest"][cust]),
        COUNTRY: pd.array(["United Kingdom", *ABROAD], dtype="str").take(
            customers["country"][cust]),
        AMOUNT: quantity * price,
    })
    return frame[RAW_COLUMNS]
