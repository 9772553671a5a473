"""How each customer buys: timing, basket shape, price level, returns, weekday/hour and country.

Everything is computed with integer customer codes, ``np.bincount`` and ``groupby`` so that
10 M invoice lines stay in the seconds range (no Python loop over customers). Purchases travel
as plain arrays with text columns as integer codes: filtering a frame of Arrow strings would
copy every description for nothing.
"""

from __future__ import annotations

import re
from collections.abc import Sequence

import numpy as np
import pandas as pd
from sklearn.base import BaseEstimator, TransformerMixin
from sklearn.utils.validation import check_is_fitted

from segmentlab.customers import UNKNOWN_COUNTRY, main_country, return_rate, snapshot_date
from segmentlab.schema import (
    AMOUNT,
    COUNTRY,
    CUSTOMER_ID,
    INVOICE_DATE,
    INVOICE_NO,
    IS_RETURN,
    QUANTITY,
    STOCK_CODE,
    UNIT_PRICE,
    DataError,
)

_REQUIRED = [INVOICE_NO, STOCK_CODE, QUANTITY, INVOICE_DATE, UNIT_PRICE, CUSTOMER_ID, COUNTRY,
             AMOUNT, IS_RETURN]
_TIMING = ["tenure_days", "purchase_gap_mean_days", "purchase_gap_std_days", "is_one_off"]
_BASKET = ["basket_lines_mean", "basket_lines_max", "basket_units_mean", "basket_units_max",
           "basket_value_mean", "basket_value_std", "n_products", "unit_price_mean"]
#: Columns ``log1p`` is applied to when ``log``: counts and money are heavy-tailed
#: (wholesalers next to one-off gift buyers).
LOGGED = _BASKET
#: Weekday names of the ``spend_share_<day>`` columns, Monday first (``weekday_detail``).
DAYS = ["mon", "tue", "wed", "thu", "fri", "sat", "sun"]
#: Names of the ``spend_share_<band>`` columns: before, between and after ``hour_edges``.
HOUR_BANDS = ["morning", "midday", "afternoon", "evening"]


