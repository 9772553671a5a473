"""Per-customer facts, computed once for every layer that needs them.

The snapshot date, who counts as a customer, recency/frequency/monetary value, the return rate,
the main country and the interpretable customer summary that segment profiles, the deployable
model and the reports share. Feature sets, segment profiles, prediction and the EDA call these
instead of re-deriving them, so "recency" means the same everywhere: whole days from the day of
the customer's last purchase to the snapshot, the midnight after the last invoice day.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from segmentlab.schema import (
    AMOUNT,
    COUNTRY,
    CUSTOMER_ID,
    INVOICE_DATE,
    INVOICE_NO,
    IS_RETURN,
    QUANTITY,
)

#: Country given to lines without one, so every customer has a main country.
UNKNOWN_COUNTRY = "Unspecified"


def snapshot_date(transactions: pd.DataFrame) -> pd.Timestamp:
    """Midnight after the last invoice day: the first moment the data says nothing about.

    The most recent buyer has recency 1, not 0, and a window ending at this date holds every line.
    """
    return transactions[INVOICE_DATE].max().normalize() + pd.Timedelta(days=1)


def purchasers(transactions: pd.DataFrame) -> pd.Index:
    """Sorted ids of the customers with at least one purchase (returns alone do not count)."""
    bought = ~transactions[IS_RETURN].to_numpy(bool)
    ids = np.sort(transactions.loc[bought, CUSTOMER_ID].unique())
    return pd.Index(ids, name=CUSTOMER_ID)


def align_to_purchasers(frame: pd.DataFrame, transactions: pd.DataFrame,
                        what: str = "feature columns") -> pd.DataFrame:
    """``frame`` with one float row per purchaser, in customer order; a gap is a bug, not data."""
    frame = frame.reindex(purchasers(transactions)).astype(float)
    if frame.isna().to_numpy().any():
        bad = frame.columns[frame.isna().any()].tolist()
        raise ValueError(f"{what} {bad[:5]} have missing values for some customers")
    return frame


def rfm(transactions: pd.DataFrame, snapshot: pd.Timestamp | str) -> pd.DataFrame:
    """Recency, frequency and monetary value of every purchaser, unscaled.

    Parameters
    ----------
    transactions : DataFrame
        Cleaned invoice lines; returns are ignored.
    snapshot : Timestamp or str
        Recency is counted in whole days from the day of the last purchase to this date.

    Returns
    -------
    DataFrame
        Indexed by ``customer_id`` (sorted): ``recency_days``, ``frequency`` (distinct
        invoices) and ``monetary`` (purchase value, raw), all float.
    """
    bought = ~transactions[IS_RETURN].to_numpy(bool)
    # Only the numeric columns are filtered; invoice numbers are counted as integer codes
    # (missing stays missing), which is much cheaper than filtering and hashing the text.
    purchases = transactions.loc[bought, [CUSTOMER_ID, INVOICE_DATE, AMOUNT]]
    invoice = pd.factorize(transactions[INVOICE_NO])[0][bought].astype(float)
    invoice[invoice < 0] = np.nan
    by = purchases.assign(**{INVOICE_NO: invoice}).groupby(CUSTOMER_ID, sort=True)
    last = by[INVOICE_DATE].max()
    frame = pd.DataFrame({
        "recency_days": (pd.Timestamp(snapshot) - last.dt.normalize()).dt.days.astype(float),
        "frequency": by[INVOICE_NO].nunique().astype(float),
        "monetary": by[AMOUNT].sum(),
    })
    frame.index.name = CUSTOMER_ID
    return frame


def return_rate(transactions: pd.DataFrame, customers: pd.Index, spend) -> np.ndarray:
    """Returned value over purchased value per customer, clipped to [0, 1] (0 without spend).

    ``spend`` is the purchase value of each of ``customers``, in the same order.
    """
    returns = transactions[transactions[IS_RETURN].to_numpy(bool)]
    # Return lines carry negative quantity, so their amount is negative: use its size.
    returned = returns[AMOUNT].abs().groupby(returns[CUSTOMER_ID]).sum()
    returned = returned.reindex(customers, fill_value=0.0).to_numpy(float)
    spend = np.asarray(spend, dtype=float)
    return np.clip(returned / np.where(spend > 0, spend, np.inf), 0.0, 1.0)


def main_country(customer_codes: np.ndarray, country_codes: np.ndarray,
                 names: np.ndarray) -> pd.Series:
    """Country on most of each customer's lines (ties: alphabetical), indexed by customer code.

    ``country_codes`` code each line's country into ``names``, which must be sorted (as
    ``pd.factorize(..., sort=True)`` gives them), so the smallest code wins a tie.
    """
    counts = pd.DataFrame({"c": customer_codes, "k": country_codes}).value_counts().reset_index(name="n")
    best = counts.sort_values(["c", "n", "k"], ascending=[True, False, True]).drop_duplicates("c")
    return pd.Series(names[best["k"].to_numpy()], index=best["c"].to_numpy())


def main_countries(transactions: pd.DataFrame) -> pd.Series:
    """Main country of every purchaser (see `main_country`), indexed by ``customer_id``."""
    bought = ~transactions[IS_RETURN].to_numpy(bool)
    customer_codes, customers = pd.factorize(transactions.loc[bought, CUSTOMER_ID], sort=True)
    country_codes, names = pd.factorize(transactions.loc[bought, COUNTRY].fillna(UNKNOWN_COUNTRY),
                                        sort=True)
    main = main_country(customer_codes, country_codes, np.asarray(names))
    return pd.Series(main.to_numpy(), index=pd.Index(customers[main.index], name=CUSTOMER_ID),
                     name=COUNTRY)


def customer_summary(transactions: pd.DataFrame,
                     snapshot: pd.Timestamp | str | None = None) -> pd.DataFrame:
    """Plain per-customer figures used to profile segments, independent of feature sets.

    Parameters
    ----------
    transactions : DataFrame
        Cleaned invoice lines (purchases and returns).
    snapshot : Timestamp, str or None
        Day recency and tenure are measured from; default `snapshot_date`.

    Returns
    -------
    DataFrame
        Indexed by ``customer_id`` (customers with a purchase): ``recency_days``,
        ``frequency`` (invoices), ``monetary`` (total spend, raw), ``basket_value`` (spend per
        invoice), ``units_per_invoice``, ``return_rate`` (returned / purchased value, clipped to
        [0, 1]), ``tenure_days`` and ``country`` (the one on most of their lines).
    """
    snapshot = snapshot_date(transactions) if snapshot is None else pd.Timestamp(snapshot)
    summary = rfm(transactions, snapshot)
    purchases = transactions[~transactions[IS_RETURN]]
    first_day = purchases[INVOICE_DATE].groupby(purchases[CUSTOMER_ID]).min().dt.normalize()
    units = purchases[QUANTITY].groupby(purchases[CUSTOMER_ID]).sum()
    summary["basket_value"] = summary["monetary"] / summary["frequency"]
    summary["units_per_invoice"] = units / summary["frequency"]
    summary["return_rate"] = return_rate(transactions, summary.index, summary["monetary"])
    summary["tenure_days"] = (snapshot - first_day).dt.days.astype(float)
    summary[COUNTRY] = main_countries(transactions)
    return summary
