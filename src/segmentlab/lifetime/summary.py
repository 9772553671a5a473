"""The frequency / recency / T / monetary summary that BG/NBD and Gamma-Gamma are fitted on.

Conventions of Fader, Hardie & Lee (2005) and of the ``lifetimes`` package, with the day as the
time unit: purchases are grouped by calendar day, so two invoices on one day are one purchase,
and the first purchase day is "time 0", so only later days count as (repeat) purchases.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from segmentlab.customers import snapshot_date as data_end  # noqa: F401  (re-exported)
from segmentlab.schema import AMOUNT, CUSTOMER_ID, INVOICE_DATE, IS_RETURN, DataError

FREQUENCY = "frequency"  # repeat purchase days: distinct purchase days - 1
RECENCY = "recency"  # days from the first to the last purchase day (0 for one-time buyers)
AGE = "T"  # days from the first purchase day to the cutoff
MONETARY = "monetary_value"  # mean spend per repeat purchase day (0 for one-time buyers)
SUMMARY_COLUMNS = [FREQUENCY, RECENCY, AGE, MONETARY]

_REQUIRED = [CUSTOMER_ID, INVOICE_DATE, AMOUNT, IS_RETURN]
_DAY = pd.Timedelta(days=1)


def check_transactions(transactions: pd.DataFrame) -> None:
    """Raise ``DataError`` naming the missing columns, if any."""
    missing = [c for c in _REQUIRED if c not in transactions.columns]
    if missing:
        raise DataError(f"transactions: missing columns {missing}; expected cleaned transactions "
                        f"with {_REQUIRED}")


def rfm_summary(transactions: pd.DataFrame, cutoff: pd.Timestamp | str) -> pd.DataFrame:
    """Per-customer ``frequency``, ``recency``, ``T`` and ``monetary_value`` at a cutoff.

    Parameters
    ----------
    transactions : DataFrame
        Cleaned invoice lines. Returns (``is_return``) are ignored; so are lines at or after
        ``cutoff``.
    cutoff : Timestamp or str
        The moment of prediction; ``T`` is measured up to it, in (possibly fractional) days.

    Returns
    -------
    DataFrame
        Indexed by ``customer_id`` (sorted) for every customer with a purchase before
        ``cutoff``, columns ``SUMMARY_COLUMNS``: ``frequency`` = distinct purchase days - 1,
        ``recency`` = days from first to last purchase day, ``T`` = days from first purchase
        day to ``cutoff``, ``monetary_value`` = mean spend per purchase day over the repeat days
        (the first day excluded, as Gamma-Gamma expects), 0 for one-time buyers.
    """
    check_transactions(transactions)
    cutoff = pd.Timestamp(cutoff)
    mask = ~transactions[IS_RETURN].to_numpy(bool) & (transactions[INVOICE_DATE] < cutoff).to_numpy()
    lines = transactions.loc[mask, [CUSTOMER_ID, INVOICE_DATE, AMOUNT]]
    days = (lines.assign(day=lines[INVOICE_DATE].dt.normalize())
            .groupby([CUSTOMER_ID, "day"], sort=True)[AMOUNT].sum().reset_index())
    by = days.groupby(CUSTOMER_ID, sort=True)
    first, last = by["day"].min(), by["day"].max()
    n_days = by.size()
    # The first day's spend is left out of the mean: Gamma-Gamma models repeat transactions.
    first_spend = by[AMOUNT].first()  # days are sorted within each customer
    repeat_spend = by[AMOUNT].sum() - first_spend
    frequency = (n_days - 1).astype(float)
    monetary = np.where(frequency > 0, repeat_spend / frequency.where(frequency > 0, 1.0), 0.0)
    summary = pd.DataFrame({
        FREQUENCY: frequency,
        RECENCY: ((last - first) / _DAY).astype(float),
        AGE: ((cutoff - first) / _DAY).astype(float),
        MONETARY: monetary,
    })
    summary.index = summary.index.rename(CUSTOMER_ID)
    return summary


def check_summary(frequency, recency, T) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Arrays of a valid summary, or ``ValueError`` naming the first broken rule."""
    x, tx, age = (np.asarray(v, dtype=float) for v in (frequency, recency, T))
    try:
        x, tx, age = np.broadcast_arrays(x, tx, age)
    except ValueError:
        raise ValueError(f"frequency, recency and T must have one shape, got {np.shape(x)}, "
                         f"{np.shape(tx)} and {np.shape(age)}") from None
    rules = [
        (np.isfinite(x) & np.isfinite(tx) & np.isfinite(age), "must be finite"),
        (x >= 0, "frequency must be >= 0"),
        (x == np.round(x), "frequency must be a whole number of repeat purchases"),
        (tx >= 0, "recency must be >= 0"),
        (tx <= age, "recency must be <= T"),
        ((x > 0) | (tx == 0), "recency must be 0 when frequency is 0"),
        ((x == 0) | (tx > 0), "recency must be > 0 when frequency > 0"),
    ]
    for ok, rule in rules:
        if not ok.all():
            i = int(np.flatnonzero(~ok.ravel())[0])
            raise ValueError(f"summary row {i}: {rule} (frequency={x.ravel()[i]}, "
                             f"recency={tx.ravel()[i]}, T={age.ravel()[i]})")
    return x, tx, age