class BehaviourFeatures(TransformerMixin, BaseEstimator):
    """Buying behaviour per customer, from purchases (returns only feed ``return_rate``).

    Columns: ``tenure_days`` (first purchase day to snapshot); ``purchase_gap_mean_days`` and
    ``purchase_gap_std_days`` between distinct purchase days (population std); ``is_one_off``
    (1 when the customer bought on a single day); basket lines and units per invoice (mean,
    max), basket value (mean, population std), ``n_products`` (distinct stock codes),
    ``unit_price_mean`` (mean over lines, i.e. the price level of what they pick, not weighted
    by quantity); ``return_rate`` (returned value / purchased value, clipped to [0, 1]);
    ``spend_share_<day>`` and ``spend_share_<hour band>`` (each group sums to 1);
    ``is_home_country``, ``country_<name>`` for the top countries learnt in ``fit`` and
    ``country_other`` (exactly one of them is 1). A customer's country is the one on most of
    their purchase lines.

    One-off buyers have no gap. With ``one_off_gap="tenure"`` their mean gap is their tenure
    (they have waited that long without returning, so the gap is at least that) and std 0; with
    ``"zero"`` both are 0. Either way ``is_one_off`` separates them.

    The snapshot date is learnt in ``fit`` (last invoice day + 1). ``transform`` on another
    window measures tenure from the fitted snapshot, or from the window's own last day + 1 if
    the window ends later, so tenure is never negative.

    Parameters
    ----------
    top_countries : int
        How many countries besides ``home_country`` get their own one-hot column, ranked by
        customer count in the fit data (ties by name).
    home_country : str
        The retailer's own country, flagged by ``is_home_country`` instead of one-hot.
    hour_edges : sequence of 3 ints
        Hours where midday, afternoon and evening start (local time of the invoices).
    weekday_detail : bool
        Seven ``spend_share_mon`` … ``spend_share_sun`` columns if True, else
        ``spend_share_weekday`` and ``spend_share_weekend``.
    one_off_gap : {"tenure", "zero"}
        Mean purchase gap given to one-off buyers (see above).
    log : bool
        Apply ``log1p`` to the basket, product-count and price columns.
    """

    def __init__(self, top_countries: int = 5, home_country: str = "United Kingdom",
                 hour_edges: Sequence[int] = (12, 14, 17), weekday_detail: bool = True,
                 one_off_gap: str = "tenure", log: bool = True):
        self.top_countries = top_countries
        self.home_country = home_country
        self.hour_edges = hour_edges
        self.weekday_detail = weekday_detail
        self.one_off_gap = one_off_gap
        self.log = log

    def fit(self, transactions: pd.DataFrame, y=None) -> BehaviourFeatures:
        """Learn the snapshot date and the top countries."""
        self._check_params()
        purchases = _purchases(transactions, [COUNTRY])
        if not len(purchases[CUSTOMER_ID]):
            raise DataError("transactions: no purchase rows (is_return False) to fit on")
        self.snapshot_date_ = snapshot_date(transactions)
        codes, _ = pd.factorize(purchases[CUSTOMER_ID], sort=True)
        self.country_counts_ = main_country(codes, *purchases[COUNTRY]).value_counts()
        abroad = self.country_counts_.drop(self.home_country, errors="ignore").sort_index()
        top = abroad.sort_values(ascending=False, kind="stable").index[: self.top_countries]
        self.countries_ = {name: f"country_{_slug(name)}" for name in top}
        if len(set(self.countries_.values())) < len(self.countries_):
            raise DataError(f"country names collide once made column names: {self.countries_}")
        days = DAYS if self.weekday_detail else ["weekday", "weekend"]
        self.feature_names_out_ = np.array(
            [*_TIMING, *_BASKET, "return_rate", *(f"spend_share_{d}" for d in days),
             *(f"spend_share_{b}" for b in HOUR_BANDS), "is_home_country",
             *self.countries_.values(), "country_other"], dtype=object)
        return self

    def transform(self, transactions: pd.DataFrame) -> pd.DataFrame:
        """One row per customer with at least one purchase in ``transactions``."""
        check_is_fitted(self, "feature_names_out_")
        purchases = _purchases(transactions, _REQUIRED)
        if not len(purchases[CUSTOMER_ID]):
            empty = pd.Index([], dtype="int64", name=CUSTOMER_ID)
            return pd.DataFrame(columns=list(self.feature_names_out_), index=empty, dtype=float)
        window_end = snapshot_date(transactions)
        snapshot = max(self.snapshot_date_, window_end)
        codes, customers = pd.factorize(purchases[CUSTOMER_ID], sort=True)
        n = len(customers)
        spend = np.bincount(codes, weights=purchases[AMOUNT].astype(float), minlength=n)
        parts = [self._timing(purchases, codes, n, snapshot), _baskets(purchases, codes, n),
                 pd.DataFrame({"return_rate": return_rate(transactions, customers, spend)}),
                 self._when(purchases, codes, n, spend), self._country(purchases, codes)]
        features = pd.concat([p.reset_index(drop=True) for p in parts], axis=1)
        if self.log:
            features[LOGGED] = np.log1p(features[LOGGED].clip(lower=0))
        features.index = pd.Index(customers.astype("int64"), name=CUSTOMER_ID)
        return features[list(self.feature_names_out_)].astype(float)

    def get_feature_names_out(self, input_features=None) -> np.ndarray:
        check_is_fitted(self, "feature_names_out_")
        return self.feature_names_out_.copy()

    def report(self, transactions: pd.DataFrame | None = None
               ) -> tuple[dict[str, float], dict[str, pd.DataFrame]]:
        """Share of fit customers in the home country, and the country table behind the columns."""
        check_is_fitted(self, "feature_names_out_")
        counts = self.country_counts_
        table = pd.DataFrame({COUNTRY: counts.index, "customers": counts.to_numpy()})
        table["share"] = table["customers"] / table["customers"].sum()
        column = table[COUNTRY].map(self.countries_).fillna("country_other")
        table["column"] = column.where(table[COUNTRY] != self.home_country, "is_home_country")
        home = float(table.loc[table[COUNTRY] == self.home_country, "share"].sum())
        return {"behaviour/home_country_share": home}, {"behaviour_countries": table}

    def _check_params(self) -> None:
        if len(self.hour_edges) != 3 or list(self.hour_edges) != sorted(self.hour_edges):
            raise ValueError(f"hour_edges must be 3 increasing hours, got {self.hour_edges!r}")
        if self.one_off_gap not in ("tenure", "zero"):
            raise ValueError(f"one_off_gap must be 'tenure' or 'zero', got {self.one_off_gap!r}")
        if self.top_countries < 0:
            raise ValueError(f"top_countries must be >= 0, got {self.top_countries}")

    def _timing(self, purchases: dict, codes: np.ndarray, n: int,
                snapshot: pd.Timestamp) -> pd.DataFrame:
        """Tenure and the gaps between distinct purchase days."""
        day = purchases[INVOICE_DATE].astype("datetime64[D]").astype(np.int64)
        start = day.min()
        # Sorting the distinct (customer, day) pairs puts each customer's days in order.
        key = np.sort(pd.unique(codes.astype(np.int64) * 1_000_000 + (day - start)))
        cust, offset = np.divmod(key, 1_000_000)
        gap = np.diff(offset, prepend=0).astype(float)
        first = np.r_[True, cust[1:] != cust[:-1]]
        gaps = pd.Series(gap[~first]).groupby(cust[~first])
        mean = gaps.mean().reindex(range(n)).to_numpy()
        std = gaps.std(ddof=0).reindex(range(n)).to_numpy()
        first_day = offset[first] + start
        tenure = (snapshot.to_datetime64().astype("datetime64[D]").astype(np.int64) - first_day)
        one_off = np.isnan(mean)
        fill = tenure if self.one_off_gap == "tenure" else np.zeros(n)
        return pd.DataFrame({
            "tenure_days": tenure.astype(float),
            "purchase_gap_mean_days": np.where(one_off, fill, mean),
            "purchase_gap_std_days": np.where(one_off, 0.0, std),
            "is_one_off": one_off.astype(float),
        })

    def _when(self, purchases: dict, codes: np.ndarray, n: int,
              spend: np.ndarray) -> pd.DataFrame:
        """Share of spend per weekday (or weekday/weekend) and per hour band."""
        dates = pd.Series(purchases[INVOICE_DATE]).dt
        amount = purchases[AMOUNT].astype(float)
        weekday = dates.day_of_week.to_numpy()
        if self.weekday_detail:
            day_names, day_idx = DAYS, weekday
        else:
            day_names, day_idx = ["weekday", "weekend"], (weekday >= 5).astype(int)
        band = np.digitize(dates.hour.to_numpy(), list(self.hour_edges))
        columns = {}
        for names, idx in [(day_names, day_idx), (HOUR_BANDS, band)]:
            k = len(names)
            sums = np.bincount(codes * k + idx, weights=amount, minlength=n * k).reshape(n, k)
            shares = sums / np.where(spend > 0, spend, 1.0)[:, None]
            columns.update({f"spend_share_{name}": shares[:, i] for i, name in enumerate(names)})
        return pd.DataFrame(columns)

    def _country(self, purchases: dict, codes: np.ndarray) -> pd.DataFrame:
        """Home flag plus one-hot of the fitted top countries; everything else is 'other'."""
        main = main_country(codes, *purchases[COUNTRY])
        home = (main == self.home_country).to_numpy()
        columns = {"is_home_country": home.astype(float)}
        known = home.copy()
        for name, column in self.countries_.items():
            hit = (main == name).to_numpy()
            columns[column] = hit.astype(float)
            known |= hit
        columns["country_other"] = (~known).astype(float)
        return pd.DataFrame(columns)


