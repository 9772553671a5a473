"""RFM and behaviour features and the customer summary from the cleaned lines DuckDB holds.

SQL reduces the purchase lines of the ``kept`` view (see `lines`) twice, once for all: to
``slices`` (customer, invoice, timestamp, country: line count, units, value and price sums; one
row per invoice in practice) and to the distinct (customer, product) pairs. Everything per
invoice, per day, per weekday and hour band, per country and per customer is summed from
``slices``, a few million rows at 100 M lines, instead of from the lines. pandas then applies
the pandas feature sets' own formulas to these customer-level numbers.

Each feature set is fitted by its own ``fit``, on one summary line per customer that carries all
``fit`` reads: the last invoice date of the data and the customer's main country. So what is
learnt (snapshot date, top countries, column names) cannot drift from the pandas path; the
formulas are repeated here and ``tests/test_outofcore.py`` holds the two paths equal.
"""

from __future__ import annotations

import duckdb
import numpy as np
import pandas as pd

from segmentlab.customers import UNKNOWN_COUNTRY
from segmentlab.data.outofcore.reading import quote
from segmentlab.features.behaviour import DAYS, HOUR_BANDS, LOGGED, BehaviourFeatures
from segmentlab.features.rfm import RFMFeatures
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

_PURCHASES = "FROM kept WHERE NOT is_return AND customer_id IS NOT NULL"
_TABLES = f"""
    CREATE TABLE IF NOT EXISTS slices AS
    SELECT customer_id, invoice_key, invoice_date, country_key, count(*) AS lines,
           sum(quantity)::DOUBLE AS units, sum(amount) AS value, sum(unit_price) AS price_sum
    {_PURCHASES} GROUP BY ALL;
    CREATE TABLE IF NOT EXISTS invoices AS
    SELECT customer_id, invoice_key, sum(lines) AS lines, sum(units) AS units,
           sum(value) AS value, sum(price_sum) AS price_sum, min(invoice_date) AS first,
           max(invoice_date) AS last
    FROM slices GROUP BY ALL;
    CREATE TABLE IF NOT EXISTS purchasers AS
    SELECT customer_id, min(first) AS first, max(last) AS last, count(*) AS invoices,
           sum(value) AS spend, sum(units) AS units, sum(lines) AS n_lines,
           sum(price_sum) AS price_sum, avg(lines) AS lines_mean, max(lines) AS lines_max,
           avg(units) AS units_mean, max(units) AS units_max, avg(value) AS value_mean,
           stddev_pop(value) AS value_std
    FROM invoices GROUP BY customer_id ORDER BY customer_id;
"""


def fit_transform(con: duckdb.DuckDBPyConnection, feature_set) -> pd.DataFrame:
    """``feature_set.fit_transform`` of the lines in ``kept``, for the sets this engine computes.

    Raises
    ------
    DataError
        For any other feature set, naming it.
    """
    if isinstance(feature_set, RFMFeatures):
        return rfm_features(con, feature_set)
    if isinstance(feature_set, BehaviourFeatures):
        return behaviour_features(con, feature_set)
    raise DataError(f"feature set {type(feature_set).__name__} has no out-of-core version "
                    f"(only RFMFeatures and BehaviourFeatures); use data.engine=pandas")


def rfm_features(con: duckdb.DuckDBPyConnection, rfm: RFMFeatures) -> pd.DataFrame:
    """``rfm.fit_transform`` of the lines in ``kept``.

    Parameters
    ----------
    con : DuckDBPyConnection
        A connection with the ``kept`` view of `OutOfCoreLines`.
    rfm : RFMFeatures
        Fitted in place (its snapshot date).

    Returns
    -------
    DataFrame
        ``recency_days``, ``frequency``, ``monetary`` per customer with a purchase.
    """
    rfm.fit(pd.DataFrame({INVOICE_DATE: [_last_date(con)]}))
    per = _purchasers(con)
    last = pd.to_datetime(per["last"]).dt.normalize()
    window_end = last.max() + pd.Timedelta(days=1) if len(last) else rfm.snapshot_date_
    snapshot = max(rfm.snapshot_date_, window_end)
    frequency, spend = per["invoices"].astype(float), per["spend"].astype(float)
    return pd.DataFrame({
        "recency_days": (snapshot - last).dt.days.astype(float),
        "frequency": np.log1p(frequency) if rfm.log else frequency,
        "monetary": np.log1p(spend.clip(lower=0)) if rfm.log else spend,
    })


