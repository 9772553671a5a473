"""RFM and behaviour features and the customer summary from the cleaned lines DuckDB holds.

SQL reduces the ``kept`` view (cleaned lines: purchases and returns) to sums, counts and
extremes per customer, per (customer, invoice) and per (customer, day); pandas then applies the
pandas feature sets' own formulas to those customer-level numbers. Each feature set is fitted by
its own ``fit``, on one summary line per customer that carries all ``fit`` reads: the last
invoice date of the data and the customer's main country. So what is learnt (snapshot date,
top countries, column names) cannot drift from the pandas path; the formulas are repeated here
and ``tests/test_outofcore.py`` holds the two paths equal. The customer summary of segment
profiles (`segmentlab.customers.customer_summary`) is computed the same way.
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


def customer_summary(con: duckdb.DuckDBPyConnection) -> pd.DataFrame:
    """`segmentlab.customers.customer_summary` of the lines in ``kept`` (default snapshot).

    Returns
    -------
    DataFrame
        ``recency_days``, ``frequency``, ``monetary``, ``basket_value``, ``units_per_invoice``,
        ``return_rate``, ``tenure_days`` and ``country`` per customer with a purchase.
    """
    snapshot = _last_date(con).normalize() + pd.Timedelta(days=1)
    per = con.sql(f"""
        WITH invoices AS (SELECT customer_id, invoice_no, min(invoice_date) AS first,
                                 max(invoice_date) AS last, sum(amount) AS spend,
                                 sum(quantity) AS units {_PURCHASES} GROUP BY ALL)
        SELECT customer_id, min(first) AS first, max(last) AS last, count(*) AS invoices,
               sum(spend) AS spend, sum(units) AS units
        FROM invoices GROUP BY customer_id ORDER BY customer_id""").df().set_index(CUSTOMER_ID)
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
    summary.index = pd.Index(per.index.astype("int64"), name=CUSTOMER_ID)
    return summary


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
    per = con.sql(f"""
        WITH invoices AS (SELECT customer_id, invoice_no, max(invoice_date) AS last,
                                 sum(amount) AS spend {_PURCHASES} GROUP BY ALL)
        SELECT customer_id, max(last) AS last, count(*) AS invoices, sum(spend) AS spend
        FROM invoices GROUP BY customer_id ORDER BY customer_id""").df()
    last = pd.to_datetime(per["last"]).dt.normalize()
    window_end = last.max() + pd.Timedelta(days=1) if len(last) else rfm.snapshot_date_
    snapshot = max(rfm.snapshot_date_, window_end)
    frequency, spend = per["invoices"].astype(float), per["spend"].astype(float)
    features = pd.DataFrame({
        "recency_days": (snapshot - last).dt.days.astype(float),
        "frequency": np.log1p(frequency) if rfm.log else frequency,
        "monetary": np.log1p(spend.clip(lower=0)) if rfm.log else spend,
    })
    features.index = pd.Index(per[CUSTOMER_ID].astype("int64"), name=CUSTOMER_ID)
    return features


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
    per = _per_customer(con, behaviour).set_index(CUSTOMER_ID)
    customers = per.index
    snapshot = max(behaviour.snapshot_date_, last_date.normalize() + pd.Timedelta(days=1))
    spend = per["spend"].to_numpy(float)
    columns = {**_timing(con, customers, snapshot, behaviour.one_off_gap),
               **_baskets(con, customers)}
    columns["n_products"] = per["n_products"].to_numpy(float)
    columns["unit_price_mean"] = per["price_sum"].to_numpy(float) / np.maximum(per["n_lines"], 1)
    returned = per["returned"].fillna(0.0).to_numpy(float)
    columns["return_rate"] = np.clip(returned / np.where(spend > 0, spend, np.inf), 0.0, 1.0)
    for name in [c for c in per.columns if c.startswith("spend_share_")]:
        columns[name] = per[name].fillna(0.0).to_numpy(float) / np.where(spend > 0, spend, 1.0)
    main = main.reindex(customers).to_numpy()
    home = main == behaviour.home_country
    columns["is_home_country"] = home.astype(float)
    known = home.copy()
    for name, column in behaviour.countries_.items():
        columns[column] = (main == name).astype(float)
        known |= main == name
    columns["country_other"] = (~known).astype(float)
    features = pd.DataFrame(columns, index=pd.Index(customers.astype("int64"), name=CUSTOMER_ID))
    if behaviour.log:
        features[LOGGED] = np.log1p(features[LOGGED].clip(lower=0))
    return features[list(behaviour.feature_names_out_)].astype(float)


def _last_date(con: duckdb.DuckDBPyConnection) -> pd.Timestamp:
    """Last invoice date of the cleaned lines, returns included (what ``fit`` reads)."""
    return pd.Timestamp(con.execute("SELECT max(invoice_date) FROM kept").fetchall()[0][0])


def _main_country(con: duckdb.DuckDBPyConnection) -> pd.Series:
    """Country on most of each customer's purchase lines, ties alphabetical, by customer."""
    rows = con.sql(f"""
        SELECT customer_id, country FROM (
            SELECT customer_id, coalesce(country, {quote(UNKNOWN_COUNTRY)}) AS country,
                   count(*) AS n
            {_PURCHASES} GROUP BY ALL)
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


def _per_customer(con: duckdb.DuckDBPyConnection, behaviour: BehaviourFeatures) -> pd.DataFrame:
    """Line counts and sums per customer with a purchase: spend by weekday and hour band too."""
    if behaviour.weekday_detail:
        days = {f"spend_share_{d}": f"dow = {i + 1}" for i, d in enumerate(DAYS)}
    else:
        days = {"spend_share_weekday": "dow < 6", "spend_share_weekend": "dow >= 6"}
    # np.digitize: the band is the number of edges at or below the hour.
    band = " + ".join(f"(hour(invoice_date) >= {int(e)})::INT" for e in behaviour.hour_edges)
    bands = {f"spend_share_{b}": f"band = {i}" for i, b in enumerate(HOUR_BANDS)}
    shares = ", ".join(f"sum(spend) FILTER ({cond}) AS {name}"
                       for name, cond in {**days, **bands}.items())
    # Lines are first summed per (customer, weekday, band): a few rows per customer, so the
    # per-customer shares are cheap.
    per = con.sql(f"""
        WITH cells AS (
            SELECT customer_id, isodow(invoice_date) AS dow, {band} AS band, count(*) AS n,
                   sum(amount) AS spend, sum(unit_price) AS price_sum
            {_PURCHASES} GROUP BY ALL)
        SELECT customer_id, sum(n) AS n_lines, sum(spend) AS spend, sum(price_sum) AS price_sum,
               {shares}
        FROM cells GROUP BY customer_id ORDER BY customer_id""").df().set_index(CUSTOMER_ID)
    products = con.sql(f"""
        SELECT customer_id, count(*) AS n_products
        FROM (SELECT DISTINCT customer_id, stock_code {_PURCHASES}) GROUP BY customer_id""").df()
    per["n_products"] = products.set_index(CUSTOMER_ID)["n_products"]
    per["returned"] = _returned(con)  # only customers with a purchase count, as in return_rate
    return per.reset_index()


def _returned(con: duckdb.DuckDBPyConnection) -> pd.Series:
    """Value returned per customer (a positive sum), by customer."""
    returned = con.sql("""
        SELECT customer_id, sum(abs(amount)) AS returned FROM kept
        WHERE is_return AND customer_id IS NOT NULL GROUP BY customer_id""").df()
    return returned.set_index(CUSTOMER_ID)["returned"]


def _timing(con: duckdb.DuckDBPyConnection, customers: pd.Index, snapshot: pd.Timestamp,
            one_off_gap: str) -> dict[str, np.ndarray]:
    """Tenure and the gaps between distinct purchase days (population std)."""
    days = con.sql(f"""
        WITH d AS (SELECT DISTINCT customer_id, invoice_date::DATE AS day {_PURCHASES}),
        g AS (SELECT customer_id, day,
                     day - lag(day) OVER (PARTITION BY customer_id ORDER BY day) AS gap FROM d)
        SELECT customer_id, min(day) AS first_day, avg(gap) AS mean, stddev_pop(gap) AS std
        FROM g GROUP BY customer_id ORDER BY customer_id""").df().set_index(CUSTOMER_ID)
    days = days.reindex(customers)
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


def _baskets(con: duckdb.DuckDBPyConnection, customers: pd.Index) -> dict[str, np.ndarray]:
    """Lines, units and value per invoice, summarised per customer."""
    baskets = con.sql(f"""
        WITH b AS (SELECT customer_id, invoice_no, count(*) AS lines,
                          sum(quantity)::DOUBLE AS units, sum(amount) AS value
                   {_PURCHASES} GROUP BY ALL)
        SELECT customer_id, avg(lines) AS lines_mean, max(lines) AS lines_max,
               avg(units) AS units_mean, max(units) AS units_max,
               avg(value) AS value_mean, stddev_pop(value) AS value_std
        FROM b GROUP BY customer_id ORDER BY customer_id""").df().set_index(CUSTOMER_ID)
    baskets = baskets.reindex(customers).astype(float)
    return {f"basket_{name}": baskets[name].to_numpy() for name in
            ["lines_mean", "lines_max", "units_mean", "units_max", "value_mean", "value_std"]}