def _purchases(transactions: pd.DataFrame, columns: Sequence[str]) -> dict:
    """Purchase lines of ``columns`` as arrays, after checking the frame has the cleaned columns.

    Invoice numbers and stock codes become integer codes (equal text, equal code) and the
    country a pair (codes, names) with names sorted; the customer id is always included.
    """
    missing = [c for c in _REQUIRED if c not in transactions.columns]
    if missing:
        raise DataError(f"transactions: missing columns {missing}; expected cleaned transactions")
    bought = ~transactions[IS_RETURN].to_numpy(bool)
    lines = {}
    for column in {CUSTOMER_ID, *columns} - {IS_RETURN}:
        values = transactions[column]
        if column == COUNTRY:
            # Sorted codes, so that ties between countries break alphabetically.
            codes, names = pd.factorize(values.fillna(UNKNOWN_COUNTRY), sort=True)
            lines[column] = (codes[bought], np.asarray(names))
        elif column in (INVOICE_NO, STOCK_CODE):
            lines[column] = pd.factorize(values)[0][bought]
        else:
            lines[column] = values.to_numpy()[bought]
    return lines


def _baskets(purchases: dict, codes: np.ndarray, n: int) -> pd.DataFrame:
    """Lines, units and value per invoice summarised per customer; products and price level."""
    invoice = purchases[INVOICE_NO] + 1  # a missing number (code -1) is a value of its own
    # One integer per (customer, invoice), numbered in order of appearance: grouping by it
    # gives the same groups, in the same order, as grouping by the two columns, without
    # pandas combining the two keys through hash tables.
    basket, _ = pd.factorize(codes.astype(np.int64) * (int(invoice.max()) + 1) + invoice)
    lines = pd.DataFrame({"units": purchases[QUANTITY].astype(float),
                          "value": purchases[AMOUNT].astype(float)})
    grouper = pd.Categorical.from_codes(basket, categories=pd.RangeIndex(basket.max() + 1))
    per_invoice = lines.groupby(grouper, observed=True, sort=True).agg(
        lines=("units", "size"), units=("units", "sum"), value=("value", "sum"))
    owner = np.empty(len(per_invoice), dtype=np.int64)
    owner[basket] = codes
    by = per_invoice.groupby(owner, sort=True)
    stock = purchases[STOCK_CODE] + 1  # as for invoices
    width = int(stock.max()) + 1
    pairs = pd.unique(codes.astype(np.int64) * width + stock)
    n_lines = np.bincount(codes, minlength=n)
    price = np.bincount(codes, weights=purchases[UNIT_PRICE].astype(float), minlength=n)
    out = pd.DataFrame({
        "basket_lines_mean": by["lines"].mean(), "basket_lines_max": by["lines"].max(),
        "basket_units_mean": by["units"].mean(), "basket_units_max": by["units"].max(),
        "basket_value_mean": by["value"].mean(), "basket_value_std": by["value"].std(ddof=0),
    }).reindex(range(n))
    out["n_products"] = np.bincount(pairs // width, minlength=n)
    out["unit_price_mean"] = price / np.maximum(n_lines, 1)
    return out.astype(float)


def _slug(name: str) -> str:
    """Lower-case snake_case column fragment of a country name."""
    return re.sub(r"[^0-9a-z]+", "_", str(name).lower()).strip("_") or "unknown"