def behaviour_features(con: duckdb.DuckDBPyConnection,
                       behaviour: BehaviourFeatures) -> pd.DataFrame:
    """``behaviour.fit_transform`` of the lines in ``kept``.

    Parameters
    ----------
    con : DuckDBPyConnection
        A connection with the ``kept`` view of `OutOfCoreLines`.
    behaviour : BehaviourFeatures
        Fitted in place (snapshot date, country counts and columns).

    Returns
    -------
    DataFrame
        ``behaviour.get_feature_names_out()`` per customer with a purchase.
    """
    last_date = _last_date(con)
    main = _main_country(con)
    behaviour.fit(_fit_summary(main, last_date))
    per = _purchasers(con)
    customers = per.index
    snapshot = max(behaviour.snapshot_date_, last_date.normalize() + pd.Timedelta(days=1))
    spend = per["spend"].to_numpy(float)
    columns = _timing(con, customers, snapshot, behaviour.one_off_gap)
    columns |= {f"basket_{name}": per[name].to_numpy(float) for name in
                ["lines_mean", "lines_max", "units_mean", "units_max", "value_mean", "value_std"]}
    columns["n_products"] = _products(con).reindex(customers).to_numpy(float)
    columns["unit_price_mean"] = (per["price_sum"].to_numpy(float)
                                  / np.maximum(per["n_lines"].to_numpy(float), 1))
    returned = _returned(con).reindex(customers).fillna(0.0).to_numpy(float)
    columns["return_rate"] = np.clip(returned / np.where(spend > 0, spend, np.inf), 0.0, 1.0)
    shares = _shares(con, behaviour).reindex(customers)
    for name in shares.columns:
        columns[name] = shares[name].fillna(0.0).to_numpy(float) / np.where(spend > 0, spend, 1.0)
    main = main.reindex(customers).to_numpy()
    home = main == behaviour.home_country
    columns["is_home_country"] = home.astype(float)
    known = home.copy()
    for name, column in behaviour.countries_.items():
        columns[column] = (main == name).astype(float)
        known |= main == name
    columns["country_other"] = (~known).astype(float)
    features = pd.DataFrame(columns, index=customers)
    if behaviour.log:
        features[LOGGED] = np.log1p(features[LOGGED].clip(lower=0))
    return features[list(behaviour.feature_names_out_)].astype(float)


def customer_summary(con: duckdb.DuckDBPyConnection) -> pd.DataFrame:
    """`segmentlab.customers.customer_summary` of the lines in ``kept`` (default snapshot).

    Returns
    -------
    DataFrame
        ``recency_days``, ``frequency``, ``monetary``, ``basket_value``, ``units_per_invoice``,
        ``return_rate``, ``tenure_days`` and ``country`` per customer with a purchase.
    """
    snapshot = _last_date(con).normalize() + pd.Timedelta(days=1)
    per = _purchasers(con)
    returned = _returned(con).reindex(per.index).fillna(0.0).to_numpy(float)
    frequency, spend = per["invoices"].astype(float), per["spend"].astype(float)
    summary = pd.DataFrame({
        "recency_days": (snapshot - pd.to_datetime(per["last"]).dt.normalize()).dt.days.astype(float),
        "frequency": frequency,
        "monetary": spend,
        "basket_value": spend / frequency,
        "units_per_invoice": per["units"].astype(float) / frequency,
        "return_rate": np.clip(returned / np.where(spend > 0, spend, np.inf), 0.0, 1.0),
        "tenure_days": (snapshot - pd.to_datetime(per["first"]).dt.normalize()).dt.days.astype(float),
    })
    summary[COUNTRY] = _main_country(con).reindex(per.index).to_numpy()
    return summary


def _purchasers(con: duckdb.DuckDBPyConnection) -> pd.DataFrame:
    """Per customer with a purchase: dates, invoices, spend, units and basket statistics."""
    con.execute(_TABLES)
    per = con.sql("SELECT * FROM purchasers ORDER BY customer_id").df()
    return per.set_index(pd.Index(per.pop(CUSTOMER_ID).astype("int64"), name=CUSTOMER_ID))


def _last_date(con: duckdb.DuckDBPyConnection) -> pd.Timestamp:
    """Last invoice date of the cleaned lines, returns included (what ``fit`` reads)."""
    return pd.Timestamp(con.execute("SELECT max(invoice_date) FROM kept").fetchall()[0][0])


