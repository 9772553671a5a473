"""How recently and how regularly each customer buys, measured back from the snapshot.

Windows of the last days, exponentially decayed counts, the gaps between purchase days, the
trend of the last months and, once the history is longer than a year, the same calendar window
one year earlier. Everything is computed on integer day numbers with ``np.bincount`` over
customer codes, so that a pooled training frame can refit it at many cutoffs cheaply.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import pandas as pd
from sklearn.base import BaseEstimator, TransformerMixin
from sklearn.utils.validation import check_is_fitted

from segmentlab.schema import AMOUNT, CUSTOMER_ID, INVOICE_DATE, IS_RETURN, DataError

_REQUIRED = [CUSTOMER_ID, INVOICE_DATE, AMOUNT, IS_RETURN]
_GAPS = ["gap_mean_days", "gap_std_days", "gap_median_days", "current_gap_days",
         "current_gap_ratio", "has_gap"]
_TREND = ["trend_days", "trend_spend"]
_SEASON = ["last_year_bought", "last_year_days", "last_year_spend", "last_year_prior_days",
           "last_year_prior_spend", "has_last_year", "has_last_year_prior"]


class ActivityFeatures(TransformerMixin, BaseEstimator):
    """Recency-weighted activity per customer, from purchases only (returns are ignored).

    Columns, all measured back from the snapshot ``s`` (a line of day ``d`` is ``s - d`` days
    old, at least 1):

    * ``days_last_<w>``, ``spend_last_<w>``, ``lines_last_<w>``: distinct purchase days, purchase
      value and invoice lines in ``[s - w, s)`` for every ``w`` in ``windows``;
    * ``decayed_days_<h>``: purchase days weighted by ``2 ** (-age / h)`` for every half-life ``h``;
    * ``gap_mean_days``, ``gap_std_days`` (population), ``gap_median_days``: gaps between
      consecutive distinct purchase days; ``current_gap_days``: days since the last purchase day;
      ``current_gap_ratio``: current gap over the median gap (above 1: later than usual);
      ``has_gap``: 0 for customers who bought on one day only, whose gap columns and ratio are 0;
    * ``trend_days`` and ``trend_spend``: ``(a - b) / (a + b)`` of purchase days (spend) in the
      last ``trend_days`` days (``a``) and the ``trend_days`` before (``b``), in ``[-1, 1]``, 0
      when both are 0;
    * ``last_year_bought`` (0/1), ``last_year_days``, ``last_year_spend``: purchases in the same
      calendar window one year earlier, ``[s - year_days, s - year_days + season_days)``;
      ``last_year_prior_days``, ``last_year_prior_spend``: in the window just before it,
      ``[s - year_days - season_days, s - year_days)``. ``has_last_year`` (``has_last_year_prior``)
      is 1 when the lines given start on or before the window's start, so that it was fully
      observed; otherwise the window's columns are 0. Any history length therefore works: a
      short one gives zeros and a 0 flag, never a half-observed window.

    The snapshot is learnt in ``fit`` (the day after the last invoice day). ``transform`` on
    another window measures from ``max(fitted snapshot, that window's last day + 1)``, as
    ``RFMFeatures`` does, so ages are never negative.

    Parameters
    ----------
    windows : sequence of int
        Lengths of the recent windows, in days.
    half_lives : sequence of int
        Half-lives of the decayed purchase-day counts, in days.
    trend_days : int
        Length of each of the two windows the trend compares, in days.
    season_days : int
        Length of last year's window, in days; set it to the prediction horizon.
    year_days : int
        How far back "the same window last year" lies, in days.
    log : bool
        Apply ``log1p`` to the counts, spends, decayed counts and the gap ratio (heavy-tailed:
        wholesalers buy daily next to yearly gift buyers). Gaps stay in days.
    """

    def __init__(self, windows: Sequence[int] = (7, 14, 30, 60, 90, 180),
                 half_lives: Sequence[int] = (15, 45, 120), trend_days: int = 90,
                 season_days: int = 90, year_days: int = 365, log: bool = True):
        self.windows = windows
        self.half_lives = half_lives
        self.trend_days = trend_days
        self.season_days = season_days
        self.year_days = year_days
        self.log = log

    def fit(self, transactions: pd.DataFrame, y=None) -> ActivityFeatures:
        """Learn the snapshot date and the column names."""
        self._check_params()
        _check_columns(transactions)
        if not (~transactions[IS_RETURN].to_numpy(bool)).any():
            raise DataError("transactions: no purchase rows (is_return False) to fit on")
        self.snapshot_date_ = transactions[INVOICE_DATE].max().normalize() + pd.Timedelta(days=1)
        recent = [f"{kind}_last_{w}" for w in self.windows for kind in ("days", "spend", "lines")]
        self.feature_names_out_ = np.array(
            [*recent, *(f"decayed_days_{h}" for h in self.half_lives), *_GAPS, *_TREND, *_SEASON],
            dtype=object)
        return self

    def transform(self, transactions: pd.DataFrame) -> pd.DataFrame:
        """One row per customer with at least one purchase in ``transactions``."""
        check_is_fitted(self, "feature_names_out_")
        _check_columns(transactions)
        bought = ~transactions[IS_RETURN].to_numpy(bool)
        names = list(self.feature_names_out_)
        if not bought.any():
            empty = pd.Index([], dtype="int64", name=CUSTOMER_ID)
            return pd.DataFrame(columns=names, index=empty, dtype=float)
        dates = transactions[INVOICE_DATE]
        snapshot = max(self.snapshot_date_, dates.max().normalize() + pd.Timedelta(days=1))
        # Integer day numbers: the age of a line is then a plain subtraction.
        day = dates.to_numpy()[bought].astype("datetime64[D]").astype(np.int64)
        now = _day_number(snapshot)
        first_seen = _day_number(dates.min().normalize())
        codes, customers = pd.factorize(transactions[CUSTOMER_ID].to_numpy()[bought], sort=True)
        lines = _Lines(codes, now - day, transactions[AMOUNT].to_numpy(float)[bought].clip(min=0),
                       len(customers))
        columns = {**self._recent(lines), **self._gaps(lines), **self._trend(lines),
                   **self._season(lines, now - first_seen)}
        features = pd.DataFrame(columns, index=pd.Index(customers.astype("int64"), name=CUSTOMER_ID))
        if self.log:
            logged = [c for c in names if c.startswith(("days_", "spend_", "lines_", "decayed_",
                                                        "last_year_days", "last_year_spend",
                                                        "last_year_prior_"))]
            logged.append("current_gap_ratio")
            features[logged] = np.log1p(features[logged])
        return features[names].astype(float)

    def get_feature_names_out(self, input_features=None) -> np.ndarray:
        check_is_fitted(self, "feature_names_out_")
        return self.feature_names_out_.copy()

    def _check_params(self) -> None:
        for name in ("windows", "half_lives"):
            values = list(getattr(self, name))
            if not values or any(int(v) != v or v <= 0 for v in values) or len(set(values)) < len(values):
                raise ValueError(f"{name} must be distinct positive whole days, got {values!r}")
        for name in ("trend_days", "season_days", "year_days"):
            value = getattr(self, name)
            if int(value) != value or value <= 0:
                raise ValueError(f"{name} must be a positive whole number of days, got {value!r}")
        if self.season_days >= self.year_days:
            raise ValueError(f"season_days ({self.season_days}) must be shorter than year_days "
                             f"({self.year_days}): last year's window must end before the snapshot")

    def _recent(self, lines: _Lines) -> dict[str, np.ndarray]:
        columns = {}
        for w in self.windows:
            columns[f"days_last_{w}"] = lines.day_count(lines.day_age <= w)
            columns[f"spend_last_{w}"] = lines.sum(lines.age <= w, lines.amount)
            columns[f"lines_last_{w}"] = lines.sum(lines.age <= w)
        for h in self.half_lives:
            columns[f"decayed_days_{h}"] = np.bincount(lines.day_owner, minlength=lines.n,
                                                       weights=np.exp2(-lines.day_age / h))
        return columns

    def _gaps(self, lines: _Lines) -> dict[str, np.ndarray]:
        # Distinct days are sorted by (customer, age descending), i.e. oldest first per customer.
        owner, age = lines.day_owner, lines.day_age
        same = owner[1:] == owner[:-1]
        gap = pd.Series((age[:-1] - age[1:])[same].astype(float))
        by = gap.groupby(owner[1:][same])
        stats = pd.DataFrame({"mean": by.mean(), "std": by.std(ddof=0), "median": by.median()})
        stats = stats.reindex(range(lines.n), fill_value=0.0)
        current = np.full(lines.n, np.iinfo(np.int64).max)
        np.minimum.at(current, owner, age)
        median = stats["median"].to_numpy()
        has_gap = median > 0
        return {"gap_mean_days": stats["mean"].to_numpy(), "gap_std_days": stats["std"].to_numpy(),
                "gap_median_days": median, "current_gap_days": current.astype(float),
                "current_gap_ratio": np.where(has_gap, current / np.where(has_gap, median, 1), 0.0),
                "has_gap": has_gap.astype(float)}

    def _trend(self, lines: _Lines) -> dict[str, np.ndarray]:
        t = self.trend_days
        recent_day, before_day = lines.day_age <= t, (lines.day_age > t) & (lines.day_age <= 2 * t)
        recent, before = lines.age <= t, (lines.age > t) & (lines.age <= 2 * t)
        pairs = [(lines.day_count(recent_day), lines.day_count(before_day)),
                 (lines.sum(recent, lines.amount), lines.sum(before, lines.amount))]
        return {name: np.where(a + b > 0, (a - b) / np.where(a + b > 0, a + b, 1.0), 0.0)
                for name, (a, b) in zip(_TREND, pairs, strict=True)}

    def _season(self, lines: _Lines, observed_days: int) -> dict[str, np.ndarray]:
        """Last year's window and the one before it; zero unless the lines cover it fully."""
        year, season = self.year_days, self.season_days
        # [s - year, s - year + season) holds the ages in (year - season, year].
        windows = {"last_year": (year - season, year), "last_year_prior": (year, year + season)}
        columns = {}
        for name, (young, old) in windows.items():
            covered = observed_days >= old
            inside_day = (lines.day_age > young) & (lines.day_age <= old)
            inside = (lines.age > young) & (lines.age <= old)
            days = lines.day_count(inside_day) if covered else np.zeros(lines.n)
            spend = lines.sum(inside, lines.amount) if covered else np.zeros(lines.n)
            columns[f"{name}_days"], columns[f"{name}_spend"] = days, spend
            columns[f"has_{name}"] = np.full(lines.n, float(covered))
        columns["last_year_bought"] = (columns["last_year_days"] > 0).astype(float)
        return columns


class _Lines:
    """Purchase lines as arrays, and the distinct (customer, day) pairs derived from them."""

    def __init__(self, codes: np.ndarray, age: np.ndarray, amount: np.ndarray, n: int):
        self.codes, self.age, self.amount, self.n = codes, age, amount, n
        # One integer per (customer, age), sorted: customer ascending, then age; reversed age
        # inside a customer puts the oldest day first, which is what the gaps need.
        width = int(age.max()) + 1
        key = np.unique(codes.astype(np.int64) * width + (width - 1 - age))
        self.day_owner, reversed_age = np.divmod(key, width)
        self.day_age = width - 1 - reversed_age

    def sum(self, mask: np.ndarray, weights: np.ndarray | None = None) -> np.ndarray:
        """Per customer: number of lines in ``mask``, or the sum of ``weights`` over them."""
        values = mask.astype(float) if weights is None else np.where(mask, weights, 0.0)
        return np.bincount(self.codes, weights=values, minlength=self.n)

    def day_count(self, mask: np.ndarray) -> np.ndarray:
        """Per customer: distinct purchase days where ``mask`` (over the distinct days) holds."""
        return np.bincount(self.day_owner, weights=mask.astype(float), minlength=self.n)


def _day_number(moment: pd.Timestamp) -> int:
    """Days since the epoch of a timestamp's calendar day."""
    return int(np.datetime64(moment.normalize().to_datetime64(), "D").astype(np.int64))


def _check_columns(transactions: pd.DataFrame) -> None:
    missing = [c for c in _REQUIRED if c not in transactions.columns]
    if missing:
        raise DataError(f"transactions: missing columns {missing}; expected cleaned transactions")