def _main_country(con: duckdb.DuckDBPyConnection) -> pd.Series:
    """Country on most of each customer's purchase lines, ties alphabetical, by customer."""
    con.execute(_TABLES)
    rows = con.sql(f"""
        SELECT customer_id, country FROM (
            SELECT customer_id, coalesce(c.country, {quote(UNKNOWN_COUNTRY)}) AS country,
                   sum(lines) AS n
            FROM slices JOIN countries c USING (country_key) GROUP BY ALL)
        QUALIFY row_number() OVER (PARTITION BY customer_id ORDER BY n DESC, country) = 1
        ORDER BY customer_id""").df()
    return pd.Series(rows[COUNTRY].to_numpy(object), index=rows[CUSTOMER_ID].to_numpy("int64"))


def _fit_summary(main: pd.Series, last_date: pd.Timestamp) -> pd.DataFrame:
    """One purchase line per customer in its main country, dated the data's last date."""
    n = len(main)
    return pd.DataFrame({
        INVOICE_NO: np.full(n, "0"), STOCK_CODE: np.full(n, "0"), QUANTITY: np.ones(n, np.int64),
        INVOICE_DATE: np.full(n, last_date.to_datetime64()), UNIT_PRICE: np.zeros(n),
        CUSTOMER_ID: main.index.to_numpy("int64"), COUNTRY: pd.array(main.to_numpy(), dtype="str"),
        AMOUNT: np.zeros(n), IS_RETURN: np.zeros(n, bool),
    })


def _shares(con: duckdb.DuckDBPyConnection, behaviour: BehaviourFeatures) -> pd.DataFrame:
    """Spend per customer by weekday (or weekday/weekend) and by hour band."""
    if behaviour.weekday_detail:
        days = {f"spend_share_{d}": f"dow = {i + 1}" for i, d in enumerate(DAYS)}
    else:
        days = {"spend_share_weekday": "dow < 6", "spend_share_weekend": "dow >= 6"}
    # np.digitize: the band is the number of edges at or below the hour.
    band = " + ".join(f"(hour(invoice_date) >= {int(e)})::INT" for e in behaviour.hour_edges)
    bands = {f"spend_share_{b}": f"band = {i}" for i, b in enumerate(HOUR_BANDS)}
    shares = ", ".join(f"sum(value) FILTER ({cond}) AS {name}"
                       for name, cond in {**days, **bands}.items())
    return con.sql(f"""
        SELECT customer_id, {shares}
        FROM (SELECT customer_id, isodow(invoice_date) AS dow, {band} AS band, value FROM slices)
        GROUP BY customer_id""").df().set_index(CUSTOMER_ID)


def _products(con: duckdb.DuckDBPyConnection) -> pd.Series:
    """Distinct products bought per customer."""
    return con.sql(f"""
        SELECT customer_id, count(*) AS n_products
        FROM (SELECT DISTINCT customer_id, stock_key {_PURCHASES}) GROUP BY customer_id
        """).df().set_index(CUSTOMER_ID)["n_products"]


def _returned(con: duckdb.DuckDBPyConnection) -> pd.Series:
    """Value returned per customer (a positive sum), by customer."""
    returned = con.sql("""
        SELECT customer_id, sum(abs(amount)) AS returned FROM kept
        WHERE is_return AND customer_id IS NOT NULL GROUP BY customer_id""").df()
    return returned.set_index(CUSTOMER_ID)["returned"]


def _timing(con: duckdb.DuckDBPyConnection, customers: pd.Index, snapshot: pd.Timestamp,
            one_off_gap: str) -> dict[str, np.ndarray]:
    """Tenure and the gaps between distinct purchase days (population std)."""
    days = con.sql("""
        WITH d AS (SELECT DISTINCT customer_id, invoice_date::DATE AS day FROM slices),
        g AS (SELECT customer_id, day,
                     day - lag(day) OVER (PARTITION BY customer_id ORDER BY day) AS gap FROM d)
        SELECT customer_id, min(day) AS first_day, avg(gap) AS mean, stddev_pop(gap) AS std
        FROM g GROUP BY customer_id""").df().set_index(CUSTOMER_ID).reindex(customers)
    first = pd.to_datetime(days["first_day"]).to_numpy().astype("datetime64[D]").astype(np.int64)
    tenure = snapshot.to_datetime64().astype("datetime64[D]").astype(np.int64) - first
    mean, std = days["mean"].to_numpy(float), days["std"].to_numpy(float)
    one_off = np.isnan(mean)
    fill = tenure if one_off_gap == "tenure" else np.zeros(len(tenure))
    return {
        "tenure_days": tenure.astype(float),
        "purchase_gap_mean_days": np.where(one_off, fill, mean),
        "purchase_gap_std_days": np.where(one_off, 0.0, std),
        "is_one_off": one_off.astype(float),
    }
